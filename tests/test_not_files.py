"""Inputs that are not regular files: a named pipe (FIFO), whose open() waits for a writer forever;
a Unix socket; a device (/dev/zero never ends). Wherever faderwise reads a path — a project, a stem
file (named, or found in a folder or beside a project), a .stem.mp4, a map file, the config, advice,
a script, a training or evaluation config and its readers, the chat's workspace — each is refused by
name in one line (exit 2), promptly: every case runs under a watchdog, so a read that blocks fails
the test instead of hanging the suite. Then the size bound every whole-file read has."""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from daw_projects import STEMS_OF_TRACKS, reaper_project_text, write_project_with_stems

from conftest import noise_stems, write_stems
from faderwise.cli import main
from faderwise.tools.errors import InputTooLargeError, NotAFileError

RATE = 44_100
WATCHDOG_S = 10.0
"""Seconds a case may take; a refused input takes milliseconds, a blocked read takes forever."""
MEMORY_HEADROOM_BYTES = 4 << 30
"""Address space a case may add (4 GiB): an endless read of /dev/zero in C, which no signal
interrupts, then ends in a MemoryError instead of taking the machine's memory."""
KINDS = {"fifo": "a named pipe (FIFO)", "socket": "a socket", "device": "a character device"}
ADVICE = {"format": "faderwise.advice/1", "advisor": "measured", "text": "",
          "moves": [{"stem": "Bass", "delta_db": -1.0}]}


class Hung(BaseException):
    """Raised by the watchdog in the blocked call (a BaseException: no ``except Exception`` in the
    code under test can swallow it)."""


