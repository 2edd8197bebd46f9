"""The documents of a Chinese office (issue 37): Word text boxes, merged tables and Strict
files, HTML code blocks and summaries, lines of symbols, PDF lines joined into paragraphs."""

from __future__ import annotations

import io
import itertools
import zipfile
from pathlib import Path
from typing import Any

import pytest

from semsearch.corpus import scan
from semsearch.passages import prepare

_NS = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
       'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
       'xmlns:v="urn:schemas-microsoft-com:vml" '
       'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
       'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
       'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"')


def _txbx(text: str) -> str:
    return f'<w:txbxContent><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:txbxContent>'


def _drawing_box(text: str) -> str:
    """A text box as Word writes it: DrawingML in mc:Choice, the same box in VML as Fallback."""
    return (f'<w:r {_NS}><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing>'
            '<wp:anchor><a:graphic><a:graphicData uri="http://schemas.microsoft.com/office/word/'
            f'2010/wordprocessingShape"><wps:wsp><wps:txbx>{_txbx(text)}</wps:txbx></wps:wsp>'
            '</a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice><mc:Fallback>'
            f'<w:pict><v:shape><v:textbox>{_txbx(text)}</v:textbox></v:shape></w:pict>'
            '</mc:Fallback></mc:AlternateContent></w:r>')


def _vml_box(text: str) -> str:
    """An older VML-only shape with text."""
    return (f'<w:r {_NS}><w:pict><v:shape><v:textbox>{_txbx(text)}</v:textbox></v:shape>'
            '</w:pict></w:r>')


def _passages(tmp_path: Path) -> list:
    return prepare(scan([tmp_path]).documents, min_chars=0).passages


def test_a_word_file_whose_only_text_is_in_a_text_box_is_read(tmp_path: Path) -> None:
    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    document.add_paragraph()._p.append(parse_xml(_drawing_box("仅在文本框中的通知：周五下午停电检修。")))
    document.save(str(tmp_path / "box.docx"))
    passages = _passages(tmp_path)
    assert [(p.text, p.metadata["part"]) for p in passages] == [
        ("仅在文本框中的通知：周五下午停电检修。", "textbox")]  # once, not twice (mc:Fallback)


def test_text_boxes_and_shapes_come_in_reading_order(tmp_path: Path) -> None:
    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    document.add_paragraph("第一段正文，介绍会议的背景和目的。")
    document.add_paragraph()._p.append(parse_xml(_drawing_box("文本框：报名截止日期为三月一日。")))
    document.add_paragraph("第二段正文，说明会议的议程安排。")
    document.add_paragraph("形状旁的正文。")._p.append(parse_xml(_vml_box("形状里的文字：联系人王芳。")))
    document.save(str(tmp_path / "mixed.docx"))
    passages = _passages(tmp_path)
    assert [(p.text, p.metadata["part"]) for p in passages] == [
        ("第一段正文，介绍会议的背景和目的。", "body"),
        ("文本框：报名截止日期为三月一日。", "textbox"),
        ("第二段正文，说明会议的议程安排。", "body"), ("形状旁的正文。", "body"),
        ("形状里的文字：联系人王芳。", "textbox")]


def _merged_table_docx(path: Path) -> None:
    """A table python-docx refuses (`no tc element at grid_offset`): a cell of the first row
    spans two columns and the cell below its second column continues a vertical merge."""
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document()
    document.add_paragraph("合并单元格的表格之前的正文。")
    table = document.add_table(rows=2, cols=3)
    for r, row in enumerate((("项目名称", "", "金额"), ("办公用品采购", "续", "3200元"))):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    first = table.rows[0]._tr
    span = OxmlElement("w:gridSpan")
    span.set(qn("w:val"), "2")
    first.tc_lst[0].get_or_add_tcPr().append(span)
    first.remove(first.tc_lst[1])
    table.rows[1]._tr.tc_lst[1].get_or_add_tcPr().append(OxmlElement("w:vMerge"))
    document.add_paragraph("表格之后的正文。")
    document.save(str(path))


