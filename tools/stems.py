"""Stem sets: loading them from disk, summing, backings, gains.

A stem set is every stem of one mix, time-aligned, at one sample rate, with one channel count.
Sources it reads:

* a folder of audio files, one per stem (the file name without extension is the stem name);
* a MUSDB18-HQ-style folder: the same, where ``mixture.*`` is the finished mix, not a stem;
* a Native Instruments ``.stem.mp4`` (MUSDB18): stream 0 is the mix, then drums, bass, other, vocals;
* a folder ``faderwise apply`` wrote: the stems in ``stems/``, ``mix.wav`` their finished mix.

Stems at other sample rates are resampled to one rate; shorter stems are padded with silence (a
mismatch over :data:`LENGTH_WARNING_S` is reported in :attr:`StemSet.warnings`); mono stems in a
stereo set are copied to both channels (a centre-panned mono track, 0 dB pan law).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faderwise.tools.audio_io import AUDIO_EXTENSIONS, audio_header, decode_audio_streams, read_audio, resample
from faderwise.tools.errors import StemSetError
from faderwise.tools.family import sum_signals
from faderwise.tools.memory import memory_of_stem_files
from faderwise.tools.outputs import note_input
from faderwise.tools.validate import validate_audio

MIXTURE_NAME = "mixture"
RENDER_MANIFEST = "render.json"  # what faderwise apply writes beside stems/ and mix.wav
STEM_MP4_SUFFIX = ".stem.mp4"
# MUSDB18 / Native Instruments stem order after the mixture stream.
NI_STEM_NAMES = ("drums", "bass", "other", "vocals")
LENGTH_WARNING_S = 1.0


@dataclass(frozen=True)
class StemSet:
    """All stems of one mix.

    Attributes:
        stems: stem name → float32 ``(channels, samples)``; every stem has the same shape.
        rate: sample rate in Hz.
        sources: stem name → file it was read from (absent for stems made in memory).
        origin: the folder or ``.stem.mp4`` the set was loaded from, if any.
        mixture: the finished mix shipped beside the stems (MUSDB ``mixture``), if any. Not a stem.
        warnings: what loading changed that a user should know (padding, resampling).
    """

    stems: Mapping[str, np.ndarray]
    rate: int
    sources: Mapping[str, Path] = field(default_factory=dict)
    origin: Path | None = None
    mixture: np.ndarray | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.stems:
            raise StemSetError(f"{self.origin or 'stem set'}: has no stems")
        shapes = {audio.shape for audio in self.stems.values()}
        if len(shapes) != 1:
            raise StemSetError(f"{self.origin or 'stem set'}: stems differ in shape {sorted(shapes)}")

    @property
    def names(self) -> list[str]:
        return list(self.stems)

    @property
    def channels(self) -> int:
        return next(iter(self.stems.values())).shape[0]

    @property
    def n_samples(self) -> int:
        return next(iter(self.stems.values())).shape[1]

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate

    @property
    def label(self) -> str:
        """How messages name this set: its folder or file, else ``'stem set'``."""
        return str(self.origin) if self.origin is not None else "stem set"

    def resolve(self, name: str) -> str:
        """The stem called ``name`` (exact, else case-insensitive), or :class:`StemSetError`."""
        if name in self.stems:
            return name
        folded = {stem.casefold(): stem for stem in self.stems}
        if name.casefold() in folded:
            return folded[name.casefold()]
        raise StemSetError(f"{self.label}: has no stem {name!r} (it has: {', '.join(self.names)})")

    def mix(self) -> np.ndarray:
        """Sum of all stems, float32 ``(channels, samples)``."""
        return sum_signals(self.stems.values())

    def backing(self, name: str) -> np.ndarray:
        """Sum of every stem except ``name``, float32 ``(channels, samples)``; silence for a one-stem set."""
        target = self.resolve(name)
        others = [audio for stem, audio in self.stems.items() if stem != target]
        if not others:
            return np.zeros_like(self.stems[target])
        return sum_signals(others)

    def at_rate(self, rate: int) -> StemSet:
        """This set resampled to ``rate`` Hz (itself if it is there already)."""
        if rate == self.rate:
            return self
        return StemSet(stems={name: resample(audio, self.rate, rate) for name, audio in self.stems.items()},
                       rate=rate, sources=self.sources, origin=self.origin,
                       warnings=(*self.warnings, f"{self.label}: resampled from {self.rate} Hz to {rate} Hz"))

    def with_gains(self, gains_db: Mapping[str, float]) -> StemSet:
        """A new set with ``gains_db[stem]`` dB applied to each named stem; the others are shared, not copied."""
        resolved = {self.resolve(name): float(gain) for name, gain in gains_db.items()}
        stems = {
            name: apply_gain(audio, resolved[name]) if name in resolved else audio
            for name, audio in self.stems.items()
        }
        return StemSet(stems=stems, rate=self.rate, sources=self.sources, origin=self.origin,
                       mixture=None, warnings=self.warnings)


def db_to_gain(db: float) -> float:
    """Amplitude factor of a level change in dB (``-inf`` → 0)."""
    return 0.0 if db == float("-inf") else float(10.0 ** (db / 20.0))


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """``audio`` scaled by ``gain_db`` dB, as a new float32 array."""
    return (audio * np.float32(db_to_gain(gain_db))).astype(np.float32, copy=False)


def load_stem_set(path: str | os.PathLike[str], *, rate: int | None = None) -> StemSet:
    """Load a stem set from a folder of stems, a MUSDB18-HQ song folder or a ``.stem.mp4``.

    Args:
        path: the folder or file.
        rate: resample everything to this rate in Hz; default: the most common rate among the stems
            (the highest, on a tie).

    Raises:
        StemSetError: missing path, empty or unreadable folder, duplicate stem names, channel
            layouts that cannot be mixed.
        AudioReadError, InvalidAudioError: a stem file that cannot be read or measured.
    """
    path = Path(path)
    note_input(path)  # no output may be, hold or lie inside a stem set being read
    if not path.exists():
        raise StemSetError(f"{path}: no such file or folder")
    if path.is_file():
        if path.name.lower().endswith(STEM_MP4_SUFFIX):
            return _load_stem_mp4(path, rate=rate)
        raise StemSetError(
            f"{path}: a stem set is a folder of audio files or a {STEM_MP4_SUFFIX} file"
        )
    if (path / RENDER_MANIFEST).is_file() and (path / "stems").is_dir():
        return _load_folder(path / "stems", rate=rate, mixture_file=path / "mix.wav", origin=path)
    return _load_folder(path, rate=rate)


def find_stem_files(folder: Path) -> dict[str, Path]:
    """Stem name → file for every audio file directly in ``folder`` (hidden files skipped)."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise StemSetError(f"{folder}: cannot read folder ({exc.strerror or exc})") from exc
    files = [
        entry for entry in entries
        if entry.is_file() and not entry.name.startswith(".")
        and entry.suffix.lower() in AUDIO_EXTENSIONS
    ]
    if not files:
        raise StemSetError(
            f"{folder}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})"
        )
    for file in files:
        if not file.stem.isprintable():
            raise StemSetError(f"{folder}: the file name {file.name!r} holds a line break or another control "
                               "character, which would garble every table and message; rename the file")
    by_name: dict[str, list[Path]] = {}
    for file in files:
        by_name.setdefault(file.stem.casefold(), []).append(file)
    for clashing in by_name.values():
        if len(clashing) > 1:
            raise StemSetError(
                f"{folder}: two files for stem {clashing[0].stem!r}: "
                f"{', '.join(file.name for file in clashing)}"
            )
    return {group[0].stem: group[0] for group in by_name.values()}


