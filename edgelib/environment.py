"""Set-up of a course notebook: one call, before TensorFlow is imported.

    import edgelib
    SEED = edgelib.setup()          # Keras 2, quiet logs, seeds, determinism

The seed is the course seed: the environment variable EDGE_SEED if it is set
(`EDGE_SEED=1 make notebooks`, the seed sweep `make seeds`), else 0.

`setup` selects Keras 2 (`tf_keras`, needed by tensorflow-model-optimization),
silences TensorFlow's C++ and Python logging, seeds Python / NumPy /
TensorFlow, makes TensorFlow ops deterministic, fixes the thread count and
reports the versions in use.

This module imports TensorFlow only inside `setup`, so the edge runtime
(`edgelib.runtime`) can use `quiet_native_stderr` without loading it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import platform
import sys
import warnings
from collections.abc import Iterator

DEFAULT_SEED = 0
DEFAULT_THREADS = 2
SEED_VARIABLE = "EDGE_SEED"  # environment variable that chooses the course seed

# Environment variables read by TensorFlow when it is first imported.
_TF_ENV = {
    "TF_USE_LEGACY_KERAS": "1",  # tf.keras -> tf_keras (Keras 2), as tfmot needs
    "TF_CPP_MIN_LOG_LEVEL": "3",  # C++ INFO/WARNING/ERROR logs off
    "TF_ENABLE_ONEDNN_OPTS": "0",  # no oneDNN re-ordering: reproducible round-off
    "CUDA_VISIBLE_DEVICES": "",  # the course is CPU-only; skip the CUDA probe
    "KMP_WARNINGS": "0",
    "PYTHONHASHSEED": "0",
}

# Packages whose versions `setup` reports.
REPORTED_PACKAGES = (
    "tensorflow",
    "tf-keras",
    "tensorflow-model-optimization",
    "ai-edge-litert",
    "numpy",
    "matplotlib",
)


last_setup: dict = {}  # filled by setup()


class KernelStateError(RuntimeError):
    """The kernel is in a state the course cannot fix by itself."""


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send the process's file descriptor 2 to /dev/null for the block.

    TensorFlow's and LiteRT's C++ code log straight to fd 2 (for example
    "Created TensorFlow Lite XNNPACK delegate for CPU"); Python-level
    exceptions are unaffected because Jupyter's sys.stderr is not fd 2.
    """
    try:
        sys.stderr.flush()
    except Exception:  # pragma: no cover - a closed stream is fine here
        pass
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no fd 2 (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _silence_python_logging() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*Statistics for quantized inputs.*")
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    warnings.filterwarnings("ignore", module="tensorflow.*")
    warnings.filterwarnings("ignore", module="tf_keras.*")
    for name in ("tensorflow", "absl", "h5py", "matplotlib", "tensorflow_model_optimization"):
        logging.getLogger(name).setLevel(logging.ERROR)


def version_of(package: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def course_seed() -> int:
    """The course seed: $EDGE_SEED if set (a non-negative integer), else 0."""
    raw = os.environ.get(SEED_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_SEED
    if not raw.isdigit():
        raise ValueError(f"{SEED_VARIABLE} must be a non-negative integer such as 0 or 1, "
                         f"got {raw!r}")
    return int(raw)


def _configure_logical_cpus(tf, n: int) -> None:
    """Split the first physical CPU into `n` logical devices (before device initialisation)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    except RuntimeError:  # devices already initialised: fine if they already are what we want
        have = len(tf.config.list_logical_devices("CPU"))
        if have != n:
            raise KernelStateError(
                f"TensorFlow's devices are already initialised with {have} logical CPU(s), "
                f"so setup(logical_cpus={n}) cannot change them. Restart the kernel and call "
                "edgelib.setup(logical_cpus=...) first.") from None


def setup(
    seed: int | None = None,
    threads: int = DEFAULT_THREADS,
    deterministic: bool = True,
    verbose: bool = True,
    logical_cpus: int | None = None,
) -> int:
    """Prepare the kernel for a course notebook and return the seed it used.

    What was set (versions, seed, threads) is kept in
    `edgelib.environment.last_setup`.

    Call it in the first code cell, before anything imports TensorFlow.
    Calling it again (re-running the cell) re-seeds and is harmless.

    Parameters
    ----------
    seed: seed for Python's `random`, NumPy and TensorFlow; None (the
        default) takes the course seed, `course_seed()`.
    threads: TensorFlow intra-op threads (inter-op is 1), fixed so that
        timings and round-off are repeatable. Must be >= 1.
    deterministic: call `tf.config.experimental.enable_op_determinism()`.
    verbose: print the versions in use.
    logical_cpus: split the CPU into this many logical devices
        (/cpu:0, /cpu:1, ...; they share the same cores), e.g. for
        `tf.distribute.MirroredStrategy` on a machine without GPUs. Only
        possible before TensorFlow has initialised its devices; None (the
        default) leaves the devices alone.
    """
    if seed is None:
        seed = course_seed()
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    if logical_cpus is not None and (not isinstance(logical_cpus, int)
                                     or isinstance(logical_cpus, bool) or logical_cpus < 1):
        raise ValueError(f"logical_cpus must be None or an int >= 1, got {logical_cpus!r}")

    tf_loaded = "tensorflow" in sys.modules
    if tf_loaded and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise KernelStateError(
            "TensorFlow was imported before edgelib.setup(), so tf.keras is Keras 3 "
            "and tensorflow-model-optimization will not work. Restart the kernel and "
            "run edgelib.setup() first."
        )
    if not tf_loaded:
        os.environ.update(_TF_ENV)

    _silence_python_logging()
    with quiet_native_stderr():
        import tensorflow as tf
        import tf_keras

    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with TensorFlow
        pass
    tf.get_logger().setLevel(logging.ERROR)
    tf.autograph.set_verbosity(0)

    # Thread counts can only be set before TensorFlow's runtime starts.
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised by an earlier call in this kernel
    if logical_cpus is not None:
        _configure_logical_cpus(tf, logical_cpus)
    tf_keras.utils.set_random_seed(seed)  # Python random, NumPy, TensorFlow
    if deterministic:
        tf.config.experimental.enable_op_determinism()

    info = {
        "python": platform.python_version(),
        "keras": f"tf_keras {tf_keras.__version__} (Keras 2)",
        "seed": seed,
        "threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "deterministic": deterministic,
        "logical_cpus": logical_cpus,
        "versions": {name: version_of(name) for name in REPORTED_PACKAGES},
    }
    if verbose:
        print(f"Python {'.'.join(info['python'].split('.')[:2])}, {info['keras']}, "
              f"{info['threads']} threads, deterministic ops: {deterministic}, "
              f"course seed {seed}")
        for name, version in info["versions"].items():
            print(f"  {name:<30} {version}")
    last_setup.clear()
    last_setup.update(info)
    return seed
