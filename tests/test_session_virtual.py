"""Whole calls between coordinators in virtual time (``rvoip_session_core.testing.VirtualCalls``).

No sockets and no sleeps: SIP goes over dialog-core's in-memory network, RTP/RTCP over the
in-memory media network, and trio's MockClock jumps to the next deadline whenever every task
waits, so ring, defer, transfer and media timeouts cost milliseconds.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from rvoip_session_core import (
    CallCancelled,
    CallDecision,
    CallEnded,
    CallFailed,
    CallHandler,
    CallSession,
    CallState,
    Decision,
    DtmfReceived,
    IncomingCall,
    SessionCoordinator,
    StateChanged,
    TransferProgress,
    tone_source,
)
from rvoip_session_core.testing import (
    MediaRecord,
    VirtualCalls,
    count_tone_frames,
    next_event,
    released,
    virtual_time_backend,
)
from rvoip_sip_core import Request, Response

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """trio on a fresh autojumping MockClock: virtual time."""
    return virtual_time_backend()


class Undecided(CallHandler):
    """Never decides (until cancelled): the ring and decision timeouts take over."""

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        """Nothing to clean up."""


class Deciding(CallHandler):
    """Answers with a fixed decision (asynchronously)."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.ended: list[str] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return self.decision

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        self.ended.append(reason)


async def connect(
    net: VirtualCalls, a: SessionCoordinator, b: SessionCoordinator, user: str = "bob"
) -> tuple[str, str]:
    """Call b from a; returns (a's session id, b's session id) once answered."""
    known = {s.id for s in await b.list_active_sessions()}
    call = await a.create_outgoing_call(a.local_uri, net.uri(b, user))
    await a.wait_for_answer(call.id, 5)
    (theirs,) = [s for s in await b.list_active_sessions() if s.id not in known]
    return call.id, theirs.id


def sent(net: VirtualCalls, method: str) -> list[Request]:
    return [m for m in net.sip.messages(method=method) if isinstance(m, Request)]


def answered(net: VirtualCalls, status: int) -> list[Response]:
    return [m for m in net.sip.messages(status=status) if isinstance(m, Response)]


async def test_answer_media_and_hang_up() -> None:
    start = anyio.current_time()
    async with VirtualCalls() as net:
        alice, bob = await net.add("alice"), await net.add("bob")
        a, b = await connect(net, alice, bob)
        await anyio.sleep(1.0)
        stats = await bob.get_media_statistics(b)
        assert stats is not None
        assert stats.packets_received >= 45
        await alice.terminate_session(a)
        assert released(alice)
        assert released(bob)
    assert anyio.current_time() - start < 5  # virtual seconds, not a timeout


async def test_reject_ends_with_the_status() -> None:
    async with VirtualCalls() as net:
        alice = await net.add("alice")
        bob = await net.add("bob", Deciding(CallDecision.Reject("Busy Here", 486)))
        call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 5)
        assert info.value.status == 486
        assert released(alice)
        assert released(bob)


async def test_hold_and_resume_change_state_and_direction() -> None:
    async with VirtualCalls() as net:
        alice, bob = await net.add("alice"), await net.add("bob")
        a, b = await connect(net, alice, bob)
        await alice.hold_session(a)
        assert (await alice.get_session(a)).state is CallState.OnHold
        assert (await bob.get_media_info(b)).direction == "recvonly"
        before = (await alice.get_media_statistics(a)) or pytest.fail("no stats")
        await anyio.sleep(1.0)
        after = (await alice.get_media_statistics(a)) or pytest.fail("no stats")
        assert after.packets_received == before.packets_received  # the held side is silent
        await alice.resume_session(a)
        assert (await alice.get_session(a)).state is CallState.Active
        assert (await bob.get_media_info(b)).direction == "sendrecv"


async def test_dtmf_by_rfc4733_and_by_info() -> None:
    async with VirtualCalls() as net:
        alice, bob = await net.add("alice"), await net.add("bob")
        a, _ = await connect(net, alice, bob)
        events = bob.events()
        await alice.send_dtmf(a, "12#")
        await alice.send_dtmf(a, "9", method="info")
        got = [await next_event(events, DtmfReceived) for _ in range(4)]
        digits = [(e.digit, e.method) for e in got if isinstance(e, DtmfReceived)]
        assert digits == [("1", "rfc4733"), ("2", "rfc4733"), ("#", "rfc4733"), ("9", "info")]


