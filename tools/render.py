"""Applying gains and rendering a mix.

The mix is float: nothing clips inside faderwise. What would clip in a fixed-point export (samples
beyond full scale) is counted and reported, and an optional peak-safe trim brings the true peak
down to a ceiling — reported as a number, never applied silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faderwise.tools.audio_io import write_audio
from faderwise.tools.json_files import write_json
from faderwise.tools.levels import sample_peak_dbfs, true_peak_dbtp
from faderwise.tools.outputs import output_folder
from faderwise.tools.stems import StemSet, apply_gain

DEFAULT_CEILING_DBTP = -1.0  # EBU R128 / streaming delivery ceiling


@dataclass(frozen=True)
class RenderedMix:
    """A rendered mix and what happened on the way.

    Attributes:
        stems: the stems after the gains (and the trim, if any).
        mix: float32 ``(channels, samples)``.
        gains_db: the gain applied to each stem, dB (0 for stems not named).
        trim_db: gain applied to every stem by the peak-safe trim (0 or negative), dB.
        sample_peak_dbfs, true_peak_dbtp: peaks of the rendered mix.
        clipped_samples: samples beyond ±1.0, which a fixed-point export would clip.
        warnings: one line for each thing the user should know.
    """

    stems: StemSet
    mix: np.ndarray
    gains_db: Mapping[str, float]
    trim_db: float
    sample_peak_dbfs: float
    true_peak_dbtp: float
    clipped_samples: int
    warnings: tuple[str, ...] = field(default=())

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


def render_mix(
    stem_set: StemSet,
    *,
    gains_db: Mapping[str, float] | None = None,
    peak_safe: bool = False,
    ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
) -> RenderedMix:
    """Apply ``gains_db`` (stem → dB) and sum the stems.

    Args:
        stem_set: the stems.
        gains_db: gain per stem in dB; unnamed stems are left alone.
        peak_safe: if the mix's true peak is above ``ceiling_dbtp``, turn every stem down by the
            same amount so it lands on the ceiling (the balance is kept).
        ceiling_dbtp: the ceiling for ``peak_safe``, dBTP.

    Raises:
        StemSetError: a gain names a stem the set does not have.
    """
    gains = {name: 0.0 for name in stem_set.names}
    for name, gain in (gains_db or {}).items():
        gains[stem_set.resolve(name)] = float(gain)
    adjusted = stem_set.with_gains(gains)
    mix = adjusted.mix()
    true_peak = true_peak_dbtp(mix, stem_set.rate)
    warnings: list[str] = []
    trim_db = 0.0
    if peak_safe and true_peak > ceiling_dbtp:
        trim_db = ceiling_dbtp - true_peak
        adjusted = adjusted.with_gains({name: trim_db for name in adjusted.names})
        mix = apply_gain(mix, trim_db)
        true_peak = ceiling_dbtp
        warnings.append(
            f"peak-safe trim: every stem lowered by {-trim_db:.2f} dB so the mix peaks at {ceiling_dbtp:.1f} dBTP"
        )
    clipped = int(np.count_nonzero(np.abs(mix) > 1.0))
    sample_peak = sample_peak_dbfs(mix)
    if clipped:
        warnings.append(
            f"the mix peaks at {sample_peak:+.2f} dBFS: {clipped} samples above full scale would clip "
            f"in a fixed-point export (the float WAV keeps them); apply --peak-safe trims every stem by the same "
            f"{true_peak - ceiling_dbtp:.2f} dB to peak at {ceiling_dbtp:.0f} dBTP and keeps the balance"
        )
    return RenderedMix(stems=adjusted, mix=mix, gains_db=gains, trim_db=trim_db,
                       sample_peak_dbfs=sample_peak, true_peak_dbtp=true_peak,
                       clipped_samples=clipped, warnings=tuple(warnings))


def write_render(
    rendered: RenderedMix, out: str | os.PathLike[str], *, force: bool = False
) -> Path:
    """Write ``out/stems/<stem>.wav``, ``out/mix.wav`` (32-bit float) and ``out/render.json``
    through the guarded writer: ``out`` may not be, hold or lie inside any input (the stems, the
    reference, the advice…), is replaced only with ``force``, and appears whole or not at all."""
    stem_set = rendered.stems
    with output_folder(out, kind="render", force=force, inputs=stem_set.sources.values()) as folder:
        (folder / "stems").mkdir()
        for name, audio in stem_set.stems.items():
            write_audio(folder / "stems" / f"{name}.wav", audio, stem_set.rate)
        write_audio(folder / "mix.wav", rendered.mix, stem_set.rate)
        write_json(folder / "render.json", {"source": stem_set.label, "sample_rate": stem_set.rate,
                                            **rendered.to_json()})
    return Path(out)
