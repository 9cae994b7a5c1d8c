"""Where a request goes next: the next hop's URI (RFC 3263 §4), for the driver and tests."""

from __future__ import annotations

import functools

from rvoip_sip_core import Request, SipUri, Uri, is_ip_literal
from rvoip_transaction_core import Peer

from ._locate import SipTarget

__all__ = ["hop_target", "is_ip", "next_hop", "target_for"]


def _hop_uri(request: Request) -> SipUri | None:
    """The URI a request is sent towards: a loose first Route, else the Request-URI."""
    routes = request.routes
    first = routes[0].uri if routes else None
    loose = isinstance(first, SipUri) and first.lr
    uri: Uri = first if loose and first is not None else request.uri
    return uri if isinstance(uri, SipUri) else None


def hop_target(request: Request) -> SipTarget | None:
    """The next hop's URI as RFC 3263 reads it: host, explicit port and transport or None.

    Same URI as :func:`next_hop` (RFC 3263 §4: the first loose Route, else the
    Request-URI; ``maddr`` wins over the host), without filling in defaults, so the
    locator can tell "no port" (NAPTR/SRV) from "port 5060" (A/AAAA only).
    """
    uri = _hop_uri(request)
    if uri is None:
        return None
    host = uri.maddr or uri.host
    host = host[1:-1] if host.startswith("[") else host
    transport = uri.transport.upper() if uri.transport else None
    secure = uri.scheme == "sips"
    if secure:
        transport = "TLS" if transport is not None else None
    if transport not in (None, "UDP", "TCP", "TLS"):
        return None
    return SipTarget(host, uri.port, transport, secure)


def next_hop(request: Request, default_transport: str = "UDP") -> Peer | None:
    """Where a request goes (RFC 3263 §4 without NAPTR/SRV).

    The first Route if it is a loose router, else the Request-URI (which holds a strict
    router, RFC 3261 §12.2.1.1). The host may be a name; None when the URI is not a SIP URI.
    """
    routes = request.routes
    first = routes[0].uri if routes else None
    loose = isinstance(first, SipUri) and first.lr
    uri: Uri = first if loose and first is not None else request.uri
    if not isinstance(uri, SipUri):
        return None
    host = uri.maddr or uri.host
    host = host[1:-1] if host.startswith("[") else host
    transport = (uri.transport or default_transport).upper()
    if uri.scheme == "sips":
        transport = "TLS"
    port = uri.port or (5061 if transport == "TLS" else 5060)
    return Peer(transport, host, port)


def target_for(request: Request, default_transport: str = "UDP") -> Peer | None:
    """The :func:`next_hop` when its host is an IP literal (no DNS needed), else None."""
    hop = next_hop(request, default_transport)
    return hop if hop is not None and is_ip(hop.host) else None


@functools.lru_cache(maxsize=256)
def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address literal (not a name to resolve)."""
    return is_ip_literal(host)
