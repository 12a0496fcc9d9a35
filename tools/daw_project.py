"""DAW projects in and out: which bounced stem each track is, and a new project with moved faders.

* :func:`read_project` reads a REAPER ``.RPP`` or an Ardour ``.ardour`` file
  (:mod:`faderwise.tools.reaper_project`, :mod:`faderwise.tools.ardour_session`).
* :func:`map_stems` finds each track's bounced stem beside the project (in its folder or in a
  ``stems``, ``bounces``, ``renders`` or ``export`` folder there), by name: ``Lead Vox`` is
  ``Lead Vox.wav``, ``lead_vox.flac``, ``03 Lead Vox.wav`` or ``SONG-Lead Vox.wav`` (REAPER's
  ``$project-$track``). A map file (YAML, ``track name: file`` or ``null`` to leave a track out)
  overrides it; ``SONG.stems.yaml`` beside the project is used when present. Stems are taken to be
  bounced after the track's own fader, as REAPER's and Ardour's stem exports write them by
  default, so a move of a stem is the same move of its track's fader; the faders of the folders or
  buses the track plays through are applied as the stem is read, so the stems sum to the mix.
* :func:`plan_fader_moves` turns advice (stem → dB) into fader changes: relative to where each
  fader is now, limited to the DAW's range (said when a move would pass it).
  :func:`write_project` writes them into a **new** project that differs from the input only in
  the characters of those fader values; :func:`write_fader_table` writes them as CSV or JSON for
  any other DAW.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faderwise.tools.ardour_session import read_ardour
from faderwise.tools.audio_io import AUDIO_EXTENSIONS, AUDIO_FILE
from faderwise.tools.errors import OutputExistsError, ProjectError
from faderwise.tools.input_files import (
    MAP_LIMIT_BYTES,
    PROJECT_LIMIT_BYTES,
    check_regular_file,
    exists_as_file,
    is_special_file,
    read_bytes_bounded,
)
from faderwise.tools.json_files import read_yaml, write_json
from faderwise.tools.outputs import check_target, note_input, output_file, write_text
from faderwise.tools.project_model import MASTER, Project, Track, db_to_gain
from faderwise.tools.reaper_project import read_reaper
from faderwise.tools.remedies import remedies
from faderwise.tools.report import format_difference

if TYPE_CHECKING:
    from faderwise.tools.stem_files import StemFiles, StemSource

READERS = {".rpp": read_reaper, ".ardour": read_ardour}
STEM_FOLDERS = ("stems", "bounces", "renders", "export")
"""Folders beside a project searched for bounced stems (any case), after the project's own folder."""
MAP_SUFFIX = ".stems.yaml"
FADER_MOVES_FORMAT = "faderwise.fader-moves/1"
TABLE_COLUMNS = ("stem", "track", "current_db", "move_db", "new_db")


def is_project_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a REAPER or Ardour project by its suffix."""
    return Path(path).suffix.casefold() in READERS


def read_project(path: str | os.PathLike[str]) -> Project:
    """A REAPER or Ardour project's tracks and faders; the file is an input, never written.

    Raises:
        ProjectError: missing or unreadable, not a project of either DAW, truncated, a format
            version faderwise does not know, two tracks with one name.
        NotAFileError: a named pipe (FIFO), a socket or a device (refused before it is opened).
        InputTooLargeError: larger than :data:`~faderwise.tools.input_files.PROJECT_LIMIT_BYTES`.
    """
    path = Path(path)
    note_input(path)
    reader = READERS.get(path.suffix.casefold())
    if reader is None:
        raise ProjectError(f"{path}: not a REAPER (.RPP) or Ardour (.ardour) project")
    try:
        raw = read_bytes_bounded(path, limit=PROJECT_LIMIT_BYTES, what="a project")
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such file") from None
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not raw.strip():
        raise ProjectError(f"{path}: is empty")
    project = reader(path, raw.decode("utf-8", "surrogateescape"))
    seen: dict[str, Track] = {}
    for track in project.tracks:
        if track.name in seen:
            raise ProjectError(f"{path}: two tracks are named {track.name!r} (tracks {seen[track.name].number} and "
                               f"{track.number}): rename one in {project.daw_name}, so that each stem maps to one track")
        seen[track.name] = track
    return project


# -- names -----------------------------------------------------------------------------------------


def name_key(text: str) -> str:
    """A name as it is compared: case, spaces and punctuation dropped (``Lead Vox`` = ``lead_vox``)."""
    return re.sub(r"[\W_]+", "", text.casefold())


def stem_keys(stem: str, project: Project) -> set[str]:
    """The track names (as :func:`name_key`) that a stem file called ``stem`` can be the bounce of:
    the name itself, without a leading track number, without the project's name before it."""
    keys = {name_key(stem), name_key(re.sub(r"^\d+[\s._-]*", "", stem))}
    prefix = project.path.stem.split(".")[0]
    if stem.casefold().startswith(prefix.casefold()) and len(stem) > len(prefix):
        keys.add(name_key(stem[len(prefix):]))
    keys.discard("")
    return keys


