"""TCP/TLS exhaustion limits (`StreamLimits`), 413 for big bodies, TLS server names.

Real loopback sockets with short settings, on both anyio backends.
"""

from __future__ import annotations

import errno
import resource
import ssl
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteStream

from rvoip_sip_core import Response, parse_message
from rvoip_transaction_core import (
    Peer,
    StreamLimits,
    StreamTransport,
    TransactionEndpoint,
    TransportFailedError,
)
from rvoip_transaction_core.testing import Responder, self_signed_certificate, simple_request

pytestmark = pytest.mark.anyio

NAME = "sip.example.test"


def invite_head(content_length: int) -> bytes:
    return (
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKbig\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: big@test\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


async def closed_by_server(stream: ByteStream, within: float) -> bytes:
    """Read until the server closes the connection; return what it sent."""
    received = b""
    with anyio.fail_after(within):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return received


async def tcp_endpoint(limits: StreamLimits) -> TransactionEndpoint:
    responder = Responder(200)
    endpoint = TransactionEndpoint(
        udp=None, tcp=("127.0.0.1", 0), on_event=responder, stream_limits=limits
    )
    responder.endpoint = endpoint
    return endpoint


# ------------------------------------------------------------------ read deadline / idle


async def test_a_trickled_message_is_cut_at_the_read_deadline(anyio_backend: str) -> None:
    """Regression (issue 10): one byte every 25 s kept a connection for ever, since any
    byte reset the idle timer. A message must now complete within message_read_timeout
    of its first byte (Kamailio's tcp_msg_read_timeout)."""
    limits = StreamLimits(message_read_timeout=0.3, idle_timeout=30.0)
    async with await tcp_endpoint(limits) as endpoint:
        local = endpoint.local("TCP")
        stream = await anyio.connect_tcp(local.host, local.port)
        async with stream:
            start = anyio.current_time()
            with anyio.fail_after(5):
                for byte in invite_head(0)[:40]:
                    try:
                        await stream.send(bytes([byte]))
                    except (anyio.BrokenResourceError, OSError):
                        break
                    await anyio.sleep(0.05)
                    if endpoint.stats.get("tcp_closed_read_timeout"):
                        break
            await closed_by_server(stream, 5)
            assert anyio.current_time() - start < 3
        assert endpoint.stats["tcp_closed_read_timeout"] == 1


async def test_only_a_complete_message_resets_the_idle_timer(anyio_backend: str) -> None:
    """Bare LFs between messages (ignored by the framer: not a message, not a ping) every
    0.05 s do not keep a connection: before, any received byte reset the idle timer."""
    limits = StreamLimits(message_read_timeout=30.0, idle_timeout=0.3)
    async with await tcp_endpoint(limits) as endpoint:
        local = endpoint.local("TCP")
        stream = await anyio.connect_tcp(local.host, local.port)
        async with stream:
            start = anyio.current_time()
            with anyio.fail_after(5):
                while not endpoint.stats.get("tcp_closed_idle"):
                    try:
                        await stream.send(b"\n")
                    except (anyio.BrokenResourceError, OSError):
                        break
                    await anyio.sleep(0.05)
            assert anyio.current_time() - start < 3
        assert endpoint.stats["tcp_closed_idle"] == 1


async def test_complete_messages_keep_a_connection_past_the_idle_timeout(
    anyio_backend: str,
) -> None:
    limits = StreamLimits(idle_timeout=0.4)
    async with await tcp_endpoint(limits) as endpoint:
        local = endpoint.local("TCP")
        stream = await anyio.connect_tcp(local.host, local.port)
        async with stream:
            for _ in range(4):  # 0.8 s in all, twice the idle timeout
                await stream.send(b"\r\n\r\n")  # a keep-alive ping is a complete message
                with anyio.fail_after(5):
                    assert await stream.receive() == b"\r\n"
                await anyio.sleep(0.2)
        assert endpoint.stats.get("tcp_closed_idle", 0) == 0


# ------------------------------------------------------------------ connection caps


async def test_per_ip_connection_cap(anyio_backend: str) -> None:
    limits = StreamLimits(max_connections_per_ip=2)
    async with await tcp_endpoint(limits) as endpoint:
        local = endpoint.local("TCP")
        kept = [await anyio.connect_tcp(local.host, local.port) for _ in range(2)]
        with anyio.fail_after(5):
            while endpoint.stats.get("tcp_accepted", 0) < 2:
                await anyio.sleep(0.01)
        third = await anyio.connect_tcp(local.host, local.port)
        async with third:
            assert await closed_by_server(third, 5) == b""
        assert endpoint.stats["tcp_refused_too_many_connections_per_ip"] == 1
        for stream in kept:  # the capped ones still work
            async with stream:
                await stream.send(b"\r\n\r\n")
                with anyio.fail_after(5):
                    assert await stream.receive() == b"\r\n"


async def test_global_connection_cap(anyio_backend: str) -> None:
    limits = StreamLimits(max_connections=1)
    async with await tcp_endpoint(limits) as endpoint:
        local = endpoint.local("TCP")
        first = await anyio.connect_tcp(local.host, local.port)
        with anyio.fail_after(5):
            while endpoint.stats.get("tcp_accepted", 0) < 1:
                await anyio.sleep(0.01)
        second = await anyio.connect_tcp(local.host, local.port)
        async with first, second:
            assert await closed_by_server(second, 5) == b""
        assert endpoint.stats["tcp_refused_too_many_connections"] == 1


def test_the_connection_cap_stays_below_the_descriptor_limit() -> None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = StreamLimits(max_connections=10**9, fd_reserve=100)
    cap = limits.connection_cap()
    if soft == resource.RLIM_INFINITY:
        assert cap == 10**9
    else:
        assert cap == max(1, soft - 100)
    assert StreamLimits(max_connections=5).connection_cap() == min(5, cap)


class _ExhaustedListener:
    """A listener whose accept() fails with EMFILE, as when descriptors run out."""

    def __init__(self) -> None:
        self.calls = 0

    async def accept(self) -> ByteStream:
        self.calls += 1
        raise OSError(errno.EMFILE, "Too many open files")


async def test_accept_backs_off_on_emfile_instead_of_spinning(anyio_backend: str) -> None:
    """Regression (issue 10): accept() failing with EMFILE was retried at once, for ever
    (the pending connection stays queued), spinning the event loop at 100 % CPU."""
    transport = StreamTransport(limits=StreamLimits(accept_backoff=0.02, accept_backoff_max=0.1))
    listener = _ExhaustedListener()
    async with anyio.create_task_group() as tg:
        tg.start_soon(transport._accept_loop, listener, tg)  # type: ignore[arg-type]
        await anyio.sleep(0.5)
        tg.cancel_scope.cancel()
    # 0.02 + 0.04 + 0.08 + 0.1 + 0.1 + ... : at most ~8 attempts in 0.5 s, not thousands
    assert 2 <= listener.calls <= 10
    assert transport.stats["accept_backoffs"] == listener.calls


# ------------------------------------------------------------------ 413


async def test_a_body_over_the_stream_limit_gets_413_then_the_connection_closes(
    anyio_backend: str,
) -> None:
    """Regression (issue 10): a Content-Length over the 64 KB stream limit closed the
    connection silently; RFC 3261 §21.4.11: answer 413 Request Entity Too Large."""
    async with await tcp_endpoint(StreamLimits()) as endpoint:
        local = endpoint.local("TCP")
        stream = await anyio.connect_tcp(local.host, local.port)
        async with stream:
            await stream.send(invite_head(1_000_000) + b"v=0\r\n")
            data = await closed_by_server(stream, 10)
        answer = parse_message(data)
        assert isinstance(answer, Response)
        assert answer.status == 413
        assert answer.call_id == "big@test"
        assert answer.cseq.method == "INVITE"
        assert answer.headers.get("Warning") is not None
        assert endpoint.stats["answered_413"] == 1
        assert endpoint.stats["tcp_closed_unframeable"] == 1


async def test_a_missing_content_length_on_a_stream_gets_400(anyio_backend: str) -> None:
    async with await tcp_endpoint(StreamLimits()) as endpoint:
        local = endpoint.local("TCP")
        stream = await anyio.connect_tcp(local.host, local.port)
        async with stream:
            head = invite_head(0).replace(b"Content-Length: 0\r\n", b"")
            await stream.send(head)
            data = await closed_by_server(stream, 10)
        answer = parse_message(data)
        assert isinstance(answer, Response)
        assert answer.status == 400


# ------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def name_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for the host name NAME (its own test CA), not for any IP."""
    files = self_signed_certificate(tmp_path_factory.mktemp("tls-name"), NAME)
    if files is None:
        pytest.skip("openssl CLI not found: cannot generate a test certificate")
    return files


async def test_tls_handshake_timeout(anyio_backend: str, name_cert: tuple[Path, Path]) -> None:
    """A client that connects and never starts TLS holds the socket only so long."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*name_cert)
    limits = StreamLimits(tls_handshake_timeout=0.3)
    async with TransactionEndpoint(
        udp=None, tls=("127.0.0.1", 0), tls_server_context=server, stream_limits=limits
    ) as endpoint:
        local = endpoint.local("TLS")
        stream = await anyio.connect_tcp(local.host, local.port)
        async with stream:
            start = anyio.current_time()
            await closed_by_server(stream, 5)
            assert anyio.current_time() - start < 3
        assert endpoint.stats["tls_tls_handshake_failures"] == 1


async def test_tls_verifies_the_server_name_not_the_ip(
    anyio_backend: str, name_cert: tuple[Path, Path]
) -> None:
    """RFC 5922 §7: for sips:bob@sip.example.test the certificate is checked against the
    name (sent as SNI), though the connection goes to the IP the name resolved to."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*name_cert)
    client = ssl.create_default_context(cafile=str(name_cert[0]))
    seen_names: list[str | None] = []

    def sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext) -> None:
        seen_names.append(name)

    server.sni_callback = sni
    responder = Responder(200)
    server_endpoint = TransactionEndpoint(
        udp=None, tls=("127.0.0.1", 0), tls_server_context=server, on_event=responder
    )
    responder.endpoint = server_endpoint
    async with (
        server_endpoint,
        TransactionEndpoint(udp=None, tls=("127.0.0.1", 0), tls_client_context=client) as ua,
    ):
        local = server_endpoint.local("TLS")
        right = Peer("TLS", local.host, local.port, server_name=NAME)
        with anyio.fail_after(10):
            response = await ua.request(simple_request("OPTIONS", call_id="right"), right)
        assert response.status == 200
        assert seen_names == [NAME]
        for name in ("wrong.example.test", None):  # a wrong name, or the bare IP
            target = Peer("TLS", local.host, local.port, server_name=name)
            with anyio.fail_after(10), pytest.raises(TransportFailedError):
                await ua.request(simple_request("OPTIONS", call_id=f"x{name}"), target)
        assert ua.stats["tls_connect_failures"] == 2


def test_server_name_is_not_part_of_peer_equality() -> None:
    plain = Peer("TLS", "192.0.2.1", 5061)
    named = Peer("TLS", "192.0.2.1", 5061, server_name=NAME)
    assert plain == named
    assert hash(plain) == hash(named)
    assert named.server_name == NAME
