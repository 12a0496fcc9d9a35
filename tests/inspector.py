"""The official MCP Inspector's CLI mode (npm ``@modelcontextprotocol/inspector``, pinned in
tests/mcp_inspector/package.json) as a test client for ``faderwise mcp``: a client nobody on this team wrote.

Install it once with ``npm ci --prefix tests/mcp_inspector`` (Node.js on PATH); without it the tests that use
it skip, saying so. A test module uses the fixtures here with ``pytest_plugins = ("inspector",)``:

* ``faderwise_stdio``: an :class:`Inspector` that launches ``python -m faderwise mcp --workers 1`` itself, a
  fresh server process (and so a fresh workspace) for every invocation;
* ``faderwise_http``: one ``faderwise mcp --http`` server on a free loopback port for the whole test, and an
  :class:`Inspector` pointed at it: every invocation is a new MCP session on that server, sharing its workspace.

Each :meth:`Inspector.run` is one Inspector process: it connects, initializes, makes one request (``tools/call``
first lists the tools, to find the schema it coerces arguments with) and disconnects. What the CLI does, read from
its sources (clients/cli/build/index.js of the pinned version):

* ``--format json`` prints one line on stdout, ``{"result": ...}``: the MCP result as the server sent it
  (``structuredContent``, image and audio blocks, ``outputSchema`` and ``annotations`` included). On failure it
  prints ``{"error": {"code": ..., "message": ...}}`` as the last line of stderr.
* Exit codes: 0 ok; 5 a tool result with ``isError: true`` (the result is still printed on stdout; error code
  ``tool_is_error``) or a tool name the server does not list (``tool_not_found``, nothing sent); 1 any other
  failure, a JSON-RPC error from the server included (code ``error``), and a ``structuredContent`` that fails the
  tool's ``outputSchema`` (the CLI checks it with ajv); 4 the server is unreachable; 3 authorization needed.
* ``--tool-arg key=value``: the value is parsed as JSON when it parses (``true`` → true, ``3`` → 3,
  ``null`` → null, ``'["a"]'`` → a list, ``'"3"'`` → the string "3"), else kept as a string; then every
  *string* value is coerced to the type the tool's inputSchema declares for it (``number``/``integer`` →
  ``Number(s)``, ``boolean`` → ``s.lower() == "true"``, ``array``/``object`` → JSON.parse). So a boolean
  parameter always arrives as a boolean (``confirm="true"``, ``confirm=TRUE`` → true; ``confirm=yes`` → false),
  and a string parameter whose value looks like JSON arrives as a number/boolean/null unless quoted. The same
  coercion applies to ``--tool-args-json`` despite its help text. :meth:`Inspector.call_tool` passes every value
  as ``key=<its JSON>`` so that what the test means is what is sent, before that coercion.
* It sends no ``progressToken`` (``--metadata progressToken=X`` would), advertises neither sampling nor
  elicitation (an ``elicitation/create`` from the server is answered ``{"action": "cancel"}``, a
  ``sampling/createMessage`` with JSON-RPC error -32603), and prints no log or progress notifications.
* Each request times out after 60 s (exit 1, "Request timed out after 1m00s"); the CLI has no option to raise it.
* Over HTTP it never ends its session (no DELETE): each invocation leaves one idle session on the server.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

INSPECTOR_DIR = Path(__file__).resolve().parent / "mcp_inspector"
PACKAGE = "@modelcontextprotocol/inspector"
INSTALL = "npm ci --prefix tests/mcp_inspector"
MIN_NODE = 20  # the package's engines field says >=22.19.0; every test here passes on 20.20
TIMEOUT_S = 120.0  # one Inspector invocation: start, connect (a stdio server imports faderwise), one request
CONNECT_TIMEOUT_MS = 60_000  # the CLI's own default for an ad-hoc server is 15 s: tight for a stdio server on a busy CI
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")  # loopback only: never through a proxy


class InspectorError(AssertionError):
    """An Inspector invocation that did not exit as expected (or did not exit at all)."""


@functools.cache
def inspector_command() -> tuple[str, ...]:
    """``node <the Inspector's launcher> --cli``; skips the test when node or the installed Inspector is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not on PATH: the MCP Inspector tests need Node.js >= {MIN_NODE} and `{INSTALL}`")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major.group(1)) < MIN_NODE:
        pytest.skip(f"node {version or '(unknown version)'} is too old: the MCP Inspector needs Node.js >= {MIN_NODE}")
    wanted = json.loads((INSPECTOR_DIR / "package.json").read_text())["dependencies"][PACKAGE]
    package_json = INSPECTOR_DIR / "node_modules" / PACKAGE / "package.json"
    if not package_json.is_file():
        pytest.skip(f"the MCP Inspector is not installed ({package_json} is missing): run `{INSTALL}`")
    package = json.loads(package_json.read_text())
    if package["version"] != wanted:
        raise InspectorError(f"tests/mcp_inspector has {PACKAGE} {package['version']} installed, but package.json pins "
                             f"{wanted}: run `{INSTALL}` again")
    launcher = package_json.parent / package["bin"]["mcp-inspector"]
    return (node, str(launcher), "--cli")


