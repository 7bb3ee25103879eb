"""Train the keyword spotter the course ships for transfer learning (chapter 12)
and write data/pretrained/kws_ds_cnn.npz.

    .venv/bin/python scripts/pretrain_kws.py          # about a minute on 2 cores

Chapter 13's recipe exactly: `models.ds_cnn()` on the 12 classes of
`speech_commands`, features `audio.kws_features` clipped to the training
range, `models.train_keyword_spotter` (6 epochs, batch 64, Adam 5e-3 with
cosine decay, mel-band shifts). Chapter 12 starts from these weights, as a
device starts from a model it downloaded, instead of retraining it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import edgelib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="default: data/pretrained/kws_ds_cnn.npz")
    args = parser.parse_args()
    edgelib.setup(seed=args.seed, threads=2, verbose=False)
    import numpy as np
    import tf_keras as keras

    from edgelib import audio, datasets, models, quantization

    out = args.out or datasets.DATA_DIR / models.PRETRAINED_KWS
    start = time.perf_counter()
    kws = datasets.load("speech_commands")
    x_train = audio.kws_features(kws.train.x)
    clip_range = (float(x_train.min()), float(x_train.max()))
    x_test = audio.kws_features(kws.test.x, clip_range=clip_range)
    keras.utils.set_random_seed(args.seed)
    model = models.ds_cnn()
    models.train_keyword_spotter(model, x_train, kws.train.y, seed=args.seed)
    accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(1) == kws.test.y))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    models.save_pretrained_keyword_spotter(
        model, clip_range, out, calibration=quantization.calibration_indices(x_train, n=200),
        seed=args.seed, epochs=models.DS_CNN_EPOCHS,
        test_accuracy=f"{accuracy:.4f}", recipe="scripts/pretrain_kws.py (chapter 13's)")
    print(f"test accuracy {accuracy:.1%} on {len(kws.test.y)} clips of unseen voices; "
          f"wrote {out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
