"""Rich tables of an analysis or an A/B comparison, for the terminal."""

from __future__ import annotations

import math

from rich.table import Table

from faderwise.tools.analysis import Measurement, StemSetAnalysis
from faderwise.tools.compare import Comparison

DASH = "—"


def format_level(value: float, *, silent_text: str = "silent") -> str:
    """A level in dB with one decimal; ``-inf`` → "silent", ``nan`` → "—"."""
    if math.isnan(value):
        return DASH
    if value == float("-inf"):
        return silent_text
    return f"{value:.1f}"


def format_difference(value: float) -> str:
    """A signed difference in dB/LU with one decimal; ``nan`` → "—"."""
    if not math.isfinite(value):
        return DASH
    return f"{round(value, 1) + 0.0:+.1f}"  # + 0.0 turns -0.0 into 0.0: no "-0.0" for a tiny negative


def _level_cells(measurement: Measurement) -> list[str]:
    return [
        format_level(measurement.integrated_lufs),
        format_level(measurement.rms_dbfs, silent_text=DASH),
        format_level(measurement.sample_peak_dbfs, silent_text=DASH),
        format_level(measurement.true_peak_dbtp, silent_text=DASH),
        format_level(measurement.crest_db),
    ]


def summary_line(analysis: StemSetAnalysis) -> str:
    """"path: 5 stems, 44100 Hz, 2 ch, 30.0 s"."""
    return (f"{analysis.label}: {len(analysis.stems)} stems, {analysis.rate} Hz, "
            f"{analysis.channels} ch, {analysis.duration_s:.1f} s")


def analysis_table(analysis: StemSetAnalysis) -> Table:
    """Stem, LUFS, RMS, peak, true peak, crest, level against the mix and against the backing."""
    table = Table(title=summary_line(analysis), title_justify="left")
    table.add_column("stem", style="bold")
    for header in ("LUFS", "RMS\ndBFS", "peak\ndBFS", "true peak\ndBTP", "crest\ndB", "vs mix\nLU",
                   "vs backing\nLU"):
        table.add_column(header, justify="right")
    for name, stem in analysis.stems.items():
        table.add_row(name, *_level_cells(stem.stem), format_difference(stem.stem_to_mix_lu),
                      format_difference(stem.stem_to_backing_lu))
    table.add_section()
    table.add_row("mix", *_level_cells(analysis.mix), DASH, DASH, style="italic")
    return table


def comparison_table(comparison: Comparison) -> Table:
    """A and B side by side: loudness, stem-to-backing ratio and true peak, with A − B."""
    table = Table(
        title=f"A  {summary_line(comparison.a)}\nB  {summary_line(comparison.b)}",
        title_justify="left",
        caption="A − B: positive means louder (or further forward) in your mix than in the reference",
        caption_justify="left",
    )
    table.add_column("stem", style="bold")
    # two groups, each headed by what it measures: loudness, then level against the backing
    for header in ("LUFS\nA", "LUFS\nB", "LUFS\nA − B", "vs backing\nA, LU", "vs backing\nB, LU",
                   "vs backing\nA − B", "true peak\nA dBTP", "true peak\nB dBTP"):
        table.add_column(header, justify="right")
    for name, stem in comparison.stems.items():
        table.add_row(
            name,
            format_level(stem.a.stem.integrated_lufs), format_level(stem.b.stem.integrated_lufs),
            format_difference(stem.loudness_diff_lu),
            format_difference(stem.a.stem_to_backing_lu), format_difference(stem.b.stem_to_backing_lu),
            format_difference(stem.stem_to_backing_diff_lu),
            format_level(stem.a.stem.true_peak_dbtp, silent_text=DASH),
            format_level(stem.b.stem.true_peak_dbtp, silent_text=DASH),
        )
    table.add_section()
    table.add_row(
        "mix", format_level(comparison.a.mix.integrated_lufs), format_level(comparison.b.mix.integrated_lufs),
        format_difference(comparison.mix_diff_lu), DASH, DASH, DASH,
        format_level(comparison.a.mix.true_peak_dbtp, silent_text=DASH),
        format_level(comparison.b.mix.true_peak_dbtp, silent_text=DASH), style="italic",
    )
    return table
