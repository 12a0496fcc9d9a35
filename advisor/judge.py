"""Judges of an advisor's explanation: scores 1–5 for (a) correctness of the stated adjustment,
(b) specificity to audio evidence and (c) safety (no advice beyond gain), each with a rationale;
and a listwise mode that ranks several advisors' answers to one bundle, anonymised and shuffled
(the MixAssist protocol). The evaluation (:mod:`faderwise.evals`) judges its synthetic bundles
with them; the chat asks one for a second opinion on the advice it gives (:func:`second_opinion`),
checked against the measured differential advisor's moves. This module is the judges' core, in the
advisor layer so that both use it: it imports nothing from :mod:`faderwise.agent` or
:mod:`faderwise.evals` (building an LLM judge from a spec string is the evaluation's
``make_judge``, which needs the agent's chat models).

Two judges, one interface:

* :class:`RubricJudge`, the embedded default: deterministic. It parses the moves, checks them
  against the truth, counts kinds of concrete evidence and flags EQ / compression / effects
  advice, so the whole protocol runs offline.
* :class:`LLMJudge`: any LangChain chat model object (the evaluation builds one from the agent's
  specs: ``openai:MODEL``, ``ollama:MODEL`` …) given the bundle's measured facts, the truth, the
  explanation and a few-shot rubric, replying in JSON. Each retry after a malformed reply changes what it sends (:data:`RETRY_STEPS`: the
  error, then a stricter format reminder with the exact JSON shape, then a higher temperature), so
  a deterministic model is not asked the same thing twice; when the retries run out the verdict
  is recorded as failed, never replaced by a default score.

An LLM verdict whose correctness score is two points or more from the rubric's objective grade of
the parsed move, or a ranking that puts an answer above one whose stated move is two grades more
correct, is recorded as *inconsistent*: kept with the reason, counted apart in the report, and
never averaged into the scores or ranks.

Without a reference there is no true move: a case's ``true_move_db`` is then ``None`` and its
verdict holds no correctness score, only the rationale :data:`NO_REFERENCE` (a score is never
invented); specificity and safety are judged as usual.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faderwise.advisor.explain import instruction, is_leave, leave_sentence, master_sentence
from faderwise.advisor.faithful import sentences
from faderwise.advisor.model import Advice
from faderwise.advisor.parse import parse_moves
from faderwise.advisor.stem_names import mention_table
from faderwise.tools.errors import FaderwiseError

CRITERIA = ("correctness", "specificity", "safety")
INCONSISTENT_POINTS = 2  # an LLM correctness score this far from the rubric's grade is not averaged in
RETRY_STEPS = ("error", "format", "temperature")
RETRY_TEMPERATURE = 0.8
NO_REFERENCE = "no reference to check against"
"""The correctness rationale of a case without a true move (no reference loaded): not scored."""


class JudgeReplyError(FaderwiseError, ValueError):
    """A judge's reply that is not the JSON asked for (the message says what is wrong)."""


@dataclass(frozen=True)
class JudgeCase:
    """What a judge sees of one answer.

    Attributes:
        item: what the answer is about (a bundle's id; ``second-opinion/<stem>`` in the chat).
        target: the stem whose move is judged.
        stems: every stem of the set (the names the explanation is read with).
        true_move_db: the move that turns A's target into B's (dB, positive = raise; 0 = leave it),
            or ``None`` when there is no reference to check against (correctness is not scored).
        facts: the measured facts (e.g. ``target_a_minus_b_db``, LUFS levels), JSON-ready.
        explanation: the text judged.
        measured_by: the advisor whose move stands in for the true move ("measured": the
            differential advisor against the loaded reference), named in the rationales ("the
            measured move"); ``None`` for a known true move (the evaluation's synthetic bundles:
            "the truth").
    """

    item: str
    target: str
    stems: tuple[str, ...]
    true_move_db: float | None
    facts: Mapping[str, Any]
    explanation: str
    measured_by: str | None = None

    @property
    def criteria(self) -> tuple[str, ...]:
        """The criteria judged: all of :data:`CRITERIA`, or without correctness when there is no true move."""
        return CRITERIA if self.true_move_db is not None else tuple(c for c in CRITERIA if c != "correctness")


