"""Fuzz a live `semsearch serve` on loopback: generated requests, no 5xx, no hang.

    python3 benchmarks/fuzz_service.py [--requests 10000] [--seconds 900] [--timeout 10]

Starts the service on 127.0.0.1 (the seeds index, default model) and sends `--requests`
generated requests (stopping early after `--seconds`): bodies from the OpenAPI schema of
POST /search (schemathesis, valid and invalid), hostile ones (lone surrogates, deeply nested
and `like` filters, wrong types, random JSON, raw bytes), wrong methods and paths, and the search
page's own (`/`, `/static/…`, `/fields`). A second
thread asks /health every 0.25 s throughout. Checks: no status >= 500 other than the deliberate
503/504, every error body a JSON object with "error" and "code" (and "fields" for a malformed
body) and nothing else, no request slower than the service's
time limit plus 2 s. Writes benchmarks/results/fuzz_service.{json,md}. Nothing leaves the
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from service import start_server, stop  # benchmarks/service.py, beside this script

from semsearch.stores import DEFAULT_INDEX

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
# an error's body: its message, its stable code, and for a malformed body the fields at fault
ERROR_KEYS = {"error", "code", "fields"}


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def hostile_requests() -> st.SearchStrategy[tuple[str, str, bytes, str]]:
    """(method, path, body, content type) an attacker or a careless client might send."""
    words = st.sampled_from(["抗疫", "党员", "志愿者", "夫妻", "社区", "疫情防控", "x", ""])
    surrogate = st.sampled_from(["\\ud800", "\\udfff", "\\ud83d", "\\u0000", "\\u200b"])
    query = st.lists(words | surrogate, min_size=0, max_size=6).map("".join)
    fields = st.sampled_from(["source", "paragraph", "text", "heading", "start", "nosuch"])
    atom = st.one_of(
        st.builds(lambda f, p: f'{f} like "{p}"', fields,
                  st.text(alphabet="%_X抗", max_size=30)),
        st.builds(lambda f, n: f"{f} > {n}", fields, st.integers(-5, 10)),
        st.builds(lambda f: f'{f} == "002_b3706f758604a439.txt"', fields),
        st.text(alphabet="()!&|<>=\"' notandorinlike%", max_size=40))
    where = st.one_of(
        atom,
        st.builds(lambda a, n: "not " * n + a, atom, st.integers(0, 3000)),
        st.builds(lambda a, n: "(" * n + a + ")" * n, atom, st.integers(0, 3000)),
        st.builds(lambda a, b, n: f" {a} and {b} or " * n + a, atom, atom, st.integers(1, 500)))
    k = st.one_of(st.integers(-3, 1200), st.just("5"), st.just(True), st.floats(0, 10),
                  st.none())
    body = st.builds(
        lambda q, w, kk, mode, extra: (
            '{"query": "' + q + '"'
            + (f', "where": {json.dumps(w, ensure_ascii=False)}' if w is not None else "")
            + (f', "k": {json.dumps(kk)}' if kk is not None else "")
            + (f', "mode": "{mode}"' if mode else "") + extra + "}").encode("utf-8"),
        query, st.none() | where, k, st.sampled_from([None, "dense", "bm25", "hybrid", "x"]),
        st.sampled_from(["", ', "fusion": "rrf"', ', "extra": 1', ', "query": 5',
                         ', "highlight": true, "context": 2', ', "highlight": 1']))
    raw = st.one_of(json_values().map(lambda v: json.dumps(v, ensure_ascii=False)
                                      .encode("utf-8", "surrogatepass")),
                    st.binary(max_size=200),
                    st.integers(1, 200_000).map(lambda n: b"[" * n),
                    st.integers(1, 3).map(lambda n: b'{"query": "' + b"x" * (n << 20) + b'"}'))
    post = st.tuples(st.just("POST"), st.just("/search"), body | raw,
                     st.sampled_from(["application/json"] * 6 + ["text/plain", "",
                                                                   "application/x-www-form-urlencoded"]))
    other = st.tuples(st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "POST"]),
                      st.sampled_from(["/", "/health", "/search", "/nope",
                                       "/search?k=5", "/%ff", "/openapi.json", "/docs",
                                       "/fields", "/fields?where=x", "/?q=%E6%8A%97&k=-1",
                                       "/static/app.js", "/static/app.css", "/static/nope",
                                       "/static/..%2fserve.py", "/static/%00"]),
                      st.just(b""), st.just("application/json"))
    return st.one_of(post, post, post, other)


def schema_requests(url: str) -> st.SearchStrategy[tuple[str, str, bytes, str]]:
    """POST /search bodies from the service's OpenAPI schema, valid and invalid."""
    import schemathesis
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json").json())
    operation = schema["/search"]["POST"]

    def to_request(case: Any) -> tuple[str, str, bytes, str]:
        body = case.body
        if not isinstance(body, bytes):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        return "POST", "/search", body, case.media_type or "application/json"

    return st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                     operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
                     ).map(to_request)


