"""Text files (.txt, .md): decoded (a BOM, else UTF-8, else charset-normalizer; the GB family
read as GB18030), kept unchanged otherwise."""

from __future__ import annotations

import codecs

from semsearch.readers.base import Document, Options

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


def read(data: bytes, source: str, digest: str, options: Options, kind: str) -> Document:
    """A text or Markdown file as one document (`kind`: text | markdown)."""
    text, encoding = decode_bytes(data)
    return Document(source=source, text=text, encoding=encoding, sha256=digest,
                    clean=options.clean, format=kind)