class _Judged:
    """What a verdict and a ranking share: ``failed`` and ``inconsistent`` decide whether they count."""

    failed: str | None
    inconsistent: str | None

    @property
    def counted(self) -> bool:
        """Whether the scores go into averages: not failed, not inconsistent with the rubric."""
        return not self.failed and not self.inconsistent


@dataclass(frozen=True)
class Verdict(_Judged):
    """Scores (1–5 per criterion of :data:`CRITERIA`) with rationales, or ``failed`` saying why
    there are none; ``inconsistent`` says why an LLM verdict contradicts the rubric (kept, not
    counted). A criterion not scored (correctness without a reference) has a rationale, no score."""

    scores: Mapping[str, int] = field(default_factory=dict)
    rationales: Mapping[str, str] = field(default_factory=dict)
    failed: str | None = None
    attempts: int = 1
    inconsistent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"scores": dict(self.scores), "rationales": dict(self.rationales), "failed": self.failed,
                "attempts": self.attempts, "inconsistent": self.inconsistent}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Verdict:
        return cls(scores=dict(payload["scores"]), rationales=dict(payload["rationales"]), failed=payload["failed"],
                   attempts=int(payload["attempts"]), inconsistent=payload.get("inconsistent"))


@dataclass(frozen=True)
class Ranking(_Judged):
    """One bundle's answers ranked: ``ranks`` advisor → rank (1 = best; tied answers share the
    mean of their places), or ``failed``."""

    item: str
    ranks: Mapping[str, float] = field(default_factory=dict)
    failed: str | None = None
    attempts: int = 1
    inconsistent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "ranks": dict(self.ranks), "failed": self.failed, "attempts": self.attempts,
                "inconsistent": self.inconsistent}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Ranking:
        return cls(item=payload["item"], ranks=dict(payload["ranks"]), failed=payload["failed"],
                   attempts=int(payload["attempts"]), inconsistent=payload.get("inconsistent"))


class Judge(Protocol):
    """A judge: ``judge`` scores one answer, ``rank`` orders several answers to one item."""

    name: str

    def judge(self, case: JudgeCase) -> Verdict: ...

    def rank(self, item: str, cases: Mapping[str, JudgeCase], *, seed: int = 0) -> Ranking: ...


# -- the rubric judge -----------------------------------------------------------------------------

# Kinds of concrete evidence an explanation can cite; specificity is 1 + the kinds present.
EVIDENCE_PATTERNS = {
    "measured level": re.compile(r"[-+−]?\d+(?:\.\d+)?\s*(?:LUFS|LU)\b"),
    "comparison with B": re.compile(r"\b(?:reference|version b|balanced version)\b", re.IGNORECASE),
    "frequency band": re.compile(r"\d+(?:\.\d+)?\s*(?:[–-]\s*\d+(?:\.\d+)?\s*)?k?hz\b|\b(?:low|high)[- ]end\b|"
                                 r"\b(?:low|high|upper|lower)[- ]mids?\b", re.IGNORECASE),
    "time or section": re.compile(r"\b\d+:\d\d\b|\b\d+(?:\.\d+)?\s*s\b|\b(?:chorus|verse|bridge|intro|outro|drop|"
                                  r"bars? \d+)\b", re.IGNORECASE),
}
# Advice beyond gain. A band named as evidence ("masked at 2–4 kHz") is not EQ advice; a cut or
# boost *at* a frequency is.
BEYOND_GAIN_PATTERNS = {
    "EQ": re.compile(r"\b(?:eq|equali[sz](?:e|er|ation|ing)|high[- ]?pass|low[- ]?pass|shelf|notch)\b|"
                     r"\b(?:cut|boost|scoop)\w*\b[^.;]{0,25}?\d+(?:\.\d+)?\s*k?hz\b", re.IGNORECASE),
    "compression": re.compile(r"\b(?:compress(?:ion|or|ing)?|limit(?:er|ing)|side-?chain|de-?ess(?:er)?)\b",
                              re.IGNORECASE),
    "effects": re.compile(r"\b(?:reverb|delay|saturat\w*|distortion|chorus effect|flanger|phaser)\b", re.IGNORECASE),
}


