""""No" means no, one chat per session, keys never stored, a damaged database replaced, a tool
call cut off by a kill answered on resume."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent_fakes import ScriptedChatModel, call
from conftest import REPO
from faderwise.agent.config import Config
from faderwise.agent.launch import open_chat
from faderwise.agent.llm import LLMSpec, parse_llm_spec
from faderwise.agent.script import collect, read_script, run_script
from faderwise.agent.secrets import mask_bytes, mask_secrets
from faderwise.agent.session import INTERRUPTED, AgentSession, Confirm, ToolEnd, TurnError
from faderwise.agent.store import SessionBusyError, SessionStore
from faderwise.agent.workspace import Workspace
from faderwise.cli import main


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def scripted(demo_dir: Path, tmp_path: Path, responses: list) -> AgentSession:
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    workspace.set_reference(demo_dir / "version_b")
    return AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="t",
                        model=ScriptedChatModel(responses=responses))


def renders(tmp_path: Path) -> list[str]:
    out = tmp_path / "out"
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


# -- confirmations ----------------------------------------------------------------------------------


def test_several_applies_in_one_step_are_refused_and_render_nothing(demo_dir: Path, tmp_path: Path) -> None:
    session = scripted(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("apply_moves", "c1", stems=["vocals"]),
                                  call("apply_moves", "c2", stems=["drums"])]),
        AIMessage("I will ask once."),
    ])
    events = list(session.send("apply the vocals and the drums"))
    ended = [e for e in events if isinstance(e, ToolEnd)]
    assert [e.failed for e in ended] == [True, True]
    assert {e.content for e in ended} == {"Error: refused: this step asked to apply moves 2 times at once; nothing was "
                                          "applied. Call apply_moves once, listing every stem to move"}
    assert not any(isinstance(e, Confirm) for e in events) and session.pending is None
    assert renders(tmp_path) == []


def test_yes_applies_only_the_plan_that_was_shown_and_no_renders_nothing(demo_dir: Path, tmp_path: Path) -> None:
    session = scripted(demo_dir, tmp_path, [
        AIMessage("", tool_calls=[call("apply_moves", "c1")]), AIMessage("Not applied."),
        AIMessage("", tool_calls=[call("apply_moves", "c2")]), AIMessage("Not applied either."),
        AIMessage("", tool_calls=[call("apply_moves", "c3", stems=["drums"])]), AIMessage("Done."),
    ])
    asked = list(session.send("apply"))[-1]
    assert isinstance(asked, Confirm) and asked.details["id"].startswith("c1:") and asked.interrupt_id
    declined = [e for e in session.send("no") if isinstance(e, ToolEnd)]
    assert declined[0].content == "Not applied: the producer declined (vocals -4.0 dB, drums +3.0 dB)."
    assert renders(tmp_path) == []

    asked = list(session.send("apply"))[-1]
    assert isinstance(asked, Confirm)
    session.workspace.forget("vocals")  # the plan changes after the question was shown
    stale = [e for e in session.send("yes") if isinstance(e, ToolEnd)]
    assert stale[0].content == ("Not applied: the answer was not to this question (drums +3.0 dB); ask the producer "
                                "again.")
    assert renders(tmp_path) == []

    asked = list(session.send("apply the drums"))[-1]
    assert isinstance(asked, Confirm) and asked.question == "Apply drums +3.0 dB and render to a new folder? (yes/no)"
    applied = [e for e in session.send("yes") if isinstance(e, ToolEnd)]
    assert applied[0].artifact["applied"] is True and applied[0].artifact["gains_db"] == pytest.approx({"drums": 3.0},
                                                                                                      abs=0.05)
    assert renders(tmp_path) == ["apply-01"]


def test_a_session_opens_in_one_chat_at_a_time(demo_dir: Path, data: Path) -> None:
    store = SessionStore(data / "sessions.sqlite")
    first = open_chat(stems=demo_dir / "version_a", reference=demo_dir / "version_b", llm=None, resume=False,
                      name="take", config=Config(), store=store)
    other = SessionStore(data / "sessions.sqlite")  # a second window
    with pytest.raises(SessionBusyError) as raised:
        open_chat(stems=None, reference=None, llm=None, resume="take", name=None, config=Config(), store=other)
    assert str(raised.value) == (f"session {first.info.id} is open in another faderwise chat (pid {os.getpid()}); "
                                 "close it there first, or start a new chat")
    with pytest.raises(SessionBusyError):
        other.delete("take")
    assert main(["sessions", "delete", "take"]) == 2
    store.close()  # the first window closes
    again = open_chat(stems=None, reference=None, llm=None, resume="take", name=None, config=Config(), store=other)
    assert again.info.id == first.info.id
    other.close()


# -- keys ---------------------------------------------------------------------------------------------


KEY = "Zq81u2b9Qm4TT7Lp0aaXw3"  # no sk-/key-/api- prefix: only the environment says it is a key


class EchoingProvider(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that refuses every request and echoes the key it was sent."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}. You passed {key!r}.",
                                     "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echoing_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    pytest.importorskip("langchain_openai", reason="the [llm] extra is part of [dev]")
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingProvider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    yield url
    server.shutdown()


def test_a_key_echoed_by_the_provider_reaches_no_file(echoing_provider: str, demo_dir: Path, data: Path,
                                                      tmp_path: Path) -> None:
    store = SessionStore(data / "sessions.sqlite")
    opened = open_chat(stems=demo_dir / "version_a", reference=demo_dir / "version_b", llm="openai:local",
                       resume=False, name="keyed", config=Config(), store=store)
    events = list(opened.session.send("overview"))
    (error,) = [e for e in events if isinstance(e, TurnError)]
    assert KEY not in error.message and "Incorrect API key provided: ***" in error.message
    assert [e for e in opened.session.retry() if isinstance(e, TurnError)]  # the retry fails the same way
    store.export_markdown("keyed", tmp_path / "export.md")
    store.close()
    script = tmp_path / "script.yaml"
    script.write_text(json.dumps({"stems": str(demo_dir / "version_a"), "reference": str(demo_dir / "version_b"),
                                  "turns": [{"user": "overview"}]}))
    records = run_script(read_script(script), llm=parse_llm_spec("openai:local"), output_dir=tmp_path / "run",
                         transcript=tmp_path / "transcript.jsonl")
    assert "***" in records[0]["failures"][0]
    written = [p for p in [*data.rglob("*"), *tmp_path.glob("*.*")] if p.is_file()]
    assert {p.name for p in written} >= {"sessions.sqlite", "export.md", "transcript.jsonl"}
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path
    for private in (data / "sessions.sqlite", tmp_path / "export.md", tmp_path / "transcript.jsonl"):
        assert private.stat().st_mode & 0o777 == 0o600, private


def test_masking_knows_the_environments_keys_whatever_their_shape() -> None:
    env = {"GROQ_API_KEY": "gsk_abcdefghijklmnop", "MY_TOKEN": "plainvalue123", "HOME": "/root/not-a-secret",
           "SHORT_KEY": "abc"}
    text = "key plainvalue123 and gsk_abcdefghijklmnop at /root/not-a-secret, abc, sk-proj-0123456789abcdef"
    assert mask_secrets(text, env=env) == "key *** and *** at /root/not-a-secret, abc, ***"
    assert mask_bytes(b"\xa9plainvalue123", env=env) == b"\xa9*************"  # the length (msgpack's) is kept


# -- damaged state ------------------------------------------------------------------------------------


def test_a_damaged_database_is_moved_aside_and_a_new_chat_starts(demo_dir: Path, data: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    database = data / "sessions.sqlite"
    store = SessionStore(database)
    opened = open_chat(stems=demo_dir / "version_a", reference=demo_dir / "version_b", llm=None, resume=False,
                       name="before", config=Config(), store=store)
    for text in ("overview", "why?"):
        collect(list(opened.session.send(text)))
    store.close()
    damaged = bytearray(database.read_bytes())
    noise = random.Random(0)
    damaged[2 * 4096:4 * 4096] = bytes(noise.randrange(256) for _ in range(2 * 4096))
    database.write_bytes(bytes(damaged))

    assert main(["sessions"]) == 0
    captured = capsys.readouterr()
    (warning,) = captured.err.splitlines()
    match = re.fullmatch(rf"faderwise: warning: {re.escape(str(database))} was damaged \((.+)\); it was moved to "
                         r"(sessions\.sqlite\.damaged-\d{8}-\d{6}) and a new sessions database was started", warning)
    assert match, warning
    assert (data / match.group(2)).read_bytes() == bytes(damaged)  # kept, not deleted
    assert captured.out == "no saved sessions yet: faderwise chat starts one\n"
    store = SessionStore(database)
    assert store.notices == []
    fresh = open_chat(stems=demo_dir / "version_a", reference=None, llm=None, resume=False, name="after",
                      config=Config(), store=store)
    assert collect(list(fresh.session.send("overview")))[0]
    assert [s.name for s in store.list()] == ["after"]
    store.close()


def test_export_errors_are_one_line(demo_dir: Path, data: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    store = SessionStore(data / "sessions.sqlite")
    open_chat(stems=demo_dir / "version_a", reference=None, llm=None, resume=False, name="x", config=Config(),
              store=store)
    store.close()
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    folder = tmp_path / "folder"
    folder.mkdir()
    cases = {str(blocker / "chat.md"): f"{blocker / 'chat.md'}: cannot be created: {blocker} is a file, not a folder",
             str(folder): f"{folder}: is a folder; name a new file"}
    for target, message in cases.items():
        for force in ([], ["--force"]):
            assert main(["sessions", "export", "x", target, *force]) == 2
            assert capsys.readouterr().err == f"faderwise: error: {message}\n"
    assert blocker.read_text() == "in the way" and list(folder.iterdir()) == []


# -- a tool call cut off by a kill ------------------------------------------------------------------


def test_a_tool_call_killed_mid_run_is_answered_when_the_session_resumes(demo_dir: Path, data: Path) -> None:
    child = textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from langchain_core.messages import AIMessage
        from faderwise.agent.llm import LLMSpec
        from faderwise.agent.session import AgentSession
        from faderwise.agent.store import SessionStore
        from faderwise.agent.workspace import Workspace
        from agent_fakes import ScriptedChatModel, call

        store = SessionStore({str(data / 'sessions.sqlite')!r})
        info = store.create(name="killed", stems=None, reference=None, llm="offline")
        workspace = Workspace(output_dir={str(data / 'out')!r})
        workspace.load_stems({str(demo_dir / 'version_a')!r})
        def die():  # inside the tool, once the model's step is saved
            time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGKILL)
        workspace.analysis_a = die
        session = AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=store.saver,
                               thread_id=info.id, model=ScriptedChatModel(responses=[
                                   AIMessage("", tool_calls=[call("measure", "m1")])]))
        list(session.send("measure everything"))
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == -9, result.stderr
    store = SessionStore(data / "sessions.sqlite")
    info = store.get("killed")
    assert [type(m).__name__ for m in store.messages(info.id)] == ["HumanMessage", "AIMessage"]  # unanswered
    model = ScriptedChatModel(responses=[AIMessage("Measuring again.")])
    workspace = Workspace(output_dir=data / "out")
    workspace.load_stems(demo_dir / "version_a")
    session = AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=store.saver, thread_id=info.id,
                           model=model)
    messages = session.messages()
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage"]
    assert isinstance(messages[-1], ToolMessage) and messages[-1].tool_call_id == "m1"
    assert messages[-1].content == INTERRUPTED
    list(session.send("again, please"))
    shown = model.seen[0]
    assert [type(m).__name__ for m in shown] == ["HumanMessage", "AIMessage", "ToolMessage", "HumanMessage"]
    store.close()
