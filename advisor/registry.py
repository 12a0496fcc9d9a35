"""Every advisor faderwise offers, in one table: its name, whether it hears the reference, what it
needs installed, and how to build it.

The command line (``--advisor``), the chat (``/advisor``, the planner), the MCP server (``advise``'s
``advisor`` argument) and the config (``advisor = …``) read this table, so an advisor added here is
offered everywhere at once. A spec is a name, or for an audio-language model ``NAME:FOLDER`` (another
model of that kind: a ``faderwise train`` output, or a Qwen2-Audio base + adapter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faderwise.tools.errors import FaderwiseError

if TYPE_CHECKING:
    from faderwise.advisor import Advisor
    from faderwise.tools.analysis import ProgressCallback


class UnknownAdvisorError(FaderwiseError, ValueError):
    """An advisor spec that names no advisor of :data:`ADVISORS` (the message lists them)."""


class ReferenceNeededError(FaderwiseError):
    """An advisor that compares with a reference, asked without one."""


@dataclass(frozen=True)
class AdvisorKind:
    """One advisor faderwise offers.

    Attributes:
        name: what the producer types (``--advisor NAME``, ``/advisor NAME``).
        summary: one line: what it does.
        hears_reference: whether it compares A with the reference B (without B it cannot advise).
        extra: the ``faderwise[EXTRA]`` it needs installed, or None for the core install.
        takes_folder: whether ``NAME:FOLDER`` names another model of this kind.
        shipped_model: for an audio-language model, the folder of ``advisor/models/`` faderwise
            ships for it (None: no shipped model, as for a base before fine-tuning).
        single_mix_twin: the advisor that differs from this one only in hearing A alone (the
            research's differential against single-mix comparison pairs them).
    """

    name: str
    summary: str
    hears_reference: bool
    extra: str | None = None
    takes_folder: bool = False
    shipped_model: str | None = None
    single_mix_twin: str | None = None

    @property
    def is_model(self) -> bool:
        """Whether it is an audio-language model (torch is loaded to run it)."""
        return self.extra is not None


ADVISORS: tuple[AdvisorKind, ...] = (
    AdvisorKind("measured", "compares each stem of your mix with the reference, from measurements (BS.1770 "
                "loudness, level against the backing)", hears_reference=True, single_mix_twin="single-mix"),
    AdvisorKind("single-mix", "judges your mix alone: moves only a stem far outside the range real mixes give its "
                "kind of stem, to that range's edge",
                hears_reference=False),
    AdvisorKind("equal-loudness", "every stem to the same loudness, the mix as loud as before (a baseline)",
                hears_reference=False),
    AdvisorKind("alm", "the small audio-language model faderwise ships: hears each stem's A/B bundle",
                hears_reference=True, extra="alm", takes_folder=True, shipped_model="small-differential",
                single_mix_twin="alm-single-mix"),
    AdvisorKind("alm-single-mix", "the small audio-language model that hears your mix alone",
                hears_reference=False, extra="alm", takes_folder=True, shipped_model="small-single-mix"),
    AdvisorKind("alm-pretrained", "the pretrained miniature of Qwen2-Audio, fine-tuned with LoRA: hears each "
                "stem's A/B bundle", hears_reference=True, extra="alm-pretrained", takes_folder=True,
                shipped_model="pretrained-differential", single_mix_twin="alm-pretrained-single-mix"),
    AdvisorKind("alm-pretrained-single-mix", "the pretrained miniature that hears your mix alone",
                hears_reference=False, extra="alm-pretrained", takes_folder=True,
                shipped_model="pretrained-single-mix"),
    AdvisorKind("alm-pretrained-zero-shot", "the pretrained miniature's base before fine-tuning (the research's "
                "starting point, worse than changing nothing: for comparison only)", hears_reference=True,
                extra="alm-pretrained", takes_folder=True),
)
"""Every advisor, in the order help texts list them."""

_BY_NAME = {kind.name: kind for kind in ADVISORS}


def advisor_names() -> tuple[str, ...]:
    """The names of :data:`ADVISORS`, in order."""
    return tuple(kind.name for kind in ADVISORS)


def spelled_choices() -> str:
    """Every spec a producer may type, for messages: "measured, single-mix, …, alm[:MODEL_FOLDER], …"."""
    return ", ".join(f"{kind.name}[:MODEL_FOLDER]" if kind.takes_folder else kind.name for kind in ADVISORS)


@dataclass(frozen=True)
class AdvisorChoice:
    """A parsed spec: the advisor's kind and, for a model, the folder named after the colon."""

    kind: AdvisorKind
    folder: Path | None = None

    @property
    def spec(self) -> str:
        """The spec as typed: ``NAME`` or ``NAME:FOLDER``."""
        return self.kind.name if self.folder is None else f"{self.kind.name}:{self.folder}"


def parse_advisor(spec: str) -> AdvisorChoice:
    """The advisor ``spec`` names.

    Raises:
        UnknownAdvisorError: no such advisor, or a folder given to one that takes none.
    """
    name, colon, folder = str(spec).strip().partition(":")
    kind = _BY_NAME.get(name)
    if kind is None or (colon and not kind.takes_folder) or (colon and not folder.strip()):
        shown = spec if len(spec) <= 60 else spec[:59] + "…"
        raise UnknownAdvisorError(f"unknown advisor {shown!r}: choose {spelled_choices()}")
    return AdvisorChoice(kind, Path(folder).expanduser() if folder else None)


def default_advisor(*, has_reference: bool, preferred: str = "measured") -> AdvisorChoice:
    """The advisor a request that names none gets: ``preferred`` (the config's) with a reference;
    without one, ``preferred`` if it judges A alone, else the single-mix advisor."""
    choice = parse_advisor(preferred)
    if has_reference or not choice.kind.hears_reference:
        return choice
    return parse_advisor("single-mix")


def require_reference(choice: AdvisorChoice, *, has_reference: bool, remedy: str) -> None:
    """Refuse an advisor that compares with a reference when there is none; ``remedy`` says how
    to give one in the caller's words (``pass --reference STEMS_B``, ``load a reference``)."""
    if choice.kind.hears_reference and not has_reference:
        raise ReferenceNeededError(f"the {choice.kind.name} advisor compares with a reference: {remedy}")


def build_advisor(choice: AdvisorChoice, *, workers: int = 1, on_progress: ProgressCallback | None = None,
                  material: str = "auto", alm_model: Path | None = None) -> Advisor:
    """The advisor ``choice`` names, ready to advise.

    Args:
        choice: from :func:`parse_advisor`.
        workers: processes measuring the stems (the DSP advisors).
        on_progress: told how far measuring (or, for a model, hearing the stems) is.
        material: for ``measured``: is the reference the same song (``same``), another (``different``), or
            ``auto`` (detected).
        alm_model: the folder the bare name ``alm`` means (the config's ``alm_model``); default the
            model faderwise ships.

    Raises:
        MissingDependencyError: a model whose extra is not installed (one line saying what to install).
        ModelLoadError: a model folder that holds no model.
    """
    return _BUILDERS[choice.kind.name](choice, workers=workers, on_progress=on_progress, material=material,
                                       alm_model=alm_model)


def _measured(choice: AdvisorChoice, *, workers: int, on_progress: Any, material: str, alm_model: Any) -> Advisor:
    from faderwise.advisor.measured import MeasuredAdvisor

    return MeasuredAdvisor(material=material, workers=workers, on_progress=on_progress)  # type: ignore[arg-type]


def _single_mix(choice: AdvisorChoice, *, workers: int, on_progress: Any, material: str, alm_model: Any) -> Advisor:
    from faderwise.advisor.baselines import SingleMixAdvisor

    return SingleMixAdvisor(workers=workers, on_progress=on_progress)  # type: ignore[return-value]


def _equal_loudness(choice: AdvisorChoice, *, workers: int, on_progress: Any, material: str,
                    alm_model: Any) -> Advisor:
    from faderwise.advisor.baselines import EqualLoudnessAdvisor

    return EqualLoudnessAdvisor(workers=workers, on_progress=on_progress)  # type: ignore[return-value]


def model_spec(choice: AdvisorChoice, *, alm_model: Path | None) -> str:
    """Which model ``choice`` runs, as a spec with its folder: the bare ``alm`` is ``alm_model`` (the
    config's) when one is set; any other spec is itself."""
    if choice.kind.name == "alm" and choice.folder is None and alm_model is not None:
        return f"alm:{alm_model}"
    return choice.spec


def _model(choice: AdvisorChoice, *, workers: int, on_progress: Any, material: str, alm_model: Any) -> Advisor:
    from faderwise.advisor.alm import alm_advisor  # torch loads only when a model is asked for

    advisor = alm_advisor(model_spec(choice, alm_model=alm_model))
    advisor.on_progress = on_progress
    return advisor


_BUILDERS: dict[str, Callable[..., Advisor]] = {
    "measured": _measured, "single-mix": _single_mix, "equal-loudness": _equal_loudness,
    **{kind.name: _model for kind in ADVISORS if kind.is_model},
}
