"""Synthesize the course's spoken-commands data set with espeak-ng.

    apt-get install -y espeak-ng          # the synthesizer (GPL-3)
    python data/speech_commands/generate.py

Writes data/speech_commands/speech_commands_espeak.npz: every clean
utterance (one word, one synthetic speaker), resampled to 16 kHz, trimmed of
leading and trailing silence, peak-normalized and stored as 8-bit mu-law.
The loader (`edgelib.datasets.load("speech_commands")`) turns them into
1-second clips: random time offset, loudness and background noise, all
from fixed seeds. The settings below are the exact ones of the committed
file. espeak-ng is deterministic for a given version, so the same version
regenerates the same bytes (the version used is stored in the file).

A "speaker" is an espeak-ng voice (an accent: en-us, en-gb-scotland, or a
non-English voice reading English words) combined with a voice variant
(the timbre: m1..m8, f1..f5, klatt, whisper, ...). Variants are split into
train / validation / test groups, so the test speakers have timbres that
never occur in training (and every speaker lives in one split only).

    python data/speech_commands/generate.py --new-words

writes data/speech_commands/new_words_espeak.npz instead: NEW_WORDS (words
that are neither commands nor unknown words of the main set, for chapter
12's few-shot transfer), each said once by NEW_WORDS_TRAIN_SPEAKERS
speakers of the training split and NEW_WORDS_TEST_SPEAKERS of the test
split (the main set's speakers, same split, so train and test speakers stay
disjoint and test timbres never occur in training), same settings and
storage. The main file is not touched.
"""

from __future__ import annotations

import json
import lzma
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from edgelib.audio import mu_law_encode  # noqa: E402  (the course's own 8-bit mu-law)

# ---------------------------------------------------------------- settings
SEED = 20241113
SAMPLE_RATE = 16000  # Hz; espeak-ng speaks at 22050 Hz, resampled by 320/441
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = (
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "learn", "follow", "forward", "backward", "visual",
)  # fmt: skip
# accents: English voices, and non-English voices reading the English words
ACCENTS_ENGLISH = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-gb-x-rp", "en-029", "en-us-nyc",
)  # fmt: skip
ACCENTS_OTHER = ("de", "nl", "sv", "es", "it", "fr-fr", "pl", "pt-br")
# every variant file of espeak-ng 1.51 (voices/!v) except "Mr serious" (a space in its name)
VARIANTS = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Demonic", "Denis", "Diogo",
    "Gene", "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike",
    "Nguyen", "RicishayMax", "RicishayMax2", "RicishayMax3", "Storm", "Tweaky", "UniRobot",
    "adam", "anika", "anikaRobot", "announcer", "antonio", "aunty", "belinda", "benjamin",
    "boris", "caleb", "croak", "david", "ed", "edward", "edward2", "f1", "f2", "f3", "f4", "f5",
    "fast", "grandma", "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john",
    "kaukovalta", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "linda", "m1",
    "m2", "m3", "m4", "m5", "m6", "m7", "m8", "marcelo", "max", "michel", "miguel", "norbert",
    "pablo", "paul", "pedro", "quincy", "rob", "robert", "robosoft", "robosoft2", "robosoft3",
    "robosoft4", "robosoft5", "robosoft6", "robosoft7", "robosoft8", "sandro", "shelby",
    "steph", "steph2", "steph3", "travis", "victor", "whisper", "whisperf", "zac",
)  # fmt: skip
VAL_VARIANTS = 12  # variants held out for validation
TEST_VARIANTS = 16  # variants held out for test (the rest train)
ENGLISH_ACCENTS_PER_VARIANT = 2  # each variant speaks with 2 English accents ...
OTHER_ACCENTS_PER_VARIANT = 1  # ... and 1 non-English one: 3 speakers per variant
UNKNOWN_PER_SPEAKER = 3  # unknown words said by each speaker (commands: each once)
RATE_WPM = (120, 230)  # espeak-ng -s, uniform integer (default 175)
PITCH = (15, 85)  # espeak-ng -p, uniform integer 0..99 (default 50)
PUNCTUATION = ("", ".", "!", "?")  # intonation: plain, falling, emphatic, rising
TRIM_DB = -40.0  # trim leading/trailing 10 ms frames quieter than peak frame + TRIM_DB
TRIM_MARGIN_MS = 20  # keep this much before the first and after the last loud frame
MAX_SECONDS = 0.95  # longer utterances are re-synthesized 20 % faster
LZMA_PRESET = 9 | lzma.PRESET_EXTREME  # the mu-law byte stream is xz-compressed
OUT = Path(__file__).resolve().parent / "speech_commands_espeak.npz"
# --new-words (chapter 12): words the keyword spotter never heard
NEW_WORDS = ("light", "music", "open", "close")
NEW_WORDS_SEED = 20261124
NEW_WORDS_TRAIN_SPEAKERS = 56  # 56 of the 72 training variants, one speaker (accent) each
NEW_WORDS_TEST_SPEAKERS = 32  # two speakers (accents) per test variant (16 variants)
OUT_NEW_WORDS = Path(__file__).resolve().parent / "new_words_espeak.npz"
# -------------------------------------------------------------------------


