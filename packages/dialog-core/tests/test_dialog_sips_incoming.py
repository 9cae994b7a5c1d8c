"""A ``sips:`` Request-URI that reached us over UDP or TCP is answered 416, never served."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from rvoip_dialog_core import DialogEndpoint, IncomingInvite
from rvoip_sip_core import Response, parse_message

pytestmark = pytest.mark.anyio


def _invite(scheme: str, transport: str, port: int, n: int) -> bytes:
    return (
        f"INVITE {scheme}:bob@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bKsips{n}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:m@127.0.0.1>;tag=s\r\nTo: <sip:bob@127.0.0.1>\r\n"
        f"Call-ID: sips-{n}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:m@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def test_sips_request_uri_over_udp_and_tcp_gets_416(anyio_backend: str) -> None:
    """The dialog layer used to take such an INVITE as a secure one.

    An attacker (or a misconfigured proxy) sending ``INVITE sips:...`` over plain UDP got a
    dialog marked secure, with a ``sips:`` Contact in our answer: the call looked protected
    end to end while every byte of it was in clear. RFC 3261 §26.2.2 and RFC 5630: ``sips:``
    means TLS on every hop, so the request is refused with 416 before any dialog exists; a
    ``sip:`` INVITE on the same socket still reaches the application.
    """
    invites: list[str] = []

    def on_event(event: object) -> None:
        if isinstance(event, IncomingInvite):
            invites.append(str(event.request.uri))
            ep.respond(event.ref, 486)

    async with DialogEndpoint(udp=("127.0.0.1", 0), tcp=("127.0.0.1", 0), on_event=on_event) as ep:
        udp = ep.local("UDP")
        async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
            mine = sock.extra(anyio.abc.SocketAttribute.local_port)
            statuses: list[int] = []
            for n, scheme in enumerate(("sips", "sip")):
                await sock.sendto(_invite(scheme, "UDP", mine, n), udp.host, udp.port)
                with anyio.fail_after(10):
                    while True:
                        reply = parse_message((await sock.receive())[0])
                        assert isinstance(reply, Response)
                        if reply.status >= 200:
                            statuses.append(reply.status)
                            break
            assert statuses == [416, 486]
        tcp = ep.local("TCP")
        with anyio.fail_after(10):
            stream = await anyio.connect_tcp(tcp.host, tcp.port)
            async with stream:
                await stream.send(_invite("sips", "TCP", 5060, 7))
                data = b""
                while b" 416 " not in data:
                    data += await stream.receive()
        assert invites == ["sip:bob@127.0.0.1"]
        assert ep.stats["sips_refused_incoming"] == 2
