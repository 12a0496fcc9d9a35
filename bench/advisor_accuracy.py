"""Benchmark: how well and how fast the advisors find known gain changes.

Accuracy: real MUSDB18 excerpts and procedural songs, 1-4 stems changed by ±1…±9 dB, with and
without each reference degradation (master offset, MP3/AAC 128 kbps, 80 ms delay, a reference that
ends early, a silent stem). Per advisor and degradation: per-stem MAE (dB) and direction accuracy
for |move| >= 1 dB. Targets (issue 3): measured MAE <= 0.2 dB clean, <= 0.5 dB degraded, 100 %
direction.

Speed: advice for a 3-minute 4-stem 44.1 kHz song on one core, against the analysis of one version
measured in the same run. Target: under 2 s.

    python bench/advisor_accuracy.py [--trials N]
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse  # noqa: E402
import time  # noqa: E402
from importlib import resources  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from faderwise.advisor import MeasuredAdvisor  # noqa: E402
from faderwise.evals.advisor_accuracy import DEGRADATIONS, evaluate, format_table, make_case, summaries  # noqa: E402
from faderwise.tools.analysis import analyze_stem_set  # noqa: E402
from faderwise.tools.demo_song import BAR_S, synthesize_demo_song  # noqa: E402
from faderwise.tools.stem_files import load_stem_set  # noqa: E402
from faderwise.tools.stems import StemSet  # noqa: E402

SHARED_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "musdb18-sample" / "Music Delta - 80s Rock.stem.mp4"


def materials() -> dict[str, StemSet]:
    found = {"musdb 80s rock": load_stem_set(SHARED_SAMPLE)}
    stempeg_sample = resources.files("stempeg") / "data" / "The Easton Ellises - Falcon 69.stem.mp4"
    found["musdb falcon 69"] = load_stem_set(Path(str(stempeg_sample)))
    for seed in (0, 1, 2):
        found[f"demo seed {seed}"] = synthesize_demo_song(seed=seed)
    return found


def four_stem_song(seconds: float) -> StemSet:
    song = synthesize_demo_song(bars=int(round(seconds / BAR_S)))
    return StemSet(stems={"drums": song.stems["drums"], "bass": song.stems["bass"], "vocals": song.stems["vocals"],
                          "other": song.stems["keys"] + song.stems["guitar"]}, rate=song.rate)


def timing() -> None:
    reference = four_stem_song(180.0)
    version_a = reference.with_gains({"vocals": 4.0, "drums": -3.0})
    advisor = MeasuredAdvisor()
    start = time.perf_counter()
    analysis = analyze_stem_set(version_a)
    one_analysis = time.perf_counter() - start
    start = time.perf_counter()
    prepared = advisor.prepare(version_a, reference)
    preparing = time.perf_counter() - start
    analysis_b = analyze_stem_set(prepared.version_b)
    start = time.perf_counter()
    advice = advisor.advise_analyses(prepared, analysis, analysis_b)
    advising = time.perf_counter() - start
    start = time.perf_counter()
    advisor.advise(version_a, reference)
    end_to_end = time.perf_counter() - start
    moves = ", ".join(f"{m.stem} {m.delta_db:+.2f} dB" for m in advice.moves)
    print(f"speed: 3-minute 4-stem song, 44.1 kHz stereo, one core (moves found: {moves})")
    print(f"  analysis of one version          {one_analysis:7.3f} s")
    print(f"  align B to A (cross-correlation) {preparing:7.3f} s")
    print(f"  advice from both analyses        {advising:7.3f} s  ({advising / one_analysis:.3f}x one analysis)")
    print(f"  end to end (align, measure A and B, advise) {end_to_end:7.3f} s  "
          f"({end_to_end / one_analysis:.2f}x one analysis; target under 2 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="cases per material and degradation")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    cases = [make_case(name, stems, degradation, rng)
             for name, stems in materials().items() for degradation in DEGRADATIONS for _ in range(args.trials)]
    table = summaries(evaluate(cases))
    print(f"accuracy: {len(cases)} cases ({args.trials} per material and degradation), seed {args.seed}, "
          f"{time.perf_counter() - start:.0f} s")
    print(format_table(table))
    measured = [s for (advisor, _), s in table.items() if advisor == "measured"]
    print(f"measured, all degradations: worst MAE {max(s.mae_db for s in measured):.3f} dB, "
          f"worst direction accuracy {100 * min(s.direction_accuracy for s in measured):.0f} %")
    print()
    timing()


if __name__ == "__main__":
    main()
