"""Micro-batching in the service (batching.py, search.search_each, Index.search_each) and the
warm tokenizer: batched answers equal single answers, on the tiny model; `tokenizers` gives the
ids of the cold-start unigram tokenizer, on the real model's tables."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.batching import Batcher
from semsearch.search import Request

from .conftest import make_app

# --- the batcher ----------------------------------------------------------------------------


class Busy(Exception):
    pass


def test_requests_arriving_during_a_batch_are_answered_together_each_its_own() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()

    def run(items: list[int]) -> list[Any]:
        seen.append(items)
        if items == [0]:
            gate.wait(5)  # the first batch runs while the others queue
        return [ValueError(f"no {n}") if n == 3 else n * 10 for n in items]

    batcher: Batcher[int] = Batcher(run, runners=1, busy=Busy)
    first = batcher.submit(0)
    time.sleep(0.05)
    rest = [batcher.submit(n) for n in range(1, 6)]
    assert batcher.load() == {"workers": 1, "busy": 1, "waiting": 5}
    gate.set()
    assert first.result(5) == 0
    assert [f.result(5) for f in rest if f is not rest[2]] == [10, 20, 40, 50]
    with pytest.raises(ValueError, match="no 3"):
        rest[2].result(5)
    assert seen == [[0], [1, 2, 3, 4, 5]]
    assert (batcher.batches, batcher.items) == (2, 6)
    batcher.shutdown()


def test_the_window_gathers_requests_and_max_batch_bounds_a_batch() -> None:
    seen: list[list[int]] = []
    batcher: Batcher[int] = Batcher(lambda items: seen.append(items) or items, runners=1,
                                    window=0.2, max_batch=3)
    futures = [batcher.submit(n) for n in range(5)]
    assert [f.result(5) for f in futures] == list(range(5))
    assert seen == [[0, 1, 2], [3, 4]]  # full at once, then the window's end
    start = time.perf_counter()
    assert batcher.submit(7).result(5) == 7
    assert 0.15 < time.perf_counter() - start < 1.5  # alone: answered at the window's end
    batcher.shutdown()


def test_a_lone_client_is_never_held_for_the_window() -> None:
    batcher: Batcher[int] = Batcher(lambda items: items, runners=1, window=0.3)
    for n in range(5):  # one client, one request at a time: nothing to gather
        start = time.perf_counter()
        assert batcher.submit(n).result(5) == n
        assert time.perf_counter() - start < 0.15  # before: each waited the whole window
    batcher.shutdown()


def _closed_loop(batcher: Batcher[int], clients: int, rounds: int) -> float:
    """`clients` threads each submit, wait for the answer and submit again, `rounds` times, a
    few ms apart as HTTP clients come back; the seconds it all took."""
    def client(n: int) -> None:
        for r in range(rounds):
            time.sleep(0.001 * ((n + r) % 4))
            assert batcher.submit(n).result(10) == n

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return time.perf_counter() - start


def test_clients_answered_together_are_gathered_again_without_waiting_the_window() -> None:
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        time.sleep(0.02)  # the model's fixed cost
        return items

    batcher: Batcher[int] = Batcher(run, runners=1, window=0.5, max_wait=1.0)
    elapsed = _closed_loop(batcher, clients=6, rounds=8)
    batcher.shutdown()
    assert sum(sizes) == 48
    # after the first batches the six come back together and are answered together (with no
    # wait they split into alternating batches of 1 and 5); at the end a client that ran
    # ahead is alone, so at most the last two batches are smaller
    assert sizes[2:-2] and all(size == 6 for size in sizes[2:-2]), sizes
    # a batch leaves once its clients are back, not at the window's end (before: every batch
    # waited 0.5 s for max_batch items: ≥ 4 s here); the stragglers at the end may wait it
    assert elapsed < 2.5, (elapsed, sizes)


def test_a_full_backlog_is_refused_and_a_cancelled_request_is_dropped() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()

    def run(items: list[int]) -> list[int]:
        seen.append(items)
        gate.wait(5)
        return items

    batcher: Batcher[int] = Batcher(run, runners=1, backlog=2, busy=Busy)
    running = batcher.submit(0)
    time.sleep(0.05)
    waiting = [batcher.submit(1), batcher.submit(2)]
    with pytest.raises(Busy, match="busy"):
        batcher.submit(3)
    waiting[0].cancel()  # its caller gave up (504): room again, and it never runs
    later = batcher.submit(4)
    gate.set()
    assert [running.result(5), waiting[1].result(5), later.result(5)] == [0, 2, 4]
    assert seen == [[0], [2, 4]]
    batcher.shutdown()


def test_a_failing_batch_fails_each_request_and_shutdown_cancels_the_waiting() -> None:
    gate = threading.Event()

    def run(items: list[int]) -> list[int]:
        gate.wait(5)
        raise RuntimeError("boom")

    batcher: Batcher[int] = Batcher(run, runners=1, busy=Busy)
    running = batcher.submit(0)
    time.sleep(0.05)
    queued: Future[Any] = batcher.submit(1)
    batcher.shutdown()
    gate.set()
    with pytest.raises(RuntimeError, match="boom"):
        running.result(5)
    with pytest.raises(CancelledError):
        queued.result(5)
    with pytest.raises(Busy, match="shutting down"):
        batcher.submit(2)


# --- batched answers equal single answers (tiny model) --------------------------------------

REQUESTS = [
    Request("抗疫", 5, "hybrid", "weighted", None),
    Request("夫妻党员", 3, "dense", "weighted", None),
    Request("社区 志愿者", 7, "bm25", "weighted", None),
    Request("抗疫", 5, "hybrid", "rrf", None),
    Request("醫護人員", 5, "hybrid", "weighted", "paragraph > 1"),  # traditional: folded too
    Request("抗疫", 2, "dense", "weighted", "paragraph > 1"),
    Request("党员 抗疫", 20, "hybrid", "weighted", "paragraph <= 2"),
    Request("抗疫", 5, "bm25", "weighted", "paragraph > 1"),
    Request("\u200b", 5, "hybrid", "weighted", None),  # empty: QueryError
    Request("抗疫", 5, "hybrid", "weighted", "nosuchfield > 1"),  # bad filter: QueryError
    Request("volunteers in the community", 1, "dense", "weighted", None),
]


def answer(index: Any, request: Request, context: int = 0) -> Any:
    try:
        return index.search(request.query, request.k, request.mode, request.fusion,
                            request.where, context=context)
    except Exception as exc:
        return exc


def same(batched: Any, alone: Any) -> None:
    if isinstance(alone, Exception):
        assert type(batched) is type(alone) and str(batched) == str(alone)
        return
    assert [h.id for h in batched] == [h.id for h in alone]
    assert [h.rank for h in batched] == [h.rank for h in alone]
    # scores: padding the batch's queries to one length moves float sums by ~1e-7
    assert [h.score for h in batched] == pytest.approx([h.score for h in alone], abs=1e-5)
    assert [h.context for h in batched] == [h.context for h in alone]


@pytest.mark.parametrize("warm", [None, "auto", "int8"], ids=["cold", "warm", "warm-int8"])
def test_a_batch_of_mixed_requests_answers_each_as_alone(
        tiny_index: Path, warm: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also warm, as the service runs: with the default query path (bf16 on OpenVINO where
    the CPU has AMX: models/openvino.py) and the opt-in int8 one."""
    import semsearch

    index = semsearch.load(tiny_index)
    if warm:
        monkeypatch.setenv("SEMSEARCH_QUERY_PATH", warm)
        index.encoder.runner.warm()  # type: ignore[attr-defined]
    contexts = [0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 0]
    batched = index.search_each(REQUESTS, context=contexts)
    assert len(batched) == len(REQUESTS)
    for request, span, found in zip(REQUESTS, contexts, batched, strict=True):
        same(found, answer(index, request, span))
    assert sum(isinstance(f, Exception) for f in batched) == 2
    assert all(found for found in batched if not isinstance(found, Exception))


