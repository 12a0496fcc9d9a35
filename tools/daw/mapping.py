"""Which bounced stem is which track of a DAW project, and how each stem reaches the mix.

* A stem file belongs to a track by the track's **number** first: ``03 Lead Vox.wav``,
  ``03-Lead Vox.wav`` and ``03_Lead Vox.wav`` (REAPER's ``$tracknumber`` wildcard) are track 3's
  when track 3 is called so, which settles names that repeat; then by name, compared exactly, then
  case aside, then with spaces and punctuation aside (``Lead Vox`` = ``lead_vox.flac``), and
  without the project's name before it (``SONG-Lead Vox``, REAPER's ``$project-$track``). A file
  that is named like several tracks is named back with the line that settles it (rename it with
  the track's number first, or map it).
* A map file (YAML, one line per track: the track, then its file or ``null`` to leave it out)
  overrides that; it keys a track by its name, by its number (``'#3'``, quoted: YAML reads an
  unquoted ``#`` as a comment) or by its id (REAPER's GUID, Ardour's route id).
  ``SONG.stems.yaml`` beside the project is used when present.
* Stems are taken to be bounced after the track's own fader (REAPER's and Ardour's stem exports
  write them so by default), so a move of a stem is the same move of its track's fader. What the
  track plays through on its way to the master — folders, buses, VCAs, the sends into a track that
  receives it — is applied as the stem is read (:attr:`StemMapping.gains_db`), so the stems sum to
  the mix the producer hears. A track whose audio reaches the master only inside another stem (a
  folder's or bus's bounce, a receiving track's) is left out, and the mapping says so: nothing is
  counted twice.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faderwise.tools.audio_io import AUDIO_EXTENSIONS, AUDIO_FILE
from faderwise.tools.daw.model import Project, Track, db_to_gain, gain_to_db
from faderwise.tools.daw.project import is_project_file, read_project
from faderwise.tools.errors import ProjectError
from faderwise.tools.input_files import MAP_LIMIT_BYTES, check_regular_file, exists_as_file, is_special_file
from faderwise.tools.json_files import read_input_text
from faderwise.tools.remedies import remedies
from faderwise.tools.report import format_difference

if TYPE_CHECKING:
    from faderwise.tools.stem_files import StemFiles, StemSource

STEM_FOLDERS = ("stems", "bounces", "renders", "export")
"""Folders beside a project searched for bounced stems (any case), after the project's own folder."""
MAP_SUFFIX = ".stems.yaml"
_NUMBER_FIRST = re.compile(r"^(\d{1,4})(?:[ \t._-]+(.*))?$", re.DOTALL)
_NUMBERED_LABEL = re.compile(r"^(.*) \(track (\d+)\)$", re.DOTALL)
_COMMENTED_NUMBER = re.compile(r"^\s*#\d+\s*:", re.MULTILINE)


# -- names -----------------------------------------------------------------------------------------


def _normal(text: str) -> str:
    """``text`` in Unicode's compatibility form (a name typed on one system and a file name written
    on another compare equal), case aside."""
    return unicodedata.normalize("NFKC", text).casefold()


def name_key(text: str) -> str:
    """A name as it is compared last: case, spaces and punctuation dropped (``Lead Vox`` =
    ``lead_vox``); a name of nothing but punctuation or symbols (``<``, ``🎸``) keeps them."""
    normal = _normal(text)
    return re.sub(r"[\W_]+", "", normal) or re.sub(r"\s+", "", normal)


_TIERS = (lambda text: text, _normal, name_key)
"""How names are compared, most exact first: a match at one tier is taken before any at the next."""


def _project_prefix(project: Project) -> str:
    return project.path.stem.split(".")[0]


def _names_in(stem: str, project: Project) -> list[str]:
    """The track names a stem file called ``stem`` can stand for: itself, without a leading
    track number, without the project's name (and a separator) before it."""
    names = [stem]
    numbered = _NUMBER_FIRST.match(stem)
    if numbered and numbered.group(2):
        names.append(numbered.group(2))
    prefix = _project_prefix(project)
    if prefix and _normal(stem).startswith(_normal(prefix)) and len(stem) > len(prefix):
        names.append(stem[len(prefix):].lstrip(" \t._-") or stem)
    return names


