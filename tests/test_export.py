"""The int8 export (issue 15): which products stay fp32, what indexing picks by default, and
that an export from before the checked scheme is neither used by default nor kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from semsearch.models import onnx as onnx_layout
from semsearch.models import provision, sessions
from semsearch.models.encoder import load_encoder
from semsearch.models.provision import export


@pytest.fixture()
def quantised(tiny_model: Path, tmp_path: Path) -> Path:
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    export.export_onnx(model, quantize=True)
    return model


def info_of(model: Path) -> dict[str, object]:
    return onnx_layout.read_export_info(model)


def test_outlier_layers_stay_fp32(quantised: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    int8 = info_of(quantised)["int8"]
    assert isinstance(int8, dict) and int8["scheme"] == onnx_layout.INT8_SCHEME
    ratios = {int(k): v for k, v in int8["outlier_ratios"].items()}
    assert int8["fp32_ffn_output_layers"] == [
        n for n, r in sorted(ratios.items()) if r > export.OUTLIER_RATIO]
    graph = onnx.load(str(quantised / onnx_layout.ONNX_DIR / onnx_layout.BODY_INT8)).graph
    # one layer: Q, K, V, attention output, FFN in, FFN out — all int8 but the kept ones
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 6 - len(
        int8["fp32_ffn_output_layers"])
    # a layer over the threshold keeps its FFN output product fp32
    monkeypatch.setattr(export, "outlier_ratios", lambda st, texts: {0: 50.0})
    export.export_onnx(quantised, quantize=True)
    graph = onnx.load(str(quantised / onnx_layout.ONNX_DIR / onnx_layout.BODY_INT8)).graph
    kept = [n.name for n in graph.node if n.op_type == "MatMul" and "/output/dense/" in n.name
            and "attention" not in n.name]
    assert kept == ["/bert/encoder/layer.0/output/dense/MatMul"]
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 5


def test_indexing_picks_the_checked_int8_body_where_unmeasured(
        quantised: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No record of this CPU's paths (models/sessions.py): the checked int8 body where the CPU
    has int8 dot products."""
    monkeypatch.setenv("SEMSEARCH_CPU_FEATURES", "int8")
    monkeypatch.setattr(sessions, "cpu_flags", lambda: frozenset({"avx512_vnni"}))
    indexing = load_encoder(str(quantised), for_indexing=True)
    assert indexing.backend == "onnx-int8"
    assert load_encoder(str(quantised)).backend == "onnx"  # queries stay fp32
    texts = ["社区志愿者送去口罩", "The committee met on Tuesday.", "夫妻党员抗疫"]
    a = load_encoder(str(quantised), "onnx").encode_passages(texts)
    b = indexing.encode_passages(texts)
    assert float((a * b).sum(axis=1).min()) > 0.95
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)


def test_an_older_int8_export_is_not_the_default_and_is_redone(
        quantised: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info_file = quantised / onnx_layout.ONNX_DIR / onnx_layout.EXPORT_INFO
    info = json.loads(info_file.read_text(encoding="utf-8"))
    info["int8"] = True  # what exports wrote before the checked scheme (per-tensor int8)
    info_file.write_text(json.dumps(info), encoding="utf-8")
    assert not onnx_layout.has_checked_int8(quantised)
    assert load_encoder(str(quantised), for_indexing=True).backend == "onnx"
    assert load_encoder(str(quantised), "onnx-int8").backend == "onnx-int8"  # still on request

    exported: list[Path] = []
    monkeypatch.setattr(provision, "provisioned_dir", lambda: quantised)
    monkeypatch.setattr(provision, "_converted", lambda path: True)
    monkeypatch.setattr(export, "export_onnx", lambda path, **kw: exported.append(path))
    assert provision.provision() == (quantised, True) and exported == [quantised]


def test_quantising_prints_no_third_party_advice(tiny_model: Path, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """onnxruntime's "Please consider to run pre-processing before quantization" line was in
    every `make setup`; it is dropped, other warnings still pass, the root logger is left as
    it was."""
    import logging

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    handlers, filters = list(logging.getLogger().handlers), list(logging.getLogger().filters)
    export.export_onnx(model, quantize=True)
    with export._without_preprocessing_advice():
        logging.warning("another warning")
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "pre-processing" in m], messages
    assert "another warning" in messages
    assert logging.getLogger().handlers == handlers
    assert logging.getLogger().filters == filters
