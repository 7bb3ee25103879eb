"""edgelib.compression: schedules, pruning, clustering, what reaches the .tflite file."""

import numpy as np
import pytest

from edgelib import compression
from edgelib.compression import CompressionError


@pytest.fixture(scope="module")
def small(tiny_digits_model):
    """The tiny digits CNN (conv1 8 filters, conv2 16, logits) and 128 labelled digits."""
    from edgelib import datasets

    model, _ = tiny_digits_model
    ds = datasets.load("digits")
    return model, ds.train.x[:128, ..., None], ds.train.y[:128]


@pytest.fixture(scope="module")
def pruned(small):
    model, x, y = small
    return compression.prune(model, x, y, target=0.75, epochs=2, batch_size=32, frequency=1,
                             layers=["conv2", "logits"])


def test_steps_per_epoch_and_errors():
    assert compression.steps_per_epoch(3500, 64) == 55
    assert compression.steps_per_epoch(64, 64) == 1
    for bad in (0, -1, 2.5, True, None):
        with pytest.raises(CompressionError, match="examples must be an int"):
            compression.steps_per_epoch(bad, 64)


def test_schedules_are_sized_to_the_steps():
    import tensorflow_model_optimization as tfmot

    poly = compression.schedule("polynomial", 0.9, 110)
    assert (poly.begin_step, poly.end_step, poly.frequency) == (0, 65, 5)
    assert float(poly(65)[1]) == pytest.approx(0.9)
    steps = compression.update_steps(poly, 110)
    assert steps[0] == 5 and steps[-1] == 65 and len(steps) == 13
    constant = compression.schedule("constant", 0.5, 55, frequency=1)
    assert compression.update_steps(constant, 55) == list(range(1, 56))
    default = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0)  # frequency=100
    assert compression.update_steps(default, 55) == []  # the pitfall: never prunes


@pytest.mark.parametrize("args, message", [
    (("cubic", 0.5, 100), "kind must be one of"),
    (("constant", 1.0, 100), "target must be a number in"),
    (("constant", -0.1, 100), "target must be a number in"),
    (("constant", float("nan"), 100), "target must be a number in"),
    (("constant", 0.5, 0), "total_steps must be an int"),
    (("polynomial", 0.5, 6), "no pruning update would happen"),
])
def test_schedule_rejects_bad_arguments(args, message):
    with pytest.raises(CompressionError, match=message):
        compression.schedule(*args)


def test_expected_zeros_follows_the_rule():
    for n, s in ((288, 0.9), (18_432, 0.9), (16_000, 0.5), (10, 0.99), (7, 0.0)):
        assert compression.expected_zeros(n, s) == n - max(round(n * (1 - s)), 1)
    assert compression.expected_zeros(10, 0.99) == 9  # at least one weight is kept
    with pytest.raises(CompressionError, match="size must be an int"):
        compression.expected_zeros(0, 0.5)


def test_prune_reaches_the_target_and_leaves_the_original(small, pruned):
    model, _, _ = small
    kernels = {layer.name: layer.kernel.numpy() for layer in model.layers
               if hasattr(layer, "kernel")}
    for name in ("conv2", "logits"):
        zeros = int(np.sum(pruned.get_layer(name).kernel.numpy() == 0))
        assert zeros == compression.expected_zeros(kernels[name].size, 0.75)
    assert compression.sparsity(pruned)["conv1"] == 0.0
    assert max(compression.sparsity(model).values()) < 0.05  # the original is not pruned
    assert type(pruned.get_layer("conv2")).__name__ == "Conv2D"  # stripped


def test_prune_m_by_n(small):
    model, x, y = small
    structured = compression.prune(model, x, y, m_by_n=(2, 4), epochs=1, batch_size=64,
                                   layers=["conv2", "logits"])
    for name in ("conv2", "logits"):
        kernel = structured.get_layer(name).kernel.numpy()
        assert compression.m_by_n_ok(kernel, 2, 4)
        assert np.mean(kernel == 0) >= 0.5
    with pytest.raises(CompressionError, match="m_by_n must be a tuple"):
        compression.prune(model, x, y, m_by_n=(4, 2))


def test_prune_rejects_bad_data_and_layers(small):
    model, x, y = small
    with pytest.raises(CompressionError, match=r"x must have shape \(N, 28, 28, 1\)"):
        compression.prune(model, x[..., 0], y)
    with pytest.raises(CompressionError, match="one integer label per example"):
        compression.prune(model, x, y[:-1])
    with pytest.raises(CompressionError, match="layers must name some of the model's layers"):
        compression.prune(model, x, y, frequency=1, layers=["conv9"])
    with pytest.raises(CompressionError, match="expected a tf_keras model"):
        compression.copy_model("model.h5")


