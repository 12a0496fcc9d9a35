"""Fine-tuning Qwen2-Audio on synthesized bundles: LoRA (or QLoRA, or full training for the small
model trained from scratch), loss on the answer tokens only, checkpoints that resume, validation
loss, a JSONL log.

LoRA goes on the language model only: :data:`LANGUAGE_MODEL_TARGETS` is a regular expression over
module names, so the audio tower's attention projections (also called ``q_proj``…) are never hit
by accident. The audio tower is frozen unless ``tune_audio_tower``. QLoRA loads the base in 4-bit
NF4 with double quantisation and bf16 compute, and trains with paged 8-bit AdamW (bitsandbytes).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from faderwise.advisor.alm import (
    MODEL_SETTINGS,
    PRETRAINED_BASE,
    REPRESENTATIONS,
    freeze_fixed_positions,
    nf4_config,
    require_alm,
)
from faderwise.advisor.constrained import answer_sentence
from faderwise.advisor.explain import SPELLINGS
from faderwise.tools.audio_io import read_audio
from faderwise.tools.bundle import CLIP_NAMES
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.input_files import (
    CONFIG_LIMIT_BYTES,
    LOG_LIMIT_BYTES,
    MANIFEST_LIMIT_BYTES,
    exists_as_file,
    open_binary,
    read_text_bounded,
)
from faderwise.tools.json_files import read_json, read_yaml, write_json
from faderwise.tools.outputs import check_run_folder, claim_run_folder, note_input, output_folder, write_text
from faderwise.training.alm import IGNORE_INDEX, build_processor, build_tokenizer, encode, small_model
from faderwise.training.distributed import (
    Processes,
    device_for,
    end_group,
    mean_over_processes,
    processes_from_env,
    start_group,
    wait_for_all,
)
from faderwise.training.readout import Readout, collect_readout_data, fit_readout, write_readout
from faderwise.training.tower_cache import TowerCache

LANGUAGE_MODEL_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
VARIANTS = ("differential", "single-mix")
BASE_DTYPES = ("float32", "bfloat16")


class TrainConfigError(FaderwiseError):
    """A training config that cannot be run (the message names the file and the key)."""


@dataclass(frozen=True)
class TrainConfig:
    """What to train. Paths are absolute (relative ones in the file start at the file).

    Attributes:
        dataset: a folder written by ``faderwise synth`` (its ``manifest.jsonl``).
        out: the run folder (checkpoints, log, final model).
        variant: ``differential`` (hears the 4-clip bundle) or ``single-mix`` (hears A's mix).
        model: ``small`` (built and trained from scratch), ``alm-pretrained-base`` (the pretrained
            miniature assembled from the installed bases, :mod:`faderwise.advisor.pretrained`) or a
            local Qwen2-Audio folder.
        method: ``full`` (every weight; the small model), ``lora`` or ``qlora``.
    """

    dataset: Path
    out: Path
    variant: str = "differential"
    model: str = "small"
    method: str = "full"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str = LANGUAGE_MODEL_TARGETS
    tune_audio_tower: bool = False
    train_projector: bool = False
    """Train the audio projector in full beside the LoRA adapters (and save it with them): a base
    whose projector is new (``alm-pretrained-base``) needs it."""
    gradient_checkpointing: bool = False
    learning_rate: float = 1e-3
    projector_learning_rate: float | None = None
    """The trained projector's own peak learning rate (same schedule); the rest's when None. A new
    projector starts at the scale of the token embeddings (weights of about 1e-3), and under Adam
    every weight moves by about the learning rate a step: at the adapters' 1e-3 its weights grew
    8-fold in 150 steps and the loss did not fall (measured on the pretrained miniature)."""
    steps: int = 1000
    grad_accumulation: int = 1
    warmup_steps: int = 20
    eval_every: int = 100
    eval_examples: int = 32
    save_every: int = 100
    seed: int = 0
    answer: str = "full"
    """``full``: the templated explanation with its evidence; ``short``: the move alone ("Lower the
    keys by about 6.5 dB."), an easier target for a model trained from scratch."""
    vocab_size: int = 1024
    size: dict[str, int] = field(default_factory=dict)
    tensorboard: bool = True
    """Also log to ``out/tensorboard`` (needs the tensorboard package)."""
    representation: str = "bundle"
    """How a differential model hears a stem: ``bundle``, ``bundle+delta`` or ``bundle+ruler``
    (:data:`faderwise.advisor.alm.REPRESENTATIONS`); saved with the model."""
    base_dtype: str = "float32"
    """How a LoRA run holds its frozen base on the CPU: ``float32``, or ``bfloat16`` (half the memory,
    and on CPUs with AMX or AVX-512 BF16 about half the time a step: 2.3 s against 4.5 s for a
    bundle+ruler step of the pretrained miniature on 2 cores, measured). The adapters and the
    projector are trained in float32 either way, and saved so."""
    cache_audio_tower: bool = True
    """With the audio tower frozen, keep its output for each item (and representation) on disk in the
    run folder after the first step that hears it, so later steps cost the projector and the language
    model alone (:class:`~faderwise.training.tower_cache.TowerCache`)."""
    ruler_warmup_steps: int = 0
    """With ``bundle+ruler``: the first steps hear the ruler alone (representation ``ruler``), so
    that a new projector learns to read it before it has four clips to look past; the steps after
    hear the whole bundle."""
    rename_stems: float = 0.0
    """The share of training steps (0–1) whose target is asked about under another name, drawn
    from :data:`OTHER_STEM_NAMES`, in the question and the answer (``answer: short`` only), so the
    model learns to name the stem it was asked about rather than the instrument it hears."""
    adapter: str | None = None
    """A trained LoRA adapter (its folder) to start from instead of new adapters and projector
    (``method: lora``); with ``steps: 0`` the run only adds what follows, a readout."""
    amount_spelling: str = "plain"
    """How the short answers write an amount (:data:`~faderwise.advisor.explain.SPELLINGS`), saved
    with the model for its constrained decoding: ``two-digit`` ("07.5") for a readout."""
    readout_items: int = 0
    """Fit the amount's readout (:mod:`faderwise.training.readout`) on this many moved training items
    after the last step and save it with the model (0: none); it needs ``amount_spelling: two-digit``."""
    readout_l2: float = 1e-4
    """The readout's L2 penalty."""


def read_config(path: str | os.PathLike[str]) -> TrainConfig:
    path = Path(path)
    payload = read_yaml(path, error=TrainConfigError, missing="no such config", limit=CONFIG_LIMIT_BYTES,
                        what="a config file")
    if not isinstance(payload, dict) or not isinstance(payload.get("dataset"), str) or not isinstance(
            payload.get("out"), str):
        raise TrainConfigError(f"{path}: needs 'dataset' (a synth folder) and 'out' (the run folder)")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise TrainConfigError(f"{path}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if payload.get("variant", "differential") not in VARIANTS:
        raise TrainConfigError(f"{path}: variant must be one of {', '.join(VARIANTS)}")
    if payload.get("answer", "full") not in ("full", "short"):
        raise TrainConfigError(f"{path}: answer must be full or short")
    rename = payload.get("rename_stems", 0.0)
    if isinstance(rename, bool) or not isinstance(rename, (int, float)) or not 0.0 <= rename <= 1.0:
        raise TrainConfigError(f"{path}: rename_stems must be a share from 0 to 1, got {rename!r}")
    if rename and payload.get("answer", "full") != "short":
        raise TrainConfigError(f"{path}: rename_stems needs answer: short (a full explanation names the stem "
                               "in many words)")
    if payload.get("method", "full") not in ("full", "lora", "qlora"):
        raise TrainConfigError(f"{path}: method must be full, lora or qlora")
    if payload.get("base_dtype", "float32") not in BASE_DTYPES:
        raise TrainConfigError(f"{path}: base_dtype must be one of {', '.join(BASE_DTYPES)}")
    if payload.get("base_dtype", "float32") != "float32" and payload.get("method", "full") != "lora":
        raise TrainConfigError(f"{path}: base_dtype {payload['base_dtype']} is for lora (a full run trains every "
                               "weight in float32; qlora holds its base in 4 bits)")
    if payload.get("representation", "bundle") not in REPRESENTATIONS:
        raise TrainConfigError(f"{path}: representation must be one of {', '.join(REPRESENTATIONS)}")
    if payload.get("representation", "bundle") != "bundle" and payload.get("variant", "differential") != "differential":
        raise TrainConfigError(f"{path}: only the differential model hears a {payload['representation']} (it hears "
                               "B); the single-mix model hears A's mix")
    if payload.get("amount_spelling", "plain") not in SPELLINGS:
        raise TrainConfigError(f"{path}: amount_spelling must be one of {', '.join(SPELLINGS)}")
    readout = payload.get("readout_items", 0)
    if isinstance(readout, bool) or not isinstance(readout, int) or readout < 0:
        raise TrainConfigError(f"{path}: readout_items must be a whole number from 0, got {readout!r}")
    if readout and (payload.get("amount_spelling", "plain") != "two-digit" or payload.get("method", "full") != "lora"
                    or payload.get("variant", "differential") != "differential"):
        raise TrainConfigError(f"{path}: readout_items needs a differential lora run with amount_spelling: two-digit "
                               "(a plain amount's first token does not follow the size)")
    if payload.get("adapter") is not None:
        if payload.get("method", "full") != "lora" or not isinstance(payload["adapter"], str):
            raise TrainConfigError(f"{path}: adapter names a trained LoRA adapter's folder, for method: lora")
        payload["adapter"] = str((path.parent / payload["adapter"]).resolve())
    warmup = payload.get("ruler_warmup_steps", 0)
    if warmup and payload.get("representation", "bundle") != "bundle+ruler":
        raise TrainConfigError(f"{path}: ruler_warmup_steps needs representation: bundle+ruler")
    model = payload.get("model", "small")
    if model not in ("small", PRETRAINED_BASE):
        payload["model"] = str((path.parent / model).resolve())
    if payload.get("method", "full") != "full" and model == "small":
        raise TrainConfigError(f"{path}: the small model is trained from scratch (method: full); lora and qlora "
                               "adapt a pretrained base: set model to its folder")
    return TrainConfig(**{**payload, "dataset": (path.parent / payload["dataset"]).resolve(),
                          "out": (path.parent / payload["out"]).resolve()})


@dataclass(frozen=True)
class Example:
    """One item of the manifest: where its clips are (16 kHz mono files) and the answer to learn.

    The clips are read when asked for (:attr:`clips`), never held: a run streams its dataset, so its
    memory is the model's, not the dataset's (3116 items of four 10 s clips are 8 GB)."""

    item: str
    target: str
    clip_files: tuple[Path, ...]
    answer: str
    target_move_db: float

    @property
    def clips(self) -> tuple[np.ndarray, ...]:
        """The clips, read now: ``(samples,)`` float32 arrays at 16 kHz."""
        return tuple(read_audio(path, min_duration_s=0.0)[0][0] for path in self.clip_files)


OTHER_STEM_NAMES = ("vocals", "lead vocal", "backing vocals", "vox", "choir", "other", "piano", "synth", "pad",
                    "organ", "strings", "violin", "cello", "horns", "brass", "sax", "trumpet", "flute", "kick",
                    "snare", "percussion", "drum bus", "acoustic guitar", "electric guitar", "rhythm gtr",
                    "sub bass", "bass guitar", "lead synth", "bells", "fx", "harmony", "stem 3", "track 7")
"""Names a stem goes by in producers' sessions, beyond the five of the rendered material."""


def renamed(example: Example, *, seed: int, step: int, draw: int, share: float,
            spelling: str = "plain") -> tuple[str, str]:
    """The name to ask ``example`` about at this step and the answer that goes with it: with
    probability ``share`` one of :data:`OTHER_STEM_NAMES` (the short answer rewritten for it), else
    the target's own. The same ``(seed, step, draw)`` gives the same choice, so a resumed run
    draws what the uninterrupted one did."""
    rng = np.random.default_rng((seed, step, draw))
    if share <= 0.0 or rng.random() >= share:
        return example.target, example.answer
    name = OTHER_STEM_NAMES[int(rng.integers(len(OTHER_STEM_NAMES)))]
    return name, answer_sentence(name, example.target_move_db, spelling=spelling)


def load_examples(dataset: Path, split: str, *, variant: str, limit: int | None = None,
                  answer: str = "full", spelling: str = "plain") -> list[Example]:
    """The manifest's items of ``split`` for ``variant`` (clips read from the compact bundles);
    ``answer`` picks the full explanation or the move alone (its amount spelled as ``spelling`` says)."""
    note_input(dataset)
    manifest = dataset / "manifest.jsonl"
    if not exists_as_file(manifest, what="a manifest", limit=MANIFEST_LIMIT_BYTES):
        raise TrainConfigError(f"{manifest}: no manifest; run faderwise synth first")
    records = [json.loads(line) for line in read_text_bounded(manifest, limit=MANIFEST_LIMIT_BYTES,
                                                              what="a manifest").splitlines() if line.strip()]
    records = [r for r in records if r["split"] == split][:limit]
    examples = []
    for record in records:
        if variant == "differential":
            folder = dataset / record["bundle"]
            files = read_json(folder / "bundle.json", error=TrainConfigError)["alm_clips"]  # type: ignore[index]
            clip_files = tuple(folder / files[name] for name in CLIP_NAMES)
            text = record["explanation"]
        else:
            clip_files = (dataset / record["mix_a"],)
            text = record["explanation_single_mix"]
        missing = next((path for path in clip_files if not path.is_file()), None)
        if missing is not None:  # found now, not when a step first reads it
            raise TrainConfigError(f"{missing}: a clip of item {record['id']} is missing")
        if answer == "short":
            text = answer_sentence(record["target"], record["target_move_db"], spelling=spelling)
        examples.append(Example(item=record["id"], target=record["target"], clip_files=clip_files, answer=text,
                                target_move_db=record["target_move_db"]))
    return examples


# -- model set-up ---------------------------------------------------------------------------------


def load_base(config: TrainConfig, device: Any = None) -> Any:
    """The pretrained Qwen2-Audio in ``config.model``; for QLoRA in 4-bit NF4 with double
    quantisation and bf16 compute, loaded onto ``device`` (a GPU) as it is quantised."""
    import torch
    from transformers import Qwen2AudioForConditionalGeneration

    options: dict[str, Any] = {}
    if config.method == "qlora":
        options["quantization_config"] = nf4_config()
        if device is not None and device.type == "cuda":
            options["device_map"] = {"": device}
    elif config.base_dtype == "bfloat16":
        options["dtype"] = torch.bfloat16
    elif device is None or device.type == "cpu":
        options["dtype"] = torch.float32  # a half-precision base trains in float32 on the CPU
    return freeze_fixed_positions(Qwen2AudioForConditionalGeneration.from_pretrained(base_folder(config), **options))


def base_folder(config: TrainConfig) -> Path:
    """The folder of ``config.model``: the assembled pretrained miniature, or the folder named."""
    if config.model == PRETRAINED_BASE:
        from faderwise.advisor.pretrained import assembled_base

        return assembled_base()
    return Path(config.model)


def prepare_model(config: TrainConfig, *, texts: list[str], device: Any = None) -> tuple[Any, Any]:
    """The model to train and its processor: a new small model (tokenizer trained on ``texts``),
    or a local base with LoRA / QLoRA adapters."""
    require_alm()
    if config.model == "small":
        from faderwise.training.alm import SmallModelSize

        size = SmallModelSize(**config.size)
        tokenizer = build_tokenizer(texts, vocab_size=config.vocab_size)
        processor = build_processor(tokenizer, clip_seconds=size.clip_seconds)
        model = small_model(tokenizer, size, seed=config.seed)
    else:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(base_folder(config))
        model = load_base(config, device)
    if config.method in ("lora", "qlora"):
        import torch

        torch.manual_seed(config.seed)  # LoRA's A matrices start random: the same seed, the same start
        model = add_lora(model, config) if config.adapter is None else trained_adapter(model, config.adapter)
    elif not config.tune_audio_tower and config.model != "small":
        for parameter in model.model.audio_tower.parameters():
            parameter.requires_grad = False
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.base_dtype != "float32":
        train_in_float32(model)
    return model, processor


def train_in_float32(model: Any) -> None:
    """Every trained weight of a half-precision base in float32 (Adam's steps are lost in bf16's 8
    bits), and each trained module that is not an adapter (the projector) fed float32: LoRA casts
    its input itself."""
    import torch

    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    for name, module in model.named_modules():
        if name.endswith("multi_modal_projector") and any(p.requires_grad for p in module.parameters()):
            module.register_forward_pre_hook(lambda _, args: tuple(a.float() if torch.is_tensor(a) else a
                                                                   for a in args))


def as_base_dtype(inputs: dict[str, Any], base_dtype: str) -> dict[str, Any]:
    """The processor's features in the base's dtype (:data:`BASE_DTYPES`; they come as float32)."""
    if base_dtype == "float32":
        return inputs
    import torch

    return {**inputs, "input_features": inputs["input_features"].to(getattr(torch, base_dtype))}


def add_lora(model: Any, config: TrainConfig) -> Any:
    """LoRA adapters on the language model's projections (``config.target_modules``, a regex);
    the audio tower stays frozen unless ``tune_audio_tower``."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules, task_type="CAUSAL_LM",
                      modules_to_save=[*(["audio_tower"] if config.tune_audio_tower else []),
                                       *(["multi_modal_projector"] if config.train_projector else [])] or None)
    return get_peft_model(model, lora)


def trained_adapter(model: Any, folder: str) -> Any:
    """``model`` with the trained LoRA adapter (and projector) in ``folder``, trainable."""
    from peft import PeftModel

    note_input(folder)
    return PeftModel.from_pretrained(model, folder, is_trainable=True)


def make_optimizer(model: Any, config: TrainConfig) -> Any:
    import torch

    own_rate = config.projector_learning_rate is not None
    projector = [p for n, p in model.named_parameters() if p.requires_grad and own_rate and "multi_modal_projector" in n]
    rest = [p for n, p in model.named_parameters()
            if p.requires_grad and not (own_rate and "multi_modal_projector" in n)]
    # each group's learning rate is the schedule's times its scale (see _train)
    groups = [{"params": rest, "lr_scale": 1.0}] + (
        [{"params": projector, "lr_scale": (config.projector_learning_rate or 0.0) / config.learning_rate}]
        if projector else [])
    if config.method == "qlora":
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(groups, lr=config.learning_rate)
    return torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=0.01)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


# -- checkpoints ----------------------------------------------------------------------------------


def save_model(folder: Path, model: Any, processor: Any, config: TrainConfig, *, readout: Readout | None = None) -> None:
    """The model (or adapter), its processor, and how it hears (:data:`MODEL_SETTINGS`) into ``folder``;
    with ``readout``, the amount's readout added to the adapter and its fit to the settings."""
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if readout is not None:
        write_readout(folder, readout)
    # an adapter on the assembled miniature records which bases it learned on (its cache name holds their checksums)
    base = {"base": PRETRAINED_BASE, "base_name": base_folder(config).name} if config.model == PRETRAINED_BASE else {}
    spelling = {"amount_spelling": config.amount_spelling} if config.amount_spelling != "plain" else {}
    write_json(folder / MODEL_SETTINGS, {"format": "faderwise.alm-settings/1", "representation": config.representation,
                                         "variant": config.variant, **base, **spelling,
                                         **({"readout": readout.facts} if readout is not None else {})})


def fitted_readout(model: Any, processor: Any, config: TrainConfig, examples: list[Example], device: Any) -> Readout:
    """The amount's readout (:mod:`faderwise.training.readout`) fitted on the first
    ``config.readout_items`` moved items of ``examples``, encoded as a training step encodes them."""
    model.eval()

    def inputs_of(example: Example, answer: str) -> dict[str, Any]:
        return on_device(as_base_dtype(encode(processor, example.clips, example.target, differential=True, answer=answer,
                                              representation=config.representation), config.base_dtype), device)

    data = collect_readout_data(model, processor.tokenizer, examples, items=config.readout_items,
                                spelling=config.amount_spelling, inputs_of=inputs_of)
    return fit_readout(data, l2=config.readout_l2)


def save_checkpoint(folder: Path, model: Any, processor: Any, optimizer: Any, config: TrainConfig, *, step: int,
                    epoch: int, order: list[int]) -> Path:
    """Model (or adapter), processor, optimizer and position, written whole to ``folder``."""
    import torch

    with output_folder(folder, kind="checkpoint", force=True) as staging:
        save_model(staging / "model", model, processor, config)
        torch.save(optimizer.state_dict(), staging / "optimizer.pt")
        write_json(staging / "state.json", {"step": step, "epoch": epoch, "order": order})
    return folder


def latest_checkpoint(out: Path) -> Path | None:
    checkpoints = sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.removeprefix("step-")))
    return checkpoints[-1] if checkpoints else None


# -- the loop -------------------------------------------------------------------------------------


def evaluate_loss(model: Any, processor: Any, examples: list[Example], *, differential: bool,
                  device: Any = None, representation: str = "bundle", cache: TowerCache | None = None,
                  base_dtype: str = "float32") -> float:
    """Mean answer-token loss over ``examples`` (the tower's outputs from ``cache`` where given; the
    features in the base's dtype, :data:`BASE_DTYPES`)."""
    import torch

    model.eval()
    losses = []
    with torch.no_grad():
        for example in examples:
            inputs = on_device(as_base_dtype(encode(processor, example.clips, example.target, differential=differential,
                                                    answer=example.answer, representation=representation),
                                             base_dtype), device)
            with cache.heard(example.item, representation) if cache else contextlib.nullcontext():
                losses.append(float(answer_loss(model, inputs)))
    model.train()
    return float(np.mean(losses)) if losses else math.nan


def answer_loss(model: Any, inputs: dict[str, Any]) -> Any:
    """The mean cross-entropy of the answer tokens, as the model's own loss computes it, with the
    output layer applied at the answer's positions only: a 430-token bundle question holds about 14
    answer tokens, and the full ``(tokens, 151936)`` logits with their copies and gradients were the
    largest tensors of a pretrained step (measured on the pretrained miniature with a bfloat16 base,
    2 cores: peak 4.56 GiB over 920 steps with the full logits; 3.88 GiB and 1.7 s a bundle step,
    against 2.3 s, with these)."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    labels = inputs["labels"]
    hidden = base.model(**{name: value for name, value in inputs.items() if name != "labels"}).last_hidden_state
    answer = labels[..., 1:] != IGNORE_INDEX  # position t predicts token t + 1
    logits = base.lm_head(hidden[..., :-1, :][answer])
    return torch.nn.functional.cross_entropy(logits.float(), labels[..., 1:][answer])


def caches_tower(config: TrainConfig) -> bool:
    """Whether a run keeps its audio tower's outputs: asked for, and the tower frozen (adapters on a
    pretrained base; a small model trained from scratch trains its tower)."""
    return config.cache_audio_tower and config.method in ("lora", "qlora") and not config.tune_audio_tower


def peak_memory_gib() -> float:
    """This process's peak resident memory so far, GiB (Linux reports it in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def on_device(inputs: dict[str, Any], device: Any) -> dict[str, Any]:
    return inputs if device is None else {name: tensor.to(device) for name, tensor in inputs.items()}


