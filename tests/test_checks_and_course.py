import json
import re
from pathlib import Path

import numpy as np
import pytest

from edgelib.checks import (
    ClaimFailed,
    ExerciseCheckFailed,
    check,
    check_close,
    claim,
    claim_on_this_cpu,
)
from edgelib.course import CHAPTERS, STAGES, chapter, written

ROOT = Path(__file__).resolve().parents[1]


def test_check_passes_with_a_tick(capsys):
    check(True, "the answer")
    check_close([1.0, 2.0], np.array([1.0, 2.0]), "the vector")
    assert capsys.readouterr().out == "✓ the answer\n✓ the vector\n"


def test_check_failures_explain():
    with pytest.raises(ExerciseCheckFailed, match="not yet: x. Hint: look"):
        check(False, "x", hint="look")
    with pytest.raises(ExerciseCheckFailed, match="placeholder"):
        check_close(None, 1.0, "the scale")
    with pytest.raises(ExerciseCheckFailed, match=r"shape \(2,\), expected \(3,\)"):
        check_close([1, 2], [1, 2, 3], "v")
    with pytest.raises(ExerciseCheckFailed, match=r"yours, 1.5, is too high by 0.5 of the right"):
        check_close(1.5, 1.0, "the scale")
    with pytest.raises(ExerciseCheckFailed, match=r"1 of 3 values are off; the worst at index "
                                                  r"\(2,\) is too low by 0.25"):
        check_close([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], "v")
    with pytest.raises(ExerciseCheckFailed, match="NaN"):
        check_close([1.0, np.nan], [1.0, 2.0], "v")


def test_check_close_never_shows_the_expected_value():
    for actual, expected in ((1.5, 1.2345), ([1.0, 7.0], [1.0, 9.875])):
        with pytest.raises(ExerciseCheckFailed) as failure:
            check_close(actual, expected, "the value")
        assert "1.2345" not in str(failure.value) and "9.875" not in str(failure.value)


def test_course_map_is_consistent_with_chapters_folder():
    numbers = [c.number for c in CHAPTERS]
    assert numbers == sorted(set(numbers))
    assert all(set(c.stages) <= set(STAGES) and c.stages for c in CHAPTERS)
    for nb in (ROOT / "chapters").glob("*.ipynb"):
        match = re.match(r"(\d\d)_[a-z0-9_]+\.ipynb$", nb.name)
        assert match, f"{nb.name}: notebooks are named NN_topic.ipynb"
        assert chapter(int(match.group(1))), nb.name
    with pytest.raises(KeyError, match="no chapter 99"):
        chapter(99)


def test_written_chapters_are_the_notebooks_present(tmp_path):
    assert {0, 1, 2, 8} <= written() <= {c.number for c in CHAPTERS}
    (tmp_path / "00_start_here.ipynb").write_text("{}")
    (tmp_path / "05_x.ipynb").write_text("{}")
    (tmp_path / "99_not_in_the_map.ipynb").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    assert written(tmp_path) == {0, 5}
    with pytest.raises(FileNotFoundError, match="no chapters folder"):
        written(tmp_path / "missing")


def test_the_map_marks_planned_chapters(tf_ready):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgelib.plots import edge_cloud_map

    ax = edge_cloud_map(available={0, 1})
    labels = [t.get_text() for t in ax.texts]
    assert "00 Start here" in labels and "01 Backpropagation by hand" in labels
    assert "02 Optimizers (planned)" in labels and "02 Optimizers" not in labels
    assert "planned chapters" in ax.get_title()
    plt.close("all")
    ax = edge_cloud_map(available={c.number for c in CHAPTERS})
    assert not any("planned" in t.get_text() for t in ax.texts) and "\n" not in ax.get_title()
    plt.close("all")


def test_claim_prints_the_statement_only_and_fails_with_the_figures(capsys):
    claim(0.95 > 0.9, "accuracy above 90 %", "accuracy 95.00 %")
    assert capsys.readouterr().out == "✓ accuracy above 90 %\n"
    with pytest.raises(ClaimFailed, match=r"claim failed: accuracy above 90 % \(accuracy 85"):
        claim(0.85 > 0.9, "accuracy above 90 %", "accuracy 85.00 %")
    with pytest.raises(TypeError, match="bool condition"):
        claim(0.9, "a number is not a claim")


def test_a_cpu_claim_stops_by_default_and_reports_under_make_lab(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("EDGE_CPU_CLAIMS", raising=False)
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("EDGE_CLAIM_LOG", str(log))
    claim_on_this_cpu(1.0 < 2.0, "int8 is faster", "1.0 vs 2.0 us", "VNNI")
    assert capsys.readouterr().out == "✓ int8 is faster\n"
    with pytest.raises(ClaimFailed, match=r"int8 is faster \(3.0 vs 2.0 us\)"):
        claim_on_this_cpu(3.0 < 2.0, "int8 is faster", "3.0 vs 2.0 us", "VNNI")
    monkeypatch.setenv("EDGE_CPU_CLAIMS", "report")
    claim_on_this_cpu(3.0 < 2.0, "int8 is faster", "3.0 vs 2.0 us", "VNNI")
    assert capsys.readouterr().out == ("✗ not on this CPU: int8 is faster (3.0 vs 2.0 us); "
                                       "it depends on VNNI\n")
    assert [json.loads(line)["held"] for line in log.read_text().splitlines()] == [True, False,
                                                                                   False]
    with pytest.raises(TypeError, match="bool condition"):
        claim_on_this_cpu(0.5, "a number is not a claim", "", "")
    monkeypatch.setenv("EDGE_CPU_CLAIMS", "warn")
    with pytest.raises(ValueError, match="'assert' or 'report', got 'warn'"):
        claim_on_this_cpu(False, "int8 is faster", "", "VNNI")
