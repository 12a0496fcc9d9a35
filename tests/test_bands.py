"""Third-octave band levels: placement, calibration, energy conservation."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import sine
from faderwise.tools.bands import band_levels, band_levels_of_family
from faderwise.tools.family import mix_backings_stems

RATE = 44_100


def test_sine_lands_in_its_band_at_its_mean_square_level() -> None:
    bands = band_levels(sine(frequency=1000, peak_dbfs=-6.0, seconds=3.0, rate=RATE), RATE)
    # Frames that reach past the end hear the tone stop (a broadband click): leave them out.
    inside = bands.frame_times_s < 2.8
    levels = bands.level_db(inside)
    assert bands.labels[int(np.argmax(levels))] == "1k"
    assert levels.max() == pytest.approx(-6.0 - 3.0103, abs=0.05)
    neighbours = levels[[bands.labels.index("800"), bands.labels.index("1.25k")]]
    assert np.all(neighbours < levels.max() - 60)  # Hann sidelobes are far below


def test_band_powers_add_up_to_the_signal_power_in_range() -> None:
    # Noise band-limited to 100 Hz – 10 kHz by construction (in the frequency domain).
    rng = np.random.default_rng(1)
    spectrum = np.fft.rfft(rng.standard_normal((2, RATE * 4)))
    freqs = np.fft.rfftfreq(RATE * 4, 1 / RATE)
    spectrum[:, (freqs < 100) | (freqs > 10_000)] = 0
    noise = np.fft.irfft(spectrum, n=RATE * 4).astype(np.float32) * 0.1
    bands = band_levels(noise, RATE)
    total_db = 10 * np.log10(bands.power.mean(axis=0).sum())
    assert total_db == pytest.approx(10 * np.log10(np.mean(noise.astype(np.float64) ** 2)), abs=0.1)


def test_layout_at_44100_and_16000() -> None:
    assert band_levels(np.zeros((1, RATE), np.float32), RATE).labels[0] == "25"
    assert band_levels(np.zeros((1, RATE), np.float32), RATE).labels[-1] == "16k"  # 20k band passes Nyquist
    assert band_levels(np.zeros((1, 16_000), np.float32), 16_000).labels[-1] == "6.3k"


def test_silence_is_minus_infinity() -> None:
    assert np.all(band_levels(np.zeros((2, RATE), np.float32), RATE).level_db() == -np.inf)


def test_frame_times_and_frame_selection() -> None:
    quiet_then_loud = np.concatenate(
        [sine(frequency=500, peak_dbfs=-40, seconds=2, rate=RATE), sine(frequency=500, peak_dbfs=-10, seconds=2, rate=RATE)],
        axis=1,
    )
    bands = band_levels(quiet_then_loud, RATE)
    band = bands.labels.index("500")
    late = (bands.frame_times_s > 2.5) & (bands.frame_times_s < 3.8)
    assert bands.level_db(late)[band] == pytest.approx(-13.01, abs=0.1)
    assert bands.level_db(bands.frame_times_s < 1.5)[band] == pytest.approx(-43.01, abs=0.1)


def test_family_matches_separate_band_levels() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.standard_normal((2, RATE)).astype(np.float32) * s for s in (0.2, 0.05)]
    family = band_levels_of_family(parts, RATE, family=mix_backings_stems)
    for combined, signal in zip(family, mix_backings_stems(parts)):
        np.testing.assert_allclose(combined.level_db(), band_levels(signal, RATE).level_db(), atol=1e-3)
