"""Blind transfer (REFER/NOTIFY) and bridges between three coordinators on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from rvoip_session_core import (
    AutoAnswerHandler,
    BridgeEvent,
    CallDecision,
    CallFailed,
    CallSession,
    CallState,
    Decision,
    IncomingCall,
    SessionCoordinator,
    SessionId,
    TransferProgress,
    TransferRequested,
    tone_source,
)
from rvoip_session_core.testing import (
    SipTrace,
    VirtualCalls,
    count_tone_frames,
    next_event,
    uri_of,
    virtual_time_backend,
    wait_until,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Virtual time (trio + MockClock) unless a test asks for real loops."""
    return virtual_time_backend()


async def active_calls(coordinator: SessionCoordinator, count: int) -> list[CallSession]:
    found: list[CallSession] = []

    async def check() -> bool:
        found[:] = [
            s for s in await coordinator.list_active_sessions() if s.state is CallState.Active
        ]
        return len(found) == count

    assert await wait_until(check)
    return found


class NoTransfers(AutoAnswerHandler):
    async def on_incoming_transfer_request(
        self, session_id: SessionId, target: str, referred_by: str | None
    ) -> bool:
        return False


async def test_blind_transfer_connects_transferee_to_target(net: VirtualCalls) -> None:
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol")) as carol,
    ):
        for coordinator, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            trace.attach(coordinator, name)
        alice_events = alice.events()
        bob_events = bob.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (bob_call,) = await active_calls(bob, 1)
        carol_uri = uri_of(carol, "carol")
        await bob.transfer_session(bob_call.id, carol_uri)
        assert await bob.wait_for_transfer(bob_call.id, 10) == 200
        requested = await next_event(alice_events, TransferRequested)
        assert isinstance(requested, TransferRequested)
        assert requested.accepted
        assert requested.target == uri_of(carol, "carol")
        progress = await next_event(bob_events, TransferProgress)
        assert isinstance(progress, TransferProgress)
        assert (progress.status, progress.final) == (100, False)
        final = await next_event(bob_events, TransferProgress)
        assert isinstance(final, TransferProgress)
        assert (final.status, final.final) == (200, True)
        # Bob hangs up the original call; Alice now talks to Carol, with audio.
        assert await wait_until(lambda: not len(bob.registry))
        (alice_call,) = await active_calls(alice, 1)
        assert alice_call.to == uri_of(carol, "carol")
        (carol_call,) = await active_calls(carol, 1)
        await carol.set_audio_source(carol_call.id, tone_source(1200))
        hits, total = await count_tone_frames(alice, alice_call.id, 1200, 0.5)
        assert hits > total // 3
    refer = trace.requests("REFER")[0]
    assert refer.headers.get("Refer-To") == f"<{carol_uri}>"
    notifies = trace.requests("NOTIFY")
    assert [n.body.split(b"\r\n")[0] for n in notifies] == [
        b"SIP/2.0 100 Trying",
        b"SIP/2.0 200 OK",
    ]
    assert (notifies[-1].headers.get("Subscription-State") or "").startswith("terminated")


async def test_transferee_may_refuse_with_603(net: VirtualCalls) -> None:
    async with (
        net.coordinator(net.builder("alice", NoTransfers())) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (bob_call,) = await active_calls(bob, 1)
        with pytest.raises(CallFailed) as info:
            await bob.transfer_session(bob_call.id, "sip:carol@127.0.0.1:5999")
        assert info.value.status == 603
        assert (await bob.get_session(bob_call.id)).state is CallState.Active


async def test_bridge_relays_audio_both_ways_and_reports_events(net: VirtualCalls) -> None:
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol")) as carol,
    ):
        a_call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        c_call = await carol.create_outgoing_call("sip:carol@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(a_call.id, 5)
        await carol.wait_for_answer(c_call.id, 5)
        legs = await active_calls(bob, 2)
        by_peer = {leg.from_: leg for leg in legs}
        leg_a, leg_c = by_peer["sip:alice@127.0.0.1"], by_peer["sip:carol@127.0.0.1"]
        bridge_events = await bob.subscribe_to_bridge_events()
        bridge = await bob.bridge_sessions(leg_a.id, leg_c.id)
        assert [b.id for b in await bob.list_bridges()] == [bridge]
        # Same codec on both legs: RTP packets are relayed as they are.
        assert (await bob.get_bridge_info(bridge)).mode == "relay"
        await alice.set_audio_source(a_call.id, tone_source(700))
        await carol.set_audio_source(c_call.id, tone_source(1400))
        await anyio.sleep(0.1)
        hits, total = await count_tone_frames(carol, c_call.id, 700, 0.6)
        assert hits > total // 3
        hits, total = await count_tone_frames(alice, a_call.id, 1400, 0.6)
        assert hits > total // 3
        assert (await bob.get_stats()).active_bridges == 1
        await alice.terminate_session(a_call.id)
        seen = []
        with anyio.fail_after(5):
            async for event in bridge_events:
                seen.append(type(event).__name__)
                if isinstance(event, BridgeEvent.ParticipantRemoved):
                    assert event.session_id == leg_a.id
                    assert event.reason == "remote hangup"
                    break
        assert seen == ["ParticipantAdded", "ParticipantAdded", "ParticipantRemoved"]
        await bob.destroy_bridge(bridge)
        event = await next_event(bridge_events, BridgeEvent.BridgeDestroyed)
        assert isinstance(event, BridgeEvent.BridgeDestroyed)
        assert await bob.list_bridges() == []


async def test_bridge_between_different_codecs_transcodes(net: VirtualCalls) -> None:
    async with (
        net.coordinator(net.builder("alice").with_preferred_codecs(["PCMU"])) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol").with_preferred_codecs(["PCMA"])) as carol,
    ):
        a_call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        c_call = await carol.create_outgoing_call("sip:carol@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(a_call.id, 5)
        await carol.wait_for_answer(c_call.id, 5)
        assert (await alice.get_media_info(a_call.id)).codec == "PCMU"
        assert (await carol.get_media_info(c_call.id)).codec == "PCMA"
        legs = await active_calls(bob, 2)
        bridge = await bob.bridge_sessions(legs[0].id, legs[1].id)
        assert (await bob.get_bridge_info(bridge)).mode == "mix"
        await alice.set_audio_source(a_call.id, tone_source(700))
        await carol.set_audio_source(c_call.id, tone_source(1400))
        await anyio.sleep(0.1)
        hits, total = await count_tone_frames(carol, c_call.id, 700, 0.5)
        assert hits > total // 3
        hits, total = await count_tone_frames(alice, a_call.id, 1400, 0.5)
        assert hits > total // 3


class Busy(AutoAnswerHandler):
    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return CallDecision.Reject("Busy Here", 486)


async def test_failed_transfer_is_reported_and_the_call_goes_on(net: VirtualCalls) -> None:
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol", Busy())) as carol,
    ):
        bob_events = bob.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (bob_call,) = await active_calls(bob, 1)
        await bob.transfer_session(bob_call.id, uri_of(carol, "carol"))
        assert await bob.wait_for_transfer(bob_call.id, 10) == 486
        progress = None
        while progress is None or not progress.final:
            progress = await next_event(bob_events, TransferProgress)
            assert isinstance(progress, TransferProgress)
        assert progress.status == 486
        assert (await bob.get_session(bob_call.id)).state is CallState.Active
        assert (await alice.get_session(call.id)).state is CallState.Active
