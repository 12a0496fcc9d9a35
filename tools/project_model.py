"""What faderwise reads of a DAW project: its tracks, their faders, and where each fader's value
is written in the file.

The readers (:mod:`faderwise.tools.reaper_project`, :mod:`faderwise.tools.ardour_session`) fill
these; :mod:`faderwise.tools.daw_project` maps tracks to bounced stems and writes new projects by
replacing only the characters of the fader values it changes (:attr:`Track.span`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TRACK = "track"
"""A track that plays audio (or MIDI) of its own."""
FOLDER = "folder"
"""A REAPER folder track: its children's audio goes through its fader."""
BUS = "bus"
"""An Ardour bus (or a REAPER track that only receives): audio sent to it goes through its fader."""
MASTER = "master"


def gain_to_db(gain: float) -> float:
    """A linear gain (REAPER's volume, Ardour's gain coefficient) in dB; ``-inf`` for 0."""
    return 20.0 * math.log10(gain) if gain > 0 else -math.inf


def db_to_gain(db: float) -> float:
    """dB as a linear gain (amplitude ratio), the inverse of :func:`gain_to_db`."""
    return 10.0 ** (db / 20.0) if db != -math.inf else 0.0


@dataclass(frozen=True)
class Track:
    """One track (or folder, bus, the master) of a project.

    Attributes:
        name: the name shown in the DAW.
        number: its place in the DAW's track list from 1 (REAPER's OSC track number; 0 is the master).
        kind: :data:`TRACK`, :data:`FOLDER`, :data:`BUS` or :data:`MASTER`.
        gain: the fader as a linear gain (1.0 = 0 dB).
        mute: whether the track is muted.
        solo: whether the track is soloed.
        parent: the folder or bus its audio goes through (by name), if not straight to the master.
        automated: whether a volume envelope or gain automation plays back, overriding the fader.
        span: ``(start, end)`` characters of the fader value in the project's text; ``None`` when
            the file states no value (the DAW's default, 0 dB) or the faders were read live.
    """

    name: str
    number: int
    kind: str
    gain: float
    mute: bool = False
    solo: bool = False
    parent: str | None = None
    automated: bool = False
    span: tuple[int, int] | None = None

    @property
    def gain_db(self) -> float:
        return gain_to_db(self.gain)


@dataclass(frozen=True)
class Project:
    """A DAW project as faderwise reads it.

    Attributes:
        path: the project file.
        daw: ``"reaper"`` or ``"ardour"``.
        version: the file format's version as the file states it.
        tracks: every track, folder and bus in the DAW's order (the master apart).
        master: the master fader, if the file has one.
        text: the file decoded (UTF-8, undecodable bytes kept as they are), for writing a copy.
        max_gain_db: the highest fader level the DAW takes.
        format_gain: writes a linear gain as the DAW writes it.
        live: for faders read from a running DAW (OSC), where they were read ("REAPER at
            127.0.0.1:8000"); ``path`` is then only a name.
    """

    path: Path
    daw: str
    version: str
    tracks: tuple[Track, ...]
    master: Track | None
    text: str = field(repr=False)
    max_gain_db: float
    format_gain: Callable[[float], str] = field(repr=False)
    live: str | None = None

    @property
    def daw_name(self) -> str:
        return {"reaper": "REAPER", "ardour": "Ardour"}[self.daw]

    @property
    def source(self) -> str:
        """What messages call the project: its file, or the running DAW it was read from."""
        return self.live or str(self.path)

    def track(self, name: str) -> Track:
        return next(track for track in self.tracks if track.name == name)

    def children(self, name: str) -> list[Track]:
        return [track for track in self.tracks if track.parent == name]

    def ancestors(self, track: Track) -> list[Track]:
        found, parent = [], track.parent
        while parent is not None:
            above = self.track(parent)
            found.append(above)
            parent = above.parent
        return found
