"""Which runtime runs the body on this CPU (models/sessions.py, issue 36): bf16 by what OpenVINO
reports (AVX-512 BF16 as well as AMX), the indexing path that `semsearch provision` measured
for this CPU, and clean fallbacks where a CPU has neither bf16 nor int8 (tiny model)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from semsearch.cli import app
from semsearch.models import sessions
from semsearch.models.encoder import calibrate, indexing_backend, load_encoder, measured
from semsearch.models.onnx import ONNX_DIR

from .conftest import free_port

AMD_EPYC = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})  # no amx_bf16


@pytest.fixture(autouse=True)
def simulated_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests simulate their CPU (cpu_flags, openvino_capabilities): a
    SEMSEARCH_CPU_FEATURES the whole suite runs under (e.g. `none`, the issue's fp32 check)
    must not override it; the test of that variable sets it itself."""
    monkeypatch.delenv(sessions.FEATURES_ENV, raising=False)


def test_bf16_is_what_openvino_reports_not_an_amx_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """An AMD EPYC has AVX-512 BF16 and no AMX; OpenVINO reports BF16 there and runs it. The
    old check (`amx_bf16` in /proc/cpuinfo) switched bf16 off on it."""
    monkeypatch.setattr(sessions, "openvino_installed", lambda: True)
    monkeypatch.setattr(sessions, "cpu_flags", lambda: AMD_EPYC)
    monkeypatch.setattr(sessions, "openvino_capabilities", lambda: ("BF16", "FP32", "INT8"))
    assert sessions.bf16_capable() and sessions.int8_capable()
    assert sessions.query_path_unavailable("bf16") is None
    # an AMX flag without OpenVINO's word for it is not enough
    monkeypatch.setattr(sessions, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    monkeypatch.setattr(sessions, "openvino_capabilities", lambda: ("FP32",))
    assert not sessions.bf16_capable()
    assert "no bf16" in str(sessions.query_path_unavailable("bf16"))


def test_the_service_embeds_queries_in_bf16_on_an_avx512_bf16_cpu(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openvino")
    monkeypatch.delenv("SEMSEARCH_QUERY_PATH", raising=False)
    monkeypatch.setattr(sessions, "cpu_flags", lambda: AMD_EPYC)
    monkeypatch.setattr(sessions, "openvino_capabilities", lambda: ("BF16", "FP32"))
    warm = load_encoder(str(tiny_model), "onnx")
    assert warm.runner.warm() == "bf16 (OpenVINO)"  # type: ignore[attr-defined]


def test_cpu_features_env_turns_paths_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "cpu_flags", lambda: AMD_EPYC)
    monkeypatch.setattr(sessions, "openvino_capabilities", lambda: ("BF16",))
    monkeypatch.setenv(sessions.FEATURES_ENV, "none")
    assert not sessions.bf16_capable() and not sessions.int8_capable()
    assert sessions.runnable(int8_checked=True) == ["fp32"]
    monkeypatch.setenv(sessions.FEATURES_ENV, "int8")
    assert sessions.runnable(int8_checked=True) == ["int8", "fp32"]
    assert sessions.runnable(int8_checked=False) == ["fp32"]


class Stub:
    """An encoder whose vectors are given and whose encoding costs `cost` seconds of a fake
    process clock."""

    def __init__(self, vectors: np.ndarray, queries: np.ndarray, cost: float,
                 clock: list[float]) -> None:
        self.vectors, self.queries, self.cost, self.clock = vectors, queries, cost, clock

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.clock[0] += self.cost
        return self.vectors

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.queries


def calibrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               costs: dict[str, float], faithful: dict[str, bool]) -> dict[str, object]:
    """Run `sessions.calibrate` on 3 queries over 6 passages: each query answered by the
    passage of its own number; an unfaithful path ranks every answer last."""
    monkeypatch.setattr(sessions, "cpu_flags", lambda: AMD_EPYC)
    monkeypatch.setattr(sessions, "openvino_capabilities", lambda: ("BF16",))
    clock = [0.0]
    monkeypatch.setattr(sessions.time, "process_time", lambda: clock[0])
    good = np.eye(6, dtype=np.float32)
    bad = np.roll(good, 3, axis=0)
    queries = good[:3]
    return sessions.calibrate(
        tmp_path, True, ["p"] * 6, ["q"] * 3, [{0}, {1}, {2}],
        open_path=lambda path: Stub(good if faithful.get(path, True) else bad, queries,
                                    costs[path], clock))  # type: ignore[arg-type,return-value]


