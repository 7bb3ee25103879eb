"""A small word-level tokenizer: text -> fixed-length int ids -> text.

    from edgelib.text import WordTokenizer
    tok = WordTokenizer.fit(["turn on the light", "turn off the fan"])
    ids = tok.encode("turn on the fan", max_len=8)   # int32 (8,), 0 = padding
    tok.decode(ids)                                  # 'turn on the fan'

Normalization: lower case; every character other than a-z, 0-9 and the
apostrophe becomes a space; words are split on white space. Id 0 is the
padding token "[PAD]", id 1 is "[UNK]": a word the vocabulary has never seen
(in training) maps to it. Ids 2.. are the known words, most frequent first
(ties in alphabetical order), so the vocabulary is the same on every machine.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1
_NOT_WORD = re.compile(r"[^a-z0-9']+")


def normalize(text: str) -> list[str]:
    """The words of `text`: lower case, punctuation removed."""
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    return _NOT_WORD.sub(" ", text.lower()).split()


class WordTokenizer:
    """Word-level vocabulary with padding and unknown-word ids (see the module doc)."""

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if words[:2] != [PAD, UNK]:
            raise ValueError(f"the vocabulary must start with {PAD!r}, {UNK!r}, got {words[:2]}")
        if len(set(words)) != len(words):
            raise ValueError("the vocabulary has duplicate words")
        self.words: tuple[str, ...] = tuple(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 1) -> WordTokenizer:
        """Build the vocabulary from `texts` (words seen at least `min_count` times)."""
        if not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        counts = Counter(w for text in texts for w in normalize(text))
        kept = sorted((w for w, c in counts.items() if c >= min_count),
                      key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *kept])

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def __len__(self) -> int:
        return len(self.words)

    def tokens(self, text: str) -> list[int]:
        """The ids of the words of `text`, unpadded ([UNK] for unknown words)."""
        return [self.index.get(w, UNK_ID) for w in normalize(text)]

    def encode(self, text: str, max_len: int, truncate: bool = False) -> np.ndarray:
        """int32 ids of shape (max_len,), padded at the end with 0.

        A text with more than `max_len` words raises ValueError, unless
        `truncate=True` (then the extra words are dropped).
        """
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"max_len must be a positive int, got {max_len!r}")
        ids = self.tokens(text)
        if len(ids) > max_len:
            if not truncate:
                raise ValueError(
                    f"the text has {len(ids)} words, more than max_len={max_len}: "
                    f"{text!r} (shorten it or pass truncate=True)"
                )
            ids = ids[:max_len]
        out = np.zeros(max_len, dtype=np.int32)
        out[: len(ids)] = ids
        return out

    def encode_batch(self, texts: Sequence[str], max_len: int, truncate: bool = False
                     ) -> np.ndarray:
        """int32 ids of shape (len(texts), max_len)."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of texts; use encode() for one text")
        return np.stack([self.encode(t, max_len, truncate) for t in texts]) if len(texts) else \
            np.zeros((0, max_len), dtype=np.int32)

    def check_ids(self, ids) -> np.ndarray:
        """Validate token ids (any shape): integers in [0, vocab_size). Returns them as int32."""
        a = np.asarray(ids)
        if a.dtype.kind == "f":
            if not np.isfinite(a).all() or not np.array_equal(a, np.round(a)):
                raise ValueError("token ids must be whole numbers (no NaN, no fractions)")
        elif a.dtype.kind not in "iub":
            raise TypeError(f"token ids must be integers, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= self.vocab_size):
            bad = a[(a < 0) | (a >= self.vocab_size)].ravel()[0]
            raise ValueError(
                f"token id {int(bad)} is outside the vocabulary: ids must lie in "
                f"[0, {self.vocab_size}) (0 = {PAD}, 1 = {UNK})"
            )
        return a.astype(np.int32)

    def decode(self, ids, keep_padding: bool = False) -> str:
        """The words of a 1-D sequence of ids, joined by spaces (padding dropped)."""
        a = self.check_ids(ids)
        if a.ndim != 1:
            raise ValueError(f"decode takes one sequence (1-D ids), got shape {a.shape}")
        return " ".join(self.words[i] for i in a if keep_padding or i != PAD_ID)

    def __repr__(self) -> str:
        return f"WordTokenizer({self.vocab_size} words)"
