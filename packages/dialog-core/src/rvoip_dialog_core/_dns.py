"""The I/O side of RFC 3263: DNS queries through dnspython's async resolver, and a cache.

:class:`SipLocator` drives the sans-IO walk of :func:`._locate.locate`: from its
:class:`RecordCache` alone (:meth:`SipLocator.cached`, synchronous: a name seen within
its TTL costs no task and no query), or asking the network for what the cache lacks
(:meth:`SipLocator.locate`). Queries go through ``dns.asyncresolver`` (asyncio and trio
alike, never blocking the event loop) to the nameservers of :class:`DnsSettings`, or to
the system's (``/etc/resolv.conf``) when none are given; in that case A/AAAA lookups go
through ``getaddrinfo`` in a worker thread (as before RFC 3263 support), so ``/etc/hosts``
still applies.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
from collections.abc import Generator, Sequence

import anyio
import attrs
import dns.asyncbackend
import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdata
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.NAPTR
import dns.rdtypes.IN.SRV
import dns.resolver
import sniffio

from rvoip_transaction_core import Peer

from ._locate import Naptr, Query, Record, SipTarget, Srv, locate

__all__ = ["DnsSettings", "RecordCache", "SipLocator", "parse_dns_server"]

logger = logging.getLogger(__name__)


def parse_dns_server(text: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"``, ``"[::1]:5353"``, ``"::1"`` or ``"10.0.0.1"`` as (address, port).

    Raises:
        ValueError: not an IP address (with an optional port 1..65535).
    """
    value = text.strip()
    port = 53
    if value.startswith("["):
        address, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad DNS server address {text!r}")
        if rest:
            port = int(rest[1:])
    elif value.count(":") == 1:
        address, _, port_text = value.partition(":")
        port = int(port_text)
    else:
        address = value
    ipaddress.ip_address(address)  # raises ValueError for a name
    if not 0 < port < 65536:
        raise ValueError(f"bad DNS server port in {text!r}")
    return address, port


@attrs.frozen
class DnsSettings:
    """How SIP targets are located (RFC 3263); every limit has a safe default.

    Attributes:
        nameservers: ``(address, port)`` of the DNS servers to ask (tests point this at
            a server on 127.0.0.1, see :func:`parse_dns_server`). Empty: the system's
            resolver configuration.
        rfc3263: Look up NAPTR and SRV records for URIs without a port (RFC 3263). False:
            A/AAAA only, the URI's port or the default one.
        timeout: Seconds one DNS query may take (dnspython's ``lifetime``, retries and
            all). A query that times out counts as "no records".
        cache_size: The most record sets cached (oldest dropped first when full).
        max_ttl: Records are cached for their TTL, at most this many seconds.
        negative_ttl: Seconds a missing answer (NXDOMAIN, no records, a failed query)
            is cached, so a name without SRV records is not asked again per request.
        hosts_ttl: Seconds a ``getaddrinfo`` answer (no TTL known) is cached.
        max_targets: The most targets (SRV targets and their addresses) one request is
            tried at: RFC 3263 §4.3 failover is bounded by this list.
        max_retry_after: The longest ``Retry-After`` of a 503 honoured, in seconds: the
            target that sent it is tried after the others of a located list until then
            (RFC 3261 §21.5.4); 0: a 503 only moves the request on (RFC 3263 §4.3).
    """

    nameservers: tuple[tuple[str, int], ...] = ()
    rfc3263: bool = True
    timeout: float = 2.0
    cache_size: int = 1024
    max_ttl: float = 3600.0
    negative_ttl: float = 30.0
    hosts_ttl: float = 60.0
    max_targets: int = 8
    max_retry_after: float = 300.0


@attrs.define(eq=False)
class RecordCache:
    """DNS answers by query, kept for their TTL, bounded to ``size`` entries."""

    size: int = 1024
    _entries: dict[Query, tuple[float, tuple[Record, ...]]] = attrs.field(factory=dict)

    def get(self, query: Query, now: float) -> tuple[Record, ...] | None:
        """The records of ``query`` still valid at ``now``, or None (never asked, expired)."""
        entry = self._entries.get(query)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[query]
            return None
        return entry[1]

    def put(self, query: Query, records: Sequence[Record], ttl: float, now: float) -> None:
        """Keep ``records`` (possibly none: a negative answer) for ``ttl`` seconds."""
        if ttl <= 0:
            return
        self._entries.pop(query, None)
        if len(self._entries) >= self.size:
            for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
                del self._entries[key]
            while len(self._entries) >= self.size:
                # Bounded: the oldest entry goes (dicts keep insertion order).
                del self._entries[next(iter(self._entries))]
        self._entries[query] = (now + ttl, tuple(records))

    def __len__(self) -> int:
        return len(self._entries)


def _is_localhost(name: str) -> bool:
    # RFC 6761 §6.3: "localhost." names resolve to loopback without asking DNS.
    lowered = name.lower().rstrip(".")
    return lowered == "localhost" or lowered.endswith(".localhost")


