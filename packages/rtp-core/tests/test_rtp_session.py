"""Two RTP sessions on loopback, on asyncio and trio: exchange, latching, mux, RTCP, SRTP."""

from __future__ import annotations

import contextlib
import random
import secrets
import socket
from collections.abc import Callable

import anyio
import pytest

from rvoip_rtp_core import (
    PortAllocator,
    PortsExhaustedError,
    RtpPacket,
    RtpSession,
    RtpSessionClosedError,
    RtpSessionConfig,
    SrtpKeyParams,
    SrtpSessionKeys,
    encode_rtp,
    open_rtp_session,
)

pytestmark = pytest.mark.anyio

_CFG = RtpSessionConfig(local_host="127.0.0.1", rtcp_enabled=False)


async def _receive_n(session: RtpSession, n: int) -> list[RtpPacket]:
    out = []
    with anyio.fail_after(5):
        for _ in range(n):
            out.append(await session.receive())
    return out


async def test_exchange_both_ways() -> None:
    async with open_rtp_session(_CFG) as a, open_rtp_session(_CFG) as b:
        assert a.local_rtp_address[1] % 2 == 0
        assert a.local_rtcp_address[1] == a.local_rtp_address[1] + 1
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        for i in range(20):
            a.send_payload(bytes([i]) * 160, i * 160, marker=i == 0)
            b.send_payload(bytes([100 + i]) * 160, i * 160)
        got_b = await _receive_n(b, 20)
        got_a = await _receive_n(a, 20)
        assert [p.payload[0] for p in got_b] == list(range(20))
        assert [p.payload[0] for p in got_a] == list(range(100, 120))
        assert got_b[0].marker
        assert {p.ssrc for p in got_b} == {a.ssrc}
        stats = b.statistics().received
        assert stats is not None
        assert (stats.packets_received, stats.packets_lost) == (19, 0)
        assert a.statistics().packets_sent == 20


async def test_packet_handler_and_queue_drops() -> None:
    cfg = RtpSessionConfig(rtcp_enabled=False, receive_queue_size=4)
    seen: list[tuple[int, float]] = []
    async with open_rtp_session(cfg) as a, open_rtp_session(cfg) as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        for i in range(10):
            a.send_payload(b"q", i * 160)
        with anyio.fail_after(5):
            while b.statistics().receive_queue_drops < 6:
                await anyio.sleep(0.01)
        assert [p.payload for p in await _receive_n(b, 4)] == [b"q"] * 4
        b.set_packet_handler(lambda p, t: seen.append((p.sequence_number, t)))
        a.send_payload(b"h", 1600)
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.01)
        assert len(seen) == 1
        assert b.statistics().receive_queue_drops == 6


async def test_symmetric_rtp_latches_to_source() -> None:
    """The peer's packets come from an address other than the one signalled (a NAT).

    Strict latching: the consistent stream latches after the probation's packets (the
    ones before are dropped), within the probation time.
    """
    async with open_rtp_session(_CFG) as a, open_rtp_session(_CFG) as b:
        a.set_remote(("127.0.0.1", 9))  # wrong address from "SDP"
        b.set_remote(a.local_rtp_address)
        for i in range(4):
            b.send_payload(b"hello", i * 160)
        [first] = await _receive_n(a, 1)
        assert first.sequence_number == (b.core.next_sequence_number - 1) & 0xFFFF
        assert a.remote_rtp_address == b.local_rtp_address
        assert a.statistics().rtp_source_drops == 3
        a.send_payload(b"back", 0)
        [p] = await _receive_n(b, 1)
        assert p.payload == b"back"


async def test_rtcp_mux_and_rtt() -> None:
    cfg = RtpSessionConfig(rtcp_mux=True)
    async with open_rtp_session(cfg) as a, open_rtp_session(cfg) as b:
        assert a.local_rtcp_address == a.local_rtp_address
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        for i in range(5):
            a.send_payload(b"m" * 20, i * 160)
        await _receive_n(b, 5)
        a.send_rtcp_report()  # SR
        with anyio.fail_after(5):
            while b.statistics().rtcp_received == 0:
                await anyio.sleep(0.005)
        b.send_rtcp_report()  # RR with LSR/DLSR
        with anyio.fail_after(5):
            while a.statistics().rtt_seconds is None:
                await anyio.sleep(0.005)
        stats = a.statistics()
        assert stats.rtt_seconds is not None
        assert 0.0 <= stats.rtt_seconds < 1.0
        assert stats.remote is not None
        assert stats.remote.packets_lost == 0
        assert b.statistics().invalid_packets == 0