@dataclass(frozen=True)
class Outcome:
    """One Inspector invocation: its exit code, what it printed, and those parsed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    printed: dict[str, Any] | None  # stdout's JSON envelope: {"result": ...}
    error: dict[str, Any] | None  # stderr's last {"error": {...}} envelope, its inner object

    @property
    def result(self) -> dict[str, Any]:
        """The MCP result the Inspector printed."""
        if self.printed is None or "result" not in self.printed:
            raise InspectorError(f"the Inspector printed no result\n{self.report()}")
        return self.printed["result"]

    def report(self, server_log: Path | None = None) -> str:
        lines = [f"$ {shlex.join(self.argv)}", f"exit code {self.returncode}", f"stdout: {tail(self.stdout)}",
                 f"stderr: {tail(self.stderr)}"]
        if server_log is not None and server_log.is_file():
            lines.append(f"server log ({server_log}): {tail(server_log.read_text(errors='replace'))}")
        return "\n".join(lines)


def tail(text: str, limit: int = 6000) -> str:
    text = text.strip()
    return text if len(text) <= limit else f"...{text[-limit:]}"


def parse_stdout(stdout: str) -> dict[str, Any] | None:
    """``--format json`` prints exactly one JSON object on stdout (nothing when the run failed before a result)."""
    if not stdout.strip():
        return None
    printed = json.loads(stdout)
    if not isinstance(printed, dict):
        raise ValueError(f"not a JSON object: {stdout[:200]!r}")
    return printed


def parse_error(stderr: str) -> dict[str, Any] | None:
    """The error envelope: the last stderr line that is ``{"error": {...}}`` (a stdio server's own stderr lines
    come before it)."""
    for line in reversed(stderr.splitlines()):
        if line.startswith('{"error":'):
            try:
                return json.loads(line)["error"]
            except (ValueError, KeyError):
                continue
    return None


def inspector_env(home: Path) -> dict[str, str]:
    """The Inspector's environment: this one, with its ~/.mcp-inspector (catalog, client config, OAuth store) in
    ``home``, secrets in memory only, and no proxy."""
    env = {key: value for key, value in os.environ.items()
           if key not in PROXY_VARS and key not in ("MCP_CATALOG_PATH", "MCP_CLIENT_CONFIG_PATH")}
    env.update(HOME=str(home), MCP_INSPECTOR_SECRET_STORE="memory", NO_COLOR="1")
    return env


@dataclass(frozen=True)
class Inspector:
    """One MCP server as the Inspector CLI reaches it: ``server_args`` name it (``--transport http --server-url
    URL``, or ``-e KEY=VALUE`` for a stdio server), ``command`` is a stdio server's command line (after ``--``)."""

    home: Path
    server_args: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    server_log: Path | None = None  # an HTTP server's stderr, shown when an invocation fails
    data_dir: Path | None = None  # the server's FADERWISE_DATA_DIR
    timeout_s: float = field(default=TIMEOUT_S)

    def argv(self, method: str, *options: str) -> tuple[str, ...]:
        """The Inspector's command line: the server's options, the method and its options, then ``--`` and a stdio
        command (``--tool-arg``/``--prompt-args`` take several values: the ``--`` keeps them off the command)."""
        argv = (*inspector_command(), "--format", "json", "--connect-timeout", str(CONNECT_TIMEOUT_MS),
                *self.server_args, "--method", method, *options)
        return (*argv, "--", *self.command) if self.command else argv

    def run(self, method: str, *options: str, expect: int | None = 0, timeout: float | None = None) -> Outcome:
        """Run one method; raise :class:`InspectorError` (with both outputs and the server's log) unless it exits
        ``expect`` (``None``: any code) with what it should print."""
        argv = self.argv(method, *options)
        self.home.mkdir(parents=True, exist_ok=True)
        limit = self.timeout_s if timeout is None else timeout
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=inspector_env(self.home), start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the Inspector and the stdio server it started
            stdout, stderr = process.communicate()
            hung = Outcome(argv, process.returncode, stdout, stderr, None, None)
            raise InspectorError(f"the Inspector did not finish in {limit:.0f} s\n"
                                 f"{hung.report(self.server_log)}") from None
        try:
            printed = parse_stdout(stdout)
        except ValueError as exc:
            broken = Outcome(argv, process.returncode, stdout, stderr, None, parse_error(stderr))
            raise InspectorError(f"stdout is not one JSON object ({exc})\n{broken.report(self.server_log)}") from exc
        outcome = Outcome(argv, process.returncode, stdout, stderr, printed, parse_error(stderr))
        if expect is not None and outcome.returncode != expect:
            raise InspectorError(f"the Inspector exited {outcome.returncode}, not {expect}\n"
                                 f"{outcome.report(self.server_log)}")
        if outcome.returncode != 0 and outcome.error is None:
            raise InspectorError(f"the Inspector failed without its error envelope on stderr\n"
                                 f"{outcome.report(self.server_log)}")
        return outcome

    def result(self, method: str, *options: str, timeout: float | None = None) -> dict[str, Any]:
        """The result of one method that must succeed (exit code 0)."""
        return self.run(method, *options, timeout=timeout).result

    def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None, *, expect: int = 0,
                  timeout: float | None = None) -> dict[str, Any]:
        """``tools/call``: the CallToolResult the Inspector printed. ``expect=5`` for a tool error (``isError``)."""
        options = ["--tool-name", name]
        if arguments:
            options += ["--tool-arg", *tool_args(arguments)]
        return self.run("tools/call", *options, expect=expect, timeout=timeout).result


