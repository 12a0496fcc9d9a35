"""validate_audio: the one gate every array passes, with its exact messages."""

from __future__ import annotations

import numpy as np
import pytest

from faderwise.tools.errors import FaderwiseError, InvalidAudioError
from faderwise.tools.validate import validate_audio


def test_mono_vector_becomes_one_channel_float32() -> None:
    out = validate_audio(np.zeros(4000, dtype=np.float64), 8000)
    assert out.shape == (1, 4000) and out.dtype == np.float32 and out.flags.c_contiguous


def test_errors_are_faderwise_errors() -> None:
    assert issubclass(InvalidAudioError, FaderwiseError)


@pytest.mark.parametrize(
    ("audio", "rate", "message"),
    [
        ([0.0] * 10, 8000, "song.wav: expected a numpy array, got list"),
        (np.zeros((2, 8000)), 0, "song.wav: sample rate must be a positive integer in Hz, got 0"),
        (np.zeros((2, 8000), dtype=np.int16), 8000,
         "song.wav: samples must be floating point (full scale = 1.0), got dtype int16"),
        (np.zeros((2, 2, 8000)), 8000, "song.wav: audio must have shape (channels, samples), got 3 dimensions (2, 2, 8000)"),
        (np.zeros((9, 8000)), 8000,
         "song.wav: has 9 channels; faderwise supports at most 8 (layout is (channels, samples): was (samples, channels) passed?)"),
        (np.zeros((8000, 2)), 8000,
         "song.wav: has 8000 channels; faderwise supports at most 8 (layout is (channels, samples): was (samples, channels) passed?)"),
        (np.zeros((2, 3000)), 8000, "song.wav: is 375 ms long, shorter than one 400 ms loudness block"),
    ],
)
def test_rejections(audio: object, rate: int, message: str) -> None:
    with pytest.raises(InvalidAudioError) as raised:
        validate_audio(audio, rate, source="song.wav")  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_nan_and_inf_are_located() -> None:
    audio = np.zeros((2, 8000))
    audio[1, 4000] = np.nan
    audio[0, 6000] = np.inf
    with pytest.raises(InvalidAudioError) as raised:
        validate_audio(audio, 8000, source="x.wav")
    assert str(raised.value) == "x.wav: contains 2 NaN or infinite samples (first at 0.500 s, channel 1)"


def test_in_memory_audio_is_named_audio() -> None:
    with pytest.raises(InvalidAudioError, match=r"^audio: is 0 ms long"):
        validate_audio(np.zeros((1, 0)), 8000)
