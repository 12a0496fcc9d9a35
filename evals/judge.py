"""Judges of an advisor's explanation: scores 1–5 for (a) correctness of the stated adjustment,
(b) specificity to audio evidence and (c) safety (no advice beyond gain), each with a rationale;
and a listwise mode that ranks several advisors' answers to one bundle, anonymised and shuffled
(the MixAssist protocol).

Two judges, one interface:

* :class:`RubricJudge`, the embedded default: deterministic. It parses the moves, checks them
  against the truth, counts kinds of concrete evidence and flags EQ / compression / effects
  advice, so the whole protocol runs offline.
* :class:`LLMJudge`: any chat model (the agent's specs: ``openai:MODEL``, ``ollama:MODEL`` …)
  given the bundle's measured facts, the truth, the explanation and a few-shot rubric, replying
  in JSON. Each retry after a malformed reply changes what it sends (:data:`RETRY_STEPS`: the
  error, then a stricter format reminder with the exact JSON shape, then a higher temperature), so
  a deterministic model is not asked the same thing twice; when the retries run out the verdict
  is recorded as failed, never replaced by a default score.

An LLM verdict whose correctness score is two points or more from the rubric's objective grade of
the parsed move, or a ranking that puts an answer above one whose stated move is two grades more
correct, is recorded as *inconsistent*: kept with the reason, counted apart in the report, and
never averaged into the scores or ranks.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faderwise.advisor.explain import is_leave
from faderwise.advisor.parse import parse_moves
from faderwise.tools.errors import FaderwiseError

CRITERIA = ("correctness", "specificity", "safety")
INCONSISTENT_POINTS = 2  # an LLM correctness score this far from the rubric's grade is not averaged in
RETRY_STEPS = ("error", "format", "temperature")
RETRY_TEMPERATURE = 0.8


class JudgeReplyError(FaderwiseError, ValueError):
    """A judge's reply that is not the JSON asked for (the message says what is wrong)."""


@dataclass(frozen=True)
class JudgeCase:
    """What a judge sees of one answer.

    Attributes:
        facts: the bundle's measured facts (e.g. ``target_a_minus_b_db``, LUFS levels).
        true_move_db: the move that turns A's target into B's (dB, positive = raise).
    """

    item: str
    target: str
    stems: tuple[str, ...]
    true_move_db: float
    facts: Mapping[str, Any]
    explanation: str


@dataclass(frozen=True)
class Verdict:
    """Scores (1–5 per criterion) with rationales, or ``failed`` saying why there are none."""

    scores: Mapping[str, int] = field(default_factory=dict)
    rationales: Mapping[str, str] = field(default_factory=dict)
    failed: str | None = None
    attempts: int = 1
    inconsistent: str | None = None

    @property
    def counted(self) -> bool:
        """Whether the scores go into averages: not failed, not inconsistent with the rubric."""
        return not self.failed and not self.inconsistent

    def to_json(self) -> dict[str, Any]:
        return {"scores": dict(self.scores), "rationales": dict(self.rationales), "failed": self.failed,
                "attempts": self.attempts, "inconsistent": self.inconsistent}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Verdict:
        return cls(scores=dict(payload["scores"]), rationales=dict(payload["rationales"]), failed=payload["failed"],
                   attempts=int(payload["attempts"]), inconsistent=payload.get("inconsistent"))


@dataclass(frozen=True)
class Ranking:
    """One bundle's answers ranked: ``ranks`` advisor → rank (1 = best; tied answers share the
    mean of their places), or ``failed``."""

    item: str
    ranks: Mapping[str, float] = field(default_factory=dict)
    failed: str | None = None
    attempts: int = 1
    inconsistent: str | None = None

    @property
    def counted(self) -> bool:
        return not self.failed and not self.inconsistent

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "ranks": dict(self.ranks), "failed": self.failed, "attempts": self.attempts,
                "inconsistent": self.inconsistent}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Ranking:
        return cls(item=payload["item"], ranks=dict(payload["ranks"]), failed=payload["failed"],
                   attempts=int(payload["attempts"]), inconsistent=payload.get("inconsistent"))


