"""Multi-worker training on this machine: worker processes, TF_CONFIG, clean-up.

A real tf.distribute cluster is several processes (usually on several
machines), each told by the environment variable `TF_CONFIG` who the others
are and which one it is. This module runs such a cluster on localhost:

    from edgelib import distributed
    with distributed.start_workers(2, "artifacts/16/run") as group:
        results = group.wait(timeout=120)      # the workers' JSON results
        print(group.logs()[0])                 # what worker 0 printed
    assert not distributed.live_workers()      # every worker process is gone

Each worker runs a worker program with its own `TF_CONFIG`: by default
`python -m edgelib.distributed --out DIR ...` (`train_worker`, the course's
reference), or `start_workers(..., script=PATH)`, a program such as the one
chapter 16 writes, built from `worker_arguments` (the command line) and
`worker_report` (the log lines, step timings and `DIR/worker-<i>.json`).
Both build `tf.distribute.MultiWorkerMirroredStrategy`, train the digits
CNN of `edgelib.models` on `datasets.load("digits")`; the chief (worker 0)
also saves the trained weights as `DIR/weights.npz` (`load_weights`).

Safety: ports are free ports of this machine (`free_ports`), the workers are
started in their own process group and `WorkerGroup.stop()` (also on error,
on timeout, at interpreter exit) terminates then kills that group; a worker
also exits by itself when the process that started it is gone.
Note that TensorFlow's gRPC server listens on every interface of the machine,
whatever host `TF_CONFIG` names: run this only where that is acceptable.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "localhost"
RESULT_NAME = "worker-{index}.json"
LOG_NAME = "worker-{index}.log"
ERR_NAME = "worker-{index}.err"
WEIGHTS_NAME = "weights.npz"
BACKUP_NAME = "backup"
MODULE = "edgelib.distributed"
# seconds a worker gets to end after SIGTERM when the group has failed: a worker blocked in a
# collective (waiting for a dead partner's gradients) does not act on SIGTERM, only SIGKILL ends it
STUCK_GRACE_S = 0.5


class DistributedError(RuntimeError):
    """The worker group failed: a worker exited with an error or did not finish in time."""


class WorkerTimeout(DistributedError):
    """The workers did not finish within the time allowed; they were stopped."""


# --- cluster description -----------------------------------------------------------------


def free_ports(n: int, host: str = DEFAULT_HOST) -> list[int]:
    """`n` distinct TCP ports that are free on `host` now (the OS picks them: bind to port 0).

    The sockets are closed before returning, so another program could in
    principle take a port before a worker binds it; on a quiet machine the
    OS does not hand out the same port again so soon.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an int >= 1 (the number of ports), got {n!r}")
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((socket.gethostbyname(host), 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(workers: list[str], index: int, task_type: str = "worker") -> dict:
    """The TF_CONFIG dict of task `index` in a cluster of `workers` ("host:port" strings).

    `{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}`;
    worker 0 is the chief (it saves the model). Serialize it with
    `json.dumps` into the environment variable `TF_CONFIG`.
    """
    if not isinstance(workers, (list, tuple)) or not workers:
        raise ValueError(f"workers must be a non-empty list of 'host:port' strings, "
                         f"got {workers!r}")
    for address in workers:
        if not isinstance(address, str) or not re.fullmatch(r"[A-Za-z0-9.\-]+:\d{1,5}", address):
            raise ValueError(f"each worker must be a 'host:port' string such as "
                             f"'localhost:12345', got {address!r}")
    if len(set(workers)) != len(workers):
        raise ValueError(f"worker addresses must be distinct, got {workers!r}")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(workers):
        raise ValueError(f"index must be an int in 0..{len(workers) - 1}, got {index!r}")
    if task_type != "worker":
        raise ValueError(f"only task_type 'worker' is supported here, got {task_type!r}")
    return {"cluster": {"worker": list(workers)}, "task": {"type": task_type, "index": index}}


def parse_tf_config(text: str | None) -> tuple[list[str], int]:
    """(worker addresses, own index) from the text of TF_CONFIG; clear errors if malformed."""
    if not text:
        raise ValueError("TF_CONFIG is not set: a worker needs it, e.g. "
                         '{"cluster": {"worker": ["localhost:12345", "localhost:12346"]}, '
                         '"task": {"type": "worker", "index": 0}}')
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"TF_CONFIG must be JSON, got {text[:80]!r} ({exc})") from None
    try:
        workers, index = config["cluster"]["worker"], config["task"]["index"]
        task_type = config["task"].get("type", "worker")
    except (KeyError, TypeError):
        raise ValueError("TF_CONFIG needs cluster.worker (a list) and task.index, got "
                         f"{text[:120]!r}") from None
    tf_config(workers, index, task_type)  # validates
    return list(workers), index


def allreduce_bytes(parameters: int, workers: int, bytes_per_value: int = 4) -> int:
    """Bytes each worker sends per step in a ring all-reduce of `parameters` gradients.

    A ring all-reduce is a reduce-scatter then an all-gather, each of
    `workers - 1` steps in which every worker sends one chunk of
    `parameters / workers` values: 2 (N - 1) / N x parameters x bytes per
    value (rounded up to whole bytes). One worker sends nothing.
    """
    for name, value in (("parameters", parameters), ("workers", workers),
                        ("bytes_per_value", bytes_per_value)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return -(-2 * (workers - 1) * parameters * bytes_per_value // workers)


def ring_allreduce(vectors: list) -> tuple[list, list[int]]:
    """Sum equal-length 1-D arrays the way a ring all-reduce does; (results, bytes sent each).

    Worker r holds `vectors[r]`, cut into N chunks. Reduce-scatter: in step
    s (N - 1 steps) worker r sends chunk (r - s) mod N to worker r + 1, which
    adds it to its own; afterwards worker r holds the full sum of chunk
    (r + 1) mod N. All-gather: N - 1 more steps pass the summed chunks round
    the ring. Returns each worker's final vector (all equal to the sum) and
    the bytes each worker sent, to compare with `allreduce_bytes`.
    """
    import numpy as np

    if not isinstance(vectors, (list, tuple)) or len(vectors) < 1:
        raise ValueError(f"vectors must be a non-empty list of 1-D arrays, got {type(vectors)}")
    data = [np.array(v, copy=True) for v in vectors]
    if any(v.ndim != 1 for v in data) or len({v.shape for v in data}) != 1:
        raise ValueError(f"vectors must be 1-D arrays of one length, got shapes "
                         f"{[v.shape for v in data]}")
    n = len(data)
    bounds = np.linspace(0, data[0].size, n + 1).round().astype(int)
    chunk = [slice(bounds[i], bounds[i + 1]) for i in range(n)]
    sent = [0] * n
    for phase in ("reduce-scatter", "all-gather"):
        for s in range(n - 1):
            messages = []
            for r in range(n):
                c = (r - s + (1 if phase == "all-gather" else 0)) % n
                messages.append(((r + 1) % n, c, data[r][chunk[c]].copy()))
                sent[r] += data[r][chunk[c]].nbytes
            for dest, c, payload in messages:
                if phase == "reduce-scatter":
                    data[dest][chunk[c]] += payload
                else:
                    data[dest][chunk[c]] = payload
    return data, sent


def step_timer():
    """A Keras callback that times training: `.seconds` (one per epoch) and `.steps`.

    `.cpu_seconds[e]` is the CPU time this process used during epoch e (all
    its threads, `time.process_time`): unlike wall time, it hardly changes
    when other programs share the cores.

    `.steps[e]` lists the duration of every training step of epoch e, in
    seconds; `steady_step()` is the median step time after the first epoch
    (which includes tracing the graph). The median shrugs off the spikes of
    a busy machine better than a mean over an epoch.
    """
    return _step_timer_class()()


@functools.cache
def _step_timer_class():
    """The class of `step_timer`'s callbacks (built on first use: it imports Keras);
    `worker_report` extends it."""
    import tf_keras as keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.steps: list[list[float]] = []
            self.cpu_seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_t0 = time.perf_counter()
            self._epoch_cpu0 = time.process_time()
            self.steps.append([])

        def on_train_batch_begin(self, batch, logs=None):
            self._step_t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.steps[-1].append(time.perf_counter() - self._step_t0)

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._epoch_t0)
            self.cpu_seconds.append(time.process_time() - self._epoch_cpu0)

        def steady_step(self) -> float:
            """Median seconds per step over the epochs after the first."""
            import numpy as np

            later = [t for epoch in self.steps[1:] for t in epoch]
            if not later:
                raise ValueError("steady_step needs at least 2 epochs (the first one traces)")
            return float(np.median(later))

        def steady_cpu_step(self) -> float:
            """CPU seconds per step over the epochs after the first."""
            steps = sum(len(epoch) for epoch in self.steps[1:])
            if not steps:
                raise ValueError("steady_cpu_step needs at least 2 epochs (the first one traces)")
            return float(sum(self.cpu_seconds[1:]) / steps)

    return StepTimer


def training_data(x, y, global_batch: int, seed: int):
    """The workers' input pipeline: shuffled with `seed` each epoch, batched by the global batch.

    Under MultiWorkerMirroredStrategy each global batch is split between the
    workers (auto-shard policy DATA); one process with the same pipeline
    sees the same batches, which is what makes the runs comparable.
    """
    import tensorflow as tf

    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if not isinstance(global_batch, int) or global_batch < 1:
        raise ValueError(f"global_batch must be an int >= 1, got {global_batch!r}")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(global_batch).with_options(options))


# --- the worker --------------------------------------------------------------------------


def _watch_parent(parent_pid: int) -> None:
    """Exit this process when the one that started it is gone (no orphan workers)."""
    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def worker_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line `start_workers` gives a worker program, parsed; for the program's top.

    `--out DIR --epochs N --global-batch B --learning-rate LR --seed S
    --threads T [--train-examples N] [--backup]`. Also creates OUT and makes
    the process exit by itself when the process that started it is gone.
    """
    parser = argparse.ArgumentParser(
        description="One worker of a MultiWorkerMirroredStrategy cluster described by the "
                    "environment variable TF_CONFIG: trains the digits CNN.")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for worker-<i>.json and (chief) weights.npz")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--global-batch", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=None, help="default: the course seed")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per worker")
    parser.add_argument("--train-examples", type=int, default=None,
                        help="use only the first N training digits")
    parser.add_argument("--backup", action="store_true",
                        help="save the training state every epoch (BackupAndRestore in "
                             "OUT/backup) and resume from it on restart")
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        _watch_parent(args.parent_pid)
    if args.epochs < 1 or args.global_batch < 1:
        parser.error("--epochs and --global-batch must be >= 1")
    if args.seed is None:
        from edgelib.environment import course_seed

        args.seed = course_seed()
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def worker_report(out: str | Path, epochs: int):
    """A Keras callback for a worker program: its log lines, timings and results file.

    Pass it to `fit` (after `BackupAndRestore`, so that "epoch k" is logged
    once epoch k is saved). It reads the worker's index from TF_CONFIG,
    prints "worker <i> (chief|worker): ..." lines (the group's `logs()`),
    times every step like `step_timer`, notes where training started (a
    restart from a backup begins at a later epoch, with the optimizer's step
    count restored), and `finish()` writes OUT/worker-<i>.json, the result
    `WorkerGroup.wait()` returns.
    """
    import psutil

    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"out must be an existing folder, got {str(out)!r}")
    workers, index = parse_tf_config(os.environ.get("TF_CONFIG"))
    role = "chief" if index == 0 else "worker"
    base = _step_timer_class()
    started = psutil.Process().create_time()

    class WorkerReport(base):
        def log(self, message: str) -> None:
            print(f"worker {index} ({role}): {message}", flush=True)

        def on_train_begin(self, logs=None):
            self.result = {"index": index, "workers": len(workers), "role": role,
                           "epochs": epochs, "steps_per_epoch": self.params["steps"],
                           "parameters": int(self.model.count_params()),
                           "replicas_in_sync": int(
                               self.model.distribute_strategy.num_replicas_in_sync),
                           "startup_seconds": time.time() - started, "loss": [],
                           "accuracy": [], "first_epoch": None}
            self._fit_t0 = time.perf_counter()
            self.log(f"task {index} of a cluster of {len(workers)} workers, "
                     f"{self.result['replicas_in_sync']} replicas in sync, "
                     f"{self.result['parameters']:,} parameters, "
                     f"{self.params['steps']} steps per epoch")

        def on_epoch_begin(self, epoch, logs=None):
            super().on_epoch_begin(epoch, logs)
            if self.result["first_epoch"] is None:
                self.result["first_epoch"] = epoch + 1
                # the optimizer's step count as training starts (restored from a backup)
                self.result["start_iterations"] = int(self.model.optimizer.iterations.numpy())
                if epoch:
                    self.log(f"resumed from the backup: starting at epoch {epoch + 1}/{epochs}")

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            self.result["loss"].append(float(logs["loss"]))
            self.result["accuracy"].append(float(logs["accuracy"]))
            self.log(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}, "
                     f"accuracy {logs['accuracy']:.4f}, {self.seconds[-1]:.2f} s")

        def on_train_end(self, logs=None):
            self.result["fit_seconds"] = time.perf_counter() - self._fit_t0
            self.result["end_iterations"] = int(self.model.optimizer.iterations.numpy())

        def finish(self) -> dict:
            """Write OUT/worker-<i>.json (after fit) and return it."""
            if not hasattr(self, "result"):
                raise ValueError("finish() comes after model.fit(..., callbacks=[report])")
            later = len(self.steps) > 1
            self.result.update(
                epoch_seconds=self.seconds, step_seconds=self.steps,
                epoch_cpu_seconds=self.cpu_seconds,
                steady_step_seconds=self.steady_step() if later else None,
                steady_cpu_step_seconds=self.steady_cpu_step() if later else None)
            (out / RESULT_NAME.format(index=index)).write_text(json.dumps(self.result, indent=1))
            self.log("done")
            return self.result

    return WorkerReport()


def train_worker(args: argparse.Namespace) -> dict:
    """Train the digits CNN as one worker of the cluster TF_CONFIG describes; see module doc.

    The course's reference worker (chapter 16 writes the same program step by
    step). With `args.backup`, `keras.callbacks.BackupAndRestore(OUT/backup)`
    saves the training state after every epoch, and a restarted cluster
    resumes from it.
    """
    workers, index = parse_tf_config(os.environ.get("TF_CONFIG"))
    if args.global_batch % len(workers):
        raise ValueError(f"global batch {args.global_batch} must be a multiple of the "
                         f"{len(workers)} workers")
    import edgelib

    edgelib.setup(seed=args.seed, threads=args.threads, verbose=False)
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from edgelib import datasets, models

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    report = worker_report(args.out, args.epochs)
    digits = datasets.load("digits")
    x, y = digits.train.x[..., None], digits.train.y
    if args.train_examples is not None:
        x, y = x[:args.train_examples], y[:args.train_examples]
    data = training_data(x, y, args.global_batch, args.seed)
    keras.utils.set_random_seed(args.seed)
    with strategy.scope():
        model = models.compile_classifier(models.digits_cnn(), args.learning_rate)
    callbacks = [report]
    if args.backup:
        callbacks.insert(0, keras.callbacks.BackupAndRestore(str(args.out / BACKUP_NAME)))
    model.fit(data, epochs=args.epochs, verbose=0, callbacks=callbacks)
    if index == 0:
        np.savez(args.out / WEIGHTS_NAME, *model.get_weights())
        report.log(f"saved the weights to {WEIGHTS_NAME}")
    return report.finish()


def main(argv: list[str] | None = None) -> int:
    """`python -m edgelib.distributed --out DIR [--epochs N] ...` (TF_CONFIG in the environment)."""
    args = worker_arguments(argv)
    try:
        train_worker(args)
    except ValueError as exc:
        print(f"{MODULE}: {exc}", file=sys.stderr)
        return 2
    return 0


# --- a group of workers started from Python -----------------------------------------------

_live_groups: set = set()


@dataclass
class WorkerGroup:
    """Worker processes of one cluster; `wait()` for them, `stop()` ends them (also at exit)."""

    processes: list[subprocess.Popen]
    addresses: list[str]
    out: Path
    started: float
    _stopped: bool = field(default=False, repr=False)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    @property
    def alive(self) -> list[bool]:
        """For each worker, True while its process runs."""
        return [p.poll() is None for p in self.processes]

    def logs(self) -> list[str]:
        """What each worker printed on stdout (its own log lines)."""
        return [_read(self.out / LOG_NAME.format(index=i)) for i in range(len(self.processes))]

    def errors(self) -> list[str]:
        """What each worker wrote on stderr (TensorFlow's native logs, tracebacks)."""
        return [_read(self.out / ERR_NAME.format(index=i)) for i in range(len(self.processes))]

    def wait_for_log(self, index: int, text: str, timeout: float) -> None:
        """Return once worker `index` has printed a line containing `text`.

        Raises DistributedError (and stops the group) if a worker exits
        first or `timeout` seconds pass.
        """
        self._check_index(index)
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        deadline = time.monotonic() + timeout
        while text not in _read(self.out / LOG_NAME.format(index=index)):
            codes = [p.poll() for p in self.processes]
            if any(c is not None for c in codes) or time.monotonic() > deadline:
                self.stop(timeout=STUCK_GRACE_S)
                raise DistributedError(f"worker {index} did not print {text!r} (exit codes "
                                       f"{codes}, {timeout} s allowed); the group was "
                                       f"stopped.\n{self._report()}")
            time.sleep(0.02)

    def kill(self, index: int) -> int:
        """Kill worker `index` at once (SIGKILL to its process group), as a crash would.

        Returns its exit code (-9).
        """
        self._check_index(index)
        process = self.processes[index]
        with _ignore_missing():
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait(10)

    def _check_index(self, index: int) -> None:
        if not isinstance(index, int) or isinstance(index, bool) \
                or not 0 <= index < len(self.processes):
            raise ValueError(f"index must be a worker index in 0..{len(self.processes) - 1}, "
                             f"got {index!r}")

    def _report(self) -> str:
        parts = []
        for i, (p, err) in enumerate(zip(self.processes, self.errors(), strict=True)):
            parts.append(f"--- worker {i} (exit code {p.poll()}), last lines of stderr:\n"
                         + "\n".join(err.strip().splitlines()[-15:]))
        return "\n".join(parts)

    def wait(self, timeout: float) -> list[dict]:
        """Wait until every worker has exited; return their results (worker-<i>.json).

        If a worker exits with an error, the others are stopped at once (a
        collective all-reduce would wait for it forever; SIGKILL follows SIGTERM
        after STUCK_GRACE_S) and DistributedError
        shows the end of every worker's stderr. After `timeout` seconds the
        group is stopped and WorkerTimeout is raised.
        """
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        deadline = time.monotonic() + timeout
        try:
            while True:
                codes = [p.poll() for p in self.processes]
                if any(c not in (None, 0) for c in codes):
                    raise DistributedError(f"a worker failed (exit codes {codes}); the group "
                                           f"was stopped.\n{self._report()}")
                if all(c == 0 for c in codes):
                    break
                if time.monotonic() > deadline:
                    raise WorkerTimeout(f"the workers did not finish within {timeout} s "
                                        f"(still running: {[c is None for c in codes]}); "
                                        f"they were stopped.\n{self._report()}")
                time.sleep(0.1)
        except BaseException:
            self.stop(timeout=STUCK_GRACE_S)
            raise
        self.stop()
        return [json.loads(_read(self.out / RESULT_NAME.format(index=i)))
                for i in range(len(self.processes))]

    def stop(self, timeout: float = 5.0) -> list[int | None]:
        """Terminate every worker (its whole process group), kill if needed; exit codes.

        SIGTERM first, SIGKILL for whatever still runs `timeout` seconds later.
        Safe to call twice.
        """
        if not self._stopped:
            self._stopped = True
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for p in self.processes:
                    if p.poll() is None:
                        with _ignore_missing():
                            os.killpg(p.pid, sig)
                deadline = time.monotonic() + timeout
                for p in self.processes:
                    try:
                        p.wait(max(0.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        pass
                if all(p.poll() is not None for p in self.processes):
                    break
            for p in self.processes:  # anything left in the groups (none expected)
                with _ignore_missing():
                    os.killpg(p.pid, signal.SIGKILL)
            _live_groups.discard(self)
        return [p.poll() for p in self.processes]

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __hash__(self) -> int:
        return id(self)


class _ignore_missing:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, (ProcessLookupError, PermissionError))


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@atexit.register
def _stop_all() -> None:
    for group in list(_live_groups):
        group.stop()


def start_workers(n: int, out: str | Path, epochs: int = 3, global_batch: int = 64,
                  learning_rate: float = 3e-3, seed: int | None = None, threads: int = 1,
                  train_examples: int | None = None, host: str = DEFAULT_HOST,
                  backup: bool = False, script: str | Path | None = None) -> WorkerGroup:
    """Start `n` worker processes of one MultiWorkerMirroredStrategy cluster on this machine.

    Each gets free ports' addresses in its `TF_CONFIG` and runs
    `python -m edgelib.distributed --out OUT ...` (stdout to
    OUT/worker-<i>.log, stderr to OUT/worker-<i>.err), in a new process
    group. Returns a `WorkerGroup` at once: call `wait(timeout)` for the
    results, and use it as a context manager (or `stop()`) so the workers
    end on error too. `seed` defaults to the course seed. With `backup`, the
    workers save their training state in OUT/backup after every epoch
    (BackupAndRestore) and a group started again on the same OUT resumes
    from it; the backup is kept until a run completes.

    `script`: the worker program to run instead, `python SCRIPT --out OUT ...`
    with the same arguments (`worker_arguments` parses them) and TF_CONFIG;
    it must write OUT/worker-<i>.json (`worker_report`).
    """
    if script is not None:
        script = Path(script)
        if script.suffix != ".py" or not script.is_file():
            raise ValueError(f"script must be an existing .py file (a worker program), "
                             f"got {str(script)!r}")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 8:
        raise ValueError(f"n must be an int in 1..8 (workers on this machine), got {n!r}")
    for name, value in (("epochs", epochs), ("global_batch", global_batch), ("threads", threads)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if global_batch % n:
        raise ValueError(f"global_batch must be a multiple of the number of workers ({n}): "
                         f"each worker takes global_batch / n examples, got {global_batch}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if seed is None:
        from edgelib.environment import course_seed

        seed = course_seed()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("worker-*")) + [out / WEIGHTS_NAME]:
        old.unlink(missing_ok=True)
    addresses = [f"{host}:{port}" for port in free_ports(n, host)]
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    program = ["-m", MODULE] if script is None else [str(script.resolve())]
    command = [sys.executable, *program, "--out", str(out.resolve()), "--epochs", str(epochs),
               "--global-batch", str(global_batch), "--learning-rate", repr(learning_rate),
               "--seed", str(seed), "--threads", str(threads), "--parent-pid", str(os.getpid())]
    if train_examples is not None:
        command += ["--train-examples", str(int(train_examples))]
    if backup:
        command.append("--backup")
    processes: list[subprocess.Popen] = []
    started = time.time()
    group = WorkerGroup(processes=processes, addresses=addresses, out=out, started=started)
    _live_groups.add(group)
    try:
        for i in range(n):
            env["TF_CONFIG"] = json.dumps(tf_config(addresses, i))
            with open(out / LOG_NAME.format(index=i), "wb") as log, \
                    open(out / ERR_NAME.format(index=i), "wb") as err:
                processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                                  stderr=err, env=env, start_new_session=True))
    except BaseException:
        group.stop()
        raise
    return group


def live_workers() -> list[int]:
    """Pids of this process's descendants that run a worker `start_workers` started."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "--parent-pid" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def load_weights(model, out: str | Path):
    """Load the chief's saved weights (OUT/weights.npz) into a model of the same architecture."""
    import numpy as np

    path = Path(out) / WEIGHTS_NAME
    if not path.exists():
        raise ValueError(f"expected the chief's {WEIGHTS_NAME} in {out}, found none: did the "
                         "worker group finish (wait() returned)?")
    with np.load(path) as f:
        weights = [f[f"arr_{i}"] for i in range(len(f.files))]
    shapes = [tuple(w.shape) for w in model.get_weights()]
    if [tuple(w.shape) for w in weights] != shapes:
        raise ValueError(f"the saved weights have shapes {[w.shape for w in weights]}, "
                         f"the model expects {shapes}")
    model.set_weights(weights)
    return model


if __name__ == "__main__":
    sys.exit(main())
