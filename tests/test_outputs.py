"""The one guarded writer (tools/outputs.py): never over an input, never a replacement without
force (and then only of faderwise's own output), no window between the check and the rename,
nothing deleted that faderwise did not create, leftovers of killed runs cleaned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import faderwise.tools.outputs
from conftest import REPO, noise_stems, write_stems
from faderwise.tools.errors import InputOverlapError, OutputError, OutputExistsError
from faderwise.tools.outputs import (
    LEFTOVER_MIN_AGE_S,
    MARKER,
    STAGING_TAG,
    check_target,
    claim_run_folder,
    clean_leftovers,
    is_faderwise_output,
    note_input,
    output_file,
    output_folder,
    rename_noreplace,
    write_text,
)
from faderwise.tools.plot import pyplot, save_figure

NEVER = "faderwise never writes over its input: choose another place"


def test_a_target_that_is_holds_or_lies_inside_an_input_is_refused(tmp_path: Path) -> None:
    song = tmp_path / "song"
    stems = write_stems(song / "a", noise_stems(seconds=0.5), 44_100)
    advice = tmp_path / "advice.json"
    advice.write_text("{}")
    note_input(stems, advice)
    cases = {
        stems: f"{stems}: is an input of this command",
        song: f"{song}: holds the input {stems}",
        stems / "vocals.wav": f"{stems / 'vocals.wav'}: lies inside the input {stems}",
        stems / "new" / "deeper": f"{stems / 'new' / 'deeper'}: lies inside the input {stems}",
        advice: f"{advice}: is an input of this command",
        tmp_path: f"{tmp_path}: holds the input {advice}" if advice < stems else f"{tmp_path}: holds the input {stems}",
    }
    for target, message in cases.items():
        for folder in (True, False):
            for force in (True, False):
                with pytest.raises(InputOverlapError) as raised:
                    check_target(target, folder=folder, force=force)
                assert str(raised.value) == f"{message}; {NEVER}"
    # another name for the same file (a symbolic link) is the same input
    link = tmp_path / "link.json"
    link.symlink_to(advice)
    with pytest.raises(InputOverlapError, match="is an input of this command"):
        check_target(link, folder=False, force=True)
    # an input named by the caller counts as well
    other = tmp_path / "other.txt"
    other.write_text("mine")
    with pytest.raises(InputOverlapError, match="is an input"):
        write_text(other, "x", force=True, inputs=[other])
    assert other.read_text() == "mine"


def test_a_child_of_a_file_is_one_clear_error(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("keep")
    with pytest.raises(OutputError) as raised:
        write_text(file / "plot.png", "x")
    assert str(raised.value) == f"{file / 'plot.png'}: cannot be created: {file} is a file, not a folder"
    with pytest.raises(OutputExistsError) as raised:
        write_text(tmp_path, "x")
    assert str(raised.value) == f"{tmp_path}: is a folder; name a new file"
    with pytest.raises(OutputExistsError) as raised:
        with output_folder(file, kind="test"):
            pass
    assert str(raised.value) == f"{file}: is a file; name a new folder"
    assert file.read_text() == "keep"


def test_nothing_is_replaced_without_force_and_force_replaces_only_faderwise_output(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "song.wav").write_bytes(b"the producer's")
    with pytest.raises(OutputExistsError) as raised:
        with output_folder(mine, kind="render"):
            pass
    assert str(raised.value) == f"{mine}: already exists; choose a new folder or pass --force to replace it"
    with pytest.raises(OutputExistsError) as raised:
        with output_folder(mine, kind="render", force=True):
            pass
    assert str(raised.value) == (f"{mine}: not something faderwise wrote (holds no {MARKER}), so --force will not "
                                 "replace it; move it away yourself or choose another place")
    assert (mine / "song.wav").read_bytes() == b"the producer's"

    ours = tmp_path / "ours"
    with output_folder(ours, kind="render") as staging:
        (staging / "one.txt").write_text("1")
    assert json.loads((ours / MARKER).read_text())["kind"] == "render"
    with output_folder(ours, kind="render", force=True) as staging:
        (staging / "two.txt").write_text("2")
    assert sorted(p.name for p in ours.iterdir()) == [MARKER, "two.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "ours"]  # no staging or retired copy left

    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder made beforehand holds nothing to lose
    with output_folder(empty, kind="render") as staging:
        (staging / "x.txt").write_text("x")
    assert (empty / "x.txt").read_text() == "x"


def test_files_are_recognised_by_their_signature(tmp_path: Path) -> None:
    plt = pyplot()
    figure, _ = plt.subplots()
    plot = save_figure(figure, tmp_path / "plot.png")
    assert is_faderwise_output(plot)
    figure, _ = plt.subplots()
    figure.savefig(tmp_path / "theirs.png")
    assert not is_faderwise_output(tmp_path / "theirs.png")
    figure, _ = plt.subplots()
    with pytest.raises(OutputExistsError, match="carries no faderwise signature"):
        save_figure(figure, tmp_path / "theirs.png", force=True)
    figure, _ = plt.subplots()
    save_figure(figure, plot, force=True)  # an earlier faderwise plot may go

    (tmp_path / "a.json").write_text(json.dumps({"format": "faderwise.model-evaluation/1"}))
    (tmp_path / "b.json").write_text(json.dumps({"format": "something/1"}))
    (tmp_path / "c.jsonl").write_text(json.dumps({"format": "faderwise.transcript/2"}) + "\n{}\n")
    (tmp_path / "d.md").write_text("<!-- written by faderwise: session export -->\n# hi\n")
    (tmp_path / "e.md").write_text("# my notes\n")
    assert [is_faderwise_output(tmp_path / name) for name in ("a.json", "b.json", "c.jsonl", "d.md", "e.md")] == [
        True, False, True, True, False]


def test_the_rename_never_replaces_what_appeared_meanwhile(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(OutputExistsError) as raised:
        with output_folder(out, kind="render") as staging:
            (staging / "mix.wav").write_bytes(b"ours")
            out.mkdir()
            (out / "theirs.txt").write_text("created during the render")
    assert str(raised.value) == f"{out}: appeared while faderwise was writing it (another run?); nothing was replaced"
    assert (out / "theirs.txt").read_text() == "created during the render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

    file = tmp_path / "plot.png"
    with pytest.raises(OutputExistsError, match="appeared while faderwise was writing it"):
        with output_file(file) as staging:
            staging.write_bytes(b"ours")
            file.write_bytes(b"theirs")
    assert file.read_bytes() == b"theirs"

    # with --force, what appeared is still not faderwise's and stays
    with pytest.raises(OutputExistsError, match="not something faderwise wrote"):
        with output_folder(out, kind="render", force=True) as staging:
            (staging / "mix.wav").write_bytes(b"ours")
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]


def test_rename_noreplace_with_and_without_the_system_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for native in (True, False):
        if not native:
            monkeypatch.setattr(faderwise.tools.outputs, "_native_noreplace", lambda source, target: None)
        folder = tmp_path / f"native-{native}"
        folder.mkdir()
        (folder / "a").write_text("a")
        (folder / "b").write_text("b")
        with pytest.raises(FileExistsError):
            rename_noreplace(folder / "a", folder / "b")
        assert (folder / "a").read_text() == "a" and (folder / "b").read_text() == "b"
        rename_noreplace(folder / "a", folder / "c")
        assert sorted(p.name for p in folder.iterdir()) == ["b", "c"]
        (folder / "d").mkdir()
        with pytest.raises(FileExistsError):
            rename_noreplace(folder / "d", folder / "b")
        rename_noreplace(folder / "d", folder / "e")
        assert (folder / "e").is_dir()


WRITER = """
import sys, time
from pathlib import Path
from faderwise.tools.outputs import output_folder
with output_folder(Path(sys.argv[1]), kind="render") as staging:
    (staging / "mix.wav").write_bytes(sys.argv[2].encode())
    time.sleep(float(sys.argv[3]))
