"""Quantization-aware training (QAT): fake quantization, the straight-through
estimator, and the QAT recipe of chapter 10 with tfmot.

    from edgelib import qat
    y = qat.fake_quant(x, -1.0, 3.0)          # NumPy twin of tf.quantization.fake_quant_*
    g = qat.ste_gradient(x, -1.0, 3.0)        # 1 inside the (nudged) range, 0 outside
    q_model = qat.quantize_and_finetune(model, x_train, y_train)
    blob = qat.convert_qat(q_model, representative=x_train[:200])
    q2 = qat.quantize(model, weight_bits=2); qat.calibrate(q2, model, x_train[:200])  # PTQ

Fake quantization rounds a float tensor to the 2^bits levels of an integer
grid and maps it back to float, so that training sees the int8 rounding while
everything stays float. Its gradient is the straight-through estimator: the
rounding passes gradients unchanged, the clamping at the ends of the range
stops them.
"""

from __future__ import annotations

import numpy as np


class QATError(ValueError):
    """Bad arguments to a QAT helper; the message says what was expected."""


def _short_name(variable) -> str:
    """A quantizer variable's own name: ".../quant_conv2/kernel_min:0" -> "kernel_min"."""
    return variable.name.split("/")[-1].split(":")[0]


def _range(rmin, rmax, num_bits: int, narrow_range: bool) -> tuple[float, float, int, int]:
    for name, v in (("rmin", rmin), ("rmax", rmax)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or \
                not np.isfinite(v):
            raise QATError(f"{name} must be a finite number, got {v!r}")
    if not rmin <= 0.0 <= rmax or rmin == rmax:
        raise QATError(f"the range must contain 0 and not be empty (rmin <= 0 <= rmax, "
                       f"rmin < rmax), got [{rmin}, {rmax}]")
    if isinstance(num_bits, bool) or not isinstance(num_bits, (int, np.integer)) or \
            not 2 <= num_bits <= 16:
        raise QATError(f"num_bits must be an int from 2 to 16, got {num_bits!r}")
    return float(rmin), float(rmax), (1 if narrow_range else 0), 2 ** int(num_bits) - 1


def nudged_range(rmin: float, rmax: float, num_bits: int = 8,
                 narrow_range: bool = False) -> tuple[float, float, float]:
    """(nudged_min, nudged_max, scale) as TensorFlow's fake-quant ops compute them.

    The grid has levels qmin..qmax (0..2^bits-1, or 1.. with narrow_range);
    scale = (rmax - rmin) / (qmax - qmin); the zero point qmin - rmin/scale is
    rounded to an integer, and the range is shifted so that real 0 falls
    exactly on a level ("nudging"). Needs rmin <= 0 <= rmax.
    """
    rmin, rmax, qmin, qmax = _range(rmin, rmax, num_bits, narrow_range)
    scale = (rmax - rmin) / (qmax - qmin)
    zero_point = float(np.clip(np.round(qmin - rmin / scale), qmin, qmax))
    return (qmin - zero_point) * scale, (qmax - zero_point) * scale, scale


def fake_quant(x, rmin: float, rmax: float, num_bits: int = 8,
               narrow_range: bool = False) -> np.ndarray:
    """Quantize-dequantize `x` on the grid of [rmin, rmax] (float32 in, float32 out).

    clamp to the nudged range, round to the nearest level, map back:
    nmin + scale * floor((clip(x, nmin, nmax) - nmin) / scale + 0.5),
    the same as tf.quantization.fake_quant_with_min_max_vars.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.dtype.kind != "f" or not np.isfinite(x).all():
        raise QATError("x must be finite numbers (no NaN or infinity)")
    nmin, nmax, scale = (np.float32(v) for v in nudged_range(rmin, rmax, num_bits,
                                                             narrow_range))
    clamped = np.clip(x, nmin, nmax)
    return (np.floor((clamped - nmin) / scale + np.float32(0.5)) * scale + nmin).astype(
        np.float32)


def ste_gradient(x, rmin: float, rmax: float, num_bits: int = 8,
                 narrow_range: bool = False) -> np.ndarray:
    """d fake_quant(x) / dx under the straight-through estimator: 1 where x lies
    inside the nudged range (rounding is treated as the identity), 0 outside
    (the clamp is flat there)."""
    x = np.asarray(x, dtype=np.float32)
    nmin, nmax, _ = (np.float32(v) for v in nudged_range(rmin, rmax, num_bits, narrow_range))
    return ((x >= nmin) & (x <= nmax)).astype(np.float32)


def quantize(model, weight_bits: int = 8):
    """Wrap a trained tf_keras model with fake-quant nodes (not trained yet).

    weight_bits=8: `tfmot.quantization.keras.quantize_model`, the default
    8-bit scheme (int8 weights, one scale per output channel for
    convolutions; 8-bit activations). Fewer bits (2 to 7): tfmot's
    experimental n-bit scheme (`DefaultNBitQuantizeScheme`) with b-bit
    symmetric weights on the narrow grid -(2^(b-1) - 1) .. 2^(b-1) - 1 (per
    channel for convolutions, per tensor for dense layers) and 8-bit
    activations, the only activation width the TFLite converter takes. With
    3-bit weights the converter stores the kernels as INT4, two weights per
    byte (chapter 10 reads them from the file).
    """
    import tensorflow_model_optimization as tfmot

    if type(model).__module__.split(".")[0] != "tf_keras":
        raise QATError(f"quantize_model needs a tf_keras (Keras 2) model, got "
                       f"{type(model).__module__}.{type(model).__name__}; build it with "
                       "`import tf_keras as keras` after edgelib.setup()")
    if isinstance(weight_bits, bool) or not isinstance(weight_bits, (int, np.integer)) or \
            not 2 <= weight_bits <= 8:
        raise QATError(f"weight_bits must be an int from 2 to 8, got {weight_bits!r}")
    if weight_bits == 8:
        return tfmot.quantization.keras.quantize_model(model)
    n_bit = tfmot.quantization.keras.experimental.default_n_bit
    scheme = n_bit.DefaultNBitQuantizeScheme(num_bits_weight=int(weight_bits),
                                             num_bits_activation=8)
    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    with tfmot.quantization.keras.quantize_scope():
        return tfmot.quantization.keras.quantize_apply(annotated, scheme=scheme)


def calibrate(q_model, model, x) -> None:
    """Post-training quantization inside Keras: set every range of `q_model`
    (`quantize(model, ...)`, not trained) the way the TFLite converter
    calibrates, in place. Weights: symmetric, +-max|w| per output channel
    (convolutions) or per tensor, as tfmot's weight quantizers compute them.
    Activations: the minimum and maximum (widened to contain 0) that the
    float `model` produces on the calibration inputs `x`; the input: the
    range of `x`. Converting the result gives the PTQ .tflite of that scheme.
    """
    import tf_keras as keras

    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise QATError(f"x must be a non-empty batch of calibration inputs, got shape {x.shape}")
    float_layers = {layer.name: layer for layer in model.layers}
    outputs = {}
    for layer in q_model.layers:
        inner = getattr(layer, "layer", None)
        for w in layer.weights:
            short = _short_name(w)
            if not short.endswith(("_min", "_max")):
                continue
            low = short.endswith("_min")
            if inner is None:  # the input quantizer
                w.assign(float(min(x.min(), 0.0)) if low else float(max(x.max(), 0.0)))
                continue
            if inner.name not in float_layers:
                raise QATError(f"{inner.name} of the QAT model is not a layer of the float model")
            source = float_layers[inner.name]
            if short[:-4] in ("kernel", "depthwise_kernel"):
                kernel = getattr(source, short[:-4]).numpy()
                axes = tuple(range(kernel.ndim - 1)) if w.shape.rank else None
                bound = np.abs(kernel).max(axis=axes)
                w.assign(np.reshape(-bound if low else bound, w.shape))
            else:
                if inner.name not in outputs:
                    probe = keras.Model(model.inputs, source.output)
                    outputs[inner.name] = probe.predict(x, batch_size=256, verbose=0)
                out = outputs[inner.name]
                w.assign(float(min(out.min(), 0.0)) if low else float(max(out.max(), 0.0)))


def quantize_and_finetune(model, x_train, y_train, epochs: int = 2, batch_size: int = 32,
                          learning_rate: float = 1e-3, validation=None, weight_bits: int = 8,
                          cosine_decay: bool = False):
    """QAT with tfmot: wrap a trained tf_keras model with fake-quant nodes
    (`tfmot.quantization.keras.quantize_model`, the default 8-bit scheme: int8
    weights per output channel for convolutions, activation ranges tracked as
    moving averages of the batch min/max), compile it like the float model
    (Adam, cross-entropy on logits) and fine-tune it for `epochs`. Returns the
    QAT model (still a float Keras model; `convert_qat` makes the int8 file).

    `weight_bits` < 8 uses the low-bit scheme of `quantize`; `cosine_decay`
    lowers the learning rate to 0 along a cosine over the fine-tuning, so it
    ends on small steps. The model must be Sequential or functional, built
    from layers tfmot supports (Conv2D, DepthwiseConv2D, Dense,
    BatchNormalization, ReLU, pooling...).
    """
    import tf_keras as keras

    from .models import compile_classifier

    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    if len(x_train) != len(y_train):
        raise QATError(f"x_train has {len(x_train)} examples but y_train has {len(y_train)}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise QATError(f"epochs must be an int >= 1, got {epochs!r}")
    q_model = quantize(model, weight_bits)
    rate = learning_rate
    if cosine_decay:
        steps = epochs * int(np.ceil(len(x_train) / batch_size))
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    compile_classifier(q_model, rate)
    q_model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0,
                validation_data=validation)
    return q_model


def convert_qat(q_model, representative, calibration_steps: int = 200) -> bytes:
    """The QAT model as a full-int8 .tflite (int8 input and output), with the
    ranges its fake-quant nodes learned: `edgelib.tflite.convert(q_model,
    "int8", ...)`. The representative inputs only set up the int8 input and
    output interface; every range inside comes from the QAT model."""
    from . import tflite

    return tflite.convert(q_model, "int8", representative=representative,
                          calibration_steps=calibration_steps)


def activation_ranges(q_model) -> dict[str, tuple[float, float]]:
    """The activation ranges a QAT model tracked, by layer: {layer name: (min, max)}
    of each quantize wrapper's output (and of the input quantizer). These are
    the ranges the converter turns into int8 scales and zero points."""
    if not hasattr(q_model, "layers"):
        raise QATError(f"expected a QAT Keras model, got {type(q_model).__name__}")
    ranges = {}
    for layer in q_model.layers:
        found = {}
        for w in layer.weights:
            short = _short_name(w)
            if short.endswith(("_min", "_max")) and not short.startswith("kernel") and \
                    np.size(w.numpy()) == 1:
                found[short.split("_")[-1]] = float(w.numpy())
        if {"min", "max"} <= set(found):
            ranges[layer.name] = (found["min"], found["max"])
    return ranges
