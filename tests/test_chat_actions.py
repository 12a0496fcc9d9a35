"""The chat's actions producers ask for, end to end on the demo song with the offline planner: what-ifs,
the producer's own move, except/only lists, the mix's own level, stem groups, a judge's second opinion,
part words and missing instruments, small talk, and slash commands run as they were read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile
from langgraph.checkpoint.memory import InMemorySaver

from agent_fakes import ScriptedChatModel
from faderwise.agent.llm import LLMSpec, parse_llm_spec
from faderwise.agent.script import collect
from faderwise.agent.session import AgentSession
from faderwise.agent.understand import command_request
from faderwise.agent.workspace import Workspace
from faderwise.tools.stems import db_to_gain


@pytest.fixture
def session(demo_session: AgentSession) -> AgentSession:
    return demo_session


def turn(session: AgentSession, text: str) -> tuple[str, list[dict], str | None]:
    reply, calls, confirm, error = collect(list(session.send(text)))
    assert error is None, error
    return reply, calls, confirm.question if confirm is not None else None


def answer(session: AgentSession, yes: bool) -> tuple[str, list[dict]]:
    reply, calls, _, error = collect(list(session.confirm(yes)))
    assert error is None, error
    return reply, calls


def lufs(audio: np.ndarray, rate: int) -> float:
    """An independent meter: pyloudnorm's BS.1770 integrated loudness of (samples, channels) audio."""
    return float(pyloudnorm.Meter(rate).integrated_loudness(audio))


def test_a_what_if_says_where_the_stem_would_sit_and_changes_nothing(session: AgentSession, demo_dir: Path) -> None:
    before = session.workspace.advise().gains_db()
    reply, calls, question = turn(session, "what if I bring the guitar up 2 dB?")
    assert question is None and [(c["name"], c["args"]) for c in calls] == [("what_if", {"stem": "guitar",
                                                                                        "gain_db": 2.0})]
    audio, rate = soundfile.read(demo_dir / "version_a" / "guitar.wav", dtype="float32")
    reference, _ = soundfile.read(demo_dir / "version_b" / "guitar.wav", dtype="float32")
    found = session.workspace.what_if({"guitar": 2.0})["stems"]["guitar"]
    assert found["level_after_lufs"] == pytest.approx(lufs(audio * db_to_gain(2.0), rate), abs=0.05)
    assert found["level_b_lufs"] == pytest.approx(lufs(reference, rate), abs=0.05)
    assert reply.startswith(f"With the guitar +2.0 dB: {found['level_after_lufs']:.1f} LUFS (now "
                            f"{found['level_a_lufs']:.1f}); {found['after_minus_b_lu']:+.1f} LU against the reference's "
                            f"{found['level_b_lufs']:.1f} LUFS; {found['to_backing_after_lu']:+.1f} LU against its backing")
    assert "the advice for it is to leave it" in reply and "the mix would peak at" in reply
    assert reply.endswith('Nothing was changed. Say **apply** for the advised moves, or set your own ("make it '
                          '+2.0 dB instead").')
    assert session.workspace.advice is not None and session.workspace.advice.gains_db() == before


def test_the_producers_own_move_replaces_the_advised_one_and_is_what_apply_renders(
        session: AgentSession, demo_dir: Path) -> None:
    turn(session, "overview")
    reply, calls, question = turn(session, "only take the vocals down 2 instead of 4")
    assert [(c["name"], c["args"]) for c in calls] == [("set_move", {"stem": "vocals", "delta_db": -2.0})]
    assert question == ("Set the vocals move to -2.0 dB (instead of the advised -4.0 dB), so apply renders -2.0 dB on "
                        "the vocals? (yes/no)")
    said, _ = answer(session, True)
    assert said.startswith("The vocals move is now -2.0 dB (your move; it was the advised -4.0 dB). Pending moves: "
                           "drums +3.0 dB")
    _, _, question = turn(session, "apply")
    assert question == "Apply drums +3.0 dB, vocals -2.0 dB and render to a new folder? (yes/no)"
    answer(session, True)
    folder = session.workspace.applied[-1].folder
    original, _ = soundfile.read(demo_dir / "version_a" / "vocals.wav", dtype="float64")
    rendered, _ = soundfile.read(folder / "stems" / "vocals.wav", dtype="float64")
    loudest = np.argmax(np.abs(original))
    assert rendered.flat[loudest] / original.flat[loudest] == pytest.approx(db_to_gain(-2.0), rel=1e-3)