def evidence_kinds(text: str) -> list[str]:
    """The kinds of concrete evidence in ``text`` (see :data:`EVIDENCE_PATTERNS`)."""
    return [kind for kind, pattern in EVIDENCE_PATTERNS.items() if pattern.search(text)]


def beyond_gain(text: str) -> list[str]:
    """The kinds of advice beyond gain in ``text``: "EQ", "compression", "effects"."""
    return [kind for kind, pattern in BEYOND_GAIN_PATTERNS.items() if pattern.search(text)]


def stated_move(case: JudgeCase) -> float | None:
    """The move the explanation states for the target (dB), 0 for "leave it", None for none."""
    moves = [m.delta_db for m in parse_moves(case.explanation, case.stems) if m.stem == case.target]
    return moves[0] if moves else None


def correctness(case: JudgeCase) -> tuple[int, str]:
    """5: within 1 dB of the truth; 4: 2 dB; 3: 4 dB; 2: right direction, further off; 1: wrong
    direction or no move stated. A stem that should stay is right when left (or moved < 0.5 dB).

    Raises:
        ValueError: the case has no true move (``true_move_db`` is None): nothing to grade against.
    """
    truth, said = case.true_move_db, stated_move(case)
    if truth is None:
        raise ValueError(f"{case.item}: {NO_REFERENCE}, so correctness cannot be graded")
    # the known truth of a synthetic bundle, or the move an advisor measured standing in for it
    noun, adjective = ("the truth", "true") if case.measured_by is None else (
        f"the {case.measured_by} move", case.measured_by)
    if said is None:
        return 1, f"states no move for the {case.target} ({noun} is {truth:+.1f} dB)"
    if is_leave(truth) or is_leave(said):
        if is_leave(truth) and is_leave(said):
            return 5, "leaves the stem, as it should"
        return (1, f"leaves the {case.target}, which needs {truth:+.1f} dB") if is_leave(said) else (
            2, f"moves the {case.target} by {said:+.1f} dB where it should stay")
    if (said > 0) != (truth > 0):
        return 1, f"wrong direction: {said:+.1f} dB stated, {truth:+.1f} dB {adjective}"
    error = abs(said - truth)
    score = 5 if error <= 1 else 4 if error <= 2 else 3 if error <= 4 else 2
    return score, f"right direction, {error:.1f} dB from {noun} ({said:+.1f} stated, {truth:+.1f} {adjective})"


class RubricJudge:
    """The deterministic judge (see the module's doc)."""

    name = "rubric"

    def judge(self, case: JudgeCase) -> Verdict:
        right, why_right = correctness(case) if case.true_move_db is not None else (None, NO_REFERENCE)
        kinds = evidence_kinds(case.explanation)
        flags = beyond_gain(case.explanation)
        safety = 5 if not flags else 2 if len(flags) == 1 else 1
        scores = {"correctness": right, "specificity": 1 + len(kinds), "safety": safety}
        return Verdict(
            scores={criterion: score for criterion, score in scores.items() if score is not None},
            rationales={"correctness": why_right,
                        "specificity": f"cites {', '.join(kinds)}" if kinds else "cites no concrete evidence",
                        "safety": f"advises {', '.join(flags)}" if flags else "gain only"},
        )

    def rank(self, item: str, cases: Mapping[str, JudgeCase], *, seed: int = 0) -> Ranking:
        """By total score: correctness first (when there is a true move), then specificity, then
        safety; ties share places."""
        keys = {advisor: tuple(self.judge(case).scores.get(c, 0) for c in CRITERIA) for advisor, case in cases.items()}
        return Ranking(item=item, ranks=fractional_ranks(keys))


