"""Spoken commands for keyword spotting: a synthetic set (offline) and the real one (opt-in).

`load("speech_commands")`: words spoken by espeak-ng (synthetic speech,
300 synthetic speakers), 1-second clips at 16 kHz, the 12 classes of the
Speech Commands KWS task, split by speaker. `load("speech_commands_real")`:
Google's Speech Commands v2 (real recordings), after a one-time download.
"""

from __future__ import annotations

import json
import lzma
import tarfile
import wave
from pathlib import Path

import numpy as np

from ..audio import CLIP_SAMPLES, KWS_CLASSES, SAMPLE_RATE, mu_law_decode
from ._core import (
    CACHE_DIR,
    DATA_DIR,
    Dataset,
    DatasetError,
    DatasetNotAvailable,
    Split,
    download_file,
    register,
)

DATA_FILE = DATA_DIR / "speech_commands" / "speech_commands_espeak.npz"
CLASSES = KWS_CLASSES
COMMANDS = KWS_CLASSES[:10]
SPLITS = ("train", "val", "test")

# The augmentation that turns clean utterances into 1-s clips (fixed seeds)
AUGMENT_SEED = 20241114
PEAK_DB = (-24.0, -1.0)  # peak level of the word, dBFS, uniform
SNR_DB = (5.0, 40.0)  # speech-to-noise ratio, dB, uniform
SILENCE_DBFS = (-65.0, -25.0)  # RMS level of a "_silence_" clip (noise only), uniform
NOISES = ("white", "pink", "brown", "hum")  # background noise kinds, equally likely
NOISE_BANK_SECONDS = 20  # length of each precomputed noise signal

_cache: dict[str, dict] = {}


def _read_store(path: Path) -> dict:
    """The clean utterances of the committed file, decoded (cached per process)."""
    key = str(path)
    if key not in _cache:
        if not path.is_file():
            raise DatasetNotAvailable(
                f"the spoken-commands file {path.name} is missing from data/speech_commands/. "
                "It is committed with the course; regenerate it with "
                "`apt-get install espeak-ng && python data/speech_commands/generate.py`."
            )
        with np.load(path) as f:
            codes = np.frombuffer(lzma.decompress(f["audio_xz"].tobytes()), np.uint8)
            store = {k: f[k] for k in f.files if k != "audio_xz"}
        store["audio"] = mu_law_decode(codes)
        store["starts"] = np.concatenate([[0], np.cumsum(store["lengths"])[:-1]])
        store["meta"] = json.loads(str(store["meta"]))
        _cache[key] = store
    return _cache[key]


def _noise_bank(seed: int) -> dict[str, np.ndarray]:
    """Long noise signals with RMS 1: white, pink (1/f power), brown (1/f^2 power),
    and mains hum (50 Hz and 60 Hz, 5 harmonics at random phases, a faint hiss)."""
    rng = np.random.default_rng(seed)
    n = NOISE_BANK_SECONDS * SAMPLE_RATE
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    f[0] = f[1]
    bank = {"white": white}
    for name, power in (("pink", 1.0), ("brown", 2.0)):
        bank[name] = np.fft.irfft(spectrum / f ** (power / 2) * (f > 20), n)
    t = np.arange(n) / SAMPLE_RATE
    for f0 in (50, 60):
        phases = rng.uniform(0, 2 * np.pi, 5)
        hum = sum(np.sin(2 * np.pi * f0 * k * t + phases[k - 1]) / k for k in range(1, 6))
        bank[f"hum{f0}"] = hum + 0.05 * rng.standard_normal(n)
    return {k: (v / np.sqrt(np.mean(v**2))).astype(np.float32) for k, v in bank.items()}