def _address_space_bytes() -> int | None:
    """This process's virtual memory size in bytes (Linux), or None where it is not known."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def returns_within(seconds: float = WATCHDOG_S) -> Iterator[None]:
    """Fail with :class:`Hung` when the block runs longer than ``seconds``: SIGALRM interrupts a
    blocked open() or read() (EINTR) and the handler raises in the main thread. Two backstops for a
    loop in C that no signal interrupts (Python reading /dev/zero to its end): the address space
    may grow by :data:`MEMORY_HEADROOM_BYTES` only (then MemoryError), and past three times
    ``seconds`` faulthandler prints every thread's stack and ends the run."""
    def alarm(signum: int, frame: object) -> None:
        raise Hung(f"still running after {seconds} s: something opened or read an input that blocks")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(3 * seconds, exit=True, file=sys.__stderr__)
    limits = resource.getrlimit(resource.RLIMIT_AS)
    used = _address_space_bytes()
    if used is not None and (limits[0] == resource.RLIM_INFINITY or limits[0] > used + MEMORY_HEADROOM_BYTES):
        cap = used + MEMORY_HEADROOM_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (cap if limits[1] == resource.RLIM_INFINITY else min(cap, limits[1]),
                                                limits[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, limits)
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a Unix socket's path must fit in 108 bytes, and pytest's
    tmp_path for a long test name does not."""
    folder = Path(tempfile.mkdtemp(prefix="fw-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def make_special() -> Iterator[Callable[[str, Path], str]]:
    """``make(kind, path)`` puts a FIFO, a bound Unix socket or a symlink to /dev/zero at ``path``
    and returns the refusal faderwise must print for it."""
    sockets: list[socket.socket] = []

    def make(kind: str, path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "socket":
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(path))
            server.listen(1)
            sockets.append(server)
        else:
            path.symlink_to("/dev/zero")
        return f"{path}: is {KINDS[kind]}, not a file; faderwise reads only regular files"

    yield make
    for server in sockets:
        server.close()


@pytest.fixture(autouse=True)
def plain_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty config and a private data folder: analyze and advise read the config first."""
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("FADERWISE_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    for name in ("FADERWISE_LLM", "FADERWISE_ADVISOR", "FADERWISE_ALM_MODEL", "FADERWISE_WORKERS"):
        monkeypatch.delenv(name, raising=False)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI under the watchdog; assert exit status 2 and one line on stderr; return that line."""
    with returns_within():
        code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, (argv, captured.out, captured.err)
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    return captured.err.removeprefix("faderwise: error: ").removesuffix("\n")


def small_stems(folder: Path, names: tuple[str, ...] = ("bass", "drums")) -> Path:
    stems = noise_stems(seconds=1.0)
    return write_stems(folder, {name: stems[name] for name in names}, RATE)


def project_with_stems(folder: Path, demo_dir: Path) -> Path:
    return write_project_with_stems(folder, reaper_project_text(), ".RPP", demo_dir / "version_a")


def write_advice(path: Path) -> Path:
    path.write_text(json.dumps(ADVICE))
    return path


def test_the_watchdog_interrupts_a_blocked_open(short_dir: Path) -> None:
    """What every case below relies on: opening a FIFO with no writer blocks, and the watchdog ends it."""
    os.mkfifo(short_dir / "pipe")
    with pytest.raises(Hung), returns_within(0.3):
        open(short_dir / "pipe", "rb").close()  # noqa: SIM115 - the point is that it never returns


# -- the CLI, one case per place a path is read ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_project_to_export_and_analyze(kind: str, short_dir: Path, make_special: Callable[[str, Path], str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    project = short_dir / "song.RPP"
    message = make_special(kind, project)
    advice = write_advice(short_dir / "advice.json")
    out = short_dir / "new.RPP"
    assert refused(["export", str(advice), "--project", str(project), "--out", str(out)], capsys) == message
    assert not out.exists()
    assert refused(["analyze", str(project)], capsys) == message
    assert refused(["advise", str(project)], capsys) == message


@pytest.mark.parametrize("kind", KINDS)
def test_a_stem_in_a_folder_is_refused_by_name(kind: str, short_dir: Path, make_special: Callable[[str, Path], str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = small_stems(short_dir / "stems")
    message = make_special(kind, folder / "vocals.wav")
    reference = small_stems(short_dir / "reference", ("bass", "drums", "vocals"))
    plot = short_dir / "plot.png"
    assert refused(["analyze", str(folder), "--plot", str(plot)], capsys) == message
    assert refused(["advise", str(folder)], capsys) == message
    assert refused(["advise", str(reference), "--reference", str(folder)], capsys) == message
    assert not plot.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_stem_mp4(kind: str, short_dir: Path, make_special: Callable[[str, Path], str],
                    capsys: pytest.CaptureFixture[str]) -> None:
    path = short_dir / "song.stem.mp4"
    message = make_special(kind, path)
    assert refused(["analyze", str(path)], capsys) == message
    assert refused(["advise", str(path)], capsys) == message


@pytest.mark.parametrize("kind", KINDS)
def test_a_bounced_stem_beside_a_project(kind: str, short_dir: Path, demo_dir: Path,
                                         make_special: Callable[[str, Path], str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    project = project_with_stems(short_dir / "song", demo_dir)
    (project.parent / "stems" / "Vocals.wav").unlink()
    message = make_special(kind, project.parent / "stems" / "Vocals.wav")
    assert refused(["analyze", str(project)], capsys) == message


@pytest.mark.parametrize("kind", KINDS)
def test_a_map_file(kind: str, short_dir: Path, demo_dir: Path, make_special: Callable[[str, Path], str],
                    capsys: pytest.CaptureFixture[str]) -> None:
    project = project_with_stems(short_dir / "song", demo_dir)
    advice = write_advice(short_dir / "advice.json")
    named = short_dir / "map.yaml"
    message = make_special(kind, named)
    assert refused(["analyze", str(project), "--map", str(named)], capsys) == message
    assert refused(["export", str(advice), "--project", str(project), "--map", str(named),
                    "--out", str(short_dir / "new.RPP")], capsys) == message
    beside = project.with_name("song.stems.yaml")  # used without being named: refused, not passed over
    message = make_special(kind, beside)
    assert refused(["analyze", str(project)], capsys) == message
    assert refused(["export", str(advice), "--project", str(project), "--out", str(short_dir / "new.RPP")],
                   capsys) == message
    assert not (short_dir / "new.RPP").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_a_map_file_names(kind: str, short_dir: Path, demo_dir: Path,
                                 make_special: Callable[[str, Path], str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    project = project_with_stems(short_dir / "song", demo_dir)
    message = make_special(kind, short_dir / "song" / "lead.wav")
    mapping = short_dir / "song" / "map.yaml"  # its files are relative to its folder
    mapping.write_text("".join(f"{track}: stems/{track}.wav\n" for track in STEMS_OF_TRACKS if track != "Vocals")
                       + "Vocals: lead.wav\n")
    assert refused(["analyze", str(project), "--map", str(mapping)], capsys) == message


@pytest.mark.parametrize("kind", KINDS)
def test_the_config_file(kind: str, short_dir: Path, make_special: Callable[[str, Path], str],
                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from faderwise.agent.config import load_config

    config = short_dir / "config.toml"
    message = make_special(kind, config)
    monkeypatch.setenv("FADERWISE_CONFIG", str(config))
    folder = small_stems(short_dir / "stems")
    assert refused(["analyze", str(folder)], capsys) == message
    assert refused(["advise", str(folder)], capsys) == message
    with returns_within(), pytest.raises(NotAFileError) as raised:
        load_config({"FADERWISE_CONFIG": str(config)})
    assert str(raised.value) == message


@pytest.mark.parametrize("kind", KINDS)
def test_an_advice_file(kind: str, short_dir: Path, demo_dir: Path, make_special: Callable[[str, Path], str],
                        capsys: pytest.CaptureFixture[str]) -> None:
    advice = short_dir / "advice.json"
    message = make_special(kind, advice)
    project = project_with_stems(short_dir / "song", demo_dir)
    out = short_dir / "out"
    assert refused(["apply", str(demo_dir / "version_a"), "--advice", str(advice), "--out", str(out)],
                   capsys) == message
    assert refused(["export", str(advice), "--project", str(project), "--out", str(short_dir / "new.RPP")],
                   capsys) == message
    assert refused(["export", str(advice), "--format", "csv", "--out", str(short_dir / "moves.csv")],
                   capsys) == message
    assert refused(["push", str(advice), "--osc", "reaper", "--port", "9", "--timeout", "0.1"], capsys) == message
    assert not out.exists() and not (short_dir / "new.RPP").exists() and not (short_dir / "moves.csv").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_script_and_the_training_and_evaluation_configs(kind: str, short_dir: Path,
                                                          make_special: Callable[[str, Path], str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = short_dir / "config.yaml"
    message = make_special(kind, path)
    for argv in (["run", str(path)], ["synth", str(path)], ["train", str(path)],
                 ["eval", "run", str(path), "--out", str(short_dir / "run")]):
        assert refused(argv, capsys) == message, argv


def test_dev_zero_and_dev_null_named_directly(short_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    zero = "/dev/zero: is a character device, not a file; faderwise reads only regular files"
    null = "/dev/null: is a character device, not a file; faderwise reads only regular files"
    assert refused(["export", "/dev/zero", "--format", "json", "--out", str(short_dir / "m.json")], capsys) == zero
    assert refused(["run", "/dev/null"], capsys) == null
    assert refused(["analyze", "/dev/zero"], capsys) == zero
    project = short_dir / "song.RPP"
    project.write_text(reaper_project_text())
    assert refused(["export", "/dev/null", "--project", str(project), "--out", str(short_dir / "n.RPP")],
                   capsys) == null
    assert refused(["analyze", str(project), "--map", "/dev/zero"], capsys) == zero
    monkeypatch.setenv("FADERWISE_CONFIG", "/dev/zero")
    assert refused(["analyze", str(small_stems(short_dir / "stems"))], capsys) == zero


def test_a_symlink_to_a_fifo_is_refused_under_the_name_given(short_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(short_dir / "pipe")
    project = short_dir / "song.RPP"
    project.symlink_to(short_dir / "pipe")
    folder = small_stems(short_dir / "stems")
    (folder / "vocals.wav").symlink_to(short_dir / "pipe")
    advice = write_advice(short_dir / "advice.json")
    assert refused(["export", str(advice), "--project", str(project), "--out", str(short_dir / "new.RPP")],
                   capsys) == f"{project}: is a named pipe (FIFO), not a file; faderwise reads only regular files"
    assert refused(["analyze", str(folder)], capsys) == (
        f"{folder / 'vocals.wav'}: is a named pipe (FIFO), not a file; faderwise reads only regular files")


# -- the chat's workspace and the library's other readers -----------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_chat_workspace_loads(kind: str, short_dir: Path, make_special: Callable[[str, Path], str]) -> None:
    from faderwise.agent.workspace import Workspace

    workspace = Workspace(output_dir=short_dir / "chat")
    project = short_dir / "song.RPP"
    project_message = make_special(kind, project)
    folder = small_stems(short_dir / "stems")
    stem_message = make_special(kind, folder / "vocals.wav")
    for load, path, message in ((workspace.load_stems, project, project_message),
                                (workspace.load_stems, folder, stem_message),
                                (workspace.set_reference, project, project_message),
                                (workspace.set_reference, folder, stem_message)):
        with returns_within(), pytest.raises(NotAFileError) as raised:
            load(path)
        assert str(raised.value) == message
    assert workspace.version_a is None and workspace.version_b is None


@pytest.mark.parametrize("kind", KINDS)
def test_the_training_evaluation_and_model_readers(kind: str, short_dir: Path,
                                                   make_special: Callable[[str, Path], str]) -> None:
    from faderwise.advisor.alm import MODEL_SETTINGS, model_settings
    from faderwise.advisor.ctranslate2_whisper import read_ctranslate2
    from faderwise.evals.advisors import read_items
    from faderwise.tools.bundle import is_bundle, read_bundle
    from faderwise.tools.daw.project import read_project
    from faderwise.training.datasets import read_mixparams
    from faderwise.training.midi import read_midi_file
    from faderwise.training.train import load_examples

    cases: list[tuple[Callable[[], object], Path]] = [
        (lambda: read_mixparams(short_dir / "mixparams.csv"), short_dir / "mixparams.csv"),
        (lambda: read_mixparams(short_dir / "mixparams.jsonl"), short_dir / "mixparams.jsonl"),
        (lambda: read_items(short_dir / "eval", split="test"), short_dir / "eval" / "manifest.jsonl"),
        (lambda: load_examples(short_dir / "train", "train", variant="differential"),
         short_dir / "train" / "manifest.jsonl"),
        (lambda: model_settings(short_dir / "model"), short_dir / "model" / MODEL_SETTINGS),
        (lambda: read_ctranslate2(short_dir / "model.bin"), short_dir / "model.bin"),
        (lambda: read_midi_file(short_dir / "song.mid"), short_dir / "song.mid"),
        (lambda: read_bundle(short_dir / "bundle"), short_dir / "bundle" / "bundle.json"),
        (lambda: is_bundle(short_dir / "bundle2"), short_dir / "bundle2" / "bundle.json"),
        (lambda: read_project(short_dir / "song.ardour"), short_dir / "song.ardour"),
    ]
    for call, path in cases:
        message = make_special(kind, path)
        with returns_within(), pytest.raises(NotAFileError) as raised:
            call()
        assert str(raised.value) == message, path


# -- a FIFO swapped in after the check, and the size bound ------------------------------------------------


def test_a_fifo_swapped_in_after_the_stat_is_refused_from_the_open_descriptor(
        short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stat before the open is skipped here, as if the file had been replaced by a FIFO in between:
    the non-blocking open returns at once and the check of the opened descriptor refuses it."""
    import faderwise.tools.input_files as input_files
    from faderwise.tools.audio_io import open_sound_file

    os.mkfifo(short_dir / "song.RPP")
    os.mkfifo(short_dir / "vocals.wav")
    monkeypatch.setattr(input_files, "check_regular_file", lambda *args, **kwargs: None)
    for call, path in ((lambda: input_files.read_bytes_bounded(short_dir / "song.RPP", limit=100, what="a project"),
                        short_dir / "song.RPP"),
                       (lambda: open_sound_file(short_dir / "vocals.wav"), short_dir / "vocals.wav")):
        with returns_within(), pytest.raises(NotAFileError) as raised:
            call()
        assert str(raised.value) == f"{path}: is a named pipe (FIFO), not a file; faderwise reads only regular files"


def test_a_project_one_byte_over_its_limit(short_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    project = short_dir / "song.RPP"
    project.write_text(reaper_project_text())
    size = project.stat().st_size
    assert size > 1024 and size % 1024  # the message then gives the exact bytes and KiB
    advice = write_advice(short_dir / "advice.json")
    argv = ["export", str(advice), "--project", str(project), "--format", "json", "--out", str(short_dir / "m.json")]
    monkeypatch.setattr("faderwise.tools.daw.project.PROJECT_LIMIT_BYTES", size - 1)
    assert refused(argv, capsys) == (f"{project}: is {size:,} bytes ({size / 1024:.1f} KiB); faderwise reads at most "
                                     f"{size - 1:,} bytes ({(size - 1) / 1024:.1f} KiB) as a project")
    monkeypatch.setattr("faderwise.tools.daw.project.PROJECT_LIMIT_BYTES", size)  # at the limit: read
    with returns_within():
        assert main(argv) == 0
    assert json.loads((short_dir / "m.json").read_text())["moves"][0]["track"] == "Bass"


def test_advice_map_and_config_one_byte_over_their_limits(short_dir: Path, demo_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    advice = write_advice(short_dir / "advice.json")
    project = project_with_stems(short_dir / "song", demo_dir)
    mapping = short_dir / "map.yaml"
    mapping.write_text("".join(f"{track}: stems/{track}.wav\n" for track in STEMS_OF_TRACKS))
    config = short_dir / "config.toml"
    config.write_text('advisor = "measured"\n')
    sizes = {path: path.stat().st_size for path in (advice, mapping, config)}
    assert all(size < 1024 for size in sizes.values())
    monkeypatch.setenv("FADERWISE_CONFIG", str(config))
    out = short_dir / "moves.json"

    monkeypatch.setattr("faderwise.advisor.model.ADVICE_LIMIT_BYTES", sizes[advice] - 1)
    assert refused(["export", str(advice), "--format", "json", "--out", str(out)], capsys) == (
        f"{advice}: is {sizes[advice]} bytes; faderwise reads at most {sizes[advice] - 1} bytes as advice")
    monkeypatch.setattr("faderwise.advisor.model.ADVICE_LIMIT_BYTES", sizes[advice])

    monkeypatch.setattr("faderwise.tools.daw.mapping.MAP_LIMIT_BYTES", sizes[mapping] - 1)
    assert refused(["export", str(advice), "--project", str(project), "--map", str(mapping), "--format", "json",
                    "--out", str(out)], capsys) == (
        f"{mapping}: is {sizes[mapping]} bytes; faderwise reads at most {sizes[mapping] - 1} bytes as a map file")
    monkeypatch.setattr("faderwise.tools.daw.mapping.MAP_LIMIT_BYTES", sizes[mapping])

    stems = small_stems(short_dir / "stems")
    monkeypatch.setattr("faderwise.agent.config.CONFIG_LIMIT_BYTES", sizes[config] - 1)
    assert refused(["analyze", str(stems)], capsys) == (
        f"{config}: is {sizes[config]} bytes; faderwise reads at most {sizes[config] - 1} bytes as a config file")
    monkeypatch.setattr("faderwise.agent.config.CONFIG_LIMIT_BYTES", sizes[config])

    with returns_within():  # each at exactly its limit: read
        assert main(["export", str(advice), "--project", str(project), "--map", str(mapping), "--format", "json",
                     "--out", str(out)]) == 0
    assert json.loads(out.read_text())["moves"][0]["track"] == "Bass"
    capsys.readouterr()
    with returns_within():
        assert main(["analyze", str(stems), "--json"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)["stems"]) == ["bass", "drums"]


def test_a_file_that_states_no_size_is_bounded_while_it_is_read(short_dir: Path) -> None:
    """A regular file may hold more than its size says (it grows while read, or the kernel makes it
    up as /proc does): the reader counts what it reads."""
    from faderwise.tools.input_files import read_bytes_bounded, read_text_bounded

    status = Path("/proc/self/status")
    if not status.is_file() or status.stat().st_size != 0:
        pytest.skip("needs Linux's /proc, whose files state a size of 0")
    with pytest.raises(InputTooLargeError) as raised:
        read_bytes_bounded(status, limit=16, what="a config file")
    assert str(raised.value) == "/proc/self/status: holds more than 16 bytes; faderwise reads at most 16 bytes as " \
                                "a config file"
    assert read_text_bounded(status, limit=1 << 20, what="a config file").startswith("Name:")


def test_an_mp3_with_bytes_before_its_first_frame_still_reads(short_dir: Path) -> None:
    """libsndfile knows such a file by its .mp3 suffix only, which a checked descriptor lacks: it is
    opened again by its path."""
    from faderwise.tools.audio_io import audio_header, read_audio

    sf.write(short_dir / "clean.mp3", noise_stems(seconds=1.0)["drums"].T, RATE, format="MP3")
    (short_dir / "padded.mp3").write_bytes(b"\0" * 64 + (short_dir / "clean.mp3").read_bytes())
    with returns_within():
        clean, rate = read_audio(short_dir / "clean.mp3")
        padded, padded_rate = read_audio(short_dir / "padded.mp3")
        header = audio_header(short_dir / "padded.mp3")
    assert rate == padded_rate == RATE and clean.shape[0] == padded.shape[0] == 2
    assert abs(padded.shape[1] - clean.shape[1]) <= 1152  # one MPEG frame at most
    assert header is not None and header[1:] == (RATE, 2)


def test_missing_files_and_folders_keep_their_messages(short_dir: Path, demo_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    advice = write_advice(short_dir / "advice.json")
    (short_dir / "folder.RPP").mkdir()
    out = str(short_dir / "new.RPP")
    assert refused(["export", str(advice), "--project", str(short_dir / "none.RPP"), "--out", out],
                   capsys) == f"{short_dir / 'none.RPP'}: no such file"
    assert refused(["export", str(advice), "--project", str(short_dir / "folder.RPP"), "--out", out],
                   capsys) == f"{short_dir / 'folder.RPP'}: cannot read it (Is a directory)"
    assert refused(["export", str(short_dir / "none.json"), "--format", "json", "--out", out],
                   capsys) == f"{short_dir / 'none.json'}: no such file"
    assert refused(["run", str(short_dir / "none.yaml")], capsys) == f"{short_dir / 'none.yaml'}: no such script"
    (short_dir / "stems").mkdir()
    sf.write(short_dir / "stems" / "bass.wav", np.zeros((RATE, 2), np.float32), RATE)
    (short_dir / "stems" / "drums.wav").symlink_to(short_dir / "gone.wav")  # dangling: passed over, as before
    with returns_within():
        assert main(["analyze", str(short_dir / "stems"), "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["stems"]) == ["bass"]
