"""The advisors an evaluation compares, each answering one test item (a synthesized bundle) in
words; the words are what gets scored (their moves are parsed back, as for any advisor).

Names: ``measured`` (DSP, hears A and B), ``single-mix`` (A only: a stem far outside the range real mixes give its kind is moved to its edge),
``equal-loudness`` (A only), ``alm`` / ``alm-single-mix`` (the shipped small audio-language
models), ``alm-pretrained`` / ``alm-pretrained-single-mix`` (the fine-tuned pretrained miniature)
and ``alm-pretrained-zero-shot`` (its base before fine-tuning; :data:`faderwise.advisor.registry.ADVISORS`),
``alm:PATH`` / ``alm-single-mix:PATH`` (another one), any of these after ``free-text:`` (its
answers decoded as free text, not in the grammar of its training text), ``llm:SPEC`` /
``llm-single-mix:SPEC`` (a chat model given the bundle's measured levels as text: of A and B,
or of A only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from faderwise.advisor.registry import ADVISORS, build_advisor, parse_advisor, spelled_choices
from faderwise.tools.audio_io import read_audio
from faderwise.tools.bundle import ABBundle, read_bundle
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.input_files import MANIFEST_LIMIT_BYTES, exists_as_file, read_text_bounded
from faderwise.tools.outputs import note_input

NO_CHANGE = "no-change"
"""The floor every advisor must beat (it leaves every stem as it is): the evaluation's own advisor."""
LLM_KINDS = ("llm", "llm-single-mix")
"""A text language model given the measurements (``llm:SPEC``): the evaluation's own, with its twin."""
DSP_ADVISORS = (*(kind.name for kind in ADVISORS if not kind.is_model), NO_CHANGE)
"""The advisors the registry offers that are no model, and the floor: each answers from the bundle's clips."""
SINGLE_MIX_TWINS = {**{kind.name: kind.single_mix_twin for kind in ADVISORS if kind.single_mix_twin},
                    LLM_KINDS[0]: LLM_KINDS[1]}
"""The kinds of advisor that hear Version B → their twin that hears only A (the registry's, and the LLM's)."""


class EvalConfigError(FaderwiseError):
    """An evaluation config, advisor name or test set that cannot be used (the message names it)."""


@dataclass(frozen=True)
class EvalItem:
    """One test item of a ``faderwise synth`` manifest."""

    dataset: Path
    record: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def target(self) -> str:
        return str(self.record["target"])

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(self.record["stems"])

    @property
    def true_move_db(self) -> float:
        return float(self.record["target_move_db"])

    @property
    def material(self) -> str:
        """What kind of music the item comes from (``procedural``, ``musdb18``, ``rendered``…), for
        the per-material figures; derived from the source for datasets written before it was recorded."""
        found = self.record.get("material")
        if found:
            return str(found)
        source = str(self.record.get("source", ""))
        if source.startswith("procedural:"):
            return "procedural"
        return "musdb18" if ".stem.mp4" in source or "musdb" in source.casefold() else "multitrack"

    @property
    def perturbed_stems(self) -> int:
        return int(self.record["difficulty"]["perturbed_stems"])

    @property
    def consensus_range_db(self) -> tuple[float, float] | None:
        """The range of the target's move that several engineers' mixes agree on, if known."""
        found = self.record.get("consensus_range_db")
        return (float(found[0]), float(found[1])) if found else None

    @cached_property
    def bundle(self) -> ABBundle:
        return read_bundle(self.dataset / self.record["bundle"], alm=True)

    def mix_a(self) -> np.ndarray:
        """Version A's mix around the target's window, 16 kHz mono ``(samples,)``."""
        return read_audio(self.dataset / self.record["mix_a"], min_duration_s=0.0)[0][0]


def read_items(dataset: Path, *, split: str, limit: int | None = None, sample: int | None = None) -> list[EvalItem]:
    """The manifest's items of ``split`` (first ``limit``), in manifest order; with ``sample``,
    that many spread evenly over them (every song of a split written song by song has its share),
    for an advisor too slow to answer them all."""
    note_input(dataset)
    manifest = dataset / "manifest.jsonl"
    if not exists_as_file(manifest, what="a manifest", limit=MANIFEST_LIMIT_BYTES):
        raise EvalConfigError(f"{manifest}: no manifest; make the test set with faderwise synth")
    records = [json.loads(line) for line in read_text_bounded(manifest, limit=MANIFEST_LIMIT_BYTES,
                                                              what="a manifest").splitlines() if line.strip()]
    items = [EvalItem(dataset, r) for r in records if r["split"] == split][:limit]
    if sample is not None and sample < len(items):
        items = [items[int(i)] for i in np.unique(np.linspace(0, len(items) - 1, max(sample, 1)).round())]
    if not items:
        raise EvalConfigError(f"{manifest}: no items in the {split!r} split")
    return items


class EvalAdvisor(Protocol):
    name: str
    hears_reference: bool

    def answer(self, item: EvalItem) -> str: ...


