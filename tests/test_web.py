"""The search page's server side (semsearch/web, semsearch/highlight.py), in-process over a
tiny-model index: the page and its files are served with a strict CSP, `/fields` lists what a
filter may name, `/search` says which characters to highlight (with the CLI's folding), and
`/health` names the index. The page itself runs in a real browser in test_web_browser.py."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import semsearch
from semsearch.highlight import folded, spans

from .conftest import SEEDS

TARGET = "002_b3706f758604a439.txt"


@pytest.fixture(scope="module")
def client(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from semsearch.serve import create_app

    out = tmp_path_factory.mktemp("web") / "index"
    semsearch.build([SEEDS], model=str(tiny_model)).save(out)
    index = semsearch.load(out)
    with TestClient(create_app(index), raise_server_exceptions=False) as test_client:
        yield test_client


def query_terms(query: str) -> list[str]:
    """The words the CLI and the service highlight for `query` (the seeds index's BM25)."""
    return semsearch.open().query_words(query)


def marked(text: str, found: list[list[int]] | list[tuple[int, int]]) -> list[str]:
    return [text[start:end] for start, end in found]


def test_a_traditional_query_marks_simplified_text() -> None:
    text = "孔蓉香说：“我们夫妻俩都是党员，一起抗疫。”"
    assert marked(text, spans(text, query_terms("夫妻黨員抗疫"))) == ["夫妻", "党员", "抗疫"]
    assert marked(text, spans(text, query_terms("夫妻党员抗疫"))) == ["夫妻", "党员", "抗疫"]


def test_traditional_text_is_marked_for_a_simplified_query() -> None:
    text = "我們夫妻倆都是黨員"
    assert marked(text, spans(text, query_terms("夫妻党员"))) == ["夫妻", "黨員"]


def test_a_folding_that_changes_length_still_maps_back() -> None:
    # before: the CLI gave up highlighting when NFKC made the text longer ("①" → "1")
    text = "①号楼ＣＯＶＩＤ防控：党员先行"
    flat, origin = folded(text)
    assert len(flat) == len(origin) and flat.startswith("1号楼covid")
    assert marked(text, spans(text, ["covid", "党员"])) == ["ＣＯＶＩＤ", "党员"]


def test_spans_do_not_overlap_and_prefer_longer_words() -> None:
    text = "疫情防控疫情"
    found = spans(text, ["疫情防控", "疫情", "防控"])
    assert marked(text, found) == ["疫情防控", "疫情"]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(found))


def test_the_page_and_its_files_are_served_without_outside_sources(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert "http://" not in html and "https://" not in html  # no CDN
    for name in ("app.js", "app.css", "icon.svg"):
        assert f"/static/{name}" in html
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.content
        assert "https://" not in asset.text
    assert client.get("/?q=抗疫&mode=bm25").text == html  # a bookmarked search is the same page


@pytest.mark.parametrize(("method", "path", "status"),
                         [("GET", "/static/nope.js", 404), ("GET", "/static/../serve.py", 404),
                          ("POST", "/", 405), ("DELETE", "/fields", 405)])
def test_wrong_page_requests_get_error_json(client: Any, method: str, path: str,
                                            status: int) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert set(response.json()) == {"error", "code"}


def test_fields_lists_what_a_filter_may_name(client: Any) -> None:
    body = client.get("/fields").json()
    assert [f["name"] for f in body["fields"]] == ["source", "paragraph", "start", "end",
                                                   "heading", "text"]
    assert {f["name"] for f in body["fields"] if f["type"] == "number"} == \
        {"paragraph", "start", "end"}
    assert body["metadata"] == []  # the seeds are text files: no record fields
    assert TARGET in body["sources"] and body["source_count"] == len(body["sources"]) == 4
    for field in body["fields"]:  # every listed field is one the search accepts
        value = '"x"' if field["type"] == "text" else "0"
        response = client.post("/search", json={"query": "抗疫",
                                                "where": f"{field['name']} != {value}"})
        assert response.status_code == 200, response.text


def test_fields_lists_record_metadata(tiny_model: Path, tmp_path: Path) -> None:
    from semsearch.web import fields

    records = tmp_path / "people.jsonl"
    records.write_text('{"id": "a", "text": "志愿者送菜上门", "year": 2020, "city": "武汉"}\n'
                       '{"id": "b", "text": "夫妻党员抗疫", "year": 2021}\n', encoding="utf-8")
    body = fields(semsearch.build([records], model=str(tiny_model)))
    assert body["metadata"] == ["city", "id", "line", "year"]  # record fields + id, line
    assert body["source_count"] == 2


def test_search_says_what_to_highlight_when_asked(client: Any) -> None:
    response = client.post("/search", json={"query": "夫妻黨員抗疫", "k": 5, "mode": "bm25",
                                            "highlight": True, "context": 1})
    assert response.status_code == 200
    body = response.json()
    assert set(body["highlight"]) == {"夫妻", "党员", "抗疫"}
    words = {hit["text"][start:end] for hit in body["hits"] for start, end in hit["highlights"]}
    assert words and words <= {"夫妻", "党员", "抗疫"}
    for hit in body["hits"]:
        assert hit["highlights"] == [list(s) for s in spans(hit["text"], body["highlight"])]
        for passage in hit["context"]["passages"]:
            assert passage["highlights"] == [list(s) for s in spans(passage["text"],
                                                                    body["highlight"])]
    plain = client.post("/search", json={"query": "夫妻黨員抗疫", "k": 5, "mode": "bm25"}).json()
    assert set(plain) == {"query", "hits"} and "highlights" not in plain["hits"][0]
    assert [h["id"] for h in plain["hits"]] == [h["id"] for h in body["hits"]]
    refused = client.post("/search", json={"query": "抗疫", "highlight": "yes"})
    assert refused.status_code == 422


def test_health_names_the_index_and_counts_sources(client: Any) -> None:
    body = client.get("/health").json()
    assert body["name"] == "index" and body["sources"] == 4 and body["passages"] > 0


def test_words_of_other_scripts_are_marked_whole_not_letter_by_letter(client: Any) -> None:
    # before: jieba cut İstanbul, straße and a decomposed ré into `i`, `ß`, `e`, `r`..., and
    # every such letter of every hit was marked (364–825 marks per 20 hits)
    query = "İstanbul straße re\u0301sume\u0301"
    body = client.post("/search", json={"query": query, "k": 20, "mode": "bm25",
                                        "highlight": True}).json()
    assert set(body["highlight"]) == {"résumé", "strasse", "i̇stanbul"}
    assert all(len(t) > 1 for t in body["highlight"])
    text = "I visited İSTANBUL, the Straße (STRASSE), my résumé in Italy, a resume"
    assert marked(text, spans(text, body["highlight"])) == ["İSTANBUL", "Straße", "STRASSE",
                                                            "résumé"]
