"""Every writing command, with its output pointed at each of its inputs, at a folder holding it
and at a path inside it, with and without ``--force``: refused in one line (exit 2), and every
input byte unchanged. Then the same commands with a fresh output, to show they do write."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import noise_stems, write_stems
from faderwise.cli import main

RATE = 44_100


CONFIG = Path("<its own config>")


@dataclass(frozen=True)
class Command:
    """A writing command: its inputs, and its argv for an output ``target`` (``force`` adds --force
    where the command has it). A command whose config names its output (synth, train) has
    :data:`CONFIG` among its inputs and a ``config`` payload: each case writes its own config."""

    inputs: tuple[Path, ...]
    argv: Callable[[Path, bool, Path], list[str]]
    config: dict[str, object] | None = None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("inputs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FADERWISE_DATA_DIR", str(root / "data"))
        stems = noise_stems(seconds=2.0)
        a = write_stems(root / "song" / "a", stems, RATE)
        b = write_stems(root / "song" / "b", {name: audio * np.float32(0.7) for name, audio in stems.items()}, RATE)
        (root / "advice.json").write_text(json.dumps({"format": "faderwise.advice/1", "advisor": "measured",
                                                      "moves": [{"stem": "drums", "delta_db": -2.0}]}))
        (root / "script.yaml").write_text(json.dumps({"stems": "song/a", "reference": "song/b",
                                                      "turns": [{"user": "overview"}]}))
        assert main(["sessions"]) == 0  # creates the sessions database
        from faderwise.agent.config import Config
        from faderwise.agent.launch import open_chat

        opened = open_chat(stems=a, reference=b, llm=None, resume=False, name="take", config=Config())
        opened.store.close()
        (root / "synth.yaml").write_text(json.dumps({
            "out": str(root / "dataset"), "seed": 1, "window_s": 2,
            "datasets": [{"kind": "procedural", "songs": 3, "bars": 1, "first_seed": 300}],
            "pairs_per_song": 1, "val": 0.0, "test": 0.34, "targets": "perturbed"}))
        assert main(["synth", str(root / "synth.yaml")]) == 0
        from faderwise.evals.run import read_config, run_evaluation

        (root / "eval.yaml").write_text(json.dumps({"dataset": "dataset", "advisors": ["measured"],
                                                    "judges": ["rubric"], "text_metrics": [], "bootstrap": 10,
                                                    "workers": 1, "scripts": []}))
        run_evaluation(read_config(root / "eval.yaml"), root / "run")
        assert main(["eval", "packets", str(root / "run"), "--out", str(root / "study")]) == 0
        from faderwise.evals.human import ANSWERS_FORMAT, CODES, QUESTIONS

        key = json.loads((root / "study" / "key.json").read_text())
        (root / "answers.json").write_text(json.dumps({
            "format": ANSWERS_FORMAT, "study": key["id"], "annotator": "ann",
            "answers": [{"entry": entry, "ratings": {q: 4 for q, _ in QUESTIONS}, "codes": {c: True for c, _ in CODES}}
                        for entry in key["entries"]]}))
        from faderwise.advisor.alm import shipped_model

        shutil.copytree(shipped_model(differential=True), root / "model")
        yield {"root": root, "a": a, "b": b, "advice": root / "advice.json", "script": root / "script.yaml",
               "db": root / "data" / "sessions.sqlite", "session": Path(opened.info.id),
               "synth": root / "synth.yaml", "dataset": root / "dataset", "eval": root / "eval.yaml",
               "run": root / "run", "study": root / "study", "answers": root / "answers.json",
               "model": root / "model"}


def flag(force: bool) -> list[str]:
    return ["--force"] if force else []


def commands(world: dict[str, Path]) -> dict[str, Command]:
    w = {name: str(path) for name, path in world.items()}
    return {
        "analyze --plot": Command((world["a"], world["b"]), lambda t, f, c: [
            "analyze", w["a"], "--reference", w["b"], "--plot", str(t), *flag(f)]),
        "apply --out": Command((world["a"], world["b"], world["advice"]), lambda t, f, c: [
            "apply", w["a"], "--advice", w["advice"], "--reference", w["b"], "--out", str(t), *flag(f)]),
        "apply --plot": Command((world["a"], world["b"], world["advice"]), lambda t, f, c: [
            "apply", w["a"], "--advice", w["advice"], "--reference", w["b"], "--out",
            str(world["root"] / "fresh" / hashlib.sha1(str(t).encode()).hexdigest()[:8]), "--plot", str(t),
            *flag(f)]),
        "bundle": Command((world["a"], world["b"]), lambda t, f, c: [
            "bundle", w["a"], "--reference", w["b"], "--stem", "vocals", "--out", str(t), *flag(f)]),
        "run --out": Command((world["script"], world["a"], world["b"]), lambda t, f, c: [
            "run", w["script"], "--out", str(t), *flag(f)]),
        "sessions export": Command((world["db"],), lambda t, f, c: [
            "sessions", "export", w["session"], str(t), *flag(f)]),
        "synth": Command((CONFIG,), lambda t, f, c: ["synth", str(c)], config=json.loads(world["synth"].read_text())),
        "train": Command((CONFIG, world["dataset"]), lambda t, f, c: ["train", str(c)], config={
            "dataset": w["dataset"], "variant": "differential", "model": "small", "method": "full", "steps": 1}),
        "eval run": Command((world["eval"], world["dataset"]), lambda t, f, c: [
            "eval", "run", w["eval"], "--out", str(t)]),
        "eval packets": Command((world["run"], world["dataset"]), lambda t, f, c: [
            "eval", "packets", w["run"], "--out", str(t), *flag(f)]),
        "eval ingest": Command((world["study"] / "key.json", world["answers"], world["run"]), lambda t, f, c: [
            "eval", "ingest", w["study"], w["answers"], "--run", w["run"], "--out", str(t), *flag(f)]),
        "eval model": Command((world["model"], world["dataset"]), lambda t, f, c: [
            "eval", "model", w["model"], w["dataset"], "--out", str(t), *flag(f)]),
    }


def snapshot(paths: tuple[Path, ...]) -> dict[str, str]:
    """Every file under ``paths`` (and every folder's listing) with its digest."""
    found = {}
    for path in paths:
        for item in [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]:
            found[str(item)] = hashlib.sha256(item.read_bytes()).hexdigest() if item.is_file() else "folder"
    return found


CASES = [(name, index, relation, force)
         for name, count in {"analyze --plot": 2, "apply --out": 3, "apply --plot": 3, "bundle": 2, "run --out": 3,
                             "sessions export": 1, "synth": 1, "train": 2, "eval run": 2, "eval packets": 2,
                             "eval ingest": 3, "eval model": 2}.items()
         for index in range(count) for relation in ("itself", "parent", "child") for force in (False, True)]


@pytest.mark.parametrize(("name", "index", "relation", "force"), CASES,
                         ids=[f"{n}-{i}-{r}{'-force' if f else ''}" for n, i, r, f in CASES])
def test_an_output_over_an_input_is_refused_and_the_input_is_unchanged(
        world: dict[str, Path], name: str, index: int, relation: str, force: bool,
        capsys: pytest.CaptureFixture[str]) -> None:
    command = commands(world)[name]
    case = "-".join(map(str, (name.replace(" ", "_"), index, relation, force)))
    config = world["root"] / "configs" / case / "config.yaml"
    watched = tuple(config if path == CONFIG else path for path in command.inputs)
    target = {"itself": watched[index], "parent": watched[index].parent, "child": watched[index] / "out"}[relation]
    if command.config is not None:
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps({**command.config, "out": str(target)}))
    argv = command.argv(target, force, config)
    before = snapshot(watched)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("faderwise: error: ") and err.count("\n") == 1, err
    assert any(reason in err for reason in ("is an input of this command", "holds the input",
                                            "lies inside the input", "is a file, not a folder")), err
    assert snapshot(watched) == before


