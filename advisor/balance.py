"""Moves that bring stems to target levels relative to each other, keeping the mix as loud.

Shared by the advisors that have no same-material reference: the single-mix prior (typical
stem-to-mix levels), equal loudness (all stems alike) and a reference of other material (its
stem-to-mix levels). Stem powers add (stems are mostly uncorrelated), so after moves ``d_i`` the
stem-to-mix level of stem ``i`` is ``L_i + d_i − 10·log10(Σ_j 10^((L_j + d_j)/10))``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def moves_toward(levels_lufs: Mapping[str, float], targets_lu: Mapping[str, float]) -> dict[str, float]:
    """Gain per stem (dB) that puts each targeted stem at its target relative level.

    Args:
        levels_lufs: integrated loudness of every stem of Version A (``-inf`` for silent stems).
        targets_lu: wanted level of some stems relative to each other (any common reference,
            e.g. stem-to-mix LU); stems without a target keep their level.

    Returns:
        stem → delta_db for the targeted, non-silent stems. The moves are chosen so that the
        stems' summed power (the mix loudness) stays where it was: balance, not master level.
    """
    audible = {name: level for name, level in levels_lufs.items() if math.isfinite(level)}
    targeted = [name for name in audible if name in targets_lu]
    if not targeted:
        return {}
    fixed_power = sum(10 ** (level / 10) for name, level in audible.items() if name not in targets_lu)
    total_power = sum(10 ** (level / 10) for level in audible.values())
    target_power = sum(10 ** (targets_lu[name] / 10) for name in targeted)
    # Targeted stems land at target + c; c keeps the total power unchanged.
    remaining = total_power - fixed_power
    offset = 10 * math.log10(remaining / target_power)
    return {name: targets_lu[name] + offset - audible[name] for name in targeted}
