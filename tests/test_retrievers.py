"""The retrievers compose as their frameworks' own (issue 38): options read at call time,
LangChain's search_type/search_kwargs and dict filters, LlamaIndex's similarity_top_k and
MetadataFilters, pickling, filters checked when made (FAISS and Milvus alike), and documents and
nodes that de-duplicate across queries and retrievers (QueryFusionRetriever in every mode)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import semsearch
from semsearch.errors import QueryError, UsageError
from semsearch.integrations.filters import to_where
from semsearch.integrations.langchain import SemsearchRetriever
from semsearch.integrations.llamaindex import SemsearchRetriever as LlamaRetriever

from .conftest import SEEDS

QUERY = "夫妻党员抗疫"
SOURCE = "002_b3706f758604a439.txt"


@pytest.fixture(scope="module")
def built(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seed files and a JSONL of records with fields of their own, saved."""
    docs = tmp_path_factory.mktemp("retrievers") / "docs"
    docs.mkdir()
    for name in (SOURCE, "000_0db68ecbc2c6cfcf.txt", "001_b0b1c2961d63c9fa.txt"):
        (docs / name).write_bytes((SEEDS / name).read_bytes())
    rows = [{"id": f"n{i}", "text": text, "year": 2018 + i, "tag": tag}
            for i, (text, tag) in enumerate([
                ("夫妻党员一起抗疫，社区居民送来锦旗。", "a\"b"),
                ("志愿者为居民送菜上门，热线电话昼夜有人接听。", "x"),
                ("党员干部下沉社区，夫妻二人坚守抗疫一线。", "x"),
                ("医护人员驰援武汉，夫妻党员并肩作战。", "y")])]
    (docs / "news.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = docs.parent / "idx"
    semsearch.build([docs], str(tiny_model)).save(out)
    return out


@pytest.fixture(scope="module")
def index(built: Path) -> semsearch.Index:
    return semsearch.load(built)


def ids(docs: list[Any]) -> list[str]:
    return [d.id for d in docs]


# ── LangChain: options read at call time ─────────────────────────────────────


def test_langchain_fields_changed_after_construction_count(index: semsearch.Index) -> None:
    retriever = SemsearchRetriever(index=index, k=4, mode="bm25")
    assert len(retriever.invoke(QUERY)) == 4
    retriever.k = 1
    assert len(retriever.invoke(QUERY)) == 1
    retriever.where = 'source like "news.jsonl%"'
    assert retriever.invoke(QUERY)[0].metadata["source"].startswith("news.jsonl#")
    retriever.mode = "dense"
    assert ids(retriever.invoke(QUERY)) == \
        [str(h.id) for h in index.search(QUERY, 1, "dense", where=retriever.where)]
    copy = retriever.model_copy(update={"k": 3, "where": None})
    assert len(copy.invoke(QUERY)) == 3 and len(retriever.invoke(QUERY)) == 1
    assert ids(copy.invoke(QUERY)) == [str(h.id) for h in index.search(QUERY, 3, "dense")]


def test_langchain_search_kwargs_and_filter_as_vector_store_retriever_takes_them(
        index: semsearch.Index) -> None:
    retriever = SemsearchRetriever(index=index, mode="bm25",
                                   search_kwargs={"k": 2, "filter": {"year": {"$gte": 2020}}})
    docs = retriever.invoke(QUERY)
    assert len(docs) == 2 and all(d.metadata["year"] >= 2020 for d in docs)
    assert len(retriever.invoke(QUERY, k=1)) == 1  # the call's own option wins
    records = retriever.invoke(QUERY, where='source like "news%"', k=10)
    assert min(d.metadata["year"] for d in records) < 2020  # its filter replaces `filter`
    with pytest.raises(QueryError, match="unknown search option"):
        retriever.invoke(QUERY, top_k=2)


def test_langchain_mmr_picks_from_fetch_k_on_the_passage_vectors(index: semsearch.Index) -> None:
    from semsearch.search import query_vectors

    fetched = index.search(QUERY, 10, "dense")
    vectors = index.store.vectors(np.array([h.id for h in fetched]))
    cosine = vectors @ query_vectors(index.encoder, [QUERY])[0] / np.linalg.norm(vectors, axis=1)
    by_cosine = [str(fetched[i].id) for i in np.argsort(-cosine, kind="stable")]
    relevance = SemsearchRetriever(index=index, k=4, mode="dense", search_type="mmr",
                                   search_kwargs={"fetch_k": 10, "lambda_mult": 1.0})
    assert ids(relevance.invoke(QUERY)) == by_cosine[:4]  # lambda 1: relevance alone
    diverse = relevance.invoke(QUERY, lambda_mult=0.0)
    assert len(diverse) == 4 and len(set(ids(diverse))) == 4 and diverse[0].id == by_cosine[0]
    assert set(ids(diverse)) <= set(by_cosine)  # picked among the fetch_k
    for bad, needle in (({"fetch_k": 2}, "fetch_k"), ({"lambda_mult": 2}, "lambda_mult")):
        with pytest.raises(QueryError, match=needle):
            SemsearchRetriever(index=index, search_type="mmr", search_kwargs=bad)
    with pytest.raises(QueryError, match="applies to search_type 'mmr'"):
        SemsearchRetriever(index=index).invoke(QUERY, fetch_k=9)


def test_langchain_score_threshold(index: semsearch.Index) -> None:
    hits = index.search(QUERY, 10, "dense")
    middle = hits[4].score
    kept = SemsearchRetriever(index=index, k=10, mode="dense",
                              search_type="similarity_score_threshold",
                              search_kwargs={"score_threshold": middle}).invoke(QUERY)
    assert ids(kept) == [str(h.id) for h in hits if h.score >= middle]
    with pytest.raises(QueryError, match="score_threshold"):
        SemsearchRetriever(index=index, search_type="similarity_score_threshold")
    with pytest.raises(QueryError, match="search_type"):
        SemsearchRetriever(index=index, search_type="magic")


@pytest.mark.parametrize(("found", "where"), [
    ({"source": "a.txt", "paragraph": {"$gt": 2}}, '(source == "a.txt") and (paragraph > 2)'),
    ({"year": {"$gte": 1, "$lt": 3}}, "year >= 1 and year < 3"),
    ({"tag": {"$in": ["x", 'a"b']}}, 'tag in ["x", "a\\"b"]'),
    ({"$or": [{"tag": "x"}, {"year": {"$ne": None}}]}, '(tag == "x") or (year != None)'),
    ({"$and": [{"flag": True}, {"tag": {"$nin": []}}]}, "(flag == True) and (tag not in [])"),
])
def test_dict_filters_translate_to_where(found: dict[str, Any], where: str) -> None:
    assert to_where(found) == where


@pytest.mark.parametrize(("found", "needle"), [
    ({"year": {"$regex": "x"}}, "unknown filter operator"), ({}, "non-empty"),
    ({"a b": 1}, "cannot filter on"), ({"$or": {"a": 1}}, "list"),
    ({"year": {"$in": 3}}, "takes a list"), ({"year": [1]}, "cannot filter on the value"),
    ({"year": float("nan")}, "cannot filter on the value"),
])
def test_bad_dict_filters_are_refused(found: dict[str, Any], needle: str) -> None:
    with pytest.raises(QueryError, match=needle):
        to_where(found)


def test_dict_filters_match_as_where_does_and_quote_safely(index: semsearch.Index) -> None:
    retriever = SemsearchRetriever(index=index, k=10, mode="dense",
                                   where={"tag": "x", "year": {"$gt": 2018}})
    assert {d.metadata["source"] for d in retriever.invoke(QUERY)} == \
        {"news.jsonl#n1", "news.jsonl#n2"}
    retriever.mode = "bm25"
    quoted = retriever.invoke(QUERY, where={"tag": 'a"b'})
    assert [d.metadata["source"] for d in quoted] == ["news.jsonl#n0"]
    injected = retriever.invoke(QUERY, filter={"tag": 'x" or year > 0 or tag == "'})
    assert injected == []  # text, never code


def test_a_bad_where_is_refused_when_the_retriever_is_made(index: semsearch.Index) -> None:
    for where in ("nope == 1", {"nope": 1}, "paragraph >"):
        with pytest.raises(QueryError, match=r"unknown field|bad filter"):
            SemsearchRetriever(index=index, where=where)
    with pytest.raises(QueryError, match="unknown field"):
        LlamaRetriever(index, where="nope == 1")
    with pytest.raises(QueryError, match="unknown field"):
        SemsearchRetriever(index=index, search_kwargs={"filter": {"nope": 1}})


# ── pickling ───────────────────────────────────────────────────────────────


def test_pickled_retrievers_answer(built: Path, index: semsearch.Index) -> None:
    chain = SemsearchRetriever(index=index, k=2, where={"year": {"$gte": 2019}}, mode="bm25")
    again = pickle.loads(pickle.dumps(chain))
    assert ids(again.invoke(QUERY)) == ids(chain.invoke(QUERY)) and again.k == 2
    llama = LlamaRetriever(str(built), similarity_top_k=2, mode="bm25")
    back = pickle.loads(pickle.dumps(llama))
    assert [n.node.node_id for n in back.retrieve(QUERY)] == \
        [n.node.node_id for n in llama.retrieve(QUERY)]


def test_a_retriever_over_an_unsaved_index_says_so_when_pickled(tiny_model: Path) -> None:
    memory = semsearch.build([SEEDS / SOURCE], str(tiny_model))
    for retriever in (SemsearchRetriever(index=memory), LlamaRetriever(memory)):
        with pytest.raises(UsageError, match="only in memory: save it first"):
            pickle.dumps(retriever)


# ── de-duplication across queries and retrievers ──────────────────────────


def test_langchain_duplicates_collapse(index: semsearch.Index) -> None:
    """MultiQueryRetriever keeps `doc not in docs[:i]` (Document equality), EnsembleRetriever
    de-duplicates by page_content: the same passage from two queries must be equal."""
    retriever = SemsearchRetriever(index=index, k=4, mode="bm25")
    first, second = retriever.invoke(QUERY), retriever.invoke("夫妻党员")
    union = first + second
    unique = [doc for i, doc in enumerate(union) if doc not in union[:i]]
    assert len(unique) == len({d.id for d in union}) < len(union)


def test_llamaindex_options_filters_and_source(index: semsearch.Index) -> None:
    from llama_index.core.vector_stores.types import (
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
    )

    retriever = LlamaRetriever(index, similarity_top_k=3, mode="bm25")
    nodes = retriever.retrieve(QUERY)
    assert len(nodes) == 3
    for scored in nodes:
        assert scored.node.ref_doc_id == scored.node.metadata["source"]
        assert "score" not in scored.node.metadata and "rank" not in scored.node.metadata
    retriever.similarity_top_k = 1
    assert len(retriever.retrieve(QUERY)) == 1
    retriever.filters = MetadataFilters(filters=[
        MetadataFilter(key="year", operator=FilterOperator.GTE, value=2020),
        MetadataFilter(key="tag", value="x")])
    retriever.similarity_top_k = 5
    assert [n.node.metadata["source"] for n in retriever.retrieve(QUERY)] == \
        ["news.jsonl#n2"]
    retriever.filters = MetadataFilters(filters=[MetadataFilter(key="tag", value="x")],
                                        condition=FilterCondition.NOT)
    assert all(n.node.metadata.get("tag") != "x" for n in retriever.retrieve(QUERY))
    with pytest.raises(QueryError, match="not supported"):
        LlamaRetriever(index, filters=MetadataFilters(filters=[
            MetadataFilter(key="tag", operator=FilterOperator.TEXT_MATCH, value="x")]))


@pytest.mark.parametrize("mode", ["reciprocal_rerank", "relative_score", "dist_based_score",
                                  "simple"])
def test_query_fusion_fills_top_k_with_distinct_passages(index: semsearch.Index,
                                                         mode: str) -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever

    fusion = QueryFusionRetriever(
        [LlamaRetriever(index, similarity_top_k=4, mode="hybrid"),
         LlamaRetriever(index, similarity_top_k=4, mode="bm25")],
        llm=MockLLM(), mode=mode, similarity_top_k=4, num_queries=1, use_async=False)
    nodes = fusion.retrieve(QUERY)
    assert len(nodes) == 4 and len({n.node.node_id for n in nodes}) == 4


def test_query_engine_with_a_postprocessor(index: semsearch.Index) -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.postprocessor import SimilarityPostprocessor
    from llama_index.core.query_engine import RetrieverQueryEngine

    retriever = LlamaRetriever(index, similarity_top_k=5, mode="dense")
    scores = [n.score for n in retriever.retrieve(QUERY)]
    cutoff = sorted(scores)[2]
    engine = RetrieverQueryEngine.from_args(
        retriever, llm=MockLLM(max_tokens=8),
        node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=cutoff)])
    answer = engine.query(QUERY)
    assert str(answer)  # MockLLM answers with text of its own
    assert [n.score for n in answer.source_nodes] == [s for s in scores if s >= cutoff]
    assert all(n.node.ref_doc_id for n in answer.source_nodes)


