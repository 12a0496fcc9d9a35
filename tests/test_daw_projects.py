"""REAPER and Ardour projects: read, map tracks to bounced stems, advise, export, read back.

The round trip must give exactly the advised fader changes and nothing else: every byte of the
new project outside the moved fader values is the input's, and the input is never written.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import pytest
from daw_projects import (
    ARDOUR_ROUTES,
    REAPER_TRACKS,
    ardour_session_text,
    reaper_project_text,
    write_project_with_stems,
)

from faderwise.cli import main
from faderwise.tools.daw.export import plan_fader_moves, project_text_with, write_project
from faderwise.tools.daw.mapping import map_stems
from faderwise.tools.daw.model import BUS, FOLDER, TRACK, Project
from faderwise.tools.daw.project import read_project
from faderwise.tools.errors import ProjectError
from faderwise.tools.outputs import command_inputs

EXACT_DB = 1e-9
"""How close a moved fader read back must be to the advised move (dB): the gain is written with
14 decimals (REAPER) or as a double that reads back exactly (Ardour)."""

FORMATS = {
    "reaper": (".RPP", lambda **kw: reaper_project_text(**kw)),
    "reaper-crlf": (".RPP", lambda **kw: reaper_project_text(**kw).replace("\n", "\r\n")),
    "ardour": (".ardour", lambda **kw: ardour_session_text(**kw)),
}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def outside_faders(project: Project) -> list[str]:
    """The project's text cut at every fader value: what must not change."""
    spans = sorted(track.span for track in (*project.tracks, *([project.master] if project.master else [])))
    pieces, position = [], 0
    for start, end in spans:
        pieces.append(project.text[position:start])
        position = end
    return [*pieces, project.text[position:]]


