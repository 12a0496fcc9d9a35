"""Applying gains and rendering a mix, block by block.

The mix is float: nothing clips inside faderwise. What would clip in a fixed-point export (samples
beyond full scale) is counted and reported, and an optional peak-safe trim brings the true peak
down to a ceiling — reported as a number, never applied silently.

Nothing holds a whole stem: :func:`render_mix` measures the mix's peaks in one pass over blocks
(:data:`RENDER_BLOCK_S`), and :func:`write_render` writes the adjusted stems and the mix in a second
pass, every file growing block by block inside the guarded writer's staging folder.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from faderwise.tools.analysis import parallel_plan, segments_of
from faderwise.tools.family import each, sum_signals
from faderwise.tools.json_files import write_json
from faderwise.tools.levels import amplitude_to_db, intersample_peaks_of_family, peak_amplitude, true_peak_context
from faderwise.tools.outputs import output_folder
from faderwise.tools.stem_files import StemSource
from faderwise.tools.stems import apply_gain
from faderwise.tools.workers import map_in_workers

DEFAULT_CEILING_DBTP = -1.0  # EBU R128 / streaming delivery ceiling
RENDER_BLOCK_S = 5.0
"""Seconds of every stem held at once while rendering."""
RENDER_SUBTYPE = "FLOAT"
"""32-bit float WAV: levels above full scale stay intact, so a render never clips on disk."""


@dataclass(frozen=True)
class RenderedMix:
    """A mix to render: the stems, the gains, and what the mix's peaks will be.

    Attributes:
        source: the stems the gains apply to.
        gains_db: the gain asked for each stem, dB (0 for stems not named).
        trim_db: gain applied to every stem on top by the peak-safe trim (0 or negative), dB.
        sample_peak_dbfs, true_peak_dbtp: peaks of the rendered mix.
        clipped_samples: samples beyond ±1.0, which a fixed-point export would clip.
        warnings: one line for each thing the user should know.
    """

    source: StemSource
    gains_db: Mapping[str, float]
    trim_db: float
    sample_peak_dbfs: float
    true_peak_dbtp: float
    clipped_samples: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def applied_db(self) -> dict[str, float]:
        """The gain each stem gets, dB: what was asked plus the trim."""
        return {name: gain + self.trim_db for name, gain in self.gains_db.items()}

    def read(self, start: int, stop: int) -> tuple[list[np.ndarray], np.ndarray]:
        """Samples ``start … stop-1`` of every adjusted stem (in the source's order) and of their
        mix, float32 ``(channels, stop − start)``."""
        return _adjusted_block(self.source, self.applied_db, start, stop)

    def to_json(self) -> dict[str, object]:
        return {
            "gains_db": {name: round(gain, 3) for name, gain in self.gains_db.items()},
            "trim_db": round(self.trim_db, 3),
            "sample_peak_dbfs": _finite_or_none(self.sample_peak_dbfs),
            "true_peak_dbtp": _finite_or_none(self.true_peak_dbtp),
            "clipped_samples": self.clipped_samples,
            "warnings": list(self.warnings),
        }


def _finite_or_none(value: float) -> float | None:
    return round(value, 3) if np.isfinite(value) else None


def _adjusted_block(source: StemSource, gains_db: Mapping[str, float], start: int,
                    stop: int) -> tuple[list[np.ndarray], np.ndarray]:
    stems = [apply_gain(audio, gains_db.get(name, 0.0)) for name, audio in zip(source.names, source.read(start, stop))]
    return stems, sum_signals(stems)


def render_blocks(source: StemSource, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each block a render reads from ``start`` to ``stop`` (default: all), in order."""
    block = max(int(RENDER_BLOCK_S * source.rate), 1)
    end = source.n_samples if stop is None else stop
    for first in range(start, end, block):
        yield first, min(first + block, end)


def mix_peaks(source: StemSource, gains_db: Mapping[str, float], *, workers: int = 1) -> tuple[float, float, int]:
    """The mix of ``source`` with ``gains_db`` applied: ``(sample peak dBFS, true peak dBTP,
    samples beyond full scale)``, measured block by block (each read with the true peak's context),
    a segment per task over ``workers`` processes (:func:`~faderwise.tools.analysis.parallel_plan`)."""
    found = map_in_workers(segment_peaks, [(source, dict(gains_db), start, stop) for start, stop in segments_of(source)],
                           {}, **parallel_plan(source, workers))
    peaks, between, clipped = zip(*found)
    sample_peak = amplitude_to_db(max(peaks))
    return sample_peak, max(sample_peak, amplitude_to_db(max(between))), sum(clipped)


def segment_peaks(source: StemSource, gains_db: Mapping[str, float], start: int, stop: int) -> tuple[float, float, int]:
    """Samples ``start … stop-1`` of the adjusted mix: ``(largest |sample|, largest |value between
    samples|, samples beyond ±1.0)``, as amplitudes."""
    context = true_peak_context(source.rate)
    peak, intersample, clipped = 0.0, 0.0, 0
    for first, last in render_blocks(source, start, stop):
        _, mix = _adjusted_block(source, gains_db, first - context, last + context)
        middle = mix[:, context : mix.shape[1] - context]
        peak = max(peak, peak_amplitude(middle))
        clipped += int(np.count_nonzero(np.abs(middle) > 1.0))
        between = intersample_peaks_of_family([mix], source.rate, family=each, margin=context)[0]
        intersample = max(intersample, 10.0 ** (between / 20.0))
    return peak, intersample, clipped


def render_mix(
    stem_set: StemSource,
    *,
    gains_db: Mapping[str, float] | None = None,
    peak_safe: bool = False,
    ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
    workers: int = 1,
) -> RenderedMix:
    """Plan the mix of ``stem_set`` with ``gains_db`` (stem → dB) applied, and measure its peaks.

    Args:
        stem_set: the stems, in memory or on disk.
        gains_db: gain per stem in dB; unnamed stems are left alone.
        peak_safe: if the mix's true peak is above ``ceiling_dbtp``, turn every stem down by the
            same amount so it lands on the ceiling (the balance is kept).
        ceiling_dbtp: the ceiling for ``peak_safe``, dBTP.
        workers: processes measuring the mix's peaks (:func:`mix_peaks`).

    Raises:
        StemSetError: a gain names a stem the set does not have.
    """
    gains = {name: 0.0 for name in stem_set.names}
    for name, gain in (gains_db or {}).items():
        gains[stem_set.resolve(name)] = float(gain)
    sample_peak, true_peak, clipped = mix_peaks(stem_set, gains, workers=workers)
    warnings: list[str] = []
    trim_db = 0.0
    if peak_safe and true_peak > ceiling_dbtp:
        trim_db = ceiling_dbtp - true_peak
        # A uniform gain moves every peak by the same dB; the ceiling is under full scale, so nothing clips.
        sample_peak, true_peak, clipped = sample_peak + trim_db, ceiling_dbtp, 0
        warnings.append(
            f"peak-safe trim: every stem lowered by {-trim_db:.2f} dB so the mix peaks at {ceiling_dbtp:.1f} dBTP"
        )
    if clipped:
        warnings.append(
            f"the mix peaks at {sample_peak:+.2f} dBFS: {clipped} samples above full scale would clip "
            f"in a fixed-point export (the float WAV keeps them); apply --peak-safe trims every stem by the same "
            f"{true_peak - ceiling_dbtp:.2f} dB to peak at {ceiling_dbtp:.0f} dBTP and keeps the balance"
        )
    return RenderedMix(source=stem_set, gains_db=gains, trim_db=trim_db, sample_peak_dbfs=sample_peak,
                       true_peak_dbtp=true_peak, clipped_samples=clipped, warnings=tuple(warnings))


def write_render(
    rendered: RenderedMix, out: str | os.PathLike[str], *, force: bool = False
) -> Path:
    """Write ``out/stems/<stem>.wav``, ``out/mix.wav`` (32-bit float) and ``out/render.json``
    block by block, through the guarded writer: ``out`` may not be, hold or lie inside any input
    (the stems, the reference, the advice…), is replaced only with ``force``, and appears whole or
    not at all (a disk that fills mid-render leaves nothing under ``out``)."""
    source = rendered.source
    with output_folder(out, kind="render", force=force, inputs=source.sources.values()) as folder:
        (folder / "stems").mkdir()
        targets = [folder / "stems" / f"{name}.wav" for name in source.names] + [folder / "mix.wav"]
        # The staging folder is the guarded unit: it becomes ``out`` whole, or is removed.
        with ExitStack() as files:
            handles = [files.enter_context(sf.SoundFile(path, "w", samplerate=source.rate, channels=source.channels,
                                                        subtype=RENDER_SUBTYPE)) for path in targets]
            for start, stop in render_blocks(source):
                stems, mix = rendered.read(start, stop)
                for handle, audio in zip(handles, [*stems, mix]):
                    _write_block(handle, audio, folder)
        write_json(folder / "render.json", {"source": source.label, "sample_rate": source.rate,
                                            **rendered.to_json()})
    return Path(out)


def _write_block(handle: sf.SoundFile, audio: np.ndarray, folder: Path) -> None:
    """Append ``(channels, samples)`` audio to an open file; a failed write (a full disk) becomes the
    :class:`OSError` the guarded writer turns into one line naming the output."""
    try:
        handle.write(audio.T)
    except (sf.LibsndfileError, RuntimeError, AssertionError) as exc:
        if shutil.disk_usage(folder).free < audio.nbytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from exc
        raise OSError(errno.EIO, str(exc) or os.strerror(errno.EIO)) from exc
