"""Timings and memory figures that can be trusted on a shared, noisy machine.

Every time the project prints or stores goes through :func:`time_interleaved`: the candidates are
warmed up, then run in rounds, each round calling every candidate once (in a rotated order, so no
candidate always runs first after a pause), so that a change in machine load hits them all alike.
A :class:`Timing` keeps every sample and reports the median with its spread; when the spread is
large (the relative interquartile range above :data:`UNRELIABLE_SPREAD`) the timing is marked
unreliable and is printed as such instead of being presented as a result.

Memory: :func:`peak_growth_mib` is the growth of the process's resident-set high-water mark
(Linux ``VmHWM``, reset through ``/proc/self/clear_refs``) over one call. It is only meaningful
when large buffers are returned to the system on free: run it under glibc's
``MALLOC_MMAP_THRESHOLD_=65536`` (:data:`MEMORY_MALLOC_ENV`), ideally in a fresh process.

Torch-free: the command-line parsers and the experiments' runners import it cheaply.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

__all__ = ["Timing", "UNRELIABLE_SPREAD", "time_interleaved", "status_kib", "reset_peak",
           "peak_growth_mib", "MEMORY_MALLOC_ENV", "malloc_settings"]

#: A timing whose interquartile range exceeds this fraction of its median is marked unreliable.
UNRELIABLE_SPREAD = 0.25

#: The allocator setting under which resident-set peaks follow live memory (glibc).
MEMORY_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


@dataclass(frozen=True)
class Timing:
    """The samples (seconds) of one timed thing, and what to quote from them.

    ``median`` is the figure; ``spread`` the interquartile range over the median; ``low`` and
    ``high`` the fastest and slowest sample. ``reliable`` is False when ``spread`` exceeds
    :data:`UNRELIABLE_SPREAD` or fewer than 3 samples were taken.
    """

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("Timing needs at least one sample, got none")
        if any(not (s >= 0 and math.isfinite(s)) for s in self.samples):
            raise ValueError(f"Timing samples must be finite and >= 0, got {self.samples}")

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    @property
    def spread(self) -> float:
        """(q3 - q1) / median: 0 for identical samples."""
        if len(self.samples) < 2:
            return 0.0
        q = statistics.quantiles(self.samples, n=4, method="inclusive")
        m = self.median
        return (q[2] - q[0]) / m if m > 0 else 0.0

    @property
    def reliable(self) -> bool:
        return len(self.samples) >= 3 and self.spread <= UNRELIABLE_SPREAD

    def format(self, scale: float = 1e3, unit: str = "ms", digits: int = 1) -> str:
        """``"12.3 ms (11.9-13.0)"``; ``"12.3 ms (2.1-96.0) unreliable"`` when noisy."""
        text = (f"{self.median * scale:.{digits}f} {unit} "
                f"({self.low * scale:.{digits}f}-{self.high * scale:.{digits}f})")
        return text if self.reliable else text + " unreliable"

    def to_dict(self, scale: float = 1e3) -> dict[str, Any]:
        """The stored form (times multiplied by ``scale``, milliseconds by default)."""
        return {"median": self.median * scale, "low": self.low * scale, "high": self.high * scale,
                "spread": self.spread, "reliable": self.reliable, "repeats": len(self.samples)}


def time_interleaved(fns: Mapping[str, Callable[[], Any]], *, repeats: int = 7, warmup: int = 1,
                     sync: Callable[[], None] | None = None) -> dict[str, Timing]:
    """Time every callable of ``fns``: ``warmup`` untimed calls each, then ``repeats`` rounds of
    one call each, the order rotated every round. ``sync`` (e.g. ``torch.cuda.synchronize``)
    runs before each clock read.

    >>> t = time_interleaved({"a": lambda: sum(range(100)), "b": lambda: None}, repeats=3)
    >>> sorted(t), len(t["a"].samples)
    (['a', 'b'], 3)
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    names = list(fns)
    if not names:
        raise ValueError("fns is empty: nothing to time")
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if sync is not None:
                sync()
            t0 = time.perf_counter()
            fns[name]()
            if sync is not None:
                sync()
            samples[name].append(time.perf_counter() - t0)
    return {name: Timing(tuple(samples[name])) for name in names}


def status_kib(field: str, pid: int | str = "self") -> int | None:
    """A ``/proc/<pid>/status`` field in KiB (``VmRSS``, ``VmHWM``); None without ``/proc`` or
    when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(rf"^{field}:\s+(\d+)\s+kB", f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def reset_peak() -> bool:
    """Reset this process's resident-set high-water mark to its current RSS (Linux >= 4.0).
    Returns False where that is not possible (then no peak can be measured)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed memory back first
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # "5": reset the peak resident set size
        return True
    except OSError:
        return False


def peak_growth_mib(fn: Callable[[], Any]) -> float | None:
    """MiB by which one call of ``fn`` raised the resident-set high-water mark above the RSS
    before it; None where ``/proc`` cannot say."""
    if not reset_peak():
        return None
    before = status_kib("VmRSS")
    result = fn()
    after = status_kib("VmHWM")
    del result
    if before is None or after is None:
        return None
    return max(after - before, 0) / 1024


def malloc_settings(environ: Mapping[str, str] | None = None,
                    keys: Sequence[str] = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")) -> str:
    """The allocator settings a measurement ran under, for its report:
    ``"MALLOC_MMAP_THRESHOLD_=65536, MALLOC_TRIM_THRESHOLD_=glibc default"``."""
    import os

    env = os.environ if environ is None else environ
    return ", ".join(f"{k}={env.get(k, 'glibc default')}" for k in keys)
