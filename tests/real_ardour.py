"""Drive a real, headless Ardour 7 (Debian's ``ardour`` package) from tests.

Everything goes through Ardour's own command-line tools, each run as a subprocess with a timeout:

* ``ardour7-lua`` (Ardour's engine with a Lua interpreter, on the "None (Dummy)" audio backend)
  creates sessions, reads faders, bounces stems and, kept alive in a loop, serves OSC;
* ``ardour7-export`` renders a session's master bus.

What Ardour 7.3's Lua bindings cannot do is import an audio file (``Editor:do_import`` exists only in
the GUI), so :func:`make_session` lets Ardour create the session and its routes, then writes the
``<Source>``, the playlist ``<Region>`` and the session range into the saved XML in the form Ardour 7
itself writes (found by saving a region Ardour bounced), and loads the result back in Ardour to
check it.

Ardour keeps per-user state (``recent``, export presets, the OSC port …) under
``$XDG_CONFIG_HOME/ardour7``; every run here points that at ``.ardour-home`` beside the session
folder, so the user's own Ardour configuration neither leaks in nor gets written to, and the
defaults are Ardour's.

Facts measured with these tools (Ardour 7.3.0, 48 kHz):

* a mono track into the stereo master is panned at the centre by Ardour's default panner
  ("Equal Power Stereo", ``panner_1in2out``) with exactly **-3.0 dB** in each channel
  (:data:`PAN_LAW_DB`); a stereo track passes at 0 dB, left to left and right to right;
* imported regions keep Ardour's default 64-sample fade in and out (:data:`REGION_FADE_SAMPLES`);
* a VCA scales its slaves by ``VCA gain / VCA gain when assigned`` (Ardour 6+), so this harness
  assigns at 0 dB and then sets the VCA gain; ``gain_control():get_value()`` (and OSC
  ``/strip/gain``) report the track's fader *times* that factor;
* a fader whose gain automation is in Play reports 0 dB from ``get_value()`` (and OSC) while the
  transport is stopped, ignores OSC ``/strip/gain``, and is saved as 0 dB whenever Ardour saves;
  the automation itself renders (settling about 40 ms after its last point);
* OSC (``<Protocol name="Open Sound Control (OSC)">``), at Ardour's defaults, listens on UDP 3819
  (the next free one if it is taken) and replies to port **8000** of the sender's host (port
  mode "Manual": ``address-only="1" remote-port="8000"``), not to the port a request came from;
  ``/strip/gain`` on a VCA's slave sets the fader so that fader × VCA is the value sent.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

LUA = "ardour7-lua"
EXPORT = "ardour7-export"
SUPERCLOCK = 282_240_000  # Ardour 7 time unit: superclock ticks per second ("a<ticks>" in the XML)
PAN_LAW_DB = -3.0  # a centred mono track in each channel of the stereo master
REGION_FADE_SAMPLES = 64  # Ardour's default region fade in / fade out
OSC_PORT = 3819  # Ardour's default OSC port (rc option osc-port)
OSC_REPLY_PORT = 8000  # where OSC replies go at Ardour's default port mode ("Manual")
OSC_PROTOCOL = "Open Sound Control (OSC)"  # the <Protocol name=…> of Ardour 7's OSC surface
AUTO_STATES = {0: "Off", 1: "Write", 2: "Touch", 4: "Play", 8: "Latch"}

# Lua shared by every script: a JSON encoder, so results come back as "@@{json}" lines.
_LUA_PRELUDE = r"""
local function json(v)
  local t = type(v)
  if v == nil then return "null"
  elseif t == "boolean" then return tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.17g", v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif #v > 0 or next(v) == nil then
    local out = {}
    for _, x in ipairs(v) do out[#out + 1] = json(x) end
    return "[" .. table.concat(out, ",") .. "]"
  else
    local out = {}
    for k, x in pairs(v) do out[#out + 1] = json(tostring(k)) .. ":" .. json(x) end
    return "{" .. table.concat(out, ",") .. "}"
  end
end
local function emit(v) print("@@" .. json(v)); io.stdout:flush() end
local function dB(g) if g <= 0 then return nil end return ARDOUR.DSP.accurate_coefficient_to_dB(g) end
local ND = PBD.GroupControlDisposition.NoGroup
AudioEngine:set_backend("None (Dummy)", "", "")
"""


def require_ardour() -> None:
    """Skip the calling test unless Ardour 7's command-line tools are installed."""
    for tool in (LUA, EXPORT):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian package 'ardour', Ardour 7)")


def _lua_literal(value: Any) -> str:
    """``value`` (None, bool, int, float, str, list, tuple, dict) as a Lua expression."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value}")
        return repr(value)
    if isinstance(value, (str, os.PathLike)):
        data = os.fsencode(value)
        return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}" for b in data) + '"'
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(_lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_lua_literal(k)}] = {_lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as Lua")


def _session_parts(session_path: Path | str) -> tuple[Path, str]:
    path = Path(session_path)
    if path.suffix != ".ardour" or not path.is_file():
        raise FileNotFoundError(f"not an Ardour session file: {path}")
    return path.parent, path.stem


def _home(session_dir: Path) -> Path:
    return session_dir.parent / ".ardour-home"


def _env(home: Path) -> dict[str, str]:
    """The environment for Ardour's tools: its per-user folders inside ``home``."""
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_DATA_HOME=str(home / "data"))
    return env


