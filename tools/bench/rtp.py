"""Benchmarks of rvoip_rtp_core: packet codec, statistics, and sessions on loopback.

Run: ``.venv/bin/python tools/bench/rtp.py [--pairs 100] [--ticks 100] [--sessions 1000]``
(``--only open-close`` runs just the session set-up/teardown figures).
Prints per-operation times, CPU µs per RTP packet (one send + one receive) for sessions
on loopback under asyncio, asyncio+uvloop and trio, and CPU µs (process_time) to open and
close one session (port pair from a PortAllocator, remote set, RTCP on: BYE on close).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import random
import time
import timeit
from collections.abc import Callable, Iterator

import anyio
import sniffio

from rvoip_rtp_core import (
    SRTP_SUITES,
    HeaderExtension,
    PortAllocator,
    RtcpReceiverReport,
    RtpPacket,
    RtpSessionConfig,
    RtpSessionCore,
    SourceStatistics,
    SrtpContext,
    SrtpKeyParams,
    encode_rtp,
    open_rtp_session,
    open_rtp_session_now,
    parse_rtcp,
)


def _per_call(fn: Callable[[], object], number: int = 200_000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


def _srtp_rows(plain: bytes) -> list[tuple[str, float]]:
    """SRTP (RFC 3711, pylibsrtp) on a 172-byte G.711 packet: µs per packet.

    Unprotect needs a new packet each time (the replay check refuses a repeat), so the
    protected stream is made beforehand with increasing sequence numbers.
    """
    rows: list[tuple[str, float]] = []
    rng = random.Random(7)
    count = 60_000
    for suite in SRTP_SUITES:
        ours = SrtpKeyParams.generate(rng.randbytes, suite)
        theirs = SrtpKeyParams.generate(rng.randbytes, suite)
        tx, rx = SrtpContext(ours, theirs), SrtpContext(theirs, ours)
        packets = (encode_rtp(0, i & 0xFFFF, i * 160, 9, bytes(160)) for i in range(count))
        feed = iter([tx.protect_rtp(p) for p in packets])
        tag = suite.rsplit("_", 1)[1]
        protect = functools.partial(tx.protect_rtp, plain)

        def unprotect(rx: SrtpContext = rx, feed: Iterator[bytes] = feed) -> bytes:
            return rx.unprotect_rtp(next(feed))

        rows.append((f"SrtpContext.protect_rtp (_{tag})", _per_call(protect)))
        rows.append((f"SrtpContext.unprotect_rtp (_{tag})", _per_call(unprotect, count // 3)))
    return rows


def micro() -> None:
    """Codec and statistics operations, µs per call."""
    plain = encode_rtp(0, 1, 2, 3, bytes(160))
    ext = RtpPacket(0, 1, 2, 3, bytes(160), extensions=(HeaderExtension(1, b"ab"),)).encode()
    packet = RtpPacket.parse(plain)
    rr = parse_rtcp(RtcpReceiverReport(1).encode())[0].encode()
    core = RtpSessionCore(rng=random.Random(1))
    peer = RtpSessionCore(rng=random.Random(2))
    stream = [core.build_rtp(bytes(160), i * 160, 0.0) for i in range(200_000)]
    feed = iter(stream)
    # The driver's call: the arrival address checked against the locked source.
    latched = RtpSessionCore(rng=random.Random(3))
    source = ("127.0.0.1", 40000)
    latched.latch.set_remote(source)
    feed_latched = iter(stream)
    stats = SourceStatistics(1, 8000)
    seqs = iter(range(10**7))
    rows = [
        ("RtpPacket.parse (12-byte header)", _per_call(lambda: RtpPacket.parse(plain))),
        ("RtpPacket.parse (with extension)", _per_call(lambda: RtpPacket.parse(ext))),
        ("RtpPacket.encode", _per_call(packet.encode)),
        ("encode_rtp", _per_call(lambda: encode_rtp(0, 1, 2, 3, plain))),
        ("RtpSessionCore.build_rtp", _per_call(lambda: core.build_rtp(plain, 160, 0.0))),
        (
            "RtpSessionCore.receive_rtp",
            _per_call(lambda: peer.receive_rtp(next(feed), 0.0), len(stream) // 3),
        ),
        (
            "RtpSessionCore.receive_rtp (+source)",
            _per_call(
                lambda: latched.receive_rtp(next(feed_latched), 0.0, source), len(stream) // 3
            ),
        ),
        (
            "SourceStatistics.update",
            _per_call(lambda: stats.update(next(seqs) & 0xFFFF, 0, 0.0, 160)),
        ),
        ("parse_rtcp (RR)", _per_call(lambda: parse_rtcp(rr))),
        *_srtp_rows(plain),
    ]
    for name, us in rows:
        print(f"{name:40s} {us:7.2f} µs")


async def _loopback(pairs: int, ticks: int) -> tuple[float, int]:
    received = [0]

    def on_packet(packet: RtpPacket, arrival: float) -> None:
        received[0] += 1

    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(
                open_rtp_session(RtpSessionConfig(rtcp_enabled=False), on_packet=on_packet)
            )
            for _ in range(2 * pairs)
        ]
        for i in range(0, len(sessions), 2):
            sessions[i].set_remote(sessions[i + 1].local_rtp_address)
            sessions[i + 1].set_remote(sessions[i].local_rtp_address)
        payload = bytes(160)
        cpu0 = time.process_time()
        start = anyio.current_time()
        for tick in range(ticks):
            now = time.time()
            for s in sessions:
                s.send_payload(payload, tick * 160, now=now)
            await anyio.sleep_until(start + (tick + 1) * 0.02)
        deadline = anyio.current_time() + 2.0
        while received[0] < len(sessions) * ticks and anyio.current_time() < deadline:
            await anyio.sleep(0.005)
        cpu = time.process_time() - cpu0
    return cpu, received[0]


def loopback(pairs: int, ticks: int) -> None:
    """CPU µs per packet (send + receive) for 2*pairs sessions ticking every 20 ms."""
    for label, backend, options in (
        ("asyncio", "asyncio", {}),
        ("asyncio+uvloop", "asyncio", {"use_uvloop": True}),
        ("trio", "trio", {}),
    ):
        try:
            cpu, got = anyio.run(_loopback, pairs, ticks, backend=backend, backend_options=options)
        except ImportError as exc:
            print(f"{label:16s} skipped: {exc}")
            continue
        sent = 2 * pairs * ticks
        print(
            f"{label:16s} {2 * pairs} sessions x {ticks} ticks: {got}/{sent} received, "
            f"{cpu / max(got, 1) * 1e6:6.1f} CPU µs per packet (send + receive)"
        )


_OPEN_CFG = RtpSessionConfig(
    port_allocator=PortAllocator(30000, 40000), remote_rtp=("127.0.0.1", 9)
)


async def _open_close(sessions: int, repeat: int = 5) -> dict[str, float]:
    """Best-of-``repeat`` CPU µs per open + close, for each way of opening a session.

    Unless marked "alone", one other session stays open meanwhile, as in a server with
    calls in progress (the loop's shared epoll set then outlives each session).
    """
    rng = random.Random(7)
    asyncio_family = sniffio.current_async_library() == "asyncio"

    def now_shared_rng() -> None:
        open_rtp_session_now(_OPEN_CFG, rng=rng).close()

    def now_default_rng() -> None:
        open_rtp_session_now(_OPEN_CFG).close()

    def now_fresh_seeded_rng() -> None:  # what session-core passed at first
        open_rtp_session_now(_OPEN_CFG, rng=random.Random(rng.getrandbits(64))).close()

    def best_of(fn: Callable[[], None]) -> float:
        for _ in range(sessions // 5):  # warm-up
            fn()
        best = float("inf")
        for _ in range(repeat):
            cpu0 = time.process_time()
            for _ in range(sessions):
                fn()
            best = min(best, time.process_time() - cpu0)
        return best / sessions * 1e6

    out: dict[str, float] = {}
    if asyncio_family:
        out["open_rtp_session_now(rng=shared), alone"] = best_of(now_shared_rng)
    async with open_rtp_session(RtpSessionConfig(rtcp_enabled=False)):
        if asyncio_family:
            out["open_rtp_session_now(rng=shared)"] = best_of(now_shared_rng)
            out["open_rtp_session_now(rng=None)"] = best_of(now_default_rng)
            out["open_rtp_session_now(rng=Random(seed))"] = best_of(now_fresh_seeded_rng)
        best = float("inf")
        for _ in range(repeat):
            cpu0 = time.process_time()
            for _ in range(sessions):
                async with open_rtp_session(_OPEN_CFG, rng=rng):
                    pass
            best = min(best, time.process_time() - cpu0)
        out["async with open_rtp_session(rng=shared)"] = best / sessions * 1e6
    return out


def open_close(sessions: int) -> None:
    """CPU µs to open and close one session, per backend."""
    for label, backend, options in (
        ("asyncio", "asyncio", {}),
        ("asyncio+uvloop", "asyncio", {"use_uvloop": True}),
        ("trio", "trio", {}),
    ):
        try:
            rows = anyio.run(_open_close, sessions, backend=backend, backend_options=options)
        except ImportError as exc:
            print(f"{label:16s} skipped: {exc}")
            continue
        for name, us in rows.items():
            print(f"{label:16s} open+close {name:42s} {us:7.1f} CPU µs")


def main() -> None:
    """Parse arguments and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--only", choices=("micro", "loopback", "open-close"))
    args = parser.parse_args()
    if args.only in (None, "micro"):
        micro()
    if args.only in (None, "loopback"):
        loopback(args.pairs, args.ticks)
    if args.only in (None, "open-close"):
        open_close(args.sessions)


if __name__ == "__main__":
    main()
