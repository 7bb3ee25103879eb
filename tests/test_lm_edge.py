"""Tests of edgelib.lm_edge: export, the edge-side language model, the model
with prefill / decode / verify signatures over a KV cache, the wide timing
model and the table of real models (chapter 17)."""

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
    return {"float32": lm_edge.export(tiny, TINY, "float32"),
            "cached": lm_edge.export_cached(tiny, TINY, {"decode": 1, "verify": 4,
                                                         "prefill": 16})}


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
    probs = lm_edge.softmax(edge.logits(ids[:16])[0])
    assert probs.shape == (16, 96) and np.allclose(probs.sum(1), 1)


def test_edge_lm_errors(blobs):
    edge = lm_edge.EdgeLM(blobs["float32"])
    with pytest.raises(lm_edge.LMEdgeError, match="16 token ids"):
        edge.logits(np.zeros(15, dtype=np.int32))
    with pytest.raises(lm.LMError, match="outside the vocabulary"):
        edge.logits(np.full(16, 200))
    with pytest.raises(ValueError):  # the cached model has four inputs: not a window model
        lm_edge.EdgeLM(blobs["cached"])


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


# --- the KV cache --------------------------------------------------------------------------


def test_every_signature_equals_full_recomputation(tiny, blobs, ids):
    full = tiny.predict(ids[None, :16], verbose=0)[0]
    cached = lm_edge.CachedLM(blobs["cached"])
    assert cached.chunk_sizes == {"decode": 1, "verify": 4, "prefill": 16}
    assert (cached.layers, cached.context, cached.d_model, cached.vocab_size) == (2, 16, 16, 96)
    assert cached.cache_bytes == lm_edge.kv_cache_bytes(2, 16, 16, 4) == 2 * 2 * 16 * 16 * 4
    np.testing.assert_allclose(cached.prefill(ids[:16]), full, atol=1e-4)
    cached.reset()
    steps = np.stack([cached.step(int(t)) for t in ids[:16]])
    np.testing.assert_allclose(steps, full, atol=1e-4)
    cached.reset()
    parts = [cached.chunk(ids[:3]), cached.chunk(ids[3:7]), cached.chunk(ids[7:16])]
    np.testing.assert_allclose(np.concatenate(parts), full, atol=1e-4)
    assert cached.signature_for(3) == "verify" and cached.signature_for(5) == "prefill"
    cached.position = 7                       # roll back: the later slots are rewritten
    np.testing.assert_allclose(cached.chunk(ids[7:11]), full[7:11], atol=1e-4)


def test_export_cached_refuses_other_blocks_and_bad_chunks(tiny):
    block = tiny.get_layer("block1")
    block.activation = "gelu"
    try:
        with pytest.raises(lm_edge.LMEdgeError, match="ReLU"):
            lm_edge.export_cached(tiny, TINY)
    finally:
        block.activation = "relu"
    for chunks in ({"decode": 0}, {"decode": 17}, {"two words": 1}, {"decode": 1.5}):
        with pytest.raises(lm_edge.LMEdgeError, match="chunks"):
            lm_edge.export_cached(tiny, TINY, chunks)


def test_cached_generation_equals_recomputation(blobs):
    tok = lm.CharTokenizer.ascii()
    cached, edge = lm_edge.CachedLM(blobs["cached"]), lm_edge.EdgeLM(blobs["float32"])
    assert cached.generate(tok, "The ", 12) == edge.generate(tok, "The ", 12)
    kwargs = dict(strategy="top_k", top_k=5, seed=3)
    assert cached.generate(tok, "The ", 12, **kwargs) == edge.generate(tok, "The ", 12, **kwargs)
    assert cached.generate(tok, "a", 0) == ""


def test_cached_lm_errors(blobs):
    tok = lm.CharTokenizer.ascii()
    cached = lm_edge.CachedLM(blobs["cached"])
    with pytest.raises(lm_edge.LMEdgeError, match="exceeds"):
        cached.generate(tok, "The ", 13)
    with pytest.raises(lm.LMError, match="outside"):
        cached.step(96)
    with pytest.raises(lm_edge.LMEdgeError, match="token must be"):
        cached.step(1.0)
    cached.prefill(np.arange(16))
    with pytest.raises(lm_edge.LMEdgeError, match="do not fit"):
        cached.step(1)
    with pytest.raises(lm_edge.LMEdgeError, match="do not fit"):
        cached.prefill(np.arange(17))
    cached.reset()
    with pytest.raises(lm_edge.LMEdgeError, match="does not hold"):
        cached.chunk(np.arange(5), "verify")
    with pytest.raises(lm_edge.LMEdgeError, match="1-D"):
        cached.chunk(np.zeros((2, 2), dtype=np.int32))
    with pytest.raises(lm_edge.LMEdgeError, match="export_cached"):
        lm_edge.CachedLM(blobs["float32"])


