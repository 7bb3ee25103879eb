"""edgelib.distributed: TF_CONFIG, the ring all-reduce, and worker processes that always end."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgelib import distributed


def test_tf_config_names_the_cluster_and_the_task():
    config = distributed.tf_config(["localhost:1234", "localhost:1235"], 1)
    assert config == {"cluster": {"worker": ["localhost:1234", "localhost:1235"]},
                      "task": {"type": "worker", "index": 1}}
    assert distributed.parse_tf_config(json.dumps(config)) == (["localhost:1234",
                                                                "localhost:1235"], 1)


@pytest.mark.parametrize("workers, index, message", [
    ([], 0, "non-empty list"),
    ("localhost:1", 0, "non-empty list"),
    (["localhost"], 0, "'host:port' string"),
    (["localhost:1", "localhost:1"], 0, "distinct"),
    (["localhost:1", "localhost:2"], 2, r"index must be an int in 0\.\.1"),
    (["localhost:1"], True, "index must be an int"),
])
def test_tf_config_rejects_bad_clusters(workers, index, message):
    with pytest.raises(ValueError, match=message):
        distributed.tf_config(workers, index)


@pytest.mark.parametrize("text, message", [
    (None, "TF_CONFIG is not set"),
    ("{not json", "TF_CONFIG must be JSON"),
    ('{"cluster": {}}', "needs cluster.worker"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "only task_type"),
])
def test_parse_tf_config_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        distributed.parse_tf_config(text)


def test_free_ports_are_distinct_and_bindable():
    ports = distributed.free_ports(3)
    assert len(set(ports)) == 3 and all(1024 <= p <= 65535 for p in ports)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[0]))
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        distributed.free_ports(0)


def test_allreduce_bytes_is_the_ring_formula():
    assert distributed.allreduce_bytes(5258, 1) == 0
    assert distributed.allreduce_bytes(5258, 2) == 5258 * 4
    assert distributed.allreduce_bytes(100_000_000, 8) == 700_000_000
    assert distributed.allreduce_bytes(10, 4, bytes_per_value=2) == 30
    for bad in ({"parameters": 0, "workers": 2}, {"parameters": 10, "workers": 0},
                {"parameters": 10, "workers": 2, "bytes_per_value": 1.5}):
        with pytest.raises(ValueError, match="must be an int >= 1"):
            distributed.allreduce_bytes(**bad)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_ring_allreduce_sums_and_counts_the_bytes(n, rng):
    vectors = [rng.normal(size=1001).astype(np.float32) for _ in range(n)]
    results, sent = distributed.ring_allreduce(vectors)
    for r in results:
        np.testing.assert_allclose(r, sum(vectors), rtol=1e-5, atol=1e-5)
    assert abs(np.mean(sent) - 2 * (n - 1) / n * 1001 * 4) <= 4
    assert vectors[0] is not results[0]  # the inputs are not modified in place


def test_ring_allreduce_rejects_ragged_input():
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        distributed.ring_allreduce([np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match="non-empty list"):
        distributed.ring_allreduce([])


def test_start_workers_rejects_bad_arguments_before_starting_anything(tmp_path):
    for kwargs, message in [({"n": 0}, "n must be an int in 1..8"),
                            ({"n": 2, "global_batch": 63}, "multiple of the number of workers"),
                            ({"n": 2, "epochs": 0}, "epochs must be an int >= 1"),
                            ({"n": 2, "learning_rate": 0.0}, "learning_rate must be > 0")]:
        with pytest.raises(ValueError, match=message):
            distributed.start_workers(out=tmp_path, **kwargs)
    assert distributed.live_workers() == []


def test_worker_without_tf_config_exits_with_a_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    proc = subprocess.run([sys.executable, "-m", "edgelib.distributed", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "TF_CONFIG is not set" in proc.stderr


def _sleeper(seconds=60):
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"],
                            start_new_session=True)


def test_a_failing_worker_stops_the_group(tmp_path):
    failing = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"],
                               start_new_session=True)
    waiting = _sleeper()
    group = distributed.WorkerGroup([failing, waiting], ["a:1", "a:2"], tmp_path, time.time())
    with pytest.raises(distributed.DistributedError, match="a worker failed"):
        group.wait(timeout=30)
    assert failing.poll() == 3 and waiting.poll() is not None


def test_a_hanging_group_is_stopped_at_the_timeout(tmp_path):
    group = distributed.WorkerGroup([_sleeper(), _sleeper()], ["a:1", "a:2"], tmp_path,
                                    time.time())
    t0 = time.monotonic()
    with pytest.raises(distributed.WorkerTimeout, match="did not finish within 0.5 s"):
        group.wait(timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert all(code is not None for code in group.stop())  # a second stop is harmless
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        group.wait(timeout=0)


def test_two_workers_train_save_and_leave_nothing_behind(tmp_path, tf_ready):
    from edgelib import models

    with distributed.start_workers(2, tmp_path, epochs=2, global_batch=32, seed=0,
                                   train_examples=128) as group:
        pids = {process.pid for process in group.processes}
        deadline = time.monotonic() + 10  # psutil may need a moment to list a new process
        while not pids <= set(distributed.live_workers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids <= set(distributed.live_workers())
        results = group.wait(timeout=240)
    assert [p.poll() for p in group.processes] == [0, 0]
    assert distributed.live_workers() == []
    assert [r["index"] for r in results] == [0, 1]
    assert all(r["replicas_in_sync"] == 2 and r["steps_per_epoch"] == 4 for r in results)
    assert results[0]["loss"] == results[1]["loss"]  # metrics are all-reduced
    assert all(r["start_iterations"] == 0 and r["end_iterations"] == 8 for r in results)
    assert len(results[0]["step_seconds"][1]) == 4 and results[0]["steady_step_seconds"] > 0
    logs = group.logs()
    assert "worker 0 (chief): task 0 of a cluster of 2 workers, 2 replicas in sync" in logs[0]
    assert "saved the weights" in logs[0] and "saved the weights" not in logs[1]
    model = distributed.load_weights(models.digits_cnn(), tmp_path)
    assert model.count_params() == results[0]["parameters"]
    with pytest.raises(ValueError, match="the model expects"):
        distributed.load_weights(models.digits_cnn(filters=(4, 4)), tmp_path)
    with pytest.raises(ValueError, match="found none"):
        distributed.load_weights(models.digits_cnn(), tmp_path / "nowhere")


def test_step_timer_needs_two_epochs(tf_ready):
    timer = distributed.step_timer()
    with pytest.raises(ValueError, match="at least 2 epochs"):
        timer.steady_step()


def test_wait_for_log_and_kill_a_worker(tmp_path):
    (tmp_path / "worker-1.log").write_text("worker 1 (worker): epoch 1/3: loss 0.5\n")
    group = distributed.WorkerGroup([_sleeper(), _sleeper()], ["a:1", "a:2"], tmp_path,
                                    time.time())
    group.wait_for_log(1, "epoch 1/3", timeout=5)  # already printed: returns at once
    assert group.kill(1) == -9 and group.alive == [True, False]
    with pytest.raises(distributed.DistributedError, match="a worker failed"):
        group.wait(timeout=30)
    assert all(code is not None for code in group.stop())
    with pytest.raises(ValueError, match="index must be a worker index in 0..1"):
        group.kill(2)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        group.wait_for_log(0, "never", timeout=-1)


def test_wait_for_log_stops_the_group_when_a_worker_exits_first(tmp_path):
    group = distributed.WorkerGroup([_sleeper(), _sleeper()], ["a:1", "a:2"], tmp_path,
                                    time.time())
    group.kill(0)
    with pytest.raises(distributed.DistributedError, match="did not print 'epoch 1/3'"):
        group.wait_for_log(1, "epoch 1/3", timeout=30)
    assert all(code is not None for code in [p.poll() for p in group.processes])


def test_step_timer_cpu_step_needs_two_epochs(tf_ready):
    with pytest.raises(ValueError, match="at least 2 epochs"):
        distributed.step_timer().steady_cpu_step()


def test_start_workers_rejects_a_script_that_is_not_a_python_file(tmp_path):
    (tmp_path / "notes.txt").write_text("print('hi')")
    for script in (tmp_path / "missing.py", tmp_path / "notes.txt"):
        with pytest.raises(ValueError, match="script must be an existing .py file"):
            distributed.start_workers(1, tmp_path / "out", script=script)
    assert distributed.live_workers() == []


def test_worker_arguments_parse_the_launchers_command_line(tmp_path):
    args = distributed.worker_arguments(["--out", str(tmp_path / "run"), "--epochs", "2",
                                         "--global-batch", "32", "--seed", "5", "--backup"])
    assert (args.epochs, args.global_batch, args.seed, args.backup) == (2, 32, 5, True)
    assert (tmp_path / "run").is_dir() and args.train_examples is None
    with pytest.raises(SystemExit):
        distributed.worker_arguments(["--out", str(tmp_path), "--epochs", "0"])


def test_worker_report_rejects_bad_input(tmp_path, monkeypatch, tf_ready):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG is not set"):
        distributed.worker_report(tmp_path, 3)
    monkeypatch.setenv("TF_CONFIG", json.dumps(distributed.tf_config(["localhost:1"], 0)))
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        distributed.worker_report(tmp_path, 0)
    with pytest.raises(ValueError, match="out must be an existing folder"):
        distributed.worker_report(tmp_path / "nowhere", 3)
    with pytest.raises(ValueError, match="finish\\(\\) comes after model.fit"):
        distributed.worker_report(tmp_path, 3).finish()


def _chapter_worker_program() -> str:
    """The worker program chapter 16 writes with %%writefile."""
    import nbformat

    chapter = Path(__file__).resolve().parents[1] / "chapters" / "16_distributed_training.ipynb"
    cells = [c.source for c in nbformat.read(chapter, 4).cells
             if c.cell_type == "code"
             and c.source.startswith("%%writefile artifacts/16/train_worker.py")]
    assert len(cells) == 1, "chapter 16 writes one worker program"
    return cells[0].split("\n", 1)[1]


def test_the_chapters_worker_program_trains_like_edgelibs_worker(tmp_path, tf_ready):
    script = tmp_path / "train_worker.py"
    script.write_text(_chapter_worker_program())
    settings = dict(epochs=2, global_batch=64, seed=3, train_examples=256)
    results, weights = {}, {}
    for name, program in (("edgelib", None), ("chapter", script)):
        with distributed.start_workers(1, tmp_path / name, script=program, **settings) as group:
            results[name] = group.wait(timeout=240)[0]
        with np.load(tmp_path / name / distributed.WEIGHTS_NAME) as f:
            weights[name] = [f[k] for k in sorted(f.files, key=lambda k: int(k[4:]))]
    for key in ("steps_per_epoch", "start_iterations", "end_iterations", "parameters"):
        assert results["chapter"][key] == results["edgelib"][key], key
    assert results["chapter"]["end_iterations"] == 2 * 4
    np.testing.assert_allclose(results["chapter"]["loss"], results["edgelib"]["loss"], rtol=1e-5)
    for a, b in zip(weights["chapter"], weights["edgelib"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert distributed.live_workers() == []
