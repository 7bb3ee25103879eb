"""The audio front end of the keyword spotter, in NumPy (no TensorFlow).

    from edgelib import audio
    feats = audio.log_mel(clips)            # (N, 16000) -> (N, 98, 40) float32
    feats_tf = audio.log_mel_tf(clips)      # the same features with tf.signal

A clip is 1 s of audio at 16 kHz, float in [-1, 1]. The features are the
usual ones of keyword spotting: frames of 30 ms every 10 ms, a periodic
Hann window, the power spectrum (512-point FFT), 40 triangular mel filters
(20 Hz to 7,600 Hz, the HTK mel scale of `tf.signal`), and a logarithm.
`log_mel` (NumPy) is what a device runs; `log_mel_tf` (imports TensorFlow
only when called) is the same computation in `tf.signal`, for training
pipelines. Both give the same numbers within float32 round-off.

This module never imports TensorFlow at import time: the edge side
(`edgelib.runtime` + this module) runs with NumPy and LiteRT alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SAMPLE_RATE = 16000  # Hz
CLIP_SAMPLES = 16000  # 1 second
KWS_CLASSES = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "_silence_", "_unknown_",
)  # fmt: skip
MU = 255  # 8-bit mu-law (G.711)

# front-end defaults: 30 ms window, 10 ms hop, 512-point FFT, 40 mel bins
FRAME_LENGTH = 480
FRAME_STEP = 160
FFT_LENGTH = 512
N_MELS = 40
F_MIN = 20.0
F_MAX = 7600.0
LOG_OFFSET = 1e-6  # log(mel energy + LOG_OFFSET): finite for digital silence


class AudioError(ValueError):
    """Audio or labels that the front end cannot use; the message says why."""


# ------------------------------------------------------------------ labels
def label_index(name: str, classes: Sequence[str] = KWS_CLASSES) -> int:
    """The integer label of class `name` (e.g. "yes" -> 0)."""
    classes = tuple(classes)
    if name not in classes:
        raise AudioError(f"unknown label {name!r}; expected one of {', '.join(classes)}")
    return classes.index(name)


def label_name(index: int, classes: Sequence[str] = KWS_CLASSES) -> str:
    """The class name of integer label `index` (e.g. 0 -> "yes")."""
    classes = tuple(classes)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise AudioError(f"a label index must be an integer, got {type(index).__name__}")
    if not 0 <= index < len(classes):
        raise AudioError(f"label index {index} out of range: expected 0..{len(classes) - 1}")
    return classes[int(index)]


# ------------------------------------------------------------ validation
def check_audio(x, sample_rate: int = SAMPLE_RATE, length: int | None = CLIP_SAMPLES) -> np.ndarray:
    """Validate audio (one clip (T,) or a batch (N, T)) and return it as float32.

    Checks the sample rate (must be 16 kHz), the clip length (`length`
    samples; None accepts any length), finiteness and the range [-1, 1].
    """
    if sample_rate != SAMPLE_RATE:
        raise AudioError(
            f"sample rate {sample_rate} Hz: the front end expects {SAMPLE_RATE} Hz audio; "
            "resample it first"
        )
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise AudioError(f"audio must be numeric, got dtype {x.dtype}")
    if x.ndim not in (1, 2):
        raise AudioError(f"audio must be (samples,) or (clips, samples), got shape {x.shape}")
    if length is not None and x.shape[-1] != length:
        raise AudioError(
            f"clip length {x.shape[-1]} samples: expected {length} "
            f"({length / SAMPLE_RATE:g} s at {SAMPLE_RATE} Hz)"
        )
    if x.dtype.kind in "iu":
        raise AudioError(
            f"audio must be float in [-1, 1], got integer dtype {x.dtype}; "
            "divide int16 samples by 32768"
        )
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise AudioError(f"audio contains {np.size(x) - np.isfinite(x).sum()} NaN/inf samples")
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 1.0 + 1e-6:
        raise AudioError(f"audio must lie in [-1, 1], its peak is {peak:.4g}")
    return x


# -------------------------------------------------------------- mu-law
def mu_law_encode(x) -> np.ndarray:
    """Float audio in [-1, 1] -> 8-bit mu-law codes (uint8, G.711 curve, mu = 255).

    Values outside [-1, 1] are clipped.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise AudioError("cannot mu-law encode NaN/inf samples")
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    return np.round((y + 1.0) / 2.0 * MU).astype(np.uint8)


