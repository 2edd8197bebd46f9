"""Find documents on disk and hand each to the reader of its format (`semsearch.readers`, one
module per format), whatever their format and encoding.

A `Document` is one unit of text with the name it is indexed under (`source`):
- a text file (.txt, .md), decoded (charset-normalizer; GB family read as GB18030);
- a web page (.html, .htm): its main text, title and headings, by trafilatura (plain text,
  headings marked by their h1-h6 structure), its summary first when the text lacks it;
- a PDF (pypdf): its text page by page, lines joined into paragraphs by their layout, each
  passage carrying its `page` (the first), `page_start` and `page_end`;
- a Word file (.docx, python-docx): paragraphs, headings by style, tables as rows, text boxes,
  then headers, footers, footnotes and comments (passages carry their `part`);
- one record of a .jsonl, .csv or .json (array of objects) file: named `file#id` (the `id`
  field, `--id-field`, else the line/row number), its text field (`text` or `--text-field`),
  the other fields kept as metadata.

Sources are named by their path relative to the root they were indexed from (`root`), so the
same file has the same name however its path was typed; a file outside the root is named by its
absolute path. Every file met is either loaded or reported in `Corpus.skipped` with the reason
(and a `CorpusWarning` naming it): nothing is left out silently.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from semsearch.errors import CorpusError
from semsearch.readers import docx, html, pdf, records, text
from semsearch.readers.base import CorpusWarning, Document, Options
from semsearch.readers.records import RECORD_SUFFIXES
from semsearch.readers.text import decode_bytes

__all__ = ["HTML_SUFFIXES", "RECORD_SUFFIXES", "SUFFIXES", "TEXT_SUFFIXES", "Corpus",
           "CorpusWarning", "Document", "Options", "Skipped", "common_root", "decode_bytes",
           "file_of", "in_scope", "iter_files", "load", "load_file", "scan", "source_name"]

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
SUFFIXES = TEXT_SUFFIXES | RECORD_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}


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
        return [pdf.read(data, source, digest, options)]
    if kind == "docx":
        return [docx.read(data, source, digest, options)]
    if kind == "rtf":
        raise ValueError("RTF is not supported; save it as .docx or .txt")
    if kind in ("html", "record"):
        content, encoding = decode_bytes(data)
        if kind == "html":
            return [html.read(content, source, encoding, digest, options)]
        return list(records.read(content, path, source, encoding, options))
    return [text.read(data, source, digest, options, kind)]


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
