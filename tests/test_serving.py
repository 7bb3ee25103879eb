"""The model server (edgelib.serving), started as a child process on loopback."""

import json
import os
import socket
import subprocess
import sys

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import assert_runs_without_tensorflow
from edgelib import serving, split, tflite
from edgelib.runtime import EdgeModel

MAX_BODY = 100_000  # bytes; one digit as JSON is about 4-16 kB


@pytest.fixture(scope="module")
def model_files(tiny_digits_model, tmp_path_factory):
    model, x = tiny_digits_model
    folder = tmp_path_factory.mktemp("served")
    paths = {
        "digits-float32": tflite.save(tflite.convert(model, "float32"), folder / "f32.tflite"),
        "digits-int8": tflite.save(tflite.convert(model, "int8", representative=x[:100]),
                                   folder / "int8.tflite"),
    }
    return paths, x


@pytest.fixture(scope="module")
def server(model_files):
    paths, _ = model_files
    handle = serving.start_server(paths, max_body_bytes=MAX_BODY)
    yield handle
    handle.stop()
    assert not handle.alive


@pytest.fixture(scope="module")
def client(server):
    with serving.Client(server.url) as c:
        yield c


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=10, trust_env=False) as h:
        yield h


def counter(metrics_text: str, name: str, **labels) -> float:
    """The sum of the samples `name` whose labels match `labels` (0 if none)."""
    return sum(sample.value
               for family in text_string_to_metric_families(metrics_text)
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v
                                              for k, v in labels.items()))


def test_health_models_and_metadata(server, client):
    assert server.alive and server.host == "127.0.0.1"
    assert client.health() == {"status": "ok", "models": ["digits-float32", "digits-int8"]}
    assert client.models() == ["digits-float32", "digits-int8"]
    meta = client.model("digits-int8")
    assert meta["input"]["shape"] == [28, 28, 1] and meta["input"]["dtype"] == "int8"
    assert set(meta["input"]["quantization"]) == {"scale", "zero_point"}
    assert meta["output"]["shape"] == [10]
    f32 = client.model("digits-float32")
    assert f32["input"]["dtype"] == "float32" and f32["input"]["quantization"] is None
    assert meta["bytes"] < f32["bytes"]


@pytest.mark.parametrize("name", ["digits-float32", "digits-int8"])
def test_predict_equals_the_in_process_model(model_files, client, name):
    paths, x = model_files
    expected = EdgeModel(paths[name]).predict(x[:5])
    got = client.predict(name, x[:5])
    assert got.dtype == np.float32 and got.shape == (5, 10)
    np.testing.assert_array_equal(got, expected)
    one, timing = client.timed_predict(name, x[:1])
    np.testing.assert_array_equal(one, expected[:1])
    assert {"serialize", "total", "parse", "infer"} <= set(timing)


def test_load_2000_requests_at_concurrency_32(model_files, server, capsys):
    """A bounded load test on loopback: zero errors, every answer exact.

    Exact, not close: the server runs the same .tflite bytes in the same
    LiteRT build with the same thread count (1) as the in-process EdgeModel,
    and JSON carries the numbers without loss (a float32 written as the
    shortest float64 repr reads back as the same float32, both ways), so
    the interpreter sees bit-identical inputs and returns identical outputs.
    """
    paths, x = model_files
    examples = x[:64]
    reference = EdgeModel(paths["digits-float32"]).predict(examples)
    result = serving.load(server.url, "digits-float32", examples, requests=2000,
                          concurrency=32)
    with capsys.disabled():
        print(f"\n[load test] {result.summary()} (wall {result.wall_s:.1f} s)")
    assert result.errors == 0, result.error_messages
    assert len(result.outputs) == 2000
    for i, out in enumerate(result.outputs):
        np.testing.assert_array_equal(out, reference[i % len(examples)][None])
    assert server.alive


