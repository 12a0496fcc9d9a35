"""The audio-language model advisor: a Qwen2-Audio (base + LoRA adapter, or a full model) that
hears the A/B bundle of each stem and writes the advice; :func:`faderwise.advisor.parse.parse_moves` turns
its words into moves.

The differential model hears the bundle's four clips in a fixed order — target A, backing A,
target B, backing B — each as ``Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>`` in the chat
template; the processor expands each ``<|AUDIO|>`` to as many tokens as its clip has encoder
frames (never expanded by hand). The single-mix model hears one clip, Version A's mix. Clips are
16 kHz mono and at most 30 s (the bundle's window selector guarantees it).

Needs the ``[alm]`` extra; torch is imported only when a model is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faderwise.advisor.constrained import DECODINGS, decode_in_grammar
from faderwise.advisor.explain import SPELLINGS, as_it_is, instruction, join
from faderwise.advisor.model import Advice, GainMove
from faderwise.advisor.parse import parse_moves
from faderwise.advisor.registry import ADVISORS, parse_advisor
from faderwise.advisor.stem_names import require_stems
from faderwise.tools.analysis import ProgressCallback
from faderwise.tools.bundle import (
    ALM_RATE,
    CLIP_NAMES,
    MAX_CLIP_S,
    alm_clip,
    make_bundle,
    select_window,
    target_activity,
)
from faderwise.tools.errors import FaderwiseError, MissingDependencyError
from faderwise.tools.input_files import MODEL_SETTINGS_LIMIT_BYTES, exists_as_file
from faderwise.tools.json_files import read_json
from faderwise.tools.outputs import note_input
from faderwise.tools.stem_files import StemSource

SYSTEM_PROMPT = ("You are faderwise, a mixing assistant. You advise gain changes only: which stem faders to move, "
                 "by how many dB, and why.")
CLIP_DESCRIPTIONS = {
    "target_a": "the {stem} in the producer's mix (Version A)",
    "backing_a": "everything else in the producer's mix",
    "target_b": "the {stem} in the balanced reference (Version B)",
    "backing_b": "everything else in the reference",
}
# A model states a move to within this, either way, when it gives one number.
STATED_MOVE_HALF_WIDTH_DB = 1.0
REPRESENTATIONS = ("bundle", "bundle+delta", "bundle+ruler", "ruler")
"""How a differential model hears a stem: ``bundle``, the four clips, each encoded on its own;
``bundle+delta``, the four clips and a fifth input, the target's features in A minus those in B,
frame by frame (a gain change is a constant offset there, where the four clips leave the model to
compare levels across clips it encodes apart); or ``bundle+ruler``, the four clips and a fifth
input that draws the target's A − B level difference of every frame as a ruler
(:func:`level_ruler`), a level-preserving front end: the size of a difference is where the ruler's
edge falls, which the encoder's normalisations keep, where they scale a constant offset away;
``ruler``, the ruler alone (what ``ruler_warmup_steps`` of a training run hear first, so that a new
projector learns to read the ruler before it has four clips to look past)."""
RULER_DB = (-16.0, 16.0)
"""The span of the level ruler, dB (a difference outside it reads as the ruler's end): the largest
move the synthesis draws (12 dB) with room to spare, across the features' mel bins (Qwen2-Audio's 128:
0.25 dB a bin; Whisper tiny.en's 80: 0.41 dB a bin)."""
RULER_GATE_DB = 40.0
"""A frame is drawn on the ruler when the target plays in it, in A and in B: within this many dB of
the clip's loudest frame, and above :data:`RULER_SILENCE_DB`. Frames where it does not are left
blank (0)."""
RULER_SILENCE_DB = -70.0
"""Frame power, dB on the features' scale, below which a frame is silence: digital silence is the
extractor's floor, 1e-10 a bin (-79 dB over 128 bins)."""
MODEL_SETTINGS = "faderwise_alm.json"
"""The file in a model folder that says how the model hears (``representation``)."""
PRETRAINED_BASE = "alm-pretrained-base"
"""A model's base when it is the pretrained miniature assembled from the installed bases
(:mod:`faderwise.advisor.pretrained`): ``model:`` in a training config, ``base`` in :data:`MODEL_SETTINGS`."""


class ModelLoadError(FaderwiseError):
    """A model folder that holds no Qwen2-Audio model or adapter."""


SHIPPED_MODELS: dict[str, str | None] = {kind.name: kind.shipped_model for kind in ADVISORS if kind.is_model}
"""Audio-language advisor name → the model faderwise ships for it in ``advisor/models/``, as the
registry (:data:`faderwise.advisor.registry.ADVISORS`, which also says whether it hears the
reference) gives it. ``alm``: the small model trained
from scratch; ``alm-pretrained``: LoRA and projector trained on the pretrained miniature
(:mod:`faderwise.advisor.pretrained`), whose base is assembled from the installed bases;
``alm-pretrained-zero-shot``: that base before fine-tuning, as the fine-tuned model hears (the
research's starting point; None: no shipped model). Each takes ``:FOLDER`` for another model."""


ZERO_SHOT_TOKENS = 48
"""The longest answer of ``alm-pretrained-zero-shot``, tokens (its own words run on; the fine-tuned
models' answers are about 12)."""


def shipped_model(*, differential: bool, kind: str | None = None) -> Path:
    """The model faderwise ships (``advisor/models/``) for ``kind`` (default: the small
    differential or single-mix model).

    Raises:
        ModelLoadError: this install lacks it.
    """
    from importlib import resources

    name = SHIPPED_MODELS[kind or ("alm" if differential else "alm-single-mix")]
    if name is None:
        raise ModelLoadError(f"{kind} is a base, not a shipped model")
    folder = Path(str(resources.files("faderwise.advisor") / "models" / name))
    if not (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file():
        raise ModelLoadError(f"{folder}: the shipped {name} model is missing from this "
                             "install; name a model with alm:FOLDER")
    return folder


def alm_advisor(name: str, *, decoding: str = "constrained") -> AudioLanguageAdvisor:
    """The audio-language advisor called ``name`` (``KIND`` or ``KIND:FOLDER``, :data:`SHIPPED_MODELS`),
    decoding its answers as ``decoding`` says (:data:`~faderwise.advisor.constrained.DECODINGS`).

    Raises:
        ModelLoadError: an unknown kind, or a shipped model missing from the install.
        MissingDependencyError: a pretrained kind whose bases are not installed (one line that says
            what to install).
    """
    kind, _, folder = name.partition(":")
    if kind not in SHIPPED_MODELS:
        raise ModelLoadError(f"{name!r}: not an audio-language advisor ({', '.join(SHIPPED_MODELS)})")
    differential = parse_advisor(kind).kind.hears_reference
    if folder:
        return AudioLanguageAdvisor(folder, differential=differential, decoding=decoding)
    if kind == "alm-pretrained-zero-shot":
        from faderwise.advisor.pretrained import assembled_base

        # it answers in its own words, not in a few templated ones: 48 tokens hold a stated move
        return AudioLanguageAdvisor(assembled_base(), differential=True, representation="bundle+ruler",
                                    max_new_tokens=ZERO_SHOT_TOKENS, decoding=decoding)
    if kind.startswith("alm-pretrained"):
        from faderwise.advisor.pretrained import require_bases

        require_bases()  # before the adapter loads: say what to install, in one line
    return AudioLanguageAdvisor(shipped_model(differential=differential, kind=kind), differential=differential,
                                decoding=decoding)


def require_alm() -> None:
    """Raise a clear error when the ``[alm]`` extra is missing."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("the audio-language model needs torch and transformers: "
                                     "pip install 'faderwise[alm]'") from exc


def question(stem: str, *, differential: bool, representation: str = "bundle") -> str:
    """The producer's question that follows the clips."""
    if differential and representation == "ruler":
        return (f"Audio 1: {FIFTH_INPUTS['bundle+ruler'].format(stem=stem)}. How should the {stem} fader move so "
                "that the mix matches the reference?")
    if differential:
        heard = [f"Audio {i}: {CLIP_DESCRIPTIONS[name].format(stem=stem)}" for i, name in enumerate(CLIP_NAMES, start=1)]
        if representation in FIFTH_INPUTS:
            heard.append(f"Audio {len(heard) + 1}: {FIFTH_INPUTS[representation].format(stem=stem)}")
        return f"{'; '.join(heard)}. How should the {stem} fader move so that the mix matches the reference?"
    return f"Audio 1: the producer's mix. How should the {stem} fader move?"


FIFTH_INPUTS = {"bundle+delta": "the {stem} in the producer's mix against the reference",
                "bundle+ruler": "a ruler of the {stem}'s level in the producer's mix against the reference"}
"""What the question says of each representation's fifth input."""


def conversation(stem: str, *, differential: bool, representation: str = "bundle") -> list[dict[str, Any]]:
    """Chat messages for the processor's template: the system prompt, then the clips and the question."""
    clips = (len(CLIP_NAMES) + (representation in FIFTH_INPUTS)) if differential and representation != "ruler" else 1
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": [*({"type": "audio"} for _ in range(clips)),
                                     {"type": "text", "text": question(stem, differential=differential,
                                                                       representation=representation)}]},
    ]


