"""Transformer building blocks in tf_keras (Keras 2), shared by chapters 06 and 07.

    import edgelib
    edgelib.setup()                       # first: selects Keras 2
    from edgelib.transformer import PositionalEmbedding, TransformerBlock

    ids = keras.Input((16,), dtype="int32")                  # (batch, seq) token ids
    x = PositionalEmbedding(vocab_size=200, max_len=16, d_model=32)(ids)
    x = TransformerBlock(d_model=32, num_heads=4, d_ff=64)(x)  # (batch, seq, d_model)

Shapes: token ids (batch, seq) with seq <= max_len; activations
(batch, seq, d_model); attention scores (batch, heads, seq_q, seq_k).

The module imports TensorFlow: import it after `edgelib.setup()` (the
package's `__init__` does not import it). Both layers are registered as
serializable (`package="edgelib"`), so models that use them can be saved and
loaded again (`keras.models.load_model`) once this module is imported.
"""

from __future__ import annotations

import os
import sys

import numpy as np

if "tensorflow" not in sys.modules:  # imported before edgelib.setup(): still pick Keras 2
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["PositionalEmbedding", "TransformerBlock", "command_classifier", "sinusoidal_encoding"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def sinusoidal_encoding(length: int, depth: int) -> np.ndarray:
    """The fixed positional encoding of "Attention is all you need", (length, depth) float32.

        PE[pos, 2i]     = sin(pos / 10000^(2i / depth))
        PE[pos, 2i + 1] = cos(pos / 10000^(2i / depth))

    Column pair i turns at angular speed 1 / 10000^(2i/depth): the first
    pairs change fast with the position, the last ones slowly. An odd
    `depth` ends with a lone sine column.
    """
    length = _positive_int(length, "length")
    depth = _positive_int(depth, "depth")
    pos = np.arange(length, dtype=np.float64)[:, None]
    two_i = np.arange(0, depth, 2, dtype=np.float64)[None, :]
    angles = pos / np.power(10000.0, two_i / depth)
    pe = np.zeros((length, depth), dtype=np.float64)
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : depth // 2])
    return pe.astype(np.float32)


@keras.saving.register_keras_serializable(package="edgelib")
class PositionalEmbedding(keras.layers.Layer):
    """Token embedding plus position embedding: int ids (batch, seq) -> (batch, seq, d_model).

    out[b, t] = E_token[ids[b, t]] + P[t]

    `learned=True`: P is a trainable `Embedding(max_len, d_model)`;
    `learned=False`: P is the fixed `sinusoidal_encoding(max_len, d_model)`.
    The token embedding is not rescaled (factor 1). `mask_zero=True` makes id
    0 the padding id: the layer then emits a Keras mask (ids != 0) that
    `MultiHeadAttention` uses as a padding mask. The sequence length must be
    at most `max_len`; ids must lie in [0, vocab_size) (an id outside it makes
    the embedding lookup fail in TensorFlow; tokenizers should validate first).
    """

    def __init__(self, vocab_size: int, max_len: int, d_model: int, learned: bool = True,
                 mask_zero: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = _positive_int(vocab_size, "vocab_size")
        self.max_len = _positive_int(max_len, "max_len")
        self.d_model = _positive_int(d_model, "d_model")
        self.learned = bool(learned)
        self.mask_zero = bool(mask_zero)
        self.token = keras.layers.Embedding(self.vocab_size, self.d_model, name="token")
        if self.learned:
            self.position = keras.layers.Embedding(self.max_len, self.d_model, name="position")
        else:
            self.position = None
            self.table = tf.constant(sinusoidal_encoding(self.max_len, self.d_model))

    def _check_length(self, seq_len) -> None:
        if seq_len is not None and seq_len > self.max_len:
            raise ValueError(
                f"sequence of length {seq_len} is longer than max_len={self.max_len} "
                "of this PositionalEmbedding: truncate it or build the layer with a larger max_len"
            )

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape)
        if shape.rank is not None and shape.rank != 2:
            raise ValueError(f"expected token ids of shape (batch, seq), got shape {shape}")
        self._check_length(shape[1] if shape.rank == 2 else None)
        with tf.name_scope(self.token.name):  # unique weight names (h5 files need them)
            self.token.build(shape)
        if self.position is not None:
            with tf.name_scope(self.position.name):
                self.position.build(tf.TensorShape([None]))
        super().build(input_shape)

    def call(self, token_ids):
        if token_ids.dtype.is_floating:
            token_ids = tf.cast(token_ids, "int32")
        self._check_length(token_ids.shape[1])
        seq_len = tf.shape(token_ids)[1]
        if self.position is not None:
            positions = self.position(tf.range(seq_len))
        else:
            positions = self.table[:seq_len]
        return self.token(token_ids) + positions[None]

    def compute_mask(self, token_ids, mask=None):
        if not self.mask_zero:
            return None
        return tf.not_equal(token_ids, 0)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, max_len=self.max_len, d_model=self.d_model,
                      learned=self.learned, mask_zero=self.mask_zero)
        return config