def test_the_service_answers_concurrent_requests_in_batches_as_alone(tiny_index: Path) -> None:
    from starlette.testclient import TestClient

    app = make_app(tiny_index, timeout=30)
    bodies = [{"query": r.query, "k": r.k, "mode": r.mode, "fusion": r.fusion,
               "where": r.where, "highlight": n % 2 == 0, "context": n % 3}
              for n, r in enumerate(REQUESTS) if r.query.strip("\u200b")] * 3
    index = app.state.live.index
    original = index.search_each

    def slower(requests: Any, **kwargs: Any) -> Any:  # the first batch holds the rest back
        time.sleep(0.2)
        return original(requests, **kwargs)

    with TestClient(app) as client:
        alone = [client.post("/search", json=body) for body in bodies]
        batches = app.state.batcher.batches
        index.search_each = slower
        with ThreadPoolExecutor(len(bodies)) as pool:
            together = list(pool.map(lambda body: client.post("/search", json=body), bodies))
        ran = app.state.batcher.batches - batches
    assert ran < len(bodies) // 2  # they were batched
    for one, many in zip(alone, together, strict=True):
        assert one.status_code == many.status_code
        a, b = one.json(), many.json()
        if one.status_code != 200:
            assert a == b
            continue
        for x, y in zip(a["hits"], b["hits"], strict=True):
            assert abs(x.pop("score") - y.pop("score")) < 1e-5
            assert x == y
        assert {k: v for k, v in a.items() if k != "hits"} == \
            {k: v for k, v in b.items() if k != "hits"}


