"""Time limits enforced inside a search: a search runs under `limit(seconds)`, and each stage
(and long loops such as filter evaluation) calls `check(stage)`, which raises
SearchTimeoutError once the limit has passed. A timed-out request so stops consuming CPU at the
next check instead of running to the end with nobody waiting for its answer.

The limit lives in a context variable: each thread (each service worker) has its own, and code
that never sets one pays one lookup per check."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from semsearch.errors import SearchTimeoutError

_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("semsearch_deadline",
                                                               default=None)


@contextmanager
def limit(seconds: float | None) -> Iterator[None]:
    """Run the block under a time limit of `seconds` (None: no limit; an enclosing, earlier
    limit stays in force)."""
    if seconds is None:
        yield
        return
    end = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None and outer[0] <= end:
        yield
        return
    token = _DEADLINE.set((end, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check(stage: str) -> None:
    """SearchTimeoutError if the current limit has passed (`stage` names where it stopped)."""
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline[0]:
        raise SearchTimeoutError(f"the search took longer than {deadline[1]:g} s and was "
                                 f"abandoned ({stage}); simplify the query or its filter")


def remaining() -> float | None:
    """Seconds left under the current limit (None: no limit)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline[0] - time.monotonic()
