"""Where balanced multitracks come from: dataset readers.

Each reader lists :class:`Song` entries without decoding audio; ``Song.load()`` reads the stems
when a worker needs them. Layouts:

* MUSDB18-HQ: ``<root>/{train,test}/<song>/{mixture,drums,bass,other,vocals}.wav``
  (:func:`musdb_hq_songs`).
* MUSDB18: ``<root>/{train,test}/<song>.stem.mp4`` (:func:`musdb_songs`); ``root: stempeg`` is
  the excerpt inside the ``stempeg`` wheel.
* Any folder of stem folders: ``<root>/<song>/<stem>.<ext>`` (:func:`stem_folder_songs`).
* MixParams / the Mix Evaluation Dataset: one row per track of an engineer's mix, several mixes
  per song (:func:`read_mixparams`, :func:`consensus_references`): no audio is read, the
  engineers' per-track loudness gives a consensus balance per song.

A song's split comes from the dataset when it has one (MUSDB's ``train``/``test``), otherwise
from :func:`song_split`, a hash of the song's name, so a song never lands in two splits.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faderwise.tools.audio_io import AUDIO_EXTENSIONS
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.input_files import MANIFEST_LIMIT_BYTES, exists_as_file, read_text_bounded
from faderwise.tools.stem_files import load_stem_set
from faderwise.tools.stems import StemSet

SPLITS = ("train", "val", "test")


class DatasetError(FaderwiseError):
    """A dataset folder or metadata file that does not have the layout its reader expects."""


@dataclass(frozen=True)
class Song:
    """One balanced multitrack.

    Attributes:
        song_id: unique within a dataset run (``<dataset>/<name>``).
        name: the song's own name.
        path: the folder or ``.stem.mp4`` holding its stems.
        split: ``train``/``val``/``test`` if the dataset fixes it, else ``None``.
        material: what kind of music it is, for the evaluation's per-material figures
            (``procedural``, ``musdb18``, ``multitrack``…).
    """

    song_id: str
    name: str
    path: Path
    split: str | None = None
    material: str = "multitrack"

    def load(self) -> StemSet:
        return load_stem_set(self.path)


def song_split(name: str, *, val: float, test: float, salt: str = "faderwise") -> str:
    """``train``, ``val`` or ``test`` for a song, from a hash of its name: stable across runs,
    machines and dataset orderings, so adding songs never moves another between splits."""
    if not (0 <= val and 0 <= test and val + test < 1):
        raise DatasetError(f"split fractions val={val}, test={test}: each must be ≥ 0 and together < 1")
    position = int.from_bytes(hashlib.sha256(f"{salt}:{name}".encode()).digest()[:8], "big") / 2**64
    return "test" if position < test else "val" if position < test + val else "train"


def _has_audio(folder: Path) -> bool:
    return any(f.suffix.casefold() in AUDIO_EXTENSIONS and not f.name.startswith(".") for f in folder.iterdir())


def _require_folder(root: Path, what: str) -> None:
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder ({what})")


def musdb_hq_songs(root: str | os.PathLike[str]) -> list[Song]:
    """Songs of a MUSDB18-HQ folder; the dataset's ``test`` songs stay in ``test``, its ``train``
    songs are ``train`` (a validation split is carved from them by the caller, by song)."""
    root = Path(root)
    _require_folder(root, "MUSDB18-HQ: train/<song>/*.wav and test/<song>/*.wav")
    songs = []
    for subset in ("train", "test"):
        for folder in sorted(p for p in (root / subset).glob("*") if p.is_dir()):
            if not _has_audio(folder):
                continue
            songs.append(Song(song_id=f"musdb18hq/{folder.name}", name=folder.name, path=folder, split=subset,
                              material="musdb18"))
    if not songs:
        raise DatasetError(f"{root}: no song folders under train/ or test/ (MUSDB18-HQ layout)")
    return songs


STEMPEG_ROOT = "stempeg"
NAMED_ROOTS = {("music21", "corpus"), ("musdb18", STEMPEG_ROOT)}
"""``(kind, root)`` pairs whose root names material inside an installed package, not a folder."""


def stempeg_folder() -> Path:
    """The folder of the MUSDB18 excerpt the ``stempeg`` wheel ships (``The Easton Ellises - Falcon 69``).

    Raises:
        DatasetError: stempeg is not installed.
    """
    try:
        import stempeg
    except ImportError as exc:
        raise DatasetError("stempeg: not installed, so the MUSDB18 excerpt it ships is not here "
                           "(pip install stempeg)") from exc
    return Path(stempeg.example_stem_path()).parent


def musdb_songs(root: str | os.PathLike[str]) -> list[Song]:
    """Songs of a MUSDB18 folder of ``.stem.mp4`` files (``train/``, ``test/`` or flat); ``root:
    stempeg`` means the excerpt inside the ``stempeg`` wheel (:func:`stempeg_folder`)."""
    root = stempeg_folder() if str(root) == STEMPEG_ROOT else Path(root)
    _require_folder(root, "MUSDB18: train/*.stem.mp4 and test/*.stem.mp4")
    songs = []
    for path in sorted(root.rglob("*.stem.mp4")):
        name = path.name.removesuffix(".stem.mp4")
        subset = path.parent.name if path.parent.name in ("train", "test") else None
        songs.append(Song(song_id=f"musdb18/{name}", name=name, path=path, split=subset, material="musdb18"))
    if not songs:
        raise DatasetError(f"{root}: no .stem.mp4 files (MUSDB18 layout)")
    return songs


def stem_folder_songs(root: str | os.PathLike[str]) -> list[Song]:
    """Every sub-folder of ``root`` that holds audio files is a song."""
    root = Path(root)
    _require_folder(root, "a folder of stem folders")
    songs = [Song(song_id=f"{root.name}/{folder.name}", name=folder.name, path=folder)
             for folder in sorted(p for p in root.iterdir() if p.is_dir())
             if _has_audio(folder)]
    if not songs:
        raise DatasetError(f"{root}: no sub-folders with audio files in them")
    return songs


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts`` (the same on every machine and Python run)."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


@dataclass(frozen=True)
class MidiSong(Song):
    """A song rendered from MIDI, each instrument group to its own stem
    (:mod:`faderwise.training.midi`): a General MIDI file, or a piece of the music21 corpus played
    as a band. Renders the same every time: everything it draws comes from its id."""

    corpus: bool = False
    render: tuple[tuple[str, Any], ...] = ()
    """Render options (:class:`~faderwise.training.midi.RenderOptions`) as pairs: songs stay hashable."""

    def load(self) -> StemSet:
        from faderwise.training.midi import RenderOptions, corpus_piece, read_midi_file, render_stems

        seed = stable_seed("midi", self.song_id)
        parts = corpus_piece(self.path, seed=seed) if self.corpus else read_midi_file(self.path)
        return render_stems(parts, seed=seed, source=str(self.path), options=RenderOptions(**dict(self.render)))


MIDI_SUFFIXES = (".mid", ".midi")
RENDER_KEYS = ("soundfont", "seconds", "velocity_jitter", "timing_jitter_s", "reverb_share", "drum_kit", "stem_names")


def render_pairs(render: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Render options (:data:`RENDER_KEYS`) as sorted pairs, checked by
    :class:`~faderwise.training.midi.RenderOptions` and hashable (``stem_names`` as sorted pairs).

    Raises:
        MidiError: a value RenderOptions refuses (a drum kit outside 0–127, bad stem names).
    """
    from faderwise.training.midi import RenderOptions

    options = RenderOptions(**render)
    return tuple(sorted((key, getattr(options, key)) for key in render))


