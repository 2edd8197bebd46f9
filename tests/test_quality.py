"""Retrieval quality: fusion agrees with ranx, and hybrid search holds the committed baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

import semsearch
from semsearch import bench
from semsearch.fusion import rrf, weighted_fusion
from semsearch.stores import DEFAULT_INDEX

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


class _LetterEncoder:
    """Encodes a text as the unit vector of its characters' code points mod 8 (no model)."""

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        out = np.zeros((len(queries), 8), dtype=np.float32)
        for row, text in enumerate(queries):
            for ch in text:
                out[row, ord(ch) % 8] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_dense_queries_embed_written_and_folded_forms() -> None:
    """Traditional queries are embedded as written and folded to simplified, and the two
    vectors averaged (measured on DRCD: see benchmarks/results/quality-drcd-test.md); a query
    with nothing to fold is embedded once, as written."""
    from semsearch import search

    assert search.DENSE_QUERY == "both"
    encoder = _LetterEncoder()
    got = search.query_vectors(encoder, ["夫妻党员抗疫", "夫妻黨員抗疫"])  # type: ignore[arg-type]
    written, folded = encoder.encode_queries(["夫妻黨員抗疫", "夫妻党员抗疫"])
    np.testing.assert_allclose(got[0], folded, atol=1e-6)
    mean = (written + folded) / np.linalg.norm(written + folded)
    np.testing.assert_allclose(got[1], mean, atol=1e-6)


# How many questions hybrid's hits@1/5/10 may move between two honest runs, per set: the largest
# spread measured by benchmarks/reproducibility.py (benchmarks/results/reproducibility.md).
# Provisioning from an empty cache twice gave identical model files (SHA-256; only export.json's
# source path differs), so provisioning adds nothing. Building each set twice — records in
# order with one process, then reversed with two: other token-budget batches, so other dynamic
# int8 activation scales in the indexing body — moved hybrid by at most 1 question on the seeds
# (68) and CMRC (1,000), 4 on DRCD (3,493: hits@1 3,254 vs 3,258, hits@5 3,475 vs 3,473), 2 on
# XQuAD en→zh and 4 on zh→en (632 each: hits@1 459 vs 455) and 0 on XQuAD zh and mixed (taken
# as 1, the smallest step a count takes); the in-order builds matched the committed baseline
# exactly. Dense moves more (DRCD hits@1 by 7, 0.2 points), which is why only hybrid is held
# to the baseline. A regression of the size that matters still fails: 2 questions on the seeds,
# CMRC and XQuAD zh/mixed, 3 on en→zh, 5 on DRCD (0.14 points) and zh→en.
TOLERANCE = {"seeds": 1, "cmrc-trial": 1, "drcd-test": 4, "xquad-en2zh": 2, "xquad-zh2en": 4,
             "xquad-zh": 1, "xquad-mixed": 1}
KS = ("hits@1", "hits@5", "hits@10")


def held(got: dict[str, int], recorded: dict[str, int], slack: int) -> list[str]:
    """The hits@k where `got` answers more than `slack` questions fewer than `recorded`."""
    return [f"{k}: {got[k]} < {recorded[k]} - {slack}" for k in KS
            if got[k] < recorded[k] - slack]


def test_held_counts_what_matters() -> None:
    """The comparison itself: within the tolerance passes; a regression past it fails — three
    questions everywhere but DRCD (7, 0.2 points, fails there) and XQuAD zh→en (5: its
    measured spread is 4 of 632)."""
    recorded = {"hits@1": 981, "hits@5": 997, "hits@10": 998}
    must_fail = {"drcd-test": 7, "xquad-zh2en": 5}
    for name, slack in TOLERANCE.items():
        assert not held({k: v - slack for k, v in recorded.items()}, recorded, slack)
        drop = must_fail.get(name, 3)
        assert held({**recorded, "hits@5": 997 - drop}, recorded, slack) == [
            f"hits@5: {997 - drop} < 997 - {slack}"], name


