"""The offline planner: a chat model that needs no language model.

It reads the producer's last message, picks the tools that answer it (rules over the words, with
stem names matched the way :mod:`faderwise.advisor.stem_names` does), and once the tools have run writes
the answer from their results. Its repertoire (:data:`HELP_TEXT`) is small and exact: what it
does not understand gets a reply saying what it does understand, never a guess.

It is a LangChain chat model, so the agent graph treats it like any other: ``bind_tools``
returns the planner itself, tool calls come as ``AIMessage.tool_calls``, and answers stream.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from faderwise.advisor.evidence import format_time
from faderwise.advisor.explain import is_are, is_leave, it_is, leave_sentence, master_sentence, rounded_db
from faderwise.advisor.headroom import headroom_sentence
from faderwise.advisor.model import GainMove
from faderwise.advisor.registry import ADVISORS
from faderwise.advisor.stem_names import mention_table, mentioned_stems, mentions, missing_instruments
from faderwise.agent.messages import message_text, turn_start
from faderwise.agent.semantic import EmbedderUnavailableError, ExampleMatcher, default_matcher
from faderwise.agent.tools import move_headline
from faderwise.agent.understand import LOUD_SIDE, QUIET_SIDE, Request, side, understand
from faderwise.tools.report import format_difference, format_level

HELP_TEXT = """I can measure your stems, compare them with a reference and say which faders to move. Try:

