"""Sentence vectors beside passage vectors: one more chance for a passage to match a query.

A passage is one vector, so a question that matches one of its sentences competes with the
average of all of them. An index of granularity "sentence" also keeps a vector for each
sentence of every passage of two or more sentences (sentences.py cuts them; each embedded on
its own, passage prompt) and scores a passage in dense search as

    SENTENCE_MIX × cos(query, passage) + (1 − SENTENCE_MIX) × max over its sentences of cos

(a passage of one sentence keeps its own cosine: its best sentence is itself). Candidates are
the top passages by passage vector and the passages of the top sentences; each candidate's
score is computed exactly (`mix`). The paragraph blend (paragraphs.py) is kept: a cut
passage's own vector is still blended with its paragraph's (not re-measured without it).

Measured with benchmarks/sentences.py (same index, same run; R@1 hybrid, hits@1 in brackets;
benchmarks/results/sentences*.md), passage only → w = 0.5 / 0.6 / 0.7: XQuAD shared half
en→zh 0.807 (510) → 0.856 (541) / 0.856 (541) / 0.843 (533), naive sentence-transformers
0.802 (507); zh→en 0.755 (477) → 0.815 (515) / 0.818 (517) / 0.804 (508), naive 0.744 (470);
zh→zh 0.957 (605) → 0.960 (607) at each w; seeds 61 → 61 / 60 / 60 of 68 (dense 50 → 54 / 53
/ 54); at 0.6 only: mixed 0.959 (1212) → 0.963 (1217), CMRC trial 0.982 (982) → 0.984 (984)
(dense 960 → 982). DRCD not yet measured. Dense gains more (en→zh 510 → 544, zh→en
470 → 513 at 0.6). 0.6 is best on the two cross-lingual sets, where one passage vector fell
short.

Hybrid search fuses this dense ranking with BM25 exactly as for passage indexes (fusion.py): no
change measured turned the dense gain on same-language sets into a hybrid gain on every set
(`benchmarks/sentences.py --fusion`, benchmarks/results/sentences-fusion.md: one index per set,
hybrid hits@1 as seeds / XQuAD zh→zh / mixed / CMRC trial / en→zh / zh→en, of 68 / 632 / 1,264 /
1,000 / 632 / 632; the seeds indexed in memory there answer 58 passage-only where the shipped
seeds index answers 61, so only counts of the same run compare). Passage-only 58 / 605 / 1211 /
982 / 513 / 471; as above (w = 0.6) 60 / 607 / 1217 / 983 / 543 / 522. A dense share of 0.6 in
the fusion instead of 0.5: 59 / 608 / 1222 / 984 / 547 / 521; 0.7: 57 / 609 / 1229 / 982 / 546 /
519. The best-sentence cosine as a third fused ranking at 0.5: 61 / 608 / 1231 / 984 / 532 /
515; at 0.5 × BM25's coverage of the query (as BM25's own weight is scaled), the nearest to a
win everywhere: 60 / 608 / 1227 / 984 / 545 / 521 (zh→zh still short, zh→en one question less).
The mix weight 0.4 in hybrid only: 61 / 609 / 1218 / 983 / 535 / 521; moving from 0.6 to 0.4
with BM25's coverage of the query: 60 / 608 / 1218 / 983 / 542 / 522. Passage and best-sentence
cosines fused as two rankings: 59 / 607 / 1217 / — / 540 / 521. BM25 at sentence level too (a
passage's BM25 0.6 × its own + 0.4 × its best sentence's): 59 / 606 / 1216 / — / 538 / 520. DRCD
test (3,493): passage-only 3257, w = 0.6 3316; dense share 0.6 3321, 0.7 3318; third ranking 0.5
3338, × coverage 3339; mix by coverage 3325.
The best zh→zh, 610 (dense share 0.7 with w = 0.4), is short of one point over passage-only
(612) and costs the seeds 2 questions; of the 25 zh→zh questions hybrid misses, 12 are missed at
rank 1 by dense and BM25 alone both, so fusion could reach at most 620.

Storage, in the FAISS generation directory beside vectors.faiss (both checksummed like every
file there): `sentences.faiss`, the vectors as float16 codes (IndexScalarQuantizer QT_fp16:
768 B a vector at 384-d, half of float32), and
`sentences.npy`, one (passage id, start, end) row per vector, in passage-id order, the offsets
into the passage's text (not the source's: a passage merged from two lines holds a line break
that is not in the source, so only offsets into its own text always hold). In memory they are
float32 in an exact IndexFlatIP, rounded to float16 when added, so an index built in memory
answers as the same index saved and opened: searching the fp16 index itself took 44 ms a query
on the seeds on this busy 2-core machine (OpenMP threads waking), the flat one 0.24 ms.
In Milvus the same rows and fp16-rounded vectors live in a second collection (stores/milvus.py,
`MilvusSentences`), scored by the same `mix`: FAISS and Milvus Lite return the same top-5, scores
and best sentences for the 68 seeds queries (tests/test_sentences_milvus.py, real model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from semsearch.stores.base import PASSAGE, SENTENCE, BestSentence

VECTORS = "sentences.faiss"
ROWS = "sentences.npy"
FILES = (VECTORS, ROWS)
# The passage's own cosine's share of its dense score; the best sentence has the rest
SENTENCE_MIX = 0.6
# Sentences ranked per query to find candidate passages (beside the passage ranking's own)
SENTENCE_DEPTH = 100
GRANULARITIES = (PASSAGE, SENTENCE)
# Vectors converted at a time when sentence vectors are copied into or out of a FAISS index
BLOCK = 16384


def _faiss() -> Any:
    import faiss

    return faiss


@dataclass
class SentenceVectors:
    """Sentence vectors (FAISS, float16) and for each its (passage id, start, end) row."""

    index: Any  # faiss.IndexFlatIP over float16-rounded vectors
    rows: np.ndarray  # int64 [n, 3]: passage id, start, end; sorted by passage id

    @classmethod
    def empty(cls, dimension: int) -> SentenceVectors:
        return cls(_faiss().IndexFlatIP(dimension), np.zeros((0, 3), dtype=np.int64))

    @classmethod
    def create(cls, dimension: int, rows: np.ndarray, vectors: np.ndarray) -> SentenceVectors:
        found = cls.empty(dimension)
        found.add(rows, vectors)
        return found

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Append sentences of passages whose ids are all above those already held."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        if len(rows) != len(vectors):
            raise ValueError(f"{len(rows)} sentence rows for {len(vectors)} vectors")
        if not len(rows):
            return
        if len(self.rows) and rows[:, 0].min() < self.rows[-1, 0]:
            raise ValueError("sentences must be added in passage-id order")
        _append(self.index, vectors, np.float32)
        self.rows = np.concatenate([self.rows, rows])

    def remove(self, passage_ids: np.ndarray) -> int:
        """Drop the sentences of these passages; returns how many went."""
        doomed = np.flatnonzero(np.isin(self.rows[:, 0], np.asarray(passage_ids,
                                                                     dtype=np.int64)))
        if len(doomed):
            faiss = _faiss()
            self.index.remove_ids(faiss.IDSelectorBatch(doomed.astype(np.int64)))
            self.rows = np.delete(self.rows, doomed, axis=0)
        return len(doomed)

    def save(self, folder: Path) -> None:
        faiss = _faiss()
        codes = faiss.IndexScalarQuantizer(self.index.d, faiss.ScalarQuantizer.QT_fp16,
                                           faiss.METRIC_INNER_PRODUCT)
        _append(codes, _held(self.index, np.float32), np.float16)
        faiss.write_index(codes, str(folder / VECTORS))
        with (folder / ROWS).open("wb") as handle:
            np.save(handle, self.rows, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, dimension: int) -> SentenceVectors:
        faiss = _faiss()
        codes = faiss.read_index(str(folder / VECTORS))
        if not isinstance(codes, faiss.IndexScalarQuantizer) \
                or codes.sq.qtype != faiss.ScalarQuantizer.QT_fp16:
            raise ValueError(f"{VECTORS} holds no float16 sentence vectors")
        index = faiss.IndexFlatIP(codes.d)
        _append(index, _held(codes, np.float16), np.float32)
        rows = np.load(folder / ROWS, allow_pickle=False)
        if index.d != dimension or index.ntotal != len(rows) or rows.ndim != 2 \
                or rows.shape[1] != 3:
            raise ValueError(f"{index.ntotal} sentence vectors of {index.d} dims for "
                             f"{len(rows)} rows (expected {dimension} dims)")
        return cls(index, rows.astype(np.int64, copy=False))

    def _best(self, query: np.ndarray, pids: np.ndarray) -> dict[int, BestSentence]:
        """The best sentence of each of `pids` that has sentence vectors: their rows decoded
        in one call and scored in one product (a FAISS call per passage cost more than the
        search itself)."""
        column = self.rows[:, 0]
        begins = np.searchsorted(column, pids, "left")
        ends = np.searchsorted(column, pids, "right")
        held = ends > begins
        if not held.any():
            return {}
        spans = list(zip(pids[held].tolist(), begins[held].tolist(), ends[held].tolist(),
                         strict=True))
        rows = np.concatenate([np.arange(b, e) for _, b, e in spans])
        cosines = self.index.reconstruct_batch(rows) @ query
        found: dict[int, BestSentence] = {}
        offset = 0
        for pid, begin, end in spans:
            top = int(np.argmax(cosines[offset:offset + end - begin]))
            _, start, stop = self.rows[begin + top].tolist()
            found[pid] = BestSentence(start, stop, float(cosines[offset + top]))
            offset += end - begin
        return found

    def top_passages(self, queries: np.ndarray) -> np.ndarray:
        """The passage id of each query's top SENTENCE_DEPTH sentences (-1: none)."""
        if not len(self.rows):
            return np.full((len(queries), 0), -1, dtype=np.int64)
        _, top_rows = self.index.search(queries, min(SENTENCE_DEPTH, len(self.rows)))
        return np.where(top_rows >= 0, self.rows[np.maximum(top_rows, 0), 0], -1)

    def best(self, query: np.ndarray, pids: np.ndarray) -> dict[int, BestSentence]:
        return self._best(query, pids)

    def mix(self, queries: np.ndarray, dense: tuple[np.ndarray, np.ndarray], depth: int,
            passage_vectors: Any, allowed: Any = None, weight: float | None = None,
            ) -> tuple[tuple[np.ndarray, np.ndarray], list[dict[int, BestSentence]]]:
        """See the module function `mix`."""
        return mix(self, queries, dense, depth, passage_vectors, allowed, weight)


