"""Media engine load: N concurrent G.711 streams, both ways, on loopback.

The engine process (this one) runs N RTP sessions (rvoip-rtp-core, rtcp-mux) and one
MediaEngine clock; every stream sends 50 packets/s of PCMU and receives 50 packets/s.
``--peer pairs`` (default): the streams are N/2 calls inside this process, stream 2k
talking to stream 2k+1, so every cost (both ends) is in the measured process.
``--peer reflector``: every stream talks to a reflector subprocess (plain sockets, one
port) that echoes each RTP packet with the SSRC changed. Printed: CPU of the engine
process per stream, late packets (sent > 10 ms after the tick's deadline), send-time
lateness percentiles, and what the receive side saw.

    .venv/bin/python tools/bench/media_engine.py [--streams 500] [--seconds 30]
        [--loop uvloop|asyncio|trio] [--peer pairs|reflector] [--pin]

Two in-process modes measure CPU (``time.process_time``, robust on a shared machine)
without sockets; the sessions are stand-ins whose send costs nothing:

    .venv/bin/python tools/bench/media_engine.py --mode churn [--streams 10000]
        add then remove N streams (a call's set-up and tear-down): us per add, per remove;
        then N short calls: 20 streams added per tick, one tick, removed (us per call)
    .venv/bin/python tools/bench/media_engine.py --mode tick [--streams 500] [--phases 1]
        one MediaClock tick (read, encode, hand to the session, pop, decode, PLC, sink)
        with one packet received per stream per tick: us per tick and per stream
        (``--phases 4``: the tick split in 4 parts, as the clock does above 200 streams)

``--pin`` puts the engine on CPU 0 (and the reflector on CPU 1) (Linux). On a shared
machine the run-queue wait line shows how much other load starved the process; to
measure what one reserved core does, run it as
``chrt -f 10 .venv/bin/python tools/bench/media_engine.py --pin`` (root, SCHED_FIFO).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from typing import Any

import anyio
import numpy as np

from rvoip_media_core import (
    BACKEND,
    PHASES,
    SPLIT_ABOVE,
    ClockStats,
    Codec,
    MediaClock,
    MediaEngine,
    MediaStream,
    SamplesSource,
    ToneGenerator,
    run_media_engine,
)
from rvoip_rtp_core import RtpSessionConfig, open_rtp_session

REFLECTOR = r"""
import os, socket, sys, time
if len(sys.argv) > 2:
    os.sched_setaffinity(0, {int(sys.argv[2])})
deadline = time.monotonic() + float(sys.argv[1])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
sock.bind(("127.0.0.1", 0))
sock.settimeout(0.5)
print(sock.getsockname()[1], flush=True)
recv, send = sock.recvfrom, sock.sendto
echoed = 0
while time.monotonic() < deadline:
    try:
        data, addr = recv(2048)
    except socket.timeout:
        continue
    if 192 <= data[1] <= 223 or len(data) < 12:  # RTCP (rtcp-mux): not echoed
        continue
    ssrc = int.from_bytes(data[8:12], "big") ^ 0x5A5A5A5A
    send(data[:8] + ssrc.to_bytes(4, "big") + data[12:], addr)
    echoed += 1
print(echoed, flush=True)
"""


def runqueue_wait() -> float:
    """Seconds this process's threads waited for a CPU (Linux schedstat; 0 elsewhere)."""
    total = 0
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[1])
    except OSError:
        return 0.0
    return total / 1e9