@pytest.fixture(params=sorted(FORMATS))
def daw_format(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_project(folder: Path, daw_format: str, demo_dir: Path, **options: object) -> Path:
    suffix, text = FORMATS[daw_format]
    return write_project_with_stems(folder, text(**options), suffix, demo_dir / "version_a")


def test_reads_tracks_folders_buses_mute_solo(tmp_path: Path, demo_dir: Path, daw_format: str) -> None:
    project = read_project(make_project(tmp_path, daw_format, demo_dir))
    assert [track.name for track in project.tracks] == [name for name, *_ in REAPER_TRACKS]
    assert [route[0] for route in ARDOUR_ROUTES] == [name for name, *_ in REAPER_TRACKS]
    group = FOLDER if project.daw == "reaper" else BUS
    assert {track.name: track.kind for track in project.tracks if track.kind != TRACK} == {"Drums": group,
                                                                                            "Guitars": group}
    assert {track.name: track.parent for track in project.tracks if track.parent} == {  # folders by number
        "Kick": 1, "Snare": 1, "Overheads": 1, "Guitar": 7, "Gtr DI": 7}
    expected_db = {"Drums": -3.0, "Kick": 0.0, "Snare": -1.0, "Overheads": -6.0, "Bass": 1.0, "Keys": -9.0,
                   "Guitars": 0.0, "Guitar": -2.0, "Gtr DI": 0.0, "Vocals": 3.0}
    for track in project.tracks:
        assert track.gain_db == pytest.approx(expected_db[track.name], abs=1e-6), track.name
    assert [t.name for t in project.tracks if t.mute] == ["Gtr DI"]
    assert [t.name for t in project.tracks if t.solo] == ["Vocals"]
    assert project.master is not None and project.master.gain_db == pytest.approx(-1.0, abs=1e-6)
    assert [t.number for t in project.tracks] == list(range(1, 11))


def test_maps_tracks_to_bounced_stems(tmp_path: Path, demo_dir: Path, daw_format: str) -> None:
    mapping = map_stems(read_project(make_project(tmp_path, daw_format, demo_dir)))
    assert dict(mapping.tracks) == {"Drums": 1, "Bass": 5, "Keys": 6, "Guitar": 8, "Vocals": 10}
    daw = "REAPER" if daw_format.startswith("reaper") else "Ardour"
    assert mapping.lines() == [
        "Drums ← stems/Drums.wav (fader -3.0 dB)", "Bass ← stems/Bass.wav (fader +1.0 dB)",
        "Keys ← stems/Keys.wav (fader -9.0 dB)", "Guitar ← stems/Guitar.wav (fader -2.0 dB)",
        "Vocals ← stems/Vocals.wav (fader +3.0 dB)",
        f"Gtr DI: muted in {daw}, no stem: left out of the mix",
        "solo on Vocals is ignored: faderwise measures the whole mix, as it plays with no solo"]


def test_round_trip_read_advise_export_read_back(tmp_path: Path, demo_dir: Path, daw_format: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    project_path = make_project(tmp_path / "song", daw_format, demo_dir)
    before_bytes, before_mtime = project_path.read_bytes(), project_path.stat().st_mtime_ns
    code, advice_json, err = run(["advise", str(project_path), "--reference", str(demo_dir / "version_b"), "--json",
                                  "--workers", "1"], capsys)
    assert code == 0, err
    assert "Vocals ← stems/Vocals.wav (fader +3.0 dB)" in err
    advice = json.loads(advice_json)
    # The demo's A is B with the vocals 4 dB up and the drums 3 dB down: the advice undoes exactly that.
    moves = {move["stem"]: move["delta_db"] for move in advice["moves"]}
    assert moves == {"Vocals": pytest.approx(-4.0, abs=0.05), "Drums": pytest.approx(3.0, abs=0.05)}
    (tmp_path / "advice.json").write_text(advice_json)
    out = tmp_path / "song" / f"new{project_path.suffix}"
    code, printed, err = run(["export", str(tmp_path / "advice.json"), "--project", str(project_path),
                              "--out", str(out)], capsys)
    assert code == 0, err
    assert printed.splitlines()[0] == ("fader moves are relative: each fader moves by the advised dB from where it is "
                                       f"now in {project_path}")
    assert printed.splitlines()[-1] == f"wrote {out}"
    old, new = read_project(project_path), read_project(out)
    assert [t.name for t in new.tracks] == [t.name for t in old.tracks]
    for before, after in zip(old.tracks, new.tracks):
        expected = moves.get(before.name, 0.0)
        assert after.gain_db - before.gain_db == pytest.approx(expected, abs=EXACT_DB), before.name
        if before.name not in moves:
            assert after.gain == before.gain, before.name
        assert (after.mute, after.solo, after.parent, after.kind) == (before.mute, before.solo, before.parent,
                                                                      before.kind)
    assert new.master is not None and old.master is not None and new.master.gain == old.master.gain
    assert outside_faders(new) == outside_faders(old)  # byte for byte outside the moved values
    assert out.read_bytes() == project_text_with(plan_fader_moves(moves, project=old)).encode()
    assert project_path.read_bytes() == before_bytes and project_path.stat().st_mtime_ns == before_mtime
    changed = [t.name for t, u in zip(old.tracks, new.tracks) if old.text[slice(*t.span)] != new.text[slice(*u.span)]]
    assert changed == ["Drums", "Vocals"]


def test_export_limits_to_the_daws_range_and_says_so(tmp_path: Path, demo_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for daw_format, top in (("reaper", 12.0), ("ardour", 6.0)):
        project_path = make_project(tmp_path / daw_format, daw_format, demo_dir)
        advice = tmp_path / f"{daw_format}.json"
        advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured", "text": "",
                                      "moves": [{"stem": "vocals", "delta_db": 10.0}]}))
        out = project_path.with_name(f"loud{project_path.suffix}")
        code, printed, err = run(["export", str(advice), "--project", str(project_path), "--out", str(out)], capsys)
        assert code == 0
        name = "REAPER" if daw_format == "reaper" else "Ardour"
        assert f"  Vocals (stem vocals): +3.0 dB → {top:+.1f} dB (move +10.0 dB) (limited)" in printed.splitlines()
        assert err.replace("\n", " ").strip() == (
            f"warning: Vocals: +3.0 dB +10.0 dB would be +13.0 dB, past {name}'s {top:+.0f} dB fader maximum: set "
            f"to {top:+.1f} dB, {13.0 - top:.1f} dB short")
        assert read_project(out).named("Vocals")[0].gain_db == pytest.approx(top, abs=EXACT_DB)


