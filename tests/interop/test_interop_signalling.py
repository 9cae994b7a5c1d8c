"""In-call signalling from SIPp: RFC 4733 DTMF, SIP INFO DTMF, OPTIONS, and REFER transfer."""

from __future__ import annotations

import re
from collections.abc import Callable

import anyio
import pytest
from interop_calls import Recorder
from interop_pcap import datagrams, rfc4733_rtp, write_pcap
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import CallState, DtmfReceived, SessionManagerBuilder
from rvoip_session_core.testing import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def run_call(
    sipp: Sipp,
    builder: Callable[..., SessionManagerBuilder],
    scenario: str,
    handler: Recorder,
    **kw: object,
) -> list[DtmfReceived]:
    """One SIPp call from ``scenario`` to a coordinator; returns the DTMF events it published."""
    async with await builder(handler).build() as coordinator:
        events = coordinator.events()
        result = await sipp.run(
            scenario,
            local_port=free_udp_port(),
            remote=coordinator.local_sip_address,
            calls=1,
            timeout=15,
            **kw,
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
        assert await wait_until(lambda: len(handler.ended) == 1)
        received = []
        while (event := events.receive_nowait()) is not None:
            if isinstance(event, DtmfReceived):
                received.append(event)
        return received


def only_call_digits(handler: Recorder) -> str:
    [call] = handler.established
    return handler.digits(call.id)


async def test_rfc4733_dtmf_from_a_pcap_reaches_on_dtmf(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    write_pcap(sipp.workdir / "pcap" / "dtmf_rfc4733.pcap", datagrams(rfc4733_rtp("123#", 101)))
    handler = Recorder()
    events = await run_call(sipp, builder, "uac_dtmf_pcap.xml", handler)
    assert only_call_digits(handler) == "123#"
    assert [(e.digit, e.method, e.duration_ms) for e in events] == [
        (d, "rfc4733", 100) for d in "123#"
    ]


async def test_rfc4733_dtmf_from_sipp_play_dtmf_reaches_on_dtmf(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    handler = Recorder()
    events = await run_call(sipp, builder, "uac_dtmf_sipp.xml", handler)
    assert only_call_digits(handler) == "7*#9"
    assert {e.method for e in events} == {"rfc4733"}


async def test_rfc4733_dtmf_from_a_second_rtp_source(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    # RFC 4733 identifies an event by its timestamp within one source's stream: the
    # second source's lower timestamps are new events, not retransmissions of old ones.
    # (Found by this suite; session-core now keeps one decoder per SSRC.)
    pcaps = sipp.workdir / "pcap"
    first = rfc4733_rtp("12", 101, ssrc=0x11111111, first_seq=100, first_ts=3_000_000)
    second = rfc4733_rtp("45", 101, ssrc=0x22222222, first_seq=30_000, first_ts=8_000)
    write_pcap(pcaps / "dtmf_first.pcap", datagrams(first))
    write_pcap(pcaps / "dtmf_second.pcap", datagrams(second))
    handler = Recorder()
    await run_call(sipp, builder, "uac_dtmf_ssrc.xml", handler)
    assert only_call_digits(handler) == "1245"


async def test_sip_info_dtmf_relay_reaches_on_dtmf(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    handler = Recorder()
    events = await run_call(sipp, builder, "uac_info.xml", handler)
    assert only_call_digits(handler) == "5#0"
    assert [(e.digit, e.method, e.duration_ms) for e in events] == [(d, "info", 160) for d in "5#0"]


async def test_options_ping_is_answered_200_with_allow(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    handler = Recorder()
    async with await builder(handler).build() as coordinator:
        result = await sipp.run(
            "uac_options.xml",
            local_port=free_udp_port(),
            remote=coordinator.local_sip_address,
            calls=3,
            rate=20,
            timeout=10,
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (3, 0), result.report()
        assert handler.incoming == []
        assert await coordinator.list_active_sessions() == []


def received_notify_bodies(messages: str) -> list[str]:
    """The sipfrag status lines of the NOTIFYs SIPp received, in order."""
    blocks = re.split(r"-{20,}", messages)
    return [
        m.group(1).strip()
        for block in blocks
        if "message received" in block and "\nNOTIFY " in block
        for m in [re.search(r"\r?\n\r?\n(SIP/2\.0 [^\r\n]*)", block)]
        if m is not None
    ]


async def test_sipp_refers_us_to_a_second_sipp(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    target_port = free_udp_port()
    async with sipp.serve(
        "uas_answer.xml", name="target", local_port=target_port, calls=1, timeout=15
    ) as target:
        refer_to = f"sip:carol@{HOST}:{target_port}"
        handler = Recorder()
        async with await builder(handler).build() as coordinator:
            result = await sipp.run(
                "uac_refer.xml",
                name="transferor",
                local_port=free_udp_port(),
                remote=coordinator.local_sip_address,
                calls=1,
                timeout=15,
                variables={"refer_to": refer_to},
            )
            assert result.returncode == 0, result.report()
            assert (result.successful, result.failed) == (1, 0), result.report()
            notified = received_notify_bodies(result.messages)
            assert notified[-1] == "SIP/2.0 200 OK", notified
            assert all(line.startswith("SIP/2.0 1") for line in notified[:-1]), notified
            assert [target for _, target in handler.transfers] == [refer_to]
            # The transferee's new call to the target is up; the transferor hung up on us.
            sessions = await coordinator.list_active_sessions()
            assert [(s.to, s.state) for s in sessions] == [(refer_to, CallState.Active)]
            assert "remote hangup" in handler.reasons()
            await coordinator.terminate_session(sessions[0].id)
            with anyio.fail_after(5):
                while await coordinator.list_active_sessions():
                    await anyio.sleep(0.02)
            target_result = await target.finish(20)
    assert target_result.returncode == 0, target_result.report()
    assert (target_result.successful, target_result.failed) == (1, 0), target_result.report()
