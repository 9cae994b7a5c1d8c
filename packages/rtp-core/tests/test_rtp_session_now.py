"""open_rtp_session_now: a session opened and closed from plain callbacks of an asyncio loop."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import pytest

from rvoip_rtp_core import (
    PortAllocator,
    PortsExhaustedError,
    RtcpBye,
    RtcpPacket,
    RtpError,
    RtpPacket,
    RtpSession,
    RtpSessionClosedError,
    RtpSessionConfig,
    encode_rtp,
    open_rtp_session,
    open_rtp_session_now,
)

pytestmark = pytest.mark.anyio

_T = TypeVar("_T")
_CFG = RtpSessionConfig(local_host="127.0.0.1", rtcp_enabled=False)


async def _in_callback(fn: Callable[[], _T]) -> _T:
    """Run ``fn`` in a plain loop callback (no task, no sniffio context) and return its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def run() -> None:
        try:
            future.set_result(fn())
        except Exception as exc:
            future.set_exception(exc)

    loop.call_soon(run)
    return await future


_ASYNCIO_LOOPS: list[Any] = [pytest.param(("asyncio", {}), id="asyncio")]
if importlib.util.find_spec("uvloop") is not None:
    _ASYNCIO_LOOPS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop"))


@pytest.fixture(params=_ASYNCIO_LOOPS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """open_rtp_session_now is for asyncio-family loops: stdlib asyncio and uvloop."""
    return request.param


async def _wait_for(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.005)


async def test_exchange_statistics_and_bye_from_callbacks() -> None:
    allocator = PortAllocator(40000, 60000)
    cfg = RtpSessionConfig(port_allocator=allocator)
    seen: list[RtpPacket] = []
    rtcp: list[RtcpPacket] = []
    a = await _in_callback(lambda: open_rtp_session_now(cfg, on_packet=lambda p, t: seen.append(p)))
    b = await _in_callback(lambda: open_rtp_session_now(cfg))
    assert allocator.in_use == {a.local_rtp_address[1], b.local_rtp_address[1]}
    assert a.local_rtcp_address[1] == a.local_rtp_address[1] + 1
    a.set_remote(b.local_rtp_address)
    b.set_remote(a.local_rtp_address)
    a.set_rtcp_handler(lambda packets, t: rtcp.extend(packets))
    for i in range(10):
        a.send_payload(bytes([i]) * 160, i * 160, marker=i == 0)
        b.send_payload(bytes([50 + i]) * 160, i * 160)
    with anyio.fail_after(5):
        got = [await b.receive() for _ in range(10)]
    await _wait_for(lambda: len(seen) == 10)
    assert [p.payload[0] for p in got] == list(range(10))
    assert [p.payload[0] for p in seen] == list(range(50, 60))
    received = b.statistics().received
    assert received is not None
    assert (received.packets_received, received.packets_lost) == (9, 0)
    assert a.statistics().packets_sent == 10
    b_ssrc = b.ssrc
    await _in_callback(b.close)  # RTCP BYE, sockets closed, port released
    await _in_callback(b.close)  # idempotent
    assert b.closed
    assert allocator.in_use == {a.local_rtp_address[1]}
    await _wait_for(lambda: any(isinstance(p, RtcpBye) for p in rtcp))
    assert RtcpBye((b_ssrc,)) in rtcp
    with pytest.raises(RtpSessionClosedError):
        await b.receive()
    a.close()
    assert not allocator.in_use


async def test_one_config_many_cnames() -> None:
    """``cname=`` names each session while many share one frozen config (no per-call build)."""
    cfg = RtpSessionConfig(local_host="127.0.0.1", rtcp_enabled=False, cname="shared")
    a = await _in_callback(lambda: open_rtp_session_now(cfg, cname="call-1"))
    b = await _in_callback(lambda: open_rtp_session_now(cfg, cname="call-2"))
    c = await _in_callback(lambda: open_rtp_session_now(cfg))
    try:
        assert (a.core.cname, b.core.cname, c.core.cname) == ("call-1", "call-2", "shared")
        assert a.config is b.config is cfg
    finally:
        for session in (a, b, c):
            session.close()


async def test_handler_may_close_its_own_session() -> None:
    closed: list[RtpSession] = []

    def close_on_first(packet: RtpPacket, arrival: float) -> None:
        closed[0].close()

    b = open_rtp_session_now(_CFG, on_packet=close_on_first)
    closed.append(b)
    async with open_rtp_session(_CFG) as a:
        a.set_remote(b.local_rtp_address)
        for i in range(5):
            a.send_payload(b"x", i * 160)
        await _wait_for(lambda: b.closed)
        await anyio.sleep(0.02)
        assert b.receive_errors == 0
        assert b.handler_errors == 0


async def test_rtcp_reports_on_the_loop_timer() -> None:
    cfg = RtpSessionConfig(rtcp_min_time=0.05, rtcp_mux=True)
    a = open_rtp_session_now(cfg)
    b = open_rtp_session_now(cfg)
    try:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        a.send_payload(b"s", 0)
        await _wait_for(lambda: b.statistics().rtcp_received >= 2)
        assert a.statistics().rtcp_sent >= 2
    finally:
        a.close()
        b.close()


async def test_port_errors_match_the_async_opener() -> None:
    allocator = PortAllocator(40000, 40002)
    first = open_rtp_session_now(RtpSessionConfig(port_allocator=allocator, rtcp_enabled=False))
    try:
        with pytest.raises(PortsExhaustedError):
            open_rtp_session_now(RtpSessionConfig(port_allocator=allocator))
        with pytest.raises(OSError):
            open_rtp_session_now(RtpSessionConfig(port=first.local_rtp_address[1]))
    finally:
        first.close()
    assert not allocator.in_use


@pytest.mark.parametrize("anyio_backend", [pytest.param(("trio", {}), id="trio")])
async def test_refused_without_an_asyncio_loop() -> None:
    with pytest.raises(RtpError, match="use open_rtp_session under trio"):
        open_rtp_session_now(_CFG)


def test_refused_outside_any_loop() -> None:
    with pytest.raises(RtpError, match="running asyncio or uvloop event loop"):
        open_rtp_session_now(_CFG)


class _NoReaderLoop(asyncio.SelectorEventLoop):
    """Like Windows' proactor loop: no public add_reader / remove_reader."""

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:  # type: ignore[override]
        raise NotImplementedError

    def remove_reader(self, fd: Any) -> bool:
        raise NotImplementedError


def test_loop_without_add_reader_falls_back_to_transports() -> None:
    async def main() -> None:
        with pytest.raises(RtpError, match="no add_reader"):
            open_rtp_session_now(_CFG)
        cfg = RtpSessionConfig(rtcp_min_time=0.05)
        rtcp: list[RtcpPacket] = []
        async with open_rtp_session(cfg) as a:
            a.set_rtcp_handler(lambda packets, t: rtcp.extend(packets))
            async with open_rtp_session(cfg) as b:
                a.set_remote(b.local_rtp_address)
                b.set_remote(a.local_rtp_address)
                for i in range(5):
                    a.send_payload(bytes([i]), i * 160)
                with anyio.fail_after(5):
                    got = [await b.receive() for _ in range(5)]
                assert [p.payload for p in got] == [bytes([i]) for i in range(5)]
                b_ssrc = b.ssrc
            await _wait_for(lambda: RtcpBye((b_ssrc,)) in rtcp)
            assert b.closed

    loop = _NoReaderLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_transport_path_drops_strangers_and_never_raises_send_errors() -> None:
    """The datagram-transport fallback shares the latch and the send-error handling.

    Bug: only OSError was caught around sendto; an OverflowError (RTCP port 65536)
    escaped from the RTCP timer callback. And any new SSRC re-latched the destination.
    """

    async def main() -> None:
        cfg = RtpSessionConfig(rtcp_min_time=0.02)
        async with open_rtp_session(cfg) as a, open_rtp_session(_CFG) as b:
            a.set_remote(b.local_rtp_address)
            b.set_remote(a.local_rtp_address)
            b.send_payload(b"peer", 0)  # the signalled peer latches at once
            with anyio.fail_after(5):
                assert (await a.receive()).payload == b"peer"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
                attacker.bind(("127.0.0.1", 0))
                for seq in range(6):
                    attacker.sendto(encode_rtp(0, seq, 0, 0xBAD, b"x"), a.local_rtp_address)
                await _wait_for(lambda: a.statistics().rtp_source_drops == 6)
            assert a.remote_rtp_address == b.local_rtp_address
            a.core.latch.rtp_target = ("127.0.0.1", 65536)  # forced past the validation
            a.core.latch.rtcp_target = ("127.0.0.1", 65536)
            a.send_payload(b"x", 0)
            await _wait_for(lambda: a.send_errors >= 3)  # and the RTCP timer's reports

    loop = _NoReaderLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
