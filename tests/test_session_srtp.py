"""SRTP (SDES, RFC 4568) in calls between two rvoip endpoints over loopback.

Each pair of ``with_srtp`` modes: SRTP when both can, RTP when one is "off" and the
other "optional", a clear failure when one requires what the other refuses. With SRTP
the audio (a tone) is heard at the far end while the datagrams on the wire are not the
tone: their payload is ciphertext that only the negotiated key turns back into audio.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rvoip_media_core import Codec, decode, detect_tone
from rvoip_rtp_core import RtpPacket, SrtpContext, SrtpSessionKeys
from rvoip_session_core import (
    CallDecision,
    CallEstablished,
    CallFailed,
    CallHandler,
    CallSession,
    Decision,
    IncomingCall,
    SessionControl,
    SessionCoordinator,
    SessionManagerBuilder,
    tone_source,
)
from rvoip_session_core._offer_answer import SrtpMode, build_answer, parse_offer
from rvoip_session_core.testing import (
    VirtualCalls,
    count_tone_frames,
    loopback_builder,
    next_event,
    uri_of,
    wait_until,
)

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])]


def _builder(
    user: str, mode: SrtpMode, handler: CallHandler | None = None
) -> SessionManagerBuilder:
    return loopback_builder(user, handler).with_srtp(mode)


def _media(coordinator: SessionCoordinator, session_id: str) -> Any:
    """The call's media handle (test-only reach into the coordinator)."""
    return coordinator._registry.get(session_id).media


async def _call(alice: SessionCoordinator, bob: SessionCoordinator) -> tuple[str, str]:
    call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
    await alice.wait_for_answer(call.id, 5)
    sessions: list[str] = []

    async def bob_has_it() -> bool:
        sessions[:] = [s.id for s in await bob.list_active_sessions()]
        return len(sessions) == 1

    assert await wait_until(bob_has_it)
    return call.id, sessions[0]


async def _tones_both_ways(
    alice: SessionCoordinator, a_id: str, bob: SessionCoordinator, b_id: str
) -> None:
    await alice.set_audio_source(a_id, tone_source(1000))
    await bob.set_audio_source(b_id, tone_source(600))
    hits, total = await count_tone_frames(bob, b_id, 1000, 0.6)
    assert hits > total // 2
    hits, total = await count_tone_frames(alice, a_id, 600, 0.6)
    assert hits > total // 2


def _capture(coordinator: SessionCoordinator, session_id: str) -> list[bytes]:
    wire: list[bytes] = []
    rtp = _media(coordinator, session_id).rtp

    def tap(datagram: bytes) -> bool:
        if len(wire) < 50:
            wire.append(datagram)
        return True

    rtp.outgoing_filter = tap
    return wire


def _tone_frames(payloads: list[bytes], frequency: float) -> int:
    return sum(bool(detect_tone(decode(Codec.PCMU, p), frequency)) for p in payloads)


@pytest.mark.parametrize(
    ("caller", "callee"),
    [
        ("required", "required"),
        ("optional", "required"),
        ("required", "optional"),
        ("optional", "optional"),
    ],
)
async def test_srtp_call_carries_audio_and_the_wire_is_not_plain_rtp(
    caller: SrtpMode, callee: SrtpMode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "rvoip_session_core.media")
    async with (
        await _builder("alice", caller).with_preferred_codecs(["PCMU"]).build() as alice,
        await _builder("bob", callee).with_preferred_codecs(["PCMU"]).build() as bob,
    ):
        events = alice.events()
        a_id, b_id = await _call(alice, bob)
        established = await next_event(events, CallEstablished)
        assert isinstance(established, CallEstablished)
        assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in (established.remote_sdp or "")
        proto = "RTP/SAVP" if caller == "required" else "RTP/AVP"
        assert f" {proto} " in (established.local_sdp or "")
        media = _media(alice, a_id)
        keys: SrtpSessionKeys = media.negotiated.srtp
        assert keys is not None
        assert media.rtp.srtp_active
        wire = _capture(alice, a_id)
        await _tones_both_ways(alice, a_id, bob, b_id)
        assert len(wire) >= 10
        packets = [RtpPacket.parse(d) for d in wire]
        # The wire payload is ciphertext plus a 10-byte authentication tag: not the tone.
        assert all(len(p.payload) == 160 + 10 for p in packets)
        assert _tone_frames([p.payload[:160] for p in packets], 1000) == 0
        # With the negotiated key (bob's receive key) the same datagrams are the tone.
        bob_view = SrtpContext(keys.remote, keys.local)
        clear = [RtpPacket.parse(bob_view.unprotect_rtp(d)).payload for d in wire]
        assert _tone_frames(clear, 1000) > len(clear) // 2
        # The call's reprs never show a key.
        text = repr(alice._registry.get(a_id)) + repr(established)
        assert keys.local.inline_key not in text
        assert keys.remote.inline_key not in text
        assert "inline:<redacted>" in text
        # RTCP goes as SRTCP with the same master keys (RFC 3711 §3.4, §4.3).
        bob_rtp = _media(bob, b_id).rtp
        before = bob_rtp.statistics().rtcp_received
        await alice.send_rtcp_report(a_id)
        assert await wait_until(lambda: bob_rtp.statistics().rtcp_received > before)
        assert media.rtp.statistics().srtp_failures == 0
        assert bob_rtp.statistics().srtp_failures == 0
        stats = await alice.get_media_statistics(a_id)
        assert stats is not None
        assert stats.srtp_failures == 0
        assert (await alice.get_media_info(a_id)).srtp_suite == "AES_CM_128_HMAC_SHA1_80"
        await alice.terminate_session(a_id)
    # Over UDP the SDES keys crossed the network in clear: one warning per coordinator
    # (alice and bob), none with a key in it.
    warnings = [r for r in caplog.records if "unencrypted SIP transport" in r.getMessage()]
    assert len(warnings) == 2
    assert keys.local.inline_key not in caplog.text


