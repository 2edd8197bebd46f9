"""Export a sentence-transformers model directory to the ONNX layout that `models.onnx` runs.

Provisioning only (needs torch, once): the query path loads the result without torch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.atomic import atomic_directory
from semsearch.errors import ModelError
from semsearch.models.encoder import DEFAULT_MAX_TOKENS
from semsearch.models.onnx import (
    BODY,
    BODY_INT8,
    EMBEDDINGS,
    EMBEDS_INPUT,
    EXPORT_INFO,
    HIDDEN_OUTPUT,
    MASK_INPUT,
    ONNX_DIR,
)


def export_onnx(model_dir: Path, *, quantize: bool = True) -> Path:
    """Export a sentence-transformers BERT-family model directory to `model_dir/onnx/`.

    Needs torch (it runs once, at provisioning). Written with `atomic_directory`, so a crash
    leaves no half export behind and an existing export is replaced only once the new one is
    complete.
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
    with atomic_directory(target, replace=True) as tmp:
        dim = table.shape[1]
        example = (torch.zeros(2, 5, dim), torch.ones(2, 5, dtype=torch.int64))
        axes = {0: "batch", 1: "tokens"}
        with warnings.catch_warnings():  # the tracer's notes on constant shapes: expected here
            warnings.simplefilter("ignore")
            torch.onnx.export(Body(), example, str(tmp / BODY), dynamo=False, opset_version=17,
                              input_names=[EMBEDS_INPUT, MASK_INPUT],
                              output_names=[HIDDEN_OUTPUT],
                              dynamic_axes={name: axes for name in
                                            (EMBEDS_INPUT, MASK_INPUT, HIDDEN_OUTPUT)})
        np.save(tmp / EMBEDDINGS, table.to(torch.float16).numpy())
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(tmp / BODY), str(tmp / BODY_INT8), weight_type=QuantType.QInt8)
        info = {"source": str(model_dir), "dimension": int(dim),
                "max_tokens": int(st.max_seq_length or DEFAULT_MAX_TOKENS),
                "pad_id": int(st.tokenizer.pad_token_id or 0),
                "prompts": {k: v for k, v in (st.prompts or {}).items() if v},
                "int8": quantize}
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
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
