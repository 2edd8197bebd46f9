"""semsearch: semantic search over text collections, Chinese first and multilingual throughout.

    import semsearch
    index = semsearch.load()                      # the seeds index shipped with the repo
    for hit in index.search("夫妻党员抗疫", k=5):
        print(hit.score, hit.source, hit.paragraph, hit.text)

    index = semsearch.build(["docs/"])            # clean → passages → embeddings → FAISS
    index.save("indexes/docs")
    index = semsearch.connect("./docs.db")        # an index in Milvus (Lite file or server)
"""

from semsearch.errors import (
    BackendUnavailableError,
    CorpusError,
    IndexLoadError,
    ModelError,
    ModelMismatchError,
    QueryError,
    SemsearchError,
)
from semsearch.index import Manifest
from semsearch.passages import Passage
from semsearch.search import Hit, Index, build, connect, load

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "CorpusError",
    "Hit",
    "Index",
    "IndexLoadError",
    "Manifest",
    "ModelError",
    "ModelMismatchError",
    "Passage",
    "QueryError",
    "SemsearchError",
    "build",
    "connect",
    "load",
]
