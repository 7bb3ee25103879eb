"""The chapter-07 language model at the edge (chapter 17): TFLite export,
perplexity and generation on the LiteRT runtime alone, a KV-cache step model,
a device/cloud cascade, and the scale of real large models.

    from edgelib import lm, lm_edge
    tiny = lm.load_or_train("artifacts/07")
    blob = lm_edge.export(tiny.model, tiny.config, "int8", calibration=train_ids)
    edge = lm_edge.EdgeLM(blob)                      # LiteRT only, no TensorFlow
    edge.perplexity(heldout_ids)["perplexity"]
    edge.generate(tok, "The ", 80, strategy="top_k", top_k=5, seed=0)

    step = lm_edge.kv_step_model(tiny.model, tiny.config)   # Keras, shares the weights
    cached = lm_edge.CachedLM(tflite.convert(step))         # LiteRT only
    cached.generate(tok, "The ", 80, strategy="top_k", top_k=5, seed=0)

The edge side (`EdgeLM`, `CachedLM`, `kv_cache_bytes`, `cascade`,
`scale_table`) needs NumPy and `ai_edge_litert` only: this module imports
TensorFlow inside the functions that build or convert Keras models
(`export`, `window_model`, `kv_step_model`), never at import time.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import lm
from .runtime import EdgeModel, read_model_bytes


class LMEdgeError(ValueError):
    """Bad input to the edge language-model helpers; the message says what was expected."""


# --- export ---------------------------------------------------------------------------


def calibration_windows(ids, context: int, count: int = 100, seed: int = 0) -> np.ndarray:
    """`count` windows of `context` token ids at random offsets of `ids`: the
    representative inputs that full-int8 conversion calibrates with."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise LMEdgeError(f"count must be an int >= 1, got {count!r}")
    return lm.make_windows(np.asarray(ids), context, count=count, seed=seed)[0]


def export(model, config: dict, mode: str = "float32", calibration=None,
           mask_value: float = lm.EDGE_MASK_VALUE) -> bytes:
    """The trained language model as .tflite bytes: `lm.edge_model` (batch 1,
    a causal mask that adds `mask_value`) converted in `mode` ("float32",
    "dynamic", "float16" or "int8"). "int8" needs `calibration`: an array of
    windows of token ids, (N, context) (see `calibration_windows`)."""
    from . import tflite

    if mode not in tflite.MODES:
        raise LMEdgeError(f"unknown mode {mode!r}; expected one of {', '.join(tflite.MODES)}")
    if mode == "int8":
        if calibration is None:
            raise LMEdgeError("int8 export needs calibration windows of token ids, shape "
                              f"(N, {config['context']}); see calibration_windows")
        calibration = np.asarray(calibration)
        if calibration.ndim != 2 or calibration.shape[1] != config["context"]:
            raise LMEdgeError(f"calibration windows must have shape (N, {config['context']}), "
                              f"got {calibration.shape}")
    edge = lm.edge_model(model, config, mask_value=mask_value)
    return tflite.convert(edge, mode, representative=calibration)


def window_model(model, config: dict, length: int, mask_value: float = lm.EDGE_MASK_VALUE):
    """The same weights in a batch-1 model that reads windows of `length`
    tokens (1 <= length <= config["context"]): the position table is cut to
    its first `length` rows. Its logits equal the full model's on the first
    `length` positions (the attention is causal), and its cost grows with
    `length`: the model a runtime without a cache recomputes for every token."""
    if isinstance(length, bool) or not isinstance(length, int) or \
            not 1 <= length <= config["context"]:
        raise LMEdgeError(f"length must be an int in [1, {config['context']}] (the model's "
                          f"context), got {length!r}")
    short = lm.build_model(dict(config, context=length), batch_size=1, mask_value=mask_value)
    weights = []
    for w, target in zip(model.get_weights(), short.get_weights(), strict=True):
        weights.append(w[:length] if w.shape != target.shape else w)
    if [w.shape for w in weights] != [t.shape for t in short.get_weights()]:
        raise LMEdgeError("the model's weights do not fit the config")
    short.set_weights(weights)
    return short


# --- the edge side: a window model on LiteRT ---------------------------------------------


