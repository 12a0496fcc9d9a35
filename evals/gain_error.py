"""Gain error: how far an advisor's moves are from the moves that undo a known perturbation.

Scoring uses the *total* correction per stem — its move plus the master (global) offset — because
splitting a change shared by every stem between "balance" and "master" is a convention, while the
level each stem ends up at is not. Where several engineers' mixes give a consensus range for a
stem's move, the error is the distance to that range (0 inside it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from faderwise.advisor.model import Advice

DIRECTION_THRESHOLD_DB = 1.0  # direction is scored where the true move is at least this big


def distance_to_range(value: float, low: float, high: float) -> float:
    """0 inside ``[low, high]``, else the distance to the nearer end (the consensus-range error)."""
    return 0.0 if low <= value <= high else (low - value if value < low else value - high)


@dataclass(frozen=True)
class StemError:
    """One stem's stated move against the truth (dB, positive = raise).

    Attributes:
        stated: whether the advisor stated a move for the stem at all; an answer without one is
            scored as "no change" (``predicted_db`` 0) and counted apart.
        range_db: the consensus range of the true move, when several mixes give one.
    """

    stem: str
    true_db: float
    predicted_db: float
    stated: bool = True
    range_db: tuple[float, float] | None = None

    @property
    def error_db(self) -> float:
        if self.range_db is not None:
            return distance_to_range(self.predicted_db, *self.range_db)
        return abs(self.predicted_db - self.true_db)

    @property
    def direction_counts(self) -> bool:
        return abs(self.true_db) >= DIRECTION_THRESHOLD_DB

    @property
    def direction_right(self) -> bool:
        return math.copysign(1.0, self.predicted_db) == math.copysign(1.0, self.true_db) and self.predicted_db != 0.0


def stem_errors(advice: Advice, true_moves_db: Mapping[str, float], stems: Iterable[str],
                *, true_master_db: float = 0.0) -> list[StemError]:
    """Per-stem errors of ``advice`` against the true moves (0 for stems not named) for ``stems``."""
    predicted = advice.gains_db()
    return [
        StemError(stem=stem, true_db=true_moves_db.get(stem, 0.0) + true_master_db,
                  predicted_db=predicted.get(stem, 0.0) + advice.global_offset_db)
        for stem in stems
    ]


@dataclass(frozen=True)
class Summary:
    mae_db: float
    direction_accuracy: float
    stems: int
    directional: int
    no_move_share: float = 0.0
    """Share of the stems for which the answer stated no move."""


def summarise(errors: list[StemError]) -> Summary:
    """Mean absolute error (dB) over all stems; direction accuracy over stems with |true| ≥ 1 dB."""
    directional = [e for e in errors if e.direction_counts]
    return Summary(
        mae_db=sum(e.error_db for e in errors) / len(errors) if errors else math.nan,
        direction_accuracy=(sum(e.direction_right for e in directional) / len(directional)) if directional else math.nan,
        stems=len(errors),
        directional=len(directional),
        no_move_share=sum(not e.stated for e in errors) / len(errors) if errors else math.nan,
    )


MAGNITUDE_BINS_DB = ((0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, math.inf))


def magnitude_bin(true_db: float, bins: Sequence[tuple[float, float]] = MAGNITUDE_BINS_DB) -> str:
    """The label of the bin holding |``true_db``|: "3–6 dB", "9+ dB"."""
    size = abs(true_db)
    for low, high in bins:
        if low <= size < high:
            return f"{low:g}+ dB" if math.isinf(high) else f"{low:g}–{high:g} dB"
    raise ValueError(f"{true_db} dB is outside the bins {bins}")


def calibration(errors: Sequence[StemError], key: Callable[[int, StemError], str]) -> dict[str, Summary]:
    """Summaries per group: ``key(index, error)`` names each error's group (e.g. its
    :func:`magnitude_bin`, or the number of stems its item perturbed). Groups sorted by name."""
    groups: dict[str, list[StemError]] = {}
    for index, error in enumerate(errors):
        groups.setdefault(key(index, error), []).append(error)
    return {name: summarise(groups[name]) for name in sorted(groups)}
