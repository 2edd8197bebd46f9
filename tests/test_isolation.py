"""Issue 39, the serving half: a request's cost class counts what it will do, batches isolate
their members (own deadlines, slow members split out, fair per client), no SIGBUS from a
memory-mapped file truncated underneath, and `/health` that notices a damaged manifest or a
swapped generation at once. Each test failed before its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import REPO, synthetic_store

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
