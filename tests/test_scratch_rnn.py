import numpy as np
import pytest

from edgelib.scratch import rnn


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_matches_keras(tf_ready, rng, reset_after):
    import tf_keras as keras

    x = rng.normal(size=(3, 7, 4)).astype(np.float32)
    layer = keras.layers.GRU(5, return_sequences=True, reset_after=reset_after)
    reference = layer(x).numpy()
    ours = rnn.gru(x, *[w.numpy() for w in layer.weights], reset_after=reset_after)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_simple_rnn_matches_keras(tf_ready, rng):
    import tf_keras as keras

    x = rng.normal(size=(2, 6, 3)).astype(np.float32)
    layer = keras.layers.SimpleRNN(4, return_sequences=True)
    reference = layer(x).numpy()
    np.testing.assert_allclose(rnn.simple_rnn(x, *[w.numpy() for w in layer.weights]),
                               reference, atol=1e-5)


def test_bad_input_is_refused(rng):
    k, u, b = rng.normal(size=(4, 15)), rng.normal(size=(5, 15)), np.zeros((2, 15))
    with pytest.raises(ValueError, match=r"shape \(N, T, D\)"):
        rnn.gru(np.zeros((7, 4)), k, u, b)
    with pytest.raises(ValueError, match="3 features per step, the weights expect 4"):
        rnn.gru(np.zeros((1, 7, 3)), k, u, b)
    with pytest.raises(ValueError, match="NaN"):
        rnn.gru(np.full((1, 2, 4), np.nan), k, u, b)
    with pytest.raises(ValueError, match=r"bias must have shape \(15,\)"):
        rnn.gru(np.zeros((1, 2, 4)), k, u, b, reset_after=False)
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 5\)"):
        rnn.gru(np.zeros((1, 2, 4)), k, u, b, h0=np.zeros(5))
    with pytest.raises(ValueError, match="recurrent_kernel"):
        rnn.simple_rnn(np.zeros((1, 2, 4)), np.zeros((4, 3)), np.zeros((2, 2)), np.zeros(3))
