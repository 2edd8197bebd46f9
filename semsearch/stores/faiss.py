"""The on-disk index: generations of FAISS vectors, passages and BM25 weights, with a manifest.

    DIR/CURRENT               the live generation and its manifest's sha256, swapped
                              atomically (rename)
    DIR/.lock                 held by the one writer (flock); says who holds it
    DIR/gen-00000007/
        manifest.json         format, model (name, weights fingerprint, dimension, prompts),
                              index type, counts, sources with content hashes, file checksums
        vectors.faiss         FAISS index with stable passage ids (IndexIDMap2)
        passages.jsonl        one passage per line, with its id
        bm25/                 the lexical index over the same passages (see lexical.py)

A write builds a whole new generation in a temporary directory, fsyncs it, renames it into
place and only then points CURRENT at it, so a reader sees the old index or the new one — never
a mix — and a crash or a full disk at any point leaves the previous index answering as before.
The previous generation is kept one write longer, for readers that opened it just before a swap.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import ann, filters
from semsearch.errors import IndexLoadError, IndexLockedError, IndexWriteError
from semsearch.lexical import LEXICAL_DIR, LexicalIndex
from semsearch.models.encoder import ModelInfo
from semsearch.models.resolve import sha256_file
from semsearch.passages import Passage

FORMAT_VERSION = 2
CURRENT = "CURRENT"
LOCK = ".lock"
CHECKPOINT = ".checkpoint"  # encoded chunks of an unfinished build (see checkpoint.py)
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
PASSAGES = "passages.jsonl"
METRIC = "inner_product"
LEXICAL = "bm25s (k1=1.5, b=0.75) over jieba search-mode words, OpenCC t2s, NFKC, lowercase"
_GEN_PREFIX = "gen-"
_TMP_PREFIX = ".tmp-gen-"

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Manifest:
    """Everything needed to trust an index generation and to query it with the right model."""

    format_version: int
    model: ModelInfo
    metric: str
    index_type: str
    passage_count: int
    corpus_fingerprint: str
    created_at: str
    lexical: str = ""
    encoder: str = ""
    generation: int = 0
    next_id: int = 0
    sources: dict[str, str] = field(default_factory=dict)  # source → sha256 of its file
    files: dict[str, str] = field(default_factory=dict)  # relative path → sha256
    # the folder sources are named from (saved relative to the index directory)
    root: str = ""
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)  # source → reason → lines
    web: list[str] = field(default_factory=list)  # sources cleaned as web pages

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        model = ModelInfo(**data["model"])
        return cls(**{**data, "model": model})


def corpus_fingerprint(sources: dict[str, str]) -> str:
    """sha256 over (source, content hash) pairs: equal corpora, equal fingerprint."""
    digest = hashlib.sha256()
    for source, sha in sorted(sources.items()):
        digest.update(f"{source}\0{sha}\n".encode())
    return digest.hexdigest()


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


def _failpoint(name: str) -> None:
    """Test hook: die here, as a crash would, when SEMSEARCH_FAILPOINT names this point."""
    if os.environ.get("SEMSEARCH_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class VectorIndex:
    """Passages by stable id, their vectors in FAISS, their BM25 index, and the manifest."""

    manifest: Manifest
    passages: dict[int, Passage]
    faiss_index: Any  # faiss.Index (IndexIDMap2 around one of ann.INDEX_TYPES)
    lexical: LexicalIndex | None = None
    origin: tuple[Path, int] | None = None  # (directory, generation) this was loaded from
    _filtered: tuple[tuple[str, int, int], np.ndarray] | None = field(default=None, repr=False)
    _fields: tuple[tuple[int, int], frozenset[str]] | None = field(default=None, repr=False)

    @classmethod
    def create(cls, passages: Sequence[Passage], vectors: np.ndarray, model: ModelInfo,
               sources: dict[str, str], encoder: str = "", index_type: str = "auto",
               progress: ProgressFn | None = None) -> VectorIndex:
        """Index `vectors` (one row per passage; ids 0..n-1) and BM25 over the same passages."""
        if vectors.shape != (len(passages), model.dimension):
            raise ValueError(f"vectors {vectors.shape} do not match "
                             f"{len(passages)} passages × {model.dimension}")
        ids = np.arange(len(passages), dtype=np.int64)
        kind = ann.resolve_kind(index_type, len(passages))
        faiss_index = ann.build_index(kind, vectors, progress, ids=ids)
        manifest = Manifest(
            format_version=FORMAT_VERSION, model=model, metric=METRIC, index_type=kind,
            passage_count=len(passages), corpus_fingerprint=corpus_fingerprint(sources),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"), lexical=LEXICAL,
            encoder=encoder, next_id=len(passages), sources=dict(sources),
        )
        lexical = LexicalIndex.build([p.lexical_text for p in passages], ids)
        return cls(manifest, dict(zip(ids.tolist(), passages, strict=True)), faiss_index, lexical)

    def _allowed(self, where: str | None) -> np.ndarray | None:
        """Ids of the passages a filter expression keeps (None: no filter). The last result is
        kept, so a hybrid query checks each passage once, not once per ranking."""
        if where is None or not where.strip():
            return None
        key = (where, self.manifest.next_id, len(self.passages))
        if self._filtered is not None and self._filtered[0] == key:
            return self._filtered[1]
        predicate = filters.parse(where, self.fields())
        allowed = np.array([pid for pid, p in self.passages.items() if predicate(p)],
                           dtype=np.int64)
        self._filtered = (key, allowed)
        return allowed

    def fields(self) -> frozenset[str]:
        """The names a filter may use here: the passage fields and every metadata key."""
        key = (self.manifest.next_id, len(self.passages))
        if self._fields is None or self._fields[0] != key:
            names = set(filters.FIELDS)
            for passage in self.passages.values():
                names.update(passage.metadata)
            self._fields = (key, frozenset(names))
        return self._fields[1]

    def search(self, vectors: np.ndarray, k: int,
               where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, passage ids) for each query vector, among the passages `where`
        keeps (a filter expression, see `filters`); ids are -1 past the end."""
        allowed = self._allowed(where)
        if allowed is not None and not len(allowed):
            return no_hits(len(vectors))
        k = max(1, min(k, len(self.passages)))
        ann.set_search_params(self.faiss_index, k=k)
        return ann.search(self.faiss_index, vectors, k, allowed)

    @property
    def has_lexical(self) -> bool:
        return self.lexical is not None

    def lexical_search(self, queries: Sequence[str], k: int,
                       where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-`k` (scores, passage ids) per query, among the passages `where` keeps."""
        if self.lexical is None:
            raise IndexLoadError("this index has no lexical (BM25) part; rebuild it with "
                                 "`semsearch index`")
        allowed = self._allowed(where)
        if allowed is not None and not len(allowed):
            return no_hits(len(queries))
        return self.lexical.search(queries, k, allowed)

    def get(self, ids: Iterable[int]) -> dict[int, Passage]:
        """The passages with these ids."""
        return {pid: self.passages[pid] for pid in ids}

    def iter_passages(self) -> Iterator[tuple[int, Passage]]:
        """Every (id, passage), as the Milvus backend streams them (see search.Store)."""
        return iter(list(self.passages.items()))

    def add(self, passages: Sequence[Passage], vectors: np.ndarray,
            sources: dict[str, str], progress: ProgressFn | None = None) -> None:
        """Add passages under new ids, and record their sources' content hashes."""
        start = self.manifest.next_id
        ids = np.arange(start, start + len(passages), dtype=np.int64)
        if len(passages):
            ann.add_vectors(self.faiss_index, vectors, ids, progress)
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
            ann.remove_ids(self.faiss_index, np.fromiter(doomed, dtype=np.int64))
            for pid in doomed:
                del self.passages[pid]
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

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a new generation under directory `path` and make it the live one.

        Raises IndexLockedError if another process is writing there, IndexWriteError if the
        write fails (the previous generation stays live), and IndexLoadError if `path` changed
        since this index was loaded from it (reload and redo the change: nothing is lost).
        """
        target = Path(path)
        _check_target(target)
        created = not target.exists()
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexWriteError(f"could not create {target}: {exc.strerror or exc}") from exc
        try:
            return self._save(target)
        except BaseException:
            if created and not (target / CURRENT).exists():
                shutil.rmtree(target, ignore_errors=True)  # a failed first write leaves nothing
            raise

    def _save(self, target: Path) -> Path:
        with writer_lock(target):
            live = _live_generation(target)
            if self.origin is not None and self.origin[0].resolve() == target.resolve() \
                    and live != self.origin[1]:
                raise IndexLoadError(f"{target} changed since it was loaded (generation "
                                     f"{self.origin[1]} → {live}); load it again and redo "
                                     "the change")
            generation = (live or 0) + 1
            _remove_stale(target, keep=live)
            self._write_generation(target, generation)
            self.origin = (target, generation)
            for legacy in (MANIFEST, VECTORS, PASSAGES, LEXICAL_DIR):  # a format-1 layout
                _remove(target / legacy)
        return target

    def _write_generation(self, target: Path, generation: int) -> None:
        tmp = target / f"{_TMP_PREFIX}{generation:08d}-{os.getpid()}"
        final = target / f"{_GEN_PREFIX}{generation:08d}"
        try:
            tmp.mkdir(mode=0o755)
            _failpoint("before-vectors")
            ann.write_index(self.faiss_index, tmp / VECTORS)
            _failpoint("after-vectors")
            with (tmp / PASSAGES).open("w", encoding="utf-8") as handle:
                for pid, passage in self.passages.items():
                    handle.write(_passage_json(pid, passage) + "\n")
            if self.lexical is not None:
                self.lexical.save(tmp / LEXICAL_DIR)
            _failpoint("after-passages")
            files = {f.relative_to(tmp).as_posix(): sha256_file(f)
                     for f in sorted(tmp.rglob("*")) if f.is_file()}
            root = self.manifest.root
            if root and os.path.isabs(root):
                root = os.path.relpath(root, os.path.abspath(target))
            manifest = replace(self.manifest, generation=generation, files=files, root=root)
            (tmp / MANIFEST).write_text(json.dumps(manifest.to_json(), ensure_ascii=False,
                                                   indent=2) + "\n", encoding="utf-8")
            for file in tmp.rglob("*"):
                _fsync(file)
            _fsync(tmp)
            _failpoint("before-rename")
            os.rename(tmp, final)
            _fsync(target)
            _failpoint("before-current")
            pointer = target / f".{CURRENT}.tmp-{os.getpid()}"
            pointer.write_text(f"{final.name} {sha256_file(final / MANIFEST)}\n", encoding="utf-8")
            _fsync(pointer)
            os.replace(pointer, target / CURRENT)
            _fsync(target)
            _failpoint("after-current")
        except (OSError, RuntimeError) as exc:  # FAISS reports a failed write as RuntimeError
            shutil.rmtree(tmp, ignore_errors=True)
            _remove(target / f".{CURRENT}.tmp-{os.getpid()}")
            if (target / CURRENT).is_file() and _live_generation(target) != generation:
                shutil.rmtree(final, ignore_errors=True)
            code = getattr(exc, "errno", None)
            reason = os.strerror(code) if code else _faiss_reason(str(exc))
            hint = " (disk full?)" if code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or \
                "too large" in reason.lower() or "no space" in reason.lower() else ""
            raise IndexWriteError(f"could not write the index to {target}: {reason}{hint}; the "
                                  "previous index is unchanged") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.manifest = replace(manifest, root=self.manifest.root)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True,
             verify: bool = True) -> VectorIndex:
        """Open the live generation of index directory `path`.

        `mmap` memory-maps the vectors where the index type allows (read-only: pass False to
        add or remove). `verify` checks every file against the manifest's checksums.
        """
        directory = Path(path)
        for attempt in range(3):
            generation_dir = _generation_dir(directory)
            try:
                return cls._load_generation(directory, generation_dir, mmap=mmap, verify=verify)
            except FileNotFoundError:
                if attempt == 2 or generation_dir.exists():
                    raise
                # a writer retired this generation while we opened it: read CURRENT again
        raise AssertionError("unreachable")

    @classmethod
    def _load_generation(cls, directory: Path, generation_dir: Path, *, mmap: bool,
                         verify: bool) -> VectorIndex:
        pointer = _pointer(directory)
        manifest_file = generation_dir / MANIFEST
        if (verify and pointer and manifest_file.is_file()
                and sha256_file(manifest_file) != pointer[1]):
            raise IndexLoadError(f"index manifest {manifest_file} is corrupt (checksum mismatch "
                                 f"with {CURRENT}); rebuild the index with `semsearch index`")
        manifest = read_manifest(generation_dir)
        if manifest.root and not os.path.isabs(manifest.root):
            manifest = replace(manifest, root=os.path.normpath(
                os.path.join(os.path.abspath(directory), manifest.root)))
        for name in sorted({VECTORS, PASSAGES, *manifest.files}):
            file = generation_dir / name
            if not file.is_file():
                raise IndexLoadError(f"index {directory} is missing {name} (generation "
                                     f"{manifest.generation}); rebuild it with `semsearch index`")
            expected = manifest.files.get(name)
            if verify and expected and sha256_file(file) != expected:
                raise IndexLoadError(f"index file {file} is corrupt (checksum mismatch); rebuild "
                                     "it with `semsearch index`")
        try:
            faiss_index = ann.load_index(generation_dir / VECTORS, mmap=mmap)
            with (generation_dir / PASSAGES).open(encoding="utf-8") as handle:
                passages = dict(_passage_from_json(line) for line in handle)
            lexical = LexicalIndex.load(generation_dir / LEXICAL_DIR, len(passages)) \
                if (generation_dir / LEXICAL_DIR).is_dir() else None
        except FileNotFoundError:
            raise
        except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
            raise IndexLoadError(f"index {directory} is corrupt ({exc}); rebuild it with "
                                 "`semsearch index`") from exc
        live = faiss_index.ntotal - ann.tombstones(faiss_index)
        if live != len(passages) or len(passages) != manifest.passage_count:
            raise IndexLoadError(f"index {directory} is inconsistent: {live} vectors, "
                                 f"{len(passages)} passages, manifest says "
                                 f"{manifest.passage_count}; rebuild it with `semsearch index`")
        if faiss_index.d != manifest.model.dimension:
            raise IndexLoadError(f"index {directory} has {faiss_index.d}-d vectors but its "
                                 f"manifest says {manifest.model.dimension}")
        return cls(manifest, passages, faiss_index, lexical,
                   origin=(directory, manifest.generation))


def _faiss_reason(message: str) -> str:
    """The cause in a FAISS error ("... write error in x: 0 != 1 (File too large)")."""
    found = re.findall(r"\(([^()]+)\)\s*$", message.strip())
    return found[-1] if found else message.strip().splitlines()[-1][:200]


def no_hits(rows: int, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Search results with nothing found: scores 0, ids -1."""
    return np.zeros((rows, k), dtype=np.float32), np.full((rows, k), -1, dtype=np.int64)


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


def _pointer(directory: Path) -> tuple[int, str] | None:
    """(live generation, sha256 of its manifest) from CURRENT; None where there is none."""
    pointer = directory / CURRENT
    try:
        fields = pointer.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexLoadError(f"cannot read {pointer}: {exc}") from exc
    name = fields[0] if fields else ""
    digest = fields[1] if len(fields) > 1 else ""
    if (len(fields) != 2 or not name.startswith(_GEN_PREFIX)
            or not name[len(_GEN_PREFIX):].isdigit() or len(digest) != 64):
        raise IndexLoadError(f"{pointer} is corrupt (it says {' '.join(fields)[:40]!r}); it "
                             f"should name a {_GEN_PREFIX}NNNNNNNN directory of {directory}")
    return int(name[len(_GEN_PREFIX):]), digest


def live_pointer(directory: Path) -> tuple[int, str] | None:
    """What CURRENT says — (live generation, its manifest's sha256), None for no index yet —
    for readers that follow an index as it is rewritten (the service)."""
    return _pointer(Path(directory))


def generation_path(directory: Path, generation: int) -> Path:
    """The directory of one generation of index `directory`."""
    return Path(directory) / f"{_GEN_PREFIX}{generation:08d}"


def _live_generation(directory: Path) -> int | None:
    """The number of the generation CURRENT names, or None for a directory without one."""
    pointer = _pointer(directory)
    return pointer[0] if pointer else None


def live_dir(directory: Path) -> Path:
    """The directory of the generation an index directory currently serves."""
    return _generation_dir(directory)


def _generation_dir(directory: Path) -> Path:
    if not directory.is_dir():
        raise IndexLoadError(f"no index at {directory}; build one with "
                             f"`semsearch index PATH... --out {directory}`")
    live = _live_generation(directory)
    if live is None:
        if (directory / MANIFEST).is_file():  # a format-1 index kept its files at the top
            return directory
        raise IndexLoadError(f"{directory} is not a semsearch index (no {CURRENT})")
    return directory / f"{_GEN_PREFIX}{live:08d}"


def _check_target(target: Path) -> None:
    """Refuse to write into a directory that holds something other than an index."""
    if target.exists() and not target.is_dir():
        raise IndexWriteError(f"{target} exists and is not a directory")
    legacy = (target / MANIFEST).is_file()  # a format-1 index: replaced by generations
    if target.is_dir() and not (target / CURRENT).exists() and not legacy:
        # a crashed first write, or an interrupted build's encoded chunks (checkpoint.py)
        ours = (LOCK, _TMP_PREFIX, f".{CURRENT}.tmp-", _GEN_PREFIX, CHECKPOINT)
        others = [p.name for p in target.iterdir() if not p.name.startswith(ours)]
        if others:
            raise IndexWriteError(f"{target} exists and is not a semsearch index (it holds "
                                  f"{', '.join(sorted(others)[:3])}…); refusing to write there")


def _remove_stale(directory: Path, keep: int | None) -> None:
    """Before writing a new generation, delete everything but the live one: leftovers of
    crashed writers (temporaries, generations never made live) and older generations. The live
    one stays as the new one's predecessor for readers that opened it just before the swap.
    Called under the writer lock, so nobody is writing what this removes."""
    for entry in directory.iterdir():
        if entry.name.startswith((_TMP_PREFIX, f".{CURRENT}.tmp-")):
            _remove(entry)
        elif entry.name.startswith(_GEN_PREFIX) and entry.name[len(_GEN_PREFIX):].isdigit():
            number = int(entry.name[len(_GEN_PREFIX):])
            if number != keep:
                _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


_held: dict[Path, int] = {}


@contextmanager
def writer_lock(directory: Path) -> Iterator[None]:
    """Hold the index's writer lock (re-entrant within a process); a second writer gets an
    IndexLockedError naming the holder instead of waiting."""
    if not directory.is_dir():
        raise IndexLoadError(f"no index at {directory}; build one with "
                             f"`semsearch index PATH... --out {directory}`")
    key = directory.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    handle = (directory / LOCK).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IndexLockedError(f"{directory} is being written by {holder}; wait for it to "
                                   "finish and try again") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"semsearch pid {os.getpid()}")
        handle.flush()
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
