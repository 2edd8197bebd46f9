"""Issue 39, the serving half: a request's cost class counts what it will do, batches isolate
their members (own deadlines, slow members split out, fair per client), no SIGBUS from a
memory-mapped file truncated underneath, and `/health` that notices a damaged manifest or a
swapped generation at once. Each test failed before its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import REPO, make_app, synthetic_store

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
