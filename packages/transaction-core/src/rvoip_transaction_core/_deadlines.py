"""Keyed deadlines on one heap with lazy deletion, and the clock every layer is given.

Each sans-IO layer (transactions, dialogs, calls) keeps many deadlines that move or are
cancelled far more often than they fire. Re-heapifying on every change costs O(n); this
heap instead leaves a superseded entry where it is and drops it when it reaches the top
(or when stale entries outnumber live ones), so `set`, `cancel` and `next` are amortized
O(log n) / O(1). One helper, shared by the transaction, dialog and session layers.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

__all__ = ["Clock", "Deadlines", "SystemClock"]

K = TypeVar("K", bound=Hashable)

COMPACT_MIN = 64
"""Least number of stale entries a heap holds before they are swept out (a sweep comes
when stale entries outnumber both this and the live ones, so the heap stays within
twice its live size plus this)."""


class Deadlines(Generic[K]):
    """At most one deadline per key; the earliest is found in O(1) amortized.

    Example::

        timers: Deadlines[str] = Deadlines()
        timers.set("ring", now + 30)
        timers.set("ring", now + 60)   # moves it; the first entry goes stale
        timers.next()                  # now + 60
        timers.pop_due(now + 61)       # ["ring"]
    """

    __slots__ = ("_heap", "_live", "_order", "_stale", "compactions")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        # key -> its live heap entry itself: an entry is live iff it *is* the key's
        # (identity test, no tuple built per check; ``order`` keeps entries distinct).
        self._live: dict[K, tuple[float, int, K]] = {}
        self._order = 0
        # Entries in the heap that are no longer live (superseded or cancelled), counted
        # exactly: a sweep runs only when they outnumber the live ones. hot path: a heap of
        # long-lived live deadlines (Timer J/K/L, ~32 s of transactions at 1,000+ calls/s)
        # is then never rescanned; counting pushes instead rescanned it every N pushes.
        self._stale = 0
        self.compactions = 0
        """Sweeps of stale entries so far (for tests and tuning)."""

    def set(self, key: K, when: float) -> None:
        """Set (or move) ``key``'s deadline to ``when`` (monotonic seconds)."""
        self._order += 1
        entry = (when, self._order, key)
        live = self._live
        size = len(live)
        live[key] = entry
        heapq.heappush(self._heap, entry)
        if len(live) == size:  # the key had a deadline: its old entry went stale
            self._stale += 1
            if self._stale > COMPACT_MIN and self._stale > size:
                self._compact()

    def cancel(self, key: K) -> None:
        """Forget ``key``'s deadline (no error when it has none)."""
        if self._live.pop(key, None) is not None:
            self._stale += 1
            if self._stale > COMPACT_MIN and self._stale > len(self._live):
                self._compact()

    def _compact(self) -> None:
        # Superseded and cancelled entries: drop them before they pile up (amortized: the
        # scan of 2 x live entries is paid by more than max(COMPACT_MIN, live) stale ones).
        live = self._live
        heap = self._heap
        heap[:] = [e for e in heap if live.get(e[2]) is e]
        heapq.heapify(heap)
        self._stale = 0
        self.compactions += 1

    def get(self, key: K) -> float | None:
        """``key``'s deadline, or None."""
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def next(self) -> float | None:
        """The earliest live deadline, or None (stale entries on top are dropped)."""
        heap, live = self._heap, self._live
        while heap:
            entry = heap[0]
            if live.get(entry[2]) is entry:
                return entry[0]
            heapq.heappop(heap)
            self._stale -= 1
        return None

    def pop_due(self, now: float) -> list[K]:
        """Remove and return the keys whose deadline is at or before ``now``, earliest first."""
        heap, live = self._heap, self._live
        out: list[K] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            key = entry[2]
            if live.get(key) is entry:
                del live[key]
                out.append(key)
            else:
                self._stale -= 1
        return out

    @property
    def heap_size(self) -> int:
        """Entries in the heap, stale ones included (for tests and tuning)."""
        return len(self._heap)

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live


class Clock(Protocol):
    """The time source injected once into a driver and handed down as ``now``.

    ``now()`` is monotonic seconds (timers, deadlines); ``wall()`` is seconds since the
    Unix epoch (RTCP NTP timestamps, ``datetime`` fields of events).
    """

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    """The process's clocks: ``time.monotonic`` and ``time.time``.

    asyncio's and trio's loop clocks are ``time.monotonic`` too (trio adds a per-run
    offset; drivers running under trio read the loop's own clock instead).
    """

    __slots__ = ()

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def wall(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()