class EdgeLM:
    """A .tflite language model (ids (1, context) -> logits (1, context, vocab))
    on the LiteRT runtime, with perplexity and generation. No TensorFlow."""

    def __init__(self, model: str | Path | bytes, threads: int = 1):
        self.edge = EdgeModel(model, threads=threads)
        shape = self.edge.input_shape
        if len(shape) != 1 or self.edge.input_dtype.kind not in "iu":
            raise LMEdgeError(f"expected a language model with an integer input of shape "
                              f"(1, context), got shape (1, {', '.join(map(str, shape))}) "
                              f"of {self.edge.input_dtype}")
        out = tuple(int(d) for d in self.edge.outputs[0]["shape"])
        if len(self.edge.outputs) != 1 or len(out) != 3 or out[1] != shape[0]:
            raise LMEdgeError(f"expected one output of shape (1, context, vocab), got {out}")
        self.context, self.vocab_size = shape[0], out[2]

    @property
    def size_bytes(self) -> int:
        return self.edge.size_bytes

    def logits(self, window) -> np.ndarray:
        """Logits (1, context, vocab) of one window of ids, (1, context) or (context,)."""
        x = np.asarray(window)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.shape != (self.context,):
            raise LMEdgeError(f"expected one window of {self.context} token ids, got shape "
                              f"{np.asarray(window).shape}")
        return np.asarray(self.edge.invoke(lm.check_ids(x, self.vocab_size)), dtype=np.float32)

    def perplexity(self, ids) -> dict:
        """As `lm.perplexity`, on the edge runtime: cross-entropy (nats/char), bits
        per character and perplexity over non-overlapping windows of the text."""
        x, y = lm.make_windows(lm.check_ids(ids, self.vocab_size), self.context)
        logits = np.concatenate([self.logits(row) for row in x])
        ce = lm.cross_entropy(logits, y)
        return {"cross_entropy": ce, "bits_per_char": ce / math.log(2),
                "perplexity": math.exp(ce), "tokens": int(y.size)}

    def generate(self, tokenizer: lm.CharTokenizer, prompt: str, length: int,
                 strategy: str = "greedy", temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0) -> str:
        """Continue `prompt` by `length` characters, one model call per character
        (the window slides); sampling as `lm.generate`."""
        return lm.generate(self.logits, tokenizer, prompt, length, strategy=strategy,
                           temperature=temperature, top_k=top_k, seed=seed,
                           context=self.context)


def next_char_probs(edge: EdgeLM, ids) -> tuple[np.ndarray, np.ndarray]:
    """Next-character probabilities at every position of the non-overlapping
    windows of `ids` on the edge runtime: (probs (n, vocab), targets (n,))."""
    x, y = lm.make_windows(lm.check_ids(ids, edge.vocab_size), edge.context)
    logits = np.concatenate([edge.logits(row)[0] for row in x])
    return softmax(logits), y.reshape(-1)


def softmax(logits) -> np.ndarray:
    """Softmax over the last axis (float64, stable)."""
    return np.exp(lm.log_softmax(logits))


# --- the KV cache -------------------------------------------------------------------------


