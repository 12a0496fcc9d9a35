"""The human evaluation kit.

``faderwise eval packets RUN --out STUDY`` exports a listening study from a finished evaluation
run: per entry the four clips (A stem, A backing, B stem, B backing) and one advisor's
explanation, with the research plan's survey (correctness of the stated adjustment, specificity
to audio evidence, conversational naturalness, perceived creative contribution, novelty, free
text) and the manual coding scheme (reference to concrete audio cues, comparative A-vs-B
reasoning, adherence to the gain-only boundary). ``STUDY/index.html`` is one self-contained page
(audio embedded as FLAC) that saves the answers as JSON or CSV; advisors are blinded (the key is
in ``STUDY/key.json``, never in the page) and the order is shuffled.

``faderwise eval ingest STUDY ANSWERS…`` reads the saved answers, unblinds them, and computes
per-advisor ratings, Cohen's κ between annotators, and Spearman / Kendall correlations between
the run's judge scores and the human ratings.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faderwise.evals.advisors import read_items
from faderwise.evals.judge import Verdict
from faderwise.evals.run import answer_path
from faderwise.evals.stats import cohen_kappa, rank_correlation
from faderwise.tools.bundle import CLIP_NAMES
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.input_files import JSON_LIMIT_BYTES, read_text_bounded
from faderwise.tools.json_files import read_json, write_json
from faderwise.tools.outputs import check_target, note_input, output_folder, slug, write_text

STUDY_FORMAT = "faderwise.study/1"
ANSWERS_FORMAT = "faderwise.study-answers/1"
STUDY_ANSWERS = "study answers"
"""What an annotator's answers file is called in the input checks (:mod:`faderwise.tools.input_files`)."""
QUESTIONS = (
    ("correctness", "Is the stated adjustment correct (direction and size), judging by the clips?"),
    ("specificity", "Is the explanation specific to what you hear (levels, instruments, moments)?"),
    ("naturalness", "Does it read like a natural conversation with a mixing engineer?"),
    ("creative_contribution", "Does it contribute something to the creative decision?"),
    ("novelty", "Does it tell you something you would not have noticed yourself?"),
)
CODES = (
    ("audio_cues", "refers to concrete audio cues (levels, bands, moments)"),
    ("comparative", "reasons comparatively, Version A against Version B"),
    ("gain_only", "stays within gain advice (no EQ, compression or effects)"),
)
CLIP_LABELS = {"target_a": "Your mix: the stem", "backing_a": "Your mix: everything else",
               "target_b": "Reference: the stem", "backing_b": "Reference: everything else"}
# which judge criterion a human rating or code is compared with
JUDGE_COUNTERPARTS = {"correctness": "correctness", "specificity": "specificity", "gain_only": "safety"}


class StudyError(FaderwiseError):
    """A study folder or an answers file that cannot be used (the message names the file)."""


