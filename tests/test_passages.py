"""Splitting paragraphs into passages within a token budget, merging fragments, offsets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.corpus import Document
from semsearch.passages import (
    Passage,
    document_passages,
    estimate_tokens,
    merge_fragments,
    split_paragraph,
)

SENTENCE = "社区党员志愿者每天为隔离居民配送生活物资。"


def _doc(text: str, source: str = "a.txt") -> Document:
    return Document(source=source, text=text, encoding="utf-8", sha256="x")


def test_short_paragraph_is_one_passage() -> None:
    assert split_paragraph(SENTENCE, max_tokens=100) == [(0, len(SENTENCE))]


def test_long_paragraph_splits_at_sentence_ends_within_budget() -> None:
    text = SENTENCE * 10
    spans = split_paragraph(text, estimate_tokens, max_tokens=60)
    assert len(spans) > 1
    assert "".join(text[s:e] for s, e in spans) == text
    for s, e in spans:
        assert estimate_tokens(text[s:e]) <= 60
        assert text[s:e].endswith("。")


def test_sentence_longer_than_budget_is_cut_at_clauses() -> None:
    text = "，".join(["党员志愿者配送生活物资"] * 20) + "。"
    spans = split_paragraph(text, estimate_tokens, max_tokens=30)
    assert "".join(text[s:e] for s, e in spans) == text
    assert all(estimate_tokens(text[s:e]) <= 30 for s, e in spans)


def test_latin_sentences_split_on_period_space() -> None:
    text = "Volunteers delivered food. " * 30
    spans = split_paragraph(text.strip(), estimate_tokens, max_tokens=20)
    assert all(text[s:e].rstrip().endswith(".") for s, e in spans)


def test_fragments_merge_with_neighbours_in_the_same_section() -> None:
    p = [
        Passage("“你好。”", "a.txt", 1, 0, 5, "标题"),
        Passage("“请登记。”", "a.txt", 1, 6, 12, "标题"),
        Passage(SENTENCE, "a.txt", 2, 14, 35, "标题"),
        Passage("短句。", "a.txt", 3, 40, 43, "另一节"),
    ]
    merged = merge_fragments(p, max_tokens=100, min_chars=15)
    assert [m.text for m in merged] == ["“你好。”\n“请登记。”\n" + SENTENCE, "短句。"]
    assert (merged[0].start, merged[0].end) == (0, 35)


def test_passages_point_at_their_paragraph_and_offsets() -> None:
    text = "标题\n\n" + SENTENCE * 3 + "\n\n第二段" + SENTENCE + "\n"
    passages = document_passages(_doc(text), max_tokens=30)
    assert len(passages) == 4
    for p in passages:
        assert text[p.start : p.end] == p.text
        assert p.source == "a.txt"
    assert [p.paragraph for p in passages] == [2, 2, 2, 3]
    assert passages[0].heading == "标题"
    assert passages[0].lexical_text == "标题\n" + passages[0].text


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("党员社区抗疫志愿者。，！？；ab .\n“”")), max_size=400),
    st.integers(min_value=4, max_value=80),
)
def test_passages_always_within_original_and_budget(text: str, budget: int) -> None:
    for p in document_passages(_doc(text), max_tokens=budget, min_chars=0):
        assert 0 <= p.start <= p.end <= len(text)
        span = "".join(text[p.start : p.end].split())
        assert "".join(p.text.split()) == span or span.startswith("".join(p.text.split())[:1])
        assert p.text.strip() == p.text and p.text


_ITEMS = ["1. 下载安装程序，并核对它的校验和与官网上公布的校验和是否一致。",
          "2. 运行安装程序，选择安装目录和需要的组件，然后等待安装完成。",
          "3. 重新启动计算机，让新的环境变量和系统路径设置在所有程序中生效。",
          "4. 打开终端运行版本命令，检查输出的版本号与下载的安装程序一致。",
          "5. 阅读随附的使用手册，了解常用命令、配置文件的位置和升级方法。"]


def test_consecutive_list_items_of_a_pdf_page_are_packed_into_one_passage() -> None:
    """Each item of a list was a passage of its own (texlive-zh-cn.pdf: 58 of the 199 Chinese
    passages under 60 characters of the 7 public prose PDFs are list items): consecutive items
    of one page and section are packed into one passage within the budget, as a list reads;
    not across a page, not with the paragraph before or after, not in other formats."""
    intro = "安装步骤如下，每一步都需要管理员权限，请在开始之前保存好正在编辑的文件：" * 2
    page1 = "\n\n".join([intro, *_ITEMS[:3], SENTENCE * 3])
    text = page1 + "\n\n" + "\n\n".join(_ITEMS[3:])
    pdf = Document(source="a.pdf", text=text, encoding="pdf", sha256="x", format="pdf",
                   page_starts=(len(page1) + 2,))
    passages = document_passages(pdf)
    assert [p.text for p in passages] == [intro, "\n".join(_ITEMS[:3]), SENTENCE * 3,
                                          "\n".join(_ITEMS[3:])]
    assert [(p.metadata["page_start"], p.metadata["page_end"]) for p in passages] == [
        (1, 1), (1, 1), (1, 1), (2, 2)]
    assert len(document_passages(_doc(text))) == 7  # a text file's items stay apart


def test_numbered_sections_of_a_pdf_page_are_not_packed_as_list_items() -> None:
    """`1.2 版本演进` starts a section (PDF headings run into their paragraph), not a list item:
    passages starting with a section number stay apart."""
    sections = [f"1.{n} {item[3:]}" for n, item in enumerate(_ITEMS[:3], start=1)]
    text = "\n\n".join(sections)
    pdf = Document(source="a.pdf", text=text, encoding="pdf", sha256="x", format="pdf")
    assert [p.text for p in document_passages(pdf)] == sections
