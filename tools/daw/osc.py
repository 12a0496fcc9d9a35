"""A running DAW's faders over OSC (UDP): read them, move them, put them back.

The addresses are each DAW's own:

* **REAPER** (its ``Default.ReaperOSC`` patterns ``DEVICE_TRACK_COUNT i/device/track/count``,
  ``DEVICE_TRACK_BANK_SELECT i/device/track/bank/select``, ``ACTION i/action``, ``TRACK_NAME s/track/@/name`` and ``TRACK_VOLUME f/track/@/volume/db``;
  a control surface "OSC" listening on a port, 8000 by default, and sending to this machine's
  port, 9000 by default): ``/device/track/count i`` and ``/device/track/bank/select 1`` make
  the surface's bank hold every track from the first (track numbers are the bank's), ``/action i 41743`` ("Control surface: refresh all surfaces")
  makes REAPER send each track's ``/track/N/name s`` and ``/track/N/volume/db f``; a fader is set
  with ``/track/N/volume/db f``.
* **Ardour** (Preferences → Control Surfaces → OSC, port 3819). Its replies go, in its default
  port mode "Manual", to port 8000 of the asking host (``remote-port="8000"``), and in "Auto" to
  the port a request came from: faderwise listens on 8000 and sends from that same port, so both
  modes answer it. ``/set_surface i i i i`` (bank size 0 = every strip, strip types tracks and buses,
  feedback 3 = buttons and strip values, gain mode 0 = dB) makes Ardour send ``/strip/name i s``
  and ``/strip/gain i f`` for every strip; a fader is set with ``/strip/gain i f`` (−193 dB is −inf).

What is read is a :class:`~faderwise.tools.daw.model.Project` with ``live`` set, so the same
planning as an exported project applies (:func:`faderwise.tools.daw.project.plan_fader_moves`).
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket, ParseError

from faderwise.tools.daw import ardour, reaper
from faderwise.tools.daw.model import TRACK, Project, Track, db_to_gain
from faderwise.tools.errors import DawConnectionError

ARDOUR_REPLY_PORT = 8000
"""Where Ardour's OSC replies by default (port mode "Manual", reply port 8000)."""
ARDOUR_SILENCE_DB = -193.0
"""Ardour's OSC gain for −inf (its fader's bottom)."""
REAPER_REFRESH_ACTION = 41743
REAPER_BANK_SIZE = 1024
ARDOUR_STRIP_TYPES = 1 | 2 | 4 | 8  # audio tracks, MIDI tracks, audio buses, MIDI buses
ARDOUR_FEEDBACK = 1 | 2  # button status, strip controls (gain)
QUIET_S = 0.25
"""Replies are complete when none has come for this long."""
VERIFY_TOLERANCE_DB = 0.05


@dataclass(frozen=True)
class Dialect:
    """One DAW's OSC: its name, default ports, the messages that ask for every fader, how a
    reply names a track or reports its level, and the message that sets a fader."""

    daw: str
    name: str
    port: int
    listen_port: int | None
    max_gain_db: float
    ask: Callable[[], list[tuple[str, list[tuple[Any, str]]]]]
    read_reply: Callable[[str, list[Any]], tuple[int, str, Any] | None]
    set_level: Callable[[int, float], tuple[str, list[tuple[Any, str]]]]
    reply_setting: str = ""
    """Where the DAW sets the port its replies go to, said when none comes."""


def _reaper_reply(address: str, params: list[Any]) -> tuple[int, str, Any] | None:
    parts = address.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "track" and parts[1].isdigit() and params:
        field = "/".join(parts[2:])
        if field in ("name", "volume/db"):
            return int(parts[1]), "name" if field == "name" else "db", params[0]
    return None


