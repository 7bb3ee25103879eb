"""edgelib.transformer: positional encodings, the Transformer block, saving, TFLite.

TensorFlow is imported inside the tests (after the session's edgelib.setup()).
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tr(tf_ready):
    from edgelib import transformer

    return transformer


def _classifier(tr, vocab=40, seq=10, d_model=16, heads=2, learned=True, causal=False):
    import tf_keras as keras

    ids = keras.Input((seq,), dtype="int32")
    x = tr.PositionalEmbedding(vocab, seq, d_model, learned=learned)(ids)
    x = tr.TransformerBlock(d_model, heads, 2 * d_model, causal=causal)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(ids, keras.layers.Dense(3)(x))


def test_sinusoidal_encoding_matches_the_formula(tr):
    pe = tr.sinusoidal_encoding(7, 6)
    assert pe.shape == (7, 6) and pe.dtype == np.float32
    for pos in range(7):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert pe[pos, 2 * i] == pytest.approx(np.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1] == pytest.approx(np.cos(angle), abs=1e-6)
    odd = tr.sinusoidal_encoding(4, 5)
    np.testing.assert_allclose(odd[:, 4], np.sin(np.arange(4) / 10000 ** (4 / 5)), atol=1e-6)
    with pytest.raises(ValueError, match="depth must be a positive int"):
        tr.sinusoidal_encoding(4, 0)
    with pytest.raises(ValueError, match="length must be a positive int"):
        tr.sinusoidal_encoding(2.5, 4)


def test_positional_embedding_adds_positions(tr):
    ids = np.array([[1, 2, 3, 0], [3, 3, 3, 3]])
    fixed = tr.PositionalEmbedding(10, 6, 8, learned=False)
    out = fixed(ids).numpy()
    assert out.shape == (2, 4, 8)
    tokens = fixed.token(ids).numpy()
    np.testing.assert_allclose(out - tokens, np.broadcast_to(tr.sinusoidal_encoding(6, 8)[:4],
                                                             (2, 4, 8)), atol=1e-6)
    learned = tr.PositionalEmbedding(10, 6, 8)
    out = learned(ids).numpy()
    table = learned.position.get_weights()[0]
    np.testing.assert_allclose(out - learned.token(ids).numpy(), np.broadcast_to(table[:4],
                                                                               (2, 4, 8)),
                               atol=1e-6)
    assert len(learned.trainable_weights) == 2 and len(fixed.trainable_weights) == 1
    masked = tr.PositionalEmbedding(10, 6, 8, mask_zero=True)
    assert masked.compute_mask(ids).numpy().tolist()[0] == [True, True, True, False]


def test_positional_embedding_refuses_bad_input(tr):
    layer = tr.PositionalEmbedding(10, 4, 8)
    with pytest.raises(ValueError, match="longer than max_len=4"):
        layer(np.zeros((1, 5), dtype=np.int32))
    with pytest.raises(ValueError, match=r"shape \(batch, seq\)"):
        tr.PositionalEmbedding(10, 4, 8)(np.zeros((1, 4, 2), dtype=np.int32))
    with pytest.raises(ValueError, match="vocab_size must be a positive int"):
        tr.PositionalEmbedding(0, 4, 8)


def test_block_validates_its_arguments(tr):
    with pytest.raises(ValueError, match="divisible by num_heads=3"):
        tr.TransformerBlock(16, 3, 32)
    with pytest.raises(ValueError, match="d_ff must be a positive int"):
        tr.TransformerBlock(16, 2, 0)
    with pytest.raises(ValueError, match="dropout"):
        tr.TransformerBlock(16, 2, 32, dropout=1.5)
    block = tr.TransformerBlock(16, 2, 32)
    with pytest.raises(ValueError, match="expects d_model=16"):
        block(np.zeros((1, 3, 8), dtype=np.float32))


@pytest.mark.parametrize("pre_norm", [True, False])
def test_causal_block_ignores_the_future(tr, rng, pre_norm):
    block = tr.TransformerBlock(16, 4, 32, causal=True, pre_norm=pre_norm)
    x = rng.normal(size=(2, 6, 16)).astype(np.float32)
    changed = x.copy()
    changed[:, 4:] = rng.normal(size=(2, 2, 16))
    out, scores = block(x, return_attention_scores=True)
    np.testing.assert_array_equal(block.last_attention_scores, scores.numpy())
    out2 = block(changed).numpy()
    np.testing.assert_allclose(out.numpy()[:, :4], out2[:, :4], atol=1e-5)
    assert np.abs(out.numpy()[:, 4:] - out2[:, 4:]).max() > 1e-3  # the future itself changed
    scores = scores.numpy()
    assert scores.shape == (2, 4, 6, 6)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(np.ones((6, 6)), k=1) * scores).max() < 1e-7


def test_non_causal_block_sees_everything_and_honours_a_padding_mask(tr, rng):
    block = tr.TransformerBlock(8, 2, 16)
    x = rng.normal(size=(1, 5, 8)).astype(np.float32)
    changed = x.copy()
    changed[:, 4] = rng.normal(size=(1, 8))  # (a constant shift would vanish in LayerNorm)
    assert np.abs(block(x).numpy()[:, 0] - block(changed).numpy()[:, 0]).max() > 1e-4
    keep = np.array([[[True, True, True, False, False]]])  # (batch, 1, seq_k)
    _, scores = block(x, attention_mask=keep, return_attention_scores=True)
    assert np.abs(scores.numpy()[..., 3:]).max() < 1e-7
    np.testing.assert_allclose(scores.numpy().sum(-1), 1.0, atol=1e-5)


def test_a_bounded_mask_gives_the_same_block_and_survives_its_config(tr, rng):
    x = rng.normal(size=(2, 6, 16)).astype(np.float32)
    keras_mask = tr.TransformerBlock(16, 4, 32, causal=True)
    bounded = tr.TransformerBlock(16, 4, 32, causal=True, mask_value=-100)
    keras_mask(x), bounded(x)  # build both, then share the weights
    bounded.set_weights(keras_mask.get_weights())
    out, scores = bounded(x, return_attention_scores=True)
    np.testing.assert_allclose(out.numpy(), keras_mask(x).numpy(), atol=1e-6)
    assert np.abs(np.triu(np.ones((6, 6)), k=1) * scores.numpy()).max() < 1e-30
    clone = tr.TransformerBlock.from_config(bounded.get_config())
    assert clone.mask_value == -100.0 and clone.causal
    for bad in (-1e9, 0.0, True, "low"):
        with pytest.raises(ValueError, match="mask_value must be a number in"):
            tr.TransformerBlock(16, 4, 32, causal=True, mask_value=bad)


def test_layers_round_trip_through_config_and_files(tr, tmp_path, rng):
    import tf_keras as keras

    block = tr.TransformerBlock(16, 2, 24, dropout=0.1, causal=True, pre_norm=False)
    clone = tr.TransformerBlock.from_config(block.get_config())
    assert (clone.d_model, clone.num_heads, clone.d_ff, clone.causal, clone.pre_norm) == \
        (16, 2, 24, True, False)
    assert clone.dropout_rate == pytest.approx(0.1)
    emb = tr.PositionalEmbedding.from_config(
        tr.PositionalEmbedding(30, 8, 16, learned=False).get_config())
    assert (emb.vocab_size, emb.max_len, emb.d_model, emb.learned) == (30, 8, 16, False)

    model = _classifier(tr)
    ids = rng.integers(0, 40, size=(4, 10))
    expected = model.predict(ids, verbose=0)
    for name in ("model.keras", "model.h5"):
        model.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name)
        np.testing.assert_allclose(loaded.predict(ids, verbose=0), expected, atol=1e-6)


def test_a_transformer_converts_to_int8_and_runs_on_the_edge(tr, rng):
    from edgelib import tflite
    from edgelib.runtime import EdgeModel

    model = _classifier(tr, learned=False, causal=True)
    ids = rng.integers(0, 40, size=(64, 10))
    blob = tflite.convert(model, "int8", representative=ids)
    edge = EdgeModel(blob)
    assert edge.input_dtype == np.int32  # token ids stay integers
    assert edge.input_shape == (10,)
    out = edge.predict(ids[:16])
    reference = model.predict(ids[:16], verbose=0)
    assert np.abs(out - reference).max() < 0.1 * np.abs(reference).max() + 0.05
    assert "FULLY_CONNECTED" in edge.ops() and "SOFTMAX" in edge.ops()
    quantized = [t for t in edge.tensors() if t["dtype"] == "int8"]
    assert len(quantized) > 10  # weights and activations are int8


def test_integer_representative_inputs_are_validated(tr, rng):
    from edgelib import tflite

    model = _classifier(tr)
    with pytest.raises(tflite.ConversionError, match="non-integer"):
        tflite.convert(model, "int8", representative=rng.normal(size=(8, 10)))
    with pytest.raises(tflite.ConversionError, match=r"shape \(N, 10\)"):
        tflite.convert(model, "int8", representative=np.zeros((8, 12), dtype=np.int32))
    with pytest.raises(tflite.ConversionError, match="outside the range"):
        tflite.convert(model, "int8", representative=np.full((8, 10), 2**40))
    assert tflite._representative_array(model, np.ones((2, 10))).dtype == np.int32


def test_command_classifier_builds_logits(tr, rng):
    model = tr.command_classifier(vocab_size=50, max_len=12, num_classes=7, d_model=16,
                                  num_heads=2, d_ff=32, num_blocks=2)
    assert model.input_shape == (None, 12) and model.output_shape == (None, 7)
    assert [layer.name for layer in model.layers][1:4] == ["embedding", "block1", "block2"]
    d, f = 16, 32
    block = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
    assert model.count_params() == 50 * d + 12 * d + 2 * block + 2 * d + (d * 7 + 7)
    assert model.predict(rng.integers(0, 50, (3, 12)), verbose=0).shape == (3, 7)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        tr.command_classifier(50, 12, 0)
