"""Approximate-nearest-neighbour FAISS indexes for large collections, all with stable int64 ids.

    flat    exact inner product (IndexIDMap2 over IndexFlatIP): 1536 B/vector at 384-d
    hnsw    HNSW graph (M=32) over 8-bit scalar-quantised vectors, wrapped in IndexIDMap2:
            fastest queries, ~650 B/vector; removal is by tombstone (see `remove_ids`)
    ivf-pq  inverted file (nlist ~ 4*sqrt(n)) + product quantisation, d/4 bytes per vector:
            smallest, but PQ cannot separate near-duplicate neighbours (low recall@10)
    sq8     inverted file + 8-bit scalar quantisation (IndexIVFScalarQuantizer): ~400 B/vector,
            recall@10 ~0.97 under 1 ms per query at 1M; what `auto` picks for large collections

Every kind holds unit vectors and scores by inner product (= cosine). `benchmarks/ann.py`
measures all of them from 10k to 1M vectors; its results justify the defaults below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

INDEX_TYPES = ("flat", "hnsw", "ivf-pq", "sq8")
AUTO = "auto"

# Measured (benchmarks/results/ann.md, 2 cores, one thread per query): flat takes 0.55 ms at
# 10k, 9.8 ms at 100k and 115 ms at 1M, linear in n, so ~5 ms (the latency target) at 50k.
# Below that exact search is fast enough, needs no training and has perfect recall. Above it
# sq8 is the one kind meeting every 1M target: p50 0.64 ms, recall@10 0.966, 398 MB on disk,
# 52 s to build. hnsw is as fast but 664 MB and 5x slower to build; ivf-pq is 111 MB but its
# recall@10 is 0.53 on e5-like data, whose top-10 neighbours differ by < 0.01 cosine.
FLAT_MAX = 50_000

HNSW_M = 32  # graph degree: at 100k, M=32 reached recall 0.97 with efSearch 32 where M=16 needed 64
HNSW_EF_CONSTRUCTION = 40  # faiss's default; 80 doubled build time for +0.005 recall at 100k
DEFAULT_EF_SEARCH = 64  # 1M: recall 0.962 at 0.46 ms; 24 gives 0.954, SQ8 caps it at ~0.965
DEFAULT_NPROBE = 16  # sq8 at 1M (nlist 4000): recall 0.966 at 0.64 ms; 32: 0.978 at 1.0 ms
MAX_TRAIN = 200_000  # training sample cap: keeps k-means + PQ training at 1M under a minute
ADD_BATCH = 65_536  # vectors per add() call, and so per progress() report
MIN_TRAIN = {"flat": 1, "hnsw": 2, "sq8": 2, "ivf-pq": 1_000}

# Live ids are >= 0; hnsw tombstones map to -1, so this selector hides them at search time.
_LIVE_MAX = 2**63 - 1


def _faiss() -> Any:
    """The faiss module, imported on first use so that `semsearch --help` stays fast."""
    import faiss

    return faiss


def choose_index_type(n: int) -> str:
    """The kind `auto` picks for n vectors: exact flat while it is fast enough, then sq8."""
    if n < 0:
        raise ValueError(f"collection size must be >= 0, not {n}")
    return "flat" if n < FLAT_MAX else "sq8"


def resolve_kind(kind: str, n: int) -> str:
    """Validate an index kind (or "auto") and return the concrete kind for n vectors."""
    normalized = kind.strip().lower().replace("_", "-")
    if normalized == AUTO:
        return choose_index_type(n)
    if normalized not in INDEX_TYPES:
        raise ValueError(f"unknown index type {kind!r}: choose one of "
                         f"{', '.join((*INDEX_TYPES, AUTO))}")
    return normalized


def nlist_for(n: int) -> int:
    """Inverted-list count for n vectors: ~4*sqrt(n), with >= 39 training points per list."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39, 65_536))


def pq_subquantizers(d: int) -> int:
    """PQ sub-vector count: one byte per 4 dimensions (96 for 384-d), a divisor of d."""
    m = max(1, d // 4)
    while d % m:
        m -= 1
    return m


def _train_sample(vectors: np.ndarray, size: int, seed: int = 1234) -> np.ndarray:
    """A random subset of at most `size` rows, so training cost does not grow with n."""
    if len(vectors) <= size:
        return vectors
    rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size, replace=False))
    return np.ascontiguousarray(vectors[rows])


