"""A procedural demo multitrack: about 30 s of a small pop-rock song, as five stems.

It is faderwise's embedded default (nothing to download) and the material of many tests. The song:
96 BPM in 4/4, A minor, the progression Am–F–C–G twice per 8 bars; 12 bars in all (30 s):

* bars 1–2 intro: drums, bass and keys; the vocal and the guitar rest;
* bars 3–6 verse: the vocal enters; bars 7–10 chorus: the guitar joins, the vocal climbs;
* bars 11–12 outro: the vocal rests again.

Stems (all stereo, 44.1 kHz): ``drums`` (kick with a pitch sweep, snare with a tonal body, 8th-note
hats with accents), ``bass`` (8th-note roots, a band-limited saw through a low-pass plus a sub
sine), ``keys`` (detuned-saw pad chords), ``guitar`` (Karplus–Strong strums panned left), and
``vocals`` (a glottal-like source with vibrato through vowel formants, breath noise and phrasing).

Version B is the balanced mix: each stem normalised to the integrated loudness in
:data:`BALANCE_LUFS` (stem-to-mix ratios close to the real MUSDB18 excerpts: vocals about −3 LU,
drums −6, bass −8). Version A is B with :data:`DEMO_PERTURBATION_DB` applied — the imbalance the
producer is to fix; the manifest spells out the moves that undo it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy.signal import butter, iirpeak, lfilter, sosfilt

from faderwise.tools.audio_io import write_audio
from faderwise.tools.json_files import write_json
from faderwise.tools.loudness import integrated_loudness
from faderwise.tools.outputs import output_folder
from faderwise.tools.stems import StemSet, apply_gain

DEMO_RATE = 44_100
TEMPO_BPM = 96.0
BEATS_PER_BAR = 4
BARS = 12
BAR_S = BEATS_PER_BAR * 60.0 / TEMPO_BPM  # 2.5 s
# A minor: Am, F, C, G as MIDI notes of the chord (root position, around middle C).
CHORDS = (("Am", (57, 60, 64)), ("F", (53, 57, 60)), ("C", (48, 52, 55)), ("G", (55, 59, 62)))
# Integrated loudness of each stem in the balanced Version B, LUFS.
BALANCE_LUFS: Mapping[str, float] = {
    "vocals": -19.0, "drums": -21.5, "bass": -24.0, "keys": -26.0, "guitar": -25.0,
}
DEMO_PERTURBATION_DB: Mapping[str, float] = {"vocals": 4.0, "drums": -3.0}
"""Gain applied to the balanced B stems to make Version A (dB)."""
# Vocal melody: (bar, beat, length in beats, MIDI note, vowel); rests between phrases.
MELODY = (
    (2, 0.0, 1.5, 64, "a"), (2, 1.5, 0.5, 62, "e"), (2, 2.0, 2.0, 60, "o"),
    (3, 0.0, 1.0, 60, "a"), (3, 1.0, 1.0, 62, "i"), (3, 2.0, 1.5, 64, "a"),
    (4, 0.0, 1.5, 67, "o"), (4, 1.5, 0.5, 64, "e"), (4, 2.0, 2.0, 62, "a"),
    (5, 0.0, 1.0, 62, "i"), (5, 1.0, 1.0, 60, "a"), (5, 2.0, 1.5, 59, "o"),
    (6, 0.0, 1.0, 69, "a"), (6, 1.0, 1.0, 67, "e"), (6, 2.0, 2.0, 64, "a"),
    (7, 0.0, 1.5, 65, "o"), (7, 1.5, 0.5, 64, "i"), (7, 2.0, 2.0, 60, "a"),
    (8, 0.0, 1.0, 67, "a"), (8, 1.0, 1.0, 69, "e"), (8, 2.0, 2.0, 72, "a"),
    (9, 0.0, 1.5, 71, "o"), (9, 1.5, 0.5, 67, "e"), (9, 2.0, 2.0, 67, "a"),
)
# Vowel formants (Hz, bandwidth Hz, gain): a rough adult voice after Peterson & Barney.
VOWELS = {
    "a": ((730, 90, 1.0), (1090, 110, 0.5), (2440, 170, 0.25)),
    "e": ((530, 60, 1.0), (1840, 100, 0.45), (2480, 150, 0.3)),
    "i": ((390, 50, 1.0), (2300, 100, 0.35), (3000, 200, 0.3)),
    "o": ((570, 70, 1.0), (840, 80, 0.6), (2410, 170, 0.15)),
}


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def synthesize_demo_song(*, seed: int = 0, bars: int = BARS, rate: int = DEMO_RATE) -> StemSet:
    """The balanced demo stem set (Version B): five stereo float32 stems at ``rate`` Hz.

    Deterministic for a given ``seed``; ``bars`` may exceed 12 (the 12-bar song repeats), which the
    benchmark uses for a 3-minute song.
    """
    rng = np.random.default_rng(seed)
    samples = int(round(bars * BAR_S * rate))
    raw = {
        "drums": _drums(rng, samples, rate, bars),
        "bass": _bass(samples, rate, bars),
        "keys": _keys(rng, samples, rate, bars),
        "guitar": _guitar(rng, samples, rate, bars),
        "vocals": _vocals(rng, samples, rate, bars),
    }
    # A stem that never plays in a short excerpt (``bars`` < 12) stays silent rather than ∞ dB up.
    loudness = {name: integrated_loudness(audio, rate) for name, audio in raw.items()}
    stems = {
        name: apply_gain(audio, BALANCE_LUFS[name] - loudness[name]) if np.isfinite(loudness[name]) else audio
        for name, audio in raw.items()
    }
    return StemSet(stems=stems, rate=rate)


def write_demo(
    out: str | os.PathLike[str], *, seed: int = 0, perturbation_db: Mapping[str, float] = DEMO_PERTURBATION_DB,
    force: bool = False,
) -> Path:
    """Write the demo as ``out/version_a/*.wav``, ``out/version_b/*.wav`` and ``out/manifest.json``.

    The folder is built under a temporary name and renamed into place; an existing ``out`` is
    replaced only with ``force``.
    """
    balanced = synthesize_demo_song(seed=seed)
    unbalanced = balanced.with_gains(perturbation_db)
    with output_folder(out, kind="demo", force=force) as folder:
        for version, stem_set in (("version_a", unbalanced), ("version_b", balanced)):
            (folder / version).mkdir()
            for name, audio in stem_set.stems.items():
                write_audio(folder / version / f"{name}.wav", audio, stem_set.rate, subtype="PCM_24")
        write_json(folder / "manifest.json", demo_manifest(seed=seed, perturbation_db=perturbation_db))
    return Path(out)


def ensure_demo(folder: str | os.PathLike[str]) -> Path:
    """The demo in ``folder``, written there first if it is missing or incomplete."""
    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        write_demo(folder, force=folder.exists())
    return folder


def describe_perturbation(perturbation_db: Mapping[str, float] = DEMO_PERTURBATION_DB) -> str:
    """"vocals +4 dB, drums -3 dB": how Version A differs from B."""
    return ", ".join(f"{stem} {db:+g} dB" for stem, db in perturbation_db.items())


def demo_manifest(*, seed: int, perturbation_db: Mapping[str, float]) -> dict[str, object]:
    """What the demo folder holds and how Version A was made from Version B."""
    return {
        "format": "faderwise.demo/1",
        "description": "Procedural pop-rock song: 96 BPM, A minor, Am-F-C-G, 12 bars (30 s).",
        "seed": seed,
        "sample_rate": DEMO_RATE,
        "duration_s": BARS * BAR_S,
        "stems": list(BALANCE_LUFS),
        "version_a": "version_a",
        "version_b": "version_b",
        "balance_lufs_b": dict(BALANCE_LUFS),
        "perturbation_db": {
            "meaning": "gain applied to the balanced Version B stems to make Version A",
            **{stem: float(db) for stem, db in perturbation_db.items()},
        },
        "expected_moves": [
            {"stem": stem, "delta_db": -float(db)} for stem, db in perturbation_db.items()
        ],
        "sections": {"intro": [0.0, 2 * BAR_S], "verse": [2 * BAR_S, 6 * BAR_S],
                     "chorus": [6 * BAR_S, 10 * BAR_S], "outro": [10 * BAR_S, 12 * BAR_S]},
    }


# --- instruments -------------------------------------------------------------------------------

def _beat_s(bar: int, beat: float) -> float:
    return bar * BAR_S + beat * 60.0 / TEMPO_BPM


def _chord_of_bar(bar: int) -> tuple[int, ...]:
    return CHORDS[bar % len(CHORDS)][1]


def _add(track: np.ndarray, start_s: float, sound: np.ndarray, rate: int, gains: tuple[float, float]) -> None:
    """Mix a mono ``sound`` into stereo ``track`` at ``start_s`` with per-channel ``gains``."""
    start = int(round(start_s * rate))
    if start >= track.shape[1]:
        return
    sound = sound[: track.shape[1] - start]
    track[0, start : start + sound.size] += gains[0] * sound
    track[1, start : start + sound.size] += gains[1] * sound


def _pan(position: float) -> tuple[float, float]:
    """Constant-power pan gains for ``position`` in [−1 (left), 1 (right)]."""
    angle = (position + 1.0) * np.pi / 4.0
    return float(np.cos(angle) * np.sqrt(2)), float(np.sin(angle) * np.sqrt(2))


def _saw(frequency: np.ndarray | float, samples: int, rate: int, *, phase: float = 0.0) -> np.ndarray:
    """Band-limited sawtooth (PolyBLEP) in [−1, 1]; ``frequency`` in Hz, constant or per sample."""
    increment = np.broadcast_to(np.asarray(frequency, dtype=np.float64) / rate, (samples,))
    ramp = (phase + np.cumsum(increment)) % 1.0
    saw = 2.0 * ramp - 1.0
    # PolyBLEP: smooth the discontinuity within one sample either side of each wrap.
    after = ramp < increment
    t = ramp[after] / increment[after]
    saw[after] -= t + t - t * t - 1.0
    before = ramp > 1.0 - increment
    t = (ramp[before] - 1.0) / increment[before]
    saw[before] -= t * t + t + t + 1.0
    return saw


def _saturate(track: np.ndarray, drive: float) -> np.ndarray:
    """Soft clipping (tanh) after normalising the peak: tames the crest factor as bus compression
    or an amp would (a dry synthetic kick or pluck is far peakier than a produced stem)."""
    peak = float(np.max(np.abs(track)))
    return np.tanh(drive * track / peak) / np.tanh(drive) if peak > 0 else track


def _envelope(samples: int, rate: int, *, attack_s: float, decay_s: float) -> np.ndarray:
    """Linear attack, then exponential decay with time constant ``decay_s``."""
    t = np.arange(samples) / rate
    return np.minimum(t / attack_s, 1.0) * np.exp(-np.maximum(t - attack_s, 0.0) / decay_s)


def _drums(rng: np.random.Generator, samples: int, rate: int, bars: int) -> np.ndarray:
    track = np.zeros((2, samples))
    t = np.arange(int(0.5 * rate)) / rate
    sweep = 50.0 + 110.0 * np.exp(-t / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / rate) * np.exp(-t / 0.3)
    kick[: int(0.002 * rate)] += rng.uniform(-0.2, 0.2, int(0.002 * rate))  # beater click
    snare_noise = sosfilt(butter(2, [1200, 7000], "bandpass", fs=rate, output="sos"),
                          rng.standard_normal(t.size)) * np.exp(-t / 0.09)
    snare = 0.8 * snare_noise + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
    hat_filter = butter(4, 7500, "highpass", fs=rate, output="sos")
    for bar in range(bars):
        for beat in (0.0, 2.0, 2.5) if bar % 2 else (0.0, 2.0):
            _add(track, _beat_s(bar, beat), kick, rate, _pan(0.0))
        for beat in (1.0, 3.0):
            _add(track, _beat_s(bar, beat), snare * rng.uniform(0.9, 1.0), rate, _pan(0.05))
        for eighth in range(8):
            open_hat = eighth == 7 and bar % 4 == 3
            decay = 0.25 if open_hat else 0.035
            hat = sosfilt(hat_filter, rng.standard_normal(int(0.3 * rate))) * np.exp(-t[: int(0.3 * rate)] / decay)
            accent = 0.12 if eighth % 2 == 0 else 0.07
            _add(track, _beat_s(bar, eighth / 2), accent * hat, rate, _pan(0.35))
    return _saturate(track, 0.5).astype(np.float32)


def _bass(samples: int, rate: int, bars: int) -> np.ndarray:
    track = np.zeros((2, samples))
    lowpass = butter(2, 700, "lowpass", fs=rate, output="sos")
    note_s = 60.0 / TEMPO_BPM / 2.0
    for bar in range(bars):
        root = _chord_of_bar(bar)[0] - 24  # two octaves below the chord: A1 = 55 Hz … G2
        for eighth in range(8):
            note = root + (12 if eighth == 6 else 0)
            length = int(note_s * 0.92 * rate)
            frequency = midi_to_hz(note)
            tone = sosfilt(lowpass, _saw(frequency, length, rate)) + 0.8 * np.sin(
                2 * np.pi * frequency * np.arange(length) / rate)
            tone *= _envelope(length, rate, attack_s=0.004, decay_s=0.35)
            tone[-64:] *= np.linspace(1.0, 0.0, 64)
            _add(track, _beat_s(bar, eighth / 2), tone, rate, _pan(0.0))
    return track.astype(np.float32)


def _keys(rng: np.random.Generator, samples: int, rate: int, bars: int) -> np.ndarray:
    track = np.zeros((2, samples))
    lowpass = butter(2, 1800, "lowpass", fs=rate, output="sos")
    length = int(BAR_S * rate)
    swell = np.minimum(np.arange(length) / (0.25 * rate), 1.0) * np.minimum(
        (length - np.arange(length)) / (0.15 * rate), 1.0)
    for bar in range(bars):
        for channel, detune in ((0, -0.08), (1, 0.08)):  # detuned per side: a wide pad
            voice = sum(
                _saw(midi_to_hz(note + detune), length, rate, phase=rng.uniform()) for note in _chord_of_bar(bar)
            )
            track[channel, int(bar * BAR_S * rate) : int(bar * BAR_S * rate) + length] += (
                sosfilt(lowpass, voice) * swell)[: samples - int(bar * BAR_S * rate)]
    return track.astype(np.float32)


def _pluck(frequency: float, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Karplus–Strong plucked string, computed a period at a time (vectorised over the period)."""
    period = max(int(round(rate / frequency)), 2)
    periods = int(seconds * rate / period) + 2
    out = np.zeros(periods * period)
    # A soft pick: low-passed noise as the initial string shape, less spiky than white noise.
    out[:period] = np.convolve(rng.uniform(-1.0, 1.0, period), np.ones(4) / 4.0, mode="same")
    loss = 0.996
    for k in range(1, periods):
        previous = out[(k - 1) * period - 1 : k * period] if k > 1 else np.concatenate([[0.0], out[:period]])
        out[k * period : (k + 1) * period] = loss * 0.5 * (previous[1:] + previous[:-1])
    return out[: int(seconds * rate)]


def _guitar(rng: np.random.Generator, samples: int, rate: int, bars: int) -> np.ndarray:
    track = np.zeros((2, samples))
    body = butter(2, [90, 5000], "bandpass", fs=rate, output="sos")
    for bar in range(bars):
        if bar % BARS < 6 or bar % BARS >= 10:  # the guitar plays in the chorus only
            continue
        chord = _chord_of_bar(bar)
        voicing = (chord[0] - 12, chord[1] - 12, chord[2] - 12, chord[0], chord[1], chord[2])
        for beat, down in ((0.0, True), (1.5, False), (2.0, True), (3.0, True), (3.5, False)):
            strings = voicing if down else voicing[::-1]
            for index, note in enumerate(strings):
                pluck = _pluck(midi_to_hz(note), 0.9, rate, rng) * (0.8 if down else 0.55)
                pluck *= np.minimum((pluck.size - np.arange(pluck.size)) / (0.05 * rate), 1.0)
                _add(track, _beat_s(bar, beat) + 0.012 * index, sosfilt(body, pluck), rate, _pan(-0.6))
    return _saturate(track, 3.0).astype(np.float32)


def _vocals(rng: np.random.Generator, samples: int, rate: int, bars: int) -> np.ndarray:
    frequency = np.full(samples, midi_to_hz(60))
    loudness = np.zeros(samples)
    vowel_weight = {vowel: np.zeros(samples) for vowel in VOWELS}
    t_all = np.arange(samples) / rate
    for repeat in range(-(-bars // BARS)):
        for bar, beat, beats, note, vowel in MELODY:
            start = int(round(_beat_s(bar + repeat * BARS, beat) * rate))
            stop = min(start + int(round(beats * 60.0 / TEMPO_BPM * rate)), samples)
            if start >= samples:
                continue
            t = t_all[: stop - start]
            # Vibrato (5.5 Hz, ±35 cents) fades in after 150 ms, as a held note settles.
            depth = 0.35 * np.clip((t - 0.15) / 0.3, 0.0, 1.0)
            frequency[start:stop] = midi_to_hz(note + depth * np.sin(2 * np.pi * 5.5 * t))
            shape = np.minimum(t / 0.04, 1.0) * np.minimum((t[-1] - t + 1e-3) / 0.08, 1.0)
            loudness[start:stop] = shape * (0.8 + 0.2 * np.sin(np.pi * t / max(t[-1], 1e-3)))
            vowel_weight[vowel][start:stop] = 1.0
    # Glide between notes: smooth the pitch track over 30 ms.
    smooth = int(0.03 * rate)
    frequency = np.convolve(np.pad(frequency, smooth, mode="edge"), np.ones(smooth) / smooth, mode="same")[smooth:-smooth]
    glottal = sosfilt(butter(1, 900, "lowpass", fs=rate, output="sos"), _saw(frequency, samples, rate))
    voice = np.zeros(samples)
    for vowel, formants in VOWELS.items():
        if not vowel_weight[vowel].any():
            continue
        shaped = sum(gain * lfilter(*iirpeak(hz, hz / bandwidth, fs=rate), glottal) for hz, bandwidth, gain in formants)
        voice += shaped * vowel_weight[vowel]
    breath = sosfilt(butter(2, [2500, 9000], "bandpass", fs=rate, output="sos"), rng.standard_normal(samples))
    voice = (voice + 0.04 * breath) * loudness
    # A touch of room: a 23 ms echo on the right at −14 dB keeps the stem centred but not bone dry.
    echo = np.concatenate([np.zeros(int(0.023 * rate)), voice])[:samples]
    return np.stack([voice, voice + 0.2 * echo]).astype(np.float32)
