"""Real provider clients against servers built in the test: an OpenAI-compatible server (what
vLLM, llama.cpp's server and LM Studio speak) that answers with a tool call, then text; and
unreachable servers, whose failure reaches the chat as a message and loses nothing."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from faderwise.agent.llm import parse_llm_spec
from faderwise.agent.prompts import SYSTEM_PROMPT
from faderwise.agent.script import collect
from faderwise.agent.session import AgentSession, Reply, ToolEnd, TurnError
from faderwise.agent.workspace import Workspace

pytest.importorskip("langchain_openai", reason="the [llm] extra is part of [dev]")


def sse_chunks(delta_sequence: list[dict[str, Any]], finish: str) -> Iterator[bytes]:
    for index, delta in enumerate(delta_sequence):
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "local",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        if index == len(delta_sequence) - 1:
            chunk["choices"][0]["finish_reason"] = finish
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


class FakeOpenAI(BaseHTTPRequestHandler):
    """POST /v1/chat/completions: a tool call first, then a reply quoting the tool's result."""

    requests: list[dict[str, Any]] = []
    headers_seen: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append(body)
        FakeOpenAI.headers_seen.append({key.lower(): value for key, value in self.headers.items()})
        tool_results = [m for m in body["messages"] if m["role"] == "tool"]
        if not tool_results:
            deltas = [{"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "advise", "arguments": ""}}]},
                {"tool_calls": [{"index": 0, "function": {"arguments": "{\"stem\": \"vox\"}"}}]}]
            finish = "tool_calls"
        else:
            words = f"From the tools: {tool_results[-1]['content'][:60]}".split(" ")
            deltas = [{"role": "assistant", "content": ""}] + [{"content": w + " "} for w in words]
            finish = "stop"
        payload = b"".join(sse_chunks(deltas, finish))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    FakeOpenAI.requests, FakeOpenAI.headers_seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test-key-0123456789")
    yield url
    server.shutdown()


def demo_workspace(demo_dir: Path, tmp_path: Path) -> Workspace:
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    workspace.set_reference(demo_dir / "version_b")
    return workspace


def test_an_openai_compatible_server_drives_the_tools(openai_server: str, demo_dir: Path, tmp_path: Path) -> None:
    session = AgentSession(workspace=demo_workspace(demo_dir, tmp_path), llm=parse_llm_spec("openai:local-model"),
                           checkpointer=InMemorySaver(), thread_id="openai")
    events = list(session.send("what should I do with the vocals?"))
    reply, calls, _, error = collect(events)
    assert error is None
    assert [(c["name"], c["args"]) for c in calls] == [("advise", {"stem": "vox"})]
    assert next(e for e in events if isinstance(e, ToolEnd)).content.startswith("Lower the vocals by about 4 dB")
    assert reply.startswith("From the tools: Lower the vocals by about 4 dB")
    assert sum(type(e).__name__ == "Token" for e in events) > 5  # streamed
    first = FakeOpenAI.requests[0]
    assert first["model"] == "local-model" and first["stream"] is True
    a, b = demo_dir / "version_a", demo_dir / "version_b"
    assert first["messages"][0] == {"role": "system", "content": (
        f"{SYSTEM_PROMPT}\n\nWhat this session holds now (older turns are not shown): Version A: {a} (5 stems: bass, "
        f"drums, guitar, keys, vocals; 30.0 s). Reference (Version B): {b}.")}
    assert {tool["function"]["name"] for tool in first["tools"]} >= {"advise", "measure", "apply_moves", "explain_stem"}
    assert FakeOpenAI.headers_seen[0]["authorization"] == "Bearer sk-local-test-key-0123456789"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("spec", ["ollama:llama3.1@127.0.0.1:{port}", "openai:gpt-4o-mini"])
def test_an_unreachable_model_is_a_message_and_the_turn_can_switch_to_offline(
        spec: str, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if spec.startswith("ollama"):
        pytest.importorskip("langchain_ollama")
    port = closed_port()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused-0123456789")
    llm = parse_llm_spec(spec.format(port=port))
    session = AgentSession(workspace=demo_workspace(demo_dir, tmp_path), llm=llm, checkpointer=InMemorySaver(),
                           thread_id="down")
    events = list(session.send("which stem is furthest off?"))
    assert len(events) == 1 and isinstance(events[0], TurnError)
    assert events[0].message.startswith(f"the model ({llm}) failed: ")
    assert events[0].message.endswith("Nothing earlier is lost: /retry runs the turn again, /model offline "
                                      "switches to the built-in planner.")
    assert [m.content for m in session.messages()] == ["which stem is furthest off?"]
    session.set_llm(parse_llm_spec("offline"))
    reply, _, _, error = collect(list(session.retry()))
    assert error is None and reply.startswith("The **vocals** are furthest off.")
    assert isinstance(list(session.send("thanks"))[-1], Reply)
