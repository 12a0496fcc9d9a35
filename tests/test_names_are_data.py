"""Names from a project, a file or a producer are data (issue 27): printed as they are on stdout and
stderr, in the chat and in its log, never read as Rich or Textual markup (``Gtr [/x]`` crashed
``faderwise analyze`` with a MarkupError; ``Video [chan 1]``, a name REAPER gives a video track,
printed as ``Video ``) nor as emoji codes (``:fire:``).

The song: a REAPER project in a folder called ``Song [v2] :fire:`` with four tracks, their stems
bounced beside it, and a reference folder of the same stems at other levels (the demo's Version B,
its guitar 2 dB up). No file name can hold a ``/``, so the bounce of ``Gtr [/x]`` is ``Gtr [_x].wav``,
which faderwise matches to the track by name (punctuation aside), as it does ``[bold]Vox[_bold].wav``.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf
from daw_projects import reaper_project_text
from langgraph.checkpoint.memory import InMemorySaver
from rich.console import Console
from test_installed import table_rows
from test_script_and_config import data  # noqa: F401  (an autouse fixture: own data folder, empty config)
from test_tui import say
from textual.widgets import Markdown, RichLog, Static

from faderwise.agent.llm import LLMSpec
from faderwise.agent.session import AgentSession
from faderwise.agent.tui import SLASH_COMMANDS, ChatApp, ChatInput, StemsPanel, ToolBlock
from faderwise.agent.workspace import Workspace
from faderwise.cli import _ProgressBar, main

PLUS_10_DB, MINUS_6_DB = 3.1622776601683795, 0.5011872336272722
# name, folder depth change, linear gain (fader), mute, solo
TRACKS = [("Gtr [/x]", 0, 1.0, 0, 0), ("Video [chan 1]", 0, PLUS_10_DB, 0, 0),
          ("[bold]Vox[/bold]", 0, MINUS_6_DB, 0, 0), ("Keys", 0, 1.0, 0, 0)]
DEMO_STEM_OF = {"Gtr [/x]": "guitar", "Video [chan 1]": "drums", "[bold]Vox[/bold]": "vocals", "Keys": "keys"}
MAPPING = [
    "  Gtr [/x] ← stems/Gtr [_x].wav (fader +0.0 dB)",
    "  Video [chan 1] ← stems/Video [chan 1].wav (fader +10.0 dB)",
    "  [bold]Vox[/bold] ← stems/[bold]Vox[_bold].wav (fader -6.0 dB)",
    "  Keys ← stems/Keys.wav (fader +0.0 dB)",
    "  Gtr [/x]: its volume automation plays back, so its fader's value is not what you hear at every moment",
]


@dataclass(frozen=True)
class Song:
    project: Path
    reference: Path

    def mapping(self) -> str:
        """What faderwise says on stderr when it opens the project."""
        return "\n".join([f"{self.project}: REAPER project, 4 stems (track ← stem file):", *MAPPING]) + "\n"


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Song:
    root = tmp_path_factory.mktemp("names")
    folder, reference = root / "Song [v2] :fire:", root / "reference"
    (folder / "stems").mkdir(parents=True)
    reference.mkdir()
    for track, stem in DEMO_STEM_OF.items():
        file = track.replace("/", "_") + ".wav"
        shutil.copyfile(demo_dir / "version_a" / f"{stem}.wav", folder / "stems" / file)
        audio, rate = sf.read(demo_dir / "version_b" / f"{stem}.wav", dtype="float32")
        sf.write(reference / file, audio * (10 ** (2 / 20) if stem == "guitar" else 1.0), rate, subtype="FLOAT")
    project = folder / "song.RPP"
    project.write_text(reaper_project_text(tracks=TRACKS, volume_envelope="Gtr [/x]"), encoding="utf-8")
    return Song(project, reference)


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide tables; the data folder and an empty config come from the imported autouse ``data``."""
    monkeypatch.setenv("COLUMNS", "200")  # a table row stays on one line


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "MarkupError" not in out + err
    return code, out, err




# -- the command line ------------------------------------------------------------------------------


def test_analyze_prints_every_name_and_path_as_it_is(song: Song, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["analyze", str(song.project)], capsys)
    assert code == 0
    assert err == song.mapping()
    title = " ".join(out[:out.index("┏")].split())  # the table's title, wrapped at the table's width
    assert title == f"{song.project}: 4 stems, 44100 Hz, 2 ch, 30.0 s"
    rows = table_rows(out)
    assert list(rows) == ["Gtr [_x]", "Video [chan 1]", "[bold]Vox[_bold]", "Keys", "mix"]
    assert rows["Video [chan 1]"][0] == "-24.5" and rows["[bold]Vox[_bold]"][0] == "-15.0"