def check_clips(clips: Sequence[np.ndarray], *, differential: bool, max_s: float = MAX_CLIP_S) -> list[np.ndarray]:
    """Mono 16 kHz clips as 1-D float32 arrays: four (differential) or one (single-mix), each at
    most ``max_s`` seconds (what the model's encoder hears)."""
    expected = len(CLIP_NAMES) if differential else 1
    if len(clips) != expected:
        raise ValueError(f"the {'differential' if differential else 'single-mix'} model hears {expected} "
                         f"clip(s), got {len(clips)}")
    flat = []
    for index, clip in enumerate(clips):
        clip = np.asarray(clip, dtype=np.float32)
        if clip.ndim == 2 and clip.shape[0] == 1:
            clip = clip[0]
        if clip.ndim != 1:
            raise ValueError(f"clip {index + 1}: expected mono (samples,) or (1, samples), got shape {clip.shape}")
        if clip.size > max_s * ALM_RATE:
            raise ValueError(f"clip {index + 1}: {clip.size / ALM_RATE:.1f} s is over the encoder's {max_s:g} s")
        flat.append(clip)
    return flat


def fit_clips(clips: Sequence[np.ndarray], *, max_s: float) -> list[np.ndarray]:
    """The clips cut to one window of at most ``max_s`` seconds, where the first clip (target A,
    or A's mix) plays longest (:func:`~faderwise.tools.bundle.select_window`); the same window for
    every clip, so the bundle stays aligned. Clips no longer than ``max_s`` are returned as they are.

    A bundle written for a longer window (a dataset's 10 s bundles) is heard this way by a model
    whose encoder hears less (the pretrained miniature's 2 s)."""
    flat = [np.asarray(clip, dtype=np.float32) for clip in clips]
    longest = max(clip.shape[-1] for clip in flat) / ALM_RATE
    if longest <= max_s:
        return flat
    first = flat[0].reshape(1, -1)
    start_s, _ = select_window(target_activity(first, ALM_RATE), duration_s=first.shape[1] / ALM_RATE,
                                    max_s=max_s)
    start, stop = int(round(start_s * ALM_RATE)), int(round(start_s * ALM_RATE)) + int(round(max_s * ALM_RATE))
    return [np.ascontiguousarray(clip[..., start:min(stop, clip.shape[-1])]) for clip in flat]


