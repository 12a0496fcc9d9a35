"""Input a careless user or a hostile file brings: samples near the float limit, silence, a WAV cut
off mid-frame, a line break in a stem's name, a set too large for memory, two writers racing, and
a fuzzer over every audio reader. Each gets one clear line (exit 2) and no RuntimeWarning."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from langgraph.checkpoint.memory import InMemorySaver

import faderwise.tools.memory
from conftest import REPO, noise_stems, write_stems
from faderwise.agent.config import ConfigError, load_config
from faderwise.agent.llm import LLMSpec
from faderwise.agent.planner import classify
from faderwise.agent.script import collect
from faderwise.agent.session import AgentSession
from faderwise.agent.workspace import Workspace
from faderwise.cli import main
from faderwise.tools.audio_io import read_audio
from faderwise.tools.errors import FaderwiseError, ResourceLimitError
from faderwise.tools.outputs import command_inputs
from faderwise.tools.stem_files import load_stem_set

RATE = 44_100


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.removeprefix("faderwise: error: ").removesuffix("\n")


def test_samples_near_the_float_limit_are_refused_not_measured_as_silence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stems = noise_stems(seconds=1.0)
    stems["vocals"] = np.full((2, RATE), 3e38, np.float32) * np.sign(stems["vocals"])
    folder = write_stems(tmp_path / "a", stems, RATE)
    for argv in (["analyze", str(folder)], ["advise", str(folder)], ["advise", str(folder), "--json"]):
        assert main(argv) == 2
        assert error_line(capsys) == (f"{folder / 'vocals.wav'}: peaks at +769.5 dBFS (3e+38 × full scale), beyond "
                                      "the +24 dBFS faderwise measures: is it float audio with the wrong scale?")


def test_silence_and_hot_but_valid_stems_raise_no_runtime_warning(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """pytest turns every RuntimeWarning into an error here (pyproject's filterwarnings)."""
    rng = np.random.default_rng(3)
    loud = {"vocals": np.zeros((2, 3 * RATE), np.float32),
            "drums": (4.0 * rng.standard_normal((2, 3 * RATE))).clip(-15, 15).astype(np.float32),  # +23.5 dBFS peaks
            "bass": np.zeros((2, 3 * RATE), np.float32)}
    loud["bass"][:, RATE:2 * RATE] = 0.1  # silent, then a DC step, then silent
    a = write_stems(tmp_path / "a", loud, RATE)
    b = write_stems(tmp_path / "b", {name: audio * np.float32(0.5) for name, audio in loud.items()}, RATE)
    silent = write_stems(tmp_path / "silent", {name: np.zeros((2, RATE), np.float32) for name in loud}, RATE)
    (tmp_path / "advice.json").write_text(json.dumps({"advisor": "measured",
                                                      "moves": [{"stem": "drums", "delta_db": -3.0}]}))
    runs = [["analyze", str(a), "--reference", str(b), "--json", "--plot", str(tmp_path / "st.png")],
            ["advise", str(a), "--reference", str(b), "--json"], ["advise", str(a), "--json"],
            ["advise", str(a), "--advisor", "equal-loudness", "--json"],
            ["advise", str(silent), "--reference", str(a), "--json"], ["analyze", str(silent), "--json"],
            ["apply", str(a), "--advice", str(tmp_path / "advice.json"), "--out", str(tmp_path / "out"),
             "--peak-safe", "--plot", str(tmp_path / "levels.png"), "--reference", str(b)],
            ["bundle", str(a), "--reference", str(b), "--stem", "bass", "--out", str(tmp_path / "bundle")]]
    for argv in runs:
        assert main(argv) == 0, (argv, capsys.readouterr().err)
        capsys.readouterr()
    session = AgentSession(workspace=Workspace(output_dir=tmp_path / "chat"), llm=LLMSpec("offline"),
                           checkpointer=InMemorySaver(), thread_id="t")
    session.workspace.load_pair(silent, a)
    for text in ("overview", "measure everything", "plot levels", "plot loudness over time", "why?", "load " + str(a),
                 "overview", "how loud is the bass?", "plot loudness over time"):
        reply, _, _, error = collect(list(session.send(text)))
        assert error is None and reply, (text, error)
    analysis = json.loads(main(["analyze", str(silent), "--json"]) == 0 and capsys.readouterr().out)
    assert {name: stem["silent"] for name, stem in analysis["stems"].items()} == {
        "vocals": True, "drums": True, "bass": True}


def test_a_plot_that_cannot_be_written_is_refused_before_the_render(demo_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"advisor": "measured", "moves": [{"stem": "vocals", "delta_db": -4.0}]}))
    (tmp_path / "plots").mkdir()
    assert main(["apply", str(demo_dir / "version_a"), "--advice", str(advice), "--out", str(tmp_path / "out"),
                 "--plot", str(tmp_path / "plots"), "--force"]) == 2
    assert error_line(capsys) == f"{tmp_path / 'plots'}: is a folder; name a new file"
    assert not (tmp_path / "out").exists()  # nothing rendered


