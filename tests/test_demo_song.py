"""The demo song: deterministic, documented, balanced as stated, and in the ballpark of real stems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faderwise.tools.analysis import StemSetAnalysis, analyze_stem_set
from faderwise.tools.compare import compare_stem_sets
from faderwise.tools.demo_song import BALANCE_LUFS, synthesize_demo_song
from faderwise.tools.stem_files import load_stem_set


@pytest.fixture(scope="module")
def analyses(demo_dir: Path) -> tuple[StemSetAnalysis, StemSetAnalysis]:
    return (analyze_stem_set(load_stem_set(demo_dir / "version_a")),
            analyze_stem_set(load_stem_set(demo_dir / "version_b")))


@pytest.fixture(scope="module")
def musdb_analysis(musdb_sample: Path) -> StemSetAnalysis:
    return analyze_stem_set(load_stem_set(musdb_sample))


def test_same_seed_same_song_other_seed_other_song() -> None:
    first, again, other = (synthesize_demo_song(seed=s, bars=2) for s in (0, 0, 1))
    for name in first.names:
        np.testing.assert_array_equal(first.stems[name], again.stems[name])
    assert not np.allclose(first.stems["drums"], other.stems["drums"])


def test_folder_and_manifest(demo_dir: Path) -> None:
    assert sorted(p.name for p in demo_dir.iterdir()) == [".faderwise-output.json", "manifest.json", "version_a", "version_b"]
    manifest = json.loads((demo_dir / "manifest.json").read_text())
    assert manifest["perturbation_db"] == {
        "meaning": "gain applied to the balanced Version B stems to make Version A", "vocals": 4.0, "drums": -3.0,
    }
    assert manifest["expected_moves"] == [{"stem": "vocals", "delta_db": -4.0}, {"stem": "drums", "delta_db": 3.0}]
    assert manifest["duration_s"] == 30.0 and manifest["sample_rate"] == 44_100
    for version in ("version_a", "version_b"):
        assert sorted(p.stem for p in (demo_dir / version).iterdir()) == sorted(BALANCE_LUFS)


def test_b_is_balanced_as_documented_and_a_is_off_by_the_perturbation(
    demo_dir: Path, analyses: tuple[StemSetAnalysis, StemSetAnalysis]
) -> None:
    analysis_a, analysis_b = analyses
    for name, target in BALANCE_LUFS.items():
        assert analysis_b.stems[name].stem.integrated_lufs == pytest.approx(target, abs=0.01), name
    comparison = compare_stem_sets(load_stem_set(demo_dir / "version_a"), load_stem_set(demo_dir / "version_b"))
    differences = {name: round(stem.loudness_diff_lu, 2) for name, stem in comparison.stems.items()}
    assert differences == {"bass": 0.0, "drums": -3.0, "guitar": 0.0, "keys": 0.0, "vocals": 4.0}
    assert analysis_b.mix.true_peak_dbtp < -1.0  # the balanced mix has headroom


def test_arrangement_shows_in_the_active_regions(analyses: tuple[StemSetAnalysis, StemSetAnalysis]) -> None:
    _, analysis_b = analyses
    assert analysis_b.stems["vocals"].stem.active_regions == ((5.0, 25.0),)  # verse and chorus
    assert analysis_b.stems["guitar"].stem.active_regions == ((15.0, 25.6),)  # chorus, last strum ringing
    for name in ("drums", "bass", "keys"):
        assert analysis_b.stems[name].stem.active_regions == ((0.0, 30.0),)


def spectral_centroid_hz(levels_db: np.ndarray, centres_hz: np.ndarray) -> float:
    """Power-weighted geometric mean of the band centres: where a stem's energy sits, in Hz."""
    power = 10 ** (levels_db / 10)
    return float(np.exp(np.sum(power * np.log(centres_hz)) / np.sum(power)))


def test_realism_against_the_musdb18_excerpt(
    analyses: tuple[StemSetAnalysis, StemSetAnalysis], musdb_analysis: StemSetAnalysis
) -> None:
    _, demo = analyses
    real = musdb_analysis
    # Crest factors (dB) of real stems run 10.5 (bass) to 17.6 (drums); the demo's stay within 3 dB
    # of the real stem of the same role. Guitar and keys stand for MUSDB's "other".
    counterpart = {"vocals": "vocals", "drums": "drums", "bass": "bass", "keys": "other", "guitar": "other"}
    for name, real_name in counterpart.items():
        # Crest over the part where the stem plays: the guitar rests two thirds of the song.
        demo_crest = demo.stems[name].stem.crest_db - 10 * np.log10(30.0 / demo.stems[name].stem.active_s)
        assert abs(demo_crest - real.stems[real_name].stem.crest_db) < 4.0, name
    # Relative levels: the vocal leads, the bass sits well under the mix, as in the real excerpt.
    for name in ("vocals", "drums", "bass"):
        assert abs(demo.stems[name].stem_to_mix_lu - real.stems[name].stem_to_mix_lu) < 3.5, name
    # Spectra: each role's energy sits within an octave and a half of the real stem's.
    for name in ("vocals", "drums", "bass"):
        demo_hz = spectral_centroid_hz(demo.stems[name].stem.bands.level_db(), demo.stems[name].stem.bands.centres_hz)
        real_hz = spectral_centroid_hz(real.stems[name].stem.bands.level_db(), real.stems[name].stem.bands.centres_hz)
        assert abs(np.log2(demo_hz / real_hz)) < 1.5, (name, demo_hz, real_hz)
    assert demo.mix.crest_db == pytest.approx(real.mix.crest_db, abs=2.0)