def fractional_ranks(keys: Mapping[str, tuple[float, ...]]) -> dict[str, float]:
    """Rank 1 for the highest key; equal keys share the mean of their places."""
    ordered = sorted(keys, key=lambda name: keys[name], reverse=True)
    ranks: dict[str, float] = {}
    place = 0
    while place < len(ordered):
        tied = [name for name in ordered if keys[name] == keys[ordered[place]]]
        for name in tied:
            ranks[name] = place + (len(tied) + 1) / 2
        place += len(tied)
    return ranks


# -- the LLM judge --------------------------------------------------------------------------------

RUBRIC = """You judge gain advice for a music mix. The producer's mix is Version A; a balanced reference is \
Version B. The advice must say how to move one stem's fader (gain only) and why.

Score the explanation on three criteria, each an integer from 1 to 5:
- correctness: the stated adjustment against the true move. 5 = right direction, within 1 dB; 4 = within 2 dB; \
3 = within 4 dB; 2 = right direction, further off; 1 = wrong direction or no move stated.
- specificity: concrete audio evidence (measured levels in LU/LUFS, the comparison with the reference, \
frequency bands, times or sections). 1 = none, 5 = several kinds.
- safety: advice stays within gain. 5 = gain only; 2 = one kind of EQ, compression or effects advice; \
1 = more.

Reply with one JSON object and nothing else:
{"correctness": {"score": N, "rationale": "..."}, "specificity": {"score": N, "rationale": "..."}, \
"safety": {"score": N, "rationale": "..."}}

Example. Facts: {"target_a_minus_b_db": -4.1}. True move: +4.1 dB on the vocals.
Explanation: "Raise the vocals by about 4 dB: they sit at -12.3 LU against the backing in your mix and -8.2 LU \
in the reference."
Reply: {"correctness": {"score": 5, "rationale": "+4 dB stated, +4.1 dB true"}, "specificity": {"score": 3, \
"rationale": "measured levels and the reference"}, "safety": {"score": 5, "rationale": "gain only"}}

Example. Facts: {"target_a_minus_b_db": 3.0}. True move: -3.0 dB on the guitar.
Explanation: "Raise the guitar by 6 dB and compress it, with a cut at 300 Hz."
Reply: {"correctness": {"score": 1, "rationale": "wrong direction"}, "specificity": {"score": 1, "rationale": \
"no evidence"}, "safety": {"score": 1, "rationale": "compression and EQ"}}"""

RANK_RUBRIC = """You compare several answers to the same gain-advice question about a music mix (Version A, the \
producer's; Version B, a balanced reference). Rank them best first by: correctness of the stated adjustment \
against the true move, then specificity to audio evidence, then staying within gain advice.

Reply with one JSON object and nothing else: {"ranking": ["Answer X", "Answer Y", ...], "rationale": "..."} \
listing every answer label exactly once."""


def true_move_line(case: JudgeCase) -> str:
    """"True move: +4.0 dB on the vocals", naming the advisor whose move stands in for the truth
    (", as the measured advisor measures it against the reference"), or saying there is none."""
    if case.true_move_db is None:
        return f"True move: unknown for the {case.target}, with {NO_REFERENCE}"
    source = f", as the {case.measured_by} advisor measures it against the reference" if case.measured_by else ""
    return f"True move: {case.true_move_db:+.1f} dB on the {case.target}{source}"


def case_prompt(case: JudgeCase) -> str:
    """What the LLM judge is asked about one case (after :data:`RUBRIC`); without a true move it is
    told not to score correctness and to reply with the other criteria only."""
    unscored = ("" if case.true_move_db is not None else
                f"\nDo not score correctness: reply with {' and '.join(case.criteria)} only, in the same form.")
    return (f"Facts measured on the bundle: {json.dumps(dict(case.facts), sort_keys=True)}\n"
            f"{true_move_line(case)} (stems: {', '.join(case.stems)}).\n"
            f"Explanation: {json.dumps(case.explanation)}{unscored}")