def _run_lua(body: str, home: Path, *, timeout: float = 60.0) -> list[Any]:
    """Run a Lua script in ``ardour7-lua``; the values it ``emit``-ted, in order.

    Success is the script reaching its last line, ``emit("done")``: ardour7-lua may still crash
    while tearing down after that (it does after exports), which is ignored. The script is kept
    in ``home`` when it fails."""
    home.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="script-", suffix=".lua", dir=home)
    script = Path(name)
    with os.fdopen(fd, "w") as file:
        file.write(_LUA_PRELUDE + body + '\nemit("done")\n')
    proc = subprocess.run([LUA, str(script)], capture_output=True, text=True, timeout=timeout,
                          env=_env(home), cwd=home, stdin=subprocess.DEVNULL)
    values = [json.loads(line[2:]) for line in proc.stdout.splitlines() if line.startswith("@@")]
    if values[-1:] != ["done"]:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise RuntimeError(f"ardour7-lua {script} failed (exit {proc.returncode}):\n{tail}")
    script.unlink()
    return values[:-1]


def make_session(folder: Path | str, name: str,
                 tracks: Sequence[tuple[str, Path | str, int, float, str | None]], *,
                 buses: Sequence[tuple[str, float]] = (),
                 vca: tuple[str, float, Sequence[str]] | None = None,
                 midi_track: str | None = None,
                 automation: tuple[str, Sequence[tuple[float, float]]] | None = None,
                 timeout: float = 60.0) -> Path:
    """Create the Ardour session ``folder/name/name.ardour`` and return its path.

    ``tracks``: ``(name, wav, channels, fader dB, output)``: an audio track of 1 (mono) or 2
    (stereo) inputs and 2 outputs, with ``wav`` as one region at time 0 (a mono wav may feed a
    stereo track; otherwise its channels must match), routed to the master (``output`` None) or to
    the bus of that name. ``buses``: ``(name, fader dB)``, stereo audio buses into the master.
    ``vca``: ``(name, gain dB, track names)``, assigned at 0 dB and then set to ``gain dB`` so
    it scales those tracks by ``gain dB``. ``midi_track``: the name of an empty MIDI track (no
    instrument). ``automation``: ``(track name, [(seconds, dB), …])``, gain automation in Play.
    All wavs share one sample rate, which becomes the session's. Routes appear in the order
    tracks, buses, MIDI track. The session is loaded back in Ardour to check each region.
    """
    require_ardour()
    folder = Path(folder)
    session_dir = folder / name
    if session_dir.exists():
        raise FileExistsError(session_dir)
    infos = [sf.info(str(wav)) for _, wav, *_ in tracks]
    rates = {info.samplerate for info in infos}
    if len(rates) != 1:
        raise ValueError(f"the wavs have different sample rates: {sorted(rates)}")
    rate = rates.pop()
    if SUPERCLOCK % rate:
        raise ValueError(f"Ardour 7 cannot place regions exactly at {rate} Hz")
    for (track, _, channels, _, output), info in zip(tracks, infos):
        if channels not in (1, 2) or info.channels not in (1, channels):
            raise ValueError(f"{track}: a {info.channels}-channel wav on a {channels}-channel track")
        if output is not None and output not in {bus for bus, _ in buses}:
            raise ValueError(f"{track}: no bus named {output!r}")
    names = {track for track, *_ in tracks}
    unknown = set(vca[2] if vca else ()) - names | ({automation[0]} - names if automation else set())
    if unknown:
        raise ValueError(f"no tracks named {sorted(unknown)}")
    spec = {
        "dir": str(session_dir), "name": name, "rate": rate,
        "tracks": [{"name": t, "channels": c, "gain_db": float(g), "output": o} for t, _, c, g, o in tracks],
        "buses": [{"name": b, "gain_db": float(g)} for b, g in buses],
        "vca": None if vca is None else {"name": vca[0], "gain_db": float(vca[1]), "tracks": list(vca[2])},
        "midi": midi_track,
        "automation": None if automation is None else {
            "track": automation[0], "points": [[round(s * rate), float(db)] for s, db in automation[1]]},
    }
    _run_lua(f"local spec = {_lua_literal(spec)}\n" + r"""
assert(create_session(spec.dir, spec.name, spec.rate), "create_session failed")
-- Ardour auto-connects new routes in a background thread, which may or may not be done when the
-- session is saved: connect everything here instead.
ARDOUR.config():set_input_auto_connect(ARDOUR.AutoConnectOption.ManualConnect)
ARDOUR.config():set_output_auto_connect(ARDOUR.AutoConnectOption.ManualConnect)
local MAX = ARDOUR.PresentationInfo.max_order
local function gain(db) return ARDOUR.DSP.dB_to_coefficient(db) end
local routes = {}
local function named(r, want)
  assert(r:name() == want, "Ardour named '" .. want .. "' '" .. r:name() .. "'")
  routes[want] = r
  return r
end
local function feed(r, into)
  r:output():disconnect_all(nil)
  for i = 0, 1 do
    assert(r:output():audio(i):connect(into:input():audio(i):name()) == 0, "cannot connect " .. r:name())
  end
end
for _, t in ipairs(spec.tracks) do
  local r = named(Session:new_audio_track(t.channels, 2, nil, 1, t.name, MAX, ARDOUR.TrackMode.Normal, false):front(), t.name)
  r:gain_control():set_value(gain(t.gain_db), ND)
end
for _, b in ipairs(spec.buses) do
  local r = named(Session:new_audio_route(2, 2, nil, 1, b.name, ARDOUR.PresentationInfo.Flag.AudioBus, MAX):front(), b.name)
  r:gain_control():set_value(gain(b.gain_db), ND)
  feed(r, Session:master_out())
end
for _, t in ipairs(spec.tracks) do feed(routes[t.name], t.output and routes[t.output] or Session:master_out()) end
if spec.midi then
  named(Session:new_midi_track(ARDOUR.ChanCount(ARDOUR.DataType("midi"), 1), ARDOUR.ChanCount(ARDOUR.DataType("audio"), 2),
        true, ARDOUR.PluginInfo(), nil, nil, 1, spec.midi, MAX, ARDOUR.TrackMode.Normal, false):front(), spec.midi)
end
if spec.vca then
  local v = Session:vca_manager():create_vca(1, spec.vca.name):front()
  assert(v:name() == spec.vca.name, "Ardour named the VCA " .. v:name())
  for _, n in ipairs(spec.vca.tracks) do routes[n]:to_slavable():assign(v) end
  v:gain_control():set_value(gain(spec.vca.gain_db), ND)  -- after assigning: VCAs scale by ratio
end
if spec.automation then
  local ac = routes[spec.automation.track]:gain_control()
  for _, p in ipairs(spec.automation.points) do ac:alist():add(Temporal.timepos_t(p[1]), gain(p[2]), false, true) end
  ac:set_automation_state(ARDOUR.AutoState.Play)
end
Session:save_state("", false, false, false, false, false)
close_session()
""", _home(session_dir), timeout=timeout)
    session = session_dir / f"{name}.ardour"
    _add_regions(session, [(t[0], Path(t[1]), info.frames) for t, info in zip(tracks, infos)], rate)
    faders = read_faders(session, timeout=timeout)
    for (track, _, _, _, _), info in zip(tracks, infos):
        got = faders[track]
        if (got["regions"], got["region_samples"]) != (1, info.frames):
            raise RuntimeError(f"Ardour did not load the region of {track}: {got}")
    return session


