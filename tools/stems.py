"""Stem sets in memory: summing, backings, gains; finding the stem files of a folder.

A stem set is every stem of one mix, time-aligned, at one sample rate, with one channel count.
:mod:`faderwise.tools.stem_files` opens and reads them from disk:

* a folder of audio files, one per stem (the file name without extension is the stem name);
* a MUSDB18-HQ-style folder: the same, where ``mixture.*`` is the finished mix, not a stem;
* a Native Instruments ``.stem.mp4`` (MUSDB18): stream 0 is the mix, then drums, bass, other, vocals;
* a folder ``faderwise apply`` wrote: the stems in ``stems/``, ``mix.wav`` their finished mix.

Stems at other sample rates are resampled to one rate; shorter stems are padded with silence (a
mismatch over :data:`LENGTH_WARNING_S` is reported in :attr:`StemSet.warnings`); mono stems in a
stereo set play on both channels at the set's pan law (a centre-panned mono track; see
:mod:`faderwise.tools.stem_files`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faderwise.tools.audio_io import AUDIO_EXTENSIONS, resample
from faderwise.tools.errors import StemSetError
from faderwise.tools.family import sum_signals
from faderwise.tools.input_files import is_special_file

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
        return resolve_stem(self.names, name, label=self.label)

    def read(self, start: int, stop: int, *, names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Samples ``start … stop-1`` of each stem (all, or ``names``), float32 ``(channels, stop − start)``,
        zeros outside the set: the block interface :class:`faderwise.tools.stem_files.StemFiles` has too."""
        chosen = [self.resolve(name) for name in names] if names is not None else self.names
        lo, hi = max(start, 0), min(stop, self.n_samples)
        if lo == start and hi == stop:
            return [self.stems[name][:, start:stop] for name in chosen]
        out = []
        for name in chosen:
            block = np.zeros((self.channels, stop - start), dtype=np.float32)
            if hi > lo:
                block[:, lo - start : hi - start] = self.stems[name][:, lo:hi]
            out.append(block)
        return out

    @contextmanager
    def reader(self, *, names: Sequence[str] | None = None) -> Iterator[StemSet]:
        """Itself, as the block reader of its stems (all, or ``names``)."""
        yield self.selected(names) if names is not None else self

    def selected(self, names: Sequence[str]) -> StemSet:
        """The named stems only (shared, not copied)."""
        chosen = [self.resolve(name) for name in names]
        return StemSet(stems={name: self.stems[name] for name in chosen}, rate=self.rate,
                       sources={name: self.sources[name] for name in chosen if name in self.sources},
                       origin=self.origin, warnings=self.warnings)

    def aligned(self, lag: int, length: int) -> StemSet:
        """This set moved earlier by ``lag`` samples (later if negative), cut or padded to ``length``."""
        return StemSet(stems=dict(zip(self.names, self.read(lag, lag + length))), rate=self.rate,
                       sources=self.sources, origin=self.origin, warnings=self.warnings)

    def load(self) -> StemSet:
        """Itself: it is in memory already (the interface :class:`~faderwise.tools.stem_files.StemFiles` has)."""
        return self

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


def resolve_stem(names: Sequence[str], name: str, *, label: str) -> str:
    """The stem of ``names`` called ``name`` (exact, else case-insensitive), or :class:`StemSetError`
    naming ``label`` and listing the stems."""
    if name in names:
        return name
    folded = {stem.casefold(): stem for stem in names}
    if name.casefold() in folded:
        return folded[name.casefold()]
    raise StemSetError(f"{label}: has no stem {name!r} (it has: {', '.join(names)})")


def db_to_gain(db: float) -> float:
    """Amplitude factor of a level change in dB (``-inf`` → 0)."""
    return 0.0 if db == float("-inf") else float(10.0 ** (db / 20.0))


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """``audio`` scaled by ``gain_db`` dB, as a new float32 array."""
    return (audio * np.float32(db_to_gain(gain_db))).astype(np.float32, copy=False)


def find_stem_files(folder: Path) -> dict[str, Path]:
    """Stem name → file for every audio file directly in ``folder`` (hidden files skipped). A
    named pipe, socket or device with an audio file's name is listed too, so that reading it
    refuses it by name (:func:`faderwise.tools.input_files.check_regular_file`) rather than passing
    over a stem."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise StemSetError(f"{folder}: cannot read folder ({exc.strerror or exc})") from exc
    files = [
        entry for entry in entries
        if (entry.is_file() or is_special_file(entry)) and not entry.name.startswith(".")
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