def model_inputs(processor: Any, clips: Sequence[np.ndarray], stem: str, *, differential: bool,
                 answer: str | None = None, representation: str = "bundle") -> dict[str, Any]:
    """The processor's tensors (a batch of 1) for the prompt, followed by ``answer`` if given.

    With a representation that adds a fifth input (``bundle+delta``, ``bundle+ruler``) it follows
    the four clips: it takes target A's place in the processor (so the prompt expands to the right
    number of audio tokens) and its features are then replaced by the difference or the ruler
    (:data:`REPRESENTATIONS`).
    """
    if representation not in REPRESENTATIONS:
        raise ValueError(f"representation {representation!r}: choose {', '.join(REPRESENTATIONS)}")
    window = processor.feature_extractor.chunk_length
    flat = check_clips(fit_clips(clips, max_s=window), differential=differential, max_s=window)
    fifth = differential and representation in FIFTH_INPUTS
    prompt = processor.apply_chat_template(conversation(stem, differential=differential, representation=representation),
                                           add_generation_prompt=True, tokenize=False)
    text = prompt if answer is None else f"{prompt}{answer}<|im_end|>"
    if differential and representation == "ruler":
        return _ruler_inputs(processor, flat, text)
    inputs = dict(processor(text=text, audio=[*flat, flat[0]] if fifth else flat, sampling_rate=ALM_RATE,
                            return_tensors="pt"))
    if fifth:
        features = inputs["input_features"]
        features[4] = fifth_input(representation, features[0], features[2])
    return inputs


