"""The FAISS backend: an index directory of generations holding FAISS vectors, passages and BM25.

    DIR/CURRENT, DIR/.lock    see generations.py (atomic swaps, one writer)
    DIR/gen-00000007/
        manifest.json         format, model (name, weights fingerprint, dimension, prompts),
                              index type, counts, sources with content hashes, file checksums
        vectors.faiss         FAISS index with stable passage ids (IndexIDMap2)
        passages.jsonl        one passage per line, with its id
        bm25/                 the lexical index over the same passages (see lexical.py)
        sentences.faiss/.npy  granularity "sentence" only: sentence vectors and their
                              (passage id, start, end) rows (see stores/sentences.py)

The FAISS index kinds (base.INDEX_TYPES), all with stable int64 ids over unit vectors:

    flat    exact inner product (IndexIDMap2 over IndexFlatIP): 1536 B/vector at 384-d
    hnsw    HNSW graph (M=32) over 8-bit scalar-quantised vectors, wrapped in IndexIDMap2:
            fastest queries, ~650 B/vector; removal is by tombstone, compacted past COMPACT_AT
    ivf-pq  inverted file (nlist ~ 4*sqrt(n)) + product quantisation, d/4 bytes per vector:
            smallest, but PQ cannot separate near-duplicate neighbours (low recall@10)
    sq8     inverted file + 8-bit scalar quantisation (IndexIVFScalarQuantizer): ~400 B/vector,
            recall@10 ~0.97 under 1 ms per query at 1M; what `auto` picks for large collections

`benchmarks/ann.py` measures all of them from 10k to 1M vectors; base.py cites its results.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semsearch.atomic import atomic_directory
from semsearch.columns import Columns
from semsearch.errors import IndexLoadError, IndexUnusableError, UsageError
from semsearch.lexical import DESCRIPTION as LEXICAL
from semsearch.lexical import LEXICAL_DIR, LexicalIndex
from semsearch.models.encoder import ModelInfo
from semsearch.models.resolve import sha256_file
from semsearch.passages import Passage
from semsearch.stores import generations
from semsearch.stores.base import (
    DEFAULT_EF_SEARCH,
    DEFAULT_NPROBE,
    FORMAT_VERSION,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    INDEX_TYPES,
    METRIC,
    Manifest,
    ProgressFn,
    corpus_fingerprint,
    failpoint,
    nlist_for,
    no_hits,
    pq_subquantizers,
    resolve_kind,
)
from semsearch.stores.generations import CURRENT, MANIFEST
from semsearch.stores.pinned import mapped_array, pinned
from semsearch.stores.sentences import (
    FILES as SENTENCE_FILES,
)
from semsearch.stores.sentences import (
    SENTENCE,
    BestSentence,
    SentenceVectors,
)

if TYPE_CHECKING:
    from semsearch.filters import Filter

VECTORS = "vectors.faiss"
PASSAGES = "passages.jsonl"
MAX_TRAIN = 200_000  # training sample cap: keeps k-means + PQ training at 1M under a minute
ADD_BATCH = 65_536  # vectors per add() call, and so per progress() report
MIN_TRAIN = {"flat": 1, "hnsw": 2, "sq8": 2, "ivf-pq": 1_000}
# An hnsw index is rebuilt without its tombstones once they pass this share of its nodes: they
# still cost memory and graph hops, and a source replaced over and over would grow without end.
COMPACT_AT = 0.2
# Vectors (and BM25 weight) files up to this size are read into memory; larger ones are
# memory-mapped from a private unnamed copy (pinned.py), never from the index's own file, whose
# truncation underneath would kill the process with SIGBUS
MMAP_ABOVE = 256 << 20
FILTER_CACHE = 32  # filters whose kept ids a store remembers (see FaissStore._allowed)


def _faiss() -> Any:
    """The faiss module, imported on first use so that `semsearch --help` stays fast."""
    import faiss

    return faiss


def single_threaded() -> None:
    """Search on the calling thread only, in this whole process (the service's choice).

    FAISS splits a search over OpenMP threads, which spin for a while after each search; in the
    service the encoder's own threads already use every core, and the spinning took CPU from
    them. In-process on the 2-core AMD EPYC (seeds, hybrid, bf16 queries; machine shared, CPU
    time per query): everything but the encoder 12.5-14.7 → 2.9-3.0 ms alone and 3.2-3.5 →
    1.5-1.8 ms in batches of 8, the encoder itself a little less too; OMP_WAIT_POLICY=PASSIVE
    did as well, but must be set before faiss loads. Flat search over 101k vectors, 1 thread
    against 2 on the same busy machine: 25-27 against 91-114 ms wall for one query, 185-190
    against 198-213 for 8, ~750 for 32 either way."""
    _faiss().omp_set_num_threads(1)


def _passage_json(pid: int, passage: Passage) -> str:
    record = {
        "id": pid, "text": passage.text, "source": passage.source,
        "paragraph": passage.paragraph, "start": passage.start, "end": passage.end,
        "heading": passage.heading, "metadata": passage.metadata,
    }
    return json.dumps(record, ensure_ascii=False)


def _passage_from_json(line: str) -> tuple[int, Passage]:
    record = json.loads(line)
    return int(record["id"]), Passage(
        text=record["text"], source=record["source"], paragraph=record["paragraph"],
        start=record["start"], end=record["end"], heading=record.get("heading", ""),
        metadata=record.get("metadata") or {})


@dataclass
class FaissStore:
    """Passages by stable id, their vectors in FAISS, their BM25 index, and the manifest
    (the `Store` protocol over an index directory, or in memory until saved)."""

    manifest: Manifest
    passages: dict[int, Passage]
    faiss_index: Any  # faiss.Index (IndexIDMap2 around one of base.INDEX_TYPES)
    lexical: LexicalIndex | None = None
    origin: tuple[Path, int] | None = None  # (directory, generation) this was loaded from
    frozen: bool = False  # opened read-only: add and remove are refused even if in memory
    # (size, inode, mtime) of each file of the loaded generation, to notice one changed on disk
    _identity: dict[str, tuple[int, int, int]] = field(default_factory=dict, repr=False)
    _damaged: tuple[dict[str, tuple[int, int, int]], str] | None = field(default=None,
                                                                        repr=False)
    _filtered: OrderedDict[tuple[Any, int, int], np.ndarray] = field(
        default_factory=OrderedDict, repr=False)
    _filtered_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fields: tuple[tuple[int, int], frozenset[str]] | None = field(default=None, repr=False)
    _columns: tuple[tuple[int, int], Columns] | None = field(default=None, repr=False)
    _manifest_sha: str = field(default="", repr=False)  # what CURRENT named at load
    sentences: SentenceVectors | None = None  # granularity "sentence" (see stores/sentences.py)

    @classmethod
    def create(cls, passages: Sequence[Passage], vectors: np.ndarray, model: ModelInfo,
               sources: dict[str, str], encoder: str = "", index_type: str = "auto",
               progress: ProgressFn | None = None, *,
               ids: np.ndarray | None = None,
               sentences: tuple[np.ndarray, np.ndarray] | None = None) -> FaissStore:
        """Index `vectors` (one row per passage, under `ids`: default 0..n-1) and BM25 over the
        same passages; with `sentences` ((position of the passage, start, end in its text) rows
        and their vectors), an index of granularity "sentence"."""
        if vectors.shape != (len(passages), model.dimension):
            raise ValueError(f"vectors {vectors.shape} do not match "
                             f"{len(passages)} passages × {model.dimension}")
        ids = np.arange(len(passages), dtype=np.int64) if ids is None else ids
        kind = resolve_kind(index_type, len(passages))
        # BM25 first: its temporaries then do not coincide with FAISS's copy of the vectors
        lexical = LexicalIndex.build([p.lexical_text for p in passages], ids)
        faiss_index = build_index(kind, vectors, progress, ids=ids)
        manifest = Manifest(
            format_version=FORMAT_VERSION, model=model, metric=METRIC, index_type=kind,
            passage_count=len(passages), corpus_fingerprint=corpus_fingerprint(sources),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"), lexical=LEXICAL,
            encoder=encoder, next_id=int(ids.max()) + 1 if len(ids) else 0, sources=dict(sources),
            granularity=SENTENCE if sentences is not None else "passage",
        )
        store = cls(manifest, dict(zip(ids.tolist(), passages, strict=True)), faiss_index,
                    lexical)
        if sentences is not None:
            store.sentences = SentenceVectors.empty(model.dimension)
            store._add_sentences(ids, *sentences)
        return store

    def _add_sentences(self, ids: np.ndarray, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Add sentence rows whose first column is a position in `ids` (the passages just
        added)."""
        if self.sentences is None:
            raise UsageError("this index holds passage vectors only; sentence vectors can be "
                             "added only to an index built with --granularity sentence")
        rows = np.array(rows, dtype=np.int64).reshape(-1, 3)
        rows[:, 0] = ids[rows[:, 0]] if len(rows) else rows[:, 0]
        self.sentences.add(rows, vectors)

    def sentence_search(self, vectors: np.ndarray, dense: tuple[np.ndarray, np.ndarray],
                        depth: int, where: Filter | None = None,
                        ) -> tuple[tuple[np.ndarray, np.ndarray], list[dict[int, BestSentence]]]:
        """The dense ranking `dense` (of `search`) rescored with each passage's best sentence
        (see stores/sentences.py), and those sentences; unchanged without sentence vectors."""
        if self.sentences is None:
            return dense, [{} for _ in range(len(vectors))]
        allowed = self._allowed(where)

        def keep(ids: np.ndarray) -> np.ndarray:
            return ids[np.isin(ids, allowed)] if allowed is not None else ids

        return self.sentences.mix(vectors, dense, depth, self.vectors, keep)

    @property
    def location(self) -> str:
        """The index directory this was loaded from or saved to ("" while only in memory)."""
        return str(self.origin[0]) if self.origin else ""

    def _allowed(self, where: Filter | None) -> np.ndarray | None:
        """Ids of the passages a filter keeps (None: no filter), evaluated over the passages as
        columns (`columns.Columns`, built once per generation): milliseconds at 101k where the
        filter checked passage by passage in Python took 0.19 s (benchmarks/results/filters.md).
        The last FILTER_CACHE filters' ids are kept too (until the index changes): a hybrid
        query filters once, not once per ranking."""
        if where is None:
            return None
        key = (where.expression, self.manifest.next_id, len(self.passages))
        with self._filtered_lock:
            if key in self._filtered:
                self._filtered.move_to_end(key)
                return self._filtered[key]
        allowed = self.columns().keep(where)
        with self._filtered_lock:
            self._filtered[key] = allowed
            while len(self._filtered) > FILTER_CACHE:
                self._filtered.popitem(last=False)
        return allowed

    def columns(self) -> Columns:
        """The passages as columns for filters, built on first use after each change."""
        key = (self.manifest.next_id, len(self.passages))
        with self._filtered_lock:
            if self._columns is None or self._columns[0] != key:
                self._columns = (key, Columns.of(self.passages))
            return self._columns[1]

    def prewarm(self) -> None:
        """Build the filter columns now (the service does when it loads a generation), the
        metadata keys most passages carry first: a filtered request never pays for them."""
        from semsearch.filters import FIELDS

        counts: Counter[str] = Counter()
        for passage in self.passages.values():
            counts.update(passage.metadata.keys())  # a mapping would add its values
        self.columns().prewarm([k for k, _ in counts.most_common() if k not in FIELDS])

    def knows_filter(self, where: Filter) -> bool:
        """Whether the ids `where` keeps are cached (a search with it skips evaluating it):
        the service counts an unseen filter's evaluation in a request's cost (cost.py)."""
        key = (where.expression, self.manifest.next_id, len(self.passages))
        with self._filtered_lock:
            return key in self._filtered

    def resolve_filter(self, where: Filter) -> int:
        """Evaluate `where` now, its kept ids cached for the searches that follow; how many
        passages it keeps (the service runs this alone before batching the search)."""
        allowed = self._allowed(where)
        return 0 if allowed is None else len(allowed)

    def fields(self) -> frozenset[str]:
        """The names a filter may use here: the passage fields and every metadata key."""
        key = (self.manifest.next_id, len(self.passages))
        if self._fields is None or self._fields[0] != key:
            from semsearch.filters import FIELDS

            names = set(FIELDS)
            for passage in self.passages.values():
                names.update(passage.metadata)
            self._fields = (key, frozenset(names))
        return self._fields[1]

    def search(self, vectors: np.ndarray, k: int,
               where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, passage ids) for each query vector, among the passages `where`
        keeps (a filter expression, see `filters`); ids are -1 past the end."""
        allowed = self._allowed(where)
        if allowed is not None and not len(allowed):
            return no_hits(len(vectors))
        k = max(1, min(k, len(self.passages)))
        set_search_params(self.faiss_index, k=k)
        return search_index(self.faiss_index, vectors, k, allowed)

    @property
    def has_lexical(self) -> bool:
        return self.lexical is not None

    @property
    def read_only(self) -> bool:
        return self.frozen or is_read_only(self.faiss_index)

    def check_files(self) -> None:
        """IndexUnusableError if a file of the loaded generation no longer holds what was
        loaded: a few `stat` calls each time; a file whose size, inode or mtime changed is
        hashed again and compared with the manifest's checksum (the manifest itself with the
        digest CURRENT gave at load), once per change. A service checks this before each
        search and in `/health`. What is searched was read into memory or mapped from a
        private copy at load (MMAP_ABOVE, pinned.py), so a damaged file is reported, never a
        crash."""
        if self.origin is None or not self._identity:
            return
        generation_dir = generations.generation_path(*self.origin)
        if not generation_dir.is_dir() and self.origin[1] == 0:
            generation_dir = self.origin[0]
        now = _identities(generation_dir, self._identity)
        if now == self._identity:
            return
        if self._damaged is not None and self._damaged[0] == now:
            raise IndexUnusableError(self._damaged[1])
        for name, stamp in now.items():
            if stamp == self._identity.get(name):
                continue
            # the manifest is not among its own checksums: CURRENT holds its digest
            expected = self._manifest_sha or None if name == MANIFEST \
                else self.manifest.files.get(name)
            file = generation_dir / name
            try:
                good = expected is None or sha256_file(file) == expected
            except OSError:
                good = False
            if not good:
                problem = (f"index unusable: {file} changed on disk since it was loaded "
                           "(checksum mismatch); restore it or write a new generation with "
                           "`semsearch add`/`index --force`")
                self._damaged = (now, problem)
                raise IndexUnusableError(problem)
        self._identity, self._damaged = now, None  # touched, same content

    def lexical_search(self, queries: Sequence[str], k: int,
                       where: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-`k` (scores, passage ids) per query, among the passages `where` keeps."""
        if self.lexical is None:
            raise IndexLoadError("this index has no lexical (BM25) part; rebuild it with "
                                 "`semsearch index`")
        allowed = self._allowed(where)
        if allowed is not None and not len(allowed):
            return no_hits(len(queries))
        return self.lexical.search(queries, k, allowed)

    def query_words(self, query: str) -> list[str]:
        """The query's words from this index's own query dictionary (no full jieba load)."""
        if self.lexical is None:
            from semsearch.lexical import tokenize

            return tokenize(query)
        return self.lexical.query_words(query)

    def lexical_coverage(self, queries: Sequence[str]) -> np.ndarray:
        """The share of each query's words in the BM25 vocabulary (0 without a BM25 part)."""
        if self.lexical is None:
            return np.zeros(len(queries), dtype=np.float32)
        return np.array([self.lexical.coverage(q) for q in queries], dtype=np.float32)

    def get(self, ids: Iterable[int]) -> dict[int, Passage]:
        """The passages with these ids (ids not in the index are left out, as on Milvus)."""
        return {pid: self.passages[pid] for pid in ids if pid in self.passages}

    def iter_passages(self) -> Iterator[tuple[int, Passage]]:
        """Every (id, passage)."""
        return iter(list(self.passages.items()))

    def add(self, passages: Sequence[Passage], vectors: np.ndarray,
            sources: dict[str, str], progress: ProgressFn | None = None, *,
            sentences: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Add passages under new ids, and record their sources' content hashes; `sentences`
        as in `create`."""
        start = self.manifest.next_id
        ids = np.arange(start, start + len(passages), dtype=np.int64)
        if sentences is not None:
            self._add_sentences(ids, *sentences)
        elif self.sentences is not None and len(passages):
            raise UsageError("this index has sentence vectors: passages added to it need theirs")
        if len(passages):
            add_vectors(self.faiss_index, vectors, ids, progress)
            self.passages.update(zip(ids.tolist(), passages, strict=True))
            if self.lexical is not None:
                self.lexical = self.lexical.updated(
                    remove=(), add=[(int(i), p.lexical_text) for i, p in zip(ids, passages,
                                                                            strict=True)])
        self._refresh(next_id=start + len(passages),
                      sources={**self.manifest.sources, **sources})

    def remove_sources(self, sources: Sequence[str]) -> int:
        """Remove every passage of `sources`; returns how many passages went."""
        doomed = {pid for pid, p in self.passages.items() if p.source in set(sources)}
        if doomed:
            remove_ids(self.faiss_index, np.fromiter(doomed, dtype=np.int64))
            if tombstones(self.faiss_index) > COMPACT_AT * self.faiss_index.ntotal:
                self.faiss_index = compact(self.faiss_index)
            for pid in doomed:
                del self.passages[pid]
            if self.sentences is not None:
                self.sentences.remove(np.fromiter(doomed, dtype=np.int64))
            if self.lexical is not None:
                self.lexical = self.lexical.updated(remove=doomed, add=[])
        kept = {s: h for s, h in self.manifest.sources.items() if s not in set(sources)}
        self._refresh(sources=kept)
        return len(doomed)

    def _refresh(self, **changes: Any) -> None:
        sources = changes.get("sources", self.manifest.sources)
        self.manifest = replace(self.manifest, passage_count=len(self.passages),
                                corpus_fingerprint=corpus_fingerprint(sources),
                                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                                **changes)

    def save(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write a new generation under directory `path` (default: the directory this was
        loaded from) and make it the live one; returns the directory.

        Raises IndexLockedError if another process is writing there, IndexWriteError if the
        write fails (the previous generation stays live), and IndexLoadError if `path` changed
        since this index was loaded from it (reload and redo the change: nothing is lost).
        """
        if path is None:
            if self.origin is None:
                raise UsageError("this index was built in memory: give a directory to save it to")
            path = self.origin[0]
        target = Path(path)
        generations.check_target(target)
        created = not target.exists()
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise generations.write_error(target, exc) from exc
        try:
            self._save_locked(target, created)
        except OSError as exc:  # removing leftovers, or writing the lock: one line, not a trace
            if created and not (target / CURRENT).exists():
                shutil.rmtree(target, ignore_errors=True)
            raise generations.write_error(target, exc) from exc
        return str(target)

    def _save_locked(self, target: Path, created: bool) -> None:
        try:
            with generations.writer_lock(target):
                live = generations.live_generation(target)
                if self.origin is not None and self.origin[0].resolve() == target.resolve() \
                        and live != self.origin[1]:
                    raise IndexLoadError(f"{target} changed since it was loaded (generation "
                                         f"{self.origin[1]} → {live}); load it again and redo "
                                         "the change")
                generation = (live or 0) + 1
                generations.remove_stale(target, keep=live)
                self._write_generation(target, generation)
                self.origin = (target, generation)
                for legacy in (MANIFEST, VECTORS, PASSAGES, LEXICAL_DIR):  # a format-1 layout
                    generations.remove(target / legacy)
        except BaseException:
            if created and not (target / CURRENT).exists():
                shutil.rmtree(target, ignore_errors=True)  # a failed first write leaves nothing
            raise

    def close(self) -> None:
        """Nothing to release: the vectors are in memory or memory-mapped read-only."""

    def describe(self) -> str:
        return describe_index(self.faiss_index)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of `ids` (quantised kinds give their decoded approximations, as their
        own searches see them)."""
        faiss = _faiss()
        inner = faiss.downcast_index(self.faiss_index)
        if isinstance(inner, faiss.IndexIVF):
            if inner.direct_map.type == faiss.DirectMap.NoMap:
                inner.set_direct_map_type(faiss.DirectMap.Hashtable)
            return np.stack([inner.reconstruct(int(i)) for i in ids]).astype(np.float32)
        return np.asarray(self.faiss_index.reconstruct_batch(
            np.ascontiguousarray(ids, dtype=np.int64)), dtype=np.float32)

    def _write_generation(self, target: Path, generation: int) -> None:
        try:
            with atomic_directory(generations.generation_path(target, generation)) as tmp:
                failpoint("before-vectors")
                write_index(self.faiss_index, tmp / VECTORS)
                failpoint("after-vectors")
                with (tmp / PASSAGES).open("w", encoding="utf-8") as handle:
                    for pid, passage in self.passages.items():
                        handle.write(_passage_json(pid, passage) + "\n")
                if self.lexical is not None:
                    self.lexical.save(tmp / LEXICAL_DIR)
                if self.sentences is not None:
                    self.sentences.save(tmp)
                failpoint("after-passages")
                files = {f.relative_to(tmp).as_posix(): sha256_file(f)
                         for f in sorted(tmp.rglob("*")) if f.is_file()}
                root = self.manifest.root
                if root and os.path.isabs(root):
                    root = os.path.relpath(root, os.path.abspath(target))
                manifest = replace(self.manifest, generation=generation, files=files, root=root)
                (tmp / MANIFEST).write_text(json.dumps(manifest.to_json(), ensure_ascii=False,
                                                       indent=2) + "\n", encoding="utf-8")
                digest = sha256_file(tmp / MANIFEST)
                failpoint("before-rename")
            generations.point_at(target, generation, digest)
        except (OSError, RuntimeError) as exc:  # FAISS reports a failed write as RuntimeError
            with suppress(OSError):
                generations.abandon(target, generation)
            code = getattr(exc, "errno", None)
            reason = os.strerror(code) if code else _faiss_reason(str(exc))
            if not code and "write error" in str(exc).lower() and _disk_full(target):
                reason += " (No space left on device)"
            raise generations.write_error(target, exc, reason) from exc
        self.manifest = replace(manifest, root=self.manifest.root)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True,
             verify: bool = True) -> FaissStore:
        """Open the live generation of index directory `path`.

        `mmap` memory-maps the vectors where the index type allows (read-only: pass False to
        add or remove). `verify` checks every file against the manifest's checksums.
        """
        directory = Path(path)
        for attempt in range(3):
            generation_dir = generations.live_dir(directory)
            try:
                return cls._load_generation(directory, generation_dir, mmap=mmap, verify=verify)
            except FileNotFoundError:
                if attempt == 2 or generation_dir.exists():
                    raise
                # a writer retired this generation while we opened it: read CURRENT again
        raise AssertionError("unreachable")

    @classmethod
    def _load_generation(cls, directory: Path, generation_dir: Path, *, mmap: bool,
                         verify: bool) -> FaissStore:
        pointer = generations.live_pointer(directory)
        manifest_file = generation_dir / MANIFEST
        if (verify and pointer and manifest_file.is_file()
                and sha256_file(manifest_file) != pointer[1]):
            raise IndexLoadError(f"index manifest {manifest_file} is corrupt (checksum mismatch "
                                 f"with {CURRENT}); rebuild the index with `semsearch index`")
        manifest = read_manifest(generation_dir)
        if manifest.root and not os.path.isabs(manifest.root):
            manifest = replace(manifest, root=os.path.normpath(
                os.path.join(os.path.abspath(directory), manifest.root)))
        sentences = manifest.granularity == SENTENCE
        names = sorted({VECTORS, PASSAGES, *manifest.files,
                        *(SENTENCE_FILES if sentences else ())})
        identity = _identities(generation_dir, dict.fromkeys([MANIFEST, *names], (0, 0, 0)))
        for name in names:
            file = generation_dir / name
            if not file.is_file():
                raise IndexLoadError(f"index {directory} is missing {name} (generation "
                                     f"{manifest.generation}); rebuild it with `semsearch index`")
        mapped = mmap and (generation_dir / VECTORS).stat().st_size > MMAP_ABOVE
        for name in names:
            expected = manifest.files.get(name)
            if mapped and name == VECTORS:
                continue  # hashed as it is copied (below)
            if verify and expected and sha256_file(generation_dir / name) != expected:
                raise IndexLoadError(f"index file {generation_dir / name} is corrupt (checksum "
                                     "mismatch); rebuild it with `semsearch index`")
        try:
            if mapped:  # never the file itself: a truncation would be SIGBUS (pinned.py)
                with pinned(generation_dir / VECTORS,
                            manifest.files.get(VECTORS) if verify else None) as copy:
                    faiss_index = load_index(copy or generation_dir / VECTORS,
                                             mmap=copy is not None)
            else:
                faiss_index = load_index(generation_dir / VECTORS)
            with (generation_dir / PASSAGES).open(encoding="utf-8") as handle:
                passages = dict(_passage_from_json(line) for line in handle)
            lexical = LexicalIndex.load(generation_dir / LEXICAL_DIR, len(passages),
                                        mmap_above=MMAP_ABOVE if mmap else None,
                                        mapper=mapped_array) \
                if (generation_dir / LEXICAL_DIR).is_dir() else None
            sentence_vectors = SentenceVectors.load(generation_dir, manifest.model.dimension) \
                if sentences else None
        except FileNotFoundError:
            raise
        except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
            raise IndexLoadError(f"index {directory} is corrupt ({exc}); rebuild it with "
                                 "`semsearch index`") from exc
        live = faiss_index.ntotal - tombstones(faiss_index)
        if live != len(passages) or len(passages) != manifest.passage_count:
            raise IndexLoadError(f"index {directory} is inconsistent: {live} vectors, "
                                 f"{len(passages)} passages, manifest says "
                                 f"{manifest.passage_count}; rebuild it with `semsearch index`")
        if faiss_index.d != manifest.model.dimension:
            raise IndexLoadError(f"index {directory} has {faiss_index.d}-d vectors but its "
                                 f"manifest says {manifest.model.dimension}")
        return cls(manifest, passages, faiss_index, lexical,
                   origin=(directory, manifest.generation), frozen=mmap, _identity=identity,
                   _manifest_sha=pointer[1] if pointer else sha256_file(manifest_file),
                   sentences=sentence_vectors)


def _identities(folder: Path, names: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """(size, inode, mtime in ns) of each named file in `folder`; (-1, -1, -1) if missing."""
    out = {}
    for name in names:
        try:
            stat = os.stat(folder / name)
        except OSError:
            out[name] = (-1, -1, -1)
        else:
            out[name] = (stat.st_size, stat.st_ino, stat.st_mtime_ns)
    return out


def _disk_full(target: Path) -> bool:
    """Whether the file system holding `target` has (almost) no space left: FAISS reports a
    short write without the reason ("... write error in x: 0 != 1 (Success)")."""
    try:
        stats = os.statvfs(target)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20


def _faiss_reason(message: str) -> str:
    """The cause in a FAISS error ("... write error in x: 0 != 1 (File too large)")."""
    found = re.findall(r"\(([^()]+)\)\s*$", message.strip())
    return found[-1] if found else message.strip().splitlines()[-1][:200]


def read_manifest(generation_dir: Path) -> Manifest:
    """Read and validate a generation's `manifest.json`; refuse other formats clearly."""
    file = generation_dir / MANIFEST
    if not file.is_file():
        raise IndexLoadError(f"{generation_dir} is not a semsearch index (no {MANIFEST})")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        version = data["format_version"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise IndexLoadError(f"index manifest {file} is corrupt ({exc}); rebuild the index "
                             "with `semsearch index`") from exc
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise IndexLoadError(f"index {generation_dir} has format version {version}, newer than "
                             f"this semsearch supports ({FORMAT_VERSION}); upgrade semsearch")
    if version < FORMAT_VERSION:
        raise IndexLoadError(f"index {generation_dir} has format version {version}, older than "
                             f"this semsearch reads ({FORMAT_VERSION}); rebuild it with "
                             "`semsearch index`")
    try:
        return Manifest.from_json(data)
    except (KeyError, TypeError) as exc:
        raise IndexLoadError(f"index manifest {file} is corrupt ({exc}); rebuild the index "
                             "with `semsearch index`") from exc


# Live ids are >= 0; hnsw tombstones map to -1, so this selector hides them at search time.
_LIVE_MAX = 2**63 - 1


def _train_sample(vectors: np.ndarray, size: int, seed: int = 1234) -> np.ndarray:
    """A random subset of at most `size` rows, so training cost does not grow with n."""
    if len(vectors) <= size:
        return vectors
    rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size, replace=False))
    return np.ascontiguousarray(vectors[rows])


