"""Text → L2-normalised vectors, with the model's own query/passage prompts.

`load_encoder` resolves a model (see `resolve`) and loads it with sentence-transformers, imported
lazily because that import alone costs seconds. Vectors are float32 and unit length, so inner
product is cosine similarity.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.errors import ModelError
from semsearch.models.resolve import PROVISION_HINT, ModelRef, fingerprint, hub_snapshot, resolve

ProgressFn = Callable[[int], None]
BATCH_SIZE = 32


@dataclass(frozen=True)
class ModelInfo:
    """What an index records about the model that embedded it."""

    name: str
    fingerprint: str
    dimension: int
    prompts: dict[str, str] = field(default_factory=dict)


@dataclass
class Encoder:
    """A loaded sentence-transformers model and what identifies it."""

    info: ModelInfo
    model: Any  # sentence_transformers.SentenceTransformer
    max_tokens: int

    def _encode(self, texts: Sequence[str], prompt_name: str | None,
                progress: ProgressFn | None = None) -> np.ndarray:
        if prompt_name not in self.info.prompts:
            prompt_name = None
        out = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        step = BATCH_SIZE * 4
        for begin in range(0, len(texts), step):
            chunk = list(texts[begin : begin + step])
            vectors = self.model.encode(chunk, prompt_name=prompt_name, batch_size=BATCH_SIZE,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
            out[begin : begin + len(chunk)] = vectors
            if progress is not None:
                progress(len(chunk))
        return out

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Embed search queries (with the model's query prompt, if it has one)."""
        return self._encode(queries, "query")

    def encode_passages(self, passages: Sequence[str],
                        progress: ProgressFn | None = None) -> np.ndarray:
        """Embed passages (with the passage prompt), reporting each finished batch."""
        return self._encode(passages, "passage", progress)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` (without special tokens or prompt)."""
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])


def _model_fingerprint(ref: ModelRef) -> str:
    if ref.is_local:
        return fingerprint(Path(ref.location))
    snapshot = hub_snapshot(ref.location)
    return fingerprint(snapshot) if snapshot else f"hub:{ref.name}"


def load_encoder(model: str | ModelRef | None = None) -> Encoder:
    """Load the model `model` resolves to; raise ModelError with a way out if it cannot."""
    ref = model if isinstance(model, ModelRef) else resolve(model)
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
    prompts = {k: v for k, v in (st.prompts or {}).items() if k in ("query", "passage") and v}
    info = ModelInfo(name=ref.name, fingerprint=_model_fingerprint(ref),
                     dimension=int(dimension), prompts=prompts)
    return Encoder(info=info, model=st, max_tokens=int(st.max_seq_length or 512))
