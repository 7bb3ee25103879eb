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
