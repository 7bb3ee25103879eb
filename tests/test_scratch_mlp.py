import numpy as np
import pytest

from edgelib.scratch import mlp


@pytest.mark.parametrize("name", list(mlp.ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name):
    f, f_prime = mlp.ACTIVATIONS[name]
    z = np.linspace(-4, 4, 41) + 0.013  # avoid ReLU's kink at 0
    numeric = (f(z + 1e-6) - f(z - 1e-6)) / 2e-6
    np.testing.assert_allclose(f_prime(z), numeric, atol=1e-8)


def test_softmax_is_stable_and_sums_to_one():
    z = np.array([[1000.0, -1000.0], [1001.0, -999.0]])
    p = mlp.softmax(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=0), 1.0)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_backprop_matches_finite_differences(rng, activation):
    net = mlp.MLP([5, 4, 3], activation=activation, seed=1)
    x, labels = rng.normal(size=(5, 7)), rng.integers(0, 3, 7)
    _, dW, db = net.loss_and_gradients(x, labels)
    for grads, params in ((dW, net.W), (db, net.b)):
        for g, p in zip(grads, params, strict=True):
            numeric = mlp.numerical_gradient(lambda: net.loss_and_gradients(x, labels)[0], p)
            assert mlp.relative_error(g, numeric) < 1e-6


def test_mse_gradient(rng):
    p, t = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    loss, grad = mlp.mse(p, t)
    numeric = mlp.numerical_gradient(lambda: mlp.mse(p, t)[0], p)
    assert mlp.relative_error(grad, numeric) < 1e-7
    assert loss == pytest.approx(np.sum((p - t) ** 2) / 5)


def test_training_reduces_the_loss(rng):
    net = mlp.MLP([2, 8, 2], seed=0)
    x = rng.normal(size=(2, 64))
    labels = (x[0] * x[1] > 0).astype(int)
    first = net.sgd_step(x, labels, 0.5)
    for _ in range(200):
        last = net.sgd_step(x, labels, 0.5)
    assert last < 0.5 * first


def test_bad_input_is_refused(rng):
    net = mlp.MLP([4, 3, 2])
    with pytest.raises(ValueError, match=r"x must have shape \(4, N\)"):
        net.forward(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        net.forward(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match=r"labels must be in 0..1"):
        net.loss_and_gradients(np.zeros((4, 2)), np.array([0, 2]))
    with pytest.raises(ValueError, match="2 logit columns but 3 labels"):
        mlp.cross_entropy(np.zeros((2, 2)), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="activation must be one of"):
        mlp.MLP([2, 2], activation="swish")
    with pytest.raises(ValueError, match="positive layer widths"):
        mlp.MLP([3])
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        net.sgd_step(np.zeros((4, 1)), np.array([0]), 0)
    with pytest.raises(ValueError, match="differ in shape"):
        mlp.mse(np.zeros(3), np.zeros(4))
