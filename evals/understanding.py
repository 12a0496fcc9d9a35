"""How well the chat reads producers' requests: intent and argument accuracy on a labelled set.

A labelled request is one JSON line: ``text``, ``intent`` (one of
:data:`faderwise.agent.understand.INTENTS`), ``stems``, ``db`` (signed dB or null), ``except``,
``n``, ``detail`` and ``source`` (see ``bench/data/PRODUCER_REQUESTS.md``). Every request is read
in the demo song's session (:data:`SESSION_STEMS`, a reference loaded, the demo's pending moves
:data:`SESSION_PENDING`), as a producer trying faderwise first would be.

A request is *right* when the intent and every argument the label gives match: the stems and the
except-list as sets, dB within :data:`DB_TOLERANCE`, the count, and the detail where it is one
(which way, what of the mix, the plot, the DAW, the advisor, the path; "missing:WORD" when the
label says no stem holds WORD).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faderwise.agent.understand import Request, understand
from faderwise.tools.input_files import MANIFEST_LIMIT_BYTES, read_text_bounded

SESSION_STEMS = ("vocals", "drums", "bass", "keys", "guitar")
SESSION_PENDING = {"vocals": -4.0, "drums": 3.0}
DB_TOLERANCE = 0.05
DETAILED = ("which", "mix_level", "plot", "push", "undo_push", "advisor", "load", "reference")
"""Intents whose ``detail`` is part of the answer (an export's DAW is read from the project, not the words)."""


@dataclass(frozen=True)
class Labelled:
    text: str
    intent: str
    stems: tuple[str, ...]
    db: float | None
    except_stems: tuple[str, ...]
    n: int | None
    detail: str | None
    source: str

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Labelled:
        return cls(text=str(payload["text"]), intent=str(payload["intent"]), stems=tuple(payload.get("stems") or ()),
                   db=None if payload.get("db") is None else float(payload["db"]),
                   except_stems=tuple(payload.get("except") or ()), n=payload.get("n"),
                   detail=payload.get("detail"), source=str(payload.get("source", "")))


def read_labelled(path: Path) -> list[Labelled]:
    """The labelled requests of a JSON-lines file."""
    return [Labelled.from_json(json.loads(line)) for line in read_text_bounded(path, limit=MANIFEST_LIMIT_BYTES, what="a labelled request set").splitlines() if line.strip()]


def argument_errors(request: Request, label: Labelled) -> list[str]:
    """What ``request`` reads differently from ``label`` (empty: right), e.g. ``["stems ['bass'] ≠ ['drums']"]``."""
    if request.intent != label.intent:
        return [f"intent {request.intent} ≠ {label.intent}"]
    errors = []
    if set(request.stems) != set(label.stems):
        errors.append(f"stems {sorted(request.stems)} ≠ {sorted(label.stems)}")
    if set(request.except_stems) != set(label.except_stems):
        errors.append(f"except {sorted(request.except_stems)} ≠ {sorted(label.except_stems)}")
    if (request.db is None) != (label.db is None) or (
            request.db is not None and label.db is not None and abs(request.db - label.db) > DB_TOLERANCE):
        errors.append(f"db {request.db} ≠ {label.db}")
    if label.intent == "ranking" and request.n != label.n:
        errors.append(f"n {request.n} ≠ {label.n}")
    if isinstance(label.detail, str) and label.detail.startswith("missing:"):
        word = label.detail.removeprefix("missing:")
        if word not in request.missing:
            errors.append(f"missing {list(request.missing)} lacks {word!r}")
    elif label.intent in DETAILED and request.detail != label.detail:
        errors.append(f"detail {request.detail} ≠ {label.detail}")
    return errors


@dataclass(frozen=True)
class Scored:
    label: Labelled
    request: Request
    errors: tuple[str, ...]

    @property
    def intent_right(self) -> bool:
        return self.request.intent == self.label.intent

    @property
    def right(self) -> bool:
        return not self.errors

    @property
    def inverted(self) -> bool:
        """An apply or forget that would act on other stems than the producer asked (never allowed)."""
        return self.request.intent in ("apply", "forget") and (
            self.request.intent != self.label.intent or set(self.request.stems) != set(self.label.stems)
            or set(self.request.except_stems) != set(self.label.except_stems))


Reader = Callable[[str], Request]


def default_reader(matcher: Any | None = None) -> Reader:
    """Reads a text in the demo session (:func:`understand` with ``matcher``'s examples)."""
    def read(text: str) -> Request:
        return understand(text, SESSION_STEMS, matcher=matcher, pending=SESSION_PENDING)
    return read


def score(labelled: Sequence[Labelled], reader: Reader) -> tuple[list[Scored], float]:
    """Each request read and checked, and the mean time per request (ms)."""
    started = time.perf_counter()
    scored = []
    for item in labelled:
        request = reader(item.text)
        scored.append(Scored(item, request, tuple(argument_errors(request, item))))
    return scored, (time.perf_counter() - started) * 1000 / max(len(labelled), 1)


def per_intent(scored: Sequence[Scored]) -> dict[str, dict[str, float]]:
    """Per labelled intent: count, intent accuracy and full accuracy (intent and arguments), 0–1."""
    table: dict[str, dict[str, float]] = {}
    for intent in sorted({s.label.intent for s in scored}):
        rows = [s for s in scored if s.label.intent == intent]
        table[intent] = {"n": len(rows), "intent": sum(s.intent_right for s in rows) / len(rows),
                         "full": sum(s.right for s in rows) / len(rows)}
    return table


def summary(scored: Sequence[Scored]) -> dict[str, float]:
    """Overall intent and full accuracy (0–1) and the number of inverted applies or forgets."""
    return {"n": len(scored), "intent": sum(s.intent_right for s in scored) / max(len(scored), 1),
            "full": sum(s.right for s in scored) / max(len(scored), 1),
            "inverted": sum(s.inverted for s in scored)}