@dataclass
class DSPAdvisor:
    """The measured, single-mix or equal-loudness advisor on the bundle's 16 kHz clips, or
    ``no-change``, the floor every advisor must beat: it leaves every stem as it is."""

    name: str

    @property
    def hears_reference(self) -> bool:
        return self.name != NO_CHANGE and parse_advisor(self.name).kind.hears_reference

    def answer(self, item: EvalItem) -> str:
        from faderwise.advisor.explain import is_plural

        if self.name == NO_CHANGE:
            return f"Leave the {item.target} as {'they are' if is_plural(item.target) else 'it is'}."
        return build_advisor(parse_advisor(self.name)).advise_bundle(item.bundle).text  # type: ignore[union-attr]


FREE_TEXT = "free-text:"
"""Put before an audio-language advisor's name (``free-text:alm``), it answers in free text (greedy,
any words) instead of in its training text's grammar: the research comparison of the two decodings
(:data:`faderwise.advisor.constrained.DECODINGS`)."""


class ALMAdvisor:
    """An audio-language model: the differential one hears the four clips, the single-mix one A's
    mix; ``free-text:NAME`` decodes it freely (:data:`FREE_TEXT`)."""

    def __init__(self, name: str) -> None:
        from faderwise.advisor.alm import alm_advisor

        self.name = name
        free = name.startswith(FREE_TEXT)
        self.model = alm_advisor(name.removeprefix(FREE_TEXT), decoding="free" if free else "constrained")
        self.hears_reference = self.model.differential

    def answer(self, item: EvalItem) -> str:
        clips = list(item.bundle.clips().values()) if self.hears_reference else [item.mix_a()]
        return self.model.answer([clip[0] if clip.ndim == 2 else clip for clip in clips], item.target)


LLM_ADVISOR_PROMPT = """You advise a music producer on fader moves (gain only: no EQ, compression or effects). \
Answer in one or two sentences: say whether to raise, lower or leave the {target}, by how many dB \
("Raise the {target} by about 3 dB"), and cite the measurements."""


class LLMAdvisor:
    """A chat model given the bundle's measured levels as text (A and B, or A only)."""

    def __init__(self, name: str, model: Any, *, differential: bool) -> None:
        self.name, self.model, self.hears_reference = name, model, differential

    def facts(self, item: EvalItem) -> str:
        """The integrated loudness (BS.1770) of the target and of everything else, in A (and B)."""
        from faderwise.tools.loudness import integrated_loudness

        bundle = item.bundle

        def level(audio: np.ndarray) -> str:
            value = integrated_loudness(audio, bundle.rate)
            return f"{value:.1f} LUFS" if np.isfinite(value) else "silence"

        text = (f"In the producer's mix (Version A) the {item.target} measures {level(bundle.target_a)} and "
                f"everything else {level(bundle.backing_a)}")
        if self.hears_reference:
            text += (f"; in the balanced reference (Version B) the {item.target} measures {level(bundle.target_b)} "
                     f"and everything else {level(bundle.backing_b)}")
        return text + "."

    def answer(self, item: EvalItem) -> str:
        from langchain_core.messages import HumanMessage, SystemMessage

        reply = self.model.invoke([SystemMessage(LLM_ADVISOR_PROMPT.format(target=item.target)),
                                   HumanMessage(self.facts(item))])
        return reply.content if isinstance(reply.content, str) else json.dumps(reply.content)


ChatModelFactory = Callable[[str], Any]


def default_chat_model(spec: str) -> Any:
    from faderwise.agent.llm import make_chat_model, parse_llm_spec

    return make_chat_model(parse_llm_spec(spec), context=dict)


def make_advisor(name: str, *, chat_model: ChatModelFactory = default_chat_model) -> EvalAdvisor:
    """The advisor called ``name`` (see the module's doc).

    Raises:
        EvalConfigError: an unknown name.
    """
    if name in DSP_ADVISORS:
        return DSPAdvisor(name)
    kind, _, argument = name.removeprefix(FREE_TEXT).partition(":")
    if kind in {advisor.name for advisor in ADVISORS if advisor.is_model}:
        return ALMAdvisor(name)
    if kind in LLM_KINDS and argument:
        return LLMAdvisor(name, chat_model(argument), differential=kind == LLM_KINDS[0])
    raise EvalConfigError(f"unknown advisor {name!r}: expected {spelled_choices()}, {NO_CHANGE}, "
                          f"{' or '.join(f'{kind}:SPEC' for kind in LLM_KINDS)} (an audio-language one may follow "
                          f"{FREE_TEXT!r})")


def hears_reference(name: str) -> bool:
    """Whether the advisor called ``name`` hears Version B (without building it)."""
    from faderwise.advisor.registry import UnknownAdvisorError, parse_advisor

    kind = name.removeprefix(FREE_TEXT).partition(":")[0]
    if kind in SINGLE_MIX_TWINS:
        return True
    try:
        return parse_advisor(kind).kind.hears_reference
    except UnknownAdvisorError:  # llm-single-mix, no-change: A alone
        return False


def single_mix_twin(name: str) -> str | None:
    """The name of the advisor that differs from ``name`` only in hearing A alone
    (``alm:PATH`` → ``alm-single-mix:PATH``), or None for an advisor that hears A alone."""
    free = FREE_TEXT if name.startswith(FREE_TEXT) else ""
    kind, colon, argument = name.removeprefix(FREE_TEXT).partition(":")
    twin = SINGLE_MIX_TWINS.get(kind)
    return None if twin is None else free + twin + colon + argument
