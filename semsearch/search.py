"""The query path: a query's dense and BM25 rankings from a store, fused into hits.

    queries → check_query → embed (models) → Store.search / Store.lexical_search → fusion → hits

Three modes: `dense` (cosine over embeddings), `bm25` (lexical), and `hybrid`, which fuses the
two rankings — a weighted sum of min-max normalised scores by default, BM25's share scaled by
how much of the query its vocabulary holds, or reciprocal rank fusion (see fusion.py for the
measurements behind the defaults). A filter is parsed once here
and handed to the store, which applies it its own way (FAISS: a selector over the ids it keeps;
Milvus: the expression rendered from the same tree).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from semsearch import deadline, filters
from semsearch.context import Context
from semsearch.errors import FilterError, QueryError, SearchTimeoutError
from semsearch.fusion import Collapser, fusion_weights, rrf, weighted_fusion
from semsearch.lexical import to_simplified
from semsearch.models.encoder import Encoder
from semsearch.passages import Passage
from semsearch.stores.base import SENTENCE, BestSentence, Store

Mode = Literal["dense", "bm25", "hybrid"]
Fusion = Literal["rrf", "weighted"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")
FUSIONS: tuple[Fusion, ...] = ("rrf", "weighted")
DEFAULT_MODE: Mode = "hybrid"
DEFAULT_FUSION: Fusion = "weighted"
CANDIDATES = 50  # depth of each ranking that hybrid fusion looks at
MAX_QUERY_CHARS = 10_000
_MEANINGFUL = "LNPS"  # Unicode categories that mean something: letters, numbers, punct., symbols
QueryForm = Literal["written", "folded", "both"]
# What dense search embeds of a query (query_vectors). Passages are embedded as written,
# so a traditional query on a traditional corpus is best embedded as written, and one on a
# simplified corpus folded (OpenCC t2s); "both" averages the two vectors. Measured (dense R@1 /
# hybrid MRR@10, benchmarks/results/quality-*.md): DRCD (traditional) folded 0.790 / 0.959,
# written 0.839 / 0.961, both 0.835 / 0.961; seeds hybrid MRR@10 folded 0.893, written 0.885,
# both 0.893. BM25 always folds (lexical.normalize).
DENSE_QUERY: QueryForm = "both"
# ... except that a query longer than this is embedded once, as written: a second encoding
# would double the cost of the longest queries (1.1 s of CPU for a 10,000-character
# traditional query instead of 0.55 s), for no measured gain (the labelled queries are short)
BOTH_MAX_CHARS = 1000


@dataclass(frozen=True, kw_only=True)
class Hit(Passage):
    """One search result: a passage (text, source, paragraph, offsets, heading, metadata) with
    its rank, its score and its stable id; `context` holds the passages around it when the
    search asked for them (`context=N`); `best_sentence`, in an index with sentence vectors
    and a dense or hybrid search, the sentence that matched the query best (offsets into
    `text`, and its cosine)."""

    rank: int
    score: float
    id: int
    context: Context | None = None
    best_sentence: BestSentence | None = None

    def to_dict(self) -> dict[str, Any]:
        """The hit as JSON: what the CLI's --json, the service and the benchmarks print (with
        "context" only when the search asked for it)."""
        record = asdict(self)
        record["score"] = round(self.score, 6)
        found = {key: record[key] for key in ("rank", "score", "id", "text", "source",
                                              "paragraph", "start", "end", "heading",
                                              "metadata")}
        if self.context is not None:
            found["context"] = self.context.to_dict()
        if self.best_sentence is not None:
            found["best_sentence"] = self.best_sentence.to_dict()
        return found


def check_query(query: str) -> str:
    """Reject queries that cannot mean anything; return the query stripped of control
    characters and lone surrogates (which no model or JSON output can take)."""
    if not isinstance(query, str):
        raise QueryError(f"a query must be text, not {type(query).__name__}")
    text = "".join(ch for ch in query if unicodedata.category(ch) not in ("Cc", "Cs"))
    if not any(unicodedata.category(ch)[0] in _MEANINGFUL for ch in text):
        # only spaces, zero-width and other format characters, or lone combining marks
        raise QueryError("the query is empty; give some words to search for")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(text):,} characters long; the limit is "
                         f"{MAX_QUERY_CHARS:,} (the model reads at most 512 tokens)")
    return text.strip()


def check_options(k: int, mode: str, fusion: str) -> None:
    """QueryError for a k, mode or fusion that cannot be searched with."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be a whole number ≥ 1, got {k!r}")
    if mode not in MODES:
        raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if fusion not in FUSIONS:
        raise QueryError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")


