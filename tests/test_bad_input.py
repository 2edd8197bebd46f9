"""The bad-input matrix (README "Bad input"): each case gets a clear error or a named warning.

Encodings and odd files go through the real corpus loader; queries and indexes through the CLI
with a tiny model, checking for one red line, a non-zero exit and no traceback.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from semsearch.clean import clean, is_boilerplate
from semsearch.cli import app
from semsearch.corpus import CorpusWarning, load
from semsearch.errors import CorpusError
from semsearch.passages import document_passages

from .conftest import REPO, SEEDS, rewrite_manifest

runner = CliRunner()
TEXT = (SEEDS / "002_b3706f758604a439.txt").read_text("utf-8")
TRADITIONAL = "夫妻倆都是黨員，在社區抗疫一線並肩作戰。志願者為居民送菜上門。\n"


def _squeeze(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("gbk", TEXT.encode("gbk", errors="replace")),
        ("gb18030", TEXT.encode("gb18030")),
        ("big5", TRADITIONAL.encode("big5") * 20),
        ("utf-16-le-bom", codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le")),
        ("utf-16-be-bom", codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be")),
        ("utf-16-le", TEXT.encode("utf-16-le")),
        ("utf-16-be", TEXT.encode("utf-16-be")),
        ("utf-8-bom", codecs.BOM_UTF8 + TEXT.encode("utf-8")),
        ("mixed-eol", TEXT.replace("\n\n", "\r\n\r\n", 5).replace("\n", "\r", 3).encode()),
    ],
)
def test_encodings_decode_to_the_same_passages(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / f"{name}.txt").write_bytes(data)
    (doc,) = load([tmp_path])
    expected = TRADITIONAL * 20 if name == "big5" else TEXT
    assert _squeeze(doc.text.lstrip("\ufeff")) == _squeeze(expected) or name == "gbk"
    passages = document_passages(doc)
    assert passages
    for p in passages:
        assert _squeeze(doc.text[p.start : p.end]).startswith(_squeeze(p.text)[:5])


def test_binary_zero_byte_and_symlink_loop_are_skipped_with_warnings(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "blob.txt").write_bytes(os.urandom(4096))
    (tmp_path / "empty.md").write_bytes(b"")
    os.symlink(tmp_path / "loop-b.txt", tmp_path / "loop-a.txt")
    os.symlink(tmp_path / "loop-a.txt", tmp_path / "loop-b.txt")
    os.symlink(tmp_path, tmp_path / "self")  # a directory loop: not followed
    with pytest.warns(CorpusWarning) as caught:
        docs = load([tmp_path])
    assert [d.source for d in docs] == ["ok.txt"]
    said = " ".join(str(w.message) for w in caught)
    for name in ("blob.txt", "empty.md", "loop-a.txt", "loop-b.txt"):
        assert name in said


def test_directory_with_no_readable_files(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.warns(CorpusWarning), pytest.raises(CorpusError, match="no readable documents"):
        load([tmp_path])


def test_unreadable_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """Root reads anything, so the loader runs without the capabilities that bypass file
    permissions (setpriv, from util-linux)."""
    setpriv = shutil.which("setpriv")
    drop = ["--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"]
    prefix = [setpriv, *drop] if os.geteuid() == 0 and setpriv else []
    if os.geteuid() == 0 and not setpriv:
        pytest.skip("root without setpriv cannot be denied a read")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.txt").write_text(TEXT, encoding="utf-8")
    (docs / "secret.txt").write_text(TEXT, encoding="utf-8")
    (docs / "secret.txt").chmod(0)
    for folder in (tmp_path, docs):
        folder.chmod(0o755)
    code = ("import warnings, semsearch.corpus as c\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            f"    docs = c.load([{str(docs)!r}])\n"
            "print([d.source for d in docs], [str(x.message) for x in w])")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True,
                            text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "['ok.txt']" in result.stdout and "secret.txt" in result.stdout
    assert "Permission denied" in result.stdout


def test_jsonl_broken_lines_and_missing_text(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "党员志愿者。"}\n{broken\n{"body": "x"}\n',
                                      encoding="utf-8")
    with pytest.warns(CorpusWarning) as caught:
        docs = load([tmp_path])
    assert [d.text for d in docs] == ["党员志愿者。"]
    assert any("a.jsonl:2" in str(w.message) for w in caught)
    assert any("a.jsonl" in str(w.message) and "at 3" in str(w.message) for w in caught)


def test_path_with_spaces_and_non_ascii(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "my docs" / "新闻 2020"
    folder.mkdir(parents=True)
    shutil.copy(SEEDS / "000_0db68ecbc2c6cfcf.txt", folder / "马连平 事迹.txt")
    out = tmp_path / "索引 目录"
    result = runner.invoke(app, ["index", str(tmp_path / "my docs"), "--out", str(out),
                                 "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["query", "党员", "--index", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hits"][0]["source"] == "新闻 2020/马连平 事迹.txt"


@pytest.fixture(scope="module")
def index_dir(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bad") / "idx"
    assert runner.invoke(app, ["index", str(SEEDS), "--out", str(out), "--model",
                               str(tiny_model)]).exit_code == 0
    return out


def _one_red_line(args: list[str], needle: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr


@pytest.mark.parametrize(
    ("query", "needle"),
    [("", "empty"), ("  \t ", "empty"), ("\x00\x07\x1b", "empty"), ("\udcff\udcfe", "empty"),
     ("党" * 100_000, "limit")],
    ids=["empty", "whitespace", "controls-only", "lone-surrogates", "100k"],
)
def test_bad_queries(index_dir: Path, query: str, needle: str) -> None:
    _one_red_line(["query", query, "--index", str(index_dir)], needle)


def test_control_characters_inside_a_query_are_dropped(index_dir: Path) -> None:
    result = runner.invoke(app, ["query", "党\x00员\udcff", "--index", str(index_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["query"] == "党员"


def test_k_bounds(index_dir: Path) -> None:
    _one_red_line(["query", "党员", "--index", str(index_dir), "-k", "0"], "-k must be")
    result = runner.invoke(app, ["query", "党员", "--index", str(index_dir), "-k", "100000",
                                 "--json"])
    assert result.exit_code == 0
    hits = json.loads(result.stdout)["hits"]
    assert 0 < len(hits) <= 100000


def test_unknown_mode(index_dir: Path) -> None:
    _one_red_line(["query", "党员", "--index", str(index_dir), "--mode", "magic"], "unknown mode")


def test_index_from_another_model_and_newer_format(index_dir: Path, other_model: Path,
                                                   tmp_path: Path) -> None:
    _one_red_line(["query", "党员", "--index", str(index_dir), "--model", str(other_model)],
                  "built with model")
    newer = tmp_path / "newer"
    shutil.copytree(index_dir, newer)
    rewrite_manifest(newer, format_version=99)
    _one_red_line(["query", "党员", "--index", str(newer)], "newer than this semsearch")


LINES = st.sampled_from([
    "社区党员志愿者每天为隔离居民配送生活物资。", "“我就抽空回去给宝宝‘送个外", "卖’,”她笑着说。",
    "献爱心", "首页 | 新闻 | 视听", "责任编辑:李淼", "  • 古都夜未央 洛阳正青春", "庄妍",
    "Volunteers delivered food", "to families in quarantine.", "", "   ", "党员。" * 40,
])


@settings(max_examples=200, deadline=None)
@given(st.lists(LINES, max_size=30), st.sampled_from(["\n", "\r\n", "\n\n"]))
def test_cleaner_and_splitter_lose_nothing_they_should_keep(lines: list[str], eol: str) -> None:
    text = eol.join(lines)
    paragraphs = clean(text)
    kept = _squeeze("".join(p.text + p.heading for p in paragraphs))
    for line in lines:
        if line.strip() and not is_boilerplate(line.strip()):
            assert _squeeze(line) in kept
    from semsearch.corpus import Document

    passages = document_passages(Document("x.txt", text, "utf-8", "0", clean="web"),
                                 max_tokens=40)
    assert _squeeze("".join(p.text for p in passages)) == _squeeze(
        "".join(p.text for p in paragraphs))
    for p in passages:
        assert 0 <= p.start <= p.end <= len(text)
        assert _squeeze(text[p.start : p.end]).startswith(_squeeze(p.text)[:3])


@settings(max_examples=200, deadline=None)
@given(st.lists(LINES, max_size=30), st.sampled_from(["\n", "\r\n", "\n\n"]))
def test_ordinary_text_keeps_every_line(lines: list[str], eol: str) -> None:
    """Cleaning mode none (ordinary text, Markdown, records) drops nothing, whatever it looks
    like: navigation-shaped lines, names, copyright sentences, duplicates."""
    from semsearch.corpus import Document

    text = eol.join(lines)
    passages = document_passages(Document("x.txt", text, "utf-8", "0", clean="none"),
                                 max_tokens=40)
    kept = _squeeze("".join(p.text for p in passages)) + "\0" + "\0".join(
        _squeeze(p.heading) for p in passages)
    for line in lines:
        assert _squeeze(line.lstrip("# ")) in kept