def kv_cache_bytes(layers: int, context: int, d_model: int, bytes_per_value: float) -> int:
    """Memory of a KV cache: keys and values (2) for every layer, every cached
    position and every model dimension: 2 x layers x context x d_model x bytes."""
    for name, value in (("layers", layers), ("context", context), ("d_model", d_model)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise LMEdgeError(f"{name} must be a positive int, got {value!r}")
    if isinstance(bytes_per_value, bool) or not isinstance(bytes_per_value, (int, float)) \
            or not bytes_per_value > 0:
        raise LMEdgeError(f"bytes_per_value must be a number > 0 (4 for float32, 2 for fp16, "
                          f"1 for int8), got {bytes_per_value!r}")
    return int(round(2 * layers * context * d_model * bytes_per_value))


def _block_weights(model, config: dict) -> dict:
    """The trained weights by role, as NumPy arrays."""
    emb = model.get_layer("embedding")
    out = {"token": emb.token.embeddings.numpy(), "position": emb.position.embeddings.numpy(),
           "blocks": []}
    d = config["d_model"]
    for i in range(config["num_layers"]):
        block = model.get_layer(f"block{i + 1}")
        if not block.pre_norm or block.activation != "relu":
            raise LMEdgeError(f"the step model is written for pre-norm blocks with ReLU (the "
                              f"chapter-07 model); block{i + 1} has pre_norm={block.pre_norm}, "
                              f"activation={block.activation!r}")
        att = block.attention
        row = {}
        for name, dense in (("q", att._query_dense), ("k", att._key_dense),
                            ("v", att._value_dense)):
            kernel, bias = (w.numpy() for w in dense.weights)
            row[name] = (kernel.reshape(d, d), bias.reshape(d))
        kernel, bias = (w.numpy() for w in att._output_dense.weights)
        row["o"] = (kernel.reshape(d, d), bias.reshape(d))
        for name, layer in (("ln1", block.norm1), ("ln2", block.norm2)):
            row[name] = (layer.gamma.numpy(), layer.beta.numpy(), float(layer.epsilon))
        row["ffn_in"] = tuple(w.numpy() for w in block.ffn_in.weights)
        row["ffn_out"] = tuple(w.numpy() for w in block.ffn_out.weights)
        out["blocks"].append(row)
    final = model.get_layer("final_norm")
    out["final"] = (final.gamma.numpy(), final.beta.numpy(), float(final.epsilon))
    out["logits"] = tuple(w.numpy() for w in model.get_layer("logits").weights)
    return out


def kv_step_model(model, config: dict, mask_value: float = lm.EDGE_MASK_VALUE):
    """A Keras model that generates ONE token with a KV cache, sharing the
    trained model's weights (copied in as constants).

    Inputs:  token (1,) int32, position (1,) int32 (0-based, < context),
             keys (1, layers, context, d_model), values (same): the attention
             keys and values of the earlier tokens (slots >= position unused).
    Outputs: logits (1, vocab) of the next token, new_keys (1, layers, d_model)
             and new_values (same) of this token, which the caller writes into
             slot `position` of its cache.
    Static shapes (a fixed maximum context), so it converts to TFLite; the
    slots after `position` are masked (score + `mask_value`), and slot
    `position` holds this token's own key and value.
    """
    import tensorflow as tf
    import tf_keras as keras

    lm.validate_config(config)
    w = _block_weights(model, config)
    L, C, d, H = (config["num_layers"], config["context"], config["d_model"],
                  config["num_heads"])
    kd = d // H

    def const(a):
        return tf.constant(np.asarray(a, dtype=np.float32))

    def norm(x, gamma, beta, eps):
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + eps) * const(gamma) + const(beta)

    def dense(x, kernel, bias):
        return tf.matmul(x, const(kernel)) + const(bias)

    class KVCacheStep(keras.layers.Layer):
        def call(self, inputs):
            token, position, keys, values = inputs
            onehot = tf.one_hot(position, C, dtype=tf.float32)          # (1, C)
            allowed = tf.cast(tf.range(C)[None] <= position[:, None], tf.float32)
            bias = (1.0 - allowed) * mask_value                         # (1, C)
            x = tf.gather(const(w["token"]), token) + tf.gather(const(w["position"]), position)
            new_k, new_v = [], []
            for i, b in enumerate(w["blocks"]):
                h = norm(x, *b["ln1"])
                q = dense(h, *b["q"]) / math.sqrt(kd)
                k, v = dense(h, *b["k"]), dense(h, *b["v"])              # (1, d)
                new_k.append(k)
                new_v.append(v)
                # this token's key and value go to slot `position` of the cache
                keys_i = keys[:, i] * (1.0 - onehot[..., None]) + onehot[..., None] * k[:, None]
                vals_i = values[:, i] * (1.0 - onehot[..., None]) + onehot[..., None] * v[:, None]
                qh = tf.reshape(q, (1, H, 1, kd))
                kh = tf.transpose(tf.reshape(keys_i, (1, C, H, kd)), (0, 2, 3, 1))  # (1,H,kd,C)
                vh = tf.transpose(tf.reshape(vals_i, (1, C, H, kd)), (0, 2, 1, 3))  # (1,H,C,kd)
                scores = tf.matmul(qh, kh) + bias[:, None, None, :]      # (1, H, 1, C)
                att = tf.matmul(tf.nn.softmax(scores, axis=-1), vh)     # (1, H, 1, kd)
                x = x + dense(tf.reshape(att, (1, d)), *b["o"])
                h = norm(x, *b["ln2"])
                x = x + dense(tf.nn.relu(dense(h, *b["ffn_in"])), *b["ffn_out"])
            logits = dense(norm(x, *w["final"]), *w["logits"])
            return logits, tf.stack(new_k, axis=1), tf.stack(new_v, axis=1)

    token = keras.Input((), batch_size=1, dtype="int32", name="token")
    position = keras.Input((), batch_size=1, dtype="int32", name="position")
    keys = keras.Input((L, C, d), batch_size=1, name="keys")
    values = keras.Input((L, C, d), batch_size=1, name="values")
    outputs = KVCacheStep(name="kv_step")([token, position, keys, values])
    named = [keras.layers.Activation("linear", name=name)(o)
             for name, o in zip(("logits", "new_keys", "new_values"), outputs, strict=True)]
    return keras.Model([token, position, keys, values], named, name="tiny_lm_kv_step")


