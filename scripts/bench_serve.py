"""Serving benchmark: start `python -m edgelib.serving` with the digits CNN and load it.

    .venv/bin/python scripts/bench_serve.py [--model PATH.tflite] [--workers 2] [--out DIR]

Two kinds of load, both from one asyncio process that writes pre-built HTTP/1.1
requests on keep-alive sockets (no HTTP library on the hot path):

* closed-loop: C connections, each sends its next request when the previous
  answer arrives (as `wrk` does), at C = 1, 8, 32; also GET /health at 32;
* open-loop: requests start at Poisson arrival times at an offered rate,
  whatever the server's state, on a pool of connections; the offered rate
  steps up until p99 passes the target or the generator falls behind.

The generator measures its own CPU time and the rate it really achieved, so a
table row where it could not keep up says so (column `sent/offered`). The
server's CPU time per request (all its processes, from psutil) is reported
too: on a machine shared with other jobs it varies less than requests/s.

Writes DIR/serve_bench.md (table) and DIR/serve_bench.png (p50 / p99 vs offered
load, the capacity at the p99 target marked). Numbers belong in the README.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgelib import profiling, serving  # noqa: E402


def _request(host: str, port: int, method: str, path: str, body: bytes = b"") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _connect(host: str, port: int, n: int):
    return [await asyncio.open_connection(host, port) for _ in range(n)]


async def closed_loop(host, port, request: bytes, connections: int, seconds: float) -> dict:
    conns = await _connect(host, port, connections)
    latencies, errors = [], 0
    end = time.perf_counter() + seconds

    async def one(reader, writer):
        nonlocal errors
        while time.perf_counter() < end:
            start = time.perf_counter()
            writer.write(request)
            if await _answer(reader) != 200:
                errors += 1
            latencies.append(time.perf_counter() - start)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(r, w) for r, w in conns))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for _, w in conns:
        w.close()
    return _summary(latencies, errors, wall, cpu)


async def open_loop(host, port, request: bytes, rate: float, seconds: float,
                    connections: int = 64) -> dict:
    """Poisson arrivals at `rate` per second; a request waits for a free connection
    (that wait counts in its latency, as a client would see it)."""
    conns = await _connect(host, port, connections)
    free: asyncio.Queue = asyncio.Queue()
    for conn in conns:
        free.put_nowait(conn)
    latencies, errors, tasks = [], 0, []

    async def one(scheduled):
        nonlocal errors
        reader, writer = await free.get()
        writer.write(request)
        if await _answer(reader) != 200:
            errors += 1
        latencies.append(time.perf_counter() - scheduled)
        free.put_nowait((reader, writer))

    rng = random.Random(0)
    cpu, start = time.process_time(), time.perf_counter()
    arrival = start
    while arrival < start + seconds:
        arrival += rng.expovariate(rate)
        delay = arrival - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(arrival)))
    sent_s = time.perf_counter() - start
    await asyncio.gather(*tasks)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    for _, w in conns:
        w.close()
    row = _summary(latencies, errors, wall, cpu)
    row["offered"], row["sent_ratio"] = rate, len(tasks) / sent_s / rate
    return row


def _summary(latencies, errors, wall, cpu) -> dict:
    ms = np.array(latencies) * 1e3
    return {"requests": len(ms), "errors": errors, "rps": len(ms) / wall,
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "generator_cpu": cpu / wall}


def batch_mean(metrics_text: str) -> float:
    total = serving.metric_value(metrics_text, "edge_batch_examples_sum")
    count = serving.metric_value(metrics_text, "edge_batch_examples_count")
    return total / count if count else float("nan")


def run(args) -> str:
    x = np.load(args.examples) if args.examples else np.random.default_rng(0).random(
        (64, 28, 28, 1), dtype=np.float32)
    lines = [f"CPU: {profiling.cpu_line()}, load average before: "
             f"{os.getloadavg()[0]:.2f}; server: --workers {args.workers} "
             f"--max-batch {args.max_batch} --max-wait-ms {args.max_wait_ms}", "",
             "| load | connections / offered | requests/s | p50 ms | p99 ms | mean batch | "
             "errors | generator CPU | server CPU ms / request | sent/offered |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    sweep = []
    with serving.start_server({"digits": args.model}, workers=args.workers,
                              max_batch=args.max_batch, max_wait_ms=args.max_wait_ms) as server:
        host, port = server.host, server.port
        body = serving.request_body(x[:1])
        predict = _request(host, port, "POST", "/models/digits/predict", body)
        health = _request(host, port, "GET", "/health")
        client = serving.Client(server.url)
        def measure(load):  # the row, with the server's CPU ms per request added
            cpu = server.cpu_seconds()
            row = asyncio.run(load)
            row["server_cpu"] = 1e3 * (server.cpu_seconds() - cpu) / max(row["requests"], 1)
            return row

        asyncio.run(closed_loop(host, port, predict, 8, 1.0))  # warm up every worker
        health_row = measure(closed_loop(host, port, health, 32, args.seconds))
        for connections in (1, 8, 32):
            before = client.metrics()
            row = measure(closed_loop(host, port, predict, connections, args.seconds))
            after = client.metrics()
            mean = ((serving.metric_value(after, "edge_batch_examples_sum")
                     - serving.metric_value(before, "edge_batch_examples_sum"))
                    / (serving.metric_value(after, "edge_batch_examples_count")
                       - serving.metric_value(before, "edge_batch_examples_count") or np.nan))
            lines.append(f"| closed | {connections} | {row['rps']:.0f} | {row['p50']:.1f} | "
                         f"{row['p99']:.1f} | {mean:.1f} (one worker) | {row['errors']} | "
                         f"{100 * row['generator_cpu']:.0f} % | {row['server_cpu']:.2f} | - |")
            if connections == 32:
                ratio = row["rps"] / health_row["rps"]
        lines.append(f"| closed GET /health | 32 | {health_row['rps']:.0f} | "
                     f"{health_row['p50']:.1f} | {health_row['p99']:.1f} | - | "
                     f"{health_row['errors']} | {100 * health_row['generator_cpu']:.0f} % | "
                     f"{health_row['server_cpu']:.2f} | - |")
        rate = args.start_rate
        while rate <= args.max_rate:
            row = measure(open_loop(host, port, predict, rate, args.seconds))
            sweep.append(row)
            lines.append(f"| open | {rate:.0f}/s | {row['rps']:.0f} | {row['p50']:.1f} | "
                         f"{row['p99']:.1f} | - | {row['errors']} | "
                         f"{100 * row['generator_cpu']:.0f} % | {row['server_cpu']:.2f} | "
                         f"{row['sent_ratio']:.2f} |")
            if row["p99"] > 4 * args.p99_ms or row["sent_ratio"] < 0.9:
                break
            rate *= args.step
    ok = [r["offered"] for r in sweep if r["p99"] <= args.p99_ms and r["sent_ratio"] >= 0.9]
    capacity = max(ok) if ok else float("nan")
    lines += ["", f"predict / GET /health at 32 connections: {ratio:.2f}; capacity at p99 <= "
              f"{args.p99_ms:g} ms (open loop): {capacity:.0f} requests/s offered"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    (out / "serve_bench.md").write_text(text)
    _plot(sweep, args.p99_ms, capacity, out / "serve_bench.png")
    return text


def _plot(sweep, target, capacity, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    offered = [r["offered"] for r in sweep]
    ax.plot(offered, [r["p50"] for r in sweep], "o-", label="p50")
    ax.plot(offered, [r["p99"] for r in sweep], "s-", label="p99")
    ax.axhline(target, color="gray", ls="--", label=f"p99 target {target:g} ms")
    if capacity == capacity:
        ax.axvline(capacity, color="green", ls=":", label=f"capacity {capacity:.0f}/s")
    ax.set(xlabel="offered load (requests/s, Poisson)", ylabel="latency (ms)", yscale="log",
           title="digits CNN served: latency vs offered load")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _digits_model(folder: Path) -> Path:
    path = folder / "digits_f32.tflite"
    if not path.exists():
        import edgelib

        edgelib.setup()
        from edgelib import models, tflite

        folder.mkdir(parents=True, exist_ok=True)
        tflite.save(tflite.convert(models.digits_cnn(), "float32"), path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="the digits CNN .tflite file (default: build the "
                        "chapters' digits CNN, untrained, in --out: speed does not depend on "
                        "the weights)")
    parser.add_argument("--examples", help=".npy of inputs (default: random 28x28x1 floats)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=serving.DEFAULT_MAX_BATCH)
    parser.add_argument("--max-wait-ms", type=float, default=serving.DEFAULT_MAX_WAIT_MS)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--p99-ms", type=float, default=50.0)
    parser.add_argument("--start-rate", type=float, default=100.0)
    parser.add_argument("--step", type=float, default=1.5)
    parser.add_argument("--max-rate", type=float, default=5000.0)
    parser.add_argument("--out", default="build/bench_serve")
    args = parser.parse_args(argv)
    if args.model is None:
        args.model = str(_digits_model(Path(args.out)))
    elif not Path(args.model).is_file():
        parser.error(f"--model: no file {args.model!r}")
    print(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