async def test_blind_transfer_connects_transferee_to_target() -> None:
    async with VirtualCalls() as net:
        alice, bob, carol = await net.add("alice"), await net.add("bob"), await net.add("carol")
        a, _ = await connect(net, alice, bob)
        progress = alice.events()
        await alice.transfer_session(a, net.uri(carol, "carol"))
        assert await alice.wait_for_transfer(a, 10) == 200
        event = await next_event(progress, TransferProgress)
        assert isinstance(event, TransferProgress)
        with anyio.fail_after(5):
            while await alice.list_active_sessions():
                await anyio.sleep(0.1)  # alice's part ends once bob reached carol
        (bob_call,) = await bob.list_active_sessions()
        (carol_call,) = await carol.list_active_sessions()
        assert bob_call.state is carol_call.state is CallState.Active
        assert bob_call.to == net.uri(carol, "carol")


async def test_bridge_relays_audio_between_two_calls() -> None:
    async with VirtualCalls() as net:
        alice, bob, carol = await net.add("alice"), await net.add("bob"), await net.add("carol")
        a, b1 = await connect(net, alice, bob)
        c, b2 = await connect(net, carol, bob)
        await alice.set_audio_source(a, tone_source(1000))
        bridge = await bob.bridge_sessions(b1, b2)
        assert (await bob.get_bridge_info(bridge)).mode == "relay"
        hits, total = await count_tone_frames(carol, c, 1000, 1.0)
        assert total >= 40
        assert hits >= total * 0.8


async def test_glare_both_hold_at_once_is_retried() -> None:
    """Both sides re-INVITE at once: each gets 491 and retries after the RFC 3261 §14.1
    delay (2.1-4 s for the Call-ID owner, 0-2 s for the other), in virtual time."""
    async with VirtualCalls() as net:
        alice, bob = await net.add("alice"), await net.add("bob")
        a, b = await connect(net, alice, bob)
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(alice.hold_session, a)
            tg.start_soon(bob.hold_session, b)
        assert answered(net, 491)  # the glare happened
        assert (await alice.get_session(a)).state is CallState.OnHold
        assert (await bob.get_session(b)).state is CallState.OnHold
        assert anyio.current_time() - start < 10


async def test_an_undecided_call_rings_then_times_out_with_480() -> None:
    async with VirtualCalls() as net:
        alice = await net.add("alice")
        builder = net.builder("bob", Undecided()).with_incoming_call_timeout(30)
        bob = await net.add("bob", builder=builder)
        call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        start = anyio.current_time()
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 60)
        assert info.value.status == 480
        assert 30 <= anyio.current_time() - start < 31
        assert answered(net, 180)  # the handler was slow: the caller heard ringing
        assert released(alice)
        assert released(bob)


async def test_a_deferred_call_times_out_with_480() -> None:
    async with VirtualCalls() as net:
        alice = await net.add("alice")
        builder = net.builder("bob", Deciding(CallDecision.Defer())).with_incoming_call_timeout(20)
        bob = await net.add("bob", builder=builder)
        call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        states = alice.events()
        await next_event(states, StateChanged)
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 60)
        assert info.value.status == 480


async def test_caller_cancels_while_the_callee_decides() -> None:
    async with VirtualCalls() as net:
        alice, bob = await net.add("alice"), await net.add("bob", Undecided())
        call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        await anyio.sleep(1.0)  # ringing
        await alice.terminate_session(call.id)
        with pytest.raises(CallCancelled):
            await alice.wait_for_answer(call.id, 1)
        assert answered(net, 487)
        assert released(alice)
        assert released(bob)


# --- issue 10: media inactivity -----------------------------------------------------------


async def test_a_call_whose_media_stops_is_ended_with_bye_and_reason() -> None:
    """No RTP and no RTCP for ``media_timeout`` seconds: BYE with an RFC 3326 Reason, and
    the call's end reason says why (before, such a call stayed up for ever)."""
    dead: set[tuple[str, int]] = set()

    def drop(record: MediaRecord) -> bool:
        return record.source in dead

    async with VirtualCalls(media_drop=drop) as net:
        alice = await net.add("alice", builder=net.builder("alice").with_media_timeout(30))
        handler = Deciding(CallDecision.Accept(None))
        bob = await net.add(
            "bob", handler, builder=net.builder("bob", handler).with_media_timeout(None)
        )
        _a, b = await connect(net, alice, bob)
        info = await bob.get_media_info(b)
        assert info.local_rtp_port is not None
        dead.update({("127.0.0.1", info.local_rtp_port)})  # bob's media dies
        ended = alice.events()
        start = anyio.current_time()
        event = await next_event(ended, CallEnded, timeout=60)
        assert isinstance(event, CallEnded)
        assert "media timeout" in event.reason
        assert 30 <= anyio.current_time() - start <= 40
        (bye,) = sent(net, "BYE")
        assert bye.headers.get("Reason") == 'SIP;cause=408;text="RTP timeout"'
        with anyio.fail_after(5):
            while handler.ended == []:
                await anyio.sleep(0.1)
        assert handler.ended == ["remote hangup"]


