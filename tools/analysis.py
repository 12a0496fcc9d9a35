"""Measure a whole stem set: every stem, every stem's backing, and the mix — in blocks, on every core.

The expensive linear steps run once per stem and are combined: the K-weighted mix is the sum of
the K-weighted stems and a K-weighted backing is the K-weighted mix minus its stem; band spectra
combine the same way. Non-linear measures (energies, peaks) are taken on each signal.

Nothing holds a whole signal. The song is cut into **segments** (:data:`SEGMENT_BLOCKS` blocks,
about a minute), each measured on its own — in parallel processes when there are ``workers`` —
and read in **blocks** of :func:`block_length` samples (about 3 s). What a block leaves behind is
small and additive: the energy of each 100 ms hop (BS.1770's sub-blocks; a hop cut by a block's
edge gets both parts), sums of squares, peaks, and the band power of each FFT frame. A block is a
whole number of FFT frames and of 16-sample oversampling rows, and is read with
:func:`~faderwise.tools.levels.true_peak_context` samples of its neighbours, so frames and true
peaks are what the whole signal gives. The K-weighting filter's state runs on from block to block;
a segment other than the first starts it on :data:`PREROLL_S` of the audio before it (the filter
forgets its start within 40 ms: a 38 Hz high-pass). The segments are the same whatever the number of
workers and are merged in order, so one worker and many give identical numbers.

Peak memory is the blocks of every stem (stems × 3 s) per worker, plus the results: it does not
grow with the song's length beyond the measurements themselves (a hop's energy per signal, a band
level per frame).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from faderwise.tools.activity import active_hops, regions_from_hops
from faderwise.tools.bands import BandLevels, band_layout, band_levels_of_family, frame_length
from faderwise.tools.family import Family, each, family_index, family_size, mix_backings_stems
from faderwise.tools.levels import (
    amplitude_to_db,
    crest_factor_db,
    intersample_peaks_of_family,
    peak_amplitude,
    true_peak_context,
)
from faderwise.tools.loudness import HOP_S, KWeighting, LoudnessBlocks, LoudnessCurve, channel_weights, hop_edges
from faderwise.tools.memory import format_duration
from faderwise.tools.stem_files import StemFiles, StemSource
from faderwise.tools.stems import StemSet
from faderwise.tools.workers import map_in_workers

CLIP_DBFS = 0.0
"""A sample peak at or above full scale clips in any fixed-point export."""
TRUE_PEAK_CEILING_DBTP = -1.0
"""EBU R128 / streaming delivery ceiling: a true peak above it may clip after lossy encoding."""

ProgressCallback = Callable[[int, int, str], None]
"""Called as ``(done, total, what)`` while a stem set is measured: segments done of all, and a line
saying how far the measuring is."""
BLOCK_FRAMES = 16
"""FFT frames per block: 131072 samples, about 3 s at 44.1 and 48 kHz."""
SEGMENT_BLOCKS = 20
"""Blocks per segment (about a minute): the unit one worker measures."""
PREROLL_S = 1.0
"""Audio before a segment that the K-weighting filter runs over first (its memory is under 40 ms)."""
PARALLEL_MIN_STEM_S = 1800.0
"""Seconds of stems (all stems counted) under which a set is measured by threads of this process:
starting worker processes costs about a second, half a minute of stems' measuring on one core."""


