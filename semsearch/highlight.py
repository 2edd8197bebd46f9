"""Which characters of a passage to mark for a query: the query's words as the index's BM25
reads them (`Index.query_words`: folded, so a traditional query gives simplified words), found
in the passage after the same folding (NFKC, Unicode case folding, traditional→simplified). One
place for the CLI's table and the service's `highlights`, so 夫妻黨員抗疫 marks 夫妻党员 in both.

jieba keeps only ASCII letters together, so BM25's words for `İstanbul`, `straße` or a
decomposed `ré` are pieces (`i`, `ß`, `e`, `r`): marked as they were, they lit up single letters
all over a hit (364–825 marks per 20 hits, issue 39). `terms` highlights each such word of an
alphabetic script whole instead.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from semsearch.lexical import normalize

# a run of letters, digits and combining marks: one word in a script that spaces its words
_RUN = re.compile(r"(?:\w|[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f])+")
# scripts written without spaces, whose runs jieba's segmentation must split into words
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")


def fold(text: str) -> str:
    """`text` as highlighting compares it: the lexical folding (NFKC, traditional→simplified)
    with Unicode case folding instead of lower-casing (`straße` is `strasse`), normalised again
    (NFKC) so a decomposed `ré` and a composed one are the same."""
    return normalize(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()))


def terms(query: str, words: list[str]) -> list[str]:
    """The strings to mark for `query`, whose BM25 words are `words`: each word of an
    alphabetic script that a BM25 word falls inside is marked whole (folded), never as the
    pieces jieba cut it into; other words (Chinese, number values) stay as BM25 has them.
    Longest first."""
    spaced = [run for run in _RUN.findall(fold(query)) if not _UNSPACED.search(run)]
    chosen: dict[str, None] = {}
    for word in words:
        folded_word = fold(word)
        around = [run for run in spaced if folded_word and folded_word in run]
        for run in around or [folded_word]:
            chosen[run] = None
    return sorted((t for t in chosen if t), key=len, reverse=True)


def folded(text: str) -> tuple[str, list[int]]:
    """`text` folded for highlighting (`fold`), and for each folded character the offset of
    the character of `text` it came from. Folded whole when that keeps the length (the common
    case), else one character at a time (NFKC or case folding can expand one into several,
    e.g. "①" → "1", "ß" → "ss"), so positions always map back."""
    whole = fold(text)
    if len(whole) == len(text):
        return whole, list(range(len(text)))
    pieces: list[str] = []
    origin: list[int] = []
    for at, char in enumerate(text):
        piece = fold(char)
        pieces.append(piece)
        origin.extend([at] * len(piece))
    return "".join(pieces), origin


def spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """(start, end) character offsets into `text` of every occurrence of `terms` (longest
    first, no overlaps), in order: the parts of a passage to mark for a query."""
    flat, origin = folded(text)
    taken = [False] * len(flat)
    found: list[tuple[int, int]] = []
    for term in sorted(terms, key=len, reverse=True):
        if not term:
            continue
        at = flat.find(term)
        while at >= 0:
            end = at + len(term)
            if not any(taken[at:end]):
                taken[at:end] = [True] * len(term)
                found.append((origin[at], origin[end - 1] + 1))
            at = flat.find(term, end)
    return sorted(found)


def annotate(terms: list[str], hits: list[dict[str, Any]]) -> dict[str, Any]:
    """The service's answer for `hits` (as `Hit.to_dict` gives them): `highlight`, the query's
    words `terms`, and in each hit (and each passage of its `context`, when asked for)
    `highlights`, the [start, end) code-point offsets of those words in its `text`."""
    for hit in hits:
        hit["highlights"] = [list(span) for span in spans(hit["text"], terms)]
        context = hit.get("context")
        for passage in context.get("passages", []) if isinstance(context, dict) else []:
            passage["highlights"] = [list(span) for span in spans(passage["text"], terms)]
    return {"highlight": terms, "hits": hits}