class Health(threading.Thread):
    """Asks /health every `every` seconds; records failures and the slowest answer."""

    def __init__(self, url: str, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.asked = self.failed = 0
        self.slowest = 0.0
        self.generations: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self.stop.wait(self.every):
                start = time.perf_counter()
                try:
                    response = http.get(f"{self.url}/health")
                    ok = response.status_code == 200 and response.json()["status"] == "ok"
                    self.generations.add(response.json()["generation"])
                except (httpx.HTTPError, ValueError, KeyError):
                    ok = False
                self.slowest = max(self.slowest, time.perf_counter() - start)
                self.asked += 1
                self.failed += not ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=900)
    parser.add_argument("--timeout", type=float, default=10.0, help="the service's time limit")
    parser.add_argument("--smoke", action="store_true",
                        help="200 requests (seconds): checks the script, not the service")
    parser.add_argument("--out", type=Path, help="directory for fuzz_service.{json,md} "
                                                 "(default benchmarks/results/)")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.seconds = 200, 120
    from outputs import output_dir  # benchmarks/outputs.py, beside this script

    out_dir = output_dir(args.out, args.smoke, "fuzz")

    process, url = start_server(DEFAULT_INDEX, "--timeout", str(args.timeout))
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    slowest = (0.0, "")
    sent = 0
    deadline = time.perf_counter() + args.seconds
    health = Health(url)
    health.start()
    started = time.perf_counter()
    try:
        with httpx.Client(base_url=url, timeout=args.timeout + 30) as http:
            requests = st.one_of(schema_requests(url), hostile_requests(), hostile_requests())

            @settings(max_examples=args.requests, deadline=None, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(request=requests)
            def send(request: tuple[str, str, bytes, str]) -> None:
                nonlocal sent, slowest
                if time.perf_counter() > deadline:
                    return
                method, path, body, content_type = request
                headers = {"content-type": content_type} if content_type else {}
                start = time.perf_counter()
                try:
                    response = http.request(method, path, content=body or None, headers=headers)
                except httpx.HTTPError as exc:
                    statuses[0] += 1
                    bad.append(f"{method} {path} {body[:80]!r}: {type(exc).__name__} {exc}")
                    return
                elapsed = time.perf_counter() - start
                sent += 1
                statuses[response.status_code] += 1
                if elapsed > slowest[0]:
                    slowest = (elapsed, f"{method} {path} {body[:120]!r} → "
                                        f"{response.status_code}")
                try:
                    payload = response.json()
                    shaped = isinstance(payload, dict) and (
                        response.status_code < 400
                        or {"error", "code"} <= set(payload) <= ERROR_KEYS)
                except ValueError:  # the pages: /docs, and the search page with its files
                    shaped = response.status_code < 400 and (
                        path == "/docs" or path.split("?")[0] == "/"
                        or path.startswith("/static/"))
                if (response.status_code >= 500 and response.status_code not in (503, 504)) \
                        or not shaped or elapsed > args.timeout + 2:
                    bad.append(f"{method} {path} {body[:120]!r} → {response.status_code} "
                               f"{response.text[:200]!r} in {elapsed:.2f} s")

            send()
    finally:
        wall = time.perf_counter() - started
        health.stop.set()
        health.join(10)
        alive = process.poll() is None
        start = time.perf_counter()
        stop(process, grace=30)
        stop_seconds = time.perf_counter() - start

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
        "requests": sent, "transport_errors": statuses[0], "seconds": round(wall, 1),
        "statuses": {str(s): n for s, n in sorted(statuses.items()) if s},
        "server_errors": sum(n for s, n in statuses.items() if s >= 500 and s not in (503, 504)),
        "deliberate_503_504": statuses[503] + statuses[504],
        "time_limit_s": args.timeout, "longest_request_s": round(slowest[0], 3),
        "longest_request": slowest[1],
        "health": {"asked": health.asked, "failed": health.failed,
                   "slowest_s": round(health.slowest, 3),
                   "generations": sorted(health.generations)},
        "alive_after": alive, "sigterm_exit_s": round(stop_seconds, 2),
        "problems": bad[:50], "problem_count": len(bad),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fuzz_service.json").write_text(json.dumps(report, indent=2, ensure_ascii=False)
                                               + "\n", encoding="utf-8")
    lines = [
        f"Fuzzing `semsearch serve` on loopback (seeds index, default model, --timeout "
        f"{args.timeout:g}), {report['cpus']} CPUs; measured {report['date']}.", "",
        "| requests | seconds | statuses | 5xx (not 503/504) | 503/504 | longest request | "
        "/health asked / failed / slowest | SIGTERM exit |",
        "|---|---|---|---|---|---|---|---|",
        f"| {sent} | {report['seconds']} | "
        + ", ".join(f"{s}: {n}" for s, n in report["statuses"].items())
        + f" | {report['server_errors']} | {report['deliberate_503_504']} | "
        f"{report['longest_request_s']:.2f} s | {health.asked} / {health.failed} / "
        f"{health.slowest:.3f} s | {stop_seconds:.2f} s |", "",
        f"Longest request: `{slowest[1][:200]}`", "",
        f"Problems (bad status, non-JSON or misshapen body, over the limit): {len(bad)}",
    ]
    lines += [f"- `{problem[:300]}`" for problem in bad[:20]]
    (out_dir / "fuzz_service.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    if bad or not alive or health.failed or sent < min(args.requests, 1):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
