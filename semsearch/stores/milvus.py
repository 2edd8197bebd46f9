"""The Milvus backend: one collection per index, on a server, a cluster, or Milvus Lite.

    URI  ./x.db or /abs/x.db   Milvus Lite (in-process, one process per file)
         http(s)://host:19530   a Milvus server or cluster (SEMSEARCH_MILVUS_TOKEN if it needs one)

A collection holds one row per passage: `id` (the stable passage id, primary key), `vector`
(FLOAT_VECTOR, inner product), `text`, `source`, `paragraph`, `start`, `end`, `heading`,
`metadata` (JSON) and `lexical` (the folded text BM25 reads, analysed by Milvus's jieba
tokenizer into the `sparse` field by a BM25 function). The manifest (model, sources, counts) is
a JSON collection property, `semsearch.manifest`: it is the commit record.

An index of granularity "sentence" (stores/sentences.py) also has a second collection,
`<collection>__sentences`: one row per sentence vector, `id` (auto), `passage_id`, `start`,
`end` (offsets into the passage's text), `source` and `vector` (the float16-rounded values
FAISS keeps, as FLOAT_VECTOR, exact FLAT index: the same scores as a FAISS index). Its rows
follow the passages' commit rules (`passage_id < next_id`, removed sources hidden then deleted).

Milvus has no transactions, so writes follow the manifest: an `add` inserts rows with ids at or
above the manifest's `next_id` and only then commits the new manifest; searches keep
`id < next_id`, so a crashed add is never half-visible, and the next write deletes its rows.
`remove_sources` commits the manifest without the sources together with a
`semsearch.removing` marker, then deletes; readers hide the marked sources until it is cleared.
One writer at a time (as for a FAISS directory); Milvus Lite enforces it by locking the file.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semsearch.errors import (
    BackendUnavailableError,
    FilterError,
    IndexLoadError,
    IndexWriteError,
    MissingDependencyError,
    disk_full,
)
from semsearch.filters import FIELDS
from semsearch.lexical import BM25_B, BM25_K1, STOPWORDS, analysed_text
from semsearch.models.encoder import ModelInfo
from semsearch.passages import Passage
from semsearch.stores.base import (
    DEFAULT_EF_SEARCH,
    DEFAULT_NPROBE,
    FORMAT_VERSION,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    METRIC,
    SENTENCE,
    BestSentence,
    Manifest,
    ProgressFn,
    Store,
    corpus_fingerprint,
    failpoint,
    nlist_for,
    no_hits,
    pq_subquantizers,
    resolve_kind,
)

if TYPE_CHECKING:
    from semsearch.filters import Filter

URI_ENV = "SEMSEARCH_MILVUS_URI"
TOKEN_ENV = "SEMSEARCH_MILVUS_TOKEN"
DEFAULT_COLLECTION = "semsearch"
MANIFEST_KEY = "semsearch.manifest"
REMOVING_KEY = "semsearch.removing"
MIGRATING_KEY = "semsearch.migrating"
BATCH = 1_000  # rows per insert: ~1.6 MB of 384-d vectors, well under Milvus's 64 MB message cap
MAX_LIMIT = 16_384  # Milvus's largest topk
MAX_VARCHAR = 65_535  # bytes
LEXICAL = (f"Milvus BM25 (k1={BM25_K1}, b={BM25_B}) over jieba search-mode words, "
           "OpenCC t2s, NFKC, lowercase, numbers' values")
PASSAGE_FIELDS = ["id", "text", "source", "paragraph", "start", "end", "heading", "metadata"]
SENTENCES = "__sentences"  # suffix of the collection of sentence vectors
# Milvus index type and build parameters for each of base.INDEX_TYPES (same choices as FAISS)
INDEX_TYPES = {"flat": "FLAT", "hnsw": "HNSW", "sq8": "IVF_SQ8", "ivf-pq": "IVF_PQ"}
_PUNCTUATION = set("，。！？、；：“”‘’（）《》【】…—·,.!?;:\"'()[]{}<>-_/\\|@#$%^&*+=~`")
# our tokenizer drops stopwords and tokens without a word character: a stop filter does both
STOP_WORDS = sorted(STOPWORDS | _PUNCTUATION)
ANALYZER = {"tokenizer": {"type": "jieba", "mode": "search"},
            "filter": ["lowercase", {"type": "stop", "stop_words": STOP_WORDS}]}


def resolve_uri(uri: str | os.PathLike[str] | None) -> str:
    """The Milvus URI to use: `uri`, else SEMSEARCH_MILVUS_URI; BackendUnavailableError saying
    what a URI looks like if neither is given or it is neither a `.db` file nor http(s)."""
    text = str(uri) if uri is not None else os.environ.get(URI_ENV, "")
    if not text.strip():
        raise BackendUnavailableError(f"no Milvus URI given: pass one (./file.db for Milvus Lite, "
                                      f"http://host:19530 for a server) or set {URI_ENV}")
    text = text.strip()
    if is_lite(text):
        return str(Path(text).expanduser().absolute())
    if re.match(r"^(https?|tcp|unix)://", text):
        return text
    raise BackendUnavailableError(f"bad Milvus URI {text!r}: use a path ending in .db for Milvus "
                                  "Lite or http://host:19530 for a Milvus server")


def is_lite(uri: str) -> bool:
    """A Milvus Lite URI: a local path ending in `.db`."""
    return "://" not in uri and uri.endswith(".db")


def connect(uri: str | os.PathLike[str] | None = None, timeout: float = 10.0) -> Any:
    """A pymilvus MilvusClient for `uri`, with our errors for a bad URI or an unreachable server."""
    target = resolve_uri(uri)
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError as exc:
        raise MissingDependencyError("the Milvus backend", "milvus") from exc
    logging.getLogger("pymilvus").setLevel(logging.ERROR)  # iterator mvcc chatter
    if is_lite(target):
        import jieba  # Milvus Lite tokenizes with the process's jieba: keep its banner quiet

        jieba.setLogLevel(logging.WARNING)
        parent = Path(target).parent
        if not parent.is_dir():
            raise BackendUnavailableError(f"cannot open Milvus Lite file {target}: directory "
                                          f"{parent} does not exist")
    try:
        return MilvusClient(target, token=os.environ.get(TOKEN_ENV, ""), timeout=timeout)
    except MilvusException as exc:
        hint = ("is another process using this Milvus Lite file? Lite allows one process per "
                "file; use a Milvus server to share an index" if is_lite(target)
                else "is the server running and reachable?")
        raise BackendUnavailableError(f"cannot connect to Milvus at {target}: "
                                      f"{getattr(exc, 'message', exc)}; {hint}") from exc


def _quote(values: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def _index_params(client: Any, kind: str, n: int, dimension: int) -> Any:
    """Milvus index parameters mirroring the FAISS choices for `kind` (base.py), and BM25's."""
    params = client.prepare_index_params()
    build: dict[str, Any] = {}
    if kind == "hnsw":
        build = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}
    elif kind in ("sq8", "ivf-pq"):
        build = {"nlist": max(1, min(nlist_for(max(n, 1)), 65_536))}
        if kind == "ivf-pq":
            build |= {"m": pq_subquantizers(dimension), "nbits": 8}
    params.add_index("vector", index_type=INDEX_TYPES[kind], metric_type="IP", params=build)
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    return params


