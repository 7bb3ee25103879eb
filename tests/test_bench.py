import pytest

from edgelib import bench


def test_latency_reports_ordered_percentiles():
    stats = bench.latency(lambda: sum(range(200)), repeats=50, warmup=2)
    assert stats.repeats == 50
    assert 0 < stats.p50 <= stats.p90 <= stats.p99
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
