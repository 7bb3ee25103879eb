import numpy as np
import pytest

from edgelib import datasets
from edgelib.datasets import DatasetError
from edgelib.distillation import DistillationError


@pytest.fixture(scope="module")
def D(tf_ready):
    from edgelib import distillation

    return distillation


def _tiny_model(classes=3, softmax=False):
    import tf_keras as keras

    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        classes, activation="softmax" if softmax else None)])


def test_soft_targets_is_softmax_over_temperature(D):
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    p = D.soft_targets(logits, 2.0)
    e = np.exp(logits / 2.0)
    np.testing.assert_allclose(p, e / e.sum(1, keepdims=True), rtol=1e-12)
    assert np.allclose(p.sum(1), 1.0)
    # a higher temperature flattens: the top probability falls
    assert D.soft_targets(logits, 8.0)[0, 0] < p[0, 0] < D.soft_targets(logits, 1.0)[0, 0]


def test_distillation_loss_equals_t_squared_kl_by_hand(D):
    rng = np.random.default_rng(0)
    t, s = rng.normal(size=(5, 4)) * 3, rng.normal(size=(5, 4))
    for temp in (1.0, 4.0):
        p, q = D.soft_targets(t, temp), D.soft_targets(s, temp)
        by_hand = temp**2 * np.mean(np.sum(p * np.log(p / q), axis=1))
        assert abs(float(D.distillation_loss(t, s, temp)) - by_hand) < 1e-5
    assert abs(float(D.distillation_loss(t, t, 3.0))) < 1e-6


def test_distiller_teacher_inside_equals_precomputed_logits(D):
    import tf_keras as keras

    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    teacher = _tiny_model()
    weights = _tiny_model().get_weights()
    results = []
    for packed in (False, True):
        keras.utils.set_random_seed(0)
        student = _tiny_model()
        student.set_weights(weights)
        d = D.Distiller(student, None if packed else teacher, temperature=2.0, alpha=0.3)
        d.compile(keras.optimizers.SGD(0.1))
        target = (y, teacher.predict(x, verbose=0)) if packed else y
        d.fit(x, target, batch_size=16, epochs=1, shuffle=False, verbose=0)
        results.append(student.get_weights()[0])
    np.testing.assert_allclose(results[0], results[1], atol=1e-5)
    assert not np.allclose(results[0], weights[0])  # it trained
    assert set(d.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "accuracy"}


def test_train_student_alone_and_distilled(D):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    for logits in (None, rng.normal(size=(40, 3))):
        s = D.train_student(_tiny_model(), x, y, logits, epochs=1, batch_size=20)
        assert s.predict(x, verbose=0).shape == (40, 3)


def test_few_shot_indices(D):
    y = np.repeat(np.arange(4), 10)
    idx = D.few_shot_indices(y, 3, np.random.default_rng(0))
    assert len(idx) == 12 and len(set(idx)) == 12
    assert np.all(np.bincount(y[idx]) == 3)
    with pytest.raises(DistillationError, match="fewer than shots"):
        D.few_shot_indices(y, 11, np.random.default_rng(0))


def test_fit_steps_rejects_bad_budgets(D):
    model = _tiny_model()
    x, y = np.zeros((4, 4), np.float32), np.zeros(4, int)
    for kwargs, message in (({"steps": 0}, "steps must be a positive int"),
                            ({"batch_size": 2.5}, "batch_size must be a positive int")):
        budget = {"steps": 1, "batch_size": 2, **kwargs}
        with pytest.raises(DistillationError, match=message):
            D.fit_steps(model, x, y, seed=0, **budget)
    with pytest.raises(DistillationError, match="same number"):
        D.fit_steps(model, x, y[:3], 1, 2, 0)


def test_extractor_head_and_attached_model(D):
    from edgelib import models

    base = models.ds_cnn(channels=8, blocks=1)
    ext = D.feature_extractor(base)
    assert ext.output.shape[1:] == (8,) and not ext.trainable
    x = np.random.default_rng(3).normal(size=(12, 49, 40, 1)).astype(np.float32)
    y = np.repeat(np.arange(4), 3)
    feats = ext.predict(x, verbose=0)
    head = D.train_head(feats, y, 4, steps=3)
    adapted = D.attach_head(ext, head)
    np.testing.assert_allclose(adapted.predict(x, verbose=0), head.predict(feats, verbose=0),
                               atol=1e-5)
    scratch = D.train_from_scratch(models.ds_cnn(channels=8, blocks=1, classes=4), x, y, steps=2)
    assert scratch.predict(x, verbose=0).shape == (12, 4)


def test_bad_inputs_say_what_was_expected(D):
    with pytest.raises(DistillationError, match="temperature must be a positive number"):
        D.soft_targets([[1.0, 2.0]], 0)
    with pytest.raises(DistillationError, match="2-D array"):
        D.soft_targets([1.0, 2.0])
    with pytest.raises(DistillationError, match="finite"):
        D.soft_targets([[np.nan, 1.0]])
    with pytest.raises(DistillationError, match="one shape"):
        D.distillation_loss(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(DistillationError, match="alpha must be"):
        D.Distiller(_tiny_model(), None, 2.0, alpha=1.5)
    with pytest.raises(DistillationError, match="one length"):
        D.train_student(_tiny_model(), np.zeros((4, 4)), np.zeros(3, int))
    with pytest.raises(DistillationError, match="integer labels"):
        D.train_student(_tiny_model(), np.zeros((4, 4)), np.zeros(4))
    with pytest.raises(DistillationError, match="rows but x has"):
        D.train_student(_tiny_model(), np.zeros((4, 4)), np.zeros(4, int), np.zeros((3, 3)))
    with pytest.raises(DistillationError, match="positive int"):
        D.few_shot_indices(np.zeros(4, int), 0, np.random.default_rng(0))
    with pytest.raises(DistillationError, match="labels must be in"):
        D.train_head(np.zeros((4, 2)), np.array([0, 1, 2, 5]), 4)
    with pytest.raises(DistillationError, match="no layer"):
        D.feature_extractor(_tiny_model(), "nope")
    with pytest.raises(DistillationError, match="the head expects"):
        from edgelib import models

        D.attach_head(D.feature_extractor(models.ds_cnn(channels=8, blocks=1)),
                      D.train_head(np.zeros((4, 5)), np.arange(4), 4, steps=1))


def test_new_words_dataset_split_by_speaker():
    ds = datasets.load("speech_commands_new_words", train_copies=1, test_copies=1)
    assert ds.classes == ("light", "music", "open", "close")
    assert np.all(np.bincount(ds.train.y) == 56) and np.all(np.bincount(ds.test.y) == 32)
    assert ds.train.x.shape == (224, 16000) and np.abs(ds.test.x).max() <= 1.0
    voices = ds.extra["voices"]
    timbres = {s: {v.split("+")[1] for v in vs} for s, vs in voices.items()}
    assert not set(voices["train"]) & set(voices["test"])
    assert not timbres["train"] & timbres["test"]
    # and the same speakers in the same split as in the main set (test timbres never trained)
    from edgelib.datasets import speech_commands

    store = speech_commands._read_store(speech_commands.DATA_FILE)
    split_of = dict(zip(store["speakers"], store["speaker_split"], strict=True))
    assert all(split_of[v] == s for s, vs in voices.items() for v in vs)
    words = {str(w) for w in store["words"]}
    assert not words & set(ds.classes)
    assert "1.51" in ds.extra["espeak_ng"]
    with pytest.raises(DatasetError, match="train_copies must be"):
        datasets.load("speech_commands_new_words", train_copies=0)

