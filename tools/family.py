"""The signals a stem-set analysis measures, built from any linear transform of the stems.

For N stems the analysis measures 2N + 1 signals: the mix, each stem's backing (the mix minus that
stem) and each stem. Filtering, FFTs and oversampling are linear, so they run once per stem and the
other signals are combined from the results — N additions and N subtractions instead of N + 1 more
transforms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np

Signal = TypeVar("Signal", bound=np.ndarray)
Family = Callable[[Sequence[np.ndarray]], Iterator[np.ndarray]]
"""Turns transformed parts into the transformed signals to measure."""


def sum_signals(signals: Iterable[Signal]) -> Signal:
    """Sum of equally shaped arrays, as a new array of their dtype."""
    iterator = iter(signals)
    first = next(iterator)
    second = next(iterator, None)
    if second is None:
        return first.copy()
    total = first + second  # one pass fewer than copying the first and adding the second
    for signal in iterator:
        total += signal
    return total


def mix_backings_stems(parts: Sequence[Signal]) -> Iterator[Signal]:
    """``mix, backing_0, …, backing_{N-1}, stem_0, …, stem_{N-1}`` with ``mix = Σ parts`` and
    ``backing_i = mix − parts[i]`` (silence for a one-stem set). Lazy, so each backing can be
    dropped before the next is formed."""
    mix = sum_signals(parts)
    yield mix
    for part in parts:
        yield mix - part
    yield from parts


def each(parts: Sequence[Signal]) -> Iterator[Signal]:
    """The parts themselves: measure each signal on its own."""
    yield from parts


def family_size(family: Family, n_parts: int) -> int:
    """How many signals ``family`` builds from ``n_parts`` parts (2N + 1 for
    :func:`mix_backings_stems`, N for :func:`each`)."""
    return sum(1 for _ in family([np.zeros((1, 1), dtype=np.float32)] * n_parts))


def family_index(n_stems: int) -> tuple[int, range, range]:
    """Positions in :func:`mix_backings_stems` output: the mix, the backings, the stems."""
    return 0, range(1, 1 + n_stems), range(1 + n_stems, 1 + 2 * n_stems)
