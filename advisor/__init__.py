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
from faderwise.tools.analysis import ProgressCallback
from faderwise.tools.stem_files import StemSource


class Advisor(Protocol):
    name: str

    def advise(self, version_a: StemSource, version_b: StemSource, *, stems: Sequence[str] | None = None) -> Advice: ...


ADVISOR_NAMES = ("measured", "single-mix", "equal-loudness")


def make_advisor(name: str, *, workers: int = 1, on_progress: ProgressCallback | None = None) -> Advisor:
    """The advisor called ``name`` (one of :data:`ADVISOR_NAMES`), measuring with ``workers``
    processes and reporting to ``on_progress``."""
    if name == "measured":
        return MeasuredAdvisor(workers=workers, on_progress=on_progress)
    if name == "single-mix":
        return SingleMixAdvisor(workers=workers, on_progress=on_progress)
    if name == "equal-loudness":
        return EqualLoudnessAdvisor(workers=workers, on_progress=on_progress)
    raise ValueError(f"unknown advisor {name!r}; choose from {', '.join(ADVISOR_NAMES)}")


__all__ = [
    "ADVICE_SCHEMA", "ADVISOR_NAMES", "Advice", "AdviceFormatError", "Advisor", "EqualLoudnessAdvisor", "GainMove",
    "MeasuredAdvisor", "SingleMixAdvisor", "make_advisor", "parse_moves", "read_advice",
]