def test_a_declined_own_move_keeps_the_advice(session: AgentSession) -> None:
    turn(session, "overview")
    turn(session, "make the drums +1.5 instead")
    reply, _ = answer(session, False)
    assert reply == "Not changed: the producer did not confirm; the drums keeps the advised +3.0 dB."
    assert session.workspace.advice is not None and session.workspace.advice.gains_db()["drums"] == pytest.approx(3.0,
                                                                                                                abs=0.1)


def test_apply_all_but_the_drums_leaves_the_drums_alone(session: AgentSession, demo_dir: Path) -> None:
    turn(session, "overview")
    _, calls, question = turn(session, "apply all of it except the drums")
    assert calls[0]["args"] == {"except_stems": ["drums"]}
    assert question == "Apply vocals -4.0 dB (leaving the drums as they are) and render to a new folder? (yes/no)"
    answer(session, True)
    assert session.workspace.applied[-1].gains_db == {"vocals": pytest.approx(-4.0, abs=0.1)}
    folder = session.workspace.applied[-1].folder
    drums_in, _ = soundfile.read(demo_dir / "version_a" / "drums.wav", dtype="float64")
    drums_out, _ = soundfile.read(folder / "stems" / "drums.wav", dtype="float64")
    assert np.max(np.abs(drums_out - drums_in)) < 1e-6


def test_forget_all_but_one_says_what_it_drops_and_asks(session: AgentSession) -> None:
    turn(session, "overview")
    _, calls, question = turn(session, "drop all moves except the vocal one")
    assert calls[0]["args"] == {"except_stems": ["vocals"]}
    assert question is not None and question.startswith("Drop drums +3.0 dB") and "keeping vocals -4.0 dB" in question
    assert session.workspace.advice is not None and len(session.workspace.advice.moves) == 2  # nothing yet
    reply, _ = answer(session, True)
    assert reply.startswith("Dropped the drums move. Pending moves: vocals -4.0 dB")
    assert [m.stem for m in session.workspace.advice.moves] == ["vocals"]


def test_the_mix_level_answers(session: AgentSession) -> None:
    measured, _, _ = turn(session, "how loud is the whole mix?")
    artifact = session.workspace.analysis_a().mix
    true_peak = session.workspace.true_peaks([])["mix"]
    assert measured == (f"Your mix: {artifact.integrated_lufs:.1f} LUFS integrated (ITU-R BS.1770), true peak "
                        f"{true_peak:.1f} dBTP, sample peak {artifact.sample_peak_dbfs:.1f} dBFS.")
    headroom, _, _ = turn(session, "how much headroom is left?")
    assert headroom.endswith(f"Headroom: {-true_peak:+.1f} dB below 0 dBTP, {-1.0 - true_peak:+.1f} dB below the -1 "
                             "dBTP ceiling streaming services ask for.")
    clipping, _, _ = turn(session, "is anything clipping?")
    assert clipping.endswith("Nothing clips: no stem and not the mix reaches full scale.")
    overall, calls, _ = turn(session, "is my mix hotter than the reference?")
    difference = session.workspace.comparison().mix_diff_lu
    assert [c["name"] for c in calls] == ["compare_to_reference"]
    assert overall.startswith(f"Your mix is louder than the reference overall: {difference:+.1f} LU")


