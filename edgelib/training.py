"""Helpers for training in practice (chapter 03 and later chapters)."""

from __future__ import annotations

import sys


def import_keras_tuner():
    """Import KerasTuner so that it builds and trains tf_keras (Keras 2) models.

    KerasTuner 1.4 decides at import time which Keras to use by importing
    the `keras` package: with TensorFlow 2.21 that is Keras 3, and the tuner
    then rejects tf_keras models ("Expected ... a valid Keras Model").
    During the import we let `keras` name tf_keras (which has no Keras 3
    `version()`), so the tuner falls back to `tf.keras`, which
    `edgelib.setup()` has made tf_keras. Call after `edgelib.setup()`.
    """
    if "keras_tuner" in sys.modules:
        return sys.modules["keras_tuner"]
    import tf_keras

    saved = sys.modules.get("keras")
    sys.modules["keras"] = tf_keras
    try:
        import keras_tuner
    finally:
        if saved is None:
            sys.modules.pop("keras", None)
        else:
            sys.modules["keras"] = saved
    from keras_tuner.src.backend.config import multi_backend

    if multi_backend():  # pragma: no cover - a KerasTuner release that changed the check
        raise RuntimeError("KerasTuner selected Keras 3; the course's models are tf_keras")
    return keras_tuner


def make_dataset(x, y, batch_size: int = 64, shuffle: bool = True, seed: int = 0,
                 cache: bool = True, prefetch: bool = True, map_fn=None):
    """A tf.data pipeline: from_tensor_slices -> [cache] -> [shuffle] -> batch
    -> [map_fn per batch] -> [prefetch].

    `cache` keeps the examples in memory after the first pass; `shuffle`
    reshuffles every epoch with a fixed `seed` (repeatable); `prefetch`
    prepares the next batch while the model trains on the current one.
    """
    import numpy as np
    import tensorflow as tf

    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    data = tf.data.Dataset.from_tensor_slices((x, y))
    if cache:
        data = data.cache()
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    if map_fn is not None:
        data = data.map(map_fn)
    if prefetch:
        data = data.prefetch(tf.data.AUTOTUNE)
    return data


def count_event_files(logdir) -> int:
    """Number of TensorBoard event files under `logdir` (0 if it does not exist)."""
    from pathlib import Path

    return sum(1 for _ in Path(logdir).rglob("events.out.tfevents.*"))
