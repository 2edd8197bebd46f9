"""The Milvus backend on Milvus Lite: the same answers as FAISS, filters, writes that a crash
cannot half-apply, a resumable migration, and the CLI; a Milvus server when one is configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import semsearch
from semsearch.cli import app
from semsearch.errors import (
    BackendUnavailableError,
    IndexLoadError,
    ModelMismatchError,
    QueryError,
)
from semsearch.filters import parse
from semsearch.stores import DEFAULT_INDEX, milvus
from semsearch.stores.faiss import FaissStore

from .conftest import SEEDS

runner = CliRunner()
SOURCE = "002_b3706f758604a439.txt"


@pytest.fixture(scope="module")
def faiss_dir(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("milvus-src") / "idx"
    semsearch.build([SEEDS], model=str(tiny_model)).save(out)
    return out


def _rows(store: milvus.MilvusStore) -> dict[int, semsearch.Passage]:
    rows: dict[int, semsearch.Passage] = {}
    for pid, passage in store.iter_passages():
        assert pid not in rows, f"duplicate id {pid}"
        rows[pid] = passage
    return rows


def _assert_same(store: milvus.MilvusStore, source: FaissStore) -> None:
    """The collection holds exactly the source's passages and vectors, each once."""
    assert store.count(raw=True) == store.count() == len(source.passages)
    assert _rows(store) == source.passages
    ids = sorted(source.passages)
    np.testing.assert_array_equal(store.vectors(ids), source.vectors(np.array(ids)))
    assert store.manifest.sources == source.manifest.sources
    assert store.manifest.model == source.manifest.model


def test_uris_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(milvus.URI_ENV, raising=False)
    with pytest.raises(BackendUnavailableError, match="no Milvus URI"):
        milvus.resolve_uri(None)
    with pytest.raises(BackendUnavailableError, match="bad Milvus URI 'foo'"):
        milvus.resolve_uri("foo")
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        milvus.connect(tmp_path / "missing" / "x.db")
    with pytest.raises(BackendUnavailableError, match="is the server running"):
        milvus.connect("http://127.0.0.1:9", timeout=2)
    monkeypatch.setenv(milvus.URI_ENV, str(tmp_path / "env.db"))
    assert milvus.resolve_uri(None) == str(tmp_path / "env.db")
    assert milvus.resolve_uri("http://h:19530") == "http://h:19530"
    with pytest.raises(IndexLoadError, match="no collection 'nope'"):
        semsearch.connect(tmp_path / "env.db", collection="nope")


def test_filters_translate_to_milvus() -> None:
    """Metadata keys become JSON paths, core fields stay columns, booleans lower-case; the
    rendering comes from the parsed tree (tests/test_filters_milvus.py checks it keeps the
    same passages as Python on Milvus Lite)."""
    assert parse("paragraph > 2 and not flag == True").to_milvus() == \
        '(paragraph > 2 and not (exists metadata["flag"] and metadata["flag"] == true))'
    rendered = parse('source == "year" and year >= 2020').to_milvus()
    assert rendered == '(source == "year" and metadata["year"] >= 2020)'
    with pytest.raises(QueryError, match="bad filter"):
        parse("__import__('os')").to_milvus()


def test_build_search_filter_add_remove(tiny_model: Path, other_model: Path,
                                        tmp_path: Path) -> None:
    uri = str(tmp_path / "x.db")
    faiss_index = semsearch.build([SEEDS], model=str(tiny_model))
    index = semsearch.Index.build([SEEDS], model=str(tiny_model), location=uri)
    assert index.manifest.passage_count == len(faiss_index.passages)
    reopened = semsearch.connect(uri, model=str(tiny_model))
    assert [p for p in reopened.passages] == faiss_index.passages
    for mode in ("dense", "bm25", "hybrid"):
        where = f'source == "{SOURCE}" and paragraph > 10'
        hits = reopened.search("党员 志愿者 社区", k=8, mode=mode, where=where)  # type: ignore[arg-type]
        assert hits and all(h.source == SOURCE and h.paragraph > 10 for h in hits)
    dense_f = faiss_index.search("党员 志愿者 社区", k=10, mode="dense")
    dense_m = reopened.search("党员 志愿者 社区", k=10, mode="dense")
    assert [h.id for h in dense_m] == [h.id for h in dense_f]
    assert reopened.search("党员", where='source == "none.txt"') == []

    gone = reopened.remove(SOURCE)
    assert gone and reopened.manifest.passage_count == len(faiss_index.passages) - gone
    assert SOURCE not in reopened.manifest.sources
    assert all(h.source != SOURCE for h in reopened.search("党员", k=50, mode="dense"))
    report = reopened.add([SEEDS])
    assert report.added == [SOURCE] and report.passages == gone
    fresh = semsearch.connect(uri, model=str(tiny_model))
    assert fresh.manifest.passage_count == len(faiss_index.passages)
    assert fresh.store.count(raw=True) == len(faiss_index.passages)  # no stale rows
    with pytest.raises(ModelMismatchError, match="built with model"):
        semsearch.connect(uri, model=str(other_model))


