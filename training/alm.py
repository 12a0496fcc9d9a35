"""Training-side pieces for Qwen2-Audio: a tokenizer built in code, the small model's
configuration, and training examples whose loss is on the answer only. The prompt, the clip
checks and model loading are the advisor's (:mod:`faderwise.advisor.alm`), so a model hears at inference
exactly what it was trained on.

Needs the ``[alm]`` extra (torch, transformers); nothing else in faderwise imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from faderwise.advisor.alm import model_inputs, require_alm
from faderwise.tools.bundle import ALM_RATE

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")
MEL_BINS = 128  # Qwen2-Audio's Whisper-large-v3 features
IGNORE_INDEX = -100


def build_tokenizer(texts: Iterable[str], *, vocab_size: int = 1024, individual_digits: bool = False) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` (with Qwen2-Audio's special tokens), for
    the small model trained from scratch; a real Qwen2-Audio brings its own. With
    ``individual_digits`` every digit is a token of its own, as Qwen2's tokenizer writes numbers."""
    require_alm()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                               if individual_digits else byte_level)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=list(SPECIAL_TOKENS[1:]))


def build_processor(tokenizer: Any, *, clip_seconds: int = 30) -> Any:
    """Qwen2-Audio's processor around ``tokenizer``: Whisper features (128 mel bins, 16 kHz),
    each clip padded to ``clip_seconds`` (30 for Qwen2-Audio; the small model may hear less)."""
    require_alm()
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    return Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=MEL_BINS, sampling_rate=ALM_RATE,
                                                                         chunk_length=clip_seconds),
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
    clip_seconds: int = 30
    """The longest clip the encoder hears (Whisper's 30 s; shorter is cheaper)."""

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
                                             encoder_ffn_dim=4 * size.audio_width, num_mel_bins=MEL_BINS,
                                             # 100 feature frames a second, halved by the encoder's stride
                                             max_source_positions=size.clip_seconds * 50),
        text_config=Qwen2Config(vocab_size=len(tokenizer), hidden_size=size.text_width,
                                intermediate_size=4 * size.text_width, num_hidden_layers=size.text_layers,
                                num_attention_heads=size.text_heads, num_key_value_heads=size.text_kv_heads,
                                max_position_embeddings=4096, tie_word_embeddings=True),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    return Qwen2AudioForConditionalGeneration(config)


def encode(processor: Any, clips: Sequence[np.ndarray], stem: str, *, differential: bool,
           answer: str | None = None, representation: str = "bundle") -> dict[str, Any]:
    """Model inputs for one bundle (a batch of 1). With ``answer``, ``labels`` hold the answer's
    tokens (and the closing ``<|im_end|>``) and ``IGNORE_INDEX`` everywhere else, so the loss is
    on the answer only."""
    inputs = model_inputs(processor, clips, stem, differential=differential, answer=answer,
                          representation=representation)
    if answer is not None:
        ids = inputs["input_ids"][0]
        labels = ids.clone()
        labels[:answer_start(processor.tokenizer, ids)] = IGNORE_INDEX
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