@dataclass(frozen=True)
class Measurement:
    """Everything faderwise measures on one signal (a stem, a backing or the mix).

    Levels are in dB; silence is ``-inf`` (loudness below the −70 LUFS absolute gate), and measures
    that silence leaves undefined (crest factor, loudness range) or that were not asked for (true
    peak, see :func:`analyze_stem_set`) are ``nan``.
    """

    integrated_lufs: float
    rms_dbfs: float
    sample_peak_dbfs: float
    true_peak_dbtp: float
    crest_db: float
    loudness_range_lu: float
    short_term: LoudnessCurve
    active: np.ndarray
    """Activity per 100 ms hop, bool, shape ``(hops,)``."""
    bands: BandLevels

    @property
    def silent(self) -> bool:
        return not math.isfinite(self.integrated_lufs)

    @property
    def active_regions(self) -> tuple[tuple[float, float], ...]:
        """``(start_s, end_s)`` of each region where the signal plays."""
        return regions_from_hops(self.active)

    @property
    def active_s(self) -> float:
        return float(np.count_nonzero(self.active) * HOP_S)

    def active_at(self, times_s: np.ndarray) -> np.ndarray:
        """Whether the signal plays at each of ``times_s`` (seconds): bool, shape of ``times_s``."""
        if len(self.active) == 0:
            return np.zeros(np.shape(times_s), dtype=bool)
        return self.active[np.minimum((np.asarray(times_s) / HOP_S).astype(int), len(self.active) - 1)]

    def band_frames_active(self) -> np.ndarray:
        """Which band-level frames fall where the signal plays: bool, shape ``(frames,)``."""
        return self.active_at(self.bands.frame_times_s)

    def to_json(self) -> dict[str, object]:
        """Plain JSON numbers; ``-inf``/``nan`` become ``null`` and ``silent`` says why."""
        return {
            "silent": self.silent,
            "integrated_lufs": json_number(self.integrated_lufs),
            "rms_dbfs": json_number(self.rms_dbfs),
            "sample_peak_dbfs": json_number(self.sample_peak_dbfs),
            "true_peak_dbtp": json_number(self.true_peak_dbtp),
            "crest_db": json_number(self.crest_db),
            "loudness_range_lu": json_number(self.loudness_range_lu),
            "active_seconds": round(self.active_s, 1),
            "active_regions_s": [list(region) for region in self.active_regions],
            "band_levels_db": {
                label: json_number(level) for label, level in zip(self.bands.labels, self.bands.level_db())
            },
        }


@dataclass(frozen=True)
class StemMeasurement:
    """A stem, its backing (all other stems) and how they relate to each other and to the mix."""

    name: str
    stem: Measurement
    backing: Measurement
    stem_to_mix_lu: float
    """Stem loudness minus mix loudness in LU (``nan`` when either is silent)."""
    stem_to_backing_lu: float
    """Stem loudness minus backing loudness in LU (``nan`` when either is silent)."""

    def to_json(self) -> dict[str, object]:
        return {
            **self.stem.to_json(),
            "stem_to_mix_lu": json_number(self.stem_to_mix_lu),
            "stem_to_backing_lu": json_number(self.stem_to_backing_lu),
            "backing": self.backing.to_json(),
        }


@dataclass(frozen=True)
class StemSetAnalysis:
    """Measurements of a whole stem set."""

    label: str
    rate: int
    channels: int
    duration_s: float
    mix: Measurement
    stems: dict[str, StemMeasurement]
    warnings: tuple[str, ...] = ()

    def all_warnings(self) -> tuple[str, ...]:
        """What loading changed that the user should know, then every stem or mix that clips or
        passes the true-peak ceiling (:func:`headroom_warnings`)."""
        return (*self.warnings, *headroom_warnings(self))

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.label,
            "sample_rate": self.rate,
            "channels": self.channels,
            "duration_s": round(self.duration_s, 3),
            "warnings": list(self.all_warnings()),
            "mix": self.mix.to_json(),
            "stems": {name: stem.to_json() for name, stem in self.stems.items()},
        }


def headroom_warnings(analysis: StemSetAnalysis) -> tuple[str, ...]:
    """One line (:func:`peak_warning`) for the mix and each stem that clips or passes the
    true-peak ceiling."""
    found = [peak_warning(analysis.label, what, measured.sample_peak_dbfs, measured.true_peak_dbtp)
             for what, measured in (("the mix", analysis.mix),
                                    *((f"the {name} stem", stem.stem) for name, stem in analysis.stems.items()))]
    return tuple(line for line in found if line)


def peak_warning(label: str, what: str, sample_peak_dbfs: float, true_peak_dbtp: float) -> str | None:
    """A line when the sample peak reaches :data:`CLIP_DBFS` (it clips) or, short of that, the true
    peak (``nan`` when not measured) passes :data:`TRUE_PEAK_CEILING_DBTP`; else None."""
    if sample_peak_dbfs >= CLIP_DBFS:
        return (f"{label}: {what} peaks at {sample_peak_dbfs:+.2f} dBFS, at or over full scale: it clips in any "
                "fixed-point export")
    if true_peak_dbtp > TRUE_PEAK_CEILING_DBTP:
        return (f"{label}: {what} has a true peak of {true_peak_dbtp:+.2f} dBTP, over the "
                f"{TRUE_PEAK_CEILING_DBTP:.0f} dBTP delivery ceiling: it may clip once encoded")
    return None


def json_number(value: float, digits: int = 3) -> float | None:
    """``value`` rounded for JSON; ``None`` for ``±inf`` and ``nan`` (JSON has no such numbers)."""
    return round(float(value), digits) if math.isfinite(value) else None


def level_difference(a: float, b: float) -> float:
    """``a − b`` in dB; ``nan`` unless both are finite (silence has no level to compare)."""
    return a - b if math.isfinite(a) and math.isfinite(b) else float("nan")


