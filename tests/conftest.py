import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def tf_ready():
    """Run edgelib.setup() once, before any test can import TensorFlow.

    It must come first: a test that imports TensorFlow before it would leave
    tf.keras on Keras 3 for the rest of the session.
    """
    import edgelib

    edgelib.setup(verbose=False)


@pytest.fixture(scope="session")
def tiny_digits_model(tf_ready):
    """A digits CNN trained for one short epoch, and a slice of the data."""
    import tf_keras as keras

    from edgelib import datasets, models

    ds = datasets.load("digits")
    x, y = ds.train.x[:600, ..., None], ds.train.y[:600]
    keras.utils.set_random_seed(0)
    model = models.compile_classifier(models.digits_cnn())
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    return model, x


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter and return the finished process."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def assert_runs_without_tensorflow(code: str) -> None:
    """Run `code` in a fresh interpreter; it must succeed without importing TensorFlow or Keras."""
    probe = ("\nimport sys\nprint('LOADED', sorted(k for k in sys.modules if k.split('.')[0] in "
             "('tensorflow', 'tf_keras', 'keras')))\n")
    proc = run_python(code + probe)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout


@pytest.fixture
def rng():
    return np.random.default_rng(0)
