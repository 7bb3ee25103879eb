"""A tiny character-level language model: corpus, tokenizer, model, training,
perplexity, sampling, and a saved copy that later chapters reuse.

    from edgelib import lm
    corpus = lm.load_corpus()                    # train / held-out text (fixed split)
    tok = lm.CharTokenizer.ascii()               # 96 characters: newline + printable ASCII
    tiny = lm.load_or_train("artifacts/07")      # the chapter-07 model: load, or train and save
    lm.generate(tiny.model, tiny.tokenizer, "The ", 80, strategy="top_k", top_k=5, seed=0)
    edge = lm.edge_model(tiny.model, tiny.config)  # batch 1, int8-friendly mask: to TFLite

The corpus is the Python language reference as plain English text, the
`pydoc_data.topics` module of CPython (what `help("assert")` prints), frozen
from CPython 3.11.7 in data/pydoc_topics/ so that every machine trains on the
same bytes (see data/README.md). Model: a decoder-only Transformer built from
`edgelib.transformer` (token + position embedding, causal Transformer blocks,
a final layer normalization and a dense layer to one logit per character).

Saved format (stable across Keras versions): `config.json` (vocabulary,
hyperparameters, corpus and split, seed) and `weights.npz` (the weight arrays
in the order `build_model(config)` creates them).

Import after `edgelib.setup()`; TensorFlow is imported only inside the
functions that need it (the tokenizer and the sampling math need NumPy only).
"""

from __future__ import annotations

import copy
import hashlib
import json
import lzma
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .datasets._core import DATA_DIR

CORPUS_NAME = "pydoc_topics"
CORPUS_PYTHON = "3.11.7"
CORPUS_FILE = DATA_DIR / "pydoc_topics" / f"topics-{CORPUS_PYTHON}.json.xz"
CORPUS_SHA256 = "0d9cbbe1254e556fe71c0464451d3525d2093d898c9381e7f9552ff2dd28f681"
CORPUS_LICENSE = "PSF License Version 2 (data/pydoc_topics/LICENSE-PSF.txt)"
HELDOUT_FRACTION = 0.1  # the last 10 % of the prepared text, cut at a paragraph boundary
DEDUP_MIN_CHARS = 80  # a repeated paragraph at least this long is dropped
DEFAULT_DIR = "artifacts/07"  # relative to chapters/, the notebooks' working directory
PRETRAINED_DIR = DATA_DIR / "pretrained" / "tiny_lm"  # written by scripts/pretrain_tiny_lm.py
FORMAT_VERSION = 1

# Typography -> ASCII; any other non-ASCII character becomes "?" (3 in the corpus).
_TYPOGRAPHY = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
               "\u2013": "-", "\u2014": "--", "\u2026": "..."}
ASCII_VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))  # 96 characters
STRATEGIES = ("greedy", "temperature", "top_k")


class LMError(ValueError):
    """Bad input to the language-model helpers; the message says what was expected."""


# --- the corpus ----------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """The prepared corpus: `train` and `heldout` text (a fixed split)."""

    train: str
    heldout: str
    name: str = CORPUS_NAME
    description: str = ""
    license: str = CORPUS_LICENSE
    stats: dict = field(default_factory=dict)

    def summary(self) -> str:
        n = len(self.train) + len(self.heldout)
        return (f"{self.name}: {n:,} characters; train {len(self.train):,}, "
                f"held-out {len(self.heldout):,} ({len(self.heldout) / n:.1%})")


def read_topics(source: str = "frozen") -> dict[str, str]:
    """The raw topics (help topic -> text).

    source="frozen": the copy of CPython 3.11.7's `pydoc_data.topics` in
    data/pydoc_topics/ (checked by SHA-256; the course's default).
    source="installed": this Python's own `pydoc_data.topics` (differs a little
    between Python releases, so results would differ too).
    """
    if source == "installed":
        from pydoc_data.topics import topics

        return dict(topics)
    if source != "frozen":
        raise LMError(f"source must be 'frozen' or 'installed', got {source!r}")
    if not CORPUS_FILE.is_file():
        raise FileNotFoundError(
            f"the frozen corpus {CORPUS_FILE.name} is missing from data/pydoc_topics/; "
            "restore it from the repository, or recreate it with CPython "
            f"{CORPUS_PYTHON}: python data/pydoc_topics/freeze.py"
        )
    content = CORPUS_FILE.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest != CORPUS_SHA256:
        raise LMError(f"{CORPUS_FILE.name} is damaged: SHA-256 {digest}, expected {CORPUS_SHA256}")
    return json.loads(lzma.decompress(content).decode("utf-8"))


