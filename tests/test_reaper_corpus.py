"""Every REAPER project of the corpus (``tests/data/reaper_corpus``: files REAPER itself saved,
from public repositories; sources, commits and licences in its ``SOURCES.md``) reads, advises and
exports, checked by an independent reader (the ``rpp`` package).

For each project with tracks, every track without children gets a bounced stem named as REAPER's
``$tracknumber $track`` wildcard names it (``03 Lead Vox.wav``; names that cannot be file names
are mapped by number in a map file), a reference is written with three stems moved by known
amounts, and ``faderwise advise`` / ``faderwise export`` run as a producer runs them. The new
project, parsed by ``rpp``, equals the original in every element but the ``VOLPAN`` gains of the
advised tracks, each moved by exactly its advised dB.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from faderwise.cli import main
from faderwise.tools.daw.mapping import NOT_HEARD, map_stems
from faderwise.tools.daw.model import db_to_gain, gain_to_db
from faderwise.tools.daw.project import read_project
from faderwise.tools.errors import ProjectError
from faderwise.tools.outputs import command_inputs

rpp = pytest.importorskip("rpp", reason="the rpp package (an independent RPP reader) is in the [dev] extra")

CORPUS = Path(__file__).parent / "data" / "reaper_corpus"
PROJECTS = sorted(CORPUS.glob("*.RPP"))
RATE = 16_000
SECONDS = 1.0
MOVES_DB = (4.0, -3.0, 2.5)
"""The reference moves three stems by these (A − B = −move): the advice must undo them."""
MOVE_TOLERANCE_DB = 0.1
GAIN_TOLERANCE = 1e-12
"""How close a written VOLPAN gain is to the old gain times the advised move: REAPER's 14 decimals."""


def test_the_corpus_is_what_its_sources_file_says() -> None:
    sources = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| (\d\d-[\w-]+\.RPP) \| ([\w.-]+/[\w.-]+) \| ([0-9a-f]{40}) \|", sources, re.MULTILINE)
    assert sorted(name for name, _, _ in listed) == [path.name for path in PROJECTS]
    assert len(PROJECTS) >= 20
    versions = {read_project(path).version for path in PROJECTS}
    assert versions == {"0.1"}
    first_lines = [path.read_bytes().split(b"\n", 1)[0] for path in PROJECTS]
    reaper_majors = {int(m.group(1)) for line in first_lines if (m := re.search(rb'"(\d)\.\d', line))}
    assert {4, 5, 6, 7} <= reaper_majors


def _file_name_for(name: str) -> bool:
    """Whether a track name can be a file name here (no slash or NUL, not too long for the disk)."""
    return "/" not in name and "\0" not in name and len(f"00 {name}.wav".encode("utf-8", "surrogateescape")) < 240


def _bounce(folder: Path, project_path: Path) -> tuple[Path, dict[str, int]]:
    """A copy of the project in ``folder`` with a stem for every track without children:
    ``NN Name.wav`` (REAPER's ``$tracknumber $track``) or, for a name no file can have, a map file
    entry ``'#N'``. Returns the copy and stem name → track number."""
    folder.mkdir()
    copy = folder / project_path.name
    shutil.copyfile(project_path, copy)
    project = read_project(copy)
    stems = folder / "stems"
    stems.mkdir()
    parents = {track.parent for track in project.tracks}
    rng = np.random.default_rng(len(project.tracks))
    mapped, numbers = [], {}
    for track in project.tracks:
        if track.number in parents:
            continue
        stem = f"{track.number:02d} {track.name}" if _file_name_for(track.name) else f"track-{track.number:02d}"
        audio = (10 ** (rng.uniform(-30, -20) / 20) * rng.standard_normal(int(RATE * SECONDS))).astype(np.float32)
        sf.write(stems / f"{stem}.wav", audio, RATE, subtype="FLOAT")
        numbers[stem] = track.number
        if not _file_name_for(track.name):
            mapped.append(f"'#{track.number}': stems/{stem}.wav\n")
    if mapped:
        copy.with_name(copy.stem + ".stems.yaml").write_text("".join(mapped), encoding="utf-8")
    return copy, numbers


