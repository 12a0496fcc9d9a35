"""Stand-ins for REAPER's and Ardour's OSC control surfaces, on local UDP ports.

Each holds a mixer (track number → name, fader dB) and plays the DAW's side as strictly as the
real one: a message with an address the DAW does not know, or arguments of the wrong OSC types
(an int where a float is expected), changes nothing and is recorded in :attr:`rejected`, which
the tests require to stay empty. Replies go where the DAW sends them: REAPER to its configured
device port, Ardour to the address the request came from.
"""

from __future__ import annotations

import re
import socket
import threading
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.parsing import osc_types


def parse(dgram: bytes) -> tuple[str, str, list[Any]]:
    """Address, type tags (without the comma) and arguments of one OSC message."""
    address, index = osc_types.get_string(dgram, 0)
    tags, index = osc_types.get_string(dgram, index) if index < len(dgram) else (",", index)
    args: list[Any] = []
    for tag in tags[1:]:
        if tag == "i":
            value, index = osc_types.get_int(dgram, index)
        elif tag == "f":
            value, index = osc_types.get_float(dgram, index)
        elif tag == "s":
            value, index = osc_types.get_string(dgram, index)
        else:
            raise ValueError(f"type {tag!r} not expected")
        args.append(value)
    return address, tags[1:], args


def message(address: str, *args: tuple[Any, str]) -> bytes:
    builder = OscMessageBuilder(address)
    for value, kind in args:
        builder.add_arg(value, kind)
    return builder.build().dgram


class StandInDaw:
    """A DAW's OSC surface in a thread: ``with StandInReaper(tracks) as daw: … daw.port``."""

    name = "daw"
    max_db = 12.0
    min_db = -150.0

    def __init__(self, tracks: dict[int, tuple[str, float]], *, answer: bool = True) -> None:
        self.tracks = {number: [name, db] for number, (name, db) in tracks.items()}
        self.answer = answer
        self.received: list[tuple[str, str, list[Any]]] = []
        self.rejected: list[str] = []
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = threading.Event()

    def __enter__(self) -> StandInDaw:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.socket.sendto(b"", ("127.0.0.1", self.port))
        self._thread.join(timeout=2)
        self.socket.close()

    def levels(self) -> dict[str, float]:
        return {name: db for name, db in self.tracks.values()}

    def _serve(self) -> None:
        while not self._stop.is_set():
            data, sender = self.socket.recvfrom(65536)
            if self._stop.is_set() or not data:
                continue
            try:
                address, tags, args = parse(data)
            except (ValueError, osc_types.ParseError) as exc:
                self.rejected.append(f"unparsable: {exc}")
                continue
            self.received.append((address, tags, args))
            if not self.handle(address, tags, args, sender):
                self.rejected.append(f"{address} ,{tags} {args}")

    def reply(self, to: tuple[str, int], *messages: bytes) -> None:
        if self.answer:
            for each in messages:
                self.socket.sendto(each, to)

    def handle(self, address: str, tags: str, args: list[Any], sender: tuple[str, int]) -> bool:
        raise NotImplementedError


class StandInReaper(StandInDaw):
    """REAPER with Default.ReaperOSC: feedback to the device port set in its control surface."""

    name = "REAPER"

    def __init__(self, tracks: dict[int, tuple[str, float]], *, device_port: int, answer: bool = True,
                 playing: bool = False) -> None:
        super().__init__(tracks, answer=answer)
        self.device_port = device_port
        self.bank_size = 8  # REAPER's default surface bank
        self.bank = 2  # the producer scrolled the surface: track numbers are the bank's
        self.playing = playing  # while playing, REAPER sends every track's meter without end

    def __enter__(self) -> StandInReaper:
        super().__enter__()
        if self.playing:
            threading.Thread(target=self._meters, daemon=True).start()
        return self

    def _meters(self) -> None:
        while not self._stop.wait(0.01):
            for number in range(1, self.bank_size + 1):
                try:
                    self.reply(("127.0.0.1", self.device_port), message(f"/track/{number}/vu", (0.5, "f")))
                except OSError:  # the stand-in closed its socket between the wait and the send
                    return

    def _offset(self) -> int:
        return (self.bank - 1) * self.bank_size

    def _feedback(self, number: int) -> list[bytes]:
        name, db = self.tracks[number]
        shown = number - self._offset()
        return [message(f"/track/{shown}/name", (name, "s")), message(f"/track/{shown}/volume/db", (db, "f")),
                message(f"/track/{shown}/volume", (0.716, "f"))]

    def handle(self, address: str, tags: str, args: list[Any], sender: tuple[str, int]) -> bool:
        device = ("127.0.0.1", self.device_port)
        if address == "/device/track/count" and tags == "i":
            self.bank_size = args[0]
            return True
        if address == "/device/track/bank/select" and tags == "i" and args[0] >= 1:
            self.bank = args[0]
            return True
        if address == "/action" and tags == "i" and args[0] == 41743:  # ACTION i/action: refresh all surfaces
            for number in sorted(self.tracks)[self._offset():self._offset() + self.bank_size]:
                self.reply(device, *self._feedback(number))
            return True
        match = re.fullmatch(r"/track/(\d+)/volume/db", address)
        if match and tags == "f" and int(match.group(1)) + self._offset() in self.tracks:
            number = int(match.group(1)) + self._offset()
            self.tracks[number][1] = min(max(args[0], self.min_db), self.max_db)
            self.reply(device, *self._feedback(number))
            return True
        return False


class StandInArdour(StandInDaw):
    """Ardour's OSC surface: ``/set_surface`` then feedback to the sender, gains in dB."""

    name = "Ardour"
    max_db = 6.0
    min_db = -193.0

    def handle(self, address: str, tags: str, args: list[Any], sender: tuple[str, int]) -> bool:
        if address == "/set_surface" and tags == "iiii":
            bank_size, strip_types, feedback, gainmode = args
            if not (strip_types & 1 and feedback & 2 and gainmode == 0):
                return False
            numbers = sorted(self.tracks)[: bank_size or None]
            for number in numbers:
                name, db = self.tracks[number]
                self.reply(sender, message("/strip/name", (number, "i"), (name, "s")),
                           message("/strip/gain", (number, "i"), (db, "f")))
            return True
        if address == "/strip/gain" and tags == "if" and args[0] in self.tracks:
            self.tracks[args[0]][1] = min(max(args[1], self.min_db), self.max_db)
            self.reply(sender, message("/strip/gain", (args[0], "i"), (self.tracks[args[0]][1], "f")))
            return True
        return False
