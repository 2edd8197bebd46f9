"""Load test of `semsearch serve` on loopback: requests/s and latency at 1, 8 and 32 clients.

    python3 benchmarks/service.py [--requests 300] [--seconds 30] [--clients 1 8 32] [--smoke]
                                  [--out DIR] [--index DIR]

Starts the service on 127.0.0.1 (`semsearch serve --index`, the seeds index by default, default
model), sends the 68 labelled queries round-robin from N client threads — each run bounded by a
request count and a time limit — and writes service.{json,md} to benchmarks/results/ (or
`--out`). Nothing leaves the machine. `--smoke` checks that the script runs end to end in
seconds (20 requests at 1 and 4 clients) and writes to a new temporary directory unless `--out`
is given: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
HOST = "127.0.0.1"


def start_server(index: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """`semsearch serve` on a free loopback port (extra CLI options appended), once /health
    answers; SystemExit if it dies or does not come up."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "semsearch.cli", "serve", "--index", str(index.resolve()),
               "--host", HOST, "--port", str(port), *extra]
    process = subprocess.Popen(command, cwd=REPO, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://{HOST}:{port}"
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"the service exited with status {process.returncode} on start")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    process.wait()
    raise SystemExit("the service did not start")


def load(url: str, queries: list[str], clients: int, requests: int,
         seconds: float) -> dict[str, Any]:
    """`clients` threads share `requests` requests; stop early after `seconds`."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.perf_counter() < deadline:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                start = time.perf_counter()
                try:
                    response = http.post("/search", json={"query": queries[n % len(queries)],
                                                          "k": 5})
                except httpx.TransportError:  # the service is gone: count it, stop this client
                    with lock:
                        errors += 1
                    return
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    errors += response.status_code != 200

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    if not ordered:
        raise SystemExit(f"no request completed at {clients} clients")
    return {"clients": clients, "requests": len(latencies), "errors": errors,
            "seconds": wall, "requests_per_s": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]}


def main() -> None:
    sys.path.insert(0, str(REPO))
    from semsearch.bench import DEFAULT_QRELS, load_qrels
    from semsearch.stores import DEFAULT_INDEX

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per client count")
    parser.add_argument("--seconds", type=float, default=30, help="time limit per client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--smoke", action="store_true",
                        help="20 requests at 1 and 4 clients: checks the script runs (seconds)")
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX,
                        help="index directory to serve (default: the seeds index)")
    parser.add_argument("--out", type=Path, help="directory for service.{json,md} "
                        "(default: benchmarks/results; with --smoke a new temporary directory)")
    args = parser.parse_args()
    warmup = 20
    if args.smoke:
        args.requests, args.seconds = min(args.requests, 20), min(args.seconds, 10)
        args.clients, warmup = [1, 4], 4
    from outputs import output_dir  # benchmarks/outputs.py, beside this script

    args.out = output_dir(args.out, args.smoke, "service")
    if args.requests < 1 or args.seconds <= 0 or min(args.clients) < 1:
        parser.error("--requests, --seconds and --clients must be positive")

    queries = [q.query for q in load_qrels(DEFAULT_QRELS)]
    process, url = start_server(args.index)
    try:
        load(url, queries, 2, warmup, 10)  # warm up
        runs = [load(url, queries, c, args.requests, args.seconds) for c in args.clients]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
              "mode": "hybrid (default), k=5, 68 labelled queries round-robin", "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "service.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [f"`semsearch serve` on loopback, {report['cpus']} CPUs, {report['mode']}; measured "
             f"{report['date']}.", "", "| clients | requests | errors | requests/s | p50 ms | "
             "p99 ms |", "|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run['clients']} | {run['requests']} | {run['errors']} | "
                     f"{run['requests_per_s']:.1f} | {run['p50_ms']:.1f} | {run['p99_ms']:.1f} |")
    (args.out / "service.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
