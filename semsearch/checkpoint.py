"""Resumable encoding: a long `semsearch index` keeps what it has encoded, so a killed or
interrupted job picks up where it stopped.

Passages are encoded in fixed chunks of CHUNK passages, in passage order; each finished chunk is
written atomically to `DIR/chunk-NNNNNN.npy` beside a `meta.json` naming the model, the passages
(a digest of their texts) and the chunk size. A later run over the same passages with the same
model reuses the chunks on disk and encodes only the rest. Because an uninterrupted build encodes
the very same chunks, a resumed build gives the same vectors, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.errors import disk_full

CHUNK = int(os.environ.get("SEMSEARCH_CHECKPOINT_EVERY", "2048"))
META = "meta.json"

ProgressFn = Callable[[int], None]
Encode = Callable[[Sequence[str], ProgressFn | None], np.ndarray]


def passages_digest(texts: Sequence[str]) -> str:
    """sha256 over the passage texts in order: the same passages, the same digest."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def encode_resumable(texts: Sequence[str], encode: Encode, directory: Path | None,
                     model_key: str, dimension: int,
                     progress: ProgressFn | None = None) -> tuple[np.ndarray, int]:
    """Vectors of `texts`, encoded CHUNK at a time; with a `directory`, finished chunks are
    kept there and reused by the next call over the same texts and model. Returns the vectors
    and how many passages were taken from the directory (already encoded)."""
    (out,), reused = encode_parts(texts, encode, directory, model_key, dimension, progress)
    return out, reused


def encode_parts(texts: Sequence[str], encode: Encode, directory: Path | None, model_key: str,
                 dimension: int, progress: ProgressFn | None = None,
                 parts: Sequence[tuple[int, type[np.floating[Any]]]] = (),
                 ) -> tuple[list[np.ndarray], int]:
    """`encode_resumable`, with the vectors of consecutive runs of `texts` kept in arrays of
    their own: `parts` gives each run's (count, dtype); default one float32 array. Sentence
    vectors are kept as float16, the precision their index holds them at: at 101k passages
    their 422k vectors took 648 MB as float32 (benchmarks/memory.py). Checkpoint chunks stay
    float32 whatever the parts, so an interrupted build resumes whichever way it was run."""
    parts = parts or [(len(texts), np.float32)]
    if sum(count for count, _ in parts) != len(texts):
        raise ValueError(f"parts of {[count for count, _ in parts]} for {len(texts)} texts")
    outs = [np.zeros((count, dimension), dtype=dtype) for count, dtype in parts]
    starts = np.cumsum([0] + [count for count, _ in parts]).tolist()

    def keep(begin: int, vectors: np.ndarray) -> None:
        for out, first in zip(outs, starts, strict=False):
            lo, hi = max(begin, first), min(begin + len(vectors), first + len(out))
            if lo < hi:
                out[lo - first:hi - first] = vectors[lo - begin:hi - begin]

    chunks = range(0, len(texts), CHUNK)
    reused = 0
    meta = {"model": model_key, "passages": passages_digest(texts), "count": len(texts),
            "chunk": CHUNK, "dimension": dimension}
    if directory is not None:
        try:
            _prepare(directory, meta)
        except OSError as exc:
            _give_up(directory, exc)
            directory = None
    for number, begin in enumerate(chunks):
        end = min(begin + CHUNK, len(texts))
        file = directory / f"chunk-{number:06d}.npy" if directory is not None else None
        if file is not None and file.is_file():
            try:
                cached = np.load(file)
            except (OSError, ValueError):
                cached = None
            if cached is not None and cached.shape == (end - begin, dimension):
                keep(begin, cached)
                reused += end - begin
                if progress is not None:
                    progress(end - begin)
                continue
        encoded = np.asarray(encode(texts[begin:end], progress), dtype=np.float32)
        keep(begin, encoded)
        if file is not None and directory is not None:
            try:
                _save(file, encoded)
            except OSError as exc:
                _give_up(directory, exc)
                directory = None
    return outs, reused


class CheckpointWarning(UserWarning):
    """Encoded passages could not be kept on disk: the build goes on without a checkpoint."""


def _give_up(directory: Path, exc: OSError) -> None:
    import warnings

    warnings.warn(f"could not keep encoded passages in {directory} ({exc.strerror or exc}"
                  f"{disk_full(exc)}); "
                  "the build goes on, but an interrupted run would start over",
                  CheckpointWarning, stacklevel=3)
    shutil.rmtree(directory, ignore_errors=True)


def _prepare(directory: Path, meta: dict[str, object]) -> None:
    """Keep the chunks in `directory` only if they were made for these passages and model."""
    try:
        found = json.loads((directory / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = None
    if found != meta:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{META}.tmp"
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, directory / META)


def _save(file: Path, vectors: np.ndarray) -> None:
    tmp = file.with_name(f".{file.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            np.save(handle, vectors)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)
    if os.environ.get("SEMSEARCH_FAILPOINT") == f"after-{file.stem}":  # test hook: a crash
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def discard(directory: Path | None) -> None:
    """Remove a checkpoint once the index it was for has been written."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
