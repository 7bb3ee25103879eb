"""The affine quantization scheme of TFLite, in NumPy.

A real value r is stored as an integer q with a scale s and a zero point z:

    q = clip(round(r / s) + z, qmin, qmax)        r ~ s * (q - z)

int8 activations are asymmetric (z chosen so that real 0 is exact); int8
weights are symmetric per output channel (z = 0, s = max|w| / 127).
"""

from __future__ import annotations

import numpy as np

INT8 = (-128, 127)


def _finite(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return x


def affine_params(rmin: float, rmax: float, qmin: int = INT8[0], qmax: int = INT8[1]
                  ) -> tuple[float, int]:
    """Scale and zero point that map [rmin, rmax] onto [qmin, qmax].

    The range is first widened to contain 0, so that real zero (padding, ReLU
    outputs) is represented exactly by the integer z.
    """
    rmin, rmax = float(_finite(rmin, "rmin")), float(_finite(rmax, "rmax"))
    if rmin > rmax:
        raise ValueError(f"rmin must be <= rmax, got rmin={rmin}, rmax={rmax}")
    if qmin >= qmax:
        raise ValueError(f"qmin must be < qmax, got {qmin}, {qmax}")
    rmin, rmax = min(rmin, 0.0), max(rmax, 0.0)
    if rmax == rmin:
        return 1.0, 0
    scale = (rmax - rmin) / (qmax - qmin)
    zero_point = int(np.clip(round(qmin - rmin / scale), qmin, qmax))
    return scale, zero_point


def symmetric_scales(weights, axis: int = -1, qmax: int = INT8[1]) -> np.ndarray:
    """Per-channel symmetric scales max|w| / qmax along `axis` (zero point 0)."""
    w = _finite(weights, "weights")
    if w.ndim == 0:
        raise ValueError("weights must have at least one axis")
    reduce = tuple(i for i in range(w.ndim) if i != axis % w.ndim)
    return np.abs(w).max(axis=reduce) / qmax


def quantize(r, scale, zero_point, qmin: int = INT8[0], qmax: int = INT8[1]) -> np.ndarray:
    """q = clip(round(r / s) + z, qmin, qmax) (int32; scale may be per channel,
    broadcast along the last axis)."""
    r = _finite(r, "r")
    scale = np.asarray(scale, dtype=np.float64)
    if np.any(scale <= 0):
        raise ValueError(f"scale must be > 0, got {scale}")
    q = np.round(r / scale) + np.asarray(zero_point)
    return np.clip(q, qmin, qmax).astype(np.int32)


def dequantize(q, scale, zero_point) -> np.ndarray:
    """r = s * (q - z)."""
    return np.asarray(scale, dtype=np.float64) * (np.asarray(q, dtype=np.float64)
                                                 - np.asarray(zero_point))


def calibration_sample(x, n: int = 200, extremes: int = 20) -> np.ndarray:
    """A representative set for int8 calibration: at most `n` examples of `x` (N, ...).

    The `extremes` examples with the smallest and the `extremes` with the
    largest values are always in it, so the calibrated input range covers
    everything the training data holds; the rest are evenly spaced.
    """
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"expected a non-empty batch of examples, got shape {x.shape}")
    if not 0 <= 2 * extremes <= n:
        raise ValueError(f"need 0 <= 2 * extremes <= n, got extremes={extremes}, n={n}")
    flat = x.reshape(len(x), -1)
    picked = np.concatenate([np.argsort(flat.min(axis=1))[:extremes],
                             np.argsort(flat.max(axis=1))[-extremes:] if extremes else []])
    step = max(1, -(-len(x) // max(1, n - 2 * extremes)))  # ceil: at most n - 2 extremes
    return x[np.union1d(picked.astype(int), np.arange(0, len(x), step))]
