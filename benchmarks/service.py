"""Load test of `semsearch serve` on loopback: requests/s and latency at 1, 8 and 32 clients.

    python3 benchmarks/service.py [--requests 300] [--seconds 30]

Starts the service on 127.0.0.1 (the seeds index, default model), sends the 68 labelled queries
round-robin from N client threads — each run bounded by a request count and a time limit — and
writes benchmarks/results/service.{json,md}. Nothing leaves the machine.
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


def start_server() -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", "--host", HOST,
                                "--port", str(port)], cwd=REPO, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://{HOST}:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
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
                response = http.post("/search", json={"query": queries[n % len(queries)],
                                                      "k": 5})
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
    return {"clients": clients, "requests": len(latencies), "errors": errors,
            "seconds": wall, "requests_per_s": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from semsearch.bench import DEFAULT_QRELS, load_qrels

    queries = [q.query for q in load_qrels(DEFAULT_QRELS)]
    process, url = start_server()
    try:
        load(url, queries, 2, 20, 10)  # warm up
        runs = [load(url, queries, c, args.requests, args.seconds) for c in (1, 8, 32)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
              "mode": "hybrid (default), k=5, 68 labelled queries round-robin", "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "service.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [f"`semsearch serve` on loopback, {report['cpus']} CPUs, {report['mode']}; measured "
             f"{report['date']}.", "", "| clients | requests | errors | requests/s | p50 ms | "
             "p99 ms |", "|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run['clients']} | {run['requests']} | {run['errors']} | "
                     f"{run['requests_per_s']:.1f} | {run['p50_ms']:.1f} | {run['p99_ms']:.1f} |")
    (RESULTS / "service.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
