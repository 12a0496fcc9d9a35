"""Multitrack material rendered from MIDI: every instrument group of a piece becomes its own stem.

Two sources, one renderer:

* :func:`read_midi_file`: any General MIDI file. Channel 10 is the drums; other channels are
  grouped by their program (piano, organ and pads → ``keys``; guitars → ``guitar``; basses →
  ``bass``; strings and ensembles → ``strings``; brass, reeds and pipes → ``winds``; synth
  leads → ``lead``), and a track named like a melody or a voice is the ``lead``.
* :func:`corpus_piece`: a multi-part piece of the corpus that ships inside the ``music21`` wheel
  (Bach chorales, Monteverdi madrigals, string quartets…). Its top part is the ``lead``, its lowest
  the ``bass``, the parts between ``keys`` and ``guitar``; each song draws its own General MIDI
  instruments for those roles and its own tempo, and most songs get a drum part on the piece's
  metre, so the material sounds like a band playing a real composition rather than one template.

:func:`render_stems` renders each group with FluidSynth (the ``fluidsynth`` program and a
General MIDI SoundFont from the Debian packages), humanised (velocity and timing jitter drawn
per song), optionally with a room of its own, and balanced: each stem's loudness is drawn around
its role's level in the mix (:data:`ROLE_LEVELS_LU`), so every song has a believable balance of
its own. Everything is drawn from a seed, so a song renders the same every time.
"""

from __future__ import annotations

import functools
import io
import math
import re
import shutil
import struct
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np

from faderwise.tools.audio_io import read_audio
from faderwise.tools.errors import FaderwiseError, MissingDependencyError
from faderwise.tools.input_files import MIDI_LIMIT_BYTES, check_regular_file, exists_as_file, read_bytes_bounded
from faderwise.tools.loudness import integrated_loudness
from faderwise.tools.stems import StemSet, apply_gain

RATE = 44_100
DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0
SOUNDFONTS = {
    "fluidr3": Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),  # Debian fluid-soundfont-gm (MIT)
    "timgm6mb": Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),  # Debian timgm6mb-soundfont (GPL-2), small
}
SOUNDFONT_PACKAGES = {"fluidr3": "fluid-soundfont-gm", "timgm6mb": "timgm6mb-soundfont"}

# General MIDI program (0-127) → group, by the GM families of eight: piano, chromatic percussion,
# organ, guitar, bass, strings, ensemble, brass, reed, pipe, synth lead, synth pad, synth effects,
# ethnic, percussive; the last family (120-127) is sound effects (a gunshot, applause), no stem.
_FAMILY_GROUPS = ("keys", "keys", "keys", "guitar", "bass", "strings", "strings", "winds", "winds", "winds", "lead",
                  "keys", "keys", "guitar", "keys", None)
LEAD_WORDS = ("melody", "lead", "vocal", "voice", "soprano", "singer", "tune")
GROUPS = ("lead", "keys", "guitar", "bass", "strings", "winds", "drums")
"""Every group a part can belong to: the stem names a rendered song has unless renamed."""
DRUM_BANK = 128  # General MIDI drum kits live in bank 128 of a SoundFont, one kit per program
STEM_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")

ROLE_LEVELS_LU: dict[str, tuple[float, float]] = {
    "lead": (-4.5, 2.0), "drums": (-7.0, 2.0), "bass": (-7.0, 2.0), "keys": (-7.5, 2.5), "guitar": (-7.5, 2.5),
    "strings": (-8.0, 2.5), "winds": (-8.0, 2.5),
}
"""Each role's stem-to-mix loudness (mean, standard deviation; LU) a song's balance is drawn from.
Centred on what the two MUSDB18 excerpts available here measure (vocals −3.1 and −5.6 LU,
drums −8.4 and −6.0, bass −8.9 and −5.2, other −6.1 and −5.6), wide enough to cover both."""
MIX_LUFS = -16.0