class CachedLM:
    """The KV-cache step model (.tflite) on LiteRT, with its cache in NumPy.
    No TensorFlow. `step(token)` runs one token and returns its next-token
    logits; `reset()` empties the cache."""

    def __init__(self, model: str | Path | bytes, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        from .environment import quiet_native_stderr

        self.content = read_model_bytes(model)
        with quiet_native_stderr():
            self.interpreter = Interpreter(model_content=self.content, num_threads=threads)
            self.interpreter.allocate_tensors()
        signature = self.interpreter._get_full_signature_list().get("serving_default", {})
        inputs, outputs = signature.get("inputs", {}), signature.get("outputs", {})
        if set(inputs) != {"token", "position", "keys", "values"} or \
                set(outputs) != {"logits", "new_keys", "new_values"}:
            raise LMEdgeError(f"expected a kv_step_model (inputs token, position, keys, "
                              f"values; outputs logits, new_keys, new_values), got inputs "
                              f"{sorted(inputs)} and outputs {sorted(outputs)}")
        details = {d["index"]: d for d in self.interpreter.get_input_details()}
        self.inputs = {name: details[index] for name, index in inputs.items()}
        self.outputs = dict(outputs)  # name -> tensor index
        _, self.layers, self.context, self.d_model = (int(s) for s in
                                                      self.inputs["keys"]["shape"])
        out_details = {d["index"]: d for d in self.interpreter.get_output_details()}
        self.vocab_size = int(out_details[outputs["logits"]]["shape"][1])
        self.keys = np.zeros(self.inputs["keys"]["shape"], dtype=np.float32)
        self.values = np.zeros_like(self.keys)
        self.position = 0

    @property
    def cache_bytes(self) -> int:
        """Bytes of the cache tensors (keys and values) the model takes as input."""
        return sum(int(np.prod(self.inputs[r]["shape"])) * np.dtype(self.inputs[r]["dtype"])
                   .itemsize for r in ("keys", "values"))

    def reset(self) -> None:
        """Empty the cache (a new text starts at position 0)."""
        self.keys[:] = 0.0
        self.values[:] = 0.0
        self.position = 0

    def step(self, token: int) -> np.ndarray:
        """Feed one token at the next position; return the logits (vocab,) of the
        token after it. Its key and value are written into the cache."""
        if self.position >= self.context:
            raise LMEdgeError(f"the cache is full: {self.context} tokens is this model's "
                              "maximum context; reset() to start a new text")
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)) or \
                not 0 <= token < self.vocab_size:
            raise LMEdgeError(f"token must be an int id in [0, {self.vocab_size - 1}], "
                              f"got {token!r}")
        it = self.interpreter
        it.set_tensor(self.inputs["token"]["index"], np.array([token], dtype=np.int32))
        it.set_tensor(self.inputs["position"]["index"],
                      np.array([self.position], dtype=np.int32))
        it.set_tensor(self.inputs["keys"]["index"], self.keys)
        it.set_tensor(self.inputs["values"]["index"], self.values)
        it.invoke()
        self.keys[0, :, self.position] = it.get_tensor(self.outputs["new_keys"])[0]
        self.values[0, :, self.position] = it.get_tensor(self.outputs["new_values"])[0]
        self.position += 1
        return it.get_tensor(self.outputs["logits"])[0].copy()

    def prefill(self, ids) -> np.ndarray:
        """reset(), then feed `ids` one by one; return the logits after each,
        (len(ids), vocab): comparable with a full forward pass."""
        ids = lm.check_ids(ids, self.vocab_size)
        if ids.ndim != 1 or not 1 <= ids.size <= self.context:
            raise LMEdgeError(f"ids must be a 1-D sequence of 1 to {self.context} token ids, "
                              f"got shape {ids.shape}")
        self.reset()
        return np.stack([self.step(int(t)) for t in ids])

    def generate(self, tokenizer: lm.CharTokenizer, prompt: str, length: int,
                 strategy: str = "greedy", temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0) -> str:
        """Continue `prompt` by `length` characters with the cache: the prompt is
        fed once, then each new character costs one step. The prompt plus the
        generated text must fit the context (no sliding window with a cache of
        absolute positions)."""
        if not isinstance(length, int) or length < 0:
            raise LMEdgeError(f"length must be an int >= 0, got {length!r}")
        if not prompt:
            raise LMEdgeError("the prompt must contain at least one character")
        ids = tokenizer.encode(prompt)
        if ids.size + length > self.context:
            raise LMEdgeError(f"prompt ({ids.size}) + length ({length}) exceeds this cache's "
                              f"context of {self.context} tokens")
        lm.next_token_probs(np.zeros(tokenizer.vocab_size), strategy, temperature, top_k)
        rng = np.random.default_rng(seed)
        logits = self.prefill(ids)[-1]
        out = []
        for k in range(length):
            probs = lm.next_token_probs(logits, strategy, temperature, top_k)
            token = int(np.argmax(probs)) if strategy == "greedy" else \
                int(rng.choice(probs.size, p=probs))
            out.append(token)
            if k < length - 1:
                logits = self.step(token)
        return tokenizer.decode(np.array(out, dtype=np.int32))