def _flac_data_uri(clip: np.ndarray, rate: int) -> str:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(clip, dtype=np.float32).T, rate, format="FLAC", subtype="PCM_16")
    return "data:audio/flac;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def export_packets(run: Path, out: Path, *, items: int | None = None, advisors: Sequence[str] | None = None,
                   seed: int = 0, force: bool = False) -> Path:
    """Write the study folder ``out`` (new, unless ``force`` replaces it once the new one is
    complete) from the evaluation run in ``run``: ``items`` test items (all by default), each
    with every advisor's answer (or those of ``advisors``)."""
    note_input(run)
    settings = read_json(run / "run.json", error=StudyError, missing="not an evaluation run (no run.json)")
    if not isinstance(settings, dict) or "dataset" not in settings:
        raise StudyError(f"{run / 'run.json'}: not written by faderwise eval run")
    note_input(settings["dataset"])
    check_target(out, folder=True, force=force)  # before the clips are encoded
    chosen_items = read_items(Path(settings["dataset"]), split=settings["split"], limit=settings["limit"])[:items]
    names = list(advisors) if advisors else sorted(p.name for p in (run / "answers").iterdir() if p.is_dir())
    entries, key = [], {}
    for item in chosen_items:
        for advisor in names:
            path = answer_path(run, advisor, item.id)
            if not path.is_file():
                raise StudyError(f"{path}: no answer of {advisor} for {item.id}; finish the run first")
            answer = read_json(path, error=StudyError)
            # the name as the run gave it (a folder name is only its file-safe form)
            entries.append((item, str(answer["advisor"]), str(answer["answer"])))  # type: ignore[index]
    random.Random(seed).shuffle(entries)
    fingerprint = json.dumps([str(run.resolve()), seed, [(item.id, advisor) for item, advisor, _ in entries]])
    study_id = "study-" + hashlib.sha1(fingerprint.encode()).hexdigest()[:8]
    page_entries = []
    for number, (item, advisor, text) in enumerate(entries, 1):
        entry_id = f"E{number:03d}"
        key[entry_id] = {"item": item.id, "advisor": advisor, "target": item.target,
                         "true_move_db": item.true_move_db}
        page_entries.append({"id": entry_id, "item": item.id, "target": item.target, "explanation": text})
    with output_folder(out, kind="study", force=force, inputs=[run]) as staging:
        audio = {item.id: {name: _flac_data_uri(clip, item.bundle.rate) for name, clip in item.bundle.clips().items()}
                 for item in chosen_items}
        study = {"format": STUDY_FORMAT, "id": study_id, "entries": page_entries, "audio": audio,
                 "clip_order": list(CLIP_NAMES), "clip_labels": CLIP_LABELS,
                 "questions": [{"id": q, "text": t} for q, t in QUESTIONS],
                 "codes": [{"id": c, "text": t} for c, t in CODES]}
        write_text(staging / "index.html", study_page(study))
        write_json(staging / "key.json", {"format": STUDY_FORMAT, "id": study_id, "run": str(run.resolve()),
                                          "entries": key})
    return out


def study_page(study: Mapping[str, Any]) -> str:
    """The self-contained HTML page of a study (data embedded as JSON; no network)."""
    data = json.dumps(study).replace("</", "<\\/")  # nothing in the data can close the script element
    return PAGE.replace("__STUDY_JSON__", data)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>faderwise listening study</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.4; }
