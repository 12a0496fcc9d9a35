"""What a producer hits in the first hour: the folder apply writes is a stem set, effects requests
are told the scope, the command line reads stem names as the chat does, table headings say what
each column is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from faderwise.agent.llm import LLMSpec
from faderwise.agent.planner import SCOPE_TEXT
from faderwise.agent.script import collect
from faderwise.agent.session import AgentSession
from faderwise.agent.workspace import Workspace
from faderwise.cli import main
from faderwise.tools.stem_files import load_stem_set


@pytest.fixture
def applied(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"), "--json"]) == 0
    (tmp_path / "advice.json").write_text(capsys.readouterr().out)
    assert main(["apply", str(demo_dir / "version_a"), "--advice", str(tmp_path / "advice.json"),
                 "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    return tmp_path / "out"


def test_the_folder_apply_writes_is_a_stem_set(applied: Path, demo_dir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    stems = load_stem_set(applied)
    assert stems.names == ["bass", "drums", "guitar", "keys", "vocals"]  # mix.wav is the mixture, not a stem
    assert stems.mixture is not None and stems.origin == applied
    assert main(["analyze", str(applied), "--reference", str(demo_dir / "version_b"), "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert {name: stem["a_minus_b"]["integrated_lu"] for name, stem in compared["stems"].items()} == pytest.approx(
        {name: 0.0 for name in stems.names}, abs=0.05)
    assert main(["advise", str(applied), "--reference", str(demo_dir / "version_b"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["moves"] == []
    workspace = Workspace(output_dir=applied.parent / "chat")
    workspace.load_pair(applied, demo_dir / "version_b")
    session = AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="t")
    reply, _, _, error = collect(list(session.send("overview")))
    assert error is None and "Your balance already matches the reference" in reply


@pytest.mark.parametrize(("said", "lead"), [
    ("can you add reverb to the snare?", "The snare is part of the drums: Raise the drums by about 3 dB"),
    ("should I compress the vocals?", "Lower the vocals by about 4 dB"),
    ("pan the guitar left", "Leave the guitar as it is"),
    ("pan the keys wider", "Leave the keys as they are"),
    ("make the snare punchier", "The snare is part of the drums: Raise the drums by about 3 dB"),
    ("the vocals need more presence", "Lower the vocals by about 4 dB"),
    ("what EQ would help?", "What I can say is the balance: Lower the vocals by about 4 dB"),
])
def test_requests_beyond_gain_are_told_the_scope_then_the_gain_view(demo_dir: Path, tmp_path: Path, said: str,
                                                                    lead: str) -> None:
    workspace = Workspace(output_dir=tmp_path)
    workspace.load_pair(demo_dir / "version_a", demo_dir / "version_b")
    session = AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="t")
    reply, calls, _, error = collect(list(session.send(said)))
    assert error is None
    assert reply.startswith(f"{SCOPE_TEXT} {lead}"), reply
    assert not any(call["name"] == "apply_moves" for call in calls)


def test_the_command_line_reads_stem_names_as_the_chat_does(demo_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    for word in ("vocls", "vox", "the vocals", "Vocals"):
        assert main(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                     "--stem", word, "--json"]) == 0
        moves = json.loads(capsys.readouterr().out)["moves"]
        assert [m["stem"] for m in moves] == ["vocals"], word
    assert main(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                 "--stem", "kazoo"]) == 2
    assert capsys.readouterr().err == (f"faderwise: error: {demo_dir / 'version_a'}: has no stem 'kazoo' (it has: "
                                       "bass, drums, guitar, keys, vocals)\n")


def test_the_comparison_table_heads_each_difference_by_what_it_measures(demo_dir: Path) -> None:
    from faderwise.tools.compare import compare_stem_sets
    from faderwise.tools.report import comparison_table

    table = comparison_table(compare_stem_sets(load_stem_set(demo_dir / "version_a"),
                                               load_stem_set(demo_dir / "version_b")))
    headers = [str(column.header) for column in table.columns]
    assert headers == ["stem", "LUFS\nA", "LUFS\nB", "LUFS\nA − B", "vs backing\nA, LU", "vs backing\nB, LU",
                       "vs backing\nA − B", "true peak\nA dBTP", "true peak\nB dBTP"]
    assert len(set(headers)) == len(headers)


def test_loudness_sparklines_show_a_few_db_between_a_and_b(demo_dir: Path, tmp_path: Path) -> None:
    from faderwise.agent.plots import SPARKS, write_plot

    workspace = Workspace(output_dir=tmp_path)
    workspace.load_pair(demo_dir / "version_a", demo_dir / "version_b")
    png, chart = write_plot(workspace, "loudness")
    assert png.is_file()
    rows = {line.split("  ")[0].strip(): line for line in chart.splitlines()[1:]}

    def mean_height(label: str) -> float:
        cells = [SPARKS.index(ch) for ch in rows[label] if ch in SPARKS]
        return sum(cells) / len(cells)

    # vocals +4 dB and drums -3 dB in A: steps of at least two of the eight heights, each way round
    assert mean_height("vocals A") - mean_height("vocals B") >= 2
    assert mean_height("drums B") - mean_height("drums A") >= 2
    assert abs(mean_height("bass A") - mean_height("bass B")) < 0.1  # the same level looks the same
    assert rows["vocals A"].endswith(" LUFS") and rows["drums A"].endswith(" LUFS")  # each stem its own scale
    assert rows["vocals A"].split("  ")[-1] != rows["drums A"].split("  ")[-1]
