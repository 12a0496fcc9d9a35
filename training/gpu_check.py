"""A short QLoRA run on one GPU: samples per second and peak memory.

Builds a Qwen2-Audio of a chosen size in code (no download), saves it as a base, reloads it in
4-bit NF4 with double quantisation when bitsandbytes is there (else bf16 LoRA), and trains LoRA
adapters on 4-clip bundles made of arrays in memory (no audio files are read, so the audio
libraries are needed only for imports). Prints one JSON line.

    python -m faderwise.training.gpu_check [--size small|medium] [--steps N] [--device cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from faderwise.advisor.alm import nf4_config, require_alm
from faderwise.tools.bundle import ALM_RATE
from faderwise.training.alm import SmallModelSize, build_processor, build_tokenizer, encode, small_model

SIZES = {
    "tiny": SmallModelSize(audio_width=64, audio_layers=1, audio_heads=2, text_width=64, text_layers=2, text_heads=2,
                           text_kv_heads=1),
    "small": SmallModelSize(),
    "medium": SmallModelSize(audio_width=512, audio_layers=8, audio_heads=8, text_width=1024, text_layers=12,
                             text_heads=16, text_kv_heads=4),
}
ANSWER = "Lower the vocals by about 4 dB: in your mix they sit 4 dB above where the reference has them."


def synthetic_clips(seconds: float, seed: int) -> list[np.ndarray]:
    """Four 16 kHz clips: a tone in noise for the targets (B 4 dB under A), noise for the backings."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * ALM_RATE)) / ALM_RATE
    tone = 0.1 * np.sin(2 * np.pi * 440 * t)
    backing = 0.05 * rng.standard_normal(t.size)
    return [x.astype(np.float32) for x in (tone, backing, tone * 10 ** (-4 / 20), backing)]


def run(*, size: str, steps: int, device: str, seconds: float, method: str | None = None) -> dict[str, object]:
    require_alm()
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import Qwen2AudioForConditionalGeneration

    try:
        import bitsandbytes as bnb
    except ImportError:
        bnb = None
    method = method or ("qlora" if bnb is not None and device.startswith("cuda") else "lora")
    tokenizer = build_tokenizer([ANSWER] * 50, vocab_size=512)
    processor = build_processor(tokenizer)
    with tempfile.TemporaryDirectory() as scratch:
        small_model(tokenizer, SIZES[size]).save_pretrained(scratch)
        options: dict[str, object] = {}
        if method == "qlora":
            options = {"quantization_config": nf4_config(), "device_map": {"": device}}
        else:
            options = {"dtype": torch.bfloat16 if device.startswith("cuda") else torch.float32}
        model = Qwen2AudioForConditionalGeneration.from_pretrained(Path(scratch), **options)
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    else:
        model = model.to(device)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM",
                                             target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = (bnb.optim.PagedAdamW8bit(trainable, lr=2e-4) if method == "qlora"
                 else torch.optim.AdamW(trainable, lr=2e-4))
    inputs = encode(processor, synthetic_clips(seconds, 0), "vocals", differential=True, answer=ANSWER)
    # the audio features in the dtype the encoder's first layer computes in
    feature_dtype = model.get_base_model().model.audio_tower.conv1.weight.dtype
    inputs = {k: v.to(device, dtype=feature_dtype) if k == "input_features" else v.to(device)
              for k, v in inputs.items()}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    losses, started = [], None
    for step in range(steps + 1):  # step 0 warms up (kernels, allocator) and is not timed
        if step == 1:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - (started or time.perf_counter())
    return {
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else device,
        "method": method, "size": dataclasses.asdict(SIZES[size]),
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "steps": steps, "clip_seconds": seconds, "samples_per_s": round(steps / elapsed, 3) if steps else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if device.startswith("cuda") else None,
        "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="medium")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each clip (≤ 30)")
    args = parser.parse_args(argv)
    print(json.dumps(run(size=args.size, steps=args.steps, device=args.device, seconds=args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
