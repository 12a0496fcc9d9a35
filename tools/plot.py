"""Short-term loudness over time, per stem, as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faderwise.tools.analysis import StemSetAnalysis
from faderwise.tools.compare import Comparison
from faderwise.tools.loudness import LoudnessCurve
from faderwise.tools.outputs import output_file, png_metadata

PLOT_FLOOR_LUFS = -60.0  # silence (−inf) is drawn at the floor


def save_figure(figure: object, out: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write a matplotlib figure as PNG through the guarded writer (never over an input; an
    existing file is replaced only with ``force`` and only if it is a faderwise plot) and close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    try:
        with output_file(out, force=force) as staging:
            figure.savefig(staging, format="png", metadata=png_metadata())  # type: ignore[attr-defined]
    finally:
        plt.close(figure)  # type: ignore[arg-type]
    return out


def png_bytes(figure: object) -> bytes:
    """A matplotlib figure as PNG bytes (with faderwise's metadata), written nowhere; closes it."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", metadata=png_metadata())  # type: ignore[attr-defined]
    finally:
        plt.close(figure)  # type: ignore[arg-type]
    return buffer.getvalue()


def pyplot():  # type: ignore[no-untyped-def]
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_stem_levels(
    out: str | os.PathLike[str], before: StemSetAnalysis, after: StemSetAnalysis,
    reference: StemSetAnalysis | None = None, *, force: bool = False,
) -> Path:
    """Bars of each stem's integrated loudness: A before, A after the moves, and B if given, as a PNG."""
    return save_figure(stem_levels_figure(before, after, reference), out, force=force)


def stem_levels_figure(before: StemSetAnalysis, after: StemSetAnalysis,
                       reference: StemSetAnalysis | None = None) -> object:
    """The figure of :func:`plot_stem_levels` (close it, or pass it to :func:`save_figure` / :func:`png_bytes`)."""
    plt = pyplot()
    names = list(before.stems)
    versions = [("A (before)", before), ("after", after)] + ([("B (reference)", reference)] if reference else [])
    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=110)
    width = 0.8 / len(versions)
    for index, (label, analysis) in enumerate(versions):
        levels = [analysis.stems[n].stem.integrated_lufs if n in analysis.stems else np.nan for n in names]
        shown = [level if np.isfinite(level) else PLOT_FLOOR_LUFS for level in levels]
        positions = np.arange(len(names)) + (index - (len(versions) - 1) / 2) * width
        axes.bar(positions, np.array(shown) - PLOT_FLOOR_LUFS, width, bottom=PLOT_FLOOR_LUFS, label=label)
    axes.set_xticks(np.arange(len(names)), names)
    axes.set_ylabel("integrated loudness (LUFS)")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title(f"stem loudness: {before.label}", fontsize=9)
    figure.tight_layout()
    return figure


def plot_short_term(out: str | os.PathLike[str], subject: StemSetAnalysis | Comparison, *,
                    force: bool = False) -> Path:
    """Write short-term loudness (3 s windows) of every stem and the mix over time to ``out``.

    For a :class:`Comparison`, Version B is drawn dashed over Version A in the same colour.
    """
    return save_figure(short_term_figure(subject), out, force=force)


def short_term_figure(subject: StemSetAnalysis | Comparison) -> object:
    """The figure of :func:`plot_short_term`."""
    plt = pyplot()
    analysis = subject.a if isinstance(subject, Comparison) else subject
    curves: list[tuple[str, LoudnessCurve, LoudnessCurve | None]] = []
    for name, stem in analysis.stems.items():
        reference = subject.stems[name].b.stem.short_term if isinstance(subject, Comparison) else None
        curves.append((name, stem.stem.short_term, reference))
    curves.append(("mix", analysis.mix.short_term,
                   subject.b.mix.short_term if isinstance(subject, Comparison) else None))

    figure, axes = plt.subplots(figsize=(11, 5.5), dpi=110)
    colours = plt.get_cmap("tab10")
    for index, (name, curve, reference) in enumerate(curves):
        colour = "black" if name == "mix" else colours(index % 10)
        width = 1.8 if name == "mix" else 1.3
        axes.plot(curve.times_s, np.maximum(curve.lufs, PLOT_FLOOR_LUFS), color=colour, linewidth=width,
                  label=f"{name} (A)" if reference is not None else name)
        if reference is not None:
            axes.plot(reference.times_s, np.maximum(reference.lufs, PLOT_FLOOR_LUFS), color=colour,
                      linewidth=width * 0.8, linestyle="--", label=f"{name} (B)")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("short-term loudness (LUFS, 3 s window)")
    axes.set_ylim(bottom=PLOT_FLOOR_LUFS)
    axes.grid(alpha=0.3)
    title = analysis.label
    if isinstance(subject, Comparison):
        title += f"  (solid: A; dashed: B = {subject.b.label})"
    axes.set_title(title, fontsize=9)
    axes.legend(loc="lower right", fontsize=8, ncol=2)
    figure.tight_layout()
    return figure