class ExampleOrder:
    """Which training example comes next: epochs shuffled by their own seed, so a resumed run
    (which restores ``epoch`` and what is ``left`` of the current one) draws the same sequence.
    Every process draws the same sequence and takes its own share of it."""

    def __init__(self, count: int, *, seed: int, epoch: int = 0, left: list[int] | None = None) -> None:
        self.count, self.seed, self.epoch, self.left = count, seed, epoch, list(left or [])

    def draw(self) -> int:
        if not self.left:
            self.left = np.random.default_rng((self.seed, self.epoch)).permutation(self.count).tolist()
            self.epoch += 1
        return self.left.pop()


def run_inputs(config: TrainConfig) -> list[Path]:
    """What a training run reads, which its run folder may not be, hold or lie inside."""
    return ([config.dataset] + ([Path(config.model)] if config.model not in ("small", PRETRAINED_BASE) else [])
            + ([Path(config.adapter)] if config.adapter else []))


def train(config: TrainConfig, *, on_step: Callable[[int, float], None] | None = None,
          stop_after: int | None = None) -> Path:
    """Train (resuming from the run folder's last checkpoint) and save the final model to
    ``out/final``. Logs one JSON object per step and per evaluation to ``out/log.jsonl`` (and to
    TensorBoard in ``out/tensorboard`` when ``config.tensorboard``).

    Under ``torchrun`` or ``accelerate launch`` every process trains a replica
    (DistributedDataParallel): each step, each of the N processes takes its own example of every
    gradient-accumulation round, so a step learns from N × ``grad_accumulation`` examples, exactly
    what one process with N times the accumulation would. Rank 0 writes the log and checkpoints.

    ``stop_after`` ends this run at that step with a checkpoint (a time-boxed session); a later
    call resumes there. Returns the final model's folder, or the checkpoint when stopped early.
    """
    check_run_folder(config.out, kind="train", legacy="log.jsonl", inputs=run_inputs(config))  # before any model loads
    require_alm()
    processes = processes_from_env()
    device = device_for(processes)
    start_group(processes, device)
    try:
        return _train(config, processes, device, on_step=on_step, stop_after=stop_after)
    finally:
        end_group()