def test_load_connects_its_clients_before_the_clock_starts(model_files, server, monkeypatch):
    """Clients are built and connected before the clock starts: built inside the timed
    run (about 17 ms of CPU each), they held the event loop while earlier users'
    answers waited, and the run measured its own start-up as latency. The probe is
    read right before the first request and right after the last answer."""
    import httpx

    events = []
    real_init, real_get = httpx.AsyncClient.__init__, httpx.AsyncClient.get
    real_post = httpx.AsyncClient.post

    def init(self, *args, **kwargs):
        events.append("built")
        real_init(self, *args, **kwargs)

    async def get(self, *args, **kwargs):
        events.append("connected")
        return await real_get(self, *args, **kwargs)

    async def post(self, *args, **kwargs):
        events.append("sent")
        return await real_post(self, *args, **kwargs)

    def probe():
        events.append("probe")
        return len(events)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", init)
    monkeypatch.setattr(httpx.AsyncClient, "get", get)
    monkeypatch.setattr(httpx.AsyncClient, "post", post)
    _, x = model_files
    result = serving.load(server.url, "digits-float32", x[:8], requests=16, concurrency=8,
                          probe=probe)
    assert result.errors == 0, result.error_messages
    assert 0 < result.client_cpu_s < result.wall_s * 1.5  # one thread's CPU over the timed run
    assert events == ["built"] * 8 + ["connected"] * 8 + ["probe"] + ["sent"] * 16 + ["probe"]
    assert result.probed == (17, 34)  # what the probe returned, before and after
    assert serving.load(server.url, "digits-float32", x[:2], requests=2,
                        concurrency=2).probed == ()
    with pytest.raises(ValueError, match="probe must be a function"):
        serving.load(server.url, "digits-float32", x[:2], requests=2, probe=3.0)


def _digit(x) -> list:
    return x[:1].astype(np.float32).tolist()


def pixel(value):
    """A request for one digit with one pixel replaced by `value`."""
    def body(x) -> dict:
        batch = _digit(x)
        batch[0][14][14][0] = value
        return {"inputs": batch}
    return body


# (case, model, body (bytes or JSON-able), extra headers, status, words in the message)
BAD_JSON_CASES = [
    ("malformed-json", "digits-float32", b'{"inputs": [[0.1, ', {}, 400, "malformed JSON"),
    ("not-utf8", "digits-float32", b"\xff\xfe\x00", {}, 400, "not UTF-8"),
    ("empty-body", "digits-float32", b"", {}, 400, "body is empty"),
    ("not-an-object", "digits-float32", [1, 2], {}, 422, "expected a JSON object"),
    ("missing-field", "digits-float32", {"input": [[0.0]]}, {}, 422,
     "missing field 'inputs'"),
    ("inputs-not-a-list", "digits-float32", {"inputs": 3}, {}, 422, "must be a list"),
    ("empty-batch", "digits-float32", {"inputs": []}, {}, 422, "empty batch"),
    ("no-batch-axis", "digits-float32", lambda x: {"inputs": x[0].tolist()}, {}, 422,
     "has shape (28, 28, 1), expected a batch of shape (N, 28, 28, 1)"),
    ("wrong-shape", "digits-float32", {"inputs": [[0.0] * 784]}, {}, 422,
     "has shape (1, 784), expected a batch of shape (N, 28, 28, 1)"),
    ("ragged", "digits-float32", {"inputs": [[[0.1], [0.2]], [[0.3]]]}, {}, 422, "ragged"),
    ("string-value", "digits-float32", pixel("0.5"), {}, 422, "found a string ('0.5')"),
    ("boolean-value", "digits-float32", pixel(True), {}, 422, "found a boolean"),
    ("null-value", "digits-float32", pixel(None), {}, 422, "found null"),
    ("nan", "digits-float32", pixel(float("nan")), {}, 422, "must be finite numbers, found nan"),
    ("infinity", "digits-float32", pixel(float("inf")), {}, 422, "finite numbers, found inf"),
    ("beyond-float32", "digits-float32", pixel(1e300), {}, 422, "beyond float32"),
    ("huge-integer", "digits-float32", pixel(10**400), {}, 422, "too large"),
    ("out-of-int8-range", "digits-int8", pixel(255.0), {}, 422, "can represent only"),
    ("unknown-model", "no-such-model", {"inputs": [[0.0]]}, {}, 404,
     "no model named 'no-such-model'"),
    ("content-type", "digits-float32", {"inputs": []}, {"Content-Type": "text/plain"}, 415,
     "expected Content-Type application/json"),
    ("oversized", "digits-float32", b"[" + b"0.5, " * 30_000 + b"0]", {}, 413,
     f"the limit is {MAX_BODY} bytes"),
]


def _body(case_body, x) -> bytes:
    if isinstance(case_body, bytes):
        return case_body
    if callable(case_body):
        case_body = case_body(x)
    return json.dumps(case_body).encode()  # json writes NaN and Infinity as such


@pytest.mark.parametrize("case,name,body,headers,status,words", BAD_JSON_CASES,
                         ids=[c[0] for c in BAD_JSON_CASES])
def test_bad_input_gets_a_4xx_with_a_message(model_files, http, case, name, body, headers,
                                             status, words):
    _, x = model_files
    headers = {"Content-Type": "application/json", **headers}
    response = http.post(f"/models/{name}/predict", content=_body(body, x), headers=headers)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in detail, detail



def _checked_way(body: bytes, shape) -> np.ndarray:
    """What the server answered before the fast path: json.loads, then inputs_from_json."""
    return serving.inputs_from_json(serving._parse_json(body), shape)


