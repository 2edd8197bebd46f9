"""Lexical search: BM25 (bm25s) over jieba words, with traditional Chinese folded to simplified.

bm25s's default splitter treats a run of Chinese characters as one token, so every Chinese
document would score 0; jieba's search-mode segmentation gives words and their sub-words instead.
OpenCC folds traditional to simplified so that `夫妻黨員抗疫` matches `夫妻党员抗疫`. A number
written with a scale word or separators also gives its value as a word (numbers.py), so that
`who donated 150,000 yuan` matches `捐款15万元`. Measured with `semsearch bench`, questions
answered at rank 1 before → after, BM25: seeds 47 → 49 of 68 (hits@5 56 → 58), XQuAD en→zh
110 → 112 and zh→en 85 → 87 of 632, mixed 1176 → 1175 of 1,264 (the answer's paragraph one
number word longer), zh, CMRC and DRCD unchanged; hybrid: en→zh 509 → 510 (MRR@10 0.8796 →
0.8809, now above dense's 0.8797), zh→en hits@5 595 → 596, seeds MRR@10 0.9078 → 0.9086, the
rest unchanged.

Indexing uses bm25s and jieba's full dictionary. Queries avoid both heavy loads (bm25s pulls in
scipy and numba, ~0.4 s; jieba's 350k-word dictionary, ~0.6 s): they are segmented with a jieba
dictionary of the index's own vocabulary — a query word outside it could not match anyway — and
scored straight from the matrix of precomputed BM25 weights that bm25s saved. That dictionary's
parsed form (jieba's prefix dictionary) is saved in the index too: jieba would otherwise cache it
under a predictable name in the shared temporary directory, one file per loaded generation, never
removed, and read back whatever file stood at that name.
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.numbers import number_words

LEXICAL_DIR = "bm25"
BM25_K1, BM25_B = 1.5, 0.75  # Lucene BM25 (bm25s's defaults); Milvus's BM25 is given the same
DESCRIPTION = (f"bm25s (k1={BM25_K1}, b={BM25_B}) over jieba search-mode words, OpenCC t2s, "
               "NFKC, lowercase, numbers' values")
QUERY_DICT = "query_dict.txt"
PREFIX_DICT = "query_dict.marshal"  # QUERY_DICT parsed: jieba's (prefix frequencies, total)
IDS = "ids.npy"
TOKENS = "tokens.jsonl"
PARAMS = "params.index.json"  # bm25s's parameters file
NUMBERS_PARAM = "number_values"  # saved in PARAMS: the words include numbers' values
_UNSEEN_WORD_FREQ = 3  # jieba frequency for Chinese words its HMM found but its dictionary lacks
# jieba's most frequent words join the query dictionary: they steer the segmentation of query
# text around indexed words (measured on the seeds set: 8 of 68 queries segmented differently
# without them, 6 with them) for ~50 ms of load time
COMMON_WORDS = 50_000
_HAN = re.compile(r"[\u3400-\u9fff]")

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
def _full_jieba() -> Any:
    """jieba's default tokenizer (full dictionary), caching its parsed dictionary in semsearch's
    own cache directory (mode 0700) instead of the shared temporary directory."""
    import jieba

    from semsearch.models.resolve import home

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.dt
    folder = home() / "jieba"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = folder.stat()
        private = state.st_uid == os.getuid() and not state.st_mode & 0o022
    except OSError:
        private = False
    if private:
        tokenizer.tmp_dir = str(folder)
        tokenizer.initialize()
    else:  # no private place for the cache: parse the dictionary, write and read no cache
        with tokenizer.get_dict_file() as handle:
            tokenizer.FREQ, tokenizer.total = tokenizer.gen_pfdict(handle)
        tokenizer.initialized = True
    return tokenizer


def to_simplified(text: str) -> str:
    """Traditional Chinese characters and phrases folded to simplified (OpenCC t2s)."""
    return str(_t2s().convert(text))


def normalize(text: str) -> str:
    """Fold width, case and traditional characters, so that variants match the same words."""
    return to_simplified(unicodedata.normalize("NFKC", text).lower())


def _keep(words: Sequence[str]) -> list[str]:
    """The words BM25 counts, interned: a collection's token lists repeat the same few thousand
    words, and one shared string per word instead of one per occurrence cut what the words of
    25,728 real passages take from 454 MB to 135 MB (see benchmarks/memory.py)."""
    return [sys.intern(w) for w in (w.strip() for w in words)
            if w and _WORD.search(w) and w not in STOPWORDS]


def words(segment: Callable[[str], list[str]], text: str, numbers: bool = True) -> list[str]:
    """The words BM25 counts in `text`: `segment`'s words of the normalised text minus
    stopwords, then (`numbers`) the value of each number written with a scale word or
    separators (numbers.py: `15万` and `150,000` both give `150000`)."""
    text = normalize(text)
    return _keep([*segment(text), *(number_words(text) if numbers else ())])


def tokenize(text: str, numbers: bool = True) -> list[str]:
    """Words for BM25: jieba search-mode segmentation (full dictionary), see `words`."""
    return words(_full_jieba().lcut_for_search, text, numbers)


def analysed_text(text: str) -> str:
    """`text` as a BM25 engine with its own jieba analyser (Milvus) is given it: normalised,
    then the values of its numbers (see `words`) as extra words."""
    text = normalize(text)
    return " ".join([text, *number_words(text)])


_BLOCK = 1 << 20  # entries per block of weight arithmetic (bounds its float64 temporaries)


def bm25_weights(tokens: Sequence[Sequence[str]]) -> tuple[dict[str, int], np.ndarray,
                                                            np.ndarray, np.ndarray]:
    """bm25s's BM25 weights (Lucene idf, k1 BM25_K1, b BM25_B; a CSC matrix, one column per
    word, rows = passages) and its vocabulary, computed as bm25s computes them — a test checks
    the scores agree — but one passage's word counts at a time, in numpy arrays.

    bm25s.BM25.index keeps every passage's word ids as Python lists and builds the matrix
    through scipy's COO: on 103,012 real passages it added 680 MB at its peak, more than the
    rest of indexing together; this adds ~12 bytes per distinct word of a passage
    (benchmarks/results/memory.md)."""
    vocab: dict[str, int] = {}
    terms: list[np.ndarray] = []
    freqs: list[np.ndarray] = []
    lengths = np.empty(len(tokens), dtype=np.float64)
    for row, words in enumerate(tokens):
        counts = Counter(words)
        terms.append(np.fromiter((vocab.setdefault(w, len(vocab)) for w in counts),
                                 dtype=np.int32, count=len(counts)))
        freqs.append(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
        lengths[row] = len(words)
    sizes = np.fromiter((len(t) for t in terms), dtype=np.int64, count=len(terms))
    term = np.concatenate(terms) if terms else np.zeros(0, np.int32)
    tf = np.concatenate(freqs) if freqs else np.zeros(0, np.float32)
    del terms, freqs
    rows = np.repeat(np.arange(len(tokens), dtype=np.int32), sizes)
    n_docs, n_words = len(tokens), len(vocab)
    df = np.bincount(term, minlength=n_words).astype(np.float64)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    norm = BM25_K1 * ((1 - BM25_B) + BM25_B * lengths / lengths.mean())
    weight = np.empty(len(term), dtype=np.float32)
    for at in range(0, len(term), _BLOCK):  # float64 as bm25s, a block at a time
        block = slice(at, at + _BLOCK)
        weight[block] = idf[term[block]] * (tf[block] / (norm[rows[block]] + tf[block]))
    del tf
    order = np.argsort(term, kind="stable")  # by word, then passage (rows ascend): CSC order
    indptr = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(np.bincount(term, minlength=n_words), out=indptr[1:])
    del term
    index_type = np.int32 if len(order) < 2**31 else np.int64
    vocab[""] = n_words  # bm25s's empty token (no column), kept for the saved format
    return vocab, weight[order], rows[order], indptr.astype(index_type)


def _query_dictionary(vocab: dict[str, int]) -> str:
    """A jieba dictionary of the indexed words and all single characters, with jieba's own
    frequencies and total, so that queries segment as documents did. Latin and digit runs are
    left out: jieba groups those without a dictionary, and listing them would make it emit their
    sub-strings as extra words."""
    tokenizer = _full_jieba()
    full = tokenizer.FREQ
    common = sorted(((f, w) for w, f in full.items() if f), reverse=True)[:COMMON_WORDS]
    entries: dict[str, int] = {w: f for f, w in common}
    entries.update((w, f) for w, f in full.items() if len(w) == 1 and f)
    for word in vocab:
        freq = full.get(word) or (_UNSEEN_WORD_FREQ if _HAN.search(word) else 0)
        if freq and not any(ch.isspace() for ch in word):
            entries[word] = freq
    # jieba scores a word by log(freq / total): keep the full dictionary's total with one
    # filler entry (a private-use character no text contains)
    entries["\ue000"] = max(1, tokenizer.total - sum(entries.values()))
    return "".join(f"{word} {freq}\n" for word, freq in sorted(entries.items()))


def _prefix_dict(text: str) -> tuple[dict[str, int], int]:
    """jieba's prefix dictionary (every word and word prefix -> frequency) and total of a
    dictionary text, as `jieba.Tokenizer.gen_pfdict` computes it."""
    import io

    import jieba

    freq, total = jieba.Tokenizer().gen_pfdict(io.BytesIO(text.encode("utf-8")))
    return freq, total


def _segmenter(prefix: tuple[dict[str, int], int]) -> Any:
    """A jieba tokenizer over a parsed dictionary, initialised in memory: jieba's own
    `initialize` would read and write a cache file in the shared temporary directory."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    segmenter = jieba.Tokenizer()
    segmenter.FREQ, segmenter.total = prefix
    segmenter.initialized = True
    return segmenter


