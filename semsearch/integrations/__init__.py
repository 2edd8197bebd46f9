"""Retrievers for RAG frameworks: `integrations.langchain` (extra `langchain`) and
`integrations.llamaindex` (extra `llamaindex`).

This package imports neither framework: each adapter module does, and raises
`MissingDependencyError` naming its extra when the framework is not installed. What the two
share lives here: the search options they take, and how a hit becomes text and metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from semsearch.context import check_span
from semsearch.errors import QueryError
from semsearch.index import Index
from semsearch.search import DEFAULT_FUSION, DEFAULT_MODE, Fusion, Hit, Mode, check_options
from semsearch.stores import Location

DEFAULT_K = 4  # both frameworks' own default number of documents


@dataclass(frozen=True)
class Options:
    """How a retriever searches: `k` hits, `mode`, `fusion`, a `where` filter, and `context`
    passages before and after each hit (0: the hit's passage alone)."""

    k: int = DEFAULT_K
    mode: Mode = DEFAULT_MODE
    fusion: Fusion = DEFAULT_FUSION
    where: str | None = None
    context: int = 0

    def __post_init__(self) -> None:
        check_options(self.k, self.mode, self.fusion)
        check_span(self.context, self.context)
        if self.where is not None and not isinstance(self.where, str):
            raise QueryError(f"a filter must be text, not {type(self.where).__name__}")

    def updated(self, changes: dict[str, Any]) -> Options:
        """These options with some replaced for one call (QueryError for an unknown name)."""
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise QueryError(f"unknown search option(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(self.__dataclass_fields__)}")
        return Options(**{**self.__dict__, **changes}) if changes else self


def open_index(index: Index | Location | None) -> Index:
    """`index` itself, or the index at a directory or Milvus URI (None: the default index,
    as `semsearch.open()`)."""
    return index if isinstance(index, Index) else Index.open(index)


def retrieve(index: Index, query: str, options: Options) -> list[Hit]:
    """The hits for `query` under `options` (with their context when asked for)."""
    return index.search(query, options.k, options.mode, options.fusion, options.where,
                        context=options.context)


def content(hit: Hit) -> str:
    """The text a framework hands on: the hit's context when it has one, else its passage."""
    return hit.context.text if hit.context is not None else hit.text


def metadata(hit: Hit) -> dict[str, Any]:
    """What a document carries besides its text: where the hit is (source, paragraph, start,
    end, heading; a PDF's page), its score, rank and passage id, the record's fields, and
    with context the span and passage ids the text covers. Record fields come first, so a
    field named like one of these cannot mask it."""
    found: dict[str, Any] = {**hit.metadata, "source": hit.source, "paragraph": hit.paragraph,
                             "start": hit.start, "end": hit.end, "heading": hit.heading,
                             "score": hit.score, "rank": hit.rank, "id": hit.id}
    if hit.context is not None:
        found["context_start"] = hit.context.start
        found["context_end"] = hit.context.end
        found["context_ids"] = [p.id for p in hit.context.passages]
    return found
