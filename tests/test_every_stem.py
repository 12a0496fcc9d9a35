"""Every stem of a pair is scored (issue 13, part 1): the stems to leave count, leave accuracy and
the false-move rate say how an advisor treats them, every figure is given per material, and an
answer that names a stem the song does not have is an error, not a dropped answer."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import MUSDB_SAMPLE
from faderwise.evals.advisors import EvalItem
from faderwise.evals.gain_error import StemError, summarise
from faderwise.evals.report import stem_error


def test_leave_accuracy_false_moves_and_the_error_over_moved_stems() -> None:
    errors = [StemError("vocals", -4.0, -3.0),  # moved, moved about right (error 1)
              StemError("drums", 3.0, 0.0, stated=False),  # moved, left alone (error 3)
              StemError("bass", 0.0, 0.2),  # to leave, left (under 0.5 dB)
              StemError("keys", 0.0, 2.0),  # to leave, moved: a false move (error 2)
              StemError("guitar", 0.0, 0.0)]  # to leave, left
    summary = summarise(errors)
    assert summary.mae_db == pytest.approx((1 + 3 + 0.2 + 2 + 0) / 5)
    assert summary.mae_moved_db == pytest.approx(2.0)
    assert summary.leave_accuracy == pytest.approx(2 / 3)
    assert summary.false_move_rate == pytest.approx(1 / 2)  # of the two moves stated, one on a stem to leave
    assert summary.moved == 2 and summary.no_move_share == pytest.approx(1 / 5)
    assert math.isnan(summarise([StemError("bass", 0.0, 0.0)]).false_move_rate)  # no move stated at all


def item(target: str, true_db: float, material: str = "procedural") -> EvalItem:
    return EvalItem(Path("."), {"id": f"x-{target}", "target": target, "stems": ["vocals", "drums", "bass"],
                                "target_move_db": true_db, "material": material, "difficulty": {"perturbed_stems": 1}})


def test_an_answer_naming_a_stem_the_song_lacks_is_an_error() -> None:
    wrong = stem_error(item("bass", 0.0), "Raise the piano by 3 dB.")  # the song has no keys at all
    assert (wrong.predicted_db, wrong.stated, wrong.named_unknown) == (3.0, True, True)
    assert wrong.error_db == 3.0 and wrong.predicted_move  # not "left alone"
    right = stem_error(item("bass", 0.0), "Leave the bass as it is.")
    assert (right.predicted_db, right.stated, right.named_unknown) == (0.0, True, False)
    silent = stem_error(item("bass", 2.0), "Sounds great.")
    assert (silent.predicted_db, silent.stated) == (0.0, False)
    assert summarise([wrong, right, silent]).unknown_stem_share == pytest.approx(1 / 3)


def test_an_evaluation_scores_every_stem_per_material(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not MUSDB_SAMPLE.is_file():
        pytest.skip(f"{MUSDB_SAMPLE} is missing: this MUSDB18 excerpt sits beside the repository in CI, not in a "
                    "fresh clone")
    from faderwise.evals.run import read_config, run_evaluation

    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    musdb = tmp_path / "musdb"
    musdb.mkdir()
    shutil.copy(MUSDB_SAMPLE, musdb / MUSDB_SAMPLE.name)
    (tmp_path / "synth.yaml").write_text(json.dumps({
        "out": "set", "seed": 3, "window_s": 5, "pairs_per_song": 2, "val": 0.0, "test": 0.99, "targets": "all",
        "datasets": [{"kind": "procedural", "songs": 2, "bars": 2, "first_seed": 400},
                     {"kind": "musdb18", "root": str(musdb)}]}))
    (tmp_path / "eval.yaml").write_text(json.dumps({
        "dataset": "set", "synth": "synth.yaml", "advisors": ["measured", "single-mix", "no-change"],
        "judges": ["rubric"], "text_metrics": [], "bootstrap": 200, "workers": 1, "scripts": [], "listwise": False}))
    report = run_evaluation(read_config(tmp_path / "eval.yaml"), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "set" / "manifest.jsonl").read_text().splitlines()]
    by_pair: dict[tuple[str, int], list[dict]] = {}
    for record in records:
        by_pair.setdefault((record["song"], record["pair"]), []).append(record)
    assert len(by_pair) == 6
    for found in by_pair.values():  # every playing stem of the pair is an item: the moved ones and the rest
        targets = {r["target"] for r in found}
        assert set(found[0]["gains_db"]) <= targets and len(targets) == len(found)
    assert sum(r["target_move_db"] == 0.0 for r in records) >= 5  # stems to leave are scored too
    assert report["items"] == len(records)
    assert report["materials"] == {"musdb18": 2 * 4, "procedural": len(records) - 8}
    moved = sum(abs(r["target_move_db"]) >= 0.5 for r in records)
    nothing = report["advisors"]["no-change"]
    assert nothing["leave_accuracy"] == 1.0 and nothing["false_move_rate"] is None
    assert nothing["moved"] == moved and nothing["items"] == len(records)
    measured = report["advisors"]["measured"]
    assert measured["mae_db"] < 0.3 and measured["leave_accuracy"] >= 0.9
    assert measured["mae_db"] < 0.2 * nothing["mae_db"]
    assert set(measured["per_material"]) == {"musdb18", "procedural"}
    assert measured["per_material"]["musdb18"]["items"] == 8
    for figure in ("mae_ci_db", "mae_moved_ci_db", "leave_ci", "direction_ci"):
        assert measured[figure]["low"] <= measured[figure]["high"]
    (pair,) = report["research_question"]
    assert set(pair["per_material"]) == {"musdb18", "procedural"}
    assert pair["per_material"]["procedural"]["answer"].startswith(("yes", "no", "not shown"))
    page = (tmp_path / "run" / "report.md").read_text()
    assert "| advisor | hears B | MAE, all stems dB (95 % CI) | MAE, moved stems dB | leave accuracy |" in page
    assert "  - on musdb18 (8 items): " in page and f"  - on procedural ({len(records) - 8} items): " in page
