"""faderwise over the Model Context Protocol (``faderwise mcp``): any MCP client — a desktop
assistant, an IDE, a DAW's MCP bridge — can load stems, measure, compare, advise, explain, plot,
bundle, export to a DAW project and apply, with the chat's own tools on one
:class:`~faderwise.agent.workspace.Workspace`.

What a client can rely on:

* **Every tool is described**: a title and annotations (``readOnlyHint``, ``destructiveHint``,
  ``idempotentHint``, ``openWorldHint``), one clean paragraph of description, and structured output
  (``advise`` and ``explain`` with a schema of their own; the rest ``{text, data}``).
* **Nothing renders without the producer.** ``apply`` asks through the client (elicitation, with the
  exact moves) where the client can ask; elsewhere it renders only with ``confirm`` set to JSON
  ``true`` (a string, a number or "yes" renders nothing) and otherwise returns the plan to show first.
* **One call cannot stall the rest.** Each call has a time limit; a call waits at most a few seconds for
  another one to finish, then says the session is busy. Files are read (a project for ``export``, the
  audio for ``load``) before the session is taken, and a named pipe or a device is refused before it is
  opened. ``load`` is all or nothing: a failed load leaves the session as it was.
* **Progress** for measuring, advising (a model hears one stem after another) and rendering, when the
  client sends a ``progressToken``.
* **Errors are one line** in words an MCP client can act on (``force: true``, ``call load``), never a
  traceback; what faderwise wrote is listed (``faderwise://outputs/…``) and ``remove_output`` removes it
  (only what this server wrote, only as it wrote it).
* **The session resumes**: with the output folder it keeps its state (``mcp-state.json``), so a client
  that starts a new server for each call (the MCP Inspector's command line) goes on where it left off.

Served over stdio (the default; what MCP clients launch), or streamable HTTP on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.lowlevel
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp_types import (
    CallToolResult,
    Completion,
    ImageContent,
    PromptReference,
    ResourceTemplateReference,
    TextContent,
    ToolAnnotations,
)
from mcp_types import Resource as MCPResource
from pydantic import BaseModel, Field, Strict, ValidationError

from faderwise import __version__
from faderwise.advisor.registry import ADVISORS
from faderwise.agent.plots import plot_png
from faderwise.agent.secrets import mask_secrets
from faderwise.agent.tools import bundle_result, make_tools, moves_text, plan_content, render_moves
from faderwise.agent.workspace import Workspace, load
from faderwise.tools import errors
from faderwise.tools.daw.project import read_project
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.json_files import plain_json, read_json, write_json
from faderwise.tools.outputs import MARKER, command_inputs, output_kind
from faderwise.tools.paths import data_dir
from faderwise.tools.remedies import MCP, remedies_for

LOOPBACK = "127.0.0.1"
T = TypeVar("T")
TIME_LIMIT_S = 300.0
"""The longest one tool call may take (``faderwise mcp --time-limit``): a model's advice on a big
session takes a minute or two; a call past this is answered with an error (the work goes on until it
ends, and the session answers "busy" meanwhile)."""
BUSY_WAIT_S = 5.0
"""How long a call waits for another one to finish before it answers that the session is busy."""
STATE_FILE = "mcp-state.json"
STATE_FORMAT = "faderwise.mcp-state/1"
INSTRUCTIONS = (
    "faderwise balances a mix by fader moves (gain only). Call load with the producer's stems (a folder, a "
    ".stem.mp4, or a REAPER/Ardour project with its bounced stems beside it) and a balanced reference; then "
    "advise for the moves (dB per stem, positive raises), explain for one stem's evidence, compare and measure "
    "for levels, plot for a chart. Quote only numbers the tools return. export writes the moves into a new copy "
    "of the DAW project; apply renders the moves to a new folder only after the producer agreed to the exact "
    "plan (it asks the producer itself where the client can ask; otherwise call it with confirm: true only after "
    "the producer said yes). remove_output removes what faderwise wrote.")
ADVISOR_NAMES = tuple(kind.name for kind in ADVISORS)
AdvisorName = Literal[ADVISOR_NAMES]  # type: ignore[valid-type]

log = logging.getLogger("faderwise.mcp")


# -- structured results ---------------------------------------------------------------------------


class ToolResult(BaseModel):
    """What most tools return: the text a model may quote, and the numbers as data."""

    text: str = Field(description="one paragraph with every number the model may quote")
    data: Any = Field(description="the same facts as JSON (a 'kind' key says what they are)")


class Move(BaseModel):
    stem: str = Field(description="the stem of Version A")
    delta_db: float = Field(description="gain change to apply to that stem, dB; positive raises")
    low_db: float = Field(description="the likely range's low end, dB")
    high_db: float = Field(description="the likely range's high end, dB")


class AdviceResult(BaseModel):
    """Advice: the moves, the text (which states no move the moves do not hold) and the evidence."""

    text: str = Field(description="the advice in words, every move with its evidence")
    advisor: str = Field(description="which advisor wrote it")
    moves: list[Move] = Field(description="one per stem to change; stems not listed stay as they are")
    global_offset_db: float = Field(description="a change for the whole mix (the master fader), dB")
    mix_true_peak_after_dbtp: float | None = Field(description="the mix's true peak after the moves, dBTP")
    master_trim_db: float = Field(description="lower the master by this much to stay under -1 dBTP (0: fine)")
    evidence: dict[str, Any] = Field(description="the measurements behind the moves, per stem")


class ExplainResult(BaseModel):
    """One stem's move and the evidence behind it."""

    text: str = Field(description="the explanation")
    stem: str = Field(description="the stem explained")
    move: Move | None = Field(description="its move, or null when the advice leaves it")
    facts: dict[str, Any] = Field(description="what was measured of it")


