"""Version A next to Version B: the same measurements, stem by stem, and their differences.

Differences are always ``A − B`` (positive: louder in A than in the reference). This module
reports levels; turning them into gain moves is the advisor's job.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from faderwise.tools.analysis import (
    ProgressCallback,
    StemMeasurement,
    StemSetAnalysis,
    StemSource,
    analysis_steps,
    analyze_stem_set,
    json_number,
    level_difference,
    side_by_side,
)
from faderwise.tools.errors import StemSetError
from faderwise.tools.workers import both


def match_reference(version_a: StemSource, version_b: StemSource) -> tuple[dict[str, str], tuple[str, ...]]:
    """Pair every stem of A with the stem of the same name in B (case-insensitive).

    Returns:
        ``(pairs, warnings)``: A name → B name, and a line for each B stem A does not have.

    Raises:
        StemSetError: a stem of A has no counterpart in B.
    """
    pairs = {}
    for name in version_a.names:
        try:
            pairs[name] = version_b.resolve(name)
        except StemSetError as exc:
            raise StemSetError(f"reference {exc}") from exc
    extra = [name for name in version_b.names if name not in pairs.values()]
    warnings = tuple(
        f"reference {version_b.label}: stem {name!r} has no counterpart in {version_a.label}; "
        "it counts in the reference's backings only"
        for name in extra
    )
    return pairs, warnings


@dataclass(frozen=True)
class StemComparison:
    """One stem in A and in B."""

    name: str
    a: StemMeasurement
    b: StemMeasurement

    @property
    def loudness_diff_lu(self) -> float:
        """Stem loudness, A − B, LU."""
        return level_difference(self.a.stem.integrated_lufs, self.b.stem.integrated_lufs)

    @property
    def stem_to_backing_diff_lu(self) -> float:
        """Stem-to-backing ratio, A − B, LU: how much further forward the stem sits in A."""
        return level_difference(self.a.stem_to_backing_lu, self.b.stem_to_backing_lu)

    @property
    def stem_to_mix_diff_lu(self) -> float:
        """Stem-to-mix ratio, A − B, LU."""
        return level_difference(self.a.stem_to_mix_lu, self.b.stem_to_mix_lu)

    def to_json(self) -> dict[str, object]:
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "a_minus_b": {
                "integrated_lu": json_number(self.loudness_diff_lu),
                "stem_to_backing_lu": json_number(self.stem_to_backing_diff_lu),
                "stem_to_mix_lu": json_number(self.stem_to_mix_diff_lu),
            },
        }


@dataclass(frozen=True)
class Comparison:
    """Analyses of A and B with per-stem differences."""

    a: StemSetAnalysis
    b: StemSetAnalysis
    stems: dict[str, StemComparison]
    warnings: tuple[str, ...] = ()

    def all_warnings(self) -> tuple[str, ...]:
        """Warnings of A and B (loading, clipping), then what pairing the stems found."""
        return (*self.a.all_warnings(), *self.b.all_warnings(), *self.warnings)

    @property
    def mix_diff_lu(self) -> float:
        """Mix loudness, A − B, LU."""
        return level_difference(self.a.mix.integrated_lufs, self.b.mix.integrated_lufs)

    def to_json(self) -> dict[str, object]:
        return {
            "version_a": {k: v for k, v in self.a.to_json().items() if k != "stems"},
            "version_b": {k: v for k, v in self.b.to_json().items() if k != "stems"},
            "mix_a_minus_b_lu": json_number(self.mix_diff_lu),
            "warnings": list(self.all_warnings()),
            "stems": {name: stem.to_json() for name, stem in self.stems.items()},
        }


def compare_stem_sets(
    version_a: StemSource, version_b: StemSource, *, on_progress: ProgressCallback | None = None, workers: int = 1,
) -> Comparison:
    """Measure A and B and put them side by side.

    The stems are paired first (:func:`match_reference`), so a missing reference stem fails
    before any measuring. ``on_progress`` sees one sequence of steps over both versions, each
    step named "A: …" or "B: …". ``workers``: processes measuring at once (:func:`analyze_stem_set`).

    Raises:
        StemSetError: a stem of A is missing from B.
    """
    pairs, warnings = match_reference(version_a, version_b)
    analysis_a, analysis_b = analyze_pair(version_a, version_b, on_progress=on_progress, workers=workers)
    return compare_analyses(analysis_a, analysis_b, pairs, warnings=warnings)


def analyze_pair(
    version_a: StemSource, version_b: StemSource, *, on_progress: ProgressCallback | None = None, workers: int = 1,
    true_peaks: bool = True,
) -> tuple[StemSetAnalysis, StemSetAnalysis]:
    """Measure A and B (:func:`analyze_stem_set`): one after the other when either is big enough
    for worker processes, else side by side on two threads when there are ``workers``.
    ``on_progress`` sees one count of steps over both, each named "A: …" or "B: …"."""
    total = analysis_steps(version_a) + analysis_steps(version_b)
    lock = threading.Lock()
    done = 0

    def report(_done: int, _total: int, what: str) -> None:
        nonlocal done
        with lock:
            done += 1
            if on_progress is not None:
                on_progress(done, total, what)

    return both(lambda: analyze_stem_set(version_a, on_progress=report, workers=workers, label="A",
                                         true_peaks=true_peaks),
                lambda: analyze_stem_set(version_b, on_progress=report, workers=workers, label="B",
                                         true_peaks=true_peaks),
                concurrently=side_by_side(version_a, version_b, workers))


def compare_analyses(
    analysis_a: StemSetAnalysis, analysis_b: StemSetAnalysis, pairs: Mapping[str, str],
    *, warnings: tuple[str, ...] = (),
) -> Comparison:
    """Put measurements already made side by side; ``pairs`` maps each A stem to its B stem."""
    stems = {
        name: StemComparison(name=name, a=analysis_a.stems[name], b=analysis_b.stems[name_b])
        for name, name_b in pairs.items()
    }
    return Comparison(a=analysis_a, b=analysis_b, stems=stems, warnings=warnings)
