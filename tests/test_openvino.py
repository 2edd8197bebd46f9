"""`--encoder openvino`: the ONNX body on OpenVINO (bf16 where the CPU has it) gives the vectors
of the onnxruntime fp32 body, indexes and searches like it, and says how to install it when the
optional package is missing (tiny model)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import semsearch
from semsearch.cli import app
from semsearch.errors import ModelError
from semsearch.models.encoder import load_encoder

from .conftest import SEEDS

TEXTS = ["夫妻党员抗疫", "北京是中华人民共和国的首都。" * 20, "semantic search in English",
         "短"]


def test_openvino_vectors_match_onnxruntime_fp32(tiny_model: Path) -> None:
    pytest.importorskip("openvino")
    fp32 = load_encoder(str(tiny_model), "onnx")
    ov = load_encoder(str(tiny_model), "openvino")
    assert ov.backend == "openvino" and ov.info == fp32.info
    for encode in ("encode_passages", "encode_queries"):
        a, b = getattr(fp32, encode)(TEXTS), getattr(ov, encode)(TEXTS)
        assert a.shape == b.shape == (len(TEXTS), fp32.info.dimension)
        np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
        assert float((a * b).sum(axis=1).min()) > 0.999  # bf16 rounding only


def test_index_built_with_openvino_searches_like_fp32(tiny_model: Path) -> None:
    pytest.importorskip("openvino")
    ov = semsearch.build([SEEDS], model=str(tiny_model), encoder="openvino")
    fp32 = semsearch.build([SEEDS], model=str(tiny_model), encoder="onnx")
    assert ov.passages == fp32.passages
    hits = [[h.id for h in index.search("夫妻党员抗疫", k=3, mode="dense")]
            for index in (ov, fp32)]
    assert hits[0] and hits[0][0] == hits[1][0]


def test_missing_openvino_says_how_to_install(tiny_model: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino → ImportError
    with pytest.raises(ModelError, match=r"semsearch\[openvino\]"):
        load_encoder(str(tiny_model), "openvino")


def test_cli_accepts_encoder_openvino(tiny_model: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the package: one line naming the extra, non-zero exit, no traceback."""
    monkeypatch.setitem(sys.modules, "openvino", None)
    result = CliRunner().invoke(app, ["index", str(SEEDS), "--out", str(tmp_path / "idx"),
                                      "--model", str(tiny_model), "--encoder", "openvino"])
    assert result.exit_code != 0 and "semsearch[openvino]" in result.output
    assert "Traceback" not in result.output


def test_openvino_on_the_real_model_keeps_the_fp32_vectors(real_model: Path) -> None:
    """bf16 on real text: the runtimes benchmark measured cosine ≥ 0.99999 to fp32 on its
    passages; a few seed-like texts must stay above 0.9999."""
    pytest.importorskip("openvino")
    fp32 = load_encoder(str(real_model), "onnx")
    ov = load_encoder(str(real_model), "openvino")
    a, b = fp32.encode_passages(TEXTS), ov.encode_passages(TEXTS)
    assert float((a * b).sum(axis=1).min()) > 0.9999
