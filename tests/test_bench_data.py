"""Record sets for `semsearch bench`: the BEIR and SQuAD loaders, record-level runs, the naive
lexical baseline and the CLI's refusals — on tiny data written here (no model)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semsearch import bench
from semsearch.cli import app
from semsearch.errors import QueryError

CORPUS = [
    {"_id": "d1", "title": "抗疫", "text": "我们夫妻俩都是党员，一起参加抗疫志愿服务。"},
    {"_id": "d2", "title": "", "text": "小男孩趴在草地上。"},
    {"_id": "d3", "text": "男孩趴在草地上。"},
]
QUERIES = [
    {"_id": "q1", "text": "夫妻 党员\t抗疫"},
    {"_id": "q2", "text": "男孩在草地上"},
    {"_id": "q3", "text": "没有标注的问题"},
]


def _write_beir(root: Path, qrels_name: str = "qrels/test.tsv", header: bool = True,
                rows: tuple[str, ...] = ("q1\td1\t1", "q2\td2\t1", "q2\td3\t2",
                                         "q3\td1\t0")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in CORPUS), encoding="utf-8")
    (root / "queries.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in QUERIES), encoding="utf-8")
    qrels = root / qrels_name
    qrels.parent.mkdir(parents=True, exist_ok=True)
    lines = (["query-id\tcorpus-id\tscore"] if header else []) + list(rows)
    qrels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_beir_directory(tmp_path: Path) -> None:
    data = bench.load_dataset(_write_beir(tmp_path / "mine"))
    assert data.name == "mine"
    assert data.records == {"d1": "抗疫\n我们夫妻俩都是党员，一起参加抗疫志愿服务。",
                            "d2": "小男孩趴在草地上。", "d3": "男孩趴在草地上。"}
    # whitespace folded; q3 has only a score-0 label, so it is not evaluated
    assert data.queries == {"q1": "夫妻 党员 抗疫", "q2": "男孩在草地上"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 2}}


def test_beir_qrels_tsv_without_header(tmp_path: Path) -> None:
    data = bench.load_beir(_write_beir(tmp_path / "x", "qrels.tsv", header=False))
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 2}}


@pytest.mark.parametrize(("rows", "needle"), [
    (("q1\tnope\t1",), "record 'nope' is not in corpus.jsonl"),
    (("q9\td1\t1",), "query 'q9' is not in queries.jsonl"),
    (("q1\td1",), "want query-id, corpus-id, score"),
    (("q1\td1\t0",), "no labelled queries"),
])
def test_beir_bad_qrels(tmp_path: Path, rows: tuple[str, ...], needle: str) -> None:
    with pytest.raises(QueryError, match=re.escape(needle)):
        bench.load_beir(_write_beir(tmp_path / "bad", rows=rows))


def test_beir_missing_files(tmp_path: Path) -> None:
    root = _write_beir(tmp_path / "nq")
    (root / "qrels" / "test.tsv").unlink()
    with pytest.raises(QueryError, match=re.escape("no qrels/test.tsv or qrels.tsv")):
        bench.load_beir(root)


def test_squad_file(tmp_path: Path) -> None:
    squad = {"version": "v1", "data": [
        {"title": "a", "paragraphs": [
            {"id": "P1", "context": "北京是中国的首都。", "qas": [
                {"id": "P1-1", "question": "中国的首都是哪里？", "answers": []},
                {"id": "P1-2", "question": "  ", "answers": []}]},
            {"context": "長城是中國古代的軍事防禦工程。", "qas": [
                {"question": "長城是什麼？", "answers": []}]}]}]}
    path = tmp_path / "tiny_squad.json"
    path.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    data = bench.load_dataset(path)
    assert data.name == "tiny_squad"
    assert data.records == {"P1": "北京是中国的首都。", "0-1": "長城是中國古代的軍事防禦工程。"}
    assert data.queries == {"P1-1": "中国的首都是哪里？", "0-1-q0": "長城是什麼？"}
    assert data.qrels == {"P1-1": {"P1": 1}, "0-1-q0": {"0-1": 1}}


def test_squad_not_squad(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(QueryError, match="SQuAD-layout"):
        bench.load_dataset(path)


def test_unknown_dataset() -> None:
    with pytest.raises(QueryError, match="cmrc-trial, drcd-test"):
        bench.load_dataset("no-such-set")


def test_shipped_sets_load() -> None:
    cmrc = bench.load_dataset("cmrc-trial")
    assert (len(cmrc.records), len(cmrc.queries)) == (256, 1000)  # 1,002 questions, 2 repeated
    drcd = bench.load_dataset("drcd-test")
    assert (len(drcd.records), len(drcd.queries)) == (1000, 3493)
    assert all(len(labels) == 1 for labels in drcd.qrels.values())
    assert (bench.DATA_DIR / "SOURCES.md").is_file()


def test_xquad_sets_load() -> None:
    """XQuAD's shipped half: 120 paragraphs and 632 questions per language, parallel by id, so
    a question of one language is answered by the same paragraph id in the other."""
    zh, en2zh, zh2en = (bench.load_dataset(n) for n in ("xquad-zh", "xquad-en2zh", "xquad-zh2en"))
    for data in (zh, en2zh, zh2en):
        assert (len(data.records), len(data.queries)) == (120, 632)
        assert not data.units
    assert en2zh.records == zh.records and en2zh.qrels == zh.qrels == zh2en.qrels
    assert zh2en.queries == zh.queries
    assert en2zh.queries["56beb4343aeaaa14008c925b"].startswith("How many points")
    assert zh2en.records["0-0"].startswith("The Panthers defense")
    mixed = bench.load_dataset("xquad-mixed")
    assert (len(mixed.records), len(mixed.queries)) == (240, 1264)
    assert mixed.units["zh:0-0"] == mixed.units["en:0-0"] == "0-0"
    assert mixed.qrels["en:56beb4343aeaaa14008c925b"] == {"0-0": 1}


def test_units_count_a_paragraph_and_its_translation_once() -> None:
    units = {"zh:a": "a", "en:a": "a", "zh:b": "b", "en:b": "b"}
    assert bench._ranked(["en:a", "zh:a", "zh:b", "en:b"], 2, units) == {"a": 1.0, "b": 0.5}


def test_documents_are_records_kept_as_written(tmp_path: Path) -> None:
    docs = bench.documents(bench.load_beir(_write_beir(tmp_path / "d")))
    assert [d.source for d in docs] == ["d1", "d2", "d3"]
    assert all(d.clean == "none" and d.encoding == "utf-8" and d.metadata == {} for d in docs)
    assert docs[1].sha256 == hashlib.sha256("小男孩趴在草地上。".encode()).hexdigest()


def test_ranked_keeps_each_record_at_its_best_rank() -> None:
    assert bench._ranked(["a", "b", "a", "c", "b", "d"], 3) == {"a": 1.0, "b": 0.5, "c": 1 / 3}


def test_naive_bm25_and_scores(tmp_path: Path) -> None:
    data = bench.load_beir(_write_beir(tmp_path / "n"))
    run = bench.naive_bm25_run(data)
    assert next(iter(run["q1"])) == "d1"
    assert set(run["q2"]) >= {"d2", "d3"}
    scores = bench.score_runs(data, {"naive-bm25": run, "empty": {}})
    assert scores["naive-bm25"]["recall@1"] == pytest.approx(0.75)  # q2 has two answers
    assert scores["naive-bm25"]["recall@5"] == 1.0
    assert scores["empty"] == dict.fromkeys(bench.METRICS, 0.0)


def test_records_markdown_and_names() -> None:
    results = {"dataset": "mine", "queries": 2, "records": 3, "passages": 3, "model": "m",
               "metrics": {"hybrid": dict.fromkeys(bench.METRICS, 1.0)}}
    text = bench.records_markdown(results)
    assert "| hybrid | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |" in text
    assert bench.result_name("seeds") == "quality"
    assert bench.result_name("drcd-test") == "quality-drcd-test"


@pytest.mark.parametrize(("args", "needle"), [
    (["--dataset", "no-such-set"], "unknown dataset"),
    (["--dataset", "cmrc-trial", "--index", "x"], "--dataset seeds"),
])
def test_cli_bench_refuses(args: list[str], needle: str) -> None:
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
