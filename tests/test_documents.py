"""The documents people have: ordinary notes keep every line, pages lose only their chrome,
PDF/DOCX/HTML/records read with their libraries, every file is indexed or named (issue 10)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import semsearch
from semsearch import corpus
from semsearch.corpus import CorpusWarning, Options, scan
from semsearch.fusion import Collapser
from semsearch.passages import Passage, prepare

from .conftest import SEEDS

NOTES = """# 购物清单

- 买牛奶
- 买鸡蛋
* 买面包

## 价格

| 水果 | 价格 | 产地 |
|---|---|---|
| 苹果 | 5元 | 山东烟台 |
| 梨 | 4元 | 河北 |

## 版权说明

本项目讨论著作权法的基本原则：作者对作品享有著作权。
Copyright © 2024 王芳. All Rights Reserved.

王芳 李娜

```python
print("hello 世界")
```

1. 第一步 打开冰箱
2. 第二步 放进大象
"""
POEM = """静夜思
李白

床前明月光
疑是地上霜
举头望明月
低头思故乡
"""
LAW = """中华人民共和国著作权法

第一条 为保护文学、艺术和科学作品作者的著作权，以及与著作权有关的权益，制定本法。
第二条 中国公民、法人或者非法人组织的作品，不论是否发表，依照本法享有著作权。
未经著作权人许可，不得复制、发行、出租其作品。
版权所有 侵权必究
"""
PLAIN = """会议纪要
时间：周三下午
参会：张伟 刘洋 陈静

讨论了下季度的预算。
讨论了下季度的预算。
首页 | 新闻 | 视听
分享
"""


def _content_lines(text: str) -> list[str]:
    """Lines with a letter or digit (table rules and fences are markup, not content)."""
    return [line.strip().lstrip("#").strip() for line in text.splitlines()
            if any(ch.isalnum() for ch in line)]


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _findable(passages: list[Passage]) -> str:
    return "\0".join(_squeeze(p.text) for p in passages) + "\0" + "\0".join(
        _squeeze(p.heading) for p in passages)


@pytest.fixture
def ordinary(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in {"notes.md": NOTES, "poem.txt": POEM, "law.txt": LAW,
                       "plain.txt": PLAIN}.items():
        (docs / name).write_text(text, encoding="utf-8")
    return docs


def test_every_content_line_of_ordinary_documents_is_kept(ordinary: Path) -> None:
    """Before: the note indexed as one passage (its `## 版权说明` heading)."""
    found = scan([ordinary])
    prepared = prepare(found.documents)
    assert prepared.web == []
    # only heading lines (embedded as context) and Markdown rules/fences leave the text
    assert {r for reasons in prepared.dropped.values() for r in reasons} <= {"heading", "markup"}
    by_source = {d.source: [p for p in prepared.passages if p.source == d.source]
                 for d in found.documents}
    for name in ("notes.md", "poem.txt", "law.txt", "plain.txt"):
        kept = _findable(by_source[name])
        for line in _content_lines((ordinary / name).read_text("utf-8")):
            assert _squeeze(line) in kept, (name, line)


def test_list_items_and_table_rows_stay_lines() -> None:
    doc = corpus.Document("n.md", NOTES, "utf-8", "0", format="markdown")
    texts = [p.text for p in prepare([doc]).passages]
    assert any("- 买牛奶\n- 买鸡蛋" in t for t in texts)
    assert any("| 苹果 | 5元 | 山东烟台 |" in t for t in texts)


def test_seeds_still_lose_their_chrome_and_say_so() -> None:
    prepared = prepare(scan([SEEDS]).documents)
    assert {s[:3] for s in prepared.web} == {"000", "001", "003"}
    total = prepared.dropped_total()
    assert total["navigation"] >= 10 and total["copyright"] >= 3 and total["attribution"] >= 3
    text = "\n".join(p.text for p in prepared.passages)
    for chrome in ("责任编辑", "新浪微博", "当前位置", "江苏好人榜 >", "关键词浏览"):
        assert chrome not in text


def test_clean_mode_can_be_forced(ordinary: Path) -> None:
    web = prepare(scan([ordinary], options=Options(clean="web")).documents)
    assert web.dropped["notes.md"]  # the web rules would drop list items, rows and names
    with pytest.raises(corpus.CorpusError, match="cleaning mode"):
        Options(clean="magic")


HTML = """<!doctype html><html lang="zh-CN"><head><title>大熊猫</title>
<style>body { color: red }</style><script>var trackingCode = "UA-1";</script></head><body>
<nav><a href="/">首页</a> | <a href="/n">新闻</a> | <a href="/a">关于我们</a></nav>
<article><h1>大熊猫</h1>
<p>大熊猫是中国特有的熊科动物，主要栖息在四川、陕西和甘肃的山区，以竹子为主要食物。</p>
<p>大熊猫的保护工作持续了几十年，野外种群数量稳步回升，已经从濒危降为易危物种。</p>
<h2>食性</h2>
<p>大熊猫的食物中百分之九十九是竹子，一只成年大熊猫每天要吃十几公斤竹子。</p>
</article><footer>版权所有 © 2024 动物网</footer><script>track();</script></body></html>
"""


@pytest.mark.parametrize("name", ["panda.html", "panda.htm", "saved-page.txt"])
def test_html_is_main_text_without_markup(tmp_path: Path, name: str) -> None:
    """Before: the top hit was `<html lang="zh-CN"><head>…<script>var trackingCode…`."""
    (tmp_path / name).write_text(HTML, encoding="utf-8")
    passages = prepare(scan([tmp_path]).documents).passages
    text = "\n".join(p.text + p.heading for p in passages)
    for markup in ("<", ">", "trackingCode", "color: red", "track()", "关于我们"):
        assert markup not in text
    assert any("竹子为主要食物" in p.text for p in passages)
    assert any(p.heading.endswith("食性") and "十几公斤" in p.text for p in passages)


def _pdf(pages: list[str]) -> bytes:
    """A minimal PDF with one line of Helvetica text per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(len(pages)))}]"
               f" /Count {len(pages)} >>",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                       f"<< /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode())
    return out