def _as_vectors(vectors: np.ndarray) -> np.ndarray:
    """float32, C-contiguous, 2-d: the only layout FAISS accepts."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"vectors must be a 2-d array, got shape {array.shape}")
    return array


def build_index(kind: str, vectors: np.ndarray, progress: ProgressFn | None = None,
                *, ids: np.ndarray | None = None) -> Any:
    """Build (training if needed) an inner-product index of `kind` over unit vectors.

    ids default to 0..n-1 and must be >= 0; progress(count) is called after each added batch.
    """
    faiss = _faiss()
    x = _as_vectors(vectors)
    n, d = x.shape
    kind = resolve_kind(kind, n)
    if n < MIN_TRAIN[kind]:
        raise ValueError(f"index type {kind!r} needs at least {MIN_TRAIN[kind]} vectors to "
                         f"train, got {n}; use 'flat' (or 'auto') for small collections")
    ip = faiss.METRIC_INNER_PRODUCT
    index: Any
    if kind == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    elif kind == "hnsw":
        hnsw = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, HNSW_M, ip)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.train(_train_sample(x, MAX_TRAIN))
        index = faiss.IndexIDMap2(hnsw)
    else:
        nlist = nlist_for(n)
        quantizer = faiss.IndexFlatIP(d)
        ivf: Any
        if kind == "sq8":
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                ip)
        else:
            ivf = faiss.IndexIVFPQ(quantizer, d, nlist, pq_subquantizers(d), 8, ip)
            ivf.do_polysemous_training = False  # costly, and unused by inner-product search
            ivf.pq.cp.niter = 15
            ivf.pq.cp.min_points_per_centroid = 1  # small n: train anyway, without the warning
        ivf.cp.niter = 10  # k-means converges well before the default 25 iterations here
        ivf.cp.min_points_per_centroid = 1
        ivf.train(_train_sample(x, min(MAX_TRAIN, max(40 * nlist, 10_000))))
        index = ivf  # faiss's wrapper keeps `quantizer` alive as long as `ivf`
    add_vectors(index, x, np.arange(n, dtype=np.int64) if ids is None else ids, progress)
    set_search_params(index, k=10)
    return index


def add_vectors(index: Any, vectors: np.ndarray, ids: np.ndarray,
                progress: ProgressFn | None = None) -> None:
    """Add vectors under explicit int64 ids (>= 0), in batches, reporting each to progress."""
    x = _as_vectors(vectors)
    labels = np.ascontiguousarray(ids, dtype=np.int64)
    if labels.shape != (len(x),):
        raise ValueError(f"need one id per vector: {len(x)} vectors, ids of shape {labels.shape}")
    if len(labels) and labels.min() < 0:
        raise ValueError("ids must be >= 0 (negative ids mean 'no result' to FAISS)")
    _require_writable(index, "add to")
    for start in range(0, len(x), ADD_BATCH):
        stop = min(start + ADD_BATCH, len(x))
        index.add_with_ids(x[start:stop], labels[start:stop])
        if progress is not None:
            progress(stop - start)


def _inner(index: Any) -> Any:
    """The index inside an IndexIDMap/IndexIDMap2 wrapper (or the index itself), downcast."""
    faiss = _faiss()
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIDMap | faiss.IndexIDMap2):
        return faiss.downcast_index(index.index)
    return index


def kind_of(index: Any) -> str:
    """Which of INDEX_TYPES a FAISS index is (ValueError for anything this module did not make)."""
    faiss = _faiss()
    inner = _inner(index)
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVFPQ):
        return "ivf-pq"
    if isinstance(inner, faiss.IndexIVFScalarQuantizer):
        return "sq8"
    if isinstance(inner, faiss.IndexFlat):
        return "flat"
    raise ValueError(f"not one of the FAISS index kinds {INDEX_TYPES}: {type(inner).__name__}")


def describe_index(index: Any) -> str:
    """A one-line description of a loaded index (for `semsearch info`): kind and parameters."""
    kind = kind_of(index)
    inner = _inner(index)
    n = index.ntotal
    if kind == "flat":
        detail = "exact inner product"
    elif kind == "hnsw":
        dead = tombstones(index)
        detail = (f"HNSW M={inner.hnsw.nb_neighbors(1)} over SQ8, "
                  f"efSearch={inner.hnsw.efSearch}" + (f", {dead:,} removed" if dead else ""))
        n -= dead
    elif kind == "ivf-pq":
        detail = f"IVF nlist={inner.nlist}, PQ{inner.pq.M}x{inner.pq.nbits}, nprobe={inner.nprobe}"
    else:
        detail = f"IVF nlist={inner.nlist}, SQ8, nprobe={inner.nprobe}"
    ro = ", memory-mapped (read-only)" if is_read_only(index) else ""
    return f"{kind} ({detail}; {n:,} vectors of {index.d} dims{ro})"


def set_search_params(index: Any, *, k: int = 10, ef_search: int | None = None,
                      nprobe: int | None = None) -> None:
    """Set efSearch (hnsw) or nprobe (ivf-pq, sq8) for recall@10 >= 0.95; flat has none."""
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    kind = kind_of(index)
    inner = _inner(index)
    if kind == "hnsw":
        inner.hnsw.efSearch = max(ef_search or DEFAULT_EF_SEARCH, k)
    elif kind in ("ivf-pq", "sq8"):
        inner.nprobe = min(nprobe or DEFAULT_NPROBE, inner.nlist)


def search_index(index: Any, queries: np.ndarray, k: int,
           allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) for each query, among `allowed` ids if given (a metadata filter);
    removed hnsw ids are filtered out, not just hidden."""
    faiss = _faiss()
    q = _as_vectors(queries)
    kind = kind_of(index)
    selector: Any = None
    if allowed is not None:
        # a bitmap over the id range: made and consulted faster than IDSelectorBatch's hash set
        # (27 vs 51 ms per flat search over 101k vectors keeping half, AMD EPYC, one run)
        bitmap = np.zeros(int(allowed.max(initial=-1)) + 1, dtype=bool)
        bitmap[allowed] = True
        bits = np.packbits(bitmap, bitorder="little")  # alive until the search returns
        selector = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
    elif kind == "hnsw":
        selector = faiss.IDSelectorRange(0, _LIVE_MAX)
    if selector is None:
        return index.search(q, k)
    if kind in ("ivf-pq", "sq8"):
        params = faiss.SearchParametersIVF(sel=selector, nprobe=_inner(index).nprobe)
    else:
        params = faiss.SearchParameters(sel=selector)
    return index.search(q, k, params=params)


