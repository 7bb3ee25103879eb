"""Automatic checks: exercises (pass with a tick, fail with a hint) and claims.

    from edgelib.checks import check, check_close, claim
    check_close(my_answer, expected, "the output size of conv1", hint="(28 - 3) / 1 + 1")
    claim(int8_acc >= float_acc - 0.01, "int8 is within 1 point of float32",
          f"int8 {int8_acc:.2%}, float32 {float_acc:.2%}")

`claim` is how a chapter asserts what a measured figure supports: the figure
itself (training, timing, round-off) is shown in a cell whose output is not
compared by nbval, and the claim prints the same tick on every CPU and for
every seed, or stops the notebook with the figures that broke it. When the
environment variable EDGE_CLAIM_LOG names a file, every claim is also
appended to it as a JSON line (statement, figures, held): the seed sweep,
`scripts/sweep_seeds.py`, tabulates them.

`claim_on_this_cpu` is a claim about timings that follow the CPU (its
instruction set, its caches): the tests assert it on the machine CI runs
on, like `claim`. A learner's laptop may be another kind of CPU, so under
`make lab` (EDGE_CPU_CLAIMS=report) a failed one prints what this CPU
measured, marked ✗, and the notebook goes on.
"""

from __future__ import annotations

import json
import os

import numpy as np

CLAIM_LOG_VARIABLE = "EDGE_CLAIM_LOG"
CPU_CLAIMS_VARIABLE = "EDGE_CPU_CLAIMS"  # "report": a failed claim_on_this_cpu does not stop


class ExerciseCheckFailed(AssertionError):
    """An exercise answer is not right yet; the message says what to look at."""


class ClaimFailed(AssertionError):
    """A claim the chapter makes about its measured figures does not hold."""


def claim(condition: bool, statement: str, figures: str = "") -> None:
    """Print "✓ statement" if `condition` holds, else raise ClaimFailed.

    `figures` (the measured values behind the claim) appear only in the
    error, so the printed line is the same for every run that passes.
    """
    _record(condition, statement, figures)
    if not condition:
        raise ClaimFailed(f"claim failed: {statement}" + (f" ({figures})" if figures else ""))
    print(f"✓ {statement}")


def claim_on_this_cpu(condition: bool, statement: str, figures: str, depends_on: str) -> None:
    """A claim about timings that depend on the kind of CPU (`depends_on` says on what).

    It holds: "✓ statement", as `claim`. It fails: ClaimFailed, as `claim`,
    unless EDGE_CPU_CLAIMS=report (`make lab` sets it), where it prints
    "✗ not on this CPU: statement (figures)" and why it can differ, and returns.
    """
    mode = os.environ.get(CPU_CLAIMS_VARIABLE, "assert")
    if mode not in ("assert", "report"):
        raise ValueError(f"{CPU_CLAIMS_VARIABLE} must be 'assert' or 'report', got {mode!r}")
    if condition or mode == "assert":
        claim(condition, statement, figures)
        return
    _record(condition, statement, figures)
    print(f"✗ not on this CPU: {statement} ({figures}); it depends on {depends_on}")


def _record(condition, statement: str, figures: str) -> None:
    """Type-check a claim's condition and append it to the claim log, if one is set."""
    if not isinstance(condition, bool | np.bool_):
        raise TypeError(f"claim needs a bool condition, got {type(condition).__name__} "
                        f"for {statement!r}")
    if log := os.environ.get(CLAIM_LOG_VARIABLE):
        with open(log, "a", encoding="utf-8") as file:
            file.write(json.dumps({"statement": statement, "figures": figures,
                                   "held": bool(condition)}, ensure_ascii=False) + "\n")


def check(condition: bool, what: str, hint: str = "") -> None:
    """Fail with `what` (and `hint`) unless `condition` holds; else print a tick."""
    if not condition:
        raise ExerciseCheckFailed(f"not yet: {what}." + (f" Hint: {hint}" if hint else ""))
    print(f"✓ {what}")


def check_close(actual, expected, what: str, rtol: float = 1e-5, atol: float = 1e-8,
                hint: str = "") -> None:
    """Check that `actual` equals `expected` within tolerances (shapes must match).

    On a wrong answer the message says by how much it is off (relative
    error, and where for arrays) but never shows the expected value.
    """
    if actual is None:
        raise ExerciseCheckFailed(f"not yet: {what} is None; replace the placeholder.")
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ExerciseCheckFailed(f"not yet: {what} has shape {a.shape}, expected {e.shape}.")
    if not np.all(np.isfinite(a)):
        raise ExerciseCheckFailed(f"not yet: {what} contains NaN or infinity.")
    if not np.allclose(a, e, rtol=rtol, atol=atol):
        diff = np.abs(a - e)
        where = np.unravel_index(int(np.argmax(diff)), a.shape) if a.ndim else ()
        relative = float(diff[where] / max(abs(float(e[where])), 1e-300))
        direction = "too high" if a[where] > e[where] else "too low"
        place = f" at index {tuple(int(i) for i in where)}" if a.ndim else ""
        if a.ndim:
            wrong = int(np.sum(~np.isclose(a, e, rtol=rtol, atol=atol)))
            shown = f"{wrong} of {a.size} values are off; the worst{place} is {direction}"
        else:
            shown = f"yours, {a.item():.6g}, is {direction}"
        raise ExerciseCheckFailed(
            f"not yet: {what} is off ({shown} by {relative:.2g} of the right value)."
            + (f" Hint: {hint}" if hint else ""))
    print(f"✓ {what}")