def midi_songs(root: str | os.PathLike[str], **render: Any) -> list[Song]:
    """Every General MIDI file under ``root``, rendered per instrument group."""
    root = Path(root)
    _require_folder(root, "a folder of .mid files")
    options = render_pairs(render)
    songs: list[Song] = [MidiSong(song_id=f"midi/{path.relative_to(root).with_suffix('')}", name=path.stem, path=path,
                                  material="rendered", render=options)
                         for path in sorted(p for p in root.rglob("*") if p.suffix.casefold() in MIDI_SUFFIXES)]
    if not songs:
        raise DatasetError(f"{root}: no .mid files")
    return songs


def music21_songs(root: str | os.PathLike[str], **render: Any) -> list[Song]:
    """The multi-part pieces (MusicXML) of the corpus that ships inside the ``music21`` wheel, or
    of ``root`` when it names a folder; ``root: corpus`` means the wheel's own."""
    if str(root) == "corpus":
        try:
            from music21 import corpus
        except ImportError as exc:
            raise DatasetError("music21 corpus: needs the music21 package (pip install 'faderwise[data]')") from exc
        paths = [Path(p) for p in corpus.getPaths(fileExtensions=("mxl", "xml", "musicxml"))]
        base = Path(corpus.getComposer("bach")[0]).parents[1]
    else:
        base = Path(root)
        _require_folder(base, "a folder of MusicXML pieces")
        paths = [p for p in base.rglob("*") if p.suffix.casefold() in (".mxl", ".xml", ".musicxml")]
    skipped = ("leadSheet", "theoryExercises", "demos")  # no multi-part music
    options = render_pairs(render)
    songs: list[Song] = [MidiSong(song_id=f"music21/{path.relative_to(base).with_suffix('')}", name=path.stem,
                                  path=path, material="rendered", corpus=True, render=options)
                         for path in sorted(paths) if not set(path.relative_to(base).parts) & set(skipped)]
    if not songs:
        raise DatasetError(f"{base}: no MusicXML pieces")
    return songs


