"""Stem sets on disk, read in blocks: a session's length never has to fit in memory.

:func:`open_stem_set` reads only the files' headers. :class:`StemFiles` then hands out any time
range of every stem (:meth:`StemFiles.read`) as float32 ``(channels, samples)`` arrays, brought to
one rate, channel count and length exactly as a whole-file load would do it:

* **rate** — a stem at another rate is resampled with the same polyphase filter as
  :func:`faderwise.tools.audio_io.resample`. Block by block is exact: output sample ``n`` of
  ``resample_poly(x, up, down)`` is ``Σ_k x[k]·h[n·down − k·up + c]``, so an input block starting at
  a multiple ``m·down`` of ``down`` yields the outputs from ``m·up`` on, as long as the filter's
  support (:func:`_resample_margin` input samples either side) lies inside the block or beyond
  the file's ends, where both see zeros;
* **channels** — a mono stem in a stereo set plays centre-panned on every channel, at the set's
  pan law (a stem's :attr:`StemFile.gain` holds it: the DAW project's own; for a folder
  :data:`DEFAULT_PAN_LAW_DB`, the equal-power −3 dB of Ardour, Cubase and most DAWs, or what
  ``--pan-law`` says). At −3 dB a mono stem and its stereo bounce measure the same loudness
  (BS.1770 adds the channels' powers: 2 × ½ = 1);
* **length** — shorter stems read as silence past their end (the load warns, naming the file);
* **time** — a view moved by ``lag`` samples and cut or padded to a length (Version B aligned to A).

Samples are validated as they are read (NaN/Inf, absurd peaks): a bad sample fails the command with
the file and the time in seconds, whichever block finds it.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from faderwise.tools.audio_io import (
    audio_header,
    decode_audio_streams,
    open_sound_file,
    read_audio,
    require_audio_file,
    require_whole,
    resample,
    unreadable,
)
from faderwise.tools.errors import AudioReadError, StemSetError
from faderwise.tools.input_files import check_regular_file, is_special_file
from faderwise.tools.memory import memory_of_stem_files
from faderwise.tools.outputs import note_input
from faderwise.tools.stems import (
    LENGTH_WARNING_S,
    MIXTURE_NAME,
    NI_STEM_NAMES,
    RENDER_MANIFEST,
    STEM_MP4_SUFFIX,
    StemSet,
    find_stem_files,
    resolve_stem,
)
from faderwise.tools.validate import LOUDNESS_BLOCK_S, MAX_CHANNELS, validate_audio

IN_MEMORY_LIMIT_BYTES = 512_000_000
"""Decoded size (float32) up to which a command or the chat decodes a set once and keeps it
(:func:`in_memory_if_small`): a song of a few stems would otherwise be decoded again at every pass
(alignment, measuring, the headroom check). Bigger sets are read in blocks at every pass."""
DEFAULT_PAN_LAW_DB = -3.0
"""The level (dB) a mono stem of a folder plays at on each channel of a stereo set: equal power,
as Ardour, Cubase, Logic and most DAWs pan a mono track to the centre."""
RESAMPLE_HALF_TAPS = 10  # scipy.signal.resample_poly's default filter: 10·max(up, down) taps either side


@dataclass(frozen=True)
class StemFile:
    """One stem's file as its header describes it, and a fixed linear ``gain`` applied as it is
    read (1: none; a project track's stem plays through the faders of its folders or buses, and a
    mono stem in a stereo set at the set's pan law)."""

    path: Path
    frames: int
    rate: int
    channels: int
    gain: float = 1.0


@dataclass(frozen=True)
class StemFiles:
    """Every stem of one mix, on disk.

    Attributes:
        files: stem name → its file.
        rate: the set's sample rate in Hz (stems at other rates are resampled to it).
        channels: the set's channel count (mono stems play on every channel, at the set's pan law,
            which their :attr:`StemFile.gain` holds).
        n_samples: the set's length in samples at ``rate``.
        origin: the folder the set was opened from.
        mixture_file: the finished mix shipped beside the stems, if any. Not a stem.
        warnings: what reading changes that the user should know (padding, resampling).
        lag: samples skipped at the start of every file (negative: silence put before it).
    """

    files: Mapping[str, StemFile]
    rate: int
    channels: int
    n_samples: int
    origin: Path
    mixture_file: Path | None = None
    warnings: tuple[str, ...] = ()
    lag: int = 0

    @property
    def names(self) -> list[str]:
        return list(self.files)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate

    @property
    def label(self) -> str:
        return str(self.origin)

    @property
    def sources(self) -> dict[str, Path]:
        return {name: file.path for name, file in self.files.items()}

    def resolve(self, name: str) -> str:
        """The stem called ``name`` (exact, else case-insensitive), or :class:`StemSetError`."""
        return resolve_stem(self.names, name, label=self.label)

    def at_rate(self, rate: int) -> StemFiles:
        """This set read at ``rate`` Hz (itself if it is there already)."""
        if rate == self.rate:
            return self
        return replace(self, rate=rate, n_samples=int(round(self.n_samples * rate / self.rate)),
                       lag=int(round(self.lag * rate / self.rate)),
                       warnings=(*self.warnings, f"{self.label}: resampled from {self.rate} Hz to {rate} Hz"))

    def aligned(self, lag: int, length: int) -> StemFiles:
        """This set moved earlier by ``lag`` samples (later if negative), cut or padded to ``length``."""
        return replace(self, lag=self.lag + lag, n_samples=length)

    def selected(self, names: Sequence[str]) -> StemFiles:
        """The named stems only (the set's rate, channels and length stay)."""
        return replace(self, files={name: self.files[self.resolve(name)] for name in names})

    def read(self, start: int, stop: int, *, names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Samples ``start … stop-1`` of each stem (all, or ``names``), float32 ``(channels, stop − start)``;
        zeros outside ``0 … n_samples-1``. Opens the files for this call only; see :meth:`reader`."""
        with self.reader(names=names) as reader:
            return reader.read(start, stop)

    @contextmanager
    def reader(self, *, names: Sequence[str] | None = None) -> Iterator[BlockReader]:
        """A :class:`BlockReader` over the stems (all, or ``names``) whose files stay open until the
        block ends: reading consecutive blocks then never seeks."""
        chosen = [self.resolve(name) for name in names] if names is not None else self.names
        handles: list[sf.SoundFile] = []
        try:
            for name in chosen:
                handles.append(_open(self.files[name].path))
            yield BlockReader(self, [self.files[name] for name in chosen], handles)
        finally:
            for handle in handles:
                handle.close()

    def load(self) -> StemSet:
        """Every stem decoded into memory (what a short song, training and the evaluation use).

        Raises:
            ResourceLimitError: the decoded set and its measurement would not fit in memory.
        """
        memory_of_stem_files(self.origin, {file.path.name: (file.frames, file.rate, file.channels)
                                           for file in self.files.values()})
        stems = dict(zip(self.names, self.read(0, self.n_samples)))
        mixture = None
        if self.mixture_file is not None:
            audio, rate = read_audio(self.mixture_file)
            mixture = _shape(audio, rate, self.rate, self.channels, self.n_samples)
        return StemSet(stems=stems, rate=self.rate, sources=self.sources, origin=self.origin, mixture=mixture,
                       warnings=self.warnings)


StemSource = StemSet | StemFiles
"""A stem set in memory or on disk: both read blocks of their stems (``read``, ``reader``)."""


class BlockReader:
    """Reads time ranges of some stems of a :class:`StemFiles` from files it holds open."""

    def __init__(self, stem_files: StemFiles, files: Sequence[StemFile], handles: Sequence[sf.SoundFile]) -> None:
        self._set = stem_files
        self._files = list(files)
        self._handles = list(handles)

    def read(self, start: int, stop: int) -> list[np.ndarray]:
        """Samples ``start … stop-1`` of each stem, float32 ``(channels, stop − start)``, zeros outside the set."""
        return [self._read_one(file, handle, start, stop) for file, handle in zip(self._files, self._handles)]

    def _read_one(self, file: StemFile, handle: sf.SoundFile, start: int, stop: int) -> np.ndarray:
        rate, channels = self._set.rate, self._set.channels
        out = np.zeros((channels, stop - start), dtype=np.float32)
        # Only the part inside the set's length is read; the set's own end pads with silence.
        lo, hi = max(start, 0), min(stop, self._set.n_samples)
        if hi <= lo:
            return out
        position = lo + self._set.lag  # in the file's time, at the set's rate
        if file.rate == rate:
            audio = _read_frames(file, handle, position, position + hi - lo)
        else:
            audio = _read_resampled(file, handle, rate, position, position + hi - lo)
        out[:, lo - start : hi - start] = audio if audio.shape[0] == channels else audio[:1]
        if file.gain != 1.0:
            out *= np.float32(file.gain)
        return out


def open_stem_set(path: str | os.PathLike[str], *, rate: int | None = None,
                  pan_law_db: float | None = None) -> StemFiles | StemSet:
    """A stem set, from its files' headers only: a folder of stems, a MUSDB18-HQ song folder, a
    folder ``faderwise apply`` wrote, or a DAW project whose tracks' bounced stems lie beside it
    (:func:`faderwise.tools.daw.project.open_project_stems`). A ``.stem.mp4`` (a compressed container, MUSDB18 excerpts)
    is decoded into memory instead.

    Args:
        path: the folder or file.
        rate: read everything at this rate in Hz; default: the most common rate among the stems
            (the highest, on a tie).
        pan_law_db: the level (dB) a mono stem plays at on each channel of a stereo set; default
            :data:`DEFAULT_PAN_LAW_DB` for a folder, the project's own for a DAW project.

    Raises:
        StemSetError: missing path, empty or unreadable folder, duplicate stem names, channel
            layouts that cannot be mixed.
        NotAFileError: ``path``, or a stem file in the folder, is a named pipe (FIFO), a socket or
            a device (refused by name before anything opens it).
        AudioReadError, InvalidAudioError: a stem file that cannot be read or measured.
    """
    path = Path(path)
    note_input(path)  # no output may be, hold or lie inside a stem set being read
    if not path.exists():
        raise StemSetError(f"{path}: no such file or folder")
    check_regular_file(path, what="a stem set")  # a named pipe or a device is refused, a folder passes
    if path.is_file():
        if path.name.lower().endswith(STEM_MP4_SUFFIX):
            return load_stem_mp4(path, rate=rate)
        from faderwise.tools.daw.mapping import open_project_stems  # projects read stem files
        from faderwise.tools.daw.project import is_project_file

        if is_project_file(path):
            return open_project_stems(path, rate=rate)[0]
        raise StemSetError(f"{path}: a stem set is a folder of audio files, a {STEM_MP4_SUFFIX} file or a REAPER "
                           "(.RPP) or Ardour (.ardour) project with its bounced stems beside it")
    if (path / RENDER_MANIFEST).is_file() and (path / "stems").is_dir():
        return _open_folder(path / "stems", rate=rate, mixture_file=path / "mix.wav", origin=path, pan_law_db=pan_law_db)
    return _open_folder(path, rate=rate, pan_law_db=pan_law_db)


def decoded_size(source: StemSource) -> int:
    """Bytes of every stem of ``source`` decoded as float32 at the set's rate, channels and length."""
    return len(source.names) * source.channels * source.n_samples * 4


def in_memory_if_small(source: StemSource, *, limit: int | None = None) -> StemSource:
    """``source`` decoded into memory when that takes at most ``limit`` bytes (default
    :data:`IN_MEMORY_LIMIT_BYTES`), else ``source`` as it is, read in blocks."""
    limit = IN_MEMORY_LIMIT_BYTES if limit is None else limit
    if isinstance(source, StemFiles) and decoded_size(source) <= limit:
        return source.load()
    return source


def load_stem_set(path: str | os.PathLike[str], *, rate: int | None = None) -> StemSet:
    """A stem set decoded into memory (:func:`open_stem_set`, then :meth:`StemFiles.load`): for short
    songs, training and the evaluation; the commands read long sessions in blocks instead."""
    return open_stem_set(path, rate=rate).load()


def load_stem_mp4(path: Path, *, rate: int | None = None) -> StemSet:
    """A Native Instruments ``.stem.mp4`` decoded into memory: stream 0 is the finished mix, then
    :data:`~faderwise.tools.stems.NI_STEM_NAMES`."""
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
    layout = _assemble(path, {name: StemFile(path=path, frames=audio.shape[1], rate=stream_rate,
                                             channels=audio.shape[0])
                              for name, (audio, stream_rate) in decoded.items() if name != MIXTURE_NAME},
                       rate=rate, mixture_file=None)
    shaped = {name: _shape(audio, stream_rate, layout.rate, layout.channels, layout.n_samples)
              for name, (audio, stream_rate) in decoded.items()}
    mixture = shaped.pop(MIXTURE_NAME)
    return StemSet(stems=shaped, rate=layout.rate, sources=layout.sources, origin=path, mixture=mixture,
                   warnings=layout.warnings)


def open_stem_files(origin: Path, files: Mapping[str, Path], *, gains: Mapping[str, float] | None = None,
                    rate: int | None = None, pan_law_db: float | None = None) -> StemFiles:
    """The stem set of the given files (stem name → file), opened from their headers as a folder's
    stems are, each read with its linear gain in ``gains`` (default 1) and a mono one at
    ``pan_law_db`` in a stereo set; ``origin`` is what the set is called (a project file)."""
    gains = gains or {}
    return _assemble(origin, {name: replace(stem_file(file), gain=gains.get(name, 1.0)) for name, file in files.items()},
                     rate=rate, mixture_file=None, pan_law_db=pan_law_db)


def _open_folder(folder: Path, *, rate: int | None, mixture_file: Path | None = None,
                 origin: Path | None = None, pan_law_db: float | None = None) -> StemFiles:
    files = find_stem_files(folder)
    if mixture_file is None:
        mixture_file = next((f for name, f in files.items() if name.casefold() == MIXTURE_NAME), None)
    elif not (mixture_file.is_file() or is_special_file(mixture_file)):  # a named pipe is refused, not passed over
        mixture_file = None
    stem_paths = {name: f for name, f in files.items() if f != mixture_file and name.casefold() != MIXTURE_NAME}
    if not stem_paths:
        raise StemSetError(f"{folder}: holds only {mixture_file.name if mixture_file else 'a mix'}, no stems")
    stems = {name: stem_file(file) for name, file in stem_paths.items()}
    if mixture_file is not None:
        stem_file(mixture_file)
    return _assemble(origin or folder, stems, rate=rate, mixture_file=mixture_file, pan_law_db=pan_law_db)


def stem_file(path: Path) -> StemFile:
    """One stem's header, checked as :func:`faderwise.tools.audio_io.read_audio` checks a whole
    file: present, not empty, readable, not cut short, at most 8 channels, one loudness block long."""
    require_audio_file(path)
    header = audio_header(path)
    if header is None:
        _open(path).close()  # raises, saying why libsndfile cannot read it
        raise AudioReadError(f"{path}: not a readable audio file (format not recognised)")
    frames, rate, channels = header
    require_whole(path, frames, rate)
    if channels > MAX_CHANNELS:
        raise AudioReadError(f"{path}: has {channels} channels; faderwise supports at most {MAX_CHANNELS}")
    if frames / rate < LOUDNESS_BLOCK_S:
        raise AudioReadError(f"{path}: is {frames / rate * 1000:.0f} ms long, shorter than one "
                             f"{LOUDNESS_BLOCK_S * 1000:.0f} ms loudness block")
    return StemFile(path=path, frames=frames, rate=rate, channels=channels)


def _assemble(origin: Path, stems: Mapping[str, StemFile], *, rate: int | None,
              mixture_file: Path | None, pan_law_db: float | None = None) -> StemFiles:
    """One rate, channel count and length for the set, a mono stem's level in a set of more
    channels (``pan_law_db``, default :data:`DEFAULT_PAN_LAW_DB`), and a warning for each stem
    brought to them."""
    pan_law_db = DEFAULT_PAN_LAW_DB if pan_law_db is None else pan_law_db
    warnings: list[str] = []
    if rate is None:
        counts = Counter(file.rate for file in stems.values())
        rate = max(counts, key=lambda r: (counts[r], r))
    for file in stems.values():
        if file.rate != rate:
            warnings.append(f"{file.path}: resampled from {file.rate} Hz to {rate} Hz")
    channels = max(file.channels for file in stems.values())
    for file in stems.values():
        if file.channels not in (1, channels):
            raise StemSetError(
                f"{file.path}: has {file.channels} channels but other stems have {channels}; "
                "only mono stems can be mixed into a set with more channels"
            )
    if channels > 1:
        pan_gain = 10.0 ** (pan_law_db / 20.0)
        stems = {name: replace(file, gain=file.gain * pan_gain) if file.channels == 1 else file
                 for name, file in stems.items()}
    lengths = {name: resampled_length(file.frames, file.rate, rate) for name, file in stems.items()}
    longest = max(lengths, key=lambda name: lengths[name])
    length = lengths[longest]
    for name, file in stems.items():
        missing_s = (length - lengths[name]) / rate
        if missing_s > LENGTH_WARNING_S:
            warnings.append(f"{file.path}: {missing_s:.2f} s shorter than {stems[longest].path.name}; "
                            "padded with silence at the end")
    return StemFiles(files=dict(stems), rate=rate, channels=channels, n_samples=length, origin=origin,
                     mixture_file=mixture_file, warnings=tuple(warnings))


def resampled_length(frames: int, rate: int, target_rate: int) -> int:
    """Samples of ``frames`` samples at ``rate`` once resampled to ``target_rate`` (as
    :func:`scipy.signal.resample_poly` makes them: ``ceil(frames · up / down)``)."""
    if rate == target_rate:
        return frames
    divisor = math.gcd(rate, target_rate)
    return -(-frames * (target_rate // divisor) // (rate // divisor))


def _open(path: Path) -> sf.SoundFile:
    try:
        return open_sound_file(path)  # a named pipe swapped in since the header was read is refused, not waited on
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise unreadable(path, exc) from exc
    except OSError as exc:
        raise AudioReadError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _read_frames(file: StemFile, handle: sf.SoundFile, start: int, stop: int) -> np.ndarray:
    """Frames ``start … stop-1`` of a file at its own rate, float32 ``(channels, stop − start)``, zeros
    outside the file, validated."""
    out = np.zeros((file.channels, stop - start), dtype=np.float32)
    lo, hi = max(start, 0), min(stop, file.frames)
    if hi <= lo:
        return out
    try:
        if handle.tell() != lo:
            handle.seek(lo)
        data = handle.read(hi - lo, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioReadError(f"{file.path}: cannot be read at {lo / file.rate:.2f} s ({exc})") from exc
    except OSError as exc:
        raise AudioReadError(f"{file.path}: cannot be read at {lo / file.rate:.2f} s "
                             f"({exc.strerror or exc})") from exc
    if data.shape[0] != hi - lo:
        raise AudioReadError(f"{file.path}: ends after {(lo + data.shape[0]) / file.rate:.2f} s although its "
                             f"header promises {file.frames / file.rate:.2f} s (changed while being read?)")
    out[:, lo - start : hi - start] = validate_audio(data.T, file.rate, source=file.path, min_duration_s=0.0,
                                                     start_s=lo / file.rate)
    return out


def _resample_margin(up: int, down: int) -> int:
    """Input samples of filter support either side of an output sample, rounded up to a multiple
    of ``down`` plus one more ``down``: what a block needs beyond its own span."""
    support = -(-RESAMPLE_HALF_TAPS * max(up, down) // up) + 1
    return (-(-support // down) + 1) * down


def _read_resampled(file: StemFile, handle: sf.SoundFile, rate: int, start: int, stop: int) -> np.ndarray:
    """Output samples ``start … stop-1`` (at ``rate``) of the file resampled from its own rate,
    equal to those of resampling the whole file (see the module's docstring)."""
    divisor = math.gcd(file.rate, rate)
    up, down = rate // divisor, file.rate // divisor
    total = resampled_length(file.frames, file.rate, rate)
    out = np.zeros((file.channels, stop - start), dtype=np.float32)
    lo, hi = max(start, 0), min(stop, total)
    if hi <= lo:
        return out
    first_group = lo // up  # input from sample first_group·down yields outputs from first_group·up on
    margin = _resample_margin(up, down)
    in_lo = max(first_group * down - margin, 0)
    in_hi = min(-(-hi * down // up) + margin, file.frames)
    in_lo -= in_lo % down
    block = _read_frames(file, handle, in_lo, in_hi)
    resampled = resample_poly(block, up, down, axis=-1)
    offset = in_lo // down * up
    out[:, lo - start : hi - start] = resampled[:, lo - offset : hi - offset]
    return out


def _shape(audio: np.ndarray, rate: int, target_rate: int, channels: int, length: int) -> np.ndarray:
    """A whole decoded signal at the set's rate, channel count and length."""
    audio = resample(audio, rate, target_rate)
    if audio.shape[0] == 1 and channels > 1:
        audio = np.repeat(audio, channels, axis=0)
    out = np.zeros((audio.shape[0], length), dtype=np.float32)
    out[:, : min(length, audio.shape[1])] = audio[:, :length]
    return out


__all__ = ["BlockReader", "StemFile", "StemFiles", "StemSource", "decoded_size", "in_memory_if_small", "load_stem_mp4",
           "load_stem_set", "open_stem_set", "DEFAULT_PAN_LAW_DB",
           "resampled_length", "stem_file"]