def test_a_merged_table_python_docx_refuses_is_read_from_the_xml(tmp_path: Path) -> None:
    import docx

    _merged_table_docx(tmp_path / "merged.docx")
    with pytest.raises(ValueError, match="no `tc` element at grid_offset"):
        [row.cells for row in docx.Document(str(tmp_path / "merged.docx")).tables[0].rows]
    text = "\n".join(p.text for p in _passages(tmp_path))
    assert "合并单元格的表格之前的正文。" in text and "表格之后的正文。" in text
    assert "项目名称 | 金额" in text and "办公用品采购 | 续 | 3200元" in text


_STRICT = {"http://schemas.openxmlformats.org/wordprocessingml/2006/main":
           "http://purl.oclc.org/ooxml/wordprocessingml/main",
           "http://schemas.openxmlformats.org/officeDocument/2006/relationships":
           "http://purl.oclc.org/ooxml/officeDocument/relationships",
           "http://schemas.openxmlformats.org/drawingml/2006/main":
           "http://purl.oclc.org/ooxml/drawingml/main"}


def test_a_strict_open_xml_file_is_read(tmp_path: Path) -> None:
    """What Word writes for "Strict Open XML Document": the same parts in purl.oclc.org
    namespaces (python-docx alone raises KeyError)."""
    import docx

    document = docx.Document()
    document.add_heading("严格格式的文件", level=1)
    document.add_paragraph("这份文件以严格的开放XML格式保存，正文应当被完整读取。")
    buffer = io.BytesIO()
    document.save(buffer)
    strict = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(strict, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            for old, new in _STRICT.items():
                data = data.replace(old.encode(), new.encode())
            target.writestr(item, data)
    (tmp_path / "strict.docx").write_bytes(strict.getvalue())
    with pytest.raises(KeyError):
        docx.Document(str(tmp_path / "strict.docx"))
    passages = _passages(tmp_path)
    assert [(p.heading, p.text) for p in passages] == [
        ("严格格式的文件", "这份文件以严格的开放XML格式保存，正文应当被完整读取。")]


_LONG = "这是一篇关于WebAssembly的教程，介绍如何把C程序编译成wasm模块并在浏览器里运行。" * 3


def test_a_code_block_with_br_line_breaks_is_kept_whole(tmp_path: Path) -> None:
    (tmp_path / "wasm.html").write_text(
        f"<html><head><title>编译教程</title></head><body><article><h1>编译教程</h1>"
        f"<p>{_LONG}</p><pre><code>#include &lt;emscripten.h&gt;<br>EMSCRIPTEN_KEEPALIVE<br>"
        "int add(int a, int b) { return a + b; }<br>$ wasmer run hello.wasm</code></pre>"
        f"<p>{_LONG}</p><p>运行上面的命令即可看到结果，这里还有更多的说明文字。</p></article>"
        "</body></html>", encoding="utf-8")
    text = "\n".join(p.text for p in _passages(tmp_path))
    assert ("#include <emscripten.h>\nEMSCRIPTEN_KEEPALIVE\nint add(int a, int b) { return a + b; }"
            "\n$ wasmer run hello.wasm") in text


_LEAD = ("蔡健雅（Tanya Chua），1975年1月28日出生于新加坡，华语流行乐女歌手、音乐制作人。"
         "1997年签约新加坡唱片公司，发行首张英文专辑。")
_BAIKE_PARAS = [
    "1975年1月28日，蔡健雅出生于新加坡的一个普通家庭，从小就喜欢音乐，中学时期开始尝试写歌。"
    "她在学校的合唱团里唱歌，也参加过多次歌唱比赛并获得名次。",
    "1995年，蔡健雅参加了新加坡的一项歌唱比赛并获得冠军，由此进入音乐行业，开始了她的职业生涯。"
    "此后她先后为多位歌手创作歌曲。",
    "1999年，蔡健雅发行首张中文专辑《记念》，正式进入华语乐坛。2003年，她凭借专辑《陌生人》获得"
    "第十四届台湾金曲奖最佳国语女演唱人奖，这是她第一次获得金曲奖。",
    "2008年，她发行专辑《若你碰到他》，其中的歌曲《达尔文》广受欢迎。2013年，她发行专辑"
    "《天使与魔鬼的对话》，并再次获得金曲奖最佳国语女歌手奖。"]


def _baike(description: str) -> str:
    """A page shaped like a saved Baidu Baike entry: the lead in a `lemma-summary` div and an
    infobox beside the article body, which trafilatura's extraction does not reach."""
    paras = "\n".join(f'<div class="para" label-module="para">{p}</div>' for p in _BAIKE_PARAS)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>蔡健雅_百度百科</title>
<meta name="description" content="{description}"></head><body>
<div class="header"><a href="/">百度首页</a> | <a href="/">登录</a></div>
<div class="main-content">
<dd class="lemmaWgt-lemmaTitle-title"><h1>蔡健雅</h1></dd>
<div class="lemma-summary" label-module="lemmaSummary">
<div class="para" label-module="para">{_LEAD}</div>
</div>
<div class="basic-info"><dl><dt>中文名</dt><dd>蔡健雅</dd><dt>出生日期</dt><dd>1975年1月28日</dd>
</dl></div>
<div class="lemma-content article-content">
<div class="para-title level-2"><h2 class="title-text">生平</h2></div>
{paras}
</div></div>
<div class="footer">©2024 Baidu 使用百度前必读 | 百科协议</div>
</body></html>"""


def test_a_baike_page_keeps_its_lead_paragraph(tmp_path: Path) -> None:
    (tmp_path / "baike.html").write_text(_baike(_LEAD[:40] + "…"), encoding="utf-8")
    passages = _passages(tmp_path)
    assert passages[0].text == _LEAD and passages[0].metadata["part"] == "description"
    assert [p.metadata["part"] for p in passages[1:]] == ["body"] * len(passages[1:])
    assert all(any(para in p.text for p in passages) for para in _BAIKE_PARAS)


def test_a_meta_description_the_text_lacks_is_the_first_passage(tmp_path: Path) -> None:
    about = "本站收录全国各地的方言录音，供语言学研究者和方言爱好者免费检索与下载。"
    body = "".join(f"<p>{p}</p>" for p in _BAIKE_PARAS)
    (tmp_path / "a.html").write_text(
        f'<html><head><title>方言</title><meta property="og:description" content="{about}">'
        f"</head><body><article>{body}</article></body></html>", encoding="utf-8")
    # a description the text already says, or a list of keywords, adds nothing
    (tmp_path / "b.html").write_text(
        f'<html><head><title>方言</title><meta name="description" content="{_BAIKE_PARAS[1]}">'
        f"</head><body><article>{body}</article></body></html>", encoding="utf-8")
    (tmp_path / "c.html").write_text(
        '<html><head><title>方言</title><meta name="description" content="方言,录音,下载,语言学">'
        f"</head><body><article>{body}</article></body></html>", encoding="utf-8")
    passages = _passages(tmp_path)
    first = next(p for p in passages if p.source == "a.html")
    assert (first.text, first.metadata["part"]) == (about, "description")
    assert not [p for p in passages if p.source != "a.html" and "part" in p.metadata]
    assert sum(_BAIKE_PARAS[1] in p.text for p in passages if p.source == "b.html") == 1


def test_lines_of_meaningful_symbols_join_their_neighbour() -> None:
    """A rating, an arrow in a lab report's row or a lone `%` carries meaning: kept with the
    line or passage beside it (counted as merged when it was a passage of its own); rules,
    bullets and repeated punctuation are still dropped and counted as markup or junk."""
    from semsearch.corpus import Document

    text = ("这家餐厅的服务很好，菜品也很新鲜，推荐大家来尝试。\n\n⭐️⭐️⭐️⭐️\n\n"
            "检验项目 白细胞计数 12.5\n↑\n检验项目 血红蛋白 98\n↓\n\n"
            "同比增长\n%\n\n-----\n\n***\n\n• • •\n\n。。。\n\n最后一段正文。\n")
    prepared = prepare([Document("a.txt", text, "utf-8", "0")], min_chars=0)
    texts = [p.text for p in prepared.passages]
    assert texts[0] == "这家餐厅的服务很好，菜品也很新鲜，推荐大家来尝试。\n⭐️⭐️⭐️⭐️"
    assert {"检验项目 白细胞计数 12.5\n↑", "检验项目 血红蛋白 98\n↓"} <= set(texts)  # with its row
    assert "同比增长\n%" in texts
    assert not any(set(t) & set("-*•。") and not any(c.isalnum() for c in t) for t in texts)
    # each symbol line joined is counted (merged), each decoration dropped (markup, junk)
    assert prepared.dropped["a.txt"] == {"merged": 4, "markup": 2, "junk": 2}


def test_pypdf_messages_become_a_warning_not_output(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """pypdf logs `invalid pdf header` and `incorrect startxref pointer` for a damaged file it
    reads anyway; with no logging configured Python printed them, through the progress bar."""
    import logging

    from semsearch.corpus import CorpusWarning

    from .test_documents import _pdf

    data = _pdf(["Volunteers delivered food to families in quarantine."])
    (tmp_path / "bad.pdf").write_bytes(b"junk\n" + data.replace(b"startxref\n", b"startxref\n9"))
    handlers = list(logging.getLogger("pypdf").handlers)
    with pytest.warns(CorpusWarning, match=r"bad\.pdf.*invalid pdf header.*startxref"):
        documents = scan([tmp_path]).documents
    assert documents[0].text == "Volunteers delivered food to families in quarantine."
    assert logging.getLogger("pypdf").handlers == handlers
    assert "pdf header" not in capsys.readouterr().out


def test_the_progress_counts_the_passages_the_summary_names(tiny_model: Path) -> None:
    """Whole paragraphs encoded for blending were counted as passages (1,810 against 1,665)."""
    from semsearch import index as index_module
    from semsearch.corpus import Document
    from semsearch.index import BuildProgress
    from semsearch.models.encoder import load_encoder

    steps: list[list] = []
    progress = BuildProgress(start=lambda total, what: steps.append([what, total, 0]),
                             advance=lambda n: steps[-1].__setitem__(2, steps[-1][2] + n))
    long = "".join(f"第{i}句话讲的是一件不同的事情。" for i in range(30))
    docs = [Document("long.txt", f"{long}\n", "utf-8", "0"),
            Document("short.txt", "短的一段话，只有一个段落。\n", "utf-8", "1")]
    encoder = load_encoder(str(tiny_model), for_indexing=True)
    prepared, _, _, _ = index_module._embed(docs, encoder, 256, progress)
    passages = len(prepared.passages)
    assert steps[0] == ["encoding passages", passages, passages]
    assert steps[1][0].startswith("encoding whole paragraphs") and steps[1][1] == steps[1][2] == 1


def test_a_heading_path_splits_back_into_its_headings() -> None:
    """`A / B` was both a heading `A / B` and `B` under `A`."""
    from semsearch.clean import clean_document
    from semsearch.passages import heading_path

    text = "# 输入 / 输出\n\n## 格式\n\n正文一。\n\n# 输入\n\n## 输出 / 格式\n\n正文二。\n"
    headings = [p.heading for p in clean_document(text, "none", "markdown").paragraphs]
    assert headings[0] != headings[1]
    assert [heading_path(h) for h in headings] == [["输入 ∕ 输出", "格式"], ["输入", "输出 ∕ 格式"]]
    assert heading_path("") == [] and heading_path("甲 / 乙") == ["甲", "乙"]  # older indexes


def _cjk_pdf(pages: list[list[Any]]) -> bytes:
    """A PDF whose pages print (x, y, text) lines in an Identity-H font with a ToUnicode map
    (what text layers of Chinese PDFs are): the documents benchmark's writer
    (benchmarks/office.py), so the tests read what the benchmark measures."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_office", Path(__file__).resolve().parent.parent / "benchmarks" / "office.py")
    assert spec is not None and spec.loader is not None
    office = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(office)
    return office.text_layer_pdf(pages)  # type: ignore[no-any-return]