def _track_named_like(stem: str, project: Project, *, where: str) -> Track | None:
    found = [track for track in project.tracks if name_key(track.name) in stem_keys(stem, project)]
    if len(found) > 1:
        raise ProjectError(f"{where}: {stem!r} is named like several tracks of {project.source} "
                           f"({', '.join(repr(t.name) for t in found)}); say which {_map_hint(project)}")
    return found[0] if found else None


# -- map files -------------------------------------------------------------------------------------


def default_map_file(project: Project) -> Path | None:
    """``SONG.stems.yaml`` beside ``SONG.RPP``: used without being named when it exists (a
    running DAW's faders have none)."""
    return None if project.live else project.path.with_name(project.path.stem + MAP_SUFFIX)


def _map_hint(project: Project) -> str:
    beside = default_map_file(project)
    option = remedies().map_file
    if option.startswith("--"):  # the command line: a map file beside the project, or one named with --map
        return f"in {beside} or with {option}" if beside else f"with {option}"
    return f"in {beside}" if beside else f"in {option}"  # the chat and MCP read the one beside the project


def _map_file(project: Project, map_file: str | os.PathLike[str] | None) -> Path | None:
    """The map file to use: the one named, else the one beside the project if it exists (a named
    pipe or a device there is refused, not passed over)."""
    beside = default_map_file(project)
    if map_file is not None:
        return Path(map_file)
    return beside if beside is not None and exists_as_file(beside, what="a map file") else None


def read_stem_map(path: str | os.PathLike[str], project: Project) -> dict[str, Path | None]:
    """A map file: track name → bounced stem file (relative to the map file's folder), or ``None``
    for a track left out.

    Raises:
        ProjectError: not YAML, not a mapping of names to files, a name that is no track.
        NotAFileError: a named pipe (FIFO), a socket or a device.
        InputTooLargeError: larger than :data:`~faderwise.tools.input_files.MAP_LIMIT_BYTES`.
    """
    path = Path(path)
    loaded = read_yaml(path, error=ProjectError, limit=MAP_LIMIT_BYTES, what="a map file")
    if not isinstance(loaded, dict) or not all(isinstance(key, str) for key in loaded):
        raise ProjectError(f"{path}: a map file maps track names to stem files (track name: file), one per line")
    mapping: dict[str, Path | None] = {}
    names = [track.name for track in project.tracks]
    for track, file in loaded.items():
        if track not in names:
            raise ProjectError(f"{path}: {project.source} has no track named {track!r} (it has: {', '.join(names)})")
        if file is not None and not isinstance(file, str):
            raise ProjectError(f"{path}: the track {track!r} maps to {file!r}; give a file name, or null to leave it out")
        mapping[track] = None if file is None else (path.parent / file)
    return mapping


