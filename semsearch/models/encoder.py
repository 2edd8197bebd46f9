"""Text → L2-normalised vectors, with the model's own query/passage prompts.

`load_encoder` resolves a model (see `resolve`) and loads it with one of two backends:
sentence-transformers on torch (any model; importing it alone costs seconds), or the ONNX export
that provisioning writes beside the weights (onnxruntime + tokenizers, no torch: what a CLI query
uses). Vectors are float32 and unit length, so inner product is cosine similarity.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from semsearch.errors import ModelError
from semsearch.models.resolve import PROVISION_HINT, ModelRef, fingerprint, hub_snapshot, resolve

ProgressFn = Callable[[int], None]
# token-id batches in → their vectors out, in the same order (OnnxEncoder.encode_passages)
BatchRun = Callable[[Iterator[list[list[int]]]], Iterable[np.ndarray]]
BATCH_SIZE = 32
# ONNX batches: at most this many padded tokens (and BATCH_SIZE texts). Long passages then go
# 8 to a batch instead of 32, and the activations stay in cache: 1.2× the passages/s of
# 32-text batches on real text, same vectors (benchmarks/throughput.py)
BATCH_TOKENS: int | None = 2048
Backend = Literal["auto", "torch", "onnx", "onnx-int8", "openvino"]
BACKENDS: tuple[Backend, ...] = ("auto", "torch", "onnx", "onnx-int8", "openvino")
DEFAULT_MAX_TOKENS = 512  # for a model that does not state its maximum length (BERT's)
PROMPT_NAMES = ("query", "passage")  # the prompts an encoder uses, when the model has them


@dataclass(frozen=True)
class ModelInfo:
    """What an index records about the model that embedded it."""

    name: str
    fingerprint: str
    dimension: int
    prompts: dict[str, str] = field(default_factory=dict)


class Encoder(Protocol):
    """What indexing and search need from a model, whichever backend runs it."""

    info: ModelInfo
    max_tokens: int
    backend: str

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, passages: Sequence[str],
                        progress: ProgressFn | None = None) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class _Prompted:
    """encode_queries / encode_passages in terms of one `_encode(texts, prompt_name)`."""

    def _encode(self, texts: Sequence[str], prompt_name: str,
                progress: ProgressFn | None = None) -> np.ndarray:
        raise NotImplementedError

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Embed search queries (with the model's query prompt, if it has one)."""
        return self._encode(queries, "query")

    def encode_passages(self, passages: Sequence[str],
                        progress: ProgressFn | None = None) -> np.ndarray:
        """Embed passages (with the passage prompt), reporting each finished batch."""
        return self._encode(passages, "passage", progress)


