"""Build the course's website from the stored, executed notebooks (nothing is run).

    python scripts/build_book.py                      # the learner's edition: build/book/html
    python scripts/build_book.py --edition student    # the student edition: build/book-student/html

`make book` (and `make book EDITION=student`) calls this with the course's
environment, which holds nbformat and nbgrader; the site itself is built by
Jupyter Book 1 from its own environment (.venv-book, `book/requirements.txt`),
whose pins do not fit beside the course's.

Steps:
1. stage the sources in build/<name>/src: `book/_config.yml`, a generated
   table of contents, a landing page (README's introduction, the two commands,
   the chapter map), the benchmark table, the instructor guide and the data
   sets' provenance, and every notebook of chapters/;
2. prepare each notebook with nbgrader's own preprocessors: hidden tests
   removed; in the learner's edition each solution collapsed behind a
   "Show solution" toggle; in the student edition each solution replaced by
   nbgrader's stub and its outputs cleared, as `make student` hands it out;
3. copy MathJax 3 from the django-static-mathjax wheel into the site, so
   that no page loads anything from the network;
4. run `jupyter-book build`, warnings as errors.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from edgelib.course import CHAPTERS  # noqa: E402

BOOK_DIR = ROOT / "book"
BOOK_BIN = ROOT / ".venv-book" / "bin"
BOOK_PYTHON = BOOK_BIN / "python"
EDITIONS = {"learner": ROOT / "build" / "book", "student": ROOT / "build" / "book-student"}
EXTRA_PAGES = {  # staged name: (source in the repository, the part of it to keep)
    "benchmark.md": ("README.md", "## The benchmark"),
    "instructor_guide.md": ("docs/instructor_guide.md", None),
    "data.md": ("data/README.md", None),
}
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def nbgrader_cell(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def prepare_notebook(nb, edition: str, download_name: str):
    """The notebook as the site shows it: hidden tests gone; solutions
    collapsed (learner) or replaced by nbgrader's stubs (student); a first
    cell that links the notebook and says how to open it."""
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    if edition == "student":
        solution_ids = {id(c) for c in nb.cells if nbgrader_cell(c).get("solution")}
        nb, _ = ClearSolutions().preprocess(nb, {})
        for cell in nb.cells:
            if id(cell) in solution_ids and cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
    else:
        for cell in nb.cells:
            if not nbgrader_cell(cell).get("solution"):
                continue
            if cell.cell_type == "code":
                tags = cell.metadata.setdefault("tags", [])
                tags.append("hide-cell")
                cell.metadata["mystnb"] = {"code_prompt_show": "Show solution",
                                           "code_prompt_hide": "Hide solution"}
            else:  # a written answer: the model answer in a closed dropdown
                cell.source = (":::{dropdown} Show the model answer\n"
                               + cell.source + "\n:::")
    how_to = (
        f"```{{admonition}} Run this chapter\n"
        f"{{download}}`Download the notebook <{download_name}>` "
        "and open it in JupyterLab: in a clone of the course, `make lab` creates the "
        "environment on first use and opens JupyterLab; open `chapters/"
        f"{download_name}` from its file browser and run the cells top to bottom "
        "(Run > Run All Cells).\n```"
    )
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(how_to))
    return nb


def section(text: str, heading: str | None) -> str:
    """The README section that starts with `heading`, up to the next one."""
    if heading is None:
        return text
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def relink(text: str, pages: dict[str, str]) -> str:
    """Links to files the site holds point to their pages; links into the
    repository that the site does not hold become plain text."""
    def one(match):
        label, target = match.groups()
        if target.startswith(("http://", "https://", "mailto:")):
            return match.group(0)
        path = target.split("#")[0]
        if path in pages:
            return f"[{label}]({pages[path]})"
        return label
    return LINK.sub(one, text)


def chapter_table(notebooks: list[Path]) -> str:
    by_number = {int(p.name[:2]): p for p in notebooks}
    rows = ["| part | # | chapter |", "|---|---|---|"]
    for ch in CHAPTERS:
        names = sorted(p.stem for p in notebooks if int(p.name[:2]) == ch.number)
        if ch.number not in by_number:
            raise FileNotFoundError(
                f"chapter {ch.number} ({ch.title}) has no notebook in chapters/")
        links = ", ".join(f"[{name}](chapters/{name}.ipynb)" for name in names)
        rows.append(f"| {ch.part} | {ch.number:02d} | {ch.title}: {links} |")
    return "\n".join(rows)


def landing_page(readme: str, notebooks: list[Path], pages: dict[str, str], edition: str) -> str:
    intro = readme[: readme.index("\n## Chapters")]
    edition_note = ("This is the student edition: exercises are to be solved, their "
                    "solutions are not in it." if edition == "student" else
                    "Each exercise's solution is on its page, collapsed behind a "
                    "\"Show solution\" toggle; try first.")
    return relink(intro, pages) + f"""

