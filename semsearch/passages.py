"""Cut clean paragraphs into passages: the units that are embedded, indexed and returned.

A paragraph longer than the token budget is split at sentence ends (。！？；… and . ! ?);
fragments too short to mean anything on their own are merged with their neighbours in the same
section. Every passage records its source, paragraph number and offsets into the original text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from semsearch.clean import (
    HEADING_JOINER,
    Dropped,
    Paragraph,
    clean_document,
    is_decoration,
    is_word,
)
from semsearch.corpus import Document

MAX_TOKENS = 256
MIN_CHARS = 30
JUNK_MAX_CHARS = 2  # a passage of at most this many characters joins a neighbour
HEADING_SEPARATOR = "\n"  # a title line above the text, as BM25 indexes it (see embedded_text)

TokenCounter = Callable[[str], int]

# A sentence: anything up to final punctuation (plus closing quotes), or a Latin sentence end
# followed by whitespace; the last sentence may have no final punctuation at all.
_SENTENCE = re.compile(
    r".+?(?:[。！？!?；;…]+[”’」』）)】》\"']*|\.(?=\s|$)[”’\"')]*|$)\s*", re.DOTALL
)
_CLAUSE = re.compile(r".+?(?:[，,、：:]\s*|$)", re.DOTALL)


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate for multilingual subword models: ~1 token per CJK character,
    ~1.3 per Latin word. Used when no model tokenizer is at hand."""
    cjk = len(re.findall(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", text))
    words = len(re.findall(r"[^\W\d_\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+|\d+", text))
    return cjk + int(words * 1.3) + 1


@dataclass(frozen=True)
class Passage:
    """A searchable unit of text and where it came from.

    `start`/`end` are character offsets into the source document's decoded text; `text` is the
    document's own words between them (so offsets hold); `paragraph` is the 1-based number of
    the paragraph (run of non-blank lines) it starts in; `heading` is the section context it
    sits under (the heading lines, which are not in `text`): embedded with the text, indexed by
    BM25 and shown with hits, so no line of a document is left out of what is searched.
    """

    text: str
    source: str
    paragraph: int
    start: int
    end: int
    heading: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def lexical_text(self) -> str:
        """The text BM25 indexes: the section heading adds its words to the passage's."""
        return self.embedded_text

    @property
    def embedded_text(self) -> str:
        """The text that is embedded (after the model's passage prompt): the heading as a line
        above the text, as BM25 indexes it. On the seeds (hybrid, 68 queries) embedding the
        heading this way moved Recall@5 0.956 -> 0.971 and MRR@10 0.893 -> 0.889; `heading —
        text` gave 0.956 and 0.883."""
        return f"{self.heading}{HEADING_SEPARATOR}{self.text}" if self.heading else self.text


def heading_path(heading: str) -> list[str]:
    """The headings of a passage's `heading`, outermost first (see `clean.join_headings`)."""
    return heading.split(HEADING_JOINER) if heading else []


def _pieces(text: str, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    spans = [(m.start(), m.end()) for m in pattern.finditer(text) if m.end() > m.start()]
    return spans or [(0, len(text))]


def _hard_split(text: str, start: int, end: int, count: TokenCounter,
                max_tokens: int) -> Iterator[tuple[int, int]]:
    """Split one over-long sentence at clause marks, then by length, to fit the budget."""
    for c_start, c_end in _pieces(text[start:end], _CLAUSE):
        a, b = start + c_start, start + c_end
        while count(text[a:b]) > max_tokens and b - a > 1:
            # shrink proportionally until the chunk fits
            size = max(1, (b - a) * max_tokens // max(count(text[a:b]), 1))
            while size > 1 and count(text[a : a + size]) > max_tokens:
                size = size * 3 // 4
            yield a, a + size
            a += size
        if b > a:
            yield a, b


def split_paragraph(text: str, count: TokenCounter = estimate_tokens,
                    max_tokens: int = MAX_TOKENS) -> list[tuple[int, int]]:
    """Split `text` into (start, end) spans of whole sentences, each within `max_tokens`."""
    if count(text) <= max_tokens:
        return [(0, len(text))]
    units: list[tuple[int, int]] = []
    for s, e in _pieces(text, _SENTENCE):
        if count(text[s:e]) > max_tokens:
            units.extend(_hard_split(text, s, e, count, max_tokens))
        else:
            units.append((s, e))
    chunks: list[tuple[int, int]] = []
    for s, e in units:
        if chunks and count(text[chunks[-1][0] : e]) <= max_tokens:
            chunks[-1] = (chunks[-1][0], e)
        else:
            chunks.append((s, e))
    return chunks


def _paragraph_passages(paragraph: Paragraph, source: str, metadata: dict[str, Any],
                        count: TokenCounter, max_tokens: int) -> Iterator[Passage]:
    heading = f"{paragraph.heading}{HEADING_SEPARATOR}" if paragraph.heading else ""
    budget = max(8, max_tokens - (count(heading) if heading else 0))
    for s, e in split_paragraph(paragraph.text, count, budget):
        chunk = paragraph.text[s:e]
        stripped = chunk.strip()
        if not stripped:
            continue
        lead = len(chunk) - len(chunk.lstrip())
        s2, e2 = s + lead, s + lead + len(stripped)
        yield Passage(stripped, source, paragraph.number, paragraph.locate(s2),
                      paragraph.locate(e2), paragraph.heading, metadata)


def _join_neighbours(passages: Sequence[Passage], joinable: Callable[[Passage, Passage], bool],
                     fits: Callable[[Passage, str], bool]) -> list[Passage]:
    """Each passage joined onto the one before it (a line apart) when both are of one source,
    section and metadata, `joinable(before, passage)` says so and `fits(before, joined text)`."""
    merged: list[Passage] = []
    for passage in passages:
        if merged:
            last = merged[-1]
            if (last.heading == passage.heading and last.source == passage.source
                    and last.metadata == passage.metadata and joinable(last, passage)):
                text = f"{last.text}\n{passage.text}"
                if fits(last, text):
                    merged[-1] = replace(last, text=text, end=passage.end)
                    continue
        merged.append(passage)
    return merged


def merge_fragments(passages: Sequence[Passage], count: TokenCounter = estimate_tokens,
                    max_tokens: int = MAX_TOKENS, min_chars: int = MIN_CHARS) -> list[Passage]:
    """Merge passages shorter than `min_chars` into a neighbour of the same section, when the
    result stays within the budget: a line of dialogue means little alone."""
    return _join_neighbours(
        passages, lambda a, b: len(a.text) < min_chars or len(b.text) < min_chars,
        lambda last, text: count(text) <= max_tokens)


_SECTION_NUMBER = re.compile(r"\s*\d{1,3}[.．]\d")  # "1.2 版本演进": a heading, not an item


def _item(text: str) -> bool:
    from semsearch.readers.pdf import ITEM

    return bool(ITEM.match(text)) and not _SECTION_NUMBER.match(text)


def pack_items(passages: Sequence[Passage], count: TokenCounter = estimate_tokens,
               max_tokens: int = MAX_TOKENS) -> list[Passage]:
    """Consecutive items of a list (passages that start with a number or bullet: `1.`, `(2)`,
    `一、`, `[3]`, `•`) on one page, in one section, packed into one passage within the budget,
    as LangChain's RecursiveCharacterTextSplitter and LlamaIndex's SentenceSplitter pack small
    splits up to a chunk size: an item alone embeds little, and 58 of the 199 Chinese passages
    under 60 characters of the 7 public prose PDFs of benchmarks/documents.py were single
    items. For PDFs (passages carrying their pages), where a list's items are paragraphs."""
    def joinable(last: Passage, passage: Passage) -> bool:
        one_page = last.metadata.get("page_start") == last.metadata.get("page_end")
        return one_page and _item(last.text) and _item(passage.text)

    def fits(last: Passage, text: str) -> bool:
        heading = f"{last.heading}{HEADING_SEPARATOR}" if last.heading else ""
        return count(heading + text) <= max_tokens

    return _join_neighbours(passages, joinable, fits)


@dataclass
class Prepared:
    """Passages of some documents, what left each source's passage text (line counts by reason:
    see `notes` for the lines themselves) and which sources were cleaned as web pages."""

    passages: list[Passage] = field(default_factory=list)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    web: list[str] = field(default_factory=list)
    notes: dict[str, list[Dropped]] = field(default_factory=dict)

    def dropped_total(self) -> Counter[str]:
        """Lines dropped (or moved into headings) over all sources, by reason."""
        total: Counter[str] = Counter()
        for reasons in self.dropped.values():
            total.update(reasons)
        return total


def _with_pages(passage: Passage, document: Document) -> Passage:
    """A PDF passage's pages: `page_start`, `page_end`, and `page` (= page_start, as before)."""
    if document.format != "pdf":
        return passage
    first = 1 + bisect_right(document.page_starts, passage.start)
    last = 1 + bisect_right(document.page_starts, max(passage.start, passage.end - 1))
    return replace(passage, metadata={**passage.metadata, "page": first, "page_start": first,
                                      "page_end": last})


def _with_part(passage: Passage, document: Document) -> Passage:
    """The part of a Word file a passage is in (`part`: body, header, footer, comment, ...)."""
    starts = [start for start, _ in document.parts]
    part = document.parts[max(0, bisect_right(starts, passage.start) - 1)][1]
    return replace(passage, metadata={**passage.metadata, "part": part})


def _has_content(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def drop_junk(passages: Sequence[Passage], notes: list[Dropped]) -> list[Passage]:
    """Passages of decoration only (`。`, `...`) are dropped, and ones of a character or two or
    of symbols that say something (`⭐️⭐️⭐️⭐️`, `↑`) join the passage before (or after) them in
    the same source; each is noted ("junk", "merged"). A document that is nothing but one
    short passage keeps it."""
    kept: list[Passage] = []
    pending: Passage | None = None  # a short passage waiting for the next one
    for passage in passages:
        if is_decoration(passage.text):
            notes.append(Dropped(passage.text, passage.start, "junk"))
            continue
        if pending is not None:
            if pending.source == passage.source:
                notes.append(Dropped(pending.text, pending.start, "merged"))
                passage = replace(passage, text=f"{pending.text}\n{passage.text}",
                                  start=pending.start, paragraph=pending.paragraph)
            else:
                kept.append(pending)
            pending = None
        if (len("".join(passage.text.split())) <= JUNK_MAX_CHARS
                or not _has_content(passage.text)):
            if kept and kept[-1].source == passage.source:
                notes.append(Dropped(passage.text, passage.start, "merged"))
                kept[-1] = replace(kept[-1], text=f"{kept[-1].text}\n{passage.text}",
                                   end=passage.end)
            else:
                pending = passage
            continue
        kept.append(passage)
    if pending is not None:
        kept.append(pending)
    return kept


def prepare(documents: Iterable[Document], count: TokenCounter = estimate_tokens,
            max_tokens: int = MAX_TOKENS, min_chars: int = MIN_CHARS) -> Prepared:
    """Clean each document (its own mode: see `Document.clean_mode`; headings from its
    structure) and cut it into passages, recording what left the passage text and why."""
    prepared = Prepared()
    for document in documents:
        cleaned = clean_document(document.text, document.clean_mode(), document.structure,
                                 dict(document.headings),
                                 is_word if document.format == "pdf" else None)
        if cleaned.mode == "web":
            prepared.web.append(document.source)
        notes = list(cleaned.dropped)
        passages = [
            passage
            for paragraph in cleaned.paragraphs
            for passage in _paragraph_passages(paragraph, document.source, document.metadata,
                                               count, max_tokens)
        ]
        if document.parts:
            passages = [_with_part(p, document) for p in passages]
        passages = drop_junk(merge_fragments(passages, count, max_tokens, min_chars), notes)
        passages = [_with_pages(p, document) for p in passages]
        if document.format == "pdf":
            passages = pack_items(passages, count, max_tokens)
        prepared.passages.extend(passages)
        if notes:
            notes.sort(key=lambda d: d.start)
            prepared.notes[document.source] = notes
            prepared.dropped[document.source] = dict(Counter(d.reason for d in notes))
    return prepared


def document_passages(document: Document, count: TokenCounter = estimate_tokens,
                      max_tokens: int = MAX_TOKENS, min_chars: int = MIN_CHARS) -> list[Passage]:
    """Clean one document and cut it into passages."""
    return prepare([document], count, max_tokens, min_chars).passages


def make_passages(documents: Iterable[Document], count: TokenCounter = estimate_tokens,
                  max_tokens: int = MAX_TOKENS, min_chars: int = MIN_CHARS) -> list[Passage]:
    """All passages of `documents`, in document order."""
    return prepare(documents, count, max_tokens, min_chars).passages
