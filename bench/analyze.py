"""Benchmark: full analysis of a 4-stem, 3-minute, 44.1 kHz stereo song on one core.

Prints the real-time factor and ratios against baselines measured in the same run:
(a) just decoding the stem files (16-bit WAV and FLAC), (b) plain pyloudnorm integrated loudness
of the same four stems. Targets from issue 2: >= 100x real time, <= 3x the decode time.

    python bench/analyze.py [--repeats N]
"""

from __future__ import annotations

import os

# One core: BLAS and FFT threads off before numpy loads, and the process pinned to one CPU.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyloudnorm  # noqa: E402
import soundfile as sf  # noqa: E402

from faderwise.tools.analysis import analyze_stem_set  # noqa: E402
from faderwise.tools.demo_song import BAR_S, synthesize_demo_song  # noqa: E402
from faderwise.tools.stem_files import load_stem_set  # noqa: E402

SONG_S = 180.0


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """Fastest wall time of ``repeats`` runs, seconds (the least disturbed by the rest of the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def write_song(folder: Path, suffix: str, subtype: str) -> list[Path]:
    """The demo song stretched to 3 minutes as four MUSDB-style stems (keys + guitar = other)."""
    song = synthesize_demo_song(bars=int(round(SONG_S / BAR_S)))
    stems = {
        "drums": song.stems["drums"], "bass": song.stems["bass"], "vocals": song.stems["vocals"],
        "other": song.stems["keys"] + song.stems["guitar"],
    }
    folder.mkdir()
    paths = []
    for name, audio in stems.items():
        path = folder / f"{name}{suffix}"
        sf.write(path, audio.T, song.rate, subtype=subtype)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        wav = write_song(Path(scratch) / "wav", ".wav", "PCM_16")
        flac = write_song(Path(scratch) / "flac", ".flac", "PCM_16")
        stem_set = load_stem_set(wav[0].parent)
        duration = stem_set.duration_s

        decode_wav = best_of(args.repeats, lambda: [sf.read(p, dtype="float32") for p in wav])
        decode_flac = best_of(args.repeats, lambda: [sf.read(p, dtype="float32") for p in flac])
        meter = pyloudnorm.Meter(stem_set.rate)
        plain = best_of(1, lambda: [meter.integrated_loudness(a.T.astype(np.float64)) for a in stem_set.stems.values()])
        analysis = best_of(args.repeats, lambda: analyze_stem_set(stem_set))
        end_to_end_wav = best_of(args.repeats, lambda: analyze_stem_set(load_stem_set(wav[0].parent)))
        end_to_end_flac = best_of(args.repeats, lambda: analyze_stem_set(load_stem_set(flac[0].parent)))

    print(f"song: 4 stems, {duration:.0f} s, {stem_set.rate} Hz, {stem_set.channels} ch; one core; best of {args.repeats}")
    print(f"{'step':<44}{'seconds':>9}{'x real time':>13}")
    rows = [
        ("decode 4 WAV files (16-bit)", decode_wav),
        ("decode 4 FLAC files (16-bit)", decode_flac),
        ("plain pyloudnorm integrated loudness, 4 stems", plain),
        ("faderwise analysis (decoded stems)", analysis),
        ("faderwise load + analysis, WAV", end_to_end_wav),
        ("faderwise load + analysis, FLAC", end_to_end_flac),
    ]
    for label, seconds in rows:
        print(f"{label:<44}{seconds:>9.3f}{duration / seconds:>13.1f}")
    print()
    print(f"analysis real-time factor: {duration / analysis:.1f}x (target >= 100x)")
    print(f"analysis / decode WAV:  {analysis / decode_wav:.2f}x   analysis / decode FLAC: "
          f"{analysis / decode_flac:.2f}x (target <= 3x)")
    print(f"analysis / plain pyloudnorm: {analysis / plain:.2f}x (pyloudnorm measures integrated loudness of the "
          f"4 stems only; faderwise measures 9 signals: stems, backings, mix)")


if __name__ == "__main__":
    main()