def test_calibrate_chooses_the_fastest_path_within_fp32s_quality(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # int8 as fast as bf16 but moving answers: bf16 (the AMD EPYC's case)
    record = calibrated(tmp_path, monkeypatch, {"bf16": 2.26, "int8": 2.36, "fp32": 4.71},
                        {"int8": False})
    assert record["chosen"] == "bf16"
    measured_paths = record["measured"]
    assert isinstance(measured_paths, dict) and not measured_paths["int8"]["within"]
    assert measured_paths["bf16"]["recall@5"] == measured_paths["fp32"]["recall@5"] == 1.0
    # both within, int8 5% faster: not clearly faster, so the more faithful bf16
    assert calibrated(tmp_path, monkeypatch, {"bf16": 2.0, "int8": 1.9, "fp32": 4.0},
                      {})["chosen"] == "bf16"
    # int8 within and a third faster: int8
    assert calibrated(tmp_path, monkeypatch, {"bf16": 3.0, "int8": 2.0, "fp32": 4.0},
                      {})["chosen"] == "int8"
    # neither faster than fp32 by 10%: fp32
    assert calibrated(tmp_path, monkeypatch, {"bf16": 3.9, "int8": 3.8, "fp32": 4.0},
                      {})["chosen"] == "fp32"


def test_indexing_follows_the_record_of_this_cpu_only(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is keyed by CPU: a cache copied to another CPU falls back (fp32 for the tiny
    model, which has no checked int8 body); a recorded path this machine cannot run falls back
    too."""
    pytest.importorskip("openvino")
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    monkeypatch.setattr(sessions, "cpu_flags", lambda: AMD_EPYC)
    monkeypatch.setattr(sessions, "openvino_capabilities", lambda: ("BF16",))
    assert indexing_backend(model) == "onnx" and measured(model) is None
    record = {"chosen": "bf16", "cpu": sessions.cpu_name(), "measured": {}}
    (model / ONNX_DIR / sessions.RECORD).write_text(json.dumps({sessions.cpu_key(): record}))
    assert indexing_backend(model) == "openvino"
    assert load_encoder(str(model), for_indexing=True).backend == "openvino"
    assert load_encoder(str(model)).backend == "onnx"  # queries: fp32
    monkeypatch.setenv(sessions.FEATURES_ENV, "none")  # bf16 cannot run here
    assert indexing_backend(model) == "onnx"
    monkeypatch.delenv(sessions.FEATURES_ENV)
    monkeypatch.setattr(sessions, "cpu_flags", lambda: frozenset({"avx2"}))  # another CPU
    assert measured(model) is None and indexing_backend(model) == "onnx"


def test_calibrate_on_a_real_export_records_each_path(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole measurement on the tiny model's export: every runnable path timed and
    checked against fp32, the record written beside the export and read back."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    passages = ["夫妻党员抗疫", "社区志愿者送菜上门", "The committee met on Tuesday.",
                "北京是中华人民共和国的首都。", "捐款15万元", "semantic search"]
    record = calibrate(model, passages, passages[:3], [{0}, {1}, {2}])
    assert record == measured(model)
    assert set(record["measured"]) == set(sessions.runnable(int8_checked=False))
    assert record["measured"]["fp32"]["within"] and record["measured"]["fp32"]["min_cosine"] == 1
    assert record["chosen"] in record["measured"]


def test_info_says_which_path_indexes_here(tiny_model: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from semsearch.models import provision, resolve

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    calibrate(model, ["夫妻党员抗疫", "semantic search"], ["夫妻"], [{0}])
    monkeypatch.setattr(provision, "is_provisioned", lambda *a: True)
    monkeypatch.setattr(resolve, "provisioned_dir", lambda: model)
    from semsearch.stores import DEFAULT_INDEX

    result = CliRunner().invoke(app, ["info", "--index", str(DEFAULT_INDEX)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "indexing here" in result.output and "CPU s on the seeds" in result.output


def test_a_calibration_whose_write_is_interrupted_leaves_the_old_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up halfway through writing paths.json: the record measured before is
    still there, whole, and no temporary file is left beside it."""
    import errno
    import io

    first = calibrated(tmp_path, monkeypatch, {"bf16": 2.26, "int8": 2.36, "fp32": 4.71},
                       {"int8": False})
    before = (tmp_path / sessions.RECORD).read_text(encoding="utf-8")
    real_open = io.open

    class Full:
        """A file on a full disk: half of what is written gets there, then ENOSPC."""

        def __init__(self, handle: io.TextIOWrapper) -> None:
            self.handle = handle

        def write(self, text: str) -> int:
            self.handle.write(text[:len(text) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> object:
            return getattr(self.handle, name)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

    def full_disk(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        handle = real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]
        written = "w" in mode and sessions.RECORD in Path(str(file)).name
        return Full(handle) if written else handle

    monkeypatch.setattr(io, "open", full_disk)
    with pytest.raises(OSError):
        calibrated(tmp_path, monkeypatch, {"bf16": 3.0, "int8": 2.0, "fp32": 4.0}, {})
    monkeypatch.setattr(io, "open", real_open)
    assert (tmp_path / sessions.RECORD).read_text(encoding="utf-8") == before
    assert sessions.read_record(tmp_path) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [sessions.RECORD]


def test_info_reads_the_record_once(tiny_model: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`semsearch info` shows the chosen path and the seconds measured from one reading of
    paths.json (two readings could straddle a new calibration and mix two records)."""
    import shutil

    from semsearch.models import provision, resolve

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    calibrate(model, ["夫妻党员抗疫", "semantic search"], ["夫妻"], [{0}])
    monkeypatch.setattr(provision, "is_provisioned", lambda *a: True)
    monkeypatch.setattr(resolve, "provisioned_dir", lambda: model)
    reads = []
    read_text = Path.read_text

    def counted(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == sessions.RECORD:
            reads.append(self)
        return read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counted)
    from semsearch.stores import DEFAULT_INDEX

    result = CliRunner().invoke(app, ["info", "--index", str(DEFAULT_INDEX)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "CPU s on the seeds" in result.output
    assert len(reads) == 1, reads


@pytest.mark.parametrize("streams", ["", "2"])
def test_the_service_embeds_query_batches_on_every_core(
        tiny_index: Path, monkeypatch: pytest.MonkeyPatch, streams: str) -> None:
    """`semsearch serve` compiles its bf16 query body as one stream on every core, or with
    SEMSEARCH_QUERY_STREAMS=N as N streams of one thread each, with a batch runner per stream:
    on a quiet 2-core AMD EPYC one stream of one thread left a core idle (8 clients: 87 against
    138 requests/s for one stream of two threads, serve.py)."""
    pytest.importorskip("openvino")
    import uvicorn

    from semsearch import serve
    from semsearch.index import Index

    monkeypatch.delenv("SEMSEARCH_QUERY_PATH", raising=False)
    monkeypatch.setenv(serve.QUERY_STREAMS_ENV, streams)
    cores = os.cpu_count() or 1  # what OpenVINO runs on when not told
    monkeypatch.setattr(serve.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sessions, "cpu_flags", lambda: AMD_EPYC)
    monkeypatch.setattr(sessions, "openvino_capabilities", lambda: ("BF16", "FP32"))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    monkeypatch.setattr(serve, "MAX_BATCH", 2)  # fewer shapes to prepare
    apps = []
    config = serve.uvicorn_config
    monkeypatch.setattr(serve, "uvicorn_config", lambda app, *a, **k: apps.append(app)
                        or config(app, *a, **k))
    index = Index.open(tiny_index)
    serve.run(index, port=free_port())
    compiled = index.encoder.runner.query_session._compiled  # type: ignore[attr-defined]
    expected = int(streams or 1)
    assert compiled.get_property("NUM_STREAMS") == expected
    threads = compiled.get_property("INFERENCE_NUM_THREADS")
    assert threads == ((index.encoder.runner.threads or cores) if expected == 1 else expected)
    assert apps[0].state.batcher.workers == expected


@pytest.mark.parametrize("value", ["0", "3", "two", "-1", "１"])
def test_a_bad_query_streams_setting_is_one_clear_error(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from semsearch import serve
    from semsearch.errors import QueryError

    monkeypatch.setenv(serve.QUERY_STREAMS_ENV, value)
    monkeypatch.setattr(serve.os, "cpu_count", lambda: 2)
    with pytest.raises(QueryError, match="SEMSEARCH_QUERY_STREAMS must be a whole number "
                                         "from 1 to 2"):
        serve.query_streams()
