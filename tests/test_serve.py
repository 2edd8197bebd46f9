"""The HTTP service: a real `semsearch serve` on 127.0.0.1 (the real model, marked slow), and
the app in-process or under uvicorn in a thread over a tiny-model index (bad input, time limits,
following the index, schema fuzzing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from semsearch.serve import CODES

from .conftest import REPO, free_port, make_app, serving


@pytest.fixture(scope="module")
def server(real_model: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", "--port",
                                str(port)], cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {process.stderr.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_health(server: str) -> None:
    body = httpx.get(f"{server}/health").json()
    assert body["status"] == "ok" and body["passages"] > 0 and body["dimension"] == 384


@pytest.mark.slow
def test_search_answers_the_main_job(server: str) -> None:
    response = httpx.post(f"{server}/search", json={"query": "夫妻党员抗疫", "k": 3})
    assert response.status_code == 200
    hits = response.json()["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert "我们夫妻俩都是党员" in hits[0]["text"] and hits[0]["source"].startswith("000_")
    assert {"score", "id", "source", "paragraph", "start", "end"} <= set(hits[0])


@pytest.mark.slow
def test_search_with_mode_and_filter(server: str) -> None:
    response = httpx.post(f"{server}/search", json={
        "query": "夫妻党员抗疫", "k": 5, "mode": "bm25",
        "where": 'source == "002_b3706f758604a439.txt"'})
    assert response.status_code == 200
    assert {h["source"] for h in response.json()["hits"]} == {"002_b3706f758604a439.txt"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"query": "  "}, 400, "empty"),
        ({"query": "党员", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"query": "党员", "where": "source =="}, 400, "bad filter"),
        ({"query": "党员", "mode": "magic"}, 422, "mode"),
        ({"k": 3}, 422, "query"),
        ({"query": "党员", "k": "many"}, 422, "k"),
        ({"query": "党" * 20_000}, 400, "limit"),
    ],
)
def test_bad_input_gets_a_json_error(server: str, body: dict[str, object], status: int,
                                     needle: str) -> None:
    response = httpx.post(f"{server}/search", json=body)
    assert response.status_code == status
    assert needle in response.json()["error"]


@pytest.mark.slow
def test_not_json(server: str) -> None:
    response = httpx.post(f"{server}/search", content=b"not json",
                          headers={"content-type": "application/json"})
    assert response.status_code == 422 and "error" in response.json()


@pytest.mark.slow
def test_concurrent_requests_agree(server: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def ask(_: int) -> list[int]:
        hits = httpx.post(f"{server}/search", json={"query": "志愿者送物资", "k": 5}).json()
        return [h["id"] for h in hits["hits"]]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(24)))
    assert all(a == answers[0] for a in answers)


# --- in-process: a tiny-model index, the app under test without the real model ---------------

TARGET = "002_b3706f758604a439.txt"




@pytest.fixture(scope="module")
def client(tiny_index: Path) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(make_app(tiny_index), raise_server_exceptions=False) as test_client:
        yield test_client


def post_raw(client: Any, body: bytes, content_type: str = "application/json") -> Any:
    return client.post("/search", content=body, headers={"content-type": content_type})


def test_lone_surrogate_is_dropped_not_a_500(client: Any) -> None:
    # before: HTTP 500, plain text (the echoed query could not be encoded)
    response = post_raw(client, b'{"query": "\\ud800\xe6\x8a\x97\xe7\x96\xab", "k": 2}')
    assert response.status_code == 200
    assert response.json()["query"] == "抗疫" and len(response.json()["hits"]) == 2
    response = post_raw(client, b'{"query": "\\udfff\\ud800"}')
    assert response.status_code == 400 and "empty" in response.json()["error"]


@pytest.mark.parametrize("depth", [980, 2000, 5000], ids=str)
def test_deeply_nested_filter_is_refused_as_json(client: Any, depth: int) -> None:
    # before: HTTP 500 (RecursionError) for 5,000 nested `not`
    response = client.post("/search", json={"query": "抗疫",
                                            "where": "not " * depth + "paragraph > 1"})
    assert response.status_code in (400, 422)
    assert "error" in response.json()


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status"),
    [
        ("GET", "/nope", None, None, 404),
        ("GET", "/search", None, None, 405),
        ("DELETE", "/health", None, None, 405),
        ("POST", "/search", b"query=x", "text/plain", 422),
        ("POST", "/search", b"[" * 100_000, "application/json", 400),
        ("POST", "/search", b'"' + b"x" * (2 << 20) + b'"', "application/json", 413),
        ("POST", "/search", b"\xff\xfe", "application/json", 422),
    ],
)
def test_every_error_body_is_error_json(client: Any, method: str, path: str,
                                        body: bytes | None, content_type: str | None,
                                        status: int) -> None:
    # before: 404/405 bodies were {"detail": ...}
    headers = {"content-type": content_type} if content_type else {}
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == status
    assert {"error", "code"} <= set(response.json()) <= {"error", "code", "fields"}
    assert response.json()["error"] and response.json()["code"] == CODES[status]


@pytest.mark.parametrize(
    "body",
    [{"query": "抗疫", "k": "5"}, {"query": "抗疫", "k": True}, {"query": "抗疫", "k": 5.0},
     {"query": "抗疫", "k": 1001}, {"query": 5}, {"query": ["抗疫"]}, {"query": "抗疫", "x": 1},
     {"query": "抗疫", "where": 5}, {"query": "抗疫", "mode": None}],
)
def test_wrong_types_are_refused(client: Any, body: dict[str, Any]) -> None:
    # before: "k": "5" and "k": true were accepted
    response = client.post("/search", json=body)
    assert response.status_code == 422 and response.json()["error"].startswith("bad request")


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--port", "99999"], "--port must be between 1 and 65535"),
     (["--port", "0"], "--port must be"), (["--host", "nosuch.invalid"], "--host"),
     (["--timeout", "0"], "--timeout must be")],
)
def test_bad_address_is_one_red_line(args: list[str], needle: str) -> None:
    # before: --port 99999 was a traceback
    done = subprocess.run([sys.executable, "-m", "semsearch.cli", "serve", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


def test_slow_search_gets_504_while_health_answers(index_copy: Path) -> None:
    # before: one slow request froze /health and every other client
    app = make_app(index_copy, timeout=0.5, workers=2)
    index = app.state.live.index
    original = index.search

    def slow(query: str, *args: Any, **kwargs: Any) -> Any:
        if query == "slow":
            time.sleep(4)
        return original(query, *args, **kwargs)

    index.search = slow
    original_each = index.search_each

    def slow_each(requests: Any, **kwargs: Any) -> Any:  # the batched path of /search
        if any(r.query == "slow" for r in requests):
            time.sleep(4)
        return original_each(requests, **kwargs)

    index.search_each = slow_each
    from concurrent.futures import ThreadPoolExecutor

    with serving(app) as (url, _), ThreadPoolExecutor(4) as pool:
        slow_answers = [pool.submit(httpx.post, f"{url}/search", json={"query": "slow"},
                                    timeout=10) for _ in range(3)]
        time.sleep(0.1)
        start = time.perf_counter()
        health = httpx.get(f"{url}/health", timeout=5)
        health_seconds = time.perf_counter() - start
        assert health.status_code == 200 and health.json()["workers_busy"] >= 1
        assert health_seconds < 0.3
        for answer in slow_answers:
            response = answer.result()
            assert response.status_code == 504
            assert "longer than 0.5 s" in response.json()["error"]
            assert response.elapsed.total_seconds() < 2
        # the workers are still busy with the slow ones: a fast search waits or gets 504,
        # never hangs; once they are free, searches answer again
        time.sleep(4)
        fine = httpx.post(f"{url}/search", json={"query": "抗疫"}, timeout=5)
        assert fine.status_code == 200 and fine.json()["hits"]


SIGTERM_SCRIPT = """
import sys, time
import semsearch
from semsearch import serve
index = semsearch.load(sys.argv[1])
original = index.search
def slow(query, *args, **kwargs):
    if query == "slow":
        time.sleep(600)
    return original(query, *args, **kwargs)
