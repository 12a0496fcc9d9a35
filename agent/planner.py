"""The offline planner: a chat model that needs no language model.

It reads the producer's last message, picks the tools that answer it (rules over the words, with
stem names matched the way :mod:`faderwise.advisor.stem_names` does), and once the tools have run writes
the answer from their results. Its repertoire (:data:`HELP_TEXT`) is small and exact: what it
does not understand gets a reply saying what it does understand, never a guess.

It is a LangChain chat model, so the agent graph treats it like any other: ``bind_tools``
returns the planner itself, tool calls come as ``AIMessage.tool_calls``, and answers stream.
"""

from __future__ import annotations

import difflib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from faderwise.advisor.evidence import format_time
from faderwise.advisor.explain import is_leave, is_plural, leave_sentence, master_sentence, rounded_db
from faderwise.advisor.headroom import headroom_sentence
from faderwise.advisor.model import GainMove
from faderwise.advisor.registry import ADVISORS, advisor_names
from faderwise.advisor.stem_names import CLASS_ALIASES, mention_table
from faderwise.agent.messages import message_text, turn_start
from faderwise.agent.tools import is_yes, move_headline
from faderwise.tools.report import format_difference

HELP_TEXT = """I can measure your stems, compare them with a reference and say which faders to move. Try:

- **overview** / "how's my mix?": compare with the reference and propose moves
- "which stem is furthest off?", "what's too loud?", "what's too quiet?"
- "what about the bass?", "and the drums?": one stem's move
- "why?", "how much exactly?": about the stem we are talking about
- "compare" (after applying, to check), "how loud is the vocal?" (measure)
- "apply" (asks first; renders to a new folder), "undo", "forget the bass move"
- "plot" (levels) or "plot loudness over time", "bundle the vocals"
- "use the single-mix advisor", "list stems", "load FOLDER" (or SONG.RPP / SONG.ardour), "reference FOLDER"
- "export to reaper" (a new copy of the project with the faders moved), "push to reaper" / "push to ardour"
  (moves the running DAW's faders over OSC; shows them and asks first), "undo the push"
"""
FALLBACK_TEXT = ("I'm the offline planner, so I only understand mixing requests about gain: an overview, which stem "
                 "is off, a stem by name, why, how much, compare, apply, undo, plot. Type **help** for examples, "
                 "or switch to a language model with /model.")


@dataclass(frozen=True)
class Intent:
    """What a message asks for: ``kind`` (one of the rules in :func:`classify`), the stems it
    names, and details (a path, a plot kind, an advisor, which way "off" means)."""

    kind: str
    stems: tuple[str, ...] = ()
    detail: str | None = None
    calls: tuple[tuple[str, dict[str, Any]], ...] = field(default=())


PATH = r"""["']([^"']+)["']|(\S*[/\\]\S*|\S+\.(?:mp4|wav|flac|rpp|RPP|ardour)|\.\.?(?=[\s,;]|$))"""


def _path_after(text: str, words: str) -> str | None:
    match = re.search(rf"\b(?:{words})\b(?:\s+(?:the|my|stems?|from|in|at|to|folder|as))*\s+(?:{PATH})", text,
                      re.IGNORECASE)
    if not match:
        return None
    path = (match.group(1) or match.group(2)).rstrip(",;")
    if not re.search(r"(?:^|[/\\])\.+$", path):  # a full stop ends the sentence, not a ".." component
        path = path.rstrip(".")
    return path