class _BoundedMaskSoftmax(keras.layers.Softmax):
    """Softmax that masks by adding `mask_value` to the masked scores (not -1e9)."""

    def __init__(self, mask_value: float, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, inputs, mask=None):
        if mask is not None:  # True = may attend
            inputs = inputs + (1.0 - tf.cast(mask, inputs.dtype)) * self.mask_value
        return super().call(inputs)


class _BoundedMaskAttention(keras.layers.MultiHeadAttention):
    """MultiHeadAttention whose mask adds `mask_value` instead of -1e9.

    `_build_attention` is Keras' hook for customizing the attention
    computation; the weights are those of MultiHeadAttention.
    """

    def __init__(self, mask_value: float, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def _build_attention(self, rank):
        super()._build_attention(rank)
        self._softmax = _BoundedMaskSoftmax(self.mask_value, axis=self._softmax.axis)


@keras.saving.register_keras_serializable(package="edgelib")
class TransformerBlock(keras.layers.Layer):
    """One Transformer block: self-attention and a feed-forward net, each with a
    residual connection and layer normalization. (batch, seq, d_model) -> same.

    Pre-norm (the default, `pre_norm=True`, as in GPT-2 and most recent models):

        x = x + Dropout(MHA(LN1(x)))
        x = x + Dropout(FFN(LN2(x)))          FFN(h) = Dense(d_model)(act(Dense(d_ff)(h)))

    Why pre-norm: the residual path from input to output is a pure identity,
    so gradients reach the first layers undamped and small models train
    stably with a constant learning rate (no warm-up needed). Its outputs are
    not normalized: put a `LayerNormalization` after the last block.
    `pre_norm=False` gives the post-norm block of the original paper,
    x = LN1(x + MHA(x)); x = LN2(x + FFN(x)).

    `causal=True` lets position t attend only to positions <= t (decoder,
    language model). `call(x, attention_mask=None, training=None,
    return_attention_scores=False)`: `attention_mask` is a boolean
    (batch, seq_q, seq_k) or (batch, 1, seq_k) array, True where attention is
    allowed (combined with the causal mask when causal=True). With
    `return_attention_scores=True` the call returns (output, scores), scores
    of shape (batch, num_heads, seq, seq); in eager calls the last scores are
    also kept in `last_attention_scores`.

    `mask_value`: None masks as Keras does, adding -1e9 to the scores that
    must get no weight. A moderate number such as -100 gives the same float
    outputs (a masked key keeps a weight below e^-80 of the largest one
    while a row's scores lie within about 20 of each other) and keeps an
    int8 model usable: full-integer conversion gives the scores tensor one
    scale for its whole range, and with -1e9 in it one int8 step is
    millions wide (chapter 06 measures it; chapters 07 and 17 convert a
    causal language model built this way).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0,
                 causal: bool = False, pre_norm: bool = True, activation: str = "relu",
                 epsilon: float = 1e-6, mask_value: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.d_model = _positive_int(d_model, "d_model")
        self.num_heads = _positive_int(num_heads, "num_heads")
        self.d_ff = _positive_int(d_ff, "d_ff")
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model={self.d_model} must be divisible by num_heads={self.num_heads} "
                f"(each head gets d_model / num_heads dimensions)"
            )
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}")
        self.dropout_rate = float(dropout)
        self.causal = bool(causal)
        self.pre_norm = bool(pre_norm)
        self.activation = activation
        self.epsilon = float(epsilon)
        if mask_value is not None and (isinstance(mask_value, bool)
                                       or not isinstance(mask_value, (int, float))
                                       or not -1e4 <= mask_value <= -20):
            raise ValueError(f"mask_value must be a number in [-10000, -20], or None for "
                             f"Keras' -1e9; got {mask_value!r}")
        self.mask_value = None if mask_value is None else float(mask_value)
        heads = dict(num_heads=self.num_heads, key_dim=self.d_model // self.num_heads,
                     name="attention")
        self.attention = (keras.layers.MultiHeadAttention(**heads) if mask_value is None
                          else _BoundedMaskAttention(self.mask_value, **heads))
        self.ffn_in = keras.layers.Dense(self.d_ff, activation=activation, name="ffn_in")
        self.ffn_out = keras.layers.Dense(self.d_model, name="ffn_out")
        self.norm1 = keras.layers.LayerNormalization(epsilon=self.epsilon, name="norm1")
        self.norm2 = keras.layers.LayerNormalization(epsilon=self.epsilon, name="norm2")
        self.drop1 = keras.layers.Dropout(self.dropout_rate)
        self.drop2 = keras.layers.Dropout(self.dropout_rate)
        self.supports_masking = True
        self.last_attention_scores = None

    def _check_input(self, shape) -> None:
        shape = tf.TensorShape(shape)
        if shape.rank is not None and shape.rank != 3:
            raise ValueError(f"expected input of shape (batch, seq, d_model), got shape {shape}")
        if shape.rank == 3 and shape[-1] is not None and shape[-1] != self.d_model:
            raise ValueError(
                f"input has {shape[-1]} features per position, this block expects "
                f"d_model={self.d_model}"
            )

    def build(self, input_shape):
        self._check_input(input_shape)
        super().build(input_shape)

    def call(self, x, attention_mask=None, training=None, return_attention_scores=False,
             mask=None):
        self._check_input(x.shape)
        h = self.norm1(x) if self.pre_norm else x
        attended, scores = self.attention(
            h, h, attention_mask=attention_mask, use_causal_mask=self.causal,
            return_attention_scores=True, training=training,
        )
        x = x + self.drop1(attended, training=training)
        if not self.pre_norm:
            x = self.norm1(x)
        h = self.norm2(x) if self.pre_norm else x
        x = x + self.drop2(self.ffn_out(self.ffn_in(h)), training=training)
        if not self.pre_norm:
            x = self.norm2(x)
        if tf.executing_eagerly():
            self.last_attention_scores = scores.numpy()
        return (x, scores) if return_attention_scores else x

    def compute_mask(self, x, mask=None):
        return mask

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(d_model=self.d_model, num_heads=self.num_heads, d_ff=self.d_ff,
                      dropout=self.dropout_rate, causal=self.causal, pre_norm=self.pre_norm,
                      activation=self.activation, epsilon=self.epsilon,
                      mask_value=self.mask_value)
        return config


def command_classifier(vocab_size: int, max_len: int, num_classes: int, d_model: int = 32,
                       num_heads: int = 4, d_ff: int = 64, num_blocks: int = 1,
                       dropout: float = 0.1, learned: bool = True,
                       name: str = "command_classifier") -> keras.Model:
    """A small Transformer encoder that classifies a sequence of token ids (logits out).

    int32 ids (batch, max_len) -> PositionalEmbedding -> num_blocks x
    TransformerBlock (pre-norm) -> LayerNormalization -> mean over the
    positions -> Dense(num_classes) logits. Chapter 06 trains it on the
    smart-home commands; it converts to a fully-integer int8 TFLite model.

    No attention mask on purpose: padding ids (0) are ordinary tokens that
    the model learns to ignore. A padding mask adds -1e9 to masked scores,
    which wrecks the int8 scale of the scores tensor (chapter 06 measures it).
    """
    _positive_int(num_classes, "num_classes")
    _positive_int(num_blocks, "num_blocks")
    ids = keras.Input((_positive_int(max_len, "max_len"),), dtype="int32", name="token_ids")
    x = PositionalEmbedding(vocab_size, max_len, d_model, learned=learned, name="embedding")(ids)
    for i in range(num_blocks):
        x = TransformerBlock(d_model, num_heads, d_ff, dropout=dropout, name=f"block{i + 1}")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = keras.layers.GlobalAveragePooling1D(name="mean_over_positions")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(ids, logits, name=name)