def measure(audio: np.ndarray, rate: int) -> Measurement:
    """Measure one float32 ``(channels, samples)`` signal (on its own: no mix or backing is formed)."""
    return measure_signals(StemSet(stems={"signal": audio}, rate=rate), family=each, true_peaks=True)[0]


def block_length(rate: int) -> int:
    """Samples per block at ``rate``: :data:`BLOCK_FRAMES` FFT frames of the band analysis (a power
    of two, so also a whole number of 16-sample oversampling rows)."""
    return frame_length(rate) * BLOCK_FRAMES


def parallel_plan(source: StemSource, workers: int) -> dict[str, int | bool]:
    """How a pass over ``source`` spreads over ``workers``: processes for a set on disk of at least
    :data:`PARALLEL_MIN_STEM_S` stem-seconds, threads below that and for a set in memory (which is
    not copied to workers). Keyword arguments for :func:`~faderwise.tools.workers.map_in_workers`."""
    big = len(source.names) * source.duration_s >= PARALLEL_MIN_STEM_S
    return {"workers": workers, "processes": isinstance(source, StemFiles) and big}


def segment_length(rate: int) -> int:
    """Samples per segment at ``rate``: :data:`SEGMENT_BLOCKS` blocks, the unit one worker measures."""
    return block_length(rate) * SEGMENT_BLOCKS


def segments_of(source: StemSource) -> list[tuple[int, int]]:
    """``(start, stop)`` in samples of each segment of ``source``, in order."""
    length = segment_length(source.rate)
    return [(start, min(start + length, source.n_samples)) for start in range(0, source.n_samples, length)]


@dataclass
class SegmentMeasures:
    """What one segment leaves of every signal of the family (mix, backings, stems: ``S`` signals).

    Attributes:
        first_hop: index of the first hop ``hop_energy`` holds.
        hop_energy: energy of the K-weighted signal in each hop the segment touches, per channel,
            shape ``(S, channels, hops)``; a hop cut by the segment's edge holds only its part.
        sum_squares: Σ samples² of each signal, shape ``(S,)``.
        peak: largest absolute sample of each signal, shape ``(S,)``.
        intersample_peak: largest absolute value between samples, shape ``(S,)`` (``nan``: not measured).
        band_power: band power per frame, shape ``(S, frames, bands)``.
    """

    first_hop: int
    hop_energy: np.ndarray
    sum_squares: np.ndarray
    peak: np.ndarray
    intersample_peak: np.ndarray
    band_power: np.ndarray


