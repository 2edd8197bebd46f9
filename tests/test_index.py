"""Index build / save / load round trip, manifest checks, and search behaviour (tiny model)."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import semsearch
from semsearch.errors import IndexLoadError, IndexWriteError, ModelMismatchError, QueryError
from semsearch.stores.generations import live_dir

from .conftest import SEEDS, rewrite_manifest


@pytest.fixture(scope="module")
def built(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "seeds"
    semsearch.build([SEEDS], model=str(tiny_model)).save(out)
    return out


def test_round_trip_keeps_passages_vectors_and_manifest(built: Path, tiny_model: Path) -> None:
    fresh = semsearch.build([SEEDS], model=str(tiny_model))
    loaded = semsearch.load(built)
    assert loaded.passages == fresh.passages
    assert loaded.manifest.model == fresh.manifest.model
    assert loaded.manifest.corpus_fingerprint == fresh.manifest.corpus_fingerprint
    n = loaded.store.faiss_index.ntotal
    assert n == len(loaded.passages) == loaded.manifest.passage_count
    np.testing.assert_allclose(vectors(loaded), vectors(fresh), atol=1e-6)
    data = json.loads((live_dir(built) / "manifest.json").read_text("utf-8"))
    assert {"format_version", "model", "metric", "passage_count", "corpus_fingerprint",
            "created_at", "files"} <= set(data)
    assert data["model"]["dimension"] == 32 and data["model"]["fingerprint"]


def vectors(index: semsearch.Index) -> np.ndarray:
    """All vectors, in passage-id order."""
    store = index.store.faiss_index
    return np.stack([store.reconstruct(pid) for pid in sorted(index.store.passages)])


def test_search_returns_ranked_unique_hits(built: Path) -> None:
    index = semsearch.load(built)
    hits = index.search("夫妻党员抗疫", k=8)
    assert [h.rank for h in hits] == list(range(1, 9))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert len({h.text for h in hits}) == len(hits)
    batch = index.search_batch(["夫妻党员抗疫", "志愿者送物资"], k=3)
    assert [h.text for h in batch[0]] == [h.text for h in hits[:3]]


def test_k_larger_than_index_returns_everything(built: Path) -> None:
    index = semsearch.load(built)
    assert len(index.search("抗疫", k=10_000)) == len(index.passages)


@pytest.mark.parametrize("bad", ["", "   ", "\x00\x01"])
def test_blank_query_is_refused(built: Path, bad: str) -> None:
    with pytest.raises(QueryError):
        semsearch.load(built).search(bad)


@pytest.mark.parametrize("k", [0, -3])
def test_k_below_one_is_refused(built: Path, k: int) -> None:
    with pytest.raises(QueryError, match="k must be"):
        semsearch.load(built).search("抗疫", k=k)


def test_model_with_other_dimension_is_refused(built: Path, other_model: Path) -> None:
    with pytest.raises(ModelMismatchError, match="built with model"):
        semsearch.load(built, model=str(other_model))


def _copy(built: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(built, target)
    return target


@pytest.mark.parametrize("name", ["vectors.faiss", "passages.jsonl"])
def test_corrupt_file_is_named(built: Path, tmp_path: Path, name: str) -> None:
    index = _copy(built, tmp_path)
    file = live_dir(index) / name
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(IndexLoadError, match=name):
        semsearch.load(index)


def test_missing_or_garbled_manifest(built: Path, tmp_path: Path) -> None:
    index = _copy(built, tmp_path)
    manifest = live_dir(index) / "manifest.json"
    manifest.write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexLoadError, match="corrupt"):
        semsearch.load(index)
    manifest.unlink()
    with pytest.raises(IndexLoadError, match="not a semsearch index"):
        semsearch.load(index)
    (index / "CURRENT").write_text("garbage", encoding="utf-8")
    with pytest.raises(IndexLoadError, match="CURRENT is corrupt"):
        semsearch.load(index)
    (index / "CURRENT").unlink()
    with pytest.raises(IndexLoadError, match="not a semsearch index"):
        semsearch.load(index)
    with pytest.raises(IndexLoadError, match="no index at"):
        semsearch.load(tmp_path / "missing")


def test_newer_format_version_is_refused(built: Path, tmp_path: Path) -> None:
    index = _copy(built, tmp_path)
    rewrite_manifest(index, format_version=99)
    with pytest.raises(IndexLoadError, match="newer"):
        semsearch.load(index)


def test_save_replaces_an_index_atomically(built: Path, tmp_path: Path, tiny_model: Path) -> None:
    index = _copy(built, tmp_path)
    small = tmp_path / "small"
    small.mkdir()
    (small / "one.txt").write_text("社区党员志愿者每天为隔离居民配送生活物资。", encoding="utf-8")
    semsearch.build([small], model=str(tiny_model)).save(index)
    assert semsearch.load(index).manifest.passage_count == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "small"]
    assert sorted(p.name for p in index.iterdir()) == [".lock", "CURRENT", "gen-00000001",
                                                       "gen-00000002"]


def test_save_refuses_to_overwrite_a_non_index_directory(built: Path, tmp_path: Path) -> None:
    victim = tmp_path / "important"
    victim.mkdir()
    (victim / "thesis.txt").write_text("do not delete", encoding="utf-8")
    with pytest.raises(IndexWriteError, match="refusing"):
        semsearch.load(built).save(victim)
    assert (victim / "thesis.txt").read_text("utf-8") == "do not delete"
