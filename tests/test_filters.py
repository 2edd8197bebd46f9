"""Metadata filters: the expression language, and filtered search on every index type."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import semsearch
from semsearch.errors import QueryError
from semsearch.filters import MAX_MILVUS_CHARS, Filter, compile_filter, parse
from semsearch.passages import Passage
from semsearch.stores import faiss as ann

from .conftest import SEEDS, synthetic_store

P = Passage("一段文字", "news/a!.txt", 3, 10, 20, "献爱心 / 捐赠", {"year": 2021, "tag": "x"})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('source == "news/a!.txt"', True),
        ('source != "news/a!.txt"', False),
        ('source in ["b.txt", "news/a!.txt"] && paragraph > 2', True),
        ("paragraph >= 3 and start < 10", False),
        ("!(paragraph > 5) || year < 2000", True),
        ('heading like "献爱心%"', True),
        ('source like "news/_!.txt"', True),
        ('year >= 2020 and not tag == "y"', True),
        ("missing == 1", False),
        ('year > "text"', False),  # incomparable types: no match, no crash
    ],
)
def test_expressions(expression: str, expected: bool) -> None:
    assert parse(expression)(P) is expected


@pytest.mark.parametrize("bad", ['__import__("os")', "source ==", "a.b == 1", "", "x = 1",
                                 "lambda: 1"])
def test_bad_expressions_say_so(bad: str) -> None:
    with pytest.raises(QueryError, match="bad filter"):
        parse(bad)


def test_filtered_search_on_the_seeds(tiny_model: Path) -> None:
    index = semsearch.build([SEEDS], model=str(tiny_model))
    where = 'source == "002_b3706f758604a439.txt" and paragraph > 10'
    for mode in ("dense", "bm25", "hybrid"):
        hits = index.search("党员 志愿者 社区", k=8, mode=mode, where=where)  # type: ignore[arg-type]
        assert hits and all(h.source.startswith("002") and h.paragraph > 10 for h in hits)
    assert index.search("党员", where='source == "none.txt"') == []


@pytest.mark.parametrize("kind", ann.INDEX_TYPES)
def test_filter_works_on_every_index_type(kind: str) -> None:
    store, vectors = synthetic_store(kind, 1500, sources=5)
    _, ids = store.search(vectors[:20], 10, parse('source == "s2.txt"'))
    found = ids[ids >= 0]
    assert len(found) > 0 and all(i % 5 == 2 for i in found.tolist())


def test_like_is_linear_not_backtracking() -> None:
    """Before: `%` became `.*` in a regex; 5 of them never finished over 112 passages."""
    import time

    long = Passage("抗疫" * 5000, "a.txt", 1, 0, 1)
    predicate = parse('text like "' + "%" * 40 + 'X"')
    started = time.perf_counter()
    assert not any(predicate(long) for _ in range(20))
    assert time.perf_counter() - started < 1.0
    assert parse('text like "%抗%疫%"')(long) and parse('text like "抗_抗%"')(long)


@pytest.mark.parametrize(
    ("bad", "why"),
    [("not " * 980 + "paragraph > 1", "nested"),  # before: RecursionError traceback
     ("(" * 200 + "paragraph > 1" + ")" * 200, "nested"),
     ("...", "not a value"), ("source == 'a' # comment", "'#'"),
     ('paragraph > "a"', "is a number"), ('heading == 3', "is text"),
     (" or ".join(["paragraph > 1"] * 1000), "characters long")],
)
def test_hostile_or_meaningless_filters_are_refused(bad: str, why: str) -> None:
    with pytest.raises(QueryError, match=why):
        parse(bad)


def test_unknown_field_is_refused_by_the_index() -> None:
    """Before: a filter on a field no passage has silently returned nothing."""
    store, vectors = synthetic_store("flat", 50, sources=2)
    with pytest.raises(QueryError, match="unknown field 'yeer'"):
        store.search(vectors[:1], 5, parse("yeer > 2000", store.fields()))


TOKENS = ["source", "paragraph", "heading", "text", "year", "==", "!=", "<", ">=", "in", "not",
          "and", "or", "&&", "||", "!", "(", ")", "[", "]", ",", "like", '"%"', '"a%b_"', "'x'",
          "1", "2.5", "-3", "%", "_", "...", "#", "\\", '"', "__like__", "lambda", "=", "*"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40) | st.text(max_size=200))
def test_filter_grammar_fuzz(tokens: list[str] | str) -> None:
    """Any string is either a filter, evaluated quickly without error, or a QueryError."""
    import time

    expression = tokens if isinstance(tokens, str) else " ".join(tokens)
    try:
        predicate = parse(expression)
    except QueryError:
        return
    started = time.perf_counter()
    predicate(P)
    predicate(Passage("%" * 2000, "a", 1, 0, 1, "", {"year": "2021"}))
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("expression", "milvus"),
    [
        ('source == "a.txt"', 'source == "a.txt"'),
        ("1 < paragraph < 3", "(1 < paragraph and paragraph < 3)"),
        ("start < end and paragraph >= 2.5", "(start < end and paragraph >= 2.5)"),
        ("""source in ["a", 'b"c', "中文\\\\d"]""", r'source in ["a", "b\"c", "中文\\d"]'),
        ('paragraph in [1, 2.0, True, 2.5, "x"]', "paragraph in [1, 2]"),
        ('source not in [1]', "true"),
        ("year >= 2020", 'metadata["year"] >= 2020'),
        ("1990 < year <= 2000", '(1990 < metadata["year"] and metadata["year"] <= 2000)'),
        ('tag == "中文"', '(exists metadata["tag"] and metadata["tag"] == "中文")'),
        ("year != 2020", '(not exists metadata["year"] or metadata["year"] != 2020)'),
        ("year == None", 'not exists metadata["year"]'),
        ("year != None", 'exists metadata["year"]'),
        ('tag in ["x", 1]',
         '(exists metadata["tag"] and (metadata["tag"] == "x" or metadata["tag"] == 1))'),
        ('tag not in ["x", None]', 'not (not exists metadata["tag"] or metadata["tag"] == "x")'),
        ('tag like "x%_"', '(exists metadata["tag"] and metadata["tag"] like "x%_")'),
        ("not paragraph > 2", "not (paragraph > 2)"),
        ('!(heading like "献爱心%") || paragraph > 3',
         '(not (heading like "献爱心%") or paragraph > 3)'),
        ("flag == True and rank > 2.5",
         '((exists metadata["flag"] and metadata["flag"] == true) and metadata["rank"] > 2.5)'),
        ("paragraph and not heading", '(paragraph != 0 and not (heading != ""))'),
        ("id == 3 or true == 1",  # a key may be named like a column or a Milvus keyword
         '((exists metadata["id"] and metadata["id"] == 3) or '
         '(exists metadata["true"] and metadata["true"] == 1))'),
        # Python fails the whole filter where `year` cannot be compared, even if paragraph == 1:
        # `(y or not y)` is null exactly there, so the `or` is too
        ("year >= 2020 or paragraph == 1",
         '(metadata["year"] >= 2020 or (paragraph == 1 and '
         '(metadata["year"] >= 2020 or not (metadata["year"] >= 2020))))'),
        ("paragraph == 1 or year >= 2020", '(paragraph == 1 or metadata["year"] >= 2020)'),
        ("True", "true"), ("source == None and paragraph > 1", "false"),
        ("paragraph > 1 or 2 > 1", "true"), ("paragraph > 1 and not 2", "false"),
    ],
)
def test_rendered_for_milvus(expression: str, milvus: str) -> None:
    assert compile_filter(expression).to_milvus() == milvus


@pytest.mark.parametrize(
    ("expression", "why"),
    [('text like "a\\\\b"', "backslash"), ("tag", "bare metadata key"),
     ('"x" in source', "list of literals"), ("tag in heading", "list of literals"),
     ("paragraph > None", "None cannot be ordered"), ("year > paragraph", "with a literal"),
     ("source < paragraph", "always raises"), ("1 < 'a'", "always raises"),
     ("year == [1]", "only with `in`"), ("year in [[1]]", "only literals"),
     ("paragraph > 99999999999999999999", "64-bit"), ("paragraph < 1e999", "finite"),
     ('source == "a\\x01"', "control character"), ("(year > 1) == True", "cannot be compared"),
     ("__like__(paragraph > 1, 'x')", "applies to a field")],
)
def test_what_milvus_cannot_match_the_same_way_is_refused(expression: str, why: str) -> None:
    where = compile_filter(expression)  # a filter all the same: FAISS evaluates it
    with pytest.raises(QueryError, match=f"cannot run on Milvus: .*{why}"):
        where.to_milvus()


def test_guards_that_multiply_are_bounded() -> None:
    expression = "y0 > 1"
    for i in range(1, 6):
        expression = (f"({expression}) and y{i} > 1 or p{i} == 1" if i % 2
                      else f"not ({expression}) or y{i} > 1")
    with pytest.raises(QueryError, match=f"over {MAX_MILVUS_CHARS:,} characters"):
        compile_filter(expression).to_milvus()


def test_a_filter_is_compiled_once_and_knows_its_names() -> None:
    where = compile_filter('year > 2000 and heading like "献%" or not tag')
    assert isinstance(where, Filter) and parse(where.expression) is where
    assert where.names == {"year", "heading", "tag"}
    assert where == compile_filter(where.expression) and where(P)
    compile_filter("yeer > 1")
    with pytest.raises(QueryError, match="unknown field 'yeer'"):  # checked on the cached tree
        compile_filter("yeer > 1", ["year"])


def test_like_inside_a_string_literal_is_text() -> None:
    """Before: `like` was rewritten inside quotes too, so this compared with `__like__(a, 'b')`."""
    where = parse('source == "a like \'b\'" or heading == "x like \\"y%\\""')
    assert where(Passage("t", "a like 'b'", 1, 0, 1))
    assert where(Passage("t", "s", 1, 0, 1, 'x like "y%"'))
    assert where.to_milvus() == '(source == "a like \'b\'" or heading == "x like \\"y%\\"")'


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40) | st.text(max_size=200))
def test_milvus_rendering_fuzz(tokens: list[str] | str) -> None:
    """Any filter renders for Milvus, or is refused with a QueryError: nothing else escapes."""
    expression = tokens if isinstance(tokens, str) else " ".join(tokens)
    try:
        rendered = parse(expression).to_milvus()
    except QueryError:
        return
    assert len(rendered) <= MAX_MILVUS_CHARS


def test_a_few_alternating_filters_are_checked_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hybrid query, or a service whose users alternate filters: each filter is evaluated
    once while the index is unchanged, and again after the index changes."""
    import numpy as np

    from semsearch.columns import Columns

    store, vectors = synthetic_store("flat", 50, 5)
    checked: list[str] = []
    original = Columns.keep

    def counting(self: Columns, where: Filter) -> np.ndarray:
        checked.append(where.expression)
        return original(self, where)

    monkeypatch.setattr(Columns, "keep", counting)
    odd, even = parse("paragraph > 20", store.fields()), parse("paragraph <= 20", store.fields())
    for _ in range(3):
        for where in (odd, even):
            _, ids = store.search(vectors[:2], 5, where)
            assert ((ids > 20) if where is odd else (ids <= 20)).all()
    assert checked == ["paragraph > 20", "paragraph <= 20"]
    store.remove_sources(["s0.txt"])
    _, ids = store.search(vectors[:2], 5, odd)
    assert len(checked) == 3 and not np.isin(ids, np.arange(0, 50, 5)).any()
