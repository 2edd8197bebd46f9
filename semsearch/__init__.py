"""semsearch: semantic search over text collections, Chinese first and multilingual throughout.

    import semsearch
    index = semsearch.open()                      # the seeds index shipped with semsearch
    for hit in index.search("夫妻党员抗疫", k=5):
        print(hit.score, hit.source, hit.paragraph, hit.text)

    index = semsearch.build(["docs/"])            # clean → passages → embeddings → FAISS
    index.save("indexes/docs")
    index = semsearch.open("./docs.db")           # an index in Milvus (Lite file or server URI)
"""

from semsearch.context import Context
from semsearch.errors import (
    BackendUnavailableError,
    CorpusError,
    FilterError,
    IndexLoadError,
    IndexLockedError,
    IndexNotFoundError,
    IndexUnusableError,
    IndexWriteError,
    MissingDependencyError,
    ModelError,
    ModelMismatchError,
    QueryError,
    SearchTimeoutError,
    SemsearchError,
    UsageError,
)
from semsearch.index import Index, UpdateReport, build, connect, load, open
from semsearch.passages import Passage
from semsearch.search import Hit
from semsearch.stores.base import Manifest

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "Context",
    "CorpusError",
    "FilterError",
    "Hit",
    "Index",
    "IndexLoadError",
    "IndexLockedError",
    "IndexNotFoundError",
    "IndexUnusableError",
    "IndexWriteError",
    "Manifest",
    "MissingDependencyError",
    "ModelError",
    "ModelMismatchError",
    "Passage",
    "QueryError",
    "SearchTimeoutError",
    "SemsearchError",
    "UpdateReport",
    "UsageError",
    "build",
    "connect",
    "load",
    "open",
]