def synthesize(word: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """One word spoken by espeak-ng -> float32 at 16 kHz, trimmed, peak 1."""
    cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", word]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    if raw[:4] != b"RIFF" or raw[36:40] != b"data":
        raise RuntimeError(f"unexpected espeak-ng output for {cmd}")
    pcm = np.frombuffer(raw[44:], dtype="<i2").astype(np.float64) / 32768.0
    audio = resample_poly(pcm, 320, 441)  # 22050 Hz -> 16000 Hz
    frame = SAMPLE_RATE // 100
    n = len(audio) // frame
    energy = 10 * np.log10((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() + TRIM_DB)
    margin = TRIM_MARGIN_MS * SAMPLE_RATE // 1000
    start = max(loud[0] * frame - margin, 0)
    stop = min((loud[-1] + 1) * frame + margin, len(audio))
    audio = audio[start:stop]
    return (audio / np.abs(audio).max()).astype(np.float32)


def plan() -> list[dict]:
    """Every utterance to synthesize, with its settings (drawn from SEED)."""
    rng = np.random.default_rng(SEED)
    variants = list(rng.permutation(VARIANTS))
    split_of = {}
    for i, v in enumerate(variants):
        split_of[v] = (
            "test"
            if i < TEST_VARIANTS
            else ("val" if i < TEST_VARIANTS + VAL_VARIANTS else "train")
        )
    rows = []
    for v in sorted(VARIANTS):
        accents = list(rng.choice(ACCENTS_ENGLISH, ENGLISH_ACCENTS_PER_VARIANT, replace=False))
        accents += list(rng.choice(ACCENTS_OTHER, OTHER_ACCENTS_PER_VARIANT, replace=False))
        for accent in accents:
            speaker = f"{accent}+{v}"
            words = list(COMMANDS)
            words += list(rng.choice(UNKNOWN_WORDS, UNKNOWN_PER_SPEAKER, replace=False))
            for word in words:
                rows.append({
                    "word": str(word), "speaker": speaker, "split": split_of[v],
                    "rate": int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                    "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
                    "text": str(word) + str(rng.choice(PUNCTUATION)),
                })  # fmt: skip
    return rows


def plan_new_words() -> list[dict]:
    """The utterances of the new words: speakers of the main plan's train and test
    splits (drawn from NEW_WORDS_SEED), each saying every new word once."""
    rng = np.random.default_rng(NEW_WORDS_SEED)
    speakers: dict[str, list[str]] = {}
    for row in plan():  # the main set's speakers and their split (unchanged)
        if row["speaker"] not in speakers.get(row["split"], []):
            speakers.setdefault(row["split"], []).append(row["speaker"])
    chosen = []
    for split, count in (("train", NEW_WORDS_TRAIN_SPEAKERS), ("test", NEW_WORDS_TEST_SPEAKERS)):
        by_variant: dict[str, list[str]] = {}
        for s in speakers[split]:
            by_variant.setdefault(s.split("+", 1)[1], []).append(s)
        # spread the speakers over as many variants (timbres) as possible
        per_variant = max(1, count // len(by_variant))
        variants = sorted(rng.choice(sorted(by_variant), count // per_variant, replace=False))
        for v in variants:
            picks = rng.choice(by_variant[v], per_variant, replace=False)
            chosen += [(str(s), split) for s in sorted(picks)]
    rows = []
    for speaker, split in chosen:
        for word in NEW_WORDS:
            rows.append({
                "word": word, "speaker": speaker, "split": split,
                "rate": int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
                "text": word + str(rng.choice(PUNCTUATION)),
            })  # fmt: skip
    return rows


def render(row: dict) -> np.ndarray:
    rate = row["rate"]
    while True:
        audio = synthesize(row["text"], row["speaker"], rate, row["pitch"])
        if len(audio) <= MAX_SECONDS * SAMPLE_RATE:
            row["rate"] = rate
            return audio
        rate = int(rate * 1.2)


def main(new_words: bool = False) -> None:
    rows = plan_new_words() if new_words else plan()
    out = OUT_NEW_WORDS if new_words else OUT
    with ThreadPoolExecutor(max_workers=4) as pool:
        clips = list(pool.map(render, rows))
    lengths = np.array([len(c) for c in clips], dtype=np.int32)
    words = NEW_WORDS if new_words else COMMANDS + UNKNOWN_WORDS
    speakers = sorted({r["speaker"] for r in rows})
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True)
    codes = np.concatenate([mu_law_encode(c) for c in clips])
    np.savez(
        out,
        audio_xz=np.frombuffer(lzma.compress(codes.tobytes(), preset=LZMA_PRESET), np.uint8),
        lengths=lengths,
        word=np.array([words.index(r["word"]) for r in rows], dtype=np.int16),
        speaker=np.array([speakers.index(r["speaker"]) for r in rows], dtype=np.int16),
        rate=np.array([r["rate"] for r in rows], dtype=np.int16),
        pitch=np.array([r["pitch"] for r in rows], dtype=np.int16),
        text=np.array([r["text"] for r in rows]),
        words=np.array(words),
        speakers=np.array(speakers),
        speaker_split=np.array([next(r["split"] for r in rows if r["speaker"] == s)
                                for s in speakers]),
        meta=np.array(json.dumps({
            "sample_rate": SAMPLE_RATE, "mu": 255, "storage": "8-bit mu-law, xz", "seed": SEED,
            "espeak_ng": version.stdout.split("Data at")[0].strip(),
            "commands": NEW_WORDS if new_words else COMMANDS,
            **({"new_words_seed": NEW_WORDS_SEED} if new_words else {}),
        })),
    )  # fmt: skip
    size = out.stat().st_size
    print(f"{len(rows)} utterances, {len(speakers)} speakers, "
          f"{lengths.sum() / SAMPLE_RATE / 60:.1f} min of speech, "
          f"mean {lengths.mean() / SAMPLE_RATE:.2f} s, max {lengths.max() / SAMPLE_RATE:.2f} s; "
          f"{out.name}: {size / 1e6:.2f} MB", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main(new_words="--new-words" in sys.argv[1:])