def _load_prefix(directory: Path) -> tuple[dict[str, int], int]:
    """The saved prefix dictionary, or (an index from before it was saved, or written by another
    Python whose marshal format differs) the dictionary text parsed again."""
    try:
        freq, total = marshal.loads((directory / PREFIX_DICT).read_bytes())
        if isinstance(freq, dict) and isinstance(total, int):
            return freq, total
    except (OSError, ValueError, EOFError, TypeError):
        pass
    return _prefix_dict((directory / QUERY_DICT).read_text(encoding="utf-8"))


class LexicalIndex:
    """BM25 over passages, by passage id (the same ids as the vector index).

    The weights are bm25s's sparse matrix of precomputed BM25 scores in CSC form (one column per
    vocabulary word): a query's scores are the sums of its words' columns. Rows are positions;
    `ids` maps them to passage ids. Each passage's words are kept (`tokens.jsonl`), so adding or
    removing passages re-weights the collection without segmenting every text again.
    `numbers`: the passages' words include their numbers' values (numbers.py); an index saved
    before those existed has none, and its queries and added passages get none either.
    """

    def __init__(self, vocab: dict[str, int], data: np.ndarray, indices: np.ndarray,
                 indptr: np.ndarray, ids: np.ndarray, segmenter: Any = None,
                 tokens: list[list[str]] | None = None, directory: Path | None = None,
                 numbers: bool = True) -> None:
        self.vocab = vocab
        self.numbers = numbers
        self.data, self.indices, self.indptr = data, indices, indptr
        self.ids = ids
        self.size = len(ids)
        self.segmenter = segmenter
        self._tokens = tokens
        self._directory = directory

    @classmethod
    def build(cls, texts: Sequence[str], ids: np.ndarray | None = None) -> LexicalIndex:
        """Index `texts` with bm25s (Lucene BM25, BM25_K1/BM25_B); ids default to positions."""
        return cls.from_tokens([tokenize(t) for t in texts],
                               np.arange(len(texts)) if ids is None else ids)

    @classmethod
    def from_tokens(cls, tokens: list[list[str]], ids: np.ndarray,
                    numbers: bool = True) -> LexicalIndex:
        if not tokens:  # an empty collection (every source removed)
            return cls({}, np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(1, np.int64),
                       np.zeros(0, np.int64), tokens=[], numbers=numbers)
        vocab, data, indices, indptr = bm25_weights(tokens)
        return cls(vocab, data, indices, indptr, np.asarray(ids, dtype=np.int64), tokens=tokens,
                   numbers=numbers)

    @property
    def tokens(self) -> list[list[str]]:
        """Every passage's words, in row order (read from disk on first use)."""
        if self._tokens is None:
            if self._directory is None:
                raise ValueError("this lexical index has no stored words to update from")
            with (self._directory / TOKENS).open(encoding="utf-8") as handle:
                self._tokens = [json.loads(line) for line in handle]
        return self._tokens

    def updated(self, remove: Iterable[int], add: Sequence[tuple[int, str]]) -> LexicalIndex:
        """A new index without the passages `remove` and with `add` (id, text) pairs: BM25's
        statistics (idf, average length) depend on the whole collection, so all are re-weighted."""
        gone = set(remove)
        keep = [row for row, pid in enumerate(self.ids.tolist()) if pid not in gone]
        tokens = [self.tokens[row] for row in keep] + [tokenize(text, self.numbers)
                                                      for _, text in add]
        ids = np.concatenate([self.ids[keep], np.array([pid for pid, _ in add], dtype=np.int64)])
        return LexicalIndex.from_tokens(tokens, ids, self.numbers)

    def save(self, directory: Path) -> None:
        """Write the weights (bm25s's file names and layout), ids, words and query dictionary."""
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "data.csc.index.npy", self.data)
        np.save(directory / "indices.csc.index.npy", self.indices)
        np.save(directory / "indptr.csc.index.npy", self.indptr)
        np.save(directory / IDS, self.ids)
        (directory / "vocab.index.json").write_text(json.dumps(self.vocab, ensure_ascii=False),
                                                     encoding="utf-8")
        (directory / PARAMS).write_text(
            json.dumps({"k1": BM25_K1, "b": BM25_B, "method": "lucene", "num_docs": self.size,
                        NUMBERS_PARAM: self.numbers}),
            encoding="utf-8")
        with (directory / TOKENS).open("w", encoding="utf-8") as handle:
            for passage_words in self.tokens:
                handle.write(json.dumps(passage_words, ensure_ascii=False) + "\n")
        dictionary = _query_dictionary(self.vocab)
        (directory / QUERY_DICT).write_text(dictionary, encoding="utf-8")
        (directory / PREFIX_DICT).write_bytes(marshal.dumps(_prefix_dict(dictionary)))

    @classmethod
    def load(cls, directory: Path, size: int, mmap_above: int | None = 0,
             mapper: Callable[[Path], np.ndarray] | None = None) -> LexicalIndex:
        """Open a saved index for querying (small query dictionary). Weight files larger than
        `mmap_above` bytes are memory-mapped (by `mapper` if given: the FAISS store maps
        private copies, stores/pinned.py), smaller ones read into memory (None: all read)."""
        vocab = json.loads((directory / "vocab.index.json").read_text(encoding="utf-8"))
        files = [directory / f"{name}.csc.index.npy" for name in ("data", "indices", "indptr")]

        def read(file: Path) -> np.ndarray:
            if mmap_above is None or file.stat().st_size <= mmap_above:
                return np.load(file)
            return mapper(file) if mapper is not None else np.load(file, mmap_mode="r")

        data, indices, indptr = (read(file) for file in files)
        ids = np.load(directory / IDS) if (directory / IDS).is_file() else np.arange(size)
        if len(ids) != size:
            raise ValueError(f"{directory} holds {len(ids)} passages, not {size}")
        segmenter = _segmenter(_load_prefix(directory))
        params = directory / PARAMS
        numbers = params.is_file() and bool(
            json.loads(params.read_text(encoding="utf-8")).get(NUMBERS_PARAM, False))
        return cls(vocab, data, indices, indptr, ids, segmenter, directory=directory,
                   numbers=numbers)

    def query_words(self, query: str) -> list[str]:
        """The query's words as this index segments queries (its own dictionary, not jieba's
        full one), minus stopwords: what BM25 looks up, and what a hit's text highlights."""
        if self.segmenter is None:  # built in memory: segment as a saved index would
            self.segmenter = _segmenter(_prefix_dict(_query_dictionary(self.vocab)))
        return words(self.segmenter.lcut_for_search, query, self.numbers)

    def query_tokens(self, query: str) -> list[str]:
        """The query's words that are in the vocabulary (the only ones that can score)."""
        return [w for w in self.query_words(query) if w in self.vocab]

    def coverage(self, query: str) -> float:
        """The share of the query's words that are in the vocabulary: 0 when BM25 cannot match
        any of them (an English query over Chinese passages), 1 when it can match them all."""
        words = self.query_words(query)
        return sum(w in self.vocab for w in words) / len(words) if words else 0.0

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query` (as bm25s computes it)."""
        out = np.zeros(self.size, dtype=np.float32)
        for word in self.query_tokens(query):
            column = self.vocab[word]
            start, end = int(self.indptr[column]), int(self.indptr[column + 1])
            out[np.asarray(self.indices[start:end])] += self.data[start:end]  # unique per column
        return out

    def search(self, queries: Sequence[str], k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, passage ids) per query, like `FaissStore.search`, among `allowed`
        ids if given; passages with no query word in common are left out (id -1), since a zero
        BM25 score ranks nothing."""
        k = max(1, min(k, self.size))
        scores = np.zeros((len(queries), k), dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        mask = None if allowed is None else np.isin(self.ids, allowed)
        for row, query in enumerate(queries if self.size else ()):
            all_scores = self.scores(query)
            if mask is not None:
                all_scores[~mask] = 0
            top = np.argpartition(-all_scores, k - 1)[:k] if k < self.size else np.arange(k)
            top = top[np.lexsort((top, -all_scores[top]))]
            top = top[all_scores[top] > 0]
            ids[row, : len(top)] = self.ids[top]
            scores[row, : len(top)] = all_scores[top]
        return scores, ids
