"""Aligning a reference with the producer's stems: sample-exact lags from milliseconds to seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from faderwise.advisor import MeasuredAdvisor
from faderwise.tools.align import SAME_MATERIAL_CORRELATION, estimate_alignment, shift
from faderwise.tools.demo_song import synthesize_demo_song
from faderwise.tools.stem_files import load_stem_set
from faderwise.tools.stems import StemSet
from faderwise.training.perturb import delayed

RATE = 44_100


@pytest.fixture(scope="module")
def song() -> StemSet:
    return synthesize_demo_song()


@pytest.mark.parametrize("lag", [0, 2, 441, -4410, 57_330, -88_200, 200_000])
def test_finds_the_lag_to_the_sample(song: StemSet, lag: int) -> None:
    mix = song.mix()
    alignment = estimate_alignment(mix, shift(mix, -lag, mix.shape[1]), RATE)
    assert alignment.lag == lag
    assert alignment.correlation > 0.99


def test_rebalanced_stems_still_align(song: StemSet) -> None:
    rebalanced = delayed(song.with_gains({"vocals": 6.0, "drums": -5.0}), 0.8)
    alignment = estimate_alignment(song.mix(), rebalanced.mix(), RATE)
    assert alignment.lag == round(0.8 * RATE)
    assert alignment.same_material


def test_another_song_is_not_the_same_material(song: StemSet, musdb_sample: Path) -> None:
    alignment = estimate_alignment(song.mix(), load_stem_set(musdb_sample).mix(), RATE)
    assert alignment.correlation < SAME_MATERIAL_CORRELATION


def test_advice_with_a_reference_bounced_with_pre_roll(song: StemSet) -> None:
    version_a = song.with_gains({"vocals": 4.0, "bass": -2.0})
    advice = MeasuredAdvisor().advise(version_a, delayed(song, 1.3))
    assert advice.evidence["alignment"]["lag_ms"] == 1300.0
    assert {m.stem: round(m.delta_db, 2) for m in advice.moves} == {"vocals": -4.0, "bass": 2.0}
