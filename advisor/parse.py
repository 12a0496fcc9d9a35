"""Reading gain moves out of free text, written by a model or a person.

The evaluation scores advice text with this parser, so it reads only what the text commits to:
a stem, a direction and an amount in dB ("raise the vocal by 4 dB", "vocals are 4dB too loud",
"cut the guitars by 3–4 dB", "+2 dB on keys"), or an explicit "leave it" ("the kick is fine" →
a 0 dB move). Anything vaguer — no number, no direction, two stems compared with each other, a
frequency (that is EQ, not a fader), a negated instruction, conflicting statements — yields no move.

How a sentence is read:

1. Stem mentions become markers (aliases resolved by :mod:`faderwise.advisor.stem_names`); "it"/"them"
   refer to the stems of the previous clause; lists ("the vocals and the guitars") stay together.
2. The text is cut into clauses at sentence ends, semicolons and conjunctions between moves.
3. Each clause needs one group of stems and either one amount with one direction, or a
   "leave it" phrase and no amount.
4. An instruction ("lower the bass 3 dB") outweighs a description ("the bass is 3 dB too loud")
   of the same stem; two instructions that disagree cancel each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from faderwise.advisor.model import GainMove
from faderwise.advisor.stem_names import mention_table

MAX_PLAUSIBLE_DB = 24.0  # a fader move beyond this is not advice anyone means
AGREEMENT_DB = 0.5  # statements about one stem this close are the same move

_NUMBER = r"\d+(?:[.,]\d+)?"
_AMOUNT = re.compile(
    rf"(?P<sign>[+\-−])?\s*(?P<low>{_NUMBER})\s*(?:(?:-|–|—|to)\s*(?P<high>{_NUMBER})\s*)?(?:db|decibels?)\b",
    re.IGNORECASE,
)
_FREQUENCY = re.compile(rf"\b{_NUMBER}\s*(?:k?hz)\b|\b{_NUMBER}\s*k\b|\b(?:low|high|mid)[- ]?(?:end|mids?|shelf|pass)\b",
                        re.IGNORECASE)
_UP_VERBS = r"raise|boost|increase|lift|push|bump|turn\s+up|bring\s+up|crank|add"
_DOWN_VERBS = r"lower|reduce|cut|decrease|drop|attenuate|pull\s+down|turn\s+down|bring\s+down|back\s+off|tame|trim"
_UP = re.compile(rf"\b(?:{_UP_VERBS})\b|\b(?:bring|turn|push|pull)\b[^.;]*?\bup\b", re.IGNORECASE)
_DOWN = re.compile(rf"\b(?:{_DOWN_VERBS})\b|\b(?:bring|turn|pull|push)\b[^.;]*?\bdown\b", re.IGNORECASE)
# Descriptions of Version A: the stem is too loud (move down) or too quiet (move up).
_TOO_LOUD = re.compile(r"\btoo\s+(?:loud|hot|high|much|forward|dominant)\b|\b(?:louder|hotter|higher)\b|\bover\b",
                       re.IGNORECASE)
_TOO_QUIET = re.compile(r"\btoo\s+(?:quiet|soft|low|little|buried|far\s+back)\b|\b(?:quieter|softer|lower|under)\b"
                        r"|\bburied\b", re.IGNORECASE)
_LEAVE = re.compile(r"\b(?:is|are|sits?|sounds?|looks?)\s+(?:fine|good|right|ok|okay|balanced|spot[- ]on)\b"
                    r"|\bleave\b|\bkeep\b|\bno\s+change\b|\bunchanged\b|\bdon'?t\s+(?:touch|change|move)\b"
                    r"|\bdo\s+not\s+(?:touch|change|move)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:don'?t|do\s+not|never|no\s+need|shouldn'?t|should\s+not|not)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|[;\n()]+|(?<=[A-Za-z»]):\s")
_PRONOUN = re.compile(r"\b(?:it|its|them|they|their|this one)\b", re.IGNORECASE)
_COPULA = re.compile(r"\b(?:is|are|sits?|was|were)\b", re.IGNORECASE)
_BARE_UP = re.compile(r"\bup\b|\bneeds?\b[^.;]*\bmore\b", re.IGNORECASE)
_BARE_DOWN = re.compile(r"\bdown\b|\bneeds?\b[^.;]*\bless\b", re.IGNORECASE)
_CONJUNCTION = re.compile(r",?\s+\b(?:and|but|while|whereas|then|also)\b\s+(?=(?:[^«]*?«))|,\s+(?=[^«]*«)",
                          re.IGNORECASE)


@dataclass(frozen=True)
class _Reading:
    stems: tuple[str, ...]
    delta_db: float
    low_db: float
    high_db: float
    instruction: bool


def parse_moves(text: str, stem_names: Iterable[str], *, instructions_only: bool = False) -> list[GainMove]:
    """Gain moves stated in ``text`` for stems of ``stem_names``, in order of first mention.

    Returns one :class:`GainMove` per stem the text commits to (``delta_db`` positive = raise;
    a "leave it" is 0 dB; "3–4 dB" gives the range and its middle); nothing for the rest. With
    ``instructions_only``, only what the text tells to do ("lower the bass 3 dB", "leave the keys"),
    not what it describes ("the bass is 3 dB louder than in the reference").
    """
    names = list(stem_names)
    table = mention_table(names)
    marked, mentioned = _mark_stems(text, table)
    readings: list[_Reading] = []
    previous: tuple[str, ...] = ()
    label: tuple[str, ...] = ()
    for clause in _clauses(marked):
        stems = tuple(dict.fromkeys(mentioned[int(index)] for index in re.findall(r"«(\d+)»", clause)))
        if not stems and (label or _PRONOUN.search(clause)):
            stems = label or previous  # "Vocals: lower by 4 dB", "raise it 2 dB"
        label = stems if re.fullmatch(r"\s*(?:«[^»]+»\+?)+\s*", clause) else ()
        if stems:
            previous = stems
        reading = _read_clause(clause, stems)
        if reading is not None and (reading.instruction or not instructions_only):
            readings.append(reading)
    return _settle(readings, names)


def instructs_a_move(text: str) -> bool:
    """Whether ``text`` tells someone to move a fader by an amount ("lower the lead by 3 dB"), whatever
    it names: a direction verb and an amount in dB, not negated."""
    return bool(_AMOUNT.search(text)) and bool(_UP.search(text) or _DOWN.search(text)) and not _NEGATION.search(text)


def _mark_stems(text: str, table: dict[str, str]) -> tuple[str, list[str]]:
    """Replace every stem mention with «N», longest phrases first, and keep lists together; N
    indexes the returned names. A name's own characters never reach the clause splitter or the
    readers of amounts and directions ("Kick (track 3)", "Gtr. 2", "Low End")."""
    phrases = sorted(table, key=len, reverse=True)
    # not "\b": a name may begin or end with a bracket or other non-word character ("Video [chan 1]")
    pattern = re.compile(r"(?<!\w)(?:the\s+|my\s+|your\s+|our\s+)?(" + "|".join(re.escape(p) for p in phrases) +
                         r")(?!\w)", re.IGNORECASE)
    mentioned: list[str] = []

    def mark(match: re.Match[str]) -> str:
        mentioned.append(table[match.group(1).casefold()])
        return f"«{len(mentioned) - 1}»"

    marked = pattern.sub(mark, text)
    # "«a», «b» and «c»" is one group: join with "+" so the clause splitter leaves it alone.
    list_joint = re.compile(r"(«[^»]+»)\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*&\s*|\s*/\s*)(?=«)")
    while list_joint.search(marked):
        marked = list_joint.sub(r"\1+", marked)
    return marked, mentioned


_NAMED_STEM = re.compile(r"«\d+»")
"""A stem's mention as :func:`_mark_stems` marks it in a text."""


