"""Train the tiny language model the course ships for chapter 17 and write
data/pretrained/tiny_lm/ (config.json and weights.npz).

    .venv/bin/python scripts/pretrain_tiny_lm.py      # under a minute of CPU on 2 cores

Chapter 07's recipe exactly: `lm.train(lm.CHAPTER_CONFIG)` at seed 0 (500
steps of batch 32 on the frozen Python language reference), the model
chapter 07 trains at EDGE_SEED=0. Chapter 17 starts from these weights
(`lm.pretrained()`), as a device starts from a model it downloaded, instead
of training it again.
"""

from __future__ import annotations

import argparse
import time

import edgelib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="default: data/pretrained/tiny_lm/")
    args = parser.parse_args()
    edgelib.setup(seed=0, threads=2, verbose=False)
    from edgelib import lm

    out = args.out or lm.PRETRAINED_DIR
    start, cpu = time.perf_counter(), time.process_time()
    corpus = lm.load_corpus()
    model, history = lm.train(lm.CHAPTER_CONFIG, corpus)
    lm.save(model, lm.CHAPTER_CONFIG, out)
    heldout = lm.perplexity(model, lm.CharTokenizer(lm.CHAPTER_CONFIG["vocab"])
                            .encode(corpus.heldout))
    print(f"held-out perplexity {heldout['perplexity']:.3f} (last sampled held-out loss "
          f"{history['heldout_loss'][-1]:.4f} nats); wrote {out} in "
          f"{time.perf_counter() - start:.0f} s ({time.process_time() - cpu:.0f} s of CPU)")


if __name__ == "__main__":
    main()
