import pytest

from edgelib import bench


def test_latency_reports_ordered_percentiles():
    stats = bench.latency(lambda: sum(range(200)), repeats=50, warmup=2)
    assert stats.repeats == 50
    assert 0 < stats.best <= stats.p50 <= stats.p90 <= stats.p99
    assert "p50" in str(stats)


def test_compare_interleaves_and_gives_ratios():
    calls = []
    result = bench.compare({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                           repeats=10, warmup=1)
    assert set(result) == {"a", "b"}
    assert result["a"]["ratio_p50"] == 1.0
    assert result["b"]["latency"].repeats == 10
    assert calls[:4] == ["a", "b", "a", "b"]  # first calls, then interleaved rounds
    assert len(calls) == 2 * (1 + 1 + 10)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        bench.latency(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="warmup must be an int >= 0"):
        bench.latency(lambda: None, warmup=-1)
    with pytest.raises(TypeError, match="must be callable"):
        bench.latency(3)
    with pytest.raises(ValueError, match="at least one"):
        bench.compare({})
    with pytest.raises(ValueError, match="baseline 'c'"):
        bench.compare({"a": lambda: None}, baseline="c", repeats=1)
    with pytest.raises(TypeError, match="not callable"):
        bench.compare({"a": 1})


def _bench_script():
    import importlib
    import sys
    from pathlib import Path

    scripts = str(Path(__file__).resolve().parents[1] / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    return importlib.import_module("bench")


FAKE = {"m": {mode: {"accuracy": acc, "bytes": b, "gzip_bytes": b - 10, "p50_ms": t,
                     "p90_ms": t * 1.2, "io_ms": 0.01, "ops": 6, "delegated_ops": 6}
              for mode, acc, b, t in (("float32", 0.927, 96900, 0.12), ("int8", 0.926, 45912,
                                                                        0.08))}}


def test_accuracy_axis_is_honest():
    script = _bench_script()
    low, high = script.accuracy_limits([92.6, 92.7])
    assert high - low >= script.ACCURACY_SPAN and low <= 92.6 and high >= 92.7
    assert script.accuracy_limits([99.5, 99.9])[1] == 100.0  # never above 100 %
    low, high = script.accuracy_limits([40.0, 90.0])
    assert low <= 40.0 and high >= 90.0


def test_bench_table_and_plot_from_results(tmp_path):
    script = _bench_script()
    table = script.markdown_table(FAKE, cpu="Test CPU (x86_64), 2 cores; AVX2")
    assert "Test CPU (x86_64)" in table and "invoke() alone" in table
    assert "| m | int8 | 92.6% | 45,912 | 0.47 |" in table
    assert table.count("\n| m |") == 2
    script.plot(FAKE, tmp_path / "b.png", cpu="Test CPU")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
