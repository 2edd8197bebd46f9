"""semsearch as a LlamaIndex retriever (extra `llamaindex`: `pip install
'semsearch[llamaindex]'`).

    from semsearch.integrations.llamaindex import SemsearchRetriever
    retriever = SemsearchRetriever(semsearch.open(), similarity_top_k=3, context=1)
    nodes = retriever.retrieve("夫妻党员抗疫")       # or: await retriever.aretrieve(...)

Each `NodeWithScore` holds a `TextNode` with the hit's text (with `context`, the merged
passages around it), its passage id as node id, its offsets as `start_char_idx`/`end_char_idx`,
its source document as the SOURCE relationship (so `ref_doc_id` is the source name), and the
same metadata as the LangChain retriever (see `integrations.metadata`); the score is the
NodeWithScore's, not metadata, so the same passage from two retrievers is one node to
`QueryFusionRetriever`. Only source, heading, page and record fields are shown to the LLM and
the embedder: ids and offsets are kept out of prompts. The options (`similarity_top_k` or `k`,
`mode`, `fusion`, `where` or `filters=MetadataFilters(...)`, `context`) are attributes read at
each call.
"""

from __future__ import annotations

import asyncio
from typing import Any

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
from semsearch.integrations.filters import to_where
from semsearch.search import DEFAULT_FUSION, DEFAULT_MODE, Fusion, Hit, Mode
from semsearch.stores import Location

try:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import (
        NodeRelationship,
        NodeWithScore,
        QueryBundle,
        RelatedNodeInfo,
        TextNode,
    )
    from llama_index.core.vector_stores.types import (
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
    )
except ImportError as exc:  # the extra is not installed
    raise MissingDependencyError("semsearch.integrations.llamaindex (the LlamaIndex retriever)",
                                 "llamaindex") from exc

__all__ = ["SemsearchRetriever", "to_where_text"]

# metadata a prompt or an embedding gains nothing from
_HIDDEN = ["paragraph", "start", "end", "id", "context_start", "context_end", "context_ids",
           "exact"]
_OPERATORS = {FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt",
              FilterOperator.GTE: "$gte", FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte",
              FilterOperator.IN: "$in", FilterOperator.NIN: "$nin"}


class SemsearchRetriever(BaseRetriever):
    """A LlamaIndex `BaseRetriever` over a semsearch index: `index` is an `Index`, a directory
    or Milvus URI, or None for the default index; `similarity_top_k` (or `k`) hits, `mode`
    (dense, bm25, hybrid), `fusion`, a filter as `where` text or LlamaIndex `filters`, and
    `context` passages before and after each hit. Bad options, a filter naming an unknown
    field included, raise `QueryError` when the retriever is made."""

    def __init__(self, index: Index | Location | None = None, *, k: int | None = None,
                 similarity_top_k: int | None = None, mode: Mode = DEFAULT_MODE,
                 fusion: Fusion = DEFAULT_FUSION, where: str | None = None,
                 filters: MetadataFilters | None = None, context: int = 0, exact: bool = True,
                 callback_manager: CallbackManager | None = None, verbose: bool = False) -> None:
        if k is not None and similarity_top_k is not None and k != similarity_top_k:
            raise QueryError("give the number of hits as k or as similarity_top_k, not both")
        self.similarity_top_k = similarity_top_k if similarity_top_k is not None else \
            k if k is not None else DEFAULT_K
        self.mode, self.fusion, self.where, self.context = mode, fusion, where, context
        self.exact = exact
        self.filters = filters
        self.index = open_index(index)
        self.options()  # refuse bad options now, not at the first call
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def k(self) -> int:
        """The number of hits (`similarity_top_k`, LlamaIndex's name for it)."""
        return self.similarity_top_k

    @k.setter
    def k(self, value: int) -> None:
        self.similarity_top_k = value

    def options(self) -> Options:
        """The search options as the attributes are now (`where` and `filters` both apply);
        QueryError for a bad one or a filter this index cannot apply."""
        where = self.where
        if self.filters is not None:
            extra = to_where_text(self.filters)
            where = extra if where is None or not str(where).strip() else \
                f"({where}) and ({extra})"
        found = Options(self.similarity_top_k, self.mode, self.fusion, where, self.context,
                        self.exact)
        check_where(self.index, found.where)
        return found

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        options = self.options()
        hits = retrieve(self.index, query_bundle.query_str, options)
        return [NodeWithScore(node=_node(hit, *document(self.index, hit, options.exact)),
                              score=hit.score) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # the search is blocking (encoder, FAISS or a Milvus call): off the event loop
        return await asyncio.to_thread(self._retrieve, query_bundle)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with where its index lives, not the index (locks, a model, a connection):
        UsageError for an index only in memory."""
        return {**self.__dict__, "index": Reopen.of(self.index)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        found = state["index"]
        self.__dict__.update({**state, "index": found.open() if isinstance(found, Reopen)
                              else found})


def to_where_text(found: MetadataFilters) -> str:
    """LlamaIndex `MetadataFilters` as a `where` expression (and/or/not of comparisons);
    QueryError for an operator semsearch's filters cannot express (text_match, contains, ...)."""
    if not isinstance(found, MetadataFilters):
        raise QueryError(f"filters must be LlamaIndex MetadataFilters, not "
                         f"{type(found).__name__}")
    parts = []
    for item in found.filters:
        if isinstance(item, MetadataFilters):
            parts.append(to_where_text(item))
            continue
        operator = item.operator if isinstance(item, MetadataFilter) else FilterOperator.EQ
        if operator not in _OPERATORS:
            raise QueryError(f"filter operator {operator.value!r} on {item.key!r} is not "
                             f"supported; use one of "
                             f"{', '.join(op.value for op in _OPERATORS)}, or a `where`")
        parts.append(to_where({item.key: {_OPERATORS[operator]: item.value}}))
    if not parts:
        raise QueryError("MetadataFilters with no filters")
    condition = found.condition or FilterCondition.AND
    joined = f" {'and' if condition == FilterCondition.AND else 'or'} ".join(
        f"({part})" for part in parts)
    return f"not ({joined})" if condition == FilterCondition.NOT else joined  # NOT: none match


def _node(hit: Hit, text: str, found: dict[str, Any]) -> TextNode:
    span = hit.context or hit
    return TextNode(id_=str(hit.id), text=text, metadata=found,
                    start_char_idx=span.start, end_char_idx=span.end,
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=hit.source)},
                    excluded_llm_metadata_keys=[k for k in _HIDDEN if k in found],
                    excluded_embed_metadata_keys=[k for k in _HIDDEN if k in found])
