"""Measure a whole stem set: every stem, every stem's backing, and the mix.

The expensive linear steps run once per stem and are combined: the K-weighted mix is the sum of
the K-weighted stems and a K-weighted backing is the K-weighted mix minus its stem; band spectra
combine the same way. Non-linear measures (energies, peaks) are taken on each signal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faderwise.tools.activity import active_hops, regions_from_hops
from faderwise.tools.bands import BandLevels, band_levels, band_levels_of_family
from faderwise.tools.family import family_index, mix_backings_stems
from faderwise.tools.levels import (
    crest_factor_db,
    intersample_peaks_of_family,
    rms_dbfs,
    sample_peak_dbfs,
    true_peak_dbtp,
)
from faderwise.tools.loudness import HOP_S, LoudnessBlocks, LoudnessCurve, k_weight
from faderwise.tools.stems import StemSet

CLIP_DBFS = 0.0
"""A sample peak at or above full scale clips in any fixed-point export."""
TRUE_PEAK_CEILING_DBTP = -1.0
"""EBU R128 / streaming delivery ceiling: a true peak above it may clip after lossy encoding."""

ProgressCallback = Callable[[int, int, str], None]
"""Called as ``(done, total, next step)`` while a stem set is measured."""


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
    """Measure one float32 ``(channels, samples)`` signal."""
    return _measure(audio, rate, weighted=k_weight(audio, rate), bands=band_levels(audio, rate),
                    intersample_peak=true_peak_dbtp(audio, rate))


def _measure(
    audio: np.ndarray, rate: int, *, weighted: np.ndarray, bands: BandLevels, intersample_peak: float
) -> Measurement:
    """Measure a signal whose linear transforms (K-weighting, band spectra, oversampling) are done;
    ``intersample_peak`` is ``nan`` when true peaks were not asked for."""
    blocks = LoudnessBlocks.from_weighted(weighted, rate)
    integrated = blocks.integrated()
    rms = rms_dbfs(audio)
    peak = sample_peak_dbfs(audio)
    return Measurement(
        integrated_lufs=integrated,
        rms_dbfs=rms,
        sample_peak_dbfs=peak,
        true_peak_dbtp=max(peak, intersample_peak) if not math.isnan(intersample_peak) else math.nan,
        crest_db=crest_factor_db(peak, rms),
        loudness_range_lu=blocks.loudness_range(),
        short_term=blocks.short_term(),
        active=active_hops(blocks, integrated),
        bands=bands,
    )


def analyze_stem_set(
    stem_set: StemSet, *, on_progress: ProgressCallback | None = None, true_peaks: bool = True
) -> StemSetAnalysis:
    """Measure every stem, every backing and the mix of ``stem_set``.

    Linear transforms run once per stem and are combined into the mix and the backings
    (:mod:`faderwise.tools.family`); backings are formed one at a time, so memory stays at about two copies
    of the stems.

    Args:
        stem_set: the stems.
        on_progress: called as ``(done, total, what)`` after each step.
        true_peaks: measure true peaks (a quarter of the time); when false they are ``nan``,
            "not measured" (the advisors do not need them).
    """
    names = stem_set.names
    rate = stem_set.rate
    stems = [stem_set.stems[name] for name in names]
    progress = _Progress(analysis_steps(stem_set), on_progress)

    bands = band_levels_of_family(stems, rate, family=mix_backings_stems)
    progress.step()
    peaks = (intersample_peaks_of_family(stems, rate, family=mix_backings_stems) if true_peaks
             else [math.nan] * (2 * len(names) + 1))
    progress.step()
    weighted_stems = [k_weight(audio, rate) for audio in stems]
    progress.step()
    mix_at, backing_at, stem_at = family_index(len(names))
    mix_audio = stem_set.mix()
    weighted_mix = next(mix_backings_stems(weighted_stems))
    mix = _measure(mix_audio, rate, weighted=weighted_mix, bands=bands[mix_at], intersample_peak=peaks[mix_at])
    progress.step()
    measured: dict[str, StemMeasurement] = {}
    # One pair of buffers serves every backing: fresh 60 MB arrays per stem cost page faults.
    backing_audio, backing_weighted = np.empty_like(mix_audio), np.empty_like(weighted_mix)
    for index, name in enumerate(names):
        stem = _measure(stems[index], rate, weighted=weighted_stems[index],
                        bands=bands[stem_at[index]], intersample_peak=peaks[stem_at[index]])
        np.subtract(mix_audio, stems[index], out=backing_audio)
        np.subtract(weighted_mix, weighted_stems[index], out=backing_weighted)
        backing = _measure(backing_audio, rate, weighted=backing_weighted,
                           bands=bands[backing_at[index]], intersample_peak=peaks[backing_at[index]])
        measured[name] = StemMeasurement(
            name=name,
            stem=stem,
            backing=backing,
            stem_to_mix_lu=level_difference(stem.integrated_lufs, mix.integrated_lufs),
            stem_to_backing_lu=level_difference(stem.integrated_lufs, backing.integrated_lufs),
        )
        progress.step()
    return StemSetAnalysis(
        label=stem_set.label,
        rate=rate,
        channels=stem_set.channels,
        duration_s=stem_set.duration_s,
        mix=mix,
        stems=measured,
        warnings=stem_set.warnings,
    )


def analysis_steps(stem_set: StemSet) -> list[str]:
    """The steps :func:`analyze_stem_set` reports, in order."""
    return ["band levels", "true peaks", "K-weighting", "mix", *(f"{name} and its backing" for name in stem_set.names)]


class _Progress:
    """Reports ``(done, total, next step)`` to an optional callback."""

    def __init__(self, steps: list[str], callback: ProgressCallback | None) -> None:
        self._steps = steps
        self._done = 0
        self._callback = callback

    def step(self) -> None:
        self._done += 1
        if self._callback is not None:
            upcoming = self._steps[self._done] if self._done < len(self._steps) else "done"
            self._callback(self._done, len(self._steps), upcoming)