def _schema(dimension: int) -> Any:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("lexical", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                     analyzer_params=ANALYZER)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("source", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("paragraph", DataType.INT64)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("heading", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("metadata", DataType.JSON)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["lexical"], output_field_names=["sparse"]))
    return schema


def _sentence_schema(dimension: int) -> Any:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("passage_id", DataType.INT64)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("source", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    return schema


def _row(pid: int, passage: Passage, vector: np.ndarray) -> dict[str, Any]:
    lexical = analysed_text(passage.lexical_text)
    for name, value in (("text", passage.text), ("source", passage.source),
                        ("heading", passage.heading), ("lexical", lexical)):
        if len(value.encode("utf-8")) > MAX_VARCHAR:
            raise IndexWriteError(f"passage {pid} of {passage.source}: its {name} is longer than "
                                  f"Milvus's {MAX_VARCHAR} bytes; index with a smaller "
                                  "--max-tokens")
    return {"id": pid, "vector": vector.tolist(), "text": passage.text, "lexical": lexical,
            "source": passage.source, "paragraph": passage.paragraph, "start": passage.start,
            "end": passage.end, "heading": passage.heading, "metadata": passage.metadata}


def _passage(row: dict[str, Any]) -> Passage:
    return Passage(text=row["text"], source=row["source"], paragraph=int(row["paragraph"]),
                   start=int(row["start"]), end=int(row["end"]), heading=row.get("heading") or "",
                   metadata=row.get("metadata") or {})


class MilvusStore:
    """A semsearch index in a Milvus collection (the `Store` protocol)."""

    has_lexical = True
    read_only = False

    def __init__(self, client: Any, uri: str, collection: str, manifest: Manifest,
                 removing: Sequence[str] = ()) -> None:
        self.client = client
        self.uri = uri
        self.collection = collection
        self.manifest = manifest
        self.removing = list(removing)
        self._committed = manifest
        self.sentences = (MilvusSentences(self, collection + SENTENCES)
                          if manifest.granularity == SENTENCE else None)

    # ── opening ──────────────────────────────────────────────────────────

    @classmethod
    def open(cls, uri: str | os.PathLike[str] | None = None,
             collection: str | None = None) -> MilvusStore:
        """Open the index in `collection` (default: semsearch) at `uri`; IndexLoadError if
        there is none (yet)."""
        target = resolve_uri(uri)
        collection = collection or DEFAULT_COLLECTION
        if is_lite(target) and not os.path.lexists(target):  # Lite would create it: a typo
            raise IndexLoadError(f"no index at {target}: no such Milvus Lite file (so no "
                                 f"collection {collection!r}) or FAISS directory; check the "
                                 f"path, or build one with `semsearch index PATH... --out {uri}`")
        client = connect(target)
        properties = _properties(client, collection, target)
        if MIGRATING_KEY in properties:
            raise IndexLoadError(f"collection {collection!r} at {target} holds an unfinished "
                                 "migration; run `semsearch migrate` again to complete it")
        if MANIFEST_KEY not in properties:
            raise IndexLoadError(f"collection {collection!r} at {target} is not a semsearch "
                                 "index (no manifest); choose another --collection")
        manifest = _manifest(properties[MANIFEST_KEY], collection, target)
        removing = json.loads(properties.get(REMOVING_KEY) or "[]")
        store = cls(client, target, collection, manifest, removing)
        store._load()
        return store

    def _load(self) -> None:
        """Load the collection into memory for search (a no-op when it already is)."""
        names = [self.collection]
        if self.sentences is not None:
            names.append(self.sentences.collection)
        for name in names:
            self._load_one(name)

    def _load_one(self, name: str) -> None:
        state = self._call("load", lambda: self.client.get_load_state(name))
        if "NotLoad" in str(state.get("state")):
            self._call("load", lambda: self.client.load_collection(name))

    def close(self) -> None:
        """Close the connection (a Milvus Lite file stays open for this process's other clients
        until it exits)."""
        self.client.close()

    @property
    def location(self) -> str:
        return f"{self.uri} (Milvus collection {self.collection})"

    def fields(self) -> frozenset[str] | None:
        """The passage fields and the metadata keys the manifest records (`add` and `migrate`
        record them); None for a collection written before they were recorded: a filter on a
        missing key then matches nothing rather than being refused."""
        keys = self.manifest.keys
        return None if keys is None else frozenset(FIELDS) | frozenset(keys)

    def describe(self) -> str:
        kind = self.manifest.index_type
        return (f"{kind} (Milvus {INDEX_TYPES.get(kind, kind)}; {self.manifest.passage_count:,} "
                f"vectors of {self.manifest.model.dimension} dims)")

    # ── reading ──────────────────────────────────────────────────────────

    def _guard(self, where: Filter | None) -> str:
        """The filter every read uses: committed rows, not being removed, matching `where`."""
        parts = [f"id < {self.manifest.next_id}"]
        if self.removing:
            parts.append(f"source not in {_quote(self.removing)}")
        if where is not None:
            parts.append(f"({where.to_milvus()})")
        return " and ".join(parts)

    def _limit(self, k: int) -> int:
        return max(1, min(k, max(self.manifest.passage_count, 1), MAX_LIMIT))

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        from pymilvus.exceptions import MilvusException

        try:
            return call()
        except MilvusException as exc:
            message = getattr(exc, "message", str(exc))
            if "filter" in message.lower() or "expr" in message.lower():
                raise FilterError(f"Milvus refused the filter: {message}") from exc
            raise BackendUnavailableError(f"Milvus at {self.uri} failed to {what} "
                                          f"(collection {self.collection!r}): {message}") from exc

    def search(self, vectors: np.ndarray, k: int,
               where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, ids) per query vector by inner product; ids are -1 past the end."""
        k = self._limit(k)
        params: dict[str, Any] = {"metric_type": "IP"}
        kind = self.manifest.index_type
        if kind == "hnsw":
            params["params"] = {"ef": max(DEFAULT_EF_SEARCH, k)}
        elif kind in ("sq8", "ivf-pq"):
            params["params"] = {"nprobe": DEFAULT_NPROBE}
        data = np.asarray(vectors, dtype=np.float32).tolist()
        result = self._call("search", lambda: self.client.search(
            self.collection, data=data, anns_field="vector", limit=k, filter=self._guard(where),
            search_params=params, output_fields=["id"]))
        return _arrays(result, k, lexical=False)

    def sentence_search(self, vectors: np.ndarray, dense: tuple[np.ndarray, np.ndarray],
                        depth: int, where: Filter | None = None,
                        ) -> tuple[tuple[np.ndarray, np.ndarray], list[dict[int, BestSentence]]]:
        """As FaissStore.sentence_search: `dense` rescored with each passage's best sentence
        (stores/sentences.py), the sentences searched in the second collection."""
        from semsearch.stores import sentences

        if self.sentences is None:
            return dense, [{} for _ in range(len(vectors))]

        def keep(ids: np.ndarray) -> np.ndarray:
            if where is None:
                return ids
            expr = f"id in {ids.tolist()} and {self._guard(where)}"
            rows = self._call("filter", lambda: self.client.query(
                self.collection, filter=expr, output_fields=["id"]))
            allowed = {int(r["id"]) for r in rows}
            return np.array([i for i in ids.tolist() if i in allowed], dtype=np.int64)

        return sentences.mix(self.sentences, vectors, dense, depth, self.vectors, keep)

    def query_words(self, query: str) -> list[str]:
        """The query's words as jieba segments them (Milvus's analyser is jieba too)."""
        from semsearch.lexical import tokenize

        return tokenize(query)

    def lexical_search(self, queries: Sequence[str], k: int,
                       where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-`k` (scores, ids) per query, computed by Milvus over the `lexical` field."""
        k = self._limit(k)
        data = [analysed_text(q) for q in queries]
        result = self._call("search", lambda: self.client.search(
            self.collection, data=data, anns_field="sparse", limit=k, filter=self._guard(where),
            search_params={"metric_type": "BM25"}, output_fields=["id"]))
        return _arrays(result, k, lexical=True)

    def lexical_coverage(self, queries: Sequence[str]) -> np.ndarray:
        """Milvus analyses and scores BM25 on the server and exposes no vocabulary, so the
        coverage is unknown: taken as full (BM25 keeps its whole vote, as before fusion
        weighed it)."""
        return np.ones(len(queries), dtype=np.float32)

    def get(self, ids: Iterable[int]) -> dict[int, Passage]:
        """The passages with these ids."""
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return {}
        rows = self._call("get passages", lambda: self.client.get(
            self.collection, ids=wanted, output_fields=PASSAGE_FIELDS))
        return {int(row["id"]): _passage(row) for row in rows}

    def iter_passages(self, batch_size: int = BATCH) -> Iterator[tuple[int, Passage]]:
        """Every (id, passage), streamed in batches (never all in memory at once)."""
        for batch in self._iterate(PASSAGE_FIELDS, self._guard(None), batch_size):
            for row in batch:
                yield int(row["id"]), _passage(row)

    def _iterate(self, fields: list[str], expr: str,
                 batch_size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
        iterator = self._call("read passages", lambda: self.client.query_iterator(
            self.collection, batch_size=batch_size, filter=expr, output_fields=fields))
        try:
            while batch := self._call("read passages", iterator.next):
                yield batch
        finally:
            iterator.close()

    def count(self, expr: str = "", *, raw: bool = False) -> int:
        """How many committed passages match the Milvus expression `expr` (`raw`: counting
        every row, committed or not)."""
        if not raw:
            expr = " and ".join(filter(None, [self._guard(None), expr]))
        rows = self._call("count", lambda: self.client.query(
            self.collection, filter=expr, output_fields=["count(*)"]))
        return int(rows[0]["count(*)"])

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored vectors of `ids`, in that order."""
        rows = self._call("get vectors", lambda: self.client.get(
            self.collection, ids=list(ids), output_fields=["id", "vector"]))
        by_id = {int(r["id"]): r["vector"] for r in rows}
        if not len(ids):
            return np.zeros((0, self.manifest.model.dimension), dtype=np.float32)
        return np.array([by_id[int(i)] for i in ids], dtype=np.float32)

    # ── writing ──────────────────────────────────────────────────────────

    def add(self, passages: Sequence[Passage], vectors: np.ndarray, sources: dict[str, str],
            progress: ProgressFn | None = None,
            sentences: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Insert passages under new ids (and with `sentences`, their sentence rows: position
        of the passage, start, end; and vectors), then commit the manifest that makes them
        visible."""
        if (sentences is not None) != (self.sentences is not None) and len(passages):
            raise IndexWriteError("this index has sentence vectors: passages added to it need "
                                  "theirs" if self.sentences is not None else
                                  "this index holds passage vectors only; sentence vectors can "
                                  "be added only to an index built with --granularity sentence")
        self._recover()
        start = self.manifest.next_id
        _insert(self.client, self.collection, range(start, start + len(passages)), passages,
                vectors, progress)
        if sentences is not None and self.sentences is not None:
            self.sentences.insert(start, passages, *sentences)
        failpoint("milvus-before-commit")
        self._commit(replace(self.manifest, next_id=start + len(passages),
                             passage_count=self.manifest.passage_count + len(passages),
                             sources={**self.manifest.sources, **sources},
                             keys=_keys(self.manifest, passages)))

    def remove_sources(self, sources: Sequence[str]) -> int:
        """Remove every passage of `sources`; returns how many went."""
        self._recover()
        doomed = sorted(set(sources))
        if not doomed:
            return 0
        count = self.count(f"source in {_quote(doomed)}")
        kept = {s: h for s, h in self.manifest.sources.items() if s not in set(doomed)}
        self._commit(replace(self.manifest, passage_count=self.manifest.passage_count - count,
                             sources=kept), {REMOVING_KEY: json.dumps(doomed, ensure_ascii=False)})
        self.removing = doomed
        self._finish_removal()
        return count

    def _finish_removal(self) -> None:
        if not self.removing:
            return
        expr = f"source in {_quote(self.removing)}"
        self._call("delete", lambda: self.client.delete(self.collection, filter=expr))
        if self.sentences is not None:
            self._call("delete", lambda: self.client.delete(self.sentences.collection,  # type: ignore[union-attr]
                                                            filter=expr))
        failpoint("milvus-after-delete")
        self._call("flush", lambda: self.client.flush(self.collection))
        self._call("commit", lambda: self.client.drop_collection_properties(
            self.collection, property_keys=[REMOVING_KEY]))
        self.removing = []

    def _recover(self) -> None:
        """Undo what a crashed writer left: uncommitted rows, an unfinished removal. Refuses
        (IndexLoadError) if another writer committed since this store was opened."""
        properties = _properties(self.client, self.collection, self.uri)
        stored = _manifest(properties.get(MANIFEST_KEY, "{}"), self.collection, self.uri)
        if stored.generation != self.manifest.generation:
            raise IndexLoadError(f"collection {self.collection!r} at {self.uri} changed since it "
                                 f"was opened (generation {self.manifest.generation} → "
                                 f"{stored.generation}); open it again and redo the change")
        self.removing = json.loads(properties.get(REMOVING_KEY) or "[]")
        self._finish_removal()
        expr = f"id >= {self.manifest.next_id}"
        if self.count(expr, raw=True):
            self._call("delete", lambda: self.client.delete(self.collection, filter=expr))
        if self.sentences is not None:
            stray = f"passage_id >= {self.manifest.next_id}"
            self._call("delete", lambda: self.client.delete(
                self.sentences.collection, filter=stray))  # type: ignore[union-attr]

    def _commit(self, manifest: Manifest, extra: dict[str, str] | None = None) -> None:
        manifest = replace(manifest, generation=manifest.generation + 1,
                           corpus_fingerprint=corpus_fingerprint(manifest.sources),
                           created_at=datetime.now(UTC).isoformat(timespec="seconds"))
        self._call("flush", lambda: self.client.flush(self.collection))
        if self.sentences is not None:
            self._call("flush", lambda: self.client.flush(
                self.sentences.collection))  # type: ignore[union-attr]
        properties = {MANIFEST_KEY: _manifest_json(manifest), **(extra or {})}
        self._call("commit", lambda: self.client.alter_collection_properties(
            self.collection, properties=properties))
        self.manifest = self._committed = manifest

    def save(self, path: str | os.PathLike[str] | None = None) -> str:
        """Writes already went to Milvus and were committed; flush them to storage. Returns the
        URI (`path`, if given, must be it: a Milvus index cannot be saved elsewhere)."""
        if path is not None and resolve_uri(path) != self.uri:
            raise IndexWriteError(f"this index lives in Milvus at {self.uri}; to copy it "
                                  f"elsewhere use `semsearch migrate`")
        if self.manifest != self._committed:  # e.g. dropped-line notes of removed sources
            self._commit(self.manifest)
        self._call("flush", lambda: self.client.flush(self.collection))
        return self.uri


class MilvusSentences:
    """The sentence vectors of a MilvusStore, in their own collection (see the module doc):
    what stores/sentences.mix needs of them."""

    def __init__(self, store: MilvusStore, collection: str) -> None:
        self.store = store
        self.collection = collection

    def __len__(self) -> int:
        """Sentence vectors held (committed, not being removed): `semsearch info` shows it."""
        rows = self.store._call("count", lambda: self.store.client.query(
            self.collection, filter=self._guard(), output_fields=["count(*)"]))
        return int(rows[0]["count(*)"])

    def _guard(self) -> str:
        parts = [f"passage_id < {self.store.manifest.next_id}"]
        if self.store.removing:
            parts.append(f"source not in {_quote(self.store.removing)}")
        return " and ".join(parts)

    def top_passages(self, queries: np.ndarray) -> np.ndarray:
        """The passage id of each query's top SENTENCE_DEPTH sentences (-1: none)."""
        from semsearch.stores.sentences import SENTENCE_DEPTH

        data = np.asarray(queries, dtype=np.float32).tolist()
        result = self.store._call("search sentences", lambda: self.store.client.search(
            self.collection, data=data, anns_field="vector", limit=SENTENCE_DEPTH,
            filter=self._guard(), search_params={"metric_type": "IP"},
            output_fields=["passage_id"]))
        out = np.full((len(queries), SENTENCE_DEPTH), -1, dtype=np.int64)
        for row, hits in enumerate(result):
            for col, hit in enumerate(list(hits)[:SENTENCE_DEPTH]):
                out[row, col] = int(hit["entity"]["passage_id"])
        return out

    def best(self, query: np.ndarray, pids: np.ndarray) -> dict[int, BestSentence]:
        """The best sentence of each of `pids` that has sentence vectors."""
        from semsearch.stores.sentences import best_of

        if not len(pids):
            return {}
        expr = f"passage_id in {pids.tolist()} and {self._guard()}"
        rows = self.store._call("get sentences", lambda: self.store.client.query(
            self.collection, filter=expr,
            output_fields=["passage_id", "start", "end", "vector"]))
        if not rows:
            return {}
        rows = sorted(rows, key=lambda r: (int(r["passage_id"]), int(r["start"])))
        spans = np.array([(r["passage_id"], r["start"], r["end"]) for r in rows],
                         dtype=np.int64)
        vectors = np.array([r["vector"] for r in rows], dtype=np.float32)
        return best_of(pids, spans, vectors @ np.asarray(query, dtype=np.float32))

    def insert(self, first: int, passages: Sequence[Passage], rows: np.ndarray,
               vectors: np.ndarray, batch_size: int = BATCH) -> None:
        """Insert sentence rows whose first column is a position in `passages`, the passages
        given ids from `first` on; vectors rounded to float16 as FAISS keeps them."""
        from pymilvus.exceptions import MilvusException

        rows = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        rounded = np.asarray(vectors, dtype=np.float16).astype(np.float32)
        for begin in range(0, len(rows), batch_size):
            data = [{"passage_id": first + int(n), "start": int(a), "end": int(b),
                     "source": passages[int(n)].source, "vector": rounded[i].tolist()}
                    for i, (n, a, b) in enumerate(rows[begin:begin + batch_size].tolist(),
                                                  begin)]
            try:
                self.store.client.insert(self.collection, data)
            except MilvusException as exc:
                raise IndexWriteError(f"Milvus refused an insert into {self.collection!r}: "
                                      f"{getattr(exc, 'message', exc)}{disk_full(exc)}; the "
                                      "index is unchanged (uncommitted rows are cleaned up by "
                                      "the next write)") from exc


def _create_sentences(client: Any, target: str, collection: str, dimension: int) -> None:
    """A new (empty, loaded) collection of sentence vectors, replacing any of that name."""
    if client.has_collection(collection):
        client.drop_collection(collection)
    params = client.prepare_index_params()
    params.add_index("vector", index_type="FLAT", metric_type="IP")
    try:
        client.create_collection(collection, schema=_sentence_schema(dimension),
                                 index_params=params, consistency_level="Strong")
    except Exception as exc:  # pymilvus raises MilvusException; Lite may raise others
        raise IndexWriteError(f"cannot create collection {collection!r} at {target}: "
                              f"{getattr(exc, 'message', exc)}{disk_full(exc)}") from exc


def _keys(manifest: Manifest, passages: Sequence[Passage]) -> list[str] | None:
    """The metadata keys after adding `passages`: those recorded and theirs (None, still
    unknown, if the collection has rows whose keys were never recorded). A removed source's
    keys stay: a filter on one then matches nothing, as on FAISS before it is reopened."""
    if manifest.keys is None and manifest.next_id > 0:
        return None
    return sorted({*(manifest.keys or ()), *(key for p in passages for key in p.metadata)})


def _arrays(result: Any, k: int, *, lexical: bool) -> tuple[np.ndarray, np.ndarray]:
    """Milvus hits as (scores, ids) arrays; BM25 ties ordered by id, as `LexicalIndex` does."""
    scores, ids = no_hits(len(result), k)
    for row, hits in enumerate(result):
        # Milvus Lite reports BM25 as a negated distance; a server, as the (positive) score
        pairs = [(abs(float(h["distance"])) if lexical else float(h["distance"]), int(h["id"]))
                 for h in list(hits)[:k]]
        if lexical:
            pairs.sort(key=lambda pair: (-pair[0], pair[1]))
        for col, (score, pid) in enumerate(pairs):
            scores[row, col], ids[row, col] = score, pid
    return scores, ids


def _properties(client: Any, collection: str, uri: str) -> dict[str, str]:
    from pymilvus.exceptions import MilvusException

    try:
        if not client.has_collection(collection):
            known = client.list_collections()
            raise IndexLoadError(f"no collection {collection!r} at {uri} (it has "
                                 f"{', '.join(sorted(known)[:5]) or 'none'}); create it with "
                                 f"`semsearch index PATH --out {uri} --collection {collection}` "
                                 f"or `semsearch migrate --from DIR --to {uri}`")
        described = client.describe_collection(collection)
    except MilvusException as exc:
        raise BackendUnavailableError(f"Milvus at {uri} failed to describe {collection!r}: "
                                      f"{getattr(exc, 'message', exc)}") from exc
    return {str(k): str(v) for k, v in (described.get("properties") or {}).items()}


def _manifest_json(manifest: Manifest) -> str:
    return json.dumps(manifest.to_json(), ensure_ascii=False, separators=(",", ":"))


def _manifest(text: str, collection: str, uri: str) -> Manifest:
    try:
        data = json.loads(text)
        if data.get("format_version") != FORMAT_VERSION:
            raise IndexLoadError(f"collection {collection!r} at {uri} has format version "
                                 f"{data.get('format_version')}, this semsearch reads "
                                 f"{FORMAT_VERSION}; migrate it again")
        return Manifest.from_json(data)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise IndexLoadError(f"the manifest of collection {collection!r} at {uri} is corrupt "
                             f"({exc}); migrate the index again") from exc


def _insert(client: Any, collection: str, ids: Iterable[int], passages: Sequence[Passage],
            vectors: np.ndarray, progress: ProgressFn | None, batch_size: int = BATCH) -> None:
    """Insert rows in batches (each insert is applied whole or not at all by Milvus)."""
    from pymilvus.exceptions import MilvusException

    rows = list(ids)
    for start in range(0, len(rows), batch_size):
        stop = min(start + batch_size, len(rows))
        data = [_row(rows[i], passages[i], vectors[i]) for i in range(start, stop)]
        try:
            client.insert(collection, data)
        except MilvusException as exc:
            raise IndexWriteError(f"Milvus refused an insert into {collection!r}: "
                                  f"{getattr(exc, 'message', exc)}{disk_full(exc)}; the index is "
                                  "unchanged (uncommitted rows are cleaned up by the next "
                                  "write)") from exc
        if progress is not None:
            progress(stop - start)


@dataclass(frozen=True)
class MigrateReport:
    """What `migrate` did: rows copied now, rows a previous (interrupted) run had copied."""

    copied: int
    resumed: int
    total: int


def migrate(source: Store, uri: str | os.PathLike[str] | None = None,
            collection: str | None = None, *, index_type: str | None = None,
            batch_size: int = BATCH, overwrite: bool = False,
            start: Callable[[int], None] | None = None,
            progress: ProgressFn | None = None) -> tuple[MilvusStore, MigrateReport]:
    """Copy an index (passages, vectors, manifest) from any store into a Milvus collection,
    without re-encoding. Resumable: a rerun after an interruption copies only the missing rows.

    `index_type` (flat, hnsw, sq8, ivf-pq; default: the source's) picks the Milvus index;
    `overwrite` replaces a collection that holds something else.
    """
    target = resolve_uri(uri)
    collection = collection or DEFAULT_COLLECTION
    client = connect(target)
    m = source.manifest
    kind = resolve_kind(index_type or m.index_type, m.passage_count)
    marker = json.dumps({"corpus": m.corpus_fingerprint, "passages": m.passage_count,
                         "next_id": m.next_id, "model": m.model.fingerprint, "index_type": kind},
                        sort_keys=True)
    if client.has_collection(collection):
        properties = _properties(client, collection, target)
        if properties.get(MIGRATING_KEY) == marker:
            pass  # an interrupted run of this very migration: resume
        elif MIGRATING_KEY not in properties and MANIFEST_KEY in properties \
                and _same_index(_manifest(properties[MANIFEST_KEY], collection, target), m) \
                and not overwrite:
            store = MilvusStore.open(target, collection)
            return store, MigrateReport(0, store.manifest.passage_count, m.passage_count)
        elif overwrite:
            client.drop_collection(collection)
        else:
            what = ("an unfinished migration of another index" if MIGRATING_KEY in properties
                    else "another index" if MANIFEST_KEY in properties else "other data")
            raise IndexWriteError(f"collection {collection!r} at {target} holds {what}; pass "
                                  "--overwrite to replace it, or choose another --collection")
    known = source.fields()
    keys = None if known is None else sorted(set(known) - set(FIELDS))
    store = _new_collection(client, target, collection, replace(
        m, index_type=kind, lexical=LEXICAL, files={}, generation=0, keys=keys), marker)
    present: set[int] = set()
    for batch in store._iterate(["id"], "", batch_size=max(batch_size, 1000)):
        present.update(int(r["id"]) for r in batch)
    ids = np.array(sorted(pid for pid, _ in source.iter_passages()), dtype=np.int64)
    todo = ids[~np.isin(ids, np.fromiter(present, dtype=np.int64, count=len(present)))]
    stray = present - set(ids.tolist())
    if stray:  # rows the source no longer has (it cannot change mid-migration, but be exact)
        store._call("delete", lambda: client.delete(collection, ids=sorted(stray)))
    if start is not None:
        start(len(ids))
    if progress is not None and len(ids) - len(todo):
        progress(len(ids) - len(todo))
    for n, first in enumerate(range(0, len(todo), batch_size), start=1):
        chunk = todo[first:first + batch_size]
        passages = source.get(chunk.tolist())
        _insert(client, collection, chunk.tolist(), [passages[int(i)] for i in chunk],
                source.vectors(chunk), progress, batch_size)
        failpoint(f"migrate-batch-{n}")
    _finish(store, len(ids))
    return store, MigrateReport(len(todo), int(len(ids) - len(todo)), len(ids))


def _new_collection(client: Any, target: str, collection: str, manifest: Manifest,
                    marker: str) -> MilvusStore:
    """The collection to fill (created, marked unfinished, unless an interrupted run left it)."""
    if not client.has_collection(collection):
        dimension = manifest.model.dimension
        index_params = _index_params(client, manifest.index_type, manifest.passage_count,
                                     dimension)
        try:
            client.create_collection(collection, schema=_schema(dimension),
                                     index_params=index_params, consistency_level="Strong",
                                     properties={MIGRATING_KEY: marker})
        except Exception as exc:  # pymilvus raises MilvusException; Lite may raise others
            raise IndexWriteError(f"cannot create collection {collection!r} at {target}: "
                                  f"{getattr(exc, 'message', exc)}{disk_full(exc)}") from exc
    store = MilvusStore(client, target, collection, manifest)
    store._load()
    return store


def _finish(store: MilvusStore, expected: int) -> None:
    """Check that every row arrived, then commit the manifest and clear the unfinished mark."""
    client, collection = store.client, store.collection
    store._call("flush", lambda: client.flush(collection))
    copied = store.count(raw=True)
    if copied != expected:
        raise IndexWriteError(f"collection {collection!r} at {store.uri} holds {copied} rows "
                              f"after the copy, not {expected}; run the command again")
    store._call("commit", lambda: client.alter_collection_properties(
        collection, properties={MANIFEST_KEY: _manifest_json(store.manifest)}))
    store._call("commit", lambda: client.drop_collection_properties(
        collection, property_keys=[MIGRATING_KEY]))


def _same_index(a: Manifest, b: Manifest) -> bool:
    """Whether two manifests describe the same passages and vectors (a finished migration)."""
    return (a.corpus_fingerprint, a.passage_count, a.next_id, a.model) == \
        (b.corpus_fingerprint, b.passage_count, b.next_id, b.model)


def create(passages: Sequence[Passage], vectors: np.ndarray, model: ModelInfo,
           sources: dict[str, str], uri: str | os.PathLike[str] | None = None,
           collection: str | None = None, *, encoder: str = "",
           index_type: str = "auto", progress: ProgressFn | None = None,
           sentences: tuple[np.ndarray, np.ndarray] | None = None) -> MilvusStore:
    """A new index in `collection` from passages and their vectors, replacing what was there:
    rows are inserted into a collection under a temporary name, which is renamed into place
    once complete, so a crash leaves the old one. `sentences` (rows: position of the passage,
    start, end; and vectors): granularity "sentence", in `<collection>__sentences` (filled
    under a temporary name too, put in place just before the passages)."""
    if vectors.shape != (len(passages), model.dimension):
        raise ValueError(f"vectors {vectors.shape} do not match "
                         f"{len(passages)} passages × {model.dimension}")
    target = resolve_uri(uri)
    collection = collection or DEFAULT_COLLECTION
    client = connect(target)
    temporary = f"{collection}__building"
    if client.has_collection(temporary):
        client.drop_collection(temporary)
    manifest = Manifest(
        format_version=FORMAT_VERSION, model=model, metric=METRIC,
        index_type=resolve_kind(index_type, len(passages)), passage_count=len(passages),
        corpus_fingerprint=corpus_fingerprint(sources),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), lexical=LEXICAL,
        encoder=encoder, next_id=len(passages), sources=dict(sources),
        keys=sorted({key for passage in passages for key in passage.metadata}),
        granularity=SENTENCE if sentences is not None else "passage")
    if sentences is not None:
        _create_sentences(client, target, temporary + SENTENCES, model.dimension)
    store = _new_collection(client, target, temporary, manifest, "create")
    _insert(client, temporary, range(len(passages)), passages, vectors, progress)
    if sentences is not None:
        MilvusSentences(store, temporary + SENTENCES).insert(0, passages, *sentences)
        client.flush(temporary + SENTENCES)
    _finish(store, len(passages))
    try:
        if client.has_collection(collection + SENTENCES):
            client.drop_collection(collection + SENTENCES)
        if sentences is not None:
            client.rename_collection(temporary + SENTENCES, collection + SENTENCES)
        if client.has_collection(collection):
            client.drop_collection(collection)
        client.rename_collection(temporary, collection)
    except Exception as exc:
        raise IndexWriteError(f"cannot put collection {collection!r} in place at {target}: "
                              f"{getattr(exc, 'message', exc)}{disk_full(exc)}") from exc
    return MilvusStore.open(target, collection)


__all__ = ["DEFAULT_COLLECTION", "MigrateReport", "MilvusStore", "connect", "create", "migrate",
           "resolve_uri"]