class Judge(Protocol):
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
    direction or no move stated. A stem that should stay is right when left (or moved < 0.5 dB)."""
    truth, said = case.true_move_db, stated_move(case)
    if said is None:
        return 1, f"states no move for the {case.target} (the truth is {truth:+.1f} dB)"
    if is_leave(truth) or is_leave(said):
        if is_leave(truth) and is_leave(said):
            return 5, "leaves the stem, as it should"
        return (1, f"leaves the {case.target}, which needs {truth:+.1f} dB") if is_leave(said) else (
            2, f"moves the {case.target} by {said:+.1f} dB where it should stay")
    if (said > 0) != (truth > 0):
        return 1, f"wrong direction: {said:+.1f} dB stated, {truth:+.1f} dB true"
    error = abs(said - truth)
    score = 5 if error <= 1 else 4 if error <= 2 else 3 if error <= 4 else 2
    return score, f"right direction, {error:.1f} dB from the truth ({said:+.1f} stated, {truth:+.1f} true)"


class RubricJudge:
    """The deterministic judge (see the module's doc)."""

    name = "rubric"

    def judge(self, case: JudgeCase) -> Verdict:
        right, why_right = correctness(case)
        kinds = evidence_kinds(case.explanation)
        flags = beyond_gain(case.explanation)
        safety = 5 if not flags else 2 if len(flags) == 1 else 1
        return Verdict(
            scores={"correctness": right, "specificity": 1 + len(kinds), "safety": safety},
            rationales={"correctness": why_right,
                        "specificity": f"cites {', '.join(kinds)}" if kinds else "cites no concrete evidence",
                        "safety": f"advises {', '.join(flags)}" if flags else "gain only"},
        )

    def rank(self, item: str, cases: Mapping[str, JudgeCase], *, seed: int = 0) -> Ranking:
        """By total score: correctness first, then specificity, then safety; ties share places."""
        keys = {advisor: tuple(self.judge(case).scores[c] for c in CRITERIA) for advisor, case in cases.items()}
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


def case_prompt(case: JudgeCase) -> str:
    return (f"Facts measured on the bundle: {json.dumps(dict(case.facts), sort_keys=True)}\n"
            f"True move: {case.true_move_db:+.1f} dB on the {case.target} (stems: {', '.join(case.stems)}).\n"
            f"Explanation: {json.dumps(case.explanation)}")


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


def parse_verdict(reply: str) -> Verdict:
    """Scores and rationales from a judge's reply.

    Raises:
        JudgeReplyError: not JSON, a criterion missing, or a score that is not an integer 1–5.
    """
    payload = json_object(reply)
    scores, rationales = {}, {}
    for criterion in CRITERIA:
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


VERDICT_SHAPE = ('{"correctness": {"score": 1-5, "rationale": "..."}, "specificity": {"score": 1-5, "rationale": '
                 '"..."}, "safety": {"score": 1-5, "rationale": "..."}}')
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
    """Why ``verdict`` contradicts the rubric's objective grade of the stated move, or None."""
    grade, why = correctness(case)
    said = verdict.scores.get("correctness")
    if said is not None and abs(said - grade) >= INCONSISTENT_POINTS:
        return f"correctness {said} against the rubric's {grade} ({why})"
    return None


def ranking_consistency(ranks: Mapping[str, float], cases: Mapping[str, JudgeCase]) -> str | None:
    """Why a ranking contradicts the rubric: an answer ranked above one whose stated move is
    :data:`INCONSISTENT_POINTS` grades more correct; or None."""
    grades = {advisor: correctness(case)[0] for advisor, case in cases.items()}
    for above in sorted(ranks, key=ranks.__getitem__):
        for below in ranks:
            if ranks[above] < ranks[below] and grades[below] - grades[above] >= INCONSISTENT_POINTS:
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
        verdict, failed, attempts = self._ask(RUBRIC, case_prompt(case), parse_verdict, VERDICT_SHAPE)
        if verdict is None:
            return Verdict(failed=failed, attempts=attempts)
        return Verdict(scores=verdict.scores, rationales=verdict.rationales, attempts=attempts,
                       inconsistent=consistency(verdict, case))

    def rank(self, item: str, cases: Mapping[str, JudgeCase], *, seed: int = 0) -> Ranking:
        labels = shuffled_labels(item, list(cases), seed=seed)
        first = next(iter(cases.values()))
        answers = "\n".join(f"{labels[advisor]}: {json.dumps(cases[advisor].explanation)}"
                            for advisor in sorted(cases, key=labels.__getitem__))
        prompt = (f"Facts measured on the bundle: {json.dumps(dict(first.facts), sort_keys=True)}\n"
                  f"True move: {first.true_move_db:+.1f} dB on the {first.target}.\n{answers}")
        ordered, failed, attempts = self._ask(RANK_RUBRIC, prompt,
                                              lambda reply: parse_ranking(reply, sorted(labels.values())),
                                              RANKING_SHAPE)
        if ordered is None:
            return Ranking(item=item, failed=failed, attempts=attempts)
        advisor_of = {label: advisor for advisor, label in labels.items()}
        ranks = {advisor_of[label]: float(place) for place, label in enumerate(ordered, 1)}
        return Ranking(item=item, ranks=ranks, attempts=attempts, inconsistent=ranking_consistency(ranks, cases))


def make_judge(spec: str) -> Judge:
    """``rubric`` (the embedded default) or an LLM spec (``openai:MODEL``, ``ollama:MODEL`` …)."""
    if spec == "rubric":
        return RubricJudge()
    from faderwise.agent.llm import LLMSpecError, make_chat_model, parse_llm_spec

    parsed = parse_llm_spec(spec)
    if parsed.provider == "offline":
        raise LLMSpecError("--judge offline: the offline planner cannot judge; use 'rubric' (the embedded judge)")
    return LLMJudge(make_chat_model(parsed, context=dict), name=str(parsed))


@dataclass(frozen=True)
class RankSummary:
    """Listwise results of one advisor: ``wins`` (first places; a shared first counts its share),
    ``mean_rank`` (1 = best) and ``rank_score`` (mean of (k − rank)/(k − 1): 1 always best, 0 always last)."""

    wins: float
    mean_rank: float
    rank_score: float
    rankings: int


def rank_summaries(rankings: Sequence[Ranking]) -> dict[str, RankSummary]:
    """Per advisor over the rankings that count (not failed, not inconsistent with the rubric)."""
    collected: dict[str, list[tuple[float, int]]] = {}
    wins: dict[str, float] = {}
    for ranking in rankings:
        if not ranking.counted:
            continue
        k = len(ranking.ranks)
        best = min(ranking.ranks.values())
        sharing = sum(rank == best for rank in ranking.ranks.values())
        for advisor, rank in ranking.ranks.items():
            collected.setdefault(advisor, []).append((rank, k))
            wins[advisor] = wins.get(advisor, 0.0) + (1 / sharing if rank == best else 0.0)
    return {
        advisor: RankSummary(
            wins=round(wins[advisor], 3),
            mean_rank=sum(rank for rank, _ in places) / len(places),
            rank_score=sum((k - rank) / (k - 1) if k > 1 else 1.0 for rank, k in places) / len(places),
            rankings=len(places))
        for advisor, places in sorted(collected.items())
    }