def _hnsw_id_map(index: Any) -> np.ndarray:
    """A writable numpy view of an IndexIDMap2's internal-to-external id table."""
    faiss = _faiss()
    wrapper = faiss.downcast_index(index)
    return faiss.rev_swig_ptr(wrapper.id_map.data(), wrapper.id_map.size())


def tombstones(index: Any) -> int:
    """How many vectors of an hnsw index are removed but still linked in its graph (0 otherwise)."""
    if kind_of(index) != "hnsw" or index.ntotal == 0:
        return 0
    return int(np.count_nonzero(_hnsw_id_map(index) < 0))


def remove_ids(index: Any, ids: np.ndarray | list[int]) -> int:
    """Remove vectors by id from any kind; returns how many were removed.

    FAISS cannot unlink HNSW nodes, so hnsw marks them -1 in the id map (a tombstone): `search`
    filters them with an IDSelector (plain index.search returns -1 in their place), the graph
    still routes through them. Call `compact` when many are dead to reclaim their space.
    """
    labels = np.unique(np.asarray(ids, dtype=np.int64))
    _require_writable(index, "remove from")
    if kind_of(index) != "hnsw":
        return int(index.remove_ids(labels))
    id_map = _hnsw_id_map(index)
    dead = np.isin(id_map, labels[labels >= 0])
    id_map[dead] = -1
    index.construct_rev_map()
    return int(np.count_nonzero(dead))


