"""The judges' core in the advisor layer (faderwise.advisor.judge): the rubric's grades of hand-written
explanations, the chat's second opinion on advice built in code (against the measured moves, and
without a reference), an LLM judge whose verdict contradicts the rubric, and the layering: the core
imports neither the agent nor the evaluation, and the evaluation's names are the core's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from langchain_core.messages import AIMessage

from agent_fakes import ScriptedChatModel
from faderwise.advisor.explain import (
    backing_sentence,
    confidence_sentence,
    instruction,
    join,
    leave_sentence,
    level_clause,
    master_sentence,
)
from faderwise.advisor.judge import (
    NO_REFERENCE,
    JudgeCase,
    LLMJudge,
    RubricJudge,
    SecondOpinion,
    Verdict,
    second_opinion,
    stem_explanation,
)
from faderwise.advisor.model import Advice, GainMove

STEMS = ("vocals", "drums", "bass")


def vocals_case(explanation: str, truth: float | None = -4.0) -> JudgeCase:
    return JudgeCase(item="song-p00-vocals", target="vocals", stems=STEMS, true_move_db=truth,
                     facts={"target_a_minus_b_db": 4.0}, explanation=explanation)


# -- the rubric -----------------------------------------------------------------------------------


def test_the_rubric_grades_a_correct_a_wrong_an_over_moved_and_an_eq_explanation() -> None:
    judge = RubricJudge()
    correct = judge.judge(vocals_case("Lower the vocals by about 4 dB: they sit at +2.0 LU against the backing, "
                                      "-2.0 LU in the reference."))
    assert correct.scores == {"correctness": 5, "specificity": 3, "safety": 5}
    assert correct.rationales == {"correctness": "right direction, 0.0 dB from the truth (-4.0 stated, -4.0 true)",
                                  "specificity": "cites measured level, comparison with B", "safety": "gain only"}

    wrong = judge.judge(vocals_case("Raise the vocals by about 4 dB."))
    assert wrong.scores == {"correctness": 1, "specificity": 1, "safety": 5}
    assert wrong.rationales["correctness"] == "wrong direction: +4.0 dB stated, -4.0 dB true"

    over = judge.judge(vocals_case("Lower the vocals by about 10 dB."))
    assert over.scores["correctness"] == 2
    assert over.rationales["correctness"] == "right direction, 6.0 dB from the truth (-10.0 stated, -4.0 true)"

    eq = judge.judge(vocals_case("Lower the vocals by about 4 dB. Then cut them at 300 Hz with an EQ."))
    assert eq.scores == {"correctness": 5, "specificity": 2, "safety": 2}
    assert (eq.rationales["specificity"], eq.rationales["safety"]) == ("cites frequency band", "advises EQ")


def test_without_a_true_move_correctness_is_not_scored_and_says_why() -> None:
    verdict = RubricJudge().judge(vocals_case("Lower the vocals by about 4 dB.", truth=None))
    assert verdict.scores == {"specificity": 1, "safety": 5}
    assert verdict.rationales["correctness"] == NO_REFERENCE == "no reference to check against"
    assert verdict.counted and Verdict.from_json(verdict.to_json()) == verdict


# -- the second opinion ---------------------------------------------------------------------------

VOCALS = {"level_a_lufs": -15.0, "level_b_lufs": -19.0, "stem_to_backing_a_lu": 2.0, "stem_to_backing_b_lu": -2.0,
          "move_db": -4.0, "status": "measured"}
DRUMS = {"move_db": 3.0, "status": "measured"}
BASS = {"move_db": 0.2, "status": "measured"}
TRUTH = {"vocals": -4.0, "drums": 1.0, "bass": 0.0}


def advice() -> Advice:
    """Advice as the measured advisor words it: vocals −4 dB, drums +3 dB, the bass left, and a
    master sentence (which belongs to no stem)."""
    text = join([
        instruction("vocals", -4.0) + level_clause(4.0, VOCALS), backing_sentence(VOCALS),
        confidence_sentence(-4.1, -3.9),
        instruction("drums", 3.0) + level_clause(-3.0, DRUMS), confidence_sentence(2.5, 3.5),
        leave_sentence(["bass"], "each is within 0.5 dB of the reference"), master_sentence(1.0),
    ])
    return Advice(advisor="measured", moves=(GainMove("vocals", -4.0, -4.1, -3.9), GainMove("drums", 3.0, 2.5, 3.5)),
                  text=text, evidence={"stems": {"vocals": VOCALS, "drums": DRUMS, "bass": BASS}},
                  global_offset_db=1.0)


def test_each_stem_is_judged_on_what_the_advice_says_of_it() -> None:
    given = advice()
    assert stem_explanation(given, "vocals", STEMS) == (
        "Lower the vocals by about 4 dB: in your mix this stem is 4.0 dB louder than in the reference (-15.0 against "
        "-19.0 LUFS). Against its backing it sits at +2.0 LU in your mix and -2.0 LU in the reference. Confidence: "
        "high (-4.1 to -3.9 dB).")
    assert stem_explanation(given, "drums", STEMS) == ("Raise the drums by about 3 dB: in your mix this stem is 3.0 dB "
                                                       "quieter than in the reference. Confidence: medium (+2.5 to "
                                                       "+3.5 dB).")
    # the master sentence after it is not the bass's
    assert stem_explanation(given, "bass", STEMS) == "Leave the bass as it is: each is within 0.5 dB of the reference."
    # text that says nothing of a stem: the move the advice holds, or "leave it"
    silent = Advice(advisor="single-mix", moves=(GainMove.exact("drums", 2.6),), text="")
    assert stem_explanation(silent, "drums", STEMS) == "Raise the drums by about 2.5 dB."
    assert stem_explanation(silent, "bass", STEMS) == "Leave the bass as it is: the advice holds no move for this stem."


def test_second_opinion_against_the_measured_moves() -> None:
    opinion = second_opinion(advice(), truth_db=TRUTH, judge=RubricJudge())
    assert isinstance(opinion, SecondOpinion) and (opinion.judge, opinion.advisor) == ("rubric", "measured")
    assert list(opinion.verdicts) == ["vocals", "drums", "bass"]  # every stem, the unmoved bass too
    assert {stem: v.scores for stem, v in opinion.verdicts.items()} == {
        "vocals": {"correctness": 5, "specificity": 3, "safety": 5},
        "drums": {"correctness": 4, "specificity": 2, "safety": 5},
        "bass": {"correctness": 5, "specificity": 2, "safety": 5},
    }
    assert opinion.means == pytest.approx({"correctness": 14 / 3, "specificity": 7 / 3, "safety": 5.0})
    assert opinion.reference and opinion.inconsistent == {} and opinion.failed == {}
    assert opinion.lines() == [
        "Second opinion from the rubric judge on the measured advice: mean correctness 4.7/5, specificity 2.3/5, "
        "safety 5.0/5 over 3 of 3 stems.",
        "vocals: correctness 5/5: right direction, 0.0 dB from the measured move (-4.0 stated, -4.0 measured); "
        "specificity 3/5: cites measured level, comparison with B; safety 5/5: gain only.",
        "drums: correctness 4/5: right direction, 2.0 dB from the measured move (+3.0 stated, +1.0 measured); "
        "specificity 2/5: cites comparison with B; safety 5/5: gain only.",
        "bass: correctness 5/5: leaves the stem, as it should; specificity 2/5: cites comparison with B; "
        "safety 5/5: gain only.",
    ]
    payload = json.loads(json.dumps(opinion.to_json()))
    assert payload["means"] == {"correctness": 4.67, "specificity": 2.33, "safety": 5.0}
    assert payload["stems"]["drums"]["true_move_db"] == 1.0
    assert payload["stems"]["bass"]["verdict"]["scores"] == {"correctness": 5, "specificity": 2, "safety": 5}


def test_second_opinion_without_a_reference_grades_no_correctness() -> None:
    opinion = second_opinion(advice(), truth_db=None, judge=RubricJudge())
    assert not opinion.reference
    assert {stem: v.scores for stem, v in opinion.verdicts.items()} == {
        "vocals": {"specificity": 3, "safety": 5}, "drums": {"specificity": 2, "safety": 5},
        "bass": {"specificity": 2, "safety": 5}}
    assert {v.rationales["correctness"] for v in opinion.verdicts.values()} == {"no reference to check against"}
    assert opinion.means == pytest.approx({"specificity": 7 / 3, "safety": 5.0})  # no correctness mean at all
    assert opinion.lines()[0] == ("Second opinion from the rubric judge on the measured advice: mean specificity "
                                  "2.3/5, safety 5.0/5 over 3 of 3 stems. Correctness is not scored: no reference "
                                  "to check against.")
    assert opinion.lines()[3] == ("bass: correctness not scored: no reference to check against; specificity 2/5: "
                                  "cites comparison with B; safety 5/5: gain only.")
    payload = opinion.to_json()
    assert payload["reference"] is False and payload["means"] == {"specificity": 2.33, "safety": 5.0}
    assert payload["stems"]["vocals"]["true_move_db"] is None


# -- an LLM judge ---------------------------------------------------------------------------------


def reply(correctness: int | None, specificity: int, safety: int) -> AIMessage:
    scores = {"correctness": correctness, "specificity": specificity, "safety": safety}
    return AIMessage(json.dumps({name: {"score": score, "rationale": f"{name} looks {score}"}
                                 for name, score in scores.items() if score is not None}))


def test_an_llm_verdict_that_contradicts_the_rubric_is_flagged_inconsistent() -> None:
    # vocals and bass agree with the rubric (5); the drums' "correctness 2" is two points under its 4
    model = ScriptedChatModel(responses=[reply(5, 3, 5), reply(2, 2, 5), reply(5, 1, 5)])
    opinion = second_opinion(advice(), truth_db=TRUTH, judge=LLMJudge(model, name="fake:judge"))
    assert opinion.judge == "fake:judge"
    assert opinion.inconsistent == {"drums": "correctness 2 against the rubric's 4 (right direction, 2.0 dB from the "
                                             "measured move (+3.0 stated, +1.0 measured))"}
    drums = opinion.verdicts["drums"]
    assert drums.scores == {"correctness": 2, "specificity": 2, "safety": 5} and not drums.counted
    # the inconsistent verdict is kept but not averaged in
    assert opinion.means == pytest.approx({"correctness": 5.0, "specificity": 2.0, "safety": 5.0})
    assert opinion.lines()[2] == (
        "drums: correctness 2/5: correctness looks 2; specificity 2/5: specificity looks 2; safety 5/5: safety looks "
        "5. Not counted: it contradicts the rubric (correctness 2 against the rubric's 4 (right direction, 2.0 dB "
        "from the measured move (+3.0 stated, +1.0 measured))).")
    asked = model.seen[1][1].content
    assert "True move: +1.0 dB on the drums, as the measured advisor measures it against the reference" in asked
    assert json.dumps(stem_explanation(advice(), "drums", STEMS)) in asked


def test_an_llm_judge_without_a_reference_is_not_asked_for_correctness() -> None:
    model = ScriptedChatModel(responses=[reply(None, 3, 5), reply(4, 2, 5), reply(None, 2, 5)])
    opinion = second_opinion(advice(), truth_db=None, judge=LLMJudge(model, name="fake:judge"))
    assert model.seen[0][1].content.endswith(
        "Do not score correctness: reply with specificity and safety only, in the same form.")
    assert "True move: unknown for the vocals, with no reference to check against" in model.seen[0][1].content
    # a correctness score given anyway is not taken
    assert opinion.verdicts["drums"].scores == {"specificity": 2, "safety": 5}
    assert opinion.verdicts["drums"].rationales["correctness"] == NO_REFERENCE
    assert opinion.inconsistent == {} and opinion.means == pytest.approx({"specificity": 7 / 3, "safety": 5.0})


# -- layering -------------------------------------------------------------------------------------


def test_the_core_imports_neither_the_agent_nor_the_evaluation() -> None:
    found = subprocess.run(
        [sys.executable, "-c", "import sys, faderwise.advisor.judge; "
         "print(sorted(m for m in sys.modules if m.startswith(('faderwise.agent', 'faderwise.evals'))))"],
        capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_the_evaluation_uses_the_core_itself() -> None:
    import faderwise.advisor.judge as core
    import faderwise.evals.judge as evals

    for name in ("JudgeCase", "Verdict", "Ranking", "RubricJudge", "LLMJudge", "RUBRIC", "parse_verdict",
                 "consistency", "correctness", "CRITERIA"):
        assert getattr(evals, name) is getattr(core, name), name
