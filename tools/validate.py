"""The one audio validator every entry point uses.

Layout is always ``(channels, samples)``. A 1-D array is unambiguous (mono) and becomes ``(1, n)``;
a 2-D array is never transposed on a guess: if its first axis is longer than ``max_channels`` the
caller most likely passed ``(samples, channels)`` and is told so.
"""

from __future__ import annotations

from os import PathLike

import numpy as np

from faderwise.tools.errors import InvalidAudioError

MAX_CHANNELS = 8
MAX_PEAK_DBFS = 24.0
"""Float audio peaking above this (15.8 × full scale) is refused: no real stem is that hot, and a
file scaled wrongly (samples near 3e38) would overflow the measurements and read as silence."""
# ITU-R BS.1770-4 gates loudness in 400 ms blocks: anything shorter has no loudness at all.
LOUDNESS_BLOCK_S = 0.4


def describe_source(source: str | PathLike[str] | None) -> str:
    """How an error message names the audio: the file path, or ``'audio'`` for in-memory arrays."""
    return str(source) if source is not None else "audio"


def validate_audio(
    audio: np.ndarray,
    rate: int,
    *,
    source: str | PathLike[str] | None = None,
    min_duration_s: float = LOUDNESS_BLOCK_S,
    max_channels: int = MAX_CHANNELS,
    start_s: float = 0.0,
) -> np.ndarray:
    """Check audio and return it as C-contiguous float32 ``(channels, samples)``.

    Args:
        audio: samples, shape ``(channels, samples)`` or ``(samples,)`` for mono, floating point,
            full scale = 1.0.
        rate: sample rate in Hz (positive integer).
        source: file the samples came from, named in error messages.
        min_duration_s: shortest accepted duration in seconds (default: one 400 ms BS.1770 block).
        max_channels: most channels accepted.
        start_s: where ``audio`` begins in its file, seconds (a block of a longer file): error
            messages give times in the file.

    Raises:
        InvalidAudioError: wrong type, dtype or shape; too many channels; shorter than
            ``min_duration_s``; NaN or infinite samples; a peak above :data:`MAX_PEAK_DBFS`.
    """
    where = describe_source(source)
    if not isinstance(audio, np.ndarray):
        raise InvalidAudioError(f"{where}: expected a numpy array, got {type(audio).__name__}")
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise InvalidAudioError(f"{where}: sample rate must be a positive integer in Hz, got {rate!r}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise InvalidAudioError(
            f"{where}: samples must be floating point (full scale = 1.0), got dtype {audio.dtype}"
        )
    if audio.ndim == 1:
        audio = audio[np.newaxis, :]
    elif audio.ndim != 2:
        raise InvalidAudioError(
            f"{where}: audio must have shape (channels, samples), got {audio.ndim} dimensions {audio.shape}"
        )
    channels, samples = audio.shape
    if channels == 0:
        raise InvalidAudioError(f"{where}: has no channels")
    if channels > max_channels:
        raise InvalidAudioError(
            f"{where}: has {channels} channels; faderwise supports at most {max_channels} "
            f"(layout is (channels, samples): was (samples, channels) passed?)"
        )
    duration_s = samples / rate
    if duration_s < min_duration_s:
        raise InvalidAudioError(
            f"{where}: is {duration_s * 1000:.0f} ms long, shorter than one "
            f"{min_duration_s * 1000:.0f} ms loudness block"
        )
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    finite = np.isfinite(audio)
    if not finite.all():
        bad_sample = int(np.argmin(finite.all(axis=0)))
        bad_channel = int(np.argmin(finite[:, bad_sample]))
        count = int(finite.size - np.count_nonzero(finite))
        raise InvalidAudioError(
            f"{where}: contains {count} NaN or infinite sample{'s' if count != 1 else ''} "
            f"(first at {start_s + bad_sample / rate:.3f} s, channel {bad_channel})"
        )
    peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    if peak > 10.0 ** (MAX_PEAK_DBFS / 20.0):
        raise InvalidAudioError(
            f"{where}: peaks at {20.0 * np.log10(peak):+.1f} dBFS ({peak:.3g} × full scale), beyond the "
            f"{MAX_PEAK_DBFS:+.0f} dBFS faderwise measures: is it float audio with the wrong scale?"
        )
    return audio