# Paragraphs of a report, each sentence ended by 。: printed 20 characters a line, the first
# line of a paragraph indented two characters, the last line of a paragraph short.
_REPORT = [
    "本公司董事会及全体董事保证本报告内容的真实、准确和完整，不存在任何虚假记载、误导性陈述或者重大遗漏。"
    "本报告经公司第五届董事会第十二次会议审议通过，全体董事出席了会议。公司负责人、主管会计工作负责人及"
    "会计机构负责人声明，保证年度报告中财务报告的真实、准确、完整。",
    "报告期内，受市场需求下降影响，公司营业收入同比减少百分之十二，部分客户已明显出现无法按期偿还银行贷款的"
    "情况。公司已按照会计准则计提了相应的坏账准备，并积极与相关客户协商还款计划。请会计师结合所执行的审计"
    "程序，说明坏账准备计提是否充分。",
    "公司将继续推进降本增效工作，优化产品结构，加强应收账款管理，提升经营质量。",
]


def _report_pages(columns: int = 1) -> tuple[list[list[tuple[float, float, str]]], dict]:
    """The report laid out on pages of 10 lines per column; `where` maps each printed line to
    its page (1-based)."""
    width = 20 if columns == 1 else 12
    lines: list[tuple[bool, str]] = []  # (first line of a paragraph, text)
    for paragraph in _REPORT:
        first, rest = paragraph[: width - 2], paragraph[width - 2:]
        lines.append((True, first))
        lines.extend((False, rest[i:i + width]) for i in range(0, len(rest), width))
    pages: list[list[tuple[float, float, str]]] = [[]]
    where: dict[str, int] = {}
    per_page, slot = 10 * columns, 0
    for first, text in lines:
        if slot == per_page:
            pages.append([])
            slot = 0
        column, row = divmod(slot, 10)
        left = 72 + column * (width * 11 + 30)
        pages[-1].append((left + (22 if first else 0), 760 - row * 16, text))
        where[text] = len(pages)
        slot += 1
    return pages, where


