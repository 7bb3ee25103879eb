"""Where a .tflite model's time goes: the CPU, the delegate, each operator.

    from edgelib import profiling
    print(profiling.cpu_line())          # model name, cores, int8/float kernel ISA
    profiling.cache_sizes()              # {"L1": bytes, "L2": ..., "L3": ...}
    profiling.delegation(edge_model)     # which operators XNNPACK runs
    rows = profiling.op_profile(blob)    # per-operator invoke() time
    profiling.by_op_type(rows)           # the same, summed per operator kind

LiteRT 2.3.0's Python interpreter exposes no op profiler (the C++
benchmark tool's --enable_op_profiling is not in the wheel), so
`op_profile` measures per-operator time itself, by prefixes: the model cut
after operator k (its operators 0..k, operator k's outputs made the model's
outputs) is timed like the whole model (invoke() only, median of many runs),
and operator k's time is the difference between prefix k and prefix k-1.
The prefixes are timed in interleaved rounds so that a change in machine load
touches all of them alike. Differences of medians are noisy at the
microsecond level (a tiny operator can come out slightly negative); sums
per operator kind (`by_op_type`) are steadier. The prefix models go through
the same delegate as the whole model, so an operator that XNNPACK does not
take shows its own cost plus the cost of leaving and re-entering the
delegate.

Needs only LiteRT and NumPy (no TensorFlow), like `edgelib.runtime`.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from .environment import quiet_native_stderr
from .runtime import read_model_bytes

# Instruction-set extensions that decide which float and int8 kernels run:
# (flag in /proc/cpuinfo, name shown). x86: "flags"; ARM: "Features".
_X86_ISA = (("sse4_1", "SSE4.1"), ("avx", "AVX"), ("fma", "FMA"), ("avx2", "AVX2"),
            ("avx512f", "AVX-512F"), ("avx512bw", "AVX-512BW"), ("avx512_vnni", "AVX-512 VNNI"),
            ("avx_vnni", "AVX-VNNI"), ("avx512_bf16", "AVX-512 BF16"),
            ("avx512_fp16", "AVX-512 FP16"), ("amx_tile", "AMX"), ("amx_int8", "AMX-INT8"))
_ARM_ISA = (("asimd", "NEON"), ("neon", "NEON"), ("asimdhp", "FP16 arithmetic"),
            ("asimddp", "dotprod"), ("i8mm", "i8mm"), ("bf16", "BF16"), ("sve", "SVE"),
            ("sve2", "SVE2"), ("sme", "SME"))
# What each ISA feature means for int8 inference, for the notes beside a table.
INT8_DOT_PRODUCT = ("AVX-512 VNNI", "AVX-VNNI", "AMX-INT8", "dotprod", "i8mm")


def _cpuinfo_text() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_info(cpuinfo_text: str | None = None) -> dict:
    """The CPU: model name, architecture, logical cores (and those this
    process may use), and the instruction-set extensions that matter to
    float and int8 kernels (AVX2, AVX-512, VNNI, AMX on x86; NEON, dotprod,
    i8mm, SVE on ARM).

    Reads /proc/cpuinfo on Linux (pass its text to parse another machine's);
    elsewhere falls back to `platform` and returns an empty ISA list with
    `isa_known` False rather than guessing.
    """
    text = _cpuinfo_text() if cpuinfo_text is None else cpuinfo_text
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    machine = platform.machine() or "unknown"
    is_arm = "Features" in fields or "CPU implementer" in fields
    table = _ARM_ISA if is_arm else _X86_ISA
    isa: list[str] = []
    for flag, name in table:
        if flag in flags and name not in isa:
            isa.append(name)
    model = fields.get("model name") or fields.get("Model") or fields.get("Hardware")
    if not model and "CPU implementer" in fields:
        model = f"ARM implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    if not model:
        model = platform.processor() or machine
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {"model": model, "machine": machine, "cores": os.cpu_count() or 1,
            "usable_cores": usable, "isa": isa, "isa_known": bool(flags),
            "int8_dot_product": [name for name in isa if name in INT8_DOT_PRODUCT]}


def cpu_line(info: dict | None = None) -> str:
    """One line for beside a latency table, e.g.
    'AMD EPYC (x86_64), 2 cores; AVX2, AVX-512F, AVX-512 VNNI; int8 dot product: AVX-512 VNNI'."""
    info = info or cpu_info()
    cores = f"{info['cores']} cores"
    if info["usable_cores"] != info["cores"]:
        cores += f" ({info['usable_cores']} usable)"
    if not info["isa_known"]:
        return f"{info['model']} ({info['machine']}), {cores}; instruction sets unknown"
    dot = ", ".join(info["int8_dot_product"]) or "none"
    return (f"{info['model']} ({info['machine']}), {cores}; {', '.join(info['isa']) or 'none'}"
            f"; int8 dot product: {dot}")


_SYSFS_CACHE = "/sys/devices/system/cpu/cpu0/cache"
_SIZE_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}


def _sysfs_cache_sizes(root: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for index in sorted(Path(root).glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            text = (index / "size").read_text().strip()  # e.g. "32K", "1024K"
            level = "L" + (index / "level").read_text().strip()
        except OSError:
            continue
        number, unit = (text[:-1], text[-1]) if text[-1:] in _SIZE_UNITS else (text, "")
        if not number.isdigit():
            raise ValueError(f"{index / 'size'}: expected a size such as '1024K', got {text!r}")
        sizes[level] = max(sizes.get(level, 0), int(number) * _SIZE_UNITS.get(unit, 1))
    return sizes


def _sysctl_cache_sizes() -> dict[str, int]:
    sizes = {}
    for level, key in (("L1", "hw.l1dcachesize"), ("L2", "hw.l2cachesize"),
                       ("L3", "hw.l3cachesize")):
        try:
            out = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True,
                                 timeout=5, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return sizes
        if out.isdigit() and int(out) > 0:
            sizes[level] = int(out)
    return sizes


def cache_sizes(sysfs: str = _SYSFS_CACHE) -> dict[str, int]:
    """The data (and unified) caches one core sees, {"L1": bytes, "L2": ..., "L3": ...}:
    from Linux's sysfs (core 0; L1 and L2 are usually the core's own, L3 shared by the
    cores), else from macOS's sysctl. A level the system does not list is absent (many
    ARM boards have no L3); where nothing is listed the result is empty."""
    sizes = _sysfs_cache_sizes(sysfs)
    if not sizes and platform.system() == "Darwin":
        sizes = _sysctl_cache_sizes()
    return dict(sorted(sizes.items()))


# --- which operators the delegate runs --------------------------------------------


def _interpreter(content: bytes, threads: int, delegate: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with quiet_native_stderr():
        interpreter = Interpreter(model_content=content, num_threads=threads,
                                  experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    return interpreter


def _delegated_indices(ops: list[dict]) -> set[int]:
    """Indices of the operators that some DELEGATE node replaces.

    LiteRT lists the model's operators, then one DELEGATE node per partition
    the delegate took. A partition is the set of operators between its
    DELEGATE node's input and output tensors: walk back from its outputs
    through the producing operators, stopping at its inputs."""
    producer = {int(t): op["index"] for op in ops if op["op_name"] != "DELEGATE"
                for t in op["outputs"]}
    by_index = {op["index"]: op for op in ops}
    inside: set[int] = set()
    for node in ops:
        if node["op_name"] != "DELEGATE":
            continue
        stop = {int(t) for t in node["inputs"]}
        stack, seen = [int(t) for t in node["outputs"]], set()
        while stack:
            tensor = stack.pop()
            if tensor in seen or tensor in stop or tensor not in producer:
                continue
            seen.add(tensor)
            op = by_index[producer[tensor]]
            inside.add(op["index"])
            stack.extend(int(t) for t in op["inputs"] if int(t) >= 0)
    return inside


def delegation(model) -> list[dict]:
    """Per operator in execution order: index, op name, and whether the
    default delegate (XNNPACK on CPU) runs it. `model`: an EdgeModel, .tflite
    bytes or a path. Operators not delegated run on LiteRT's built-in kernels
    and split the graph into several delegate partitions."""
    if hasattr(model, "interpreter"):
        interpreter = model.interpreter
    else:
        interpreter = _interpreter(read_model_bytes(model), 1, True)
    ops = interpreter._get_ops_details()
    inside = _delegated_indices(ops)
    return [{"index": op["index"], "op": op["op_name"], "delegated": op["index"] in inside}
            for op in ops if op["op_name"] != "DELEGATE"]


def delegation_summary(model) -> dict:
    """Counts from `delegation`: operators, delegated ones, partitions (DELEGATE
    nodes), and the kinds of operator left to the built-in kernels."""
    rows = delegation(model)
    if hasattr(model, "interpreter"):
        interpreter = model.interpreter
    else:
        interpreter = _interpreter(read_model_bytes(model), 1, True)
    partitions = sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    left = sorted({r["op"] for r in rows if not r["delegated"]})
    return {"ops": len(rows), "delegated": sum(r["delegated"] for r in rows),
            "partitions": partitions, "not_delegated": left}


# --- per-operator time by prefixes -------------------------------------------------


def prefix_model(content: bytes, k: int) -> bytes:
    """The model cut after operator k: operators 0..k of the main subgraph, with
    operator k's outputs as the model's outputs (other subgraphs kept)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    if not 0 <= k < len(graph.operators):
        raise ValueError(f"k must be in [0, {len(graph.operators) - 1}], got {k}")
    graph.operators = graph.operators[:k + 1]
    graph.outputs = [int(t) for t in graph.operators[k].outputs]
    model.signatureDefs = []  # the signature names the old outputs
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _example_for(interpreter, example):
    detail = interpreter.get_input_details()[0]
    if example is None:
        return np.zeros(detail["shape"], detail["dtype"])
    return np.asarray(example, dtype=detail["dtype"]).reshape(detail["shape"])