## The chapters

![Where each chapter works on the path from the data source to the cloud](course_map.png)

{chapter_table(notebooks)}

{edition_note}

## Also on this site

- [The benchmark](benchmark.md): every chapter model in every TFLite mode.
- [The instructor guide](instructor_guide.md): the classroom edition, grading, a semester plan.
- [The data sets](data.md): what each holds, where it comes from, its license.

## Publishing this site

`make book` writes the whole site to `build/book/html/` (the student edition,
`make book EDITION=student`, to `build/book-student/html/`): static files that
any web server or static host serves as they are, nothing fetched at view time.
`make book-test` opens every page in a headless browser first.
"""


def course_map(path: Path) -> None:
    """Chapter 00's map of the course, drawn by edgelib.plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgelib.plots import edge_cloud_map

    ax = edge_cloud_map()
    ax.figure.savefig(path, bbox_inches="tight", dpi=100)
    plt.close(ax.figure)


def toc(notebooks: list[Path]) -> str:
    lines = ["format: jb-book", "root: intro", "parts:"]
    for part in dict.fromkeys(ch.part for ch in CHAPTERS):
        numbers = {ch.number for ch in CHAPTERS if ch.part == part}
        lines += [f"  - caption: {part}", "    chapters:"]
        lines += [f"      - file: chapters/{p.stem}" for p in notebooks
                  if int(p.name[:2]) in numbers]
    lines += ["  - caption: Reference", "    chapters:"]
    lines += [f"      - file: {Path(name).stem}" for name in EXTRA_PAGES]
    return "\n".join(lines) + "\n"


def mathjax_dir() -> Path:
    """MathJax 3 (its es5 build, fonts included) from the django-static-mathjax wheel."""
    found = subprocess.run(
        [str(BOOK_PYTHON), "-c",
         "import importlib.util, pathlib; "
         "print(pathlib.Path(importlib.util.find_spec('mathjax').origin).parent"
         " / 'static' / 'mathjax' / 'es5')"],
        check=True, capture_output=True, text=True).stdout.strip()
    return Path(found)


def stage(edition: str, src: Path) -> int:
    if src.exists():
        shutil.rmtree(src)
    (src / "chapters").mkdir(parents=True)
    shutil.copy(BOOK_DIR / "_config.yml", src / "_config.yml")
    notebooks = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    pages = {f"chapters/{p.name}": f"chapters/{p.name}" for p in notebooks}
    pages.update({source: name for name, (source, _) in EXTRA_PAGES.items()})
    for nb_path in notebooks:
        nb = nbformat.read(nb_path, as_version=4)
        nbformat.write(prepare_notebook(nb, edition, nb_path.name), src / "chapters" / nb_path.name)
    readme = (ROOT / "README.md").read_text()
    (src / "intro.md").write_text(landing_page(readme, notebooks, pages, edition))
    for name, (source, heading) in EXTRA_PAGES.items():
        text = section((ROOT / source).read_text(), heading)
        (src / name).write_text(relink(text, pages).replace("\n## ", "\n# ", 1)
                                if heading else relink(text, pages))
    (src / "_toc.yml").write_text(toc(notebooks))
    course_map(src / "course_map.png")
    shutil.copytree(mathjax_dir(), src / "_mathjax" / "mathjax" / "es5")
    shutil.copy(BOOK_DIR / "favicon.svg", src / "favicon.svg")
    return len(notebooks) + 1 + len(EXTRA_PAGES)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", choices=sorted(EDITIONS), default="learner")
    args = parser.parse_args(argv)
    if not BOOK_PYTHON.exists():
        sys.exit(f"no {BOOK_PYTHON}: run `make book`, which creates the site's environment")
    out = EDITIONS[args.edition]
    src = out / "src"
    n_pages = stage(args.edition, src)
    build = out / "jb"
    if build.exists():
        shutil.rmtree(build)
    subprocess.run([str(BOOK_BIN / "jupyter-book"), "build", str(src),
                    "--path-output", str(build), "--warningiserror", "--quiet"], check=True)
    html = out / "html"
    if html.exists():
        shutil.rmtree(html)
    shutil.move(build / "_build" / "html", html)
    shutil.rmtree(build)
    print(f"{args.edition} edition: {n_pages} pages in {html.relative_to(ROOT)}/ "
          f"(open {html.relative_to(ROOT)}/index.html)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
