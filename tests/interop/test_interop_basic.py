"""Basic calls with SIPp: built-in ``uac``/``uac_pcap`` against us, our UAC against ``uas``.

Also the basic call with ``-lost 10``: SIPp drops a tenth of the messages it sends and
receives, so both stacks must recover by retransmission, still with 0 failed calls. That
run uses scenarios/uac_basic.xml, which matches responses to their transaction: the
built-in ``uac`` takes any 200 after its BYE as the BYE's answer, so when both its ACK
and its BYE are lost, a retransmitted 200 of the INVITE "completes" its call while our
side never saw the BYE (it then ends the call itself after 64*T1 without ACK).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from interop_calls import MediaMonitor, Recorder
from interop_pcap import datagrams, g711_tone_rtp, rfc4733_rtp, write_pcap
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_media_core import Codec
from rvoip_session_core import CallState, SessionManagerBuilder
from rvoip_session_core.testing import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_sipp_uac_calls_auto_answer(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    calls = 20
    handler = Recorder()
    async with await builder(handler).build() as coordinator:
        result = await sipp.run(
            "uac",
            local_port=free_udp_port(),
            remote=coordinator.local_sip_address,
            calls=calls,
            rate=40,
            timeout=20,
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (calls, 0), result.report()
        assert len(handler.incoming) == calls
        assert len(handler.established) == calls
        with anyio.fail_after(5):
            while len(handler.ended) < calls:
                await anyio.sleep(0.02)
        assert set(handler.reasons()) == {"remote hangup"}
        assert await coordinator.list_active_sessions() == []
        stats = await coordinator.get_stats()
        assert (stats.incoming_calls, stats.failed_sessions) == (calls, 0)


async def test_sipp_uac_pcap_g711_audio_and_dtmf_reach_us(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    # The built-in uac_pcap plays pcap/g711a.pcap then pcap/dtmf_2833_1.pcap from its
    # working directory: made here, a 1 kHz PCMA tone and an RFC 4733 "1".
    tone_seconds = 2.0
    write_pcap(
        sipp.workdir / "pcap" / "g711a.pcap",
        datagrams(g711_tone_rtp(Codec.PCMA, 1000.0, tone_seconds)),
    )
    write_pcap(sipp.workdir / "pcap" / "dtmf_2833_1.pcap", datagrams(rfc4733_rtp("1")))
    calls = 3
    handler = Recorder()
    async with await builder(handler).build() as coordinator:
        monitor = MediaMonitor(coordinator, tone_hz=1000.0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(monitor.run, tg)
            result = await sipp.run(
                "uac_pcap",
                local_port=free_udp_port(),
                remote=coordinator.local_sip_address,
                calls=calls,
                rate=10,
                timeout=25,
            )
            tg.cancel_scope.cancel()
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (calls, 0), result.report()
        assert len(handler.established) == calls
        expected = round(tone_seconds / 0.02)
        for call in handler.established:
            media = monitor.media(call.id)
            assert media.codec == "PCMA", media
            # The whole tone arrived on loopback (RFC 3550 A.1: the packet that starts the
            # source's probation is not counted as received).
            assert media.packets_received >= expected - 1, media
            # Decoded audio carries the tone for (nearly) the whole capture.
            assert media.tone_frames >= expected * 3 // 4, media
            assert handler.digits(call.id) == "1"


async def test_our_uac_against_sipp_uas(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    calls = 3
    port = free_udp_port()
    async with sipp.serve("uas", local_port=port, calls=calls, timeout=25) as uas:
        handler = Recorder()
        async with await builder(handler, "alice").build() as coordinator:
            for _ in range(calls):
                session = await coordinator.create_outgoing_call(
                    "sip:alice@127.0.0.1", f"sip:service@{HOST}:{port}"
                )
                await coordinator.wait_for_answer(session.id, 5.0)
                assert (await coordinator.get_session(session.id)).state is CallState.Active
                info = await coordinator.get_media_info(session.id)
                assert (info.codec, info.payload_type) == ("PCMU", 0)
                await coordinator.terminate_session(session.id)
            assert await wait_until(lambda: len(handler.ended) == calls)
            assert set(handler.reasons()) == {"local hangup"}
            result = await uas.finish(30)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (calls, 0), result.report()


async def test_sipp_uac_with_ten_percent_loss_recovers_by_retransmission(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder], tmp_path: Path
) -> None:
    calls = 30
    handler = Recorder()
    async with await builder(handler).build() as coordinator:
        result = await sipp.run(
            "uac_basic.xml",
            local_port=free_udp_port(),
            remote=coordinator.local_sip_address,
            calls=calls,
            rate=30,
            timeout=40,
            extra=["-lost", "10"],
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (calls, 0), result.report()
        assert result.losses > 0, result.report()
        assert len(handler.established) == calls
        with anyio.fail_after(10):
            while await coordinator.list_active_sessions():
                await anyio.sleep(0.05)


async def test_our_uac_against_sipp_uas_with_ten_percent_loss(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    # Our client side recovers: INVITE and BYE retransmitted, ACK re-sent for each
    # retransmitted 200 (RFC 3261 §13.2.2.4). uas_answer_lossy.xml is the built-in uas
    # plus an answer to a repeated INVITE, which the built-in one aborts the call on
    # when both its 180 and its 200 were dropped (see docs/interop.md); it keeps each
    # finished call for 4 s, long enough to answer a retransmitted BYE whose 200 SIPp
    # dropped.
    calls = 15
    port = free_udp_port()
    # With 10 % loss both ways an INVITE may need several retransmissions (0.5, 1, 2, 4 s
    # ...): each answer is waited for up to Timer B (64*T1 = 32 s, RFC 3261 §17.1.1.2), and
    # SIPp's own global timeout leaves room for a few such calls.
    timer_b = 64 * 0.5
    async with sipp.serve(
        "uas_answer_lossy.xml", local_port=port, calls=calls, timeout=120, extra=["-lost", "10"]
    ) as uas:
        handler = Recorder()
        async with await builder(handler, "alice").build() as coordinator:
            for _ in range(calls):
                session = await coordinator.create_outgoing_call(
                    "sip:alice@127.0.0.1", f"sip:service@{HOST}:{port}"
                )
                await coordinator.wait_for_answer(session.id, timer_b + 1.0)
                await coordinator.terminate_session(session.id)
            # The last BYE may need retransmissions too (Timer F, also 64*T1).
            assert await wait_until(lambda: len(handler.ended) == calls, timeout=timer_b + 1.0)
            assert set(handler.reasons()) == {"local hangup"}
            # A BYE whose 200 SIPp dropped is still being retransmitted: stay up until SIPp
            # has seen every call through.
            result = await uas.finish(125)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (calls, 0), result.report()
    # The loss was real: SIPp dropped messages, so some were recovered by retransmission.
    assert result.losses > 0, result.report()


async def test_sipp_late_offer_gets_our_offer_in_the_200(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    handler = Recorder()
    media_port = free_udp_port(4)
    async with await builder(handler).build() as coordinator:
        seen: list[tuple[str | None, tuple[str, int] | None]] = []

        async def watch() -> None:
            while True:
                for session in await coordinator.list_active_sessions():
                    if session.state is CallState.Active:
                        info = await coordinator.get_media_info(session.id)
                        seen.append((info.codec, info.remote_rtp_address))
                await anyio.sleep(0.02)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            result = await sipp.run(
                "uac_late_offer.xml",
                local_port=free_udp_port(),
                remote=coordinator.local_sip_address,
                media_port=media_port,
                calls=1,
                timeout=10,
            )
            tg.cancel_scope.cancel()
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
        # The answer in SIPp's ACK was applied: PCMU toward SIPp's media port.
        assert ("PCMU", (HOST, media_port)) in seen, seen
