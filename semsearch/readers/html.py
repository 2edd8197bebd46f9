"""Web pages (.html, .htm): the main text by trafilatura, title and h1-h6 headings marked, code
blocks whole, and the page's own summary first when the main text lacks it."""

from __future__ import annotations

import re
from typing import Any

from semsearch.readers.base import Blocks, Document, Options, extra

# trafilatura's XML route ends a <pre>/<code> block at its first <br> (`#include <emscripten.h>`
# kept, the lines after it lost; its text output keeps them): inside code, a <br> becomes the
# newline it shows as before the page is extracted. Text outside code is untouched.
_CODE = re.compile(r"<(pre|code)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
# Elements that hold an encyclopedia entry's lead (Baidu Baike's `lemma-summary`,
# `lemmaSummary_…`, `J-summary`): extractors pick the article body beside them and drop it.
_SUMMARY = re.compile(r"(?:^|[\s_-])(?:lemma-?summary|J-summary)", re.IGNORECASE)
_PUNCT = re.compile(r"[\W_]+")
_SENTENCES = re.compile(r"[^。！？!?；;.…]+[。！？!?；;.…]*")
_KEYWORD_SEPARATORS = re.compile(r"[,，、|/;；]")


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


def read(html: str, source: str, encoding: str, digest: str, options: Options) -> Document:
    """The page's main text by trafilatura (its XML output, read as plain blocks: no Markdown
    emphasis, escapes, fences or table rules, no HTML tags), title and h1-h6 headings marked as
    headings; scripts, styles, navigation and footers gone."""
    trafilatura = extra("trafilatura", "HTML")
    from lxml import etree

    html = _CODE.sub(lambda m: _BR.sub("\n", m.group(0)), html)
    xml = trafilatura.extract(html, output_format="xml", include_formatting=False,
                              include_tables=True, include_comments=False)
    blocks = Blocks()
    if xml:
        _xml_blocks(etree.fromstring(xml.encode("utf-8")), blocks)
    meta = trafilatura.extract_metadata(html)
    title = " ".join((meta.title or "").split()) if meta is not None else ""
    description = _description(html, meta, blocks.text)
    parts: tuple[tuple[int, str], ...] = ()
    if (title and not blocks.text.startswith(title)) or description:
        titled = Blocks()
        if title and not blocks.text.startswith(title):
            titled.add(title, 1)
        if description:
            start = titled.length + (2 if titled.parts else 0)
            titled.add(description)
            parts = ((start, "description"), (titled.length + 2, "body"))
        if xml:
            _xml_blocks(etree.fromstring(xml.encode("utf-8")), titled)
        blocks = titled
    if not blocks.text.strip():
        raise ValueError("no text found in the HTML page")
    return Document(source=source, text=blocks.text, encoding=encoding, sha256=digest,
                    clean=options.clean, format="html", headings=tuple(blocks.headings),
                    parts=parts)


def _squeeze(text: str) -> str:
    return _PUNCT.sub("", text).lower()


def _is_prose(text: str) -> bool:
    """A sentence or more, not a list of keywords (`新闻,体育,娱乐`) nor a bare phrase."""
    squeezed = _squeeze(text)
    items = [item for item in _KEYWORD_SEPARATORS.split(text) if item.strip()]
    return len(squeezed) >= 30 and len(squeezed) / max(1, len(items)) >= 8


def _lacks(text: str, description: str) -> bool:
    """Whether most of `description` (by characters, sentence by sentence; a trailing `…` or
    `...` of a cut summary ignored) is missing from `text`."""
    have = _squeeze(text)
    sentences = [_squeeze(s) for s in _SENTENCES.findall(description.rstrip(" .…"))]
    total = sum(len(s) for s in sentences)
    found = sum(len(s) for s in sentences if s and s in have)
    return total > 0 and found < total / 2


def _description(html: str, meta: Any, text: str) -> str:
    """The page's summary when the main text lacks it: an encyclopedia lead (`lemma-summary`)
    when the page has one, else its `<meta name="description">` / `og:description`; only prose
    (not keywords) most of which the main text does not already say."""
    candidates = [_summary_element(html)]
    if meta is not None and meta.description:
        candidates.append(" ".join(meta.description.split()))
    for candidate in candidates:
        if candidate and _is_prose(candidate) and _lacks(text, candidate):
            return candidate
    return ""


def _summary_element(html: str) -> str:
    """The text of the first element whose class marks an encyclopedia lead, "" when none."""
    if "summary" not in html.lower():
        return ""
    from lxml import html as lxml_html

    try:
        root = lxml_html.document_fromstring(html)
    except Exception:  # lxml refuses some pages trafilatura reads; then there is no lead
        return ""
    for element in root.iter("div", "section"):
        if _SUMMARY.search(element.get("class") or ""):
            return " ".join(" ".join(element.itertext()).split())
    return ""
