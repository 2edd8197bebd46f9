"""The public search object: build an index from files, save it, open it, query it.

    corpus.scan → passages.prepare → Encoder.encode_passages → stores.create → Store
    Index.search → search.search → hits

`Index` pairs a `Store` (a FAISS directory or a Milvus collection: see stores/) with the encoder
that must embed its queries; the encoder is loaded on first dense search, after checking that it
is the model the index was built with.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

import numpy as np

from semsearch import corpus, indexes, paragraphs, sentences, stores
from semsearch.checkpoint import discard, encode_parts
from semsearch.context import Context, check_span, contexts
from semsearch.errors import ModelMismatchError, QueryError, UsageError
from semsearch.models.encoder import Backend, Encoder, ModelInfo, load_encoder
from semsearch.models.resolve import ModelRef, resolve
from semsearch.models.resolve import fingerprint as model_fingerprint
from semsearch.passages import MAX_TOKENS, Passage, Prepared, prepare
from semsearch.search import (
    DEFAULT_FUSION,
    DEFAULT_MODE,
    Fusion,
    Hit,
    Mode,
    Request,
    search,
    search_each,
)
from semsearch.stores.base import Manifest, Store, resolve_kind
from semsearch.stores.sentences import GRANULARITIES, PASSAGE, SENTENCE

# Blend each passage of a paragraph cut in several with the whole paragraph (paragraphs.py):
# dense and hybrid gain on the cross-lingual sets, cost +27-83% tokens encoded (see there)
BLEND_PARAGRAPHS = True
# What new indexes hold: "passage" vectors, or "sentence" vectors beside them (stores/sentences.py)
DEFAULT_GRANULARITY = PASSAGE
QUERY_BACKENDS = ("onnx", "torch")  # engines that embed queries (see _from_documents)

Location = stores.Location


@dataclass(frozen=True)
class UpdateReport:
    """What `Index.build` or `Index.add` did: sources added, replaced, unchanged, gone from
    disk (and whether they were pruned), files skipped and lines dropped (by reason)."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    passages: int = 0
    files: int = 0
    skipped: list[corpus.Skipped] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    pruned: bool = False
    resumed: int = 0  # passages whose vectors an interrupted earlier run had already encoded