def _as_vectors(vectors: np.ndarray) -> np.ndarray:
    """float32, C-contiguous, 2-d: the only layout FAISS accepts."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"vectors must be a 2-d array, got shape {array.shape}")
    return array


def build_index(kind: str, vectors: np.ndarray, progress: Callable[[int], None] | None = None,
                *, ids: np.ndarray | None = None) -> Any:
    """Build (training if needed) an inner-product index of `kind` over unit vectors.

    ids default to 0..n-1 and must be >= 0; progress(count) is called after each added batch.
    """
    faiss = _faiss()
    x = _as_vectors(vectors)
    n, d = x.shape
    kind = resolve_kind(kind, n)
    if n < MIN_TRAIN[kind]:
        raise ValueError(f"index type {kind!r} needs at least {MIN_TRAIN[kind]} vectors to "
                         f"train, got {n}; use 'flat' (or 'auto') for small collections")
    ip = faiss.METRIC_INNER_PRODUCT
    index: Any
    if kind == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    elif kind == "hnsw":
        hnsw = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, HNSW_M, ip)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.train(_train_sample(x, MAX_TRAIN))
        index = faiss.IndexIDMap2(hnsw)
    else:
        nlist = nlist_for(n)
        quantizer = faiss.IndexFlatIP(d)
        ivf: Any
        if kind == "sq8":
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                ip)
        else:
            ivf = faiss.IndexIVFPQ(quantizer, d, nlist, pq_subquantizers(d), 8, ip)
            ivf.do_polysemous_training = False  # costly, and unused by inner-product search
            ivf.pq.cp.niter = 15
            ivf.pq.cp.min_points_per_centroid = 1  # small n: train anyway, without the warning
        ivf.cp.niter = 10  # k-means converges well before the default 25 iterations here
        ivf.cp.min_points_per_centroid = 1
        ivf.train(_train_sample(x, min(MAX_TRAIN, max(40 * nlist, 10_000))))
        index = ivf  # faiss's wrapper keeps `quantizer` alive as long as `ivf`
    add_vectors(index, x, np.arange(n, dtype=np.int64) if ids is None else ids, progress)
    set_search_params(index, k=10)
    return index


def add_vectors(index: Any, vectors: np.ndarray, ids: np.ndarray,
                progress: Callable[[int], None] | None = None) -> None:
    """Add vectors under explicit int64 ids (>= 0), in batches, reporting each to progress."""
    x = _as_vectors(vectors)
    labels = np.ascontiguousarray(ids, dtype=np.int64)
    if labels.shape != (len(x),):
        raise ValueError(f"need one id per vector: {len(x)} vectors, ids of shape {labels.shape}")
    if len(labels) and labels.min() < 0:
        raise ValueError("ids must be >= 0 (negative ids mean 'no result' to FAISS)")
    _require_writable(index, "add to")
    for start in range(0, len(x), ADD_BATCH):
        stop = min(start + ADD_BATCH, len(x))
        index.add_with_ids(x[start:stop], labels[start:stop])
        if progress is not None:
            progress(stop - start)


def _inner(index: Any) -> Any:
    """The index inside an IndexIDMap/IndexIDMap2 wrapper (or the index itself), downcast."""
    faiss = _faiss()
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIDMap | faiss.IndexIDMap2):
        return faiss.downcast_index(index.index)
    return index


def kind_of(index: Any) -> str:
    """Which of INDEX_TYPES a FAISS index is (ValueError for anything this module did not make)."""
    faiss = _faiss()
    inner = _inner(index)
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVFPQ):
        return "ivf-pq"
    if isinstance(inner, faiss.IndexIVFScalarQuantizer):
        return "sq8"
    if isinstance(inner, faiss.IndexFlat):
        return "flat"
    raise ValueError(f"not a semsearch ANN index: {type(inner).__name__}")


def index_kind(index: Any) -> str:
    """A one-line description of a loaded index (for `semsearch info`): kind and parameters."""
    kind = kind_of(index)
    inner = _inner(index)
    n = index.ntotal
    if kind == "flat":
        detail = "exact inner product"
    elif kind == "hnsw":
        dead = tombstones(index)
        detail = (f"HNSW M={inner.hnsw.nb_neighbors(1)} over SQ8, "
                  f"efSearch={inner.hnsw.efSearch}" + (f", {dead:,} removed" if dead else ""))
        n -= dead
    elif kind == "ivf-pq":
        detail = f"IVF nlist={inner.nlist}, PQ{inner.pq.M}x{inner.pq.nbits}, nprobe={inner.nprobe}"
    else:
        detail = f"IVF nlist={inner.nlist}, SQ8, nprobe={inner.nprobe}"
    ro = ", memory-mapped (read-only)" if is_read_only(index) else ""
    return f"{kind} ({detail}; {n:,} vectors of {index.d} dims{ro})"


def set_search_params(index: Any, *, k: int = 10, ef_search: int | None = None,
                      nprobe: int | None = None) -> None:
    """Set efSearch (hnsw) or nprobe (ivf-pq, sq8) for recall@10 >= 0.95; flat has none."""
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    kind = kind_of(index)
    inner = _inner(index)
    if kind == "hnsw":
        inner.hnsw.efSearch = max(ef_search or DEFAULT_EF_SEARCH, k)
    elif kind in ("ivf-pq", "sq8"):
        inner.nprobe = min(nprobe or DEFAULT_NPROBE, inner.nlist)


def search(index: Any, queries: np.ndarray, k: int,
           allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) for each query, among `allowed` ids if given (a metadata filter);
    removed hnsw ids are filtered out, not just hidden."""
    faiss = _faiss()
    q = _as_vectors(queries)
    kind = kind_of(index)
    selector: Any = None
    if allowed is not None:
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    elif kind == "hnsw":
        selector = faiss.IDSelectorRange(0, _LIVE_MAX)
    if selector is None:
        return index.search(q, k)
    if kind in ("ivf-pq", "sq8"):
        params = faiss.SearchParametersIVF(sel=selector, nprobe=_inner(index).nprobe)
    else:
        params = faiss.SearchParameters(sel=selector)
    return index.search(q, k, params=params)


