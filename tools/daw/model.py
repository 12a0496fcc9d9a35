"""What faderwise reads of a DAW project: its tracks, their faders, how their audio reaches the
master, and where each fader's value is written in the file.

A track is its **position** in its project (:attr:`Track.number`, from 1; the master is 0) and
its id there (REAPER's track GUID, Ardour's route id), never its name: real projects repeat names
(``SEND``, ``Left``/``Right``, ``Violin I``). Where a name repeats, :attr:`Track.label` adds the
number (``SEND (track 3)``) and everything shown to a producer uses the label.

The readers (:mod:`faderwise.tools.daw.reaper`, :mod:`faderwise.tools.daw.ardour`) fill these;
:mod:`faderwise.tools.daw.mapping` maps tracks to bounced stems and
:mod:`faderwise.tools.daw.export` writes new projects by replacing only the characters of the
fader values it changes (:attr:`Track.span`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

TRACK = "track"
"""A track that plays audio (or MIDI) of its own."""
FOLDER = "folder"
"""A REAPER folder track: its children's audio goes through its fader."""
BUS = "bus"
"""An Ardour bus (or a REAPER track that only receives): audio sent to it goes through its fader."""
MASTER = "master"
MASTER_LABEL = "Master"
"""How the master fader is named to a producer; a track called so is labelled with its number."""


def gain_to_db(gain: float) -> float:
    """A linear gain (REAPER's volume, Ardour's gain coefficient) in dB; ``-inf`` for 0."""
    return 20.0 * math.log10(gain) if gain > 0 else -math.inf


def db_to_gain(db: float) -> float:
    """dB as a linear gain (amplitude ratio), the inverse of :func:`gain_to_db`."""
    return 10.0 ** (db / 20.0) if db != -math.inf else 0.0


@dataclass(frozen=True)
class Receive:
    """Audio a track receives from another track (REAPER's ``AUXRECV``).

    Attributes:
        source: the sending track's number.
        gain: the send's level as a linear gain (1.0 = 0 dB).
        mute: whether the send is muted.
        post_fader: whether the send taps the sender after its fader (REAPER mode 0); a pre-fader
            send (modes 1 and 3) does not follow the sender's fader.
    """

    source: int
    gain: float
    mute: bool = False
    post_fader: bool = True


@dataclass(frozen=True)
class Track:
    """One track (or folder, bus, the master) of a project.

    Attributes:
        name: the name shown in the DAW, exactly as the project holds it (data, never markup).
        number: its place in the DAW's track list from 1 (REAPER's OSC track number; 0 is the master).
        kind: :data:`TRACK`, :data:`FOLDER`, :data:`BUS` or :data:`MASTER`.
        gain: the fader as a linear gain (1.0 = 0 dB).
        mute: whether the track is muted.
        solo: whether the track is soloed.
        parent: the number of the folder or bus its audio goes through, if not straight to the master.
        automated: whether a volume envelope or gain automation plays back, overriding the fader.
        span: ``(start, end)`` characters of the fader value in the project's text; ``None`` when
            the file states no value (the DAW's default, 0 dB) or the faders were read live.
        ident: the DAW's own id of the track (REAPER's GUID ``{…}``, Ardour's route id), if any.
        main_send: whether its audio goes to its parent (or the master); REAPER's ``MAINSEND 0``
            turns that off, and the track is then heard only through the tracks that receive it.
        receives: audio it receives from other tracks.
        vca_db: the gain of the VCAs assigned to it, added up (dB; Ardour).
        vcas: the names of those VCAs.
        label: how the track is named to a producer: its name, with its number where another
            track of the project has the same name (set by :class:`Project`).
    """

    name: str
    number: int
    kind: str
    gain: float
    mute: bool = False
    solo: bool = False
    parent: int | None = None
    automated: bool = False
    span: tuple[int, int] | None = None
    ident: str | None = None
    main_send: bool = True
    receives: tuple[Receive, ...] = ()
    vca_db: float = 0.0
    vcas: tuple[str, ...] = ()
    label: str = ""

    @property
    def gain_db(self) -> float:
        return gain_to_db(self.gain)