@dataclass(frozen=True)
class BuildProgress:
    """Callbacks for long steps: `start(total, what)` at each step (encoding, building the
    index), then `advance(n)` as items of that step finish."""

    start: Callable[[int, str], None]
    advance: Callable[[int], None]


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class Index:
    """A searchable collection: passages with their vectors and the model that embeds queries.
    Usable as a context manager (closes the store: a Milvus connection).

    Thread safety: searches may run in many threads at once while one thread calls `add`,
    `remove` or `save`: each search sees the index wholly before or wholly after a change (a
    readers-writer lock: a change waits for running searches, and new searches wait for it;
    encoding the new passages happens outside the lock). Changes from several threads at once
    are serialised."""

    def __init__(self, store: Store, encoder: Encoder | None = None,
                 model: ModelRef | None = None) -> None:
        self.store = store
        self._encoder = encoder
        self._model = model
        self.report = UpdateReport()  # what the last build or add did
        self._lock = _ReadWriteLock()
        self._changing = threading.RLock()  # one add/remove/save at a time
        self._one_shot = False  # see `open`

    @property
    def manifest(self) -> Manifest:
        """The index's `Manifest` (model, dimension, counts, fingerprints)."""
        return self.store.manifest

    @property
    def passages(self) -> list[Passage]:
        """Every passage (streamed from the store: on Milvus this reads the collection)."""
        with self._lock.reading():
            return [passage for _, passage in self.store.iter_passages()]

    @classmethod
    def build(cls, paths: Iterable[str | os.PathLike[str]], model: str | None = None, *,
              max_tokens: int = MAX_TOKENS, progress: BuildProgress | None = None,
              encoder: Backend | None = None, index_type: str = "auto",
              location: Location | None = None, collection: str | None = None,
              overwrite: bool = False, options: corpus.Options | None = None,
              follow_links: bool = False, workers: int = 1, ray: bool = False,
              granularity: str | None = None) -> Index:
        """Read, clean and split the files under `paths`, embed the passages, index them
        (`index_type`: flat, hnsw, ivf-pq, sq8, or auto to choose by size) and, with a
        `location`, write the index there: a directory (refused if it holds an index, unless
        `overwrite`) or a Milvus collection (replaced). Without one it stays in memory for `save`.
        `encoder` is the inference engine (torch, onnx, onnx-int8); `options` say how to clean
        and which record fields hold text and ids; `report` tells what was read. Building into
        a directory keeps encoded passages in it as they finish, so a rerun after a kill or
        Ctrl-C encodes only the rest (see checkpoint.py). `workers` > 1 encodes in that many
        processes, `ray` on Ray Data actors (see models/parallel.py). `granularity` "sentence"
        also embeds each passage's sentences (stores/sentences.py; default
        DEFAULT_GRANULARITY). A bare name as `location` is an index in the indexes folder (see
        indexes.py)."""
        _check_granularity(granularity, location)
        if location is not None:
            location = indexes.target(location)
            stores.check_new(location, overwrite, collection)
        found = corpus.scan(paths, options=options, follow_links=follow_links)
        index = cls.from_documents(found.documents, model, max_tokens=max_tokens,
                                   progress=progress, encoder=encoder, index_type=index_type,
                                   location=location, collection=collection, overwrite=overwrite,
                                   root=found.root, workers=workers, ray=ray,
                                   granularity=granularity)
        index.report = replace(index.report, files=len(found.files), skipped=found.skipped)
        return index

    @classmethod
    def from_documents(cls, documents: Sequence[corpus.Document], model: str | None = None, *,
                       max_tokens: int = MAX_TOKENS, progress: BuildProgress | None = None,
                       encoder: Backend | None = None, index_type: str = "auto",
                       location: Location | None = None, collection: str | None = None,
                       overwrite: bool = False, root: Path | None = None, workers: int = 1,
                       ray: bool = False, granularity: str | None = None) -> Index:
        """`build` from documents already in memory (e.g. a benchmark's corpus records)."""
        granularity = _check_granularity(granularity, location)
        if not documents:
            raise corpus.CorpusError("no documents to index")
        directory: Path | None = None  # a FAISS index directory to write to
        if location is not None:
            location = indexes.target(location)
            stores.check_new(location, overwrite, collection)
            if not stores.is_milvus(location):
                directory = Path(location)
        existed = directory is not None and directory.exists()
        try:
            resolve_kind(index_type, 0)  # an unknown type is refused before the slow encoding
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        # an existing directory is locked before the slow encoding, not refused after it
        with stores.writer(directory) if existed and directory is not None \
                and directory.is_dir() else nullcontext():
            return cls._from_documents(documents, model, max_tokens, progress, encoder,
                                       index_type, location, collection, root, workers, ray,
                                       directory, existed, granularity)

    @classmethod
    def _from_documents(cls, documents: Sequence[corpus.Document], model: str | None,
                        max_tokens: int, progress: BuildProgress | None,
                        encoder: Backend | None, index_type: str, location: Location | None,
                        collection: str | None, root: Path | None, workers: int, ray: bool,
                        directory: Path | None, existed: bool, granularity: str) -> Index:
        checkpoint = stores.checkpoint_dir(directory) if directory is not None else None
        engine = load_encoder(model, encoder, for_indexing=True)
        with _encoding(engine, workers, ray) as encoding:
            prepared, vectors, resumed, sentence_rows = _embed(
                documents, encoding, max_tokens, progress, checkpoint,
                sentences=granularity == SENTENCE)
        # The int8 (or OpenVINO) body is an indexing engine: queries are embedded as an opened
        # index embeds them (fp32), so a built index answers as the same index saved and opened
        # (the int8 body's batch-wide activation scales would also make a query's vector depend
        # on the queries batched with it). One that is not kept goes now, not after the index is
        # built and saved: OpenVINO's held 414 MB (797 → 383 MB resident after 60 CMRC paragraphs).
        info, backend = engine.info, engine.backend
        reused = engine if backend in QUERY_BACKENDS else None
        del engine, encoding
        passages = prepared.passages
        sources = {d.source: d.sha256 for d in documents}
        if progress is not None:
            kind = resolve_kind(index_type, len(passages))
            progress.start(len(passages), f"building the {kind} index (training first)"
                           if kind in ("ivf-pq", "sq8", "hnsw") else "building the index")
        try:
            store = stores.create(passages, vectors, info, sources,
                                  None if directory else location,  # a directory: save below
                                  collection=collection, encoder=backend,
                                  index_type=index_type,
                                  progress=progress.advance if progress else None,
                                  sentences=sentence_rows)
        except ValueError as exc:  # too few vectors to train the index type asked for
            raise UsageError(str(exc)) from exc
        store.manifest = replace(store.manifest, root=str(root) if root else "",
                                 dropped=prepared.dropped, web=sorted(prepared.web))
        del vectors, sentence_rows  # the store holds them now: not a second copy while saving
        index = cls(store, reused, model=None if reused else _model_for(store, model))
        index.report = UpdateReport(added=list(sources), passages=len(passages),
                                    files=len({d.file for d in documents}),
                                    dropped=dict(prepared.dropped_total()), resumed=resumed)
        if directory is not None:
            try:
                store.save(directory)
            except BaseException:
                if not existed:  # a first write that failed leaves no trace
                    stores.discard_new(directory)
                raise
            discard(stores.checkpoint_dir(directory))
        return index

    @classmethod
    def open(cls, location: Location | None = None, model: str | None = None, *,
             collection: str | None = None, writable: bool = False,
             one_shot: bool = False) -> Index:
        """Open an index: a name in the indexes folders (see indexes.py), a FAISS directory or
        a Milvus URI (./x.db for Milvus Lite,
        http://host:19530 for a server; `collection` default semsearch). Default: the
        SEMSEARCH_INDEX variable, else the seeds index shipped with semsearch. `model` must be
        the one the index was built with, and defaults to it. `writable` loads FAISS vectors
        into memory so that `add` and `remove` can change them (otherwise they may be
        memory-mapped, read-only). `one_shot`: a few queries, then the process ends (the CLI):
        the query encoder starts without repacking its weights (see models/onnx.py)."""
        store = stores.open_store(location, collection=collection, writable=writable)
        index = cls(store, model=_model_for(store, model))
        index._one_shot = one_shot
        return index

    def add(self, paths: Iterable[str | os.PathLike[str]], *, max_tokens: int = MAX_TOKENS,
            progress: BuildProgress | None = None, options: corpus.Options | None = None,
            follow_links: bool = False, prune: bool = False) -> UpdateReport:
        """Index new files, re-index changed ones (by content hash), skip unchanged ones.

        Sources are named from the index's root, so a file has one name however its path is
        typed. Sources under `paths` that are no longer on disk are reported in `gone`, and
        removed with `prune`."""
        self._check_writable()
        with self._changing:
            return self._add(paths, max_tokens, progress, options, follow_links, prune)

    def _add(self, paths: Iterable[str | os.PathLike[str]], max_tokens: int,
             progress: BuildProgress | None, options: corpus.Options | None,
             follow_links: bool, prune: bool) -> UpdateReport:
        paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        manifest = self.manifest
        root = Path(manifest.root) if manifest.root else None
        found = corpus.scan(paths, root=root, options=options, follow_links=follow_links)
        root = root or found.root
        known = manifest.sources
        by_source = {doc.source: doc for doc in found.documents}
        unchanged = [s for s, doc in by_source.items() if known.get(s) == doc.sha256]
        replaced = [s for s in by_source if s in known and s not in unchanged]
        scopes = [corpus.source_name(Path(p), root) for p in paths]
        unread = {corpus.source_name(Path(skip.path.rstrip("/")), root) for skip in found.skipped}
        gone = sorted(s for s in known if s not in by_source and corpus.in_scope(s, scopes)
                      and not corpus.in_scope(s, unread))
        fresh = [d for d in found.documents if d.source not in unchanged]
        with_sentences = manifest.granularity == SENTENCE
        prepared, vectors, _, sentence_rows = _embed(fresh, self.encoder, max_tokens, progress,
                                                     sentences=with_sentences)
        doomed = replaced + (gone if prune else [])
        with self._lock.writing():
            self.store.remove_sources(doomed)
            self.store.manifest = _noted(self.store.manifest, doomed, prepared, root)
            fresh_sources = {d.source: d.sha256 for d in fresh}
            if with_sentences:
                self.store.add(prepared.passages, vectors, fresh_sources,
                               sentences=sentence_rows)  # type: ignore[call-arg]
            else:
                self.store.add(prepared.passages, vectors, fresh_sources)
        self.report = UpdateReport(
            added=[s for s in by_source if s not in known], replaced=replaced,
            unchanged=unchanged, passages=len(prepared.passages), files=len(found.files),
            skipped=found.skipped, dropped=dict(prepared.dropped_total()), gone=gone,
            pruned=prune)
        return self.report

    def _check_writable(self) -> None:
        if self.store.read_only:
            raise UsageError("this index was opened read-only (memory-mapped); open it with "
                             "semsearch.open(path, writable=True) to add or remove")

    def remove(self, source: str) -> int:
        """Remove every passage of `source` (a name as indexed); returns how many went."""
        if source not in self.manifest.sources:
            known = ", ".join(sorted(self.manifest.sources)[:5]) or "none"
            raise QueryError(f"no source {source!r} in this index (sources: {known}"
                             f"{', …' if len(self.manifest.sources) > 5 else ''})")
        self._check_writable()
        with self._changing, self._lock.writing():
            count = self.store.remove_sources([source])
            self.store.manifest = _noted(self.store.manifest, [source], None, None)
        return count

    def save(self, path: str | os.PathLike[str] | None = None) -> str:
        """Make the index durable and return where it is: a FAISS index is written to
        directory `path` (default: where it was opened from), atomically; a Milvus one is
        already written, so this commits and flushes it. A bare name is a directory in the
        indexes folder (see indexes.py)."""
        with self._changing, self._lock.reading():  # searches go on while it is written
            return self.store.save(None if path is None else indexes.target(path))

    def close(self) -> None:
        """Release the store (a Milvus connection; nothing for FAISS)."""
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    @property
    def encoder(self) -> Encoder:
        """The query encoder, loaded on first use and checked against the manifest."""
        if self._encoder is None:
            encoder = load_encoder(self._model or self.manifest.model.name,
                                   one_shot=self._one_shot)
            recorded = self.manifest.model
            if (encoder.info.dimension != recorded.dimension
                    or encoder.info.fingerprint != recorded.fingerprint):
                raise ModelMismatchError(_mismatch(recorded, encoder.info.name,
                                                   encoder.info.fingerprint,
                                                   encoder.info.dimension, ""))
            self._encoder = encoder
        return self._encoder

    def query_words(self, query: str) -> list[str]:
        """The query's words as this index's BM25 reads them (folded: a traditional query gives
        simplified words), longest first: what to highlight in a hit's folded text."""
        return sorted(set(self.store.query_words(query)), key=len, reverse=True)

    def search(self, query: str, k: int = 5, mode: Mode = DEFAULT_MODE,
               fusion: Fusion = DEFAULT_FUSION, where: str | None = None, *,
               context: int = 0, timeout: float | None = None) -> list[Hit]:
        """The `k` passages most similar to `query`, best first (see `search_batch`)."""
        return self.search_batch([query], k, mode, fusion, where, context=context,
                                 timeout=timeout)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5, mode: Mode = DEFAULT_MODE,
                     fusion: Fusion = DEFAULT_FUSION, where: str | None = None, *,
                     context: int = 0, timeout: float | None = None) -> list[list[Hit]]:
        """`search` for many queries at once (one encoder call, one call per ranking).

        `score` is the cosine similarity in `dense` mode, the BM25 score in `bm25` mode and the
        fused score in `hybrid` mode. True duplicates are collapsed into the best one. `where`
        keeps only passages matching a filter expression (see `filters`), e.g.
        `source == "a.txt" and paragraph > 2`. `context` > 0 gives each hit its `context`:
        that many passages before and after it in its document (see `Index.context`).
        `timeout`: SearchTimeoutError once that many seconds have passed (checked between
        stages, so the work stops there).
        """
        check_span(context, context)
        with self._lock.reading():
            results = search(self.store, lambda: self.encoder, queries, k, mode, fusion, where,
                             timeout)
            if not context:
                return results
            flat = [hit for hits in results for hit in hits]
            found = iter(contexts(self.store, [(h.id, h) for h in flat], context, context))
            return [[replace(hit, context=next(found)) for hit in hits] for hits in results]

    def search_each(self, requests: Sequence[Request], *, context: Sequence[int] = (),
                    timeout: float | None = None) -> list[list[Hit] | Exception]:
        """Independent searches answered together (the service's micro-batches): each
        request's hits, as `search` gives them, or the exception it alone raises; one encoder
        call for all of them (see `search.search_each`). `context[n]` > 0 gives request n's
        hits their context."""
        spans = list(context) + [0] * (len(requests) - len(context))
        with self._lock.reading():
            answers = search_each(self.store, lambda: self.encoder, requests, timeout)
            for n, span in enumerate(spans):
                found = answers[n]
                if not span or isinstance(found, Exception):
                    continue
                try:
                    check_span(span, span)
                    around = contexts(self.store, [(h.id, h) for h in found], span, span)
                except Exception as exc:  # this request's own answer
                    answers[n] = exc
                    continue
                answers[n] = [replace(h, context=c) for h, c in zip(found, around, strict=True)]
            return answers

    def context(self, hit: Hit, before: int = 1, after: int = 1) -> Context:
        """The passages around `hit` in its document, in reading order and merged into one
        text with its offsets: up to `before` passages before it and `after` after it (the
        hit's own included; fewer at the document's edges). A record's context is the record
        itself: a record is a document of its own."""
        if not isinstance(hit, Hit):
            raise QueryError(f"context needs a hit from this index's search, not "
                             f"{type(hit).__name__}")
        with self._lock.reading():
            return contexts(self.store, [(hit.id, hit)], before, after)[0]


