"""The documents of a Chinese office (issue 37), made here so their text is known: Chinese PDFs
with known paragraphs, and the Word and HTML files whose text was lost.

- `chinese_pdfs`: CMRC 2018 trial paragraphs (Wikipedia, CC BY-SA 4.0; benchmarks/data), six to
  a document, laid out in one and two columns with a first-line indent: by LibreOffice
  (`soffice --headless --convert-to pdf`, Noto CJK fonts) when it is installed, else as PDF text
  layers written here (an Identity-H font with a ToUnicode map, lines placed as a layout
  engine places them);
- `public_pdfs`: public PDFs whose text layer is mostly Chinese, listed with their sources,
  sha256 and licenses in data/documents/public-chinese-pdfs.json (an OCR'd scan, reports,
  manuals; and forms, an exam, a specimen, which are short by nature), not shipped:
  `python benchmarks/office.py collect DIR` fetches them into DIR;
- `cases`: a Word file whose only text is in a text box (DrawingML, with its VML fallback), one
  with a horizontally merged table python-docx refuses, a Strict Open XML one, a page whose
  code block has `<br>` line breaks and a saved Baike-style page whose lead is beside the
  article body; each with the strings that must be in a passage.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
PUBLIC = DATA / "documents" / "public-chinese-pdfs.json"


def public_pdfs(folder: Path) -> dict[Path, dict[str, Any]]:
    """The listed public Chinese PDFs found in `folder` (by name, their sha256 checked) → their
    manifest entries; SystemExit naming the missing ones and how to get them."""
    found: dict[Path, dict[str, Any]] = {}
    missing = []
    for entry in json.loads(PUBLIC.read_text(encoding="utf-8"))["files"]:
        path = folder / entry["file"]
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]:
            found[path] = entry
        else:
            missing.append(entry["file"])
    if missing:
        raise SystemExit(f"missing or changed in {folder}: {', '.join(missing)} (run: python "
                         f"benchmarks/office.py collect {folder})")
    return found


def collect(folder: Path, mirrors: Path | None = None) -> None:
    """Fetch the listed public PDFs into `folder`: GitHub files by `git show commit:path` from a
    bare mirror (`mirrors`/owner+name/repo) or a blobless clone, Debian files by `apt-get
    download` and `dpkg -x`; each checked against its sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for entry in json.loads(PUBLIC.read_text(encoding="utf-8"))["files"]:
            target = folder / entry["file"]
            kind, name = entry["source"].split(":", 1)
            if kind == "github":
                git = (mirrors / name.replace("/", "+") / "repo") if mirrors else None
                if git is None or not git.is_dir():
                    git = Path(work) / name.replace("/", "+")
                    if not git.is_dir():
                        subprocess.run(["git", "clone", "--bare", "--filter=blob:none",
                                        f"https://github.com/{name}", str(git)], check=True)
                data = subprocess.run(["git", "--git-dir", str(git), "show",
                                       f"{entry['commit']}:{entry['path']}"], check=True,
                                      capture_output=True).stdout
            else:
                package = Path(work) / name.replace("=", "_")
                if not package.is_dir():
                    subprocess.run(["apt-get", "download", name], cwd=work, check=True)
                    deb = next(Path(work).glob(name.split("=")[0] + "_*.deb"))
                    subprocess.run(["dpkg", "-x", str(deb), str(package)], check=True)
                data = (package / entry["path"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise SystemExit(f"{entry['file']}: sha256 differs from the manifest's")
            target.write_bytes(data)
            print(f"{target} ({entry['source']})")


def paragraphs(documents: int, per_document: int = 6) -> list[list[str]]:
    """Known paragraphs: CMRC 2018 trial contexts, in file order."""
    data = json.loads((DATA / "cmrc2018_trial.json").read_text(encoding="utf-8"))["data"]
    contexts = [p["context"].strip() for item in data for p in item["paragraphs"]]
    return [contexts[n * per_document:(n + 1) * per_document] for n in range(documents)]


def chinese_pdfs(out: Path, documents: int = 6, office: bool = True) -> dict[Path, list[str]]:
    """PDF → its paragraphs; even-numbered documents in one column, odd in two."""
    out.mkdir(parents=True, exist_ok=True)
    soffice = shutil.which("soffice") if office else None
    made: dict[Path, list[str]] = {}
    for n, paras in enumerate(paragraphs(documents)):
        columns = 2 if n % 2 else 1
        name = f"zh-{columns}col-{n}"
        if soffice:
            _word(paras, columns).save(str(out / f"{name}.docx"))
            profile = (out / ".libreoffice").resolve().as_uri()  # its own: runs may overlap
            subprocess.run([soffice, f"-env:UserInstallation={profile}", "--headless",
                            "--convert-to", "pdf", "--outdir", str(out),
                            str(out / f"{name}.docx")], check=True, capture_output=True,
                           timeout=300)
        else:
            (out / f"{name}.pdf").write_bytes(text_layer_pdf(layout(paras, columns)))
        made[out / f"{name}.pdf"] = paras
    return made


def _word(paras: list[str], columns: int):  # type: ignore[no-untyped-def]
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt

    document = docx.Document()
    style = document.styles["Normal"]
    style.font.name = "Noto Serif CJK SC"
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "Noto Serif CJK SC")
    style.font.size = Pt(11)
    if columns == 2:
        cols = document.sections[0]._sectPr.find(qn("w:cols"))
        if cols is None:
            cols = OxmlElement("w:cols")
            document.sections[0]._sectPr.append(cols)
        cols.set(qn("w:num"), "2")
        cols.set(qn("w:space"), "720")
    for text in paras:
        paragraph = document.add_paragraph(text)
        paragraph.paragraph_format.first_line_indent = Pt(22)
        paragraph.paragraph_format.space_after = Pt(0)
    return document


def _advance(ch: str) -> float:
    """A character's width in em: CJK and full-width forms 1, others half."""
    import unicodedata

    return 1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.5


def layout(paras: list[str], columns: int, rows: int = 40) -> list[list[tuple[float, float, str]]]:
    """(x, y, text) lines of each page: 11 pt characters filling a column as a layout engine
    does (two characters of indent on a paragraph's first line), 16 pt apart."""
    width = 40.0 if columns == 1 else 19.0  # em
    lines: list[tuple[bool, str]] = []
    for text in paras:
        line, used, first = "", 2.0, True
        for ch in text:
            if used + _advance(ch) > width:
                lines.append((first, line))
                line, used, first = "", 0.0, False
            line += ch
            used += _advance(ch)
        lines.append((first, line))
    pages: list[list[tuple[float, float, str]]] = [[]]
    slot = 0
    for first, text in lines:
        if slot == rows * columns:
            pages.append([])
            slot = 0
        column, row = divmod(slot, rows)
        pages[-1].append((72 + column * (width * 11 + 24) + (22 if first else 0),
                          780 - row * 16, text))
        slot += 1
    return pages


Placed = tuple[float, float, str] | tuple[float, float, str, float]


def text_layer_pdf(pages: list[list[Placed]]) -> bytes:
    """A PDF printing each (x, y, text) in an Identity-H font with a ToUnicode map, at 11 pt;
    a line given a size (x, y, text, size) is printed as an OCR engine writes the text layer
    over a scan: each character at its own position 11 pt apart, in a font of that size
    squeezed to the width (OCR sizes each line to its box, so sizes differ line to line)."""
    chars = sorted({ch for page in pages for line in page for ch in line[2]})
    cmap = ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CIDSystemInfo "
            "<< /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def /CMapName /UCS def "
            "/CMapType 2 def 1 begincodespacerange <0000> <FFFF> endcodespacerange "
            f"{len(chars)} beginbfchar\n"
            + "".join(f"<{ord(c):04X}> <{ord(c):04X}>\n" for c in chars)
            + "endbfchar endcmap CMapName currentdict /CMap defineresource pop end end")
    kids = " ".join(f"{6 + 2 * i} 0 R" for i in range(len(pages)))
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>",
               "<< /Type /Font /Subtype /Type0 /BaseFont /Song /Encoding /Identity-H "
               "/DescendantFonts [4 0 R] /ToUnicode 5 0 R >>",
               "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Song /CIDSystemInfo << "
               "/Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 1000 /W ["
               + " ".join(f"{ord(c)} [500]" for c in chars if _advance(c) < 1) + "] >>",
               f"<< /Length {len(cmap.encode())} >>\nstream\n{cmap}\nendstream"]
    for i, page in enumerate(pages):
        stream = "".join(_show(*line) for line in page)
        objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
                       f"<< /Font << /F1 3 0 R >> >> /Contents {7 + 2 * i} 0 R >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}endstream")
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


