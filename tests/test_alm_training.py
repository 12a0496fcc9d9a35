"""Qwen2-Audio fine-tuning with tiny randomly initialised models built in the test (no download):
the prompt and its labels, full training with checkpoints that resume exactly, LoRA on the
language model only (save, reload, same logits, generate), and QLoRA in 4 bits on CPU."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the [alm] extra: .ci/run installs the CPU build of torch")
pytest.importorskip("transformers")

from faderwise.advisor.alm import load_model  # noqa: E402
from faderwise.training.alm import (  # noqa: E402
    IGNORE_INDEX,
    SmallModelSize,
    build_processor,
    build_tokenizer,
    encode,
    small_model,
)
from faderwise.training.synth import read_config as read_synth_config  # noqa: E402
from faderwise.training.synth import synthesize  # noqa: E402
from faderwise.training.train import (  # noqa: E402
    LANGUAGE_MODEL_TARGETS,
    TrainConfig,
    TrainConfigError,
    load_examples,
    read_config,
    train,
)

TINY = SmallModelSize(audio_width=64, audio_layers=1, audio_heads=2, text_width=64, text_layers=2, text_heads=2,
                      text_kv_heads=1)
TINY_SIZE = dataclasses.asdict(TINY)


def synthesized(folder: Path, *, songs: int, bars: int, first_seed: int = 0, **options: object) -> Path:
    """A dataset of procedural songs written by ``faderwise synth`` from a config in ``folder``."""
    config = folder / "synth.yaml"
    config.write_text(json.dumps({"out": "data", "datasets": [{"kind": "procedural", "songs": songs, "bars": bars,
                                                               "first_seed": first_seed}],
                                  "targets": "perturbed", **options}))
    synth_config = read_synth_config(config)
    synthesize(synth_config)
    return synth_config.out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesized(tmp_path_factory.mktemp("alm-data"), songs=6, bars=1, seed=1, pairs_per_song=1, val=0.2,
                       test=0.2)


@pytest.fixture(scope="module")
def tiny_base(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2-Audio saved like a pretrained base (weights, tokenizer, processor)."""
    texts = [e.answer for e in load_examples(dataset, "train", variant="differential")]
    tokenizer = build_tokenizer(texts, vocab_size=320)
    processor = build_processor(tokenizer)
    model = small_model(tokenizer, TINY, seed=0)
    folder = tmp_path_factory.mktemp("base") / "tiny-qwen2-audio"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_the_four_clips_go_through_the_processor_and_only_the_answer_is_learned(dataset: Path,
                                                                                 tiny_base: Path) -> None:
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_base)
    example = load_examples(dataset, "train", variant="differential")[0]
    inputs = encode(processor, example.clips, example.target, differential=True, answer=example.answer)
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    frames = [len(c) // 160 for c in example.clips]  # 10 ms hops of the Whisper features
    expected = sum(((f - 1) // 2 + 1 - 2) // 2 + 1 for f in frames)
    assert int((inputs["input_ids"] == audio_id).sum()) == expected
    assert inputs["input_features"].shape[0] == 4
    learned = inputs["labels"][0][inputs["labels"][0] != IGNORE_INDEX]
    assert processor.tokenizer.decode(learned) == example.answer + "<|im_end|>"
    single = load_examples(dataset, "train", variant="single-mix")[0]
    one = encode(processor, single.clips, single.target, differential=False)
    assert one["input_features"].shape[0] == 1 and "labels" not in one
    with pytest.raises(ValueError, match="the differential model hears 4 clip"):
        encode(processor, single.clips, single.target, differential=True)


@pytest.mark.parametrize("representation", ["bundle+delta", "bundle+ruler"])
def test_a_representations_fifth_input_follows_the_four_clips(dataset: Path, tiny_base: Path,
                                                              representation: str) -> None:
    from transformers import AutoProcessor

    from faderwise.advisor.alm import fifth_input, level_ruler

    processor = AutoProcessor.from_pretrained(tiny_base)
    example = load_examples(dataset, "train", variant="differential")[0]
    plain = encode(processor, example.clips, example.target, differential=True, answer=example.answer)
    fifth = encode(processor, example.clips, example.target, differential=True, answer=example.answer,
                   representation=representation)
    features = fifth["input_features"]
    assert features.shape[0] == 5
    assert torch.equal(features[:4], plain["input_features"])
    if representation == "bundle+delta":
        assert torch.equal(features[4], features[0] - features[2])  # target A against target B, frame by frame
        heard = f"Audio 5: the {example.target} in the producer's mix against the reference"
    else:
        assert torch.equal(features[4], level_ruler(features[0], features[2]))
        heard = f"Audio 5: a ruler of the {example.target}'s level in the producer's mix against the reference"
    assert heard in processor.tokenizer.decode(fifth["input_ids"][0])
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    frames = len(example.clips[0]) // 160
    tokens = ((frames - 1) // 2 + 1 - 2) // 2 + 1
    assert int((fifth["input_ids"] == audio_id).sum()) == int((plain["input_ids"] == audio_id).sum()) + tokens
    with pytest.raises(ValueError, match="representation 'spectral'"):
        encode(processor, example.clips, example.target, differential=True, representation="spectral")
    with pytest.raises(ValueError, match="^representation 'bundle' has no fifth input$"):
        fifth_input("bundle", features[0], features[2])


def test_the_ruler_draws_the_targets_level_difference_where_its_edge_falls(tiny_base: Path) -> None:
    """A gain of g dB between A and B puts the ruler's edge 4 g bins (0.25 dB a bin) from the
    middle in every frame the target plays in; frames where it is silent in A or B stay blank."""
    from transformers import AutoProcessor

    from faderwise.advisor.alm import RULER_DB, level_ruler

    extractor = AutoProcessor.from_pretrained(tiny_base).feature_extractor
    rng = np.random.default_rng(3)
    seconds = np.arange(16000 * 4) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 220 * seconds) + 0.02 * rng.standard_normal(seconds.size)).astype(np.float32)
    tone[: 16000] = 0.0  # the target is silent for its first second
    marks = np.linspace(*RULER_DB, extractor.feature_size)
    for gain_db in (-9.0, -0.2, 0.0, 3.3, 12.0):
        features = extractor([tone * 10 ** (gain_db / 20), tone], sampling_rate=16000, return_tensors="pt")
        ruler = level_ruler(features["input_features"][0], features["input_features"][1]).numpy()
        assert ruler.shape == tuple(features["input_features"][0].shape)
        drawn = np.abs(ruler).sum(axis=0) > 0
        assert not drawn[:95].any() and drawn[105:400].all() and not drawn[410:].any()  # 1 s of silence, 4 s clip
        above = (ruler[:, drawn] > 0).sum(axis=0)
        assert set(np.unique(ruler[:, drawn])) <= {-1.0, 1.0}
        read_db = marks[np.median(above).astype(int) - 1]
        assert abs(read_db - gain_db) <= 0.26, (gain_db, read_db)  # one bin: 32 dB over 127 steps
    silent = extractor([np.zeros(16000, np.float32)] * 2, sampling_rate=16000, return_tensors="pt")["input_features"]
    assert not level_ruler(silent[0], silent[1]).any()


SMALL_RUN = {"model": "small", "method": "full", "steps": 6, "eval_every": 3, "save_every": 3, "eval_examples": 2,
             "learning_rate": 3e-3, "warmup_steps": 1, "vocab_size": 320, "size": TINY_SIZE}


def small_config(dataset: Path, out: Path, **overrides: object) -> TrainConfig:
    return TrainConfig(dataset=dataset, out=out, **{**SMALL_RUN, **overrides})  # type: ignore[arg-type]


def same_logits(folder_a: Path, folder_b: Path, dataset: Path, *, atol: float) -> bool:
    """Whether two trained models give the same logits on a validation bundle."""
    model_a, processor = load_model(folder_a)
    model_b, _ = load_model(folder_b)
    example = load_examples(dataset, "val", variant="differential")[0]
    inputs = encode(processor, example.clips, example.target, differential=True, answer=example.answer)
    with torch.no_grad():
        return bool(torch.allclose(model_a(**inputs).logits, model_b(**inputs).logits, atol=atol))


def test_full_training_learns_and_resumes_exactly(dataset: Path, tmp_path: Path) -> None:
    uninterrupted = train(small_config(dataset, tmp_path / "a"))
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert [entry["step"] for entry in log if "val_loss" in entry] == [3, 6]

    stopped = train(small_config(dataset, tmp_path / "b"), stop_after=4)  # as if killed after step 4's checkpoint
    assert stopped.name == "step-000004"
    with (tmp_path / "b" / "log.jsonl").open("a") as log:  # a step the killed run logged after its checkpoint
        log.write(json.dumps({"step": 5, "loss": 99.0}) + "\n")
    resumed = train(small_config(dataset, tmp_path / "b"))
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == [1, 2, 3, 4, 5, 6]  # the resume replaced the stale step 5
    assert same_logits(uninterrupted, resumed, dataset, atol=1e-5)


@pytest.mark.parametrize("representation", ["bundle+delta", "bundle+ruler"])
def test_a_model_keeps_how_it_hears_and_the_advisor_hears_it_so(dataset: Path, tmp_path: Path,
                                                                representation: str) -> None:
    from faderwise.advisor.alm import AudioLanguageAdvisor, model_representation

    final = train(small_config(dataset, tmp_path / "run", steps=2, representation=representation))
    assert json.loads((final / "faderwise_alm.json").read_text())["representation"] == representation
    assert model_representation(final) == representation
    assert model_representation(final.parent / "checkpoints" / "step-000002" / "model") == representation
    advisor = AudioLanguageAdvisor(final, max_new_tokens=4)
    assert advisor.representation == representation
    example = load_examples(dataset, "val", variant="differential")[0]
    assert isinstance(advisor.answer(list(example.clips), example.target), str)  # five inputs, no shape error
    config = tmp_path / "bad.yaml"
    config.write_text(json.dumps({"dataset": str(dataset), "out": "x", "variant": "single-mix",
                                  "representation": "bundle+delta"}))
    with pytest.raises(TrainConfigError, match="only the differential model hears a bundle\\+delta"):
        read_config(config)


def test_tensorboard_logs_what_the_jsonl_log_says(dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(small_config(dataset, tmp_path / "run", steps=3))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"loss/train", "loss/val", "learning_rate"}
    train_loss = [(e.step, e.value) for e in events.Scalars("loss/train")]
    assert train_loss == [(entry["step"], pytest.approx(entry["loss"], abs=1e-6)) for entry in log if "loss" in entry]
    assert [(e.step, e.value) for e in events.Scalars("loss/val")] == [
        (entry["step"], pytest.approx(entry["val_loss"], abs=1e-6)) for entry in log if "val_loss" in entry]
    off = small_config(dataset, tmp_path / "quiet", steps=1, tensorboard=False)
    train(off)
    assert not (tmp_path / "quiet" / "tensorboard").exists()


@pytest.mark.slow
def test_two_processes_learn_what_one_learns_with_twice_the_accumulation(dataset: Path, tmp_path: Path) -> None:
    """torchrun, two CPU processes on Gloo: each takes its own example of a step and DDP averages
    the gradients, so the run equals one process accumulating the same two examples."""
    alone = train(small_config(dataset, tmp_path / "alone", steps=4, grad_accumulation=2, tensorboard=False))
    config = tmp_path / "two.yaml"
    config.write_text(json.dumps({**SMALL_RUN, "dataset": str(dataset), "out": "two", "steps": 4,
                                  "tensorboard": False}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "faderwise", "train", str(config)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1  # rank 0 reports, rank 1 does not
    together = tmp_path / "two" / "final"
    assert same_logits(alone, together, dataset, atol=1e-4)
    losses = [[json.loads(line).get("loss") for line in (folder / "log.jsonl").read_text().splitlines()]
              for folder in (tmp_path / "alone", tmp_path / "two")]
    assert losses[1] == pytest.approx(losses[0], abs=1e-4)  # each step's loss is the mean of both processes'
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["step-000003", "step-000004"]


def test_the_launchers_environment_is_read_or_refused() -> None:
    from faderwise.training.distributed import LaunchError, Processes, processes_from_env

    assert processes_from_env({}) == Processes(rank=0, world_size=1, local_rank=0)
    assert processes_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Processes(3, 4, 1)
    assert processes_from_env({"RANK": "2", "WORLD_SIZE": "4"}).local_rank == 2
    with pytest.raises(LaunchError, match=r"^WORLD_SIZE='two' is not a whole number \(set by torchrun or accelerate"):
        processes_from_env({"WORLD_SIZE": "two"})
    with pytest.raises(LaunchError, match="^RANK=4 does not fit WORLD_SIZE=4$"):
        processes_from_env({"RANK": "4", "WORLD_SIZE": "4"})


def test_lora_hits_the_language_model_only_and_reloads(dataset: Path, tiny_base: Path, tmp_path: Path) -> None:
    config = TrainConfig(dataset=dataset, out=tmp_path / "lora", model=str(tiny_base), method="lora", steps=2,
                         eval_every=2, save_every=2, eval_examples=1, lora_rank=8, warmup_steps=1)
    final = train(config)
    assert (final / "adapter_config.json").is_file()
    model, processor = load_model(final)
    adapted = [name for name, _ in model.named_modules() if name.endswith("lora_A")]
    assert adapted and all("language_model" in name for name in adapted)
    assert not any("audio_tower" in name for name in adapted)
    assert LANGUAGE_MODEL_TARGETS.startswith(".*language_model")
    example = load_examples(dataset, "val", variant="differential")[0]
    inputs = encode(processor, example.clips, example.target, differential=True)
    again, _ = load_model(final)
    from faderwise.training.train import answer_loss

    answered = encode(processor, example.clips, example.target, differential=True, answer=example.answer)
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, again(**inputs).logits)
        # the training loss from the answer's positions alone is the model's own loss
        assert float(answer_loss(model, answered)) == pytest.approx(float(model(**answered).loss), rel=1e-5)
        generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]


def test_a_frozen_towers_outputs_are_kept_and_train_exactly_as_computed(dataset: Path, tiny_base: Path,
                                                                        tmp_path: Path) -> None:
    """With the audio tower frozen, its outputs are computed once per item and representation and read
    back after: the losses are the ones of a run that computes them every step (to 1e-6), the later
    epochs read every item from the cache, and the dataset is streamed (an example holds file names,
    not audio)."""
    examples = load_examples(dataset, "train", variant="differential")
    held = {field.name: getattr(examples[0], field.name) for field in dataclasses.fields(examples[0])}
    assert not any(isinstance(value, np.ndarray) or (isinstance(value, tuple) and any(isinstance(v, np.ndarray)
                   for v in value)) for value in held.values()), held
    assert all(isinstance(path, Path) for path in examples[0].clip_files)
    steps = 3 * len(examples)  # three epochs: the first computes, the next two read
    runs = {}
    for cached in (True, False):
        out = tmp_path / f"cached-{cached}"
        config = TrainConfig(dataset=dataset, out=out, model=str(tiny_base), method="lora", steps=steps,
                             eval_every=steps, save_every=steps, eval_examples=1, lora_rank=8, warmup_steps=1,
                             representation="bundle+ruler", ruler_warmup_steps=2, tensorboard=False,
                             cache_audio_tower=cached)
        train(config)
        runs[cached] = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = {cached: [entry["loss"] for entry in log if "loss" in entry] for cached, log in runs.items()}
    assert losses[True] == pytest.approx(losses[False], abs=1e-6)
    kept = sorted((tmp_path / "cached-True" / "tower-cache").glob("*.pt"))
    # every item heard as the bundle, the first two steps' items as the ruler, and the validation item
    assert len(kept) == len(examples) + 2 + 1, [p.name for p in kept]
    assert not (tmp_path / "cached-False" / "tower-cache").exists()
    assert all(0.0 < entry["peak_memory_gib"] < 64.0 for entry in runs[True] if "loss" in entry)


def test_a_bfloat16_base_trains_float32_adapters_and_projector(dataset: Path, tiny_base: Path,
                                                              tmp_path: Path) -> None:
    """``base_dtype: bfloat16`` holds the frozen base in bf16 while the adapters and the new projector
    train and are saved in float32; the adapter then loads on the float32 base the advisor uses, and
    its logits there are those of training to bf16's precision."""
    from safetensors.torch import load_file

    config = TrainConfig(dataset=dataset, out=tmp_path / "bf16", model=str(tiny_base), method="lora", steps=3,
                         eval_every=3, save_every=3, eval_examples=1, lora_rank=8, warmup_steps=1,
                         train_projector=True, base_dtype="bfloat16", tensorboard=False)
    final = train(config)
    log = [json.loads(line) for line in (tmp_path / "bf16" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(entry.get("loss", 0.0)) and np.isfinite(entry.get("val_loss", 0.0)) for entry in log)
    saved = load_file(final / "adapter_model.safetensors")
    assert any("lora_A" in name for name in saved) and any("multi_modal_projector" in name for name in saved)
    assert {tensor.dtype for tensor in saved.values()} == {torch.float32}
    model, processor = load_model(final)
    example = load_examples(dataset, "val", variant="differential")[0]
    with torch.no_grad():
        generated = model.generate(**encode(processor, example.clips, example.target, differential=True),
                                   max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > 4


def test_qlora_trains_a_4_bit_base_on_cpu(dataset: Path, tiny_base: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    config = TrainConfig(dataset=dataset, out=tmp_path / "qlora", model=str(tiny_base), method="qlora", steps=2,
                         eval_every=2, save_every=2, eval_examples=1, lora_rank=8, warmup_steps=1)
    from faderwise.training.train import prepare_model

    model, _ = prepare_model(config, texts=[])
    import bitsandbytes as bnb

    quantised = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantised and any("language_model" in n for n in quantised)
    final = train(config)
    log = [json.loads(line) for line in (tmp_path / "qlora" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(entry.get("loss", 0.0)) for entry in log)
    assert (final / "adapter_config.json").is_file()


def test_train_config_paths_start_at_the_file(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    path = tmp_path / "configs" / "train.yaml"
    path.write_text("dataset: ../data/synth\nout: ../runs/a\nmodel: ../models/base\nmethod: qlora\nsteps: 50\n")
    config = read_config(path)
    assert (config.dataset, config.out, config.model) == (tmp_path / "data" / "synth", tmp_path / "runs" / "a",
                                                          str(tmp_path / "models" / "base"))
    assert (config.method, config.steps, config.variant) == ("qlora", 50, "differential")


def test_short_answers_state_the_move_alone(dataset: Path) -> None:
    from faderwise.advisor.constrained import answer_sentence
    from faderwise.advisor.parse import parse_moves

    assert answer_sentence("keys", 6.3) == "Raise the keys by about 6.5 dB."
    assert answer_sentence("vocals", -0.2) == "Leave the vocals as they are."
    assert answer_sentence("bass", 0.3) == "Leave the bass as it is."
    examples = load_examples(dataset, "train", variant="single-mix", answer="short")
    for example in examples:
        (move,) = parse_moves(example.answer, [example.target])
        assert abs(move.delta_db - example.target_move_db) <= 0.25


def test_the_amount_readout_is_fitted_stored_as_a_lora_on_the_output_layer_and_decoded(dataset: Path,
                                                                                       tmp_path: Path) -> None:
    """``readout_items`` fits the amount's readout after the last step (training/readout.py): the
    saved adapter carries it as a rank-12 LoRA on ``lm_head`` that adds exactly the fitted logits to
    the digits, the point and " dB" and leaves every other logit as it was; the readout fits the
    training positions at least as well as the model alone; the advisor decodes the two-digit
    spelling it records, and what it says is the grammar's sentence for the move it states."""
    from safetensors.torch import load_file

    from faderwise.advisor.alm import AudioLanguageAdvisor
    from faderwise.advisor.constrained import answer_sentence
    from faderwise.advisor.parse import parse_moves
    from faderwise.training.readout import READOUT_TOKENS, readout_token_ids

    examples = load_examples(dataset, "train", variant="differential", answer="short", spelling="two-digit")
    tokenizer = build_tokenizer([e.answer for e in examples] * 4, vocab_size=320, individual_digits=True)
    base = tmp_path / "digits-base"
    small_model(tokenizer, TINY, seed=0).save_pretrained(base)
    build_processor(tokenizer).save_pretrained(base)
    config = TrainConfig(dataset=dataset, out=tmp_path / "readout", model=str(base), method="lora", steps=2,
                         eval_every=2, save_every=2, eval_examples=1, lora_rank=8, warmup_steps=1, answer="short",
                         amount_spelling="two-digit", readout_items=4, tensorboard=False)
    final = train(config)
    settings = json.loads((final / "faderwise_alm.json").read_text())
    moved = [e for e in examples if abs(e.target_move_db) >= 0.5]
    assert settings["amount_spelling"] == "two-digit"
    assert settings["readout"]["items"] == min(4, len(moved)) and settings["readout"]["tokens"] == list(READOUT_TOKENS)
    assert settings["readout"]["accuracy_after"] >= settings["readout"]["accuracy_before"]
    saved = load_file(final / "adapter_model.safetensors")
    weights, selection = saved["base_model.model.lm_head.lora_A.weight"], saved["base_model.model.lm_head.lora_B.weight"]
    ids = readout_token_ids(tokenizer)
    assert weights.shape == (12, TINY.text_width) and selection.shape[1] == 12 and float(weights.abs().max()) > 0.0
    assert torch.equal(selection[ids], torch.eye(12)) and int(selection.sum()) == 12
    with_readout, processor = load_model(final)
    without, _ = load_model(tmp_path / "readout" / "checkpoints" / "step-000002" / "model")  # the same run before it
    inputs = encode(processor, moved[0].clips, moved[0].target, differential=True, answer=moved[0].answer)
    inputs.pop("labels")
    with torch.no_grad():
        hidden = without.get_base_model().model(**inputs).last_hidden_state[0]
        added = with_readout(**inputs).logits[0] - without(**inputs).logits[0]
    assert torch.allclose(added[:, ids], hidden @ weights.T, atol=1e-4)
    others = torch.ones(added.shape[1], dtype=torch.bool)
    others[ids] = False
    assert float(added[:, others].abs().max()) == 0.0
    advisor = AudioLanguageAdvisor(final)
    assert advisor.spelling == "two-digit"
    for example in moved[:2]:
        found = advisor.decode(example.clips, "Lead Vox")
        assert found.text == answer_sentence("Lead Vox", found.move_db, spelling="two-digit")
        if found.move_db:
            assert [move.delta_db for move in parse_moves(found.text, ["Lead Vox"])] == [found.move_db]


@pytest.mark.parametrize(("extra", "message"), [
    ("method: lora", "the small model is trained from scratch"),
    ("variant: stereo", "variant must be one of differential, single-mix"),
    ("base_dtype: bfloat16", "base_dtype bfloat16 is for lora"),
    ("base_dtype: float16", "base_dtype must be one of float32, bfloat16$"),
    ("amount_spelling: words", "amount_spelling must be one of plain, two-digit$"),
    ("readout_items: -1", "readout_items must be a whole number from 0, got -1$"),
    ("method: lora\nreadout_items: 10", "readout_items needs a differential lora run with amount_spelling: two-digit"),
    ("method: full\nadapter: runs/final", "adapter names a trained LoRA adapter's folder, for method: lora$"),
])
def test_bad_train_configs(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(f"dataset: d\nout: o\n{extra}\n")
    with pytest.raises(TrainConfigError, match=message):
        read_config(path)


def test_the_alm_advisor_turns_generated_words_into_moves(demo_dir: Path, tiny_base: Path) -> None:
    """The advisor prompts with the stem's bundle and parses what the model says (``generate`` is
    replaced by one that says a fixed answer; real generation is tested with the LoRA model)."""
    from faderwise.advisor.alm import AudioLanguageAdvisor
    from faderwise.tools.stem_files import load_stem_set

    version_a, version_b = load_stem_set(demo_dir / "version_a"), load_stem_set(demo_dir / "version_b")
    advisor = AudioLanguageAdvisor(tiny_base, max_new_tokens=40, decoding="free")
    answers = {"vocals": "Lower the vocals by about 4 dB: in your mix they sit 4 dB above where the reference has "
                         "them.",
               "bass": "Leave the bass as it is: it already matches the reference.",
               "drums": "Lower the dB.",  # seen from a model: no stem, no number
               "keys": "Lower the bass by about 2 dB."}  # the right size under another stem's name
    prompts = []

    def say(**inputs: torch.Tensor) -> torch.Tensor:
        text = advisor.processor.tokenizer.decode(inputs["input_ids"][0])
        prompts.append((text, inputs["input_features"].shape[0]))
        stem = next(name for name in answers if f"the {name} fader" in text)
        said = advisor.processor.tokenizer(answers[stem] + "<|im_end|>", return_tensors="pt")["input_ids"]
        return torch.cat([inputs["input_ids"], said], dim=1)

    advisor.model.generate = lambda **kwargs: say(**{k: v for k, v in kwargs.items()
                                                      if k in ("input_ids", "input_features")})
    advice = advisor.advise(version_a, version_b, stems=["vocals", "bass", "drums", "keys"])
    assert [clips for _, clips in prompts] == [4, 4, 4, 4]  # four clips each
    assert "Audio 3: the vocals in the balanced reference (Version B)" in prompts[0][0]
    assert advice.evidence["stems"]["vocals"] == {"answer": answers["vocals"], "decoding": "free", "status": "stated"}
    assert advice.evidence["stems"]["keys"] == {"answer": answers["keys"], "decoding": "free",
                                                "status": "no-move-stated"}
    assert [(m.stem, m.delta_db, m.low_db, m.high_db) for m in advice.moves] == [("vocals", -4.0, -5.0, -3.0)]
    # the text is built from the moves: a sentence about another stem, or with no number, is never a move
    assert advice.text == ("Lower the vocals by about 4 dB. Leave the bass as it is. The model gave no move for the "
                           "drums. The model gave no move for the keys.")
    with pytest.raises(Exception, match="hears a reference: pass --reference"):
        advisor.advise(version_a, None)
    with pytest.raises(ValueError, match="^decoding 'beam': choose constrained or free$"):
        AudioLanguageAdvisor(tiny_base, decoding="beam")


def test_constrained_answers_name_every_stem_asked_and_the_text_equals_the_moves(
        demo_dir: Path, tiny_base: Path, tmp_path: Path) -> None:
    """Decoded in the grammar, even an untrained model answers every stem, under names no training
    used, in words that parse back to exactly the moves the advice holds (a "leave" holds none)."""
    import shutil

    from faderwise.advisor.alm import AudioLanguageAdvisor, stated_sentence
    from faderwise.advisor.explain import join
    from faderwise.advisor.parse import parse_moves
    from faderwise.tools.stem_files import load_stem_set

    names = {"vocals": "Lead Vox", "bass": "808", "drums": "BVs", "keys": "Pads"}
    for version in ("version_a", "version_b"):
        (tmp_path / version).mkdir()
        for stem, name in names.items():
            shutil.copy(demo_dir / version / f"{stem}.wav", tmp_path / version / f"{name}.wav")
    version_a, version_b = load_stem_set(tmp_path / "version_a"), load_stem_set(tmp_path / "version_b")
    advisor = AudioLanguageAdvisor(tiny_base)
    advice = advisor.advise(version_a, version_b)
    facts = advice.evidence["stems"]
    assert set(facts) == set(names.values())
    stated = {}
    for name, found in facts.items():
        assert found["status"] == "stated" and found["decoding"] == "constrained"
        assert found["answer"].split(" the ", 1)[1].startswith(name + " "), found  # the asked stem, as spelled
        assert sum(found["verb_probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert max(found["verb_probabilities"], key=found["verb_probabilities"].get) == found["answer"].split()[0].lower()
        (move,) = parse_moves(found["answer"], [name])
        stated[name] = move.delta_db
    assert advice.text == join([stated_sentence(name, stated[name]) for name in version_a.names])
    assert {m.stem: m.delta_db for m in advice.moves} == {name: db for name, db in stated.items() if db != 0.0}
    assert {m.stem: m.delta_db for m in parse_moves(advice.text, version_a.names)} == stated


def test_faderwise_advise_with_an_alm(demo_dir: Path, tiny_base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from faderwise.cli import main

    code = main(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"), "--stem", "vox",
                 "--advisor", f"alm:{tiny_base}", "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["advisor"] == f"alm:{tiny_base}"
    assert payload["evidence"]["mode"] == "alm-differential"
    assert set(payload["evidence"]["stems"]) == {"vocals"}  # an untrained model: words, likely no move
    assert main(["advise", str(demo_dir / "version_a"), "--advisor", f"alm:{tiny_base}"]) == 2
    assert capsys.readouterr().err == ("faderwise: error: the alm advisor compares with a reference: "
                                       "pass --reference STEMS_B\n")
    with pytest.raises(SystemExit):
        main(["advise", str(demo_dir / "version_a"), "--advisor", "alms"])
    assert "'alms': choose measured, single-mix, equal-loudness, alm[:MODEL_FOLDER]" in capsys.readouterr().err


def test_the_gpu_check_runs_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    """The GPU check's code path, at the tiny size on CPU (LoRA: bitsandbytes' 4-bit path is a GPU one)."""
    from faderwise.training.gpu_check import main as gpu_check

    assert gpu_check(["--size", "tiny", "--steps", "2", "--device", "cpu", "--seconds", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] == "cpu" and report["method"] == "lora" and report["steps"] == 2
    assert report["samples_per_s"] > 0 and report["loss_last"] < report["loss_first"]


def test_the_chat_offers_the_alm_advisor(demo_dir: Path, tiny_base: Path, tmp_path: Path) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from faderwise.agent.llm import LLMSpec
    from faderwise.agent.script import collect
    from faderwise.agent.session import AgentSession
    from faderwise.agent.workspace import Workspace

    workspace = Workspace(output_dir=tmp_path, alm_model=tiny_base)
    workspace.load_pair(demo_dir / "version_a", demo_dir / "version_b")
    session = AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="alm")
    reply, calls, _, error = collect(list(session.send("use the audio-language model")))
    assert error is None and calls[0]["args"] == {"advisor": "alm"}
    assert reply.startswith("Advice from the audio-language model, which heard each stem's A/B bundle.")
    advice = workspace.advice
    assert advice is not None and advice.advisor == f"alm:{tiny_base}"
    assert set(advice.evidence["stems"]) == set(workspace.require_a().stems.names)
    assert workspace.advise(advisor="alm") is advice  # answers are cached per model, A and B
    workspace.alm_model = tmp_path / "no-model-here"
    reply, _, _, _ = collect(list(session.send("use the alm")))
    assert reply == (f"I couldn't do that: {tmp_path / 'no-model-here'}: no Qwen2-Audio model here (no config.json "
                     "or adapter_config.json)")


def test_held_out_evaluation_and_model_card(dataset: Path, tiny_base: Path, tmp_path: Path) -> None:
    from faderwise.evals.held_out import evaluate_model
    from faderwise.training.model_card import dataset_counts, model_card, moved_share, plot_losses

    result = evaluate_model(tiny_base, dataset, variant="differential", split="train", limit=4)
    truths = [a["true_db"] for a in result["answers"]]
    assert result["items"] == len(result["answers"]) == 4
    assert result["no_change"]["mae_db"] == pytest.approx(np.mean(np.abs(truths)), abs=1e-3)
    assert result["measured_on_bundle_clips"]["mae_db"] < 0.2  # the DSP advisor on the same 16 kHz clips
    assert result["measured_on_bundle_clips"]["direction_accuracy"] == 1.0
    assert 0.0 <= result["no_move_share"] <= 1.0

    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text("".join(json.dumps({"step": s, "loss": 3.0 / s}) + "\n" for s in range(1, 60))
                                   + json.dumps({"step": 50, "val_loss": 0.1}) + "\n")
    assert plot_losses({"tiny": run}, tmp_path / "losses.png").stat().st_size > 1000
    config = TrainConfig(dataset=dataset, out=run, steps=59, size={"clip_seconds": 10})
    card = model_card(name="tiny", config=config, evaluation=result, dataset_counts=dataset_counts(dataset),
                      minutes=1.0, parameters=123_456, moved_share=moved_share(dataset))
    assert "trained **from scratch**" in card and "*not* a pretrained Qwen2-Audio" in card
    assert f"| no change (0 dB) | {result['no_change']['mae_db']:.2f} |" in card
    assert "(100 % of them moved" in card  # the test dataset asks only about moved stems
    ruled = model_card(name="tiny", config=dataclasses.replace(config, representation="bundle+ruler"),
                       evaluation=result, dataset_counts=dataset_counts(dataset), minutes=1.0, parameters=123_456,
                       moved_share=moved_share(dataset))
    assert ("backing B) and a fifth input, a ruler of the stem's level in the producer's mix against the reference "
            "(representation `bundle+ruler`)") in ruled
    assert "**Per material**" not in ruled
    other = {"mae_db": 1.234, "mae_moved_db": 2.5, "leave_accuracy": 0.875, "direction_accuracy": 1.0, "items": 12}
    with_materials = model_card(name="tiny", config=config, evaluation=result, dataset_counts=dataset_counts(dataset),
                                minutes=1.0, parameters=123_456, moved_share=moved_share(dataset),
                                materials={"MUSDB18 excerpts": {"tiny": other, "no change (0 dB)": result["no_change"]}})
    assert "**MUSDB18 excerpts** (items):" in with_materials  # two advisors on different item counts: not one count
    assert "| tiny | 1.23 | 2.50 | 88 % | 100 % |" in with_materials


@pytest.fixture(scope="module")
def unseen_songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Held-out items from procedural songs the shipped models never saw (seeds past the recipe's 60)."""
    # procedural seeds 60–63: not in the recipe's 0–59
    return synthesized(tmp_path_factory.mktemp("unseen"), songs=4, bars=4, first_seed=60, seed=99, pairs_per_song=1,
                       val=0.0, test=0.0, window_s=10)


def test_the_shipped_differential_model_beats_no_change_on_unseen_procedural_songs(unseen_songs: Path) -> None:
    """Another material than it was trained on (procedural songs, with vocals, a name it never
    learned): decoded in its grammar, it names every stem it is asked about and states its move
    within 1.5 dB. Decoded freely, it answers the vocals for "the lead", which scores as no move."""
    from faderwise.advisor.alm import shipped_model
    from faderwise.evals.held_out import evaluate_model

    result = evaluate_model(shipped_model(differential=True), unseen_songs, variant="differential", split="train")
    assert result["items"] >= 6 and result["decoding"] == "constrained" and result["no_move_share"] == 0.0
    model, none = result["model_scores"], result["no_change"]
    assert model["mae_db"] <= 0.5 * none["mae_db"], (model, none)
    assert any(answer["item"].endswith("-vocals") for answer in result["answers"])
    for answer in result["answers"]:
        target = answer["item"].rsplit("-", 1)[-1]
        assert f" the {target} " in answer["answer"], answer
        assert abs(answer["stated_db"] - answer["true_db"]) <= 1.5, answer
    free = evaluate_model(shipped_model(differential=True), unseen_songs, variant="differential", split="train",
                          decoding="free")
    vocals = [answer for answer in free["answers"] if answer["item"].endswith("-vocals")]
    assert vocals and all(answer["stated_db"] is None for answer in vocals), vocals
    assert free["model_scores"]["mae_db"] > model["mae_db"] + 1.0
    card = (shipped_model(differential=True) / "MODEL_CARD.md").read_text()
    assert "*not* a pretrained Qwen2-Audio" in card


NAMES_NEVER_TRAINED = ("Lead Vox", "BVs", "808", "Pads", "FX", "other")
"""What producers call stems, none of them a name of the training material."""


def test_the_shipped_models_answer_does_not_depend_on_the_stems_name(unseen_songs: Path) -> None:
    """The same clips asked about under names the training never used: every answer names the stem
    as the producer spelled it and parses back to its move, which is the move stated under the
    stem's own name to within 1 dB, in the same direction."""
    from faderwise.advisor.alm import alm_advisor
    from faderwise.advisor.parse import parse_moves

    advisor = alm_advisor("alm")
    for example in load_examples(unseen_songs, "train", variant="differential")[:2]:
        clips = list(example.clips)
        own = advisor.decode(clips, example.target)
        for name in NAMES_NEVER_TRAINED:
            found = advisor.decode(clips, name)
            (parsed,) = parse_moves(found.text, [name])
            assert parsed.delta_db == found.move_db, found
            assert found.move_db == pytest.approx(own.move_db, abs=1.0), (example.item, name, found, own)
            assert np.sign(found.move_db) == np.sign(own.move_db), (example.item, name, found, own)


@pytest.fixture(scope="module")
def other_generators(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small build of ``training/configs/held-out-other.yaml``: OpenMSX pieces (another MIDI source
    than the training's music21 corpus) played on TimGM6mb with the TR-808 kit, their melody named
    ``vocals`` and their keys ``other``, and the MUSDB18 excerpts where they are here."""
    import shutil

    import yaml

    from faderwise.training.midi import SOUNDFONTS

    if not SOUNDFONTS["timgm6mb"].is_file() or shutil.which("fluidsynth") is None:
        pytest.skip("rendering needs Debian's fluidsynth and timgm6mb-soundfont (.ci/run installs them)")
    recipe = yaml.safe_load((REPO / "training" / "configs" / "held-out-other.yaml").read_text())
    folder = tmp_path_factory.mktemp("other-generators")
    kept = []
    for entry in recipe["datasets"]:
        if entry["kind"] == "music21":
            continue  # a second rendered material: the recipe's full build scores it (bench/every_stem.py)
        if entry["kind"] == "midi":
            entry = {**entry, "root": str(REPO / "tests" / "data" / "midi_other"), "limit": 3, "seconds": 20}
        elif entry["root"] != "stempeg":
            entry = {**entry, "root": str((REPO / "training" / "configs" / entry["root"]).resolve())}
        kept.append(entry)
    (folder / "synth.yaml").write_text(json.dumps({**recipe, "out": "data", "datasets": kept, "pairs_per_song": 1}))
    config = read_synth_config(folder / "synth.yaml")
    synthesize(config)
    return config.out


def test_the_shipped_alm_halves_no_changes_error_on_music_from_other_generators(other_generators: Path) -> None:
    """Issue 28's bar: on songs from generators the training never used, with stems named ``vocals``
    and ``other``, the shipped ``alm`` states a move for every stem it is asked about, in its words
    for that stem, and its every-stem error is at most half of changing nothing's."""
    from faderwise.advisor.alm import shipped_model
    from faderwise.evals.held_out import evaluate_model

    result = evaluate_model(shipped_model(differential=True), other_generators, variant="differential")
    targets = {answer["item"].rsplit("-", 1)[-1] for answer in result["answers"]}
    assert {"vocals", "other"} <= targets and result["items"] >= 10, targets
    assert result["no_move_share"] == 0.0
    for answer in result["answers"]:
        assert f" the {answer['item'].rsplit('-', 1)[-1]} " in answer["answer"], answer
    model, none = result["model_scores"], result["no_change"]
    assert model["mae_db"] <= 0.5 * none["mae_db"], (model, none)
    assert model["leave_accuracy"] >= 0.9 and model["direction_accuracy"] >= 0.9, model


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def unseen_compositions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Items rendered from music21 corpus pieces that ``training/configs/rendered.yaml`` did not
    pick (its training, validation and test songs), with another SoundFont (TimGM6mb, where the
    training material used FluidR3): compositions and instruments the shipped models never heard."""
    pytest.importorskip("music21", reason="the music21 corpus comes with the [data] extra")
    import shutil

    import yaml

    from faderwise.training.datasets import music21_songs
    from faderwise.training.midi import SOUNDFONTS
    from faderwise.training.synth import stable_seed

    if not SOUNDFONTS["timgm6mb"].is_file() or shutil.which("fluidsynth") is None:
        pytest.skip("rendering needs Debian's fluidsynth and timgm6mb-soundfont (.ci/run installs them)")
    recipe = yaml.safe_load((REPO / "training" / "configs" / "rendered.yaml").read_text())
    picked = recipe["datasets"][0]["limit"]
    order = sorted(music21_songs("corpus"), key=lambda song: stable_seed("pick", song.song_id))
    folder = tmp_path_factory.mktemp("unseen-compositions")
    (folder / "pieces").mkdir()
    for song in order[picked:picked + 5]:  # the next five of the same stable pick: never synthesized for training
        shutil.copy(song.path, folder / "pieces" / song.path.name)
    config = folder / "synth.yaml"
    config.write_text(json.dumps({"out": "data", "seed": 7, "window_s": 10, "pairs_per_song": 1, "val": 0.0,
                                  "test": 0.0, "targets": "all", "offset_db": [1, 12], "perturbed_stems": [1, 3],
                                  "datasets": [{"kind": "music21", "root": "pieces", "seconds": 12.0,
                                                "soundfont": "timgm6mb"}]}))
    synth_config = read_synth_config(config)
    synthesize(synth_config)
    return synth_config.out


def test_the_shipped_differential_model_halves_no_changes_error_on_unseen_compositions(
        unseen_compositions: Path) -> None:
    """Issue 13's bar, on every stem of pairs rendered from pieces and with instruments the model
    never heard: MAE at most half of changing nothing's, and the stems to leave left alone."""
    from faderwise.advisor.alm import shipped_model
    from faderwise.evals.held_out import evaluate_model

    result = evaluate_model(shipped_model(differential=True), unseen_compositions, variant="differential",
                            split="train")
    model, none = result["model_scores"], result["no_change"]
    assert result["items"] >= 12 and model["moved"] >= 4 and model["items"] - model["moved"] >= 4, model
    assert model["mae_db"] <= 0.5 * none["mae_db"], (model, none)
    assert model["leave_accuracy"] >= 0.8 and model["direction_accuracy"] >= 0.9, model


@pytest.mark.slow
def test_the_recipe_at_a_reduced_budget_learns_to_beat_no_change(tmp_path: Path) -> None:
    """The small-model recipe (from scratch, full training) shrunk to fit CI: 2 s songs, a 64-wide
    model hearing 2 s clips, short answers, 2000 steps (about 2 minutes on 2 cores). Measured when
    written: held-out MAE 3.3 dB against 6.9 dB for no change, direction right on 100 %."""
    from faderwise.evals.held_out import evaluate_model

    synthesized(tmp_path, songs=30, bars=1, seed=13, pairs_per_song=4, val=0.1, test=0.2, window_s=2)
    size = dataclasses.asdict(dataclasses.replace(TINY, clip_seconds=2))
    config = TrainConfig(dataset=tmp_path / "data", out=tmp_path / "run", steps=2000, eval_every=500, save_every=2000,
                         eval_examples=8, learning_rate=1e-3, warmup_steps=20, vocab_size=320, answer="short",
                         size=size, seed=13, tensorboard=False)
    final = train(config)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert np.mean(losses[-100:]) < 0.3 * np.mean(losses[:100])
    result = evaluate_model(final, tmp_path / "data", variant="differential")
    model, none = result["model_scores"], result["no_change"]
    assert result["items"] >= 40
    assert model["mae_db"] < none["mae_db"] - 2.0, (model, none)
    assert model["direction_accuracy"] >= 0.8