class ConfirmApply(BaseModel):
    """The producer's answer to apply's question (elicitation)."""

    confirm: bool = Field(description="render these moves to a new folder")


# -- the server -----------------------------------------------------------------------------------


def one_line(text: str) -> str:
    """``text`` on one line (:func:`faderwise.tools.errors.one_line`), secrets masked."""
    return errors.one_line(mask_secrets(text))


def _description(text: str) -> str:
    return " ".join(text.split())


class FaderwiseMCP(MCPServer):
    """The SDK's server, with what this server wrote listed as resources and argument errors on one line."""

    def __init__(self, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workspace = workspace
        self.apply_question: Callable[..., Any] | None = None
        """apply's question with the exact moves (set by :func:`build_server`; :func:`ask_to_apply` asks it)."""

    async def list_resources(self) -> list[MCPResource]:
        listed = await super().list_resources()
        for path in list(self.workspace.outputs):
            listed.append(MCPResource(uri=output_uri(path), name=path.name, title=f"faderwise output: {path.name}",
                                      description=f"{path} (written by faderwise in this session; remove_output "
                                      "removes it)", mime_type="application/json"))
        return listed

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):  # the SDK's is many lines, with pydantic's links
                problems = "; ".join(f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
                                     f" (got {error['input']!r})" if error["type"] != "missing" else
                                     f"{'.'.join(str(part) for part in error['loc'])}: required"
                                     for error in exc.__cause__.errors())
                raise ToolError(one_line(f"{name}: bad arguments, nothing was done: {problems}")) from None
            raise


def output_uri(path: Path) -> str:
    """``faderwise://outputs/<12 hex>``: a stable name for one thing this server wrote."""
    return f"faderwise://outputs/{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"


class _Progress:
    """A workspace progress callback (any thread) that becomes the client's progress notifications,
    numbered so they always increase (measuring A, then B, then a model's stems restart their counts)."""

    def __init__(self, context: Context[Any, Any] | None, token: Any) -> None:
        self._context, self._token = context, token
        self._step = 0
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int, upcoming: str) -> None:
        if self._context is None:
            return
        with self._lock:
            self._step += 1
            step = self._step
        with contextlib.suppress(Exception):  # a client gone or a call cancelled: the work goes on
            anyio.from_thread.run(self._context.report_progress, float(step), None,
                                  f"{upcoming} ({done}/{total})", token=self._token)