def test_m_by_n_ok_on_known_kernels():
    good = np.array([[1, 0, 2, 0], [0, 0, 3, 4]], dtype=float).T  # (C_in=4, C_out=2)
    assert compression.m_by_n_ok(good)
    bad = good.copy()
    bad[1, 0] = 5.0  # three non-zeros in the first output's block of 4 inputs
    assert not compression.m_by_n_ok(bad)
    with pytest.raises(CompressionError, match="not a multiple of n=4"):
        compression.m_by_n_ok(np.ones((6, 2)))
    with pytest.raises(CompressionError, match="at least 2 axes"):
        compression.m_by_n_ok(np.ones(8))


def test_prune_one_shot(small):
    model, _, _ = small
    one_shot = compression.prune_one_shot(model, 0.8)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            kernel = layer.kernel.numpy()
            pruned_kernel = one_shot.get_layer(layer.name).kernel.numpy()
            assert np.sum(pruned_kernel == 0) == compression.expected_zeros(kernel.size, 0.8)
            kept = pruned_kernel != 0
            assert np.abs(kernel[kept]).min() >= np.abs(kernel[~kept]).max()
    with pytest.raises(CompressionError, match="layers must name"):
        compression.prune_one_shot(model, 0.5, ["pool1x"])


def test_cluster_limits_distinct_values(small):
    model, x, y = small
    clustered = compression.cluster(model, x, y, clusters=8, epochs=1)
    assert all(2 <= u <= 8 for u in compression.unique_values(clustered).values())
    with pytest.raises(CompressionError, match="clusters must be at least 2"):
        compression.cluster(model, x, y, clusters=1)


def test_file_readers_find_the_zeros(small, pruned):
    from edgelib import tflite

    _, x, _ = small
    blob = tflite.convert(pruned, "int8", representative=x[:50])
    kernels = compression.weight_tensors(blob)
    assert list(kernels) == ["conv_2d_1", "conv_2d_2", "fully_connected_1"]
    assert kernels["conv_2d_2"].shape == (16, 3, 3, 8)  # output channels first
    sparsity = compression.tflite_sparsity(blob)
    assert sparsity["conv_2d_2"] >= 0.75 - 1e-3 and sparsity["fully_connected_1"] >= 0.75 - 1e-3
    assert max(compression.unique_per_channel(blob).values()) <= 256
    with pytest.raises(CompressionError, match="expected the bytes of a .tflite file"):
        compression.weight_tensors("model.tflite")
    with pytest.raises(CompressionError, match="LiteRT could not load"):
        compression.weight_tensors(b"not a flatbuffer model")


def test_convert_sparse_and_builtin_kernels(small, pruned):
    _, x, _ = small
    blob = compression.convert_sparse(pruned, "int8", representative=x[:50])
    edge = compression.builtin_edge_model(blob)
    assert "DENSIFY" in edge.ops()
    assert edge.predict(x[:3]).shape == (3, 10)
    assert compression.tflite_sparsity(blob)["conv_2d_2"] >= 0.75 - 1e-3
    with pytest.raises(CompressionError, match="mode must be 'float32' or 'int8'"):
        compression.convert_sparse(pruned, "float16")
    with pytest.raises(CompressionError, match="needs representative inputs"):
        compression.convert_sparse(pruned, "int8")


def test_preserving_qat_keeps_the_zeros(small, pruned):
    _, x, y = small
    qat = compression.preserving_qat(pruned, x, y, keep="sparsity", epochs=1)
    sparsity = compression.sparsity(qat)
    assert sparsity["conv2"] == compression.sparsity(pruned)["conv2"]
    with pytest.raises(CompressionError, match="keep must be one of sparsity, clusters"):
        compression.preserving_qat(pruned, x, y, keep="zeros")


def test_bench_variants_prune_all_but_the_first_layer(small):
    from edgelib import datasets

    model, _, _ = small
    ds = datasets.load("digits")
    x, y = ds.train.x[:640, ..., None], ds.train.y[:640]
    blob = compression.pruned_int8(model, x, y, x[:50])
    sparsity = compression.tflite_sparsity(blob)
    assert sparsity["conv_2d_1"] < 0.5  # the first layer stays dense
    assert min(sparsity["conv_2d_2"], sparsity["fully_connected_1"]) >= 0.9 - 1e-3
    clustered = compression.weight_tensors(compression.clustered_int8(model, x, y, x[:50]))
    assert all(np.unique(w[c]).size <= 16 for w in clustered.values() for c in range(len(w)))
