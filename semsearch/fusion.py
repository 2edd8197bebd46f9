"""Fusing a dense and a BM25 ranking into one, and keeping true duplicates out of it.

Defaults measured with `semsearch bench` on the labelled seeds set and the public sets: the
weighted sum of min-max normalised scores beat reciprocal rank fusion (seeds hybrid Recall@5
0.963 vs 0.919 when first measured; RRF and max-normalisation were lower on all three sets when
re-measured), and an even dense/BM25 split beat 0.4, 0.6, 0.3 and z-scores taken over the three
sets (hybrid R@5/MRR@10 seeds 0.956/0.893, CMRC 0.997/0.989, DRCD 0.995/0.961 at 0.5).

BM25's half of the vote is scaled by the share of the query's words in the index's BM25
vocabulary (`fusion_weights`): min-max normalisation turns the best of a ranking into 1.0
however little it matched, so an English question over Chinese paragraphs, sharing a number or
no word at all with them, gave BM25's chance hits half the vote. Hybrid Recall@1 before → after
(`semsearch bench`, benchmarks/results/quality-*.md): XQuAD en→zh 0.636 → 0.799 (dense 0.801),
zh→en 0.687 → 0.726 (dense 0.715), zh 0.954 → 0.957, mixed 0.953 → 0.958, seeds 0.733 → 0.762,
CMRC 0.981 → 0.980, DRCD 0.932 → 0.931 (one and two questions). On the same rankings, scaling by
the idf-weighted share, by the top raw BM25 score over the query's best possible score, or
saturating at half the words each did worse on at least one of these sets.

Re-measured once `bench` embedded queries as a saved index does (fp32; it had used the int8
indexing body) and passages kept their paragraph's context (paragraphs.py), hybrid vs the best
of dense, BM25 and the two naive peers at Recall@1: en→zh 509 vs 509 of 632 (MRR@10 0.8796 vs
0.8797: one question ranked 4th instead of 3rd), zh→en 473 vs 470, zh 605 vs 593, mixed 1211
vs 1186 of 1,264, CMRC 982 vs 968 of 1,000 (DRCD and the seeds: benchmarks/results/). On
en→zh, BM25's only evidence is a Latin name or number kept in the Chinese text: 7 questions won
and 7 lost at rank 1. Once BM25 read numbers' values (lexical.py, numbers.py), en→zh became 510
vs 509, MRR@10 0.8809 vs 0.8797; the rest as above. Tried again on these rankings:
coverage² (en→zh +2, zh→en -5, seeds MRR@10 -0.007), the share of the query's characters
instead of its words (zh→en +1, en→zh -1, seeds MRR@10 -0.004), coverage^1.25, ^0.75 and ^0.5
(en→zh -3 to -27): none kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semsearch.clean import dedup_key
from semsearch.passages import Passage

RRF_K = 60  # the constant of Cormack et al. (2009), also ranx's default
DENSE_WEIGHT = 0.5  # weighted fusion: share of the dense score


def fusion_weights(coverage: float) -> tuple[float, float]:
    """The (dense, BM25) weights of a query whose words BM25's vocabulary holds a share
    `coverage` of (0–1): BM25's even share scaled by that coverage, so a ranking built on none
    of the query's words has no vote, however its scores normalise."""
    share = min(max(coverage, 0.0), 1.0)
    return DENSE_WEIGHT, (1 - DENSE_WEIGHT) * share


def rrf(rankings: Sequence[np.ndarray], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: score(d) = Σ 1 / (k + rank of d), ranks from 1; ids < 0 skipped.

    Written out rather than called from ranx: ranx's numba kernels take ~13 s to compile on the
    first call in each process, far too slow for a CLI query; a test checks we agree with ranx.
    """
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, idx in enumerate(int(i) for i in ranking if i >= 0):
            fused[idx] = fused.get(idx, 0.0) + 1.0 / (k + rank + 1)
    return fused


def weighted_fusion(runs: Sequence[tuple[np.ndarray, np.ndarray]],
                    weights: Sequence[float]) -> dict[int, float]:
    """Weighted sum of min-max normalised scores (ranx's "wsum" with "min-max" norm)."""
    fused: dict[int, float] = {}
    for (scores, ids), weight in zip(runs, weights, strict=True):
        valid = ids >= 0
        if not valid.any():
            continue
        s, i = scores[valid], ids[valid]
        low, high = float(s.min()), float(s.max())
        norm = (s - low) / (high - low) if high > low else np.ones_like(s)
        for idx, value in zip(i, norm, strict=True):
            fused[int(idx)] = fused.get(int(idx), 0.0) + weight * float(value)
    return fused


class Collapser:
    """Keeps only true duplicates out of a ranking: a passage overlapping one already kept from
    the same document (a file, or one record of a records file: records are their own sources),
    or with the same text up to whitespace and width. Each text is normalised once (NFKC over
    every pair cost ~0.1 s per query at k=50).

    Containment across documents is not duplication: "男孩趴在草地上。" and "小男孩趴在草地上。"
    are two records, and collapsing them lost answers on record corpora (issue 11)."""

    def __init__(self) -> None:
        self._texts: set[str] = set()
        self._spans: dict[str, list[tuple[int, int]]] = {}

    def keep(self, passage: Passage) -> bool:
        """False for a duplicate of a passage kept before; otherwise record it and say True."""
        text = dedup_key(passage.text)
        spans = self._spans.setdefault(passage.source, [])
        if text in self._texts or any(passage.start < end and start < passage.end
                                      for start, end in spans):
            return False
        self._texts.add(text)
        spans.append((passage.start, passage.end))
        return True
