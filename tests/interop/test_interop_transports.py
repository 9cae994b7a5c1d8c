"""One ``rvoip``-style coordinator on UDP and TCP at once (RFC 3261 §18) against SIPp, and
a request over 1,300 bytes to a UDP target moving to TCP (RFC 3261 §18.1.1)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import SessionManagerBuilder
from rvoip_session_core.testing import SipTrace, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def test_sipp_over_udp_and_tcp_at_once_against_one_coordinator(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """Issue 16: a coordinator served one transport. Now two SIPp UACs, one over UDP and
    one over TCP, call the same coordinator at the same SIP port at the same time."""
    calls = 10
    handler = Recorder()
    async with await builder(handler).build() as coordinator:
        remote = coordinator.local_sip_address
        udp = await sipp.start(
            "uac", local_port=free_udp_port(), remote=remote, calls=calls, rate=20, timeout=20
        )
        tcp = await sipp.start(
            "uac",
            local_port=free_udp_port(),
            remote=remote,
            calls=calls,
            rate=20,
            timeout=20,
            extra=["-t", "t1", "-max_socket", "100"],
        )
        results = [await sipp.finish(*udp, 30), await sipp.finish(*tcp, 30)]
        for result in results:
            assert result.returncode == 0, result.report()
            assert (result.successful, result.failed) == (calls, 0), result.report()
        assert len(handler.established) == 2 * calls
        assert await wait_until(lambda: len(handler.ended) == 2 * calls)
        stats = coordinator.sip_stats()
        assert stats["udp_received"] > 0
        assert stats["tcp_received"] > 0


async def test_an_invite_over_1300_bytes_to_a_udp_target_goes_over_tcp(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """RFC 3261 §18.1.1: our INVITE to ``sip:service@HOST:PORT`` (UDP by default) is over
    1,300 bytes, so it leaves over TCP, with a TCP Via; SIPp listens on TCP only."""
    port = free_udp_port()
    handler = Recorder()
    trace = SipTrace()
    padding = "".join(f"a=x-padding-{n}:{'p' * 60}\r\n" for n in range(20))
    async with (
        sipp.serve(
            "uas_answer.xml",
            local_port=port,
            calls=1,
            timeout=15,
            extra=["-t", "t1", "-max_socket", "100"],
        ) as uas,
        await builder(handler, "alice").build() as coordinator,
    ):
        trace.attach(coordinator, "alice")
        offer = (
            f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {free_udp_port()} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n{padding}"
        )
        with anyio.fail_after(20):
            session = await coordinator.create_outgoing_call(
                f"sip:alice@{HOST}", f"sip:service@{HOST}:{port}", offer
            )
            await coordinator.wait_for_answer(session.id, 5.0)
            await coordinator.terminate_session(session.id)
        assert await wait_until(lambda: len(handler.ended) == 1)
        assert coordinator.sip_stats()["udp_to_tcp"] == 1
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    invite = trace.requests("INVITE")[0]
    assert len(invite.encode()) > 1300
    assert invite.top_via.transport == "TCP"
