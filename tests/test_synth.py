"""Dataset synthesis: exact gains, explanations that state them, splits by song, determinism,
a killed run that resumes without duplicates, the Ray path, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from faderwise.advisor.explain import rounded_db
from faderwise.advisor.parse import parse_moves
from faderwise.cli import main
from faderwise.tools.audio_io import read_audio
from faderwise.tools.bundle import read_bundle
from faderwise.training.synth import SynthConfigError, read_config, synthesize

SONGS = 8  # procedural, 2 bars (5 s) each
PLAYING = 3  # drums, bass and keys: the vocals and the guitar come in after bar 2


def write_config(folder: Path, **overrides: object) -> Path:
    options = {"out": "out", "seed": 3, "datasets": [{"kind": "procedural", "songs": SONGS, "bars": 2}],
               "pairs_per_song": 2, "val": 0.25, "test": 0.25, "workers": 1, **overrides}
    path = folder / "synth.yaml"
    path.write_text(json.dumps(options))  # JSON is YAML
    return path


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synth")
    synthesize(read_config(write_config(folder)))
    return folder / "out"


def test_gains_are_exact_and_the_explanation_states_them(dataset: Path) -> None:
    records = manifest(dataset)
    # songs × pairs × target stems: stems silent in a 2-bar song are neither perturbed nor targets
    assert len(records) == SONGS * 2 * PLAYING
    assert {r["target"] for r in records} == {"drums", "bass", "keys"}
    assert all(set(r["gains_db"]) <= {"drums", "bass", "keys"} for r in records)
    for record in records:
        assert record["target_move_db"] == -record["gains_db"].get(record["target"], 0.0) + 0.0
        assert 1 <= record["difficulty"]["perturbed_stems"] <= 3
        assert all(1.0 <= abs(gain) <= 12.0 for gain in record["gains_db"].values())
        for key in ("explanation", "explanation_single_mix"):
            stated = {m.stem: m.delta_db for m in parse_moves(record[key], record["stems"])}
            assert stated == {record["target"]: rounded_db(record["target_move_db"]) + 0.0}, record[key]
    record = next(r for r in records if abs(r["target_move_db"]) > 3)
    bundle = read_bundle(dataset / record["bundle"], alm=True)
    assert bundle.gains_a_db == record["gains_db"]
    # target A is target B times the gain, sample for sample (16-bit FLAC: within its quantisation)
    gain = 10 ** (-record["target_move_db"] / 20)
    active = np.abs(bundle.target_b) > 0.05
    ratio = np.median(bundle.target_a[active] / bundle.target_b[active])
    assert 20 * np.log10(ratio) == pytest.approx(-record["target_move_db"], abs=0.01)
    assert np.max(np.abs(bundle.target_a - gain * bundle.target_b)) < 2e-4
    assert record["evidence"]["target_a_minus_b_db"] == pytest.approx(-record["target_move_db"], abs=0.05)
    mix_a, rate = read_audio(dataset / record["mix_a"])
    assert rate == 16_000 and mix_a.shape == bundle.target_a.shape
    assert np.max(np.abs(mix_a - (bundle.target_a + bundle.backing_a))) < 2e-4
    peaks = [np.max(np.abs(c)) for c in (*bundle.clips().values(), mix_a)]
    assert max(peaks) <= 0.98 + 1e-4  # the trim kept every clip under full scale


def test_splits_are_by_song(dataset: Path) -> None:
    records = manifest(dataset)
    split_of: dict[str, set[str]] = {}
    for record in records:
        split_of.setdefault(record["song"], set()).add(record["split"])
    assert all(len(splits) == 1 for splits in split_of.values())
    assert {next(iter(s)) for s in split_of.values()} == {"train", "val", "test"}


@pytest.mark.slow
def test_a_killed_run_resumes_without_duplicates(dataset: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, workers=2)  # another worker count: the same items
    child = textwrap.dedent(f"""
        from faderwise.training.synth import read_config, synthesize
        synthesize(read_config({str(config)!r}))
    """)
    process = subprocess.Popen([sys.executable, "-c", child], env={**os.environ, "PYTHONPATH": str(REPO)},
                               start_new_session=True)
    items = tmp_path / "out" / "items"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(items.glob("*/item.json"))) < 12:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its worker processes
    process.wait()
    done = len(list(items.glob("*/item.json")))
    assert 12 <= done < SONGS * 2 * PLAYING, "the kill should land mid-run"
    assert not (tmp_path / "out" / "manifest.jsonl").exists()
    synthesize(read_config(config))
    assert not list(items.glob(".*"))  # no staging folder left behind
    resumed = manifest(tmp_path / "out")
    assert len({r["id"] for r in resumed}) == len(resumed) == SONGS * 2 * PLAYING
    assert resumed == manifest(dataset)  # identical to an uninterrupted run with one worker


def test_the_ray_executor_maps_songs_with_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Handle:
        def __init__(self, result: object) -> None:
            self.result = result

    fake = types.SimpleNamespace(
        is_initialized=lambda: False,
        init=lambda **kwargs: calls.append("init"),
        remote=lambda function: types.SimpleNamespace(remote=lambda *args: Handle(function(*args))),
        get=lambda handle: calls.append("get") or handle.result,
    )
    monkeypatch.setitem(sys.modules, "ray", fake)
    config = read_config(write_config(tmp_path, executor="ray", datasets=[{"kind": "procedural", "songs": 2,
                                                                         "bars": 2}]))
    records = synthesize(config)
    assert calls == ["init", "get", "get"] and len(records) == 2 * 2 * PLAYING


def test_ray_missing_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["synth", str(write_config(tmp_path)), "--executor", "ray"]) == 2
    assert capsys.readouterr().err == ("faderwise: error: executor: ray needs the ray package: pip install "
                                       "'ray[default]' (and a cluster, or ray starts a local one)\n")


def test_cli_reports_items_and_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, datasets=[{"kind": "procedural", "songs": 2, "bars": 2}], pairs_per_song=1,
                          targets="perturbed")
    assert main(["synth", str(config), "--limit-songs", "1"]) == 0
    first = manifest(tmp_path / "out")
    assert all(r["target"] in r["gains_db"] for r in first)
    assert main(["synth", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()[-1]
    records = manifest(tmp_path / "out")
    assert out.startswith(f"{len(records)} items from 2 songs (")
    assert {r["id"] for r in first} <= {r["id"] for r in records}


@pytest.mark.parametrize(("text", "message"), [
    ("out: x\n", "needs 'out' (a folder) and 'datasets' (a non-empty list)"),
    ("out: x\ndatasets: [{kind: musdb18hq}]\n", "datasets[1]: musdb18hq needs 'root', a folder"),
    ("out: x\ndatasets: [{kind: procedural}]\n", "datasets[1]: procedural needs 'songs', a count ≥ 1"),
    ("out: x\ndatasets: [{kind: procedural, songs: 1}]\noffset_db: [6, 2]\n",
     "offset_db must be [low, high] with 0 < low <= high, got [6, 2]"),
    ("out: x\ndatasets: [{kind: procedural, songs: 1}]\nshuffle: true\n", "unknown key shuffle"),
])
def test_bad_configs(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(SynthConfigError) as error:
        read_config(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_procedural_songs_each_have_their_own_balance() -> None:
    from faderwise.tools.analysis import measure
    from faderwise.training.synth import PROCEDURAL_BALANCE_DB, ProceduralSong

    levels = []
    for seed in (0, 1):
        song = ProceduralSong(song_id=f"p/{seed}", name=str(seed), path=Path("."), seed=seed, bars=4).load()
        levels.append({n: measure(a, song.rate).integrated_lufs for n, a in song.stems.items() if n != "guitar"})
    differences = [levels[0][n] - levels[1][n] for n in levels[0]]
    assert max(abs(d) for d in differences) > 1.0  # not one fixed balance a model could learn by heart
    assert all(abs(d) <= 2 * PROCEDURAL_BALANCE_DB + 0.5 for d in differences)
