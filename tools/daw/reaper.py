"""REAPER projects (``.RPP``): tracks, folders, faders, mute and solo, sends and receives.

An RPP file is text: one element per line, ``KEY value value …``; ``<KEY …`` opens a block that a
line ``>`` closes. Values are separated by spaces; one that holds spaces is quoted with ``"``, ``'``
or a backtick. Lines end at ``\\n`` (``\\r\\n`` on Windows) and nowhere else: a name may hold
U+2028 or other characters Python's ``splitlines`` would break at. The lines read here (REAPER's
project format 0.1, REAPER 4 to 7):

* ``<REAPER_PROJECT 0.1 "7.15/linux-x86_64" …`` — the header: format version, REAPER version.
  A UTF-8 byte-order mark, and comment lines before it (ReaPack's ``@noindex``, ``@version 1.0``
  in shared templates), are passed over.
* ``MASTER_VOLUME vol pan …`` and ``MASTERMUTESOLO m`` (bit 1 mute, bit 2 solo) — the master;
  ``PANLAW gain`` — the project's pan law as a linear gain (1 = 0 dB, REAPER's default;
  0.70794578 = −3 dB): a centred mono source plays at this level on each side.
* ``<TRACK {GUID}`` blocks at the top level, in the mixer's order (a track is its position, and
  its GUID; names repeat in real projects), each with ``NAME``, ``VOLPAN vol pan width …``
  (``vol`` is the fader as a linear gain, 1 = 0 dB; a track without the line, as some generated
  projects have, is at 0 dB and cannot be moved in a copy), ``MUTESOLO mute solo …``, ``ISBUS
  flag depth`` (``depth`` +1 opens a folder with this track as its parent, −n closes n folders
  after this track; before REAPER 4 one field: ``ISBUS 1`` opens, ``ISBUS 2`` closes one),
  ``MAINSEND on channel`` (``0``: the track does not feed its parent or the master, only the
  tracks that receive it) and ``AUXRECV source mode vol pan mute …`` (this track receives track
  ``source`` — from 0 — at linear gain ``vol``; mode 0 after the sender's fader, 1 and 3 before it).
* ``<VOLENV2`` inside a track — its volume envelope; ``ACT 1`` with points means it plays back and
  the fader's static value is overridden.

Names are decoded as UTF-8; REAPER on Windows before version 5 wrote them in the system code page,
so a name that is not UTF-8 is read as Windows-1252. Writing a copy replaces only the characters
of the ``vol`` value (:attr:`Track.span`); every other byte stays.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

from faderwise.tools.daw.model import FOLDER, MASTER, MASTER_LABEL, TRACK, Project, Receive, Track, gain_to_db
from faderwise.tools.errors import ProjectError

FORMAT_VERSION = "0.1"
MAX_GAIN_DB = 12.0
"""The top of REAPER's volume fader in its default preferences (Appearance: volume fader range +12 dB)."""
HEADER = "<REAPER_PROJECT"
MAX_LINES_BEFORE_HEADER = 40
"""Comment lines (ReaPack's ``@noindex``…) taken before the header; more is not a project."""
POST_FADER_MODE = 0
"""AUXRECV mode 0: the send taps the sender after its fader (1: before its effects, 3: after them,
both before the fader)."""

_TOKEN = re.compile(r'"([^"]*)"|\'([^\']*)\'|`([^`]*)`|([^ \t\r\n]+)')
_QUOTES = "\"'`"


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


def _name(line: str) -> str:
    """The value of a ``NAME`` line, whole: quoted or not, whatever characters it holds (only
    spaces, tabs and the line end around it are dropped); bytes that were not UTF-8 are read as
    Windows-1252."""
    rest = line.lstrip(" \t")[len("NAME"):].strip(" \t\r\n")
    if len(rest) >= 2 and rest[0] in _QUOTES and rest[-1] == rest[0]:
        rest = rest[1:-1]
    return _code_page(rest)