def test_pdf_passages_carry_their_page(tmp_path: Path) -> None:
    pages = ["Volunteers delivered food to families in quarantine.",
             "The community party members guarded the gate day and night.",
             "Donated masks arrived from a local company."]
    (tmp_path / "report.pdf").write_bytes(_pdf(pages))
    passages = prepare(scan([tmp_path]).documents, min_chars=0).passages
    for number, text in enumerate(pages, start=1):
        (hit,) = [p for p in passages if text[:20] in p.text]
        assert hit.metadata["page"] == number


def test_pdf_without_text_is_named(tmp_path: Path) -> None:
    (tmp_path / "scan.pdf").write_bytes(_pdf([""]))
    (tmp_path / "ok.txt").write_text("正文。", encoding="utf-8")
    with pytest.warns(CorpusWarning, match=r"scan\.pdf.*no text layer"):
        found = scan([tmp_path])
    assert [s.path for s in found.skipped] == [str(tmp_path / "scan.pdf")]


def test_docx_headings_become_hit_headings(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("抗疫纪实", level=1)
    document.add_paragraph("社区党员志愿者每天为隔离居民配送生活物资，风雨无阻。")
    document.add_heading("物资清单", level=2)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "口罩", "2000只"
    table.cell(1, 0).text, table.cell(1, 1).text = "消毒液", "50瓶"
    document.save(str(tmp_path / "report.docx"))
    passages = prepare(scan([tmp_path]).documents, min_chars=0).passages
    (body,) = [p for p in passages if "配送生活物资" in p.text]
    assert body.heading == "抗疫纪实"
    rows = "\n".join(p.text for p in passages if p.heading == "抗疫纪实 / 物资清单")
    assert "口罩 | 2000只" in rows and "消毒液 | 50瓶" in rows


def test_records_are_documents_with_ids_and_metadata(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"id": "r1", "text": "责任编辑:李淼", "lang": "zh"}, ensure_ascii=False) + "\n"
        + json.dumps({"text": "没有编号的记录。"}, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text(
        "key,body,city\nk1,北京是首都。,北京\nk2,上海是经济中心。,上海\n", encoding="utf-8")
    (tmp_path / "c.json").write_text(json.dumps([{"_id": 7, "text": "数组里的记录。"}]),
                                     encoding="utf-8")
    with pytest.warns(CorpusWarning, match="b.csv.*--text-field"):
        docs = scan([tmp_path]).documents
    assert [d.source for d in docs] == ["a.jsonl#r1", "a.jsonl#2", "c.json#7"]
    docs = scan([tmp_path / "b.csv"], options=Options(text_field="body", id_field="key")).documents
    assert [(d.source, d.metadata["city"]) for d in docs] == [("b.csv#k1", "北京"),
                                                               ("b.csv#k2", "上海")]
    # records are not web pages: nothing is dropped, not even a line shaped like chrome
    passages = prepare(scan([tmp_path / "a.jsonl"]).documents).passages
    assert [(p.source, p.text, p.start) for p in passages] == [
        ("a.jsonl#r1", "责任编辑:李淼", 0), ("a.jsonl#2", "没有编号的记录。", 0)]


def test_every_file_in_a_folder_is_indexed_or_named(tmp_path: Path) -> None:
    """Before: RTF, CSV and JSON files were skipped with no message, and a link to
    /etc/passwd inside the folder was followed."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("甲。", encoding="utf-8")
    (docs / "sub" / "b.md").write_text("乙。", encoding="utf-8")
    (docs / "c.rtf").write_text("{\\rtf1 hello}", encoding="utf-8")
    (docs / "d.bin").write_bytes(b"\x00\x01")
    (docs / ".hidden.txt").write_text("隐藏。", encoding="utf-8")
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0", encoding="utf-8")
    os.symlink(outside, docs / "passwd.txt")
    os.symlink(docs / "a.txt", docs / "alias.txt")  # inside the folder: followed
    with pytest.warns(CorpusWarning) as caught:
        found = scan([docs])
    assert sorted(found.files) == ["a.txt", "alias.txt", "sub/b.md"]
    skipped = {Path(s.path).name: s.reason for s in found.skipped}
    assert set(skipped) == {"c.rtf", "d.bin", ".hidden.txt", "passwd.txt"}
    assert "outside the folder" in skipped["passwd.txt"]
    assert all(any(name in str(w.message) for w in caught) for name in skipped)
    assert "root:x" not in "".join(d.text for d in found.documents)
    assert any("root:x" in d.text for d in scan([docs], follow_links=True).documents)


def test_sources_are_named_from_the_root_however_typed(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "n.txt").write_text("笔记。", encoding="utf-8")
    for typed in (docs, docs / "n.txt", docs / ".." / "docs" / "n.txt"):
        (doc,) = scan([typed], root=docs).documents
        assert doc.source == "n.txt"
    other = tmp_path / "other"
    other.mkdir()
    (other / "n.txt").write_text("另一个。", encoding="utf-8")
    (doc,) = scan([other], root=docs).documents
    assert doc.source == (other / "n.txt").absolute().as_posix()


def test_collapse_only_true_duplicates() -> None:
    """Before: records of one file overlapped (same source, offsets from 0), and a sentence
    containing another was dropped as its duplicate."""
    a = Passage("男孩趴在草地上。", "s.jsonl#1", 1, 0, 8)
    b = Passage("小男孩趴在草地上。", "s.jsonl#2", 1, 0, 9)
    collapser = Collapser()
    assert collapser.keep(a) and collapser.keep(b)
    assert not collapser.keep(Passage("男孩趴在草地上。 ", "t.txt", 3, 40, 49))  # same text
    assert not collapser.keep(Passage("趴在草地上。还有", "s.jsonl#1", 1, 2, 10))  # same record
    assert collapser.keep(Passage("趴在草地上。还有", "s.jsonl#3", 1, 2, 10))  # another record


# --- end to end with the tiny model (fast) ---


def _cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from semsearch.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_k_returns_k_hits_over_short_records(tmp_path: Path, tiny_model: Path) -> None:
    sentences = ["男孩趴在草地上。", "小男孩趴在草地上。", "一个女人在切洋葱。",
                 "一个男人在弹吉他。", "两只狗在雪地里奔跑。", "一只猫坐在窗台上。",
                 "孩子们在公园里踢足球。", "老人在河边钓鱼。", "女孩在读一本书。",
                 "厨师在厨房里做饭。", "学生们在教室里上课。", "一辆红色的汽车停在路边。"]
    (tmp_path / "sts.jsonl").write_text("".join(
        json.dumps({"text": s}, ensure_ascii=False) + "\n" for s in sentences), encoding="utf-8")
    index = semsearch.build([tmp_path], str(tiny_model))
    for mode in ("dense", "bm25", "hybrid"):
        hits = index.search("男孩趴在草地上", k=10, mode=mode)  # type: ignore[arg-type]
        if mode != "bm25":
            assert len(hits) == 10, mode
        assert {"sts.jsonl#1", "sts.jsonl#2"} <= {h.source for h in hits}, mode


def test_add_names_sync_and_overwrite(tmp_path: Path, tiny_model: Path) -> None:
    """Before: `add dir/notes.md` added a second source; `add other/` replaced the same-named
    file's passages; deleted files stayed with no notice; `index --out EXISTING` replaced it."""
    docs, other, out = tmp_path / "dir", tmp_path / "other", tmp_path / "idx"
    docs.mkdir()
    other.mkdir()
    for i in range(3):
        (docs / f"extra{i}.txt").write_text(f"第{i}篇：社区志愿者为居民送菜。\n\n第二段{i}。",
                                           encoding="utf-8")
    (other / "extra0.txt").write_text("另一个目录里的同名文件。", encoding="utf-8")
    code, output = _cli("index", str(docs), "--out", str(out), "--model", str(tiny_model))
    assert code == 0, output
    before = semsearch.load(out).passages

    index = semsearch.load(out, str(tiny_model), writable=True)
    report = index.add([docs / "extra0.txt"])
    assert report.unchanged == ["extra0.txt"] and not report.added
    report = index.add([other])
    assert report.added == [(other / "extra0.txt").absolute().as_posix()] and not report.replaced
    assert all(p in index.passages for p in before)  # nothing already indexed is lost

    (docs / "extra2.txt").unlink()
    report = index.add([docs])
    assert report.gone == ["extra2.txt"] and "extra2.txt" in index.manifest.sources
    report = index.add([docs], prune=True)
    assert "extra2.txt" not in index.manifest.sources
    assert (other / "extra0.txt").absolute().as_posix() in index.manifest.sources
    index.save(out)

    code, output = _cli("index", str(docs), "--out", str(out), "--model", str(tiny_model))
    assert code == 1 and "already holds an index" in output and "--force" in output
    assert semsearch.load(out).manifest.passage_count == index.manifest.passage_count
    code, output = _cli("index", str(docs), "--out", str(out), "--model", str(tiny_model),
                        "--force")
    assert code == 0, output


def test_cli_reports_skipped_files_and_dropped_lines(tmp_path: Path, tiny_model: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    page = (SEEDS / "001_b0b1c2961d63c9fa.txt").read_text("utf-8")
    (docs / "page.txt").write_text(page, encoding="utf-8")
    (docs / "x.rtf").write_text("{\\rtf1 x}", encoding="utf-8")
    out = tmp_path / "idx"
    code, output = _cli("index", str(docs), "--out", str(out), "--model", str(tiny_model))
    assert code == 0, output
    flat = " ".join(output.split())
    assert "1 file read" in flat and "1 skipped" in flat and "x.rtf" in flat
    assert re.search(r"\d+ lines dropped", flat) and "navigation" in flat
    code, output = _cli("info", "--index", str(out), "--dropped", "page.txt")
    flat = " ".join(output.split())
    assert code == 0 and "navigation" in flat and "新浪微博" in flat