def _load_folder(folder: Path, *, rate: int | None, mixture_file: Path | None = None,
                 origin: Path | None = None) -> StemSet:
    """The stems of ``folder``; the finished mix is ``mixture.*`` there, or ``mixture_file`` (a
    render's ``mix.wav``) when given. ``origin`` is the folder the set is named by."""
    files = find_stem_files(folder)
    if mixture_file is None:
        mixture_file = next((f for name, f in files.items() if name.casefold() == MIXTURE_NAME), None)
    elif not mixture_file.is_file():
        mixture_file = None
    stem_files = {name: f for name, f in files.items() if f != mixture_file and name.casefold() != MIXTURE_NAME}
    if not stem_files:
        raise StemSetError(f"{folder}: holds only {mixture_file.name if mixture_file else 'a mix'}, no stems")
    held = [*stem_files.values(), *([mixture_file] if mixture_file is not None else [])]
    headers = {file.name: audio_header(file) for file in held}
    memory_of_stem_files(origin or folder, {name: header for name, header in headers.items() if header is not None})
    decoded = {name: read_audio(file) for name, file in stem_files.items()}
    mixture = read_audio(mixture_file) if mixture_file is not None else None
    return _assemble(origin or folder, decoded, stem_files, mixture=mixture, rate=rate)