def _code_page(text: str) -> str:
    """``text`` with each byte that was not UTF-8 (kept as a surrogate when the file was decoded)
    read as Windows-1252 (Latin-1 where that code page has no character); UTF-8 around it stays."""
    def character(char: str) -> str:
        if not "\udc80" <= char <= "\udcff":
            return char
        byte = bytes([ord(char) - 0xDC00])
        try:
            return byte.decode("cp1252")
        except UnicodeDecodeError:
            return byte.decode("latin-1")

    return "".join(character(char) for char in text) if any("\udc80" <= c <= "\udcff" for c in text) else text


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


def _lines(text: str) -> list[str]:
    """The file's lines, each with its ``\\n``: lines end there and nowhere else."""
    lines = text.split("\n")
    ended = [line + "\n" for line in lines[:-1]]
    return [*ended, lines[-1]] if lines[-1] else ended


def _header_index(lines: list[str], path: Path) -> int:
    """Which line holds ``<REAPER_PROJECT``: the first, after a byte-order mark and any comment
    lines a shared template carries before it."""
    for index, line in enumerate(lines[:MAX_LINES_BEFORE_HEADER + 1]):
        stripped = line.lstrip("\ufeff").strip()
        if stripped.startswith(HEADER):
            return index
        if stripped.startswith(("<", ">")):
            break
    raise ProjectError(f"{path}: not a REAPER project (no <REAPER_PROJECT …> line at its start)")


def read_reaper(path: Path, text: str) -> Project:
    """The tracks of a REAPER project whose file ``path`` holds ``text``.

    Raises:
        ProjectError: not a REAPER project, another format version, a block left open (a
            truncated file), a fader value that is not a number.
    """
    lines = _lines(text)
    first_index = _header_index(lines, path)
    offset = sum(len(line) for line in lines[:first_index])
    header = _tokens(lines[first_index].lstrip("\ufeff"), 0)
    version = header[1][0] if len(header) > 1 else "?"
    if version != FORMAT_VERSION:
        raise ProjectError(f"{path}: REAPER project format {version!r} is not one faderwise knows "
                           f"(it reads format {FORMAT_VERSION}, written by REAPER 4 to 7)")
    tracks: list[Track] = []
    master: Track | None = None
    master_mute = master_solo = False
    pan_law_db: float | None = None
    depth = 0  # blocks open
    current: dict[str, object] | None = None
    envelope: dict[str, object] | None = None
    folders: list[int] = []
    for line_no, line in enumerate(lines[first_index:], start=first_index + 1):
        start = offset
        offset += len(line)
        stripped = line.lstrip("\ufeff").strip(" \t\r\n")
        if not stripped:
            continue
        tokens = _tokens(line, start)
        key = tokens[0][0].lstrip("\ufeff")
        if stripped.startswith("<"):
            depth += 1
            if depth == 2 and key == "<TRACK":
                current = {"number": len(tracks) + 1, "name": "", "gain": 1.0, "span": None, "mute": False,
                           "solo": False, "depth": 0, "automated": False, "line": line_no,
                           "ident": tokens[1][0] if len(tokens) > 1 else None, "main_send": True, "receives": []}
            elif depth == 3 and current is not None and key == "<VOLENV2":
                envelope = {"active": False, "points": 0}
            continue
        if stripped == ">":
            if depth == 3 and envelope is not None and current is not None:
                current["automated"] = bool(envelope["active"] and envelope["points"])
                envelope = None
            elif depth == 2 and current is not None:
                tracks.append(_track(current, folders))
                current = None
            depth -= 1
            if depth < 0:
                raise ProjectError(f"{path}: line {line_no}: a '>' closes a block that was never opened")
            continue
        values = tokens[1:]
        if depth == 1 and key == "MASTER_VOLUME" and values:
            gain = _gain(values[0][0], path, line_no, key)
            master = Track(name="Master", number=0, kind=MASTER, gain=gain, span=(values[0][1], values[0][2]),
                           label=MASTER_LABEL)
        elif depth == 1 and key == "MASTERMUTESOLO" and values:
            flags = int(_number(values[0][0], path, line_no, key))
            master_mute, master_solo = bool(flags & 1), bool(flags & 2)
        elif depth == 1 and key == "PANLAW" and values:
            pan_law_db = gain_to_db(_gain(values[0][0], path, line_no, key))
        elif depth == 2 and current is not None:
            _track_line(current, key, values, line, path, line_no)
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
    if pan_law_db is not None and not math.isfinite(pan_law_db):
        pan_law_db = None
    return Project(path=path, daw="reaper", version=version, tracks=_with_folders(tracks), master=master, text=text,
                   max_gain_db=MAX_GAIN_DB, format_gain=format_gain, pan_law_db=pan_law_db if pan_law_db is not None
                   else 0.0)


