"""A trained model's card: what it is, the data and budget it was trained with, its loss curves
and its held-out accuracy against the baselines measured in the same evaluation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faderwise.advisor.alm import FIFTH_INPUTS
from faderwise.tools.input_files import LOG_LIMIT_BYTES, MANIFEST_LIMIT_BYTES, read_text_bounded
from faderwise.training.train import TrainConfig


def read_log(run: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """``(step, training loss)`` and ``(step, validation loss)`` from a run's ``log.jsonl``."""
    train: dict[int, float] = {}
    val: dict[int, float] = {}
    for line in read_text_bounded(run / "log.jsonl", limit=LOG_LIMIT_BYTES, what="a training log").splitlines():
        entry = json.loads(line)
        if "loss" in entry:
            train[entry["step"]] = entry["loss"]  # a step logged twice (a resume) keeps its last value
        if "val_loss" in entry:
            val[entry["step"]] = entry["val_loss"]
    return sorted(train.items()), sorted(val.items())


def plot_losses(runs: Mapping[str, Path], out: Path) -> Path:
    """Training loss (smoothed over 50 steps) and validation loss of each run, one PNG."""
    import numpy as np

    from faderwise.tools.plot import pyplot, save_figure

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(8, 4), dpi=110)
    for label, run in runs.items():
        train, val = read_log(run)
        steps, losses = np.array([s for s, _ in train]), np.array([v for _, v in train])
        window = min(50, len(losses))
        smoothed = np.convolve(losses, np.ones(window) / window, mode="valid")
        line, = axes.plot(steps[window - 1:], smoothed, label=f"{label} train (mean of {window})")
        axes.plot([s for s, _ in val], [v for _, v in val], "o--", color=line.get_color(), label=f"{label} val")
    axes.set_xlabel("step")
    axes.set_ylabel("loss on the answer tokens")
    axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return save_figure(figure, out)


def _scores_row(name: str, scores: Mapping[str, Any]) -> str:
    def cell(key: str, *, percent: bool = False) -> str:
        value = scores.get(key)
        return "—" if value is None else f"{100 * value:.0f} %" if percent else f"{value:.2f}"

    return (f"| {name} | {cell('mae_db')} | {cell('mae_moved_db')} | {cell('leave_accuracy', percent=True)} | "
            f"{cell('direction_accuracy', percent=True)} |")


TABLE_HEAD = ("| advisor | MAE, all stems (dB) | MAE, moved (dB) | leave accuracy | direction |\n"
              "| --- | ---: | ---: | ---: | ---: |\n")


def material_section(materials: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """One table per material: ``{material: {advisor: scores}}``, each advisor's scores a
    :meth:`~faderwise.evals.gain_error.Summary.to_json` on that material's items (the same items
    for every advisor of a table)."""
    parts = []
    for material, rows in materials.items():
        items = {scores.get("items") for scores in rows.values()}
        count = f"{items.pop()} items" if len(items) == 1 else "items"
        parts.append(f"**{material}** ({count}):\n\n" + TABLE_HEAD
                     + "".join(_scores_row(name, scores) + "\n" for name, scores in rows.items()))
    return "\n".join(parts)


PROCEDURAL_DATA = ("`faderwise synth training/recipes/small-data.yaml`: procedural songs (the demo generator, each song "
                   "with its own balance)")


def model_card(*, name: str, config: TrainConfig, evaluation: Mapping[str, Any], dataset_counts: Mapping[str, int],
               minutes: float, parameters: int, moved_share: float,
               others: Mapping[str, Mapping[str, Any]] | None = None, notes: str = "",
               data: str = PROCEDURAL_DATA, material: str = "procedural stems are not music a producer brings",
               materials: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> str:
    """The card's Markdown. ``others``: more advisors scored on the same items (the single-mix
    twin, the other representation); ``data``: where the items come from; ``material``: what the
    model is not for; ``materials``: its scores on other material (:func:`material_section`)."""
    scores = evaluation["model_scores"]
    per_stem = " · ".join(f"{stem} {mae:.2f}" for stem, mae in scores["per_stem_mae_db"].items())
    hears = ("the four clips of each stem's A/B bundle (target A, backing A, target B, backing B)"
             if config.variant == "differential" else "Version A's mix alone")
    if config.variant == "differential" and config.representation in FIFTH_INPUTS:
        hears += (f" and a fifth input, {FIFTH_INPUTS[config.representation].format(stem='stem')} "
                  f"(representation `{config.representation}`)")
    return f"""# {name}

**What it is:** a small model of the research architecture — Qwen2-Audio's Whisper-style audio encoder
feeding a Qwen2 language model — with {parameters / 1e6:.2f} M parameters, trained **from scratch** on CPU
with a byte-level BPE tokenizer trained in code. It is *not* a pretrained Qwen2-Audio and knows nothing
but this task on this data. It hears {hears}, 16 kHz mono clips of at most {config.size.get('clip_seconds', 30)} s,
and answers in the templated words of faderwise's explanations.

**Data:** {data}, Version A = B with 1–3 playing stems moved by 1–12 dB either way; each item
asks about one playing stem ({100 * moved_share:.0f} % of them moved, the others to be left alone); splits by
song: {', '.join(f'{k} {v}' for k, v in dataset_counts.items())} items.

**Training:** {config.steps} steps of one item each (AdamW, learning rate {config.learning_rate:g}, warm-up
{config.warmup_steps}, cosine to a tenth), loss on the answer tokens only, about {minutes:.0f} minutes on
CPU. Loss curves: `losses.png`.{(chr(10) + chr(10) + notes) if notes else ""}

**Held-out accuracy** on the {evaluation['items']} test items (songs never seen in training); the move
is the one the answer states for the target stem, parsed by `parse_moves`; an answer without one counts
as 0 dB ({100 * evaluation['no_move_share']:.0f} % of answers):

MAE over every stem of every pair, over the moved ones, leave accuracy (of the stems to leave,
the share left within 0.5 dB) and direction (moves of 1 dB or more):

{TABLE_HEAD}{_scores_row(name, scores)}
{"".join(_scores_row(other, other_scores) + chr(10) for other, other_scores in (others or {}).items())}{_scores_row("no change (0 dB)", evaluation['no_change'])}
{_scores_row("measured advisor, same clips", evaluation['measured_on_bundle_clips'])}

Per-stem MAE (dB): {per_stem}.
{(chr(10) + "**Per material**, on songs no model trained on:" + chr(10) + chr(10) + material_section(materials))
 if materials else ""}
**Use:** {"`faderwise advise A --reference B --advisor alm`" if config.variant == "differential" else
            "`faderwise advise A --advisor alm-single-mix`"} (or `…:FOLDER` for another model).
Not for real mixes beyond a demonstration: {material}.
"""


def _manifest_lines(dataset: Path) -> list[str]:
    """The lines of the dataset's ``manifest.jsonl`` (a regular file of at most
    :data:`~faderwise.tools.input_files.MANIFEST_LIMIT_BYTES`)."""
    return read_text_bounded(dataset / "manifest.jsonl", limit=MANIFEST_LIMIT_BYTES, what="a manifest").splitlines()


def moved_share(dataset: Path) -> float:
    """The share of items whose target stem was moved (the others should be left alone)."""
    records = [json.loads(line) for line in _manifest_lines(dataset)]
    return sum(abs(r["target_move_db"]) > 0 for r in records) / len(records)


def dataset_counts(dataset: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in _manifest_lines(dataset):
        split = json.loads(line)["split"]
        counts[split] = counts.get(split, 0) + 1
    return {split: counts.get(split, 0) for split in ("train", "val", "test")}