def _named_like(name: str, track: Track, tier: int) -> bool:
    compare = _TIERS[tier]
    return bool(compare(name)) and compare(name) == compare(track.name)


def tracks_named_like(stem: str, project: Project) -> list[Track]:
    """The tracks a stem (a file's name without its suffix) can be the bounce of: the track its
    number names (``03 Lead Vox``: track 3, when track 3 is called so; ``SEND (track 3)``: how
    faderwise names such a track), else the tracks named like the whole stem at the most exact
    tier that has any, else like the stem without its number or the project's name before it.
    More than one is for the caller to settle or refuse."""
    labelled = _NUMBERED_LABEL.match(stem)
    numbered = _NUMBER_FIRST.match(stem)
    for match, rest in ((labelled, 1), (numbered, 2)):
        if match is None:
            continue
        number = int(match.group(2 if rest == 1 else 1))
        track = next((track for track in project.tracks if track.number == number), None)
        if track is not None and any(_named_like(match.group(rest) or "", track, tier) for tier in range(3)):
            return [track]
    for name in _names_in(stem, project):  # 'Bass DI' in Bass.RPP is the track 'Bass DI' before 'DI'
        for tier in range(len(_TIERS)):
            found = [track for track in project.tracks if _named_like(name, track, tier)]
            if found:
                return found
    return []


def rename_hint(file: Path, tracks: list[Track], project: Project) -> str:
    """The line that settles a file named like several tracks: rename it with the number first."""
    names = " or ".join(repr(f"{track.number:02d} {track.name}{file.suffix}") for track in tracks)
    return (f"{file}: is named like {len(tracks)} tracks of {project.source} "
            f"({', '.join(_describe(track) for track in tracks)}); rename it {names} (the track's number first), "
            f"or map it {map_hint(project)}")


def _describe(track: Track) -> str:
    return f"track {track.number} {track.name!r}"


def track_for_stem(stem: str, project: Project, *, where: str) -> Track | None:
    """The one track a stem is the bounce of (:func:`tracks_named_like`), ``None`` when none is.

    Raises:
        ProjectError: several tracks, with the line that settles it.
    """
    found = tracks_named_like(stem, project)
    if len(found) > 1:
        names = " or ".join(repr(f"{track.number:02d} {track.name}") for track in found)
        raise ProjectError(f"{where}: the stem {stem!r} is named like {len(found)} tracks of {project.source} "
                           f"({', '.join(_describe(track) for track in found)}); name it by its track's number "
                           f"({names}), or map it {map_hint(project)}")
    return found[0] if found else None


# -- map files -------------------------------------------------------------------------------------


def default_map_file(project: Project) -> Path | None:
    """``SONG.stems.yaml`` beside ``SONG.RPP``: used without being named when it exists (a
    running DAW's faders have none)."""
    return None if project.live else project.path.with_name(project.path.stem + MAP_SUFFIX)


def map_hint(project: Project) -> str:
    """Where a producer says which track a stem is: in the map file beside the project, or with
    the front end's own option."""
    beside = default_map_file(project)
    option = remedies().map_file
    if option.startswith("--"):  # the command line: a map file beside the project, or one named with --map
        return f"in {beside} or with {option}" if beside else f"with {option}"
    return f"in {beside}" if beside else f"in {option}"  # the chat and MCP read the one beside the project


def map_file_for(project: Project, map_file: str | os.PathLike[str] | None) -> Path | None:
    """The map file to use: the one named, else the one beside the project if it exists (a named
    pipe or a device there is refused, not passed over)."""
    beside = default_map_file(project)
    if map_file is not None:
        return Path(map_file)
    return beside if beside is not None and exists_as_file(beside, what="a map file") else None


