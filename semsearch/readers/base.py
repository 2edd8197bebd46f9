"""What every reader shares: the `Document` it returns, the reading `Options`, the warning it
raises for what it leaves out, text built block by block, and optional libraries imported with
an actionable error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from semsearch.errors import CorpusError, MissingDependencyError

# Formats whose content is known not to be web chrome: cleaned with mode "none" under "auto".
_PLAIN_FORMATS = frozenset({"markdown", "html", "pdf", "docx", "record"})


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
    # (offset, name) where each part of a Word file starts (body, textbox, header, footer,
    # footnote, comment, ...) or a page's summary (description, then body): passages carry
    # their part in the `part` metadata field
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


def extra(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"reading {what} ({module.split('.')[0]})",
                                     "formats") from exc


class Blocks:
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
