"""Real sockets on loopback: UDP, TCP and TLS endpoints on both anyio backends."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from rvoip_sip_core import Response, make_response, parse_message
from rvoip_transaction_core import (
    Peer,
    StreamLimits,
    TimerConfig,
    TransactionEndpoint,
    TransactionEvent,
    TransactionLayer,
    TransactionRequest,
    TransactionTimeoutError,
    TransportFailedError,
    tune_datagram_transport,
)
from rvoip_transaction_core.testing import self_signed_certificate, simple_request

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    files = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    if files is None:
        pytest.skip("openssl CLI not found: cannot generate a test certificate")
    cert, key = files
    return cert, key


def contexts(files: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = files
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def responder(holder: list[TransactionEndpoint], status: int = 200) -> Callable[..., None]:
    """A TU answering every request with ``status`` (the endpoint is filled in later)."""

    def on_event(event: TransactionEvent) -> None:
        if isinstance(event, TransactionRequest) and event.request.method != "ACK":
            tag = None if status < 200 else "uas"
            holder[0].respond(event.txn_id, make_response(event.request, status, to_tag=tag))

    return on_event


async def exchange(transport: str, **server_kw: object) -> tuple[Response, dict[str, int]]:
    holder: list[TransactionEndpoint] = []
    client_kw = {k: v for k, v in server_kw.items() if k == "tls_client_context"}
    server_only = {k: v for k, v in server_kw.items() if k != "tls_client_context"}
    server = TransactionEndpoint(on_event=responder(holder), **server_only)  # type: ignore[arg-type]
    holder.append(server)
    listen = {"UDP": {}, "TCP": {"udp": None, "tcp": ("127.0.0.1", 0)}}.get(
        transport, {"udp": None, "tls": ("127.0.0.1", 0)}
    )
    async with server, TransactionEndpoint(**listen, **client_kw) as client:  # type: ignore[arg-type]
        target = server.local(transport)
        with anyio.fail_after(10):
            first = await client.request(simple_request("OPTIONS", call_id="a"), target)
            second = await client.request(simple_request("OPTIONS", call_id="b"), target)
        assert second.status == first.status
        return first, client.stats


async def test_udp_request_response(anyio_backend: str) -> None:
    response, stats = await exchange("UDP")
    assert response.status == 200
    assert stats["udp_sent"] == 2


async def test_tcp_request_response_reuses_the_connection(anyio_backend: str) -> None:
    server_kw = {"udp": None, "tcp": ("127.0.0.1", 0)}
    response, stats = await exchange("TCP", **server_kw)
    assert response.status == 200
    assert stats["tcp_connected"] == 1  # the second request went over the same connection


async def test_tls_request_response(anyio_backend: str, tls_files: tuple[Path, Path]) -> None:
    server_ctx, client_ctx = contexts(tls_files)
    server_kw = {
        "udp": None,
        "tls": ("127.0.0.1", 0),
        "tls_server_context": server_ctx,
        "tls_client_context": client_ctx,
    }
    response, stats = await exchange("TLS", **server_kw)
    assert response.status == 200
    assert stats["tls_connected"] == 1


async def test_tls_listener_survives_clients_that_abort_the_handshake(
    anyio_backend: str, tls_files: tuple[Path, Path]
) -> None:
    """A client that drops out of the TLS handshake must not take the endpoint down.

    Regression: a peer that closed the TCP connection during the handshake (e.g. after
    failing to verify our certificate) raised anyio.EndOfStream out of the accept task,
    which tore down the endpoint's task group and every call on it.
    """
    server_ctx, client_ctx = contexts(tls_files)
    holder: list[TransactionEndpoint] = []
    server = TransactionEndpoint(
        on_event=responder(holder),
        udp=None,
        tls=("127.0.0.1", 0),
        tls_server_context=server_ctx,
    )
    holder.append(server)
    async with server:
        target = server.local("TLS")
        rejecting = ssl.create_default_context()  # no CA for our self-signed certificate
        for _ in range(2):  # a bare TCP connect-and-close, then a client refusing the cert
            raw = await anyio.connect_tcp(target.host, target.port)
            await raw.aclose()
        with pytest.raises(ssl.SSLError):
            await anyio.connect_tcp(target.host, target.port, tls=True, ssl_context=rejecting)
        client_endpoint = TransactionEndpoint(
            udp=None,
            tls=("127.0.0.1", 0),
            tls_server_context=server_ctx,
            tls_client_context=client_ctx,
        )
        async with client_endpoint as client:
            with anyio.fail_after(10):
                response = await client.request(simple_request("OPTIONS"), target)
        assert response.status == 200
        with anyio.fail_after(5):
            while server.stats.get("tls_tls_handshake_failures", 0) < 3:
                await anyio.sleep(0.01)


async def test_crlf_keepalive_ping_is_answered(anyio_backend: str) -> None:
    async with TransactionEndpoint(udp=None, tcp=("127.0.0.1", 0)) as ep:
        local = ep.local("TCP")
        with anyio.fail_after(10):
            stream = await anyio.connect_tcp(local.host, local.port)
            async with stream:
                await stream.send(b"\r\n\r\n")
                assert await stream.receive() == b"\r\n"  # RFC 5626 §3.5.1
        assert ep.stats["tcp_keepalive_pongs"] == 1


async def test_our_ping_reaches_the_peer_and_its_pong_is_dropped(anyio_backend: str) -> None:
    """We ping a TCP peer (RFC 5626 §3.5.1) and its single-CRLF pong is no message.

    The registration's keep-alive sends CRLFCRLF through ``Transport.send`` on the flow
    to the registrar; the peer's CRLF pong must not be taken for a (broken) message nor
    close the connection: a request after it still works on the same connection.
    """
    pings: list[bytes] = []
    async with anyio.create_task_group() as tg:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)

        async def serve(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                buffer = b""
                while b"\r\n\r\n" not in buffer:
                    buffer += await stream.receive()
                pings.append(buffer)
                await stream.send(b"\r\n")  # the pong
                request = b""
                while b"Content-Length: 0\r\n\r\n" not in request:
                    request += await stream.receive()
                parsed = parse_message(request)
                assert not isinstance(parsed, Response)
                await stream.send(make_response(parsed, 200).encode())
                await anyio.sleep(1)

        tg.start_soon(listener.serve, serve)
        async with TransactionEndpoint(udp=None, tcp=("127.0.0.1", 0)) as ep:
            target = Peer("TCP", "127.0.0.1", port)
            ep.transports["TCP"].send(b"\r\n\r\n", target)
            with anyio.fail_after(10):
                while not pings:
                    await anyio.sleep(0.01)
                await anyio.sleep(0.05)  # the pong arrives and is dropped
                response = await ep.request(simple_request("OPTIONS"), target)
            assert response.status == 200
            assert pings == [b"\r\n\r\n"]
            assert ep.stats["tcp_connected"] == 1  # the same connection carried both
        tg.cancel_scope.cancel()


async def test_idle_connections_are_closed(anyio_backend: str) -> None:
    async with TransactionEndpoint(
        udp=None, tcp=("127.0.0.1", 0), stream_limits=StreamLimits(idle_timeout=0.05)
    ) as ep:
        local = ep.local("TCP")
        with anyio.fail_after(10):
            stream = await anyio.connect_tcp(local.host, local.port)
            async with stream:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
        assert ep.stats["tcp_closed_idle"] == 1


async def test_tcp_connect_failure_reaches_the_tu(anyio_backend: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connection refused
        async with TransactionEndpoint(udp=None, tcp=("127.0.0.1", 0)) as ep:
            with anyio.fail_after(10), pytest.raises(TransportFailedError):
                await ep.request(simple_request("OPTIONS"), Peer("TCP", "127.0.0.1", port))
            assert ep.stats["tcp_connect_failures"] == 1


async def test_bad_udp_request_gets_400_and_garbage_is_counted(anyio_backend: str) -> None:
    async with TransactionEndpoint() as ep:
        local = ep.local("UDP")
        bad = simple_request("OPTIONS", via="SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKq").encode()
        bad = bad.replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 BYE")
        async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
            await sock.sendto(b"\x00garbage", local.host, local.port)
            await sock.sendto(bad, local.host, local.port)
            with anyio.fail_after(10):
                data, _addr = await sock.receive()
        reply = parse_message(data)
        assert isinstance(reply, Response)
        assert reply.status == 400
        assert ep.stats["dropped_unparseable"] == 1


async def test_large_request_over_udp_goes_over_tcp(anyio_backend: str) -> None:
    # One port number for both UDP and TCP, as SIP servers usually listen. The free port is
    # probed, released and bound again: another test may take it in between (flaky in CI
    # once), so a few ports are tried.
    holder: list[TransactionEndpoint] = []
    for _attempt in range(8):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
            except OSError:  # free for UDP, taken for TCP: the next one (a README run hit it)
                continue
        server = TransactionEndpoint(
            udp=("127.0.0.1", port), tcp=("127.0.0.1", port), on_event=responder(holder)
        )
        try:
            await server.__aenter__()
        except OSError:
            continue
        break
    else:
        pytest.fail("no port free for UDP and TCP at once")
    holder.append(server)
    client = TransactionEndpoint(udp=("127.0.0.1", 0), tcp=("127.0.0.1", 0))
    try:
        async with client:
            big = simple_request("MESSAGE", body=b"x" * 1500)
            with anyio.fail_after(10):
                response = await client.request(big, Peer("UDP", "127.0.0.1", port))
            assert response.status == 200
            assert client.stats["udp_to_tcp"] == 1
            assert server.stats["tcp_received"] == 1
    finally:
        await server.__aexit__(None, None, None)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_stdlib_datagram_read_size_is_lowered(anyio_backend: str) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        had = getattr(transport, "max_size", None)
        tuned = tune_datagram_transport(transport)
        # PACKAGING-NOTES §3: only the stdlib selector transport has the private max_size
        assert tuned == (isinstance(had, int) and had > 65535)
        if tuned:
            assert transport.max_size == 65535  # type: ignore[attr-defined]
    finally:
        transport.close()


async def test_invite_ack_flow_through_event_streams(anyio_backend: str) -> None:
    from rvoip_transaction_core import ResponseReceived, TransactionAck

    async with TransactionEndpoint() as uas, TransactionEndpoint() as uac:

        async def serve() -> None:
            async for event in uas.events():
                if isinstance(event, TransactionRequest):
                    uas.respond(event.txn_id, make_response(event.request, 180, to_tag="u"))
                    uas.respond(event.txn_id, make_response(event.request, 200, to_tag="u"))
                elif isinstance(event, TransactionAck):
                    return

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve)
                uac.send_request(simple_request("INVITE"), uas.local("UDP"))
                statuses = []
                async for event in uac.events():
                    if isinstance(event, ResponseReceived):
                        statuses.append(event.response.status)
                        if event.response.status == 200:
                            ack = simple_request("ACK", to_tag=event.response.to.tag)
                            uac.send_stateless(ack, uas.local("UDP"))
                            break
        assert statuses[-1] == 200
        assert uas.stats["requests_received"] == 2  # INVITE and the ACK


async def test_udp_over_ipv6_loopback(anyio_backend: str) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    holder: list[TransactionEndpoint] = []
    server = TransactionEndpoint(udp=("::1", 0), on_event=responder(holder))
    holder.append(server)
    async with server, TransactionEndpoint(udp=("::1", 0)) as client:
        with anyio.fail_after(10):
            response = await client.request(simple_request("OPTIONS"), server.local("UDP"))
        assert response.status == 200
        assert "[::1]" in (response.headers.get("via") or "")


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio.run", "uvloop"])
def test_endpoint_under_plain_asyncio_run_and_uvloop(use_uvloop: bool) -> None:
    """Regression: datagram callbacks run outside any task; under asyncio.run (not anyio.run)
    anyio.current_time() raised there, so the endpoint reads the loop's clock itself."""

    async def main() -> tuple[int, str]:
        holder: list[TransactionEndpoint] = []
        server = TransactionEndpoint(on_event=responder(holder))
        holder.append(server)
        async with server, TransactionEndpoint() as client:
            with anyio.fail_after(10):
                response = await client.request(simple_request("OPTIONS"), server.local("UDP"))
            return response.status, type(asyncio.get_running_loop()).__module__

    if use_uvloop:
        uvloop = pytest.importorskip("uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            status, loop_module = runner.run(main())
        assert loop_module.startswith("uvloop")
    else:
        status, loop_module = asyncio.run(main())
        assert loop_module.startswith("asyncio")
    assert status == 200


def test_tcp_connect_started_from_a_datagram_callback_under_asyncio_run() -> None:
    """Regression: a TU answering a UDP datagram may open a TCP connection from inside the
    datagram callback, where anyio cannot start tasks; a connector task does it instead."""

    async def main() -> int:
        got: list[TransactionRequest] = []
        done = anyio.Event()

        def far_tu(event: TransactionEvent) -> None:
            if isinstance(event, TransactionRequest):
                got.append(event)
                done.set()

        far = TransactionEndpoint(udp=None, tcp=("127.0.0.1", 0), on_event=far_tu)
        relay_box: list[TransactionEndpoint] = []

        def relay_tu(event: TransactionEvent) -> None:
            if isinstance(event, TransactionRequest):
                relay = relay_box[0]
                relay.respond(event.txn_id, make_response(event.request, 200, to_tag="r"))
                relay.send_request(simple_request("MESSAGE", call_id="relayed"), far.local("TCP"))

        relay = TransactionEndpoint(tcp=("127.0.0.1", 0), on_event=relay_tu)
        relay_box.append(relay)
        async with far, relay, TransactionEndpoint() as client:
            with anyio.fail_after(10):
                await client.request(simple_request("OPTIONS"), relay.local("UDP"))
                await done.wait()
        return len(got)

    assert asyncio.run(main()) == 1


async def test_timer_task_fires_timer_f_against_a_silent_peer(anyio_backend: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives, never answers
        port = silent.getsockname()[1]
        config = TimerConfig(t1=0.005, t2=0.04, t4=0.05)
        async with TransactionEndpoint(config=config, timer_resolution=0.001) as ep:
            with anyio.fail_after(10), pytest.raises(TransactionTimeoutError):
                await ep.request(simple_request("OPTIONS"), Peer("UDP", "127.0.0.1", port))
            # RFC 3261 §17.1.2.2: E retransmits (deadline order: E before F), then F fires
            assert ep.stats["udp_sent"] >= 2  # at least one retransmission before F
            assert ep.stats["timeout_F"] == 1


async def test_request_for_a_transport_we_do_not_have_fails_cleanly(anyio_backend: str) -> None:
    async with TransactionEndpoint() as ep:
        # the layer can build the Via (set_local) but no TCP transport is running
        ep.layer.set_local("TCP", "127.0.0.1", 5999)
        with anyio.fail_after(10), pytest.raises(TransportFailedError):
            await ep.request(simple_request("OPTIONS"), Peer("TCP", "127.0.0.1", 5999))
        assert ep.stats["dropped_no_transport"] == 1


async def test_a_failing_tu_callback_is_counted_not_fatal(anyio_backend: str) -> None:
    calls: list[TransactionEvent] = []

    def broken(event: TransactionEvent) -> None:
        calls.append(event)
        raise RuntimeError("TU bug")

    async with TransactionEndpoint(on_event=broken) as server, TransactionEndpoint() as client:
        client.send_request(simple_request("OPTIONS", call_id="x1"), server.local("UDP"))
        client.send_request(simple_request("OPTIONS", call_id="x2"), server.local("UDP"))
        with anyio.fail_after(10):
            while len(calls) < 2:
                await anyio.sleep(0.01)
        assert server.stats["tu_callback_errors"] >= 2


async def test_udp_reuses_one_peer_per_source(anyio_backend: str) -> None:
    seen: list[TransactionRequest] = []

    def collect(event: TransactionEvent) -> None:
        if isinstance(event, TransactionRequest):
            seen.append(event)

    async with TransactionEndpoint(on_event=collect) as server, TransactionEndpoint() as client:
        client.send_request(simple_request("OPTIONS", call_id="p1"), server.local("UDP"))
        client.send_request(simple_request("OPTIONS", call_id="p2"), server.local("UDP"))
        with anyio.fail_after(10):
            while len(seen) < 2:
                await anyio.sleep(0.01)
    # Peer is immutable: the transport hands the same object out for one source address
    assert seen[0].source == client.local("UDP")
    assert seen[0].source is seen[1].source


class _FlakyLayer(TransactionLayer):
    """A layer whose first handle_timers call fails (a bug in timer handling)."""

    failed: bool = False

    def handle_timers(self, now: float) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("timer bug")
        super().handle_timers(now)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_failing_timer_on_asyncio_is_counted_and_timers_go_on(anyio_backend: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives, never answers
        port = silent.getsockname()[1]
        config = TimerConfig(t1=0.005, t2=0.04, t4=0.05)
        ep = TransactionEndpoint(config=config, timer_resolution=0.001)
        ep.layer = _FlakyLayer(config=config)
        async with ep:
            with anyio.fail_after(10), pytest.raises(TransactionTimeoutError):
                await ep.request(simple_request("OPTIONS"), Peer("UDP", "127.0.0.1", port))
            # the loop timer handle was re-armed after the failure: E and F still ran
            assert ep.stats["timer_errors"] == 1
            assert ep.stats["timeout_F"] == 1


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_failing_timer_on_trio_does_not_end_the_endpoint(anyio_backend: str) -> None:
    """Regression (issue 10): on trio the timer is a task of the endpoint's task group; an
    exception from handle_timers escaped it and ended the group (every transaction and
    listener). It is now counted (timer_errors) and logged, and the timers go on."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives, never answers
        port = silent.getsockname()[1]
        config = TimerConfig(t1=0.005, t2=0.04, t4=0.05)
        ep = TransactionEndpoint(config=config, timer_resolution=0.001)
        ep.layer = _FlakyLayer(config=config)
        async with ep:
            with anyio.fail_after(10), pytest.raises(TransactionTimeoutError):
                await ep.request(simple_request("OPTIONS"), Peer("UDP", "127.0.0.1", port))
            assert ep.stats["timer_errors"] == 1
            assert ep.stats["timeout_F"] == 1


@pytest.mark.anyio
async def test_a_port_in_use_raises_its_oserror_and_leaves_no_task_group_open() -> None:
    """Bug: when UDP bound but TCP found its port taken, the clean-up closed the UDP
    transport inside the already cancelled task group; under trio that close raised
    Cancelled, the task group was never exited, and the caller's next task group failed
    with "Nursery misnesting detected!" instead of seeing the OSError."""
    import socket

    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError):
            async with TransactionEndpoint(udp=("127.0.0.1", port), tcp=("127.0.0.1", port)):
                pass
        async with anyio.create_task_group():
            pass  # the caller's own task groups still nest
    finally:
        taken.close()
