"""Held-out material from generators the training never used (issue 28): another MIDI source
(OpenMSX, tests/data/midi_other/), another SoundFont and drum kit, stems named ``vocals`` and
``other``, and MUSDB18 excerpts that a fresh clone may lack and the recipe then leaves out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("mido", reason="reading MIDI needs the [data] extra")

from faderwise.cli import main  # noqa: E402
from faderwise.training.midi import (  # noqa: E402
    GROUPS,
    SOUNDFONTS,
    MidiError,
    Note,
    Part,
    RenderOptions,
    Voice,
    drum_kits,
    drum_part,
    read_midi_file,
    render_stems,
)
from faderwise.training.synth import SynthConfigError, collect_songs, read_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MIDI_OTHER = REPO / "tests" / "data" / "midi_other"
RECIPE = REPO / "training" / "configs" / "held-out-other.yaml"
SMALL_FONT = SOUNDFONTS["timgm6mb"]
needs_fluidsynth = pytest.mark.skipif(
    not SMALL_FONT.is_file() or not Path("/usr/bin/fluidsynth").is_file(),
    reason="rendering needs Debian's fluidsynth and timgm6mb-soundfont (.ci/run installs them)")
UNKNOWN_GROUP = "stem_names: unknown group 'voice' (the groups are lead, keys, guitar, bass, strings, winds, drums)"


def listed_sources() -> dict[str, str]:
    """File name → sha256 of every row of SOURCES.md's table."""
    rows = re.findall(r"^\| `([^`]+\.mid)` \|.*\| `([0-9a-f]{64})` \|$", (MIDI_OTHER / "SOURCES.md").read_text(),
                      flags=re.MULTILINE)
    return dict(rows)


def test_every_midi_file_of_sources_md_is_there_unmodified_and_is_a_band() -> None:
    listed = listed_sources()
    assert sorted(listed) == sorted(p.name for p in MIDI_OTHER.glob("*.mid")) and len(listed) >= 6
    assert sum((MIDI_OTHER / name).stat().st_size for name in listed) < 500_000
    for name, digest in listed.items():
        assert hashlib.sha256((MIDI_OTHER / name).read_bytes()).hexdigest() == digest, name
        first_30_s = {part.group for part in read_midi_file(MIDI_OTHER / name)
                      if any(note.start_s < 30 for note in part.notes)}
        assert len(first_30_s) >= 3 and {"winds", "keys"} <= first_30_s, (name, first_30_s)


@pytest.mark.parametrize(("names", "problem"), [
    ({"voice": "vocals"}, UNKNOWN_GROUP),
    ({"lead": "vocals", "winds": "vocals"}, "stem_names: lead and winds would both be called 'vocals'; each stem "
                                            "needs a name of its own"),
    ({"keys": "bass"}, "stem_names: keys would be called 'bass', the name of a group that keeps it"),
    ({"lead": "Lead Vox"}, "stem_names: lead → 'Lead Vox' is not a stem name (lower-case letters, digits, - and _, "
                           "starting with a letter)"),
    ("vocals", "stem_names: expected group → name pairs, e.g. {lead: vocals, keys: other}, got 'vocals'"),
])
def test_stem_names_that_cannot_name_stems_are_refused_with_one_exact_line(names: object, problem: str) -> None:
    with pytest.raises(MidiError) as raised:
        RenderOptions(stem_names=names)  # type: ignore[arg-type]
    assert str(raised.value) == problem


def test_a_config_with_an_unknown_group_names_the_file_and_the_dataset(tmp_path: Path) -> None:
    config = tmp_path / "synth.yaml"
    config.write_text(json.dumps({"out": "data", "datasets": [{"kind": "midi", "root": "midi",
                                                                "stem_names": {"voice": "vocals"}}]}))
    with pytest.raises(SynthConfigError) as raised:
        read_config(config)
    assert str(raised.value) == f"{config}: datasets[1]: {UNKNOWN_GROUP}"
    assert RenderOptions(stem_names={"lead": "vocals", "keys": "other"}).stem_names == (("keys", "other"),
                                                                                       ("lead", "vocals"))


def unit_rms(audio: np.ndarray) -> np.ndarray:
    return audio / np.sqrt(np.mean(audio ** 2))


@needs_fluidsynth
def test_the_drum_kit_option_changes_the_drum_audio_and_a_missing_kit_is_refused() -> None:
    """The same 4 s of kick, snare, hi-hat and crash on each kit, without humanisation or room;
    each stem scaled to unit RMS. The standard kit (none asked for, or program 0) renders the
    same samples; TR-808 (25) and brush (40), the kits of the held-out recipe, differ from it by
    more than half the stem's own level (measured when written: 1.52 and 0.73)."""
    assert drum_kits(SMALL_FONT) == (0, 8, 16, 24, 25, 32, 40, 48)
    parts = [drum_part(4.0, 0.5, 4, np.random.default_rng(0)),
             Part("bass", (Voice(33, tuple(Note(i * 0.5, i * 0.5 + 0.4, 40, 90) for i in range(8))),))]

    def drums(kit: int | None) -> np.ndarray:
        options = RenderOptions(soundfont="timgm6mb", seconds=4.0, velocity_jitter=0.0, timing_jitter_s=0.0,
                                reverb_share=0.0, drum_kit=kit)
        return unit_rms(render_stems(parts, seed=1, source="kit test", options=options).stems["drums"])

    standard = drums(None)
    assert np.array_equal(drums(0), standard)
    for kit in (25, 40):
        difference = float(np.sqrt(np.mean((drums(kit) - standard) ** 2)))
        assert difference > 0.5, (kit, difference)
    with pytest.raises(MidiError) as raised:  # FluidSynth would quietly play the standard kit
        render_stems(parts, seed=1, source="kit test", options=RenderOptions(soundfont="timgm6mb", drum_kit=1))
    assert str(raised.value) == (f"SoundFont {SMALL_FONT}: no drum kit 1 (its kits: 0, 8, 16, 24, 25, 32, 40, 48); "
                                 "FluidSynth would play its standard kit instead")
    with pytest.raises(MidiError, match=r"^drum_kit 128 is not a General MIDI program \(0–127\) of the drum bank$"):
        RenderOptions(drum_kit=128)


