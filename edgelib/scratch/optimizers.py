"""Optimizers and learning-rate schedules from scratch (NumPy), written to
match tf_keras' formulas step for step.

    opt = Adam(learning_rate=1e-3)
    opt.step(params, grads)      # lists of arrays; params are updated in place

SGD (Keras' form):      v <- mu v - lr g;   p <- p + v
Adam:                   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
                        p <- p - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
AdamW:                  p <- p - lr wd p   (decoupled decay, before the Adam step)
"""

from __future__ import annotations

import math

import numpy as np


def _float32(value: float) -> float:
    return float(np.float32(value))


class Optimizer:
    """Base class: validates the parameter and gradient lists, counts steps.

    keras_rounding=True reproduces a detail of tf_keras: it keeps the learning
    rate, the momentum, the weight decay and the betas of Adam's bias correction
    as float32 numbers,
    so 0.05 becomes 0.0500000007. With it, the updates match Keras to
    round-off; without it they differ in about the 6th significant digit.
    """

    def __init__(self, learning_rate: float, keras_rounding: bool = False):
        if not np.isfinite(learning_rate) or learning_rate <= 0:
            raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
        self.keras_rounding = bool(keras_rounding)
        self.learning_rate = _float32(learning_rate) if keras_rounding else float(learning_rate)
        self.iterations = 0
        self._slots: dict[str, list[np.ndarray]] = {}

    def _slot(self, name: str, params) -> list[np.ndarray]:
        if name not in self._slots:
            self._slots[name] = [np.zeros_like(p, dtype=np.float64) for p in params]
        return self._slots[name]

    def _check(self, params, grads) -> None:
        if len(params) != len(grads):
            raise ValueError(f"{len(params)} parameters but {len(grads)} gradients")
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if np.shape(p) != np.shape(g):
                raise ValueError(f"parameter {i} has shape {np.shape(p)}, "
                                 f"its gradient {np.shape(g)}")
            if not np.isfinite(g).all():
                raise ValueError(f"gradient {i} contains NaN or infinite values")
        for name, slots in self._slots.items():
            if [s.shape for s in slots] != [np.shape(p) for p in params]:
                raise ValueError(f"the parameters changed shape since the first step ({name})")

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self._check(params, grads)
        self.iterations += 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            self._update(i, p, np.asarray(g, dtype=np.float64), params)

    def _update(self, i, p, g, params):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """Gradient descent; with momentum mu in Keras' velocity form."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 keras_rounding: bool = False):
        super().__init__(learning_rate, keras_rounding)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = _float32(momentum) if keras_rounding else float(momentum)

    def _update(self, i, p, g, params):
        if self.momentum == 0:
            p -= self.learning_rate * g
            return
        v = self._slot("velocity", params)[i]
        v *= self.momentum
        v -= self.learning_rate * g
        p += v


class Adam(Optimizer):
    """Adam (Kingma & Ba) with Keras' placement of epsilon and bias correction."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, keras_rounding: bool = False):
        super().__init__(learning_rate, keras_rounding)
        for name, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta!r}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def _update(self, i, p, g, params):
        m, v = self._slot("m", params)[i], self._slot("v", params)[i]
        m += (1 - self.beta_1) * (g - m)
        v += (1 - self.beta_2) * (g * g - v)
        t = self.iterations
        b1, b2 = self.beta_1, self.beta_2
        if self.keras_rounding:
            b1, b2 = _float32(b1), _float32(b2)
        alpha = self.learning_rate * math.sqrt(1 - b2**t) / (1 - b1**t)
        p -= alpha * m / (np.sqrt(v) + self.epsilon)


class AdamW(Adam):
    """Adam with decoupled weight decay: p <- p - lr * wd * p, then the Adam step
    with the gradient of the loss alone (Loshchilov & Hutter)."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, **adam):
        super().__init__(learning_rate, **adam)
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.weight_decay = _float32(weight_decay) if self.keras_rounding else float(weight_decay)

    def _update(self, i, p, g, params):
        p -= self.learning_rate * self.weight_decay * p
        super()._update(i, p, g, params)


# ------------------------------------------------------------- schedules


def _check_step(step, total: int | None = None) -> None:
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if total is not None and total < 1:
        raise ValueError(f"the number of steps must be >= 1, got {total}")


def step_decay(step: int, initial: float, boundaries: list[int], factor: float = 0.1) -> float:
    """Piecewise constant: initial * factor^k after the k-th boundary is passed
    (like PiecewiseConstantDecay: the value changes after step > boundary)."""
    _check_step(step)
    if list(boundaries) != sorted(boundaries):
        raise ValueError(f"boundaries must be increasing, got {boundaries}")
    return initial * factor ** sum(step > b for b in boundaries)


def cosine_decay(step: int, initial: float, decay_steps: int, alpha: float = 0.0) -> float:
    """initial * ((1 - alpha) * (1 + cos(pi * min(step, T) / T)) / 2 + alpha)."""
    _check_step(step, decay_steps)
    progress = min(step, decay_steps) / decay_steps
    return initial * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress)) + alpha)


def warmup_cosine(step: int, peak: float, warmup_steps: int, decay_steps: int,
                  start: float = 0.0) -> float:
    """Linear warm-up from `start` to `peak` over `warmup_steps`, then cosine
    decay to 0 over `decay_steps` (Keras' CosineDecay with warmup_target)."""
    _check_step(step, decay_steps)
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if step < warmup_steps:
        return start + (peak - start) * step / warmup_steps
    return cosine_decay(step - warmup_steps, peak, decay_steps)
