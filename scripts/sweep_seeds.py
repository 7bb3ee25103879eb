"""Run chapters for several course seeds and tabulate every claim's figures.

    python scripts/sweep_seeds.py [--jobs 2] [NN ...] --seeds 0 1 2 3 4 5
    make sweep SEEDS="3 4 5" [CHAPTERS="03 10"] [PORTABLE=1]

Each (chapter, seed) runs top to bottom on a fresh kernel (nothing is
written back to chapters/), `--jobs` at a time. Every `claim(...)` a chapter
makes is logged by `edgelib.checks` (the EDGE_CLAIM_LOG variable) with the
figures behind it, so the table shows, claim by claim, what each seed
measured: the place to read how close a claim comes to its threshold.
`PORTABLE=1` runs it on the second kernel path (see the Makefile).

Writes artifacts/sweep/claims.md (one row per claim, one column per seed,
and each chapter's time per seed) and exits non-zero if a chapter failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
OUT = ROOT / "artifacts" / "sweep"


def run_one(book: str, seed: int, log: str) -> dict:
    """Execute chapters/`book` with course seed `seed`; claims go to `log`."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ.update(EDGE_SEED=str(seed), EDGE_CLAIM_LOG=log)
    notebook = nbformat.read(CHAPTERS / book, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(CHAPTERS)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except CellExecutionError as failure:
        error = f"{failure.ename}: {failure.evalue}"[:300]
    return {"book": book, "seed": seed, "seconds": time.perf_counter() - start, "error": error}


def read_claims(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def table(results: list[dict], claims: dict[tuple, list[dict]], seeds: list[int]) -> str:
    """Markdown: per chapter its time per seed, then every claim's figures per seed."""
    head = "| chapter / claim | " + " | ".join(f"seed {s}" for s in seeds) + " |"
    rule = "|---|" + "---|" * len(seeds)
    lines = [head, rule]
    by_key = {(r["book"], r["seed"]): r for r in results}
    for book in sorted({r["book"] for r in results}):
        cells = []
        for seed in seeds:
            r = by_key.get((book, seed))
            cells.append("" if r is None else f"{r['seconds']:.0f} s"
                         + (" **FAILED**" if r["error"] else ""))
        lines.append(f"| **{book}** | " + " | ".join(cells) + " |")
        statements = []
        for seed in seeds:
            for entry in claims.get((book, seed), []):
                if entry["statement"] not in statements:
                    statements.append(entry["statement"])
        for statement in statements:
            cells = []
            for seed in seeds:
                found = [e for e in claims.get((book, seed), []) if e["statement"] == statement]
                cells.append("; ".join(("" if e["held"] else "**FAILS** ") + (e["figures"] or "✓")
                                       for e in found).replace("|", "/").replace("\n", " "))
            lines.append(f"| {statement.replace('|', '/')} | " + " | ".join(cells) + " |")
        for seed in seeds:
            r = by_key.get((book, seed))
            if r is not None and r["error"]:
                lines.append(f"| seed {seed} stopped: {r['error'].replace('|', '/')} |"
                             + " |" * len(seeds))
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("chapters", nargs="*", help="name prefixes such as 03 10")
    args = parser.parse_args(argv)
    books = sorted(p.name for p in CHAPTERS.glob("[0-9][0-9]_*.ipynb")
                   if not args.chapters or p.name.startswith(tuple(args.chapters)))
    if not books:
        sys.exit(f"no notebook in {CHAPTERS} matches {args.chapters}")
    logs = Path(tempfile.mkdtemp(prefix="claims-"))
    jobs = [(book, seed, str(logs / f"{book}.{seed}.jsonl")) for seed in args.seeds
            for book in books]
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(run_one, *zip(*jobs, strict=True)):
            status = "FAILED " + result["error"] if result["error"] else "ok"
            print(f"seed {result['seed']} {result['book']:<42} {result['seconds']:6.1f} s  "
                  f"{status}", flush=True)
            results.append(result)
    claims = {(book, seed): read_claims(Path(log)) for book, seed, log in jobs}
    OUT.mkdir(parents=True, exist_ok=True)
    kernels = os.environ.get("ONEDNN_MAX_CPU_ISA", "default")
    text = (f"Seeds {args.seeds}, kernel path: ONEDNN_MAX_CPU_ISA={kernels}\n\n"
            + table(results, claims, args.seeds) + "\n")
    (OUT / "claims.md").write_text(text)
    print(f"claims table: {(OUT / 'claims.md').relative_to(ROOT)}")
    if any(r["error"] for r in results):
        sys.exit("some chapters failed (see above)")


if __name__ == "__main__":
    main(sys.argv[1:])