@dataclass
class TorchEncoder(_Prompted):
    """A sentence-transformers model on torch: works for any model."""

    info: ModelInfo
    model: Any  # sentence_transformers.SentenceTransformer
    max_tokens: int
    backend: str = "torch"

    def _encode(self, texts: Sequence[str], prompt_name: str,
                progress: ProgressFn | None = None) -> np.ndarray:
        name = prompt_name if prompt_name in self.info.prompts else None
        out = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        step = BATCH_SIZE * 4
        for begin in range(0, len(texts), step):
            chunk = list(texts[begin : begin + step])
            vectors = self.model.encode(chunk, prompt_name=name, batch_size=BATCH_SIZE,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
            out[begin : begin + len(chunk)] = vectors
            if progress is not None:
                progress(len(chunk))
        return out

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` (without special tokens or prompt)."""
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class OnnxEncoder(_Prompted):
    """The provisioned ONNX export on onnxruntime: same vectors, no torch import.

    Texts are sorted by token count before batching (length bucketing), so a batch pads little;
    with `batch_tokens` set, a batch holds as many texts as fit that many (padded) tokens, at
    most `batch_size`, instead of always `batch_size`.
    """

    info: ModelInfo
    runner: Any  # semsearch.models.onnx.OnnxRunner
    max_tokens: int
    backend: str = "onnx"
    batch_size: int = BATCH_SIZE
    batch_tokens: int | None = BATCH_TOKENS

    def _encode(self, texts: Sequence[str], prompt_name: str,
                progress: ProgressFn | None = None, run: BatchRun | None = None) -> np.ndarray:
        prompt = self.info.prompts.get(prompt_name, "")
        ids = self.runner.ids([prompt + t for t in texts])
        out = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        groups = batches([len(x) for x in ids], self.batch_size, self.batch_tokens)
        work = ([ids[i] for i in rows] for rows in groups)
        # queries go to the runner's query session once `warm` loaded one (the service)
        embed = (partial(self.runner.embed_ids, query=True)
                 if prompt_name == "query" and getattr(self.runner, "query_session", None)
                 is not None else self.runner.embed_ids)
        embedded = run(work) if run is not None else map(embed, work)
        for rows, vectors in zip(groups, embedded, strict=True):
            out[rows] = vectors
            if progress is not None:
                progress(len(rows))
        return out

    def encode_passages(self, passages: Sequence[str], progress: ProgressFn | None = None, *,
                        run: BatchRun | None = None) -> np.ndarray:
        """Embed passages (with the passage prompt), reporting each finished batch; `run`
        embeds the token-id batches elsewhere (in order), e.g. in worker processes."""
        return self._encode(passages, "passage", progress, run)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` (without special tokens or prompt)."""
        return len(self.runner.tokenizer.encode(text, add_special_tokens=False).ids)


def batches(lengths: Sequence[int], size: int = BATCH_SIZE,
            tokens: int | None = None) -> list[np.ndarray]:
    """Row numbers of each batch, shortest texts first: `size` rows a batch, or with `tokens`,
    as many rows (up to `size`, at least one) as keep rows × longest length within `tokens`."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    if tokens is None:
        return [order[begin : begin + size] for begin in range(0, len(order), size)]
    out: list[np.ndarray] = []
    begin = 0
    while begin < len(order):
        end = begin + 1
        while (end < len(order) and end - begin < size
               and (end + 1 - begin) * lengths[order[end]] <= tokens):
            end += 1
        out.append(order[begin:end])
        begin = end
    return out


def _model_fingerprint(ref: ModelRef) -> str:
    if ref.is_local:
        return fingerprint(Path(ref.location))
    snapshot = hub_snapshot(ref.location)
    return fingerprint(snapshot) if snapshot else f"hub:{ref.name}"


def _backend(requested: Backend | None) -> Backend:
    # SEMSEARCH_BACKEND: the older name, from before the store options were called backends too
    value = (requested or os.environ.get("SEMSEARCH_ENCODER")
             or os.environ.get("SEMSEARCH_BACKEND") or "auto")
    if value not in BACKENDS:
        raise ModelError(f"unknown encoder backend {value!r}; choose one of {', '.join(BACKENDS)}")
    return value


def load_encoder(model: str | ModelRef | None = None, backend: Backend | None = None, *,
                 threads: int | None = None, for_indexing: bool = False,
                 one_shot: bool = False) -> Encoder:
    """Load the model `model` resolves to; raise ModelError with a way out if it cannot.

    `backend` (or `SEMSEARCH_ENCODER`; `--encoder` on the command line): `auto` uses the ONNX
    export when the model directory has one and torch otherwise — `for_indexing`, the path
    `indexing_backend` chooses for this CPU (bf16 on OpenVINO, the checked int8 body or the
    fp32 one: models/sessions.py); `onnx-int8` runs the int8 body, `onnx` the fp32 one,
    `openvino` the fp32 body on OpenVINO in bf16 (the `openvino` extra; models/openvino.py).
    `threads`: the ONNX session's threads (default: every CPU). `one_shot`: a few queries and
    the process ends, so the ONNX session skips repacking its weights (see onnx.py).
    """
    ref = model if isinstance(model, ModelRef) else resolve(model)
    chosen = _backend(backend)
    if chosen != "torch" and ref.is_local:
        from semsearch.models import onnx

        path = Path(ref.location)
        if onnx.has_export(path):
            if chosen == "auto" and for_indexing:
                chosen = indexing_backend(path)
            return _load_onnx(ref, int8=chosen == "onnx-int8", threads=threads,
                              prepack=not one_shot, openvino=chosen == "openvino")
    if chosen in ("onnx", "onnx-int8", "openvino"):
        raise ModelError(f"model {ref.name} has no ONNX export; run `semsearch provision` "
                         "(default model) or use --encoder torch")
    return _load_torch(ref)


def indexing_backend(model_dir: Path) -> Backend:
    """The backend `auto` embeds passages with for the ONNX export in `model_dir` on this CPU
    (sessions.indexing_path: what `semsearch provision` measured, else what the CPU runs)."""
    return indexing_choice(model_dir)[0]


def indexing_choice(model_dir: Path) -> tuple[Backend, str, dict[str, Any] | None]:
    """`indexing_backend`, why it is the one, and what `calibrate` recorded on this CPU (None:
    not measured), all from one reading of the record (for `semsearch info`)."""
    from semsearch.models import onnx, sessions

    record = sessions.read_record(model_dir / onnx.ONNX_DIR)
    path, why = sessions.choose(record, onnx.has_checked_int8(model_dir))
    backend: Backend = sessions.BACKENDS[path]  # type: ignore[assignment]
    return backend, why, record


def measured(model_dir: Path) -> dict[str, Any] | None:
    """What `calibrate` recorded on this CPU for the export in `model_dir`, or None."""
    from semsearch.models import onnx, sessions

    return sessions.read_record(model_dir / onnx.ONNX_DIR)


def calibrate(model_dir: Path, passages: Sequence[str], queries: Sequence[str],
              relevant: Sequence[set[int]]) -> dict[str, Any]:
    """Measure this CPU's indexing paths for the export in `model_dir` on labelled passages
    and record the fastest within quality (sessions.calibrate); returns the record."""
    from semsearch.models import onnx, sessions

    def open_path(path: str) -> Encoder:
        return load_encoder(str(model_dir), sessions.BACKENDS[path],  # type: ignore[arg-type]
                            threads=1)

    return sessions.calibrate(model_dir / onnx.ONNX_DIR, onnx.has_checked_int8(model_dir),
                              passages, queries, relevant, open_path=open_path)


def _load_onnx(ref: ModelRef, int8: bool, threads: int | None = None,
               prepack: bool = True, openvino: bool = False) -> OnnxEncoder:
    from semsearch.models.onnx import OnnxRunner, read_export_info

    path = Path(ref.location)
    try:
        runner = OnnxRunner.open(path, int8=int8, threads=threads, prepack=prepack,
                                 openvino=openvino)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot load the ONNX export of {ref.name} from {path}: {exc}; "
                         "re-run `semsearch provision --force`") from exc
    info = ModelInfo(name=ref.name, fingerprint=_model_fingerprint(ref),
                     dimension=int(runner.table.shape[1]),
                     prompts=_prompts(read_export_info(path).get("prompts")))
    return OnnxEncoder(info=info, runner=runner, max_tokens=runner.max_tokens,
                       backend="openvino" if openvino else "onnx-int8" if int8 else "onnx")


