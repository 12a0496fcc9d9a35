"""Benchmark: the shipped scripts with a language model, turn by turn: what passes, and how much of
it the model did.

Plays every ``evals/scripts/*.yaml`` with each ``--llm`` spec (``OPENAI_BASE_URL`` names the
OpenAI-compatible server: llama.cpp's, llama-cpp-python's, vLLM, LM Studio; ``ollama:MODEL`` needs
none) and prints one row per spec: turns passed, numbers no tool returned left in a reply (the
guard's misses: 0 is the bar), replies the built-in planner wrote because the guard kept the
model's, whether the session switched to routed mode, and the seconds per turn. ``--standin``
plays against the stand-in server of the tests instead, with one of its model behaviours.

    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python bench/local_llm.py --llm openai:qwen2.5-0.5b-instruct
    python bench/local_llm.py --standin prose-inventor --llm openai:standin
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from faderwise.agent.llm import parse_llm_spec
from faderwise.agent.script import read_script, run_script

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def standin(persona: str | None) -> Iterator[None]:
    """The tests' stand-in server with ``persona``, as OPENAI_BASE_URL, or nothing."""
    if persona is None:
        yield
        return
    sys.path.insert(0, str(REPO / "tests"))
    from llm_standin import PERSONAS, StandInServer  # the tests' module, not the library's

    with StandInServer(PERSONAS[persona]) as state:
        os.environ["OPENAI_BASE_URL"] = state.url
        os.environ.setdefault("OPENAI_API_KEY", "sk-standin-0123456789")
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", action="append", required=True, help="a model spec (repeatable)")
    parser.add_argument("--standin", help="play against the tests' stand-in server with this behaviour")
    parser.add_argument("--scripts", type=Path, nargs="*", default=sorted((REPO / "evals" / "scripts").glob("*.yaml")))
    args = parser.parse_args()
    print("| model | turns passed | numbers no tool returned | replies the planner wrote | routed | s/turn |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for spec in args.llm:
        turns = passed = ungrounded = planner = 0
        routed = False
        started = time.perf_counter()
        for script in args.scripts:
            with standin(args.standin), tempfile.TemporaryDirectory() as out:
                records = run_script(read_script(script), llm=parse_llm_spec(spec), output_dir=Path(out))
            for record in records:
                turns += 1
                passed += record["passed"]
                ungrounded += len(record["ungrounded"])
                planner += "(faderwise: " in record["assistant"]
                routed |= bool(record["notices"])
                for failure in record["failures"]:
                    print(f"  {script.stem} turn {record['turn']}: {failure[:160]}", file=sys.stderr)
        seconds = (time.perf_counter() - started) / max(turns, 1)
        print(f"| {spec} | {passed}/{turns} | {ungrounded} | {planner} | {'yes' if routed else 'no'} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
