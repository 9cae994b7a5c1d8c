"""Testing helpers: an in-memory network of sans-IO `TransactionLayer`s on a virtual clock.

`MemoryNetwork` shuttles each layer's transmits to the layer bound at the target address,
can drop chosen datagrams (loss), and advances a virtual clock from deadline to deadline, so
Timer B's 32 s take no wall time. Reused by the layers above (dialog-core tests).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import attrs

from rvoip_sip_core import Request, is_ip_literal, make_request, make_response

from ._endpoint import TransactionEndpoint
from ._layer import TransactionLayer
from ._types import Peer, TimerConfig, TransactionEvent, TransactionRequest, Transmit

__all__ = [
    "Delivery",
    "MemoryNetwork",
    "Node",
    "Responder",
    "self_signed_certificate",
    "simple_request",
]

# A TU callback: (node, event) -> None; it may call node.layer.respond(...)/send_request(...)
TuHandler = Callable[["Node", TransactionEvent], None]


@attrs.frozen
class Delivery:
    """One message put on the in-memory wire (kept in `MemoryNetwork.log`)."""

    time: float
    source: Peer
    transmit: Transmit
    dropped: bool

    @property
    def first_line(self) -> str:
        """The start line of the message, for readable assertions."""
        return self.transmit.data.split(b"\r\n", 1)[0].decode("utf-8", "replace")


@attrs.define(eq=False)
class Node:
    """A layer bound at an address on the network, with the events it produced."""

    host: str
    port: int
    layer: TransactionLayer
    tu: TuHandler | None = None
    events: list[TransactionEvent] = attrs.Factory(list)

    def peer(self, transport: str = "UDP") -> Peer:
        """The address other nodes send to."""
        return Peer(transport, self.host, self.port)


@attrs.define(eq=False)
class MemoryNetwork:
    """In-process SIP network between sans-IO layers, with loss and a virtual clock.

    ``drop(delivery_index, transmit)`` decides whether the n-th transmit (0-based, over the
    whole network) is lost.
    """

    now: float = 0.0
    config: TimerConfig = attrs.field(factory=TimerConfig)
    drop: Callable[[int, Transmit], bool] | None = None
    nodes: dict[tuple[str, int], Node] = attrs.Factory(dict)
    log: list[Delivery] = attrs.Factory(list)
    max_steps: int = 100_000

    def add(
        self,
        host: str,
        port: int,
        *,
        tu: TuHandler | None = None,
        seed: int = 0,
        transports: tuple[str, ...] = ("UDP", "TCP"),
    ) -> Node:
        """Create a layer bound at ``host:port`` for ``transports``."""
        layer = TransactionLayer(rng=random.Random(seed), config=self.config)
        for transport in transports:
            layer.set_local(transport, host, port)
        node = Node(host, port, layer, tu)
        self.nodes[(host, port)] = node
        return node

    def pump(self) -> None:
        """Deliver every pending transmit and event until the network is quiet."""
        for _ in range(self.max_steps):
            busy = False
            for node in list(self.nodes.values()):
                events = node.layer.take_events()
                for event in events:
                    busy = True
                    node.events.append(event)
                    if node.tu is not None:
                        node.tu(node, event)
                for tx in node.layer.take_transmits():
                    busy = True
                    index = len(self.log)
                    lost = self.drop is not None and self.drop(index, tx)
                    source = Peer(tx.target.transport, node.host, node.port)
                    self.log.append(Delivery(self.now, source, tx, lost))
                    target = self.nodes.get((tx.target.host, tx.target.port))
                    if not lost and target is not None:
                        target.layer.receive(tx.data, source, self.now)
            if not busy:
                return
        raise RuntimeError("network did not settle")

    def next_deadline(self) -> float | None:
        """The earliest deadline of any layer."""
        deadlines = [d for n in self.nodes.values() if (d := n.layer.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def run(self, until: float) -> None:
        """Advance the virtual clock to ``until``, firing every timer on the way."""
        self.pump()
        for _ in range(self.max_steps):
            deadline = self.next_deadline()
            if deadline is None or deadline > until:
                break
            self.now = max(self.now, deadline)
            for node in self.nodes.values():
                node.layer.handle_timers(self.now)
            self.pump()
        self.now = max(self.now, until)

    def run_until_idle(self, limit: float = 3600.0) -> None:
        """Run until no layer has a pending timer (bounded by ``limit`` virtual seconds)."""
        self.run(self.now + limit)

    def sent(self, source: Node | None = None) -> list[Delivery]:
        """The log, optionally only what ``source`` sent."""
        if source is None:
            return list(self.log)
        return [d for d in self.log if (d.source.host, d.source.port) == (source.host, source.port)]


def simple_request(
    method: str,
    to_host: str = "127.0.0.2",
    to_port: int = 5060,
    *,
    call_id: str = "call-1@test",
    cseq: int = 1,
    from_tag: str = "ftag1",
    to_tag: str | None = None,
    via: str | None = None,
    body: bytes = b"",
) -> Request:
    """A minimal valid request (no Via unless given: the layer adds one)."""
    to = f"<sip:bob@{to_host}:{to_port}>" + (f";tag={to_tag}" if to_tag else "")
    return make_request(
        method,
        f"sip:bob@{to_host}:{to_port}",
        from_=f"<sip:alice@example.com>;tag={from_tag}",
        to=to,
        call_id=call_id,
        cseq=cseq,
        via=via,
        body=body,
    )


@attrs.define(eq=False)
class Responder:
    """A TU for `TransactionEndpoint` that answers every request but ACK with ``status``.

    Use as ``on_event``; set ``endpoint`` once the endpoint exists. Counts what it answered.
    """

    status: int = 200
    endpoint: TransactionEndpoint | None = None
    answered: int = 0

    def __call__(self, event: TransactionEvent) -> None:
        """Answer each new request with ``status`` (the ``on_event`` callback)."""
        if isinstance(event, TransactionRequest) and self.endpoint is not None:
            tag = None if self.status < 200 else "rvoip"
            response = make_response(event.request, self.status, to_tag=tag)
            self.endpoint.respond(event.txn_id, response)
            self.answered += 1


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path] | None:
    """Write a self-signed certificate for ``host`` into ``folder`` (openssl CLI).

    ``host`` is an IP (subjectAltName IP) or a host name (subjectAltName DNS, for the
    RFC 5922 server-name tests); the certificate doubles as its own test CA (load it as
    ``cafile``). Returns ``(certificate, key)`` PEM paths, or None when the ``openssl``
    command is not installed (tests then skip with that reason). Used by the TLS tests
    of every layer.
    """
    if shutil.which("openssl") is None:
        return None
    san = f"IP:{host}" if is_ip_literal(host) else f"DNS:{host}"
    stem = host.replace(":", "_")
    cert, key = folder / f"{stem}-cert.pem", folder / f"{stem}-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", f"/CN={host}", "-addext", f"subjectAltName={san}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key