def _train(config: TrainConfig, processes: Processes, device: Any, *,
           on_step: Callable[[int, float], None] | None, stop_after: int | None) -> Path:
    import torch

    differential = config.variant == "differential"
    train_examples = load_examples(config.dataset, "train", variant=config.variant, answer=config.answer,
                                   spelling=config.amount_spelling)
    val_examples = load_examples(config.dataset, "val", variant=config.variant, limit=config.eval_examples,
                                 answer=config.answer, spelling=config.amount_spelling)
    if not train_examples:
        raise TrainConfigError(f"{config.dataset}: the manifest has no train items")
    claim_run_folder(config.out, kind="train", legacy="log.jsonl", inputs=run_inputs(config))
    writer = open_tensorboard(config) if processes.main else None
    checkpoint = latest_checkpoint(config.out)
    if checkpoint is not None:
        model, processor = resume_model(checkpoint, config, device)
    else:
        renamings = ([answer_sentence(name, move, spelling=config.amount_spelling) for name in OTHER_STEM_NAMES
                      for move in (-3.5, 0.0, 6.0)]
                     if config.rename_stems else [])
        model, processor = prepare_model(config, texts=[e.answer for e in train_examples] +
                                         [e.answer for e in val_examples] + renamings, device=device)
    if config.method != "qlora":  # a 4-bit base is placed on its device as it loads
        model.to(device)
    model.train()
    cache = TowerCache(config.out / "tower-cache", model) if caches_tower(config) else None
    replica = model
    if processes.distributed:
        from torch.nn.parallel import DistributedDataParallel

        # DDP starts every replica from rank 0's weights and averages the gradients of each step
        replica = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, config)
    step, order = 0, ExampleOrder(len(train_examples), seed=config.seed)
    if checkpoint is not None:
        state = read_json(checkpoint / "state.json", error=TrainConfigError)
        step = int(state["step"])  # type: ignore[index]
        order = ExampleOrder(len(train_examples), seed=config.seed, epoch=int(state["epoch"]),  # type: ignore[index]
                             left=list(state["order"]))  # type: ignore[index]
        with open_binary(checkpoint / "optimizer.pt", what="a checkpoint") as stream:
            optimizer.load_state_dict(torch.load(stream, weights_only=False, map_location=device))
    torch.manual_seed(config.seed + step)
    log = None
    if processes.main:
        _truncate_log(config.out / "log.jsonl", step)
        log = (config.out / "log.jsonl").open("a", encoding="utf-8")
    started = time.perf_counter()
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        while step < config.steps:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config) * group.get("lr_scale", 1.0)
            total = 0.0
            for round_ in range(config.grad_accumulation):
                drawn = [order.draw() for _ in range(processes.world_size)]
                example = train_examples[drawn[processes.rank]]
                name, answer = renamed(example, seed=config.seed, step=step,
                                       draw=round_ * processes.world_size + processes.rank, share=config.rename_stems,
                                       spelling=config.amount_spelling)
                heard = "ruler" if step < config.ruler_warmup_steps else config.representation
                inputs = on_device(as_base_dtype(encode(processor, example.clips, name, differential=differential,
                                                        answer=answer, representation=heard), config.base_dtype),
                                   device)
                last_round = round_ == config.grad_accumulation - 1
                with (contextlib.nullcontext() if last_round or not processes.distributed else replica.no_sync(),
                      cache.heard(example.item, heard) if cache else contextlib.nullcontext()):
                    # DDP syncs gradients through its own forward: a replica runs the model's whole loss
                    loss = (replica(**inputs).loss if processes.distributed
                            else answer_loss(model, inputs)) / config.grad_accumulation
                    loss.backward()
                total += float(loss.detach())
            total = mean_over_processes(total, processes, device)
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            entry: dict[str, Any] = {"step": step, "loss": round(total, 5), "lr": learning_rate(step - 1, config),
                                     "seconds": round(time.perf_counter() - started, 2),
                                     "peak_memory_gib": round(peak_memory_gib(), 3)}
            if step % config.eval_every == 0 or step == config.steps:
                if processes.main:
                    entry["val_loss"] = round(evaluate_loss(model, processor, val_examples, differential=differential,
                                                            device=device, representation=config.representation,
                                                            cache=cache, base_dtype=config.base_dtype), 5)
                wait_for_all(processes)
            if log is not None:
                write_log(log, writer, entry)
            if on_step and processes.main:
                on_step(step, total)
            if step % config.save_every == 0 or step in (config.steps, stop_after):
                checkpoint = config.out / "checkpoints" / f"step-{step:06d}"
                if processes.main:
                    save_checkpoint(checkpoint, model, processor, optimizer, config, step=step, epoch=order.epoch,
                                    order=order.left)
                wait_for_all(processes)
            if step == stop_after:
                return checkpoint
    finally:
        if log is not None:
            log.close()
        if writer is not None:
            writer.close()
    final = config.out / "final"
    if processes.main:
        readout = fitted_readout(model, processor, config, train_examples, device) if config.readout_items else None
        with output_folder(final, kind="model", force=True) as staging:
            save_model(staging, model, processor, config, readout=readout)
    wait_for_all(processes)
    return final


