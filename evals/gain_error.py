"""Gain error: how far an advisor's moves are from the moves that undo a known perturbation.

Every stem of a pair is scored, the moved ones and the ones whose right answer is "leave it"
(truth 0 dB): a learned advisor that proposes a move everywhere is worse than changing nothing,
and only scoring every stem shows it. Besides the error over all stems: the error over the moved
stems, **leave accuracy** (of the stems to leave, the share the advisor left within
:data:`LEAVE_DB`) and the **false-move rate** (of the moves the advisor stated, the share on stems
it should have left).

Scoring uses the *total* correction per stem — its move plus the master (global) offset — because
splitting a change shared by every stem between "balance" and "master" is a convention, while the
level each stem ends up at is not. Where several engineers' mixes give a consensus range for a
stem's move, the error is the distance to that range (0 inside it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from faderwise.advisor.explain import ROUNDING_DB, is_leave
from faderwise.advisor.model import Advice
from faderwise.tools.analysis import json_number

DIRECTION_THRESHOLD_DB = 1.0  # direction is scored where the true move is at least this big
LEAVE_DB = ROUNDING_DB
"""A move under this (dB) is "leave it", for the truth and for what an advisor states alike."""


def distance_to_range(value: float, low: float, high: float) -> float:
    """0 inside ``[low, high]``, else the distance to the nearer end (the consensus-range error)."""
    return 0.0 if low <= value <= high else (low - value if value < low else value - high)


@dataclass(frozen=True)
class StemError:
    """One stem's stated move against the truth (dB, positive = raise).

    Attributes:
        stated: whether the advisor stated a move for the stem at all; an answer without one is
            scored as "no change" (``predicted_db`` 0) and counted apart.
        range_db: the consensus range of the true move, when several mixes give one.
        named_unknown: the move was stated for a stem the song does not have; it is scored as a
            move of the target (an error), not dropped.
    """

    stem: str
    true_db: float
    predicted_db: float
    stated: bool = True
    range_db: tuple[float, float] | None = None
    named_unknown: bool = False

    @property
    def moved(self) -> bool:
        """Whether the true move is a move, not "leave it"."""
        return not is_leave(self.true_db)

    @property
    def predicted_move(self) -> bool:
        """Whether the advisor moved the stem (stated a move of at least :data:`LEAVE_DB`)."""
        return not is_leave(self.predicted_db)

    @property
    def error_db(self) -> float:
        if self.range_db is not None:
            return distance_to_range(self.predicted_db, *self.range_db)
        return abs(self.predicted_db - self.true_db)

    @property
    def direction_counts(self) -> bool:
        return abs(self.true_db) >= DIRECTION_THRESHOLD_DB

    @property
    def direction_right(self) -> bool:
        return math.copysign(1.0, self.predicted_db) == math.copysign(1.0, self.true_db) and self.predicted_db != 0.0


def stem_errors(advice: Advice, true_moves_db: Mapping[str, float], stems: Iterable[str],
                *, true_master_db: float = 0.0) -> list[StemError]:
    """Per-stem errors of ``advice`` against the true moves (0 for stems not named) for ``stems``."""
    predicted = advice.gains_db()
    return [
        StemError(stem=stem, true_db=true_moves_db.get(stem, 0.0) + true_master_db,
                  predicted_db=predicted.get(stem, 0.0) + advice.global_offset_db)
        for stem in stems
    ]


@dataclass(frozen=True)
class Summary:
    mae_db: float
    """Over every stem scored."""
    direction_accuracy: float
    stems: int
    directional: int
    no_move_share: float = 0.0
    """Share of the stems for which the answer stated no move."""
    mae_moved_db: float = math.nan
    """Over the stems whose true move is a move."""
    leave_accuracy: float = math.nan
    """Of the stems whose truth is "leave it", the share left (|stated| < :data:`LEAVE_DB`)."""
    false_move_rate: float = math.nan
    """Of the moves stated, the share on stems whose truth is "leave it"."""
    moved: int = 0
    unknown_stem_share: float = 0.0
    """Share of the answers that named a stem the song does not have."""

    def to_json(self) -> dict[str, float | int | None]:
        """The figures rounded for JSON (``None`` where undefined, e.g. no move stated at all)."""
        return {"mae_db": json_number(self.mae_db), "mae_moved_db": json_number(self.mae_moved_db),
                "leave_accuracy": json_number(self.leave_accuracy), "false_move_rate": json_number(self.false_move_rate),
                "direction_accuracy": json_number(self.direction_accuracy), "no_move_share": json_number(self.no_move_share),
                "unknown_stem_share": json_number(self.unknown_stem_share), "items": self.stems, "moved": self.moved}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarise(errors: list[StemError]) -> Summary:
    """Mean absolute error (dB) over all stems and over the moved ones; direction accuracy over
    stems with |true| ≥ 1 dB; leave accuracy and false-move rate (see the module's doc)."""
    directional = [e for e in errors if e.direction_counts]
    to_leave = [e for e in errors if not e.moved]
    stated_moves = [e for e in errors if e.predicted_move]
    return Summary(
        mae_db=_mean([e.error_db for e in errors]),
        direction_accuracy=_mean([float(e.direction_right) for e in directional]),
        stems=len(errors),
        directional=len(directional),
        no_move_share=_mean([float(not e.stated) for e in errors]),
        mae_moved_db=_mean([e.error_db for e in errors if e.moved]),
        leave_accuracy=_mean([float(not e.predicted_move) for e in to_leave]),
        false_move_rate=_mean([float(not e.moved) for e in stated_moves]),
        moved=sum(e.moved for e in errors),
        unknown_stem_share=_mean([float(e.named_unknown) for e in errors]),
    )


MAGNITUDE_BINS_DB = ((0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, math.inf))


def magnitude_bin(true_db: float, bins: Sequence[tuple[float, float]] = MAGNITUDE_BINS_DB) -> str:
    """The label of the bin holding |``true_db``|: "3–6 dB", "9+ dB"."""
    size = abs(true_db)
    for low, high in bins:
        if low <= size < high:
            return f"{low:g}+ dB" if math.isinf(high) else f"{low:g}–{high:g} dB"
    raise ValueError(f"{true_db} dB is outside the bins {bins}")


def calibration(errors: Sequence[StemError], key: Callable[[int, StemError], str]) -> dict[str, Summary]:
    """Summaries per group: ``key(index, error)`` names each error's group (e.g. its
    :func:`magnitude_bin`, or the number of stems its item perturbed). Groups sorted by name."""
    groups: dict[str, list[StemError]] = {}
    for index, error in enumerate(errors):
        groups.setdefault(key(index, error), []).append(error)
    return {name: summarise(groups[name]) for name in sorted(groups)}
