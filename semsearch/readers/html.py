"""Web pages (.html, .htm): the main text by trafilatura, title and h1-h6 headings marked."""

from __future__ import annotations

from typing import Any

from semsearch.readers.base import Blocks, Document, Options, extra


def _xml_text(element: Any) -> str:
    """The text of a trafilatura XML element: formatting (`hi`, `ref`) dropped, `lb` a line
    break, nested paragraphs (a table cell's) on lines of their own."""
    parts = [element.text or ""]
    for child in element:
        if child.tag == "lb":
            parts.append("\n")
        elif child.tag in ("p", "item", "list", "head", "quote") or (
                child.tag == "code" and "\n" in "".join(child.itertext())):
            parts.append("\n" + _xml_text(child) + "\n")
        elif child.tag != "graphic":
            parts.append(_xml_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _xml_blocks(element: Any, blocks: Blocks) -> None:
    """trafilatura's XML (headings, paragraphs, lists, tables, code) as plain blocks: headings
    by their h1-h6 level, list items and table rows one a line, a row's cells joined by ` | `
    (a cell's paragraphs by spaces), no Markdown or HTML markup. Text between elements (a
    tail) is a block of its own."""
    if element.tag in ("div", "main", "doc", "body") and (element.text or "").strip():
        blocks.add(element.text)
    for child in element:
        _xml_block(child, blocks)
        if (child.tail or "").strip():
            blocks.add(child.tail)


def _xml_block(child: Any, blocks: Blocks) -> None:
    """One element of trafilatura's XML as blocks (see `_xml_blocks`)."""
    tag = child.tag
    if tag == "head":
        rend = child.get("rend") or "h2"
        level = int(rend[1]) if rend[:1] == "h" and rend[1:2].isdigit() else 2
        blocks.add(_xml_text(child), level)
    elif tag == "list":
        blocks.add("\n".join(" ".join(_xml_text(item).split())
                             for item in child.iter("item")))
    elif tag == "table":
        rows = []
        for row in child.iter("row"):
            cells = [" ".join(_xml_text(cell).split()) for cell in row.findall("cell")]
            if any(cells):
                rows.append(" | ".join(cells))
        blocks.add("\n".join(rows))
    elif tag in ("p", "quote", "code"):
        blocks.add(_xml_text(child))
    elif tag in ("div", "main", "doc", "body"):
        _xml_blocks(child, blocks)
    elif tag not in ("graphic", "comments"):
        blocks.add(_xml_text(child))


def read(html: str, source: str, encoding: str, digest: str,
                   options: Options) -> Document:
    """The page's main text by trafilatura (its XML output, read as plain blocks: no Markdown
    emphasis, escapes, fences or table rules, no HTML tags), title and h1-h6 headings marked as
    headings; scripts, styles, navigation and footers gone."""
    trafilatura = extra("trafilatura", "HTML")
    from lxml import etree

    xml = trafilatura.extract(html, output_format="xml", include_formatting=False,
                              include_tables=True, include_comments=False)
    blocks = Blocks()
    if xml:
        _xml_blocks(etree.fromstring(xml.encode("utf-8")), blocks)
    meta = trafilatura.extract_metadata(html)
    title = " ".join((meta.title or "").split()) if meta is not None else ""
    if title and not blocks.text.startswith(title):
        titled = Blocks()
        titled.add(title, 1)
        if xml:
            _xml_blocks(etree.fromstring(xml.encode("utf-8")), titled)
        blocks = titled
    if not blocks.text.strip():
        raise ValueError("no text found in the HTML page")
    return Document(source=source, text=blocks.text, encoding=encoding, sha256=digest,
                    clean=options.clean, format="html", headings=tuple(blocks.headings))