def test_a_wav_cut_off_mid_frame_is_called_truncated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_stems(tmp_path / "a", noise_stems(seconds=3.0), RATE, subtype="PCM_24")
    whole = (folder / "drums.wav").read_bytes()
    (folder / "drums.wav").write_bytes(whole[:len(whole) // 2 + 1])  # half the frames and one byte of the next
    assert main(["analyze", str(folder)]) == 2
    assert error_line(capsys) == (f"{folder / 'drums.wav'}: truncated: the header promises 3.00 s of audio but the "
                                  "file ends after 1.50 s (an interrupted copy or export?)")


def test_a_line_break_in_a_stem_name_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_stems(tmp_path / "a", noise_stems(seconds=1.0), RATE)
    (folder / "vocals.wav").rename(folder / "lead\nvocal.wav")
    assert main(["analyze", str(folder)]) == 2
    assert error_line(capsys) == (f"{folder}: the file name 'lead\\nvocal.wav' holds a line break or another control "
                                  "character, which would garble every table and message; rename the file")
    odd = tmp_path / "new\nline"
    assert main(["analyze", str(odd)]) == 2
    assert error_line(capsys) == f"{tmp_path}/new\\nline: no such file or folder"


def sparse_wav(path: Path, *, seconds: float, rate: int = RATE, channels: int = 2) -> Path:
    """A 16-bit WAV whose header declares ``seconds`` of silence, written sparse (no disk used)."""
    data = int(seconds * rate) * channels * 2
    header = (b"RIFF" + (36 + data).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
              + (1).to_bytes(2, "little") + channels.to_bytes(2, "little") + rate.to_bytes(4, "little")
              + (rate * channels * 2).to_bytes(4, "little") + (channels * 2).to_bytes(2, "little")
              + (16).to_bytes(2, "little") + b"data" + data.to_bytes(4, "little"))
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + data)
    return path


def test_a_set_too_large_to_decode_whole_is_refused_before_decoding(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding a whole set into memory (training, the evaluation) is refused from the headers;
    the commands read it in blocks instead (tests/test_streaming.py)."""
    folder = write_stems(tmp_path / "a", {**noise_stems(seconds=2.0), "keys": np.zeros((2, 2 * RATE), np.float32),
                                          "fx": np.zeros((2, 2 * RATE), np.float32)}, RATE)
    sparse_wav(folder / "room.wav", seconds=3600.0)  # six stems, one of them an hour long
    monkeypatch.setattr(faderwise.tools.memory, "available_bytes", lambda: 8_000_000_000)
    decoded = []
    monkeypatch.setattr("faderwise.tools.stem_files.BlockReader.read", lambda *a, **k: decoded.append(a))
    with pytest.raises(ResourceLimitError) as refused:
        load_stem_set(folder)
    assert str(refused.value) == (
        f"{folder}: measuring 6 stems of 1:00:00 at 44100 Hz, 2 ch, needs about 19.1 GB of memory, and 8.0 GB is "
        "free; room.wav is 1:00:00 long against 0:02 for the others, and every stem is padded to the longest: "
        "trim it, or use shorter or fewer stems, or close other programs")
    assert decoded == []  # refused from the headers alone


def test_two_concurrent_applies_to_one_folder_exactly_one_wins(demo_dir: Path, tmp_path: Path) -> None:
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"advisor": "measured", "moves": [{"stem": "vocals", "delta_db": -4.0}]}))
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "faderwise", "apply", str(demo_dir / "version_a"), "--advice", str(advice),
            "--out", str(out)]
    runs = [subprocess.Popen(argv, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]  # type: ignore[union-attr]
    assert sorted(code for code, _ in results) == [0, 2]
    loser = next(err for code, err in results if code == 2)
    assert loser in (f"faderwise: error: {out}: appeared while faderwise was writing it (another run?); nothing was "
                     "replaced\n",
                     f"faderwise: error: {out}: already exists; choose a new folder or pass --force to replace it\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["advice.json", "out"]  # no staging left
    assert sorted(p.name for p in (out / "stems").iterdir()) == sorted(p.name for p in (demo_dir / "version_a").iterdir())


def test_the_readers_survive_a_fuzzer(tmp_path: Path) -> None:
    """Seeded byte flips, truncations and length-field rewrites of WAV, FLAC, AIFF and OGG files:
    each read returns valid audio or raises faderwise's own error, never anything else."""
    rng = random.Random(1770)
    audio = noise_stems(seconds=0.6)["drums"]
    seeds = {}
    for suffix, subtype in ((".wav", "PCM_24"), (".wav", "FLOAT"), (".flac", "PCM_16"), (".aiff", "PCM_16"),
                            (".ogg", "VORBIS")):
        path = tmp_path / f"seed-{subtype}{suffix}"
        sf.write(path, audio.T, RATE, subtype=subtype)
        seeds[path] = path.read_bytes()
    outcomes = {"read": 0, "refused": 0}
    for case in range(400):
        source, original = rng.choice(list(seeds.items()))
        data = bytearray(original)
        mutation = case % 4
        if mutation == 0:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(min(len(data), 128))] = rng.randrange(256)  # the header
        elif mutation == 1:
            data = data[:rng.randrange(len(data))]
        elif mutation == 2:
            position = rng.randrange(min(len(data), 64) - 4)
            data[position:position + 4] = rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, len(data) * 2]).to_bytes(4, "little")
        else:
            for _ in range(rng.randint(1, 64)):
                data[rng.randrange(len(data))] = rng.randrange(256)  # anywhere
        fuzzed = tmp_path / f"fuzzed-{case}{source.suffix}"
        fuzzed.write_bytes(bytes(data))
        with command_inputs():
            try:
                samples, rate = read_audio(fuzzed)
            except FaderwiseError as exc:
                assert "\n" not in str(exc) and str(fuzzed) in str(exc)
                outcomes["refused"] += 1
            else:
                assert samples.dtype == np.float32 and samples.ndim == 2 and rate > 0
                assert np.isfinite(samples).all() and np.abs(samples).max(initial=0.0) <= 10 ** (24 / 20)
                outcomes["read"] += 1
        fuzzed.unlink()
    assert outcomes["read"] > 50 and outcomes["refused"] > 50, outcomes


