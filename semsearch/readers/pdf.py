"""PDF files: the text layer of each page by pypdf, passages carrying their pages."""

from __future__ import annotations

import io
import itertools
import logging
import math
import re
import statistics
import threading
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from semsearch.readers.base import CorpusWarning, Document, Options, extra


class _Collect(logging.Handler):
    """pypdf's log records of this thread (other threads may be reading other files)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextmanager
def _pypdf_messages(source: str) -> Iterator[None]:
    """pypdf's own messages about a damaged file it reads anyway (`invalid pdf header`,
    `incorrect startxref pointer`) as one CorpusWarning naming the file: with no logging
    configured, Python printed them over the progress bar. Records still reach the
    application's own log handlers."""
    handler = _Collect()
    logger = logging.getLogger("pypdf")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        if handler.messages:
            shown = "; ".join(dict.fromkeys(handler.messages))
            warnings.warn(f"{source}: a damaged PDF, read anyway (pypdf: {shown})",
                          CorpusWarning, stacklevel=6)


def read(data: bytes, source: str, digest: str, options: Options) -> Document:
    """The text of each page by pypdf, its lines joined into paragraphs as a reader reads them
    (see `paragraphs`), paragraphs separated by a blank line; passages carry the pages they
    start and end on. Encrypted files that open with an empty password are read (AES needs
    cryptography, in the formats extra); password-protected ones are refused."""
    pypdf = extra("pypdf", "PDF")
    with _pypdf_messages(source):
        pages = _pages(pypdf, data)
    if not any(line.text.strip() for page in pages for line in page):
        raise ValueError("the PDF has no text layer (scanned? run OCR first)")
    text, starts = paragraphs(pages)
    return Document(source=source, text=text, encoding="pdf", sha256=digest,
                    clean=options.clean, format="pdf", page_starts=tuple(starts))


