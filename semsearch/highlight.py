"""Which characters of a passage to mark for a query: the query's words as the index's BM25
reads them (`Index.query_words`: folded, so a traditional query gives simplified words), found
in the passage after the same folding (width, case, traditional→simplified). One place for the
CLI's table and the service's `highlights`, so 夫妻黨員抗疫 marks 夫妻党员 in both.
"""

from __future__ import annotations

from typing import Any

from semsearch.lexical import normalize


def folded(text: str) -> tuple[str, list[int]]:
    """`text` folded as the lexical index folds it, and for each folded character the offset
    of the character of `text` it came from. Folded whole when that keeps the length (the
    common case), else one character at a time (NFKC or lower-casing can expand one into
    several, e.g. "①" → "1"), so positions always map back."""
    whole = normalize(text)
    if len(whole) == len(text):
        return whole, list(range(len(text)))
    pieces: list[str] = []
    origin: list[int] = []
    for at, char in enumerate(text):
        piece = normalize(char)
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
