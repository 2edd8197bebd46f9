"""Sentence vectors in Milvus (a second collection, stores/milvus.py): the same hits and best
sentences as the FAISS index of the same passages, rows kept in step by add and remove."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import semsearch
from semsearch import bench
from semsearch.errors import UsageError
from semsearch.index import Index
from semsearch.stores import migrate, milvus

from .conftest import SEEDS

SOURCE = "002_b3706f758604a439.txt"


def _sentence_rows(store: milvus.MilvusStore) -> list[tuple[int, int, int]]:
    assert store.sentences is not None
    rows = store.client.query(store.sentences.collection, filter="passage_id >= 0",
                              output_fields=["passage_id", "start", "end"])
    return sorted((int(r["passage_id"]), int(r["start"]), int(r["end"])) for r in rows)


def _same_top5(a: Index, b: Index, mode: str) -> None:
    queries = [q.query for q in bench.load_qrels(bench.DEFAULT_QRELS)]
    assert len(queries) == 68
    x = a.search_batch(queries, 5, mode)  # type: ignore[arg-type]
    y = b.search_batch(queries, 5, mode)  # type: ignore[arg-type]
    assert [[h.id for h in hits] for hits in y] == [[h.id for h in hits] for hits in x]
    for one, other in zip(x, y, strict=True):
        np.testing.assert_allclose([h.score for h in other], [h.score for h in one], atol=1e-5)
        assert [h.best_sentence and (h.best_sentence.start, h.best_sentence.end)
                for h in other] == [h.best_sentence and (h.best_sentence.start,
                                                         h.best_sentence.end) for h in one]


@pytest.fixture(scope="module")
def built(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("sentences-milvus")
    Index.build([SEEDS], str(tiny_model), location=folder / "faiss", granularity="sentence",
                index_type="flat")
    uri = str(folder / "seeds.db")
    Index.build([SEEDS], str(tiny_model), location=uri, granularity="sentence",
                index_type="flat")
    return folder / "faiss", uri


def test_milvus_holds_sentence_vectors_and_answers_like_faiss(built: tuple[Path, str],
                                                              tiny_model: Path) -> None:
    faiss_dir, uri = built
    on_faiss = semsearch.open(faiss_dir, str(tiny_model))
    on_milvus = semsearch.connect(uri, model=str(tiny_model))
    assert on_milvus.manifest.granularity == "sentence"
    store = on_milvus.store
    assert isinstance(store, milvus.MilvusStore)
    assert _sentence_rows(store) == sorted(
        tuple(r) for r in on_faiss.store.sentences.rows.tolist())  # type: ignore[attr-defined]
    assert len(store.sentences) == len(on_faiss.store.sentences)  # type: ignore[arg-type]
    _same_top5(on_faiss, on_milvus, "dense")
    from typer.testing import CliRunner

    from semsearch.cli import app

    result = CliRunner().invoke(app, ["info", "--index", uri])
    assert result.exit_code == 0 and "sentence vectors" in result.stdout, result.output
    hits = on_milvus.search("夫妻党员抗疫", k=5, mode="dense",
                            where=f'source == "{SOURCE}"')
    assert hits and all(h.source == SOURCE for h in hits)


def test_milvus_sentence_rows_follow_add_and_remove(built: tuple[Path, str], tiny_model: Path,
                                                    tmp_path: Path) -> None:
    _, uri = built
    extra = tmp_path / "docs" / "new.txt"
    extra.parent.mkdir()
    extra.write_text("第一句话讲的是春天的故事。第二句话讲的是秋天的收获。第三句话讲冬天。\n",
                     encoding="utf-8")
    index = semsearch.connect(uri, model=str(tiny_model))
    store = index.store
    assert isinstance(store, milvus.MilvusStore)
    before = _sentence_rows(store)
    index.add([extra])
    added = {pid for pid, p in store.iter_passages() if p.source.endswith("new.txt")}
    rows = _sentence_rows(store)
    assert len(rows) > len(before) and {r[0] for r in rows} - {r[0] for r in before} == added
    hit = index.search("秋天的收获", k=1, mode="dense",
                       where='source == "new.txt"')[0]
    assert hit.best_sentence is not None
    assert hit.text[hit.best_sentence.start:hit.best_sentence.end].startswith("第")
    source = next(s for s in index.manifest.sources if s.endswith("new.txt"))
    index.remove(source)
    assert _sentence_rows(store) == before


def test_migrate_still_refuses_sentence_vectors(built: tuple[Path, str],
                                                tmp_path: Path) -> None:
    faiss_dir, _ = built
    with pytest.raises(UsageError, match="sentence vectors"):
        migrate(semsearch.open(faiss_dir).store, str(tmp_path / "copy.db"))


def test_seeds_with_sentences_answer_alike_on_faiss_and_milvus(real_model: Path,
                                                               tmp_path: Path) -> None:
    """The done criterion: with sentence vectors, exact Milvus Lite returns FAISS's top-5 (and
    best sentences) for all 68 seeds queries in dense search."""
    Index.build([SEEDS], location=tmp_path / "faiss", granularity="sentence",
                index_type="flat")
    Index.build([SEEDS], location=str(tmp_path / "seeds.db"), granularity="sentence",
                index_type="flat")
    _same_top5(semsearch.open(tmp_path / "faiss"), semsearch.connect(tmp_path / "seeds.db"),
               "dense")