index.search = slow
original_each = index.search_each
def slow_each(requests, **kwargs):
    if any(r.query == "slow" for r in requests):
        time.sleep(600)
    return original_each(requests, **kwargs)
index.search_each = slow_each
serve.run(index, port=int(sys.argv[2]), timeout=300)
"""


def test_sigterm_exits_within_seconds_during_a_stuck_search(index_copy: Path) -> None:
    # before: SIGTERM did not stop a server busy with a runaway request
    import signal
    import threading

    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT, str(index_copy),
                                str(port)], cwd=REPO, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        def stuck() -> None:
            with suppress(httpx.HTTPError):  # the server goes away under it
                httpx.post(f"{url}/search", json={"query": "slow"}, timeout=30)

        threading.Thread(target=stuck, daemon=True).start()
        time.sleep(0.5)
        assert httpx.get(f"{url}/health", timeout=2).json()["workers_busy"] == 1
        start = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert time.perf_counter() - start < 6
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def hit_sources(client: Any, **body: Any) -> set[str]:
    response = client.post("/search", json={"query": "抗疫", "k": 50, "mode": "bm25", **body})
    assert response.status_code == 200, response.text
    return {hit["source"] for hit in response.json()["hits"]}


def remove_source(index_dir: Path, source: str) -> None:
    import semsearch

    writer = semsearch.load(index_dir, writable=True)
    writer.remove(source)
    writer.save(index_dir)


def test_removed_source_is_not_served_after_the_write(index_copy: Path) -> None:
    # before: the service kept serving generation 1 and the removed passages forever
    from starlette.testclient import TestClient

    with TestClient(make_app(index_copy), raise_server_exceptions=False) as test_client:
        assert TARGET in hit_sources(test_client)
        assert test_client.get("/health").json()["generation"] == 1
        remove_source(index_copy, TARGET)  # another writer commits generation 2
        assert TARGET not in hit_sources(test_client)
        assert TARGET not in hit_sources(test_client, where=f'source == "{TARGET}"') | set()
        health = test_client.get("/health").json()
        assert (health["status"], health["generation"], health["live_generation"]) == \
            ("ok", 2, 2)
        # the CLI as another process: generation 3, and generation 1 is gone from disk
        other = "000_" + next(s for s in hit_sources(test_client) if s.startswith("000_"))[4:]
        done = subprocess.run([sys.executable, "-m", "semsearch.cli", "remove", "--source",
                               other, "--index", str(index_copy)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert other not in hit_sources(test_client)
        assert test_client.get("/health").json()["generation"] == 3
        assert not (index_copy / "gen-00000001").exists()


def test_health_alone_notices_a_new_generation(index_copy: Path) -> None:
    from starlette.testclient import TestClient

    with TestClient(make_app(index_copy), raise_server_exceptions=False) as test_client:
        remove_source(index_copy, TARGET)
        deadline = time.time() + 20
        seen = []
        while time.time() < deadline:
            health = test_client.get("/health").json()
            seen.append(health["status"])
            if health["generation"] == 2:
                break
            time.sleep(0.05)
        assert health["generation"] == 2 and health["status"] == "ok"
        assert set(seen) <= {"ok", "reloading"}


def test_unloadable_generation_keeps_the_old_one_only_while_on_disk(index_copy: Path) -> None:
    import shutil

    from starlette.testclient import TestClient

    with TestClient(make_app(index_copy), raise_server_exceptions=False) as test_client:
        remove_source(index_copy, TARGET)
        passages = index_copy / "gen-00000002" / "passages.jsonl"
        passages.write_bytes(passages.read_bytes()[:-10])  # generation 2 is corrupt
        assert TARGET in hit_sources(test_client)  # generation 1 is still on disk: served
        health = test_client.get("/health").json()
        assert health["status"] == "stale" and "corrupt" in health["error"]
        assert (health["generation"], health["live_generation"]) == (1, 2)
        shutil.rmtree(index_copy / "gen-00000001")  # now nothing servable is on disk
        response = test_client.post("/search", json={"query": "抗疫"})
        assert response.status_code == 503 and "corrupt" in response.json()["error"]
        assert test_client.get("/health").json()["status"] == "unavailable"


# --- fuzzing the API from its OpenAPI schema (schemathesis), bounded --------------------------

def test_fuzz_from_the_schema_never_500s(client: Any) -> None:
    """Generated bodies, valid (positive) and invalid (negative) by the schema: never a 5xx,
    always a JSON object, each answered within the time limit."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    operation = schema["/search"]["POST"]
    cases = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                      operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    seen: Counter[int] = Counter()

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def check(case: Any) -> None:
        start = time.perf_counter()
        response = client.request("POST", "/search", content=serialize(case),
                                  headers={"content-type": case.media_type or
                                           "application/json"})
        elapsed = time.perf_counter() - start
        seen[response.status_code] += 1
        assert response.status_code < 500, (case.body, response.text)
        assert isinstance(response.json(), dict)
        assert elapsed < 10

    check()
    assert seen[200] > 0 and sum(seen[s] for s in (400, 422)) > 0, seen


