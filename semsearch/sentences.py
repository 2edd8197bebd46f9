"""Cut a passage into sentences, with their offsets: the units sentence vectors are made of.

A small conservative splitter rather than a library: pysbd and NLTK's punkt are not installed
(punkt also needs its data downloaded), and neither splits Chinese. It cuts
- after Chinese sentence ends 。！？；… (and the closing quotes or brackets after them),
- after `!` or `?` (and closing quotes) followed by whitespace or the end,
- after `.` followed by whitespace and then a capital, an opening quote, a digit or a CJK
  character, or the end — unless the word before it is an abbreviation (Mr., e.g., U.S.,
  single initials): so `3.5`, `e.g. this` and `Dr. Sun` stay whole,
- at line breaks.
A piece shorter than MIN_CHARS non-space characters, or a Latin piece of fewer than MIN_WORDS
words, joins a neighbour (the one before it; the first joins the next): a short sentence
matches too much on its own. Spans are trimmed of surrounding whitespace; only whitespace lies
between them (tests/test_sentences.py checks both with hypothesis).
"""

from __future__ import annotations

import re

MIN_CHARS = 8
MIN_WORDS = 3
_CLOSE = r"[”’」』）)\]】》\"'〉]*"
_CJK_END = re.compile(rf"[。！？；…]+{_CLOSE}|[!?！？]+{_CLOSE}(?=\s|$)|\n")
_DOT = re.compile(rf"\.+{_CLOSE}(?=\s+[\"“‘'(\[A-Z0-9\u3400-\u9fff]|\s*$)")
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "u.s", "u.k",
    "u.n", "a.m", "p.m", "no", "fig", "eq", "ca", "cf", "al", "inc", "ltd", "co", "corp",
    "dept", "gen", "gov", "rev", "col", "lt", "sgt", "mt", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "approx", "est", "vol", "pp", "ph.d"})
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the `.` at `dot` ends an abbreviation or an initial (J. Smith)."""
    found = _WORD_BEFORE.search(text, 0, dot)
    if found is None:
        return False
    word = found.group(1).lower().rstrip(".")
    return word in _ABBREVIATIONS or (len(word) == 1 and found.group(1).isupper())


def _ends(text: str) -> list[int]:
    """Offsets just after each sentence end in `text`, in order."""
    ends = {m.end() for m in _CJK_END.finditer(text)}
    for m in _DOT.finditer(text):
        if not _is_abbreviation(text, m.start()):
            ends.add(m.end())
    return sorted(ends)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _short(piece: str) -> bool:
    if len("".join(piece.split())) < MIN_CHARS:
        return True
    return not _CJK.search(piece) and len(_LATIN_WORD.findall(piece)) < MIN_WORDS


def split(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, in order; short ones merged with a neighbour.
    Empty for a text of whitespace only."""
    spans: list[tuple[int, int]] = []
    begin = 0
    for end in [*_ends(text), len(text)]:
        s, e = _trim(text, begin, end)
        if e > s:
            spans.append((s, e))
        begin = max(begin, end)
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and (_short(text[s:e]) or _short(text[merged[-1][0]:merged[-1][1]])):
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged
