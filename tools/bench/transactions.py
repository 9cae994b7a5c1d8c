#!/usr/bin/env python3
"""Benchmark rvoip-transaction-core: non-INVITE transactions/s on loopback UDP driven by
SIPp, and the responder's CPU µs per datagram received.

    python tools/bench/transactions.py                      # asyncio+uvloop, then stdlib asyncio
    python tools/bench/transactions.py --loops trio --rates 500,1000 --seconds 3

A child process runs a responder (`TransactionEndpoint` answering every OPTIONS with 200)
on the chosen event loop; SIPp (tests/sipp/options_uac.xml) sends OPTIONS at increasing
rates, each step bounded in calls and time. Per step we print the achieved transactions/s
(answered / wall time), failed calls, and the responder's process_time delta divided by the
datagrams it received. Also a sans-IO figure: layer CPU µs per OPTIONS transaction (parse,
match, respond, Timer J), no sockets.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "packages" / "transaction-core" / "tests" / "sipp" / "options_uac.xml"


def serve(loop: str) -> None:
    """Child mode: run the responder, print its port, answer 'stats' lines on stdin."""
    import anyio

    from rvoip_transaction_core import TransactionEndpoint
    from rvoip_transaction_core.testing import Responder

    async def main() -> None:
        responder = Responder(200)
        async with TransactionEndpoint(udp=("127.0.0.1", 0), on_event=responder) as ep:
            responder.endpoint = ep
            print(json.dumps({"port": ep.local("UDP").port}), flush=True)
            while True:
                line = await anyio.to_thread.run_sync(sys.stdin.readline)
                if not line or line.strip() == "quit":
                    return
                stats = ep.stats
                print(
                    json.dumps(
                        {
                            "cpu": time.process_time(),
                            "received": stats.get("udp_received", 0),
                            "answered": responder.answered,
                            "stats": stats,
                        }
                    ),
                    flush=True,
                )

    if loop == "trio":
        anyio.run(main, backend="trio")
    else:
        anyio.run(main, backend="asyncio", backend_options={"use_uvloop": loop == "uvloop"})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sans_io_figure(count: int = 20000) -> float:
    """CPU µs per OPTIONS transaction through the sans-IO layer alone."""
    from rvoip_sip_core import make_response
    from rvoip_transaction_core import Peer, RequestReceived, TransactionLayer
    from rvoip_transaction_core.testing import simple_request

    layer = TransactionLayer(rng=random.Random(1))
    source = Peer("UDP", "127.0.0.5", 5070)
    datagrams = [
        simple_request(
            "OPTIONS", via=f"SIP/2.0/UDP 127.0.0.5:5070;branch=z9hG4bK{i}", call_id=f"c{i}"
        ).encode()
        for i in range(count)
    ]
    start = time.process_time()
    now = 0.0
    for data in datagrams:
        now += 0.0001
        layer.receive(data, source, now)
        for event in layer.take_events():
            if isinstance(event, RequestReceived):
                layer.respond(event.txn_id, make_response(event.request, 200, to_tag="x"), now)
        layer.take_transmits()
        layer.handle_timers(now)
    layer.handle_timers(now + 64)
    layer.take_events()
    return (time.process_time() - start) / count * 1e6


def run_step(sipp: str, port: int, rate: int, seconds: float) -> tuple[list[str], float, int]:
    calls = max(1, int(rate * seconds))
    command = [
        sipp, f"127.0.0.1:{port}", "-sf", str(SCENARIO), "-t", "u1", "-i", "127.0.0.1",
        "-p", str(free_port()), "-cp", str(free_port()), "-mp", str(free_port()),
        "-m", str(calls), "-r", str(rate), "-l", str(max(rate, 100)),
        "-timeout", f"{int(seconds * 4 + 10)}s", "-nostdin",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, timeout=seconds * 4 + 30, check=False)
    wall = time.perf_counter() - start
    return command, wall, result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["uvloop", "asyncio", "trio"])
    parser.add_argument("--loops", default="uvloop,asyncio", help="uvloop,asyncio,trio")
    parser.add_argument("--rates", default="500,1000,2000,4000", help="calls/s steps")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per step")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    print(f"sans-IO layer: {sans_io_figure():.1f} µs CPU per OPTIONS transaction (no sockets)")
    sipp = shutil.which("sipp")
    if sipp is None:
        print("sipp not on PATH (Debian package sip-tester): skipping the SIPp runs")
        return 0
    rates = [int(r) for r in args.rates.split(",")]
    for loop in args.loops.split(","):
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", loop],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            port = json.loads(child.stdout.readline())["port"]

            def stats(child: subprocess.Popen[str] = child) -> dict[str, float]:
                assert child.stdin is not None
                assert child.stdout is not None
                child.stdin.write("stats\n")
                child.stdin.flush()
                return dict(json.loads(child.stdout.readline()))

            print(f"\nresponder loop: {loop}")
            print(" rate/s  achieved tx/s  failed  datagrams  CPU µs/datagram")
            command: list[str] = []
            for rate in rates:
                before = stats()
                command, wall, code = run_step(sipp, port, rate, args.seconds)
                after = stats()
                answered = after["answered"] - before["answered"]
                received = after["received"] - before["received"]
                cpu = after["cpu"] - before["cpu"]
                per = cpu / received * 1e6 if received else float("nan")
                failed = int(rate * args.seconds) - answered
                print(
                    f"{rate:7d}  {answered / wall:13.0f}  {max(failed, 0):6d}  {received:9d}"
                    f"  {per:15.1f}" + ("" if code == 0 else f"  (sipp exit {code})")
                )
            print("last command:", " ".join(command))
        finally:
            child.stdin.write("quit\n")
            child.stdin.flush()
            child.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
