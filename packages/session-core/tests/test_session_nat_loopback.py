"""NAT over real loopback sockets: a registrar that reports another source, keep-alives.

The registrar here is a few lines over sip-core's parser and ``make_response`` on a UDP or
TCP socket of 127.0.0.1: it answers REGISTER with ``received=127.0.0.2;rport=<n>`` in our
top Via (RFC 3581 §4), as a registrar behind which our requests come out of a NAT would.
"""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from rvoip_session_core import (
    RegistrationSettings,
    RegistrationState,
    SessionCoordinator,
    SessionManagerBuilder,
)
from rvoip_sip_core import Request, make_response, parse_message

pytestmark = pytest.mark.anyio

PUBLIC_PORT = 40000


def natted(request: Request, contact_expires: int = 60) -> bytes:
    """A 200 to ``request`` whose top Via says it came from 127.0.0.2:PUBLIC_PORT."""
    via = request.top_via
    params = tuple((k, v) for k, v in via.params if k.lower() not in ("rport", "received"))
    seen = type(via)(
        via.transport,
        via.host,
        via.port,
        (*params, ("received", "127.0.0.2"), ("rport", str(PUBLIC_PORT))),
    )
    contacts = [f"<{e.uri}>;expires={contact_expires}" for e in request.contacts]
    return make_response(
        request.with_header("Via", seen),
        200,
        to_tag="r",
        headers=[("Contact", ", ".join(contacts))],
    ).encode()


async def wait_registered(coordinator: SessionCoordinator) -> None:
    with anyio.fail_after(10):
        while not any(
            s.state is RegistrationState.Registered for s in coordinator.registration_status()
        ):
            await anyio.sleep(0.02)


async def test_learnt_address_is_in_the_next_register_and_invite_over_udp(
    anyio_backend: str,
) -> None:
    requests: list[Request] = []
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
        port = sock.extra(anyio.abc.SocketAttribute.local_port)

        async def serve() -> None:
            async for data, (host, source_port) in sock:
                request = parse_message(data)
                if not isinstance(request, Request) or request.method == "ACK":
                    continue
                requests.append(request)
                if request.method == "REGISTER":
                    await sock.sendto(natted(request), host, source_port)
                else:
                    busy = make_response(request, 486, to_tag="b").encode()
                    await sock.sendto(busy, host, source_port)

        builder = (
            SessionManagerBuilder()
            .with_sip_port(0)
            .with_local_address("sip:alice@127.0.0.1")
            .with_transports("UDP")
            .with_registration(f"sip:127.0.0.1:{port}", username="alice", password="x")
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            async with await builder.build() as alice:
                bound = alice.local_sip_address[1]
                await wait_registered(alice)
                learnt = f"sip:alice@127.0.0.2:{PUBLIC_PORT}"
                registers = [r for r in requests if r.method == "REGISTER"]
                assert [str(c.uri) for c in registers[0].contacts] == [
                    f"sip:alice@127.0.0.1:{bound}"
                ]
                assert [(str(c.uri), c.expires) for c in registers[1].contacts] == [
                    (learnt, 3600),
                    (f"sip:alice@127.0.0.1:{bound}", 0),
                ]
                await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@127.0.0.1:{port}")
                with anyio.fail_after(10):
                    while not any(r.method == "INVITE" for r in requests):
                        await anyio.sleep(0.02)
                (invite,) = [r for r in requests if r.method == "INVITE"]
                assert str(invite.contacts[0].uri) == learnt
                # Via keeps the bound address: rport routes our responses (RFC 3581 §4).
                assert invite.top_via.port == bound
            tg.cancel_scope.cancel()


async def test_crlf_pings_on_the_tcp_flow_to_the_registrar(anyio_backend: str) -> None:
    """RFC 5626 §3.5.1: CRLFCRLF on the registrar's TCP connection, answered with CRLF pongs."""
    pings: list[float] = []
    registers: list[Request] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        buffer = b""
        async with stream:
            while True:
                try:
                    buffer += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                while True:
                    if buffer.startswith(b"\r\n\r\n"):
                        pings.append(anyio.current_time())
                        buffer = buffer[4:]
                        await stream.send(b"\r\n")  # the pong
                        continue
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    message, buffer = buffer[: end + 4], buffer[end + 4 :]
                    request = parse_message(message)
                    assert isinstance(request, Request)
                    registers.append(request)
                    reply = make_response(
                        request,
                        200,
                        to_tag="r",
                        headers=[("Contact", f"<{request.contacts[0].uri}>;expires=60")],
                    )
                    await stream.send(reply.encode())

    settings = RegistrationSettings(keepalive_stream=0.2)
    builder = (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:alice@127.0.0.1")
        .with_transports("UDP", "TCP")
        .with_registration(
            f"sip:127.0.0.1:{port};transport=tcp",
            username="alice",
            password="x",
            settings=settings,
        )
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        async with await builder.build() as alice:
            await wait_registered(alice)
            with anyio.fail_after(10):
                while len(pings) < 3:
                    await anyio.sleep(0.05)
            assert len(registers) == 1  # the pings and pongs are no messages
            stats = alice.endpoint.stats()
            assert stats.get("tcp_connected", 0) == 1  # one flow carried all
        tg.cancel_scope.cancel()


async def test_a_wildcard_bind_registers_the_routed_address_once(anyio_backend: str) -> None:
    """Bound to 0.0.0.0: the registrar's rport shows where we are; no binding is lost.

    The Contact said ``0.0.0.0`` (sent as 127.0.0.1 by the dialog layer); the registrar's
    ``rport`` differs from that Contact, so it is rewritten to 127.0.0.1 and registered
    again. The old binding is the same 127.0.0.1 address as the new one: a REGISTER with
    it twice, ``expires=3600`` and ``expires=0``, would have the registrar remove what we
    just made, so it is sent once.
    """
    requests: list[Request] = []
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
        port = sock.extra(anyio.abc.SocketAttribute.local_port)

        async def serve() -> None:
            async for data, (host, source_port) in sock:
                request = parse_message(data)
                assert isinstance(request, Request)
                requests.append(request)
                # RFC 3581 §4: rport filled with the source port; no received, the
                # source is the Via host.
                via = request.top_via
                params = tuple((k, v) for k, v in via.params if k.lower() != "rport")
                seen = type(via)(
                    via.transport, via.host, via.port, (*params, ("rport", str(source_port)))
                )
                contacts = ", ".join(
                    f"<{c.uri}>;expires={c.expires}" for c in request.contacts if c.expires
                )
                reply = make_response(
                    request.with_header("Via", seen),
                    200,
                    to_tag="r",
                    headers=[("Contact", contacts)] if contacts else [],
                )
                await sock.sendto(reply.encode(), host, source_port)

        builder = (
            SessionManagerBuilder()
            .with_sip_port(0)
            .with_local_address("sip:alice@example.com")
            .with_local_bind_addr("0.0.0.0")
            .with_transports("UDP")
            .with_registration(f"sip:127.0.0.1:{port}", username="alice", password="x")
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            async with await builder.build() as alice:
                bound = alice.local_sip_address[1]
                await wait_registered(alice)
                routed = f"sip:alice@127.0.0.1:{bound}"
                assert alice.endpoint.config.contact == routed
                assert [[(str(c.uri), c.expires) for c in r.contacts] for r in requests] == [
                    [(routed, 3600)],
                    [(routed, 3600)],
                ]
            tg.cancel_scope.cancel()
