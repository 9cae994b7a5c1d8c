#!/usr/bin/env python3
"""CPU per call of session-core's stateful UAS (what ``rvoip answer --auto`` runs), in process.

    .venv/bin/python tools/bench/session_uas.py [--calls 3000] [--inflight 20]
        [--loop uvloop|asyncio|trio] [--warmup 200] [--max-concurrent N] [--tune-gc]

One process: a ``SessionCoordinator`` with the auto-answer handler on 127.0.0.1 port 0, and a
minimal raw-UDP UAC sending SIPp-like INVITE (with SDP) / ACK / BYE (the templates of
tools/bench/_uac_cps.xml, no hold) for ``--calls`` calls with ``--inflight`` in flight. Prints
the process CPU time (``time.process_time``) per call and calls/s. The UAC's own share is
measured around its send/parse code and printed too (it is small: string formatting and a few
``bytes.find``), so "server" CPU per call is the total minus that share.
"""

from __future__ import annotations

import argparse
import gc
import socket
import time
from typing import Any

import anyio

from rvoip_session_core import SessionManagerBuilder
from rvoip_session_core._cli_commands import resolve_loop
from rvoip_session_core._handlers import AutoAnswerHandler

_INVITE = (
    "INVITE sip:service@{rip}:{rport} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP {lip}:{lport};branch=z9hG4bK-{n}-1\r\n"
    "From: sipp <sip:sipp@{lip}:{lport}>;tag=bench{n}\r\n"
    "To: service <sip:service@{rip}:{rport}>\r\n"
    "Call-ID: {n}-bench@{lip}\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: sip:sipp@{lip}:{lport}\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n{sdp}"
)
_SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 {lip}\r\ns=-\r\nc=IN IP4 {lip}\r\nt=0 0\r\n"
    "m=audio {mport} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
