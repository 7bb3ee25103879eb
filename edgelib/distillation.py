"""Model migration: knowledge distillation and few-shot transfer learning.

    from edgelib import distillation
    p = distillation.soft_targets(logits, temperature=8.0)          # NumPy
    loss = distillation.distillation_loss(teacher_logits, student_logits, 8.0)   # TensorFlow
    d = distillation.Distiller(student, teacher, temperature=8.0, alpha=0.1)
    d.compile(keras.optimizers.Adam(1e-3)); d.fit(x, y, ...)       # custom train_step
    student = distillation.distill_student(teacher, x_train, y_train, seed=0)
    blob = distillation.distilled_student_int8(teacher, x_train, y_train, representative)

    extractor = distillation.feature_extractor(kws_model)          # frozen, up to the pooling
    idx = distillation.few_shot_indices(y, shots=5, rng=rng)       # 5 examples per class
    head = distillation.train_head(embeddings[idx], y[idx], classes=4, steps=100, seed=0)
    adapted = distillation.attach_head(extractor, head)            # one model, to convert

Import after `edgelib.setup()` (Keras 2 is chosen before TensorFlow loads).
"""

from __future__ import annotations

import numpy as np

TEMPERATURE = 8.0  # soft targets at T = 8 (Hinton et al. 2015 used 1..20)
ALPHA = 0.1  # weight of the hard-label cross-entropy; 1 - ALPHA on the soft targets
STUDENT_FILTERS = (8, 16)  # the student digits CNN: 5,258 parameters, 1/6.6 of the teacher
STUDENT_EPOCHS = 6  # chapter 12 trains every student 6 epochs of 64 on the 3,500 digits


class DistillationError(ValueError):
    """Bad input to a distillation or transfer helper; the message says what was expected."""


def _logits(x, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise DistillationError(f"{what} must be a 2-D array (examples, classes >= 2), "
                                f"got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DistillationError(f"{what} must be finite, got NaN or Inf")
    return arr


def _temperature(t) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)):
        raise DistillationError(f"temperature must be a positive number, got {t!r}")
    if not np.isfinite(t) or t <= 0:
        raise DistillationError(f"temperature must be a positive number, got {t!r}")
    return float(t)


def _alpha(a) -> float:
    if isinstance(a, bool) or not isinstance(a, (int, float, np.floating)) or not 0 <= a <= 1:
        raise DistillationError(f"alpha must be a number in [0, 1], got {a!r}")
    return float(a)