def test_bad_key_bindings_are_refused_by_name(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    env = {"FADERWISE_CONFIG": str(config)}
    cases = {
        '[keys]\ncancel = "esc"\n': "cancel = 'esc': unknown key 'esc' in 'esc' (keys are named like escape, enter, "
                                   "f2, a, ctrl+o)",
        '[keys]\ncancle = "escape"\n': "unknown binding 'cancle' (bindings: cancel, copy_reply, toggle_log, quit)",
        '[keys]\ncopy_reply = "cntrl+o"\n': "copy_reply = 'cntrl+o': unknown modifier 'cntrl' in 'cntrl+o' "
                                            "(modifiers: alt, ctrl, hyper, meta, shift, super)",
        '[keys]\nquit = 3\n': "quit must be a key name in quotes, e.g. quit = \"f2\"",
    }
    for text, message in cases.items():
        config.write_text(text)
        with pytest.raises(ConfigError) as raised:
            load_config(env)
        assert str(raised.value) == f"{config}: [keys] {message}"
    config.write_text('[keys]\ncancel = "escape, ctrl+g"\ntoggle_log = "f2"\ncopy_reply = "question_mark"\n')
    assert dict(load_config(env).keys) == {"cancel": "escape, ctrl+g", "toggle_log": "f2",
                                           "copy_reply": "question_mark"}


@pytest.mark.parametrize(("text", "path"), [("load ../../..", "../../.."), ("load ..", ".."), ("load .", "."),
                                            ("load ~/mixes/take2.", "~/mixes/take2"),
                                            ("reference ../ref/.", "../ref/.")])
def test_the_planner_keeps_dots_that_are_part_of_a_path(text: str, path: str) -> None:
    intent = classify(text, ["vocals"], has_reference=False)
    assert intent.detail == path