def _map_entries(path: Path) -> list[tuple[object, object, int]]:
    """A map file's entries in order, ``(key, value, line)``, duplicates kept (a YAML loader keeps
    only the last of two equal keys, and two entries for one track must be refused)."""
    import yaml

    text = read_input_text(path, error=ProjectError, limit=MAP_LIMIT_BYTES, what="a map file")
    commented = _COMMENTED_NUMBER.search(text)
    if commented:
        line = text.count("\n", 0, commented.start()) + 1
        key = commented.group(0).strip().rstrip(":").strip()
        raise ProjectError(f"{path}: line {line}: write '{key}' in quotes (YAML reads an unquoted # as the start of a "
                           "comment, so this line would be ignored)")
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return []
            if not isinstance(node, yaml.MappingNode):
                raise ProjectError(f"{path}: a map file maps tracks to stem files (track: file), one per line")
            return [(loader.construct_object(key, deep=True), loader.construct_object(value, deep=True),
                     key.start_mark.line + 1) for key, value in node.value]
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not valid YAML: {exc}") from None


def _track_of_key(key: object, project: Project, path: Path, line: int) -> Track:
    """The track a map file's key names: ``'#N'``, an id, or a name (one track's)."""
    where = f"{path}: line {line}"
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise ProjectError(f"{where}: {key!r} is not a track: key a track by its name, '#N' or its id, in quotes "
                           "when it holds YAML's own characters")
    text = str(key)
    if re.fullmatch(r"#\d+", text.strip()):
        number = int(text.strip()[1:])
        found = [track for track in project.tracks if track.number == number]
        if not found:
            raise ProjectError(f"{where}: {project.source} has no track {text.strip()} (its tracks are #1 to "
                               f"#{len(project.tracks)})")
        return found[0]
    by_id = [track for track in project.tracks if track.ident is not None and track.ident == text]
    if by_id:
        return by_id[0]
    named = project.named(text) or [track for track in project.tracks if _normal(track.name) == _normal(text)]
    if len(named) > 1:
        keys = " and ".join(f"'#{track.number}'" for track in named)
        raise ProjectError(f"{where}: {len(named)} tracks of {project.source} are named {text!r} (tracks "
                           f"{', '.join(str(track.number) for track in named)}); key them by number instead: {keys}")
    if not named:
        listed = ", ".join(f"#{track.number} {track.name!r}" for track in project.tracks[:40])
        more = f", … ({len(project.tracks)} in all)" if len(project.tracks) > 40 else ""
        raise ProjectError(f"{where}: {project.source} has no track named {text!r} (it has: {listed}{more})")
    return named[0]


def read_stem_map(path: str | os.PathLike[str], project: Project) -> dict[int, Path | None]:
    """A map file: track number → bounced stem file (relative to the map file's folder), or
    ``None`` for a track left out.

    Raises:
        ProjectError: not YAML, not a mapping of tracks to files, a key that names no track (or
            several), two entries for one track, a value that is not a file name.
        NotAFileError: a named pipe (FIFO), a socket or a device.
        InputTooLargeError: larger than :data:`~faderwise.tools.input_files.MAP_LIMIT_BYTES`.
    """
    path = Path(path)
    mapping: dict[int, Path | None] = {}
    lines: dict[int, int] = {}
    for key, file, line in _map_entries(path):
        track = _track_of_key(key, project, path, line)
        if track.number in mapping:
            raise ProjectError(f"{path}: lines {lines[track.number]} and {line} both map track {track.number} "
                               f"{track.name!r}; keep one")
        if file is not None and not isinstance(file, str):
            raise ProjectError(f"{path}: line {line}: track {track.number} {track.name!r} maps to {file!r}; give a "
                               "file name, or null to leave it out")
        mapping[track.number], lines[track.number] = (None if file is None else path.parent / file), line
    return mapping


