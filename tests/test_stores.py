"""One test suite for every storage backend: FAISS (a directory) and Milvus Lite (a file) must
behave the same through the `Store` protocol — search, BM25, filters, get, vectors by id, add,
remove, save and reopen, migrate either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from semsearch import stores
from semsearch.errors import UsageError
from semsearch.filters import parse
from semsearch.models.encoder import ModelInfo
from semsearch.passages import Passage
from semsearch.stores.base import Store

D = 8
TEXTS = ["夫妻党员抗疫在一线", "志愿者为老人送物资", "社区干部下沉值守", "医生护士连夜支援",
         "党员突击队搭建帐篷", "12345热线接听求助", "快递小哥免费配送", "教师线上授课不停学"]
MODEL = ModelInfo("synthetic", "f" * 64, D)


def _vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, D)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _passages(texts: list[str], source: str) -> list[Passage]:
    return [Passage(text, source, i, 0, len(text), metadata={"year": 2020 + i % 3})
            for i, text in enumerate(texts)]


@pytest.fixture(params=["faiss", "milvus"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / ("idx" if request.param == "faiss" else "idx.db"))


def _create(location: str) -> tuple[Store, np.ndarray]:
    vectors = _vectors(len(TEXTS), 1)
    store = stores.create(_passages(TEXTS, "a.txt"), vectors, MODEL, {"a.txt": "h1"}, location)
    store.save(location)
    return store, vectors


def test_search_get_and_vectors_by_id(location: str) -> None:
    store, vectors = _create(location)
    scores, ids = store.search(vectors[:3], 2)
    assert ids[:, 0].tolist() == [0, 1, 2]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(store.vectors(np.array([4, 2])), vectors[[4, 2]], atol=1e-6)
    found = store.get([5, 0])
    assert found[5].text == TEXTS[5] and found[0].metadata == {"year": 2020}
    assert sorted(pid for pid, _ in store.iter_passages()) == list(range(len(TEXTS)))
    assert store.has_lexical and not store.read_only
    assert str(len(TEXTS)) in store.describe() and "flat" in store.describe()
    assert location in store.location
    store.close()


def test_bm25_and_filters_agree(location: str) -> None:
    store, vectors = _create(location)
    _, ids = store.lexical_search(["党员"], 5)
    assert sorted(i for i in ids[0].tolist() if i >= 0) == [0, 4]
    where = parse("year == 2021 or paragraph == 0")
    _, ids = store.search(vectors[:1], 8, where)
    assert sorted(i for i in ids[0].tolist() if i >= 0) == [0, 1, 4, 7]
    _, ids = store.lexical_search(["党员"], 5, where)
    assert sorted(i for i in ids[0].tolist() if i >= 0) == [0, 4]
    _, ids = store.lexical_search(["党员"], 5, parse('source == "none.txt"'))
    assert (ids < 0).all()
    store.close()


def test_add_remove_save_and_reopen(location: str) -> None:
    store, _ = _create(location)
    store.add(_passages(["新来的志愿者"], "b.txt"), _vectors(1, 2), {"b.txt": "h2"})
    assert store.manifest.passage_count == len(TEXTS) + 1
    assert store.manifest.sources == {"a.txt": "h1", "b.txt": "h2"}
    store.save()
    store.close()
    reopened = stores.open_store(location, writable=True)
    assert reopened.manifest.passage_count == len(TEXTS) + 1
    assert reopened.get([len(TEXTS)])[len(TEXTS)].source == "b.txt"
    assert reopened.remove_sources(["a.txt"]) == len(TEXTS)
    reopened.save()
    reopened.close()
    final = stores.open_store(location)
    assert [p.source for _, p in final.iter_passages()] == ["b.txt"]
    assert final.manifest.sources == {"b.txt": "h2"}
    _, ids = final.lexical_search(["志愿者"], 3)
    assert ids[0].tolist()[0] == len(TEXTS)
    final.close()


def test_migrate_either_way_keeps_ids_and_vectors(tmp_path: Path) -> None:
    faiss_dir, lite, back = tmp_path / "f", str(tmp_path / "m.db"), tmp_path / "back"
    source, vectors = _create(str(faiss_dir))
    copy, report = stores.migrate(source, lite)
    assert report.copied == len(TEXTS)
    returned, _ = stores.migrate(copy, back)
    for store in (copy, returned):
        assert dict(store.iter_passages()) == dict(source.iter_passages())
        np.testing.assert_allclose(store.vectors(np.arange(len(TEXTS))), vectors, atol=1e-6)
        assert store.manifest.sources == source.manifest.sources
    with pytest.raises(UsageError, match="already holds an index"):
        stores.migrate(copy, back)
    copy.close()


def test_locations_name_their_backend(tmp_path: Path) -> None:
    assert stores.is_milvus("./x.db") and stores.is_milvus("http://host:19530")
    assert not stores.is_milvus(tmp_path / "idx")
    faiss_named_db = tmp_path / "odd.db"  # a FAISS index in a directory named like a Lite file
    _create(str(tmp_path / "idx"))
    (tmp_path / "idx").rename(faiss_named_db)
    assert not stores.is_milvus(faiss_named_db)
    with pytest.raises(UsageError, match="--collection is for a Milvus index"):
        stores.open_store(tmp_path / "idx", collection="c")


def test_hnsw_tombstones_are_compacted() -> None:
    """Removal from hnsw leaves tombstones; past COMPACT_AT of the nodes the graph is rebuilt
    without them (issue 13: `compact` was never called, so they grew without end)."""
    from semsearch.stores import faiss

    n = 200
    passages = [Passage(f"p{i}", f"s{i % 10}.txt", i, 0, 1) for i in range(n)]
    vectors = _vectors(n, 3)
    store = faiss.FaissStore.create(passages, vectors, MODEL, {f"s{i}.txt": "h" for i in range(10)},
                                    index_type="hnsw")
    store.remove_sources(["s0.txt"])  # 10%: kept as tombstones
    assert faiss.tombstones(store.faiss_index) == 20
    store.remove_sources(["s1.txt", "s2.txt"])  # 30% dead: rebuilt without them
    assert faiss.tombstones(store.faiss_index) == 0
    assert store.faiss_index.ntotal == n - 60
    _, ids = store.search(vectors[[99, 5]], 1)
    assert ids[:, 0].tolist() == [99, 5]


def test_milvus_create_inserts_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating a Milvus index builds no FAISS index and no bm25s index on the way (issue 13:
    it built both, then copied)."""
    from semsearch.lexical import LexicalIndex
    from semsearch.stores import faiss

    def unused(*args: object, **kwargs: object) -> None:
        raise AssertionError("not needed for Milvus")

    monkeypatch.setattr(LexicalIndex, "build", unused)
    monkeypatch.setattr(faiss, "build_index", unused)
    store, _ = _create(str(tmp_path / "direct.db"))
    assert store.manifest.passage_count == len(TEXTS)
    store.close()
