"""Benchmark: real sessions — memory and time as stems and length grow, and speed against libebur128 and ffmpeg.

Sessions are generated here: 48 kHz, 24-bit stereo WAV stems, each a different filtered-noise and
tone texture that plays and rests in its own pattern. Every run is a fresh process (its worker
processes included in the memory figure: the peak of the summed RSS of the whole process tree,
sampled every 20 ms).

1. **Growth**: ``faderwise analyze`` on 8 / 24 / 64 stems × 2 / 4 / 8 minutes, printed per
   stem-minute. Streaming keeps memory flat in length; the whole-file analysis (every stem decoded
   into memory first, what faderwise did before it streamed) is measured beside it on the smaller
   sets to show the growth it had.
2. **The target**: ``faderwise advise A --reference B`` on 64 + 64 stems of 8 minutes, B a
   re-balanced copy of A: under 2 GB, and the moves it finds are the gains that made A.
3. **Speed on one core** against libebur128 (``pyebur128``) and ffmpeg's ``ebur128=peak=true`` on
   the same measurements of the same signals: integrated loudness, short-term loudness every
   100 ms, loudness range and true peak of every stem, every backing and the mix (2N + 1 signals).
   The baselines get their signals decoded (libebur128) or written out (ffmpeg) before the clock
   starts; faderwise's time includes reading its stems from the files. Then the multi-core
   speed-up of ``--workers``.

    pip install -e '.[bench]'   # pyebur128; ffmpeg from Debian
    python bench/session_scale.py [--stems 8 24 64] [--minutes 2 4 8] [--skip-target] [--scratch DIR]

The 64 + 64 × 8-minute target writes 17.7 GB of WAV to the scratch folder (default: the system's
temporary folder), one session at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf
from scipy.signal import lfilter

RATE = 48_000
WRITE_BLOCK_S = 30.0
PATTERN_S = 8.0
TARGET_BYTES = 2_000_000_000
B_GAINS_DB = {"track03": 4.0, "track17": -3.0, "track42": 2.5}  # A = B with the opposite moves


def stem_texture(index: int, rng: np.random.Generator) -> np.ndarray:
    """``PATTERN_S`` seconds of one stem, float32 ``(2, samples)``: noise through a stem-specific
    one-pole filter plus a tone, gated on and off in a stem-specific rhythm, panned."""
    samples = int(PATTERN_S * RATE)
    noise = rng.standard_normal(samples).astype(np.float32)
    pole = 0.5 + 0.45 * ((index * 7) % 10) / 10.0
    filtered = lfilter([1.0 - pole], [1.0, -pole], noise).astype(np.float32)
    t = np.arange(samples) / RATE
    tone = 0.3 * np.sin(2 * np.pi * (55.0 * 2 ** ((index % 24) / 12.0)) * t).astype(np.float32)
    beat = 0.5 + (index % 4) * 0.25
    gate = ((t / beat).astype(int) + index) % (2 + index % 3) != 0
    level = 10 ** ((-30.0 + (index * 13) % 18) / 20.0)
    mono = (level * (filtered / max(float(np.abs(filtered).max()), 1e-9) + tone) * gate).astype(np.float32)
    pan = ((index * 37) % 100) / 100.0
    return np.stack([mono * np.sqrt(1 - pan), mono * np.sqrt(pan)]).astype(np.float32)


def write_session(folder: Path, stems: int, minutes: float, *, gains_db: dict[str, float] | None = None) -> Path:
    """``stems`` 24-bit 48 kHz stereo WAV files of ``minutes`` each in ``folder``, written in blocks."""
    folder.mkdir(parents=True)
    samples = int(minutes * 60 * RATE)
    block = int(WRITE_BLOCK_S * RATE)
    for index in range(stems):
        name = f"track{index:02d}"
        pattern = stem_texture(index, np.random.default_rng(index))
        gain = np.float32(10 ** ((gains_db or {}).get(name, 0.0) / 20.0))
        repeated = np.tile(pattern, (1, -(-block // pattern.shape[1]) + 1))
        with sf.SoundFile(folder / f"{name}.wav", "w", samplerate=RATE, channels=2, subtype="PCM_24") as out:
            for start in range(0, samples, block):
                count = min(block, samples - start)
                offset = start % pattern.shape[1]
                out.write((repeated[:, offset : offset + count] * gain).T)
    return folder


def run_measured(command: list[str], *, cpus: set[int] | None = None) -> tuple[float, int, str]:
    """Run ``command``; ``(wall seconds, peak summed RSS of its process tree in bytes, stdout)``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        watched = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [watched, *watched.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {err.strip()}")
    return wall, peak, out


FADERWISE = [sys.executable, "-m", "faderwise"]
WHOLE_FILE = [sys.executable, "-c", textwrap.dedent("""
    import sys
    from faderwise.tools.analysis import analyze_stem_set
    from faderwise.tools.stem_files import load_stem_set
    analyze_stem_set(load_stem_set(sys.argv[1]))
""")]
FADERWISE_ONE_CORE = [sys.executable, "-c", textwrap.dedent("""
    import sys, time
    from faderwise.tools.analysis import analyze_stem_set
    from faderwise.tools.stem_files import open_stem_set
    started = time.perf_counter()
    analyze_stem_set(open_stem_set(sys.argv[1]), workers=int(sys.argv[2]))
    print(time.perf_counter() - started)
""")]
LIBEBUR128 = [sys.executable, "-c", textwrap.dedent("""
    import sys, time
    import numpy as np, pyebur128
    from faderwise.tools.stem_files import load_stem_set
    stems = load_stem_set(sys.argv[1])
    mix = stems.mix()
    signals = [mix, *(mix - audio for audio in stems.stems.values()), *stems.stems.values()]
    interleaved = [np.ascontiguousarray(signal.T).ravel() for signal in signals]
    del signals, mix
    mode = (pyebur128.MeasurementMode.MODE_I | pyebur128.MeasurementMode.MODE_S | pyebur128.MeasurementMode.MODE_LRA
            | pyebur128.MeasurementMode.MODE_TRUE_PEAK)
    hop = stems.rate // 10
    started = time.perf_counter()
    for frames in interleaved:
        state = pyebur128.R128State(2, stems.rate, mode)
        curve = []
        for start in range(0, frames.size, 2 * hop):
            chunk = frames[start : start + 2 * hop]
            state.add_frames(chunk, chunk.size // 2)
            curve.append(pyebur128.get_loudness_shortterm(state))
        pyebur128.get_loudness_global(state), pyebur128.get_loudness_range(state)
        max(pyebur128.get_true_peak(state, channel) for channel in (0, 1))
    print(time.perf_counter() - started)
""")]


def ffmpeg_seconds(session: Path, scratch: Path) -> float:
    """ffmpeg's ebur128 filter (true peak on) over the 2N + 1 signals written as 32-bit float WAV
    beforehand, one process at a time, each pinned to one core."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from faderwise.tools.stem_files import load_stem_set

    stems = load_stem_set(session)
    mix = stems.mix()
    signals = {"mix": mix, **{f"{name}-backing": mix - audio for name, audio in stems.stems.items()},
               **stems.stems}
    folder = scratch / "ffmpeg-signals"
    folder.mkdir()
    for name, audio in signals.items():
        sf.write(folder / f"{name}.wav", audio.T, stems.rate, subtype="FLOAT")
    del signals, mix, stems
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    started = time.perf_counter()
    for file in sorted(folder.iterdir()):
        subprocess.run(["taskset", "-c", "0", ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-threads", "1", "-v", "error",
                        "-i", str(file), "-af", "ebur128=peak=true", "-f", "null", "-"],
                       check=True, capture_output=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(folder)
    return seconds


def growth(scratch: Path, stem_counts: list[int], minutes: list[float], workers: int) -> None:
    print(f"1. growth: faderwise analyze --workers {workers} (streaming) and the whole-file analysis; "
          "memory is the peak RSS of the process tree")
    print(f"{'stems':>5} {'min':>4} {'stem-min':>8} | {'wall s':>7} {'peak MB':>8} {'MB/stem-min':>11} "
          f"{'s/stem-min':>10} | {'whole-file s':>12} {'peak MB':>8}")
    for count in stem_counts:
        for length in minutes:
            session = write_session(scratch / f"s{count}x{length:g}", count, length)
            wall, peak, _ = run_measured([*FADERWISE, "analyze", str(session), "--json", "--workers", str(workers)])
            stem_minutes = count * length
            whole = ""
            if count * length <= 8 * 8:  # the whole-file path needs ~2.5× the decoded set: keep it to 64 stem-min
                whole_wall, whole_peak, _ = run_measured([*WHOLE_FILE, str(session)])
                whole = f"{whole_wall:>12.1f} {whole_peak / 1e6:>8.0f}"
            print(f"{count:>5} {length:>4g} {stem_minutes:>8g} | {wall:>7.1f} {peak / 1e6:>8.0f} "
                  f"{peak / 1e6 / stem_minutes:>11.1f} {wall / stem_minutes:>10.3f} | {whole}", flush=True)
            shutil.rmtree(session)


def target(scratch: Path, workers: int) -> None:
    print("\n2. target: faderwise advise A --reference B, 64 + 64 stems × 8 min, 48 kHz 24-bit")
    reference = write_session(scratch / "target_b", 64, 8.0)
    session = write_session(scratch / "target_a", 64, 8.0, gains_db={k: -v for k, v in B_GAINS_DB.items()})
    wall, peak, out = run_measured([*FADERWISE, "advise", str(session), "--reference", str(reference), "--json",
                                    "--workers", str(workers)])
    moves = {move["stem"]: move["delta_db"] for move in json.loads(out)["moves"]}
    found = ", ".join(f"{name} {delta:+.2f} dB" for name, delta in sorted(moves.items()))
    worst = max(abs(moves.get(name, 0.0) - gain) for name, gain in B_GAINS_DB.items())
    print(f"   {wall:.0f} s, peak {peak / 1e9:.2f} GB (target < {TARGET_BYTES / 1e9:.0f} GB: "
          f"{'met' if peak < TARGET_BYTES else 'NOT met'}); moves: {found}; largest error {worst:.3f} dB; "
          f"{len(moves)} moves for {len(B_GAINS_DB)} changed stems")
    shutil.rmtree(session)
    shutil.rmtree(reference)


def speed(scratch: Path) -> None:
    print("\n3. speed: the same measurements (integrated, short-term every 100 ms, LRA, true peak) of every stem, "
          "backing and the mix")
    session = write_session(scratch / "speed", 8, 2.0)
    signals = 2 * 8 + 1
    audio_s = signals * 120.0
    ours = min(float(run_measured([*FADERWISE_ONE_CORE, str(session), "1"], cpus={0})[2]) for _ in range(2))
    ebur = min(float(run_measured([*LIBEBUR128, str(session)], cpus={0})[2]) for _ in range(2))
    ffmpeg = ffmpeg_seconds(session, scratch)
    print(f"   8 stems × 2 min = {signals} signals, {audio_s / 60:.0f} min of audio; one core")
    for label, seconds in (("faderwise (reads its files)", ours), ("libebur128 (pyebur128, decoded)", ebur),
                           ("ffmpeg ebur128=peak=true (written)", ffmpeg)):
        print(f"   {label:<36} {seconds:>7.2f} s  {audio_s / seconds:>7.0f}× real time  "
              f"{seconds / ours:>5.1f}× faderwise's time")
    shutil.rmtree(session)
    cores = len(os.sched_getaffinity(0))
    bigger = write_session(scratch / "speedup", 24, 4.0)
    one = float(run_measured([*FADERWISE_ONE_CORE, str(bigger), "1"])[2])
    many = float(run_measured([*FADERWISE_ONE_CORE, str(bigger), str(cores)])[2])
    print(f"   24 stems × 4 min: 1 worker {one:.1f} s, {cores} workers {many:.1f} s: {one / many:.2f}× on {cores} cores")
    shutil.rmtree(bigger)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stems", type=int, nargs="+", default=[8, 24, 64])
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--skip-growth", action="store_true")
    parser.add_argument("--skip-target", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--scratch", type=Path, default=None, help="where the sessions are written (default: /tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="faderwise-bench-", dir=args.scratch) as scratch:
        if not args.skip_growth:
            growth(Path(scratch), args.stems, args.minutes, args.workers)
        if not args.skip_target:
            target(Path(scratch), args.workers)
        if not args.skip_speed:
            speed(Path(scratch))


if __name__ == "__main__":
    main()