def _elements(element: object, path: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], str, tuple[str, ...]]]:
    """Every element of an ``rpp`` tree in order: ``(position, tag, values)`` (a block's raw data
    line, such as base64 plug-in state, is ``#data``)."""
    if isinstance(element, str):
        return [(path, "#data", (element,))]
    if isinstance(element, list):
        return [(path, element[0], tuple(element[1:]))]
    found = [(path, element.tag, tuple(element.attrib))]  # type: ignore[attr-defined]
    for index, child in enumerate(element.children):  # type: ignore[attr-defined]
        found += _elements(child, (*path, index))
    return found


def _rpp_tree(path: Path) -> object:
    """The ``rpp`` package's tree of a project. rpp 0.5 fails on a blank line (its scanner indexes
    an empty string, its grammar has no empty element); such lines carry nothing, so they are taken
    out for it alike in both files."""
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return rpp.loads(re.sub(r"(?m)^[ \t]*\r?\n", "", text))


@pytest.mark.parametrize("project_path", PROJECTS, ids=[path.stem for path in PROJECTS])
def test_every_corpus_project_reads_advises_and_exports(project_path: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with command_inputs():
        original = read_project(project_path)
    if not original.tracks:
        copy = tmp_path / project_path.name
        shutil.copyfile(project_path, copy)
        assert main(["analyze", str(copy)]) == 2
        assert capsys.readouterr().err == f"faderwise: error: {copy}: has no tracks (only a master)\n"
        return
    copy, numbers = _bounce(tmp_path / "song", project_path)
    if project_path.name == "19-call-and-i-will-listen.RPP":  # a live rig: every track plays to hardware outputs
        assert main(["analyze", str(copy)]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"faderwise: error: {copy}: none of its stems is heard in the mix (Track 7: muted in "
                                "REAPER, so its stem is left out of the mix; ") and error.count("\n") == 1
        assert f"Click: {NOT_HEARD}, so it is not in the mix: its stem is left out; " in error
        return
    with command_inputs():
        mapping = map_stems(read_project(copy))
    heard = list(mapping.files)
    assert all(mapping.tracks[stem] == numbers[stem] for stem in heard)  # each stem is its track, by number
    # the reference: the stems as the mix plays them, three of them (with finite faders) moved
    movable = [stem for stem in heard if math.isfinite(mapping.track(stem).gain_db)]
    chosen = dict(zip(random.Random(project_path.name).sample(movable, min(3, len(movable))), MOVES_DB))
    reference = tmp_path / "reference"
    reference.mkdir()
    for stem in heard:
        audio, rate = sf.read(mapping.files[stem], dtype="float32")
        gain = db_to_gain(mapping.above_db(stem) + chosen.get(stem, 0.0))
        sf.write(reference / f"{stem}.wav", audio * gain, rate, subtype="FLOAT")
    advice_path = tmp_path / "advice.json"
    assert main(["advise", str(copy), "--reference", str(reference), "--json", "--workers", "1"]) == 0
    advice_text = capsys.readouterr().out
    advice_path.write_text(advice_text, encoding="utf-8")
    moves = {move["stem"]: move["delta_db"] for move in json.loads(advice_text)["moves"]}
    assert set(moves) == set(chosen), (moves, chosen)
    for stem, move in chosen.items():
        assert moves[stem] == pytest.approx(move, abs=MOVE_TOLERANCE_DB), stem

    exported = tmp_path / "song" / "new.RPP"
    assert main(["export", str(advice_path), "--project", str(copy), "--out", str(exported)]) == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err
    with command_inputs():
        after = read_project(exported)
    # the independent reader: the trees are equal but for the advised tracks' VOLPAN gains
    before_elements, after_elements = _elements(_rpp_tree(copy)), _elements(_rpp_tree(exported))
    assert len(before_elements) == len(after_elements)
    changed = [(old, new) for old, new in zip(before_elements, after_elements) if old != new]
    moved_numbers = {mapping.tracks[stem]: move for stem, move in moves.items()}
    assert len(changed) == len(moved_numbers)
    for old, new in changed:
        assert old[0] == new[0] and old[1] == new[1] == "VOLPAN" and old[2][1:] == new[2][1:]
    top_level_tracks = [path for path, tag, _ in before_elements if tag == "TRACK" and len(path) == 1]
    for number, move in moved_numbers.items():
        volpan = next(new for old, new in changed if new[0][:1] == top_level_tracks[number - 1])
        old_gain = original.track(number).gain
        expected = min(old_gain * db_to_gain(move), db_to_gain(max(original.max_gain_db, gain_to_db(old_gain))))
        assert float(volpan[2][0]) == pytest.approx(expected, rel=GAIN_TOLERANCE, abs=1e-14)
        assert after.track(number).gain == pytest.approx(expected, rel=GAIN_TOLERANCE, abs=1e-14)
    # every byte outside the moved VOLPAN values is as it was
    spans = sorted(original.track(number).span for number in moved_numbers)  # type: ignore[type-var]
    old_text, new_text = copy.read_bytes().decode("utf-8", "surrogateescape"), exported.read_bytes().decode(
        "utf-8", "surrogateescape")
    shift = 0
    for start, end in spans:
        new_end = new_text.index(" ", start + shift)
        assert new_text[:start + shift][-40:] == old_text[:start][-40:]
        shift += (new_end - start - shift) - (end - start)
    assert new_text[len(new_text) - (len(old_text) - spans[-1][1]):] == old_text[spans[-1][1]:]


def test_duplicate_names_round_trip_with_stems_named_by_track_number(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A film template (REAPER 6.04) with four tracks named 'FX B' among 120: each 'NN FX B.wav' is
    its own track; the export moves exactly the advised one and names it 'FX B (track N)'."""
    project_path = CORPUS / "12-film-template.RPP"
    copy, numbers = _bounce(tmp_path / "song", project_path)
    with command_inputs():
        project = read_project(copy)
    twins = [track for track in project.tracks if track.name == "FX B"]
    assert len(twins) >= 2 and all(track.label == f"FX B (track {track.number})" for track in twins)
    target = twins[1]
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured", "text": "",
                                  "moves": [{"stem": f"{target.number:02d} FX B", "delta_db": -2.0}]}))
    out = tmp_path / "song" / "new.RPP"
    assert main(["export", str(advice), "--project", str(copy), "--out", str(out), "--format", "project"]) == 0
    printed = capsys.readouterr().out
    assert (f"  FX B (track {target.number}) (stem {target.number:02d} FX B): {target.gain_db:+.1f} dB → "
            f"{target.gain_db - 2.0:+.1f} dB (move -2.0 dB)") in printed.splitlines()
    with command_inputs():
        moved = read_project(out)
    assert [t.number for t in moved.tracks if t.gain != project.track(t.number).gain] == [target.number]
    # a stem named like the twins without a number is refused with the line that settles it
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "m", "text": "",
                                  "moves": [{"stem": "FX B", "delta_db": -2.0}]}))
    assert main(["export", str(advice), "--project", str(copy), "--out", str(tmp_path / "song" / "x.RPP")]) == 2
    numbered = " or ".join(f"'{t.number:02d} FX B'" for t in twins)
    described = ", ".join(f"track {t.number} 'FX B'" for t in twins)
    assert capsys.readouterr().err == (
        f"faderwise: error: {advice}: the stem 'FX B' is named like {len(twins)} tracks of {copy} ({described}); name it "
        f"by its track's number ({numbered}), or map it in {copy.with_name('12-film-template.stems.yaml')} or with "
        "--map\n")


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"@noindex\r\n", b"@version 1.0\n@author someone\n\n",
                                    b"\xef\xbb\xbf@noindex\n"], ids=["bom", "reapack-noindex", "reapack-header",
                                                                    "bom-and-header"])
def test_a_bom_and_reapack_header_lines_before_the_project(prefix: bytes, tmp_path: Path) -> None:
    """Templates shared through ReaPack start with its header lines; editors add a BOM: the project
    reads as without them, and an export keeps them byte for byte."""
    source = (CORPUS / "18-send-receive.RPP").read_bytes()
    path = tmp_path / "song.RPP"
    path.write_bytes(prefix + source)
    with command_inputs():
        plain = read_project(CORPUS / "18-send-receive.RPP")
        prefixed = read_project(path)
    assert [(t.name, t.gain, t.receives) for t in prefixed.tracks] == [(t.name, t.gain, t.receives) for t in plain.tracks]
    from faderwise.tools.daw.export import plan_fader_moves, project_text_with

    plan = plan_fader_moves({f"{prefixed.tracks[0].name}": 1.5}, project=prefixed)
    written = project_text_with(plan).encode("utf-8", "surrogateescape")
    assert written.startswith(prefix) and len(written.splitlines()) == len((prefix + source).splitlines())


def test_names_reaper_writes_read_as_a_producer_sees_them(tmp_path: Path) -> None:
    """Quotes, backticks, brackets, a line separator and Windows-1252 bytes in names."""
    with command_inputs():
        tricky = read_project(CORPUS / "15-tricky-strings.RPP")
        vst = read_project(CORPUS / "06-vst.RPP")
    assert [t.name for t in tricky.tracks][:6] == ["Track 1", '"', '""', '"""', "'", "''"]  # NAME "" is unnamed
    assert {'"hey', 'hey"', "<", ">"} <= {t.name for t in vst.tracks}
    text = (CORPUS / "18-send-receive.RPP").read_bytes()
    first_name = re.search(rb"NAME ([^\r\n]*)", text)
    assert first_name is not None
    odd = text[:first_name.start(1)] + b'"Baj\xf3 \xe2\x80\xa8 Lead"' + text[first_name.end(1):]
    path = tmp_path / "odd.RPP"
    path.write_bytes(odd)
    with command_inputs():
        project = read_project(path)
    # U+2028 is part of the name (lines end only at \n); the lone 0xF3 is Windows-1252's ó
    assert project.tracks[0].name == "Bajó \u2028 Lead"
    from faderwise.tools.daw.export import plan_fader_moves, project_text_with

    plan = plan_fader_moves({"Bajó \u2028 Lead": -1.0}, project=project)
    rewritten = project_text_with(plan).encode("utf-8", "surrogateescape")
    assert rewritten.replace(b"\r", b"").count(b"\n") == odd.replace(b"\r", b"").count(b"\n")
    assert b'"Baj\xf3 \xe2\x80\xa8 Lead"' in rewritten  # the name's bytes are kept as they were
    # its stem, named on a UTF-8 file system as the producer reads the name, is its stem
    (tmp_path / "stems").mkdir()
    for track in project.tracks:
        sf.write(tmp_path / "stems" / f"{track.number:02d} {track.name}.wav", np.zeros(RATE, np.float32) + 0.01, RATE)
    with command_inputs():
        assert map_stems(project).tracks["01 Bajó \u2028 Lead"] == 1


def test_case_twins_punctuation_and_emoji_names_map_or_say_which_file_to_rename(tmp_path: Path) -> None:
    from daw_projects import reaper_project_text

    folder = tmp_path / "song"
    (folder / "stems").mkdir(parents=True)
    tracks = [("Kick", 0, 1.0, 0, 0), ("kick", 0, 1.0, 0, 0), ("<", 0, 1.0, 0, 0), ("\U0001F3B8", 0, 1.0, 0, 0),
              ('"hey', 0, 1.0, 0, 0), ('hey"', 0, 1.0, 0, 0)]
    (folder / "song.RPP").write_text(reaper_project_text(tracks=tracks), encoding="utf-8")
    audio = (0.05 * np.random.default_rng(0).standard_normal(RATE)).astype(np.float32)
    for name in ("01 Kick", "02 kick", "<", "\U0001F3B8", '"hey', 'hey"'):
        sf.write(folder / "stems" / f"{name}.wav", audio, RATE)
    with command_inputs():
        mapping = map_stems(read_project(folder / "song.RPP"))
    assert dict(mapping.tracks) == {"01 Kick": 1, "02 kick": 2, "<": 3, "\U0001F3B8": 4, '"hey': 5, 'hey"': 6}
    # case twins' stems as 'Kick.wav' and 'kick.wav' cannot both be stems (a stem is named case aside)
    (folder / "stems" / "01 Kick.wav").rename(folder / "stems" / "Kick.wav")
    (folder / "stems" / "02 kick.wav").rename(folder / "stems" / "kick.wav")
    with command_inputs(), pytest.raises(ProjectError) as raised:
        map_stems(read_project(folder / "song.RPP"))
    assert str(raised.value) == (f"{folder / 'stems' / 'kick.wav'}: another track's stem is also called 'kick'; rename "
                                 "one of the files (the track's number first: '02 kick.wav')")
    (folder / "stems" / "Kick.wav").unlink()
    (folder / "stems" / "kick.wav").rename(folder / "stems" / "KICK.wav")
    with command_inputs(), pytest.raises(ProjectError) as raised:
        map_stems(read_project(folder / "song.RPP"))
    assert str(raised.value) == (
        f"{folder / 'stems' / 'KICK.wav'}: is named like 2 tracks of {folder / 'song.RPP'} (track 1 'Kick', track 2 "
        f"'kick'); rename it '01 Kick.wav' or '02 kick.wav' (the track's number first), or map it in "
        f"{folder / 'song.stems.yaml'} or with --map")


def test_tracks_heard_only_through_a_receiving_track_are_counted_once(tmp_path: Path) -> None:
    """A REAPER 4 project (04-beyershort2) whose four tracks have their master send off and reach
    the mix only through the receives of a fifth: with the fifth's stem, theirs are left out (it
    holds them); without it, each is heard through its send and the fifth's fader, once."""
    copy, _ = _bounce(tmp_path / "song", CORPUS / "04-beyershort2.RPP")
    text = copy.read_bytes()
    # the receiving track's fader to -6.02 dB, the R send to -6.02 dB, the SR send before the fader
    text = text.replace(b"    NAME \"Beyer51-32k-ALL\"\r\n    PEAKCOL", b"    NAME \"Beyer51-32k-ALL\"\r\n    PEAKCOL")
    all_block = text.index(b'NAME "Beyer51-32k-ALL"')
    volpan = text.index(b"VOLPAN 1.00000000000000", all_block)
    text = text[:volpan] + b"VOLPAN 0.50000000000000" + text[volpan + len(b"VOLPAN 1.00000000000000"):]
    text = text.replace(b"AUXRECV 1 0 1.00000000000000", b"AUXRECV 1 0 0.50000000000000")
    text = text.replace(b"AUXRECV 3 0 1.00000000000000", b"AUXRECV 3 1 1.00000000000000")
    copy.write_bytes(text)
    with command_inputs():
        project = read_project(copy)
        held = map_stems(project)
    assert list(held.files) == ["05 Beyer51-32k-ALL"]
    assert [track.main_send for track in project.tracks] == [False, False, False, False, True]
    (copy.parent / "stems" / "05 Beyer51-32k-ALL.wav").unlink()
    with command_inputs():
        through = map_stems(read_project(copy))
    half = gain_to_db(0.5)
    sr_fader = project.track(4).gain_db
    assert dict(through.gains_db) == pytest.approx({
        "01 Beyer51-32k-L": half, "02 Beyer51-32k-R": 2 * half, "03 Beyer51-32k-SL": half,
        "04 Beyer51-32k-SR": half - sr_fader}, abs=1e-9)  # a send before the fader does not follow it
    assert through.routes["02 Beyer51-32k-R"] == ("sent to Beyer51-32k-ALL at -6.0 dB; its master/parent send is off")
    assert through.routes["04 Beyer51-32k-SR"] == ("sent to Beyer51-32k-ALL at +0.0 dB (before its fader); its "
                                                   "master/parent send is off")


def test_pre_reaper_4_folders_and_the_projects_pan_law(tmp_path: Path) -> None:
    """An old project (one-field ISBUS: 1 opens a folder, 2 closes one) from REAPER's own
    documentation samples: the folder at -1.1 dB reaches its tracks; PANLAW 0.70710678 is -3.01 dB."""
    with command_inputs():
        project = read_project(CORPUS / "01-song-with-sends.RPP")
    percussion = project.named("Percussion")[0]
    assert percussion.kind == "folder" and percussion.gain_db == pytest.approx(-1.1, abs=0.05)
    assert [track.name for track in project.children(percussion)][:3] == ["Kick Sansom", "Snare Sansom",
                                                                          "Perc Ohead B5"]
    assert project.pan_law_db == pytest.approx(20 * math.log10(0.70710678), abs=1e-9)
    instruments = project.named("Instrument Mix")[0]
    assert not instruments.main_send
    receiver = project.named("Instrument  Mix + Perc")[0]
    assert {sender.name: round(receive.gain, 6) for sender, receive in project.senders(receiver)} == {
        "Percussion": 0.200427, "Instrument Mix": 1.0, "Vox Mix": 1.0}


MAP_ERRORS = {
    "unknown-number": ("'#99': stems/x.wav\n", "{m}: line 1: {p} has no track #99 (its tracks are #1 to #12)"),
    "two-entries": ("'#10': stems/a.wav\nSEND: stems/b.wav\n",
                    "{m}: line 2: 2 tracks of {p} are named 'SEND' (tracks 1, 3); key them by number instead: "
                    "'#1' and '#3'"),
    "one-track-twice": ("'#8': stems/a.wav\nVideo: null\n", "{m}: lines 1 and 2 both map track 8 'Video'; keep one"),
    "unquoted-number": ("#8: stems/a.wav\n", "{m}: line 1: write '#8' in quotes (YAML reads an unquoted # as the start "
                                             "of a comment, so this line would be ignored)"),
    "no-stems-at-all": (None, "{p}: no bounced stems found beside it (looked for files named like its tracks, or their "
                              "numbers, in {d} and its stems, bounces, renders, export folders); bounce the tracks "
                              "there, or map them in {d}/11-film-template-1-2.stems.yaml or with --map"),
}


@pytest.mark.parametrize("case", sorted(MAP_ERRORS))
def test_bad_maps_and_stemless_projects_are_one_line_exit_2_nothing_written(case: str, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A film template (REAPER 5.91) with two tracks named SEND, mapped wrongly, or with no stems."""
    copy, _ = _bounce(tmp_path / "song", CORPUS / "11-film-template-1-2.RPP")
    content, message = MAP_ERRORS[case]
    map_file = copy.with_name("11-film-template-1-2.stems.yaml")
    if content is None:
        shutil.rmtree(copy.parent / "stems")
    else:
        (copy.parent / "stems" / "a.wav").write_bytes((copy.parent / "stems" / "02 Track 2.wav").read_bytes())
        map_file.write_text(content, encoding="utf-8")
    with command_inputs():
        project = read_project(copy)
    assert [t.number for t in project.named("SEND")] == [1, 3] and project.track(8).name == "Video"
    before = sorted((path.name, path.stat().st_mtime_ns) for path in copy.parent.rglob("*"))
    assert main(["analyze", str(copy), "--json"]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err == f"faderwise: error: {message.format(m=map_file, p=copy, d=copy.parent)}\n"
    assert sorted((path.name, path.stat().st_mtime_ns) for path in copy.parent.rglob("*")) == before


def test_a_track_named_master_is_a_track(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its move goes to its own VOLPAN, never to MASTER_VOLUME, and it is named with its number."""
    from daw_projects import reaper_project_text

    folder = tmp_path / "song"
    (folder / "stems").mkdir(parents=True)
    (folder / "song.RPP").write_text(reaper_project_text(tracks=[("Drums", 0, 1.0, 0, 0), ("Master", 0, 0.5, 0, 0)]),
                                     encoding="utf-8")
    audio = (0.05 * np.random.default_rng(1).standard_normal(RATE)).astype(np.float32)
    for name in ("Drums", "02 Master"):
        sf.write(folder / "stems" / f"{name}.wav", audio, RATE)
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "m", "text": "",
                                  "moves": [{"stem": "02 Master", "delta_db": 3.0}]}))
    assert main(["export", str(advice), "--project", str(folder / "song.RPP"), "--out", str(folder / "new.RPP")]) == 0
    assert "  Master (track 2) (stem 02 Master): -6.0 dB → -3.0 dB (move +3.0 dB)" in capsys.readouterr().out
    with command_inputs():
        before, after = read_project(folder / "song.RPP"), read_project(folder / "new.RPP")
    assert after.master is not None and before.master is not None and after.master.gain == before.master.gain
    assert gain_to_db(after.track(2).gain) == pytest.approx(gain_to_db(0.5) + 3.0, abs=1e-9)


