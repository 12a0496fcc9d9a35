"""The guard between a language model and the producer: tool calls written as text
(:mod:`faderwise.agent.text_calls`) and numbers no tool returned (:mod:`faderwise.agent.grounding`),
with a scripted fake model (``bind_tools`` returns itself)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent_fakes import ScriptedChatModel, call
from faderwise.agent.grounding import Grounding, quantities
from faderwise.agent.llm import parse_llm_spec
from faderwise.agent.script import collect
from faderwise.agent.session import AgentSession, Guarded, Notice, ToolStart
from faderwise.agent.text_calls import read_text_calls
from faderwise.agent.tools import TOOL_NAMES, make_tools
from faderwise.agent.workspace import Workspace


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {tool.name: tool for tool in make_tools(Workspace(output_dir=tmp_path_factory.mktemp("out")))}


def test_tool_names_are_the_tools(tools: dict) -> None:
    assert tuple(tools) == TOOL_NAMES


# -- tool calls written as text --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "calls"), [
    ('<tool_call>\n{"name": "advise", "arguments": {"stem": "vocals"}}\n</tool_call>', [("advise", {"stem": "vocals"})]),
    ('<tool_call>{"name": "compare_to_reference", "arguments": {}}</tool_call>\n<tool_call>{"name": "advise", '
     '"arguments": {}}</tool_call>', [("compare_to_reference", {}), ("advise", {})]),
    ('{"name": "measure", "arguments": "{\\"stem\\": \\"bass\\"}"}', [("measure", {"stem": "bass"})]),
    ('```json\n{"name": "measure", "parameters": {"stem": "bass"}}\n```', [("measure", {"stem": "bass"})]),
    ('[{"type": "function", "function": {"name": "undo_apply", "arguments": {}}}]', [("undo_apply", {})]),
    ("functions.compare_to_reference:", [("compare_to_reference", {})]),
    ('functions.explain_stem:\n{"stem": "drums"}', [("explain_stem", {"stem": "drums"})]),
    ('Sure! Let me check. {"name": "plot", "arguments": {"kind": "loudness"}}', [("plot", {"kind": "loudness"})]),
    ('<tool_call>{"name": "apply_moves", "arguments": {"stems": ["drums"]}}', [("apply_moves", {"stems": ["drums"]})]),
])
def test_text_calls_are_read_and_validated(text: str, calls: list, tools: dict) -> None:
    read = read_text_calls(text, tools)
    assert read.problem is None
    assert [(c["name"], c["args"]) for c in read.calls] == calls
    assert all(c["id"].startswith("call_") and c["type"] == "tool_call" for c in read.calls)


@pytest.mark.parametrize(("text", "problem"), [
    ('<tool_call>{"name": "advise", "arguments": {"stem": </tool_call>',
     "the model wrote a tool call faderwise could not read (not JSON: Expecting value at character 40)"),
    ('{"name": "master_eq", "arguments": {}}',
     "the model wrote a tool call faderwise could not run (there is no tool 'master_eq')"),
    ('{"name": "plot", "arguments": {"kind": "spectrum"}}',
     "the model wrote a tool call faderwise could not run (plot: kind: Input should be 'levels' or 'loudness')"),
    ('{"name": "measure", "arguments": {"stem": "bass", "gain": 3}}',
     "the model wrote a tool call faderwise could not run (measure: unknown argument gain)"),
    ('{"name": "load_stems", "arguments": {}}',
     "the model wrote a tool call faderwise could not run (load_stems: path: Field required)"),
    ('{"name": "apply_moves", "arguments": {"tool_call_id": "x", "stems": null}}',
     "the model wrote a tool call faderwise could not run (apply_moves: unknown argument tool_call_id)"),
    ("functions.advise: please advise on the vocals",
     "the model wrote a tool call faderwise could not read (functions.advise followed by prose)"),
])
def test_text_calls_that_cannot_run_are_problems(text: str, problem: str, tools: dict) -> None:
    read = read_text_calls(text, tools)
    assert read.calls == () and read.problem == problem


@pytest.mark.parametrize("text", [
    "Lower the vocals by about 4 dB: they sit 4.0 dB above the reference.",
    "Your mix has 5 stems; the function of the bass is to anchor the low end.",
    "",
])
def test_ordinary_answers_are_not_calls(text: str, tools: dict) -> None:
    assert read_text_calls(text, tools) == read_text_calls("", tools)
    assert read_text_calls(text, tools).calls == () and read_text_calls(text, tools).problem is None


# -- numbers ---------------------------------------------------------------------------------------

def test_quantities_read_units_ranges_and_times() -> None:
    found = [(q.text, q.family, round(q.value, 3), round(q.tolerance, 3)) for q in quantities(
        "Lower the vocals by about 4 dB (-15.0 against -19.0 LUFS), likely -4.1 to -3.9 dB; covered at 2–4 kHz "
        "from 0:32; true peak -1.2 dBTP; 250 ms; ITU-R BS.1770 on 5 stems, 44100 Hz.")]
    assert found == [
        ("4 dB", "level", 4.0, 0.5), ("-15.0 LUFS", "level", 15.0, 0.05), ("-19.0 LUFS", "level", 19.0, 0.05),
        ("-4.1 dB", "level", 4.1, 0.05), ("-3.9 dB", "level", 3.9, 0.05), ("2 kHz", "frequency", 2000.0, 500.0),
        ("4 kHz", "frequency", 4000.0, 500.0), ("-1.2 dBTP", "level", 1.2, 0.05), ("250 ms", "time", 0.25, 0.001),
        ("44100 Hz", "frequency", 44100.0, 0.5), ("0:32", "time", 32.0, 0.5)]


def test_grounding_checks_each_stated_number_against_the_tools() -> None:
    messages = [HumanMessage("what about the vocals? I think they need 2.6 dB less"),
                AIMessage("", tool_calls=[call("explain_stem", "c1", stem="vocals")]),
                ToolMessage("Lower the vocals by about 4 dB: 4.0 dB louder than in the reference (-15.0 against -19.0 "
                            "LUFS). Most buried at 0:32–0:41.", tool_call_id="c1", name="explain_stem",
                            artifact={"move": {"delta_db": -4.04, "low_db": -4.1}, "facts": {"masking": [
                                {"bands": "2–4 kHz", "backing_over_stem_a_db": 5.43}], "frames": 9}})]
    grounding = Grounding.of(messages, also=["Version A: 5 stems; 30.0 s"], stems=["vocals", "drums", "bass"])
    assert grounding.ungrounded("Lower the vocals by 4 dB (about 4.0 dB too loud, -15 against -19 LUFS).") == []
    assert grounding.ungrounded("It is buried from 0:32 to 0:41, 5.4 dB under the backing at 2–4 kHz.") == []
    assert grounding.ungrounded("You said 2.6 dB; the song is 30.0 s long.") == []  # the producer's, the summary's
    assert grounding.ungrounded("Lower the kick by 2 dB; it has loudness values of 1770 dB.") == [
        "2 dB", "1770 dB", "drums -2.0 dB"]
    assert grounding.ungrounded("Lower the vocals by 4.5 dB at 3 kHz, from 1:10.") == ["4.5 dB", "3 kHz", "1:10"]
    assert grounding.ungrounded("There are 9 windows and 5 stems.") == []  # counts are not quantities
    assert grounding.ungrounded("It sits at 9 dB.") == ["9 dB"]  # "frames": 9 is no level
    # a move is checked against the stem's own moves, with its sign; "the kick" is the drums
    assert grounding.ungrounded("Raise the vocals by 4 dB.") == ["vocals +4.0 dB"]
    assert grounding.ungrounded("Lower the kick by 4 dB.") == ["drums -4.0 dB"]
    assert grounding.ungrounded("Lower the vocals by 5.4 dB.") == ["vocals -5.4 dB"]  # a level, not its move
    assert grounding.ungrounded("Leave the bass as it is. Lower the vocals by 4.0 dB.") == []
    assert grounding.ungrounded("Lower the vocals by 3.6 dB.") == ["3.6 dB"]  # a close move, but no tool said 3.6


# -- the guard in the graph ------------------------------------------------------------------------

def guarded_session(demo_dir: Path, tmp_path: Path, responses: list, spec: str = "openai:fake,mode=native",
                    ) -> tuple[AgentSession, ScriptedChatModel]:
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    workspace.set_reference(demo_dir / "version_b")
    model = ScriptedChatModel(responses=responses)
    return AgentSession(workspace=workspace, llm=parse_llm_spec(spec), checkpointer=InMemorySaver(), thread_id="g",
                        model=model), model


def test_a_fake_model_that_invents_numbers_never_reaches_the_producer(demo_dir: Path, tmp_path: Path) -> None:
    invented = "Your vocals are at -9.3 LUFS, so lower them by 6 dB and raise the kick by 11 dB."
    session, model = guarded_session(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("advise", "m1")]),
        AIMessage(invented),
    ])
    events = list(session.send("what's too loud?"))
    reply, calls, _, error = collect(events)
    assert error is None and not model.responses
    assert [e for e in events if isinstance(e, Guarded)] == [Guarded(
        "the model's reply stated numbers no tool returned (-9.3 LUFS, 6 dB, drums +11.0 dB, vocals -6.0 dB)",
        invented)]
    assert [c["name"] for c in calls] == ["advise"]  # the model's call; the planner reused its result
    assert reply.startswith("The **vocals** are too loud. Lower the vocals by about 4 dB")
    assert reply.endswith("(faderwise: the model's reply stated numbers that no tool returned, so this answer is the "
                          "built-in planner's, from the tools' results.)")
    assert invented not in [m.content for m in session.messages()]  # not kept for the model either


def test_a_grounded_answer_passes_as_the_model_wrote_it(demo_dir: Path, tmp_path: Path) -> None:
    session, _ = guarded_session(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("advise", "m1")]),
        AIMessage("Pull the vocals down about 4 dB and push the drums up 3 dB."),
    ])
    events = list(session.send("what's too loud?"))
    assert collect(events)[0] == "Pull the vocals down about 4 dB and push the drums up 3 dB."
    assert not any(isinstance(e, Guarded) for e in events)


def test_a_native_model_that_skips_the_tools_is_checked_not_switched(demo_dir: Path, tmp_path: Path) -> None:
    """mode=native (a cloud model) is not switched; an answer without tools still passes the guard."""
    session, _ = guarded_session(demo_dir, tmp_path, [AIMessage("The vocals stand out by 12 dB.")])
    events = list(session.send("how's my mix?"))
    reply, calls, _, _ = collect(events)
    assert session.route is not None and session.route.current == "native"
    assert not any(isinstance(e, Notice) for e in events)
    assert [c["name"] for c in calls] == ["compare_to_reference", "advise"]  # the planner's fallback
    assert "12 dB" not in reply and reply.startswith("Your mix is +1.6 LU against the reference overall.")


def test_an_empty_reply_is_answered_by_the_planner(demo_dir: Path, tmp_path: Path) -> None:
    session, _ = guarded_session(demo_dir, tmp_path, [AIMessage("", tool_calls=[call("measure", "m1", stem="bass")]),
                                                      AIMessage("")])
    reply, calls, _, _ = collect(list(session.send("how loud is the bass?")))
    assert [c["name"] for c in calls] == ["measure"]
    assert reply.startswith("- bass: -24.0 LUFS") and reply.endswith(
        "(faderwise: the model's reply was empty, so this answer is the built-in planner's, from the tools' results.)")


def test_a_text_call_runs_the_tool_with_a_fake_model(demo_dir: Path, tmp_path: Path) -> None:
    session, _ = guarded_session(demo_dir, tmp_path, [
        AIMessage('<tool_call>{"name": "measure", "arguments": {"stem": "bass"}}</tool_call>'),
        AIMessage("The bass sits at -24.0 LUFS."),
    ])
    events = list(session.send("how loud is the bass?"))
    assert [(e.name, e.args) for e in events if isinstance(e, ToolStart)] == [("measure", {"stem": "bass"})]
    assert collect(events)[0] == "The bass sits at -24.0 LUFS."


def test_a_call_that_cannot_run_is_not_shown_and_the_planner_answers(demo_dir: Path, tmp_path: Path) -> None:
    broken = '<tool_call>{"name": "measure", "arguments": {"stem": "bass", "gain": 3}}</tool_call>'
    session, _ = guarded_session(demo_dir, tmp_path, [AIMessage(broken)])
    events = list(session.send("how loud is the bass?"))
    reply, calls, _, error = collect(events)
    assert error is None and [(c["name"], c["args"]) for c in calls] == [("measure", {"stem": "bass"})]  # the planner's
    assert [e for e in events if isinstance(e, Guarded)] == [Guarded(
        "the model wrote a tool call faderwise could not run (measure: unknown argument gain)", broken)]
    assert broken not in reply and reply.endswith(
        "(faderwise: the model wrote a tool call faderwise could not run, so this answer is the built-in planner's, "
        "from the tools' results.)")


def test_a_local_model_may_not_change_the_session_unasked(demo_dir: Path, tmp_path: Path) -> None:
    """Seen with a real llama-cpp-python server: "Give me an overview" answered with apply_moves calls."""
    session, model = guarded_session(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("undo_apply", "m1"), call("forget_move", "m2", stem="vocals")]),
        AIMessage("Leave the bass as it is."),
    ], spec="ollama:tiny")
    events = list(session.send("what about the bass?"))
    reply, calls, _, error = collect(events)
    assert error is None and [c["name"] for c in calls] == ["explain_stem"]  # the planner's; neither unasked tool ran
    assert [e.text for e in events if isinstance(e, Notice)] == [
        "ollama:tiny called a tool the message did not ask for, so for the rest of this session the built-in planner "
        "picks the tools and the model words the answers from their results."]
    assert [e.reason for e in events if isinstance(e, Guarded)] == [
        "the model called forget_move, undo_apply, which the producer's message did not ask for"]
    assert reply == "Leave the bass as it is."  # the model's wording of the planner's answer, grounded and faithful
    assert session.workspace.advice is not None and len(session.workspace.advice.moves) == 2  # nothing forgotten
    # asked for, the same tool runs
    model.responses += [AIMessage("Dropped the vocals move.")]
    reply, calls, confirm, _ = collect(list(session.send("forget the vocals move")))
    assert [c["name"] for c in calls] == ["forget_move"] and confirm is not None  # forgetting says what and asks
    collect(list(session.confirm(True)))
    assert [m.stem for m in session.workspace.advice.moves] == ["drums"]


def test_a_model_that_keeps_calling_tools_is_stopped(demo_dir: Path, tmp_path: Path) -> None:
    steps = [AIMessage("", tool_calls=[call("measure", f"m{i}", stem="bass")]) for i in range(8)]
    session, model = guarded_session(demo_dir, tmp_path, steps)
    events = list(session.send("how loud is the bass?"))
    reply, calls, _, error = collect(events)
    assert error is None and not model.responses and len(calls) == 8
    assert [e.reason for e in events if isinstance(e, Guarded)] == [
        "the model kept calling tools without answering (8 steps of tool calls in one turn: measure)"]
    assert reply.startswith("- bass: -24.0 LUFS") and reply.endswith(
        "(faderwise: the model kept calling tools without answering, so this answer is the built-in planner's, "
        "from the tools' results.)")


def test_a_cloud_model_asks_before_changing_the_session_unasked(demo_dir: Path, tmp_path: Path) -> None:
    """Native mode (the default for cloud models): an unasked session change runs only on the producer's yes."""
    other = demo_dir / "version_b"
    session, model = guarded_session(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("load_stems", "m1", path=str(other))]),
        AIMessage("I could not load them."),
        AIMessage("", tool_calls=[call("load_stems", "m2", path=str(other))]),
        AIMessage("Loaded."),
    ])
    question = (f"The model (openai:fake) wants to run load_stems(path={str(other)!r}), which your message did not "
                "ask for. Go ahead? (yes/no)")
    reply, calls, pending, _ = collect(list(session.send("what about the bass?")))
    assert pending is not None and pending.question == question and reply == question
    assert session.workspace.version_a.path == demo_dir / "version_a"  # nothing ran yet
    reply, calls, _, error = collect(list(session.send("no")))
    assert error is None and calls == [] and reply == "I could not load them."
    assert session.workspace.version_a.path == demo_dir / "version_a"
    tool_results = [m for m in session.messages() if isinstance(m, ToolMessage)]
    assert tool_results[-1].content == "Not run: the producer did not allow it (their message did not ask for it)."
    reply, _, pending, _ = collect(list(session.send("and the drums?")))
    assert pending is not None
    reply, calls, _, _ = collect(list(session.send("yes")))
    assert [c["name"] for c in calls] == ["load_stems"] and reply == "Loaded."
    assert session.workspace.version_a.path == other


