"""The edge side: run a .tflite model with LiteRT, without TensorFlow.

    from edgelib.runtime import EdgeModel
    model = EdgeModel("kws_int8.tflite")
    probs = model.predict(features)          # float in, float out

This module must never import TensorFlow (a test checks it in a fresh
process): on a device only `ai_edge_litert` and NumPy exist. `EdgeModel`
quantizes float inputs and dequantizes outputs with the model's own scale
and zero point, and validates what it is given: `invoke` (one example) and
`predict` (a batch) check their input with the same function,
`validate_input`, so they accept and refuse the same things.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .environment import quiet_native_stderr

_TFLITE_MAGIC = b"TFL3"  # FlatBuffer file identifier of a .tflite model, at bytes 4..8


class ModelFileError(ValueError):
    """The file is missing, empty or not a TFLite model."""


def read_model_bytes(model: str | Path | bytes | bytearray) -> bytes:
    """The bytes of a .tflite model given as a path or as bytes, validated."""
    if isinstance(model, (bytes, bytearray)):
        content, where = bytes(model), "the given bytes"
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelFileError(f"no TFLite model at {path} (file not found)")
        content, where = path.read_bytes(), str(path)
    if len(content) < 8 or content[4:8] != _TFLITE_MAGIC:
        head = content[4:8] if len(content) >= 8 else content
        raise ModelFileError(
            f"{where} is not a TFLite model: expected the FlatBuffer identifier "
            f"{_TFLITE_MAGIC!r} at bytes 4-8, found {head!r} ({len(content)} bytes in all)"
        )
    return content


def _describe(shape: tuple[int, ...], batch: bool) -> str:
    dims = ", ".join(map(str, shape))
    if batch:
        return f"a batch of shape (N, {dims}) with N >= 1" if shape else "a batch of shape (N,)"
    return f"one example of shape ({dims}{',' if len(shape) == 1 else ''})"


def validate_input(x, shape: tuple[int, ...], dtype=np.float32, *, batch: bool) -> np.ndarray:
    """`x` as an array if it is a valid model input, else a clear error.

    `shape` is one example's shape (no batch axis); with `batch=True`, `x`
    must add a first axis of at least one example. Checks, in this order:
    not None, a regular (not ragged) array, a numeric dtype (bool, int,
    float; not strings, objects or complex), the shape, a non-empty batch,
    finite values (no NaN or infinity), and, for a model with an integer
    input that is not quantized (token ids), whole numbers. Each error says
    what was expected and what came. Raises TypeError for a wrong kind of
    value, ValueError for a wrong shape or wrong values.
    """
    shape = tuple(int(d) for d in shape)
    expected = _describe(shape, batch)
    if x is None:
        raise TypeError(f"expected {expected} of numbers, got None")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ValueError(f"expected {expected} of numbers, got an irregular nested sequence "
                         f"({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"expected a numeric array (bool, int or float) as {expected}, got "
                        f"dtype {arr.dtype} ({arr.dtype.kind!r} kind)")
    wanted = (arr.shape[1:] if batch else arr.shape)
    if (arr.ndim != len(shape) + int(batch)) or wanted != shape:
        raise ValueError(f"expected {expected}, got an array of shape {arr.shape}")
    if batch and arr.shape[0] == 0:
        raise ValueError(f"expected {expected}, got an empty batch of shape {arr.shape}")
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            nan = int(np.isnan(arr).sum())
            raise ValueError(f"input contains NaN or infinite values ({nan} NaN, "
                             f"{int((~finite).sum()) - nan} infinite of {arr.size}); expected "
                             "finite numbers")
        if np.dtype(dtype).kind in "iu" and not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"this model takes integer {np.dtype(dtype).name} input (e.g. "
                             "token ids), got floats that are not whole numbers")
    return arr


def _quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    low, high = (info.min - zero_point) * scale, (info.max - zero_point) * scale
    margin = 2 * scale  # allow rounding at the edges, refuse real overflow
    if x.min() < low - margin or x.max() > high + margin:
        raise ValueError(
            f"input values span [{x.min():.4g}, {x.max():.4g}] but this {np.dtype(dtype).name} "
            f"model can represent only [{low:.4g}, {high:.4g}] (scale {scale:.4g}, zero point "
            f"{zero_point}); preprocess the input as for the training data"
        )
    q = np.round(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


class EdgeModel:
    """A .tflite model in the LiteRT interpreter, with float in / float out.

    `predict(x)` takes a batch (first axis) of float inputs shaped like the
    model's input without its batch axis, runs them one at a time (batch 1,
    as on a device) and returns the float outputs stacked. Each example
    starts from a fresh state: a model with variables (LiteRT's fused
    `UNIDIRECTIONAL_SEQUENCE_LSTM` keeps its h and c in them) has them reset
    before each example. `invoke` does not reset them: one call after another
    carries the state, as a streaming model on a device does.
    """

    def __init__(self, model: str | Path | bytes, threads: int = 1, delegate: bool = True):
        """`delegate=False` runs LiteRT's built-in kernels without the XNNPACK
        delegate it applies by default (for files XNNPACK refuses, such as
        sparse int8 kernels, or to compare like with like)."""
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an int >= 1, got {threads!r}")
        self.content = read_model_bytes(model)
        self._threads = threads
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = (OpResolverType.AUTO if delegate
                    else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self._resolver = resolver
        self._batch_interpreters: dict = {}
        with quiet_native_stderr():
            try:
                self.interpreter = Interpreter(model_content=self.content, num_threads=threads,
                                               experimental_op_resolver_type=resolver)
                self.interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise ModelFileError(f"LiteRT could not load the model: {exc}") from exc
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1:
            raise ModelFileError(f"EdgeModel handles one input tensor, the model has {len(inputs)}")
        self.input = inputs[0]
        self.outputs = outputs

    @property
    def size_bytes(self) -> int:
        return len(self.content)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (the model's input shape without the batch axis)."""
        return tuple(int(d) for d in self.input["shape"][1:])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self.input["dtype"])

    def _prepare(self, example: np.ndarray) -> np.ndarray:
        dtype = self.input_dtype
        if dtype.kind in "iu":
            scale, zero_point = self.input["quantization"]
            if scale == 0:
                return example.astype(dtype)  # an integer model input that is not quantized
            return _quantize(example, scale, zero_point, dtype)
        return example.astype(dtype)

    def _read(self, detail: dict) -> np.ndarray:
        return self._read_from(self.interpreter, detail)

    @staticmethod
    def _read_from(interpreter, detail: dict) -> np.ndarray:
        out = interpreter.get_tensor(detail["index"])
        scale, zero_point = detail["quantization"]
        if np.dtype(detail["dtype"]).kind in "iu" and scale != 0:
            return (out.astype(np.float32) - zero_point) * scale
        return out

    def _quantize_dtype(self) -> np.dtype:
        """The dtype a caller's value must fit: integer for an unquantized integer
        input (token ids), float otherwise (quantized inputs take floats)."""
        dtype = self.input_dtype
        if dtype.kind in "iu" and self.input["quantization"][0] == 0:
            return dtype
        return np.dtype(np.float32)

    def validate(self, x, batch: bool = False) -> np.ndarray:
        """`x` checked as one example (or a batch with `batch=True`); see
        `validate_input`. `invoke` and `predict` both call it."""
        return validate_input(x, self.input_shape, self._quantize_dtype(), batch=batch)

    def prepare(self, example) -> np.ndarray:
        """One example validated and converted to what the interpreter takes
        (quantized for an int8 model), with the batch axis: the Python-side
        work that `invoke` does before the interpreter runs."""
        x = self.validate(example)
        if x.dtype.kind == "b" or (x.dtype.kind in "iu" and self.input_dtype.kind == "f"):
            x = x.astype(np.float32)
        return self._prepare(x)[None]

    def outputs_now(self) -> np.ndarray | list[np.ndarray]:
        """The output(s) of the last run, dequantized to float (batch axis kept):
        the Python-side work that `invoke` does after the interpreter runs."""
        results = [self._read(d) for d in self.outputs]
        return results[0] if len(results) == 1 else results

    def _run(self, prepared: np.ndarray) -> np.ndarray | list[np.ndarray]:
        self.interpreter.set_tensor(self.input["index"], prepared)
        self.interpreter.invoke()
        return self.outputs_now()

    def invoke(self, example: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Run one example (no batch axis); return the float output(s), batch axis kept.

        The input is checked as by `predict` (shape, numeric dtype, finite values)."""
        return self._run(self.prepare(example))

    # --- inspection: what is inside the model (needs only LiteRT) ---------------

    def ops(self) -> list[str]:
        """The operators in execution order, e.g. ['QUANTIZE', 'CONV_2D', ...]."""
        return [op["op_name"] for op in self.interpreter._get_ops_details()]

    def tensors(self) -> list[dict]:
        """Every tensor: name, shape, dtype, bytes, and quantization (scales and
        zero points, one per channel for per-channel quantized weights)."""
        rows = []
        for t in self.interpreter.get_tensor_details():
            q = t["quantization_parameters"]
            rows.append({
                "index": t["index"], "name": t["name"], "shape": tuple(int(d) for d in t["shape"]),
                "dtype": np.dtype(t["dtype"]).name,
                "bytes": int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize,
                "scales": np.asarray(q["scales"]), "zero_points": np.asarray(q["zero_points"]),
                "quantized_dimension": int(q["quantized_dimension"]),
            })
        return rows

    def peak_activation_bytes(self) -> int:
        """Estimated peak memory of the activations during one inference.

        Walks the operators in execution order; a tensor produced by an
        operator (or fed as the model input) is alive from then until its last
        reader. The peak over all steps of the bytes alive is what a memory
        planner must provide at least; constants (weights) are not counted.
        LiteRT's real arena can be somewhat larger (alignment, scratch buffers).
        """
        # A DELEGATE node (XNNPACK) stands for operators already listed; skip it.
        ops = [op for op in self.interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
        size = {t["index"]: t["bytes"] for t in self.tensors()}
        produced = {int(i) for op in ops for i in op["outputs"]}
        produced |= {int(d["index"]) for d in self.interpreter.get_input_details()}
        last_use: dict[int, int] = {}
        for step, op in enumerate(ops):
            for i in op["inputs"]:
                if int(i) in produced:
                    last_use[int(i)] = step
        for d in self.outputs:
            last_use[int(d["index"])] = len(ops)
        birth = {int(d["index"]): 0 for d in self.interpreter.get_input_details()}
        for step, op in enumerate(ops):
            for i in op["outputs"]:
                birth.setdefault(int(i), step)
        peak = 0
        for step in range(len(ops)):
            alive = sum(size[t] for t, b in birth.items() if b <= step <= last_use.get(t, b))
            peak = max(peak, alive)
        return peak

    def _checked_batch(self, x) -> np.ndarray:
        x = self.validate(x, batch=True)
        if len(self.outputs) != 1:
            raise ValueError("predict handles single-output models; use invoke() per example")
        return x.astype(self._quantize_dtype(), copy=False)

    def _run_from_zero(self, prepared: np.ndarray) -> np.ndarray | list[np.ndarray]:
        # reset_all_variables() sets every variable tensor (a stateful op's state) back to
        # its initial value, zero; for a model without variables it does nothing
        self.interpreter.reset_all_variables()
        return self._run(prepared)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run a batch of examples one by one; return the stacked float outputs.

        The interpreter's variables are reset before each example, so a stateful
        model (a fused LSTM keeps its state between invoke calls) answers each
        example as Keras does, from a zero state; for a model without variables
        the reset does nothing."""
        x = self._checked_batch(x)
        return np.concatenate([self._run_from_zero(self._prepare(example)[None])
                               for example in x], axis=0)

    def _batch_interpreter(self, size: int):
        """An interpreter whose input has batch axis `size`, allocated once and kept
        (resizing and allocating costs far more than an inference of the digits CNN)."""
        cache = self._batch_interpreters
        if size not in cache:
            from ai_edge_litert.interpreter import Interpreter

            with quiet_native_stderr():
                interpreter = Interpreter(model_content=self.content, num_threads=self._threads,
                                          experimental_op_resolver_type=self._resolver)
                interpreter.resize_tensor_input(self.input["index"],
                                                [size, *self.input_shape], strict=False)
                try:
                    interpreter.allocate_tensors()
                except (ValueError, RuntimeError) as exc:
                    raise ValueError(f"the model does not accept a batch of {size}: {exc}"
                                     ) from exc
            cache[size] = interpreter
        return cache[size]

    def predict_batch(self, x: np.ndarray, max_batch: int = 32) -> np.ndarray:
        """Like `predict` (same checks, same outputs) but one invoke per chunk of at
        most `max_batch` examples, each chunk padded to a power of two so that only
        a few interpreters (batch 1, 2, 4, ... max_batch) are ever allocated.

        Raises ValueError if the model's batch axis is fixed (cannot be resized)."""
        if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
            raise ValueError(f"max_batch must be an int >= 1, got {max_batch!r}")
        x = self._checked_batch(x)
        prepared = self._prepare(x)
        outputs = []
        for start in range(0, len(prepared), max_batch):
            chunk = prepared[start:start + max_batch]
            size = 1 << (len(chunk) - 1).bit_length()
            if size > len(chunk):
                pad = np.zeros((size - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            interpreter = self._batch_interpreter(size)
            interpreter.reset_all_variables()     # each chunk from a zero state, as in predict
            interpreter.set_tensor(self.input["index"], np.ascontiguousarray(chunk))
            interpreter.invoke()
            outputs.append(self._read_from(interpreter, self.outputs[0])[:len(prepared) - start])
        return np.concatenate(outputs, axis=0)[:len(prepared)]
