"""Interop with SIPp's built-in scenarios over UDP loopback (skipped without ``sipp``)."""

from __future__ import annotations

import shutil
import socket

import anyio
import pytest

from rvoip_dialog_core import (
    AckReceived,
    DialogConfirmed,
    DialogEndpoint,
    DialogEvent,
    DialogTerminated,
    IncomingInvite,
    ResponseForRequest,
    TerminationReason,
)

SIPP = shutil.which("sipp")
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(SIPP is None, reason="sipp is not installed"),
]
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


def free_udp_port() -> int:
    """An ephemeral UDP port on 127.0.0.1 (released again for SIPp to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_sipp_uac_calls_our_uas(anyio_backend: str) -> None:
    """SIPp ``uac``: INVITE, 180/200 from us, ACK, BYE; three calls, all successful."""
    assert SIPP is not None
    seen: list[DialogEvent] = []
    endpoint: list[DialogEndpoint] = []

    def on_event(event: DialogEvent) -> None:
        seen.append(event)
        if isinstance(event, IncomingInvite):
            endpoint[0].respond(event.ref, 180)
            endpoint[0].respond(event.ref, 200, body=SDP)

    async with DialogEndpoint(user="bob", on_event=on_event) as ep:
        endpoint.append(ep)
        target = f"127.0.0.1:{ep.local().port}"
        args = [SIPP, "-sn", "uac", "-m", "3", "-r", "10", "-i", "127.0.0.1", "-p", "0"]
        args += ["-timeout", "20", "-nostdin", target]
        with anyio.fail_after(30):
            result = await anyio.run_process(args, check=False)
        assert result.returncode == 0, result.stdout.decode(errors="replace")[-2000:]
        assert sum(isinstance(e, AckReceived) for e in seen) == 3
        ends = [e for e in seen if isinstance(e, DialogTerminated)]
        assert [e.reason for e in ends] == [TerminationReason.REMOTE_BYE] * 3
        assert len(ep.layer) == 0


@pytest.mark.anyio
async def test_our_uac_calls_sipp_uas(anyio_backend: str) -> None:
    """SIPp ``uas``: our INVITE gets 180/200, we ACK and hang up; SIPp counts a success."""
    assert SIPP is not None
    port = free_udp_port()
    args = [SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin"]
    async with await anyio.open_process([*args, "-timeout", "20"]) as proc:
        await anyio.sleep(0.3)  # let SIPp bind
        async with DialogEndpoint(user="alice") as ep:
            with anyio.fail_after(10):
                ep.invite(f"sip:service@127.0.0.1:{port}", from_="sip:alice@127.0.0.1", body=SDP)
                async for event in ep.events():
                    if isinstance(event, DialogConfirmed):
                        ep.bye(event.dialog_id)
                    if isinstance(event, ResponseForRequest):
                        assert event.response.status == 200
                        break
        with anyio.fail_after(15):
            assert await proc.wait() == 0
