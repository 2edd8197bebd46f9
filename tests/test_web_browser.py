"""The search page in a real headless Chromium (Debian's, driven by Playwright) against a live
`semsearch serve` on the seeds index (the real model: slow), as a person would use it: type and
press Enter, read the highlighted passage, filter, bookmark, expand neighbours, keyboard only, in
English and Chinese. 503 and 504 come from a tiny-model service made slow or unusable on purpose.
Every page must log no console error beyond the failed request a test provokes.

Screenshots (1280 and 360 px) and the Enter-to-results timings go to a temporary directory, or
to $SEMSEARCH_PAGE_OUT when set (docs/ holds the ones the README shows). Skipped, with the
reason, only where no browser can be had: no `playwright` package or no Chromium binary."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from .conftest import REPO, SEEDS

COUPLE = "我们夫妻俩都是党员"
TARGET = "002_b3706f758604a439.txt"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMINGS = 20  # searches timed from Enter to results


def chromium() -> str | None:
    """A Chromium binary: $SEMSEARCH_CHROMIUM, else Debian's (apt-get install chromium)."""
    for name in (os.environ.get("SEMSEARCH_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="no browser driver: the playwright package is not "
        "installed (`make setup` installs it with the dev extra)")
    binary = chromium()
    if binary is None:
        pytest.skip("no browser: Chromium is not installed (apt-get install chromium; "
                    ".ci/run installs it)")
    with sync_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=binary, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("SEMSEARCH_PAGE_OUT")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("page")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Page:
    """A browser tab that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, locale: str = "en-US", width: int = 1280) -> None:
        self.context = browser.new_context(locale=locale,
                                           viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def close(self) -> None:
        self.context.close()

    def errors_besides(self, *statuses: int) -> list[str]:
        """Console errors other than the failed requests with these statuses (Chromium logs
        every 4xx/5xx fetch; a test that provokes one expects that line)."""
        expected = tuple(f"status of {s} " for s in statuses)
        return [e for e in self.errors if not any(x in e for x in expected)]


@pytest.fixture
def tab(browser: Any) -> Iterator[Page]:
    opened = Page(browser)
    yield opened
    opened.close()


def start_service(*args: str, cwd: Path = REPO) -> tuple[subprocess.Popen[str], str]:
    from .conftest import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", "--port",
                                str(port), *args], cwd=cwd, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"semsearch serve exited: {process.stderr.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("semsearch serve did not answer /health")


@pytest.fixture(scope="module")
def seeds(real_model: Path) -> Iterator[str]:
    """`semsearch serve` on the seeds index, as a user starts it."""
    process, url = start_service()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def search(page: Any, query: str) -> list[dict[str, Any]]:
    """Type `query` in the search box, press Enter, wait for the answer to this query (not
    to an earlier one still in flight: a slow search's 504 can arrive meanwhile); the hits
    shown."""
    box = page.get_by_role("searchbox")
    box.fill(query)

    def answers(response: Any) -> bool:
        body = response.request.post_data or ""
        return response.url.endswith("/search") and (query in body
                                                      or json.dumps(query)[1:-1] in body)

    with page.expect_response(answers):
        box.press("Enter")
    return shown(page)


def shown(page: Any) -> list[dict[str, Any]]:
    page.wait_for_function("() => !document.getElementById('results').hasAttribute('aria-busy')")
    return list(page.eval_on_selector_all(".hit", """hits => hits.map(h => ({
        id: Number(h.dataset.id),
        source: h.querySelector('.source span').textContent,
        text: h.querySelector('.text').textContent,
        marks: [...h.querySelectorAll('.text mark')].map(m => m.textContent)}))"""))


def api(url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/search", json=body, timeout=30)


@pytest.mark.slow
def test_typing_a_query_and_enter_shows_the_couple_first_highlighted(
        seeds: str, tab: Page, out_dir: Path) -> None:
    page = tab.page
    page.goto(seeds)
    page.wait_for_function("() => document.getElementById('footer').textContent.includes('seeds')")
    footer = page.locator("footer").inner_text()
    health = httpx.get(f"{seeds}/health").json()
    for fact in (health["name"], f"{health['passages']} passages", f"{health['sources']} sources",
                 f"generation {health['generation']}", health["model"]):
        assert fact in footer
    assert page.evaluate("document.activeElement.id") == "q"  # ready to type
    hits = search(page, "夫妻党员抗疫")
    assert COUPLE in hits[0]["text"] and hits[0]["source"].startswith("000_")
    assert {"夫妻", "党员", "抗疫"} <= set(hits[0]["marks"])
    assert "q=%E5%A4%AB%E5%A6%BB%E5%85%9A%E5%91%98%E6%8A%97%E7%96%AB" in page.url  # bookmarkable
    assert "mode=hybrid" in page.url
    assert page.get_by_role("status").inner_text().startswith(f"{len(hits)} results in")
    page.screenshot(path=str(out_dir / "search-page-1280.png"))
    assert tab.errors == []


@pytest.mark.slow
def test_a_traditional_query_highlights_the_simplified_passage(seeds: str, tab: Page) -> None:
    tab.page.goto(seeds)
    hits = search(tab.page, "夫妻黨員抗疫")
    assert COUPLE in hits[0]["text"]
    assert {"夫妻", "党员", "抗疫"} <= set(hits[0]["marks"])  # simplified words marked
    assert tab.errors == []


@pytest.mark.slow
def test_a_filter_from_the_sources_list_narrows_the_hits(seeds: str, tab: Page) -> None:
    page = tab.page
    page.goto(seeds)
    page.get_by_label("Hits").fill("10")
    everywhere = search(page, "抗疫")
    assert len({h["source"] for h in everywhere}) > 1
    chips = page.locator("#field-list .chip")
    assert chips.all_inner_texts() == ["source", "paragraph", "start", "end", "heading", "text"]
    page.locator("#sources summary").click()
    page.get_by_role("button", name=TARGET).click()
    assert page.get_by_label("Filter", exact=True).input_value() == f'source == "{TARGET}"'
    with page.expect_response("**/search"):
        page.get_by_label("Filter", exact=True).press("Enter")
    narrowed = shown(page)
    assert narrowed and {h["source"] for h in narrowed} == {TARGET}
    assert len(narrowed) <= len(everywhere)
    assert "where=source" in page.url
    assert tab.errors == []


@pytest.mark.slow
def test_a_refused_filter_shows_the_services_error(seeds: str, tab: Page) -> None:
    page = tab.page
    page.goto(seeds)
    assert search(page, "抗疫")
    page.get_by_label("Filter", exact=True).fill("nosuch == 1")
    with page.expect_response("**/search"):
        page.get_by_label("Filter", exact=True).press("Enter")
    expected = api(seeds, query="抗疫", k=10, where="nosuch == 1").json()["error"]
    assert "unknown field 'nosuch'" in expected
    error = page.locator("#where-error")
    assert error.is_visible() and error.inner_text() == expected
    assert page.get_by_label("Filter", exact=True).get_attribute("aria-invalid") == "true"
    assert "filter was refused" in page.get_by_role("status").inner_text()
    assert shown(page) == []  # no hits left from another search
    assert tab.errors_besides(400) == []
    page.get_by_label("Filter", exact=True).fill("paragraph > 3")  # corrected: the error goes away
    with page.expect_response("**/search"):
        page.get_by_label("Filter", exact=True).press("Enter")
    assert shown(page) and not error.is_visible()


@pytest.mark.slow
def test_a_bookmarked_url_reproduces_the_search(seeds: str, tab: Page) -> None:
    page = tab.page
    where = "paragraph > 1"
    with page.expect_response("**/search"):
        page.goto(f"{seeds}/?q={quote('夫妻党员抗疫')}&mode=bm25&k=3&where={quote(where)}")
    hits = shown(page)
    assert page.get_by_role("searchbox").input_value() == "夫妻党员抗疫"
    assert page.get_by_label("Mode").input_value() == "bm25"
    assert page.get_by_label("Hits").input_value() == "3"
    assert page.get_by_label("Filter", exact=True).input_value() == where
    expected = api(seeds, query="夫妻党员抗疫", mode="bm25", k=3, where=where).json()["hits"]
    assert [h["id"] for h in hits] == [h["id"] for h in expected] and len(hits) == 3
    search(page, "志愿者送物资")  # a second search, then Back: the first comes back
    with page.expect_response("**/search"):
        page.go_back()
    assert [h["id"] for h in shown(page)] == [h["id"] for h in expected]
    assert tab.errors == []


@pytest.mark.slow
def test_expanding_a_hit_shows_its_neighbours(seeds: str, tab: Page) -> None:
    page = tab.page
    page.goto(seeds)
    hits = search(page, "夫妻党员抗疫")
    first = page.locator(".hit").first
    toggle = first.locator(".toggle")
    context = first.locator(".context")
    assert toggle.get_attribute("aria-expanded") == "false" and not context.is_visible()
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true" and context.is_visible()
    passages = context.locator(".context-passage")
    ids = [int(i) for i in passages.evaluate_all("ps => ps.map(p => p.dataset.id)")]
    assert len(ids) >= 3 and hits[0]["id"] in ids  # the hit and its neighbours, in order
    own = context.locator(".context-passage.own")
    assert COUPLE in own.inner_text()
    expected = api(seeds, query="夫妻党员抗疫", k=1, context=2).json()["hits"][0]["context"]
    assert ids == [p["id"] for p in expected["passages"]]
    toggle.click()
    assert not context.is_visible()
    assert tab.errors == []


@pytest.mark.slow
def test_keyboard_only(seeds: str, browser: Any) -> None:
    tab = Page(browser)
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = tab.page
    try:
        page.goto(seeds)
        keys = page.keyboard
        page.wait_for_function("() => document.activeElement.id === 'q'")
        keys.type("夫妻党员抗疫")
        keys.press("Tab")  # the search button
        keys.press("Tab")  # the mode
        assert page.evaluate("document.activeElement.id") == "mode"
        keys.press("ArrowDown")  # hybrid → dense
        keys.press("Tab")
        keys.press("Control+A")
        keys.type("4")
        keys.press("Tab")
        assert page.evaluate("document.activeElement.id") == "where"
        keys.type("paragraph > 0")
        with page.expect_response("**/search"):
            keys.press("Enter")
        hits = shown(page)
        assert len(hits) == 4 and COUPLE in hits[0]["text"]
        assert "mode=dense" in page.url and "k=4" in page.url
        for _ in range(40):  # Tab on to the first hit's neighbours button
            keys.press("Tab")
            if page.evaluate("document.activeElement.classList.contains('toggle')"):
                break
        keys.press("Enter")
        assert page.locator(".hit .context").first.is_visible()
        keys.press("Tab")  # copy the citation
        keys.press("Space")
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('Copied')")
        citation = page.evaluate("navigator.clipboard.readText()")
        assert citation.startswith("000_0db68ecbc2c6cfcf.txt:")
        keys.press("/")  # back to the search box from anywhere
        assert page.evaluate("document.activeElement.id") == "q"
        focus_ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert focus_ring != "none"
        assert tab.errors == []
    finally:
        tab.close()


@pytest.mark.slow
def test_chinese_ui_by_the_browsers_language_and_narrow_screen(seeds: str, browser: Any,
                                                               out_dir: Path) -> None:
    tab = Page(browser, locale="zh-CN", width=360)
    page = tab.page
    try:
        page.goto(seeds)
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        assert page.get_by_role("button", name="搜索").is_visible()
        assert page.get_by_label("筛选", exact=True).is_visible()
        hits = search(page, "夫妻党员抗疫")
        assert COUPLE in hits[0]["text"]
        assert "条结果" in page.get_by_role("status").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll
        page.screenshot(path=str(out_dir / "search-page-360.png"))
        assert tab.errors == []
    finally:
        tab.close()


@pytest.mark.slow
def test_time_from_enter_to_results(seeds: str, tab: Page, out_dir: Path) -> None:
    """Browser-measured: from the Enter keydown to the results in the page (after a frame),
    the median of TIMINGS searches over the seeds queries."""
    page = tab.page
    page.goto(seeds)
    page.evaluate("""() => {
        document.addEventListener('keydown', e => {
            if (e.key === 'Enter') window.enterAt = performance.now(); }, true);
        document.addEventListener('semsearch:results', () => requestAnimationFrame(() => {
            window.shownAt = performance.now(); }));
    }""")
    queries = [json.loads(line)["query"] for line in
               (REPO / "semsearch/data/qrels/seeds.jsonl").read_text("utf-8").splitlines()]
    times, direct = [], []
    for query in queries[:TIMINGS]:
        page.evaluate("window.shownAt = null")
        search(page, query)
        page.wait_for_function("() => window.shownAt !== null")
        times.append(page.evaluate("window.shownAt - window.enterAt"))
        start = time.perf_counter()  # the same request without the browser, for comparison
        api(seeds, query=query, k=10, mode="hybrid", context=2, highlight=True)
        direct.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    (out_dir / "enter_to_results.json").write_text(json.dumps(
        {"searches": len(times), "median_ms": round(median, 1),
         "max_ms": round(max(times), 1), "times_ms": [round(t, 1) for t in times],
         "same_request_without_browser_median_ms": round(statistics.median(direct), 1),
         "load_average": os.getloadavg()[0]}) + "\n")
    assert len(times) == TIMINGS and median < 2000, times
    assert tab.errors == []


# --- 503 and 504: a tiny-model service made unusable or slow on purpose (fast) ---------------

@pytest.fixture(scope="module")
def troubled(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service whose search for "slow" takes 3 s (limit 0.5 s: 504) and for "broken" finds
    the index unusable (503)."""
    import semsearch
    from semsearch.errors import IndexLoadError
    from semsearch.serve import create_app

    from .conftest import serving

    out = tmp_path_factory.mktemp("troubled") / "index"
    semsearch.build([SEEDS], model=str(tiny_model)).save(out)
    index = semsearch.load(out)
    index.search("warm up", k=1)
    from semsearch import serve

    # slow searches keep sleeping after their 504: enough workers and batch runners that two
    # of them (one from the test before) never hold up the next search
    runners, serve.BATCH_RUNNERS = serve.BATCH_RUNNERS, 4
    try:
        app = create_app(index, timeout=0.5, workers=4)
    finally:
        serve.BATCH_RUNNERS = runners
    original, original_each = index.search, index.search_each

    gone = "the index generation this service loaded was removed"

    def troubled_search(query: str, *args: Any, **kwargs: Any) -> Any:
        if query == "slow":
            time.sleep(3)
        if query == "broken":
            raise IndexLoadError(gone)
        return original(query, *args, **kwargs)

    def troubled_each(requests: Any, **kwargs: Any) -> Any:  # the batched path of /search
        if any(r.query == "slow" for r in requests):
            time.sleep(3)
        answers = original_each(requests, **kwargs)
        return [IndexLoadError(gone) if r.query == "broken" else found
                for r, found in zip(requests, answers, strict=True)]

    app.state.live.index.search = troubled_search
    app.state.live.index.search_each = troubled_each
    with serving(app) as (url, _):
        yield url


@pytest.mark.parametrize(("query", "status", "message"), [
    ("slow", 504, "took longer than the service allows"),
    ("broken", 503, "busy or its index cannot be used")])
def test_overload_and_time_limit_get_a_clear_message(troubled: str, tab: Page, query: str,
                                                     status: int, message: str) -> None:
    page = tab.page
    page.goto(troubled)
    box = page.get_by_role("searchbox")
    box.fill(query)
    with page.expect_response("**/search") as answer:
        box.press("Enter")
    assert answer.value.status == status
    line = page.get_by_role("status")
    page.wait_for_function("() => document.getElementById('status').classList.contains('problem')")
    assert message in line.inner_text()
    assert answer.value.json()["error"] in line.inner_text()  # the service's own words too
    assert tab.errors_besides(status) == []
    assert search(page, "抗疫")  # the page is still usable


def test_nothing_blocks_while_a_search_runs(troubled: str, tab: Page) -> None:
    """A newer search replaces a slow one in flight: the box stays usable, the slow answer
    never overwrites the new one."""
    page = tab.page
    page.goto(troubled)
    box = page.get_by_role("searchbox")
    box.fill("slow")
    box.press("Enter")
    page.wait_for_function("() => document.getElementById('results').hasAttribute('aria-busy')")
    assert box.is_editable()
    hits = search(page, "抗疫")
    assert hits
    page.wait_for_timeout(800)  # past the slow one's 504
    assert shown(page) == hits and "problem" not in (page.get_by_role("status")
                                                     .get_attribute("class") or "")
    assert tab.errors_besides(504) == []

