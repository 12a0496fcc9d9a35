"""Time alignment of two versions of the same material.

A reference bounced from another session, or exported with a different pre-roll, can sit a few
milliseconds to a few seconds off the producer's stems. The offset is found coarse to fine: onset
envelopes first, then the mono mixes' waveforms over their most energetic stretch.

:func:`align_versions` does it on stem sets of any length: one pass in blocks yields each mono mix's
energy per 5 ms hop (the envelopes and the choice of excerpt), then only the excerpt of A and
the stretches of B it is slid over are read again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import correlate

from faderwise.tools.analysis import block_length, parallel_plan, segment_length, side_by_side
from faderwise.tools.family import sum_signals
from faderwise.tools.stem_files import StemSource
from faderwise.tools.stems import StemSet
from faderwise.tools.workers import both, map_in_workers

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
    """Lag of ``other`` against ``reference`` (both float32 ``(channels, samples)`` at ``rate`` Hz):
    :func:`align_versions` on two one-stem sets."""
    return align_versions(StemSet(stems={"mix": reference}, rate=rate), StemSet(stems={"mix": other}, rate=rate),
                          max_offset_s=max_offset_s, excerpt_s=excerpt_s)


def align_versions(
    version_a: StemSource, version_b: StemSource, *, max_offset_s: float = MAX_OFFSET_S, excerpt_s: float = EXCERPT_S,
    workers: int = 1,
) -> Alignment:
    """Lag of B's mix against A's (both at A's rate), reading each set in blocks (the envelopes'
    pass over ``workers`` processes, :func:`~faderwise.tools.analysis.parallel_plan`).

    Coarse to fine: onset envelopes (5 ms hops) are correlated within ±``max_offset_s``; then A's
    most energetic ``excerpt_s`` seconds (on the 5 ms grid) are slid sample by sample over B's mix
    within ±250 ms of no offset and of the best coarse candidate. The lag with the highest
    normalised waveform correlation wins. Re-balanced stems change the envelope's shape but not its
    timing, so the candidates hold even when the faders differ a lot.
    """
    rate = version_a.rate
    hop = int(round(ENVELOPE_HOP_S * rate))
    energy_a, energy_b = both(lambda: _hop_energies(version_a, hop, workers=workers),
                              lambda: _hop_energies(version_b, hop, workers=workers),
                              concurrently=side_by_side(version_a, version_b, workers))
    max_lag = int(round(FINE_SEARCH_S * rate))
    length = min(int(excerpt_s * rate), version_a.n_samples, max(version_b.n_samples - 2 * max_lag, rate))
    hops = max(length // hop, 1)
    window_energy = np.concatenate([[0.0], np.cumsum(energy_a)])
    start = int(np.argmax(window_energy[hops:] - window_energy[:-hops])) * hop if energy_a.size > hops else 0
    segment = _mono_mix(version_a, start, start + length)
    candidates = {0, *_coarse_lags(_onsets(energy_a), _onsets(energy_b), hop, max_offset_s)}
    return max((_fine_alignment(segment, start, version_b, centre, max_lag) for centre in sorted(candidates)),
               key=lambda alignment: alignment.correlation)


def _mono_mix(source: StemSource, start: int, stop: int) -> np.ndarray:
    """Samples ``start … stop-1`` of the set's mix averaged over channels, float64, zeros outside;
    read a block (:func:`~faderwise.tools.analysis.block_length`) at a time."""
    block = block_length(source.rate)
    mono = np.empty(stop - start)
    with source.reader() as reader:
        for first in range(start, stop, block):
            last = min(first + block, stop)
            mono[first - start : last - start] = _mix_of(reader.read(first, last))
    return mono


def _mix_of(blocks: list[np.ndarray]) -> np.ndarray:
    """The stems' blocks summed (float32, as the analysis sums them) and averaged over channels, float64."""
    return sum_signals(blocks).mean(axis=0, dtype=np.float64)


def _hop_energies(source: StemSource, hop: int, *, workers: int) -> np.ndarray:
    """Energy of the mono mix in each whole ``hop``-sample hop, float64 ``(hops,)``, a segment
    (:func:`~faderwise.tools.analysis.segment_length`, in whole hops) per task."""
    hops = source.n_samples // hop
    per_segment = max(segment_length(source.rate) // hop, 1)
    ranges = [(source, first, min(first + per_segment, hops), hop) for first in range(0, hops, per_segment)]
    found = map_in_workers(segment_hop_energies, ranges, {}, **parallel_plan(source, workers))
    return np.concatenate(found) if found else np.zeros(0)


def segment_hop_energies(source: StemSource, first: int, stop: int, hop: int) -> np.ndarray:
    """Energy of the mono mix in hops ``first … stop-1`` of ``hop`` samples, read a block at a time."""
    per_block = max(block_length(source.rate) // hop, 1)
    energies = np.empty(stop - first)
    with source.reader() as reader:
        for block_first in range(first, stop, per_block):
            block_stop = min(block_first + per_block, stop)
            frames = _mix_of(reader.read(block_first * hop, block_stop * hop)).reshape(-1, hop)
            energies[block_first - first : block_stop - first] = np.einsum("ij,ij->i", frames, frames)
    return energies


def _onsets(energy: np.ndarray) -> np.ndarray:
    """Rises of log energy per hop: where notes and hits start."""
    log_energy = np.log10(energy + 1e-10)
    return np.maximum(np.diff(log_energy, prepend=log_energy[:1]), 0.0)


def _coarse_lags(a: np.ndarray, b: np.ndarray, hop: int, max_offset_s: float) -> list[int]:
    """The best few lags (samples) by correlation of the onset envelopes ``a`` and ``b`` (per
    ``hop`` samples) within ±``max_offset_s``."""
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


def _fine_alignment(segment: np.ndarray, start: int, other: StemSource, centre: int, max_lag: int) -> Alignment:
    """Sample-exact lag within ±``max_lag`` samples of ``centre`` for the reference ``segment``
    that begins at sample ``start``."""
    length = segment.size
    # other's mono mix [first : first + length + 2·max_lag] with first = start + centre − max_lag, zero outside.
    first = start + centre - max_lag
    window = _mono_mix(other, first, first + length + 2 * max_lag)
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
