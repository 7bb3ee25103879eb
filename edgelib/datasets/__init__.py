"""The course's datasets behind one API, offline by default.

    from edgelib import datasets
    datasets.available()            # name -> one-line description
    ds = datasets.load("digits")    # a Dataset with fixed train/val/test splits
    ds.train.x, ds.train.y, ds.classes

Every data set lives in its own module of this package and registers its
loader with `@register(...)`; a new module is picked up automatically.
Loaders never touch the network unless the caller passes `download=True`,
and then with a timeout and a checksum.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._core import (
    CACHE_DIR,
    DATA_DIR,
    Dataset,
    DatasetError,
    DatasetNotAvailable,
    Split,
    download_file,
    register,
    registry,
)

__all__ = [
    "CACHE_DIR",
    "DATA_DIR",
    "Dataset",
    "DatasetError",
    "DatasetNotAvailable",
    "Split",
    "available",
    "describe",
    "download_file",
    "load",
    "register",
]

_discovered = False


def _discover() -> None:
    global _discovered
    if not _discovered:
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")
        _discovered = True


def available() -> dict[str, str]:
    """Names of the data sets and a one-line description of each."""
    _discover()
    return {name: entry.description for name, entry in sorted(registry.items())}


def load(name: str, **options) -> Dataset:
    """Load a data set by name; `options` go to its loader (see its docstring).

    Raises DatasetError for an unknown name or bad options, and
    DatasetNotAvailable (with instructions) when the files are missing.
    """
    _discover()
    if not isinstance(name, str):
        raise DatasetError(f"a data set name must be a string, got {type(name).__name__}")
    entry = registry.get(name.lower())
    if entry is None:
        names = ", ".join(sorted(registry))
        raise DatasetError(f"unknown data set {name!r}; available: {names}")
    return entry.loader(**options)


def describe(name: str) -> str:
    """The loader's documentation: splits, shapes, provenance, options."""
    _discover()
    entry = registry.get(name.lower())
    if entry is None:
        raise DatasetError(f"unknown data set {name!r}; available: {', '.join(sorted(registry))}")
    return entry.loader.__doc__ or entry.description
