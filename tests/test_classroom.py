"""The classroom edition: exercise cells follow nbgrader's conventions, and
nbgrader's student edition keeps no solution and no hidden test."""

import importlib
import json
import sys
from pathlib import Path

import nbformat.v4 as v4
import pytest

ROOT = Path(__file__).resolve().parents[1]

def _classroom():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module("classroom")
    finally:
        sys.path.pop(0)


classroom = _classroom()
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def _meta(grade_id, **flags):
    meta = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
            "solution": False, "task": False}
    meta.update(flags)
    return {"nbgrader": meta}


def _toy_notebook(path: Path, check: str = "ex1_answer == 42") -> None:
    answer = v4.new_code_cell("ex1_answer = None\n### BEGIN SOLUTION\nex1_answer = 2 * 21\n"
                              "### END SOLUTION")
    answer.metadata.update(_meta("ex1-answer", solution=True))
    answer.metadata["course"] = {"wrong_answer": "ex1_answer = 21"}
    test = v4.new_code_cell("from edgelib.checks import check\n"
                            "check(ex1_answer is not None, 'an answer is given')\n"
                            f"### BEGIN HIDDEN TESTS\ncheck({check}, 'twice 21')\n"
                            "### END HIDDEN TESTS")
    test.metadata.update(_meta("ex1-check", grade=True, locked=True, points=1))
    written = v4.new_markdown_cell("Because forty-two.")
    written.metadata.update(_meta("ex2-written", solution=True, grade=True, points=1))
    nb = v4.new_notebook(cells=[v4.new_markdown_cell("# 99 · Toy"), answer, test, written])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.write_text(json.dumps(nb))


def _leaks(source_nb: dict, student_nb: dict) -> list[str]:
    """Lines of solutions and hidden tests of `source_nb` found in `student_nb`
    (a line that the chapter also shows outside them, say `import numpy as np`,
    is no leak)."""
    student_lines = {line.strip() for c in student_nb["cells"]
                     for line in classroom.source_of(c).splitlines()}
    secrets, visible = [], []
    for cell in source_nb["cells"]:
        text = classroom.source_of(cell)
        if cell["cell_type"] == "markdown" and classroom.grader(cell).get("solution"):
            blocks, rest = [text], ""
        else:
            blocks = classroom.SOLUTION.findall(text) + classroom.HIDDEN.findall(text)
            rest = classroom.HIDDEN.sub("", classroom.SOLUTION.sub("", text))
        visible += [line.strip() for line in rest.splitlines()]
        for block in blocks:
            secrets += [line.strip() for line in block.splitlines() if len(line.strip()) > 12]
    shown = set(visible)
    return [line for line in secrets if line in student_lines and line not in shown]


def test_nbgrader_builds_a_student_edition_without_solutions(tmp_path):
    book = tmp_path / "chapters" / "99_toy.ipynb"
    book.parent.mkdir()
    _toy_notebook(book)
    released = classroom.build([book], tmp_path / "course")
    student = json.loads(released["99_toy"].read_text())
    texts = [classroom.source_of(c) for c in student["cells"]]
    assert "2 * 21" not in "".join(texts) and "== 42" not in "".join(texts)
    assert "raise NotImplementedError()" in texts[1] and texts[1].startswith("ex1_answer = None")
    assert texts[3].strip() == "YOUR ANSWER HERE"
    assert not any("course" in c["metadata"] for c in student["cells"]), "wrong answers left"
    assert _leaks(json.loads(book.read_text()), student) == []
    source = json.loads(book.read_text())
    assert "ex1_answer = 2 * 21" in _leaks(source, source)  # the leak test can fail


def test_walk_feeds_stub_wrong_answer_and_solution_to_every_check(tmp_path):
    book = tmp_path / "99_toy.ipynb"
    _toy_notebook(book)
    (line,) = classroom.walk(book)
    assert line.startswith("ex1-answer: stub and wrong answer rejected")
    _toy_notebook(book, check="ex1_answer > 0")  # a check that accepts the wrong answer
    with pytest.raises(classroom.ClassroomError, match="the checks accept the wrong answer"):
        classroom.walk(book)
    _toy_notebook(book, check="ex1_answer.real == 42")
    book.write_text(book.read_text().replace("check(ex1_answer is not None, 'an answer is given')",
                                             "pass"))  # no placeholder check: a crash on the stub
    with pytest.raises(classroom.ClassroomError, match="on the stub a check crashes"):
        classroom.walk(book)


def test_autograde_gives_the_solution_full_marks_and_the_student_edition_zero(tmp_path):
    book = tmp_path / "99_toy.ipynb"
    _toy_notebook(book)
    (line,) = classroom.autograde([book], tmp_path / "course")
    assert line == ("99_toy: 1 checks, 1 points; solution 1, untouched 0; 1 written answer(s) "
                    "graded by hand")
    _toy_notebook(book, check="ex1_answer is None")  # a check the solution fails
    with pytest.raises(classroom.ClassroomError, match="does not get full marks"):
        classroom.autograde([book], tmp_path / "course")