def test_a_reply_that_states_a_move_the_advice_does_not_hold_is_kept_back(demo_dir: Path, tmp_path: Path) -> None:
    # "-4.0 dB" for the vocals was returned by a tool (the first turn's advice), so the numbers are grounded;
    # but the producer dropped that move, and the reply still states it
    stale = "Done. Lower the vocals by 4.0 dB."
    session, _ = guarded_session(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("advise", "m1")]), AIMessage("Lower the vocals by about 4 dB."),
        AIMessage("", tool_calls=[call("forget_move", "m2", stem="vocals")]), AIMessage(stale)])
    assert collect(list(session.send("what's off?")))[0] == "Lower the vocals by about 4 dB."
    list(session.send("forget the vocal move"))  # asks first
    events = list(session.confirm(True))
    reply, _, _, error = collect(events)
    assert error is None and stale not in reply
    assert [e for e in events if isinstance(e, Guarded)] == [Guarded(
        "the model's reply stated a fader move the advice does not hold: the vocals -4.0 dB", stale)]
    assert reply.startswith("Dropped the vocals move. Pending moves: drums +3.0 dB")
    assert reply.endswith("(faderwise: the model's reply stated a fader move the advice does not hold, so this answer "
                          "is the built-in planner's, from the tools' results.)")


def test_evidence_in_a_reply_is_not_taken_for_a_move(demo_dir: Path, tmp_path: Path) -> None:
    """The compared levels a model quotes describe the mix; only what it tells the producer to do must be a
    move the advice holds (here the vocals move was dropped, and their level difference is still a fact)."""
    described = "In your mix the vocals are 4.0 dB louder than in the reference."
    session, _ = guarded_session(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("forget_move", "m1", stem="vocals")]), AIMessage("Dropped the vocals move."),
        AIMessage("", tool_calls=[call("compare_to_reference", "m2")]), AIMessage(described),
    ])
    collect(list(session.send("forget the vocal move")))
    collect(list(session.confirm(True)))
    assert [m.stem for m in session.workspace.advice.moves] == ["drums"]
    events = list(session.send("compare with the reference"))
    assert collect(events)[0] == described
    assert [e for e in events if isinstance(e, Guarded)] == []