class FrameCounter:
    """A sink that only counts frames (what an IVR that ignores input costs)."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames = 0

    def __call__(self, frame: Any) -> None:
        self.frames += 1


async def run(args: argparse.Namespace, reflector_port: int | None) -> None:
    engine = MediaEngine()
    tone = ToneGenerator(1000.0).read(8000)  # 1 s of tone, looped: cheap per frame
    config = RtpSessionConfig(local_host="127.0.0.1", rtcp_mux=True)
    streams: list[MediaStream] = []
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(open_rtp_session(config)) for _ in range(args.streams)
        ]
        for i, session in enumerate(sessions):
            if reflector_port is not None:
                session.set_remote(("127.0.0.1", reflector_port))
            else:  # calls inside this process: 2k <-> 2k+1
                session.set_remote(sessions[i ^ 1].local_rtp_address)
        for session in sessions:
            streams.append(
                engine.add_stream(
                    session, Codec.PCMU, 20, SamplesSource(tone, loop=True), FrameCounter()
                )
            )
        async with run_media_engine(engine, phases=args.phases) as clock:
            await anyio.sleep(args.warmup)
            clock.stats = ClockStats(late_threshold=0.01)
            cpu0, wall0, wait0 = time.process_time(), time.monotonic(), runqueue_wait()
            await anyio.sleep(args.seconds)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            wait = runqueue_wait() - wait0
            stats = clock.stats
        report(args, engine, streams, stats, cpu, wall)
        print(
            f"  waited for a CPU (run queue): {wait:.2f} s = {100 * wait / wall:.1f} % of the time "
            f"(other load on the machine; 1-min load average {os.getloadavg()[0]:.2f} "
            f"on {os.cpu_count()} CPUs)"
        )


def report(
    args: argparse.Namespace,
    engine: MediaEngine,
    streams: list[MediaStream],
    stats: ClockStats,
    cpu: float,
    wall: float,
) -> None:
    n = len(streams)
    jb = [s.jitter.stats() for s in streams]
    rtp = [s.session.statistics() for s in streams]
    lost = [r.received.loss_percent for r in rtp if r.received is not None]
    played = sum(s.frames_played for s in streams)
    concealed = sum(s.frames_concealed for s in streams)
    empty = sum(s.frames_empty for s in streams)
    print(
        f"media engine: {n} PCMU streams both ways, {wall:.1f} s measured "
        f"(after {args.warmup:.0f} s warm-up), peer={args.peer}, loop={args.loop}, "
        f"kernel={BACKEND}, "
        f"python {sys.version.split()[0]}"
    )
    print(
        f"  CPU: {cpu:.2f} s in {wall:.2f} s = {100 * cpu / wall:.1f} % of one core; "
        f"{1000 * cpu / wall / n:.3f} ms CPU per stream per second "
        f"({100 * cpu / wall / n:.3f} % of a core per stream)"
    )
    late_pct = 100.0 * stats.late_packets / stats.packets if stats.packets else 0.0
    print(
        f"  ticks {stats.ticks} (late {stats.late_ticks}, skipped {stats.skipped_ticks}); "
        f"packets sent {stats.packets}, late (>10 ms) {stats.late_packets} = {late_pct:.3f} %, "
        f"send errors {stats.send_errors}"
    )
    print(
        f"  send-time lateness vs deadline: p50 {1000 * stats.percentile(50):.2f} ms, "
        f"p99 {1000 * stats.percentile(99):.2f} ms, p99.9 {1000 * stats.percentile(99.9):.2f} ms"
    )
    print(
        f"  receive (whole run): frames played {played}, concealed {concealed}, empty {empty}; "
        f"jitter-buffer late {sum(j.late for j in jb)}, dropped "
        f"{sum(j.dropped_overflow + j.dropped_adapt for j in jb)}; RTP loss mean "
        f"{np.mean(lost) if lost else 0.0:.3f} % max {max(lost) if lost else 0.0:.3f} %; "
        f"receive-queue drops {sum(r.receive_queue_drops for r in rtp)}"
    )
    if args.verbose:
        for s, r in zip(streams, rtp, strict=True):
            if r.received is not None and r.received.loss_percent > 1.0:
                print(f"    stream {s.id}: {r.received} jb={s.jitter.stats()}")
    mos = [s.statistics(bpl=engine.bpl).quality.mos_score for s in streams[:50]]
    print(f"  MOS (first 50 streams): min {min(mos):.2f} mean {np.mean(mos):.2f}")


class NullSession:
    """An RtpSession stand-in: sending and statistics cost nothing (in-process modes)."""

    __slots__ = ("handler", "sent")

    def __init__(self) -> None:
        self.handler: Any = None
        self.sent = 0

    def send_payload(
        self,
        payload: bytes,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
        now: float | None = None,
    ) -> None:
        self.sent += 1

    def set_packet_handler(self, handler: Any) -> None:
        self.handler = handler

    def statistics(self) -> None:
        return None


class FakePacket:
    """What ``MediaStream.receive`` reads of an RTP packet."""

    __slots__ = ("payload", "payload_type", "sequence_number", "ssrc", "timestamp")

    def __init__(self, seq: int, payload: bytes) -> None:
        self.payload_type = 0
        self.ssrc = 1234
        self.sequence_number = seq & 0xFFFF
        self.timestamp = (seq * 160) & 0xFFFFFFFF
        self.payload = payload


def churn(streams: int, repeat: int) -> None:
    """Add then remove ``streams`` streams, best of ``repeat``: CPU per add and per remove."""
    engine = MediaEngine()
    sessions = [NullSession() for _ in range(streams)]
    best_add = best_remove = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        added = [engine.add_stream(s, Codec.PCMU, 20) for s in sessions]
        t1 = time.process_time()
        for stream in added:
            engine.remove_stream(stream)
        t2 = time.process_time()
        best_add, best_remove = min(best_add, t1 - t0), min(best_remove, t2 - t1)
    print(
        f"stream churn: {streams} streams added then removed, best of {repeat} "
        f"(kernel={BACKEND}, python {sys.version.split()[0]})"
    )
    print(
        f"  add_stream {1e6 * best_add / streams:.2f} us, remove_stream "
        f"{1e6 * best_remove / streams:.2f} us, together "
        f"{1e6 * (best_add + best_remove) / streams:.2f} us per stream (process_time)"
    )
    # Calls as the call-rate benchmark makes them (1,000/s, no hold, no RTP received):
    # 20 streams join per 20 ms tick, are ticked once (one packet sent each) and leave.
    clock = MediaClock(engine)
    per_tick = 20
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for lo in range(0, streams, per_tick):
            batch = [engine.add_stream(s, Codec.PCMU, 20) for s in sessions[lo : lo + per_tick]]
            clock.process(0.0)
            for stream in batch:
                engine.remove_stream(stream)
        best = min(best, time.process_time() - t0)
    print(
        f"  short calls ({per_tick} join, one tick, leave; as at 1,000 calls/s): "
        f"{1e6 * best / streams:.2f} us per call"
    )


def tick_cost(streams: int, repeat: int, phases: int, ticks: int = 50) -> None:
    """CPU of one clock tick with ``streams`` streams, each receiving a packet per tick."""
    engine = MediaEngine()
    tone = ToneGenerator(1000.0).read(8000)
    sessions = [NullSession() for _ in range(streams)]
    added = [
        engine.add_stream(s, Codec.PCMU, 20, SamplesSource(tone, loop=True), FrameCounter())
        for s in sessions
    ]
    receivers = [s.receive for s in added]
    clock = MediaClock(engine)
    payload = bytes(160)
    seq = 0

    def feed() -> None:
        nonlocal seq
        packet = FakePacket(seq, payload)
        arrival = seq * 0.02
        for receive in receivers:
            receive(packet, arrival)
        seq += 1

    for _ in range(4):  # fill to the jitter buffers' target before measuring
        feed()
    best_feed = best_tick = float("inf")
    for _ in range(repeat):
        spent_feed = spent_tick = 0.0
        for _ in range(ticks):
            t0 = time.process_time()
            feed()
            t1 = time.process_time()
            for phase in range(phases):
                clock.process(0.0, phase, phases)
            t2 = time.process_time()
            spent_feed += t1 - t0
            spent_tick += t2 - t1
        best_feed, best_tick = (
            min(best_feed, spent_feed / ticks),
            min(best_tick, spent_tick / ticks),
        )
    played = sum(s.frames_played for s in added)
    print(
        f"media tick: {streams} PCMU streams, {phases} phase(s) per tick, best of {repeat} x "
        f"{ticks} ticks (kernel={BACKEND}, python {sys.version.split()[0]}); "
        f"frames played {played}"
    )
    print(
        f"  tick (MediaClock.process: send + play-out) {1e6 * best_tick:.0f} us = "
        f"{1e6 * best_tick / streams:.2f} us per stream; receive (MediaStream.receive) "
        f"{1e6 * best_feed / streams:.2f} us per packet (process_time)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["net", "tick", "churn"], default="net")
    parser.add_argument("--streams", type=int, default=None, help="500 (churn: 10000)")
    parser.add_argument("--repeat", type=int, default=5, help="tick/churn: best of")
    parser.add_argument(
        "--phases",
        type=int,
        default=None,
        help="parts of a tick (default: 1 in tick mode, "
        f"the clock's {PHASES} above {SPLIT_ABOVE} streams in net mode)",
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--loop", choices=["uvloop", "asyncio", "trio"], default="uvloop")
    parser.add_argument("--peer", choices=["pairs", "reflector"], default="pairs")
    parser.add_argument("--verbose", action="store_true", help="print lossy streams")
    parser.add_argument("--pin", action="store_true", help="engine on CPU 0, reflector on 1")
    args = parser.parse_args()
    if args.mode == "churn":
        churn(args.streams or 10000, args.repeat)
        return
    args.streams = args.streams or 500
    if args.mode == "tick":
        tick_cost(args.streams, args.repeat, args.phases or 1)
        return
    args.phases = args.phases or PHASES
    if args.peer == "pairs" and args.streams % 2:
        parser.error("--peer pairs needs an even number of streams")
    backend = "trio" if args.loop == "trio" else "asyncio"
    options = {"use_uvloop": True} if args.loop == "uvloop" else {}
    if args.peer == "pairs":
        if args.pin:
            os.sched_setaffinity(0, {0})
        anyio.run(run, args, None, backend=backend, backend_options=options)
        return
    reflector_args = [sys.executable, "-c", REFLECTOR, str(args.seconds + args.warmup + 60)]
    if args.pin:
        os.sched_setaffinity(0, {0})
        reflector_args.append("1")
    reflector = subprocess.Popen(reflector_args, stdout=subprocess.PIPE, text=True)
    try:
        assert reflector.stdout is not None
        port = int(reflector.stdout.readline())
        anyio.run(run, args, port, backend=backend, backend_options=options)
    finally:
        reflector.terminate()
        reflector.wait(timeout=10)


if __name__ == "__main__":
    main()
