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


class Deadlines(Generic[K]):
    """At most one deadline per key; the earliest is found in O(1) amortized.

    Example::

        timers: Deadlines[str] = Deadlines()
        timers.set("ring", now + 30)
        timers.set("ring", now + 60)   # moves it; the first entry goes stale
        timers.next()                  # now + 60
        timers.pop_due(now + 61)       # ["ring"]
    """

    __slots__ = ("_compact_at", "_heap", "_live", "_order")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._live: dict[K, tuple[float, int]] = {}
        self._order = 0
        self._compact_at = 64

    def set(self, key: K, when: float) -> None:
        """Set (or move) ``key``'s deadline to ``when`` (monotonic seconds)."""
        self._order += 1
        order = self._order
        self._live[key] = (when, order)
        heap = self._heap
        heapq.heappush(heap, (when, order, key))
        if len(heap) > self._compact_at:
            # Superseded and cancelled entries: drop them before they pile up (amortized).
            live = self._live
            heap[:] = [e for e in heap if live.get(e[2]) == (e[0], e[1])]
            heapq.heapify(heap)
            self._compact_at = max(64, 2 * len(heap))

    def cancel(self, key: K) -> None:
        """Forget ``key``'s deadline (no error when it has none)."""
        self._live.pop(key, None)

    def get(self, key: K) -> float | None:
        """``key``'s deadline, or None."""
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def next(self) -> float | None:
        """The earliest live deadline, or None (stale entries on top are dropped)."""
        heap, live = self._heap, self._live
        while heap:
            when, order, key = heap[0]
            if live.get(key) == (when, order):
                return when
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> list[K]:
        """Remove and return the keys whose deadline is at or before ``now``, earliest first."""
        heap, live = self._heap, self._live
        out: list[K] = []
        while heap and heap[0][0] <= now:
            when, order, key = heapq.heappop(heap)
            if live.get(key) == (when, order):
                del live[key]
                out.append(key)
        return out

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
