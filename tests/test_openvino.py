"""`--encoder openvino`: the ONNX body on OpenVINO (bf16 where the CPU has it) gives the vectors
of the onnxruntime fp32 body, indexes and searches like it, and says how to install it when the
optional package is missing (tiny model)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


# --- the service's warm query path: bf16 (default where AMX) or int8 weights on OpenVINO -------

QUERIES = ["夫妻党员抗疫", "短", "semantic search in English", "北京是中华人民共和国的首都" * 3,
           "夫妻党员抗疫的故事", "?"]
PATHS = {"bf16": ("bf16_capable", "bf16 (OpenVINO)", 0.999),
         "int8": ("int8_capable", "int8 weights (OpenVINO)", 0.999)}


def query_path(monkeypatch: pytest.MonkeyPatch, path: str) -> tuple[str, float]:
    """Ask for `path`; skip where this CPU cannot run it (the service keeps fp32 there, tested
    below). Its name as `warm` returns it, and the least cosine to fp32 it must keep."""
    pytest.importorskip("openvino")
    from semsearch.models import sessions

    monkeypatch.setenv("SEMSEARCH_QUERY_PATH", path)
    check, name, cosine = PATHS[path]
    if not getattr(sessions, check)():
        pytest.skip(f"this CPU cannot run the {path} query path: the service keeps fp32")
    return name, cosine


@pytest.mark.parametrize("path", list(PATHS))
def test_warm_embeds_queries_by_the_chosen_path_and_passages_as_before(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    name, cosine = query_path(monkeypatch, path)
    fp32 = load_encoder(str(tiny_model), "onnx")
    warm = load_encoder(str(tiny_model), "onnx")
    assert warm.runner.warm() == name  # type: ignore[attr-defined]
    assert warm.runner.query_session is not None  # type: ignore[attr-defined]
    a, b = fp32.encode_queries(QUERIES), warm.encode_queries(QUERIES)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert not np.array_equal(a, b)  # the OpenVINO body did run
    assert float((a * b).sum(axis=1).min()) > cosine
    np.testing.assert_array_equal(fp32.encode_passages(TEXTS), warm.encode_passages(TEXTS))


def test_auto_is_bf16_where_openvino_runs_bf16(tiny_model: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    name, _ = query_path(monkeypatch, "bf16")
    monkeypatch.delenv("SEMSEARCH_QUERY_PATH")
    assert load_encoder(str(tiny_model), "onnx").runner.warm() == name  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", list(PATHS))
def test_a_query_gets_the_same_vector_alone_and_in_any_batch(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """int8: per-token int8 activations never mix rows, but a padded width still moved a
    vector by ~1e-3 (the int8 rounding amplifies the last-bit changes of a wider softmax), so
    each length runs unpadded. bf16 runs the batch padded and must not move either: the
    service's batched answers equal the answers alone."""
    query_path(monkeypatch, path)
    warm = load_encoder(str(tiny_model), "onnx")
    warm.runner.warm()  # type: ignore[attr-defined]
    alone = np.vstack([warm.encode_queries([q]) for q in QUERIES])
    together = warm.encode_queries(QUERIES)
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(warm.encode_queries(QUERIES[::-1] * 6)[: len(QUERIES)],
                                  alone[::-1])


def test_a_short_query_runs_padded_to_8_tokens_not_32(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bf16 query body pads each row to a multiple of BF16_WIDTH = 8 tokens: at 32 the
    seeds' questions (8-26 tokens) were mostly padding, which cost the service 13.4 against
    11.6 ms of CPU per request at 8 clients (openvino.py)."""
    query_path(monkeypatch, "bf16")
    warm = load_encoder(str(tiny_model), "onnx")
    warm.runner.warm(2)  # type: ignore[attr-defined]
    session = warm.runner.query_session  # type: ignore[attr-defined]
    request = session._requests.get()
    widths: list[int] = []

    class Recording:
        def infer(self, feeds: dict[str, np.ndarray]) -> Any:
            widths.append(next(iter(feeds.values())).shape[1])
            return request.infer(feeds)

    session._requests.put(Recording())
    lengths = [len(ids) for ids in warm.runner.ids(["query: " + q for q in QUERIES[:2]])]
    expected = sorted({-(-n // 8) * 8 for n in lengths})  # one call per width
    assert max(expected) < 32  # "夫妻党员抗疫" and "短" with the prompt
    warm.encode_queries(QUERIES[:2])
    assert sorted(widths) == expected


def test_two_streams_run_two_batches_at_once_with_the_vectors_of_one(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's bf16 body in two streams (one thread each, serve.QUERY_STREAMS): two
    batch runners embed at the same time, each on its own infer request, and every query
    still gets the vector it gets alone on a one-stream body."""
    from concurrent.futures import ThreadPoolExecutor

    query_path(monkeypatch, "bf16")
    one = load_encoder(str(tiny_model), "onnx")
    one.runner.warm(4)  # type: ignore[attr-defined]
    two = load_encoder(str(tiny_model), "onnx")
    two.runner.warm(4, threads=2, streams=2)  # type: ignore[attr-defined]
    compiled = two.runner.query_session._compiled  # type: ignore[attr-defined]
    assert compiled.get_property("NUM_STREAMS") == 2
    alone = np.vstack([one.encode_queries([q]) for q in QUERIES])
    batches = [QUERIES[:3], QUERIES[3:]] * 8
    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(two.encode_queries, batches))
    for batch, vectors in zip(batches, found, strict=True):
        start = QUERIES.index(batch[0])
        np.testing.assert_array_equal(vectors, alone[start:start + len(batch)])