def op_profile(model, example=None, threads: int = 1, delegate: bool = True,
               rounds: int = 60, warmup: int = 5) -> list[dict]:
    """Per-operator invoke() time of a .tflite model, by prefix differences.

    `model`: bytes, a path or an EdgeModel; `example`: one input already in
    the model's input dtype (e.g. `edge_model.prepare(x)`), default zeros;
    `delegate=False` turns the default XNNPACK delegate off (built-in kernels
    only). Returns, per operator in execution order: index, op, delegated,
    ms (this operator's share: prefix k minus prefix k-1, medians over
    `rounds` interleaved rounds) and cumulative_ms (prefix k's median).
    A prefix that cannot be built or run gets ms None.
    """
    content = model.content if hasattr(model, "content") else read_model_bytes(model)
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
    whole = _interpreter(content, threads, delegate)
    ops = [op for op in whole._get_ops_details() if op["op_name"] != "DELEGATE"]
    inside = _delegated_indices(whole._get_ops_details()) if delegate else set()
    x = _example_for(whole, example)
    runners: list = []
    for k in range(len(ops)):
        try:
            interpreter = _interpreter(prefix_model(content, k), threads, delegate)
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            for _ in range(warmup):
                interpreter.invoke()
            runners.append(interpreter.invoke)
        except (ValueError, RuntimeError):
            runners.append(None)
    samples: list[list[float]] = [[] for _ in runners]
    for _ in range(rounds):
        for k, run in enumerate(runners):
            if run is None:
                continue
            start = time.perf_counter()
            run()
            samples[k].append(time.perf_counter() - start)
    rows, previous = [], 0.0
    for k, op in enumerate(ops):
        cumulative = float(np.median(samples[k]) * 1e3) if samples[k] else None
        share = None if cumulative is None else cumulative - previous
        if cumulative is not None:
            previous = cumulative
        rows.append({"index": op["index"], "op": op["op_name"],
                     "delegated": op["index"] in inside, "ms": share,
                     "cumulative_ms": cumulative})
    return rows


def by_op_type(rows: list[dict]) -> dict[str, dict]:
    """`op_profile` rows summed per operator kind: {op: {"ms", "count",
    "not_delegated"}}, slowest first."""
    totals: dict[str, dict] = {}
    for r in rows:
        t = totals.setdefault(r["op"], {"ms": 0.0, "count": 0, "not_delegated": 0})
        t["ms"] += r["ms"] or 0.0
        t["count"] += 1
        t["not_delegated"] += int(not r["delegated"])
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]["ms"]))