def test_a_map_file_keys_tracks_by_number_and_by_guid(tmp_path: Path) -> None:
    """Two tracks named SEND (REAPER 5.91 film template): one keyed '#1', the other by its GUID."""
    copy, _ = _bounce(tmp_path / "song", CORPUS / "11-film-template-1-2.RPP")
    with command_inputs():
        project = read_project(copy)
    second = project.named("SEND")[1]
    assert second.ident is not None and second.ident.startswith("{")
    stems = copy.parent / "stems"
    (stems / "02 Track 2.wav").rename(stems / "dialogue-send.wav")
    (stems / "04 Track 4.wav").rename(stems / "music-send.wav")
    copy.with_name("11-film-template-1-2.stems.yaml").write_text(
        f"'#2': stems/dialogue-send.wav\n'{project.track(4).ident}': stems/music-send.wav\n", encoding="utf-8")
    with command_inputs():
        mapping = map_stems(read_project(copy))
    assert (mapping.tracks["dialogue-send"], mapping.tracks["music-send"]) == (2, 4)


def test_a_stems_whole_name_wins_over_the_name_without_the_projects(tmp_path: Path) -> None:
    """In Bass.RPP, 'Bass DI.wav' is the track 'Bass DI', not 'DI' ($project-$track read the other way)."""
    from daw_projects import reaper_project_text

    folder = tmp_path / "song"
    folder.mkdir()
    (folder / "Bass.RPP").write_text(reaper_project_text(tracks=[("Bass DI", 0, 1.0, 0, 0), ("DI", 0, 1.0, 0, 0)]),
                                     encoding="utf-8")
    with command_inputs():
        project = read_project(folder / "Bass.RPP")
    from faderwise.tools.daw.mapping import tracks_named_like

    assert [track.number for track in tracks_named_like("Bass DI", project)] == [1]
    assert [track.number for track in tracks_named_like("Bass-DI", project)] == [1]  # lead_vox = Lead Vox first
    assert [track.number for track in tracks_named_like("Bass - DI", project)] == [1]
    assert [track.number for track in tracks_named_like("02 DI", project)] == [2]