READERS = {"musdb18hq": musdb_hq_songs, "musdb18": musdb_songs, "stem-folders": stem_folder_songs,
           "midi": midi_songs, "music21": music21_songs}
RENDERED_KINDS = ("midi", "music21")


# -- MixParams / Mix Evaluation Dataset ---------------------------------------------------------

MIXPARAMS_COLUMNS = ("mix_name", "song_name", "track_name", "track_audio_lufs", "parameters")
GAIN_KEYS = ("gain", "gain_db", "fader", "fader_db", "volume", "volume_db", "level_db")
MIXPARAMS_TABLE = "a MixParams table"


@dataclass(frozen=True)
class MixTrack:
    """One track of one engineer's mix: its loudness as mixed (LUFS) and the gain the engineer set."""

    mix: str
    song: str
    track: str
    instrument: str | None
    lufs: float
    gain_db: float | None


@dataclass(frozen=True)
class MixParamsData:
    tracks: tuple[MixTrack, ...]
    problems: tuple[str, ...] = ()
    """One line per row that was skipped or whose gain could not be read, and why."""


def _gain_from(parameters: object) -> tuple[float | None, str | None]:
    """The engineer's gain (dB) from a track's ``parameters`` JSON, or why there is none."""
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters) if parameters.strip() else {}
        except json.JSONDecodeError as exc:
            return None, f"parameters are not JSON ({exc.msg})"
    if not isinstance(parameters, dict):
        return None, "parameters are not a JSON object"
    lowered = {str(key).casefold(): value for key, value in parameters.items()}
    for key in GAIN_KEYS:
        if key in lowered:
            value = lowered[key]
            if isinstance(value, dict):  # {"gain": {"value": -3.0, "unit": "dB"}}
                value = value.get("value")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return float(value), None
            return None, f"gain {key!r} is not a number ({value!r})"
    return None, f"no gain among the parameters (keys: {', '.join(sorted(lowered)) or 'none'})"


