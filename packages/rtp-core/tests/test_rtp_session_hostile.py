"""RTP sessions on loopback against a hostile network (asyncio, uvloop, trio).

Hijack attempts from another port, remote addresses that would block the loop or
overflow a port number, send errors that must never reach the event loop.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable

import anyio
import pytest

from rvoip_rtp_core import (
    RtcpReceiverReport,
    RtpError,
    RtpSessionConfig,
    SrtpError,
    encode_rtcp,
    encode_rtp,
    open_rtp_session,
)
from rvoip_rtp_core import _open as open_module

pytestmark = pytest.mark.anyio

_CFG = RtpSessionConfig(local_host="127.0.0.1", rtcp_enabled=False)


async def _wait_for(predicate: Callable[[], object], what: str) -> None:
    try:
        with anyio.fail_after(5):
            while not predicate():
                await anyio.sleep(0.005)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def test_attacker_on_another_port_cannot_hijack_the_stream() -> None:
    """Bug: any packet with a new SSRC from any address re-latched the destination.

    A third party who could reach the RTP port sent one packet with a fresh SSRC and
    the session started streaming the call to it (hijack), or to a victim whose
    address it spoofed (reflection). Now the signalled peer latches at once and the
    source is locked: the attacker's packets are dropped, counted and not delivered.
    """
    received: list[bytes] = []
    async with (
        open_rtp_session(_CFG, on_packet=lambda p, t: received.append(p.payload)) as a,
        open_rtp_session(_CFG) as b,
    ):
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        b.send_payload(b"peer", 0)
        await _wait_for(lambda: received, "the peer's packet")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.bind(("127.0.0.1", 0))
            for seq in range(10):  # a perfectly consistent stream, but too late
                attacker.sendto(encode_rtp(0, seq, seq * 160, 0xBAD, b"evil"), a.local_rtp_address)
            await _wait_for(lambda: a.statistics().rtp_source_drops == 10, "the drops")
        assert a.remote_rtp_address == b.local_rtp_address
        assert received == [b"peer"]
        b.send_payload(b"still", 160)
        await _wait_for(lambda: len(received) == 2, "the peer again")


async def test_attacker_rtcp_is_dropped() -> None:
    """RTCP follows the RTP rule: a stranger's report neither latches nor is accounted."""
    async with open_rtp_session(RtpSessionConfig()) as a, open_rtp_session() as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        report = encode_rtcp([RtcpReceiverReport(0xBAD)])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.bind(("127.0.0.1", 0))
            attacker.sendto(report, a.local_rtcp_address)
            await _wait_for(lambda: a.statistics().rtcp_source_drops == 1, "the drop")
        assert a.remote_rtcp_address == b.local_rtcp_address
        assert a.statistics().rtcp_received == 0
        b.send_rtcp_report()
        await _wait_for(lambda: a.statistics().rtcp_received == 1, "the peer's report")
        assert a.last_activity() is not None


async def test_send_errors_never_reach_the_loop() -> None:
    """Bug: only OSError was caught around sendto.

    A destination port of 65536 (RTCP of ``m=audio 65535``) raised OverflowError from
    the RTCP timer: under trio it ended the task group, the process. Every error of
    every send is now counted and logged once. The bad destinations are forced past
    the validation here, as defence in depth.
    """
    cfg = RtpSessionConfig(rtcp_min_time=0.02)
    async with open_rtp_session(cfg) as a, open_rtp_session(_CFG) as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        a.core.latch.rtp_target = ("127.0.0.1", 65536)  # OverflowError
        a.send_payload(b"x", 0)
        assert a.send_errors == 1
        a.core.latch.rtp_target = ("127.0.0.1", -1)  # OverflowError too
        a.send_payload(b"x", 160)
        a.core.latch.rtp_target = ("bad", "port")  # type: ignore[assignment]  # TypeError
        a.send_payload(b"x", 320)
        assert a.send_errors == 3
        a.core.latch.rtcp_target = ("127.0.0.1", 65536)
        a.send_rtcp_report()
        assert a.send_errors == 4
        # The RTCP timer (a loop callback, or the trio task) keeps failing and keeps going.
        await _wait_for(lambda: a.send_errors >= 6, "scheduled reports")
        a.core.latch.rtp_target = b.local_rtp_address
        a.send_payload(b"ok", 480)
        with anyio.fail_after(5):
            packet = await b.receive()
        assert packet.payload == b"ok"
    assert a.closed  # the BYE at close failed too, quietly


