"""Find documents on disk and turn them into text, whatever their format and encoding.

A `Document` is one unit of text with the name it is indexed under (`source`):
- a text file (.txt, .md), decoded (charset-normalizer; GB family read as GB18030);
- a web page (.html, .htm): its main text, title and headings, by trafilatura (plain text,
  headings marked by their h1-h6 structure);
- a PDF (pypdf): its text page by page, each passage carrying its `page` (the first),
  `page_start` and `page_end`;
- a Word file (.docx, python-docx): paragraphs, headings by style, tables as rows, then headers,
  footers, footnotes and comments (passages carry their `part`);
- one record of a .jsonl, .csv or .json (array of objects) file: named `file#id` (the `id`
  field, `--id-field`, else the line/row number), its text field (`text` or `--text-field`),
  the other fields kept as metadata.

Sources are named by their path relative to the root they were indexed from (`root`), so the
same file has the same name however its path was typed; a file outside the root is named by its
absolute path. Every file met is either loaded or reported in `Corpus.skipped` with the reason
(and a `CorpusWarning` naming it): nothing is left out silently.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import stat
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch.errors import CorpusError, MissingDependencyError

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})
RECORD_SUFFIXES = frozenset({".jsonl", ".ndjson", ".csv", ".json"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
SUFFIXES = TEXT_SUFFIXES | RECORD_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
DEFAULT_TEXT_FIELD = "text"
ID_FIELDS = ("id", "_id")
# Formats whose content is known not to be web chrome: cleaned with mode "none" under "auto".
_PLAIN_FORMATS = frozenset({"markdown", "html", "pdf", "docx", "record"})

# Han-script encodings that charset-normalizer may report for Chinese text; GB18030 decodes all of
# them (it is a superset of GB2312 and GBK), so we decode with it to lose nothing.
_GB_FAMILY = frozenset({"gb2312", "gbk", "gb18030", "hz", "cp936"})
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class CorpusWarning(UserWarning):
    """A file was skipped (binary, empty, undecodable, unreadable); the message names it."""


@dataclass(frozen=True)
class Document:
    """One document: `text` is a text file's content unchanged but for decoding, or the text
    extracted from a page, PDF, Word file or record; passage offsets point into it."""

    source: str
    text: str
    encoding: str
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)
    # How to clean it: "web" (drop site chrome), "none" (keep every line), "auto" (by format,
    # and for plain text by whether it looks like a saved web page)
    clean: str = "auto"
    format: str = "text"  # text | markdown | html | pdf | docx | record
    # start offset in `text` of each page after the first (PDF): passages carry their pages
    page_starts: tuple[int, ...] = ()
    # (offset of the line, level) of each heading the file's structure marks (HTML, DOCX)
    headings: tuple[tuple[int, int], ...] = ()
    # (offset, name) where each part of a Word file starts (body, header, footer, footnote,
    # comment, ...): passages carry their part in the `part` metadata field
    parts: tuple[tuple[int, str], ...] = ()

    @property
    def file(self) -> str:
        """The name of the file this document came from (a record's source without `#id`)."""
        return self.source.split("#", 1)[0] if self.format == "record" else self.source

    @property
    def structure(self) -> str:
        """Where its headings come from (see clean.STRUCTURES): Markdown marks, the file's
        structure (HTML, DOCX), none (PDF: its text layer has no headings), or plain text."""
        return {"markdown": "markdown", "html": "given", "docx": "given",
                "pdf": "none"}.get(self.format, "plain")

    def clean_mode(self) -> str:
        """The cleaning mode asked for, with `auto` settled by format (text is guessed later)."""
        if self.clean == "auto" and self.format in _PLAIN_FORMATS:
            return "none"
        return self.clean


@dataclass(frozen=True)
class Skipped:
    """A file that was met but not indexed, and why."""

    path: str
    reason: str


@dataclass
class Corpus:
    """What `scan` found: the documents, the files read, the files skipped, and the root the
    sources are named from."""

    documents: list[Document]
    root: Path | None
    files: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode `data`, returning (text, encoding); raise ValueError when it is not text.

    Order: a BOM wins; then strict UTF-8 (the common case, and cheap); then charset-normalizer.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    encoding = best.encoding.lower().replace("-", "") if best is not None else ""
    if best is not None and not _looks_binary(str(best)):
        if encoding.replace("_", "") in _GB_FAMILY:
            return data.decode("gb18030"), "gb18030"
        return str(best), best.encoding
    # charset-normalizer abstains on short inputs; GB18030 is the likeliest legacy encoding for
    # the Chinese text we are built for, and a strict decode that yields mostly Han is convincing.
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ValueError("not decodable as text (binary or unknown encoding)") from exc
    if _han_ratio(text) < 0.3 or _looks_binary(text):
        raise ValueError("not decodable as text (binary or unknown encoding)")
    return text, "gb18030"


def _looks_binary(text: str) -> bool:
    """Text with NULs or many control characters is a binary file decoded by accident."""
    if "\x00" in text:
        return True
    sample = text[:4096]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    return controls > max(2, len(sample) // 100)


def _han_ratio(text: str) -> float:
    letters = [ch for ch in text if not ch.isspace()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if "\u4e00" <= ch <= "\u9fff") / len(letters)


def common_root(paths: Iterable[str | os.PathLike[str]]) -> Path | None:
    """The directory sources are named from: a directory given, or a file's folder; for several
    paths their deepest common folder, or None when that is only the filesystem root."""
    folders = []
    for raw in paths:
        path = Path(os.path.abspath(raw))
        folders.append(path if path.is_dir() else path.parent)
    if not folders:
        return None
    root = Path(os.path.commonpath([str(f) for f in folders]))
    return None if root == Path(root.anchor) and len(folders) > 1 else root


def source_name(path: Path, root: Path | None) -> str:
    """`path` relative to `root` (POSIX separators), or absolute when it is not under it."""
    absolute = Path(os.path.abspath(path))
    if root is not None:
        try:
            return absolute.relative_to(root).as_posix()
        except ValueError:
            pass
    return absolute.as_posix()


def iter_files(paths: Iterable[str | os.PathLike[str]], root: Path | None = None, *,
               follow_links: bool = False,
               skipped: list[Skipped] | None = None) -> Iterator[tuple[Path, str]]:
    """Yield (file, source name) for every supported file under `paths`, in a stable order.

    Names are relative to `root` (default: `common_root(paths)`). A path that does not exist is
    an error; every file met that is not yielded — unsupported format, hidden, a link leading
    outside its folder — is appended to `skipped` with the reason and warned about.
    """
    paths = list(paths)
    if root is None:
        root = common_root(paths)
    report = skipped if skipped is not None else []

    def skip(path: Path | str, reason: str) -> None:
        report.append(Skipped(str(path), reason))
        warnings.warn(f"skipped {path}: {reason}", CorpusWarning, stacklevel=3)

    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise CorpusError(f"path does not exist: {raw}")
        special = _special(path)
        if special:
            skip(path, special)
            continue
        if path.is_file():
            if _format(path) is None:
                skip(path, f"unsupported format {path.suffix or '(no suffix)'} (supported: "
                     f"{', '.join(sorted(SUFFIXES))})")
                continue
            yield path, source_name(path, root)
            continue
        top = Path(os.path.realpath(path))
        found: list[tuple[Path, str]] = []
        visited: set[str] = set()
        for folder, dirs, files in os.walk(path, followlinks=follow_links):
            real = os.path.realpath(folder)
            if real in visited:  # a link loop (only with follow_links)
                dirs[:] = []
                continue
            visited.add(real)
            keep = []
            for name in sorted(dirs):
                sub = Path(folder) / name
                if name.startswith("."):
                    skip(f"{sub}{os.sep}", "hidden folder (names starting with '.' are not "
                         "indexed)")
                elif sub.is_symlink() and not follow_links:
                    skip(f"{sub}{os.sep}", "a link to a folder (use --follow-links to index "
                         "it)")
                else:
                    keep.append(name)
            dirs[:] = keep
            for name in sorted(files):
                file = Path(folder) / name
                special = _special(file)
                if name.startswith("."):
                    skip(file, "hidden file (names starting with '.' are not indexed)")
                elif special:
                    skip(file, special)
                elif file.is_symlink() and not follow_links and not _inside(file, top):
                    skip(file, "a link to a file outside the folder (use --follow-links to "
                         "index it)")
                elif _format(file) is None:
                    skip(file, f"unsupported format {file.suffix or '(no suffix)'}")
                else:
                    found.append((file, source_name(file, root)))
        yield from sorted(found, key=lambda item: item[1])


def file_of(source: str) -> str:
    """The file part of a source name: `data.jsonl#7` → `data.jsonl`."""
    head, sep, _ = source.partition("#")
    return head if sep and Path(head).suffix.lower() in RECORD_SUFFIXES else source


def in_scope(source: str, scopes: Iterable[str]) -> bool:
    """Whether `source` lies in one of `scopes` (source names of files or folders)."""
    name = file_of(source)
    return any((scope == "." and not name.startswith("/")) or name == scope
               or name.startswith(scope.rstrip("/") + "/") for scope in scopes)


def _special(path: Path) -> str:
    """Why `path` is not a file that can be read ("" for a regular file or a folder): a FIFO
    blocks `open` until a writer comes (an indexer waited forever), a device can be endless."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""  # a dangling link or a vanished file: reported when it is read
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return ""
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
    return f"{kind}, not a regular file: never opened"


def _read_regular(path: Path) -> bytes:
    """The bytes of `path`, opened without blocking and refused unless it is a regular file
    (it may have been replaced by a FIFO since it was listed)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file (a FIFO, socket or device): never read")
        return handle.read()


def _inside(link: Path, top: Path) -> bool:
    target = Path(os.path.realpath(link))
    return target == top or top in target.parents


def _format(path: Path) -> str | None:
    """The format a file is read as, from its suffix (None: not supported)."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return "markdown"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in RECORD_SUFFIXES:
        return "record"
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in (".pdf", ".docx"):
        return suffix[1:]
    return None


@dataclass(frozen=True)
class Options:
    """How to read files: cleaning mode and the record fields that hold text and ids."""

    clean: str = "auto"
    text_field: str | None = None
    id_field: str | None = None

    def __post_init__(self) -> None:
        from semsearch.clean import CLEAN_MODES

        if self.clean not in CLEAN_MODES:
            raise CorpusError(f"unknown cleaning mode {self.clean!r}; choose one of "
                              f"{', '.join(CLEAN_MODES)}")


def load_file(path: Path, source: str, options: Options | None = None) -> list[Document]:
    """Read one file into documents; raise ValueError (caught by `scan`) when it is unusable."""
    options = options or Options()
    try:
        data = _read_regular(path)
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise ValueError("empty file")
    digest = hashlib.sha256(data).hexdigest()
    kind = _sniff(data) or _format(path) or "text"
    if kind == "pdf":
        return [_pdf_document(data, source, digest, options)]
    if kind == "docx":
        return [_docx_document(data, source, digest, options)]
    if kind == "rtf":
        raise ValueError("RTF is not supported; save it as .docx or .txt")
    text, encoding = decode_bytes(data)
    if kind == "html":
        return [_html_document(text, source, encoding, digest, options)]
    if kind == "record":
        return list(_records(text, path, source, encoding, options))
    return [Document(source=source, text=text, encoding=encoding, sha256=digest,
                     clean=options.clean, format=kind)]


def _sniff(data: bytes) -> str | None:
    """Formats recognised by content, whatever the suffix says (a page saved as .txt)."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"%pdf-"):
        return "pdf"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(b"pk\x03\x04") and b"word/" in data[:4096]:
        return "docx"
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


def _extra(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"reading {what} ({module.split('.')[0]})",
                                     "formats") from exc


class _Blocks:
    """Text built block by block (blank lines between), remembering where headings start."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.headings: list[tuple[int, int]] = []

    def add(self, text: str, level: int = 0) -> None:
        lines = [" ".join(line.split()) for line in text.splitlines()]
        text = "\n".join(line for line in lines if line)
        if not text:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        if level:
            text = " ".join(text.split())
            self.headings.append((self.length, level))
        self.parts.append(text)
        self.length += len(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


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


def _xml_blocks(element: Any, blocks: _Blocks) -> None:
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


def _xml_block(child: Any, blocks: _Blocks) -> None:
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


def _html_document(html: str, source: str, encoding: str, digest: str,
                   options: Options) -> Document:
    """The page's main text by trafilatura (its XML output, read as plain blocks: no Markdown
    emphasis, escapes, fences or table rules, no HTML tags), title and h1-h6 headings marked as
    headings; scripts, styles, navigation and footers gone."""
    trafilatura = _extra("trafilatura", "HTML")
    from lxml import etree

    xml = trafilatura.extract(html, output_format="xml", include_formatting=False,
                              include_tables=True, include_comments=False)
    blocks = _Blocks()
    if xml:
        _xml_blocks(etree.fromstring(xml.encode("utf-8")), blocks)
    meta = trafilatura.extract_metadata(html)
    title = " ".join((meta.title or "").split()) if meta is not None else ""
    if title and not blocks.text.startswith(title):
        titled = _Blocks()
        titled.add(title, 1)
        if xml:
            _xml_blocks(etree.fromstring(xml.encode("utf-8")), titled)
        blocks = titled
    if not blocks.text.strip():
        raise ValueError("no text found in the HTML page")
    return Document(source=source, text=blocks.text, encoding=encoding, sha256=digest,
                    clean=options.clean, format="html", headings=tuple(blocks.headings))


def _pdf_document(data: bytes, source: str, digest: str, options: Options) -> Document:
    """The text of each page by pypdf, pages separated by a blank line (passages carry the
    pages they start and end on). Encrypted files that open with an empty password are read
    (AES needs cryptography, in the formats extra); password-protected ones are refused."""
    pypdf = _extra("pypdf", "PDF")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("the PDF is encrypted with a password (give a decrypted copy)")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except ValueError:
        raise
    except pypdf.errors.DependencyError as exc:  # AES without the cryptography package
        raise ValueError("the PDF is encrypted (AES); reading it needs the cryptography "
                         "package: pip install 'semsearch[formats]'") from exc
    except Exception as exc:  # pypdf raises many types for damaged files
        raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not any(pages):
        raise ValueError("the PDF has no text layer (scanned? run OCR first)")
    text, starts = "", []
    for number, page in enumerate(pages):
        if number:
            text += "\n\n"
            starts.append(len(text))
        text += page
    return Document(source=source, text=text, encoding="pdf", sha256=digest,
                    clean=options.clean, format="pdf", page_starts=tuple(starts))


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


def _docx_content(container: Any, blocks: _Blocks, headings: bool = True) -> None:
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


def _docx_document(data: bytes, source: str, digest: str, options: Options) -> Document:
    """Body paragraphs and tables in order by python-docx (Heading/Title styles as headings,
    tables as rows, a cell's paragraphs and nested tables kept in its row), then the headers
    and footers (each text once), footnotes, endnotes and comments: passages of those carry a
    `part` metadata field. Text the reader missed (text boxes, fields) is named in a warning."""
    docx = _extra("docx", "DOCX")
    blocks = _Blocks()
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
                sub = _Blocks()
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


def _records(text: str, path: Path, source: str, encoding: str,
             options: Options) -> Iterator[Document]:
    """One document per record of a JSONL, CSV or JSON-array file (see the module doc)."""
    suffix = path.suffix.lower()
    rows: Iterable[tuple[int, Any]]
    if suffix in JSONL_SUFFIXES:
        rows = _jsonl_rows(text, source)
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        rows = ((reader.line_num, row) for row in reader)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if not isinstance(data, list):
            raise ValueError("JSON that is not an array of records (objects); use JSONL, or "
                             "an array of objects")
        rows = enumerate(data, start=1)
    text_field = options.text_field or DEFAULT_TEXT_FIELD
    seen: set[str] = set()
    missing: list[int] = []
    fields: set[str] = set()
    for number, record in rows:
        if not isinstance(record, dict):
            missing.append(number)
            continue
        fields.update(str(k) for k in record)
        body = record.get(text_field)
        if not isinstance(body, str) or not body.strip():
            missing.append(number)
            continue
        rid = _record_id(record, number, options.id_field)
        name = f"{source}#{rid}"
        if name in seen:
            warnings.warn(f"{source}: record id {rid!r} repeats at {number}; that record is "
                          f"named {source}#{rid}@{number}", CorpusWarning, stacklevel=3)
            name = f"{source}#{rid}@{number}"
        seen.add(name)
        metadata = {str(k): v for k, v in record.items() if k != text_field and v is not None}
        metadata["line"] = number
        raw = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
        yield Document(source=name, text=body, encoding=encoding,
                       sha256=hashlib.sha256(raw.encode("utf-8")).hexdigest(), metadata=metadata,
                       clean=options.clean, format="record")
    if missing:
        shown = ", ".join(str(n) for n in missing[:10]) + (", …" if len(missing) > 10 else "")
        hint = (f" (fields seen: {', '.join(sorted(fields)[:12])}; choose one with --text-field)"
                if fields else "")
        warnings.warn(f"{source}: skipped {len(missing)} record(s) with no text in field "
                      f"{text_field!r} (at {shown}){hint}", CorpusWarning, stacklevel=3)


def _jsonl_rows(text: str, source: str) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.warn(f"{source}:{lineno}: skipped, not valid JSON ({exc.msg})",
                          CorpusWarning, stacklevel=4)


def _record_id(record: dict[str, Any], number: int, id_field: str | None) -> str:
    for key in (id_field,) if id_field else ID_FIELDS:
        value = record.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return str(number)


def scan(paths: Iterable[str | os.PathLike[str]], *, root: str | os.PathLike[str] | None = None,
         options: Options | None = None, follow_links: bool = False) -> Corpus:
    """Load every readable document under `paths`, naming sources relative to `root` (default:
    the paths' common folder); unusable files are reported in `skipped` and warned about.

    Raises CorpusError when a path does not exist or nothing readable was found.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    elif not isinstance(paths, Iterable):
        raise CorpusError(f"paths must be file or directory names (str or Path), not "
                          f"{type(paths).__name__}")
    paths = list(paths)
    if not paths:
        raise CorpusError("no input paths given")
    if any(not isinstance(p, str | os.PathLike) for p in paths):
        raise CorpusError("paths must be file or directory names (str or Path)")
    base = Path(os.path.abspath(root)) if root is not None else common_root(paths)
    result = Corpus([], base)
    seen: dict[str, Path] = {}
    for file, source in iter_files(paths, base, follow_links=follow_links,
                                   skipped=result.skipped):
        if source in seen:
            if seen[source] == file or os.path.samefile(seen[source], file):
                continue  # the same file given twice
            raise CorpusError(f"two files would be indexed as {source!r}: {seen[source]} and "
                              f"{file}; index them from one directory or rename one")
        seen[source] = file
        try:
            documents = load_file(file, source, options)
        except ValueError as exc:
            result.skipped.append(Skipped(str(file), str(exc)))
            warnings.warn(f"skipped {file}: {exc}", CorpusWarning, stacklevel=2)
            continue
        result.files.append(source)
        result.documents.extend(documents)
    if not result.documents:
        shown = ", ".join(str(p) for p in paths)
        raise CorpusError(f"no readable documents in {shown} (looked for "
                          f"{', '.join(sorted(SUFFIXES))} files)")
    return result


def load(paths: Iterable[str | os.PathLike[str]], options: Options | None = None) -> list[Document]:
    """The documents of `scan(paths)`."""
    return scan(paths, options=options).documents
