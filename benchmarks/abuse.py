"""Attack a live `semsearch serve` on loopback and measure what an ordinary client still gets.

    python3 benchmarks/abuse.py [--seconds 30] [--trials 10] [--smoke] [--out DIR]

Serves a copy of the seeds index (default model, --timeout 10) and runs, in turn:

1. baseline: one ordinary client sends the 68 labelled queries round-robin for --seconds;
2. each expensive-request attack (issue 23 rows 1–2) from 4 attacker threads sending it back
   to back while the ordinary client measures again: a valid 9,996-character dense query, and
   a 3.6 kB filter of 30 `text like "%___…_X%"` clauses (100 `_` each);
3. the CPU one attack request costs the server (its /proc utime+stime, one request at a time);
4. slow clients: 31 connections sending headers or a body one byte every 0.5 s, or nothing,
   while the ordinary client measures: how many the server closes, and how fast;
5. files of the live generation damaged while serving, --trials times each (cycling through its
   files, the vectors, passages and BM25 weights among them): truncated in place
   (to half), and rewritten in place (same size, bytes changed): every answer must be a 200 or
   a JSON 503, the server must stay alive, and answer 200 again once the file is restored.

Writes abuse.{json,md} to benchmarks/results/ (or --out). `--smoke` runs seconds of each step
into a temporary directory: it checks the script, its numbers mean nothing. Nothing leaves the
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from service import start_server  # benchmarks/service.py, beside this script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from semsearch.bench import DEFAULT_QRELS, load_qrels  # noqa: E402
from semsearch.stores import DEFAULT_INDEX  # noqa: E402
from semsearch.stores.faiss import FaissStore  # noqa: E402
from semsearch.stores.generations import live_dir  # noqa: E402

ATTACKS = {
    "long query (9,996 chars)": {"query": "volunteers delivered " * 476},
    "like filter (30 × 100 `_`)": {
        "query": "志愿者", "where": " or ".join(['text like "%' + "_" * 100 + 'X%"'] * 30)},
}
ATTACKERS = 4


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Ordinary(threading.Thread):
    """One client sending labelled queries back to back until stopped."""

    def __init__(self, url: str, queries: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.queries = url, queries
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                start = time.perf_counter()
                try:
                    status = str(http.post("/search", json={
                        "query": self.queries[n % len(self.queries)], "k": 5}).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.latencies.append(time.perf_counter() - start)
                self.statuses[status] += 1
                n += 1

    def report(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        total = sum(self.statuses.values())
        return {"requests": total, "statuses": dict(self.statuses),
                "ok_share": self.statuses["200"] / total if total else 0.0,
                "p50_s": round(statistics.median(ordered), 3) if ordered else None,
                "p99_s": round(percentile(ordered, 0.99), 3) if ordered else None,
                "max_s": round(ordered[-1], 3) if ordered else None}


class Attacker(threading.Thread):
    def __init__(self, url: str, body: dict[str, Any], statuses: Counter[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.body, self.statuses = url, body, statuses
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    status = str(http.post("/search", json=self.body).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.statuses[status] += 1
                if status == "503":  # refused at once: do not spin the CPU on refusals
                    time.sleep(0.05)


class HealthWatch(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self.stop.wait(0.5):
                try:
                    self.seen[http.get(f"{self.url}/health").json()["status"]] += 1
                except (httpx.HTTPError, ValueError, KeyError):
                    self.seen["failed"] += 1


def measure(url: str, queries: list[str], seconds: float,
            attack: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ordinary client's view for `seconds`, with 4 attackers sending `attack` if given."""
    attacker_statuses: Counter[str] = Counter()
    attackers = [Attacker(url, attack, attacker_statuses) for _ in range(ATTACKERS)] \
        if attack else []
    health = HealthWatch(url)
    for thread in (*attackers, health):
        thread.start()
    time.sleep(0.5 if attack else 0)  # the attack is under way before measuring
    ordinary = Ordinary(url, queries)
    ordinary.start()
    time.sleep(seconds)
    for thread in (ordinary, *attackers, health):
        thread.stop.set()
    ordinary.join(40)
    for thread in (*attackers, health):
        thread.join(40)
    return {**ordinary.report(), "attacker_statuses": dict(attacker_statuses),
            "health": dict(health.seen)}