def test_analyze_against_a_reference(song: Song, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["analyze", str(song.project), "--reference", str(song.reference)], capsys)
    assert code == 0
    assert err == song.mapping()
    assert [line.rstrip() for line in out.splitlines()[:2]] == [
        f"A  {song.project}: 4 stems, 44100 Hz, 2 ch, 30.0 s", f"B  {song.reference}: 4 stems, 44100 Hz, 2 ch, 30.0 s"]
    rows = table_rows(out)
    assert {name: cells[:3] for name, cells in rows.items()} == {
        "Gtr [_x]": ["-25.0", "-23.0", "-2.0"], "Video [chan 1]": ["-24.5", "-21.5", "-3.0"],
        "[bold]Vox[_bold]": ["-15.0", "-19.0", "+4.0"], "Keys": ["-26.0", "-26.0", "+0.0"],
        "mix": ["-15.4", "-17.2", "+1.7"]}


def test_advise_and_export_print_every_name_as_it_is(song: Song, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["advise", str(song.project), "--reference", str(song.reference), "--json"], capsys)
    assert code == 0
    assert err == song.mapping()
    advice = json.loads(out)
    assert {move["stem"]: move["delta_db"] for move in advice["moves"]} == {
        "[bold]Vox[_bold]": -4.0, "Video [chan 1]": 3.0, "Gtr [_x]": 2.0}
    advice_json = tmp_path / "advice [final].json"
    advice_json.write_text(out, encoding="utf-8")

    out_project = tmp_path / "moved [v3].RPP"
    code, out, err = run(["export", str(advice_json), "--project", str(song.project), "--out", str(out_project)],
                         capsys)
    assert code == 0
    assert out.splitlines() == [
        f"fader moves are relative: each fader moves by the advised dB from where it is now in {song.project}",
        "  [bold]Vox[/bold] (stem [bold]Vox[_bold]): -6.0 dB → -10.0 dB (move -4.0 dB)",
        "  Video [chan 1]: +10.0 dB → +12.0 dB (move +3.0 dB) (limited)",
        "  Gtr [/x] (stem Gtr [_x]): +0.0 dB → +2.0 dB (move +2.0 dB)",
        f"wrote {out_project}",
    ]
    assert err.splitlines() == [
        "warning: Video [chan 1]: +10.0 dB +3.0 dB would be +13.0 dB, past REAPER's +12 dB fader maximum: set to "
        "+12.0 dB, 1.0 dB short",
        "warning: Gtr [/x]: its volume automation plays back and overrides the fader; move the automation by +2.0 dB "
        "instead",
    ]
    assert "NAME \"Video [chan 1]\"" in out_project.read_text(encoding="utf-8")


def test_advice_as_text_prints_every_name_as_it_is(song: Song, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["advise", str(song.project), "--reference", str(song.reference)], capsys)
    assert code == 0
    assert err == song.mapping()
    assert out.startswith("Lower the [bold]Vox[_bold] by about 4 dB: in your mix this stem is 4.0 dB louder than in "
                          "the reference (-15.0 against -19.0 LUFS).")
    assert "Raise the Gtr [_x] by about 2 dB: " in out
    assert out.splitlines()[-3:] == [
        "  [bold]Vox[_bold]   -4.0 dB   (likely -4.1 to -3.9)",
        "  Video [chan 1]   +3.0 dB   (likely +2.9 to +3.1)",
        "  Gtr [_x]       +2.0 dB   (likely +1.9 to +2.1)",
    ]


def test_an_error_naming_a_stem_prints_it_as_it_is(song: Song, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["advise", str(song.project), "--reference", str(song.reference), "--stem", "Bass [/x]"],
                       capsys)
    assert code == 2
    assert err.splitlines()[-1] == (f"faderwise: error: {song.project}: has no stem 'Bass [/x]' (it has: Gtr [_x], "
                                    "Video [chan 1], [bold]Vox[_bold], Keys)")


