"""Dataset readers on small replicas built in code: MUSDB18-HQ, MUSDB18 (.stem.mp4), folders of
stem folders, MixParams rows and consensus references; split assignment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import noise_stems, write_stems
from faderwise.evals.gain_error import distance_to_range
from faderwise.training.datasets import (
    DatasetError,
    assign_splits,
    consensus_references,
    musdb_hq_songs,
    musdb_songs,
    read_mixparams,
    song_split,
    stem_folder_songs,
)

RATE = 8_000


def test_musdb_hq_layout(tmp_path: Path) -> None:
    for subset, song in (("train", "A Song"), ("train", "B Song"), ("test", "C Song")):
        stems = noise_stems(seconds=1.0, rate=RATE)
        write_stems(tmp_path / subset / song, {**stems, "mixture": sum(stems.values())}, RATE)
    (tmp_path / "train" / "empty").mkdir()
    songs = musdb_hq_songs(tmp_path)
    assert [(s.song_id, s.split) for s in songs] == [("musdb18hq/A Song", "train"), ("musdb18hq/B Song", "train"),
                                                     ("musdb18hq/C Song", "test")]
    loaded = songs[0].load()
    assert loaded.names == ["bass", "drums", "vocals"] and loaded.mixture is not None  # mixture is not a stem


def test_musdb_stem_mp4_layout(tmp_path: Path, musdb_sample: Path) -> None:
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / musdb_sample.name).symlink_to(musdb_sample)
    (songs,) = [musdb_songs(tmp_path)]
    assert [(s.name, s.split) for s in songs] == [("Music Delta - 80s Rock", "test")]
    assert songs[0].load().names == ["drums", "bass", "other", "vocals"]


def test_stem_folders(tmp_path: Path) -> None:
    write_stems(tmp_path / "song-1", noise_stems(seconds=1.0, rate=RATE), RATE)
    write_stems(tmp_path / "song-2", noise_stems(1, seconds=1.0, rate=RATE), RATE, suffix=".flac", subtype="PCM_24")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not audio")
    assert [s.name for s in stem_folder_songs(tmp_path)] == ["song-1", "song-2"]


@pytest.mark.parametrize(("reader", "message"), [
    (musdb_hq_songs, "no song folders under train/ or test/ (MUSDB18-HQ layout)"),
    (musdb_songs, "no .stem.mp4 files (MUSDB18 layout)"),
    (stem_folder_songs, "no sub-folders with audio files in them"),
])
def test_empty_datasets_say_what_was_expected(reader, message: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError, match=f"^{tmp_path}: {message.replace('(', '[(]').replace(')', '[)]')}$"):
        reader(tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        reader(tmp_path / "missing")


def test_song_split_is_stable_and_proportional() -> None:
    names = [f"song {i}" for i in range(4000)]
    splits = [song_split(name, val=0.1, test=0.2) for name in names]
    assert splits == [song_split(name, val=0.1, test=0.2) for name in reversed(names)][::-1]
    assert splits.count("test") / 4000 == pytest.approx(0.2, abs=0.02)
    assert splits.count("val") / 4000 == pytest.approx(0.1, abs=0.02)
    with pytest.raises(DatasetError, match="each must be ≥ 0 and together < 1"):
        song_split("x", val=0.5, test=0.5)


def test_dataset_test_songs_stay_test(tmp_path: Path) -> None:
    from faderwise.training.datasets import Song

    songs = [Song(f"d/{i}", f"song {i}", tmp_path, split="train") for i in range(200)]
    songs.append(Song("d/t", "held out", tmp_path, split="test"))
    placed = assign_splits(songs, val=0.1, test=0.3)
    assert placed[-1].split == "test"
    assert {s.split for s in placed[:-1]} == {"train", "val"}  # a dataset train song never becomes test


def mixparams_rows() -> list[dict[str, object]]:
    """Three engineers' mixes of one song, one mix of another; odd gain keys included."""
    rows = []
    levels = {  # mix → track → LUFS
        "mix_1": {"vocals": -18.0, "drums": -20.0, "bass": -22.0},
        "mix_2": {"vocals": -16.0, "drums": -21.0, "bass": -22.0},
        "mix_3": {"vocals": -19.0, "drums": -19.0, "bass": -23.0},
    }
    for mix, tracks in levels.items():
        for track, lufs in tracks.items():
            parameters = {"mix_1": {"Gain": -3.0}, "mix_2": {"fader": {"value": 1.5, "unit": "dB"}},
                          "mix_3": {"eq": {"low": 2}}}[mix]
            rows.append({"mix_name": mix, "song_name": "Song A", "artist_name": "x", "track_name": track,
                         "track_instrument_type": track, "track_audio_lufs": lufs,
                         "parameters": json.dumps(parameters)})
    rows.append({"mix_name": "solo", "song_name": "Song B", "track_name": "vocals", "track_audio_lufs": -20.0,
                 "parameters": "{}"})
    rows.append({"mix_name": "mix_1", "song_name": "Song A", "track_name": "fx", "track_audio_lufs": None,
                 "parameters": "not json"})
    return rows


def test_mixparams_reader_and_consensus(tmp_path: Path) -> None:
    path = tmp_path / "mixparams.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in mixparams_rows()))
    data = read_mixparams(path)
    assert len(data.tracks) == 10
    gains = {(t.mix, t.track): t.gain_db for t in data.tracks}
    assert gains[("mix_1", "vocals")] == -3.0 and gains[("mix_2", "bass")] == 1.5 and gains[("mix_3", "bass")] is None
    assert "mixparams.jsonl row 11 (mix_1/fx): skipped, track_audio_lufs None is not a level" in data.problems
    assert "mixparams.jsonl row 7 (mix_3/vocals): no gain among the parameters (keys: eq)" in data.problems

    references = consensus_references(data)
    assert list(references) == ["Song A"]  # Song B has one mix: no consensus
    vocals = references["Song A"].stems["vocals"]
    expected = []
    for tracks in ({"vocals": -18.0, "drums": -20.0, "bass": -22.0}, {"vocals": -16.0, "drums": -21.0, "bass": -22.0},
                   {"vocals": -19.0, "drums": -19.0, "bass": -23.0}):
        total = 10 * np.log10(sum(10 ** (v / 10) for v in tracks.values()))
        expected.append(tracks["vocals"] - total)
    assert vocals.median_lu == pytest.approx(float(np.median(expected)), abs=1e-9)
    assert (vocals.low_lu, vocals.high_lu, vocals.mixes) == (pytest.approx(min(expected)),
                                                             pytest.approx(max(expected)), 3)
    assert distance_to_range(vocals.median_lu, vocals.low_lu, vocals.high_lu) == 0.0
    assert distance_to_range(vocals.high_lu + 1.5, vocals.low_lu, vocals.high_lu) == pytest.approx(1.5)


def test_mixparams_csv_and_missing_columns(tmp_path: Path) -> None:
    import csv

    path = tmp_path / "mixparams.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["mix_name", "song_name", "track_name", "track_audio_lufs",
                                                    "parameters"])
        writer.writeheader()
        writer.writerow({"mix_name": "m", "song_name": "s", "track_name": "t", "track_audio_lufs": "-20.5",
                         "parameters": '{"gain_db": "loud"}'})
    data = read_mixparams(path)
    assert data.tracks[0].lufs == -20.5 and data.tracks[0].gain_db is None
    assert data.problems == ("mixparams.csv row 2 (m/t): gain 'gain_db' is not a number ('loud')",)
    path.write_text("mix_name,song_name\nm,s\n")
    with pytest.raises(DatasetError, match="missing column"):
        read_mixparams(path)
