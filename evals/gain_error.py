"""Gain error: how far an advisor's moves are from the moves that undo a known perturbation.

Scoring uses the *total* correction per stem — its move plus the master (global) offset — because
splitting a change shared by every stem between "balance" and "master" is a convention, while the
level each stem ends up at is not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from advisor.model import Advice

DIRECTION_THRESHOLD_DB = 1.0  # direction is scored where the true move is at least this big


@dataclass(frozen=True)
class StemError:
    stem: str
    true_db: float
    predicted_db: float

    @property
    def error_db(self) -> float:
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
    direction_accuracy: float
    stems: int
    directional: int


def summarise(errors: list[StemError]) -> Summary:
    """Mean absolute error (dB) over all stems; direction accuracy over stems with |true| ≥ 1 dB."""
    directional = [e for e in errors if e.direction_counts]
    return Summary(
        mae_db=sum(e.error_db for e in errors) / len(errors) if errors else math.nan,
        direction_accuracy=(sum(e.direction_right for e in directional) / len(directional)) if directional else math.nan,
        stems=len(errors),
        directional=len(directional),
    )
