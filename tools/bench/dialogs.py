"""Call set-up/tear-down throughput of the dialog layer (no sockets, virtual clock).

Two figures, best of ``--repeat`` runs:
- dialog layers alone, message objects handed across (INVITE/180/200/ACK/BYE/200);
- the full sans-IO stack: dialog + transaction layers, bytes serialized and parsed.

    .venv/bin/python tools/bench/dialogs.py [--calls 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import time

from rvoip_dialog_core import (
    DialogConfig,
    DialogConfirmed,
    DialogLayer,
    IncomingInvite,
    SendAck,
    SendRequest,
    SendResponse,
)
from rvoip_dialog_core.testing import VirtualNetwork
from rvoip_sip_core import Request

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)
BOB = "sip:bob@127.0.0.1:5070"


def layers_only(calls: int) -> float:
    """Seconds for ``calls`` calls between two bare dialog layers."""
    alice = DialogLayer(
        DialogConfig(contact="sip:alice@127.0.0.1:5060", via_host="127.0.0.1", via_port=5060),
        rng=random.Random(1),
    )
    bob = DialogLayer(
        DialogConfig(contact=BOB, via_host="127.0.0.1", via_port=5070), rng=random.Random(2)
    )
    pending: dict[str, Request] = {}

    def shuttle() -> None:
        for _ in range(20):
            moved = False
            for src, dst in ((alice, bob), (bob, alice)):
                for action in src.take_actions():
                    moved = True
                    if isinstance(action, SendResponse):
                        dst.on_response(action.response, 0.0)
                    elif isinstance(action, SendAck):
                        dst.on_ack(action.request, 0.0)
                    elif isinstance(action, SendRequest):
                        branch = action.request.top_via.branch or ""
                        pending[branch] = action.request
                        dst.on_request(action.request, branch, 0.0)
            if not moved:
                return

    start = time.perf_counter()
    for _ in range(calls):
        alice.invite(BOB, from_="sip:alice@127.0.0.1", body=SDP, now=0.0)
        shuttle()
        (inv,) = [e for e in bob.take_events() if isinstance(e, IncomingInvite)]
        bob.respond(inv.ref, 180, now=0.0)
        bob.respond(inv.ref, 200, body=SDP, now=0.0)
        shuttle()
        (ok,) = [e for e in alice.take_events() if isinstance(e, DialogConfirmed)]
        alice.bye(ok.dialog_id, now=0.0)
        shuttle()
        bob.take_events()
        alice.take_events()
        alice.handle_timers(1000.0)
    return time.perf_counter() - start


def full_stack(calls: int) -> float:
    """Seconds for ``calls`` calls through transaction layers and wire bytes."""
    net = VirtualNetwork()
    alice = net.add("alice", 5060, seed=1)
    bob = net.add("bob", 5070, seed=2)
    start = time.perf_counter()
    for _ in range(calls):
        alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=SDP, now=net.now)
        net.pump()
        (inv,) = [e for e in bob.events if isinstance(e, IncomingInvite)]
        bob.dialog.respond(inv.ref, 180, now=net.now)
        bob.dialog.respond(inv.ref, 200, body=SDP, now=net.now)
        net.pump()
        (ok,) = [e for e in alice.events if isinstance(e, DialogConfirmed)]
        alice.dialog.bye(ok.dialog_id, now=net.now)
        net.pump()
        alice.events.clear()
        bob.events.clear()
        net.wire.clear()
    return time.perf_counter() - start


def main() -> None:
    """Print calls per second for both set-ups."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for name, fn in (("dialog layers only", layers_only), ("dialog+transaction+wire", full_stack)):
        best = min(fn(args.calls) for _ in range(args.repeat))
        print(
            f"{name:26s} {args.calls / best:9.0f} calls/s  ({best / args.calls * 1e6:.0f} µs/call)"
        )


if __name__ == "__main__":
    main()
