"""Transaction matching keys (RFC 3261 §17.1.3, §17.2.3) and Via helpers (§18.2, RFC 3581)."""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from rvoip_sip_core import Headers, Request, Response, Via
from rvoip_sip_core._lexer import split_list

from ._types import RELIABLE_TRANSPORTS, Peer

MAGIC_COOKIE = "z9hG4bK"
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061, "SCTP": 5060, "WS": 80, "WSS": 443}


def strip_brackets(host: str) -> str:
    """``[::1]`` -> ``::1`` (Peer hosts are bare IP literals)."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def server_key(request: Request, via: Via, method: str) -> Hashable:
    """The key a server transaction is found by (ACK is folded onto its INVITE).

    RFC 3261 §17.2.3: with the magic cookie, branch + sent-by + method; otherwise the
    RFC 2543 rule: Request-URI, From tag, Call-ID, CSeq number, top Via (the To tag of an
    ACK is checked against the transaction's response by the caller).
    """
    norm = "INVITE" if method == "ACK" else method
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        host, port = via.sent_by
        return (branch, host.lower(), port, norm)
    return (
        "2543",
        request.uri_text,
        request.from_.tag,
        request.call_id,
        request.cseq.seq,
        str(via).lower(),
        norm,
    )


def with_method(key: Hashable, method: str) -> Hashable:
    """The same key with another method (to find the INVITE a CANCEL refers to)."""
    assert isinstance(key, tuple)
    return (*key[:-1], method)


def client_key(branch: str, method: str) -> Hashable:
    """RFC 3261 §17.1.3: branch of the top Via and the CSeq method."""
    return (branch, method)


def replace_top_via(message: Request | Response, via: Via) -> Request | Response:
    """Return ``message`` with its first Via element replaced (other lines untouched)."""
    items = list(message.headers)
    for first in message.headers.positions("Via"):
        name, value = items[first]
        elements = split_list(value)
        # An empty Via line ("Via:" then the real Via on the next line) holds no element:
        # the top Via is the first element of the first line that has one. Indexing the
        # empty line raised IndexError out of receive() (fuzz finding F-TXN-1, issue 10).
        if elements:
            elements[0] = str(via)
            items[first] = (name, ", ".join(elements))
            return attrs.evolve(message, headers=Headers(items))
    return message.prepend_header("Via", str(via))


def stamp_via(request: Request, via: Via, source: Peer) -> Request:
    """RFC 3261 §18.2.1 / RFC 3581 §4: add ``received`` (and fill ``rport``) to the top Via."""
    host, _port = via.sent_by
    want_received = strip_brackets(host) != source.host
    want_rport = via.rport is True
    if not (want_received or want_rport):
        return request
    params = [(k, v) for k, v in via.params if k.lower() not in ("received", "rport")]
    params.append(("received", source.host))
    if via.rport is not None:
        params.append(("rport", str(source.port)))
    new = replace_top_via(request, attrs.evolve(via, params=tuple(params)))
    assert isinstance(new, Request)
    return new


def trying_bytes(request: Request) -> bytes:
    """RFC 3261 §8.2.6 / §17.2.1: the wire bytes of the 100 Trying for ``request``.

    The same lines `make_response(request, 100)` would hold (every Via, From, To, Call-ID,
    CSeq, and Timestamp per §8.2.6.1), written straight from the request's raw values:
    hot path, one per INVITE, with no Response object that nobody reads.
    """
    headers = request.headers
    lines = ["SIP/2.0 100 Trying"]
    lines += ["Via: " + value for value in headers.get_all("via")]
    for name in _TRYING_COPIED:
        value = headers.get(name)
        if value is not None:
            lines.append(f"{name}: {value}")
    lines.append("Content-Length: 0\r\n\r\n")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


_TRYING_COPIED = ("From", "To", "Call-ID", "CSeq", "Timestamp")


def response_target(via: Via, source: Peer) -> Peer:
    """Where responses of a server transaction go (RFC 3261 §18.2.2, RFC 3581 §4).

    Reliable: the connection the request came on; if it is gone the transport connects to
    the source address and the sent-by port. Unreliable: ``maddr`` if present, else the
    source address with the ``rport`` (the source port) or the sent-by port.
    """
    port = via.port
    transport = source.transport
    if not port:
        port = DEFAULT_PORTS.get(transport, 5060)
    if transport in RELIABLE_TRANSPORTS:
        if port == source.port:
            return source  # hot path: the Peer we already have (Peer is immutable)
        return Peer(transport, source.host, port, source.connection)
    maddr = via.maddr
    if maddr:
        return Peer(transport, strip_brackets(maddr), port)
    if via.rport is not None:
        port = source.port
    if port == source.port and source.connection is None:
        return source  # hot path: the Peer we already have (Peer is immutable)
    return Peer(transport, source.host, port)
