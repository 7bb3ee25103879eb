import numpy as np
import pytest

from edgelib import training


def test_keras_tuner_builds_tf_keras_models(tf_ready):
    import tf_keras as keras

    kt = training.import_keras_tuner()
    assert training.import_keras_tuner() is kt

    def build(hp):
        model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(hp.Int("u", 1, 2))])
        model.compile("sgd", "mse")
        return model

    hypermodel = kt.HyperModel()
    hypermodel.build = build
    model = hypermodel.build(kt.HyperParameters())
    assert isinstance(model, keras.Model)
    import sys

    assert sys.modules.get("keras") is not keras  # the swap was undone


def test_make_dataset_batches_and_is_repeatable(tf_ready):
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    data = training.make_dataset(x, y, batch_size=4, seed=3)
    first = [b[1].numpy().tolist() for b in data]
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == list(range(10))
    again = [b[1].numpy().tolist() for b in training.make_dataset(x, y, batch_size=4, seed=3)]
    assert again == first
    plain = [b[1].numpy().tolist() for b in training.make_dataset(x, y, 4, shuffle=False)]
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_make_dataset_refuses_bad_input(tf_ready):
    with pytest.raises(ValueError, match="x has 3 examples but y has 2"):
        training.make_dataset(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        training.make_dataset(np.zeros(3), np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="NaN"):
        training.make_dataset(np.array([np.nan]), np.zeros(1))


def test_count_event_files(tmp_path):
    assert training.count_event_files(tmp_path / "none") == 0
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "events.out.tfevents.1.host").write_bytes(b"")
    assert training.count_event_files(tmp_path) == 1


def test_make_dataset_caches_the_map_and_reshuffles_each_epoch(tf_ready):
    import tensorflow as tf

    calls = []

    def mark(x, y):
        def count(v):
            calls.append(1)
            return v
        return tf.py_function(count, [x], tf.float32), y

    x, y = np.arange(20, dtype=np.float32)[:, None], np.arange(20)
    data = training.make_dataset(x, y, batch_size=5, seed=1, map_fn=mark, prefetch=False)
    epochs = [[b[1].numpy().tolist() for b in data] for _ in range(3)]
    assert len(calls) == 20  # decoded once, then read from the cache
    assert len({tuple(e[0]) for e in epochs}) == 3  # the shuffle is after the cache
    assert all(sorted(sum(e, [])) == list(range(20)) for e in epochs)


def test_run_tuner_refuses_a_search_that_would_be_all_random(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        training.run_tuner("grid", None, None, 0, tmp_path)
    with pytest.raises(ValueError, match="num_initial_points must be in"):
        training.run_tuner("bayesian", None, None, 0, tmp_path, max_trials=8,
                           num_initial_points=9)


def test_tiny_cnn_hypermodel_learning_rate_range():
    kt = training.import_keras_tuner()
    hp = kt.HyperParameters()
    training.tiny_cnn_hypermodel(hp, max_learning_rate=0.3)
    rate = next(p for p in hp.space if p.name == "learning_rate")
    assert (rate.min_value, rate.max_value, rate.sampling) == (1e-4, 0.3, "log")
    with pytest.raises(ValueError, match="max_learning_rate must be in"):
        training.tiny_cnn_hypermodel(kt.HyperParameters(), max_learning_rate=1e-5)


def test_restart_trains_as_a_fresh_model(tf_ready):
    import tf_keras as keras

    x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(16, 2)
    y = (x[:, :1] - 2 * x[:, 1:]).astype(np.float32)

    def compiled(seed):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.layers.Input((2,)), keras.layers.Dense(3, "tanh"),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(0.05), "mse")
        return model

    fresh = compiled(1)
    start = fresh.get_weights()
    fresh_loss = fresh.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    reused = compiled(2)
    reused.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)  # Adam's state non-zero
    training.restart(reused, start, 0.05)
    assert int(reused.optimizer.iterations.numpy()) == 0
    again = reused.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    assert again == fresh_loss
    for a, b in zip(reused.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    training.restart(reused, start, 0.01)  # a new rate
    assert float(reused.optimizer.learning_rate.numpy()) == np.float32(0.01)


def test_restart_refuses_bad_input(tf_ready):
    import tf_keras as keras

    model = keras.Sequential([keras.layers.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="needs a compiled model"):
        training.restart(model, model.get_weights(), 0.1)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="expected 2 weight arrays .* got 1"):
        training.restart(model, model.get_weights()[:1], 0.1)
