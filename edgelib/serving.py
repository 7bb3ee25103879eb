"""A model as a service: .tflite models behind a real HTTP server, and its client.

The server is an ASGI application (FastAPI) run by uvicorn. It serves one or
more .tflite models by name with the LiteRT runtime (`edgelib.runtime`), so it
never imports TensorFlow.

Start it from a shell (binds 127.0.0.1, i.e. this machine only, by default):

    python -m edgelib.serving --model digits-float32=digits_f32.tflite \\
        --model digits-int8=digits_int8.tflite --port 8000

or from Python / a notebook, as a child process on a free port:

    from edgelib import serving
    with serving.start_server({"digits-int8": "digits_int8.tflite"}) as server:
        client = serving.Client(server.url)
        probs = client.predict("digits-int8", x[:4])     # np.ndarray (4, 10)
    assert not server.alive                               # the process is gone

Endpoints
---------
GET  /health                  {"status": "ok", "models": [...]}
GET  /models                  {"models": ["digits-float32", "digits-int8"]}
GET  /models/{name}           metadata: input shape / dtype / quantization,
                              output shape / dtype, file bytes, request format
POST /models/{name}/predict   JSON in, JSON out (below)
GET  /metrics                 Prometheus text format (prometheus-client)

Request body (Content-Type: application/json):

    {"inputs": [example_1, example_2, ...]}

`inputs` is a batch: a non-empty list of examples, the batch axis always
present (one example is a batch of one). Each example is nested lists of
numbers shaped like the model's input without its batch axis, e.g.
28 x 28 x 1 for the digits CNN: `{"inputs": x[:1].tolist()}`. Values are
floats as for the Keras model (an int8 model quantizes them itself with its
own scale and zero point); they must be finite (no NaN or Infinity).

A well-formed body is decoded by msgspec against the model's input shape
(types and shape checked in C while parsing) straight into one float32
array; any other body is read the checked way (`json.loads`, then
`inputs_from_json`), which writes the error message. uvicorn runs on uvloop
and httptools when they are installed (they are pinned with the course).

Answer: `{"model": name, "outputs": [[...], ...]}` with one row of float
outputs per example (int8 outputs dequantized), and a `Server-Timing`
header (`parse` = reading and checking the body, `infer` = the interpreter)
in milliseconds.

A binary format for split computing (chapter 15) is also accepted:
`Content-Type: application/octet-stream` with the headers
`X-Activation-Encoding` (float32, float16 or int8) and `X-Activation-Shape`
(e.g. `1,13,13,8`, batch axis first), the body being the payload of
`edgelib.split.encode_activation`.

Errors are JSON `{"detail": message, "reason": code}` with a 4xx status:
400 malformed JSON, 404 unknown model, 413 body too large (checked on
Content-Length before reading and again while reading, so a missing or
wrong Content-Length does not get past it), 415 unsupported content type,
422 a body that parses but is not a valid request (missing field, wrong
shape, wrong dtype, NaN / Infinity, empty batch, values out of the model's
range). The message says what was expected and what came.

Two answers are not about the input: 503 `overloaded` with a `Retry-After`
header when the model's queue already holds `--max-queue` requests (the
server refuses rather than letting waits grow without bound), and 500
`model_fault` when the interpreter itself fails, or `non_finite_output` when it
answers NaN or infinity for valid inputs.

Dynamic batching: requests for one model wait in a bounded queue; a batch
loop takes the requests waiting together (up to `--max-batch` examples,
waiting at most `--max-wait-ms` for more; 0 takes only those already there)
and runs them as one invoke (`EdgeModel.predict_batch`, one preallocated
interpreter per power-of-two batch size). `--workers N` runs N server
processes on one listening socket; each has its own models and /metrics.
/metrics also holds requests in flight, queue time, batch sizes, the
process's CPU time and memory, and each model file's SHA-256.

LiteRT interpreters are not thread-safe: each model has a pool of
interpreters (one by default) and a batch borrows one for the duration
of its inference, so concurrent batches never share one.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import functools
import hashlib
import itertools
import json
import math
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
from starlette.requests import Request  # at module level: FastAPI reads the annotation

from .runtime import EdgeModel, ModelFileError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024  # 2 MiB: about 100 digits (28x28 floats) as JSON
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5)
ACTIVATION_CONTENT_TYPE = "application/octet-stream"
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
DEFAULT_MAX_BATCH = 32  # examples per invoke: per example, the digits CNN costs a few times
# less at 32 than at 1 (chapter 14 times it on your machine)
DEFAULT_MAX_WAIT_MS = 0.0  # take only what is already waiting: a lone request never waits
DEFAULT_MAX_QUEUE = 256  # requests waiting per model; more are answered 503
RETRY_AFTER_S = 1


class ServingError(RuntimeError):
    """A request the server refused, or a server that could not start."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class _Reject(Exception):
    """A request refused with a 4xx status, or a 503 (overload) or 500 (model fault)."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


# --- the models --------------------------------------------------------------------


class ServedModel:
    """One .tflite model and a pool of interpreters for it.

    `borrow()` hands out an interpreter for the exclusive use of one thread;
    with `interpreters=1` (the default) it is a lock around the model.
    """

    def __init__(self, name: str, model: str | Path | bytes, threads: int = 1,
                 interpreters: int = 1):
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ValueError(
                f"model name must be 1-64 letters, digits, '.', '_' or '-' (starting with a "
                f"letter or digit), got {name!r}"
            )
        if not isinstance(interpreters, int) or interpreters < 1:
            raise ValueError(f"interpreters must be an int >= 1, got {interpreters!r}")
        self.name = name
        self.interpreters = interpreters
        first = EdgeModel(model, threads=threads)
        if len(first.outputs) != 1:
            raise ModelFileError(
                f"model {name!r} has {len(first.outputs)} outputs; the server serves "
                "single-output models"
            )
        self._pool: queue.Queue[EdgeModel] = queue.Queue()
        self._pool.put(first)
        for _ in range(interpreters - 1):
            self._pool.put(EdgeModel(first.content, threads=threads))
        self.reference = first  # for metadata only (never invoked outside borrow())
        self.input_shape = first.input_shape
        self.input_dtype = first.input_dtype
        self.output_shape = tuple(int(d) for d in first.outputs[0]["shape"][1:])
        self.input_name = first.input["name"] or "input"
        self.output_name = first.outputs[0]["name"] or "output"

    @contextmanager
    def borrow(self) -> Iterator[EdgeModel]:
        model = self._pool.get()
        try:
            yield model
        finally:
            self._pool.put(model)

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self.borrow() as model:
            return model.predict(x)

    def metadata(self) -> dict:
        def tensor(detail: dict, shape: tuple[int, ...]) -> dict:
            scale, zero_point = detail["quantization"]
            quantized = np.dtype(detail["dtype"]).kind in "iu" and scale != 0
            return {
                "shape": list(shape),
                "dtype": np.dtype(detail["dtype"]).name,
                "quantization": ({"scale": float(scale), "zero_point": int(zero_point)}
                                 if quantized else None),
            }

        example = "x".join(map(str, self.input_shape)) or "scalar"
        return {
            "name": self.name,
            "bytes": self.reference.size_bytes,
            "input": tensor(self.reference.input, self.input_shape),
            "output": tensor(self.reference.outputs[0], self.output_shape),
            "interpreters": self._pool.qsize(),
            "request": {
                "content_type": "application/json",
                "body": '{"inputs": [example, ...]}',
                "example_shape": list(self.input_shape),
                "description": f"a non-empty batch of examples, each {example} finite numbers "
                               "(float values as for the Keras model)",
            },
            "response": {"body": '{"model": name, "outputs": [[...], ...]}',
                         "row_shape": list(self.output_shape)},
        }


class _Overloaded(Exception):
    """The model's queue is full: answered 503 with Retry-After."""


