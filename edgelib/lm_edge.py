"""The chapter-07 language model at the edge (chapter 17): TFLite export,
perplexity and generation on the LiteRT runtime alone, one model with
prefill, decode and verify signatures over a KV cache, a wide random-weight
model to time the memory wall, and the sizes of real large models.

    from edgelib import lm, lm_edge
    tiny = lm.load_or_train("artifacts/07")
    blob = lm_edge.export(tiny.model, tiny.config, "int8", calibration=train_ids)
    edge = lm_edge.EdgeLM(blob)                      # LiteRT only, no TensorFlow
    edge.perplexity(heldout_ids)["perplexity"]

    cached = lm_edge.CachedLM(lm_edge.export_cached(tiny.model, tiny.config))
    cached.prefill(prompt_ids)                       # one call for the prompt
    cached.step(token)                               # one call per new token
    cached.generate(tok, "The ", 40, strategy="top_k", top_k=5, seed=0)

The edge side (`EdgeLM`, `CachedLM`, `kv_cache_bytes`, `softmax`) needs
NumPy and `ai_edge_litert` only: this module imports TensorFlow inside the
functions that build or convert models (`export`, `export_cached`,
`wide_decoder`), never at import time.
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


def block_weights(model, config: dict) -> dict:
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


def matrix_inputs(model, windows, batch_size: int = 50) -> dict[str, np.ndarray]:
    """What reaches each weight matrix of `model` while it reads `windows`
    (count, context) of token ids: {kernel variable name: (rows, inputs) array},
    one row per position and window, in the layout of the matrix's input axes
    (an attention output projection's (heads, head size) input is flattened).
    The calibration statistics of data-aware quantization (chapter 17's GPTQ)
    are built from these. Recorded by wrapping, for the duration of the call,
    every layer that owns a kernel."""
    import tf_keras as keras

    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[0] < 1:
        raise LMEdgeError(f"windows must be a (count, context) array of token ids with "
                          f"count >= 1, got shape {windows.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LMEdgeError(f"batch_size must be an int >= 1, got {batch_size!r}")
    layers = [m for m in model.submodules if isinstance(m, keras.layers.Layer)
              and getattr(m, "kernel", None) is not None]
    if not layers:
        raise LMEdgeError("the model has no layer with a kernel to record the inputs of")
    recorded: dict[str, list[np.ndarray]] = {layer.kernel.name: [] for layer in layers}

    def recording(layer, call):
        kernel_shape = tuple(layer.kernel.shape)

        def wrapped(inputs, *args, **kwargs):
            x = np.asarray(inputs)
            axes = max(n for n in range(1, len(kernel_shape))
                       if x.shape[-n:] == kernel_shape[:n])     # the input axes of the kernel
            recorded[layer.kernel.name].append(x.reshape(-1, math.prod(kernel_shape[:axes])))
            return call(inputs, *args, **kwargs)
        return wrapped

    for layer in layers:
        layer.call = recording(layer, layer.call)
    try:
        for start in range(0, len(windows), batch_size):
            model(windows[start:start + batch_size], training=False)
    finally:
        for layer in layers:
            del layer.call                                # the class's own call again
    return {name: np.concatenate(rows) for name, rows in recorded.items()}


def _saved_model_to_tflite(module, signatures: dict) -> bytes:
    """Convert a tf.Module with several signatures (name -> concrete function)
    to ONE .tflite file through a SavedModel (the converter reads several
    signatures only from one); variables shared by the signatures are stored
    once."""
    import tempfile

    import tensorflow as tf

    from .environment import quiet_native_stderr

    with tempfile.TemporaryDirectory() as folder:
        tf.saved_model.save(module, folder, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder,
                                                             signature_keys=list(signatures))
        with quiet_native_stderr():
            return converter.convert()


def export_cached(model, config: dict, chunks: dict[str, int] | None = None,
                  mask_value: float = lm.EDGE_MASK_VALUE) -> bytes:
    """The trained language model as ONE .tflite file with a KV cache kept by
    the caller and one signature per entry of `chunks` (name -> K tokens),
    default {"decode": 1, "verify": 8, "prefill": context}. Every signature
    runs the same computation on K tokens at positions start .. start+K-1:

        inputs   tokens (1, K) int32, start (1,) int32,
                 keys, values (1, layers, context, d_model) float32: the cache
        outputs  logits (1, K, vocab): the next-token logits after each token,
                 keys, values: the cache with slots start .. start+K-1 written

    Position p attends to the cache slots 0 .. p (the earlier tokens and
    itself); later slots are masked (score + `mask_value`). Positions past the
    context (padding) take the last position's embedding and are not written
    into the cache; their logits mean nothing. The weights are
    variables shared by the signatures, stored once in the file.
    """
    import tensorflow as tf

    lm.validate_config(config)
    w = block_weights(model, config)
    L, C, d, H = (config["num_layers"], config["context"], config["d_model"],
                  config["num_heads"])
    chunks = {"decode": 1, "verify": 8, "prefill": C} if chunks is None else dict(chunks)
    for name, k in chunks.items():
        if not name.isidentifier() or isinstance(k, bool) or not isinstance(k, int) \
                or not 1 <= k <= C:
            raise LMEdgeError(f"chunks must map signature names to K in [1, {C}], got "
                              f"{name!r}: {k!r}")
    kd = d // H

    class CachedTransformer(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.nest.map_structure(
                lambda a: tf.Variable(np.asarray(a, np.float32)) if isinstance(a, np.ndarray)
                else a, w)

        def run(self, tokens, start, keys, values):
            w = self.w
            k_len = tokens.shape[1]
            pos = start[0] + tf.range(k_len)                                 # (K,)
            onehot = tf.one_hot(pos, C, dtype=tf.float32)                    # (K, C)
            written = tf.reduce_max(onehot, axis=0)[:, None]                 # (C, 1)
            allowed = tf.cast(tf.range(C)[None] <= pos[:, None], tf.float32)
            bias = (1.0 - allowed) * mask_value                              # (K, C)
            x = tf.gather(w["token"], tokens[0]) + tf.gather(w["position"],
                                                              tf.minimum(pos, C - 1))

            def norm(x, gamma, beta, eps):
                mean = tf.reduce_mean(x, axis=-1, keepdims=True)
                var = tf.reduce_mean(tf.square(x - mean), axis=-1, keepdims=True)
                return (x - mean) * tf.math.rsqrt(var + eps) * gamma + beta

            def dense(x, kernel, bias):
                return tf.matmul(x, kernel) + bias

            new_keys, new_values = [], []
            for i, b in enumerate(w["blocks"]):
                h = norm(x, *b["ln1"])
                q = dense(h, *b["q"]) / math.sqrt(kd)                       # (K, d)
                k, v = dense(h, *b["k"]), dense(h, *b["v"])
                keys_i = keys[0, i] * (1.0 - written) + tf.matmul(onehot, k, transpose_a=True)
                vals_i = values[0, i] * (1.0 - written) + tf.matmul(onehot, v, transpose_a=True)
                new_keys.append(keys_i)
                new_values.append(vals_i)
                qh = tf.transpose(tf.reshape(q, (k_len, H, kd)), (1, 0, 2))     # (H, K, kd)
                kh = tf.transpose(tf.reshape(keys_i, (C, H, kd)), (1, 2, 0))    # (H, kd, C)
                vh = tf.transpose(tf.reshape(vals_i, (C, H, kd)), (1, 0, 2))    # (H, C, kd)
                scores = tf.matmul(qh, kh) + bias[None]                         # (H, K, C)
                att = tf.matmul(tf.nn.softmax(scores, axis=-1), vh)             # (H, K, kd)
                x = x + dense(tf.reshape(tf.transpose(att, (1, 0, 2)), (k_len, d)), *b["o"])
                h = norm(x, *b["ln2"])
                x = x + dense(tf.nn.relu(dense(h, *b["ffn_in"])), *b["ffn_out"])
            logits = dense(norm(x, *w["final"]), *w["logits"])
            return {"logits": logits[None], "keys": tf.stack(new_keys)[None],
                    "values": tf.stack(new_values)[None]}

    module = CachedTransformer()
    signatures = {}
    for name, k in chunks.items():
        spec = [tf.TensorSpec((1, k), tf.int32, name="tokens"),
                tf.TensorSpec((1,), tf.int32, name="start"),
                tf.TensorSpec((1, L, C, d), tf.float32, name="keys"),
                tf.TensorSpec((1, L, C, d), tf.float32, name="values")]
        signatures[name] = tf.function(module.run, input_signature=spec) \
            .get_concrete_function()
    return _saved_model_to_tflite(module, signatures)


class CachedLM:
    """A language model exported by `export_cached` on LiteRT, with its KV
    cache in NumPy. No TensorFlow.

    `chunk(ids)` reads the next tokens at positions position .. position+K-1
    with the smallest signature that holds them (padding the rest), writes
    their keys and values into the cache and returns their logits (K, vocab);
    `prefill(ids)` is reset() then chunk(ids); `step(token)` one token.
    Setting `position` back rolls the cache back (the slots past it are
    masked, and overwritten by the next tokens)."""

    def __init__(self, model: str | Path | bytes, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        from .environment import quiet_native_stderr

        self.content = read_model_bytes(model)
        with quiet_native_stderr():
            self.interpreter = Interpreter(model_content=self.content, num_threads=threads)
        signatures = self.interpreter.get_signature_list()
        self.runners, self.chunk_sizes = {}, {}
        for name, io in signatures.items():
            if sorted(io["inputs"]) != ["keys", "start", "tokens", "values"] or \
                    sorted(io["outputs"]) != ["keys", "logits", "values"]:
                raise LMEdgeError(f"expected a model of export_cached (inputs tokens, start, "
                                  f"keys, values; outputs logits, keys, values), got signature "
                                  f"{name!r} with inputs {sorted(io['inputs'])} and outputs "
                                  f"{sorted(io['outputs'])}")
            runner = self.interpreter.get_signature_runner(name)
            details = runner.get_input_details()
            self.runners[name] = runner
            self.chunk_sizes[name] = int(details["tokens"]["shape"][1])
        if not self.runners:
            raise LMEdgeError("the model has no signatures; expected a model of export_cached")
        shape = tuple(int(s) for s in details["keys"]["shape"])
        _, self.layers, self.context, self.d_model = shape
        out = self.runners[name].get_output_details()["logits"]["shape"]
        self.vocab_size = int(out[2])
        self.keys = np.zeros(shape, dtype=np.float32)
        self.values = np.zeros_like(self.keys)
        self.position = 0

    @property
    def cache_bytes(self) -> int:
        """Bytes of the cache (keys and values)."""
        return self.keys.nbytes + self.values.nbytes

    def reset(self) -> None:
        """Empty the cache (a new text starts at position 0)."""
        self.keys[:] = 0.0
        self.values[:] = 0.0
        self.position = 0

    def signature_for(self, count: int) -> str:
        """The signature with the fewest tokens that holds `count` tokens."""
        fits = [(k, name) for name, k in self.chunk_sizes.items() if k >= count]
        if not fits:
            raise LMEdgeError(f"no signature holds {count} tokens (the largest holds "
                              f"{max(self.chunk_sizes.values())})")
        return min(fits)[1]

    def chunk(self, ids, signature: str | None = None) -> np.ndarray:
        """Read `ids` at the next positions in one call of `signature` (default:
        the smallest that holds them); return their logits (len(ids), vocab)."""
        ids = lm.check_ids(ids, self.vocab_size)
        if ids.ndim != 1 or ids.size < 1:
            raise LMEdgeError(f"ids must be a 1-D sequence of at least one token id, got "
                              f"shape {ids.shape}")
        if self.position + ids.size > self.context:
            raise LMEdgeError(f"the cache holds {self.context} tokens: {self.position} are "
                              f"in it and {ids.size} more do not fit; reset() or roll back "
                              "position")
        name = self.signature_for(ids.size) if signature is None else signature
        if name not in self.chunk_sizes or self.chunk_sizes[name] < ids.size:
            raise LMEdgeError(f"signature {name!r} does not hold {ids.size} tokens; "
                              f"signatures: {self.chunk_sizes}")
        tokens = np.zeros((1, self.chunk_sizes[name]), dtype=np.int32)
        tokens[0, :ids.size] = ids
        out = self.runners[name](tokens=tokens, start=np.array([self.position], np.int32),
                                 keys=self.keys, values=self.values)
        self.keys, self.values = out["keys"], out["values"]
        self.position += int(ids.size)
        return out["logits"][0, :ids.size]

    def step(self, token: int) -> np.ndarray:
        """Read one token at the next position; return the logits (vocab,) after it."""
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
            raise LMEdgeError(f"token must be an int id, got {token!r}")
        return self.chunk(np.array([token]))[0]

    def prefill(self, ids, signature: str | None = None) -> np.ndarray:
        """reset(), then read the prompt `ids` in one call; return the logits after
        each token, (len(ids), vocab): comparable with a full forward pass."""
        self.reset()
        return self.chunk(ids, signature)

    def generate(self, tokenizer: lm.CharTokenizer, prompt: str, length: int,
                 strategy: str = "greedy", temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0) -> str:
        """Continue `prompt` by `length` characters: one prefill call for the
        prompt, then one decode step per character. The prompt plus the text
        must fit the context (a cache of absolute positions does not slide)."""
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


def wide_decoder(d_model: int, layers: int, seed: int = 0) -> bytes:
    """A float32 .tflite stack of `layers` dense d_model x d_model layers with
    random weights (ReLU between), rows (n, d_model) -> (n, d_model) with n
    free (resize the input): the weight traffic of a decoder of
    layers x d_model^2 parameters, to time, not to train."""
    import tensorflow as tf

    for name, value in (("d_model", d_model), ("layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LMEdgeError(f"{name} must be a positive int, got {value!r}")
    rng = np.random.default_rng(seed)
    module = tf.Module()
    module.kernels = [tf.Variable(rng.standard_normal((d_model, d_model), dtype=np.float32)
                                  * np.float32(d_model ** -0.5)) for _ in range(layers)]

    @tf.function(input_signature=[tf.TensorSpec((None, d_model), tf.float32, name="x")])
    def forward(x):
        for kernel in module.kernels:
            x = tf.nn.relu(tf.matmul(x, kernel))
        return {"y": x}

    return _saved_model_to_tflite(module, {"serving_default": forward.get_concrete_function()})


# --- real large models -------------------------------------------------------------------

# Published sizes of real models: parameters (as counted in the model card or
# paper), layers, key/value heads, head size and context length, with sources.
PUBLIC_MODELS: dict[str, dict] = {
    "Llama-3.2 1B": dict(params=1.24e9, layers=16, kv_heads=8, head_dim=64, context=131072,
                         source="Meta, Llama 3.2 model card, 2024 (GQA: 32 query, 8 kv heads)"),
    "Gemma 2B": dict(params=2.51e9, layers=18, kv_heads=1, head_dim=256, context=8192,
                     source="Gemma Team, 'Gemma: Open Models Based on Gemini Research and "
                            "Technology', 2024 (multi-query attention; with embeddings)"),
    "Phi-3-mini": dict(params=3.8e9, layers=32, kv_heads=32, head_dim=96, context=4096,
                       source="Abdin et al., 'Phi-3 Technical Report', 2024"),
    "Llama-2 7B": dict(params=6.74e9, layers=32, kv_heads=32, head_dim=128, context=4096,
                       source="Touvron et al., 'Llama 2: Open Foundation and Fine-Tuned Chat "
                              "Models', 2023"),
    "Llama-2 13B": dict(params=13.0e9, layers=40, kv_heads=40, head_dim=128, context=4096,
                        source="Touvron et al., 2023"),
    "Llama-2 70B": dict(params=69.0e9, layers=80, kv_heads=8, head_dim=128, context=4096,
                        source="Touvron et al., 2023 (GQA: 64 query, 8 kv heads)"),
}
