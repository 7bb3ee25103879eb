"""2-D convolution and pooling from scratch (NumPy), as deep-learning libraries
define them: cross-correlation, channels last (N, H, W, C), kernels
(k_h, k_w, C_in, C_out) as in Keras and `tf.nn.conv2d`.

    y[n, i, j, o] = b[o] + sum_{k, l, c} x[n, s*i + k, s*j + l, c] * w[k, l, c, o]
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PADDINGS = ("valid", "same")


def output_size(n: int, k: int, stride: int = 1, padding: str = "valid") -> int:
    """Output length along one axis: floor((n + 2p - k) / s) + 1 with p = 0
    ('valid'), or ceil(n / s) ('same', TensorFlow's rule: the padding p is
    chosen to make it so, split as evenly as possible, extra at the end)."""
    for name, value in (("n", n), ("k", k), ("stride", stride)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if padding == "valid":
        if k > n:
            raise ValueError(f"kernel size {k} is larger than the input size {n} ('valid')")
        return (n - k) // stride + 1
    if padding == "same":
        return -(-n // stride)
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def _pad_same(x: np.ndarray, kh: int, kw: int, stride: int, value: float = 0.0) -> np.ndarray:
    pads = []
    for n, k in ((x.shape[1], kh), (x.shape[2], kw)):
        total = max((output_size(n, k, stride, "same") - 1) * stride + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def _check_input(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, H, W, C), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    return x


def _check_conv(x, w, b):
    x = _check_input(x)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"w must have shape (k_h, k_w, C_in, C_out), got {w.shape}")
    if w.shape[2] != x.shape[3]:
        raise ValueError(f"channel mismatch: x has {x.shape[3]} channels, w expects {w.shape[2]}")
    b = np.zeros(w.shape[3]) if b is None else np.asarray(b, dtype=np.float64)
    if b.shape != (w.shape[3],):
        raise ValueError(f"b must have shape ({w.shape[3]},), got {b.shape}")
    return x, w, b


def conv2d_loops(x, w, b=None, stride: int = 1, padding: str = "valid") -> np.ndarray:
    """The formula written as loops: slow, obviously right."""
    x, w, b = _check_conv(x, w, b)
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    kh, kw, _, cout = w.shape
    if padding == "same":
        x = _pad_same(x, kh, kw, stride)
    ho = output_size(x.shape[1], kh, stride, "valid")
    wo = output_size(x.shape[2], kw, stride, "valid")
    y = np.empty((x.shape[0], ho, wo, cout))
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                patch = x[n, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
                for o in range(cout):
                    y[n, i, j, o] = np.sum(patch * w[:, :, :, o]) + b[o]
    return y


def conv2d(x, w, b=None, stride: int = 1, padding: str = "valid") -> np.ndarray:
    """The same formula, vectorized: every k_h x k_w x C_in patch at once
    (a strided view, no copy), then one tensor contraction with the kernel."""
    x, w, b = _check_conv(x, w, b)
    kh, kw = w.shape[:2]
    if padding == "same":
        x = _pad_same(x, kh, kw, stride)
    elif padding != "valid":
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    output_size(x.shape[1], kh, stride), output_size(x.shape[2], kw, stride)  # validates
    patches = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    # patches: (N, H', W', C_in, k_h, k_w)
    return np.einsum("nijckl,klco->nijo", patches, w, optimize=True) + b


def pool2d(x, size: int = 2, stride: int | None = None, mode: str = "max",
           padding: str = "valid") -> np.ndarray:
    """Max or average pooling over size x size windows (stride defaults to size)."""
    x = _check_input(x)
    stride = size if stride is None else stride
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    if padding == "same":
        if mode == "avg":
            raise ValueError("'same' average pooling is not implemented here")
        x = _pad_same(x, size, size, stride, value=-np.inf)
    elif padding != "valid":
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    output_size(x.shape[1], size, stride), output_size(x.shape[2], size, stride)
    windows = sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return windows.max(axis=(-2, -1)) if mode == "max" else windows.mean(axis=(-2, -1))


def conv2d_backward(x, w, dy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss L through y = conv2d(x, w, b) (stride 1, 'valid'),
    given the upstream gradient dy = dL/dy of shape (N, H', W', C_out).

    dL/dw[k, l, c, o] = sum_{n, i, j} x[n, i + k, j + l, c] * dy[n, i, j, o]
        a correlation of the input with the upstream gradient;
    dL/dx = dy, padded with k - 1 zeros on each side, correlated with the
        kernel flipped in both spatial axes (C_in and C_out swapped): a *full*
        convolution of dy with w;
    dL/db[o] = sum_{n, i, j} dy[n, i, j, o].
    Returns (dx, dw, db).
    """
    x = _check_input(x)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != x.shape[3]:
        raise ValueError(f"w must have shape (k_h, k_w, {x.shape[3]}, C_out), got {w.shape}")
    kh, kw, _, cout = w.shape
    expected = (x.shape[0], output_size(x.shape[1], kh), output_size(x.shape[2], kw), cout)
    dy = np.asarray(dy, dtype=np.float64)
    if dy.shape != expected:
        raise ValueError(f"dy must have the output's shape {expected}, got {dy.shape}")
    patches = sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, H', W', C_in, k_h, k_w)
    dw = np.einsum("nijckl,nijo->klco", patches, dy, optimize=True)
    padded = np.pad(dy, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    dx = conv2d(padded, w[::-1, ::-1].transpose(0, 1, 3, 2))
    return dx, dw, dy.sum(axis=(0, 1, 2))