def _outcome(parse, body: bytes, shape):
    try:
        batch = parse(body, shape)
    except serving._Reject as exc:
        return ("refused", exc.status, exc.reason, exc.message)
    return ("batch", batch.dtype.str, batch.shape, batch.tobytes())


ROW = "[[0.1, 0.25, 3], [1, 2, 3]]"  # one example of shape (2, 3), ints among floats
DEEP = "[" * 100_000 + "]" * 100_000
# (case, JSON body, input shape, True when msgspec decodes it into a non-empty batch:
# then the fast path answers unless a value is beyond float32)
FAST_PATH_CASES = [
    ("ints-mixed-with-floats", f'{{"inputs": [{ROW}]}}', (2, 3), True),
    ("two-examples", f'{{"inputs": [{ROW}, {ROW}]}}', (2, 3), True),
    ("spaces-and-exponents", ' {"inputs":[[[1E+2,-0,1e-400],[0.5e1,-3,2]]]}\n', (2, 3), True),
    ("large-integers", '{"inputs": [[[9007199254740993, 1' + "0" * 30 + ', 1], [1, 2, 3]]]}',
     (2, 3), True),
    ("duplicate-key", f'{{"inputs": [[[9, 9, 9], [9, 9, 9]]], "inputs": [{ROW}]}}', (2, 3),
     True),
    ("scalar-inputs", '{"inputs": [1.5, 2]}', (), True),
    ("boolean", '{"inputs": [[[0.1, true, 3], [1, 2, 3]]]}', (2, 3), False),
    ("boolean-scalar-inputs", '{"inputs": [false]}', (), False),
    ("null", '{"inputs": [[[0.1, null, 3], [1, 2, 3]]]}', (2, 3), False),
    ("string", '{"inputs": [[[0.1, "0.5", 3], [1, 2, 3]]]}', (2, 3), False),
    ("ragged", '{"inputs": [[[0.1, 0.2, 3], [1, 2]]]}', (2, 3), False),
    ("ragged-examples", f'{{"inputs": [{ROW}, [[1, 2, 3]]]}}', (2, 3), False),
    ("nan", '{"inputs": [[[0.1, NaN, 3], [1, 2, 3]]]}', (2, 3), False),
    ("infinity", '{"inputs": [[[0.1, -Infinity, 3], [1, 2, 3]]]}', (2, 3), False),
    ("beyond-float64", '{"inputs": [[[0.1, 1e400, 3], [1, 2, 3]]]}', (2, 3), False),
    ("beyond-float32", '{"inputs": [[[0.1, 1e39, 3], [1, 2, 3]]]}', (2, 3), True),
    ("huge-integer", '{"inputs": [[[0.1, 1' + "0" * 400 + ', 3], [1, 2, 3]]]}', (2, 3),
     False),
    ("a-scalar", '{"inputs": 3}', (2, 3), False),
    ("a-scalar-body", "3", (2, 3), False),
    ("no-batch-axis", f'{{"inputs": {ROW}}}', (2, 3), False),
    ("nested-too-deep", '{"inputs": [[[[0.1], [0.2], [3]], [[1], [2], [3]]]]}', (2, 3), False),
    ("nested-too-deep-to-parse", f'{{"inputs": {DEEP}}}', (2, 3), False),
    ("wrong-shape", '{"inputs": [[[0.1, 0.2], [1, 2]]]}', (2, 3), False),
    ("empty-batch", '{"inputs": []}', (2, 3), False),
    ("missing-field", '{"input": [[0.0]]}', (2, 3), False),
    ("another-key", f'{{"inputs": [{ROW}], "id": "a"}}', (2, 3), False),
    ("not-an-object", f"[{ROW}]", (2, 3), False),
    ("malformed", '{"inputs": [[[0.1, ', (2, 3), False),
    ("trailing-comma", '{"inputs": [[[0.1, 0.2, 3,], [1, 2, 3]]]}', (2, 3), False),
    ("utf8-byte-order-mark", f'\ufeff{{"inputs": [{ROW}]}}', (2, 3), False),
]


@pytest.mark.parametrize("case,text,shape,fast", FAST_PATH_CASES,
                         ids=[c[0] for c in FAST_PATH_CASES])
def test_the_fast_path_answers_as_the_checked_way(case, text, shape, fast):
    body = text.encode()
    assert _outcome(serving.inputs_from_body, body, shape) == _outcome(_checked_way, body, shape)
    try:  # and the case exercises the path it is meant to
        inputs = serving._batch_decoder(shape).decode(body).inputs
    except Exception:  # noqa: BLE001 - any failure means the checked way answers
        inputs = []
    assert bool(inputs) == fast


