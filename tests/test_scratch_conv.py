import numpy as np
import pytest

from edgelib.scratch import conv


@pytest.mark.parametrize("stride,padding", [(1, "valid"), (2, "valid"), (1, "same"), (2, "same")])
def test_conv2d_matches_tensorflow(tf_ready, rng, stride, padding):
    import tensorflow as tf

    x = rng.normal(size=(2, 9, 8, 3))
    w = rng.normal(size=(3, 2, 3, 4))
    b = rng.normal(size=4)
    ours = conv.conv2d(x, w, b, stride, padding)
    theirs = tf.nn.conv2d(x, w, stride, padding.upper()).numpy() + b
    np.testing.assert_allclose(ours, theirs, atol=1e-10)
    np.testing.assert_allclose(conv.conv2d_loops(x, w, b, stride, padding), ours, atol=1e-10)
    assert ours.shape[1] == conv.output_size(9, 3, stride, padding)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling_matches_tensorflow(tf_ready, rng, padding):
    import tensorflow as tf

    x = rng.normal(size=(2, 7, 7, 3))
    np.testing.assert_allclose(conv.pool2d(x, 2, 2, "max", padding),
                               tf.nn.max_pool2d(x, 2, 2, padding.upper()).numpy())
    np.testing.assert_allclose(conv.pool2d(x, 2, 2, "avg"),
                               tf.nn.avg_pool2d(x, 2, 2, "VALID").numpy(), atol=1e-12)


def test_output_size_formula():
    assert conv.output_size(28, 3) == 26
    assert conv.output_size(28, 5, 2) == 12
    assert conv.output_size(28, 3, 2, "same") == 14


def test_bad_input_is_refused(rng):
    x = rng.normal(size=(1, 5, 5, 2))
    with pytest.raises(ValueError, match="channel mismatch: x has 2 channels, w expects 3"):
        conv.conv2d(x, rng.normal(size=(3, 3, 3, 4)))
    with pytest.raises(ValueError, match=r"shape \(N, H, W, C\)"):
        conv.conv2d(x[0], rng.normal(size=(3, 3, 2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        conv.conv2d(np.full((1, 5, 5, 2), np.nan), rng.normal(size=(3, 3, 2, 4)))
    with pytest.raises(ValueError, match="larger than the input"):
        conv.conv2d(x, rng.normal(size=(7, 7, 2, 1)))
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        conv.conv2d(x, rng.normal(size=(3, 3, 2, 4)), b=np.zeros(3))
    with pytest.raises(ValueError, match="padding must be one of"):
        conv.conv2d(x, rng.normal(size=(3, 3, 2, 4)), padding="full")
    with pytest.raises(ValueError, match="mode must be"):
        conv.pool2d(x, mode="min")
    with pytest.raises(ValueError, match="stride must be a positive int"):
        conv.output_size(5, 3, 0)


def test_conv2d_backward_matches_gradient_tape(tf_ready, rng):
    import tensorflow as tf

    x = rng.normal(size=(2, 7, 6, 3))
    w = rng.normal(size=(3, 2, 3, 4))
    b = rng.normal(size=4)
    dy = rng.normal(size=(2, 5, 5, 4))
    xt, wt, bt = (tf.constant(v) for v in (x, w, b))
    with tf.GradientTape() as tape:
        tape.watch([xt, wt, bt])
        y = tf.nn.conv2d(xt, wt, 1, "VALID") + bt
        loss = tf.reduce_sum(y * dy)  # so that dL/dy = dy
    ref = [g.numpy() for g in tape.gradient(loss, [xt, wt, bt])]
    ours = conv.conv2d_backward(x, w, dy)
    for got, want in zip(ours, ref, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_conv2d_backward_by_finite_differences(rng):
    x, w = rng.normal(size=(1, 5, 5, 2)), rng.normal(size=(3, 3, 2, 1))
    dy = rng.normal(size=(1, 3, 3, 1))
    dx, dw, _ = conv.conv2d_backward(x, w, dy)
    eps = 1e-6
    for index in [(0, 0, 0, 0), (0, 2, 3, 1), (0, 4, 4, 0)]:
        bumped = x.copy()
        bumped[index] += eps
        numeric = ((conv.conv2d(bumped, w) - conv.conv2d(x, w)) * dy).sum() / eps
        assert abs(numeric - dx[index]) < 1e-5
    bumped = w.copy()
    bumped[1, 2, 1, 0] += eps
    numeric = ((conv.conv2d(x, bumped) - conv.conv2d(x, w)) * dy).sum() / eps
    assert abs(numeric - dw[1, 2, 1, 0]) < 1e-5


def test_conv2d_backward_refuses_bad_shapes(rng):
    x, w = rng.normal(size=(1, 5, 5, 2)), rng.normal(size=(3, 3, 2, 4))
    with pytest.raises(ValueError, match="dy must have the output's shape"):
        conv.conv2d_backward(x, w, np.zeros((1, 5, 5, 4)))
    with pytest.raises(ValueError, match="w must have shape"):
        conv.conv2d_backward(x, rng.normal(size=(3, 3, 3, 4)), np.zeros((1, 3, 3, 4)))