print("done")
"""


def test_two_concurrent_writers_exactly_one_wins(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runs = [subprocess.Popen([sys.executable, "-c", WRITER, str(out), name, "1.0"], cwd=REPO, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in ("first", "second")]
    results = [(run.wait(timeout=60), run.stdout.read(), run.stderr.read()) for run in runs]  # type: ignore[union-attr]
    assert sorted(code for code, _, _ in results) == [0, 1]
    loser = next(stderr for code, _, stderr in results if code)
    assert loser.strip().splitlines()[-1] == (f"faderwise.tools.errors.OutputExistsError: {out}: appeared while faderwise was "
                                              "writing it (another run?); nothing was replaced")
    winner = next(index for index, (code, _, _) in enumerate(results) if code == 0)
    assert (out / "mix.wav").read_bytes() == ("first", "second")[winner].encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


HOLD = """
import sys, time
from pathlib import Path
from faderwise.tools.outputs import output_folder
with output_folder(Path(sys.argv[1]), kind="render") as staging:
    print(staging, flush=True)
    time.sleep(30)
"""


def test_leftovers_of_a_killed_run_are_cleaned_and_live_ones_kept(tmp_path: Path) -> None:
    old = time.time() - 2 * LEFTOVER_MIN_AGE_S
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "busy")], cwd=REPO, text=True,
                              stdout=subprocess.PIPE)
    live = Path(holder.stdout.readline().strip())  # type: ignore[union-attr]
    dead_folder = tmp_path / ".out.faderwise-partial-dead"
    dead_folder.mkdir()
    (dead_folder / "mix.wav").write_bytes(np.zeros(1000, np.float32).tobytes())
    dead_file = tmp_path / ".plot.png.faderwise-partial-dead.png"
    dead_file.write_bytes(b"half a plot")
    young = tmp_path / ".young.faderwise-partial-x"
    young.mkdir()
    # a killed --force had moved the earlier render aside and never put the new one in place
    retired = tmp_path / ".render.faderwise-old-dead"
    (retired / "render").mkdir(parents=True)
    (retired / "render" / "mix.wav").write_bytes(b"earlier render")
    for path in (dead_folder, dead_file, retired, live):
        os.utime(path, (old, old))
    try:
        handled = clean_leftovers(tmp_path, again=True)
        assert sorted(p.name for p in handled) == sorted([dead_folder.name, dead_file.name, retired.name])
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, young.name, "render"])
        assert (tmp_path / "render" / "mix.wav").read_bytes() == b"earlier render"
    finally:
        holder.kill()
        holder.wait()
    os.utime(live, (old, old))
    clean_leftovers(tmp_path, again=True)  # its writer is dead now
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([young.name, "render"])


def test_outputs_follow_the_umask_and_private_ones_are_the_owners_only(tmp_path: Path) -> None:
    public = write_text(tmp_path / "report.md", "x")
    private = write_text(tmp_path / "chat.md", "x", private=True)
    umask = faderwise.tools.outputs._UMASK
    assert public.stat().st_mode & 0o777 == 0o666 & ~umask
    assert private.stat().st_mode & 0o777 == 0o600
    with output_folder(tmp_path / "render", kind="render") as staging:
        (staging / "a").write_text("a")
    assert (tmp_path / "render").stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_run_folder_is_claimed_and_resumed_only_by_its_own_kind(tmp_path: Path) -> None:
    run = claim_run_folder(tmp_path / "run", kind="eval-run")
    write_text(run / "report.md", "first")
    assert claim_run_folder(tmp_path / "run", kind="eval-run") == run
    write_text(run / "report.md", "second", force=True)  # inside its own run folder, a rewrite is allowed
    assert (run / "report.md").read_text() == "second"
    with pytest.raises(OutputExistsError) as raised:
        claim_run_folder(run, kind="synth")
    assert str(raised.value) == f"{run}: holds a faderwise eval-run output, not a synth run; choose another folder"
    music = tmp_path / "Music"
    music.mkdir()
    (music / "song.wav").write_bytes(b"x")
    with pytest.raises(OutputExistsError) as raised:
        claim_run_folder(music, kind="synth")
    assert str(raised.value) == f"{music}: already exists and is not a faderwise synth folder; choose a new folder"
    legacy = tmp_path / "old-run"
    legacy.mkdir()
    (legacy / "log.jsonl").write_text("")
    claim_run_folder(legacy, kind="train", legacy="log.jsonl")  # a run from before markers existed
    assert json.loads((legacy / MARKER).read_text())["kind"] == "train"


def test_the_processes_of_one_run_claim_its_folder_at_once(tmp_path: Path) -> None:
    """Seen in CI under torchrun: rank 1 looked while rank 0 was writing the marker (its staging file
    the only entry) and refused the folder as someone else's."""
    claiming = tmp_path / "two"
    claiming.mkdir()
    (claiming / f"{MARKER}{STAGING_TAG}k2x9").write_text("{")  # rank 0's marker, half written
    assert claim_run_folder(claiming, kind="train") == claiming  # rank 1 joins
    assert json.loads((claiming / MARKER).read_text())["kind"] == "train"
    (claiming / "notes.txt").write_text("mine")
    other = tmp_path / "other"
    other.mkdir()
    (other / f"{MARKER}{STAGING_TAG}k2x9").write_text("{")
    (other / "song.wav").write_bytes(b"x")  # something else in it: not a run being claimed
    with pytest.raises(OutputExistsError) as raised:
        claim_run_folder(other, kind="train")
    assert str(raised.value) == f"{other}: already exists and is not a faderwise train folder; choose a new folder"


