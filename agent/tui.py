"""The chat in the terminal (Textual): a thin shell over :class:`~faderwise.agent.session.AgentSession`.

Layout: the conversation (streamed Markdown replies, each tool call as a collapsible block), a
stems panel (levels of A and B and the pending moves, updated as the agent measures), a log
view, and a multiline input (Enter sends, Shift+Enter or Ctrl+J adds a line; pasted text is
never sent on its own). Slash commands complete with Tab. Key bindings have ids, so the config
file's ``[keys]`` table can remap them.

Names from a project, a file or a producer (``Video [chan 1]``, ``Gtr [/x]``) are data: no widget here
reads what it shows as markup. Static widgets take ``markup=False``, a table cell or a title is given
as :class:`~rich.text.Text` or :class:`~textual.content.Content`, the log has markup off, and replies
are Markdown (which has no markup of Rich's).
"""

from __future__ import annotations

import math
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Collapsible, DataTable, Footer, Header, Markdown, RichLog, Static, TextArea

from faderwise.advisor.registry import advisor_names
from faderwise.agent.keys import BINDINGS as KEY_BINDINGS
from faderwise.agent.llm import parse_llm_spec
from faderwise.agent.planner import HELP_TEXT
from faderwise.agent.session import (
    AgentSession,
    Confirm,
    Event,
    Guarded,
    Notice,
    Panel,
    Reply,
    Token,
    ToolEnd,
    ToolStart,
    TurnError,
)
from faderwise.agent.store import SessionInfo, SessionStore
from faderwise.agent.understand import SLASH_REQUESTS, command_request
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.memory import format_duration

SLASH_COMMANDS: dict[str, str] = {
    "/load": "/load FOLDER: load your stems (Version A)",
    "/reference": "/reference FOLDER: load the balanced reference (Version B)",
    "/advise": f"/advise [{'|'.join(advisor_names())}]: propose fader moves (with that advisor)",
    "/apply": "/apply [STEM ...] [--except STEM ...]: render the pending moves (only those, or all but those) to a "
              "new folder (asks first)",
    "/plot": "/plot [levels|loudness]: draw the stems' levels or loudness over time",
    "/export": "/export FILE.md [--force]: save this conversation as Markdown",
    "/export-project": "/export-project [SONG.RPP|SONG.ardour]: a new copy of the project with the faders moved "
                       "(default: the project the stems came from)",
    "/push": "/push reaper|ardour [PORT]: move the running DAW's faders over OSC (shows them, asks first)",
    "/sessions": "/sessions: list saved sessions",
    "/model": "/model SPEC: switch model (offline, ollama:MODEL[@HOST], openai:MODEL, anthropic:MODEL; "
              "options ,mode=routed ,tool_choice=required)",
    "/retry": "/retry: run a failed turn again",
    "/help": "/help: what you can ask",
}
RETRY_HINT = "Nothing earlier is lost: /retry runs the turn again, /model offline switches to the built-in planner."


def complete_slash(text: str) -> tuple[str, list[str]]:
    """Tab completion for a slash command: the completed text and the commands that match."""
    if not text.startswith("/") or " " in text:
        return text, []
    matches = [command for command in SLASH_COMMANDS if command.startswith(text)]
    if len(matches) == 1:
        return matches[0] + " ", matches
    return text, matches


def format_cell(value: object, *, signed: bool = False) -> str:
    if value is None:
        return "·"
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        return "silent"
    return f"{round(number, 1) + 0.0:+.1f}" if signed else f"{number:.1f}"


class StemsPanel(DataTable):
    """Stem, A and B loudness (LUFS), A − B (LU) and the pending move (dB); the stem being
    discussed is marked."""

    def on_mount(self) -> None:
        self.cursor_type = "none"
        # one space between columns instead of Textual's two: the panel fits beside the chat at 80 columns
        self.cell_padding = 0
        for label in ("stem", "A LUFS", "B LUFS", "A−B", "move"):
            self.add_column(Text(f" {label}", justify="right") if label != "stem" else label)

    def show(self, rows: list[Mapping[str, object]]) -> None:
        self.clear()
        for row in rows:
            name = f"▸ {row['stem']}" if row.get("focus") else f"  {row['stem']}"
            cells = (format_cell(row.get("a_lufs")), format_cell(row.get("b_lufs")),
                     format_cell(row.get("a_minus_b_lu"), signed=True), format_cell(row.get("move_db"), signed=True))
            # a stem's name as Text: a str cell would be read as markup ("Video [chan 1]" would lose "[chan 1]")
            self.add_row(Text(name, no_wrap=True, end=""), *(Text(f" {cell}", justify="right") for cell in cells),
                         key=str(row["stem"]))


