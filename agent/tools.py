"""The agent's tools: each returns ``(content, artifact)``.

``content`` is a short text the chat model reads (and may quote): every number it needs to cite,
nothing more. ``artifact`` is JSON-ready data for the interface (the stems panel, tool blocks,
transcripts), with a ``kind`` key saying what it holds. Tools act on one session's
:class:`~faderwise.agent.workspace.Workspace`; their errors are :class:`~faderwise.tools.errors.FaderwiseError`
messages that reach the producer as they are.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool, InjectedToolCallId, tool
from langgraph.prebuilt import InjectedState
from langgraph.types import interrupt

from faderwise.advisor.explain import (
    as_it_is,
    backing_sentence,
    confidence_sentence,
    instruction,
    is_leave,
    level_clause,
    masking_sentence,
    moment_sentence,
)
from faderwise.advisor.judge import RubricJudge
from faderwise.advisor.judge import second_opinion as judge_second_opinion
from faderwise.advisor.model import Advice, GainMove
from faderwise.agent.plots import write_plot
from faderwise.agent.workspace import LoadedStems, NothingLoadedError, Workspace
from faderwise.tools.analysis import TRUE_PEAK_CEILING_DBTP, headroom_warnings, json_number, peak_warning
from faderwise.tools.daw.export import RELATIVE_NOTE, FaderPlan, change_lines
from faderwise.tools.daw.osc import OscDaw
from faderwise.tools.daw.push import AlreadyPushedError, apply_push, last_push, plan_push, repeated_push
from faderwise.tools.daw.push import undo_push as undo_push_faders
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.json_files import plain_json
from faderwise.tools.report import format_difference, format_level

StemArg = Annotated[str | None, "a stem name or the words for it ('vox', 'the kick'); omit for the stem the "
                    "conversation is about"]
Result = tuple[str, dict[str, Any]]
TOOL_NAMES = ("load_stems", "set_reference", "list_stems", "measure", "compare_to_reference", "advise", "explain_stem",
              "make_ab_bundle", "plot", "apply_moves", "undo_apply", "forget_move", "export_project", "push_faders",
              "undo_push", "what_if", "set_move", "measure_group", "second_opinion")
"""The tools :func:`make_tools` makes, in its order (scripts name them in ``expect: {tools: …}``)."""
CHANGES_SESSION = frozenset({"load_stems", "set_reference", "apply_moves", "undo_apply", "forget_move", "push_faders",
                             "undo_push", "set_move"})
"""The tools that change what a session holds or the producer's DAW (the rest only measure, advise or
write new files): a model may call them only when the producer's message asks for them."""
CONFIRMS_ITSELF = frozenset({"apply_moves", "undo_apply", "push_faders", "undo_push", "forget_move", "set_move"})
"""The session-changing tools that ask the producer themselves before they change anything."""
YES_WORDS = frozenset({"y", "yes", "yeah", "yep", "ok", "okay", "sure", "apply", "do it", "go", "go ahead", "confirm"})


class ApplyRefusedError(FaderwiseError):
    """An apply the agent may not run: several in one step (each would need its own answer)."""


