"""The measured facts behind a move: levels, stem-to-backing ratios, when a stem is most buried or
most exposed, and the bands where its backing covers it.

Masking is reported as evidence for a fader move only — which part of the spectrum the backing
competes in — never as a reason for EQ.
"""

from __future__ import annotations

import numpy as np

from faderwise.tools.analysis import StemMeasurement, json_number

IMPORTANT_BAND_RANGE_DB = 15.0  # bands within this of a stem's strongest band carry it
MASKING_MARGIN_DB = 0.0  # the backing at or above the stem in a band covers it there
MAX_MASKED_RANGES = 2


def format_time(seconds: float) -> str:
    """``83.4`` → "1:23"."""
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def format_band_range(labels: list[str]) -> str:
    """["2k", "2.5k", "3.15k", "4k"] → "2–4 kHz"; ["100", "125"] → "100–125 Hz"."""
    def hz(label: str) -> float:
        return float(label[:-1]) * 1000 if label.endswith("k") else float(label)

    low, high = hz(labels[0]), hz(labels[-1])
    if high >= 1000:
        span = f"{low / 1000:g}–{high / 1000:g}" if len(labels) > 1 else f"{high / 1000:g}"
        return f"{span} kHz"
    return f"{low:g}–{high:g} Hz" if len(labels) > 1 else f"{high:g} Hz"


def extreme_moments(stem: StemMeasurement) -> dict[str, object]:
    """Where, in short-term loudness (3 s windows), the stem sits lowest and highest against its
    backing while it plays: ``{"most_buried_s": [start, end], "most_buried_lu": …, "most_exposed_s": …}``."""
    stem_curve, backing_curve = stem.stem.short_term, stem.backing.short_term
    with np.errstate(invalid="ignore"):  # silent in both (−inf − −inf): no ratio, filtered below
        ratio = stem_curve.lufs - backing_curve.lufs
    centres = stem_curve.times_s
    playing = np.isfinite(ratio) & stem.stem.active_at(centres)
    if not np.any(playing):
        return {}
    candidates = np.flatnonzero(playing)
    buried, exposed = candidates[np.argmin(ratio[candidates])], candidates[np.argmax(ratio[candidates])]
    half = stem_curve.window_s / 2
    return {
        "most_buried_s": [round(max(centres[buried] - half, 0.0), 1), round(centres[buried] + half, 1)],
        "most_buried_lu": json_number(float(ratio[buried]), 1),
        "most_exposed_s": [round(max(centres[exposed] - half, 0.0), 1), round(centres[exposed] + half, 1)],
        "most_exposed_lu": json_number(float(ratio[exposed]), 1),
    }


def masking(stem_a: StemMeasurement, stem_b: StemMeasurement | None = None) -> list[dict[str, object]]:
    """Bands that carry the stem where, in A, its backing is at least as loud as the stem, over the
    frames where the stem plays. Each range: ``{"bands", "labels", "backing_over_stem_a_db",
    "backing_over_stem_b_db"}`` (the B margin over the same bands, when a reference is given)."""
    frames = stem_a.stem.band_frames_active()
    if not frames.any():
        return []
    stem_levels = stem_a.stem.bands.level_db(frames)
    backing_levels = stem_a.backing.bands.level_db(frames)
    if not np.isfinite(stem_levels).any():
        return []
    important = stem_levels >= np.nanmax(stem_levels[np.isfinite(stem_levels)]) - IMPORTANT_BAND_RANGE_DB
    with np.errstate(invalid="ignore"):
        margin = backing_levels - stem_levels
    covered = important & np.isfinite(margin) & (margin >= MASKING_MARGIN_DB)
    margin_b = None
    if stem_b is not None:
        frames_b = stem_b.stem.band_frames_active()
        if frames_b.any():
            with np.errstate(invalid="ignore"):
                margin_b = stem_b.backing.bands.level_db(frames_b) - stem_b.stem.bands.level_db(frames_b)
    labels = list(stem_a.stem.bands.labels)
    ranges = []
    padded = np.concatenate([[False], covered, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1]).reshape(-1, 2)
    for start, stop in edges:
        span = slice(int(start), int(stop))
        entry: dict[str, object] = {
            "bands": format_band_range(labels[span]),
            "labels": labels[span],
            "backing_over_stem_a_db": json_number(float(np.mean(margin[span])), 1),
        }
        if margin_b is not None and np.all(np.isfinite(margin_b[span])):
            entry["backing_over_stem_b_db"] = json_number(float(np.mean(margin_b[span])), 1)
        ranges.append(entry)
    # The widest ranges first: they are what a listener hears as the stem being covered.
    ranges.sort(key=lambda entry: -len(entry["labels"]))  # type: ignore[arg-type]
    return ranges[:MAX_MASKED_RANGES]


def stem_evidence(name: str, stem_a: StemMeasurement, stem_b: StemMeasurement | None) -> dict[str, object]:
    """JSON-ready facts about one stem in A (and B)."""
    facts: dict[str, object] = {
        "level_a_lufs": json_number(stem_a.stem.integrated_lufs, 1),
        "stem_to_backing_a_lu": json_number(stem_a.stem_to_backing_lu, 1),
        "stem_to_mix_a_lu": json_number(stem_a.stem_to_mix_lu, 1),
        "silent_a": stem_a.stem.silent,
    }
    if stem_b is not None:
        facts.update({
            "level_b_lufs": json_number(stem_b.stem.integrated_lufs, 1),
            "stem_to_backing_b_lu": json_number(stem_b.stem_to_backing_lu, 1),
            "stem_to_mix_b_lu": json_number(stem_b.stem_to_mix_lu, 1),
            "silent_b": stem_b.stem.silent,
        })
    facts.update(extreme_moments(stem_a))
    facts["masking"] = masking(stem_a, stem_b)
    return facts