# Instruments a corpus song draws for each role (General MIDI programs).
ROLE_PROGRAMS: dict[str, tuple[int, ...]] = {
    "lead": (73, 40, 71, 56, 65, 52, 80, 81, 68, 22),  # flute, violin, clarinet, trumpet, alto sax, choir, leads…
    "keys": (0, 1, 4, 5, 16, 19, 48, 89),  # pianos, electric pianos, organs, strings, warm pad
    "guitar": (24, 25, 26, 27, 29, 46),  # nylon, steel, jazz, clean, overdriven, harp
    "bass": (32, 33, 34, 35, 38, 43),  # acoustic, finger, pick, fretless, synth bass, contrabass
}


class MidiError(FaderwiseError):
    """A MIDI file or corpus piece that cannot be rendered (the message names it and the problem)."""


@dataclass(frozen=True)
class Note:
    start_s: float
    end_s: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Voice:
    """Notes played on one General MIDI program (ignored for the drum kit)."""

    program: int
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class Part:
    """What one stem plays: its group (the stem's name), its voices, and whether it is the kit."""

    group: str
    voices: tuple[Voice, ...]
    drums: bool = False

    @property
    def notes(self) -> tuple[Note, ...]:
        return tuple(note for voice in self.voices for note in voice.notes)


def program_group(program: int) -> str | None:
    """The group of a General MIDI program; None for the sound-effects family (120–127).

    Raises:
        MidiError: a program outside 0–127.
    """
    if not 0 <= program <= 127:
        raise MidiError(f"program {program} is not a General MIDI program (0–127)")
    return _FAMILY_GROUPS[program // 8]


# -- reading ---------------------------------------------------------------------------------------


def read_midi_file(path: str | Path) -> list[Part]:
    """The parts of a General MIDI file, one per group.

    Raises:
        MidiError: the file is not MIDI, holds no notes, or names a program outside GM.
        NotAFileError: a named pipe (FIFO), a socket or a device.
        InputTooLargeError: larger than :data:`~faderwise.tools.input_files.MIDI_LIMIT_BYTES`.
    """
    import mido

    path = Path(path)
    try:
        data = read_bytes_bounded(path, limit=MIDI_LIMIT_BYTES, what="a MIDI file")
    except OSError as exc:
        raise MidiError(f"{path}: not a readable MIDI file ({exc})") from None
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise MidiError(f"{path}: not a readable MIDI file ({exc})") from None
    notes: dict[tuple[int, int, str], list[Note]] = {}
    programs = dict.fromkeys(range(16), 0)
    for index, track in enumerate(midi.tracks):
        lead = any(word in track.name.casefold() for word in LEAD_WORDS)
        sounding: dict[tuple[int, int], tuple[float, int]] = {}
        for now, message in _timed_messages(midi, index):
            if message.type == "program_change":
                programs[message.channel] = message.program
            elif message.type == "note_on" and message.velocity > 0:
                sounding[(message.channel, message.note)] = (now, message.velocity)
            elif message.type in ("note_off", "note_on"):
                started = sounding.pop((message.channel, message.note), None)
                if started is not None and now > started[0]:
                    key = (message.channel, programs[message.channel], "lead" if lead else "")
                    notes.setdefault(key, []).append(Note(started[0], now, message.note, started[1]))
    voices: dict[str, list[Voice]] = {}
    for (channel, program, role), found in sorted(notes.items()):
        drums = channel == DRUM_CHANNEL
        group = "drums" if drums else role or program_group(program)
        if group is None:
            raise MidiError(f"{path}: channel {channel + 1} plays program {program}, a sound effect, not an instrument "
                            "faderwise renders as a stem")
        voices.setdefault(group, []).append(Voice(program, tuple(sorted(found, key=lambda n: (n.start_s, n.pitch)))))
    if not voices:
        raise MidiError(f"{path}: holds no notes")
    return [Part(group, tuple(found), group == "drums") for group, found in voices.items()]


def _timed_messages(midi: object, index: int) -> list[tuple[float, object]]:
    """``(seconds, message)`` for every message of track ``index``, timed by the file's tempo map
    (track 0 of a type-1 file, or the only track of a type-0 file, holds it)."""
    import bisect

    import mido

    tracks, per_beat = midi.tracks, midi.ticks_per_beat  # type: ignore[attr-defined]
    changes, tick = [(0, 500_000)], 0
    for message in tracks[0]:
        tick += message.time
        if message.type == "set_tempo":
            changes.append((tick, message.tempo))
    changes.sort(key=lambda change: change[0])
    starts, seconds = [], 0.0  # each tempo segment: its first tick and the seconds there
    for position, (at, tempo) in enumerate(changes):
        if position:
            previous_at, previous_tempo = changes[position - 1]
            seconds += mido.tick2second(at - previous_at, per_beat, previous_tempo)
        starts.append((at, seconds, tempo))
    ticks = [start[0] for start in starts]
    timed, tick = [], 0
    for message in tracks[index]:
        tick += message.time
        at, seconds, tempo = starts[bisect.bisect_right(ticks, tick) - 1]
        timed.append((seconds + mido.tick2second(tick - at, per_beat, tempo), message))
    return timed


def corpus_piece(path: str | Path, *, seed: int, drums_share: float = 0.8) -> list[Part]:
    """A multi-part piece of the music21 corpus as a band: top part ``lead``, lowest ``bass``, the
    ones between ``keys`` and ``guitar``, instruments and tempo drawn from ``seed``, and (for a
    ``drums_share`` of the songs) a drum part on the piece's metre.

    Raises:
        MidiError: the piece cannot be parsed, has fewer than three parts, or no notes.
        NotAFileError: a named pipe (FIFO), a socket or a device.
    """
    from music21 import converter, meter, note

    path = Path(path)
    check_regular_file(path, what="a score")  # before music21 opens it
    rng = np.random.default_rng(seed)
    try:
        with warnings.catch_warnings():  # music21's notes on the encodings (an overfull bar) are not the user's
            warnings.simplefilter("ignore")
            score = converter.parse(str(path))
    except Exception as exc:  # music21 raises many kinds for a bad file
        raise MidiError(f"{path}: music21 cannot read it ({type(exc).__name__}: {exc})") from None
    voices = []
    for part in score.parts:
        found = [(float(n.offset), float(n.offset + n.quarterLength), n.pitch.midi)
                 for n in part.flatten().getElementsByClass(note.Note) if n.quarterLength > 0]
        if found:
            voices.append(found)
    if len(voices) < 3:
        raise MidiError(f"{path}: {len(voices)} parts with notes; a band needs at least three")
    bpm = float(rng.uniform(72, 126))
    beat_s = 60.0 / bpm
    order = sorted(range(len(voices)), key=lambda i: -np.mean([p for _, _, p in voices[i]]))
    roles = {order[0]: "lead", order[-1]: "bass"}
    for position, index in enumerate(order[1:-1]):
        roles[index] = ("keys", "guitar")[position % 2]
    programs = {role: int(rng.choice(choices)) for role, choices in ROLE_PROGRAMS.items()}
    parts: dict[str, list[Voice]] = {}
    for index, voice in enumerate(voices):
        role = roles[index]
        shift = -12 if role == "bass" and np.mean([p for _, _, p in voice]) > 52 else 0  # a bass an octave down
        parts.setdefault(role, []).append(Voice(programs[role], tuple(
            Note(start * beat_s, end * beat_s, pitch + shift, 90) for start, end, pitch in voice)))
    result = [Part(role, tuple(found)) for role, found in parts.items()]
    if rng.random() < drums_share:
        signature = next(iter(score.recurse().getElementsByClass(meter.TimeSignature)), None)
        beats = int(signature.numerator) if signature is not None and signature.numerator in (2, 3, 4, 6) else 4
        result.append(drum_part(score.highestTime * beat_s, beat_s, beats, rng))
    return result


def drum_part(seconds: float, beat_s: float, beats_per_bar: int, rng: np.random.Generator) -> Part:
    """A kit on the metre: kick on the first beat (and the third of four), snare on the back beats,
    hi-hat in eighths (or quarters, drawn per song), a crash every eight bars."""
    kick, snare, hat, crash = 36, 38, 42, 49
    eighths = rng.random() < 0.7
    notes = []
    bar_s = beats_per_bar * beat_s
    bar = 0
    while bar * bar_s < seconds:
        start = bar * bar_s
        if bar % 8 == 0:
            notes.append(Note(start, start + beat_s, crash, 100))
        for beat in range(beats_per_bar):
            at = start + beat * beat_s
            if beat == 0 or (beats_per_bar == 4 and beat == 2):
                notes.append(Note(at, at + beat_s / 2, kick, 110))
            if (beats_per_bar in (2, 4) and beat % 2 == 1) or (beats_per_bar in (3, 6) and beat == beats_per_bar - 1):
                notes.append(Note(at, at + beat_s / 2, snare, 100))
            for half in ((0, 1) if eighths else (0,)):
                notes.append(Note(at + half * beat_s / 2, at + half * beat_s / 2 + beat_s / 4, hat, 70))
        bar += 1
    return Part("drums", (Voice(0, tuple(n for n in notes if n.start_s < seconds)),), drums=True)


# -- rendering -------------------------------------------------------------------------------------


def soundfont(name_or_path: str) -> Path:
    """A SoundFont by name (:data:`SOUNDFONTS`) or path.

    Raises:
        MissingDependencyError: it is not installed (the message says which Debian package has it).
        NotAFileError: it is a named pipe (FIFO), a socket or a device (FluidSynth would wait on it).
    """
    path = SOUNDFONTS.get(name_or_path, Path(name_or_path))
    if not exists_as_file(path, what="a SoundFont"):
        package = SOUNDFONT_PACKAGES.get(name_or_path)
        hint = f"install it: apt-get install {package}" if package else "name fluidr3, timgm6mb or an .sf2 file"
        raise MissingDependencyError(f"SoundFont {path}: not found; {hint}")
    return path


def fluidsynth() -> str:
    found = shutil.which("fluidsynth")
    if found is None:
        raise MissingDependencyError("rendering MIDI needs FluidSynth: apt-get install fluidsynth")
    return found


def soundfont_presets(path: str | Path) -> frozenset[tuple[int, int]]:
    """Every ``(bank, program)`` preset a SoundFont 2 file holds (its ``phdr`` chunk; the samples
    are not read). Drum kits are the presets of bank :data:`DRUM_BANK`.

    Raises:
        MidiError: the file is not a SoundFont 2 file.
    """
    return _soundfont_presets(str(Path(path).resolve()))


@functools.lru_cache(maxsize=8)
def _soundfont_presets(path: str) -> frozenset[tuple[int, int]]:
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"sfbk":
            raise MidiError(f"{path}: not a SoundFont 2 file")
        for ident, size, start in _riff_chunks(handle, end=8 + struct.unpack("<I", head[4:8])[0]):
            if ident == b"LIST" and handle.read(4) == b"pdta":
                for sub, sub_size, _ in _riff_chunks(handle, end=start + size):
                    if sub == b"phdr":  # 38-byte records: name[20], program, bank, …; the last one ends the list
                        table = handle.read(sub_size)
                        return frozenset(struct.unpack_from("<HH", table, offset)[::-1]
                                         for offset in range(20, len(table) - 38, 38))
    raise MidiError(f"{path}: a SoundFont 2 file without a preset list (phdr)")


def _riff_chunks(handle: BinaryIO, *, end: int) -> Iterator[tuple[bytes, int, int]]:
    """``(id, size, offset of its data)`` of each RIFF chunk from the handle's place up to byte
    ``end``; the handle is left at a chunk's data while the caller looks at it."""
    while handle.tell() + 8 <= end:
        header = handle.read(8)
        ident, size = header[:4], struct.unpack("<I", header[4:])[0]
        start = handle.tell()
        yield ident, size, start
        handle.seek(start + size + (size & 1))


def drum_kits(path: str | Path) -> tuple[int, ...]:
    """The programs of the drum kits (bank :data:`DRUM_BANK`) a SoundFont holds, ascending."""
    return tuple(sorted(program for bank, program in soundfont_presets(path) if bank == DRUM_BANK))


def checked_stem_names(names: Mapping[str, str] | Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``names`` (group → the stem name it gets) as sorted pairs, once checked: every group one of
    :data:`GROUPS`, every new name a stem name of its own (lower-case letters, digits, ``-``, ``_``).

    Raises:
        MidiError: an unknown group, a name that is not a stem name, two groups given one name, or
            a name that a group keeping its own name already has.
    """
    found = list(names.items()) if isinstance(names, Mapping) else list(names) if isinstance(names, (list, tuple)) else []
    if (not isinstance(names, (Mapping, list, tuple))
            or not all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in found)):
        raise MidiError(f"stem_names: expected group → name pairs, e.g. {{lead: vocals, keys: other}}, got {names!r}")
    pairs = sorted(((group, name) for group, name in found), key=lambda pair: (str(pair[0]), str(pair[1])))
    twice = sorted({str(group) for group, _ in pairs if sum(other == group for other, _ in pairs) > 1})
    if twice:
        raise MidiError(f"stem_names: {twice[0]} is given two names")
    for group, name in pairs:
        if group not in GROUPS:
            raise MidiError(f"stem_names: unknown group {group!r} (the groups are {', '.join(GROUPS)})")
        if not isinstance(name, str) or not STEM_NAME.fullmatch(name):
            raise MidiError(f"stem_names: {group} → {name!r} is not a stem name (lower-case letters, digits, - and _, "
                            "starting with a letter)")
    renamed = dict(pairs)
    for group, name in pairs:
        others = [other for other, given in pairs if given == name and other != group]
        if others:
            raise MidiError(f"stem_names: {group} and {others[0]} would both be called {name!r}; each stem needs a "
                            "name of its own")
        if name in GROUPS and name not in renamed:
            raise MidiError(f"stem_names: {group} would be called {name!r}, the name of a group that keeps it")
    return tuple(pairs)


@dataclass(frozen=True)
class RenderOptions:
    """How a song is rendered. ``seconds``: its length (from the start); ``velocity_jitter`` (MIDI
    velocity units) and ``timing_jitter_s`` (seconds): humanisation, standard deviations;
    ``reverb_share``: the share of stems that get a room (each its own size and level);
    ``drum_kit``: the General MIDI drum kit (a program of bank 128: 0 standard, 8 room, 16 power,
    24 electronic, 25 TR-808, 32 jazz, 40 brush, 48 orchestra), or None for the SoundFont's
    standard kit without a program change (what the training material used); ``stem_names``:
    group → the name its stem gets (e.g. ``{"lead": "vocals", "keys": "other"}``), applied after
    the balance is drawn, so a renamed stem keeps its role's level. A mapping is stored as sorted pairs.

    Raises:
        MidiError: a drum kit outside 0–127, or stem names :func:`checked_stem_names` refuses.
    """

    soundfont: str = "fluidr3"
    seconds: float = 30.0
    velocity_jitter: float = 10.0
    timing_jitter_s: float = 0.008
    reverb_share: float = 0.5
    drum_kit: int | None = None
    stem_names: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        kit = self.drum_kit
        if kit is not None and (isinstance(kit, bool) or not isinstance(kit, int) or not 0 <= kit <= 127):
            raise MidiError(f"drum_kit {kit!r} is not a General MIDI program (0–127) of the drum bank")
        object.__setattr__(self, "stem_names", checked_stem_names(self.stem_names))


def render_stems(parts: Sequence[Part], *, seed: int, source: str, options: RenderOptions = RenderOptions()) -> StemSet:
    """Render each part to its own stem (44.1 kHz stereo), humanised, with its own room for some,
    balanced around :data:`ROLE_LEVELS_LU`, then named as ``options.stem_names`` says; silent
    parts are dropped.

    Raises:
        MidiError: no part makes a sound in the first ``options.seconds``, or the SoundFont has no
            drum kit ``options.drum_kit`` (FluidSynth would play its standard kit instead, silently).
        MissingDependencyError: FluidSynth or the SoundFont is missing.
    """
    rng = np.random.default_rng(seed)
    font, program = soundfont(options.soundfont), fluidsynth()
    if options.drum_kit is not None and any(part.drums for part in parts):
        check_drum_kit(font, options.drum_kit)
    length = int(options.seconds * RATE)
    stems: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="faderwise-midi-") as scratch:
        for part in parts:
            voices = tuple(Voice(voice.program, tuple(humanised(
                voice.notes, rng, velocity_jitter=options.velocity_jitter, timing_jitter_s=options.timing_jitter_s,
                seconds=options.seconds))) for voice in part.voices)
            if not any(voice.notes for voice in voices):
                continue
            midi_path, wav_path = Path(scratch) / f"{part.group}.mid", Path(scratch) / f"{part.group}.wav"
            part_midi(replace(part, voices=voices), drum_kit=options.drum_kit).save(midi_path)
            result = subprocess.run([program, "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(RATE),
                                     "-F", str(wav_path), str(font), str(midi_path)],
                                    capture_output=True, text=True, check=False)
            if result.returncode != 0 or not wav_path.is_file():
                raise MidiError(f"{source}: FluidSynth could not render the {part.group} "
                                f"({(result.stderr or result.stdout).strip().splitlines()[-1:] or 'no output'})")
            audio, _ = read_audio(wav_path, min_duration_s=0.0)
            audio = np.pad(audio, ((0, 0), (0, max(0, length - audio.shape[1]))))[:, :length]
            if rng.random() < options.reverb_share:
                audio = room(audio, rng)
            if not np.max(np.abs(audio)) > 0:
                programs = ", ".join(str(voice.program) for voice in voices)
                raise MidiError(f"{source}: the {part.group} part (program {programs}) renders silent: "
                                f"{font.name} has no such instrument")
            stems[part.group] = audio
    if not stems:
        raise MidiError(f"{source}: no part sounds in its first {options.seconds:g} s")
    return renamed(balanced(StemSet(stems=stems, rate=RATE), rng), dict(options.stem_names))


def check_drum_kit(font: Path, kit: int) -> None:
    """Refuse a drum kit the SoundFont lacks: FluidSynth would fall back to its standard kit
    without a word, and the material would not be what its name says. (The message names the
    SoundFont, not the song: a synthesis reports it once for all the songs it leaves out.)

    Raises:
        MidiError: ``font`` has no preset ``kit`` in bank :data:`DRUM_BANK`.
    """
    kits = drum_kits(font)
    if kit not in kits:
        raise MidiError(f"SoundFont {font}: no drum kit {kit} (its kits: {', '.join(map(str, kits)) or 'none'}); "
                        "FluidSynth would play its standard kit instead")


def renamed(stem_set: StemSet, names: Mapping[str, str]) -> StemSet:
    """``stem_set`` with each stem named ``names[stem]`` where given (order and audio kept)."""
    if not names:
        return stem_set
    return StemSet(stems={names.get(name, name): audio for name, audio in stem_set.stems.items()}, rate=stem_set.rate)


def humanised(notes: Sequence[Note], rng: np.random.Generator, *, velocity_jitter: float, timing_jitter_s: float,
              seconds: float) -> list[Note]:
    """``notes`` within the first ``seconds``, each moved by a little timing and velocity noise."""
    base = float(rng.uniform(-12, 12))
    found = []
    for n in notes:
        if n.start_s >= seconds:
            continue
        shift = float(rng.normal(0, timing_jitter_s))
        velocity = int(np.clip(round(n.velocity + base + rng.normal(0, velocity_jitter)), 20, 127))
        start = max(0.0, n.start_s + shift)
        found.append(Note(start, max(start + 0.02, n.end_s + shift), n.pitch, velocity))
    return found


def part_midi(part: Part, *, drum_kit: int | None = None) -> object:
    """A one-track MIDI file of ``part`` (480 ticks per beat at 120 BPM: one tick is 1/960 s), each
    voice on a channel of its own (the kit on channel 10; ``drum_kit``, a program of the drum bank,
    picks the kit there, None leaves the player's standard kit).

    Raises:
        MidiError: more voices than the 15 melodic channels.
    """
    import mido

    channels = [DRUM_CHANNEL] if part.drums else [c for c in range(16) if c != DRUM_CHANNEL]
    if not part.drums and len(part.voices) > len(channels):
        raise MidiError(f"the {part.group} part has {len(part.voices)} voices; a MIDI file holds at most 15")
    events, setup = [], [mido.MetaMessage("set_tempo", tempo=500_000, time=0)]
    for index, voice in enumerate(part.voices):
        channel = channels[0] if part.drums else channels[index]
        if not part.drums:
            setup.append(mido.Message("program_change", channel=channel, program=voice.program, time=0))
        elif drum_kit is not None and index == 0:
            setup.append(mido.Message("program_change", channel=channel, program=drum_kit, time=0))
        for n in voice.notes:
            events.append((round(n.start_s * 960), 1, mido.Message("note_on", channel=channel, note=n.pitch,
                                                                  velocity=n.velocity)))
            events.append((round(n.end_s * 960), 0, mido.Message("note_off", channel=channel, note=n.pitch,
                                                                 velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack(setup)
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    return midi


def room(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``audio`` in a room of its own: an exponentially decaying stereo noise tail (RT60 drawn from
    0.3–1.5 s), mixed 10–30 % wet; the dry level is kept."""
    rt60 = float(rng.uniform(0.3, 1.5))
    length = int(rt60 * RATE)
    decay = np.exp(-6.9 * np.arange(length) / length)
    response = (rng.standard_normal((audio.shape[0], length)) * decay).astype(np.float32)
    response /= np.sqrt(np.sum(response ** 2, axis=1, keepdims=True)) + 1e-12
    from scipy.signal import fftconvolve

    wet = fftconvolve(audio, response, axes=1)[:, :audio.shape[1]].astype(np.float32)
    share = float(rng.uniform(0.1, 0.3))
    return (audio + share * wet).astype(np.float32)


def balanced(stem_set: StemSet, rng: np.random.Generator) -> StemSet:
    """Each stem brought to ``MIX_LUFS`` + its role's level (:data:`ROLE_LEVELS_LU`, drawn per song)."""
    gains: dict[str, float] = {}
    for name, audio in stem_set.stems.items():
        loudness = integrated_loudness(audio, stem_set.rate)
        if not math.isfinite(loudness):
            continue
        mean, spread = ROLE_LEVELS_LU.get(name, (-8.0, 2.5))
        gains[name] = MIX_LUFS + float(rng.normal(mean, spread)) - loudness
    stems = {name: apply_gain(audio, gains.get(name, 0.0)) for name, audio in stem_set.stems.items()}
    peak = max(float(np.max(np.abs(sum(stems.values())))), 1e-9)
    headroom = min(0.0, 20 * math.log10(0.89 / peak))  # the mix peaks at most at -1 dBFS
    return StemSet(stems={name: apply_gain(audio, headroom) for name, audio in stems.items()}, rate=stem_set.rate)


