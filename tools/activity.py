"""Where a stem plays: the time regions in which it is active.

A 100 ms hop counts as active when its K-weighted loudness is above the absolute gate (−70 LUFS)
and no more than :data:`ACTIVE_RANGE_LU` below the stem's own integrated loudness, so a vocal's
breaths and a reverb tail between phrases do not count, whatever the stem's level. Hops rather than
400 ms momentary blocks keep entries sharp: a block would mark an entry up to 300 ms early.
"""

from __future__ import annotations

import numpy as np

from faderwise.tools.loudness import ABSOLUTE_GATE_LUFS, HOP_S, LoudnessBlocks

ACTIVE_RANGE_LU = 20.0
MIN_GAP_S = 0.5  # shorter pauses are bridged: a stem resting for a beat is still playing


def active_hops(blocks: LoudnessBlocks, integrated: float) -> np.ndarray:
    """Boolean activity per 100 ms hop of a measured signal, shape ``(hops,)``; ``integrated`` is
    ``blocks.integrated()``, passed in because callers have it already."""
    if not np.isfinite(integrated):
        return np.zeros(len(blocks.energy), dtype=bool)
    threshold = max(ABSOLUTE_GATE_LUFS, integrated - ACTIVE_RANGE_LU)
    return _bridge_gaps(blocks.hop_loudness() > threshold, int(round(MIN_GAP_S / HOP_S)))


def regions_from_hops(active: np.ndarray) -> tuple[tuple[float, float], ...]:
    """``(start_s, end_s)`` of every run of active 100 ms hops."""
    padded = np.concatenate([[False], active, [False]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    return tuple((round(float(start) * HOP_S, 3), round(float(end) * HOP_S, 3)) for start, end in changes.reshape(-1, 2))


def _bridge_gaps(active: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill inactive runs shorter than ``max_gap`` hops that have activity on both sides."""
    bridged = active.copy()
    on = np.flatnonzero(active)
    if on.size < 2:
        return bridged
    gaps = np.flatnonzero(np.diff(on) > 1)
    for gap in gaps:
        start, end = on[gap] + 1, on[gap + 1]
        if end - start < max_gap:
            bridged[start:end] = True
    return bridged
