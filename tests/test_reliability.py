"""Incremental updates, crash safety, a full disk, the writer lock, and concurrent readers.

Writers run as real `semsearch` processes (tiny model, ONNX path) so that they can be killed
with SIGKILL at named points (SEMSEARCH_FAILPOINT) or starved of disk (RLIMIT_FSIZE).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import semsearch
from semsearch.errors import IndexLoadError, IndexLockedError, QueryError
from semsearch.lexical import LexicalIndex
from semsearch.stores import base
from semsearch.stores.generations import live_dir, writer_lock

from .conftest import REPO, SEEDS, synthetic_store

QUERIES = ["夫妻党员抗疫", "志愿者送物资", "12345热线", "下沉干部"]
NEW_TEXT = "爱心企业向社区捐赠了三千只口罩和两百箱消毒液，志愿者连夜分发到居民手中。\n"


def run_cli(*args: str, env: dict[str, str] | None = None, **kwargs: object
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "semsearch.cli", *args], cwd=REPO, text=True,
                          capture_output=True, env={**os.environ, **(env or {})}, check=False,
                          **kwargs)  # type: ignore[call-overload]


def answers(index_dir: Path) -> list[list[tuple[int, str]]]:
    index = semsearch.load(index_dir)
    return [[(h.id, h.text) for h in hits] for hits in index.search_batch(QUERIES, k=5)]


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("000_0db68ecbc2c6cfcf.txt", "001_b0b1c2961d63c9fa.txt"):
        shutil.copy(SEEDS / name, docs / name)
    return docs


@pytest.fixture()
def index_dir(corpus: Path, tiny_model: Path, tmp_path: Path) -> Path:
    out = tmp_path / "index"
    semsearch.build([corpus], model=str(tiny_model)).save(out)
    return out


def test_add_new_changed_and_unchanged_files(corpus: Path, index_dir: Path) -> None:
    before = semsearch.load(index_dir)
    kept_ids = {pid for pid, p in before.store.passages.items() if p.source.startswith("000")}
    (corpus / "new.txt").write_text(NEW_TEXT, encoding="utf-8")
    changed = corpus / "001_b0b1c2961d63c9fa.txt"
    changed.write_text(changed.read_text("utf-8") + "\n\n" + NEW_TEXT.replace("口罩", "手套"),
                       encoding="utf-8")
    index = semsearch.load(index_dir, writable=True)
    report = index.add([corpus])
    assert (report.added, report.replaced, report.unchanged) == (
        ["new.txt"], ["001_b0b1c2961d63c9fa.txt"], ["000_0db68ecbc2c6cfcf.txt"])
    index.save(index_dir)
    after = semsearch.load(index_dir)
    assert {pid for pid, p in after.store.passages.items() if p.source.startswith("000")} == \
        kept_ids  # unchanged files keep their passages and ids (not re-encoded)
    assert any("手套" in p.text for p in after.passages)
    assert after.manifest.sources.keys() == {"000_0db68ecbc2c6cfcf.txt",
                                             "001_b0b1c2961d63c9fa.txt", "new.txt"}
    top = after.search("捐赠口罩 消毒液", k=1, mode="bm25")[0]
    assert top.source == "new.txt"
    # the lexical index is the one a fresh build over the same passages would have
    fresh = LexicalIndex.build([p.lexical_text for p in after.store.passages.values()],
                               np.array(list(after.store.passages)))
    assert after.store.lexical is not None
    for query in QUERIES:
        np.testing.assert_array_equal(after.store.lexical.search([query], 10)[1],
                                      fresh.search([query], 10)[1])


def test_remove_source_everywhere(index_dir: Path) -> None:
    index = semsearch.load(index_dir, writable=True)
    removed = index.remove("001_b0b1c2961d63c9fa.txt")
    assert removed > 0
    index.save(index_dir)
    after = semsearch.load(index_dir)
    for mode in ("dense", "bm25", "hybrid"):
        for hits in after.search_batch(QUERIES, k=50, mode=mode):  # type: ignore[arg-type]
            assert all(h.source == "000_0db68ecbc2c6cfcf.txt" for h in hits)
    with pytest.raises(QueryError, match="no source"):
        after.remove("nope.txt")


@pytest.mark.parametrize("kind", base.INDEX_TYPES)
def test_removal_works_for_every_index_type(kind: str) -> None:
    n = 1200
    store, vectors = synthetic_store(kind, n, sources=3)
    store.remove_sources(["s1.txt"])
    _, ids = store.search(vectors[:50], 20)
    live = ids[ids >= 0]
    assert len(live) and all(store.passages[int(i)].source != "s1.txt" for i in live)
    assert store.manifest.passage_count == len(store.passages) == n - n // 3


@pytest.mark.parametrize("point", ["before-vectors", "after-vectors", "after-passages",
                                   "before-rename", "before-current"])
def test_killed_writer_leaves_the_previous_index(corpus: Path, index_dir: Path,
                                                 point: str) -> None:
    before = answers(index_dir)
    (corpus / "new.txt").write_text(NEW_TEXT, encoding="utf-8")
    result = run_cli("add", str(corpus), "--index", str(index_dir),
                     env={"SEMSEARCH_FAILPOINT": point})
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert answers(index_dir) == before
    # the next writer cleans up and succeeds
    result = run_cli("add", str(corpus), "--index", str(index_dir))
    assert result.returncode == 0, result.stderr
    assert semsearch.load(index_dir).manifest.sources.keys() >= {"new.txt"}
    leftovers = [p.name for p in index_dir.iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def test_killed_after_the_swap_shows_the_new_index(corpus: Path, index_dir: Path) -> None:
    (corpus / "new.txt").write_text(NEW_TEXT, encoding="utf-8")
    result = run_cli("add", str(corpus), "--index", str(index_dir),
                     env={"SEMSEARCH_FAILPOINT": "after-current"})
    assert result.returncode == -signal.SIGKILL
    assert "new.txt" in semsearch.load(index_dir).manifest.sources


def test_killed_first_build_leaves_no_index(corpus: Path, tmp_path: Path,
                                           tiny_model: Path) -> None:
    out = tmp_path / "fresh"
    result = run_cli("index", str(corpus), "--out", str(out), "--model", str(tiny_model),
                     env={"SEMSEARCH_FAILPOINT": "after-passages"})
    assert result.returncode == -signal.SIGKILL
    with pytest.raises(IndexLoadError, match="not a semsearch index"):
        semsearch.load(out)
    assert run_cli("index", str(corpus), "--out", str(out), "--model",
                   str(tiny_model)).returncode == 0
    assert semsearch.load(out).manifest.passage_count > 0


def test_every_file_truncated_or_corrupted_is_named(index_dir: Path, tmp_path: Path) -> None:
    live = live_dir(index_dir)
    files = [p for p in live.rglob("*") if p.is_file()]
    assert len(files) >= 8
    for file in files:
        for damage in ("truncate", "flip"):
            copy = tmp_path / f"copy-{damage}"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(index_dir, copy)
            target = live_dir(copy) / file.relative_to(live)
            data = bytearray(target.read_bytes())
            if damage == "truncate":
                data = data[: len(data) // 2]
            else:
                data[len(data) // 2] ^= 0x55
            target.write_bytes(bytes(data))
            with pytest.raises(IndexLoadError) as caught:
                semsearch.load(copy)
            named = file.name if file.name != "manifest.json" else "manifest"
            assert named in str(caught.value), (file, damage, caught.value)


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of dying
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_full_disk_fails_cleanly_and_keeps_the_index(corpus: Path, index_dir: Path) -> None:
    before = answers(index_dir)
    listing = sorted(p.name for p in index_dir.iterdir())
    (corpus / "new.txt").write_text(NEW_TEXT, encoding="utf-8")
    result = run_cli("add", str(corpus), "--index", str(index_dir),
                     preexec_fn=_limit_file_size)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "could not write the index" in lines[0], result.stderr
    assert "previous index is unchanged" in lines[0]
    assert answers(index_dir) == before
    assert sorted(p.name for p in index_dir.iterdir()) == listing


def _tiny_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000, 2_000))  # smaller than vectors.faiss


def test_faiss_write_error_is_one_red_line(corpus: Path, index_dir: Path) -> None:
    """Before: a 75-line traceback ending in FAISS's RuntimeError (File too large)."""
    before = answers(index_dir)
    listing = sorted(p.name for p in index_dir.iterdir())
    (corpus / "new.txt").write_text(NEW_TEXT, encoding="utf-8")
    result = run_cli("add", str(corpus), "--index", str(index_dir), preexec_fn=_tiny_file_limit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "could not write the index" in lines[0] and "File too large" in lines[0]
    assert answers(index_dir) == before
    assert sorted(p.name for p in index_dir.iterdir()) == listing


def test_first_index_onto_a_full_disk_leaves_nothing(corpus: Path, tiny_model: Path,
                                                     tmp_path: Path) -> None:
    """Before: a traceback, and a directory holding only `.lock`."""
    out = tmp_path / "new-index"
    result = run_cli("index", str(corpus), "--out", str(out), "--model", str(tiny_model),
                     preexec_fn=_tiny_file_limit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "could not write the index" in lines[0]
    assert not out.exists()


def test_second_writer_is_refused_with_a_clear_message(corpus: Path, index_dir: Path) -> None:
    with writer_lock(index_dir):
        result = run_cli("add", str(corpus), "--index", str(index_dir))
        assert result.returncode == 1
        assert "is being written by semsearch pid" in result.stderr
        assert "Traceback" not in result.stderr
        index = semsearch.load(index_dir)
        # the same process may write (the lock is re-entrant), another may not
        index.save(index_dir)
    with pytest.raises(IndexLockedError):
        holder = subprocess.Popen([sys.executable, "-c", (
            "import fcntl, time\n"
            f"h = open({str(index_dir / '.lock')!r}, 'a+'); fcntl.flock(h, fcntl.LOCK_EX)\n"
            "print('held', flush=True); time.sleep(30)")], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            with writer_lock(index_dir):
                pass
        finally:
            holder.kill()
            holder.wait()


READER = """
import json, sys, time, semsearch
deadline = time.time() + float(sys.argv[2])
seen = []
while time.time() < deadline:
    try:
        index = semsearch.load(sys.argv[1])
        hits = index.search("爱心企业捐赠口罩", k=3, mode="bm25")
        seen.append([index.manifest.passage_count, len(index.passages), hits[0].source])
    except Exception as exc:
        seen.append(["error", type(exc).__name__, str(exc)])
print(json.dumps(seen))
"""


@pytest.mark.slow  # > 10 s on 2 CPUs: `make test-all`
def test_readers_never_see_a_partial_write(corpus: Path, index_dir: Path) -> None:
    base = semsearch.load(index_dir).manifest.passage_count
    extra = corpus.parent / "extra"
    extra.mkdir()
    (extra / "new.txt").write_text(NEW_TEXT, encoding="utf-8")
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(index_dir), "12"],
                                cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    time.sleep(1.0)
    for _ in range(4):
        assert run_cli("add", str(extra), "--index", str(index_dir)).returncode == 0
        # outside the index's root, a source is named by its absolute path
        assert run_cli("remove", "--source", (extra / "new.txt").absolute().as_posix(), "--index",
                       str(index_dir)).returncode == 0
    outputs = [json.loads(r.communicate(timeout=60)[0]) for r in readers]
    states = {tuple(x) for out in outputs for x in out}
    assert not [s for s in states if s[0] == "error"], states
    counts = {s[0] for s in states}
    assert counts <= {base, base + 1} and all(s[0] == s[1] for s in states)
    assert sum(len(out) for out in outputs) >= 6


def test_killed_build_resumes_to_the_same_index(corpus: Path, tiny_model: Path,
                                                tmp_path: Path) -> None:
    """A build killed after two chunks are encoded resumes from them, and the result equals an
    uninterrupted build (issue 15: a kill in hour 9 lost everything)."""
    from .test_index import vectors

    env = {"SEMSEARCH_CHECKPOINT_EVERY": "8"}
    out, whole = tmp_path / "resumed", tmp_path / "whole"
    killed = run_cli("index", str(corpus), "--out", str(out), "--model", str(tiny_model),
                     env={**env, "SEMSEARCH_FAILPOINT": "after-chunk-000001"})
    assert killed.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (out / ".checkpoint").iterdir()) == [
        "chunk-000000.npy", "chunk-000001.npy", "meta.json"]
    resumed = run_cli("index", str(corpus), "--out", str(out), "--model", str(tiny_model),
                      env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed: 16 passages were already encoded" in " ".join(resumed.stderr.split())
    assert not (out / ".checkpoint").exists()
    assert run_cli("index", str(corpus), "--out", str(whole), "--model", str(tiny_model),
                   env=env).returncode == 0
    a, b = semsearch.load(out), semsearch.load(whole)
    assert a.passages == b.passages
    np.testing.assert_array_equal(vectors(a), vectors(b))


def test_killed_sentence_build_resumes_to_the_same_index(corpus: Path, tiny_model: Path,
                                                         tmp_path: Path) -> None:
    """Granularity "sentence" encodes passages, then sentences, in one checkpointed run: killed
    after 4 chunks of 12 of its 76 texts (44 passages, then 32 sentences: the last chunk kept
    holds both), it resumes to the index an uninterrupted build makes — passage and sentence
    vectors, each sentence's passage and offsets, and the hits with their best sentences
    (issue 35: "kill-and-resume still equal")."""
    from .test_index import vectors

    env = {"SEMSEARCH_CHECKPOINT_EVERY": "12"}
    args = ["--model", str(tiny_model), "--granularity", "sentence"]
    out, whole = tmp_path / "resumed", tmp_path / "whole"
    killed = run_cli("index", str(corpus), "--out", str(out), *args,
                     env={**env, "SEMSEARCH_FAILPOINT": "after-chunk-000003"})
    assert killed.returncode == -signal.SIGKILL
    assert len(list((out / ".checkpoint").glob("chunk-*.npy"))) == 4
    resumed = run_cli("index", str(corpus), "--out", str(out), *args, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed:" in resumed.stderr and not (out / ".checkpoint").exists()
    assert run_cli("index", str(corpus), "--out", str(whole), *args,
                   env=env).returncode == 0
    a, b = semsearch.load(out), semsearch.load(whole)
    assert a.manifest.granularity == b.manifest.granularity == "sentence"
    assert a.passages == b.passages
    np.testing.assert_array_equal(vectors(a), vectors(b))
    ours, theirs = a.store.sentences, b.store.sentences  # type: ignore[attr-defined]
    assert len(a.passages) < 4 * 12 < len(a.passages) + len(ours)  # killed among the sentences
    np.testing.assert_array_equal(ours.rows, theirs.rows)
    np.testing.assert_array_equal(ours.index.reconstruct_n(0, len(ours)),
                                  theirs.index.reconstruct_n(0, len(theirs)))
    for mode in ("dense", "hybrid"):
        found = [a.search_batch(QUERIES, k=5, mode=mode), b.search_batch(QUERIES, k=5, mode=mode)]
        assert [[h.to_dict() for h in hits] for hits in found[0]] == \
            [[h.to_dict() for h in hits] for hits in found[1]]
        assert any(h.best_sentence is not None for hits in found[0] for h in hits)
