"""Calls between two coordinators: SIP on the wire, public events, real audio.

Most run in virtual time on the in-memory networks (``VirtualCalls``): no sockets, no
sleeps. A few stay on real 127.0.0.1 / ::1 sockets (UDP, TCP, IPv6) on asyncio and trio.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from rvoip_session_core import (
    AutoAnswerHandler,
    CallDecision,
    CallEnded,
    CallEstablished,
    CallFailed,
    CallHandler,
    CallSession,
    CallState,
    ConfigurationError,
    Decision,
    DtmfReceived,
    IncomingCall,
    InvalidState,
    MediaControl,
    SessionControl,
    SessionId,
    SessionManagerBuilder,
    SessionNotFound,
    StateChanged,
    tone_source,
)
from rvoip_session_core.testing import (
    SipTrace,
    VirtualCalls,
    count_tone_frames,
    loopback_builder,
    next_event,
    released,
    uri_of,
    virtual_time_backend,
    wait_until,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Virtual time (trio + MockClock) unless a test asks for real loops."""
    return virtual_time_backend()


class Recorder(AutoAnswerHandler):
    """Auto-answers and records what the hooks saw."""

    def __init__(self) -> None:
        self.incoming: list[IncomingCall] = []
        self.ended: list[tuple[CallSession, str]] = []
        self.established: list[CallSession] = []
        self.dtmf: list[str] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.incoming.append(call)
        return CallDecision.Accept(None)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        self.ended.append((call, reason))

    async def on_call_established(
        self, call: CallSession, local_sdp: str | None, remote_sdp: str | None
    ) -> None:
        self.established.append(call)

    async def on_dtmf(self, session_id: SessionId, digit: str) -> None:
        self.dtmf.append(digit)


async def only_call(coordinator: object) -> CallSession:
    sessions: list[CallSession] = []

    async def one() -> bool:
        sessions[:] = await coordinator.list_active_sessions()  # type: ignore[attr-defined]
        return len(sessions) == 1 and sessions[0].state is CallState.Active

    assert await wait_until(one)
    return sessions[0]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_basic_call_sip_ladder_events_and_hangup() -> None:
    bob_handler = Recorder()
    trace = SipTrace()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob", bob_handler).build() as bob,
    ):
        trace.attach(alice, "alice")
        trace.attach(bob, "bob")
        events = alice.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        assert call.state is CallState.Initiating
        await alice.wait_for_answer(call.id, 5)
        assert (await alice.get_session(call.id)).state is CallState.Active
        established = await next_event(events, CallEstablished)
        assert isinstance(established, CallEstablished)
        assert "m=audio" in (established.remote_sdp or "")
        incoming = bob_handler.incoming[0]
        assert incoming.from_ == "sip:alice@127.0.0.1"
        assert incoming.sdp is not None
        assert "PCMU/8000" in incoming.sdp
        assert incoming.header("Call-ID")
        await alice.terminate_session(call.id)
        ended = await next_event(events, CallEnded)
        assert isinstance(ended, CallEnded)
        assert ended.reason == "local hangup"
        assert await wait_until(lambda: bool(bob_handler.ended))
        assert bob_handler.ended[0][1] == "remote hangup"
        assert await wait_until(lambda: released(alice) and released(bob))
        with pytest.raises(SessionNotFound):
            await alice.get_session(call.id)
    assert trace.kinds("alice") == ["INVITE", "ACK", "BYE"]
    bob_kinds = trace.kinds("bob")
    # RFC 3261 §17.2.1: bob answers within 200 ms, so no 100 Trying goes out.
    assert bob_kinds[0] == "200/INVITE"
    assert "100/INVITE" not in bob_kinds
    assert bob_kinds[-1] == "200/BYE"
    invite = trace.requests("INVITE")[0]
    assert invite.headers.get("Contact") is not None
    assert "127.0.0.1" in str(invite.top_via)
    assert b"c=IN IP4 127.0.0.1" in invite.body
    assert "INVITE" in trace.ladder()


async def test_trying_sent_at_once_when_configured(net: VirtualCalls) -> None:
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob").with_trying_after(0)) as bob,
    ):
        trace.attach(bob, "bob")
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        await alice.terminate_session(call.id)
        assert await wait_until(lambda: "200/BYE" in trace.kinds("bob"))
    assert trace.kinds("bob")[:2] == ["100/INVITE", "200/INVITE"]


def test_trying_after_is_bounded_by_the_rfc_200_ms() -> None:
    with pytest.raises(ConfigurationError, match=r"0\.5"):
        loopback_builder("bob").with_trying_after(0.5)


