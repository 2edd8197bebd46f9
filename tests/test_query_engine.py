"""A built index embeds queries as the same index saved and opened does (issue 22: `semsearch
bench` indexes in memory, and its queries went through the int8 indexing body, so it measured a
query path no saved index runs, and a query's vector depended on the queries batched with it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import semsearch
from semsearch.index import Index
from semsearch.models.encoder import indexing_backend

from .conftest import SEEDS

QUERIES = ["夫妻党员抗疫", "information collectors", "150,000 yuan", "社区志愿者"]


def test_built_index_answers_as_saved_and_opened(real_model: Path, tmp_path: Path) -> None:
    built = semsearch.build([SEEDS])
    # the path provisioning measured for this CPU indexed it (bf16 or the checked int8 body)
    assert built.store.manifest.encoder == indexing_backend(real_model)
    built.save(tmp_path / "index")
    opened = Index.open(tmp_path / "index")
    assert built.encoder.backend == opened.encoder.backend == "onnx"
    for mode in ("dense", "hybrid"):
        got = built.search_batch(QUERIES, k=10, mode=mode)
        want = opened.search_batch(QUERIES, k=10, mode=mode)
        assert [[h.id for h in hits] for hits in got] == [[h.id for h in hits] for hits in want]
        np.testing.assert_array_equal([[h.score for h in hits] for hits in got],
                                      [[h.score for h in hits] for hits in want])


def test_a_query_vector_does_not_depend_on_its_batch(real_model: Path) -> None:
    built = semsearch.build([SEEDS])
    alone = built.encoder.encode_queries(QUERIES[:1])
    batched = built.encoder.encode_queries([QUERIES[0], "一个长得多的查询，" * 20, *QUERIES[1:]])
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)
