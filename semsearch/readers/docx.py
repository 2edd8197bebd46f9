"""Word files (.docx): the body's paragraphs and tables by python-docx, then headers, footers,
footnotes, endnotes and comments, each part named."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from typing import Any

from semsearch.readers.base import Blocks, CorpusWarning, Document, Options, extra

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
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
    """A table as rows of cells joined by ` | `; a merged cell counts once."""
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


def _docx_content(container: Any, blocks: Blocks, headings: bool = True) -> None:
    """Paragraphs (Heading/Title styles as headings) and tables of a body, header or footer."""
    for item in container.iter_inner_content():
        if hasattr(item, "rows"):
            blocks.add("\n".join(_docx_rows(item)))
        elif item.text.strip():
            blocks.add(item.text, _docx_style_level(item) if headings else 0)


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
    tables as rows, a cell's paragraphs and nested tables kept in its row), then the headers
    and footers (each text once), footnotes, endnotes and comments: passages of those carry a
    `part` metadata field. Text the reader missed (text boxes, fields) is named in a warning."""
    docx = extra("docx", "DOCX")
    blocks = Blocks()
    parts: list[tuple[int, str]] = [(0, "body")]
    try:
        document = docx.Document(io.BytesIO(data))
        _docx_content(document, blocks)
        seen: set[str] = set()
        for section in document.sections:
            for part, attr in (("header", "header"), ("header", "first_page_header"),
                               ("header", "even_page_header"), ("footer", "footer"),
                               ("footer", "first_page_footer"), ("footer", "even_page_footer")):
                story = getattr(section, attr)
                if story.is_linked_to_previous:
                    continue
                sub = Blocks()
                _docx_content(story, sub, headings=False)
                if sub.text and sub.text not in seen:
                    seen.add(sub.text)
                    parts.append((blocks.length + (2 if blocks.parts else 0), part))
                    blocks.add(sub.text)
        for part, text in _docx_notes(document):
            parts.append((blocks.length + (2 if blocks.parts else 0), part))
            blocks.add(text)
        body = document.element.body
        fallback = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
        written = sum(len("".join((t.text or "").split())) for t in body.iter(f"{_W}t")
                      if not any(a.tag == fallback for a in t.iterancestors()))
    except Exception as exc:  # python-docx raises many types for damaged files
        raise ValueError(f"not a readable DOCX ({type(exc).__name__}: {exc})") from exc
    if not blocks.text.strip():
        raise ValueError("the DOCX has no text")
    body_chars = len("".join(blocks.text[: parts[1][0] if len(parts) > 1 else None].split()))
    if written > body_chars * 1.02 + 10:
        warnings.warn(f"{source}: {written - body_chars} of {written} characters of the body "
                      "were not read (text boxes, fields or content controls python-docx "
                      "does not reach)", CorpusWarning, stacklevel=4)
    return Document(source=source, text=blocks.text, encoding="docx", sha256=digest,
                    clean=options.clean, format="docx", headings=tuple(blocks.headings),
                    parts=tuple(parts) if len(parts) > 1 else ())
