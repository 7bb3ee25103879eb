"""What a model costs: parameters, multiply-accumulates (MACs) and memory.

Two independent counts of the same thing, so that each checks the other:
- `layer_costs(model)` reads a tf_keras model's layers and applies the
  formulas (parameters, MACs, output size per layer);
- `tflite_macs(edge_model)` reads a converted .tflite model's operators and
  tensor shapes (through LiteRT only, no TensorFlow).
Likewise for the bytes of the weights: `weight_bytes(model, precision)` counts
them from the Keras variables, `tflite_weight_bytes(edge_model)` from the
tensors that feed the converted model's convolutions and dense layers.
`chain_activation_peak(model, bytes_per_value)` gives the activation memory
of one inference through a chain of layers (chapter 00).
"""

from __future__ import annotations

import math

import numpy as np


def _shape(shape) -> tuple[int, ...]:
    return tuple(None if d is None else int(d) for d in shape[1:])  # drop the batch axis


def layer_costs(model) -> list[dict]:
    """Per layer: name, kind, parameters (by formula), MACs for one input, and
    the output shape and element count (activation size).

    Formulas (k: kernel size, C: channels, H'W': output size):
    Conv2D: params k_h k_w C_in C_out + C_out, MACs H'W' k_h k_w C_in C_out;
    DepthwiseConv2D: params k_h k_w C_in m + C_in m, MACs H'W' k_h k_w C_in m;
    Dense: params n_in n_out + n_out, MACs n_in n_out (per position);
    other layers (pooling, flatten, activations): no weights, no MACs counted.
    """
    if not getattr(model, "layers", None) or not getattr(model, "inputs", None):
        raise TypeError("layer_costs needs a built tf_keras model with known inputs")
    rows = []
    for layer in model.layers:
        kind = type(layer).__name__
        out = _shape(layer.output.shape)
        if any(d is None for d in out):
            raise ValueError(f"layer {layer.name!r} has an unknown output size {out}; build "
                             "the model with a fixed input shape")
        params = macs = 0
        bias = 1 if getattr(layer, "use_bias", False) else 0
        if kind == "Conv2D":
            kh, kw = layer.kernel_size
            cin, cout = int(layer.input.shape[-1]), layer.filters
            params = kh * kw * cin * cout + bias * cout
            macs = out[0] * out[1] * kh * kw * cin * cout
        elif kind == "DepthwiseConv2D":
            kh, kw = layer.kernel_size
            cin, mult = int(layer.input.shape[-1]), layer.depth_multiplier
            params = kh * kw * cin * mult + bias * cin * mult
            macs = out[0] * out[1] * kh * kw * cin * mult
        elif kind == "Dense":
            nin, nout = int(layer.input.shape[-1]), layer.units
            params = nin * nout + bias * nout
            macs = math.prod(out[:-1]) * nin * nout
        rows.append({"name": layer.name, "kind": kind, "params": params, "macs": macs,
                     "output_shape": out, "output_elements": math.prod(out)})
    return rows


def tflite_macs(edge_model) -> dict[str, int]:
    """MACs per operator of a converted model, read from its tensor shapes.

    CONV_2D: elements of the output x filter elements per output channel;
    DEPTHWISE_CONV_2D: output elements x k_h k_w; FULLY_CONNECTED: rows x
    weight elements. Returns {"<index>:<OP>": macs} in execution order.
    """
    shapes = {t["index"]: t["shape"] for t in edge_model.tensors()}
    result = {}
    for op in edge_model.interpreter._get_ops_details():
        name = op["op_name"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        out = shapes[int(op["outputs"][0])]
        weights = shapes[int(op["inputs"][1])]
        if name == "CONV_2D":  # filter (C_out, k_h, k_w, C_in)
            macs = math.prod(out) * math.prod(weights[1:])
        elif name == "DEPTHWISE_CONV_2D":  # filter (1, k_h, k_w, C_out)
            macs = math.prod(out) * weights[1] * weights[2]
        else:  # weights (n_out, n_in); output (rows, n_out)
            macs = math.prod(out[:-1]) * math.prod(weights)
        result[f"{op['index']}:{name}"] = int(macs)
    return result


def chain_activation_peak(model, bytes_per_value: int = 4) -> int:
    """Peak activation memory of one inference through a chain of layers, in bytes.

    In a chain (a Sequential model), a layer's input and its output are alive
    at the same time and nothing else is: the peak is the largest input +
    output of one layer, at `bytes_per_value` per value (4 for float32, 1
    for int8). Models with branches need the converted file's tensor
    lifetimes instead (chapter 08).
    """
    if type(model).__name__ != "Sequential":
        raise TypeError("chain_activation_peak needs a Sequential tf_keras model (a chain), "
                        f"got {type(model).__name__}")
    if not isinstance(bytes_per_value, int) or bytes_per_value < 1:
        raise ValueError(f"bytes_per_value must be a positive int, got {bytes_per_value!r}")
    sizes = [math.prod(_shape(model.input_shape))]
    sizes += [row["output_elements"] for row in layer_costs(model)]
    return bytes_per_value * max(a + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# Bytes per stored value of (kernel weights, biases) for each precision. A
# full-integer (int8) model keeps its biases in int32: a bias is added to the
# int32 accumulator of int8 x int8 products, at the scale s_input * s_weight.
PRECISIONS = {"float32": (4, 4), "float16": (2, 2), "int8": (1, 4)}


def weight_bytes(model, precision: str = "float32") -> int:
    """Memory of the weights of a tf_keras model stored at `precision`.

    "float32": 4 bytes per value; "float16": 2; "int8" (full-integer
    quantization): 1 byte per kernel weight and 4 per bias (int32). Every
    variable of the model counts, biases being the layers' `bias` variables;
    quantization parameters (a scale and zero point per channel) are not
    weights and are not counted. Batch-normalization variables count too,
    although conversion folds them into the preceding layer.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r} "
                         "(int8 models store kernels in 1 byte but biases in 4, so a single "
                         "bytes-per-weight figure cannot describe them)")
    per_kernel, per_bias = PRECISIONS[precision]
    total = 0
    for layer in model.layers:
        bias = getattr(layer, "bias", None)
        for variable in layer.weights:
            count = int(np.prod(variable.shape))
            total += count * (per_bias if variable is bias else per_kernel)
    return total


_WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def tflite_weight_bytes(edge_model) -> dict[str, int]:
    """Bytes of the kernels and biases stored in a converted .tflite model.

    Reads, for every CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED operator,
    the tensors of its inputs 1 (kernel) and 2 (bias, absent when the
    converter dropped it); in a float16 model these come through DEQUANTIZE
    operators, whose stored float16 inputs are counted. Returns
    {"kernels": bytes, "biases": bytes}.
    """
    tensors = {t["index"]: t for t in edge_model.tensors()}
    ops = edge_model.interpreter._get_ops_details()
    stored_as = {int(op["outputs"][0]): int(op["inputs"][0])
                 for op in ops if op["op_name"] == "DEQUANTIZE"}
    result = {"kernels": 0, "biases": 0}
    for op in ops:
        if op["op_name"] not in _WEIGHTED_OPS:
            continue
        inputs = [int(i) for i in op["inputs"]]
        for position, key in ((1, "kernels"), (2, "biases")):
            if position < len(inputs) and inputs[position] >= 0:
                index = stored_as.get(inputs[position], inputs[position])
                result[key] += tensors[index]["bytes"]
    return result