def test_export_csv_and_json_tables(tmp_path: Path, demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_path = make_project(tmp_path, "reaper", demo_dir)
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured", "text": "",
                                  "global_offset_db": -1.5,
                                  "moves": [{"stem": "Lead_Vocals", "delta_db": -2.5}, {"stem": "keys", "delta_db": 1}]}))
    (tmp_path / "song.stems.yaml").write_text("Vocals: stems/Lead_Vocals.wav\n")
    os.rename(tmp_path / "stems" / "Vocals.wav", tmp_path / "stems" / "Lead_Vocals.wav")
    assert run(["export", str(advice), "--project", str(project_path), "--out", str(tmp_path / "moves.csv"),
                "--format", "csv", "--master"], capsys)[0] == 0
    assert (tmp_path / "moves.csv").read_text() == ("stem,track_number,track,current_db,move_db,new_db\n"
                                                    "Lead_Vocals,10,Vocals,3.00,-2.50,0.50\n"
                                                    "keys,6,Keys,-9.00,1.00,-8.00\n"
                                                    ",0,Master,-1.00,-1.50,-2.50\n")
    assert run(["export", str(advice), "--out", str(tmp_path / "moves.json"), "--format", "json"], capsys)[0] == 0
    table = json.loads((tmp_path / "moves.json").read_text())
    assert table["format"] == "faderwise.fader-moves/2" and table["relative"] is True and table["project"] is None
    assert table["moves"] == [
        {"stem": "Lead_Vocals", "track_number": None, "track": "Lead_Vocals", "current_db": None, "move_db": -2.5,
         "new_db": None, "limited": False},
        {"stem": "keys", "track_number": None, "track": "keys", "current_db": None, "move_db": 1.0, "new_db": None,
         "limited": False}]


def test_map_file_overrides_names_and_leaves_tracks_out(tmp_path: Path, demo_dir: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    project_path = make_project(tmp_path, "ardour", demo_dir)
    os.rename(tmp_path / "stems" / "Vocals.wav", tmp_path / "stems" / "lead.wav")
    os.remove(tmp_path / "stems" / "Keys.wav")
    map_file = tmp_path / "my-map.yaml"
    map_file.write_text("Vocals: stems/lead.wav\nKeys: null\n")
    code, _, err = run(["analyze", str(project_path), "--map", str(map_file), "--json"], capsys)
    assert code == 0, err
    assert "  Vocals ← stems/lead.wav (fader +3.0 dB)" in err.splitlines()
    assert "  Keys: left out (the map file says null)" in err.splitlines()
    assert f"  map file: {map_file}" in err.splitlines()
    mapping = map_stems(read_project(project_path), map_file=map_file)
    assert sorted(mapping.files) == ["Bass", "Drums", "Guitar", "lead"]


def test_non_ascii_names_keep_every_other_byte(tmp_path: Path) -> None:
    routes = [("Kéys ☃", "AudioTrack", "0.5", 0, 0, "Master"), ("Bäss", "AudioTrack", "1", 0, 0, "Master")]
    path = tmp_path / "sóng.ardour"
    path.write_bytes(ardour_session_text(routes=routes).encode("utf-8"))
    project = read_project(path)
    plan = plan_fader_moves({"kéys": -2.0}, project=project)  # ☃ and spaces are not compared
    out = write_project(plan, tmp_path / "new.ardour")
    new = read_project(out)
    assert new.named("Kéys ☃")[0].gain_db - project.named("Kéys ☃")[0].gain_db == pytest.approx(-2.0, abs=EXACT_DB)
    assert new.named("Bäss")[0].gain == 1.0
    assert outside_faders(new) == outside_faders(project)


def test_automation_and_double_counting(tmp_path: Path, demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_path = make_project(tmp_path / "auto", "reaper", demo_dir, volume_envelope="Vocals")
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured", "text": "",
                                  "moves": [{"stem": "vocals", "delta_db": -2.0}]}))
    code, _, err = run(["export", str(advice), "--project", str(project_path), "--out",
                        str(project_path.with_name("new.RPP"))], capsys)
    assert code == 0
    assert ("warning: Vocals: its volume automation plays back and overrides the fader; move the automation by "
            "-2.0 dB instead") in err.replace("\n", " ")
    ardour = make_project(tmp_path / "double", "ardour", demo_dir)
    (tmp_path / "double" / "stems" / "Kick.wav").write_bytes((tmp_path / "double" / "stems" / "Bass.wav").read_bytes())
    # Drums' bus stem holds Kick already: Kick's own stem is left out and said, never summed twice
    mapping = map_stems(read_project(ardour))
    assert "Kick" not in mapping.files and set(mapping.files) == {"Drums", "Bass", "Keys", "Guitar", "Vocals"}
    assert (f"Kick: heard in the stem of Drums, so its own stem is left out of the mix (nothing counts twice; map "
            f"Drums to null in {tmp_path / 'double' / 'song.stems.yaml'} or with --map to advise Kick instead)"
            in mapping.notes)


