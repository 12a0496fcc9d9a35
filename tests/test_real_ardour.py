"""faderwise against Debian's real Ardour 7 (``ardour7-lua``, ``ardour7-export``; the harness is
:mod:`real_ardour`): a session Ardour made — mono and stereo tracks, a bus, a VCA, an empty MIDI
track, gain automation — with the stems Ardour itself bounced (after the fader, VCA and panner: a mono track is a
stereo file at −3 dB a side), advised against a reference of the *mono* source files, exported,
loaded back and rendered by Ardour, and pushed to a running Ardour at its default OSC settings.

Sources are sines (one per stem, incommensurate frequencies) so that the mix's peak is known; the
reference is louder by 2 dB overall (the master's level, not balance) and asks the guitar up 4 dB
and the vocal down 3 dB. Skips when Ardour 7 is not installed (CI installs it). About 40 s.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import real_ardour as ra
import soundfile as sf

from faderwise.cli import main
from faderwise.tools.daw.mapping import map_stems
from faderwise.tools.daw.project import read_project
from faderwise.tools.loudness import integrated_loudness
from faderwise.tools.outputs import command_inputs

RATE = 48_000
N = 3 * RATE
PAN_LAW_GAIN = 10 ** (-3 / 20)
# name, frequency (Hz) or a stereo pair, amplitude, track channels, fader dB, output
TRACKS = [("Vox", 440.0, 0.25, 1, -2.0, None), ("Gtr", 660.0, 1.0, 1, 0.0, None),
          ("Kick", 110.0, 0.3, 1, 0.0, "Drums"), ("Snare", 1700.0, 0.2, 1, -1.0, "Drums"),
          ("Bass", (82.0, 123.0), 0.15, 2, 1.0, None)]
BUS_DB, VCA_DB = -3.0, -6.0
TRUE_MOVES = {"Vox": -3.0, "Gtr": 4.0, "Kick": 0.0, "Snare": 0.0, "Bass": 0.0}
SHARED_DB = 2.0
"""The reference is this much louder in every stem: the master's level, which the advice gives the master."""
MOVE_TOLERANCE_DB = 0.1
FADER_TOLERANCE_DB = 0.01


