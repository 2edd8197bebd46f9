"""What a search request will cost, from what it asks for: how the service (serve.py) tells a
cheap request, batched with others, from an expensive one, run alone.

The estimate is seconds of CPU, summed from parts timed on this machine (AMD EPYC, avx512_bf16 +
avx512_vnni, 2 CPUs shared with other jobs: load average ~11, so absolute figures are high but
their ratios hold; medians of 5–7 runs, the seeds index with multilingual-e5-small, hybrid):

    query length   10 / 50 / 100 / 300 / 990 characters: 0.12 / 0.23 / 0.33 / 0.84 / 2.28 s
                   → QUERY_CHAR 2.2 ms a character. In a batch the long one costs the others
                   too: 32 short queries 0.99 s, 31 short + one of 990 characters 2.06 s
    k              k 100 against k 5 (hits made and turned into JSON): +5 ms → HIT 50 µs a hit
    context        100 hits with context 5 against none: +0.07 s → CONTEXT_PASSAGE 70 µs a
                   passage of context (2 × context a hit)
    highlight      a 990-character query over 100 hits with context 5: +0.81 s (3.51 against
                   2.70 s) → HIGHLIGHT 0.75 µs a query character a passage highlighted
    filter         an unseen filter over 100,000 synthetic passages (the filter checked in
                   Python per passage): 1.2–1.7 µs a passage a unit of `Filter.cost` (`source ==
                   "s7.txt"`: 0.81 s; `text like "%0001234%" or paragraph > 1234`: 2.36 s)
                   → FILTER_UNIT 1.5 µs; a filter whose kept ids the store has cached costs 0

The filter's rate is then measured as the service runs (`FilterRate`: each unseen filter it
evaluates alone is timed), so once filters are evaluated faster (as columns), unseen filters
become cheap without a constant to edit. A request whose estimate is over CHEAP_SECONDS (twice
an ordinary 10-character query alone, and about what a 100-character one costs) runs alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

QUERY_CHAR = 2.2e-3
HIT = 50e-6
CONTEXT_PASSAGE = 70e-6
HIGHLIGHT = 0.75e-6
FILTER_UNIT = 1.5e-6
CHEAP_SECONDS = 0.25
ORDINARY_CHARS = 10  # the query every request pays for (not counted as extra work)
RATE_WEIGHT = 0.3  # the weight of the newest timing in the running filter rate


@dataclass(frozen=True)
class Estimate:
    """Estimated seconds of a request: `work` (its query, hits, context and highlighting) and
    `filter` (evaluating its filter over the index; 0 when none, or its kept ids are cached)."""

    work: float
    filter: float

    @property
    def total(self) -> float:
        return self.work + self.filter

    @property
    def cheap(self) -> bool:
        return self.total <= CHEAP_SECONDS


class FilterRate:
    """Seconds an unseen filter costs per passage per unit of `Filter.cost`, starting from
    FILTER_UNIT and following the evaluations the service times (a running average)."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = FILTER_UNIT if seconds is None else seconds
        self._lock = threading.Lock()

    def observe(self, seconds: float, passages: int, cost: int) -> None:
        if passages <= 0 or cost <= 0 or seconds < 0:
            return
        with self._lock:
            self.seconds += RATE_WEIGHT * (seconds / (passages * cost) - self.seconds)


def estimate(query: str, k: int, context: int, highlight: bool, *, filter_cost: int = 0,
             passages: int = 0, cached: bool = True,
             rate: FilterRate | None = None) -> Estimate:
    """The estimate for a request (`filter_cost`: its filter's `Filter.cost`, 0 for none;
    `passages`: how many it is evaluated over; `cached`: its kept ids are known already)."""
    chars = len(query)
    shown = k * (1 + 2 * context)  # passages turned into JSON: the hits and their context
    work = (max(0, chars - ORDINARY_CHARS) * QUERY_CHAR + k * HIT
            + k * 2 * context * CONTEXT_PASSAGE
            + (shown * chars * HIGHLIGHT if highlight else 0.0))
    unit = (rate or FilterRate()).seconds
    spent = 0.0 if cached or not filter_cost else passages * filter_cost * unit
    return Estimate(work, spent)
