"""Benchmark: the chat agent on the offline planner, on one core.

1. The first "overview" turn on a 5-stem, 3-minute, 44.1 kHz stereo song with a reference
   (Version A = B with vocals +4 dB, drums -3 dB): loading both sets, aligning, measuring A and
   B, comparing and advising. Target from issue 4: < 3 s. Baseline in the same run: measuring
   A and B with ``analyze_stem_set`` alone (what any analysis must cost).
2. Turn latency after that first analysis, on the demo song: "which stem is off", "what about
   the bass", "why", "how much", "compare". Target: < 1 s each. Baseline: the measured advisor's
   advice from cached analyses (``advise_analyses``), the least a turn can do.

Unlike bench/analyze.py this one is not pinned to one core: it measures what the producer
waits for (a 3-minute 5-stem song is measured in one process; longer sessions use every core,
see bench/session_scale.py). It prints the cores it had.

    python bench/agent_turn.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import soundfile as sf
from langgraph.checkpoint.memory import InMemorySaver

from faderwise.advisor.measured import MeasuredAdvisor
from faderwise.agent.llm import LLMSpec
from faderwise.agent.session import AgentSession
from faderwise.agent.workspace import Workspace
from faderwise.tools.analysis import analyze_stem_set
from faderwise.tools.demo_song import BAR_S, DEMO_PERTURBATION_DB, synthesize_demo_song, write_demo
from faderwise.tools.stem_files import load_stem_set

SONG_S = 180.0
FOLLOW_UPS = ("which stem is furthest off?", "what about the bass?", "why?", "how much exactly?", "compare")


def write_long_song(folder: Path) -> tuple[Path, Path]:
    song = synthesize_demo_song(bars=int(round(SONG_S / BAR_S)))
    for version, stem_set in (("version_a", song.with_gains(DEMO_PERTURBATION_DB)), ("version_b", song)):
        (folder / version).mkdir(parents=True)
        for name, audio in stem_set.stems.items():
            sf.write(folder / version / f"{name}.flac", audio.T, stem_set.rate, subtype="PCM_24")
    return folder / "version_a", folder / "version_b"


def new_session(stems: Path, reference: Path, out: Path) -> AgentSession:
    workspace = Workspace(output_dir=out)
    workspace.load_pair(stems, reference)
    return AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="bench")


def timed(run) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"cores available: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stems, reference = write_long_song(root / "long")
        loads, first_turns, baselines = [], [], []
        for repeat in range(args.repeats):
            baselines.append(timed(lambda: (analyze_stem_set(load_stem_set(stems)),
                                            analyze_stem_set(load_stem_set(reference)))))
            started = time.perf_counter()
            session = new_session(stems, reference, root / f"out-{repeat}")
            loads.append(time.perf_counter() - started)
            first_turns.append(timed(lambda session=session: list(session.send("overview"))))
        load, first, baseline = min(loads), min(first_turns), min(baselines)
        n_stems = len(load_stem_set(stems).names)
        print(f"{SONG_S / 60:.0f}-minute {n_stems}-stem 44.1 kHz stereo song with its reference:")
        print(f"  first overview turn (align, measure A and B, compare, advise): {first:.2f} s "
              f"(target < 3 s: {'met' if first < 3 else 'NOT met'})")
        print(f"  loading A and B when the chat opens: {load:.2f} s; with the first turn {load + first:.2f} s")
        print(f"  baseline, loading and measuring A and B as faderwise analyze does (one after the other, with "
              f"true peaks): {baseline:.2f} s; the chat's load + first turn is {(load + first) / baseline:.2f}x that")

        demo = write_demo(root / "demo")
        session = new_session(demo / "version_a", demo / "version_b", root / "out-demo")
        list(session.send("overview"))
        workspace = session.workspace
        advisor = MeasuredAdvisor()
        floor = min(timed(lambda: advisor.advise_analyses(workspace.prepared(), workspace.analysis_a(),
                                                          workspace.analysis_b())) for _ in range(args.repeats))
        for text in FOLLOW_UPS:
            latency = min(timed(lambda text=text: list(session.send(text))) for _ in range(args.repeats))
            print(f"turn {text!r}: {latency * 1000:.0f} ms (target < 1 s: {'met' if latency < 1 else 'NOT met'}); "
                  f"{latency / floor:.1f}x the advice from cached analyses ({floor * 1000:.1f} ms)")
        print(f"audio measured during the follow-ups: {workspace.measure_count - 2} times (0 expected)")


if __name__ == "__main__":
    main()