def serialize(case: Any) -> bytes:
    import json

    body = case.body
    if isinstance(body, bytes):
        return body
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("where", ["not (" * 300 + "paragraph > 1" + ")" * 300,
                                   'text like "%%%%%%X"', "(" * 3000, "a" * 10_001],
                         ids=["nested-300", "like-6%", "open-3000", "long"])
def test_hostile_filters_answer_in_bounded_time(client: Any, where: str) -> None:
    start = time.perf_counter()
    response = client.post("/search", json={"query": "抗疫", "where": where})
    assert time.perf_counter() - start < 11
    assert response.status_code in (200, 400, 422, 504)
    assert response.status_code == 200 or "error" in response.json()


def test_a_missing_dependency_is_a_500_not_a_400(tiny_index: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing extra on the server is the server's fault (issue 13: it was a 400)."""
    from starlette.testclient import TestClient

    from semsearch.errors import MissingDependencyError
    from semsearch.index import Index

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise MissingDependencyError("the Milvus backend", "milvus")

    app = make_app(tiny_index)
    monkeypatch.setattr(Index, "search", missing)
    monkeypatch.setattr(Index, "search_each", missing)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.post("/search", json={"query": "抗疫"})
    assert response.status_code == 500
    assert "pip install 'semsearch[milvus]'" in response.json()["error"]


# --- what every answer says about itself: codes, no server paths, headers --------------------

@pytest.mark.parametrize(("body", "status", "code"), [
    ({"query": "抗疫", "where": "nosuch == 1"}, 400, "bad_filter"),
    ({"query": "抗疫", "where": "paragraph >"}, 400, "bad_filter"),
    ({"query": "抗疫", "where": "(" * 500 + "paragraph > 1" + ")" * 500}, 400, "bad_filter"),
    ({"query": "   "}, 400, "bad_query"),
    ({"query": "抗疫", "k": 0}, 422, "invalid_request"),
])
def test_errors_carry_a_stable_code(client: Any, body: dict[str, Any], status: int,
                                    code: str) -> None:
    # before: {"error": ...} only, so a client could tell a bad filter from a bad query
    # only by reading English
    response = client.post("/search", json=body)
    assert response.status_code == status and response.json()["code"] == code
    assert response.json()["error"]
    if code == "invalid_request":
        assert response.json()["fields"] == ["k"]


def test_a_503_and_health_name_no_server_path(index_copy: Path) -> None:
    # before: "index unusable: /tmp/.../index/gen-00000001/passages.jsonl changed on disk"
    from starlette.testclient import TestClient

    with TestClient(make_app(index_copy), raise_server_exceptions=False) as test_client:
        assert hit_sources(test_client)
        passages = next(index_copy.glob("gen-*/passages.jsonl"))
        passages.write_bytes(passages.read_bytes()[:-10])
        response = test_client.post("/search", json={"query": "抗疫"})
        assert response.status_code == 503 and response.json()["code"] == "unavailable"
        health = test_client.get("/health").json()
        assert "/" not in health["model"]  # the tiny model is named by its path
        for said in (response.json()["error"], health["error"]):
            assert "unusable" in said
            assert str(index_copy.parent) not in said and "/tmp" not in said
            assert f"index/{passages.parent.name}/passages.jsonl" in said  # index-relative


def test_public_message_cuts_paths_to_the_index_or_their_last_part(tmp_path: Path) -> None:
    from semsearch.serve import public_message

    root = tmp_path / "news"
    said = public_message(f"cannot read {root}/CURRENT: see /etc/semsearch/x.conf, ratio 1/2",
                          [root])
    assert said == "cannot read news/CURRENT: see x.conf, ratio 1/2"


def test_every_answer_has_security_headers_and_no_server_banner(tiny_index: Path) -> None:
    # before: no X-Content-Type-Options on JSON, no Referrer-Policy, `server: uvicorn`
    import socket

    with serving(make_app(tiny_index)) as (url, port):
        answers = [httpx.get(f"{url}{path}") for path in
                   ("/", "/health", "/fields", "/static/app.js", "/nope", "/health/")]
        answers += [httpx.post(f"{url}/search", json=body) for body in
                    ({"query": "抗疫"}, {"query": "抗疫", "k": 0}, {"query": "抗疫", "where": "x"})]
        answers.append(httpx.get(f"{url}/health", headers={"host": "evil.example"}))
        answers.append(httpx.post(f"{url}/search", content=b"x" * (2 << 20)))
        answers.append(httpx.head(f"{url}/health"))
        assert {a.status_code for a in answers} >= {200, 400, 404, 413, 422}
        for answer in answers:
            assert answer.headers.get("x-content-type-options") == "nosniff", answer.url
            assert answer.headers.get("referrer-policy") == "no-referrer", answer.url
            assert "server" not in answer.headers, answer.url
        with socket.create_connection(("127.0.0.1", port)) as raw:  # malformed HTTP: guard.py
            raw.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nbad header\r\n\r\n")
            head = raw.recv(4096).decode("latin-1").lower()
        assert head.startswith("http/1.1 400") and "x-content-type-options: nosniff" in head
        assert "referrer-policy: no-referrer" in head and "\r\nserver:" not in head


def test_fields_is_computed_once_and_never_times_out(index_copy: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # before: /fields ran on a search worker under the search time limit, recomputed each
    # time: slower than the limit (a busy machine, a big index) it was a 504 every time and
    # the page lost its field buttons
    from starlette.testclient import TestClient

    from semsearch import web

    calls = []
    original = web.fields

    def slow_fields(index: Any) -> Any:
        calls.append(index)
        time.sleep(1)
        return original(index)

    monkeypatch.setattr(web, "fields", slow_fields)
    with TestClient(make_app(index_copy, timeout=0.5), raise_server_exceptions=False) as client:
        first = client.get("/fields")
        assert first.status_code == 200, first.text
        start = time.perf_counter()
        assert client.get("/fields").json() == first.json()
        assert time.perf_counter() - start < 0.5 and len(calls) == 1
        assert first.json()["examples"]  # the empty page's examples, from the index's text
        remove_source(index_copy, TARGET)  # a new generation: listed anew
        assert hit_sources(client) and TARGET not in client.get("/fields").json()["sources"]
        assert len(calls) == 2


def test_the_service_searches_faiss_on_one_thread(tiny_index: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """FAISS's OpenMP threads spin after each search while the encoder's threads want the same
    cores: in-process on the 2-core AMD EPYC a lone hybrid search spent 12.5-14.7 ms of CPU
    outside the encoder with them, 2.9-3.0 ms on one thread (stores/faiss.single_threaded)."""
    import faiss
    import uvicorn

    from semsearch import serve
    from semsearch.index import Index

    before = faiss.omp_get_max_threads()
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    monkeypatch.setattr(serve, "MAX_BATCH", 2)  # fewer shapes to prepare
    monkeypatch.setenv("SEMSEARCH_QUERY_PATH", "fp32")
    try:
        faiss.omp_set_num_threads(2)
        serve.run(Index.open(tiny_index), port=free_port())
        assert faiss.omp_get_max_threads() == 1
    finally:
        faiss.omp_set_num_threads(before)
