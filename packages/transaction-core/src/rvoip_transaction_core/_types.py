"""Values shared by the sans-IO layer and the I/O edge: peers, timer settings, events, errors."""

from __future__ import annotations

import attrs

from rvoip_sip_core import Request, Response

RELIABLE_TRANSPORTS = frozenset({"TCP", "TLS", "SCTP", "WS", "WSS"})


@attrs.frozen
class Peer:
    """Where a message came from or goes to.

    ``connection`` is the id of the stream connection a message arrived on (TCP/TLS);
    responses go back on it while it is open (RFC 3261 §18.2.2).

    ``host`` is an IP address literal: the transports refuse names (no DNS in the send
    path). ``server_name`` is the host name the target was resolved from, e.g.
    ``example.com`` for ``sips:bob@example.com``: over TLS it is sent as SNI and the
    server certificate is verified against it instead of the IP (RFC 5922 §7). It is a
    verification hint, not part of the address: left out of equality and hashing; a TLS
    connection is reused only for the same ``(host, port, server_name)``.
    """

    transport: str
    host: str
    port: int
    connection: int | None = None
    server_name: str | None = attrs.field(default=None, eq=False)

    @property
    def reliable(self) -> bool:
        """True for stream transports, which skip retransmissions (RFC 3261 §17.1.1.2)."""
        return self.transport in RELIABLE_TRANSPORTS


@attrs.frozen
class TimerConfig:
    """RFC 3261 timer base values (§17.1.1.1, table 4); derived timers use ``64 * t1``.

    ``c`` is Timer C for INVITE client transactions in Proceeding (RFC 3261 §16.6: more
    than 3 minutes, reset by each provisional); None disables it (then only the TU ends a
    ringing INVITE, with CANCEL).

    ``trying_after`` delays the INVITE server transaction's 100 Trying: 0 (the default)
    sends it at once; a value > 0 sends it only if the TU has sent no response after that
    many seconds (a TU that answers quickly saves a datagram per call). RFC 3261 §17.2.1
    allows skipping the 100 only when the TU responds within 200 ms, so at most 0.2.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    d: float = 32.0
    c: float | None = 181.0
    trying_after: float = attrs.field(default=0.0)

    @trying_after.validator
    def _check_trying_after(self, _attribute: attrs.Attribute[float], value: float) -> None:
        # RFC 3261 §17.2.1: the 100 may be skipped only if the TU answers within 200 ms.
        if not 0.0 <= value <= 0.2:
            raise ValueError(f"trying_after must be between 0 and 0.2 seconds, got {value!r}")


@attrs.frozen
class Transmit:
    """Bytes the layer wants on the wire; ``txn_id`` is the owner (for ``transport_failed``)."""

    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    target: Peer
    txn_id: int | None = None


@attrs.frozen
class TransactionRequest:
    """A new server transaction: the TU answers with ``respond(txn_id, ...)``.

    The top Via already carries ``received``/``rport``. For a CANCEL, ``cancels`` is the id
    of the INVITE server transaction it matches (RFC 3261 §9.2).
    """

    txn_id: int
    request: Request
    source: Peer
    cancels: int | None = None


@attrs.frozen
class TransactionAck:
    """An ACK not absorbed by a transaction: the ACK for a 2xx (RFC 6026 §7.1)."""

    request: Request
    source: Peer
    txn_id: int | None = None


@attrs.frozen
class ResponseReceived:
    """A response for a client transaction (provisional, final, or a later 2xx to INVITE)."""

    txn_id: int
    response: Response
    source: Peer


@attrs.frozen
class TransactionTimeout:
    """Timer B/F/C (client, treat as 408 per RFC 3261 §8.1.3.1) or H (no ACK) fired."""

    txn_id: int
    timer: str


@attrs.frozen
class TransportFailure:
    """The transport failed for this transaction (RFC 3261 §17.1.4; client: treat as 503)."""

    txn_id: int
    reason: str


@attrs.frozen
class TransactionTerminated:
    """The transaction is gone; always the last event for its id."""

    txn_id: int


TransactionEvent = (
    TransactionRequest
    | TransactionAck
    | ResponseReceived
    | TransactionTimeout
    | TransportFailure
    | TransactionTerminated
)


class TransactionError(Exception):
    """Base of every error raised by rvoip_transaction_core."""


class TransactionUsageError(TransactionError, ValueError):
    """The TU asked for something the transaction cannot do (unknown id, wrong state)."""


class TransactionTimeoutError(TransactionError):
    """``TransactionEndpoint.request`` got no final response before Timer B/F."""


class TransportFailedError(TransactionError):
    """``TransactionEndpoint.request`` failed because the transport reported an error."""
