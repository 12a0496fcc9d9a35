"""Loudness against EBU Tech 3341 / 3342 conformance signals generated in code, and pyloudnorm."""

from __future__ import annotations

import warnings

import numpy as np
import pyloudnorm
import pytest

from conftest import sine
from faderwise.tools.loudness import LoudnessBlocks, integrated_loudness

RATE = 48_000


def sequence(*parts: tuple[float, float], rate: int = RATE) -> np.ndarray:
    """Stereo 1 kHz sine segments ``(peak dBFS, seconds)`` back to back."""
    return np.concatenate(
        [sine(frequency=1000, peak_dbfs=level, seconds=seconds, rate=rate) for level, seconds in parts], axis=1
    )


@pytest.mark.parametrize("rate", [44_100, 48_000])
@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([(-23.0, 20.0)], -23.0),  # Tech 3341 case 1
        ([(-33.0, 20.0)], -33.0),  # case 2
        ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),  # case 3: relative gate
        ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)], -23.0),  # case 4
        ([(-26.0, 20.1), (-20.0, 20.1), (-26.0, 20.1)], -23.0),  # case 5
    ],
)
def test_integrated_loudness_ebu_tech_3341(parts: list[tuple[float, float]], expected: float, rate: int) -> None:
    assert integrated_loudness(sequence(*parts, rate=rate), rate) == pytest.approx(expected, abs=0.1)


def test_1khz_reference_tone_within_a_hundredth() -> None:
    # The DeMan K-weighting reproduces the spec's 48 kHz coefficients: the tone reads -23.00.
    assert integrated_loudness(sequence((-23.0, 20.0)), RATE) == pytest.approx(-23.0, abs=0.01)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([(-20.0, 20.0), (-30.0, 20.0)], 10.0),  # Tech 3342 case 1
        ([(-20.0, 20.0), (-15.0, 20.0)], 5.0),  # case 2
        ([(-40.0, 20.0), (-20.0, 20.0)], 20.0),  # case 3
        ([(-50.0, 20.0), (-35.0, 20.0), (-20.0, 20.0), (-35.0, 20.0), (-50.0, 20.0)], 15.0),  # case 4
    ],
)
def test_loudness_range_ebu_tech_3342(parts: list[tuple[float, float]], expected: float) -> None:
    blocks = LoudnessBlocks.measure(sequence(*parts), RATE)
    assert blocks.loudness_range() == pytest.approx(expected, abs=1.0)


def test_silence_is_minus_infinity_without_warnings() -> None:
    silence = np.zeros((2, RATE * 5), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        blocks = LoudnessBlocks.measure(silence, RATE)
        assert blocks.integrated() == float("-inf")
        assert np.isnan(blocks.loudness_range())
        assert np.all(blocks.short_term().lufs == -np.inf)


def test_below_absolute_gate_is_silent() -> None:
    quiet = sequence((-75.0, 5.0))  # about -75 LUFS: under the -70 LUFS absolute gate
    assert integrated_loudness(quiet, RATE) == float("-inf")


def test_short_term_curve_follows_a_level_step() -> None:
    curve = LoudnessBlocks.measure(sequence((-30.0, 10.0), (-20.0, 10.0)), RATE).short_term()
    assert curve.window_s == pytest.approx(3.0)
    # Windows every 100 ms, centred: first centre 1.5 s, last 18.5 s.
    assert curve.times_s[0] == pytest.approx(1.5)
    assert curve.times_s[-1] == pytest.approx(18.5)
    assert len(curve.times_s) == 171
    assert curve.lufs[curve.times_s < 8.0] == pytest.approx(-30.0, abs=0.05)
    assert curve.lufs[curve.times_s > 12.0] == pytest.approx(-20.0, abs=0.05)


def test_short_audio_gets_one_short_term_window() -> None:
    curve = LoudnessBlocks.measure(sequence((-23.0, 1.0)), RATE).short_term()
    assert curve.window_s == pytest.approx(1.0)
    assert curve.lufs == pytest.approx([-23.0], abs=0.05)


def test_surround_channels_weigh_141() -> None:
    # BS.1770-4 Table 3: the same tone on Ls reads 10*log10(1.41) = +1.49 dB above L.
    tone = sine(frequency=1000, peak_dbfs=-23.0, seconds=5.0, rate=RATE, channels=1)[0]
    front = np.zeros((5, tone.size), dtype=np.float32)
    front[0] = tone
    surround = np.zeros_like(front)
    surround[3] = tone
    difference = integrated_loudness(surround, RATE) - integrated_loudness(front, RATE)
    assert difference == pytest.approx(10 * np.log10(1.41), abs=0.001)


@pytest.mark.parametrize("rate", [16_000, 22_050, 44_100, 48_000, 11_025])
def test_matches_pyloudnorm_on_noise_bursts(rate: int) -> None:
    rng = np.random.default_rng(rate)
    # Level steps every 250 ms, smoothed over 10 ms: with instant 30 dB steps, where a 100 ms hop
    # boundary falls at 11025 Hz (1102.5 samples: pyloudnorm floors, we round) would move a block
    # by 0.2 LU, a difference of conventions, not of measurement.
    # Exactly 10 s: pyloudnorm also counts a last block that runs past the end; we count whole blocks.
    steps = np.repeat(rng.uniform(0.0, 1.0, 40) ** 3, int(rate * 0.25) + 1)[: 10 * rate]
    smoothing = int(rate * 0.01)
    envelope = np.convolve(steps, np.ones(smoothing) / smoothing, mode="same")
    audio = (0.3 * rng.standard_normal((2, envelope.size)) * envelope).astype(np.float32)
    reference = pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(audio.T.astype(np.float64))
    assert integrated_loudness(audio, rate) == pytest.approx(reference, abs=0.02)
