"""Indexes by name (issue 40): which index a bare name means, where a named index is written,
what `semsearch info` lists, and that paths and Milvus URIs are left as they were."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import semsearch
from semsearch import indexes
from semsearch.cli import app
from semsearch.errors import IndexLoadError, IndexNotFoundError
from semsearch.integrations import open_index
from semsearch.stores import DEFAULT_INDEX

from .conftest import SEEDS

runner = CliRunner()


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _fake(directory: Path) -> Path:
    """A directory that looks like an index to name lookup (it holds CURRENT)."""
    directory.mkdir(parents=True)
    (directory / "CURRENT").write_text("gen-00000001 0\n", encoding="utf-8")
    return directory


def _one_line_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("error:") and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("text", ["seeds", "mine", "news-2024", "v1.2", "新闻"])
def test_bare_names(text: str) -> None:
    assert indexes.is_name(text)


@pytest.mark.parametrize("text", ["./mine", "indexes/mine", "/srv/idx", "~/idx", ".", "..",
                                  ".hidden", "x.db", "./x.db", "http://host:19530",
                                  "https://h:443", "C:idx", ""])
def test_paths_and_milvus_uris_are_not_names(text: str) -> None:
    assert not indexes.is_name(text)
    assert indexes.resolve(text) == text and indexes.target(text) == text


def test_a_path_object_is_a_path_whatever_it_spells(here: Path) -> None:
    _fake(here / "indexes" / "mine")
    assert indexes.resolve(Path("mine")) == Path("mine")


def test_a_milvus_uri_is_untouched_where_an_index_of_that_spelling_exists(here: Path) -> None:
    _fake(here / "indexes" / "x.db")
    assert indexes.resolve("x.db") == "x.db" and indexes.target("x.db") == "x.db"
    assert indexes.resolve("http://127.0.0.1:19530") == "http://127.0.0.1:19530"
    # and the URI still reaches Milvus (here: no server), not the indexes folder
    message = _one_line_error(["query", "x", "--index", "http://127.0.0.1:9"])
    assert "Milvus" in message


def test_a_name_is_found_in_the_local_indexes_folder(here: Path) -> None:
    found = _fake(here / "indexes" / "mine")
    assert Path(indexes.resolve("mine")).resolve() == found.resolve()


def test_the_indexes_folder_wins_over_a_relative_directory_of_the_same_name(
        here: Path) -> None:
    """A clone's `seeds/` is the corpus: `--index seeds` means indexes/seeds. And where ./mine
    is an index too, the name still means indexes/mine (with a warning); ./mine means ./mine."""
    (here / "seeds").mkdir()
    built = _fake(here / "indexes" / "seeds")
    assert Path(indexes.resolve("seeds")).resolve() == built.resolve()
    _fake(here / "indexes" / "mine")
    _fake(here / "mine")
    with pytest.warns(indexes.AmbiguousNameWarning, match=r"\./mine"):
        assert Path(indexes.resolve("mine")).resolve() == (here / "indexes" / "mine").resolve()
    assert indexes.resolve("./mine") == "./mine"


def test_a_relative_index_directory_still_answers_to_its_bare_name(here: Path) -> None:
    """What `--index mine` meant before names: ./mine, when no indexes folder has a mine."""
    _fake(here / "mine")
    assert indexes.resolve("mine") == "mine"


def test_the_lookup_order(here: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = _fake(indexes.user_folder() / "mine")
    assert Path(indexes.resolve("mine")) == user
    local = _fake(here / "indexes" / "mine")
    assert Path(indexes.resolve("mine")).resolve() == local.resolve()
    env = _fake(tmp_path / "env" / "mine")
    monkeypatch.setenv(indexes.FOLDERS_ENV, str(tmp_path / "env"))
    assert Path(indexes.resolve("mine")) == env
    assert indexes.write_folder() == tmp_path / "env"


def test_where_a_name_is_written(here: Path) -> None:
    assert indexes.write_folder() == indexes.user_folder()  # no ./indexes here
    (here / "indexes").mkdir()
    assert indexes.target("mine") == str(Path("indexes") / "mine")


def test_seeds_falls_back_to_the_packaged_index(here: Path) -> None:
    assert Path(indexes.resolve("seeds")) == DEFAULT_INDEX


def test_a_missing_name_says_which_names_exist(here: Path) -> None:
    _fake(here / "indexes" / "alpha")
    _fake(indexes.user_folder() / "beta")
    with pytest.raises(IndexNotFoundError) as caught:
        indexes.resolve("gamma")
    assert isinstance(caught.value, IndexLoadError)  # code catching load errors still does
    message = str(caught.value)
    assert "'gamma'" in message and "alpha, beta, seeds" in message
    assert "--out gamma" in message
    line = _one_line_error(["query", "夫妻", "--index", "gamma"])
    assert "no index named 'gamma'" in line and "alpha, beta, seeds" in line
    with pytest.raises(IndexNotFoundError, match="alpha"):
        semsearch.open("gamma")


def test_index_without_out_writes_the_folders_name_and_query_info_use_it(
        here: Path, tiny_model: Path) -> None:
    (here / "indexes").mkdir()
    shutil.copytree(SEEDS, here / "news")
    result = runner.invoke(app, ["index", "news", "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert (here / "indexes" / "news" / "CURRENT").is_file()
    again = _one_line_error(["index", "news/", "--model", str(tiny_model)])
    assert "already holds an index" in again and "--force" in again
    result = runner.invoke(app, ["query", "夫妻党员抗疫", "--index", "news", "--json", "-k", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hits"][0]["source"].endswith(".txt")
    listed = runner.invoke(app, ["info"])
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[1]: line for line in listed.stdout.splitlines()
            if line.startswith("│") and line.split()[1] in ("news", "seeds")}
    passages = semsearch.open("news").manifest.passage_count
    assert f" {passages} " in rows["news"] and "packaged" in rows["seeds"]
    shown = runner.invoke(app, ["info", "--index", "news"])
    assert shown.exit_code == 0 and "000_0db68ecbc2c6cfcf.txt" in shown.stdout


def test_a_records_file_is_named_by_its_stem(here: Path, tiny_model: Path) -> None:
    (here / "indexes").mkdir()
    (here / "faq.jsonl").write_text(json.dumps({"id": "1", "text": "志愿者为居民送菜上门"},
                                               ensure_ascii=False) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["index", "faq.jsonl", "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert (here / "indexes" / "faq" / "CURRENT").is_file()


@pytest.mark.parametrize(("path", "name"), [("seeds", "seeds"), ("seeds/", "seeds"),
                                           ("news.jsonl", "news"), ("my docs", "my-docs"),
                                           (".hidden", "hidden"), ("x.db.txt", "x"),
                                           ("新闻 2024/", "新闻-2024"), ("...", "index")])
def test_the_name_an_index_gets(here: Path, path: str, name: str) -> None:
    if path.endswith("/") or "." not in path:
        (here / path).mkdir()
    assert indexes.name_for([Path(path)]) == name and indexes.is_name(name)


def test_out_name_add_and_remove_by_name(here: Path, tiny_model: Path) -> None:
    (here / "indexes").mkdir()
    (here / "a.txt").write_text("志愿者为居民送菜上门。\n", encoding="utf-8")
    (here / "b.txt").write_text("夫妻二人都是党员，一起抗击疫情。\n", encoding="utf-8")
    result = runner.invoke(app, ["index", "a.txt", "--out", "mine", "--model",
                                 str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert (here / "indexes" / "mine" / "CURRENT").is_file() and not (here / "mine").exists()
    assert runner.invoke(app, ["add", "b.txt", "--index", "mine"]).exit_code == 0
    assert set(semsearch.open("mine").manifest.sources) == {"a.txt", "b.txt"}
    assert runner.invoke(app, ["remove", "--source", "a.txt", "--index", "mine"]).exit_code == 0
    assert set(semsearch.open("mine").manifest.sources) == {"b.txt"}


def test_several_paths_need_an_out(here: Path) -> None:
    assert "give --out NAME" in _one_line_error(["index", str(SEEDS), str(SEEDS)])


def test_the_library_and_the_retrievers_take_names(here: Path, tiny_index: Path) -> None:
    shutil.copytree(tiny_index, here / "indexes" / "mine")
    index = semsearch.open("mine")
    assert Path(index.store.location).resolve() == (here / "indexes" / "mine").resolve()
    assert open_index("mine").manifest.passage_count == index.manifest.passage_count
    index.save("copy")  # a name to save to is a directory in the indexes folder
    assert semsearch.open("copy").manifest.passage_count == index.manifest.passage_count
    assert (here / "indexes" / "copy" / "CURRENT").is_file()


def test_the_service_follows_an_index_opened_by_name(here: Path, tiny_index: Path) -> None:
    pytest.importorskip("fastapi")
    from starlette.testclient import TestClient

    from .conftest import make_app

    shutil.copytree(tiny_index, here / "indexes" / "mine")
    with TestClient(make_app("mine")) as client:  # type: ignore[arg-type]
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["name"] == "mine"
        assert client.post("/search", json={"query": "夫妻党员抗疫", "k": 1}).json()["hits"]


def test_the_pointer_file_is_the_stores_one() -> None:
    from semsearch.stores.generations import CURRENT

    assert indexes._CURRENT == CURRENT  # duplicated to keep indexes.py free of store imports


def test_info_without_an_index_lists_a_broken_one_with_why(here: Path) -> None:
    _fake(here / "indexes" / "broken")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "broken" in result.stdout and "seeds" in result.stdout


def test_info_dropped_still_reads_the_default_index(here: Path) -> None:
    result = runner.invoke(app, ["info", "--dropped", "no-such-source.txt"])
    assert "no source 'no-such-source.txt'" in result.stderr


def test_the_repository_has_an_indexes_folder_that_commits_no_index() -> None:
    repo = SEEDS.parent
    ignore = (repo / "indexes" / ".gitignore").read_text(encoding="utf-8")
    assert (repo / "indexes" / "README.md").is_file()
    assert "*" in ignore.splitlines() and "!README.md" in ignore.splitlines()