def _ardour_reply(address: str, params: list[Any]) -> tuple[int, str, Any] | None:
    if address in ("/strip/name", "/strip/gain") and len(params) >= 2 and isinstance(params[0], int):
        value = params[1]
        if address == "/strip/gain" and isinstance(value, (int, float)) and value <= ARDOUR_SILENCE_DB:
            value = -math.inf
        return params[0], "name" if address == "/strip/name" else "db", value
    return None


REAPER = Dialect(
    daw="reaper", name="REAPER", port=8000, listen_port=9000, max_gain_db=reaper.MAX_GAIN_DB,
    # the bank holds every track and starts at the first, so track numbers are the project's own
    ask=lambda: [("/device/track/count", [(REAPER_BANK_SIZE, "i")]), ("/device/track/bank/select", [(1, "i")]),
                 ("/action", [(REAPER_REFRESH_ACTION, "i")])],
    read_reply=_reaper_reply,
    set_level=lambda number, db: (f"/track/{number}/volume/db", [(db, "f")]),
    reply_setting=("REAPER sends its replies to the device port of its OSC control surface (Preferences → Control/"
                   "OSC/web → OSC: 'Device port', 9000 by default): --listen takes that port"),
)
ARDOUR = Dialect(
    daw="ardour", name="Ardour", port=3819, listen_port=ARDOUR_REPLY_PORT, max_gain_db=ardour.MAX_GAIN_DB,
    ask=lambda: [("/set_surface", [(0, "i"), (ARDOUR_STRIP_TYPES, "i"), (ARDOUR_FEEDBACK, "i"), (0, "i")])],
    read_reply=_ardour_reply,
    set_level=lambda number, db: ("/strip/gain", [(number, "i"), (max(db, ARDOUR_SILENCE_DB), "f")]),
    reply_setting=(f"Ardour sends its replies where its OSC setup's 'Port Mode' says: 'Manual' (the default) to its "
                   f"'Reply Manual Port', {ARDOUR_REPLY_PORT} by default, 'Auto' to the port asked from; --listen takes "
                   "the manual port"),
)
DIALECTS = {"reaper": REAPER, "ardour": ARDOUR}


def _datagram(address: str, args: list[tuple[Any, str]]) -> bytes:
    builder = OscMessageBuilder(address)
    for value, kind in args:
        builder.add_arg(value, kind)
    return builder.build().dgram


