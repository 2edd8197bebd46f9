"""What is embedded is what the document says (issue 21): headings only from structure and
embedded with their passages, runs of short lines kept as content, nothing left out silently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import semsearch
from semsearch.clean import clean_document
from semsearch.corpus import Document, scan
from semsearch.passages import Passage, drop_junk, prepare

NOTE = """# 购物清单

- 买牛奶
- 买鸡蛋
- 修理自行车

## 价格表

| 商品 | 价格 | 产地 |
|---|---|---|
| 苹果 | 5元 | 山东烟台 |
| 香蕉 | 3元 | 海南三亚 |

## 版权说明

本项目讨论著作权法的基本原则：作者对作品享有著作权。

王芳 李娜

张伟
"""
POEM = "静夜思\n\n床前明月光\n疑是地上霜\n举头望明月\n低头思故乡\n"
NOTE_HEADINGS = ["购物清单", "价格表", "版权说明"]
NOTE_RULES = ["|---|---|---|"]


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _content(text: str, headings: list[str], rules: list[str]) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [line for line in lines
            if line.lstrip("# ") not in headings and line not in rules]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text(NOTE, encoding="utf-8")
    (docs / "poem.txt").write_text(POEM, encoding="utf-8")
    return docs


def test_short_lines_are_content_not_headings(folder: Path) -> None:
    """Before: `王芳 李娜` was the heading of `张伟`, and the poem's lines headings of the last."""
    prepared = prepare(scan([folder]).documents)
    text = "\0".join(_squeeze(p.text) for p in prepared.passages)
    for line in _content(NOTE, NOTE_HEADINGS, NOTE_RULES) + _content(POEM, ["静夜思"], []):
        assert _squeeze(line) in text, line
    headings = {p.heading for p in prepared.passages}
    assert headings == {"购物清单", "购物清单 / 价格表", "购物清单 / 版权说明", "静夜思"}
    # what left the passage text is counted per reason
    assert prepared.dropped == {"note.md": {"heading": 3, "markup": 1},
                                "poem.txt": {"heading": 1}}


def test_headings_are_embedded_with_their_passages() -> None:
    passage = Passage("床前明月光", "poem.txt", 2, 5, 10, "静夜思")
    assert passage.embedded_text == "静夜思\n床前明月光" == passage.lexical_text
    assert Passage("正文", "a.txt", 1, 0, 2).embedded_text == "正文"


def test_every_content_line_is_in_a_hit_text(folder: Path, tiny_model: Path) -> None:
    """Every content line of the note and the poem is in the text of a hit for that line, in
    BM25 and dense mode; the heading lines are in the hits' heading (and embedded)."""
    index = semsearch.build([folder], str(tiny_model))
    total = index.manifest.passage_count
    embedded = {p.embedded_text for p in index.passages}
    for line in _content(NOTE, NOTE_HEADINGS, NOTE_RULES) + _content(POEM, ["静夜思"], []):
        for mode in ("bm25", "dense"):
            hits = index.search(line, k=total, mode=mode)  # type: ignore[arg-type]
            assert any(_squeeze(line) in _squeeze(h.text) for h in hits), (mode, line)
    for title in [*NOTE_HEADINGS, "静夜思"]:
        hits = index.search(title, k=total, mode="bm25")
        assert hits and all(title in h.heading for h in hits[:1]), title
        assert any(e.startswith(title) or f"/ {title}\n" in e for e in embedded), title


@pytest.mark.slow
def test_content_lines_rank_first_with_the_real_model(folder: Path, real_model: Path) -> None:
    index = semsearch.build([folder])
    for line in ["床前明月光", "王芳 李娜", "修理自行车", "| 苹果 | 5元 | 山东烟台 |"]:
        for mode in ("bm25", "dense"):
            hits = index.search(line.strip("| "), k=3, mode=mode)  # type: ignore[arg-type]
            assert any(_squeeze(line) in _squeeze(h.text) for h in hits), (mode, line)


@pytest.mark.parametrize(("text", "structure", "headings"), [
    ("标题\n\n正文很长的一段话，写了很多内容。\n", "plain", ["标题"]),
    ("王芳\n李娜\n张伟\n\n正文很长的一段话，写了很多内容。\n", "plain", []),
    ("一\n\n二\n\n三\n\n四\n", "plain", []),  # short lines with nothing long below
    ("Title\n=====\n\nBody text here.\n", "markdown", ["Title"]),
    ("```\n# not a heading\n```\n\ntext\n", "markdown", []),
    ("标题\n\n正文很长的一段话，写了很多内容。\n", "markdown", []),
    ("标题\n\n正文很长的一段话，写了很多内容。\n", "none", []),
])
def test_headings_only_from_structure(text: str, structure: str, headings: list[str]) -> None:
    cleaned = clean_document(text, "none", structure)
    assert [d.text.lstrip("# ") for d in cleaned.dropped if d.reason == "heading"] == headings
    kept = "".join(p.text + p.heading for p in cleaned.paragraphs)
    for line in text.splitlines():
        if line.strip() and any(ch.isalnum() for ch in line):
            assert _squeeze(line.lstrip("# ")) in _squeeze(kept), line