@pytest.mark.parametrize("columns", [1, 2])
def test_pdf_lines_are_joined_into_paragraphs_cut_at_sentence_ends(tmp_path: Path,
                                                                   columns: int) -> None:
    """A Chinese PDF's printed lines were each a paragraph: passages of 75-82 characters cut
    mid-word (`报告内容的真｜实`). Lines of a paragraph join (no space between CJK), a new
    paragraph starts at an indent or after a short line, also across a page and a column."""
    pages, where = _report_pages(columns)
    assert len(pages) == 2  # the second paragraph runs on to the next page
    (tmp_path / "report.pdf").write_bytes(_cjk_pdf(pages))
    document = scan([tmp_path]).documents[0]
    assert document.text.split("\n\n") == _REPORT
    passages = prepare([document]).passages
    assert [p.text for p in passages] == _REPORT  # a paragraph within the budget is a passage
    cut = prepare([document], max_tokens=64).passages
    assert len(cut) > len(passages) and all(p.text.endswith("。") for p in cut)  # at sentences
    for line, page in where.items():
        holder = next(p for p in passages if line in p.text)
        assert holder.metadata["page_start"] <= page <= holder.metadata["page_end"], line


def test_an_ocr_text_layer_whose_lines_differ_in_size_joins_its_paragraphs(
        tmp_path: Path) -> None:
    """An OCR'd scan (a public auditor's letter, pdfplumber's tests/pdfs/pr-136-example.pdf)
    sizes each line's text to its box, 13.7 to 19.1 pt within one paragraph: every size change
    ended a paragraph, so 5 of 48 boundaries fell inside a word (`已明显出现无｜法按期偿还`).
    A size change that is the page's usual line-to-line noise does not start a paragraph."""
    pages, where = _report_pages()
    sizes = itertools.cycle([11.0, 13.5, 12.0, 15.0, 12.5, 14.0, 11.5])
    ocr = [[(x, y, text, next(sizes)) for x, y, text in page] for page in pages]
    (tmp_path / "scan.pdf").write_bytes(_cjk_pdf(ocr))
    document = scan([tmp_path]).documents[0]
    assert document.text.split("\n\n") == _REPORT
    passages = prepare([document]).passages
    for line, page in where.items():
        holder = next(p for p in passages if line in p.text)
        assert holder.metadata["page_start"] <= page <= holder.metadata["page_end"], line


