"""The SIP driver: inline dialog events (the gate), the message tap; lazy events."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_session_core._driver import EventGate
from rvoip_session_core._events import LazyEvent
from rvoip_session_core.testing import SipTrace, loopback_builder, released, uri_of, wait_until


def test_events_outside_commands_are_handled_at_once() -> None:
    seen: list[object] = []
    gate = EventGate(seen.append)
    gate.run("a")
    assert seen == ["a"]
    assert not gate.draining


def test_events_during_a_command_wait_until_the_outermost_returns() -> None:
    seen: list[object] = []
    gate = EventGate(seen.append)
    with gate:
        gate.held.append("x")
        with gate:
            gate.held.append("y")
        assert seen == []  # the inner command returned: still inside the outer one
    assert seen == ["x", "y"]
    assert not gate.held


def test_events_delivered_while_draining_keep_their_order() -> None:
    seen: list[object] = []
    gate: EventGate

    def handle(event: object) -> None:
        seen.append(event)
        if event == "first":
            with gate:  # a command issued while handling an event delivers another
                gate.held.append("second")
            seen.append("after command")

    gate = EventGate(handle)
    gate.run("first")
    assert seen == ["first", "after command", "second"]


@given(st.lists(st.integers(), max_size=20), st.integers(1, 5))
def test_held_events_come_out_in_order(events: list[int], depth: int) -> None:
    seen: list[object] = []
    gate = EventGate(seen.append)
    for _ in range(depth):
        gate.__enter__()
    gate.held.extend(events)
    for _ in range(depth):
        gate.__exit__(None, None, None)
    assert seen == events


@pytest.mark.anyio
async def test_lazy_event_wakes_waiters_and_answers_at_once_when_set() -> None:
    event = LazyEvent()
    assert not event.is_set()
    woke: list[bool] = []

    async def waiter() -> None:
        await event.wait()
        woke.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep(0.01)
        event.set()
    assert woke == [True]
    with anyio.fail_after(1):
        await event.wait()  # already set: returns at once


@pytest.mark.anyio
async def test_the_tap_wraps_the_transports_only_while_set() -> None:
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").build() as bob,
    ):
        trace = SipTrace()
        trace.attach(alice, "alice")
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        assert trace.kinds("alice")[:2] == ["INVITE", "ACK"]
        alice.message_tap = None
        count = len(trace.messages)
        await alice.terminate_session(call.id)
        assert await wait_until(lambda: released(alice) and released(bob))
        assert len(trace.messages) == count  # the BYE went out untraced


@pytest.mark.anyio
async def test_a_failing_call_task_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """Call tasks (a handler's decision, a transfer) run in the coordinator's task group:
    an error in one must not end the group, and with it every other call."""
    from rvoip_session_core._driver import guarded

    async def broken(x: int) -> None:
        raise ValueError(f"bug {x}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(guarded, broken, 7)
    assert "bug 7" in caplog.text
