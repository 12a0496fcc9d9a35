"""Saved sessions: SQLite checkpoints, list/rename/delete/export, resume with the workspace,
no turn lost when the process is killed mid-turn, no API key stored."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO
from faderwise.agent.config import Config
from faderwise.agent.launch import open_chat
from faderwise.agent.script import collect
from faderwise.agent.store import SessionNotFoundError, SessionStore


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_a_session_resumes_with_its_conversation_and_workspace(demo_dir: Path, data: Path) -> None:
    store = SessionStore(data / "sessions.sqlite")
    opened = open_chat(stems=demo_dir / "version_a", reference=demo_dir / "version_b", llm=None, resume=False,
                       name="demo mix", config=Config(), store=store)
    session = opened.session
    for text in ("overview", "apply", "yes", "what about the drums?"):
        collect(list(session.send(text)))
    applied_folder = session.workspace.require_a().path
    store.close()

    store = SessionStore(data / "sessions.sqlite")
    resumed = open_chat(stems=None, reference=None, llm=None, resume="demo mix", name=None, config=Config(),
                        store=store)
    assert resumed.problems == []
    assert resumed.info.id == opened.info.id
    workspace = resumed.session.workspace
    assert workspace.require_a().path == applied_folder  # Version A is the applied render again
    assert workspace.original_a is not None and workspace.original_a.path == demo_dir / "version_a"
    assert workspace.total_gains() == pytest.approx({"vocals": -4.0, "drums": 3.0}, abs=0.1)
    assert workspace.focus == "drums"
    human = [m.content for m in resumed.session.messages() if m.type == "human"]
    assert human == ["overview", "apply", "what about the drums?"]  # "yes" answered the confirmation
    reply, _, _, _ = collect(list(resumed.session.send("why?")))
    assert "drums" in reply
    store.close()


def test_resume_reports_audio_that_moved(demo_dir: Path, data: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in (demo_dir / "version_a").iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    store = SessionStore(data / "sessions.sqlite")
    opened = open_chat(stems=copy, reference=None, llm=None, resume=False, name=None, config=Config(), store=store)
    collect(list(opened.session.send("overview")))
    for path in copy.iterdir():
        path.unlink()
    copy.rmdir()
    resumed = open_chat(stems=None, reference=None, llm=None, resume=True, name=None, config=Config(), store=store)
    assert resumed.problems == [f"could not reload your stems: {copy}: no such file or folder; point at them with "
                                "/load FOLDER"]
    assert [m.content for m in resumed.session.messages()][0] == "overview"  # the conversation is still there
    store.close()


def test_list_rename_delete_export(demo_dir: Path, data: Path, tmp_path: Path) -> None:
    store = SessionStore(data / "sessions.sqlite")
    first = open_chat(stems=demo_dir / "version_a", reference=demo_dir / "version_b", llm=None, resume=False,
                      name="first", config=Config(), store=store)
    collect(list(first.session.send("which stem is furthest off?")))
    second = open_chat(stems=demo_dir / "version_b", reference=None, llm=None, resume=False, name="second",
                       config=Config(), store=store)
    store.touch(second.info.id)
    assert [s.name for s in store.list()] == ["second", "first"]
    assert store.rename(first.info.id[:6], "renamed").name == "renamed"

    out = store.export_markdown("renamed", tmp_path / "chat.md")
    text = out.read_text()
    assert text.startswith("<!-- written by faderwise: session export -->\n# renamed\n")
    assert "## You\n\nwhich stem is furthest off?" in text
    assert "<details><summary>tool: advise()</summary>" in text
    assert "## faderwise\n\nThe **vocals** are furthest off." in text
    with pytest.raises(Exception, match="already exists; choose a new file or pass --force"):
        store.export_markdown("renamed", tmp_path / "chat.md")

    store.delete("second")
    assert [s.name for s in store.list()] == ["renamed"]
    with pytest.raises(SessionNotFoundError, match="^no session match 'second'; saved sessions: "):
        store.get("second")
    assert store.messages(second.info.id) == []
    store.close()


def test_a_kill_mid_turn_loses_no_earlier_turn(demo_dir: Path, data: Path) -> None:
    """The child answers one turn, then is SIGKILLed inside the next model call."""
    child = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from langchain_core.messages import AIMessage
        from faderwise.agent.llm import LLMSpec
        from faderwise.agent.session import AgentSession
        from faderwise.agent.store import SessionStore
        from faderwise.agent.workspace import Workspace
        from agent_fakes import ScriptedChatModel

        class Killer(ScriptedChatModel):
            def _generate(self, messages, stop=None, run_manager=None, **kwargs):
                if len(self.seen) == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
                return super()._generate(messages, stop, run_manager, **kwargs)

        store = SessionStore({str(data / 'sessions.sqlite')!r})
        info = store.create(name="killed", stems=None, reference=None, llm="offline")
        workspace = Workspace(output_dir={str(data / 'out')!r})
        workspace.load_stems({str(demo_dir / 'version_a')!r})
        session = AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=store.saver,
                               thread_id=info.id, model=Killer(responses=[AIMessage("first reply")]))
        list(session.send("first turn"))
        print("first turn done", flush=True)
        list(session.send("second turn"))
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == -9, result.stderr
    assert result.stdout == "first turn done\n"
    store = SessionStore(data / "sessions.sqlite")
    info = store.get("killed")
    contents = [m.content for m in store.messages(info.id)]
    assert contents[:2] == ["first turn", "first reply"]
    store.close()


def test_api_keys_never_reach_the_database(demo_dir: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-0123456789abcdefSECRET"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    store = SessionStore(data / "sessions.sqlite")
    opened = open_chat(stems=demo_dir / "version_a", reference=demo_dir / "version_b", llm=None, resume=False,
                       name=None, config=Config(), store=store)
    for text in ("overview", "why?", "plot"):
        collect(list(opened.session.send(text)))
    store.close()
    for path in data.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_the_database_is_in_wal_mode(data: Path) -> None:
    SessionStore(data / "sessions.sqlite").close()
    with sqlite3.connect(data / "sessions.sqlite") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
