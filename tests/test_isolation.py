"""Issue 39, the serving half: a request's cost class counts what it will do, batches isolate
their members (own deadlines, slow members split out, fair per client), no SIGBUS from a
memory-mapped file truncated underneath, and `/health` that notices a damaged manifest or a
swapped generation at once. Each test failed before its fix."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import REPO, make_app, serving, synthetic_store

# --- no SIGBUS whatever the size ------------------------------------------------------------

MAPPED_SCRIPT = """
import sys
import numpy as np
from semsearch.stores import faiss
faiss.MMAP_ABOVE = 4096  # the limit, lowered: the vectors and BM25 weights are "large"
store = faiss.FaissStore.load(sys.argv[1])
assert faiss.is_read_only(store.faiss_index), "not mapped: the test would prove nothing"
assert isinstance(store.lexical.data, np.memmap)
queries = np.random.default_rng(0).normal(size=(8, 384)).astype(np.float32)
words = ["passage 17", "passage 1999"]
before = store.search(queries, 10), store.lexical_search(words, 5)
print("ready", flush=True)
sys.stdin.readline()  # the parent truncates the vectors and BM25 files now
for _ in range(20):
    after = store.search(queries, 10), store.lexical_search(words, 5)
    for (scores, ids), (was_scores, was_ids) in zip(after, before):
        assert (ids == was_ids).all() and np.allclose(scores, was_scores)
print("same answers", flush=True)
"""


def test_truncating_a_mapped_vectors_file_cannot_kill_the_process(tmp_path: Path) -> None:
    # before: SIGBUS (exit -7): a vectors file above MMAP_ABOVE was mapped in place
    store, _ = synthetic_store("flat", 2000, 4, d=384)
    store.save(tmp_path / "index")
    vectors = next((tmp_path / "index").glob("gen-*")) / "vectors.faiss"
    assert vectors.stat().st_size > 1 << 20
    child = subprocess.Popen([sys.executable, "-c", MAPPED_SCRIPT, str(tmp_path / "index")],
                             cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
    for name in ("vectors.faiss", "bm25/data.csc.index.npy", "bm25/indices.csc.index.npy"):
        with open(vectors.parent / name, "r+b") as handle:
            handle.truncate(0)
    child.stdin.write("go\n")
    child.stdin.flush()
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, (child.returncode, err[-500:])
    assert "same answers" in out


# --- /health reflects a damaged manifest and a swapped generation at once -------------------

def test_a_truncated_manifest_turns_health_red(index_copy: Path) -> None:
    # before: /health said "ok" (and /search answered) with manifest.json cut to 100 bytes
    from starlette.testclient import TestClient

    manifest = next(index_copy.glob("gen-*")) / "manifest.json"
    good = manifest.read_bytes()
    with TestClient(make_app(index_copy), raise_server_exceptions=False) as client:
        assert client.get("/health").json()["status"] == "ok"
        manifest.write_bytes(good[:100])
        health = client.get("/health").json()
        assert health["status"] == "unavailable" and "manifest.json" in health["error"]
        response = client.post("/search", json={"query": "抗疫"})
        assert response.status_code == 503 and "manifest.json" in response.json()["error"]
        manifest.write_bytes(good)  # restored: served again
        assert client.get("/health").json()["status"] == "ok"
        assert client.post("/search", json={"query": "抗疫"}).status_code == 200


def test_the_first_health_after_a_rebuild_shows_the_new_generation(index_copy: Path,
                                                                   tiny_model: Path) -> None:
    # before: the first /health after `index --force` said "reloading" (or "unavailable")
    # while /search already answered from the new generation
    from starlette.testclient import TestClient

    import semsearch

    from .conftest import SEEDS

    with TestClient(make_app(index_copy), raise_server_exceptions=False) as client:
        first = client.get("/health").json()
        for _ in range(2):  # what `semsearch index --force` does: a whole new generation
            semsearch.build([SEEDS], model=str(tiny_model)).save(index_copy)
            health = client.get("/health").json()
            assert health["status"] == "ok", health
            assert health["generation"] == health["live_generation"] > first["generation"]
            assert client.post("/search", json={"query": "抗疫"}).status_code == 200


# --- columns built at load, not on the first filtered request ------------------------------

def record_column_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every column a store builds from now on, by name."""
    from semsearch.columns import Columns

    built: list[str] = []
    original = Columns._build

    def recorded(self: Columns, name: str) -> Any:
        built.append(name)
        return original(self, name)

    monkeypatch.setattr(Columns, "_build", recorded)
    return built


