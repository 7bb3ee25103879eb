"""What a model costs: parameters, multiply-accumulates (MACs) and memory.

Two independent counts of the same thing, so that each checks the other:
- `layer_costs(model)` reads a tf_keras model's layers and applies the
  formulas (parameters, MACs, output size per layer);
- `tflite_macs(edge_model)` reads a converted .tflite model's operators and
  tensor shapes (through LiteRT only, no TensorFlow).
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


def weight_bytes(model, bytes_per_weight: float = 4) -> int:
    """Memory of the weights at `bytes_per_weight` (4 float32, 2 float16, 1 int8)."""
    if bytes_per_weight <= 0:
        raise ValueError(f"bytes_per_weight must be > 0, got {bytes_per_weight}")
    return int(np.ceil(model.count_params() * bytes_per_weight))