def _add_regions(session: Path, regions: Sequence[tuple[str, Path, int]], rate: int) -> None:
    """Copy each wav into the session and write its Source, playlist Region and the session range
    into the session XML, as Ardour 7 writes them."""
    tree = ET.parse(session)
    root = tree.getroot()
    next_id = int(root.get("id-counter", "0"))

    def new_id() -> str:
        nonlocal next_id
        next_id += 1
        return str(next_id)

    audiofiles = session.parent / "interchange" / session.stem / "audiofiles"
    audiofiles.mkdir(parents=True, exist_ok=True)
    routes = {route.get("name"): route for route in root.iter("Route")}
    playlists = {p.get("id"): p for p in root.find("Playlists")}
    sources = root.find("Sources")
    end = 0
    for index, (track, wav, frames) in enumerate(regions):
        route = routes[track]
        file = audiofiles / f"{index + 1:02d}-{wav.name}"
        shutil.copyfile(wav, file)
        file_channels = sf.info(str(file)).channels
        channels = len(route.find("IO[@direction='Input']").findall("Port"))
        length = frames * SUPERCLOCK // rate
        end = max(end, length)
        region = {
            "name": wav.stem, "muted": "0", "opaque": "1", "locked": "0", "video-locked": "0",
            "automatic": "0", "whole-file": "0", "import": "0", "external": "0", "sync-marked": "0",
            "left-of-split": "0", "right-of-split": "0", "hidden": "0", "position-locked": "0",
            "valid-transients": "0", "start": "a0", "length": f"a{length}@a0", "sync-position": "a0",
            "ancestral-start": "a0", "ancestral-length": "a0@a0", "stretch": "1", "shift": "1",
            "layering-index": "0", "tags": "", "contents": "0", "envelope-active": "0",
            "default-fade-in": "0", "default-fade-out": "0", "fade-in-active": "1", "fade-out-active": "1",
            "scale-amplitude": "1", "id": new_id(), "type": "audio", "first-edit": "nothing",
        }
        for channel in range(channels):
            source = new_id()
            ET.SubElement(sources, "Source", {
                "name": file.name, "take-id": "", "type": "audio", "flags": "", "id": source,
                "natural-position": "a0", "captured-for": "", "channel": str(min(channel, file_channels - 1)),
                "origin": str(wav), "gain": "1"})
            region[f"source-{channel}"] = region[f"master-source-{channel}"] = source
        region["channels"] = str(channels)
        ET.SubElement(playlists[route.get("audio-playlist")], "Region", region)
    ET.SubElement(root.find("Locations"), "Location", {
        "id": new_id(), "name": "session", "start": "a0", "end": f"a{end}", "flags": "IsSessionRange",
        "locked": "0", "timestamp": str(int(time.time())), "cue": "0"})
    root.set("id-counter", str(next_id))
    tree.write(session, encoding="UTF-8", xml_declaration=True)