def json_object(reply: str) -> dict[str, Any]:
    """The JSON object in a reply (bare, or in a ```json fence)."""
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", reply, re.DOTALL)
    text = fenced.group(1) if fenced else reply[reply.find("{"):reply.rfind("}") + 1]
    if not text:
        raise JudgeReplyError("the reply holds no JSON object")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JudgeReplyError(f"the reply's JSON does not parse: {exc.msg} at character {exc.pos}") from None
    if not isinstance(payload, dict):
        raise JudgeReplyError("the reply's JSON is not an object")
    return payload


def parse_verdict(reply: str, criteria: Sequence[str] = CRITERIA) -> Verdict:
    """Scores and rationales for ``criteria`` from a judge's reply (others it holds are ignored).

    Raises:
        JudgeReplyError: not JSON, a criterion missing, or a score that is not an integer 1–5.
    """
    payload = json_object(reply)
    scores, rationales = {}, {}
    for criterion in criteria:
        entry = payload.get(criterion)
        if not isinstance(entry, dict) or "score" not in entry:
            raise JudgeReplyError(f"'{criterion}' is missing or has no 'score'")
        score = entry["score"]
        if isinstance(score, bool) or not isinstance(score, int | float) or score != int(score) or not 1 <= score <= 5:
            raise JudgeReplyError(f"'{criterion}' score {score!r} is not an integer from 1 to 5")
        scores[criterion] = int(score)
        rationales[criterion] = str(entry.get("rationale", ""))
    return Verdict(scores=scores, rationales=rationales)


def parse_ranking(reply: str, labels: Sequence[str]) -> list[str]:
    """The labels, best first, from a listwise reply.

    Raises:
        JudgeReplyError: no ``ranking`` list, or one that does not hold every label exactly once.
    """
    ranking = json_object(reply).get("ranking")
    if not isinstance(ranking, list) or not all(isinstance(label, str) for label in ranking):
        raise JudgeReplyError("'ranking' is missing or not a list of answer labels")
    if sorted(ranking) != sorted(labels):
        raise JudgeReplyError(f"'ranking' must list {', '.join(labels)} once each, got {', '.join(ranking) or 'none'}")
    return ranking


def shuffled_labels(item: str, advisors: Sequence[str], *, seed: int) -> dict[str, str]:
    """Anonymous labels ("Answer A" …) for the advisors, in an order shuffled per item and seed."""
    order = sorted(advisors)
    random.Random(zlib.crc32(f"{seed}:{item}".encode())).shuffle(order)
    return {advisor: f"Answer {chr(ord('A') + index)}" for index, advisor in enumerate(order)}


def verdict_shape(criteria: Sequence[str] = CRITERIA) -> str:
    """The JSON shape a verdict on ``criteria`` takes, as a retry spells it out."""
    return "{" + ", ".join(f'"{criterion}": {{"score": 1-5, "rationale": "..."}}' for criterion in criteria) + "}"


VERDICT_SHAPE = verdict_shape()
RANKING_SHAPE = '{"ranking": ["Answer A", "Answer B", ...], "rationale": "..."}'


def retry_request(step: str, problem: str, shape: str) -> tuple[str, dict[str, Any]]:
    """What one retry says after the bad reply, and the options it is sent with: the error; then the
    error and the exact shape wanted; then the same at a higher temperature."""
    error = f"That reply was not usable: {problem}. Reply with the JSON object only."
    if step == "error":
        return error, {}
    strict = (f"{error} It must be exactly one JSON object of this shape, with integer scores, and nothing before "
              f"or after it (no prose, no code fence): {shape}")
    return strict, ({"temperature": RETRY_TEMPERATURE} if step == "temperature" else {})


def consistency(verdict: Verdict, case: JudgeCase) -> str | None:
    """Why ``verdict`` contradicts the rubric's objective grade of the stated move: its correctness
    score :data:`INCONSISTENT_POINTS` or more from the grade ("correctness 2 against the rubric's 4
    (…)"); None when it does not, or when there is no true move to grade against."""
    if case.true_move_db is None:
        return None
    grade, why = correctness(case)
    said = verdict.scores.get("correctness")
    if said is not None and abs(said - grade) >= INCONSISTENT_POINTS:
        return f"correctness {said} against the rubric's {grade} ({why})"
    return None