def _show(x: float, y: float, text: str, size: float | None = None) -> str:
    """The content-stream operators printing one line (see `text_layer_pdf`)."""
    if size is None:
        return f"BT /F1 11 Tf 1 0 0 1 {x} {y} Tm <" + "".join(
            f"{ord(c):04X}" for c in text) + "> Tj ET\n"
    return (f"BT /F1 {size} Tf {100 * 11 / size:.2f} Tz " + "".join(
        f"1 0 0 1 {x + 11 * i} {y} Tm <{ord(c):04X}> Tj " for i, c in enumerate(text))
        + "ET\n")


_NS = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
       'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
       'xmlns:v="urn:schemas-microsoft-com:vml" '
       'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
       'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
       'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"')
_BOX = "关于召开年度工作会议的通知：会议定于三月五日上午九时在三楼会议室召开。"
_LEAD = ("蔡健雅（Tanya Chua），1975年1月28日出生于新加坡，华语流行乐女歌手、音乐制作人。"
         "1997年签约新加坡唱片公司，发行首张英文专辑。")


def cases(out: Path) -> dict[Path, list[str]]:
    """file → strings that must be in a passage (see the module docstring)."""
    import docx
    from docx.oxml import OxmlElement, parse_xml
    from docx.oxml.ns import qn

    out.mkdir(parents=True, exist_ok=True)
    made: dict[Path, list[str]] = {}
    box = f'<w:txbxContent><w:p><w:r><w:t>{_BOX}</w:t></w:r></w:p></w:txbxContent>'
    document = docx.Document()
    document.add_paragraph()._p.append(parse_xml(
        f'<w:r {_NS}><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor>'
        '<a:graphic><a:graphicData uri="http://schemas.microsoft.com/office/word/2010/'
        f'wordprocessingShape"><wps:wsp><wps:txbx>{box}</wps:txbx></wps:wsp></a:graphicData>'
        '</a:graphic></wp:anchor></w:drawing></mc:Choice><mc:Fallback><w:pict><v:shape>'
        f'<v:textbox>{box}</v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent>'
        '</w:r>'))
    document.save(str(out / "textbox.docx"))
    made[out / "textbox.docx"] = [_BOX]

    document = docx.Document()
    document.add_paragraph("二〇二四年办公用品采购明细如下，请各部门核对。")
    table = document.add_table(rows=2, cols=3)
    for r, row in enumerate((("项目名称", "", "金额"), ("办公用品采购", "", "3200元"))):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    first = table.rows[0]._tr
    span = OxmlElement("w:gridSpan")
    span.set(qn("w:val"), "2")
    first.tc_lst[0].get_or_add_tcPr().append(span)
    first.remove(first.tc_lst[1])
    table.rows[1]._tr.tc_lst[1].get_or_add_tcPr().append(OxmlElement("w:vMerge"))
    document.add_paragraph("以上费用由行政部统一报销。")
    document.save(str(out / "merged-table.docx"))
    made[out / "merged-table.docx"] = ["请各部门核对", "办公用品采购", "3200元", "统一报销"]

    document = docx.Document()
    document.add_paragraph("这份文件以严格的开放XML格式保存，正文应当被完整读取。")
    buffer = io.BytesIO()
    document.save(buffer)
    strict = io.BytesIO()
    mapping = {b"http://schemas.openxmlformats.org/wordprocessingml/2006/main":
               b"http://purl.oclc.org/ooxml/wordprocessingml/main",
               b"http://schemas.openxmlformats.org/officeDocument/2006/relationships":
               b"http://purl.oclc.org/ooxml/officeDocument/relationships"}
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(strict, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            for old, new in mapping.items():
                data = data.replace(old, new)
            target.writestr(item, data)
    (out / "strict.docx").write_bytes(strict.getvalue())
    made[out / "strict.docx"] = ["正文应当被完整读取"]

    long = "这是一篇关于WebAssembly的教程，介绍如何把C程序编译成wasm模块并在浏览器里运行。" * 3
    (out / "code.html").write_text(
        f"<html><head><title>编译教程</title></head><body><article><h1>编译教程</h1>"
        f"<p>{long}</p><pre><code>#include &lt;emscripten.h&gt;<br>EMSCRIPTEN_KEEPALIVE<br>"
        "int add(int a, int b) { return a + b; }<br>$ wasmer run hello.wasm</code></pre>"
        f"<p>{long}</p><p>运行上面的命令即可看到结果，这里还有更多的说明文字。</p></article>"
        "</body></html>", encoding="utf-8")
    made[out / "code.html"] = ["#include <emscripten.h>", "EMSCRIPTEN_KEEPALIVE",
                               "$ wasmer run hello.wasm"]

    paras = "\n".join(f'<div class="para" label-module="para">{p}</div>'
                      for p in paragraphs(1, 4)[0])
    (out / "baike.html").write_text(
        f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>蔡健雅_百度百科</title>
<meta name="description" content="{_LEAD[:40]}…"></head><body>
<div class="header"><a href="/">百度首页</a></div><div class="main-content">
<h1>蔡健雅</h1><div class="lemma-summary" label-module="lemmaSummary">
<div class="para" label-module="para">{_LEAD}</div></div>
<div class="basic-info"><dl><dt>中文名</dt><dd>蔡健雅</dd></dl></div>
<div class="lemma-content article-content"><h2>词条正文</h2>
{paras}</div></div><div class="footer">©2024 Baidu</div></body></html>""", encoding="utf-8")
    made[out / "baike.html"] = [_LEAD]
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fetch the public Chinese PDFs the documents "
                                     "benchmark measures (--public)")
    parser.add_argument("command", choices=["collect"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--mirrors", type=Path, help="bare git mirrors as owner+name/repo")
    args = parser.parse_args(argv)
    collect(args.folder, args.mirrors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