def mu_law_decode(codes) -> np.ndarray:
    """8-bit mu-law codes (uint8) -> float32 audio in [-1, 1]."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8:
        raise AudioError(f"mu-law codes must be uint8, got {codes.dtype}")
    return _MU_LAW_TABLE[codes]


def _mu_law_table() -> np.ndarray:
    y = np.arange(256, dtype=np.float64) / MU * 2.0 - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU).astype(np.float32)


_MU_LAW_TABLE = _mu_law_table()  # code -> value: decoding is one table look-up


# ---------------------------------------------------------- the front end
def frame_signal(x: np.ndarray, frame_length: int, frame_step: int) -> np.ndarray:
    """Cut (..., T) into overlapping frames (..., n_frames, frame_length), no padding.

    n_frames = 1 + (T - frame_length) // frame_step, like `tf.signal.frame`.
    """
    x = np.asarray(x)
    if frame_length < 1 or frame_step < 1:
        raise AudioError(f"frame_length and frame_step must be >= 1, got {frame_length}, "
                         f"{frame_step}")  # fmt: skip
    if x.shape[-1] < frame_length:
        raise AudioError(f"signal of {x.shape[-1]} samples is shorter than one frame "
                         f"({frame_length})")  # fmt: skip
    n_frames = 1 + (x.shape[-1] - frame_length) // frame_step
    starts = np.arange(n_frames) * frame_step
    return x[..., starts[:, None] + np.arange(frame_length)]


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window w[n] = 0.5 - 0.5 cos(2 pi n / length) (tf.signal's default)."""
    n = np.arange(length)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / length)).astype(np.float32)


def hertz_to_mel(f):
    """HTK mel scale: mel = 1127 ln(1 + f / 700) (as in tf.signal)."""
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def mel_filterbank(
    n_mels: int = N_MELS,
    n_fft: int = FFT_LENGTH,
    sample_rate: int = SAMPLE_RATE,
    f_min: float = F_MIN,
    f_max: float = F_MAX,
) -> np.ndarray:
    """Triangular mel filters, shape (n_fft // 2 + 1, n_mels), float32.

    Filter m rises linearly from mel edge m to m+1 and falls to m+2, with
    n_mels + 2 edges equally spaced in mel between f_min and f_max; the DC
    bin gets weight 0. This is `tf.signal.linear_to_mel_weight_matrix`.
    """
    if not 0.0 <= f_min < f_max <= sample_rate / 2:
        raise AudioError(f"need 0 <= f_min < f_max <= {sample_rate / 2:g} Hz, "
                         f"got f_min={f_min}, f_max={f_max}")  # fmt: skip
    n_bins = n_fft // 2 + 1
    bin_mel = hertz_to_mel(np.linspace(0.0, sample_rate / 2, n_bins)[1:])[:, None]
    edges = np.linspace(hertz_to_mel(f_min), hertz_to_mel(f_max), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, n_mels)), weights]).astype(np.float32)


def log_mel(
    x,
    sample_rate: int = SAMPLE_RATE,
    frame_length: int = FRAME_LENGTH,
    frame_step: int = FRAME_STEP,
    n_fft: int = FFT_LENGTH,
    n_mels: int = N_MELS,
    f_min: float = F_MIN,
    f_max: float = F_MAX,
    batch_size: int = 256,
) -> np.ndarray:
    """Log-mel features of 1-s clips: (16000,) -> (98, 40), (N, 16000) -> (N, 98, 40).

    Steps: frames of `frame_length` samples every `frame_step`, times a
    periodic Hann window, |rfft(n_fft)|^2, times the mel filterbank,
    log(. + 1e-6). float32 out. Works in chunks of `batch_size` clips to
    keep memory small.
    """
    x = check_audio(x, sample_rate)
    if n_fft < frame_length:
        raise AudioError(f"n_fft ({n_fft}) must be >= frame_length ({frame_length})")
    window = hann_window(frame_length)
    mel = mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max)
    batch = x.reshape(-1, x.shape[-1])
    out = []
    for start in range(0, len(batch), batch_size):
        frames = frame_signal(batch[start : start + batch_size], frame_length, frame_step)
        spectrum = np.fft.rfft(frames * window, n=n_fft)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        out.append(np.log(power @ mel + LOG_OFFSET).astype(np.float32))
    feats = np.concatenate(out) if out else np.zeros((0, 0, n_mels), np.float32)
    return feats[0] if x.ndim == 1 else feats


