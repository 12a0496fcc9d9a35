"""Time alignment of two versions of the same material.

A reference bounced from another session, or exported with a different pre-roll, can sit a few
milliseconds to a few seconds off the producer's stems. The offset is found coarse to fine: onset
envelopes first, then the mono mixes' waveforms over their most energetic stretch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import correlate

from faderwise.tools.stems import StemSet

MAX_OFFSET_S = 5.0  # a bounce with a bar of pre-roll at slow tempi
FINE_SEARCH_S = 0.25  # sample-exact search, around 0 and around each coarse candidate
ENVELOPE_HOP_S = 0.005
COARSE_CANDIDATES = 1  # the best envelope lag; no offset is always tried as well
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

    Coarse to fine: onset envelopes (5 ms hops) are correlated within ±``max_offset_s``; then the
    reference's most energetic ``excerpt_s`` seconds are slid sample by sample over ``other``
    within ±250 ms of no offset and of the best coarse candidate. The lag with the
    highest normalised waveform correlation wins. Re-balanced stems change the envelope's shape
    but not its timing, so the candidates hold even when the faders differ a lot.
    """
    ref = reference.mean(axis=0, dtype=np.float64)
    oth = other.mean(axis=0, dtype=np.float64)
    max_lag = int(round(FINE_SEARCH_S * rate))
    length = min(int(excerpt_s * rate), ref.size, max(oth.size - 2 * max_lag, rate))
    energy = np.concatenate([[0.0], np.cumsum(ref**2)])
    start = int(np.argmax(energy[length:] - energy[:-length])) if ref.size > length else 0
    segment = ref[start : start + length]
    candidates = {0, *_coarse_lags(ref, oth, rate, max_offset_s)}
    return max((_fine_alignment(segment, start, oth, centre, max_lag) for centre in sorted(candidates)),
               key=lambda alignment: alignment.correlation)


def _onsets(mono: np.ndarray, hop: int) -> np.ndarray:
    """Rises of log energy per hop: where notes and hits start."""
    frames = mono[: mono.size // hop * hop].reshape(-1, hop)
    log_energy = np.log10(np.einsum("ij,ij->i", frames, frames) + 1e-10)
    return np.maximum(np.diff(log_energy, prepend=log_energy[:1]), 0.0)


def _coarse_lags(ref: np.ndarray, oth: np.ndarray, rate: int, max_offset_s: float) -> list[int]:
    """The best few lags (samples) by onset-envelope correlation within ±``max_offset_s``."""
    hop = int(round(ENVELOPE_HOP_S * rate))
    a, b = _onsets(ref, hop), _onsets(oth, hop)
    max_hops = int(max_offset_s / ENVELOPE_HOP_S)
    if a.size == 0 or b.size == 0 or not a.any() or not b.any():
        return []
    a, b = a - a.mean(), b - b.mean()
    scores = correlate(b, a, mode="full", method="fft")  # index k ↔ lag k - (a.size - 1) hops
    lags = np.arange(scores.size) - (a.size - 1)
    keep = np.abs(lags) <= max_hops
    scores, lags = scores[keep], lags[keep]
    best = []
    for index in np.argsort(scores)[::-1]:
        if all(abs(int(lags[index]) - chosen) > 2 for chosen in best):
            best.append(int(lags[index]))
        if len(best) == COARSE_CANDIDATES:
            break
    return [lag * hop for lag in best]


def _fine_alignment(segment: np.ndarray, start: int, oth: np.ndarray, centre: int, max_lag: int) -> Alignment:
    """Sample-exact lag within ±``max_lag`` samples of ``centre`` for the reference ``segment``
    that begins at sample ``start``."""
    length = segment.size
    # other[first : first + length + 2·max_lag] with first = start + centre − max_lag, zero outside.
    first = start + centre - max_lag
    window = np.zeros(length + 2 * max_lag)
    lo, hi = max(first, 0), min(first + window.size, oth.size)
    if hi > lo:
        window[lo - first : hi - first] = oth[lo:hi]
    scores = correlate(window, segment, mode="valid", method="fft")  # index k ↔ lag centre + k − max_lag
    window_energy = np.concatenate([[0.0], np.cumsum(window**2)])
    norms = np.sqrt((window_energy[length:] - window_energy[:-length]) * float(segment @ segment))
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = np.where(norms > 0, scores / norms, 0.0)
    best = int(np.argmax(normalised))
    return Alignment(lag=centre + best - max_lag, correlation=float(normalised[best]))


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
