"""Recurrent cells from scratch (NumPy), with the weight layout of tf_keras.

Simple RNN:   h_t = tanh(x_t W + h_{t-1} U + b)
GRU (gates in the order z, r, h of Keras' kernels):
    z_t = sigmoid(x_t W_z + h_{t-1} U_z + b_z)            update gate
    r_t = sigmoid(x_t W_r + h_{t-1} U_r + b_r)            reset gate
    reset_after=True (Keras' default):
        c_t = tanh(x_t W_h + b_h + r_t * (h_{t-1} U_h + b'_h))
    reset_after=False (the original paper):
        c_t = tanh(x_t W_h + (r_t * h_{t-1}) U_h + b_h)
    h_t = z_t * h_{t-1} + (1 - z_t) * c_t
Inputs are batches of sequences, shape (N, T, D); outputs (N, T, units).
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


def _check_sequence(x, input_dim: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, T, D), got {x.shape}")
    if x.shape[2] != input_dim:
        raise ValueError(f"x has {x.shape[2]} features per step, the weights expect {input_dim}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    return x


def _initial_state(h0, n: int, units: int) -> np.ndarray:
    if h0 is None:
        return np.zeros((n, units))
    h0 = np.asarray(h0, dtype=np.float64)
    if h0.shape != (n, units):
        raise ValueError(f"h0 must have shape ({n}, {units}), got {h0.shape}")
    return h0


def simple_rnn(x, kernel, recurrent_kernel, bias, h0=None) -> np.ndarray:
    """All hidden states of a simple tanh RNN: (N, T, units)."""
    kernel, recurrent = np.asarray(kernel, float), np.asarray(recurrent_kernel, float)
    units = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != units or recurrent.shape != (units, units):
        raise ValueError(f"expected kernel (D, {units}) and recurrent_kernel ({units}, {units}), "
                         f"got {kernel.shape} and {recurrent.shape}")
    x = _check_sequence(x, kernel.shape[0])
    h = _initial_state(h0, x.shape[0], units)
    states = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
        states.append(h)
    return np.stack(states, axis=1)


def gru(x, kernel, recurrent_kernel, bias, h0=None, reset_after: bool = True) -> np.ndarray:
    """All hidden states of a GRU with Keras' weights: (N, T, units).

    kernel (D, 3u), recurrent_kernel (u, 3u); bias (2, 3u) with
    reset_after=True (input bias, recurrent bias) or (3u,) without.
    """
    kernel, recurrent = np.asarray(kernel, float), np.asarray(recurrent_kernel, float)
    bias = np.asarray(bias, float)
    units = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 3 * units or recurrent.shape != (units, 3 * units):
        raise ValueError(f"expected kernel (D, {3 * units}) and recurrent_kernel "
                         f"({units}, {3 * units}), got {kernel.shape} and {recurrent.shape}")
    expected_bias = (2, 3 * units) if reset_after else (3 * units,)
    if bias.shape != expected_bias:
        raise ValueError(f"with reset_after={reset_after} the bias must have shape "
                         f"{expected_bias}, got {bias.shape}")
    x = _check_sequence(x, kernel.shape[0])
    h = _initial_state(h0, x.shape[0], units)
    b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * units))
    W_z, W_r, W_h = np.split(kernel, 3, axis=1)
    U_z, U_r, U_h = np.split(recurrent, 3, axis=1)
    bz, br, bh = np.split(b_in, 3)
    rz, rr, rh = np.split(b_rec, 3)
    states = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        z = sigmoid(xt @ W_z + bz + h @ U_z + rz)
        r = sigmoid(xt @ W_r + br + h @ U_r + rr)
        if reset_after:
            c = np.tanh(xt @ W_h + bh + r * (h @ U_h + rh))
        else:
            c = np.tanh(xt @ W_h + (r * h) @ U_h + bh)
        h = z * h + (1.0 - z) * c
        states.append(h)
    return np.stack(states, axis=1)
