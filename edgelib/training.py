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
    """A tf.data pipeline: from_tensor_slices -> [map_fn per example] -> [cache]
    -> [shuffle] -> batch -> [prefetch].

    `map_fn` (e.g. decoding) runs on each example; `cache` keeps its results
    in memory after the first pass, so later epochs skip it; `shuffle` comes
    *after* the cache and reshuffles every epoch with a fixed `seed`
    (repeatable; a shuffle before the cache would be frozen into it and
    replayed every epoch); `prefetch` prepares the next batch while the
    model works on the current one.
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
    if map_fn is not None:
        data = data.map(map_fn)
    if cache:
        data = data.cache()
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    if prefetch:
        data = data.prefetch(tf.data.AUTOTUNE)
    return data


def restart(model, weights, learning_rate) -> None:
    """Put a compiled model back at the start of a run (chapter 03 builds it): these
    weights, the optimizer's state at zero (its step count and, for Adam, its moment
    estimates), this learning rate. The model keeps its traced training step, so a
    restart costs no new trace; it trains as a fresh model with these weights would,
    as long as it has no random layer (a dropout layer keeps drawing its masks)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError("restart needs a compiled model (call model.compile first); "
                         f"got {type(model).__name__} without an optimizer")
    expected = len(model.get_weights())
    if len(weights) != expected:
        raise ValueError(f"restart expected {expected} weight arrays for {model.name}, "
                         f"got {len(weights)}")
    import tensorflow as tf

    model.set_weights(weights)
    variables = optimizer.variables
    for variable in variables() if callable(variables) else variables:
        variable.assign(tf.zeros_like(variable))
    optimizer.learning_rate = learning_rate


def count_event_files(logdir) -> int:
    """Number of TensorBoard event files under `logdir` (0 if it does not exist)."""
    from pathlib import Path

    return sum(1 for _ in Path(logdir).rglob("events.out.tfevents.*"))


TUNERS = ("random", "bayesian")


def tiny_cnn_hypermodel(hp, max_learning_rate: float = 3e-2):
    """The search space of chapter 03's tuner comparison: a one-convolution CNN
    (filters 4-16, dropout 0-0.5, Adam's learning rate 1e-4 to `max_learning_rate`,
    log scale)."""
    import tf_keras as keras

    if not 1e-4 < max_learning_rate <= 10:
        raise ValueError(f"max_learning_rate must be in (1e-4, 10], got {max_learning_rate!r}")
    layers = keras.layers
    model = keras.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(hp.Int("filters", 4, 16, step=4), 3, strides=2, activation="relu"),
        layers.MaxPooling2D(), layers.Flatten(),
        layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1)), layers.Dense(10)])
    learning_rate = hp.Float("learning_rate", 1e-4, max_learning_rate, sampling="log")
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    return model


def run_tuner(kind: str, train, val, seed: int, directory, max_trials: int = 8,
              num_initial_points: int = 3, epochs: int = 1, hypermodel=None):
    """Run a KerasTuner search ('random' or 'bayesian') on (x, y) pairs `train`
    and `val`, scored by validation accuracy; return (trial scores in the order
    they ran, the best trial's `HyperParameters`, the trials' settings). The Bayesian search draws
    `num_initial_points` random trials, then lets its Gaussian process choose
    the remaining `max_trials - num_initial_points`. Also returns each trial's
    settings (a list of dicts, in the order they ran)."""
    import tf_keras as keras

    if kind not in TUNERS:
        raise ValueError(f"kind must be one of {TUNERS}, got {kind!r}")
    if kind == "bayesian" and not 0 < num_initial_points < max_trials:
        raise ValueError(f"num_initial_points must be in 1..max_trials - 1 for a model-guided "
                         f"search, got {num_initial_points} with max_trials {max_trials}")
    kt = import_keras_tuner()
    common = dict(objective="val_accuracy", max_trials=max_trials, seed=seed,
                  directory=str(directory), project_name=f"{kind}_{seed}", overwrite=True)
    build = hypermodel or tiny_cnn_hypermodel
    if kind == "bayesian":
        tuner = kt.BayesianOptimization(build, num_initial_points=num_initial_points, **common)
    else:
        tuner = kt.RandomSearch(build, **common)
    keras.utils.set_random_seed(seed)
    tuner.search(*train, validation_data=val, epochs=epochs, batch_size=64, verbose=0)
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    scores = [float(t.score) for t in trials]
    settings = [dict(t.hyperparameters.values) for t in trials]
    return scores, tuner.get_best_hyperparameters()[0], settings
