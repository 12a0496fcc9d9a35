"""faderwise as a person runs it: built into a wheel from a copy of the source, installed into a
fresh virtual environment, run by its console script from a folder outside the repository, with
its data folder and home in temporary folders; the chat in a real terminal (tmux, tests/terminal.py).

The new environment sees the test environment's packages through a ``.pth`` file of plain paths
(nothing is downloaded), but not the editable install of the source tree: every ``faderwise`` here
is the wheel's. Commands write into folders of the test's; nothing touches the user's data.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from daw_projects import reaper_project_text, write_project_with_stems
from osc_standins import StandInReaper
from terminal import Terminal, left_of, right_of, tmux_missing

REPO = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
IGNORED = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "data", "runs", "*.egg-info", "__pycache__",
                                 ".pytest_cache", "node_modules")
STEMS = ["bass", "drums", "guitar", "keys", "vocals"]
NOTE = "fader moves are relative: each fader moves by the advised dB from where it is now"
# what the demo song's advice says: Version A is B with the vocals 4 dB up and the drums 3 dB down
VOCALS = ("Lower the vocals by about 4 dB: in your mix this stem is 4.0 dB louder than in the reference "
          "(-15.0 against -19.0 LUFS).")
DRUMS = ("Raise the drums by about 3 dB: in your mix this stem is 3.0 dB quieter than in the reference "
         "(-24.5 against -21.5 LUFS).")
MOVE_PATTERN = (r"(?P<verb>Lower|Raise) the (?P<stem>\w+) by about (?P<about>\d+) dB: in your mix this stem is "
                r"(?P<off>\d+\.\d) dB (?P<how>louder|quieter) than in the reference \((?P<a>-?\d+\.\d) against "
                r"(?P<b>-?\d+\.\d) LUFS\)\.")


# -- the installed wheel ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Installed:
    """A fresh virtual environment holding the wheel, and where its commands run."""

    venv: Path
    faderwise: Path  # its console script
    home: Path  # HOME and the XDG folders of every command
    work: Path  # a folder outside the repository, where commands run unless told otherwise

    def env(self, data: Path) -> dict[str, str]:
        """The environment of a command: the new venv first on PATH (the test venv's bin off it),
        faderwise's data folder ``data``, a home of its own, no settings of the user's."""
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("FADERWISE_", "PYTHON", "VIRTUAL_ENV", "TMUX", "XDG_"))
               and key not in ("COLUMNS", "LINES", "HOME", "OLDPWD", "PWD")}
        outer_bin = str(Path(sys.prefix) / "bin")
        path = [part for part in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if part and part != outer_bin]
        env.update(PATH=os.pathsep.join([str(self.venv / "bin"), *path]), VIRTUAL_ENV=str(self.venv),
                   HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"),
                   XDG_DATA_HOME=str(self.home / ".local" / "share"), XDG_CACHE_HOME=str(self.home / ".cache"),
                   XDG_STATE_HOME=str(self.home / ".local" / "state"), FADERWISE_DATA_DIR=str(data))
        return env

    def run(self, *args: str | Path, data: Path, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``faderwise ARGS`` with no terminal: stdin empty, stdout and stderr pipes."""
        return subprocess.run([str(self.faderwise), *map(str, args)], cwd=cwd or self.work, env=self.env(data),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``done`` once it exited 0 (else fail with what it printed)."""
    assert done.returncode == 0, (f"{shlex.join(map(str, done.args))} exited {done.returncode}\n"
                                  f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from a copy of the source, installed with ``--no-deps --no-index`` into a new venv."""
    import importlib.util

    for module, why in (("venv", "make a fresh environment for the wheel"), ("pip", "build and install the wheel")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{sys.executable} has no {module} module: cannot {why}")
    root = tmp_path_factory.mktemp("installed")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=IGNORED)
    # no download: the build backend is the test environment's setuptools when it has one
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w",
                            str(root / "wheels"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
    (wheel,) = (root / "wheels").glob("faderwise-*.whl")

    environment = root / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(environment)], capture_output=True,
                          text=True, timeout=120)
    if made.returncode != 0:
        pytest.skip(f"cannot make a virtual environment here ({sys.executable} -m venv): {made.stderr.strip()}")
    python = environment / "bin" / "python"
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"pip install of {wheel.name} failed:\n{done.stdout}\n{done.stderr}"
    # the test venv's packages, by plain path lines: its .pth files (the editable finder) do not run
    inner = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip())
    outer = [path for path in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                                             *sys.path]) if Path(path).name in ("site-packages", "dist-packages")]
    (inner / "_faderwise_test_dependencies.pth").write_text("".join(f"{path}\n" for path in outer))

    home, work = root / "home", root / "work"
    home.mkdir()
    work.mkdir()
    here = Installed(venv=environment, faderwise=environment / "bin" / "faderwise", home=home, work=work)
    probe = subprocess.run(
        [str(python), "-c", "import shutil, sys, faderwise.cli, faderwise.tools, faderwise.agent.tui; "
         "print(faderwise.__file__); print(shutil.which('faderwise')); print('editable' in repr(sys.meta_path)); "
         "print(faderwise.tools.__file__); print(faderwise.agent.tui.__file__)"],
        cwd=work, env=here.env(root / "data"), capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    module, script, editable, *modules = probe.stdout.splitlines()
    for each in (module, *modules):
        assert Path(each).is_relative_to(inner) and not Path(each).is_relative_to(REPO), each
    assert script == str(here.faderwise)
    assert editable == "False"  # the source tree's editable finder is not installed in this interpreter
    assert str(python) in "\n".join(here.faderwise.read_text().splitlines()[:3])  # its interpreter is the venv's
    assert not work.is_relative_to(REPO)
    return here


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """faderwise's data folder for one test (empty: the demo song is written on first use)."""
    return tmp_path / "data"


@pytest.fixture(scope="session")
def shared_data(installed: Installed) -> Path:
    """One data folder for the commands of the session's fixtures."""
    return installed.work.parent / "data"


@pytest.fixture(scope="session")
def demo(installed: Installed, shared_data: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``faderwise demo --out song``, run in the work folder: what it printed and the folder."""
    done = installed.run("demo", "--out", "song", data=shared_data)
    return done, installed.work / "song"


@pytest.fixture(scope="session")
def song(demo: tuple[subprocess.CompletedProcess[str], Path]) -> Path:
    ok(demo[0])
    return demo[1]


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    """Makes 120×40 terminals (``terminal(env=…, cwd=…)``); their tmux servers are killed at the end."""
    reason = tmux_missing()
    if reason:
        pytest.skip(reason)
    made: list[Terminal] = []

    def make(*, env: dict[str, str], cwd: Path) -> Terminal:
        made.append(Terminal(tmp_path / "tmux", env=env, cwd=cwd, width=120, height=40))
        return made[-1]

    yield make
    for each in made:
        each.close()


def chat_column(screen: str) -> str:
    """The conversation's text: left of the stems panel, below the header, above the hint line and
    the input box."""
    rows = screen.splitlines()[1:]
    box = next((i for i, row in enumerate(rows) if row.startswith("╭")), len(rows))
    return left_of("\n".join(rows[:max(box - 1, 0)]))


def stems_panel(screen: str) -> dict[str, list[str]]:
    """The chat's stems panel (right of the border): stem → A LUFS, B LUFS, A−B, move."""
    rows = {}
    for row in right_of(screen):
        cells = row.lstrip("▸ ").split()
        if len(cells) == 5 and cells[0] in STEMS:
            rows[cells[0]] = cells[1:]
    return rows


def number(cell: str) -> float | None:
    return None if cell == "·" else float(cell)


def moves_said(text: str) -> dict[str, dict[str, Any]]:
    """Each "Lower/Raise the STEM by about N dB: …" in ``text``, its numbers as floats."""
    found = {}
    for match in re.finditer(MOVE_PATTERN, text):
        fields: dict[str, Any] = match.groupdict()
        for key in ("about", "off", "a", "b"):
            fields[key] = float(fields[key])
        found[fields["stem"]] = fields
    return found


def assert_demo_moves(text: str) -> None:
    """The demo's advice in ``text``: vocals down by about 4 dB, drums up by about 3 dB, with the levels."""
    said = moves_said(text)
    assert set(said) == {"vocals", "drums"}, text
    vocals, drums = said["vocals"], said["drums"]
    assert (vocals["verb"], vocals["how"], drums["verb"], drums["how"]) == ("Lower", "louder", "Raise", "quieter")
    assert vocals["about"] == 4 and vocals["off"] == pytest.approx(4.0, abs=0.1)
    assert (vocals["a"], vocals["b"]) == (pytest.approx(-15.0, abs=0.1), pytest.approx(-19.0, abs=0.1))
    assert drums["about"] == 3 and drums["off"] == pytest.approx(3.0, abs=0.1)
    assert (drums["a"], drums["b"]) == (pytest.approx(-24.5, abs=0.1), pytest.approx(-21.5, abs=0.1))


def assert_demo_panel(screen: str) -> None:
    panel = stems_panel(screen)
    assert sorted(panel) == STEMS, screen
    assert [number(cell) for cell in panel["vocals"]] == [pytest.approx(x, abs=0.05) for x in (-15.0, -19.0, 4.0, -4.0)]
    assert [number(cell) for cell in panel["drums"]] == [pytest.approx(x, abs=0.05) for x in (-24.5, -21.5, -3.0, 3.0)]
    for stem in ("bass", "guitar", "keys"):
        assert number(panel[stem][2]) == pytest.approx(0.0, abs=0.05) and panel[stem][3] == "·", panel


SAVED = re.compile(r"^session ([0-9a-f]{12}) saved: faderwise chat --resume \1$", re.MULTILINE)
DEMO_GREETING = ("Welcome to faderwise. This is the demo song: Version A is the balanced reference B with vocals "
                 "+4 dB, drums -3 dB, and both are loaded. Try overview, \"which stem is furthest off?\", \"what "
                 "about the bass?\", \"why?\", then apply and compare. /help lists everything; faderwise chat STEMS "
                 "--reference REFERENCE opens your own song.")
OVERVIEW_END = "Ask why? about a stem, or say apply to render these moves."


# -- the chat in a terminal ---------------------------------------------------------------------------


def test_bare_faderwise_in_a_terminal_opens_the_chat_on_the_demo(installed: Installed, data: Path,
                                                                   terminal: Callable[..., Terminal]) -> None:
    """The README's first command: `faderwise`, no arguments, typed in a terminal."""
    term = terminal(env=installed.env(data), cwd=installed.work)
    term.start(["faderwise"])

    def greeted(screen: str) -> bool:
        """The greeting, and the header painted above it (a loaded machine can be caught between the two)."""
        return DEMO_GREETING in chat_column(screen) and bool(screen.strip()) and len(screen.splitlines()[0].split()) > 3

    screen = term.wait_for(greeted, timeout=90)
    assert screen.splitlines()[0].split()[1:4] == ["faderwise", "—", "session"]  # header: the new session's name
    assert screen.splitlines()[0].endswith("· offline")
    assert stems_panel(screen) == {stem: ["·", "·", "·", "·"] for stem in STEMS}  # nothing measured yet
    assert (data / "demo" / "manifest.json").is_file()  # written on first run, in the data folder

    term.type("overview")
    term.press("Enter")
    screen = term.wait_for(OVERVIEW_END, text=chat_column, timeout=90)
    chat = chat_column(screen)
    assert "overview ▔" in chat  # the question, as typed
    reply = chat.split("✓ advise()", 1)[1].strip()
    assert reply.startswith("Your mix is +1.6 LU against the reference overall. Compared with the reference, I'd "
                            "move 2 faders: • Lower the vocals")
    assert_demo_moves(reply)
    assert ("Leave the bass, the guitar and the keys as they are: they are within 0.5 dB of where they should "
            "be.") in reply
    assert_demo_panel(screen)

    term.press("C-q")
    assert term.wait_for_exit(timeout=30) == 0
    after = term.scrollback()  # what it printed after the app closed (the screen may have scrolled)
    printed = [line for line in after.splitlines() if line.strip() and not line.startswith("Pane is dead")]
    session = next(iter(SAVED.findall(after)), None)
    assert printed == [f"session {session} saved: faderwise chat --resume {session}"], after
    listed = ok(installed.run("sessions", data=data)).stdout.split()
    assert listed[0] == session and listed[-2:] == ["(offline)", str(data / "demo" / "version_a")]


@dataclasses.dataclass
class Chat:
    """A named chat on the demo's stems, started in the work folder, as it went."""

    data: Path
    session: str
    greeting: str
    answer: str
    printed: str


@pytest.fixture(scope="module")
def first_take(installed: Installed, song: Path, tmp_path_factory: pytest.TempPathFactory) -> Chat:
    """``faderwise chat song/version_a --reference song/version_b --name "first take"`` in a terminal:
    one question, then Ctrl+Q."""
    reason = tmux_missing()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("first-take")
    data = folder / "data"
    with Terminal(folder / "tmux", env=installed.env(data), cwd=installed.work) as term:
        term.start(["faderwise", "chat", "song/version_a", "--reference", "song/version_b", "--name", "first take"])
        greeting = term.wait_for("Ask for an overview, or /help.", text=chat_column, timeout=90)
        term.type("which stem is furthest off?")
        term.press("Enter")
        answer = term.wait_for("Ask why? for the evidence.", text=chat_column, timeout=90)
        term.press("C-q")
        status = term.wait_for_exit(timeout=30)
        printed = term.scrollback()
    assert status == 0, printed
    session = next(iter(SAVED.findall(printed)), "")
    return Chat(data=data, session=session, greeting=greeting, answer=answer, printed=printed)


def test_a_named_chat_on_your_stems(first_take: Chat, installed: Installed) -> None:
    song = installed.work / "song"
    greeting = f"Loaded 5 stems from {song / 'version_a'} and the reference {song / 'version_b'}. Ask for an " \
               "overview, or /help."  # relative paths made absolute: the session can be resumed from anywhere
    # compared without blanks: a path longer than the column is folded wherever it reaches the edge
    assert "".join(chat_column(first_take.greeting).split()).endswith("".join(greeting.split()))
    assert first_take.greeting.splitlines()[0].split() == ["⭘", "faderwise", "—", "first", "take", "·", "offline"]
    chat = chat_column(first_take.answer)
    assert chat.index("which stem is furthest off? ▔") < chat.index("✓ advise()")  # the question, then the tool
    reply = chat.split("which stem is furthest off? ▔", 1)[1].split("✓ advise()", 1)[1].strip()
    assert reply.startswith("The vocals are furthest off. Lower the vocals by about 4 dB")
    assert_demo_moves(reply)
    assert_demo_panel(first_take.answer)
    assert first_take.session, first_take.printed  # "session ID saved: faderwise chat --resume ID"


def test_the_named_chat_resumes_from_another_folder(first_take: Chat, installed: Installed, tmp_path: Path,
                                                   terminal: Callable[..., Terminal]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    term = terminal(env=installed.env(first_take.data), cwd=elsewhere)
    term.start(["faderwise", "chat", "--resume", "first take"])
    # the conversation comes back: the question, the tool call, the reply; no greeting this time
    screen = term.wait_for("Ask why? for the evidence.", text=chat_column, timeout=90)
    assert screen.splitlines()[0].split() == ["⭘", "faderwise", "—", "first", "take", "·", "offline"]
    chat = chat_column(screen)
    assert chat.index("which stem is furthest off? ▔") < chat.index("✓ advise()") < chat.index(
        "The vocals are furthest off.")
    assert "Loaded 5 stems" not in chat
    assert_demo_moves(chat.split("✓ advise()", 1)[1])
    panel = stems_panel(screen)  # the pending moves are back (levels show once something measures again)
    assert [number(panel[stem][3]) for stem in STEMS] == [None, pytest.approx(3.0, abs=0.05), None, None,
                                                          pytest.approx(-4.0, abs=0.05)]
    term.type("what about the bass?")  # answered from the stems, found again from this other folder
    term.press("Enter")
    bass = re.compile(r"✓ explain_stem\(stem='bass'\) Leave the bass as it is: it is within 0\.5 dB of where it "
                      r"should be \(measured move ([+-]\d+\.\d) dB\)\. Against its backing it sits at (-?\d+\.\d) LU "
                      r"in your mix and (-?\d+\.\d) LU in the reference\.")
    screen = term.wait_for(bass, text=chat_column, timeout=90)
    match = bass.search(chat_column(screen))
    assert match
    assert [float(x) for x in match.groups()] == [pytest.approx(0.0, abs=0.05), pytest.approx(-8.6, abs=0.1),
                                                  pytest.approx(-6.7, abs=0.1)]
    term.press("C-q")
    assert term.wait_for_exit(timeout=30) == 0
    assert SAVED.findall(term.scrollback()) == [first_take.session]


def test_sessions_list_rename_export_delete(first_take: Chat, installed: Installed, tmp_path: Path) -> None:
    data = tmp_path / "data"  # a copy: the other tests' session stays as it is
    shutil.copytree(first_take.data, data, ignore=shutil.ignore_patterns("locks"))
    session, song = first_take.session, installed.work / "song"
    listed = ok(installed.run("sessions", data=data))
    assert listed.stdout == f"{session}  first take  (offline)  {song / 'version_a'}\n"
    renamed = ok(installed.run("sessions", "rename", session[:6], "take two", data=data))
    assert renamed.stdout == f"renamed session {session} to 'take two'\n"
    exported = ok(installed.run("sessions", "export", "take two", "take.md", data=data, cwd=tmp_path))
    assert exported.stdout == "wrote take.md\n"
    markdown = (tmp_path / "take.md").read_text()
    assert markdown.startswith(f"<!-- written by faderwise: session export -->\n# take two\n\n- session: `{session}`\n"
                               f"- stems: `{song / 'version_a'}`\n- reference: `{song / 'version_b'}`\n"
                               "- model: `offline`\n")
    assert "## You\n\nwhich stem is furthest off?\n" in markdown
    assert_demo_moves(markdown.split("## faderwise\n\n", 1)[1])
    assert (tmp_path / "take.md").stat().st_mode & 0o777 == 0o600
    deleted = ok(installed.run("sessions", "delete", session, data=data))
    assert deleted.stdout == f"deleted session {session} (take two)\n"
    emptied = ok(installed.run("sessions", "list", data=data))
    assert emptied.stdout == "no saved sessions yet: faderwise chat starts one\n"
    gone = installed.run("sessions", "delete", session, data=data)
    assert (gone.returncode, gone.stdout) == (2, "")
    assert gone.stderr == f"faderwise: error: no session match {session!r}; saved sessions: none\n"


# -- outside a terminal -------------------------------------------------------------------------------


def table_rows(text: str) -> dict[str, list[str]]:
    """A rich table's body rows: first cell → the other cells."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows[cells[0]] = cells[1:]
    return rows


def test_bare_faderwise_outside_a_terminal_prints_the_demos_analysis(installed: Installed, data: Path) -> None:
    done = ok(installed.run(data=data))
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == (f"faderwise {VERSION}: the demo song. Version A is the balanced Version B with vocals +4 dB, "
                        "drums -3 dB.")
    rows = table_rows(done.stdout)
    assert list(rows) == [*STEMS, "mix"]
    # LUFS A, LUFS B, A − B
    assert [float(x) for x in rows["vocals"][:3]] == [pytest.approx(x, abs=0.05) for x in (-15.0, -19.0, 4.0)]
    assert [float(x) for x in rows["drums"][:3]] == [pytest.approx(x, abs=0.05) for x in (-24.5, -21.5, -3.0)]
    assert [float(x) for x in rows["mix"][:3]] == [pytest.approx(x, abs=0.05) for x in (-14.9, -16.5, 1.6)]
    for stem in ("bass", "guitar", "keys"):
        assert float(rows[stem][2]) == pytest.approx(0.0, abs=0.05)
    assert lines[-3:] == ["In a terminal, faderwise opens the chat on this song. Your own stems:",
                          "  faderwise chat STEMS_FOLDER --reference REFERENCE_FOLDER", "More: faderwise --help"]
    assert sorted(p.name for p in (data / "demo").iterdir()) == [".faderwise-output.json", "manifest.json",
                                                                 "version_a", "version_b"]


COMMANDS = ["demo", "analyze", "advise", "bundle", "apply", "export", "push", "mcp", "chat", "sessions", "run", "synth",
            "train", "eval"]
EVAL_STEPS = ["run", "packets", "ingest", "model"]


@pytest.mark.parametrize("command", ["", *COMMANDS, *(f"eval {step}" for step in EVAL_STEPS)],
                         ids=lambda c: c or "faderwise")
def test_every_help(command: str, installed: Installed, data: Path) -> None:
    done = ok(installed.run(*command.split(), "--help", data=data))
    assert done.stderr == ""
    assert done.stdout.startswith(f"usage: faderwise {command} [-h]".replace("  ", " ")), done.stdout
    if command in ("", "eval"):  # the commands it lists are the ones run here
        listed = re.findall(r"^    (\S+)  ", done.stdout, flags=re.MULTILINE)
        assert listed == (COMMANDS if command == "" else EVAL_STEPS)
    assert not data.exists()  # --help writes nothing


def test_version(installed: Installed, data: Path) -> None:
    assert ok(installed.run("--version", data=data)).stdout == f"faderwise {VERSION}\n"


# -- one real run of each command ---------------------------------------------------------------------


def test_demo(demo: tuple[subprocess.CompletedProcess[str], Path], installed: Installed, tmp_path: Path) -> None:
    done, song = demo
    ok(done)
    assert done.stdout == ("wrote song/version_a (your mix: vocals +4 dB, drums -3 dB against B), song/version_b "
                           "(balanced) and song/manifest.json\n")
    for version in ("version_a", "version_b"):
        assert sorted(p.name for p in (song / version).iterdir()) == [f"{stem}.wav" for stem in STEMS]
    info = sf.info(song / "version_a" / "vocals.wav")
    assert (info.samplerate, info.channels, info.duration) == (44_100, 2, 30.0)
    again = installed.run("demo", "--out", "song", data=tmp_path / "data")
    assert again.returncode == 2
    assert again.stderr == "faderwise: error: song: already exists; choose a new folder or pass --force to replace it\n"


def test_analyze(installed: Installed, song: Path, data: Path) -> None:
    done = ok(installed.run("analyze", "song/version_a", "--reference", "song/version_b", "--json", data=data))
    assert done.stderr == ""
    payload = json.loads(done.stdout)
    assert (payload["format"], payload["faderwise_version"]) == ("faderwise.analysis/1", VERSION)
    assert payload["version_a"]["source"] == "song/version_a" and payload["version_a"]["duration_s"] == 30.0
    differences = {stem: payload["stems"][stem]["a_minus_b"]["integrated_lu"] for stem in STEMS}
    assert differences == {"bass": pytest.approx(0.0, abs=0.01), "drums": pytest.approx(-3.0, abs=0.01),
                           "guitar": pytest.approx(0.0, abs=0.01), "keys": pytest.approx(0.0, abs=0.01),
                           "vocals": pytest.approx(4.0, abs=0.01)}
    assert payload["stems"]["vocals"]["a"]["integrated_lufs"] == pytest.approx(-15.0, abs=0.01)
    assert payload["mix_a_minus_b_lu"] == pytest.approx(1.6, abs=0.1)


@pytest.fixture(scope="session")
def advised(installed: Installed, song: Path, shared_data: Path) -> subprocess.CompletedProcess[str]:
    """``faderwise advise song/version_a --reference song/version_b --json``, saved as advice.json."""
    done = installed.run("advise", "song/version_a", "--reference", "song/version_b", "--json", data=shared_data)
    if done.returncode == 0:
        (installed.work / "advice.json").write_text(done.stdout)
    return done


@pytest.fixture(scope="session")
def advice(advised: subprocess.CompletedProcess[str], installed: Installed) -> Path:
    ok(advised)
    return installed.work / "advice.json"


def test_advise_json(advised: subprocess.CompletedProcess[str]) -> None:
    ok(advised)
    assert advised.stderr == ""
    payload = json.loads(advised.stdout)
    assert (payload["format"], payload["advisor"]) == ("faderwise.advice/1", "measured")
    assert [(m["stem"], m["delta_db"]) for m in payload["moves"]] == [("vocals", pytest.approx(-4.0, abs=0.05)),
                                                                      ("drums", pytest.approx(3.0, abs=0.05))]
    assert payload["moves"][0]["low_db"] < payload["moves"][0]["delta_db"] < payload["moves"][0]["high_db"]
    assert payload["global_offset_db"] == pytest.approx(0.0, abs=0.05)
    assert payload["text"].startswith(VOCALS)
    assert DRUMS in payload["text"]
    assert payload["text"].endswith("Leave the bass, the guitar and the keys as they are: each is within 0.5 dB of the "
                                    "reference.")


def test_bundle_and_advise_from_the_bundle(installed: Installed, song: Path, data: Path) -> None:
    done = ok(installed.run("bundle", "song/version_a", "--reference", "song/version_b", "--stem", "vocals", "--out",
                            "vocals-bundle", "--seconds", "5", data=data))
    match = re.fullmatch(r"wrote vocals-bundle: vocals and its backing in A and B, (\d+\.\d)–(\d+\.\d) s of A, at "
                         r"44100 Hz and as 16 kHz mono copies in vocals-bundle/alm\n", done.stdout)
    assert match, done.stdout
    assert float(match[2]) - float(match[1]) == pytest.approx(5.0, abs=0.05)
    bundle = installed.work / "vocals-bundle"
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert (manifest["format"], manifest["target"], manifest["window_a_s"]) == (
        "faderwise.bundle/1", "vocals", [float(match[1]), float(match[2])])
    for clip in ("target_a", "backing_a", "target_b", "backing_b"):
        full, small = sf.info(bundle / f"{clip}.wav"), sf.info(bundle / "alm" / f"{clip}.wav")
        assert (full.samplerate, full.channels, full.frames) == (44_100, 2, 5 * 44_100)
        assert (small.samplerate, small.channels, small.frames) == (16_000, 1, 5 * 16_000)
    again = ok(installed.run("advise", "vocals-bundle", data=data))  # the four clips alone
    lines = again.stdout.splitlines()
    assert moves_said(lines[0])["vocals"]["about"] == 4 and lines[0].startswith("Lower the vocals by about 4 dB")
    assert re.fullmatch(r"  vocals {9}-4\.0 dB {3}\(likely -4\.\d to -3\.\d\)", lines[-1]), lines[-1]


def test_apply_renders_the_reference_back(installed: Installed, song: Path, advice: Path, data: Path) -> None:
    done = ok(installed.run("apply", "song/version_a", "--advice", "advice.json", "--out", "balanced", data=data))
    assert done.stdout == ("applied drums +3.0 dB, vocals -4.0 dB; wrote balanced/stems, balanced/mix.wav and "
                           "balanced/render.json\n")
    out = installed.work / "balanced"
    render = json.loads((out / "render.json").read_text())
    assert render["gains_db"] == {"bass": 0.0, "drums": 3.0, "guitar": 0.0, "keys": 0.0, "vocals": -4.0}
    # A is B with the vocals 4 dB up and the drums 3 dB down: the advice undoes it, to the sample
    for stem in STEMS:
        rendered, rate = sf.read(out / "stems" / f"{stem}.wav", dtype="float32")
        reference, _ = sf.read(song / "version_b" / f"{stem}.wav", dtype="float32")
        assert rate == 44_100 and np.abs(rendered - reference).max() < 1e-5, stem
    mix, _ = sf.read(out / "mix.wav", dtype="float32")
    stems = sum(sf.read(out / "stems" / f"{stem}.wav", dtype="float32")[0] for stem in STEMS)
    assert np.abs(mix - stems).max() < 1e-5


def test_export_to_a_reaper_project_and_csv(installed: Installed, song: Path, advice: Path, tmp_path: Path,
                                            data: Path) -> None:
    project = write_project_with_stems(tmp_path / "session", reaper_project_text(), ".RPP", song / "version_a")
    before = project.read_bytes()
    done = ok(installed.run("export", advice, "--project", project, "--out", project.with_name("song-balanced.RPP"),
                            data=data))
    assert done.stdout.splitlines() == [f"{NOTE} in {project}",
                                        "  Vocals (stem vocals): +3.0 dB → -1.0 dB (move -4.0 dB)",
                                        "  Drums (stem drums): -3.0 dB → +0.0 dB (move +3.0 dB)",
                                        f"wrote {project.with_name('song-balanced.RPP')}"]
    assert project.read_bytes() == before  # the input is never written
    old, new = before.decode().splitlines(), project.with_name("song-balanced.RPP").read_text().splitlines()
    assert len(old) == len(new)
    changed = [(a.strip(), b.strip()) for a, b in zip(old, new) if a != b]
    assert [a for a, _ in changed] == ["VOLPAN 0.70794578438414 0 -1 -1 1", "VOLPAN 1.41253754462275 0 -1 -1 1"]
    gains = [float(b.split()[1]) for _, b in changed]  # Drums -3 → 0 dB, Vocals +3 → -1 dB
    assert 20 * np.log10(gains[0]) == pytest.approx(0.0, abs=0.05)
    assert 20 * np.log10(gains[1]) == pytest.approx(-1.0, abs=0.05)

    table = tmp_path / "moves.csv"
    ok(installed.run("export", advice, "--project", project, "--out", table, "--format", "csv", data=data))
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert [(r["stem"], r["track"], float(r["current_db"]), float(r["move_db"]), float(r["new_db"])) for r in rows] == [
        ("vocals", "Vocals", 3.0, pytest.approx(-4.0, abs=0.05), pytest.approx(-1.0, abs=0.05)),
        ("drums", "Drums", -3.0, pytest.approx(3.0, abs=0.05), pytest.approx(0.0, abs=0.05))]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_push_to_reaper_dry_run_apply_undo(installed: Installed, advice: Path, data: Path) -> None:
    listen = free_udp_port()
    mixer = {1: ("Drums", -3.0), 2: ("Bass", 1.0), 3: ("Vocals", 3.0)}
    with StandInReaper(mixer, device_port=listen) as daw:
        target = ["--osc", "reaper", "--host", "127.0.0.1", "--port", str(daw.port), "--listen", str(listen)]
        where = f"REAPER at 127.0.0.1:{daw.port}"
        dry = ok(installed.run("push", "advice.json", *target, data=data))
        assert (dry.stdout.splitlines(), dry.stderr) == ([
            f"dry run on {where}: {NOTE}", "  Vocals (stem vocals): +3.0 dB → -1.0 dB (move -4.0 dB)",
            "  Drums (stem drums): -3.0 dB → +0.0 dB (move +3.0 dB)",
            "nothing sent: run again with --apply to move these faders (faderwise push --undo puts them back)"], "")
        assert daw.levels() == {"Drums": -3.0, "Bass": 1.0, "Vocals": 3.0}  # the dry run sends no move
        assert not (data / "pushes").exists()

        pushed = ok(installed.run("push", "advice.json", *target, "--apply", data=data))
        (record,) = (data / "pushes").glob("push-*.json")  # kept in the data folder, not the user's
        assert pushed.stdout.splitlines()[-1] == (f"moved 2 faders; faderwise push --undo --osc reaper puts them back "
                                                  f"(record {record})")
        assert daw.levels() == {"Drums": pytest.approx(0.0, abs=0.05), "Bass": 1.0,
                                "Vocals": pytest.approx(-1.0, abs=0.05)}
        undone = ok(installed.run("push", "--undo", "--osc", "reaper", "--listen", str(listen), data=data))
        assert undone.stdout == "put back Vocals +3.0 dB, Drums -3.0 dB\n"
        assert daw.levels() == {"Drums": pytest.approx(-3.0, abs=1e-6), "Bass": 1.0,
                                "Vocals": pytest.approx(3.0, abs=1e-6)}
    assert daw.rejected == []


def test_mcp_over_stdio(installed: Installed, song: Path, tmp_path: Path) -> None:
    """An MCP client (the SDK's) launches the wheel's console script, as a client's configuration does."""
    import anyio
    from mcp import Client, StdioServerParameters
    from test_mcp_server import TOOLS  # what the source tree's server lists

    data = tmp_path / "data"
    env = installed.env(data)
    params = StdioServerParameters(command=str(installed.faderwise), args=["mcp"], env=env, cwd=str(installed.work))
    seen: dict[str, Any] = {}

    async def session() -> None:
        with anyio.fail_after(120):
            await talk()

    async def talk() -> None:
        async with Client(params) as client:
            seen["tools"] = [tool.name for tool in (await client.list_tools()).tools]
            loaded = await client.call_tool("load", {"stems": "song/version_a", "reference": "song/version_b"})
            seen["load"] = (loaded.is_error, dict(loaded.structured_content or {}))
            advised = await client.call_tool("advise", {})
            seen["advise"] = (advised.is_error, dict(advised.structured_content or {}))

    anyio.run(session)
    assert seen["tools"] == TOOLS
    failed, loaded = seen["load"]
    assert failed is False, loaded
    # relative paths are the server's working folder's, as in a client's configuration
    assert f"5 stems from {song / 'version_a'}" in loaded["text"], loaded["text"]
    failed, advice = seen["advise"]
    assert failed is False
    assert advice["text"].startswith("Advice (measured): vocals -4.0 dB (likely -4.1 to -3.9); drums +3.0 dB")
    assert {m["stem"]: m["delta_db"] for m in advice["moves"]} == {
        "vocals": pytest.approx(-4.0, abs=0.05), "drums": pytest.approx(3.0, abs=0.05)}


def test_run_a_scripted_conversation(installed: Installed, song: Path, tmp_path: Path, data: Path) -> None:
    script = tmp_path / "talk.yaml"
    script.write_text(f"stems: {song / 'version_a'}\nreference: {song / 'version_b'}\nllm: offline\nturns:\n"
                      "  - user: overview\n    expect:\n      mentions: [vocals, drums]\n"
                      "      moves: {vocals: [-4.5, -3.5], drums: [2.5, 3.5]}\n      tools: [advise]\n"
                      "      grounded: true\n"
                      "  - user: apply the moves\n    confirm: yes\n    expect:\n      mentions: [applied]\n"
                      "      tools: [apply_moves]\n")
    done = ok(installed.run("run", script, "--out", tmp_path / "transcript.jsonl", data=data))
    lines = done.stdout.splitlines()
    assert [re.sub(r"\(\d+\.\d\d s\)", "(S)", line) for line in lines] == [
        "pass turn 1 (S): overview", "pass turn 2 (S): apply the moves", "2 passed, 0 failed",
        f"wrote {tmp_path / 'transcript.jsonl'}"]
    records = [json.loads(line) for line in (tmp_path / "transcript.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in records] == [True, True]
    assert_demo_moves(records[0]["assistant"])
    (render,) = (data / "sessions").glob("run-*/apply-01")  # the render went to the data folder
    assert sorted(p.name for p in (render / "stems").iterdir()) == [f"{stem}.wav" for stem in STEMS]
    assert records[1]["assistant"].startswith(f"Applied vocals -4.0 dB, drums +3.0 dB; wrote {render / 'stems'}")

    script.write_text(script.read_text().replace("[vocals, drums]", "[vocals, drums, theremin]"))
    failed = installed.run("run", script, data=data)
    assert failed.returncode == 1
    assert "     the reply does not mention 'theremin'" in failed.stdout.splitlines()


# -- training and evaluation, on the smallest data the other tests use ---------------------------------


@pytest.fixture(scope="session")
def training(installed: Installed) -> Path:
    folder = installed.work / "training"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def synthesized(installed: Installed, training: Path, shared_data: Path) -> subprocess.CompletedProcess[str]:
    """``faderwise synth synth.yaml``: four procedural songs of one bar, one pair each."""
    (training / "synth.yaml").write_text(json.dumps({
        "out": "data", "seed": 1, "datasets": [{"kind": "procedural", "songs": 4, "bars": 1}], "pairs_per_song": 1,
        "val": 0.25, "test": 0.25, "targets": "perturbed", "workers": 1}))
    return installed.run("synth", "synth.yaml", data=shared_data, cwd=training)


@pytest.fixture(scope="session")
def dataset(synthesized: subprocess.CompletedProcess[str], training: Path) -> Path:
    ok(synthesized)
    return training / "data"


def test_synth(synthesized: subprocess.CompletedProcess[str], training: Path) -> None:
    ok(synthesized)
    records = [json.loads(line) for line in (training / "data" / "manifest.jsonl").read_text().splitlines()]
    splits = {split: sum(r["split"] == split for r in records) for split in ("train", "val", "test")}
    assert synthesized.stdout == (f"{len(records)} items from 4 songs (train {splits['train']}, val {splits['val']}, "
                                  f"test {splits['test']}); wrote {training / 'data' / 'manifest.jsonl'}\n")
    assert len({r["song"] for r in records}) == 4 and all(splits.values())
    assert all(r["target"] in r["gains_db"] for r in records)  # each item asks about a stem that was moved


def needs_torch() -> None:
    pytest.importorskip("torch", reason="training needs the [alm] extra (.ci/run installs the CPU build of torch)")
    pytest.importorskip("transformers", reason="training needs the [alm] extra")


@pytest.fixture(scope="session")
def trained(installed: Installed, dataset: Path, training: Path, shared_data: Path) -> subprocess.CompletedProcess[str]:
    """``faderwise train train.yaml``: the small model from scratch, tiny, two steps."""
    needs_torch()
    size = {"audio_width": 64, "audio_layers": 1, "audio_heads": 2, "text_width": 64, "text_layers": 2,
            "text_heads": 2, "text_kv_heads": 1, "clip_seconds": 10}
    (training / "train.yaml").write_text(json.dumps({
        "dataset": "data", "out": "run", "model": "small", "method": "full", "steps": 2, "eval_every": 2,
        "save_every": 2, "eval_examples": 1, "learning_rate": 3e-3, "warmup_steps": 1, "vocab_size": 320,
        "size": size, "tensorboard": False}))
    return installed.run("train", "train.yaml", data=shared_data, cwd=training, timeout=300)


def test_train(trained: subprocess.CompletedProcess[str], training: Path) -> None:
    ok(trained)
    assert trained.stdout == f"wrote {training / 'run' / 'final'}; log: {training / 'run' / 'log.jsonl'}\n"
    log = [json.loads(line) for line in (training / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log if "loss" in entry] == [1, 2]
    assert [entry["step"] for entry in log if "val_loss" in entry] == [2]
    assert all(np.isfinite(entry.get("loss", entry.get("val_loss"))) for entry in log)
    assert (training / "run" / "final" / "model.safetensors").is_file()
    assert json.loads((training / "run" / "final" / "faderwise_alm.json").read_text())["variant"] == "differential"


def test_eval_model(installed: Installed, trained: subprocess.CompletedProcess[str], dataset: Path, training: Path,
                    shared_data: Path) -> None:
    ok(trained)
    done = ok(installed.run("eval", "model", "run/final", "data", "--limit", "2", "--out", "held-out.json",
                            data=shared_data, cwd=training, timeout=300))
    result = json.loads((training / "held-out.json").read_text())
    assert (result["format"], result["split"], result["items"]) == ("faderwise.model-evaluation/1", "test", 2)
    truths = [answer["true_db"] for answer in result["answers"]]
    assert result["no_change"]["mae_db"] == pytest.approx(np.mean(np.abs(truths)), abs=0.01)
    assert result["measured_on_bundle_clips"]["mae_db"] < 0.2  # the DSP advisor on the same clips
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["MAE", "all", "MAE", "moved", "leave", "direction"]
    assert lines[2].split()[:2] == ["no_change", f"{result['no_change']['mae_db']:.2f}"]
    assert lines[-1] == "wrote held-out.json"


@pytest.fixture(scope="session")
def evaluated(installed: Installed, dataset: Path, training: Path,
              shared_data: Path) -> subprocess.CompletedProcess[str]:
    """``faderwise eval run eval.yaml --out evaluation``: the measured and the single-mix advisors."""
    (training / "eval.yaml").write_text(json.dumps({"dataset": "data", "advisors": ["measured", "single-mix"],
                                                    "text_metrics": [], "bootstrap": 200, "workers": 1}))
    return installed.run("eval", "run", "eval.yaml", "--out", "evaluation", data=shared_data, cwd=training)


def test_eval_run(evaluated: subprocess.CompletedProcess[str], training: Path) -> None:
    ok(evaluated)
    report = json.loads((training / "evaluation" / "report.json").read_text())
    measured, single = report["advisors"]["measured"]["mae_db"], report["advisors"]["single-mix"]["mae_db"]
    assert measured < 0.2 < single  # hearing the reference is what the measured advisor has
    (question,) = report["research_question"]
    assert evaluated.stdout.splitlines() == [
        f"measured against single-mix: {question['answer']}", f"{'measured':24} MAE {f'{measured:.2f} dB':>9}",
        f"{'single-mix':24} MAE {f'{single:.2f} dB':>9}", "wrote evaluation/report.md and evaluation/report.json"]
    assert question["answer"].startswith("yes: hearing the reference lowers the error by")


@pytest.fixture(scope="session")
def study(installed: Installed, evaluated: subprocess.CompletedProcess[str], training: Path,
          shared_data: Path) -> subprocess.CompletedProcess[str]:
    ok(evaluated)
    return installed.run("eval", "packets", "evaluation", "--out", "study", "--items", "2", data=shared_data,
                         cwd=training)


def test_eval_packets(study: subprocess.CompletedProcess[str], training: Path) -> None:
    ok(study)
    assert study.stdout == ("wrote study/index.html (send this page to the annotators) and study/key.json "
                            "(keep it)\n")
    key = json.loads((training / "study" / "key.json").read_text())
    assert len(key["entries"]) == 4  # two items, two advisors
    page = (training / "study" / "index.html").read_text()
    assert '"advisor"' not in page and "single-mix" not in page  # blinded


def test_eval_ingest(installed: Installed, study: subprocess.CompletedProcess[str], training: Path,
                     shared_data: Path) -> None:
    ok(study)
    key = json.loads((training / "study" / "key.json").read_text())
    ratings = {"measured": 5, "single-mix": 2}
    (training / "answers.json").write_text(json.dumps({
        "format": "faderwise.study-answers/1", "study": key["id"], "annotator": "ann",
        "answers": [{"entry": entry, "ratings": {"correctness": ratings[what["advisor"]]}, "codes": {"gain_only": True},
                     "comment": ""} for entry, what in sorted(key["entries"].items())]}))
    done = ok(installed.run("eval", "ingest", "study", "answers.json", "--run", "evaluation", data=shared_data,
                            cwd=training))
    lines = done.stdout.splitlines()
    assert lines[:3] == [f"# Human evaluation: {key['id']}", "", "1 annotators (ann), 4 entries."]
    # unblinded: each rating went to the advisor that wrote the explanation
    assert "| measured | 5.00 | — | — | — | — | 0.00 | 0.00 | 1.00 |" in lines
    assert "| single-mix | 2.00 | — | — | — | — | 0.00 | 0.00 | 1.00 |" in lines
    assert (training / "study" / "results" / "human.json").is_file()

