"""REAPER projects (``.RPP``): tracks, folders, faders, mute and solo.

An RPP file is text: one element per line, ``KEY value value …``; ``<KEY …`` opens a block that a
line ``>`` closes. Values are separated by spaces; one that holds spaces is quoted with ``"``, ``'``
or a backtick. The lines read here (REAPER's project format 0.1, REAPER 4 to 7):

* ``<REAPER_PROJECT 0.1 "7.15/linux-x86_64" …`` — the first line: format version, REAPER version.
* ``MASTER_VOLUME vol pan …`` and ``MASTERMUTESOLO m`` (bit 1 mute, bit 2 solo) — the master.
* ``<TRACK`` blocks at the top level, in the mixer's order, each with ``NAME``, ``VOLPAN vol pan
  width …`` (``vol`` is the fader as a linear gain, 1 = 0 dB; a track without the line, as some
  generated projects have, is at 0 dB and cannot be moved in a copy), ``MUTESOLO mute solo …`` and
  ``ISBUS flag depth`` (``depth`` +1 opens a folder with this track as its parent, −n closes n
  folders after this track).
* ``<VOLENV2`` inside a track — its volume envelope; ``ACT 1`` with points means it plays back and
  the fader's static value is overridden.

Writing a copy replaces only the characters of the ``vol`` value (:attr:`Track.span`).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

from faderwise.tools.errors import ProjectError
from faderwise.tools.project_model import FOLDER, MASTER, TRACK, Project, Track

FORMAT_VERSION = "0.1"
MAX_GAIN_DB = 12.0
"""The top of REAPER's volume fader in its default preferences (Appearance: volume fader range +12 dB)."""

_TOKEN = re.compile(r'"([^"]*)"|\'([^\']*)\'|`([^`]*)`|(\S+)')


def format_gain(gain: float) -> str:
    """A linear gain as REAPER writes it: fourteen decimals, trailing zeros dropped (``1``,
    ``0.70794578438414``)."""
    text = f"{gain:.14f}".rstrip("0").rstrip(".")
    return text or "0"


def _tokens(line: str, offset: int) -> list[tuple[str, int, int]]:
    """The values of one line: ``(text, start, end)`` with ``start``/``end`` in the file."""
    found = []
    for match in _TOKEN.finditer(line):
        group = next(index for index in range(1, 5) if match.group(index) is not None)
        found.append((match.group(group), offset + match.start(group), offset + match.end(group)))
    return found


def _number(text: str, path: Path, line_no: int, key: str) -> float:
    """A finite number, or :class:`ProjectError` naming the line."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ProjectError(f"{path}: line {line_no}: {key} holds {text!r}, not a number")
    return value


def _gain(text: str, path: Path, line_no: int, key: str) -> float:
    """A fader's linear gain: a finite number from 0 up."""
    value = _number(text, path, line_no, key)
    if value < 0:
        raise ProjectError(f"{path}: line {line_no}: {key} holds {text!r}, not a fader gain (0 or more)")
    return value


