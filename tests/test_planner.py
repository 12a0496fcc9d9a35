"""The offline planner: what it understands, and a whole conversation on the demo song."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from faderwise.advisor.parse import parse_moves
from faderwise.advisor.stem_names import mentioned_stems
from faderwise.agent.llm import LLMSpec
from faderwise.agent.planner import FALLBACK_TEXT, HELP_TEXT, classify
from faderwise.agent.script import collect
from faderwise.agent.session import AgentSession, Reply
from faderwise.agent.workspace import Workspace

DEMO_STEMS = ["bass", "drums", "guitar", "keys", "vocals"]


@pytest.mark.parametrize(("text", "kind", "calls"), [
    ("Give me an overview", "overview", [("compare_to_reference", {}), ("advise", {})]),
    ("Which stem is furthest off compared to the reference?", "which", [("advise", {})]),
    ("what's too loud?", "which", [("advise", {})]),
    ("what about the bass?", "stem", [("explain_stem", {"stem": "bass"})]),
    ("and the kick?", "stem", [("explain_stem", {"stem": "drums"})]),
    ("why?", "why", [("explain_stem", {})]),
    ("why is the vox so loud", "why", [("explain_stem", {"stem": "vocals"})]),
    ("how much exactly?", "how_much", [("explain_stem", {})]),
    ("apply", "apply", [("apply_moves", {})]),
    ("apply the vocal move only", "apply", [("apply_moves", {"stems": ["vocals"]})]),
    ("compare after", "compare", [("compare_to_reference", {})]),
    ("undo that", "undo", [("undo_apply", {})]),
    ("forget the drums move", "forget", [("forget_move", {"stem": "drums"})]),
    ("leave the guitar alone", "forget", [("forget_move", {"stem": "guitar"})]),
    ("plot", "plot", [("plot", {"kind": "levels"})]),
    ("plot the loudness over time", "plot", [("plot", {"kind": "loudness"})]),
    ("how loud is the vocal?", "measure", [("measure", {"stem": "vocals"})]),
    ("use the single-mix advisor", "overview", [("advise", {"advisor": "single-mix"})]),
    ("bundle the vocals", "bundle", [("make_ab_bundle", {"stem": "vocals"})]),
    ("list stems", "list", [("list_stems", {})]),
    ("export to reaper", "export", [("export_project", {})]),
    ("export into '/tmp/my song/song.RPP'", "export", [("export_project", {"project": "/tmp/my song/song.RPP"})]),
    ("push to ardour port 3900", "push", [("push_faders", {"daw": "ardour", "port": 3900})]),
    ("send the faders to reaper listen 9001", "push", [("push_faders", {"daw": "reaper", "listen_port": 9001})]),
    ("push the moves to the daw", "which-daw", []),
    ("push the vocals up", "stem", [("explain_stem", {"stem": "vocals"})]),  # slang for raise, not the DAW
    ("undo the push to reaper", "undo_push", [("undo_push", {"daw": "reaper"})]),
    ("load ~/songs/take2", "load", [("load_stems", {"path": "~/songs/take2"})]),
    ('reference "/mixes/final mix"', "reference", [("set_reference", {"path": "/mixes/final mix"})]),
    ("is my mix balanced?", "overview", [("compare_to_reference", {}), ("advise", {})]),
    ("what should I change?", "overview", [("compare_to_reference", {}), ("advise", {})]),
    ("should the vocals be louder?", "stem", [("explain_stem", {"stem": "vocals"})]),
    ("help", "help", []),
    ("what is the meaning of life", "unknown", []),
])
def test_classify(text: str, kind: str, calls: list) -> None:
    intent = classify(text, DEMO_STEMS, has_reference=True)
    assert intent.kind == kind
    assert [(name, args) for name, args in intent.calls] == calls


def test_overview_without_reference_only_advises() -> None:
    assert classify("overview", DEMO_STEMS, has_reference=False).calls == (("advise", {}),)


@pytest.mark.parametrize(("text", "stems", "found"), [
    ("the vox and the kick", DEMO_STEMS, ["vocals", "drums"]),
    ("what about the vocls?", DEMO_STEMS, ["vocals"]),  # misspelt
    ("and the guitars", ["gtr_L", "gtr_R", "vocals"], []),  # two guitars: "guitars" is ambiguous
    ("the gtr_l please", ["gtr_L", "gtr_R", "vocals"], ["gtr_L"]),
    ("the kick", ["kick", "snare", "vocals"], ["kick"]),  # a kick stem is the kick, not "drums"
    ("the piano", DEMO_STEMS, ["keys"]),
])
def test_mentioned_stems(text: str, stems: list[str], found: list[str]) -> None:
    assert mentioned_stems(text, stems) == found


@pytest.fixture
def session(demo_session: AgentSession) -> AgentSession:
    return demo_session


def reply_of(session: AgentSession, text: str) -> tuple[str, list]:
    reply, calls, _, error = collect(list(session.send(text)))
    assert error is None
    return reply, calls


def test_six_turn_conversation_on_the_demo(session: AgentSession) -> None:
    """overview → which stem is off → what about the bass → why → apply → compare after; the demo's
    A is B with vocals +4 dB and drums −3 dB, so the moves are vocals −4, drums +3."""
    stems = DEMO_STEMS
    overview, calls = reply_of(session, "Give me an overview of my mix")
    assert [c["name"] for c in calls] == ["compare_to_reference", "advise"]
    moves = {m.stem: m.delta_db for m in parse_moves(overview, stems)}
    assert moves == pytest.approx({"vocals": -4.0, "drums": 3.0, "bass": 0.0, "guitar": 0.0, "keys": 0.0}, abs=0.5)
    assert "Leave the bass, the guitar and the keys as they are" in overview

    which, _ = reply_of(session, "Which stem is furthest off compared to the reference?")
    assert which.startswith("The **vocals** are furthest off. Lower the vocals by about 4 dB")

    bass, calls = reply_of(session, "what about the bass?")
    assert calls[0]["args"] == {"stem": "bass"}
    assert bass.startswith("Leave the bass as it is: it is within 0.5 dB of where it should be (measured move +0.0 dB).")
    assert parse_moves(bass, stems) == [] or all(abs(m.delta_db) < 0.5 for m in parse_moves(bass, stems))

    why, calls = reply_of(session, "why?")
    assert calls[0]["args"] == {} and "the bass" in why  # "why?" is about the stem under discussion

    drums, _ = reply_of(session, "and the drums?")
    assert drums.startswith("Raise the drums by about 3 dB: in your mix this stem is 3.0 dB quieter than in the reference")
    assert "most buried around" in drums and "Confidence: high" in drums

    how_much, _ = reply_of(session, "how much exactly?")
    assert how_much.startswith("Raise the drums by 3.0 dB; on the fader, about 3 dB.")

    question, _ = reply_of(session, "apply")
    assert question == "Apply vocals -4.0 dB, drums +3.0 dB and render to a new folder? (yes/no)"
    applied, calls = reply_of(session, "yes")
    assert calls[0]["name"] == "apply_moves" and applied.startswith("Applied vocals -4.0 dB, drums +3.0 dB; wrote ")

    after, _ = reply_of(session, "compare after")
    assert after.startswith("After applying vocals -4.0 dB, drums +3.0 dB: every stem is within 0.5 LU of the reference")
    assert "| vocals | -19.0 | -19.0 | +0.0 |" in after


def test_measurements_are_cached_within_the_session(session: AgentSession) -> None:
    for text in ("overview", "which stem is too loud?", "what about the keys?", "why?", "measure the vocals",
                 "compare", "plot"):
        reply_of(session, text)
    assert session.workspace.measure_count == 2  # A once, the aligned B once
    reply_of(session, "apply")
    reply_of(session, "yes")
    reply_of(session, "compare")
    assert session.workspace.measure_count == 3  # the applied mix is new audio; B is reused
    reply_of(session, "undo")
    reply_of(session, "overview")
    assert session.workspace.measure_count == 3  # back to the first A: cached


def test_help_fallback_and_errors_are_replies(demo_dir: Path, tmp_path: Path) -> None:
    empty = AgentSession(workspace=Workspace(output_dir=tmp_path), llm=LLMSpec("offline"),
                         checkpointer=InMemorySaver(), thread_id="empty")
    assert list(empty.send("help"))[-1] == Reply(HELP_TEXT)
    joke = list(empty.send("tell me a joke"))[-1]
    assert isinstance(joke, Reply) and joke.text.startswith(FALLBACK_TEXT + " The closest things I can do: ")
    reply, _, _, _ = collect(list(empty.send("overview")))
    assert reply == "I couldn't do that: no stems loaded yet: load a folder of stems first (/load FOLDER)"
    reply, _, _, _ = collect(list(empty.send(f"load {demo_dir / 'version_a'}")))
    assert reply.startswith(f"Loaded Version A: 5 stems from {demo_dir / 'version_a'}: bass, drums, guitar, keys, vocals")
    reply, _, _, _ = collect(list(empty.send("overview")))
    # Without a reference the single-mix advisor moves only stems far outside what real mixes do; the
    # demo's 4 dB-hot vocal is not one of them.
    assert reply.startswith("Your balance already matches the range real mixes give each kind of stem (no reference "
                            "used): no fader needs to move.")


def test_replies_stream_as_tokens(session: AgentSession) -> None:
    events = list(session.send("help"))
    tokens = "".join(e.text for e in events if type(e).__name__ == "Token")
    assert tokens == HELP_TEXT and len([e for e in events if type(e).__name__ == "Token"]) > 10


def test_why_after_which_asks_about_the_stem_the_answer_named(session: AgentSession) -> None:
    quiet, _ = reply_of(session, "what's too quiet?")
    assert quiet.startswith("The **drums** are too quiet.")
    why, calls = reply_of(session, "why?")
    assert calls[0]["args"] == {"stem": "drums"}
    lines = why.splitlines()
    assert lines[:2] == ["How I know the drums should move +3.0 dB:",
                         "- loudness (ITU-R BS.1770, whole song): -24.5 LUFS in your mix, -21.5 in the reference, "
                         "-3.0 LU apart"]
    assert lines[-1].startswith("- how sure (high): ") and lines[-1].endswith("put the move between +2.9 and +3.1 dB")
    assert sum(line.startswith("- ") for line in lines) >= 5  # more than the headline said
    assert quiet.split("\n")[0] not in why
    again, _ = reply_of(session, "why?")
    assert again == ("That is everything I measured about the drums (above). Ask about another stem, or "
                     "**compare** to see every stem of your mix against the reference.")
    loud, _ = reply_of(session, "what's too loud?")
    assert loud.startswith("The **vocals** are too loud.")
    how_much, _ = reply_of(session, "how much exactly?")
    assert how_much.startswith("Lower the vocals by 4.0 dB; on the fader, about 4 dB.")


def test_another_song_as_reference_compares_balance(musdb_sample: Path, stempeg_sample: Path,
                                                    tmp_path: Path) -> None:
    """Real MUSDB18 clips: 80s Rock against Falcon 69 as a reference of other material."""
    workspace = Workspace(output_dir=tmp_path)
    workspace.load_pair(musdb_sample, stempeg_sample)
    session = AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(),
                           thread_id="other-song")
    overview, _ = reply_of(session, "overview")
    moves = {m.stem: m.delta_db for m in parse_moves(overview, ["drums", "bass", "other", "vocals"])}
    assert moves == pytest.approx({"bass": 3.5, "vocals": -3.0, "drums": 2.0, "other": 0.0}, abs=0.5)
    assert ("- Raise the bass by about 3.5 dB: it sits at -8.9 LU against your mix, where the reference's bass "
            "sits at -5.2 LU against its own.") in overview
    which, _ = reply_of(session, "which stem is furthest off?")
    assert which.startswith("The **bass** is furthest off.")
