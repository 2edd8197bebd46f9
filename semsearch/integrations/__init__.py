"""Retrievers for RAG frameworks: `integrations.langchain` (extra `langchain`) and
`integrations.llamaindex` (extra `llamaindex`).

This package imports neither framework: each adapter module does, and raises
`MissingDependencyError` naming its extra when the framework is not installed. What the two
share lives here: the search options they take (read at each call), how a hit becomes text and
metadata, and where a pickled retriever finds its index again. Dict filters are translated in
`integrations.filters`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semsearch import search
from semsearch.context import check_span
from semsearch.errors import QueryError, UsageError
from semsearch.index import Index
from semsearch.integrations.filters import to_where
from semsearch.search import DEFAULT_FUSION, DEFAULT_MODE, Fusion, Hit, Mode, check_options
from semsearch.sources import exact_text
from semsearch.stores import Location

DEFAULT_K = 4  # both frameworks' own default number of documents


@dataclass(frozen=True)
class Options:
    """How a retriever searches: `k` hits, `mode`, `fusion`, a `where` filter, `context`
    passages before and after each hit (0: the hit's passage alone), and whether the text is
    the `exact` slice of the source between the offsets where the source is there (see
    semsearch.sources)."""

    k: int = DEFAULT_K
    mode: Mode = DEFAULT_MODE
    fusion: Fusion = DEFAULT_FUSION
    where: str | None = None
    context: int = 0
    exact: bool = True

    def __post_init__(self) -> None:
        check_options(self.k, self.mode, self.fusion)
        check_span(self.context, self.context)
        if isinstance(self.where, Mapping):  # a dict filter, as LangChain's stores take them
            object.__setattr__(self, "where", to_where(self.where))
        if not isinstance(self.exact, bool):
            raise QueryError(f"exact must be true or false, got {self.exact!r}")
        if self.where is not None and not isinstance(self.where, str):
            raise QueryError(f"a filter must be text or a dict, not {type(self.where).__name__}")


def open_index(index: Index | Location | None) -> Index:
    """`index` itself, or the index at a directory or Milvus URI (None: the default index,
    as `semsearch.open()`)."""
    return index if isinstance(index, Index) else Index.open(index)


def check_where(index: Index, where: str | None) -> None:
    """QueryError unless `where` is a filter `index` can apply (known fields, well formed):
    a retriever checks its filter when it is made, not at its first call."""
    search.check_where(index.store, where)


@dataclass(frozen=True)
class Reopen:
    """Where an index lives, in place of the index itself when a retriever is pickled: a
    directory, or a Milvus URI and collection. `open()` opens it again (once per process)."""

    location: str
    collection: str | None = None

    @classmethod
    def of(cls, index: Index) -> Reopen:
        """UsageError for an index that exists only in memory: it cannot be reopened."""
        store = index.store
        if isinstance(getattr(store, "collection", None), str):  # Milvus
            return cls(store.uri, store.collection)  # type: ignore[attr-defined]
        if not store.location:
            raise UsageError("cannot pickle a retriever over an index that is only in memory: "
                             "save it first (index.save(path)), and the pickle reopens it "
                             "from there")
        return cls(store.location)

    def open(self) -> Index:
        key = (self.location, self.collection)
        if key not in _OPENED:
            _OPENED[key] = Index.open(self.location, collection=self.collection)
        return _OPENED[key]


# indexes reopened by unpickling, shared by the retrievers of one process (a worker that
# unpickles a retriever per task loads the index once)
_OPENED: dict[tuple[str, str | None], Index] = {}


def retrieve(index: Index, query: str, options: Options) -> list[Hit]:
    """The hits for `query` under `options` (with their context when asked for)."""
    return index.search(query, options.k, options.mode, options.fusion, options.where,
                        context=options.context)


def content(hit: Hit) -> str:
    """The hit's text as stored: its context's when it has one, else its passage's."""
    return hit.context.text if hit.context is not None else hit.text


def document(index: Index, hit: Hit, exact: bool) -> tuple[str, dict[str, Any]]:
    """The text and metadata a framework hands on. With `exact`, the text is the source's
    own `[start:end]` (the context's span with context) when the source file is there as
    indexed, and metadata `exact` says whether it is: offsets then slice the text a citation
    shows. Otherwise the stored text (cleaned whitespace, contexts joined by line breaks)."""
    sliced = exact_text(index.manifest, hit) if exact else None
    return (content(hit) if sliced is None else sliced), {**metadata(hit),
                                                          "exact": sliced is not None}


def metadata(hit: Hit) -> dict[str, Any]:
    """What a document carries besides its text: where the hit is (source, paragraph, start,
    end, heading; a PDF's page), its passage id, the record's fields, and with context the
    span and passage ids the text covers. Record fields come first, so a field named like one
    of these cannot mask it. No score or rank: the same passage found by two queries or two
    retrievers must be the same document to the frameworks' de-duplication (LlamaIndex keeps
    the score in `NodeWithScore.score`; a LangChain list is best first)."""
    found: dict[str, Any] = {**hit.metadata, "source": hit.source, "paragraph": hit.paragraph,
                             "start": hit.start, "end": hit.end, "heading": hit.heading,
                             "id": hit.id}
    if hit.context is not None:
        found["context_start"] = hit.context.start
        found["context_end"] = hit.context.end
        found["context_ids"] = [p.id for p in hit.context.passages]
    return found
