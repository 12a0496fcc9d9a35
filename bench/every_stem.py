"""Benchmark: every advisor on held-out songs, every stem scored, next to changing nothing.

Reads the test split of a ``faderwise synth`` dataset (by default the rendered material of
``training/configs/rendered.yaml``: songs no model trained on) and has every advisor answer every
item: the measured advisor, the single-mix and equal-loudness baselines, the shipped small
audio-language models (``alm``, ``alm-single-mix``; needs the ``[alm]`` extra) with their answers
decoded in their training text's grammar and as free text (``free-text:alm``), and ``no-change``.
Prints per advisor and material: MAE over all stems, over the moved ones, leave accuracy, direction,
the share of answers that state no move, and the ratio of the MAE to changing nothing's, measured in
the same run (issue 28's target for ``alm``, also on material from generators the training never
used, ``training/configs/held-out-other.yaml``: at most 0.5).

    faderwise synth training/configs/rendered.yaml         # once
    faderwise synth training/configs/held-out-other.yaml   # once
    python bench/every_stem.py [DATASET[:SPLIT]]... [--limit N | --sample N] [--advisor NAME]...
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from faderwise.evals.advisors import make_advisor, read_items
from faderwise.evals.gain_error import summarise
from faderwise.evals.report import stem_error

REPO = Path(__file__).resolve().parents[1]
ADVISORS = ("measured", "single-mix", "equal-loudness", "alm", "free-text:alm", "alm-single-mix",
            "free-text:alm-single-mix", "no-change")
DATASETS = (f"{REPO / 'data' / 'synth-rendered'}:test", f"{REPO / 'data' / 'held-out-other'}:test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=DATASETS, metavar="DATASET[:SPLIT]",
                        help="faderwise synth folders and the split to score (default: the rendered test split and "
                        "the held-out material from other generators)")
    parser.add_argument("--limit", type=int, help="the first N items of each dataset")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="N items of each dataset, spread evenly over it (for advisors too slow for all)")
    parser.add_argument("--advisor", action="append", help=f"only these advisors (default: {', '.join(ADVISORS)})")
    args = parser.parse_args()
    items = []
    for spec in args.datasets:
        folder, _, split = spec.rpartition(":") if ":" in spec else (spec, "", "test")
        items += read_items(Path(folder), split=split or "test", limit=args.limit, sample=args.sample)
    materials = sorted({item.material for item in items})
    songs = len({(item.dataset, item.record["song"]) for item in items})
    moved = sum(abs(item.true_move_db) >= 0.5 for item in items)
    print(f"{len(items)} items ({moved} moved, {len(items) - moved} to leave) from {songs} held-out songs "
          f"({', '.join(materials)})")
    errors, seconds = {}, {}
    for name in args.advisor or ADVISORS:
        started = time.perf_counter()
        advisor = make_advisor(name)
        errors[name] = [stem_error(item, advisor.answer(item)) for item in items]
        seconds[name] = time.perf_counter() - started
    for material in materials:
        chosen = [index for index, item in enumerate(items) if item.material == material]
        floor = summarise([errors["no-change"][i] for i in chosen]).mae_db if "no-change" in errors else float("nan")
        print(f"\n{material} ({len(chosen)} items)")
        print(f"{'advisor':26} {'MAE all':>8} {'MAE moved':>10} {'leave':>7} {'direction':>10} {'no move':>8} "
              f"{'/ no change':>12} {'s/item':>7}")
        for name, found in errors.items():
            summary = summarise([found[i] for i in chosen])
            direction = "—" if math.isnan(summary.direction_accuracy) else f"{100 * summary.direction_accuracy:.0f} %"
            print(f"{name:26} {summary.mae_db:7.2f}  {summary.mae_moved_db:9.2f}  {100 * summary.leave_accuracy:5.0f} %"
                  f" {direction:>10} {100 * summary.no_move_share:6.0f} % {summary.mae_db / floor:11.2f}  "
                  f"{seconds[name] / len(items):6.3f}")


if __name__ == "__main__":
    main()