async def test_tone_flows_stops_on_hold_and_returns_on_resume(net: VirtualCalls) -> None:
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        bob_call = await only_call(bob)
        await MediaControl.set_audio_source(bob, bob_call.id, tone_source(1000))
        await alice.set_audio_source(call.id, tone_source(600))
        hits, total = await count_tone_frames(alice, call.id, 1000, 0.6)
        assert hits > total // 2
        hits, total = await count_tone_frames(bob, bob_call.id, 600, 0.6)
        assert hits > total // 2
        await SessionControl.hold_session(alice, call.id)
        assert (await alice.get_session(call.id)).state is CallState.OnHold
        await anyio.sleep(0.3)  # frames already in the jitter buffer play out
        assert (await count_tone_frames(alice, call.id, 1000, 0.4))[0] == 0
        assert (await count_tone_frames(bob, bob_call.id, 600, 0.4))[0] == 0
        info = await alice.get_media_info(call.id)
        assert info.direction == "sendonly"
        assert (await bob.get_media_info(bob_call.id)).direction == "recvonly"
        await alice.resume_session(call.id)
        assert (await alice.get_session(call.id)).state is CallState.Active
        await anyio.sleep(0.1)
        hits, total = await count_tone_frames(alice, call.id, 1000, 0.5)
        assert hits > total // 3
        stats = await alice.get_media_statistics(call.id)
        assert stats is not None
        assert stats.packets_received > 0
        assert stats.quality_metrics is not None
        assert stats.quality_metrics.mos_score is not None
        assert stats.quality_metrics.mos_score > 4.0
        assert stats.codec == "PCMU"


async def test_mute_keeps_rtp_flowing_as_silence(net: VirtualCalls) -> None:
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        bob_call = await only_call(bob)
        await alice.set_audio_source(call.id, tone_source(800))
        await alice.stop_audio_transmission(call.id)
        await anyio.sleep(0.3)
        before = await bob.get_media_statistics(bob_call.id)
        assert (await count_tone_frames(bob, bob_call.id, 800, 0.4))[0] == 0
        after = await bob.get_media_statistics(bob_call.id)
        assert before is not None
        assert after is not None
        assert after.packets_received > before.packets_received
        await alice.start_audio_transmission(call.id)
        await anyio.sleep(0.1)
        assert (await count_tone_frames(bob, bob_call.id, 800, 0.4))[0] > 0


@pytest.mark.parametrize("method", ["rfc4733", "info"])
async def test_dtmf_digits_sent_are_digits_received(net: VirtualCalls, method: str) -> None:
    bob_handler = Recorder()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob", bob_handler)) as bob,
    ):
        events = bob.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        await alice.send_dtmf(call.id, "1234#", method=method)
        received = []
        for _ in range(5):
            event = await next_event(events, DtmfReceived)
            assert isinstance(event, DtmfReceived)
            assert event.method == method
            received.append(event.digit)
        assert "".join(received) == "1234#"
        assert await wait_until(lambda: "".join(bob_handler.dtmf) == "1234#")
        with pytest.raises(InvalidState):
            await alice.send_dtmf(call.id, "12x")


class Rejecter(AutoAnswerHandler):
    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return CallDecision.Reject("Busy Here", 486)


class Forwarder(AutoAnswerHandler):
    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return CallDecision.Forward("sip:voicemail@127.0.0.1:5999")


class Exploder(AutoAnswerHandler):
    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        raise RuntimeError("handler bug")


class Ignorer(AutoAnswerHandler):
    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return CallDecision.Defer()


@pytest.mark.parametrize(
    ("handler", "status"),
    [(Rejecter(), 486), (Forwarder(), 302), (Exploder(), 500)],
)
async def test_refused_calls_fail_with_the_status(
    net: VirtualCalls, handler: CallHandler, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    trace = SipTrace()
    async with (
        # Not following the 302 (with_redirects(False)): the call fails with it.
        net.coordinator(net.builder("alice").with_redirects(False)) as alice,
        net.coordinator(net.builder("bob", handler)) as bob,
    ):
        trace.attach(bob, "bob")
        events = alice.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 5)
        assert info.value.status == status
        assert call.id in str(info.value)
        ended = await next_event(events, CallEnded)
        assert isinstance(ended, CallEnded)
        assert await wait_until(lambda: released(alice) and released(bob))
        assert (await alice.get_stats()).failed_sessions == 1
    final = trace.responses(status)[0]
    if status == 500:
        assert "on_incoming_call failed" in caplog.text
        assert "handler bug" in caplog.text
    if status == 302:
        assert final.headers.get("Contact") == "<sip:voicemail@127.0.0.1:5999>"