def test_the_fast_path_reads_floats_exactly():
    x = np.random.default_rng(0).standard_normal((5, 28, 28, 1)).astype(np.float32)
    x[0, 0, 0, 0], x[0, 0, 1, 0] = np.finfo(np.float32).max, np.finfo(np.float32).tiny
    body = serving.request_body(x)
    np.testing.assert_array_equal(serving.inputs_from_body(body, (28, 28, 1)), x)
    assert _outcome(serving.inputs_from_body, body, (28, 28, 1)) == \
        _outcome(_checked_way, body, (28, 28, 1))

def test_oversized_body_without_content_length(http):
    """A chunked body (no Content-Length) is counted while it is read."""
    chunks = iter([b'{"inputs": [' + b"0.5, " * 10_000] * 5)
    response = http.post("/models/digits-float32/predict", content=chunks,
                         headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert f"exceeds the limit of {MAX_BODY} bytes" in response.json()["detail"]


def test_a_lying_content_length_gets_a_4xx(server):
    """Content-Length smaller than the body: the server reads only what was
    declared (truncated JSON -> 400) and refuses the rest as a bad request.
    With httptools the rest is parsed at once as a next request, and uvicorn may
    refuse it (400, connection closed) before the handler answers the first:
    either way a 400 that says what was wrong, and the server stays up."""
    body = b'{"inputs": [' + b"0.5, " * 40_000
    head = (b"POST /models/digits-float32/predict HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 50\r\n\r\n")
    with socket.create_connection((server.host, server.port), timeout=10) as conn:
        try:
            conn.sendall(head + body)
        except OSError:
            pass  # the server may close the connection before reading all of it
        data = b""
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except OSError:
            pass
    status = int(data.split(b" ", 2)[1])
    assert status == 400, data[:300]
    assert b"malformed JSON" in data or b"Invalid HTTP request" in data, data[:300]
    assert server.alive


@pytest.mark.parametrize("encoding", split.ENCODINGS)
def test_binary_activation_request(model_files, client, encoding):
    """The split-computing format: an encoded tensor, batch axis first."""
    paths, x = model_files
    payload, meta = split.encode_activation(x[:3], encoding)
    got = client.predict_activation("digits-float32", payload, meta)
    expected = EdgeModel(paths["digits-float32"]).predict(split.decode_activation(payload, meta))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("headers,payload,words", [
    ({}, b"\x00" * 16, "needs the headers"),
    ({"X-Activation-Encoding": "int4", "X-Activation-Shape": "1,28,28,1"}, b"\x00" * 784,
     "unknown encoding 'int4'"),
    ({"X-Activation-Encoding": "int8", "X-Activation-Shape": "1,28,28,1"}, b"\x00" * 100,
     "takes 789 bytes, the payload has 100"),
    ({"X-Activation-Encoding": "float32", "X-Activation-Shape": "1,28,28"}, b"\x00" * 3136,
     "expected (N, 28, 28, 1)"),
    ({"X-Activation-Encoding": "float32", "X-Activation-Shape": "one"}, b"", "integers"),
], ids=["no-headers", "unknown-encoding", "wrong-length", "wrong-shape", "bad-shape-header"])
def test_bad_binary_activation_gets_a_422(http, headers, payload, words):
    response = http.post("/models/digits-float32/predict", content=payload,
                         headers={"Content-Type": "application/octet-stream", **headers})
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


def test_unknown_model_metadata_is_404(http):
    response = http.get("/models/nope")
    assert response.status_code == 404
    assert "digits-float32" in response.json()["detail"]


def test_server_healthy_after_all_the_bad_input(server, client, http, model_files):
    """Every bad request in a row (independent of the tests above): each is
    refused with its 4xx, the server then still answers exactly, and its
    metrics count the refusals by model, reason and status, with no 500."""
    paths, x = model_files
    before = client.metrics()
    for _, name, body, headers, status, _ in BAD_JSON_CASES:
        response = http.post(f"/models/{name}/predict", content=_body(body, x),
                             headers={"Content-Type": "application/json", **headers})
        assert response.status_code == status
    assert server.alive
    assert client.health()["status"] == "ok"
    np.testing.assert_array_equal(client.predict("digits-int8", x[:2]),
                                  EdgeModel(paths["digits-int8"]).predict(x[:2]))
    after = client.metrics()

    def grew(metric, **labels):
        return counter(after, metric, **labels) - counter(before, metric, **labels)

    assert grew("edge_predict_errors_total") == len(BAD_JSON_CASES)
    assert grew("edge_predict_errors_total", model="unknown", reason="unknown_model") == 1
    assert grew("edge_predict_errors_total", model="digits-int8", reason="out_of_range") == 1
    assert grew("edge_predict_requests_total", status="413") == 1
    assert grew("edge_predict_requests_total", status="400") == 3
    assert counter(after, "edge_predict_errors_total", reason="internal") == 0
    assert counter(after, "edge_predict_requests_total", status="500") == 0


def test_metrics_count_the_requests(client, model_files):
    _, x = model_files
    name = "digits-int8"
    before = client.metrics()
    for _ in range(5):
        client.predict(name, x[:2])
    with pytest.raises(serving.ServingError, match="HTTP 422") as refused:
        client.predict(name, np.zeros((1, 28, 28)))
    assert refused.value.status == 422 and refused.value.reason == "wrong_shape"
    after = client.metrics()
    assert "# TYPE edge_predict_latency_seconds histogram" in after
    diff = {
        "ok": ("edge_predict_requests_total", {"model": name, "status": "200"}, 5),
        "refused": ("edge_predict_requests_total", {"model": name, "status": "422"}, 1),
        "reason": ("edge_predict_errors_total", {"model": name, "reason": "wrong_shape"}, 1),
        "examples": ("edge_predict_examples_total", {"model": name}, 10),
        "latency": ("edge_predict_latency_seconds_count", {"model": name}, 6),
        "inference": ("edge_inference_seconds_count", {"model": name}, 5),
    }
    for what, (metric, labels, expected) in diff.items():
        got = counter(after, metric, **labels) - counter(before, metric, **labels)
        assert got == expected, f"{what}: {metric}{labels} grew by {got}, expected {expected}"


def test_a_served_model_is_safe_under_threads(model_files):
    """Eight threads share two interpreters: every answer stays exact."""
    from concurrent.futures import ThreadPoolExecutor

    paths, x = model_files
    served = serving.ServedModel("m", paths["digits-float32"], interpreters=2)
    reference = EdgeModel(paths["digits-float32"]).predict(x[:40])
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: served.predict(x[i:i + 1]), range(40)))
    np.testing.assert_array_equal(np.concatenate(answers), reference)
    assert served.metadata()["interpreters"] == 2


