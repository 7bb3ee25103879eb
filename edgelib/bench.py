"""Latency measured the way it should be: warm-up, fixed threads, many repeats,
percentiles, and comparisons measured in the same run.

    from edgelib import bench
    stats = bench.latency(lambda: model.invoke(x), repeats=200)
    print(stats)                                   # p50 / p90 / p99 in ms
    table = bench.compare({"float32": f, "int8": g}, repeats=200)

For a .tflite model, the model's latency is the interpreter's invoke() alone;
the Python-side work around it (validation, quantizing the input, copying it
in, dequantizing the output) is what a device does in C and is reported apart:

    bench.invoke_latency(edge_model, x, runs=200)      # invoke() only
    bench.conversion_overhead(edge_model, x)           # {"input": ..., "output": ...}
    bench.compare({m: bench.invoke_only(e, x) for m, e in edges.items()})

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
    best: float = float("nan")  # the fastest run: the least disturbed by other load

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
    return Latency(float(p50), float(p90), float(p99), float(ms.mean()), len(ms), first_s * 1e3,
                   float(ms.min()))


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


def invoke_only(edge_model, example) -> Callable[[], None]:
    """A callable that runs only the interpreter's invoke() on `example`.

    The example is validated, converted (quantized for an int8 model) and set
    into the interpreter once, here, outside any timed region; what the
    callable does is the model's own work. Use it with `latency` or `compare`.
    """
    edge_model.interpreter.set_tensor(edge_model.input["index"], edge_model.prepare(example))
    return edge_model.interpreter.invoke


def invoke_latency(edge_model, example, runs: int = 200, warmup: int = 20) -> Latency:
    """Latency of the interpreter's invoke() alone on one example (batch 1):
    the input is set before the timed region; one cold call, `warmup` untimed
    calls, then `runs` (>= 100 for a p90/p99 worth reading) timed calls."""
    return latency(invoke_only(edge_model, example), repeats=runs, warmup=warmup)


def conversion_overhead(edge_model, example, runs: int = 200,
                        warmup: int = 20) -> dict[str, Latency]:
    """The Python-side work around invoke(), timed apart from the model:
    "input" = validate, convert (quantize for int8) and set the input tensor;
    "output" = read and dequantize the output(s). invoke() + input + output is
    what `EdgeModel.invoke` costs end to end."""
    interpreter, index = edge_model.interpreter, edge_model.input["index"]

    def put():
        interpreter.set_tensor(index, edge_model.prepare(example))

    put()
    interpreter.invoke()  # so that the output holds a real result
    return {"input": latency(put, repeats=runs, warmup=warmup),
            "output": latency(edge_model.outputs_now, repeats=runs, warmup=warmup)}


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