async def test_rtcp_pair_sr_rr_exchange() -> None:
    async with open_rtp_session() as a, open_rtp_session() as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        for i in range(5):
            a.send_payload(b"s", i * 160)
            b.send_payload(b"t", i * 160)
        await _receive_n(b, 5)
        await _receive_n(a, 5)
        a.send_rtcp_report()
        b.send_rtcp_report()
        with anyio.fail_after(5):
            while a.statistics().rtcp_received == 0 or b.statistics().rtcp_received == 0:
                await anyio.sleep(0.005)
        a.send_rtcp_report()
        b.send_rtcp_report()
        with anyio.fail_after(5):
            while a.statistics().rtt_seconds is None or b.statistics().rtt_seconds is None:
                await anyio.sleep(0.005)
        assert a.remote_rtcp_address == b.local_rtcp_address


async def test_rtcp_timer_sends_reports() -> None:
    cfg = RtpSessionConfig(rtcp_min_time=0.05)
    async with open_rtp_session(cfg) as a, open_rtp_session(cfg) as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        with anyio.fail_after(5):
            while b.statistics().rtcp_received < 2:
                a.send_payload(b"t", 0)
                await anyio.sleep(0.01)
        assert a.statistics().rtcp_sent >= 2


async def test_rtcp_reports_stop_when_the_session_closes() -> None:
    cfg = RtpSessionConfig(rtcp_min_time=0.02)
    async with open_rtp_session(cfg) as b:
        async with open_rtp_session(cfg) as a:
            a.set_remote(b.local_rtp_address)
            b.set_remote(a.local_rtp_address)
            with anyio.fail_after(5):
                while b.statistics().rtcp_received < 2:
                    await anyio.sleep(0.01)
        await anyio.sleep(0.05)  # a's closing BYE lands
        received = b.statistics().rtcp_received
        await anyio.sleep(0.2)  # several report intervals: a's timer must be gone
        assert b.statistics().rtcp_received == received
        assert a.closed


async def test_srtp_round_trip_between_sessions() -> None:
    ka = SrtpKeyParams.generate(secrets.token_bytes)
    kb = SrtpKeyParams.generate(secrets.token_bytes, "AES_CM_128_HMAC_SHA1_32")
    cfg_a = RtpSessionConfig(srtp=SrtpSessionKeys(local=ka, remote=kb))
    cfg_b = RtpSessionConfig(srtp=SrtpSessionKeys(local=kb, remote=ka))
    async with open_rtp_session(cfg_a) as a, open_rtp_session(cfg_b) as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        for i in range(5):
            a.send_payload(b"secret" * 10, i * 160)
            b.send_payload(b"other" * 10, i * 160)
        assert {p.payload for p in await _receive_n(b, 5)} == {b"secret" * 10}
        assert {p.payload for p in await _receive_n(a, 5)} == {b"other" * 10}
        a.send_rtcp_report()
        with anyio.fail_after(5):
            while b.statistics().rtcp_received == 0:
                await anyio.sleep(0.005)
        # A plain RTP packet fails authentication and is counted, not delivered.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(encode_rtp(0, 1, 2, 3, b"plain" * 10), b.local_rtp_address)
        with anyio.fail_after(5):
            while b.statistics().srtp_failures == 0:
                await anyio.sleep(0.005)
        assert b.statistics().invalid_packets == 0


async def test_port_allocator_binds_even_pairs_and_releases() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1] & ~1
    allocator = PortAllocator(base, base + 4)  # two pairs
    cfg = RtpSessionConfig(port_allocator=allocator, rtcp_enabled=False)
    try:
        async with open_rtp_session(cfg) as a, open_rtp_session(cfg) as b:
            ports = {a.local_rtp_address[1], b.local_rtp_address[1]}
            assert all(p % 2 == 0 for p in ports)
            assert ports <= {base, base + 2}
            assert len(allocator.in_use) == len(ports)
            with pytest.raises(PortsExhaustedError):
                async with open_rtp_session(cfg):
                    pass
    except PortsExhaustedError:
        pytest.skip("ports in the probed range were taken by another process")
    assert allocator.in_use == frozenset()


