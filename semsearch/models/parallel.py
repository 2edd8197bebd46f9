"""Encoding passages outside this process: several worker processes on one machine, or Ray.

Both wrap the encoder indexing already uses: queries and token counts stay in this process,
only `encode_passages` is handed out, so checkpoints, BM25 and the store work unchanged.

- `PoolEncoder` (`semsearch index --workers N`): N spawned processes, each with its own ONNX
  session of cores/N threads. This process tokenises and forms the very batches a single
  encoder would (`OnnxEncoder.encode_passages` with `run`), the workers only run them, in order.
- `RayEncoder` (`--ray`, the `ray` extra): Ray Data `map_batches` over encoder actors, on the
  Ray that `ray.init()` finds (a local one, or the cluster `RAY_ADDRESS` names); the vectors
  come back here, in order, and go to the store (FAISS directory or Milvus) like any others.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semsearch.errors import MissingDependencyError, UsageError
from semsearch.models.encoder import Encoder, ModelInfo, OnnxEncoder, ProgressFn, load_encoder

RAY_BATCH = 256  # passages per Ray Data batch (each actor sorts and batches them again)


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _check(encoder: Encoder, workers: int) -> OnnxEncoder:
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    if not isinstance(encoder, OnnxEncoder):
        raise UsageError("encoding in several processes needs the ONNX encoder "
                         f"(this one is {encoder.backend}); drop --encoder torch")
    return encoder


@dataclass
class _Delegated:
    """The parts of an Encoder that stay in this process."""

    local: OnnxEncoder
    workers: int
    info: ModelInfo = field(init=False)
    max_tokens: int = field(init=False)
    backend: str = field(init=False)  # the same vectors: a checkpoint stays valid either way

    def __post_init__(self) -> None:
        self.info, self.max_tokens = self.local.info, self.local.max_tokens
        self.backend = self.local.backend

    @property
    def location(self) -> str:
        """The model directory the workers load (the local encoder's own)."""
        return str(self.local.runner.model_dir)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        return self.local.encode_queries(queries)

    def encode_passages(self, passages: Sequence[str],
                        progress: ProgressFn | None = None) -> np.ndarray:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def __enter__(self) -> _Delegated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (idempotent)."""


# --- worker processes ------------------------------------------------------------------------

_worker: OnnxEncoder | None = None  # the encoder of this worker process


def _start_worker(location: str, backend: str, threads: int) -> None:
    global _worker
    encoder = load_encoder(location, backend, threads=threads)  # type: ignore[arg-type]
    assert isinstance(encoder, OnnxEncoder)
    _worker = encoder


def _run_batch(ids: list[list[int]]) -> np.ndarray:
    assert _worker is not None, "worker not started"
    return np.asarray(_worker.runner.embed_ids(ids), dtype=np.float32)


@dataclass
class PoolEncoder(_Delegated):
    """`encode_passages` on `workers` spawned processes; everything else as `local`."""

    _pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.location, self.local.backend, _threads(self.workers)))
        return self._pool

    def encode_passages(self, passages: Sequence[str],
                        progress: ProgressFn | None = None) -> np.ndarray:
        """The vectors `local.encode_passages` gives, its batches run by the workers (`map`
        keeps their order and every worker busy; a worker's failure is raised here)."""
        return self.local.encode_passages(
            passages, progress, run=lambda work: self._executor().map(_run_batch, work))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def pool_encoder(encoder: Encoder, workers: int) -> PoolEncoder:
    """`encoder`'s passages encoded by `workers` processes loading the same model."""
    return PoolEncoder(local=_check(encoder, workers), workers=workers)


# --- Ray -------------------------------------------------------------------------------------


class _RayActor:
    """One encoder per Ray actor, loaded once; `map_batches` calls it with text batches."""

    def __init__(self, location: str, backend: str, threads: int) -> None:
        self.encoder = load_encoder(location, backend, threads=threads)  # type: ignore[arg-type]

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vectors = self.encoder.encode_passages(list(batch["text"]))
        return {"row": batch["row"], "vector": vectors}


@dataclass
class RayEncoder(_Delegated):
    """`encode_passages` as a Ray Data pipeline: `workers` encoder actors, `map_batches`."""

    threads: int = 1
    started: bool = False

    def encode_passages(self, passages: Sequence[str],
                        progress: ProgressFn | None = None) -> np.ndarray:
        import ray

        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
            self.started = True
        data = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(passages)])
        encoded = data.map_batches(
            _RayActor, batch_size=RAY_BATCH, concurrency=self.workers, num_cpus=self.threads,
            fn_constructor_kwargs={"location": self.location, "backend": self.local.backend,
                                   "threads": self.threads})
        out = np.zeros((len(passages), self.local.info.dimension), dtype=np.float32)
        for batch in encoded.iter_batches(batch_format="numpy", batch_size=None):
            rows = np.asarray(batch["row"], dtype=np.int64)
            out[rows] = np.asarray(batch["vector"], dtype=np.float32)
            if progress is not None:
                progress(len(rows))
        return out

    def close(self) -> None:
        if self.started:
            import ray

            ray.shutdown()
            self.started = False


def ray_encoder(encoder: Encoder, workers: int) -> RayEncoder:
    """`encoder`'s passages encoded on Ray by `workers` actors loading the same model
    directory (which every Ray node must be able to read); on a local Ray (no RAY_ADDRESS)
    the actors share this machine's CPUs."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("Ray", "ray") from exc
    return RayEncoder(local=_check(encoder, workers), workers=workers,
                      threads=1 if os.environ.get("RAY_ADDRESS") else _threads(workers))
