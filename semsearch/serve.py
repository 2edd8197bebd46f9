"""The HTTP service: `POST /search` and `GET /health` over one index, the model loaded once;
`GET /` is a search page for people (semsearch/web/, with `GET /fields` for its filter box).

    curl -s localhost:8000/search -H 'content-type: application/json' \\
         -d '{"query": "夫妻党员抗疫", "k": 3, "mode": "hybrid", "where": "paragraph > 2"}'

With `"context": N` (0..5) each hit also carries `"context": {"text", "start", "end",
"passages": [{"id", "text", "start", "end", "paragraph", "heading", "metadata"}, ...]}`: the
N passages before and after it in its document, merged (see context.py).

Every response is JSON, every error `{"error": "...", "code": "..."}`: `error` says what
happened in English, `code` is a stable name a client can act on or translate (the search page
does): 400 `bad_filter` for a `where` that is not a filter and `bad_query` for another query
the search refuses, 404 `not_found`/405 `method_not_allowed` for a wrong path or method, 413
`too_large` for a body over 1 MiB, 422 `invalid_request` for a body that is not the right shape
(with `fields`: which, e.g. `["k"]`), 503 `unavailable` for an index that cannot be used or
`busy` when every worker is, 504 `timeout` for a search that ran past the time limit, and 500
`internal` for anything unforeseen. No answer names a path on the server: the index
directory's absolute path is cut to its name, any other absolute path to its last part
(`public_message`). Every answer carries `X-Content-Type-Options: nosniff` and
`Referrer-Policy: no-referrer`, and none a `server` banner (SecurityHeaders, uvicorn_config).

Bounded: searches run in a small pool of worker threads, and a request waits at most `timeout`
seconds for its answer (504 after that). Ordinary searches are micro-batched (batching.py):
those that arrive while a batch runs, or come back together after one, are answered together,
their queries embedded in one model call and ranked in one FAISS/BM25 call per shared k, mode and
filter (`Index.search_each`), each getting the answer it would get alone. `/health` runs on
the event loop and never waits for a worker, so a slow search never blocks it or other
clients. A search that overruns keeps its worker until it ends (a thread cannot be killed), but
the workers are daemon threads: SIGTERM drains for a few seconds and the process exits.

Live: before each search the service reads the index directory's `CURRENT` (one small file);
when a writer (`semsearch add`/`remove`/`index`) has committed a new generation, the service
loads it — reusing the loaded model — and swaps it in, so a passage removed before a request
arrives is never in its answer. If the new generation cannot be loaded, the old one is served
while its directory is still on disk (`/health` says "stale"), else every search gets 503.
Milvus-backed indexes are not followed (their collection is already live).

Bounded cost: the time limit is enforced inside the search too (checked between its stages and
while a filter is evaluated: see deadline.py), so a search past it stops using the CPU. Requests
are admitted by what they will cost (`classify`, cost.py: query length, k, context, highlight,
and the filter's evaluation over the index unless the store has its kept ids cached, at a rate
measured as the service runs). A request estimated over cost.CHEAP_SECONDS runs alone in its
own pool of EXPENSIVE_WORKERS with a short backlog (503 with Retry-After past it), so expensive
requests cannot starve ordinary ones; one whose only cost is an unseen filter has the filter
evaluated there alone, then joins a batch with its ids cached. In a batch each request keeps
its own deadline, and a member whose filter's ids were evicted meanwhile is split out to run
alone. Both queues are fair per client address (batching.FairQueue: a client with many
requests waiting waits behind the others, and holds at most half a backlog). `/health` reports
the load of both (`load`: `ordinary` and `expensive`, each its workers, busy and waiting) and
says "saturated" when ordinary searches queue. The search page (web.py) posts to `/search`
like any client, so it has no pool of its own.

Damaged files: before each search the loaded generation's files are checked (`stat`, and a
checksum when one changed: FaissStore.check_files); a mismatch is a 503 "index unusable" and a
red `/health` until the file is restored or a new generation written. HTTP hygiene (read
timeouts, JSON for malformed requests, allowed hosts, HEAD) is in guard.py.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from concurrent.futures import Future
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from semsearch import deadline, filters, guard, web
from semsearch.batching import Batcher, FairQueue, share
from semsearch.cost import CHEAP_SECONDS, Estimate, FilterRate, estimate
from semsearch.errors import (
    FilterError,
    IndexLoadError,
    MissingDependencyError,
    QueryError,
    SearchTimeoutError,
    SemsearchError,
)
from semsearch.highlight import annotate, terms
from semsearch.index import Index
from semsearch.search import DEFAULT_FUSION, DEFAULT_MODE, MAX_QUERY_CHARS
from semsearch.search import Request as Query
from semsearch.stores import faiss as faiss_store
from semsearch.stores import open_store
from semsearch.stores.generations import generation_path, live_pointer

DEFAULT_TIMEOUT = 10.0  # seconds a request may wait for its search
DEFAULT_WORKERS = 4  # search threads (the encoder and FAISS use their own threads inside)
BACKLOG = 64  # searches waiting for a worker beyond which new ones get 503 at once
# Micro-batches of ordinary searches (batching.py): RUNNERS batches at once, each taking what
# waits (at most MAX_BATCH), and while fewer wait than the last batch brought back, waiting for
# them at most BATCH_WINDOW after the newest arrival (BATCH_MAX_WAIT in all). Tried on 2 CPUs
# (seeds, hybrid, requests/s at 8 / 32 clients, two rounds on a machine shared with other jobs,
# so noisy): 1 runner 44 / 83 and 100 / 58; 2 runners 55 / 130 and 113 / 81; 2 runners with a
# 2 ms window from the oldest arrival 56 / 123 and 118 / 118; 4 runners 58 / 105 and 67 / 132.
# Re-tried once queries were embedded in bf16 (OnnxRunner.warm), requests/s at 8 / 32 clients
# (p99 at 32): bf16, 1 runner 141 / 206 (226 ms) and 118 / 193 (223 ms), 2 runners 100 / 184
# (278 ms) and 110 / 202 (281 ms); fp32, 1 runner 120 / 126 and 99 / 99, 2 runners 104 / 106
# and 79 / 108. One runner: a batch's queries all go to the model together, where two runners
# split them and queue at the encoder (bf16's session runs one batch at a time). With no wait,
# 8 clients ran as alternating batches of 1 and 7 or 2 and 6 (batch sizes logged); a fixed 5 ms
# wait gathered them (126 → 148 requests/s at 8 clients) but cost a lone client a third (79 →
# 52). Waiting only for the clients the last batch answered, 2 ms after the newest arrival
# (5 ms: no better), against no wait in the same runs, requests/s at 1 / 8 / 32 / 64 clients:
# 74 / 149 / 176 / 201 vs 69 / 120 / 161 / 181; at 32 clients every batch had all 32.
# Results: benchmarks/results/service.md
BATCH_RUNNERS = 1  # at least; one per query stream (query_streams)
# One query stream by default, on every core: each batch split over the two threads. Measured
# on a quiet AMD EPYC (2 cores, bf16 queries), seeds, hybrid, benchmarks/service.py in one run
# (2026-12-07), requests/s at 1 / 8 / 32 clients: two threads, one stream 73.8 / 137.9 / 135.9
# (p99 at 32: 360 ms); one thread, one stream 53.7 / 86.9 / 92.5 — it cost 11 instead of 13 ms
# of CPU per request (two threads wait for each other in sched_yield) but left a core idle;
# SEMSEARCH_QUERY_STREAMS=2 (two batches at once, one thread each) 56.2 / 96.4 / 160.0 (p99 at
# 32: 410 ms): better only when 32 clients keep both streams full, so it is an option.
QUERY_STREAMS_ENV = "SEMSEARCH_QUERY_STREAMS"
BATCH_WINDOW = 0.002
BATCH_MAX_WAIT = 0.008
MAX_BATCH = 32
MAX_BODY = 1 << 20  # bytes of a request body
MAX_K = 1000
MAX_CONTEXT = 5  # passages of context on each side of a hit a request may ask for
RETRY_SECONDS = 5.0  # a generation that failed to load is tried again after this long
# /health that sees a new generation waits this long for it to load (off the event loop), so
# that it reports what a search would now answer from ("reloading" past it)
HEALTH_RELOAD_WAIT = 2.0
GRACEFUL_SECONDS = 3  # SIGTERM: how long in-flight requests get to finish
# Admission: a request estimated over cost.CHEAP_SECONDS is "expensive" and runs alone in its
# own small pool (see `classify`); a 503 for a full pool says when to retry (Retry-After)
CHEAP_FILTER_COST = 60  # Filter.cost: `source == "a" and paragraph > 2` is 9
EXPENSIVE_WORKERS = 1
EXPENSIVE_BACKLOG = 4  # a client may hold half of it (batching.share)
RETRY_AFTER = 1  # seconds, in the Retry-After of a 503 for a busy service
# Seconds a thread holds the GIL before a waiting one may take it (Python's default: 5 ms): the
# batch runner waits less behind an expensive worker's filter evaluation in Python. 100k
# passages, 4 attackers with new filters: ordinary p99 3.1× → 2.7× its baseline p50, 31 unseen
# filters + 1: ≤ 0.5 s in 6 → 10 of 10 rounds (two runs, the machine's load changed between
# them: docs/reliability.md)
SWITCH_INTERVAL = 0.001

Pointer = tuple[int, str] | None  # (generation, manifest sha256) that CURRENT names


_SURROGATES = re.compile("[\ud800-\udfff]")


def _drop_surrogates(value: Any) -> Any:
    """Lone surrogates ("\\ud800" in JSON) are no text: dropped, as `check_query` does."""
    return _SURROGATES.sub("", value) if isinstance(value, str) else value


Text = BeforeValidator(_drop_surrogates)


class SearchRequest(BaseModel):
    """The body of POST /search. Types are strict: `"k": "5"` or `"k": true` is refused."""

    model_config = ConfigDict(extra="forbid")

    query: Annotated[StrictStr, Field(
        max_length=4 * MAX_QUERY_CHARS,
        description=f"What to search for (at most {MAX_QUERY_CHARS:,} characters once control "
                    "characters are dropped)."), Text]
    k: Annotated[StrictInt, Field(ge=1, le=MAX_K, description="How many hits.")] = 5
    mode: Literal["dense", "bm25", "hybrid"] = DEFAULT_MODE
    fusion: Literal["weighted", "rrf"] = DEFAULT_FUSION
    where: Annotated[StrictStr | None, Field(
        max_length=MAX_QUERY_CHARS, description='A filter, e.g. source == "a.txt".'), Text] = None
    context: Annotated[StrictInt, Field(
        ge=0, le=MAX_CONTEXT, description="Passages of context before and after each hit "
                                          "(0: none); each hit then has a \"context\".")] = 0
    highlight: Annotated[StrictBool, Field(
        description="Also say which characters of each hit (and its context) to mark for the "
                    "query's words: \"highlight\" and \"highlights\" (see highlight.py).")] = False


class Busy(SemsearchError):
    """Every worker is busy and the backlog is full (503 with Retry-After)."""


ALONE = object()  # a batch's answer for a member that must run alone (its filter is costly)


SearchTimeout = SearchTimeoutError  # the name this module gave it first


def _scrub(value: Any) -> Any:
    """`value` with lone surrogates in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: lone surrogates (which UTF-8 cannot carry, but a JSON request
    can send as "\\ud800") become U+FFFD, and NaN becomes null."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")
        except (UnicodeEncodeError, ValueError):
            return json.dumps(_scrub(content), ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")


CODES = {400: "bad_query", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
         413: "too_large", 422: "invalid_request", 500: "internal", 503: "unavailable",
         504: "timeout"}  # an error's `code` by status, where the handler names none
_ABSOLUTE = re.compile(r"(?<![\w.~-])(?:/[^\s/'\"`(),;:]+)+/?")


def error(status: int, message: str, headers: dict[str, str] | None = None,
          code: str | None = None, **extra: Any) -> JSONResponse:
    """The JSON error answer: `{"error": message, "code": code, **extra}`."""
    body = {"error": message, "code": code or CODES.get(status, f"http_{status}"), **extra}
    return SafeJSONResponse(body, status_code=status, headers=headers)


def public_message(message: str, roots: list[Path]) -> str:
    """`message` without absolute server paths: a path under one of `roots` (the index
    directory) starts at that root's name (`index/gen-00000002/passages.jsonl`), any other
    absolute path is cut to its last part."""
    for root in roots:
        for spelling in {str(root), str(root.resolve())}:
            if spelling not in ("", "/", "."):
                message = message.replace(spelling, root.name or spelling)
    return _ABSOLUTE.sub(lambda m: Path(m.group()).name or "/", message)


class SecurityHeaders:
    """ASGI middleware: every answer (errors and the page's files too) says
    `X-Content-Type-Options: nosniff` (no content sniffing of JSON as HTML) and
    `Referrer-Policy: no-referrer` (a query in the page's URL never leaves in a Referer)."""

    ADDED = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers += [pair for pair in self.ADDED if pair[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class WorkerPool:
    """A fixed pool of daemon threads with a bounded backlog.

    Unlike `ThreadPoolExecutor`, whose threads the interpreter joins at exit, a search that
    never ends cannot keep the process alive; and work whose caller gave up (its future
    cancelled) is dropped before it starts."""

    def __init__(self, workers: int, backlog: int = BACKLOG) -> None:
        self._cond = threading.Condition()
        self._jobs: FairQueue[tuple[Future[Any], Callable[[], Any]]] = FairQueue()
        self._backlog = backlog
        self._closed = False
        self.busy = 0
        self.workers = workers
        self._threads = [threading.Thread(target=self._work, name=f"semsearch-search-{n}",
                                          daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], Any], key: Hashable = None) -> Future[Any]:
        """Queue `fn` for client `key` (served in FairQueue order: a client with many jobs
        waiting waits behind the others, and holds at most half the backlog)."""
        with self._cond:
            if self._closed:
                raise Busy("the service is shutting down")
            self._jobs.keep(lambda job: not job[0].cancelled())
            if len(self._jobs) >= self._backlog:
                raise Busy(f"the service is busy ({self.busy} searches running, "
                           f"{len(self._jobs)} waiting); try again shortly")
            if key is not None and self._jobs.count(key) >= share(self._backlog):
                raise Busy(f"too many of this client's searches are waiting "
                           f"({share(self._backlog)}); try again shortly")
            future: Future[Any] = Future()
            self._jobs.push(key, (future, fn))
            self._cond.notify()
            return future

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                future, fn = self._jobs.pop()
                if not future.set_running_or_notify_cancel():
                    continue
                self.busy += 1
            try:
                result = fn()
            except BaseException as exc:  # handed to the request, which answers for it
                future.set_exception(exc)
            else:
                future.set_result(result)
            finally:
                with self._cond:
                    self.busy -= 1

    def load(self) -> dict[str, int]:
        """Workers, how many are busy, how many searches wait (for /health)."""
        with self._cond:
            waiting = sum(not job[0].cancelled() for job in self._jobs.jobs())
        return {"workers": self.workers, "busy": self.busy, "waiting": waiting}

    def shutdown(self) -> None:
        """Cancel what has not started; running searches are left to finish (or to die with
        the process: the threads are daemons)."""
        with self._cond:
            self._closed = True
            for future, _ in self._jobs.jobs():
                future.cancel()
            self._jobs.clear()
            self._cond.notify_all()


def prewarm(index: Index) -> None:
    """Build the store's filter columns (columns.py) at load, not on the first filtered
    request: at 101k passages that request paid 1.2 s. A store without them (Milvus filters on
    its own side) has nothing to build."""
    build = getattr(index.store, "prewarm", None)
    if build is not None:
        build()


class LiveIndex:
    """The index the service answers from, following the live generation of its directory."""

    def __init__(self, index: Index, path: str | os.PathLike[str] | None) -> None:
        self.index = index
        self.path = Path(path) if path is not None else None
        self.loaded: Pointer = self._identity(index)
        self.problem: str | None = None  # why the live generation is not the one served
        self._failed: tuple[Pointer, float] | None = None  # last pointer that failed to load
        self._lock = threading.Lock()
        self._background: threading.Thread | None = None
        prewarm(index)

    def _identity(self, index: Index) -> Pointer:
        """(generation, manifest digest) of what `index` was loaded from, as CURRENT names it
        now; a pointer that names another generation means a write came in between."""
        if self.path is None:
            return None
        origin = getattr(index.store, "origin", None)
        try:
            pointer = live_pointer(self.path)
        except SemsearchError:
            pointer = None
        if pointer is None or origin is None:
            return pointer if origin is None else (origin[1], "")
        return pointer if pointer[0] == origin[1] else (origin[1], "")

    def current(self) -> Index:
        """The index to answer from now: reloaded first if CURRENT names a new generation
        (blocking: call from a worker). Raises IndexLoadError when nothing can be served."""
        if self.path is None:
            return self.index
        pointer, problem = self._read_pointer()
        if pointer == self.loaded and problem is None:
            self._check_files(self.index)  # IndexUnusableError: a file changed underneath
            self.problem = None  # CURRENT names what is served again
            return self.index
        with self._lock:
            if pointer != self.loaded or problem is not None:
                self._reload(pointer, problem)
            index, problem = self.index, self.problem
        if problem is not None and not self._served_on_disk():
            raise IndexLoadError(f"the index generation this service loaded was removed and "
                                 f"the live one cannot be loaded: {problem}")
        self._check_files(index)
        return index

    @staticmethod
    def _check_files(index: Index) -> None:
        check = getattr(index.store, "check_files", None)
        if check is not None:
            check()

    def _read_pointer(self) -> tuple[Pointer, str | None]:
        """What CURRENT names now, or why it cannot be read."""
        assert self.path is not None
        try:
            return live_pointer(self.path), None
        except SemsearchError as exc:
            return None, str(exc)

    def _reload(self, pointer: Pointer, problem: str | None) -> None:
        assert self.path is not None
        if self._failed is not None and self._failed[0] == pointer \
                and time.monotonic() - self._failed[1] < RETRY_SECONDS:
            return  # tried this very generation a moment ago: keep the verdict
        try:
            if problem is not None:
                raise IndexLoadError(problem)
            store = open_store(self.path)
            old = self.index
            if (store.manifest.model.fingerprint != old.manifest.model.fingerprint
                    or store.manifest.model.dimension != old.manifest.model.dimension):
                raise IndexLoadError(
                    f"{self.path} was rebuilt with model {store.manifest.model.name}; restart "
                    "the service to load that model")
            fresh = Index(store, encoder=old._encoder, model=old._model)
            prewarm(fresh)  # before it is served: its first filter finds its columns built
        except (SemsearchError, OSError) as exc:
            self.problem = str(exc)
            self._failed = (pointer, time.monotonic())
            return
        self.loaded = self._identity(fresh)
        self.index = fresh
        self.problem = None
        self._failed = None

    def _served_on_disk(self) -> bool:
        origin = getattr(self.index.store, "origin", None)
        if origin is None:
            return True
        directory, generation = origin
        return bool(generation_path(Path(directory), generation).is_dir()
                    or (generation == 0 and (Path(directory) / "manifest.json").is_file()))

    def health(self) -> dict[str, Any]:
        """What `/health` says: cheap (one small file read), never waits for a reload; a new
        generation seen here is loaded in the background."""
        manifest = self.index.manifest
        body: dict[str, Any] = {
            "status": "ok", "passages": manifest.passage_count, "model": manifest.model.name,
            "dimension": manifest.model.dimension, "index_type": manifest.index_type,
            "generation": manifest.generation, "sources": len(manifest.sources),
            "name": self.path.name if self.path is not None else self.index.store.location}
        if self.path is None:
            return body
        pointer, problem = self._read_pointer()
        problem = problem or self.problem
        body["live_generation"] = pointer[0] if pointer else None
        if pointer == self.loaded and problem is None:
            try:
                self._check_files(self.index)
            except SemsearchError as exc:
                body["status"], body["error"] = "unavailable", str(exc)
                return body
        if pointer != self.loaded and problem is None:
            body["status"] = "reloading"
            self._reload_in_background()
        elif problem is not None:
            body["status"] = "stale" if self._served_on_disk() else "unavailable"
            body["error"] = problem
            self._reload_in_background()
        return body

    async def settled(self, wait: float) -> None:
        """Wait (without blocking the event loop) up to `wait` seconds for a background reload
        to finish, so that `/health` can report the generation a search would now use."""
        end = time.monotonic() + wait
        while time.monotonic() < end:
            background = self._background
            if background is None or not background.is_alive():
                return
            await asyncio.sleep(0.005)

    def _reload_in_background(self) -> None:
        with self._lock:
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(target=self._quiet_current, daemon=True,
                                                name="semsearch-reload")
            self._background.start()

    def _quiet_current(self) -> None:
        with suppress(SemsearchError):  # recorded in self.problem; /health reports it
            self.current()


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before it is read whole."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = error(413, f"the request body is over the limit of {self.limit:,} bytes")
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await too_big(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, f"the request body is over the limit of "
                                             f"{self.limit:,} bytes")
            return message

        await self.app(scope, counted, send)


def classify(index: Index, request: SearchRequest,
             rate: FilterRate | None = None) -> tuple[Estimate, filters.Filter | None]:
    """What `request` will cost on `index` (cost.py: its query length, k, context, highlight,
    and its filter's evaluation unless the store has its kept ids cached), and its compiled
    filter; a filter that does not compile raises QueryError (400) here already. A filter over
    CHEAP_FILTER_COST per passage counts as expensive however few passages there are."""
    where = None
    if request.where is not None and request.where.strip():
        where = filters.compile_filter(request.where)
    knows = getattr(index.store, "knows_filter", None)  # Milvus filters on its own side
    cached = where is None or knows is None or knows(where)
    found = estimate(request.query, request.k, request.context, request.highlight,
                     filter_cost=where.cost if where is not None else 0,
                     passages=index.manifest.passage_count, cached=cached, rate=rate)
    if where is not None and not cached and where.cost > CHEAP_FILTER_COST:
        found = Estimate(found.work, max(found.filter, 2 * CHEAP_SECONDS))
    return found, where


def create_app(index: Index, path: str | os.PathLike[str] | None = None, *,
               timeout: float = DEFAULT_TIMEOUT, workers: int = DEFAULT_WORKERS,
               follow: bool = True, allowed_hosts: list[str] | None = None,
               docs: bool = False) -> FastAPI:
    """A FastAPI app answering from `index` (whose encoder should already be loaded).

    `path` is the index directory to follow (default: the one a FAISS `index` was loaded
    from; `follow=False` or a Milvus index: none). `timeout` bounds each search in seconds;
    `workers` ordinary searches run at once (and EXPENSIVE_WORKERS expensive ones).
    `allowed_hosts`: the Host names answered (None: any; `run` gives the bound host and
    localhost). `docs`: serve Swagger UI at /docs (it loads its script from a CDN)."""
    if not (timeout > 0 and math.isfinite(timeout)):
        raise QueryError(f"the timeout must be a positive number of seconds, got {timeout!r}")
    if path is None and follow:
        origin = getattr(index.store, "origin", None)
        path = origin[0] if origin is not None else None
    live = LiveIndex(index, path if follow else None)
    roots = [Path(p) for p in (path, index.store.location) if p and os.path.isabs(p)]

    def public(exc: BaseException) -> str:
        return public_message(str(exc), roots)
    costly = WorkerPool(EXPENSIVE_WORKERS, EXPENSIVE_BACKLOG)
    rate = FilterRate()  # unseen filters' cost, as measured here (cost.py)

    def abandoned() -> SearchTimeoutError:
        return SearchTimeoutError(f"the search took longer than {timeout:g} s and was "
                                  "abandoned (waiting for a worker)")

    def as_json(index: Index, request: SearchRequest, hits: list[Any]) -> dict[str, Any]:
        """A search's JSON answer: its hits, highlighted when asked."""
        found = [h.to_dict() for h in hits]
        if not request.highlight:
            return {"hits": found}
        return annotate(terms(request.query, index.query_words(request.query)), found)

    def answer_batch(items: list[tuple[SearchRequest, float]]) -> list[Any]:
        """The answers of a batch of ordinary searches (one per item: a dict, an error, or
        ALONE for a member split out because its filter is no longer cached). Each member
        keeps its own deadline: one past it gets its 504 alone, before or after the search."""
        now = time.monotonic()
        answers: list[Any] = [None] * len(items)
        waiting = []
        index = live.current()
        for n, (request, arrived) in enumerate(items):
            if now - arrived >= timeout:
                answers[n] = abandoned()
            elif not classify(index, request, rate)[0].cheap:
                answers[n] = ALONE  # its filter's ids were evicted meanwhile: not in the batch
            else:
                waiting.append(n)
        if not waiting:
            return answers
        requests = [items[n][0] for n in waiting]
        left = max(timeout - (now - items[n][1]) for n in waiting)
        found = index.search_each(
            [Query(r.query, r.k, r.mode, r.fusion, r.where) for r in requests],
            context=[r.context for r in requests], timeout=left)
        for n, request, hits in zip(waiting, requests, found, strict=True):
            if isinstance(hits, Exception):
                answers[n] = hits
            elif time.monotonic() - items[n][1] >= timeout:
                answers[n] = abandoned()
            else:
                answers[n] = as_json(index, request, hits)
        return answers

    batcher: Batcher[tuple[SearchRequest, float]] = Batcher(
        answer_batch, runners=min(workers, max(BATCH_RUNNERS, query_streams())),
        window=BATCH_WINDOW, max_wait=BATCH_MAX_WAIT, max_batch=MAX_BATCH, backlog=BACKLOG,
        busy=Busy)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.shutdown()
        costly.shutdown()

    app = FastAPI(title="semsearch", version="1", docs_url="/docs" if docs else None,
                  redoc_url=None, default_response_class=SafeJSONResponse, lifespan=lifespan,
                  redirect_slashes=False)
    app.state.live = live
    app.state.costly = costly
    app.state.batcher = batcher
    harden(app, allowed_hosts)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
                             for e in exc.errors())
        fields = sorted({str(e["loc"][1]) for e in exc.errors() if len(e["loc"]) > 1})
        return error(422, f"bad request: {problems}", fields=fields)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(QueryError)
    async def bad_query(_: Request, exc: QueryError) -> JSONResponse:
        return error(400, str(exc), code="bad_filter" if isinstance(exc, FilterError) else None)

    @app.exception_handler(RecursionError)
    async def too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        return error(400, "bad filter: the expression is nested too deeply", code="bad_filter")

    @app.exception_handler(Busy)
    async def busy(_: Request, exc: Busy) -> JSONResponse:
        return error(503, str(exc), {"Retry-After": str(RETRY_AFTER)})

    @app.exception_handler(SearchTimeout)
    async def too_slow(_: Request, exc: SearchTimeout) -> JSONResponse:
        return error(504, public(exc))

    @app.exception_handler(MissingDependencyError)
    async def misconfigured(_: Request, exc: MissingDependencyError) -> JSONResponse:
        return error(500, public(exc), code="misconfigured")

    @app.exception_handler(SemsearchError)
    async def unavailable(_: Request, exc: SemsearchError) -> JSONResponse:
        return error(503, public(exc), code="busy" if isinstance(exc, Busy) else None)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        return error(500, "internal error")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        body = live.health()
        if body["status"] in ("reloading", "stale", "unavailable"):
            await live.settled(HEALTH_RELOAD_WAIT)  # a new generation: what /search would use
            body = live.health()
        for key in ("error", "model", "name"):  # a model or Milvus file given by its path
            if isinstance(body.get(key), str):
                body[key] = public_message(body[key], roots)
        load = {"ordinary": batcher.load(), "expensive": costly.load()}
        body["workers_busy"] = batcher.busy + costly.busy
        body["load"] = load
        ordinary = load["ordinary"]
        body["saturated"] = ordinary["waiting"] > 0 and ordinary["busy"] >= ordinary["workers"]
        if body["saturated"] and body["status"] == "ok":
            body["status"] = "saturated"
        return body

    @app.post("/search")
    async def search(request: SearchRequest, http: Request) -> JSONResponse:
        arrived = time.monotonic()
        client = http.client.host if http.client is not None else ""  # fair admission's key

        def left() -> float:
            return timeout - (time.monotonic() - arrived)

        found, where = classify(live.index, request, rate)
        if not found.cheap and where is not None and found.work <= CHEAP_SECONDS:
            # only its filter is costly: evaluated alone first, its ids then cached
            await bounded(costly.submit(lambda: resolve(where, arrived), client), left(),
                          timeout)
            found = Estimate(found.work, 0.0)
        answer: Any = ALONE
        if found.cheap:
            answer = await bounded(batcher.submit((request, arrived), client), left(), timeout)
        if answer is ALONE:
            answer = await bounded(costly.submit(lambda: alone(request, arrived), client),
                                   left(), timeout)
        return SafeJSONResponse({"query": request.query, **answer})

    def resolve(where: filters.Filter, arrived: float) -> None:
        """Evaluate an unseen filter alone (the expensive pool), timed for `rate`, so that
        its search joins a batch with the filter's ids cached and cannot hold the batch up."""
        left = timeout - (time.monotonic() - arrived)
        if left <= 0:
            raise abandoned()
        index = live.current()
        evaluate = getattr(index.store, "resolve_filter", None)
        if evaluate is None:
            return
        compiled = filters.compile_filter(where.expression, index.store.fields())
        start = time.perf_counter()
        with deadline.limit(left):
            evaluate(compiled)
        rate.observe(time.perf_counter() - start, index.manifest.passage_count, where.cost)

    def alone(request: SearchRequest, arrived: float) -> dict[str, Any]:
        """An expensive search, in its own pool and not batched (see the module docstring)."""
        left = timeout - (time.monotonic() - arrived)
        if left <= 0:
            raise abandoned()
        index = live.current()
        return as_json(index, request, index.search(
            request.query, request.k, request.mode, request.fusion, request.where,
            context=request.context, timeout=left))

    web.install(app, lambda: live.index)
    return app


def harden(app: FastAPI, allowed_hosts: list[str] | None) -> None:
    """The HTTP hygiene middleware (guard.py), outermost first: Host and framing checks,
    HEAD as GET, the body size limit; the security headers around all of them."""
    app.add_middleware(BodyLimit)
    app.add_middleware(guard.HeadAsGet)
    app.add_middleware(guard.HostGuard, allowed=allowed_hosts)
    app.add_middleware(SecurityHeaders)


async def bounded(future: Future[Any], timeout: float, limit: float | None = None) -> Any:
    """The result of `future`, or SearchTimeout after `timeout` seconds (a search that has
    not started is dropped; one that has runs on, its answer discarded). `limit`: the
    request's whole time limit, for the message (default: `timeout`)."""
    waiting: Awaitable[Any] = asyncio.wrap_future(future)
    try:
        return await asyncio.wait_for(waiting, max(timeout, 0.0))
    except TimeoutError:
        future.cancel()
        raise SearchTimeout(f"the search took longer than {limit or timeout:g} s and was "
                            "abandoned; simplify the query or its filter") from None


def query_streams() -> int:
    """How many query batches run at once (SEMSEARCH_QUERY_STREAMS, default 1, on every core;
    more: one thread each, see BATCH_RUNNERS); QueryError for a value that is not 1 to this
    machine's CPU count."""
    value = os.environ.get(QUERY_STREAMS_ENV, "").strip() or "1"
    most = os.cpu_count() or 1
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= most):
        raise QueryError(f"{QUERY_STREAMS_ENV} must be a whole number from 1 to {most} (this "
                         f"machine's CPUs), got {value!r}")
    return int(value)


