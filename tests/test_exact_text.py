"""A retriever's text is the source's own `[start:end]` (issue 38): offsets slice the text a
hit returns, for hits and contexts, on files with blank lines, CRLF line ends and whitespace
that cleaning changes; and where the source is gone or changed, the stored text, said so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import semsearch
from semsearch.integrations.langchain import SemsearchRetriever
from semsearch.integrations.llamaindex import SemsearchRetriever as LlamaRetriever

BROKEN = ("社区志愿者每天清晨为独居老人送去新鲜蔬菜和药品，他们穿着红色马甲穿梭在楼道之间，\n"
          "从不抱怨辛苦。")
FILES = {
    # paragraphs between blank lines, one of them broken across two lines (cleaning joins it)
    "blank.txt": ("夫妻党员一起抗疫，社区居民送来锦旗。\n\n" + BROKEN + "\n\n\n"
                  "医护人员驰援武汉，夫妻党员并肩作战，守护一方平安。\n"),
    # Windows line ends, wrapped English lines, and a paragraph of runs of spaces and tabs
    "crlf.txt": ("Volunteers delivered  vegetables to\r\nelderly residents every morning during "
                 "the\r\nlockdown.\r\n\r\nThe couple, both party members,\t\tworked on the front "
                 "line.\r\n\r\nDonations of 150,000 yuan   arrived from   local firms.\r\n"),
}
QUERIES = ["夫妻党员抗疫", "volunteers vegetables", "donations", "社区志愿者"]


@pytest.fixture(scope="module")
def built(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    docs = tmp_path_factory.mktemp("exact") / "docs"
    docs.mkdir()
    for name, text in FILES.items():
        (docs / name).write_bytes(text.encode("utf-8"))
    out = docs.parent / "idx"
    semsearch.build([docs], str(tiny_model)).save(out)
    return docs, out


def _sliced(docs: Path, source: str, start: int, end: int) -> str:
    return (docs / source).read_bytes().decode("utf-8")[start:end]


@pytest.mark.parametrize("context", [0, 1])
def test_offsets_slice_the_text_of_every_document_and_node(built: tuple[Path, Path],
                                                          context: int) -> None:
    docs, out = built
    index = semsearch.load(out)
    chain = SemsearchRetriever(index=index, k=10, mode="dense", context=context)
    llama = LlamaRetriever(index, similarity_top_k=10, mode="dense", context=context)
    differed = 0
    for query in QUERIES:
        hits = index.search(query, 10, "dense", context=context)
        for doc, scored, hit in zip(chain.invoke(query), llama.retrieve(query), hits,
                                    strict=True):
            meta = doc.metadata
            span = (meta["context_start"], meta["context_end"]) if context else \
                (meta["start"], meta["end"])
            assert meta["exact"] is True
            assert doc.page_content == _sliced(docs, meta["source"], *span)
            node = scored.node
            assert (node.start_char_idx, node.end_char_idx) == span
            assert node.get_content() == doc.page_content
            stored = hit.context.text if hit.context is not None else hit.text
            differed += stored != doc.page_content
    assert differed  # the stored text alone would not have sliced (what the issue measured)


def test_a_changed_or_missing_source_gives_the_stored_text(built: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    docs, out = built
    moved = tmp_path / "docs"
    shutil.copytree(docs, moved)
    index = semsearch.load(out)
    try:
        (docs / "crlf.txt").write_bytes(FILES["crlf.txt"].replace("yuan", "dollars").encode())
        shutil.move(docs / "blank.txt", tmp_path / "blank.txt")
        found = SemsearchRetriever(index=index, k=10, mode="dense", context=1).invoke("抗疫")
        hits = index.search("抗疫", 10, "dense", context=1)
        assert [d.page_content for d in found] == [h.context.text for h in hits if h.context]
        assert not any(d.metadata["exact"] for d in found)
    finally:
        shutil.rmtree(docs)
        shutil.copytree(moved, docs)


def test_exact_false_keeps_the_stored_text(built: tuple[Path, Path]) -> None:
    _, out = built
    index = semsearch.load(out)
    docs = SemsearchRetriever(index=index, k=10, mode="dense", exact=False).invoke("抗疫")
    assert [d.page_content for d in docs] == [h.text for h in index.search("抗疫", 10, "dense")]
    assert not any(d.metadata["exact"] for d in docs)
