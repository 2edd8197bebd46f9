"""Retrieval quality: fusion agrees with ranx, and hybrid search holds the committed baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

import semsearch
from semsearch import bench
from semsearch.search import DEFAULT_INDEX, rrf, weighted_fusion

from .conftest import REPO

BASELINE = REPO / "benchmarks" / "baseline.json"


def _runs(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(2):
        ids = rng.permutation(30)[:12]
        scores = np.sort(rng.random(12))[::-1].astype(np.float32)
        runs.append((scores, ids))
    return runs


@pytest.mark.parametrize("seed", range(3))
def test_fusions_agree_with_ranx(seed: int) -> None:
    from ranx import Run, fuse

    runs = _runs(seed)
    ranx_runs = [Run({"q": {str(i): float(s) for s, i in zip(sc, ids, strict=True)}},
                     name=f"r{n}") for n, (sc, ids) in enumerate(runs)]
    expected = fuse(ranx_runs, method="rrf", params={"k": 60}).to_dict()["q"]
    ours = rrf([ids for _, ids in runs], k=60)
    assert ours.keys() == {int(i) for i in expected}
    for idx, score in ours.items():
        assert score == pytest.approx(expected[str(idx)])
    expected = fuse(ranx_runs, norm="min-max", method="wsum",
                    params={"weights": [0.5, 0.5]}).to_dict()["q"]
    ours = weighted_fusion(runs, (0.5, 0.5))
    for idx, score in ours.items():
        assert score == pytest.approx(expected[str(idx)], abs=1e-6)


@pytest.fixture(scope="module")
def results(real_model: object) -> dict[str, dict[str, float]]:
    index = semsearch.load(DEFAULT_INDEX)
    return bench.evaluate(index, bench.load_qrels(bench.DEFAULT_QRELS))["metrics"]


@pytest.mark.slow
def test_hybrid_holds_the_committed_baseline(results: dict[str, dict[str, float]]) -> None:
    baseline = json.loads(BASELINE.read_text("utf-8"))["metrics"]["hybrid"]
    for metric, value in baseline.items():
        assert results["hybrid"][metric] >= value - 1e-9, (metric, results["hybrid"], baseline)


@pytest.mark.slow
def test_hybrid_beats_each_mode_alone(results: dict[str, dict[str, float]]) -> None:
    for metric in ("recall@5", "mrr@10"):
        assert results["hybrid"][metric] >= max(results["dense"][metric], results["bm25"][metric])
    assert results["hybrid"]["recall@5"] >= 0.95


@pytest.mark.slow
def test_couple_queries_in_three_forms(real_model: object) -> None:
    index = semsearch.load(DEFAULT_INDEX)
    simplified, english, traditional = index.search_batch(
        ["夫妻党员抗疫", "husband and wife, both Party members, fighting the epidemic",
         "夫妻黨員抗疫"], k=3)

    def couples(hits: list[semsearch.Hit]) -> set[str]:
        markers = ("我们夫妻俩都是党员", "上阵夫妻档")
        return {h.source[:3] for h in hits if any(m in h.text for m in markers)}

    assert couples(simplified) == {"000", "002"}
    assert couples(english)
    assert couples(traditional) == {"000", "002"}
    assert [h.text for h in traditional] == [h.text for h in simplified]
