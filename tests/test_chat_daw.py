"""The chat meets the DAW: "export to reaper", /export-project, and the push with its dry run,
through the same code as faderwise export and faderwise push."""

from __future__ import annotations

from pathlib import Path

import pytest
from daw_projects import reaper_project_text, write_project_with_stems
from langgraph.checkpoint.memory import InMemorySaver
from osc_standins import StandInReaper
from test_fader_push import MIXER, free_port
from test_tui import SIZE, say

from faderwise.agent.llm import LLMSpec
from faderwise.agent.script import collect
from faderwise.agent.session import AgentSession
from faderwise.agent.tui import ChatApp
from faderwise.agent.workspace import Workspace
from faderwise.tools.daw.project import read_project

NOTE = "fader moves are relative: each fader moves by the advised dB from where it is now"


def session_on(stems: Path, reference: Path, tmp_path: Path) -> AgentSession:
    workspace = Workspace(output_dir=tmp_path / "out", workers=1)
    workspace.load_stems(stems)
    workspace.set_reference(reference)
    return AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="t")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_export_to_reaper_after_advice_and_after_an_apply(tmp_path: Path, demo_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    project = write_project_with_stems(tmp_path / "song", reaper_project_text(), ".RPP", demo_dir / "version_a")
    session = session_on(project, demo_dir / "version_b", tmp_path)
    reply, _, _, _ = collect(session.send("list stems"))
    assert ("REAPER tracks (track ← stem file): Drums ← stems/Drums.wav (fader -3.0 dB); Bass ← stems/Bass.wav (fader "
            "+1.0 dB);") in reply
    reply, calls, _, error = collect(session.send("export to reaper"))
    assert error is None and [c["name"] for c in calls] == ["export_project"]
    first = project.with_name("song-faderwise-01.RPP")
    assert reply == (f"Wrote {first}: {NOTE} in {project}. Vocals: +3.0 dB → -1.0 dB (move -4.0 dB); "
                     "Drums: -3.0 dB → +0.0 dB (move +3.0 dB).")
    collect(session.send("apply"))
    collect(session.send("yes"))  # the render is Version A now; nothing is pending
    reply, _, _, _ = collect(session.send("export to reaper"))
    second = project.with_name("song-faderwise-02.RPP")
    assert reply.startswith(f"Wrote {second}: ")  # the applied moves, relative to the project's faders
    for path in (first, second):
        exported = read_project(path)
        assert exported.named("Vocals")[0].gain_db == pytest.approx(-1.0, abs=0.05)
        assert exported.named("Drums")[0].gain_db == pytest.approx(0.0, abs=0.05)


def test_export_needs_a_project_when_the_stems_came_from_a_folder(tmp_path: Path, demo_dir: Path) -> None:
    session = session_on(demo_dir / "version_a", demo_dir / "version_b", tmp_path)
    reply, _, _, _ = collect(session.send("export to reaper"))
    assert reply == (f"I couldn't do that: which project? The stems came from the folder {demo_dir / 'version_a'}; "
                     "name the REAPER (.RPP) or Ardour (.ardour) project they were bounced from")


def test_push_shows_the_dry_run_asks_and_undoes(tmp_path: Path, demo_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    session = session_on(demo_dir / "version_a", demo_dir / "version_b", tmp_path)
    listen = free_port()
    with StandInReaper(MIXER, device_port=listen) as daw:
        ask = f"push to reaper port {daw.port} listen {listen}"
        reply, calls, pending, _ = collect(session.send(ask))
        where = f"REAPER at 127.0.0.1:{daw.port}"
        assert pending is not None and reply == (f"Move these faders on {where}: Vocals (stem vocals): +3.0 dB → -1.0 dB "
                                                 "(move -4.0 dB); Drums (stem drums): -3.0 dB → +0.0 dB (move +3.0 dB)? "
                                                 "(yes/no)")
        reply, _, _, _ = collect(session.send("no"))
        assert reply.startswith(f"Not pushed (dry run only) to {where}: {NOTE}")
        assert daw.levels() == {name: db for name, db in MIXER.values()}
        collect(session.send(ask))
        reply, _, _, _ = collect(session.send("yes"))
        assert reply.startswith(f"Pushed to {where} (undo_push puts them back): {NOTE}")
        assert daw.levels()["Vocals"] == pytest.approx(-1.0, abs=1e-6)
        reply, _, pending, _ = collect(session.send(ask))  # again: refused before anything is asked or sent
        assert pending is None and reply.startswith(f"I couldn't do that: these moves were pushed to {where} already (")
        assert reply.endswith(") and the faders are still there: pushing again would move them twice (undo_push first)")
        reply, calls, pending, _ = collect(session.send("undo the push to reaper"))
        assert [c["name"] for c in calls] == ["undo_push"]
        question = (f"Put these faders back on reaper at 127.0.0.1:{daw.port}: Vocals back to +3.0 dB; Drums back to "
                    "-3.0 dB? Faders moved since the push are left alone. (yes/no)")
        assert pending is not None and reply == question  # an undo moves the DAW's faders too: it asks first
        reply, _, _, _ = collect(session.send("no"))
        assert reply == (f"Not undone: the producer did not confirm; the faders on reaper at 127.0.0.1:{daw.port} "
                         "stay where they are.")
        assert daw.levels()["Vocals"] == pytest.approx(-1.0, abs=1e-6)
        assert collect(session.send("undo the push to reaper"))[0] == question
        reply, _, _, _ = collect(session.send("yes"))
        assert reply == "Put back Vocals +3.0 dB, Drums -3.0 dB on reaper."
        assert daw.levels() == pytest.approx({name: db for name, db in MIXER.values()}, abs=1e-6)
    assert daw.rejected == []


@pytest.mark.anyio
async def test_export_project_slash_command(tmp_path: Path, demo_dir: Path) -> None:
    project = write_project_with_stems(tmp_path / "song", reaper_project_text(), ".RPP", demo_dir / "version_a")
    app = ChatApp(session_on(demo_dir / "version_a", demo_dir / "version_b", tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await say(pilot, app, f"/export-project {project}")
        assert app.last_reply.startswith(f"Wrote {project.with_name('song-faderwise-01.RPP')}: {NOTE}")
        await say(pilot, app, "/push")
        assert str(app.query(".error").last().render()) == (
            "usage: /push reaper|ardour [PORT]: move the running DAW's faders over OSC (shows them, asks first)")


def test_an_export_from_the_chat_says_when_the_moves_would_clip(tmp_path: Path, demo_dir: Path) -> None:
    """The chat and MCP move no master: the trim the advice's headroom check names is said with the export."""
    import dataclasses

    project = write_project_with_stems(tmp_path / "song", reaper_project_text(), ".RPP", demo_dir / "version_a")
    workspace = Workspace(output_dir=tmp_path / "out", workers=1)
    workspace.load_stems(project)
    workspace.set_reference(demo_dir / "version_b")
    advice = workspace.current_advice()
    assert advice is not None
    workspace.advice = dataclasses.replace(advice, evidence={**advice.evidence, "headroom": {
        "mix_sample_peak_after_dbfs": 0.3, "mix_true_peak_after_dbtp": 1.2, "master_trim_db": -2.2}})
    plan, _ = workspace.export_project()
    assert plan.warnings[-1] == ("with these moves the mix peaks at +1.2 dBTP and clips, over the -1 dBTP ceiling: lower "
                                 "the master by 2.2 dB as well (on REAPER's master; faderwise moves only the tracks' "
                                 "faders here)")
