"""Every bad input the CLI can meet: one line naming the file and the problem, exit status 2,
no traceback, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import noise_stems, write_stems
from faderwise.cli import main

RATE = 44_100


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def stems_dir(tmp_path: Path) -> Path:
    return write_stems(tmp_path / "stems", noise_stems(seconds=2.0), RATE)


def assert_clean_failure(code: int, out: str, err: str, message: str, plot: Path) -> None:
    assert code == 2
    assert err == f"faderwise: error: {message}\n"
    assert "Traceback" not in out + err
    assert not plot.exists(), "nothing may be written on bad input"


def corrupt_wav(path: Path) -> None:
    sf.write(path, np.zeros((RATE, 2)), RATE)
    data = path.read_bytes()
    path.write_bytes(data[:12] + b"\xff" * 32 + data[44:])  # header chunk garbled


@pytest.mark.parametrize(
    ("case", "make", "message"),
    [
        ("empty file", lambda p: (p / "vocals.wav").write_bytes(b""), "{p}/vocals.wav: file is empty (0 bytes)"),
        ("text named .wav", lambda p: (p / "vocals.wav").write_text("not audio at all\n" * 50),
         "{p}/vocals.wav: not a readable audio file (Format not recognised.)"),
        ("corrupt header", lambda p: corrupt_wav(p / "vocals.wav"),
         "{p}/vocals.wav: not a readable audio file (Error in WAV file. No 'data' chunk marker.)"),
        ("NaN samples", lambda p: sf.write(p / "vocals.wav", np.full((RATE, 2), np.nan), RATE, subtype="FLOAT"),
         "{p}/vocals.wav: contains 88200 NaN or infinite samples (first at 0.000 s, channel 0)"),
        ("9 channels", lambda p: sf.write(p / "vocals.wav", np.zeros((RATE, 9)), RATE),
         "{p}/vocals.wav: has 9 channels; faderwise supports at most 8"),
        ("shorter than a block", lambda p: sf.write(p / "vocals.wav", np.zeros((RATE // 4, 2)), RATE),
         "{p}/vocals.wav: is 250 ms long, shorter than one 400 ms loudness block"),
        ("duplicate names", lambda p: sf.write(p / "vocals.flac", np.zeros((RATE, 2)), RATE),
         "{p}: two files for stem 'vocals': vocals.flac, vocals.wav"),
    ],
)
def test_bad_stem_file(
    stems_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, make, message: str
) -> None:
    make(stems_dir)
    plot = tmp_path / "plot.png"
    code, out, err = run_cli(["analyze", str(stems_dir), "--plot", str(plot)], capsys)
    assert_clean_failure(code, out, err, message.format(p=stems_dir), plot)


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no audio here")
    code, out, err = run_cli(["analyze", str(tmp_path / "empty"), "--plot", str(tmp_path / "p.png")], capsys)
    assert_clean_failure(code, out, err, f"{tmp_path}/empty: no audio files found "
                         "(looked for .wav, .wave, .flac, .aif, .aiff, .aifc, .ogg, .oga, .mp3)", tmp_path / "p.png")


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "file is empty (0 bytes)"),
    (b"hello, not a container", "no audio streams found (Invalid data found when processing input)"),
])
def test_broken_stem_mp4(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str) -> None:
    path = tmp_path / "song.stem.mp4"
    path.write_bytes(content)
    code, out, err = run_cli(["analyze", str(path), "--plot", str(tmp_path / "p.png")], capsys)
    assert_clean_failure(code, out, err, f"{path}: {problem}", tmp_path / "p.png")


def test_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "p.png"  # asked for, so that "nothing written" is a check that can fail
    code, out, err = run_cli(["analyze", str(tmp_path / "nowhere"), "--plot", str(plot)], capsys)
    assert_clean_failure(code, out, err, f"{tmp_path}/nowhere: no such file or folder", plot)


def test_missing_reference_stem(stems_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(stems_dir, reference)
    (reference / "drums.wav").unlink()
    plot = tmp_path / "plot.png"
    code, out, err = run_cli(["analyze", str(stems_dir), "--reference", str(reference), "--plot", str(plot)], capsys)
    assert_clean_failure(code, out, err, f"reference {reference}: has no stem 'drums' (it has: bass, vocals)", plot)


def test_input_is_never_modified_by_a_failed_run(stems_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (stems_dir / "broken.wav").write_text("garbage")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in stems_dir.iterdir()}
    plot = tmp_path / "plot.png"
    code, out, err = run_cli(["analyze", str(stems_dir), "--plot", str(plot)], capsys)
    assert_clean_failure(code, out, err, f"{stems_dir}/broken.wav: not a readable audio file (Format not recognised.)",
                         plot)  # the run did fail, and on the file planted for it
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in stems_dir.iterdir()} == before