def read_reaper(path: Path, text: str) -> Project:
    """The tracks of a REAPER project whose file ``path`` holds ``text``.

    Raises:
        ProjectError: not a REAPER project, another format version, a block left open (a
            truncated file), a fader value that is not a number.
    """
    lines = text.splitlines(keepends=True)
    first = lines[0].strip() if lines else ""
    if not first.startswith("<REAPER_PROJECT"):
        raise ProjectError(f"{path}: not a REAPER project (the first line is not <REAPER_PROJECT …>)")
    header = _tokens(first, 0)
    version = header[1][0] if len(header) > 1 else "?"
    if version != FORMAT_VERSION:
        raise ProjectError(f"{path}: REAPER project format {version!r} is not one faderwise knows "
                           f"(it reads format {FORMAT_VERSION}, written by REAPER 4 to 7)")
    tracks: list[Track] = []
    master: Track | None = None
    master_mute = master_solo = False
    depth = 0  # blocks open
    current: dict[str, object] | None = None
    envelope: dict[str, object] | None = None
    folders: list[str] = []
    offset = 0
    for line_no, line in enumerate(lines, start=1):
        start = offset
        offset += len(line)
        stripped = line.strip()
        if not stripped:
            continue
        tokens = _tokens(line, start)
        key = tokens[0][0]
        if stripped.startswith("<"):
            depth += 1
            if depth == 2 and key == "<TRACK":
                current = {"number": len(tracks) + 1, "name": "", "gain": 1.0, "span": None, "mute": False,
                           "solo": False, "depth": 0, "automated": False, "line": line_no}
            elif depth == 3 and current is not None and key == "<VOLENV2":
                envelope = {"active": False, "points": 0}
            continue
        if stripped == ">":
            if depth == 3 and envelope is not None and current is not None:
                current["automated"] = bool(envelope["active"] and envelope["points"])
                envelope = None
            elif depth == 2 and current is not None:
                tracks.append(_track(current, folders, path))
                current = None
            depth -= 1
            if depth < 0:
                raise ProjectError(f"{path}: line {line_no}: a '>' closes a block that was never opened")
            continue
        values = tokens[1:]
        if depth == 1 and key == "MASTER_VOLUME" and values:
            gain = _gain(values[0][0], path, line_no, key)
            master = Track(name="Master", number=0, kind=MASTER, gain=gain, span=(values[0][1], values[0][2]))
        elif depth == 1 and key == "MASTERMUTESOLO" and values:
            flags = int(_number(values[0][0], path, line_no, key))
            master_mute, master_solo = bool(flags & 1), bool(flags & 2)
        elif depth == 2 and current is not None:
            if key == "NAME" and values:
                current["name"] = values[0][0]
            elif key == "VOLPAN" and values:
                current["gain"] = _gain(values[0][0], path, line_no, key)
                current["span"] = (values[0][1], values[0][2])
            elif key == "MUTESOLO" and len(values) >= 2:
                current["mute"] = _number(values[0][0], path, line_no, key) != 0
                current["solo"] = _number(values[1][0], path, line_no, key) != 0
            elif key == "ISBUS" and len(values) >= 2:
                current["depth"] = int(_number(values[1][0], path, line_no, key))
        elif depth == 3 and envelope is not None:
            if key == "ACT" and values:
                envelope["active"] = values[0][0] == "1"
            elif key == "PT":
                envelope["points"] = int(envelope["points"]) + 1  # type: ignore[call-overload]
    if depth != 0:
        raise ProjectError(f"{path}: the file ends inside an open block (truncated?): {depth} "
                           f"'<' block{'s' if depth > 1 else ''} never closed")
    if master is not None:
        master = replace(master, mute=master_mute, solo=master_solo)
    tracks = _with_folders(tracks)
    return Project(path=path, daw="reaper", version=version, tracks=tuple(tracks), master=master, text=text,
                   max_gain_db=MAX_GAIN_DB, format_gain=format_gain)


def _track(current: dict[str, object], folders: list[str], path: Path) -> Track:
    """The track just closed; ``folders`` (the open folders' names, innermost last) is updated."""
    name = str(current["name"]) or f"Track {current['number']}"  # REAPER shows an unnamed track by its number
    track = Track(name=name, number=int(current["number"]), kind=TRACK,  # type: ignore[call-overload]
                  gain=float(current["gain"]), mute=bool(current["mute"]),  # type: ignore[arg-type]
                  solo=bool(current["solo"]), parent=folders[-1] if folders else None,
                  automated=bool(current["automated"]), span=current["span"])  # type: ignore[arg-type]
    depth = int(current["depth"])  # type: ignore[call-overload]
    if depth > 0:
        folders.append(name)
    for _ in range(-depth):
        if folders:
            folders.pop()
    return track


def _with_folders(tracks: list[Track]) -> list[Track]:
    """Tracks that are some track's parent become :data:`FOLDER`."""
    parents = {track.parent for track in tracks}
    return [replace(track, kind=FOLDER) if track.name in parents else track for track in tracks]