def test_concurrent_calls_each_keep_their_own_inputs(tmp_path: Path) -> None:
    """Two calls at once (the MCP server runs tool calls on threads): each is refused its own input's
    insides, and allowed the other's; neither loses its register when the other ends first."""
    import threading

    from faderwise.tools.outputs import command_inputs, noted_inputs

    first_input, second_input = tmp_path / "first", tmp_path / "second"
    first_input.mkdir()
    second_input.mkdir()
    both_open, first_done = threading.Barrier(2, timeout=10), threading.Event()
    seen: dict[str, object] = {}

    def verdict(target: Path) -> str:
        try:
            check_target(target, folder=True)
        except InputOverlapError as exc:
            return str(exc)
        return "allowed"

    def first() -> None:
        with command_inputs(first_input):
            both_open.wait()  # the second call opened its own register after this one
            seen["first own"] = verdict(first_input / "out")
            seen["first other"] = verdict(second_input / "out")
        first_done.set()

    def second() -> None:
        with command_inputs(second_input):
            both_open.wait()
            first_done.wait(10)  # the first call has ended: this one's register is still its own
            note_input(tmp_path / "late")
            seen["second own"] = verdict(second_input / "out")
            seen["second late"] = verdict(tmp_path / "late" / "out")
            seen["second other"] = verdict(first_input / "out")
            seen["second noted"] = noted_inputs()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen == {
        "first own": f"{first_input / 'out'}: lies inside the input {first_input}; {NEVER}",
        "first other": "allowed",
        "second own": f"{second_input / 'out'}: lies inside the input {second_input}; {NEVER}",
        "second late": f"{tmp_path / 'late' / 'out'}: lies inside the input {tmp_path / 'late'}; {NEVER}",
        "second other": "allowed",
        "second noted": frozenset({second_input.resolve(), (tmp_path / "late").resolve()}),
    }
