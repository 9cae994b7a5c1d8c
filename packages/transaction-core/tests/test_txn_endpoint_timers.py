"""The endpoint's one timer carries the transaction user's deadlines too (attach_timers)."""

from __future__ import annotations

import anyio
import pytest

from rvoip_transaction_core import Deadlines, TransactionEndpoint


class _Tu:
    """A transaction user with keyed deadlines, recording when each fired."""

    def __init__(self, endpoint: TransactionEndpoint) -> None:
        self.endpoint = endpoint
        self.deadlines: Deadlines[str] = Deadlines()
        self.fired: list[tuple[str, float]] = []
        self.wake_ups = 0

    def fire(self) -> None:
        self.wake_ups += 1
        now = anyio.current_time()
        self.fired.extend((key, now) for key in self.deadlines.pop_due(now))

    def set(self, key: str, delay: float) -> float:
        when = anyio.current_time() + delay
        self.deadlines.set(key, when)
        self.endpoint.rearm(when)
        return when


@pytest.mark.anyio
async def test_tu_deadlines_fire_on_the_endpoint_timer_in_order(anyio_backend: str) -> None:
    """A TU needs no timer task of its own: its deadlines fire on the endpoint's timer,
    never early, in order, and one set earlier than the armed one moves the wake-up."""
    async with TransactionEndpoint(udp=("127.0.0.1", 0)) as endpoint:
        tu = _Tu(endpoint)
        endpoint.attach_timers(tu.fire, tu.deadlines.next)
        late = tu.set("late", 0.30)
        early = tu.set("early", 0.05)  # earlier than the armed wake-up: moves it
        with anyio.fail_after(5):
            while len(tu.fired) < 2:
                await anyio.sleep(0.01)
        assert [key for key, _ in tu.fired] == ["early", "late"]
        assert tu.fired[0][1] >= early
        assert tu.fired[1][1] >= late
        # Never early and at most a slot or a scheduling hiccup late.
        assert tu.fired[0][1] < early + 0.2


@pytest.mark.anyio
async def test_idle_endpoint_sleeps_until_a_tu_deadline(anyio_backend: str) -> None:
    """Idle, with no transaction and no TU deadline, the timer does not wake up; a TU
    deadline set then (rearm) is armed without a wake-up of its own, and fires once."""
    async with TransactionEndpoint(udp=("127.0.0.1", 0)) as endpoint:
        tu = _Tu(endpoint)
        endpoint.attach_timers(tu.fire, tu.deadlines.next)
        await anyio.sleep(0.2)
        assert tu.wake_ups == 0
        tu.set("only", 0.05)
        tu.set("only", 0.10)  # moved later: the earlier wake-up finds nothing due yet
        with anyio.fail_after(5):
            while not tu.fired:
                await anyio.sleep(0.01)
        await anyio.sleep(0.2)
        assert [key for key, _ in tu.fired] == ["only"]
        assert tu.wake_ups <= 2
