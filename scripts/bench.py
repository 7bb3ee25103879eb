"""The course's benchmark: chapter models in every TFLite mode, one table.

    make bench          # or: python scripts/bench.py [--out DIR] [--repeats N] [--readme]
    python scripts/bench.py --sweep     # int8 vs float32 by model size and threads

For each model (the digits CNN of chapter 09, the smart-home command
Transformer of chapter 06, the keyword spotter of chapter 13), trains it (a
few epochs, seeded from the course seed $EDGE_SEED as its chapter does:
`EDGE_SEED=1 make bench` is another run), converts it to float32,
dynamic-range, float16 and full-int8 TFLite (and, for the Transformer, int8
with its layer norms, attention products and softmax kept in float: see
--sweep), and measures on its test set: accuracy, file size, gzip size, and
batch-1 latency on the LiteRT interpreter: p50 / p90 of invoke() alone (one
thread, warm-up, all modes interleaved in one run), and apart from it the
Python-side conversion around invoke() (validate + quantize the input, read +
dequantize the output). Prints one table with ratios vs float32 and the CPU
it ran on, and saves a plot (accuracy vs size, latency vs size) and the table
as JSON under --out (default artifacts/bench/, git-ignored); with --readme
(what `make bench` passes) the table also replaces the one quoted in
README.md.

--sweep (no training: weights do not change the time of dense kernels)
times invoke() alone for models from about 0.1 M to over 10 M
multiply-accumulates, float32 vs int8, at 1 and 2 threads, says which
operators XNNPACK runs, and prints a per-operator profile of the int8 and
float32 models (edgelib.profiling.op_profile).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from readme_block import replace_block

import edgelib
from edgelib import profiling
from edgelib.tflite import convert_int8_mixed

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    """A trained chapter model and the data a benchmark row needs."""
    model: object
    x_train: np.ndarray
    y_train: np.ndarray
    representative: np.ndarray   # calibration inputs for full-int8 conversion
    x_test: np.ndarray
    y_test: np.ndarray


def digits_cnn_case(seed: int) -> Case:
    from edgelib import datasets, models

    ds = datasets.load("digits")
    x_train, x_test = ds.train.x[..., None], ds.test.x[..., None]
    model = models.compile_classifier(models.digits_cnn(filters=(32, 64)))
    model.fit(x_train, ds.train.y, epochs=8, batch_size=32, verbose=0)
    return Case(model, x_train, ds.train.y, x_train[:300], x_test, ds.test.y)


def command_classifier_case(seed: int) -> Case:
    from edgelib import datasets, models, transformer

    ds = datasets.load("smarthome")
    model = transformer.command_classifier(ds.extra["tokenizer"].vocab_size, ds.extra["max_len"],
                                           len(ds.classes))
    models.compile_classifier(model, learning_rate=3e-3)
    model.fit(ds.train.x, ds.train.y, epochs=10, batch_size=64, verbose=0)
    representative = ds.train.x[np.random.default_rng(seed + 1).permutation(len(ds.train))[:200]]
    return Case(model, ds.train.x, ds.train.y, representative, ds.test.x, ds.test.y)


def keyword_spotter_case(seed: int) -> Case:
    from edgelib import audio, datasets, models, quantization

    ds = datasets.load("speech_commands")
    x_train = audio.kws_features(ds.train.x)
    clip_range = (float(x_train.min()), float(x_train.max()))
    x_test = audio.kws_features(ds.test.x, clip_range=clip_range)
    model = models.ds_cnn(x_train.shape[1:], classes=len(ds.classes))
    models.train_keyword_spotter(model, x_train, ds.train.y, seed=seed)
    return Case(model, x_train, ds.train.y, quantization.calibration_sample(x_train), x_test,
                ds.test.y)


def int8_mixed_variant(case: Case, seed: int) -> bytes:
    return convert_int8_mixed(case.model, case.representative)


def distilled_student_variant(case: Case, seed: int) -> bytes:
    """Chapter 12: a student CNN 1/6.6 of the teacher's size, distilled from it, int8."""
    from edgelib import distillation

    return distillation.distilled_student_int8(case.model, case.x_train, case.y_train,
                                               case.representative, seed=seed)


def pruned_int8_variant(case: Case, seed: int) -> bytes:
    """Chapter 11: conv2 and logits 90 % pruned (polynomial schedule, 2 epochs), int8."""
    from edgelib import compression

    return compression.pruned_int8(case.model, case.x_train, case.y_train, case.representative)


def clustered_int8_variant(case: Case, seed: int) -> bytes:
    """Chapter 11: 16 weight clusters per kernel (1 epoch), then int8."""
    from edgelib import compression

    return compression.clustered_int8(case.model, case.x_train, case.y_train,
                                      case.representative)