def test_a_crashed_add_is_invisible_and_cleaned_up(tiny_model: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    uri = str(tmp_path / "crash.db")
    index = semsearch.Index.build([SEEDS / "000_0db68ecbc2c6cfcf.txt"], model=str(tiny_model),
                                  location=uri)
    before = index.manifest.passage_count

    def die(name: str) -> None:
        if name == "milvus-before-commit":
            raise RuntimeError("crash")

    monkeypatch.setattr(milvus, "failpoint", die)
    with pytest.raises(RuntimeError):
        index.add([SEEDS / "001_b0b1c2961d63c9fa.txt"])
    monkeypatch.undo()
    reader = semsearch.connect(uri, model=str(tiny_model))
    assert reader.store.count(raw=True) > reader.manifest.passage_count == before
    assert len(reader.passages) == before
    found = reader.search("党员", k=100, mode="bm25")
    assert found and all("000_" in h.source for h in found), [(h.id, h.source) for h in found]
    reader.add([SEEDS / "001_b0b1c2961d63c9fa.txt"])  # the next write cleans up, then adds
    assert reader.store.count(raw=True) == reader.store.count() == reader.manifest.passage_count
    assert len({p.source for p in reader.passages}) == 2


def test_migrate_resumes_after_sigkill(faiss_dir: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "m.db")
    env = {**os.environ, "SEMSEARCH_FAILPOINT": "migrate-batch-2"}
    killed = subprocess.run([sys.executable, "-m", "semsearch.cli", "migrate", "--from",
                             str(faiss_dir), "--to", uri, "--batch-size", "10"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    with pytest.raises(IndexLoadError, match="unfinished migration"):
        semsearch.connect(uri)
    source = FaissStore.load(faiss_dir, mmap=False)
    store, report = milvus.migrate(source, uri, batch_size=10)
    assert report.resumed == 20 and report.copied == len(source.passages) - 20
    _assert_same(store, source)
    again, report = milvus.migrate(source, uri)  # complete: nothing to do
    assert report.copied == 0 and again.count() == len(source.passages)
    with pytest.raises(Exception, match="holds another index"):
        milvus.migrate(FaissStore.load(DEFAULT_INDEX), uri)


def test_migrated_seeds_answer_like_faiss(real_model: Path, tmp_path: Path) -> None:
    """The done criterion: exact (FLAT) Milvus returns FAISS's top-5 for all 68 queries."""
    from semsearch import bench

    source = FaissStore.load(DEFAULT_INDEX, mmap=False)
    milvus.migrate(source, str(tmp_path / "seeds.db"))
    faiss_index = semsearch.load()
    on_milvus = semsearch.connect(tmp_path / "seeds.db")
    assert on_milvus.manifest.index_type == "flat"
    queries = [q.query for q in bench.load_qrels(bench.DEFAULT_QRELS)]
    assert len(queries) == 68
    a = faiss_index.search_batch(queries, 5, "dense")
    b = on_milvus.search_batch(queries, 5, "dense")
    assert [[h.id for h in hits] for hits in b] == [[h.id for h in hits] for hits in a]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose([h.score for h in y], [h.score for h in x], atol=1e-5)
    a = faiss_index.search_batch(queries, 5, "hybrid")
    b = on_milvus.search_batch(queries, 5, "hybrid")
    overlap = np.mean([len({h.id for h in x} & {h.id for h in y}) / max(len(x), 1)
                       for x, y in zip(a, b, strict=True)])
    assert overlap >= 0.95  # BM25 segments queries with full jieba on Milvus (see milvus.md)


def test_cli_on_milvus(tiny_model: Path, faiss_dir: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "cli.db")
    result = runner.invoke(app, ["index", str(SEEDS), "--out", uri,
                                 "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert "indexed" in result.stderr and "cli.db" in result.stderr
    result = runner.invoke(app, ["query", "夫妻党员抗疫", "--index", uri, "-k", "3", "--json",
                                 "--model", str(tiny_model), "--where", f'source == "{SOURCE}"'])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 3 and all(h["source"] == SOURCE for h in hits)
    result = runner.invoke(app, ["info", "--index", uri])
    assert result.exit_code == 0 and SOURCE in result.stdout
    result = runner.invoke(app, ["remove", "--source", SOURCE, "--index", uri])
    assert result.exit_code == 0 and "removed" in result.stderr
    result = runner.invoke(app, ["migrate", "--from", str(faiss_dir), "--to", uri,
                                 "--collection", "copy"])
    assert result.exit_code == 0 and "migrated" in result.stderr, result.output
    for args, needle in (
        (["query", "x", "--index", "ftp://nowhere"], "bad Milvus URI"),
        (["query", "x", "--index", uri, "--collection", "nope"], "no collection 'nope'"),
        (["query", "x", "--index", "http://127.0.0.1:9"], "cannot connect to Milvus"),
        (["query", "x", "--index", uri, "--model",
          str(SEEDS.parent / "missing")], "model"),
        (["migrate", "--from", str(faiss_dir), "--to", uri], "holds another index"),
        (["index", str(SEEDS), str(SEEDS)], "give --out NAME"),
    ):
        result = runner.invoke(app, args)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1, (args, result.output)
        assert lines[0].startswith("error:") and needle in lines[0], lines[0]


SERVER = os.environ.get(milvus.URI_ENV, "")


@pytest.mark.skipif(not SERVER.startswith(("http://", "https://")),
                    reason=f"no Milvus server: set {milvus.URI_ENV}=http://host:19530 to run")
def test_on_a_milvus_server(faiss_dir: Path) -> None:
    collection = f"semsearch_test_{uuid.uuid4().hex[:8]}"
    source = FaissStore.load(faiss_dir, mmap=False)
    store, _ = milvus.migrate(source, SERVER, collection)
    try:
        _assert_same(store, source)
        vectors = source.vectors(np.arange(5))
        _, ids = source.search(vectors, 10)
        _, m_ids = store.search(vectors, 10)
        np.testing.assert_array_equal(m_ids[:, :5], ids[:, :5])
        _, lexical = store.lexical_search(["党员 志愿者"], 5, parse(f'source == "{SOURCE}"'))
        assert (lexical[0] >= 0).any()
    finally:
        store.client.drop_collection(collection)


def test_page_filter_on_milvus_matches_any_page_a_passage_spans(tiny_model: Path,
                                                                 tmp_path: Path) -> None:
    """Before: on Milvus `page == 2` meant the first page, missing a passage that crosses from
    page 1 into page 2 (FAISS matched it)."""
    from .test_documents import _pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    pages = ["Volunteers delivered food", "to families in quarantine.", "Masks arrived later on."]
    (docs / "r.pdf").write_bytes(_pdf(pages))
    found = {}
    for name, out in (("faiss", str(tmp_path / "idx")), ("milvus", str(tmp_path / "m.db"))):
        result = runner.invoke(app, ["index", str(docs), "--out", out, "--model", str(tiny_model)])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["query", "families", "--index", out, "--json", "--model",
                                     str(tiny_model), "--where", "page == 2", "-k", "5"])
        assert result.exit_code == 0, result.output
        found[name] = [(h["text"], h["metadata"]["page"], h["metadata"]["page_end"])
                       for h in json.loads(result.stdout)["hits"]]
    assert any("families" in text and first == 1 for text, first, _ in found["milvus"])
    assert found["milvus"] == found["faiss"]


def test_numbers_meet_in_milvus_bm25_as_in_faiss(tiny_model: Path, tmp_path: Path) -> None:
    """Milvus analyses BM25 on the server: it is given the numbers' values as words too, so an
    English `150,000` finds a Chinese `15万` there as on FAISS (before: no BM25 hit at all)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("通城电建为抗疫捐款15万元。\n\n社区志愿者为居民配送生活物资。",
                                encoding="utf-8")
    (docs / "b.txt").write_text("6600万年前发生了白垩纪灭绝事件。", encoding="utf-8")
    for location in (str(tmp_path / "idx"), str(tmp_path / "m.db")):
        index = semsearch.Index.build([docs], model=str(tiny_model), location=location)
        for query, expected in (("who donated 150,000 yuan", "15万元"),
                                ("What happened 66 million years ago?", "6600万年前")):
            hits = index.search(query, k=3, mode="bm25")
            assert hits and expected in hits[0].text, (location, query, hits)