def test_a_heading_in_a_larger_font_is_still_its_own_paragraph(tmp_path: Path) -> None:
    """Where the body's lines share one size (a born-digital PDF), a line in a larger font
    directly above a paragraph, at the body's spacing, is still a paragraph of its own."""
    body = [(72, 744 - 16 * i, text) for i, text in enumerate(
        ["报告期内公司营业收入同比减少百分之十二，部分客户",
         "已明显出现无法按期偿还银行贷款的情况，公司已按", "照会计准则计提了相应的坏账准备。"])]
    heading = [(72.0, 760.0, "第一节重要提示和释义说明内容", 14.0)]
    (tmp_path / "heading.pdf").write_bytes(_cjk_pdf([heading + body]))
    text = scan([tmp_path]).documents[0].text
    assert text.split("\n\n")[0] == "第一节重要提示和释义说明内容"


# A heading set in as far as a paragraph's first line, then a paragraph (first-line indent)
_HEADED = ["（二）就反担保抵押资产价值和抵押登记效力的核实程序",
           "我们检查了菲达环保公司提供的涉及反担保事项的所有文件，包括反担保协议，反担保抵押资产评估"
           "报告、权属证明和抵押权登记证明等。"]


def _headed_page(heading: str) -> list[tuple[float, float, str]]:
    body = _HEADED[1]
    rows = [(94.0, heading), (94.0, body[:18])]
    rows += [(72.0, body[n:n + 20]) for n in range(18, len(body), 20)]
    return [(x, 760.0 - 16 * i, text) for i, (x, text) in enumerate(rows)]


