"""Storage backends side by side behind one protocol (`base.Store`), and the one place that
decides which backend a location names:

    a bare name (docs)                    an index in the indexes folders (indexes.py)
    a directory (indexes/docs)            FAISS (stores/faiss.py): generations on disk
    ./x.db, /abs/x.db                     Milvus Lite (stores/milvus.py): in-process, one file
    http(s)://host:19530                  a Milvus server or cluster
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semsearch import indexes
from semsearch.errors import UsageError
from semsearch.models.encoder import ModelInfo
from semsearch.passages import Passage
from semsearch.stores.base import INDEX_TYPES, Manifest, ProgressFn, Store, resolve_kind

if TYPE_CHECKING:
    from semsearch.stores.milvus import MigrateReport

# The seeds index shipped inside the package, so an installed semsearch answers out of the box.
DEFAULT_INDEX = indexes.PACKAGED / "seeds"
INDEX_ENV = "SEMSEARCH_INDEX"

Location = str | os.PathLike[str]

__all__ = ["DEFAULT_INDEX", "INDEX_TYPES", "Location", "Manifest", "Store",
           "check_new", "checkpoint_dir", "create", "default_location", "discard_new", "is_milvus",
           "migrate", "open_store", "writer"]


def default_location() -> str:
    """`SEMSEARCH_INDEX` (a name, a directory or a Milvus URI), else the shipped seeds index."""
    return os.environ.get(INDEX_ENV) or str(DEFAULT_INDEX)


def is_milvus(location: Location) -> bool:
    """Whether a location names Milvus: a URI with a scheme (http://host:19530), or Milvus Lite
    (a path ending in .db — which Lite keeps as a directory — unless a FAISS index is there)."""
    from semsearch.stores.generations import CURRENT

    text = str(location).strip()
    if "://" in text:
        return True
    return text.endswith(".db") and not (Path(text).expanduser() / CURRENT).exists()


def open_store(location: Location | None = None, *, collection: str | None = None,
               writable: bool = False) -> Store:
    """Open the index at `location` (default: `default_location()`): a name in the indexes
    folders, a FAISS directory (memory-mapped read-only unless `writable`) or a Milvus
    collection."""
    if location is not None and not isinstance(location, str | os.PathLike):
        raise UsageError(f"an index location must be a str or Path, not "
                         f"{type(location).__name__}")
    where = str(indexes.resolve(location if location is not None else default_location()))
    if is_milvus(where):
        from semsearch.stores.milvus import MilvusStore

        return MilvusStore.open(where, collection)
    if collection is not None:
        raise UsageError(f"--collection is for a Milvus index; {where} is a FAISS directory")
    from semsearch.stores.faiss import FaissStore

    return FaissStore.load(where, mmap=not writable)


def check_new(location: Location, overwrite: bool, collection: str | None = None) -> None:
    """Refuse to build into a directory that already holds an index, unless `overwrite` (a
    Milvus collection is replaced by a build: written under a temporary name, then swapped)."""
    from semsearch.stores.generations import CURRENT

    if is_milvus(location):
        return
    if collection is not None:
        raise UsageError(f"--collection is for a Milvus index; {location} is a directory")
    if (Path(location) / CURRENT).exists() and not overwrite:
        raise UsageError(f"{location} already holds an index; update it with `semsearch add "
                         f"... --index {location}`, or replace it with --force")


def checkpoint_dir(location: Location) -> Path:
    """Where a build into directory `location` keeps its encoded chunks (see checkpoint.py)."""
    from semsearch.stores.generations import CHECKPOINT

    return Path(location) / CHECKPOINT


def discard_new(location: Location) -> None:
    """Remove what a failed first build left in a directory that held no index before."""
    from semsearch.stores.generations import CURRENT

    if not (Path(location) / CURRENT).exists():
        shutil.rmtree(location, ignore_errors=True)


@contextmanager
def writer(location: Location) -> Iterator[None]:
    """Be the one writer of the index at `location` while the block runs: a FAISS directory's
    lock (IndexLockedError for a second writer). Milvus Lite locks its file itself; a Milvus
    server relies on the manifest generation check at commit. A name is resolved first."""
    location = indexes.resolve(location)
    if is_milvus(location):
        yield
        return
    from semsearch.stores.generations import writer_lock

    with writer_lock(Path(location)):
        yield


def create(passages: Sequence[Passage], vectors: np.ndarray, model: ModelInfo,
           sources: dict[str, str], location: Location | None = None, *,
           collection: str | None = None, encoder: str = "", index_type: str = "auto",
           progress: ProgressFn | None = None,
           sentences: tuple[np.ndarray, np.ndarray] | None = None) -> Store:
    """A new store over `passages` and their `vectors`: in memory for a FAISS index (written
    by `save`), or written straight into a Milvus collection (replacing it) for a URI.
    `sentences`: granularity "sentence" (see stores/sentences.py; in Milvus, a second
    collection: stores/milvus.py)."""
    if location is not None and is_milvus(location):
        from semsearch.stores import milvus

        return milvus.create(passages, vectors, model, sources, str(location), collection,
                             encoder=encoder, index_type=index_type, progress=progress,
                             sentences=sentences)
    from semsearch.stores.faiss import FaissStore

    return FaissStore.create(passages, vectors, model, sources, encoder, index_type, progress,
                             sentences=sentences)


def migrate(source: Store, target: Location | None, *, collection: str | None = None,
            index_type: str | None = None, batch_size: int = 1000, overwrite: bool = False,
            start: Callable[[int], None] | None = None,
            progress: ProgressFn | None = None) -> tuple[Store, MigrateReport]:
    """Copy an index, without re-encoding, from any store to `target`: a Milvus collection
    (resumable: a rerun copies only what is missing) or a FAISS directory. Without a target:
    SEMSEARCH_MILVUS_URI; a bare name is a directory in the indexes folder (indexes.py)."""
    from semsearch.stores.milvus import MigrateReport, migrate, resolve_uri

    if target is None:
        target = resolve_uri(None)
    target = indexes.target(target)
    if source.manifest.granularity != "passage":
        raise UsageError(f"{source.location or 'this index'} has sentence vectors, which "
                         "`migrate` does not copy yet; rebuild it at the target with "
                         "`semsearch index --granularity sentence` (FAISS) instead")
    if is_milvus(target):
        return migrate(source, str(target), collection, index_type=index_type,
                       batch_size=batch_size, overwrite=overwrite, start=start,
                       progress=progress)
    from semsearch.stores.faiss import FaissStore
    from semsearch.stores.generations import CURRENT

    if (Path(target) / CURRENT).exists() and not overwrite:
        raise UsageError(f"{target} already holds an index; pass --overwrite to replace it")
    ids = np.array(sorted(pid for pid, _ in source.iter_passages()), dtype=np.int64)
    if start is not None:
        start(len(ids))
    m = source.manifest
    found = source.get(ids.tolist())
    store = FaissStore.create([found[int(i)] for i in ids], source.vectors(ids), m.model,
                              m.sources, m.encoder,
                              resolve_kind(index_type or m.index_type, len(ids)), progress,
                              ids=ids)
    store.manifest = replace(store.manifest, root=m.root, dropped=m.dropped, web=m.web)
    store.save(target)
    return store, MigrateReport(len(ids), 0, len(ids))