@pytest.mark.parametrize("name", ["analyze --plot", "apply --out", "apply --plot", "bundle", "run --out",
                                  "sessions export", "eval packets", "eval ingest"])
def test_the_same_commands_write_a_fresh_output(world: dict[str, Path], name: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    command = commands(world)[name]
    target = world["root"] / "outputs" / name.replace(" ", "_")
    target = target.with_suffix({"analyze --plot": ".png", "apply --plot": ".png", "run --out": ".jsonl",
                                 "sessions export": ".md"}.get(name, ""))
    before = snapshot(command.inputs)
    assert main(command.argv(target, False, Path())) == 0, capsys.readouterr().err
    assert target.exists()
    assert main(command.argv(target, False, Path())) == 2  # a second time: it exists
    assert "already exists" in capsys.readouterr().err
    assert main(command.argv(target, True, Path())) == 0  # --force replaces faderwise's own output
    assert snapshot(command.inputs) == before


def test_the_overwrites_the_issue_reported_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11, items 1 and 2, as they were reported: a plot onto an input stem, a bundle and a
    render with --force onto the folders they read."""
    song = tmp_path / "song"
    assert main(["demo", "--out", str(song)]) == 0
    a, b = song / "version_a", song / "version_b"
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"advisor": "measured", "moves": [{"stem": "vocals", "delta_db": -4.0}]}))
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    capsys.readouterr()
    before = snapshot((song, advice, notes))
    cases = [
        (["apply", str(a), "--advice", str(advice), "--out", str(tmp_path / "o1"), "--plot", str(a / "vocals.wav")],
         f"{a / 'vocals.wav'}: is an input of this command"),
        (["analyze", str(b), "--plot", str(b / "bass.wav")], f"{b / 'bass.wav'}: is an input of this command"),
        (["analyze", str(a), "--plot", str(advice), "--force"], f"{advice}: not something faderwise wrote"),
        (["apply", str(a), "--advice", str(advice), "--out", str(tmp_path / "o2"), "--plot", str(advice)],
         f"{advice}: is an input of this command"),
        (["analyze", str(a), "--plot", str(notes)], f"{notes}: already exists; choose a new file or pass --force"),
        (["analyze", str(a), "--plot", str(notes), "--force"], f"{notes}: not something faderwise wrote (carries no "
                                                               "faderwise signature)"),
        (["bundle", str(a), "--reference", str(b), "--stem", "vocals", "--out", str(a), "--force"],
         f"{a}: is an input of this command"),
        (["apply", str(a), "--advice", str(advice), "--reference", str(b), "--out", str(b), "--force"],
         f"{b}: is an input of this command"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"faderwise: error: {message}") and err.count("\n") == 1, (argv, err)
    assert snapshot((song, advice, notes)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["advice.json", "notes.txt", "song"]  # no render either