def _clauses(marked: str) -> list[str]:
    clauses = []
    for sentence in _SENTENCE.split(marked):
        clauses.extend(part for part in _CONJUNCTION.split(sentence) if part and part.strip())
    return clauses


def _read_clause(clause: str, stems: tuple[str, ...]) -> _Reading | None:
    clause = _NAMED_STEM.sub("«»", clause)  # a mention's index is no amount
    if not stems or _FREQUENCY.search(clause):
        return None
    amounts = list(_AMOUNT.finditer(clause))
    if not amounts:
        if _LEAVE.search(clause) and not (_UP.search(clause) or _DOWN.search(clause)):
            return _Reading(stems, 0.0, 0.0, 0.0, instruction=True)
        return None
    if len(amounts) > 1 or (_NEGATION.search(clause) and not _LEAVE.search(clause)):
        return None
    amount = amounts[0]
    low = float(amount.group("low").replace(",", "."))
    high = float(amount.group("high").replace(",", ".")) if amount.group("high") else low
    low, high = min(low, high), max(low, high)
    if high > MAX_PLAUSIBLE_DB:
        return None
    direction, instruction = _direction(clause, amount)
    if direction == 0:
        return None
    if not instruction and len(stems) > 1:
        return None  # "the bass is 2 dB louder than the kick": a comparison, not a move
    middle = (low + high) / 2
    if direction > 0:
        return _Reading(stems, middle, low, high, instruction)
    return _Reading(stems, -middle, -high, -low, instruction)


