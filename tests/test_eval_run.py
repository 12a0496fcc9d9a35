"""``faderwise eval``: the report end to end on a small manifest (five advisors, an LLM advisor
and a second judge as stand-ins, text metrics, a scripted agent run), resuming, config errors,
and the human study: the page in headless Chromium, answers ingested, κ and correlations."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import AIMessage

from agent_fakes import ScriptedChatModel
from faderwise.advisor.parse import parse_moves
from faderwise.evals.advisors import EvalConfigError, LLMAdvisor, make_advisor, read_items
from faderwise.evals.judge import JudgeCase, RubricJudge, Verdict, make_judge
from faderwise.evals.run import read_config, run_evaluation
from faderwise.training.synth import read_config as read_synth_config

pytest.importorskip("torch", reason="the shipped audio-language models need the [alm] extra")

REPO = Path(__file__).resolve().parents[1]
ADVISORS = ["measured", "single-mix", "equal-loudness", "alm", "alm-single-mix", "llm:fake", "llm-single-mix:fake"]


class SpecificityBlindJudge:
    """A second judge for the agreement table: the rubric's correctness, every specificity 1,
    one failed verdict (the first item of the equal-loudness advisor's answers) and one verdict
    inconsistent with the rubric (the first of the measured advisor's, scored 1 for correctness)."""

    name = "blind"

    def __init__(self) -> None:
        self.rubric = RubricJudge()
        self.failed_once = False
        self.inconsistent_once = False

    def judge(self, case: JudgeCase) -> Verdict:
        verdict = self.rubric.judge(case)
        if "every stem of the mix would be equally loud" in case.explanation and not self.failed_once:
            self.failed_once = True
            return Verdict(failed="3 attempts, last: the reply holds no JSON object", attempts=3)
        if case.explanation.startswith(("Lower", "Raise", "Leave")) and "dB" in case.explanation \
                and verdict.scores["correctness"] == 5 and not self.inconsistent_once:
            self.inconsistent_once = True
            return Verdict(scores={**verdict.scores, "correctness": 1, "specificity": 1},
                           rationales=verdict.rationales, inconsistent="correctness 1 against the rubric's 5")
        return Verdict(scores={**verdict.scores, "specificity": 1}, rationales=verdict.rationales)

    def rank(self, item: str, cases: Any, *, seed: int = 0) -> Any:
        raise AssertionError("only the first judge ranks")


class Counting:
    """Advisors built by :func:`make_advisor` (LLM advisors on a stand-in model), counting answers."""

    def __init__(self) -> None:
        self.answers = 0

    def __call__(self, name: str) -> Any:
        if name.startswith(("llm:", "llm-single-mix:")):
            advisor = LLMAdvisor(name, EchoModel(), differential=name.startswith("llm:"))
        else:
            advisor = make_advisor(name)
        counting = self

        class Wrapped:
            def __init__(self) -> None:
                self.name, self.hears_reference = advisor.name, advisor.hears_reference

            def answer(self, item: Any) -> str:
                counting.answers += 1
                return advisor.answer(item)

        return Wrapped()


class EchoModel:
    """A chat model that reads the levels it is given and answers as an engineer would."""

    def invoke(self, messages: list[Any]) -> AIMessage:
        facts = messages[-1].content
        levels = [float(x) for x in re.findall(r"(-?\d+\.\d) LUFS", facts)]
        stem = messages[0].content.split("leave the ")[1].split(",")[0]
        move = levels[2] - levels[0] if len(levels) == 4 else 0.0  # B's target against A's
        return AIMessage(f"Raise the {stem} by about {move:.1f} dB." if move > 0 else
                         f"Lower the {stem} by about {-move:.1f} dB.")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("eval")
    (folder / "synth.yaml").write_text(json.dumps({
        "out": "data", "seed": 5, "datasets": [{"kind": "procedural", "songs": 4, "bars": 2, "first_seed": 200}],
        "pairs_per_song": 1, "val": 0.0, "test": 0.99, "targets": "perturbed", "window_s": 10}))
    (folder / "eval.yaml").write_text(json.dumps({
        "dataset": "data", "synth": "synth.yaml", "advisors": ADVISORS, "judges": ["rubric", "blind"],
        "text_metrics": ["bleu", "meteor", "rouge_l", "bertscore"], "bootstrap": 500, "workers": 1,
        "scripts": [str(REPO / "evals" / "scripts" / "follow_ups.yaml")]}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FADERWISE_DATA_DIR", str(folder / "faderwise-data"))
        yield folder


def judges(spec: str) -> Any:
    return SpecificityBlindJudge() if spec == "blind" else make_judge(spec)


@pytest.fixture(scope="module")
def run(workspace: Path) -> tuple[Path, dict[str, Any], float]:
    config = read_config(workspace / "eval.yaml")
    started = time.perf_counter()
    report = run_evaluation(config, workspace / "run", make_advisor_for=Counting(), make_judge_for=judges)
    return workspace / "run", report, time.perf_counter() - started


def test_the_report_answers_the_research_question_with_numbers(run: tuple[Path, dict[str, Any], float],
                                                               workspace: Path) -> None:
    out, report, _ = run
    items = read_items(workspace / "data", split="test")
    assert report["items"] == len(items) >= 6 and report["songs"] == 4
    assert list(report["advisors"]) == ADVISORS
    for name, advisor in report["advisors"].items():
        assert advisor["hears_reference"] == (name in ("measured", "alm", "llm:fake"))
        assert set(advisor) >= {"mae_db", "mae_ci_db", "direction_accuracy", "no_move_share", "per_stem_mae_db",
                                "calibration", "judges", "ranking", "text_metrics"}
        assert advisor["mae_ci_db"]["low"] <= advisor["mae_db"] <= advisor["mae_ci_db"]["high"]
        assert set(advisor["judges"]) == {"rubric", "blind"}
        assert set(advisor["text_metrics"]) == {"bleu", "meteor", "rouge_l", "bertscore_f1"} or set(
            advisor["text_metrics"]) == {"bleu", "meteor_exact_stem", "rouge_l", "bertscore_f1"}
    # the measured advisor's MAE, recomputed from its answers and the manifest
    errors = []
    for item in items:
        said = json.loads((out / "answers" / "measured" / f"{item.id}.json").read_text())["answer"]
        (move,) = [m for m in parse_moves(said, item.stems) if m.stem == item.target]
        errors.append(abs(move.delta_db - item.true_move_db))
    assert report["advisors"]["measured"]["mae_db"] == pytest.approx(np.mean(errors), abs=1e-3)
    assert report["advisors"]["measured"]["mae_db"] < 0.5
    assert report["advisors"]["llm:fake"]["mae_db"] < 1.0  # it was given A's and B's levels
    pairs = [(p["differential"], p["single_mix"]) for p in report["research_question"]]
    assert pairs == [("measured", "single-mix"), ("alm", "alm-single-mix"), ("llm:fake", "llm-single-mix:fake")]
    measured = report["research_question"][0]
    gain = measured["mae_reduction_db"]
    assert gain["value"] == pytest.approx(report["advisors"]["single-mix"]["mae_db"]
                                          - report["advisors"]["measured"]["mae_db"], abs=2e-3)
    assert measured["answer"].startswith("yes: hearing the reference lowers the error by") or gain["low"] <= 0
    markdown = (out / "report.md").read_text()
    assert "## Does hearing the reference help?" in markdown
    assert f"- **measured** (hears A and B) against **single-mix** (hears A only): {measured['answer']}." in markdown
    for plot in ("mae_per_stem.png", "calibration.png", "judge_scores.png", "text_metrics.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({plot})" in markdown


def test_two_judges_are_compared_and_a_failed_verdict_is_counted_not_scored(
        run: tuple[Path, dict[str, Any], float]) -> None:
    _, report, _ = run
    (agreement,) = report["judge_agreement"]
    assert agreement["judges"] == ["rubric", "blind"]
    # the inconsistent verdict stays in the agreement table: it is where the judges disagree
    assert 0.9 < agreement["correctness"]["spearman"] < 1.0 and agreement["correctness"]["kappa_quadratic"] < 1.0
    assert agreement["correctness"]["items"] == 7 * report["items"] - 1
    assert agreement["specificity"]["spearman"] is None  # the blind judge never varies
    blind = report["advisors"]["equal-loudness"]["judges"]["blind"]
    assert (blind["failed"], blind["judged"]) == (1, report["items"] - 1)
    assert report["advisors"]["measured"]["judges"]["blind"]["failed"] == 0
    inconsistent = [(name, a["judges"]["blind"]) for name, a in report["advisors"].items()
                    if a["judges"]["blind"]["inconsistent"]]
    assert len(inconsistent) == 1
    name, scores = inconsistent[0]
    assert scores["inconsistent"] == 1 and scores["judged"] == report["items"] - 1
    # left out of the mean: the blind judge's correctness is the rubric's on the other items
    rubric, n = report["advisors"][name]["judges"]["rubric"]["correctness"], report["items"]
    assert scores["correctness"] == pytest.approx((rubric * n - 5) / (n - 1), abs=1e-3)  # the rubric's 5 left out
    ranks = {name: a["ranking"]["rubric"] for name, a in report["advisors"].items()}
    assert sum(r["wins"] for r in ranks.values()) == pytest.approx(report["items"])
    assert ranks["measured"]["mean_rank"] < ranks["equal-loudness"]["mean_rank"]


def test_the_scripted_agent_run_is_in_the_report(run: tuple[Path, dict[str, Any], float]) -> None:
    out, report, _ = run
    (script,) = report["scripts"]
    assert script["passed"] == script["turns"] > 0 and script["failures"] == []
    assert len((out / "scripts" / "follow_ups.jsonl").read_text().splitlines()) == script["turns"]


def test_a_run_resumes_from_what_it_wrote(run: tuple[Path, dict[str, Any], float], workspace: Path) -> None:
    out, report, seconds = run
    print(f"end-to-end report in {seconds:.1f} s")
    config = read_config(workspace / "eval.yaml")
    again = Counting()
    assert run_evaluation(config, out, make_advisor_for=again, make_judge_for=judges) == report
    assert again.answers == 0
    for lost in sorted((out / "answers" / "alm").iterdir())[:2]:  # as if killed before these were written
        lost.unlink()
    shutil.rmtree(out / "text_metrics")
    resumed = Counting()
    assert run_evaluation(config, out, make_advisor_for=resumed, make_judge_for=judges) == report
    assert resumed.answers == 2
    other = workspace / "other.yaml"
    other.write_text(json.dumps({"dataset": "data", "split": "train"}))
    with pytest.raises(EvalConfigError, match=f"^{out}: holds a run of another test set; choose a new --out folder$"):
        run_evaluation(read_config(other), out)


def test_bad_eval_configs(tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    cases = [
        ({"advisors": ["measured"]}, "needs 'dataset' (a faderwise synth folder)"),
        ({"dataset": "d", "advisor": ["measured"]}, "unknown key advisor (known: "),
        ({"dataset": "d", "text_metrics": ["bleu", "cider"]}, "unknown text metric cider (known: bleu, meteor"),
        ({"dataset": "d", "advisors": ["measured"], "compare": [["measured", "single-mix"]]},
         "'compare' names single-mix, which 'advisors' does not list"),
        ({"dataset": "d", "advisors": "measured"}, "'advisors' must be a list of names"),
        ({"dataset": "d", "sample": 0}, "'sample' must be a whole number of items, 1 or more; got 0"),
        ({"dataset": "d", "limit": "all"}, "'limit' must be a whole number of items, 1 or more; got 'all'"),
    ]
    for payload, message in cases:
        path.write_text(json.dumps(payload))
        with pytest.raises(EvalConfigError, match="^" + re.escape(f"{path}: {message}")):
            read_config(path)
    with pytest.raises(EvalConfigError) as unknown:
        make_advisor("oracle")
    assert str(unknown.value) == (  # the registry's advisors, then the evaluation's own
        "unknown advisor 'oracle': expected measured, single-mix, equal-loudness, alm[:MODEL_FOLDER], "
        "alm-single-mix[:MODEL_FOLDER], alm-pretrained[:MODEL_FOLDER], alm-pretrained-single-mix[:MODEL_FOLDER], "
        "alm-pretrained-zero-shot[:MODEL_FOLDER], no-change, llm:SPEC or llm-single-mix:SPEC (an audio-language one "
        "may follow 'free-text:')")
    with pytest.raises(EvalConfigError, match=r"/nowhere/manifest.jsonl: no manifest; make the test set"):
        read_items(Path("/nowhere"), split="test")


def test_the_example_config_is_offline_and_complete() -> None:
    config = read_config(REPO / "evals" / "configs" / "example.yaml")
    assert config.advisors == ("measured", "single-mix", "equal-loudness", "alm", "alm-single-mix", "no-change")
    assert config.judges == ("rubric",) and config.synth == REPO / "evals" / "configs" / "example-data.yaml"
    synth = read_synth_config(config.synth)
    assert synth.out == config.dataset
    assert synth.targets == "all"  # every stem of a pair is scored, the ones to leave too
    assert synth.datasets[0]["first_seed"] >= 60  # songs the shipped models never heard (their recipe: 0–59)
    assert config.pairs() == [("measured", "single-mix"), ("alm", "alm-single-mix")]


def test_a_sample_spreads_over_the_split_in_manifest_order(run: tuple[Path, dict[str, Any], float],
                                                           workspace: Path) -> None:
    every = read_items(workspace / "data", split="test")
    assert len(every) >= 4
    picked = read_items(workspace / "data", split="test", sample=3)
    assert [item.id for item in picked] == [every[0].id, every[round((len(every) - 1) / 2)].id, every[-1].id]
    assert [item.id for item in read_items(workspace / "data", split="test", sample=len(every) + 5)] == [
        item.id for item in every]


def test_the_pretrained_config_scores_the_fine_tuning_question() -> None:
    """Issue 15: the fine-tuned pretrained miniature beside its single-mix twin, its zero-shot base,
    the small models trained from scratch, the measured advisor and changing nothing."""
    from faderwise.evals.advisors import hears_reference

    config = read_config(REPO / "evals" / "configs" / "pretrained.yaml")
    assert config.sample == 96 and config.split == "test"
    assert {"alm-pretrained", "alm-pretrained-single-mix", "alm-pretrained-zero-shot", "alm", "alm-single-mix",
            "measured", "no-change"} == set(config.advisors)
    assert config.pairs() == [("alm-pretrained", "alm-pretrained-single-mix"),
                              ("alm", "alm-single-mix")]
    assert hears_reference("alm-pretrained-zero-shot") and not hears_reference("alm-pretrained-single-mix")


def test_the_llm_advisor_hears_only_what_its_variant_may(run: tuple[Path, dict[str, Any], float],
                                                        workspace: Path) -> None:
    item = read_items(workspace / "data", split="test")[0]
    model = ScriptedChatModel(responses=[AIMessage("Raise it."), AIMessage("Raise it.")])
    LLMAdvisor("llm:x", model, differential=True).answer(item)
    LLMAdvisor("llm-single-mix:x", model, differential=False).answer(item)
    differential, single = model.seen[0][-1].content, model.seen[1][-1].content
    assert "Version B" in differential and "Version B" not in single
    assert differential.startswith(single.removesuffix("."))


# -- the human study ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study(run: tuple[Path, dict[str, Any], float], workspace: Path) -> Path:
    from faderwise.evals.human import export_packets

    return export_packets(run[0], workspace / "study", items=3, advisors=["measured", "single-mix", "alm"], seed=1)


def test_the_study_page_is_blinded_and_shuffled(study: Path) -> None:
    from faderwise.evals.human import export_packets
    from faderwise.tools.errors import OutputExistsError

    page = (study / "index.html").read_text()
    key = json.loads((study / "key.json").read_text())
    entries = key["entries"]
    assert len(entries) == 9 and sorted({e["advisor"] for e in entries.values()}) == ["alm", "measured", "single-mix"]
    data = json.loads(page.split('<script id="study-data" type="application/json">')[1].split("</script>")[0])
    assert [e["id"] for e in data["entries"]] == sorted(entries)
    assert all(set(e) == {"id", "item", "target", "explanation"} for e in data["entries"])
    assert '"advisor"' not in page and "single-mix" not in page
    order = [(entries[e]["item"], entries[e]["advisor"]) for e in sorted(entries)]
    assert order != sorted(order)
    assert all(uri.startswith("data:audio/flac;base64,") for clips in data["audio"].values() for uri in clips.values())
    with pytest.raises(OutputExistsError, match=f"^{study}: already exists; choose a new folder or pass --force"):
        export_packets(study.parent / "run", study)


def _browser() -> Any:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    return webdriver, Service


def test_the_page_plays_the_clips_and_saves_the_answers_in_headless_chromium(study: Path, tmp_path: Path) -> None:
    webdriver, Service = _browser()
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium")
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get((study / "index.html").as_uri())
        durations = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            Promise.all(Array.from(document.querySelectorAll("audio")).map((audio) => audio.readyState >= 1
              ? audio.duration : new Promise((ok) => { audio.onloadedmetadata = () => ok(audio.duration);
                                                        audio.onerror = () => ok(-1); audio.load(); }))).then(done);
        """)
        lengths = {round(item.bundle.target_a.shape[1] / item.bundle.rate, 1)
                   for item in read_items(study.parent / "data", split="test")}
        assert len(durations) == 4 * 9 and {round(d, 1) for d in durations} <= lengths  # the FLAC decoded whole
        driver.find_element(By.ID, "save-json").click()
        assert driver.find_element(By.ID, "status").text == "Please enter your name or annotator code first."
        driver.find_element(By.ID, "annotator").send_keys("ann 1")
        driver.find_element(By.CSS_SELECTOR, 'input[name="E001:correctness"][value="4"]').click()
        driver.find_element(By.CSS_SELECTOR, 'input[name="E002:specificity"][value="2"]').click()
        driver.find_element(By.CSS_SELECTOR, 'input[name="E001:gain_only"]').click()
        driver.find_element(By.NAME, "E003:comment").send_keys('too "vague", really')
        driver.refresh()  # the answers survive a reload (kept in the browser)
        assert driver.find_element(By.CSS_SELECTOR, 'input[name="E001:correctness"][value="4"]').is_selected()
        driver.find_element(By.ID, "save-json").click()
        driver.find_element(By.ID, "save-csv").click()
        deadline = time.time() + 10
        while len(list(tmp_path.glob("*-ann_1.*"))) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert driver.find_element(By.ID, "status").text == "Saved; 9 entries still have unanswered questions."
    finally:
        driver.quit()
    key = json.loads((study / "key.json").read_text())
    saved = json.loads(next(tmp_path.glob("*-ann_1.json")).read_text())
    assert (saved["format"], saved["study"], saved["annotator"]) == ("faderwise.study-answers/1", key["id"], "ann 1")
    first = saved["answers"][0]
    assert first["entry"] == "E001" and first["ratings"]["correctness"] == 4 and first["ratings"]["novelty"] is None
    assert first["codes"] == {"audio_cues": False, "comparative": False, "gain_only": True}
    rows = list(csv.DictReader(next(tmp_path.glob("*-ann_1.csv")).read_text().splitlines()))
    assert rows[2]["comment"] == 'too "vague", really' and rows[0]["gain_only"] == "1" and rows[1]["specificity"] == "2"

    from faderwise.evals.human import ingest, read_answers

    assert read_answers(next(tmp_path.glob("*-ann_1.csv")), study=key).ratings == read_answers(
        next(tmp_path.glob("*-ann_1.json")), study=key).ratings
    assert ingest(study, [next(tmp_path.glob("*-ann_1.json"))])["annotators"] == ["ann 1"]


def write_answers(path: Path, study: dict[str, Any], annotator: str, ratings: dict[str, dict[str, int]],
                  codes: dict[str, dict[str, bool]]) -> Path:
    path.write_text(json.dumps({"format": "faderwise.study-answers/1", "study": study["id"], "annotator": annotator,
                                "answers": [{"entry": e, "ratings": ratings[e], "codes": codes[e], "comment": ""}
                                            for e in sorted(ratings)]}))
    return path


def test_ingest_unblinds_and_computes_kappa_and_judge_correlation(study: Path, run: tuple[Path, dict[str, Any], float],
                                                                  tmp_path: Path) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from faderwise.evals.human import QUESTIONS, StudyError, ingest, write_ingest

    key = json.loads((study / "key.json").read_text())
    entries = sorted(key["entries"])
    rubric = {e: json.loads((run[0] / "judgements" / "rubric" / key["entries"][e]["advisor"] /
                             f"{key['entries'][e]['item']}.json").read_text())["scores"] for e in entries}
    # both annotators rate correctness as the rubric judge did; their codes agree on 7 of 9 entries
    ratings = {e: {q: rubric[e]["correctness"] if q == "correctness" else 3 for q, _ in QUESTIONS} for e in entries}
    codes_1 = {e: {"audio_cues": i % 2 == 0, "comparative": i < 5, "gain_only": True} for i, e in enumerate(entries)}
    codes_2 = {e: {**codes_1[e], "audio_cues": (i % 2 == 0) != (i in (1, 4))} for i, e in enumerate(entries)}
    first = write_answers(tmp_path / "a.json", key, "ann-a", ratings, codes_1)
    second = write_answers(tmp_path / "b.json", key, "ann-b", ratings, codes_2)
    result = ingest(study, [first, second], run=run[0])
    (pair,) = result["agreement"]
    expected = sklearn_metrics.cohen_kappa_score([codes_1[e]["audio_cues"] for e in entries],
                                                 [codes_2[e]["audio_cues"] for e in entries])
    assert pair["audio_cues"] == pytest.approx(expected, abs=1e-4)
    assert pair["comparative"] == 1.0 and pair["gain_only"] == 1.0  # one label used by both: full agreement
    assert result["judge_correlation"]["rubric"]["correctness~correctness"]["spearman"] == pytest.approx(1.0)
    assert result["advisors"]["measured"]["correctness"] == {"mean": 5.0, "n": 6}
    write_ingest(result, tmp_path / "results")
    assert "Cohen's κ, ann-a and ann-b (9 entries)" in (tmp_path / "results" / "human.md").read_text()

    bad = dict(ratings)
    bad[entries[0]] = {**ratings[entries[0]], "novelty": 7}
    with pytest.raises(StudyError, match=rf"^{tmp_path}/c.json: entry {entries[0]} novelty = 7; ratings are 1 to 5$"):
        ingest(study, [write_answers(tmp_path / "c.json", key, "ann-c", bad, codes_1)])
    with pytest.raises(StudyError, match=rf"^{tmp_path}/d.json: answers to study 'another', not '{key['id']}'$"):
        ingest(study, [write_answers(tmp_path / "d.json", {"id": "another"}, "ann-d", ratings, codes_1)])


def test_answers_from_worker_processes_equal_answers_from_one(run: tuple[Path, dict[str, Any], float],
                                                              workspace: Path, tmp_path: Path) -> None:
    """Two spawned processes answer the same as the run's single process did."""
    from faderwise.evals.run import collect_answers

    config = read_config(workspace / "eval.yaml")
    items = read_items(workspace / "data", split="test")
    parallel = dataclasses.replace(config, advisors=("measured", "single-mix"), workers=2)
    answers = collect_answers(parallel, items, tmp_path)
    for name in ("measured", "single-mix"):
        assert answers[name] == {item.id: json.loads((run[0] / "answers" / name / f"{item.id}.json").read_text())[
            "answer"] for item in items}


def test_the_eval_commands(workspace: Path, run: tuple[Path, dict[str, Any], float], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    from faderwise.cli import main

    config = tmp_path / "eval.yaml"
    config.write_text(json.dumps({"dataset": str(workspace / "data"), "advisors": ["measured", "single-mix"],
                                  "text_metrics": [], "bootstrap": 200}))
    assert main(["eval", "run", str(config), "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert f"measured against single-mix: {report['research_question'][0]['answer']}" in printed
    assert f"wrote {tmp_path / 'run' / 'report.md'}" in printed
    assert main(["eval", "packets", str(tmp_path / "run"), "--out", str(tmp_path / "study"), "--items", "2"]) == 0
    assert "send this page to the annotators" in capsys.readouterr().out
    assert main(["eval", "packets", str(tmp_path / "run"), "--out", str(tmp_path / "study")]) == 2
    assert "already exists; choose a new folder or pass --force" in capsys.readouterr().err
    key = json.loads((tmp_path / "study" / "key.json").read_text())
    answers = write_answers(tmp_path / "a.json", key, "ann", {e: {"correctness": 3} for e in key["entries"]},
                            {e: {"gain_only": True} for e in key["entries"]})
    assert main(["eval", "ingest", str(tmp_path / "study"), str(answers)]) == 0
    assert "1 annotators (ann), 4 entries." in capsys.readouterr().out
    assert (tmp_path / "study" / "results" / "human.json").is_file()
    assert main(["eval", "ingest", str(tmp_path / "run"), str(answers)]) == 2
    assert f"faderwise: error: {tmp_path / 'run' / 'key.json'}: not a study folder (no key.json)\n" == capsys.readouterr().err


def test_an_item_with_a_consensus_range_is_scored_by_the_distance_to_it(workspace: Path) -> None:
    from faderwise.evals.advisors import EvalItem
    from faderwise.evals.report import stem_error

    item = read_items(workspace / "data", split="test")[0]
    low, high = item.true_move_db - 1.0, item.true_move_db + 2.0
    ranged = EvalItem(item.dataset, {**item.record, "consensus_range_db": [low, high]})
    said = f"Raise the {item.target} by about {high + 1.5:.1f} dB." if high + 1.5 > 0 else \
        f"Lower the {item.target} by about {-(high + 1.5):.1f} dB."
    assert stem_error(ranged, said).error_db == pytest.approx(1.5, abs=0.05)
    assert stem_error(item, said).error_db == pytest.approx(3.5, abs=0.05)