@pytest.fixture(scope="module")
def results(real_model: object) -> dict[str, dict[str, int]]:
    index = semsearch.load(DEFAULT_INDEX)
    return bench.evaluate(index, bench.load_qrels(bench.DEFAULT_QRELS))["counts"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_hybrid_holds_the_committed_baseline(results: dict[str, dict[str, int]]) -> None:
    recorded = json.loads(BASELINE.read_text("utf-8"))["counts"]["hybrid"]
    assert not held(results["hybrid"], recorded, TOLERANCE["seeds"]), (results, recorded)


@pytest.mark.slow
def test_hybrid_beats_each_mode_alone(results: dict[str, dict[str, int]]) -> None:
    for k in KS:
        assert results["hybrid"][k] >= max(results["dense"][k], results["bm25"][k]), results
    assert results["hybrid"]["hits@5"] >= 65  # of 68


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


PUBLIC_SETS = ("cmrc-trial", "drcd-test")


@pytest.mark.slow
@pytest.mark.parametrize("name", PUBLIC_SETS)
def test_public_sets_hold_their_baseline(real_model: object, name: str) -> None:
    """Index the set's records in memory (the slow part: DRCD's 1,000 paragraphs take minutes on
    two cores), then hybrid must answer as many questions within 1, 5 and 10 hits as recorded
    (less TOLERANCE), as many as dense and bm25 alone in the same run, and as many as the naive
    baselines recorded beside it (plain sentence-transformers and plain bm25s, measured by
    `semsearch bench`; less TOLERANCE, since they were measured on another run)."""
    recorded = json.loads(BASELINE.read_text("utf-8"))["datasets"][name]["counts"]
    data = bench.load_dataset(name)
    index = bench.build_index(data)
    # DRCD's dense run (55 s) is compared as recorded; CMRC's is measured here
    modes = ("dense", "bm25", "hybrid") if name == "cmrc-trial" else ("bm25", "hybrid")
    counts = {mode: bench.hit_counts(data.qrels, bench.record_run(index, data.queries, mode))
              for mode in modes}
    hybrid, slack = counts["hybrid"], TOLERANCE[name]
    assert not held(hybrid, recorded["hybrid"], slack), (name, hybrid, recorded["hybrid"])
    for mode in ("dense", "bm25"):
        measured = mode in counts
        other = counts.get(mode, recorded[mode])
        assert not held(hybrid, other, 0 if measured else slack), (name, mode, counts)
    for naive in bench.NAIVE_MODES:
        assert not held(hybrid, recorded[naive], slack), (name, naive, hybrid)
    assert hybrid["hits@5"] >= {"cmrc-trial": 990, "drcd-test": 3441}[name]


XQUAD_SETS = ("xquad-en2zh", "xquad-zh2en", "xquad-zh", "xquad-mixed")


@pytest.mark.slow
@pytest.mark.parametrize("name", XQUAD_SETS)
def test_xquad_sets_hold_their_baseline(real_model: object, name: str) -> None:
    """XQuAD's shipped half, questions over paragraphs in the same, the other, or both
    languages (~1 min each on two cores). Hybrid must hold its recorded counts (less TOLERANCE)
    and answer as many questions within 5 and 10 hits as dense and bm25 of the same run, and
    within 1 hit less one question at most: before BM25 was weighed by how much of the query it
    can match, hybrid fell 104 questions (0.16 Recall@1) below dense on English questions over
    Chinese paragraphs; names in Latin script inside the Chinese paragraphs still cost one."""
    recorded = json.loads(BASELINE.read_text("utf-8"))["datasets"][name]["counts"]
    data = bench.load_dataset(name)
    index = bench.build_index(data)
    counts = {mode: bench.hit_counts(data.qrels, bench.record_run(index, data.queries, mode,
                                                                  units=data.units))
              for mode in ("dense", "bm25", "hybrid")}
    hybrid, slack = counts["hybrid"], TOLERANCE[name]
    assert not held(hybrid, recorded["hybrid"], slack), (name, hybrid, recorded["hybrid"])
    for mode in ("dense", "bm25"):
        assert not held(hybrid, {**counts[mode], "hits@1": counts[mode]["hits@1"] - 1}, 0), (
            name, mode, counts)
