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
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.errors import ModelError
from semsearch.models.unigram import UNIGRAM_DIR, UnigramTokenizer

ONNX_DIR = "onnx"
BODY = "model.onnx"
BODY_INT8 = "model_int8.onnx"
EMBEDDINGS = "word_embeddings.npy"
EXPORT_INFO = "export.json"
BATCH_SIZE = 32
QUICK_BATCH = 16  # up to this many texts, pure-Python unigram beats loading `tokenizers`


def has_export(model_dir: Path) -> bool:
    """True when `model_dir` carries a complete ONNX export (export.json is written last)."""
    return (model_dir / ONNX_DIR / EXPORT_INFO).is_file()


def export_onnx(model_dir: Path, *, quantize: bool = True) -> Path:
    """Export a sentence-transformers BERT-family model directory to `model_dir/onnx/`.

    Needs torch (it runs once, at provisioning). Written to a temporary directory and renamed,
    so a crash leaves no half export behind.
    """
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    st = SentenceTransformer(str(model_dir), device="cpu",
                             model_kwargs={"attn_implementation": "eager"})
    _check_pipeline(st)
    bert: Any = st[0].auto_model
    bert = bert.float().eval()
    table = bert.get_input_embeddings().weight.detach()

    class Body(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, inputs_embeds: Any, attention_mask: Any) -> Any:
            return self.bert(inputs_embeds=inputs_embeds,
                             attention_mask=attention_mask).last_hidden_state

    target = model_dir / ONNX_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{ONNX_DIR}.tmp-", dir=model_dir))
    try:
        tmp.chmod(0o755)
        dim = table.shape[1]
        example = (torch.zeros(2, 5, dim), torch.ones(2, 5, dtype=torch.int64))
        axes = {0: "batch", 1: "tokens"}
        with warnings.catch_warnings():  # the tracer's notes on constant shapes: expected here
            warnings.simplefilter("ignore")
            torch.onnx.export(Body(), example, str(tmp / BODY), dynamo=False, opset_version=17,
                              input_names=["inputs_embeds", "attention_mask"],
                              output_names=["last_hidden_state"],
                              dynamic_axes={"inputs_embeds": axes, "attention_mask": axes,
                                            "last_hidden_state": axes})
        np.save(tmp / EMBEDDINGS, table.to(torch.float16).numpy())
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(tmp / BODY), str(tmp / BODY_INT8), weight_type=QuantType.QInt8)
        info = {"source": str(model_dir), "dimension": int(dim),
                "max_tokens": int(st.max_seq_length or 512),
                "pad_id": int(st.tokenizer.pad_token_id or 0),
                "prompts": {k: v for k, v in (st.prompts or {}).items() if v},
                "int8": quantize}
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _check_pipeline(st: Any) -> None:
    """Only Transformer → mean Pooling (over all tokens, prompt included) → Normalize is
    reproduced here; refuse anything else."""
    names = [type(module).__name__ for module in st]
    pool = st[1] if len(names) > 1 else None
    mean = (getattr(pool, "pooling_mode", None) == "mean"
            or getattr(pool, "pooling_mode_mean_tokens", False))
    mean = mean and getattr(pool, "include_prompt", True)
    if names[:1] != ["Transformer"] or not mean or names[2:] not in ([], ["Normalize"]):
        raise ModelError(f"ONNX export supports Transformer + mean Pooling (+ Normalize) models; "
                         f"this one is {' → '.join(names)}")


@dataclass
class OnnxRunner:
    """Tokenizers + embedding table + onnxruntime session: texts in, unit vectors out.

    Short batches (queries) are tokenised with the memory-mapped unigram tables when the model
    has them (`unigram.py`); the full `tokenizers` tokenizer loads only when passages need it.
    """

    model_dir: Path
    table: np.ndarray
    session: Any  # onnxruntime.InferenceSession
    max_tokens: int
    pad_id: int
    quick: UnigramTokenizer | None = None
    _tokenizer: Any = None  # tokenizers.Tokenizer, loaded on first use

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tokenizer.no_padding()
            tokenizer.enable_truncation(self.max_tokens)
            self._tokenizer = tokenizer
        return self._tokenizer

    @classmethod
    def open(cls, model_dir: Path, *, int8: bool = False, threads: int | None = None,
             body_name: str | None = None, spinning: bool | None = None) -> OnnxRunner:
        """A runner on the export in `model_dir` (its fp32 or int8 body, or the file of `onnx/`
        that `body_name` names: benchmarks compare variants this way). `spinning` sets
        onnxruntime's busy-waiting of idle threads (its default, on, when None)."""
        import onnxruntime as ort

        folder = model_dir / ONNX_DIR
        info = json.loads((folder / EXPORT_INFO).read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if spinning is not None:
            options.add_session_config_entry("session.intra_op.allow_spinning",
                                             "1" if spinning else "0")
        body = folder / (body_name or (BODY_INT8 if int8 else BODY))
        if not body.is_file():
            raise ModelError(f"{body} is missing; re-run `semsearch provision --force`")
        session = ort.InferenceSession(str(body), options, providers=["CPUExecutionProvider"])
        table = np.load(folder / EMBEDDINGS, mmap_mode="r")
        quick_dir = model_dir / UNIGRAM_DIR
        quick = UnigramTokenizer.open(quick_dir) if (quick_dir / "meta.json").is_file() else None
        return cls(model_dir, table, session, int(info["max_tokens"]), int(info["pad_id"]), quick)

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids with specials, truncated to the model's length."""
        if self.quick is not None and len(texts) <= QUICK_BATCH:
            return [self.quick.encode(text, self.max_tokens) for text in texts]
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def embed_ids(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Embed one batch of token-id lists (padded here to the longest)."""
        width = max(len(ids) for ids in batch)
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        embeds = np.asarray(self.table[ids], dtype=np.float32)
        (hidden,) = self.session.run(None, {"inputs_embeds": embeds, "attention_mask": mask})
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
