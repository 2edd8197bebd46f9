"""The text a hit's offsets point into: its source document, read again from the index's root.

An index stores each passage's cleaned text and its offsets into the document's decoded text,
not the document. Cleaning joins broken lines and normalises whitespace, and a context joins
passages with one line break where the file has a blank line, so a hit's `text` need not be
`document[start:end]`: on the seeds (issue 38) 2 of 20 hits and 20 of 20 contexts were not, and
a citation tool that slices the source got other text. `exact_text` gives the slice itself, when
the file is still under the index's root unchanged (its sha256 is the manifest's) and the slice
holds the passages' own words (whitespace aside): a record file read with other field options,
or a line cleaning dropped between two passages of a context, gives None instead.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from semsearch import corpus
from semsearch.errors import SemsearchError
from semsearch.search import Hit
from semsearch.stores.base import Manifest

CACHED_FILES = 32  # documents kept decoded (a PDF is extracted again otherwise)


def exact_text(manifest: Manifest, hit: Hit) -> str | None:
    """`document[start:end]` for the hit (its context's span when it has one), or None when
    the source is not there as indexed (see the module docstring)."""
    document = _document(manifest, hit.source)
    if document is None:
        return None
    parts = hit.context.passages if hit.context is not None else (hit,)
    if any(_words(document[p.start:p.end]) != _words(p.text) for p in parts):
        return None
    span = hit.context or hit
    return document[span.start:span.end]


def _words(text: str) -> str:
    return "".join(text.split())


def _document(manifest: Manifest, source: str) -> str | None:
    digest = manifest.sources.get(source)
    if not manifest.root or digest is None:
        return None
    path = Path(manifest.root) / corpus.file_of(source)
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read(str(path), stat.st_mtime_ns, stat.st_size, source, digest)


@lru_cache(maxsize=CACHED_FILES)
def _read(path: str, mtime: int, size: int, source: str, digest: str) -> str | None:
    """The decoded text of `source` in the file at `path` if the file's sha256 is `digest`
    (mtime and size only key the cache: a changed file is read again)."""
    del mtime, size
    if not os.path.isfile(path):
        return None
    try:
        documents = corpus.load_file(Path(path), corpus.file_of(source))
    except (ValueError, OSError, SemsearchError):  # unreadable now, or an extra missing
        return None
    found = next((d for d in documents if d.source == source), None)
    return found.text if found is not None and found.sha256 == digest else None
