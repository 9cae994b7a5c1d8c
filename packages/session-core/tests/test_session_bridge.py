"""Tests of the bridge manager: who hears whom, mixing, events and clean-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from rvoip_media_core import MediaEngine
from rvoip_session_core import BridgeEvent, BridgeNotFound, InvalidState, SessionId
from rvoip_session_core._bridge import BridgeManager
from rvoip_session_core._media import CallMedia


class FakeSession:
    def send_payload(self, *args: Any, **kwargs: Any) -> None:
        return None

    def set_packet_handler(self, handler: Callable[[Any, float], None] | None) -> None:
        return None

    def statistics(self) -> None:
        return None


def media(name: str, engine: MediaEngine) -> CallMedia:
    m = CallMedia(SessionId(name), engine, on_dtmf=lambda digit, ms: None)
    m.stream = engine.add_stream(FakeSession(), source=m.slot)
    return m


def frame(value: int) -> np.ndarray:
    return np.full(160, value, dtype=np.int16)


def hear(m: CallMedia, value: int) -> None:
    for tap in m.frame_taps:
        tap(frame(value))


@pytest.fixture
def engine() -> MediaEngine:
    return MediaEngine()


def test_two_party_bridge_relays_each_way(engine: MediaEngine) -> None:
    manager = BridgeManager()
    events = manager.events.subscribe()
    a, b = media("a", engine), media("b", engine)
    bid = manager.create()
    manager.add(bid, a)
    manager.add(bid, b)
    hear(a, 100)
    hear(b, -50)
    assert (b.slot.read(160) == 100).all()
    assert (a.slot.read(160) == -50).all()
    assert (a.slot.read(160) == 0).all()  # nothing new from b: silence
    assert [type(e).__name__ for e in iter(events.receive_nowait, None)] == [
        "ParticipantAdded",
        "ParticipantAdded",
    ]
    assert manager.list()[0].participants == ("a", "b")


def test_three_party_bridge_mixes_the_others(engine: MediaEngine) -> None:
    manager = BridgeManager()
    parts = [media(n, engine) for n in "abc"]
    bid = manager.create()
    for m in parts:
        manager.add(bid, m)
    for m, value in zip(parts, (1000, 200, 30), strict=True):
        hear(m, value)
    assert (parts[0].slot.read(160) == 230).all()
    assert (parts[1].slot.read(160) == 1030).all()
    assert (parts[2].slot.read(160) == 1200).all()


def test_removed_member_plays_its_own_source_again(engine: MediaEngine) -> None:
    manager = BridgeManager()
    a, b = media("a", engine), media("b", engine)
    a.slot.source = type("Src", (), {"read": lambda self, n: frame(7)})()
    bid = manager.create()
    manager.add(bid, a)
    manager.add(bid, b)
    manager.remove(bid, SessionId("a"), "removed")
    assert a.frame_taps == []
    assert (a.slot.read(160) == 7).all()
    with pytest.raises(InvalidState):
        manager.remove(bid, SessionId("a"), "again")


def test_call_end_empties_and_destroys_the_bridge(engine: MediaEngine) -> None:
    manager = BridgeManager()
    events = manager.events.subscribe()
    a, b = media("a", engine), media("b", engine)
    bid = manager.create()
    manager.add(bid, a)
    manager.add(bid, b)
    manager.call_ended(SessionId("a"), "remote hangup")
    manager.call_ended(SessionId("b"), "local hangup")
    manager.call_ended(SessionId("zzz"), "not in a bridge")
    seen = list(iter(events.receive_nowait, None))
    assert seen[-1] == BridgeEvent.BridgeDestroyed(bid)
    assert seen[2] == BridgeEvent.ParticipantRemoved(bid, SessionId("a"), "remote hangup")
    assert manager.list() == []
    with pytest.raises(BridgeNotFound):
        manager.get(bid)


def test_a_call_joins_one_bridge_only_and_needs_a_stream(engine: MediaEngine) -> None:
    manager = BridgeManager()
    a = media("a", engine)
    first, second = manager.create(), manager.create()
    manager.add(first, a)
    with pytest.raises(InvalidState, match="already in a bridge"):
        manager.add(second, a)
    silent = CallMedia(SessionId("s"), engine, on_dtmf=lambda digit, ms: None)
    with pytest.raises(InvalidState, match="no audio stream"):
        manager.add(second, silent)
    manager.close()
    assert manager.list() == []