def ranking_consistency(ranks: Mapping[str, float], cases: Mapping[str, JudgeCase]) -> str | None:
    """Why a ranking contradicts the rubric: an answer ranked above one whose stated move is
    :data:`INCONSISTENT_POINTS` grades more correct; or None. Answers without a true move are not graded."""
    grades = {advisor: correctness(case)[0] for advisor, case in cases.items() if case.true_move_db is not None}
    for above in sorted(ranks, key=ranks.__getitem__):
        for below in ranks:
            if above in grades and below in grades and ranks[above] < ranks[below] and grades[below] - grades[above] >= INCONSISTENT_POINTS:
                return (f"ranks {above} (correctness {grades[above]}) above {below} (correctness "
                        f"{grades[below]})")
    return None


class LLMJudge:
    """A chat model as judge (see the module's doc); ``max_attempts`` counts the first try (each
    retry takes the next of :data:`RETRY_STEPS`, the last one repeating)."""

    def __init__(self, model: Any, *, name: str, max_attempts: int = 1 + len(RETRY_STEPS)) -> None:
        self.model, self.name, self.max_attempts = model, name, max_attempts

    def _ask(self, system: str, prompt: str, parse: Any, shape: str) -> tuple[Any, str | None, int]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        asked: list[Any] = [SystemMessage(system), HumanMessage(prompt)]
        messages, options = asked, {}
        problem, bad_reply = "no attempt made", None
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                step = RETRY_STEPS[min(attempt - 2, len(RETRY_STEPS) - 1)]
                text, options = retry_request(step, problem, shape)
                shown = [AIMessage(bad_reply)] if bad_reply is not None else []
                messages = [*asked, *shown, HumanMessage(text)]
            try:
                model = self.model.bind(**options) if options else self.model
                reply = model.invoke(messages)
            except Exception as exc:  # a provider error is retried and recorded like a bad reply
                problem = f"the model failed: {type(exc).__name__}: {exc}"
                continue
            content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
            try:
                return parse(content), None, attempt
            except JudgeReplyError as exc:
                problem, bad_reply = str(exc), content
        return None, f"{self.max_attempts} attempts, last: {problem}", self.max_attempts

    def judge(self, case: JudgeCase) -> Verdict:
        criteria = case.criteria
        verdict, failed, attempts = self._ask(RUBRIC, case_prompt(case),
                                              lambda reply: parse_verdict(reply, criteria), verdict_shape(criteria))
        if verdict is None:
            return Verdict(failed=failed, attempts=attempts)
        unscored = {criterion: NO_REFERENCE for criterion in CRITERIA if criterion not in criteria}
        return Verdict(scores=verdict.scores, rationales={**verdict.rationales, **unscored}, attempts=attempts,
                       inconsistent=consistency(verdict, case))

    def rank(self, item: str, cases: Mapping[str, JudgeCase], *, seed: int = 0) -> Ranking:
        labels = shuffled_labels(item, list(cases), seed=seed)
        first = next(iter(cases.values()))
        answers = "\n".join(f"{labels[advisor]}: {json.dumps(cases[advisor].explanation)}"
                            for advisor in sorted(cases, key=labels.__getitem__))
        prompt = (f"Facts measured on the bundle: {json.dumps(dict(first.facts), sort_keys=True)}\n"
                  f"{true_move_line(first)}.\n{answers}")
        ordered, failed, attempts = self._ask(RANK_RUBRIC, prompt,
                                              lambda reply: parse_ranking(reply, sorted(labels.values())),
                                              RANKING_SHAPE)
        if ordered is None:
            return Ranking(item=item, failed=failed, attempts=attempts)
        advisor_of = {label: advisor for advisor, label in labels.items()}
        ranks = {advisor_of[label]: float(place) for place, label in enumerate(ordered, 1)}
        return Ranking(item=item, ranks=ranks, attempts=attempts, inconsistent=ranking_consistency(ranks, cases))


# -- the chat's second opinion --------------------------------------------------------------------

SECOND_OPINION_BY = "measured"
"""The advisor whose moves stand in for the truth in a second opinion (the differential advisor
against the loaded reference)."""
NO_MOVE_REASON = "the advice holds no move for this stem"


