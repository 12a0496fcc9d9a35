"""Stem sets for the streaming-analysis tests, and the measurements the whole-file analysis made of
them before streaming existed (``tests/data/whole_file_golden.npz``, written once by
:func:`capture_golden` with the whole-file code of commit fb9368f).

The sets cover what the block reader must get right: the demo song's 24-bit stems, a set with a
stem at another rate (resampled), a mono stem, a stem 3 s short (padded) and 16-bit PCM, and a
reference that starts 0.3 s late with other fader levels (aligned by lag).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from faderwise.tools.audio_io import resample
from faderwise.tools.demo_song import synthesize_demo_song, write_demo

GOLDEN = Path(__file__).parent / "data" / "whole_file_golden.npz"
SIGNAL_FIELDS = ("integrated_lufs", "rms_dbfs", "sample_peak_dbfs", "true_peak_dbtp", "crest_db", "loudness_range_lu")
LATE_S = 0.3
LATE_GAINS_DB = {"drums": -2.0, "vocals": 1.5}


def write_inputs(folder: Path) -> dict[str, Path]:
    """Write every set under ``folder``; name → stem folder (``demo_a``, ``demo_b``, ``uneven``, ``late_b``)."""
    demo = write_demo(folder / "demo")
    song = synthesize_demo_song()
    rate = song.rate
    uneven = folder / "uneven"
    uneven.mkdir()
    stems = song.stems
    sf.write(uneven / "drums.wav", resample(stems["drums"], rate, 48_000).T, 48_000, subtype="PCM_24")
    sf.write(uneven / "bass.wav", stems["bass"].mean(axis=0), rate, subtype="PCM_24")
    sf.write(uneven / "vocals.wav", stems["vocals"][:, : -3 * rate].T, rate, subtype="FLOAT")
    sf.write(uneven / "keys.wav", stems["keys"].T, rate, subtype="PCM_16")
    sf.write(uneven / "guitar.flac", stems["guitar"].T, rate, subtype="PCM_24")
    late = folder / "late_b"
    late.mkdir()
    pad = np.zeros((2, int(LATE_S * rate)), dtype=np.float32)
    for name, audio in song.with_gains(LATE_GAINS_DB).stems.items():
        sf.write(late / f"{name}.wav", np.concatenate([pad, audio], axis=1).T, rate, subtype="PCM_24")
    return {"demo_a": demo / "version_a", "demo_b": demo / "version_b", "uneven": uneven, "late_b": late}


def measurement_arrays(prefix: str, analysis: object) -> dict[str, np.ndarray]:
    """Every number a :class:`~faderwise.tools.analysis.StemSetAnalysis` holds, flattened to arrays
    keyed ``prefix/signal/field`` (signal: ``mix``, ``<stem>``, ``<stem>+backing``)."""
    signals = {"mix": analysis.mix}
    for name, stem in analysis.stems.items():
        signals[name] = stem.stem
        signals[f"{name}+backing"] = stem.backing
    arrays: dict[str, np.ndarray] = {}
    for signal, measured in signals.items():
        key = f"{prefix}/{signal}"
        for field in SIGNAL_FIELDS:
            arrays[f"{key}/{field}"] = np.asarray(getattr(measured, field), dtype=np.float64)
        arrays[f"{key}/short_term"] = np.asarray(measured.short_term.lufs, dtype=np.float64)
        arrays[f"{key}/active"] = np.asarray(measured.active, dtype=bool)
        arrays[f"{key}/bands"] = np.asarray(measured.bands.level_db(), dtype=np.float64)
    return arrays


def advice_arrays(prefix: str, advice: object) -> dict[str, np.ndarray]:
    """The moves of an advice as two arrays: stem names and dB."""
    moves: Mapping[str, float] = {move.stem: move.delta_db for move in advice.moves}
    return {f"{prefix}/stems": np.asarray(sorted(moves)), f"{prefix}/delta_db": np.asarray([moves[n] for n in sorted(moves)])}


def capture_golden(folder: Path) -> None:
    """Measure every set with the code as it is and save :data:`GOLDEN` (run once, by hand)."""
    from faderwise.advisor.measured import MeasuredAdvisor
    from faderwise.tools.analysis import analyze_stem_set
    from faderwise.tools.stem_files import load_stem_set

    paths = write_inputs(folder)
    arrays: dict[str, np.ndarray] = {}
    for name, path in paths.items():
        arrays.update(measurement_arrays(name, analyze_stem_set(load_stem_set(path))))
    advisor = MeasuredAdvisor()
    for name in ("demo_b", "late_b"):
        version_a, version_b = load_stem_set(paths["demo_a"]), load_stem_set(paths[name])
        arrays.update(advice_arrays(f"advice_{name}", advisor.advise(version_a, version_b)))
        arrays[f"lag_{name}"] = np.asarray(advisor.prepare(version_a, version_b).alignment.lag)
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **arrays)
