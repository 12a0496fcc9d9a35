"""The one way every front end advises and renders.

The command line (``faderwise advise``, ``apply``), the chat and the MCP server all call
:class:`AdviceService`: it picks the advisor (:mod:`faderwise.advisor.registry`), runs it (on
measurements the caller keeps, when it keeps them), checks the mix's headroom after the moves
(:func:`~faderwise.advisor.headroom.check_headroom`) and that the text states only moves the advice
holds (:func:`~faderwise.advisor.faithful.faithful`); and it turns advice into the gains a render
applies (only some stems, the master offset) and plans the render (peak-safe trim). A fix or a new
option here reaches all three.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from faderwise.advisor.faithful import faithful
from faderwise.advisor.headroom import check_headroom
from faderwise.advisor.model import Advice
from faderwise.advisor.registry import (
    AdvisorChoice,
    build_advisor,
    default_advisor,
    model_spec,
    parse_advisor,
    require_reference,
)
from faderwise.tools.errors import FaderwiseError, StemSetError
from faderwise.tools.render import RenderedMix, render_mix

if TYPE_CHECKING:
    from faderwise.advisor import Advisor
    from faderwise.advisor.measured import PreparedPair
    from faderwise.tools.analysis import ProgressCallback, StemSetAnalysis
    from faderwise.tools.bundle import ABBundle
    from faderwise.tools.stem_files import StemSource


class NothingToApplyError(FaderwiseError):
    """Advice that moves no fader, asked to be applied."""


class Measurements(Protocol):
    """Measurements a caller keeps between requests (the chat's workspace), so that advising does not
    measure again: A and the reference aligned and paired, and their analyses."""

    def pair(self) -> tuple[PreparedPair, StemSetAnalysis, StemSetAnalysis]: ...

    def analysis_a(self) -> StemSetAnalysis: ...


@dataclass
class AdviceService:
    """Advising and rendering, the same for every front end.

    Attributes:
        workers: processes measuring the stems (and the mix's peaks).
        preferred: the advisor a request that names none gets (the config's ``advisor``), when it can
            run: without a reference, an advisor that needs one gives way to the single-mix advisor.
        alm_model: the folder the bare advisor name ``alm`` means (the config's ``alm_model``).
    """

    workers: int = 1
    preferred: str = "measured"
    alm_model: Path | None = None
    _models: dict[str, Advisor] = field(default_factory=dict, repr=False)
    _models_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def choose(self, advisor: str | None, *, has_reference: bool, preferred: str | None = None,
               remedy: str = "pass --reference STEMS_B") -> AdvisorChoice:
        """The advisor a request gets: ``advisor`` if named, else the default for what is loaded
        (``preferred``, else :attr:`preferred`, when it can run).

        Raises:
            UnknownAdvisorError: no such advisor.
            ReferenceNeededError: it compares with a reference and there is none (``remedy`` says how to
                give one, in the front end's words).
        """
        choice = (parse_advisor(advisor) if advisor else
                  default_advisor(has_reference=has_reference, preferred=preferred or self.preferred))
        require_reference(choice, has_reference=has_reference, remedy=remedy)
        return choice

    def advise(self, version_a: StemSource, version_b: StemSource | None, *, advisor: str | None = None,
               stems: Sequence[str] | None = None, material: str = "auto",
               measurements: Measurements | None = None, on_progress: ProgressCallback | None = None,
               remedy: str = "pass --reference STEMS_B") -> Advice:
        """Advice for ``version_a`` (against ``version_b`` when the advisor hears a reference), its
        headroom checked and its text held to its moves.

        Args:
            version_a, version_b: the stems; ``version_b`` may be None for an advisor that judges A alone.
            advisor: a spec (:func:`~faderwise.advisor.registry.parse_advisor`), or None for the default.
            stems: advise on these stems of A only.
            material: for ``measured``: ``same``, ``different`` or ``auto``.
            measurements: the caller's kept measurements of these very stems; the DSP advisors read them
                instead of measuring (with ``material`` auto).
            on_progress: told how far measuring, or a model's hearing, is.
            remedy: how the front end says to give a reference.
        """
        choice = self.choose(advisor, has_reference=version_b is not None, remedy=remedy)
        name = choice.kind.name
        if measurements is not None and name == "measured" and material == "auto":
            from faderwise.advisor.measured import MeasuredAdvisor

            advice = MeasuredAdvisor(workers=self.workers).advise_analyses(*measurements.pair(), stems=stems)
        elif measurements is not None and name in ("single-mix", "equal-loudness"):
            baseline = build_advisor(choice, workers=self.workers)
            advice = baseline.advise_analysis(measurements.analysis_a(), stems=stems)  # type: ignore[attr-defined]
        else:
            chosen = self._advisor(choice, material=material, on_progress=on_progress)
            advice = chosen.advise(version_a, version_b if choice.kind.hears_reference else None,  # type: ignore[arg-type]
                                   stems=stems)
        return faithful(check_headroom(advice, version_a, workers=self.workers), version_a.names)

    def advise_bundle(self, bundle: ABBundle) -> Advice:
        """The measured advisor's advice from one A/B bundle's four clips alone."""
        from faderwise.advisor.measured import MeasuredAdvisor

        return faithful(MeasuredAdvisor().advise_bundle(bundle), bundle.stems_a)

    def _advisor(self, choice: AdvisorChoice, *, material: str, on_progress: ProgressCallback | None) -> Advisor:
        """A DSP advisor built for this request; a model loaded once per spec and kept."""
        if not choice.kind.is_model:
            return build_advisor(choice, workers=self.workers, on_progress=on_progress, material=material)
        key = self.model_key(choice)
        with self._models_lock:
            if key not in self._models:
                self._models[key] = build_advisor(choice, alm_model=self.alm_model)
            model = self._models[key]
        model.on_progress = on_progress  # type: ignore[attr-defined]
        return model

    def model_key(self, choice: AdvisorChoice) -> str:
        """Which model ``choice`` runs, as a spec with its folder: the bare ``alm`` is :attr:`alm_model`
        when one is set (a model is loaded once per key, and its answers are kept per key)."""
        return model_spec(choice, alm_model=self.alm_model)

    # -- rendering ------------------------------------------------------------------------------

    @staticmethod
    def planned_gains(advice: Advice, names: Sequence[str], *, stems: Sequence[str] | None = None,
                      master: bool = False, require_moves: bool = True) -> dict[str, float]:
        """The gains a render applies, stem → dB: the advice's moves (only those of ``stems`` if
        given), and with ``master`` its master offset added to every stem of ``names``.

        Raises:
            StemSetError: a stem of ``stems`` has no move (the advice leaves it).
            NothingToApplyError: no gain at all, with ``require_moves``.
        """
        gains = advice.gains_db()
        if stems:
            missing = [stem for stem in stems if stem not in gains]
            if missing:
                one = len(missing) == 1
                raise StemSetError(f"no pending move for {', '.join(missing)}: the advice leaves "
                                   f"{'it' if one else 'them'} as {'it is' if one else 'they are'}")
            gains = {stem: gains[stem] for stem in stems}
        if master and advice.global_offset_db:
            gains = {name: gains.get(name, 0.0) + advice.global_offset_db for name in names}
        if require_moves and not any(gains.values()):
            raise NothingToApplyError("the advice moves no fader: there is nothing to apply")
        return gains

    def render(self, version_a: StemSource, gains_db: Mapping[str, float], *, peak_safe: bool = False) -> RenderedMix:
        """The mix of ``version_a`` with ``gains_db`` applied, its peaks measured (and with ``peak_safe``
        every stem trimmed alike to the ceiling), ready for :func:`~faderwise.tools.render.write_render`."""
        return render_mix(version_a, gains_db=gains_db, peak_safe=peak_safe, workers=self.workers)
