"""Real documents: is what semsearch embeds what the files say? (issue 21)

Runs semsearch's reading, cleaning and passage cutting (no model: passages only) on public test
files of the format libraries and measures, per file:
- `kept`: of the characters the format library itself extracts (pypdf `extract_text`, the
  python-docx paragraphs and tables of the body, headers and footers, trafilatura's plain-text
  output), the share whose line is found in the embedded text (`Passage.embedded_text`: heading
  and passage text), compared without whitespace and table/list markers;
- `pages_right` (PDF): of the lines that occur on one page only, the share whose passage spans
  that page (`page_start` <= page <= `page_end`);
- `markup`: passages with HTML tags or extractor Markdown (`**`, backslash escapes, code
  fences, table rules) that the library's plain text does not have; `junk`: passages with no
  letter or digit;
- `snippets` (HTML): of the strings trafilatura's tests/realworld_tests.py expects in a page's
  extraction, the share found in the embedded text (and, beside it, in trafilatura's own
  plain-text output).

And on the documents of a Chinese office (issue 37, made by office.py so their text is known):
- Chinese PDFs with known paragraphs (one and two columns): Chinese passages' mean length and
  how many are under 40 characters, how many boundaries between two Chinese passages of one
  document fall inside a word (jieba's cut of the characters around it; and of those, how
  many between two Han characters: jieba also counts a run of Latin letters and digits as
  one word, as in a heading number run into the next line, `9.1.8 2011｜Mac OS X`), lines on
  the right page, and the known paragraphs read as one paragraph of the document's text;
- the Word and HTML cases: of the strings each file must yield, how many are in a passage;
- with `--public DIR`, the same figures (but paragraphs read whole, unknown there) on public
  PDFs whose text layer is mostly Chinese (office.public_pdfs: an OCR'd scan, reports and
  manuals, and documents made of short items), in total and for the prose ones.

Full run on checkouts: `--pypdf DIR --python-docx DIR --trafilatura DIR` (the repositories
py-pdf/pypdf, python-openxml/python-docx, adbar/trafilatura), with `--chinese` for six Chinese
PDFs made by LibreOffice (text layers written by office.py when it is not installed).
`--smoke` runs on the small subset shipped in benchmarks/data/documents/ (see its SOURCES.md
for licenses), two Chinese text-layer PDFs and the cases. Writes documents.json and
documents.md (see benchmarks/outputs.py).
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import office
from outputs import output_dir

from semsearch import corpus
from semsearch.passages import Passage, prepare

DATA = Path(__file__).resolve().parent / "data" / "documents"
# what the shipped page (written for semsearch) must yield, as realworld_tests.py does for its
SMOKE_SNIPPETS = {"lyrics.html": ["床前明月光", "低头思故乡", "这首诗写于唐玄宗开元年间",
                                  "井台上的围栏", "霜 （名词）", "http_response_len"]}
MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(\s[^<>]*)?/?>|\*\*|\\[\\_*\[\]#`<>-]|```"
                    r"|^\s*\|?\s*:?-{3,}:?\s*\|", re.MULTILINE)
_NOISE = re.compile(r"[\s|*#`_\\>•·-]+")


def squeeze(text: str) -> str:
    """Text compared without whitespace, table and list markers or Markdown marks."""
    return _NOISE.sub("", text)


def markup(text: str, library: str) -> bool:
    """`text` has markup the library's own plain text does not (a page that shows `<a href>`
    as text, or a document with `>><<` in it, is quoting, not leaking markup)."""
    return any(m.group(0) not in library for m in MARKUP.finditer(text))


def library_pdf(path: Path) -> list[str]:
    """The text pypdf extracts, page by page."""
    import pypdf

    reader = pypdf.PdfReader(str(path))
    if reader.is_encrypted:
        reader.decrypt("")
    return [page.extract_text() or "" for page in reader.pages]


def library_docx(path: Path) -> str:
    """The text python-docx gives: body paragraphs and table cells, headers and footers."""
    import docx

    document = docx.Document(str(path))
    parts: list[str] = []

    def story(container: Any) -> None:
        for item in container.iter_inner_content():
            if hasattr(item, "rows"):
                for row in item.rows:
                    for cell in row.cells:
                        story(cell)
            else:
                parts.append(item.text)

    story(document)
    for section in document.sections:
        for attr in ("header", "footer", "first_page_header", "first_page_footer",
                     "even_page_header", "even_page_footer"):
            part = getattr(section, attr)
            if not part.is_linked_to_previous:
                story(part)
    return "\n".join(parts)


def library_html(path: Path) -> str:
    """trafilatura's own plain-text extraction of the page's main text."""
    import trafilatura

    html, _ = corpus.decode_bytes(path.read_bytes())
    return trafilatura.extract(html, output_format="txt", include_tables=True,
                               include_comments=False) or ""


def kept_share(library: str, embedded: str) -> tuple[int, int, list[str]]:
    """(characters of the library's lines found in `embedded`, all of them, lines missing)."""
    found = total = 0
    missing = []
    for line in library.splitlines():
        key = squeeze(line).rstrip("-")
        if not key:
            continue
        total += len(key)
        if key in embedded:
            found += len(key)
        else:
            missing.append(line.strip())
    return found, total, missing


def pages_right(pages: list[str], passages: list[Passage]) -> tuple[int, int]:
    """Lines (of 8+ characters) printed on one page only: how many sit in a passage that spans
    that page, of how many were found in a passage at all. A line cut between two passages
    (a long table row at the token budget) sits in both: in 3 rows of a public quarterly report
    (pdfplumber's issue-67-example.pdf) only another page had the same figures whole."""
    keys = [[squeeze(line) for line in page.splitlines() if len(squeeze(line)) >= 8]
            for page in pages]
    where: dict[str, set[int]] = {}
    for number, lines in enumerate(keys, start=1):
        for key in lines:
            where.setdefault(key, set()).add(number)
    texts = [(squeeze(p.text), p.metadata) for p in passages]
    right = total = 0
    for key, numbers in where.items():
        if len(numbers) != 1:
            continue
        (page,) = numbers
        holders = [meta for text, meta in texts if key in text]
        holders += [meta for (a, first), (b, second) in itertools.pairwise(texts)
                    if key not in a and key not in b and key in a[-len(key):] + b[:len(key)]
                    for meta in (first, second)]
        if not holders:
            continue
        total += 1
        right += any(m.get("page_start", m.get("page", 0)) <= page
                     <= m.get("page_end", m.get("page", 0)) for m in holders)
    return right, total


def expected_snippets(tests: Path) -> dict[str, list[str]]:
    """file → strings trafilatura's realworld tests assert are `in` the extraction."""
    tree = ast.parse(tests.read_text(encoding="utf-8"))
    pages: dict[str, str] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == "MOCK_PAGES" for t in node.targets)):
            pages = {k.value: v.value for k, v in zip(node.value.keys, node.value.values,
                                                       strict=True)
                     if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}
    expected: dict[str, list[str]] = {}
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        current = None
        nodes = sorted((n for n in ast.walk(func) if isinstance(n, ast.Call | ast.Compare)),
                       key=lambda n: (n.lineno, n.col_offset))
        for node in nodes:
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                    "load_mock_page", "do_load_page"):
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and arg.value in pages:
                    current = pages[arg.value]
            if (current and isinstance(node, ast.Compare) and len(node.ops) == 1
                    and isinstance(node.ops[0], ast.In) and isinstance(node.left, ast.Constant)
                    and isinstance(node.left.value, str)
                    and isinstance(node.comparators[0], ast.Name)
                    and node.comparators[0].id == "result"):
                expected.setdefault(current, []).append(node.left.value)
    return expected