# -- tracks to stems -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StemMapping:
    """Which bounced stem is which track, and how it reaches the mix.

    Attributes:
        project: the project read.
        files: stem name → its file (stems of tracks heard in the mix).
        tracks: stem name → the number of the track whose fader it is.
        gains_db: stem name → the gain between the track's fader and the master (dB): the
            folders, buses and VCAs it plays through, or the sends it is heard through.
        routes: stem name → how it reaches the master, in words ("through Drums at −3.0 dB").
        notes: what was left out and why, what is ignored (solo), which map file was used.
    """

    project: Project
    files: Mapping[str, Path]
    tracks: Mapping[str, int]
    gains_db: Mapping[str, float]
    routes: Mapping[str, str]
    notes: tuple[str, ...] = ()

    def track(self, stem: str) -> Track:
        """The track whose fader ``stem`` is."""
        return self.project.track(self.tracks[stem])

    def above_db(self, stem: str) -> float:
        """The gain between the stem's track and the master (dB): a stem bounced after its own
        fader is read with it, as it sounds in the mix."""
        return self.gains_db[stem]

    def lines(self) -> list[str]:
        """One line per stem — ``Lead Vox ← stems/Lead Vox.wav (fader -3.0 dB)``, with the VCAs
        and the way to the master when they change its level — then the notes."""
        shown = []
        for stem, file in self.files.items():
            track = self.track(stem)
            try:
                where = file.relative_to(self.project.path.parent)
            except ValueError:
                where = file
            vca = f"; {vca_text(track)}" if track.vcas else ""
            route = f"; {self.routes[stem]}" if self.routes.get(stem) else ""
            shown.append(f"{track.label} ← {where} (fader {db_text(track.gain_db)} dB{vca}{route})")
        return [*shown, *self.notes]


def vca_text(track: Track) -> str:
    """``VCA: Strings at -6.0 dB`` (``VCAs: A, B at … together``): what a track's VCAs add to its fader."""
    if len(track.vcas) == 1:
        return f"VCA: {track.vcas[0]} at {db_text(track.vca_db)} dB"
    return f"VCAs: {', '.join(track.vcas)} at {db_text(track.vca_db)} dB together"


def db_text(db: float) -> str:
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


NOT_HEARD = "it does not reach the master (its master/parent send, or its folder's, is off and no track receives it)"


class _Routing:
    """How each track's audio, after its own fader, reaches the master (linear gain), through the
    folders, buses and receiving tracks that have no stem of their own: audio that goes into a
    track with a stem is in that stem already, so that way adds nothing."""

    def __init__(self, project: Project, stemmed: set[int], silenced: set[int]) -> None:
        self.project, self.stemmed, self.silenced = project, stemmed, silenced
        self._reach: dict[int, float] = {}

    def through(self, number: int, visiting: frozenset[int]) -> float:
        """Gain from the input of track ``number`` to the master (its fader and VCAs included);
        0 when its output is in its own stem, when it is muted, or in a loop."""
        track = self.project.tracks_by_number.get(number)
        if track is None or number in self.stemmed or number in self.silenced or number in visiting:
            return 0.0
        return track.gain * db_to_gain(track.vca_db) * self.reach(track, visiting | {number})

    def reach(self, track: Track, visiting: frozenset[int] = frozenset()) -> float:
        """Gain from the output of ``track``'s fader to the master."""
        if track.number in self._reach:
            return self._reach[track.number]
        total = 0.0
        if track.main_send:
            total += self.through(track.parent, visiting) if track.parent is not None else 1.0
        for receiver, receive in self.project.receivers(track):
            if receive.mute:
                continue
            tap = receive.gain if receive.post_fader else (receive.gain / track.gain if track.gain > 0 else 0.0)
            total += tap * self.through(receiver.number, visiting)
        if not visiting:
            self._reach[track.number] = total
        return total

    def heard_in(self, track: Track) -> list[Track]:
        """The tracks whose stems are heard in the mix and hold ``track``'s audio (its folder or
        bus, the tracks receiving it), following the ones with no stem, or with a stem not heard."""
        found: list[Track] = []
        seen: set[int] = set()
        queue = [*([track.parent] if track.main_send and track.parent is not None else []),
                 *(receiver.number for receiver, receive in self.project.receivers(track) if not receive.mute)]
        while queue:
            number = queue.pop(0)
            if number in seen or number not in self.project.tracks_by_number:
                continue
            seen.add(number)
            step = self.project.tracks_by_number[number]
            if number in self.stemmed and self.reach(step) > 0:
                found.append(step)
                continue
            queue += [*([step.parent] if step.main_send and step.parent is not None else []),
                      *(receiver.number for receiver, receive in self.project.receivers(step) if not receive.mute)]
        return found

    def route(self, track: Track) -> str:
        """How ``track`` reaches the master, in words, when anything on the way changes its level."""
        parts = []
        if track.main_send:
            above = [a for a in self.project.ancestors(track) if a.gain != 1.0 or a.vca_db]
            parts += [f"through {a.label} at {db_text(a.gain_db + a.vca_db)} dB" for a in above]
        sends = [(receiver, receive) for receiver, receive in self.project.receivers(track)
                 if not receive.mute and self.through(receiver.number, frozenset()) > 0]
        parts += [f"sent to {receiver.label} at {db_text(gain_to_db(receive.gain))} dB"
                  f"{'' if receive.post_fader else ' (before its fader)'}" for receiver, receive in sends]
        if not track.main_send:
            parts.append("its master/parent send is off")
        return "; ".join(parts)


