"""Clipping is flagged: a stem or mix that reaches full scale or passes the −1 dBTP ceiling is
named by analyze and the chat, and advice whose moves would make the mix clip says so, with the
master trim and --peak-safe by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from conftest import noise_stems, write_stems
from faderwise.advisor.headroom import check_headroom
from faderwise.advisor.measured import MeasuredAdvisor
from faderwise.agent.llm import LLMSpec
from faderwise.agent.script import collect
from faderwise.agent.session import AgentSession
from faderwise.agent.workspace import Workspace
from faderwise.cli import main
from faderwise.tools.levels import sample_peak_dbfs, true_peak_dbtp
from faderwise.tools.stem_files import load_stem_set
from faderwise.tools.stems import StemSet

RATE = 44_100


def hot_set(peak_dbfs: float) -> dict[str, np.ndarray]:
    """Three noise stems scaled together so their mix's sample peak is ``peak_dbfs``."""
    stems = noise_stems(seconds=3.0)
    mix_peak = sample_peak_dbfs(sum(stems.values()))
    gain = np.float32(10 ** ((peak_dbfs - mix_peak) / 20))
    return {name: audio * gain for name, audio in stems.items()}


def test_analyze_flags_a_mix_over_full_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_stems(tmp_path / "hot", hot_set(0.88), RATE)
    assert main(["analyze", str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    warnings = json.loads(captured.out)["warnings"]
    assert warnings[0] == (f"{folder}: the mix peaks at +0.88 dBFS, at or over full scale: it clips in any fixed-point "
                           "export")
    assert captured.err.splitlines()[0] == f"warning: {warnings[0]}"
    # a mix under full scale whose true peak passes -1 dBTP gets the ceiling line instead
    folder = write_stems(tmp_path / "warm", hot_set(-0.6), RATE)
    assert main(["analyze", str(folder), "--json"]) == 0
    analysis = json.loads(capsys.readouterr().out)
    true_peak = analysis["mix"]["true_peak_dbtp"]
    assert true_peak > -1.0
    assert analysis["warnings"] == [f"{folder}: the mix has a true peak of {true_peak:+.2f} dBTP, over the -1 dBTP "
                                    "delivery ceiling: it may clip once encoded"]


def test_advice_that_would_clip_says_so_and_names_the_trim(tmp_path: Path) -> None:
    balanced = StemSet(stems=hot_set(0.5), rate=RATE)  # a reference mastered hot
    version_a = balanced.with_gains({"vocals": -6.0})  # the advice raises them by 6 dB
    assert sample_peak_dbfs(version_a.mix()) < 0.0
    advice = check_headroom(MeasuredAdvisor().advise(version_a, balanced), version_a)
    after = version_a.with_gains(advice.gains_db()).mix()  # the moves applied in memory, whole
    headroom = advice.evidence["headroom"]
    assert headroom["mix_true_peak_after_dbtp"] == pytest.approx(true_peak_dbtp(after, RATE), abs=0.01)
    assert headroom["master_trim_db"] == pytest.approx(-1.0 - headroom["mix_true_peak_after_dbtp"], abs=0.01)
    assert headroom["mix_sample_peak_after_dbfs"] == pytest.approx(0.5, abs=0.01)
    assert advice.text.endswith(
        f"With these moves the mix peaks at {headroom['mix_true_peak_after_dbtp']:+.1f} dBTP and clips, over the -1 dBTP "
        f"ceiling: lower the master by {-headroom['master_trim_db']:.1f} dB as well, or apply with --peak-safe, "
        "which lowers every stem by the same amount and keeps the balance.")
    quiet = StemSet(stems=hot_set(-12.0), rate=RATE)
    calm = check_headroom(MeasuredAdvisor().advise(quiet.with_gains({"vocals": -3.0}), quiet), quiet)
    assert calm.evidence["headroom"]["master_trim_db"] == 0.0 and "peaks at" not in calm.text


def test_the_chat_flags_clipping_and_the_advice_that_would_clip(tmp_path: Path) -> None:
    a = write_stems(tmp_path / "a", hot_set(0.88), RATE)
    b = write_stems(tmp_path / "b", {name: audio * np.float32(0.5) for name, audio in hot_set(0.88).items()}, RATE)
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_pair(a, b)
    session = AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="t")
    reply, _, _, error = collect(list(session.send("overview")))
    assert error is None
    assert f"Watch the level: {a}: the mix peaks at +0.88 dBFS, at or over full scale: it clips in any fixed-point " \
           "export." in reply
    loud = load_stem_set(a)
    assert loud.names == ["bass", "drums", "vocals"]
