"""Statistics of the evaluation: bootstrap confidence intervals (one advisor, and the paired
difference of two on the same items), Cohen's κ between two annotators, and rank correlations
between judge scores and human ratings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from faderwise.tools.errors import FaderwiseError


class StatisticsError(FaderwiseError, ValueError):
    """Data a statistic cannot be computed on (the message says what is wrong with it)."""


@dataclass(frozen=True)
class Interval:
    """A statistic with its percentile-bootstrap confidence interval."""

    value: float
    low: float
    high: float
    level: float = 0.95

    def to_json(self) -> dict[str, float | None]:
        """Rounded; an interval of no data (NaN) is null."""
        def number(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 4)

        return {"value": number(self.value), "low": number(self.low), "high": number(self.high), "level": self.level}


def bootstrap_ci(values: Sequence[float], *, statistic: Callable[[np.ndarray], float] = np.mean,
                 resamples: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """``statistic`` of ``values`` and its percentile bootstrap interval (items resampled with
    replacement ``resamples`` times). An empty sample gives NaN throughout."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Interval(math.nan, math.nan, math.nan, level)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(resamples, data.size))
    estimates = np.array([statistic(data[row]) for row in picks])
    tail = (1 - level) / 2
    return Interval(float(statistic(data)), float(np.quantile(estimates, tail)), float(np.quantile(estimates, 1 - tail)),
                    level)


def paired_difference_ci(first: Sequence[float], second: Sequence[float], *, resamples: int = 2000,
                         level: float = 0.95, seed: int = 0) -> Interval:
    """Mean of ``first − second`` over the same items (e.g. two advisors' errors on one test set)
    with its bootstrap interval: items are resampled together, so the pairing is kept."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape:
        raise StatisticsError(f"paired samples differ in size: {a.size} and {b.size} items")
    return bootstrap_ci(a - b, resamples=resamples, level=level, seed=seed)


def cohen_kappa(first: Sequence[object], second: Sequence[object], *, weights: str | None = None) -> float:
    """Cohen's κ between two annotators' labels of the same items: (p_o − p_e) / (1 − p_e).

    ``weights="quadratic"`` (ordinal labels such as 1–5 scores) counts disagreements by their
    squared distance. Both annotators always giving one and the same label is perfect agreement
    (κ = 1); a single label used differently gives NaN (κ is undefined when p_e = 1).
    """
    if len(first) != len(second):
        raise StatisticsError(f"the annotators labelled different numbers of items: {len(first)} and {len(second)}")
    if not first:
        raise StatisticsError("no items labelled by both annotators")
    if weights not in (None, "quadratic"):
        raise StatisticsError(f"weights must be None or 'quadratic', not {weights!r}")
    labels = sorted(set(first) | set(second), key=lambda x: (str(type(x)), x))  # type: ignore[arg-type]
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    observed = np.zeros((k, k))
    for x, y in zip(first, second):
        observed[index[x], index[y]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    if weights == "quadratic":
        positions = np.array([float(label) for label in labels])  # type: ignore[arg-type]
        disagreement = (positions[:, None] - positions[None, :]) ** 2
    else:
        disagreement = 1.0 - np.eye(k)
    expected_disagreement = float((disagreement * expected).sum())
    observed_disagreement = float((disagreement * observed).sum())
    if expected_disagreement == 0.0:
        return 1.0 if observed_disagreement == 0.0 else math.nan
    return 1.0 - observed_disagreement / expected_disagreement


@dataclass(frozen=True)
class Correlation:
    """Spearman's ρ and Kendall's τ-b of paired scores, with their two-sided p-values."""

    spearman: float
    spearman_p: float
    kendall: float
    kendall_p: float
    items: int

    def to_json(self) -> dict[str, float | int | None]:
        def number(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 4)

        return {"spearman": number(self.spearman), "spearman_p": number(self.spearman_p),
                "kendall": number(self.kendall), "kendall_p": number(self.kendall_p), "items": self.items}


def rank_correlation(first: Sequence[float], second: Sequence[float]) -> Correlation:
    """Spearman and Kendall (τ-b, ties handled) between two paired score lists. Fewer than 3
    pairs, or a list that never varies, gives NaN: there is no ranking to compare."""
    from scipy import stats

    if len(first) != len(second):
        raise StatisticsError(f"paired scores differ in size: {len(first)} and {len(second)}")
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return Correlation(math.nan, math.nan, math.nan, math.nan, int(a.size))
    rho = stats.spearmanr(a, b)
    tau = stats.kendalltau(a, b)
    return Correlation(float(rho.statistic), float(rho.pvalue), float(tau.statistic), float(tau.pvalue), int(a.size))