def _mismatch(recorded: ModelInfo, name: str, weights: str, dimension: int | None,
              where: str) -> str:
    """The one message for "this model is not the one the index was built with"."""
    given = f"{name}{where} (weights {weights[:12]}" + \
        (f", dim {dimension})" if dimension is not None else ")")
    return (f"the index was built with model {recorded.name} (weights "
            f"{recorded.fingerprint[:12]}, dim {recorded.dimension}) but the model given is "
            f"{given}; query with the same model or rebuild the index with "
            f"`semsearch index ... --model {name}`")


def _model_for(store: Store, model: str | None) -> ModelRef:
    """The model to query `store` with (default: the one it records), refused early with
    ModelMismatchError if its local weights are not the ones the index was built with."""
    recorded = store.manifest.model
    ref = resolve(model or recorded.name)
    if ref.is_local:
        found = model_fingerprint(Path(ref.location))
        if found != recorded.fingerprint:
            raise ModelMismatchError(_mismatch(recorded, model or ref.name, found, None,
                                               f" at {ref.location}"))
    return ref


def _encoding(engine: Encoder, workers: int, ray: bool) -> AbstractContextManager[Encoder]:
    """What encodes the passages: `engine` itself, or worker processes or Ray actors running
    the same model (models/parallel.py), stopped when the block ends."""
    if not ray and workers == 1:
        return nullcontext(engine)
    from semsearch.models import parallel

    if ray:
        return parallel.ray_encoder(engine, workers)
    return parallel.pool_encoder(engine, workers)