def tool_args(arguments: Mapping[str, Any]) -> list[str]:
    """``key=<JSON>`` for each argument: the Inspector JSON-parses each value back to exactly this value (then
    coerces strings to the schema's type, see the module's docstring)."""
    return [f"{key}={json.dumps(value)}" for key, value in arguments.items()]


# -- faderwise's server, over stdio and over streamable HTTP ---------------------------------------------------


def server_env(data_dir: Path) -> dict[str, str]:
    """What ``faderwise mcp`` needs beyond the few variables (HOME, PATH, ...) a stdio client passes on."""
    return {"FADERWISE_DATA_DIR": str(data_dir), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def stdio_inspector(tmp_path: Path) -> Inspector:
    """The Inspector launching ``python -m faderwise mcp --workers 1`` over stdio, once per invocation."""
    data_dir = tmp_path / "data"
    env_args = [arg for key, value in server_env(data_dir).items() for arg in ("-e", f"{key}={value}")]
    return Inspector(home=tmp_path / "inspector-home", server_args=tuple(env_args),
                     command=(sys.executable, "-m", "faderwise", "mcp", "--workers", "1"), data_dir=data_dir)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(server: subprocess.Popen[bytes], port: int, log: Path, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise InspectorError(f"faderwise mcp --http exited {server.returncode} before listening on {port}\n"
                                 f"{tail(log.read_text(errors='replace'))}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise InspectorError(f"faderwise mcp --http did not listen on {port} in {deadline_s:.0f} s\n"
                         f"{tail(log.read_text(errors='replace'))}")


@pytest.fixture
def faderwise_stdio(tmp_path: Path) -> Inspector:
    inspector_command()  # skip before anything else when the Inspector is missing
    return stdio_inspector(tmp_path)


@pytest.fixture
def faderwise_http(tmp_path: Path) -> Iterator[Inspector]:
    """``faderwise mcp --http --port <free>`` with its data in tmp, listening, for the whole test."""
    inspector_command()
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    port = free_port()
    with log.open("wb") as sink:
        server = subprocess.Popen([sys.executable, "-m", "faderwise", "mcp", "--http", "--port", str(port)],
                                  env={**os.environ, **server_env(data_dir)}, stdin=subprocess.DEVNULL,
                                  stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(server, port, log)
        yield Inspector(home=tmp_path / "inspector-home",
                        server_args=("--transport", "http", "--server-url", f"http://127.0.0.1:{port}/mcp"),
                        server_log=log, data_dir=data_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
