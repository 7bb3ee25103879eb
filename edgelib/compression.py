"""Pruning, weight clustering and their quantization-aware fine-tuning (tfmot),
and what of it reaches a .tflite file.

    from edgelib import compression
    pruned = compression.prune(model, x, y, target=0.9, epochs=2)   # stripped, float
    compression.sparsity(pruned)                  # {"conv1": 0.9, ...} fraction of zero weights
    blob = tflite.convert(pruned, "int8", representative=x[:200])
    compression.tflite_sparsity(blob)             # the zeros, read back from the file
    clustered = compression.cluster(model, x, y, clusters=16)
    compression.unique_values(clustered)          # {"conv1": 16, ...}
    qat = compression.preserving_qat(pruned, x, y, keep="sparsity")

Every function copies the model it is given: the trained model stays as it
was (tfmot's wrappers would otherwise share, and prune, its layers).
Fine-tuning uses Adam and sparse cross-entropy on logits
(`models.compile_classifier`), so the model must output logits.
"""

from __future__ import annotations

import math

import numpy as np

PRUNABLE = ("Conv2D", "DepthwiseConv2D", "Dense")
SCHEDULES = ("constant", "polynomial")


class CompressionError(ValueError):
    """Bad arguments for a compression step; the message says what was expected."""


def _check_fraction(value, name: str, high_inclusive: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (0 <= value < 1 or (high_inclusive and value == 1)):
        bound = "[0, 1]" if high_inclusive else "[0, 1)"
        raise CompressionError(f"{name} must be a number in {bound}, got {value!r}")
    return float(value)


def _check_positive_int(value, name: str) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise CompressionError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _check_data(model, x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim < 1 or x.shape[1:] != expected:
        raise CompressionError(f"x must have shape (N, {', '.join(map(str, expected))}), "
                               f"got {x.shape}")
    if y.shape != (len(x),):
        raise CompressionError(f"y must hold one integer label per example, shape ({len(x)},), "
                               f"got {y.shape}")
    if len(x) == 0:
        raise CompressionError("x and y are empty: fine-tuning needs examples")
    return x, y


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Training steps in one epoch: ceil(examples / batch_size)."""
    return math.ceil(_check_positive_int(examples, "examples")
                     / _check_positive_int(batch_size, "batch_size"))


def copy_model(model):
    """A new tf_keras model with the same architecture and weights, compiled
    as a classifier (tfmot wraps the layers of the model it gets, so prune or
    cluster a copy to keep the original)."""
    import tf_keras as keras

    from . import models

    if not isinstance(model, keras.Model):
        raise CompressionError(f"expected a tf_keras model, got {type(model).__name__}")
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return models.compile_classifier(clone)


def schedule(kind: str, target: float, total_steps: int, frequency: int = 5,
             prune_fraction: float = 0.6):
    """A tfmot pruning schedule sized to the real number of training steps.

    The pruning step counts training batches from 1 to `total_steps`; masks
    are recomputed at the steps where (step - begin) % frequency == 0.
    "constant": `target` sparsity from the first update (step `frequency`).
    "polynomial": s(t) = s_f (1 - (1 - t / T)^3), rising from 0 to `target`
    at T, the last multiple of `frequency` within the first `prune_fraction`
    of the steps; the remaining steps fine-tune the pruned weights.
    (tfmot's default frequency=100 leaves a run of fewer than 100 steps with
    no update at all, i.e. 0 % sparsity.)
    """
    import tensorflow_model_optimization as tfmot

    if kind not in SCHEDULES:
        raise CompressionError(f"kind must be one of {', '.join(SCHEDULES)}, got {kind!r}")
    target = _check_fraction(target, "target")
    total_steps = _check_positive_int(total_steps, "total_steps")
    frequency = _check_positive_int(frequency, "frequency")
    prune_fraction = _check_fraction(prune_fraction, "prune_fraction", high_inclusive=True)
    end = int(total_steps * prune_fraction) // frequency * frequency
    if end < frequency:
        raise CompressionError(
            f"no pruning update would happen: {total_steps} steps x prune_fraction "
            f"{prune_fraction} is less than frequency={frequency}; train longer or lower it")
    if kind == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(target, begin_step=0, frequency=frequency)
    return tfmot.sparsity.keras.PolynomialDecay(0.0, target, begin_step=0, end_step=end,
                                                frequency=frequency)


def update_steps(pruning_schedule, total_steps: int) -> list[int]:
    """The training steps (1 ... total_steps) at which `pruning_schedule`
    recomputes the masks: what a run of that many steps will really do."""
    total_steps = _check_positive_int(total_steps, "total_steps")
    return [step for step in range(1, total_steps + 1)
            if bool(pruning_schedule(step)[0])]


def _wrap_layers(model, wrap, layers):
    """Copy `model` and apply `wrap` to its layers named in `layers` (None:
    every Conv2D, DepthwiseConv2D and Dense layer)."""
    import tf_keras as keras

    model = copy_model(model)
    names = [layer.name for layer in model.layers]
    if layers is None:
        layers = [layer.name for layer in model.layers if type(layer).__name__ in PRUNABLE]
    unknown = [name for name in layers if name not in names]
    if unknown or not layers:
        raise CompressionError(f"layers must name some of the model's layers {names}; "
                               f"got {list(layers)}")
    chosen = set(layers)

    # the copy's own layers (and weights) go into the wrappers: the original is untouched
    return keras.models.clone_model(
        model, clone_function=lambda layer: wrap(layer) if layer.name in chosen else layer)


def _fit(model, x, y, epochs, batch_size, learning_rate, callbacks=()):
    from . import models

    models.compile_classifier(model, learning_rate=learning_rate)
    model.fit(x, y, epochs=_check_positive_int(epochs, "epochs"),
              batch_size=_check_positive_int(batch_size, "batch_size"), verbose=0,
              callbacks=list(callbacks), shuffle=True)
    return model


def prune(model, x, y, target: float = 0.9, epochs: int = 2, batch_size: int = 64,
          kind: str = "polynomial", frequency: int = 5, m_by_n: tuple[int, int] | None = None,
          layers=None, learning_rate: float = 1e-3):
    """Magnitude pruning (tfmot.sparsity.keras.prune_low_magnitude) while
    fine-tuning on (x, y), schedule sized to epochs x steps per epoch; returns
    the stripped model (plain layers, pruned weights exactly 0), compiled.

    `m_by_n=(2, 4)`: structured pruning instead (in every block of 4
    consecutive weights along the input channels, 2 are zero; layers whose
    input depth is not a multiple of 4 are left dense by tfmot); `target`,
    `kind` and `frequency` are then unused. `layers`: names of the layers to
    prune (default: every Conv2D, DepthwiseConv2D and Dense layer).
    """
    import tensorflow_model_optimization as tfmot

    x, y = _check_data(model, x, y)
    if m_by_n is not None:
        if (not isinstance(m_by_n, tuple) or len(m_by_n) != 2
                or not all(isinstance(v, int) for v in m_by_n) or not 0 < m_by_n[0] < m_by_n[1]):
            raise CompressionError(f"m_by_n must be a tuple (m, n) of ints with 0 < m < n, "
                                   f"e.g. (2, 4); got {m_by_n!r}")

        def wrap(layer):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, sparsity_m_by_n=m_by_n)
    else:
        total = steps_per_epoch(len(x), batch_size) * _check_positive_int(epochs, "epochs")
        pruning_schedule = schedule(kind, target, total, frequency)

        def wrap(layer):
            return tfmot.sparsity.keras.prune_low_magnitude(layer,
                                                            pruning_schedule=pruning_schedule)
    wrapped = _wrap_layers(model, wrap, layers)
    _fit(wrapped, x, y, epochs, batch_size, learning_rate,
         [tfmot.sparsity.keras.UpdatePruningStep()])
    return copy_model(tfmot.sparsity.keras.strip_pruning(wrapped))


def prune_one_shot(model, target: float, layers=None):
    """Magnitude pruning in one shot, without fine-tuning: a copy of `model`
    whose kernels (those of `layers`; default every Conv2D, DepthwiseConv2D
    and Dense layer) keep their largest max(round(n (1 - target)), 1)
    magnitudes (tfmot's rule, per layer) and are zero elsewhere."""
    target = _check_fraction(target, "target")
    pruned = copy_model(model)
    if layers is None:
        layers = [layer.name for layer in pruned.layers if type(layer).__name__ in PRUNABLE]
    names = [layer.name for layer in pruned.layers]
    if not layers or any(name not in names for name in layers):
        raise CompressionError(f"layers must name some of the model's layers {names}; "
                               f"got {list(layers)}")
    for name in layers:
        layer = pruned.get_layer(name)
        kernel = layer.kernel.numpy()
        zeros = expected_zeros(kernel.size, target)
        order = np.argsort(np.abs(kernel).ravel(), kind="stable")
        flat = kernel.ravel().copy()
        flat[order[:zeros]] = 0
        layer.kernel.assign(flat.reshape(kernel.shape))
    return pruned


def cluster(model, x, y, clusters: int = 16, epochs: int = 1, batch_size: int = 64,
            layers=None, learning_rate: float = 1e-4):
    """Weight clustering (tfmot.clustering.keras.cluster_weights, k-means++
    initial centroids), fine-tuned on (x, y); returns the stripped model
    (each clustered kernel holds at most `clusters` distinct values), compiled.
    A low learning rate: the centroids move, the assignments mostly stay."""
    import tensorflow_model_optimization as tfmot

    x, y = _check_data(model, x, y)
    clusters = _check_positive_int(clusters, "clusters")
    if clusters < 2:
        raise CompressionError(f"clusters must be at least 2, got {clusters}")
    init = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS

    def wrap(layer):
        return tfmot.clustering.keras.cluster_weights(layer, number_of_clusters=clusters,
                                                      cluster_centroids_init=init)

    wrapped = _wrap_layers(model, wrap, layers)
    _fit(wrapped, x, y, epochs, batch_size, learning_rate)
    return copy_model(tfmot.clustering.keras.strip_clustering(wrapped))


def preserving_qat(model, x, y, keep: str, epochs: int = 1, batch_size: int = 64,
                   learning_rate: float = 1e-4):
    """Quantization-aware training that keeps what pruning or clustering did:
    `keep="sparsity"` uses Default8BitPrunePreserveQuantizeScheme (the zeros
    stay zero), `keep="clusters"` Default8BitClusterPreserveQuantizeScheme
    (the weights stay on their centroids). `model`: a stripped pruned or
    clustered model. Returns the QAT model (convert it with
    `tflite.convert(qat, "int8", ...)`)."""
    import tensorflow_model_optimization as tfmot

    x, y = _check_data(model, x, y)
    schemes = {"sparsity": tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme,
               "clusters": tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme}
    if keep not in schemes:
        raise CompressionError(f"keep must be one of {', '.join(schemes)}, got {keep!r}")
    annotated = tfmot.quantization.keras.quantize_annotate_model(copy_model(model))
    scheme = schemes[keep]() if keep == "sparsity" else schemes[keep](preserve_sparsity=False)
    qat = tfmot.quantization.keras.quantize_apply(annotated, scheme)
    return _fit(qat, x, y, epochs, batch_size, learning_rate)


# --- measuring: in the Keras model and in the .tflite file --------------------------


def _kernels(model) -> dict[str, np.ndarray]:
    """Kernel variable of every layer that has one, by layer name. A QAT
    model's layers are QuantizeWrappers: the wrapped layer's kernel variable
    is read (its `kernel` attribute is a fake-quantized tensor there)."""
    result = {}
    for layer in getattr(model, "layers", None) or []:
        inner = getattr(layer, "layer", layer)
        for variable in layer.weights:
            if variable.name.split("/")[-1].startswith("kernel"):
                result[inner.name] = np.asarray(variable.numpy())
                break
    if not result:
        raise CompressionError("the model has no layer with a kernel (Conv2D, Dense, ...)")
    return result


def sparsity(model) -> dict[str, float]:
    """Fraction of exactly-zero kernel weights per layer (biases left out)."""
    return {name: float(np.mean(k == 0)) for name, k in _kernels(model).items()}


def unique_values(model) -> dict[str, int]:
    """Number of distinct values in each layer's kernel."""
    return {name: int(np.unique(k).size) for name, k in _kernels(model).items()}


def expected_zeros(size: int, target: float) -> int:
    """Zeros that magnitude pruning leaves in a tensor of `size` weights at
    sparsity `target`: it keeps k = max(round(size (1 - target)), 1), computed
    in float32 as tfmot does, and zeroes the rest."""
    size = _check_positive_int(size, "size")
    target = _check_fraction(target, "target")
    kept = max(int(np.round(np.float32(size) * (np.float32(1) - np.float32(target)))), 1)
    return size - kept


def _interpreter(content, delegate: bool, threads: int = 1, preserve: bool = False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from .environment import quiet_native_stderr

    if not isinstance(content, bytes | bytearray) or len(content) < 8:
        raise CompressionError(f"expected the bytes of a .tflite file, got "
                               f"{type(content).__name__}")
    resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with quiet_native_stderr():
        try:
            interpreter = Interpreter(model_content=bytes(content), num_threads=threads,
                                      experimental_op_resolver_type=resolver,
                                      experimental_preserve_all_tensors=preserve)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise CompressionError(f"LiteRT could not load the model: {exc}") from exc
    return interpreter


def weight_tensors(content: bytes) -> dict[str, np.ndarray]:
    """The kernels of a .tflite file (input 1 of every CONV_2D,
    DEPTHWISE_CONV_2D and FULLY_CONNECTED operator), read with the LiteRT
    interpreter (no TensorFlow), in the file's layout (output channels
    first), keyed "conv_2d_1", "conv_2d_2", "fully_connected_1", ... in
    execution order. int8 kernels come as stored (zero point 0, so a zero
    weight is the integer 0). A kernel stored in sparse format is read as the
    DENSIFY operator expands it before the kernel runs."""
    interpreter = _interpreter(content, delegate=False, preserve=True)
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()  # DENSIFY fills its output on the first run
    result, counts = {}, {}
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            counts[name] = counts.get(name, 0) + 1
            key = f"{name.lower()}_{counts[name]}"
            result[key] = np.array(interpreter.get_tensor(int(op["inputs"][1])))
    return result


def builtin_edge_model(content: bytes, threads: int = 1):
    """An `EdgeModel` run by LiteRT's built-in kernels, without the XNNPACK
    delegate LiteRT applies by default (needed for files XNNPACK refuses,
    e.g. int8 kernels in sparse format, and to compare like with like)."""
    from .runtime import EdgeModel

    return EdgeModel(content, threads=threads, delegate=False)


def tflite_sparsity(content: bytes) -> dict[str, float]:
    """Fraction of zero values in each kernel stored in a .tflite file."""
    return {name: float(np.mean(w == 0)) for name, w in weight_tensors(content).items()}


def unique_per_channel(content: bytes) -> dict[str, int]:
    """For each kernel of a .tflite file, the largest number of distinct
    values in one output channel (an int8 kernel has one scale per output
    channel, so clustered weights give at most `clusters` codes per channel)."""
    return {name: int(max(np.unique(w[c]).size for c in range(w.shape[0])))
            for name, w in weight_tensors(content).items()}


def m_by_n_ok(kernel, m: int = 2, n: int = 4, axis: int = -2) -> bool:
    """True if every block of `n` consecutive weights along `axis` (default:
    the input channels of a Keras kernel, (..., C_in, C_out)) holds at most
    `m` non-zero values (2:4 sparsity: at least 2 zeros in every 4)."""
    kernel = np.asarray(kernel)
    if kernel.ndim < 2:
        raise CompressionError(f"kernel must have at least 2 axes, got shape {kernel.shape}")
    moved = np.moveaxis(kernel, axis, -1)
    if moved.shape[-1] % n:
        raise CompressionError(f"axis {axis} has length {moved.shape[-1]}, not a multiple of "
                               f"n={n}")
    blocks = moved.reshape(-1, n)
    return bool(np.all(np.count_nonzero(blocks, axis=1) <= m))


def convert_sparse(model, mode: str = "int8", representative=None,
                   calibration_steps: int = 200) -> bytes:
    """Convert as `tflite.convert` does ("float32", or full "int8" with int8
    input and output, calibrated on `representative`) with the converter's
    sparse encoding added (tf.lite.Optimize.EXPERIMENTAL_SPARSITY): kernels
    with enough zeros are stored in a compressed sparse format (indices and
    non-zero values) and a DENSIFY operator, or a sparse kernel, reads them."""
    from . import tflite

    if mode not in ("float32", "int8"):
        raise CompressionError(f"mode must be 'float32' or 'int8', got {mode!r}")
    if mode == "int8" and representative is None:
        raise CompressionError("int8 conversion needs representative inputs (an array)")
    return tflite.convert(model, mode, representative=representative,
                          calibration_steps=calibration_steps, sparse=True)


# --- the benchmark's variants (scripts/bench.py) ------------------------------------

PRUNE_TARGET = 0.9      # sparsity of the "pruned int8" row
PRUNE_EPOCHS = 2
CLUSTERS = 16           # clusters per kernel of the "clustered int8" row
CLUSTER_EPOCHS = 1


def pruned_int8(model, x_train, y_train, representative, target: float = PRUNE_TARGET,
                epochs: int = PRUNE_EPOCHS, layers=None) -> bytes:
    """The "pruned int8" variant: prune (polynomial schedule to `target`),
    strip, convert to full int8. Returns the .tflite bytes. `layers`: the
    layers to prune; default every Conv2D, DepthwiseConv2D and Dense layer
    but the first, which holds few weights and feeds every feature (chapter
    11 keeps it dense)."""
    from . import tflite

    if layers is None:
        layers = [layer.name for layer in model.layers if type(layer).__name__ in PRUNABLE][1:]
    pruned = prune(model, x_train, y_train, target=target, epochs=epochs, layers=layers)
    return tflite.convert(pruned, "int8", representative=representative)


def clustered_int8(model, x_train, y_train, representative, clusters: int = CLUSTERS,
                   epochs: int = CLUSTER_EPOCHS) -> bytes:
    """The "clustered int8" variant: cluster every kernel into `clusters`
    values, fine-tune, strip, convert to full int8. Returns the .tflite bytes."""
    from . import tflite

    clustered = cluster(model, x_train, y_train, clusters=clusters, epochs=epochs)
    return tflite.convert(clustered, "int8", representative=representative)