def test_given_headings_and_lines_kept() -> None:
    text = "大熊猫\n\n第一段。\n第二行\n\n食性\n\n吃竹子。\n"
    cleaned = clean_document(text, "none", "given", {0: 1, text.index("食性"): 2})
    assert [(p.text, p.heading) for p in cleaned.paragraphs] == [
        ("第一段。\n第二行", "大熊猫"), ("吃竹子。", "大熊猫 / 食性")]


def test_heading_with_nothing_below_stays_a_paragraph() -> None:
    cleaned = clean_document("# 甲\n\n## 空\n\n# 乙\n\n正文。\n", "none", "markdown")
    assert [(p.text, p.heading) for p in cleaned.paragraphs] == [
        ("# 甲", ""), ("## 空", "甲"), ("正文。", "乙")]


def test_junk_passages_are_dropped_or_joined_and_counted() -> None:
    """Before: `。` and `|---|---|` were passages, and `。` the dense #1 for unrelated queries."""
    passages = [Passage("第一段的内容。", "a", 1, 0, 7), Passage("。", "a", 2, 8, 9),
                Passage("...", "a", 3, 10, 13), Passage("是", "a", 4, 14, 15),
                Passage("独", "b", 1, 0, 1), Passage("第二个文件。", "b", 2, 2, 8)]
    notes: list = []
    kept = drop_junk(passages, notes)
    assert [(p.source, p.text) for p in kept] == [("a", "第一段的内容。\n是"),
                                                  ("b", "独\n第二个文件。")]
    assert sorted(n.reason for n in notes) == ["junk", "junk", "merged", "merged"]
    lone = drop_junk([Passage("甲。", "c", 1, 0, 2)], notes)
    assert [p.text for p in lone] == ["甲。"]  # a whole document is never dropped


def test_no_passage_without_a_letter_or_digit() -> None:
    text = "正文第一段，写了很多内容。\n\n。\n\n...\n\n|---|---|\n\n第二段。\n"
    prepared = prepare([Document("a.txt", text, "utf-8", "0")])
    assert all(any(ch.isalnum() for ch in p.text) for p in prepared.passages)
    assert sum(prepared.dropped["a.txt"].values()) == 3


def test_info_dropped_lists_heading_lines(folder: Path, tiny_model: Path) -> None:
    from typer.testing import CliRunner

    from semsearch.cli import app

    out = folder.parent / "idx"
    result = CliRunner().invoke(app, ["index", str(folder), "--out", str(out), "--model",
                                      str(tiny_model)])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "4 heading lines embedded" in flat and "1 markup" in flat
    result = CliRunner().invoke(app, ["info", "--index", str(out), "--dropped", "note.md"])
    flat = " ".join(result.output.split())
    assert result.exit_code == 0 and "## 价格表" in flat and "|---|---|---|" in flat


# --- PDF: pages a passage spans, hyphenated line ends, encryption ---


def test_pdf_passage_carries_the_pages_it_spans(tmp_path: Path) -> None:
    """Before: a passage across a page break took its first page, so `page == 2` missed it."""
    from semsearch.filters import compile_filter

    from .test_documents import _pdf

    pages = ["Volunteers delivered food", "to families in quarantine.", "Masks arrived later on."]
    (tmp_path / "r.pdf").write_bytes(_pdf(pages))
    passages = prepare(scan([tmp_path]).documents).passages
    (first,) = [p for p in passages if "families" in p.text]
    assert (first.metadata["page"], first.metadata["page_start"]) == (1, 1)
    assert first.metadata["page_end"] >= 2
    assert compile_filter("page == 2")(first) and compile_filter("page in [2]")(first)
    assert not compile_filter("page == 4")(first) and compile_filter("page != 4")(first)
    assert compile_filter("page > 1")(first) and not compile_filter("page < 1")(first)


