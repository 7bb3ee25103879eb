"""Execute chapter notebooks in place on a fresh kernel, and time each one.

    python scripts/execute_chapters.py                 # every chapter
    python scripts/execute_chapters.py 00 04           # chapters whose name starts so
    python scripts/execute_chapters.py --no-readme 10  # print the time, leave README.md alone

Each notebook runs top to bottom in a new kernel with chapters/ as its
working directory, with the default course seed (EDGE_SEED=0); its outputs
are stored in the file (what readers see and what nbval compares), without
volatile metadata (no execution time stamps: `volatile_metadata` finds them,
and a test keeps the stored notebooks clean). The measured times are written
to the README's chapter table (between the `timings` markers) and printed.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from readme_block import replace_block, timing_rows

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
README = ROOT / "README.md"


# Metadata that changes on every run: cell execution time stamps (nbclient,
# JupyterLab's "execution" and the older "ExecuteTime"), papermill's records.
VOLATILE_CELL_KEYS = ("execution", "ExecuteTime")
VOLATILE_NOTEBOOK_KEYS = ("papermill", "widgets")


def volatile_metadata(notebook) -> list[str]:
    """Where `notebook` carries run-dependent metadata (empty list: clean)."""
    found = [f"notebook metadata {key!r}" for key in VOLATILE_NOTEBOOK_KEYS
             if key in notebook.metadata]
    for index, cell in enumerate(notebook.cells):
        found += [f"cell {index} metadata {key!r}" for key in VOLATILE_CELL_KEYS
                  if key in cell.get("metadata", {})]
    return found


def strip_volatile_metadata(notebook) -> None:
    for key in VOLATILE_NOTEBOOK_KEYS:
        notebook.metadata.pop(key, None)
    for cell in notebook.cells:
        for key in VOLATILE_CELL_KEYS:
            cell.get("metadata", {}).pop(key, None)


def execute(path: Path, timeout: int = 600) -> float:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            record_timing=False,
                            resources={"metadata": {"path": str(CHAPTERS)}})
    os.environ["EDGE_SEED"] = "0"  # stored outputs come from the default seed
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    strip_volatile_metadata(notebook)
    nbformat.write(notebook, path)
    return elapsed


def with_timings(text: str, times: dict[str, float], existing: set[str] | None = None) -> str:
    """`text` with the table between the timing markers updated by `times`.

    Rows of notebooks not in `times` keep their previous figure; rows of
    notebooks not in `existing` (when given) are dropped.
    """
    rows = timing_rows(text)
    if existing is not None:
        rows = {name: row for name, row in rows.items() if name in existing}
    rows.update({name: f"{seconds:.0f} s" for name, seconds in times.items()})
    cpu = f"{platform.machine()}, Python {platform.python_version()}"
    table = ["| notebook | time to execute (2 cores, " + cpu + ") |", "|---|---|"]
    table += [f"| `{name}` | {rows[name]} |" for name in sorted(rows)]
    return replace_block(text, "timings", "\n".join(table))


def main(prefixes: list[str]) -> None:
    update_readme = "--no-readme" not in prefixes
    prefixes = [p for p in prefixes if p != "--no-readme"]
    books = sorted(p for p in CHAPTERS.glob("*.ipynb")
                   if not prefixes or p.name.startswith(tuple(prefixes)))
    if not books:
        sys.exit(f"no notebook in chapters/ matches {prefixes}")
    times = {}
    for path in books:
        seconds = execute(path)
        times[path.name] = seconds
        print(f"{path.name:<45} {seconds:6.1f} s", flush=True)
    if update_readme:
        existing = {p.name for p in CHAPTERS.glob("*.ipynb")}
        README.write_text(with_timings(README.read_text(), times, existing))


if __name__ == "__main__":
    main(sys.argv[1:])
