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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from semsearch import ann, corpus, filters
from semsearch.checkpoint import encode_resumable
from semsearch.clean import dedup_key
from semsearch.errors import ModelMismatchError, QueryError
from semsearch.index import Manifest, VectorIndex
from semsearch.lexical import to_simplified
from semsearch.models.encoder import Backend, Encoder, load_encoder
from semsearch.models.resolve import ModelRef, resolve
from semsearch.models.resolve import fingerprint as model_fingerprint
from semsearch.passages import MAX_TOKENS, Passage, Prepared, prepare

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
QueryForm = Literal["written", "folded", "both"]
# What dense search embeds of a query (Index._query_vectors). Passages are embedded as written,
# so a traditional query on a traditional corpus is best embedded as written, and one on a
# simplified corpus folded (OpenCC t2s); "both" averages the two vectors. Measured (dense R@1 /
# hybrid MRR@10, benchmarks/results/quality-*.md): DRCD (traditional) folded 0.790 / 0.959,
# written 0.839 / 0.961, both 0.835 / 0.961; seeds hybrid MRR@10 folded 0.893, written 0.885,
# both 0.893. BM25 always folds (lexical.normalize).
DENSE_QUERY: QueryForm = "both"


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
    """What `Index.build` or `Index.add` did: sources added, replaced, unchanged, gone from
    disk (and whether they were pruned), files skipped and lines dropped (by reason)."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    passages: int = 0
    files: int = 0
    skipped: list[corpus.Skipped] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    pruned: bool = False
    resumed: int = 0  # passages whose vectors an interrupted earlier run had already encoded


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


class Collapser:
    """Keeps only true duplicates out of a ranking: a passage overlapping one already kept from
    the same document (a file, or one record of a records file: records are their own sources),
    or with the same text up to whitespace and width. Each text is normalised once (NFKC over
    every pair cost ~0.1 s per query at k=50).

    Containment across documents is not duplication: "男孩趴在草地上。" and "小男孩趴在草地上。"
    are two records, and collapsing them lost answers on record corpora (issue 11)."""

    def __init__(self) -> None:
        self._texts: set[str] = set()
        self._spans: dict[str, list[tuple[int, int]]] = {}

    def keep(self, passage: Passage) -> bool:
        """False for a duplicate of a passage kept before; otherwise record it and say True."""
        text = dedup_key(passage.text)
        spans = self._spans.setdefault(passage.source, [])
        if text in self._texts or any(passage.start < end and start < passage.end
                                      for start, end in spans):
            return False
        self._texts.add(text)
        spans.append((passage.start, passage.end))
        return True


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
        self.report = UpdateReport()  # what the last build or add did

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
              collection: str | None = None, options: corpus.Options | None = None,
              follow_links: bool = False, checkpoint: Path | None = None) -> Index:
        """Read, clean and split the files under `paths`, embed the passages, index them
        (`index_type`: flat, hnsw, ivf-pq, sq8, or auto to choose by size). With `uri` the index
        is written to that Milvus collection (replacing it), otherwise kept in memory for
        `save`. `backend` is the encoder's (torch, onnx...), not the store's; `options` say how
        to clean and which record fields hold text and ids. `report` tells what was read.
        With a `checkpoint` directory, encoded passages are kept there as they finish, and a
        rerun after an interruption encodes only the rest (see `checkpoint`)."""
        found = corpus.scan(paths, options=options, follow_links=follow_links)
        index = cls.from_documents(found.documents, model, max_tokens=max_tokens,
                                   progress=progress, backend=backend, index_type=index_type,
                                   uri=uri, collection=collection, root=found.root,
                                   checkpoint=checkpoint)
        index.report = replace(index.report, files=len(found.files), skipped=found.skipped)
        return index

    @classmethod
    def from_documents(cls, documents: Sequence[corpus.Document], model: str | None = None, *,
                       max_tokens: int = MAX_TOKENS, progress: BuildProgress | None = None,
                       backend: Backend | None = None, index_type: str = "auto",
                       uri: str | os.PathLike[str] | None = None,
                       collection: str | None = None, root: Path | None = None,
                       checkpoint: Path | None = None) -> Index:
        """`build` from documents already in memory (e.g. a benchmark's corpus records)."""
        if not documents:
            raise corpus.CorpusError("no documents to index")
        encoder = load_encoder(model, backend)
        prepared, vectors, resumed = _embed(documents, encoder, max_tokens, progress, checkpoint)
        passages = prepared.passages
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
        store.manifest = replace(store.manifest, root=str(root) if root else "",
                                 dropped=prepared.dropped, web=sorted(prepared.web))
        index = cls(store, encoder)
        index.report = UpdateReport(added=list(sources), passages=len(passages),
                                    files=len({d.file for d in documents}),
                                    dropped=dict(prepared.dropped_total()), resumed=resumed)
        return index

    def add(self, paths: Iterable[str | os.PathLike[str]], *, max_tokens: int = MAX_TOKENS,
            progress: BuildProgress | None = None, options: corpus.Options | None = None,
            follow_links: bool = False, prune: bool = False) -> UpdateReport:
        """Index new files, re-index changed ones (by content hash), skip unchanged ones.

        Sources are named from the index's root, so a file has one name however its path is
        typed. Sources under `paths` that are no longer on disk are reported in `gone`, and
        removed with `prune`."""
        self._check_writable()
        paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        manifest = self.manifest
        root = Path(manifest.root) if manifest.root else None
        found = corpus.scan(paths, root=root, options=options, follow_links=follow_links)
        root = root or found.root
        known = manifest.sources
        by_source = {doc.source: doc for doc in found.documents}
        unchanged = [s for s, doc in by_source.items() if known.get(s) == doc.sha256]
        replaced = [s for s in by_source if s in known and s not in unchanged]
        scopes = [corpus.source_name(Path(p), root) for p in paths]
        unread = {corpus.source_name(Path(skip.path.rstrip("/")), root) for skip in found.skipped}
        gone = sorted(s for s in known if s not in by_source and corpus.in_scope(s, scopes)
                      and not corpus.in_scope(s, unread))
        fresh = [d for d in found.documents if d.source not in unchanged]
        prepared, vectors, _ = _embed(fresh, self.encoder, max_tokens, progress)
        doomed = replaced + (gone if prune else [])
        self.store.remove_sources(doomed)
        self.store.manifest = _noted(self.store.manifest, doomed, prepared, root)
        self.store.add(prepared.passages, vectors, {d.source: d.sha256 for d in fresh})
        self.report = UpdateReport(
            added=[s for s in by_source if s not in known], replaced=replaced,
            unchanged=unchanged, passages=len(prepared.passages), files=len(found.files),
            skipped=found.skipped, dropped=dict(prepared.dropped_total()), gone=gone,
            pruned=prune)
        return self.report

    def _check_writable(self) -> None:
        if isinstance(self.store, VectorIndex) and ann.is_read_only(self.store.faiss_index):
            raise QueryError("this index was opened read-only (memory-mapped); open it with "
                             "semsearch.load(path, writable=True) to add or remove")

    def remove(self, source: str) -> int:
        """Remove every passage of `source` (a name as indexed); returns how many went."""
        if source not in self.manifest.sources:
            known = ", ".join(sorted(self.manifest.sources)[:5]) or "none"
            raise QueryError(f"no source {source!r} in this index (sources: {known}"
                             f"{', …' if len(self.manifest.sources) > 5 else ''})")
        self._check_writable()
        count = self.store.remove_sources([source])
        self.store.manifest = _noted(self.store.manifest, [source], None, None)
        return count

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, model: str | None = None, *,
             writable: bool = False) -> Index:
        """Open a saved index (default: the seeds index); `model` must be the one it was built
        with, and defaults to it. `writable` loads the vectors into memory so that `add` and
        `remove` can change them (otherwise they may be memory-mapped, read-only)."""
        if path is not None and not isinstance(path, str | os.PathLike):
            raise QueryError(f"an index path must be a str or Path, not {type(path).__name__}")
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
        if isinstance(queries, str):  # one query: unambiguous, so take it as such
            queries = [queries]
        if not isinstance(queries, Sequence):
            raise QueryError(f"queries must be a list of texts, not {type(queries).__name__}")
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
            dense = self.store.search(self._query_vectors(cleaned), depth, where)
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

    def _query_vectors(self, queries: Sequence[str]) -> np.ndarray:
        """Query embeddings as `DENSE_QUERY` says: the query as written, folded to simplified,
        or both (the normalised mean of the two vectors; a query with nothing to fold is
        embedded once)."""
        if DENSE_QUERY == "written":
            return self.encoder.encode_queries(queries)
        folded = [to_simplified(q) for q in queries]
        if DENSE_QUERY == "folded":
            return self.encoder.encode_queries(folded)
        vectors = self.encoder.encode_queries(queries)
        changed = [i for i, (q, f) in enumerate(zip(queries, folded, strict=True)) if q != f]
        if changed:
            mixed = vectors[changed] + self.encoder.encode_queries([folded[i] for i in changed])
            vectors[changed] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
        return vectors

    def _hits(self, ranked: Sequence[tuple[int, float]], k: int) -> list[Hit]:
        """The first `k` of `ranked` (id, score) pairs as hits, skipping near-duplicates."""
        hits: list[Hit] = []
        collapser = Collapser()
        found = self.store.get(idx for idx, _ in ranked)
        for idx, score in ranked:
            passage = found[idx]
            if not collapser.keep(passage):
                continue
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
           progress: BuildProgress | None,
           checkpoint: Path | None = None) -> tuple[Prepared, np.ndarray, int]:
    """Passages of `documents` (with what cleaning dropped), their vectors (the passage text
    alone: see Passage), and how many of those a `checkpoint` already held."""
    budget = min(max_tokens, encoder.max_tokens - 16)
    prepared = prepare(documents, encoder.count_tokens, budget)
    if progress is not None:
        progress.start(len(prepared.passages), "encoding passages")
    info = encoder.info
    vectors, resumed = encode_resumable(
        [p.text for p in prepared.passages], encoder.encode_passages, checkpoint,
        f"{info.name} {info.fingerprint} {encoder.backend} {budget}", info.dimension,
        progress.advance if progress else None)
    return prepared, vectors, resumed


