"""Encoding in several processes (`--workers`) and on Ray's local mode (`--ray`), issue 15:
the same vectors as one process, in order, with progress, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import semsearch
from semsearch.errors import UsageError
from semsearch.models import parallel
from semsearch.models.encoder import load_encoder

from .test_index import vectors
from .test_reliability import corpus, run_cli  # noqa: F401  (the corpus fixture)

TEXTS = [("社区志愿者" * (1 + i % 9)) + f"第{i}段，送去口罩和蔬菜。" for i in range(70)]


def test_pool_gives_the_vectors_of_one_process(tiny_model: Path) -> None:
    encoder = load_encoder(str(tiny_model), "onnx")
    alone = encoder.encode_passages(TEXTS)
    done: list[int] = []
    with parallel.pool_encoder(encoder, 2) as pool:
        got = pool.encode_passages(TEXTS, done.append)
        again = pool.encode_passages(TEXTS[:5])  # the workers stay up between calls
        assert pool.encode_queries(["口罩"]).shape == (1, encoder.info.dimension)
    np.testing.assert_allclose(got, alone, atol=1e-6)
    np.testing.assert_allclose(again, alone[:5], atol=1e-6)
    assert sum(done) == len(TEXTS) and len(done) > 1


@pytest.mark.slow  # > 10 s on 2 CPUs: `make test-all`
def test_ray_local_mode_gives_the_vectors_of_one_process(tiny_model: Path) -> None:
    pytest.importorskip("ray", reason="the 'ray' extra is not installed")
    encoder = load_encoder(str(tiny_model), "onnx")
    alone = encoder.encode_passages(TEXTS)
    done: list[int] = []
    with parallel.ray_encoder(encoder, 2) as on_ray:
        got = on_ray.encode_passages(TEXTS, done.append)
    # Ray batches of RAY_BATCH passages are batched again by each actor: other paddings, so
    # equal to float rounding, and in the order given
    np.testing.assert_allclose(got, alone, atol=1e-5)
    assert sum(done) == len(TEXTS)


def test_cli_index_with_workers_equals_one_process(corpus: Path,  # noqa: F811
                                                   tiny_model: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for out, extra in ((one, []), (two, ["--workers", "2"])):
        result = run_cli("index", str(corpus), "--out", str(out), "--model", str(tiny_model),
                         *extra)
        assert result.returncode == 0, result.stderr
    a, b = semsearch.load(one), semsearch.load(two)
    assert a.passages == b.passages
    np.testing.assert_allclose(vectors(a), vectors(b), atol=1e-6)


def test_bad_worker_settings_are_refused(corpus: Path, tiny_model: Path,  # noqa: F811
                                         tmp_path: Path) -> None:
    result = run_cli("index", str(corpus), "--out", str(tmp_path / "x"), "--workers", "0")
    assert result.returncode == 2 and "--workers" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(UsageError, match="at least 1"):
        parallel.pool_encoder(load_encoder(str(tiny_model), "onnx"), 0)


def test_pool_needs_the_onnx_encoder(tiny_model: Path) -> None:
    class Torchish:
        backend = "torch"

    with pytest.raises(UsageError, match="ONNX encoder"):
        parallel.pool_encoder(Torchish(), 2)  # type: ignore[arg-type]


@pytest.mark.slow  # > 10 s on 2 CPUs: `make test-all`
def test_cli_index_on_ray_equals_one_process(corpus: Path,  # noqa: F811
                                             tiny_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the 'ray' extra is not installed")
    one, on_ray = tmp_path / "one", tmp_path / "ray"
    for out, extra in ((one, []), (on_ray, ["--ray", "--workers", "2"])):
        result = run_cli("index", str(corpus), "--out", str(out), "--model", str(tiny_model),
                         *extra)
        assert result.returncode == 0, result.stderr
    a, b = semsearch.load(one), semsearch.load(on_ray)
    assert a.passages == b.passages
    np.testing.assert_allclose(vectors(a), vectors(b), atol=1e-5)


def test_ray_missing_names_the_extra(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from semsearch.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(MissingDependencyError, match=r"semsearch\[ray\]"):
        parallel.ray_encoder(load_encoder(str(tiny_model), "onnx"), 2)