@pytest.mark.parametrize("setting", ["fp32", "auto-without-bf16"])
def test_warm_keeps_fp32_when_asked_or_where_auto_has_no_bf16(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        setting: str) -> None:
    from semsearch.models import sessions

    if setting == "fp32":
        monkeypatch.setenv("SEMSEARCH_QUERY_PATH", "fp32")
    else:
        monkeypatch.delenv("SEMSEARCH_QUERY_PATH", raising=False)
        monkeypatch.setattr(sessions, "bf16_capable", lambda: False)
    fp32 = load_encoder(str(tiny_model), "onnx")
    warm = load_encoder(str(tiny_model), "onnx")
    with caplog.at_level("WARNING", logger="semsearch.models.sessions"):
        assert warm.runner.warm() == "fp32 (onnxruntime)"  # type: ignore[attr-defined]
    assert not caplog.records  # nothing was asked that did not happen
    assert warm.runner.query_session is None  # type: ignore[attr-defined]
    np.testing.assert_array_equal(fp32.encode_queries(QUERIES), warm.encode_queries(QUERIES))


def test_an_unknown_query_path_is_a_clear_error(tiny_model: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_QUERY_PATH", "fp8")
    warm = load_encoder(str(tiny_model), "onnx")
    with pytest.raises(ModelError, match="SEMSEARCH_QUERY_PATH must be one of auto, fp32"):
        warm.runner.warm()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("path", "cause"), [("bf16", "package"), ("bf16", "cpu"),
                                             ("int8", "package"), ("int8", "cpu")])
def test_an_asked_path_keeps_fp32_where_it_cannot_run_and_says_why(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        path: str, cause: str) -> None:
    import importlib.util


    monkeypatch.setenv("SEMSEARCH_QUERY_PATH", path)
    if cause == "package":
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "openvino" else real(name, *a))
        expected = "semsearch[openvino]"
    else:
        monkeypatch.setenv("SEMSEARCH_CPU_FEATURES", "none")
        expected = "no bf16" if path == "bf16" else "no int8 dot-product"
    fp32 = load_encoder(str(tiny_model), "onnx")
    warm = load_encoder(str(tiny_model), "onnx")
    with caplog.at_level("WARNING", logger="semsearch.models.sessions"):
        assert warm.runner.warm() == "fp32 (onnxruntime)"  # type: ignore[attr-defined]
    assert warm.runner.query_session is None  # type: ignore[attr-defined]
    assert expected in caplog.text and "fp32" in caplog.text
    np.testing.assert_array_equal(fp32.encode_queries(QUERIES), warm.encode_queries(QUERIES))


def test_another_chosen_body_keeps_its_query_path(tiny_model: Path) -> None:
    """`--encoder openvino` (or onnx-int8) chose its body: warm loads only the tokenizer."""
    pytest.importorskip("openvino")
    encoder = load_encoder(str(tiny_model), "openvino")
    assert encoder.runner.warm() == "the loaded body"  # type: ignore[attr-defined]
    assert encoder.runner.query_session is None  # type: ignore[attr-defined]


def test_int8_weights_round_each_weight_to_its_channel_step(tiny_model: Path) -> None:
    """Every MatMul with a constant weight gets uint8 codes whose unpacked values lie within
    half a step (per output channel) of the fp32 weight."""
    ov = pytest.importorskip("openvino")
    from semsearch.models.openvino import int8_weights

    body = tiny_model / "onnx" / "model.onnx"
    model = ov.Core().read_model(str(body))
    before = {n.get_friendly_name(): np.array(n.input_value(1).get_node().data)
              for n in model.get_ordered_ops() if n.get_type_name() == "MatMul"
              and n.input_value(1).get_node().get_type_name() == "Constant"}
    assert int8_weights(model) == len(before) > 0
    for node in model.get_ordered_ops():
        if node.get_friendly_name() not in before:
            continue
        unpack = ov.Model([node.input_value(1)], [])
        got = ov.Core().compile_model(unpack, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({})[0]
        weight = before[node.get_friendly_name()]
        step = (np.maximum(weight.max(0), 0) - np.minimum(weight.min(0), 0)) / 255
        assert np.all(np.abs(got - weight) <= step * 0.5 + np.abs(weight) * 1e-3 + 1e-7)


@pytest.mark.parametrize(("path", "least"), [("bf16", 0.9999), ("int8", 0.9995)])
def test_query_paths_on_the_real_model(real_model: Path, monkeypatch: pytest.MonkeyPatch,
                                       path: str, least: float) -> None:
    """Real questions: cosine to fp32 above what the runtimes benchmark measured as each path's
    minimum over 2,000 questions (bf16 0.99998, int8 0.9997), the same vector alone and in a
    batch."""
    query_path(monkeypatch, path)
    from semsearch import bench

    questions = [q.query for q in bench.load_qrels(bench.DEFAULT_QRELS)]
    fp32 = load_encoder(str(real_model), "onnx")
    warm = load_encoder(str(real_model), "onnx")
    warm.runner.warm()  # type: ignore[attr-defined]
    a, b = fp32.encode_queries(questions), warm.encode_queries(questions)
    assert float((a * b).sum(axis=1).min()) > least
    np.testing.assert_array_equal(
        np.vstack([warm.encode_queries([q]) for q in questions[:8]]), b[:8])
