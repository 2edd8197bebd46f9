"""The on-disk index: a directory with the FAISS vectors, the passages, and a manifest.

    manifest.json   format version, model (name, weights fingerprint, dimension, prompts),
                    metric, passage count, corpus fingerprint, creation time, file checksums
    vectors.faiss   exact inner-product index over unit vectors (cosine similarity)
    passages.jsonl  one passage per line, line number = vector id
    bm25/           the lexical (BM25) index over the same passages, same ids

Saving writes a complete temporary directory and renames it into place, so a reader sees the
old index or the new one, never a mix. Loading verifies the checksums and the format version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.corpus import Document
from semsearch.errors import IndexLoadError
from semsearch.lexical import LEXICAL_DIR, LexicalIndex
from semsearch.models.encoder import ModelInfo
from semsearch.passages import Passage

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
PASSAGES = "passages.jsonl"
METRIC = "inner_product"
LEXICAL = "bm25s (k1=1.5, b=0.75) over jieba search-mode words, OpenCC t2s, NFKC, lowercase"


@dataclass(frozen=True)
class Manifest:
    """Everything needed to trust an index directory and to query it with the right model."""

    format_version: int
    model: ModelInfo
    metric: str
    index_type: str
    passage_count: int
    corpus_fingerprint: str
    created_at: str
    lexical: str = ""
    encoder: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        model = ModelInfo(**data["model"])
        return cls(**{**data, "model": model})


def corpus_fingerprint(documents: list[Document]) -> str:
    """sha256 over (source, content hash) of every document: equal corpora, equal fingerprint."""
    digest = hashlib.sha256()
    for source, sha in sorted({(d.source, d.sha256) for d in documents}):
        digest.update(f"{source}\0{sha}\n".encode())
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _passage_json(passage: Passage) -> str:
    record = {
        "text": passage.text, "source": passage.source, "paragraph": passage.paragraph,
        "start": passage.start, "end": passage.end, "heading": passage.heading,
        "metadata": passage.metadata,
    }
    return json.dumps(record, ensure_ascii=False)


@dataclass
class VectorIndex:
    """Passages, their vectors in FAISS, their BM25 index, and the manifest describing them."""

    manifest: Manifest
    passages: list[Passage]
    faiss_index: Any  # faiss.Index
    lexical: LexicalIndex | None = None

    @classmethod
    def create(cls, passages: list[Passage], vectors: np.ndarray, model: ModelInfo,
               corpus: str, encoder: str = "") -> VectorIndex:
        """Build an exact inner-product index over `vectors` (one row per passage) and a BM25
        index over the same passages."""
        import faiss

        if vectors.shape != (len(passages), model.dimension):
            raise ValueError(f"vectors {vectors.shape} do not match "
                             f"{len(passages)} passages × {model.dimension}")
        index = faiss.IndexFlatIP(model.dimension)
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        manifest = Manifest(
            format_version=FORMAT_VERSION, model=model, metric=METRIC, index_type="flat",
            passage_count=len(passages), corpus_fingerprint=corpus,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"), lexical=LEXICAL,
            encoder=encoder,
        )
        lexical = LexicalIndex.build([p.lexical_text for p in passages])
        return cls(manifest=manifest, passages=passages, faiss_index=index, lexical=lexical)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, ids) for each query vector; ids are -1 past the end."""
        k = min(k, max(self.faiss_index.ntotal, 1))
        scores, ids = self.faiss_index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return scores, ids

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index to directory `path` atomically (temp dir + rename)."""
        import faiss

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            tmp.chmod(0o755)
            faiss.write_index(self.faiss_index, str(tmp / VECTORS))
            with (tmp / PASSAGES).open("w", encoding="utf-8") as handle:
                for passage in self.passages:
                    handle.write(_passage_json(passage) + "\n")
            if self.lexical is not None:
                self.lexical.save(tmp / LEXICAL_DIR)
            files = {f.relative_to(tmp).as_posix(): _sha256(f)
                     for f in sorted(tmp.rglob("*")) if f.is_file()}
            self.manifest = Manifest.from_json({**self.manifest.to_json(), "files": files})
            (tmp / MANIFEST).write_text(
                json.dumps(self.manifest.to_json(), ensure_ascii=False, indent=2) + "\n",
                encoding="utf-8",
            )
            for file in tmp.rglob("*"):
                if file.is_file():
                    _fsync(file)
            _replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VectorIndex:
        """Open an index directory, verifying format version and file checksums."""
        import faiss

        directory = Path(path)
        manifest = read_manifest(directory)
        for name in sorted({VECTORS, PASSAGES, *manifest.files}):
            file = directory / name
            if not file.is_file():
                raise IndexLoadError(f"index {directory} is missing {name}; rebuild it with "
                                     "`semsearch index`")
            expected = manifest.files.get(name)
            if expected and _sha256(file) != expected:
                raise IndexLoadError(f"index file {file} is corrupt (checksum mismatch); rebuild "
                                     "it with `semsearch index`")
        try:
            faiss_index = faiss.read_index(str(directory / VECTORS))
            passages = [_passage_from_json(line) for line in
                        (directory / PASSAGES).read_text(encoding="utf-8").splitlines()]
            lexical = (LexicalIndex.load(directory / LEXICAL_DIR, len(passages))
                       if (directory / LEXICAL_DIR).is_dir() else None)
        except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
            raise IndexLoadError(f"index {directory} is corrupt ({exc}); rebuild it with "
                                 "`semsearch index`") from exc
        if faiss_index.ntotal != len(passages) or len(passages) != manifest.passage_count:
            raise IndexLoadError(f"index {directory} is inconsistent: {faiss_index.ntotal} "
                                 f"vectors, {len(passages)} passages, manifest says "
                                 f"{manifest.passage_count}; rebuild it with `semsearch index`")
        if faiss_index.d != manifest.model.dimension:
            raise IndexLoadError(f"index {directory} has {faiss_index.d}-d vectors but its "
                                 f"manifest says {manifest.model.dimension}")
        return cls(manifest=manifest, passages=passages, faiss_index=faiss_index, lexical=lexical)


def read_manifest(directory: Path) -> Manifest:
    """Read and validate `manifest.json`; refuse newer formats with a clear message."""
    file = directory / MANIFEST
    if not directory.is_dir():
        raise IndexLoadError(f"no index at {directory}; build one with "
                             f"`semsearch index PATH... --out {directory}`")
    if not file.is_file():
        raise IndexLoadError(f"{directory} is not a semsearch index (no {MANIFEST})")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        version = data["format_version"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise IndexLoadError(f"index manifest {file} is corrupt ({exc}); rebuild the index "
                             "with `semsearch index`") from exc
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise IndexLoadError(f"index {directory} has format version {version}, newer than this "
                             f"semsearch supports ({FORMAT_VERSION}); upgrade semsearch")
    try:
        return Manifest.from_json(data)
    except (KeyError, TypeError) as exc:
        raise IndexLoadError(f"index manifest {file} is corrupt ({exc}); rebuild the index "
                             "with `semsearch index`") from exc


def _passage_from_json(line: str) -> Passage:
    record = json.loads(line)
    return Passage(text=record["text"], source=record["source"], paragraph=record["paragraph"],
                   start=record["start"], end=record["end"], heading=record.get("heading", ""),
                   metadata=record.get("metadata") or {})


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`, replacing an existing index only once the new one is complete."""
    if not target.exists():
        os.replace(new, target)
        return
    if not (target / MANIFEST).is_file() and any(target.iterdir()):
        raise IndexLoadError(f"{target} exists and is not a semsearch index; refusing to "
                             "overwrite it")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
