"""Property tests through the real transports (issue 10): hostile bytes end nothing.

Hypothesis drives arbitrary bytes and mutated valid messages through real UDP, TCP and TLS
listeners of a running `TransactionEndpoint` (loopback; the endpoint runs on its own event
loop in a portal thread, on asyncio and trio). After each batch the listener must still
answer a valid OPTIONS with 200, and no failure may have escaped into the loop.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvoip_sip_core import Response, parse_message
from rvoip_transaction_core import StreamLimits, TransactionEndpoint
from rvoip_transaction_core.testing import Responder, self_signed_certificate

BASES = [
    (
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/{t} 127.0.0.1:5999;branch=z9hG4bKbase1;rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: base1@test\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:alice@127.0.0.1:5999>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 13\r\n\r\n"
        "v=0\r\ns=-\r\nt=0"
    ),
    (
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
        "v: SIP/2.0/{t} [::1]:5999;branch=z9hG4bKbase2;received=1.2.3.4;maddr=127.0.0.1\r\n"
        "Max-Forwards: 0\r\n"
        "f: <sip:alice@example.com>;tag=a2\r\n"
        "t: <sip:bob@example.com>;tag=b2\r\n"
        "i: base2@test\r\n"
        "CSeq: 2 OPTIONS\r\n"
        "l: 0\r\n\r\n"
    ),
    (
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/{t} 127.0.0.1:5999;branch=z9hG4bKbase3\r\n"
        "From: <sip:alice@example.com>;tag=a3\r\n"
        "To: <sip:bob@example.com>;tag=b3\r\n"
        "Call-ID: base3@test\r\n"
        "CSeq: 3 BYE\r\n"
        "Content-Length: 0\r\n\r\n"
    ),
    (
        "CANCEL sip:bob@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/{t} 127.0.0.1:5999;branch=z9hG4bKbase1;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: base1@test\r\n"
        "CSeq: 1 CANCEL\r\n"
        "Content-Length: 0\r\n\r\n"
    ),
]

# Pieces that tend to reach deep paths: empty lists, separators, brackets, quotes, big numbers.
TOKENS = [
    b"",
    b"\r\n",
    b"Via: \r\n",
    b"Via: ,\r\n",
    b";rport",
    b";maddr=some.name",
    b";received",
    b",",
    b";",
    b"[",
    b"]",
    b'"',
    b"\\",
    b"<",
    b">",
    b":",
    b"99999999999",
    b"\x00",
    b"\xff",
    b" ",
    b"\t",
    b"Content-Length: 70000\r\n",
    b"CSeq: 1 ACK\r\n",
    b"To: <sip:x@y>;tag=\r\n",
]


@st.composite
def mutated_messages(draw: st.DrawFn, transport: str) -> bytes:
    """A valid message with a few byte-, token- and line-level mutations."""
    data = bytearray(draw(st.sampled_from(BASES)).format(t=transport).encode())
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["insert", "replace", "delete", "dup_line", "drop_line"]))
        at = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(max_size=8))
        elif kind == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            lines = bytes(data).split(b"\r\n")
            index = draw(st.integers(0, max(0, len(lines) - 1)))
            if kind == "dup_line":
                lines.insert(index, lines[index])
            elif len(lines) > 1:
                del lines[index]
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    files = self_signed_certificate(tmp_path_factory.mktemp("hostile-tls"))
    if files is None:
        pytest.skip("openssl CLI not found: cannot generate a test certificate")
    return files


class Running:
    """A running endpoint (in a portal thread) and blocking clients for it."""

    def __init__(self, portal: BlockingPortal, endpoint: TransactionEndpoint, cafile: Path):
        self.portal = portal
        self.endpoint = endpoint
        self.client_tls = ssl.create_default_context(cafile=str(cafile))

    def address(self, transport: str) -> tuple[str, int]:
        local = self.endpoint.local(transport)
        return local.host, local.port

    def send(self, transport: str, data: bytes) -> None:
        """Send ``data`` and go away (a new connection per message on streams)."""
        if transport == "UDP":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(data or b"\x00", self.address("UDP"))
            return
        with socket.create_connection(self.address(transport), timeout=5) as raw:
            if transport == "TLS":
                with self.client_tls.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(data)
            else:
                raw.sendall(data)

    def options(self, transport: str, call_id: str) -> Response:
        """A valid OPTIONS; return the final response (blocking, with a timeout)."""
        data = (
            "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 127.0.0.1:5999;branch=z9hG4bK{call_id};rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:alice@example.com>;tag=ok\r\n"
            "To: <sip:bob@example.com>\r\n"
            f"Call-ID: {call_id}@probe\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        if transport == "UDP":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(5)
                sock.sendto(data, self.address("UDP"))
                reply = sock.recv(65535)
        else:
            with socket.create_connection(self.address(transport), timeout=5) as raw:
                stream: socket.socket = raw
                if transport == "TLS":
                    stream = self.client_tls.wrap_socket(raw, server_hostname="127.0.0.1")
                stream.sendall(data)
                reply = b""
                while b"\r\n\r\n" not in reply:
                    chunk = stream.recv(65535)
                    assert chunk, "connection closed without an answer"
                    reply += chunk
        message = parse_message(reply)
        assert isinstance(message, Response)
        return message

    def assert_alive(self, transport: str, tag: str) -> None:
        for probe in range(2):
            assert self.options(transport, f"{tag}{probe}").status == 200
        stats = self.endpoint.stats
        # Failures on a message's path are counted, never raised; a counted one is a bug
        # to look at, so the properties want none.
        for key in ("receive_errors", "deliver_errors", "tu_callback_errors"):
            assert stats.get(key, 0) == 0, (key, stats)
        for name in ("udp", "tcp", "tls"):
            assert stats.get(f"{name}_deliver_errors", 0) == 0, stats
            assert stats.get(f"{name}_reader_errors", 0) == 0, stats


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def running(request: pytest.FixtureRequest, tls_files: tuple[Path, Path]) -> Iterator[Running]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*tls_files)
    responder = Responder(200)
    endpoint = TransactionEndpoint(
        udp=("127.0.0.1", 0),
        tcp=("127.0.0.1", 0),
        tls=("127.0.0.1", 0),
        tls_server_context=server,
        on_event=responder,
        # short read deadline: examples that leave a partial message do not pile up
        stream_limits=StreamLimits(message_read_timeout=1.0, max_connections_per_ip=4096),
    )
    responder.endpoint = endpoint
    with (
        start_blocking_portal(backend=str(request.param)) as portal,
        portal.wrap_async_context_manager(endpoint),
    ):
        yield Running(portal, endpoint, tls_files[0])


HOSTILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("transport", ["UDP", "TCP", "TLS"])
def test_arbitrary_bytes_end_no_listener(running: Running, transport: str) -> None:
    """Property: whatever bytes arrive, the listener still answers a valid OPTIONS."""

    @HOSTILE
    @given(st.binary(max_size=1500))
    def feed(data: bytes) -> None:
        running.send(transport, data)

    feed()
    running.assert_alive(transport, f"bytes{transport}")


@pytest.mark.parametrize("transport", ["UDP", "TCP", "TLS"])
def test_mutated_messages_end_no_listener(running: Running, transport: str) -> None:
    """Property: mutated valid messages (deep paths: Via rewriting, matching, CANCEL,
    responses, the TU's make_response) are answered, dropped or counted, never fatal."""

    @HOSTILE
    @given(mutated_messages(transport))
    def feed(data: bytes) -> None:
        running.send(transport, data)

    feed()
    running.assert_alive(transport, f"mutated{transport}")