def cost_per_request(url: str, pid: int, body: dict[str, Any], repeats: int) -> float:
    """The most server CPU one request costs, sent alone (`repeats` tries)."""
    worst = 0.0
    with httpx.Client(base_url=url, timeout=60) as http:
        for _ in range(repeats):
            time.sleep(0.3)
            before = cpu_seconds(pid)
            http.post("/search", json=body)
            time.sleep(0.2)  # let a search abandoned at the time limit reach its next check
            worst = max(worst, cpu_seconds(pid) - before)
    return round(worst, 3)


def slow_clients(url: str, port: int, queries: list[str], count: int,
                 seconds: float) -> dict[str, Any]:
    """`count` connections trickling headers, a body, or nothing; how many the server closed
    within `seconds`, and the ordinary client meanwhile."""
    kinds = ["headers", "body", "silent"]
    closed: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter()

    def trickle(kind: str) -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=seconds + 5) as sock:
                if kind == "headers":
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                elif kind == "body":
                    sock.sendall(b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                 b"application/json\r\nContent-Length: 1000\r\n\r\n{")
                deadline = time.perf_counter() + seconds
                while time.perf_counter() < deadline:
                    time.sleep(0.5)
                    if kind != "silent":
                        sock.sendall(b"a")
                    else:
                        sock.settimeout(0.01)
                        try:
                            while chunk := sock.recv(65536):  # a 408, then the close
                                del chunk
                            raise ConnectionResetError
                        except TimeoutError:
                            pass
                return  # still open at the end
        except OSError:
            with lock:
                closed.append(time.perf_counter() - start)

    threads = [threading.Thread(target=trickle, args=(kinds[i % 3],), daemon=True)
               for i in range(count)]
    for thread in threads:
        thread.start()
    ordinary = Ordinary(url, queries)
    ordinary.start()
    for thread in threads:
        thread.join(seconds + 10)
    ordinary.stop.set()
    ordinary.join(40)
    return {"connections": count, "closed_by_server": len(closed),
            "slowest_close_s": round(max(closed), 2) if closed else None,
            "ordinary": ordinary.report()}