async def test_remote_ports_are_validated() -> None:
    """Bug: ``m=audio 65535`` was accepted; RTCP then went to port 65536 (OverflowError)."""
    async with open_rtp_session(_CFG) as a:
        with pytest.raises(RtpError, match="no port for RTCP"):
            a.set_remote(("127.0.0.1", 65535))
        for port in (0, 65536, 70000, -5):
            with pytest.raises(RtpError, match="not in 1-65535"):
                a.set_remote(("127.0.0.1", port))
        with pytest.raises(RtpError, match="not in 1-65535"):
            a.set_remote(("127.0.0.1", 5000), ("127.0.0.1", 65536))
        assert a.remote_rtp_address is None
        a.set_remote(("127.0.0.1", 65535), ("127.0.0.1", 65534))
        assert a.remote_rtcp_address == ("127.0.0.1", 65534)


async def test_remote_must_be_an_ip_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: a host name in ``c=`` reached sendto, which resolved it on every packet,
    synchronously, inside the event loop. It is refused where the remote is set."""

    def no_dns(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"getaddrinfo called with {args!r}")

    async with open_rtp_session(_CFG) as a:
        monkeypatch.setattr(socket, "getaddrinfo", no_dns)
        for host in ("localhost", "media.example.com", "127.1", "::1"):  # ::1: other family
            with pytest.raises(RtpError):
                a.set_remote((host, 5000))
        assert a.remote_rtp_address is None
        a.set_remote(("127.0.0.1", 5000))
        a.send_payload(b"x", 0)


def test_config_refuses_bad_remotes() -> None:
    for remote in (("localhost", 5000), ("127.0.0.1", 0), ("127.0.0.1", 65535)):
        with pytest.raises(RtpError):
            RtpSessionConfig(remote_rtp=remote)
    with pytest.raises(RtpError):
        RtpSessionConfig(remote_rtp=("127.0.0.1", 5000), remote_rtcp=("example.org", 5001))
    with pytest.raises(RtpError, match="latch mode"):
        RtpSessionConfig(latch="sometimes")  # type: ignore[arg-type]
    RtpSessionConfig(remote_rtp=("127.0.0.1", 65535), rtcp_mux=True)


async def test_config_latch_setting_reaches_the_session() -> None:
    async with open_rtp_session(RtpSessionConfig(rtcp_enabled=False, latch="off")) as a:
        assert a.core.latch.mode == "off"
    async with open_rtp_session(_CFG) as a:
        assert a.core.latch.mode == "strict"


async def test_media_idle_for_an_inactivity_timeout() -> None:
    clock = [100.0]
    async with (
        open_rtp_session(_CFG, clock=lambda: clock[0]) as a,
        open_rtp_session(_CFG) as b,
    ):
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        clock[0] = 130.0
        assert a.media_idle() == 30.0  # nothing yet: since the session opened
        assert a.last_activity() is None
        b.send_payload(b"x", 0)
        with anyio.fail_after(5):
            packet = await a.receive()
        assert packet.payload == b"x"
        assert a.last_activity() == 130.0
        assert a.media_idle(now=145.0) == 15.0
        assert a.media_idle(now=145.0, rtcp_counts=False) == 15.0


def test_default_rng_is_the_os_csprng() -> None:
    """Bug: SSRCs and initial sequence numbers/timestamps came from one shared Mersenne
    Twister; a few hundred observed values let anyone predict the next sessions'."""
    assert isinstance(open_module._DEFAULT_RNG, random.SystemRandom)
    from rvoip_rtp_core import RtpSessionCore

    assert isinstance(RtpSessionCore().rng, random.SystemRandom)


class _FailingSrtp:
    """An SRTP context whose protection fails (e.g. a key past its packet limit)."""

    def protect_rtp(self, data: bytes) -> bytes:
        raise SrtpError("SRTP protect failed: key limit")

    def protect_rtcp(self, data: bytes) -> bytes:
        raise SrtpError("SRTCP protect failed: key limit")


async def test_srtp_protect_errors_never_reach_the_loop() -> None:
    """Bug: an SrtpError from protecting a scheduled RTCP report escaped the RTCP timer
    (under trio: the task group, the process); now it is counted like a send error."""
    async with open_rtp_session(RtpSessionConfig(rtcp_min_time=0.02)) as a:
        a.set_remote(("127.0.0.1", 9))
        a._srtp = _FailingSrtp()  # type: ignore[assignment]
        a.send_payload(b"x", 0)
        assert a.send_errors == 1
        await _wait_for(lambda: a.send_errors >= 3, "scheduled reports")