class _Batcher:
    """Dynamic batching for one model: requests waiting together run as one invoke.

    A request's examples go into a bounded queue (`max_queue` requests; a full
    queue raises `_Overloaded`). One loop per interpreter takes the first waiting
    request, then more until `max_batch` examples are collected or `max_wait_s`
    has passed since the first, and runs them in one `predict_batch` in a thread.
    If that batch fails with ValueError / TypeError (one request's values outside
    an int8 model's range), each request is run alone, so only that one fails.
    """

    def __init__(self, model: ServedModel, max_batch: int, max_wait_s: float, max_queue: int,
                 on_batch=None):
        self.model, self.max_batch, self.max_wait_s = model, max_batch, max_wait_s
        self.max_queue, self.on_batch = max_queue, on_batch
        self._loop = None

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first request, or a new event loop (tests)
            self._loop = loop
            self._queue: asyncio.Queue = asyncio.Queue(maxsize=self.max_queue)
            self._tasks = [loop.create_task(self._run()) for _ in range(self.model.interpreters)]

    @property
    def waiting(self) -> int:
        return self._queue.qsize() if self._loop is not None else 0

    async def submit(self, batch: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(outputs, seconds in the interpreter, seconds waiting in the queue)."""
        self._start()
        future = self._loop.create_future()
        try:
            self._queue.put_nowait((batch, future, time.perf_counter()))
        except asyncio.QueueFull:
            raise _Overloaded() from None
        return await future

    def _infer(self, items: list) -> list:
        """One (outputs, seconds) or one exception per request."""
        with self.model.borrow() as edge:
            begin = time.perf_counter()
            try:
                outputs = edge.predict_batch(np.concatenate([b for b, _, _ in items]),
                                             max_batch=self.max_batch)
            except (ValueError, TypeError) as exc:
                if len(items) == 1:
                    return [exc]
                outputs = None
            spent = time.perf_counter() - begin
        if outputs is None:
            return [self._infer([item])[0] for item in items]
        results, start = [], 0
        for batch, _, _ in items:
            results.append((outputs[start:start + len(batch)], spent))
            start += len(batch)
        return results

    async def _run(self) -> None:
        while True:
            items = [await self._queue.get()]
            size = len(items[0][0])
            deadline = time.perf_counter() + self.max_wait_s
            while size < self.max_batch:
                if self._queue.empty():
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    try:
                        items.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                else:
                    items.append(self._queue.get_nowait())
                size += len(items[-1][0])
            started = time.perf_counter()
            if self.on_batch is not None:
                self.on_batch(self.model.name, size, [started - t for _, _, t in items])
            try:
                results = await asyncio.to_thread(self._infer, items)
            except Exception as exc:  # a model fault: every waiting request gets a 500
                results = [exc] * len(items)
            for (_, future, queued), result in zip(items, results, strict=True):
                if future.done():  # the client went away
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result((*result, started - queued))


# --- checking a request ------------------------------------------------------------


def _describe(value, depth: int = 0) -> str:
    """A short description of a JSON value for an error message."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        text = value if len(value) <= 20 else value[:17] + "..."
        return f"a string ({text!r})"
    if value is None:
        return "null"
    if isinstance(value, dict):
        keys = ", ".join(map(repr, list(value)[:5]))
        return f"an object with keys [{keys}]"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__  # pragma: no cover - json gives only the types above


def _shape_of(value) -> tuple[int, ...]:
    """The shape of nested lists, following the first element at each level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _fmt(shape) -> str:
    return str(tuple(int(d) for d in shape))


def inputs_from_json(document, input_shape: tuple[int, ...]) -> np.ndarray:
    """Check a parsed request body and return its inputs as a float32 batch.

    Raises `_Reject` (422) with a message saying what was expected and what came.
    """
    expected = f"(N, {', '.join(map(str, input_shape))})" if input_shape else "(N,)"
    if not isinstance(document, dict):
        raise _Reject(422, "not_an_object",
                      f'expected a JSON object {{"inputs": [...]}}, got {_describe(document)}')
    if "inputs" not in document:
        keys = ", ".join(map(repr, list(document)[:5])) or "none"
        raise _Reject(422, "missing_field",
                      f"missing field 'inputs': expected {{\"inputs\": [...]}} with a batch of "
                      f"shape {expected}, got an object with keys [{keys}]")
    inputs = document["inputs"]
    if not isinstance(inputs, list):
        raise _Reject(422, "wrong_dtype",
                      f"'inputs' must be a list (a batch of shape {expected}), got "
                      f"{_describe(inputs)}")
    if not inputs:
        raise _Reject(422, "empty_batch",
                      f"'inputs' is an empty batch: expected at least one example, a batch of "
                      f"shape {expected}")
    ragged = _Reject(422, "ragged",
                     f"'inputs' is ragged (nested lists of different lengths; the first "
                     f"elements have shape {_fmt(_shape_of(inputs))}): expected a regular batch "
                     f"of shape {expected}")
    try:
        array = np.asarray(inputs, dtype=object)
    except ValueError:
        raise ragged from None
    kinds = {type(v) for v in array.flat}
    if list in kinds:  # lists of different lengths stay lists inside an object array
        raise ragged
    if kinds - {int, float}:  # strings, booleans, null, objects
        bad = next(v for v in array.flat if type(v) not in (int, float))
        raise _Reject(422, "wrong_dtype",
                      f"'inputs' must hold only numbers, found {_describe(bad)}")
    if array.shape[1:] != tuple(input_shape):
        raise _Reject(422, "wrong_shape",
                      f"'inputs' has shape {_fmt(array.shape)}, expected a batch of shape "
                      f"{expected} (the batch axis first, even for one example)")
    return _finite_float32(array, "'inputs'")


def _finite_float32(array: np.ndarray, what: str) -> np.ndarray:
    """float32 copy of an array of Python numbers; `_Reject` (422) naming `what`
    if one is too large for a float or not finite in float32."""
    try:
        values = array.astype(np.float64)
    except OverflowError:
        raise _Reject(422, "non_finite",
                      f"{what} holds an integer too large for a float: expected finite "
                      "numbers") from None
    batch = values.astype(np.float32)
    if not np.isfinite(batch).all():
        where = np.argwhere(~np.isfinite(batch))[0]
        raise _Reject(422, "non_finite",
                      f"{what} must be finite numbers, found {float(values[tuple(where)])!r} at "
                      f"index {list(map(int, where))} (NaN, Infinity or beyond float32)")
    return batch


@functools.cache
def _batch_decoder(input_shape: tuple[int, ...]) -> msgspec.json.Decoder:
    """A decoder of exactly `{"inputs": [example, ...]}`, each example fixed-length
    arrays of numbers shaped `input_shape`: msgspec checks the types and the shape
    while it parses (in C), reading integers as floats; booleans, null, strings,
    NaN / Infinity, a float beyond float64, another key or another shape fail."""
    example = float
    for size in reversed(input_shape):
        example = tuple[(example,) * size]
    request = msgspec.defstruct("PredictRequest", [("inputs", list[example])],
                                forbid_unknown_fields=True)
    return msgspec.json.Decoder(request)


def inputs_from_body(body: bytes, input_shape: tuple[int, ...]) -> np.ndarray:
    """The float32 batch of a JSON predict body, or `_Reject` as `inputs_from_json`.

    A well-formed body (a non-empty batch of finite numbers, shaped right) is
    decoded by `_batch_decoder` straight into floats, then into one array.
    Anything else goes the checked way, `json.loads` then `inputs_from_json`,
    so every refusal (status, reason, message) is the one that way gives.
    """
    input_shape = tuple(input_shape)
    try:
        inputs = _batch_decoder(input_shape).decode(body).inputs
    except msgspec.DecodeError:  # includes msgspec.ValidationError
        inputs = None
    if inputs:
        flat = inputs
        for _ in input_shape:
            flat = itertools.chain.from_iterable(flat)
        values = np.fromiter(flat, np.float64, count=len(inputs) * math.prod(input_shape))
        with np.errstate(over="ignore"):  # beyond float32: refused by the checked way
            batch = values.astype(np.float32).reshape(len(inputs), *input_shape)
        if np.isfinite(batch).all():
            return batch
    return inputs_from_json(_parse_json(body), input_shape)


V2_DATATYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT8": np.int8,
                "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64}


def _v2_metadata(model: ServedModel) -> dict:
    """Model metadata as the Open Inference Protocol describes it (-1: any batch size)."""
    return {"name": model.name, "versions": ["1"], "platform": "tflite",
            "inputs": [{"name": model.input_name, "datatype": "FP32",
                        "shape": [-1, *model.input_shape]}],
            "outputs": [{"name": model.output_name, "datatype": "FP32",
                         "shape": [-1, *model.output_shape]}]}


def inputs_from_v2(document, model: ServedModel) -> np.ndarray:
    """Check an Open Inference Protocol infer request (one input tensor, flat or
    nested `data` in row-major order) and return its inputs as a float32 batch.

    Raises `_Reject` (422) saying what was expected and what came.
    """
    expected = f"[N, {', '.join(map(str, model.input_shape))}]"
    form = ('{"inputs": [{"name": "' + model.input_name + '", "shape": ' + expected
            + ', "datatype": "FP32", "data": [...]}]}')
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list) \
            or len(document["inputs"]) != 1 or not isinstance(document["inputs"][0], dict):
        raise _Reject(422, "missing_field", f"expected {form} (exactly one input tensor), got "
                      f"{_describe(document)}")
    tensor = document["inputs"][0]
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in tensor]
    if missing:
        raise _Reject(422, "missing_field", f"the input tensor lacks {missing}: expected {form}")
    shape, datatype, data = tensor["shape"], tensor["datatype"], tensor["data"]
    if datatype not in V2_DATATYPES:
        raise _Reject(422, "wrong_dtype", f"datatype must be one of {sorted(V2_DATATYPES)}, "
                      f"got {_describe(datatype)}")
    if not isinstance(shape, list) or not shape or not all(
            type(d) is int and d >= 0 for d in shape):
        raise _Reject(422, "wrong_shape", f"shape must be a list of non-negative integers "
                      f"such as {expected}, got {_describe(shape)}")
    if tuple(shape[1:]) != tuple(model.input_shape) or shape[0] < 1:
        raise _Reject(422, "wrong_shape", f"shape is {shape}, expected {expected} with N >= 1")
    if not isinstance(data, list):
        raise _Reject(422, "wrong_dtype", f"data must be a list of numbers, got "
                      f"{_describe(data)}")
    flat = data if not data or not isinstance(data[0], list) else \
        np.asarray(data, dtype=object).ravel().tolist()
    if any(type(v) is not int and type(v) is not float for v in flat):
        bad = next(v for v in flat if type(v) not in (int, float))
        raise _Reject(422, "wrong_dtype", f"data must hold only numbers, found {_describe(bad)}")
    if len(flat) != math.prod(shape):
        raise _Reject(422, "wrong_shape", f"data holds {len(flat)} values, shape {shape} needs "
                      f"{math.prod(shape)}")
    return _finite_float32(np.array(flat, dtype=object), "data").reshape(shape)


def _parse_json(body: bytes):
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise _Reject(400, "malformed_json",
                      f"the body is not UTF-8 text ({exc.reason} at byte {exc.start}): "
                      'expected JSON such as {"inputs": [[...]]}') from None
    except json.JSONDecodeError as exc:
        snippet = body[max(0, exc.pos - 20): exc.pos + 20].decode("utf-8", "replace")
        raise _Reject(400, "malformed_json",
                      f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
                      f"(near {snippet!r}); expected JSON such as {{\"inputs\": [[...]]}}"
                      ) from None
    except RecursionError:
        raise _Reject(400, "malformed_json",
                      "the JSON is nested too deeply to parse: expected a batch of examples"
                      ) from None


def _inputs_from_activation(body: bytes, headers, input_shape) -> np.ndarray:
    from .split import decode_activation

    encoding = headers.get("x-activation-encoding")
    shape_text = headers.get("x-activation-shape")
    if not encoding or not shape_text:
        raise _Reject(422, "missing_field",
                      "a binary request needs the headers X-Activation-Encoding (float32, "
                      "float16 or int8) and X-Activation-Shape (e.g. 1,28,28,1)")
    try:
        shape = tuple(int(s) for s in shape_text.split(","))
    except ValueError:
        raise _Reject(422, "wrong_shape",
                      f"X-Activation-Shape must be integers separated by commas, got "
                      f"{shape_text!r}") from None
    if shape[1:] != tuple(input_shape) or not shape or shape[0] < 1:
        raise _Reject(422, "wrong_shape",
                      f"X-Activation-Shape is {_fmt(shape)}, expected (N, "
                      f"{', '.join(map(str, input_shape))}) with N >= 1")
    try:
        batch = decode_activation(body, {"encoding": encoding, "shape": list(shape)})
    except ValueError as exc:
        raise _Reject(422, "wrong_dtype", f"cannot decode the activation: {exc}") from None
    if not np.isfinite(batch).all():
        raise _Reject(422, "non_finite", "the decoded activation holds NaN or infinite values")
    return batch.astype(np.float32, copy=False)


# --- the application ---------------------------------------------------------------


class _Metrics:
    """The server's Prometheus metrics, in a registry of its own."""

    def __init__(self, models: dict[str, ServedModel]):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "edge_predict_requests", "Predict requests by model and HTTP status",
            ["model", "status"], registry=self.registry)
        self.errors = Counter(
            "edge_predict_errors", "Refused or failed predict requests by model and reason",
            ["model", "reason"], registry=self.registry)
        self.latency = Histogram(
            "edge_predict_latency_seconds",
            "Time to answer a predict request in the server (read, check, infer, encode)",
            ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.inference = Histogram(
            "edge_inference_seconds", "Time in the interpreter for one predict request",
            ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.examples = Counter(
            "edge_predict_examples", "Examples predicted (a request holds a batch)",
            ["model"], registry=self.registry)
        self.model_bytes = Gauge(
            "edge_model_bytes", "Size of the served .tflite file", ["model"],
            registry=self.registry)
        self.model_file = Gauge(
            "edge_model_file", "1 for each served model, labelled with its file's SHA-256",
            ["model", "sha256"], registry=self.registry)
        self.in_flight = Gauge(
            "edge_predict_in_flight", "Predict requests being answered now (this process)",
            ["model"], registry=self.registry)
        self.queue_time = Histogram(
            "edge_queue_seconds", "Time a request waited for its batch to start",
            ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram(
            "edge_batch_examples", "Examples in each batch run on the interpreter",
            ["model"], buckets=BATCH_BUCKETS, registry=self.registry)
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory
        for name, served in models.items():
            self.model_bytes.labels(name).set(served.reference.size_bytes)
            self.model_file.labels(name, hashlib.sha256(served.reference.content).hexdigest()
                                   ).set(1)
            self.in_flight.labels(name)
            self.examples.labels(name)  # export zeros before the first request
            self.requests.labels(name, "200")

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def load_models(models: dict[str, str | Path | bytes], threads: int = 1,
                interpreters: int = 1) -> dict[str, ServedModel]:
    """Load every model (name -> .tflite path or bytes) into a ServedModel."""
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict {name: .tflite path or bytes}")
    return {name: ServedModel(name, model, threads=threads, interpreters=interpreters)
            for name, model in models.items()}


def create_app(models: dict[str, str | Path | bytes], max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               threads: int = 1, interpreters: int = 1, max_batch: int = DEFAULT_MAX_BATCH,
               max_wait_ms: float = DEFAULT_MAX_WAIT_MS, max_queue: int = DEFAULT_MAX_QUEUE):
    """The ASGI application serving `models` (name -> .tflite path or bytes).

    `max_body_bytes`: larger request bodies get 413 before they are parsed.
    `threads`: LiteRT threads per interpreter; `interpreters`: interpreters
    per model (concurrent inferences of one model).
    Dynamic batching: requests waiting together run as one invoke of at most
    `max_batch` examples; a batch waits at most `max_wait_ms` for more requests
    (0: only those already waiting). `max_queue` requests may wait per model;
    beyond that the answer is 503 with a Retry-After header.
    """
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response

    if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be a positive int, got {max_body_bytes!r}")
    for label, value in (("max_batch", max_batch), ("max_queue", max_queue)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{label} must be an int >= 1, got {value!r}")
    if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, (int, float)) \
            or not 0 <= max_wait_ms <= 1000:
        raise ValueError(f"max_wait_ms must be a number of milliseconds in [0, 1000], got "
                         f"{max_wait_ms!r}")
    served = load_models(models, threads=threads, interpreters=interpreters)
    metrics = _Metrics(served)

    def observe_batch(name: str, size: int, waits: list[float]) -> None:
        metrics.batch_size.labels(name).observe(size)
        for wait in waits:
            metrics.queue_time.labels(name).observe(wait)

    batchers = {name: _Batcher(model, max_batch, max_wait_ms / 1e3, max_queue, observe_batch)
                for name, model in served.items()}
    app = FastAPI(title="edgelib model server", version="1", docs_url="/docs",
                  redoc_url=None)
    app.state.models = served
    app.state.metrics = metrics
    app.state.max_body_bytes = max_body_bytes

    def reject(exc: _Reject) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "reason": exc.reason},
                            status_code=exc.status)

    def lookup(name: str) -> ServedModel:
        if name not in served:
            raise _Reject(404, "unknown_model",
                          f"no model named {name!r}; this server has "
                          f"{', '.join(map(repr, served))}")
        return served[name]

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() \
                and int(declared) > max_body_bytes:
            raise _Reject(413, "too_large",
                          f"the body is {int(declared)} bytes (Content-Length), the limit is "
                          f"{max_body_bytes} bytes: send a smaller batch")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise _Reject(413, "too_large",
                              f"the body exceeds the limit of {max_body_bytes} bytes (more than "
                              f"{max_body_bytes} read so far): send a smaller batch")
            chunks.append(chunk)
        return b"".join(chunks)

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": list(served)}

    @app.get("/models")
    async def list_models():
        return {"models": list(served)}

    @app.get("/models/{name}")
    async def model_metadata(name: str):
        try:
            return lookup(name).metadata()
        except _Reject as exc:
            return reject(exc)

    async def answer(name: str, request: Request, parse, render, error_key: str = "detail"):
        """Read, check (`parse(body, media, model)` -> float32 batch), batch, infer,
        and encode (`render(outputs)` -> dict) one request; every failure is a
        JSON answer `{error_key: message, "reason": code}`."""
        start = time.perf_counter()
        label = name if name in served else "unknown"  # bounded label values
        if label != "unknown":
            metrics.in_flight.labels(label).inc()
        try:
            model = lookup(name)
            content_type = request.headers.get("content-type", "application/json")
            media = content_type.split(";")[0].strip().lower()
            if media not in ("application/json", ACTIVATION_CONTENT_TYPE):
                raise _Reject(415, "content_type",
                              f"expected Content-Type application/json (or "
                              f"{ACTIVATION_CONTENT_TYPE} for an encoded activation), got "
                              f"{content_type!r}")
            body = await read_body(request)
            if media == "application/json" and not body.strip():
                raise _Reject(400, "malformed_json",
                              'the body is empty: expected JSON such as {"inputs": [[...]]}')
            batch = parse(body, media, request.headers, model)
            parsed = time.perf_counter()
            try:
                outputs, infer_s, _ = await batchers[name].submit(batch)
            except _Overloaded:
                raise _Reject(503, "overloaded",
                              f"model {name!r} has {max_queue} requests waiting already: "
                              f"retry after {RETRY_AFTER_S} s") from None
            except (ValueError, TypeError) as exc:  # e.g. values outside an int8 model's range
                raise _Reject(422, "out_of_range", f"the model refused the inputs: {exc}"
                              ) from None
            except Exception as exc:  # the interpreter failed: the server's fault, not the input's
                raise _Reject(500, "model_fault", f"the model failed: {type(exc).__name__}: "
                              f"{exc}") from None
            if not np.isfinite(outputs).all():  # the inputs were finite and in range
                raise _Reject(500, "non_finite_output",
                              f"the model's output is not finite for valid inputs (they span "
                              f"[{batch.min():.4g}, {batch.max():.4g}]): the model is broken")
            text = json.dumps(render(outputs))
            metrics.inference.labels(name).observe(infer_s)
            metrics.examples.labels(name).inc(len(batch))
            timing = (f"parse;dur={1e3 * (parsed - start):.3f}, "
                      f"infer;dur={1e3 * infer_s:.3f}")
            response = Response(text, media_type="application/json",
                                headers={"Server-Timing": timing})
        except _Reject as exc:
            metrics.errors.labels(label, exc.reason).inc()
            response = JSONResponse({error_key: exc.message, "reason": exc.reason},
                                    status_code=exc.status)
            if exc.status == 503:
                response.headers["Retry-After"] = str(RETRY_AFTER_S)
        except Exception as exc:  # a bug, not bad input: still answer, and count it
            metrics.errors.labels(label, "internal").inc()
            response = JSONResponse({error_key: f"internal error: {type(exc).__name__}: {exc}",
                                     "reason": "internal"}, status_code=500)
        finally:
            if label != "unknown":
                metrics.in_flight.labels(label).dec()
        metrics.requests.labels(label, str(response.status_code)).inc()
        metrics.latency.labels(label).observe(time.perf_counter() - start)
        return response

    def parse_predict(body: bytes, media: str, headers, model: ServedModel) -> np.ndarray:
        if media == ACTIVATION_CONTENT_TYPE:
            return _inputs_from_activation(body, headers, model.input_shape)
        return inputs_from_body(body, model.input_shape)

    @app.post("/models/{name}/predict")
    async def predict(name: str, request: Request):
        return await answer(name, request, parse_predict,
                            lambda outputs: {"model": name, "outputs": outputs.tolist()})

    # --- the Open Inference Protocol (KServe v2), JSON over HTTP ---

    @app.get("/v2")
    async def v2_server():
        return {"name": "edgelib", "version": "1", "extensions": []}

    @app.get("/v2/health/live")
    @app.get("/v2/health/ready")
    async def v2_health():
        return {}

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def v2_metadata(name: str, version: str = "1"):
        try:
            return _v2_metadata(lookup(name))
        except _Reject as exc:
            return JSONResponse({"error": exc.message, "reason": exc.reason},
                                status_code=exc.status)

    @app.get("/v2/models/{name}/ready")
    async def v2_ready(name: str):
        if name not in served:
            return JSONResponse({"error": f"no model named {name!r}", "reason": "unknown_model"},
                                status_code=404)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def v2_infer(name: str, request: Request, version: str = "1"):
        document = {}

        def parse(body, media, headers, model):
            if media != "application/json":
                raise _Reject(415, "content_type", "the v2 infer endpoint takes "
                              "application/json (binary tensor data is not supported)")
            parsed = _parse_json(body)
            if isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
                document["request_id"] = parsed["id"]
            return inputs_from_v2(parsed, model)

        def render(outputs):
            reply = {"model_name": name, "model_version": "1", "outputs": [{
                "name": served[name].output_name, "datatype": "FP32",
                "shape": list(outputs.shape), "data": outputs.ravel().tolist()}]}
            if document.get("request_id") is not None:
                reply["id"] = document["request_id"]
            return reply

        return await answer(name, request, parse, render, error_key="error")

    @app.get("/metrics")
    async def prometheus_metrics():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    return app


# --- command line (run by uvicorn) ------------------------------------------------------


def _parse_model_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH.tflite, got {text!r}")
    return name, path


def _watch_parent(parent_pid: int, server) -> None:
    """Stop the server when the process that started it is gone."""
    def watch():
        while not server.should_exit:
            if os.getppid() != parent_pid:
                server.should_exit = True
                return
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str] | None = None) -> int:
    """`python -m edgelib.serving --model NAME=PATH [--model ...] [--port N] ...`"""
    parser = argparse.ArgumentParser(
        prog="python -m edgelib.serving",
        description="Serve .tflite models over HTTP (FastAPI + uvicorn, LiteRT runtime).")
    parser.add_argument("--model", action="append", type=_parse_model_arg, required=True,
                        metavar="NAME=PATH", help="a model to serve (repeat for several)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help=f"larger request bodies get 413 (default {DEFAULT_MAX_BODY_BYTES})")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads per interpreter")
    parser.add_argument("--interpreters", type=int, default=1,
                        help="interpreters per model (concurrent inferences of one model)")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help=f"most examples in one invoke (default {DEFAULT_MAX_BATCH})")
    parser.add_argument("--max-wait-ms", type=float, default=DEFAULT_MAX_WAIT_MS,
                        help="longest wait for more requests to fill a batch (default "
                             f"{DEFAULT_MAX_WAIT_MS}: only requests already waiting)")
    parser.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE,
                        help=f"requests waiting per model before 503 (default {DEFAULT_MAX_QUEUE})")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes sharing the port (default 1)")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    names = [name for name, _ in args.model]
    if len(set(names)) != len(names):
        parser.error(f"model names must be unique, got {names}")
    if not 1 <= args.workers <= 64:
        parser.error(f"--workers must be between 1 and 64, got {args.workers}")
    try:
        app = create_app(dict(args.model), max_body_bytes=args.max_body_bytes,
                         threads=args.threads, interpreters=args.interpreters,
                         max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                         max_queue=args.max_queue)
    except (ValueError, OSError) as exc:
        print(f"edgelib.serving: cannot load the models: {exc}", file=sys.stderr)
        return 2

    if args.workers > 1:
        return _run_workers(argv if argv is not None else sys.argv[1:], args)

    import uvicorn

    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            access_log=False, lifespan="off", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    if args.parent_pid is not None:
        _watch_parent(args.parent_pid, server)
    if args.fd is not None:  # a listening socket handed over by start_server
        server.run(sockets=[socket.socket(fileno=args.fd)])
    else:
        server.run()
    return 0