def soft_targets(logits, temperature: float = TEMPERATURE) -> np.ndarray:
    """softmax(logits / T) per row, in NumPy (float64): T > 1 softens the distribution."""
    z = _logits(logits, "logits") / _temperature(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def distillation_loss(teacher_logits, student_logits, temperature: float = TEMPERATURE):
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), mean over the batch (TensorFlow).

    The T^2 factor keeps the gradient with respect to the student's logits on
    the scale of the hard-label loss: without it the gradient shrinks like 1/T^2.
    """
    import tensorflow as tf

    t = _temperature(temperature)
    teacher_logits = tf.convert_to_tensor(teacher_logits, tf.float32)
    student_logits = tf.convert_to_tensor(student_logits, tf.float32)
    if teacher_logits.shape.rank != 2 or teacher_logits.shape != student_logits.shape:
        raise DistillationError("teacher and student logits must be 2-D and of one shape, got "
                                f"{teacher_logits.shape} and {student_logits.shape}")
    p = tf.nn.softmax(teacher_logits / t)
    log_p = tf.nn.log_softmax(teacher_logits / t)
    log_q = tf.nn.log_softmax(student_logits / t)
    return t * t * tf.reduce_mean(tf.reduce_sum(p * (log_p - log_q), axis=1))


_DISTILLER = None


def _distiller_class():
    """Build the Distiller class on first use (tf_keras is imported only then)."""
    global _DISTILLER
    if _DISTILLER is not None:
        return _DISTILLER
    import tensorflow as tf
    import tf_keras as keras

    class Distiller(keras.Model):
        """Trains `student` on alpha * CE(labels) + (1 - alpha) * T^2 KL(teacher_T || student_T).

        `fit(x, y)`: y holds the labels, and the frozen `teacher` is run on each
        batch inside train_step; or `fit(x, (y, teacher_logits))` with the
        teacher's logits computed once beforehand (same loss, no teacher
        forward pass per step; then `teacher` may be None). Both models
        return logits. `evaluate` reports the student's cross-entropy and
        accuracy on labels. The student is trained in place.
        """

        def __init__(self, student, teacher=None, temperature: float = TEMPERATURE,
                     alpha: float = ALPHA):
            super().__init__()
            self.student, self.teacher = student, teacher
            self.temperature, self.alpha = _temperature(temperature), _alpha(alpha)
            self.hard_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.soft_tracker = keras.metrics.Mean(name="soft_loss")
            self.acc = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

        @property
        def metrics(self):
            return [self.loss_tracker, self.soft_tracker, self.acc]

        def call(self, x, training=False):
            return self.student(x, training=training)

        def _unpack(self, data):
            x, y = data[0], data[1]
            if isinstance(y, (tuple, list)):
                labels, teacher_logits = y
            else:
                if self.teacher is None:
                    raise DistillationError("no teacher: pass y as (labels, teacher_logits)")
                labels, teacher_logits = y, self.teacher(x, training=False)
            return x, labels, tf.stop_gradient(tf.cast(teacher_logits, tf.float32))

        def train_step(self, data):
            x, labels, teacher_logits = self._unpack(data)
            with tf.GradientTape() as tape:
                logits = self.student(x, training=True)
                soft = distillation_loss(teacher_logits, logits, self.temperature)
                loss = self.alpha * self.hard_loss(labels, logits) + (1 - self.alpha) * soft
            variables = self.student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables,
                                               strict=True))
            self.loss_tracker.update_state(loss)
            self.soft_tracker.update_state(soft)
            self.acc.update_state(labels, logits)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y = data[0], data[1]
            labels = y[0] if isinstance(y, (tuple, list)) else y
            logits = self.student(x, training=False)
            self.loss_tracker.update_state(self.hard_loss(labels, logits))
            self.acc.update_state(labels, logits)
            return {"loss": self.loss_tracker.result(), "accuracy": self.acc.result()}

    _DISTILLER = Distiller
    return Distiller


def __getattr__(name):
    if name == "Distiller":
        return _distiller_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _xy(x, y, what: str = "x") -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise DistillationError(f"{what} and y must be non-empty and of one length, got "
                                f"{len(x)} and {len(y)}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DistillationError(f"y must be a 1-D array of integer labels, got {y.dtype} "
                                f"shape {y.shape}")
    return x, y


def train_student(student, x, y, teacher_logits=None, temperature: float = TEMPERATURE,
                  alpha: float = ALPHA, epochs: int = STUDENT_EPOCHS, batch_size: int = 32,
                  learning_rate: float = 1e-3, seed: int = 0):
    """Train `student` (logits out) for `epochs` over (x, y), in place; returns it.

    With `teacher_logits` (the frozen teacher's logits for x, shape (N, classes)):
    by distillation (`Distiller`, alpha * hard + (1 - alpha) * T^2 soft loss).
    Without: alone, on the labels (cross-entropy). Same optimizer, batches and
    number of steps either way, so the two differ only in the loss.
    """
    import tf_keras as keras

    x, y = _xy(x, y)
    keras.utils.set_random_seed(seed)
    optimizer = keras.optimizers.Adam(learning_rate)
    if teacher_logits is None:
        student.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        metrics=["accuracy"])
        student.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
        return student
    teacher_logits = _logits(teacher_logits, "teacher_logits").astype(np.float32)
    if len(teacher_logits) != len(x):
        raise DistillationError(f"teacher_logits has {len(teacher_logits)} rows but x has "
                                f"{len(x)} examples")
    distiller = _distiller_class()(student, None, temperature, alpha)
    distiller.compile(optimizer)
    distiller.fit(x, (y, teacher_logits), epochs=epochs, batch_size=batch_size, verbose=0)
    return student


def student_cnn(filters=STUDENT_FILTERS):
    """The student: chapter 04's digits CNN with few filters (logits out)."""
    from . import models

    return models.digits_cnn(filters=filters)


def distill_student(teacher, x_train, y_train, seed: int = 0, epochs: int = STUDENT_EPOCHS,
                    batch_size: int = 64, filters=STUDENT_FILTERS, teacher_logits=None):
    """A fresh student CNN (`student_cnn(filters)`, initialized from `seed`) distilled
    from `teacher` (logits out) on (x_train, y_train): chapter 12's recipe. The
    teacher's logits are computed once (pass them as `teacher_logits` to reuse)."""
    import tf_keras as keras

    x_train, y_train = _xy(x_train, y_train, "x_train")
    if teacher_logits is None:
        teacher_logits = teacher.predict(x_train, batch_size=256, verbose=0)
    keras.utils.set_random_seed(seed)
    student = student_cnn(filters)
    return train_student(student, x_train, y_train, teacher_logits, epochs=epochs,
                         batch_size=batch_size, seed=seed)


def distilled_student_int8(teacher, x_train, y_train, representative, seed: int = 0,
                           epochs: int = STUDENT_EPOCHS, filters=STUDENT_FILTERS) -> bytes:
    """`distill_student(...)` converted to full int8 with `representative`: the
    .tflite bytes (the course benchmark's "distilled student int8" row)."""
    from . import tflite

    student = distill_student(teacher, x_train, y_train, seed=seed, epochs=epochs,
                              filters=filters)
    return tflite.convert(student, "int8", representative=representative)


# ----------------------------------------------------------------- transfer learning


def feature_extractor(model, layer: str | None = None):
    """The trained `model` up to `layer` (default: its global-average-pooling layer),
    as a frozen Keras model: the features a new head is trained on."""
    import tf_keras as keras

    names = [lyr.name for lyr in model.layers]
    if layer is None:
        pools = [lyr.name for lyr in model.layers if "GlobalAveragePooling" in type(lyr).__name__]
        if not pools:
            raise DistillationError(f"{model.name} has no global pooling layer; name the layer "
                                    f"to cut at, one of {names}")
        layer = pools[-1]
    if layer not in names:
        raise DistillationError(f"no layer {layer!r} in {model.name}; layers: {names}")
    extractor = keras.Model(model.inputs, model.get_layer(layer).output,
                            name=f"{model.name}_features")
    extractor.trainable = False
    return extractor


def few_shot_indices(y, shots: int, rng: np.random.Generator) -> np.ndarray:
    """`shots` distinct random indices of every class of `y` (sorted), drawn with `rng`."""
    y = np.asarray(y)
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise DistillationError(f"shots must be a positive int, got {shots!r}")
    if y.ndim != 1 or len(y) == 0:
        raise DistillationError(f"y must be a non-empty 1-D array of labels, got shape {y.shape}")
    picks = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if len(members) < shots:
            raise DistillationError(f"class {c} has {len(members)} examples, fewer than "
                                    f"shots={shots}")
        picks.append(rng.choice(members, shots, replace=False))
    return np.sort(np.concatenate(picks))


def fit_steps(model, x, y, steps: int, batch_size: int, seed: int, augment=None) -> None:
    """`steps` optimizer steps of a compiled `model` on minibatches of (x, y),
    reshuffled every pass (the same batches for the same `seed`)."""
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise DistillationError(f"{name} must be a positive int, got {value!r}")
    if len(x) != len(y) or len(x) == 0:
        raise DistillationError(f"x and y must hold the same number (>= 1) of examples, "
                                f"got {len(x)} and {len(y)}")
    rng = np.random.default_rng(seed)
    batch_size = min(batch_size, len(x))
    order = np.concatenate([rng.permutation(len(x))
                            for _ in range(-(-steps * batch_size // len(x)))])
    order = order[: steps * batch_size]
    xs = x[order] if augment is None else augment(x[order], rng)
    model.fit(xs, y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)


def train_head(features, y, classes: int, steps: int = 150, batch_size: int = 32,
               learning_rate: float = 1e-2, seed: int = 0):
    """A new softmax head (Dense) trained on fixed features (N, d) for `steps` steps.

    Training only the head on precomputed features equals training the whole
    model with a frozen extractor (the extractor's output does not change),
    but costs a forward pass per example once, not per step.
    """
    import tf_keras as keras

    features, y = _xy(features, y, "features")
    if features.ndim != 2:
        raise DistillationError(f"features must be 2-D (examples, dims), got {features.shape}")
    if y.min() < 0 or y.max() >= classes:
        raise DistillationError(f"labels must be in 0..{classes - 1}, got {y.min()}..{y.max()}")
    keras.utils.set_random_seed(seed)
    head = keras.Sequential([keras.Input((features.shape[1],)),
                             keras.layers.Dense(classes, activation="softmax", name="new_head")],
                            name="new_head")
    head.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    fit_steps(head, features.astype(np.float32), y, steps, batch_size, seed)
    return head


def attach_head(extractor, head):
    """One Keras model: the frozen `extractor` followed by `head` (to convert and deploy)."""
    import tf_keras as keras

    if tuple(extractor.output.shape[1:]) != tuple(head.input.shape[1:]):
        raise DistillationError(f"the head expects inputs of shape {tuple(head.input.shape[1:])}"
                                f" but the extractor gives {tuple(extractor.output.shape[1:])}")
    return keras.Model(extractor.inputs, head(extractor.output), name="adapted")


def train_from_scratch(model, x, y, steps: int = 150, batch_size: int = 32,
                       learning_rate: float = 5e-3, seed: int = 0):
    """Train a fresh `model` (softmax out) on few examples for `steps` steps, in place:
    chapter 13's recipe (Adam with cosine decay, mel-band shifts). Returns it."""
    import tf_keras as keras

    from .audio import shift_bands

    x, y = _xy(x, y)
    keras.utils.set_random_seed(seed)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    fit_steps(model, x, y, steps, batch_size, seed, augment=shift_bands)
    return model
