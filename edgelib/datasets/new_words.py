"""New spoken words for few-shot transfer (chapter 12): light, music, open, close.

`load("speech_commands_new_words")`: words the keyword spotter of
`load("speech_commands")` never heard, spoken by espeak-ng (synthetic
speech) by speakers of the main set's training and test splits, turned into
1-second clips by the same augmentation (offset, loudness, background noise).
"""

from __future__ import annotations

import numpy as np

from ..audio import CLIP_SAMPLES
from ._core import DATA_DIR, Dataset, DatasetError, Split, register
from .speech_commands import (
    AUGMENT_SEED,
    NOISES,
    _noise,
    _noise_bank,
    _read_store,
    _speech_in_noise,
)

DATA_FILE = DATA_DIR / "speech_commands" / "new_words_espeak.npz"
SPLIT_SEED = {"train": 1, "test": 2}  # augmentation streams, apart from the main set's


def _clips(store: dict, split: str, copies: int, bank: dict) -> tuple[Split, dict]:
    """`copies` clips of every utterance of `split`'s speakers, ordered by copy, speaker, word."""
    speakers = [str(s) for s in store["speakers"]]
    in_split = [u for u in range(len(store["lengths"]))
                if store["speaker_split"][store["speaker"][u]] == split]
    xs, ys, info = [], [], {"speaker": [], "noise": [], "snr_db": [], "copy": []}
    for copy in range(copies):
        rng = np.random.default_rng([AUGMENT_SEED, 100 + SPLIT_SEED[split], copy])
        for u in in_split:
            kind = NOISES[rng.integers(len(NOISES))]
            noise = _noise(kind, bank, rng)
            clip, snr = _speech_in_noise(store, u, noise, rng)
            xs.append(np.clip(clip, -1.0, 1.0).astype(np.float32))
            ys.append(int(store["word"][u]))
            info["speaker"].append(speakers[int(store["speaker"][u])])
            info["noise"].append(kind)
            info["snr_db"].append(float(snr))
            info["copy"].append(copy)
    return Split(np.stack(xs), np.array(ys, dtype=np.int64)), {k: np.array(v)
                                                              for k, v in info.items()}


@register(
    "speech_commands_new_words",
    "new spoken words (light, music, open, close; espeak-ng) for few-shot transfer, 1 s at 16 kHz",
)
def load_new_words(train_copies: int = 1, test_copies: int = 2) -> Dataset:
    """New keywords for few-shot transfer learning, SYNTHETIC speech (espeak-ng), offline.

    Classes: light, music, open, close: none of them is a command or an
    unknown word of `load("speech_commands")`. Speakers: 56 of the main
    set's training speakers (56 training timbres, one accent each) and 32 of
    its test speakers (the 16 test timbres, 2 accents each); each says every
    word once. Train and test speakers are disjoint and no test timbre occurs
    in training (of either data set). There is no validation split (empty).
    Clips: `train_copies` / `test_copies` 1-second clips per utterance, with
    the main set's augmentation (random offset, peak level -24..-1 dBFS,
    white / pink / brown / hum noise at 5..40 dB SNR) from fixed seeds; with
    train_copies=1, the training examples of a word are its 56 speakers.
    x: float32 (N, 16000) in [-1, 1], 16 kHz; y: int64 labels 0..3.
    extra: voices (speakers per split), clip_info (speaker, noise, snr_db,
    copy per clip), espeak_ng (version), synthetic=True.
    Source: data/speech_commands/new_words_espeak.npz, written by
    `python data/speech_commands/generate.py --new-words`.
    """
    for name, value in (("train_copies", train_copies), ("test_copies", test_copies)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
            raise DatasetError(f"{name} must be an int in 1..8, got {value!r}")
    store = _read_store(DATA_FILE)
    bank = _noise_bank(AUGMENT_SEED)
    train, info_train = _clips(store, "train", train_copies, bank)
    test, info_test = _clips(store, "test", test_copies, bank)
    voices = {split: [str(s) for s, p in zip(store["speakers"], store["speaker_split"],
                                             strict=True) if p == split]
              for split in ("train", "test")}
    return Dataset(
        name="speech_commands_new_words",
        train=train,
        val=Split(np.zeros((0, CLIP_SAMPLES), np.float32), np.zeros(0, np.int64)),
        test=test,
        classes=tuple(str(w) for w in store["words"]),
        description="new spoken words (espeak-ng) for few-shot transfer, split by speaker",
        source="synthesized with espeak-ng by data/speech_commands/generate.py --new-words",
        license="espeak-ng output (espeak-ng is GPL-3.0-or-later)",
        extra={"voices": voices, "clip_info": {"train": info_train, "test": info_test},
               "espeak_ng": store["meta"]["espeak_ng"], "synthetic": True},
    )