def log_mel_tf(
    x,
    sample_rate: int = SAMPLE_RATE,
    frame_length: int = FRAME_LENGTH,
    frame_step: int = FRAME_STEP,
    n_fft: int = FFT_LENGTH,
    n_mels: int = N_MELS,
    f_min: float = F_MIN,
    f_max: float = F_MAX,
):
    """The same features as `log_mel`, computed with `tf.signal` (returns a tf.Tensor).

    Accepts a NumPy array or a tensor, (16000,) or (N, 16000). For a NumPy
    input the audio is validated like `log_mel`'s; inside a tf.data map
    (a symbolic tensor) only the sample rate is checked.
    """
    import tensorflow as tf

    if not tf.is_tensor(x):
        x = check_audio(x, sample_rate)
    elif sample_rate != SAMPLE_RATE:
        check_audio(np.zeros(CLIP_SAMPLES, np.float32), sample_rate)
    stft = tf.signal.stft(
        tf.cast(x, tf.float32), frame_length, frame_step, fft_length=n_fft,
        window_fn=tf.signal.hann_window, pad_end=False,
    )  # fmt: skip
    power = tf.math.real(stft) ** 2 + tf.math.imag(stft) ** 2
    mel = tf.signal.linear_to_mel_weight_matrix(n_mels, n_fft // 2 + 1, sample_rate, f_min, f_max)
    return tf.math.log(tf.tensordot(power, mel, 1) + LOG_OFFSET)


def n_frames(
    n_samples: int = CLIP_SAMPLES, frame_length: int = FRAME_LENGTH, frame_step: int = FRAME_STEP
) -> int:
    """Number of feature frames of a signal: 1 + (n_samples - frame_length) // frame_step."""
    if n_samples < frame_length:
        raise AudioError(f"{n_samples} samples is shorter than one frame ({frame_length})")
    return 1 + (n_samples - frame_length) // frame_step


# --- the keyword spotter's front end (chapter 13, make bench) -------------------------------

KWS_FRAME_STEP = 320  # 20 ms: 49 frames of 40 log-mel bands per 1-s clip


def normalize_bands(feats) -> np.ndarray:
    """Subtract each mel band's mean over time, per clip: (..., frames, mels).

    A gain g adds 2 ln g to every log-mel value and a voice or microphone
    tilts each band by a roughly constant amount; both vanish here.
    """
    feats = np.asarray(feats, np.float32)
    if feats.ndim < 2 or feats.shape[-2] < 1:
        raise AudioError(f"expected features (..., frames, mels), got shape {feats.shape}")
    return feats - feats.mean(axis=-2, keepdims=True)


def kws_features(x, clip_range: tuple[float, float] | None = None) -> np.ndarray:
    """The keyword spotter's input: (N, 16000) clips -> (N, 49, 40, 1) float32.

    Log-mel every 20 ms, band means removed (`normalize_bands`), then, when
    `clip_range` = (low, high) is given, clipped to the range seen in
    training (what a full-int8 model's fixed input range needs). Training
    and device share this one function, so their features are the same.
    """
    feats = normalize_bands(log_mel(x, frame_step=KWS_FRAME_STEP))
    if clip_range is not None:
        low, high = clip_range
        if not low < high:
            raise AudioError(f"clip_range must be (low, high) with low < high, got {clip_range}")
        feats = np.clip(feats, low, high)
    return feats[..., None]


def shift_bands(x, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Shift each spectrogram (N, frames, mels, 1) by a random number of mel bands.

    An augmentation that imitates a different vocal-tract length: each
    example moves up or down by 0..`max_shift` bands, repeating the edge band.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise AudioError(f"expected spectrograms (N, frames, mels, 1), got shape {x.shape}")
    if max_shift < 0 or max_shift >= x.shape[2]:
        raise AudioError(f"max_shift must be in [0, {x.shape[2] - 1}], got {max_shift}")
    out = np.empty_like(x)
    shifts = rng.integers(-max_shift, max_shift + 1, len(x))
    for s in range(-max_shift, max_shift + 1):
        pick = shifts == s
        idx = np.clip(np.arange(x.shape[2]) - s, 0, x.shape[2] - 1)
        out[pick] = x[pick][:, :, idx]
    return out