def _track_line(current: dict[str, object], key: str, values: list[tuple[str, int, int]], line: str, path: Path,
                line_no: int) -> None:
    """One line inside a ``<TRACK`` block, into ``current``."""
    if key == "NAME" and values:
        current["name"] = _name(line)
    elif key == "TRACKID" and values:
        current["ident"] = values[0][0]
    elif key == "VOLPAN" and values:
        current["gain"] = _gain(values[0][0], path, line_no, key)
        current["span"] = (values[0][1], values[0][2])
    elif key == "MUTESOLO" and len(values) >= 2:
        current["mute"] = _number(values[0][0], path, line_no, key) != 0
        current["solo"] = _number(values[1][0], path, line_no, key) != 0
    elif key == "ISBUS" and values:
        flag = int(_number(values[0][0], path, line_no, key))
        # REAPER 4 on: "ISBUS flag depth"; before it one field, 1 opening a folder and 2 closing one
        current["depth"] = int(_number(values[1][0], path, line_no, key)) if len(values) >= 2 else \
            {1: 1, 2: -1}.get(flag, 0)
    elif key == "MAINSEND" and values:
        current["main_send"] = _number(values[0][0], path, line_no, key) != 0
    elif key == "AUXRECV" and len(values) >= 5:
        source = int(_number(values[0][0], path, line_no, key))
        mode = int(_number(values[1][0], path, line_no, key))
        current["receives"].append(Receive(  # type: ignore[attr-defined]
            source=source + 1, gain=_gain(values[2][0], path, line_no, key),
            mute=_number(values[4][0], path, line_no, key) != 0, post_fader=mode == POST_FADER_MODE))


def _track(current: dict[str, object], folders: list[int]) -> Track:
    """The track just closed; ``folders`` (the open folders' numbers, innermost last) is updated."""
    number = int(current["number"])  # type: ignore[call-overload]
    name = str(current["name"])
    track = Track(name=name or f"Track {number}",  # REAPER shows an unnamed track by its number
                  number=number, kind=TRACK, gain=float(current["gain"]),  # type: ignore[arg-type]
                  mute=bool(current["mute"]), solo=bool(current["solo"]), parent=folders[-1] if folders else None,
                  automated=bool(current["automated"]), span=current["span"],  # type: ignore[arg-type]
                  ident=current["ident"], main_send=bool(current["main_send"]),  # type: ignore[arg-type]
                  receives=tuple(current["receives"]))  # type: ignore[call-overload]
    depth = int(current["depth"])  # type: ignore[call-overload]
    if depth > 0:
        folders.append(number)
    for _ in range(-depth):
        if folders:
            folders.pop()
    return track


def _with_folders(tracks: list[Track]) -> list[Track]:
    """Tracks that are some track's parent become :data:`FOLDER`."""
    parents = {track.parent for track in tracks}
    return [replace(track, kind=FOLDER) if track.number in parents else track for track in tracks]
