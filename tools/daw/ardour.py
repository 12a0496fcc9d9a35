"""Ardour sessions (``.ardour``): routes, buses, faders, mute and solo.

A session is XML (``<Session version="7003" …>``, Ardour 3 to 9 write formats 3000–7xxx). What
is read, per ``<Routes>/<Route name=…>``:

* ``<PresentationInfo order=… flags=…>`` — its place in the mixer and what it is (``AudioTrack``,
  ``MidiTrack``, ``AudioBus``, ``MasterOut``, ``MonitorOut``…); sessions before Ardour 5 say it in
  the route's ``flags`` and give tracks a playlist.
* ``<Processor type="amp">`` holding ``<Controllable name="gaincontrol" value=…>`` — the fader as
  a gain coefficient (1 = 0 dB; at most 2, Ardour's +6 dB), and an ``<AutomationList
  automation-id="gain" state=…>`` that, in ``Play``, ``Touch``, ``Latch`` or ``Write``, overrides it.
* ``<Controllable name="mute" value=…>`` and ``<Controllable name="solo" self-solo=…>``.
* ``<IO direction="Output">`` ports and their ``<Connection other="Drums/audio_in 1"/>``: a track
  connected to a bus's inputs plays through that bus.
* ``<VCAManager>/<VCA name=…>`` with its ``gaincontrol``, and in a route's fader
  ``<masters><master id=… val-master=…>``: the route is a slave of that VCA (by its gain control's
  id) and plays at its fader times ``VCA gain / val-master`` (the VCA's gain when it was assigned,
  Ardour 6 on), what Ardour's own ``gain_control():get_value()`` and OSC report.
* ``MonitorOut`` (the monitor section) and ``FoldbackBus`` routes are what performers and the
  engineer listen on, not the mix: left out, and said.

The file is parsed with expat, which gives the byte where each element starts, so that a copy
can differ from the session only in the ``value`` of the faders it moves (:attr:`Track.span`).
"""

from __future__ import annotations

import math
import re
import xml.parsers.expat
from dataclasses import replace
from pathlib import Path

from faderwise.tools.daw.model import BUS, MASTER, MASTER_LABEL, TRACK, Project, Track, gain_to_db
from faderwise.tools.errors import ProjectError

OLDEST_VERSION, NEWEST_VERSION = 3000, 9999
MAX_GAIN_DB = 6.0
"""The top of Ardour's fader: a gain coefficient of 1.99526231 (+6 dB)."""
PAN_LAW_DB = -3.0
"""Ardour's panner puts a centred mono track on each side of a stereo bus at −3 dB (equal power)."""
PLAYING_AUTOMATION = frozenset({"Play", "Touch", "Latch", "Write"})
_VALUE = re.compile(rb"""\svalue\s*=\s*(["'])(.*?)\1""", re.DOTALL)


def format_gain(gain: float) -> str:
    """A gain coefficient as a double that reads back exactly (Ardour writes doubles)."""
    return repr(float(gain))


def _tag_end(raw: bytes, start: int) -> int:
    """Where the start tag beginning at ``start`` ends (after its ``>``), quotes respected."""
    quote = None
    for index in range(start, len(raw)):
        char = raw[index:index + 1]
        if quote:
            if char == quote:
                quote = None
        elif char in (b'"', b"'"):
            quote = char
        elif char == b">":
            return index + 1
    return len(raw)


