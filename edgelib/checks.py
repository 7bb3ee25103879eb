"""Automatic checks for the exercises: pass quietly with a tick, fail with a hint.

    from edgelib.checks import check, check_close
    check_close(my_answer, expected, "the output size of conv1", hint="(28 - 3) / 1 + 1")
"""

from __future__ import annotations

import numpy as np


class ExerciseCheckFailed(AssertionError):
    """An exercise answer is not right yet; the message says what to look at."""


def check(condition: bool, what: str, hint: str = "") -> None:
    """Fail with `what` (and `hint`) unless `condition` holds; else print a tick."""
    if not condition:
        raise ExerciseCheckFailed(f"not yet: {what}." + (f" Hint: {hint}" if hint else ""))
    print(f"✓ {what}")


def check_close(actual, expected, what: str, rtol: float = 1e-5, atol: float = 1e-8,
                hint: str = "") -> None:
    """Check that `actual` equals `expected` within tolerances (shapes must match)."""
    if actual is None:
        raise ExerciseCheckFailed(f"not yet: {what} is None; replace the placeholder.")
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ExerciseCheckFailed(f"not yet: {what} has shape {a.shape}, expected {e.shape}.")
    if not np.allclose(a, e, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(a - e)))
        shown = f"{a.item():.6g} vs expected {e.item():.6g}" if a.size == 1 else \
            f"largest difference {worst:.3g}"
        raise ExerciseCheckFailed(
            f"not yet: {what} is off ({shown})." + (f" Hint: {hint}" if hint else "")
        )
    print(f"✓ {what}")