def _two_steps(progress: BuildProgress, passages: int, paragraphs: int,
               sentences: int = 0) -> Callable[[int], None]:
    """Progress of encoding `passages` texts, then `paragraphs` whole paragraphs and
    `sentences` sentences, as steps, so the passages counted are the passages the summary names
    (the paragraphs, encoded to be blended into their passages, were counted as passages: 1,810
    shown against 1,665)."""
    steps = [(passages, "encoding passages"),
             *([(paragraphs, "encoding whole paragraphs (blended into their passages)")]
               if paragraphs else []),
             *([(sentences, "encoding sentences (a passage's best sentence scores with it)")]
               if sentences else [])]
    at, done = 0, 0
    progress.start(*steps[0])

    def advance(n: int) -> None:
        nonlocal at, done
        while n > 0:
            step = min(n, steps[at][0] - done)
            if step > 0:
                progress.advance(step)
                done, n = done + step, n - step
            if done >= steps[at][0]:
                if at + 1 == len(steps):
                    return
                at, done = at + 1, 0
                progress.start(*steps[at])

    return advance


def _check_granularity(granularity: str | None, location: Location | None) -> str:
    """The granularity to build with (default DEFAULT_GRANULARITY); UsageError for an unknown
    one."""
    chosen = granularity or DEFAULT_GRANULARITY
    if chosen not in GRANULARITIES:
        raise UsageError(f"unknown granularity {granularity!r}; choose one of "
                         f"{', '.join(GRANULARITIES)}")
    return chosen


