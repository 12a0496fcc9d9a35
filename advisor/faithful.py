"""What a producer reads of advice states no move the advice does not hold.

Advice is text plus moves, and only the moves are rendered (``apply``), exported or pushed. Before
advice leaves faderwise (the command line, the chat, the MCP server), every sentence of its text is
read back with :func:`~faderwise.advisor.parse.parse_moves`: a sentence that states a move for a stem
that the moves do not hold (another size, another direction, or no move at all) is replaced by one that
says what the moves hold ("The advice holds no move for the vocals."), so what a client reads is what
``apply`` renders.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from faderwise.advisor.explain import ROUNDING_DB, instruction, is_leave
from faderwise.advisor.model import Advice
from faderwise.advisor.parse import instructs_a_move, parse_moves

AGREEMENT_DB = ROUNDING_DB / 2 + 0.01
"""A sentence agrees with a move when its amount is within this of the move, dB: the words round a
move to the nearest 0.5 dB ("about 4 dB" for −3.8 dB)."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'“])")


def sentences(text: str) -> list[str]:
    """``text`` cut at sentence ends (a full stop, ! or ? followed by space and a capital)."""
    return [part for part in _SENTENCE_END.split(text.strip()) if part.strip()]


NO_STEM = ""
"""The stem of a statement that moves something this mix has no stem called ("lower the lead by 3 dB")."""
_WHOLE_MIX = re.compile(r"\b(?:master|the mix|whole mix|every stem|all stems|all the stems)\b", re.IGNORECASE)


def unheld_statements(advice: Advice, stem_names: Iterable[str]) -> list[tuple[str, str, float]]:
    """Each ``(sentence, stem, stated dB)`` of ``advice.text`` that states a move the advice's moves do
    not hold: a size more than :data:`AGREEMENT_DB` off the move, a move for a stem the advice leaves (a
    "leave it" for a stem the advice leaves is held), or a move for no stem of the set (stem
    :data:`NO_STEM`, 0 dB; the master and the whole mix are not stems)."""
    names = list(stem_names)
    found = []
    for sentence in sentences(advice.text):
        stated_moves = parse_moves(sentence, names)
        if not stated_moves and instructs_a_move(sentence) and not _WHOLE_MIX.search(sentence):
            found.append((sentence, NO_STEM, 0.0))
        for stated in stated_moves:
            held = advice.move_for(stated.stem)
            if held is None and is_leave(stated.delta_db):
                continue
            if held is not None and abs(held.delta_db - stated.delta_db) <= AGREEMENT_DB:
                continue
            found.append((sentence, stated.stem, stated.delta_db))
    return found


def faithful(advice: Advice, stem_names: Iterable[str]) -> Advice:
    """``advice`` whose every sentence states only moves it holds: a sentence that states another is
    replaced by what the moves say of that stem (its move in words, or that it has none)."""
    names = list(stem_names)
    wrong = unheld_statements(advice, names)
    if not wrong:
        return advice
    replaced: dict[str, list[str]] = {}
    for sentence, stem, _ in wrong:
        replaced.setdefault(sentence, []).append(stem)
    parts = []
    for sentence in sentences(advice.text):
        if sentence not in replaced:
            parts.append(sentence)
            continue
        for stem in dict.fromkeys(replaced[sentence]):
            if stem == NO_STEM:
                parts.append("(A sentence that moved something this mix has no stem for was left out.)")
                continue
            held = advice.move_for(stem)
            parts.append(f"The advice holds no move for the {stem}." if held is None
                         else f"{instruction(stem, held.delta_db)}.")
    checked = [{"sentence": sentence, "stem": stem, "stated_db": round(stated, 3)} for sentence, stem, stated in wrong]
    return dataclasses.replace(advice, text=" ".join(parts),
                               evidence={**advice.evidence, "replaced_sentences": checked})
