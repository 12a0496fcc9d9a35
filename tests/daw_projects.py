"""A REAPER project and an Ardour session written in code, with the structure of real files.

Both hold ten tracks around the demo song's five stems (drums, bass, keys, guitar, vocals):

    Drums (folder/bus, bounced as drums.wav) ─ Kick, Snare, Overheads
    Bass, Keys
    Guitars (folder/bus, no stem)           ─ Guitar (guitar.wav), Gtr DI (muted, no stem)
    Vocals

The REAPER file follows what REAPER 7 writes (header, project settings, an FX chain with a
base64 plug-in state, items with their sources, folder depths in ISBUS, CRLF line ends as on
Windows when asked); the Ardour one follows Ardour 8's session XML (Config options, Sources,
Regions, Locations, Routes with PresentationInfo, trim/amp/meter/main-outs processors, output
ports connected to buses, Playlists).
"""

from __future__ import annotations

import shutil
from pathlib import Path

# name, folder depth change, linear gain, mute, solo
REAPER_TRACKS = [
    ("Drums", 1, 0.70794578438414, 0, 0),
    ("Kick", 0, 1, 0, 0),
    ("Snare", 0, 0.89125093813374, 0, 0),
    ("Overheads", -1, 0.5011872336272722, 0, 0),
    ("Bass", 0, 1.12201845430196, 0, 0),
    ("Keys", 0, 0.35481338923358, 0, 0),
    ("Guitars", 1, 1, 0, 0),
    ("Guitar", 0, 0.79432823472428, 0, 0),
    ("Gtr DI", -1, 1, 1, 0),
    ("Vocals", 0, 1.41253754462275, 0, 1),
]
STEMS_OF_TRACKS = {"Drums": "drums", "Bass": "bass", "Keys": "keys", "Guitar": "guitar", "Vocals": "vocals"}

_FX_STATE = (
    "      <VST \"VST: ReaEQ (Cockos)\" reaeq.vst.so 0 \"\" 1919247729<56535472656571726561657100000000> \"\"\n"
    "        cWVlcu5e7f4AAAAAAgAAAAEAAAAAAAAAAgAAAAAAAAACAAAAAQAAAAAAAAACAAAAAAAAADwAAAAAAAAAAAAQAAAAAAAAAAAAAAAA\n"
    "        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "        AAAQAAAA\n"
    "      >\n"
)