# -- tracks to stems -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StemMapping:
    """Which bounced stem is which track.

    Attributes:
        project: the project read.
        files: stem name → its file (stems of tracks that play).
        tracks: stem name → the track whose fader it is.
        notes: what was left out and why, what is ignored (solo), which map file was used.
    """

    project: Project
    files: Mapping[str, Path]
    tracks: Mapping[str, str]
    notes: tuple[str, ...] = ()

    def above_db(self, stem: str) -> float:
        """The faders the stem's track plays through (its folders or buses), added up in dB: a
        stem bounced after its own fader is measured with them, as it sounds in the mix."""
        track = self.project.track(self.tracks[stem])
        return sum(above.gain_db for above in self.project.ancestors(track))

    def lines(self) -> list[str]:
        """One line per stem — ``Lead Vox ← stems/Lead Vox.wav (fader -3.0 dB)``, and the faders
        above it when they are not at 0 dB — then the notes."""
        shown = []
        for stem, file in self.files.items():
            track = self.project.track(self.tracks[stem])
            try:
                where = file.relative_to(self.project.path.parent)
            except ValueError:
                where = file
            above = [parent for parent in self.project.ancestors(track) if parent.gain != 1.0]
            through = "".join(f"; through {parent.name} at {_db_text(parent.gain_db)} dB" for parent in above)
            shown.append(f"{track.name} ← {where} (fader {_db_text(track.gain_db)} dB{through})")
        return [*shown, *self.notes]


def _db_text(db: float) -> str:
    """A fader level, signed with one decimal (:func:`~faderwise.tools.report.format_difference`), or ``-inf``."""
    return "-inf" if db == -math.inf else format_difference(db)


def _audio_beside(project: Project) -> list[Path]:
    """Audio files in the project's folder and in its stem folders (any case); a named pipe or a
    device with an audio file's name is among them, to be refused by name when it is read."""
    folder = project.path.parent

    def entries(where: Path) -> list[Path]:
        try:
            return sorted(where.iterdir())
        except OSError as exc:
            raise ProjectError(f"{where}: cannot read folder ({exc.strerror or exc})") from None

    folders = [folder, *(entry for entry in entries(folder) if entry.is_dir() and entry.name.casefold() in STEM_FOLDERS)]
    return [entry for where in folders for entry in entries(where)
            if (entry.is_file() or is_special_file(entry)) and not entry.name.startswith(".")
            and entry.suffix.casefold() in AUDIO_EXTENSIONS]


def map_stems(project: Project, *, map_file: str | os.PathLike[str] | None = None) -> StemMapping:
    """Each playing track's bounced stem: from the map file (``map_file``, else
    :func:`default_map_file` when it exists), else found by name beside the project.

    Muted tracks (or tracks in a muted folder) are left out. A folder or bus with no stem of its
    own is the sum of its tracks' stems.

    Raises:
        ProjectError: a playing track with no stem and no folder above it that has one; a
            track whose stem and its folder's stem would count it twice; one file for two tracks;
            a mapped file that does not exist; no stems at all.
    """
    hint = _map_hint(project)
    explicit_file = _map_file(project, map_file)
    explicit = read_stem_map(explicit_file, project) if explicit_file is not None else {}
    candidates = [(entry, stem_keys(entry.stem, project)) for entry in _audio_beside(project)]
    files: dict[str, Path] = {}  # track name → file
    notes: list[str] = []
    silenced = {track.name for track in project.tracks
                if track.mute or any(above.mute for above in project.ancestors(track))}
    for track in project.tracks:
        if track.name in explicit:
            file = explicit[track.name]
            if file is None:
                notes.append(f"{track.name}: left out (the map file says null)")
                continue
            check_regular_file(file, what=AUDIO_FILE)  # a named pipe or a device is refused by name
            if not file.is_file():
                raise ProjectError(f"{explicit_file}: the track {track.name!r} maps to {file}, which does not exist")
        else:
            matches = [entry for entry, keys in candidates if name_key(track.name) in keys]
            if len(matches) > 1:
                raise ProjectError(f"{project.path}: the track {track.name!r} matches several bounced stems "
                                   f"({', '.join(str(m) for m in matches)}); say which {hint}")
            if not matches:
                if track.name in silenced and not project.children(track.name):
                    notes.append(f"{track.name}: muted in {project.daw_name}, no stem: left out of the mix")
                continue
            file = matches[0]
        if track.name in silenced:
            notes.append(f"{track.name}: muted in {project.daw_name}, so its stem is left out of the mix")
            continue
        files[track.name] = file
    _check_coverage(project, files, silenced, explicit, hint)
    by_file: dict[Path, str] = {}
    stems: dict[str, Path] = {}
    tracks: dict[str, str] = {}
    for track_name, file in files.items():
        resolved = file.resolve()
        if resolved in by_file:
            raise ProjectError(f"{file}: is the stem of two tracks, {by_file[resolved]!r} and {track_name!r}; "
                               f"map each to its own file {hint}")
        by_file[resolved] = track_name
        stem = file.stem
        if stem.casefold() in {name.casefold() for name in stems}:
            raise ProjectError(f"{file}: another track's stem is also called {stem!r}; rename one of the files")
        stems[stem], tracks[stem] = file, track_name
    if any(track.solo for track in project.tracks):
        soloed = ", ".join(repr(track.name) for track in project.tracks if track.solo)
        notes.append(f"solo on {soloed} is ignored: faderwise measures the whole mix, as it plays with no solo")
    if explicit_file is not None:
        notes.append(f"map file: {explicit_file}")
    for track_name in tracks.values():
        if project.track(track_name).automated:
            notes.append(f"{track_name}: its volume automation plays back, so its fader's value is not what you hear "
                         "at every moment")
    return StemMapping(project=project, files=stems, tracks=tracks, notes=tuple(notes))


