"""Random search vs Bayesian optimization at equal budget, over several seeds
and two search spaces (chapter 03). Writes data/tuner_comparison.json, which the
chapter shows.

The two spaces differ only in the upper bound of Adam's learning rate:
`narrow` (3e-2, the chapter's default, where the winners tend to sit on the
bound) and `wide` (3e-1, ten times higher).

KerasTuner derives each trial's draw from the seed plus a small offset, so
neighbouring seeds share most of their draws: the searches use seeds 100,
200, ... (and the chapter's course seed s uses 100 (s + 1)). A search's best
score is one training run; each winner is also trained again with 3 other
seeds and its mean validation accuracy recorded (`rescored`), so that the
two methods can be compared beyond one run's noise.

    .venv/bin/python scripts/compare_tuners.py            # 6 seeds, about 8 min on 2 cores
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path

import edgelib

ROOT = Path(__file__).resolve().parents[1]
TRAIN_EXAMPLES, VAL_EXAMPLES = 1000, 500
SPACES = {"narrow": 3e-2, "wide": 3e-1}  # the upper bound of the learning rate
SEED_STEP = 100  # search seeds 100, 200, ...: far apart, so that no two share draws
RESCORE_SEEDS = (1, 2, 3)


def rescore(hypermodel, values, train, val):
    """Mean validation accuracy of one setting trained again with RESCORE_SEEDS."""
    import tf_keras as keras

    from edgelib import training

    kt = training.import_keras_tuner()
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    scores = []
    for seed in RESCORE_SEEDS:
        keras.utils.set_random_seed(seed)
        model = hypermodel(hp)
        model.fit(*train, epochs=1, batch_size=64, verbose=0)
        scores.append(model.evaluate(*val, verbose=0)[1])
    return sum(scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--max-trials", type=int, default=8)
    parser.add_argument("--initial", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "data" / "tuner_comparison.json"))
    args = parser.parse_args()
    edgelib.setup(threads=2)
    from edgelib import datasets, training

    digits = datasets.load("digits")
    train = (digits.train.x[:TRAIN_EXAMPLES, ..., None], digits.train.y[:TRAIN_EXAMPLES])
    val = (digits.val.x[:VAL_EXAMPLES, ..., None], digits.val.y[:VAL_EXAMPLES])
    runs = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for space, max_learning_rate in SPACES.items():
            hypermodel = functools.partial(training.tiny_cnn_hypermodel,
                                           max_learning_rate=max_learning_rate)
            for seed in range(SEED_STEP, SEED_STEP * (args.seeds + 1), SEED_STEP):
                for kind in training.TUNERS:
                    scores, best, settings = training.run_tuner(
                        kind, train, val, seed, tmp, args.max_trials, args.initial,
                        hypermodel=hypermodel)
                    runs.append(dict(space=space, seed=seed, tuner=kind, scores=scores,
                                     best=max(scores), best_hyperparameters=best.values,
                                     rescored=rescore(hypermodel, best.values, train, val),
                                     settings=settings))
                    print(f"{space} seed {seed} {kind:<9} best {max(scores):.3f} "
                          f"rescored {runs[-1]['rescored']:.3f} "
                          f"trials {' '.join(f'{v:.2f}' for v in scores)}", flush=True)
    result = dict(
        setup=dict(train_examples=TRAIN_EXAMPLES, val_examples=VAL_EXAMPLES, epochs=1,
                   max_trials=args.max_trials, num_initial_points=args.initial,
                   search_space="edgelib.training.tiny_cnn_hypermodel",
                   max_learning_rate=SPACES, seed_step=SEED_STEP, rescore_seeds=RESCORE_SEEDS,
                   command="python scripts/compare_tuners.py"),
        runs=runs, seconds=round(time.perf_counter() - start))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} in {result['seconds']} s")


if __name__ == "__main__":
    main()