def read_ardour(path: Path, text: str) -> Project:
    """The routes of an Ardour session whose file ``path`` holds ``text``.

    Raises:
        ProjectError: not XML or cut short, not an Ardour session, a format version outside
            3000–9999, a fader value that is not a number.
    """
    raw = text.encode("utf-8", "surrogateescape")
    parser = xml.parsers.expat.ParserCreate()
    stack: list[str] = []
    routes: list[dict[str, object]] = []
    route: dict[str, object] | None = None
    in_amp = in_output = in_fader = False
    vca: dict[str, str] | None = None
    vcas: dict[str, tuple[str, str]] = {}  # the VCA's gain control id → (its name, its gain)
    session_version: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal route, in_amp, in_output, in_fader, vca
        at = parser.CurrentByteIndex
        if not stack:
            if name != "Session":
                raise ProjectError(f"{path}: not an Ardour session (its root element is <{name}>, not <Session>)")
            session_version.append(attrs.get("version", "?"))
            _check_version(path, session_version[0])
        elif name == "VCA" and stack[-1] == "VCAManager":
            vca = {"name": attrs.get("name", "")}
        elif vca is not None and name == "Controllable" and stack[-1] == "VCA" and attrs.get("name") == "gaincontrol":
            vcas[attrs.get("id", "")] = (vca["name"], attrs.get("value", "1"))
        elif name == "Route" and stack[-1] == "Routes":
            route = {"name": attrs.get("name", ""), "id": attrs.get("id"), "flags": attrs.get("flags", ""), "order": None,
                     "track": "audio-playlist" in attrs or "playlist" in attrs, "gain": None, "span": None,
                     "mute": False, "solo": False, "automated": False, "outputs": [], "line": parser.CurrentLineNumber,
                     "index": len(routes), "masters": []}
        elif route is not None:
            if name == "PresentationInfo" and stack[-1] == "Route":
                route["flags"] = attrs.get("flags", "")
                route["order"] = attrs.get("order")
            elif name == "Diskstream":
                route["track"] = True
            elif name == "Processor" and stack[-1] == "Route" and attrs.get("type") == "amp":
                in_amp = True
            elif name == "Controllable" and in_amp and attrs.get("name") == "gaincontrol":
                route["gain"] = attrs.get("value", "")
                route["span"] = _value_span(raw, at)
                in_fader = True
            elif name == "master" and in_fader:
                route["masters"].append((attrs.get("id", ""), attrs.get("val-master", "1")))  # type: ignore[union-attr]
            elif name == "AutomationList" and in_amp and attrs.get("automation-id") == "gain":
                route["automated"] = attrs.get("state") in PLAYING_AUTOMATION
            elif name == "Controllable" and stack[-1] == "Route" and attrs.get("name") == "mute":
                route["mute"] = _true(attrs.get("value"))
            elif name == "Controllable" and stack[-1] == "Route" and attrs.get("name") == "solo":
                route["solo"] = _true(attrs.get("self-solo", attrs.get("value")))
            elif name == "IO" and stack[-1] == "Route" and attrs.get("direction") == "Output":
                in_output = True
            elif name == "Connection" and in_output:
                route["outputs"].append(attrs.get("other", ""))  # type: ignore[union-attr]
        stack.append(name)

    def end(name: str) -> None:
        nonlocal route, in_amp, in_output, in_fader, vca
        stack.pop()
        if name == "Controllable":
            in_fader = False
        elif name == "VCA":
            vca = None
        elif name == "Processor":
            in_amp = False
        elif name == "IO":
            in_output = False
        elif name == "Route" and route is not None and stack and stack[-1] == "Routes":
            routes.append(route)
            route = None

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(raw, True)
    except xml.parsers.expat.ExpatError as exc:
        raise ProjectError(f"{path}: not a complete XML file (line {exc.lineno}, column {exc.offset + 1}: "
                           f"{xml.parsers.expat.ErrorString(exc.code)}); is it cut short?") from None
    return _project(path, text, raw, session_version[0], routes, vcas)


def _check_version(path: Path, version: str) -> None:
    try:
        number = int(version)
    except ValueError:
        number = -1
    if not OLDEST_VERSION <= number <= NEWEST_VERSION:
        raise ProjectError(f"{path}: Ardour session format {version!r} is not one faderwise knows (it reads "
                           f"formats {OLDEST_VERSION}–{NEWEST_VERSION}, written by Ardour 3 to 9)")


def _true(value: str | None) -> bool:
    try:
        return float(value or 0) != 0
    except ValueError:
        return value in ("yes", "true")


def _order(route: dict[str, object]) -> float:
    """The route's place in the mixer: its PresentationInfo order, else its place in the file."""
    try:
        order = float(str(route["order"]))
    except ValueError:
        order = math.nan
    return order if math.isfinite(order) else float(route["index"])  # type: ignore[arg-type]


def _value_span(raw: bytes, start: int) -> tuple[int, int] | None:
    """Bytes of the ``value`` attribute's text in the start tag at byte ``start``."""
    match = _VALUE.search(raw, start, _tag_end(raw, start))
    return (match.start(2), match.end(2)) if match else None


