import subprocess
import sys

import numpy as np
import pytest

from edgelib import audio
from edgelib.audio import AudioError


def _chirp(n_clips: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(audio.CLIP_SAMPLES) / audio.SAMPLE_RATE
    clips = [0.5 * np.sin(2 * np.pi * (200 + 3000 * k) * t * (1 + t)) for k in range(n_clips)]
    return (np.array(clips) + 0.01 * rng.standard_normal((n_clips, len(t)))).astype(np.float32)


def test_feature_shape_and_frame_count():
    x = _chirp()
    feats = audio.log_mel(x)
    assert feats.shape == (3, 98, 40) and feats.dtype == np.float32
    assert audio.n_frames() == 98 == 1 + (16000 - 480) // 160
    assert audio.log_mel(x[0]).shape == (98, 40)
    np.testing.assert_array_equal(audio.log_mel(x[1]), feats[1])
    assert audio.log_mel(x, frame_step=320).shape == (3, 49, 40)


def test_framing_and_window_by_hand():
    x = np.arange(20.0)
    frames = audio.frame_signal(x, 8, 4)
    assert frames.shape == (4, 8)
    np.testing.assert_array_equal(frames[2], np.arange(8, 16))
    w = audio.hann_window(8)
    assert w[0] == 0 and np.isclose(w[4], 1.0) and np.allclose(w[1:4], w[7:4:-1])


def test_a_tone_lands_in_the_right_mel_bin():
    t = np.arange(audio.CLIP_SAMPLES) / audio.SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    feats = audio.log_mel(tone)
    centers = np.linspace(audio.hertz_to_mel(20), audio.hertz_to_mel(7600), 42)[1:-1]
    expected = int(np.argmin(np.abs(centers - audio.hertz_to_mel(1000))))
    assert np.all(feats.argmax(axis=1) == expected)


def test_filterbank_and_features_match_tensorflow(tf_ready):
    import tensorflow as tf

    mel_tf = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 7600.0).numpy()
    np.testing.assert_allclose(audio.mel_filterbank(), mel_tf, atol=1e-5)
    np.testing.assert_allclose(audio.hann_window(480), tf.signal.hann_window(480).numpy(),
                               atol=1e-6)  # fmt: skip
    x = _chirp()
    ours, theirs = audio.log_mel(x), audio.log_mel_tf(x).numpy()
    assert theirs.shape == ours.shape
    assert np.max(np.abs(ours - theirs)) < 1e-3
    # digital silence stays finite and equal: log(0 + 1e-6)
    silent = np.zeros(16000, np.float32)
    np.testing.assert_allclose(audio.log_mel(silent), np.log(1e-6), rtol=1e-6)
    np.testing.assert_allclose(audio.log_mel_tf(silent).numpy(), np.log(1e-6), rtol=1e-6)


def test_mu_law_round_trip_and_curve():
    x = np.linspace(-1, 1, 10001).astype(np.float32)
    codes = audio.mu_law_encode(x)
    assert codes.dtype == np.uint8 and codes.min() == 0 and codes.max() == 255
    back = audio.mu_law_decode(codes)
    # the error of 8-bit mu-law grows with the amplitude: about 3 % of |x| at most
    assert np.all(np.abs(back - x) <= 0.035 * np.abs(x) + 2e-4)
    assert audio.mu_law_decode(np.array([0, 255], np.uint8)).tolist() == [-1.0, 1.0]
    with pytest.raises(AudioError, match="uint8"):
        audio.mu_law_decode(np.array([1, 2]))
    with pytest.raises(AudioError, match="NaN"):
        audio.mu_law_encode(np.array([0.0, np.nan]))


def test_clear_errors(tf_ready):
    good = np.zeros(16000, np.float32)
    with pytest.raises(AudioError, match="sample rate 8000 Hz.*16000"):
        audio.log_mel(good, sample_rate=8000)
    with pytest.raises(AudioError, match="sample rate 44100"):
        audio.log_mel_tf(good, sample_rate=44100)
    with pytest.raises(AudioError, match="clip length 8000 samples: expected 16000"):
        audio.log_mel(good[:8000])
    bad = good.copy()
    bad[5] = np.nan
    with pytest.raises(AudioError, match="1 NaN/inf"):
        audio.log_mel(bad)
    with pytest.raises(AudioError, match=r"\[-1, 1\]"):
        audio.log_mel(good + 2)
    with pytest.raises(AudioError, match="int16"):
        audio.check_audio(np.zeros(16000, np.int16))
    with pytest.raises(AudioError, match="shape"):
        audio.check_audio(np.zeros((2, 2, 16000), np.float32))
    with pytest.raises(AudioError, match="f_min"):
        audio.mel_filterbank(f_max=9000)


def test_labels():
    assert audio.label_index("yes") == 0 and audio.label_index("_unknown_") == 11
    assert audio.label_name(10) == "_silence_"
    with pytest.raises(AudioError, match="unknown label 'maybe'.*yes, no"):
        audio.label_index("maybe")
    with pytest.raises(AudioError, match="out of range"):
        audio.label_name(12)
    with pytest.raises(AudioError, match="integer"):
        audio.label_name("3")


def test_module_does_not_import_tensorflow():
    code = ("import sys, numpy as np; from edgelib import audio; "
            "audio.log_mel(np.zeros(16000, np.float32)); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