async def test_deferred_call_rings_and_is_answered_480_at_the_deadline(net: VirtualCalls) -> None:
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob", Ignorer()).with_incoming_call_timeout(0.5)) as bob,
    ):
        trace.attach(bob, "bob")
        events = alice.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        ringing = await next_event(events, StateChanged)
        assert isinstance(ringing, StateChanged)
        assert ringing.new_state is CallState.Ringing
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 5)
        assert info.value.status == 480
        assert await wait_until(lambda: released(alice) and released(bob))
    # The deferral rings at once, so no 100 Trying is owed (RFC 3261 §17.2.1).
    assert trace.kinds("bob")[:2] == ["180/INVITE", "480/INVITE"]


async def test_deferred_call_accepted_later_with_generated_answer(net: VirtualCalls) -> None:
    pending: list[IncomingCall] = []

    class Deferrer(AutoAnswerHandler):
        async def on_incoming_call(self, call: IncomingCall) -> Decision:
            pending.append(call)
            return CallDecision.Defer

    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob", Deferrer())) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        assert await wait_until(lambda: bool(pending))
        incoming = pending[0]
        assert incoming.sdp is not None
        answer = await MediaControl.generate_sdp_answer(bob, incoming.id, incoming.sdp)
        session = await SessionControl.accept_incoming_call(bob, incoming, answer)
        assert session.state is CallState.Active
        await alice.wait_for_answer(call.id, 5)
        with pytest.raises(InvalidState):
            await bob.accept_incoming_call(incoming)


async def test_cancel_before_answer(net: VirtualCalls) -> None:
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob", Ignorer())) as bob,
    ):
        trace.attach(alice, "alice")
        trace.attach(bob, "bob")
        events = alice.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        assert await wait_until(lambda: bool(trace.responses(180)))
        await alice.terminate_session(call.id)
        ended = await next_event(events, CallEnded)
        assert isinstance(ended, CallEnded)
        assert await wait_until(lambda: released(alice) and released(bob))
    assert "CANCEL" in trace.kinds("alice")
    assert trace.responses(487)
    assert "BYE" not in trace.kinds("alice")


async def test_cancel_right_after_the_invite_goes_after_100_trying(net: VirtualCalls) -> None:
    # RFC 3261 §9.1: the 100 Trying the callee's transaction sends is enough for the CANCEL;
    # no 180 is needed (the handler here never decides).
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob", Ignorer())) as bob,
    ):
        trace.attach(alice, "alice")
        trace.attach(bob, "bob")
        events = alice.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.terminate_session(call.id)
        ended = await next_event(events, CallEnded)
        assert isinstance(ended, CallEnded)
        assert await wait_until(lambda: released(alice) and released(bob))
    assert "CANCEL" in trace.kinds("alice")
    assert trace.responses(487)


async def test_wait_for_answer_times_out_and_call_keeps_ringing(net: VirtualCalls) -> None:
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob", Ignorer())) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        with pytest.raises(TimeoutError):
            await alice.wait_for_answer(call.id, 0.3)
        assert (await alice.get_session(call.id)).state is CallState.Ringing
        with pytest.raises(InvalidState):
            await alice.hold_session(call.id)


