"""Model builders shared by several chapters (tf_keras, i.e. Keras 2).

Import after `edgelib.setup()`, which selects Keras 2 before TensorFlow loads.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def digits_cnn(filters: tuple[int, int] = (8, 16), input_shape=(28, 28, 1), classes: int = 10):
    """A small LeNet-style CNN for 28x28 digits, returning logits.

    conv(3x3) -> maxpool -> conv(3x3) -> maxpool -> flatten -> dense(classes).
    Small on purpose: a few thousand parameters, converts to every TFLite mode.
    """
    import tf_keras as keras

    if len(filters) != 2 or min(filters) < 1:
        raise ValueError(f"filters must be two positive ints, got {filters!r}")
    layers = keras.layers
    return keras.Sequential(
        [
            layers.Input(shape=input_shape),
            layers.Conv2D(filters[0], 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(filters[1], 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(classes, name="logits"),
        ],
        name="digits_cnn",
    )


def compile_classifier(model, learning_rate: float = 1e-3):
    """Adam + sparse categorical cross-entropy on logits + accuracy."""
    import tf_keras as keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


DS_CNN_EPOCHS = 6  # chapter 13's recipe: 6 epochs, batch 64, Adam 5e-3 with cosine decay


def ds_cnn(input_shape=(49, 40, 1), channels: int = 64, blocks: int = 4, classes: int = 12,
           strides=(2, 4)):
    """DS-CNN keyword spotter (MLPerf Tiny family), softmax output.

    conv 10x4 with `strides` (time, frequency) -> `blocks` x (depthwise 3x3 +
    pointwise 1x1, each with batch norm and ReLU) -> global average pool ->
    dropout -> dense. The default strides take 49 frames x 40 mel bands to a
    25 x 10 map (neighbouring mel bands carry much the same information);
    strides (2, 2) would give 25 x 20 and double the work of every block.
    """
    import tf_keras as keras

    if channels < 1 or blocks < 0 or classes < 2:
        raise ValueError(f"need channels >= 1, blocks >= 0, classes >= 2; got {channels}, "
                         f"{blocks}, {classes}")
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(channels, (10, 4), strides=strides, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    for _ in range(blocks):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
        x = layers.Conv2D(channels, 1, use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="ds_cnn")


def train_keyword_spotter(model, x_train, y_train, validation=None, epochs: int = DS_CNN_EPOCHS,
                          batch_size: int = 64, learning_rate: float = 5e-3, seed: int = 13,
                          on_epoch=None) -> list[dict]:
    """Chapter 13's recipe: Adam with cosine decay, mel-band shifts redrawn every epoch.

    `validation` = (x_val, y_val) is evaluated after each epoch; `on_epoch`
    (if given) is called with each epoch's record {"epoch", "accuracy",
    "val_accuracy"}. Returns the list of records.
    """
    import tf_keras as keras

    from edgelib.audio import shift_bands

    if len(x_train) != len(y_train):
        raise ValueError(f"x_train has {len(x_train)} examples but y_train {len(y_train)}")
    rng = np.random.default_rng(seed)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate,
                                                                               steps)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = []
    for epoch in range(epochs):
        fit = model.fit(shift_bands(x_train, rng), y_train, batch_size=batch_size, epochs=1,
                        verbose=0)
        record = {"epoch": epoch + 1, "accuracy": fit.history["accuracy"][0]}
        if validation is not None:
            record["val_accuracy"] = model.evaluate(*validation, verbose=0)[1]
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return history


PRETRAINED_KWS = "pretrained/kws_ds_cnn.npz"  # under data/; written by scripts/pretrain_kws.py


class Pretrained(NamedTuple):
    model: object  # the tf_keras model
    clip_range: tuple[float, float]  # what audio.kws_features must clip to
    calibration: np.ndarray  # indices of the training clips of its int8 calibration sample
    meta: dict  # strings: seed, epochs, test accuracy, recipe


def save_pretrained_keyword_spotter(model, clip_range: tuple[float, float], path,
                                    calibration=(), **meta) -> None:
    """Store a trained `ds_cnn()` (default shape) as plain arrays in an .npz:
    its weights in `get_weights()` order, the feature clip range it was trained
    with, the indices of its calibration clips in the training split, and
    `meta` (numbers or strings: seed, epochs, test accuracy...)."""
    weights = model.get_weights()
    arrays = {f"weight_{i:02d}": w for i, w in enumerate(weights)}
    np.savez_compressed(path, **arrays, clip_range=np.asarray(clip_range, np.float64),
                        calibration=np.asarray(calibration, np.int64),
                        meta_keys=np.array(list(meta), dtype=str),
                        meta_values=np.array([str(v) for v in meta.values()], dtype=str))


def pretrained_keyword_spotter(path=None):
    """The keyword spotter the course ships, trained with chapter 13's recipe
    (`scripts/pretrain_kws.py`): a `Pretrained` (model, clip_range,
    calibration, meta).

    `model` is `ds_cnn()` with the stored weights (softmax over the 12
    classes of `speech_commands`); `clip_range` is what `audio.kws_features`
    must clip to; `calibration` holds the indices, in the training split, of
    the clips of its int8 calibration sample (`quantization.calibration_sample`
    of the training features: it covers their whole range); `meta` is a dict
    of strings (seed, epochs, test accuracy...).
    """
    from pathlib import Path

    from .datasets import DATA_DIR

    path = Path(path) if path is not None else DATA_DIR / PRETRAINED_KWS
    if not path.is_file():
        raise FileNotFoundError(f"no pretrained keyword spotter at {path}; it ships with the "
                                "course (data/pretrained/), or rebuild it with "
                                "`.venv/bin/python scripts/pretrain_kws.py` (a minute on 2 cores)")
    with np.load(path) as z:
        names = sorted(k for k in z.files if k.startswith("weight_"))
        weights = [z[k] for k in names]
        clip_range = tuple(float(v) for v in z["clip_range"])
        calibration = z["calibration"]
        meta = dict(zip(z["meta_keys"].tolist(), z["meta_values"].tolist(), strict=True))
    model = ds_cnn()
    expected = [tuple(w.shape) for w in model.get_weights()]
    found = [tuple(w.shape) for w in weights]
    if expected != found:
        raise ValueError(f"{path} does not hold a ds_cnn() with the default shape: expected "
                         f"{len(expected)} arrays {expected}, found {len(found)} {found}")
    model.set_weights(weights)
    return Pretrained(model, clip_range, calibration, meta)
