"""Short-term loudness over time, per stem, as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tools.analysis import StemSetAnalysis
from tools.compare import Comparison
from tools.loudness import LoudnessCurve
from tools.outputs import atomic_file

PLOT_FLOOR_LUFS = -60.0  # silence (−inf) is drawn at the floor


def plot_short_term(out: str | os.PathLike[str], subject: StemSetAnalysis | Comparison) -> Path:
    """Write short-term loudness (3 s windows) of every stem and the mix over time to ``out``.

    For a :class:`Comparison`, Version B is drawn dashed over Version A in the same colour.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_file(out) as tmp:
            figure.savefig(tmp, format="png")
    finally:
        plt.close(figure)
    return out