async def test_bob_hangs_up_and_control_of_ended_call_fails(net: VirtualCalls) -> None:
    alice_handler = Recorder()
    async with (
        net.coordinator(net.builder("alice", alice_handler)) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        bob_call = await only_call(bob)
        with pytest.raises(SessionNotFound):
            await SessionControl.hold_session(alice, "no-such-call")
        await bob.terminate_session(bob_call.id)
        assert await wait_until(lambda: bool(alice_handler.ended))
        assert alice_handler.ended[0][1] == "remote hangup"
        assert await wait_until(lambda: released(alice) and released(bob))
        with pytest.raises(SessionNotFound):
            await alice.hold_session(call.id)
        stats = await alice.get_stats()
        assert (stats.active_sessions, stats.total_sessions, stats.outgoing_calls) == (0, 1, 1)


async def test_stop_ends_calls_on_both_sides(net: VirtualCalls) -> None:
    bob_handler = Recorder()
    async with net.coordinator(net.builder("bob", bob_handler)) as bob:
        alice = net.coordinator(net.builder("alice"))
        await SessionControl.start(alice)
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await SessionControl.wait_for_answer(alice, call.id, 5)
        await SessionControl.stop(alice)
        assert not alice.is_running
        assert await wait_until(lambda: bool(bob_handler.ended))
        assert await bob.list_active_sessions() == []


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_call_over_tcp() -> None:
    trace = SipTrace()
    async with (
        await loopback_builder("alice").with_transport("tcp").build() as alice,
        await loopback_builder("bob").with_transport("tcp").build() as bob,
    ):
        trace.attach(alice, "alice")
        assert alice.local_uri.endswith(";transport=tcp")
        call = await alice.create_outgoing_call(
            "sip:alice@127.0.0.1", uri_of(bob, "bob") + ";transport=tcp"
        )
        await alice.wait_for_answer(call.id, 5)
        await alice.send_dtmf(call.id, "7", method="info")
        await alice.terminate_session(call.id)
        assert await wait_until(lambda: not len(bob.registry))
    assert trace.kinds("alice") == ["INVITE", "ACK", "INFO", "BYE"]
    assert trace.requests("INVITE")[0].top_via.transport == "TCP"


async def test_stop_tells_the_handler_about_every_call(net: VirtualCalls) -> None:
    alice_handler = Recorder()
    async with net.coordinator(net.builder("bob", Ignorer())) as bob:
        alice = net.coordinator(net.builder("alice", alice_handler))
        async with alice:
            ringing = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
            with pytest.raises(TimeoutError):
                await alice.wait_for_answer(ringing.id, 0.2)
        # The CANCEL sent by stop() is usually answered (487) before the sockets close.
        assert [r for _, r in alice_handler.ended] in (["cancelled"], ["coordinator stopped"])
        assert await wait_until(lambda: not len(bob.registry))


async def test_prepared_call_sends_the_prepared_offer(net: VirtualCalls) -> None:
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice").with_preferred_codecs(["PCMA"])) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        trace.attach(alice, "alice")
        prepared = await SessionControl.prepare_outgoing_call(
            alice, "sip:alice@127.0.0.1", uri_of(bob, "bob")
        )
        assert f"m=audio {prepared.local_rtp_port} RTP/AVP 8 101" in prepared.sdp_offer
        assert (await alice.get_session(prepared.session_id)).state is CallState.Initiating
        assert trace.requests("INVITE") == []
        session = await SessionControl.initiate_prepared_call(alice, prepared)
        await alice.wait_for_answer(session.id, 5)
        assert trace.requests("INVITE")[0].body.decode() == prepared.sdp_offer
        assert (await alice.get_media_info(session.id)).codec == "PCMA"
        with pytest.raises(InvalidState):
            await alice.initiate_prepared_call(prepared)


async def test_slow_handler_rings_so_the_caller_can_cancel(net: VirtualCalls) -> None:
    class Slow(AutoAnswerHandler):
        stopped = False

        async def on_incoming_call(self, call: IncomingCall) -> Decision:
            try:
                await anyio.sleep(30)
            finally:
                Slow.stopped = True
            return CallDecision.Accept(None)

    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob", Slow())) as bob,
    ):
        trace.attach(bob, "bob")
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        assert await wait_until(lambda: bool(trace.responses(180)))
        await alice.terminate_session(call.id)
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 5)
        assert info.value.status == 487
        assert await wait_until(lambda: released(alice) and released(bob))
        assert await wait_until(lambda: Slow.stopped)  # the handler was cancelled too


def ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
async def test_call_over_ipv6_loopback() -> None:
    def builder(user: str) -> SessionManagerBuilder:
        return loopback_builder(user).with_local_address(f"sip:{user}@[::1]")

    async with (
        await builder("alice").build() as alice,
        await builder("bob").build() as bob,
    ):
        host, port = bob.local_sip_address
        assert host == "::1"
        call = await alice.create_outgoing_call("sip:alice@[::1]", f"sip:bob@[::1]:{port}")
        await alice.wait_for_answer(call.id, 5)
        info = await alice.get_media_info(call.id)
        assert "c=IN IP6 ::1" in (info.local_sdp or "")
        bob_call = await only_call(bob)
        await alice.set_audio_source(call.id, tone_source(1000))
        hits, total = await count_tone_frames(bob, bob_call.id, 1000, 0.5)
        assert hits > total // 3


async def test_both_sides_hold_at_once_glare_is_retried(net: VirtualCalls) -> None:
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        trace.attach(alice, "alice")
        trace.attach(bob, "bob")
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        bob_call = await only_call(bob)
        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                tg.start_soon(alice.hold_session, call.id)
                tg.start_soon(bob.hold_session, bob_call.id)
        # Each side holds the other: RFC 3264 §8.4 inactive both ways.
        assert (await alice.get_media_info(call.id)).direction == "inactive"
        assert (await bob.get_media_info(bob_call.id)).direction == "inactive"
        assert (await bob.get_session(bob_call.id)).state is CallState.OnHold
        await alice.resume_session(call.id)
        await bob.resume_session(bob_call.id)
        assert (await alice.get_media_info(call.id)).direction == "sendrecv"
    assert trace.responses(491)  # RFC 3261 §14.1: one re-INVITE lost the race and was retried
