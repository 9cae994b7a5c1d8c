"""The basic call over SIP/TCP with SIPp, both directions (SIPp ``-t t1`` and ``-t tn``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import SessionManagerBuilder
from rvoip_session_core.testing import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.mark.parametrize("mode", ["t1", "tn"])
async def test_sipp_uac_over_tcp(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder], mode: str
) -> None:
    # t1: every call on one TCP connection; tn: a connection per call.
    calls = 10
    handler = Recorder()
    async with await builder(handler).with_transport("tcp").build() as coordinator:
        result = await sipp.run(
            "uac",
            local_port=free_udp_port(),
            remote=coordinator.local_sip_address,
            calls=calls,
            rate=20,
            timeout=15,
            extra=["-t", mode, "-max_socket", "100"],
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (calls, 0), result.report()
        assert len(handler.established) == calls
        assert await wait_until(lambda: len(handler.ended) == calls)
        assert set(handler.reasons()) == {"remote hangup"}


async def test_our_uac_over_tcp_against_sipp_uas(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    calls = 3
    port = free_udp_port()
    handler = Recorder()
    async with (
        sipp.serve(
            "uas_answer.xml",
            local_port=port,
            calls=calls,
            timeout=15,
            extra=["-t", "t1", "-max_socket", "100"],
        ) as uas,
        await builder(handler, "alice").with_transport("tcp").build() as coordinator,
    ):
        for _ in range(calls):
            session = await coordinator.create_outgoing_call(
                "sip:alice@127.0.0.1", f"sip:service@{HOST}:{port};transport=tcp"
            )
            await coordinator.wait_for_answer(session.id, 5.0)
            await coordinator.terminate_session(session.id)
        assert await wait_until(lambda: len(handler.ended) == calls)
        assert set(handler.reasons()) == {"local hangup"}
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (calls, 0), result.report()
