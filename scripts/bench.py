"""The course's benchmark: chapter models in every TFLite mode, one table.

    make bench          # or: python scripts/bench.py [--out DIR] [--repeats N] [--readme]

For each model (the digits CNN of chapter 09, the smart-home command
Transformer of chapter 06, the keyword spotter of chapter 13), trains it (a
few epochs, seeded from the course seed $EDGE_SEED as its chapter does:
`EDGE_SEED=1 make bench` is another run), converts it to float32,
dynamic-range, float16 and full-int8 TFLite, and measures on its test set: accuracy, file
size, gzip size, and batch-1 latency p50 / p99 on the LiteRT interpreter (one
thread, warm-up, all modes interleaved in one run). Prints one table with
ratios vs float32 and saves a size-accuracy-latency plot and the table as
JSON under --out (default artifacts/bench/, git-ignored); with --readme (what
`make bench` passes) the table also replaces the one quoted in README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from readme_block import replace_block

import edgelib

ROOT = Path(__file__).resolve().parents[1]


def digits_cnn_case(seed: int):
    from edgelib import datasets, models

    ds = datasets.load("digits")
    x_train, x_test = ds.train.x[..., None], ds.test.x[..., None]
    model = models.compile_classifier(models.digits_cnn(filters=(32, 64)))
    model.fit(x_train, ds.train.y, epochs=8, batch_size=32, verbose=0)
    return model, x_train[:300], x_test, ds.test.y


def command_classifier_case(seed: int):
    from edgelib import datasets, models, transformer

    ds = datasets.load("smarthome")
    model = transformer.command_classifier(ds.extra["tokenizer"].vocab_size, ds.extra["max_len"],
                                           len(ds.classes))
    models.compile_classifier(model, learning_rate=3e-3)
    model.fit(ds.train.x, ds.train.y, epochs=10, batch_size=64, verbose=0)
    representative = ds.train.x[np.random.default_rng(seed + 1).permutation(len(ds.train))[:200]]
    return model, representative, ds.test.x, ds.test.y


def keyword_spotter_case(seed: int):
    from edgelib import audio, datasets, models, quantization

    ds = datasets.load("speech_commands")
    x_train = audio.kws_features(ds.train.x)
    clip_range = (float(x_train.min()), float(x_train.max()))
    x_test = audio.kws_features(ds.test.x, clip_range=clip_range)
    model = models.ds_cnn(x_train.shape[1:], classes=len(ds.classes))
    models.train_keyword_spotter(model, x_train, ds.train.y, seed=seed)
    return model, quantization.calibration_sample(x_train), x_test, ds.test.y


CASES = {"digits CNN (ch. 09)": digits_cnn_case,
         "smart-home commands Transformer (ch. 06)": command_classifier_case,
         "keyword spotter DS-CNN (ch. 13)": keyword_spotter_case}


def measure(name, build, repeats, seed):
    import tf_keras as keras

    from edgelib import bench, tflite
    from edgelib.runtime import EdgeModel

    keras.utils.set_random_seed(seed)  # each model the same, whatever runs before it
    start = time.perf_counter()
    model, representative, x_test, y_test = build(seed)
    rows = {}
    edges = {}
    for mode in tflite.MODES:
        blob = tflite.convert(model, mode, representative=representative)
        edges[mode] = EdgeModel(blob, threads=1)
        accuracy = float(np.mean(edges[mode].predict(x_test).argmax(1) == y_test))
        rows[mode] = {"accuracy": accuracy, **tflite.sizes(blob)}
    example = x_test[0]
    timed = bench.compare({m: (lambda e=e: e.invoke(example)) for m, e in edges.items()},
                          repeats=repeats, warmup=max(10, repeats // 10))
    for mode, t in timed.items():
        rows[mode].update(p50_ms=t["latency"].p50, p99_ms=t["latency"].p99)
    print(f"  ({name}: built, converted and measured in {time.perf_counter() - start:.0f} s)",
          file=sys.stderr)
    return rows


def print_table(results):
    head = (f"{'model':<42}{'mode':<9}{'accuracy':>9}{'bytes':>10}{'x f32':>7}{'gzip':>10}"
            f"{'p50 ms':>9}{'p99 ms':>9}{'p50 x f32':>10}")
    print(head)
    print("-" * len(head))
    for name, rows in results.items():
        ref = rows["float32"]
        for mode, r in rows.items():
            print(f"{name:<42}{mode:<9}{r['accuracy']:>9.1%}{r['bytes']:>10,}"
                  f"{r['bytes'] / ref['bytes']:>7.2f}{r['gzip_bytes']:>10,}"
                  f"{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['p50_ms'] / ref['p50_ms']:>10.2f}")


def markdown_table(results) -> str:
    """The table as Markdown, for the README's bench block."""
    lines = ["| model | mode | accuracy | bytes | x float32 | gzip bytes | p50 ms | p99 ms "
             "| p50 x float32 |", "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        ref = rows["float32"]
        for mode, r in rows.items():
            lines.append(f"| {name} | {mode} | {r['accuracy']:.1%} | {r['bytes']:,} "
                         f"| {r['bytes'] / ref['bytes']:.2f} | {r['gzip_bytes']:,} "
                         f"| {r['p50_ms']:.3f} | {r['p99_ms']:.3f} "
                         f"| {r['p50_ms'] / ref['p50_ms']:.2f} |")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    return (f"Last `make bench` ({machine}; LiteRT, 1 thread, batch 1):\n\n"
            + "\n".join(lines))


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), dpi=90,
                             squeeze=False)
    for ax, (name, rows) in zip(axes[0], results.items(), strict=True):
        for mode, r in rows.items():
            ax.scatter(r["bytes"] / 1024, r["accuracy"] * 100, s=40 + 400 * r["p50_ms"],
                       alpha=0.6)
            ax.annotate(f"{mode}\n{r['p50_ms']:.3f} ms", (r["bytes"] / 1024, r["accuracy"] * 100),
                        fontsize=8, xytext=(6, -4), textcoords="offset points")
        ax.set(title=name, xlabel="file size (KiB)", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
    fig.suptitle("Size, accuracy and p50 latency (marker area) per TFLite mode")
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--readme", action="store_true",
                        help="also write the table into README.md (the figures it quotes)")
    args = parser.parse_args(argv)
    seed = edgelib.setup(verbose=False)  # the course seed: $EDGE_SEED, else 0
    print(f"course seed {seed}", file=sys.stderr)
    results = {}
    for name, build in CASES.items():
        results[name] = measure(name, build, args.repeats, seed)
    print_table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out / "bench.png")
    if args.readme:
        readme = ROOT / "README.md"
        readme.write_text(replace_block(readme.read_text(), "bench", markdown_table(results)))
    print(f"\ntable: {args.out / 'bench.json'}\nplot:  {args.out / 'bench.png'}")


if __name__ == "__main__":
    main()
