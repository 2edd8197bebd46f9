"""semsearch as a LlamaIndex retriever (extra `llamaindex`: `pip install
'semsearch[llamaindex]'`).

    from semsearch.integrations.llamaindex import SemsearchRetriever
    retriever = SemsearchRetriever(semsearch.open(), k=3, context=1)
    nodes = retriever.retrieve("夫妻党员抗疫")       # or: await retriever.aretrieve(...)

Each `NodeWithScore` holds a `TextNode` with the hit's text (with `context`, the merged
passages around it), its offsets as `start_char_idx`/`end_char_idx`, and the same metadata as
the LangChain retriever (see `integrations.metadata`); the score is the hit's. Only source,
heading, page and record fields are shown to the LLM and the embedder: ids and offsets are
kept out of prompts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from semsearch.errors import MissingDependencyError
from semsearch.index import Index
from semsearch.integrations import DEFAULT_K, Options, content, metadata, open_index, retrieve
from semsearch.search import DEFAULT_FUSION, DEFAULT_MODE, Fusion, Hit, Mode
from semsearch.stores import Location

try:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as exc:  # the extra is not installed
    raise MissingDependencyError("semsearch.integrations.llamaindex (the LlamaIndex retriever)",
                                 "llamaindex") from exc

__all__ = ["SemsearchRetriever"]

# metadata a prompt or an embedding gains nothing from
_HIDDEN = ["paragraph", "start", "end", "score", "rank", "id", "context_start", "context_end",
           "context_ids"]


class SemsearchRetriever(BaseRetriever):
    """A LlamaIndex `BaseRetriever` over a semsearch index: `index` is an `Index`, a directory
    or Milvus URI, or None for the default index; `k` hits, `mode` (dense, bm25, hybrid),
    `fusion`, a `where` filter and `context` passages before and after each hit. Bad options
    raise `QueryError` when the retriever is made."""

    def __init__(self, index: Index | Location | None = None, *, k: int = DEFAULT_K,
                 mode: Mode = DEFAULT_MODE, fusion: Fusion = DEFAULT_FUSION,
                 where: str | None = None, context: int = 0,
                 callback_manager: CallbackManager | None = None, verbose: bool = False) -> None:
        self.options = Options(k, mode, fusion, where, context)
        self.index = open_index(index)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = retrieve(self.index, query_bundle.query_str, self.options)
        return [NodeWithScore(node=_node(hit), score=hit.score) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # the search is blocking (encoder, FAISS or a Milvus call): off the event loop
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _node(hit: Hit) -> TextNode:
    span = hit.context or hit
    found: dict[str, Any] = metadata(hit)
    return TextNode(id_=str(hit.id), text=content(hit), metadata=found,
                    start_char_idx=span.start, end_char_idx=span.end,
                    excluded_llm_metadata_keys=[k for k in _HIDDEN if k in found],
                    excluded_embed_metadata_keys=[k for k in _HIDDEN if k in found])
