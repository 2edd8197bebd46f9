"""semsearch's exception types: every failure a user can cause or fix has one, with a message
that says what to do. The CLI prints them as one red line and exits non-zero."""

from __future__ import annotations

import errno

_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_FULL_TEXT = ("no space left", "file too large", "quota exceeded")


def disk_full(exc: BaseException | str) -> str:
    """" (disk full?)" when `exc` is a full disk or quota, by its errno or, as FAISS and Milvus
    Lite report it, by its text; else "". Every message about a failed write ends with it."""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    return " (disk full?)" if code in _FULL or any(t in text for t in _FULL_TEXT) else ""


class SemsearchError(Exception):
    """Base class: a failure the user can act on (the message says how)."""


class CorpusError(SemsearchError):
    """The input files: a path that does not exist, nothing readable, bad JSONL."""


class ModelError(SemsearchError):
    """The embedding model cannot be found, provisioned or loaded."""


class IndexLoadError(SemsearchError):
    """An index directory is missing, corrupt, or incompatible with the model."""


class IndexNotFoundError(IndexLoadError):
    """No index has the name given (`--index mine`): the message lists the names that exist
    and the folders searched (see semsearch/indexes.py)."""


class IndexWriteError(SemsearchError):
    """An index could not be written (disk full, permissions); the previous one is intact."""


class IndexLockedError(SemsearchError):
    """Another process is writing the index; only one writer at a time."""


class BackendUnavailableError(IndexLoadError):
    """The storage backend cannot be reached: a bad Milvus URI, a server that is down, a Milvus
    Lite file another process holds, or pymilvus not installed."""


class ModelMismatchError(IndexLoadError):
    """The index was built with a different model (or dimension) than the one asked for."""


class QueryError(SemsearchError):
    """A query or search parameter is invalid (blank query, k < 1, a bad filter, ...)."""


class FilterError(QueryError):
    """A filter (`where`) that is not one: bad syntax, an unknown field, a value of the wrong
    type. A QueryError, so the service tells it apart (code "bad_filter") from other refusals."""


class UsageError(QueryError):
    """Arguments that do not go together, or an operation this index cannot do as opened
    (e.g. adding to a read-only index, saving without a place to save to). A QueryError, so
    code that caught bad parameters as QueryError keeps catching these."""


class SearchTimeoutError(SemsearchError):
    """A search ran past its time limit and was abandoned at the next stage boundary."""


class IndexUnusableError(IndexLoadError):
    """A file of the loaded index changed on disk (its checksum no longer matches): nothing is
    answered from it until it is restored or a new generation is written."""


class MissingDependencyError(SemsearchError):
    """An optional part of semsearch is not installed; the message names the extra that
    brings it (`pip install 'semsearch[EXTRA]'`)."""

    def __init__(self, what: str, extra: str) -> None:
        self.extra = extra
        super().__init__(f"{what} needs the {extra!r} extra: pip install 'semsearch[{extra}]'")


__all__ = [
    "BackendUnavailableError",
    "CorpusError",
    "FilterError",
    "IndexLoadError",
    "IndexLockedError",
    "IndexNotFoundError",
    "IndexUnusableError",
    "IndexWriteError",
    "MissingDependencyError",
    "ModelError",
    "ModelMismatchError",
    "QueryError",
    "SearchTimeoutError",
    "SemsearchError",
    "UsageError",
]