def _check_coverage(project: Project, files: Mapping[str, Path], silenced: set[str],
                    explicit: Mapping[str, Path | None], hint: str) -> None:
    """Every track that plays is in exactly one stem (its own, or its folder's or bus's)."""
    if not files:
        raise ProjectError(f"{project.path}: no bounced stems found beside it (looked for files named like its tracks "
                           f"in {project.path.parent} and its {', '.join(STEM_FOLDERS)} folders); bounce the tracks "
                           f"there, or map them {hint}")
    for track in project.tracks:
        above = [parent.name for parent in project.ancestors(track) if parent.name in files]
        if track.name in files and above:
            raise ProjectError(f"{project.path}: both {above[0]!r} and its track {track.name!r} have bounced stems, so "
                               f"the mix would count {track.name!r} twice; map one of them to null {hint}")
        if (track.name not in files and not above and track.name not in silenced and track.name not in explicit
                and not project.children(track.name)):
            raise ProjectError(f"{project.path}: the track {track.name!r} has no bounced stem (looked for a file named "
                               f"like it in {project.path.parent} and its {', '.join(STEM_FOLDERS)} folders); bounce "
                               f"it there, or map it {hint} (null leaves it out)")


def open_project_stems(path: str | os.PathLike[str], *, map_file: str | os.PathLike[str] | None = None,
                       rate: int | None = None) -> tuple[StemFiles, StemMapping]:
    """A project's bounced stems as a stem set (named as their files are), and the mapping
    (:func:`map_stems`) that says which track each is."""
    from faderwise.tools.stem_files import open_stem_files

    mapping = map_stems(read_project(path), map_file=map_file)
    gains = {stem: db_to_gain(mapping.above_db(stem)) for stem in mapping.files}
    return open_stem_files(Path(path), mapping.files, gains=gains, rate=rate), mapping


def open_stems_and_mapping(path: str | os.PathLike[str], *, map_file: str | os.PathLike[str] | None = None,
                           ) -> tuple[StemSource, StemMapping | None]:
    """Any stem set :func:`~faderwise.tools.stem_files.open_stem_set` opens, with the mapping of its
    tracks when ``path`` is a project (the commands and the chat show it)."""
    if is_project_file(path):
        return open_project_stems(path, map_file=map_file)
    from faderwise.tools.stem_files import open_stem_set

    return open_stem_set(path), None


# -- fader moves out -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaderChange:
    """One fader's move: ``stem`` (``None`` for the master), its ``track``, where the fader is now
    (``current_db``, ``None`` without a project), the advised ``move_db``, and where it goes
    (``new_db``; limited to the DAW's range when ``limited``)."""

    stem: str | None
    track: str
    current_db: float | None
    move_db: float
    new_db: float | None
    limited: bool = False

    def to_json(self) -> dict[str, object]:
        def number(value: float | None) -> float | None:
            return None if value is None or value == -math.inf else round(value, 3)
        return {"stem": self.stem, "track": self.track, "current_db": number(self.current_db),
                "move_db": round(self.move_db, 3), "new_db": number(self.new_db), "limited": self.limited}


