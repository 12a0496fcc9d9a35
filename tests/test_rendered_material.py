"""Multitrack material rendered from MIDI (issue 13, part 2): each instrument group to its own
stem with FluidSynth and a General MIDI SoundFont, humanised, balanced per song; corpus pieces
played as a band; bad files left out with one line while the rest of the synthesis goes on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

mido = pytest.importorskip("mido", reason="rendering MIDI needs the [data] extra")

from faderwise.cli import main  # noqa: E402
from faderwise.tools.analysis import analyze_stem_set  # noqa: E402
from faderwise.training.midi import (  # noqa: E402
    ROLE_LEVELS_LU,
    SOUNDFONTS,
    MidiError,
    RenderOptions,
    corpus_piece,
    read_midi_file,
    render_stems,
)

SMALL_FONT = SOUNDFONTS["timgm6mb"]
needs_fluidsynth = pytest.mark.skipif(
    not SMALL_FONT.is_file() or not Path("/usr/bin/fluidsynth").is_file(),
    reason="rendering needs Debian's fluidsynth and timgm6mb-soundfont (.ci/run installs them)")


def band_midi(path: Path, *, program_of_fx: int | None = None) -> Path:
    """Five tracks: a melody (flute), piano, steel guitar, finger bass, and drums on channel 10;
    120 BPM for four beats, then 60 BPM."""
    midi = mido.MidiFile(ticks_per_beat=480)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0),
                            mido.MetaMessage("set_tempo", tempo=1_000_000, time=4 * 480)])
    midi.tracks.append(tempo)
    for name, channel, program, pitches in (("Melody", 0, 73, (72, 74, 76, 77)), ("Piano", 1, 0, (60, 64, 67, 64)),
                                             ("Guitar", 2, 25, (55, 59, 62, 59)), ("Bass", 3, 33, (36, 38, 40, 41)),
                                             ("Drums", 9, 0, (36, 38, 36, 38))):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        if channel != 9:
            track.append(mido.Message("program_change", channel=channel, program=program, time=0))
        for pitch in pitches * 2:  # eight beats, one note per beat
            track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=90, time=0))
            track.append(mido.Message("note_off", channel=channel, note=pitch, velocity=0, time=480))
        midi.tracks.append(track)
    if program_of_fx is not None:
        midi.tracks.append(mido.MidiTrack([mido.Message("program_change", channel=4, program=program_of_fx, time=0),
                                           mido.Message("note_on", channel=4, note=60, velocity=90, time=0),
                                           mido.Message("note_off", channel=4, note=60, velocity=0, time=480)]))
    midi.save(path)
    return path


def test_a_general_midi_file_is_read_into_instrument_groups(tmp_path: Path) -> None:
    parts = {part.group: part for part in read_midi_file(band_midi(tmp_path / "band.mid"))}
    assert sorted(parts) == ["bass", "drums", "guitar", "keys", "lead"]  # "Melody" is the lead, whatever its program
    assert parts["drums"].drums and not parts["bass"].drums
    assert [voice.program for voice in parts["keys"].voices] == [0]
    starts = [round(n.start_s, 3) for n in parts["bass"].notes]
    assert starts == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0]  # 120 BPM for four beats, then 60 BPM
    assert parts["bass"].notes[-1].end_s == pytest.approx(6.0)


@pytest.mark.parametrize(("make", "problem"), [
    (lambda p: p.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01garbage"), "not a readable MIDI file"),
    (lambda p: mido.MidiFile(ticks_per_beat=480).save(p), "holds no notes"),
    (lambda p: band_midi(p, program_of_fx=127), "channel 5 plays program 127, a sound effect, not an instrument"),
])
def test_bad_midi_files_are_one_line_naming_the_file(tmp_path: Path, make, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.mid"
    make(path)
    with pytest.raises(MidiError) as raised:
        read_midi_file(path)
    assert str(raised.value).startswith(f"{path}: ") and problem in str(raised.value)
    assert "\n" not in str(raised.value)


@needs_fluidsynth
def test_each_group_renders_to_its_own_balanced_stem_the_same_every_time(tmp_path: Path) -> None:
    parts = read_midi_file(band_midi(tmp_path / "band.mid"))
    options = RenderOptions(soundfont="timgm6mb", seconds=6.0, reverb_share=0.5)
    first = render_stems(parts, seed=7, source="band", options=options)
    again = render_stems(parts, seed=7, source="band", options=options)
    other = render_stems(parts, seed=8, source="band", options=options)
    assert first.names == ["lead", "keys", "guitar", "bass", "drums"] and first.rate == 44_100
    assert first.duration_s == pytest.approx(6.0) and first.channels == 2
    for name in first.names:
        assert np.array_equal(first.stems[name], again.stems[name]), name  # deterministic from the seed
    assert not np.array_equal(first.stems["lead"], other.stems["lead"])  # another song, another balance and feel
    assert np.max(np.abs(first.mix())) <= 0.891  # the mix peaks at -1 dBFS at most
    analysis = analyze_stem_set(first, true_peaks=False)
    for name, measured in analysis.stems.items():
        mean, spread = ROLE_LEVELS_LU[name]
        assert mean - 4 * spread - 3 < measured.stem_to_mix_lu < mean + 4 * spread, (name, measured.stem_to_mix_lu)


def test_a_corpus_piece_is_played_as_a_band() -> None:
    pytest.importorskip("music21", reason="the music21 corpus comes with the [data] extra")
    from music21 import corpus

    chorale = corpus.getComposer("bach")[5]
    with_drums = next(seed for seed in range(20) if "drums" in {p.group for p in corpus_piece(chorale, seed=seed)})
    without = next(seed for seed in range(20) if "drums" not in {p.group for p in corpus_piece(chorale, seed=seed)})
    parts = {part.group: part for part in corpus_piece(chorale, seed=with_drums)}
    assert sorted(parts) == ["bass", "drums", "guitar", "keys", "lead"]
    mean_pitch = {name: np.mean([n.pitch for n in part.notes]) for name, part in parts.items() if name != "drums"}
    assert mean_pitch["bass"] < min(mean_pitch["keys"], mean_pitch["guitar"]) < mean_pitch["lead"]
    assert sorted(p.group for p in corpus_piece(chorale, seed=without)) == ["bass", "guitar", "keys", "lead"]
    programs = {tuple(v.program for v in p.voices) for p in corpus_piece(chorale, seed=with_drums) if p.group == "lead"}
    assert programs == {tuple(v.program for v in parts["lead"].voices)}  # the same seed, the same instruments


@needs_fluidsynth
def test_synthesis_leaves_bad_files_out_in_one_line_each_and_goes_on(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    songs = tmp_path / "midi"
    songs.mkdir()
    band_midi(songs / "good.mid")
    (songs / "corrupt.mid").write_bytes(b"not midi at all")
    mido.MidiFile(ticks_per_beat=480).save(songs / "empty.mid")
    band_midi(songs / "sfx.mid", program_of_fx=125)
    config = tmp_path / "synth.yaml"
    config.write_text(json.dumps({"out": "data", "seed": 2, "window_s": 4, "pairs_per_song": 1, "val": 0.0,
                                  "test": 0.0, "targets": "all",
                                  "datasets": [{"kind": "midi", "root": "midi", "seconds": 6.0,
                                                "soundfont": "timgm6mb"}]}))
    assert main(["synth", str(config)]) == 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("left out: ") for line in lines)
    assert any(f"{songs / 'corrupt.mid'}: not a readable MIDI file" in line for line in lines)
    assert any(f"{songs / 'empty.mid'}: holds no notes" in line for line in lines)
    assert any(f"{songs / 'sfx.mid'}: channel 5 plays program 125" in line for line in lines)
    records = [json.loads(line) for line in (tmp_path / "data" / "manifest.jsonl").read_text().splitlines()]
    assert {r["song"] for r in records} == {"midi/good"} and {r["material"] for r in records} == {"rendered"}
    assert len(records) == 5  # every stem of its one pair
    failures = [json.loads(line) for line in (tmp_path / "data" / "failures.jsonl").read_text().splitlines()]
    assert sorted(f["song"] for f in failures) == ["midi/corrupt", "midi/empty", "midi/sfx"]
    items = tmp_path / "data" / "items"
    assert sorted(p.name for p in items.iterdir()) == sorted(r["id"] for r in records)  # nothing half-written

    band_midi(songs / "good2.mid")  # two songs meet the same missing SoundFont: one line for both
    config.write_text(json.dumps({"out": "data2", "seed": 2, "window_s": 4, "pairs_per_song": 1, "val": 0.0,
                                  "test": 0.0, "datasets": [{"kind": "midi", "root": "midi", "soundfont":
                                                             str(tmp_path / "none.sf2")}]}))
    assert main(["synth", str(config)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert f"left out 2 songs: SoundFont {tmp_path / 'none.sf2'}: not found; name fluidr3, timgm6mb or an .sf2 file" \
        in err
