"""The LangChain and LlamaIndex retrievers (issue 25) against the real packages on a small
index: documents and nodes, metadata, filters, context, async calls, bad options; and the
extras staying optional (`import semsearch` and the CLI never import them)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import semsearch
from semsearch.errors import QueryError
from semsearch.integrations.langchain import SemsearchRetriever
from semsearch.integrations.llamaindex import SemsearchRetriever as LlamaRetriever

from .conftest import SEEDS

# not skipped when the extras are missing: `make setup` installs them, and a skip would hide it

QUERY = "夫妻党员抗疫"
SOURCE = "002_b3706f758604a439.txt"
CORE = {"source", "paragraph", "start", "end", "heading", "id"}


@pytest.fixture(scope="module")
def built(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds and a JSONL of records with fields of their own."""
    docs = tmp_path_factory.mktemp("integrations") / "docs"
    docs.mkdir()
    for name in (SOURCE, "000_0db68ecbc2c6cfcf.txt"):
        (docs / name).write_bytes((SEEDS / name).read_bytes())
    rows = [{"id": "n1", "text": "夫妻党员一起抗疫，社区居民送来锦旗。", "year": 2020,
             "author": "王"},
            {"id": "n2", "text": "志愿者为居民送菜上门，热线电话昼夜有人接听。", "year": 2021,
             "author": "李"}]
    (docs / "news.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = docs.parent / "idx"
    semsearch.build([docs], str(tiny_model)).save(out)
    return out


@pytest.fixture(scope="module")
def index(built: Path) -> semsearch.Index:
    return semsearch.load(built)


def test_langchain_documents_are_the_hits(index: semsearch.Index, built: Path) -> None:
    from langchain_core.documents import Document

    retriever = SemsearchRetriever(index=index, k=3, exact=False)  # the stored text
    docs = retriever.invoke(QUERY)
    hits = index.search(QUERY, k=3)
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    assert [d.page_content for d in docs] == [h.text for h in hits]
    assert [d.id for d in docs] == [str(h.id) for h in hits]
    for doc, hit in zip(docs, hits, strict=True):
        assert set(doc.metadata) >= CORE
        assert (doc.metadata["source"], doc.metadata["id"], doc.metadata["start"]) == \
            (hit.source, hit.id, hit.start)
        assert "score" not in doc.metadata and "rank" not in doc.metadata  # see metadata()
    # a location instead of an Index; the same answers
    assert [d.page_content for d in SemsearchRetriever(index=str(built), k=3,
                                                       exact=False).invoke(QUERY)] \
        == [d.page_content for d in docs]


def test_langchain_record_fields_filters_and_per_call_options(index: semsearch.Index) -> None:
    retriever = SemsearchRetriever(index=index, k=5, mode="bm25",
                                   where='source like "news.jsonl%"')
    docs = retriever.invoke(QUERY)
    assert docs and all(d.metadata["source"].startswith("news.jsonl#") for d in docs)
    record = next(d for d in docs if d.metadata["source"] == "news.jsonl#n1")
    assert (record.metadata["year"], record.metadata["author"]) == (2020, "王")
    narrowed = retriever.invoke(QUERY, k=1, where=f'source == "{SOURCE}"')
    assert len(narrowed) == 1 and narrowed[0].metadata["source"] == SOURCE
    assert retriever.k == 5 and retriever.where == 'source like "news.jsonl%"'  # unchanged
    with pytest.raises(QueryError, match="unknown search option"):
        retriever.invoke(QUERY, top_k=2)
    with pytest.raises(QueryError, match="bad filter"):
        retriever.invoke(QUERY, where="paragraph >")


def test_langchain_context_and_async(index: semsearch.Index) -> None:
    retriever = SemsearchRetriever(index=index, k=3, mode="bm25", context=1, exact=False,
                                   where=f'source == "{SOURCE}"')
    docs = retriever.invoke(QUERY)
    hits = index.search(QUERY, k=3, mode="bm25", context=1, where=f'source == "{SOURCE}"')
    assert [d.page_content for d in docs] == [h.context.text for h in hits if h.context]
    for doc, hit in zip(docs, hits, strict=True):
        assert hit.text in doc.page_content and len(doc.page_content) > len(hit.text)
        assert doc.metadata["context_ids"] == [p.id for p in hit.context.passages]  # type: ignore[union-attr]
        assert doc.metadata["context_start"] <= doc.metadata["start"]
    again = asyncio.run(retriever.ainvoke(QUERY))
    assert [(d.page_content, d.metadata) for d in again] == \
        [(d.page_content, d.metadata) for d in docs]
    batch = asyncio.run(retriever.abatch([QUERY, "志愿者"]))
    assert [d.page_content for d in batch[0]] == [d.page_content for d in docs]


@pytest.mark.parametrize(("options", "needle"), [
    ({"k": 0}, "k must be"), ({"k": "3"}, "k must be"), ({"mode": "magic"}, "unknown mode"),
    ({"context": 51}, "context"), ({"context": -1}, "context"), ({"where": 5}, "filter"),
    ({"fusion": "x"}, "unknown fusion"),
])
def test_bad_options_are_refused_when_made(index: semsearch.Index, options: dict[str, object],
                                           needle: str) -> None:
    with pytest.raises(QueryError, match=needle):
        SemsearchRetriever(index=index, **options)
    with pytest.raises(QueryError, match=needle):
        LlamaRetriever(index, **options)  # type: ignore[arg-type]


def test_llamaindex_nodes_are_the_hits(index: semsearch.Index, built: Path) -> None:
    from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

    retriever = LlamaRetriever(index, k=3, exact=False)
    nodes = retriever.retrieve(QUERY)
    hits = index.search(QUERY, k=3)
    assert len(nodes) == 3 and all(isinstance(n, NodeWithScore) for n in nodes)
    assert all(isinstance(n.node, TextNode) for n in nodes)
    assert [n.node.get_content() for n in nodes] == [h.text for h in hits]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in hits])
    for scored, hit in zip(nodes, hits, strict=True):
        node = scored.node
        assert isinstance(node, TextNode)
        assert node.node_id == str(hit.id) and set(node.metadata) >= CORE
        assert (node.start_char_idx, node.end_char_idx) == (hit.start, hit.end)
        prompt = node.get_content(metadata_mode=MetadataMode.LLM)
        assert hit.source in prompt and f"start: {hit.start}" not in prompt
    assert [n.node.node_id for n in LlamaRetriever(str(built), k=3).retrieve(QUERY)] == \
        [n.node.node_id for n in nodes]