def test_a_fresh_service_builds_its_columns_at_load_not_on_the_first_filter(
        index_copy: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> None:
    # before: the first filter after a load built the columns on its request's path (1.2 s at
    # 101k passages), and again for the first filter after a new generation was loaded
    from starlette.testclient import TestClient

    import semsearch

    from .conftest import SEEDS

    app = make_app(index_copy)
    built = record_column_builds(monkeypatch)
    with TestClient(app, raise_server_exceptions=False) as client:
        for where in ('source like "%.txt"', "paragraph > 1 and start >= 0",
                      'text like "%抗疫%" or heading == "x"'):
            response = client.post("/search", json={"query": "抗疫", "where": where})
            assert response.status_code == 200 and response.json()["hits"], response.json()
        assert built == [], f"built on the request path: {built}"
        semsearch.build([SEEDS], model=str(tiny_model)).save(index_copy)  # a new generation
        assert client.get("/health").json()["status"] == "ok"  # loads it (in the background)
        loaded = list(built)
        assert {"text", "source", "paragraph"} <= set(loaded)  # built at its load
        response = client.post("/search", json={"query": "抗疫", "where": 'text like "%疫%"'})
        assert response.status_code == 200 and response.json()["hits"]
        assert built == loaded, f"built on the request path: {built[len(loaded):]}"


def test_health_reports_the_load_of_the_two_pools_that_search(index_copy: Path) -> None:
    # the page's pool of its own, idle since the page posts to /search, is gone from /health
    from starlette.testclient import TestClient

    with TestClient(make_app(index_copy), raise_server_exceptions=False) as client:
        health = client.get("/health").json()
    assert set(health["load"]) == {"ordinary", "expensive"}
    for pool in health["load"].values():
        assert set(pool) == {"workers", "busy", "waiting"} and pool["workers"] >= 1
    assert health["workers_busy"] == 0 and health["saturated"] is False


# --- cost from what a request will do -------------------------------------------------------

HEAVY = {"query": ("志愿者在社区报告了疫情防控的工作进展 " * 60)[:990], "k": 100, "context": 5,
         "highlight": True}


def test_the_cost_class_counts_query_k_context_highlight_and_the_filter() -> None:
    from semsearch.cost import estimate
    from semsearch.filters import compile_filter

    assert estimate("报告 report", 5, 0, False).cheap
    assert estimate("报告 report", 100, 0, False).cheap
    assert not estimate(HEAVY["query"], 5, 0, False).cheap  # 990 characters
    assert not estimate("报告 report", 1000, 5, False).cheap  # k and context
    assert not estimate("报告" * 100, 100, 5, True).cheap  # highlighting 1,100 passages
    where = compile_filter('text like "%0001234%" or paragraph > 1234')
    unseen = estimate("报告", 5, 0, False, filter_cost=where.cost, passages=101_041, cached=False)
    assert not unseen.cheap and unseen.filter > 1.0  # measured: 2.36 s over 100k passages
    assert estimate("报告", 5, 0, False, filter_cost=where.cost, passages=101_041).cheap
    assert estimate("报告", 5, 0, False, filter_cost=where.cost, passages=62, cached=False).cheap


def test_a_heavy_request_does_not_hold_up_the_batch(index_copy: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # before: a 990-character query with k 100, context 5 and highlight counted as cheap and
    # shared the batch: the others waited for its highlighting (0.084 → 0.445 s p50)
    from semsearch import serve

    original = serve.annotate

    def slow_annotate(words: Any, found: Any) -> Any:
        time.sleep(1.5)  # highlighting 1,100 passages for 990 characters, exaggerated
        return original(words, found)

    monkeypatch.setattr(serve, "annotate", slow_annotate)
    app = make_app(index_copy, timeout=10)
    with serving(app) as (url, _), ThreadPoolExecutor(8) as pool:
        httpx.post(f"{url}/search", json={"query": "抗疫"}, timeout=20)  # warm
        for _ in range(2):
            heavy = pool.submit(httpx.post, f"{url}/search", json=HEAVY, timeout=20)
            time.sleep(0.05)
            ordinary = [pool.submit(httpx.post, f"{url}/search", json={"query": f"抗疫 {n}"},
                                    timeout=20) for n in range(6)]
            for answer in ordinary:
                response = answer.result()
                assert response.status_code == 200
                assert response.elapsed.total_seconds() < 1.0, response.elapsed
            assert heavy.result().status_code == 200


def slow_filters(monkeypatch: pytest.MonkeyPatch, per_passage: float) -> None:
    """Make every filter evaluation cost `per_passage` seconds a passage, and say so to the
    cost estimate (as a store 1,000× larger would)."""
    from semsearch import cost
    from semsearch.columns import Columns
    from semsearch.filters import Filter

    original = Columns.keep

    def slow(self: Columns, where: Filter) -> Any:  # the store evaluates filters as columns
        time.sleep(per_passage * self.size)
        return original(self, where)

    monkeypatch.setattr(Columns, "keep", slow)
    monkeypatch.setattr(cost, "FILTER_UNIT", per_passage / 5)


def test_unseen_filters_arriving_together_leave_the_ordinary_request_fast(
        index_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: 31 unseen filters shared the batch with the ordinary request, which waited for
    # all of them to be evaluated (504 after 10 s on 101k passages)
    slow_filters(monkeypatch, 0.004)  # 62 passages: 0.25 s an unseen filter
    app = make_app(index_copy, timeout=5)
    with serving(app) as (url, _), ThreadPoolExecutor(32) as pool:
        httpx.post(f"{url}/search", json={"query": "抗疫"}, timeout=20)  # warm
        for round_ in range(2):
            attacks = [pool.submit(httpx.post, f"{url}/search", timeout=20, json={
                "query": "report 报告", "where": f"paragraph > {round_ * 100 + n}"})
                for n in range(31)]
            ordinary = httpx.post(f"{url}/search", json={"query": "抗疫"}, timeout=20)
            assert ordinary.status_code == 200 and ordinary.json()["hits"]
            assert ordinary.elapsed.total_seconds() < 1.0, ordinary.elapsed
            statuses = [a.result() for a in attacks]
            assert {r.status_code for r in statuses} <= {200, 503}
            refused = [r for r in statuses if r.status_code == 503]
            assert refused and all(r.headers["retry-after"] for r in refused)
            assert all("busy" in r.json()["error"] or "client" in r.json()["error"]
                       for r in refused)


# --- fair admission per client --------------------------------------------------------------

def test_a_client_with_many_waiting_searches_waits_behind_the_others() -> None:
    # before: first come first served: a client that queued 10 searches took the next batches
    import threading

    from semsearch.batching import Batcher

    gate = threading.Event()
    batches: list[list[str]] = []

    def run(items: list[str]) -> list[str]:
        gate.wait(10)
        batches.append(items)
        return items

    batcher: Batcher[str] = Batcher(run, max_batch=2, backlog=32)
    first = batcher.submit("warm", key="x")
    time.sleep(0.1)  # the runner holds "warm"; the rest queue
    futures = [batcher.submit(f"a{n}", key="10.0.0.1") for n in range(10)]
    futures.append(batcher.submit("b0", key="10.0.0.2"))
    gate.set()
    for future in [first, *futures]:
        future.result(10)
    assert batches[1] == ["a0", "b0"], batches
    batcher.shutdown()


def test_one_client_cannot_fill_the_backlog() -> None:
    # before: one client's requests could take every waiting slot: everyone else got 503
    import threading

    from semsearch.batching import Batcher
    from semsearch.serve import Busy, WorkerPool

    gate = threading.Event()
    batcher: Batcher[int] = Batcher(lambda items: (gate.wait(10), items)[1], backlog=8,
                                    busy=Busy)
    pool = WorkerPool(1, backlog=4)
    batcher.submit(0, key="a")
    pool.submit(lambda: gate.wait(10), key="a")
    time.sleep(0.1)
    for n in range(4):
        batcher.submit(n, key="a")
    with pytest.raises(Busy, match="this client"):
        batcher.submit(5, key="a")
    batcher.submit(6, key="b").cancel()  # another client still gets in
    order: list[str] = []
    for name in ("a1", "a2"):
        pool.submit(lambda name=name: order.append(name), key="a")
    with pytest.raises(Busy, match="this client"):
        pool.submit(lambda: None, key="a")
    done = pool.submit(lambda: order.append("b1"), key="b")
    gate.set()
    done.result(10)
    assert order[0] == "a1" and order[1] == "b1", order  # b waits behind a's first, not all
    batcher.shutdown()
    pool.shutdown()
