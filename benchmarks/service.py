"""Load test of `semsearch serve` on loopback: requests/s and latency at 1, 8, 32 and 64 clients,
this code against a baseline checkout in the same run.

    python3 benchmarks/service.py [--baseline DIR] [--baseline-env NAME=VALUE ...]
                                  [--index NAME=DIR ...] [--clients 1 8 32 64]
                                  [--requests 1200] [--seconds 20] [--smoke] [--out DIR]

For each index (default: the seeds index) it starts two services on 127.0.0.1 — this code, and
with `--baseline` the code of another checkout (e.g. main's: `git worktree add --detach DIR
main`), by PYTHONPATH, or this code with `--baseline-env` settings (e.g.
SEMSEARCH_QUERY_STREAMS=2) — and sends, from N client threads, the 68 labelled queries round-robin
in two workloads: `hybrid` (the default mode, k=5: the figure the README quotes) and `mix`
(dense, BM25 and hybrid, some with a filter or k=10). Baseline and this code alternate at each
client count, so both see the same machine. Each run is bounded by a request count and a time
limit, after WARMUP_PER_CLIENT requests per client at that count (connections opened, batches
settled): with 400 requests and no such warm-up a run at 32 clients lasted ~3 s, a dozen
batches, and its p99 was the start's fourth-slowest request. The client is cheap: one
keep-alive `http.client` connection per thread, bodies encoded beforehand; it shares the
machine's CPUs with the server, as the report says. Each run also records the CPU ms per
request of the server process (all its threads, from /proc) and of this client process, and
the table gives requests/s as a multiple of 1 client's (the issue's "8 clients ≥ 2.5× 1
client") next to the CPU: on a machine shared with other jobs, CPU per request moves far less
than requests/s.

Also measured in-process: query encoding of a 10-character query as the service does it (the
warm `tokenizers` path) and as a cold CLI does it (the unigram tables), p50 of 200.

Writes service.{json,md,png} to benchmarks/results/ (or `--out`). `--smoke` checks the script
end to end in seconds (seeds index, 20 requests at 1 and 4 clients, no baseline) into a
temporary directory unless `--out` is given: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import http.client
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

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TEN_CHARS = "夫妻党员抗疫感人事迹"  # a 10-character query
WARMUP_PER_CLIENT = 3  # requests per client before each measured run (not counted)
MIX = [("hybrid", None, 5), ("dense", None, 5), ("bm25", None, 5),
       ("hybrid", "paragraph > 2", 5), ("dense", "paragraph < 5", 5), ("hybrid", None, 10)]


def start_server(index: Path, *extra: str, code: Path = REPO,
                 launcher: list[str] | None = None, env: dict[str, str] | None = None,
                 ) -> tuple[subprocess.Popen[str], str]:
    """`semsearch serve` of the code in `code` on a free loopback port (extra CLI options
    appended, `env` added to its environment), once /health answers; its URL. SystemExit if
    it dies or does not come up. `launcher`: the command that runs the CLI (default
    `python -m semsearch.cli`)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    command = [*(launcher or [sys.executable, "-m", "semsearch.cli"]), "serve", "--index",
               str(index.resolve()), "--host", HOST, "--port", str(port), *extra]
    process = subprocess.Popen(command, cwd=code, text=True, env={
        **os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(code), **(env or {})})
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"the service ({code}) exited with status {process.returncode}")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process, f"http://{HOST}:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    process.wait()
    raise SystemExit("the service did not start")


