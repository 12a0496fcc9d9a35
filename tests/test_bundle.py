"""The A/B bundle: window selection, the four clips, the 16 kHz copies, the round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faderwise.tools.audio_io import resample
from faderwise.tools.bundle import ALM_RATE, CLIP_NAMES, make_bundle, read_bundle, select_window, write_bundle
from faderwise.tools.demo_song import DEMO_PERTURBATION_DB
from faderwise.tools.errors import InvalidAudioError, StemSetError
from faderwise.tools.stem_files import load_stem_set


def test_window_is_where_the_target_plays_longest() -> None:
    active = np.zeros(600, dtype=bool)  # 60 s in 100 ms hops
    active[250:520] = True  # plays from 25 s to 52 s: any start from 22 to 25 s holds all of it
    assert select_window(active, duration_s=60.0, max_s=30.0) == (23.5, 53.5)
    twice = np.zeros(600, dtype=bool)
    twice[0:100] = twice[400:500] = True  # two equal 10 s parts: the first wins
    assert select_window(twice, duration_s=60.0, max_s=10.0) == (0.0, 10.0)
    assert select_window(active, duration_s=20.0, max_s=30.0) == (0.0, 20.0)
    assert select_window(np.zeros(600, dtype=bool), duration_s=60.0) == (15.0, 45.0)  # silence: the middle


def test_demo_bundle_round_trip(demo_dir: Path, tmp_path: Path) -> None:
    version_a = load_stem_set(demo_dir / "version_a")
    version_b = load_stem_set(demo_dir / "version_b")
    bundle = make_bundle(version_a, version_b, "Vocals", max_s=12.0, gains_a_db=DEMO_PERTURBATION_DB)
    assert bundle.target == "vocals"
    # The vocal sings from bar 3 to bar 10 (5-25 s): any 12 s inside ties, and the middle one wins.
    assert bundle.window_a_s == bundle.window_b_s == (9.0, 21.0)
    assert all(clip.shape == (2, 12 * 44_100) for clip in bundle.clips().values())
    # Same material: B's vocal is A's turned down by the perturbation, the backing A has drums -3 dB.
    np.testing.assert_allclose(bundle.target_b * 10 ** (4 / 20), bundle.target_a, atol=2e-4)
    assert not np.allclose(bundle.backing_a, bundle.backing_b, atol=1e-3)

    folder = write_bundle(bundle, tmp_path / "bundle")
    manifest = json.loads((folder / "bundle.json").read_text())
    assert manifest["format"] == "faderwise.bundle/1"
    assert manifest["target"] == "vocals" and manifest["sample_rate"] == 44_100
    assert manifest["window_a_s"] == [9.0, 21.0]
    assert manifest["gains_a_db"] == {"vocals": 4.0, "drums": -3.0}
    assert manifest["stems_a"] == ["bass", "drums", "guitar", "keys", "vocals"]
    assert manifest["sources"] == {"a": str(demo_dir / "version_a"), "b": str(demo_dir / "version_b")}

    again = read_bundle(folder)
    for name in CLIP_NAMES:
        np.testing.assert_array_equal(getattr(again, name), getattr(bundle, name))
    assert again.window_a_s == (9.0, 21.0) and again.gains_a_db == {"vocals": 4.0, "drums": -3.0}

    alm = read_bundle(folder, alm=True)
    assert alm.rate == ALM_RATE
    assert alm.target_a.shape == (1, 12 * ALM_RATE)
    expected = resample(bundle.target_a.mean(axis=0, keepdims=True), 44_100, ALM_RATE)
    np.testing.assert_allclose(alm.target_a, expected, atol=1e-6)


def test_other_material_gets_its_own_window_and_rate(demo_dir: Path) -> None:
    version_a = load_stem_set(demo_dir / "version_a")
    version_b = load_stem_set(demo_dir / "version_b", rate=22_050)
    shorter_b = type(version_b)(stems={n: a[:, 6 * 22_050:] for n, a in version_b.stems.items()}, rate=22_050)
    bundle = make_bundle(version_a, shorter_b, "guitar", max_s=8.0)
    assert bundle.rate == 44_100
    # The guitar plays the chorus, 15 s to 25.6 s (its last strum rings on); 8 s windows centred in it.
    assert bundle.window_a_s == (16.3, 24.3)
    assert bundle.window_b_s == (10.3, 18.3)  # the same part, 6 s earlier in the cut B
    assert bundle.target_b.shape == (2, 8 * 44_100)


def test_missing_target_in_reference(demo_dir: Path) -> None:
    version_a = load_stem_set(demo_dir / "version_a")
    without_guitar = type(version_a)(stems={n: a for n, a in version_a.stems.items() if n != "guitar"},
                                     rate=version_a.rate, origin=Path("ref"))
    with pytest.raises(StemSetError) as raised:
        make_bundle(version_a, without_guitar, "guitar")
    assert str(raised.value) == "ref: has no stem 'guitar' (it has: bass, drums, keys, vocals)"


def test_reading_something_that_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(InvalidAudioError) as raised:
        read_bundle(tmp_path)
    assert str(raised.value) == f"{tmp_path / 'bundle.json'}: no such file; not a faderwise bundle"
    (tmp_path / "bundle.json").write_text('{"format": "other"}')
    with pytest.raises(InvalidAudioError, match=r"not a faderwise.bundle/1 manifest"):
        read_bundle(tmp_path)