def test_wide_decoder_runs_rows_of_any_count():
    from ai_edge_litert.interpreter import Interpreter

    blob = lm_edge.wide_decoder(32, 2, seed=1)
    interpreter = Interpreter(model_content=blob)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, (3, 32))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, np.ones((3, 32), np.float32))
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert out.shape == (3, 32) and (out >= 0).all()
    with pytest.raises(lm_edge.LMEdgeError, match="layers"):
        lm_edge.wide_decoder(32, 0)


def test_kv_cache_bytes_formula_and_errors():
    assert lm_edge.kv_cache_bytes(32, 4096, 4096, 2) == 2 * 2**30  # Llama-2 7B, fp16: 2 GiB
    assert lm_edge.kv_cache_bytes(1, 1, 1, 0.5) == 1
    for args in ((0, 1, 1, 4), (1, 1.5, 1, 4), (1, 1, 1, 0), (1, 1, 1, "4")):
        with pytest.raises(lm_edge.LMEdgeError):
            lm_edge.kv_cache_bytes(*args)


def test_generation_path_imports_no_tensorflow(blobs, tmp_path):
    (tmp_path / "lm.tflite").write_bytes(blobs["float32"])
    (tmp_path / "cached.tflite").write_bytes(blobs["cached"])
    assert_runs_without_tensorflow(
        "from edgelib import lm, lm_edge\n"
        "tok = lm.CharTokenizer.ascii()\n"
        f"edge = lm_edge.EdgeLM({str(tmp_path / 'lm.tflite')!r})\n"
        "text = edge.generate(tok, 'The ', 10, strategy='top_k', top_k=5, seed=1)\n"
        f"cached = lm_edge.CachedLM({str(tmp_path / 'cached.tflite')!r})\n"
        "assert cached.generate(tok, 'The ', 10, strategy='top_k', top_k=5, seed=1) == text\n"
    )


# --- real models ------------------------------------------------------------------------


def test_public_models_have_what_the_kv_formula_needs():
    for name, m in lm_edge.PUBLIC_MODELS.items():
        assert m["params"] > 1e9 and m["source"], name
        for key in ("layers", "kv_heads", "head_dim", "context"):
            assert isinstance(m[key], int) and m[key] >= 1, (name, key)
    llama = lm_edge.PUBLIC_MODELS["Llama-2 7B"]   # no GQA: 32 kv heads of 128 = d_model 4096
    assert lm_edge.kv_cache_bytes(llama["layers"], llama["context"],
                                  llama["kv_heads"] * llama["head_dim"], 2) == 2 * 2**30


def test_stored_tensor_reads_the_flatbuffer(blobs):
    from edgelib import tflite

    constants = tflite.stored_constants(blobs["float32"])
    name, info = max(constants.items(), key=lambda item: item[1]["bytes"])
    tensor = tflite.stored_tensor(blobs["float32"], name)
    assert tensor["type"] == info["type"] == "FLOAT32" and tensor["shape"] == info["shape"]
    assert tensor["data"].size == info["bytes"] == 4 * int(np.prod(info["shape"]))
    assert tensor["block_size"] == 0 and tensor["block_scales"] is None
    with pytest.raises(tflite.ConversionError, match="no constant tensor"):
        tflite.stored_tensor(blobs["float32"], "no such tensor")
    with pytest.raises(tflite.ConversionError, match="bytes of a .tflite"):
        tflite.stored_tensor(b"", name)


def test_matrix_inputs_are_what_each_matrix_reads(tiny):
    windows = np.random.default_rng(1).integers(0, len(TINY["vocab"]), (3, TINY["context"]))
    inputs = lm_edge.matrix_inputs(tiny, windows, batch_size=2)
    kernels = {v.name: v.numpy() for v in tiny.weights if "kernel" in v.name}
    assert set(inputs) == set(kernels)
    for name, x in inputs.items():
        in_dim = kernels[name].size // kernels[name].shape[-1] \
            if "attention_output" in name else kernels[name].shape[0]
        assert x.shape == (3 * TINY["context"], in_dim), name
    logits_kernel, logits_bias = tiny.get_layer("logits").weights
    rebuilt = inputs[logits_kernel.name] @ logits_kernel.numpy() + logits_bias.numpy()
    expected = tiny.predict(windows, verbose=0).reshape(-1, logits_kernel.shape[-1])
    np.testing.assert_allclose(rebuilt, expected, atol=1e-4)
    assert all("call" not in vars(layer) for layer in tiny.submodules
               if hasattr(layer, "kernel"))                     # the wrappers are gone
    with pytest.raises(lm_edge.LMEdgeError, match="count, context"):
        lm_edge.matrix_inputs(tiny, windows[0])
    with pytest.raises(lm_edge.LMEdgeError, match="batch_size"):
        lm_edge.matrix_inputs(tiny, windows, batch_size=0)