def _held(index: Any, dtype: type[np.floating[Any]]) -> np.ndarray:
    """The vectors a flat FAISS `index` holds, as a NumPy view of its codes (no copy): `dtype`
    float32 for an IndexFlat, float16 for a QT_fp16 IndexScalarQuantizer (IEEE halves, one per
    dimension). Valid until the index changes."""
    count = index.ntotal
    if not count:
        return np.zeros((0, index.d), dtype=dtype)
    raw = _faiss().rev_swig_ptr(index.codes.data(), count * index.code_size)
    return raw.view(dtype).reshape(count, index.d)


def _append(index: Any, vectors: np.ndarray, dtype: type[np.floating[Any]]) -> None:
    """Append `vectors`, rounded to float16, to a flat FAISS `index` holding `dtype` (see
    `_held`) by writing its codes BLOCK vectors at a time. FAISS's `add` takes one float32
    array, a whole copy beside its own: with the rounding, a sentence build at 101k passages
    peaked at 3,020 MB resident (2 GB allowed; benchmarks/results/memory-sentences.md). Its
    `add` a block at a time instead regrows the code vector at each call: 1,786 MB, against
    1,584 for one resize here."""
    first, count = index.ntotal, len(vectors)
    if not count:
        return
    index.codes.resize((first + count) * index.code_size)
    index.ntotal = first + count
    held = _held(index, dtype)
    for begin in range(0, count, BLOCK):
        held[first + begin:first + begin + BLOCK] = np.asarray(vectors[begin:begin + BLOCK],
                                                               dtype=np.float16)


