"""The CLI: output formats, and one red line with a non-zero exit for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semsearch.cli import app

from .conftest import SEEDS

runner = CliRunner()


@pytest.fixture(scope="module")
def index_dir(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "idx"
    result = runner.invoke(app, ["index", str(SEEDS), "--out", str(out), "--model",
                                 str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert "indexed" in result.stderr and "passages/s" in result.stderr
    return out


def _fails_cleanly(args: list[str], needle: str, stdin: str | None = None) -> None:
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]


def test_query_json_lines(index_dir: Path) -> None:
    result = runner.invoke(app, ["query", "夫妻党员抗疫", "--index", str(index_dir), "-k", "3",
                                 "--json"])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert record["query"] == "夫妻党员抗疫"
    assert [h["rank"] for h in record["hits"]] == [1, 2, 3]
    keys = {"rank", "score", "id", "text", "source", "paragraph", "start", "end"}
    assert keys <= set(record["hits"][0])
    assert record["hits"][0]["source"].endswith(".txt")


def test_query_many_from_stdin(index_dir: Path) -> None:
    result = runner.invoke(app, ["query", "--queries", "-", "--index", str(index_dir), "--json"],
                           input="夫妻党员抗疫\n\n志愿者送物资\n")
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["query"] for x in result.stdout.splitlines()] == ["夫妻党员抗疫",
                                                                              "志愿者送物资"]


def test_query_table_and_words_joined(index_dir: Path) -> None:
    result = runner.invoke(app, ["query", "夫妻", "党员", "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    assert "夫妻 党员" in result.stdout and "source:paragraph" in result.stdout


def test_info(index_dir: Path) -> None:
    result = runner.invoke(app, ["info", "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    assert "passages" in result.stdout and "000_0db68ecbc2c6cfcf.txt" in result.stdout


@pytest.mark.parametrize("query", ["", "   "])
def test_blank_query(index_dir: Path, query: str) -> None:
    _fails_cleanly(["query", query, "--index", str(index_dir)], "empty")


def test_no_query(index_dir: Path) -> None:
    _fails_cleanly(["query", "--index", str(index_dir)], "no query")


def test_k_below_one(index_dir: Path) -> None:
    _fails_cleanly(["query", "抗疫", "--index", str(index_dir), "-k", "0"], "-k must be")


def test_missing_index(tmp_path: Path) -> None:
    _fails_cleanly(["query", "抗疫", "--index", str(tmp_path / "nope")], "no index at")


def test_corrupt_index(index_dir: Path, tmp_path: Path) -> None:
    import shutil

    from semsearch.stores.generations import live_dir

    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    (live_dir(broken) / "passages.jsonl").write_text("garbage\n", encoding="utf-8")
    _fails_cleanly(["query", "抗疫", "--index", str(broken)], "passages.jsonl")


def test_model_mismatch(index_dir: Path, other_model: Path) -> None:
    _fails_cleanly(["query", "抗疫", "--index", str(index_dir), "--model", str(other_model)],
                   "built with model")


def test_index_missing_path(tmp_path: Path, tiny_model: Path) -> None:
    _fails_cleanly(["index", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--model",
                    str(tiny_model)], "does not exist")


def test_index_empty_corpus(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / "docs").mkdir()
    _fails_cleanly(["index", str(tmp_path / "docs"), "--out", str(tmp_path / "o"), "--model",
                    str(tiny_model)], "no readable documents")


def test_missing_model_directory(tmp_path: Path) -> None:
    _fails_cleanly(["index", str(SEEDS), "--out", str(tmp_path / "o"), "--model",
                    str(tmp_path / "no-model")], "does not exist")


def test_queries_file_missing(index_dir: Path, tmp_path: Path) -> None:
    _fails_cleanly(["query", "--queries", str(tmp_path / "q.txt"), "--index", str(index_dir)],
                   "cannot read queries")


def test_a_bad_line_in_a_queries_file_is_named_and_skipped(index_dir: Path,
                                                           tmp_path: Path) -> None:
    """Before: one control-only line aborted the whole batch, without its line number."""
    queries = tmp_path / "q.txt"
    queries.write_text("志愿者\n\x01\x02\n党员\n", encoding="utf-8")
    result = runner.invoke(app, ["query", "--queries", str(queries), "--index", str(index_dir),
                                 "--json", "-k", "1"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["query"] for line in result.stdout.splitlines()] == ["志愿者", "党员"]
    assert f"{queries}:2: skipped" in " ".join(result.stderr.split())


def test_progress_is_logged_when_stderr_is_not_a_terminal(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: `index` printed nothing until the end when stderr was not a terminal."""
    monkeypatch.setattr("semsearch.cli.LOG_EVERY", 0.0)  # every update, not every 10 s
    result = runner.invoke(app, ["index", str(SEEDS), "--out", str(tmp_path / "i"), "--model",
                                 str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert any(line.startswith("encoding passages:") and "/s" in line
               for line in result.stderr.splitlines())


def test_choices_are_checked_before_the_index_loads(tmp_path: Path) -> None:
    """`--mode magic` on an index that does not exist names the mode, not the index: the parser
    refuses it before anything loads (issue 13)."""
    missing = str(tmp_path / "nowhere")
    _fails_cleanly(["query", "x", "--index", missing, "--mode", "magic"], "unknown mode 'magic'")
    _fails_cleanly(["index", str(SEEDS), "--out", missing, "--encoder", "gpu"],
                   "unknown encoder 'gpu'")
    assert not Path(missing).exists()


def test_choices_match_the_library() -> None:
    import typing

    from semsearch import clean, cli, search
    from semsearch.models import encoder
    from semsearch.stores import base

    assert set(typing.get_args(cli.ModeChoice)) == set(search.MODES)
    assert set(typing.get_args(cli.FusionChoice)) == set(search.FUSIONS)
    assert set(typing.get_args(cli.EncoderChoice)) == set(encoder.BACKENDS)
    assert set(typing.get_args(cli.IndexTypeChoice)) == {*base.INDEX_TYPES, base.AUTO}
    assert set(typing.get_args(cli.CleanChoice)) == set(clean.CLEAN_MODES)
