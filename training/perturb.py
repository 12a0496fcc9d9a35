"""Making Version A / Version B pairs from a balanced stem set, and degrading the reference the
way real references are degraded.

* :func:`random_perturbation`: gains for 1–N stems, ±min…max dB, either sign (the research data).
* :func:`lossy_copy`: every stem through a 128 kbps MP3 or AAC encoder and back (ffmpeg).
* :func:`delayed`: the whole set shifted in time (a bounce with a different pre-roll).
* :func:`cropped`: the set cut shorter (a reference that ends early).

A gain that made A from B is ``perturbation_db``; the move that undoes it is its negative.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from faderwise.tools.align import shift
from faderwise.tools.audio_io import ffmpeg_executable
from faderwise.tools.errors import AudioReadError
from faderwise.tools.stems import StemSet

Codec = Literal["mp3", "aac"]
_ENCODERS = {"mp3": ("libmp3lame", ".mp3"), "aac": ("aac", ".m4a")}


def random_perturbation(
    stem_names: list[str], rng: np.random.Generator, *, max_stems: int = 3, min_db: float = 1.0,
    max_db: float = 9.0,
) -> dict[str, float]:
    """Gains (dB) for 1…``max_stems`` distinct stems, magnitudes uniform in [min_db, max_db], random sign."""
    count = int(rng.integers(1, min(max_stems, len(stem_names)) + 1))
    chosen = rng.choice(len(stem_names), size=count, replace=False)
    return {stem_names[int(i)]: float(rng.choice([-1.0, 1.0]) * rng.uniform(min_db, max_db)) for i in chosen}


def lossy_copy(stem_set: StemSet, *, codec: Codec = "mp3", bitrate_kbps: int = 128) -> StemSet:
    """Every stem encoded at ``bitrate_kbps`` with ``codec`` and decoded again; the encoder delay
    is removed by the decoder (ffmpeg trims MP3/AAC priming), lengths are cut to the original."""
    encoder, suffix = _ENCODERS[codec]
    ffmpeg = ffmpeg_executable()
    stems = {}
    with tempfile.TemporaryDirectory(prefix="faderwise-lossy-") as scratch:
        for index, (name, audio) in enumerate(stem_set.stems.items()):
            source, encoded, decoded = (Path(scratch) / f"{index}{ext}" for ext in (".wav", suffix, ".dec.wav"))
            sf.write(source, audio.T, stem_set.rate, subtype="FLOAT")
            for command in (
                [ffmpeg, "-v", "error", "-nostdin", "-y", "-i", str(source), "-c:a", encoder,
                 "-b:a", f"{bitrate_kbps}k", str(encoded)],
                [ffmpeg, "-v", "error", "-nostdin", "-y", "-i", str(encoded), "-c:a", "pcm_f32le", str(decoded)],
            ):
                result = subprocess.run(command, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    raise AudioReadError(f"{name}: {codec} round trip failed ({result.stderr.strip()[-200:]})")
            data, _ = sf.read(decoded, dtype="float32", always_2d=True)
            out = np.zeros_like(audio)
            count = min(out.shape[1], data.shape[0])
            out[:, :count] = data.T[:, :count]
            stems[name] = out
    return StemSet(stems=stems, rate=stem_set.rate, origin=stem_set.origin)


def delayed(stem_set: StemSet, seconds: float) -> StemSet:
    """The set ``seconds`` later (earlier if negative), same length."""
    lag = -int(round(seconds * stem_set.rate))
    return StemSet(stems={name: shift(audio, lag, stem_set.n_samples) for name, audio in stem_set.stems.items()},
                   rate=stem_set.rate, origin=stem_set.origin)


def cropped(stem_set: StemSet, *, start_s: float = 0.0, end_s: float | None = None) -> StemSet:
    """The part of the set from ``start_s`` to ``end_s`` seconds."""
    start = int(round(start_s * stem_set.rate))
    stop = stem_set.n_samples if end_s is None else int(round(end_s * stem_set.rate))
    return StemSet(stems={name: np.ascontiguousarray(audio[:, start:stop]) for name, audio in stem_set.stems.items()},
                   rate=stem_set.rate, origin=stem_set.origin)