def _run_workers(argv: list[str], args) -> int:
    """Run `args.workers` server processes on one listening socket (the kernel
    hands each new connection to one of them); stop them all on SIGTERM / SIGINT.
    Each process has its own models, batches and /metrics."""
    import signal

    if args.fd is not None:
        listener = socket.socket(fileno=args.fd)
    else:
        listener = socket.create_server((args.host, args.port), backlog=2048,
                                        family=socket.AF_INET6 if ":" in args.host
                                        else socket.AF_INET)
    rest, skip = [], False
    for item in argv:  # the same arguments without --workers, --fd and --parent-pid
        if skip:
            skip = False
            continue
        if item in ("--workers", "--fd", "--parent-pid"):
            skip = True
            continue
        if item.split("=")[0] in ("--workers", "--fd", "--parent-pid"):
            continue
        rest.append(item)
    command = [sys.executable, "-m", "edgelib.serving", *rest, "--fd", str(listener.fileno()),
               "--parent-pid", str(os.getpid())]
    children = [subprocess.Popen(command, pass_fds=(listener.fileno(),))
                for _ in range(args.workers)]
    stopping = threading.Event()

    def stop(*_):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid is not None:
        def watch():
            while not stopping.is_set():
                if os.getppid() != args.parent_pid:
                    stopping.set()
                time.sleep(0.5)

        threading.Thread(target=watch, daemon=True).start()
    while not stopping.is_set() and all(child.poll() is None for child in children):
        stopping.wait(0.2)
    for child in children:
        if child.poll() is None:
            child.terminate()
    codes = [child.wait() for child in children]
    return 0 if stopping.is_set() else max(codes, key=abs)


