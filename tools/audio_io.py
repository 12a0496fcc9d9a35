"""Reading, writing and resampling audio files.

Everything returned is float32 ``(channels, samples)``; every write goes to a temporary name in the
destination folder and is renamed into place, so a crash never leaves half a file behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from tools.errors import AudioReadError, MissingDependencyError
from tools.outputs import atomic_file
from tools.validate import LOUDNESS_BLOCK_S, validate_audio

# Formats libsndfile decodes (mp3 since libsndfile 1.1, which the soundfile wheels bundle).
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga", ".mp3")


def read_audio(
    path: str | os.PathLike[str], *, min_duration_s: float = LOUDNESS_BLOCK_S
) -> tuple[np.ndarray, int]:
    """Decode an audio file.

    Args:
        path: a file in one of :data:`AUDIO_EXTENSIONS`.
        min_duration_s: shortest accepted duration in seconds.

    Returns:
        ``(audio, rate)``: float32 ``(channels, samples)`` with full scale 1.0, rate in Hz.

    Raises:
        AudioReadError: missing, empty, corrupt or non-audio file, or a file with no samples.
        InvalidAudioError: NaN/Inf samples, more than 8 channels, shorter than ``min_duration_s``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioReadError(f"{path}: file is empty (0 bytes)")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        detail = str(exc).split(":")[-1].strip() or "format not recognised"
        raise AudioReadError(f"{path}: not a readable audio file ({detail})") from exc
    if data.shape[0] == 0:
        raise AudioReadError(f"{path}: contains no audio samples")
    # soundfile returns (frames, channels); transposing here is the one place the axis order is known.
    return validate_audio(data.T, int(rate), source=path, min_duration_s=min_duration_s), int(rate)


def write_audio(
    path: str | os.PathLike[str], audio: np.ndarray, rate: int, *, subtype: str = "FLOAT"
) -> Path:
    """Write ``(channels, samples)`` audio to ``path`` atomically (temporary name, then rename).

    ``subtype`` is a libsndfile subtype; the default 32-bit float keeps levels above full scale
    intact, so a render never clips on disk.
    """
    audio = validate_audio(audio, rate, source=path, min_duration_s=0.0)
    with atomic_file(path) as tmp:
        sf.write(tmp, audio.T, rate, subtype=subtype)
    return Path(path)


def resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample ``(channels, samples)`` audio from ``rate`` to ``target_rate`` Hz (polyphase, Kaiser).

    Returns float32 ``(channels, round(samples * target_rate / rate))``.
    """
    if rate == target_rate:
        return audio
    divisor = math.gcd(rate, target_rate)
    out = resample_poly(audio, target_rate // divisor, rate // divisor, axis=-1)
    return np.ascontiguousarray(out, dtype=np.float32)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of ``(channels, samples)`` audio into ``(1, samples)``."""
    return audio.mean(axis=0, keepdims=True, dtype=np.float32)


def require_ffmpeg() -> str:
    """Path of the ffmpeg executable, or :class:`MissingDependencyError`."""
    found = shutil.which("ffmpeg")
    if found is None:
        raise MissingDependencyError(
            "ffmpeg is not installed or not on PATH; it is needed to read .stem.mp4 files "
            "(e.g. apt-get install ffmpeg)"
        )
    return found


def probe_audio_streams(path: Path) -> list[dict[str, int]]:
    """Channels and sample rate of every audio stream in a container, via ffprobe."""
    require_ffmpeg()
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise MissingDependencyError(f"{path}: ffprobe (part of ffmpeg) is not on PATH")
    result = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "a", "-show_entries",
         "stream=index,channels,sample_rate", "-of", "json", str(path)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "ffprobe failed"
        raise AudioReadError(f"{path}: not a readable audio container ({message})")
    streams = json.loads(result.stdout or "{}").get("streams", [])
    return [{"channels": int(s["channels"]), "rate": int(s["sample_rate"])} for s in streams]


def decode_stream(path: Path, stream: int, *, channels: int, rate: int) -> np.ndarray:
    """Decode audio stream number ``stream`` of a container to float32 ``(channels, samples)``."""
    ffmpeg = require_ffmpeg()
    result = subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{stream}",
         "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(rate), "-"],
        capture_output=True, check=False,
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise AudioReadError(
            f"{path}: cannot decode audio stream {stream} ({message[-1] if message else 'ffmpeg failed'})"
        )
    samples = np.frombuffer(result.stdout, dtype="<f4")
    return samples.reshape(-1, channels).T.copy()