@dataclass(frozen=True)
class FaderPlan:
    """The fader changes one advice makes in one project (or, without one, per stem)."""

    project: Project | None
    changes: tuple[FaderChange, ...]
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"format": FADER_MOVES_FORMAT, "relative": True,
                "project": str(self.project.path) if self.project else None,
                "daw": self.project.daw if self.project else None,
                "moves": [change.to_json() for change in self.changes], "warnings": list(self.warnings)}


def _mapped_tracks(project: Project, map_file: str | os.PathLike[str] | None) -> dict[str, Track]:
    """The map file's tracks by their stem file's name (casefolded); empty without a map file."""
    explicit_file = _map_file(project, map_file)
    if explicit_file is None:
        return {}
    return {file.stem.casefold(): project.track(track_name)
            for track_name, file in read_stem_map(explicit_file, project).items() if file is not None}


def _track_for_stem(stem: str, project: Project, mapped: Mapping[str, Track], *, where: str) -> Track:
    """The track whose fader moves ``stem``: the map file's track for a file called ``stem``
    (``mapped``, from :func:`_mapped_tracks`), else the track named like it.

    Raises:
        ProjectError: no track (or several) named like ``stem``.
    """
    if stem.casefold() in mapped:
        return mapped[stem.casefold()]
    track = _track_named_like(stem, project, where=where)
    if track is None:
        raise ProjectError(f"{where}: moves the stem {stem!r}, but no track of {project.source} is named like it "
                           f"(tracks: {', '.join(t.name for t in project.tracks)}); map it {_map_hint(project)}")
    return track


def plan_fader_moves(moves: Mapping[str, float], *, project: Project | None,
                     map_file: str | os.PathLike[str] | None = None, master_db: float = 0.0,
                     where: str = "advice") -> FaderPlan:
    """The fader changes for ``moves`` (stem → dB, relative to the stems as bounced) in
    ``project``: each track's fader from where it is by the move, at most the DAW's top
    (:attr:`Project.max_gain_db`, or the fader's own level when it is higher already; the warning
    says by how much a move was cut). ``master_db``
    moves the master fader too. Without a project, the moves per stem (no current level).

    Raises:
        ProjectError: a stem with no track; two stems on one track.
    """
    if project is None:
        return FaderPlan(None, tuple(FaderChange(stem, stem, None, move, None) for stem, move in moves.items()))
    changes: list[FaderChange] = []
    warnings: list[str] = []
    taken: dict[str, str] = {}
    mapped = _mapped_tracks(project, map_file) if moves else {}  # read once, not once per stem
    targets = [(stem, _track_for_stem(stem, project, mapped, where=where), move) for stem, move in moves.items()]
    if master_db and project.master is not None:
        targets.append((None, project.master, master_db))
    for stem, track, move in targets:
        if track.name in taken:
            raise ProjectError(f"{where}: the stems {taken[track.name]!r} and {stem!r} both move the track {track.name!r}")
        taken[track.name] = str(stem)
        current = track.gain_db
        if current == -math.inf:
            warnings.append(f"{track.name}: its fader is at -inf dB, so a relative move leaves it silent; left as it is")
            continue
        target = current + move
        top = max(project.max_gain_db, current)  # a fader already above the default top shows a wider range
        new = min(target, top)
        if new < target:
            warnings.append(f"{track.name}: {_db_text(current)} dB {move:+.1f} dB would be {target:+.1f} dB, past "
                            f"{project.daw_name}'s {top:+.0f} dB fader maximum: set to {top:+.1f} dB, "
                            f"{target - new:.1f} dB short")
        if track.automated:
            warnings.append(f"{track.name}: its volume automation plays back and overrides the fader; move the "
                            f"automation by {move:+.1f} dB instead")
        if track.mute and track.kind != MASTER:
            warnings.append(f"{track.name}: is muted in {project.daw_name}")
        changes.append(FaderChange(stem, track.name, current, move, new, limited=new < target))
    return FaderPlan(project, tuple(changes), tuple(warnings))


RELATIVE_NOTE = "fader moves are relative: each fader moves by the advised dB from where it is now"