def write_log(log: Any, writer: Any, entry: dict[str, Any]) -> None:
    """One step to the JSONL log (the training loss line, then the validation line if any) and
    to TensorBoard."""
    val = entry.pop("val_loss", None)
    log.write(json.dumps(entry) + "\n")
    if val is not None:
        log.write(json.dumps({"step": entry["step"], "val_loss": val}) + "\n")
    log.flush()
    if writer is not None:
        writer.add_scalar("loss/train", entry["loss"], entry["step"])
        writer.add_scalar("learning_rate", entry["lr"], entry["step"])
        if val is not None:
            writer.add_scalar("loss/val", val, entry["step"])
        writer.flush()


def open_tensorboard(config: TrainConfig) -> Any:
    """A TensorBoard writer on ``out/tensorboard``, or None when ``config.tensorboard`` is off."""
    if not config.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainConfigError("tensorboard: true needs the tensorboard package (pip install tensorboard, part of "
                               "faderwise[alm]); or set tensorboard: false") from None
    return SummaryWriter(log_dir=str(config.out / "tensorboard"))


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step``: a killed run logged steps that its resume repeats."""
    if not exists_as_file(path, what="a training log", limit=LOG_LIMIT_BYTES):
        return
    kept = [line for line in read_text_bounded(path, limit=LOG_LIMIT_BYTES, what="a training log").splitlines()
            if line.strip() and json.loads(line)["step"] <= step]
    write_text(path, "".join(line + "\n" for line in kept), force=True)


def resume_model(checkpoint: Path, config: TrainConfig, device: Any = None) -> tuple[Any, Any]:
    """The model and processor of a checkpoint, ready to train on."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    folder = checkpoint / "model"
    processor = AutoProcessor.from_pretrained(folder)
    if config.method == "full":
        return freeze_fixed_positions(Qwen2AudioForConditionalGeneration.from_pretrained(folder)), processor
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_base(config, device), folder, is_trainable=True)
    if config.base_dtype != "float32":
        train_in_float32(model)
    return model, processor
