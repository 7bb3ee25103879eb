"""Tests of edgelib.lm_edge: export, the edge-side language model, the KV-cache
step model, the cascade and the scale table (chapter 17)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_runs_without_tensorflow
from edgelib import lm, lm_edge  # NumPy only at import

TINY = lm.model_config(d_model=16, num_layers=2, context=16, batch_size=8, steps=20,
                       eval_every=10, warmup_steps=5)


@pytest.fixture(scope="module")
def tiny(tf_ready):
    """An untrained tiny model with non-trivial random weights."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = lm.build_model(TINY)
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def blobs(tiny):
    from edgelib import tflite

    return {"float32": lm_edge.export(tiny, TINY, "float32"),
            "step": tflite.convert(lm_edge.kv_step_model(tiny, TINY))}


@pytest.fixture(scope="module")
def ids():
    return lm.CharTokenizer.ascii().encode(lm.load_corpus().heldout[:400])


# --- export and the edge-side model ------------------------------------------------------


def test_edge_lm_matches_keras(tiny, blobs, ids):
    edge = lm_edge.EdgeLM(blobs["float32"])
    assert (edge.context, edge.vocab_size) == (16, 96)
    window = ids[:16]
    np.testing.assert_allclose(edge.logits(window)[0], tiny.predict(window[None], verbose=0)[0],
                               atol=1e-4)
    ours, theirs = edge.perplexity(ids), lm.perplexity(tiny, ids)
    assert ours["tokens"] == theirs["tokens"]
    assert abs(ours["perplexity"] / theirs["perplexity"] - 1) < 1e-4
    tok = lm.CharTokenizer.ascii()
    assert edge.generate(tok, "The ", 20) == lm.generate(tiny, tok, "The ", 20)
    probs, targets = lm_edge.next_char_probs(edge, ids)
    assert probs.shape == (targets.size, 96) and np.allclose(probs.sum(1), 1)


def test_edge_lm_errors(blobs):
    edge = lm_edge.EdgeLM(blobs["float32"])
    with pytest.raises(lm_edge.LMEdgeError, match="16 token ids"):
        edge.logits(np.zeros(15, dtype=np.int32))
    with pytest.raises(lm.LMError, match="outside the vocabulary"):
        edge.logits(np.full(16, 200))
    with pytest.raises(ValueError):  # the step model has four inputs: not a window model
        lm_edge.EdgeLM(blobs["step"])


def test_export_errors(tiny):
    with pytest.raises(lm_edge.LMEdgeError, match="unknown mode"):
        lm_edge.export(tiny, TINY, "int4")
    with pytest.raises(lm_edge.LMEdgeError, match="calibration"):
        lm_edge.export(tiny, TINY, "int8")
    with pytest.raises(lm_edge.LMEdgeError, match=r"\(N, 16\)"):
        lm_edge.export(tiny, TINY, "int8", calibration=np.zeros((4, 8), dtype=np.int32))
    with pytest.raises(lm_edge.LMEdgeError, match="count"):
        lm_edge.calibration_windows(np.arange(50), 16, count=0)
    assert lm_edge.calibration_windows(np.arange(50) % 96, 16, count=3).shape == (3, 16)


def test_window_model_equals_the_first_positions(tiny, ids):
    short = lm_edge.window_model(tiny, TINY, 5)
    full = tiny.predict(ids[None, :16], verbose=0)[0, :5]
    np.testing.assert_allclose(short.predict(ids[None, :5], verbose=0)[0], full, atol=1e-5)
    for bad in (0, 17, 2.5, True):
        with pytest.raises(lm_edge.LMEdgeError, match="length"):
            lm_edge.window_model(tiny, TINY, bad)


# --- the KV cache --------------------------------------------------------------------------


def test_kv_step_model_equals_full_recomputation(tiny, blobs, ids):
    step = lm_edge.kv_step_model(tiny, TINY)
    full = tiny.predict(ids[None, :16], verbose=0)[0]
    keys = np.zeros((1, 2, 16, 16), np.float32)
    values = np.zeros_like(keys)
    for position, token in enumerate(ids[:6]):
        logits, new_k, new_v = (t.numpy() for t in step(
            [np.array([token]), np.array([position]), keys, values]))
        keys[0, :, position], values[0, :, position] = new_k[0], new_v[0]
        np.testing.assert_allclose(logits[0], full[position], atol=1e-5)
    cached = lm_edge.CachedLM(blobs["step"])
    np.testing.assert_allclose(cached.prefill(ids[:16]), full, atol=1e-4)
    assert (cached.layers, cached.context, cached.d_model, cached.vocab_size) == (2, 16, 16, 96)
    assert cached.cache_bytes == lm_edge.kv_cache_bytes(2, 16, 16, 4) == 2 * 2 * 16 * 16 * 4


def test_kv_step_model_refuses_other_blocks(tiny):
    block = tiny.get_layer("block1")
    block.activation = "gelu"
    try:
        with pytest.raises(lm_edge.LMEdgeError, match="ReLU"):
            lm_edge.kv_step_model(tiny, TINY)
    finally:
        block.activation = "relu"


def test_cached_generation_equals_recomputation(blobs):
    tok = lm.CharTokenizer.ascii()
    cached, edge = lm_edge.CachedLM(blobs["step"]), lm_edge.EdgeLM(blobs["float32"])
    assert cached.generate(tok, "The ", 12) == edge.generate(tok, "The ", 12)
    kwargs = dict(strategy="top_k", top_k=5, seed=3)
    assert cached.generate(tok, "The ", 12, **kwargs) == edge.generate(tok, "The ", 12, **kwargs)
    assert cached.generate(tok, "a", 0) == ""


