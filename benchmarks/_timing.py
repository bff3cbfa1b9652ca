"""Timing helpers: warm-up, repetitions, medians, interleaved comparisons.

Every figure of the benchmark suite is a *ratio* of two things measured in the same
run, so the machine's speed cancels out. Subject and floor are measured in
alternating repetitions (A B A B ...) so a burst of noise from a neighbour on a
shared machine hits both sides rather than one.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Timing:
    """Seconds per operation: the median of ``samples`` (one sample per repetition)."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def ops_per_s(self) -> float:
        return 1.0 / self.median

    @property
    def spread(self) -> float:
        """Relative interquartile-ish spread (max-min over median) of the samples."""
        if len(self.samples) < 2:
            return 0.0
        return (max(self.samples) - min(self.samples)) / self.median


def calibrate(fn: Callable[[], object], budget: float) -> int:
    """How many calls of ``fn`` fit in about ``budget`` seconds (at least 1)."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= budget / 4 or n >= 1 << 20:
            return max(1, int(n * budget / max(elapsed, 1e-9)))
        n *= 4


def _once(fn: Callable[[], object], n: int) -> float:
    gc_was = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n
    finally:
        if gc_was:
            gc.enable()


def compare(
    cases: dict[str, Callable[[], object]],
    *,
    repeat: int = 7,
    budget: float = 0.15,
    warmup: int = 20,
) -> dict[str, Timing]:
    """Time every case in interleaved repetitions; returns per-op medians by name.

    Each case is first called ``warmup`` times (caches, JIT-less but lazy imports,
    connection pools), then calibrated to about ``budget`` seconds per repetition.
    """
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    counts = {name: calibrate(fn, budget) for name, fn in cases.items()}
    results = {name: Timing(name) for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            results[name].samples.append(_once(fn, counts[name]))
    return results