def test_the_child_process_is_gone_after_stop(model_files):
    paths, _ = model_files
    with serving.start_server({"m": paths["digits-int8"]}) as handle:
        assert handle.alive and handle.process.poll() is None
        pid, workdir = handle.pid, handle.workdir
        assert serving.Client(handle.url).models() == ["m"]
    assert not handle.alive and handle.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not workdir.exists()
    assert handle.stop() == handle.process.returncode  # a second stop is harmless


def test_start_server_reports_a_dying_server(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    before = set(serving._live_handles)
    with pytest.raises(serving.ServingError, match="not a TFLite model"):
        serving.start_server({"bad": bad}, timeout=30)
    assert set(serving._live_handles) == before  # the failed server was stopped


def test_command_line_refuses_bad_arguments():
    proc = subprocess.run([sys.executable, "-m", "edgelib.serving", "--model", "no-path"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "expected NAME=PATH.tflite" in proc.stderr


def test_create_app_refuses_bad_arguments(model_files):
    paths, _ = model_files
    with pytest.raises(ValueError, match="non-empty dict"):
        serving.create_app({})
    with pytest.raises(ValueError, match="model name"):
        serving.create_app({"bad name!": paths["digits-int8"]})
    with pytest.raises(ValueError, match="max_body_bytes"):
        serving.create_app({"m": paths["digits-int8"]}, max_body_bytes=0)


def test_server_never_imports_tensorflow(model_files):
    paths, _ = model_files
    assert_runs_without_tensorflow(
        "from edgelib import serving, split\n"
        f"app = serving.create_app({{'m': {str(paths['digits-int8'])!r}}})\n"
    )


HISTOGRAM_TEXT = """# HELP t_seconds a test histogram
# TYPE t_seconds histogram
t_seconds_bucket{le="0.001",model="a"} 10.0
t_seconds_bucket{le="0.01",model="a"} 90.0
t_seconds_bucket{le="0.1",model="a"} 100.0
t_seconds_bucket{le="+Inf",model="a"} 100.0
t_seconds_count{model="a"} 100.0
t_seconds_sum{model="a"} 0.5
t_seconds_bucket{le="0.001",model="b"} 0.0
t_seconds_bucket{le="0.01",model="b"} 0.0
t_seconds_bucket{le="0.1",model="b"} 0.0
t_seconds_bucket{le="+Inf",model="b"} 4.0
t_seconds_count{model="b"} 4.0
t_seconds_sum{model="b"} 8.0
"""


def test_histogram_buckets_and_quantiles():
    bounds, cumulative = serving.histogram(HISTOGRAM_TEXT, "t_seconds", model="a")
    np.testing.assert_array_equal(bounds, [0.001, 0.01, 0.1, np.inf])
    np.testing.assert_array_equal(cumulative, [10, 90, 100, 100])
    # q = 0.5: rank 50, in the bucket (0.001, 0.01] holding ranks 10..90: halfway
    assert serving.histogram_quantile(bounds, cumulative, 0.5) == pytest.approx(0.0055)
    # q = 0.05: rank 5 in the first bucket [0, 0.001]
    assert serving.histogram_quantile(bounds, cumulative, 0.05) == pytest.approx(0.0005)
    assert serving.histogram_quantile(bounds, cumulative, 0.99) == pytest.approx(0.091)
    _, both = serving.histogram(HISTOGRAM_TEXT, "t_seconds")
    np.testing.assert_array_equal(both, [10, 90, 100, 104])
    b_bounds, b_counts = serving.histogram(HISTOGRAM_TEXT, "t_seconds", model="b")
    assert serving.histogram_quantile(b_bounds, b_counts, 0.5) == 0.1  # all in +Inf
    assert np.isnan(serving.histogram_quantile(bounds, np.zeros(4), 0.5))
    assert serving.metric_value(HISTOGRAM_TEXT, "t_seconds_count") == 104
    assert serving.metric_value(HISTOGRAM_TEXT, "t_seconds_sum", model="b") == 8
    assert serving.metric_value(HISTOGRAM_TEXT, "nothing") == 0
    with pytest.raises(ValueError, match="no histogram"):
        serving.histogram(HISTOGRAM_TEXT, "t_seconds", model="c")
    with pytest.raises(ValueError, match="q must be"):
        serving.histogram_quantile(bounds, cumulative, 1.5)


def test_histogram_of_the_served_latency(server, client, model_files):
    _, x = model_files
    before = serving.metric_value(client.metrics(), "edge_predict_latency_seconds_count",
                                  model="digits-int8")
    for _ in range(3):
        client.predict("digits-int8", x[:1])
    bounds, cumulative = serving.histogram(client.metrics(), "edge_predict_latency_seconds",
                                           model="digits-int8")
    assert cumulative[-1] == before + 3 and np.all(np.diff(cumulative) >= 0)
    assert list(bounds[:-1]) == list(serving.LATENCY_BUCKETS)
    assert 0 < serving.histogram_quantile(bounds, cumulative, 0.5) <= serving.LATENCY_BUCKETS[-1]
    assert server in serving.live_servers()


# --- batching, overload, model faults, workers --------------------------------------------


@pytest.mark.parametrize("name", ["digits-float32", "digits-int8"])
def test_predict_batch_equals_predict(model_files, name):
    """One invoke per power-of-two chunk gives the example-by-example outputs."""
    paths, x = model_files
    model = EdgeModel(paths[name])
    reference = model.predict(x[:45])
    np.testing.assert_allclose(model.predict_batch(x[:45], max_batch=16), reference, atol=1e-6)
    np.testing.assert_allclose(model.predict_batch(x[:3]), reference[:3], atol=1e-6)
    with pytest.raises(ValueError, match="max_batch must be an int >= 1"):
        model.predict_batch(x[:3], max_batch=0)
    with pytest.raises(ValueError, match="shape"):
        model.predict_batch(x[:3, :27])


def _asgi_answers(app, requests: list[tuple[str, bytes]]) -> list:
    """POST every (path, body) at once to the in-process app; the responses in order."""
    import asyncio

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            return await asyncio.gather(*(http.post(path, content=body,
                                                    headers={"content-type": "application/json"})
                                          for path, body in requests))

    return asyncio.run(run())


def test_concurrent_requests_run_as_one_batch(model_files):
    paths, x = model_files
    app = serving.create_app({"m": paths["digits-int8"]}, max_batch=8, max_wait_ms=50)
    good = [("/models/m/predict", serving.request_body(x[i:i + 1])) for i in range(6)]
    bad = ("/models/m/predict", serving.request_body(np.full((1, 28, 28, 1), 1e6)))
    answers = _asgi_answers(app, [*good[:3], bad, *good[3:]])
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 200, 200, 422, 200, 200, 200], statuses
    assert answers[3].json()["reason"] == "out_of_range"  # only the bad request fails
    got = np.array([r.json()["outputs"][0] for i, r in enumerate(answers) if i != 3])
    np.testing.assert_allclose(got, EdgeModel(paths["digits-int8"]).predict(x[:6]), atol=1e-6)
    text = app.state.metrics.text().decode()
    assert counter(text, "edge_batch_examples_count", model="m") < 7  # some ran together
    assert counter(text, "edge_batch_examples_sum", model="m") >= 7
    assert counter(text, "edge_queue_seconds_count", model="m") >= 7
    assert counter(text, "edge_predict_in_flight", model="m") == 0
    assert counter(text, "process_resident_memory_bytes") > 0
    digest = __import__("hashlib").sha256(paths["digits-int8"].read_bytes()).hexdigest()
    assert counter(text, "edge_model_file", model="m", sha256=digest) == 1


def test_a_full_queue_answers_503_with_retry_after(model_files, monkeypatch):
    import time

    paths, x = model_files
    slow = EdgeModel.predict_batch

    def predict_batch(self, batch, max_batch=32):
        time.sleep(0.2)
        return slow(self, batch, max_batch=max_batch)

    monkeypatch.setattr(EdgeModel, "predict_batch", predict_batch)
    app = serving.create_app({"m": paths["digits-float32"]}, max_batch=1, max_queue=2)
    answers = _asgi_answers(app, [("/models/m/predict", serving.request_body(x[:1]))] * 8)
    statuses = sorted(r.status_code for r in answers)
    assert 200 in statuses and 503 in statuses and set(statuses) == {200, 503}, statuses
    refused = next(r for r in answers if r.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["reason"] == "overloaded" and "retry" in refused.json()["detail"]


def test_a_model_fault_is_a_500(model_files, monkeypatch):
    paths, x = model_files

    def broken(self, batch, max_batch=32):
        raise RuntimeError("tensor arena corrupted")

    monkeypatch.setattr(EdgeModel, "predict_batch", broken)
    app = serving.create_app({"m": paths["digits-float32"]})
    (answer,) = _asgi_answers(app, [("/models/m/predict", serving.request_body(x[:1]))])
    assert answer.status_code == 500 and answer.json()["reason"] == "model_fault"
    assert "tensor arena corrupted" in answer.json()["detail"]
    text = app.state.metrics.text().decode()
    assert counter(text, "edge_predict_requests_total", model="m", status="500") == 1


def test_a_non_finite_output_for_valid_inputs_is_a_500(model_files, monkeypatch):
    paths, x = model_files

    def nan_model(self, batch, max_batch=32):
        return np.full((len(batch), 10), np.nan, np.float32)

    monkeypatch.setattr(EdgeModel, "predict_batch", nan_model)
    app = serving.create_app({"m": paths["digits-float32"]})
    (answer,) = _asgi_answers(app, [("/models/m/predict", serving.request_body(x[:1]))])
    assert answer.status_code == 500 and answer.json()["reason"] == "non_finite_output"
    assert "not finite for valid inputs" in answer.json()["detail"]


def test_two_workers_share_the_port(model_files):
    paths, x = model_files
    with serving.start_server({"m": paths["digits-float32"]}, workers=2) as handle:
        with serving.Client(handle.url) as client:
            for _ in range(4):
                np.testing.assert_allclose(client.predict("m", x[:2]),
                                           EdgeModel(paths["digits-float32"]).predict(x[:2]),
                                           atol=1e-6)
        children = subprocess.run(["pgrep", "-P", str(handle.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 2, children
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


@pytest.mark.parametrize("argument, words", [
    (["--workers", "0"], "--workers must be between 1 and 64"),
    (["--max-batch", "0"], "max_batch must be an int >= 1"),
    (["--max-queue", "-1"], "max_queue must be an int >= 1"),
    (["--max-wait-ms", "nan"], "max_wait_ms must be a number"),
])
def test_command_line_refuses_bad_serving_options(model_files, argument, words):
    paths, _ = model_files
    proc = subprocess.run([sys.executable, "-m", "edgelib.serving", "--model",
                           f"m={paths['digits-float32']}", *argument],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr


# --- the Open Inference Protocol (KServe v2) ------------------------------------------------


def _v2_tensor(x: np.ndarray, **changes) -> dict:
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP32",
              "data": x.ravel().tolist()}
    return {"id": "r1", "inputs": [{**tensor, **changes}]}


def test_open_inference_protocol(model_files, http):
    paths, x = model_files
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/models/digits-int8/ready").json()["ready"] is True
    meta = http.get("/v2/models/digits-int8").json()
    assert meta["inputs"][0]["shape"] == [-1, 28, 28, 1] and meta["inputs"][0]["datatype"] == "FP32"
    assert meta["outputs"][0]["shape"] == [-1, 10]
    answer = http.post("/v2/models/digits-int8/infer", json=_v2_tensor(x[:3]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == "r1" and body["model_name"] == "digits-int8"
    out = body["outputs"][0]
    assert out["shape"] == [3, 10] and out["datatype"] == "FP32"
    np.testing.assert_allclose(np.reshape(out["data"], (3, 10)),
                               EdgeModel(paths["digits-int8"]).predict(x[:3]), atol=1e-6)
    assert http.get("/v2/models/nope").status_code == 404


@pytest.mark.parametrize("document, status, words", [
    ({"inputs": []}, 422, "exactly one input tensor"),
    ({"inputs": [{"name": "x"}]}, 422, "lacks ['shape', 'datatype', 'data']"),
    (_v2_tensor(np.zeros((1, 28, 28, 1)), datatype="BYTES"), 422, "datatype must be one of"),
    (_v2_tensor(np.zeros((1, 28, 28, 1)), shape=[1, 28, 28]), 422, "expected [N, 28, 28, 1]"),
    (_v2_tensor(np.zeros((1, 28, 28, 1)), data=[0.0] * 5), 422, "data holds 5 values"),
    (_v2_tensor(np.zeros((1, 28, 28, 1)), data=["0"] * 784), 422, "only numbers"),
    (_v2_tensor(np.zeros((1, 28, 28, 1)), data=[1e39] * 784), 422, "finite"),
])
def test_bad_open_inference_requests(http, document, status, words):
    answer = http.post("/v2/models/digits-float32/infer", json=document)
    assert answer.status_code == status and words in answer.json()["error"], answer.text


def test_clients_share_one_tls_context_and_refuse_bad_arguments(server):
    import asyncio

    users = serving.clients(server.url, 3)
    assert len(users) == 3 and all(isinstance(u, httpx.AsyncClient) for u in users)

    async def ask():
        async with users[0] as a, users[1] as b, users[2] as c:
            return [(await u.get("/health")).status_code for u in (a, b, c)]

    assert asyncio.run(ask()) == [200, 200, 200]
    for url, n, words in (("localhost:8000", 2, "http://"), (server.url, 0, ">= 1"),
                          (server.url, 2.0, ">= 1"), (None, 2, "base_url")):
        with pytest.raises(ValueError, match=words):
            serving.clients(url, n)


def test_cpu_seconds_of_a_server_and_bad_pids(server, model_files):
    before = server.cpu_seconds()
    _, x = model_files
    serving.load(server.url, "digits-float32", x[:4], requests=40, concurrency=4)
    assert 0 < before < server.cpu_seconds()
    assert serving.process_cpu_seconds(os.getpid()) > 0
    for pid, words in ((0, "process id"), ("12", "process id"), (True, "process id")):
        with pytest.raises(ValueError, match=words):
            serving.process_cpu_seconds(pid)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    with pytest.raises(ValueError, match="no process"):
        serving.process_cpu_seconds(finished.pid)


def _latency_text(counts):
    # a /metrics text with one histogram of bounds 0.001, 0.01, +Inf and these cumulative counts
    lines = [f'h_bucket{{model="m",le="{b}"}} {c}'
             for b, c in zip(("0.001", "0.01", "+Inf"), counts, strict=True)]
    return "# TYPE h histogram\n" + "\n".join(lines) + f'\nh_count{{model="m"}} {counts[-1]}\n'


def test_quantiles_between_two_scrapes_and_bad_scrapes():
    before, after = _latency_text([10, 10, 10]), _latency_text([10, 14, 14])
    # only the 4 new observations count: all in (0.001, 0.01], their median mid-bucket
    assert serving.quantiles_between(before, after, "h", qs=(0.5,), model="m") == \
        [pytest.approx(0.0055)]
    with pytest.raises(ValueError, match="not a later scrape"):
        serving.quantiles_between(after, before, "h", model="m")
    with pytest.raises(TypeError, match="metrics texts"):
        serving.quantiles_between(b"bytes", after, "h")


def test_idle_cpu_seconds(tmp_path):
    tick = os.sysconf("SC_CLK_TCK")
    start = serving.idle_cpu_seconds()
    assert start >= 0 and serving.idle_cpu_seconds() >= start  # counters only grow
    stat = tmp_path / "stat"
    stat.write_text("cpu  99 0 99 999 99 0 0 0 0 0\n"  # all CPUs: not read
                    "cpu0 10 0 5 80 5 0 0 0 0 0\ncpu1 10 0 5 40 3 0 0 0 0 0\n"
                    "cpu2 10 0 5 7 1 0 0 0 0 0\nintr 1 2 3\n")
    assert serving.idle_cpu_seconds({0, 1}, str(stat)) == pytest.approx((85 + 43) / tick)
    assert serving.idle_cpu_seconds([2], str(stat)) == pytest.approx(8 / tick)
    with pytest.raises(ValueError, match="found none for \\[3\\]"):
        serving.idle_cpu_seconds({1, 3}, str(stat))
    for cpus in (set(), [-1], ["0"], [True]):
        with pytest.raises(ValueError, match="cpus must be CPU numbers"):
            serving.idle_cpu_seconds(cpus, str(stat))