def test_cached_lm_errors(blobs):
    tok = lm.CharTokenizer.ascii()
    cached = lm_edge.CachedLM(blobs["step"])
    with pytest.raises(lm_edge.LMEdgeError, match="exceeds"):
        cached.generate(tok, "The ", 13)
    with pytest.raises(lm_edge.LMEdgeError, match="token must be"):
        cached.step(96)
    cached.prefill(np.arange(16))
    with pytest.raises(lm_edge.LMEdgeError, match="cache is full"):
        cached.step(1)
    with pytest.raises(lm_edge.LMEdgeError, match="1 to 16"):
        cached.prefill(np.arange(17))
    with pytest.raises(ValueError):  # a window model is not a step model
        lm_edge.CachedLM(blobs["float32"])


def test_kv_cache_bytes_formula_and_errors():
    assert lm_edge.kv_cache_bytes(32, 4096, 4096, 2) == 2 * 2**30  # Llama-2 7B, fp16: 2 GiB
    assert lm_edge.kv_cache_bytes(1, 1, 1, 0.5) == 1
    for args in ((0, 1, 1, 4), (1, 1.5, 1, 4), (1, 1, 1, 0), (1, 1, 1, "4")):
        with pytest.raises(lm_edge.LMEdgeError):
            lm_edge.kv_cache_bytes(*args)


def test_generation_path_imports_no_tensorflow(blobs, tmp_path):
    (tmp_path / "lm.tflite").write_bytes(blobs["float32"])
    (tmp_path / "step.tflite").write_bytes(blobs["step"])
    assert_runs_without_tensorflow(
        "from edgelib import lm, lm_edge\n"
        "tok = lm.CharTokenizer.ascii()\n"
        f"edge = lm_edge.EdgeLM({str(tmp_path / 'lm.tflite')!r})\n"
        "text = edge.generate(tok, 'The ', 10, strategy='top_k', top_k=5, seed=1)\n"
        f"cached = lm_edge.CachedLM({str(tmp_path / 'step.tflite')!r})\n"
        "assert cached.generate(tok, 'The ', 10, strategy='top_k', top_k=5, seed=1) == text\n"
    )


# --- the cascade ---------------------------------------------------------------------------


def test_cascade_extremes_and_counts():
    device = np.array([[0.9, 0.1], [0.4, 0.6], [0.55, 0.45]])
    cloud = np.array([[0.2, 0.8], [0.1, 0.9], [0.9, 0.1]])
    targets = np.array([0, 1, 0])
    out = lm_edge.cascade(device, cloud, targets, [0.0, 0.58, 0.7, 1.01])
    np.testing.assert_allclose(out["deferred"], [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(out["accuracy"], [1, 1, 1, 2 / 3])
    expected_ce = -np.mean(np.log([0.9, 0.9, 0.9]))  # t = 0.7: rows 1, 2 to the cloud
    assert abs(out["cross_entropy"][2] - expected_ce) < 1e-12
    np.testing.assert_allclose(lm_edge.cascade_latency(out["deferred"], 1.0, 2.0, 50.0),
                               [1, 1 + 52 / 3, 1 + 104 / 3, 53])


def test_cascade_errors():
    p = np.full((3, 4), 0.25)
    with pytest.raises(lm_edge.LMEdgeError, match="both be"):
        lm_edge.cascade(p, p[:2], [0, 1, 2], [0.5])
    with pytest.raises(lm_edge.LMEdgeError, match="targets"):
        lm_edge.cascade(p, p, [0, 1], [0.5])
    with pytest.raises(lm.LMError, match="outside"):
        lm_edge.cascade(p, p, [0, 1, 9], [0.5])
    with pytest.raises(lm_edge.LMEdgeError, match="finite"):
        lm_edge.cascade(p, p, [0, 1, 2], [np.nan])
    with pytest.raises(lm_edge.LMEdgeError, match="rtt_ms"):
        lm_edge.cascade_latency([0.5], 1.0, 1.0, -1)
    with pytest.raises(lm_edge.LMEdgeError, match=r"\[0, 1\]"):
        lm_edge.cascade_latency([1.5], 1.0, 1.0, 1.0)


# --- the scale table ------------------------------------------------------------------------


def test_scale_table():
    assert lm_edge.weight_bytes(7e9, 4) == 3.5e9 and lm_edge.weight_bytes(100, 32) == 400
    rows = lm_edge.scale_table({"7B": 7e9, "tiny": 116_576})
    big, small = rows
    assert (big["fp16 GB"], big["int8 GB"], big["int4 GB"]) == (14.0, 7.0, 3.5)
    assert big["fits 4 GB"] == ["int4"] and big["fits 8 GB"] == ["int8", "int4"]
    assert small["fits 4 GB"] == ["fp16", "int8", "int4"]
    text = lm_edge.format_scale_table(rows)
    assert "7.0 B" in text and "116,576" in text and len(text.splitlines()) == 3
    assert all(params > 1e9 for params, _ in lm_edge.PUBLIC_MODELS.values())


def test_scale_table_errors():
    with pytest.raises(lm_edge.LMEdgeError, match="non-empty"):
        lm_edge.scale_table({})
    with pytest.raises(lm_edge.LMEdgeError, match="unknown formats"):
        lm_edge.scale_table({"x": 1e9}, formats=("int3",))
    with pytest.raises(lm_edge.LMEdgeError, match="bits"):
        lm_edge.weight_bytes(1e9, 0)
    with pytest.raises(lm_edge.LMEdgeError, match="params"):
        lm_edge.weight_bytes(-1, 8)
    with pytest.raises(lm_edge.LMEdgeError, match="no rows"):
        lm_edge.format_scale_table([])
