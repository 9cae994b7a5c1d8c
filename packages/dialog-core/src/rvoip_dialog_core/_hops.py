"""Where a request goes next (RFC 3263 §4 without NAPTR/SRV), for the driver and tests."""

from __future__ import annotations

import functools
import ipaddress

from rvoip_sip_core import Request, SipUri, Uri
from rvoip_transaction_core import Peer

__all__ = ["is_ip", "next_hop", "target_for"]


def next_hop(request: Request, default_transport: str = "UDP") -> Peer | None:
    """Where a request goes (RFC 3263 §4 without NAPTR/SRV): the first Route if it is a loose
    router, else the Request-URI (which holds a strict router, RFC 3261 §12.2.1.1).

    The host may be a name; None when the URI is not a SIP URI.
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
    # Called for every message sent; the few peers' hosts repeat, so remember them.
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
