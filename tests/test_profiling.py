import platform

import numpy as np
import pytest

from edgelib import bench, profiling, tflite
from edgelib.runtime import EdgeModel

X86 = """processor\t: 0
model name\t: Some Xeon CPU @ 2.0GHz
flags\t\t: fpu sse4_1 avx fma avx2 avx512f avx512bw avx512_vnni amx_tile amx_int8
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes asimdhp asimddp i8mm sve
CPU implementer\t: 0x41
CPU part\t: 0xd0c
"""


def test_cpu_info_reads_x86_and_arm_cpuinfo():
    x86 = profiling.cpu_info(X86)
    assert x86["model"] == "Some Xeon CPU @ 2.0GHz"
    assert x86["isa"] == ["SSE4.1", "AVX", "FMA", "AVX2", "AVX-512F", "AVX-512BW",
                          "AVX-512 VNNI", "AMX", "AMX-INT8"]
    assert x86["int8_dot_product"] == ["AVX-512 VNNI", "AMX-INT8"]
    arm = profiling.cpu_info(ARM)
    assert arm["model"] == "ARM implementer 0x41 part 0xd0c"
    assert arm["isa"] == ["NEON", "FP16 arithmetic", "dotprod", "i8mm", "SVE"]
    assert arm["int8_dot_product"] == ["dotprod", "i8mm"]
    assert "dotprod, i8mm" in profiling.cpu_line(arm)


def test_cpu_info_degrades_without_cpuinfo():
    info = profiling.cpu_info("")
    assert info["isa"] == [] and not info["isa_known"]
    assert info["cores"] >= 1 and info["model"]
    assert "instruction sets unknown" in profiling.cpu_line(info)
    assert profiling.cpu_line().count(";") >= 1  # this machine, whatever it is


def _cache_dir(root, name, level, kind, size):
    index = root / name
    index.mkdir()
    for field, text in (("level", level), ("type", kind), ("size", size)):
        (index / field).write_text(text + "\n")


def test_cache_sizes_reads_sysfs_skips_instruction_caches(tmp_path):
    _cache_dir(tmp_path, "index0", "1", "Data", "32K")
    _cache_dir(tmp_path, "index1", "1", "Instruction", "64K")
    _cache_dir(tmp_path, "index2", "2", "Unified", "1024K")
    _cache_dir(tmp_path, "index3", "3", "Unified", "32M")
    assert profiling.cache_sizes(str(tmp_path)) == {"L1": 32 * 2**10, "L2": 2**20,
                                                     "L3": 32 * 2**20}


def test_cache_sizes_without_l3_or_sysfs(tmp_path):
    _cache_dir(tmp_path, "index0", "1", "Data", "32K")
    _cache_dir(tmp_path, "index2", "2", "Unified", "512K")  # a board with no L3
    assert profiling.cache_sizes(str(tmp_path)) == {"L1": 32 * 2**10, "L2": 512 * 2**10}
    if platform.system() == "Linux":  # nothing listed (macOS would ask sysctl instead)
        assert profiling.cache_sizes(str(tmp_path / "missing")) == {}


def test_cache_sizes_rejects_a_size_it_cannot_read(tmp_path):
    _cache_dir(tmp_path, "index0", "1", "Data", "lots")
    with pytest.raises(ValueError, match="expected a size such as '1024K', got 'lots'"):
        profiling.cache_sizes(str(tmp_path))


@pytest.fixture(scope="module")
def edges(tiny_digits_model):
    model, x = tiny_digits_model
    return {mode: EdgeModel(tflite.convert(model, mode, representative=x[:50]))
            for mode in ("float32", "int8")}, x


def test_invoke_latency_times_invoke_alone(edges):
    models, x = edges
    m = models["int8"]
    stats = bench.invoke_latency(m, x[0], runs=100, warmup=3)
    assert stats.repeats == 100 and 0 < stats.p50 <= stats.p90 <= stats.p99
    overhead = bench.conversion_overhead(m, x[0], runs=20, warmup=1)
    assert set(overhead) == {"input", "output"}
    assert all(o.repeats == 20 and o.p50 <= o.p90 for o in overhead.values())
    # invoke_only sets the quantized input once; the model still computes the right thing
    bench.invoke_only(m, x[0])()
    np.testing.assert_array_equal(m.outputs_now(), m.invoke(x[0]))
    with pytest.raises(ValueError, match="NaN"):
        bench.invoke_only(m, np.full((28, 28, 1), np.nan))
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        bench.invoke_latency(m, x[0], runs=0)


def test_delegation_finds_the_xnnpack_partition(edges):
    models, _ = edges
    rows = profiling.delegation(models["float32"])
    assert [r["op"] for r in rows] == models["float32"].ops()[:len(rows)]
    assert "DELEGATE" not in [r["op"] for r in rows]
    assert all(r["delegated"] for r in rows if r["op"] in ("CONV_2D", "FULLY_CONNECTED"))
    summary = profiling.delegation_summary(models["int8"])
    assert summary["partitions"] >= 1
    assert summary["delegated"] + len([r for r in profiling.delegation(models["int8"])
                                       if not r["delegated"]]) == summary["ops"]


def test_prefix_model_and_op_profile(edges):
    models, x = edges
    m = models["int8"]
    prefix = EdgeModel(profiling.prefix_model(m.content, 0))
    assert prefix.ops()[0] == m.ops()[0]
    with pytest.raises(ValueError, match="k must be in"):
        profiling.prefix_model(m.content, 999)
    rows = profiling.op_profile(m, m.prepare(x[0]), rounds=5, warmup=1)
    assert [r["op"] for r in rows] == [r["op"] for r in profiling.delegation(m)]
    assert all(r["ms"] is not None for r in rows)
    assert rows[-1]["cumulative_ms"] == pytest.approx(sum(r["ms"] for r in rows))
    kinds = profiling.by_op_type(rows)
    assert kinds["CONV_2D"]["count"] == 2
    assert sum(k["count"] for k in kinds.values()) == len(rows)
    plain = profiling.op_profile(m.content, rounds=3, warmup=0, delegate=False)
    assert not any(r["delegated"] for r in plain)
    with pytest.raises(ValueError, match="rounds must be"):
        profiling.op_profile(m, rounds=0)
