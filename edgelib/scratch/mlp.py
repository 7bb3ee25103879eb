"""A multi-layer perceptron and its backpropagation, from scratch (NumPy).

Column convention, as in the textbook formulas: a batch of N examples is a
matrix with one example per column, shape (features, N).

    forward:   z^l = W^l a^{l-1} + b^l,   a^l = f(z^l)         (a^0 = x)
    output:    delta^L = dC/dz^L          (softmax + cross-entropy: (p - y) / N)
    backward:  delta^l = (W^{l+1})^T delta^{l+1} * f'(z^l)
    gradients: dC/dW^l = delta^l (a^{l-1})^T,   dC/db^l = sum over the batch of delta^l
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# ------------------------------------------------------------ activations


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), without overflow


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh_prime(z):
    return 1.0 - np.tanh(z) ** 2


def relu(z):
    return np.maximum(z, 0.0)


def relu_prime(z):
    return (z > 0).astype(np.asarray(z).dtype)


ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (sigmoid, sigmoid_prime),
    "tanh": (np.tanh, tanh_prime),
    "relu": (relu, relu_prime),
}

# ---------------------------------------------------------------- losses


def log_softmax(z, axis: int = 0):
    """log softmax via log-sum-exp: z - max - log(sum(exp(z - max))): never overflows."""
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(z, axis: int = 0):
    return np.exp(log_softmax(z, axis))


def one_hot(labels, classes: int) -> np.ndarray:
    """Labels (N,) -> one-hot columns (classes, N)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must be in 0..{classes - 1}, got {labels.min()}..{labels.max()}")
    out = np.zeros((classes, labels.size))
    out[labels, np.arange(labels.size)] = 1.0
    return out


def cross_entropy(logits, labels) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of logit columns (classes, N) and its gradient
    dC/dz = (softmax(z) - y) / N."""
    logits = np.asarray(logits, dtype=np.float64)
    y = one_hot(labels, logits.shape[0])
    if y.shape != logits.shape:
        raise ValueError(f"{logits.shape[1]} logit columns but {y.shape[1]} labels")
    n = logits.shape[1]
    loss = -np.sum(y * log_softmax(logits)) / n
    return float(loss), (softmax(logits) - y) / n


def mse(prediction, target) -> tuple[float, np.ndarray]:
    """Mean over examples of the squared error summed over outputs,
    C = sum (p - t)^2 / N, and its gradient dC/dp = 2 (p - t) / N."""
    p, t = np.asarray(prediction, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and target {t.shape} differ in shape")
    n = p.shape[-1] if p.ndim > 1 else p.size
    return float(np.sum((p - t) ** 2) / n), 2 * (p - t) / n


# --------------------------------------------------------------- the MLP


class MLP:
    """A fully connected network; hidden layers use `activation`, the output
    layer is linear (logits). Trained with softmax cross-entropy."""

    def __init__(self, sizes, activation: str = "relu", seed: int = 0):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list >= 2 positive layer widths, got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
        self.sizes, self.activation = sizes, activation
        self.f, self.f_prime = ACTIVATIONS[activation]
        rng = np.random.default_rng(seed)
        gain = 2.0 if activation == "relu" else 1.0  # He (2 / n_in) vs LeCun (1 / n_in) variance
        self.W = [rng.normal(0.0, np.sqrt(gain / n_in), size=(n_out, n_in))
                  for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
        self.b = [np.zeros((n_out, 1)) for n_out in sizes[1:]]

    def _check_x(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.sizes[0]:
            raise ValueError(f"x must have shape ({self.sizes[0]}, N): one example per column; "
                             f"got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values")
        return x

    def forward(self, x) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """All pre-activations z^1..z^L and activations a^0..a^L (a^L = z^L, logits)."""
        a = self._check_x(x)
        zs, activations = [], [a]
        for layer, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            z = W @ a + b
            a = z if layer == len(self.W) - 1 else self.f(z)
            zs.append(z)
            activations.append(a)
        return zs, activations

    def logits(self, x) -> np.ndarray:
        return self.forward(x)[1][-1]

    def predict(self, x) -> np.ndarray:
        return self.logits(x).argmax(axis=0)

    def loss_and_gradients(self, x, labels):
        """Mean cross-entropy and its gradients (dW list, db list) by backpropagation."""
        zs, activations = self.forward(x)
        loss, delta = cross_entropy(activations[-1], labels)
        dW, db = [None] * len(self.W), [None] * len(self.W)
        for layer in reversed(range(len(self.W))):
            dW[layer] = delta @ activations[layer].T
            db[layer] = delta.sum(axis=1, keepdims=True)
            if layer:
                delta = (self.W[layer].T @ delta) * self.f_prime(zs[layer - 1])
        return loss, dW, db

    def sgd_step(self, x, labels, learning_rate: float) -> float:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        loss, dW, db = self.loss_and_gradients(x, labels)
        for i in range(len(self.W)):
            self.W[i] -= learning_rate * dW[i]
            self.b[i] -= learning_rate * db[i]
        return loss


def numerical_gradient(f: Callable[[], float], param: np.ndarray, eps: float = 1e-6):
    """Central differences (f(p + eps) - f(p - eps)) / (2 eps) for every entry
    of `param`, changed in place and restored. Error O(eps^2)."""
    grad = np.zeros_like(param, dtype=np.float64)
    for idx in np.ndindex(param.shape):
        old = param[idx]
        param[idx] = old + eps
        up = f()
        param[idx] = old - eps
        down = f()
        param[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def relative_error(a, b) -> float:
    """max |a - b| / max(|a|, |b|, tiny): scale-free agreement of two gradients."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300))
