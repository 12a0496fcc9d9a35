"""Held-out accuracy of a trained audio-language model on a synthesized dataset's test split
(``faderwise eval model MODEL DATASET``).

For every test item the model hears the item's clips (the 4-clip bundle, or A's mix for the
single-mix model) and answers, decoded in its training text's grammar (the move is the path the
decoding took) or as free text (:func:`faderwise.advisor.parse.parse_moves` reads the move it states
for the target stem). An answer with no move for the target counts as "no change" (0 dB) in the
error, and is counted apart. Baselines in the same run: "no change" (every move 0) and the
measured advisor on the same 16 kHz bundle clips.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faderwise.advisor.alm import AudioLanguageAdvisor
from faderwise.advisor.measured import MeasuredAdvisor
from faderwise.evals.gain_error import StemError, summarise
from faderwise.tools.bundle import read_bundle
from faderwise.tools.input_files import MANIFEST_LIMIT_BYTES, read_text_bounded
from faderwise.training.train import load_examples

EVALUATION_FORMAT = "faderwise.model-evaluation/1"


def _summary(errors: list[StemError]) -> dict[str, Any]:
    """Every gain-error figure (:class:`~faderwise.evals.gain_error.Summary`) and the MAE per stem."""
    per_stem: dict[str, list[StemError]] = {}
    for error in errors:
        per_stem.setdefault(error.stem, []).append(error)
    return {**summarise(errors).to_json(),
            "per_stem_mae_db": {stem: round(summarise(group).mae_db, 3) for stem, group in sorted(per_stem.items())}}


def evaluate_model(model_folder: str | Path, dataset: str | Path, *, variant: str, split: str = "test",
                   limit: int | None = None, on_item: Callable[[int, int], None] | None = None,
                   decoding: str = "constrained") -> dict[str, Any]:
    """MAE (dB), direction accuracy and per-stem MAE of the model's stated moves on ``split``,
    with the no-change and measured baselines on the same items; the model's answers decoded as
    ``decoding`` says (:data:`~faderwise.advisor.constrained.DECODINGS`)."""
    dataset = Path(dataset)
    differential = variant == "differential"
    advisor = AudioLanguageAdvisor(model_folder, differential=differential, decoding=decoding)
    records = {json.loads(line)["id"]: json.loads(line)
               for line in read_text_bounded(dataset / "manifest.jsonl", limit=MANIFEST_LIMIT_BYTES,
                                             what="a manifest").splitlines() if line.strip()}
    examples = load_examples(dataset, split, variant=variant, limit=limit)
    model_errors, none_errors, measured_errors, unparsed, answers = [], [], [], 0, []
    for index, example in enumerate(examples):
        record = records[example.item]
        found = advisor.decode(list(example.clips), example.target)
        if found.move_db is None:
            unparsed += 1
        predicted = found.move_db or 0.0
        truth = example.target_move_db
        model_errors.append(StemError(example.target, truth, predicted))
        none_errors.append(StemError(example.target, truth, 0.0))
        bundle = read_bundle(dataset / record["bundle"], alm=True)
        measured = MeasuredAdvisor().advise_bundle(bundle).move_for(example.target)
        measured_errors.append(StemError(example.target, truth, measured.delta_db if measured else 0.0))
        answers.append({"item": example.item, "true_db": truth, "stated_db": found.move_db, "answer": found.text})
        if on_item:
            on_item(index + 1, len(examples))
    return {
        "format": EVALUATION_FORMAT, "model": str(model_folder), "variant": variant, "decoding": decoding, "split": split, "items": len(examples),
        "no_move_share": round(unparsed / len(examples), 3) if examples else math.nan,
        "model_scores": _summary(model_errors),
        "no_change": _summary(none_errors),
        "measured_on_bundle_clips": _summary(measured_errors),
        "answers": answers,
    }
