"""Context around a hit (issue 25): neighbouring passages of the same document, merged by
offsets, on FAISS and Milvus Lite, through `Index.context`, `search(context=N)`, the CLI's
--context and the service's "context" field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import semsearch
from semsearch.cli import app
from semsearch.context import ContextPassage, merge
from semsearch.errors import QueryError

from .conftest import SEEDS

runner = CliRunner()
QUERY = "夫妻党员抗疫"


@pytest.fixture(scope="module")
def built(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("context") / "idx"
    semsearch.build([SEEDS], str(tiny_model)).save(out)
    return out


def _by_source(index: semsearch.Index) -> dict[str, list[tuple[int, semsearch.Passage]]]:
    """Each document's (id, passage)s in reading order: what a context must be cut from."""
    documents: dict[str, list[tuple[int, semsearch.Passage]]] = {}
    for pid, passage in sorted(index.store.iter_passages()):
        documents.setdefault(passage.source, []).append((pid, passage))
    for passages in documents.values():
        passages.sort(key=lambda item: item[1].start)
    return documents


def _expected_ids(index: semsearch.Index, hit: semsearch.Hit, before: int,
                  after: int) -> list[int]:
    ids = [pid for pid, _ in _by_source(index)[hit.source]]
    at = ids.index(hit.id)
    return ids[max(0, at - before):at + after + 1]


def _check(index: semsearch.Index, hit: semsearch.Hit, context: semsearch.Context,
           before: int, after: int) -> None:
    """`context` is the hit's neighbours in its document, in order, merged."""
    assert [p.id for p in context.passages] == _expected_ids(index, hit, before, after)
    assert all(p.source == hit.source for p in context.passages)
    assert context.start == context.passages[0].start <= hit.start
    assert context.end == context.passages[-1].end >= hit.end
    assert hit.text in context.text
    for passage in context.passages:  # no passage lost, none repeated (seeds do not overlap)
        assert context.text.count(passage.text) == 1


def test_context_is_the_neighbours_in_the_same_document(built: Path) -> None:
    index = semsearch.load(built)
    documents = _by_source(index)
    hits = index.search(QUERY, k=10, mode="bm25")
    assert len(hits) == 10
    for hit in hits:
        for before, after in ((1, 1), (0, 2), (3, 0), (50, 50)):
            _check(index, hit, index.context(hit, before, after), before, after)
    alone = index.context(hits[0], 0, 0)
    assert alone.text == hits[0].text and alone.passages[0].id == hits[0].id
    assert (alone.start, alone.end) == (hits[0].start, hits[0].end)
    whole = index.context(hits[0], 50, 50)  # every seed document has fewer passages
    assert [p.id for p in whole.passages] == [pid for pid, _ in documents[hits[0].source]]


def test_context_stops_at_the_edges_of_a_document(built: Path) -> None:
    """The first passage of a document does not reach back into the one indexed before it,
    nor the last into the next (their ids are adjacent)."""
    index = semsearch.load(built)
    documents = list(_by_source(index).values())
    assert len(documents) == 4
    firsts = [(pid, passage) for pid, passage in (d[0] for d in documents[1:])]
    lasts = [(pid, passage) for pid, passage in (d[-1] for d in documents[:-1])]
    for pid, passage in firsts + lasts:
        hit = semsearch.Hit(**vars(passage), rank=1, score=1.0, id=pid)
        context = index.context(hit, 2, 2)
        assert {p.source for p in context.passages} == {passage.source}
        assert len(context.passages) == 3  # two on one side, none on the other


def test_search_with_context_gives_each_hit_its_context(built: Path) -> None:
    index = semsearch.load(built)
    plain = index.search_batch([QUERY, "志愿者 社区"], k=4)
    rich = index.search_batch([QUERY, "志愿者 社区"], k=4, context=2)
    assert [[h.id for h in hits] for hits in rich] == [[h.id for h in hits] for hits in plain]
    for hits in rich:
        for hit in hits:
            assert hit.context == index.context(hit, 2, 2)
    assert all(h.context is None and "context" not in h.to_dict() for h in plain[0])
    record = rich[0][0].to_dict()["context"]
    assert set(record) == {"text", "start", "end", "passages"}
    assert [set(p) for p in record["passages"]] == \
        [{"id", "text", "start", "end", "paragraph", "heading", "metadata"}] * \
        len(record["passages"])
    assert rich[0][0].id in [p["id"] for p in record["passages"]]
    json.dumps(record, ensure_ascii=False)  # plain JSON


@pytest.mark.parametrize("value", [-1, 51, True, 1.5, "1", None])
def test_bad_context_values_are_refused(built: Path, value: Any) -> None:
    index = semsearch.load(built)
    with pytest.raises(QueryError, match="context"):
        index.search(QUERY, context=value)
    hit = index.search(QUERY, k=1, mode="bm25")[0]
    with pytest.raises(QueryError, match="context"):
        index.context(hit, before=value)
    with pytest.raises(QueryError, match="hit from this index"):
        index.context("not a hit")  # type: ignore[arg-type]


def test_a_records_context_is_the_record_itself(tiny_model: Path, tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": f"第{i}条记录：社区党员志愿者为居民送菜上门，夫妻党员抗疫。"}
            for i in range(5)]
    file = tmp_path / "records.jsonl"
    file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    index = semsearch.build(file, str(tiny_model))
    hits = index.search("第2条记录", k=5, mode="bm25", context=3)
    assert len(hits) == 5
    for hit in hits:
        assert hit.context is not None
        assert [p.id for p in hit.context.passages] == [hit.id]
        assert hit.context.text == hit.text and hit.context.source == hit.source


