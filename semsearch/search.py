"""The public search object: build an index from files, save it, load it, query it.

    corpus.load → passages.make_passages → Encoder.encode_passages → Store → Hit

`Index` pairs a `Store` — a FAISS directory (`index.VectorIndex`, the default) or a Milvus
collection (`milvus.MilvusStore`) — with the encoder that must embed its queries; the encoder is
loaded on first search, after checking that it is the model the index was built with.
Three modes: `dense` (cosine over embeddings), `bm25` (lexical), and `hybrid`, which fuses the two
rankings — a weighted sum of min-max normalised scores by default, or reciprocal rank fusion.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from semsearch import ann, corpus, filters
from semsearch.errors import ModelMismatchError, QueryError
from semsearch.index import Manifest, VectorIndex
from semsearch.lexical import to_simplified
from semsearch.models.encoder import Backend, Encoder, load_encoder
from semsearch.models.resolve import ModelRef, resolve
from semsearch.models.resolve import fingerprint as model_fingerprint
from semsearch.passages import MAX_TOKENS, Passage, make_passages

DEFAULT_INDEX = Path(__file__).resolve().parent.parent / "indexes" / "seeds"

Mode = Literal["dense", "bm25", "hybrid"]
Fusion = Literal["rrf", "weighted"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")
FUSIONS: tuple[Fusion, ...] = ("rrf", "weighted")
# Defaults chosen on the labelled seeds set (benchmarks/results/fusion.md): hybrid beats both
# single modes, and the weighted sum of min-max scores beats RRF (Recall@5 0.963 vs 0.919).
DEFAULT_MODE: Mode = "hybrid"
DEFAULT_FUSION: Fusion = "weighted"
RRF_K = 60  # the constant of Cormack et al. (2009), also ranx's default
DENSE_WEIGHT = 0.5  # weighted fusion: share of the dense score
CANDIDATES = 50  # depth of each ranking that hybrid fusion looks at
MAX_QUERY_CHARS = 10_000


class Store(Protocol):
    """What `Index` needs from a storage backend: passages by stable id, their vectors and BM25
    weights, and the manifest. Implemented by `index.VectorIndex` and `milvus.MilvusStore`."""

    manifest: Manifest

    @property
    def has_lexical(self) -> bool: ...

    def search(self, vectors: np.ndarray, k: int,
               where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores [n, k] float32, ids [n, k] int64, -1 padded) by inner product."""
        ...

    def lexical_search(self, queries: Sequence[str], k: int,
                       where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-k, shaped like `search`; passages with no query word are left out (-1)."""
        ...

    def get(self, ids: Iterable[int]) -> dict[int, Passage]: ...

    def iter_passages(self) -> Iterator[tuple[int, Passage]]: ...

    def add(self, passages: Sequence[Passage], vectors: np.ndarray,
            sources: dict[str, str]) -> None: ...

    def remove_sources(self, sources: Sequence[str]) -> int: ...

    def save(self, path: str | os.PathLike[str], /) -> Any: ...


def default_index_path() -> Path:
    """`SEMSEARCH_INDEX`, else the seeds index shipped in the repository."""
    env = os.environ.get("SEMSEARCH_INDEX")
    return Path(env) if env else DEFAULT_INDEX


@dataclass(frozen=True, kw_only=True)
class Hit(Passage):
    """One search result: a passage (text, source, paragraph, offsets, heading, metadata) with
    its rank, its score and its stable id."""

    rank: int
    score: float
    id: int


@dataclass(frozen=True)
class UpdateReport:
    """What `Index.add` did, by source."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    passages: int = 0


@dataclass(frozen=True)
class BuildProgress:
    """Callbacks for long steps: `start(total, what)` at each step (encoding, building the
    index), then `advance(n)` as items of that step finish."""

    start: Callable[[int, str], None]
    advance: Callable[[int], None]


def rrf(rankings: Sequence[np.ndarray], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: score(d) = Σ 1 / (k + rank of d), ranks from 1; ids < 0 skipped.

    Written out rather than called from ranx: ranx's numba kernels take ~13 s to compile on the
    first call in each process, far too slow for a CLI query; a test checks we agree with ranx.
    """
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, idx in enumerate(int(i) for i in ranking if i >= 0):
            fused[idx] = fused.get(idx, 0.0) + 1.0 / (k + rank + 1)
    return fused


def weighted_fusion(runs: Sequence[tuple[np.ndarray, np.ndarray]],
                    weights: Sequence[float]) -> dict[int, float]:
    """Weighted sum of min-max normalised scores (ranx's "wsum" with "min-max" norm)."""
    fused: dict[int, float] = {}
    for (scores, ids), weight in zip(runs, weights, strict=True):
        valid = ids >= 0
        if not valid.any():
            continue
        s, i = scores[valid], ids[valid]
        low, high = float(s.min()), float(s.max())
        norm = (s - low) / (high - low) if high > low else np.ones_like(s)
        for idx, value in zip(i, norm, strict=True):
            fused[int(idx)] = fused.get(int(idx), 0.0) + weight * float(value)
    return fused


def _overlaps(a: Passage, b: Passage) -> bool:
    """Near-duplicates: the same text, one inside the other, or overlapping spans of one file."""
    ta, tb = "".join(a.text.split()), "".join(b.text.split())
    if ta in tb or tb in ta:
        return True
    return a.source == b.source and a.start < b.end and b.start < a.end


def check_query(query: str) -> str:
    """Reject queries that cannot mean anything; return the query stripped of control
    characters and lone surrogates (which no model or JSON output can take)."""
    if not isinstance(query, str):
        raise QueryError(f"a query must be text, not {type(query).__name__}")
    text = "".join(ch for ch in query if unicodedata.category(ch) not in ("Cc", "Cs"))
    if not text.strip():
        raise QueryError("the query is empty; give some words to search for")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(text):,} characters long; the limit is "
                         f"{MAX_QUERY_CHARS:,} (the model reads at most 512 tokens)")
    return text.strip()


class Index:
    """A searchable collection: passages with their vectors and the model that embeds queries."""

    def __init__(self, store: Store, encoder: Encoder | None = None,
                 model: ModelRef | None = None) -> None:
        self.store = store
        self._encoder = encoder
        self._model = model

    @property
    def manifest(self) -> Any:
        """The index's `Manifest` (model, dimension, counts, fingerprints)."""
        return self.store.manifest

    @property
    def passages(self) -> list[Passage]:
        """Every passage (streamed from the store: on Milvus this reads the collection)."""
        return [passage for _, passage in self.store.iter_passages()]

    @classmethod
    def build(cls, paths: Iterable[str | os.PathLike[str]], model: str | None = None, *,
              max_tokens: int = MAX_TOKENS, progress: BuildProgress | None = None,
              backend: Backend | None = None, index_type: str = "auto",
              uri: str | os.PathLike[str] | None = None,
              collection: str | None = None) -> Index:
        """Read, clean and split the files under `paths`, embed the passages, index them
        (`index_type`: flat, hnsw, ivf-pq, sq8, or auto to choose by size). With `uri` the index
        is written to that Milvus collection (replacing it), otherwise kept in memory for
        `save`. `backend` is the encoder's (torch, onnx...), not the store's."""
        documents = corpus.load(paths)
        encoder = load_encoder(model, backend)
        passages, vectors = _embed(documents, encoder, max_tokens, progress)
        sources = {d.source: d.sha256 for d in documents}
        advance = progress.advance if progress else None
        store: Store
        try:
            if progress is not None:
                kind = ann.resolve_kind(index_type, len(passages))
                progress.start(len(passages), f"building the {kind} index (training first)"
                               if kind in ("ivf-pq", "sq8", "hnsw") else "building the index")
            if uri is not None or collection is not None:
                from semsearch import milvus

                store = milvus.create(passages, vectors, encoder.info, sources, uri,
                                      collection or milvus.DEFAULT_COLLECTION,
                                      encoder=encoder.backend, index_type=index_type,
                                      progress=advance)
            else:
                store = VectorIndex.create(passages, vectors, encoder.info, sources,
                                           encoder.backend, index_type, advance)
        except ValueError as exc:  # unknown index type, or too few vectors to train it
            raise QueryError(str(exc)) from exc
        return cls(store, encoder)

    def add(self, paths: Iterable[str | os.PathLike[str]], *, max_tokens: int = MAX_TOKENS,
            progress: BuildProgress | None = None) -> UpdateReport:
        """Index new files, re-index changed ones (by content hash), skip unchanged ones."""
        documents = corpus.load(paths)
        known = self.manifest.sources
        by_source: dict[str, list[corpus.Document]] = {}
        for doc in documents:
            by_source.setdefault(doc.source, []).append(doc)
        unchanged = [s for s, docs in by_source.items() if known.get(s) == docs[0].sha256]
        replaced = [s for s in by_source if s in known and s not in unchanged]
        fresh = [d for d in documents if d.source not in unchanged]
        self.store.remove_sources(replaced)
        passages, vectors = _embed(fresh, self.encoder, max_tokens, progress)
        self.store.add(passages, vectors, {d.source: d.sha256 for d in fresh})
        return UpdateReport(added=[s for s in by_source if s not in known], replaced=replaced,
                            unchanged=unchanged, passages=len(passages))

    def remove(self, source: str) -> int:
        """Remove every passage of `source` (a name as indexed); returns how many went."""
        if source not in self.manifest.sources:
            known = ", ".join(sorted(self.manifest.sources)[:5]) or "none"
            raise QueryError(f"no source {source!r} in this index (sources: {known}"
                             f"{', …' if len(self.manifest.sources) > 5 else ''})")
        return self.store.remove_sources([source])

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, model: str | None = None, *,
             writable: bool = False) -> Index:
        """Open a saved index (default: the seeds index); `model` must be the one it was built
        with, and defaults to it. `writable` loads the vectors into memory so that `add` and
        `remove` can change them (otherwise they may be memory-mapped, read-only)."""
        store = VectorIndex.load(path or default_index_path(), mmap=not writable)
        return cls(store, model=_model_for(store, model))

    @classmethod
    def open(cls, uri: str | os.PathLike[str] | None = None, collection: str | None = None,
             model: str | None = None) -> Index:
        """Open an index in a Milvus collection: `uri` is a Milvus Lite file (./x.db) or a
        server (http://host:19530), default SEMSEARCH_MILVUS_URI; `model` as for `load`."""
        from semsearch import milvus

        store = milvus.MilvusStore.open(uri, collection or milvus.DEFAULT_COLLECTION)
        return cls(store, model=_model_for(store, model))

    def save(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Write the index: a FAISS index to directory `path`, atomically (returns its path);
        a Milvus one is already written, so this flushes it (returns its URI)."""
        if path is None:
            if isinstance(self.store, VectorIndex):
                raise QueryError("give a directory to save a FAISS index to")
            return self.store.save(path)  # type: ignore[arg-type]  # MilvusStore: optional
        return self.store.save(path)

    @property
    def encoder(self) -> Encoder:
        """The query encoder, loaded on first use and checked against the manifest."""
        if self._encoder is None:
            encoder = load_encoder(self._model or self.manifest.model.name)
            recorded = self.manifest.model
            if (encoder.info.dimension != recorded.dimension
                    or encoder.info.fingerprint != recorded.fingerprint):
                raise ModelMismatchError(
                    f"the index was built with model {recorded.name} (dim {recorded.dimension}, "
                    f"weights {recorded.fingerprint[:12]}) but the model given is "
                    f"{encoder.info.name} (dim {encoder.info.dimension}, weights "
                    f"{encoder.info.fingerprint[:12]}); query with the same model or rebuild")
            self._encoder = encoder
        return self._encoder

    def search(self, query: str, k: int = 5, mode: Mode = DEFAULT_MODE,
               fusion: Fusion = DEFAULT_FUSION, where: str | None = None) -> list[Hit]:
        """The `k` passages most similar to `query`, best first."""
        return self.search_batch([query], k, mode, fusion, where)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5, mode: Mode = DEFAULT_MODE,
                     fusion: Fusion = DEFAULT_FUSION,
                     where: str | None = None) -> list[list[Hit]]:
        """`search` for many queries at once (one encoder call, one FAISS call).

        `score` is the cosine similarity in `dense` mode, the BM25 score in `bm25` mode and the
        fused score in `hybrid` mode. Near-duplicate passages are collapsed into the best one.
        `where` keeps only passages matching a filter expression (see `filters`), e.g.
        `source == "a.txt" and paragraph > 2`.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise QueryError(f"k must be a whole number ≥ 1, got {k!r}")
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if fusion not in FUSIONS:
            raise QueryError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
        cleaned = [check_query(q) for q in queries]
        if not cleaned:
            return []
        if mode != "dense" and not self.store.has_lexical:
            raise QueryError(f"this index has no lexical (BM25) part, so mode {mode!r} cannot "
                             "run; use --mode dense or rebuild it with `semsearch index`")
        if where is not None:
            filters.parse(where)  # a bad expression is the user's error, whatever the backend
        depth = max(CANDIDATES, k * 4)
        dense = bm25 = None
        if mode != "bm25":
            # traditional → simplified helps the encoder too (dense MRR@10 0.778 → 0.804)
            folded = [to_simplified(q) for q in cleaned]
            dense = self.store.search(self.encoder.encode_queries(folded), depth, where)
        if mode != "dense":
            bm25 = self.store.lexical_search(cleaned, depth, where)
        results = []
        for row in range(len(cleaned)):
            if dense is not None and bm25 is not None:
                runs = [(dense[0][row], dense[1][row]), (bm25[0][row], bm25[1][row])]
                fused = (rrf([ids for _, ids in runs]) if fusion == "rrf"
                         else weighted_fusion(runs, (DENSE_WEIGHT, 1 - DENSE_WEIGHT)))
                ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
            else:
                scores, ids = dense if dense is not None else bm25  # type: ignore[misc]
                ranked = [(int(i), float(s)) for s, i in zip(scores[row], ids[row], strict=True)
                          if i >= 0]
            results.append(self._hits(ranked, k))
        return results

    def _hits(self, ranked: Sequence[tuple[int, float]], k: int) -> list[Hit]:
        """The first `k` of `ranked` (id, score) pairs as hits, skipping near-duplicates."""
        hits: list[Hit] = []
        kept: list[Passage] = []
        found = self.store.get(idx for idx, _ in ranked)
        for idx, score in ranked:
            passage = found[idx]
            if any(_overlaps(passage, other) for other in kept):
                continue
            kept.append(passage)
            hits.append(Hit(**vars(passage), rank=len(hits) + 1, score=float(score), id=idx))
            if len(hits) == k:
                break
        return hits


def _model_for(store: Store, model: str | None) -> ModelRef:
    """The model to query `store` with (default: the one it records), refused early with
    ModelMismatchError if its local weights are not the ones the index was built with."""
    recorded = store.manifest.model
    ref = resolve(model or recorded.name)
    if ref.is_local:
        found = model_fingerprint(Path(ref.location))
        if found != recorded.fingerprint:
            raise ModelMismatchError(
                f"the index was built with model {recorded.name} (weights "
                f"{recorded.fingerprint[:12]}, dim {recorded.dimension}) but {ref.name} at "
                f"{ref.location} has weights "
                f"{found[:12]}; query with the same model or rebuild the index with "
                f"`semsearch index ... --model {model or ref.name}`")
    return ref


def _embed(documents: Sequence[corpus.Document], encoder: Encoder, max_tokens: int,
           progress: BuildProgress | None) -> tuple[list[Passage], np.ndarray]:
    """Passages of `documents` and their vectors (the passage text alone: see Passage)."""
    budget = min(max_tokens, encoder.max_tokens - 16)
    passages = make_passages(documents, encoder.count_tokens, budget)
    if progress is not None:
        progress.start(len(passages), "encoding passages")
    vectors = encoder.encode_passages([p.text for p in passages],
                                      progress.advance if progress else None)
    return passages, vectors


def build(paths: Iterable[str | os.PathLike[str]], model: str | None = None, *,
          progress: BuildProgress | None = None, backend: Backend | None = None,
          index_type: str = "auto") -> Index:
    """Build an in-memory index from files and directories (see `Index.build`)."""
    return Index.build(paths, model, progress=progress, backend=backend, index_type=index_type)


def load(path: str | os.PathLike[str] | None = None, model: str | None = None, *,
         writable: bool = False) -> Index:
    """Open a saved index; without a path, the seeds index (see `Index.load`)."""
    return Index.load(path, model, writable=writable)


def connect(uri: str | os.PathLike[str] | None = None, collection: str | None = None,
            model: str | None = None) -> Index:
    """Open an index in Milvus (see `Index.open`): `semsearch.connect("./x.db")`."""
    return Index.open(uri, collection, model)
