"""Freeze the Python language reference text shipped with CPython.

    python data/pydoc_topics/freeze.py

Reads `pydoc_data.topics.topics` (a dict: help topic -> plain English text,
which `help("assert")` prints) from the running CPython, and writes it as
JSON, xz-compressed, to `topics-<python version>.json.xz` beside this file,
with its SHA-256. The course's language-model corpus (`edgelib.lm`) reads the
frozen copy made with CPython 3.11.7: every patch release of Python
regenerates this text (3.11.2 and 3.11.7 already differ), and a frozen copy
keeps the corpus, hence the trained model and the notebook outputs,
identical on every machine. License: PSF License Version 2 (LICENSE-PSF.txt).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import platform
from pathlib import Path
from pydoc_data.topics import topics

HERE = Path(__file__).resolve().parent


def main() -> None:
    content = json.dumps(dict(sorted(topics.items())), ensure_ascii=False, indent=0)
    path = HERE / f"topics-{platform.python_version()}.json.xz"
    path.write_bytes(lzma.compress(content.encode("utf-8"), preset=9))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    chars = sum(len(text) for text in topics.values())
    print(f"{path.name}: {len(topics)} topics, {chars:,} characters, "
          f"{path.stat().st_size:,} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