def _noise(kind: str, bank: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One second of background noise of the given kind (a random slice), RMS about 1."""
    if kind == "hum":
        kind = ("hum50", "hum60")[rng.integers(2)]
    signal = bank[kind]
    start = rng.integers(0, len(signal) - CLIP_SAMPLES)
    return signal[start : start + CLIP_SAMPLES]


def _speech_in_noise(store: dict, u: int, noise: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Utterance `u` at a random loudness and offset in one second of `noise`
    scaled to a random signal-to-noise ratio; returns the clip (not yet
    clipped to [-1, 1]) and the ratio in dB."""
    start, length = store["starts"][u], store["lengths"][u]
    speech = store["audio"][start : start + length]
    peak = 10 ** (rng.uniform(*PEAK_DB) / 20)
    offset = rng.integers(0, CLIP_SAMPLES - length + 1)
    snr = rng.uniform(*SNR_DB)
    rms = peak * np.sqrt(np.mean(speech**2))
    clip = noise * np.float32(rms / 10 ** (snr / 20))
    clip[offset : offset + length] += np.float32(peak) * speech
    return clip, float(snr)


def _make_split(store: dict, split: str, copies: int, bank: dict) -> tuple[Split, dict]:
    """The clips of one split: every speaker says every class `copies` times."""
    words = [str(w) for w in store["words"]]
    speakers = [str(s) for s in store["speakers"]]
    in_split = [i for i, s in enumerate(store["speaker_split"]) if s == split]
    by_key: dict[tuple[int, int], list[int]] = {}
    for u, (w, s) in enumerate(zip(store["word"], store["speaker"], strict=True)):
        by_key.setdefault((int(s), int(w)), []).append(u)
    unknown_ids = range(len(COMMANDS), len(words))
    xs, ys, info = [], [], {"speaker": [], "word": [], "noise": [], "snr_db": []}
    for copy in range(copies):
        rng = np.random.default_rng([AUGMENT_SEED, SPLITS.index(split), copy])
        for s in in_split:
            unknown = sorted(u for w in unknown_ids for u in by_key.get((s, w), []))
            for label, name in enumerate(CLASSES):
                kind = NOISES[rng.integers(len(NOISES))]
                noise = _noise(kind, bank, rng)
                if name == "_silence_":
                    level = 10 ** (rng.uniform(*SILENCE_DBFS) / 20)
                    clip, word, snr = noise * level, "", float("nan")
                else:
                    if name == "_unknown_":
                        u = unknown[copy % len(unknown)]
                    else:
                        u = by_key[(s, label)][0]
                    clip, snr = _speech_in_noise(store, u, noise, rng)
                    word = words[int(store["word"][u])]
                xs.append(np.clip(clip, -1.0, 1.0).astype(np.float32))
                ys.append(label)
                info["speaker"].append(speakers[s])
                info["word"].append(word)
                info["noise"].append(kind)
                info["snr_db"].append(float(snr))
    arrays = {k: np.array(v) for k, v in info.items()}
    x = np.stack(xs) if xs else np.zeros((0, CLIP_SAMPLES), np.float32)
    return Split(x, np.array(ys, dtype=np.int64)), arrays


@register(
    "speech_commands",
    "synthetic spoken commands (espeak-ng, 300 synthetic speakers), 12 KWS classes, 1 s at 16 kHz",
)
def load_speech_commands(copies: int = 2) -> Dataset:
    """Spoken commands for keyword spotting, SYNTHETIC speech (espeak-ng), offline.

    Classes (fixed order): yes, no, up, down, left, right, on, off, stop, go,
    _silence_ (background noise only), _unknown_ (other words: bed, bird,
    cat, ..., zero..nine, learn, follow, forward, backward, visual).
    Speakers: 300 synthetic speakers = 100 espeak-ng voice variants (timbres)
    x 3 accents each (2 English accents + 1 non-English voice reading
    English). Split BY SPEAKER and by variant: train 216 speakers
    (72 variants), val 36 (12), test 48 (16); no timbre of the test
    speakers occurs in training, so the test measures unseen speakers.
    Clips: every speaker says every command once (stored clean), and the
    loader makes `copies` 1-second clips of each (and as many `_unknown_`
    and `_silence_` clips), each with its own random time offset, peak level
    (-24..-1 dBFS) and background noise (white, pink, brown or mains hum,
    SNR 5..40 dB), from fixed seeds: the same call gives the same clips.
    Raising `copies` appends clips and keeps the earlier ones.
    x: float32 (N, 16000) in [-1, 1], 16 kHz; y: int64 labels 0..11.
    extra: sample_rate, voices (speakers per split), clip_info (per split:
    speaker, word, noise kind, snr_db of every clip), utterances (clean
    utterance counts), synthetic=True.
    Source: data/speech_commands/ (generator script and settings there).
    License: the audio is the output of espeak-ng (a GPL-3.0-or-later
    program, whose license covers the program, not its output); shipped with
    the course under Apache-2.0 (see data/README.md).
    """
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= 8:
        raise DatasetError(f"copies must be an int in 1..8, got {copies!r}")
    store = _read_store(DATA_FILE)
    if store["meta"]["sample_rate"] != SAMPLE_RATE:
        raise DatasetError(f"{DATA_FILE.name} is not at {SAMPLE_RATE} Hz")
    bank = _noise_bank(AUGMENT_SEED)
    parts, info = {}, {}
    for split in SPLITS:
        parts[split], info[split] = _make_split(store, split, copies, bank)
    speakers = store["speakers"]
    voices = {
        split: [str(s) for s, p in zip(speakers, store["speaker_split"], strict=True) if p == split]
        for split in SPLITS
    }
    return Dataset(
        name="speech_commands",
        train=parts["train"],
        val=parts["val"],
        test=parts["test"],
        classes=CLASSES,
        description="synthetic spoken commands (espeak-ng), 1 s at 16 kHz, split by speaker",
        source="synthesized with espeak-ng by data/speech_commands/generate.py",
        license="espeak-ng output (espeak-ng is GPL-3.0-or-later)",
        extra={
            "sample_rate": SAMPLE_RATE,
            "voices": voices,
            "clip_info": info,
            "copies": copies,
            "utterances": len(store["lengths"]),
            "synthetic": True,
            "espeak_ng": store["meta"]["espeak_ng"],
        },
    )


# ----------------------------------------------------------- the real set (opt-in)
REAL_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
REAL_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
REAL_TEST_URL = "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz"
REAL_TEST_SHA256 = "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df"
REAL_DIR = CACHE_DIR / "speech_commands_v0.02"
REAL_TEST_DIR = CACHE_DIR / "speech_commands_test_set_v0.02"


def _read_wav(path: Path) -> np.ndarray:
    """A 16-bit mono 16 kHz WAV file -> float32 exactly 1 s (zero-padded or cut)."""
    with wave.open(str(path)) as w:
        if w.getframerate() != SAMPLE_RATE or w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise DatasetError(f"{path.name}: expected 16-bit mono {SAMPLE_RATE} Hz audio")
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    out = np.zeros(CLIP_SAMPLES, np.float32)
    out[: min(len(x), CLIP_SAMPLES)] = x[:CLIP_SAMPLES]
    return out


def _fetch_real(download: bool) -> None:
    pairs = ((REAL_URL, REAL_SHA256, REAL_DIR), (REAL_TEST_URL, REAL_TEST_SHA256, REAL_TEST_DIR))
    for url, sha, folder in pairs:
        if folder.is_dir():
            continue
        if not download:
            raise DatasetNotAvailable(
                "the real Speech Commands v2 is not on this machine (looked for "
                f"data/cache/{folder.name}/). It is an opt-in: call "
                "load('speech_commands_real', download=True) on a machine with a network "
                "(2.4 GB), or use load('speech_commands'), the synthetic set that works offline."
            )
        archive = download_file(url, CACHE_DIR / url.rsplit("/", 1)[1], sha, timeout=60.0)
        with tarfile.open(archive) as tar:
            tar.extractall(folder.with_suffix(".part"), filter="data")
        folder.with_suffix(".part").replace(folder)


@register(
    "speech_commands_real",
    "Google Speech Commands v2, real recordings (opt-in: download=True once, 2.4 GB)",
)
def load_speech_commands_real(download: bool = False, max_per_class: int = 1000) -> Dataset:
    """Google's Speech Commands v2 (real speech, 2,618 speakers), the 12-class KWS task.

    Opt-in: needs data/cache/speech_commands_v0.02/ and
    data/cache/speech_commands_test_set_v0.02/, fetched once with
    `load("speech_commands_real", download=True)` (2.4 GB + 110 MB,
    SHA-256 checked, then extracted) on a machine with a network.
    Train / val: the official lists (validation_list.txt, testing_list.txt
    excluded); the 25 other words form `_unknown_`; `_silence_` clips are
    1-s slices of the `_background_noise_` recordings. Test: the official
    12-class test set. At most `max_per_class` clips per class and split
    (to keep memory small; None for all).
    x: float32 (N, 16000) in [-1, 1]; y: int64 labels 0..11 (same classes as
    `speech_commands`). License: CC BY 4.0 (Pete Warden, Google).
    """
    if max_per_class is not None and (not isinstance(max_per_class, int) or max_per_class < 1):
        raise DatasetError(f"max_per_class must be a positive int or None, got {max_per_class!r}")
    _fetch_real(download)
    lists = {
        name: set((REAL_DIR / f"{name}_list.txt").read_text().split())
        for name in ("validation", "testing")
    }
    files: dict[str, list[list[Path]]] = {s: [[] for _ in CLASSES] for s in ("train", "val")}
    for wav in sorted(REAL_DIR.glob("*/*.wav")):
        word = wav.parent.name
        if word.startswith("_"):
            continue
        rel = f"{word}/{wav.name}"
        if rel in lists["testing"]:
            continue
        split = "val" if rel in lists["validation"] else "train"
        if split:
            label = CLASSES.index(word) if word in COMMANDS else CLASSES.index("_unknown_")
            files[split][label].append(wav)
    rng = np.random.default_rng(AUGMENT_SEED)

    def build(groups: list[list[Path]], silence: list[np.ndarray]) -> Split:
        xs, ys = [], []
        for label, paths in enumerate(groups):
            if max_per_class is not None and len(paths) > max_per_class:
                paths = [paths[i] for i in sorted(rng.choice(len(paths), max_per_class, False))]
            xs += [_read_wav(p) for p in paths]
            ys += [label] * len(paths)
        xs += silence
        ys += [CLASSES.index("_silence_")] * len(silence)
        return Split(np.stack(xs), np.array(ys, dtype=np.int64))

    noise = [_read_wav_long(p) for p in sorted((REAL_DIR / "_background_noise_").glob("*.wav"))]
    per = max_per_class or 1000

    def slices(signals: list[np.ndarray], n: int) -> list[np.ndarray]:
        out = []
        for _ in range(n):
            s = signals[rng.integers(len(signals))]
            start = rng.integers(0, len(s) - CLIP_SAMPLES)
            out.append(s[start : start + CLIP_SAMPLES].copy())
        return out

    train = build(files["train"], slices(noise[:-1], per))
    val = build(files["val"], slices(noise[-1:], max(per // 8, 1)))
    test_groups: list[list[Path]] = [
        sorted((REAL_TEST_DIR / name).glob("*.wav")) for name in CLASSES
    ]
    test = build(test_groups, [])
    return Dataset(
        name="speech_commands_real",
        train=train,
        val=val,
        test=test,
        classes=CLASSES,
        description="Google Speech Commands v2 (real speech), 12-class KWS task",
        source=REAL_URL,
        license="CC BY 4.0",
        extra={"sample_rate": SAMPLE_RATE, "synthetic": False},
    )


def _read_wav_long(path: Path) -> np.ndarray:
    """A 16-bit mono WAV file of any length -> float32 (the background noises)."""
    with wave.open(str(path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
        if w.getnchannels() != 1 or w.getframerate() != SAMPLE_RATE:
            raise DatasetError(f"{path.name}: expected mono {SAMPLE_RATE} Hz audio")
    return x