def stop(process: subprocess.Popen[Any], grace: float = 10) -> None:
    """SIGTERM the service (nothing if it has exited), and kill it if it has not stopped within
    `grace` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bodies(queries: list[str], workload: str) -> list[bytes]:
    """The request bodies of a workload, in the order they are sent."""
    out = []
    for n, query in enumerate(queries):
        if workload == "hybrid":
            body: dict[str, Any] = {"query": query, "k": 5}
        else:
            mode, where, k = MIX[n % len(MIX)]
            body = {"query": query, "k": k, "mode": mode}
            if where is not None:
                body["where"] = where
        out.append(json.dumps(body, ensure_ascii=False).encode("utf-8"))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, payloads: list[bytes], clients: int, requests: int,
         seconds: float, pid: int | None = None) -> dict[str, Any]:
    """`clients` threads share `requests` requests (each thread one keep-alive connection);
    stop early after `seconds`. With the server's `pid`, also the CPU ms per request of the
    server and of this client process: on a machine shared with other jobs they move far less
    than requests/s."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    headers = {"content-type": "application/json"}

    def client() -> None:
        nonlocal errors
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.perf_counter() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            start = time.perf_counter()
            try:
                connection.request("POST", "/search", payloads[n % len(payloads)], headers)
                response = connection.getresponse()
                response.read()
            except OSError:  # reconnect once; count the failure
                with lock:
                    errors += 1
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=60)
                continue
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                errors += response.status != 200
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    server_cpu = cpu_seconds(pid) if pid is not None else 0.0
    client_cpu = time.process_time()
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    ordered = sorted(latencies)
    if not ordered:
        raise SystemExit(f"no request completed at {clients} clients")
    run = {"clients": clients, "requests": len(latencies), "errors": errors,
           "seconds": round(wall, 3), "requests_per_s": round(len(latencies) / wall, 1),
           "p50_ms": round(1000 * statistics.median(ordered), 1),
           "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)}
    if pid is not None:
        run["server_cpu_ms"] = round(1000 * (cpu_seconds(pid) - server_cpu) / len(latencies), 2)
        run["client_cpu_ms"] = round(1000 * client_cpu / len(latencies), 2)
    return run


def query_encoding(repeats: int = 200) -> dict[str, Any]:
    """p50 ms of encoding a 10-character query: cold path (unigram tables) and warm path
    (`tokenizers`, as the service does after `runner.warm()`), in this process."""
    sys.path.insert(0, str(REPO))
    import semsearch

    encoder = semsearch.load().encoder
    runner = encoder.runner  # type: ignore[attr-defined]
    out: dict[str, Any] = {"query": TEN_CHARS}
    for name in ("cold_tokenizer", "warm_tokenizer"):
        if name == "warm_tokenizer":
            runner.warm()
        for _ in range(10):
            encoder.encode_queries([TEN_CHARS])
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            encoder.encode_queries([TEN_CHARS])
            times.append(time.perf_counter() - start)
        out[f"{name}_p50_ms"] = round(1000 * statistics.median(times), 2)
    prompt = encoder.info.prompts.get("query", "")
    out["tokens"] = len(runner.ids([prompt + TEN_CHARS])[0])
    return out


def chart(report: dict[str, Any], dest: Path) -> None:
    """requests/s against clients, baseline and this code, per index and workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(name, workload, runs) for name, index in report["by_index"].items()
              for workload, runs in index["workloads"].items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for ax, (name, workload, runs) in zip(axes[0], panels, strict=True):
        for version, style in (("baseline", "o--"), ("batched", "o-")):
            if version in runs:
                ax.plot([r["clients"] for r in runs[version]],
                        [r["requests_per_s"] for r in runs[version]], style, label=version)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("clients")
        ax.set_ylabel("requests/s")
        ax.set_title(f"{name}, {workload}")
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.tight_layout()
    fig.savefig(dest, dpi=100)
    plt.close(fig)


def cpu() -> str:
    """The CPU model and the flags that choose the query path (models/sessions.py), and what
    the service embeds queries with on it."""
    from semsearch.models.sessions import (
        KEY_FLAGS,
        bf16_capable,
        cpu_flags,
        cpu_name,
        query_path_unavailable,
    )
    from semsearch.serve import query_streams

    flags = " ".join(f for f in KEY_FLAGS if f in cpu_flags())
    path = "bf16" if bf16_capable() and query_path_unavailable("bf16") is None else "fp32"
    return f"{cpu_name()}: {flags}; queries in {path}, {query_streams()} stream(s) of 1 thread"


def markdown(report: dict[str, Any]) -> str:
    enc = report["query_encoding"]
    lines = [f"`semsearch serve` on loopback, {report['cpus']} CPUs "
             f"({report.get('cpu', 'CPU not recorded')}), measured {report['date']}; "
             f"{report['client']}.", "",
             f"Query encoding of a {len(enc['query'])}-character query ({enc['tokens']} tokens), "
             f"p50: {enc['warm_tokenizer_p50_ms']} ms warm (the service: `tokenizers`), "
             f"{enc['cold_tokenizer_p50_ms']} ms with the cold-start unigram tokenizer.", ""]
    if report.get("baseline"):
        settings = " ".join(f"{k}={v}" for k, v in report.get("baseline_env", {}).items())
        lines += [f"Baseline: {report['baseline']}" + (f" with {settings}" if settings else "")
                  + ".", ""]
    for name, index in report["by_index"].items():
        for workload, runs in index["workloads"].items():
            lines += [f"**{name}** ({index['passages']:,} passages), {workload} "
                      f"({report['workloads'][workload]}):", "",
                      "| clients | version | requests | errors | requests/s | p50 ms | p99 ms "
                      "| × baseline | × 1 client | server CPU ms/request | client CPU ms/request |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            base = {r["clients"]: r for r in runs.get("baseline", [])}
            for version in ("baseline", "batched"):
                alone = {r["clients"]: r for r in runs.get(version, [])}.get(1, {})
                for run in runs.get(version, []):
                    ratio = scaling = ""
                    before = base.get(run["clients"], {}).get("requests_per_s")
                    if version == "batched" and before:
                        ratio = f"{run['requests_per_s'] / before:.2f}"
                    if alone.get("requests_per_s"):
                        scaling = f"{run['requests_per_s'] / alone['requests_per_s']:.2f}"
                    lines.append(f"| {run['clients']} | {version} | {run['requests']} | "
                                 f"{run['errors']} | {run['requests_per_s']:.1f} | "
                                 f"{run['p50_ms']:.1f} | {run['p99_ms']:.1f} | {ratio} | "
                                 f"{scaling} | {run.get('server_cpu_ms', '')} | "
                                 f"{run.get('client_cpu_ms', '')} |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(REPO))
    from semsearch.bench import DEFAULT_QRELS, load_qrels
    from semsearch.stores import DEFAULT_INDEX

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1200, help="per run (at least 10 a "
                        "client)")
    parser.add_argument("--seconds", type=float, default=20, help="time limit per run")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--baseline", type=Path, help="a checkout whose service to compare "
                        "against (e.g. main's, in a second worktree)")
    parser.add_argument("--baseline-env", nargs="+", default=[], metavar="NAME=VALUE",
                        help="environment of the baseline's service (its code: --baseline, "
                        "else this checkout), e.g. SEMSEARCH_QUERY_STREAMS=2")
    parser.add_argument("--index", nargs="+", default=[], metavar="NAME=DIR",
                        help="indexes to serve (default: seeds=the seeds index)")
    parser.add_argument("--workloads", nargs="+", default=["hybrid", "mix"],
                        choices=["hybrid", "mix"])
    parser.add_argument("--smoke", action="store_true",
                        help="20 requests at 1 and 4 clients: checks the script runs (seconds)")
    parser.add_argument("--out", type=Path, help="directory for service.{json,md,png} "
                        "(default: benchmarks/results; with --smoke a new temporary directory)")
    args = parser.parse_args()
    warmup = 40
    if args.smoke:
        args.requests, args.seconds, args.clients, warmup = 20, 10, [1, 4], 4
        args.baseline, args.baseline_env, args.workloads = None, [], ["hybrid"]
    from outputs import output_dir  # benchmarks/outputs.py, beside this script

    args.out = output_dir(args.out, args.smoke, "service")
    if args.requests < 1 or args.seconds <= 0 or min(args.clients) < 1:
        parser.error("--requests, --seconds and --clients must be positive")
    indexes = dict(item.split("=", 1) for item in args.index) or {"seeds": str(DEFAULT_INDEX)}

    encoding = query_encoding(20 if args.smoke else 200)
    print(f"query encoding: {encoding}", flush=True)
    queries = [q.query for q in load_qrels(DEFAULT_QRELS)]
    baseline_env = dict(item.split("=", 1) for item in args.baseline_env)
    baseline = args.baseline.resolve() if args.baseline else REPO if baseline_env else None
    versions = {"batched": REPO} | ({"baseline": baseline} if baseline else {})
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "cpu": cpu(),
        "client": "client threads in one process on the same machine, one keep-alive "
                  "http.client connection each; baseline and batched alternate per client count; "
                  f"{WARMUP_PER_CLIENT} requests per client before each measured run",
        "workloads": {"hybrid": "hybrid, k=5, 68 labelled queries round-robin",
                      "mix": "dense/bm25/hybrid round-robin, 2 in 6 with a filter "
                             "(paragraph > 2, paragraph < 5), 1 in 6 with k=10"},
        "baseline": str(baseline) if baseline else None, "baseline_env": baseline_env,
        "service_env": {k: v for k, v in os.environ.items() if k.startswith("SEMSEARCH_")},
        "query_encoding": encoding, "by_index": {}}
    for name, directory in indexes.items():
        servers = {v: _port(start_server(Path(directory), code=code,
                                         env=baseline_env if v == "baseline" else None))
                   for v, code in versions.items()}
        try:
            passages = json.loads(_get(servers["batched"][1], "/health"))["passages"]
            entry: dict[str, Any] = {"path": directory, "passages": passages, "workloads": {}}
            for workload in args.workloads:
                payloads = bodies(queries, workload)
                runs: dict[str, list[dict[str, Any]]] = {v: [] for v in versions}
                for _, port in servers.values():
                    load(port, payloads, 4, warmup, 20)  # warm up
                for clients in args.clients:
                    count = args.requests if args.smoke else max(args.requests, 10 * clients)
                    for version, (process, port) in servers.items():
                        # the clients' connections and first requests, then the measured run
                        load(port, payloads, clients, WARMUP_PER_CLIENT * clients, args.seconds)
                        run = load(port, payloads, clients, count, args.seconds, process.pid)
                        runs[version].append(run)
                        print(f"{name} {workload} {version}: {run}", flush=True)
                entry["workloads"][workload] = runs
            report["by_index"][name] = entry
        finally:
            for process, _ in servers.values():
                stop(process)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "service.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    text = markdown(report)
    (args.out / "service.md").write_text(text, encoding="utf-8")
    chart(report, args.out / "service.png")
    print(text)


def _port(started: tuple[subprocess.Popen[str], str]) -> tuple[subprocess.Popen[str], int]:
    return started[0], int(started[1].rsplit(":", 1)[1])


def _get(port: int, path: str) -> str:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.request("GET", path)
    return connection.getresponse().read().decode("utf-8")


if __name__ == "__main__":
    main()