@pytest.mark.parametrize("heading", [_HEADED[0][:8], _HEADED[0][:15]])
def test_a_heading_set_in_like_a_first_line_stays_apart_and_its_paragraph_whole(
        tmp_path: Path, heading: str) -> None:
    """In pdfplumber's OCR'd pr-136-example.pdf a heading set in as far as the first line of the
    paragraph under it: the line after that first line, back at the column's edge, was taken
    for the start of a hanging indent (`会计师事务｜所有限公司`), and a heading too long to
    look short was run into the paragraph. A line well short of its column followed by an
    indented line ends a paragraph; a hanging indent needs the lines after it set in."""
    (tmp_path / "headed.pdf").write_bytes(_cjk_pdf([_headed_page(heading)]))
    assert scan([tmp_path]).documents[0].text.split("\n\n") == [heading, _HEADED[1]]


def test_a_two_line_paragraph_after_an_indented_quote_is_not_a_hanging_indent(
        tmp_path: Path) -> None:
    """In texproposal.pdf (Debian texlive-lang-chinese) a two-line paragraph whose first line is
    indented about as far as the quote above it was cut after that first line (`51 名希｜望使用
    Word 排版`): the quote and the first line looked like the set-in run of a hanging indent.
    That run must be lines of one paragraph; here the quote ended where the paragraph began."""
    quote = "这个建议官方做不是太靠谱，一般学校都是版面的爱好者自己做的。"
    first = "在参与投票的二百四十六名学子中，有一百六十二名希望使用排版，五十一名希望使用。"
    second = "笔者另外节录了一些有思想性的观点，以飨读者，供学校参考。"
    two = [(100.0, 760.0, quote[:18]), (100.0, 744.0, quote[18:]),
           (94.0, 716.0, first[:18]), (72.0, 700.0, first[18:]),
           (94.0, 684.0, second[:18]), (72.0, 668.0, second[18:])]
    (tmp_path / "quote.pdf").write_bytes(_cjk_pdf([two]))
    assert scan([tmp_path]).documents[0].text.split("\n\n") == [quote, first, second]


def test_a_numbered_item_whose_second_line_is_set_in_under_its_text_stays_whole(
        tmp_path: Path) -> None:
    """ctex-faq.pdf (Debian texlive-lang-chinese) sets a numbered item's next line in under its
    text, past the number: that line was taken for a new paragraph's indented first line
    (`而且直接使｜用 TrueType 字库`). A line set in under a full line that starts with an item
    number or bullet continues the item."""
    items = ["2. 使用转换工具生成文件和前者类似，可以直接使用两种字库或者矢量字库。",
             "3. 使用新的工具生成文件可以直接使用两种字库，而且生成的文件能拷贝。"]
    lines = []
    for n, item in enumerate(items):
        lines += [(72.0, 760.0 - 32 * n, item[:21]), (94.0, 744.0 - 32 * n, item[21:])]
    (tmp_path / "items.pdf").write_bytes(_cjk_pdf([lines]))
    assert scan([tmp_path]).documents[0].text.split("\n\n") == items