async def test_optional_caller_and_off_callee_fall_back_to_plain_rtp() -> None:
    async with (
        await _builder("alice", "optional").with_preferred_codecs(["PCMU"]).build() as alice,
        await _builder("bob", "off").with_preferred_codecs(["PCMU"]).build() as bob,
    ):
        a_id, b_id = await _call(alice, bob)
        media = _media(alice, a_id)
        assert media.negotiated.srtp is None
        assert not media.rtp.srtp_active
        wire = _capture(alice, a_id)
        await _tones_both_ways(alice, a_id, bob, b_id)
        payloads = [RtpPacket.parse(d).payload for d in wire]
        assert all(len(p) == 160 for p in payloads)
        assert _tone_frames(payloads, 1000) > len(payloads) // 2


async def test_off_caller_and_optional_callee_use_plain_rtp() -> None:
    async with (
        await _builder("alice", "off").build() as alice,
        await _builder("bob", "optional").build() as bob,
    ):
        a_id, b_id = await _call(alice, bob)
        assert _media(alice, a_id).negotiated.srtp is None
        assert _media(bob, b_id).negotiated.srtp is None
        await _tones_both_ways(alice, a_id, bob, b_id)


@pytest.mark.parametrize(("caller", "callee"), [("required", "off"), ("off", "required")])
async def test_required_against_off_is_refused_with_488_naming_srtp(
    caller: SrtpMode, callee: SrtpMode
) -> None:
    async with (
        await _builder("alice", caller).build() as alice,
        await _builder("bob", callee).build() as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 5)
        assert info.value.status == 488
        assert "SRTP" in str(info.value)


class PlainAnswer(CallHandler):
    """A broken peer: answers an RTP/SAVP offer with plain RTP/AVP and no a=crypto."""

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        assert call.sdp is not None
        offer = parse_offer(call.sdp.replace("RTP/SAVP", "RTP/AVP"))
        return CallDecision.Accept(str(build_answer(offer, "127.0.0.1", 40000, sess_id=7)))

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        return None


async def test_required_offer_answered_without_crypto_fails_the_call_naming_srtp() -> None:
    """Our RTP/SAVP offer answered in clear: the call fails and CallFailed says SRTP.

    Bug found here: a caller whose media negotiation failed on the 200 hung up with the
    right reason, but the callee's BYE (it also refuses the mismatch) crossed ours and
    ended the call first, so ``wait_for_answer`` reported "remote hangup" and the reason
    was lost. The negotiation failure is now the call's final reason.
    """
    async with (
        await _builder("alice", "required").build() as alice,
        await _builder("bob", "off", PlainAnswer()).build() as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        with pytest.raises(CallFailed, match="SRTP is required but the answer"):
            await alice.wait_for_answer(call.id, 5)


async def test_rekey_on_update_and_audio_through_hold_and_resume() -> None:
    """A re-INVITE with fresh keys (update_media) re-keys both ends; hold/resume keep SRTP."""
    async with (
        await _builder("alice", "required").build() as alice,
        await _builder("bob", "required").build() as bob,
    ):
        a_id, b_id = await _call(alice, bob)
        before: SrtpSessionKeys = _media(alice, a_id).negotiated.srtp
        await alice.update_media(a_id)
        after: SrtpSessionKeys = _media(alice, a_id).negotiated.srtp
        assert after.local != before.local  # our new offer carried new keys
        assert after.remote == before.remote  # bob kept his key for the same suite
        assert _media(bob, b_id).negotiated.srtp.remote == after.local
        await _tones_both_ways(alice, a_id, bob, b_id)
        await SessionControl.hold_session(alice, a_id)
        await SessionControl.resume_session(alice, a_id)
        assert _media(alice, a_id).rtp.srtp_active
        await _tones_both_ways(alice, a_id, bob, b_id)
        assert _media(alice, a_id).rtp.statistics().srtp_failures == 0
        assert _media(bob, b_id).rtp.statistics().srtp_failures == 0


async def test_the_in_memory_network_refuses_srtp_with_a_clear_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """VirtualCalls' media has no SRTP: a call that negotiates it does not connect, and
    the log says why; it never sends plain RTP after promising SRTP."""
    async with VirtualCalls() as net:
        alice_builder = net.builder("alice", t1=0.05).with_srtp("required")
        bob_builder = net.builder("bob", t1=0.05).with_srtp("required")
        async with net.coordinator(alice_builder) as alice, net.coordinator(bob_builder) as bob:
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
            with pytest.raises(CallFailed):
                await alice.wait_for_answer(call.id, 10)
    assert "SRTP: this media backend cannot encrypt" in caplog.text