# ── Milvus: the same QueryError as FAISS for an unknown field ────────────


def test_milvus_refuses_an_unknown_field_as_faiss_does(built: Path, index: semsearch.Index,
                                                      tiny_model: Path, tmp_path: Path) -> None:
    """Milvus keeps the metadata keys in its manifest (made by migrate, create and add), so
    a filter on a key no passage has is refused there too, not answered with 0 hits."""
    pytest.importorskip("milvus_lite")
    from semsearch.stores import milvus

    store, _ = milvus.migrate(index.store, str(tmp_path / "migrated.db"))
    store.close()
    news = built.parent / "docs" / "news.jsonl"
    created = semsearch.Index.build([news], model=str(tiny_model),
                                    location=str(tmp_path / "created.db"))
    created.close()
    for opened in (index, semsearch.connect(str(tmp_path / "migrated.db")),
                   semsearch.connect(str(tmp_path / "created.db"))):
        with pytest.raises(QueryError, match="unknown field 'nope'"):
            opened.search(QUERY, 3, "bm25", where="nope == 1")
        with pytest.raises(QueryError, match="unknown field 'nope'"):
            SemsearchRetriever(index=opened, where={"nope": 1})
        assert opened.search(QUERY, 3, "bm25", where="year >= 2020")  # a real key still works
        retriever = SemsearchRetriever(index=opened, k=2, mode="bm25", where={"year": 2021})
        again = pickle.loads(pickle.dumps(retriever))  # a Milvus URI and collection, reopened
        assert ids(again.invoke(QUERY)) == ids(retriever.invoke(QUERY))
