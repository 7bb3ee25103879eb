import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
spec = importlib.util.spec_from_file_location("execute_chapters", SCRIPTS / "execute_chapters.py")
execute_chapters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(execute_chapters)

START, END = "<!-- timings:start -->", "<!-- timings:end -->"


def test_timing_table_fills_an_empty_block_once():
    text = f"intro\nline two\n\n{START}\n{END}\n\nrest\n"
    out = execute_chapters.with_timings(text, {"00_a.ipynb": 21.6})
    assert out.count("| `00_a.ipynb` | 22 s |") == 1
    assert out.startswith("intro\nline two\n\n" + START) and out.endswith(END + "\n\nrest\n")


def test_timing_table_keeps_other_rows_and_replaces_updated_ones():
    text = execute_chapters.with_timings(f"{START}\n{END}", {"00_a.ipynb": 10, "01_b.ipynb": 20})
    out = execute_chapters.with_timings(text, {"01_b.ipynb": 31})
    assert "| `00_a.ipynb` | 10 s |" in out and "| `01_b.ipynb` | 31 s |" in out
    assert "20 s" not in out and out.count("time to execute") == 1


def test_notebooks_are_ordered_slowest_first_unknown_ones_before_all():
    from readme_block import slowest_first

    text = execute_chapters.with_timings(f"{START}\n{END}",
                                         {"00_a.ipynb": 10, "01_b.ipynb": 90, "02_c.ipynb": 10})
    names = ["00_a.ipynb", "01_b.ipynb", "02_c.ipynb", "03_new.ipynb"]
    # 03 has no row (unknown time: first); 00 and 02 tie and keep their order.
    assert slowest_first(names, text) == ["03_new.ipynb", "01_b.ipynb", "00_a.ipynb", "02_c.ipynb"]


def test_missing_markers_are_reported():
    with pytest.raises(ValueError, match="markers"):
        execute_chapters.with_timings("no table here", {"00_a.ipynb": 1})


def test_stored_notebooks_carry_no_volatile_metadata():
    import nbformat

    chapters = sorted((SCRIPTS.parent / "chapters").glob("*.ipynb"))
    assert chapters, "no notebook found in chapters/"
    dirty = {path.name: found for path in chapters
             if (found := execute_chapters.volatile_metadata(nbformat.read(path, as_version=4)))}
    assert not dirty, f"run `make execute` or strip these: {dirty}"


def test_volatile_metadata_is_found_and_stripped():
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    notebook.cells[0].metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    notebook.metadata["papermill"] = {"start_time": "2026-01-01"}
    assert len(execute_chapters.volatile_metadata(notebook)) == 2
    execute_chapters.strip_volatile_metadata(notebook)
    assert execute_chapters.volatile_metadata(notebook) == []


def test_rows_of_notebooks_gone_are_dropped():
    text = execute_chapters.with_timings(f"{START}\n{END}", {"00_a.ipynb": 10, "01_b.ipynb": 20})
    out = execute_chapters.with_timings(text, {"02_c.ipynb": 5}, existing={"00_a.ipynb",
                                                                            "02_c.ipynb"})
    assert "`00_a.ipynb` | 10 s" in out and "`02_c.ipynb` | 5 s" in out
    assert "01_b.ipynb" not in out
