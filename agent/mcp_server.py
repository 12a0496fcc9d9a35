"""faderwise over the Model Context Protocol (``faderwise mcp``): any MCP client — a desktop
assistant, an IDE, a DAW's MCP bridge — can load stems, measure, compare, advise, explain, bundle,
export to a DAW project and apply, with the chat's own tools on one
:class:`~faderwise.agent.workspace.Workspace`.

Every tool answers with the text the chat's model reads (every number it may quote) and the
chat's artifact as structured data. ``apply`` renders only when called with ``confirm=true``
(without it, it says what it would render), always to a new folder; the stems are never written.
Resources: the pending advice as JSON (``faderwise://advice``) and the plots as PNG
(``faderwise://plot/levels``, ``faderwise://plot/loudness``).

Served over stdio (the default; what MCP clients launch), or streamable HTTP on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from faderwise import __version__
from faderwise.agent.plots import write_plot
from faderwise.agent.tools import make_tools, moves_text, render_moves
from faderwise.agent.workspace import Workspace
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.json_files import plain_json
from faderwise.tools.paths import data_dir

LOOPBACK = "127.0.0.1"
T = TypeVar("T")
INSTRUCTIONS = (
    "faderwise balances a mix by fader moves (gain only). Call load with the producer's stems (a folder, a "
    ".stem.mp4, or a REAPER/Ardour project with its bounced stems beside it) and a balanced reference; then "
    "advise for the moves (dB per stem, positive raises), explain for one stem's evidence, compare and measure "
    "for levels. Quote only numbers the tools return. export writes the moves into a new copy of the DAW "
    "project; apply renders the moves to a new folder only when called with confirm=true, after the producer "
    "agreed to the plan it showed.")


def build_server(workspace: Workspace) -> MCPServer:
    """An MCP server whose tools act on ``workspace``."""
    tools = {tool.name: tool for tool in make_tools(workspace)}
    server: MCPServer = MCPServer(name="faderwise", version=__version__, instructions=INSTRUCTIONS)

    async def in_thread(function: Callable[[], T], error: type[Exception] = ToolError) -> T:
        """``function()`` on a worker thread (measuring takes seconds); faderwise's errors reach the
        client as they are (a tool's or a resource's error, not a crash)."""
        try:
            return await anyio.to_thread.run_sync(function)
        except FaderwiseError as exc:
            raise error(str(exc)) from exc

    async def chat_tool(name: str, **arguments: Any) -> dict[str, Any]:
        content, artifact = await in_thread(functools.partial(tools[name].func, **arguments))
        return {"text": content, "data": artifact}

    @server.tool()
    async def load(stems: str, reference: str | None = None) -> dict[str, Any]:
        """Load the producer's stems (Version A): a folder of stems, a .stem.mp4, or a REAPER .RPP / Ardour .ardour
        project whose tracks' bounced stems lie beside it; and optionally the balanced reference (Version B)."""
        loaded = await chat_tool("load_stems", path=stems)
        if reference is None:
            return loaded
        referenced = await chat_tool("set_reference", path=reference)
        return {"text": f"{loaded['text']} {referenced['text']}", "data": [loaded["data"], referenced["data"]]}

    @server.tool()
    async def measure(stem: str | None = None) -> dict[str, Any]:
        """Loudness (BS.1770 LUFS), level against the mix and the backing, true peak and crest of one stem of
        Version A (a name or the words for it), or of every stem."""
        return await chat_tool("measure", stem=stem)

    @server.tool()
    async def compare() -> dict[str, Any]:
        """Each stem of Version A against the reference: loudness in A and B and A − B."""
        return await chat_tool("compare_to_reference")

    @server.tool()
    async def advise(stem: str | None = None,
                     advisor: Literal["measured", "single-mix", "equal-loudness", "alm"] | None = None) -> dict[str, Any]:
        """Which faders to move by how much (dB, positive raises) and why. measured compares with the reference
        (the default when one is loaded); single-mix and equal-loudness judge Version A alone; alm is the
        audio-language model that hears each stem's A/B bundle. The advice becomes the pending moves."""
        return await chat_tool("advise", stem=stem, advisor=advisor)

    @server.tool()
    async def explain(stem: str | None = None) -> dict[str, Any]:
        """One stem's move with its evidence: level in A and B, against its backing, where it is buried or
        exposed, where the backing covers it, and how sure the move is."""
        return await chat_tool("explain_stem", stem=stem)

    @server.tool()
    async def bundle(stem: str | None = None) -> dict[str, Any]:
        """Write one stem's A/B bundle (target and backing in A and B, where the target plays) to a new folder."""
        return await chat_tool("make_ab_bundle", stem=stem)

    @server.tool()
    async def export(project: str | None = None) -> dict[str, Any]:
        """Write the pending and applied moves into a new copy of the REAPER/Ardour project (SONG-faderwise-NN
        beside it): each advised track's fader moves by its dB from where it is now; nothing else changes and the
        project itself is never written. project defaults to the one the stems were loaded from."""
        return await chat_tool("export_project", project=project)

    @server.tool()
    async def apply(confirm: bool = False, stems: list[str] | None = None) -> dict[str, Any]:
        """Render the pending moves (or only those of stems) to a new folder, which becomes Version A. Without
        confirm=true nothing is rendered: it returns the plan to show the producer first."""
        def run() -> dict[str, Any]:
            with workspace.lock:
                names = [workspace.resolve(stem) for stem in stems] if stems else None
                gains = workspace.planned_gains(names)
                if confirm:
                    content, artifact = render_moves(workspace, gains)
                    return {"text": content, "data": plain_json(artifact)}
            return {"text": f"Not applied yet: this would render {moves_text(gains)} to a new folder. Ask the "
                            "producer, then call apply with confirm=true.",
                    "data": {"kind": "apply", "applied": False, "gains_db": gains}}
        return await in_thread(run)

    @server.resource("faderwise://advice", name="advice", mime_type="application/json",
                     description="The pending advice (faderwise.advice/1): moves, text and evidence")
    def advice_resource() -> str:
        if workspace.advice is None:
            raise ResourceError("no advice yet: call the advise tool first")
        return json.dumps(workspace.advice.to_json(), indent=2, allow_nan=False)

    @server.resource("faderwise://plot/{kind}", name="plot", mime_type="image/png",
                     description="levels: each stem's loudness, A against B; loudness: short-term loudness over time")
    async def plot_resource(kind: str) -> bytes:
        if kind not in ("levels", "loudness"):
            raise ResourceError(f"no plot {kind!r}: levels or loudness")

        def draw() -> bytes:
            with workspace.lock:
                path, _ = write_plot(workspace, kind)  # type: ignore[arg-type]
            return path.read_bytes()
        return await in_thread(draw, ResourceError)

    return server


def serve(*, http_port: int | None = None, output_dir: Path | None = None, workers: int = 1) -> None:
    """Serve one workspace over stdio, or over streamable HTTP on 127.0.0.1:``http_port``."""
    workspace = Workspace(output_dir=output_dir or data_dir() / "mcp", workers=workers)
    server = build_server(workspace)
    if http_port is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host=LOOPBACK, port=http_port)
