import numpy as np
import pytest

from edgelib import datasets
from edgelib.audio import KWS_CLASSES
from edgelib.datasets import DatasetError, DatasetNotAvailable, speech_commands


@pytest.fixture(scope="module")
def ds():
    return datasets.load("speech_commands", copies=1)


def test_registered_with_a_description():
    names = datasets.available()
    assert "speech_commands" in names and "speech_commands_real" in names
    assert "synthetic" in names["speech_commands"]
    assert "SYNTHETIC" in datasets.describe("speech_commands")


def test_shapes_classes_and_balanced_counts(ds):
    assert ds.classes == KWS_CLASSES and len(ds.classes) == 12
    assert ds.extra["sample_rate"] == 16000 and ds.extra["synthetic"] is True
    for name in ("train", "val", "test"):
        part = getattr(ds, name)
        n_speakers = len(ds.extra["voices"][name])
        assert part.x.shape == (12 * n_speakers, 16000) and part.x.dtype == np.float32
        assert part.y.dtype == np.int64
        assert np.all(np.bincount(part.y, minlength=12) == n_speakers)
        assert np.isfinite(part.x).all() and np.abs(part.x).max() <= 1.0
    assert [len(ds.extra["voices"][s]) for s in ("train", "val", "test")] == [216, 36, 48]
    assert len(ds.train) >= 12 * 200


def test_splits_are_disjoint_by_speaker_and_by_timbre(ds):
    voices = {s: set(v) for s, v in ds.extra["voices"].items()}
    assert not (voices["train"] & voices["val"] or voices["train"] & voices["test"]
                or voices["val"] & voices["test"])  # fmt: skip
    variants = {s: {v.split("+")[1] for v in vs} for s, vs in voices.items()}
    assert not (variants["train"] & variants["test"] or variants["train"] & variants["val"])
    for name in ("train", "val", "test"):
        assert set(ds.extra["clip_info"][name]["speaker"]) == voices[name]


def test_clip_contents_follow_the_labels(ds):
    info = ds.extra["clip_info"]["test"]
    y = ds.test.y
    words = info["word"]
    for label in range(10):
        assert set(words[y == label]) == {KWS_CLASSES[label]}
    assert set(words[y == 10]) == {""}
    unknown = set(words[y == 11])
    assert unknown and not unknown & set(KWS_CLASSES)
    # speech clips are louder than their noise floor; silence clips are quiet
    rms = np.sqrt(np.mean(ds.test.x**2, axis=1))
    assert np.median(rms[y == 10]) < np.median(rms[y < 10])
    assert set(info["noise"]) == {"white", "pink", "brown", "hum"}


def test_deterministic_and_copies_append(ds):
    np.random.seed(7)
    two = datasets.load("speech_commands", copies=2)
    n = len(ds.test)
    np.testing.assert_array_equal(two.test.x[:n], ds.test.x)
    np.testing.assert_array_equal(two.test.y[:n], ds.test.y)
    assert len(two.train) == 2 * len(ds.train)
    assert not np.array_equal(two.train.x[: len(ds.train)], two.train.x[len(ds.train) :])


def test_bad_options_and_missing_file(tmp_path, monkeypatch):
    for bad in (0, 9, 1.5, True):
        with pytest.raises(DatasetError, match="copies"):
            datasets.load("speech_commands", copies=bad)
    monkeypatch.setattr(speech_commands, "DATA_FILE", tmp_path / "missing.npz")
    with pytest.raises(DatasetNotAvailable, match="generate.py"):
        datasets.load("speech_commands")


def test_real_set_is_opt_in(tmp_path, monkeypatch):
    monkeypatch.setattr(speech_commands, "REAL_DIR", tmp_path / "sc")
    with pytest.raises(DatasetNotAvailable, match=r"download=True.*load\('speech_commands'\)"):
        datasets.load("speech_commands_real")
    with pytest.raises(DatasetError, match="max_per_class"):
        datasets.load("speech_commands_real", max_per_class=0)


def test_real_download_on_a_closed_network_fails_fast(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(speech_commands, "REAL_DIR", tmp_path / "sc")
    monkeypatch.setattr(speech_commands, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(DatasetNotAvailable, match="network may be closed"):
        datasets.load("speech_commands_real", download=True)
    assert not list(tmp_path.iterdir()), "a failed download must leave no partial file"
