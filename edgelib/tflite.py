"""From a tf_keras model to a .tflite file, and what is inside one.

    from edgelib import tflite
    blob = tflite.convert(model, "int8", representative=x_train[:200])
    tflite.sizes(blob)             # {'bytes': ..., 'gzip_bytes': ...}
    tflite.stored_constants(blob)  # how the file stores each weight: INT8, INT4, ...

Modes (the four of TFLite post-training quantization):
- "float32": no quantization.
- "dynamic": weights int8, activations float (dynamic-range quantization).
- "float16": weights float16.
- "int8":    weights and activations int8, int8 input and output
             (needs `representative`: a few hundred typical inputs).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .environment import quiet_native_stderr

MODES = ("float32", "dynamic", "float16", "int8")


class ConversionError(ValueError):
    """The model cannot be converted in the requested way; the message says why."""


def _refuse_risky_recurrent(model, mode: str) -> None:
    """Refuse the recurrent recipes known to fail or to crash the converter.

    See the course's stack notes: a GRU/LSTM with an unknown batch size and
    unroll=False fails to convert; a tf_keras GRU with unroll=False crashes
    the int8 converter (segfault, which would take the notebook down).
    """
    for layer in model.submodules if hasattr(model, "submodules") else []:
        kind = type(layer).__name__
        if kind not in ("GRU", "LSTM", "SimpleRNN") or getattr(layer, "unroll", True):
            continue
        batch = model.inputs[0].shape[0] if getattr(model, "inputs", None) else None
        if batch is None:
            remedy = ("rebuild the inference model with unroll=True (same weights): a GRU with "
                      "unroll=False crashes the int8 converter even at batch size 1"
                      if kind == "GRU" and mode == "int8"
                      else "build the inference model with batch_size=1, or use unroll=True")
            raise ConversionError(
                f"layer {layer.name!r} ({kind}, unroll=False) needs a fixed batch size to "
                f"convert: {remedy}"
            )
        if kind == "GRU" and mode == "int8":
            raise ConversionError(
                f"layer {layer.name!r}: int8 conversion of a GRU with unroll=False crashes the "
                "TFLite converter; rebuild the inference model with unroll=True (same weights)"
            )


def _input_dtype(model) -> np.dtype:
    """The numpy dtype of the model's (first) input: float32 for images and
    features, an integer type for token ids that feed an Embedding."""
    dtype = getattr(model.inputs[0], "dtype", None) if getattr(model, "inputs", None) else None
    dtype = getattr(dtype, "as_numpy_dtype", dtype)
    return np.dtype(dtype) if dtype is not None else np.dtype(np.float32)


def _representative_array(model, representative) -> np.ndarray:
    """Validate the calibration inputs and give them the model's input dtype.

    Float inputs: cast to float32, must be finite. Integer inputs (token ids):
    must be whole numbers that fit the input dtype; they stay integers, since
    the converter feeds them to the model as they are.
    """
    dtype = _input_dtype(model)
    raw = np.asarray(representative)
    expected = tuple(model.inputs[0].shape[1:])
    if raw.shape[1:] != expected:
        raise ConversionError(
            f"representative inputs must have shape (N, {', '.join(map(str, expected))}), "
            f"got {raw.shape}"
        )
    if raw.dtype.kind not in "fiub":
        raise ConversionError(f"representative inputs must be numeric, got dtype {raw.dtype}")
    if dtype.kind not in "iu":
        representative = raw.astype(np.float32)
        if not np.isfinite(representative).all():
            raise ConversionError("representative inputs contain NaN or infinite values")
        return representative
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all() or not np.array_equal(raw, np.round(raw)):
            raise ConversionError(
                f"the model takes {dtype.name} inputs (e.g. token ids), but the representative "
                "inputs contain non-integer, NaN or infinite values"
            )
    info = np.iinfo(dtype)
    if raw.size and (raw.min() < info.min or raw.max() > info.max):
        raise ConversionError(
            f"representative inputs span [{raw.min()}, {raw.max()}], outside the range of the "
            f"model's {dtype.name} input"
        )
    return raw.astype(dtype)


def convert(model, mode: str = "float32", representative=None, calibration_steps: int = 200,
            sparse: bool = False, trace_once: bool = False):
    """Convert a tf_keras model to TFLite flatbuffer bytes in the given mode.

    `trace_once=True` converts the model's inference call traced once as a
    concrete function (input shapes as the model declares them) instead of
    the converter's Keras path, which exports a SavedModel and traces the
    call several times: the same graph, several times less conversion time
    for a large graph such as an unrolled recurrent layer (chapter 05). The
    file's tensor names then come from the traced function, not from Keras.
    Only for "float32": in int8 the two paths can quantize a graph differently.

    `sparse=True` adds the converter's sparse encoding
    (tf.lite.Optimize.EXPERIMENTAL_SPARSITY): kernels with enough zeros are
    stored as indices plus non-zero values, read by a DENSIFY operator or a
    sparse kernel (chapter 11).

    `representative`: an array of typical inputs (first axis = examples), used
    by "int8" to calibrate activation ranges; the first `calibration_steps`
    examples are used one at a time. A model whose input is integer (token
    ids feeding an Embedding) is calibrated with integer ids and keeps its
    integer input in the int8 model (only float inputs become int8); its
    output is int8 as usual.
    """
    if mode not in MODES:
        raise ConversionError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if trace_once and mode != "float32":
        raise ConversionError(f"trace_once converts float32 models only, not {mode!r}")
    _refuse_risky_recurrent(model, mode)  # before the inputs: no calibration data fixes these
    if mode == "int8":
        if representative is None:
            raise ConversionError("int8 conversion needs representative inputs (an array)")
        representative = _representative_array(model, representative)

    import tensorflow as tf

    if trace_once:
        specs = [tf.TensorSpec(x.shape, x.dtype) for x in model.inputs]
        call = tf.function(lambda *xs: model(xs[0] if len(xs) == 1 else list(xs), training=False))
        holder = tf.Module()
        holder.variables_of_model = model.variables  # the converter reads the weights from it
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [call.get_concrete_function(*specs)], holder)
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparse else []
    if mode != "float32":
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if optimizations:
        converter.optimizations = optimizations
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        samples = representative[:calibration_steps]

        def calibration():
            for example in samples:
                yield [example[None]]

        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with quiet_native_stderr():
        return converter.convert()


def save(content: bytes, path: str | Path) -> Path:
    """Write model bytes to `path` (folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def sizes(content: bytes) -> dict[str, int]:
    """File size and gzip size (level 9) in bytes: the gzip size shows what
    compression a download or a flash image would gain (e.g. from pruning)."""
    return {"bytes": len(content), "gzip_bytes": len(gzip.compress(content, compresslevel=9))}



def stored_constants(content: bytes) -> dict[str, dict]:
    """The constant tensors (weights, biases) as the file stores them:
    {name: {"type": "INT8" | "INT4" | "INT32" | ..., "shape": (...), "bytes": n}},
    read from the flatbuffer itself. The interpreter's view can differ: LiteRT
    unpacks INT4 kernels (two weights per byte in the file) to int8 when it
    loads the model, so `EdgeModel.tensors()` shows them as int8."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    if not isinstance(content, (bytes, bytearray)) or len(content) < 8:
        raise ConversionError(f"expected the bytes of a .tflite file, got {type(content).__name__}")
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    with quiet_native_stderr():
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    found = {}
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            data = model.buffers[tensor.buffer].data
            if data is not None and len(data):
                name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
                found[name] = {"type": names.get(tensor.type, str(tensor.type)),
                               "shape": tuple(int(d) for d in tensor.shape), "bytes": len(data)}
    return found

def stored_tensor(content: bytes, name: str) -> dict:
    """One constant tensor of a .tflite file as stored, read from the flatbuffer:
    {"type", "shape", "data" (its raw bytes as a uint8 array), "scale" (the
    per-tensor or per-channel float scales, or None), "block_size" and
    "block_scales" (float32 array) for a blockwise-quantized tensor, else 0
    and None}. INT4 data holds two weights a byte, the first in the low half."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    if not isinstance(content, (bytes, bytearray)) or len(content) < 8:
        raise ConversionError(f"expected the bytes of a .tflite file, got {type(content).__name__}")
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    with quiet_native_stderr():
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            found = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
            data = model.buffers[tensor.buffer].data
            if found != name or data is None or not len(data):
                continue
            out = {"type": types.get(tensor.type, str(tensor.type)),
                   "shape": tuple(int(d) for d in tensor.shape),
                   "data": np.asarray(data, dtype=np.uint8), "scale": None,
                   "block_size": 0, "block_scales": None}
            q = tensor.quantization
            if q is not None and q.scale is not None and len(q.scale):
                out["scale"] = np.asarray(q.scale, dtype=np.float32)
            details = None if q is None else q.details
            if details is not None and hasattr(details, "blockSize"):
                scales = graph.tensors[details.scales]
                raw = np.asarray(model.buffers[scales.buffer].data, dtype=np.uint8)
                dtype = np.float16 if types.get(scales.type) == "FLOAT16" else np.float32
                out["block_size"] = int(details.blockSize)
                out["block_scales"] = raw.view(dtype).astype(np.float32).reshape(
                    tuple(int(d) for d in scales.shape))
            return out
    raise ConversionError(f"no constant tensor named {name!r} in this file")


# Operators the int8 Transformer leaves to LiteRT's built-in int8 kernels
# (XNNPACK does not take them: layer norm's SQUARED_DIFFERENCE, RSQRT, SUB;
# attention's BATCH_MATMUL and SOFTMAX), splitting the graph into many
# delegate partitions. "int8 mixed" keeps them (and the elementwise ops
# between them) in float, so XNNPACK runs the whole graph, with int8 weights
# in the dense layers.
MIXED_FLOAT_OPS = ("SQUARED_DIFFERENCE", "RSQRT", "SUB", "BATCH_MATMUL", "SOFTMAX", "MEAN",
                   "MUL", "ADD")


def convert_int8_mixed(model, representative, float_ops=MIXED_FLOAT_OPS, steps: int = 200):
    """int8 conversion with the operators named in `float_ops` kept in float
    (TFLite's selective quantization: QuantizationDebugger's denylisted_ops);
    the model's own input and output types (float32 for a float model: the
    debugger's conversion keeps float interfaces, with QUANTIZE and
    DEQUANTIZE inside the graph, whatever inference_output_type says)."""
    import tensorflow as tf

    samples = np.asarray(representative)[:steps]

    def calibration():
        for example in samples:
            yield [example[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops))
    with quiet_native_stderr():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=calibration, debug_options=options)
        return debugger.get_nondebug_quantized_model()