def _mentioned(sentence: str, table: Mapping[str, str]) -> set[str]:
    """The stems a sentence names (their names or aliases, see
    :func:`~faderwise.advisor.stem_names.mention_table`)."""
    return {table[phrase] for phrase in table
            if re.search(rf"\b{re.escape(phrase)}\b", sentence, re.IGNORECASE)}


def stem_explanation(advice: Advice, stem: str, stems: Sequence[str]) -> str:
    """What ``advice`` says about ``stem``.

    The first sentence of ``advice.text`` that states a move for the stem or leaves it (read with
    :func:`~faderwise.advisor.parse.parse_moves`; a list such as "Leave the bass and the keys as
    they are: …" counts for each stem), with the sentences after it that name no other stem (its
    evidence: "Against its backing…", "Confidence: …") up to the master sentence. When the text
    states nothing for the stem, the move the advice holds, in the advisor's words
    (:func:`~faderwise.advisor.explain.instruction`), or, with no move, a
    :func:`~faderwise.advisor.explain.leave_sentence`: a stem the advice does not name is left as it is.
    """
    names = list(stems)
    table = mention_table(names)
    parts = sentences(advice.text)
    master = master_sentence(advice.global_offset_db).strip()
    for index, sentence in enumerate(parts):
        if any(move.stem == stem for move in parse_moves(sentence, names)):
            passage = [sentence]
            for following in parts[index + 1:]:
                if following.strip() == master or _mentioned(following, table) - {stem}:
                    break
                passage.append(following)
            return " ".join(passage)
    move = advice.move_for(stem)
    if move is not None and not is_leave(move.delta_db):
        return f"{instruction(stem, move.delta_db)}."
    return leave_sentence([stem], NO_MOVE_REASON)


def advice_stems(advice: Advice, truth_db: Mapping[str, float] | None = None) -> tuple[str, ...]:
    """The stems a second opinion covers: those of ``advice.evidence["stems"]`` (every stem the
    advisor looked at, moved or not), in its order; for advice without per-stem evidence, the stems
    it moves, then those of ``truth_db``."""
    by_stem = advice.evidence.get("stems")
    if isinstance(by_stem, Mapping) and by_stem:
        return tuple(by_stem)
    return tuple(dict.fromkeys([*(move.stem for move in advice.moves), *(truth_db or {})]))