def _ruler_inputs(processor: Any, flat: list[np.ndarray], text: str) -> dict[str, Any]:
    """The processor's tensors for the ruler alone: target A's place, its features replaced by the
    ruler drawn from target A's and target B's (each extracted as the processor extracts a clip)."""
    inputs = dict(processor(text=text, audio=[flat[0]], sampling_rate=ALM_RATE, return_tensors="pt"))
    target_b = processor.feature_extractor(flat[2], sampling_rate=ALM_RATE, return_tensors="pt")["input_features"][0]
    features = inputs["input_features"]
    features[0] = level_ruler(features[0], target_b.to(features.dtype))
    return inputs


def fifth_input(representation: str, target_a: Any, target_b: Any) -> Any:
    """The fifth input of ``representation`` from the Whisper features of the target in A and in B
    (``(mel_bins, frames)`` tensors of one processor call): their difference, frame by frame
    (``bundle+delta``), or the level ruler (``bundle+ruler``, :func:`level_ruler`)."""
    if representation == "bundle+delta":
        return target_a - target_b
    if representation == "bundle+ruler":
        return level_ruler(target_a, target_b)
    raise ValueError(f"representation {representation!r} has no fifth input")


def frame_level_db(features: Any) -> Any:
    """Power of every frame, dB, from Whisper features ``(mel_bins, frames)``: the extractor's
    ``(log10 P + 4) / 4`` undone and summed over the bins (its floor, 80 dB below the clip's
    loudest cell, adds nothing that matters). Returns ``(frames,)``."""
    import torch

    return 10 * torch.log10(torch.pow(10.0, 4 * features.double() - 4).sum(dim=0))


