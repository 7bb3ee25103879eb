"""Execute chapter notebooks in place on a fresh kernel, and time each one.

    python scripts/execute_chapters.py                 # every chapter
    python scripts/execute_chapters.py 00 04           # chapters whose name starts so

Each notebook runs top to bottom in a new kernel with chapters/ as its
working directory; its outputs are stored in the file (what readers see and
what nbval compares). The measured times are written to the README's
chapter table (between the `timings` markers) and printed.
"""

from __future__ import annotations

import platform
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from readme_block import block, replace_block

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
README = ROOT / "README.md"


def execute(path: Path, timeout: int = 600) -> float:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(CHAPTERS)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nbformat.write(notebook, path)
    return elapsed


def with_timings(text: str, times: dict[str, float]) -> str:
    """`text` with the table between the timing markers updated by `times`.

    Rows of notebooks not in `times` keep their previous figure.
    """
    rows = dict(re.findall(r"^\| `([^`]+)` \| ([^|]+) \|$", block(text, "timings"), re.M))
    rows.update({name: f"{seconds:.0f} s" for name, seconds in times.items()})
    cpu = f"{platform.machine()}, Python {platform.python_version()}"
    table = ["| notebook | time to execute (2 cores, " + cpu + ") |", "|---|---|"]
    table += [f"| `{name}` | {rows[name]} |" for name in sorted(rows)]
    return replace_block(text, "timings", "\n".join(table))


def main(prefixes: list[str]) -> None:
    books = sorted(p for p in CHAPTERS.glob("*.ipynb")
                   if not prefixes or p.name.startswith(tuple(prefixes)))
    if not books:
        sys.exit(f"no notebook in chapters/ matches {prefixes}")
    times = {}
    for path in books:
        seconds = execute(path)
        times[path.name] = seconds
        print(f"{path.name:<45} {seconds:6.1f} s", flush=True)
    README.write_text(with_timings(README.read_text(), times))


if __name__ == "__main__":
    main(sys.argv[1:])