def _noted(manifest: Manifest, removed: Sequence[str], prepared: Prepared | None,
           root: Path | None) -> Manifest:
    """The manifest with the dropped-line counts and web sources of `removed` sources gone and
    those of `prepared` recorded, and the root recorded if it had none."""
    gone = set(removed) | (set(prepared.dropped) | set(prepared.web) if prepared else set())
    dropped = {s: r for s, r in manifest.dropped.items() if s not in gone}
    web = [s for s in manifest.web if s not in gone]
    if prepared is not None:
        dropped.update(prepared.dropped)
        web.extend(prepared.web)
    return replace(manifest, dropped=dropped, web=sorted(set(web)),
                   root=manifest.root or (str(root) if root else ""))


def build(paths: Iterable[str | os.PathLike[str]], model: str | None = None, *,
          progress: BuildProgress | None = None, backend: Backend | None = None,
          index_type: str = "auto", options: corpus.Options | None = None) -> Index:
    """Build an in-memory index from files and directories (see `Index.build`)."""
    return Index.build(paths, model, progress=progress, backend=backend, index_type=index_type,
                       options=options)


def load(path: str | os.PathLike[str] | None = None, model: str | None = None, *,
         writable: bool = False) -> Index:
    """Open a saved index; without a path, the seeds index (see `Index.load`)."""
    return Index.load(path, model, writable=writable)


def connect(uri: str | os.PathLike[str] | None = None, collection: str | None = None,
            model: str | None = None) -> Index:
    """Open an index in Milvus (see `Index.open`): `semsearch.connect("./x.db")`."""
    return Index.open(uri, collection, model)
