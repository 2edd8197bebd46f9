"""Numbers written different ways meet in BM25: 15万 = 150,000 = 150000, 6600万 = 66 million."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.lexical import PARAMS, LexicalIndex, normalize, tokenize, words
from semsearch.numbers import number_words


@pytest.mark.parametrize(("text", "values"), [
    ("通城电建捐款15万元", ["150000"]),
    ("who donated 150,000 yuan", ["150000"]),
    ("6600万年前发生了什么事件？", ["66000000"]),
    ("What event happened 66 million years ago?", ["66000000"]),
    ("5.05亿年前", ["505000000"]),
    ("505 million years ago", ["505000000"]),
    ("1.2万亿元", ["1200000000000"]),
    ("0.15 million and 1.5 billion", ["150000", "1500000000"]),
    ("第5千名, 5 thousand", ["5000", "5000"]),
    ("15 万 and 12,345.67 and 2,000,000,000", ["150000", "12345.67", "2000000000"]),
])
def test_numbers_with_scale_words_or_separators_give_their_value(text: str,
                                                                  values: list[str]) -> None:
    assert number_words(normalize(text)) == values


@pytest.mark.parametrize("text", [
    "2019年12月", "3.5%", "1500 people", "v1.2.3", "1,2,3", "150,0001", "66 millions",
    "2 millionaires", "十五万元", "",
])
def test_plain_numbers_and_other_digits_give_nothing(text: str) -> None:
    assert number_words(normalize(text)) == []


DOCS = [
    "通城电建为抗疫捐款15万元。",
    "企业向疾控中心捐赠1200套医用防护服。",
    "6600万年前发生了白垩纪—古近纪灭绝事件。",
    "The stadium seats 80,000 people and opened in 1994.",
]


@pytest.mark.parametrize(("query", "expected"), [
    ("who donated 150,000 yuan", 0),
    ("1,200 medical protective suits", 1),
    ("What event happened 66 million years ago?", 2),
    ("可容纳8万人的体育场", 3),
])
def test_a_number_finds_the_same_value_written_another_way(query: str, expected: int) -> None:
    """Before number values, BM25 had no word in common here (`150` `000` against `15` `万元`):
    the English question did not find the Chinese passage at all."""
    scores, ids = LexicalIndex.build(DOCS).search([query], k=2)
    assert ids[0][0] == expected and scores[0][0] > 0


def test_an_index_saved_before_number_values_keeps_its_words(tmp_path: Path) -> None:
    """An index saved without number values gets none in its queries or added passages, so
    its BM25 coverage and scores are what they were; a new one records that it has them."""
    index = LexicalIndex.build(DOCS)
    index.save(tmp_path / "new")
    assert LexicalIndex.load(tmp_path / "new", len(DOCS)).query_words("150,000 yuan")[-1] \
        == "150000"
    old = LexicalIndex.from_tokens([tokenize(t, numbers=False) for t in DOCS],
                                   np.arange(len(DOCS)), numbers=False)
    old.save(tmp_path / "old")
    params = tmp_path / "old" / PARAMS
    saved = json.loads(params.read_text("utf-8"))
    saved.pop("number_values")  # as written before number values existed
    params.write_text(json.dumps(saved), "utf-8")
    loaded = LexicalIndex.load(tmp_path / "old", len(DOCS))
    assert "150000" not in loaded.query_words("150,000 yuan")
    assert loaded.coverage("150,000 yuan") == old.coverage("150,000 yuan")
    grown = loaded.updated(remove=(), add=[(len(DOCS), "新增捐款8万元")])
    assert "80000" not in grown.tokens[-1] and not grown.numbers


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789,. 万亿千百十元年millonthusadbr党员")),
               max_size=40))
def test_number_values_only_add_words(text: str) -> None:
    """Every word jieba found is still there, in order: number values come after them."""
    from semsearch.lexical import _full_jieba

    plain = words(_full_jieba().lcut_for_search, text, numbers=False)
    full = tokenize(text)
    assert full[: len(plain)] == plain
    assert all(w.replace(".", "").isdigit() for w in full[len(plain):])
