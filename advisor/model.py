"""Advice: the one output format of every advisor.

A :class:`GainMove` is a change to apply to one stem of Version A: ``delta_db`` positive raises
the fader, negative lowers it, and ``low_db``/``high_db`` bound the uncertainty. ``global_offset_db``
is a change for the whole mix (the master fader), kept apart from the balance moves. The JSON form
is described by :data:`ADVICE_SCHEMA` (JSON Schema draft 2020-12).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from faderwise.tools.errors import FaderwiseError
from faderwise.tools.input_files import ADVICE_LIMIT_BYTES
from faderwise.tools.json_files import is_number, read_json
from faderwise.tools.outputs import note_input

ADVICE_FORMAT = "faderwise.advice/1"


class AdviceFormatError(FaderwiseError, ValueError):
    """An advice file or payload that does not follow :data:`ADVICE_SCHEMA`."""


@dataclass(frozen=True)
class GainMove:
    """Apply ``delta_db`` (dB, positive = raise) to ``stem`` in Version A; the right amount is
    believed to lie in ``[low_db, high_db]``."""

    stem: str
    delta_db: float
    low_db: float
    high_db: float

    def __post_init__(self) -> None:
        for name in ("delta_db", "low_db", "high_db"):  # numpy scalars in, plain floats out (JSON, msgpack)
            object.__setattr__(self, name, float(getattr(self, name)))
        values = (self.delta_db, self.low_db, self.high_db)
        if not all(math.isfinite(v) for v in values):
            raise AdviceFormatError(f"move for {self.stem!r}: delta and range must be finite, got {values}")
        if not self.low_db <= self.delta_db <= self.high_db:
            raise AdviceFormatError(
                f"move for {self.stem!r}: range [{self.low_db}, {self.high_db}] dB does not hold {self.delta_db} dB"
            )

    @classmethod
    def exact(cls, stem: str, delta_db: float) -> GainMove:
        return cls(stem=stem, delta_db=delta_db, low_db=delta_db, high_db=delta_db)

    def to_json(self) -> dict[str, object]:
        return {"stem": self.stem, "delta_db": round(self.delta_db, 3),
                "low_db": round(self.low_db, 3), "high_db": round(self.high_db, 3)}


@dataclass(frozen=True)
class Advice:
    """Moves, the explanation a producer reads, and the measurements behind it.

    Attributes:
        advisor: which advisor wrote it ("measured", "single-mix", "equal-loudness", …).
        moves: one move per stem that should change; stems not named are left as they are.
        text: the explanation.
        evidence: measured facts the text cites, JSON-ready (per stem and overall).
        global_offset_db: change for the whole mix (master), dB, positive = louder; 0 if none.
    """

    advisor: str
    moves: tuple[GainMove, ...]
    text: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    global_offset_db: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "global_offset_db", float(self.global_offset_db))

    def move_for(self, stem: str) -> GainMove | None:
        return next((move for move in self.moves if move.stem == stem), None)

    def gains_db(self) -> dict[str, float]:
        """Stem → delta_db, for rendering."""
        return {move.stem: move.delta_db for move in self.moves}

    def to_json(self) -> dict[str, object]:
        return {
            "format": ADVICE_FORMAT,
            "advisor": self.advisor,
            "moves": [move.to_json() for move in self.moves],
            "global_offset_db": round(self.global_offset_db, 3),
            "text": self.text,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_json(cls, payload: object, *, source: str = "advice") -> Advice:
        """Read advice written by :meth:`to_json` (or by hand, following :data:`ADVICE_SCHEMA`)."""
        if not isinstance(payload, dict):
            raise AdviceFormatError(f"{source}: expected a JSON object, got {type(payload).__name__}")
        missing = [key for key in ("advisor", "moves") if key not in payload]
        if missing:
            raise AdviceFormatError(f"{source}: missing {', '.join(missing)}")
        moves_payload = payload["moves"]
        if not isinstance(moves_payload, list):
            raise AdviceFormatError(f"{source}: 'moves' must be a list")
        moves = []
        for index, item in enumerate(moves_payload):
            if not isinstance(item, dict) or not isinstance(item.get("stem"), str) or not is_number(item.get("delta_db")):
                raise AdviceFormatError(f"{source}: move {index} needs a 'stem' name and a numeric 'delta_db'")
            delta = float(item["delta_db"])
            low = float(item["low_db"]) if is_number(item.get("low_db")) else delta
            high = float(item["high_db"]) if is_number(item.get("high_db")) else delta
            moves.append(GainMove(stem=item["stem"], delta_db=delta, low_db=low, high_db=high))
        stems = [move.stem for move in moves]
        duplicated = sorted({stem for stem in stems if stems.count(stem) > 1})
        if duplicated:
            raise AdviceFormatError(f"{source}: more than one move for {', '.join(duplicated)}")
        offset = payload.get("global_offset_db", 0.0)
        if not is_number(offset):
            raise AdviceFormatError(f"{source}: 'global_offset_db' must be a number")
        return cls(advisor=str(payload["advisor"]), moves=tuple(moves), text=str(payload.get("text", "")),
                   evidence=payload.get("evidence") or {}, global_offset_db=float(offset))



def read_advice(path: str | os.PathLike[str]) -> Advice:
    """Load an advice JSON file (an input: no output of the command may replace it).

    Raises:
        AdviceFormatError: missing, unreadable, not JSON, not advice.
        NotAFileError: a named pipe (FIFO), a socket or a device.
        InputTooLargeError: larger than :data:`~faderwise.tools.input_files.ADVICE_LIMIT_BYTES`.
    """
    note_input(path)
    return Advice.from_json(read_json(path, error=AdviceFormatError, limit=ADVICE_LIMIT_BYTES, what="advice"),
                            source=str(path))


ADVICE_SCHEMA: dict[str, object] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "faderwise advice",
    "type": "object",
    "required": ["advisor", "moves"],
    "properties": {
        "format": {"const": ADVICE_FORMAT},
        "advisor": {"type": "string", "description": "which advisor wrote it"},
        "moves": {
            "type": "array",
            "description": "gain changes for stems of Version A; stems not listed stay as they are",
            "items": {
                "type": "object",
                "required": ["stem", "delta_db"],
                "properties": {
                    "stem": {"type": "string"},
                    "delta_db": {"type": "number", "description": "dB to apply to the stem in A; positive = raise"},
                    "low_db": {"type": "number", "description": "lower end of the likely range, dB"},
                    "high_db": {"type": "number", "description": "upper end of the likely range, dB"},
                },
            },
        },
        "global_offset_db": {"type": "number", "description": "dB for the whole mix (master); positive = louder"},
        "text": {"type": "string"},
        "evidence": {"type": "object", "description": "the measurements the text cites"},
    },
}