def track_label(name: str, number: int) -> str:
    """``SEND (track 3)``: a track named with its number."""
    return f"{name} (track {number})"


def labelled(tracks: Iterable[Track]) -> tuple[Track, ...]:
    """``tracks`` with :attr:`Track.label` set: the name, or the name with the number where two
    tracks have the same name (compared as the producer reads them: case aside)."""
    tracks = tuple(tracks)
    counts = Counter(track.name.casefold() for track in tracks)
    return tuple(replace(track, label=track_label(track.name, track.number)
                         if counts[track.name.casefold()] > 1 or track.name.strip().casefold() in ("", MASTER_LABEL.casefold())
                         else track.name)
                 for track in tracks)


@dataclass(frozen=True)
class Project:
    """A DAW project as faderwise reads it.

    Attributes:
        path: the project file.
        daw: ``"reaper"`` or ``"ardour"``.
        version: the file format's version as the file states it.
        tracks: every track, folder and bus in the DAW's order (the master apart), labelled.
        master: the master fader, if the file has one.
        text: the file decoded (UTF-8, undecodable bytes kept as they are), for writing a copy.
        max_gain_db: the highest fader level the DAW takes.
        format_gain: writes a linear gain as the DAW writes it.
        live: for faders read from a running DAW (OSC), where they were read ("REAPER at
            127.0.0.1:8000"); ``path`` is then only a name.
        pan_law_db: the level a mono source plays at on each side of a stereo mix when centred
            (Ardour −3 dB; REAPER the project's ``PANLAW``, 0 dB by default), or ``None`` when
            the project does not say.
        left_out: ``(name, why)`` of each route that is not part of the mix and was left out
            (Ardour's monitor section and foldback buses).
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
    pan_law_db: float | None = None
    left_out: tuple[tuple[str, str], ...] = ()

    tracks_by_number: Mapping[int, Track] = field(init=False, repr=False, compare=False)
    """Every track (not the master) by its :attr:`Track.number`."""

    def __post_init__(self) -> None:
        if any(not track.label for track in self.tracks):
            object.__setattr__(self, "tracks", labelled(self.tracks))
        object.__setattr__(self, "tracks_by_number", MappingProxyType({track.number: track for track in self.tracks}))

    @property
    def daw_name(self) -> str:
        return {"reaper": "REAPER", "ardour": "Ardour"}[self.daw]

    @property
    def source(self) -> str:
        """What messages call the project: its file, or the running DAW it was read from."""
        return self.live or str(self.path)

    def track(self, number: int) -> Track:
        """The track at ``number`` (0: the master); :class:`KeyError` for no such track."""
        if number == 0 and self.master is not None:
            return self.master
        return self.tracks_by_number[number]

    def named(self, name: str) -> list[Track]:
        """The tracks called exactly ``name`` (names repeat: a list)."""
        return [track for track in self.tracks if track.name == name]

    def children(self, track: Track) -> list[Track]:
        return [child for child in self.tracks if child.parent == track.number and track.kind != MASTER]

    def ancestors(self, track: Track) -> list[Track]:
        """The folders or buses ``track`` plays through, innermost first."""
        found, parent, seen = [], track.parent, {track.number}
        while parent is not None and parent not in seen:  # a loop in a broken file ends here
            seen.add(parent)
            above = self.track(parent)
            found.append(above)
            parent = above.parent
        return found

    def senders(self, track: Track) -> list[tuple[Track, Receive]]:
        """The tracks that send to ``track``, with their sends."""
        return [(self.tracks_by_number[receive.source], receive) for receive in track.receives
                if receive.source in self.tracks_by_number]

    def receivers(self, track: Track) -> list[tuple[Track, Receive]]:
        """The tracks ``track`` sends to, with the sends."""
        return [(other, receive) for other in self.tracks for receive in other.receives
                if receive.source == track.number]
