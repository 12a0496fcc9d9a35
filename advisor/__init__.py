"""Advisors: turn stems (Version A, optionally a reference B) into :class:`Advice`.

Every advisor has ``name`` and ``advise(version_a, version_b, *, stems=None) -> Advice``; they are
listed, with how to build each, in :mod:`faderwise.advisor.registry`, and every front end advises
through :class:`faderwise.advisor.service.AdviceService`.

The names below load on first use (PEP 562): importing a light submodule (the registry, for a
command line's help) does not load the measuring code, scipy or pyloudnorm; torch is imported
only by the audio-language model advisor, when a model is loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from faderwise.advisor.baselines import EqualLoudnessAdvisor, SingleMixAdvisor
    from faderwise.advisor.measured import MeasuredAdvisor
    from faderwise.advisor.model import ADVICE_SCHEMA, Advice, AdviceFormatError, GainMove, read_advice
    from faderwise.advisor.parse import parse_moves
    from faderwise.tools.stem_files import StemSource


class Advisor(Protocol):
    name: str

    def advise(self, version_a: StemSource, version_b: StemSource, *, stems: Sequence[str] | None = None) -> Advice: ...


_LAZY = {
    "ADVICE_SCHEMA": "model", "Advice": "model", "AdviceFormatError": "model", "GainMove": "model",
    "read_advice": "model", "parse_moves": "parse", "MeasuredAdvisor": "measured",
    "SingleMixAdvisor": "baselines", "EqualLoudnessAdvisor": "baselines",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["ADVICE_SCHEMA", "Advice", "AdviceFormatError", "Advisor", "EqualLoudnessAdvisor", "GainMove",
           "MeasuredAdvisor", "SingleMixAdvisor", "parse_moves", "read_advice"]
