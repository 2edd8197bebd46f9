"""The HTTP service, tested with a real HTTP client against a server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(real_model: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", "--port",
                                str(port)], cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {process.stderr.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_health(server: str) -> None:
    body = httpx.get(f"{server}/health").json()
    assert body["status"] == "ok" and body["passages"] > 0 and body["dimension"] == 384


def test_search_answers_the_main_job(server: str) -> None:
    response = httpx.post(f"{server}/search", json={"query": "夫妻党员抗疫", "k": 3})
    assert response.status_code == 200
    hits = response.json()["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert "我们夫妻俩都是党员" in hits[0]["text"] and hits[0]["source"].startswith("000_")
    assert {"score", "id", "source", "paragraph", "start", "end"} <= set(hits[0])


def test_search_with_mode_and_filter(server: str) -> None:
    response = httpx.post(f"{server}/search", json={
        "query": "夫妻党员抗疫", "k": 5, "mode": "bm25",
        "where": 'source == "002_b3706f758604a439.txt"'})
    assert response.status_code == 200
    assert {h["source"] for h in response.json()["hits"]} == {"002_b3706f758604a439.txt"}


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"query": "  "}, 400, "empty"),
        ({"query": "党员", "k": 0}, 400, "k must be"),
        ({"query": "党员", "where": "source =="}, 400, "bad filter"),
        ({"query": "党员", "mode": "magic"}, 422, "mode"),
        ({"k": 3}, 422, "query"),
        ({"query": "党员", "k": "many"}, 422, "k"),
        ({"query": "党" * 20_000}, 400, "limit"),
    ],
)
def test_bad_input_gets_a_json_error(server: str, body: dict[str, object], status: int,
                                     needle: str) -> None:
    response = httpx.post(f"{server}/search", json=body)
    assert response.status_code == status
    assert needle in response.json()["error"]


def test_not_json(server: str) -> None:
    response = httpx.post(f"{server}/search", content=b"not json",
                          headers={"content-type": "application/json"})
    assert response.status_code == 422 and "error" in response.json()


def test_concurrent_requests_agree(server: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def ask(_: int) -> list[int]:
        hits = httpx.post(f"{server}/search", json={"query": "志愿者送物资", "k": 5}).json()
        return [h["id"] for h in hits["hits"]]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(24)))
    assert all(a == answers[0] for a in answers)