@needs_fluidsynth
def test_a_small_held_out_build_has_vocals_and_other_and_leaves_out_absent_musdb(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One OpenMSX piece, 10 s, TR-808, winds → vocals and keys → other, all in ``test``, next to an
    optional MUSDB18 folder that is not there: one line says why it is left out."""
    (tmp_path / "midi").mkdir()
    (tmp_path / "midi" / "train.mid").write_bytes((MIDI_OTHER / "train_filled_with_cash.mid").read_bytes())
    material = "other MIDI source, TimGM6mb, TR-808 kit"
    config = tmp_path / "synth.yaml"
    config.write_text(json.dumps({
        "out": "data", "seed": 3, "window_s": 4, "pairs_per_song": 1, "val": 0.0, "test": 0.0, "targets": "all",
        "datasets": [{"kind": "midi", "root": "midi", "material": material, "split": "test", "seconds": 10.0,
                      "soundfont": "timgm6mb", "drum_kit": 25, "stem_names": {"winds": "vocals", "keys": "other"}},
                     {"kind": "musdb18", "root": "no-musdb", "material": "MUSDB18 excerpts", "split": "test",
                      "optional": True}]}))
    assert main(["synth", str(config)]) == 0
    absent = (f"{tmp_path / 'no-musdb'}: no such folder (MUSDB18: train/*.stem.mp4 and test/*.stem.mp4); "
              "the optional dataset 'MUSDB18 excerpts' is left out")
    assert capsys.readouterr().err.strip().splitlines() == [f"left out: {absent}"]
    records = [json.loads(line) for line in (tmp_path / "data" / "manifest.jsonl").read_text().splitlines()]
    assert {r["target"] for r in records} == set(records[0]["stems"]) == {"vocals", "other", "bass", "drums"}
    assert {r["material"] for r in records} == {material} and {r["split"] for r in records} == {"test"}
    failures = [json.loads(line) for line in (tmp_path / "data" / "failures.jsonl").read_text().splitlines()]
    assert failures == [{"song": f"musdb18:{tmp_path / 'no-musdb'}", "source": str(tmp_path / "no-musdb"),
                         "problem": absent}]
    # renaming happens after the balance is drawn: the vocals stem is the winds stem, sample for sample
    parts = read_midi_file(tmp_path / "midi" / "train.mid")
    plain = RenderOptions(soundfont="timgm6mb", seconds=10.0, drum_kit=25)
    named = dataclasses.replace(plain, stem_names=(("keys", "other"), ("winds", "vocals")))
    as_groups = render_stems(parts, seed=5, source="train", options=plain)
    as_named = render_stems(parts, seed=5, source="train", options=named)
    assert np.array_equal(as_groups.stems["winds"], as_named.stems["vocals"])
    assert np.array_equal(as_groups.stems["keys"], as_named.stems["other"])


def test_the_recipe_picks_past_the_training_pick_and_leaves_out_absent_musdb_with_its_reason(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The recipe as written: every material in ``test``, the music21 pieces past
    ``rendered.yaml``'s whole pick, and both MUSDB18 excerpts left out, each with its reason,
    where a fresh clone lacks ``../shared`` and the stempeg wheel."""
    pytest.importorskip("music21", reason="the music21 corpus comes with the [data] extra")
    config = read_config(RECIPE)
    training = yaml.safe_load((REPO / "training" / "configs" / "rendered.yaml").read_text())["datasets"][0]
    music21 = next(entry for entry in config.datasets if entry["kind"] == "music21")
    assert music21["skip"] == training["limit"] and music21["soundfont"] != training["soundfont"]
    assert all(entry.get("split") == "test" for entry in config.datasets)
    absent_root = tmp_path / "musdb18-sample"
    datasets = tuple({**entry, "root": str(absent_root)} if entry["kind"] == "musdb18" and entry["root"] != "stempeg"
                     else entry for entry in config.datasets)
    monkeypatch.setitem(sys.modules, "stempeg", None)  # import stempeg fails, as without the wheel
    reasons: list[str] = []
    songs = collect_songs(dataclasses.replace(config, datasets=datasets),
                          on_absent=lambda song, problem: reasons.append(problem))
    assert reasons == [
        f"{absent_root}: no such folder (MUSDB18: train/*.stem.mp4 and test/*.stem.mp4); the optional dataset "
        "'MUSDB18 excerpts' is left out",
        "stempeg: not installed, so the MUSDB18 excerpt it ships is not here (pip install stempeg); the optional "
        "dataset 'MUSDB18 excerpts' is left out"]
    assert {song.split for song in songs} == {"test"} and not any(song.material == "MUSDB18 excerpts" for song in songs)
    by_material: dict[str, list[str]] = {}
    for song in songs:
        by_material.setdefault(song.material, []).append(song.song_id)
    assert sorted(len(ids) for ids in by_material.values()) == [6, 10]
    trained = dataclasses.replace(config, datasets=({"kind": "music21", "root": "corpus", "limit": training["limit"]},))
    assert not {song.song_id for song in collect_songs(trained)} & {song.song_id for song in songs}
    assert set(GROUPS) >= {group for entry in config.datasets for group, _ in entry.get("stem_names", {}).items()}
