"""Early media and 100rel/PRACK against SIPp, both directions (issue 13)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from interop_calls import Recorder
from interop_pcap import datagrams, g711_tone_rtp, write_pcap
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_media_core import Codec
from rvoip_session_core import (
    CallDecision,
    CallState,
    SessionControl,
    SessionManagerBuilder,
    SessionRefreshed,
    tone_source,
)
from rvoip_session_core.testing import SipTrace, next_event, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def test_sipp_prack_our_reliable_183_then_we_answer(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """SIPp calls with ``Supported: 100rel``; we defer, send early media (a reliable 183
    with our SDP answer, a tone playing), SIPp PRACKs it, then we accept: 200, ACK, BYE."""
    handler = Recorder(CallDecision.Defer())
    async with await builder(handler).build() as coordinator:
        process, name = await sipp.start(
            "uac_prack_183.xml",
            local_port=free_udp_port(),
            remote=coordinator.local_sip_address,
            calls=1,
            timeout=10,
        )
        assert await wait_until(lambda: bool(handler.incoming), timeout=5)
        sid = handler.incoming[0].id
        assert await wait_until(
            lambda: coordinator.registry.get(sid).state is CallState.Ringing, timeout=5
        )
        await SessionControl.send_early_media(coordinator, sid)
        await coordinator.set_audio_source(sid, tone_source(600))
        assert (await coordinator.get_session(sid)).state is CallState.EarlyMedia
        # SIPp PRACKs the 183 (its scenario fails unless the PRACK gets its 200).
        await anyio.sleep(0.5)
        await coordinator.accept_incoming_call(sid)
        result = await sipp.finish(process, name, 15)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
    assert "PRACK" in result.messages
    assert handler.ended
    assert handler.ended[0][1] == "remote hangup"


async def test_sipp_reliable_183_with_early_media_then_200(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """SIPp answers our INVITE with a reliable 183 with SDP and plays RTP (a PCMU tone
    from a pcap) before its 200: we PRACK once, our call shows EarlyMedia and receives
    the RTP before the 200; the 200 carries another SDP (new port), which is applied;
    then we hang up."""
    write_pcap(
        sipp.workdir / "pcap" / "early_tone.pcap",
        datagrams(g711_tone_rtp(Codec.PCMU, 1000.0, 1.2)),
    )
    port = free_udp_port()
    media_port = free_udp_port(4)
    async with (
        sipp.serve(
            "uas_183_early.xml", local_port=port, media_port=media_port, calls=1, timeout=15
        ) as uas,
        await builder(Recorder(), "alice").build() as coordinator,
    ):
        session = await coordinator.create_outgoing_call(
            "sip:alice@127.0.0.1", f"sip:early@{HOST}:{port}"
        )
        assert await wait_until(
            lambda: coordinator.registry.get(session.id).state is CallState.EarlyMedia,
            timeout=5,
        )

        async def early_rtp() -> bool:
            stats = await coordinator.get_media_statistics(session.id)
            return stats is not None and stats.packets_received >= 20

        assert await wait_until(early_rtp, timeout=3)
        # Received while still early: SIPp sends its 200 only after 1.5 s of early media.
        assert (await coordinator.get_session(session.id)).state is CallState.EarlyMedia
        early = await coordinator.get_media_info(session.id)
        assert early.remote_rtp_address == (HOST, media_port)
        await coordinator.wait_for_answer(session.id, 5.0)
        assert (await coordinator.get_session(session.id)).state is CallState.Active
        # The 200's SDP differs from the 183's (version 2, another port): it is applied.
        answered = await coordinator.get_media_info(session.id)
        assert answered.remote_rtp_address == (HOST, media_port + 2)
        await coordinator.terminate_session(session.id)
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
    assert result.messages.count("PRACK sip:") == 1, result.report()


async def test_sipp_refusing_update_is_refreshed_by_reinvite(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """Issue 13: a peer that answers our UPDATE refresh 405 is refreshed by re-INVITE (same
    SDP, Session-Expires 90;refresher=uac) and the call stays up. The refresh is triggered
    at once with ``refresh_session`` (at half of SIPp's 90 s it would take 45 s)."""
    trace = SipTrace()
    port = free_udp_port()
    async with (
        sipp.serve("uas_timer_405.xml", local_port=port, calls=1, timeout=15) as uas,
        await builder(Recorder(), "alice").with_session_timer(90).build() as coordinator,
    ):
        trace.attach(coordinator, "alice")
        events = coordinator.events()
        session = await coordinator.create_outgoing_call(
            "sip:alice@127.0.0.1", f"sip:timer@{HOST}:{port}"
        )
        await coordinator.wait_for_answer(session.id, 5.0)
        assert await SessionControl.refresh_session(coordinator, session.id)
        refreshed = await next_event(events, SessionRefreshed, timeout=5)
        assert isinstance(refreshed, SessionRefreshed)
        assert (refreshed.method, refreshed.interval) == ("INVITE", 90)
        assert (await coordinator.get_session(session.id)).state is CallState.Active
        await coordinator.terminate_session(session.id)
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
    assert len(trace.requests("UPDATE")) == 1
    first, refresh = trace.requests("INVITE")
    assert refresh.body == first.body  # RFC 3264 §8: the unchanged session, same o= version


async def test_sipp_200_without_sdp_after_a_reliable_183_keeps_the_early_media(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """Bug (issue 13): the 183's SDP was never applied and a 2xx without SDP was read as an
    unusable answer (the call was hung up). RFC 3262 §5: the reliable 183 completed the
    offer/answer, so the 200 need not repeat it: the early media goes on as the call's."""
    write_pcap(
        sipp.workdir / "pcap" / "early_tone.pcap",
        datagrams(g711_tone_rtp(Codec.PCMU, 1000.0, 1.2)),
    )
    port = free_udp_port()
    media_port = free_udp_port(4)
    handler = Recorder()
    async with (
        sipp.serve(
            "uas_183_early_nosdp.xml",
            local_port=port,
            media_port=media_port,
            calls=1,
            timeout=15,
        ) as uas,
        await builder(handler, "alice").build() as coordinator,
    ):
        session = await coordinator.create_outgoing_call(
            "sip:alice@127.0.0.1", f"sip:early@{HOST}:{port}"
        )
        await coordinator.wait_for_answer(session.id, 5.0)
        assert (await coordinator.get_session(session.id)).state is CallState.Active
        info = await coordinator.get_media_info(session.id)
        assert info.remote_rtp_address == (HOST, media_port)
        stats = await coordinator.get_media_statistics(session.id)
        assert stats is not None
        assert stats.packets_received >= 20
        assert handler.ended == []
        await coordinator.terminate_session(session.id)
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
