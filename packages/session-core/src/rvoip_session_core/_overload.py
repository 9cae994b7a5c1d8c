"""Overload control: refuse new calls with 503 and Retry-After rather than collapse.

RFC 3261 §21.5.4: a server that is temporarily overloaded answers 503 Service Unavailable,
with a Retry-After header saying when to try again (the RFC 7339 overload-control idea in
its simplest form). Two triggers: a cap on concurrent calls, and event-loop lag measured by
a cheap periodic timer (``watch_loop_lag``) that feeds its own lateness to a ``LagMonitor``.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import attrs

LAG_INTERVAL = 0.05
"""Seconds between two wake-ups of the lag timer (20 cheap wake-ups a second)."""


@attrs.define(eq=False)
class LagMonitor:
    """Whether the event loop is too late to take new calls (sans-IO: fed lateness values).

    Overloaded once a measured lateness exceeds ``threshold``; recovered once one falls to
    half of it (the hysteresis keeps the state from flapping on every tick).

    Attributes:
        threshold: seconds of lateness above which new INVITEs are refused.
        injected: when set, replaces every measured lateness (a test's lag source).
        lateness: the last lateness taken into account.
        overloaded: True while new INVITEs are refused.
    """

    threshold: float
    injected: float | None = None
    lateness: float = 0.0
    overloaded: bool = False

    def observe(self, lateness: float) -> bool:
        """Take one lateness measurement (seconds); returns ``overloaded``."""
        if self.injected is not None:
            lateness = self.injected
        self.lateness = lateness
        if lateness > self.threshold:
            self.overloaded = True
        elif lateness <= self.threshold / 2:
            self.overloaded = False
        return self.overloaded


async def watch_loop_lag(
    monitor: LagMonitor,
    interval: float = LAG_INTERVAL,
    clock: Callable[[], float] = anyio.current_time,
) -> None:
    """Sleep ``interval`` again and again, feeding each wake-up's lateness to ``monitor``."""
    while True:
        due = clock() + interval
        await anyio.sleep(interval)
        monitor.observe(max(0.0, clock() - due))


def overloaded(active_calls: int, max_calls: int | None, lag: LagMonitor | None) -> bool:
    """True when a new incoming call must be refused (503 + Retry-After)."""
    if max_calls is not None and active_calls >= max_calls:
        return True
    return lag is not None and lag.overloaded
