"""The course map: chapters, parts, and where each sits on the edge-cloud path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The path data travel, left to right.
STAGES = ("data source", "edge device", "edge server", "cloud", "storage")


@dataclass(frozen=True)
class Chapter:
    number: int
    title: str
    part: str
    stages: tuple[str, ...]  # where on the edge-cloud path the chapter works


CHAPTERS = (
    Chapter(0, "Start here", "Foundations", ("data source", "edge device", "cloud")),
    Chapter(1, "Backpropagation by hand", "Foundations", ("cloud",)),
    Chapter(2, "Optimizers", "Foundations", ("cloud",)),
    Chapter(3, "Training in practice", "Foundations", ("cloud", "storage")),
    Chapter(4, "CNNs", "Architectures", ("cloud",)),
    Chapter(5, "RNNs and GRUs", "Architectures", ("data source", "cloud")),
    Chapter(6, "Transformers", "Architectures", ("cloud",)),
    Chapter(7, "A tiny large model", "Architectures", ("cloud", "storage")),
    Chapter(8, "Measuring a model", "To the edge", ("edge device",)),
    Chapter(9, "TFLite and post-training quantization", "To the edge", ("edge device",)),
    Chapter(10, "Quantization-aware training, below 8 bits", "To the edge",
            ("cloud", "edge device")),
    Chapter(11, "Pruning and clustering", "To the edge", ("cloud", "edge device")),
    Chapter(12, "Distillation and transfer learning", "To the edge", ("cloud", "edge device")),
    Chapter(13, "On-device inference", "To the edge", ("data source", "edge device")),
    Chapter(14, "A model as a service", "Edge and cloud", ("edge server", "cloud")),
    Chapter(15, "Split computing", "Edge and cloud", ("edge device", "edge server")),
    Chapter(16, "Distributed training", "Edge and cloud", ("cloud",)),
    Chapter(17, "A large model at the edge", "Edge and cloud", ("edge device", "cloud")),
)


# The notebooks of the course, named NN_topic.ipynb.
CHAPTERS_DIR = Path(__file__).resolve().parents[1] / "chapters"


def written(folder: str | Path | None = None) -> frozenset[int]:
    """Numbers of the chapters whose notebook exists in `folder` (by default
    the course's chapters/ folder). The others in CHAPTERS are planned."""
    folder = CHAPTERS_DIR if folder is None else Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no chapters folder at {folder}")
    found = {int(p.name[:2]) for p in folder.glob("[0-9][0-9]_*.ipynb")}
    return frozenset(ch.number for ch in CHAPTERS if ch.number in found)


def chapter(number: int) -> Chapter:
    for ch in CHAPTERS:
        if ch.number == number:
            return ch
    raise KeyError(f"no chapter {number}; chapters are 0..{CHAPTERS[-1].number}")
