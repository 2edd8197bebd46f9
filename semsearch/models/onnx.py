"""The same model without torch: an ONNX export run by onnxruntime, tokenised by `tokenizers`.

`import sentence_transformers` alone costs seconds, so the query path uses this export instead.
The graph takes token *embeddings*, not ids: the 250k × 384 word-embedding table (two thirds of
the weights) stays outside it in a memory-mapped `.npy`, so opening the model reads only the
rows a query touches and the session loads in a fraction of the time. Mean pooling and L2
normalisation are done in numpy, exactly as the sentence-transformers Pooling + Normalize modules.

Layout, inside the model directory:

    onnx/model.onnx             transformer body, fp32: (inputs_embeds, attention_mask) → hidden
    onnx/model_int8.onnx        the same, weights quantised to int8 (faster, slightly different)
    onnx/word_embeddings.npy    the word-embedding table (fp16, as converted)
    onnx/export.json            what was exported, from which weights

Provisioning writes the export (`provision/export.py`); this module only runs it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.errors import ModelError
from semsearch.models import sessions
from semsearch.models.body import EMBEDS_INPUT, MASK_INPUT
from semsearch.models.resolve import TOKENIZER_FILE
from semsearch.models.unigram import (
    CUT_MARGIN_TOKENS,
    UNIGRAM_DIR,
    UnigramTokenizer,
    has_tables,
)

ONNX_DIR = "onnx"
BODY = "model.onnx"
BODY_INT8 = "model_int8.onnx"
EMBEDDINGS = "word_embeddings.npy"
EXPORT_INFO = "export.json"
# export.json's int8 "scheme" of the quality-checked int8 body (provision/export.py); an older
# export's int8 body (per-tensor) is not used unless asked for
INT8_SCHEME = "per-channel, fp32 FFN outputs of outlier layers"
QUICK_BATCH = 16  # up to this many texts, pure-Python unigram beats loading `tokenizers`
QUICK_CHARS = 256  # ... of up to this many characters each (its Viterbi is Python, ~1 ms/char)
MAX_PIECE_CHARS = 16  # SentencePiece's default longest piece, when the tables do not say
log = logging.getLogger(__name__)


def has_export(model_dir: Path) -> bool:
    """True when `model_dir` carries a complete ONNX export (export.json is written last)."""
    return (model_dir / ONNX_DIR / EXPORT_INFO).is_file()


def read_export_info(model_dir: Path) -> dict[str, Any]:
    """The export's `export.json` (dimension, max_tokens, pad_id, prompts, int8)."""
    info = json.loads((model_dir / ONNX_DIR / EXPORT_INFO).read_text(encoding="utf-8"))
    return info if isinstance(info, dict) else {}


def has_checked_int8(model_dir: Path) -> bool:
    """True when the export's int8 body is the quality-checked scheme (see INT8_SCHEME)."""
    int8 = read_export_info(model_dir).get("int8") if has_export(model_dir) else None
    return isinstance(int8, dict) and int8.get("scheme") == INT8_SCHEME