def level_ruler(target_a: Any, target_b: Any) -> Any:
    """The ``bundle+ruler`` input: the target's level in A minus its level in B, frame by frame,
    drawn as a thermometer across the mel bins.

    Bin ``k`` of a frame is +1 where the frame's difference (dB) is above the ``k``-th of 128
    evenly spaced marks over :data:`RULER_DB` and -1 where it is not, so a gain change of ``g`` dB
    puts the edge ``4 g`` bins from the middle in every frame the target plays in (in A and in B,
    within :data:`RULER_GATE_DB` of its loudest frame, not silent); other frames are 0.

    Args:
        target_a, target_b: Whisper features of the target in A and in B, ``(mel_bins, frames)``
            tensors of one processor call (same frames).

    Returns:
        A float tensor of ``target_a``'s shape and dtype.
    """
    import torch

    level_a, level_b = frame_level_db(target_a), frame_level_db(target_b)
    playing = ((level_a >= level_a.max() - RULER_GATE_DB) & (level_b >= level_b.max() - RULER_GATE_DB)
               & (level_a > RULER_SILENCE_DB) & (level_b > RULER_SILENCE_DB))
    marks = torch.linspace(*RULER_DB, target_a.shape[0], dtype=torch.float64)
    ruler = torch.where((level_a - level_b)[None, :] > marks[:, None], 1.0, -1.0)
    return (ruler * playing[None, :]).to(target_a.dtype)


def model_settings(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The model folder's :data:`MODEL_SETTINGS` (empty when it has none).

    Raises:
        ModelLoadError: the file is not JSON, or cannot be read.
        NotAFileError: it is a named pipe (FIFO), a socket or a device.
        InputTooLargeError: larger than :data:`~faderwise.tools.input_files.MODEL_SETTINGS_LIMIT_BYTES`.
    """
    settings = Path(folder) / MODEL_SETTINGS
    if not exists_as_file(settings, what="model settings", limit=MODEL_SETTINGS_LIMIT_BYTES):
        return {}
    return read_json(settings, error=ModelLoadError, limit=MODEL_SETTINGS_LIMIT_BYTES,  # type: ignore[return-value]
                     what="model settings")


def model_setting(folder: str | os.PathLike[str], key: str, choices: Sequence[str]) -> str:
    """The model's choice of ``key`` in its :data:`MODEL_SETTINGS`, one of ``choices`` (the first when
    it names none).

    Raises:
        ModelLoadError: it names one that is not in ``choices``.
    """
    found = model_settings(folder).get(key, choices[0])
    if found not in choices:
        raise ModelLoadError(f"{Path(folder) / MODEL_SETTINGS}: {key} {found!r} is not one of {', '.join(choices)}")
    return str(found)


def model_representation(folder: str | os.PathLike[str]) -> str:
    """How the model in ``folder`` hears (its :data:`MODEL_SETTINGS`; ``bundle`` when it has none)."""
    return model_setting(folder, "representation", REPRESENTATIONS)


def freeze_fixed_positions(model: Any) -> Any:
    """Keep the audio encoder's sinusoidal position table fixed, as Whisper defines it: a freshly
    built model freezes it, ``from_pretrained`` does not."""
    for name, module in model.named_modules():
        if name.endswith("audio_tower.embed_positions"):
            module.requires_grad_(False)
    return model


def nf4_config() -> Any:
    """4-bit NF4 weights with double quantisation and bf16 compute (QLoRA's base). The projector
    (small, and trained in full where it is new) and the output layer stay in full precision."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16,
                              # module paths as transformers 4 (a substring) and 5 (a prefix) match them
                              llm_int8_skip_modules=["multi_modal_projector", "model.multi_modal_projector", "lm_head"])


