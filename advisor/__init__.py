"""Advisors: turn stems (Version A, optionally a reference B) into :class:`Advice`.

Every advisor has ``name`` and ``advise(version_a, version_b, *, stems=None) -> Advice``.
torch is imported lazily, only by the audio-language model advisor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from faderwise.advisor.baselines import EqualLoudnessAdvisor, SingleMixAdvisor
from faderwise.advisor.measured import MeasuredAdvisor
from faderwise.advisor.model import ADVICE_SCHEMA, Advice, AdviceFormatError, GainMove, read_advice
from faderwise.advisor.parse import parse_moves
from faderwise.tools.stems import StemSet


class Advisor(Protocol):
    name: str

    def advise(self, version_a: StemSet, version_b: StemSet, *, stems: Sequence[str] | None = None) -> Advice: ...


ADVISOR_NAMES = ("measured", "single-mix", "equal-loudness")


def make_advisor(name: str) -> Advisor:
    """The advisor called ``name`` (one of :data:`ADVISOR_NAMES`)."""
    if name == "measured":
        return MeasuredAdvisor()
    if name == "single-mix":
        return SingleMixAdvisor()
    if name == "equal-loudness":
        return EqualLoudnessAdvisor()
    raise ValueError(f"unknown advisor {name!r}; choose from {', '.join(ADVISOR_NAMES)}")


__all__ = [
    "ADVICE_SCHEMA", "ADVISOR_NAMES", "Advice", "AdviceFormatError", "Advisor", "EqualLoudnessAdvisor", "GainMove",
    "MeasuredAdvisor", "SingleMixAdvisor", "make_advisor", "parse_moves", "read_advice",
]
