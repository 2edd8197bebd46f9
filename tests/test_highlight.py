"""Highlighting a hit with the query's words comes from the index's own query dictionary: the
CLI never loads jieba's full dictionary (a 9 MB marshal load, 1.3 s of a cold table query
before), and no jieba cache is written to, or read from, the shared temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import semsearch
from semsearch.cli import snippet

# Run `semsearch query` in a fresh interpreter where loading jieba's full dictionary fails.
_GUARDED_CLI = """
import sys, jieba
_init = jieba.Tokenizer.initialize
def guarded(self, dictionary=None):
    if self.dictionary == jieba.DEFAULT_DICT:
        raise SystemExit("jieba's full dictionary was loaded")
    return _init(self, dictionary)
jieba.Tokenizer.initialize = guarded
from semsearch.cli import main
sys.argv = ["semsearch", *sys.argv[1:]]
main()
"""

QUERIES = {  # query -> the words its hits highlight, as they were with jieba's full dictionary
    "夫妻党员抗疫": ["夫妻", "党员", "抗疫"],
    "夫妻黨員抗疫": ["夫妻", "党员", "抗疫"],
    "志愿者为居民送菜": ["志愿者", "志愿", "居民", "愿者", "送菜"],
    "Who donated masks to the community?": ["community", "donated", "masks", "who"],
}


def _cli(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run([sys.executable, "-c", _GUARDED_CLI, *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=tmp)


def _run_guarded(mode: str, as_json: bool, tmp_path: Path) -> None:
    args = ["query", "夫妻党员抗疫", "--mode", mode, *(["--json"] if as_json else [])]
    done = _cli(*args, tmp=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    if as_json:
        assert json.loads(done.stdout)["hits"][0]["source"].startswith("000_")
    else:
        assert "000_0db68ecbc2c6cfcf.txt" in done.stdout
    assert not list(tmp_path.glob("jieba*")), "a jieba cache was written to TMPDIR"


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_bm25_query_never_loads_the_full_dictionary(as_json: bool, tmp_path: Path) -> None:
    _run_guarded("bm25", as_json, tmp_path)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_model_queries_never_load_the_full_dictionary(real_model: Path, mode: str,
                                                      as_json: bool, tmp_path: Path) -> None:
    _run_guarded(mode, as_json, tmp_path)


@pytest.mark.parametrize("query", list(QUERIES))
def test_query_words_are_those_jieba_found(query: str) -> None:
    """The words are unchanged from the full-dictionary segmentation for simplified,
    traditional and English queries (traditional folded: it highlights simplified text)."""
    index = semsearch.open()
    assert sorted(index.query_words(query)) == sorted(QUERIES[query])
    assert index.query_words(query) == sorted(index.query_words(query), key=len, reverse=True)


def test_traditional_query_highlights_simplified_text() -> None:
    index = semsearch.open()
    hit = index.search("夫妻黨員抗疫", k=1, mode="bm25")[0]
    styled = snippet(hit.text, index.query_words("夫妻黨員抗疫"))
    marked = {styled.plain[span.start:span.end] for span in styled.spans}
    assert {"党员"} <= marked, marked


def test_loaded_index_reads_no_shared_cache(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A file planted at jieba's predictable cache name in the temporary directory is never
    read (it once made the service's BM25 answer nothing), and loading writes none."""
    import hashlib
    import marshal

    from semsearch.stores import DEFAULT_INDEX
    from semsearch.stores.generations import live_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    query_dict = live_dir(Path(DEFAULT_INDEX)) / "bm25" / "query_dict.txt"
    name = hashlib.md5(str(query_dict.resolve()).encode()).hexdigest()
    (tmp_path / f"jieba.u{name}.cache").write_bytes(marshal.dumps(({}, 1)))
    index = semsearch.load(DEFAULT_INDEX)
    assert index.search("夫妻党员抗疫", k=1, mode="bm25")
    assert [p.name for p in tmp_path.iterdir()] == [f"jieba.u{name}.cache"]


def test_full_dictionary_cache_is_private(tmp_path: Path) -> None:
    """Indexing's full jieba keeps its parsed dictionary in semsearch's cache (mode 0700), not
    at `/tmp/jieba.cache` where any user could plant one."""
    home, shared = tmp_path / "home", tmp_path / "tmp"
    shared.mkdir()
    code = "from semsearch.lexical import tokenize; print(tokenize('志愿者为居民送菜'))"
    env = {**os.environ, "SEMSEARCH_HOME": str(home), "TMPDIR": str(shared)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert "送菜" in done.stdout, done.stderr
    assert not list(shared.iterdir())
    assert (home / "jieba" / "jieba.cache").is_file()
    assert (home / "jieba").stat().st_mode & 0o777 == 0o700
