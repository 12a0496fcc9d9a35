"""analyze_stem_set: the family shortcut equals measuring each signal on its own; progress; JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

import faderwise.tools.analysis
from conftest import noise_stems
from faderwise.tools.analysis import analyze_stem_set, measure
from faderwise.tools.stems import StemSet

RATE = 44_100


def test_family_shortcut_equals_separate_measurements() -> None:
    stem_set = StemSet(stems=noise_stems(seconds=4.0), rate=RATE)
    analysis = analyze_stem_set(stem_set)
    pairs = [(analysis.mix, stem_set.mix())]
    for name in stem_set.names:
        pairs += [(analysis.stems[name].stem, stem_set.stems[name]), (analysis.stems[name].backing, stem_set.backing(name))]
    for shortcut, audio in pairs:
        direct = measure(audio, RATE)
        for field in ("integrated_lufs", "rms_dbfs", "sample_peak_dbfs", "true_peak_dbtp", "loudness_range_lu"):
            assert getattr(shortcut, field) == pytest.approx(getattr(direct, field), abs=1e-3), field
        np.testing.assert_allclose(shortcut.bands.level_db(), direct.bands.level_db(), atol=1e-3)
        np.testing.assert_array_equal(shortcut.active, direct.active)


def test_relative_levels() -> None:
    stems = noise_stems(seconds=4.0)
    analysis = analyze_stem_set(StemSet(stems=stems, rate=RATE))
    vocals = analysis.stems["vocals"]
    assert vocals.stem_to_mix_lu == pytest.approx(vocals.stem.integrated_lufs - analysis.mix.integrated_lufs)
    assert vocals.stem_to_backing_lu == pytest.approx(vocals.stem.integrated_lufs - vocals.backing.integrated_lufs)
    # Independent white noise: powers add, so vocals (σ 0.05) against drums+bass (σ 0.08, 0.03).
    assert vocals.stem_to_backing_lu == pytest.approx(10 * np.log10(0.05**2 / (0.08**2 + 0.03**2)), abs=0.1)


def test_progress_reports_every_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faderwise.tools.analysis, "SEGMENT_BLOCKS", 1)  # 131072 samples, 2.97 s
    calls: list[tuple[int, int, str]] = []
    analyze_stem_set(StemSet(stems=noise_stems(seconds=7.0), rate=RATE), on_progress=lambda *c: calls.append(c),
                     label="A")
    assert calls == [(1, 3, "A: 3 stems, 0:03 of 0:07 measured"), (2, 3, "A: 3 stems, 0:06 of 0:07 measured"),
                     (3, 3, "A: 3 stems, 0:07 of 0:07 measured")]


def test_one_stem_set_has_a_silent_backing_and_valid_json() -> None:
    analysis = analyze_stem_set(StemSet(stems={"solo": noise_stems(seconds=1.0)["vocals"]}, rate=RATE))
    solo = analysis.stems["solo"]
    assert solo.backing.silent and np.isnan(solo.stem_to_backing_lu)
    assert solo.stem_to_mix_lu == pytest.approx(0.0, abs=1e-6)
    payload = json.loads(json.dumps(analysis.to_json(), allow_nan=False))
    assert payload["stems"]["solo"]["stem_to_backing_lu"] is None
    assert payload["stems"]["solo"]["backing"]["silent"] is True


def test_comparison_progress_runs_over_both_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    from faderwise.tools.compare import compare_stem_sets

    monkeypatch.setattr(faderwise.tools.analysis, "SEGMENT_BLOCKS", 1)
    calls: list[tuple[int, int, str]] = []
    version_a = StemSet(stems=noise_stems(seconds=4.0), rate=RATE)
    compare_stem_sets(version_a.selected(["bass", "drums"]), version_a.with_gains({"bass": 2.0}),
                      on_progress=lambda *c: calls.append(c))
    assert calls == [(1, 4, "A: 2 stems, 0:03 of 0:04 measured"), (2, 4, "A: 2 stems, 0:04 of 0:04 measured"),
                     (3, 4, "B: 3 stems, 0:03 of 0:04 measured"), (4, 4, "B: 3 stems, 0:04 of 0:04 measured")]