# --- the cascade ----------------------------------------------------------------------------


def cascade(device_probs, cloud_probs, targets, thresholds) -> dict[str, np.ndarray]:
    """A device/cloud cascade on next-token predictions: at each position the
    device answers if its confidence (its largest probability) is at least the
    threshold, else the cloud model answers.

    device_probs, cloud_probs: (n, vocab) probabilities; targets: (n,) ids.
    Returns arrays over `thresholds`: "threshold", "deferred" (fraction sent
    to the cloud), "accuracy" (arg-max = target) and "cross_entropy" (nats,
    of the answering model's probability of the target).
    """
    dev, cloud = np.asarray(device_probs, np.float64), np.asarray(cloud_probs, np.float64)
    if dev.ndim != 2 or dev.shape != cloud.shape:
        raise LMEdgeError(f"device_probs and cloud_probs must both be (n, vocab), got "
                          f"{dev.shape} and {cloud.shape}")
    targets = lm.check_ids(targets, dev.shape[1])
    if targets.shape != (dev.shape[0],):
        raise LMEdgeError(f"targets must have shape ({dev.shape[0]},), got {targets.shape}")
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if thresholds.ndim != 1 or not np.isfinite(thresholds).all():
        raise LMEdgeError("thresholds must be a 1-D sequence of finite numbers")
    rows = np.arange(targets.size)
    confidence = dev.max(axis=1)
    right = {"device": dev.argmax(1) == targets, "cloud": cloud.argmax(1) == targets}
    nll = {"device": -np.log(np.maximum(dev[rows, targets], 1e-300)),
           "cloud": -np.log(np.maximum(cloud[rows, targets], 1e-300))}
    out = {k: np.empty(thresholds.size) for k in ("deferred", "accuracy", "cross_entropy")}
    for j, t in enumerate(thresholds):
        defer = confidence < t
        out["deferred"][j] = defer.mean()
        out["accuracy"][j] = np.where(defer, right["cloud"], right["device"]).mean()
        out["cross_entropy"][j] = np.where(defer, nll["cloud"], nll["device"]).mean()
    out["threshold"] = thresholds
    return out