def files(args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """(format, path) of every file measured."""
    if args.smoke:
        for path in sorted(DATA.iterdir()):
            kind = {".pdf": "pdf", ".docx": "docx", ".html": "html"}.get(path.suffix)
            if kind:
                yield kind, path
        return
    if args.pypdf:
        yield from (("pdf", p) for p in sorted((args.pypdf / "resources").rglob("*.pdf")))
    if args.python_docx:
        yield from (("docx", p) for p in sorted(args.python_docx.rglob("*.docx")))
    if args.trafilatura:
        yield from (("html", p) for p in sorted((args.trafilatura / "tests" / "cache")
                                                 .glob("*.html")))


def measure(kind: str, path: Path, snippets: dict[str, list[str]]) -> dict[str, Any]:
    """One file's row (see the module docstring); `error` when semsearch or the library
    refused it."""
    row: dict[str, Any] = {"file": path.name, "format": kind}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            documents = corpus.load_file(path, path.name)
        except ValueError as exc:
            row["error"] = str(exc)
            return row
    row["warnings"] = [str(w.message) for w in caught]
    prepared = prepare(documents)
    passages = prepared.passages
    # passages in order (a long paragraph is cut into several), then every heading line
    titles = [d.text for notes in getattr(prepared, "notes", {}).values() for d in notes
              if d.reason == "heading"]  # (getattr: so that older versions can be measured)
    embedded = "".join(squeeze(p.text) for p in passages) + "\0" + "\0".join(
        squeeze(t) for t in titles)
    try:
        pages = library_pdf(path) if kind == "pdf" else []
        library = ("\n".join(pages) if kind == "pdf" else
                   library_docx(path) if kind == "docx" else library_html(path))
    except Exception as exc:  # the library itself fails on some test files
        row["error"] = f"library: {type(exc).__name__}"
        return row
    found, total, missing = kept_share(library, embedded)
    dropped = {r: n for r, n in prepared.dropped_total().items() if r != "heading"}
    row.update(passages=len(passages), library_chars=total, kept_chars=found,
               kept=round(found / total, 4) if total else 1.0, missing=missing[:5],
               markup=sum(1 for p in passages if markup(p.text, library)),
               junk=sum(1 for p in passages if not any(ch.isalnum() for ch in p.text)),
               dropped=dropped, parts=sorted({str(p.metadata.get("part", "body"))
                                              for p in passages}))
    if kind == "pdf":
        right, lines = pages_right(pages, passages)
        row.update(pages_right=right, page_lines=lines)
    if kind == "html" and path.name in snippets:
        wanted = snippets[path.name]
        lib = squeeze(library)
        row.update(snippets=len(wanted),
                   snippets_found=sum(1 for s in wanted if squeeze(s) in embedded),
                   snippets_library=sum(1 for s in wanted if squeeze(s) in lib))
    return row


def _han(text: str) -> float:
    letters = [ch for ch in text if not ch.isspace()]
    return sum(1 for ch in letters if "\u4e00" <= ch <= "\u9fff") / max(1, len(letters))


def inside_word(before: str, after: str) -> bool:
    """Whether jieba's cut of the characters around a boundary has a word across it."""
    import jieba

    left, right = squeeze(before)[-12:], squeeze(after)[:12]
    position = 0
    for word in jieba.cut(left + right, HMM=False):
        if position < len(left) < position + len(word):
            return True
        position += len(word)
    return False


def measure_chinese(path: Path, paragraphs: list[str]) -> dict[str, Any]:
    """A Chinese PDF's row (see the module docstring)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        documents = corpus.load_file(path, path.name)
    passages = prepare(documents).passages
    chinese = [p for p in passages if _han(p.text) > 0.3]
    pairs = [(a, b) for a, b in itertools.pairwise(passages)
             if _han(a.text) > 0.3 and _han(b.text) > 0.3]
    right, lines = pages_right(library_pdf(path), passages)
    found = {squeeze(block) for d in documents for block in d.text.split("\n\n")}
    return {"file": path.name, "format": "pdf-zh", "passages": len(chinese),
            "chars": sum(len(p.text) for p in chinese),
            "under_40": sum(1 for p in chinese if len(p.text) < 40),
            "boundaries": len(pairs),
            "inside_word": sum(1 for a, b in pairs if inside_word(a.text, b.text)),
            "inside_word_han": sum(1 for a, b in pairs if inside_word(a.text, b.text)
                                   and _han(squeeze(a.text)[-1:]) and _han(squeeze(b.text)[:1])),
            "pages_right": right, "page_lines": lines, "paragraphs": len(paragraphs),
            "paragraphs_whole": sum(1 for p in paragraphs if squeeze(p) in found)}


def measure_case(path: Path, wanted: list[str]) -> dict[str, Any]:
    """A Word or HTML case: how many of the strings it must yield are in a passage."""
    row: dict[str, Any] = {"file": path.name, "format": "case", "wanted": len(wanted)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            passages = prepare(corpus.load_file(path, path.name)).passages
        except ValueError as exc:
            row.update(found=0, error=str(exc))
            return row
    row["found"] = sum(1 for w in wanted if any(w in p.text for p in passages))
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals per format."""
    out: dict[str, Any] = {}
    for kind in ("pdf", "docx", "html"):
        ok = [r for r in rows if r["format"] == kind and "error" not in r]
        if not ok and not any(r["format"] == kind for r in rows):
            continue
        out[kind] = {
            "files": sum(1 for r in rows if r["format"] == kind),
            "refused": sum(1 for r in rows if r["format"] == kind and "error" in r),
            "kept_min": min((r["kept"] for r in ok), default=None),
            "kept_all": round(sum(r["kept_chars"] for r in ok)
                              / max(1, sum(r["library_chars"] for r in ok)), 4),
            "below_098": sorted(r["file"] for r in ok if r["kept"] < 0.98),
            "markup_passages": sum(r["markup"] for r in ok),
            "junk_passages": sum(r["junk"] for r in ok),
            "passages": sum(r["passages"] for r in ok),
        }
        if kind == "pdf":
            out[kind]["pages_right"] = sum(r.get("pages_right", 0) for r in ok)
            out[kind]["page_lines"] = sum(r.get("page_lines", 0) for r in ok)
        if kind == "html":
            out[kind]["snippets"] = sum(r.get("snippets", 0) for r in ok)
            out[kind]["snippets_found"] = sum(r.get("snippets_found", 0) for r in ok)
            out[kind]["snippets_library"] = sum(r.get("snippets_library", 0) for r in ok)
    for name, chinese in (("pdf-zh", [r for r in rows if r["format"] == "pdf-zh"]),
                          ("pdf-zh-public", [r for r in rows if r["format"] == "pdf-zh-public"]),
                          ("pdf-zh-public-prose", [r for r in rows if r["format"]
                                                   == "pdf-zh-public" and r["kind"] == "prose"])):
        if chinese:
            out[name] = _chinese_totals(chinese)
    cases = [r for r in rows if r["format"] == "case"]
    if cases:
        out["cases"] = {"files": len(cases), "refused": sum(1 for r in cases if "error" in r),
                        "wanted": sum(r["wanted"] for r in cases),
                        "found": sum(r["found"] for r in cases)}
    return out


def _chinese_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    totals = {key: sum(r[key] for r in rows) for key in (
        "passages", "chars", "under_40", "boundaries", "inside_word", "inside_word_han",
        "pages_right", "page_lines", "paragraphs", "paragraphs_whole")}
    totals.update(files=len(rows), mean_chars=round(totals["chars"] / max(1, totals["passages"]),
                                                    1),
                  inside_share=round(totals["inside_word"] / max(1, totals["boundaries"]), 4))
    return totals


def markdown(report: dict[str, Any]) -> str:
    lines = ["Real documents (issue 21): what semsearch embeds vs what the format library "
             "extracts.", "",
             "| format | files | refused | kept (all) | kept (min) | files < 0.98 | passages "
             "| markup | junk | PDF lines on the right page | HTML snippets found "
             "(trafilatura's own) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, s in report["summary"].items():
        if kind not in ("pdf", "docx", "html"):
            continue
        pages = (f"{s['pages_right']}/{s['page_lines']}" if kind == "pdf" else "")
        snippets = (f"{s['snippets_found']}/{s['snippets']} ({s['snippets_library']})"
                    if kind == "html" else "")
        lines.append(f"| {kind} | {s['files']} | {s['refused']} | {s['kept_all']} | "
                     f"{s['kept_min']} | {len(s['below_098'])} | {s['passages']} | "
                     f"{s['markup_passages']} | {s['junk_passages']} | {pages} | {snippets} |")
    zh = report["summary"].get("pdf-zh")
    if zh:
        lines += ["", "Chinese PDFs (issue 37; known paragraphs, office.py):", "",
                  "| files | passages | mean characters | under 40 | boundaries inside a word "
                  "| lines on the right page | paragraphs read as one |",
                  "|---|---|---|---|---|---|---|",
                  f"| {zh['files']} | {zh['passages']} | {zh['mean_chars']} | {zh['under_40']} "
                  f"| {zh['inside_word']}/{zh['boundaries']} | {zh['pages_right']}/"
                  f"{zh['page_lines']} | {zh['paragraphs_whole']}/{zh['paragraphs']} |"]
    public = [row for row in report["files"] if row["format"] == "pdf-zh-public"]
    if public:
        lines += ["", "Public PDFs with a mostly Chinese text layer (issue 37; sources and "
                  "licenses in data/documents/public-chinese-pdfs.json):", "",
                  "| file | kind | pages | passages | mean characters | under 40 "
                  "| boundaries inside a word (between two Han characters) "
                  "| lines on the right page |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in public:
            mean = round(row["chars"] / max(1, row["passages"]), 1)
            lines.append(f"| {row['file']} | {row['kind']} | {row['pages']} | "
                         f"{row['passages']} | {mean} | {row['under_40']} | "
                         f"{row['inside_word']}/{row['boundaries']} "
                         f"({row['inside_word_han']}) | {row['pages_right']}/"
                         f"{row['page_lines']} |")
        for key, label in (("pdf-zh-public-prose", "**prose documents**"),
                           ("pdf-zh-public", "**all**")):
            t = report["summary"].get(key)
            if t:
                lines.append(f"| {label} | | | {t['passages']} | {t['mean_chars']} | "
                             f"{t['under_40']} | {t['inside_word']}/{t['boundaries']} "
                             f"({t['inside_word_han']}; {100 * t['inside_share']:.1f}%) | "
                             f"{t['pages_right']}/"
                             f"{t['page_lines']} |")
    cases = [row for row in report["files"] if row["format"] == "case"]
    if cases:
        lines += ["", "Word and HTML cases (issue 37): strings each must yield, found in a "
                  "passage:", ""]
        lines += [f"- {row['file']}: {row['found']}/{row['wanted']}"
                  + (f" (refused: {row['error']})" if "error" in row else "") for row in cases]
    lines += ["", "Files below 0.98 kept, refused files and their reasons: documents.json "
              "(`files`, with the first missing lines of each)."]
    for kind, s in report["summary"].items():
        if kind in ("pdf", "docx", "html") and s["below_098"]:
            lines.append(f"- {kind} below 0.98: {', '.join(s['below_098'])}")
    for row in report["files"]:
        if "error" in row and row["format"] != "case":
            lines.append(f"- refused {row['file']}: {row['error']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--smoke", action="store_true", help="the shipped subset only")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--pypdf", type=Path, help="a checkout of py-pdf/pypdf")
    parser.add_argument("--python-docx", type=Path, help="a checkout of python-docx")
    parser.add_argument("--trafilatura", type=Path, help="a checkout of adbar/trafilatura")
    parser.add_argument("--chinese", action="store_true",
                        help="six Chinese PDFs (LibreOffice when installed)")
    parser.add_argument("--public", type=Path, metavar="DIR",
                        help="the public Chinese PDFs, fetched into DIR by office.py collect")
    args = parser.parse_args(argv)
    if not args.smoke and not (args.pypdf or args.python_docx or args.trafilatura
                               or args.chinese or args.public):
        parser.error("give --smoke or at least one of --pypdf, --python-docx, --trafilatura, "
                     "--chinese, --public")
    snippets: dict[str, list[str]] = dict(SMOKE_SNIPPETS) if args.smoke else {}
    if args.trafilatura and not args.smoke:
        snippets = expected_snippets(args.trafilatura / "tests" / "realworld_tests.py")
    rows = [measure(kind, path, snippets) for kind, path in files(args)]
    out = output_dir(args.out, args.smoke, "documents")
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke or args.chinese:
        made = office.chinese_pdfs(out / "chinese-pdfs", 2 if args.smoke else 6,
                                   office=not args.smoke)
        rows += [measure_chinese(path, paras) for path, paras in made.items()]
    if args.public:
        for path, entry in office.public_pdfs(args.public).items():
            row = measure_chinese(path, [])
            row.update(format="pdf-zh-public", kind=entry["kind"], source=entry["source"],
                       pages=len(library_pdf(path)))
            rows.append(row)
    rows += [measure_case(path, wanted) for path, wanted in office.cases(out / "cases").items()]
    report = {"smoke": args.smoke, "summary": summary(rows), "files": rows}
    (out / "documents.json").write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n",
                                        encoding="utf-8")
    (out / "documents.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    print(f"wrote {out / 'documents.json'} and {out / 'documents.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
