"""The media clock: drives a ``MediaEngine`` every 20 ms, drift-free, on anyio.

Deadlines are scheduled against a monotonic clock (``next_deadline += tick``), never
by sleeping a fixed 20 ms, so processing time does not accumulate into drift.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import attrs

from rvoip_media_core._engine import TICK_SECONDS, MediaEngine

_BIN = 0.0001  # lateness histogram resolution: 0.1 ms
_BINS = 2000  # up to 200 ms; later goes to the last bin


@attrs.define(eq=False)
class ClockStats:
    """How punctual the clock was. A packet is late when sent more than
    ``late_threshold`` after its scheduled time."""

    late_threshold: float = 0.01
    ticks: int = 0
    late_ticks: int = 0
    skipped_ticks: int = 0
    packets: int = 0
    late_packets: int = 0
    send_errors: int = 0
    histogram: list[int] = attrs.field(factory=lambda: [0] * _BINS)

    def record(self, lateness: float) -> None:
        """Count one packet sent ``lateness`` seconds after its deadline."""
        self.packets += 1
        if lateness > self.late_threshold:
            self.late_packets += 1
        index = int(lateness / _BIN) if lateness > 0 else 0
        self.histogram[index if index < _BINS else _BINS - 1] += 1

    def percentile(self, p: float) -> float:
        """Send-time lateness (seconds) below which ``p`` percent of packets were sent."""
        if self.packets == 0:
            return 0.0
        wanted = math.ceil(self.packets * p / 100.0)
        seen = 0
        for index, count in enumerate(self.histogram):
            seen += count
            if seen >= wanted:
                return (index + 1) * _BIN
        return _BINS * _BIN


def schedule_next(
    deadline: float, now: float, tick: float, max_behind_ticks: int
) -> tuple[float, int]:
    """The deadline to run next after the tick at ``deadline`` ran, and ticks skipped.

    Drift-free: the next deadline is always ``deadline + tick`` on the fixed grid, however
    long processing took; only when more than ``max_behind_ticks`` behind (a suspended
    process, overload) whole ticks are skipped instead of sent in a burst.
    """
    nxt = deadline + tick
    behind = now - nxt
    if behind > max_behind_ticks * tick:
        skip = int(behind / tick)
        return nxt + skip * tick, skip
    return nxt, 0


@attrs.define(eq=False)
class MediaClock:
    """Runs ``engine.tick`` every ``tick`` seconds and sends what it returns."""

    engine: MediaEngine
    tick: float = TICK_SECONDS
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    stats: ClockStats = attrs.field(factory=ClockStats)
    max_behind_ticks: int = 3

    def process(self, deadline: float) -> None:
        """Run one tick scheduled at ``deadline`` (clock time) and send its packets."""
        stats = self.stats
        clock = self.clock
        start = clock()
        stats.ticks += 1
        if start - deadline > stats.late_threshold:
            stats.late_ticks += 1
        engine = self.engine
        wall = self.wall_clock()
        outgoing = engine.begin_tick(wall)
        record = stats.record
        for stream, payload, timestamp, marker in outgoing:
            try:
                stream.session.send_payload(payload, timestamp, marker, stream.codec.value, wall)
            except Exception:  # a closed session must not stop every other call
                stats.send_errors += 1
            record(clock() - deadline)
        engine.end_tick()  # play-out after sending, so it never delays packets

    async def run(self) -> None:
        """Tick until cancelled."""
        clock = self.clock
        deadline = clock() + self.tick
        while True:
            delay = deadline - clock()
            if delay > 0:
                await anyio.sleep(delay)
            self.process(deadline)
            deadline, skipped = schedule_next(deadline, clock(), self.tick, self.max_behind_ticks)
            self.stats.skipped_ticks += skipped


@asynccontextmanager
async def run_media_engine(
    engine: MediaEngine, *, late_threshold: float = 0.01
) -> AsyncIterator[MediaClock]:
    """Run the engine's clock in a background task for the duration of the block."""
    media_clock = MediaClock(engine, stats=ClockStats(late_threshold=late_threshold))
    async with anyio.create_task_group() as tg:
        tg.start_soon(media_clock.run)
        try:
            yield media_clock
        finally:
            tg.cancel_scope.cancel()
