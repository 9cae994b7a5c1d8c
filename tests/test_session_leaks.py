"""Nothing leaks: after many sequential calls no session, dialog, RTP port, stream or
socket remains, and memory stays flat (the 1,000-call run is marked slow)."""

from __future__ import annotations

import gc
import os
import sys

import anyio
import pytest

from rvoip_session_core import SessionCoordinator
from rvoip_session_core.testing import loopback_builder, uri_of, wait_until

pytestmark = pytest.mark.anyio


def open_fds() -> int | None:
    if not sys.platform.startswith("linux"):
        return None
    return len(os.listdir("/proc/self/fd"))


def assert_idle(coordinator: SessionCoordinator) -> None:
    assert coordinator.registry.is_empty()  # no call, leg, dialog or pending request
    assert coordinator.media_manager.engine.streams == []
    assert coordinator.media_manager.ports_in_use == frozenset()
    assert coordinator.endpoint.dialog_count() == 0  # no live dialogs


def in_use(*coordinators: SessionCoordinator) -> bool:
    """True while an RTP port of one of the coordinators is still taken."""
    return any(c.media_manager.ports_in_use for c in coordinators)


async def run_calls(count: int, *, measure_memory: bool = False) -> int:
    async with (
        await loopback_builder("alice").with_media_ports(31000, 31100).build() as alice,
        await loopback_builder("bob").with_media_ports(31100, 31200).build() as bob,
    ):
        target = uri_of(bob, "bob")
        fds_before = open_fds()
        growth = 0
        for i in range(count):
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", target)
            await alice.wait_for_answer(call.id, 5)
            # Alternate who hangs up so both BYE paths are exercised.
            if i % 2:
                await alice.terminate_session(call.id)
            else:
                (leg,) = await bob.list_active_sessions()
                await bob.terminate_session(leg.id)
            # Under trio the RTP session closes in its own task, just after the call ends.
            assert await wait_until(
                lambda: not (len(alice.registry) or len(bob.registry) or in_use(alice, bob))
            )
            if measure_memory and i == count // 5:
                gc.collect()
                start = len(gc.get_objects())
        assert_idle(alice)
        assert_idle(bob)
        stats = await alice.get_stats()
        assert (stats.total_sessions, stats.failed_sessions, stats.active_sessions) == (count, 0, 0)
        if fds_before is not None:
            assert open_fds() == fds_before
        if measure_memory:
            # Dialog-core keeps each finished INVITE 64*T1 for late 2xx: let that pass.
            await anyio.sleep(64 * 0.1 + 0.5)
            gc.collect()
            growth = len(gc.get_objects()) - start
        return growth


async def test_hundred_calls_leave_nothing_behind() -> None:
    await run_calls(100)


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_thousand_calls_leave_nothing_behind_and_memory_is_flat() -> None:
    growth = await run_calls(1000, measure_memory=True)
    # 800 calls after the baseline: the number of live objects does not grow with calls.
    assert growth < 800
