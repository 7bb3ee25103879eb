"""The classroom edition: nbgrader builds the student version of chapters.

    python scripts/classroom.py [NN ...]          # or: make student [CHAPTERS="10 11"]

Makes an nbgrader course directory (default classroom/, git-ignored) with
one assignment per chapter, `source/<chapter>/<chapter>.ipynb` copied from
chapters/, and runs `nbgrader generate_assignment` on each: the student
edition lands in `classroom/release/<chapter>/` with every solution region
replaced by a stub, the outputs of solution cells cleared, hidden tests
removed and checks locked. Everything else of the chapter is kept.

Exercise cells follow nbgrader's conventions (schema version 3):
- a solution cell (`nbgrader.solution`, a `grade_id`) holds placeholders
  (`answer = None`) and then the solution between `### BEGIN SOLUTION` and
  `### END SOLUTION`; its `metadata.course.wrong_answer` is a plausible
  mistake that the check after it must reject (the tests feed it);
- the check after it is an autograded test cell (`grade`, `points`,
  locked), hidden parts between `### BEGIN HIDDEN TESTS` / `### END HIDDEN
  TESTS`;
- a written answer is a Markdown solution cell graded by hand.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
COURSE_DIR = ROOT / "classroom"

SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*$",
                      re.S | re.M)
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n(.*?)^[ \t]*### END HIDDEN TESTS[ \t]*$",
                    re.S | re.M)


class ClassroomError(RuntimeError):
    """The student edition could not be built; the message says why."""


def source_of(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def grader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def exercises(notebook: dict) -> list[dict]:
    """The exercises of a notebook: each solution cell with the check cells after it.

    Returns [{"answer": index, "checks": [indices], "written": bool}, ...] in order.
    """
    found = []
    for i, cell in enumerate(notebook["cells"]):
        meta = grader(cell)
        if meta.get("solution"):
            found.append({"answer": i, "checks": [], "written": cell["cell_type"] == "markdown"})
        elif meta.get("grade") and found:
            found[-1]["checks"].append(i)
    return found


def chapter_paths(prefixes: list[str]) -> list[Path]:
    books = sorted(p for p in CHAPTERS.glob("[0-9][0-9]_*.ipynb")
                   if not prefixes or p.name.startswith(tuple(prefixes)))
    if not books:
        raise ClassroomError(f"no notebook in {CHAPTERS} matches {prefixes}")
    return books


def prepare_course(course_dir: Path) -> None:
    course_dir.mkdir(parents=True, exist_ok=True)
    (course_dir / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'backprop-to-the-edge'\n"
        f"c.CourseDirectory.root = {str(course_dir.resolve())!r}\n"
        "# a chapter trains models: give each cell time (seconds)\n"
        "c.ExecutePreprocessor.timeout = 600\n")


def nbgrader(course_dir: Path, *args: str) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent  # nbgrader calls `alembic` from there on a new gradebook
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(bin_dir / "nbgrader"), *args], cwd=course_dir, env=env,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise ClassroomError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def build(books: list[Path], course_dir: Path = COURSE_DIR) -> dict[str, Path]:
    """Generate the student edition of `books`; return {chapter: release notebook path}."""
    prepare_course(course_dir)
    released = {}
    for book in books:
        if not exercises(json.loads(book.read_text())):
            raise ClassroomError(f"{book.name} has no nbgrader exercise cells")
        assignment = book.stem
        source = course_dir / "source" / assignment
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir(parents=True)
        shutil.copy(book, source / book.name)
        nbgrader(course_dir, "generate_assignment", assignment, "--force")
        released[assignment] = course_dir / "release" / assignment / book.name
    return released


def main(argv: list[str]) -> None:
    try:
        released = build(chapter_paths(argv))
    except ClassroomError as error:
        sys.exit(str(error))
    for name, path in released.items():
        print(f"{name:<40} {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
