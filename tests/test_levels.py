"""RMS, sample peak, true peak (BS.1770-4 Annex 2) and crest factor against analytic values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import oaconvolve

from conftest import sine
from faderwise.tools.family import mix_backings_stems
from faderwise.tools.levels import (
    amplitude_to_db,
    crest_factor_db,
    interpolation_filter,
    intersample_peaks_of_family,
    rms_dbfs,
    sample_peak_dbfs,
    true_peak_dbtp,
)

RATE = 48_000


def brute_force_true_peak(audio: np.ndarray, factor: int = 4) -> float:
    """The samples and every in-between phase of the polyphase filter convolved over the whole
    signal: the slow reference."""
    taps = interpolation_filter(factor)
    half = (len(taps) - 1) // (2 * factor)
    peak = max(
        float(np.max(np.abs(oaconvolve(audio, taps[p::factor][np.newaxis, :], axes=-1)[:, half : half + audio.shape[1]])))
        for p in range(1, factor)
    )
    return max(amplitude_to_db(peak), sample_peak_dbfs(audio))


def faded(audio: np.ndarray, rate: int) -> np.ndarray:
    """10 ms raised-cosine fades: a sine switched on at full level rings like any step."""
    n = int(0.01 * rate)
    ramp = np.sin(np.linspace(0, np.pi / 2, n)) ** 2
    out = audio.copy()
    out[:, :n] *= ramp
    out[:, -n:] *= ramp[::-1]
    return out


def test_rms_of_full_scale_sine_is_minus_3_01() -> None:
    assert rms_dbfs(sine(frequency=997, peak_dbfs=0.0, seconds=1.0, rate=RATE)) == pytest.approx(-3.0103, abs=0.001)


def test_rms_of_square_wave_equals_its_peak() -> None:
    square = np.sign(sine(frequency=100, peak_dbfs=0.0, seconds=1.0, rate=RATE, phase=0.1)) * 0.5
    assert rms_dbfs(square) == pytest.approx(-6.0206, abs=0.001)


def test_sample_peak_and_crest_factor_of_sine() -> None:
    tone = sine(frequency=1000, peak_dbfs=-12.0, seconds=1.0, rate=RATE, phase=np.pi / 2)
    assert sample_peak_dbfs(tone) == pytest.approx(-12.0, abs=1e-4)
    assert crest_factor_db(sample_peak_dbfs(tone), rms_dbfs(tone)) == pytest.approx(3.0103, abs=0.001)


def test_silence() -> None:
    silence = np.zeros((2, RATE), dtype=np.float32)
    assert rms_dbfs(silence) == float("-inf")
    assert sample_peak_dbfs(silence) == float("-inf")
    assert true_peak_dbtp(silence, RATE) == float("-inf")
    assert np.isnan(crest_factor_db(float("-inf"), float("-inf")))


@pytest.mark.parametrize(
    ("cycle", "phase_deg"),
    [(4, 45.0), (6, 60.0), (8, 67.5), (4, 0.0)],  # the EBU Tech 3341 true-peak signals' shapes
)
def test_true_peak_finds_the_inter_sample_peak(cycle: int, phase_deg: float) -> None:
    # A sine at fs/cycle whose samples miss its crest: samples peak at -6 dBFS, the wave at
    # -6 dBFS - 20·log10(max |sin(sample phases)|).
    n = np.arange(RATE * 2)
    phases = 2 * np.pi * n / cycle + np.deg2rad(phase_deg)
    sample_max = float(np.max(np.abs(np.sin(phases))))
    wave = (10 ** (-6 / 20) / sample_max * np.sin(phases)).astype(np.float32)[np.newaxis]
    wave = faded(np.repeat(wave, 2, axis=0), RATE)
    assert sample_peak_dbfs(wave) == pytest.approx(-6.0, abs=1e-4)
    assert true_peak_dbtp(wave, RATE) == pytest.approx(-6.0 - 20 * np.log10(sample_max), abs=0.01)


def test_fs_over_4_at_45_degrees_reads_3_01_db_over_sample_peak() -> None:
    wave = faded(sine(frequency=RATE / 4, peak_dbfs=0.0, seconds=1.0, rate=RATE, phase=np.pi / 4), RATE)
    assert true_peak_dbtp(wave, RATE) - sample_peak_dbfs(wave) == pytest.approx(3.0103, abs=0.01)


@pytest.mark.parametrize("samples", [400, 777, 16, 17, 65_541])  # shorter than a row, chunk edges
def test_true_peak_equals_brute_force_oversampling(samples: int) -> None:
    audio = np.random.default_rng(samples).standard_normal((2, samples)).astype(np.float32)
    assert true_peak_dbtp(audio, 44_100) == pytest.approx(brute_force_true_peak(audio), abs=1e-4)


def test_true_peaks_of_a_stem_family_equal_separate_measurements() -> None:
    rng = np.random.default_rng(7)
    parts = [rng.standard_normal((2, 20_000)).astype(np.float32) * scale for scale in (0.1, 0.3, 0.05)]
    family = [max(sample_peak_dbfs(signal), intersample)
              for signal, intersample in zip(mix_backings_stems(parts),
                                             intersample_peaks_of_family(parts, 44_100, family=mix_backings_stems))]
    separate = [brute_force_true_peak(signal) for signal in mix_backings_stems(parts)]
    assert family == pytest.approx(separate, abs=1e-4)


def test_high_rates_oversample_less() -> None:
    tone = faded(sine(frequency=1000, peak_dbfs=-3.0, seconds=1.0, rate=192_000), 192_000)
    assert true_peak_dbtp(tone, 192_000) == sample_peak_dbfs(tone)
