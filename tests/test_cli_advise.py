"""faderwise advise and faderwise apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faderwise.cli import main
from faderwise.tools.stem_files import load_stem_set


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_advise_json(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                          "--json"], capsys)
    assert code == 0 and err == ""
    payload = json.loads(out)
    assert set(payload) == {"format", "advisor", "moves", "global_offset_db", "text", "evidence"}
    assert payload["advisor"] == "measured"
    assert [(m["stem"], round(m["delta_db"], 1)) for m in payload["moves"]] == [("vocals", -4.0), ("drums", 3.0)]
    assert set(payload["moves"][0]) == {"stem", "delta_db", "low_db", "high_db"}
    assert payload["global_offset_db"] == 0.0


def test_advise_text_and_move_lines(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                        "--stem", "drums"], capsys)
    assert code == 0
    assert out.startswith("Raise the drums by about 3 dB: in your mix this stem is 3.0 dB quieter")
    assert out.rstrip().endswith("drums          +3.0 dB   (likely +2.9 to +3.1)")


def test_advise_without_reference_says_it_judges_a_alone(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["advise", str(demo_dir / "version_a"), "--json"], capsys)
    assert code == 0
    assert err == ("no reference given: the single-mix advisor judges your mix alone, against the range real mixes "
                   "give each kind of stem\n")
    assert json.loads(out)["advisor"] == "single-mix"
    code, out, err = run(["advise", str(demo_dir / "version_a"), "--advisor", "measured"], capsys)
    assert code == 2
    assert err == "faderwise: error: the measured advisor compares with a reference: pass --reference STEMS_B\n"


def test_baseline_with_a_reference_says_it_is_not_used(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                          "--advisor", "equal-loudness", "--json"], capsys)
    assert code == 0
    assert err == "the equal-loudness advisor judges your mix alone: the reference is not used\n"
    assert json.loads(out)["advisor"] == "equal-loudness"


def test_apply_renders_a_new_folder_that_matches_the_reference(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    advice = tmp_path / "advice.json"
    code, out, _ = run(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                        "--json"], capsys)
    advice.write_text(out)
    before = {p.name: p.read_bytes() for p in (demo_dir / "version_a").iterdir()}
    plot = tmp_path / "levels.png"
    code, out, err = run(["apply", str(demo_dir / "version_a"), "--advice", str(advice), "--out", str(tmp_path / "out"),
                          "--plot", str(plot), "--reference", str(demo_dir / "version_b")], capsys)
    assert code == 0
    assert out.startswith("applied drums +3.0 dB, vocals -4.0 dB; wrote ")
    assert err == f"wrote {plot}\n" and plot.read_bytes()[:4] == b"\x89PNG"
    fixed, reference = load_stem_set(tmp_path / "out" / "stems"), load_stem_set(demo_dir / "version_b")
    for name in reference.names:
        error = abs(fixed.stems[name] - reference.stems[name]).max()
        assert error < 5e-3, name  # 24-bit B against A moved by the measured amounts
    assert {p.name: p.read_bytes() for p in (demo_dir / "version_a").iterdir()} == before
    code, _, err = run(["apply", str(demo_dir / "version_a"), "--advice", str(advice), "--out", str(tmp_path / "out")],
                       capsys)
    assert code == 2 and err.endswith("already exists; choose a new folder or pass --force to replace it\n")


def test_apply_master_and_bad_advice(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"advisor": "me", "moves": [{"stem": "bass", "delta_db": 1.0}],
                                  "global_offset_db": -2.0}))
    code, out, _ = run(["apply", str(demo_dir / "version_a"), "--advice", str(advice), "--out", str(tmp_path / "o"),
                        "--master"], capsys)
    assert code == 0
    assert out.startswith("applied bass -1.0 dB, drums -2.0 dB, guitar -2.0 dB, keys -2.0 dB, vocals -2.0 dB;")
    advice.write_text(json.dumps({"advisor": "me", "moves": [{"stem": "cowbell", "delta_db": 1.0}]}))
    code, _, err = run(["apply", str(demo_dir / "version_a"), "--advice", str(advice), "--out", str(tmp_path / "p")],
                       capsys)
    assert code == 2
    assert err == (f"faderwise: error: {demo_dir / 'version_a'}: has no stem 'cowbell' "
                   "(it has: bass, drums, guitar, keys, vocals)\n")
    assert not (tmp_path / "p").exists()
    advice.write_text("[]")
    code, _, err = run(["apply", str(demo_dir / "version_a"), "--advice", str(advice), "--out", str(tmp_path / "p")],
                       capsys)
    assert code == 2 and err == f"faderwise: error: {advice}: expected a JSON object, got list\n"


def test_bundle_command_and_advice_from_a_bundle(demo_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vocal bundle"
    code, printed, _ = run(["bundle", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                            "--stem", "vox", "--out", str(out), "--seconds", "12"], capsys)
    assert code == 0
    assert printed == (f"wrote {out}: vocals and its backing in A and B, 9.0–21.0 s of A, at 44100 Hz and as "
                       f"16 kHz mono copies in {out}/alm\n")
    assert json.loads((out / "bundle.json").read_text())["target"] == "vocals"
    code, printed, _ = run(["advise", str(out), "--json"], capsys)
    assert code == 0
    payload = json.loads(printed)
    assert payload["evidence"]["mode"] == "bundle"
    assert [(m["stem"], round(m["delta_db"], 1)) for m in payload["moves"]] == [("vocals", -4.0)]
    code, _, err = run(["advise", str(out), "--stem", "drums"], capsys)
    assert code == 2
    assert err == (f"faderwise: error: {out}: a bundle holds its own reference and target; --reference, --stem "
                   "and other advisors do not apply\n")
    code, _, err = run(["bundle", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"),
                        "--stem", "cowbell", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "has no stem 'cowbell'" in err and not (tmp_path / "x").exists()