def load_model(folder: str | os.PathLike[str], *, four_bit: bool = False) -> tuple[Any, Any]:
    """A Qwen2-Audio and its processor from ``folder``: a full (or merged) model, or a LoRA
    adapter whose config names its base. ``four_bit`` loads the base in NF4 (bitsandbytes).

    Raises:
        ModelLoadError: the folder holds neither.
    """
    require_alm()
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    folder = Path(folder)
    note_input(folder)  # no output may replace the model being read
    if not (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file():
        raise ModelLoadError(f"{folder}: no Qwen2-Audio model here (no config.json or adapter_config.json)")
    import torch

    # a half-precision model (the assembled base is stored in float16) runs in float32 on the CPU
    options: dict[str, Any] = {"quantization_config": nf4_config()} if four_bit else {"dtype": torch.float32}
    if (folder / "adapter_config.json").is_file():
        from peft import PeftConfig, PeftModel

        base_path = adapter_base(folder, PeftConfig.from_pretrained(folder).base_model_name_or_path)
        note_input(base_path)
        # an adapter shipped without its processor uses its base's (the tokenizer is the base's anyway)
        processor = AutoProcessor.from_pretrained(folder if (folder / "processor_config.json").is_file() else base_path)
        base = Qwen2AudioForConditionalGeneration.from_pretrained(base_path, **options)
        return PeftModel.from_pretrained(base, folder), processor
    processor = AutoProcessor.from_pretrained(folder)
    return freeze_fixed_positions(Qwen2AudioForConditionalGeneration.from_pretrained(folder, **options)), processor


def adapter_base(folder: Path, recorded: str) -> Path:
    """The base of the adapter in ``folder``: the pretrained miniature assembled on this machine when
    the adapter was trained on it (its :data:`MODEL_SETTINGS` say ``"base": "alm-pretrained-base"``;
    the path recorded at training time is another machine's cache), else the recorded path.

    An adapter that records which bases it was trained on (``base_name``, the assembled base's
    folder name) gets those bases or an error; one that records none (the shipped adapters) was
    trained on the pinned bases, and a base named in their place must be the pinned one.

    Raises:
        ModelLoadError: the bases named now are not the ones the adapter was trained on.
        BaseMismatchError: an adapter without a record, on a named base that is not the pinned one.
    """
    settings = model_settings(folder)
    if settings.get("base") != PRETRAINED_BASE:
        return Path(recorded)
    from faderwise.advisor.pretrained import assembled_base

    trained_on = settings.get("base_name")
    base = assembled_base(pinned=trained_on is None)
    if trained_on is not None and base.name != trained_on:
        raise ModelLoadError(f"{folder}: trained on the bases of {trained_on}, but the bases named now assemble "
                             f"{base.name}; name the bases it was trained on")
    return base


def stated_sentence(stem: str, delta_db: float | None) -> str:
    """What the producer reads of one stem's answer: the move it stated for ``stem`` (a "leave" for
    0 dB), or that it stated none ("The model gave no move for the vocals.")."""
    if delta_db is None:
        return f"The model gave no move for the {stem}."
    if delta_db == 0.0:
        return f"Leave the {stem} {as_it_is(stem)}."
    return f"{instruction(stem, delta_db)}."


@dataclass(frozen=True)
class StemAnswer:
    """A model's answer for one stem: its words, the move they state for that stem (dB, positive =
    raise; 0.0 for a leave; None when the words state none), and, decoded in the grammar, the
    model's probability of each verb (``raise``, ``lower``, ``leave``)."""

    text: str
    move_db: float | None
    verb_probabilities: dict[str, float] | None = None


class AudioLanguageAdvisor:
    """Advice written by an audio-language model that hears each stem's bundle.

    Args:
        folder: a trained model or adapter (``faderwise train``'s ``final`` folder, or a Qwen2-Audio
            base + adapter).
        differential: the model hears the 4-clip bundle (True) or A's mix alone.
        max_new_tokens: the longest free-text answer per stem.
        decoding: ``constrained`` (the answer in the training text's grammar: the verb scored, the
            asked stem's name forced, then the amount; :mod:`faderwise.advisor.constrained`) or
            ``free`` (greedy, any words: the research comparison's other decoding).
    """

    name = "alm"

    def __init__(self, folder: str | os.PathLike[str], *, differential: bool = True, max_new_tokens: int = 96,
                 four_bit: bool = False, representation: str | None = None, decoding: str = "constrained") -> None:
        if decoding not in DECODINGS:
            raise ValueError(f"decoding {decoding!r}: choose {' or '.join(DECODINGS)}")
        self.decoding = decoding
        self.folder = Path(folder)
        self.differential = differential
        self.max_new_tokens = max_new_tokens
        self.model, self.processor = load_model(folder, four_bit=four_bit)
        self.representation = (representation or model_representation(folder)) if differential else "bundle"
        self.spelling = model_setting(folder, "amount_spelling", SPELLINGS)
        """How the model writes its amounts (:data:`~faderwise.advisor.explain.SPELLINGS`)."""
        self.model.eval()
        self.on_progress: ProgressCallback | None = None
        """Told before each stem is heard: (stems done, stems in all, which one now)."""

    def decode(self, clips: Sequence[np.ndarray], stem: str) -> StemAnswer:
        """The model's answer for one stem, decoded as :attr:`decoding` says, and the move it states."""
        import torch

        inputs = model_inputs(self.processor, clips, stem, differential=self.differential,
                              representation=self.representation)
        tokenizer = self.processor.tokenizer
        end = tokenizer.convert_tokens_to_ids("<|im_end|>")  # the chat template closes each turn with it
        if self.decoding == "constrained":
            found = decode_in_grammar(self.model, tokenizer, inputs, stem, end_id=end, spelling=self.spelling)
            return StemAnswer(found.text, found.move_db, found.verb_probabilities)
        with torch.no_grad():
            generated = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                            eos_token_id=end, pad_token_id=tokenizer.pad_token_id or end)
        said = tokenizer.decode(generated[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        # only a move stated for the stem asked about counts: an answer naming another stem states none
        stated = [move.delta_db for move in parse_moves(said, [stem]) if move.stem == stem]
        return StemAnswer(said, stated[0] if stated else None)

    def answer(self, clips: Sequence[np.ndarray], stem: str) -> str:
        """The model's words for one stem (:meth:`decode`)."""
        return self.decode(clips, stem).text

    def advise(self, version_a: StemSource, version_b: StemSource | None = None, *,
               stems: Sequence[str] | None = None) -> Advice:
        """One answer per stem of A (or of ``stems``); each stated move becomes a :class:`GainMove`."""
        if self.differential and version_b is None:
            raise FaderwiseError("the differential audio-language model hears a reference: pass --reference")
        wanted = require_stems(stems, version_a.names, label=version_a.label) if stems else list(version_a.names)
        texts, moves, facts = [], [], {}
        for index, stem in enumerate(wanted):
            if self.on_progress is not None:
                self.on_progress(index, len(wanted), f"the model hears the {stem}")
            bundle = make_bundle(version_a, version_b if version_b is not None else version_a, stem,
                                 max_s=self.processor.feature_extractor.chunk_length)
            if self.differential:
                clips = [alm_clip(audio, bundle.rate) for audio in bundle.clips().values()]
            else:
                clips = [alm_clip(bundle.target_a + bundle.backing_a, bundle.rate)]
            found = self.decode(clips, stem)
            facts[stem] = {"answer": found.text, "decoding": self.decoding,
                           "status": "no-move-stated" if found.move_db is None else "stated"}
            if found.verb_probabilities is not None:
                facts[stem]["verb_probabilities"] = {verb: round(p, 4) for verb, p in found.verb_probabilities.items()}
            texts.append(stated_sentence(stem, found.move_db))
            if found.move_db:
                delta = found.move_db
                moves.append(GainMove(stem=stem, delta_db=delta, low_db=delta - STATED_MOVE_HALF_WIDTH_DB,
                                      high_db=delta + STATED_MOVE_HALF_WIDTH_DB))
        if self.on_progress is not None:
            self.on_progress(len(wanted), len(wanted), "the model has heard every stem")
        # The text is built from the moves, never the model's own words: an answer that named another
        # stem, or no number, must not read as a move (its words stay in the evidence, per stem).
        return Advice(advisor=f"{self.name}:{self.folder}", moves=tuple(moves), text=join(texts),
                      evidence={"mode": "alm-differential" if self.differential else "alm-single-mix",
                                "stems": facts})