@dataclass
class OnnxRunner:
    """Tokenizers + embedding table + onnxruntime session: texts in, unit vectors out.

    Short batches (queries) are tokenised with the memory-mapped unigram tables when the model
    has them (`unigram.py`); the full `tokenizers` tokenizer loads only when passages need it,
    or once `warm()` is called: a long-running process (the service) pays its load once and
    then tokenises a query in Rust (the same ids, tested) instead of the Python Viterbi.
    """

    model_dir: Path
    table: np.ndarray
    session: Any  # onnxruntime.InferenceSession
    max_tokens: int
    pad_id: int
    quick: UnigramTokenizer | None = None
    threads: int | None = None
    _tokenizer: Any = None  # tokenizers.Tokenizer, loaded on first use
    fast: bool = False  # tokenise everything with `tokenizers` (see `warm`)
    fp32_body: Path | None = None  # the fp32 body, when onnxruntime runs it (see `warm`)
    query_session: Any = None  # what embeds queries once warm, when not `session`

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.model_dir / TOKENIZER_FILE))
            tokenizer.no_padding()
            tokenizer.enable_truncation(self.max_tokens)
            self._tokenizer = tokenizer
        return self._tokenizer

    def warm(self, max_batch: int = 32, threads: int | None = None, streams: int = 1) -> str:
        """Prepare for answering many queries (the service), not one (a CLI run: these loads
        cost it more than they save), in batches of at most `max_batch`; returns what now
        embeds queries (a sessions.PATH_NAMES value, or "the loaded body" when the runner was
        opened on another body than fp32 onnxruntime).

        Tokenise with `tokenizers` from now on (a 10-character query: ~7 ms in the unigram
        Viterbi, well under 1 ms in Rust), and embed queries by the path SEMSEARCH_QUERY_PATH
        chooses (sessions.query_session), on `threads` threads in all (default: the runner's),
        split into `streams` that each run a batch at the same time (the bf16 path)."""
        _ = self.tokenizer
        self.fast = True
        if self.query_session is not None or self.fp32_body is None:
            return "the loaded body"
        session, name = sessions.query_session(self.fp32_body, threads or self.threads,
                                               dimension=self.table.shape[1],
                                               max_batch=max_batch, streams=streams)
        self.query_session = session
        return name

    @classmethod
    def open(cls, model_dir: Path, *, int8: bool = False, threads: int | None = None,
             body_name: str | None = None, spinning: bool | None = None,
             prepack: bool = True, openvino: bool = False) -> OnnxRunner:
        """A runner on the export in `model_dir` (its fp32 or int8 body, or the file of `onnx/`
        that `body_name` names: benchmarks compare variants this way). `spinning` sets
        onnxruntime's busy-waiting of idle threads (its default, on, when None). Without
        `prepack`, onnxruntime does not repack the weights for its GEMM kernels at load: the
        session starts in ~0.09 s instead of 0.14-0.28 s and a query takes ~7 ms more (vectors
        within 1e-6), the better trade for a process that answers one query (the CLI)."""
        folder = model_dir / ONNX_DIR
        info = read_export_info(model_dir)
        body = folder / (body_name or (BODY_INT8 if int8 else BODY))
        if not body.is_file():
            raise ModelError(f"{body} is missing; re-run `semsearch provision --force`")
        session = sessions.body_session(body, threads,
                                        runtime="openvino" if openvino else "onnxruntime",
                                        prepack=prepack, spinning=spinning)
        table = np.load(folder / EMBEDDINGS, mmap_mode="r")
        quick = UnigramTokenizer.open(model_dir / UNIGRAM_DIR) if has_tables(model_dir) else None
        return cls(model_dir, table, session, int(info["max_tokens"]), int(info["pad_id"]), quick,
                   threads, fp32_body=body if body.name == BODY and not openvino else None)

    @property
    def max_chars(self) -> int:
        """Characters of a text that can hold every token the model reads (see
        `UnigramTokenizer.max_chars`); the rest is cut before tokenising, so a 10,000-character
        query costs no more than what the model reads of it."""
        per_token = self.quick.max_piece_chars if self.quick is not None else MAX_PIECE_CHARS
        return (self.max_tokens + CUT_MARGIN_TOKENS) * per_token

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids with specials, truncated to the model's length. Texts are cut to
        `max_chars` first; a few short ones are tokenised with the unigram tables (no
        `tokenizers` load), anything longer by `tokenizers` (Rust, linear: the Python Viterbi
        took 9.4 s on a dense 10,000-character query)."""
        texts = [text[: self.max_chars] for text in texts]
        if self.quick is not None and not self.fast and len(texts) <= QUICK_BATCH \
                and all(len(text) <= QUICK_CHARS and self.quick.exact_for(text)
                        for text in texts):
            return [self.quick.encode(text, self.max_tokens) for text in texts]
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def embed_ids(self, batch: Sequence[Sequence[int]], *, query: bool = False) -> np.ndarray:
        """Embed one batch of token-id lists (padded here to the longest); `query`: they are
        queries, embedded by `query_session` once `warm` has loaded one."""
        ids, mask = padded(batch, self.pad_id)
        embeds = np.asarray(self.table[ids], dtype=np.float32)
        session = self.query_session if query and self.query_session is not None \
            else self.session
        (hidden,) = session.run(None, {EMBEDS_INPUT: embeds, MASK_INPUT: mask})
        return pooled(hidden, mask)


def padded(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token-id lists as one (ids, attention mask) pair of int64 matrices, padded with
    `pad_id` to the longest."""
    width = max(len(ids) for ids in batch)
    ids = np.full((len(batch), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mean of each row's hidden states over its real tokens, L2-normalised (e5's
    pooling): the text's unit vector."""
    weights = mask[..., None].astype(np.float32)
    mean = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(mean, axis=1, keepdims=True)
    return (mean / np.maximum(norms, 1e-12)).astype(np.float32)
