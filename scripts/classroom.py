"""The classroom edition: nbgrader builds the student version of chapters.

    python scripts/classroom.py [NN ...]          # or: make student [CHAPTERS="10 11"]
    python scripts/classroom.py --walk [NN ...]  # prove every check rejects stub and wrong answer
    python scripts/classroom.py --autograde [NN ...]  # nbgrader autograde: full and zero marks
    python scripts/classroom.py --classroom [--untouched-part=K/N] [NN ...]
                                  # both, sharing one execution (CI's way); the untouched
                                  # student edition graded for part K of N of the chapters
    python scripts/classroom.py --summary        # exercises and points per chapter, written
                                                 # into docs/instructor_guide.md

Makes an nbgrader course directory (default classroom/, git-ignored) with
one assignment per chapter, `source/<chapter>/<chapter>.ipynb` copied from
chapters/, and runs `nbgrader generate_assignment` on each: the student
edition lands in `classroom/release/<chapter>/` with every solution region
replaced by a stub, the outputs of solution cells cleared, hidden tests
removed and checks locked; the course's own cell metadata (the recorded
wrong answers) is removed too. Everything else of the chapter is kept.

`--autograde` has nbgrader execute both submissions of every chapter (the
source notebook, full marks; the untouched student edition, zero): the full
proof, two executions per chapter. `--classroom` proves the same with one
execution less: two workers walk the chapters and have nbgrader autograde
the untouched student editions (two notebooks at a time on two cores), and
the notebook the walk executed, with the solutions in place, is then the
solution's submission: nbgrader grades its outputs as they are (its
ClearOutput and Execute steps switched off). `--untouched-part=K/N` grades
the untouched student edition of every N-th chapter only, from the K-th
(CI takes a part that changes with the commit).

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
import sys
from pathlib import Path

from readme_block import slowest_first

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
README = ROOT / "README.md"
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
        "c.Execute.timeout = 600\n")


def nbgrader(course_dir: Path, command: str, assignment: str, student: str | None = None,
             execute: bool = True) -> None:
    """Run nbgrader's `command` ("generate_assignment" or "autograde" of `student`'s
    submission) on `assignment`, in this process through nbgrader's API: the
    same converters as its command line, without an interpreter start-up (4 s)
    per call. execute=False: autograde grades the outputs the notebook holds
    (nbgrader's ClearOutput and Execute steps off)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader calls `alembic` from the environment's bin on a new gradebook
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    if not execute:
        config.ClearOutput.enabled = False
        config.Execute.enabled = False
    api = NbGraderAPI(config=config)
    if command == "generate_assignment":
        result = api.generate_assignment(assignment, force=True)
    elif command == "autograde":
        result = api.autograde(assignment, student, force=True)
    else:
        raise ClassroomError(f"nbgrader command {command!r}: expected generate_assignment "
                             "or autograde")
    if not result["success"]:
        raise ClassroomError(f"nbgrader {command} {assignment} failed:\n"
                             f"{result.get('log', '')}\n{result.get('error', '')}")


def strip_course_metadata(path: Path) -> None:
    """Remove the course's own cell metadata (the recorded wrong answers, which
    can sit close to the solution) from a student notebook."""
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        cell.get("metadata", {}).pop("course", None)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


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
        nbgrader(course_dir, "generate_assignment", assignment)
        released[assignment] = course_dir / "release" / assignment / book.name
        strip_course_metadata(released[assignment])
    return released


STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
CHECK_FAILED = "ExerciseCheckFailed"


def with_region(source: str, replacement: str) -> str:
    """`source` with its solution region (markers included) replaced."""
    return SOLUTION.sub(lambda _: replacement.rstrip("\n"), source, count=1)


def walk(book: Path, timeout: int = 600, save_to: Path | None = None) -> list[str]:
    """Run `book` top to bottom in one kernel; at each exercise run its checks
    three times: after the stub nbgrader gives students, after the solution
    cell's `course.wrong_answer`, and after the real solution. Each check must
    fail with the course's ExerciseCheckFailed on the stub, at least one must
    fail so on the wrong answer, and all must pass on the solution; every
    other cell must run without error (so every claim holds).

    `save_to`: write the executed notebook there, each cell with the outputs
    of its last run (the solution and the checks that passed on it).
    Returns one line per exercise; raises ClassroomError at the first breach.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(book, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(book.parent)}})
    found = {e["answer"]: e for e in exercises(notebook) if not e["written"]}
    checks = {i for e in found.values() for i in e["checks"]}

    def run(source: str, index: int):
        """None if the code ran, else (exception name, message). The cell of the
        notebook at `index` keeps the outputs when it is `source` (its own code)."""
        cell = notebook.cells[index]
        target = cell if source == cell.source else nbformat.v4.new_code_cell(source)
        try:
            client.execute_cell(target, index)
        except CellExecutionError as error:
            return error.ename, error.evalue
        return None

    report = []
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code" or index in checks:
                continue
            exercise = found.get(index)
            if exercise is None:
                if (failed := run(cell.source, index)) is not None:
                    raise ClassroomError(f"{book.name} cell {index} fails: {failed}")
                continue
            name = grader(cell)["grade_id"]
            wrong = cell.metadata.get("course", {}).get("wrong_answer")
            if not wrong:
                raise ClassroomError(f"{book.name} {name}: no course.wrong_answer")
            check_cells = [(i, notebook.cells[i].source) for i in exercise["checks"]]
            for label, answer in (("stub", STUB), ("wrong answer", wrong)):
                run(with_region(cell.source, answer), index)  # may raise: the stub does
                failures = [run(source, i) for i, source in check_cells]
                crashes = [f for f in failures if f and f[0] != CHECK_FAILED]
                if crashes:
                    raise ClassroomError(f"{book.name} {name}: on the {label} a check crashes "
                                         f"instead of explaining: {crashes[0]}")
                if label == "stub" and not all(failures):
                    raise ClassroomError(f"{book.name} {name}: a check passes on the stub")
                if not any(failures):
                    raise ClassroomError(f"{book.name} {name}: the checks accept the {label}")
            if (failed := run(cell.source, index)) is not None:
                raise ClassroomError(f"{book.name} {name}: the solution fails: {failed}")
            for i, source in check_cells:
                if (failed := run(source, i)) is not None:
                    raise ClassroomError(f"{book.name} {name}: a check rejects the solution: "
                                         f"{failed}")
            first = next(f for f in failures if f)[1].splitlines()[0]
            report.append(f"{name}: stub and wrong answer rejected ({first[:70]})")
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, save_to)
    return report


GUIDE = ROOT / "docs" / "instructor_guide.md"


def summary_table(books: list[Path]) -> str:
    """Exercises and points per chapter (Markdown), from the notebooks' nbgrader cells."""
    lines = ["| chapter | exercises | autograded points | written answers (graded by hand) "
             "| hidden tests |", "|---|---|---|---|---|"]
    totals = [0, 0, 0, 0]
    for book in books:
        nb = json.loads(book.read_text())
        found = exercises(nb)
        if not found:
            lines.append(f"| `{book.stem}` | not converted yet | | | |")
            continue
        numbers = {re.search(r"ex(\d+)", grader(nb["cells"][e["answer"]])["grade_id"]).group(1)
                   for e in found}
        points = sum(grader(c).get("points", 0) for c in nb["cells"]
                     if grader(c).get("grade") and not grader(c).get("solution"))
        written = sum(e["written"] for e in found)
        hidden = sum(bool(HIDDEN.search(source_of(c))) for c in nb["cells"])
        row = [len(numbers), points, written, hidden]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        lines.append(f"| `{book.stem}` | " + " | ".join(f"{v:g}" for v in row) + " |")
    lines.append("| **all** | " + " | ".join(f"**{v:g}**" for v in totals) + " |")
    return "\n".join(lines)


SUBMISSIONS = ("solution", "untouched")  # the source notebook; the student edition as released


def graded_scores(course_dir: Path, assignment: str, student: str) -> dict[str, tuple]:
    """{grade_id: (score, max score, auto)} of one autograded submission, from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(assignment, student)
        return {grade.name: (grade.score, grade.max_score, grade.auto_score is not None)
                for notebook in submission.notebooks for grade in notebook.grades}


def error_of(cell) -> tuple[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output["ename"], output["evalue"]
    return None


def submit(course_dir: Path, assignment: str, student: str, notebook: Path,
           execute: bool = True) -> None:
    """Hand in `notebook` as `student`'s submission and have nbgrader autograde it.

    execute=False: nbgrader grades the outputs the notebook already holds (its
    ClearOutput and Execute steps off), for a notebook the walk has just run.
    """
    folder = course_dir / "submitted" / student / assignment
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(notebook, folder / notebook.name)
    nbgrader(course_dir, "autograde", assignment, student, execute=execute)


def verify_grades(course_dir: Path, book: Path, untouched: bool = True) -> str:
    """Full marks for the solution and (if `untouched`) zero for the untouched
    student edition; one report line, or ClassroomError."""
    assignment = book.stem
    full = graded_scores(course_dir, assignment, "solution")
    auto = {name: top for name, (_, top, is_auto) in full.items() if is_auto}
    short = [name for name in auto if full[name][0] != auto[name]]
    if short:
        raise ClassroomError(f"{assignment}: the solution does not get full marks on {short}")
    solved = json.loads((course_dir / "autograded" / "solution" / assignment /
                         book.name).read_text())
    failed = [i for i, cell in enumerate(solved["cells"]) if error_of(cell)]
    if failed:
        cell = failed[0]
        raise ClassroomError(f"{assignment}: with the solutions, cell {cell} fails: "
                             f"{error_of(solved['cells'][cell])}")
    manual = len(full) - len(auto)
    line = (f"{assignment}: {len(auto)} checks, {sum(auto.values()):g} points; "
            f"solution {sum(full[n][0] for n in auto):g}")
    if not untouched:
        return line + f"; {manual} written answer(s) graded by hand"
    zero = graded_scores(course_dir, assignment, "untouched")
    given = [name for name in auto if zero[name][0] != 0]
    if given:
        raise ClassroomError(f"{assignment}: the untouched student edition scores on {given}")
    graded = json.loads((course_dir / "autograded" / "untouched" / assignment /
                         book.name).read_text())
    first = min(e["answer"] for e in exercises(graded))
    early = [i for i, cell in enumerate(graded["cells"][:first]) if error_of(cell)]
    if early:
        cell = early[0]
        raise ClassroomError(f"{assignment}: the student edition fails before its first "
                             f"exercise, in cell {cell}: {error_of(graded['cells'][cell])}")
    for cell in graded["cells"]:
        meta = grader(cell)
        if meta.get("grade") and not meta.get("solution"):
            failure = error_of(cell)
            if failure is None or failure[0] != CHECK_FAILED:
                raise ClassroomError(f"{assignment} {meta['grade_id']}: on the stub the check "
                                     f"does not fail with its own message: {failure}")
    return line + (f", untouched {sum(zero[n][0] for n in auto):g}; {manual} written "
                   "answer(s) graded by hand")


def autograde(books: list[Path], course_dir: Path = COURSE_DIR) -> list[str]:
    """Autograde two submissions of every chapter with nbgrader itself, each
    executed by nbgrader: the source notebook (every autograded check must get
    full points, and no cell may fail) and the student edition untouched
    (every check zero points, each failing with the course's
    ExerciseCheckFailed, and no error before the first exercise).

    Returns one line per chapter; raises ClassroomError on the first breach.
    """
    released = build(books, course_dir)
    report = []
    for book in books:
        submit(course_dir, book.stem, "solution", book)
        submit(course_dir, book.stem, "untouched", released[book.stem])
        report.append(verify_grades(course_dir, book))
    return report


def classroom(books: list[Path], course_dir: Path = COURSE_DIR, untouched: list[Path] | None = None,
              log=lambda line: print(line, flush=True)) -> list[str]:
    """The walk and the autograde with one execution per chapter fewer than both
    apart. Two workers share the jobs, the slowest chapters first (README's
    timing table) so that both finish close together: the walk of every chapter (stub, wrong
    answer, solution at every exercise), and nbgrader executing and grading the
    untouched student edition of each chapter in `untouched` (default: all),
    one at a time in one worker (its gradebook is one SQLite file). Then
    nbgrader grades the notebooks the walk executed as the solutions'
    submissions, as they are.

    Returns the walk's and the autograde's lines; raises ClassroomError.
    """
    import queue
    from concurrent.futures import ThreadPoolExecutor

    untouched = books if untouched is None else untouched
    released = build(books, course_dir)
    walked = {book.stem: course_dir / "walked" / book.stem / book.name for book in books}
    to_walk = queue.SimpleQueue()
    by_name = {book.name: book for book in books}
    for name in slowest_first(list(by_name), README.read_text()):
        to_walk.put(by_name[name])
    lines = {}

    def walk_the_rest() -> None:
        while True:
            try:
                book = to_walk.get_nowait()
            except queue.Empty:
                return
            lines[book] = [f"{book.stem} {line}"
                           for line in walk(book, save_to=walked[book.stem])]
            log(f"walked {book.stem}")

    def grade_untouched_then_walk() -> None:
        for book in untouched:
            submit(course_dir, book.stem, "untouched", released[book.stem])
            log(f"autograded the untouched student edition of {book.stem}")
        walk_the_rest()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for worker in [pool.submit(grade_untouched_then_walk), pool.submit(walk_the_rest)]:
            worker.result()
    report = [line for book in books for line in lines[book]]
    for book in books:
        submit(course_dir, book.stem, "solution", walked[book.stem], execute=False)
        report.append(verify_grades(course_dir, book, untouched=book in untouched))
    return report


def part_of(books: list[Path], spec: str) -> list[Path]:
    """The chapters of part K of N (`spec` "K/N"): every N-th one, from the K-th."""
    try:
        k, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise ClassroomError(f"--untouched-part takes K/N such as 1/3, got {spec!r}") from None
    if not 0 <= k < n:
        raise ClassroomError(f"--untouched-part K/N needs 0 <= K < N, got {spec!r}")
    return books[k::n]


def main(argv: list[str]) -> None:
    walking, grading, both = "--walk" in argv, "--autograde" in argv, "--classroom" in argv
    if "--summary" in argv:
        from readme_block import replace_block

        GUIDE.write_text(replace_block(GUIDE.read_text(), "exercises",
                                       summary_table(chapter_paths([]))))
        print(f"exercise table written to {GUIDE.relative_to(ROOT)}")
        return
    part = next((a.split("=", 1)[1] for a in argv if a.startswith("--untouched-part=")), None)
    argv = [a for a in argv if a not in ("--walk", "--autograde", "--classroom")
            and not a.startswith("--untouched-part=")]
    try:
        if both:
            books = [b for b in chapter_paths(argv) if exercises(json.loads(b.read_text()))]
            for line in classroom(books, untouched=part_of(books, part) if part else None):
                print(line, flush=True)
            return
        if grading:
            books = [b for b in chapter_paths(argv) if exercises(json.loads(b.read_text()))]
            for line in autograde(books):
                print(line, flush=True)
            return
        if walking:
            books = [b for b in chapter_paths(argv) if exercises(json.loads(b.read_text()))]
            for book in books:
                for line in walk(book):
                    print(f"{book.stem} {line}", flush=True)
            return
        released = build(chapter_paths(argv))
    except ClassroomError as error:
        sys.exit(str(error))
    for name, path in released.items():
        print(f"{name:<40} {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
