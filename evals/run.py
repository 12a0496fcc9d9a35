"""``faderwise eval run CONFIG --out DIR``: every advisor of the config answers every test item,
the answers are judged (scores and listwise ranks) and compared with the reference explanations,
scripted agent runs are replayed, and :mod:`faderwise.evals.report` writes the report.

Resumable and parallel like synthesis: each answer, verdict and ranking is written whole to its
own file under ``DIR`` as soon as it exists and is skipped when present, so a killed run goes on
where it stopped; answers come from ``workers`` processes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from faderwise.evals.advisors import EvalConfigError, EvalItem, make_advisor, read_items, single_mix_twin
from faderwise.evals.judge import Judge, JudgeCase, Ranking, Verdict, make_judge
from faderwise.tools.input_files import CONFIG_LIMIT_BYTES, LOG_LIMIT_BYTES, exists_as_file, read_text_bounded
from faderwise.tools.json_files import read_json, read_yaml, write_json
from faderwise.tools.outputs import claim_run_folder, slug

RUN_FORMAT = "faderwise.eval-run/1"
DEFAULT_ADVISORS = ("measured", "single-mix", "equal-loudness", "alm", "alm-single-mix")
TEXT_METRICS = ("bleu", "meteor", "rouge_l", "bertscore")


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate. Paths are absolute (relative ones in the file start at the file).

    Attributes:
        dataset: a ``faderwise synth`` folder with the test items.
        synth: a synth config that makes ``dataset`` when its manifest is missing.
        judges: the first is the main judge; with two, the report says how they agree.
        compare: pairs (differential, single-mix) for the research question; by default every
            pair of the advisors that exists among (measured, single-mix), (alm, alm-single-mix)
            and (llm:X, llm-single-mix:X).
        scripts: ``faderwise run`` scripts replayed with the offline planner.
    """

    dataset: Path
    synth: Path | None = None
    split: str = "test"
    limit: int | None = None
    sample: int | None = None
    """Score this many items spread evenly over the split (after ``limit``), not all of them."""
    advisors: tuple[str, ...] = DEFAULT_ADVISORS
    judges: tuple[str, ...] = ("rubric",)
    listwise: bool = True
    text_metrics: tuple[str, ...] = TEXT_METRICS
    bertscore_model: str | None = None
    bertscore_baseline: str | None = None
    compare: tuple[tuple[str, str], ...] = ()
    scripts: tuple[Path, ...] = ()
    bootstrap: int = 2000
    seed: int = 0
    workers: int = 1
    source: Path | None = field(default=None, compare=False)

    def pairs(self) -> list[tuple[str, str]]:
        if self.compare:
            return [tuple(pair) for pair in self.compare]  # type: ignore[misc]
        return [(name, twin) for name in self.advisors
                if (twin := single_mix_twin(name)) is not None and twin in self.advisors]