- **overview** / "how's my mix?": compare with the reference and propose moves
- "what's poking out?", "what's buried?", "top 3 moves", "which stems can stay?"
- "what about the bass?", "is the kick too loud?" (a part word means the stem that holds it)
- "why?", "how much exactly?": about the stem we are talking about
- "how loud is the whole mix?", "how much headroom is left?", "is anything clipping?"
- "is my mix hotter than the reference?", "compare" (every stem, A against B)
- "what if I bring the guitar up 2 dB?" (changes nothing), "drums and bass together" (a group as one)
- "only take the vocals down 2 instead" (your own move; asks first), "second opinion?" (a judge scores the advice)
- "apply" or "apply all of it except the drums" (asks first; renders to a new folder), "undo", "forget the bass move"
- "plot" (levels) or "plot loudness over time", "bundle the vocals"
- "use the single-mix advisor", "list stems", "load FOLDER" (or SONG.RPP / SONG.ardour), "reference FOLDER"
- "export to reaper" (a new copy of the project with the faders moved), "push to reaper" / "push to ardour"
  (moves the running DAW's faders over OSC; shows them and asks first), "undo the push"
"""
FALLBACK_TEXT = ("I'm the offline planner, so I only understand mixing requests about gain: the balance and which "
                 "stem is off, one stem, the mix's level, what-ifs, your own moves, apply, undo, plots. Type **help** "
                 "for examples, or switch to a language model with /model.")


@dataclass(frozen=True)
class Intent:
    """What a message asks for (:class:`~faderwise.agent.understand.Request`, read) and the tool calls
    that answer it: ``kind`` is the request's intent, ``stems`` and ``detail`` its arguments."""

    kind: str
    stems: tuple[str, ...] = ()
    detail: str | None = None
    calls: tuple[tuple[str, dict[str, Any]], ...] = field(default=())
    request: Request | None = None


WHICH_DAW_TEXT = "Which DAW? Say **push to reaper** or **push to ardour** (and **undo the push to reaper** to go back)."
SCOPE_TEXT = ("faderwise advises gain only (how loud each stem sits in the mix): not EQ, compression, reverb or "
              "other effects, panning or arrangement.")

Calls = tuple[tuple[str, dict[str, Any]], ...]


def _one(request: Request) -> dict[str, Any]:
    return {"stem": request.stems[0]} if request.stems else {}


def _each(tool: str, request: Request) -> Calls:
    return tuple((tool, {"stem": stem}) for stem in request.stems) or ((tool, {}),)


def _advice_calls(request: Request, has_reference: bool) -> Calls:
    return (("advise", {}),)


def _overview_calls(request: Request, has_reference: bool) -> Calls:
    return (("compare_to_reference", {}), ("advise", {})) if has_reference else (("advise", {}),)


def _apply_calls(request: Request, has_reference: bool) -> Calls:
    args: dict[str, Any] = {}
    if request.stems:
        args["stems"] = list(request.stems)
    if request.except_stems:
        args["except_stems"] = list(request.except_stems)
    return (("apply_moves", args),)


def _forget_calls(request: Request, has_reference: bool) -> Calls:
    if request.except_stems or request.detail == "all":
        return (("forget_move", {"except_stems": list(request.except_stems)}),)
    if len(request.stems) > 1:
        return (("forget_move", {"stems": list(request.stems)}),)
    return (("forget_move", _one(request)),)


def _amount_calls(tool: str) -> Callable[[Request, bool], Calls]:
    def calls(request: Request, has_reference: bool) -> Calls:
        if request.db is None or (tool == "what_if" and not request.stems):
            return ()
        return ((tool, {**_one(request), ("gain_db" if tool == "what_if" else "delta_db"): request.db}),)
    return calls


def _no_calls(request: Request, has_reference: bool) -> Calls:
    return ()


def classify(text: str, stem_names: Sequence[str], *, has_reference: bool, pending: Mapping[str, float] | None = None,
             focus: str | None = None, matcher: ExampleMatcher | None = None) -> Intent:
    """The intent of one message (:func:`~faderwise.agent.understand.understand`, with the shipped
    examples unless ``matcher`` is given) and the tool calls that answer it."""
    if text.strip().strip(".!").casefold() in STRAY_ANSWERS:  # a yes or no with no question waiting
        return Intent("stray-answer")
    request = understand(text, stem_names, matcher=matcher if matcher is not None else _matcher(),
                         pending=pending, focus=focus)
    return intent_of(request, has_reference=has_reference)


def intent_of(request: Request, *, has_reference: bool) -> Intent:
    """The :class:`Intent` (with its tool calls) of a read request; a slash command's comes here directly."""
    kind = request.intent
    calls = INTENT_TABLE[kind].calls(request, has_reference) if kind in INTENT_TABLE else ()
    if kind in ("push", "undo_push") and not calls:
        kind = "which-daw"
    if kind == "advisor":  # answered as an overview from that advisor
        return Intent("overview", (), request.detail or "single-mix", calls, request)
    return Intent(kind, request.stems, request.detail, calls, request)


def _matcher() -> ExampleMatcher | None:
    """The shipped examples (None when the embedder's package is missing: the cues alone then)."""
    try:
        return default_matcher()
    except EmbedderUnavailableError:
        return None


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


@dataclass(frozen=True)
class Done:
    """What an answer is written from: the intent (and its request), the tools that ran without error
    (``results``, and ``by_name``), what the producer ``said`` and the ``previous`` reply."""

    intent: Intent
    request: Request
    results: tuple[ToolResult, ...]
    said: str = ""
    previous: str = ""

    @property
    def by_name(self) -> dict[str, ToolResult]:
        return {r.name: r for r in self.results}

    def artifact(self, tool: str) -> dict[str, Any] | None:
        found = self.by_name.get(tool)
        return found.artifact if found is not None else None

    def joined(self) -> str:
        return "\n\n".join(r.content for r in self.results)


def write_answer(intent: Intent, results: Sequence[ToolResult], said: str = "", previous: str = "") -> str:
    """The reply to ``intent`` (the producer ``said`` it; ``previous`` is the last reply) from its
    tools' results: the intent's answer in :data:`INTENT_TABLE` (the results themselves when it has
    none), part words said back first, missing instruments and failed parts last."""
    failures = [r for r in results if r.failed]
    done = [r for r in results if not r.failed]
    if not done:
        return "I couldn't do that: " + " ".join(r.content.removeprefix("Error: ") for r in failures)
    request = intent.request or Request(intent.kind, intent.stems, detail=intent.detail)
    spec = INTENT_TABLE.get(intent.kind)
    answered = spec.answer(Done(intent, request, tuple(done), said, previous)) if spec and spec.answer else None
    text = answered if answered is not None else "\n\n".join(r.content for r in done)
    if failures:
        text += "\n\n" + "\n".join(f"(That part failed: {r.content.removeprefix('Error: ')})" for r in failures)
    return _said_back(request) + text + _missing_sentence(request, ())


def _advice_of(answer: Callable[[Done, dict[str, Any]], str]) -> Callable[[Done], str | None]:
    """An answer written from the advise tool's advice (None when it did not run)."""
    def write(done: Done) -> str | None:
        advice = done.artifact("advise")
        return answer(done, advice) if advice is not None else None
    return write


def _what_if_answer(done: Done) -> str:
    return done.joined() + (" Say **apply** for the advised moves, or set your own (\"make it "
                            f"{format_difference(done.request.db or 0.0)} dB instead\").")


def _judge_answer(done: Done) -> str:
    first, *rest = done.results[0].content.split("\n")
    return first + "".join(f"\n- {line}" for line in rest)


def _apply_answer(done: Done) -> str | None:
    if not done.results[0].artifact.get("applied"):
        return None
    return done.results[0].content + " Say **compare** to check it against the reference, or **undo** to go back."


def _heard(said: str, result: ToolResult) -> str:
    """"By the measurements the drums are not too loud: " when the producer hears a stem one way and
    the measured move goes the other (or nowhere); "" otherwise."""
    if result.name != "explain_stem" or len(mentioned_stems(said, [str(result.artifact.get("stem"))])) != 1:
        return ""
    heard = side(said.casefold())
    if heard == "off" or (not LOUD_SIDE.search(said.casefold()) and not QUIET_SIDE.search(said.casefold())):
        return ""
    stem, move = str(result.artifact.get("stem")), result.artifact.get("move")
    delta = move["delta_db"] if isinstance(move, dict) else 0.0
    if (heard == "loud" and delta < 0) or (heard == "quiet" and delta > 0):
        return ""
    return f"By the measurements the {stem} {is_are(stem)} not too {'loud' if heard == 'loud' else 'quiet'}. "


def _said_back(request: Request) -> str:
    """"The kick is part of the drums stem. " for each part word the message used."""
    if request.intent == "scope":
        return ""  # the scope answer says it itself
    lines = [f"The {phrase} {is_are(phrase)} part of the {stem} stem." for phrase, stem in request.parts]
    return " ".join(lines) + (" " if lines else "")


def _missing_sentence(request: Request, stem_names: Sequence[str]) -> str:
    """A clear word when no stem holds an instrument the message names."""
    if not request.missing:
        return ""
    words = ", ".join(f"the {word}" for word in request.missing)
    listed = f" (it has: {', '.join(stem_names)})" if stem_names else ""
    return f"\n\nNo stem of this session holds {words}{listed}, so I can't say anything about {'it' if len(request.missing) == 1 else 'them'}."


def _ranking_answer(request: Request, advice: dict[str, Any]) -> str:
    """The moves, biggest first (the first ``request.n``), then the stems that stay."""
    moves = _answered_moves(Intent("overview"), advice)
    if not moves:
        return "Nothing to rank: every stem is within 0.5 dB of where it should be."
    shown = moves[:request.n] if request.n else moves
    lines = [f"{index}. {_headline(advice, move)}" for index, move in enumerate(shown, 1)]
    rest = len(moves) - len(shown)
    tail = f"\n\n{rest} more move{'s' if rest > 1 else ''} after these; ask for **the ranking** to see all." if rest else ""
    return "From furthest off to closest:\n" + "\n".join(lines) + tail + "\n\n" + _left_alone(advice, moves)


def _can_stay_answer(advice: dict[str, Any]) -> str:
    moves = _moves(advice)
    alone = _left_alone(advice, moves)
    moved = ", ".join(f"the {m.stem} ({m.delta_db:+.1f} dB)" for m in sorted(moves, key=lambda m: -abs(m.delta_db)))
    text = alone or "No stem can stay as it is: every one is more than 0.5 dB from where it should be."
    return text + (f" The ones to move: {moved}." if moved else "")


def _overall_answer(comparison: dict[str, Any]) -> str:
    difference = comparison.get("mix_a_minus_b_lu")
    if not isinstance(difference, (int, float)):
        return "One of the two mixes is silent, so their overall levels cannot be compared."
    if abs(difference) < 0.5:
        verdict = "level with the reference overall"
    else:
        verdict = f"{'louder' if difference > 0 else 'quieter'} than the reference overall"
    return (f"Your mix is {verdict}: {format_difference(difference)} LU (integrated loudness, ITU-R BS.1770). That "
            "is the master level, not the balance; the balance moves are what **overview** lists.")


def _mix_answer(request: Request, measured: dict[str, Any]) -> str:
    """The mix's own loudness, true peak, headroom or clipping, from the measure tool."""
    lufs, true_peak = measured.get("mix_lufs"), measured.get("mix_true_peak_dbtp")
    sample_peak, ceiling = measured.get("mix_sample_peak_dbfs"), measured.get("ceiling_dbtp", -1.0)
    warnings = [line for line in measured.get("warnings", []) if isinstance(line, str)]
    facts = (f"Your mix: {format_level(lufs)} LUFS integrated (ITU-R BS.1770), true peak "
             f"{format_level(true_peak, silent_text='—')} dBTP, sample peak {format_level(sample_peak, silent_text='—')} dBFS.")
    if request.detail == "headroom" and isinstance(true_peak, (int, float)):
        return (facts + f" Headroom: {format_difference(-true_peak)} dB below 0 dBTP, "
                f"{format_difference(ceiling - true_peak)} dB below the {ceiling:.0f} dBTP ceiling streaming services ask for.")
    if request.detail == "clipping":
        clipped = [line for line in warnings if "clip" in line]
        if clipped:
            return facts + " Yes: " + "; ".join(clipped) + "."
        return facts + (" Nothing clips: no stem and not the mix reaches full scale." if not warnings else
                        " Nothing clips, but: " + "; ".join(warnings) + ".")
    return facts + ("".join(f" Warning: {line}." for line in warnings))


def _why_answer(result: ToolResult, previous: str) -> str:
    """Every measurement behind one stem's move, as a list: what the headline sentence leaves out
    (level against the mix, both extreme moments, every band the backing covers, how many windows
    agree). Asked again right after, it says so instead of repeating itself."""
    stem, facts, move = str(result.artifact.get("stem")), result.artifact.get("facts") or {}, result.artifact.get("move")
    if facts.get("status") != "measured":
        return f"Here is the evidence for the {stem}: {result.content}"
    header = (f"How I know the {stem} should move {move['delta_db']:+.1f} dB:" if move else
              f"Why the {stem} can stay where {it_is(stem)}:")
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
    against = "the reference" if reference else "the range real mixes give each kind of stem (no reference used)"
    if intent.kind == "which":
        wanted = _answered_moves(intent, advice)
        if not wanted:
            what = {"loud": "too loud", "quiet": "too quiet", "off": "off"}[intent.detail or "off"]
            return f"No stem is {what} compared with {against}: every stem is within 0.5 dB."
        first, rest = wanted[0], wanted[1:]
        lead = {"loud": "too loud", "quiet": "too quiet", "off": "furthest off"}[intent.detail or "off"]
        text = f"The **{first.stem}** {is_are(first.stem)} {lead}. {_headline(advice, first)}"
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


@dataclass(frozen=True)
class IntentSpec:
    """One row of :data:`INTENT_TABLE`: what the intent does (said in help and in the fallback's
    "closest things I can do"), an example, and the tool calls a request of it needs."""

    does: str
    example: str
    calls: Callable[[Request, bool], Calls]
    answer: Callable[[Done], str | None] | None = None


INTENT_TABLE: dict[str, IntentSpec] = {
    "overview": IntentSpec("compare with the reference and propose moves", "how's my mix?", _overview_calls,
                           _advice_of(lambda d, advice: _advice_answer(d.intent, advice, d.by_name.get(
                               "compare_to_reference")))),
    "which": IntentSpec("say which stem is furthest off, too loud or too quiet", "what's poking out?", _advice_calls,
                        _advice_of(lambda d, advice: _advice_answer(d.intent, advice, None))),
    "ranking": IntentSpec("rank the moves, biggest first", "top 3 moves", _advice_calls,
                          _advice_of(lambda d, advice: _ranking_answer(d.request, advice))),
    "can_stay": IntentSpec("say which stems can stay as they are", "which stems can stay?", _advice_calls,
                           _advice_of(lambda d, advice: _can_stay_answer(advice))),
    "overall": IntentSpec("say whether your mix is louder or quieter than the reference overall",
                          "is my mix hotter than the reference?", lambda r, ref: (("compare_to_reference", {}),),
                          lambda d: _overall_answer(d.results[0].artifact)),
    "mix_level": IntentSpec("measure the mix itself: loudness, true peak, headroom, clipping",
                            "how much headroom is left?", lambda r, ref: (("measure", {}),),
                            lambda d: _mix_answer(d.request, d.results[0].artifact)),
    "stem": IntentSpec("one stem's move", "what about the bass?",
                       lambda r, ref: _each("explain_stem", r) if r.stems else (),
                       lambda d: "\n\n".join(_heard(d.said, r) + r.content for r in d.results)),
    "why": IntentSpec("the evidence behind a move", "why?", lambda r, ref: (("explain_stem", _one(r)),),
                      lambda d: _why_answer(d.results[0], d.previous)),
    "how_much": IntentSpec("the exact amount of a move", "how much exactly?",
                           lambda r, ref: (("explain_stem", _one(r)),), lambda d: _amount_answer(d.results[0])),
    "measure": IntentSpec("measure a stem's loudness and peaks", "how loud is the vocal?",
                          lambda r, ref: _each("measure", r),
                          lambda d: "\n".join(f"- {line}" for r in d.results for line in r.content.rstrip(".").split("; "))),
    "compare": IntentSpec("a table of every stem against the reference", "compare",
                          lambda r, ref: (("compare_to_reference", {}),),
                          lambda d: _comparison_answer(d.results[0].artifact)),
    "what_if": IntentSpec("what a fader change would do, without making it", "what if I bring the guitar up 2 dB?",
                          _amount_calls("what_if"), _what_if_answer),
    "own_move": IntentSpec("set your own amount for a move", "only take the vocals down 2 instead",
                           _amount_calls("set_move")),
    "apply": IntentSpec("render the moves to a new folder (asks first)", "apply all of it except the drums",
                        _apply_calls, _apply_answer),
    "forget": IntentSpec("drop a pending move (asks first)", "forget the bass move", _forget_calls),
    "undo": IntentSpec("undo the last apply (asks first)", "undo", lambda r, ref: (("undo_apply", {}),)),
    "group": IntentSpec("measure stems summed as one against the rest", "drums and bass together",
                        lambda r, ref: (("measure_group", {"stems": list(r.stems)}),) if len(r.stems) > 1 else ()),
    "judge": IntentSpec("a judge's second opinion on the advice", "second opinion?",
                        lambda r, ref: (("second_opinion", {}),), _judge_answer),
    "plot": IntentSpec("plot levels or loudness over time", "plot loudness over time",
                       lambda r, ref: (("plot", {"kind": r.detail or "levels"}),),
                       lambda d: f"{d.results[0].content}\n\n```\n{d.results[0].artifact.get('terminal', '')}\n```"),
    "bundle": IntentSpec("write a stem's A/B bundle", "bundle the vocals",
                         lambda r, ref: (("make_ab_bundle", _one(r)),)),
    "export": IntentSpec("a new copy of the DAW project with the faders moved", "export to reaper",
                         lambda r, ref: (("export_project", {"project": r.detail} if r.detail else {}),)),
    "push": IntentSpec("move a running DAW's faders over OSC (asks first)", "push to reaper",
                       lambda r, ref: (("push_faders", {"daw": r.detail, **r.ports}),) if r.detail else ()),
    "undo_push": IntentSpec("put the DAW's faders back (asks first)", "undo the push to reaper",
                            lambda r, ref: (("undo_push", {"daw": r.detail}),) if r.detail else ()),
    "advisor": IntentSpec("advise with another advisor", "use the single-mix advisor",
                          lambda r, ref: (("advise", {"advisor": r.detail or "single-mix"}),)),
    "list": IntentSpec("list the stems and pending moves", "list stems", lambda r, ref: (("list_stems", {}),)),
    "load": IntentSpec("load your stems", "load ~/song/stems", lambda r, ref: (("load_stems", {"path": r.detail}),)),
    "reference": IntentSpec("load a balanced reference", "reference ~/song/B",
                            lambda r, ref: (("set_reference", {"path": r.detail}),)),
    "scope": IntentSpec("say what gain can do about a tone request", "make the snare punchier",
                        lambda r, ref: (("explain_stem", _one(r)),) if r.stems else (("advise", {}),),
                        lambda d: _scope_answer(d.intent, d.results[0], d.said)),
    "help": IntentSpec("say what I can do", "help", _no_calls),
    "greeting": IntentSpec("say hello", "hi", _no_calls),
    "thanks": IntentSpec("say you're welcome", "thanks", _no_calls),
    "clarify": IntentSpec("ask what you mean", "turn it down", _no_calls),
    "unknown": IntentSpec("say what I can do instead", "what's the weather?", _no_calls),
}
"""Every intent the offline chat answers, with its tool calls and its answer (None: the tools'
results as they are): adding one is a row here, its cue words in
:data:`faderwise.agent.understand.CUES` and a few labelled examples in ``request_examples.jsonl``."""


STRAY_ANSWERS = frozenset({"y", "yes", "yeah", "yep", "ok", "okay", "sure", "n", "no", "nope"})


NO_TOOL_ANSWERS = ("greeting", "thanks", "clarify", "unknown")


def closest_things(request: Request) -> str:
    """The things faderwise can do that a message came closest to, with an example each."""
    kinds = [kind for kind in request.alternatives if kind in INTENT_TABLE and kind not in NO_TOOL_ANSWERS]
    kinds = (kinds or ["overview", "which", "stem"])[:3]
    return "; ".join(f"{INTENT_TABLE[kind].does} (\"{INTENT_TABLE[kind].example}\")" for kind in kinds)


def no_tool_answer(intent: Intent, stem_names: Sequence[str]) -> str:
    """The reply to a message no tool answers: small talk, a question back, or what is missing."""
    request = intent.request or Request(intent.kind)
    if intent.kind == "greeting":
        return "Hi! Ask **overview** for the moves, or **help** for what I can do."
    if intent.kind == "thanks":
        return "You're welcome. Say **apply** when you're ready, or ask about any stem."
    if intent.kind == "clarify":
        return ("I'm not sure what you mean. Closest things I can do: " + closest_things(request) +
                ". Which one, and for which stem?")
    if intent.kind == "stem" and request.missing:
        return _missing_sentence(request, stem_names).strip()
    if intent.kind == "what_if":
        return ("What change should I try? Say the stem and the amount, e.g. \"what if I bring the guitar up 2 dB?\""
                + _missing_sentence(request, stem_names))
    if intent.kind == "own_move":
        return ("Which stem, by how much and which way? Say it with the sign, e.g. \"make the vocals -2 dB "
                "instead\"; I never guess a direction.")
    if intent.kind == "group":
        return ("Which stems together? Name two or more, e.g. \"drums and bass together\" or \"everything but the "
                f"vocals\" (this session has: {', '.join(stem_names) or 'no stems yet'}).")
    if intent.kind == "stem":
        return FALLBACK_TEXT
    return f"{FALLBACK_TEXT} The closest things I can do: {closest_things(request)}."


class OfflinePlanner(BaseChatModel):
    """A rule-based planner that answers mixing requests through the tools, offline.

    ``context`` tells it the loaded stem names and whether a reference is loaded, so it can tell
    "the kick" means the drums; the session passes its workspace's view.
    """

    context: Callable[[], dict[str, Any]] = Field(default=lambda: {"stems": [], "has_reference": False})
    chooser: Callable[[str, tuple[str, ...]], Request | None] | None = None
    """A language model that reads the request instead (``understand=model``): text and stem names in,
    a :class:`Request` out, or None when it failed (the offline reader reads the message then)."""

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
        attached = messages[last_human].additional_kwargs.get("request")
        if isinstance(attached, dict):  # a slash command: read already
            return intent_of(Request.from_json(attached), has_reference=bool(context.get("has_reference")))
        said = str(messages[last_human].content)
        intent = self._chosen(said, context) or classify(
            said, context.get("stems", []), has_reference=bool(context.get("has_reference")),
            pending=context.get("pending"), focus=context.get("focus"))
        if intent.kind in ("why", "how_much") and not intent.stems:
            led = lead_stem(messages, last_human, context.get("stems", []),
                            has_reference=bool(context.get("has_reference")))
            if led is not None:
                intent = Intent(intent.kind, (led,), calls=(("explain_stem", {"stem": led}),))
        return intent

    def _chosen(self, said: str, context: dict[str, Any]) -> Intent | None:
        """The model's reading of ``said`` (with the grammar's part words and missing instruments), or
        None when there is no chooser or it failed (the offline reader reads it then)."""
        if self.chooser is None:
            return None
        stems = tuple(context.get("stems", []))
        request = self.chooser(said, stems)
        if request is None:
            return None
        found = mentions(said, stems)
        request = dataclasses.replace(request, parts=tuple(dict.fromkeys((m.phrase, m.stem) for m in found
                                                                         if m.is_part)),
                                      missing=tuple(missing_instruments(said, stems, found=found)))
        return intent_of(request, has_reference=bool(context.get("has_reference")))

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
        if intent.kind in NO_TOOL_ANSWERS or intent.request is not None:
            return AIMessage(content=no_tool_answer(intent, self.context().get("stems", [])))
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