async def test_rtcp_alone_keeps_a_held_call_up() -> None:
    """Hold-aware: while on hold only RTCP flows from the held side, and that is enough."""
    async with VirtualCalls() as net:
        alice = await net.add("alice", builder=net.builder("alice").with_media_timeout(10))
        bob = await net.add("bob")
        a, _ = await connect(net, alice, bob)
        await alice.hold_session(a)
        before = (await alice.get_media_statistics(a)) or pytest.fail("no stats")
        await anyio.sleep(60)
        after = (await alice.get_media_statistics(a)) or pytest.fail("no stats")
        assert after.packets_received == before.packets_received  # no RTP while held
        assert (await alice.get_session(a)).state is CallState.OnHold
        assert not sent(net, "BYE")


# --- issue 10: graceful stop --------------------------------------------------------------


async def test_stop_ends_calls_with_bye_retransmitted_until_answered() -> None:
    """``stop()`` used to send the BYEs and close the sockets 20 ms later: a BYE lost once
    was never retransmitted and the peer kept the call. Now it waits (``stop_timeout``) for
    the BYEs to be answered while the transaction retransmits them."""
    lost: list[int] = []

    def drop_first_bye(record: Any) -> bool:
        msg = record.message
        if isinstance(msg, Request) and msg.method == "BYE" and not lost:
            lost.append(1)
            return True
        return False

    async with VirtualCalls(drop=drop_first_bye) as net:
        alice, bob = await net.add("alice"), await net.add("bob")
        await connect(net, alice, bob)
        await alice.stop()
        assert lost
        assert len(sent(net, "BYE")) == 1
        assert not await bob.list_active_sessions()
        assert released(bob)


# --- issue 10: caps -----------------------------------------------------------------------


async def test_no_rtp_port_left_answers_503_with_retry_after() -> None:
    """When the RTP port range is used up the call is refused 503 + Retry-After (RFC 3261
    §21.5.4), so the caller knows to come back; it used to get a bare 503."""
    async with VirtualCalls() as net:
        alice = await net.add("alice")
        bob = await net.add("bob", builder=net.builder("bob").with_media_ports(30000, 30002))
        await connect(net, alice, bob)  # takes bob's only RTP port pair
        call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 5)
        assert info.value.status == 503
        (refusal,) = answered(net, 503)
        assert refusal.headers.get("Retry-After") == "1"


async def test_calls_beyond_the_default_cap_get_503() -> None:
    async with VirtualCalls() as net:
        alice = await net.add("alice")
        bob = await net.add("bob", builder=net.builder("bob").with_max_concurrent_calls(2))
        for _ in range(2):
            await connect(net, alice, bob)
        call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 5)
        assert info.value.status == 503
        assert bob.counters["overload_rejected"] == 1


class Raising(CallHandler):
    """Every hook raises."""

    def decide_now(self, call: IncomingCall) -> Decision | None:
        raise RuntimeError("decide_now broke")

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        raise RuntimeError("on_incoming_call broke")

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        raise RuntimeError("on_call_ended broke")

    async def on_call_state_changed(self, *args: object) -> None:
        raise RuntimeError("on_call_state_changed broke")


async def test_no_handler_error_escapes_the_event_path() -> None:
    async with VirtualCalls() as net:
        alice, bob = await net.add("alice"), await net.add("bob", Raising())
        for _ in range(2):
            call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
            with pytest.raises(CallFailed) as info:
                await alice.wait_for_answer(call.id, 5)
            assert info.value.status == 500
        bob.call_layer.on_event(object())  # an event nobody knows is ignored
        assert bob.is_running
        assert released(bob)


class ShiftedClock:
    """The loop's (virtual) time, with a wall clock of its own: 2001-09-09 plus ``now``."""

    def now(self) -> float:
        return anyio.current_time()

    def wall(self) -> float:
        return 1_000_000_000.0 + anyio.current_time()


async def test_the_injected_clock_dates_the_calls() -> None:
    """One clock, injected once: call timestamps come from it, not from datetime.now()."""
    async with VirtualCalls() as net:
        alice = await net.add("alice", builder=net.builder("alice").with_clock(ShiftedClock()))
        bob = await net.add("bob")
        a, _ = await connect(net, alice, bob)
        session = await alice.get_session(a)
        assert session.started_at is not None
        assert session.established_at is not None
        assert session.started_at.year == 2001
        assert session.direction == "outgoing"  # a StrEnum: equal to the old string