def test_llamaindex_filters_records_context_and_async(index: semsearch.Index) -> None:
    from llama_index.core.schema import TextNode

    records = LlamaRetriever(index, k=5, mode="bm25", where="year >= 2021").retrieve("居民")
    assert [n.node.metadata["source"] for n in records] == ["news.jsonl#n2"]
    assert records[0].node.metadata["author"] == "李"
    retriever = LlamaRetriever(index, k=2, mode="bm25", context=2, exact=False,
                               where=f'source == "{SOURCE}"')
    nodes = retriever.retrieve(QUERY)
    hits = index.search(QUERY, k=2, mode="bm25", context=2, where=f'source == "{SOURCE}"')
    for scored, hit in zip(nodes, hits, strict=True):
        node = scored.node
        assert isinstance(node, TextNode) and hit.context is not None
        assert node.get_content() == hit.context.text
        assert (node.start_char_idx, node.end_char_idx) == (hit.context.start, hit.context.end)
        assert node.metadata["context_ids"] == [p.id for p in hit.context.passages]
    again = asyncio.run(retriever.aretrieve(QUERY))
    assert [(n.node.get_content(), n.score) for n in again] == \
        [(n.node.get_content(), n.score) for n in nodes]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_semsearch_and_the_cli_never_import_the_frameworks(built: Path) -> None:
    done = _python(f"""
import sys
import semsearch, semsearch.cli, semsearch.serve, semsearch.integrations
from typer.testing import CliRunner
result = CliRunner().invoke(semsearch.cli.app, ["query", "抗疫", "--index", {str(built)!r},
                                                "--mode", "bm25", "--context", "1"])
assert result.exit_code == 0, result.output
loaded = sorted(m for m in sys.modules if m.split(".")[0] in
                ("langchain_core", "langchain", "llama_index", "langsmith"))
print(loaded)
""")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("module", "blocked", "extra"), [
    ("langchain", "langchain_core", "langchain"), ("llamaindex", "llama_index", "llamaindex")])
def test_a_missing_extra_names_it(module: str, blocked: str, extra: str) -> None:
    done = _python(f"""
import sys
sys.modules[{blocked!r}] = None  # as if the package were not installed
from semsearch.errors import MissingDependencyError
try:
    import semsearch.integrations.{module}
except MissingDependencyError as exc:
    print(exc.extra, "|", exc)
""")
    assert done.returncode == 0, done.stderr
    extra_named, message = done.stdout.strip().split(" | ")
    assert extra_named == extra and f"pip install 'semsearch[{extra}]'" in message


def test_seeds_top_document_is_the_query_top_hit(real_model: Path) -> None:
    """The done criterion: on the seeds index, with context=1, each framework's top document
    is `semsearch query`'s top hit."""
    done = subprocess.run([sys.executable, "-m", "semsearch.cli", "query", QUERY, "--json",
                           "-k", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    top = json.loads(done.stdout)["hits"][0]
    assert "我们夫妻俩都是党员" in top["text"]
    index = semsearch.open()
    doc = SemsearchRetriever(index=index, k=3, context=1).invoke(QUERY)[0]
    node = LlamaRetriever(index, k=3, context=1).retrieve(QUERY)[0]
    for meta, text in ((doc.metadata, doc.page_content), (node.node.metadata,
                                                          node.node.get_content())):
        assert (meta["id"], meta["source"], meta["start"], meta["end"]) == \
            (top["id"], top["source"], top["start"], top["end"])
        assert top["text"] in text and len(meta["context_ids"]) == 3