def test_build_refuses_a_chapter_without_exercise_cells(tmp_path):
    book = tmp_path / "98_plain.ipynb"
    book.write_text(json.dumps(v4.new_notebook(cells=[v4.new_markdown_cell("# 98")])))
    with pytest.raises(classroom.ClassroomError, match="no nbgrader exercise cells"):
        classroom.build([book], tmp_path / "course")


@pytest.mark.parametrize("book", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_are_nbgrader_cells(book):
    nb = json.loads(book.read_text())
    found = classroom.exercises(nb)
    code = [e for e in found if not e["written"]]
    assert len(code) >= 3, f"{book.name}: {len(code)} autograded exercises, at least 3 expected"
    ids = [classroom.grader(c)["grade_id"] for c in nb["cells"] if classroom.grader(c)]
    assert len(ids) == len(set(ids)), f"{book.name}: duplicate grade ids"
    for cell in nb["cells"]:
        text = classroom.source_of(cell)
        if "### BEGIN SOLUTION" in text or "### BEGIN HIDDEN TESTS" in text:
            meta = classroom.grader(cell)
            assert meta.get("solution") or meta.get("grade"), \
                f"{book.name}: solution or hidden-test markers in a cell without nbgrader metadata"
    for exercise in code:
        cell = nb["cells"][exercise["answer"]]
        assert classroom.SOLUTION.search(classroom.source_of(cell)), \
            f"{book.name} cell {exercise['answer']}: solution cell without solution markers"
        wrong = cell["metadata"].get("course", {}).get("wrong_answer", "")
        assert wrong.strip(), f"{book.name} cell {exercise['answer']}: no course.wrong_answer"
        assert exercise["checks"], f"{book.name} cell {exercise['answer']}: no check after it"
        for i in exercise["checks"]:
            meta = classroom.grader(nb["cells"][i])
            assert meta.get("points", 0) > 0 and meta.get("locked"), \
                f"{book.name} cell {i}: a check needs points and must be locked"


def test_student_edition_of_every_chapter_keeps_no_solution(tmp_path):
    released = classroom.build(CHAPTERS, tmp_path / "course")
    for book in CHAPTERS:
        student = json.loads(released[book.stem].read_text())
        assert _leaks(json.loads(book.read_text()), student) == [], book.name
        source_cells = json.loads(book.read_text())["cells"]
        assert len(student["cells"]) == len(source_cells), book.name


def test_instructor_guide_table_is_current():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from readme_block import block
    finally:
        sys.path.pop(0)
    current = block(classroom.GUIDE.read_text(), "exercises").strip()
    assert current == classroom.summary_table(CHAPTERS).strip(), \
        "docs/instructor_guide.md is out of date: run python scripts/classroom.py --summary"


def test_classroom_walks_and_grades_with_one_execution_less(tmp_path):
    book = tmp_path / "99_toy.ipynb"
    _toy_notebook(book)
    lines = classroom.classroom([book], tmp_path / "course", log=lambda line: None)
    assert lines[0].startswith("99_toy ex1-answer: stub and wrong answer rejected")
    assert lines[1] == ("99_toy: 1 checks, 1 points; solution 1, untouched 0; 1 written "
                        "answer(s) graded by hand")
    walked = json.loads((tmp_path / "course" / "walked" / "99_toy" / book.name).read_text())
    assert "".join(walked["cells"][2]["outputs"][0]["text"]).startswith("✓ an answer is given")
    # nbgrader graded those outputs as they were: a failed check in them costs its points
    walked["cells"][2]["outputs"] = [v4.new_output("error", ename="ExerciseCheckFailed",
                                                   evalue="not yet", traceback=[])]
    edited = tmp_path / "edited" / book.name
    edited.parent.mkdir()
    edited.write_text(json.dumps(walked))
    classroom.submit(tmp_path / "course", "99_toy", "solution", edited, execute=False)
    with pytest.raises(classroom.ClassroomError, match="does not get full marks"):
        classroom.verify_grades(tmp_path / "course", book)


def test_untouched_part_takes_every_nth_chapter_and_rejects_a_bad_spec():
    books = [Path(f"{n:02d}_x.ipynb") for n in range(7)]
    parts = [classroom.part_of(books, f"{k}/3") for k in range(3)]
    assert [b.name[:2] for b in parts[1]] == ["01", "04"]
    assert sorted(sum(parts, [])) == books  # the three parts cover the course once
    for spec in ("3/3", "1", "a/3", "-1/3"):
        with pytest.raises(classroom.ClassroomError, match="K/N"):
            classroom.part_of(books, spec)


def test_classroom_without_the_untouched_edition_grades_the_solution(tmp_path):
    book = tmp_path / "99_toy.ipynb"
    _toy_notebook(book)
    lines = classroom.classroom([book], tmp_path / "course", untouched=[],
                                log=lambda line: None)
    assert lines[1] == "99_toy: 1 checks, 1 points; solution 1; 1 written answer(s) graded by hand"
    assert not (tmp_path / "course" / "autograded" / "untouched").exists()