class OscDaw:
    """A running DAW reached over OSC: ``with OscDaw("reaper", host, port) as daw: daw.faders()``.

    Args:
        daw: ``"reaper"`` or ``"ardour"``.
        host: where the DAW runs.
        port: the port it listens on (default: the DAW's own default).
        listen_port: the port its replies come to, and requests are sent from (REAPER: the
            one set in its control surface, default 9000; Ardour: 8000, its default reply port,
            which its "Auto" port mode answers too, as the port asked from).
        timeout: seconds to wait for the first reply.
    """

    def __init__(self, daw: str, host: str = "127.0.0.1", port: int | None = None, *,
                 listen_port: int | None = None, timeout: float = 2.0) -> None:
        self.dialect = DIALECTS[daw]
        self.host = host
        self.port = port or self.dialect.port
        self.listen_port = listen_port if listen_port is not None else self.dialect.listen_port
        self.timeout = timeout
        self._socket: socket.socket | None = None
        self._address: tuple[Any, ...] | None = None

    @property
    def where(self) -> str:
        return f"{self.dialect.name} at {self.host}:{self.port}"

    def __enter__(self) -> OscDaw:
        try:
            info = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise DawConnectionError(f"{self.host}: unknown host ({exc.strerror}); give --host the machine "
                                     f"{self.dialect.name} runs on") from None
        family, _, _, _, self._address = info
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", self.listen_port or 0))
        except OSError as exc:
            sock.close()
            raise DawConnectionError(f"cannot listen for {self.dialect.name}'s replies on port {self.listen_port}: "
                                     f"{exc.strerror or exc}; is another program using it? (--listen PORT)") from None
        self._socket = sock
        return self

    def __exit__(self, *exc: object) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def send(self, address: str, args: list[tuple[Any, str]]) -> None:
        assert self._socket is not None and self._address is not None, "use OscDaw in a with block"
        try:
            self._socket.sendto(_datagram(address, args), self._address)
        except OSError as exc:
            raise DawConnectionError(f"{self.where}: cannot send to it ({exc.strerror or exc})") from None

    def _replies(self, wait: Callable[[], float]) -> Iterator[tuple[str, list[Any]]]:
        """Messages as they arrive, each waited for at most ``wait()`` seconds (asked again before
        each one; nothing more is read once it is 0 or less)."""
        assert self._socket is not None
        while (seconds := wait()) > 0:
            self._socket.settimeout(seconds)
            try:
                data, _ = self._socket.recvfrom(65536)
            except TimeoutError:
                return
            except OSError as exc:  # ICMP "port unreachable" on some systems
                raise DawConnectionError(f"{self.where}: {exc.strerror or exc}; is {self.dialect.name} running with "
                                         "OSC enabled?") from None
            try:
                packet = OscPacket(data)
            except ParseError:
                continue
            for timed in packet.messages:
                yield timed.message.address, list(timed.message.params)

    def faders(self) -> Project:
        """Every track's name and fader as the DAW reports them now: what comes until no name or
        level has come for :data:`QUIET_S` (meters and other feedback, which a playing DAW sends
        without end, do not count), or until ``timeout`` when none comes.

        Raises:
            DawConnectionError: no reply within ``timeout``, or no track named in the replies.
        """
        started = time.monotonic()
        last_fader: list[float] = []  # when the latest name or level came

        def wait() -> float:
            return (last_fader[-1] + QUIET_S if last_fader else started + self.timeout) - time.monotonic()

        for address, args in self.dialect.ask():
            self.send(address, args)
        names: dict[int, str] = {}
        levels: dict[int, float] = {}
        heard = False
        for address, params in self._replies(wait):
            heard = True
            reply = self.dialect.read_reply(address, params)
            if reply is None:
                continue
            number, field, value = reply
            if field == "name" and isinstance(value, str):
                names[number] = value
            elif field == "db" and isinstance(value, (int, float)):
                levels[number] = float(value)
            last_fader[:] = [time.monotonic()]
        listen = f" (listening on port {self._socket.getsockname()[1]} for its replies)" if self._socket else ""
        if not heard:
            raise DawConnectionError(f"{self.where}: no answer within {self.timeout:g} s{listen}; is {self.dialect.name} "
                                     f"running with OSC enabled on port {self.port}? {self.dialect.reply_setting}")
        tracks = tuple(Track(name=names[number], number=number, kind=TRACK, gain=db_to_gain(levels[number]))
                       for number in sorted(names) if number in levels and number > 0)
        if not tracks:
            raise DawConnectionError(f"{self.where}: answered, but named no track with a fader level{listen}")
        return Project(path=Path(f"{self.dialect.daw}-{self.host}-{self.port}"), daw=self.dialect.daw, version="osc",
                       tracks=tracks, master=None, text="", max_gain_db=self.dialect.max_gain_db,
                       format_gain=str, live=self.where)

    def set_levels(self, levels: Mapping[int, float]) -> None:
        """Set each track's (by number) fader to its dB."""
        for number, db in levels.items():
            self.send(*self.dialect.set_level(number, db))


def levels_differing(project: Project, wanted: Mapping[int, float]) -> dict[int, float]:
    """Tracks of ``project`` whose fader is not at ``wanted`` (track number → dB) within
    :data:`VERIFY_TOLERANCE_DB`: their level now (NaN for a track no longer there)."""
    now = {track.number: track.gain_db for track in project.tracks}
    return {number: now.get(number, math.nan) for number, db in wanted.items()
            if not (number in now and (now[number] == db or abs(now[number] - db) <= VERIFY_TOLERANCE_DB))}