def query_vectors(encoder: Encoder, queries: Sequence[str]) -> np.ndarray:
    """Query embeddings as `DENSE_QUERY` says: the query as written, folded to simplified,
    or both (the normalised mean of the two vectors; a query with nothing to fold, or longer
    than BOTH_MAX_CHARS, is embedded once)."""
    if DENSE_QUERY == "written":
        return encoder.encode_queries(queries)
    folded = [to_simplified(q) for q in queries]
    if DENSE_QUERY == "folded":
        return encoder.encode_queries(folded)
    vectors = encoder.encode_queries(queries)
    changed = [i for i, (q, f) in enumerate(zip(queries, folded, strict=True))
               if q != f and len(q) <= BOTH_MAX_CHARS]
    if changed:
        mixed = vectors[changed] + encoder.encode_queries([folded[i] for i in changed])
        vectors[changed] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return vectors


def search(store: Store, encoder: Callable[[], Encoder], queries: Sequence[str], k: int = 5,
           mode: Mode = DEFAULT_MODE, fusion: Fusion = DEFAULT_FUSION,
           where: str | None = None, timeout: float | None = None) -> list[list[Hit]]:
    """The `k` best hits for each query (one encoder call, one call per ranking). `encoder`
    is called only if a dense ranking is needed (BM25 alone loads no model). With `timeout`,
    SearchTimeoutError once that many seconds have passed, checked between stages and inside
    filter evaluation (see deadline.py)."""
    with deadline.limit(timeout):
        return _search(store, encoder, queries, k, mode, fusion, where)


def _search(store: Store, encoder: Callable[[], Encoder], queries: Sequence[str], k: int,
            mode: Mode, fusion: Fusion, where: str | None) -> list[list[Hit]]:
    if isinstance(queries, str):  # one query: unambiguous, so take it as such
        queries = [queries]
    cleaned, condition = _checked(store, queries, k, mode, fusion, where)
    if not cleaned:
        return []
    deadline.check("before searching")
    vectors = query_vectors(encoder(), cleaned) if mode != "bm25" else None
    deadline.check("after embedding the query")
    return rank(store, cleaned, vectors, k, mode, fusion, condition)


def _checked(store: Store, queries: Sequence[str], k: int, mode: Mode, fusion: Fusion,
             where: str | None) -> tuple[list[str], filters.Filter | None]:
    """The queries cleaned and the filter parsed; QueryError for what cannot be searched."""
    check_options(k, mode, fusion)
    if not isinstance(queries, Sequence):
        raise QueryError(f"queries must be a list of texts, not {type(queries).__name__}")
    cleaned = [check_query(q) for q in queries]
    if not cleaned:
        return [], None
    if mode != "dense" and not store.has_lexical:
        raise QueryError(f"this index has no lexical (BM25) part, so mode {mode!r} cannot "
                         "run; use --mode dense or rebuild it with `semsearch index`")
    return cleaned, check_where(store, where)


def check_where(store: Store, where: str | None) -> filters.Filter | None:
    """`where` parsed against the fields `store` has (None: no filter); FilterError for a
    filter that is malformed, names an unknown field, or names no field at all."""
    if where is None or (isinstance(where, str) and not where.strip()):
        return None
    condition = filters.parse(where, store.fields())
    if not condition.names:
        raise FilterError(f"the filter {where.strip()!r:.60} names no field, so it keeps "
                          "every passage or none; compare a field, e.g. paragraph > 2")
    return condition


