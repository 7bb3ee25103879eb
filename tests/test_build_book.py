"""The website's staging step (scripts/build_book.py): what a chapter page shows
of an exercise, and how links into the repository are rewritten. The built site
itself is tested in a browser by `make book-test` (book/test_site.py)."""

import importlib.util
import sys
from pathlib import Path

import nbformat

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
spec = importlib.util.spec_from_file_location("build_book", SCRIPTS / "build_book.py")
build_book = importlib.util.module_from_spec(spec)
sys.modules["build_book"] = build_book
spec.loader.exec_module(build_book)


def grader(grade_id, solution, grade=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution,
            "schema_version": 3, "solution": solution, "task": False}
    if points:
        meta["points"] = points
    return {"nbgrader": meta}


def exercise_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python"}
    answer = nbformat.v4.new_code_cell(
        "x = None\n### BEGIN SOLUTION\nx = 42\n### END SOLUTION",
        metadata=grader("ch99-ex1-answer", True))
    answer.outputs = [nbformat.v4.new_output("stream", text="42\n")]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 99 · A chapter"),
        nbformat.v4.new_markdown_cell("### Exercise 1", metadata=grader("ch99-ex1-prompt", False)),
        answer,
        nbformat.v4.new_code_cell(
            "check(x is not None, 'x')\n### BEGIN HIDDEN TESTS\nassert x == 42\n"
            "### END HIDDEN TESTS", metadata=grader("ch99-ex1-check", False, True, 1)),
        nbformat.v4.new_markdown_cell("Because 6 x 7.",
                                      metadata=grader("ch99-ex1-written", True, True, 1)),
    ]
    return nb


def test_learner_edition_collapses_solutions_and_drops_hidden_tests():
    nb = build_book.prepare_notebook(exercise_notebook(), "learner", "99_a.ipynb")
    assert "Download the notebook <99_a.ipynb>" in nb.cells[1].source
    answer, check, written = nb.cells[3], nb.cells[4], nb.cells[5]
    assert "x = 42" in answer.source and "hide-cell" in answer.metadata["tags"]
    assert answer.metadata["mystnb"]["code_prompt_show"] == "Show solution"
    assert "assert x == 42" not in check.source and "check(x is not None" in check.source
    assert written.source.startswith(":::{dropdown}") and "6 x 7" in written.source


def test_student_edition_holds_stubs_without_outputs():
    nb = build_book.prepare_notebook(exercise_notebook(), "student", "99_a.ipynb")
    answer, check, written = nb.cells[3], nb.cells[4], nb.cells[5]
    assert "x = 42" not in answer.source and "raise NotImplementedError()" in answer.source
    assert answer.outputs == []
    assert "assert x == 42" not in check.source
    assert "6 x 7" not in written.source


def test_links_into_the_repository_point_to_pages_or_become_text():
    pages = {"docs/instructor_guide.md": "instructor_guide.md"}
    text = ("[guide](docs/instructor_guide.md), [tests](#how-the-tests-work), "
            "[nbgrader](https://nbgrader.readthedocs.io), [code](edgelib/lm.py)")
    assert build_book.relink(text, pages) == (
        "[guide](instructor_guide.md), tests, [nbgrader](https://nbgrader.readthedocs.io), code")
