"""The agent graph with a scripted chat model and InMemorySaver: tool sequence and artifacts,
confirmation before apply, tool errors reaching the producer, model failures and retry, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent_fakes import ScriptedChatModel, call
from faderwise.agent.llm import LLMSpec
from faderwise.agent.session import AgentSession, Cancelled, Confirm, Panel, Reply, ToolEnd, ToolStart, TurnError
from faderwise.agent.workspace import Workspace
from faderwise.tools.levels import true_peak_dbtp


def make_session(demo_dir: Path, tmp_path: Path, responses: list, *, reference: bool = True) -> AgentSession:
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    if reference:
        workspace.set_reference(demo_dir / "version_b")
    model = ScriptedChatModel(responses=responses)
    return AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="t",
                        model=model)


def test_tools_run_in_order_and_return_artifacts(demo_dir: Path, tmp_path: Path) -> None:
    session = make_session(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("measure", "c1", stem="vox")]),
        AIMessage("", tool_calls=[call("advise", "c2")]),
        AIMessage("The vocals are 4 dB hot."),
    ])
    events = list(session.send("how loud is the vox, and what should move?"))
    assert [type(e).__name__ for e in events] == ["ToolStart", "ToolEnd", "Panel", "ToolStart", "ToolEnd", "Panel",
                                                   "Reply"]
    measured = events[1]
    assert isinstance(measured, ToolEnd) and not measured.failed
    assert measured.artifact["kind"] == "measure"
    assert list(measured.artifact["stems"]) == ["vocals"]  # "vox" resolved
    assert measured.artifact["stems"]["vocals"]["lufs"] == pytest.approx(-15.0, abs=0.1)
    assert measured.content.startswith("vocals: -15.0 LUFS")
    vocals = session.workspace.require_a().stems.load().stems["vocals"]
    assert measured.artifact["stems"]["vocals"]["true_peak_dbtp"] == pytest.approx(true_peak_dbtp(vocals, 44_100),
                                                                                  abs=0.05)
    advice = events[4]
    assert isinstance(advice, ToolEnd) and advice.artifact["kind"] == "advice"
    moves = {m["stem"]: m["delta_db"] for m in advice.artifact["moves"]}
    assert moves == pytest.approx({"vocals": -4.0, "drums": 3.0}, abs=0.1)
    panel = events[5]
    assert isinstance(panel, Panel)
    rows = {row["stem"]: row for row in panel.rows}
    assert rows["vocals"]["move_db"] == pytest.approx(-4.0, abs=0.1)
    assert rows["vocals"]["a_minus_b_lu"] == pytest.approx(4.0, abs=0.1)
    assert rows["vocals"]["focus"] is True  # the conversation is about the vocals now
    assert events[-1] == Reply("The vocals are 4 dB hot.")
    # the model read the short summaries, not the artifacts
    shown = session._graph.get_state(session.config).values["messages"]
    tool_messages = [m for m in shown if isinstance(m, ToolMessage)]
    assert [m.name for m in tool_messages] == ["measure", "advise"]
    assert tool_messages[0].artifact["kind"] == "measure"


def test_apply_waits_for_confirmation_and_never_touches_the_input(demo_dir: Path, tmp_path: Path) -> None:
    original = {p.name: p.read_bytes() for p in (demo_dir / "version_a").iterdir()}
    session = make_session(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("apply_moves", "c1")]),
        AIMessage("Left as it was."),
        AIMessage("", tool_calls=[call("apply_moves", "c2", stems=["vocals"])]),
        AIMessage("Done."),
    ])
    events = list(session.send("apply"))
    assert isinstance(events[-1], Confirm)
    assert events[-1].question == "Apply vocals -4.0 dB, drums +3.0 dB and render to a new folder? (yes/no)"
    assert not (tmp_path / "out").exists()  # nothing rendered before the answer
    declined = list(session.send("no"))
    ended = [e for e in declined if isinstance(e, ToolEnd)]
    assert ended[0].content == "Not applied: the producer declined (vocals -4.0 dB, drums +3.0 dB)."
    assert not (tmp_path / "out").exists()

    events = list(session.send("apply just the vocals"))
    assert isinstance(events[-1], Confirm) and "vocals -4.0 dB and" in events[-1].question
    applied = list(session.confirm(True))
    result = next(e for e in applied if isinstance(e, ToolEnd))
    assert result.artifact["applied"] is True
    assert result.artifact["gains_db"] == pytest.approx({"vocals": -4.0}, abs=0.1)
    folder = Path(result.artifact["folder"])
    assert folder == tmp_path / "out" / "apply-01"
    assert sorted(p.name for p in (folder / "stems").iterdir()) == sorted(original)
    assert session.workspace.require_a().path == folder / "stems"
    assert {p.name: p.read_bytes() for p in (demo_dir / "version_a").iterdir()} == original


def test_tool_errors_reach_the_producer_and_the_model(demo_dir: Path, tmp_path: Path) -> None:
    model_responses = [
        AIMessage("", tool_calls=[call("load_stems", "c1", path=str(tmp_path / "nowhere"))]),
        AIMessage("That folder does not exist."),
    ]
    session = make_session(demo_dir, tmp_path, model_responses)
    events = list(session.send("load my stems"))
    failed = next(e for e in events if isinstance(e, ToolEnd))
    assert failed.failed
    assert failed.content == f"Error: {tmp_path / 'nowhere'}: no such file or folder"
    model = session._graph.get_state(session.config).values["messages"]
    error_message = next(m for m in model if isinstance(m, ToolMessage))
    assert error_message.status == "error"
    assert events[-1] == Reply("That folder does not exist.")
    assert session.workspace.require_a().path == demo_dir / "version_a"  # the loaded stems are kept


def test_unknown_stem_lists_the_stems(demo_dir: Path, tmp_path: Path) -> None:
    session = make_session(demo_dir, tmp_path, [AIMessage("", tool_calls=[call("explain_stem", "c1", stem="banjo")]),
                                                 AIMessage("No banjo.")])
    failed = next(e for e in session.send("what about the banjo?") if isinstance(e, ToolEnd))
    assert failed.content == (f"Error: no stem called 'banjo' in {demo_dir / 'version_a'} "
                              "(it has: bass, drums, guitar, keys, vocals)")


def test_a_failing_model_loses_nothing_and_the_turn_can_be_retried(demo_dir: Path, tmp_path: Path) -> None:
    session = make_session(demo_dir, tmp_path, [
        AIMessage("First answer."),
        ConnectionError("connection refused"),
        AIMessage("Second answer."),
    ])
    assert list(session.send("hello")) == [Reply("First answer.")]
    events = list(session.send("and now?"))
    assert events == [TurnError("the model (offline) failed: cannot reach the model's server",
                                detail="ConnectionError: connection refused", retry=True)]
    texts = [m.content for m in session.messages()]
    assert texts == ["hello", "First answer.", "and now?"]
    assert list(session.retry()) == [Reply("Second answer.")]
    assert [m.content for m in session.messages()] == ["hello", "First answer.", "and now?", "Second answer."]
    assert list(session.retry()) == [TurnError("there is no failed turn to retry")]


def test_cancel_stops_the_turn_and_answers_its_tool_calls(demo_dir: Path, tmp_path: Path) -> None:
    session = make_session(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("measure", "c1"), call("advise", "c2")]),
        AIMessage("never shown"),
        AIMessage("Next turn works."),
    ])
    events = []
    for event in session.send("measure everything"):
        events.append(event)
        if isinstance(event, ToolStart):
            session.cancel()
    assert isinstance(events[-1], Cancelled)
    assert not any(isinstance(e, Reply) for e in events)
    messages = session.messages()
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    assert answered == {"c1", "c2"}  # well-formed for the next model call
    assert list(session.send("hello again"))[-1] == Reply("never shown")


def test_a_key_echoed_by_the_provider_is_masked(demo_dir: Path, tmp_path: Path) -> None:
    session = make_session(demo_dir, tmp_path, [PermissionError("Incorrect API key provided: sk-proj-abcdef1234567890.")])
    (event,) = list(session.send("hello"))
    assert isinstance(event, TurnError)
    assert event.message.startswith("the model (offline) failed: PermissionError: Incorrect API key provided: ***.")
