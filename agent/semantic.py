"""Requests matched by meaning: the nearest labelled examples of what producers say.

The offline chat's grammar reads what it can read exactly (stems, dB amounts, paths, "except"
lists); what a message *asks for* is also voted on by the labelled examples nearest to it in a
sentence-embedding space, so "what's poking out?" lands where "which stem is too loud?" does.

The embedded default embedder is static (WordLlama's 256-dimensional token table, MIT, shipped
inside the ``wordllama`` wheel; read here with ``tokenizers`` and ``safetensors``, no torch, no
network): a message is the mean of its tokens' vectors, about 0.03 ms on one core. Any other
embedder with ``embed(texts) -> (n, d)`` unit rows plugs in (the benchmark compares MiniLM).

The examples (``request_examples.jsonl`` beside this module) are the tuning bank; the held-out
set the benchmark scores lives in ``bench/data`` and is never read here.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Protocol

import numpy as np

from faderwise.advisor.stem_names import mentions, missing_instruments
from faderwise.tools.errors import FaderwiseError

EXAMPLES_FILE = "request_examples.jsonl"
NEIGHBOURS = 7
"""How many nearest examples vote on a message's intent (each with its cosine similarity)."""


class EmbedderUnavailableError(FaderwiseError):
    """The sentence embedder's files are not installed (the message names the package)."""


class Embedder(Protocol):
    """Texts to unit vectors, ``(n, d)`` float32."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class StaticEmbedder:
    """WordLlama's static token embeddings (``l2_supercat_256``): mean of the token vectors, unit length."""

    name = "wordllama-l2-supercat-256"

    def __init__(self) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
            root = files("wordllama")
        except ImportError as exc:
            raise EmbedderUnavailableError(f"the request matcher needs the wordllama package ({exc})") from exc
        table = load_file(str(root / "weights" / "l2_supercat_256.safetensors"))["embedding.weight"]
        self.table = np.ascontiguousarray(table, dtype=np.float32)  # (32000, 256)
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        for index, encoding in enumerate(self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            ids = np.clip(np.asarray(encoding.ids, dtype=np.int64), 0, len(self.table) - 1)
            if len(ids):
                rows[index] = self.table[ids].mean(axis=0)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.maximum(norms, 1e-9)


@dataclass(frozen=True)
class Example:
    """One labelled request of the bank (see ``bench/data/PRODUCER_REQUESTS.md`` for the labels)."""

    text: str
    intent: str
    detail: str | None = None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Example:
        detail = payload.get("detail")
        return cls(text=str(payload["text"]), intent=str(payload["intent"]),
                   detail=str(detail) if isinstance(detail, str) and not detail.startswith("missing:") else None)


def load_examples(text: str | None = None) -> list[Example]:
    """The tuning bank shipped with faderwise (or the JSON lines ``text``)."""
    if text is None:
        text = (files("faderwise.agent") / EXAMPLES_FILE).read_text(encoding="utf-8")
    return [Example.from_json(json.loads(line)) for line in text.splitlines() if line.strip()]


def neutral(text: str, stem_names: Sequence[str]) -> str:
    """``text`` with what varies between requests of one kind made alike: stems and instruments
    become "instrument", numbers "2", so the examples vote on what is asked, not on what about."""
    lowered = text.casefold()
    found = mentions(lowered, stem_names)
    spans = [(m.start, m.end) for m in found]
    for word in missing_instruments(lowered, stem_names, found=found):
        spans += [(m.start(), m.end()) for m in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w-])", lowered)]
    for start, end in sorted(set(spans), reverse=True):
        lowered = lowered[:start] + "instrument" + lowered[end:]
    return re.sub(r"[+\-−]?\d+(?:[.,]\d+)?", "2", lowered)


@dataclass(frozen=True)
class Vote:
    """The examples' vote on one message: intents (with their detail, e.g. which way "off" means)
    by summed similarity, best first; ``best`` is the nearest example's similarity."""

    ranked: tuple[tuple[str, float], ...]
    details: Mapping[str, str | None]
    best: float

    @property
    def intent(self) -> str | None:
        return self.ranked[0][0] if self.ranked else None

    def share(self, intent: str) -> float:
        """The part of the vote ``intent`` got (0–1)."""
        total = sum(score for _, score in self.ranked)
        return next((score for name, score in self.ranked if name == intent), 0.0) / total if total else 0.0


class ExampleMatcher:
    """Nearest labelled examples (:data:`NEIGHBOURS`) by cosine similarity of their embeddings."""

    def __init__(self, examples: Sequence[Example], embedder: Embedder, *, stem_names: Sequence[str] = (
            "vocals", "drums", "bass", "keys", "guitar")) -> None:
        self.examples = list(examples)
        self.embedder = embedder
        self.vectors = embedder.embed([neutral(e.text, stem_names) for e in self.examples])

    def vote(self, text: str, stem_names: Sequence[str], *, leave_out: int | None = None) -> Vote:
        """How the nearest examples vote on ``text`` (``leave_out``: an example's index that may not vote,
        for leave-one-out scoring of the bank)."""
        query = self.embedder.embed([neutral(text, stem_names)])[0]
        similarity = self.vectors @ query
        if leave_out is not None:
            similarity[leave_out] = -np.inf
        order = np.argsort(-similarity)[:NEIGHBOURS]
        scores: dict[str, float] = {}
        details: dict[str, dict[str | None, float]] = {}
        for index in order:
            example, weight = self.examples[index], float(max(similarity[index], 0.0)) ** 2
            scores[example.intent] = scores.get(example.intent, 0.0) + weight
            per = details.setdefault(example.intent, {})
            per[example.detail] = per.get(example.detail, 0.0) + weight
        ranked = tuple(sorted(scores.items(), key=lambda kv: -kv[1]))
        return Vote(ranked=ranked, details={k: max(v, key=lambda d: v[d]) for k, v in details.items()},
                    best=float(similarity[order[0]]) if len(order) else 0.0)


_BUILT: list[ExampleMatcher] = []
_BUILDING = threading.Lock()


def default_matcher() -> ExampleMatcher:
    """The shipped bank under the static embedder, built once per process (about 1.2 s on 2 cores;
    :func:`warm_up` builds it in the background while the chat opens)."""
    with _BUILDING:
        if not _BUILT:
            _BUILT.append(ExampleMatcher(load_examples(), StaticEmbedder()))
        return _BUILT[0]


def warm_up() -> None:
    """Build :func:`default_matcher` on a background thread (a first message waits for it, never twice)."""
    def build() -> None:
        with contextlib.suppress(EmbedderUnavailableError):
            default_matcher()
    threading.Thread(target=build, name="faderwise-request-examples", daemon=True).start()