def compact(index: Any, progress: ProgressFn | None = None) -> Any:
    """Rebuild an hnsw index without its tombstones (others are returned unchanged)."""
    if tombstones(index) == 0:
        return index
    id_map = _hnsw_id_map(index).copy()
    live = np.flatnonzero(id_map >= 0)
    inner = _inner(index)
    vectors = inner.reconstruct_n(0, inner.ntotal)[live]  # SQ8-decoded: re-encodes identically
    return build_index("hnsw", vectors, progress, ids=id_map[live])


def is_read_only(index: Any) -> bool:
    """True if the index's vectors are memory-mapped from its file (FAISS cannot modify those)."""
    faiss = _faiss()
    inner = _inner(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner = faiss.downcast_index(inner.storage)
    if isinstance(inner, faiss.IndexIVF):
        lists: Any = faiss.downcast_InvertedLists(inner.invlists)
        if isinstance(lists, faiss.OnDiskInvertedLists):
            return bool(lists.read_only)
        if isinstance(lists, faiss.ArrayInvertedLists) and lists.codes.size():
            return not lists.codes.at(0).is_owned
        return False
    if isinstance(inner, faiss.IndexFlatCodes):
        return inner.ntotal > 0 and not inner.codes.is_owned
    return False


def _require_writable(index: Any, action: str) -> None:
    """Refuse to modify a memory-mapped index: FAISS would abort the whole process, not raise."""
    if is_read_only(index):
        raise ValueError(f"cannot {action} a memory-mapped index: load it with mmap=False")


def write_index(index: Any, path: Path) -> None:
    """Write an index to a file (the format `load_index` reads, with or without mmap)."""
    faiss = _faiss()
    faiss.write_index(index, str(path))


def load_index(path: Path, mmap: bool = False) -> Any:
    """Read an index; with mmap, its vectors stay in the file's page cache, not private memory.

    All four kinds support it (IO_FLAG_MMAP_IFC maps flat, SQ and HNSW codes and IVF lists in
    place): opening a 1M index then costs a few MB of RSS instead of its size. A mapped index
    is read-only: adding or removing raises ValueError (FAISS itself would abort).
    """
    faiss = _faiss()
    flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
    index = faiss.read_index(str(path), flags)
    kind_of(index)  # a clear ValueError now rather than a confusing one at search time
    return index