def build_server(workspace: Workspace, *, time_limit_s: float = TIME_LIMIT_S, busy_wait_s: float = BUSY_WAIT_S,
                 state_file: Path | None = None) -> FaderwiseMCP:
    """An MCP server whose tools act on ``workspace``; with ``state_file`` the session is saved there
    after each call that changes it (and :func:`serve` restores it)."""
    workspace.remedies = MCP
    workspace.wait_s = busy_wait_s
    tools = {tool.name: tool for tool in make_tools(workspace)}
    server = FaderwiseMCP(workspace, name="faderwise", title="faderwise", version=__version__,
                          instructions=INSTRUCTIONS, description="Fader moves for a mix, with the evidence",
                          log_level="WARNING")

    def save_state() -> None:
        if state_file is None:
            return
        payload = {"format": STATE_FORMAT, "workspace": workspace.snapshot(),
                   "outputs": [[str(path), list(identity)] for path, identity in workspace.outputs.items()]}
        try:
            write_json(state_file, payload, force=True, private=True)
        except FaderwiseError as exc:  # the call succeeded; only resuming it later is lost
            log.warning("could not save the session to %s: %s", state_file, one_line(str(exc)))

    async def run(what: str, function: Callable[[], T], context: Context[Any, Any] | None = None, *,
                  changes: bool = False, hold: bool = True, error: type[Exception] = ToolError) -> T:
        """``function()`` as one request on the workspace (``hold`` false: without taking the session, to
        read files a slow disk may keep waiting, with a register of inputs of its own), on a worker
        thread, within the time limit; faderwise's errors (and anything unexpected) reach the client as
        one line."""
        progress = _Progress(context, anyio.lowlevel.current_token())

        def call() -> T:
            if not hold:
                with command_inputs(), remedies_for(MCP):
                    return function()
            with workspace.request(what, on_progress=progress):
                result = function()
                if changes:
                    save_state()
                return result
        try:
            with anyio.fail_after(time_limit_s):
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except TimeoutError:
            raise error(f"{what}: stopped waiting after {time_limit_s:g} s; the work goes on in the background and "
                        "the session answers busy until it ends (faderwise mcp --time-limit sets the limit)") from None
        except (ToolError, ResourceError):
            raise
        except FaderwiseError as exc:
            raise error(one_line(str(exc))) from exc
        except Exception as exc:  # a NUL byte in a path, an unreadable folder, a bug: one line, the rest in the log
            log.debug("%s failed", what, exc_info=True)
            raise error(one_line(f"{what}: {_plain_reason(exc)}")) from exc

    async def chat_tool(name: str, context: Context[Any, Any] | None, *, changes: bool = False,
                        **arguments: Any) -> tuple[str, dict[str, Any]]:
        content, artifact = await run(name, functools.partial(tools[name].func, **arguments), context,
                                      changes=changes)
        return content, artifact

    def annotations(title: str, *, read_only: bool, destructive: bool = False, idempotent: bool = True) -> ToolAnnotations:
        return ToolAnnotations(title=title, read_only_hint=read_only, destructive_hint=destructive,
                               idempotent_hint=idempotent, open_world_hint=False)

    # -- tools --------------------------------------------------------------------------------------

    @server.tool(name="load", title="Load stems", annotations=annotations("Load stems", read_only=False),
                 description=_description("""Load the producer's stems (Version A): a folder of stems, a .stem.mp4, or
                 a REAPER .RPP / Ardour .ardour project whose tracks' bounced stems lie beside it; and optionally the
                 balanced reference (Version B). All or nothing: if either cannot be loaded, the session keeps what
                 it had."""))
    async def load_stems(ctx: Context,
                         stems: Annotated[str, Field(description="Version A: a folder, .stem.mp4 or project")],
                         reference: Annotated[str | None, Field(description="Version B, the balanced reference")]
                         = None) -> ToolResult:
        loaded_a, loaded_b = await run(  # the files are read before the session is taken
            "load", lambda: (load(_path(stems)), load(_path(reference)) if reference is not None else None), hold=False)

        def take() -> ToolResult:
            workspace.set_loaded(loaded_a, loaded_b)
            content, artifact = tools["list_stems"].func()
            return ToolResult(text=f"Loaded Version A{' and the reference' if loaded_b else ''}. {content}",
                              data=artifact)
        return await run("load", take, ctx, changes=True)

    @server.tool(name="measure", title="Measure stems", annotations=annotations("Measure stems", read_only=True),
                 description=_description("""Loudness (BS.1770 LUFS), level against the mix and the backing, true peak
                 and crest of one stem of Version A (a name or the words for it, 'vox', 'the kick'), or of every stem,
                 and the mix's loudness and true peak."""))
    async def measure(ctx: Context, stem: Annotated[str | None, Field(description="one stem; omit for every stem")] = None,
                      ) -> ToolResult:
        content, artifact = await chat_tool("measure", ctx, stem=stem)
        return ToolResult(text=content, data=artifact)

    @server.tool(name="compare", title="Compare with the reference",
                 annotations=annotations("Compare with the reference", read_only=True),
                 description="Each stem of Version A against the reference: loudness in A and B, and A − B.")
    async def compare(ctx: Context) -> ToolResult:
        content, artifact = await chat_tool("compare_to_reference", ctx)
        return ToolResult(text=content, data=artifact)

    @server.tool(name="advise", title="Advise fader moves",
                 annotations=annotations("Advise fader moves", read_only=False),
                 description=_description(f"""Which faders to move by how much (dB, positive raises) and why; the
                 advice becomes the pending moves that apply renders and export writes. advisor: {'; '.join(
                     f'{kind.name}: {kind.summary}' for kind in ADVISORS)}. Default: measured when a reference is
                 loaded, else single-mix. Sends progress while it measures or a model listens."""))
    async def advise(ctx: Context,
                     stem: Annotated[str | None, Field(description="advise on this stem only; omit for every stem")] = None,
                     advisor: Annotated[AdvisorName | None, Field(description="which advisor (see the description)")]
                     = None) -> AdviceResult:
        content, data = await chat_tool("advise", ctx, changes=True, stem=stem, advisor=advisor)
        headroom = data.get("evidence", {}).get("headroom", {})
        return AdviceResult(text=content, advisor=data["advisor"], moves=data["moves"],
                            global_offset_db=data["global_offset_db"],
                            mix_true_peak_after_dbtp=headroom.get("mix_true_peak_after_dbtp"),
                            master_trim_db=headroom.get("master_trim_db") or 0.0, evidence=data.get("evidence", {}))

    @server.tool(name="explain", title="Explain one stem", annotations=annotations("Explain one stem", read_only=True),
                 description=_description("""One stem's move with its evidence: level in A and B, against its backing,
                 where it is most buried or exposed, where the backing covers it, and how sure the move is."""))
    async def explain(ctx: Context, stem: Annotated[str | None, Field(
            description="the stem (a name or the words for it); omit for the stem last talked about")] = None,
                      ) -> ExplainResult:
        content, artifact = await chat_tool("explain_stem", ctx, stem=stem)
        return ExplainResult(text=content, stem=artifact["stem"], move=artifact["move"], facts=artifact["facts"])

    @server.tool(name="plot", title="Plot levels", annotations=annotations("Plot levels", read_only=True),
                 description=_description("""A chart as an image (PNG) and as text: levels, each stem's loudness in A
                 against B; loudness, short-term loudness over time. Nothing is written to disk."""))
    async def plot(ctx: Context, kind: Annotated[Literal["levels", "loudness"], Field(
            description="levels or loudness")] = "levels") -> CallToolResult:
        png, chart = await run("plot", lambda: plot_png(workspace, kind), ctx)
        text = f"The {kind} chart (also as an image):\n{chart}"
        return CallToolResult(content=[TextContent(type="text", text=text),
                                       ImageContent(type="image", data=base64.b64encode(png).decode(),
                                                    mime_type="image/png")],
                              structured_content={"text": text, "data": {"kind": "plot", "plot": kind,
                                                                         "png_bytes": len(png)}})

    @server.tool(name="bundle", title="Write an A/B bundle",
                 annotations=annotations("Write an A/B bundle", read_only=False, destructive=True, idempotent=False),
                 description=_description("""Write one stem's A/B bundle (target and backing in A and B, where the
                 target plays) to a new folder: out if given, else bundle-STEM-NN in the output folder."""))
    async def bundle(ctx: Context, stem: Annotated[str | None, Field(description="the target stem")] = None,
                     out: Annotated[str | None, Field(description="a new folder to write (default: a numbered one in "
                                                      "the output folder)")] = None,
                     force: Annotated[bool, Strict(), Field(description="replace an earlier faderwise bundle at out "
                                                            "(never anything else)")] = False) -> ToolResult:
        if force and out is None:
            raise ToolError("bundle: force replaces an earlier output at out; give out too")

        def call() -> ToolResult:
            content, artifact = bundle_result(workspace, workspace.resolve(stem),
                                              out=Path(os.path.abspath(_path(out))) if out is not None else None,
                                              force=force)
            return ToolResult(text=content, data=artifact)
        return await run("bundle", call, ctx, changes=True)

    @server.tool(name="export", title="Export to the DAW project",
                 annotations=annotations("Export to the DAW project", read_only=False, idempotent=False),
                 description=_description("""Write the pending and applied moves into a new copy of the REAPER/Ardour
                 project (out if given, else SONG-faderwise-NN beside it): each advised track's fader moves by its
                 dB from where it is now; nothing else changes and the project itself is never written. project
                 defaults to the one the stems were loaded from."""))
    async def export(ctx: Context,
                     project: Annotated[str | None, Field(description="SONG.RPP or SONG.ardour")] = None,
                     out: Annotated[str | None, Field(description="the new project file (same suffix); a project "
                                                      "carries no mark of faderwise, so one that exists is never "
                                                      "replaced")] = None) -> ToolResult:
        where = await run("export", lambda: workspace.project_path(_path(project) if project else None), ctx)
        read = await run("export", lambda: read_project(where), hold=False)  # read without holding the session

        def call() -> ToolResult:
            target = Path(os.path.abspath(_path(out))) if out is not None else None
            plan, written = workspace.export_project(where, read=read, out=target)
            return ToolResult(text=plan_content(f"Wrote {written}", plan),
                              data={"kind": "export", "file": str(written), **plan.to_json()})
        return await run("export", call, ctx, changes=True)

    def apply_plan(stems: list[str] | None, master: bool, except_stems: list[str] | None = None) -> dict[str, float]:
        names = [workspace.resolve(stem) for stem in stems] if stems else None
        left_out = {workspace.resolve(stem) for stem in except_stems or ()}
        gains = {stem: gain for stem, gain in workspace.planned_gains(names, master=master).items()
                 if stem not in left_out}
        if not gains:
            raise FaderwiseError("apply: no pending move is left to render" + (
                f" once {', '.join(sorted(left_out))} {'is' if len(left_out) == 1 else 'are'} left out" if left_out else ""))
        return gains

    async def apply_question(ctx: Context, stems: list[str] | None, master: bool,
                             peak_safe: bool, except_stems: list[str] | None = None) -> Elicit[ConfirmApply]:
        gains = await run("apply", lambda: apply_plan(stems, master, except_stems), ctx)
        return Elicit(f"Render {moves_text(gains)} to a new folder{' (peak-safe)' if peak_safe else ''}? Version A "
                      "becomes the render; your files are not changed.", ConfirmApply)
    server.apply_question = apply_question

    @server.tool(name="apply", title="Render the moves",
                 annotations=annotations("Render the moves", read_only=False, destructive=True, idempotent=False),
                 description=_description("""Render the pending moves (or only those of stems) to a new folder, which
                 becomes Version A; the producer's files are never written. Where the client can ask the producer
                 (elicitation), apply asks with the exact moves. Otherwise nothing is rendered unless confirm is JSON
                 true: without it, apply returns the plan to show the producer first."""))
    async def apply(ctx: Context,
                    answer: Annotated[ElicitationResult[ConfirmApply], Resolve(ask_to_apply)],
                    confirm: Annotated[bool, Strict(), Field(description="true only after the producer agreed to the "
                                                             "plan")] = False,
                    stems: Annotated[list[str] | None, Field(description="only these stems' moves")] = None,
                    except_stems: Annotated[list[str] | None, Field(description="every pending move but these "
                                                                    "stems'")] = None,
                    master: Annotated[bool, Strict(), Field(description="also apply the advice's master offset to "
                                                            "every stem")] = False,
                    peak_safe: Annotated[bool, Strict(), Field(description="trim every stem alike so the mix peaks at "
                                                               "-1 dBTP")] = False,
                    out: Annotated[str | None, Field(description="a new folder (default: apply-NN in the output "
                                                     "folder)")] = None,
                    force: Annotated[bool, Strict(), Field(description="replace an earlier faderwise render at out")]
                    = False) -> ToolResult:
        gains = await run("apply", lambda: apply_plan(stems, master, except_stems), ctx)
        listed, shown = moves_text(gains), {stem: round(gain, 3) for stem, gain in gains.items()}
        asked = not (isinstance(answer, AcceptedElicitation) and answer.data is None)
        if asked:  # the producer answered through the client: their answer, not the model's confirm, decides
            confirm = isinstance(answer, AcceptedElicitation) and answer.data.confirm
            if not confirm:
                return ToolResult(text=f"Not applied: the producer did not agree ({listed}).",
                                  data={"kind": "apply", "applied": False, "gains_db": shown, "asked": True})
        if not confirm:
            return ToolResult(text=f"Not applied yet: this would render {listed} to a new folder. Show the producer "
                              "these moves, and call apply with confirm: true only if they agree.",
                              data={"kind": "apply", "applied": False, "gains_db": shown, "asked": False})

        def render() -> ToolResult:
            if apply_plan(stems, master, except_stems) != gains:
                raise FaderwiseError("apply: the pending moves changed since they were shown; nothing was rendered, "
                                     "call apply again")
            content, artifact = render_moves(workspace, gains, peak_safe=peak_safe,
                                             out=Path(os.path.abspath(_path(out))) if out is not None else None,
                                             force=force)
            return ToolResult(text=content, data=plain_json(artifact))
        return await run("apply", render, ctx, changes=True)

    @server.tool(name="what_if", title="Try a fader change", annotations=annotations("Try a fader change", read_only=True),
                 description=_description("""What a fader change would do, without making it: where the stem would
                 then sit against the reference and its backing (LUFS, LU), and the mix's true peak after it
                 (whether it would clip)."""))
    async def what_if(ctx: Context, stem: Annotated[str, Field(description="the stem (a name or the words for it)")],
                      gain_db: Annotated[float, Field(description="the change in dB (+ raise)", ge=-24, le=24)],
                      ) -> ToolResult:
        content, artifact = await chat_tool("what_if", ctx, stem=stem, gain_db=gain_db)
        return ToolResult(text=content, data=artifact)

    @server.tool(name="set_move", title="Set the producer's own move",
                 annotations=annotations("Set the producer's own move", read_only=False),
                 description=_description("""The producer's own move for one stem replaces the pending one ("only 2
                 dB", "make it -2 instead"): apply then renders it (and asks with the exact moves). Nothing is
                 rendered here."""))
    async def set_move(ctx: Context, stem: Annotated[str, Field(description="the stem (a name or the words for it)")],
                       delta_db: Annotated[float, Field(description="the move in dB (+ raise)", ge=-24, le=24)],
                       ) -> ToolResult:
        def change() -> ToolResult:
            name = workspace.resolve(stem)
            before = workspace.current_advice().move_for(name)
            advice = workspace.set_move(name, delta_db)
            was = f"the advised {before.delta_db:+.1f} dB" if before is not None else "no move"
            return ToolResult(text=f"The {name} move is now {delta_db:+.1f} dB (the producer's; it was {was}). Pending "
                              f"moves: {moves_text(advice.gains_db()) or 'none'}.",
                              data={"kind": "advice-edit", "stem": name, "delta_db": delta_db,
                                    "advised_db": before.delta_db if before is not None else None,
                                    "moves": [m.to_json() for m in advice.moves]})
        return await run("set_move", change, ctx, changes=True)

    @server.tool(name="measure_group", title="Measure stems together",
                 annotations=annotations("Measure stems together", read_only=True),
                 description=_description("""Two or more stems summed as one (the rhythm section, everything but the
                 vocals): loudness in the mix and in the reference, and against the rest of the mix."""))
    async def measure_group(ctx: Context, stems: Annotated[list[str], Field(description="the stems to sum",
                                                                            min_length=2)]) -> ToolResult:
        content, artifact = await chat_tool("measure_group", ctx, stems=stems)
        return ToolResult(text=content, data=artifact)

    @server.tool(name="second_opinion", title="Judge the advice",
                 annotations=annotations("Judge the advice", read_only=True),
                 description=_description("""A judge's second opinion on the pending advice, stem by stem:
                 correctness against the measured move (with a reference), specificity to the audio evidence and
                 staying with gain (1-5 each, with rationales; the evaluation's rubric)."""))
    async def second_opinion(ctx: Context) -> ToolResult:
        content, artifact = await chat_tool("second_opinion", ctx)
        return ToolResult(text=content, data=artifact)

    @server.tool(name="remove_output", title="Remove an output",
                 annotations=annotations("Remove an output", read_only=False, destructive=True, idempotent=False),
                 description=_description("""Remove something faderwise wrote in this session (a render, bundle,
                 plot or export; see the faderwise://outputs resources): only what this server wrote, only if it is
                 unchanged since, never the render that is Version A now or one an undo goes back to."""))
    async def remove_output(ctx: Context, output: Annotated[str, Field(
            description="its path, or its faderwise://outputs/… URI")]) -> ToolResult:
        def call() -> ToolResult:
            target = _output_path(output)
            removed = workspace.remove_output(target)
            return ToolResult(text=f"Removed {removed}.", data={"kind": "removed", "path": str(removed)})
        return await run("remove_output", call, ctx, changes=True)

    def _output_path(output: str) -> Path:
        if output.startswith("faderwise://outputs/"):
            for path in workspace.outputs:
                if output_uri(path) == output:
                    return path
            raise FaderwiseError(f"{output}: no such output of this session (resources/list shows them)")
        return _path(output)

    # -- resources ----------------------------------------------------------------------------------

    @server.resource("faderwise://advice", name="advice", title="The pending advice", mime_type="application/json",
                     description="The pending advice (faderwise.advice/1): moves, text and evidence")
    async def advice_resource() -> str:
        def read() -> str:
            if workspace.advice is None:
                raise FaderwiseError("no advice yet: call the advise tool first")
            return json.dumps(workspace.advice.to_json(), indent=2, allow_nan=False)
        return await run("advice", read, error=ResourceError)

    @server.resource("faderwise://plot/{kind}", name="plot", title="A chart of the levels", mime_type="image/png",
                     description="levels: each stem's loudness, A against B; loudness: short-term loudness over "
                     "time (drawn when read; nothing is written)")
    async def plot_resource(kind: str) -> bytes:
        if kind not in ("levels", "loudness"):
            raise ResourceError(f"no plot {kind!r}: levels or loudness")
        png, _ = await run("plot", lambda: plot_png(workspace, kind), error=ResourceError)  # type: ignore[arg-type]
        return png

    @server.resource("faderwise://outputs/{key}", name="output", title="Something faderwise wrote",
                     mime_type="application/json", description="What one output of this session holds")
    async def output_resource(key: str) -> str:
        for path in list(workspace.outputs):
            if output_uri(path) == f"faderwise://outputs/{key}":
                return json.dumps(describe_output(path), indent=2)
        raise ResourceError(f"faderwise://outputs/{key}: no such output of this session")

    # -- prompts and completions -----------------------------------------------------------------

    @server.prompt(name="balance", title="Balance my mix against a reference",
                   description="Load your stems and a balanced reference, and get the fader moves with the evidence")
    def balance_prompt(stems: str, reference: str) -> list[UserMessage]:
        return [UserMessage(
            f"Load my stems from {stems!r} and the balanced reference {reference!r} with the load tool, then call "
            "advise and tell me which faders to move by how much, biggest first, with the measured evidence for the "
            "biggest move (explain). Quote only numbers the tools return. Do not apply anything until I say so.")]

    @server.prompt(name="explain_stem", title="Explain one stem",
                   description="Why one stem should move (or stay), from the measurements")
    def explain_prompt(stem: str) -> list[UserMessage]:
        return [UserMessage(f"Explain the move for {stem!r} with the explain tool: its level in my mix and in the "
                            "reference, against its backing, when it is most buried or exposed, and how sure the move "
                            "is. Quote only numbers the tool returns; gain only, no EQ or effects.")]

    @server.prompt(name="export_to_daw", title="Export the moves to my DAW project",
                   description="Write the moves into a new copy of your REAPER or Ardour project")
    def export_prompt(project: str | None = None) -> list[UserMessage]:
        which = f"my project {project!r}" if project else "the project my stems were loaded from"
        return [UserMessage(f"Write the pending fader moves into a new copy of {which} with the export tool, then "
                            "tell me which tracks' faders moved, from where to where. My project itself must not "
                            "change.")]

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        typed = str(argument.value or "").casefold()
        if isinstance(ref, PromptReference) and argument.name == "stem":
            names = workspace.version_a.stems.names if workspace.version_a is not None else []
            values = [name for name in names if name.casefold().startswith(typed)]
        elif isinstance(ref, ResourceTemplateReference) and argument.name == "kind":
            values = [kind for kind in ("levels", "loudness") if kind.startswith(typed)]
        else:
            return None
        return Completion(values=values[:100], total=len(values), has_more=len(values) > 100)

    return server