def rank(store: Store, cleaned: Sequence[str], vectors: np.ndarray | None, k: int, mode: Mode,
         fusion: Fusion, condition: filters.Filter | None) -> list[list[Hit]]:
    """The hits of checked queries that share k, mode, fusion and filter, their query vectors
    already embedded (None in bm25 mode): one FAISS search over the matrix, one BM25 batch.
    `search` and the service's batches (`search_each`) both end here, so a query answered in a
    batch gets the hits it gets alone."""
    depth = max(CANDIDATES, k * 4)
    dense = bm25 = None
    best: list[dict[int, BestSentence]] | None = None
    if vectors is not None:
        dense = store.search(vectors, depth, condition)
        sentence_search = getattr(store, "sentence_search", None)  # FAISS stores have it
        if sentence_search is not None and store.manifest.granularity == SENTENCE:
            dense, best = sentence_search(vectors, dense, depth, condition)
        deadline.check("after the dense ranking")
    if mode != "dense":
        bm25 = store.lexical_search(cleaned, depth, condition)
        deadline.check("after the BM25 ranking")
    coverage = (store.lexical_coverage(cleaned) if mode == "hybrid" and fusion == "weighted"
                else None)
    results = []
    for row in range(len(cleaned)):
        if dense is not None and bm25 is not None:
            runs = [(dense[0][row], dense[1][row]), (bm25[0][row], bm25[1][row])]
            fused = (rrf([ids for _, ids in runs]) if coverage is None
                     else weighted_fusion(runs, fusion_weights(float(coverage[row]))))
            ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
        else:
            scores, ids = dense if dense is not None else bm25  # type: ignore[misc]
            ranked = [(int(i), float(s)) for s, i in zip(scores[row], ids[row], strict=True)
                      if i >= 0]
        own = None
        if best is not None and dense is not None:
            # a passage without sentence vectors (one sentence) is its own best sentence
            cosines = {int(i): float(s) for s, i in zip(*(a[row] for a in dense), strict=True)}
            own = {pid: best[row].get(pid) or cosines[pid] for pid in cosines}
        results.append(hits(store, ranked, k, own))
    return results


@dataclass(frozen=True)
class Request:
    """One query of a batch of independent searches (`search_each`): its own k, mode, fusion
    and filter."""

    query: str
    k: int = 5
    mode: Mode = DEFAULT_MODE
    fusion: Fusion = DEFAULT_FUSION
    where: str | None = None


def search_each(store: Store, encoder: Callable[[], Encoder], requests: Sequence[Request],
                timeout: float | None = None) -> list[list[Hit] | Exception]:
    """The hits of each request, or the error it alone would raise (QueryError, …), computed
    together: every query that needs a dense ranking is embedded in one encoder call, and
    requests with the same k, mode, fusion and filter are ranked as one batch (`rank`). Each
    answer equals `search(store, encoder, [r.query], r.k, r.mode, r.fusion, r.where)`. With
    `timeout`, the batch stops (SearchTimeoutError, raised) once that many seconds have passed."""
    with deadline.limit(timeout):
        answers: list[list[Hit] | Exception] = [[] for _ in requests]
        groups: dict[tuple[int, Mode, Fusion, str | None], list[tuple[int, str]]] = {}
        conditions: dict[str | None, filters.Filter | None] = {}
        for n, request in enumerate(requests):
            try:
                (cleaned,), condition = _checked(store, [request.query], request.k,
                                                 request.mode, request.fusion, request.where)
            except (QueryError, RecursionError) as exc:  # this request's own fault
                answers[n] = exc
                continue
            conditions[request.where] = condition
            key = (request.k, request.mode, request.fusion, request.where)
            groups.setdefault(key, []).append((n, cleaned))
        deadline.check("before searching")
        dense = sorted({text for (_, mode, _, _), rows in groups.items() if mode != "bm25"
                        for _, text in rows})
        vectors: dict[str, np.ndarray] = {}
        if dense:
            vectors = dict(zip(dense, query_vectors(encoder(), dense), strict=True))
            deadline.check("after embedding the query")
        for (k, mode, fusion, where), rows in groups.items():
            texts = [text for _, text in rows]
            matrix = np.stack([vectors[t] for t in texts]) if mode != "bm25" else None
            try:
                found = rank(store, texts, matrix, k, mode, fusion, conditions[where])
            except SearchTimeoutError:
                raise
            except Exception as exc:  # answered to the requests of this group only
                found = [exc] * len(rows)  # type: ignore[list-item]
            for (n, _), answer in zip(rows, found, strict=True):
                answers[n] = answer
        return answers


def hits(store: Store, ranked: Sequence[tuple[int, float]], k: int,
         best: dict[int, BestSentence | float] | None = None) -> list[Hit]:
    """The first `k` of `ranked` (id, score) pairs as hits, skipping true duplicates; `best`:
    each passage's best sentence, or its dense score if it is one sentence itself."""
    found: list[Hit] = []
    collapser = Collapser()
    passages = store.get(idx for idx, _ in ranked)
    for idx, score in ranked:
        passage = passages[idx]
        if not collapser.keep(passage):
            continue
        sentence = best.get(idx) if best is not None else None
        if isinstance(sentence, float):
            sentence = BestSentence(0, len(passage.text), sentence)
        found.append(Hit(**vars(passage), rank=len(found) + 1, score=float(score), id=idx,
                         best_sentence=sentence))
        if len(found) == k:
            break
    return found