def map_stems(project: Project, *, map_file: str | os.PathLike[str] | None = None) -> StemMapping:
    """Each track's bounced stem: from the map file (``map_file``, else :func:`default_map_file`
    when it exists), else found beside the project by number and name (:func:`tracks_named_like`).

    Muted tracks (or tracks in a muted folder) are left out; a track heard only inside another
    stem is left out; a folder or bus with no stem of its own is the sum of its tracks' stems.
    Each is said in :attr:`StemMapping.notes`.

    Raises:
        ProjectError: a project with no tracks; a file named like several tracks, or several
            files named like one track; a playing track with no stem that no stem holds; one
            file for two tracks; a mapped file that does not exist; no stems at all.
    """
    hint = map_hint(project)
    if not project.tracks:
        raise ProjectError(f"{project.path}: has no tracks (only a master)")
    explicit_file = map_file_for(project, map_file)
    explicit = read_stem_map(explicit_file, project) if explicit_file is not None else {}
    mapped_files = {file.resolve() for file in explicit.values() if file is not None}
    found: dict[int, list[Path]] = {}
    for entry in _audio_beside(project):
        if entry.resolve() in mapped_files:
            continue
        tracks = tracks_named_like(entry.stem, project)
        if len(tracks) > 1:
            raise ProjectError(rename_hint(entry, tracks, project))
        if tracks and tracks[0].number not in explicit:
            found.setdefault(tracks[0].number, []).append(entry)
    notes: list[str] = []
    silenced = {track.number for track in project.tracks
                if track.mute or any(above.mute for above in project.ancestors(track))}
    files: dict[int, Path] = {}
    for track in project.tracks:
        if track.number in explicit:
            file = explicit[track.number]
            if file is None:
                notes.append(f"{track.label}: left out (the map file says null)")
                continue
            check_regular_file(file, what=AUDIO_FILE)  # a named pipe or a device is refused by name
            if not file.is_file():
                raise ProjectError(f"{explicit_file}: track {track.number} {track.name!r} maps to {file}, which does "
                                   "not exist")
        else:
            matches = found.get(track.number, [])
            if len(matches) > 1:
                raise ProjectError(f"{project.path}: track {track.number} {track.name!r} matches several bounced stems "
                                   f"({', '.join(str(m) for m in matches)}); say which {hint}")
            if not matches:
                if track.number in silenced and not project.children(track):
                    notes.append(f"{track.label}: muted in {project.daw_name}, no stem: left out of the mix")
                continue
            file = matches[0]
        if track.number in silenced:
            notes.append(f"{track.label}: muted in {project.daw_name}, so its stem is left out of the mix")
            continue
        files[track.number] = file
    notes += [f"{what}: left out of the mix ({why})" for what, why in project.left_out]
    if not files:
        raise ProjectError(f"{project.path}: no bounced stems found beside it (looked for files named like its tracks, "
                           f"or their numbers, in {project.path.parent} and its {', '.join(STEM_FOLDERS)} folders); "
                           f"bounce the tracks there, or map them {hint}")
    routing = _Routing(project, set(files), silenced)
    heard: dict[int, Path] = {}
    for number, file in files.items():
        track = project.track(number)
        if routing.reach(track) > 0:
            heard[number] = file
            continue
        holders = routing.heard_in(track)
        if holders:
            names = ", ".join(holder.label for holder in holders)
            notes.append(f"{track.label}: heard in the stem of {names}, so its own stem is left out of the mix "
                         f"(nothing counts twice; map {names} to null {hint} to advise {track.label} instead)")
        else:
            notes.append(f"{track.label}: {NOT_HEARD}, so it is not in the mix: its stem is left out")
    if not heard:
        raise ProjectError(f"{project.path}: none of its stems is heard in the mix ({'; '.join(notes)})")
    _check_coverage(project, heard, silenced, explicit, routing, hint)
    by_file: dict[Path, Track] = {}
    stems: dict[str, Path] = {}
    numbers: dict[str, int] = {}
    gains: dict[str, float] = {}
    routes: dict[str, str] = {}
    for number, file in heard.items():
        track = project.track(number)
        resolved = file.resolve()
        if resolved in by_file:
            raise ProjectError(f"{file}: is the stem of two tracks, {_describe(by_file[resolved])} and "
                               f"{_describe(track)}; map each to its own file {hint}")
        by_file[resolved] = track
        stem = file.stem
        if _normal(stem) in {_normal(name) for name in stems}:
            raise ProjectError(f"{file}: another track's stem is also called {stem!r}; rename one of the files "
                               f"(the track's number first: '{track.number:02d} {track.name}{file.suffix}')")
        stems[stem], numbers[stem] = file, number
        gains[stem], routes[stem] = gain_to_db(routing.reach(track)), routing.route(track)
    if any(track.solo for track in project.tracks):
        soloed = ", ".join(track.label for track in project.tracks if track.solo)
        notes.append(f"solo on {soloed} is ignored: faderwise measures the whole mix, as it plays with no solo")
    if explicit_file is not None:
        notes.append(f"map file: {explicit_file}")
    for number in numbers.values():
        track = project.track(number)
        if track.automated:
            notes.append(f"{track.label}: its volume automation plays back, so its fader's value is not what you hear "
                         "at every moment")
    return StemMapping(project=project, files=stems, tracks=numbers, gains_db=gains, routes=routes, notes=tuple(notes))