def normalize_text(text: str) -> tuple[str, int]:
    """Typographic quotes, dashes and ellipses -> ASCII; tabs -> 4 spaces; any
    other character outside the vocabulary -> "?". Returns (text, replaced)."""
    if not isinstance(text, str):
        raise LMError(f"text must be a str, got {type(text).__name__}")
    for old, new in _TYPOGRAPHY.items():
        text = text.replace(old, new)
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    allowed = set(ASCII_VOCAB)
    bad = sum(ch not in allowed for ch in text)
    if bad:
        text = "".join(ch if ch in allowed else "?" for ch in text)
    return text, bad


def prepare_text(topics: dict[str, str],
                 dedup_min_chars: int = DEDUP_MIN_CHARS) -> tuple[str, dict]:
    """One text from the topics: sorted by name, joined by blank lines, paragraphs
    of at least `dedup_min_chars` characters seen before dropped (many topics
    repeat others: 'if' is a section of 'compound'), then normalized to ASCII."""
    if not topics or not all(isinstance(v, str) for v in topics.values()):
        raise LMError("topics must be a non-empty dict of str -> str")
    seen: set[str] = set()
    kept, dropped = [], 0
    for name in sorted(topics):
        for paragraph in topics[name].split("\n\n"):
            key = paragraph.strip()
            if len(key) >= dedup_min_chars:
                if key in seen:
                    dropped += len(paragraph)
                    continue
                seen.add(key)
            kept.append(paragraph)
    text, replaced = normalize_text("\n\n".join(kept))
    raw = sum(len(v) for v in topics.values())
    return text, {"topics": len(topics), "raw_chars": raw, "duplicate_chars_dropped": dropped,
                  "non_ascii_replaced": replaced, "chars": len(text)}


def split_text(text: str, heldout_fraction: float = HELDOUT_FRACTION) -> tuple[str, str]:
    """(train, heldout): the held-out part is the last `heldout_fraction` of the
    text, starting at the first paragraph boundary after the cut point."""
    if not 0 < heldout_fraction < 0.5:
        raise LMError(f"heldout_fraction must be in (0, 0.5), got {heldout_fraction!r}")
    cut = text.find("\n\n", int(len(text) * (1 - heldout_fraction)))
    if cut < 0:
        raise LMError("the text has no paragraph boundary after the cut point")
    return text[:cut + 1], text[cut + 2:]


def load_corpus(source: str = "frozen", heldout_fraction: float = HELDOUT_FRACTION) -> Corpus:
    """The course's language-model corpus with its fixed train / held-out split."""
    text, stats = prepare_text(read_topics(source))
    train, heldout = split_text(text, heldout_fraction)
    python = CORPUS_PYTHON if source == "frozen" else "installed"
    return Corpus(train=train, heldout=heldout, stats=stats,
                  description=f"Python language reference (pydoc_data.topics, CPython {python})")


# --- the tokenizer ----------------------------------------------------------------------


class CharTokenizer:
    """Characters <-> integer ids (one token per character)."""

    def __init__(self, chars: str):
        if not isinstance(chars, str) or len(chars) < 2:
            raise LMError(f"chars must be a str of at least 2 characters, got {chars!r}")
        if len(set(chars)) != len(chars):
            raise LMError("chars must not repeat a character")
        self.chars = chars
        self._index = {ch: i for i, ch in enumerate(chars)}
        self._table = np.array(list(chars))

    @classmethod
    def ascii(cls) -> CharTokenizer:
        """The course's vocabulary: newline and the 95 printable ASCII characters."""
        return cls(ASCII_VOCAB)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of the characters of `text`; unknown characters are an error."""
        if not isinstance(text, str):
            raise LMError(f"encode expects a str, got {type(text).__name__}")
        try:
            return np.fromiter((self._index[ch] for ch in text), dtype=np.int32,
                               count=len(text))
        except KeyError:
            unknown = sorted({ch for ch in text if ch not in self._index})
            first = min(text.index(ch) for ch in unknown)
            raise LMError(
                f"{len(unknown)} character(s) not in the {self.vocab_size}-character vocabulary: "
                f"{', '.join(map(repr, unknown[:10]))} (first at position {first}); "
                "normalize the text first (lm.normalize_text maps typography to ASCII)"
            ) from None

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of ids; ids outside the vocabulary are an error."""
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise LMError(f"decode expects a 1-D sequence of ids, got shape {ids.shape}")
        if ids.size == 0:
            return ""
        if ids.dtype.kind not in "iu":
            raise LMError(f"token ids must be integers, got dtype {ids.dtype}")
        check_ids(ids, self.vocab_size)
        return "".join(self._table[ids])