_IN_DIALOG = (
    "{method} sip:service@{rip}:{rport} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP {lip}:{lport};branch=z9hG4bK-{n}-{cseq}\r\n"
    "From: sipp <sip:sipp@{lip}:{lport}>;tag=bench{n}\r\n"
    "To: service <sip:service@{rip}:{rport}>;tag={totag}\r\n"
    "Call-ID: {n}-bench@{lip}\r\n"
    "CSeq: {cseq} {method}\r\n"
    "Contact: sip:sipp@{lip}:{lport}\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)


def _header(data: bytes, name: bytes) -> bytes:
    start = data.find(b"\r\n" + name)
    if start < 0:
        return b""
    start += len(name) + 2
    return data[start : data.find(b"\r\n", start)].strip()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Place the calls; return the measured figures."""
    builder = (
        SessionManagerBuilder()
        .with_local_address("sip:rvoip@127.0.0.1")
        .with_sip_port(0)
        .with_quality_interval(2.0)
        .with_handler(AutoAnswerHandler())
    )
    if args.max_concurrent:
        builder = builder.with_max_concurrent_calls(args.max_concurrent)
    # --without: switch protections off one by one to see what each costs per call.
    off = set(args.without.split(",")) if args.without else set()
    if "csprng" in off:
        builder = builder.with_rng_seed(1)
    if "latch" in off:
        builder = builder.with_rtp_latching("off")
    if "overload" in off:
        builder = builder.with_overload_control(None)
    if "media-timeout" in off:
        builder = builder.with_media_timeout(None)
    if "tcp-tls" in off:
        builder = builder.with_transports("udp")
    if "session-timer" in off:
        builder = builder.with_session_timer(None)
    if "quality" in off:
        builder = builder.with_quality_interval(0)
    coordinator = await builder.build()
    if args.tune_gc:
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)  # what rvoip answer does once started
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # absorbs the server's RTP
    media.bind(("127.0.0.1", 0))
    media.setblocking(False)
    async with coordinator:
        rip, rport = coordinator.local_sip_address
        # A plain non-blocking socket: sends and reads are synchronous, so the UAC's CPU
        # measured around them never includes server work run at an await.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        with sock:
            lip, lport = sock.getsockname()[:2]
            fields = {"rip": rip, "rport": rport, "lip": lip, "lport": lport}
            sdp = _SDP.format(lip=lip, mport=media.getsockname()[1])
            target = (rip, rport)
            total = args.warmup + args.calls
            state = {"started": 0, "done": 0, "failed": 0, "uac_cpu": 0.0, "t0": 0.0, "c0": 0.0}
            collections = [0, 0, 0]  # garbage collections by generation, while measuring

            def count_gc(phase: str, info: dict[str, int]) -> None:
                if phase == "start" and state["t0"]:
                    collections[info["generation"]] += 1

            gc.callbacks.append(count_gc)
            byes: set[bytes] = set()
            rejected: set[bytes] = set()
            finished = anyio.Event()

            def start_call() -> None:
                n = state["started"]
                state["started"] += 1
                msg = _INVITE.format(n=n, length=len(sdp), sdp=sdp, **fields)
                sock.sendto(msg.encode(), target)

            def call_done() -> None:
                state["done"] += 1
                if state["done"] == args.warmup:
                    state["t0"], state["c0"] = time.perf_counter(), time.process_time()
                    state["uac_cpu"] = 0.0
                if state["done"] == total:
                    finished.set()
                elif state["started"] < total:
                    start_call()

            def handle(data: bytes) -> None:
                status = int(data[8:11]) if data.startswith(b"SIP/2.0 ") else 0
                cseq = _header(data, b"CSeq:")
                call_id = _header(data, b"Call-ID:")
                n = call_id.split(b"-", 1)[0].decode()
                if cseq.endswith(b"INVITE"):
                    if status < 200:
                        return
                    totag = _header(data, b"To:").rsplit(b"tag=", 1)[-1].decode()
                    ack = _IN_DIALOG.format(method="ACK", n=n, cseq=1, totag=totag, **fields)
                    sock.sendto(ack.encode(), target)
                    if status >= 300:
                        if call_id not in rejected:
                            rejected.add(call_id)
                            state["failed"] += 1
                            call_done()
                        return
                    if call_id in byes:
                        return  # a retransmitted 200: ACKed again above
                    byes.add(call_id)
                    bye = _IN_DIALOG.format(method="BYE", n=n, cseq=2, totag=totag, **fields)
                    sock.sendto(bye.encode(), target)
                elif cseq.endswith(b"BYE") and call_id in byes:
                    byes.discard(call_id)
                    if status >= 300:
                        state["failed"] += 1
                    call_done()

            for _ in range(min(args.inflight, total)):
                start_call()
            with anyio.fail_after(args.timeout):
                while not finished.is_set():
                    await anyio.wait_readable(sock)
                    c = time.process_time()
                    while True:
                        try:
                            data = sock.recv(65536)
                        except BlockingIOError:
                            break
                        handle(data)
                    state["uac_cpu"] += time.process_time() - c
            wall = time.perf_counter() - state["t0"]
            cpu = time.process_time() - state["c0"]
            gc.callbacks.remove(count_gc)
            stats = await coordinator.get_stats()
    media.close()
    return {
        "calls": args.calls,
        "wall": wall,
        "cpu": cpu,
        "uac_cpu": state["uac_cpu"],
        "failed": state["failed"],
        "rejected": coordinator.counters.get("overload_rejected", 0),
        "active_after": stats.active_sessions,
        "gc": collections,
    }


def main() -> None:
    """Parse options, run, print figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--inflight", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio", "trio"])
    parser.add_argument("--max-concurrent", type=int, default=0)
    parser.add_argument(
        "--without",
        default="",
        help=(
            "protections to switch off, comma list: csprng,latch,overload,media-timeout,"
            "tcp-tls,session-timer,quality"
        ),
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--tune-gc", action="store_true", help="tune the garbage collector as rvoip answer does"
    )
    args = parser.parse_args()
    backend, options = resolve_loop(args.loop)
    r = anyio.run(run, args, backend=backend, backend_options=options)
    calls = r["calls"]
    per_call = r["cpu"] / calls * 1e6
    uac = r["uac_cpu"] / calls * 1e6
    print(
        f"{args.loop}: {calls} calls, {args.inflight} in flight: {calls / r['wall']:.0f} calls/s, "
        f"CPU {per_call:.0f} us/call (UAC share ~{uac:.0f} us, server ~{per_call - uac:.0f} us); "
        f"failed {r['failed']}, overload-rejected {r['rejected']}; "
        f"GC runs by generation {r['gc']}"
    )


if __name__ == "__main__":
    main()