def damage(url: str, index: Path, process: subprocess.Popen[str], how: str,
           trials: int) -> dict[str, Any]:
    """Damage a file of the live generation `trials` times (cycling through DAMAGED); every
    answer must be 200 or a JSON 503 and the server must live."""
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    passed = 0
    names = sorted(FaissStore.load(index, mmap=False).manifest.files)  # the served files
    with httpx.Client(base_url=url, timeout=30) as http:
        for trial in range(trials):
            file = live_dir(index) / names[trial * 3 % len(names)]
            good = file.read_bytes()
            try:
                if how == "truncate":
                    with file.open("r+b") as handle:
                        handle.truncate(len(good) // 2)
                else:
                    changed = bytearray(good)
                    for at in range(len(changed) // 3, len(changed), max(1, len(changed) // 50)):
                        changed[at] ^= 0x5A
                    with file.open("r+b") as handle:  # in place: same inode, same size
                        handle.write(bytes(changed))
                ok = True
                for mode in ("dense", "bm25", "hybrid"):
                    try:
                        response = http.post("/search", json={"query": "志愿者送物资",
                                                              "mode": mode})
                        shaped = response.status_code == 200 or (
                            response.status_code == 503 and "error" in response.json())
                        outcomes[str(response.status_code)] += 1
                    except (httpx.HTTPError, ValueError) as exc:
                        shaped = False
                        outcomes[type(exc).__name__] += 1
                    ok = ok and shaped
                health = http.get("/health").json()
                outcomes[f"health {health['status']}"] += 1
            finally:
                file.write_bytes(good)
            alive = process.poll() is None
            restored = alive and http.post("/search", json={"query": "志愿者送物资"}) \
                .status_code == 200
            if ok and alive and restored:
                passed += 1
            else:
                failures.append(f"trial {trial} ({file.name}): answers ok {ok}, alive {alive}, "
                                f"200 after restoring {restored}")
            if not alive:
                break
    return {"trials": trials, "passed": passed, "answers": dict(outcomes),
            "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="per measured step")
    parser.add_argument("--trials", type=int, default=10, help="per kind of file damage")
    parser.add_argument("--smoke", action="store_true", help="seconds per step: checks the "
                        "script runs, the numbers mean nothing")
    parser.add_argument("--out", type=Path, help="directory for abuse.{json,md} (default: "
                        "benchmarks/results; with --smoke a new temporary directory)")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.trials = 2, 2
    from outputs import output_dir  # benchmarks/outputs.py, beside this script

    out_dir = output_dir(args.out, args.smoke, "abuse")
    queries = [q.query for q in load_qrels(DEFAULT_QRELS)]
    work = Path(tempfile.mkdtemp(prefix="abuse-"))
    index = work / "index"
    shutil.copytree(DEFAULT_INDEX, index)
    process, url = start_server(index, "--timeout", "10")
    port = int(url.rsplit(":", 1)[1])
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
                              "seconds_per_step": args.seconds, "attackers": ATTACKERS}
    try:
        measure(url, queries, min(args.seconds, 3))  # warm up
        report["baseline"] = measure(url, queries, args.seconds)
        report["attacks"] = {}
        for name, body in ATTACKS.items():
            result = measure(url, queries, args.seconds, body)
            result["cpu_per_request_s"] = cost_per_request(url, process.pid, body,
                                                           2 if args.smoke else 5)
            report["attacks"][name] = result
        report["slow_clients"] = slow_clients(url, port, queries, 6 if args.smoke else 31,
                                              14 if args.smoke else 30)
        report["files"] = {how: damage(url, index, process, how, args.trials)
                           for how in ("truncate", "rewrite")}
        report["alive_after"] = process.poll() is None
        report["exit_status"] = process.returncode
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "abuse.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    lines = [f"`semsearch serve` under attack on loopback (seeds index, default model, "
             f"--timeout 10), {report['cpus']} CPUs, {args.seconds:g} s per step; measured "
             f"{report['date']}.", "",
             "| step | ordinary requests | ordinary statuses | 200 share | p50 s | p99 s | "
             "attacker statuses | CPU per attack request s | /health seen |",
             "|---|---|---|---|---|---|---|---|---|"]

    def row(name: str, result: dict[str, Any], cpu: str = "") -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items()))
        attackers = ", ".join(f"{k}: {v}" for k, v in
                              sorted(result.get("attacker_statuses", {}).items())) or "—"
        health = ", ".join(f"{k}: {v}" for k, v in sorted(result.get("health", {}).items()))
        return (f"| {name} | {result['requests']} | {statuses} | {result['ok_share']:.0%} | "
                f"{result['p50_s']} | {result['p99_s']} | {attackers} | {cpu or '—'} | "
                f"{health or '—'} |")

    lines.append(row("baseline (no attack)", report["baseline"]))
    for name, result in report["attacks"].items():
        lines.append(row(f"4 × {name}", result, str(result["cpu_per_request_s"])))
    slow = report["slow_clients"]
    lines.append(row(f"{slow['connections']} slow clients", slow["ordinary"]))
    lines += ["", f"Slow clients (headers or body 1 byte / 0.5 s, or silent): "
                  f"{slow['closed_by_server']} of {slow['connections']} closed by the server, "
                  f"the last after {slow['slowest_close_s']} s.", "",
              "| live file damage | trials passed (200 or JSON 503, alive, 200 once restored) "
              "| answers |", "|---|---|---|"]
    for how, result in report["files"].items():
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(result["answers"].items()))
        lines.append(f"| {how} in place | {result['passed']} of {result['trials']} | "
                     f"{answers} |")
    lines += ["", f"Server alive at the end: {report['alive_after']}."]
    (out_dir / "abuse.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    if not report["alive_after"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