def check_ids(ids, vocab_size: int) -> np.ndarray:
    """`ids` as an int32 array, after checking every id is in [0, vocab_size)."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise LMError(f"token ids must be integers, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids[(ids < 0) | (ids >= vocab_size)]
        raise LMError(f"token id {int(bad.flat[0])} is outside the vocabulary: ids must be in "
                      f"[0, {vocab_size - 1}] ({bad.size} bad id(s))")
    return ids.astype(np.int32)


# --- data -----------------------------------------------------------------------------


def make_windows(ids, context: int, count: int | None = None, seed: int = 0,
                 stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs x and next-token targets y, both (N, context) int32.

    count given: `count` windows at random offsets (generator seeded by `seed`),
    the training recipe. count None: consecutive windows every `stride`
    characters (default: `context`, i.e. non-overlapping), for evaluation.
    y is x shifted by one: y[n, t] = ids[start_n + t + 1].
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise LMError(f"ids must be a 1-D integer array, got shape {ids.shape}, "
                      f"dtype {ids.dtype}")
    if not isinstance(context, int) or context < 1:
        raise LMError(f"context must be a positive int, got {context!r}")
    if len(ids) < context + 1:
        raise LMError(f"need at least context + 1 = {context + 1} ids, got {len(ids)}")
    last = len(ids) - context - 1  # the largest valid start
    if count is not None:
        if count < 1:
            raise LMError(f"count must be >= 1, got {count}")
        starts = np.random.default_rng(seed).integers(0, last + 1, size=count)
    else:
        stride = context if stride is None else stride
        if stride < 1:
            raise LMError(f"stride must be >= 1, got {stride}")
        starts = np.arange(0, last + 1, stride)
    offsets = starts[:, None] + np.arange(context + 1)[None]
    block = ids[offsets].astype(np.int32)
    return block[:, :-1], block[:, 1:]


# --- the model ------------------------------------------------------------------------

# The chapter-07 recipe: the model that chapter 17 quantizes and runs on the edge.
CHAPTER_CONFIG: dict = {
    "format": FORMAT_VERSION,
    "corpus": {"name": CORPUS_NAME, "python": CORPUS_PYTHON, "sha256": CORPUS_SHA256,
               "split": "last 10 % of the text (from a paragraph boundary) is held out",
               "heldout_fraction": HELDOUT_FRACTION, "dedup_min_chars": DEDUP_MIN_CHARS},
    "vocab": ASCII_VOCAB,
    "context": 64,
    "d_model": 64,
    "num_heads": 4,
    "d_ff": 256,
    "num_layers": 2,
    "dropout": 0.0,
    "batch_size": 32,
    "steps": 500,
    "learning_rate": 6e-3,
    "warmup_steps": 50,
    "eval_every": 100,
    "seed": 0,
}

_REQUIRED = ("vocab", "context", "d_model", "num_heads", "d_ff", "num_layers", "dropout")


def model_config(d_model: int = 64, num_layers: int = 2, **changes) -> dict:
    """A copy of the chapter's recipe with another size (d_ff = 4 d_model,
    heads = d_model / 16, at least 1) and any other `changes`."""
    config = copy.deepcopy(CHAPTER_CONFIG)
    config.update(d_model=d_model, num_layers=num_layers, d_ff=4 * d_model,
                  num_heads=max(1, d_model // 16))
    unknown = set(changes) - set(config)
    if unknown:
        raise LMError(f"unknown config keys {sorted(unknown)}; known: {sorted(config)}")
    config.update(changes)
    validate_config(config)
    return config


def validate_config(config: dict) -> None:
    """Raise LMError unless `config` describes a model build_model can make."""
    if not isinstance(config, dict):
        raise LMError(f"config must be a dict, got {type(config).__name__}")
    missing = [k for k in _REQUIRED if k not in config]
    if missing:
        raise LMError(f"config lacks {missing}")
    for key in ("context", "d_model", "num_heads", "d_ff", "num_layers"):
        if isinstance(config[key], bool) or not isinstance(config[key], int) or config[key] < 1:
            raise LMError(f"config[{key!r}] must be a positive int, got {config[key]!r}")
    if config["d_model"] % config["num_heads"]:
        raise LMError(f"d_model {config['d_model']} is not divisible by num_heads "
                      f"{config['num_heads']}")
    if not 0 <= config["dropout"] < 1:
        raise LMError(f"dropout must be in [0, 1), got {config['dropout']!r}")
    CharTokenizer(config["vocab"])  # validates the vocabulary


def build_model(config: dict, batch_size: int | None = None, mask_value: float | None = None):
    """The decoder-only Transformer of `config`: int32 ids (batch, context) ->
    logits (batch, context, vocab). batch_size=1 gives the fixed-shape model
    that converts to TFLite (copy the weights in with set_weights, or use
    `edge_model`).

    mask_value None: Keras' causal mask, which adds -1e9 to the attention
    scores of future positions. A number (e.g. EDGE_MASK_VALUE = -100) adds
    that instead: the same float results as long as a row's scores lie
    within about 80 of each other (e^-20 of weight leaks at worst), and an
    int8 converter can keep the resolution of the masked scores (with -1e9
    in the tensor, one int8 step of it is millions wide; see `edge_model`).
    """
    import tf_keras as keras

    from .transformer import PositionalEmbedding, TransformerBlock

    validate_config(config)  # (TransformerBlock checks mask_value)
    vocab = len(config["vocab"])
    ids = keras.layers.Input((config["context"],), batch_size=batch_size, dtype="int32",
                             name="ids")
    x = PositionalEmbedding(vocab, config["context"], config["d_model"], learned=True,
                            name="embedding")(ids)
    for i in range(config["num_layers"]):
        x = TransformerBlock(config["d_model"], config["num_heads"], config["d_ff"],
                             dropout=config["dropout"], causal=True, mask_value=mask_value,
                             name=f"block{i + 1}")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    logits = keras.layers.Dense(vocab, name="logits")(x)
    return keras.Model(ids, logits, name="tiny_lm")


EDGE_MASK_VALUE = -100.0


def edge_model(model, config: dict, mask_value: float = EDGE_MASK_VALUE):
    """The copy of a trained model to convert to TFLite (chapter 17): batch size 1
    (fixed shapes), the same weights, and a causal mask that adds `mask_value`
    to future scores instead of Keras' -1e9.

    Why: full-integer conversion gives each tensor one scale for its whole
    calibrated range. The masked scores tensor holds the real scores (tens at
    most) and the mask constant; with -1e9 one int8 step is about 4 million,
    every real score rounds to the same value and the attention becomes a
    plain average of the past. With -100 the step stays below 1. The float
    outputs are unchanged (to float32 round-off) for scores within about 80
    of each other in a row.
    """
    edge = build_model(config, batch_size=1, mask_value=mask_value)
    weights = model.get_weights()
    expected = [tuple(w.shape) for w in edge.get_weights()]
    if [tuple(w.shape) for w in weights] != expected:
        raise LMError(f"the model's weights do not fit the config: expected shapes {expected}")
    edge.set_weights(weights)
    return edge


def compile_model(model, config: dict, steps: int | None = None):
    """Adam with a linear warm-up then cosine decay to 10 %, cross-entropy on logits."""
    import tf_keras as keras

    steps = config["steps"] if steps is None else steps
    warmup = min(config["warmup_steps"], steps // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, steps - warmup), alpha=0.1,
        warmup_target=config["learning_rate"], warmup_steps=warmup)
    model.compile(keras.optimizers.Adam(schedule),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def train(config: dict | None = None, corpus: Corpus | None = None):
    """Train the model of `config` (default: the chapter's) with its recipe.

    Seeds everything from config["seed"] first, so the same config gives the
    same weights. Returns (model, history): history has "tokens" (training
    tokens seen) and "heldout_loss" (mean cross-entropy, nats, on a fixed
    sample of 256 held-out windows) every `eval_every` steps.
    """
    import tf_keras as keras

    config = copy.deepcopy(CHAPTER_CONFIG if config is None else config)
    validate_config(config)
    for key, low in (("steps", 1), ("batch_size", 1), ("eval_every", 1), ("warmup_steps", 0),
                     ("seed", 0)):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise LMError(f"config[{key!r}] must be an int >= {low}, got {value!r}")
    if not isinstance(config.get("learning_rate"), float) or not config["learning_rate"] > 0:
        raise LMError(f"config['learning_rate'] must be a float > 0, "
                      f"got {config.get('learning_rate')!r}")
    steps, batch, every = config["steps"], config["batch_size"], config["eval_every"]
    if steps % every:
        raise LMError(f"steps ({steps}) must be a multiple of eval_every ({every})")
    corpus = load_corpus() if corpus is None else corpus
    tok = CharTokenizer(config["vocab"])
    keras.utils.set_random_seed(config["seed"])
    x, y = make_windows(tok.encode(corpus.train), config["context"], count=steps * batch,
                        seed=config["seed"])
    hx, hy = make_windows(tok.encode(corpus.heldout), config["context"], count=256,
                          seed=config["seed"] + 1)
    model = compile_model(build_model(config), config)
    history: dict[str, list] = {"tokens": [], "train_loss": [], "heldout_loss": []}
    for k in range(steps // every):  # train `every` steps, then measure
        part = slice(k * every * batch, (k + 1) * every * batch)
        fit = model.fit(x[part], y[part], batch_size=batch, epochs=1, shuffle=False, verbose=0)
        history["tokens"].append((k + 1) * every * batch * config["context"])
        history["train_loss"].append(float(fit.history["loss"][0]))
        history["heldout_loss"].append(float(model.evaluate(hx, hy, batch_size=256, verbose=0)))
    return model, history


def count_params(model) -> int:
    """Trainable parameters of a model."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


# --- evaluation -------------------------------------------------------------------------


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax, stable (the maximum is subtracted first)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def cross_entropy(logits, targets) -> float:
    """Mean cross-entropy in nats of integer `targets` under `logits` (..., V)."""
    logits = np.asarray(logits)
    targets = check_ids(targets, logits.shape[-1])
    if logits.shape[:-1] != targets.shape:
        raise LMError(f"logits {logits.shape} and targets {targets.shape} disagree: "
                      "expected logits of shape targets.shape + (vocab,)")
    logp = np.take_along_axis(log_softmax(logits), targets[..., None].astype(np.int64), axis=-1)
    return float(-logp.mean())


def perplexity(model, ids, context: int | None = None, batch_size: int = 256) -> dict:
    """Cross-entropy (nats/character), bits per character and perplexity of
    `model` on a text given as ids, over non-overlapping windows of `context`
    (each position predicts the next character from what precedes it in its
    window). perplexity = exp(mean cross-entropy)."""
    model_context = int(model.inputs[0].shape[1])
    context = model_context if context is None else context
    if isinstance(context, bool) or not isinstance(context, int) or not 1 <= context:
        raise LMError(f"context must be a positive int, got {context!r}")
    if context != model_context:
        raise LMError(f"this model reads windows of exactly {model_context} tokens, "
                      f"got context={context}")
    vocab = int(model.outputs[0].shape[-1])
    x, y = make_windows(check_ids(ids, vocab), context)
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    ce = cross_entropy(logits, y)
    return {"cross_entropy": ce, "bits_per_char": ce / math.log(2),
            "perplexity": math.exp(ce), "tokens": int(y.size)}


# --- sampling ---------------------------------------------------------------------------


def next_token_probs(logits, strategy: str = "temperature", temperature: float = 1.0,
                     top_k: int | None = None) -> np.ndarray:
    """The distribution the next token is drawn from, given one logit vector.

    greedy:      all mass on the arg-max (ties: the lowest id).
    temperature: p_i = exp(z_i / T) / sum_j exp(z_j / T).
    top_k:       the same, restricted to the k largest logits and renormalized
                 (ties at the k-th value: the lower ids win).
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 1 or z.size < 2:
        raise LMError(f"logits must be a 1-D vector of at least 2 values, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise LMError("logits contain NaN or infinite values")
    if strategy not in STRATEGIES:
        raise LMError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if strategy == "greedy":
        probs = np.zeros_like(z)
        probs[int(np.argmax(z))] = 1.0
        return probs
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not temperature > 0 or not math.isfinite(temperature)):
        raise LMError(f"temperature must be a number > 0, got {temperature!r} "
                      "(use strategy='greedy' for the limit T -> 0)")
    scaled = z / temperature
    if strategy == "top_k":
        if (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                or not 1 <= top_k <= z.size):
            raise LMError(f"top_k must be an int in [1, {z.size}] (the vocabulary size), "
                          f"got {top_k!r}")
        keep = np.argsort(-z, kind="stable")[:top_k]
        mask = np.full(z.shape, -np.inf)
        mask[keep] = 0.0
        scaled = scaled + mask
    elif top_k is not None:
        raise LMError("top_k is only used with strategy='top_k'")
    scaled = scaled - scaled.max()
    p = np.exp(scaled)
    return p / p.sum()


def window(ids, context: int) -> tuple[np.ndarray, int]:
    """A (1, context) int32 model input holding `ids` left-aligned (padded on the
    right with id 0) and the position whose logits predict the next token.
    Padding on the right is harmless: the attention is causal."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0:
        raise LMError(f"ids must be a non-empty 1-D sequence, got shape {ids.shape}")
    if ids.size > context:
        raise LMError(f"the sequence has {ids.size} tokens, more than the context window of "
                      f"{context}; keep the last {context} (the model cannot see further back)")
    x = np.zeros((1, context), dtype=np.int32)
    x[0, :ids.size] = ids
    return x, ids.size - 1


def keras_logits_fn(model) -> Callable[[np.ndarray], np.ndarray]:
    """A fast function (1, context) int32 -> (1, context, vocab) logits for a Keras model."""
    import tensorflow as tf

    cached = getattr(model, "_edgelib_logits_fn", None)
    if cached is not None:
        return cached
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def fn(x: np.ndarray) -> np.ndarray:
        return call(tf.constant(x)).numpy()

    model._edgelib_logits_fn = fn  # one traced function per model, reused by every call
    return fn


def next_logits(model_or_fn, ids, context: int, vocab_size: int) -> np.ndarray:
    """Logits (vocab,) of the token after `ids` (1-D, at most `context` long)."""
    fn = _as_logits_fn(model_or_fn)
    x, position = window(check_ids(ids, vocab_size), context)
    out = np.asarray(fn(x))
    if out.shape != (1, context, vocab_size):
        raise LMError(f"the model returned shape {out.shape}, expected (1, {context}, "
                      f"{vocab_size})")
    return out[0, position]


def _as_logits_fn(model_or_fn):
    if hasattr(model_or_fn, "layers") and hasattr(model_or_fn, "predict"):
        return keras_logits_fn(model_or_fn)
    if not callable(model_or_fn):
        raise LMError("expected a Keras model or a function (1, context) ids -> logits")
    return model_or_fn


def generate(model_or_fn, tokenizer: CharTokenizer, prompt: str, length: int,
             strategy: str = "greedy", temperature: float = 1.0, top_k: int | None = None,
             seed: int = 0, context: int | None = None) -> str:
    """Continue `prompt` by `length` characters, one at a time.

    model_or_fn: a Keras model, or any function mapping a (1, context) int32
    window to (1, context, vocab) logits (e.g. a TFLite model on the edge; then
    `context` must be given). The window slides: the model always sees the last
    `context` characters. Sampling uses NumPy's generator seeded by `seed`, so
    the same call gives the same text.
    """
    if context is None:
        if not hasattr(model_or_fn, "inputs"):
            raise LMError("give `context` when passing a function instead of a Keras model")
        context = int(model_or_fn.inputs[0].shape[1])
    if not isinstance(length, int) or length < 0:
        raise LMError(f"length must be an int >= 0, got {length!r}")
    if not prompt:
        raise LMError("the prompt must contain at least one character")
    ids = list(tokenizer.encode(prompt))
    if len(ids) > context:
        raise LMError(f"the prompt has {len(ids)} characters, more than the context window "
                      f"of {context}")
    next_token_probs(np.zeros(tokenizer.vocab_size), strategy, temperature, top_k)  # validate
    fn = _as_logits_fn(model_or_fn)
    rng = np.random.default_rng(seed)
    for _ in range(length):
        logits = next_logits(fn, ids[-context:], context, tokenizer.vocab_size)
        probs = next_token_probs(logits, strategy, temperature, top_k)
        token = int(np.argmax(probs)) if strategy == "greedy" else \
            int(rng.choice(probs.size, p=probs))
        ids.append(token)
    return tokenizer.decode(np.array(ids[len(prompt):], dtype=np.int32))


# --- saving, loading, and the shared chapter model ---------------------------------------


@dataclass
class TinyLM:
    """A trained model with its config and tokenizer; `source` says where it came from
    ("loaded" from disk or "trained" now)."""

    model: object
    config: dict
    tokenizer: CharTokenizer
    source: str


def save(model, config: dict, directory: str | Path = DEFAULT_DIR) -> Path:
    """Write config.json and weights.npz to `directory` (created); return it."""
    validate_config(config)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = model.get_weights()
    stored = dict(config, weight_shapes=[list(w.shape) for w in weights],
                  params=count_params(model))
    tmp = directory / "weights.tmp.npz"
    np.savez(tmp, *weights)
    tmp.replace(directory / "weights.npz")
    (directory / "config.json").write_text(json.dumps(stored, indent=1))
    return directory


def load(directory: str | Path = DEFAULT_DIR, batch_size: int | None = None) -> TinyLM:
    """Rebuild the model saved in `directory`; raise LMError / FileNotFoundError
    if a file is missing or does not fit the config. For TFLite conversion use
    `edge_model(loaded.model, loaded.config)` (batch 1 and an int8-friendly mask)."""
    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "weights.npz"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"no saved language model: {path.name} is missing in "
                                    f"{directory}")
    try:
        stored = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise LMError(f"{config_path.name} is not valid JSON: {exc}") from exc
    if not isinstance(stored, dict):
        raise LMError(f"{config_path.name} must hold a JSON object, got {type(stored).__name__}")
    if stored.get("format") != FORMAT_VERSION:
        raise LMError(f"saved format {stored.get('format')!r}, this edgelib reads "
                      f"{FORMAT_VERSION}")
    shapes = stored.pop("weight_shapes", None)
    stored.pop("params", None)
    try:
        with np.load(weights_path) as archive:
            weights = [archive[f"arr_{i}"] for i in range(len(archive.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise LMError(f"{weights_path.name} cannot be read: {exc}") from exc
    model = build_model(stored, batch_size=batch_size)
    expected = [list(w.shape) for w in model.get_weights()]
    found = [list(w.shape) for w in weights]
    if found != expected or (shapes is not None and shapes != expected):
        raise LMError(f"the saved weights do not fit the config: {len(found)} arrays, "
                      f"expected {len(expected)} with shapes {expected}")
    if not all(np.isfinite(w).all() for w in weights):
        raise LMError("the saved weights contain NaN or infinite values")
    model.set_weights(weights)
    return TinyLM(model, stored, CharTokenizer(stored["vocab"]), "loaded")


def load_or_train(path: str | Path = DEFAULT_DIR, config: dict | None = None,
                  corpus: Corpus | None = None) -> TinyLM:
    """The chapter-07 language model: loaded from `path` if a valid copy made
    with `config` (default: the chapter's recipe) is there; else trained with
    that recipe (under a minute on two cores) and saved to `path`."""
    config = copy.deepcopy(CHAPTER_CONFIG if config is None else config)
    validate_config(config)
    try:
        saved = load(path)
        if saved.config == config:
            return saved
    except (FileNotFoundError, LMError):
        pass
    model, _ = train(config, corpus)
    save(model, config, path)
    return TinyLM(model, config, CharTokenizer(config["vocab"]), "trained")


def pretrained(directory: str | Path | None = None) -> TinyLM:
    """The language model the course ships (data/pretrained/tiny_lm/): chapter 07's
    recipe, `CHAPTER_CONFIG` at seed 0, trained once by `scripts/pretrain_tiny_lm.py`.
    Raises FileNotFoundError (with how to rebuild it) if it is missing, and LMError
    if its config is not the chapter's recipe."""
    directory = Path(PRETRAINED_DIR if directory is None else directory)
    try:
        shipped = load(directory)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}; the shipped language model belongs in {directory}: "
                                "rebuild it with `.venv/bin/python scripts/pretrain_tiny_lm.py` "
                                "(under a minute of CPU)") from exc
    if shipped.config != CHAPTER_CONFIG:
        differ = sorted(k for k in set(shipped.config) | set(CHAPTER_CONFIG)
                        if shipped.config.get(k) != CHAPTER_CONFIG.get(k))
        raise LMError(f"the model in {directory} was not made with lm.CHAPTER_CONFIG (differs in "
                      f"{differ}); rebuild it with `.venv/bin/python scripts/pretrain_tiny_lm.py`")
    return TinyLM(shipped.model, shipped.config, shipped.tokenizer, "shipped")