def sentence_rows(passages: Sequence[Passage]) -> tuple[np.ndarray, list[str]]:
    """The (passage position, start, end) of each sentence to embed — those of passages of two
    or more sentences; offsets into the passage's text — and the sentences' texts."""
    rows: list[tuple[int, int, int]] = []
    texts: list[str] = []
    for n, passage in enumerate(passages):
        spans = sentences.split(passage.text)
        if len(spans) < 2:
            continue
        for start, end in spans:
            rows.append((n, start, end))
            texts.append(passage.text[start:end])
    return np.array(rows, dtype=np.int64).reshape(-1, 3), texts


def _embed(documents: Sequence[corpus.Document], encoder: Encoder, max_tokens: int,
           progress: BuildProgress | None, checkpoint: Path | None = None, *,
           sentences: bool = False,
           ) -> tuple[Prepared, np.ndarray, int, tuple[np.ndarray, np.ndarray] | None]:
    """Passages of `documents` (with what cleaning dropped), their vectors (of each passage's
    `embedded_text`: heading and text), how many of those a `checkpoint` already held, and
    with `sentences` the sentence rows and vectors (see `sentence_rows`)."""
    budget = min(max_tokens, encoder.max_tokens - 16)
    prepared = prepare(documents, encoder.count_tokens, budget)
    info = encoder.info
    split = paragraphs.split_paragraphs(prepared.passages) if BLEND_PARAGRAPHS else []
    rows, sentence_texts = sentence_rows(prepared.passages) if sentences else (None, [])
    texts = [p.embedded_text for p in prepared.passages] + [p.text for p in split] \
        + sentence_texts
    count = len(prepared.passages)
    # sentence vectors as float16 from the start: their index keeps no more (stores/sentences.py)
    (vectors, sentence_vectors), resumed = encode_parts(
        texts, encoder.encode_passages, checkpoint,
        f"{info.name} {info.fingerprint} {encoder.backend} {budget} heading-line"
        f"{' paragraph-blend' if split else ''}{' sentences' if sentences else ''}",
        info.dimension,
        _two_steps(progress, count, len(split), len(sentence_texts)) if progress else None,
        [(count + len(split), np.float32), (len(sentence_texts), np.float16)])
    del texts, sentence_texts
    passage_vectors = vectors[:count]
    if split:
        passage_vectors = paragraphs.blend(passage_vectors, split,
                                           vectors[count:count + len(split)])
    found = None
    if rows is not None:
        found = (rows, sentence_vectors)
    return prepared, passage_vectors, min(resumed, count), found