def test_a_producers_words_in_a_scripted_run_print_as_they_are(song: Song, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "talk.yaml"
    script.write_text(f"stems: {json.dumps(str(song.project))}\nreference: {json.dumps(str(song.reference))}\n"
                      "llm: offline\nturns:\n  - user: \"overview of the [bold]mix\"\n    expect:\n"
                      "      mentions: [\"Video [chan 1]\", \"Gtr [/x]\"]\n", encoding="utf-8")
    code, out, _ = run(["run", str(script), "--out", str(tmp_path / "talk.jsonl")], capsys)
    assert code == 1  # the offline reply names the stem Gtr [_x], not the track Gtr [/x]
    assert [re.sub(r"\(\d+\.\d\d s\)", "(S)", line) for line in out.splitlines()] == [
        "FAIL turn 1 (S): overview of the [bold]mix",
        "     the reply does not mention 'Gtr [/x]'",
        "0 passed, 1 failed",
        f"wrote {tmp_path / 'talk.jsonl'}",
    ]


def test_the_progress_bar_shows_what_it_measures_as_it_is() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with _ProgressBar(console, enabled=True) as on_progress:
        assert on_progress is not None
        on_progress(1, 4, "A: Gtr [/x], Video [chan 1]")
        console.file.flush()
    assert "A: Gtr [/x], Video [chan 1]" in screen.getvalue()


# -- the chat --------------------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"




def shown(widget: Static) -> str:
    """What a widget shows (its text, styles aside)."""
    return str(widget.render())


def empty_chat(tmp_path: Path) -> ChatApp:
    session = AgentSession(workspace=Workspace(output_dir=tmp_path / "out"), llm=LLMSpec("offline"),
                           checkpointer=InMemorySaver(), thread_id="t")
    return ChatApp(session)


@pytest.mark.anyio
async def test_the_chat_shows_every_name_as_it_is(song: Song, tmp_path: Path) -> None:
    app = empty_chat(tmp_path)
    async with app.run_test(size=(130, 40)) as pilot:
        await say(pilot, app, f'/load "{song.project}"')
        await say(pilot, app, f'/reference "{song.reference}"')
        await say(pilot, app, "overview")

        load = app.query(ToolBlock).first()
        assert shown(load.query_one("CollapsibleTitle", Static)) == f"▶ ✓ load_stems(path={str(song.project)!r})"
        mapping = "; ".join(line.strip() for line in MAPPING)
        assert f"REAPER tracks (track ← stem file): {mapping}." in shown(load.result)
        replies = [" ".join(shown(block) for block in reply.query("MarkdownParagraph").results(Static))
                   for reply in app.query(Markdown)]
        assert mapping in replies[0]
        assert replies[0].startswith(f"Loaded Version A: 4 stems from {song.project}: Gtr [_x], Video [chan 1], "
                                     "[bold]Vox[_bold], Keys (30.0 s, 44100 Hz, 2 ch).")
        assert ("Raise the Video [chan 1] by about 3 dB: in your mix this stem is 3.0 dB quieter than in the reference "
                "(-24.5 against -21.5 LUFS).") in replies[-1]

        await pilot.press("ctrl+l")  # the log: each tool's result, as it came
        await pilot.pause(0.2)
        logged = " ".join(" ".join(line.text.split()) for line in app.query_one("#log", RichLog).lines)
        assert f"done load_stems: Loaded Version A: 4 stems from {song.project}: " in logged
        assert " ".join(mapping.split()) in logged

        panel = app.query_one(StemsPanel)
        lines = [" ".join(panel.render_line(y).text.split()) for y in range(1, 1 + panel.row_count)]
        assert lines == ["Gtr [_x] -25.0 -23.0 -2.0 +2.0", "Video [chan 1] -24.5 -21.5 -3.0 +3.0",
                         "[bold]Vox[_bold] -15.0 -19.0 +4.0 -4.0", "Keys -26.0 -26.0 +0.0 ·"]


@pytest.mark.anyio
async def test_a_producers_message_with_markup_is_shown_as_typed(song: Song, tmp_path: Path) -> None:
    app = empty_chat(tmp_path)
    async with app.run_test(size=(130, 40)) as pilot:
        await say(pilot, app, "is the [bold]Vox[/bold] too loud? and Gtr [/x]")
        assert [shown(widget) for widget in app.query(".user").results(Static)] == [
            "is the [bold]Vox[/bold] too loud? and Gtr [/x]"]
        for block in app.query(ToolBlock):  # whatever the turn ran: its call is shown as it was made
            assert shown(block.query_one("CollapsibleTitle", Static)).endswith(block.call_title)

        hint = app.query_one("#hint", Static)
        app.show_progress(1, 4, "A: Gtr [/x], Video [chan 1]")
        assert shown(hint) == "measuring A: Gtr [/x], Video [chan 1] (1/4); Esc cancels the turn"
        app.query_one(ChatInput).text = "/pu"
        await pilot.press("tab")
        assert shown(hint) == SLASH_COMMANDS["/push"] == ("/push reaper|ardour [PORT]: move the running DAW's faders "
                                                          "over OSC (shows them, asks first)")