def _prompts(prompts: dict[str, Any] | None) -> dict[str, str]:
    """The model's query and passage prompts, without empty ones."""
    return {k: str(v) for k, v in (prompts or {}).items() if k in PROMPT_NAMES and v}


def _load_torch(ref: ModelRef) -> TorchEncoder:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()  # no weight-loading bars or length warnings
        transformers.logging.disable_progress_bar()

        st = SentenceTransformer(ref.location, device="cpu",
                                 local_files_only=ref.is_local)
    except Exception as exc:
        if ref.is_local:
            raise ModelError(f"cannot load model from {ref.location}: {exc}") from exc
        raise ModelError(f"model {ref.name!r} is not available offline and could not be "
                         f"downloaded ({type(exc).__name__}); {PROVISION_HINT}") from exc
    get_dimension = (getattr(st, "get_embedding_dimension", None)
                     or st.get_sentence_embedding_dimension)
    dimension = get_dimension()
    if not dimension:
        raise ModelError(f"model {ref.name!r} does not report an embedding dimension")
    info = ModelInfo(name=ref.name, fingerprint=_model_fingerprint(ref),
                     dimension=int(dimension), prompts=_prompts(st.prompts))
    return TorchEncoder(info=info, model=st,
                        max_tokens=int(st.max_seq_length or DEFAULT_MAX_TOKENS))
