"""Ordered process-pool map used by the LRA generators.

Every generator splits its work into *chunks whose content depends only on (seed, chunk id)*,
never on which process computes them, and results are consumed in chunk order. The output is
therefore bit-identical for any ``workers`` value; ``workers`` only changes the speed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def resolve_workers(workers: int | None) -> int:
    """``None`` -> number of usable CPUs; otherwise validate and return ``workers``."""
    if workers is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - non-Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r}: expected a positive int or None (= all CPUs)")
    return workers


def mp_context() -> mp.context.BaseContext:
    """``fork`` on Linux (works from interactive sessions and unguarded scripts; the children run
    numpy code only), ``spawn`` elsewhere."""
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context("spawn")


class WorkerPool:
    """Lazily started process pool with an order-preserving ``map``.

    With ``workers == 1`` (or a single task) everything runs in this process. On Linux the
    pool uses the ``fork`` start method (like torch's DataLoader): the workers only run numpy
    code, and ``fork`` works from interactive sessions and unguarded scripts. Elsewhere it uses
    ``spawn``, which needs the usual ``if __name__ == "__main__":`` guard in scripts.
    """

    def __init__(self, workers: int | None) -> None:
        self.workers = resolve_workers(workers)
        self._pool: Any = None

    def map(self, fn: Callable[[Any], T], tasks: Iterable[Any]) -> Iterator[T]:
        """Yield ``fn(task)`` for each task, in task order."""
        tasks = list(tasks)
        if self.workers <= 1 or (len(tasks) <= 1 and self._pool is None):
            for task in tasks:
                yield fn(task)
            return
        if self._pool is None:
            self._pool = mp_context().Pool(processes=self.workers)
        yield from self._pool.imap(fn, tasks, chunksize=1)

    def close(self) -> None:
        """Shut the pool down (idempotent)."""
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None and self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        self.close()
