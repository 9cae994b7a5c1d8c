"""Call set-up/tear-down rate through the anyio driver on real UDP sockets (127.0.0.1).

Each call is INVITE / 100 / 200 / ACK / BYE / 200 between two DialogEndpoints in one
process, ``--concurrency`` calls in flight at a time. Prints the wall-clock rate and the
CPU time per call (``time.process_time``, both ends and the transaction layers; robust on
a busy machine).

    .venv/bin/python tools/bench/dialog_loopback.py [--calls 2000] [--concurrency 20]
        [--backend asyncio|trio] [--seeded-rng]

``--seeded-rng`` gives both endpoints a seeded ``random.Random`` instead of the default OS
CSPRNG (to show what the ``os.urandom`` reads per call cost).
"""

from __future__ import annotations

import argparse
import random
import time

import anyio

from rvoip_dialog_core import (
    DialogConfirmed,
    DialogEndpoint,
    DialogEvent,
    IncomingInvite,
    LegId,
    ResponseForRequest,
)

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


async def run(calls: int, concurrency: int, seeded: bool = False) -> tuple[float, float]:
    """Wall-clock and CPU seconds for ``calls`` calls."""
    rngs = (random.Random(1), random.Random(2)) if seeded else (None, None)
    done = anyio.Event()
    finished = 0
    started = 0
    ends: dict[int, LegId] = {}
    bob_ep: list[DialogEndpoint] = []
    alice_ep: list[DialogEndpoint] = []

    def on_bob(event: DialogEvent) -> None:
        if isinstance(event, IncomingInvite):
            bob_ep[0].respond(event.ref, 200, body=SDP)

    def start_call() -> None:
        nonlocal started
        started += 1
        port = bob_ep[0].local().port
        alice_ep[0].invite(f"sip:bob@127.0.0.1:{port}", from_="sip:alice@127.0.0.1", body=SDP)

    def on_alice(event: DialogEvent) -> None:
        nonlocal finished
        if isinstance(event, DialogConfirmed):
            ends[alice_ep[0].bye(event.dialog_id)] = event.dialog_id.leg
        elif isinstance(event, ResponseForRequest) and event.ref in ends:
            del ends[event.ref]
            finished += 1
            if finished == calls:
                done.set()
            elif started < calls:
                start_call()

    async with (
        DialogEndpoint(user="bob", on_event=on_bob, rng=rngs[0]) as bob,
        DialogEndpoint(user="alice", on_event=on_alice, rng=rngs[1]) as alice,
    ):
        bob_ep.append(bob)
        alice_ep.append(alice)
        begin, cpu = time.perf_counter(), time.process_time()
        for _ in range(min(concurrency, calls)):
            start_call()
        with anyio.fail_after(120):
            await done.wait()
        return time.perf_counter() - begin, time.process_time() - cpu


def main() -> None:
    """Print calls per second."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--seeded-rng", action="store_true")
    args = parser.parse_args()
    seconds, cpu = anyio.run(
        run, args.calls, args.concurrency, args.seeded_rng, backend=args.backend
    )
    rate = args.calls / seconds
    print(
        f"{args.backend}: {rate:.0f} calls/s over UDP loopback ({args.concurrency} in flight),"
        f" {cpu / args.calls * 1e6:.0f} µs CPU per call"
    )


if __name__ == "__main__":
    main()