.entry { border: 1px solid #ccc; border-radius: 6px; padding: 1rem; margin: 1.5rem 0; }
.clips { display: grid; grid-template-columns: 1fr 1fr; gap: .5rem 1rem; }
.clips label { display: block; font-size: .9rem; }
blockquote { background: #f4f4f4; margin: 1rem 0; padding: .75rem 1rem; border-left: 4px solid #888; }
fieldset { border: none; padding: .25rem 0; margin: 0; }
legend { font-weight: 600; }
.scale label { margin-right: .8rem; }
textarea { width: 100%; min-height: 3rem; }
#status { font-weight: 600; }
</style>
</head>
<body>
<h1>Listening study: gain advice</h1>
<p>Each entry has four clips: the stem and everything else, in your mix (Version A) and in a balanced reference
(Version B), and one piece of advice about the stem's fader. Listen, then rate the advice from 1 (not at all) to
5 (completely) and tick the codes that apply. Answers are kept in this browser while you work; save them with the
buttons at the end and send the file back.</p>
<p><label>Your name or annotator code: <input id="annotator" autocomplete="off"></label></p>
<div id="entries"></div>
<p><button id="save-json" type="button">Save answers (JSON)</button>
<button id="save-csv" type="button">Save answers (CSV)</button></p>
<p id="status" role="status"></p>
<script id="study-data" type="application/json">__STUDY_JSON__</script>
<script>
"use strict";
const STUDY = JSON.parse(document.getElementById("study-data").textContent);
const STORE = "faderwise:" + STUDY.id;

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function render() {
  const root = document.getElementById("entries");
  STUDY.entries.forEach((entry, index) => {
    const box = element("section", {class: "entry", id: entry.id});
    box.append(element("h2", {}, `Entry ${index + 1} of ${STUDY.entries.length}: the ${entry.target}`));
    const clips = element("div", {class: "clips"});
    for (const name of STUDY.clip_order) {
      const label = element("label", {}, STUDY.clip_labels[name]);
      const audio = element("audio", {controls: "", preload: "metadata", src: STUDY.audio[entry.item][name],
                                      "data-clip": name});
      label.append(element("br"), audio);
      clips.append(label);
    }
    box.append(clips, element("blockquote", {class: "explanation"}, entry.explanation));
    for (const question of STUDY.questions) {
      const set = element("fieldset", {class: "scale"});
      set.append(element("legend", {}, question.text));
      for (let score = 1; score <= 5; score++) {
        const label = element("label");
        label.append(element("input", {type: "radio", name: `${entry.id}:${question.id}`, value: String(score)}),
                     " " + score);
        set.append(label);
      }
      box.append(set);
    }
    const codes = element("fieldset");
    codes.append(element("legend", {}, "The explanation…"));
    for (const code of STUDY.codes) {
      const label = element("label");
      label.append(element("input", {type: "checkbox", name: `${entry.id}:${code.id}`}), " " + code.text);
      codes.append(label, element("br"));
    }
    box.append(codes, element("label", {}, "Anything else:"),
               element("textarea", {name: `${entry.id}:comment`}));
    root.append(box);
  });
}

function collectAnswers() {
  const form = (name) => document.getElementsByName(name);
  return {
    format: "faderwise.study-answers/1",
    study: STUDY.id,
    annotator: document.getElementById("annotator").value.trim(),
    saved_at: new Date().toISOString(),
    answers: STUDY.entries.map((entry) => {
      const ratings = {}, codes = {};
      for (const question of STUDY.questions) {
        const picked = Array.from(form(`${entry.id}:${question.id}`)).find((input) => input.checked);
        ratings[question.id] = picked ? Number(picked.value) : null;
      }
      for (const code of STUDY.codes) codes[code.id] = form(`${entry.id}:${code.id}`)[0].checked;
      return {entry: entry.id, ratings, codes, comment: form(`${entry.id}:comment`)[0].value};
    }),
  };
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\\n]/.test(text) ? '"' + text.replaceAll('"', '""') + '"' : text;
}

function answersCsv(collected) {
  const header = ["study", "annotator", "entry", ...STUDY.questions.map((q) => q.id),
                  ...STUDY.codes.map((c) => c.id), "comment"];
  const rows = collected.answers.map((answer) => [collected.study, collected.annotator, answer.entry,
    ...STUDY.questions.map((q) => answer.ratings[q.id]), ...STUDY.codes.map((c) => answer.codes[c.id] ? 1 : 0),
    answer.comment]);
  return [header, ...rows].map((row) => row.map(csvCell).join(",")).join("\\n") + "\\n";
}

function download(name, text, type) {
  const link = element("a", {href: URL.createObjectURL(new Blob([text], {type})), download: name});
  document.body.append(link);
  link.click();
  link.remove();
}

function save(kind) {
  const collected = collectAnswers();
  if (!collected.annotator) {
    document.getElementById("status").textContent = "Please enter your name or annotator code first.";
    return null;
  }
  const missing = collected.answers.filter((a) => Object.values(a.ratings).some((r) => r === null)).length;
  const base = `${STUDY.id}-${collected.annotator.replace(/[^A-Za-z0-9_-]+/g, "_")}`;
  if (kind === "json") download(base + ".json", JSON.stringify(collected, null, 1), "application/json");
  else download(base + ".csv", answersCsv(collected), "text/csv");
  document.getElementById("status").textContent = missing
    ? `Saved; ${missing} entries still have unanswered questions.` : "Saved.";
  return collected;
}

function remember() {
  localStorage.setItem(STORE, JSON.stringify(collectAnswers()));
}

function restore() {
  const saved = JSON.parse(localStorage.getItem(STORE) || "null");
  if (!saved) return;
  document.getElementById("annotator").value = saved.annotator || "";
  for (const answer of saved.answers) {
    for (const [question, score] of Object.entries(answer.ratings)) {
      const input = Array.from(document.getElementsByName(`${answer.entry}:${question}`))
        .find((candidate) => candidate.value === String(score));
      if (input) input.checked = true;
    }
    for (const [code, ticked] of Object.entries(answer.codes)) {
      const box = document.getElementsByName(`${answer.entry}:${code}`)[0];
      if (box) box.checked = ticked;
    }
    const comment = document.getElementsByName(`${answer.entry}:comment`)[0];
    if (comment) comment.value = answer.comment || "";
  }
}

render();
restore();
document.addEventListener("change", remember);
document.addEventListener("input", remember);
document.getElementById("save-json").addEventListener("click", () => save("json"));
document.getElementById("save-csv").addEventListener("click", () => save("csv"));
</script>
</body>
</html>
"""


# -- ingest ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotatorAnswers:
    """One annotator's answers: entry id → ratings (question → 1–5 or None) and codes."""

    annotator: str
    source: Path
    ratings: Mapping[str, Mapping[str, int | None]]
    codes: Mapping[str, Mapping[str, bool]]


def read_answers(path: Path, *, study: Mapping[str, Any]) -> AnnotatorAnswers:
    """One answers file saved by the study page (JSON or CSV), checked against the study's key.

    Raises:
        StudyError: unreadable, another study, an unknown entry, or a rating that is not 1–5.
    """
    entries = study["entries"]
    if path.suffix.lower() == ".csv":
        try:
            rows = list(csv.DictReader(read_text_bounded(path, limit=JSON_LIMIT_BYTES,
                                                         what=STUDY_ANSWERS).splitlines()))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise StudyError(f"{path}: cannot read the CSV: {exc}") from None
        if not rows:
            raise StudyError(f"{path}: no answers in the file")
        payload = {"study": rows[0].get("study"), "annotator": rows[0].get("annotator", ""), "answers": [
            {"entry": row.get("entry"), "ratings": {q: _csv_rating(row.get(q) or "") for q, _ in QUESTIONS},
             "codes": {c: (row.get(c) or "0").strip() in ("1", "true", "True") for c, _ in CODES}} for row in rows]}
    else:
        payload = read_json(path, error=StudyError, limit=JSON_LIMIT_BYTES, what=STUDY_ANSWERS)
        if not isinstance(payload, dict) or payload.get("format") != ANSWERS_FORMAT:
            raise StudyError(f"{path}: not a {ANSWERS_FORMAT} file saved by the study page")
    if payload.get("study") != study["id"]:
        raise StudyError(f"{path}: answers to study {payload.get('study')!r}, not {study['id']!r}")
    ratings: dict[str, dict[str, int | None]] = {}
    codes: dict[str, dict[str, bool]] = {}
    if not isinstance(payload.get("answers"), list):
        raise StudyError(f"{path}: no list of answers")
    for answer in payload["answers"]:
        entry = answer.get("entry") if isinstance(answer, dict) else None
        if entry not in entries:
            raise StudyError(f"{path}: entry {entry!r} is not in the study")
        if not isinstance(answer.get("ratings"), dict) or not isinstance(answer.get("codes"), dict):
            raise StudyError(f"{path}: entry {entry} has no ratings or codes")
        for question, value in answer["ratings"].items():
            if value is not None and (isinstance(value, bool) or value not in (1, 2, 3, 4, 5)):
                raise StudyError(f"{path}: entry {entry} {question} = {value!r}; ratings are 1 to 5")
        ratings[entry] = {q: answer["ratings"].get(q) for q, _ in QUESTIONS}
        codes[entry] = {c: bool(answer["codes"].get(c, False)) for c, _ in CODES}
    return AnnotatorAnswers(annotator=str(payload.get("annotator") or path.stem), source=path, ratings=ratings,
                            codes=codes)


def _csv_rating(cell: str) -> int | str | None:
    """A rating cell: empty is unanswered; anything but a whole number is kept to be refused."""
    cell = cell.strip()
    return None if not cell else int(cell) if cell.isdigit() else cell


def ingest(study_dir: Path, files: Sequence[Path], *, run: Path | None = None) -> dict[str, Any]:
    """Unblinded ratings per advisor, κ between each pair of annotators, and the correlation of
    the run's judge scores with the mean human rating of each entry."""
    note_input(study_dir / "key.json", *files, *([run] if run is not None else []))
    key = read_json(study_dir / "key.json", error=StudyError, missing="not a study folder (no key.json)")
    if not isinstance(key, dict) or key.get("format") != STUDY_FORMAT:
        raise StudyError(f"{study_dir / 'key.json'}: not a {STUDY_FORMAT} key written by faderwise eval packets")
    answers = [read_answers(path, study=key) for path in files]
    entries: Mapping[str, Mapping[str, Any]] = key["entries"]
    per_advisor: dict[str, dict[str, list[int]]] = {}
    for annotator in answers:
        for entry, ratings in annotator.ratings.items():
            bucket = per_advisor.setdefault(entries[entry]["advisor"], {})
            for question, value in ratings.items():
                if value is not None:
                    bucket.setdefault(question, []).append(value)
            for code, ticked in annotator.codes[entry].items():
                bucket.setdefault(code, []).append(int(ticked))
    advisors = {advisor: {name: {"mean": round(float(np.mean(values)), 3), "n": len(values)}
                          for name, values in sorted(bucket.items())}
                for advisor, bucket in sorted(per_advisor.items())}
    agreement = []
    for i, first in enumerate(answers):
        for second in answers[i + 1:]:
            shared = sorted(set(first.ratings) & set(second.ratings))
            pair: dict[str, Any] = {"annotators": [first.annotator, second.annotator], "entries": len(shared)}
            for code, _ in CODES:
                pair[code] = _kappa([first.codes[e][code] for e in shared], [second.codes[e][code] for e in shared])
            for question, _ in QUESTIONS:
                both = [(first.ratings[e][question], second.ratings[e][question]) for e in shared]
                both = [(a, b) for a, b in both if a is not None and b is not None]
                pair[f"{question}_quadratic"] = _kappa([a for a, _ in both], [b for _, b in both],
                                                       weights="quadratic")
            agreement.append(pair)
    return {"study": key["id"], "annotators": [a.annotator for a in answers], "entries": len(entries),
            "advisors": advisors, "agreement": agreement,
            "judge_correlation": judge_correlation(run, entries, answers) if run is not None else {}}


def _kappa(first: Sequence[Any], second: Sequence[Any], *, weights: str | None = None) -> float | None:
    if not first:
        return None
    value = cohen_kappa(first, second, weights=weights)
    return None if np.isnan(value) else round(value, 4)


def judge_correlation(run: Path, entries: Mapping[str, Mapping[str, Any]],
                      answers: Sequence[AnnotatorAnswers]) -> dict[str, Any]:
    """Per judge of the run and per compared pair (human rating or code ↔ judge criterion), the
    Spearman / Kendall correlation over entries between the judge's score and the mean human value."""
    found: dict[str, Any] = {}
    judges = sorted(p.name for p in (run / "judgements").iterdir() if p.is_dir()) if (run / "judgements").is_dir() \
        else []
    for judge in judges:
        found[judge] = {}
        for human, criterion in JUDGE_COUNTERPARTS.items():
            judged, rated = [], []
            for entry, facts in entries.items():
                path = run / "judgements" / judge / slug(facts["advisor"]) / f"{facts['item']}.json"
                values = [a.ratings[entry][human] if human in a.ratings.get(entry, {}) else
                          float(a.codes[entry][human]) for a in answers if entry in a.ratings]
                values = [v for v in values if v is not None]
                if not path.is_file() or not values:
                    continue
                verdict = Verdict.from_json(read_json(path, error=StudyError))  # type: ignore[arg-type]
                if verdict.failed:
                    continue
                judged.append(verdict.scores[criterion])
                rated.append(float(np.mean(values)))
            found[judge][f"{human}~{criterion}"] = rank_correlation(judged, rated).to_json()
    return found


def write_ingest(result: Mapping[str, Any], out: Path, *, force: bool = False) -> Path:
    """``human.json`` and a short ``human.md`` in a new folder ``out`` (an earlier ingest's
    results are replaced only with ``force``)."""
    lines = [f"# Human evaluation: {result['study']}", "",
             f"{len(result['annotators'])} annotators ({', '.join(result['annotators'])}), {result['entries']} entries.",
             "", "| advisor | " + " | ".join(q for q, _ in QUESTIONS) + " | " + " | ".join(c for c, _ in CODES) + " |",
             "| --- |" + " --- |" * (len(QUESTIONS) + len(CODES))]
    for advisor, values in result["advisors"].items():
        cells = [f"{values[n]['mean']:.2f}" if n in values else "—" for n in [q for q, _ in QUESTIONS] +
                 [c for c, _ in CODES]]
        lines.append(f"| {advisor} | " + " | ".join(cells) + " |")
    for pair in result["agreement"]:
        lines += ["", f"Cohen's κ, {pair['annotators'][0]} and {pair['annotators'][1]} ({pair['entries']} entries): "
                  + ", ".join(f"{c} {pair[c] if pair[c] is not None else '—'}" for c, _ in CODES)]
    for judge, pairs in result["judge_correlation"].items():
        lines += ["", f"Judge {judge} against the mean human rating: " + ", ".join(
            f"{name} ρ={v['spearman']} τ={v['kendall']} (n={v['items']})" for name, v in pairs.items())]
    with output_folder(out, kind="human-results", force=force) as staging:
        write_json(staging / "human.json", result)
        write_text(staging / "human.md", "\n".join(lines) + "\n")
    return out

