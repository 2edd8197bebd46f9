"""Context around a hit: the neighbouring passages of its document, merged into one span.

A document's passages are stored under consecutive ids in reading order (a store adds them as
passages.prepare cut them, and migration keeps ids), so the neighbours of passage `i` are the
ids next to `i` that share its source: one batched `Store.get` per search, the same on FAISS
and Milvus. A record (a JSONL/CSV/JSON row) is its own source (`file#id`), so its context is
the record itself and never reaches into the next record. Neighbours are merged by their
offsets: a passage that overlaps the text so far adds only what it does not repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import pairwise
from typing import Any

from semsearch.errors import QueryError
from semsearch.passages import Passage
from semsearch.stores.base import Store

MAX_SPAN = 50  # neighbours on each side: beyond this a context is a document, not a context


@dataclass(frozen=True, kw_only=True)
class ContextPassage(Passage):
    """A passage of a context, with its stable id."""

    id: int

    def to_dict(self) -> dict[str, Any]:
        """As JSON: id, text, start, end, paragraph, heading, metadata."""
        return {"id": self.id, "text": self.text, "start": self.start, "end": self.end,
                "paragraph": self.paragraph, "heading": self.heading,
                "metadata": self.metadata}


@dataclass(frozen=True)
class Context:
    """A hit with the passages around it in its document: `text` is their merged text (no
    overlap repeated), `start`/`end` its offsets in the document, `passages` the passages it
    is made of in reading order, the hit's own included."""

    text: str
    start: int
    end: int
    passages: tuple[ContextPassage, ...]

    @property
    def source(self) -> str:
        """The document the context comes from (every passage of it has this source)."""
        return self.passages[0].source

    def to_dict(self) -> dict[str, Any]:
        """As JSON: what a hit's "context" holds in --json output and the service."""
        return {"text": self.text, "start": self.start, "end": self.end,
                "passages": [p.to_dict() for p in self.passages]}


def check_span(before: int, after: int) -> None:
    """QueryError unless `before` and `after` are whole numbers in 0..MAX_SPAN."""
    for name, value in (("before", before), ("after", after)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SPAN:
            raise QueryError(f"context {name} must be a whole number from 0 to {MAX_SPAN}, "
                             f"got {value!r}")


def contexts(store: Store, hits: Sequence[tuple[int, Passage]], before: int = 1,
             after: int = 1) -> list[Context]:
    """The context of each (id, passage) hit: up to `before` passages before it and `after`
    after it in the same document, fetched from `store` in one call."""
    check_span(before, after)
    wanted = {i for pid, _ in hits for i in range(max(0, pid - before), pid + after + 1)}
    found = store.get(sorted(wanted))
    committed = store.manifest.next_id  # Milvus: rows past it are an unfinished write
    result = []
    for pid, passage in hits:
        around = [_with_id(passage, pid)]
        for step, count in ((-1, before), (1, after)):
            for i in range(pid + step, pid + step * (count + 1), step):
                near = found.get(i)
                if near is None or near.source != passage.source or i >= committed:
                    break  # the document ends here: its ids are consecutive
                around.append(_with_id(near, i))
        result.append(merge(around))
    return result


def _with_id(passage: Passage, pid: int) -> ContextPassage:
    """`passage` (a Hit too: only its Passage fields are taken) as a ContextPassage."""
    return ContextPassage(**{f.name: getattr(passage, f.name) for f in fields(Passage)},
                          id=pid)


def merge(passages: Sequence[ContextPassage]) -> Context:
    """One span of text from passages of one document: ordered by offset, each adding only
    what the text so far does not already cover; a paragraph break between paragraphs."""
    if not passages:
        raise ValueError("a context needs at least one passage")
    ordered = sorted(passages, key=lambda p: (p.start, p.end, p.id))
    first = ordered[0]
    text, end = first.text, first.end
    for previous, passage in pairwise(ordered):
        if passage.end <= end:
            continue  # wholly inside what is already there
        if passage.start < end:
            text += passage.text[_overlap(text, passage.text, end - passage.start):]
        elif passage.paragraph != previous.paragraph:
            text += "\n" + passage.text
        else:  # the next sentences of the same paragraph
            gap = passage.start > end and text[-1:].isascii() and passage.text[:1].isascii()
            text += (" " if gap else "") + passage.text
        end = passage.end
    return Context(text, first.start, end, tuple(ordered))


def _overlap(left: str, right: str, guess: int) -> int:
    """How many leading characters of `right` repeat the end of `left`: the offsets' overlap
    (`guess`) when the texts agree there, else the longest textual overlap that is at least
    half of it (cleaning may have changed whitespace), else `guess`."""
    guess = min(guess, len(right))
    if left.endswith(right[:guess]):
        return guess
    for size in range(min(len(left), len(right)), max(1, guess // 2) - 1, -1):
        if left.endswith(right[:size]):
            return size
    return guess
