"""The audio-language model side: Qwen2-Audio's prompt for a bundle, its processor, a tokenizer
built in code, the small model configuration, and training examples with the loss on the answer.

The differential model hears the bundle's four clips in a fixed order — target A, backing A,
target B, backing B — each as ``Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>`` in the chat
template; the processor expands each ``<|AUDIO|>`` to as many tokens as its clip's encoder frames
(faderwise never expands them by hand). The single-mix model hears one clip: Version A's mix.
Clips are at most 30 s (the window selector guarantees it; Whisper-style encoders take no more).

Needs the ``[alm]`` extra (torch, transformers); nothing else in faderwise imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tools.bundle import ALM_RATE, CLIP_NAMES, MAX_CLIP_S
from tools.errors import MissingDependencyError

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")
SYSTEM_PROMPT = ("You are faderwise, a mixing assistant. You advise gain changes only: which stem faders to move, "
                 "by how many dB, and why.")
CLIP_DESCRIPTIONS = {
    "target_a": "the {stem} in the producer's mix (Version A)",
    "backing_a": "everything else in the producer's mix",
    "target_b": "the {stem} in the balanced reference (Version B)",
    "backing_b": "everything else in the reference",
}
MEL_BINS = 128  # Qwen2-Audio's Whisper-large-v3 features
IGNORE_INDEX = -100


def require_alm() -> None:
    """Raise a clear error when the ``[alm]`` extra is missing."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("the audio-language model needs torch and transformers: "
                                     "pip install 'faderwise[alm]'") from exc


def question(stem: str, *, differential: bool) -> str:
    """The producer's question that follows the clips."""
    if differential:
        heard = "; ".join(f"Audio {i}: {CLIP_DESCRIPTIONS[name].format(stem=stem)}"
                          for i, name in enumerate(CLIP_NAMES, start=1))
        return f"{heard}. How should the {stem} fader move so that the mix matches the reference?"
    return f"Audio 1: the producer's mix. How should the {stem} fader move?"


def conversation(stem: str, *, differential: bool) -> list[dict[str, Any]]:
    """Chat messages for the processor's template: the system prompt, then the clips and the question."""
    clips = len(CLIP_NAMES) if differential else 1
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": [*({"type": "audio"} for _ in range(clips)),
                                     {"type": "text", "text": question(stem, differential=differential)}]},
    ]


def check_clips(clips: Sequence[np.ndarray], *, differential: bool) -> list[np.ndarray]:
    """Mono 16 kHz clips as 1-D float32 arrays, four (differential) or one (single-mix), ≤ 30 s each."""
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
        if clip.size > MAX_CLIP_S * ALM_RATE:
            raise ValueError(f"clip {index + 1}: {clip.size / ALM_RATE:.1f} s is over the encoder's {MAX_CLIP_S:g} s")
        flat.append(clip)
    return flat


def build_tokenizer(texts: Iterable[str], *, vocab_size: int = 1024) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` (with Qwen2-Audio's special tokens), for
    the small model trained from scratch; a real Qwen2-Audio brings its own."""
    require_alm()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=list(SPECIAL_TOKENS[1:]))


def build_processor(tokenizer: Any) -> Any:
    """Qwen2-Audio's processor around ``tokenizer``: Whisper features (128 mel bins, 16 kHz)."""
    require_alm()
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    return Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=MEL_BINS,
                                                                         sampling_rate=ALM_RATE),
                               tokenizer=tokenizer)


@dataclass(frozen=True)
class SmallModelSize:
    """Dimensions of a small Qwen2-Audio (multiples of 64, as 4-bit kernels want)."""

    audio_width: int = 128
    audio_layers: int = 2
    audio_heads: int = 2
    text_width: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2

    def __post_init__(self) -> None:
        if self.audio_width % 64 or self.text_width % 64:
            raise ValueError(f"widths must be multiples of 64, got audio {self.audio_width}, text {self.text_width}")


def small_model(tokenizer: Any, size: SmallModelSize = SmallModelSize(), *, seed: int = 0) -> Any:
    """A randomly initialised Qwen2-Audio of the given size for ``tokenizer``'s vocabulary."""
    require_alm()
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2Config,
    )

    config = Qwen2AudioConfig(
        audio_config=Qwen2AudioEncoderConfig(d_model=size.audio_width, encoder_layers=size.audio_layers,
                                             encoder_attention_heads=size.audio_heads,
                                             encoder_ffn_dim=4 * size.audio_width, num_mel_bins=MEL_BINS),
        text_config=Qwen2Config(vocab_size=len(tokenizer), hidden_size=size.text_width,
                                intermediate_size=4 * size.text_width, num_hidden_layers=size.text_layers,
                                num_attention_heads=size.text_heads, num_key_value_heads=size.text_kv_heads,
                                max_position_embeddings=4096, tie_word_embeddings=True),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    return Qwen2AudioForConditionalGeneration(config)


def freeze_fixed_positions(model: Any) -> Any:
    """Keep the audio encoder's sinusoidal position table fixed, as Whisper defines it: a freshly
    built model freezes it, ``from_pretrained`` does not."""
    for name, module in model.named_modules():
        if name.endswith("audio_tower.embed_positions"):
            module.requires_grad_(False)
    return model


def encode(processor: Any, clips: Sequence[np.ndarray], stem: str, *, differential: bool,
           answer: str | None = None) -> dict[str, Any]:
    """Model inputs for one bundle (tensors with a batch of 1). With ``answer``, ``labels`` hold
    the answer's tokens (and the closing ``<|im_end|>``) and ``IGNORE_INDEX`` everywhere else, so
    the loss is on the answer only."""
    flat = check_clips(clips, differential=differential)
    prompt = processor.apply_chat_template(conversation(stem, differential=differential), add_generation_prompt=True,
                                           tokenize=False)
    text = prompt if answer is None else f"{prompt}{answer}<|im_end|>"
    inputs = dict(processor(text=text, audio=flat, sampling_rate=ALM_RATE, return_tensors="pt"))
    if answer is not None:
        ids = inputs["input_ids"][0]
        start = answer_start(processor.tokenizer, ids)
        labels = ids.clone()
        labels[:start] = IGNORE_INDEX
        inputs["labels"] = labels.unsqueeze(0)
    return inputs


def answer_start(tokenizer: Any, input_ids: Any) -> int:
    """Index of the first answer token: after the last ``<|im_start|>assistant\\n``."""
    header = [tokenizer.convert_tokens_to_ids("<|im_start|>"),
              *tokenizer("assistant\n", add_special_tokens=False)["input_ids"]]
    ids = input_ids.tolist()
    for start in range(len(ids) - len(header), -1, -1):
        if ids[start:start + len(header)] == header:
            return start + len(header)
    raise ValueError("no '<|im_start|>assistant' header in the encoded text")
