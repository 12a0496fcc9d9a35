"""Reading, writing and resampling audio files.

Everything returned is float32 ``(channels, samples)``; every write goes to a temporary name in the
destination folder and is renamed into place, so a crash never leaves half a file behind.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from faderwise.tools.errors import AudioReadError, MissingDependencyError
from faderwise.tools.input_files import check_regular_file, open_binary, open_regular_file
from faderwise.tools.memory import memory_of_stem_files
from faderwise.tools.outputs import note_input, output_file
from faderwise.tools.validate import LOUDNESS_BLOCK_S, validate_audio

# Formats libsndfile decodes (mp3 since libsndfile 1.1, which the soundfile wheels bundle).
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga", ".mp3")
AUDIO_FILE = "an audio file"
"""What an audio file is called in the input checks (:mod:`faderwise.tools.input_files`): audio is
decoded in blocks, so it is checked for being a regular file, not for its size."""


def open_sound_file(path: str | os.PathLike[str]) -> sf.SoundFile:
    """libsndfile's reader of ``path``, opened from a descriptor checked to be a regular file
    (:func:`faderwise.tools.input_files.open_regular_file`): a named pipe or a device is refused by
    name rather than waited on. The descriptor is closed with the reader (or by libsndfile when it
    cannot read the file).

    libsndfile tells an MP3 that has bytes before its first frame (padding, a stray tag) by the
    name's suffix alone, which a descriptor does not have: such a file is opened again by its path,
    checked again first.

    Raises:
        NotAFileError: a named pipe, a socket, a device.
        OSError: what ``open()`` raises (missing, a folder, no permission).
        soundfile.LibsndfileError: libsndfile cannot read it.
    """
    try:
        return sf.SoundFile(open_regular_file(path, what=AUDIO_FILE), closefd=True)
    except sf.LibsndfileError:  # libsndfile has closed the descriptor
        if Path(path).suffix.casefold() != ".mp3":
            raise
    check_regular_file(path, what=AUDIO_FILE)
    return sf.SoundFile(path)


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
    require_audio_file(path)
    try:
        with open_sound_file(path) as handle:
            rate = handle.samplerate
            data = handle.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise unreadable(path, exc) from exc
    except OSError as exc:
        raise AudioReadError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    require_whole(path, data.shape[0], int(rate))
    # soundfile returns (frames, channels); transposing here is the one place the axis order is known.
    return validate_audio(data.T, int(rate), source=path, min_duration_s=min_duration_s), int(rate)


def require_audio_file(path: Path) -> None:
    """Register ``path`` as an input and refuse it unless it is a regular file with something in it.

    Raises:
        NotAFileError: a named pipe (FIFO), a socket or a device (checked before anything opens it).
        AudioReadError: no such file, or an empty one.
    """
    note_input(path)
    check_regular_file(path, what=AUDIO_FILE)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioReadError(f"{path}: file is empty (0 bytes)")


def unreadable(path: Path, exc: Exception) -> AudioReadError:
    """The error for a file libsndfile cannot open or decode, with its reason."""
    detail = str(exc).split(":")[-1].strip() or "format not recognised"
    return AudioReadError(f"{path}: not a readable audio file ({detail})")


def require_whole(path: Path, frames: int, rate: int) -> None:
    """Refuse a file of ``frames`` samples at ``rate`` Hz that holds none, or that is shorter than
    its header declares (:func:`truncated_fraction`).

    Raises:
        AudioReadError: no samples, or cut short (naming what the header promised and what is there).
    """
    if frames == 0:
        raise AudioReadError(f"{path}: contains no audio samples")
    missing = truncated_fraction(path)
    if missing is not None:
        held_s = frames / rate
        raise AudioReadError(f"{path}: truncated: the header promises {held_s / (1.0 - missing):.2f} s of audio but "
                             f"the file ends after {held_s:.2f} s (an interrupted copy or export?)")


def audio_header(path: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """``(frames, sample rate, channels)`` from a file's header without decoding it; None when
    the header cannot be read (:func:`read_audio` then says why).

    Raises:
        NotAFileError: a named pipe (FIFO), a socket or a device: refused, not opened.
    """
    try:
        with open_sound_file(path) as info:
            return int(info.frames), int(info.samplerate), int(info.channels)
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError):
        return None


def truncated_fraction(path: str | os.PathLike[str]) -> float | None:
    """For a WAV or AIFF file whose data chunk is shorter than its header declares (a copy cut
    off, an export interrupted), the fraction of the declared audio that is missing; else None.

    libsndfile reads such a file without complaint and returns only what is there, which would be
    measured as a stem that falls silent. Streaming writers that leave the size at 0 or 0xFFFFFFFF
    are not judged.

    Raises:
        NotAFileError: a named pipe (FIFO), a socket or a device: refused, not opened.
    """
    path = Path(path)
    try:
        with open_binary(path, what=AUDIO_FILE) as handle:
            header = handle.read(12)
            size = os.fstat(handle.fileno()).st_size
            if header[:4] == b"RIFF" and header[8:12] == b"WAVE":
                order, wanted = "<", b"data"
            elif header[:4] == b"FORM" and header[8:12] in (b"AIFF", b"AIFC"):
                order, wanted = ">", b"SSND"
            else:
                return None
            position = 12
            while position + 8 <= size:
                handle.seek(position)
                chunk = handle.read(8)
                declared = int.from_bytes(chunk[4:8], "little" if order == "<" else "big")
                if chunk[:4] == wanted:
                    available = size - position - 8
                    if declared in (0, 0xFFFFFFFF) or available >= declared:
                        return None
                    return 1.0 - available / declared
                position += 8 + declared + (declared & 1)
    except OSError:
        return None
    return None


def write_audio(
    path: str | os.PathLike[str], audio: np.ndarray, rate: int, *, subtype: str = "FLOAT", force: bool = False
) -> Path:
    """Write ``(channels, samples)`` audio to ``path`` through the guarded writer
    (:func:`faderwise.tools.outputs.output_file`: never over an input, replaced only with ``force``, whole or
    not at all).

    ``subtype`` is a libsndfile subtype; the default 32-bit float keeps levels above full scale
    intact, so a render never clips on disk.
    """
    audio = validate_audio(audio, rate, source=path, min_duration_s=0.0)
    with output_file(path, force=force) as staging:
        sf.write(staging, audio.T, rate, subtype=subtype)
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


def ffmpeg_executable() -> str:
    """ffmpeg on PATH, else the binary the ``imageio-ffmpeg`` wheel ships, else an error."""
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise MissingDependencyError(
            "reading .stem.mp4 files needs ffmpeg: install it (e.g. apt-get install ffmpeg) "
            "or pip install imageio-ffmpeg"
        ) from exc


def decode_audio_streams(path: Path) -> list[tuple[np.ndarray, int]]:
    """Decode every audio stream of a container (a ``.stem.mp4``) in one ffmpeg run.

    Returns:
        ``(audio, rate)`` per audio stream in stream order; audio float32 ``(channels, samples)``.

    Raises:
        NotAFileError: a named pipe (FIFO), a socket or a device: refused before ffmpeg opens it.
        AudioReadError: the file is not a container ffmpeg can read, or holds no audio stream.
    """
    check_regular_file(path, what="a .stem.mp4 file")
    if path.stat().st_size == 0:
        raise AudioReadError(f"{path}: file is empty (0 bytes)")
    ffmpeg = ffmpeg_executable()
    # ffmpeg with an input and no output lists the streams on stderr and exits 1: that is the probe.
    listing = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)],
                             capture_output=True, text=True, errors="replace", check=False).stderr
    streams = _AUDIO_STREAM_LINE.findall(listing)
    count = len(streams)
    if count == 0:
        last = listing.strip().splitlines()[-1].removeprefix(f"{path}: ") if listing.strip() else "no output"
        raise AudioReadError(f"{path}: no audio streams found ({last})")
    duration = _DURATION.search(listing)
    if duration is not None:
        hours, minutes, seconds = duration.groups()
        length_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        memory_of_stem_files(path, {f"stream {index}": (int(length_s * rate), rate, channels)
                                    for index, (rate, channels) in enumerate(_stream_shape(s) for s in streams)})
    with tempfile.TemporaryDirectory(prefix="faderwise-decode-") as scratch:
        command = [ffmpeg, "-v", "error", "-nostdin", "-i", str(path)]
        for index in range(count):
            command += ["-map", f"0:a:{index}", "-c:a", "pcm_f32le", f"{scratch}/{index}.wav"]
        result = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
        if result.returncode != 0:
            message = result.stderr.strip().splitlines()
            raise AudioReadError(f"{path}: cannot decode its audio ({message[-1] if message else 'ffmpeg failed'})")
        decoded = []
        for index in range(count):
            data, rate = sf.read(f"{scratch}/{index}.wav", dtype="float32", always_2d=True)
            decoded.append((data.T.copy(), int(rate)))
    return decoded


_AUDIO_STREAM_LINE = re.compile(r"^\s*Stream #0:\d+\S*: Audio:.*$", re.MULTILINE)
_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_CHANNEL_LAYOUTS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}


def _stream_shape(line: str) -> tuple[int, int]:
    """``(sample rate, channels)`` of an ffmpeg stream line ("… Audio: aac, 44100 Hz, stereo, …")."""
    rate = re.search(r"(\d+) Hz", line)
    layout = re.search(r"Hz, ([^,]+)", line)
    channels = re.match(r"(\d+) channels", layout.group(1)) if layout else None
    count = int(channels.group(1)) if channels else _CHANNEL_LAYOUTS.get(layout.group(1).split("(")[0], 2) if layout else 2
    return (int(rate.group(1)) if rate else 44_100), count