async def test_closed_session_errors() -> None:
    async with open_rtp_session(_CFG) as a:
        pass
    assert a.closed
    with pytest.raises(RtpSessionClosedError):
        a.send_payload(b"", 0)
    with pytest.raises(RtpSessionClosedError):
        await a.receive()
    assert [p async for p in a] == []


async def test_body_exception_propagates_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with open_rtp_session(_CFG):
            raise KeyError("boom")


async def test_send_dtmf_over_loopback() -> None:
    from rvoip_rtp_core import DtmfDecoder, DtmfEnded, DtmfStarted

    async with open_rtp_session(_CFG) as a, open_rtp_session(_CFG) as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        a.send_payload(bytes(160), 0)  # audio first: the source passes probation
        await a.send_dtmf("5", duration=0.06, packet_time=0.01)
        packets = await _receive_n(b, 1 + 5 + 3)
        decoder = DtmfDecoder()
        notes = [n for p in packets[1:] for n in decoder.feed_packet(p)]
        assert [type(n) for n in notes] == [DtmfStarted, DtmfEnded]
        assert notes[1] == DtmfEnded("5", 5, packets[1].timestamp, 480, 10)
        assert packets[1].marker
        assert {p.payload_type for p in packets[1:]} == {101}


def test_session_rng_is_injectable() -> None:
    async def run() -> tuple[int, int]:
        async with (
            open_rtp_session(_CFG, rng=random.Random(5)) as a,
            open_rtp_session(_CFG, rng=random.Random(5)) as b,
        ):
            return a.ssrc, b.ssrc

    first, second = anyio.run(run)
    assert first == second


async def test_many_sessions_share_one_process() -> None:
    """A media-engine-like tick sends one packet per stream; every stream receives all."""
    pairs = 16
    ticks = 10
    received: dict[int, list[int]] = {i: [] for i in range(2 * pairs)}

    def recorder(i: int) -> Callable[[RtpPacket, float], None]:
        return lambda p, t: received[i].append(p.sequence_number)

    async with contextlib.AsyncExitStack() as stack:
        sessions = []
        for i in range(2 * pairs):
            session = await stack.enter_async_context(
                open_rtp_session(RtpSessionConfig(rtcp_enabled=False), on_packet=recorder(i))
            )
            sessions.append(session)
        for i in range(0, 2 * pairs, 2):
            sessions[i].set_remote(sessions[i + 1].local_rtp_address)
            sessions[i + 1].set_remote(sessions[i].local_rtp_address)
        for tick in range(ticks):
            for session in sessions:
                session.send_payload(bytes(160), tick * 160, marker=tick == 0)
            await anyio.sleep(0.02)
        with anyio.fail_after(5):
            while any(len(v) < ticks for v in received.values()):
                await anyio.sleep(0.01)
        for i, session in enumerate(sessions):
            stats = session.statistics()
            assert stats.packets_sent == ticks
            assert stats.received is not None
            assert stats.received.packets_lost == 0
            assert len(received[i]) == ticks


async def test_outgoing_filter_loss_is_measured() -> None:
    """Dropping 5 % of packets after packetisation shows as 5 % loss at the receiver."""
    async with open_rtp_session(_CFG) as a, open_rtp_session(_CFG) as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        count = [0]

        def drop_every_20th(data: bytes) -> bool:
            count[0] += 1
            return count[0] % 20 != 10

        a.outgoing_filter = drop_every_20th
        for i in range(200):
            a.send_payload(bytes(160), i * 160)
            if i % 25 == 0:
                await anyio.sleep(0.001)
        await _receive_n(b, 190)
        stats = b.statistics().received
        assert stats is not None
        assert (stats.packets_expected, stats.packets_received, stats.packets_lost) == (
            199,
            189,
            10,
        )
        assert stats.loss_percent == pytest.approx(100 * 10 / 199)
        assert a.statistics().packets_sent == 200


