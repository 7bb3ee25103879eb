"""Latency measured the way it should be: warm-up, fixed threads, many repeats,
percentiles, and comparisons measured in the same run.

    from edgelib import bench
    stats = bench.latency(lambda: model.invoke(x), repeats=200)
    print(stats)                                   # p50 / p90 / p99 in ms
    table = bench.compare({"float32": f, "int8": g}, repeats=200)

Timings depend on the machine and on what else runs on it: print them, plot
them, never assert exact values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Latency:
    """Latency statistics of one callable, in milliseconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    repeats: int
    first_call: float  # the very first call (cold), not part of the statistics

    def __str__(self) -> str:
        return (f"p50 {self.p50:.3f} ms, p90 {self.p90:.3f} ms, p99 {self.p99:.3f} ms "
                f"({self.repeats} runs; first call {self.first_call:.3f} ms)")


def _check(repeats: int, warmup: int) -> None:
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")


def _stats(samples_s: list[float], first_s: float) -> Latency:
    ms = np.asarray(samples_s) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Latency(float(p50), float(p90), float(p99), float(ms.mean()), len(ms), first_s * 1e3)


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latency(fn: Callable[[], object], repeats: int = 200, warmup: int = 20) -> Latency:
    """Time `fn()` (no arguments: close over the input): one cold first call,
    `warmup` untimed calls, then `repeats` timed calls."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    _check(repeats, warmup)
    first = _time(fn)
    for _ in range(warmup):
        fn()
    return _stats([_time(fn) for _ in range(repeats)], first)


def compare(candidates: dict[str, Callable[[], object]], repeats: int = 200,
            warmup: int = 20, baseline: str | None = None) -> dict[str, dict]:
    """Time several callables in one run, interleaved call by call, so that a
    change in machine load affects all of them alike. Returns, per name, the
    Latency and the p50 ratio to `baseline` (default: the first candidate)."""
    if not candidates:
        raise ValueError("compare needs at least one candidate")
    bad = [name for name, fn in candidates.items() if not callable(fn)]
    if bad:
        raise TypeError(f"candidates must be callables; not callable: {bad}")
    _check(repeats, warmup)
    baseline = baseline or next(iter(candidates))
    if baseline not in candidates:
        raise ValueError(f"baseline {baseline!r} is not one of {list(candidates)}")
    first = {name: _time(fn) for name, fn in candidates.items()}
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            samples[name].append(_time(fn))
    stats = {name: _stats(samples[name], first[name]) for name in candidates}
    return {name: {"latency": s, "ratio_p50": s.p50 / stats[baseline].p50}
            for name, s in stats.items()}
