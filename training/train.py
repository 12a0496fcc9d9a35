"""Fine-tuning Qwen2-Audio on synthesized bundles: LoRA (or QLoRA, or full training for the small
model trained from scratch), loss on the answer tokens only, checkpoints that resume, validation
loss, a JSONL log.

LoRA goes on the language model only: :data:`LANGUAGE_MODEL_TARGETS` is a regular expression over
module names, so the audio tower's attention projections (also called ``q_proj``…) are never hit
by accident. The audio tower is frozen unless ``tune_audio_tower``. QLoRA loads the base in 4-bit
NF4 with double quantisation and bf16 compute, and trains with paged 8-bit AdamW (bitsandbytes).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from advisor.alm import freeze_fixed_positions, nf4_config, require_alm
from advisor.explain import instruction, is_leave, is_plural
from tools.audio_io import read_audio
from tools.bundle import CLIP_NAMES
from tools.errors import FaderwiseError
from tools.json_files import read_json, read_yaml, write_json
from tools.outputs import atomic_file, new_output_folder
from training.alm import build_processor, build_tokenizer, encode, small_model

LANGUAGE_MODEL_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
VARIANTS = ("differential", "single-mix")


class TrainConfigError(FaderwiseError):
    """A training config that cannot be run (the message names the file and the key)."""


@dataclass(frozen=True)
class TrainConfig:
    """What to train. Paths are absolute (relative ones in the file start at the file).

    Attributes:
        dataset: a folder written by ``faderwise synth`` (its ``manifest.jsonl``).
        out: the run folder (checkpoints, log, final model).
        variant: ``differential`` (hears the 4-clip bundle) or ``single-mix`` (hears A's mix).
        model: ``small`` (built and trained from scratch) or a local Qwen2-Audio folder.
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
    gradient_checkpointing: bool = False
    learning_rate: float = 1e-3
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


def read_config(path: str | os.PathLike[str]) -> TrainConfig:
    path = Path(path)
    payload = read_yaml(path, error=TrainConfigError, missing="no such config")
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
    if payload.get("method", "full") not in ("full", "lora", "qlora"):
        raise TrainConfigError(f"{path}: method must be full, lora or qlora")
    model = payload.get("model", "small")
    if model != "small":
        payload["model"] = str((path.parent / model).resolve())
    if payload.get("method", "full") != "full" and model == "small":
        raise TrainConfigError(f"{path}: the small model is trained from scratch (method: full); lora and qlora "
                               "adapt a pretrained base: set model to its folder")
    return TrainConfig(**{**payload, "dataset": (path.parent / payload["dataset"]).resolve(),
                          "out": (path.parent / payload["out"]).resolve()})


@dataclass(frozen=True)
class Example:
    """One item of the manifest: its clips (16 kHz mono) and the answer to learn."""

    item: str
    target: str
    clips: tuple[np.ndarray, ...]
    answer: str
    target_move_db: float


def short_answer(target: str, move_db: float) -> str:
    """The move alone, in the explanations' words."""
    if is_leave(move_db):
        return f"Leave the {target} as {'they are' if is_plural(target) else 'it is'}."
    return instruction(target, move_db) + "."


def load_examples(dataset: Path, split: str, *, variant: str, limit: int | None = None,
                  answer: str = "full") -> list[Example]:
    """The manifest's items of ``split`` for ``variant`` (clips read from the compact bundles);
    ``answer`` picks the full explanation or the move alone."""
    manifest = dataset / "manifest.jsonl"
    if not manifest.is_file():
        raise TrainConfigError(f"{manifest}: no manifest; run faderwise synth first")
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [r for r in records if r["split"] == split][:limit]
    examples = []
    for record in records:
        if variant == "differential":
            folder = dataset / record["bundle"]
            files = read_json(folder / "bundle.json", error=TrainConfigError)["alm_clips"]  # type: ignore[index]
            clips = tuple(read_audio(folder / files[name], min_duration_s=0.0)[0][0] for name in CLIP_NAMES)
            text = record["explanation"]
        else:
            clips = (read_audio(dataset / record["mix_a"], min_duration_s=0.0)[0][0],)
            text = record["explanation_single_mix"]
        if answer == "short":
            text = short_answer(record["target"], record["target_move_db"])
        examples.append(Example(item=record["id"], target=record["target"], clips=clips, answer=text,
                                target_move_db=record["target_move_db"]))
    return examples


# -- model set-up ---------------------------------------------------------------------------------


def load_base(config: TrainConfig) -> Any:
    """The pretrained Qwen2-Audio in ``config.model``; for QLoRA in 4-bit NF4 with double
    quantisation and bf16 compute."""
    from transformers import Qwen2AudioForConditionalGeneration

    options: dict[str, Any] = {"quantization_config": nf4_config()} if config.method == "qlora" else {}
    return freeze_fixed_positions(Qwen2AudioForConditionalGeneration.from_pretrained(config.model, **options))


def prepare_model(config: TrainConfig, *, texts: list[str]) -> tuple[Any, Any]:
    """The model to train and its processor: a new small model (tokenizer trained on ``texts``),
    or a local base with LoRA / QLoRA adapters."""
    require_alm()
    if config.model == "small":
        from training.alm import SmallModelSize

        size = SmallModelSize(**config.size)
        tokenizer = build_tokenizer(texts, vocab_size=config.vocab_size)
        processor = build_processor(tokenizer, clip_seconds=size.clip_seconds)
        model = small_model(tokenizer, size, seed=config.seed)
    else:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(config.model)
        model = load_base(config)
    if config.method in ("lora", "qlora"):
        model = add_lora(model, config)
    elif not config.tune_audio_tower and config.model != "small":
        for parameter in model.model.audio_tower.parameters():
            parameter.requires_grad = False
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model, processor


def add_lora(model: Any, config: TrainConfig) -> Any:
    """LoRA adapters on the language model's projections (``config.target_modules``, a regex);
    the audio tower stays frozen unless ``tune_audio_tower``."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules, task_type="CAUSAL_LM",
                      modules_to_save=["audio_tower"] if config.tune_audio_tower else None)
    return get_peft_model(model, lora)


def make_optimizer(model: Any, config: TrainConfig) -> Any:
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    if config.method == "qlora":
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(trainable, lr=config.learning_rate)
    return torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.01)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


# -- checkpoints ----------------------------------------------------------------------------------


def save_checkpoint(folder: Path, model: Any, processor: Any, optimizer: Any, *, step: int, epoch: int,
                    order: list[int]) -> Path:
    """Model (or adapter), processor, optimizer and position, written whole to ``folder``."""
    import torch

    with new_output_folder(folder, force=True) as staging:
        model.save_pretrained(staging / "model")
        processor.save_pretrained(staging / "model")
        torch.save(optimizer.state_dict(), staging / "optimizer.pt")
        write_json(staging / "state.json", {"step": step, "epoch": epoch, "order": order})
    return folder


def latest_checkpoint(out: Path) -> Path | None:
    checkpoints = sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.removeprefix("step-")))
    return checkpoints[-1] if checkpoints else None


# -- the loop -------------------------------------------------------------------------------------


def evaluate_loss(model: Any, processor: Any, examples: list[Example], *, differential: bool) -> float:
    """Mean answer-token loss over ``examples``."""
    import torch

    model.eval()
    losses = []
    with torch.no_grad():
        for example in examples:
            inputs = encode(processor, example.clips, example.target, differential=differential,
                            answer=example.answer)
            losses.append(float(model(**inputs).loss))
    model.train()
    return float(np.mean(losses)) if losses else math.nan


def train(config: TrainConfig, *, on_step: Callable[[int, float], None] | None = None,
          stop_after: int | None = None) -> Path:
    """Train (resuming from the run folder's last checkpoint) and save the final model to
    ``out/final``. Logs one JSON object per step and per evaluation to ``out/log.jsonl``.

    ``stop_after`` ends this run at that step with a checkpoint (a time-boxed session); a later
    call resumes there. Returns the final model's folder, or the checkpoint when stopped early.
    """
    require_alm()
    import torch

    differential = config.variant == "differential"
    train_examples = load_examples(config.dataset, "train", variant=config.variant, answer=config.answer)
    val_examples = load_examples(config.dataset, "val", variant=config.variant, limit=config.eval_examples,
                                 answer=config.answer)
    if not train_examples:
        raise TrainConfigError(f"{config.dataset}: the manifest has no train items")
    config.out.mkdir(parents=True, exist_ok=True)
    checkpoint = latest_checkpoint(config.out)
    if checkpoint is not None:
        model, processor = resume_model(checkpoint, config)
    else:
        model, processor = prepare_model(config, texts=[e.answer for e in train_examples] +
                                         [e.answer for e in val_examples])
    model.train()
    optimizer = make_optimizer(model, config)
    step, epoch, order = 0, 0, []
    if checkpoint is not None:
        state = read_json(checkpoint / "state.json", error=TrainConfigError)
        step, epoch, order = int(state["step"]), int(state["epoch"]), list(state["order"])  # type: ignore[index]
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=False))
    torch.manual_seed(config.seed + step)
    _truncate_log(config.out / "log.jsonl", step)
    log = (config.out / "log.jsonl").open("a", encoding="utf-8")
    started = time.perf_counter()
    try:
        while step < config.steps:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config)
            total = 0.0
            for _ in range(config.grad_accumulation):
                if not order:  # a new epoch, shuffled by its own seed: the same order after a resume
                    order = np.random.default_rng((config.seed, epoch)).permutation(len(train_examples)).tolist()
                    epoch += 1
                example = train_examples[order.pop()]
                inputs = encode(processor, example.clips, example.target, differential=differential,
                                answer=example.answer)
                loss = model(**inputs).loss / config.grad_accumulation
                loss.backward()
                total += float(loss.detach())
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            log.write(json.dumps({"step": step, "loss": round(total, 5), "lr": learning_rate(step - 1, config),
                                  "seconds": round(time.perf_counter() - started, 2)}) + "\n")
            if on_step:
                on_step(step, total)
            if step % config.eval_every == 0 or step == config.steps:
                val = evaluate_loss(model, processor, val_examples, differential=differential)
                log.write(json.dumps({"step": step, "val_loss": round(val, 5)}) + "\n")
            log.flush()
            if step % config.save_every == 0 or step in (config.steps, stop_after):
                checkpoint = save_checkpoint(config.out / "checkpoints" / f"step-{step:06d}", model, processor,
                                             optimizer, step=step, epoch=epoch, order=order)
            if step == stop_after:
                return checkpoint
    finally:
        log.close()
    final = config.out / "final"
    with new_output_folder(final, force=True) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
    return final


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step``: a killed run logged steps that its resume repeats."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= step]
    with atomic_file(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def resume_model(checkpoint: Path, config: TrainConfig) -> tuple[Any, Any]:
    """The model and processor of a checkpoint, ready to train on."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    folder = checkpoint / "model"
    processor = AutoProcessor.from_pretrained(folder)
    if config.method == "full":
        return freeze_fixed_positions(Qwen2AudioForConditionalGeneration.from_pretrained(folder)), processor
    from peft import PeftModel

    return PeftModel.from_pretrained(load_base(config), folder, is_trainable=True), processor
