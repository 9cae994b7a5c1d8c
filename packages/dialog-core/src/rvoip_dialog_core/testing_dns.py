"""A small authoritative DNS server on 127.0.0.1 for tests of RFC 3263 location.

Tests must never ask the machine's resolver: :func:`dns_responder` answers from a fixed
table of records over UDP on a loopback port, built with dnspython (the library the
resolver uses, so the wire format is the real one). Point a ``DnsSettings`` at it::

    records = {("_sip._udp.example.test", "SRV"): ["0 1 5070 bob.example.test."],
               ("bob.example.test", "A"): ["127.0.0.1"]}
    async with dns_responder(records) as (host, port):
        settings = DnsSettings(nameservers=((host, port),))

Names not in the table get NXDOMAIN; a name that has other types gets an empty answer
(NOERROR/NODATA). It runs on asyncio and trio (anyio) and stops with its context.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence

import anyio
import anyio.abc
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["dns_responder"]

Records = Mapping[tuple[str, str], Sequence[str]]
"""``(owner name, type)`` → rdata texts, e.g. ``("example.test", "NAPTR")`` →
``['10 0 "s" "SIP+D2U" "" _sip._udp.example.test.']``."""


def answer(query: bytes, records: Records, ttl: int = 60) -> bytes | None:
    """The response to a DNS query from ``records`` (None: not a query we can parse)."""
    try:
        message = dns.message.from_wire(query)
    except Exception:
        return None
    response = dns.message.make_response(message)
    response.flags |= dns.flags.AA
    names = {name.lower().rstrip(".") for name, _ in records}
    for question in message.question:
        name = question.name.to_text().lower().rstrip(".")
        rdtype = dns.rdatatype.to_text(question.rdtype)
        values = records.get((name, rdtype)) or records.get((name + ".", rdtype))
        if values:
            response.answer.append(
                dns.rrset.from_text_list(question.name, ttl, dns.rdataclass.IN, rdtype, values)
            )
        elif name not in names:
            response.set_rcode(dns.rcode.NXDOMAIN)
    return response.to_wire()


@contextlib.asynccontextmanager
async def dns_responder(
    records: Records, *, ttl: int = 60, queries: Counter[tuple[str, str]] | None = None
) -> AsyncIterator[tuple[str, int]]:
    """Serve ``records`` on 127.0.0.1 (a free UDP port) while the context is open.

    Args:
        records: What to answer (see :data:`Records`); owner names without a final dot.
        ttl: TTL of every answer.
        queries: Counts the questions asked, by ``(name, type)`` (to check caching).

    Yields:
        The server's ``(address, port)``.
    """
    lowered = {(name.lower().rstrip("."), kind.upper()): v for (name, kind), v in records.items()}
    async with (
        await anyio.create_udp_socket(local_host="127.0.0.1", local_port=0) as sock,
        anyio.create_task_group() as tg,
    ):

        async def serve() -> None:
            async for data, (host, port) in sock:
                if queries is not None:
                    with contextlib.suppress(Exception):
                        for question in dns.message.from_wire(data).question:
                            name = question.name.to_text().lower().rstrip(".")
                            queries[(name, dns.rdatatype.to_text(question.rdtype))] += 1
                reply = answer(data, lowered, ttl)
                if reply is not None:
                    await sock.sendto(reply, host, port)

        tg.start_soon(serve)
        address = sock.extra(anyio.abc.SocketAttribute.local_address)
        yield str(address[0]), int(address[1])
        tg.cancel_scope.cancel()