def reaper_project_text(*, tracks: list[tuple[str, int, float, int, int]] | None = None, volume_envelope: str | None = None,
                        version: str = "0.1") -> str:
    """A REAPER 7 project with ``tracks`` (default :data:`REAPER_TRACKS`); ``volume_envelope``
    names a track given an active volume envelope."""
    lines = [
        f'<REAPER_PROJECT {version} "7.15/linux-x86_64" 1712345678\n',
        "  <NOTES 0 2\n  >\n",
        "  RIPPLE 0\n  GROUPOVERRIDE 0 0 0\n  AUTOXFADE 129\n  ENVATTACH 3\n  POOLEDENVATTACH 0\n  MIXERUIFLAGS 11 48\n",
        "  PEAKGAIN 1\n  FEEDBACK 0\n  PANLAW 1\n  PROJOFFS 0 0 0\n  MAXPROJLEN 0 600\n  GRID 3199 8 1 8 1 0 0 0\n",
        "  TIMEMODE 1 5 -1 30 0 0 -1\n  VIDEO_CONFIG 0 0 256\n  PANMODE 3\n  CURSOR 0\n  ZOOM 100 0 0\n",
        "  SAMPLERATE 44100 0 0\n  <RECORD_CFG\n    ZXZhdxgAAQ==\n  >\n  <APPLYFX_CFG\n  >\n",
        '  RENDER_FILE ""\n  RENDER_PATTERN $track\n  RENDER_FMT 0 2 0\n  RENDER_1X 0\n  RENDER_RANGE 1 0 0 18 1000\n',
        "  TEMPO 120 4 4\n  PLAYRATE 1 0 0.25 4\n  SELECTION 0 0\n  SELECTION2 0 0\n  MASTERAUTOMODE 0\n",
        "  MASTERTRACKHEIGHT 0 0\n  MASTERPEAKCOL 16576\n  MASTERMUTESOLO 0\n  MASTERTRACKVIEW 0 0.6667 0.5 0.5 0 0 0 0 0 0 0 0 0 0\n",
        "  MASTERHWOUT 0 0 1 0 0 0 0 -1\n  MASTER_NCH 2 2\n  MASTER_VOLUME 0.89125093813374 0 -1 -1 1\n",
        "  MASTER_PANMODE 3\n  MASTER_FX 1\n  MASTER_SEL 0\n",
        "  <MASTERPLAYSPEEDENV\n    EGUID {9A1B2C3D-0000-4000-8000-000000000001}\n    ACT 0 -1\n    VIS 0 1 1\n"
        "    LANEHEIGHT 0 0\n    ARM 0\n    DEFSHAPE 0 -1 -1\n  >\n",
        "  <TEMPOENVEX\n    EGUID {9A1B2C3D-0000-4000-8000-000000000002}\n    ACT 0 -1\n    VIS 1 0 1\n  >\n",
        "  <PROJBAY\n  >\n",
    ]
    for index, (name, depth, gain, mute, solo) in enumerate(tracks or REAPER_TRACKS, start=1):
        guid = f"{{5D3F1B2A-{index:04d}-4C1E-9F00-00000000{index:04d}}}"
        quoted = f'"{name}"' if " " in name or not name else name
        flag = 1 if depth > 0 else 2 if depth < 0 else 0
        lines.append(
            f"  <TRACK {guid}\n    NAME {quoted}\n    PEAKCOL 16576\n    BEAT -1\n    AUTOMODE 0\n"
            f"    PANLAWFLAGS 3\n    VOLPAN {gain} 0 -1 -1 1\n    MUTESOLO {mute} {solo} 0\n    IPHASE 0\n"
            f"    PLAYOFFS 0 1\n    ISBUS {flag} {depth}\n    BUSCOMP 0 0 0 0 0\n    SHOWINMIX 1 0.6667 0.5 1 0.5 0 0 0\n"
            f"    FIXEDLANES 9 0 0 0 0\n    SEL 0\n    REC 0 0 1 0 0 0 0 0\n    VU 2\n    TRACKHEIGHT 0 0 0 0 0 0 0\n"
            f"    INQ 0 0 0 0.5 100 0 0 100\n    NCHAN 2\n    FX 1\n    TRACKID {guid}\n    PERF 0\n    MIDIOUT -1\n"
            f"    MAINSEND 1 0\n"
        )
        if name == volume_envelope:
            lines.append("    <VOLENV2\n      EGUID {00000000-0000-4000-8000-00000000AAAA}\n      ACT 1 -1\n"
                         "      VIS 1 1 1\n      LANEHEIGHT 0 0\n      ARM 1\n      DEFSHAPE 0 -1 -1\n"
                         "      VOLTYPE 1\n      PT 0 1 0\n      PT 4 0.5 0\n    >\n")
        if depth <= 0 and name not in ("Gtr DI",):
            lines.append("    <FXCHAIN\n      WNDRECT 24 52 655 408\n      SHOW 0\n      LASTSEL 0\n      DOCKED 0\n"
                         "      BYPASS 0 0 0\n" + _FX_STATE + "      FXID {11111111-2222-4333-8444-555555555555}\n"
                         "      WAK 0 0\n    >\n")
            lines.append(f"    <ITEM\n      POSITION 0\n      SNAPOFFS 0\n      LENGTH 8\n      LOOP 1\n      ALLTAKES 0\n"
                         f"      FADEIN 1 0 0 1 0 0 0\n      FADEOUT 1 0 0 1 0 0 0\n      MUTE 0 0\n      SEL 0\n"
                         f"      IGUID {guid}\n      IID {index}\n      NAME \"{name}.wav\"\n      VOLPAN 1 0 1 -1\n"
                         f"      SOFFS 0\n      PLAYRATE 1 1 0 -1 0 0.0025\n      CHANMODE 0\n      GUID {guid}\n"
                         f"      <SOURCE WAVE\n        FILE \"Media/{name}.wav\"\n      >\n    >\n")
        lines.append("  >\n")
    lines.append("  <EXTENSIONS\n  >\n>\n")
    return "".join(lines)


