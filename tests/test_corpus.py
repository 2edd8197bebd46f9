"""Finding and decoding files: encodings, JSONL, and what gets skipped (with a warning)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from semsearch.corpus import CorpusWarning, decode_bytes, load
from semsearch.errors import CorpusError

from .conftest import SEEDS

TEXT = "夫妻俩都是党员，在社区抗疫一线并肩作战。\n第二段：志愿者为居民送菜上门。\n"


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("gb18030"), "gb18030"),
        (TEXT.encode("gbk"), "gb18030"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
    ],
)
def test_decode_detects_encodings(encoded: bytes, expected: str) -> None:
    text, encoding = decode_bytes(encoded)
    assert text.lstrip("\ufeff") == TEXT
    assert encoding == expected


def test_decode_whole_seed_in_gb18030() -> None:
    original = (SEEDS / "000_0db68ecbc2c6cfcf.txt").read_text("utf-8")
    text, encoding = decode_bytes(original.encode("gb18030"))
    assert (text, encoding) == (original, "gb18030")


def test_decode_rejects_binary() -> None:
    with pytest.raises(ValueError, match="not decodable"):
        decode_bytes(bytes(range(256)) * 8)


def test_load_directory_names_sources_relative_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("乙文档的内容。", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("# 标题\n甲文档。", encoding="utf-8")
    (tmp_path / "ignored.csv").write_text("x,y", encoding="utf-8")
    docs = load([tmp_path])
    assert [d.source for d in docs] == ["b.txt", "sub/a.md"]


def test_load_skips_unusable_files_with_named_warnings(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blob.txt").write_bytes(bytes(range(256)) * 8)
    with pytest.warns(CorpusWarning) as record:
        docs = load([tmp_path])
    assert [d.source for d in docs] == ["good.txt"]
    messages = " ".join(str(w.message) for w in record)
    assert "empty.txt" in messages and "blob.txt" in messages


def test_load_jsonl_keeps_fields_as_metadata(tmp_path: Path) -> None:
    file = tmp_path / "docs.jsonl"
    file.write_text(
        '{"text": "第一条新闻。", "id": 7, "url": "http://x"}\n'
        "not json\n"
        '{"title": "no text"}\n'
        '{"text": "第二条新闻。"}\n',
        encoding="utf-8",
    )
    with pytest.warns(CorpusWarning, match=r"docs.jsonl:2"):
        docs = load([file])
    assert [d.text for d in docs] == ["第一条新闻。", "第二条新闻。"]
    assert docs[0].metadata == {"id": 7, "url": "http://x", "line": 1}
    assert docs[1].metadata == {"line": 4}


def test_load_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load([tmp_path / "nope"])


def test_load_nothing_readable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b", encoding="utf-8")
    with pytest.raises(CorpusError, match="no readable documents"):
        load([tmp_path])