def measure_segment(source: StemSource, segment: tuple[int, int], *, true_peaks: bool, block: int,
                    family: Family) -> SegmentMeasures:
    """Measure samples ``segment[0] … segment[1]-1`` of every signal ``family`` builds from the stems of
    ``source`` (:mod:`faderwise.tools.family`), in blocks of ``block`` samples (a whole number of FFT
    frames: :func:`block_length`)."""
    start, stop = segment
    rate, channels, n = source.rate, source.channels, len(source.names)
    signals = family_size(family, n)
    context = true_peak_context(rate) if true_peaks else 0
    edges = hop_edges(source.n_samples, rate)
    first_hop, last_hop = _hops_touched(edges, start, stop)
    n_fft = frame_length(rate)
    frames = -(-(stop - start) // n_fft)
    bands = len(band_layout(rate)[0])
    found = SegmentMeasures(
        first_hop=first_hop,
        hop_energy=np.zeros((signals, channels, last_hop - first_hop)),
        sum_squares=np.zeros(signals),
        peak=np.zeros(signals),
        intersample_peak=np.zeros(signals) if true_peaks else np.full(signals, np.nan),
        band_power=np.zeros((signals, frames, bands)),
    )
    filters = [KWeighting(rate, channels) for _ in range(n)]
    with source.reader() as reader:
        if start > 0:
            preroll = int(round(PREROLL_S * rate))
            warm_from = max(start - preroll - preroll % 2, 0)
            for k_weighting, audio in zip(filters, reader.read(warm_from, start)):
                k_weighting(audio)
        for block_start in range(start, stop, block):
            block_stop = min(block_start + block, stop)
            held = reader.read(block_start - context, block_stop + context)
            parts = [audio[:, context : audio.shape[1] - context] for audio in held]
            weighted = [k(part) for k, part in zip(filters, parts)]
            _measure_block(found, family(parts), family(weighted), block_start, edges, first_hop)
            row = (block_start - start) // n_fft  # a block is a whole number of frames
            for index, levels in enumerate(band_levels_of_family(parts, rate, family=family)):
                found.band_power[index, row : row + levels.power.shape[0]] = levels.power
            if true_peaks:
                peaks = intersample_peaks_of_family(held, rate, family=family, margin=context)
                np.maximum(found.intersample_peak, [10.0 ** (peak / 20.0) for peak in peaks],
                           out=found.intersample_peak)
    return found


def _measure_block(found: SegmentMeasures, signals: Iterator[np.ndarray], weighted: Iterator[np.ndarray], start: int,
                   edges: np.ndarray, first_hop: int) -> None:
    """Add one block's sums, peaks and hop energies of every signal (and of the same signals
    K-weighted, ``weighted``) to ``found``."""
    for index, signal in enumerate(signals):
        found.sum_squares[index] += float(np.vdot(signal, signal))
        found.peak[index] = max(found.peak[index], peak_amplitude(signal))
    for index, signal in enumerate(weighted):
        first, energies = _hop_energy(signal, start, edges)
        if energies.shape[1]:
            found.hop_energy[index, :, first - first_hop : first - first_hop + energies.shape[1]] += energies


def _hops_touched(edges: np.ndarray, start: int, stop: int) -> tuple[int, int]:
    """The whole hops (``edges``: :func:`~faderwise.tools.loudness.hop_edges`) that samples
    ``start … stop-1`` reach into: hops ``first … last-1`` (none when ``first == last``)."""
    first = max(int(np.searchsorted(edges, start, side="right")) - 1, 0)
    return first, max(min(int(np.searchsorted(edges, stop, side="left")), len(edges) - 1), first)


def side_by_side(version_a: StemSource, version_b: StemSource, workers: int) -> bool:
    """Whether a pass over A and one over B should run at once, on two threads: there are
    ``workers``, and neither set is big enough for worker processes (:func:`parallel_plan`)."""
    return workers > 1 and not any(parallel_plan(version, workers)["processes"] for version in (version_a, version_b))


def _hop_energy(weighted: np.ndarray, start: int, edges: np.ndarray) -> tuple[int, np.ndarray]:
    """Energy per channel of the K-weighted block ``weighted`` (its first sample is sample
    ``start``) in each hop it touches: ``(first hop, (channels, hops))``."""
    channels, length = weighted.shape
    stop = start + length
    first, last = _hops_touched(edges, start, stop)
    if last == first:
        return first, np.zeros((channels, 0))
    bounds = np.clip(edges[first : last + 1], start, stop) - start
    lengths = np.diff(bounds)
    hop = int(lengths.max())
    whole = np.flatnonzero(lengths == hop)
    out = np.empty((channels, len(lengths)))
    lo, hi = int(whole[0]), int(whole[-1]) + 1
    if hi - lo == len(whole):
        # Consecutive whole hops (the rate divides by 10): one batched dot product per hop.
        frames = weighted[:, bounds[lo] : bounds[hi]].reshape(channels, hi - lo, 1, hop)
        out[:, lo:hi] = np.matmul(frames, frames.transpose(0, 1, 3, 2))[..., 0, 0]
        rest = [*range(lo), *range(hi, len(lengths))]
    else:
        rest = range(len(lengths))
    for index in rest:
        piece = weighted[:, bounds[index] : bounds[index + 1]].astype(np.float64)
        out[:, index] = np.einsum("ij,ij->i", piece, piece)
    return first, out


def analyze_stem_set(
    source: StemSource, *, on_progress: ProgressCallback | None = None, true_peaks: bool = True,
    workers: int = 1, label: str | None = None,
) -> StemSetAnalysis:
    """Measure every stem, every backing and the mix of ``source``, segment by segment.

    Args:
        source: the stems, in memory or on disk.
        on_progress: called as ``(done, total, what)`` after each segment.
        true_peaks: measure true peaks (a quarter of the time); when false they are ``nan``,
            "not measured" (the advisors do not need them).
        workers: processes measuring segments at once (threads for a set in memory, or one under
            :data:`PARALLEL_MIN_STEM_S`: :func:`parallel_plan`). The numbers do not depend on it.
        label: how progress lines name the set (default: none).
    """
    names = source.names
    progress = _Progress(source, segments_of(source), on_progress, label)
    measured = measure_signals(source, family=mix_backings_stems, true_peaks=true_peaks, workers=workers,
                               on_done=progress.step)
    mix_at, backing_at, stem_at = family_index(len(names))
    mix = measured[mix_at]
    stems: dict[str, StemMeasurement] = {}
    for index, name in enumerate(names):
        stem, backing = measured[stem_at[index]], measured[backing_at[index]]
        stems[name] = StemMeasurement(
            name=name,
            stem=stem,
            backing=backing,
            stem_to_mix_lu=level_difference(stem.integrated_lufs, mix.integrated_lufs),
            stem_to_backing_lu=level_difference(stem.integrated_lufs, backing.integrated_lufs),
        )
    return StemSetAnalysis(label=source.label, rate=source.rate, channels=source.channels,
                           duration_s=source.duration_s, mix=mix, stems=stems, warnings=source.warnings)


def measure_signals(source: StemSource, *, family: Family, true_peaks: bool, workers: int = 1,
                    on_done: Callable[[int], None] | None = None) -> list[Measurement]:
    """A :class:`Measurement` of every signal ``family`` builds from the stems of ``source``, in
    the family's order: the segments measured (over ``workers``, :func:`parallel_plan`; ``on_done``
    told of each as it finishes) and merged in order."""
    rate, channels = source.rate, source.channels
    results = map_in_workers(measure_segment, [(source, segment) for segment in segments_of(source)],
                             {"true_peaks": true_peaks, "block": block_length(rate), "family": family},
                             **parallel_plan(source, workers), on_done=on_done)
    edges = hop_edges(source.n_samples, rate)
    signals = family_size(family, len(source.names))
    hop_energy = np.zeros((signals, channels, len(edges) - 1))
    sum_squares, peak = np.zeros(signals), np.zeros(signals)
    intersample = np.zeros(signals) if true_peaks else np.full(signals, np.nan)
    for found in results:
        hop_energy[:, :, found.first_hop : found.first_hop + found.hop_energy.shape[2]] += found.hop_energy
        sum_squares += found.sum_squares
        np.maximum(peak, found.peak, out=peak)
        np.maximum(intersample, found.intersample_peak, out=intersample)
    power = np.concatenate([found.band_power for found in results], axis=1)
    centres, labels = band_layout(rate)
    n_fft = frame_length(rate)
    frame_times = (np.arange(power.shape[1]) * n_fft + n_fft / 2) / rate
    weights = channel_weights(channels)
    lengths = np.diff(edges).astype(np.float64)
    size = channels * source.n_samples
    return [_measurement(LoudnessBlocks(energy=weights @ hop_energy[index], lengths=lengths, rate=rate),
                         sum_squares[index] / size, peak[index], intersample[index],
                         BandLevels(centres_hz=centres, labels=labels, frame_times_s=frame_times, power=power[index],
                                    channels=channels))
            for index in range(signals)]


def _measurement(blocks: LoudnessBlocks, mean_square: float, peak: float, intersample_peak: float,
                 bands: BandLevels) -> Measurement:
    """A signal's :class:`Measurement` from what its segments left: ``mean_square`` and ``peak`` of
    its samples (full scale 1.0), ``intersample_peak`` as an amplitude (``nan``: not measured)."""
    integrated = blocks.integrated()
    rms = float(10.0 * np.log10(mean_square)) if mean_square > 0 else float("-inf")
    peak_db = amplitude_to_db(peak)
    true_peak = math.nan if math.isnan(intersample_peak) else max(peak_db, amplitude_to_db(intersample_peak))
    return Measurement(
        integrated_lufs=integrated,
        rms_dbfs=rms,
        sample_peak_dbfs=peak_db,
        true_peak_dbtp=true_peak,
        crest_db=crest_factor_db(peak_db, rms),
        loudness_range_lu=blocks.loudness_range(),
        short_term=blocks.short_term(),
        active=active_hops(blocks, integrated),
        bands=bands,
    )


def analysis_steps(source: StemSource) -> int:
    """How many steps (segments) :func:`analyze_stem_set` reports for ``source``."""
    return len(segments_of(source))


class _Progress:
    """Reports ``(done, total, what)`` to an optional callback as segments finish, in any order."""

    def __init__(self, source: StemSource, segments: list[tuple[int, int]], callback: ProgressCallback | None,
                 label: str | None) -> None:
        self._lengths = [stop - start for start, stop in segments]
        self._done = 0
        self._samples = 0
        self._callback = callback
        self._source = source
        self._label = f"{label}: " if label else ""

    def step(self, index: int) -> None:
        self._done += 1
        self._samples += self._lengths[index]
        if self._callback is not None:
            source = self._source
            self._callback(self._done, len(self._lengths),
                           f"{self._label}{len(source.names)} stems, {format_duration(self._samples / source.rate)} "
                           f"of {format_duration(source.duration_s)} measured")
