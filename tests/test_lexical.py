"""BM25 over jieba words: Chinese segmentation, traditional folding, no zero-score hits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from semsearch.lexical import LexicalIndex, normalize, tokenize

DOCS = [
    "我们夫妻俩都是党员，一起奋战在抗疫一线。",
    "志愿者为隔离居民配送生活物资。",
    "Volunteers delivered groceries to families in quarantine.",
]


def test_tokenize_segments_chinese_and_folds_variants() -> None:
    assert tokenize("夫妻党员抗疫") == ["夫妻", "党员", "抗疫"]
    assert tokenize("夫妻黨員抗疫") == tokenize("夫妻党员抗疫")
    assert tokenize("ＶＯＬＵＮＴＥＥＲＳ of the city") == ["volunteers", "city"]
    assert normalize("黨員") == "党员"


def test_search_finds_chinese_words_and_skips_non_matches() -> None:
    index = LexicalIndex.build(DOCS)
    scores, ids = index.search(["夫妻黨員", "groceries", "完全无关的词语"], k=3)
    assert ids[0][0] == 0 and scores[0][0] > 0
    assert ids[1][0] == 2
    assert list(ids[0][1:]) == [-1, -1]  # the other passages share no word: not ranked
    assert (ids[2] == -1).all() and (scores[2] == 0).all()


def test_save_load_round_trip(tmp_path: Path) -> None:
    index = LexicalIndex.build(DOCS)
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", len(DOCS))
    for a, b in zip(index.search(["党员 物资"], 3), loaded.search(["党员 物资"], 3), strict=True):
        np.testing.assert_array_equal(a, b)


def test_query_scoring_equals_bm25s(tmp_path: Path) -> None:
    """Scores read from the saved matrix (with the small query dictionary) are bm25s's."""
    import bm25s

    from .conftest import SEEDS

    texts = [p for f in sorted(SEEDS.glob("*.txt")) for p in f.read_text("utf-8").split("\n\n")
             if p.strip()]
    index = LexicalIndex.build(texts)
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", len(texts))
    reference = bm25s.BM25()
    reference.index([tokenize(t) for t in texts], show_progress=False)
    from semsearch.bench import DEFAULT_QRELS, load_qrels

    queries = [q.query for q in load_qrels(DEFAULT_QRELS)] + ["12345热线 疫情工单"]
    differ = 0
    for query in queries:
        tokens = [t for t in tokenize(query) if t in reference.vocab_dict]
        ours = loaded.query_tokens(query)
        differ += ours != tokens
        expected = reference.get_scores(ours) if ours else np.zeros(len(texts))
        np.testing.assert_allclose(loaded.scores(query), expected, rtol=1e-5)
    # the query dictionary is a subset of jieba's: 6 of the 68 labelled queries segment differently
    assert differ <= len(queries) // 10, f"{differ} of {len(queries)} queries segment differently"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["党员", "抗疫", "夫妻", "志愿者", "a", "社区", "送菜"]),
                         max_size=12), min_size=1, max_size=30))
def test_weights_equal_bm25s(tokens: list[list[str]]) -> None:
    """Our one-passage-at-a-time BM25 matrix holds bm25s's weights, word for word (issue 15:
    bm25s's own build took 680 MB at 100k passages)."""
    import bm25s

    from semsearch.lexical import BM25_B, BM25_K1, bm25_weights

    assume(any(tokens))  # bm25s cannot index a collection without a single word
    reference = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    reference.index(tokens, show_progress=False)
    vocab, data, indices, indptr = bm25_weights(tokens)
    assert set(vocab) == set(reference.vocab_dict)
    ref = reference.scores
    for word, column in reference.vocab_dict.items():
        if word == "":
            continue
        ours = vocab[word]
        mine = dict(zip(indices[indptr[ours]:indptr[ours + 1]].tolist(),
                        data[indptr[ours]:indptr[ours + 1]].tolist(), strict=True))
        theirs = dict(zip(ref["indices"][ref["indptr"][column]:ref["indptr"][column + 1]].tolist(),
                          ref["data"][ref["indptr"][column]:ref["indptr"][column + 1]].tolist(),
                          strict=True))
        assert mine.keys() == theirs.keys(), word
        np.testing.assert_allclose(list(mine.values()), [theirs[r] for r in mine], rtol=1e-6)