@dataclass(frozen=True)
class SecondOpinion:
    """A judge's verdicts on advice, stem by stem.

    Attributes:
        judge: the judge's name ("rubric", or an LLM spec such as "openai:gpt-4o-mini").
        advisor: the advisor whose advice was judged.
        cases: stem → what was judged: the explanation (what the advice says about the stem) and
            ``true_move_db``, the measured move (dB, positive = raise, 0 = leave it) or ``None``
            without a reference.
        verdicts: stem → the judge's verdict (scores 1–5 per criterion, with rationales).
    """

    judge: str
    advisor: str
    cases: Mapping[str, JudgeCase]
    verdicts: Mapping[str, Verdict]

    @property
    def reference(self) -> bool:
        """Whether correctness was checked against a measured move (a reference was loaded)."""
        return any(case.true_move_db is not None for case in self.cases.values())

    @property
    def means(self) -> dict[str, float]:
        """Criterion → mean score (1–5) over the stems whose verdict counts (not failed, not
        inconsistent with the rubric); a criterion no such verdict scores (correctness without a
        reference) is absent."""
        found: dict[str, float] = {}
        for criterion in CRITERIA:
            scores = [v.scores[criterion] for v in self.verdicts.values() if v.counted and criterion in v.scores]
            if scores:
                found[criterion] = sum(scores) / len(scores)
        return found

    @property
    def inconsistent(self) -> dict[str, str]:
        """Stem → why its verdict contradicts the rubric (kept, left out of :attr:`means`)."""
        return {stem: v.inconsistent for stem, v in self.verdicts.items() if v.inconsistent}

    @property
    def failed(self) -> dict[str, str]:
        """Stem → why the judge gave no verdict (a malformed reply, every retry used)."""
        return {stem: v.failed for stem, v in self.verdicts.items() if v.failed}

    def stem_line(self, stem: str) -> str:
        """"vocals: correctness 5/5: right direction, 0.0 dB from the measured move (-4.0 stated,
        -4.0 measured); specificity 3/5: cites …; safety 5/5: gain only."."""
        verdict = self.verdicts[stem]
        if verdict.failed:
            return f"{stem}: the {self.judge} judge gave no verdict ({verdict.failed})."
        parts = [f"{criterion} {verdict.scores[criterion]}/5: {verdict.rationales.get(criterion, '')}"
                 if criterion in verdict.scores else f"{criterion} not scored: {verdict.rationales.get(criterion, '')}"
                 for criterion in CRITERIA]
        line = f"{stem}: {'; '.join(parts)}."
        if verdict.inconsistent:
            line += f" Not counted: it contradicts the rubric ({verdict.inconsistent})."
        return line

    def lines(self) -> list[str]:
        """Sentences for the producer: the means first, then one line per stem (:meth:`stem_line`)."""
        means = self.means
        summary = ", ".join(f"{criterion} {means[criterion]:.1f}/5" for criterion in CRITERIA if criterion in means)
        counted = sum(v.counted for v in self.verdicts.values())
        head = (f"Second opinion from the {self.judge} judge on the {self.advisor} advice: "
                + (f"mean {summary} over {counted} of {len(self.verdicts)} stems." if summary
                   else "no verdict counts."))
        if not self.reference:
            head += f" Correctness is not scored: {NO_REFERENCE}."
        return [head, *(self.stem_line(stem) for stem in self.verdicts)]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: judge, advisor, whether there was a reference, the means (rounded to 0.01),
        and per stem the explanation, the measured move (dB, or null) and the verdict."""
        return {
            "judge": self.judge, "advisor": self.advisor, "reference": self.reference,
            "means": {criterion: round(mean, 2) for criterion, mean in self.means.items()},
            "inconsistent": self.inconsistent, "failed": self.failed,
            "stems": {stem: {"explanation": self.cases[stem].explanation,
                             "true_move_db": self.cases[stem].true_move_db,
                             "verdict": verdict.to_json()} for stem, verdict in self.verdicts.items()},
        }


def second_opinion(advice: Advice, *, truth_db: Mapping[str, float] | None, judge: Judge) -> SecondOpinion:
    """``judge``'s verdict on what ``advice`` says about each of its stems (:func:`advice_stems`).

    Args:
        advice: the advice the chat gave (any advisor's).
        truth_db: stem → the move the measured differential advisor gives against the loaded
            reference (dB, positive = raise); a stem it does not list is one it leaves (0 dB), as
            in :class:`~faderwise.advisor.model.Advice`. ``None`` without a reference: correctness is
            then not scored (its rationale is :data:`NO_REFERENCE`), only specificity and safety.
        judge: the judge (:class:`RubricJudge`, or an :class:`LLMJudge` whose correctness scores are
            checked against the rubric's).

    Each stem is one :class:`JudgeCase`: the explanation is :func:`stem_explanation` (for an unmoved
    stem, the advice's "leave it", which is right when the measured move is under 0.5 dB); the facts
    are the stem's evidence (``advice.evidence["stems"][stem]``).
    """
    stems = advice_stems(advice, truth_db)
    by_stem = advice.evidence.get("stems")
    facts = by_stem if isinstance(by_stem, Mapping) else {}
    cases = {
        stem: JudgeCase(item=f"second-opinion/{stem}", target=stem, stems=stems,
                        true_move_db=None if truth_db is None else float(truth_db.get(stem, 0.0)),
                        facts=dict(facts.get(stem) or {}), explanation=stem_explanation(advice, stem, stems),
                        measured_by=SECOND_OPINION_BY)
        for stem in stems
    }
    return SecondOpinion(judge=judge.name, advisor=advice.advisor, cases=cases,
                         verdicts={stem: judge.judge(case) for stem, case in cases.items()})

