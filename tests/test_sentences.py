"""Sentence splitting and sentence vectors beside passage vectors (granularity "sentence")."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import semsearch
from semsearch import sentences
from semsearch.errors import IndexLoadError, UsageError
from semsearch.index import Index
from semsearch.models.encoder import ModelInfo
from semsearch.stores import migrate
from semsearch.stores import sentences as sentence_store
from semsearch.stores.generations import live_dir

from .conftest import SEEDS

SHIPPED = Path(semsearch.__file__).resolve().parent / "data" / "indexes" / "seeds"


def pieces(text: str) -> list[str]:
    return [text[s:e] for s, e in sentences.split(text)]


def test_chinese_sentences_end_after_closing_quotes() -> None:
    text = "我们在武汉抗疫一线坚守。她说：“我们夫妻俩都是党员！”然后他们一起回家了。"
    assert pieces(text) == ["我们在武汉抗疫一线坚守。", "她说：“我们夫妻俩都是党员！”",
                            "然后他们一起回家了。"]


def test_numbers_and_abbreviations_do_not_end_sentences() -> None:
    text = ("Dr. Sun paid 3.5 million U.S. dollars in 2020, e.g. for masks. "
            "The hospital opened in March. It treated many patients.")
    assert pieces(text) == ["Dr. Sun paid 3.5 million U.S. dollars in 2020, e.g. for masks.",
                            "The hospital opened in March.", "It treated many patients."]


def test_a_lower_case_word_after_a_dot_continues_the_sentence() -> None:
    assert pieces("He came at 5 p.m. and left soon after that day.") == [
        "He came at 5 p.m. and left soon after that day."]


def test_questions_and_mixed_languages_split() -> None:
    text = "Where did the couple work during the outbreak? 他们在社区核酸检测点值守。"
    assert pieces(text) == ["Where did the couple work during the outbreak?",
                            "他们在社区核酸检测点值守。"]


def test_short_sentences_join_a_neighbour() -> None:
    text = "好。这是一个比较长的句子，没有问题。"
    assert pieces(text) == [text]
    assert pieces("It rained all day long. Yes.") == ["It rained all day long. Yes."]


def test_whitespace_only_has_no_sentence() -> None:
    assert sentences.split("  \n ") == []


_ALPHABET = st.sampled_from([*"ab 中文。！？.!?”」)\n3.5Dr", "U.S.", " The", "e.g. "])


@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_spans_slice_the_text_in_order_and_cover_it(text: str) -> None:
    spans = sentences.split(text)
    position = 0
    for start, end in spans:
        assert position <= start < end <= len(text)
        assert text[position:start].strip() == ""  # only whitespace between sentences
        assert text[start:end] == text[start:end].strip()
        position = end
    assert text[position:].strip() == ""


# --- sentence vectors in an index (tiny random model) ---------------------------------------


@pytest.fixture(scope="module")
def sentence_index(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sentences") / "idx"
    Index.build([SEEDS], str(tiny_model), location=out, granularity="sentence")
    return out


def test_sentence_vectors_are_saved_checksummed_and_loaded(sentence_index: Path) -> None:
    generation = live_dir(sentence_index)
    manifest = json.loads((generation / "manifest.json").read_text("utf-8"))
    assert manifest["granularity"] == "sentence"
    assert {"sentences.faiss", "sentences.npy"} <= set(manifest["files"])
    index = semsearch.open(sentence_index)
    rows = index.store.sentences.rows  # type: ignore[attr-defined]
    passages = dict(index.store.iter_passages())
    assert len(rows) > 0 and (np.diff(rows[:, 0]) >= 0).all()
    for pid, start, end in rows.tolist():  # offsets into their passage's text
        text = passages[pid].text
        assert 0 <= start < end <= len(text) and text[start:end] == text[start:end].strip()
    # only passages of two or more sentences have sentence vectors
    counts = np.unique(rows[:, 0], return_counts=True)[1]
    assert counts.min() >= 2


def test_a_hit_names_its_best_sentence_and_mixes_its_score(sentence_index: Path) -> None:
    index = semsearch.open(sentence_index)
    query = "夫妻党员抗疫"
    hits = index.search(query, k=5, mode="dense")
    assert hits and all(h.best_sentence is not None for h in hits)
    q = index.encoder.encode_queries([query])[0]
    store = index.store
    w = sentence_store.SENTENCE_MIX
    for hit in hits:
        best = hit.best_sentence
        assert best is not None and 0 <= best.start < best.end <= len(hit.text)
        own = float(store.vectors(np.array([hit.id]))[0] @ q)
        assert hit.to_dict()["best_sentence"]["start"] == best.start
        if (best.start, best.end) == (0, len(hit.text)):  # a passage of one sentence
            assert hit.score == pytest.approx(own, abs=1e-4)
        else:
            assert hit.score == pytest.approx(w * own + (1 - w) * best.score, abs=2e-3)
    assert all(h.best_sentence is None for h in index.search(query, k=3, mode="bm25"))


def test_sentence_rows_follow_add_and_remove(sentence_index: Path, tmp_path: Path) -> None:
    target = tmp_path / "idx"
    shutil.copytree(sentence_index, target)
    extra = tmp_path / "docs" / "new.txt"
    extra.parent.mkdir()
    extra.write_text("第一句话讲的是春天的故事。第二句话讲的是秋天的收获。第三句话讲冬天。\n",
                     encoding="utf-8")
    index = semsearch.open(target, writable=True)
    before = len(index.store.sentences)  # type: ignore[arg-type,attr-defined]
    index.add([extra])
    added = [pid for pid, p in index.store.iter_passages() if p.source.endswith("new.txt")]
    rows = index.store.sentences.rows  # type: ignore[attr-defined]
    assert len(rows) > before and set(rows[len(rows) - (len(rows) - before):, 0]) == set(added)
    index.save()
    reopened = semsearch.open(target, writable=True)
    assert len(reopened.store.sentences) == len(rows)  # type: ignore[arg-type,attr-defined]
    source = next(s for s in reopened.manifest.sources if s.endswith("new.txt"))
    reopened.remove(source)
    reopened.save()
    final = semsearch.open(target)
    assert len(final.store.sentences) == before  # type: ignore[arg-type,attr-defined]
    assert not set(final.store.sentences.rows[:, 0]) & set(added)  # type: ignore[attr-defined]


def test_a_damaged_sentence_file_is_refused(sentence_index: Path, tmp_path: Path) -> None:
    target = tmp_path / "idx"
    shutil.copytree(sentence_index, target)
    rows = live_dir(target) / "sentences.npy"
    rows.write_bytes(rows.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(IndexLoadError, match="checksum"):
        semsearch.open(target)


def test_a_passage_index_keeps_its_manifest_format(tiny_index: Path) -> None:
    manifest = json.loads((live_dir(tiny_index) / "manifest.json").read_text("utf-8"))
    assert "granularity" not in manifest  # as written before sentence vectors existed
    index = semsearch.open(tiny_index)
    assert index.manifest.granularity == "passage"
    hits = index.search("党员", k=3, mode="dense")
    assert hits and all(h.best_sentence is None and "best_sentence" not in h.to_dict()
                        for h in hits)


def test_the_shipped_seeds_index_opens_as_passage_index_unchanged() -> None:
    files = {f: f.read_bytes() for f in SHIPPED.rglob("*") if f.is_file()}
    index = semsearch.open(SHIPPED)  # every checksum is verified on open
    assert index.manifest.granularity == "passage"
    assert index.store.sentences is None  # type: ignore[attr-defined]
    assert index.search("夫妻党员", k=1, mode="bm25")[0].best_sentence is None
    assert {f: f.read_bytes() for f in SHIPPED.rglob("*") if f.is_file()} == files


def test_an_unknown_granularity_is_refused() -> None:
    with pytest.raises(UsageError, match="granularity"):
        Index.build([SEEDS], granularity="word")


def test_migrate_refuses_sentence_vectors(sentence_index: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="sentence vectors"):
        migrate(semsearch.open(sentence_index).store, tmp_path / "copy")


@pytest.mark.parametrize("kind", ["flat", "hnsw", "sq8"])
def test_sentence_scores_on_every_index_kind(kind: str) -> None:
    """Sentence vectors rescore the candidates of exact and ANN passage indexes alike (no
    model: random unit vectors, sentence 0 of passage 3 equal to the query)."""
    from semsearch.models.encoder import ModelInfo
    from semsearch.passages import Passage
    from semsearch.stores.faiss import FaissStore

    rng = np.random.default_rng(7)
    n, d = 300, 16

    def unit(rows: int) -> np.ndarray:
        x = rng.normal(size=(rows, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    vectors = unit(n)
    passages = [Passage(f"first sentence {i}. second sentence {i}.", f"s{i % 3}.txt", i, 0, 1)
                for i in range(n)]
    rows = np.array([(i, s, e) for i in range(n) for s, e in ((0, 17), (18, 35))])
    sentence_vectors = unit(len(rows))
    query = sentence_vectors[6:7].copy()  # passage 3's first sentence
    store = FaissStore.create(passages, vectors, ModelInfo("synthetic", "x", d),
                              {f"s{i}.txt": "h" for i in range(3)}, index_type=kind,
                              sentences=(rows, sentence_vectors))
    dense = store.search(query, 10)
    (scores, ids), best = store.sentence_search(query, dense, n)
    assert 3 not in dense[1][0] and 3 in ids[0]  # a candidate by its sentence alone
    assert best[0][3].start == 0 and best[0][3].score == pytest.approx(1.0, abs=1e-3)
    own = float(store.vectors(np.array([3]))[0] @ query[0])
    w = sentence_store.SENTENCE_MIX
    at = list(ids[0]).index(3)
    assert scores[0][at] == pytest.approx(w * own + (1 - w) * 1.0, abs=1e-3)
    ranked = list(scores[0][ids[0] >= 0])
    assert ranked == sorted(ranked, reverse=True)
    store.remove_sources(["s0.txt"])  # passages 0, 3, 6, …: their sentences go too
    assert len(store.sentences) == 2 * 200  # type: ignore[arg-type]
    (_, ids), _ = store.sentence_search(query, store.search(query, 10), n)
    assert 3 not in ids[0]


def test_cli_builds_and_reports_a_sentence_index(tiny_model: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from semsearch.cli import app

    runner = CliRunner()
    out = tmp_path / "idx"
    args = ["index", str(SEEDS), "--out", str(out), "--model", str(tiny_model)]
    refused = runner.invoke(app, [*args, "--granularity", "word"])
    assert refused.exit_code == 2 and not out.exists()
    built = runner.invoke(app, [*args, "--granularity", "sentence"])
    assert built.exit_code == 0, built.output
    info = runner.invoke(app, ["info", "--index", str(out)])
    assert "sentence vectors" in info.output
    found = runner.invoke(app, ["query", "夫妻党员", "--index", str(out), "--json",
                                "--mode", "dense"])
    hit = json.loads(found.output.splitlines()[0])["hits"][0]
    sentence = hit["best_sentence"]
    assert 0 <= sentence["start"] < sentence["end"] <= len(hit["text"])


# --- memory: sentence vectors are the bulk of a sentence index --------------------------------


class RandomEncoder:
    """Random unit vectors (benchmarks/memory.py's stub): a build without a model."""

    info = ModelInfo("random", "0" * 64, 1024)
    backend, max_tokens = "random", 512

    def count_tokens(self, text: str) -> int:
        return len(text) + 2

    def encode_passages(self, texts: Sequence[str], progress: Any = None) -> np.ndarray:
        rng = np.random.default_rng(len(texts))
        vectors = rng.standard_normal((len(texts), 1024), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        if progress is not None:
            progress(len(texts))
        return vectors


def traced_peak(step: Callable[[], Any]) -> tuple[Any, int]:
    """What `step` returns and the most memory Python and NumPy held at once while it ran,
    above what they held before (tracemalloc: FAISS's own C++ memory is not counted)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = step()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_sentence_vectors_are_not_copied_whole_to_build_save_or_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 97.5k passages a sentence build peaked at 3,020 MB resident (benchmarks/memory.py;
    issue 35 allows 2 GB at 101k): the 422k sentence vectors were held as float32 by the
    encoding loop, then copied as float16 and again as float16-rounded float32 beside FAISS's
    own copy to be added, and copied whole once more to be saved and to be opened. Beside the
    FAISS index, a build may now hold them only as float16 (with the passage vectors and texts:
    under one float32 copy), saving and opening only a block at a time."""
    from semsearch import checkpoint
    from semsearch import index as index_module
    from semsearch.readers.base import Document

    monkeypatch.setattr(index_module, "load_encoder", lambda *a, **k: RandomEncoder())
    monkeypatch.setattr(checkpoint, "CHUNK", 64)  # the encoder's own batches: not measured
    monkeypatch.setattr(sentence_store, "BLOCK", 256)
    Index.from_documents([Document("warm.txt", "先把分词词典和模块都加载好。再开始量内存。" * 3,
                                   "utf-8", "0" * 64)], granularity="sentence")
    documents = []
    for d in range(2):
        text = "\n\n".join("".join(f"第{p}段第{s}句讲的是文档{d}里的一件小事情。"
                                   for s in range(20)) for p in range(150))
        documents.append(Document(f"{d}.txt", text, "utf-8", f"{d:064d}"))
    built, build_peak = traced_peak(
        lambda: Index.from_documents(documents, granularity="sentence"))
    count = len(built.store.sentences)  # type: ignore[attr-defined]
    assert count > 5_000 and count > 8 * len(built.passages)
    as_float32 = count * 1024 * 4  # 24.6 MB
    # float16 (0.5), the passage vectors (0.1) and texts: no whole float32 copy (was 2.9)
    assert build_peak < as_float32, build_peak / as_float32
    ours = built.store.sentences  # type: ignore[attr-defined]
    _, save_peak = traced_peak(lambda: ours.save(tmp_path))
    assert save_peak < 0.1 * as_float32, save_peak / as_float32  # was 1.0
    theirs, open_peak = traced_peak(
        lambda: sentence_store.SentenceVectors.load(tmp_path, 1024))
    assert open_peak < 0.1 * as_float32, open_peak / as_float32  # was 1.0
    np.testing.assert_array_equal(ours.rows, theirs.rows)
    np.testing.assert_array_equal(ours.index.reconstruct_n(0, count),
                                  theirs.index.reconstruct_n(0, count))


def test_an_indexing_only_encoder_is_let_go_before_the_index_is_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that only indexes (OpenVINO, the int8 body: not in QUERY_BACKENDS) is not kept
    for queries; it used to stay alive while the index was built and saved — OpenVINO's, ~400
    MB resident after encoding, beside the sentence vectors' FAISS index (a RandomEncoder here:
    backend "random")."""
    import weakref

    from semsearch import index as index_module
    from semsearch import stores
    from semsearch.readers.base import Document

    made: list[weakref.ref[RandomEncoder]] = []

    def load_encoder(*args: Any, **kwargs: Any) -> RandomEncoder:
        encoder = RandomEncoder()
        made.append(weakref.ref(encoder))
        return encoder

    alive_at_create: list[bool] = []
    create = stores.create

    def watched(*args: Any, **kwargs: Any) -> Any:
        alive_at_create.append(made[0]() is not None)
        return create(*args, **kwargs)

    monkeypatch.setattr(index_module, "load_encoder", load_encoder)
    monkeypatch.setattr(stores, "create", watched)
    text = "第一句话讲的是春天的故事。第二句话讲的是秋天的收获。"
    built = Index.from_documents([Document("a.txt", text, "utf-8", "0" * 64)],
                                 granularity="sentence")
    assert alive_at_create == [False] and len(built.store.sentences) == 2  # type: ignore[attr-defined]
