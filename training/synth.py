"""Dataset synthesis: balanced songs → (Version A, Version B) pairs → A/B bundles with explanations.

For each song, ``pairs_per_song`` perturbations are drawn (1–3 stems, 1–12 dB, either sign; the
config sets the ranges). Version B is the balanced song; Version A is B with those gains. For
each target stem (every stem, or only the perturbed ones) an item is written::

    <out>/items/<item id>/
        bundle/             target A, backing A, target B, backing B (≤ 30 s where the target
                            plays) as 16 kHz mono 16-bit FLAC in bundle/alm/ (compact bundle)
        mix_a.flac          the A-only variant for single-mix training: A's mix, same window,
                            16 kHz mono
        item.json           the manifest record

Every clip of an item gets the same trim (``trim_db``, ≤ 0) so the loudest one peaks just under
full scale: 16-bit files cannot hold more, and one gain for all keeps every level difference.
``<out>/manifest.jsonl`` lists every item (song, stems, gains, seed, difficulty, split, the
target move, the differential and single-mix explanations). Splits are by song, so no song's
audio is in two splits.

Deterministic: an item's content depends only on the config's seed, the song and the item's
place, never on which items were already done or on the number of workers. Resumable: items are
written whole (a folder renamed into place), finished items are skipped, and the manifest is
rebuilt from the items at the end, so a killed run continues without duplicates. Songs are
spread over local processes, or over a Ray cluster with ``executor: ray``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faderwise.advisor.measured import level_difference
from faderwise.tools.analysis import json_number, measure
from faderwise.tools.audio_io import write_audio
from faderwise.tools.bundle import ALM_RATE, MAX_CLIP_S, ABBundle, alm_clip, make_bundle, write_bundle
from faderwise.tools.demo_song import synthesize_demo_song
from faderwise.tools.errors import FaderwiseError, MissingDependencyError
from faderwise.tools.input_files import CONFIG_LIMIT_BYTES, exists_as_file
from faderwise.tools.json_files import read_json, read_yaml, write_json
from faderwise.tools.loudness import integrated_loudness
from faderwise.tools.outputs import claim_run_folder, clean_leftovers, output_folder, slug, write_text
from faderwise.tools.stems import StemSet, apply_gain
from faderwise.training.datasets import (
    NAMED_ROOTS,
    RENDER_KEYS,
    RENDERED_KINDS,
    SPLITS,
    DatasetError,
    Song,
    assign_splits,
    list_songs,
    render_pairs,
    stable_seed,
)
from faderwise.training.perturb import random_perturbation
from faderwise.training.templates import explanation, template_count

MANIFEST_FORMAT = "faderwise.synth-item/1"
EXECUTORS = ("local", "ray")
HEADROOM_CEILING = 0.98  # 16-bit clips: the loudest sample of an item just under full scale


class SynthConfigError(FaderwiseError):
    """A synthesis config that cannot be run (the message names the file and the key)."""


@dataclass(frozen=True)
class SynthConfig:
    """What to synthesise. Paths are absolute (relative ones in the file start at the file).

    Attributes:
        out: the dataset folder.
        datasets: ``{"kind": "musdb18hq"|"musdb18"|"stem-folders", "root": PATH}`` or
            ``{"kind": "procedural", "songs": N, "bars": B, "first_seed": S}`` (the demo
            generator, N seeds from S, 0 by default). A dataset may add :data:`DATASET_KEYS`:
            ``limit`` (the first N of a stable pick across a dataset read from a root), ``skip``
            (start that pick past its first N: the songs an earlier recipe's ``limit`` never reached),
            ``material`` (the name its items record, for per-material figures), ``split``
            (every song in that split) and ``optional`` (true: a dataset that is not here is
            left out with one line instead of stopping the run).
        seed: the run's seed.
        pairs_per_song: perturbations per song.
        offset_db: ``(min, max)`` magnitude of a perturbation gain, dB.
        perturbed_stems: ``(min, max)`` stems perturbed per pair.
        targets: ``"all"`` stems get a bundle, or only the ``"perturbed"`` ones.
        window_s: longest clip, seconds (30: Qwen2-Audio's encoder limit).
        val, test: split fractions by song.
        workers: local processes.
        executor: ``"local"`` or ``"ray"``.
    """

    out: Path
    datasets: tuple[Mapping[str, Any], ...]
    seed: int = 0
    pairs_per_song: int = 4
    offset_db: tuple[float, float] = (1.0, 12.0)
    perturbed_stems: tuple[int, int] = (1, 3)
    targets: str = "all"
    window_s: float = MAX_CLIP_S
    val: float = 0.1
    test: float = 0.1
    workers: int = 1
    executor: str = "local"


def read_config(path: str | os.PathLike[str]) -> SynthConfig:
    """Parse a synthesis config (YAML).

    Raises:
        SynthConfigError: unreadable file, unknown key, or a value out of range.
    """
    path = Path(path)
    payload = read_yaml(path, error=SynthConfigError, missing="no such config", limit=CONFIG_LIMIT_BYTES,
                        what="a config file")
    if not isinstance(payload, dict):
        raise SynthConfigError(f"{path}: expected a mapping with 'out' and 'datasets'")
    known = {f for f in SynthConfig.__dataclass_fields__}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise SynthConfigError(f"{path}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if not isinstance(payload.get("out"), str) or not isinstance(payload.get("datasets"), list) or not payload["datasets"]:
        raise SynthConfigError(f"{path}: needs 'out' (a folder) and 'datasets' (a non-empty list)")
    datasets = []
    for index, entry in enumerate(payload["datasets"], start=1):
        if not isinstance(entry, dict) or "kind" not in entry:
            raise SynthConfigError(f"{path}: datasets[{index}] needs a 'kind'")
        entry = dict(entry)
        if entry["kind"] == "procedural":
            if not isinstance(entry.get("songs"), int) or entry["songs"] < 1:
                raise SynthConfigError(f"{path}: datasets[{index}]: procedural needs 'songs', a count ≥ 1")
            if not isinstance(entry.get("first_seed", 0), int) or entry.get("first_seed", 0) < 0:
                raise SynthConfigError(f"{path}: datasets[{index}]: first_seed must be a whole number ≥ 0")
        elif entry["kind"] == "music21" and entry.get("root", "corpus") == "corpus":
            entry["root"] = "corpus"  # the corpus inside the music21 wheel
        elif (entry["kind"], entry.get("root")) in NAMED_ROOTS:
            pass  # material inside an installed package (the stempeg wheel's MUSDB18 excerpt)
        elif not isinstance(entry.get("root"), str):
            raise SynthConfigError(f"{path}: datasets[{index}]: {entry['kind']} needs 'root', a folder")
        else:
            entry["root"] = str((path.parent / entry["root"]).resolve())
        allowed = {"kind", "root", "songs", "bars", "first_seed", *DATASET_KEYS,
                   *(RENDER_KEYS if entry["kind"] in RENDERED_KINDS else ())}
        extra = sorted(set(entry) - allowed)
        if extra:
            raise SynthConfigError(f"{path}: datasets[{index}]: unknown key {', '.join(extra)} for {entry['kind']}")
        problem = dataset_key_problem(entry)
        if problem is not None:
            raise SynthConfigError(f"{path}: datasets[{index}]: {problem}")
        datasets.append(entry)
    options = {key: value for key, value in payload.items() if key not in ("out", "datasets")}
    for key in ("offset_db", "perturbed_stems"):
        if key in options:
            value = options[key]
            if not isinstance(value, list) or len(value) != 2 or value[0] > value[1] or value[0] <= 0:
                raise SynthConfigError(f"{path}: {key} must be [low, high] with 0 < low <= high, got {value!r}")
            options[key] = tuple(value)
    if options.get("targets", "all") not in ("all", "perturbed"):
        raise SynthConfigError(f"{path}: targets must be all or perturbed")
    if options.get("executor", "local") not in EXECUTORS:
        raise SynthConfigError(f"{path}: executor must be one of {', '.join(EXECUTORS)}")
    try:
        return SynthConfig(out=(path.parent / payload["out"]).resolve(), datasets=tuple(datasets), **options)
    except TypeError as exc:
        raise SynthConfigError(f"{path}: {exc}") from exc


DATASET_KEYS = ("limit", "skip", "material", "split", "optional")
"""Keys any dataset of a config may have, whatever its kind (see :class:`SynthConfig`)."""


def dataset_key_problem(entry: Mapping[str, Any]) -> str | None:
    """What is wrong with a dataset's :data:`DATASET_KEYS` and render options, or None."""
    for key in ("limit", "skip"):
        value = entry.get(key, 1 if key == "limit" else 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "limit" else 0):
            return f"{key} must be a whole number ≥ {1 if key == 'limit' else 0}, got {value!r}"
    if "material" in entry and (not isinstance(entry["material"], str) or not entry["material"].strip()):
        return f"material must be a name, got {entry['material']!r}"
    if entry.get("split", "test") not in SPLITS:
        return f"split must be one of {', '.join(SPLITS)}, got {entry['split']!r}"
    if not isinstance(entry.get("optional", False), bool):
        return f"optional must be true or false, got {entry['optional']!r}"
    if entry["kind"] in RENDERED_KINDS:
        try:
            render_pairs({key: entry[key] for key in RENDER_KEYS if key in entry})
        except (FaderwiseError, TypeError) as exc:
            return str(exc)
    return None


PROCEDURAL_BALANCE_DB = 4.0
FAILURES = "failures.jsonl"


@dataclass(frozen=True)
class ProceduralSong(Song):
    """A song from the demo generator (no files): ``seed`` picks the patterns and the balance.

    The generator normalises every stem to the same loudness, so without more the balanced mix
    would be identical in every song and a model that hears only A could learn it by heart. Each
    song's "engineer" therefore sets every stem within ±4 dB of it (:data:`PROCEDURAL_BALANCE_DB`).
    """

    seed: int = 0
    bars: int = 12

    def load(self) -> StemSet:
        song = synthesize_demo_song(seed=self.seed, bars=self.bars)
        rng = np.random.default_rng(stable_seed("balance", self.seed))
        return song.with_gains({name: float(rng.uniform(-PROCEDURAL_BALANCE_DB, PROCEDURAL_BALANCE_DB))
                                for name in song.names})


def dataset_songs(entry: Mapping[str, Any]) -> list[Song]:
    """The songs of one dataset of a config: its stable pick (``skip``, ``limit``), each song
    recording the dataset's ``material`` where it names one.

    Raises:
        DatasetError: the dataset is not there or lacks its layout.
    """
    if entry["kind"] == "procedural":
        bars = int(entry.get("bars", 12))
        first = int(entry.get("first_seed", 0))  # songs a model never heard start past its training seeds
        found: list[Song] = [ProceduralSong(song_id=f"procedural/{seed:04d}", name=f"procedural-{seed:04d}",
                                            path=Path("."), material="procedural", seed=seed, bars=bars)
                             for seed in range(first, first + int(entry["songs"]))]
    else:
        found = list_songs(entry["kind"], entry["root"], **{key: entry[key] for key in RENDER_KEYS if key in entry})
        if "limit" in entry or "skip" in entry:  # a stable pick across the whole dataset, not its first folder
            skip = int(entry.get("skip", 0))
            picked = sorted(found, key=lambda song: stable_seed("pick", song.song_id))
            found = picked[skip:skip + entry["limit"]] if "limit" in entry else picked[skip:]
    if "material" in entry:
        found = [dataclasses.replace(song, material=entry["material"]) for song in found]
    return found


def absent_dataset(entry: Mapping[str, Any]) -> Song:
    """A stand-in song that names a dataset left out (for :data:`FAILURES` and the ``on_failure`` report)."""
    root = str(entry.get("root", ""))
    return Song(song_id=f"{entry['kind']}:{root}", name=str(entry.get("material", entry["kind"])), path=Path(root),
                material=str(entry.get("material", entry["kind"])))


def collect_songs(config: SynthConfig, *, on_absent: Callable[[Song, str], None] | None = None) -> list[Song]:
    """Every song of every dataset in the config, each with its split (the dataset's ``split``
    where it names one). An ``optional`` dataset that is not here is left out: ``on_absent`` is
    called with a stand-in song naming it (:func:`absent_dataset`) and the one line that says why.

    Raises:
        DatasetError: a dataset that is not optional is not there or lacks its layout.
        SynthConfigError: two datasets hold the same song.
    """
    songs: list[Song] = []
    forced: dict[str, str] = {}
    for entry in config.datasets:
        try:
            found = dataset_songs(entry)
        except DatasetError as exc:
            if not entry.get("optional", False):
                raise
            if on_absent:
                on_absent(absent_dataset(entry), f"{exc}; the optional dataset "
                                                 f"{entry.get('material', entry['kind'])!r} is left out")
            continue
        forced.update({song.song_id: entry["split"] for song in found if "split" in entry})
        songs += found
    ids = [song.song_id for song in songs]
    duplicated = sorted({song_id for song_id in ids if ids.count(song_id) > 1})
    if duplicated:
        raise SynthConfigError(f"the same song comes from two datasets: {', '.join(duplicated)}")
    return [dataclasses.replace(song, split=forced.get(song.song_id, song.split))
            for song in assign_splits(songs, val=config.val, test=config.test)]


@dataclass(frozen=True)
class Plan:
    """One song's pairs: ``gains[i]`` made Version A of pair ``i`` from B."""

    song: Song
    gains: tuple[Mapping[str, float], ...] = field(default=())


def plan_song(song: Song, stem_names: Sequence[str], config: SynthConfig) -> Plan:
    """The song's perturbations, drawn from its own seed (independent of the other songs)."""
    rng = np.random.default_rng(stable_seed(config.seed, song.song_id))
    low, high = config.perturbed_stems
    gains = []
    for _ in range(config.pairs_per_song):
        count_max = min(high, len(stem_names))
        drawn = random_perturbation(list(stem_names), rng, max_stems=count_max, min_db=config.offset_db[0],
                                    max_db=config.offset_db[1])
        while len(drawn) < min(low, count_max):  # at least `low` stems
            drawn = random_perturbation(list(stem_names), rng, max_stems=count_max, min_db=config.offset_db[0],
                                        max_db=config.offset_db[1])
        # 0.1 dB steps: the exact gain written in the manifest is the gain applied
        gains.append({name: round(value, 1) for name, value in sorted(drawn.items())})
    return Plan(song=song, gains=tuple(gains))


def item_id(song: Song, pair: int, target: str) -> str:
    return f"{slug(song.song_id)}-p{pair:02d}-{slug(target)}"


def _clip_facts(bundle: Any) -> dict[str, float | None]:
    rate = bundle.rate
    target_a, backing_a = measure(bundle.target_a, rate), measure(bundle.backing_a, rate)
    target_b, backing_b = measure(bundle.target_b, rate), measure(bundle.backing_b, rate)

    def against(stem: Any, backing: Any) -> float | None:
        value = stem.integrated_lufs - backing.integrated_lufs
        return json_number(value, 1) if math.isfinite(value) else None

    measured = level_difference(target_a, target_b)
    return {"stem_to_backing_a_lu": against(target_a, backing_a), "stem_to_backing_b_lu": against(target_b, backing_b),
            "target_a_minus_b_db": json_number(measured.a_minus_b_db, 2)}


def headroom_trim_db(clips: Iterable[np.ndarray], *, ceiling: float = HEADROOM_CEILING) -> float:
    """The gain (dB, ≤ 0) that brings the loudest sample of ``clips`` to ``ceiling``, or 0 when
    they fit: applied to every clip of an item alike, it keeps every level difference."""
    peak = max(float(np.max(np.abs(clip), initial=0.0)) for clip in clips)
    return round(min(0.0, 20 * math.log10(ceiling / peak)), 3) if peak > 0 else 0.0


def trimmed(bundle: ABBundle, gain_db: float) -> ABBundle:
    """``bundle`` with ``gain_db`` applied to all four clips."""
    if gain_db == 0.0:
        return bundle
    return dataclasses.replace(bundle, **{name: apply_gain(audio, gain_db) for name, audio in bundle.clips().items()})


def synth_song(song: Song, config: SynthConfig) -> list[dict[str, Any]]:
    """Write every item of one song that is not written yet; return all its records."""
    items = config.out / "items"
    balanced = song.load()
    # A stem that never plays has no level to move: it is neither perturbed nor a target.
    playing = [name for name in balanced.names
               if math.isfinite(integrated_loudness(balanced.stems[name], balanced.rate))]
    plan = plan_song(song, playing, config)
    records = []
    for pair, gains in enumerate(plan.gains):
        version_a = balanced.with_gains(gains)
        targets = playing if config.targets == "all" else list(gains)
        for target in targets:
            identifier = item_id(song, pair, target)
            folder = items / identifier
            if exists_as_file(folder / "item.json", what="a JSON file"):
                records.append(read_json(folder / "item.json", error=SynthConfigError))  # type: ignore[arg-type]
                continue
            move = 0.0 - gains.get(target, 0.0)  # 0.0 - x: no "-0.0" for an unperturbed stem
            bundle = make_bundle(version_a, balanced, target, max_s=config.window_s, gains_a_db=gains)
            facts = _clip_facts(bundle)
            template = stable_seed(config.seed, identifier) % 1000
            leave = abs(move) < 0.5
            record = {
                "format": MANIFEST_FORMAT, "id": identifier, "song": song.song_id, "split": song.split,
                "material": song.material,
                "source": str(song.path) if not isinstance(song, ProceduralSong) else f"procedural:{song.seed}",
                "stems": balanced.names, "pair": pair, "target": target, "gains_db": dict(gains),
                "moves_db": {name: 0.0 - gains.get(name, 0.0) for name in balanced.names}, "target_move_db": move,
                "difficulty": {"max_offset_db": max(abs(g) for g in gains.values()), "perturbed_stems": len(gains)},
                "seed": config.seed, "window_a_s": list(bundle.window_a_s), "evidence": facts,
                "bundle": f"items/{identifier}/bundle", "mix_a": f"items/{identifier}/mix_a.flac",
                "explanation": explanation(target, move, facts, differential=True,
                                           template=template % template_count(differential=True, leave=leave)),
                "explanation_single_mix": explanation(target, move, facts, differential=False,
                                                      template=template % template_count(differential=False,
                                                                                         leave=leave)),
            }
            mix_a = alm_clip(bundle.target_a + bundle.backing_a, bundle.rate)
            trim_db = headroom_trim_db([mix_a, *(alm_clip(a, bundle.rate) for a in bundle.clips().values())])
            record["trim_db"] = trim_db
            with output_folder(folder, kind="synth-item") as staging:
                write_bundle(trimmed(bundle, trim_db), staging / "bundle", compact=True)
                write_audio(staging / "mix_a.flac", apply_gain(mix_a, trim_db), ALM_RATE, subtype="PCM_16")
                write_json(staging / "item.json", record)
            records.append(record)
    return records


SongResult = tuple[list[dict[str, Any]], str | None]
"""A song's records, and what went wrong with it (None when it went right)."""


def synth_song_or_failure(song: Song, config: SynthConfig) -> SongResult:
    """:func:`synth_song`, or the one line that says why the song could not be used: a song that
    fails (a MIDI file with no notes, a corrupt file) never stops the rest of the synthesis."""
    try:
        return synth_song(song, config), None
    except FaderwiseError as exc:
        return [], str(exc)


def _run_local(songs: Sequence[Song], config: SynthConfig,
               on_song: Callable[[Song, int], None] | None) -> list[SongResult]:
    if config.workers <= 1:
        results = []
        for song in songs:
            results.append(synth_song_or_failure(song, config))
            if on_song:
                on_song(song, len(results[-1][0]))
        return results
    with ProcessPoolExecutor(max_workers=config.workers) as pool:
        futures = [pool.submit(synth_song_or_failure, song, config) for song in songs]
        results = []
        for song, future in zip(songs, futures):
            results.append(future.result())
            if on_song:
                on_song(song, len(results[-1][0]))
        return results


def _run_ray(songs: Sequence[Song], config: SynthConfig,
             on_song: Callable[[Song, int], None] | None) -> list[SongResult]:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("executor: ray needs the ray package: pip install 'ray[default]' "
                                     "(and a cluster, or ray starts a local one)") from exc
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True)
    remote = ray.remote(synth_song_or_failure)
    handles = [remote.remote(song, config) for song in songs]
    results = []
    for song, handle in zip(songs, handles):
        results.append(ray.get(handle))
        if on_song:
            on_song(song, len(results[-1][0]))
    return results


def write_manifest(out: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """``out/manifest.jsonl``, one record per line sorted by id, atomically."""
    return write_text(out / "manifest.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n"
                                                       for r in sorted(records, key=lambda r: r["id"])), force=True)


def synthesize(config: SynthConfig, *, on_song: Callable[[Song, int], None] | None = None,
               on_failure: Callable[[Song, str], None] | None = None,
               limit_songs: int | None = None) -> list[dict[str, Any]]:
    """Run the synthesis (resuming a previous run in the same folder) and write the manifest.
    Songs that cannot be used, and optional datasets that are not here, are left out, each with
    one line in ``out/failures.jsonl``.

    Args:
        on_song: called with each finished song and its number of items (progress).
        on_failure: called with each song left out and why (an absent optional dataset: with
            the stand-in song of :func:`absent_dataset`).
        limit_songs: only the first N songs (a partial run; a later full run completes it).
    """
    absent: list[tuple[Song, str]] = []
    songs = collect_songs(config, on_absent=lambda song, problem: absent.append((song, problem)))[:limit_songs]
    claim_run_folder(config.out, kind="synth", legacy="items",
                     inputs=[entry["root"] for entry in config.datasets
                             if "root" in entry and (entry["kind"], entry["root"]) not in NAMED_ROOTS])
    items = config.out / "items"
    items.mkdir(exist_ok=True)
    clean_leftovers(items)  # staging of items a killed run was writing
    run = _run_ray if config.executor == "ray" else _run_local
    results = run(songs, config, on_song)
    left_out = absent + [(song, problem) for song, (_, problem) in zip(songs, results) if problem is not None]
    failures = [{"song": song.song_id, "source": str(song.path), "problem": problem} for song, problem in left_out]
    for song, problem in left_out:
        if on_failure:
            on_failure(song, problem)
    if failures or (config.out / FAILURES).exists():
        write_text(config.out / FAILURES, "".join(json.dumps(f, sort_keys=True) + "\n" for f in failures), force=True)
    records = [record for song_records, _ in results for record in song_records]
    write_manifest(config.out, records)
    return records
