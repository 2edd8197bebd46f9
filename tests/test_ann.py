"""semsearch.ann: every index kind builds, finds the right ids, removes, and round-trips."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semsearch.stores import base
from semsearch.stores import faiss as ann

N, D, K = 2000, 32, 10


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors (40 centres) and 50 held-out queries from the same clusters."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((40, D)).astype(np.float32)
    points = centres[rng.integers(0, 40, N + 50)] + 0.3 * rng.standard_normal(
        (N + 50, D)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points[:N], points[N:]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny indexes: OpenMP threads only add overhead (and contention on a busy machine)."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def fresh(data: tuple[np.ndarray, np.ndarray]) -> Callable[[str], Any]:
    """A new, modifiable index of a kind over `data`, each kind built (trained) only once."""
    import faiss

    cache: dict[str, np.ndarray] = {}

    def make(kind: str) -> Any:
        if kind not in cache:
            cache[kind] = faiss.serialize_index(ann.build_index(kind, data[0]))
        return faiss.deserialize_index(cache[kind])

    return make


@pytest.fixture(scope="module")
def truth(data: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    x, q = data
    return np.argsort(-(q @ x.T), axis=1)[:, :K]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(),
                                                     strict=True)) / truth.size


# PQ with 8 bytes per 32-d vector is coarse; the others should be near exact on this data.
FLOOR = {"flat": 1.0, "hnsw": 0.9, "sq8": 0.9, "ivf-pq": 0.5}


@pytest.mark.parametrize("kind", ann.INDEX_TYPES)
def test_build_and_search_finds_true_neighbours(kind: str, data: tuple[np.ndarray, np.ndarray],
                                                truth: np.ndarray) -> None:
    x, q = data
    reported: list[int] = []
    index = ann.build_index(kind, x, reported.append)
    assert sum(reported) == N and index.ntotal == N
    assert ann.kind_of(index) == kind
    assert ann.describe_index(index).startswith(kind)
    _, ids = ann.search_index(index, q, K)
    assert recall(ids, truth) >= FLOOR[kind]


@pytest.mark.parametrize("kind", ann.INDEX_TYPES)
def test_explicit_ids_are_returned(kind: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = data
    ids = np.arange(N, dtype=np.int64) * 7 + 1_000_000
    index = ann.build_index(kind, x, ids=ids)
    _, found = ann.search_index(index, x[:20], 1)
    assert set(found[:, 0].tolist()) <= set(ids.tolist())
    assert np.mean(found[:, 0] == ids[:20]) >= 0.9  # a vector is its own nearest neighbour


@pytest.mark.parametrize("kind", ann.INDEX_TYPES)
def test_removed_ids_never_come_back(kind: str, data: tuple[np.ndarray, np.ndarray],
                                     fresh: Callable[[str], Any]) -> None:
    x, _ = data
    index = fresh(kind)
    gone = np.arange(0, 200)
    assert ann.remove_ids(index, gone) == 200
    assert ann.remove_ids(index, gone) == 0  # already removed
    _, found = ann.search_index(index, x[:200], K)  # query with the removed vectors themselves
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    assert (found >= 0).all()  # hnsw's filter replaces tombstones rather than leaving holes
    _, plain = index.search(x[:200], K)  # plain faiss search: holes (-1), never a removed id
    assert not set(plain.ravel().tolist()) & set(gone.tolist())


def test_hnsw_compact_drops_tombstones(data: tuple[np.ndarray, np.ndarray],
                                       fresh: Callable[[str], Any]) -> None:
    x, _ = data
    index = fresh("hnsw")
    ann.remove_ids(index, [1, 2, 3])
    assert ann.tombstones(index) == 3 and "3 removed" in ann.describe_index(index)
    compacted = ann.compact(index)
    assert compacted.ntotal == N - 3 and ann.tombstones(compacted) == 0
    _, found = compacted.search(x[:5], 1)
    assert found[0, 0] == 0 and found[4, 0] == 4
    assert not {1, 2, 3} & set(found.ravel().tolist())


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("kind", ann.INDEX_TYPES)
def test_write_read_round_trip(kind: str, mmap: bool, tmp_path: Path,
                               data: tuple[np.ndarray, np.ndarray],
                               fresh: Callable[[str], Any]) -> None:
    x, q = data
    index = fresh(kind)
    ann.remove_ids(index, [5, 6])
    before = ann.search_index(index, q, K)[1]
    path = tmp_path / "vectors.faiss"
    ann.write_index(index, path)
    loaded = ann.load_index(path, mmap=mmap)
    assert ann.kind_of(loaded) == kind
    assert ann.is_read_only(loaded) is mmap
    np.testing.assert_array_equal(ann.search_index(loaded, q, K)[1], before)
    if mmap:  # faiss would abort the process; ann refuses first
        with pytest.raises(ValueError, match="memory-mapped"):
            ann.remove_ids(loaded, [7])
        with pytest.raises(ValueError, match="memory-mapped"):
            ann.add_vectors(loaded, x[:1], np.array([N + 1]))
    else:
        ann.add_vectors(loaded, x[:1], np.array([N + 1]))
        assert N + 1 in ann.search_index(loaded, x[:1], K)[1][0].tolist()


def test_search_params_apply(fresh: Callable[[str], Any]) -> None:
    hnsw = fresh("hnsw")
    ann.set_search_params(hnsw, k=10, ef_search=24)
    assert "efSearch=24" in ann.describe_index(hnsw)
    ann.set_search_params(hnsw, k=100)
    assert f"efSearch={max(ann.DEFAULT_EF_SEARCH, 100)}" in ann.describe_index(hnsw)
    sq8 = fresh("sq8")
    ann.set_search_params(sq8, k=10, nprobe=3)
    assert "nprobe=3" in ann.describe_index(sq8)
    with pytest.raises(ValueError):
        ann.set_search_params(sq8, k=0)


def test_choose_index_type_thresholds() -> None:
    assert base.choose_index_type(0) == "flat"
    assert base.choose_index_type(base.FLAT_MAX - 1) == "flat"
    assert base.choose_index_type(base.FLAT_MAX) == "sq8"
    assert base.choose_index_type(10_000_000) == "sq8"
    assert ann.resolve_kind("auto", 10) == "flat"
    assert ann.resolve_kind("AUTO", 1_000_000) == "sq8"
    assert ann.resolve_kind("IVF_PQ", 1) == "ivf-pq"
    with pytest.raises(ValueError):
        base.choose_index_type(-1)


def test_unknown_kind_and_too_few_vectors_raise(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = data
    with pytest.raises(ValueError, match="unknown index type 'annoy'"):
        ann.build_index("annoy", x)
    with pytest.raises(ValueError, match="at least"):
        ann.build_index("ivf-pq", x[:100])
    with pytest.raises(ValueError, match="id per vector"):
        ann.add_vectors(ann.build_index("flat", x[:10]), x[:2], np.array([1]))
    with pytest.raises(ValueError, match=">= 0"):
        ann.build_index("flat", x[:2], ids=np.array([0, -5]))


def test_small_collections_fall_back_to_fewer_lists() -> None:
    assert ann.nlist_for(1_000_000) == 4000
    assert ann.nlist_for(2000) == 2000 // 39
    assert ann.nlist_for(10) == 1
    assert ann.pq_subquantizers(384) == 96 and 30 % ann.pq_subquantizers(30) == 0
