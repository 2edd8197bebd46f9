"""What every storage backend shares: the `Store` protocol, the `Manifest`, and the choice of
vector index kind (the same four kinds on FAISS and on Milvus, chosen by the same rule).

A store holds passages under stable int64 ids, their unit vectors (inner product = cosine) and
the BM25 data over the same passages, plus a manifest that says which model embedded them.
`Index` (index.py) and the search path (search.py) only ever talk to this protocol.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from semsearch.models.encoder import ModelInfo
from semsearch.passages import Passage

if TYPE_CHECKING:
    from semsearch.filters import Filter

FORMAT_VERSION = 2
METRIC = "inner_product"
# Granularities (Manifest.granularity): one vector per passage, or sentence vectors beside them
PASSAGE = "passage"
SENTENCE = "sentence"

ProgressFn = Callable[[int], None]

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


@dataclass(frozen=True)
class Manifest:
    """Everything needed to trust an index and to query it with the right model."""

    format_version: int
    model: ModelInfo
    metric: str
    index_type: str
    passage_count: int
    corpus_fingerprint: str
    created_at: str
    lexical: str = ""
    encoder: str = ""
    generation: int = 0
    next_id: int = 0
    sources: dict[str, str] = field(default_factory=dict)  # source → sha256 of its file
    files: dict[str, str] = field(default_factory=dict)  # relative path → sha256
    # the folder sources are named from (a FAISS index saves it relative to its directory)
    root: str = ""
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)  # source → reason → lines
    web: list[str] = field(default_factory=list)  # sources cleaned as web pages
    # the metadata keys of the passages, kept where the store cannot list them without reading
    # every row (Milvus), so a filter naming an unknown key is refused there as FAISS refuses
    # it; None: not recorded (a collection written before they were)
    keys: list[str] | None = None
    # "passage": one vector per passage; "sentence": sentence vectors too (stores/sentences.py)
    granularity: str = "passage"

    def to_json(self) -> dict[str, Any]:
        """The manifest as saved; a passage-only index leaves `granularity` out, so its
        manifest reads as before (and older semsearch versions still open it)."""
        found = asdict(self)
        if self.granularity == "passage":
            del found["granularity"]
        return found

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        model = ModelInfo(**data["model"])
        return cls(**{**data, "model": model})


@dataclass(frozen=True)
class BestSentence:
    """The sentence of a hit that matched its query best: offsets into the hit's `text`
    (text[start:end] is the sentence) and its cosine with the query."""

    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "score": round(self.score, 6)}


class Store(Protocol):
    """A storage backend: `stores.faiss.FaissStore` (a directory) or `stores.milvus.MilvusStore`
    (a collection). Filters arrive parsed (`filters.Filter`): each store applies them its way."""

    manifest: Manifest

    @property
    def location(self) -> str:
        """Where the index lives: a directory, a Milvus URI and collection, or "" (in memory)."""
        ...

    @property
    def has_lexical(self) -> bool: ...

    @property
    def read_only(self) -> bool:
        """True if this store was opened for reading only (a memory-mapped FAISS index)."""
        ...

    def fields(self) -> frozenset[str] | None:
        """The names a filter may use (passage fields and metadata keys); None if unknown."""
        ...

    def search(self, vectors: np.ndarray, k: int,
               where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores [n, k] float32, ids [n, k] int64, -1 padded) by inner product."""
        ...

    def lexical_search(self, queries: Sequence[str], k: int,
                       where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-k, shaped like `search`; passages with no query word are left out (-1)."""
        ...

    def query_words(self, query: str) -> list[str]:
        """The query's words as this store's BM25 segments them (what a hit highlights)."""
        ...

    def lexical_coverage(self, queries: Sequence[str]) -> np.ndarray:
        """For each query, the share of its words BM25 can match in this index (0–1): how much
        a BM25 ranking of it can say (hybrid fusion weighs BM25 by it)."""
        ...

    def get(self, ids: Iterable[int]) -> dict[int, Passage]:
        """The passages with these ids."""
        ...

    def iter_passages(self) -> Iterator[tuple[int, Passage]]:
        """Every (id, passage), streamed."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids` (quantised kinds give what their searches see)."""
        ...

    def add(self, passages: Sequence[Passage], vectors: np.ndarray, sources: dict[str, str],
            progress: ProgressFn | None = None) -> None:
        """Add passages under new ids and record their sources' content hashes."""
        ...

    def remove_sources(self, sources: Sequence[str]) -> int:
        """Remove every passage of `sources`; returns how many went."""
        ...

    def describe(self) -> str:
        """One line on the vector index: kind, parameters, size (for `semsearch info`)."""
        ...

    def save(self, path: str | os.PathLike[str] | None = None) -> str:
        """Make the changes durable (at `path` for a FAISS index); returns the location."""
        ...

    def close(self) -> None:
        """Release what the store holds open (files, connections)."""
        ...


def corpus_fingerprint(sources: dict[str, str]) -> str:
    """sha256 over (source, content hash) pairs: equal corpora, equal fingerprint."""
    digest = hashlib.sha256()
    for source, sha in sorted(sources.items()):
        digest.update(f"{source}\0{sha}\n".encode())
    return digest.hexdigest()


def no_hits(rows: int, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Search results with nothing found: scores 0, ids -1."""
    return np.zeros((rows, k), dtype=np.float32), np.full((rows, k), -1, dtype=np.int64)


def failpoint(name: str) -> None:
    """Test hook: die here, as a crash would, when SEMSEARCH_FAILPOINT names this point."""
    if os.environ.get("SEMSEARCH_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


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