def _check_coverage(project: Project, heard: Mapping[int, Path], silenced: set[int],
                    explicit: Mapping[int, Path | None], routing: _Routing, hint: str) -> None:
    """Every track that plays is heard: in its own stem, or in a stem its audio goes into."""
    for track in project.tracks:
        if track.number in heard or track.number in silenced or track.number in explicit:
            continue
        if project.children(track) or project.senders(track):
            continue  # a folder or bus: its audio is its tracks'
        if routing.heard_in(track) or routing.reach(track) == 0:
            continue  # inside another stem, or not in the mix at all
        raise ProjectError(f"{project.path}: track {track.number} {track.name!r} has no bounced stem (looked for a file "
                           f"named like it, or '{track.number:02d} {track.name}.wav', in {project.path.parent} and its "
                           f"{', '.join(STEM_FOLDERS)} folders); bounce it there, or map it {hint} (null leaves it out)")


def open_project_stems(path: str | os.PathLike[str], *, map_file: str | os.PathLike[str] | None = None,
                       rate: int | None = None) -> tuple[StemFiles, StemMapping]:
    """A project's bounced stems as a stem set (named as their files are), each read at its gain
    into the mix and with the project's pan law for a mono stem, and the mapping
    (:func:`map_stems`) that says which track each is."""
    from faderwise.tools.stem_files import open_stem_files

    mapping = map_stems(read_project(path), map_file=map_file)
    gains = {stem: db_to_gain(mapping.above_db(stem)) for stem in mapping.files}
    return open_stem_files(Path(path), mapping.files, gains=gains, rate=rate,
                           pan_law_db=mapping.project.pan_law_db), mapping


def open_stems_and_mapping(path: str | os.PathLike[str], *, map_file: str | os.PathLike[str] | None = None,
                           pan_law_db: float | None = None) -> tuple[StemSource, StemMapping | None]:
    """Any stem set :func:`~faderwise.tools.stem_files.open_stem_set` opens, with the mapping of its
    tracks when ``path`` is a project (the commands and the chat show it). ``pan_law_db``: the
    level a mono stem of a folder plays at in a stereo set (a project says its own)."""
    if is_project_file(path):
        return open_project_stems(path, map_file=map_file)
    from faderwise.tools.stem_files import open_stem_set

    return open_stem_set(path, pan_law_db=pan_law_db), None
