"""Export a sentence-transformers model directory to the ONNX layout that `models.onnx` runs.

Provisioning only (needs torch, once): the query path loads the result without torch.

The int8 body (`quantize_body`): weights int8 per output channel over the full range (the
u8 × s8 products run on VNNI), activations quantised per batch by onnxruntime — except the
FFN output products of the layers whose inputs carry outliers (max |x| over 8× the 99.99th
percentile, measured on the packaged seed passages: layers 0, 4 and 5 of multilingual-e5-small,
with ratios up to 25), which stay fp32. Per-tensor int8 everywhere cost 0.037 hybrid Recall@5
on the seeds; per-channel 0.015; with those three products in fp32 none, and no Recall@5 or
MRR@10 on the seeds or either public set fell by more than 0.004
(benchmarks/results/throughput.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.atomic import atomic_directory
from semsearch.errors import ModelError
from semsearch.models.body import EMBEDS_INPUT, HIDDEN_OUTPUT, MASK_INPUT
from semsearch.models.encoder import DEFAULT_MAX_TOKENS
from semsearch.models.onnx import BODY, BODY_INT8, EMBEDDINGS, EXPORT_INFO, INT8_SCHEME, ONNX_DIR

OUTLIER_RATIO = 8.0


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

    # measured before tracing: after torch.onnx.export the eager model's activations differ
    ratios = outlier_ratios(st, calibration_texts()) if quantize else {}
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
        int8: dict[str, Any] = {}
        if quantize:
            fp32 = [layer for layer, ratio in ratios.items() if ratio > OUTLIER_RATIO]
            quantize_body(tmp / BODY, tmp / BODY_INT8, fp32)
            int8 = {"scheme": INT8_SCHEME, "fp32_ffn_output_layers": fp32,
                    "outlier_ratios": {str(k): round(v, 1) for k, v in ratios.items()}}
        info = {"source": str(model_dir), "dimension": int(dim),
                "max_tokens": int(st.max_seq_length or DEFAULT_MAX_TOKENS),
                "pad_id": int(st.tokenizer.pad_token_id or 0),
                "prompts": {k: v for k, v in (st.prompts or {}).items() if v},
                "int8": int8 or False}
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return target


def calibration_texts(limit: int = 64) -> list[str]:
    """Passages of the packaged seeds index: real text that ships with semsearch."""
    from semsearch.stores import DEFAULT_INDEX
    from semsearch.stores.generations import live_dir

    texts: list[str] = []
    with (live_dir(DEFAULT_INDEX) / "passages.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            texts.append(str(json.loads(line)["text"]))
            if len(texts) == limit:
                break
    return texts


def outlier_ratios(st: Any, texts: Sequence[str]) -> dict[int, float]:
    """Per layer: max |x| of the FFN output product's input over its 99.99th percentile of |x|,
    on `texts` encoded as passages."""
    import torch

    bert: Any = st[0].auto_model
    seen: dict[int, list[torch.Tensor]] = {}
    hooks = []
    for number, layer in enumerate(bert.encoder.layer):
        def keep(_: Any, inputs: Any, number: int = number) -> None:
            seen.setdefault(number, []).append(inputs[0].detach().abs().flatten())

        hooks.append(layer.output.dense.register_forward_pre_hook(keep))
    prompt = (st.prompts or {}).get("passage", "")
    try:
        with torch.inference_mode():
            for text in texts:
                batch = st.tokenizer([prompt + text], truncation=True, return_tensors="pt",
                                     max_length=int(st.max_seq_length or DEFAULT_MAX_TOKENS))
                bert(**batch)
    finally:
        for hook in hooks:
            hook.remove()
    ratios = {}
    for number, parts in seen.items():
        values = torch.cat(parts).float()
        tail = torch.quantile(values[torch.randperm(len(values), generator=torch.Generator(
            ).manual_seed(0))[:1_000_000]], 0.9999)
        ratios[number] = float(values.max() / max(float(tail), 1e-6))
    return ratios


def quantize_body(body: Path, dest: Path, fp32_layers: Sequence[int]) -> None:
    """The int8 body (see the module docstring): every weight product int8 per output channel,
    except the FFN output products of `fp32_layers`."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(body), load_external_data=False).graph
    keep = [node.name for node in graph.node if node.op_type == "MatMul" and any(
        f"/layer.{n}/output/dense/" in node.name for n in fp32_layers)]
    if len(keep) != len(fp32_layers):
        raise ModelError(f"cannot find the FFN output products of layers {list(fp32_layers)} "
                         "in the exported graph")
    with _without_preprocessing_advice():
        quantize_dynamic(str(body), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=False, nodes_to_exclude=keep,
                         extra_options={"MatMulConstBOnly": True})


# onnxruntime's quantizer logs this on the root logger for every model it is given; its
# pre-processing (shape inference, ORT optimisation) is for static quantisation of conv nets
_ADVICE = "Please consider to run pre-processing before quantization"


@contextlib.contextmanager
def _without_preprocessing_advice() -> Iterator[None]:
    """Drop onnxruntime's advice line, which `semsearch provision` (and `make setup`) printed
    as `WARNING:root:…`; any other warning still reaches stderr. The handler lent to the root
    logger meanwhile (logging's last resort, stderr) keeps `logging.warning` from installing a
    console handler on it for good."""
    root = logging.getLogger()

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_ADVICE)

    lent = None if root.handlers else logging.lastResort
    root.addFilter(keep)
    if lent is not None:
        root.addHandler(lent)
    try:
        yield
    finally:
        root.removeFilter(keep)
        if lent is not None:
            root.removeHandler(lent)


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