def _direction(clause: str, amount: re.Match[str]) -> tuple[int, bool]:
    """(+1 raise / −1 lower / 0 unknown, whether it is an instruction rather than a description)."""
    before, after = clause[: amount.start()], clause[amount.end():]
    # "4 dB lower than in B" describes A; "lower the bass" instructs. A comparative right after
    # the amount, or any "than", makes the words descriptions.
    descriptive = bool(re.match(r"\s*(?:\w+\s+){0,2}?(?:louder|quieter|lower|higher|hotter|softer|too)\b", after,
                                re.IGNORECASE)) or bool(re.search(r"\bthan\b", clause, re.IGNORECASE))
    up_verb = bool(_UP.search(clause)) and not descriptive
    down_verb = bool(_DOWN.search(clause)) and not descriptive
    if up_verb != down_verb:
        return (1 if up_verb else -1), True
    if up_verb and down_verb:
        return 0, True
    sign = amount.group("sign")
    if not descriptive and not _COPULA.search(before):
        if sign:
            return (1 if sign == "+" else -1), True  # "+2 dB on keys"
        bare_up, bare_down = bool(_BARE_UP.search(clause)), bool(_BARE_DOWN.search(clause))
        if bare_up != bare_down:
            return (1 if bare_up else -1), True  # "the keys down 1.5 dB", "drums need 3 dB more"
    too_loud, too_quiet = bool(_TOO_LOUD.search(clause)), bool(_TOO_QUIET.search(clause))
    if too_loud != too_quiet:
        return (-1 if too_loud else 1), False
    return 0, False


def _settle(readings: list[_Reading], names: list[str]) -> list[GainMove]:
    """One move per stem: instructions outweigh descriptions; disagreement means no move."""
    per_stem: dict[str, list[_Reading]] = {}
    for reading in readings:
        for stem in reading.stems:
            per_stem.setdefault(stem, []).append(reading)
    moves = []
    for stem, stem_readings in per_stem.items():
        instructions = [r for r in stem_readings if r.instruction]
        chosen = instructions or stem_readings
        deltas = [r.delta_db for r in chosen]
        if max(deltas) - min(deltas) > AGREEMENT_DB:
            continue
        first = chosen[0]
        moves.append(GainMove(stem=stem, delta_db=first.delta_db, low_db=first.low_db, high_db=first.high_db))
    order = {name: index for index, name in enumerate(names)}
    return sorted(moves, key=lambda move: order.get(move.stem, len(order)))