def test_hyphenated_line_breaks_are_joined_when_a_word() -> None:
    from semsearch.clean import is_word

    text = "The mor-\ntar was dry and the vis-\nitors came to see the well-\nknown wall today."
    (paragraph,) = clean_document(text, "none", "none", hyphenated=is_word).paragraphs
    assert "mortar" in paragraph.text and "visitors" in paragraph.text
    assert "well-known" in paragraph.text
    at = paragraph.text.index("tar")
    assert text[paragraph.locate(at)] == "t" and text[paragraph.locate(at - 1)] == "r"


@pytest.mark.parametrize(("password", "readable"), [("", True), ("secret", False)])
def test_encrypted_pdfs(tmp_path: Path, password: str, readable: bool) -> None:
    """Before: AES files that open with an empty password were refused (no cryptography)."""
    import io

    import pypdf

    from semsearch.corpus import CorpusWarning

    from .test_documents import _pdf

    reader = pypdf.PdfReader(io.BytesIO(_pdf(["Secret plans for the garden party."])))
    writer = pypdf.PdfWriter(clone_from=reader)
    writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-256")
    writer.write(str(tmp_path / "e.pdf"))
    (tmp_path / "ok.txt").write_text("正文。", encoding="utf-8")
    if readable:
        (doc,) = [d for d in scan([tmp_path]).documents if d.source == "e.pdf"]
        assert "garden party" in doc.text
    else:
        with pytest.warns(CorpusWarning, match=r"e\.pdf.*encrypted with a password"):
            scan([tmp_path])


# --- web cleaning keeps article bodies ---

NEWS = """首页 | 新闻 | 视听 | 体育
当前位置：首页 > 新闻 > 社会
分享到：新浪微博
责任编辑：王小明

社区志愿者守护居民平安 | 本报记者 > 连续报道

""" + ("疫情发生以来，社区志愿者每天为隔离居民配送生活物资，风雨无阻 | 他们说 > 这是应尽的责任。"
       "居民们纷纷点赞，社区里一片温暖。") * 8 + """

版权所有 © 2024 新闻网
"""


def test_web_cleaning_never_drops_an_article_body() -> None:
    """Before: `--clean web` dropped a saved news page's body as navigation (its `|`, `>`)."""
    cleaned = clean_document(NEWS, "web")
    text = "".join(p.text for p in cleaned.paragraphs)
    assert "居民们纷纷点赞" in text and len(text) > 400
    reasons = {d.text[:4]: d.reason for d in cleaned.dropped}
    assert reasons["首页 |"] == "navigation" and reasons["责任编辑"] == "attribution"


def test_html_main_text_is_not_cleaned_again(tmp_path: Path) -> None:
    body = "".join(f"<p>第{i}段：首页 | 新闻 | 视听，这一段讲社区的事。</p>" for i in range(5))
    (tmp_path / "p.html").write_text(f"<html><body><article><h1>标题</h1>{body}</article>"
                                     "</body></html>", encoding="utf-8")
    (doc,) = scan([tmp_path]).documents
    assert doc.clean_mode() == "none"
    prepared = prepare([doc])
    assert all(f"第{i}段" in "".join(p.text for p in prepared.passages) for i in range(5))


# --- Word: parts beside the body, nested tables, multi-paragraph cells ---


def test_docx_headers_footers_comments_and_nested_tables(tmp_path: Path) -> None:
    """Before: header/footer and comment text were not indexed, a nested table's text was
    lost and a two-paragraph cell was split into a fragment and a heading."""
    import docx

    document = docx.Document()
    document.add_heading("年度报告", level=1)
    body = document.add_paragraph("社区志愿者全年服务居民超过一万人次，获得广泛好评。")
    table = document.add_table(rows=1, cols=2)
    cell = table.cell(0, 0)
    cell.text = "第一段单元格"
    cell.add_paragraph("第二段单元格")
    inner = table.cell(0, 1).add_table(rows=1, cols=1)
    inner.cell(0, 0).text = "嵌套表格内容"
    for section in document.sections:
        section.header.paragraphs[0].text = "机密文件页眉"
        section.footer.paragraphs[0].text = "第一页页脚"
    document.add_comment(body.runs, text="请核对人数", author="审稿人")
    document.save(str(tmp_path / "r.docx"))
    passages = prepare(scan([tmp_path]).documents).passages
    by_part = {}
    for p in passages:
        by_part.setdefault(p.metadata["part"], []).append(p.text)
    assert "机密文件页眉" in "".join(by_part["header"])
    assert "第一页页脚" in "".join(by_part["footer"])
    assert "请核对人数" in "".join(by_part["comment"])
    body_text = "\n".join(by_part["body"])
    assert "第一段单元格 第二段单元格 | 嵌套表格内容" in body_text
