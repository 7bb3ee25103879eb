"""Split computing (edgelib.split): cutting a model, encoding the activation."""

import numpy as np
import pytest

from conftest import assert_runs_without_tensorflow
from edgelib import split


@pytest.fixture(scope="module")
def small_ds_cnn(tf_ready):
    """A functional (not Sequential) chain model with batch norm and dropout."""
    import tf_keras as keras

    from edgelib import models

    keras.utils.set_random_seed(0)
    return models.ds_cnn(input_shape=(20, 10, 1), channels=8, blocks=1, classes=4)


def test_head_plus_tail_equals_the_model_at_every_cut(tiny_digits_model):
    model, x = tiny_digits_model
    full = model(x[:16]).numpy()
    cuts = split.cut_points(model)
    assert [c["k"] for c in cuts] == list(range(1, len(model.layers)))
    for cut in cuts:
        head, tail = split.split_model(model, cut["k"])
        activation = head(x[:16]).numpy()
        assert activation.shape[1:] == cut["shape"], cut
        np.testing.assert_allclose(tail(activation).numpy(), full, rtol=1e-5, atol=1e-5,
                                   err_msg=f"cut k={cut['k']} after {cut['after']}")


def test_cut_points_report_shapes_bytes_and_parameters(tiny_digits_model):
    model, _ = tiny_digits_model
    cuts = split.cut_points(model)
    first = cuts[0]
    assert first["after"] == "conv1" and first["shape"] == (26, 26, 8)
    assert first["values"] == 26 * 26 * 8
    assert first["bytes"] == {"float32": 4 * 5408, "float16": 2 * 5408, "int8": 5408 + 5}
    for cut in cuts:
        assert cut["head_params"] + cut["tail_params"] == model.count_params()


def test_a_functional_chain_model_splits_too(small_ds_cnn, rng):
    model = small_ds_cnn
    x = rng.random((4, 20, 10, 1)).astype(np.float32)
    full = model(x).numpy()
    cuts = split.cut_points(model)
    assert len(cuts) == len(model.layers) - 2  # minus the InputLayer, minus the last cut
    for cut in cuts:
        head, tail = split.split_model(model, cut["k"])
        np.testing.assert_allclose(tail(head(x)).numpy(), full, rtol=1e-5, atol=1e-6)


def test_int8_activation_keeps_the_prediction(tiny_digits_model):
    model, x = tiny_digits_model
    head, tail = split.split_model(model, 2)
    activation = head(x[:64]).numpy()
    payload, meta = split.encode_activation(activation, "int8")
    approx = tail(split.decode_activation(payload, meta)).numpy()
    agree = np.mean(approx.argmax(1) == model(x[:64]).numpy().argmax(1))
    assert agree >= 0.95, f"int8 activation changes {1 - agree:.0%} of the predictions"


def test_models_that_are_not_chains_are_refused(tf_ready):
    import tf_keras as keras

    inputs = keras.Input((4,))
    a = keras.layers.Dense(4, name="a")(inputs)
    b = keras.layers.Dense(4, name="b")(a)
    residual = keras.Model(inputs, keras.layers.Add(name="skip")([a, b]))
    with pytest.raises(split.SplitError, match="not a chain at layer 'skip'"):
        split.cut_points(residual)
    with pytest.raises(split.SplitError, match="tf_keras model"):
        split.cut_points("model.keras")


@pytest.mark.parametrize("k", [0, 6, -1, 2.0, "2", True])
def test_k_out_of_range_is_refused(tiny_digits_model, k):
    model, _ = tiny_digits_model
    with pytest.raises(split.SplitError, match="k"):
        split.split_model(model, k)


def test_the_range_message_names_the_valid_cuts(tiny_digits_model):
    model, _ = tiny_digits_model
    with pytest.raises(split.SplitError, match=r"from k = 1 \(after 'conv1'\) to k = 5"):
        split.split_model(model, 9)


@pytest.mark.parametrize("shape", [(1, 26, 26, 8), (3, 400), (7,)])
def test_encoded_bytes_are_exact(rng, shape):
    a = rng.normal(size=shape).astype(np.float32)
    n = a.size
    expected = {"float32": 4 * n, "float16": 2 * n, "int8": n + split.INT8_HEADER_BYTES}
    for encoding, size in expected.items():
        payload, meta = split.encode_activation(a, encoding)
        assert len(payload) == size == split.payload_bytes(n, encoding), encoding
        assert meta["encoding"] == encoding and meta["shape"] == list(shape)
    assert split.INT8_HEADER_BYTES == 5


def test_round_trip_errors(rng):
    a = (rng.normal(size=(2, 13, 13, 8)) * 3 + 1).astype(np.float32)
    exact = split.decode_activation(*split.encode_activation(a, "float32"))
    np.testing.assert_array_equal(exact, a)
    half = split.decode_activation(*split.encode_activation(a, "float16"))
    np.testing.assert_allclose(half, a, rtol=2.0**-11, atol=0)
    payload, meta = split.encode_activation(a, "int8")
    back = split.decode_activation(payload, meta)
    scale = meta["scale"]
    assert back.dtype == np.float32 and back.shape == a.shape
    worst = np.abs(back - a).max()
    assert worst <= scale / 2 + 1e-6 * np.abs(a).max(), (worst, scale)
    assert scale == pytest.approx((a.max() - a.min()) / 255, rel=1e-6)


