"""edgelib.scratch.attention: NumPy attention against the formulas and tf_keras."""

import numpy as np
import pytest

from edgelib.scratch import attention as att


def test_softmax_is_stable_and_normalized():
    p = att.softmax(np.array([[1000.0, 1001.0, 1002.0], [0.0, 0.0, -np.inf]]))
    np.testing.assert_allclose(p.sum(-1), 1.0)
    np.testing.assert_allclose(p[0], np.exp([-2, -1, 0]) / np.exp([-2, -1, 0]).sum())
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        att.softmax(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="at least one finite"):
        att.softmax(np.array([-np.inf, -np.inf]))


def test_scaled_dot_product_attention_by_the_formula(rng):
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 6))
    out, w = att.scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 6) and w.shape == (2, 3, 5)
    for n in range(2):
        for t in range(3):
            s = np.array([q[n, t] @ k[n, j] / 2.0 for j in range(5)])
            e = np.exp(s) / np.exp(s).sum()
            np.testing.assert_allclose(w[n, t], e, rtol=1e-12)
            np.testing.assert_allclose(out[n, t], e @ v[n], rtol=1e-12)


def test_masks(rng):
    np.testing.assert_array_equal(att.causal_mask(3), [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    pm = att.padding_mask(np.array([[5, 7, 0, 0], [1, 2, 3, 4]]))
    assert pm.shape == (2, 1, 4) and pm[0, 0].tolist() == [True, True, False, False]
    x = rng.normal(size=(2, 4, 3))
    _, w = att.scaled_dot_product_attention(x, x, x, mask=pm)
    assert np.abs(w[0, :, 2:]).max() < 1e-12
    np.testing.assert_allclose(w.sum(-1), 1.0)
    _, w = att.scaled_dot_product_attention(x, x, x, mask=att.causal_mask(4))
    assert np.abs(np.triu(w, k=1)).max() < 1e-12
    with pytest.raises(ValueError, match="does not broadcast"):
        att.scaled_dot_product_attention(x, x, x, mask=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="integers"):
        att.padding_mask(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="positive int"):
        att.causal_mask(0)


def test_attention_refuses_bad_input(rng):
    q = rng.normal(size=(3, 4))
    with pytest.raises(ValueError, match="same last dimension d_k"):
        att.scaled_dot_product_attention(q, rng.normal(size=(3, 5)), rng.normal(size=(3, 5)))
    with pytest.raises(ValueError, match="same number of positions"):
        att.scaled_dot_product_attention(q, q, rng.normal(size=(2, 4)))
    bad = q.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="k contains NaN"):
        att.scaled_dot_product_attention(q, bad, q)


@pytest.fixture(scope="module")
def keras_mha(tf_ready):
    import tf_keras as keras

    layer = keras.layers.MultiHeadAttention(num_heads=3, key_dim=4, value_dim=5)
    rng = np.random.default_rng(1)
    xq = rng.normal(size=(2, 6, 8)).astype(np.float32)
    xkv = rng.normal(size=(2, 7, 10)).astype(np.float32)
    layer(xq, xkv)
    return layer, xq, xkv


def test_multi_head_attention_matches_keras(keras_mha):
    layer, xq, xkv = keras_mha
    mask = np.ones((2, 6, 7), dtype=bool)
    mask[1, :, 4:] = False
    for m in (None, mask):
        ref, ref_w = layer(xq, xkv, attention_mask=m, return_attention_scores=True)
        out, w = att.multi_head_attention(xq, xkv, layer, mask=m)
        np.testing.assert_allclose(out, ref.numpy(), atol=2e-5)
        np.testing.assert_allclose(w, ref_w.numpy(), atol=2e-6)


def test_multi_head_attention_accepts_flat_weights(keras_mha):
    layer, xq, xkv = keras_mha
    wq, bq, wk, bk, wv, bv, wo, bo = layer.get_weights()
    flat = [wq.reshape(8, 12), bq.reshape(12), wk.reshape(10, 12), bk.reshape(12),
            wv.reshape(10, 15), bv.reshape(15), wo.reshape(15, 8), bo]
    out, _ = att.multi_head_attention(xq, xkv, flat, num_heads=3)
    np.testing.assert_allclose(out, layer(xq, xkv).numpy(), atol=2e-5)
    with pytest.raises(ValueError, match="need num_heads"):
        att.multi_head_attention(xq, xkv, flat)
    with pytest.raises(ValueError, match="x_kv has 8 features, W_k expects 10"):
        att.multi_head_attention(xq, xq, layer)
    with pytest.raises(ValueError, match="expected 8 arrays"):
        att.multi_head_attention(xq, xkv, flat[:6], num_heads=3)
    with pytest.raises(ValueError, match="b_o must have shape"):
        att.multi_head_attention(xq, xkv, [wq, bq, wk, bk, wv, bv, wo, bo[:3]])
    with pytest.raises(ValueError, match="weights have 3 heads"):
        att.multi_head_attention(xq, xkv, layer, num_heads=2)
    with pytest.raises(TypeError, match="MultiHeadAttention layer"):
        att.multi_head_attention(xq, xkv, "weights")


def test_layer_norm_matches_keras(tf_ready, rng):
    import tf_keras as keras

    x = rng.normal(size=(2, 3, 6)).astype(np.float32)
    ln = keras.layers.LayerNormalization(epsilon=1e-6)
    ln(x)
    ln.set_weights([rng.normal(size=6), rng.normal(size=6)])
    np.testing.assert_allclose(att.layer_norm(x, *ln.get_weights()), ln(x).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        att.layer_norm(x, np.ones(5))


@pytest.mark.parametrize(("causal", "pre_norm"), [(False, True), (True, True), (True, False)])
def test_transformer_block_by_hand_matches_edgelib(tf_ready, rng, causal, pre_norm):
    from edgelib.transformer import TransformerBlock

    block = TransformerBlock(8, 2, 16, causal=causal, pre_norm=pre_norm)
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    keep = np.array([[[1, 1, 1, 1, 0]], [[1, 1, 1, 1, 1]]], dtype=bool)
    ref = block(x, attention_mask=keep).numpy()
    mine = att.transformer_block(x, block.get_weights(), 2, causal, pre_norm, mask=keep)
    np.testing.assert_allclose(mine, ref, atol=1e-4)