def mentioned_stems(text: str, stem_names: Sequence[str]) -> list[str]:
    """Stems of the set that ``text`` names, in order of appearance (aliases, plurals, and
    misspellings close to a stem name); with no stems loaded, the class words it uses."""
    lowered = text.casefold().replace("_", " ")  # "gtr_L" is said "gtr l", as mention_table spells it
    table = mention_table(stem_names) if stem_names else {alias: alias for aliases in CLASS_ALIASES.values()
                                                          for alias in aliases}
    found: list[tuple[int, str]] = []
    taken = [False] * len(lowered)
    for phrase in sorted(table, key=len, reverse=True):
        for match in re.finditer(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", lowered):
            if not any(taken[match.start():match.end()]):
                found.append((match.start(), table[phrase]))
                taken[match.start():match.end()] = [True] * (match.end() - match.start())
    if stem_names:
        folded = {name.casefold(): name for name in stem_names}
        for match in re.finditer(r"[a-z][a-z0-9]{3,}", lowered):
            if any(taken[match.start():match.end()]):
                continue
            close = difflib.get_close_matches(match.group(), list(folded), n=1, cutoff=0.8)
            if close:
                found.append((match.start(), folded[close[0]]))
    ordered: list[str] = []
    for _, name in sorted(found):
        if name not in ordered:
            ordered.append(name)
    return ordered


def advisor_named(lowered: str) -> str:
    """The advisor a message names (:mod:`faderwise.advisor.registry`; the longest name it holds, so
    "alm-pretrained" is not "alm"), or in words: "the audio-language model" is ``alm``, "without a
    reference" is ``single-mix``."""
    for name in sorted(advisor_names(), key=len, reverse=True):
        spelled = "|".join(re.escape(form) for form in {name, name.replace("-", " ")})
        if re.search(rf"(?<![\w-])(?:{spelled})(?![\w-])", lowered):
            return name
    return "alm" if re.search(r"audio[- ]language", lowered) else "single-mix"


WHICH_DAW_TEXT = "Which DAW? Say **push to reaper** or **push to ardour** (and **undo the push to reaper** to go back)."
SCOPE_TEXT = ("faderwise advises gain only (how loud each stem sits in the mix): not EQ, compression, reverb or "
              "other effects, panning or arrangement.")

RULES: list[tuple[str, str]] = [
    # asked for something beyond gain: said out loud first, then the gain view of the stem named
    ("scope", r"\b(eq|eqs|eq'?d|equali[sz]\w*|compress\w*|limit(er|ing)\w*|reverb\w*|delay|echo|chorus|flanger|"
              r"phaser|saturat\w*|distort\w*|overdrive|effects?|fx|plug-?ins?|pan|panned|panning|stereo width|widen\w*|"
              r"side-?chain\w*|gat(e|ing)|de-?ess\w*|auto-?tune|pitch|arrang\w*|high[- ]pass|low[- ]pass|filter\w*|"
              r"(boost|cut) the (highs|lows|mids|treble|bass frequencies)|"
              # tone and character: EQ, compression or saturation in a producer's words, not a fader
              r"punch(y|ier|iness)?|bright(er|en|ness)?|dark(er|en)?|warm(er|th)?|presence|airy|more air|mudd?(y|iness)|"
              r"boom(y|iness)|crisp(er|ness)?|crack|snap(py|pier)?|thick(er|en)?|thin(ner)?|harsh(ness)?|"
              r"sibilan\w*|tone|tonal|timbre|tight(en|er)|fat(ter)?|crunch(y|ier)?)\b"),
    ("help", r"^\s*(\?|help|what can you do|commands)\b|\bhelp\b"),
    ("undo_push", r"\bundo\b.*\bpush\b|\b(put|set) (the|my) faders back\b"),
    # "push the vocals" is mixing slang for raising them: a push to the DAW names the DAW
    ("push", r"\b(push|send|move)\b.*\b(reaper|ardour|daw|osc)\b"),
    ("export", r"\bexport\b(?!.*\b(conversation|chat|transcript|markdown)\b)|\bwrite\b.*\b(reaper|ardour|project)\b|\.rpp\b|\.ardour\b"),
    ("undo", r"\b(undo|revert|roll ?back|go back|take (it|that|them) back)\b"),
    ("why", r"\bwhy\b|\bexplain\b|\breasons?\b|\bevidence\b|how do you know"),
    ("how_much", r"\bhow much\b|\bexactly\b|\bprecisely\b|\bhow many (db|decibels)\b"),
    ("forget", r"\b(forget|drop|skip|ignore)\b|\b(don'?t|do not)\b.*\b(move|touch|change|apply)\b|\bleave\b.*\balone\b"),
    ("apply", r"\b(apply|go ahead|do it|render|make (the|those|these) (changes|moves))\b"),
    ("plot", r"\b(plot|graph|chart|draw|visuali[sz]e)\b"),
    ("bundle", r"\bbundle\b"),
    ("list", r"^\s*(list|stems)\b|\b(list|show)\b.*\bstems\b|\bwhat stems\b|\bstems\b.*\b(loaded|have|got)\b"),
    ("advisor", r"\bsingle[- ]mix\b|\bequal[- ]loudness\b|\bwithout (the |a )?reference\b|\bmeasured advisor\b|"
                r"\balm\b|\balm-[a-z-]+\b|\baudio[- ]language model\b"),
    ("which", r"\btoo (loud|quiet|soft|low|high|hot|quietly)\b|\bfurthest\b|\bworst\b|\bmost off\b|\bloudest\b|"
              r"\bquietest\b|\b(which|what)\b.*\b(stems?|tracks?|instruments?|parts?|ones?|faders?)\b.*"
              r"\b(off|wrong|loud|quiet|soft|buried|most|needs?|biggest|change)\b"),
    ("measure", r"\bhow loud\b|\bmeasure\b|\blufs\b|\bpeaks?\b|\blevels?\b|\bloudness\b|\bcrest\b"),
    ("compare", r"\bcompare\b|\bcomparison\b|\bversus\b|\bvs\b|\bafter\b|\bdifferences?\b|\bagainst the reference\b"),
    ("overview", r"\boverview\b|what'?s wrong|\bhow('s| is| does) (my|the|this) (mix|song|balance)\b|\bbalanc|"
                 r"\badvi[cs]e\b|\bsuggest|\bfix\b|\banaly[sz]e\b|\bfaders?\b|\bmoves?\b|\bcheck\b|\bsummary\b|"
                 r"\bwhat should i\b|\bimprove\b"),
]


def classify(text: str, stem_names: Sequence[str], *, has_reference: bool) -> Intent:
    """The intent of one message and the tool calls that answer it (the first rule that matches
    wins; a message that only names stems asks about them)."""
    stems = tuple(mentioned_stems(text, stem_names))
    lowered = text.casefold().strip()
    if not lowered:
        return Intent("help")
    for words, tool in (("load|open", "load_stems"), ("reference|version b|compare (?:it )?(?:with|to|against)",
                                                       "set_reference")):
        path = _path_after(text, words)
        if path:
            return Intent("load" if tool == "load_stems" else "reference", detail=path, calls=((tool, {"path": path}),))
    kind = next((name for name, pattern in RULES if re.search(pattern, lowered)), None)
    first = stems[0] if stems else None
    one = {"stem": first} if first else {}
    if kind == "help":
        return Intent("help")
    if kind == "scope":
        return Intent("scope", stems, calls=(("explain_stem", one),) if first else (("advise", {}),))
    daw = "ardour" if re.search(r"\bardour\b", lowered) else "reaper" if re.search(r"\breaper\b", lowered) else None
    if kind == "undo_push":
        return Intent("undo_push", calls=(("undo_push", {"daw": daw}),)) if daw else Intent("which-daw")
    if kind == "push":
        if daw is None:
            return Intent("which-daw")
        ports = {key: int(number) for key, number in re.findall(r"\b(port|listen)\s+(\d{2,5})\b", lowered)}
        args = {"daw": daw, **({"port": ports["port"]} if "port" in ports else {}),
                **({"listen_port": ports["listen"]} if "listen" in ports else {})}
        return Intent("push", calls=(("push_faders", args),))
    if kind == "export":
        project = _path_after(text, "export|into|to|project")
        return Intent("export", calls=(("export_project", {"project": project} if project and
                                        re.search(r"\.(rpp|ardour)$", project, re.IGNORECASE) else {}),))
    if kind == "undo":
        return Intent("undo", calls=(("undo_apply", {}),))
    if kind in ("why", "how_much"):
        return Intent(kind, stems, calls=(("explain_stem", one),))
    if kind == "forget":
        return Intent("forget", stems, calls=tuple(("forget_move", {"stem": s}) for s in stems) or (("forget_move", {}),))
    if kind == "apply":
        return Intent("apply", stems, calls=(("apply_moves", {"stems": list(stems)} if stems else {}),))
    if kind == "plot":
        plot_kind = "loudness" if re.search(r"\btime\b|short[- ]term|\bcurves?\b|over the song", lowered) else "levels"
        return Intent("plot", detail=plot_kind, calls=(("plot", {"kind": plot_kind}),))
    if kind == "bundle":
        return Intent("bundle", stems, calls=(("make_ab_bundle", one),))
    if kind == "list":
        return Intent("list", calls=(("list_stems", {}),))
    if kind == "advisor":
        name = advisor_named(lowered)
        return Intent("overview", detail=name, calls=(("advise", {"advisor": name}),))
    if kind == "which":
        side = ("loud" if re.search(r"too (loud|high|hot)|\bloudest\b", lowered) else
                "quiet" if re.search(r"too (quiet|soft|low|quietly)|\bquietest\b|\bburied\b", lowered) else "off")
        return Intent("which", detail=side, calls=(("advise", {}),))
    if kind == "measure":
        return Intent("measure", stems, calls=tuple(("measure", {"stem": s}) for s in stems) or (("measure", {}),))
    if kind == "compare":
        return Intent("compare", calls=(("compare_to_reference", {}),))
    if kind == "overview":
        calls: tuple[tuple[str, dict[str, Any]], ...] = (("advise", {}),)
        if has_reference:
            calls = (("compare_to_reference", {}), *calls)
        return Intent("overview", calls=calls)
    if stems:
        return Intent("stem", stems, calls=tuple(("explain_stem", {"stem": s}) for s in stems))
    if is_yes(lowered) or lowered in ("no", "nope", "n"):
        return Intent("stray-answer")
    return Intent("unknown")


@dataclass(frozen=True)
class ToolResult:
    name: str
    content: str
    artifact: dict[str, Any]
    failed: bool


def _results(messages: Sequence[BaseMessage]) -> list[ToolResult]:
    results = []
    for message in messages:
        if isinstance(message, ToolMessage):
            artifact = message.artifact if isinstance(message.artifact, dict) else {}
            results.append(ToolResult(message.name or "", str(message.content), artifact, message.status == "error"))
    return results


def _moves(advice: dict[str, Any]) -> list[GainMove]:
    return [GainMove(stem=m["stem"], delta_db=m["delta_db"], low_db=m["low_db"], high_db=m["high_db"])
            for m in advice.get("moves", [])]


def _headline(advice: dict[str, Any], move: GainMove) -> str:
    facts = advice.get("evidence", {}).get("stems", {}).get(move.stem, {})
    return move_headline(move.stem, facts, move)


def _left_alone(advice: dict[str, Any], moves: Sequence[GainMove]) -> str:
    stems = advice.get("evidence", {}).get("stems", {})
    moved = {m.stem for m in moves}
    alone = [name for name, facts in stems.items() if name not in moved and facts.get("status") in
             ("measured", "relative", "baseline")]
    return leave_sentence(alone, "they are within 0.5 dB of where they should be" if len(alone) > 1 else
                          "it is within 0.5 dB of where it should be") if alone else ""


def write_answer(intent: Intent, results: Sequence[ToolResult], said: str = "", previous: str = "") -> str:
    """The reply to ``intent`` (the producer ``said`` it; ``previous`` is the last reply) from its
    tools' results."""
    failures = [r for r in results if r.failed]
    done = [r for r in results if not r.failed]
    if not done:
        return "I couldn't do that: " + " ".join(r.content.removeprefix("Error: ") for r in failures)
    by_name = {r.name: r for r in done}
    if intent.kind in ("overview", "which"):
        text = _advice_answer(intent, by_name["advise"].artifact, by_name.get("compare_to_reference"))
    elif intent.kind == "stem":
        text = "\n\n".join(r.content for r in done)
    elif intent.kind == "scope":
        text = _scope_answer(intent, done[0], said)
    elif intent.kind == "why":
        text = _why_answer(done[0], previous)
    elif intent.kind == "how_much":
        text = _amount_answer(done[0])
    elif intent.kind == "compare":
        text = _comparison_answer(done[0].artifact)
    elif intent.kind == "measure":
        text = "\n".join(f"- {line}" for r in done for line in r.content.rstrip(".").split("; "))
    elif intent.kind == "plot":
        text = f"{done[0].content}\n\n```\n{done[0].artifact.get('terminal', '')}\n```"
    elif intent.kind == "apply" and done[0].artifact.get("applied"):
        text = done[0].content + " Say **compare** to check it against the reference, or **undo** to go back."
    else:
        text = "\n\n".join(r.content for r in done)
    if failures:
        text += "\n\n" + "\n".join(f"(That part failed: {r.content.removeprefix('Error: ')})" for r in failures)
    return text


def _why_answer(result: ToolResult, previous: str) -> str:
    """Every measurement behind one stem's move, as a list: what the headline sentence leaves out
    (level against the mix, both extreme moments, every band the backing covers, how many windows
    agree). Asked again right after, it says so instead of repeating itself."""
    stem, facts, move = str(result.artifact.get("stem")), result.artifact.get("facts") or {}, result.artifact.get("move")
    if facts.get("status") != "measured":
        return f"Here is the evidence for the {stem}: {result.content}"
    header = (f"How I know the {stem} should move {move['delta_db']:+.1f} dB:" if move else
              f"Why the {stem} can stay where {'they are' if is_plural(stem) else 'it is'}:")
    if previous.startswith(header):
        return (f"That is everything I measured about the {stem} (above). Ask about another stem, or **compare** "
                "to see every stem of your mix against the reference.")
    lines = [header]
    a, b = facts.get("level_a_lufs"), facts.get("level_b_lufs")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        lines.append(f"- loudness (ITU-R BS.1770, whole song): {a:.1f} LUFS in your mix, {b:.1f} in the reference, "
                     f"{format_difference(a - b)} LU apart")
    for key, what in (("stem_to_backing", "against everything else (its backing)"), ("stem_to_mix", "against the mix")):
        in_a, in_b = facts.get(f"{key}_a_lu"), facts.get(f"{key}_b_lu")
        if isinstance(in_a, (int, float)) and isinstance(in_b, (int, float)):
            lines.append(f"- {what}: {format_difference(in_a)} LU in your mix, {format_difference(in_b)} LU in the "
                         "reference")
    for key, what in (("most_buried", "most buried"), ("most_exposed", "most exposed")):
        window, ratio = facts.get(f"{key}_s"), facts.get(f"{key}_lu")
        if isinstance(window, list) and isinstance(ratio, (int, float)):
            lines.append(f"- {what} in your mix: {format_time(window[0])}–{format_time(window[1])}, "
                         f"{format_difference(ratio)} LU against its backing")
    for masked in facts.get("masking") or []:
        in_b = masked.get("backing_over_stem_b_db")
        lines.append(f"- the backing covers it at {masked['bands']}: {masked['backing_over_stem_a_db']:.1f} dB above it "
                     "in your mix" + (f", {in_b:.1f} dB in the reference" if isinstance(in_b, (int, float)) else ""))
    low_high = facts.get("range_db")
    if isinstance(low_high, list) and facts.get("frames"):
        lines.append(f"- how sure ({facts.get('confidence')}): {facts['frames']} three-second windows put the move "
                     f"between {low_high[0]:+.1f} and {low_high[1]:+.1f} dB")
    return "\n".join(lines)


def _scope_answer(intent: Intent, result: ToolResult, said: str) -> str:
    """:data:`SCOPE_TEXT`, then the gain view: of the stem named (saying which stem a part like
    "the snare" belongs to), or the overview's moves."""
    if result.name == "advise":
        moves = _answered_moves(Intent("overview"), result.artifact)
        view = " ".join(_headline(result.artifact, m) for m in moves) or "No fader needs to move."
        return f"{SCOPE_TEXT} What I can say is the balance: {view}"
    stem = str(result.artifact.get("stem"))
    lowered = said.casefold()
    part = next((phrase for phrase, name in sorted(mention_table([stem]).items(), key=lambda kv: -len(kv[0]))
                 if name == stem and phrase not in (stem.casefold(), stem.casefold().rstrip("s"))
                 and re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", lowered)), None)
    lead = f"The {part} is part of the {stem}: " if part else ""
    return f"{SCOPE_TEXT} {lead}{result.content}"


def _answered_moves(intent: Intent, advice: dict[str, Any]) -> list[GainMove]:
    """The moves an overview or a "which stem" answer names, in the order it names them."""
    moves = sorted(_moves(advice), key=lambda m: -abs(m.delta_db))
    if intent.kind != "which":
        return moves
    return [m for m in moves if (intent.detail == "loud" and m.delta_db < 0) or
            (intent.detail == "quiet" and m.delta_db > 0) or intent.detail in (None, "off")]


def lead_stem(messages: Sequence[BaseMessage], before: int, stem_names: Sequence[str], *,
              has_reference: bool) -> str | None:
    """The stem the previous answer led with, when it was an overview or a "which stem" answer
    (so "why?" after "which stem is off?" asks about that stem); None otherwise."""
    previous = turn_start(messages[:before])
    if previous is None:
        return None
    intent = classify(str(messages[previous].content), stem_names, has_reference=has_reference)
    if intent.kind not in ("which", "overview"):
        return None
    advice = next((r.artifact for r in _results(messages[previous + 1:before]) if r.name == "advise" and not r.failed),
                  None)
    moves = _answered_moves(intent, advice) if advice else []
    return moves[0].stem if moves else None


def _advice_answer(intent: Intent, advice: dict[str, Any], comparison: ToolResult | None) -> str:
    moves = _answered_moves(Intent("overview"), advice)
    reference = advice.get("evidence", {}).get("mode") in ("same-material", "different-material", "alm-differential")
    against = "the reference" if reference else "typical levels (no reference used)"
    if intent.kind == "which":
        wanted = _answered_moves(intent, advice)
        if not wanted:
            what = {"loud": "too loud", "quiet": "too quiet", "off": "off"}[intent.detail or "off"]
            return f"No stem is {what} compared with {against}: every stem is within 0.5 dB."
        first, rest = wanted[0], wanted[1:]
        lead = {"loud": "too loud", "quiet": "too quiet", "off": "furthest off"}[intent.detail or "off"]
        text = f"The **{first.stem}** {'are' if is_plural(first.stem) else 'is'} {lead}. {_headline(advice, first)}"
        if rest:
            text += " Then: " + " ".join(_headline(advice, m) for m in rest)
        return text + " Ask **why?** for the evidence."
    paragraphs = []
    if comparison is not None:
        mix = comparison.artifact.get("mix_a_minus_b_lu")
        if isinstance(mix, (int, float)):
            paragraphs.append(f"Your mix is {format_difference(mix)} LU against the reference overall.")
    kind = next((k for k in ADVISORS if k.name == intent.detail), None)
    if intent.detail == "alm":
        paragraphs.append("Advice from the audio-language model, which heard each stem's A/B bundle.")
    elif kind is not None and kind.is_model:
        heard = "each stem's A/B bundle" if kind.hears_reference else "your mix alone"
        paragraphs.append(f"Advice from the {kind.name} audio-language model, which heard {heard}.")
    elif intent.detail and intent.detail != "measured":
        paragraphs.append(f"Advice from the {intent.detail} advisor, which judges your mix alone.")
    if moves:
        paragraphs.append(f"Compared with {against}, I'd move {len(moves)} fader{'s' if len(moves) > 1 else ''}:")
        paragraphs.append("\n".join(f"- {_headline(advice, m)}" for m in moves))
    else:
        paragraphs.append(f"Your balance already matches {against}: no fader needs to move.")
    paragraphs.append(_left_alone(advice, moves))
    offset = advice.get("global_offset_db") or 0.0
    if not is_leave(offset):
        paragraphs.append(master_sentence(offset))
    paragraphs.append(headroom_sentence(advice.get("evidence", {}).get("headroom", {})))
    clipping = [line for line in (comparison.artifact.get("warnings", []) if comparison else []) if "peak" in line]
    if clipping:
        paragraphs.append("Watch the level: " + "; ".join(clipping) + ".")
    paragraphs.append("Ask **why?** about a stem, or say **apply** to render these moves.")
    return "\n\n".join(p for p in paragraphs if p)


def _amount_answer(result: ToolResult) -> str:
    move, stem = result.artifact.get("move"), result.artifact.get("stem")
    if not move:
        return result.content
    verb = "Raise" if move["delta_db"] > 0 else "Lower"
    return (f"{verb} the {stem} by {abs(move['delta_db']):.1f} dB; on the fader, about "
            f"{abs(rounded_db(move['delta_db'])):g} dB. The measurements put the right move between "
            f"{move['low_db']:+.1f} and {move['high_db']:+.1f} dB.")


def _comparison_answer(artifact: dict[str, Any]) -> str:
    rows = artifact.get("stems", {})
    lines = ["| stem | A (LUFS) | B (LUFS) | A − B (LU) |", "| --- | ---: | ---: | ---: |"]
    for name, row in rows.items():
        cells = [("silent" if row[key] is None else f"{row[key]:.1f}") for key in ("a_lufs", "b_lufs")]
        diff = row["a_minus_b_lu"]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {'—' if diff is None else format_difference(diff)} |")
    diffs = {name: row["a_minus_b_lu"] for name, row in rows.items() if row["a_minus_b_lu"] is not None}
    applied = artifact.get("applied") or {}
    summary = []
    if applied:
        summary.append("After applying " + ", ".join(f"{stem} {gain:+.1f} dB" for stem, gain in applied.items()) + ":")
    if diffs:
        worst = max(diffs, key=lambda name: abs(diffs[name]))
        if all(abs(value) < 0.5 for value in diffs.values()):
            summary.append(f"every stem is within 0.5 LU of the reference (largest: {worst}, "
                           f"{format_difference(diffs[worst])} LU).")
        else:
            summary.append(f"the largest difference is the {worst}, {format_difference(diffs[worst])} LU.")
    return " ".join(summary) + "\n\n" + "\n".join(lines)


class OfflinePlanner(BaseChatModel):
    """A rule-based planner that answers mixing requests through the tools, offline.

    ``context`` tells it the loaded stem names and whether a reference is loaded, so it can tell
    "the kick" means the drums; the session passes its workspace's view.
    """

    context: Callable[[], dict[str, Any]] = Field(default=lambda: {"stems": [], "has_reference": False})

    @property
    def _llm_type(self) -> str:
        return "faderwise-offline-planner"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> OfflinePlanner:  # type: ignore[override]
        return self

    def intent(self, messages: Sequence[BaseMessage]) -> Intent:
        """What the producer's latest message asks for and the tool calls that answer it ("why?"
        right after an overview asks about the stem it led with)."""
        last_human = turn_start(messages)
        if last_human is None:
            return Intent("help")
        context = self.context()
        intent = classify(str(messages[last_human].content), context.get("stems", []),
                          has_reference=bool(context.get("has_reference")))
        if intent.kind in ("why", "how_much") and not intent.stems:
            led = lead_stem(messages, last_human, context.get("stems", []),
                            has_reference=bool(context.get("has_reference")))
            if led is not None:
                intent = Intent(intent.kind, (led,), calls=(("explain_stem", {"stem": led}),))
        return intent

    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The next message: tool calls for a new request, or the answer once its tools have run."""
        last_human = turn_start(messages)
        if last_human is None:
            return AIMessage(content=HELP_TEXT)
        intent = self.intent(messages)
        after = messages[last_human + 1:]
        if any(isinstance(m, ToolMessage) for m in after):
            previous = next((message_text(m.content) for m in reversed(messages[:last_human])
                             if isinstance(m, AIMessage) and not m.tool_calls), "")
            return AIMessage(content=write_answer(intent, _results(after), str(messages[last_human].content),
                                                  previous))
        if intent.calls:
            calls = [{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
                     for name, args in intent.calls]
            return AIMessage(content="", tool_calls=calls)
        if intent.kind == "help":
            return AIMessage(content=HELP_TEXT)
        if intent.kind == "which-daw":
            return AIMessage(content=WHICH_DAW_TEXT)
        if intent.kind == "stray-answer":
            return AIMessage(content="There is nothing waiting for a yes or no right now. " + FALLBACK_TEXT)
        return AIMessage(content=FALLBACK_TEXT)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        message = self.respond(messages)
        if message.tool_calls:
            chunks = [{"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                      for i, c in enumerate(message.tool_calls)]
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=chunks))  # type: ignore[arg-type]
            return
        for piece in re.findall(r"\S+\s*|\s+", str(message.content)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
