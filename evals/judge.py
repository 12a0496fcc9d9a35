"""The evaluation's judges: scores 1–5 for (a) correctness of the stated adjustment, (b)
specificity to audio evidence and (c) safety (no advice beyond gain), and listwise ranks (the
MixAssist protocol).

The judges' core — the criteria, :class:`JudgeCase`, :class:`Verdict`, :class:`Ranking`, the
:class:`Judge` protocol, :class:`RubricJudge`, :class:`LLMJudge`, the rubric prompts, the parsing
of replies and the consistency checks — lives in :mod:`faderwise.advisor.judge`, where the chat's
second opinion uses it too; its names are importable from here as before. This module adds what
only the evaluation needs: :func:`make_judge`, which builds an LLM judge from one of the agent's
model specs (and so imports :mod:`faderwise.agent`, which the advisor layer must not), and the
listwise summaries of its report (:func:`rank_summaries`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from faderwise.advisor.judge import (
    BEYOND_GAIN_PATTERNS,
    CRITERIA,
    EVIDENCE_PATTERNS,
    INCONSISTENT_POINTS,
    NO_REFERENCE,
    RANK_RUBRIC,
    RANKING_SHAPE,
    RETRY_STEPS,
    RETRY_TEMPERATURE,
    RUBRIC,
    VERDICT_SHAPE,
    Judge,
    JudgeCase,
    JudgeReplyError,
    LLMJudge,
    Ranking,
    RubricJudge,
    Verdict,
    beyond_gain,
    case_prompt,
    consistency,
    correctness,
    evidence_kinds,
    fractional_ranks,
    json_object,
    parse_ranking,
    parse_verdict,
    ranking_consistency,
    retry_request,
    shuffled_labels,
    stated_move,
    verdict_shape,
)

__all__ = [
    "BEYOND_GAIN_PATTERNS", "CRITERIA", "EVIDENCE_PATTERNS", "INCONSISTENT_POINTS", "NO_REFERENCE", "RANK_RUBRIC",
    "RANKING_SHAPE", "RETRY_STEPS", "RETRY_TEMPERATURE", "RUBRIC", "VERDICT_SHAPE", "Judge", "JudgeCase",
    "JudgeReplyError", "LLMJudge", "RankSummary", "Ranking", "RubricJudge", "Verdict", "beyond_gain", "case_prompt",
    "consistency", "correctness", "evidence_kinds", "fractional_ranks", "json_object", "make_judge",
    "parse_ranking", "parse_verdict", "rank_summaries", "ranking_consistency", "retry_request", "shuffled_labels",
    "stated_move", "verdict_shape",
]


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