def _small_digits_case(filters: tuple[int, int]) -> Case:
    from edgelib import datasets, models

    ds = datasets.load("digits")
    x_train, x_test = ds.train.x[..., None], ds.test.x[..., None]
    model = models.compile_classifier(models.digits_cnn(filters=filters))
    model.fit(x_train, ds.train.y, epochs=5, batch_size=32, verbose=0)
    return Case(model, x_train, ds.train.y, x_train[:200], x_test, ds.test.y)


def digits_cnn_small_case(seed: int) -> Case:
    """Chapter 10: the digits CNN at 8 and 16 filters, 5 epochs."""
    return _small_digits_case((8, 16))


def digits_cnn_tiny_case(seed: int) -> Case:
    """Chapter 10, section 5: the digits CNN at 4 and 8 filters, 5 epochs."""
    return _small_digits_case((4, 8))


def ptq_3bit_variant(case: Case, seed: int) -> bytes:
    """Chapter 10: 3-bit weights (tfmot's n-bit scheme) calibrated after training, no training."""
    from edgelib import qat

    q_model = qat.quantize(case.model, weight_bits=3)
    qat.calibrate(q_model, case.model, case.representative)
    return qat.convert_qat(q_model, case.representative)


def qat_3bit_variant(case: Case, seed: int) -> bytes:
    """Chapter 10: 3-bit weights, quantization-aware fine-tuning (6 epochs, cosine decay)."""
    from edgelib import qat

    q_model = qat.quantize_and_finetune(case.model, case.x_train, case.y_train, epochs=6,
                                        weight_bits=3, cosine_decay=True)
    return qat.convert_qat(q_model, case.representative)


def qat_int8_variant(case: Case, seed: int) -> bytes:
    """Chapter 10: quantization-aware fine-tuning (tfmot, 2 epochs), then int8."""
    from edgelib import qat

    q_model = qat.quantize_and_finetune(case.model, case.x_train, case.y_train, epochs=2)
    return qat.convert_qat(q_model, case.representative)


CASES = {"digits CNN (ch. 09)": digits_cnn_case,
         "digits CNN 8-16 filters (ch. 10)": digits_cnn_small_case,
         "digits CNN 4-8 filters (ch. 10)": digits_cnn_tiny_case,
         "smart-home commands Transformer (ch. 06)": command_classifier_case,
         "keyword spotter DS-CNN (ch. 13)": keyword_spotter_case}

# Extra rows of a case beside its four TFLite modes: label -> function(case, seed)
# returning the .tflite bytes of a variant built from the case's trained model
# and data (the compression chapters 10-12 add theirs here).
VARIANTS = {"digits CNN (ch. 09)": {"distilled student int8": distilled_student_variant,
                                    "pruned int8": pruned_int8_variant,
                                    "clustered int8": clustered_int8_variant},
            "digits CNN 8-16 filters (ch. 10)": {"QAT int8": qat_int8_variant},
            "digits CNN 4-8 filters (ch. 10)": {"PTQ 3-bit": ptq_3bit_variant,
                                                "QAT 3-bit": qat_3bit_variant},
            "smart-home commands Transformer (ch. 06)": {"int8 mixed": int8_mixed_variant}}


