"""Attack a live `semsearch serve` on loopback and measure what an ordinary client still gets.

    python3 benchmarks/abuse.py [--seconds 30] [--trials 10] [--smoke] [--out DIR]
    python3 benchmarks/abuse.py --scale [--seconds 15] [--rounds 10]
    python3 benchmarks/abuse.py --truncations [--passages 180000] [--trials 10]
                                [--mmap-above BYTES]

Serves a copy of the seeds index (default model, --timeout 10) and runs, in turn:

`--scale` runs only the issue-39 attacks on a 100,000-passage index of random vectors (merged
into an existing abuse.{json,md}): 4 attackers with a new filter per request, 31 unseen filters
arriving with 1 ordinary request (--rounds), a heavy request in a batch, and what loading the
vectors costs (read into memory, mapped from a private copy, mapped in place as before).

`--truncations` builds a flat index of --passages random vectors (default 180,000: a 276 MB
vectors file, over the 256 MiB above which the service maps it), serves it with two clients
searching back to back (plain and filtered queries), and --trials times truncates its vectors
file to half in place, searches it (dense, bm25, hybrid), then restores it: every answer must
be 200 or a JSON 503, the server must stay alive, and answer 200 once the file is restored
(merged into abuse.{json,md}, like --scale). `--mmap-above` lowers the service's mapping limit
(faiss.MMAP_ABOVE) so that a smaller index is mapped too: the check of the script at reduced
size. The full run took 2 minutes on 2 CPUs shared with other jobs (1.4 GB peak RSS, the
largest of its processes), most of it building, writing and checksumming the vectors.

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
import contextlib
import json
import os
import shutil
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
from service import start_server, stop  # benchmarks/service.py, beside this script

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
           trials: int, files: list[str] | None = None) -> dict[str, Any]:
    """Damage a file of the live generation `trials` times (cycling through `files`, default
    every file it lists); every answer must be 200 or a JSON 503 and the server must live."""
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    passed = 0
    names = files or sorted(FaissStore.load(index, mmap=False).manifest.files)
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
            restored = alive and answers_again(http)
            if ok and alive and restored:
                passed += 1
            else:
                failures.append(f"trial {trial} ({file.name}): answers ok {ok}, alive {alive}, "
                                f"200 after restoring {restored}")
            if not alive:
                break
    return {"trials": trials, "passed": passed, "answers": dict(outcomes),
            "failures": failures}


# --- issue 39: a 100k-passage index ---------------------------------------------------------

SCALE_PASSAGES = 100_000
ORDINARY = {"query": "志愿者 报告", "k": 5}
HEAVY = {"query": ("志愿者在社区报告了疫情防控的工作进展 " * 60)[:990], "k": 100, "context": 5,
         "highlight": True}


def build_scale_index(target: Path, passages: int) -> None:
    """An index of `passages` short passages with random unit vectors, recorded as made by the
    seeds index's model (so the service embeds queries with it): costs are what matter here."""
    import numpy as np

    from semsearch.passages import Passage
    from semsearch.stores.faiss import read_manifest

    model = read_manifest(live_dir(DEFAULT_INDEX)).model
    rng = np.random.default_rng(39)
    vectors = rng.normal(size=(passages, model.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sources = 1000
    texts = [Passage(f"report {n:07d} 报告 第{n % 97}段 志愿者", f"doc{n % sources:04d}.txt",
                     n // sources, 0, 20) for n in range(passages)]
    FaissStore.create(texts, vectors, model, {f"doc{s:04d}.txt": "h" for s in range(sources)},
                      index_type="flat").save(target)


MAPPED_SCRIPT = """
import resource, sys, time
from pathlib import Path
from semsearch.stores import faiss
how, index = sys.argv[1], Path(sys.argv[2])
vectors = faiss.generations.live_dir(index) / faiss.VECTORS
start = time.perf_counter()
if how == "mapped in place (before)":
    loaded = faiss.load_index(vectors, mmap=True)
else:
    faiss.MMAP_ABOVE = 0 if how == "private copy, mapped" else 1 << 40
    loaded = faiss.FaissStore.load(index).faiss_index
seconds = time.perf_counter() - start
import numpy as np
loaded.search(np.ones((1, loaded.d), dtype=np.float32), 5)
rss = int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) // 1024
anon = int(Path("/proc/self/status").read_text().split("RssAnon:")[1].split()[0]) // 1024
print(seconds, rss, anon)
"""


def mapped_copy(index: Path) -> dict[str, Any]:
    """Start-up seconds and memory (RSS, and its anonymous part, MB) of loading the index's
    vectors: read into memory, mapped from a private copy (pinned.py), mapped in place."""
    loaded = FaissStore.load(index).faiss_index  # the vectors' bytes, as loaded
    out: dict[str, Any] = {"vectors_mb": round(loaded.ntotal * loaded.d * 4 / 1e6, 1)}
    for how in ("read into memory", "private copy, mapped", "mapped in place (before)"):
        done = subprocess.run([sys.executable, "-c", MAPPED_SCRIPT, how, str(index)],
                              cwd=REPO, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        seconds, rss, anon = done.stdout.split()
        out[how] = {"load_s": round(float(seconds), 2), "rss_mb": int(rss), "anon_mb": int(anon)}
    return out


def client(url: str, address: str) -> httpx.Client:
    """An HTTP client whose connections come from loopback `address` (127.0.0.x): the service
    keys fair admission by client address."""
    return httpx.Client(base_url=url, timeout=30,
                        transport=httpx.HTTPTransport(local_address=address))


def new_filter_attack(url: str, seconds: float, attackers: int = ATTACKERS) -> dict[str, Any]:
    """`attackers` attackers (127.0.0.2–5), each request with a filter never seen before, and
    the ordinary client (127.0.0.1) sending plain queries: its statuses and latency (with no
    attackers: the baseline)."""
    statuses: Counter[str] = Counter()
    stop = threading.Event()
    counter = iter(range(10**9))

    def attack(address: str) -> None:
        with client(url, address) as http:
            while not stop.is_set():
                n = next(counter)
                body = {"query": "report 报告", "k": 5,
                        "where": f'text like "%{n:07d}%" or paragraph > {n % 1000 + 100}'}
                try:
                    status = str(http.post("/search", json=body).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                statuses[status] += 1
                if status == "503":
                    time.sleep(0.05)

    threads = [threading.Thread(target=attack, args=(f"127.0.0.{n}",), daemon=True)
               for n in range(2, 2 + attackers)]
    for thread in threads:
        thread.start()
    time.sleep(0.5 if threads else 0)
    latencies: list[float] = []
    ordinary: Counter[str] = Counter()
    end = time.perf_counter() + seconds
    with client(url, "127.0.0.1") as http:
        while time.perf_counter() < end:
            start = time.perf_counter()
            try:
                status = str(http.post("/search", json=ORDINARY).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - start)
            ordinary[status] += 1
    stop.set()
    for thread in threads:
        thread.join(40)
    ordered = sorted(latencies)
    return {"requests": len(ordered), "statuses": dict(ordinary),
            "ok_share": ordinary["200"] / len(ordered), "p50_s": round(percentile(ordered, 0.5), 3),
            "p99_s": round(percentile(ordered, 0.99), 3), "attacker_statuses": dict(statuses)}


def together(url: str, rounds: int, first: int) -> dict[str, Any]:
    """`rounds` times: 31 requests with unseen filters (from 31 addresses) and 1 ordinary one
    sent at once; the ordinary one's status and seconds."""
    from concurrent.futures import ThreadPoolExecutor

    answers = []
    with ThreadPoolExecutor(32) as pool:
        for r in range(rounds):
            def unseen(n: int, r: int = r) -> int:
                with client(url, f"127.0.1.{n + 1}") as http:
                    return http.post("/search", json={
                        "query": "report 报告", "k": 5,
                        "where": f"paragraph > {first + r * 31 + n}"}).status_code

            def ordinary() -> tuple[int, float]:
                with client(url, "127.0.0.1") as http:
                    start = time.perf_counter()
                    status = http.post("/search", json={"query": "志愿者 报告"}).status_code
                    return status, time.perf_counter() - start

            attacks = [pool.submit(unseen, n) for n in range(31)]
            mine = pool.submit(ordinary)
            status, seconds = mine.result()
            attackers = Counter(str(a.result()) for a in attacks)
            answers.append({"status": status, "seconds": round(seconds, 3),
                            "attackers": dict(attackers)})
            time.sleep(0.5)
    return {"rounds": answers, "within_0_5_s": sum(a["status"] == 200 and a["seconds"] <= 0.5
                                                   for a in answers)}


def heavy_in_batch(url: str, rounds: int) -> dict[str, Any]:
    """p50 of 31 short requests sent together with a 32nd short one, then with the heavy one
    (990-character query, k 100, context 5, highlight), `rounds` rounds each, interleaved."""
    from concurrent.futures import ThreadPoolExecutor

    def short(n: int) -> float:
        with client(url, f"127.0.2.{n + 1}") as http:
            start = time.perf_counter()
            http.post("/search", json={"query": f"志愿者 报告 {n}", "k": 5})
            return time.perf_counter() - start

    def extra(body: dict[str, Any]) -> int:
        with client(url, "127.0.3.1") as http:
            return http.post("/search", json=body).status_code

    times: dict[str, list[float]] = {"plain": [], "heavy": []}
    with ThreadPoolExecutor(32) as pool:
        for _ in range(rounds):
            for kind, body in (("plain", {"query": "志愿者 报告 x"}), ("heavy", HEAVY)):
                mine = pool.submit(extra, body)
                times[kind] += [f.result() for f in [pool.submit(short, n) for n in range(31)]]
                mine.result()
                time.sleep(0.3)
    p50 = {kind: round(statistics.median(found), 3) for kind, found in times.items()}
    return {"p50_s": p50, "ratio": round(p50["heavy"] / p50["plain"], 2)}


def scale(seconds: float, rounds: int, passages: int = SCALE_PASSAGES) -> dict[str, Any]:
    """The issue-39 attacks on an index of `passages` (100,000) passages (--timeout 10)."""
    work = Path(tempfile.mkdtemp(prefix="abuse-scale-"))
    try:
        start = time.perf_counter()
        build_scale_index(work / "index", passages)
        report: dict[str, Any] = {"passages": passages,
                                  "build_s": round(time.perf_counter() - start, 1),
                                  "loading": mapped_copy(work / "index")}
        process, url = start_server(work / "index", "--timeout", "10")
        try:
            with client(url, "127.0.0.1") as http:
                for _ in range(3):
                    http.post("/search", json={"query": "志愿者 报告"})
            report["baseline"] = new_filter_attack(url, seconds, attackers=0)
            report["together"] = together(url, rounds, 1000)
            report["heavy_in_batch"] = heavy_in_batch(url, max(2, rounds // 2))
            report["new_filter_attack"] = new_filter_attack(url, seconds)
            report["alive_after"] = process.poll() is None
        finally:
            stop(process, grace=30)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scale_lines(report: dict[str, Any]) -> list[str]:
    """The 100k section of abuse.md."""
    attack = report["new_filter_attack"]
    loading = report["loading"]
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(attack["statuses"].items()))
    attackers = ", ".join(f"{k}: {v}" for k, v in sorted(attack["attacker_statuses"].items()))
    rounds = report["together"]["rounds"]
    heavy = report["heavy_in_batch"]
    base = report["baseline"]
    lines = [SCALE_HEADING, "",
             f"{report['passages']:,} passages (random vectors, `flat`), `--timeout 10`, "
             f"measured {report['date']}; filters evaluated as columns (columns.py), built "
             "when the service loads the index.", "",
             "| attack | measured |", "|---|---|",
             f"| none (baseline, same run) | ordinary client {base['requests']} requests, "
             f"p50 {base['p50_s']} s, p99 {base['p99_s']} s |",
             f"| 4 attackers (127.0.0.2–5), a new `text like … or paragraph > …` filter per "
             f"request | ordinary client {attack['requests']} requests, {statuses} "
             f"({attack['ok_share']:.0%}), p50 {attack['p50_s']} s, p99 {attack['p99_s']} s; "
             f"attackers {attackers} |",
             f"| 31 unseen filters + 1 ordinary request together, {len(rounds)} rounds | "
             f"ordinary answered 200 in ≤ 0.5 s in {report['together']['within_0_5_s']} of "
             f"{len(rounds)}: " + ", ".join(f"{a['seconds']} s" for a in rounds) + " |",
             f"| 31 short requests with a heavy one (990 characters, k 100, context 5, "
             f"highlight) against with a 32nd short one | p50 {heavy['p50_s']['heavy']} s "
             f"against {heavy['p50_s']['plain']} s: {heavy['ratio']}× |", "",
             f"Loading its {loading['vectors_mb']} MB vectors file (load s / RSS MB / of it "
             "anonymous MB): " + "; ".join(
                 f"{how} {v['load_s']} / {v['rss_mb']} / {v['anon_mb']}"
                 for how, v in loading.items() if isinstance(v, dict)) + ".",
             "", f"Server alive at the end: {report['alive_after']}."]
    return lines


SCALE_HEADING = "## 100k passages (issue 39)"
TRUNCATION_HEADING = "## Truncating the mapped vectors of a large index (issue 39)"
TRUNCATION_PASSAGES = 180_000  # 180,000 × 384 × 4 bytes: 276 MB, over MMAP_ABOVE (256 MiB)
# `semsearch serve` with faiss.MMAP_ABOVE set from its first argument
SERVE_LOWERED = ("import sys; from semsearch.stores import faiss; "
                 "faiss.MMAP_ABOVE = int(sys.argv.pop(1)); "
                 "from semsearch.cli import main; main()")


def answers_again(http: httpx.Client, wait: float = 30.0) -> bool:
    """Whether a search answers 200 within `wait` seconds (a restored file is checked again by
    its checksum first, which takes a moment on a large file)."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        with contextlib.suppress(httpx.HTTPError):
            if http.post("/search", json={"query": "志愿者送物资"}).status_code == 200:
                return True
        time.sleep(0.2)
    return False


def truncations(passages: int, trials: int, mmap_above: int | None) -> dict[str, Any]:
    """Truncate the vectors of a served index of `passages` random vectors `trials` times
    while two clients search (see the module docstring)."""
    from semsearch.stores.faiss import MMAP_ABOVE, VECTORS

    limit = MMAP_ABOVE if mmap_above is None else mmap_above
    work = Path(tempfile.mkdtemp(prefix="abuse-truncate-"))
    try:
        start = time.perf_counter()
        build_scale_index(work / "index", passages)
        size = (live_dir(work / "index") / VECTORS).stat().st_size
        report: dict[str, Any] = {"passages": passages, "vectors_mb": round(size / 1e6, 1),
                                  "mmap_above_mb": round(limit / 2**20, 2),
                                  "mapped": size > limit,
                                  "build_s": round(time.perf_counter() - start, 1)}
        launcher = None if mmap_above is None else [sys.executable, "-c", SERVE_LOWERED,
                                                    str(mmap_above)]
        start = time.perf_counter()
        process, url = start_server(work / "index", "--timeout", "10", launcher=launcher)
        report["start_s"] = round(time.perf_counter() - start, 1)
        statuses: Counter[str] = Counter()
        load = [Attacker(url, ORDINARY, statuses),
                Attacker(url, {**ORDINARY, "where": "paragraph > 20"}, statuses)]
        try:
            for thread in load:
                thread.start()
            time.sleep(1)  # under load before the first truncation
            report["files"] = damage(url, work / "index", process, "truncate", trials,
                                     files=[VECTORS])
            report["alive_after"] = process.poll() is None
        finally:
            for thread in load:
                thread.stop.set()
            for thread in load:
                thread.join(40)
            stop(process, grace=30)
        report["load_statuses"] = dict(statuses)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def truncation_lines(report: dict[str, Any]) -> list[str]:
    """The truncation section of abuse.md."""
    files = report["files"]
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(files["answers"].items()))
    load = ", ".join(f"{k}: {v}" for k, v in sorted(report["load_statuses"].items()))
    return [TRUNCATION_HEADING, "",
            f"{report['passages']:,} passages (random vectors, `flat`), a "
            f"{report['vectors_mb']} MB vectors file, mapped above {report['mmap_above_mb']} "
            f"MiB (mapped here: {report['mapped']}); measured {report['date']}. Two clients "
            "search back to back (plain, and `paragraph > 20`) while the vectors file is "
            "truncated to half in place, searched (dense, bm25, hybrid) and restored, "
            f"{files['trials']} times. Service start {report['start_s']} s.", "",
            f"Trials passed (every answer 200 or a JSON 503, alive, 200 once restored): "
            f"{files['passed']} of {files['trials']}; answers {answers}; the two clients' "
            f"answers {load}.", "", f"Server alive at the end: {report['alive_after']}."]


def merge(out_dir: Path, key: str, heading: str, report: dict[str, Any],
          lines: list[str]) -> None:
    """Put `report` under `key` in abuse.json and its `lines` as the section `heading` of
    abuse.md, the other sections left as measured."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_file, md_file = out_dir / "abuse.json", out_dir / "abuse.md"
    whole = json.loads(json_file.read_text(encoding="utf-8")) if json_file.is_file() else {}
    whole[key] = report
    json_file.write_text(json.dumps(whole, indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    text = md_file.read_text(encoding="utf-8") if md_file.is_file() else ""
    before, _, after = text.partition(heading)
    after = after[after.find("\n## "):] if "\n## " in after else ""  # sections after it
    text = (before.rstrip("\n") + "\n\n" if before.strip() else "") + "\n".join(lines) \
        + ("\n" + after.lstrip("\n") if after else "")
    md_file.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="per measured step")
    parser.add_argument("--trials", type=int, default=10, help="per kind of file damage")
    parser.add_argument("--smoke", action="store_true", help="seconds per step: checks the "
                        "script runs, the numbers mean nothing")
    parser.add_argument("--out", type=Path, help="directory for abuse.{json,md} (default: "
                        "benchmarks/results; with --smoke a new temporary directory)")
    parser.add_argument("--scale", action="store_true", help="only the 100k-passage attacks "
                        "(issue 39), merged into an existing abuse.{json,md}")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the 100k attacks")
    parser.add_argument("--truncations", action="store_true", help="only the truncation "
                        "trials on an index over 256 MiB (issue 39), merged like --scale")
    parser.add_argument("--passages", type=int, default=TRUNCATION_PASSAGES,
                        help="passages of the --truncations index")
    parser.add_argument("--mmap-above", type=int, default=None, help="the service's mapping "
                        "limit in bytes for --truncations (default: its own, 256 MiB)")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.trials = 2, 2
    from outputs import output_dir  # benchmarks/outputs.py, beside this script

    out_dir = output_dir(args.out, args.smoke, "abuse")
    if args.truncations:  # --smoke: 3,000 passages, mapped above 1 MiB, 2 trials
        if args.smoke:
            args.passages, args.mmap_above = 3_000, args.mmap_above or 1 << 20
        report = truncations(args.passages, args.trials, args.mmap_above)
        report["date"] = time.strftime("%Y-%m-%d %H:%M")
        lines = truncation_lines(report)
        merge(out_dir, "truncations", TRUNCATION_HEADING, report, lines)
        print("\n".join(lines))
        if not report["alive_after"] or report["files"]["passed"] < report["files"]["trials"]:
            raise SystemExit(1)
        return
    if args.scale:  # --smoke: a 3,000-passage index, 2 rounds
        run_scale(out_dir, args.seconds, 2 if args.smoke else args.rounds,
                  3_000 if args.smoke else SCALE_PASSAGES)
        return
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
        stop(process, grace=30)
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


def run_scale(out_dir: Path, seconds: float, rounds: int, passages: int) -> None:
    """The 100k attacks alone, merged into abuse.{json,md} (the rest left as measured)."""
    report = scale(seconds, rounds, passages)
    report["date"] = time.strftime("%Y-%m-%d %H:%M")
    lines = scale_lines(report)
    merge(out_dir, "scale", SCALE_HEADING, report, lines)
    print("\n".join(lines))
    if not report["alive_after"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