def _noted(manifest: Manifest, removed: Sequence[str], prepared: Prepared | None,
           root: Path | None) -> Manifest:
    """The manifest with the dropped-line counts and web sources of `removed` sources gone and
    those of `prepared` recorded, and the root recorded if it had none."""
    gone = set(removed) | (set(prepared.dropped) | set(prepared.web) if prepared else set())
    dropped = {s: r for s, r in manifest.dropped.items() if s not in gone}
    web = [s for s in manifest.web if s not in gone]
    if prepared is not None:
        dropped.update(prepared.dropped)
        web.extend(prepared.web)
    return replace(manifest, dropped=dropped, web=sorted(set(web)),
                   root=manifest.root or (str(root) if root else ""))


def build(paths: Iterable[str | os.PathLike[str]], model: str | None = None, *,
          progress: BuildProgress | None = None, encoder: Backend | None = None,
          index_type: str = "auto", options: corpus.Options | None = None) -> Index:
    """Build an in-memory index from files and directories (see `Index.build`)."""
    return Index.build(paths, model, progress=progress, encoder=encoder, index_type=index_type,
                       options=options)


def open(location: Location | None = None, model: str | None = None, *,
         collection: str | None = None, writable: bool = False) -> Index:
    """Open an index: a name (`open("mine")`, see indexes.py), a directory, a Milvus URI, or
    by default the seeds index (see `Index.open`)."""
    return Index.open(location, model, collection=collection, writable=writable)


def load(path: Location | None = None, model: str | None = None, *,
         writable: bool = False) -> Index:
    """Open a saved index (`open` by its older name); without a path, the seeds index."""
    return Index.open(path, model, writable=writable)


def connect(uri: Location | None = None, collection: str | None = None,
            model: str | None = None) -> Index:
    """Open an index in Milvus: `semsearch.connect("./x.db")` (default: SEMSEARCH_MILVUS_URI)."""
    from semsearch.stores.milvus import resolve_uri

    return Index.open(resolve_uri(uri), model, collection=collection)
