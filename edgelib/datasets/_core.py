"""Shared pieces of the data layer: containers, the registry, downloads."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
CACHE_DIR = DATA_DIR / "cache"  # opt-in downloads land here (git-ignored)


class DatasetError(ValueError):
    """Bad request to the data layer: unknown name, bad option."""


class DatasetNotAvailable(FileNotFoundError):
    """The data are not on this machine; the message says how to get them."""


@dataclass(frozen=True)
class Split:
    """One split. `x`: inputs; `y`: labels (None if unlabelled);
    `t`: time stamps of a series (None otherwise)."""

    x: np.ndarray
    y: np.ndarray | None = None
    t: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Dataset:
    """A data set with fixed train / validation / test splits."""

    name: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    license: str = ""
    extra: dict = field(default_factory=dict)

    def summary(self) -> str:
        sizes = ", ".join(f"{k} {len(getattr(self, k)):,}" for k in ("train", "val", "test"))
        shape = tuple(self.train.x.shape[1:])
        text = f"{self.name}: {sizes}; x shape per item {shape}, dtype {self.train.x.dtype}"
        if self.classes:
            text += f"; {len(self.classes)} classes"
        return text


@dataclass(frozen=True)
class _Entry:
    loader: Callable[..., Dataset]
    description: str


registry: dict[str, _Entry] = {}


def register(name: str, description: str):
    """Decorator: make `loader` available as `edgelib.datasets.load(name)`."""

    def wrap(loader: Callable[..., Dataset]) -> Callable[..., Dataset]:
        key = name.lower()
        if key in registry and registry[key].loader is not loader:
            raise DatasetError(f"data set {name!r} is registered twice")
        registry[key] = _Entry(loader, description)
        return loader

    return wrap


def download_file(url: str, dest: Path, sha256: str, timeout: float = 20.0) -> Path:
    """Download `url` to `dest` once, check its SHA-256, and return `dest`.

    Fails fast with DatasetNotAvailable when the network is closed (no hang:
    every socket operation has `timeout` seconds).
    """
    dest = Path(dest)
    if dest.exists() and _sha256(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out)
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise DatasetNotAvailable(
            f"could not download {url} ({exc}). The network may be closed: the course's "
            f"default data sets work offline; to use this one, download the file on a "
            f"machine with a network and copy it to {dest}."
        ) from exc
    digest = _sha256(part)
    if digest != sha256:
        part.unlink(missing_ok=True)
        raise DatasetNotAvailable(
            f"download of {url} is corrupt: SHA-256 {digest}, expected {sha256}"
        )
    part.replace(dest)
    return dest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a train/val/test split with the same class mix in each part.

    Uses its own generator (`seed`), so the split does not depend on the
    notebook's global seed.
    """
    if not np.isclose(sum(fractions), 1.0):
        raise DatasetError(f"split fractions must sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        for k, chunk in enumerate(np.split(idx, [n_train, n_train + n_val])):
            parts[k].append(chunk)
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)  # type: ignore[return-value]
