"""RFC 3263 server location, sans-IO: DNS records in, an ordered list of targets out.

:func:`locate` walks NAPTR → SRV → A/AAAA as a generator: it yields each
:class:`Query` it needs and is sent back the records found (an empty sequence for
none, NXDOMAIN or a failed lookup). It reads no clock, opens no socket and draws its
SRV weights from the ``rng`` it is given, so a test drives it with a dict of records and
the driver drives it with a cache in front of an async resolver (see :mod:`._dns`).
The ordering rules are the pure functions :func:`naptr_choices` and :func:`srv_order`.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Sequence

import attrs

from rvoip_transaction_core import Peer

__all__ = [
    "DEFAULT_PORTS",
    "NAPTR_SERVICES",
    "SRV_PREFIXES",
    "Naptr",
    "ParkedTargets",
    "Query",
    "Record",
    "SipTarget",
    "Srv",
    "locate",
    "naptr_choices",
    "retry_after_seconds",
    "srv_order",
]

NAPTR_SERVICES: dict[str, str] = {"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}
"""RFC 3263 §4.1: the NAPTR services we resolve, by the transport they name."""

SRV_PREFIXES: dict[str, str] = {"UDP": "_sip._udp", "TCP": "_sip._tcp", "TLS": "_sips._tcp"}
"""RFC 3263 §4.1 / RFC 2782: the SRV owner-name prefix of each transport."""

DEFAULT_PORTS: dict[str, int] = {"UDP": 5060, "TCP": 5060, "TLS": 5061}
"""RFC 3261 §19.1.2: the port of a URI that names none."""


@attrs.frozen
class Naptr:
    """One NAPTR record (RFC 3403 §4.1), as far as SIP uses it."""

    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str


@attrs.frozen
class Srv:
    """One SRV record (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


Record = Naptr | Srv | str
"""A record as :func:`locate` is sent it: NAPTR, SRV, or an address (A/AAAA) as text."""


@attrs.frozen
class Query:
    """A DNS question :func:`locate` needs answered: an owner name and a record type."""

    name: str
    rdtype: str
    """``NAPTR``, ``SRV``, ``A`` or ``AAAA``."""


@attrs.frozen
class SipTarget:
    """The next hop's URI as RFC 3263 reads it (see ``_hops.hop_target``).

    Attributes:
        host: Host name (or address literal) of the URI (its ``maddr`` when present).
        port: The URI's explicit port, or None.
        transport: The URI's ``transport`` parameter upper-cased (``UDP``/``TCP``/``TLS``),
            or None.
        secure: A ``sips:`` URI (TLS on every hop, RFC 3261 §26.2.2).
    """

    host: str
    port: int | None = None
    transport: str | None = None
    secure: bool = False


def naptr_choices(
    records: Sequence[Record], transports: Sequence[str], secure: bool
) -> list[tuple[str, str]]:
    """The ``(transport, SRV name)`` pairs of the usable NAPTR records, best first.

    RFC 3263 §4.1: records whose service is not one of ``SIP+D2U``, ``SIP+D2T`` and
    ``SIPS+D2T``, or whose transport this client does not support, are discarded; for a
    SIPS URI only ``SIPS+D2T`` is kept. The rest are ordered by order, then preference
    (RFC 3403 §4.1). SIP uses only the ``s`` flag with an empty regexp and the SRV owner
    name as replacement; anything else is skipped.
    """
    supported = {t.upper() for t in transports}
    usable: list[tuple[int, int, str, str]] = []
    for record in records:
        if not isinstance(record, Naptr):
            continue
        transport = NAPTR_SERVICES.get(record.service.upper())
        if transport is None or transport not in supported:
            continue
        if secure and transport != "TLS":
            continue
        if record.flags.lower() != "s" or record.regexp:
            continue
        name = record.replacement.rstrip(".")
        if not name:
            continue
        usable.append((record.order, record.preference, transport, name))
    usable.sort(key=lambda item: (item[0], item[1]))
    return [(transport, name) for _, _, transport, name in usable]


def srv_order(records: Sequence[Record], rng: random.Random) -> list[Srv]:
    """The SRV records in the order to try them (RFC 2782).

    Lowest priority first; within one priority a weighted random order: "arrange all SRV
    RRs (that have not been ordered yet) in any order, except that all those with weight 0
    are placed at the beginning of the list. Compute the sum of the weights ... choose a
    uniform random number between 0 and the sum computed (inclusive), and select the RR
    whose running sum value is the first in the selected order which is greater than or
    equal to the random number selected" (RFC 2782, "Usage rules"). A lone record with
    target ``.`` means the service is decidedly not available: no targets.
    """
    srvs = [r for r in records if isinstance(r, Srv)]
    if len(srvs) == 1 and srvs[0].target.rstrip(".") == "":
        return []
    srvs = [r for r in srvs if r.target.rstrip(".")]
    ordered: list[Srv] = []
    for priority in sorted({r.priority for r in srvs}):
        pending = sorted((r for r in srvs if r.priority == priority), key=lambda r: r.weight != 0)
        while pending:
            pick = rng.randint(0, sum(r.weight for r in pending))
            running = 0
            for index, record in enumerate(pending):
                running += record.weight
                if running >= pick:
                    ordered.append(pending.pop(index))
                    break
    return ordered


def _srv_transports(target: SipTarget, transports: Sequence[str], default: str) -> list[str]:
    """The transports to query SRV for when NAPTR gave nothing (RFC 3263 §4.1).

    ``_sips`` for a SIPS URI, else ``_sip`` for each transport supported (ours first).
    """
    supported = [t.upper() for t in transports]
    if target.secure:
        return ["TLS"] if "TLS" in supported else []
    ordered = [default.upper()] if default.upper() in ("UDP", "TCP") else []
    ordered += [t for t in ("UDP", "TCP") if t not in ordered]
    return [t for t in ordered if t in supported]


def locate(
    target: SipTarget,
    *,
    transports: Sequence[str],
    default_transport: str,
    address_type: str,
    rng: random.Random,
    max_targets: int,
) -> Generator[Query, Sequence[Record], list[Peer]]:
    """Walk RFC 3263 for ``target``, yielding queries; returns the targets in order.

    Args:
        target: The next hop's URI.
        transports: Transports this client can send on (``UDP``, ``TCP``, ``TLS``).
        default_transport: Transport for a URI without port parameters whose domain has
            no NAPTR or SRV records (and for a URI with an explicit port).
        address_type: ``A`` or ``AAAA``: the family the client's transport is bound in.
        rng: Draws the SRV weighted order.
        max_targets: The most targets returned (the failover list's bound).

    Returns:
        ``Peer`` s with IP address hosts and ``server_name`` the URI's host (RFC 5922 §4:
        a TLS server is verified against the URI's domain, never the SRV target), in the
        order to try them (RFC 3263 §4.3: the next on timeout, transport error or 503).
        Empty when nothing was found.
    """
    host = target.host.rstrip(".")
    default = "TLS" if target.secure else default_transport.upper()
    if target.port is not None:
        # RFC 3263 §4.2: "If the TARGET was not a numeric IP address, but a port is
        # present in the URI, the client performs an A or AAAA record lookup".
        transport = target.transport or default
        found = yield from _addresses(host, target.port, transport, address_type, host)
        return found[:max_targets]
    chosen: list[Srv] = []
    transport = target.transport or default
    if target.transport is not None:
        # RFC 3263 §4.2: a transport but no port: an SRV query for that transport.
        chosen = srv_order((yield Query(f"{SRV_PREFIXES[transport]}.{host}", "SRV")), rng)
    else:
        # RFC 3263 §4.1: no transport and no port: NAPTR first; each usable record names
        # the SRV owner to query, in order, until one has records.
        naptrs = yield Query(host, "NAPTR")
        for choice, name in naptr_choices(naptrs, transports, target.secure):
            chosen = srv_order((yield Query(name, "SRV")), rng)
            if chosen:
                transport = choice
                break
        if not chosen:
            # RFC 3263 §4.1: "If no NAPTR records are found, the client constructs SRV
            # queries for those transport protocols it supports".
            for transport in _srv_transports(target, transports, default):
                prefix = SRV_PREFIXES[transport]
                chosen = srv_order((yield Query(f"{prefix}.{host}", "SRV")), rng)
                if chosen:
                    break
    if not chosen:
        # RFC 3263 §4.2: no SRV records: an A/AAAA lookup, the transport's default port.
        transport = target.transport or default
        port = DEFAULT_PORTS[transport]
        found = yield from _addresses(host, port, transport, address_type, host)
        return found[:max_targets]
    peers: list[Peer] = []
    for srv in chosen[:max_targets]:  # bounded: one address lookup per SRV target tried
        if len(peers) >= max_targets:
            break
        found = yield from _addresses(
            srv.target.rstrip("."), srv.port, transport, address_type, host
        )
        peers.extend(found[: max_targets - len(peers)])
    return peers


def _addresses(
    name: str, port: int, transport: str, address_type: str, server_name: str
) -> Generator[Query, Sequence[Record], list[Peer]]:
    records = yield Query(name, address_type)
    return [
        Peer(transport, record, port, server_name=server_name)
        for record in records
        if isinstance(record, str)
    ]


def retry_after_seconds(value: str | None) -> int | None:
    """The delta-seconds of a ``Retry-After`` value (RFC 3261 §20.33), None if absent or bad.

    ``Retry-After: 120 (I'm in a meeting);duration=3600`` gives 120; the comment and the
    parameters are ignored. Anything not starting with digits is None, as is a number
    too long to be meant (more than 10 digits).
    """
    if value is None:
        return None
    text = value.strip()
    end = 0
    while end < len(text) and end <= 10 and text[end].isascii() and text[end].isdigit():
        end += 1
    if end == 0 or end > 10:
        return None
    return int(text[:end])


@attrs.define(eq=False)
class ParkedTargets:
    """Targets that answered 503 with a Retry-After: tried after the others until then.

    RFC 3261 §21.5.4: a 503 with Retry-After says when the server may take requests again;
    RFC 3263 §4.3 moves the failed request on to the next target. Until that time the
    located list puts a parked target after every other (never drops it: when the others
    fail too, it is still tried). Sans-IO: the caller gives ``now``.

    Args:
        max_seconds: the longest park honoured (a hostile or broken server's
            ``Retry-After: 4294967295`` must not shun it for ever); 0 turns parking off.
        size: the most targets remembered (expired ones go first, then the oldest).
    """

    max_seconds: float = 300.0
    size: int = 1024
    _until: dict[Peer, float] = attrs.field(factory=dict, init=False)

    def park(self, peer: Peer, seconds: float, now: float) -> None:
        """``peer`` answered 503 with ``Retry-After: seconds`` at ``now``."""
        seconds = min(float(seconds), self.max_seconds)
        if seconds <= 0:
            return
        until = self._until
        if peer not in until and len(until) >= self.size:
            for key in [k for k, when in until.items() if when <= now]:
                del until[key]
            while len(until) >= self.size:
                del until[next(iter(until))]
        until[peer] = now + seconds

    def order(self, peers: Sequence[Peer], now: float) -> list[Peer]:
        """``peers`` with the ones parked at ``now`` moved to the end (order kept otherwise)."""
        until = self._until
        if not until:
            return list(peers)
        ready: list[Peer] = []
        parked: list[Peer] = []
        for peer in peers:
            when = until.get(peer)
            if when is not None and when <= now:
                del until[peer]
                when = None
            (parked if when is not None else ready).append(peer)
        return ready + parked

    def is_parked(self, peer: Peer, now: float) -> bool:
        """True while ``peer`` is parked."""
        when = self._until.get(peer)
        return when is not None and when > now

    def __len__(self) -> int:
        return len(self._until)
