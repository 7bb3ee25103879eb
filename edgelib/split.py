"""Split computing: cut a model in two, and send the activation across the cut.

    from edgelib import split
    split.cut_points(model)                  # every cut k, its activation shape and bytes
    head, tail = split.split_model(model, k) # tail(head(x)) == model(x)
    payload, meta = split.encode_activation(head(x).numpy(), "int8")
    y = tail(split.decode_activation(payload, meta))

A cut at k runs the first k layers on the device (the head) and the rest on
the server (the tail); what crosses the network is the activation after
layer k. The model must be a chain: a Sequential model, or a functional one
in which every layer feeds only the next (the digits CNN, the DS-CNN keyword
spotter). Cuts run from 1 to n - 1 for n layers; k = 0 (all on the server)
and k = n (all on the device) are the full model on one side.

Encodings of the activation (n values; the payload is what is sent):
- "float32": 4 n bytes, exact.
- "float16": 2 n bytes, relative error <= 2**-11 (values must fit float16).
- "int8":    n + 5 bytes: a 5-byte header (scale as float32, zero point as
  int8, little-endian) then one int8 per value. Asymmetric, per tensor,
  from the tensor's range widened to include 0 (so 0 is exact, as in TFLite):
      lo = min(min(a), 0),  hi = max(max(a), 0)
      scale = (hi - lo) / 255              (1.0 when hi == lo)
      zero_point = clip(round(-128 - lo / scale), -128, 127)
      q = clip(round(a / scale) + zero_point, -128, 127)
      a ~ (q - zero_point) * scale         (error <= scale / 2)
The shape of the activation is fixed by the cut, so both sides know it; it
travels in `meta` (with the encoding), not in the payload.

This module imports TensorFlow only inside `split_model` / `cut_points`;
encoding and decoding need NumPy alone (the server uses them).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

ENCODINGS = ("float32", "float16", "int8")
INT8_HEADER = struct.Struct("<fb")  # scale (float32), zero point (int8)
INT8_HEADER_BYTES = INT8_HEADER.size  # 5


class SplitError(ValueError):
    """The model cannot be cut there (or at all); the message says why."""


# --- cutting a model ---------------------------------------------------------------


def _chain_layers(model) -> list:
    """The layers of a chain model in order (no InputLayer), or SplitError."""
    import tf_keras as keras

    if not isinstance(model, keras.Model):
        raise SplitError(f"expected a tf_keras model, got {type(model).__name__}")
    if not model.built or not getattr(model, "inputs", None):
        raise SplitError("the model has no defined input: build it with an Input layer "
                         "(keras.Input(shape=...)) before cutting it")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise SplitError(f"only single-input, single-output models can be cut; this one has "
                         f"{len(model.inputs)} inputs and {len(model.outputs)} outputs")
    layers = [layer for layer in model.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return layers
    previous = model.inputs[0]
    for layer in layers:
        nodes = [n for n in layer._inbound_nodes if n in _model_nodes(model)]
        if len(nodes) != 1 or len(nodes[0].keras_inputs) != 1 \
                or nodes[0].keras_inputs[0] is not previous:
            raise SplitError(
                f"the model is not a chain at layer {layer.name!r}: it does not take "
                "exactly the previous layer's output (a branch, a skip connection or a shared "
                "layer); only chain models can be cut at every layer boundary"
            )
        previous = nodes[0].outputs if not isinstance(nodes[0].outputs, (list, tuple)) \
            else nodes[0].outputs[0]
    if previous is not model.outputs[0]:
        raise SplitError("the model's output is not its last layer's output")
    return layers


def _model_nodes(model) -> set:
    nodes = set()
    for depth_nodes in getattr(model, "_nodes_by_depth", {}).values():
        nodes.update(depth_nodes)
    return nodes


def _activation_shapes(model, layers) -> list[tuple]:
    shapes = []
    for layer in layers:
        shape = layer.output_shape
        if isinstance(shape, list):  # pragma: no cover - single-output layers only here
            shape = shape[0]
        shapes.append(tuple(shape[1:]))
    return shapes


def cut_points(model) -> list[dict]:
    """Every valid cut 1..n-1 of a chain model, with what would cross it.

    Each row: `k`, `after` (name of the last head layer), `shape` (the
    activation of one example, without the batch axis), `values`, `bytes`
    per encoding (float32 4n, float16 2n, int8 n + 5), and the parameter
    counts of head and tail.
    """
    layers = _chain_layers(model)
    shapes = _activation_shapes(model, layers)
    rows = []
    for k in range(1, len(layers)):
        values = int(np.prod(shapes[k - 1]))
        rows.append({
            "k": k,
            "after": layers[k - 1].name,
            "shape": shapes[k - 1],
            "values": values,
            "bytes": {e: payload_bytes(values, e) for e in ENCODINGS},
            "head_params": int(sum(layer.count_params() for layer in layers[:k])),
            "tail_params": int(sum(layer.count_params() for layer in layers[k:])),
        })
    return rows


def split_model(model, k: int):
    """Cut a chain model after its k-th layer: return (head, tail) tf_keras models.

    head: the model's input -> the activation after layer k (1 <= k <= n-1).
    tail: that activation -> the model's output. They share the model's
    layers (and so its weights): tail(head(x)) equals model(x) up to float
    round-off.
    """
    import tf_keras as keras

    layers = _chain_layers(model)
    n = len(layers)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise SplitError(f"k must be an int between 1 and {n - 1}, got {k!r}")
    if not 1 <= k <= n - 1:
        raise SplitError(
            f"k = {k} is out of range: this model has {n} layers, so a cut runs from k = 1 "
            f"(after {layers[0].name!r}) to k = {n - 1} (before {layers[-1].name!r}); k = 0 "
            f"and k = {n} are the whole model on the server or on the device"
        )
    k = int(k)
    source = model.inputs[0]
    inputs = keras.Input(shape=tuple(source.shape[1:]), dtype=source.dtype,
                         name=f"{model.name}_input")
    x = inputs
    for layer in layers[:k]:
        x = layer(x)
    head = keras.Model(inputs, x, name=f"{model.name}_head_{k}")
    middle = keras.Input(shape=tuple(x.shape[1:]), dtype=x.dtype, name=f"{model.name}_cut_{k}")
    y = middle
    for layer in layers[k:]:
        y = layer(y)
    tail = keras.Model(middle, y, name=f"{model.name}_tail_{k}")
    return head, tail


# --- the activation on the wire ---------------------------------------------------------


def payload_bytes(values: int, encoding: str) -> int:
    """Bytes of the payload for an activation of `values` numbers."""
    _check_encoding(encoding)
    return {"float32": 4 * values, "float16": 2 * values,
            "int8": values + INT8_HEADER_BYTES}[encoding]


def _check_encoding(encoding) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")


def int8_parameters(a: np.ndarray) -> tuple[float, int]:
    """The per-tensor asymmetric int8 scale (a float32 value) and zero point of `a`."""
    lo = min(float(a.min()), 0.0)
    hi = max(float(a.max()), 0.0)
    exact = (hi - lo) / 255.0
    scale = np.float32(exact)
    if scale < exact:  # round up, so that 255 steps still cover [lo, hi]
        scale = np.nextafter(scale, np.float32(np.inf))
    scale = float(scale) if hi > lo and scale > 0 else 1.0
    zero_point = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
    return scale, zero_point


def encode_activation(a, encoding: str = "int8") -> tuple[bytes, dict]:
    """Encode an activation for the network: return (payload, meta).

    `meta` = {"encoding", "shape", "dtype"} and, for int8, "scale" and
    "zero_point" (also in the payload's header). See the module docstring
    for the int8 formula.
    """
    _check_encoding(encoding)
    a = np.asarray(a)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"expected a numeric activation, got dtype {a.dtype}")
    if a.size == 0:
        raise ValueError(f"the activation is empty (shape {a.shape})")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"the activation holds {int((~np.isfinite(a)).sum())} NaN or "
                         "infinite values; only finite activations can be encoded")
    meta = {"encoding": encoding, "shape": [int(d) for d in a.shape], "dtype": "float32"}
    if encoding == "float32":
        return a.astype("<f4").tobytes(), meta
    if encoding == "float16":
        biggest = float(np.abs(a).max())
        if biggest > float(np.finfo(np.float16).max):
            raise ValueError(f"the activation reaches {biggest:.4g}, beyond float16's largest "
                             f"value {float(np.finfo(np.float16).max):.0f}; use float32 or int8")
        return a.astype("<f2").tobytes(), meta
    scale, zero_point = int8_parameters(a)
    q = np.clip(np.round(a / np.float32(scale)) + zero_point, -128, 127).astype(np.int8)
    meta.update(scale=scale, zero_point=zero_point)
    return INT8_HEADER.pack(scale, zero_point) + q.tobytes(), meta


def decode_activation(payload: bytes, meta: dict) -> np.ndarray:
    """The float32 activation back from (payload, meta) of `encode_activation`.

    `meta` needs "encoding" and "shape"; the int8 scale and zero point are
    read from the payload's header.
    """
    if not isinstance(meta, dict) or "encoding" not in meta or "shape" not in meta:
        raise ValueError(f"meta must be a dict with 'encoding' and 'shape', got {meta!r}")
    encoding = meta["encoding"]
    _check_encoding(encoding)
    try:
        shape = tuple(int(d) for d in meta["shape"])
    except (TypeError, ValueError):
        raise ValueError(f"meta['shape'] must be a list of ints, got {meta['shape']!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"meta['shape'] must not hold negative sizes, got {shape}")
    payload = bytes(payload)
    values = int(np.prod(shape))
    expected = payload_bytes(values, encoding)
    if len(payload) != expected:
        raise ValueError(f"a {encoding} activation of shape {shape} takes {expected} bytes, "
                         f"the payload has {len(payload)}")
    if encoding == "float32":
        return np.frombuffer(payload, "<f4").reshape(shape).astype(np.float32)
    if encoding == "float16":
        return np.frombuffer(payload, "<f2").reshape(shape).astype(np.float32)
    scale, zero_point = INT8_HEADER.unpack_from(payload)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"the int8 header holds an invalid scale {scale!r}")
    q = np.frombuffer(payload, np.int8, offset=INT8_HEADER_BYTES).reshape(shape)
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


def roundtrip(batch, encoding: str = "int8") -> np.ndarray:
    """Encode and decode each example of `batch` on its own (as a device sends
    one inference at a time, each int8 example with its own scale and zero
    point); return the decoded batch, float32."""
    batch = np.asarray(batch)
    if batch.ndim < 1 or len(batch) == 0:
        raise ValueError("expected a non-empty batch (first axis = examples)")
    return np.stack([decode_activation(*encode_activation(example, encoding))
                     for example in batch])


# --- the cost of a cut --------------------------------------------------------------------


def transfer_ms(n_bytes: int, mbit_s: float, rtt_ms: float = 0.0) -> float:
    """Time to send `n_bytes` at `mbit_s` megabits per second, plus one round
    trip `rtt_ms` (the request goes out, the small answer comes back):
    rtt + 8 n / (mbit_s x 1000) milliseconds."""
    if mbit_s <= 0 or rtt_ms < 0 or n_bytes < 0:
        raise ValueError(f"need n_bytes >= 0, mbit_s > 0, rtt_ms >= 0; got {n_bytes}, "
                         f"{mbit_s}, {rtt_ms}")
    return rtt_ms + 8.0 * n_bytes / (mbit_s * 1e3)


def end_to_end_ms(device_ms: float, n_bytes: int | None, server_ms: float, mbit_s: float,
                  rtt_ms: float) -> dict[str, float]:
    """Latency of one inference split between device and server, in ms.

    device compute + transfer (bytes at the bandwidth, plus the round trip)
    + server compute. `n_bytes=None` means nothing is sent: all on the device.
    Returns the parts and their "total".
    """
    network = 0.0 if n_bytes is None else transfer_ms(n_bytes, mbit_s, rtt_ms)
    parts = {"device": float(device_ms), "network": network, "server": float(server_ms)}
    parts["total"] = parts["device"] + parts["network"] + parts["server"]
    return parts


def invoke_only(edge_model, example) -> Callable[[], None]:
    """A callable that runs only the interpreter's invoke() on `example`.

    The input is quantized and set once, here: what is timed is the model's
    arithmetic, not NumPy's conversions around it (which a device does in C).
    """
    x = np.asarray(example, dtype=np.float32)
    interpreter = edge_model.interpreter
    interpreter.set_tensor(edge_model.input["index"], edge_model._prepare(x)[None])
    return interpreter.invoke
