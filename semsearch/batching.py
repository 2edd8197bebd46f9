"""Micro-batching for the service: concurrent requests are answered by one call on all of them.

A request's query costs mostly fixed overhead when encoded alone (one model call, one FAISS
call, Python around them); `Batcher` lets requests that arrive together share it. Each `submit`
queues an item and returns its own Future. `runners` daemon threads each take what is queued —
up to `max_batch` items — and hand the list to `run`, which returns one answer (or exception)
per item. While a batch runs, new requests queue, so under load batches grow by themselves.

Clients that were answered together come back together, a few milliseconds apart (each reads
its answer and sends its next request through the one event loop). Taking whatever waited at
that moment split 8 such clients into alternating batches of 1 and 7 (or 2 and 6), each batch
paying the model's fixed cost. So a runner expects as many items as the last batch had plus
those that queued while it ran, and while fewer wait it waits for more as long as they keep
coming: at most `window` after the newest arrival, `max_wait` in all. A lone client (the last
batch had one item, nothing queued meanwhile) never waits. Measured in serve.py.

Bounded like the worker pool it replaces: at most `backlog` items wait (then `submit` raises the
`busy` exception: 503), an item whose caller gave up (its Future cancelled, e.g. past the time
limit) is dropped before its batch runs, and `shutdown` cancels what waits.

Fair between clients: each item has a key (the service uses the client's address), and a batch
takes items in `FairQueue` order, so a client with many requests waiting waits behind those
with few; one key (other than None) may hold at most `backlog // 2` waiting items (`busy` past
that, while others still get in).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Job = TypeVar("Job")


class FairQueue(Generic[Job]):
    """Waiting jobs, served fairly between keys (start-time fair queueing): a job's tag is one
    more than the later of the last tag served and its key's previous job's tag; the lowest
    tag goes first, ties by arrival. A key with many jobs queued gets every other key's next
    job served between two of its own. Not thread-safe: the owner holds its lock."""

    def __init__(self) -> None:
        self._jobs: list[tuple[int, int, Hashable, Job]] = []
        self._clock = 0  # the tag served last
        self._last: dict[Hashable, int] = {}  # each key's newest tag
        self._arrivals = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def push(self, key: Hashable, job: Job) -> None:
        tag = max(self._clock, self._last.get(key, 0)) + 1
        self._last[key] = tag
        self._arrivals += 1
        self._jobs.append((tag, self._arrivals, key, job))

    def pop(self) -> Job:
        """The next job to serve (IndexError when empty)."""
        first = min(range(len(self._jobs)), key=lambda n: self._jobs[n][:2])
        tag, _, _, job = self._jobs.pop(first)
        self._clock = max(self._clock, tag)
        if len(self._last) > 4 * len(self._jobs) + 64:  # keys at or behind the clock
            self._last = {k: t for k, t in self._last.items() if t > self._clock}
        return job

    def count(self, key: Hashable) -> int:
        return sum(entry[2] == key for entry in self._jobs)

    def keep(self, wanted: Callable[[Job], bool]) -> None:
        """Drop the jobs `wanted` refuses (callers that gave up)."""
        self._jobs = [entry for entry in self._jobs if wanted(entry[3])]

    def jobs(self) -> list[Job]:
        """The waiting jobs, oldest first."""
        return [entry[3] for entry in self._jobs]

    def clear(self) -> None:
        self._jobs.clear()


def share(backlog: int) -> int:
    """How many waiting items one key may hold in a backlog of `backlog`."""
    return max(1, backlog // 2)


class Batcher(Generic[Item]):
    """Queue items; `runners` threads answer them in batches through `run` (see the module
    docstring). `busy` builds the exception raised when the backlog is full."""

    def __init__(self, run: Callable[[list[Item]], Sequence[Any]], *, runners: int = 1,
                 window: float = 0.0, max_wait: float | None = None, max_batch: int = 32,
                 backlog: int = 64, busy: Callable[[str], Exception] = RuntimeError) -> None:
        max_wait = 4 * window if max_wait is None else max_wait
        if runners < 1 or max_batch < 1 or backlog < 1 or not window >= 0 or not max_wait >= 0:
            raise ValueError("runners, max_batch and backlog must be ≥ 1; window, max_wait ≥ 0")
        self._run = run
        self._window = window
        self._max_wait = max_wait
        self._expect = 1  # items the next batch should gather (see the module docstring)
        self._max_batch = max_batch
        self._backlog = backlog
        self._busy_error = busy
        self._cond = threading.Condition()
        self._queue: FairQueue[tuple[Future[Any], Item]] = FairQueue()
        self._newest = 0.0  # when the newest item arrived
        self._closed = False
        self.busy = 0  # runners answering a batch now
        self.workers = runners
        self.batches = 0  # batches run, and the items in them (for measurements)
        self.items = 0
        self._threads = [threading.Thread(target=self._loop, name=f"semsearch-batch-{n}",
                                          daemon=True) for n in range(runners)]
        for thread in self._threads:
            thread.start()

    def submit(self, item: Item, key: Hashable = None) -> Future[Any]:
        """Queue `item` for client `key`; its Future gets its answer (or exception)."""
        with self._cond:
            if self._closed:
                raise self._busy_error("the service is shutting down")
            self._queue.keep(lambda job: not job[0].cancelled())
            if len(self._queue) >= self._backlog:
                raise self._busy_error(
                    f"the service is busy ({self.busy} batches running, "
                    f"{len(self._queue)} searches waiting); try again shortly")
            if key is not None and self._queue.count(key) >= share(self._backlog):
                raise self._busy_error(
                    f"too many of this client's searches are waiting "
                    f"({share(self._backlog)}); try again shortly")
            future: Future[Any] = Future()
            self._queue.push(key, (future, item))
            self._newest = time.monotonic()
            self._cond.notify()
            return future

    def _take(self) -> list[tuple[Future[Any], Item]] | None:
        """The next batch (None once closed): waits for an item, then, while fewer than the
        expected number wait, for more (see the module docstring)."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            started = time.monotonic()
            while self._queue and len(self._queue) < min(self._expect, self._max_batch) \
                    and not self._closed:
                until = min(max(started, self._newest) + self._window,
                            started + self._max_wait)
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken: list[tuple[Future[Any], Item]] = []
            while self._queue and len(taken) < self._max_batch:
                future, item = self._queue.pop()
                if future.set_running_or_notify_cancel():  # False: its caller gave up
                    taken.append((future, item))
            if taken:
                self.busy += 1
            return taken

    def _loop(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            if not taken:
                continue
            try:
                answers = self._run([item for _, item in taken])
                if len(answers) != len(taken):
                    raise RuntimeError(f"a batch of {len(taken)} got {len(answers)} answers")
            except BaseException as exc:  # the whole batch failed: each request answers for it
                answers = [exc] * len(taken)
            for (future, _), answer in zip(taken, answers, strict=True):
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
            with self._cond:
                self._expect = len(taken) + len(self._queue)  # they will come back together
                self.busy -= 1
                self.batches += 1
                self.items += len(taken)

    def load(self) -> dict[str, int]:
        """Runners, how many are busy, how many items wait (for /health)."""
        with self._cond:
            waiting = sum(not job[0].cancelled() for job in self._queue.jobs())
        return {"workers": self.workers, "busy": self.busy, "waiting": waiting}

    def shutdown(self) -> None:
        """Cancel what waits; running batches finish (or die with the process: daemons)."""
        with self._cond:
            self._closed = True
            for future, _ in self._queue.jobs():
                future.cancel()
            self._queue.clear()
            self._cond.notify_all()