# --- a server in a child process ---------------------------------------------------------

_live_handles: set = set()  # handles not stopped yet; stopped at exit


@dataclass
class ServerHandle:
    """A server running in a child process; `stop()` ends it (also on exit)."""

    process: subprocess.Popen
    host: str
    port: int
    workdir: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        """True while the child process runs."""
        return self.process.poll() is None

    def log(self) -> str:
        """What the server wrote to stdout / stderr so far."""
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self, timeout: float = 10.0) -> Client:
        return Client(self.url, timeout=timeout)

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by the server process and its
        worker processes, from the operating system (psutil)."""
        return process_cpu_seconds(self.pid)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Terminate the server, wait for it, and return its exit code.

        SIGTERM first (uvicorn shuts down gracefully), SIGKILL if it has not
        ended after `timeout` seconds. Safe to call twice.
        """
        if not self._stopped:
            self._stopped = True
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout)
            shutil.rmtree(self.workdir, ignore_errors=True)
            _live_handles.discard(self)
        return self.process.returncode

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __hash__(self) -> int:
        return id(self)


@atexit.register
def _stop_all() -> None:
    for handle in list(_live_handles):
        handle.stop()


def start_server(models: dict[str, str | Path | bytes], port: int = 0,
                 host: str = DEFAULT_HOST, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 threads: int = 1, interpreters: int = 1, timeout: float = 30.0,
                 log_level: str = "warning", workers: int = 1,
                 max_batch: int = DEFAULT_MAX_BATCH, max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
                 max_queue: int = DEFAULT_MAX_QUEUE) -> ServerHandle:
    """Start `python -m edgelib.serving` as a child process and wait until it answers.

    `models`: name -> .tflite path or bytes (bytes are written to a temporary
    folder removed by `stop()`). `port=0` takes a free port: this process
    binds a listening socket and hands it to the child, so no other program
    can take the port in between. Returns a `ServerHandle` (`url`, `alive`,
    `process`, `stop()`, a context manager). If the server does not answer
    GET /health within `timeout` seconds, or exits, it is stopped and a
    `ServingError` shows what it wrote to stderr.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict {name: .tflite path or bytes}")
    workdir = Path(tempfile.mkdtemp(prefix="edgelib-serving-"))
    command = [sys.executable, "-m", "edgelib.serving", "--host", host,
               "--max-body-bytes", str(max_body_bytes), "--threads", str(threads),
               "--interpreters", str(interpreters), "--log-level", log_level,
               "--workers", str(workers), "--max-batch", str(max_batch),
               "--max-wait-ms", str(max_wait_ms), "--max-queue", str(max_queue),
               "--parent-pid", str(os.getpid())]
    for name, model in models.items():
        if isinstance(model, (bytes, bytearray)):
            path = workdir / f"model-{len(command)}.tflite"
            path.write_bytes(bytes(model))
        else:
            path = Path(model).resolve()
        command += ["--model", f"{name}={path}"]

    listener = None
    pass_fds: tuple[int, ...] = ()
    if port == 0:
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                 socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        command += ["--fd", str(listener.fileno())]
        pass_fds = (listener.fileno(),)
    else:
        command += ["--port", str(port)]

    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    log = open(workdir / "server.log", "wb")
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   env=env, pass_fds=pass_fds, start_new_session=True)
    finally:
        log.close()
        if listener is not None:
            listener.close()  # the child holds its own copy
    handle = ServerHandle(process=process, host=host, port=port, workdir=workdir)
    _live_handles.add(handle)

    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=handle.url, timeout=2.0, trust_env=False) as http:
        while True:
            if process.poll() is not None:
                text = handle.log()
                handle.stop()
                raise ServingError(
                    f"the server exited with code {process.returncode} before answering; "
                    f"its output:\n{text[-3000:]}")
            try:
                if http.get("/health").status_code == 200:
                    return handle
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                text = handle.log()
                handle.stop()
                raise ServingError(f"the server did not answer GET /health within {timeout} s; "
                                   f"its output:\n{text[-3000:]}")
            time.sleep(0.05)


# --- the client --------------------------------------------------------------------------


def _raise_for(response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
        detail, reason = body.get("detail"), body.get("reason")
    except (ValueError, AttributeError):
        detail, reason = response.text[:500], None
    raise ServingError(f"HTTP {response.status_code}: {detail}", status=response.status_code,
                       reason=reason)


class Client:
    """A small synchronous client of the model server (httpx).

        client = Client("http://127.0.0.1:8000")
        client.predict("digits-int8", x[:8])   # np.ndarray (8, 10), float32
    """

    def __init__(self, base_url: str, timeout: float = 10.0):
        import httpx

        self.base_url = base_url.rstrip("/")
        # trust_env=False: a proxy from the environment must not intercept loopback calls
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def health(self) -> dict:
        response = self._http.get("/health")
        _raise_for(response)
        return response.json()

    def models(self) -> list[str]:
        response = self._http.get("/models")
        _raise_for(response)
        return response.json()["models"]

    def model(self, name: str) -> dict:
        """The metadata of one model (input and output shapes, dtypes, bytes)."""
        response = self._http.get(f"/models/{name}")
        _raise_for(response)
        return response.json()

    def predict(self, name: str, x) -> np.ndarray:
        """Send a batch (batch axis first) and return the outputs as float32."""
        x = np.asarray(x, dtype=np.float32)
        response = self._http.post(f"/models/{name}/predict", content=request_body(x),
                                   headers={"Content-Type": "application/json"})
        _raise_for(response)
        return np.asarray(response.json()["outputs"], dtype=np.float32)

    def predict_activation(self, name: str, payload: bytes, meta: dict) -> np.ndarray:
        """Send an encoded activation (`edgelib.split.encode_activation`, batch
        axis first) in the binary format; return the outputs as float32."""
        headers = {"Content-Type": ACTIVATION_CONTENT_TYPE,
                   "X-Activation-Encoding": str(meta["encoding"]),
                   "X-Activation-Shape": ",".join(str(int(d)) for d in meta["shape"])}
        response = self._http.post(f"/models/{name}/predict", content=payload, headers=headers)
        _raise_for(response)
        return np.asarray(response.json()["outputs"], dtype=np.float32)

    def timed_predict(self, name: str, x) -> tuple[np.ndarray, dict]:
        """`predict` plus where the time went, in ms: `total` (seen by the
        client), `server` parse and infer (from the Server-Timing header), and
        `serialize` (building the JSON body here)."""
        begin = time.perf_counter()
        body = request_body(np.asarray(x, dtype=np.float32))
        built = time.perf_counter()
        response = self._http.post(f"/models/{name}/predict", content=body,
                                   headers={"Content-Type": "application/json"})
        _raise_for(response)
        outputs = np.asarray(response.json()["outputs"], dtype=np.float32)
        end = time.perf_counter()
        timing = {"serialize": 1e3 * (built - begin), "total": 1e3 * (end - begin)}
        for part in response.headers.get("server-timing", "").split(","):
            key, _, value = part.strip().partition(";dur=")
            if key and value:
                timing[key] = float(value)
        return outputs, timing

    def metrics(self) -> str:
        """The server's metrics in Prometheus text format."""
        response = self._http.get("/metrics")
        _raise_for(response)
        return response.text

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def request_body(x: np.ndarray) -> bytes:
    """The JSON body of a predict request for the batch `x` (batch axis first).

    Each float32 value is widened to float64 (exactly) and written as the
    shortest decimal that reads back as that float64 number; the server's
    float32 cast then recovers exactly the float32 value sent. (Chapter 14,
    exercise 1, asks for a smaller body.)
    """
    return json.dumps({"inputs": np.asarray(x, dtype=np.float32).tolist()}).encode()