def _character_offsets(raw: bytes, offsets: list[int]) -> dict[int, int]:
    """Byte offsets in ``raw`` as offsets in its decoded text, in one pass (they lie at quotes,
    so no slice cuts a character)."""
    found: dict[int, int] = {}
    characters = last = 0
    for offset in sorted(set(offsets)):
        characters += len(raw[last:offset].decode("utf-8", "surrogateescape"))
        found[offset], last = characters, offset
    return found


def _vca_gain(route: dict[str, object], vcas: dict[str, tuple[str, str]], path: Path) -> tuple[float, tuple[str, ...]]:
    """The dB the route's VCAs add to its fader (each: its gain over its gain when assigned), and their names."""
    total, names = 0.0, []
    for control, assigned in route["masters"]:  # type: ignore[attr-defined]
        if control not in vcas:
            continue
        name, value = vcas[control]
        try:
            now, then = float(value), float(assigned)
        except ValueError:
            now = then = math.nan
        if not (math.isfinite(now) and math.isfinite(then) and now >= 0 and then > 0):
            raise ProjectError(f"{path}: line {route['line']}: the VCA {name!r} of {route['name']!r} holds "
                               f"{value!r} over {assigned!r}, not a gain")
        total += gain_to_db(now / then)
        names.append(name)
    return total, tuple(names)


def _project(path: Path, text: str, raw: bytes, version: str, routes: list[dict[str, object]],
             vcas: dict[str, tuple[str, str]]) -> Project:
    characters = _character_offsets(raw, [offset for entry in routes if entry["span"] for offset in entry["span"]])

    master: Track | None = None
    found: list[tuple[float, dict[str, object], str]] = []
    left_out: list[tuple[str, str]] = []
    for entry in routes:
        flags = str(entry["flags"])
        if "MonitorOut" in flags:
            left_out.append((str(entry["name"]), "Ardour's monitor section: what you listen on, not the mix"))
            continue
        if "FoldbackBus" in flags:
            left_out.append((str(entry["name"]), "a foldback bus: a performer's monitor mix, not the mix"))
            continue
        if entry["gain"] is None or entry["span"] is None:
            raise ProjectError(f"{path}: line {entry['line']}: the route {entry['name']!r} has no fader "
                               "(no amp processor with a gaincontrol value)")
        kind = MASTER if "MasterOut" in flags else TRACK if ("Track" in flags or entry["track"]) else BUS
        found.append((_order(entry), entry, kind))
    found.sort(key=lambda item: item[0])
    numbers = {str(entry["name"]): index for index, (_, entry, _) in enumerate(
        [item for item in found if item[2] != MASTER], start=1)}  # Ardour keeps route names unique
    buses = {str(entry["name"]) for _, entry, kind in found if kind == BUS}
    tracks: list[Track] = []
    for _, entry, kind in found:
        try:
            gain = float(str(entry["gain"]))
        except ValueError:
            gain = math.nan
        if not math.isfinite(gain) or gain < 0:
            raise ProjectError(f"{path}: line {entry['line']}: the fader of {entry['name']!r} holds "
                               f"{entry['gain']!r}, not a gain coefficient")
        start, end = entry["span"]  # type: ignore[misc]
        vca_db, vca_names = _vca_gain(entry, vcas, path)
        parent = next((bus for other in entry["outputs"] if (bus := str(other).rpartition("/")[0]) in buses  # type: ignore[attr-defined]
                       and bus != entry["name"]), None)
        track = Track(name=str(entry["name"]), number=len(tracks) + 1, kind=kind, gain=gain, mute=bool(entry["mute"]),
                      solo=bool(entry["solo"]), parent=numbers.get(parent) if parent else None,
                      automated=bool(entry["automated"]), span=(characters[start], characters[end]),
                      ident=str(entry["id"]) if entry["id"] else None, vca_db=vca_db, vcas=vca_names)
        if kind == MASTER:
            master = replace(track, number=0, label=MASTER_LABEL)
        else:
            tracks.append(track)
    return Project(path=path, daw="ardour", version=version, tracks=tuple(tracks), master=master, text=text,
                   max_gain_db=MAX_GAIN_DB, format_gain=format_gain, pan_law_db=PAN_LAW_DB, left_out=tuple(left_out))