def _pages(pypdf: Any, data: bytes) -> list[list[Line]]:
    """Each page's lines with where they sit; ValueError naming why a file cannot be read."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("the PDF is encrypted with a password (give a decrypted copy)")
        return [page_lines(page) for page in reader.pages]
    except ValueError:
        raise
    except pypdf.errors.DependencyError as exc:  # AES without the cryptography package
        raise ValueError("the PDF is encrypted (AES); reading it needs the cryptography "
                         "package: pip install 'semsearch[formats]'") from exc
    except Exception as exc:  # pypdf raises many types for damaged files
        raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc


@dataclass
class Line:
    """A line of pypdf's text with where it sits: `x`, `y` of its first text (PDF points, y
    up), `right` its estimated end, `size` its font size (None: no position known)."""

    text: str
    x: float | None = None
    y: float | None = None
    right: float = 0.0
    size: float = 0.0


def page_lines(page: Any) -> list[Line]:
    """pypdf's text of `page` (`extract_text`, unchanged) as lines, each with the position
    its text fragments had (pypdf's visitor sees every fragment of its output, in order)."""
    lines = [Line("")]

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        for i, part in enumerate(text.split("\n")):
            if i:
                lines.append(Line(""))
            line = lines[-1]
            if part.strip():
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                scale = math.sqrt(abs(tm[0] * tm[3] - tm[1] * tm[2])
                                  * abs(cm[0] * cm[3] - cm[1] * cm[2]))
                em = (size or 1.0) * (scale or 1.0)
                if line.x is None:
                    line.x, line.y = x, y
                line.size = max(line.size, em)
                line.right = max(line.right, x + em * sum(
                    1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.55 for ch in part))
            line.text += part

    text = page.extract_text(visitor_text=visit) or ""
    if "\n".join(line.text for line in lines) != text:  # positions lost: lines as they are
        return [Line(t) for t in text.split("\n")]
    return lines


# A paragraph ends where the next line sits clearly lower than the line spacing, starts
# indented from its column's left edge, or where a line stops well short of its column (and
# ends a sentence, fills little of it, or the next line is indented, not under the text of a
# numbered item: `[8] 哈佛大学…` set in under `哈`).
GAP = 1.5  # × the page's usual line spacing
INDENT = 0.8  # × the font size
SHORT = 2.5  # × the font size left empty at the end of a line


def _columns(lines: list[Line]) -> dict[int, tuple[float, float]]:
    """(left edge, right edge) of the column of each positioned line: line starts grouped
    where they lie within a few characters of one another; the right edge is where most of
    its lines end (line ends are estimated, Latin letters at 0.55 em)."""
    placed = sorted((line.x, i) for i, line in enumerate(lines) if line.x is not None)
    if not placed:
        return {}
    em = statistics.median(lines[i].size for _, i in placed) or 10.0
    groups: list[list[int]] = [[placed[0][1]]]
    for (x0, _), (x1, i) in itertools.pairwise(placed):
        if x1 - x0 > 6 * em:
            groups.append([])
        groups[-1].append(i)
    edges = {}
    for group in groups:
        left = min(lines[i].x or 0.0 for i in group)
        rights = sorted(lines[i].right for i in group)
        right = rights[(len(rights) * 3) // 4]  # most lines fill the column; some run over
        edges.update({i: (left, right) for i in group})
    return edges


def _breaks(lines: list[Line]) -> list[str]:
    """How each line joins the one before it: "\n\n" a new paragraph, "\n" a line of its own
    in the same paragraph (another fragment on the same baseline), "" the same paragraph."""
    columns = _columns(lines)
    steps = [a.y - b.y for a, b in itertools.pairwise(lines)
             if a.y is not None and b.y is not None and 0 < a.y - b.y < 3 * max(a.size, 1.0)]
    pitch = statistics.median(steps) if steps else None
    noise = _size_noise(lines)
    joins = [""]
    for i in range(1, len(lines)):
        a, b = lines[i - 1], lines[i]
        if not a.text.strip() or not b.text.strip() or a.y is None or b.y is None:
            joins.append("\n\n")  # a blank line pypdf gave, or no position known
            continue
        em = max(a.size, b.size, 1.0)
        dy = a.y - b.y
        a_left, a_right = columns.get(i - 1, (a.x or 0.0, a.right))
        indented = (b.x or 0.0) - columns.get(i, (b.x or 0.0, 0.0))[0] > INDENT * em
        # set in under the text of a numbered item (`[8] 哈佛大学…`), not under its number
        under_item = bool(ITEM.match(a.text)) and (b.x or 0.0) - (a.x or 0.0) > INDENT * em
        if abs(dy) < 0.3 * em:
            joins.append("\n")
        elif ((pitch is not None and dy > GAP * pitch)
              or (_starts(lines, columns, i, em, joins[-1] == "")
                  and not _item_goes_on(lines, columns, i, em, pitch))
              or abs(a.size - b.size) > max(0.15 * em, 3 * noise)
              or (a_right - a.right > SHORT * em
                  and (a.text.rstrip()[-1:] in _ENDS
                       or a.right - (a.x or 0.0) < 0.6 * (a_right - a_left)
                       or (indented and not under_item)))):
            joins.append("\n\n")
        else:
            joins.append("")
    return joins


def _item_goes_on(lines: list[Line], columns: dict[int, tuple[float, float]], i: int,
                  em: float, pitch: float | None) -> bool:
    """Whether line `i`, set in under a full line that ends no sentence and followed by a
    paragraph gap (or nothing), is the last line of a two-line hanging indent (a description
    list's item: texlive-zh-cn.pdf's `就是你首先该找的｜地方`) rather than a one-line
    paragraph's indented first line: a paragraph rarely ends mid-sentence at the column's
    edge. Only for body text (a column 15 characters wide or more, the full line at its edge,
    one font size), not the labels of a diagram (GeoBase_NHNC1_Data_Model_UML_EN.pdf)."""
    a, b = lines[i - 1], lines[i]
    if a.x is None or b.x is None or pitch is None or i - 1 not in columns:
        return False
    left, right = columns[i - 1]
    body = right - left >= 15 * em and a.x - left < 0.5 * em and abs(a.size - b.size) < 0.15 * em
    full = right - a.right <= SHORT * em and a.text.rstrip()[-1:] not in _ENDS
    c = lines[i + 1] if i + 1 < len(lines) else None
    gap_after = (c is None or not c.text.strip() or c.y is None or b.y is None
                 or b.y - c.y > GAP * pitch)
    return body and full and b.x - a.x > INDENT * em and gap_after


def _size_noise(lines: list[Line]) -> float:
    """The usual change of font size from one line to the next on a page: 0 where its body
    lines share a size (typeset), about 3 pt in an OCR'd scan, whose engine sizes each line's
    text to its box (13.7 to 19.1 pt within one paragraph of pdfplumber's pr-136-example.pdf),
    so that only a change well beyond it marks a heading."""
    changes = [abs(a.size - b.size) for a, b in itertools.pairwise(lines)
               if a.y is not None and b.y is not None and a.text.strip() and b.text.strip()
               and 0 < a.y - b.y < 3 * max(a.size, 1.0)]
    return statistics.median(changes) if changes else 0.0


def _starts(lines: list[Line], columns: dict[int, tuple[float, float]], i: int,
            em: float, joined: bool = True) -> bool:
    """Whether line `i` starts a paragraph by its indent, within its column: set in from the
    lines around it (a first-line indent, unless the line before is a numbered or bulleted
    item, whose next lines may be set in under its text), or set out from a run of lines set
    in (a hanging indent, where the lines after a paragraph's first are the ones set in: so
    the line after it is set in too, else it is the second line of a paragraph under an
    indented heading, and the run set in is lines of one paragraph, `joined`: the line before
    continues its own)."""

    def inset(j: int) -> float | None:
        if 0 <= j < len(lines) and lines[j].x is not None and j in columns:
            return (lines[j].x or 0.0) - columns[j][0]
        return None

    here, before, after, earlier = inset(i), inset(i - 1), inset(i + 1), inset(i - 2)
    if here is None or before is None:
        return False
    step = INDENT * em
    if here - before > step:  # set in: a first line unless the lines go on set in
        if ITEM.match(lines[i - 1].text):
            return False  # set in under a numbered or bulleted item's text: it goes on
        if after is not None:
            return here - after > step
        return earlier is None or abs(earlier - here) > step
    return (joined and before - here > step and earlier is not None
            and abs(earlier - before) <= step and (after is None or after - here > step))


# an item's number or bullet: "1.", "2)", "(3)", "一、", "（四）", "a.", "[5]" (a reference), "•"
ITEM = re.compile(r"\s*(?:[(（]?(?:\d{1,3}|[一二三四五六七八九十]{1,3}|[A-Za-z])[.．)）、]"
                   r"|[(（](?:\d{1,3}|[一二三四五六七八九十]{1,3})[)）]|\[\d{1,3}\]|[•●○■□▪◦◆◇►▶])")
_ENDS = frozenset("。！？!?；;….”’」』）)】》\"'")
_HYPHEN_TAIL = re.compile(r"([^\W\d_]{2,})-$")
_HEAD_WORD = re.compile(r"^([^\W\d_]+)")


def _joiner(left: str, right: str) -> str:
    """What goes between two lines of one paragraph: nothing between CJK (or after a hyphen,
    dropped when the joined word is a dictionary word, as clean does), else a space."""
    left, right = left.rstrip(), right.lstrip()
    if not left or not right:
        return ""
    if left.endswith("-"):
        return "-"
    wide = unicodedata.east_asian_width(left[-1]) in "WF" or unicodedata.east_asian_width(
        right[0]) in "WF"
    return "" if wide else " "


def paragraphs(pages: list[list[Line]]) -> tuple[str, list[int]]:
    """The document's text, each paragraph's lines joined (`_joiner`) and paragraphs apart by
    a blank line; a paragraph that runs on at the top of the next page (the last line full,
    the first not indented) continues there. Returns the text and where each page after the
    first starts in it."""
    from semsearch.clean import is_word

    text, starts = "", []
    for number, lines in enumerate(pages):
        joins = _breaks(lines)
        first = True
        for line, join in zip(lines, joins, strict=True):
            piece = line.text.strip()
            if not piece:
                continue
            if first and number:
                gap = "\n\n"
                if text and _runs_on(pages[number - 1], lines):
                    gap = _joiner(text, piece)
                text = text.rstrip() + gap
                starts.append(len(text))
                first = False
                text += piece
                continue
            first = False
            if not text:
                text = piece
            elif join:
                text = text.rstrip() + ("\n\n" if "\n\n" in join else "\n") + piece
            else:
                glue = _joiner(text, piece)
                if glue == "-":
                    tail, head = _HYPHEN_TAIL.search(text), _HEAD_WORD.match(piece)
                    glue = ""
                    if (tail and head and piece[:1].islower()
                            and is_word(tail.group(1) + head.group(1))):
                        text = text[:-1]
                text = text.rstrip() + glue + piece
        if first and number:
            starts.append(len(text.rstrip()) + 2)
            text = text.rstrip() + "\n\n"
    return text.strip(), starts


def _runs_on(before: list[Line], after: list[Line]) -> bool:
    """Whether the last paragraph of a page continues on the next one: its last line fills
    its column (of 3 lines or more) and the next page's first line is not indented."""
    last = next((line for line in reversed(before) if line.text.strip()), None)
    first = next((i for i, line in enumerate(after) if line.text.strip()), None)
    if last is None or first is None or last.x is None or after[first].x is None:
        return False
    em = max(last.size, after[first].size, 1.0)
    columns = _columns(before)
    edges = columns.get(before.index(last))
    if edges is None or sum(1 for e in columns.values() if e == edges) < 3:
        return False  # too few lines to tell a full line from a short one
    right = edges[1]
    new_left = _columns(after).get(first, (after[first].x or 0.0, 0.0))[0]
    return (right - last.right <= SHORT * em
            and (after[first].x or 0.0) - new_left <= INDENT * em)