async def ask_to_apply(ctx: Context, stems: list[str] | None = None, master: bool = False,
                       peak_safe: bool = False, except_stems: list[str] | None = None) -> Elicit[ConfirmApply] | None:
    """apply's question to the producer, with the exact moves, where the client can ask (elicitation: a
    question sent mid-call, or, from protocol 2026-07-28, asked back in the call's result); None where it
    cannot (then only ``confirm: true`` renders)."""
    if not _can_elicit(ctx):
        return None
    return await ctx.mcp_server.apply_question(ctx, stems, master, peak_safe, except_stems)  # type: ignore[attr-defined]


def _can_elicit(context: Context[Any, Any]) -> bool:
    """Whether the client said it can ask its user (form elicitation)."""
    with contextlib.suppress(Exception):
        capabilities = context.client_capabilities
        return capabilities is not None and capabilities.elicitation is not None
    return False


def _path(text: str | None) -> Path:
    """A path an MCP client sent: a NUL byte or an empty string is refused in one line."""
    if text is None or not str(text).strip():
        raise FaderwiseError("an empty path: name a file or folder")
    if "\x00" in str(text):
        raise FaderwiseError(f"{one_line(str(text))}: a path cannot hold a NUL byte")
    return Path(str(text)).expanduser()


def _plain_reason(exc: BaseException) -> str:
    """What went wrong, in one phrase: an OS error's file and reason, else the exception's own words (and its
    type, for anything but a ValueError or OSError, which say what they are)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")
    if isinstance(exc, (ValueError, OSError)):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def describe_output(path: Path) -> dict[str, Any]:
    """What one output holds: its path, kind (a folder's marker), files and size."""
    if path.is_dir():
        files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and p.name != MARKER)
        size = sum((path / name).stat().st_size for name in files)
        return {"path": str(path), "kind": output_kind(path), "files": files, "bytes": size}
    exists = path.is_file()
    return {"path": str(path), "kind": "export" if exists else None, "files": [path.name] if exists else [],
            "bytes": path.stat().st_size if exists else 0}


