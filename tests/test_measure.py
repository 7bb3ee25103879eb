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
    with pytest.raises(ValueError, match="bytes_per_weight"):
        measure.weight_bytes(open_size, 0)
