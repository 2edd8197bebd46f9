"""Find documents on disk and decode them to text, whatever their encoding.

A `Document` is one unit of text with the name it was indexed under (`source`): a `.txt` or `.md`
file, or one line of a `.jsonl` file (its `text` field; the other fields become metadata).
Offsets of passages later point into `Document.text`, the decoded file exactly as it was.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch.errors import CorpusError

TEXT_SUFFIXES = frozenset({".txt", ".md"})
JSONL_SUFFIXES = frozenset({".jsonl"})
SUFFIXES = TEXT_SUFFIXES | JSONL_SUFFIXES

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
    """One decoded document: `text` is the file's content, unchanged but for decoding."""

    source: str
    text: str
    encoding: str
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)


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


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[Path, str]]:
    """Yield (file, source name) for every supported file under `paths`, in a stable order.

    A directory contributes its files by path relative to it; a file is named as given.
    A path that does not exist is an error, not a silent skip.
    """
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise CorpusError(f"path does not exist: {raw}")
        if path.is_file():
            yield path, path.as_posix()
            continue
        found: list[tuple[Path, str]] = []
        for root, dirs, files in os.walk(path, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                file = Path(root) / name
                if file.suffix.lower() in SUFFIXES and not name.startswith("."):
                    found.append((file, file.relative_to(path).as_posix()))
        yield from sorted(found, key=lambda item: item[1])


def load_file(path: Path, source: str) -> list[Document]:
    """Read one file into documents; raise ValueError (caught by `load`) when it is unusable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise ValueError("empty file")
    text, encoding = decode_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() in JSONL_SUFFIXES:
        return list(_jsonl_documents(text, source, encoding, digest))
    return [Document(source=source, text=text, encoding=encoding, sha256=digest)]


def _jsonl_documents(text: str, source: str, encoding: str, digest: str) -> Iterator[Document]:
    """One document per JSON line with a string `text`; other fields are kept as metadata.

    Each keeps the file as its source and its line number as metadata `line`; passage offsets
    then point into that line's `text`."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.warn(f"{source}:{lineno}: skipped, not valid JSON ({exc.msg})", CorpusWarning,
                          stacklevel=3)
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            warnings.warn(f"{source}:{lineno}: skipped, no string 'text' field", CorpusWarning,
                          stacklevel=3)
            continue
        metadata = {key: value for key, value in record.items() if key != "text"}
        metadata["line"] = lineno
        yield Document(source=source, text=record["text"], encoding=encoding,
                       sha256=digest, metadata=metadata)


def load(paths: Iterable[str | os.PathLike[str]]) -> list[Document]:
    """Load every readable document under `paths`; unusable files are skipped with a warning.

    Raises CorpusError when a path does not exist or nothing readable was found.
    """
    paths = list(paths)
    if not paths:
        raise CorpusError("no input paths given")
    documents: list[Document] = []
    seen: dict[str, Path] = {}
    for file, source in iter_files(paths):
        if source in seen and seen[source] != file:
            raise CorpusError(f"two files would be indexed as {source!r}: {seen[source]} and "
                              f"{file}; index them from one directory or rename one")
        seen[source] = file
        try:
            documents.extend(load_file(file, source))
        except ValueError as exc:
            warnings.warn(f"skipped {file}: {exc}", CorpusWarning, stacklevel=2)
    if not documents:
        shown = ", ".join(str(p) for p in paths)
        raise CorpusError(f"no readable documents in {shown} (looked for "
                          f"{', '.join(sorted(SUFFIXES))} files)")
    return documents