async def test_close_wakes_a_waiting_receiver() -> None:
    async with open_rtp_session(_CFG) as a:
        result: list[str] = []

        async def wait() -> None:
            try:
                await a.receive()
            except RtpSessionClosedError:
                result.append("closed")

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(0.01)
            await a.aclose()
        assert result == ["closed"]


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 not available")
    cfg = RtpSessionConfig(local_host="::1", rtcp_enabled=False)
    async with open_rtp_session(cfg) as a, open_rtp_session(cfg) as b:
        assert a.local_rtp_address[0] == "::1"
        a.set_remote(b.local_rtp_address)
        b.set_remote(("::1", 9))
        for i in range(4):  # not the signalled source: latched after the probation
            a.send_payload(b"v6", i * 160)
        [p] = await _receive_n(b, 1)
        assert p.payload == b"v6"
        assert b.remote_rtp_address == a.local_rtp_address  # latched
        b.send_payload(b"back", 0)
        [q] = await _receive_n(a, 1)
        assert q.payload == b"back"


async def test_explicit_port_pair_and_conflict() -> None:
    async with open_rtp_session(_CFG) as first:
        port = first.local_rtp_address[1]
        with pytest.raises(OSError):
            async with open_rtp_session(RtpSessionConfig(port=port, rtcp_enabled=False)):
                pass
    try:
        async with open_rtp_session(RtpSessionConfig(port=port, rtcp_enabled=False)) as again:
            assert again.local_rtp_address[1] == port
            assert again.local_rtcp_address[1] == port + 1
    except OSError:
        pytest.skip("the freed port was taken by another process meanwhile")


async def test_rtcp_handler_sees_peer_bye() -> None:
    from rvoip_rtp_core import RtcpBye, RtcpPacket

    seen: list[RtcpPacket] = []
    async with open_rtp_session() as a:
        a.set_rtcp_handler(lambda packets, t: seen.extend(packets))
        async with open_rtp_session() as b:
            b.set_remote(a.local_rtp_address)
            a.set_remote(b.local_rtp_address)
            b_ssrc = b.ssrc
        with anyio.fail_after(5):
            while not any(isinstance(p, RtcpBye) for p in seen):
                await anyio.sleep(0.005)
        assert RtcpBye((b_ssrc,)) in seen


async def test_failing_handler_does_not_kill_the_session(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def handler(packet: RtpPacket, arrival: float) -> None:
        calls.append(packet.sequence_number)
        if len(calls) == 1:
            raise RuntimeError("bug in the media layer")

    async with open_rtp_session(_CFG, on_packet=handler) as b, open_rtp_session(_CFG) as a:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        a.send_payload(b"1", 0)
        with anyio.fail_after(5):
            while not calls:
                await anyio.sleep(0.005)
        a.send_payload(b"2", 160)
        with anyio.fail_after(5):
            while len(calls) < 2:
                await anyio.sleep(0.005)
        assert b.handler_errors == 1
    assert "handler raised" in caplog.text


async def test_set_clock_rate_follows_the_negotiated_codec() -> None:
    """RFC 7587 §4.1: an Opus call's timestamps run at 48 kHz, so the session's clock
    (jitter, RFC 4733 event durations) must switch from the 8 kHz it was opened with."""
    async with open_rtp_session(_CFG) as a, open_rtp_session(_CFG) as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        a.set_clock_rate(48000)
        assert a.config.clock_rate == 48000
        assert a.core.clock_rate == 48000
        a.send_payload(b"x", 0)
        # A 100 ms event at 48 kHz lasts 4800 timestamp units (was 800 at 8 kHz).
        await a.send_dtmf("1", duration=0.1, payload_type=110)
        packets: list[RtpPacket] = []
        with anyio.move_on_after(1.0):
            while True:
                packets.append(await b.receive())
        events = [p for p in packets if p.payload_type == 110]
        durations = [int.from_bytes(p.payload[2:4], "big") for p in events]
        # Durations step by 960 (20 ms at 48 kHz), not by 160.
        assert 960 in durations
        assert max(durations) > 800
        with pytest.raises(ValueError, match="positive"):
            a.set_clock_rate(0)
