"""The A/B bundle: the unit of the differential analysis.

For one target stem, four time-aligned clips of the same window and rate:

* ``target_a`` — the target stem in Version A (the producer's mix),
* ``backing_a`` — the sum of every other stem of A,
* ``target_b`` — the target stem in Version B (the balanced reference),
* ``backing_b`` — the sum of every other stem of B.

On disk: the four clips as WAV at the stems' rate, a 16 kHz mono copy of each under ``alm/`` (the
input an audio-language model such as Qwen2-Audio takes; its encoder hears at most 30 s a clip),
and ``bundle.json`` describing them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faderwise.tools.activity import active_hops
from faderwise.tools.analysis import analyze_stem_set, block_length
from faderwise.tools.audio_io import read_audio, resample, to_mono, write_audio
from faderwise.tools.errors import InvalidAudioError
from faderwise.tools.input_files import JSON_LIMIT_BYTES, exists_as_file
from faderwise.tools.json_files import read_json, write_json
from faderwise.tools.loudness import HOP_S, LoudnessBlocks
from faderwise.tools.outputs import note_input, output_folder
from faderwise.tools.stem_files import StemSource

BUNDLE_FORMAT = "faderwise.bundle/1"
CLIP_NAMES = ("target_a", "backing_a", "target_b", "backing_b")
ALM_RATE = 16_000
MAX_CLIP_S = 30.0  # Whisper-style encoders (Qwen2-Audio) take at most 30 s per clip
SAME_MATERIAL_TOLERANCE_S = 1.0
BUNDLE_MANIFEST = "a bundle manifest"
"""What ``bundle.json`` is called in the input checks (:mod:`faderwise.tools.input_files`)."""


@dataclass(frozen=True)
class ABBundle:
    """Four clips for one target stem; each float32 ``(channels, samples)`` at ``rate`` Hz.

    Attributes:
        target: the stem the bundle is about.
        window_a_s, window_b_s: ``(start, end)`` of the clips in seconds of each version.
        gains_a_db: when known (research data), the gain in dB that made each A stem from its B
            stem; ``None`` for a user's own mix.
        sources: where Version A and B came from.
    """

    target: str
    rate: int
    target_a: np.ndarray
    backing_a: np.ndarray
    target_b: np.ndarray
    backing_b: np.ndarray
    window_a_s: tuple[float, float]
    window_b_s: tuple[float, float]
    stems_a: tuple[str, ...]
    stems_b: tuple[str, ...]
    gains_a_db: Mapping[str, float] | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def clips(self) -> dict[str, np.ndarray]:
        """Clip name → audio, in the order the model hears them."""
        return {name: getattr(self, name) for name in CLIP_NAMES}


def select_window(active: np.ndarray, *, duration_s: float, max_s: float = MAX_CLIP_S) -> tuple[float, float]:
    """The window of at most ``max_s`` seconds in which the target is active longest.

    Args:
        active: activity per 100 ms hop (see :func:`faderwise.tools.activity.active_hops`).
        duration_s: length of the audio in seconds.
        max_s: longest window in seconds.

    Returns:
        ``(start_s, end_s)``, the whole audio if it is shorter than ``max_s``. Of equally good
        windows the first run is taken and centred in it, so a short part gets context on both sides.
    """
    if duration_s <= max_s:
        return 0.0, duration_s
    width = int(round(max_s / HOP_S))
    cumulative = np.concatenate([[0], np.cumsum(active.astype(np.int64))])
    starts = np.arange(0, max(len(active) - width, 0) + 1)
    counts = cumulative[starts + width] - cumulative[starts]
    best = np.flatnonzero(counts == counts.max())
    first_run = best[: int(np.argmax(np.diff(np.append(best, best[-1] + 2)) > 1)) + 1]
    start_s = min(float(starts[first_run[len(first_run) // 2]]) * HOP_S, duration_s - max_s)
    return round(start_s, 3), round(start_s + max_s, 3)


def target_activity(audio: np.ndarray, rate: int) -> np.ndarray:
    """Whether ``audio`` (``(channels, samples)``) plays in each 100 ms hop (its integrated loudness's gate)."""
    blocks = LoudnessBlocks.measure(audio, rate)
    return active_hops(blocks, blocks.integrated())


def stem_activity(source: StemSource, name: str) -> np.ndarray:
    """Whether stem ``name`` of ``source`` plays in each 100 ms hop, measured block by block."""
    return analyze_stem_set(source.selected([name]), true_peaks=False).stems[source.resolve(name)].stem.active


def _cut(source: StemSource, name: str, window: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The stem ``name`` and its backing (every other stem summed) over ``window`` (seconds), read a
    block at a time: a window of a 64-stem session never holds more than two signals whole."""
    start, stop = int(round(window[0] * source.rate)), int(round(window[1] * source.rate))
    target = np.zeros((source.channels, stop - start), dtype=np.float32)
    backing = np.zeros_like(target)
    block = block_length(source.rate)
    with source.reader() as reader:
        for first in range(start, stop, block):
            last = min(first + block, stop)
            for stem, audio in zip(source.names, reader.read(first, last)):
                (target if stem == name else backing)[:, first - start : last - start] += audio
    return target, backing


def make_bundle(
    version_a: StemSource,
    version_b: StemSource,
    target: str,
    *,
    max_s: float = MAX_CLIP_S,
    gains_a_db: Mapping[str, float] | None = None,
) -> ABBundle:
    """Build the A/B bundle for ``target``, reading only what it needs of each set: the target
    stem once (where it plays), then every stem over the window.

    The window (at most ``max_s`` s) is where the target plays longest in A. When A and B are the
    same material (lengths within 1 s) B is cut at the same window, so the clips stay aligned;
    otherwise B gets its own best window. B is resampled to A's rate if they differ.

    Raises:
        StemSetError: ``target`` is missing from A or from B.
    """
    name_a = version_a.resolve(target)
    name_b = version_b.resolve(target)
    rate = version_a.rate
    version_b = version_b.at_rate(rate)
    duration_b = version_b.duration_s
    window_a = select_window(stem_activity(version_a, name_a), duration_s=version_a.duration_s, max_s=max_s)
    if abs(duration_b - version_a.duration_s) <= SAME_MATERIAL_TOLERANCE_S and window_a[1] <= duration_b:
        window_b = window_a
    else:
        window_b = select_window(stem_activity(version_b, name_b), duration_s=duration_b, max_s=max_s)
    target_a, backing_a = _cut(version_a, name_a, window_a)
    target_b, backing_b = _cut(version_b, name_b, window_b)
    return ABBundle(
        target=name_a,
        rate=rate,
        target_a=target_a,
        backing_a=backing_a,
        target_b=target_b,
        backing_b=backing_b,
        window_a_s=window_a,
        window_b_s=window_b,
        stems_a=tuple(version_a.names),
        stems_b=tuple(version_b.names),
        gains_a_db=dict(gains_a_db) if gains_a_db is not None else None,
        sources={"a": version_a.label, "b": version_b.label},
    )


def alm_clip(audio: np.ndarray, rate: int) -> np.ndarray:
    """What an audio-language model hears of a clip: mono at 16 kHz, float32 ``(1, samples)``."""
    return resample(to_mono(audio), rate, ALM_RATE)


def write_bundle(bundle: ABBundle, out: str | os.PathLike[str], *, force: bool = False, compact: bool = False) -> Path:
    """Write the four clips, their 16 kHz mono copies under ``alm/`` and ``bundle.json``, through
    the guarded writer (never over A or B; replaced only with ``force``; whole or not at all).

    ``compact`` (training datasets) writes only the 16 kHz copies, as 16-bit FLAC: a tenth of the
    size. 16-bit cannot hold levels above full scale, so a compact clip that peaks above it is
    refused (trim the whole bundle first, which keeps every level difference).

    Raises:
        InvalidAudioError: ``compact`` and a 16 kHz clip peaks above full scale.
    """
    alm = {name: alm_clip(audio, bundle.rate) for name, audio in bundle.clips().items()}
    if compact:
        over = [name for name, audio in alm.items() if np.max(np.abs(audio), initial=0.0) > 1.0]
        if over:
            raise InvalidAudioError(f"{out}: {', '.join(over)} peak above full scale; 16-bit clips would clip")
    suffix = ".flac" if compact else ".wav"
    with output_folder(out, kind="bundle", force=force, inputs=bundle.sources.values()) as folder:
        (folder / "alm").mkdir()
        for name, audio in alm.items():
            write_audio(folder / "alm" / f"{name}{suffix}", audio, ALM_RATE, subtype="PCM_16" if compact else "FLOAT")
            if not compact:
                write_audio(folder / f"{name}.wav", bundle.clips()[name], bundle.rate)
        write_json(folder / "bundle.json", bundle_manifest(bundle, full_rate=not compact, alm_suffix=suffix))
    return Path(out)


def bundle_manifest(bundle: ABBundle, *, full_rate: bool = True, alm_suffix: str = ".wav") -> dict[str, object]:
    """The ``bundle.json`` contents (``clips`` is ``None`` when only the 16 kHz copies are kept)."""
    return {
        "format": BUNDLE_FORMAT,
        "target": bundle.target,
        "sample_rate": bundle.rate,
        "channels": bundle.target_a.shape[0],
        "clips": {name: f"{name}.wav" for name in CLIP_NAMES} if full_rate else None,
        "alm_clips": {"sample_rate": ALM_RATE, "channels": 1,
                      **{name: f"alm/{name}{alm_suffix}" for name in CLIP_NAMES}},
        "window_a_s": list(bundle.window_a_s),
        "window_b_s": list(bundle.window_b_s),
        "stems_a": list(bundle.stems_a),
        "stems_b": list(bundle.stems_b),
        "gains_a_db": dict(bundle.gains_a_db) if bundle.gains_a_db is not None else None,
        "gains_meaning": "gain in dB that made each Version A stem from its Version B stem",
        "sources": dict(bundle.sources),
    }


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by :func:`write_bundle`.

    Raises:
        NotAFileError: its ``bundle.json`` is a named pipe (FIFO), a socket or a device.
    """
    return exists_as_file(Path(path) / "bundle.json", what=BUNDLE_MANIFEST)


def read_bundle(folder: str | os.PathLike[str], *, alm: bool = False) -> ABBundle:
    """Read a bundle written by :func:`write_bundle`; ``alm=True`` reads the 16 kHz mono copies.

    Raises:
        InvalidAudioError: ``bundle.json`` is missing, malformed or of another format.
        AudioReadError: a clip is missing or unreadable.
        NotAFileError: ``bundle.json`` or a clip is a named pipe (FIFO), a socket or a device.
    """
    folder = Path(folder)
    note_input(folder)
    manifest_path = folder / "bundle.json"
    manifest = read_json(manifest_path, error=InvalidAudioError, missing="no such file; not a faderwise bundle",
                         limit=JSON_LIMIT_BYTES, what=BUNDLE_MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise InvalidAudioError(f"{manifest_path}: not a {BUNDLE_FORMAT} manifest")
    files = manifest["alm_clips"] if alm else manifest["clips"]
    if files is None:
        raise InvalidAudioError(f"{manifest_path}: a compact bundle keeps only the 16 kHz clips; read it with alm=True")
    clips = {name: read_audio(folder / files[name], min_duration_s=0.0) for name in CLIP_NAMES}
    rates = {rate for _, rate in clips.values()}
    if len(rates) != 1:
        raise InvalidAudioError(f"{folder}: clips differ in sample rate {sorted(rates)}")
    return ABBundle(
        target=manifest["target"],
        rate=rates.pop(),
        **{name: audio for name, (audio, _) in clips.items()},
        window_a_s=tuple(manifest["window_a_s"]),
        window_b_s=tuple(manifest["window_b_s"]),
        stems_a=tuple(manifest["stems_a"]),
        stems_b=tuple(manifest["stems_b"]),
        gains_a_db=manifest.get("gains_a_db"),
        sources=manifest.get("sources", {}),
    )
