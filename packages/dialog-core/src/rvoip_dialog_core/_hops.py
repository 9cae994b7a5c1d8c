"""Where a request goes next (RFC 3263 §4 without NAPTR/SRV), for the driver and tests."""

from __future__ import annotations

import functools

import attrs

from rvoip_sip_core import Request, SipUri, Uri, is_ip_literal
from rvoip_transaction_core import Peer

__all__ = ["NameCache", "is_ip", "next_hop", "target_for"]


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


@attrs.define(eq=False)
class NameCache:
    """Host names resolved for SIP targets, kept ``ttl`` seconds (bounded to ``size``).

    ``getaddrinfo`` gives no TTL, so a fixed one stands in; the point is that a name is
    resolved once per ``ttl``, asynchronously, not once per request.
    """

    ttl: float = 60.0
    size: int = 256
    _entries: dict[tuple[str, int, int], tuple[float, str]] = attrs.field(factory=dict)

    def get(self, host: str, port: int, family: int, now: float) -> str | None:
        """The address ``host`` resolved to, or None when unknown or expired."""
        entry = self._entries.get((host, port, family))
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def put(self, host: str, port: int, family: int, address: str, now: float) -> None:
        """Remember ``host`` -> ``address`` until ``now + ttl``."""
        if len(self._entries) >= self.size:
            self._entries.clear()  # bounded: a burst of names costs lookups, not memory
        self._entries[(host, port, family)] = (now + self.ttl, address)