BAD_PROJECTS = {
    "wrong-format": ("song.RPP", lambda text: b"RIFF\x24\x00\x00\x00WAVEfmt ",
                     "{p}: not a REAPER project (no <REAPER_PROJECT …> line at its start)"),
    "not-a-project": ("song.txt", lambda text: text.encode(),
                      "{p}: not a REAPER (.RPP) or Ardour (.ardour) project"),
    "truncated-xml": ("song.ardour", lambda text: ardour_session_text().encode()[:5000],
                      "{p}: not a complete XML file (line 82, column 11: unclosed token); is it cut short?"),
    "truncated-rpp": ("song.RPP", lambda text: text.encode()[:3000],
                      "{p}: the file ends inside an open block (truncated?): 3 '<' blocks never closed"),
    "rpp-version": ("song.RPP", lambda text: text.replace("<REAPER_PROJECT 0.1", "<REAPER_PROJECT 0.2").encode(),
                    "{p}: REAPER project format '0.2' is not one faderwise knows (it reads format 0.1, written by "
                    "REAPER 4 to 7)"),
    "ardour-version": ("song.ardour", lambda text: ardour_session_text(version="2.0.0").encode(),
                       "{p}: Ardour session format '2.0.0' is not one faderwise knows (it reads formats 3000–9999, "
                       "written by Ardour 3 to 9)"),
    "not-ardour": ("song.ardour", lambda text: b'<?xml version="1.0"?>\n<svg></svg>\n',
                   "{p}: not an Ardour session (its root element is <svg>, not <Session>)"),
    "no-stem": ("song.RPP", lambda text: text.replace("NAME Keys", 'NAME "Synth Pad"').encode(),
                "{p}: track 6 'Synth Pad' has no bounced stem (looked for a file named like it, or '06 Synth "
                "Pad.wav', in {d} and its stems, bounces, renders, export folders); bounce it there, or map it in "
                "{d}/song.stems.yaml or with --map (null leaves it out)"),
    "master-only": ("song.RPP", lambda text: text[:text.index("  <TRACK")].encode() + b">\n",
                    "{p}: has no tracks (only a master)"),
}


@pytest.mark.parametrize("case", sorted(BAD_PROJECTS))
@pytest.mark.parametrize("command", ["analyze", "export"])
def test_bad_projects_one_line_exit_2_nothing_written(case: str, command: str, tmp_path: Path, demo_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    name, content, message = BAD_PROJECTS[case]
    folder = tmp_path / "song"
    make_project(folder, "reaper", demo_dir)
    (folder / "song.RPP").unlink()
    path = folder / name
    path.write_bytes(content(reaper_project_text()))
    before = sorted(p.name for p in folder.rglob("*")), path.read_bytes(), path.stat().st_mtime_ns
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured", "text": "",
                                  "moves": [{"stem": "Bass", "delta_db": -1.0}]}))
    out = folder / f"new{path.suffix}"
    args = (["analyze", str(path)] if command == "analyze" else
            ["export", str(advice), "--project", str(path), "--out", str(out)])
    if case == "no-stem" and command == "export":  # export reads no audio: a track without a stem is no matter
        assert run(args, capsys)[0] == 0 and out.is_file()
        return
    if case == "not-a-project" and command == "analyze":
        message = ("{p}: a stem set is a folder of audio files, a .stem.mp4 file or a REAPER (.RPP) or Ardour "
                   "(.ardour) project with its bounced stems beside it")
    code, printed, err = run(args, capsys)
    assert code == 2
    assert err == f"faderwise: error: {message.format(p=path, d=folder)}\n"
    assert not out.exists()
    assert (sorted(p.name for p in folder.rglob("*")), path.read_bytes(), path.stat().st_mtime_ns) == before


