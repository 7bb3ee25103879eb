import numpy as np
import pytest

from edgelib.scratch import optimizers as opt


def _run_keras(tf_optimizer, params, grad_fn, steps):
    import tensorflow as tf

    variables = [tf.Variable(p.copy()) for p in params]
    for _ in range(steps):
        grads = grad_fn([v.numpy() for v in variables])
        tf_optimizer.apply_gradients(zip([tf.constant(g) for g in grads], variables,
                                         strict=True))
    return [v.numpy() for v in variables]


def _grad_fn(params):  # gradient of sum((p - 1)^2 * [1..n]) : an uneven bowl
    return [2 * (p - 1.0) * np.arange(1, p.size + 1).reshape(p.shape) for p in params]


@pytest.mark.parametrize("ours,theirs", [
    (lambda: opt.SGD(0.05, keras_rounding=True), lambda k: k.optimizers.SGD(0.05)),
    (lambda: opt.SGD(0.05, 0.9, keras_rounding=True),
     lambda k: k.optimizers.SGD(0.05, momentum=0.9)),
    (lambda: opt.Adam(0.05, keras_rounding=True), lambda k: k.optimizers.Adam(0.05)),
    (lambda: opt.AdamW(0.05, 0.1, keras_rounding=True),
     lambda k: k.optimizers.AdamW(0.05, weight_decay=0.1)),
])
def test_optimizers_match_keras(tf_ready, rng, ours, theirs):
    import tf_keras as keras

    start = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    params = [p.copy() for p in start]
    mine = ours()
    for _ in range(12):
        mine.step(params, _grad_fn(params))
    reference = _run_keras(theirs(keras), start, _grad_fn, 12)
    for p, r in zip(params, reference, strict=True):
        np.testing.assert_allclose(p, r, rtol=1e-12, atol=1e-14)


def test_schedules_match_keras(tf_ready):
    import tf_keras as keras

    s = keras.optimizers.schedules
    cosine = s.CosineDecay(0.1, 100, alpha=0.05)
    warm = s.CosineDecay(0.0, 80, warmup_target=0.1, warmup_steps=20)
    piecewise = s.PiecewiseConstantDecay([30, 60], [0.1, 0.01, 0.001])
    for step in (0, 1, 20, 30, 31, 50, 60, 61, 99, 100, 150):
        assert opt.cosine_decay(step, 0.1, 100, 0.05) == pytest.approx(float(cosine(step)))
        assert opt.warmup_cosine(step, 0.1, 20, 80) == pytest.approx(float(warm(step)), abs=1e-8)
        assert opt.step_decay(step, 0.1, [30, 60]) == pytest.approx(float(piecewise(step)))


def test_bad_input_is_refused():
    p = [np.zeros(3)]
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        opt.SGD(-0.1)
    with pytest.raises(ValueError, match="1 parameters but 2 gradients"):
        opt.SGD(0.1).step(p, [np.zeros(3), np.zeros(3)])
    with pytest.raises(ValueError, match=r"shape \(3,\), its gradient \(4,\)"):
        opt.Adam().step(p, [np.zeros(4)])
    with pytest.raises(ValueError, match="NaN"):
        opt.Adam().step(p, [np.array([0.0, np.nan, 0.0])])
    with pytest.raises(ValueError, match="beta_1 must be in"):
        opt.Adam(beta_1=1.0)
    with pytest.raises(ValueError, match="momentum must be in"):
        opt.SGD(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        opt.AdamW(weight_decay=-1)
    with pytest.raises(ValueError, match="step must be >= 0"):
        opt.cosine_decay(-1, 0.1, 10)
    with pytest.raises(ValueError, match="boundaries must be increasing"):
        opt.step_decay(3, 0.1, [5, 2])