# --- the warm tokenizer gives the cold-start tokenizer's ids (real model's tables) ----------


@pytest.fixture(scope="module")
def runner() -> Any:
    """An OnnxRunner with the real model's two tokenizers and no session (fast to make)."""
    from semsearch.models.onnx import OnnxRunner, read_export_info
    from semsearch.models.provision import is_provisioned
    from semsearch.models.resolve import provisioned_dir
    from semsearch.models.unigram import UNIGRAM_DIR, UnigramTokenizer, has_tables

    path = provisioned_dir()
    if not (is_provisioned(path) and has_tables(path)):
        pytest.skip("needs the provisioned model (`make setup`)")
    info = read_export_info(path)
    return OnnxRunner(path, None, None, int(info["max_tokens"]),  # type: ignore[arg-type]
                      int(info["pad_id"]), UnigramTokenizer.open(path / UNIGRAM_DIR))


ALPHABETS = st.sampled_from([
    "夫妻党员抗疫社区志愿者医护人员的了是在",  # simplified
    "醫護人員夫妻黨員抗疫誌願者臺灣們這個",  # traditional
    "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789",
    "😀👍🏽🇨🇳❤️‍🔥 ",  # emoji, modifiers, flags, ZWJ
    " 　\t\n，。！？、：；“”《》()-_.,!?'\"",
    "ＡＢＣ１２３ｆｉ①Ⅻ㍿½™é\u0301ñ",  # full width, compatibility forms, combining
])


@st.composite
def mixed_texts(draw: Any, longest: int) -> str:
    parts = draw(st.lists(st.tuples(ALPHABETS, st.integers(1, 12)), min_size=1, max_size=12))
    text = "".join(draw(st.text(alphabet, min_size=n, max_size=n)) for alphabet, n in parts)
    return text[:longest]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mixed_texts(120))
def test_warm_tokenizer_ids_equal_the_cold_start_ids(runner: Any, text: str) -> None:
    runner.fast = False
    cold = runner.ids(["query: " + text])
    runner.fast = True
    warm = runner.ids(["query: " + text])
    assert warm == cold


def test_warm_tokenizer_ids_equal_on_long_and_seed_texts(runner: Any) -> None:
    from .conftest import SEEDS

    texts = [line for f in sorted(SEEDS.glob("*.txt"))
             for line in f.read_text("utf-8").splitlines() if line.strip()][:40]
    texts.append("夫妻党员抗疫 mixed with English words and 表情😀 " * 40)  # past 512 tokens
    for text in texts:
        cut = ("passage: " + text)[: runner.max_chars]
        assert runner.quick.encode(cut, runner.max_tokens) == \
            runner.tokenizer.encode(cut).ids, text[:40]


@pytest.mark.parametrize("text", [
    "了了了了000000000",  # "0000"+"00000" ties "00000"+"0000": float32 sums broke it otherwise
    "志½\ufe0f？",  # "½" + VS16: the reference normaliser maps the pair as a whole
    "１\u0301愿",  # full-width digit + combining acute
    "½\u200dX",  # ... + zero-width joiner
])
def test_cold_and_warm_ids_agree_where_they_differed(runner: Any, text: str) -> None:
    # before: the unigram tokenizer gave other ids than `tokenizers` for these
    runner.fast = False
    cold = runner.ids(["query: " + text])
    assert cold == [runner.tokenizer.encode("query: " + text).ids]
    assert runner.quick.exact_for(text) == text.startswith("了")