def measure(name, build, repeats, seed):
    import tf_keras as keras

    from edgelib import bench, tflite
    from edgelib.runtime import EdgeModel

    keras.utils.set_random_seed(seed)  # each model the same, whatever runs before it
    start = time.perf_counter()
    case = build(seed)
    x_test, y_test = case.x_test, case.y_test
    rows = {}
    edges = {}
    blobs = {mode: tflite.convert(case.model, mode, representative=case.representative)
             for mode in tflite.MODES}
    for label, variant in VARIANTS.get(name, {}).items():
        keras.utils.set_random_seed(seed)
        blobs[label] = variant(case, seed)
    for mode, blob in blobs.items():
        edges[mode] = EdgeModel(blob, threads=1)
        accuracy = float(np.mean(edges[mode].predict(x_test).argmax(1) == y_test))
        summary = profiling.delegation_summary(edges[mode])
        rows[mode] = {"accuracy": accuracy, **tflite.sizes(blob),
                      "ops": summary["ops"], "delegated_ops": summary["delegated"],
                      "partitions": summary["partitions"]}
    example = x_test[0]
    warmup = max(10, repeats // 10)
    timed = bench.compare({m: bench.invoke_only(e, example) for m, e in edges.items()},
                          repeats=repeats, warmup=warmup)
    for mode, t in timed.items():
        overhead = bench.conversion_overhead(edges[mode], example, runs=max(100, repeats // 5),
                                             warmup=warmup)
        rows[mode].update(p50_ms=t["latency"].p50, p90_ms=t["latency"].p90,
                          p99_ms=t["latency"].p99,
                          io_ms=overhead["input"].p50 + overhead["output"].p50)
    print(f"  ({name}: built, converted and measured in {time.perf_counter() - start:.0f} s)",
          file=sys.stderr)
    return rows


def print_table(results, cpu: str):
    head = (f"{'model':<42}{'mode':<24}{'accuracy':>9}{'bytes':>10}{'x f32':>7}{'gzip':>10}"
            f"{'p50 ms':>9}{'p90 ms':>9}{'p50 x f32':>10}{'io ms':>8}{'XNNPACK ops':>13}")
    print(f"CPU: {cpu}")
    print("latency: invoke() alone, 1 thread, batch 1; io: Python-side quantize/dequantize "
          "around it (p50), not part of the model's latency")
    print(head)
    print("-" * len(head))
    for name, rows in results.items():
        ref = rows["float32"]
        for mode, r in rows.items():
            print(f"{name:<42}{mode:<24}{r['accuracy']:>9.1%}{r['bytes']:>10,}"
                  f"{r['bytes'] / ref['bytes']:>7.2f}{r['gzip_bytes']:>10,}"
                  f"{r['p50_ms']:>9.3f}{r['p90_ms']:>9.3f}{r['p50_ms'] / ref['p50_ms']:>10.2f}"
                  f"{r['io_ms']:>8.3f}{r['delegated_ops']:>7}/{r['ops']:<5}")


def markdown_table(results, cpu: str | None = None) -> str:
    """The table as Markdown, for the README's bench block."""
    lines = ["| model | mode | accuracy | bytes | x float32 | gzip bytes | p50 ms | p90 ms "
             "| p50 x float32 | quantize + dequantize ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        ref = rows["float32"]
        for mode, r in rows.items():
            lines.append(f"| {name} | {mode} | {r['accuracy']:.1%} | {r['bytes']:,} "
                         f"| {r['bytes'] / ref['bytes']:.2f} | {r['gzip_bytes']:,} "
                         f"| {r['p50_ms']:.3f} | {r['p90_ms']:.3f} "
                         f"| {r['p50_ms'] / ref['p50_ms']:.2f} | {r['io_ms']:.3f} |")
    cpu = cpu or profiling.cpu_line()
    return (f"Last `make bench` on {cpu}; Python {platform.python_version()}, LiteRT, "
            "1 thread, batch 1. Latency is the interpreter's invoke() alone (p50 / p90 of "
            "interleaved runs after warm-up); the Python-side quantize + dequantize around it "
            "is the last column, apart. Rows after the four modes are variants built from the "
            "same trained model in the same run: int8 mixed (ch. 06: int8 weights, layer norm "
            "and attention kept in float; `python scripts/bench.py --sweep` shows why), "
            "distilled student int8 (ch. 12: a CNN of 8 and 16 filters distilled from this "
            "teacher; 'x float32' compares it with the teacher), pruned int8 (ch. 11: conv2 and "
            "logits 90 % pruned), clustered int8 (ch. 11: 16 weight clusters per kernel), "
            "QAT int8 (ch. 10: quantization-aware fine-tuning), PTQ 3-bit and QAT 3-bit "
            "(ch. 10: 3-bit weights, stored as INT4, calibrated after training or "
            "fine-tuned under quantization).\n\n"
            + "\n".join(lines))


MODE_STYLE = {"float32": ("o", "#1f77b4"), "dynamic": ("s", "#ff7f0e"),
              "float16": ("^", "#2ca02c"), "int8": ("D", "#d62728"),
              "int8 mixed": ("P", "#9467bd"), "distilled student int8": ("v", "#8c564b"),
              "pruned int8": ("X", "#e377c2"), "clustered int8": ("*", "#17becf"),
              "QAT int8": ("h", "#bcbd22")}
ACCURACY_SPAN = 10.0  # percentage points shown on every accuracy axis, at least


def accuracy_limits(values_pct, span: float = ACCURACY_SPAN) -> tuple[float, float]:
    """An honest accuracy axis: at least `span` points tall, so that a 0.1-point
    difference looks like one, and never above 100."""
    low, high = min(values_pct), max(values_pct)
    middle = (low + high) / 2
    half = max(span, high - low + 2) / 2
    top = min(100.0, middle + half)
    return top - 2 * half, top


def plot(results, path, cpu: str | None = None):
    """Two rows of panels, one column per model: accuracy vs file size (an
    axis at least ACCURACY_SPAN points tall), invoke-only latency vs file
    size (p50 marker, bar up to p90). Modes are told apart by marker and
    colour in one legend, not by text next to the points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    names = list(results)
    fig, axes = plt.subplots(2, len(names), figsize=(4.6 * len(names), 7.2), dpi=100,
                             squeeze=False)
    for column, name in enumerate(names):
        rows = results[name]
        top, bottom = axes[0][column], axes[1][column]
        for mode, r in rows.items():
            marker, colour = MODE_STYLE.get(mode, ("x", "k"))
            kib = r["bytes"] / 1024
            # open markers: two modes at the same place both stay visible
            top.scatter(kib, r["accuracy"] * 100, marker=marker, facecolors="none",
                        edgecolors=colour, linewidths=1.8, s=70, zorder=3)
            bottom.errorbar(kib, r["p50_ms"], yerr=[[0], [r["p90_ms"] - r["p50_ms"]]],
                            marker=marker, color=colour, markerfacecolor="none",
                            markeredgewidth=1.8, markersize=8, capsize=3, zorder=3)
        top.set_ylim(*accuracy_limits([r["accuracy"] * 100 for r in rows.values()]))
        bottom.set_ylim(0, max(r["p90_ms"] for r in rows.values()) * 1.25)
        top.set_title(name, fontsize=10)
        top.set(xlabel="file size (KiB)", ylabel="test accuracy (%)")
        bottom.set(xlabel="file size (KiB)", ylabel="invoke() latency (ms)")
        for ax in (top, bottom):
            ax.set_xlim(0, max(r["bytes"] for r in rows.values()) / 1024 * 1.15)
            ax.grid(alpha=0.3)
    modes = [m for m in MODE_STYLE if any(m in rows for rows in results.values())]
    handles = [Line2D([], [], linestyle="", marker=MODE_STYLE[m][0], color=MODE_STYLE[m][1],
                      markerfacecolor="none", markeredgewidth=1.8, markersize=8, label=m)
               for m in modes]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    title = ("TFLite modes: accuracy vs size (top), latency vs size (bottom; "
             "p50 marker, bar to p90; 1 thread, batch 1)")
    fig.suptitle(title + (f"\n{cpu}" if cpu else ""), fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path)
    plt.close(fig)


# --- the sweep: int8 vs float32 by model size and threads ---------------------------


def sweep_models():
    """Untrained models from tiny to over 10 M MACs (weights do not change the
    time of dense kernels), with calibration inputs: DS-CNN-like keyword
    models (conv 10x4 stride 2, two depthwise-separable blocks, 49x10
    features) at widths 16, 64 and 256, the chapter-13 keyword spotter's
    shape, the digits CNN, and the smart-home command Transformer."""
    import tf_keras as keras

    from edgelib import models, transformer

    rng = np.random.default_rng(0)
    cases = {}
    for width in (16, 64, 256):
        keras.utils.set_random_seed(0)
        cases[f"DS-CNN 49x10, width {width}"] = (
            models.ds_cnn((49, 10, 1), channels=width, blocks=2, classes=12, strides=(2, 2)),
            rng.normal(size=(100, 49, 10, 1)).astype(np.float32))
    keras.utils.set_random_seed(0)
    cases["keyword spotter DS-CNN (ch. 13)"] = (
        models.ds_cnn(), rng.normal(size=(100, 49, 40, 1)).astype(np.float32))
    keras.utils.set_random_seed(0)
    cases["digits CNN (ch. 09)"] = (models.digits_cnn(filters=(32, 64)),
                                    rng.uniform(size=(100, 28, 28, 1)).astype(np.float32))
    keras.utils.set_random_seed(0)
    cases["smart-home Transformer (ch. 06)"] = (
        transformer.command_classifier(200, 16, 8),
        rng.integers(1, 200, (100, 16)).astype(np.int32))
    return cases


def sweep(runs: int, threads=(1, 2)):
    """Time invoke() alone for every sweep model, float32 vs int8 (and int8
    mixed for the Transformer), at each thread count; return the rows and a
    per-operator profile (1 thread) of the largest DS-CNN and the Transformer."""
    from edgelib import bench, measure, tflite
    from edgelib.runtime import EdgeModel

    rows, profiles = [], {}
    for name, (model, sample) in sweep_models().items():
        blobs = {"float32": tflite.convert(model, "float32"),
                 "int8": tflite.convert(model, "int8", representative=sample)}
        if "Transformer" in name:
            blobs["int8 mixed"] = convert_int8_mixed(model, sample)
        macs = sum(measure.tflite_macs(EdgeModel(blobs["float32"])).values())
        for t in threads:
            edges = {mode: EdgeModel(blob, threads=t) for mode, blob in blobs.items()}
            timed = bench.compare({m: bench.invoke_only(e, sample[0]) for m, e in edges.items()},
                                  repeats=runs, warmup=max(10, runs // 10))
            for mode, result in timed.items():
                summary = profiling.delegation_summary(edges[mode])
                lat = result["latency"]
                rows.append({"model": name, "macs": macs, "mode": mode, "threads": t,
                             "p50_ms": lat.p50, "p90_ms": lat.p90, "x_float32": result["ratio_p50"],
                             "delegated_ops": summary["delegated"], "ops": summary["ops"],
                             "partitions": summary["partitions"],
                             "not_delegated": summary["not_delegated"]})
        if name.endswith("width 256") or "Transformer" in name:
            profiles[name] = {mode: profiling.op_profile(blob, EdgeModel(blob).prepare(sample[0]),
                                                         rounds=max(30, runs // 4))
                              for mode, blob in blobs.items()}
        print(f"  ({name}: done)", file=sys.stderr)
    return rows, profiles


def print_sweep(rows, profiles, cpu: str):
    print(f"CPU: {cpu}")
    print("MACs: convolutions and dense layers (attention products not counted). "
          "invoke() alone, batch 1, p50 / p90 of interleaved runs; x f32: p50 / float32's "
          "p50 (below 1 = faster); XNNPACK: operators delegated / all (partitions)")
    head = (f"{'model':<34}{'MACs':>12}{'mode':>12}{'thr':>4}{'p50 ms':>9}{'p90 ms':>9}"
            f"{'x f32':>7}{'XNNPACK':>13}  not delegated")
    print(head)
    print("-" * (len(head) + 20))
    for r in rows:
        left = ", ".join(r["not_delegated"]) or "-"
        print(f"{r['model']:<34}{r['macs']:>12,}{r['mode']:>12}{r['threads']:>4}"
              f"{r['p50_ms']:>9.4f}{r['p90_ms']:>9.4f}{r['x_float32']:>7.2f}"
              f"{r['delegated_ops']:>6}/{r['ops']:<3}({r['partitions']:>2})  {left}")
    for name, by_mode in profiles.items():
        print(f"\nper-operator profile, {name} (1 thread; ms summed per kind, "
              "prefix differences; * = some not delegated):")
        kinds = {mode: profiling.by_op_type(p) for mode, p in by_mode.items()}
        ops = list(dict.fromkeys(k for mode in kinds.values() for k in mode))
        print(f"{'op':<22}" + "".join(f"{mode:>14}" for mode in kinds))
        for op in ops:
            cells = []
            for mode in kinds:
                t = kinds[mode].get(op)
                star = "*" if t and t["not_delegated"] else " "
                cells.append(f"{'':>14}" if t is None else
                             f"{t['ms']:>9.4f}{star}x{t['count']:<3}")
            print(f"{op:<22}" + "".join(cells))
        totals = "".join(f"{sum(r['ms'] or 0 for r in p):>14.4f}" for p in by_mode.values())
        print(f"{'total':<22}{totals}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--readme", action="store_true",
                        help="also write the table into README.md (the figures it quotes)")
    parser.add_argument("--sweep", action="store_true",
                        help="instead: int8 vs float32 invoke() time by model size and threads, "
                             "with an operator profile")
    args = parser.parse_args(argv)
    seed = edgelib.setup(verbose=False)  # the course seed: $EDGE_SEED, else 0
    cpu = profiling.cpu_line()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.sweep:
        rows, profiles = sweep(min(args.repeats, 300))
        print_sweep(rows, profiles, cpu)
        (args.out / "sweep.json").write_text(json.dumps(
            {"cpu": profiling.cpu_info(), "rows": rows, "profiles": profiles}, indent=1))
        print(f"\ntable: {args.out / 'sweep.json'}")
        return
    print(f"course seed {seed}", file=sys.stderr)
    results = {}
    for name, build in CASES.items():
        results[name] = measure(name, build, args.repeats, seed)
    print_table(results, cpu)
    (args.out / "bench.json").write_text(json.dumps({"cpu": profiling.cpu_info(),
                                                     "results": results}, indent=1))
    plot(results, args.out / "bench.png", cpu)
    if args.readme:
        readme = ROOT / "README.md"
        readme.write_text(replace_block(readme.read_text(), "bench", markdown_table(results, cpu)))
    print(f"\ntable: {args.out / 'bench.json'}\nplot:  {args.out / 'bench.png'}")


if __name__ == "__main__":
    main()
