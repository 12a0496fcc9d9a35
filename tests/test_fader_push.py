"""faderwise push: advice sent to a running DAW over OSC — dry run, apply, undo — against
stand-ins that play REAPER's and Ardour's side of the protocol (tests/osc_standins.py)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from osc_standins import StandInArdour, StandInReaper

from faderwise.cli import main

MIXER = {1: ("Drums", -3.0), 2: ("Kick", 0.0), 3: ("Snare", -1.0), 4: ("Overheads", -6.0), 5: ("Bass", 1.0),
         6: ("Keys", -9.0), 7: ("Guitars", 0.0), 8: ("Guitar", -2.0), 9: ("Gtr DI", 0.0), 10: ("Vocals", 3.0)}
NOTE = "fader moves are relative: each fader moves by the advised dB from where it is now"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "advice.json"
    path.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured", "text": "",
                                "moves": [{"stem": "vocals", "delta_db": -4.0}, {"stem": "drums", "delta_db": 3.0}]}))
    return path


def daws(listen: int) -> list[tuple[str, StandInReaper | StandInArdour, list[str]]]:
    reaper = StandInReaper(MIXER, device_port=listen)
    ardour = StandInArdour(MIXER)
    return [("reaper", reaper, ["--listen", str(listen)]), ("ardour", ardour, [])]


@pytest.mark.parametrize("which", ["reaper", "ardour"])
def test_dry_run_apply_undo(which: str, advice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listen = free_port()
    name, daw, extra = next(entry for entry in daws(listen) if entry[0] == which)
    where = f"{daw.name} at 127.0.0.1:{daw.port}"
    target = ["--osc", which, "--host", "127.0.0.1", "--port", str(daw.port), *extra]
    with daw:
        code, out, err = run(["push", str(advice), *target], capsys)
        assert (code, err) == (0, "")
        assert out.splitlines() == [
            f"dry run on {where}: {NOTE}",
            "  Vocals (stem vocals): +3.0 dB → -1.0 dB (move -4.0 dB)",
            "  Drums (stem drums): -3.0 dB → +0.0 dB (move +3.0 dB)",
            "nothing sent: run again with --apply to move these faders (faderwise push --undo puts them back)"]
        assert daw.levels() == {name: db for name, db in MIXER.values()}  # the dry run moved nothing
        assert not (tmp_path / "data" / "pushes").exists()

        code, out, err = run(["push", str(advice), *target, "--apply"], capsys)
        assert (code, err) == (0, "")
        records = sorted((tmp_path / "data" / "pushes").glob("push-*.json"))
        assert len(records) == 1
        assert out.splitlines()[0] == f"pushing to {where}: {NOTE}"
        assert out.splitlines()[-1] == f"moved 2 faders; faderwise push --undo --osc {which} puts them back (record {records[0]})"
        moved = {name: db for name, db in MIXER.values()} | {"Vocals": -1.0, "Drums": 0.0}
        assert daw.levels() == pytest.approx(moved, abs=1e-6)
        record = json.loads(records[0].read_text())
        assert record["faders"] == [
            {"track": "Vocals", "number": 10, "name": "Vocals", "stem": "vocals", "before_db": 3.0, "move_db": -4.0,
             "pushed_db": -1.0},
            {"track": "Drums", "number": 1, "name": "Drums", "stem": "drums", "before_db": -3.0, "move_db": 3.0,
             "pushed_db": 0.0}]

        assert record["faders"][0]["move_db"] == -4.0
        code, out, err = run(["push", str(advice), *target], capsys)  # the same advice again: said in the dry run
        assert code == 0 and (f"these moves were pushed already ({records[0]}) and the faders are still there: --apply "
                              "would refuse to move them twice (faderwise push --undo first, or --again)") in out
        code, out, err = run(["push", str(advice), *target, "--apply"], capsys)
        assert code == 2 and err == (f"faderwise: error: {where}: these moves were pushed already ({records[0]}) and the "
                                     "faders are still where that push left them, so pushing again would move them "
                                     "twice; faderwise push --undo puts them back first, --again pushes anyway\n")
        assert daw.levels() == pytest.approx(moved, abs=1e-6)
        assert len(list((tmp_path / "data" / "pushes").glob("push-*.json"))) == 1

        daw.tracks[10][1] = -2.5  # the producer moves the vocal after the push: undo leaves it alone
        code, out, err = run(["push", "--undo", "--osc", which, *extra], capsys)
        assert (code, err) == (0, "")
        assert out.splitlines() == ["put back Drums -3.0 dB",
                                    "  left Vocals at -2.5 dB: moved since the push, so it is yours now"]
        assert daw.levels()["Drums"] == pytest.approx(-3.0, abs=1e-6) and daw.levels()["Vocals"] == -2.5

        code, out, err = run(["push", "--undo", "--osc", which, *extra], capsys)
        assert code == 2 and out == ""
        assert err == f"faderwise: error: no push to {which} left to undo (records in {tmp_path / 'data' / 'pushes'})\n"
    assert daw.rejected == []  # every message had an address and argument types the DAW takes


def test_moves_past_the_fader_top_are_limited(advice: Path, capsys: pytest.CaptureFixture[str]) -> None:
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured", "text": "",
                                  "moves": [{"stem": "vocals", "delta_db": 5.0}]}))
    with StandInArdour(MIXER) as daw:
        code, out, err = run(["push", str(advice), "--osc", "ardour", "--port", str(daw.port), "--apply"], capsys)
        assert code == 0
        assert "  Vocals (stem vocals): +3.0 dB → +6.0 dB (move +5.0 dB) (limited)" in out.splitlines()
        assert err.replace("\n", " ").strip() == ("warning: Vocals: +3.0 dB +5.0 dB would be +8.0 dB, past Ardour's "
                                                  "+6 dB fader maximum: set to +6.0 dB, 2.0 dB short")
        assert daw.levels()["Vocals"] == pytest.approx(6.0, abs=1e-6)
    assert daw.rejected == []


def test_unreachable_daw_one_line_nothing_written(advice: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    port, listen = free_port(), free_port()
    code, out, err = run(["push", str(advice), "--osc", "reaper", "--port", str(port), "--listen", str(listen),
                          "--timeout", "0.3", "--apply"], capsys)
    assert (code, out) == (2, "")
    assert err == (f"faderwise: error: REAPER at 127.0.0.1:{port}: no answer within 0.3 s (listening on port {listen} "
                   f"for its replies); is REAPER running with OSC enabled on port {port}? REAPER sends its replies to "
                   "the device port of its OSC control surface (Preferences → Control/OSC/web → OSC: 'Device port', "
                   "9000 by default): --listen takes that port\n")
    code, out, err = run(["push", str(advice), "--osc", "ardour", "--port", str(port), "--listen", str(listen),
                          "--timeout", "0.3"], capsys)
    assert (code, out) == (2, "")
    assert err == (f"faderwise: error: Ardour at 127.0.0.1:{port}: no answer within 0.3 s (listening on port {listen} "
                   f"for its replies); is Ardour running with OSC enabled on port {port}? Ardour sends its replies "
                   "where its OSC setup's 'Port Mode' says: 'Manual' (the default) to its 'Reply Manual Port', 8000 by "
                   "default, 'Auto' to the port asked from; --listen takes the manual port\n")
    code, out, err = run(["push", str(advice), "--osc", "ardour", "--host", "no-such-host.invalid"], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("faderwise: error: no-such-host.invalid: unknown host (") and err.count("\n") == 1
    assert err.endswith("); give --host the machine Ardour runs on\n")
    assert not (tmp_path / "data").exists()


def test_a_stem_with_no_track_on_the_daw(advice: Path, capsys: pytest.CaptureFixture[str]) -> None:
    advice.write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured", "text": "",
                                  "moves": [{"stem": "theremin", "delta_db": 1.0}]}))
    listen = free_port()
    with StandInReaper(MIXER, device_port=listen) as daw:
        code, out, err = run(["push", str(advice), "--osc", "reaper", "--port", str(daw.port), "--listen", str(listen),
                              "--apply"], capsys)
        assert (code, out) == (2, "")
        assert err == (f"faderwise: error: {advice}: moves the stem 'theremin', but no track of REAPER at "
                       f"127.0.0.1:{daw.port} is named like it (tracks: Drums, Kick, Snare, Overheads, Bass, Keys, "
                       "Guitars, Guitar, Gtr DI, Vocals); map it with --map\n")
        assert daw.levels() == {name: db for name, db in MIXER.values()}


def test_a_playing_daw_sends_meters_without_end_and_the_faders_are_still_read(
        advice: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listen = free_port()
    with StandInReaper(MIXER, device_port=listen, playing=True) as daw:
        code, out, err = run(["push", str(advice), "--osc", "reaper", "--port", str(daw.port), "--listen", str(listen)],
                             capsys)
        assert (code, err) == (0, "")
        assert out.splitlines()[1:3] == ["  Vocals (stem vocals): +3.0 dB → -1.0 dB (move -4.0 dB)",
                                         "  Drums (stem drums): -3.0 dB → +0.0 dB (move +3.0 dB)"]
    assert daw.rejected == []
