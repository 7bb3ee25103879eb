"""Model builders shared by several chapters (tf_keras, i.e. Keras 2).

Import after `edgelib.setup()`, which selects Keras 2 before TensorFlow loads.
"""

from __future__ import annotations


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
