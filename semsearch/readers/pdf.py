"""PDF files: the text layer of each page by pypdf, passages carrying their pages."""

from __future__ import annotations

import io
import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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
    """The text of each page by pypdf, pages separated by a blank line (passages carry the
    pages they start and end on). Encrypted files that open with an empty password are read
    (AES needs cryptography, in the formats extra); password-protected ones are refused."""
    pypdf = extra("pypdf", "PDF")
    with _pypdf_messages(source):
        pages = _pages(pypdf, data)
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


def _pages(pypdf: Any, data: bytes) -> list[str]:
    """Each page's text; ValueError naming why a file cannot be read."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("the PDF is encrypted with a password (give a decrypted copy)")
        return [(page.extract_text() or "").strip() for page in reader.pages]
    except ValueError:
        raise
    except pypdf.errors.DependencyError as exc:  # AES without the cryptography package
        raise ValueError("the PDF is encrypted (AES); reading it needs the cryptography "
                         "package: pip install 'semsearch[formats]'") from exc
    except Exception as exc:  # pypdf raises many types for damaged files
        raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
