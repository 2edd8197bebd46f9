"""The public search object: build an index from files, save it, load it, query it.

    corpus.load → passages.make_passages → Encoder.encode_passages → VectorIndex → Hit

`Index` pairs a `VectorIndex` with the encoder that must embed its queries; the encoder is
loaded on first search, after checking that it is the model the index was built with.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch import corpus
from semsearch.errors import ModelMismatchError, QueryError
from semsearch.index import VectorIndex, corpus_fingerprint
from semsearch.models.encoder import Encoder, load_encoder
from semsearch.models.resolve import ModelRef, resolve
from semsearch.models.resolve import fingerprint as model_fingerprint
from semsearch.passages import MAX_TOKENS, Passage, make_passages

DEFAULT_INDEX = Path(__file__).resolve().parent.parent / "indexes" / "seeds"


def default_index_path() -> Path:
    """`SEMSEARCH_INDEX`, else the seeds index shipped in the repository."""
    env = os.environ.get("SEMSEARCH_INDEX")
    return Path(env) if env else DEFAULT_INDEX


@dataclass(frozen=True)
class Hit:
    """One search result: the passage, its score (cosine similarity), and where it came from."""

    rank: int
    score: float
    text: str
    source: str
    paragraph: int
    start: int
    end: int
    heading: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildProgress:
    """Callbacks for long steps: `start(total)` once, then `advance(n)` per encoded batch."""

    start: Callable[[int], None]
    advance: Callable[[int], None]


def check_query(query: str) -> str:
    """Reject queries that cannot mean anything; return the query stripped."""
    if not isinstance(query, str):
        raise QueryError(f"a query must be text, not {type(query).__name__}")
    text = "".join(ch for ch in query if unicodedata.category(ch) not in ("Cc", "Cs"))
    if not text.strip():
        raise QueryError("the query is empty; give some words to search for")
    return text.strip()


class Index:
    """A searchable collection: passages with their vectors and the model that embeds queries."""

    def __init__(self, store: VectorIndex, encoder: Encoder | None = None,
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
        return self.store.passages

    @classmethod
    def build(cls, paths: Iterable[str | os.PathLike[str]], model: str | None = None, *,
              max_tokens: int = MAX_TOKENS, progress: BuildProgress | None = None) -> Index:
        """Read, clean and split the files under `paths`, embed the passages, index them."""
        documents = corpus.load(paths)
        encoder = load_encoder(model)
        budget = min(max_tokens, encoder.max_tokens - 16)
        passages = make_passages(documents, encoder.count_tokens, budget)
        if progress is not None:
            progress.start(len(passages))
        vectors = encoder.encode_passages([p.embedding_text for p in passages],
                                          progress.advance if progress else None)
        store = VectorIndex.create(passages, vectors, encoder.info,
                                   corpus_fingerprint(documents))
        return cls(store, encoder)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, model: str | None = None) -> Index:
        """Open a saved index (default: the seeds index); `model` must be the one it was built
        with, and defaults to it."""
        store = VectorIndex.load(path or default_index_path())
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
        return cls(store, model=ref)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index directory atomically; returns its path."""
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

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The `k` passages most similar to `query`, best first."""
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """`search` for many queries at once (one encoder call, one FAISS call)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise QueryError(f"k must be a whole number ≥ 1, got {k!r}")
        cleaned = [check_query(q) for q in queries]
        if not cleaned:
            return []
        vectors = self.encoder.encode_queries(cleaned)
        # fetch extra candidates so that collapsing repeated text still leaves k hits
        scores, ids = self.store.search(vectors, k + 5)
        return [self._hits(row_scores, row_ids, k)
                for row_scores, row_ids in zip(scores, ids, strict=True)]

    def _hits(self, scores: Iterable[float], ids: Iterable[int], k: int) -> list[Hit]:
        hits: list[Hit] = []
        seen: set[str] = set()
        for score, idx in zip(scores, ids, strict=True):
            if idx < 0:
                continue
            passage = self.store.passages[int(idx)]
            key = "".join(passage.text.split())
            if key in seen:
                continue
            seen.add(key)
            hits.append(Hit(rank=len(hits) + 1, score=float(score), text=passage.text,
                            source=passage.source, paragraph=passage.paragraph,
                            start=passage.start, end=passage.end, heading=passage.heading,
                            metadata=passage.metadata))
            if len(hits) == k:
                break
        return hits


def build(paths: Iterable[str | os.PathLike[str]], model: str | None = None, *,
          progress: BuildProgress | None = None) -> Index:
    """Build an in-memory index from files and directories (see `Index.build`)."""
    return Index.build(paths, model, progress=progress)


def load(path: str | os.PathLike[str] | None = None, model: str | None = None) -> Index:
    """Open a saved index; without a path, the seeds index (see `Index.load`)."""
    return Index.load(path, model)