# -- serving --------------------------------------------------------------------------------------


class PortError(FaderwiseError):
    """An HTTP port faderwise cannot serve on."""


def check_port(port: int) -> None:
    """Refuse, in one line, a port out of range or in use on 127.0.0.1 (before the server starts, whose
    own message is many lines of its log)."""
    if not 1 <= port <= 65535:
        raise PortError(f"port {port}: not a port number (1 to 65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortError(f"port {port} on {LOOPBACK} is in use (another faderwise mcp?): choose another with "
                                "--port") from None
            if exc.errno == errno.EACCES:
                raise PortError(f"port {port} on {LOOPBACK}: not allowed for this user (ports under 1024 need "
                                "privileges): choose another with --port") from None
            raise PortError(f"port {port} on {LOOPBACK}: {exc.strerror}") from None


def restore_state(workspace: Workspace, state_file: Path) -> list[str]:
    """Restore what :func:`build_server` saved in ``state_file``; one line per thing that could not be."""
    if not state_file.is_file():
        return []
    try:
        state = read_json(state_file, error=FaderwiseError)
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            return [f"{state_file}: not a faderwise MCP state; starting afresh"]
        problems = workspace.restore(state.get("workspace") or {})
        for path, identity in state.get("outputs") or []:
            workspace.outputs[Path(path)] = tuple(identity)
        return problems
    except FaderwiseError as exc:
        return [f"{state_file}: {exc}; starting afresh"]


