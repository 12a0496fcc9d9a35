"""Benchmark: how a saved chat session grows with the length of the conversation.

Scripted conversations of 100, 500 and 2000 turns on the demo song (offline planner, a saved
session in a SQLite database, as ``faderwise chat`` keeps it), each in a fresh process. For each:
the time per turn, the peak memory (RSS) above the session's start, and the size of the sessions
database, each divided by the number of turns. Linear growth shows as per-turn figures that stay
flat (or fall) as the conversation gets longer; the quadratic growth issue 12 measured (1.5 GB at
500 turns, 16 GB past 2000) would show as per-turn figures that grow with the turns. The ratio
printed last is the 2000-turn per-turn cost over the 100-turn one (1.0 = linear).

    python bench/session_growth.py [--turns 100 500 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent("""
    import json, os, resource, sys, time
    from pathlib import Path
    from faderwise.agent.config import Config
    from faderwise.agent.launch import open_chat
    from faderwise.agent.store import SessionStore
    from faderwise.tools.demo_song import write_demo

    turns, root = int(sys.argv[1]), Path(sys.argv[2])
    demo = write_demo(root / "demo")
    store = SessionStore(root / "sessions.sqlite")
    opened = open_chat(stems=demo / "version_a", reference=demo / "version_b", llm=None, resume=False, name="bench",
                       config=Config(), store=store)
    questions = ["overview", "what about the bass?", "why?", "how much exactly?", "compare", "which stem is off?"]
    list(opened.session.send("overview"))  # the first analysis is not part of the growth
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    for number in range(turns):
        list(opened.session.send(questions[number % len(questions)]))
    seconds = time.perf_counter() - started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store.close()
    size = sum(p.stat().st_size for p in root.glob("sessions.sqlite*"))
    print(json.dumps({"turns": turns, "seconds": seconds, "rss_growth_kb": rss_peak - rss_start, "db_bytes": size}))
""")


def run(turns: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run([sys.executable, "-c", CHILD, str(turns), tmp], capture_output=True, text=True,
                                check=True, env={**os.environ, "FADERWISE_DATA_DIR": tmp})
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[100, 500, 2000])
    args = parser.parse_args()
    rows = [run(turns) for turns in args.turns]
    print(f"{'turns':>6} {'s/turn':>8} {'RSS growth':>11} {'KB/turn':>8} {'database':>9} {'KB/turn':>8}")
    for row in rows:
        turns = row["turns"]
        print(f"{turns:>6} {row['seconds'] / turns * 1000:>6.1f}ms {row['rss_growth_kb'] / 1024:>8.1f} MB "
              f"{row['rss_growth_kb'] / turns:>8.1f} {row['db_bytes'] / 1e6:>6.2f} MB {row['db_bytes'] / 1024 / turns:>8.1f}")
    first, last = rows[0], rows[-1]
    for key, what in (("seconds", "time"), ("db_bytes", "database"), ("rss_growth_kb", "memory")):
        ratio = (last[key] / last["turns"]) / max(first[key] / first["turns"], 1e-9)
        print(f"{what} per turn at {last['turns']} turns / at {first['turns']} turns: {ratio:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