def check_address(host: str, port: int) -> None:
    """Refuse an address the service cannot listen on, as a QueryError (one red line)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise QueryError(f"--port must be between 1 and 65535, got {port!r}")
    if not host or any(ch.isspace() for ch in host):
        raise QueryError(f"--host must be an address or host name, got {host!r}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise QueryError(f"--host {host!r} is not an address this machine has ({exc})") from exc
    family, _, _, _, address = infos[0]
    try:
        with socket.create_server(address[:2], family=family):
            pass
    except OSError as exc:
        raise QueryError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def run(index: Index, *, host: str = "127.0.0.1", port: int = 8000,
        path: str | os.PathLike[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
        allowed_hosts: list[str] | None = None, docs: bool = False) -> None:
    """Load the index's model, then serve until interrupted (SIGTERM: in-flight requests get
    a few seconds, then the process exits). `allowed_hosts` default: the bound host and
    localhost (`["*"]`: any)."""
    import uvicorn

    check_address(host, port)
    streams = query_streams()
    sys.setswitchinterval(SWITCH_INTERVAL)
    hosts = allowed_hosts or guard.default_hosts(host)
    app = create_app(index, path, timeout=timeout, allowed_hosts=hosts, docs=docs)
    index.search("warm up", k=1)  # load the encoder and the lexical dictionary now, not later
    faiss_store.single_threaded()  # the encoder's threads have the cores (see its docstring)
    runner = getattr(index.encoder, "runner", None)
    if runner is not None:  # tokenise with `tokenizers` (Rust) from now on: loaded now, not then
        # one stream: every core on each batch; more: a thread each (see the measurements above)
        runner.warm(MAX_BATCH, threads=streams if streams > 1 else None, streams=streams)
    uvicorn.Server(uvicorn_config(app, host, port)).run()


def uvicorn_config(app: FastAPI, host: str, port: int,
                   read_timeout: float = guard.READ_TIMEOUT) -> Any:
    """uvicorn's settings for the service: the guarded h11 protocol (a request's headers and
    body must arrive within `read_timeout` s; malformed HTTP gets JSON 400), a 16 KiB header
    limit, 5 s keep-alive, GRACEFUL_SECONDS for in-flight requests on SIGTERM, and no `server:
    uvicorn` banner (it tells an attacker what to try)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning",
                          timeout_graceful_shutdown=GRACEFUL_SECONDS, timeout_keep_alive=5,
                          http=guard.protocol(read_timeout),
                          h11_max_incomplete_event_size=guard.MAX_HEADER_BYTES,
                          server_header=False)
