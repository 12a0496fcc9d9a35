"""Benchmark: every advisor on held-out songs, every stem scored, next to changing nothing.

Reads the test split of a ``faderwise synth`` dataset (by default the rendered material of
``training/configs/rendered.yaml``: songs no model trained on) and has every advisor answer every
item: the measured advisor, the single-mix and equal-loudness baselines, the shipped small
audio-language models (``alm``, ``alm-single-mix``; needs the ``[alm]`` extra) and ``no-change``.
Prints per advisor and material: MAE over all stems, over the moved ones, leave accuracy, and the
ratio of the MAE to changing nothing's, measured in the same run (issue 13's target for ``alm``:
at most 0.5, with leave accuracy of 80 % or more).

    faderwise synth training/configs/rendered.yaml   # once
    python bench/every_stem.py [DATASET] [--limit N] [--advisor NAME]...
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from faderwise.evals.advisors import make_advisor, read_items
from faderwise.evals.gain_error import summarise
from faderwise.evals.report import stem_error

REPO = Path(__file__).resolve().parents[1]
ADVISORS = ("measured", "single-mix", "equal-loudness", "alm", "alm-single-mix", "no-change")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, nargs="?", default=REPO / "data" / "synth-rendered")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--advisor", action="append", help="only these advisors (default: all six)")
    args = parser.parse_args()
    items = read_items(args.dataset, split=args.split, limit=args.limit)
    materials = sorted({item.material for item in items})
    songs = len({item.record["song"] for item in items})
    moved = sum(abs(item.true_move_db) >= 0.5 for item in items)
    print(f"{len(items)} items ({moved} moved, {len(items) - moved} to leave) from {songs} held-out songs of "
          f"{args.dataset} ({', '.join(materials)})")
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
        print(f"{'advisor':16} {'MAE all':>8} {'MAE moved':>10} {'leave':>7} {'/ no change':>12} {'s/item':>7}")
        for name, found in errors.items():
            summary = summarise([found[i] for i in chosen])
            print(f"{name:16} {summary.mae_db:7.2f}  {summary.mae_moved_db:9.2f}  {100 * summary.leave_accuracy:5.0f} %"
                  f" {summary.mae_db / floor:11.2f}  {seconds[name] / len(items):6.3f}")


if __name__ == "__main__":
    main()