def change_lines(plan: FaderPlan) -> list[str]:
    """One line per change: ``Vocals (stem vocals): +3.0 dB → +0.5 dB (move -2.5 dB)``."""
    lines = []
    for change in plan.changes:
        stem = "" if change.stem in (None, change.track) else f" (stem {change.stem})"
        if change.current_db is None or change.new_db is None:
            lines.append(f"{change.track}{stem}: move {change.move_db:+.1f} dB")
            continue
        limited = " (limited)" if change.limited else ""
        lines.append(f"{change.track}{stem}: {_db_text(change.current_db)} dB → {_db_text(change.new_db)} dB "
                     f"(move {change.move_db:+.1f} dB){limited}")
    return lines or ["no fader moves"]


def project_text_with(plan: FaderPlan) -> str:
    """The project's text with only the planned fader values replaced."""
    if plan.project is None:
        raise ProjectError("there is no project to write the fader moves into")
    project = plan.project
    text = project.text
    tracks = {track.name: track for track in (*project.tracks, *([project.master] if project.master else []))}
    edits = []
    for change in plan.changes:
        track = tracks[change.track]
        if track.span is None:
            raise ProjectError(f"{project.path}: the track {track.name!r} states no fader value (no VOLPAN line), so a "
                               f"copy cannot move it; open and save the project in {project.daw_name} once, then "
                               "export again")
        gain = db_to_gain(float(change.new_db)) if change.limited else track.gain * db_to_gain(change.move_db)
        edits.append((track.span, project.format_gain(gain)))
    for (start, end), value in sorted(edits, reverse=True):
        text = text[:start] + value + text[end:]
    return text


def write_project(plan: FaderPlan, out: str | os.PathLike[str], *, force: bool = False) -> Path:
    """A **new** project file ``out`` (same DAW and suffix) with the planned faders moved; every
    other byte as in the input, which is never written.

    Raises:
        ProjectError: ``out`` has another suffix than the project.
        OutputError: ``out`` may not be written (exists, is the input…).
    """
    if plan.project is None:
        raise ProjectError("there is no project to write the fader moves into")
    out = Path(out)
    suffix = plan.project.path.suffix
    if out.suffix.casefold() != suffix.casefold():
        raise ProjectError(f"{out}: a {plan.project.daw_name} project must end in {suffix}")
    check_target(out, folder=False, force=force, inputs=[plan.project.path])
    data = project_text_with(plan).encode("utf-8", "surrogateescape")
    with output_file(out, force=force, inputs=[plan.project.path]) as staging:
        staging.write_bytes(data)
    return out


MAX_EXPORTS = 99


def write_project_beside(plan: FaderPlan) -> Path:
    """:func:`write_project` into ``SONG-faderwise-NN`` (same suffix) beside the project, the first
    number free: beside it, REAPER finds the media by the same relative paths and Ardour takes it
    as a snapshot of the same session."""
    if plan.project is None:
        raise ProjectError("there is no project to write the fader moves into")
    source = plan.project.path
    for number in range(1, MAX_EXPORTS + 1):
        out = source.with_name(f"{source.stem}-faderwise-{number:02d}{source.suffix}")
        if out.exists() or out.is_symlink():
            continue
        try:
            return write_project(plan, out)
        except OutputExistsError:
            if not out.exists():
                raise
    raise OutputExistsError(f"{source.parent}: every {source.stem}-faderwise-NN{source.suffix} up to "
                            f"{MAX_EXPORTS} is taken; move some away")


def fader_table_csv(plan: FaderPlan) -> str:
    """The plan as CSV: ``stem, track, current_db, move_db, new_db`` (dB to 0.01; empty when unknown)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for change in plan.changes:
        row = change.to_json()
        writer.writerow(["" if row[column] is None else (f"{row[column]:.2f}" if isinstance(row[column], float)
                                                          else row[column]) for column in TABLE_COLUMNS])
    return buffer.getvalue()


def write_fader_table(plan: FaderPlan, out: str | os.PathLike[str], *, table_format: str,
                      force: bool = False) -> Path:
    """The plan as ``csv`` or ``json`` (:data:`FADER_MOVES_FORMAT`) at ``out``, through the guarded writer."""
    if table_format == "json":
        return write_json(out, plan.to_json(), force=force)
    return write_text(out, fader_table_csv(plan), force=force)