def read_mixparams(path: str | os.PathLike[str]) -> MixParamsData:
    """Read MixParams rows from a CSV or JSON-lines file (the Hugging Face export's columns).

    Rows without a finite ``track_audio_lufs`` are skipped; a missing or unreadable gain keeps
    the row (its loudness is still usable) and is reported. Nothing is guessed.

    Raises:
        DatasetError: the file is missing or lacks a required column.
        NotAFileError: a named pipe (FIFO), a socket or a device.
        InputTooLargeError: larger than :data:`~faderwise.tools.input_files.MANIFEST_LIMIT_BYTES`.
    """
    path = Path(path)
    if not exists_as_file(path, what=MIXPARAMS_TABLE, limit=MANIFEST_LIMIT_BYTES):
        raise DatasetError(f"{path}: no such MixParams file")
    numbered: list[tuple[int, dict[str, Any]]] = []  # (line in the file, row)
    if path.suffix.casefold() in (".jsonl", ".json"):
        text = read_text_bounded(path, limit=MANIFEST_LIMIT_BYTES, what=MIXPARAMS_TABLE)
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    numbered.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}: line {number} is not JSON ({exc.msg})") from exc
    else:
        text = read_text_bounded(path, limit=MANIFEST_LIMIT_BYTES, what=MIXPARAMS_TABLE, newline="")
        numbered = list(enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2))  # line 1 is the header
    if numbered:
        missing = [column for column in MIXPARAMS_COLUMNS if column not in numbered[0][1]]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} (MixParams has "
                               f"{', '.join(MIXPARAMS_COLUMNS)}, …)")
    tracks, problems = [], []
    for number, row in numbered:
        where = f"{path.name} row {number} ({row.get('mix_name')}/{row.get('track_name')})"
        try:
            lufs = float(row["track_audio_lufs"])
        except (TypeError, ValueError):
            lufs = math.nan
        if not math.isfinite(lufs):
            problems.append(f"{where}: skipped, track_audio_lufs {row.get('track_audio_lufs')!r} is not a level")
            continue
        gain, why = _gain_from(row.get("parameters"))
        if why is not None:
            problems.append(f"{where}: {why}")
        tracks.append(MixTrack(mix=str(row["mix_name"]), song=str(row["song_name"]), track=str(row["track_name"]),
                               instrument=row.get("track_instrument_type") or None, lufs=lufs, gain_db=gain))
    return MixParamsData(tracks=tuple(tracks), problems=tuple(problems))


@dataclass(frozen=True)
class ConsensusStem:
    """One track's level against the rest of its mix, across engineers (LU): the median, and the
    inter-engineer range (min, max) that serves as the "consensus range" ground truth."""

    median_lu: float
    low_lu: float
    high_lu: float
    mixes: int


@dataclass(frozen=True)
class ConsensusReference:
    song: str
    stems: Mapping[str, ConsensusStem]
    mixes: tuple[str, ...] = field(default=())


def _relative_levels(tracks: Sequence[MixTrack]) -> dict[str, float]:
    """Each track's loudness minus the power sum of its mix's tracks (LU): the stem-to-mix level
    (tracks are summed as uncorrelated powers)."""
    total = 10 * math.log10(sum(10 ** (t.lufs / 10) for t in tracks))
    return {t.track: t.lufs - total for t in tracks}


def consensus_references(data: MixParamsData, *, min_mixes: int = 2) -> dict[str, ConsensusReference]:
    """Per song with at least ``min_mixes`` engineers' mixes: per track, the median stem-to-mix
    level and the range across the mixes that have that track."""
    by_song: dict[str, dict[str, list[MixTrack]]] = {}
    for track in data.tracks:
        by_song.setdefault(track.song, {}).setdefault(track.mix, []).append(track)
    references = {}
    for song, mixes in sorted(by_song.items()):
        if len(mixes) < min_mixes:
            continue
        levels: dict[str, list[float]] = {}
        for tracks in mixes.values():
            for name, level in _relative_levels(tracks).items():
                levels.setdefault(name, []).append(level)
        stems = {name: ConsensusStem(median_lu=statistics.median(values), low_lu=min(values), high_lu=max(values),
                                     mixes=len(values))
                 for name, values in sorted(levels.items())}
        references[song] = ConsensusReference(song=song, stems=stems, mixes=tuple(sorted(mixes)))
    return references


def list_songs(kind: str, root: str | os.PathLike[str], **render: Any) -> list[Song]:
    """The songs of a dataset of kind ``kind`` (one of :data:`READERS`); ``render`` options
    (:data:`RENDER_KEYS`) go to the MIDI kinds."""
    if kind not in READERS:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose from {', '.join(READERS)}")
    return READERS[kind](root, **render) if kind in RENDERED_KINDS else READERS[kind](root)


def assign_splits(songs: Iterable[Song], *, val: float, test: float) -> list[Song]:
    """Songs with a split each: the dataset's own ``test`` stays ``test``; every other song is
    placed by :func:`song_split` (a dataset ``train`` song may go to ``val`` but never ``test``)."""
    placed = []
    for song in songs:
        if song.split == "test":
            split = "test"
        elif song.split == "train":
            split = "val" if song_split(song.name, val=val, test=0.0) == "val" else "train"
        else:
            split = song_split(song.name, val=val, test=test)
        placed.append(dataclasses.replace(song, split=split))
    return placed
