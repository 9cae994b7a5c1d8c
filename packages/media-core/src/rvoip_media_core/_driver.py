"""The media clock: drives a ``MediaEngine`` every 20 ms, drift-free, on anyio.

Deadlines are scheduled against a monotonic clock (``next_deadline += tick``), never
by sleeping a fixed 20 ms, so processing time does not accumulate into drift.

With many streams (over 200) a tick is split in phases spread over the 20 ms (stream ``id % 4``
sends at offset 0, 5, 10 or 15 ms): each wake-up then sends a quarter of the packets,
so the last packet of a wake-up leaves ~4x sooner after its deadline, and a burst of
received packets waiting ahead of the clock in the event loop is a quarter as long.
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
PHASES = 4
"""Parts a tick is split into when the engine holds more than ``SPLIT_ABOVE`` streams."""
SPLIT_ABOVE = 200
"""Below this a whole tick's sends take ~2 ms: one wake-up per tick is cheaper (each
wake-up of an idle process costs CPU of its own; ~0.1 ms on a virtual machine)."""


@attrs.define(eq=False)
class ClockStats:
    """How punctual the clock was.

    A packet is late when sent more than ``late_threshold`` after its scheduled time.
    """

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
    """Runs the engine every ``tick`` seconds and sends what it returns.

    Above ``split_above`` streams each tick runs in ``phases`` parts, ``tick / phases``
    apart (see ``MediaEngine.begin_tick``); a packet's deadline is its own phase's time.
    """

    engine: MediaEngine
    tick: float = TICK_SECONDS
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    stats: ClockStats = attrs.field(factory=ClockStats)
    max_behind_ticks: int = 3
    phases: int = PHASES
    split_above: int = SPLIT_ABOVE
    _tick_late: bool = attrs.field(default=False, init=False)
    _split: bool = attrs.field(default=False, init=False)

    def phase_count(self) -> int:
        """Phases of the next tick: 1 up to ``split_above`` streams, ``phases`` above.

        Once split, a tick stays split down to 3/4 of the threshold, so streams do not
        change phase (a one-off 5-15 ms shift of their send time) at every call near it.
        """
        n = self.engine.stream_count
        split = n > (self.split_above * 3 // 4 if self._split else self.split_above)
        self._split = split
        return self.phases if split else 1

    def process(self, deadline: float, phase: int = 0, phases: int = 1) -> None:
        """Run one tick and send its packets.

        The tick (or phase ``phase`` of ``phases``) is the one scheduled at ``deadline``
        (clock time).
        """
        stats = self.stats
        clock = self.clock
        start = clock()
        late_threshold = stats.late_threshold
        if phase == 0:
            stats.ticks += 1
            self._tick_late = False
        if start - deadline > late_threshold and not self._tick_late:
            stats.late_ticks += 1  # a tick is late when any of its phases started late
            self._tick_late = True
        engine = self.engine
        wall = self.wall_clock()
        outgoing = engine.begin_tick(wall, phase, phases)
        # hot path: ClockStats.record inlined (one packet per stream per tick).
        histogram = stats.histogram
        last_bin = _BINS - 1
        late = 0
        for stream, payload, timestamp, marker in outgoing:
            try:
                stream.session.send_payload(payload, timestamp, marker, stream.payload_type, wall)
            except Exception:  # a closed session must not stop every other call
                stats.send_errors += 1
            lateness = clock() - deadline
            if lateness > late_threshold:
                late += 1
            index = int(lateness / _BIN) if lateness > 0 else 0
            histogram[index if index < last_bin else last_bin] += 1
        stats.packets += len(outgoing)
        stats.late_packets += late
        engine.end_tick()  # play-out after sending, so it never delays packets

    async def run(self) -> None:
        """Tick until cancelled."""
        clock = self.clock
        tick = self.tick
        deadline = clock() + tick
        while True:
            phases = self.phase_count()
            step = tick / phases
            for phase in range(phases):
                due = deadline + phase * step
                delay = due - clock()
                if delay > 0:
                    await anyio.sleep(delay)
                self.process(due, phase, phases)
            deadline, skipped = schedule_next(deadline, clock(), tick, self.max_behind_ticks)
            self.stats.skipped_ticks += skipped


@asynccontextmanager
async def run_media_engine(
    engine: MediaEngine, *, late_threshold: float = 0.01, phases: int = PHASES
) -> AsyncIterator[MediaClock]:
    """Run the engine's clock in a background task for the duration of the block.

    ``phases``: parts a tick is split into above ``SPLIT_ABOVE`` streams (1: never split).
    """
    if phases < 1:
        raise ValueError(f"phases must be at least 1, got {phases}")
    media_clock = MediaClock(engine, stats=ClockStats(late_threshold=late_threshold), phases=phases)
    async with anyio.create_task_group() as tg:
        tg.start_soon(media_clock.run)
        try:
            yield media_clock
        finally:
            tg.cancel_scope.cancel()