def _hnsw_id_map(index: Any) -> np.ndarray:
    """A writable numpy view of an IndexIDMap2's internal-to-external id table."""
    faiss = _faiss()
    wrapper = faiss.downcast_index(index)
    return faiss.rev_swig_ptr(wrapper.id_map.data(), wrapper.id_map.size())


def tombstones(index: Any) -> int:
    """How many vectors of an hnsw index are removed but still linked in its graph (0 otherwise)."""
    if kind_of(index) != "hnsw" or index.ntotal == 0:
        return 0
    return int(np.count_nonzero(_hnsw_id_map(index) < 0))


def remove_ids(index: Any, ids: np.ndarray | list[int]) -> int:
    """Remove vectors by id from any kind; returns how many were removed.

    FAISS cannot unlink HNSW nodes, so hnsw marks them -1 in the id map (a tombstone): `search`
    filters them with an IDSelector (plain index.search returns -1 in their place), the graph
    still routes through them. Call `compact` when many are dead to reclaim their space.
    """
    labels = np.unique(np.asarray(ids, dtype=np.int64))
    _require_writable(index, "remove from")
    if kind_of(index) != "hnsw":
        return int(index.remove_ids(labels))
    id_map = _hnsw_id_map(index)
    dead = np.isin(id_map, labels[labels >= 0])
    id_map[dead] = -1
    index.construct_rev_map()
    return int(np.count_nonzero(dead))


def compact(index: Any, progress: Callable[[int], None] | None = None) -> Any:
    """Rebuild an hnsw index without its tombstones (others are returned unchanged)."""
    if tombstones(index) == 0:
        return index
    id_map = _hnsw_id_map(index).copy()
    live = np.flatnonzero(id_map >= 0)
    inner = _inner(index)
    vectors = inner.reconstruct_n(0, inner.ntotal)[live]  # SQ8-decoded: re-encodes identically
    return build_index("hnsw", vectors, progress, ids=id_map[live])


def is_read_only(index: Any) -> bool:
    """True if the index's vectors are memory-mapped from its file (FAISS cannot modify those)."""
    faiss = _faiss()
    inner = _inner(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner = faiss.downcast_index(inner.storage)
    if isinstance(inner, faiss.IndexIVF):
        lists: Any = faiss.downcast_InvertedLists(inner.invlists)
        if isinstance(lists, faiss.OnDiskInvertedLists):
            return bool(lists.read_only)
        if isinstance(lists, faiss.ArrayInvertedLists) and lists.codes.size():
            return not lists.codes.at(0).is_owned
        return False
    if isinstance(inner, faiss.IndexFlatCodes):
        return inner.ntotal > 0 and not inner.codes.is_owned
    return False


def _require_writable(index: Any, action: str) -> None:
    """Refuse to modify a memory-mapped index: FAISS would abort the whole process, not raise."""
    if is_read_only(index):
        raise ValueError(f"cannot {action} a memory-mapped index: load it with mmap=False")


def write_index(index: Any, path: Path) -> None:
    """Write an index to a file (the format `load_index` reads, with or without mmap)."""
    faiss = _faiss()
    faiss.write_index(index, str(path))


def load_index(path: Path, mmap: bool = False) -> Any:
    """Read an index; with mmap, its vectors stay in the file's page cache, not private memory.

    All four kinds support it (IO_FLAG_MMAP_IFC maps flat, SQ and HNSW codes and IVF lists in
    place): opening a 1M index then costs a few MB of RSS instead of its size. A mapped index
    is read-only: adding or removing raises ValueError (FAISS itself would abort).
    """
    faiss = _faiss()
    flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
    index = faiss.read_index(str(path), flags)
    kind_of(index)  # a clear ValueError now rather than a confusing one at search time
    return index