ARDOUR_ROUTES = [
    # name, kind flags, gain coefficient, mute, solo, output connection (a bus's name or "Master")
    ("Drums", "AudioBus", "0.70794578438414", 0, 0, "Master"),
    ("Kick", "AudioTrack", "1", 0, 0, "Drums"),
    ("Snare", "AudioTrack", "0.89125093813374", 0, 0, "Drums"),
    ("Overheads", "AudioTrack", "0.50118720531463623", 0, 0, "Drums"),
    ("Bass", "AudioTrack", "1.1220184543019636", 0, 0, "Master"),
    ("Keys", "AudioTrack", "0.35481338923357547", 0, 0, "Master"),
    ("Guitars", "AudioBus", "1", 0, 0, "Master"),
    ("Guitar", "AudioTrack", "0.79432823472428149", 0, 0, "Guitars"),
    ("Gtr DI", "AudioTrack", "1", 1, 0, "Guitars"),
    ("Vocals", "AudioTrack", "1.4125375446227544", 0, 1, "Master"),
]


def _ardour_route(order: int, name: str, flags: str, gain: str, mute: int, solo: int, output: str, route_id: int,
                  *, automation: str = "Off") -> str:
    track = "Track" in flags
    playlist = f' audio-playlist="{route_id + 5000}" playlist="{name}.1"' if track else ""
    inputs = "" if name == "Master" else (
        f'      <Port type="audio" name="{name}/audio_in 1">\n'
        + ('        <Connection other="system:capture_1"/>\n' if track else "")
        + "      </Port>\n")
    return (
        f'    <Route version="7003" id="{route_id}" name="{name}" default-type="audio" strict-io="1" active="1" '
        f'denormal-protection="0" meter-point="MeterPostFader" disk-io-point="DiskIOPreFader" '
        f'meter-type="MeterPeak"{playlist} saved-meter-point="MeterPostFader" alignment-choice="Automatic" mode="Normal">\n'
        f'      <PresentationInfo order="{order}" flags="{flags},OrderSet" color="2290649343"/>\n'
        f'      <Controllable name="solo" id="{route_id + 1}" flags="Toggle,RealTime" value="{solo}" '
        f'self-solo="{solo}" soloed-by-upstream="0" soloed-by-downstream="0"/>\n'
        f'      <Controllable name="solo-iso" id="{route_id + 2}" flags="Toggle,RealTime" value="0" solo-isolated="0"/>\n'
        f'      <Controllable name="solo-safe" id="{route_id + 3}" flags="Toggle" value="0" solo-safe="0"/>\n'
        f'      <IO name="{name}" id="{route_id + 4}" direction="Input" default-type="audio" user-latency="0">\n'
        f"{inputs}"
        f"      </IO>\n"
        f'      <IO name="{name}" id="{route_id + 5}" direction="Output" default-type="audio" user-latency="0">\n'
        f'        <Port type="audio" name="{name}/audio_out 1">\n'
        f'          <Connection other="{"system:playback_1" if name == "Master" else output + "/audio_in 1"}"/>\n'
        f"        </Port>\n"
        f"      </IO>\n"
        f'      <MuteMaster mute-point="PreFader,PostFader,Listen,Main" muted="{mute}"/>\n'
        f'      <Controllable name="mute" id="{route_id + 6}" flags="Toggle,RealTime" value="{mute}"/>\n'
        f'      <Controllable name="phase" id="{route_id + 7}" flags="Toggle" value="0" phase-invert="00"/>\n'
        f'      <Automation>\n        <AutomationList automation-id="mute" id="{route_id + 8}" interpolation-style="Discrete" state="Off"/>\n'
        f"      </Automation>\n"
        f'      <Pannable>\n        <Controllable name="pan-azimuth" id="{route_id + 9}" flags="" value="0.5"/>\n      </Pannable>\n'
        f'      <Processor id="{route_id + 10}" name="Trim" active="1" user-latency="0" type="trim">\n'
        f'        <Controllable name="trimcontrol" id="{route_id + 11}" flags="GainLike" value="1"/>\n'
        f"      </Processor>\n"
        f'      <Processor id="{route_id + 12}" name="Amp" active="1" user-latency="0" type="amp">\n'
        f'        <Automation>\n          <AutomationList automation-id="gain" id="{route_id + 13}" '
        f'interpolation-style="Exponential" time-domain="AudioTime" state="{automation}">\n'
        + ('            <events>a0 1\na96000 0.5\n</events>\n' if automation != "Off" else "")
        + f"          </AutomationList>\n        </Automation>\n"
        f'        <Controllable name="gaincontrol" id="{route_id + 14}" flags="GainLike" value="{gain}"/>\n'
        f"      </Processor>\n"
        f'      <Processor id="{route_id + 15}" name="Meter" active="1" user-latency="0" type="meter"/>\n'
        f'      <Processor id="{route_id + 16}" name="{name}" active="1" user-latency="0" own-input="1" '
        f'own-output="0" output="{name}" type="main-outs" role="Main"/>\n'
        f"    </Route>\n"
    )