def test_context_after_a_source_is_replaced(tiny_model: Path, tmp_path: Path) -> None:
    """A re-indexed document gets new ids after every other one: its context follows them and
    does not reach into the document indexed before it."""
    import shutil

    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    semsearch.build([docs], str(tiny_model)).save(tmp_path / "idx")
    index = semsearch.load(tmp_path / "idx", writable=True)
    name = "000_0db68ecbc2c6cfcf.txt"
    text = (docs / name).read_text("utf-8")
    (docs / name).write_text(text.replace("夫妻", "夫妇"), encoding="utf-8")
    assert index.add([docs]).replaced == [name]
    ids = [pid for pid, _ in _by_source(index)[name]]
    assert min(ids) > max(pid for pid, p in index.store.iter_passages() if p.source != name)
    hits = index.search("夫妇", k=5, mode="bm25", where=f'source == "{name}"')
    first = index.store.get([ids[0]])[ids[0]]
    hits.append(semsearch.Hit(**vars(first), rank=6, score=0.0, id=ids[0]))
    for hit in hits:
        _check(index, hit, index.context(hit, 2, 2), 2, 2)


def _cp(pid: int, text: str, start: int, end: int, paragraph: int = 1) -> ContextPassage:
    return ContextPassage(text, "a.txt", paragraph, start, end, id=pid)


def test_merge_joins_by_offsets_without_repeating_an_overlap() -> None:
    # passages that overlap in the document: the second repeats "CD" of the first
    merged = merge([_cp(2, "CDEF", 2, 6), _cp(1, "ABCD", 0, 4)])
    assert (merged.text, merged.start, merged.end) == ("ABCDEF", 0, 6)
    assert [p.id for p in merged.passages] == [1, 2]
    # one wholly inside another adds nothing; a gap in one paragraph keeps Latin words apart
    merged = merge([_cp(1, "One two.", 0, 8), _cp(2, "two", 4, 7), _cp(3, "Three.", 9, 15)])
    assert merged.text == "One two. Three." and merged.end == 15
    # CJK sentences join without a space; a new paragraph starts a new line
    merged = merge([_cp(1, "第一句。", 0, 4), _cp(2, "第二句。", 5, 9),
                    _cp(3, "下一段。", 11, 15, paragraph=2)])
    assert merged.text == "第一句。第二句。\n下一段。"
    # offsets that say "overlap" where cleaning changed the text: the textual overlap wins
    merged = merge([_cp(1, "ABC  DE", 0, 7), _cp(2, "DEFG", 5, 9)])
    assert merged.text == "ABC  DEFG"
    with pytest.raises(ValueError, match="at least one"):
        merge([])


def test_milvus_gives_the_same_contexts_as_faiss(built: Path, tmp_path: Path) -> None:
    from semsearch.stores import milvus
    from semsearch.stores.faiss import FaissStore

    uri = str(tmp_path / "ctx.db")
    milvus.migrate(FaissStore.load(built, mmap=False), uri)
    on_faiss = semsearch.load(built)
    with semsearch.connect(uri) as on_milvus:
        a = on_faiss.search_batch([QUERY, "志愿者"], k=5, mode="dense", context=2)
        b = on_milvus.search_batch([QUERY, "志愿者"], k=5, mode="dense", context=2)
        assert [[h.id for h in hits] for hits in b] == [[h.id for h in hits] for hits in a]
        assert [[h.context for h in hits] for hits in b] == \
            [[h.context for h in hits] for hits in a]
        first = on_milvus.store.get([0])[0]
        hit = semsearch.Hit(**vars(first), rank=1, score=1.0, id=0)
        _check(on_faiss, hit, on_milvus.context(hit, 0, 3), 0, 3)


def test_cli_context_as_json_and_table(built: Path) -> None:
    result = runner.invoke(app, ["query", QUERY, "--index", str(built), "-k", "2",
                                 "--mode", "bm25", "--context", "1", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    index = semsearch.load(built)
    expected = index.search(QUERY, k=2, mode="bm25", context=1)
    assert [h["context"] for h in hits] == [h.to_dict()["context"] for h in expected]
    result = runner.invoke(app, ["query", QUERY, "--index", str(built), "-k", "1",
                                 "--mode", "bm25", "--context", "1"])
    assert result.exit_code == 0, result.output
    flat = "".join(line.strip("│ ") for line in result.stdout.splitlines())
    assert expected[0].context is not None
    for passage in expected[0].context.passages:  # the whole context is shown, not a snippet
        assert passage.text[-12:] in flat.replace(" ", "")
    result = runner.invoke(app, ["query", QUERY, "--index", str(built), "--context", "-1"])
    assert result.exit_code != 0 and "--context must be from 0 to 50" in result.output


@pytest.fixture(scope="module")
def client(built: Path) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from semsearch.serve import create_app

    index = semsearch.load(built)
    with TestClient(create_app(index), raise_server_exceptions=False) as test_client:
        yield test_client


def test_service_context_field(client: Any, built: Path) -> None:
    response = client.post("/search", json={"query": QUERY, "k": 3, "mode": "bm25",
                                            "context": 2})
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    expected = semsearch.load(built).search(QUERY, k=3, mode="bm25", context=2)
    assert [h["context"] for h in hits] == [h.to_dict()["context"] for h in expected]
    plain = client.post("/search", json={"query": QUERY, "k": 3, "mode": "bm25"}).json()
    assert all("context" not in h for h in plain["hits"])
    for bad in (-1, 6, "1", True, 1.0, None):
        response = client.post("/search", json={"query": QUERY, "context": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"].startswith("bad request")
