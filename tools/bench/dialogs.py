"""Call set-up/tear-down throughput of the dialog layer (no sockets, virtual clock).

Figures, best of ``--repeat`` runs:
- ``layers``: two dialog layers alone, message objects handed across
  (INVITE/180/200/ACK/BYE/200);
- ``stack``: the full sans-IO stack: dialog + transaction layers, bytes serialized and parsed;
- ``uas``: the callee path of one server call as ``rvoip answer`` runs it (INVITE with SDP ->
  200 with SDP, ACK, BYE -> 200), the dialog layer only, CPU time (``time.process_time``)
  per call. Messages are parsed from wire bytes beforehand and given the header accesses
  the transaction layer makes, so the lazy header parses the dialog layer triggers count;
- ``uas-driver``: the same through the anyio ``DialogEndpoint`` (a stub in place of the
  transaction endpoint; the 200 is sent from inside ``on_event``), CPU time per call.

Options that split the cost of a call: ``--no-own-session-timer`` (``uas_session_expires``
None: no RFC 4028 timer of our own per call), ``--seeded-rng`` (the driver's identifiers
from a seeded ``random.Random`` instead of the OS CSPRNG), ``--without-shortcuts`` (the
driver asks the layer for its next deadline after every flush and takes its output through
two façade calls, as it would without ``deadline_moved()`` / ``take_output()``).

    .venv/bin/python tools/bench/dialogs.py [--calls 2000] [--repeat 5] [--inflight 50]
        [--mode layers|stack|uas|uas-driver ...] [--no-own-session-timer] [--seeded-rng]
        [--without-shortcuts]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from rvoip_dialog_core import (
    DialogConfig,
    DialogConfirmed,
    DialogEndpoint,
    DialogEvent,
    DialogLayer,
    IncomingInvite,
    SendAck,
    SendRequest,
    SendResponse,
)
from rvoip_dialog_core.testing import VirtualNetwork
from rvoip_sip_core import Request, Response, parse_message
from rvoip_transaction_core import Peer, TransactionAck, TransactionRequest

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


UAS_CONFIG = DialogConfig(contact="sip:rvoip@127.0.0.1:5060", via_host="127.0.0.1", via_port=5060)
SIPP = Peer("UDP", "127.0.0.1", 5061)
OPTIONS: dict[str, bool] = {"own_timer": True, "seeded": False, "shortcuts": True}
"""Set from the command line (see the module doc)."""


def _uas_config(config: DialogConfig) -> DialogConfig:
    if OPTIONS["own_timer"] or not hasattr(config, "uas_session_expires"):
        return config
    return attrs.evolve(config, uas_session_expires=None)


def _without_shortcuts(layer: Any) -> None:
    """Make the driver work as it would without the layer's narrow hot-path methods."""
    out = layer.take_actions, layer.take_events

    def take_output() -> Any:
        actions, events = out[0](), out[1]()
        return (actions, events) if actions or events else None

    layer.take_output = take_output
    layer.deadline_moved = lambda: True


