"""A real pseudo-terminal for the tests: a command run in a detached tmux session of a fixed size.

    with Terminal(tmp_path, env=env, cwd=folder) as term:
        term.start(["faderwise"])
        term.wait_for("Welcome to faderwise")
        term.type("overview")
        term.press("Enter")
        term.press("C-q")
        assert term.wait_for_exit() == 0

Each terminal has its own tmux server on a private socket (``tmux -L <unique name>``) that reads no
configuration of the user's; :meth:`close` (and leaving the ``with`` block) kills that server and
with it everything still running inside. The command runs as ``sh -c 'COMMAND; echo $? > STATUS'``
and its exit status is read from that file (tmux's own ``#{pane_dead_status}`` is not reliable: tmux
3.3 at times leaves the pane's process unreaped once the terminal has closed). The pane stays after
the command exits (``remain-on-exit``), so what the command printed last can still be read.
Debian's ``tmux`` package provides the binary.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

TMUX = "tmux"
CONFIG = """\
set-option -g status off
set-option -g remain-on-exit on
set-option -g history-limit 5000
set-option -s escape-time 0
"""


def tmux_missing() -> str | None:
    """Why the terminal cannot run here, or None when tmux is installed."""
    if shutil.which(TMUX) is None:
        return "tmux is not installed (Debian: apt-get install tmux; .ci/run installs it)"
    return None


class TerminalError(AssertionError):
    """What the terminal showed did not come (in time)."""


class Terminal:
    """One command in a ``width`` × ``height`` terminal (tmux), driven by keys and read off the screen."""

    def __init__(self, folder: Path, *, env: Mapping[str, str], cwd: Path, width: int = 120,
                 height: int = 40) -> None:
        self.folder = folder
        self.env = {key: value for key, value in env.items() if key not in ("TMUX", "TMUX_PANE")}
        self.cwd = cwd
        self.width, self.height = width, height
        self.socket = f"faderwise-test-{uuid.uuid4().hex[:12]}"
        self.target = "main"
        self.command: list[str] = []
        self.started = False
        self.config = folder / f"{self.socket}.conf"
        self.status_file = folder / f"{self.socket}.status"
        self.socket_path: Path | None = None

    # -- tmux ---------------------------------------------------------------------------------

    def tmux(self, *args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([TMUX, "-L", self.socket, "-f", str(self.config), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise TerminalError(f"tmux {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def start(self, command: Sequence[str]) -> None:
        """Run ``command`` (an argument list) in the terminal, from :attr:`cwd`."""
        assert not self.started, "one command per terminal"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(CONFIG)
        self.command = list(command)
        status, written = shlex.quote(str(self.status_file)), shlex.quote(f"{self.status_file}.tmp")
        wrapped = f"{shlex.join(self.command)}; echo $? > {written}; mv {written} {status}"
        self.started = True  # from here on, close() kills the server, even if starting fails half-way
        self.tmux("new-session", "-d", "-s", self.target, "-x", str(self.width), "-y", str(self.height),
                  "-c", str(self.cwd), shlex.join(["/bin/sh", "-c", wrapped]))
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").stdout.strip())

    def close(self) -> None:
        """Kill the tmux server and whatever still runs in it."""
        if self.started:
            self.tmux("kill-server", check=False)
            self.started = False
        if self.socket_path is not None:  # tmux leaves the socket file behind
            self.socket_path.unlink(missing_ok=True)
        self.config.unlink(missing_ok=True)
        self.status_file.unlink(missing_ok=True)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keys ---------------------------------------------------------------------------------

    def type(self, text: str) -> None:
        """Type ``text`` as it is (no key names)."""
        self.tmux("send-keys", "-t", self.target, "-l", text)

    def press(self, *keys: str) -> None:
        """Press keys by tmux's names: ``Enter``, ``Escape``, ``C-q``, ``Tab``…"""
        self.tmux("send-keys", "-t", self.target, *keys)

    # -- the screen ---------------------------------------------------------------------------

    def screen(self) -> str:
        """What the terminal shows now, one line per row (trailing blanks dropped)."""
        return self.tmux("capture-pane", "-p", "-t", self.target).stdout

    def scrollback(self) -> str:
        """Everything the terminal printed, the scrolled-off lines and the screen (a full-screen app
        on the alternate screen leaves none of its own there)."""
        return self.tmux("capture-pane", "-p", "-S", "-", "-E", "-", "-t", self.target).stdout

    def wait_for(self, expected: str | re.Pattern[str] | Callable[[str], bool], *, timeout: float = 30.0,
                 text: Callable[[str], str] | None = None) -> str:
        """The screen once it holds ``expected`` (a string, a pattern found in it, or a test of it);
        with ``text``, the screen is passed through it first (e.g. to read one panel, joined). Fails
        after ``timeout`` seconds, or when the command has exited, with the screen in the message."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.exit_status()  # read before the screen: a screen after the end is the last one
            screen = self.screen()
            shown = text(screen) if text is not None else screen
            if isinstance(expected, re.Pattern):
                found = expected.search(shown) is not None
            else:
                found = expected(shown) if callable(expected) else expected in shown
            if found:
                return screen
            if status is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        wanted = expected.pattern if isinstance(expected, re.Pattern) else expected if isinstance(expected, str) \
            else expected.__doc__ or repr(expected)
        if status is None:
            raise TerminalError(f"{shlex.join(self.command)}: waited {timeout:.0f} s and the screen does not show "
                                f"{wanted!r}; the screen ({self.width}×{self.height}):\n{screen}")
        printed = "\n".join(self.scrollback().rstrip().splitlines()[-80:])
        raise TerminalError(f"{shlex.join(self.command)}: exited with status {status} and the screen does not show "
                            f"{wanted!r}; what it printed last:\n{printed}")

    # -- the command's end --------------------------------------------------------------------

    def exit_status(self) -> int | None:
        """The command's exit status once it has ended (128 + N: killed by signal N), None while it runs."""
        try:
            return int(self.status_file.read_text())
        except FileNotFoundError:
            return None

    def wait_for_exit(self, *, timeout: float = 30.0) -> int:
        """The command's exit status, once it has ended; fails after ``timeout`` seconds with the screen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.exit_status()
            if status is not None:
                return status
            time.sleep(0.1)
        raise TerminalError(f"{shlex.join(self.command)} still runs after {timeout:.0f} s; the screen:\n"
                            f"{self.screen()}")


def joined(text: str) -> str:
    """``text`` with every run of blanks and line breaks as one space."""
    return re.sub(r"\s+", " ", text).strip()


def left_of(screen: str, border: str = "│") -> str:
    """The text left of the first ``border`` on each row, joined (:func:`joined`): one panel of a
    full-screen app, whatever its line breaks."""
    return joined("\n".join(line.split(border, 1)[0] for line in screen.splitlines()))


def right_of(screen: str, border: str = "│") -> list[str]:
    """The text right of the first ``border`` on each row that has one, blanks joined."""
    return [joined(line.split(border, 1)[1]) for line in screen.splitlines() if border in line]
