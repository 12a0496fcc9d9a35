"""The Textual chat, driven with App.run_test(): sending, tool blocks, the stems panel, the input's
keys, slash commands, cancelling, a restart, and a snapshot of the main screen."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from textual.pilot import Pilot
from textual.widgets import Markdown, RichLog, Static

from agent_fakes import ScriptedChatModel, call
from faderwise.agent.config import Config
from faderwise.agent.launch import demo_greeting, open_chat
from faderwise.agent.llm import LLMSpec, parse_llm_spec
from faderwise.agent.session import AgentSession
from faderwise.agent.store import SessionStore
from faderwise.agent.tui import ChatApp, ChatInput, StemsPanel, ToolBlock, complete_slash
from faderwise.agent.workspace import Workspace

SIZE = (130, 40)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def demo_session(demo_dir: Path, tmp_path: Path, **kwargs: object) -> AgentSession:
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    workspace.set_reference(demo_dir / "version_b")
    return AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="t",
                        **kwargs)  # type: ignore[arg-type]


async def settle(pilot: Pilot, app: ChatApp) -> None:
    for _ in range(400):
        await pilot.pause(0.02)
        if not app.busy:
            break
    await pilot.pause(0.05)


async def say(pilot: Pilot, app: ChatApp, text: str) -> None:
    app.query_one(ChatInput).text = text
    await pilot.press("enter")
    await settle(pilot, app)


def panel_rows(app: ChatApp) -> dict[str, list[str]]:
    table = app.query_one(StemsPanel)
    return {str(row[0]).strip(" ▸"): [str(cell).strip() for cell in row[1:]] for row in
            (table.get_row_at(i) for i in range(table.row_count))}


@pytest.mark.anyio
async def test_a_message_shows_tool_blocks_the_reply_and_the_stems_table(demo_dir: Path, tmp_path: Path) -> None:
    app = ChatApp(demo_session(demo_dir, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        assert panel_rows(app)["vocals"] == ["·", "·", "·", "·"]  # nothing measured yet
        await say(pilot, app, "overview")
        assert [block.title for block in app.query(ToolBlock)] == ["✓ compare_to_reference()", "✓ advise()"]
        assert panel_rows(app)["vocals"] == ["-15.0", "-19.0", "+4.0", "-4.0"]
        assert panel_rows(app)["drums"] == ["-24.5", "-21.5", "-3.0", "+3.0"]
        assert panel_rows(app)["bass"] == ["-24.0", "-24.0", "+0.0", "·"]
        assert app.last_reply.startswith("Your mix is +1.6 LU against the reference overall.")
        assert app.query(Markdown).last().source == app.last_reply
        await say(pilot, app, "what about the drums?")
        assert panel_rows(app) and "▸ drums" in str(app.query_one(StemsPanel).get_row_at(1)[0])


@pytest.mark.anyio
async def test_enter_sends_ctrl_j_adds_a_line_and_paste_never_sends(demo_dir: Path, tmp_path: Path) -> None:
    app = ChatApp(demo_session(demo_dir, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        chat_input = app.query_one(ChatInput)
        await pilot.press("h", "i", "ctrl+j", "t", "h", "e", "r", "e")
        assert chat_input.text == "hi\nthere"
        chat_input.clear()
        await pilot.press("shift+enter")
        assert chat_input.text == "\n"
        chat_input.clear()
        from textual.events import Paste

        app.post_message(Paste("overview\n"))  # what a terminal sends on paste
        await pilot.pause(0.1)
        assert chat_input.text == "overview\n" and not app.query(ToolBlock)  # pasted, not sent
        await pilot.press("enter")
        await settle(pilot, app)
        assert len(app.query(ToolBlock)) == 2 and chat_input.text == ""


@pytest.mark.anyio
async def test_slash_commands(demo_dir: Path, tmp_path: Path) -> None:
    app = ChatApp(demo_session(demo_dir, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        chat_input = app.query_one(ChatInput)
        chat_input.text = "/mo"
        await pilot.press("tab")
        assert chat_input.text == "/model "
        chat_input.text = "/re"
        await pilot.press("tab")
        assert chat_input.text == "/re"  # /reference and /retry: listed, not completed
        assert "/reference FOLDER" in str(app.query_one("#hint", Static).render())
        await say(pilot, app, "/help")
        assert "Commands:" in app.query(Markdown).last().source
        await say(pilot, app, "/model gpt4")
        notes = [str(w.render()) for w in app.query(".error")]
        assert notes[-1] == ("unknown model 'gpt4': expected offline, ollama:MODEL[@HOST], openai:MODEL or "
                             "anthropic:MODEL")
        await say(pilot, app, "/frobnicate")
        assert str(app.query(".error").last().render()) == "unknown command /frobnicate; /help lists them"
        await say(pilot, app, "/advise")
        assert [b.title for b in app.query(ToolBlock)] == ["✓ compare_to_reference()", "✓ advise()"]
        await say(pilot, app, "/apply")
        assert str(app.query(".confirm").last().render()) == ("Apply vocals -4.0 dB, drums +3.0 dB and render to a "
                                                              "new folder? (yes/no)")
        await say(pilot, app, "yes")
        assert app.last_reply.startswith("Applied vocals -4.0 dB, drums +3.0 dB")
        await say(pilot, app, "/plot")
        assert "```" in app.last_reply and "vocals" in app.last_reply


@pytest.mark.anyio
async def test_escape_cancels_a_running_turn(demo_dir: Path, tmp_path: Path) -> None:
    gate = threading.Event()
    model = ScriptedChatModel(responses=[AIMessage("", tool_calls=[call("advise", "c1")]),
                                         AIMessage("the reply to hello")], gate=gate)
    session = demo_session(demo_dir, tmp_path, model=model)
    app = ChatApp(session)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(ChatInput).text = "what should move?"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.busy
        await pilot.press("escape")
        assert str(app.query(".error").last().render()) == "(cancelled)"
        gate.set()
        await settle(pilot, app)
        assert not app.busy
        assert not app.query(Markdown)  # no reply was shown for the cancelled turn
        messages = session.messages()
        calls = {c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls}
        answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
        assert calls == answered  # no tool call is left without a result for the next model call
        await say(pilot, app, "hello")
        assert app.last_reply == "the reply to hello"


@pytest.mark.anyio
async def test_a_tool_cut_short_by_escape_is_not_left_running(demo_dir: Path, tmp_path: Path) -> None:
    gate = threading.Event()
    model = ScriptedChatModel(responses=[AIMessage("", tool_calls=[call("advise", "c1")]), AIMessage("unused")])
    session = demo_session(demo_dir, tmp_path, model=model)
    advise = session.workspace.advise
    session.workspace.advise = lambda **kwargs: (gate.wait(10), advise(**kwargs))[1]  # a slow tool
    app = ChatApp(session)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(ChatInput).text = "what should move?"
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.02)
            if app.query(ToolBlock):
                break
        (block,) = app.query(ToolBlock)
        assert block.title == "⚙ advise()" and block.running
        await pilot.press("escape")
        gate.set()
        await settle(pilot, app)
        assert block.title == "✗ advise()" and not block.running
        assert str(block.result.render()) == "Cancelled by the producer."


@pytest.mark.anyio
async def test_the_log_keeps_long_lines_whole(demo_dir: Path, tmp_path: Path) -> None:
    app = ChatApp(demo_session(demo_dir, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await say(pilot, app, "overview")
        await pilot.press("ctrl+l")  # show the log: it renders what it holds at its width
        await pilot.pause(0.2)
        log = app.query_one("#log", RichLog)
        text = " ".join(strip.text for strip in log.lines)
        advice = next(b for b in app.query(ToolBlock) if b.call_title == "advise()")
        tail = str(advice.result.render())[-60:]  # the end of a result of several hundred characters
        assert len(str(advice.result.render())) > 300 and " ".join(tail.split()) in " ".join(text.split())


@pytest.mark.anyio
async def test_a_model_error_is_one_whole_line_with_the_details_in_the_log(demo_dir: Path, tmp_path: Path) -> None:
    dump = "Error code: 500 - " + "{'detail': 'messages.2.content: Input should be a valid string'} " * 30
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    model = ScriptedChatModel(responses=[RuntimeError(dump + "sk-live-secret-0123456789abcdef")])
    session = AgentSession(workspace=workspace, llm=parse_llm_spec("openai:local,mode=native"),
                           checkpointer=InMemorySaver(), thread_id="t", model=model)
    app = ChatApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await say(pilot, app, "overview")
        errors = [str(note.render()) for note in app.query(".error").results(Static)]
        line = ("the model (openai:local,mode=native) failed: RuntimeError: Error code: 500 - {'detail': "
                "'messages.2.content: Input should be a valid string'} {'detail': 'messages.2.content: Inpu…")
        assert errors == [f"{line}. Nothing earlier is lost: /retry runs the turn again, /model offline switches to "
                          "the built-in planner."]
        note = app.query(".error").results(Static).__next__()
        assert note.region.height >= 3 and note.region.bottom <= app.query_one("#chat").region.bottom  # whole, seen
        await pilot.press("ctrl+l")
        await pilot.pause(0.2)
        logged = "".join(strip.text for strip in app.query_one("#log", RichLog).lines)
        assert "error: RuntimeError: Error code: 500" in logged and "sk-live-secret" not in logged
        assert logged.count("messages.2.content") == 30


@pytest.mark.anyio
async def test_a_switch_to_routed_is_said_once_and_a_guarded_reply_is_logged(demo_dir: Path, tmp_path: Path) -> None:
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    workspace.set_reference(demo_dir / "version_b")
    model = ScriptedChatModel(responses=[AIMessage("Your drums are 14 dB too quiet."),
                                         AIMessage("Lower the vocals by about 4 dB."),
                                         AIMessage("Raise the drums by 14 dB.")])
    session = AgentSession(workspace=workspace, llm=parse_llm_spec("ollama:tiny"), checkpointer=InMemorySaver(),
                           thread_id="t", model=model)
    app = ChatApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await say(pilot, app, "what's too loud?")
        await say(pilot, app, "what about the drums?")
        notices = [str(note.render()) for note in app.query(".notice").results(Static)]
        assert notices == ["ollama:tiny answered without calling a tool, so for the rest of this session the built-in "
                           "planner picks the tools and the model words the answers from their results."]
        replies = [m.source for m in app.query(Markdown)]
        assert replies[0] == "Lower the vocals by about 4 dB."  # routed: the model's grounded wording
        assert replies[1].startswith("Raise the drums by about 3 dB") and replies[1].endswith(
            "(faderwise: the model's reply stated numbers that no tool returned, so this answer is the built-in "
            "planner's, from the tools' results.)")
        await pilot.press("ctrl+l")
        await pilot.pause(0.2)
        logged = " ".join(" ".join(strip.text for strip in app.query_one("#log", RichLog).lines).split())
        assert ("kept from the chat (the model's reply stated numbers no tool returned (drums +14.0 dB)): "
                "Raise the drums by 14 dB.") in logged


def test_help_says_what_no_command_does(capsys: pytest.CaptureFixture[str]) -> None:
    from faderwise.cli import build_parser

    assert "With no command it opens the chat on the built-in demo song" in " ".join(
        build_parser().format_help().split())


@pytest.mark.anyio
async def test_a_session_survives_an_app_restart(demo_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    database = tmp_path / "data" / "sessions.sqlite"
    store = SessionStore(database)
    opened = open_chat(stems=demo_dir / "version_a", reference=demo_dir / "version_b", llm=None, resume=False,
                       name="restart", config=Config(), store=store)
    app = ChatApp(opened.session, store=store, info=opened.info, greeting=opened.greeting)
    async with app.run_test(size=SIZE) as pilot:
        await say(pilot, app, "overview")
        await say(pilot, app, "what about the drums?")
        before = app.last_reply
    store.close()

    store = SessionStore(database)
    resumed = open_chat(stems=None, reference=None, llm=None, resume=True, name=None, config=Config(), store=store)
    app = ChatApp(resumed.session, store=store, info=resumed.info)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        users = [str(w.render()) for w in app.query(".user")]
        assert users == ["overview", "what about the drums?"]
        assert len(app.query(ToolBlock)) == 3
        assert app.last_reply == before
        rows = panel_rows(app)
        assert rows["vocals"][-1] == "-4.0" and rows["drums"][-1] == "+3.0"  # the pending moves came back
        await say(pilot, app, "why?")
        assert "drums" in app.last_reply
    store.close()


@pytest.mark.anyio
async def test_export_errors_are_a_note_and_the_chat_goes_on(demo_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    store = SessionStore(tmp_path / "data" / "sessions.sqlite")
    opened = open_chat(stems=demo_dir / "version_a", reference=demo_dir / "version_b", llm=None, resume=False,
                       name="export", config=Config(), store=store)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    app = ChatApp(opened.session, store=store, info=opened.info)
    async with app.run_test(size=SIZE) as pilot:
        await say(pilot, app, f"/export {blocker}/chat.md")
        assert str(app.query(".error").last().render()) == (f"{blocker}/chat.md: cannot be created: {blocker} is a "
                                                            "file, not a folder")
        await say(pilot, app, f"/export {tmp_path}/chat.md")
        assert str(app.query(".confirm").last().render()) == f"wrote {tmp_path}/chat.md"
        await say(pilot, app, f"/export {tmp_path}/chat.md")
        assert str(app.query(".error").last().render()) == (f"{tmp_path}/chat.md: already exists; choose a new file "
                                                            "or pass --force to replace it")
        await say(pilot, app, f"/export {tmp_path}/chat.md --force")
        assert str(app.query(".confirm").last().render()) == f"wrote {tmp_path}/chat.md"
        await say(pilot, app, "overview")  # the chat goes on
        assert "vocals" in app.last_reply
    store.close()
    assert blocker.read_text() == "a file, not a folder"


def test_complete_slash() -> None:
    assert complete_slash("/ex") == ("/ex", ["/export", "/export-project"])
    assert complete_slash("/export-") == ("/export-project ", ["/export-project"])
    assert complete_slash("/pu") == ("/push ", ["/push"])
    assert complete_slash("/") [1][0] == "/load"
    assert complete_slash("hello") == ("hello", [])


@pytest.mark.parametrize("size", [SIZE, (80, 24)], ids=["130x40", "80x24"])
def test_main_screen_snapshot(demo_dir: Path, tmp_path: Path, snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = ChatApp(demo_session(demo_dir, tmp_path), greeting=demo_greeting())

    async def overview(pilot: Pilot) -> None:
        app.query_one(ChatInput).cursor_blink = False  # a blinking cursor would make the picture time-dependent
        await say(pilot, app, "overview")
        await pilot.pause(0.3)
        side, table = app.query_one("#side"), app.query_one(StemsPanel)
        assert side.size.width < size[0] / 2  # the chat keeps the larger part, even at 80 columns
        assert table.virtual_size.width <= side.size.width - 1  # and the stems table fits its panel

    assert snap_compare(app, terminal_size=size, run_before=overview)


@pytest.mark.anyio
async def test_bindings_have_ids_that_the_config_remaps(demo_dir: Path, tmp_path: Path) -> None:
    app = ChatApp(demo_session(demo_dir, tmp_path), keymap={"toggle_log": "f2", "copy_reply": "f3"})
    async with app.run_test(size=SIZE) as pilot:
        await say(pilot, app, "help")
        log = app.query_one("#log")
        await pilot.press("f2")
        assert log.has_class("shown")
        await pilot.press("ctrl+l")  # the old key no longer toggles it
        assert log.has_class("shown")
        await pilot.press("f3")
        assert app.clipboard == app.last_reply and app.last_reply.startswith("I can measure your stems")


@pytest.mark.anyio
async def test_measuring_shows_its_progress_in_the_hint_line(demo_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn that measures reports each segment from the turn's thread; the hint line says what is
    measured, how far, and (from the second step) the time left."""
    import faderwise.tools.analysis

    monkeypatch.setattr(faderwise.tools.analysis, "SEGMENT_BLOCKS", 2)  # the 30 s demo: 6 segments per version
    app = ChatApp(demo_session(demo_dir, tmp_path))
    shown: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        original = app.show_progress
        monkeypatch.setattr(app, "show_progress", lambda *a: (original(*a), shown.append(
            str(app.query_one("#hint", Static).render()))))
        await say(pilot, app, "overview")
        # A and B are measured side by side on two threads: one count over both
        assert [int(line.split("(")[1].split("/")[0]) for line in shown] == list(range(1, 13))
        assert shown[0].endswith(" measured (1/12); Esc cancels the turn")
        assert all(", about 0:" in line for line in shown[1:-1]) and shown[-1].endswith("(12/12); Esc cancels the turn")
        for version in "AB":  # six segments each (five of 5.9 s and 0.3 s), finishing in any order
            lines = [line for line in shown if line.startswith(f"measuring {version}: 5 stems, ")]
            assert len(lines) == 6 and lines[-1].startswith(f"measuring {version}: 5 stems, 0:30 of 0:30 measured")
        assert str(app.query_one("#hint", Static).render()) == ""  # cleared when the turn ends
