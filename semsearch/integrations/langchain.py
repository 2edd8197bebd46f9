"""semsearch as a LangChain retriever (extra `langchain`: `pip install 'semsearch[langchain]'`).

    from semsearch.integrations.langchain import SemsearchRetriever
    retriever = SemsearchRetriever(index=semsearch.open(), k=3, context=1)
    docs = retriever.invoke("夫妻党员抗疫")          # or: await retriever.ainvoke(...)

Each `Document` holds the hit's text (with `context`, the merged passages around it) and its
metadata: source, paragraph, start, end, heading, page, score, rank, id and the record's
fields (see `integrations.metadata`). `invoke(query, k=..., where=...)` overrides an option for
one call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from semsearch.errors import MissingDependencyError, QueryError
from semsearch.index import Index
from semsearch.integrations import DEFAULT_K, Options, content, metadata, open_index, retrieve
from semsearch.search import DEFAULT_FUSION, DEFAULT_MODE, Fusion, Mode

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # the extra is not installed
    raise MissingDependencyError("semsearch.integrations.langchain (the LangChain retriever)",
                                 "langchain") from exc

__all__ = ["SemsearchRetriever"]

_OPTIONS = ("k", "mode", "fusion", "where", "context")


class SemsearchRetriever(BaseRetriever):
    """A LangChain `BaseRetriever` over a semsearch index: `index` is an `Index`, a directory
    or Milvus URI, or None for the default index; `k` hits, `mode` (dense, bm25, hybrid),
    `fusion`, a `where` filter and `context` passages before and after each hit. Bad options
    raise `QueryError` when the retriever is made, not at its first call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any = Field(default=None, description="An Index, a directory or Milvus URI, or "
                                                 "None for the default index.")
    k: int = DEFAULT_K
    mode: Mode = DEFAULT_MODE
    fusion: Fusion = DEFAULT_FUSION
    where: str | None = None
    context: int = 0
    _options: Options = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _check(cls, values: Any) -> Any:
        """Refuse bad options as semsearch does (QueryError, before pydantic coerces them),
        and open the index if a location was given."""
        if isinstance(values, dict):
            Options(**{name: values[name] for name in _OPTIONS if name in values})
            if not isinstance(values.get("index"), Index):
                values = {**values, "index": open_index(values.get("index"))}
        return values

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._options = Options(self.k, self.mode, self.fusion, self.where, self.context)

    def _search(self, query: str, changes: dict[str, Any]) -> list[Document]:
        if not isinstance(self.index, Index):
            raise QueryError(f"index must be a semsearch Index, not {type(self.index).__name__}")
        hits = retrieve(self.index, query, self._options.updated(changes))
        return [Document(page_content=content(hit), metadata=metadata(hit), id=str(hit.id))
                for hit in hits]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        return self._search(query, kwargs)

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        # the search is blocking (encoder, FAISS or a Milvus call): off the event loop
        return await asyncio.to_thread(self._search, query, kwargs)
