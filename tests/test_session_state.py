"""Sessions keep their stems (absolute paths and fingerprints; resumed from any folder, Version A
is the render after an apply; moved or changed files are named with what to do), and a long
conversation grows linearly: older turns are archived once, superseded checkpoints pruned, and a
model sees a bounded window."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from faderwise.agent.config import Config
from faderwise.agent.history import RECENT_TURNS
from faderwise.agent.launch import open_chat
from faderwise.agent.script import collect
from faderwise.agent.store import SessionStore


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def song(demo_dir: Path, tmp_path: Path) -> Path:
    """A copy of the demo song the test may move and change."""
    return Path(shutil.copytree(demo_dir, tmp_path / "song"))


def applied_session(song: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """Open a chat from the song's folder with relative paths, apply the advice, close."""
    monkeypatch.chdir(song)
    store = SessionStore(data / "sessions.sqlite")
    opened = open_chat(stems="version_a", reference="version_b", llm=None, resume=False, name="take", config=Config(),
                       store=store)
    for text in ("overview", "apply", "yes"):
        collect(list(opened.session.send(text)))
    render = opened.session.workspace.require_a().path
    assert render.is_absolute() and render.parent.name == "apply-01"
    assert store.get("take").stems == str(song / "version_a")  # stored absolute
    store.close()
    return opened.info.id, render


def test_a_session_resumed_from_another_folder_carries_on_from_the_render(
        song: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id, render = applied_session(song, data, tmp_path, monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store = SessionStore(data / "sessions.sqlite")
    resumed = open_chat(stems=None, reference=None, llm=None, resume=session_id, name=None, config=Config(), store=store)
    assert resumed.problems == []
    workspace = resumed.session.workspace
    assert workspace.require_a().path == render
    assert workspace.original_a is not None and workspace.original_a.path == song / "version_a"
    assert workspace.total_gains() == pytest.approx({"vocals": -4.0, "drums": 3.0}, abs=0.1)
    reply, _, _, _ = collect(list(resumed.session.send("overview")))
    assert "Your balance already matches the reference" in reply  # not "lower the vocals" a second time
    store.close()


def test_a_moved_render_is_named_and_never_replaced_by_the_stems_before_it(
        song: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id, render = applied_session(song, data, tmp_path, monkeypatch)
    moved = tmp_path / "moved-render"
    render.parent.rename(moved)
    store = SessionStore(data / "sessions.sqlite")
    resumed = open_chat(stems=None, reference=None, llm=None, resume=session_id, name=None, config=Config(), store=store)
    assert resumed.problems == [
        f"could not reload the mix rendered with your moves (vocals -4.0 dB, drums +3.0 dB): {render}: no such file "
        f"or folder; point at it with /load {render}, or /load your original stems to start again; until then "
        "Version A is not loaded, so nothing is compared with the stems from before the apply"]
    assert resumed.session.workspace.version_a is None
    reply, _, _, _ = collect(list(resumed.session.send("overview")))
    assert "no stems loaded yet" in reply
    reply, _, _, _ = collect(list(resumed.session.send(f"load {moved / 'stems'}")))
    assert "Loaded Version A" in reply or "5 stems" in reply
    store.close()


def test_stems_changed_on_disk_are_said_and_measured_again(song: Path, data: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    session_id, _ = applied_session(song, data, tmp_path, monkeypatch)
    vocals = song / "version_b" / "vocals.wav"
    vocals.write_bytes(vocals.read_bytes())  # rewritten: same sound, new modification time
    os.utime(vocals, (1, 1))
    store = SessionStore(data / "sessions.sqlite")
    resumed = open_chat(stems=None, reference=None, llm=None, resume=session_id, name=None, config=Config(), store=store)
    assert resumed.problems == [f"the reference in {song / 'version_b'} changed on disk since this session last used "
                                "them (files rewritten or replaced): measured again from the files as they are now"]
    store.close()


def test_a_long_conversation_grows_linearly_and_the_model_sees_a_window(demo_dir: Path, data: Path,
                                                                       tmp_path: Path) -> None:
    store = SessionStore(data / "sessions.sqlite")
    opened = open_chat(stems=demo_dir / "version_a", reference=demo_dir / "version_b", llm=None, resume=False,
                       name="long", config=Config(), store=store)
    questions = ["overview", "what about the bass?", "why?", "how much exactly?", "compare"]
    turns = 3 * RECENT_TURNS
    for number in range(turns):
        reply, _, _, error = collect(list(opened.session.send(questions[number % len(questions)])))
        assert error is None and reply
    session = opened.session
    state = session._graph.get_state(session.config).values["messages"]
    assert sum(isinstance(m, HumanMessage) for m in state) == RECENT_TURNS  # what a model is sent
    everything = session.messages()
    assert [m.content for m in everything if isinstance(m, HumanMessage)] == [
        questions[n % len(questions)] for n in range(turns)]
    assert len({m.id for m in everything}) == len(everything)  # each message kept once
    with sqlite3.connect(data / "sessions.sqlite") as connection:
        checkpoints = connection.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?",
                                         (opened.info.id,)).fetchone()[0]
        archived = connection.execute("SELECT COUNT(*) FROM faderwise_history WHERE session_id = ?",
                                      (opened.info.id,)).fetchone()[0]
    assert checkpoints == 1  # superseded checkpoints pruned: no artifact stored twice
    assert archived == len(everything) - len(state)
    exported = store.export_markdown("long", tmp_path / "long.md").read_text()
    assert exported.count("## You") == turns
    store.close()
    store = SessionStore(data / "sessions.sqlite")  # a resume sees the whole conversation again
    resumed = open_chat(stems=None, reference=None, llm=None, resume="long", name=None, config=Config(), store=store)
    assert len(resumed.session.messages()) == len(everything)
    store.close()