def test_export_refuses_to_replace_and_advice_stem_without_track(tmp_path: Path, demo_dir: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    project_path = make_project(tmp_path, "reaper", demo_dir)
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured", "text": "",
                                  "moves": [{"stem": "theremin", "delta_db": 2.0}]}))
    code, _, err = run(["export", str(advice), "--project", str(project_path), "--out", str(tmp_path / "new.RPP")],
                       capsys)
    assert code == 2 and not (tmp_path / "new.RPP").exists()
    assert err == (f"faderwise: error: {advice}: moves the stem 'theremin', but no track of {project_path} is named "
                   "like it (tracks: Drums, Kick, Snare, Overheads, Bass, Keys, Guitars, Guitar, Gtr DI, Vocals); map "
                   f"it in {tmp_path}/song.stems.yaml or with --map\n")
    for target, text in ((project_path, "{t}: is an input of this command"), (tmp_path / "x.ardour",
                         "{t}: a REAPER project must end in .RPP")):
        advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "m", "text": "",
                                      "moves": [{"stem": "bass", "delta_db": 2.0}]}))
        before = project_path.read_bytes()
        code, _, err = run(["export", str(advice), "--project", str(project_path), "--out", str(target),
                            "--force"], capsys)
        assert code == 2 and project_path.read_bytes() == before
        assert err.startswith(f"faderwise: error: {text.format(t=target)}"), err
    assert not math.isnan(read_project(project_path).named("Bass")[0].gain_db)


def test_the_project_readers_survive_a_fuzzer(tmp_path: Path) -> None:
    """Seeded byte flips, truncations, deleted and doubled lines of both formats (and of real REAPER
    files): each read returns a project with finite fader gains or raises ProjectError naming the
    file, never anything else; mapping what was read (no stems there) is a ProjectError too."""
    rng = random.Random(2026)
    corpus = Path(__file__).parent / "data" / "reaper_corpus"  # files REAPER itself saved (sends, folders, quotes)
    seeds = {".RPP": reaper_project_text().encode(), ".ardour": ardour_session_text().encode(),
             **{f"-{name}.RPP": (corpus / name).read_bytes() for name in ("01-song-with-sends.RPP", "15-tricky-strings.RPP",
                                                                          "11-film-template-1-2.RPP")}}
    outcomes = {"read": 0, "refused": 0}
    for case in range(300):
        suffix, original = rng.choice(sorted(seeds.items()))
        data = bytearray(original)
        mutation = case % 4
        if mutation == 0:
            for _ in range(rng.randint(1, 16)):
                data[rng.randrange(len(data))] = rng.choice(b'<>"\' \n=/0123456789.-eE\x00\xff')
        elif mutation == 1:
            data = data[:rng.randrange(len(data))]
        else:
            lines = bytes(data).splitlines(keepends=True)
            index = rng.randrange(len(lines))
            lines[index:index + 1] = [] if mutation == 2 else [lines[index], lines[index]]
            data = bytearray(b"".join(lines))
        path = tmp_path / f"fuzzed-{case}{suffix}"
        path.write_bytes(bytes(data))
        with command_inputs():
            try:
                project = read_project(path)
            except ProjectError as exc:
                assert "\n" not in str(exc) and str(path) in str(exc)
                outcomes["refused"] += 1
            else:
                assert all(math.isfinite(track.gain) and track.gain >= 0 for track in project.tracks)
                outcomes["read"] += 1
                with pytest.raises(ProjectError):  # no stems beside it: said in one line, whatever the routing
                    map_stems(project)
        path.unlink()
    assert outcomes["read"] > 30 and outcomes["refused"] > 30, outcomes