def _wire(method: str, n: int, to_tag: str | None, seq: int, body: bytes = b"") -> Request:
    """A SIPp-style request of call ``n``, parsed from bytes, with the transaction layer's
    header accesses already made (top Via, CSeq, Call-ID, To, From)."""
    to = "<sip:service@127.0.0.1:5060>" + (f";tag={to_tag}" if to_tag else "")
    ctype = "Content-Type: application/sdp\r\n" if body else ""
    text = (
        f"{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-{method}\r\n"
        f"From: sipp <sip:sipp@127.0.0.1:5061>;tag={n}SIPpTag00{n}\r\n"
        f"To: service {to}\r\n"
        f"Call-ID: {n}-4242@127.0.0.1\r\n"
        f"CSeq: {seq} {method}\r\n"
        "Contact: sip:sipp@127.0.0.1:5061\r\n"
        "Max-Forwards: 70\r\n"
        f"{ctype}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    message = parse_message(text.encode() + body)
    assert isinstance(message, Request)
    message.top_via, message.cseq, message.call_id, message.to, message.from_  # noqa: B018
    return message


def _uas_batches(
    calls: int,
    inflight: int,
    invite: Callable[[int, Request], str],
    ack: Callable[[Request], None],
    bye: Callable[[int, Request], None],
    first: int = 0,
) -> float:
    """CPU seconds spent in ``invite``/``ack``/``bye`` for ``calls`` calls, ``inflight`` at
    a time (``invite`` returns the To tag the 200 carried)."""
    spent = 0.0
    clock = time.process_time
    n, end = first, first + calls
    while n < end:
        batch = range(n, min(n + inflight, end))
        n = batch.stop
        invites = [(i, _wire("INVITE", i, None, 1, SDP)) for i in batch]
        start = clock()
        tags = [(i, invite(i, req)) for i, req in invites]
        spent += clock() - start
        acks = [_wire("ACK", i, tag, 1) for i, tag in tags]
        start = clock()
        for req in acks:
            ack(req)
        spent += clock() - start
        byes = [(i, _wire("BYE", i, tag, 2)) for i, tag in tags]
        start = clock()
        for i, req in byes:
            bye(i, req)
        spent += clock() - start
    return spent


def uas_layer(calls: int, inflight: int = 50) -> float:
    """CPU seconds of the bare dialog layer for ``calls`` callee calls (see module doc)."""
    layer = DialogLayer(_uas_config(UAS_CONFIG), rng=random.Random(3))
    now = 0.0

    def drain() -> None:
        layer.take_actions()
        layer.take_events()
        layer.next_deadline()  # the driver asks after every input

    def invite(i: int, req: Request) -> str:
        layer.on_request(req, 2 * i, now)
        layer.take_actions()
        (event,) = layer.take_events()
        assert isinstance(event, IncomingInvite)
        layer.respond(event.ref, 200, "OK", body=SDP, content_type="application/sdp", now=now)
        drain()
        return event.dialog_id.local_tag

    def ack(req: Request) -> None:
        layer.on_ack(req, now)
        drain()

    def bye(i: int, req: Request) -> None:
        layer.on_request(req, 2 * i + 1, now)
        drain()

    spent = _uas_batches(calls, inflight, invite, ack, bye)
    assert not any(layer.pending().values()), layer.pending()
    return spent


class _StubTransactions:
    """Stands in for the TransactionEndpoint: responses are counted, not sent."""

    def __init__(self) -> None:
        self.sent = 0

    def respond(self, txn_id: int, response: Response) -> None:
        self.sent += 1

    def rearm(self, deadline: float) -> None:
        """The real endpoint moves its one SIP timer earlier; nothing runs timers here."""


def uas_driver(calls: int, inflight: int = 50) -> float:
    """CPU seconds of the anyio driver + layer for ``calls`` callee calls (see module doc)."""

    async def run() -> float:
        tags: dict[str, str] = {}
        endpoint: list[DialogEndpoint] = []

        def on_event(event: DialogEvent) -> None:
            if isinstance(event, IncomingInvite):
                tags[event.dialog_id.call_id] = event.dialog_id.local_tag
                endpoint[0].respond(event.ref, 200, "OK", body=SDP, content_type="application/sdp")

        rng = random.Random(3) if OPTIONS["seeded"] else None
        async with DialogEndpoint(user="rvoip", on_event=on_event, rng=rng) as ep:
            endpoint.append(ep)
            ep.layer.config = _uas_config(ep.layer.config)
            if not OPTIONS["shortcuts"]:
                _without_shortcuts(ep.layer)
            stub = _StubTransactions()
            ep._txn = stub  # type: ignore[assignment]  # bench: no sockets under the layer

            def invite(i: int, req: Request) -> str:
                ep._on_txn_event(TransactionRequest(2 * i, req, SIPP))
                return tags.pop(req.call_id)

            def ack(req: Request) -> None:
                ep._on_txn_event(TransactionAck(req, SIPP))

            def bye(i: int, req: Request) -> None:
                ep._on_txn_event(TransactionRequest(2 * i + 1, req, SIPP))

            spent = 0.0
            # Let the timer task run between batches, as the event loop would.
            for start in range(0, calls, inflight):
                count = min(inflight, calls - start)
                spent += _uas_batches(count, inflight, invite, ack, bye, first=start)
                await anyio.sleep(0)
            assert stub.sent == 2 * calls, stub.sent
            assert len(ep.layer) == 0
            return spent

    return anyio.run(run)


MODES: dict[str, tuple[str, Callable[..., float]]] = {
    "layers": ("dialog layers only", layers_only),
    "stack": ("dialog+transaction+wire", full_stack),
    "uas": ("UAS call, layer (CPU)", uas_layer),
    "uas-driver": ("UAS call, driver (CPU)", uas_driver),
}


def main() -> None:
    """Print calls per second and the cost of one call for each set-up."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--inflight", type=int, default=50, help="UAS calls in flight")
    parser.add_argument("--mode", nargs="*", choices=list(MODES), default=list(MODES))
    parser.add_argument("--no-own-session-timer", action="store_true")
    parser.add_argument("--seeded-rng", action="store_true")
    parser.add_argument("--without-shortcuts", action="store_true")
    args = parser.parse_args()
    OPTIONS["own_timer"] = not args.no_own_session_timer
    OPTIONS["seeded"] = args.seeded_rng
    OPTIONS["shortcuts"] = not args.without_shortcuts
    for mode in args.mode:
        name, fn = MODES[mode]
        if mode.startswith("uas"):
            best = min(fn(args.calls, args.inflight) for _ in range(args.repeat))
        else:
            best = min(fn(args.calls) for _ in range(args.repeat))
        print(
            f"{name:26s} {args.calls / best:9.0f} calls/s  ({best / args.calls * 1e6:.0f} µs/call)"
        )


if __name__ == "__main__":
    main()
