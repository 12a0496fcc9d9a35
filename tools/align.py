"""Time alignment of two versions of the same material.

A reference bounced from another session, or exported with a different pre-roll, can sit a few
milliseconds to a few hundred off the producer's stems. The offset is found by cross-correlating
the mono mixes over their most energetic stretch, within ±``max_offset_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import correlate

from tools.stems import StemSet

MAX_OFFSET_S = 0.25
EXCERPT_S = 20.0
SAME_MATERIAL_CORRELATION = 0.5  # different songs correlate near 0; re-balanced stems of one song far above


@dataclass(frozen=True)
class Alignment:
    """How Version B lines up with Version A.

    Attributes:
        lag: samples by which B is late relative to A (negative: early).
        correlation: normalised cross-correlation of the mono mixes at that lag, −1…1.
    """

    lag: int
    correlation: float

    @property
    def same_material(self) -> bool:
        """Whether B is very likely the same recording as A (re-balanced), not another song."""
        return self.correlation >= SAME_MATERIAL_CORRELATION


def estimate_alignment(
    reference: np.ndarray, other: np.ndarray, rate: int, *, max_offset_s: float = MAX_OFFSET_S,
    excerpt_s: float = EXCERPT_S,
) -> Alignment:
    """Lag of ``other`` against ``reference`` (both float32 ``(channels, samples)`` at ``rate`` Hz).

    The reference's most energetic ``excerpt_s`` seconds are slid over ``other`` within
    ±``max_offset_s``; the lag with the highest normalised correlation wins.
    """
    ref = reference.mean(axis=0, dtype=np.float64)
    oth = other.mean(axis=0, dtype=np.float64)
    max_lag = int(round(max_offset_s * rate))
    length = min(int(excerpt_s * rate), ref.size, max(oth.size - 2 * max_lag, rate))
    energy = np.concatenate([[0.0], np.cumsum(ref**2)])
    start = int(np.argmax(energy[length:] - energy[:-length])) if ref.size > length else 0
    segment = ref[start : start + length]
    # other[start - max_lag : start + length + max_lag], zero outside the audio.
    window = np.zeros(length + 2 * max_lag)
    lo, hi = max(start - max_lag, 0), min(start + length + max_lag, oth.size)
    if hi > lo:
        window[lo - (start - max_lag) : hi - (start - max_lag)] = oth[lo:hi]
    scores = correlate(window, segment, mode="valid", method="fft")  # index k ↔ lag k - max_lag
    window_energy = np.concatenate([[0.0], np.cumsum(window**2)])
    norms = np.sqrt((window_energy[length:] - window_energy[:-length]) * float(segment @ segment))
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = np.where(norms > 0, scores / norms, 0.0)
    best = int(np.argmax(normalised))
    return Alignment(lag=best - max_lag, correlation=float(normalised[best]))


def shift(audio: np.ndarray, lag: int, length: int) -> np.ndarray:
    """``audio`` moved earlier by ``lag`` samples (later if negative), cut or padded to ``length``."""
    out = np.zeros((audio.shape[0], length), dtype=audio.dtype)
    source = audio[:, max(lag, 0):]
    start = max(-lag, 0)
    count = max(min(length - start, source.shape[1]), 0)
    out[:, start : start + count] = source[:, :count]
    return out


def align_to(version_a: StemSet, version_b: StemSet, alignment: Alignment) -> StemSet:
    """Version B shifted by ``alignment.lag`` and cut or padded to A's length, so frame k of one is
    frame k of the other. B must already be at A's sample rate."""
    stems = {name: shift(audio, alignment.lag, version_a.n_samples) for name, audio in version_b.stems.items()}
    return StemSet(stems=stems, rate=version_b.rate, sources=version_b.sources, origin=version_b.origin,
                   warnings=version_b.warnings)