def test_a_folder_fader_is_heard_in_its_tracks_stems(tmp_path: Path, demo_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A track's stem is bounced after its own fader but not its folder's: the Guitars folder at
    -6 dB puts the guitar 6 dB under the balanced reference, and the advice and export say so."""
    tracks = [(name, depth, 0.5011872336272722 if name == "Guitars" else gain, mute, solo)
              for name, depth, gain, mute, solo in REAPER_TRACKS]
    project_path = write_project_with_stems(tmp_path / "song", reaper_project_text(tracks=tracks), ".RPP",
                                            demo_dir / "version_a")
    code, advice_json, err = run(["advise", str(project_path), "--reference", str(demo_dir / "version_b"), "--json",
                                  "--workers", "1"], capsys)
    assert code == 0
    assert "  Guitar ← stems/Guitar.wav (fader -2.0 dB; through Guitars at -6.0 dB)" in err.splitlines()
    moves = {move["stem"]: move["delta_db"] for move in json.loads(advice_json)["moves"]}
    assert moves == {"Vocals": pytest.approx(-4.0, abs=0.05), "Drums": pytest.approx(3.0, abs=0.05),
                     "Guitar": pytest.approx(6.0, abs=0.05)}
    (tmp_path / "advice.json").write_text(advice_json)
    out = project_path.with_name("new.RPP")
    assert run(["export", str(tmp_path / "advice.json"), "--project", str(project_path), "--out", str(out)],
               capsys)[0] == 0
    new = read_project(out)
    assert new.named("Guitar")[0].gain_db == pytest.approx(-2.0 + moves["Guitar"], abs=EXACT_DB)
    assert new.named("Guitars")[0].gain == read_project(project_path).named("Guitars")[0].gain  # the folder stays


def test_a_fader_above_the_default_top_is_never_pulled_down_by_the_limit(tmp_path: Path) -> None:
    tracks = [("Loud", 0, 10 ** (15 / 20), 0, 0), ("Quiet", 0, 0.5, 0, 0)]
    path = tmp_path / "wide.RPP"
    path.write_text(reaper_project_text(tracks=tracks))
    plan = plan_fader_moves({"loud": -2.0, "quiet": 20.0}, project=read_project(path))
    assert [(c.track, round(c.new_db, 6), c.limited) for c in plan.changes] == [("Loud", 13.0, False),
                                                                                 ("Quiet", 12.0, True)]
    new = read_project(write_project(plan, tmp_path / "new.RPP"))
    assert new.named("Loud")[0].gain_db == pytest.approx(13.0, abs=EXACT_DB)
    assert new.named("Quiet")[0].gain_db == pytest.approx(12.0, abs=EXACT_DB)
    assert plan.warnings == ("Quiet: -6.0 dB +20.0 dB would be +14.0 dB, past REAPER's +12 dB fader maximum: set to "
                             "+12.0 dB, 2.0 dB short",)


def test_a_generated_project_without_volpan_lines(tmp_path: Path) -> None:
    """Projects written by scripts may leave VOLPAN out: REAPER reads such a track at 0 dB, and so
    does faderwise; a copy cannot move a value the file does not state, and says so."""
    path = tmp_path / "generated.RPP"
    path.write_text('<REAPER_PROJECT 0.1 "7.0/test" 0\n  TEMPO 120 4 4\n  <TRACK {00000000-0000-0000-0000-000000000001}\n'
                    '    NAME Bass\n  >\n  <TRACK\n    NAME Keys\n    VOLPAN 0.5 0 -1 -1 1\n  >\n>\n')
    project = read_project(path)
    assert [(t.name, t.gain, t.span is None) for t in project.tracks] == [("Bass", 1.0, True), ("Keys", 0.5, False)]
    moved = read_project(write_project(plan_fader_moves({"keys": 1.0}, project=project), tmp_path / "keys.RPP"))
    assert moved.named("Keys")[0].gain_db == pytest.approx(project.named("Keys")[0].gain_db + 1.0, abs=EXACT_DB)
    with pytest.raises(ProjectError) as raised:
        write_project(plan_fader_moves({"bass": 1.0}, project=project), tmp_path / "bass.RPP")
    assert str(raised.value) == (f"{path}: Bass states no fader value (no VOLPAN line), so a copy cannot "
                                 "move it; open and save the project in REAPER once, then export again")
    assert not (tmp_path / "bass.RPP").exists()


def test_export_carries_the_headroom_trim_to_the_master_or_warns(tmp_path: Path, demo_dir: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Advice whose moves would clip names a master trim: ``--master`` moves the master by it (and by
    the master offset, held under the ceiling), without ``--master`` the export says so, as advise does."""
    project_path = make_project(tmp_path, "reaper", demo_dir)
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({
        "format": "faderwise.advice/1", "advisor": "measured", "text": "", "global_offset_db": 0.0,
        "moves": [{"stem": "drums", "delta_db": 6.0}],
        "evidence": {"headroom": {"mix_sample_peak_after_dbfs": 0.4, "mix_true_peak_after_dbtp": 2.4,
                                  "master_trim_db": -3.4}}}))
    out = tmp_path / "plain.RPP"
    code, printed, err = run(["export", str(advice), "--project", str(project_path), "--out", str(out)], capsys)
    assert code == 0
    assert err.replace("\n", " ").strip() == (
        "warning: with these moves the mix peaks at +2.4 dBTP and clips, over the -1 dBTP ceiling: lower the master by "
        "3.4 dB as well (export --master does it)")
    assert read_project(out).master.gain_db == pytest.approx(-1.0, abs=EXACT_DB)  # type: ignore[union-attr]
    trimmed = tmp_path / "trimmed.RPP"
    code, printed, err = run(["export", str(advice), "--project", str(project_path), "--out", str(trimmed), "--master"],
                             capsys)
    assert (code, err) == (0, "")
    assert "  Master: -1.0 dB → -4.4 dB (move -3.4 dB)" in printed.splitlines()
    assert read_project(trimmed).master.gain_db == pytest.approx(-4.4, abs=EXACT_DB)  # type: ignore[union-attr]
    # a master offset up is held to the headroom left after the moves
    payload = json.loads(advice.read_text())
    payload["global_offset_db"] = 3.0
    payload["evidence"]["headroom"] = {"mix_sample_peak_after_dbfs": -4.0, "mix_true_peak_after_dbtp": -2.5,
                                       "master_trim_db": 0.0}
    advice.write_text(json.dumps(payload))
    held = tmp_path / "held.RPP"
    code, printed, err = run(["export", str(advice), "--project", str(project_path), "--out", str(held), "--master"],
                             capsys)
    assert code == 0 and "  Master: -1.0 dB → +0.5 dB (move +1.5 dB)" in printed.splitlines()
    assert err.replace("\n", " ").strip() == ("warning: the master goes up 1.5 dB, not +3.0 dB as the reference's level "
                                              "asks: more would pass the -1 dBTP ceiling")