def serve(*, http_port: int | None = None, output_dir: Path | None = None, workers: int = 1,
          time_limit_s: float = TIME_LIMIT_S) -> None:
    """Serve one workspace over stdio, or over streamable HTTP on 127.0.0.1:``http_port``; the session is
    kept in the output folder and resumed by the next server there."""
    if http_port is not None:
        check_port(http_port)
    out = Path(os.path.abspath(output_dir or data_dir() / "mcp"))
    workspace = Workspace(output_dir=out, workers=workers)
    state_file = out / STATE_FILE
    holder = _hold(out)
    if holder is None:
        print(f"faderwise mcp: another server keeps its session in {out}; this one starts afresh and keeps nothing",
              file=sys.stderr)
        state_file = None  # type: ignore[assignment]
    else:
        for problem in restore_state(workspace, state_file):
            print(f"faderwise mcp: warning: {one_line(problem)}", file=sys.stderr)
    server = build_server(workspace, time_limit_s=time_limit_s, state_file=state_file)
    try:
        if http_port is None:
            server.run("stdio")
        else:
            server.run("streamable-http", host=LOOPBACK, port=http_port)
    finally:
        if holder is not None:
            os.close(holder)


def _hold(folder: Path) -> int | None:
    """An exclusive lock on ``folder``'s session (a lock file beside the state), or None when another
    live server holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the session is still kept
        return os.open(os.devnull, os.O_RDONLY)
    folder.mkdir(parents=True, exist_ok=True)
    # an empty lock file, never written; not followed if it is a link (a lock on someone else's file)
    fd = os.open(folder / ".mcp-session.lock", os.O_RDONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
