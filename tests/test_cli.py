"""The faderwise command: demo, analyze (table, JSON, plot), the default run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import noise_stems, write_stems
from faderwise.cli import main

RATE = 44_100


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_writes_a_new_folder_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["demo", "--out", str(tmp_path / "song")], capsys)
    assert code == 0
    assert out == (f"wrote {tmp_path}/song/version_a (your mix: vocals +4 dB, drums -3 dB against B), "
                   f"{tmp_path}/song/version_b (balanced) and {tmp_path}/song/manifest.json\n")
    code, _, err = run(["demo", "--out", str(tmp_path / "song")], capsys)
    assert code == 2
    assert err == f"faderwise: error: {tmp_path}/song: already exists; choose a new folder or pass --force to replace it\n"


def test_analyze_json_against_reference(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["analyze", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                          "--json"], capsys)
    assert code == 0 and err == ""
    payload = json.loads(out)
    assert payload["format"] == "faderwise.analysis/1"
    assert payload["mix_a_minus_b_lu"] == pytest.approx(1.6, abs=0.1)
    vocals = payload["stems"]["vocals"]
    assert vocals["a_minus_b"]["integrated_lu"] == pytest.approx(4.0, abs=0.01)
    assert vocals["a"]["integrated_lufs"] == pytest.approx(-15.0, abs=0.01)
    assert vocals["b"]["integrated_lufs"] == pytest.approx(-19.0, abs=0.01)
    assert payload["stems"]["drums"]["a_minus_b"]["integrated_lu"] == pytest.approx(-3.0, abs=0.01)
    assert payload["stems"]["bass"]["a_minus_b"]["integrated_lu"] == pytest.approx(0.0, abs=0.01)
    assert vocals["b"]["active_regions_s"] == [[5.0, 25.0]]
    assert set(vocals["b"]) >= {"integrated_lufs", "rms_dbfs", "sample_peak_dbfs", "true_peak_dbtp", "crest_db",
                                "loudness_range_lu", "band_levels_db", "stem_to_mix_lu", "stem_to_backing_lu", "backing"}
    assert list(vocals["b"]["band_levels_db"])[:3] == ["25", "31.5", "40"]


def test_analyze_table_and_plot(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "plots" / "loudness.png"
    code, out, err = run(["analyze", str(demo_dir / "version_b"), "--plot", str(plot)], capsys)
    assert code == 0
    assert err == f"wrote {plot}\n"
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert set(rows) == {"bass", "drums", "guitar", "keys", "vocals", "mix"}
    assert "-19.0" in rows["vocals"] and "-16.5" in rows["mix"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in plot.parent.iterdir()] == ["loudness.png"]  # no temporary left over


def test_silent_stem_is_reported_as_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stems = noise_stems(seconds=4.0)
    stems["mute"] = np.zeros_like(stems["bass"])
    folder = write_stems(tmp_path / "stems", stems, RATE)
    code, out, _ = run(["analyze", str(folder), "--json"], capsys)
    assert code == 0
    mute = json.loads(out)["stems"]["mute"]
    assert mute["silent"] is True
    for key in ("integrated_lufs", "rms_dbfs", "true_peak_dbtp", "crest_db", "loudness_range_lu",
                "stem_to_mix_lu", "stem_to_backing_lu"):
        assert mute[key] is None, key
    assert mute["active_regions_s"] == []
    assert mute["backing"]["silent"] is False
    code, out, _ = run(["analyze", str(folder)], capsys)
    row = next(line for line in out.splitlines() if line.startswith("│ mute"))
    assert [cell.strip() for cell in row.split("│")[1:-1]] == ["mute", "silent", "—", "—", "—", "—", "—", "—"]


def test_default_run_writes_the_demo_once_and_analyses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    code, out, _ = run([], capsys)
    assert code == 0
    assert "Version A is the balanced Version B with vocals +4 dB, drums -3 dB." in out.replace("\n", " ")
    assert (tmp_path / "data" / "demo" / "manifest.json").is_file()
    stamp = (tmp_path / "data" / "demo" / "manifest.json").stat().st_mtime_ns
    assert run([], capsys)[0] == 0
    assert (tmp_path / "data" / "demo" / "manifest.json").stat().st_mtime_ns == stamp


def test_console_script_runs_without_torch(tmp_path: Path) -> None:
    # The core install must not import torch; run the real entry point in a fresh interpreter.
    code = (
        "import sys\n"
        "from faderwise.cli import main\n"
        f"assert main(['demo', '--out', {str(tmp_path / 'd')!r}]) == 0\n"
        f"assert main(['analyze', {str(tmp_path / 'd' / 'version_b')!r}, '--json']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.startswith("faderwise ")


def test_loading_warnings_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stems = noise_stems(seconds=4.0)
    stems["bass"] = stems["bass"][:, : RATE * 2]
    folder = write_stems(tmp_path / "stems", stems, RATE)
    code, out, err = run(["analyze", str(folder), "--json"], capsys)
    assert code == 0
    assert err == f"warning: {folder}/bass.wav: 2.00 s shorter than drums.wav; padded with silence at the end\n"
    assert json.loads(out)["warnings"] == [f"{folder}/bass.wav: 2.00 s shorter than drums.wav; padded with silence at the end"]


def test_progress_bar_shows_what_is_measured_and_the_time_left() -> None:
    import io

    from rich.console import Console

    from faderwise.cli import _ProgressBar

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    with _ProgressBar(console, enabled=True) as on_progress:
        assert on_progress is not None
        on_progress(3, 14, "A: 64 stems, 3:00 of 8:00 measured")
        console.file.flush()
    assert "A: 64 stems, 3:00 of 8:00 measured" in screen.getvalue() and " left " in screen.getvalue()
    with _ProgressBar(console, enabled=False) as nothing:
        assert nothing is None


def test_the_wheel_holds_the_package_data(tmp_path: Path) -> None:
    """`pip install .` (not editable) must ship the files the code reads at run time."""
    import shutil
    import zipfile

    from conftest import REPO

    # from a copy of the source: an in-tree build/ left by an older layout would leak into the wheel
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "data", "runs",
                                                                 "*.egg-info", "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("faderwise-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"faderwise/advisor/prior.json", "faderwise/tools/py.typed",
            "faderwise/advisor/models/small-differential/model.safetensors",
            "faderwise/advisor/models/small-single-mix/MODEL_CARD.md", "faderwise/tools/outputs.py",
            "faderwise/agent/tui.py", "faderwise/training/train.py", "faderwise/evals/run.py"} <= names
    # one namespace: nothing but faderwise (and its metadata) at the top of the wheel
    assert {name.split("/")[0] for name in names} == {"faderwise", "faderwise-0.1.0.dist-info"}
    assert not any("/tests/" in name or name.startswith("bench/") for name in names)


def test_python_m_faderwise_ignores_the_users_own_packages(tmp_path: Path) -> None:
    """Run from a folder holding its own tools/ and training/ (a producer's project, say): faderwise
    imports its own modules, never those."""
    for name in ("tools", "training", "advisor", "agent", "evals"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise SystemExit('imported the user\\'s {name}')\n")
    result = subprocess.run([sys.executable, "-m", "faderwise", "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: faderwise")
    result = subprocess.run([sys.executable, "-m", "faderwise", "demo", "--out", "song"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "song" / "version_a" / "vocals.wav").is_file()


def test_the_bare_command_in_a_terminal_is_chat_with_every_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """`faderwise` in a terminal runs what `faderwise chat` runs, with every option of chat at its default
    (a namespace built by hand once lacked --workers and crashed the README's first command)."""
    import faderwise.cli as cli

    seen: list[object] = []
    monkeypatch.setattr(cli, "run_chat", lambda args: seen.append(args) or 0)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.main([]) == 0
    (args,) = seen
    expected = vars(cli.build_parser().parse_args(["chat"]))
    assert {key: value for key, value in vars(args).items() if key != "handler"} == {
        key: value for key, value in expected.items() if key != "handler"}
    assert vars(args)["workers"] is None and vars(args)["command"] == "chat"
