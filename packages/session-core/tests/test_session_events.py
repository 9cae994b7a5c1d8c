"""Tests of the event types and the non-blocking fan-out hub."""

from __future__ import annotations

import anyio
import pytest

from rvoip_session_core import (
    BridgeEvent,
    BridgeId,
    CallState,
    SessionEvent,
    SessionId,
)
from rvoip_session_core._events import EventHub


def test_bridge_events_match_like_the_seed() -> None:
    events = [
        BridgeEvent.ParticipantAdded(BridgeId("b"), SessionId("s")),
        BridgeEvent.ParticipantRemoved(BridgeId("b"), SessionId("s"), "hangup"),
        BridgeEvent.BridgeDestroyed(BridgeId("b")),
    ]
    seen = []
    for event in events:
        match event:
            case BridgeEvent.ParticipantAdded(bridge_id=b, session_id=s):
                seen.append(f"+{s}@{b}")
            case BridgeEvent.ParticipantRemoved(bridge_id=b, session_id=s, reason=r):
                seen.append(f"-{s}@{b}:{r}")
            case BridgeEvent.BridgeDestroyed(bridge_id=b):
                seen.append(f"x{b}")
    assert seen == ["+s@b", "-s@b:hangup", "xb"]


@pytest.mark.anyio
async def test_hub_fans_out_to_every_subscriber_in_order() -> None:
    hub: EventHub[object] = EventHub()
    a = hub.subscribe()
    b = hub.subscribe()
    first = SessionEvent.StateChanged(SessionId("s"), CallState.Initiating, CallState.Ringing)
    second = SessionEvent.CallEnded(SessionId("s"), "bye")
    hub.publish(first)
    hub.publish(second)
    hub.close()
    assert [e async for e in a] == [first, second]
    assert [e async for e in b] == [first, second]


@pytest.mark.anyio
async def test_hub_drops_and_counts_instead_of_blocking() -> None:
    hub: EventHub[int] = EventHub(buffer=2)
    sub = hub.subscribe()
    for i in range(5):
        hub.publish(i)
    assert sub.dropped == 3
    assert sub.receive_nowait() == 0
    assert sub.receive_nowait() == 1
    assert sub.receive_nowait() is None


@pytest.mark.anyio
async def test_closed_subscription_stops_receiving() -> None:
    hub: EventHub[int] = EventHub()
    async with hub.subscribe() as sub:
        hub.publish(1)
        assert await sub.recv() == 1
    assert hub.subscriber_count == 0
    hub.publish(2)
    assert await sub.recv() is None


@pytest.mark.anyio
async def test_subscribing_after_close_gives_an_ended_iterator() -> None:
    hub: EventHub[int] = EventHub()
    hub.close()
    sub = hub.subscribe()
    with anyio.fail_after(1):
        assert [e async for e in sub] == []