def test_a_move_that_lands_on_the_top_within_print_precision_is_not_called_limited(
        tmp_path: Path, demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ardour's fader tops out at +6 dB (a coefficient of 1.99526): a move to +6.01 dB lands there, and
    the line says so without a '0.0 dB short' warning; the written gain never passes the top."""
    project_path = make_project(tmp_path, "ardour", demo_dir)
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "m", "text": "",
                                  "moves": [{"stem": "Bass", "delta_db": 5.01}]}))  # Bass is at +1.0 dB
    code, printed, err = run(["export", str(advice), "--project", str(project_path), "--out",
                              str(tmp_path / "new.ardour")], capsys)
    assert (code, err) == (0, "")
    assert "  Bass: +1.0 dB → +6.0 dB (move +5.0 dB)" in printed.splitlines()
    assert read_project(tmp_path / "new.ardour").named("Bass")[0].gain <= 10 ** (6.0 / 20)


def test_ardour_monitor_and_foldback_routes_are_left_out_and_said(tmp_path: Path, demo_dir: Path) -> None:
    """A performer's foldback mix and the monitor section are what people listen on, not the mix."""
    routes = [*ARDOUR_ROUTES, ("Drummer's cue", "FoldbackBus", "1", 0, 0, "Master"),
              ("Monitor", "MonitorOut", "1", 0, 0, "Master")]
    project_path = write_project_with_stems(tmp_path / "song", ardour_session_text(routes=routes), ".ardour",
                                            demo_dir / "version_a")
    project = read_project(project_path)
    assert "Drummer's cue" not in [track.name for track in project.tracks]
    assert project.left_out == (("Drummer's cue", "a foldback bus: a performer's monitor mix, not the mix"),
                                ("Monitor", "Ardour's monitor section: what you listen on, not the mix"))
    mapping = map_stems(project)
    assert ("Drummer's cue: left out of the mix (a foldback bus: a performer's monitor mix, not the mix)"
            in mapping.notes)