def test_pdf_latin_lines_join_with_a_space_and_a_hanging_indent_starts_a_paragraph(
        tmp_path: Path) -> None:
    from semsearch.clean import is_word

    lines = [(72, 760, "Volunteers delivered food to the fami-"),
             (90, 744, "lies in quarantine every single day and"),
             (90, 728, "the community thanked them warmly."),
             (72, 712, "Party members guarded the gate at night"),
             (90, 696, "and the residents brought them tea.")]
    (tmp_path / "latin.pdf").write_bytes(_cjk_pdf([lines]))
    text = scan([tmp_path]).documents[0].text
    word = "families" if is_word("families") else "fami-lies"  # as clean joins hyphens
    assert text == (f"Volunteers delivered food to the {word} in quarantine every single day "
                    "and the community thanked them warmly.\n\nParty members guarded the gate "
                    "at night and the residents brought them tea.")


def test_the_progress_counts_sentences_as_their_own_step(tiny_model: Path) -> None:
    """With sentence vectors (issue 35) the sentences are a third step after the paragraphs,
    and the passages step still counts the summary's passages."""
    from semsearch import index as index_module
    from semsearch.corpus import Document
    from semsearch.index import BuildProgress
    from semsearch.models.encoder import load_encoder

    steps: list[list] = []
    progress = BuildProgress(start=lambda total, what: steps.append([what, total, 0]),
                             advance=lambda n: steps[-1].__setitem__(2, steps[-1][2] + n))
    long = "".join(f"第{i}句话讲的是一件不同的事情。" for i in range(30))
    docs = [Document("long.txt", f"{long}\n", "utf-8", "0")]
    encoder = load_encoder(str(tiny_model), for_indexing=True)
    prepared, _, _, found = index_module._embed(docs, encoder, 256, progress, sentences=True)
    assert found is not None
    assert [s[0].split()[1] for s in steps] == ["passages", "whole", "sentences"]
    assert steps[0][1:] == [len(prepared.passages)] * 2
    assert steps[2][1] == steps[2][2] == len(found[0])


def test_a_two_line_item_of_a_description_list_stays_whole(tmp_path: Path) -> None:
    """texlive-zh-cn.pdf (Debian texlive-lang-chinese) sets a description list's item as a
    hanging indent: the label at the column's edge, the item's next lines set in. An item of
    two lines was cut after its first, full line, mid-sentence (`就是你首先该找的｜地方`): a
    line set in with the line after it back at the edge looked like a one-line paragraph's
    first-line indent. A line set in under a full line that ends no sentence, with a
    paragraph gap after it, continues that line."""
    items = ["起步如果你刚刚接触这个系统，这个网页提供了这个系统的简短介绍和入门的链接。",
             "目录如果你在寻找某个特定的宏包字体程序等等，目录就是你首先该找的地方。",
             "网上资源这个页面上有许多和这个系统方方面面相关的书籍手册和文章。"]
    lines, y = [], 760.0
    for item in items:
        lines.append((72.0, y, item[:20]))
        for n in range(20, len(item), 18):
            y -= 16
            lines.append((94.0, y, item[n:n + 18]))
        y -= 28  # a paragraph gap between items
    (tmp_path / "list.pdf").write_bytes(_cjk_pdf([lines]))
    assert scan([tmp_path]).documents[0].text.split("\n\n") == items


def test_a_bibliography_entry_set_in_under_its_number_stays_whole(tmp_path: Path) -> None:
    """texproposal.pdf (Debian texlive-lang-chinese) sets a reference's next lines in under its
    text, past `[8]`; its first line, ending short of lines full of Latin letters (whose ends
    are estimated), looked well short of the column with an indented line after it: the entry
    was cut mid-title (`哈佛大学｜官网`). A line that starts with an item number or bullet and
    fills most of its column goes on into a line set in under it."""
    body = "哈佛大学物理学院哈佛大学毕业论文写作指南电子文献哈佛大学官网本科生教务主任办公室发布。"
    entries = [f"[{n}] {body[:17]}{body[17:37]}{body[37:]}" for n in (7, 8)]
    lines = []
    for n, entry in enumerate(entries):
        top = 760.0 - 56 * n
        lines += [(72.0, top, entry[:21]), (94.0, top - 16, entry[21:41]),
                  (94.0, top - 32, entry[41:])]
    (tmp_path / "refs.pdf").write_bytes(_cjk_pdf([lines]))
    assert scan([tmp_path]).documents[0].text.split("\n\n") == entries
