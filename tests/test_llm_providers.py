"""Real provider clients (langchain-openai, langchain-ollama) against servers built in the test: the
strict OpenAI-compatible stand-in of :mod:`llm_standin` (validating requests as llama-cpp-python's
and vLLM's servers do) with the behaviours small local models show, and unreachable, failing and
slow servers, whose failure reaches the chat as one line and loses nothing."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from llm_standin import PERSONAS, Persona, StandIn, StandInServer, validation_problems

from faderwise.agent.llm import LLMSpec, LLMSpecError, make_chat_model, parse_llm_spec, provider_error_line
from faderwise.agent.prompts import SYSTEM_PROMPT
from faderwise.agent.script import collect, read_script, run_script
from faderwise.agent.session import AgentSession, Guarded, Notice, ToolEnd, ToolStart, TurnError
from faderwise.agent.workspace import Workspace

pytest.importorskip("langchain_openai", reason="the [llm] extra is part of [dev]")

SCRIPTS = sorted((Path(__file__).parents[1] / "evals" / "scripts").glob("*.yaml"))
KEY = "sk-local-test-key-0123456789"


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """``serve(persona)`` starts a stand-in server and points OPENAI_BASE_URL at it."""
    servers: list[StandInServer] = []

    def start(persona: Persona) -> StandIn:
        server = StandInServer(persona)
        servers.append(server)
        state = server.__enter__()
        monkeypatch.setenv("OPENAI_BASE_URL", state.url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        return state

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def demo_workspace(demo_dir: Path, tmp_path: Path) -> Workspace:
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    workspace.set_reference(demo_dir / "version_b")
    return workspace


def session_for(spec: str, demo_dir: Path, tmp_path: Path) -> AgentSession:
    return AgentSession(workspace=demo_workspace(demo_dir, tmp_path), llm=parse_llm_spec(spec),
                        checkpointer=InMemorySaver(), thread_id="t")


# -- the stand-in is strict ------------------------------------------------------------------------

def well_formed() -> dict:
    return {"model": "m", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "advise", "arguments": "{}"}}]},
        {"role": "tool", "content": "ok", "tool_call_id": "c1"}],
        "tools": [{"type": "function", "function": {"name": "advise", "description": "d",
                                                    "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "auto", "stream": False, "temperature": 0.7}


@pytest.mark.parametrize(("change", "problem"), [
    (lambda r: r["messages"][2].update(content=None), "messages.2.AssistantMessage.content: Input should be a valid string"),
    (lambda r: r["messages"][3].pop("tool_call_id"), "messages.3.ToolMessage.tool_call_id: Field required"),
    (lambda r: r["tools"][0]["function"].pop("parameters"), "tools.0.function.parameters: Field required"),
    (lambda r: r["messages"][3].update(tool_call_id="c9"), "messages.3: tool result for unknown call 'c9'"),
    (lambda r: r["tools"][0]["function"].update(name="bad name"), "tools.0.function.name: 'bad name' is not a valid"),
    (lambda r: (r.pop("tools"), r["messages"].__delitem__(slice(2, 4)), r.update(tool_choice="required")),
     "tool_choice: 'required' needs tools"),
    (lambda r: r.update(stream=True), "Automatic streaming tool choice is not supported"),
])
def test_the_stand_in_rejects_what_strict_servers_reject(change: object, problem: str) -> None:
    assert validation_problems(well_formed()) == []
    request = well_formed()
    change(request)  # type: ignore[operator]
    assert any(line.startswith(problem) for line in validation_problems(request)), validation_problems(request)


def test_langchain_alone_would_send_null_content_and_faderwise_sends_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_openai import ChatOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    history = [SystemMessage("s"), HumanMessage("overview"),
               AIMessage("", tool_calls=[{"name": "advise", "args": {}, "id": "c1", "type": "tool_call"}]),
               ToolMessage("ok", tool_call_id="c1", name="advise")]
    plain = ChatOpenAI(model="m")._get_request_payload(history)
    assert plain["messages"][2]["content"] is None  # what a strict server answers with HTTP 500
    assert "messages.2.AssistantMessage.content: Input should be a valid string" in validation_problems(plain)
    ours = make_chat_model(parse_llm_spec("openai:m"), context=dict)._get_request_payload(history)  # type: ignore[attr-defined]
    assert ours["messages"][2]["content"] == ""
    assert validation_problems(ours) == []


# -- native tool calls -----------------------------------------------------------------------------

def test_an_openai_compatible_server_drives_the_tools(serve: object, demo_dir: Path, tmp_path: Path) -> None:
    state = serve(PERSONAS["native"])  # type: ignore[operator]
    session = session_for("openai:local-model", demo_dir, tmp_path)
    events = list(session.send("what about the vocals?"))
    reply, calls, _, error = collect(events)
    assert error is None and state.rejected == []
    assert [(c["name"], c["args"]) for c in calls] == [("explain_stem", {"stem": "vocals"})]
    result = next(e for e in events if isinstance(e, ToolEnd)).content
    assert result.startswith("Lower the vocals by about 4 dB")
    assert reply == result  # the persona quotes the tool: grounded, shown as it is
    assert not any(isinstance(e, (Guarded, Notice)) for e in events)
    first = state.requests[0]
    assert first["model"] == "local-model" and first["tool_choice"] == "auto"
    assert not first.get("stream")  # one whole reply: the guard reads it before the producer sees it
    assert first["max_tokens"] == 1024 and "max_completion_tokens" not in first  # the name local servers read
    a, b = demo_dir / "version_a", demo_dir / "version_b"
    assert first["messages"][0] == {"role": "system", "content": (
        f"{SYSTEM_PROMPT}\n\nWhat this session holds now (older turns are not shown): Version A: {a} (5 stems: bass, "
        f"drums, guitar, keys, vocals; 30.0 s). Reference (Version B): {b}.")}
    described = {tool["function"]["name"]: tool["function"]["description"] for tool in first["tools"]}
    assert set(described) == {"load_stems", "set_reference", "list_stems", "measure", "compare_to_reference", "advise",
                              "explain_stem", "make_ab_bundle", "plot", "apply_moves", "undo_apply", "forget_move",
                              "export_project", "push_faders", "undo_push", "what_if", "set_move", "measure_group",
                              "second_opinion"}
    assert described["advise"] == ("Say which faders to move by how much, and why, from measurements. The advice "
                                   "becomes the pending moves that apply_moves renders.")
    assert all("\n" not in text and "  " not in text for text in described.values())
    assert state.headers[0]["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(("spec", "sent"), [
    ("openai:m,tool_choice=required", ["required", "auto"]),
    ("openai:m,tool_choice=omit", [None, None]),
    ("openai:m", ["auto", "auto"]),
])
def test_tool_choice_is_what_the_spec_says(spec: str, sent: list, serve: object, demo_dir: Path,
                                           tmp_path: Path) -> None:
    state = serve(PERSONAS["native"])  # type: ignore[operator]
    session = session_for(spec + ",mode=native", demo_dir, tmp_path)
    reply, calls, _, error = collect(list(session.send("which stem is furthest off?")))
    assert error is None and [c["name"] for c in calls] == ["advise"]
    assert [request.get("tool_choice") for request in state.requests] == sent


@pytest.mark.parametrize(("persona", "written"), [
    ("hermes-tags", '<tool_call>\n{"name": "explain_stem", "arguments": {"stem": "vocals"}}\n</tool_call>'),
    ("functions-text", 'functions.explain_stem:\n{"stem": "vocals"}'),
])
def test_tool_calls_written_as_text_run_as_real_calls(persona: str, written: str, serve: object, demo_dir: Path,
                                                      tmp_path: Path) -> None:
    state = serve(PERSONAS[persona])  # type: ignore[operator]
    session = session_for("openai:small", demo_dir, tmp_path)
    events = list(session.send("what about the vocals?"))
    reply, calls, _, error = collect(events)
    assert error is None and state.rejected == []
    assert [(c["name"], c["args"]) for c in calls] == [("explain_stem", {"stem": "vocals"})]
    assert reply.startswith("Lower the vocals by about 4 dB") and written not in reply
    assert not any(isinstance(e, Guarded) for e in events)
    # the model's next request carries the call as a call, with a string content
    assistant = [m for m in state.requests[1]["messages"] if m["role"] == "assistant"]
    assert assistant[-1]["content"] == "" and assistant[-1]["tool_calls"][0]["function"]["name"] == "explain_stem"


# -- the guard -------------------------------------------------------------------------------------

def test_a_model_that_invents_numbers_after_the_tools_is_replaced_by_the_planner(
        serve: object, demo_dir: Path, tmp_path: Path) -> None:
    serve(PERSONAS["invents-after-tools"])  # type: ignore[operator]
    session = session_for("openai:small", demo_dir, tmp_path)
    events = list(session.send("Apply the moves"))
    assert [e.name for e in events if isinstance(e, ToolStart)] == ["apply_moves"]
    events = list(session.confirm(True))
    reply, _, _, error = collect(events)
    assert error is None
    guarded = [e for e in events if isinstance(e, Guarded)]
    # "lower the kick by 2 dB" too: no tool said 2 dB (the moves are -4.0 and +3.0)
    assert [g.reason for g in guarded] == [
        "the model's reply stated numbers no tool returned (1770 dB, 2 dB, 3.5 dB, drums -2.0 dB and 1 more)"]
    assert guarded[0].text.startswith("This stem has loudness values of 1770 dB")
    # the apply ran once; the planner answered from its result and did not apply again
    assert [e.name for e in events if isinstance(e, ToolStart)] == []
    assert reply.startswith("Applied vocals -4.0 dB, drums +3.0 dB")
    assert reply.endswith("(faderwise: the model's reply stated numbers that no tool returned, so this answer is the "
                          "built-in planner's, from the tools' results.)")
    assert "1770" not in reply and len(session.workspace.applied) == 1


def test_a_model_that_never_calls_tools_switches_the_session_to_routed_once(
        serve: object, demo_dir: Path, tmp_path: Path) -> None:
    state = serve(PERSONAS["prose-inventor"])  # type: ignore[operator]
    session = session_for("openai:small", demo_dir, tmp_path)
    assert session.route is not None and session.route.mode == "auto"  # a local server: auto by default
    events = list(session.send("which stem is furthest off?"))
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices == ["openai:small answered without calling a tool, so for the rest of this session the built-in "
                       "planner picks the tools and the model words the answers from their results."]
    reply, calls, _, _ = collect(events)
    assert [c["name"] for c in calls] == ["advise"]  # the planner's
    assert reply.startswith("The **vocals** are furthest off.") and "1770" not in reply
    assert session.route.current == "routed"
    events = list(session.send("what about the drums?"))
    assert not any(isinstance(e, Notice) for e in events)
    assert [e.name for e in events if isinstance(e, ToolStart)] == ["explain_stem"]
    wording = state.requests[-1]
    assert "tools" not in wording and wording["messages"][0]["content"].startswith("You are faderwise, a mixing "
                                                                                   "assistant. You word the answer")


def test_routed_mode_shows_the_models_wording_when_it_is_grounded(serve: object, demo_dir: Path,
                                                                  tmp_path: Path) -> None:
    serve(Persona("rewords", words="prefix"))  # type: ignore[operator]
    session = session_for("openai:small,mode=routed", demo_dir, tmp_path)
    events = list(session.send("what about the vocals?"))
    reply, calls, _, error = collect(events)
    assert error is None and [c["name"] for c in calls] == ["explain_stem"]
    assert reply.startswith("Here is what I found. Lower the vocals by about 4 dB")
    assert not any(isinstance(e, (Guarded, Notice)) for e in events)


def test_a_wording_that_drops_the_advice_is_replaced_by_the_planners_answer(serve: object, demo_dir: Path,
                                                                           tmp_path: Path) -> None:
    serve(Persona("vague", words="vague"))  # type: ignore[operator]
    session = session_for("openai:small,mode=routed", demo_dir, tmp_path)
    events = list(session.send("what about the vocals?"))
    reply, _, _, error = collect(events)
    assert error is None
    assert [e.reason for e in events if isinstance(e, Guarded)] == [
        "the model's wording left out part of the answer: the vocals move (-4.0 dB), the vocals"]
    assert reply.startswith("Lower the vocals by about 4 dB") and reply.endswith(
        "(faderwise: the model's wording left out part of the answer, so this answer is the built-in planner's, "
        "from the tools' results.)")


# -- switching models ------------------------------------------------------------------------------

def test_switching_models_both_ways_sends_well_formed_requests(serve: object, demo_dir: Path, tmp_path: Path) -> None:
    state = serve(PERSONAS["native"])  # type: ignore[operator]
    session = session_for("offline", demo_dir, tmp_path)
    replies = []
    for spec, text in (("offline", "overview"), ("openai:local,mode=native", "what about the drums?"),
                       ("offline", "why?"), ("openai:local,mode=native", "how loud is the bass?"),
                       ("offline", "compare")):
        session.set_llm(parse_llm_spec(spec))
        reply, calls, _, error = collect(list(session.send(text)))
        assert error is None and calls, (spec, text)
        replies.append(reply)
    assert state.rejected == [] and len(state.requests) == 4
    sent = state.requests[-1]["messages"]
    with_calls = [m for m in sent if m["role"] == "assistant" and m.get("tool_calls")]
    # one per turn: the planner's (overview, why?) and the model's (the drums, the bass)
    assert len(with_calls) == 4 and all(m["content"] == "" for m in with_calls)
    assert replies[2].startswith("How I know the drums should move +3.0 dB:")


# -- one clear line for each failure ---------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("case", "line"), [
    ("unreachable", "cannot reach the model's server"),
    ("timeout", "no answer in time (the request timed out)"),
    ("http-503", "the server answered HTTP 503: model 'standin' failed to load: out of memory while allocating the "
                 "KV cache xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…"),  # the server's message, clipped to 120
])
def test_a_failing_server_is_one_line_and_the_turn_can_be_retried(
        case: str, line: str, serve: object, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = "openai:standin,timeout=1"
    if case == "unreachable":
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
    else:
        serve(Persona("slow", delay_s=3.0) if case == "timeout" else Persona("down", fail_status=503))  # type: ignore[operator]
    session = session_for(spec, demo_dir, tmp_path)
    events = list(session.send("which stem is furthest off?"))
    assert len(events) == 1 and isinstance(events[0], TurnError)
    assert events[0].message == f"the model ({spec}) failed: {line}" and events[0].retry
    assert len(events[0].message) < 250 and "\n" not in events[0].message
    assert KEY not in events[0].detail and events[0].detail.startswith(("OpenAI", "InternalServer", "APIStatus"))
    assert [m.content for m in session.messages() if isinstance(m, HumanMessage)][-1] == "which stem is furthest off?"
    session.set_llm(parse_llm_spec("offline"))
    reply, _, _, error = collect(list(session.retry()))
    assert error is None and reply.startswith("The **vocals** are furthest off.")


@pytest.mark.parametrize("spec", ["ollama:llama3.1@127.0.0.1:{port}"])
def test_an_unreachable_ollama_is_one_line(spec: str, demo_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("langchain_ollama")
    llm = parse_llm_spec(spec.format(port=closed_port()))
    session = AgentSession(workspace=demo_workspace(demo_dir, tmp_path), llm=llm, checkpointer=InMemorySaver(),
                           thread_id="down")
    events = list(session.send("which stem is furthest off?"))
    assert len(events) == 1 and isinstance(events[0], TurnError)
    assert events[0].message == f"the model ({llm}) failed: cannot reach the model's server"


def test_provider_error_lines() -> None:
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1:8080/v1/chat/completions")
    response = httpx.Response(500, request=request, json={"error": {"message": "Input should be a valid string " * 40}})
    refused = openai.InternalServerError("Error code: 500 - " + json.dumps(response.json()), response=response,
                                         body=response.json())
    assert provider_error_line(refused).startswith("the server answered HTTP 500: Input should be a valid string")
    assert len(provider_error_line(refused)) < 170
    assert provider_error_line(openai.APITimeoutError(request=request)) == "no answer in time (the request timed out)"
    assert provider_error_line(openai.APIConnectionError(request=request)) == "cannot reach the model's server"
    assert provider_error_line(ValueError(f"bad key {KEY}")) == "ValueError: bad key ***"


# -- spec options ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "tool_choice", "mode", "timeout"), [
    ("openai:gpt-4o-mini", "auto", "native", 120.0),
    ("ollama:qwen2.5:0.5b", "omit", "auto", 120.0),
    ("anthropic:claude-sonnet-4", "auto", "native", 120.0),
    ("openai:qwen,tool_choice=required,mode=routed,timeout=30", "required", "routed", 30.0),
])
def test_spec_options_and_defaults(text: str, tool_choice: str, mode: str, timeout: float) -> None:
    spec = parse_llm_spec(text)
    assert (spec.tool_choice, spec.mode({}), spec.timeout_s) == (tool_choice, mode, timeout)
    assert spec.max_tokens == 1024 and parse_llm_spec(text + ",max_tokens=200").max_tokens == 200
    assert parse_llm_spec(str(spec)) == spec and str(spec) == text
    assert parse_llm_spec("openai:qwen").mode({"OPENAI_BASE_URL": "http://127.0.0.1:8080/v1"}) == "auto"
    assert parse_llm_spec("openai:gpt-4o").mode({"OPENAI_BASE_URL": "https://api.openai.com/v1"}) == "native"
    assert LLMSpec("offline").tool_choice == "omit"


@pytest.mark.parametrize(("text", "message"), [
    ("openai:m,color=red", "unknown model option 'color=red' in 'openai:m,color=red': expected tool_choice=…, mode=…, "
                           "timeout=…, max_tokens=…, understand=…"),
    ("openai:m,understand=maybe", "understand=maybe in 'openai:m,understand=maybe': expected one of offline, model"),
    ("openai:m,max_tokens=0", "max_tokens=0 in 'openai:m,max_tokens=0': expected a whole number of tokens above 0"),
    ("openai:m,tool_choice=always", "tool_choice=always in 'openai:m,tool_choice=always': expected one of auto, "
                                    "required, none, omit"),
    ("openai:m,mode=fast", "mode=fast in 'openai:m,mode=fast': expected one of native, routed, auto"),
    ("openai:m,timeout=-1", "timeout=-1 in 'openai:m,timeout=-1': expected a number of seconds above 0"),
])
def test_bad_spec_options(text: str, message: str) -> None:
    with pytest.raises(LLMSpecError) as error:
        parse_llm_spec(text)
    assert str(error.value) == message


# -- the shipped scripts with every stand-in behaviour -------------------------------------------

@pytest.mark.parametrize("persona", sorted(PERSONAS))
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_shipped_scripts_pass_with_every_local_model_behaviour(persona: str, script: Path, serve: object,
                                                                tmp_path: Path) -> None:
    state = serve(PERSONAS[persona])  # type: ignore[operator]
    records = run_script(read_script(script), llm=parse_llm_spec("openai:standin"), output_dir=tmp_path / "out")
    assert [r["failures"] for r in records] == [[] for _ in records]
    assert state.rejected == []
    assert all(r["ungrounded"] == [] for r in records)
    assert all(r["tool_calls"] for r in records)  # every turn ran its tools
    guarded = sum(bool(r["guarded"]) for r in records)
    expected = {"native": 0, "hermes-tags": 0, "functions-text": 0}.get(persona)
    if expected is not None:
        assert guarded == expected
    else:  # the planner answered: every reply says so in one line
        assert all("(faderwise: " in r["assistant"] for r in records if r["guarded"] and r["turn"] > 1)


def test_without_tool_choice_a_llama_cpp_style_server_gets_no_calls_and_auto_routes(
        serve: object, tmp_path: Path) -> None:
    """The reported failure: tools sent with no tool_choice, so the server leaves them out of the
    prompt and the model answers in prose. faderwise now notices and routes."""
    serve(PERSONAS["functions-text"])  # type: ignore[operator]
    records = run_script(read_script(SCRIPTS[0]), llm=parse_llm_spec("openai:standin,tool_choice=omit"),
                         output_dir=tmp_path / "out")
    assert all(r["passed"] for r in records)
    assert records[0]["notices"] and records[0]["guarded"][0]["reason"] == "the model answered without calling a tool"
    assert os.environ["OPENAI_BASE_URL"].startswith("http://127.0.0.1:")


def test_faderwise_run_suggests_what_works_in_a_script(demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from faderwise.cli import main

    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    script = tmp_path / "script.yaml"
    script.write_text(f"stems: {demo_dir / 'version_a'}\nturns:\n  - user: how loud is the bass?\n")
    assert main(["run", str(script), "--llm", "openai:standin"]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].strip() == ("the turn failed: the model (openai:standin) failed: cannot reach the model's server "
                                  "(run the script again to retry the model, or run it with --llm offline to use the "
                                  "built-in planner)")
    assert "/retry" not in "\n".join(printed) and "/model" not in "\n".join(printed)
