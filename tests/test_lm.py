"""Tests of edgelib.lm: corpus, tokenizer, windows, sampling math, perplexity,
saving and loading, training, and the int8 edge path of chapter 17."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from edgelib import lm  # NumPy only at import; TensorFlow comes after the session's setup()

TINY = lm.model_config(d_model=16, num_layers=1, context=16, batch_size=8, steps=20,
                       eval_every=10, warmup_steps=5)


@pytest.fixture(scope="module")
def corpus() -> lm.Corpus:
    return lm.load_corpus()


@pytest.fixture(scope="module")
def tiny_model(tf_ready):
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    return lm.build_model(TINY)


# --- corpus --------------------------------------------------------------------------


def test_corpus_checksum_and_split(corpus):
    assert hashlib.sha256(lm.CORPUS_FILE.read_bytes()).hexdigest() == lm.CORPUS_SHA256
    assert len(corpus.train) > 300_000 and len(corpus.heldout) > 30_000
    share = len(corpus.heldout) / (len(corpus.train) + len(corpus.heldout))
    assert abs(share - lm.HELDOUT_FRACTION) < 0.01
    assert corpus.train.endswith("\n") and not corpus.heldout.startswith("\n")
    # the held-out text does not occur in training (deduplicated long paragraphs)
    long_paragraphs = [p for p in corpus.heldout.split("\n\n") if len(p.strip()) >= 200]
    assert long_paragraphs and not any(p in corpus.train for p in long_paragraphs[:50])
    # every character is in the vocabulary
    assert set(corpus.train + corpus.heldout) <= set(lm.ASCII_VOCAB)
    assert corpus.stats["topics"] == 79 and corpus.stats["non_ascii_replaced"] == 3
    assert "held-out" in corpus.summary()


def test_corpus_is_deterministic_and_damage_is_detected(corpus, tmp_path, monkeypatch):
    assert lm.load_corpus().heldout == corpus.heldout
    damaged = tmp_path / lm.CORPUS_FILE.name
    damaged.write_bytes(lm.CORPUS_FILE.read_bytes()[:-10])
    monkeypatch.setattr(lm, "CORPUS_FILE", damaged)
    with pytest.raises(lm.LMError, match="damaged"):
        lm.read_topics()
    monkeypatch.setattr(lm, "CORPUS_FILE", tmp_path / "missing.json.xz")
    with pytest.raises(FileNotFoundError, match="freeze.py"):
        lm.read_topics()
    with pytest.raises(lm.LMError, match="frozen"):
        lm.read_topics("internet")


def test_normalize_and_split():
    text, bad = lm.normalize_text("\u201cquoted\u201d \u2014 tab\there \u00e9")
    assert text == '"quoted" -- tab    here ?' and bad == 1
    with pytest.raises(lm.LMError):
        lm.normalize_text(b"bytes")
    train, heldout = lm.split_text("a" * 50 + "\n\n" + "b" * 20 + "\n\n" + "c" * 30, 0.3)
    assert train.endswith("\n") and heldout == "c" * 30
    with pytest.raises(lm.LMError, match="heldout_fraction"):
        lm.split_text("abc\n\ndef", 0.7)
    with pytest.raises(lm.LMError, match="paragraph boundary"):
        lm.split_text("no boundary at all", 0.2)


# --- tokenizer and windows -------------------------------------------------------------


def test_tokenizer_round_trip_and_errors():
    tok = lm.CharTokenizer.ascii()
    assert tok.vocab_size == 96
    text = "def f(x):\n    return x ** 2  # ~{}|"
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and ids.shape == (len(text),)
    assert tok.decode(ids) == text
    assert tok.decode([]) == ""
    with pytest.raises(lm.LMError, match=r"not in the 96-character vocabulary.*position 3"):
        tok.encode("caf\u00e9")
    with pytest.raises(lm.LMError, match=r"token id 96 is outside the vocabulary.*\[0, 95\]"):
        tok.decode([1, 96])
    with pytest.raises(lm.LMError, match="outside"):
        tok.decode(np.array([-1]))
    with pytest.raises(lm.LMError, match="integers"):
        tok.decode(np.array([1.0, 2.0]))
    with pytest.raises(lm.LMError, match="1-D"):
        tok.decode(np.zeros((2, 2), dtype=int))
    with pytest.raises(lm.LMError, match="repeat"):
        lm.CharTokenizer("abca")
    with pytest.raises(lm.LMError, match="str"):
        tok.encode(123)


def test_make_windows_shapes_and_shift():
    ids = np.arange(100, dtype=np.int32)
    x, y = lm.make_windows(ids, 10)
    assert x.shape == y.shape == (9, 10) and x.dtype == np.int32
    assert np.array_equal(y[:, :-1], x[:, 1:]) and np.array_equal(y[:, -1], x[:, -1] + 1)
    assert x[1, 0] == 10  # non-overlapping by default
    x2, y2 = lm.make_windows(ids, 10, count=50, seed=3)
    assert x2.shape == (50, 10) and np.array_equal(y2, x2 + 1)
    assert np.array_equal(x2, lm.make_windows(ids, 10, count=50, seed=3)[0])
    assert lm.make_windows(ids, 10, stride=1)[0].shape == (90, 10)
    with pytest.raises(lm.LMError, match="at least context"):
        lm.make_windows(ids[:10], 10)
    with pytest.raises(lm.LMError, match="1-D integer"):
        lm.make_windows(ids.astype(float), 10)
    with pytest.raises(lm.LMError, match="context"):
        lm.make_windows(ids, 0)


# --- sampling math ----------------------------------------------------------------------


def test_next_token_probs_math():
    z = np.array([2.0, 1.0, 0.5, -1.0, 3.0])
    for t in (0.5, 1.0, 2.0):
        expected = np.exp(z / t) / np.exp(z / t).sum()
        np.testing.assert_allclose(lm.next_token_probs(z, "temperature", t), expected,
                                   rtol=1e-12)
    greedy = lm.next_token_probs(z, "greedy")
    assert greedy.tolist() == [0, 0, 0, 0, 1]
    p = lm.next_token_probs(z, "top_k", temperature=1.0, top_k=2)
    expected = np.zeros(5)
    expected[[4, 0]] = np.exp([3.0, 2.0]) / np.exp([3.0, 2.0]).sum()
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    np.testing.assert_allclose(lm.next_token_probs(z, "top_k", top_k=5),
                               lm.next_token_probs(z, "temperature"), rtol=1e-12)
    # a low temperature approaches greedy, a high one approaches uniform
    assert lm.next_token_probs(z, "temperature", 0.01)[4] > 0.999
    np.testing.assert_allclose(lm.next_token_probs(z, "temperature", 1e6), 0.2, atol=1e-5)
    # ties at the k-th value: the lower id wins
    assert lm.next_token_probs(np.array([1.0, 1.0, 1.0]), "top_k", top_k=1).tolist() == [1, 0, 0]


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "beam"}, "unknown strategy"),
    ({"temperature": 0.0}, "temperature must be"),
    ({"temperature": -1.0}, "temperature must be"),
    ({"temperature": True}, "temperature must be"),
    ({"strategy": "top_k", "top_k": 0}, "top_k must be"),
    ({"strategy": "top_k", "top_k": 6}, "top_k must be"),
    ({"strategy": "top_k"}, "top_k must be"),
    ({"top_k": 3}, "only used with"),
])
def test_next_token_probs_bad_arguments(kwargs, message):
    with pytest.raises(lm.LMError, match=message):
        lm.next_token_probs(np.zeros(5), **kwargs)


def test_next_token_probs_bad_logits():
    with pytest.raises(lm.LMError, match="1-D"):
        lm.next_token_probs(np.zeros((2, 5)))
    with pytest.raises(lm.LMError, match="NaN"):
        lm.next_token_probs(np.array([0.0, np.nan, 1.0]))


def test_window_and_cross_entropy():
    x, position = lm.window([5, 6, 7], 8)
    assert x.tolist() == [[5, 6, 7, 0, 0, 0, 0, 0]] and position == 2
    with pytest.raises(lm.LMError, match="more than the context window of 8"):
        lm.window(np.arange(9), 8)
    with pytest.raises(lm.LMError, match="non-empty"):
        lm.window([], 8)
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    assert math.isclose(lm.cross_entropy(logits, [0, 1]), -(math.log(0.5) + math.log(0.8)) / 2)
    with pytest.raises(lm.LMError, match="disagree"):
        lm.cross_entropy(logits, [0, 1, 2])
    with pytest.raises(lm.LMError, match="outside"):
        lm.cross_entropy(logits, [0, 3])


# --- the model ----------------------------------------------------------------------------


def test_config_validation():
    assert TINY["num_heads"] == 1 and TINY["d_ff"] == 64
    with pytest.raises(lm.LMError, match="unknown config keys"):
        lm.model_config(64, 2, layers=3)
    with pytest.raises(lm.LMError, match="divisible"):
        lm.model_config(64, 2, num_heads=3)
    with pytest.raises(lm.LMError, match="positive int"):
        lm.model_config(64, 0)
    with pytest.raises(lm.LMError, match="steps"):
        lm.train(dict(TINY, steps=25))
    with pytest.raises(lm.LMError, match="eval_every"):
        lm.train(dict(TINY, eval_every=0))


def test_model_is_causal_and_counts_parameters(tiny_model):
    x = np.random.default_rng(0).integers(0, 96, size=(2, 16)).astype(np.int32)
    changed = x.copy()
    changed[:, 10:] = (changed[:, 10:] + 1) % 96
    a, b = tiny_model.predict(x, verbose=0), tiny_model.predict(changed, verbose=0)
    assert a.shape == (2, 16, 96)
    np.testing.assert_allclose(a[:, :10], b[:, :10], atol=1e-5)  # the past does not see ahead
    assert np.abs(a[:, 10:] - b[:, 10:]).max() > 1e-3
    V, C, d, f = 96, 16, 16, 64
    block = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
    assert lm.count_params(tiny_model) == V * d + C * d + block + 2 * d + d * V + V


def test_perplexity_of_constant_logits_is_the_vocabulary_size(tiny_model, corpus):
    import tf_keras as keras

    flat = keras.models.clone_model(tiny_model)
    weights = [np.zeros_like(w) if i >= len(tiny_model.weights) - 2 else w
               for i, w in enumerate(tiny_model.get_weights())]
    flat.set_weights(weights)  # the output layer is zero: every logit is 0
    tok = lm.CharTokenizer.ascii()
    result = lm.perplexity(flat, tok.encode(corpus.heldout[:2000]))
    assert math.isclose(result["perplexity"], 96, rel_tol=1e-5)
    assert math.isclose(result["bits_per_char"], math.log2(96), rel_tol=1e-5)
    assert result["tokens"] == (2000 - 1) // 16 * 16
    with pytest.raises(lm.LMError, match="exactly 16"):
        lm.perplexity(flat, tok.encode(corpus.heldout[:2000]), context=8)
    with pytest.raises(lm.LMError, match="outside"):
        lm.perplexity(flat, np.full(100, 200))


def test_generate_is_reproducible_and_checks_its_input(tiny_model):
    tok = lm.CharTokenizer.ascii()
    a = lm.generate(tiny_model, tok, "The ", 20, strategy="top_k", top_k=5, seed=1)
    b = lm.generate(tiny_model, tok, "The ", 20, strategy="top_k", top_k=5, seed=1)
    assert a == b and len(a) == 20
    greedy = lm.generate(tiny_model, tok, "x" * 16, 5)  # a full window, then it slides
    assert len(greedy) == 5
    with pytest.raises(lm.LMError, match="more than the context window of 16"):
        lm.generate(tiny_model, tok, "x" * 17, 5)
    with pytest.raises(lm.LMError, match="vocabulary"):
        lm.generate(tiny_model, tok, "caf\u00e9", 5)
    with pytest.raises(lm.LMError, match="at least one character"):
        lm.generate(tiny_model, tok, "", 5)
    with pytest.raises(lm.LMError, match="temperature"):
        lm.generate(tiny_model, tok, "a", 5, strategy="temperature", temperature=0)
    with pytest.raises(lm.LMError, match="give `context`"):
        lm.generate(lambda x: x, tok, "a", 5)
    with pytest.raises(lm.LMError, match="returned shape"):
        lm.generate(lambda x: np.zeros((1, 16, 5)), tok, "a", 5, context=16)


# --- saving and loading --------------------------------------------------------------------


def test_save_load_round_trip(tiny_model, tmp_path):
    path = lm.save(tiny_model, TINY, tmp_path / "lm")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "weights.npz"]
    loaded = lm.load(path)
    assert loaded.source == "loaded" and loaded.config == TINY
    x = np.arange(32, dtype=np.int32).reshape(2, 16)
    np.testing.assert_array_equal(loaded.model.predict(x, verbose=0),
                                  tiny_model.predict(x, verbose=0))
    assert lm.load(path, batch_size=1).model.inputs[0].shape[0] == 1
    again = lm.load_or_train(path, TINY)  # same config: loaded, not trained
    assert again.source == "loaded"


def test_load_rejects_damaged_or_mismatched_copies(tiny_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        lm.load(tmp_path / "nothing")
    path = lm.save(tiny_model, TINY, tmp_path / "lm")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(dict(config, d_model=32, num_heads=2)))
    with pytest.raises(lm.LMError, match="do not fit the config"):
        lm.load(path)
    (path / "config.json").write_text(json.dumps(dict(config, format=99)))
    with pytest.raises(lm.LMError, match="format"):
        lm.load(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(lm.LMError, match="not valid JSON"):
        lm.load(path)
    (path / "config.json").write_text("[1, 2]")
    with pytest.raises(lm.LMError, match="JSON object"):
        lm.load(path)
    (path / "config.json").write_text(json.dumps(config))
    (path / "weights.npz").write_bytes(b"not a zip file")
    with pytest.raises(lm.LMError, match="cannot be read"):
        lm.load(path)


def test_training_is_deterministic_and_load_or_train_trains_when_missing(tmp_path, corpus):
    model, history = lm.train(TINY, corpus)
    assert history["tokens"] == [10 * 8 * 16, 20 * 8 * 16]
    assert len(history["heldout_loss"]) == 2 and history["heldout_loss"][-1] < math.log(96)
    tiny = lm.load_or_train(tmp_path / "lm", TINY, corpus)
    assert tiny.source == "trained" and (tmp_path / "lm" / "weights.npz").is_file()
    for a, b in zip(model.get_weights(), tiny.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # same seed, same weights
    assert lm.load_or_train(tmp_path / "lm", TINY, corpus).source == "loaded"


def test_the_shipped_model_is_chapter_07s_recipe(tf_ready, corpus):
    shipped = lm.pretrained()
    assert shipped.source == "shipped" and shipped.config == lm.CHAPTER_CONFIG
    assert shipped.config["seed"] == 0 and lm.count_params(shipped.model) == 116_576
    assert shipped.model.output_shape == (None, 64, 96)
    ids = shipped.tokenizer.encode(corpus.heldout[:2000])
    assert lm.perplexity(shipped.model, ids)["perplexity"] < 6.0  # trained (untrained: ~96)


def test_the_shipped_model_loader_says_how_to_rebuild(tiny_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrain_tiny_lm.py"):
        lm.pretrained(tmp_path / "missing")
    path = lm.save(tiny_model, TINY, tmp_path / "other")
    with pytest.raises(lm.LMError, match="CHAPTER_CONFIG"):
        lm.pretrained(path)


# --- the edge path of chapter 17 -------------------------------------------------------------


def _largest_scores_scale(runtime, heads: int, context: int) -> float:
    """The largest int8 scale among the (1, heads, context, context) score tensors."""
    return max(float(t["scales"].max()) for t in runtime.tensors()
               if t["shape"] == (1, heads, context, context) and t["scales"].size)


def test_int8_conversion_runs_on_the_edge_runtime(tiny_model, corpus):
    from edgelib import tflite
    from edgelib.runtime import EdgeModel

    tok = lm.CharTokenizer.ascii()
    edge = lm.edge_model(tiny_model, TINY)
    x, _ = lm.window(tok.encode("The for"), 16)
    np.testing.assert_allclose(edge.predict(x, verbose=0), tiny_model.predict(x, verbose=0),
                               atol=1e-5)  # the bounded mask changes nothing in float
    calibration, _ = lm.make_windows(tok.encode(corpus.train), 16, count=50, seed=1)
    runtime = EdgeModel(tflite.convert(edge, "int8", representative=calibration))
    assert runtime.input_shape == (16,) and runtime.input_dtype == np.int32
    logits = np.asarray(runtime.invoke(x[0]))
    assert logits.shape == (1, 16, 96) and np.isfinite(logits).all()
    text = lm.generate(lambda w: np.asarray(runtime.invoke(w[0])), tok, "The ", 10,
                       strategy="top_k", top_k=3, seed=0, context=16)
    assert len(text) == 10 and set(text) <= set(lm.ASCII_VOCAB)
    # Keras' own causal mask (-1e9) makes one int8 step of the masked scores millions wide
    plain = lm.build_model(TINY, batch_size=1)
    plain.set_weights(tiny_model.get_weights())
    plain_runtime = EdgeModel(tflite.convert(plain, "int8", representative=calibration))
    assert _largest_scores_scale(plain_runtime, 1, 16) > 1e5
    assert _largest_scores_scale(runtime, 1, 16) < 1.0


def test_edge_model_checks_its_input(tiny_model):
    with pytest.raises(ValueError, match="mask_value must be a number in"):
        lm.build_model(TINY, batch_size=1, mask_value=-1e9)
    with pytest.raises(lm.LMError, match="do not fit"):
        lm.edge_model(tiny_model, lm.model_config(32, 1, context=16))