def _source(frequency: float | tuple[float, float], amplitude: float) -> np.ndarray:
    """``(samples,)`` mono or ``(samples, 2)`` stereo sine(s), float32."""
    t = np.arange(N) / RATE
    if isinstance(frequency, tuple):
        return np.stack([amplitude * np.sin(2 * np.pi * f * t) for f in frequency], axis=1).astype(np.float32)
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _through(name: str) -> float:
    """dB between the source and the mix: the fader, the VCA on Gtr, the bus for the drums."""
    fader = next(track[4] for track in TRACKS if track[0] == name)
    return fader + (VCA_DB if name == "Gtr" else 0.0) + (BUS_DB if name in ("Kick", "Snare") else 0.0)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Ardour session, its stems bounced by Ardour into ``stems/``, the MIDI track mapped out."""
    ra.require_ardour()
    folder = tmp_path_factory.mktemp("ardour_song")
    for name, frequency, amplitude, *_ in TRACKS:
        sf.write(folder / f"{name.lower()}.wav", _source(frequency, amplitude), RATE, subtype="FLOAT")
    path = ra.make_session(folder, "song", [(name, folder / f"{name.lower()}.wav", channels, fader, output)
                                            for name, _, _, channels, fader, output in TRACKS],
                           buses=[("Drums", BUS_DB)], vca=("Strings", VCA_DB, ["Gtr"]), midi_track="Synth",
                           automation=("Kick", [(0.0, 0.0), (2.0, 0.0)]))  # in Play, flat at the fader's 0 dB
    ra.bounce_stems(path, path.parent / "stems", [name for name, *_ in TRACKS])
    path.with_name("song.stems.yaml").write_text("Synth: null  # an empty MIDI track: no audio\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(session: Path) -> Path:
    """The mono source files (the bass stereo), each at its level in A plus the shared 2 dB plus its true move."""
    folder = session.parent.parent / "reference"
    folder.mkdir()
    for name, frequency, amplitude, *_ in TRACKS:
        gain = 10 ** ((_through(name) + SHARED_DB + TRUE_MOVES[name]) / 20)
        sf.write(folder / f"{name}.wav", _source(frequency, amplitude) * gain, RATE, subtype="FLOAT")
    return folder


def _advise(session: Path, reference: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    assert main(["advise", str(session), "--reference", str(reference), "--json", "--workers", "1"]) == 0
    printed = capsys.readouterr()
    return json.loads(printed.out), printed.err


def test_faderwise_reads_what_ardour_reports(session: Path) -> None:
    faders = ra.read_faders(session)
    with command_inputs():
        project = read_project(session)
    assert [track.name for track in project.tracks] == ["Vox", "Gtr", "Kick", "Snare", "Bass", "Drums", "Synth"]
    for track in project.tracks:  # Ardour reports a fader times its VCAs
        assert track.gain_db + track.vca_db == pytest.approx(faders[track.name]["gain_db"], abs=FADER_TOLERANCE_DB)
    gtr = project.named("Gtr")[0]
    assert (gtr.vcas, gtr.vca_db) == (("Strings",), pytest.approx(VCA_DB, abs=1e-5))
    assert project.named("Kick")[0].parent == project.named("Drums")[0].number
    assert project.pan_law_db == -3.0
    with command_inputs():
        mapping = map_stems(project)
    assert mapping.lines()[:2] == ["Vox ← stems/Vox.wav (fader -2.0 dB)",
                                   "Gtr ← stems/Gtr.wav (fader +0.0 dB; VCA: Strings at -6.0 dB)"]
    assert "Kick ← stems/Kick.wav (fader +0.0 dB; through Drums at -3.0 dB)" in mapping.lines()
    assert "Synth: left out (the map file says null)" in mapping.notes
    assert [track.name for track in project.tracks if track.automated] == ["Kick"]
    assert ("Kick: its volume automation plays back, so its fader's value is not what you hear at every moment"
            in mapping.notes)


def test_the_stems_ardour_bounced_sum_to_ardours_own_render(session: Path, tmp_path: Path) -> None:
    """What faderwise hears (Ardour's stems, each through its bus) is the mix Ardour renders."""
    from faderwise.tools.stem_files import open_stem_set

    with command_inputs():
        stems = open_stem_set(session).load()
    rendered, rate = sf.read(ra.render(session, tmp_path / "mix.wav"), dtype="float32", always_2d=True)
    assert rate == RATE and stems.channels == 2
    inside = slice(ra.REGION_FADE_SAMPLES, N - ra.REGION_FADE_SAMPLES)  # Ardour's region fades
    assert np.max(np.abs(stems.mix()[:, inside] - rendered.T[:, inside])) < 1e-4


def test_a_mono_reference_against_ardours_stereo_bounce(session: Path, reference: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Ardour's −3 dB pan law and the mono reference compare as equal: the moves are the true ones
    within 0.1 dB, the 2 dB every stem shares goes to the master, and every sentence agrees with its numbers."""
    payload, _ = _advise(session, reference, capsys)
    moves = {move["stem"]: move["delta_db"] for move in payload["moves"]}
    assert moves == {name: pytest.approx(move, abs=MOVE_TOLERANCE_DB) for name, move in TRUE_MOVES.items() if move}
    assert payload["global_offset_db"] == pytest.approx(SHARED_DB, abs=MOVE_TOLERANCE_DB)
    said = re.findall(r"(\d+\.\d) dB (louder|quieter) than in the reference \((-?\d+\.\d) against (-?\d+\.\d) LUFS\)",
                      payload["text"])
    assert len(said) == 2
    for amount, direction, level_a, level_b in said:
        difference = float(level_a) - float(level_b)
        assert (difference > 0) == (direction == "louder")
        assert float(amount) == pytest.approx(abs(difference), abs=0.051)


def test_export_loads_in_ardour_with_the_printed_faders_and_renders_the_advised_mix(
        session: Path, reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The advice would clip: ``export --master`` moves the master by the trim it names; Ardour loads
    the export with exactly the printed faders and renders the mix changed by the advice, unclipped."""
    payload, _ = _advise(session, reference, capsys)
    trim = payload["evidence"]["headroom"]["master_trim_db"]
    assert trim < 0  # the guitar's +4 dB pushes the mix over -1 dBTP
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps(payload), encoding="utf-8")
    plain = session.with_name("song-plain.ardour")
    assert main(["export", str(advice), "--project", str(session), "--out", str(plain)]) == 0
    assert "(export --master does it)" in capsys.readouterr().err.replace("\n", " ")
    exported = session.with_name("song-faderwise.ardour")
    assert main(["export", str(advice), "--project", str(session), "--out", str(exported), "--master"]) == 0
    printed = capsys.readouterr().out.splitlines()
    changes = {m.group(1): float(m.group(2)) for line in printed
               if (m := re.match(r"  (\w+)(?: \(stem \w+\))?: [-+]\d+\.\d dB → ([-+]\d+\.\d) dB", line))}
    assert set(changes) == {"Vox", "Gtr", "Master"}
    faders = ra.read_faders(exported)
    with command_inputs():
        project = read_project(exported)
    for name, new_db in changes.items():
        vca = project.named(name)[0].vca_db if name != "Master" else 0.0
        assert faders[name]["gain_db"] == pytest.approx(new_db + vca, abs=0.05), name  # printed to 0.1 dB
        track = project.master if name == "Master" else project.named(name)[0]
        assert faders[name]["gain_db"] == pytest.approx(track.gain_db + vca, abs=FADER_TOLERANCE_DB), name

    before = sf.read(ra.render(session, tmp_path / "before.wav"), dtype="float64", always_2d=True)[0]
    after = sf.read(ra.render(exported, tmp_path / "after.wav"), dtype="float64", always_2d=True)[0]
    unmastered = sf.read(ra.render(plain, tmp_path / "plain.wav"), dtype="float64", always_2d=True)[0]
    assert np.max(np.abs(unmastered)) > 10 ** (-1 / 20)  # without the master the mix passes the ceiling
    assert np.max(np.abs(after)) < 10 ** (-0.9 / 20)  # with it, it stays under (sample peak ≤ true peak)
    # the mix changes by what the advice says: the moved stems, then the master
    from faderwise.tools.stem_files import open_stem_set

    with command_inputs():
        stems = open_stem_set(session).load()
    moves = {move["stem"]: move["delta_db"] for move in payload["moves"]}
    master_move = project.master.gain_db  # type: ignore[union-attr]  # from 0 dB
    expected = sum(audio.astype(np.float64) * 10 ** ((moves.get(name, 0.0) + master_move) / 20)
                   for name, audio in stems.stems.items())
    inside = slice(ra.REGION_FADE_SAMPLES, N - ra.REGION_FADE_SAMPLES)
    assert np.max(np.abs(after.T[:, inside] - expected[:, inside])) < 1e-4
    change = integrated_loudness(after.T.astype(np.float32), RATE) - integrated_loudness(before.T.astype(np.float32),
                                                                                          RATE)
    wanted = integrated_loudness(expected.astype(np.float32), RATE) - integrated_loudness(stems.mix(), RATE)
    assert change == pytest.approx(wanted, abs=0.1)


def test_push_and_undo_move_a_running_ardour_at_its_default_osc_settings(
        session: Path, reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ardour's OSC as installed: replies to port 8000 ("Manual" port mode). faderwise listens there
    by default: dry run, apply, the faders read back, undo; then the same in "Auto" port mode."""
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    payload, _ = _advise(session, reference, capsys)
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps(payload), encoding="utf-8")
    moves = {move["stem"]: move["delta_db"] for move in payload["moves"]}
    from faderwise.tools.daw.osc import OscDaw

    for mode, settings in (("manual", None), ("auto", {"address-only": "0"})):
        live = tmp_path / mode / "song.ardour"
        shutil.copytree(session.parent, live.parent)
        with ra.running_ardour(live, osc=settings) as port:
            with OscDaw("ardour", port=port, timeout=5.0) as daw:
                before = {track.name: track.gain_db for track in daw.faders().tracks}
            assert before["Gtr"] == pytest.approx(VCA_DB, abs=1e-4)  # Ardour reports fader × VCA
            code = main(["push", str(advice), "--osc", "ardour", "--port", str(port), "--timeout", "5"])
            printed = capsys.readouterr()
            assert code == 0, printed.err
            assert printed.out.splitlines()[0].startswith(f"dry run on Ardour at 127.0.0.1:{port}: ")
            assert "with these moves the mix peaks at" in printed.err.replace("\n", " ")  # no master over OSC: said
            assert main(["push", str(advice), "--osc", "ardour", "--port", str(port), "--timeout", "5", "--apply"]) == 0
            assert capsys.readouterr().out.splitlines()[-1].startswith("moved 2 faders; ")
            with OscDaw("ardour", port=port, timeout=5.0) as daw:
                pushed = {track.name: track.gain_db for track in daw.faders().tracks}
            assert pushed == pytest.approx({name: db + moves.get(name, 0.0) for name, db in before.items()}, abs=0.01)
            assert main(["push", "--undo", "--osc", "ardour", "--port", str(port), "--timeout", "5"]) == 0
            assert capsys.readouterr().out.startswith("put back ")
            with OscDaw("ardour", port=port, timeout=5.0) as daw:
                undone = {track.name: track.gain_db for track in daw.faders().tracks}
            assert undone == pytest.approx(before, abs=0.01)
