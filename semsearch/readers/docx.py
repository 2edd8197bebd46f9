"""Word files (.docx): the body's paragraphs, tables and text boxes by python-docx, then headers,
footers, footnotes, endnotes and comments, each part named. Tables python-docx refuses (irregular
merges) are read from their XML; Strict Open XML files are read with their namespaces mapped to
the transitional ones python-docx knows."""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

from semsearch.readers.base import Blocks, CorpusWarning, Document, Options, extra

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_TXBX = f"{_W}txbxContent"
# Strict Open XML (ISO/IEC 29500 Strict, Word's "Strict Open XML Document") names its parts'
# namespaces and relationship types under purl.oclc.org; each maps to a transitional one.
_STRICT = (
    (b"http://purl.oclc.org/ooxml/wordprocessingml/main",
     b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"),
    (b"http://purl.oclc.org/ooxml/officeDocument/relationships",
     b"http://schemas.openxmlformats.org/officeDocument/2006/relationships"),
    (b"http://purl.oclc.org/ooxml/officeDocument/extendedProperties",
     b"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"),
    (b"http://purl.oclc.org/ooxml/officeDocument/customProperties",
     b"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"),
    (b"http://purl.oclc.org/ooxml/officeDocument/docPropsVTypes",
     b"http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"),
    (b"http://purl.oclc.org/ooxml/officeDocument/sharedTypes",
     b"http://schemas.openxmlformats.org/officeDocument/2006/sharedTypes"),
    (b"http://purl.oclc.org/ooxml/officeDocument/math",
     b"http://schemas.openxmlformats.org/officeDocument/2006/math"),
    (b"http://purl.oclc.org/ooxml/drawingml/wordprocessingDrawing",
     b"http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"),
    (b"http://purl.oclc.org/ooxml/drawingml/picture",
     b"http://schemas.openxmlformats.org/drawingml/2006/picture"),
    (b"http://purl.oclc.org/ooxml/drawingml/chart",
     b"http://schemas.openxmlformats.org/drawingml/2006/chart"),
    (b"http://purl.oclc.org/ooxml/drawingml/main",
     b"http://schemas.openxmlformats.org/drawingml/2006/main"),
)
# Word parts beside the body, read from the package XML (python-docx has no API for notes)
_DOCX_NOTES = {"footnotes.xml": ("footnote", "footnote"), "endnotes.xml": ("endnote", "endnote"),
               "comments.xml": ("comment", "comment")}


def _docx_style_level(paragraph: Any) -> int:
    """1 for a Title, n + 1 for Heading n, 0 for any other style."""
    style = (paragraph.style.name or "") if paragraph.style is not None else ""
    if style == "Title":
        return 1
    if style.startswith("Heading") and style[7:].strip().isdigit():
        return min(6, int(style[7:]) + 1)
    return 0


def _docx_cell(cell: Any) -> str:
    """A table cell's text: its paragraphs joined by spaces (kept together), a nested table's
    rows after them."""
    parts = []
    for item in cell.iter_inner_content():
        if hasattr(item, "rows"):
            parts.extend(_docx_rows(item))
        elif item.text.strip():
            parts.append(" ".join(item.text.split()))
    return " ".join(parts)


def _docx_rows(table: Any) -> list[str]:
    """A table as rows of cells joined by ` | `; a merged cell counts once. A table whose merges
    python-docx cannot resolve (`no tc element at grid_offset`) is read from its XML."""
    try:
        return _grid_rows(table)
    except ValueError:
        return _xml_rows(table._tbl)


def _paragraph_text(p: Any) -> str:
    """The text of a `w:p` element, without the text boxes anchored in it (read on their own)
    nor the VML fallback copies of shapes."""
    pieces = []
    for node in p.iter(f"{_W}t", f"{_W}tab", f"{_W}br"):
        if not _inside_box(node, p):
            pieces.append(node.text or "" if node.tag == f"{_W}t" else
                          "\t" if node.tag == f"{_W}tab" else "\n")
    return "".join(pieces)


def _inside_box(node: Any, top: Any) -> bool:
    """Whether `node` sits in a text box or a fallback copy below `top`."""
    for ancestor in node.iterancestors():
        if ancestor is top:
            return False
        if ancestor.tag in (_TXBX, _FALLBACK):
            return True
    return False


def _xml_rows(tbl: Any) -> list[str]:
    """A `w:tbl` as rows of its `w:tc` cells in document order (a horizontal merge is one cell,
    a cell continuing a vertical merge has its own, usually empty, text)."""
    rows = []
    for tr in tbl.iterchildren(f"{_W}tr"):
        cells = []
        for tc in tr.iter(f"{_W}tc"):
            if next((a for a in tc.iterancestors(f"{_W}tr")), None) is not tr:
                continue  # a nested table's cell: part of its outer cell's text
            texts = [" ".join(_paragraph_text(p).split()) for p in tc.iter(f"{_W}p")]
            cells.append(" ".join(t for t in texts if t))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _text_boxes(element: Any) -> list[str]:
    """The text of each text box or shape anchored in `element` (DrawingML `wps:txbx` and VML
    `v:textbox` both hold a `w:txbxContent`), in document order; the VML copy Word keeps in
    `mc:Fallback` of a DrawingML box is skipped, and a box inside a box is read with it."""
    boxes = []
    for box in element.iter(_TXBX):
        if any(a.tag in (_TXBX, _FALLBACK) for a in box.iterancestors()):
            continue
        lines = []
        for p in box.iter(f"{_W}p"):
            if next(p.iterancestors(_TXBX)) is box:
                lines.append(_paragraph_text(p))
        text = "\n".join(line for line in lines if line.strip())
        if text.strip():
            boxes.append(text)
    return boxes


def _grid_rows(table: Any) -> list[str]:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(_docx_cell(cell))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


class _Story:
    """Blocks with the part each starts: a part is recorded where it changes."""

    def __init__(self) -> None:
        self.blocks = Blocks()
        self.parts: list[tuple[int, str]] = []

    def add(self, text: str, part: str, level: int = 0) -> None:
        start = self.blocks.length + (2 if self.blocks.parts else 0)
        before = self.blocks.length
        self.blocks.add(text, level)
        if self.blocks.length != before and (not self.parts or self.parts[-1][1] != part):
            self.parts.append((start, part))


def _docx_content(container: Any, story: _Story, part: str, headings: bool = True) -> None:
    """Paragraphs (Heading/Title styles as headings), tables and text boxes of a body, header or
    footer; a text box follows the paragraph or table it is anchored in, as part `textbox`."""
    for item in container.iter_inner_content():
        if hasattr(item, "rows"):
            story.add("\n".join(_docx_rows(item)), part)
            element = item._tbl
        else:
            element = item._p
            text = item.text  # python-docx's runs and links: no text box text
            if text.strip():
                story.add(text, part, _docx_style_level(item) if headings else 0)
        for box in _text_boxes(element):
            story.add(box, "textbox")


def _transitional(data: bytes) -> bytes:
    """A Strict Open XML package rewritten with transitional namespaces (the same file as far
    as reading text goes); any other package unchanged."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            rels = package.read("_rels/.rels") if "_rels/.rels" in package.namelist() else b""
            if b"purl.oclc.org/ooxml" not in rels:
                return data
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
                for item in package.infolist():
                    content = package.read(item)
                    if item.filename.endswith((".xml", ".rels")):
                        for strict, transitional in _STRICT:
                            content = content.replace(strict, transitional)
                    target.writestr(item, content)
            return out.getvalue()
    except (zipfile.BadZipFile, KeyError):
        return data  # python-docx names what is wrong


def _docx_notes(document: Any) -> Iterator[tuple[str, str]]:
    """(part, text) of each footnote, endnote and comment, from the package's XML parts."""
    from lxml import etree

    for part in document.part.package.iter_parts():
        kind = _DOCX_NOTES.get(str(part.partname).rsplit("/", 1)[-1])
        if kind is None:
            continue
        root = etree.fromstring(part.blob)
        for note in root.iter(f"{_W}{kind[0]}"):
            if note.get(f"{_W}type") in ("separator", "continuationSeparator",
                                         "continuationNotice"):
                continue
            paragraphs = ["".join(t.text or "" for t in p.iter(f"{_W}t"))
                          for p in note.iter(f"{_W}p")]
            text = "\n".join(p for p in paragraphs if p.strip())
            if text.strip():
                yield kind[1], text


def read(data: bytes, source: str, digest: str, options: Options) -> Document:
    """Body paragraphs and tables in order by python-docx (Heading/Title styles as headings,
    tables as rows, a cell's paragraphs and nested tables kept in its row), each followed by
    the text boxes anchored in it, then the headers and footers (each text once), footnotes,
    endnotes and comments: passages of those carry a `part` metadata field. Text the reader
    missed (fields, content controls) is named in a warning."""
    docx = extra("docx", "DOCX")
    story = _Story()
    blocks = story.blocks
    try:
        document = docx.Document(io.BytesIO(_transitional(data)))
        _docx_content(document, story, "body")
        body_end = blocks.length
        parts = story.parts or [(0, "body")]
        seen: set[str] = set()
        for section in document.sections:
            for part, attr in (("header", "header"), ("header", "first_page_header"),
                               ("header", "even_page_header"), ("footer", "footer"),
                               ("footer", "first_page_footer"), ("footer", "even_page_footer")):
                stories = getattr(section, attr)
                if stories.is_linked_to_previous:
                    continue
                sub = _Story()
                _docx_content(stories, sub, part, headings=False)
                if sub.blocks.text and sub.blocks.text not in seen:
                    seen.add(sub.blocks.text)
                    parts.append((blocks.length + (2 if blocks.parts else 0), part))
                    blocks.add(sub.blocks.text)
        for part, text in _docx_notes(document):
            parts.append((blocks.length + (2 if blocks.parts else 0), part))
            blocks.add(text)
        body = document.element.body
        written = sum(len("".join((t.text or "").split())) for t in body.iter(f"{_W}t")
                      if not any(a.tag == _FALLBACK for a in t.iterancestors()))
    except Exception as exc:  # python-docx raises many types for damaged files
        raise ValueError(f"not a readable DOCX ({type(exc).__name__}: {exc})") from exc
    if not blocks.text.strip():
        raise ValueError("the DOCX has no text")
    body_chars = len("".join(blocks.text[:body_end].split()))
    if written > body_chars * 1.02 + 10:
        warnings.warn(f"{source}: {written - body_chars} of {written} characters of the body "
                      "were not read (fields or content controls python-docx "
                      "does not reach)", CorpusWarning, stacklevel=4)
    return Document(source=source, text=blocks.text, encoding="docx", sha256=digest,
                    clean=options.clean, format="docx", headings=tuple(blocks.headings),
                    parts=tuple(parts) if len(parts) > 1 or parts[0][1] != "body" else ())
