from conftest import run_python


def test_setup_selects_keras2_quietly_and_reports_versions():
    proc = run_python(
        "import edgelib\n"
        "edgelib.setup(seed=3, threads=1)\n"
        "from edgelib.environment import last_setup\n"
        "assert last_setup['seed'] == 3 and last_setup['threads'] == 1\n"
        "import tensorflow as tf\n"
        "import tf_keras\nprint('KERAS', tf.keras.__name__.split('.')[0], tf_keras.__version__)\n"
        "print('THREADS', tf.config.threading.get_intra_op_parallelism_threads())\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "KERAS tf_keras 2.21.0" in proc.stdout
    assert "THREADS 1" in proc.stdout
    assert "tensorflow " in proc.stdout and "2.21.0" in proc.stdout
    noise = ("oneDNN", "cuda", "absl::InitializeLog", "cpu_feature_guard", "I0000")
    found = [n for n in noise if n in proc.stderr or n in proc.stdout]
    assert not found, f"TensorFlow log noise leaked: {found}\n{proc.stderr}"


def test_setup_after_tensorflow_import_says_restart():
    proc = run_python(
        "import os\nos.environ.pop('TF_USE_LEGACY_KERAS', None)\n"
        "import tensorflow\nimport edgelib\nedgelib.setup()\n"
    )
    assert proc.returncode != 0
    assert "Restart the kernel and run edgelib.setup() first" in proc.stderr


def test_setup_seeds_reproducibly():
    code = (
        "import edgelib\nedgelib.setup(seed=7, verbose=False)\n"
        "import numpy as np, tensorflow as tf\n"
        "print(np.random.rand(), float(tf.random.uniform(())))\n"
    )
    first, second = run_python(code), run_python(code)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def test_setup_rejects_bad_arguments():
    import pytest

    import edgelib

    with pytest.raises(ValueError, match="threads must be an int >= 1"):
        edgelib.setup(threads=0)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        edgelib.setup(seed=-1)


def test_course_seed_comes_from_the_environment(monkeypatch):
    import pytest

    from edgelib.environment import course_seed

    monkeypatch.delenv("EDGE_SEED", raising=False)
    assert course_seed() == 0
    monkeypatch.setenv("EDGE_SEED", "2")
    assert course_seed() == 2
    for bad in ("-1", "one", "1.5"):
        monkeypatch.setenv("EDGE_SEED", bad)
        with pytest.raises(ValueError, match="EDGE_SEED must be a non-negative integer"):
            course_seed()


def test_setup_uses_and_returns_the_course_seed():
    proc = run_python(
        "import os\nos.environ['EDGE_SEED'] = '5'\n"
        "import edgelib\nseed = edgelib.setup()\nprint('SEED', seed)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "SEED 5" in proc.stdout and "course seed 5" in proc.stdout


def test_setup_splits_the_cpu_into_logical_devices():
    proc = run_python(
        "import edgelib\nedgelib.setup(seed=0, verbose=False, logical_cpus=2)\n"
        "edgelib.setup(seed=1, verbose=False, logical_cpus=2)  # re-running the cell is fine\n"
        "import tensorflow as tf\n"
        "print('CPUS', [d.name for d in tf.config.list_logical_devices('CPU')])\n"
        "try:\n    edgelib.setup(verbose=False, logical_cpus=3)\n"
        "except edgelib.environment.KernelStateError as e:\n    print('REFUSED', e)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "CPUS ['/device:CPU:0', '/device:CPU:1']" in proc.stdout
    assert "REFUSED" in proc.stdout and "Restart the kernel" in proc.stdout


def test_setup_rejects_bad_logical_cpus():
    import pytest

    import edgelib

    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="logical_cpus must be None or an int >= 1"):
            edgelib.setup(logical_cpus=bad)
