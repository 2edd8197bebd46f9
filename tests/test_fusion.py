"""Hybrid fusion weighs BM25 by how much of the query its vocabulary holds (issue 22): a BM25
ranking built on none of the query's words must not outvote dense search."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pytest

from semsearch import search
from semsearch.fusion import DENSE_WEIGHT, fusion_weights
from semsearch.lexical import LexicalIndex
from semsearch.passages import Passage

DOCS = ["黑豹队的防守只丢了308分，在联赛中排名第六。", "志愿者为隔离居民配送生活物资。"]


def test_coverage_is_the_share_of_query_words_in_the_vocabulary() -> None:
    index = LexicalIndex.build(DOCS)
    assert index.coverage("How many points did the Panthers defense surrender?") == 0.0
    assert index.coverage("黑豹队的防守丢了多少分？") == pytest.approx(
        sum(w in index.vocab for w in ["黑豹", "队", "防守", "丢", "多少", "分"]) / 6)
    assert index.coverage("志愿者 配送 物资") == 1.0
    # "308" is a word of the first passage, the four English words are not
    assert index.coverage("Panthers gave up 308 points") == pytest.approx(1 / 5)
    assert index.coverage("???") == 0.0  # no words at all: nothing to match


def test_weights_scale_bm25_by_coverage() -> None:
    assert fusion_weights(1.0) == (DENSE_WEIGHT, 1 - DENSE_WEIGHT)
    assert fusion_weights(0.0) == (DENSE_WEIGHT, 0.0)
    assert fusion_weights(0.4) == (DENSE_WEIGHT, pytest.approx((1 - DENSE_WEIGHT) * 0.4))
    assert fusion_weights(7.0) == fusion_weights(1.0)


class _Store:
    """Four passages; dense ranks 2 > 1 > 0 > 3, BM25 finds only passage 0."""

    has_lexical = True

    def __init__(self, coverage: float) -> None:
        self.coverage = coverage
        self.passages = {i: Passage(text=f"passage {i}", source=f"s{i}.txt", paragraph=1,
                                    start=0, end=9) for i in range(4)}

    def fields(self) -> frozenset[str]:
        return frozenset()

    def search(self, vectors: np.ndarray, k: int, where: object = None
               ) -> tuple[np.ndarray, np.ndarray]:
        return np.array([[0.90, 0.89, 0.80, 0.50]], np.float32), np.array([[2, 1, 0, 3]])

    def lexical_search(self, queries: Sequence[str], k: int, where: object = None
                       ) -> tuple[np.ndarray, np.ndarray]:
        return np.array([[2.0, 0.0, 0.0]], np.float32), np.array([[0, -1, -1]])

    def lexical_coverage(self, queries: Sequence[str]) -> np.ndarray:
        return np.full(len(queries), self.coverage, np.float32)

    def get(self, ids: Iterable[int]) -> dict[int, Passage]:
        return {i: self.passages[i] for i in ids}


class _Encoder:
    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        return np.ones((len(queries), 4), np.float32) / 2


@pytest.mark.parametrize(("coverage", "order"), [
    (0.0, [2, 1, 0]),   # BM25 matched none of the query's words: dense decides
    (0.2, [2, 1, 0]),   # one word in five: a small vote, not enough to lift passage 0
    (1.0, [0, 2, 1]),   # every word known: BM25's full half of the vote lifts passage 0
])
def test_hybrid_trusts_bm25_as_far_as_it_covers_the_query(coverage: float,
                                                          order: list[int]) -> None:
    """Before the fix, min-max normalisation turned BM25's lone weak match into 1.0 with half
    the vote, and passage 0 came first whatever the coverage."""
    hits = search.search(_Store(coverage), _Encoder, ["Panthers gave up 308 points"],  # type: ignore[arg-type]
                         k=3)[0]
    assert [h.id for h in hits] == order


def test_rrf_is_left_as_it_was() -> None:
    hits = search.search(_Store(0.0), _Encoder, ["q"], k=3, fusion="rrf")[0]  # type: ignore[arg-type]
    assert [h.id for h in hits] == [0, 2, 1]  # 0: ranks 3 and 1; 2: rank 1 only