def confirmation_id(tool_call_id: str, plan: object) -> str:
    """The id of one confirmation question: the tool call that asks it and exactly what it would change
    (``plan``, any JSON-ready value: the moves and the audio they apply to, the faders and the DAW…). An
    answer is taken only for the same id, so a "yes" can never run another plan than the one shown."""
    digest = hashlib.sha1(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{tool_call_id}:{digest}"


def ask_producer(tool_call_id: str, kind: str, question: str, plan: object,
                 **details: Any) -> Literal["yes", "no", "other"]:
    """Ask the producer ``question`` (the graph pauses; the chat shows it as a yes/no) about exactly
    ``plan``: "yes" or "no", or "other" when the answer came for another question."""
    plan_id = confirmation_id(tool_call_id, plan)
    answer = interrupt({"kind": kind, "id": plan_id, "question": question, **details})
    if not isinstance(answer, dict) or answer.get("id") != plan_id:
        return "other"
    return "yes" if is_yes(answer.get("answer")) else "no"


def _last_tool_calls(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of the model's latest message (the step being run)."""
    for message in reversed(state.get("messages", [])):
        if isinstance(message, AIMessage):
            return list(message.tool_calls)
    return []


def is_yes(answer: object) -> bool:
    """Whether a confirmation answer (bool or the producer's words) means yes."""
    if isinstance(answer, bool):
        return answer
    return str(answer).strip().strip(".!").casefold() in YES_WORDS


def _set_artifact(kind: str, loaded: LoadedStems) -> dict[str, Any]:
    stems = loaded.stems
    return {"kind": kind, "path": str(loaded.path), "stems": stems.names, "rate": stems.rate,
            "channels": stems.channels, "duration_s": round(stems.duration_s, 3), "warnings": list(stems.warnings)}


def _set_summary(loaded: LoadedStems) -> str:
    stems = loaded.stems
    text = (f"{len(stems.names)} stems from {loaded.path}: {', '.join(stems.names)} "
            f"({stems.duration_s:.1f} s, {stems.rate} Hz, {stems.channels} ch).")
    if loaded.mapping is not None:
        text += f" {loaded.mapping.project.daw_name} tracks (track ← stem file): {'; '.join(loaded.mapping.lines())}."
    return text + "".join(f" Warning: {line}" for line in stems.warnings)


def move_line(move: GainMove) -> str:
    """"vocals -4.0 dB (likely -4.1 to -3.9)"; a move set exactly (the producer's own) has no range."""
    if move.low_db == move.delta_db == move.high_db:
        return f"{move.stem} {move.delta_db:+.1f} dB"
    return f"{move.stem} {move.delta_db:+.1f} dB (likely {move.low_db:+.1f} to {move.high_db:+.1f})"


def _advice_artifact(advice: Advice, stems: list[str] | None = None) -> dict[str, Any]:
    payload = advice.to_json()
    if stems:
        payload["moves"] = [m for m in payload["moves"] if m["stem"] in stems]  # type: ignore[index,union-attr]
    return {"kind": "advice", **payload}


def move_headline(stem: str, facts: Mapping[str, Any], move: GainMove) -> str:
    """"Lower the vocals by about 4 dB: in your mix this stem is 4.0 dB louder than in the
    reference (-15.0 against -19.0 LUFS)." (the comparison only when measured against B)."""
    if facts.get("status") == "measured" and isinstance(facts.get("a_minus_b_db"), (int, float)):
        return instruction(stem, move.delta_db) + level_clause(float(facts["a_minus_b_db"]), facts)
    in_a, in_b = facts.get("stem_to_mix_a_lu"), facts.get("stem_to_mix_b_lu")
    if facts.get("status") == "relative" and isinstance(in_a, (int, float)) and isinstance(in_b, (int, float)):
        return (instruction(stem, move.delta_db) + f": it sits at {in_a:+.1f} LU against your mix, where the "
                f"reference's {facts.get('reference_stem') or stem} sits at {in_b:+.1f} LU against its own.")
    return instruction(stem, move.delta_db) + "."


def stem_explanation(stem: str, facts: Mapping[str, Any], move: GainMove | None) -> str:
    """Everything measured about one stem's move, in sentences."""
    status = facts.get("status")
    if move is None:
        if status in ("measured", "relative", "baseline"):
            amount = facts.get("move_db")
            detail = f" (measured move {format_difference(amount)} dB)" if isinstance(amount, (int, float)) else ""
            return (f"Leave the {stem} {as_it_is(stem)}: it is within 0.5 dB of where it should be{detail}."
                    + backing_sentence(facts))
        return {"silent-a": f"The {stem} is silent in your mix, so there is no level to move.",
                "silent-b": f"The {stem} is silent in the reference, so there is no level to match.",
                "silent-both": f"The {stem} is silent in both versions.",
                "no-overlap": f"The {stem} never plays in both versions at once, so its level cannot be compared.",
                "unpaired": f"The reference has no stem to compare the {stem} with."}.get(
                    str(status), f"There is no move for the {stem}.")
    return " ".join(part.strip() for part in (
        move_headline(stem, facts, move), backing_sentence(facts), moment_sentence(facts, move.delta_db),
        masking_sentence(facts) if move.delta_db > 0 else "", confidence_sentence(move.low_db, move.high_db),
    ) if part.strip())


def plan_content(headline: str, plan: FaderPlan) -> str:
    """``headline``, what the fader moves are relative to, each change and each warning."""
    where = f" in {plan.project.source}" if plan.project else ""
    text = f"{headline}: {RELATIVE_NOTE}{where}. " + "; ".join(change_lines(plan)) + "."
    return text + "".join(f" Warning: {line}" for line in plan.warnings)


def moves_text(gains_db: Mapping[str, float]) -> str:
    """"vocals -4.0 dB, drums +3.0 dB"."""
    return ", ".join(f"{stem} {gain:+.1f} dB" for stem, gain in gains_db.items())


def render_moves(workspace: Workspace, gains_db: Mapping[str, float], *, peak_safe: bool = False,
                 out: Path | None = None, force: bool = False) -> Result:
    """Apply ``gains_db`` (confirmed by the producer) to Version A: a new render folder (``out`` if
    given; ``force`` replaces an earlier faderwise render there); ``peak_safe`` trims every stem alike
    so the mix peaks at the ceiling."""
    rendered, out = workspace.apply(gains_db, peak_safe=peak_safe, out=out, force=force)
    warnings = "".join(f" Warning: {line}" for line in rendered.warnings)
    return (f"Applied {moves_text(gains_db)}; wrote {out}/stems and {out}/mix.wav. Version A is now the adjusted "
            f"mix.{warnings}"), {"kind": "apply", "applied": True, "gains_db": dict(gains_db), "folder": str(out),
                                 "render": rendered.to_json()}


def bundle_result(workspace: Workspace, stem: str, *, out: Path | None = None, force: bool = False) -> Result:
    """Write ``stem``'s A/B bundle (:meth:`Workspace.write_bundle`) and say where and which window."""
    bundle, written = workspace.write_bundle(stem, out=out, force=force)
    return (f"Wrote the {stem} bundle to {written}: {stem} and its backing in A and B, "
            f"{bundle.window_a_s[0]:.1f}–{bundle.window_a_s[1]:.1f} s of A."), {
        "kind": "bundle", "stem": stem, "folder": str(written), "window_a_s": list(bundle.window_a_s)}


def make_tools(workspace: Workspace) -> list[BaseTool]:
    """The tools of one session, bound to its workspace."""

    def serialized(function: Callable[..., Result]) -> Callable[..., Result]:
        # A model may call several tools in one step and ToolNode runs them on threads; the
        # workspace's caches are filled one call at a time, so nothing is measured twice. Each call
        # is one request: its own register of inputs, the session's front-end words (Workspace.request).
        @functools.wraps(function)
        def locked(*args: Any, **kwargs: Any) -> Result:
            with workspace.request(function.__name__):
                content, artifact = function(*args, **kwargs)
            # Artifacts are stored with the conversation: plain JSON types only (no numpy scalars).
            return content, plain_json(artifact)  # type: ignore[return-value]
        return locked

    @tool(response_format="content_and_artifact")
    @serialized
    def load_stems(path: Annotated[str, "a folder of stems, a MUSDB18-HQ song folder or a .stem.mp4"]) -> Result:
        """Load the producer's stems (Version A). Drops the previous stems' advice and applied moves."""
        loaded = workspace.load_stems(path)
        return f"Loaded Version A: {_set_summary(loaded)}", _set_artifact("stems", loaded)

    @tool(response_format="content_and_artifact")
    @serialized
    def set_reference(path: Annotated[str, "the balanced reference (Version B): a folder of stems or .stem.mp4"]) -> Result:
        """Load the balanced reference mix (Version B) to compare Version A with."""
        loaded = workspace.set_reference(path)
        return f"Loaded the reference (Version B): {_set_summary(loaded)}", _set_artifact("reference", loaded)

    @tool(response_format="content_and_artifact")
    @serialized
    def list_stems() -> Result:
        """List the loaded stems, the reference, the stem being discussed and the pending moves."""
        a = workspace.require_a()
        lines = [f"Version A: {_set_summary(a)}"]
        lines.append(f"Reference: {_set_summary(workspace.version_b)}" if workspace.version_b else "No reference loaded.")
        if workspace.applied:
            total = ", ".join(f"{stem} {gain:+.1f} dB" for stem, gain in workspace.total_gains().items())
            lines.append(f"Applied so far: {total} (Version A is now {a.path}).")
        if workspace.advice is not None:
            pending = "; ".join(move_line(m) for m in workspace.advice.moves) or "none"
            lines.append(f"Pending moves: {pending}.")
        if workspace.focus:
            lines.append(f"Talking about: {workspace.focus}.")
        return " ".join(lines), {"kind": "stems", **_set_artifact("stems", a), "focus": workspace.focus,
                                 "reference": str(workspace.version_b.path) if workspace.version_b else None}

    @tool(response_format="content_and_artifact")
    @serialized
    def measure(stem: Annotated[str | None, "one stem (its name or the words for it); omit for every stem"] = None,
                ) -> Result:
        """Measure loudness (BS.1770 integrated LUFS), level against the mix and the backing, peaks and crest
        of one stem of Version A, or of every stem when no stem is named."""
        analysis = workspace.analysis_a()
        names = [workspace.resolve(stem)] if stem else list(analysis.stems)
        true_peaks = workspace.true_peaks(names)
        rows, lines = {}, []
        for name in names:
            measured = analysis.stems[name]
            rows[name] = {"lufs": json_number(measured.stem.integrated_lufs, 1),
                          "stem_to_mix_lu": json_number(measured.stem_to_mix_lu, 1),
                          "stem_to_backing_lu": json_number(measured.stem_to_backing_lu, 1),
                          "sample_peak_dbfs": json_number(measured.stem.sample_peak_dbfs, 1),
                          "true_peak_dbtp": json_number(true_peaks[name], 1),
                          "crest_db": json_number(measured.stem.crest_db, 1),
                          "active_s": round(measured.stem.active_s, 1)}
            lines.append(f"{name}: {format_level(measured.stem.integrated_lufs)} LUFS, "
                         f"{format_difference(measured.stem_to_mix_lu)} LU against the mix, "
                         f"{format_difference(measured.stem_to_backing_lu)} LU against its backing, "
                         f"true peak {format_level(true_peaks[name], silent_text='—')} dBTP, "
                         f"plays {measured.stem.active_s:.1f} s")
        mix = analysis.mix
        headroom = (f", headroom {format_difference(-true_peaks['mix'])} dB to 0 dBTP and "
                    f"{format_difference(TRUE_PEAK_CEILING_DBTP - true_peaks['mix'])} dB to the "
                    f"{TRUE_PEAK_CEILING_DBTP:.0f} dBTP ceiling" if math.isfinite(true_peaks["mix"]) else "")
        lines.append(f"mix: {format_level(mix.integrated_lufs)} LUFS, true peak "
                     f"{format_level(true_peaks['mix'], silent_text='—')} dBTP, sample peak "
                     f"{format_level(mix.sample_peak_dbfs, silent_text='—')} dBFS{headroom}")
        mix_peak = peak_warning(analysis.label, "the mix", mix.sample_peak_dbfs, true_peaks["mix"])
        warnings = list(dict.fromkeys([*headroom_warnings(analysis), *([mix_peak] if mix_peak else [])]))
        content = "; ".join(lines) + "." + "".join(f" Warning: {line}" for line in warnings)
        return content, {"kind": "measure", "source": analysis.label, "stems": rows,
                         "mix_lufs": json_number(mix.integrated_lufs, 1),
                         "mix_true_peak_dbtp": json_number(true_peaks["mix"], 1),
                         "mix_sample_peak_dbfs": json_number(mix.sample_peak_dbfs, 1),
                         "ceiling_dbtp": TRUE_PEAK_CEILING_DBTP, "warnings": warnings}

    @tool(response_format="content_and_artifact")
    @serialized
    def compare_to_reference() -> Result:
        """Compare each stem of Version A with the reference: loudness and level against the backing, A − B."""
        comparison = workspace.comparison()
        rows, lines = {}, []
        for name, pair in comparison.stems.items():
            rows[name] = {"a_lufs": json_number(pair.a.stem.integrated_lufs, 1),
                          "b_lufs": json_number(pair.b.stem.integrated_lufs, 1),
                          "a_minus_b_lu": json_number(pair.loudness_diff_lu, 1),
                          "stem_to_backing_a_minus_b_lu": json_number(pair.stem_to_backing_diff_lu, 1)}
            lines.append(f"{name}: {format_level(pair.a.stem.integrated_lufs)} LUFS in A against "
                         f"{format_level(pair.b.stem.integrated_lufs)} in B ({format_difference(pair.loudness_diff_lu)} LU)")
        mix_line = (f"mix: {format_level(comparison.a.mix.integrated_lufs)} LUFS in A against "
                    f"{format_level(comparison.b.mix.integrated_lufs)} in B ({format_difference(comparison.mix_diff_lu)} LU)")
        # the chat's analyses leave true peaks out (a third of the time); the mix's is measured here
        mix_peak = peak_warning(comparison.a.label, "the mix", comparison.a.mix.sample_peak_dbfs,
                                workspace.true_peaks([])["mix"])
        warnings = [*comparison.all_warnings(), *([mix_peak] if mix_peak else [])]
        warnings = list(dict.fromkeys(warnings))
        content = "A − B per stem: " + "; ".join(lines) + f"; {mix_line}."
        content += "".join(f" Warning: {line}" for line in warnings)
        return content, {"kind": "comparison", "stems": rows,
                         "mix_a_minus_b_lu": json_number(comparison.mix_diff_lu, 1),
                         "applied": workspace.total_gains(), "warnings": warnings}

    @tool(response_format="content_and_artifact")
    @serialized
    def advise(
        stem: Annotated[str | None, "advise on this stem only; omit for every stem"] = None,
        advisor: Annotated[str | None,
                           "measured compares with the reference (default when one is loaded); single-mix and "
                           "equal-loudness judge Version A alone; alm (or alm:MODEL_FOLDER) is the audio-language "
                           "model that hears each stem's A/B bundle"] = None,
    ) -> Result:
        """Say which faders to move by how much, and why, from measurements. The advice becomes the pending
        moves that apply_moves renders."""
        advice = workspace.advise(advisor=advisor)
        wanted = [workspace.resolve(stem)] if stem else None
        moves = [m for m in advice.moves if not wanted or m.stem in wanted]
        if wanted:
            facts = advice.evidence.get("stems", {}).get(wanted[0], {})
            content = stem_explanation(wanted[0], facts, advice.move_for(wanted[0]))
        else:
            listed = "; ".join(move_line(m) for m in moves) or "no fader moves"
            content = f"Advice ({advice.advisor}): {listed}. {advice.text}"
        return content, _advice_artifact(advice, wanted)

    @tool(response_format="content_and_artifact")
    @serialized
    def explain_stem(stem: StemArg = None) -> Result:
        """Explain one stem's move in detail: its level in A and B, against its backing, when it is most buried
        or exposed, where the backing covers it, and how sure the move is."""
        name = workspace.resolve(stem)
        advice = workspace.current_advice()
        facts = dict(advice.evidence.get("stems", {}).get(name, {}))
        move = advice.move_for(name)
        return stem_explanation(name, facts, move), {
            "kind": "explain", "stem": name, "advisor": advice.advisor,
            "move": move.to_json() if move else None, "facts": facts,
        }

    @tool(response_format="content_and_artifact")
    @serialized
    def make_ab_bundle(stem: StemArg = None) -> Result:
        """Write the A/B bundle of one stem (target and backing in A and in B, where the target plays) for
        listening or for the audio-language model."""
        return bundle_result(workspace, workspace.resolve(stem))

    @tool(response_format="content_and_artifact")
    @serialized
    def plot(
        kind: Annotated[Literal["levels", "loudness"], "levels: each stem's loudness, A against B; loudness: "
                        "short-term loudness over time"] = "levels",
    ) -> Result:
        """Draw the stems' levels (A against B) or their short-term loudness over time: a PNG file and a
        chart for the terminal."""
        path, terminal = write_plot(workspace, kind)
        return f"Wrote the {kind} plot to {path}.", {"kind": "plot", "plot": kind, "png": str(path),
                                                      "terminal": terminal}

    @tool(response_format="content_and_artifact")
    @serialized
    def apply_moves(
        tool_call_id: Annotated[str, InjectedToolCallId],
        state: Annotated[dict[str, Any], InjectedState],
        stems: Annotated[list[str] | None, "apply only these stems' moves; omit for every pending move"] = None,
        peak_safe: Annotated[bool, "also trim every stem alike so the mix peaks at -1 dBTP (keeps the balance)"] = False,
        except_stems: Annotated[list[str] | None, "apply every pending move but these stems' ('all except the "
                                "drums')"] = None,
    ) -> Result:
        """Apply the pending moves: render the adjusted stems and mix to a new folder, which becomes Version A.
        Asks the producer to confirm first. The original audio is never changed. Call it once per step, with
        every stem to move."""
        calls = [call for call in _last_tool_calls(state) if call.get("name") == "apply_moves"]
        if len(calls) > 1:
            raise ApplyRefusedError(f"refused: this step asked to apply moves {len(calls)} times at once; nothing "
                                    "was applied. Call apply_moves once, listing every stem to move")
        names = [workspace.resolve(stem) for stem in stems] if stems else None
        left_out = [workspace.resolve(stem) for stem in except_stems or ()]
        gains = {stem: gain for stem, gain in workspace.planned_gains(names).items() if stem not in left_out}
        if not gains:
            raise NothingLoadedError("no pending move is left to apply" + (
                f" once the {', '.join(left_out)} {'is' if len(left_out) == 1 else 'are'} left out" if left_out else ""))
        listed = moves_text(gains)
        kept = (f" (leaving the {', '.join(left_out)} "
                f"{as_it_is(left_out[0]) if len(left_out) == 1 else 'as they are'})" if left_out else "")
        answer = ask_producer(tool_call_id, "confirm-apply", f"Apply {listed}{kept} and render to a new folder? "
                              "(yes/no)",
                              [sorted((stem, round(gain, 3)) for stem, gain in gains.items()),
                               workspace.require_a().fingerprint], gains_db=gains)
        if answer == "other":
            return (f"Not applied: the answer was not to this question ({listed}); ask the producer again."), {
                "kind": "apply", "applied": False, "gains_db": gains}
        if answer == "no":
            return f"Not applied: the producer declined ({listed}).", {"kind": "apply", "applied": False,
                                                                        "gains_db": gains}
        return render_moves(workspace, gains, peak_safe=peak_safe)

    @tool(response_format="content_and_artifact")
    @serialized
    def undo_apply(tool_call_id: Annotated[str, InjectedToolCallId]) -> Result:
        """Undo the last apply: Version A goes back to the stems before it, and its moves are pending again.
        Asks the producer to confirm first."""
        if not workspace.applied:
            raise NothingLoadedError("nothing has been applied in this session, so there is nothing to undo")
        last = workspace.applied[-1]
        before = workspace.applied[-2].folder / "stems" if len(workspace.applied) > 1 else last.source
        listed = moves_text(last.gains_db)
        if ask_producer(tool_call_id, "confirm-undo", f"Undo {listed}, so that Version A is {before} again? (yes/no)",
                        ["undo-apply", str(last.folder), dict(last.gains_db)]) != "yes":
            return f"Not undone: the producer did not confirm ({listed} stays applied).", {
                "kind": "undo", "undone": False, "gains_db": dict(last.gains_db), "folder": str(last.folder)}
        undone = workspace.undo()
        listed = moves_text(undone.gains_db)
        return (f"Undid {listed}; Version A is {workspace.require_a().path} again (the render in {undone.folder} "
                f"stays on disk)."), {"kind": "undo", "undone": True, "gains_db": dict(undone.gains_db),
                                      "folder": str(undone.folder)}

    @tool(response_format="content_and_artifact")
    @serialized
    def forget_move(
        tool_call_id: Annotated[str, InjectedToolCallId],
        stem: StemArg = None,
        stems: Annotated[list[str] | None, "several stems' moves to drop at once"] = None,
        except_stems: Annotated[list[str] | None, "drop every pending move but these stems' ('all except the "
                                "vocals')"] = None,
    ) -> Result:
        """Drop pending moves from the advice, so apply_moves leaves those stems alone: one stem's, several,
        or all but some (except_stems). Says exactly which and asks the producer first."""
        advice = workspace.current_advice()
        if except_stems is not None:
            kept = {workspace.resolve(name) for name in except_stems}
            names = [m.stem for m in advice.moves if m.stem not in kept]
        else:
            names = list(dict.fromkeys(workspace.resolve(name) for name in (stems or [stem])))
        dropped = {name: advice.move_for(name) for name in names}
        missing = [name for name, move in dropped.items() if move is None]
        if missing or not names:
            raise NothingLoadedError(f"there is no pending move for the {', '.join(missing)} to forget" if missing
                                     else "no pending move is left to forget")
        listed = ", ".join(move_line(move) for move in dropped.values() if move is not None)
        stays = [move_line(m) for m in advice.moves if m.stem not in names]
        question = (f"Drop {listed}, so apply leaves {'it' if len(names) == 1 else 'them'} alone" +
                    (f" (keeping {'; '.join(stays)})" if stays else "") + "? (yes/no)")
        if ask_producer(tool_call_id, "confirm-forget", question,
                        ["forget", sorted(names), workspace.require_a().fingerprint]) != "yes":
            return f"Not dropped: the producer did not confirm ({listed} stays pending).", {
                "kind": "advice-edit", "forgot": [], **_advice_artifact(advice)}
        changed = workspace.forget_moves(names)
        left = "; ".join(move_line(m) for m in changed.moves) or "none"
        return (f"Dropped the {', '.join(names)} move{'s' if len(names) > 1 else ''}. Pending moves: {left}."), {
            "kind": "advice-edit", "forgot": names, **_advice_artifact(changed)}

    @tool(response_format="content_and_artifact")
    @serialized
    def set_move(
        tool_call_id: Annotated[str, InjectedToolCallId],
        delta_db: Annotated[float, "the producer's own move in dB (+ raise, - lower); it replaces the pending one"],
        stem: StemArg = None,
    ) -> Result:
        """Set the producer's own move for one stem ("only 2 dB", "make it -2 instead"): it replaces the pending
        move and is what apply_moves renders. Says it back and asks the producer first."""
        name = workspace.resolve(stem)
        advice = workspace.current_advice()
        before = advice.move_for(name)
        was = f"the advised {before.delta_db:+.1f} dB" if before is not None else "no move"
        question = (f"Set the {name} move to {delta_db:+.1f} dB (instead of {was}), so apply renders "
                    f"{delta_db:+.1f} dB on the {name}? (yes/no)")
        if ask_producer(tool_call_id, "confirm-move", question,
                        ["set-move", name, round(float(delta_db), 3), workspace.require_a().fingerprint]) != "yes":
            return f"Not changed: the producer did not confirm; the {name} keeps {was}.", {
                "kind": "advice-edit", "set": None, **_advice_artifact(advice)}
        changed = workspace.set_move(name, float(delta_db))
        left = "; ".join(move_line(m) for m in changed.moves) or "none"
        return (f"The {name} move is now {delta_db:+.1f} dB (your move; it was {was}). Pending moves: {left}."), {
            "kind": "advice-edit", "set": {"stem": name, "delta_db": float(delta_db),
                                           "advised_db": before.delta_db if before is not None else None},
            **_advice_artifact(changed)}

    @tool(response_format="content_and_artifact")
    @serialized
    def what_if(
        gain_db: Annotated[float, "the change to try in dB (+ raise, - lower); nothing is changed"],
        stem: StemArg = None,
    ) -> Result:
        """What a fader change would do, without making it: where the stem would then sit against the reference
        and against its backing, and whether the mix would clip."""
        name = workspace.resolve(stem)
        found = workspace.what_if({name: float(gain_db)})
        row, mix = found["stems"][name], found["mix"]  # type: ignore[index]
        parts = [f"With the {name} {gain_db:+.1f} dB: {format_level(row['level_after_lufs'])} LUFS "
                 f"(now {format_level(row['level_a_lufs'])})"]
        if row.get("after_minus_b_lu") is not None:
            parts.append(f"{format_difference(row['after_minus_b_lu'])} LU against the reference's "
                         f"{format_level(row['level_b_lufs'])} LUFS")
        parts.append(f"{format_difference(row['to_backing_after_lu'])} LU against its backing (now "
                     f"{format_difference(row['to_backing_a_lu'])}" + (
                         f", the reference {format_difference(row['to_backing_b_lu'])})"
                         if row.get("to_backing_b_lu") is not None else ")"))
        peak = (f"the mix would peak at {format_level(mix['true_peak_after_dbtp'])} dBTP (now "
                f"{format_level(mix['true_peak_now_dbtp'])})")
        if mix["clips"]:
            peak += " and clip"
        elif mix["over_ceiling"]:
            peak += f", over the {TRUE_PEAK_CEILING_DBTP:.0f} dBTP ceiling"
        advised = row.get("advised_db")
        if isinstance(advised, (int, float)):
            parts.append("the advice for it is to leave it" if is_leave(advised) else
                         f"the advice for it is {advised:+.1f} dB")
        return "; ".join(parts) + f"; {peak}. Nothing was changed.", {"kind": "what-if", "stem": name, **found}

    @tool(response_format="content_and_artifact")
    @serialized
    def measure_group(
        stems: Annotated[list[str], "two or more stems to measure summed as one ('drums and bass')"],
    ) -> Result:
        """Measure a group of stems summed as one, in the mix and in the reference, and against the rest of the
        mix (e.g. the rhythm section, or everything but the vocals)."""
        names = [workspace.resolve(stem) for stem in stems]
        found = workspace.group_levels(names)
        label = " + ".join(found["members"])  # type: ignore[arg-type]
        text = (f"{label} summed: {format_level(found['a_lufs'])} LUFS in your mix, "
                f"{format_difference(found['to_rest_a_lu'])} LU against the rest of the mix")
        if found.get("b_lufs") is not None:
            text += (f"; in the reference {format_level(found['b_lufs'])} LUFS, {format_difference(found['to_rest_b_lu'])}"
                     f" LU against its rest ({format_difference(found['a_minus_b_lu'])} LU apart)")
        return text + ".", {"kind": "group", **found}

    @tool(response_format="content_and_artifact")
    @serialized
    def export_project(
        project: Annotated[str | None, "the REAPER .RPP or Ardour .ardour project the stems were bounced from; omit "
                           "when the stems were loaded from it"] = None,
    ) -> Result:
        """Write the session's fader moves (applied and pending) into a new copy of the DAW project, beside it:
        each advised track's fader moves by its dB from where it is now. The project itself is never changed."""
        plan, out = workspace.export_project(project)
        return plan_content(f"Wrote {out}", plan), {"kind": "export", "file": str(out), **plan.to_json()}

    @tool(response_format="content_and_artifact")
    @serialized
    def push_faders(
        tool_call_id: Annotated[str, InjectedToolCallId],
        daw: Annotated[Literal["reaper", "ardour"], "the DAW listening for OSC"],
        host: Annotated[str | None, "where it runs (default this machine)"] = None,
        port: Annotated[int | None, "its OSC port (default REAPER 8000, Ardour 3819)"] = None,
        listen_port: Annotated[int | None, "the port its replies come to (default REAPER 9000, Ardour 8000)"] = None,
    ) -> Result:
        """Move the running DAW's faders by the session's moves over OSC: reads the faders, shows the plan (a dry
        run) and asks the producer before sending anything; undo_push puts them back."""
        with OscDaw(daw, host or "127.0.0.1", port, listen_port=listen_port) as live:
            plan = workspace.with_headroom_warning(plan_push(live, workspace.project_moves(),
                                                             where="this session's advice"))
            if not plan.changes:
                return plan_content(f"Nothing to push to {live.where}", plan), {"kind": "push", "pushed": False,
                                                                                  **plan.to_json()}
            repeated = repeated_push(live, plan)
            if repeated is not None:
                raise AlreadyPushedError(f"these moves were pushed to {live.where} already ({repeated}) and the faders "
                                         "are still there: pushing again would move them twice (undo_push first)")
            listed = "; ".join(change_lines(plan))
            if ask_producer(tool_call_id, "confirm-push", f"Move these faders on {live.where}: {listed}? (yes/no)",
                            [{c.track: float(c.new_db or 0.0) for c in plan.changes}, live.where]) != "yes":
                return plan_content(f"Not pushed (dry run only) to {live.where}", plan), {
                    "kind": "push", "pushed": False, **plan.to_json()}
            outcome = apply_push(live, plan)
        missed = "".join(f" Warning: {track} is at {db:+.1f} dB, not where it was sent."
                         for track, db in outcome.not_taken.items())
        return plan_content(f"Pushed to {live.where} (undo_push puts them back)", plan) + missed, {
            "kind": "push", "pushed": True, "record": str(outcome.record), **plan.to_json()}

    @tool(response_format="content_and_artifact")
    @serialized
    def undo_push(tool_call_id: Annotated[str, InjectedToolCallId],
                  daw: Annotated[Literal["reaper", "ardour"], "the DAW the last push went to"]) -> Result:
        """Put the DAW's faders back where the last push found them (faders moved since are left alone).
        Asks the producer to confirm first."""
        record_path, record = last_push(daw)
        faders = [fader for fader in record.get("faders", []) if isinstance(fader, dict)]  # type: ignore[attr-defined]
        listed = "; ".join(f"{fader.get('track')} back to {format_difference(fader.get('before_db'))} dB"
                           for fader in faders if isinstance(fader.get("before_db"), (int, float))) or "no fader"
        where = f"{daw} at {record.get('host')}:{record.get('port')}"
        if ask_producer(tool_call_id, "confirm-undo-push", f"Put these faders back on {where}: {listed}? Faders "
                        "moved since the push are left alone. (yes/no)", ["undo-push", str(record_path)]) != "yes":
            return f"Not undone: the producer did not confirm; the faders on {where} stay where they are.", {
                "kind": "undo-push", "undone": False, "record": str(record_path)}
        outcome = undo_push_faders(daw)
        restored = moves_text(outcome.levels) or "no fader"
        alone = "".join(f" Left {track} at {db:+.1f} dB: it was moved since the push."
                        for track, db in outcome.left_alone.items())
        return f"Put back {restored} on {daw}.{alone}", {"kind": "undo-push", "undone": True,
                                                         "restored": dict(outcome.levels),
                                                         "left_alone": dict(outcome.left_alone)}

    @tool(response_format="content_and_artifact")
    @serialized
    def second_opinion() -> Result:
        """A judge's second opinion on the pending advice, stem by stem: correctness against the measured move
        (when a reference is loaded), specificity to the audio evidence and staying with gain, with rationales
        (the evaluation's rubric offline; the session's language model as judge when one is configured)."""
        advice = workspace.current_advice()
        truth = None
        if workspace.version_b is not None:
            measured = workspace.service.advise(workspace.require_a().stems, workspace.require_b().stems,
                                                advisor="measured", measurements=workspace)
            truth = measured.gains_db()
        opinion = judge_second_opinion(advice, truth_db=truth, judge=workspace.judge or RubricJudge())
        lines = opinion.lines()
        artifact = {"kind": "second-opinion", **opinion.to_json()}
        if opinion.failed and opinion.judge != RubricJudge.name:  # the model gave no verdict: the rubric's, too
            rubric = judge_second_opinion(advice, truth_db=truth, judge=RubricJudge())
            lines += rubric.lines()
            artifact["rubric"] = rubric.to_json()
        return "\n".join(lines), artifact

    tools = [load_stems, set_reference, list_stems, measure, compare_to_reference, advise, explain_stem,
             make_ab_bundle, plot, apply_moves, undo_apply, forget_move, export_project, push_faders, undo_push,
             what_if, set_move, measure_group, second_opinion]
    for each in tools:  # one clean paragraph each: a docstring's line breaks and indentation are not sent
        each.description = " ".join(each.description.split())
    return tools
