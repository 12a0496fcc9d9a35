"""Work spread over the cores: how many workers, and one way to run a function over many inputs.

Big jobs run in processes: the measurements are numpy and scipy calls, but enough of each block's
work holds the GIL (Python loops over signals, small arrays) that threads would share one core.
Workers are forked from a ``forkserver`` that has imported the work's module once (safe beside the
chat's threads: the server itself has none; ``spawn`` where there is no forkserver), and each keeps
one BLAS/FFT thread, so ``N`` workers use ``N`` cores and no more. Short jobs, and data already in
memory, run on threads instead: no start-up, no copying, and decoding, filters and FFTs still
release the GIL.
"""

from __future__ import annotations

import contextvars
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

Result = TypeVar("Result")
Other = TypeVar("Other")


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else the count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return max(os.cpu_count() or 1, 1)


def parse_workers(value: object, *, where: str) -> int:
    """``value`` as a worker count: a whole number from 1 up, or ``"auto"`` (:func:`default_workers`).

    Raises:
        ValueError: anything else; the message names ``where`` the value came from.
    """
    if value == "auto":
        return default_workers()
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{where}: workers must be a whole number from 1 up or 'auto', got {value!r}")
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"{where}: workers must be a whole number from 1 up or 'auto', got {value!r}") from None
    if count < 1:
        raise ValueError(f"{where}: workers must be a whole number from 1 up or 'auto', got {value!r}")
    return count


def both(first: Callable[[], Result], second: Callable[[], Other], *, concurrently: bool) -> tuple[Result, Other]:
    """``(first(), second())``; with ``concurrently``, ``second`` runs on a thread beside ``first``
    (for two jobs too short for worker processes: decoding, filters and FFTs release the GIL)."""
    if not concurrently:
        return first(), second()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(contextvars.copy_context().run, second)  # the call's context (its inputs) goes along
        return first(), pending.result()


def _one_thread_each() -> None:
    """Worker start-up: one BLAS/OpenMP thread, so the workers do not fight over the cores."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass


def _context(module: str) -> multiprocessing.context.BaseContext:
    """A forkserver that preloads ``module`` (and so numpy, scipy…), else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([module])
    return context


def map_in_workers(function: Callable[..., Result], arguments: Sequence[tuple[Any, ...]],
                   options: Mapping[str, Any], *, workers: int, processes: bool = True,
                   on_done: Callable[[int], None] | None = None) -> list[Result]:
    """``[function(*args, **options) for args in arguments]``, run in up to ``workers`` processes
    (or, with ``processes`` false, threads: no start-up and no copying, for short jobs and data in
    memory; decoding, filters and FFTs release the GIL).

    With one worker, or one input, everything runs here, in order. ``on_done(index)`` is called in
    the calling thread as each input finishes (in any order). The results come back in the inputs'
    order; an exception in a worker is raised here as it was raised there.
    """
    if workers <= 1 or len(arguments) <= 1:
        results = []
        for index, args in enumerate(arguments):
            results.append(function(*args, **options))
            if on_done is not None:
                on_done(index)
        return results
    found: dict[int, Result] = {}
    count = min(workers, len(arguments))
    pool: Executor = (ProcessPoolExecutor(max_workers=count, mp_context=_context(function.__module__),
                                          initializer=_one_thread_each) if processes
                      else ThreadPoolExecutor(max_workers=count))
    try:
        if processes:
            pending = {pool.submit(function, *args, **options): index for index, args in enumerate(arguments)}
        else:  # threads run in a copy of the caller's context (the inputs it registers are the call's)
            pending = {pool.submit(contextvars.copy_context().run, function, *args, **options): index
                       for index, args in enumerate(arguments)}
        for future in as_completed(pending):
            index = pending[future]
            found[index] = future.result()
            if on_done is not None:
                on_done(index)
    except BaseException:
        # A bad stem, or Ctrl-C: what has not started is dropped, and nothing waits for the rest.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [found[index] for index in range(len(arguments))]
