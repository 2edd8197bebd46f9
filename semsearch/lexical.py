"""Lexical search: BM25 (bm25s) over jieba words, with traditional Chinese folded to simplified.

bm25s's default splitter treats a run of Chinese characters as one token, so every Chinese
document would score 0; jieba's search-mode segmentation gives words and their sub-words instead.
OpenCC folds traditional to simplified so that `夫妻黨員抗疫` matches `夫妻党员抗疫`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

LEXICAL_DIR = "bm25"

_CHINESE_STOPWORDS = (
    "的了是在和与及或也都就而又把被对为于以之其这那有个们着"
    "等将并但从到让给向由所此即该各每"
)
STOPWORDS = frozenset(_CHINESE_STOPWORDS) | {
    "a", "an", "the", "of", "and", "or", "to", "in", "on", "for", "is", "are", "was", "were",
    "be", "by", "with", "as", "at", "it", "this", "that", "from",
}
_WORD = re.compile(r"\w", re.UNICODE)


@cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


@cache
def _jieba() -> Any:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def to_simplified(text: str) -> str:
    """Traditional Chinese characters and phrases folded to simplified (OpenCC t2s)."""
    return str(_t2s().convert(text))


def normalize(text: str) -> str:
    """Fold width, case and traditional characters, so that variants match the same words."""
    return to_simplified(unicodedata.normalize("NFKC", text).lower())


def tokenize(text: str) -> list[str]:
    """Words for BM25: jieba search-mode segmentation of the normalised text, minus stopwords."""
    words = _jieba().lcut_for_search(normalize(text))
    return [w for w in (w.strip() for w in words) if w and _WORD.search(w) and w not in STOPWORDS]


class LexicalIndex:
    """A bm25s index over passages; ids are passage positions, as in the vector index."""

    def __init__(self, bm25: Any, size: int) -> None:
        self.bm25 = bm25
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index([tokenize(t) for t in texts], show_progress=False)
        return cls(bm25, len(texts))

    def save(self, directory: Path) -> None:
        self.bm25.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, size: int) -> LexicalIndex:
        import bm25s

        bm25 = bm25s.BM25.load(str(directory), mmap=False, show_progress=False)
        return cls(bm25, size)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, ids) per query, like `VectorIndex.search`; passages with no query
        word in common are left out (id -1), since a zero BM25 score ranks nothing."""
        k = max(1, min(k, self.size))
        scores = np.zeros((len(queries), k), dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            tokens = [t for t in tokenize(query) if t in self.bm25.vocab_dict]
            if not tokens:
                continue
            found, found_scores = self.bm25.retrieve([tokens], k=k, show_progress=False,
                                                     n_threads=1)
            keep = found_scores[0] > 0
            n = int(keep.sum())
            ids[row, :n] = found[0][keep]
            scores[row, :n] = found_scores[0][keep]
        return scores, ids