def test_a_mix_that_clips_is_said_to(tmp_path: Path, demo_dir: Path) -> None:
    hot = tmp_path / "hot"
    hot.mkdir()
    for stem in ("vocals", "drums", "bass"):
        audio, rate = soundfile.read(demo_dir / "version_a" / f"{stem}.wav", dtype="float32")
        soundfile.write(hot / f"{stem}.wav", audio * db_to_gain(18.0), rate, subtype="FLOAT")
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(hot)
    session = AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="h")
    reply, _, _ = turn(session, "is anything clipping?")
    assert " Yes: " in reply and "clip" in reply.split(" Yes: ")[1]


def test_a_group_is_measured_as_one_sum(session: AgentSession, demo_dir: Path) -> None:
    reply, calls, _ = turn(session, "drums and bass together")
    assert [(c["name"], c["args"]) for c in calls] == [("measure_group", {"stems": ["bass", "drums"]})]
    summed = {}
    for version in ("version_a", "version_b"):
        drums, rate = soundfile.read(demo_dir / version / "drums.wav", dtype="float64")
        bass, _ = soundfile.read(demo_dir / version / "bass.wav", dtype="float64")
        summed[version] = lufs(drums + bass, rate)
    group = session.workspace.group_levels(["bass", "drums"])
    assert group["a_lufs"] == pytest.approx(summed["version_a"], abs=0.05)  # against an independent meter
    assert group["b_lufs"] == pytest.approx(summed["version_b"], abs=0.05)
    assert reply.startswith(f"bass + drums summed: {group['a_lufs']:.1f} LUFS in your mix")
    assert f"in the reference {group['b_lufs']:.1f} LUFS" in reply
    instrumental, calls, _ = turn(session, "everything but the vocals as one")
    assert sorted(calls[0]["args"]["stems"]) == ["bass", "drums", "guitar", "keys"]


def test_a_second_opinion_scores_every_stem(session: AgentSession) -> None:
    turn(session, "overview")
    reply, calls, _ = turn(session, "second opinion?")
    assert [c["name"] for c in calls] == ["second_opinion"]
    first, *lines = reply.split("\n")
    assert first.startswith("Second opinion from the rubric judge on the measured advice: mean correctness 5.0/5")
    assert sorted(line.split(":")[0] for line in lines) == ["- bass", "- drums", "- guitar", "- keys", "- vocals"]


def test_part_words_are_said_back_and_a_missing_instrument_is_said_so(session: AgentSession) -> None:
    kick, calls, _ = turn(session, "the kick is too loud")
    assert calls[0]["args"] == {"stem": "drums"}
    assert kick.startswith("The kick is part of the drums stem. By the measurements the drums are not too loud. "
                           "Raise the drums by about 3 dB")
    strings, calls, _ = turn(session, "what about the strings?")
    assert calls == [] and strings == ("No stem of this session holds the strings (it has: bass, drums, guitar, keys, "
                                       "vocals), so I can't say anything about it.")


def test_small_talk_and_questions_back(session: AgentSession) -> None:
    assert turn(session, "hey")[0] == "Hi! Ask **overview** for the moves, or **help** for what I can do."
    assert turn(session, "cheers!")[0] == "You're welcome. Say **apply** when you're ready, or ask about any stem."
    vague, calls, _ = turn(session, "turn it down")
    assert calls == [] and vague.startswith("I'm not sure what you mean. Closest things I can do: ")
    assert vague.endswith(". Which one, and for which stem?")


def test_a_slash_command_runs_as_read_even_with_a_language_model(demo_dir: Path, tmp_path: Path) -> None:
    """``/apply --except drums`` is a request already: the planner runs it; the model is never asked."""
    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    workspace.set_reference(demo_dir / "version_b")
    workspace.advise()
    model = ScriptedChatModel(responses=[])  # any call of it fails the test
    session = AgentSession(workspace=workspace, llm=parse_llm_spec("openai:fake,mode=native"),
                           checkpointer=InMemorySaver(), thread_id="s", model=model)
    request = command_request("/apply", ["--except", "drums"], workspace.version_a.stems.names)
    _, calls, confirm, error = collect(list(session.send("/apply --except drums", request=request)))
    assert error is None and confirm is not None
    assert confirm.question == "Apply vocals -4.0 dB (leaving the drums as they are) and render to a new folder? (yes/no)"
    assert [c["name"] for c in calls] == ["apply_moves"] and model.seen == []


def test_a_local_model_can_choose_the_request_under_a_grammar(demo_dir: Path, tmp_path: Path) -> None:
    """``understand=model``: the model's schema-held JSON decides what the message asks (here one the offline
    reader cannot read); a reply the schema does not hold falls back to the offline reader."""
    from langchain_core.messages import AIMessage

    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    workspace.set_reference(demo_dir / "version_b")
    choice = ('{"intent": "what_if", "stems": ["guitar"], "db": 2, "except_stems": [], "n": null, "detail": null, '
              '"path": null}')
    model = ScriptedChatModel(responses=[AIMessage(choice), AIMessage("Here is what that change would do."),
                                         AIMessage("not json at all"), AIMessage("That is the guitar.")])
    # each message is asked once (four answers for two turns): a failed choice is not asked again
    session = AgentSession(workspace=workspace, llm=parse_llm_spec("openai:fake,mode=routed,understand=model"),
                           checkpointer=InMemorySaver(), thread_id="m", model=model)
    _, calls, _, error = collect(list(session.send("gimme the gtr scenario, plus two")))
    assert error is None and [(c["name"], c["args"]) for c in calls] == [("what_if", {"stem": "guitar",
                                                                                     "gain_db": 2.0})]
    asked = model.seen[0]
    assert asked[0].content.startswith("You read one message from a music producer")
    _, calls, _, error = collect(list(session.send("what about the guitar?")))
    assert error is None and [(c["name"], c["args"]) for c in calls] == [("explain_stem", {"stem": "guitar"})]
    assert len(model.seen) == 4


def test_understand_model_needs_a_server_with_a_grammar() -> None:
    from faderwise.agent.llm import LLMSpecError

    with pytest.raises(LLMSpecError, match=r"understand=model in 'anthropic:claude,understand=model': needs a server"):
        parse_llm_spec("anthropic:claude,understand=model")
    assert parse_llm_spec("ollama:qwen,understand=model").grammar_dialect() == "ollama"


def test_a_judge_model_that_gives_no_verdict_leaves_the_rubrics(demo_session: AgentSession) -> None:
    from langchain_core.messages import AIMessage

    from faderwise.advisor.judge import LLMJudge
    from faderwise.agent.tools import make_tools

    workspace = demo_session.workspace
    workspace.advise()
    workspace.judge = LLMJudge(ScriptedChatModel(responses=[AIMessage("no idea")] * 40), name="ollama:tiny")
    second_opinion = {tool.name: tool for tool in make_tools(workspace)}["second_opinion"]
    with workspace.request("second_opinion"):
        content, artifact = second_opinion.func()
    lines = content.split("\n")
    assert lines[0] == "Second opinion from the ollama:tiny judge on the measured advice: no verdict counts."
    assert lines[6].startswith("Second opinion from the rubric judge on the measured advice: mean correctness 5.0/5")
    assert set(artifact["failed"]) == {"bass", "drums", "guitar", "keys", "vocals"} and artifact["rubric"]["judge"] == "rubric"


def test_moves_beyond_a_fader_are_refused(demo_session: AgentSession) -> None:
    from faderwise.tools.errors import StemSetError

    workspace = demo_session.workspace
    with pytest.raises(StemSetError, match=r"^\+40\.0 dB is beyond the ±24 dB a fader move can mean$"):
        workspace.what_if({"guitar": 40.0})
    with pytest.raises(StemSetError, match=r"^-30\.0 dB is beyond the ±24 dB a fader move can mean$"):
        workspace.set_move("vocals", -30.0)
