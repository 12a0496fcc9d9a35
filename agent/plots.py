"""Plots for the chat: a PNG (matplotlib, via faderwise.tools.plot) and a text chart for the terminal.

The terminal charts are plain Unicode (bars and sparklines), so they show in any terminal, in a
transcript and in a snapshot test alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from faderwise.tools.outputs import output_folder
from faderwise.tools.plot import png_bytes, pyplot, save_figure, short_term_figure, stem_levels_figure

if TYPE_CHECKING:
    from faderwise.agent.workspace import Workspace

PlotKind = Literal["levels", "loudness"]
BAR_WIDTH = 36
SPARK_WIDTH = 48
SPARKS = "▁▂▃▄▅▆▇█"
MIN_SPARK_RANGE_DB = 6.0
BLOCKS = " ▏▎▍▌▋▊▉█"


def level_bars(levels: Mapping[str, Sequence[float]], labels: Sequence[str], *, width: int = BAR_WIDTH) -> str:
    """One bar per stem and version (``levels[stem][i]`` in LUFS for ``labels[i]``), drawn from a
    floor 6 dB under the quietest level; silence (−inf) draws no bar and says so."""
    finite = [v for values in levels.values() for v in values if math.isfinite(v)]
    if not finite:
        return "(every stem is silent)"
    floor, top = min(finite) - 6.0, max(finite)
    name_width = max(len(name) for name in levels)
    label_width = max(len(label) for label in labels)
    lines = [f"{'':{name_width}}  {'':{label_width}}  LUFS, bar from {floor:.0f} to {top:.0f}"]
    for name, values in levels.items():
        for index, (label, value) in enumerate(zip(labels, values)):
            shown_name = name if index == 0 else ""
            if not math.isfinite(value):
                lines.append(f"{shown_name:{name_width}}  {label:{label_width}}  {'':{width}}  silent")
                continue
            eighths = int(round((value - floor) / (top - floor) * width * 8)) if top > floor else width * 8
            bar = "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")
            lines.append(f"{shown_name:{name_width}}  {label:{label_width}}  {bar:{width}}  {value:6.1f}")
    return "\n".join(lines)


def sparkline(values: np.ndarray, *, low: float, high: float, width: int = SPARK_WIDTH) -> str:
    """``values`` (LUFS over time) squeezed to ``width`` cells, each the mean of its slice drawn
    as one of eight heights between ``low`` and ``high``; silent slices are blank."""
    if values.size == 0:
        return ""
    cells = []
    for chunk in np.array_split(values, min(width, values.size)):
        finite = chunk[np.isfinite(chunk)]
        if finite.size == 0:
            cells.append(" ")
            continue
        level = float(np.mean(finite))
        index = int(np.clip((level - low) / max(high - low, 1e-9) * (len(SPARKS) - 1), 0, len(SPARKS) - 1))
        cells.append(SPARKS[int(round(index))])
    return "".join(cells)


def write_plot(workspace: Workspace, kind: PlotKind) -> tuple[Path, str]:
    """Write the plot as a PNG in a new folder ``plot-<kind>-NN`` of the session's output folder;
    return its path and the terminal chart."""
    figure, chart = plot_figure(workspace, kind)

    def write(folder: Path) -> Path:
        with output_folder(folder, kind="plot") as staging:
            save_figure(figure, staging / f"{kind}.png")
        return folder / f"{kind}.png"
    try:
        path = workspace.write_new(f"plot-{kind}", write)
    finally:
        pyplot().close(figure)  # type: ignore[arg-type]
    workspace.record_output(path.parent)
    return path, chart


def plot_png(workspace: Workspace, kind: PlotKind) -> tuple[bytes, str]:
    """The plot as PNG bytes, written nowhere (an MCP client's image), and the terminal chart."""
    figure, chart = plot_figure(workspace, kind)
    return png_bytes(figure), chart


def plot_figure(workspace: Workspace, kind: PlotKind) -> tuple[object, str]:
    """The plot's matplotlib figure (the caller saves and closes it) and the terminal chart."""
    analysis_a = workspace.analysis_a()
    analysis_b = workspace.analysis_b() if workspace.version_b is not None else None
    if kind == "levels":
        before = workspace.original_a
        original = workspace.analysis_of(before.stems, (before.fingerprint,)) if before and workspace.applied else None
        labels = ["A"] + (["B"] if analysis_b else [])
        levels = {}
        for name, stem in analysis_a.stems.items():
            row = [stem.stem.integrated_lufs]
            if analysis_b is not None:
                paired = workspace.prepared().pairs.get(name)
                row.append(analysis_b.stems[paired].stem.integrated_lufs if paired else -math.inf)
            levels[name] = row
        return stem_levels_figure(original or analysis_a, analysis_a, analysis_b), level_bars(levels, labels)
    subject = workspace.comparison() if analysis_b is not None else analysis_a
    curves = {name: [stem.stem.short_term.lufs] for name, stem in analysis_a.stems.items()}
    if analysis_b is not None:
        for name, paired in workspace.prepared().pairs.items():
            curves[name].append(analysis_b.stems[paired].stem.short_term.lufs)
    labels = ["A", "B"] if analysis_b is not None else ["A"]
    width = max(len(name) for name in curves) + 2
    lines = [f"{'':{width}}  short-term loudness over 0–{analysis_a.duration_s:.0f} s; each stem on its own scale, "
             "shared by A and B"]
    for name, rows in curves.items():
        finite = np.concatenate([row[np.isfinite(row)] for row in rows])
        if finite.size == 0:
            lines.append(f"{name + ' A':{width}}  (silent)")
            continue
        # per stem, from its 10th percentile (fades and tails would stretch the scale) to its loudest, and
        # at least MIN_SPARK_RANGE_DB wide: a 3 dB difference between A and B is a visible step
        high = float(np.max(finite))
        low = min(float(np.percentile(finite, 10)), high - MIN_SPARK_RANGE_DB)
        for label, row in zip(labels, rows):
            scale = f"  {low:.1f} to {high:.1f} LUFS" if label == "A" else ""
            lines.append(f"{name + ' ' + label:{width}}  {sparkline(row, low=low, high=high)}{scale}")
    return short_term_figure(subject), "\n".join(lines)
