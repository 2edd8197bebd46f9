"""PDF files: the text layer of each page by pypdf, passages carrying their pages."""

from __future__ import annotations

import io

from semsearch.readers.base import Document, Options, extra


def read(data: bytes, source: str, digest: str, options: Options) -> Document:
    """The text of each page by pypdf, pages separated by a blank line (passages carry the
    pages they start and end on). Encrypted files that open with an empty password are read
    (AES needs cryptography, in the formats extra); password-protected ones are refused."""
    pypdf = extra("pypdf", "PDF")
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