class ChatInput(TextArea):
    """Enter sends; Shift+Enter or Ctrl+J starts a new line; Tab completes a slash command."""

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if self.text.strip():
                self.post_message(self.Submitted(self.text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key == "tab":
            event.stop()
            event.prevent_default()
            completed, matches = complete_slash(self.text)
            if completed != self.text:
                self.text = completed
                self.move_cursor(self.document.end)
            self.app.query_one("#hint", Static).update("   ".join(SLASH_COMMANDS[m] for m in matches))
            return
        await super()._on_key(event)


class ToolBlock(Collapsible):
    """One tool call: its arguments in the title, its result inside (folded)."""

    def __init__(self, name: str, args: Mapping[str, Any]) -> None:
        shown = ", ".join(f"{key}={value!r}" for key, value in args.items())
        self.call_title = f"{name}({shown})"
        self.result = Static("running…", classes="tool-result", markup=False)
        self.running = True
        # the title as Content, not a str (which Collapsible reads as markup): the arguments hold names
        super().__init__(self.result, title=Content(f"⚙ {self.call_title}"), collapsed=True,  # type: ignore[arg-type]
                         classes="tool")

    def finish(self, content: str, *, failed: bool) -> None:
        self.running = False
        self.title = Content(f"{'✗' if failed else '✓'} {self.call_title}")  # type: ignore[assignment]
        self.result.update(content)
        if failed:
            self.add_class("failed")


class ChatApp(App[None]):
    """The faderwise chat."""

    TITLE = "faderwise"
    CSS = """
    #main { height: 1fr; }
    #chat { width: 2fr; padding: 0 1; }
    #side { width: 1fr; min-width: 36; max-width: 48; border-left: solid $primary; }
    #stems { height: auto; max-height: 60%; }
    #log { height: 1fr; display: none; }
    #log.shown { display: block; }
    #hint { color: $text-muted; height: auto; padding: 0 1; }
    #input { height: 5; border: round $primary; }
    .user { background: $boost; padding: 0 1; margin: 1 0 0 0; }
    .assistant { margin: 0; }
    .error { color: $error; padding: 0 1; }
    .confirm { color: $warning; padding: 0 1; text-style: bold; }
    .notice { color: $text-muted; padding: 0 1; text-style: italic; }
    .tool { margin: 0; padding: 0; }
    .tool.failed { color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(b.keys, b.action, b.description, id=b.id, priority=b.priority) for b in KEY_BINDINGS
    ]

    def __init__(self, session: AgentSession, *, store: SessionStore | None = None, info: SessionInfo | None = None,
                 greeting: str | None = None, keymap: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.session = session
        self.store = store
        self.info = info
        self.greeting = greeting
        self.keymap = dict(keymap or {})
        self.busy = False
        self.last_reply = ""
        self._cancelled = False
        self._streaming: Static | None = None
        self._streamed = ""
        self._measuring: tuple[float, int] | None = None  # (when, done) at the first progress report of a job

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield VerticalScroll(id="chat")
            with Vertical(id="side"):
                yield StemsPanel(id="stems")
                yield RichLog(id="log", wrap=True, markup=False)
        yield Static("", id="hint", markup=False)  # what is measured, or the slash commands: "[PORT]" is text
        yield ChatInput(id="input", soft_wrap=True, show_line_numbers=False)
        yield Footer()

    def on_mount(self) -> None:
        if self.keymap:
            self.set_keymap(self.keymap)
        self.sub_title = f"{self.info.name if self.info else 'chat'} · {self.session.llm}"
        self.replay(self.session.messages())
        if self.greeting:
            self.add_assistant(self.greeting)
        if self.session.pending is not None:
            self.add_note(self.session.pending.question, "confirm")
        self.query_one(StemsPanel).show(self.session.workspace.panel())
        self.session.workspace.on_progress = self._progress_from_any_thread
        self.query_one(ChatInput).focus()

    def _progress_from_any_thread(self, done: int, total: int, what: str) -> None:
        """The workspace measures in the turn's thread (or, rarely, in the app's own)."""
        if threading.get_ident() == self._thread_id:
            self.show_progress(done, total, what)
        else:
            self.call_from_thread(self.show_progress, done, total, what)

    def show_progress(self, done: int, total: int, what: str) -> None:
        """The measuring under way, in the hint line: what is measured, steps done, time left."""
        now = time.monotonic()
        if self._measuring is None or done <= self._measuring[1]:
            self._measuring = (now, done)
        started, first = self._measuring
        left = ""
        if done > first and done < total:
            seconds = (now - started) / (done - first) * (total - done)
            left = f", about {format_duration(seconds)} left"
        self.query_one("#hint", Static).update(f"measuring {what} ({done}/{total}{left}); Esc cancels the turn")

    # -- the conversation -----------------------------------------------------------------------

    def _chat(self) -> VerticalScroll:
        return self.query_one("#chat", VerticalScroll)

    def add_user(self, text: str) -> None:
        self._chat().mount(Static(text, classes="user", markup=False))
        self._chat().scroll_end(animate=False)

    def add_assistant(self, text: str = "") -> Markdown:
        widget = Markdown(text, classes="assistant")
        self._chat().mount(widget)
        self._chat().scroll_end(animate=False)
        return widget

    def add_note(self, text: str, kind: str) -> None:
        """A line of the chat's own (``kind``: error, confirm, notice), shown whole: it wraps, and the
        chat scrolls to its end once it has its height."""
        self._chat().mount(Static(text, classes=kind, markup=False))
        self.call_after_refresh(self._chat().scroll_end, animate=False)

    def log_line(self, text: str) -> None:
        self.query_one("#log", RichLog).write(text)

    def replay(self, messages: list[BaseMessage]) -> None:
        """Redraw a resumed conversation."""
        results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
        for message in messages:
            if isinstance(message, HumanMessage):
                self.add_user(str(message.content))
            elif isinstance(message, AIMessage):
                for call in message.tool_calls:
                    block = ToolBlock(call["name"], call["args"])
                    self._chat().mount(block)
                    result = results.get(call["id"])
                    if result is not None:
                        block.finish(str(result.content), failed=result.status == "error")
                if message.content:
                    self.add_assistant(str(message.content))
                    self.last_reply = str(message.content)

    # -- input ----------------------------------------------------------------------------------

    def on_chat_input_submitted(self, message: ChatInput.Submitted) -> None:
        text = message.text.strip()
        chat_input = self.query_one(ChatInput)
        if self.busy:
            self.query_one("#hint", Static).update("a turn is running: Esc cancels it")
            return
        chat_input.clear()
        self.query_one("#hint", Static).update("")
        if text.startswith("/"):
            self.run_slash(text)
        else:
            self.add_user(text)
            self.start_turn(lambda: self.session.send(text))

    def run_slash(self, text: str) -> None:
        try:
            words = shlex.split(text)
        except ValueError as exc:
            self.add_note(f"{text}: {exc}", "error")
            return
        command, args = words[0], words[1:]
        self.add_user(text)
        if command in SLASH_REQUESTS:
            stems = self.session.context().get("stems", [])
            request = command_request(command, args, stems)
            if request is None:
                self.add_note(f"usage: {SLASH_COMMANDS[command]}", "error")
                return
            self.start_turn(lambda: self.session.send(text, request=request))
        elif command == "/retry":
            self.start_turn(self.session.retry)
        elif command == "/help":
            self.add_assistant(HELP_TEXT + "\n\nCommands:\n\n" + "\n".join(f"- `{v}`" for v in SLASH_COMMANDS.values()))
        elif command == "/model":
            self.switch_model(args)
        elif command == "/sessions":
            self.list_sessions()
        elif command == "/export":
            self.export(args)
        else:
            self.add_note(f"unknown command {command}; /help lists them", "error")

    def switch_model(self, args: list[str]) -> None:
        if len(args) != 1:
            self.add_note(f"the model is {self.session.llm}; usage: {SLASH_COMMANDS['/model']}", "error")
            return
        try:
            self.session.set_llm(parse_llm_spec(args[0]))
        except FaderwiseError as exc:
            self.add_note(str(exc), "error")
            return
        if self.store and self.info:
            self.store.touch(self.info.id, llm=str(self.session.llm))
        self.sub_title = f"{self.info.name if self.info else 'chat'} · {self.session.llm}"
        self.add_note(f"now using {self.session.llm}", "confirm")

    def list_sessions(self) -> None:
        if self.store is None:
            self.add_note("this chat is not saved (no sessions database)", "error")
            return
        lines = [f"- `{s.id}` **{s.name}** — {s.stems or 'no stems'} ({s.llm})" for s in self.store.list()]
        self.add_assistant("Saved sessions (resume with `faderwise chat --resume ID`):\n\n" + "\n".join(lines))

    def export(self, args: list[str]) -> None:
        force = "--force" in args
        paths = [arg for arg in args if arg != "--force"]
        if self.store is None or self.info is None or len(paths) != 1:
            self.add_note(f"usage: {SLASH_COMMANDS['/export']} (in a saved session)", "error")
            return
        try:
            out = self.store.export_markdown(self.info.id, paths[0], force=force)
        except FaderwiseError as exc:
            self.add_note(str(exc), "error")
            return
        self.add_note(f"wrote {out}", "confirm")

    # -- running a turn -------------------------------------------------------------------------

    def start_turn(self, events_of: Callable[[], Iterator[Event]]) -> None:
        self.busy = True
        self._cancelled = False
        self.query_one("#hint", Static).update("working… (Esc cancels)")
        self.run_turn(events_of)

    @work(thread=True, exclusive=True, group="turn")
    def run_turn(self, events_of: Callable[[], Iterator[Event]]) -> None:
        try:
            for event in events_of():
                if self._cancelled:
                    self.session.cancel()
                self.call_from_thread(self.show_event, event)
        finally:
            self.call_from_thread(self.end_turn)
            if self.store and self.info:
                self.store.touch(self.info.id)

    def show_event(self, event: Event) -> None:
        if self._cancelled:
            return
        if isinstance(event, Token):
            # Tokens show as plain text while they arrive; the finished reply is rendered as
            # Markdown once, so a half-written list or table never renders twice.
            if self._streaming is None:
                self._streaming = Static("", classes="assistant streaming", markup=False)
                self._streamed = ""
                self._chat().mount(self._streaming)
            self._streamed += event.text
            self._streaming.update(self._streamed)
        elif isinstance(event, ToolStart):
            block = ToolBlock(event.name, event.args)
            block.id = f"tool-{event.call_id}"
            self._chat().mount(block)
            self.log_line(f"tool {event.name} {event.args}")
        elif isinstance(event, ToolEnd):
            for block in self.query(f"#tool-{event.call_id}").results(ToolBlock):
                block.finish(event.content, failed=event.failed)
            self.log_line(f"{'failed' if event.failed else 'done'} {event.name}: {event.content}")
        elif isinstance(event, Panel):
            self.query_one(StemsPanel).show(event.rows)
        elif isinstance(event, Confirm):
            self.add_note(event.question, "confirm")
            self.last_reply = event.question
        elif isinstance(event, Reply):
            if self._streaming is not None:
                self._streaming.remove()
                self._streaming = None
            self.add_assistant(event.text)
            self.last_reply = event.text
        elif isinstance(event, TurnError):
            self.add_note(f"{event.message}. {RETRY_HINT}" if event.retry else event.message, "error")
            self.log_line(f"error: {event.detail or event.message}")
        elif isinstance(event, Notice):
            self.add_note(event.text, "notice")
            self.log_line(f"note: {event.text}")
        elif isinstance(event, Guarded):
            self.log_line(f"kept from the chat ({event.reason}): {event.text}")
        # after the refresh, when the new widgets have their height
        self.call_after_refresh(self._chat().scroll_end, animate=False)

    def end_turn(self) -> None:
        self.busy = False
        self._measuring = None
        self._streaming = None  # a cancelled or failed turn keeps what it streamed, as plain text
        if self._cancelled:  # a tool the cancel cut short is not left "running" forever
            for block in self.query(ToolBlock):
                if block.running:
                    block.finish("Cancelled by the producer.", failed=True)
        self.query_one("#hint", Static).update("")

    # -- actions --------------------------------------------------------------------------------

    def action_cancel(self) -> None:
        if not self.busy:
            return
        self._cancelled = True
        self.session.cancel()
        self.add_note("(cancelled)", "error")
        self.query_one("#hint", Static).update("cancelling: the step under way finishes first")

    def action_copy_reply(self) -> None:
        if self.last_reply:
            self.copy_to_clipboard(self.last_reply)
            self.query_one("#hint", Static).update("copied the last reply")

    def action_toggle_log(self) -> None:
        self.query_one("#log", RichLog).toggle_class("shown")