def test_int8_formula_by_hand():
    """lo = min(a, 0), hi = max(a, 0), scale = (hi - lo) / 255,
    zero_point = round(-128 - lo / scale), q = round(a / scale) + zero_point."""
    a = np.array([-1.0, 0.0, 0.6, 2.0], np.float32)
    payload, meta = split.encode_activation(a, "int8")
    scale, zero_point = 3.0 / 255, round(-128 + 1.0 / (3.0 / 255))  # -43
    assert meta["scale"] == pytest.approx(scale, rel=1e-7) and meta["zero_point"] == zero_point
    q = np.frombuffer(payload[split.INT8_HEADER_BYTES:], np.int8)
    np.testing.assert_array_equal(q, [-128, -43, -43 + 51, 127])
    assert split.decode_activation(payload, meta)[1] == 0.0  # zero is exact


def test_relu_and_constant_activations(rng):
    relu = np.maximum(rng.normal(size=100), 0).astype(np.float32)
    payload, meta = split.encode_activation(relu, "int8")
    assert meta["zero_point"] == -128  # all values >= 0: the whole int8 range is used
    zeros = np.zeros((3, 4), np.float32)
    np.testing.assert_array_equal(split.decode_activation(*split.encode_activation(zeros, "int8")),
                                  zeros)


def test_bad_activations_and_payloads_are_refused():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="unknown encoding 'int4'"):
        split.encode_activation(a, "int4")
    with pytest.raises(ValueError, match="NaN or infinite"):
        split.encode_activation(np.array([1.0, np.nan]), "int8")
    with pytest.raises(ValueError, match="NaN or infinite"):
        split.encode_activation(np.array([np.inf]), "float32")
    with pytest.raises(ValueError, match="beyond float16"):
        split.encode_activation(np.array([1e6]), "float16")
    with pytest.raises(ValueError, match="numeric"):
        split.encode_activation(np.array(["a"]), "float32")
    with pytest.raises(ValueError, match="empty"):
        split.encode_activation(np.zeros((0, 3)), "int8")
    payload, meta = split.encode_activation(a, "int8")
    with pytest.raises(ValueError, match="takes 11 bytes, the payload has 10"):
        split.decode_activation(payload[:-1], meta)
    with pytest.raises(ValueError, match="unknown encoding"):
        split.decode_activation(payload, {**meta, "encoding": "bf16"})
    with pytest.raises(ValueError, match="'encoding' and 'shape'"):
        split.decode_activation(payload, {"encoding": "int8"})


def test_encoding_never_imports_tensorflow():
    assert_runs_without_tensorflow(
        "import numpy as np\n"
        "from edgelib import split\n"
        "p, m = split.encode_activation(np.ones((2, 3)), 'int8')\n"
        "split.decode_activation(p, m)\n"
    )


def test_roundtrip_encodes_each_example_on_its_own(rng):
    batch = np.stack([rng.random((4, 3)), 100 * rng.random((4, 3))]).astype(np.float32)
    back = split.roundtrip(batch, "int8")
    assert back.shape == batch.shape and back.dtype == np.float32
    for example, decoded in zip(batch, back, strict=True):
        scale, _ = split.int8_parameters(example)
        assert np.abs(decoded - example).max() <= scale / 2 + 1e-6  # its own scale
    np.testing.assert_array_equal(split.roundtrip(batch, "float32"), batch)
    with pytest.raises(ValueError, match="non-empty batch"):
        split.roundtrip(np.zeros((0, 3)))


def test_transfer_and_end_to_end_latency():
    assert split.transfer_ms(1000, 1.0) == pytest.approx(8.0)  # 8,000 bits at 1 Mbit/s
    assert split.transfer_ms(1000, 100.0, rtt_ms=10.0) == pytest.approx(10.08)
    parts = split.end_to_end_ms(2.0, 1250, 0.5, mbit_s=10.0, rtt_ms=5.0)
    assert parts == pytest.approx({"device": 2.0, "network": 6.0, "server": 0.5, "total": 8.5})
    alone = split.end_to_end_ms(3.0, None, 0.0, mbit_s=1.0, rtt_ms=5.0)
    assert alone["network"] == 0.0 and alone["total"] == 3.0
    with pytest.raises(ValueError, match="mbit_s > 0"):
        split.transfer_ms(10, 0.0)


def test_invoke_only_runs_the_interpreter(tiny_digits_model):
    from edgelib import tflite
    from edgelib.runtime import EdgeModel

    model, x = tiny_digits_model
    edge = EdgeModel(tflite.convert(model, "int8", representative=x[:50]))
    run = split.invoke_only(edge, x[0])
    run()
    out = edge._read(edge.outputs[0])
    np.testing.assert_array_equal(out, edge.invoke(x[0]))
