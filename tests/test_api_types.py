"""The Python API refuses wrong types with our own errors, and takes a single path or query
where that is unambiguous (issue 12: raw TypeErrors, a path walked character by character)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import semsearch
from semsearch.errors import CorpusError, QueryError

from .conftest import SEEDS


@pytest.fixture(scope="module")
def built(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("api") / "idx"
    semsearch.build([SEEDS], str(tiny_model)).save(out)
    return out


def test_build_takes_a_single_path(tiny_model: Path, tmp_path: Path) -> None:
    """Before: a str was iterated by character and `/` was walked (21,930 warnings)."""
    file = tmp_path / "a.txt"
    file.write_text("社区党员志愿者为居民送菜。", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = semsearch.build(str(file.absolute()), str(tiny_model))
    assert [p.source for p in index.passages] == ["a.txt"]


@pytest.mark.parametrize("paths", [[None], [3], 5])
def test_build_refuses_non_paths(paths: object, tiny_model: Path) -> None:
    with pytest.raises(CorpusError, match="paths must be"):
        semsearch.build(paths, str(tiny_model))  # type: ignore[arg-type]


def test_search_batch_takes_one_query_as_one(built: Path) -> None:
    """Before: search_batch("抗疫") ran two one-character queries."""
    index = semsearch.load(built)
    assert len(index.search_batch("抗疫", k=2)) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("where", [5, ["a"], b"x"])
def test_where_must_be_text(built: Path, where: object) -> None:
    with pytest.raises(QueryError, match="filter must be text"):
        semsearch.load(built).search("抗疫", where=where)  # type: ignore[arg-type]


def test_load_refuses_a_non_path() -> None:
    with pytest.raises(QueryError, match="str or Path"):
        semsearch.load(123)  # type: ignore[arg-type]


def test_add_on_a_read_only_index_says_how(built: Path, tmp_path: Path) -> None:
    """Before: a ValueError about `mmap=False`."""
    (tmp_path / "n.txt").write_text("新的文件。", encoding="utf-8")
    index = semsearch.load(built)
    with pytest.raises(QueryError, match="writable=True"):
        index.add([tmp_path])
    with pytest.raises(QueryError, match="writable=True"):
        index.remove("000_0db68ecbc2c6cfcf.txt")
