import pytest

from edgelib import measure, tflite
from edgelib.runtime import EdgeModel


def test_layer_costs_match_keras_and_tflite(tiny_digits_model):
    model, _ = tiny_digits_model
    rows = measure.layer_costs(model)
    for row, layer in zip(rows, model.layers, strict=True):
        assert row["params"] == layer.count_params(), row["name"]
    by_kind = {r["name"]: r["macs"] for r in rows}
    assert by_kind["conv1"] == 26 * 26 * 3 * 3 * 1 * 8
    assert by_kind["conv2"] == 11 * 11 * 3 * 3 * 8 * 16
    assert by_kind["logits"] == 400 * 10
    edge = EdgeModel(tflite.convert(model, "float32"))
    assert sorted(measure.tflite_macs(edge).values()) == sorted(m for m in by_kind.values() if m)


def test_depthwise_and_separable_counts(tf_ready):
    import tf_keras as keras

    model = keras.Sequential([keras.layers.Input((10, 10, 4)),
                              keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
                              keras.layers.Conv2D(6, 1)])
    rows = measure.layer_costs(model)
    assert [r["params"] for r in rows] == [layer.count_params() for layer in model.layers]
    assert rows[0]["macs"] == 8 * 8 * 3 * 3 * 4 * 2
    edge = EdgeModel(tflite.convert(model, "float32"))
    assert sorted(measure.tflite_macs(edge).values()) == sorted(r["macs"] for r in rows)


def test_bad_input(tf_ready):
    import tf_keras as keras

    with pytest.raises(TypeError, match="built tf_keras model"):
        measure.layer_costs(object())
    open_size = keras.Sequential([keras.layers.Input((None, None, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="unknown output size"):
        measure.layer_costs(open_size)
    with pytest.raises(ValueError, match="precision must be one of"):
        measure.weight_bytes(open_size, 1)
    with pytest.raises(ValueError, match="precision must be one of"):
        measure.weight_bytes(open_size, "int4")


def test_weight_bytes_keep_int8_biases_in_int32_as_the_tflite_file_does(tiny_digits_model):
    model, x = tiny_digits_model
    biases = sum(int(layer.bias.shape[0]) for layer in model.layers
                 if getattr(layer, "bias", None) is not None)
    kernels = model.count_params() - biases
    assert biases == 8 + 16 + 10
    assert measure.weight_bytes(model) == 4 * model.count_params()
    assert measure.weight_bytes(model, "float16") == 2 * model.count_params()
    assert measure.weight_bytes(model, "int8") == kernels + 4 * biases
    for mode in ("float32", "float16", "int8"):
        edge = EdgeModel(tflite.convert(model, mode, representative=x[:50]))
        stored = measure.tflite_weight_bytes(edge)
        per_kernel, per_bias = measure.PRECISIONS[mode]
        assert stored == {"kernels": per_kernel * kernels, "biases": per_bias * biases}, mode
        assert sum(stored.values()) == measure.weight_bytes(model, mode), mode


def test_chain_activation_peak_is_the_largest_input_plus_output(tf_ready):
    import tf_keras as keras

    chain = keras.Sequential([keras.layers.Input((4, 4, 1)),
                              keras.layers.Conv2D(2, 3, padding="same"),   # 16 in, 32 out
                              keras.layers.Flatten(),                     # 32 in, 32 out
                              keras.layers.Dense(3)])                      # 32 in, 3 out
    assert measure.chain_activation_peak(chain, 1) == 64
    assert measure.chain_activation_peak(chain) == 4 * 64
    inputs = keras.layers.Input((3,))
    branched = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(TypeError, match="Sequential"):
        measure.chain_activation_peak(branched)
    with pytest.raises(ValueError, match="bytes_per_value"):
        measure.chain_activation_peak(chain, 0)