def read_faders(session_path: Path | str, *, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """Load the session in Ardour and return its mixer, route name → fields, in mixer order
    (tracks and buses by presentation order, then the master, then VCAs):

    ``kind`` (``audio_track``, ``midi_track``, ``bus``, ``master`` or ``vca``), ``gain_db`` (what
    ``gain_control():get_value()`` reports, in dB; None for -inf), ``automation`` (``Off``,
    ``Play`` …), ``vca`` (the name of the VCA it is assigned to, or None), ``vca_gain_db`` (that
    VCA's fader), ``vca_factor_db`` (what the VCA currently multiplies the fader by), ``outputs``
    (the routes its outputs feed), ``regions`` and ``region_samples`` (tracks: number of regions in
    the playlist and the last region end, in samples).
    """
    require_ardour()
    session_dir, name = _session_parts(session_path)
    rows = _run_lua(f"assert(load_session({_lua_literal(str(session_dir))}, {_lua_literal(name)}), 'cannot load session')\n" + r"""
local routes = {}
for r in Session:get_routes():iter() do
  local f = r:presentation_info_ptr():flags()
  if f & 0x3f ~= 0 then routes[#routes + 1] = r end
end
local function rank(r) return (r:is_master() and 1e9 or 0) + r:presentation_info_ptr():order() end
table.sort(routes, function(a, b) return rank(a) < rank(b) end)
for _, r in ipairs(routes) do
  local f = r:presentation_info_ptr():flags()
  local kind = (f & 0x20 ~= 0) and "master" or (f & 0x1 ~= 0) and "audio_track" or (f & 0x2 ~= 0) and "midi_track" or "bus"
  local gc = r:gain_control()
  local row = {name = r:name(), kind = kind, gain_db = dB(gc:get_value()), vca_factor_db = dB(gc:get_masters_value()),
               automation = gc:automation_state(), outputs = {}}
  for v in r:to_slavable():masters(Session:vca_manager()):iter() do
    row.vca = v:name(); row.vca_gain_db = dB(v:gain_control():get_value())
  end
  for _, other in ipairs(routes) do
    local feeds = false
    for i = 0, r:n_outputs():n_audio() - 1 do
      for j = 0, other:n_inputs():n_audio() - 1 do
        if r:output():audio(i):connected_to(other:input():audio(j):name()) then feeds = true end
      end
    end
    if feeds then row.outputs[#row.outputs + 1] = other:name() end
  end
  local t = r:to_track()
  if not t:isnil() then
    row.regions = t:playlist():n_regions(); row.region_samples = 0
    for reg in t:playlist():region_list():iter() do
      row.region_samples = math.max(row.region_samples, (reg:position() + reg:length()):samples())
    end
  end
  emit(row)
end
for v in Session:vca_manager():vcas():iter() do
  emit({name = v:name(), kind = "vca", gain_db = dB(v:gain_control():get_value()), automation = v:gain_control():automation_state(), outputs = {}})
end
close_session()
""", _home(session_dir), timeout=timeout)
    faders: dict[str, dict[str, Any]] = {}
    for row in rows:
        row.setdefault("vca", None)
        row.setdefault("vca_gain_db", None)
        row["automation"] = AUTO_STATES.get(row["automation"], str(row["automation"]))
        faders[row.pop("name")] = row
    return faders


def _range_samples(session: Path) -> int:
    """The length of the session range, in samples, from the session file."""
    root = ET.parse(session).getroot()
    for location in root.iter("Location"):
        if "IsSessionRange" in location.get("flags", ""):
            ticks = int(location.get("end", "a0")[1:]) - int(location.get("start", "a0")[1:])
            return ticks * int(root.get("sample-rate")) // SUPERCLOCK
    raise RuntimeError(f"{session} has no session range: ardour7-export would render nothing")


def render(session_path: Path | str, out_wav: Path | str, *, bitdepth: str = "float", check: bool = True,
           tries: int = 4, timeout: float = 60.0) -> Path:
    """Render the session range of the master bus with ``ardour7-export -b BITDEPTH -o OUT_WAV
    SESSION_DIR SESSION_NAME`` (32-bit float WAV at the session rate by default; ``bitdepth``
    16, 24, 32 or float) and return ``out_wav``.

    Ardour 7.3's ``ardour7-export`` now and then renders the whole mix 16 samples early (the
    first 16 samples lost, 16 zeros at the end; about 1 render in 12 under CPU load, without a word)
    and, rarer, hangs or crashes. So each render must have the session range's length, a hang
    counts as a failed try (``timeout`` seconds each), and with ``check`` the session is rendered
    until two renders agree to within float rounding (Ardour sums in several threads, so good renders
    differ by ~1e-7), about 2 s per render, at most ``tries`` renders.
    """
    require_ardour()
    session_dir, name = _session_parts(session_path)
    frames = _range_samples(Path(session_path))
    out = Path(out_wav).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Ardour sums in several threads: two good renders differ by float rounding (~1e-7), or 1 LSB
    tolerance = {"16": 1.5 / 2**15, "24": 1.5 / 2**23}.get(str(bitdepth), 1e-6)
    renders: list[tuple[Path, np.ndarray]] = []
    problems: list[str] = []
    try:
        for attempt in range(tries):
            target = out.with_name(f".{out.stem}.try{attempt}{out.suffix}")
            try:
                proc = subprocess.run([EXPORT, "-b", str(bitdepth), "-o", str(target), str(session_dir), name],
                                      capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                      env=_env(_home(session_dir)))
            except subprocess.TimeoutExpired:
                problems.append(f"try {attempt + 1}: no answer in {timeout:.0f} s")
                continue
            try:
                audio = sf.read(target, dtype="float32", always_2d=True)[0]
            except (OSError, RuntimeError) as error:  # soundfile raises LibsndfileError (a RuntimeError)
                audio = np.zeros((0, 0), dtype=np.float32)
                problems.append(f"try {attempt + 1}: {error}")
            if len(audio) != frames:
                tail = " | ".join((proc.stdout + proc.stderr).replace("\r", "\n").splitlines()[-4:])
                problems.append(f"try {attempt + 1}: {len(audio)} samples, not {frames} (exit {proc.returncode}: {tail})")
                continue
            if not check or any(np.max(np.abs(audio - other), initial=0) <= tolerance for _, other in renders):
                target.replace(out)
                return out
            renders.append((target, audio))
        raise RuntimeError(f"ardour7-export gave no {'two equal renders' if check else 'render'} of {session_path} "
                           f"in {tries} tries: " + "; ".join(problems or ["the renders all differ"]))
    finally:
        for target, _ in renders:
            target.unlink(missing_ok=True)
        for leftover in out.parent.glob(f".{out.stem}.try*{out.suffix}"):
            leftover.unlink()


def bounce_stems(session_path: Path | str, out_dir: Path | str, tracks: Sequence[str] | None = None, *,
                 through: str = "outputs", timeout: float = 120.0) -> dict[str, Path]:
    """Write each audio track (default: all) alone to ``out_dir/<track>.wav``, 32-bit float, the
    session range; return track → path. The session file is left as it was.

    ``through="outputs"`` (default) is what Ardour's stem export writes: the track bounced with its
    processing up to its outputs (``Track:bounce_range`` to ``main_outs``): after its fader, gain
    automation, VCA and panner (a centred mono track: :data:`PAN_LAW_DB` in each channel), before
    any bus and the master; one channel per output (2). Ardour's bounce files (a mono file per
    channel in the session's audio folder) are joined and removed.

    ``through="master"``: the master bus rendered by ``ardour7-export`` with the track soloed (from
    a snapshot saved for it, then removed) through :func:`render`, so its bus and the master fader
    apply too; about 4 s per track. (``Session:simple_export`` in ardour7-lua would do it in one
    process, but Ardour 7.3 crashes in about 1 run in 5 with one export, most runs with several.)
    """
    require_ardour()
    if through not in ("outputs", "master"):
        raise ValueError(f"through must be 'outputs' or 'master', not {through!r}")
    session_dir, name = _session_parts(session_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = _run_lua(
        f"assert(load_session({_lua_literal(str(session_dir))}, {_lua_literal(name)}), 'cannot load session')\n"
        f"local names, through = {_lua_literal(None if tracks is None else list(tracks))}, {_lua_literal(through)}\n"
        + r"""
if not names then
  names = {}
  for r in Session:get_tracks():iter() do
    if not r:to_track():to_audio_track():isnil() then names[#names + 1] = r:name() end
  end
end
local range = Session:locations():session_range_location()
for _, n in ipairs(names) do
  local r = Session:route_by_name(n)
  assert(not r:isnil() and not r:to_track():isnil(), "no track named " .. n)
  if through == "outputs" then
    local t = r:to_track()
    local reg = t:bounce_range(range:start():samples(), range:_end():samples(), ARDOUR.InterThreadInfo(),
                               t:main_outs(), true, "faderwise-stem-" .. n):to_audioregion()
    local files = {}
    for i = 0, reg:n_channels() - 1 do files[#files + 1] = reg:source(i):to_filesource():path() end
    emit({name = n, files = files})
  else
    r:solo_control():set_value(1, ND)
    ARDOUR.LuaAPI.usleep(100000)  -- the solo reaches the buses it feeds in the process thread
    Session:save_state("faderwise-stem-" .. n, false, false, false, false, false)
    r:solo_control():set_value(0, ND)
    ARDOUR.LuaAPI.usleep(100000)
    emit({name = n, snapshot = "faderwise-stem-" .. n})
  end
end
close_session()
""", _home(session_dir), timeout=timeout)
    stems: dict[str, Path] = {}
    for row in rows:
        stems[row["name"]] = target = out / f"{row['name']}.wav"
        if through == "master":
            snapshot = session_dir / f"{row['snapshot']}.ardour"
            try:
                render(snapshot, target, timeout=timeout)
            finally:
                snapshot.unlink()
        else:
            channels = [sf.read(f, dtype="float32")[0] for f in row["files"]]
            sf.write(target, np.stack(channels, axis=1), sf.info(row["files"][0]).samplerate, subtype="FLOAT")
            for f in row["files"]:
                Path(f).unlink()
    return stems


def _udp_ports(pid: int) -> set[int]:
    """The local UDP ports process ``pid`` has sockets bound to (from /proc)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@contextlib.contextmanager
def running_ardour(session_path: Path | str, *, osc: dict[str, str] | None = None,
                   start_timeout: float = 60.0, max_seconds: float = 600.0) -> Iterator[int]:
    """Keep a headless Ardour holding the session open with its OSC surface on; yield its UDP port.

    The session file's ``<Protocol name="Open Sound Control (OSC)">`` is set ``active="1"``, with
    no other settings, so Ardour's defaults apply: port 3819 (the next free one if taken), replies
    to port 8000 ("Manual" port mode). ``osc`` adds attributes, e.g. ``{"address-only": "0"}`` for
    "Auto" (reply to the port a request came from). Ardour saves the session on OSC
    ``/save_state``. On exit the Lua loop is told to stop (a stop file), then killed if needed; it
    also stops by itself after ``max_seconds`` or when this Python process is gone.
    """
    require_ardour()
    session_dir, name = _session_parts(session_path)
    session = Path(session_path)
    text = session.read_text(encoding="utf-8")
    attrs = {"name": OSC_PROTOCOL, "active": "1", **(osc or {})}
    element = "<Protocol " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "/>"
    text, found = re.subn(r'<Protocol name="Open Sound Control \(OSC\)"[^>]*/>', element, text)
    if not found:
        text, found = re.subn(r"</ControlProtocols>", f"  {element}\n  </ControlProtocols>", text)
    if not found:
        raise RuntimeError(f"no <ControlProtocols> in {session}")
    session.write_text(text, encoding="utf-8")
    home = _home(session_dir)
    home.mkdir(parents=True, exist_ok=True)
    stop, log_path, script = (home / f"running-{name}.{ext}" for ext in ("stop", "log", "lua"))
    stop.unlink(missing_ok=True)
    script.write_text(_LUA_PRELUDE + (
        f"assert(load_session({_lua_literal(str(session_dir))}, {_lua_literal(name)}), 'cannot load session')\n"
        f"local stop, parent = {_lua_literal(str(stop))}, {_lua_literal(f'/proc/{os.getpid()}')}\n"
        f"local deadline = ARDOUR.LuaAPI.monotonic_time() + {int(max_seconds * 1e6)}\n") + r"""
emit("ready")
local Exists = ARDOUR.LuaAPI.FileTest.Exists
while not ARDOUR.LuaAPI.file_test(stop, Exists) and ARDOUR.LuaAPI.file_test(parent, Exists)
      and ARDOUR.LuaAPI.monotonic_time() < deadline do
  ARDOUR.LuaAPI.usleep(50000)
end
close_session()
emit("stopped")
""")
    with open(log_path, "w") as log:
        # its own process group: Ardour's helpers (ardour-avahi, tail) hold the OSC socket too
        proc = subprocess.Popen([LUA, str(script)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=_env(home), cwd=home, start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout
        port = None
        while port is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                raise RuntimeError(f"Ardour did not open {session} with OSC (exit {proc.returncode}):\n{tail}")
            if '@@"ready"' in log_path.read_text(errors="replace"):
                port = min((p for p in _udp_ports(proc.pid) if OSC_PORT <= p < OSC_PORT + 20), default=None)
            time.sleep(0.05)
        yield port
    finally:
        stop.touch()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)  # the helpers left in its group, if any
        stop.unlink(missing_ok=True)
