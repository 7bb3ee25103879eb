"""The keyword spotter's shared pieces: front end, augmentation, DS-CNN, calibration set."""

import numpy as np
import pytest

from edgelib import audio
from edgelib.audio import AudioError
from edgelib.quantization import calibration_indices, calibration_sample


def _clips(rng, n=3):
    t = np.arange(16000) / 16000
    tones = np.stack([np.sin(2 * np.pi * (300 + 200 * k) * t) for k in range(n)])
    return (0.3 * tones + 0.01 * rng.standard_normal((n, 16000))).astype(np.float32)


def test_kws_features_shape_normalization_and_gain_invariance(rng):
    clips = _clips(rng)
    feats = audio.kws_features(clips)
    assert feats.shape == (3, 49, 40, 1) and feats.dtype == np.float32
    np.testing.assert_allclose(feats.mean(axis=1), 0, atol=1e-4)  # every band centred
    # a gain only shifts log-mel values: normalized features barely change
    quieter = audio.kws_features(0.5 * clips)
    assert np.median(np.abs(quieter - feats)) < 1e-3


def test_kws_features_clip_to_the_training_range(rng):
    feats = audio.kws_features(_clips(rng), clip_range=(-1.0, 1.5))
    assert feats.min() >= -1.0 and feats.max() <= 1.5
    with pytest.raises(AudioError, match="low < high"):
        audio.kws_features(_clips(rng), clip_range=(2.0, 1.0))
    with pytest.raises(AudioError, match="clip length"):
        audio.kws_features(np.zeros((2, 8000), np.float32))


def test_normalize_bands_refuses_a_vector():
    with pytest.raises(AudioError, match=r"\(\.\.\., frames, mels\)"):
        audio.normalize_bands(np.zeros(40))


def test_shift_bands_moves_whole_spectra_by_at_most_max_shift(rng):
    x = np.tile(np.arange(40, dtype=np.float32), (50, 5, 1))[..., None]  # band index as value
    out = audio.shift_bands(x, np.random.default_rng(1), max_shift=2)
    shifts = x[:, 0, 20, 0] - out[:, 0, 20, 0]  # the middle band shows the shift
    assert set(shifts.tolist()) <= {-2, -1, 0, 1, 2} and len(set(shifts.tolist())) > 1
    assert np.all(out[:, 0, 0, 0] >= 0) and np.all(out[:, 0, -1, 0] <= 39)  # edges repeat
    again = audio.shift_bands(x, np.random.default_rng(1), max_shift=2)
    np.testing.assert_array_equal(out, again)  # seeded: reproducible
    with pytest.raises(AudioError, match="max_shift"):
        audio.shift_bands(x, rng, max_shift=40)
    with pytest.raises(AudioError, match="N, frames, mels, 1"):
        audio.shift_bands(x[..., 0], rng)


def test_ds_cnn_trains_with_the_chapter_recipe(tf_ready, rng):
    from edgelib import models

    model = models.ds_cnn((49, 40, 1), channels=8, blocks=1, classes=3)
    x = rng.standard_normal((48, 49, 40, 1)).astype(np.float32)
    y = rng.integers(0, 3, 48)
    seen = []
    history = models.train_keyword_spotter(model, x, y, validation=(x[:8], y[:8]), epochs=2,
                                           batch_size=16, on_epoch=seen.append)
    assert [r["epoch"] for r in history] == [1, 2] and seen == history
    assert all(0 <= r["accuracy"] <= 1 and 0 <= r["val_accuracy"] <= 1 for r in history)
    assert model.output_shape == (None, 3)
    with pytest.raises(ValueError, match="48 examples but y_train 47"):
        models.train_keyword_spotter(model, x, y[:47], epochs=1)
    with pytest.raises(ValueError, match="channels >= 1"):
        models.ds_cnn(channels=0)


def test_ds_cnn_first_convolution_strides(tf_ready):
    from edgelib import models

    default = models.ds_cnn()  # 49 frames x 40 mel bands -> 25 x 10
    assert default.layers[1].output_shape == (None, 25, 10, 64)
    assert default.count_params() == models.ds_cnn(strides=(2, 2)).count_params()
    assert models.ds_cnn(strides=(2, 2)).layers[1].output_shape == (None, 25, 20, 64)


def test_calibration_sample_keeps_the_extremes(rng):
    x = rng.standard_normal((1000, 4, 4))
    x[777, 0, 0], x[998, 1, 1] = -50.0, 60.0
    sample = calibration_sample(x, n=100, extremes=10)
    assert len(sample) <= 100 and sample.min() == -50.0 and sample.max() == 60.0
    assert len(calibration_sample(x[:30], n=100)) == 30  # fewer examples than n: all of them
    np.testing.assert_array_equal(x[calibration_indices(x, n=100, extremes=10)], sample)
    with pytest.raises(ValueError, match="extremes"):
        calibration_sample(x, n=10, extremes=6)
    with pytest.raises(ValueError, match="non-empty"):
        calibration_sample(np.zeros((0, 3)))


def test_pretrained_keyword_spotter_round_trip_and_errors(tf_ready, tmp_path):
    from edgelib import models

    model = models.ds_cnn()
    path = tmp_path / "spotter.npz"
    models.save_pretrained_keyword_spotter(model, (-3.5, 4.25), path, calibration=[3, 1, 4],
                                           seed=7, epochs=6)
    loaded, clip_range, calibration, meta = models.pretrained_keyword_spotter(path)
    assert calibration.tolist() == [3, 1, 4]
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert clip_range == (-3.5, 4.25) and meta == {"seed": "7", "epochs": "6"}
    with pytest.raises(FileNotFoundError, match="pretrain_kws.py"):
        models.pretrained_keyword_spotter(tmp_path / "missing.npz")
    models.save_pretrained_keyword_spotter(models.ds_cnn(channels=8), (0.0, 1.0), path)
    with pytest.raises(ValueError, match="default shape"):
        models.pretrained_keyword_spotter(path)


def test_the_shipped_keyword_spotter_loads(tf_ready):
    from edgelib import models

    model, (low, high), calibration, meta = models.pretrained_keyword_spotter()
    assert model.output_shape == (None, 12) and low < high
    assert 100 <= len(calibration) <= 200 and len(set(calibration.tolist())) == len(calibration)
    assert float(meta["test_accuracy"]) >= 0.88 and meta["epochs"] == str(models.DS_CNN_EPOCHS)
