"""semsearch as a LangChain retriever (extra `langchain`: `pip install 'semsearch[langchain]'`).

    from semsearch.integrations.langchain import SemsearchRetriever
    retriever = SemsearchRetriever(index=semsearch.open(), k=3, context=1)
    docs = retriever.invoke("夫妻党员抗疫")          # or: await retriever.ainvoke(...)

Each `Document` holds the hit's text (with `context`, the merged passages around it), its
passage id as `Document.id`, and metadata: source, paragraph, start, end, heading, page, id and
the record's fields (see `integrations.metadata`); no score, so the same passage from two
queries is one document to `MultiQueryRetriever`. Options are read when the retriever is
called: `retriever.k = 1`, `model_copy(update=...)`, `search_kwargs` (as `VectorStoreRetriever`
takes them: k, filter, fetch_k, lambda_mult, score_threshold) and `invoke(query, k=...)` all
count, the last winning. `search_type` is `similarity`, `mmr` or `similarity_score_threshold`.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from semsearch.errors import MissingDependencyError, QueryError
from semsearch.index import Index
from semsearch.integrations import (
    DEFAULT_K,
    Options,
    Reopen,
    check_where,
    document,
    open_index,
    retrieve,
)
from semsearch.search import DEFAULT_FUSION, DEFAULT_MODE, Fusion, Hit, Mode, query_vectors

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.vectorstores.utils import maximal_marginal_relevance
except ImportError as exc:  # the extra is not installed
    raise MissingDependencyError("semsearch.integrations.langchain (the LangChain retriever)",
                                 "langchain") from exc

__all__ = ["SemsearchRetriever"]

_OPTIONS = ("k", "mode", "fusion", "where", "context", "exact")
SEARCH_TYPES = ("similarity", "mmr", "similarity_score_threshold")
DEFAULT_FETCH_K = 20  # VectorStore.max_marginal_relevance_search's defaults
DEFAULT_LAMBDA = 0.5


class SemsearchRetriever(BaseRetriever):
    """A LangChain `BaseRetriever` over a semsearch index: `index` is an `Index`, a directory
    or Milvus URI, or None for the default index; `k` hits, `mode` (dense, bm25, hybrid),
    `fusion`, a `where` filter (text, or a dict as LangChain's vector stores take) and
    `context` passages before and after each hit; `search_type` and `search_kwargs` as
    `VectorStoreRetriever`'s. Bad options, a filter naming an unknown field included, raise
    `QueryError` when the retriever is made, not at its first call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    allowed_search_types: ClassVar[tuple[str, ...]] = SEARCH_TYPES

    index: Any = Field(default=None, description="An Index, a directory or Milvus URI, or "
                                                 "None for the default index.")
    k: int = DEFAULT_K
    mode: Mode = DEFAULT_MODE
    fusion: Fusion = DEFAULT_FUSION
    where: str | dict[str, Any] | None = None
    context: int = 0
    exact: bool = True
    search_type: str = "similarity"
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _check(cls, values: Any) -> Any:
        """Refuse bad options as semsearch does (QueryError, before pydantic coerces them),
        open the index if a location was given, and check the filter against its fields."""
        if isinstance(values, dict):
            if not isinstance(values.get("index"), Index):
                values = {**values, "index": open_index(values.get("index"))}
            given = {name: values[name] for name in _OPTIONS if name in values}
            _settings(values["index"], given, values.get("search_type", "similarity"),
                      _renamed(dict(values.get("search_kwargs") or {})))
        return values

    def _search(self, query: str, changes: dict[str, Any]) -> list[Document]:
        if not isinstance(self.index, Index):
            raise QueryError(f"index must be a semsearch Index, not {type(self.index).__name__}")
        own = {name: getattr(self, name) for name in _OPTIONS}
        options, kind, extra = _settings(self.index, own, self.search_type,
                                         {**_renamed(self.search_kwargs), **_renamed(changes)})
        if kind == "mmr":
            hits = _mmr(self.index, query, options, extra)
        else:
            hits = retrieve(self.index, query, options)
            if kind == "similarity_score_threshold":
                hits = [hit for hit in hits if hit.score >= extra["score_threshold"]]
        found = [document(self.index, hit, options.exact) for hit in hits]
        return [Document(page_content=text, metadata=meta, id=str(hit.id))
                for hit, (text, meta) in zip(hits, found, strict=True)]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        return self._search(query, kwargs)

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        # the search is blocking (encoder, FAISS or a Milvus call): off the event loop
        return await asyncio.to_thread(self._search, query, kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickled with where its index lives, not the index (locks, a model, a connection):
        UsageError for an index only in memory."""
        state = super().__getstate__()
        if isinstance(self.index, Index):
            state["__dict__"] = {**state["__dict__"], "index": Reopen.of(self.index)}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        found = state["__dict__"].get("index")
        if isinstance(found, Reopen):
            state = {**state, "__dict__": {**state["__dict__"], "index": found.open()}}
        super().__setstate__(state)


def _renamed(changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` with LangChain's `filter` as semsearch's `where`."""
    if "filter" not in changes:
        return changes
    if "where" in changes:
        raise QueryError("give a filter as `where` or as `filter`, not both")
    return {("where" if name == "filter" else name): value for name, value in changes.items()}


def _settings(index: Index, own: dict[str, Any], search_type: Any,
              changes: dict[str, Any]) -> tuple[Options, str, dict[str, Any]]:
    """The options of one call: the retriever's own, then `search_kwargs` and the call's
    (`filter` is `where` by LangChain's name); with the search type and its parameters
    (fetch_k, lambda_mult, score_threshold). QueryError for anything unknown or out of range."""
    changes = dict(changes)
    kind = changes.pop("search_type", search_type)
    if kind not in SEARCH_TYPES:
        raise QueryError(f"unknown search_type {kind!r}; choose one of {', '.join(SEARCH_TYPES)}")
    extra: dict[str, Any] = {name: changes.pop(name) for name in _EXTRA[kind]
                             if name in changes}
    for name in sorted(changes):
        owner = next((other for other, names in _EXTRA.items() if name in names), None)
        if owner is not None:
            raise QueryError(f"{name} applies to search_type {owner!r}, not {kind!r}")
    unknown = sorted(set(changes) - set(_OPTIONS))
    if unknown:
        raise QueryError(f"unknown search option(s) {', '.join(unknown)}; choose from "
                         f"{', '.join([*_OPTIONS, 'filter', 'search_type', *_EXTRA[kind]])}")
    options = Options(**{**own, **changes})
    check_where(index, options.where)
    if kind == "mmr":
        extra.setdefault("fetch_k", max(DEFAULT_FETCH_K, options.k))
        extra.setdefault("lambda_mult", DEFAULT_LAMBDA)
        fetch_k, lam = extra["fetch_k"], extra["lambda_mult"]
        if isinstance(fetch_k, bool) or not isinstance(fetch_k, int) or fetch_k < options.k:
            raise QueryError(f"fetch_k must be a whole number ≥ k ({options.k}), got {fetch_k!r}")
        if not _number(lam) or not 0 <= lam <= 1:
            raise QueryError(f"lambda_mult must be a number from 0 to 1, got {lam!r}")
    if kind == "similarity_score_threshold" and not _number(extra.get("score_threshold")):
        raise QueryError("search_type 'similarity_score_threshold' needs a number "
                         "score_threshold (in search_kwargs), compared with each hit's "
                         "score: cosine in dense mode, the fused score in hybrid, BM25's "
                         "in bm25")
    return options, kind, extra


_EXTRA: dict[str, tuple[str, ...]] = {"similarity": (), "mmr": ("fetch_k", "lambda_mult"),
                                      "similarity_score_threshold": ("score_threshold",)}


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and np.isfinite(value)


def _mmr(index: Index, query: str, options: Options, extra: dict[str, Any]) -> list[Hit]:
    """Maximal marginal relevance over the passages' own vectors: the `fetch_k` best hits,
    of which `k` are picked by LangChain's `maximal_marginal_relevance` (similarity to the
    query traded against similarity to those already picked, by `lambda_mult`)."""
    fetched = retrieve(index, query, replace(options, k=extra["fetch_k"]))
    if not fetched:
        return []
    vectors = index.store.vectors(np.array([hit.id for hit in fetched]))
    asked = query_vectors(index.encoder, [query])[0]
    picked = maximal_marginal_relevance(asked, vectors.tolist(), extra["lambda_mult"], options.k)
    return [replace(fetched[i], rank=n) for n, i in enumerate(picked, start=1)]