def ardour_session_text(*, routes: list[tuple[str, str, str, int, int, str]] | None = None, version: str = "7003",
                        automated: str | None = None) -> str:
    """An Ardour 8 session with ``routes`` (default :data:`ARDOUR_ROUTES`) and the master."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<Session version="{version}" name="song" sample-rate="44100" end-is-free="0" id-counter="9000" '
        'name-counter="1" event-counter="0" vca-counter="1">\n',
        '  <ProgramVersion created-with="Ardour 8.4.0" modified-with="Ardour 8.4.0"/>\n',
        "  <Config>\n",
        '    <Option name="native-file-data-format" value="FormatFloat"/>\n',
        '    <Option name="native-file-header-format" value="WAVE"/>\n',
        '    <Option name="timecode-format" value="timecode_30"/>\n',
        "  </Config>\n  <Metadata/>\n",
        "  <Sources>\n",
        '    <Source name="Kick-1.wav" type="audio" flags="" id="300" captured-for="Kick" channel="0" origin=""/>\n',
        "  </Sources>\n  <Regions/>\n  <Locations>\n",
        '    <Location id="400" name="session" start="a0" end="a352800" flags="IsSessionRange" locked="0" timestamp="0"/>\n',
        "  </Locations>\n  <Bundles/>\n  <VCAManager/>\n  <Routes>\n",
        _ardour_route(0, "Master", "MasterOut", "0.89125093813374", 0, 0, "", 100),
    ]
    for order, (name, flags, gain, mute, solo, output) in enumerate(routes or ARDOUR_ROUTES, start=1):
        parts.append(_ardour_route(order, name, flags, gain, mute, solo, output, 1000 + 100 * order,
                                   automation="Play" if name == automated else "Off"))
    parts.append("  </Routes>\n  <Playlists>\n")
    parts.append('    <Playlist id="5100" name="Kick.1" type="audio" orig-track-id="1100" shared-with-ids="" '
                 'frozen="0" combine-ops="0">\n    </Playlist>\n')
    parts.append("  </Playlists>\n  <UnusedPlaylists/>\n  <RouteGroups/>\n  <Click>\n"
                 '    <IO name="Click" id="8000" direction="Output" default-type="audio" user-latency="0"/>\n'
                 "  </Click>\n  <Script><![CDATA[ -- <Route name=\"decoy\"> ]]></Script>\n</Session>\n")
    return "".join(parts)


def write_project_with_stems(folder: Path, project_text: str, suffix: str, stems_from: Path) -> Path:
    """``folder/song<suffix>`` holding ``project_text``, and the demo's stems bounced into
    ``folder/stems`` as the tracks of :data:`STEMS_OF_TRACKS` (``Drums.wav``, ``Vocals.wav`` …)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stems").mkdir(exist_ok=True)
    for track, stem in STEMS_OF_TRACKS.items():
        shutil.copyfile(stems_from / f"{stem}.wav", folder / "stems" / f"{track}.wav")
    project = folder / f"song{suffix}"
    project.write_bytes(project_text.encode("utf-8"))
    return project