@attrs.define(eq=False)
class SipLocator:
    """RFC 3263 target lists for host names, from a cache or DNS.

    Args:
        settings: Nameservers, timeouts and limits.
        rng: Draws the SRV weighted order (RFC 2782).
    """

    settings: DnsSettings = attrs.field(factory=DnsSettings)
    rng: random.Random = attrs.field(factory=random.SystemRandom)
    cache: RecordCache = attrs.field(init=False)
    _resolver: dns.asyncresolver.Resolver | None = attrs.field(init=False, default=None)
    _no_resolver: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        self.cache = RecordCache(self.settings.cache_size)

    def _walk(
        self,
        target: SipTarget,
        transports: Sequence[str],
        default_transport: str,
        address_type: str,
    ) -> Generator[Query, Sequence[Record], list[Peer]]:
        if not self.settings.rfc3263 and target.port is None:
            # A/AAAA only: the URI's transport (or ours) and its default port.
            transport = "TLS" if target.secure else (target.transport or default_transport)
            target = attrs.evolve(target, port=5061 if transport == "TLS" else 5060)
        return locate(
            target,
            transports=transports,
            default_transport=default_transport,
            address_type=address_type,
            rng=self.rng,
            max_targets=self.settings.max_targets,
        )

    def cached(
        self,
        target: SipTarget,
        transports: Sequence[str],
        default_transport: str,
        address_type: str,
        now: float,
    ) -> list[Peer] | None:
        """The targets from cached records alone, or None when a record set is missing."""
        walk = self._walk(target, transports, default_transport, address_type)
        try:
            query = next(walk)
            while True:
                records = self.cache.get(query, now)
                if records is None:
                    walk.close()
                    return None
                query = walk.send(records)
        except StopIteration as done:
            result: list[Peer] = done.value
            return result

    async def locate(
        self,
        target: SipTarget,
        transports: Sequence[str],
        default_transport: str,
        address_type: str,
        now: float,
    ) -> list[Peer]:
        """The targets, asking DNS for the record sets the cache lacks (see ``cached``).

        Each query is bounded by ``settings.timeout``; a failed one counts as no records.
        """
        walk = self._walk(target, transports, default_transport, address_type)
        try:
            query = next(walk)
            while True:
                records = self.cache.get(query, now)
                if records is None:
                    records, ttl = await self._ask(query)
                    self.cache.put(query, records, ttl, now)
                query = walk.send(records)
        except StopIteration as done:
            result: list[Peer] = done.value
            return result

    async def _ask(self, query: Query) -> tuple[tuple[Record, ...], float]:
        """Records for ``query`` and how long to keep them (a failure: none)."""
        settings = self.settings
        negative = ((), settings.negative_ttl)
        if _is_localhost(query.name) or (
            not settings.nameservers and query.rdtype in ("A", "AAAA")
        ):
            if query.rdtype not in ("A", "AAAA"):
                return negative
            return await self._getaddrinfo(query)
        resolver = self._dns_resolver()
        if resolver is None:
            return negative
        try:
            answer = await resolver.resolve(
                query.name,
                query.rdtype,
                raise_on_no_answer=False,
                lifetime=settings.timeout,
                search=False,
                # dnspython remembers the first event loop library it saw; a process
                # that runs asyncio and trio (tests) must name the running one.
                backend=dns.asyncbackend.get_backend(sniffio.current_async_library()),
            )
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            logger.debug("DNS %s %s failed: %s", query.rdtype, query.name, exc)
            return negative
        rrset = answer.rrset
        if rrset is None:
            return negative
        records = tuple(r for r in (_record(item) for item in rrset) if r is not None)
        return records, min(float(rrset.ttl), settings.max_ttl)

    async def _getaddrinfo(self, query: Query) -> tuple[tuple[Record, ...], float]:
        family = socket.AF_INET6 if query.rdtype == "AAAA" else socket.AF_INET
        try:
            with anyio.fail_after(self.settings.timeout):
                infos = await anyio.getaddrinfo(query.name, None, family=family)
        except (OSError, TimeoutError):
            return (), self.settings.negative_ttl
        addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
        return addresses, self.settings.hosts_ttl

    def _dns_resolver(self) -> dns.asyncresolver.Resolver | None:
        if self._resolver is not None or self._no_resolver:
            return self._resolver
        servers = self.settings.nameservers
        try:
            resolver = dns.asyncresolver.Resolver(configure=not servers)
        except dns.resolver.NoResolverConfiguration:
            logger.warning("no system DNS configuration: NAPTR/SRV lookups are skipped")
            self._no_resolver = True
            return None
        if servers:
            resolver.nameservers = [dns.nameserver.Do53Nameserver(a, p) for a, p in servers]
        resolver.cache = None  # ours is the cache (clocked by the driver, bounded)
        self._resolver = resolver
        return resolver


def _record(rdata: dns.rdata.Rdata) -> Record | None:
    """One dnspython rdata as a :data:`Record` (None for a type we do not read)."""
    if isinstance(rdata, dns.rdtypes.IN.NAPTR.NAPTR):
        return Naptr(
            order=rdata.order,
            preference=rdata.preference,
            flags=rdata.flags.decode("ascii", "replace"),
            service=rdata.service.decode("ascii", "replace"),
            regexp=rdata.regexp.decode("ascii", "replace"),
            replacement=rdata.replacement.to_text(),
        )
    if isinstance(rdata, dns.rdtypes.IN.SRV.SRV):
        return Srv(rdata.priority, rdata.weight, rdata.port, rdata.target.to_text())
    if isinstance(rdata, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA):
        return str(rdata.address)
    return None
