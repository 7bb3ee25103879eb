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
    return x[calibration_indices(x, n, extremes)]


def calibration_indices(x, n: int = 200, extremes: int = 20) -> np.ndarray:
    """The sorted indices into `x` of `calibration_sample(x, n, extremes)`."""
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"expected a non-empty batch of examples, got shape {x.shape}")
    if not 0 <= 2 * extremes <= n:
        raise ValueError(f"need 0 <= 2 * extremes <= n, got extremes={extremes}, n={n}")
    flat = x.reshape(len(x), -1)
    picked = np.concatenate([np.argsort(flat.min(axis=1))[:extremes],
                             np.argsort(flat.max(axis=1))[-extremes:] if extremes else []])
    step = max(1, -(-len(x) // max(1, n - 2 * extremes)))  # ceil: at most n - 2 extremes
    return np.union1d(picked.astype(int), np.arange(0, len(x), step))


# --- integer-only inference: requantizing the int32 accumulator ------------------
#
# An int8 layer accumulates products of int8 inputs and weights in int32:
#     acc = bias_q + sum_k (q_in,k - z_in) * q_w,k
# in units of s_in * s_w. Its int8 output is
#     q_out = clamp(z_out + round(M * acc), qmin, qmax),   M = s_in * s_w / s_out,
# and an integer-only device applies M as a 32-bit integer multiplier M0 and a
# shift n:  M = M0 * 2**-31 * 2**-n  with  M0 in [2**30, 2**31).


def quantize_multiplier(m):
    """The fixed-point form (M0, n) of a real multiplier M > 0: M ~ M0 * 2**-31 * 2**-n.

    M0 is a 32-bit integer in [2**30, 2**31) (31 significant bits), n an
    integer shift (n > 0 for M < 0.5: a right shift; n < 0 for M >= 1). `m`
    may be an array (one multiplier per output channel): then both results
    are int64 arrays of its shape; for a scalar they are Python ints. The
    relative error of M0 * 2**(-31 - n) is at most 2**-31.
    """
    m_arr = np.asarray(m, dtype=np.float64)
    if not np.isfinite(m_arr).all() or np.any(m_arr <= 0):
        raise ValueError(f"the multiplier must be finite and > 0, got {m}")
    fraction, exponent = np.frexp(m_arr)  # m = fraction * 2**exponent, fraction in [0.5, 1)
    m0 = np.round(fraction * 2.0**31).astype(np.int64)
    carry = m0 == 2**31  # fraction rounded up to 1.0
    m0 = np.where(carry, 2**30, m0)
    n = -(exponent + carry.astype(np.int64))
    if np.any(n < -30) or np.any(n > 31):
        raise ValueError(f"the multiplier {m} is outside the range [2**-32, 2**30) of a "
                         "32-bit fixed-point multiplier with a shift")
    if m_arr.ndim == 0:
        return int(m0), int(n)
    return m0.astype(np.int64), n.astype(np.int64)


def multiply_by_quantized_multiplier(acc, m0, n) -> np.ndarray:
    """round(acc * M0 * 2**-31 * 2**-n) in integer arithmetic, with gemmlowp's two roundings.

    Two roundings, as in gemmlowp (LiteRT's int8 conv kernels, optimized and
    reference, round twice too: chapter 09): the high 32 bits of the doubled
    64-bit product acc * M0 (rounded to nearest), then a rounding right shift
    by n (half away from zero). Other kernels differ:
    LiteRT's optimized dense kernel rounds a negative tie of that shift up
    instead, its reference dense kernel rounds the whole product once
    (chapter 09 measures both). The first rounding can move the result by up
    to 2**-n / 2 before the second, so the result is the nearest integer to
    the exact product except near ties (off by at most 0.5 + 2**-(n+1); rare
    for the small multipliers of a layer, where n is large). `acc` is an
    int32 array (the accumulator); `m0` and `n` scalars or arrays that
    broadcast against it (per channel: the last axis).
    Returns int64.
    """
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu":
        raise TypeError(f"the accumulator must be an integer array, got dtype {acc.dtype}")
    acc = acc.astype(np.int64)
    m0, n = np.asarray(m0, dtype=np.int64), np.asarray(n, dtype=np.int64)
    if np.any(m0 < 0) or np.any(m0 >= 2**31):
        raise ValueError("M0 must be a non-negative 32-bit integer (< 2**31)")
    left, right = np.maximum(-n, 0), np.maximum(n, 0)
    x = acc << left
    if np.any(x < -(2**31)) or np.any(x >= 2**31):
        raise OverflowError("the accumulator times 2**-n does not fit in int32")
    product = x * m0                                               # |product| < 2**62
    nudged = product + np.where(product >= 0, 2**30, 1 - 2**30)
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))  # divide, truncate to 0
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def requantize(acc, m0, n, zero_point: int, qmin: int = INT8[0], qmax: int = INT8[1]
               ) -> np.ndarray:
    """int8 output of an int32 accumulator: clamp(z_out + round(M * acc), qmin, qmax).

    A fused ReLU is the clamp with qmin = max(qmin, z_out): real 0 is z_out.
    Returns int32 (values in [qmin, qmax]).
    """
    if qmin > qmax:
        raise ValueError(f"qmin must be <= qmax, got {qmin}, {qmax}")
    scaled = multiply_by_quantized_multiplier(acc, m0, n) + int(zero_point)
    return np.clip(scaled, qmin, qmax).astype(np.int32)
