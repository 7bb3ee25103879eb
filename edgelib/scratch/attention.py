"""Attention from scratch (NumPy), with the weight layout of tf_keras.

Shape conventions (the same as Keras):
    queries  q: (..., T, d_k)     T query positions
    keys     k: (..., S, d_k)     S key / value positions
    values   v: (..., S, d_v)
    weights    (..., T, S)        row t: how much query t takes from each key
    masks      boolean, broadcastable to (..., T, S); True = may attend.

Scaled dot-product attention:
    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
A masked entry gets -1e9 added to its score before the softmax (as in Keras),
so its weight is 0. A row with every entry masked is not special-cased: here
in float64, s - 1e9 keeps the differences of the scores s (one step near 1e9
is about 1e-7), so the row gets the ordinary softmax over all its keys; in
float32 (Keras) one step near 1e9 is 64, small scores round away and the
row becomes (nearly) uniform. Give every query at least one allowed key.

Multi-head attention on inputs x_q (N, T, D_q) and x_kv (N, S, D_kv), with
Keras' weights (H heads, per-head sizes d_k and d_v):
    W_q (D_q, H, d_k), b_q (H, d_k); W_k (D_kv, H, d_k), b_k (H, d_k);
    W_v (D_kv, H, d_v), b_v (H, d_v); W_o (H, d_v, D_out), b_o (D_out,)
    head_h = Attention(x_q W_q[:, h] + b_q[h], x_kv W_k[:, h] + b_k[h], x_kv W_v[:, h] + b_v[h])
    output = sum_h head_h W_o[h] + b_o   (= concat(heads) W_o reshaped (H d_v, D_out))
Everything is computed in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MASK_VALUE = -1e9  # added to masked scores (Keras' MultiHeadAttention does the same)


def _array(x, name: str, min_ndim: int = 1) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}") from exc
    if a.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def softmax(x, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along `axis`.

    Subtracting the maximum changes nothing mathematically and keeps exp()
    from overflowing: softmax([1000, 1001]) works. -inf entries get weight 0;
    NaN is refused.
    """
    a = np.asarray(x, dtype=np.float64)
    if np.isnan(a).any():
        raise ValueError("softmax input contains NaN")
    top = np.max(a, axis=axis, keepdims=True)
    if not np.isfinite(top).all():
        raise ValueError("softmax needs at least one finite value in every row")
    e = np.exp(a - top)
    return e / e.sum(axis=axis, keepdims=True)