class Sentences(Protocol):
    """Where sentence vectors are searched: in memory (SentenceVectors, the FAISS store) or a
    Milvus collection (stores/milvus.py)."""

    def top_passages(self, queries: np.ndarray) -> np.ndarray: ...

    def best(self, query: np.ndarray, pids: np.ndarray) -> dict[int, BestSentence]: ...


def best_of(pids: np.ndarray, rows: np.ndarray, cosines: np.ndarray) -> dict[int, BestSentence]:
    """Each passage's best sentence, from sentence `rows` (passage id, start, end; grouped by
    passage, in text order) and their `cosines`; the first of equal ones."""
    found: dict[int, BestSentence] = {}
    wanted = set(pids.tolist())
    for (pid, start, stop), cosine in zip(rows.tolist(), cosines.tolist(), strict=True):
        if pid in wanted and (pid not in found or cosine > found[pid].score):
            found[pid] = BestSentence(start, stop, float(cosine))
    return found


def mix(sentences: Sentences, queries: np.ndarray, dense: tuple[np.ndarray, np.ndarray],
        depth: int, passage_vectors: Any, allowed: Any = None, weight: float | None = None,
        ) -> tuple[tuple[np.ndarray, np.ndarray], list[dict[int, BestSentence]]]:
    """The dense ranking of each query with passage scores mixed with their best
    sentence's, over the union of the passage ranking `dense` (scores, ids) and the
    passages of the top SENTENCE_DEPTH sentences (kept if `allowed(ids)` says so);
    `passage_vectors(ids)` gives stored passage vectors. Also each ranked passage's best
    sentence (passages of one sentence: none, the caller uses the passage itself)."""
    w = SENTENCE_MIX if weight is None else weight
    q = np.ascontiguousarray(queries, dtype=np.float32)
    top_ids = sentences.top_passages(q)
    out_scores = np.zeros((len(q), depth), dtype=np.float32)
    out_ids = np.full((len(q), depth), -1, dtype=np.int64)
    best: list[dict[int, BestSentence]] = []
    for row in range(len(q)):
        known = {int(i): float(s) for s, i in zip(dense[0][row], dense[1][row],
                                                  strict=True) if i >= 0}
        extra = [int(i) for i in dict.fromkeys(top_ids[row].tolist())
                 if i >= 0 and int(i) not in known]
        if extra and allowed is not None:
            extra = [int(i) for i in allowed(np.array(extra, dtype=np.int64))]
        if extra:
            vectors = passage_vectors(np.array(extra, dtype=np.int64))
            known.update(zip(extra, (vectors @ q[row]).tolist(), strict=True))
        found = sentences.best(q[row], np.fromiter(known, dtype=np.int64, count=len(known)))
        scored = [(w * own + (1 - w) * found[pid].score if pid in found else own, pid)
                  for pid, own in known.items()]
        scored.sort(key=lambda item: (-item[0], item[1]))
        scored = scored[:depth]
        out_scores[row, :len(scored)] = [s for s, _ in scored]
        out_ids[row, :len(scored)] = [i for _, i in scored]
        best.append({pid: found[pid] for _, pid in scored if pid in found})
    return (out_scores, out_ids), best
