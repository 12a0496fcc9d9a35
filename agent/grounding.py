"""The grounding guard: a reply may state only levels, loudness, gains, times and frequencies that
the session's tools returned (or the producer said).

A *quantity* is a number with a unit of one of three families: level (dB, dBFS, dBTP, LU, LUFS; a
gain or a difference in dB and in LU are the same number), time (s, ms, ``m:ss``) and frequency
(Hz, kHz). A number without a unit takes the unit of the next number when only a range or
comparison word joins them ("-4.1 to -3.9 dB", "-15.0 against -19.0 LUFS", "2–4 kHz"); other
numbers without a unit ("5 stems", "ITU-R BS.1770") are not checked. Tool results give quantities
from their text and from their artifacts, whose keys say the unit (``delta_db``, ``a_lufs``,
``window_a_s``, ``lufs``).

A stated quantity is grounded when a source quantity of its family lies within the stated
number's rounding (half a unit of its last digit: "about 4 dB" for -4.0, "-4.5 dB" for -4.46);
signs are ignored, since "lower the vocals by 4 dB" states the tool's -4.0.

A tool's evidence holds dozens of levels, so a number alone is a weak check for the numbers that
matter most: fader moves. A move the reply states for a stem (read by
:func:`faderwise.advisor.parse.parse_moves`, "lower the kick by 2 dB" is a move of the drums) must
also match, with its sign, a move the tools gave for that stem (an advised move or its likely range,
an applied gain, or the A − B difference it corrects), within whole-dB rounding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

from faderwise.advisor.explain import is_leave
from faderwise.advisor.parse import parse_moves
from faderwise.tools.json_files import is_number

NUMBER = r"[-+−]?\d+(?:\.\d+)?"
UNITS = {"dbtp": ("level", 1.0), "dbfs": ("level", 1.0), "db": ("level", 1.0), "lufs": ("level", 1.0),
         "lu": ("level", 1.0), "khz": ("frequency", 1000.0), "hz": ("frequency", 1.0), "ms": ("time", 0.001),
         "seconds": ("time", 1.0), "second": ("time", 1.0), "secs": ("time", 1.0), "sec": ("time", 1.0),
         "s": ("time", 1.0)}
UNIT = "|".join(sorted(UNITS, key=len, reverse=True))
# a number, then (optionally) its unit; the lookbehind keeps "BS.1770" and "v2.5" out
QUANTITY = re.compile(rf"(?<![\w.]){NUMBER}(?:\s*(?P<unit>{UNIT})\b)?", re.IGNORECASE)
JOINER = re.compile(r"\s*(?:–|—|-|to|and|against|vs\.?|versus|or|/)\s*$", re.IGNORECASE)
CLOCK = re.compile(r"(?<![\d.:])(\d{1,2}):([0-5]\d)(?![\d:])")
KEY_FAMILIES = (("_dbtp", "level"), ("_dbfs", "level"), ("_lufs", "level"), ("_db", "level"), ("_lu", "level"),
                ("_hz", "frequency"), ("_s", "time"))
NOT_QUANTITIES = frozenset({"rate", "channels", "frames", "sample_rate"})
MOVE_KEYS = frozenset({"delta_db", "low_db", "high_db", "move_db"})
DIFFERENCE_KEYS = frozenset({"a_minus_b_db", "a_minus_b_lu"})  # A − B: the move that corrects it is its negative
MOVE_TOLERANCE_DB = 0.55  # "about 4 dB" for a move of -3.6 … -4.4, with a hair for the tools' own rounding


@dataclass(frozen=True)
class Quantity:
    """``value`` in dB/LU, seconds or Hz; ``tolerance`` is the stated rounding in those units."""

    value: float
    family: str
    text: str
    tolerance: float


def _tolerance(number: str, scale: float) -> float:
    decimals = len(number.partition(".")[2])
    return 0.5 * 10.0 ** -decimals * scale + 1e-9


def quantities(text: str) -> list[Quantity]:
    """Every quantity ``text`` states (see the module's doc), in order."""
    found: list[Quantity] = []
    waiting: list[tuple[str, int]] = []  # numbers without a unit, waiting for the next one's
    previous_end = 0
    for match in QUANTITY.finditer(text):
        number = match.group(0)[:len(match.group(0)) - len(match.group("unit") or "")].strip()
        if waiting and not JOINER.match(text[previous_end:match.start()]):
            waiting = []
        previous_end = match.end()
        if not match.group("unit"):
            waiting.append((number, match.start()))
            continue
        family, scale = UNITS[match.group("unit").casefold()]
        for pending, _ in waiting:
            found.append(Quantity(abs(_number(pending)) * scale, family, f"{pending} {match.group('unit')}",
                                  _tolerance(pending, scale)))
        waiting = []
        found.append(Quantity(abs(_number(number)) * scale, family, match.group(0).strip(), _tolerance(number, scale)))
    for match in CLOCK.finditer(text):
        seconds = int(match.group(1)) * 60 + int(match.group(2))
        found.append(Quantity(float(seconds), "time", match.group(0), 0.5 + 1e-9))
    return found


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def artifact_quantities(value: object, family: str | None = None) -> Iterable[Quantity]:
    """The quantities in a tool's artifact: numbers under keys that name a unit, and the text of
    its strings."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key).casefold()
            if name in NOT_QUANTITIES:
                continue
            keyed = next((fam for suffix, fam in KEY_FAMILIES if name.endswith(suffix) or name == suffix[1:]), None)
            yield from artifact_quantities(item, keyed or family)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from artifact_quantities(item, family)
    elif isinstance(value, str):
        yield from quantities(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and family is not None:
        yield Quantity(abs(float(value)), family, str(value), 0.0)


def stem_moves(value: object, stem: str | None = None) -> Iterable[tuple[str, float]]:
    """(stem, signed move in dB) for every move a tool's artifact gives: advised moves and their
    ranges, applied gains, and the negated A − B differences, under the stem they belong to."""
    if isinstance(value, Mapping):
        own = value["stem"] if isinstance(value.get("stem"), str) else stem
        for key, item in value.items():
            name = str(key)
            if name in MOVE_KEYS | DIFFERENCE_KEYS and own and is_number(item):
                yield own, -float(item) if name in DIFFERENCE_KEYS else float(item)
            elif name == "range_db" and own and isinstance(item, list):
                yield from ((own, float(x)) for x in item if is_number(x))
            elif name == "gains_db" and isinstance(item, Mapping):
                yield from ((str(s), float(g)) for s, g in item.items() if is_number(g))
            elif name == "stems" and isinstance(item, Mapping):
                for sub_stem, sub in item.items():
                    yield from stem_moves(sub, str(sub_stem))
            else:
                yield from stem_moves(item, None if name == "moves" else own)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from stem_moves(item, stem)



class Grounding:
    """The quantities and stem moves a conversation's tools returned, and the check of a reply
    against them. ``stems``: the stem names a reply's moves are read with."""

    def __init__(self, sources: Iterable[Quantity], moves: Iterable[tuple[str, float]] = (),
                 stems: Sequence[str] = ()) -> None:
        self.by_family: dict[str, list[float]] = {}
        for source in sources:
            self.by_family.setdefault(source.family, []).append(source.value)
        self.moves: dict[str, list[float]] = {}
        for stem, move in moves:
            self.moves.setdefault(stem, []).append(move)
        self.stems = tuple(stems)

    @classmethod
    def of(cls, messages: Sequence[BaseMessage], *, also: Iterable[str] = (), stems: Sequence[str] = ()) -> Grounding:
        """From the tool results and the producer's words in ``messages``, and the texts ``also``
        (what the model was told of the session)."""
        sources: list[Quantity] = []
        moves: list[tuple[str, float]] = []
        texts = list(also)
        for message in messages:
            if isinstance(message, ToolMessage):
                texts.append(str(message.content))
                sources += artifact_quantities(message.artifact)
                moves += stem_moves(message.artifact)
            elif isinstance(message, HumanMessage):
                texts.append(str(message.content))
        for text in texts:
            sources += quantities(text)
            moves += ((m.stem, m.delta_db) for m in parse_moves(text, stems) if not is_leave(m.delta_db))
        return cls(sources, moves, stems)

    def ungrounded(self, reply: str) -> list[str]:
        """The quantities ``reply`` states that no source holds (as written), then the stem moves it
        states that no tool gave (as "drums -2.0 dB"), each once."""
        missing: list[str] = []
        for stated in quantities(reply):
            known = self.by_family.get(stated.family, [])
            if not any(abs(stated.value - value) <= stated.tolerance for value in known):
                if stated.text not in missing:
                    missing.append(stated.text)
        for move in parse_moves(reply, self.stems) if self.stems else []:
            if is_leave(move.delta_db):
                continue
            if not any(abs(move.delta_db - known) <= MOVE_TOLERANCE_DB for known in self.moves.get(move.stem, [])):
                text = f"{move.stem} {move.delta_db:+.1f} dB"
                if text not in missing:
                    missing.append(text)
        return missing


def describe_ungrounded(missing: Sequence[str]) -> str:
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return f"the model's reply stated numbers no tool returned ({shown})"