def causal_mask(n: int) -> np.ndarray:
    """(n, n) boolean mask, True on and below the diagonal: query t may attend
    to keys 0..t only (no peeking at the future)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return np.tril(np.ones((n, n), dtype=bool))


def padding_mask(token_ids, pad_id: int = 0) -> np.ndarray:
    """(N, 1, S) boolean mask from token ids (N, S): True where the key is a real
    token, False at padding. The axis of length 1 broadcasts over the queries."""
    ids = np.asarray(token_ids)
    if ids.ndim != 2:
        raise ValueError(f"token_ids must have shape (N, S), got {ids.shape}")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"token_ids must be integers, got dtype {ids.dtype}")
    return (ids != pad_id)[:, None, :]


def _check_mask(mask, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype != bool:
        if m.dtype.kind not in "iuf" or not np.isin(m, (0, 1)).all():
            raise ValueError(f"mask must be boolean (or 0/1), got dtype {m.dtype}")
        m = m.astype(bool)
    try:
        np.broadcast_shapes(m.shape, shape)
    except ValueError as exc:
        raise ValueError(
            f"mask of shape {m.shape} does not broadcast to the attention weights {shape} "
            "(..., T queries, S keys)"
        ) from exc
    return m


def scaled_dot_product_attention(q, k, v, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """softmax(q k^T / sqrt(d_k) [+ mask]) v. Returns (output (..., T, d_v), weights (..., T, S)).

    q (..., T, d_k), k (..., S, d_k), v (..., S, d_v); leading axes broadcast
    (batch, heads). `mask`: boolean, broadcastable to (..., T, S), True = attend.
    A row with no True gets softmax(q k^T / sqrt(d_k)) over all keys (float64
    keeps the scores' differences after adding -1e9), not a uniform row.
    """
    q, k, v = _array(q, "q", 2), _array(k, "k", 2), _array(v, "v", 2)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dimension d_k: q {q.shape}, k {k.shape}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of positions S (axis -2): k {k.shape}, v {v.shape}"
        )
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        m = _check_mask(mask, scores.shape)
        scores = scores + np.where(m, 0.0, MASK_VALUE)
    weights = softmax(scores, axis=-1)
    return weights @ v, weights


def _mha_weights(weights, num_heads: int | None) -> list[np.ndarray]:
    """The 8 arrays in Keras' 3-D layout, from a Keras layer or a sequence of arrays."""
    if hasattr(weights, "get_weights"):
        arrays = weights.get_weights()
        if not arrays:
            raise ValueError("the MultiHeadAttention layer has no weights yet: call it once first")
    elif isinstance(weights, Sequence) and not isinstance(weights, (str, bytes)):
        arrays = list(weights)
    else:
        raise TypeError(
            "weights must be a tf_keras MultiHeadAttention layer or the sequence "
            "(W_q, b_q, W_k, b_k, W_v, b_v, W_o, b_o)"
        )
    if len(arrays) != 8:
        raise ValueError(
            f"expected 8 arrays (W_q, b_q, W_k, b_k, W_v, b_v, W_o, b_o), got {len(arrays)}"
        )
    names = ("W_q", "b_q", "W_k", "b_k", "W_v", "b_v", "W_o", "b_o")
    arrays = [_array(a, n) for a, n in zip(arrays, names, strict=True)]
    if arrays[0].ndim == 2:  # flat layout (D, H*d) -> split the heads
        if num_heads is None:
            raise ValueError("2-D weight matrices need num_heads to be split into heads")
        split = []
        for i, a in enumerate(arrays[:6]):
            if a.shape[-1] % num_heads:
                raise ValueError(
                    f"{names[i]} has {a.shape[-1]} columns, not divisible by num_heads={num_heads}"
                )
            split.append(a.reshape(*a.shape[:-1], num_heads, a.shape[-1] // num_heads))
        w_o = arrays[6]
        if w_o.ndim != 2 or w_o.shape[0] % num_heads:
            raise ValueError(f"W_o must be (H*d_v, D_out) with H={num_heads}, got {w_o.shape}")
        split.append(w_o.reshape(num_heads, w_o.shape[0] // num_heads, w_o.shape[1]))
        arrays = split + [arrays[7]]
    heads = arrays[0].shape[1] if arrays[0].ndim == 3 else None
    if num_heads is not None and heads != num_heads:
        raise ValueError(f"the weights have {heads} heads, num_heads={num_heads} was given")
    w_q, b_q, w_k, b_k, w_v, b_v, w_o, b_o = arrays
    expected = {
        "W_q": (w_q.ndim == 3, "(D_q, H, d_k)"),
        "b_q": (b_q.shape == w_q.shape[1:], f"{w_q.shape[1:]}"),
        "W_k": (w_k.ndim == 3 and w_k.shape[1:] == w_q.shape[1:], f"(D_kv, {heads}, d_k)"),
        "b_k": (b_k.shape == w_k.shape[1:], f"{w_k.shape[1:]}"),
        "W_v": (w_v.ndim == 3 and w_v.shape[0] == w_k.shape[0] and w_v.shape[1] == heads,
                f"({w_k.shape[0]}, {heads}, d_v)"),
        "b_v": (b_v.shape == w_v.shape[1:], f"{w_v.shape[1:]}"),
        "W_o": (w_o.ndim == 3 and w_o.shape[:2] == w_v.shape[1:], f"({heads}, d_v, D_out)"),
        "b_o": (b_o.shape == w_o.shape[2:], f"({w_o.shape[-1]},)"),
    }
    for (name, (ok, shape)), a in zip(expected.items(), arrays, strict=True):
        if not ok:
            raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return arrays


def multi_head_attention(x_q, x_kv, weights, num_heads: int | None = None,
                         mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Multi-head attention with Keras' weights. Returns (output (N, T, D_out),
    attention weights (N, H, T, S)).

    x_q (N, T, D_q): the sequence that asks (queries); x_kv (N, S, D_kv): the
    sequence that answers (keys and values); self-attention passes the same
    array twice. `weights`: a built tf_keras `MultiHeadAttention` layer, or
    the arrays (W_q, b_q, W_k, b_k, W_v, b_v, W_o, b_o) in Keras' 3-D layout
    (see the module docstring) or flat 2-D layout (W (D, H*d), b (H*d,),
    W_o (H*d_v, D_out); then give `num_heads`). `mask`: boolean, broadcastable
    to (N, T, S) (or (N, H, T, S)), True = attend.
    """
    x_q, x_kv = _array(x_q, "x_q", 3), _array(x_kv, "x_kv", 3)
    if x_q.ndim != 3 or x_kv.ndim != 3:
        raise ValueError(f"x_q and x_kv must be (N, T, D), got {x_q.shape} and {x_kv.shape}")
    if x_q.shape[0] != x_kv.shape[0]:
        raise ValueError(f"x_q and x_kv have different batch sizes: {x_q.shape}, {x_kv.shape}")
    w_q, b_q, w_k, b_k, w_v, b_v, w_o, b_o = _mha_weights(weights, num_heads)
    if x_q.shape[-1] != w_q.shape[0]:
        raise ValueError(f"x_q has {x_q.shape[-1]} features, W_q expects {w_q.shape[0]}")
    if x_kv.shape[-1] != w_k.shape[0]:
        raise ValueError(f"x_kv has {x_kv.shape[-1]} features, W_k expects {w_k.shape[0]}")
    # Project, one set of q/k/v per head: (N, T, D) x (D, H, d) -> (N, H, T, d).
    q = np.einsum("ntd,dhk->nhtk", x_q, w_q) + b_q[None, :, None, :]
    k = np.einsum("nsd,dhk->nhsk", x_kv, w_k) + b_k[None, :, None, :]
    v = np.einsum("nsd,dhk->nhsk", x_kv, w_v) + b_v[None, :, None, :]
    if mask is not None:
        m = np.asarray(mask)
        if m.ndim == 3:  # (N, T, S) -> (N, 1, T, S): the same mask for every head
            m = m[:, None]
        mask = m
    heads, att = scaled_dot_product_attention(q, k, v, mask)  # (N, H, T, d_v), (N, H, T, S)
    out = np.einsum("nhtv,hvo->nto", heads, w_o) + b_o
    return out, att


def layer_norm(x, gamma=None, beta=None, eps: float = 1e-6) -> np.ndarray:
    """Normalize each position over its features (last axis):
    y = gamma * (x - mean) / sqrt(var + eps) + beta (var: population variance)."""
    x = _array(x, "x")
    d = x.shape[-1]
    gamma = np.ones(d) if gamma is None else _array(gamma, "gamma")
    beta = np.zeros(d) if beta is None else _array(beta, "beta")
    if gamma.shape != (d,) or beta.shape != (d,):
        raise ValueError(
            f"gamma and beta must have shape ({d},) like the last axis of x, got "
            f"{gamma.shape} and {beta.shape}"
        )
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def transformer_block(x, weights, num_heads: int, causal: bool = False, pre_norm: bool = True,
                      mask=None, eps: float = 1e-6) -> np.ndarray:
    """The forward pass of `edgelib.transformer.TransformerBlock` (ReLU FFN, no dropout).

    `weights`: the block's `get_weights()` (16 arrays: attention's 8, then
    ffn_in kernel/bias, ffn_out kernel/bias, norm1 gamma/beta, norm2 gamma/beta).
    pre-norm:  x = x + MHA(LN1(x)); x = x + FFN(LN2(x))
    post-norm: x = LN1(x + MHA(x)); x = LN2(x + FFN(x))
    `mask` (N, T, S) or (N, 1, S), True = attend; combined with the causal mask.
    """
    x = _array(x, "x", 3)
    if len(weights) != 16:
        raise ValueError(f"expected the 16 weight arrays of a TransformerBlock, got {len(weights)}")
    attn, (w1, b1, w2, b2, g1, be1, g2, be2) = list(weights[:8]), weights[8:]
    if causal:
        c = causal_mask(x.shape[1])
        mask = c if mask is None else np.logical_and(np.asarray(mask, dtype=bool), c)
    if mask is not None and np.asarray(mask).ndim == 2:
        mask = np.asarray(mask)[None]

    def ffn(h):
        return np.maximum(h @ w1 + b1, 0.0) @ w2 + b2

    if pre_norm:
        h = layer_norm(x, g1, be1, eps)
        x = x + multi_head_attention(h, h, attn, num_heads, mask)[0]
        return x + ffn(layer_norm(x, g2, be2, eps))
    x = layer_norm(x + multi_head_attention(x, x, attn, num_heads, mask)[0], g1, be1, eps)
    return layer_norm(x + ffn(x), g2, be2, eps)