# --- reading the metrics (what an operator's dashboard does) ---------------------------


def metric_value(metrics_text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`
    (0.0 when there is none), e.g.
    `metric_value(text, "edge_predict_requests_total", status="422")`."""
    from prometheus_client.parser import text_string_to_metric_families

    return float(sum(sample.value
                     for family in text_string_to_metric_families(metrics_text)
                     for sample in family.samples
                     if sample.name == name
                     and all(sample.labels.get(k) == v for k, v in labels.items())))


def histogram(metrics_text: str, name: str, **labels: str) -> tuple[np.ndarray, np.ndarray]:
    """The buckets of a Prometheus histogram: (upper bounds, cumulative counts).

    `name` is the histogram's base name (e.g. "edge_predict_latency_seconds");
    samples of every label set matching `labels` are added up. The last bound
    is +inf and its count is the total number of observations.
    """
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[float, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name != f"{name}_bucket" or \
                    not all(sample.labels.get(k) == v for k, v in labels.items()):
                continue
            bound = float(sample.labels["le"])
            counts[bound] = counts.get(bound, 0.0) + sample.value
    if not counts:
        raise ValueError(f"no histogram {name!r} with labels {labels} in the metrics")
    bounds = np.array(sorted(counts))
    return bounds, np.array([counts[b] for b in bounds])


def histogram_quantile(bounds, cumulative, q: float) -> float:
    """The q-quantile (0 < q < 1) of a histogram, as Prometheus' histogram_quantile.

    Find the first bucket whose cumulative count reaches q x total and
    interpolate linearly inside it (the first bucket starts at 0). If that is
    the +inf bucket, return the largest finite bound: a histogram cannot say
    more. NaN when the histogram is empty.
    """
    bounds = np.asarray(bounds, dtype=float)
    cumulative = np.asarray(cumulative, dtype=float)
    if not 0 < q < 1:
        raise ValueError(f"q must be between 0 and 1, got {q!r}")
    if bounds.shape != cumulative.shape or bounds.ndim != 1 or len(bounds) < 2 \
            or not np.isinf(bounds[-1]):
        raise ValueError("expected matching 1-D bounds and cumulative counts ending with +inf")
    total = cumulative[-1]
    if total <= 0:
        return float("nan")
    rank = q * total
    i = int(np.searchsorted(cumulative, rank, side="left"))
    if i == len(bounds) - 1:
        return float(bounds[-2])
    lower = bounds[i - 1] if i > 0 else 0.0
    below = cumulative[i - 1] if i > 0 else 0.0
    inside = cumulative[i] - below
    return float(lower + (bounds[i] - lower) * ((rank - below) / inside if inside else 1.0))


def quantiles_between(before: str, after: str, metric: str, qs=(0.5, 0.99),
                      **labels: str) -> list[float]:
    """Quantiles (in the metric's unit) of the observations a histogram gained
    between two scrapes of /metrics, `before` and `after` (the texts): the
    difference of their cumulative buckets is the histogram of that interval
    alone. NaN when it gained nothing."""
    if not isinstance(before, str) or not isinstance(after, str):
        raise TypeError(f"before and after must be /metrics texts (str), got "
                        f"{type(before).__name__} and {type(after).__name__}")
    bounds, start = histogram(before, metric, **labels)
    end_bounds, end = histogram(after, metric, **labels)
    if not np.array_equal(bounds, end_bounds) or np.any(end < start):
        raise ValueError(f"{metric!r}: the second scrape is not a later scrape of the same "
                         "histogram (other buckets, or counts that went down)")
    return [histogram_quantile(bounds, end - start, q) for q in qs]


def idle_cpu_seconds(cpus=None, stat_path: str = "/proc/stat") -> float:
    """Seconds the CPUs `cpus` (default: those this process may run on) have spent
    idle since boot, summed over them: the idle and iowait fields of their own
    lines (`cpu0`, `cpu1`, ...) in /proc/stat, whose first line would also count
    CPUs this process cannot use.

    A tickless kernel (the usual case) measures these idle periods instead of
    sampling them at clock ticks, as it does the busy fields, and reports them in
    ticks of 1/CLK_TCK s: the difference of two readings is exact to within one
    tick per CPU and field (2 x len(cpus) ticks). Over a window of w seconds,
    every program together used len(cpus) - idle / w of these cores."""
    cpus = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
    if not cpus or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                           for c in cpus):
        raise ValueError(f"cpus must be CPU numbers (ints >= 0), got {cpus!r}")
    idle = {}
    with open(stat_path) as stat:
        for line in stat:
            fields = line.split()
            if fields and fields[0][:3] == "cpu" and fields[0][3:].isdigit() \
                    and int(fields[0][3:]) in cpus and len(fields) >= 6:
                idle[int(fields[0][3:])] = int(fields[4]) + int(fields[5])  # idle + iowait
    missing = [c for c in cpus if c not in idle]
    if missing:
        raise ValueError(f"{stat_path}: expected a line 'cpuN user nice system idle iowait ...' "
                         f"for each CPU in {cpus}, found none for {missing}")
    return sum(idle.values()) / os.sysconf("SC_CLK_TCK")


def live_servers() -> list[ServerHandle]:
    """The servers started by `start_server` in this process and not stopped yet."""
    return sorted(_live_handles, key=lambda handle: handle.pid)


# --- a load generator (asyncio + httpx) -----------------------------------------------


@dataclass
class LoadResult:
    """What `load` measured: per-request latencies (s) and answers."""

    requests: int
    concurrency: int
    errors: int
    wall_s: float
    latencies_s: np.ndarray
    outputs: list  # per request: np.ndarray, or None when it failed
    error_messages: list[str]
    client_cpu_s: float = 0.0  # CPU time of the load's own thread (the clients), timed run only
    probed: tuple = ()  # (before, after): what `probe` returned at the edges of the timed run

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else math.inf

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q) * 1e3)

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    def summary(self) -> str:
        return (f"{self.requests} requests at concurrency {self.concurrency}: "
                f"{self.errors} errors, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
                f"{self.requests_per_s:.0f} requests/s")


def clients(base_url: str, n: int, timeout: float = 30.0) -> list:
    """`n` httpx.AsyncClient objects for `base_url`, one keep-alive connection each
    (a shared pool costs more client CPU than the requests themselves at 32
    users), with one TLS context for all: httpx builds one per client otherwise,
    about 17 ms of CPU each, even for plain HTTP. Close each (`async with`)."""
    import ssl

    import httpx

    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be a URL starting with http:// or https://, "
                         f"got {base_url!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an int >= 1 (the number of clients), got {n!r}")
    tls = ssl.create_default_context()
    return [httpx.AsyncClient(base_url=base_url, timeout=timeout, trust_env=False, verify=tls,
                              limits=httpx.Limits(max_connections=1)) for _ in range(n)]


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and all its
    descendants (a server and its worker processes), from psutil."""
    import psutil

    if not isinstance(pid, int) or isinstance(pid, bool) or pid < 1:
        raise ValueError(f"pid must be a process id (an int >= 1), got {pid!r}")
    try:
        root = psutil.Process(pid)
        total, children = sum(root.cpu_times()[:2]), root.children(recursive=True)
    except psutil.NoSuchProcess:
        raise ValueError(f"no process with id {pid} (has the server stopped?)") from None
    for child in children:
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:  # a worker that ended meanwhile
            pass
    return float(total)


def load(base_url: str, name: str, examples, requests: int = 2000, concurrency: int = 32,
         timeout: float = 30.0, probe=None) -> LoadResult:
    """Send `requests` predict requests, `concurrency` at a time, and measure.

    Request i carries `examples[i % len(examples)]` as a batch of one.
    `concurrency` simulated users run as asyncio tasks, each with its own
    httpx.AsyncClient and keep-alive connection; each sends its next request
    when its last answer came back (a closed loop), until `requests` were
    sent. Latency is measured per request on the client, from just before
    the request is sent to the answer's arrival (its JSON is parsed after
    the clock stops). Each user's connection is opened (GET /health) before
    the clock starts, and closed after it stops. `client_cpu_s` is the CPU
    time of the thread that runs all the users. `probe`, a function of no
    arguments, is called by that thread just before the clock starts and just
    after it stops; its two results are kept in `probed`, so counters it reads
    (CPU times) cover the same window as `wall_s`. Runs in a thread of its
    own, so it works inside Jupyter too.
    """
    if not isinstance(requests, int) or requests < 1:
        raise ValueError(f"requests must be an int >= 1, got {requests!r}")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    examples = np.asarray(examples, dtype=np.float32)
    if examples.ndim < 1 or len(examples) == 0:
        raise ValueError("examples must be a non-empty batch (first axis = examples)")
    if probe is not None and not callable(probe):
        raise ValueError(f"probe must be a function of no arguments (or None), "
                         f"got {type(probe).__name__}")
    bodies = [request_body(example[None]) for example in examples]

    latencies = np.zeros(requests)
    outputs: list = [None] * requests
    messages: list[str] = []

    async def run() -> tuple[float, float, tuple]:
        import httpx

        counter = iter(range(requests))

        async def user(http):
            for i in counter:
                begin = time.perf_counter()
                try:
                    response = await http.post(
                        f"/models/{name}/predict", content=bodies[i % len(bodies)],
                        headers={"Content-Type": "application/json"})
                    latencies[i] = time.perf_counter() - begin
                    if response.status_code == 200:
                        outputs[i] = np.asarray(response.json()["outputs"], np.float32)
                    else:
                        messages.append(f"HTTP {response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as exc:
                    latencies[i] = time.perf_counter() - begin
                    messages.append(f"{type(exc).__name__}: {exc}")

        # one client (one keep-alive connection) per simulated user, built and
        # connected before the clock starts: opened inside the timed run, the
        # connections held the event loop while the first users' answers waited,
        # and the run measured its own start-up.
        async with AsyncExitStack() as stack:
            users = [await stack.enter_async_context(http)
                     for http in clients(base_url, concurrency, timeout=timeout)]
            await asyncio.gather(*(http.get("/health") for http in users))
            before = probe() if probe is not None else None
            begin, cpu = time.perf_counter(), time.thread_time()
            await asyncio.gather(*(user(http) for http in users))
            wall, cpu = time.perf_counter() - begin, time.thread_time() - cpu
            after = probe() if probe is not None else None
        return wall, cpu, (before, after) if probe is not None else ()

    box: dict = {}

    def thread_main():
        try:
            box["wall"], box["cpu"], box["probed"] = asyncio.run(run())
        except BaseException as exc:  # pragma: no cover - re-raised below
            box["error"] = exc

    thread = threading.Thread(target=thread_main, name="edgelib-load")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    errors = sum(out is None for out in outputs)
    return LoadResult(requests=requests, concurrency=concurrency, errors=errors,
                      wall_s=box["wall"], latencies_s=latencies, outputs=outputs,
                      error_messages=messages[:20], client_cpu_s=box["cpu"],
                      probed=box["probed"])


if __name__ == "__main__":
    sys.exit(main())