def read_config(path: str | os.PathLike[str]) -> EvalConfig:
    """Read an evaluation config (YAML).

    Raises:
        EvalConfigError: a missing file, an unknown key or a value of the wrong kind (the message
            names the file and the key).
    """
    path = Path(path)
    payload = read_yaml(path, error=EvalConfigError, missing="no such config", limit=CONFIG_LIMIT_BYTES,
                        what="a config file")
    if not isinstance(payload, dict) or not isinstance(payload.get("dataset"), str):
        raise EvalConfigError(f"{path}: needs 'dataset' (a faderwise synth folder)")
    known = {f.name for f in fields(EvalConfig)} - {"source"}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise EvalConfigError(f"{path}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for key in ("advisors", "judges", "text_metrics", "scripts"):
        if key in payload and (not isinstance(payload[key], list) or not all(isinstance(v, str) for v in payload[key])):
            raise EvalConfigError(f"{path}: '{key}' must be a list of names")
    unknown_metrics = sorted(set(payload.get("text_metrics", [])) - set(TEXT_METRICS))
    if unknown_metrics:
        raise EvalConfigError(f"{path}: unknown text metric {', '.join(unknown_metrics)} "
                              f"(known: {', '.join(TEXT_METRICS)})")
    if not payload.get("advisors", True) or not payload.get("judges", True):
        raise EvalConfigError(f"{path}: 'advisors' and 'judges' need at least one name each")
    for key in ("limit", "sample"):
        value = payload.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise EvalConfigError(f"{path}: '{key}' must be a whole number of items, 1 or more; got {value!r}")
    here = path.parent
    values: dict[str, Any] = dict(payload)
    values["dataset"] = (here / payload["dataset"]).resolve()
    if payload.get("synth"):
        values["synth"] = (here / payload["synth"]).resolve()
    for key in ("advisors", "judges", "text_metrics"):
        if key in payload:
            values[key] = tuple(payload[key])
    values["scripts"] = tuple((here / s).resolve() for s in payload.get("scripts", []))
    if "compare" in payload:
        pairs = payload["compare"]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise EvalConfigError(f"{path}: 'compare' must be a list of [differential, single-mix] pairs")
        missing = sorted({name for pair in pairs for name in pair} - set(values.get("advisors", DEFAULT_ADVISORS)))
        if missing:
            raise EvalConfigError(f"{path}: 'compare' names {', '.join(missing)}, which 'advisors' does not list")
        values["compare"] = tuple(tuple(p) for p in pairs)
    return EvalConfig(**values, source=path)


# -- answers --------------------------------------------------------------------------------------

_ADVISORS: dict[str, Any] = {}


def _one_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def _answer_items(name: str, items: Sequence[EvalItem]) -> list[tuple[str, str]]:
    """(item id, answer) for ``items`` by advisor ``name``, built once per process."""
    if name not in _ADVISORS:
        _ADVISORS[name] = make_advisor(name)
    advisor = _ADVISORS[name]
    return [(item.id, advisor.answer(item)) for item in items]


def answer_path(out: Path, advisor: str, item: str) -> Path:
    return out / "answers" / slug(advisor) / f"{item}.json"


def collect_answers(config: EvalConfig, items: Sequence[EvalItem], out: Path, *,
                    on_progress: Callable[[str, int, int], None] | None = None,
                    make: Callable[[str], Any] = make_advisor) -> dict[str, dict[str, str]]:
    """advisor → item id → answer, computing only the missing ones (in ``config.workers``
    processes, a chunk of items per task)."""
    todo = [(name, [item for item in items if not answer_path(out, name, item.id).is_file()])
            for name in config.advisors]
    total = sum(len(pending) for _, pending in todo)
    done = 0

    def store(name: str, answers: list[tuple[str, str]]) -> None:
        nonlocal done
        for item_id, text in answers:
            write_json(answer_path(out, name, item_id), {"advisor": name, "item": item_id, "answer": text})
        done += len(answers)
        if on_progress:
            on_progress("answers", done, total)

    chunks = [(name, pending[i:i + 8]) for name, pending in todo for i in range(0, len(pending), 8)]
    if config.workers > 1 and make is make_advisor and chunks:
        # spawned, one thread each: forked children of a process that ran torch crawl, and
        # several processes each using every core for torch only fight over the cores
        with ProcessPoolExecutor(max_workers=config.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_one_thread) as pool:
            futures = [(name, pool.submit(_answer_items, name, chunk)) for name, chunk in chunks]
            for name, future in futures:
                store(name, future.result())
    else:
        built = {name: make(name) for name, pending in todo if pending}
        for name, chunk in chunks:
            store(name, [(item.id, built[name].answer(item)) for item in chunk])
    return {name: {item.id: str(read_json(answer_path(out, name, item.id), error=EvalConfigError)["answer"])  # type: ignore[index]
                   for item in items} for name in config.advisors}


# -- judging --------------------------------------------------------------------------------------


def judge_case(item: EvalItem, answer: str, facts: Mapping[str, Any]) -> JudgeCase:
    return JudgeCase(item=item.id, target=item.target, stems=item.stems, true_move_db=item.true_move_db,
                     facts=facts, explanation=answer)


def bundle_facts(item: EvalItem) -> dict[str, Any]:
    """The measured facts a judge is given: the measured advisor's evidence on the bundle."""
    from faderwise.advisor.measured import MeasuredAdvisor

    return dict(MeasuredAdvisor().advise_bundle(item.bundle).evidence["target"])  # type: ignore[arg-type]


def collect_verdicts(judge: Judge, answers: Mapping[str, Mapping[str, str]], items: Sequence[EvalItem],
                     facts: Mapping[str, Mapping[str, Any]], out: Path, *,
                     on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, dict[str, Verdict]]:
    """advisor → item id → the judge's verdict (cached per file)."""
    verdicts: dict[str, dict[str, Verdict]] = {}
    total, done = len(answers) * len(items), 0
    for advisor, by_item in answers.items():
        verdicts[advisor] = {}
        for item in items:
            path = out / "judgements" / slug(judge.name) / slug(advisor) / f"{item.id}.json"
            if path.is_file():
                verdict = Verdict.from_json(read_json(path, error=EvalConfigError))  # type: ignore[arg-type]
            else:
                verdict = judge.judge(judge_case(item, by_item[item.id], facts[item.id]))
                write_json(path, verdict.to_json())
            verdicts[advisor][item.id] = verdict
            done += 1
            if on_progress:
                on_progress(f"judging ({judge.name})", done, total)
    return verdicts


def collect_rankings(judge: Judge, answers: Mapping[str, Mapping[str, str]], items: Sequence[EvalItem],
                     facts: Mapping[str, Mapping[str, Any]], out: Path, *, seed: int) -> list[Ranking]:
    """One listwise ranking of all advisors' answers per item (cached per file)."""
    rankings = []
    for item in items:
        path = out / "rankings" / slug(judge.name) / f"{item.id}.json"
        if path.is_file():
            rankings.append(Ranking.from_json(read_json(path, error=EvalConfigError)))  # type: ignore[arg-type]
            continue
        cases = {advisor: judge_case(item, by_item[item.id], facts[item.id]) for advisor, by_item in answers.items()}
        ranking = judge.rank(item.id, cases, seed=seed)
        write_json(path, ranking.to_json())
        rankings.append(ranking)
    return rankings


# -- the whole run --------------------------------------------------------------------------------


def ensure_dataset(config: EvalConfig) -> None:
    """Make the test set from ``config.synth`` when the dataset has no manifest yet."""
    if (config.dataset / "manifest.jsonl").is_file() or config.synth is None:
        return
    from faderwise.training.synth import read_config as read_synth_config
    from faderwise.training.synth import synthesize

    synth = read_synth_config(config.synth)
    if synth.out != config.dataset:
        raise EvalConfigError(f"{config.source}: 'synth' writes to {synth.out}, not to the dataset {config.dataset}")
    synthesize(synth)


def run_evaluation(config: EvalConfig, out: Path, *, on_progress: Callable[[str, int, int], None] | None = None,
                   make_advisor_for: Callable[[str], Any] = make_advisor,
                   make_judge_for: Callable[[str], Judge] = make_judge) -> dict[str, Any]:
    """Evaluate and write ``report.json``, ``report.md`` and the plots into ``out`` (created;
    files already there from an interrupted run of the same config are reused). Returns the
    report. ``make_advisor_for`` / ``make_judge_for`` let tests put stand-ins in."""
    from faderwise.evals.report import build_report, write_report

    claim_run_folder(out, kind="eval-run", legacy="run.json", inputs=[config.dataset])
    marker = out / "run.json"
    settings = {"format": RUN_FORMAT, "dataset": str(config.dataset), "split": config.split, "limit": config.limit,
                **({"sample": config.sample} if config.sample is not None else {})}
    if marker.is_file() and read_json(marker, error=EvalConfigError) != settings:
        raise EvalConfigError(f"{out}: holds a run of another test set; choose a new --out folder")
    ensure_dataset(config)
    items = read_items(config.dataset, split=config.split, limit=config.limit, sample=config.sample)
    if not marker.is_file():
        write_json(marker, settings)
    answers = collect_answers(config, items, out, on_progress=on_progress, make=make_advisor_for)
    facts = {item.id: bundle_facts(item) for item in items}
    judges = [make_judge_for(spec) for spec in config.judges]
    verdicts = {judge.name: collect_verdicts(judge, answers, items, facts, out, on_progress=on_progress)
                for judge in judges}
    rankings = {}
    if config.listwise and len(config.advisors) > 1:
        rankings = {judges[0].name: collect_rankings(judges[0], answers, items, facts, out, seed=config.seed)}
    texts = text_scores(config, items, answers, out, on_progress=on_progress)
    scripts = [replay_script(path, out) for path in config.scripts]
    report = build_report(config, items, answers, verdicts, rankings, texts, scripts)
    write_report(report, out)
    return report


def reference_explanations(item: EvalItem) -> list[str]:
    """Every differential paraphrase of the item's true move with its evidence (the templates
    the explanations were synthesized from)."""
    from faderwise.training.templates import explanation, template_count

    count = template_count(differential=True, leave=abs(item.true_move_db) < 0.5)
    return [explanation(item.target, item.true_move_db, item.record["evidence"], differential=True, template=i)
            for i in range(count)]


def text_scores(config: EvalConfig, items: Sequence[EvalItem], answers: Mapping[str, Mapping[str, str]], out: Path,
                *, on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """advisor → item id → metric → {"max", "mean"} (cached per advisor)."""
    if not config.text_metrics:
        return {}
    from faderwise.evals.text_metrics import BertScore, Meteor, score_texts

    bert = None
    meteor = Meteor.best_available() if "meteor" in config.text_metrics else None
    references = [reference_explanations(item) for item in items]
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for index, (advisor, by_item) in enumerate(answers.items(), 1):
        path = out / "text_metrics" / f"{slug(advisor)}.json"
        cached = read_json(path, error=EvalConfigError) if path.is_file() else None
        if isinstance(cached, dict) and sorted(cached) == sorted(item.id for item in items):
            result[advisor] = cached
            continue
        if bert is None and "bertscore" in config.text_metrics:
            bert = BertScore(model=config.bertscore_model, baseline=config.bertscore_baseline)
        scores = score_texts([by_item[item.id] for item in items], references, meteor=meteor, bertscore=bert,
                             bleu_and_rouge=bool({"bleu", "rouge_l"} & set(config.text_metrics)))
        result[advisor] = {item.id: {metric: {"max": s.best, "mean": s.mean} for metric, s in row.items()
                                     if metric in config.text_metrics or metric.startswith(("meteor", "bertscore"))}
                           for item, row in zip(items, scores)}
        write_json(path, result[advisor], force=True)  # recomputed: the cached table was for other items
        if on_progress:
            on_progress("text metrics", index, len(answers))
    return result


def replay_script(path: Path, out: Path) -> dict[str, Any]:
    """Replay a ``faderwise run`` script with its own model (offline unless it names one); a
    transcript already in ``out`` (an earlier run of the same folder) is read instead."""
    import json

    from faderwise.agent.script import read_script, run_script

    transcript = out / "scripts" / f"{path.stem}.jsonl"
    if exists_as_file(transcript, what="a transcript", limit=LOG_LIMIT_BYTES):
        records = [json.loads(line) for line in read_text_bounded(transcript, limit=LOG_LIMIT_BYTES,
                                                                  what="a transcript").splitlines() if line.strip()]
    else:
        records = run_script(read_script(path), llm=None, output_dir=out / "scripts" / path.stem,
                             transcript=transcript)
    return {"script": str(path), "turns": len(records), "passed": sum(r["passed"] for r in records),
            "seconds": [r["seconds"] for r in records],
            "failures": [f"turn {r['turn']}: {f}" for r in records for f in r["failures"]]}