def cascade_latency(deferred, device_ms: float, cloud_ms: float, rtt_ms: float) -> np.ndarray:
    """Mean latency per token (ms) of a cascade: the device always runs; a
    deferred token also pays the network round trip and the cloud model."""
    for name, value in (("device_ms", device_ms), ("cloud_ms", cloud_ms), ("rtt_ms", rtt_ms)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise LMEdgeError(f"{name} must be a number >= 0, got {value!r}")
    deferred = np.asarray(deferred, dtype=np.float64)
    if ((deferred < 0) | (deferred > 1)).any():
        raise LMEdgeError("deferred fractions must lie in [0, 1]")
    return device_ms + deferred * (rtt_ms + cloud_ms)


# --- the scale of real large models -------------------------------------------------------

# Published parameter counts (nominal: the papers' own rounded figures).
PUBLIC_MODELS: dict[str, tuple[float, str]] = {
    "Gemma 2B": (2.5e9, "Gemma Team, 'Gemma: Open Models Based on Gemini Research and "
                        "Technology', 2024 (2.5 B with embeddings)"),
    "Phi-3-mini": (3.8e9, "Abdin et al., 'Phi-3 Technical Report', 2024"),
    "Llama-2 7B": (7e9, "Touvron et al., 'Llama 2: Open Foundation and Fine-Tuned Chat "
                        "Models', 2023"),
    "Llama-2 13B": (13e9, "Touvron et al., 2023"),
    "Llama-2 70B": (70e9, "Touvron et al., 2023"),
    "GPT-3": (175e9, "Brown et al., 'Language Models are Few-Shot Learners', 2020"),
}
BITS = {"fp32": 32, "fp16": 16, "int8": 8, "int4": 4}


def weight_bytes(params: float, bits: int) -> float:
    """Bytes to store `params` weights at `bits` bits each: params x bits / 8
    (no scales, no zero points, no runtime: a lower bound)."""
    if isinstance(params, bool) or not isinstance(params, (int, float, np.integer)) or \
            params < 0:
        raise LMEdgeError(f"params must be a number >= 0, got {params!r}")
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 1:
        raise LMEdgeError(f"bits must be a positive int (e.g. 16, 8, 4), got {bits!r}")
    return float(params) * bits / 8


def scale_table(models: dict[str, float], formats=("fp16", "int8", "int4"),
                ram_gb=(4, 8)) -> list[dict]:
    """One row per model: parameters, the weight memory (GB = 1e9 bytes) in
    each format, and for each phone RAM size the formats whose weights fit
    in it (weights only: the OS, the runtime and the KV cache need more)."""
    if not isinstance(models, dict) or not models:
        raise LMEdgeError("models must be a non-empty dict name -> parameter count")
    unknown = [f for f in formats if f not in BITS]
    if unknown:
        raise LMEdgeError(f"unknown formats {unknown}; known: {list(BITS)}")
    rows = []
    for name, params in models.items():
        row = {"model": name, "params": float(params)}
        for f in formats:
            row[f"{f} GB"] = weight_bytes(params, BITS[f]) / 1e9
        for ram in ram_gb:
            row[f"fits {ram} GB"] = [f for f in formats if row[f"{f} GB"] <= ram]
        rows.append(row)
    return rows


def format_scale_table(rows: list[dict]) -> str:
    """The rows of `scale_table` as an aligned text table."""
    if not rows:
        raise LMEdgeError("no rows to format")
    gb = [k for k in rows[0] if k.endswith(" GB") and not k.startswith("fits")]
    fits = [k for k in rows[0] if k.startswith("fits")]
    lines = [f"{'model':<22}{'parameters':>14}" + "".join(f"{k:>11}" for k in gb)
             + "".join(f"  {k:<18}" for k in fits)]
    for r in rows:
        p = r["params"]
        shown = f"{p / 1e9:,.1f} B" if p >= 1e8 else f"{int(p):,}"
        cells = "".join(f"{r[k]:>11.3g}" if r[k] < 0.01 else f"{r[k]:>11,.2f}" for k in gb)
        lines.append(f"{r['model']:<22}{shown:>14}{cells}"
                     + "".join(f"  {', '.join(r[k]) or '-':<18}" for k in fits))
    return "\n".join(lines)