def _load_stem_mp4(path: Path, *, rate: int | None) -> StemSet:
    streams = decode_audio_streams(path)
    if len(streams) != len(NI_STEM_NAMES) + 1:
        raise StemSetError(
            f"{path}: a .stem.mp4 holds {len(NI_STEM_NAMES) + 1} audio streams "
            f"(mixture, {', '.join(NI_STEM_NAMES)}), this one has {len(streams)}"
        )
    decoded = {
        name: (validate_audio(audio, stream_rate, source=f"{path} [stream {index}: {name}]"), stream_rate)
        for index, (name, (audio, stream_rate)) in enumerate(zip((MIXTURE_NAME, *NI_STEM_NAMES), streams))
    }
    mixture = decoded.pop(MIXTURE_NAME)
    return _assemble(path, decoded, {name: path for name in decoded}, mixture=mixture, rate=rate)


def _assemble(
    origin: Path,
    decoded: Mapping[str, tuple[np.ndarray, int]],
    sources: Mapping[str, Path],
    *,
    mixture: tuple[np.ndarray, int] | None,
    rate: int | None,
) -> StemSet:
    """Bring decoded stems to one rate, channel count and length."""
    warnings: list[str] = []
    if rate is None:
        counts = Counter(r for _, r in decoded.values())
        rate = max(counts, key=lambda r: (counts[r], r))
    for name, (_, stem_rate) in decoded.items():
        if stem_rate != rate:
            warnings.append(f"{sources[name]}: resampled from {stem_rate} Hz to {rate} Hz")
    stems = {name: resample(audio, stem_rate, rate) for name, (audio, stem_rate) in decoded.items()}
    mix = resample(mixture[0], mixture[1], rate) if mixture is not None else None

    channels = max(audio.shape[0] for audio in stems.values())
    for name, audio in stems.items():
        if audio.shape[0] not in (1, channels):
            raise StemSetError(
                f"{sources[name]}: has {audio.shape[0]} channels but other stems have {channels}; "
                "only mono stems can be mixed into a set with more channels"
            )
    # A mono stem plays centre-panned: the same signal on every channel.
    stems = {name: np.repeat(a, channels, axis=0) if a.shape[0] == 1 else a for name, a in stems.items()}

    longest_name = max(stems, key=lambda n: stems[n].shape[1])
    length = stems[longest_name].shape[1]
    for name, audio in stems.items():
        missing_s = (length - audio.shape[1]) / rate
        if missing_s > LENGTH_WARNING_S:
            warnings.append(
                f"{sources[name]}: {missing_s:.2f} s shorter than {sources[longest_name].name}; "
                "padded with silence at the end"
            )
    stems = {name: _pad_to(audio, length) for name, audio in stems.items()}
    if mix is not None:
        if mix.shape[0] == 1 and channels > 1:
            mix = np.repeat(mix, channels, axis=0)
        mix = _pad_to(mix, length)[:, :length]
    return StemSet(stems=stems, rate=rate, sources=dict(sources), origin=origin, mixture=mix,
                   warnings=tuple(warnings))


def _pad_to(audio: np.ndarray, length: int) -> np.ndarray:
    if audio.shape[1] >= length:
        return audio
    return np.pad(audio, ((0, 0), (0, length - audio.shape[1])))
