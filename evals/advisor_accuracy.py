"""Accuracy of the advisors on perturbed real and procedural material.

A case takes a balanced stem set (Version B), changes 1–4 stems by ±1…±9 dB to make Version A,
optionally degrades the reference the way real references are degraded, and asks each advisor
for moves. The truth is what makes A match the reference actually given: the perturbation undone,
plus the known master offset, plus the level change the codec itself made to each reference stem
(LAME at 128 kbps CBR plays 0.45 dB quieter; measured here with BS.1770 loudness, independently
of the advisor's estimator).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from faderwise.advisor import EqualLoudnessAdvisor, MeasuredAdvisor, SingleMixAdvisor
from faderwise.advisor.model import Advice
from faderwise.evals.gain_error import StemError, Summary, stem_errors, summarise
from faderwise.tools.loudness import integrated_loudness
from faderwise.tools.stems import StemSet
from faderwise.training.perturb import cropped, delayed, lossy_copy, random_perturbation

DEGRADATIONS = ("clean", "master +2.5 dB", "mp3 128k", "aac 128k", "delay 80 ms", "ends 1.5 s early", "silent stem")
MASTER_DB = 2.5
DELAY_S = 0.08
EARLY_END_S = 1.5


@dataclass(frozen=True)
class Case:
    material: str
    degradation: str
    perturbation_db: dict[str, float]
    version_a: StemSet
    reference: StemSet
    true_moves_db: dict[str, float]
    """Per stem: the total change (stem move plus master) that makes A match the reference."""
    scored_stems: tuple[str, ...]


def make_case(material: str, balanced: StemSet, degradation: str, rng: np.random.Generator) -> Case:
    """One A/reference pair from ``balanced`` with ``degradation`` (one of :data:`DEGRADATIONS`)."""
    base = balanced
    scored = list(balanced.names)
    if degradation == "silent stem":
        mute = scored[int(rng.integers(len(scored)))]
        base = StemSet(stems={**balanced.stems, mute: np.zeros_like(balanced.stems[mute])}, rate=balanced.rate)
        scored.remove(mute)
    perturbation = random_perturbation(scored, rng, max_stems=min(4, len(scored)))
    version_a = base.with_gains(perturbation)
    truth = {stem: -perturbation.get(stem, 0.0) for stem in scored}
    reference = base
    if degradation == "master +2.5 dB":
        version_a = version_a.with_gains({stem: MASTER_DB for stem in version_a.names})
        truth = {stem: value - MASTER_DB for stem, value in truth.items()}
    elif degradation in ("mp3 128k", "aac 128k"):
        reference = lossy_copy(base, codec="mp3" if degradation.startswith("mp3") else "aac")
        truth = {stem: value + codec_level_change(base, reference, stem) for stem, value in truth.items()}
    elif degradation == "delay 80 ms":
        reference = delayed(base, DELAY_S)
    elif degradation == "ends 1.5 s early":
        reference = cropped(base, end_s=base.duration_s - EARLY_END_S)
    return Case(material, degradation, perturbation, version_a, reference, truth, tuple(scored))


def codec_level_change(original: StemSet, encoded: StemSet, stem: str) -> float:
    """Integrated loudness of the encoded stem minus the original's, dB."""
    return integrated_loudness(encoded.stems[stem], encoded.rate) - integrated_loudness(original.stems[stem], original.rate)


ADVISORS: dict[str, Callable[[Case], Advice]] = {
    "measured": lambda case: MeasuredAdvisor(material="auto").advise(case.version_a, case.reference),
    "single-mix": lambda case: SingleMixAdvisor().advise(case.version_a),
    "equal-loudness": lambda case: EqualLoudnessAdvisor().advise(case.version_a),
}


def evaluate(cases: Iterable[Case], advisors: Sequence[str] = tuple(ADVISORS)) -> dict[tuple[str, str], list[StemError]]:
    """Stem errors per (advisor, degradation)."""
    errors: dict[tuple[str, str], list[StemError]] = {}
    for case in cases:
        for name in advisors:
            advice = ADVISORS[name](case)
            errors.setdefault((name, case.degradation), []).extend(
                stem_errors(advice, case.true_moves_db, case.scored_stems))
    return errors


def summaries(errors: dict[tuple[str, str], list[StemError]]) -> dict[tuple[str, str], Summary]:
    return {key: summarise(value) for key, value in errors.items()}


def format_table(table: dict[tuple[str, str], Summary]) -> str:
    """Advisor × degradation: MAE (dB) and direction accuracy (|true move| ≥ 1 dB)."""
    lines = [f"{'advisor':<16}{'degradation':<20}{'stems':>6}{'MAE dB':>9}{'direction':>11}"]
    for (advisor, degradation), summary in sorted(table.items()):
        direction = "—" if math.isnan(summary.direction_accuracy) else f"{100 * summary.direction_accuracy:.0f} %"
        lines.append(f"{advisor:<16}{degradation:<20}{summary.stems:>6}{summary.mae_db:>9.3f}{direction:>11}")
    return "\n".join(lines)
