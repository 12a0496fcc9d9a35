"""The evaluation report: per advisor, gain error over every stem (MAE over all stems and over
the moved ones, leave accuracy, false-move rate, direction accuracy, each with a bootstrap
interval; per material, per stem, calibration by offset size and by the number of perturbed
stems), judge scores, listwise ranks and text metrics; the research question (differential
against single-mix, paired bootstrap over the same items, overall and per material); judge
agreement; scripted agent runs. Written as ``report.json``, ``report.md`` and PNG plots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faderwise.advisor.parse import parse_moves
from faderwise.advisor.stem_names import STEM_CLASSES, stem_class
from faderwise.evals.advisors import EvalItem, hears_reference
from faderwise.evals.gain_error import StemError, calibration, magnitude_bin, summarise
from faderwise.evals.judge import CRITERIA, Ranking, Verdict, rank_summaries
from faderwise.evals.stats import bootstrap_ci, cohen_kappa, paired_difference_ci, rank_correlation
from faderwise.tools.json_files import write_json
from faderwise.tools.outputs import write_text

REPORT_FORMAT = "faderwise.eval-report/1"


def stem_error(item: EvalItem, answer: str) -> StemError:
    """The target's stated move (parsed from the answer) against the truth. An answer that states
    no move for the target but one for a stem the song does not have (a class it lacks: "raise the
    piano" in a song without keys) is scored as that move of the target, and counted, not dropped."""
    stated = [m.delta_db for m in parse_moves(answer, item.stems) if m.stem == item.target]
    if stated:
        return StemError(item.target, item.true_move_db, stated[0], range_db=item.consensus_range_db)
    present = {stem_class(stem) for stem in item.stems}
    absent = [name for name in STEM_CLASSES if name not in present and name not in item.stems]
    unknown = [m.delta_db for m in parse_moves(answer, [*item.stems, *absent]) if m.stem in absent]
    if unknown:
        return StemError(item.target, item.true_move_db, unknown[0], range_db=item.consensus_range_db,
                         named_unknown=True)
    return StemError(item.target, item.true_move_db, 0.0, stated=False, range_db=item.consensus_range_db)


def _number(value: float, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def gain_figures(errors: Sequence[StemError], *, resamples: int, seed: int) -> dict[str, Any]:
    """Every gain-error figure of ``errors`` with its 95 % bootstrap interval over items."""
    errors = list(errors)
    summary = summarise(errors)
    samples = {"mae_ci_db": [e.error_db for e in errors],
               "mae_moved_ci_db": [e.error_db for e in errors if e.moved],
               "leave_ci": [float(not e.predicted_move) for e in errors if not e.moved],
               "false_move_ci": [float(not e.moved) for e in errors if e.predicted_move],
               "direction_ci": [float(e.direction_right) for e in errors if e.direction_counts]}
    return {**summary.to_json(),
            **{key: bootstrap_ci(values, resamples=resamples, seed=seed).to_json() for key, values in samples.items()}}


def build_report(config: Any, items: Sequence[EvalItem], answers: Mapping[str, Mapping[str, str]],
                 verdicts: Mapping[str, Mapping[str, Mapping[str, Verdict]]], rankings: Mapping[str, list[Ranking]],
                 texts: Mapping[str, Mapping[str, Mapping[str, Any]]], scripts: list[dict[str, Any]]) -> dict[str, Any]:
    """The report as JSON-ready data (see the module's doc)."""
    errors = {advisor: [stem_error(item, by_item[item.id]) for item in items] for advisor, by_item in answers.items()}
    advisors: dict[str, Any] = {}
    materials = sorted({item.material for item in items})
    for advisor, errs in errors.items():
        per_stem: dict[str, list[StemError]] = {}
        for e in errs:
            per_stem.setdefault(e.stem, []).append(e)
        entry: dict[str, Any] = {
            "hears_reference": hears_reference(advisor),
            **gain_figures(errs, resamples=config.bootstrap, seed=config.seed),
            "per_material": {material: gain_figures([e for e, item in zip(errs, items) if item.material == material],
                                                    resamples=config.bootstrap, seed=config.seed)
                             for material in materials},
            "per_stem_mae_db": {stem: _number(summarise(group).mae_db) for stem, group in sorted(per_stem.items())},
            "calibration": {
                "by_offset_db": {k: v.to_json() for k, v in calibration(errs, lambda i, e: magnitude_bin(
                    e.true_db)).items()},
                "by_perturbed_stems": {k: v.to_json() for k, v in calibration(
                    errs, lambda i, e: str(items[i].perturbed_stems)).items()},
            },
            "judges": {},
            "text_metrics": {},
        }
        for judge, by_advisor in verdicts.items():
            scored = [v for v in by_advisor[advisor].values() if v.counted]  # never the inconsistent ones
            entry["judges"][judge] = {
                **{c: _number(float(np.mean([v.scores[c] for v in scored])) if scored else math.nan) for c in CRITERIA},
                **{f"{c}_ci": bootstrap_ci([v.scores[c] for v in scored], resamples=config.bootstrap,
                                           seed=config.seed).to_json() for c in CRITERIA},
                "failed": sum(1 for v in by_advisor[advisor].values() if v.failed),
                "inconsistent": sum(1 for v in by_advisor[advisor].values() if v.inconsistent and not v.failed),
                "judged": len(scored)}
        for judge, ranked in rankings.items():
            summaries = rank_summaries(ranked)
            if advisor in summaries:
                s = summaries[advisor]
                entry.setdefault("ranking", {})[judge] = {"wins": s.wins, "mean_rank": _number(s.mean_rank),
                                                          "rank_score": _number(s.rank_score), "rankings": s.rankings,
                                                          "failed": sum(1 for r in ranked if r.failed),
                                                          "inconsistent": sum(1 for r in ranked if r.inconsistent)}
        for metric in sorted({m for row in texts.get(advisor, {}).values() for m in row}):
            rows = [row[metric] for row in texts[advisor].values() if metric in row]
            entry["text_metrics"][metric] = {"max": _number(float(np.mean([r["max"] for r in rows]))),
                                             "mean": _number(float(np.mean([r["mean"] for r in rows])))}
        advisors[advisor] = entry
    return {
        "format": REPORT_FORMAT,
        "dataset": str(config.dataset), "split": config.split, "items": len(items),
        "songs": len({item.record["song"] for item in items}),
        "materials": {material: sum(item.material == material for item in items) for material in materials},
        "advisors": advisors,
        "research_question": [
            {**compare_pair(config, items, errors, verdicts, d, s),
             "per_material": {material: _pair_on(config, items, errors, d, s, material) for material in materials}}
            for d, s in config.pairs()],
        "judge_agreement": judge_agreement(verdicts),
        "scripts": scripts,
    }


def compare_pair(config: Any, items: Sequence[EvalItem], errors: Mapping[str, list[StemError]],
                 verdicts: Mapping[str, Mapping[str, Mapping[str, Verdict]]], differential: str,
                 single_mix: str) -> dict[str, Any]:
    """Differential against single-mix on the same items: how much lower the error is (paired
    bootstrap; positive = the differential advisor is better), and the answer in words."""
    gain = paired_difference_ci([e.error_db for e in errors[single_mix]], [e.error_db for e in errors[differential]],
                                resamples=config.bootstrap, seed=config.seed)
    both = [(a, b) for a, b in zip(errors[differential], errors[single_mix]) if a.direction_counts]
    direction = paired_difference_ci([float(a.direction_right) for a, _ in both],
                                     [float(b.direction_right) for _, b in both],
                                     resamples=config.bootstrap, seed=config.seed)
    judged = {}
    for judge, by_advisor in verdicts.items():
        pairs = [(by_advisor[differential][item.id], by_advisor[single_mix][item.id]) for item in items]
        pairs = [(a, b) for a, b in pairs if a.counted and b.counted]
        judged[judge] = {c: paired_difference_ci([a.scores[c] for a, _ in pairs], [b.scores[c] for _, b in pairs],
                                                 resamples=config.bootstrap, seed=config.seed).to_json()
                         for c in CRITERIA}
    level = int(round(100 * gain.level))
    if gain.low > 0:
        verdict = (f"yes: hearing the reference lowers the error by {gain.value:.2f} dB "
                   f"({level} % CI {gain.low:.2f} to {gain.high:.2f} dB)")
    elif gain.high < 0:
        verdict = (f"no: the single-mix advisor's error is lower by {-gain.value:.2f} dB "
                   f"({level} % CI {-gain.high:.2f} to {-gain.low:.2f} dB)")
    else:
        verdict = (f"not shown on this test set: the difference is {gain.value:+.2f} dB and its {level} % CI "
                   f"({gain.low:+.2f} to {gain.high:+.2f} dB) includes 0")
    return {"differential": differential, "single_mix": single_mix, "items": len(items),
            "mae_reduction_db": gain.to_json(), "direction_gain": direction.to_json(), "judge_score_gain": judged,
            "answer": verdict}


def _pair_on(config: Any, items: Sequence[EvalItem], errors: Mapping[str, list[StemError]], differential: str,
             single_mix: str, material: str) -> dict[str, Any]:
    """:func:`compare_pair` on the items of one material (gain error only)."""
    chosen = [index for index, item in enumerate(items) if item.material == material]
    subset = {name: [errors[name][index] for index in chosen] for name in (differential, single_mix)}
    found = compare_pair(config, [items[index] for index in chosen], subset, {}, differential, single_mix)
    return {key: found[key] for key in ("items", "mae_reduction_db", "direction_gain", "answer")}


def judge_agreement(verdicts: Mapping[str, Mapping[str, Mapping[str, Verdict]]]) -> list[dict[str, Any]]:
    """Per criterion, Spearman / Kendall and quadratic-weighted κ between the first judge and
    each other one, over the answers both scored."""
    names = list(verdicts)
    found = []
    for other in names[1:]:
        entry: dict[str, Any] = {"judges": [names[0], other]}
        for criterion in CRITERIA:
            pairs = []
            for advisor, by_item in verdicts[other].items():
                for item, verdict in by_item.items():
                    mine = verdicts[names[0]][advisor][item]
                    if not verdict.failed and not mine.failed:
                        pairs.append((mine.scores[criterion], verdict.scores[criterion]))
            if not pairs:
                entry[criterion] = {"items": 0}
                continue
            first, second = [a for a, _ in pairs], [b for _, b in pairs]
            kappa = cohen_kappa(first, second, weights="quadratic")
            entry[criterion] = {**rank_correlation(first, second).to_json(),
                                "kappa_quadratic": _number(kappa, 4),
                                "exact_agreement": _number(float(np.mean([a == b for a, b in pairs])))}
        found.append(entry)
    return found


# -- writing --------------------------------------------------------------------------------------


def write_report(report: Mapping[str, Any], out: Path) -> None:
    """``report.json``, ``report.md`` and the plots, each written whole, replacing those of an
    earlier pass over the same run folder."""
    write_json(out / "report.json", report, force=True)
    plots = write_plots(report, out)
    write_text(out / "report.md", markdown(report, plots), force=True)


def _with_ci(figures: Mapping[str, Any], key: str, ci_key: str, *, percent: bool = False) -> str:
    """"2.31 (1.90–2.75)": a figure and its interval."""
    ci = figures.get(ci_key) or {}
    return (f"{_fmt(figures.get(key), percent=percent)} ({_fmt(ci.get('low'), percent=percent)}–"
            f"{_fmt(ci.get('high'), percent=percent)})")


def _fmt(value: float | None, digits: int = 2, *, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.0f} %" if percent else f"{value:.{digits}f}"


def markdown(report: Mapping[str, Any], plots: Sequence[str]) -> str:
    advisors = report["advisors"]
    lines = ["# faderwise evaluation", "",
             f"{report['items']} test items from {report['songs']} songs ({report['dataset']}, split "
             f"{report['split']}). Errors are in dB against the move that undoes the perturbation; intervals are "
             "95 % percentile bootstraps over items.", ""]
    if report["research_question"]:
        lines += ["## Does hearing the reference help?", ""]
        for pair in report["research_question"]:
            lines.append(f"- **{pair['differential']}** (hears A and B) against **{pair['single_mix']}** (hears A "
                         f"only): {pair['answer']}.")
            for material, found in pair.get("per_material", {}).items():
                if len(pair["per_material"]) > 1:
                    lines.append(f"  - on {material} ({found['items']} items): {found['answer']}.")
        lines.append("")
    lines += ["## Gain error", "",
              "Every stem of every pair is scored, the moved ones and those whose right answer is to leave them "
              "(truth 0 dB). Leave accuracy: of the stems to leave, the share left (under 0.5 dB). False moves: of "
              "the moves stated, the share on stems to leave.", "",
              "| advisor | hears B | MAE, all stems dB (95 % CI) | MAE, moved stems dB | leave accuracy | "
              "false moves | direction | no move stated |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, a in advisors.items():
        lines.append(f"| {name} | {'yes' if a['hears_reference'] else 'no'} | {_with_ci(a, 'mae_db', 'mae_ci_db')} | "
                     f"{_with_ci(a, 'mae_moved_db', 'mae_moved_ci_db')} | "
                     f"{_with_ci(a, 'leave_accuracy', 'leave_ci', percent=True)} | "
                     f"{_fmt(a['false_move_rate'], percent=True)} | "
                     f"{_with_ci(a, 'direction_accuracy', 'direction_ci', percent=True)} | "
                     f"{_fmt(a['no_move_share'], percent=True)} |")
    if report.get("materials"):
        lines += ["", "Per material (MAE over all stems, dB / leave accuracy):", "",
                  "| advisor | " + " | ".join(f"{m} ({n} items)" for m, n in report["materials"].items()) + " |",
                  "| --- |" + " --- |" * len(report["materials"])]
        for name, a in advisors.items():
            cells = [a["per_material"].get(m) for m in report["materials"]]
            lines.append(f"| {name} | " + " | ".join(
                f"{_with_ci(c, 'mae_db', 'mae_ci_db')} / {_fmt(c['leave_accuracy'], percent=True)}" if c else "—"
                for c in cells) + " |")
    stems = sorted({s for a in advisors.values() for s in a["per_stem_mae_db"]})
    lines += ["", "MAE per stem (dB):", "", "| advisor | " + " | ".join(stems) + " |",
              "| --- |" + " --- |" * len(stems)]
    for name, a in advisors.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(a["per_stem_mae_db"].get(s)) for s in stems) + " |")
    for key, title in (("by_offset_db", "size of the true move"), ("by_perturbed_stems", "stems perturbed")):
        groups = sorted({g for a in advisors.values() for g in a["calibration"][key]})
        lines += ["", f"Calibration, MAE (dB) by {title}:", "", "| advisor | " + " | ".join(groups) + " |",
                  "| --- |" + " --- |" * len(groups)]
        for name, a in advisors.items():
            cells = [a["calibration"][key].get(g) for g in groups]
            lines.append(f"| {name} | " + " | ".join(
                f"{_fmt(c['mae_db'])} (n={c['items']})" if c else "—" for c in cells) + " |")
    judges = sorted({j for a in advisors.values() for j in a["judges"]})
    for judge in judges:
        lines += ["", f"## Judge: {judge}", "", "| advisor | " + " | ".join(CRITERIA) + " | judged | failed | "
                  "inconsistent |", "| --- |" + " --- |" * (len(CRITERIA) + 3)]
        for name, a in advisors.items():
            scores = a["judges"][judge]
            lines.append(f"| {name} | " + " | ".join(_fmt(scores[c]) for c in CRITERIA)
                         + f" | {scores['judged']} | {scores['failed']} | {scores.get('inconsistent', 0)} |")
        if any(a["judges"][judge].get("inconsistent") for a in advisors.values()):
            lines += ["", "Inconsistent verdicts (a correctness score two points or more from the rubric's grade of "
                      "the stated move) are counted apart and left out of the means."]
    ranked = [(name, a["ranking"]) for name, a in advisors.items() if "ranking" in a]
    if ranked:
        lines += ["", "Listwise ranking (anonymised, shuffled; rankings that failed or contradict the rubric's "
                  "correctness by two grades are left out):", "",
                  "| advisor | judge | wins | mean rank | rank score | rankings | failed | inconsistent |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, by_judge in ranked:
            for judge, r in by_judge.items():
                lines.append(f"| {name} | {judge} | {r['wins']:g} | {_fmt(r['mean_rank'])} | {_fmt(r['rank_score'])} | "
                             f"{r['rankings']} | {r['failed']} | {r.get('inconsistent', 0)} |")
    metrics = sorted({m for a in advisors.values() for m in a["text_metrics"]})
    if metrics:
        lines += ["", "## Text metrics (max over references / mean over references)", "",
                  "| advisor | " + " | ".join(metrics) + " |", "| --- |" + " --- |" * len(metrics)]
        for name, a in advisors.items():
            lines.append(f"| {name} | " + " | ".join(
                f"{_fmt(a['text_metrics'][m]['max'])} / {_fmt(a['text_metrics'][m]['mean'])}"
                if m in a["text_metrics"] else "—" for m in metrics) + " |")
        if "meteor_exact_stem" in metrics:
            lines += ["", "METEOR ran without WordNet (exact and stem matches only): `meteor_exact_stem`."]
    for agreement in report["judge_agreement"]:
        first, other = agreement["judges"]
        lines += ["", f"## Judge agreement: {first} and {other}", "",
                  "| criterion | Spearman | Kendall | κ (quadratic) | exact | items |", "| --- | --- | --- | --- | --- | --- |"]
        for c in CRITERIA:
            e = agreement[c]
            lines.append(f"| {c} | {_fmt(e.get('spearman'))} | {_fmt(e.get('kendall'))} | "
                         f"{_fmt(e.get('kappa_quadratic'))} | {_fmt(e.get('exact_agreement'), percent=True)} | "
                         f"{e['items']} |")
    if report["scripts"]:
        lines += ["", "## Scripted agent runs", "", "| script | turns passed | slowest turn s |", "| --- | --- | --- |"]
        for s in report["scripts"]:
            lines.append(f"| {Path(s['script']).name} | {s['passed']}/{s['turns']} | {max(s['seconds'], default=0):.2f} |")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_plots(report: Mapping[str, Any], out: Path) -> list[str]:
    """MAE per stem and advisor, calibration curves, judge scores and text metrics as PNGs;
    returns their names."""
    from faderwise.tools.plot import pyplot, save_figure

    plt = pyplot()
    advisors = report["advisors"]
    names = list(advisors)
    written = []
    width = 0.8 / max(1, len(names))

    stems = sorted({s for a in advisors.values() for s in a["per_stem_mae_db"]})
    figure, axes = plt.subplots(figsize=(8, 4), layout="constrained")
    for i, name in enumerate(names):
        values = [advisors[name]["per_stem_mae_db"].get(s) or 0.0 for s in stems]
        axes.bar(np.arange(len(stems)) + i * width, values, width, label=name)
    axes.set_xticks(np.arange(len(stems)) + width * (len(names) - 1) / 2, stems)
    axes.set_ylabel("MAE (dB)")
    axes.set_title("Gain error per stem")
    axes.legend(fontsize="small")
    save_figure(figure, out / "mae_per_stem.png", force=True)
    written.append("mae_per_stem.png")

    figure, panels = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for panel, (key, label) in zip(panels, (("by_offset_db", "size of the true move"),
                                            ("by_perturbed_stems", "stems perturbed"))):
        groups = sorted({g for a in advisors.values() for g in a["calibration"][key]})
        for name in names:
            values = [(advisors[name]["calibration"][key].get(g) or {}).get("mae_db") for g in groups]
            panel.plot(groups, [np.nan if v is None else v for v in values], marker="o", label=name)
        panel.set_xlabel(label)
        panel.set_ylabel("MAE (dB)")
    panels[0].legend(fontsize="small")
    figure.suptitle("Calibration")
    save_figure(figure, out / "calibration.png", force=True)
    written.append("calibration.png")

    judges = sorted({j for a in advisors.values() for j in a["judges"]})
    if judges:
        judge = judges[0]
        figure, axes = plt.subplots(figsize=(8, 4), layout="constrained")
        for i, name in enumerate(names):
            values = [advisors[name]["judges"][judge][c] or 0.0 for c in CRITERIA]
            axes.bar(np.arange(len(CRITERIA)) + i * width, values, width, label=name)
        axes.set_xticks(np.arange(len(CRITERIA)) + width * (len(names) - 1) / 2, CRITERIA)
        axes.set_ylim(0, 5.2)
        axes.set_ylabel("mean score (1–5)")
        axes.set_title(f"Judge scores ({judge})")
        axes.legend(fontsize="small")
        save_figure(figure, out / "judge_scores.png", force=True)
        written.append("judge_scores.png")

    metrics = sorted({m for a in advisors.values() for m in a["text_metrics"]})
    if metrics:
        figure, axes = plt.subplots(figsize=(8, 1 + 0.4 * len(names)), layout="constrained")
        axes.axis("off")
        cells = [[_fmt((advisors[n]["text_metrics"].get(m) or {}).get("max")) for m in metrics] for n in names]
        axes.table(cellText=cells, rowLabels=names, colLabels=metrics, loc="center")
        axes.set_title("Text metrics (max over references)")
        save_figure(figure, out / "text_metrics.png", force=True)
        written.append("text_metrics.png")
    return written
