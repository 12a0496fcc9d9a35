"""The real-Ardour harness (tests/real_ardour.py) against Ardour 7 itself: a session made, read,
rendered, bounced and driven over OSC, each checked sample by sample or message by message.

One session of 2-second sines (48 kHz) is made once for the module: Vox (mono, -6 dB), Gtr (stereo,
-1.5 dB, on the VCA "Lead" at -2 dB), Kick (mono, 0 dB, 24-bit, into the bus Drums at -3 dB), Pad
(mono, gain automation -6 → -12 dB in Play), an empty MIDI track Keys. Skips when Ardour 7 is not
installed; about 25 s in all.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import real_ardour as ra
import soundfile as sf
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

RATE = 48_000
N = 2 * RATE
EDGE = ra.REGION_FADE_SAMPLES  # Ardour's region fades: compare inside them


def _db(x: float) -> float:
    return 10 ** (x / 20)


def _sine(frequency: float, amplitude: float) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(N) / RATE)).astype(np.float32)


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    ra.require_ardour()
    folder = tmp_path_factory.mktemp("real_ardour")
    sources = {"vox": _sine(440, 0.5), "gtr": np.stack([_sine(220, 0.25), _sine(330, 0.125)], axis=1),
               "kick": _sine(110, 0.3), "pad": _sine(550, 0.2)}
    for name, audio in sources.items():
        sf.write(folder / f"{name}.wav", audio, RATE, subtype="PCM_24" if name == "kick" else "FLOAT")
    sources["kick"] = sf.read(folder / "kick.wav", dtype="float32")[0]  # as 24 bits hold it
    session = ra.make_session(
        folder, "song",
        [("Vox", folder / "vox.wav", 1, -6.0, None), ("Gtr", folder / "gtr.wav", 2, -1.5, None),
         ("Kick", folder / "kick.wav", 1, 0.0, "Drums"), ("Pad", folder / "pad.wav", 1, 0.0, None)],
        buses=[("Drums", -3.0)], vca=("Lead", -2.0, ["Gtr"]), midi_track="Keys",
        automation=("Pad", [(0.0, -6.0), (1.0, -12.0)]))
    assert session == folder / "song" / "song.ardour"
    return session, sources


def test_make_session_and_read_faders(song: tuple[Path, dict[str, np.ndarray]]) -> None:
    faders = ra.read_faders(song[0])
    assert list(faders) == ["Vox", "Gtr", "Kick", "Pad", "Drums", "Keys", "Master", "Lead"]
    assert {n: f["kind"] for n, f in faders.items()} == {
        "Vox": "audio_track", "Gtr": "audio_track", "Kick": "audio_track", "Pad": "audio_track",
        "Drums": "bus", "Keys": "midi_track", "Master": "master", "Lead": "vca"}
    gains = {n: f["gain_db"] for n, f in faders.items()}
    # Gtr: its -1.5 dB fader times the VCA's -2 dB; Pad: 0 dB while its automation plays, stopped
    assert gains == pytest.approx({"Vox": -6, "Gtr": -3.5, "Kick": 0, "Pad": 0, "Drums": -3, "Keys": 0,
                                   "Master": 0, "Lead": -2}, abs=1e-5)
    assert (faders["Gtr"]["vca"], faders["Gtr"]["vca_gain_db"]) == ("Lead", pytest.approx(-2, abs=1e-5))
    assert faders["Gtr"]["vca_factor_db"] == pytest.approx(-2, abs=1e-5)
    assert faders["Vox"]["vca"] is None and faders["Vox"]["vca_factor_db"] == 0
    assert [faders[n]["automation"] for n in ("Vox", "Pad")] == ["Off", "Play"]
    assert {n: faders[n]["outputs"] for n in ("Vox", "Gtr", "Kick", "Pad", "Drums")} == {
        "Vox": ["Master"], "Gtr": ["Master"], "Kick": ["Drums"], "Pad": ["Master"], "Drums": ["Master"]}
    for track in ("Vox", "Gtr", "Kick", "Pad"):
        assert (faders[track]["regions"], faders[track]["region_samples"]) == (1, N)
    assert faders["Keys"]["regions"] == 0


def test_render_is_the_mix_with_the_pan_law(song: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    session, src = song
    mix, rate = sf.read(ra.render(session, tmp_path / "mix.wav"), dtype="float64", always_2d=True)
    assert (mix.shape, rate) == ((N, 2), RATE)
    pan = _db(ra.PAN_LAW_DB)
    steady = slice(int(1.1 * RATE), N - EDGE)  # Pad's automation has settled at -12 dB
    for ch in range(2):
        expected = (src["vox"] * _db(-6) * pan + src["gtr"][:, ch] * _db(-3.5)
                    + src["kick"] * _db(-3) * pan + src["pad"] * _db(-12) * pan)
        assert np.max(np.abs(mix[steady, ch] - expected[steady])) < 1e-5
        # the pan law on its own: Kick's share of the channel, fitted
        rest = mix[steady, ch] - (expected[steady] - src["kick"][steady] * _db(-3) * pan)
        gain = np.dot(rest, src["kick"][steady]) / np.dot(src["kick"][steady], src["kick"][steady])
        assert 20 * np.log10(gain) - (-3) == pytest.approx(ra.PAN_LAW_DB, abs=1e-3)


def test_bounce_stems(song: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    session, src = song
    before = session.read_bytes()
    stems = ra.bounce_stems(session, tmp_path / "stems")
    assert list(stems) == ["Vox", "Gtr", "Kick", "Pad"]
    inner = slice(EDGE, N - EDGE)
    pan = _db(ra.PAN_LAW_DB)
    expected = {"Vox": np.stack([src["vox"] * _db(-6) * pan] * 2, axis=1),  # stereo, pan law applied
                "Gtr": src["gtr"] * _db(-3.5),
                "Kick": np.stack([src["kick"] * pan] * 2, axis=1)}  # before its bus
    for name, want in expected.items():
        audio, rate = sf.read(stems[name], dtype="float64", always_2d=True)
        assert (audio.shape, rate, sf.info(stems[name]).subtype) == ((N, 2), RATE, "FLOAT")
        assert np.max(np.abs(audio[inner] - want[inner])) < 1e-6, name
    through = ra.bounce_stems(session, tmp_path / "through_master", ["Kick"], through="master")
    audio = sf.read(through["Kick"], dtype="float64", always_2d=True)[0]
    assert np.max(np.abs(audio[inner] - expected["Kick"][inner] * _db(-3))) < 1e-6  # with the bus
    assert session.read_bytes() == before
    assert not list(session.parent.glob("faderwise-stem-*"))
    assert not list((session.parent / "interchange").rglob("faderwise-stem-*"))


def _osc(address: str, *args: object) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def _receive(sock: socket.socket, seconds: float = 5.0, quiet: float = 0.3) -> list[tuple[str, list]]:
    """The messages on ``sock``, from the first until none came for ``quiet`` seconds, within ``seconds``."""
    messages: list[tuple[str, list]] = []
    deadline = end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        end = min(deadline, time.monotonic() + quiet)
        message = OscMessage(data)
        messages.append((message.address, list(message.params)))
    return messages


def test_running_ardour_answers_osc_on_port_8000(song: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    session = tmp_path / "song" / "song.ardour"
    shutil.copytree(song[0].parent, session.parent)
    replies = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        replies.bind(("127.0.0.1", ra.OSC_REPLY_PORT))
    except OSError as error:
        replies.close()
        pytest.skip(f"UDP port {ra.OSC_REPLY_PORT}, where Ardour replies, is taken: {error}")
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    for sock in (replies, client):
        sock.settimeout(0.1)
    strips = {1: "Vox", 2: "Gtr", 3: "Kick", 4: "Pad", 5: "Drums", 6: "Keys"}
    with replies, client, ra.running_ardour(session) as port:
        assert ra.OSC_PORT <= port < ra.OSC_PORT + 20
        client.sendto(_osc("/set_surface", 0, 15, 3, 0), ("127.0.0.1", port))
        got = _receive(replies)  # Ardour 7.3 sends every strip's state twice
        names = {a[0]: a[1] for m, a in got if m == "/strip/name"}
        gains = {a[0]: a[1] for m, a in got if m == "/strip/gain"}
        assert names == strips
        assert gains == pytest.approx({1: -6, 2: -3.5, 3: 0, 4: 0, 5: -3, 6: 0}, abs=1e-5)
        assert _receive(client, seconds=0.5) == []  # nothing to the port that asked

        client.sendto(_osc("/strip/gain", 3, -4.5), ("127.0.0.1", port))
        moved = _receive(replies)
        assert [a for m, a in moved if m == "/strip/gain"] == [[3, pytest.approx(-4.5, abs=1e-5)]]

        saved = session.stat().st_mtime_ns
        client.sendto(_osc("/save_state"), ("127.0.0.1", port))
        deadline = time.monotonic() + 5
        while session.stat().st_mtime_ns == saved and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session.stat().st_mtime_ns != saved, "/save_state did not save"
    assert '<Protocol name="Open Sound Control (OSC)" feedback="0" debugmode="0" address-only="1" ' \
           'remote-port="8000"' in session.read_text()  # Ardour's defaults, as it saves them
    assert ra.read_faders(session)["Kick"]["gain_db"] == pytest.approx(-4.5, abs=1e-5)
