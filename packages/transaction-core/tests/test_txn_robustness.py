"""Hostile input (issue 10): no packet of death, validate before acting, CSPRNG, no DNS.

Real loopback sockets on both anyio backends where the transport matters; the sans-IO
layer directly where it does not.
"""

from __future__ import annotations

import random
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import Request, Response, parse_message
from rvoip_transaction_core import (
    Peer,
    TransactionAck,
    TransactionEndpoint,
    TransactionLayer,
    TransactionRequest,
    UdpTransport,
)
from rvoip_transaction_core import _layer as layer_module
from rvoip_transaction_core.testing import Responder, self_signed_certificate

pytestmark = pytest.mark.anyio

# A top Via on a later line than an empty "Via:" line, with rport: the layer rewrote the
# top Via for rport/received and indexed the empty line's element list (IndexError).
DEATH = (
    "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
    "Via: \r\n"
    "Via: SIP/2.0/{transport} 192.0.2.7:5060;branch=z9hG4bKdeath;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:eve@example.com>;tag=e\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: death@192.0.2.7\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n"
)


def options(transport: str, call_id: str, host: str = "127.0.0.1", port: int = 5060) -> bytes:
    """A valid OPTIONS whose Via names ``transport``."""
    return (
        f"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bK{call_id};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a\r\n"
        "To: <sip:bob@example.com>\r\n"
        f"Call-ID: {call_id}@test\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    files = self_signed_certificate(tmp_path_factory.mktemp("robust-tls"))
    if files is None:
        pytest.skip("openssl CLI not found: cannot generate a test certificate")
    return files


def server_context(files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*files)
    return context


def client_context(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


async def read_message(stream: anyio.abc.ByteStream) -> Response:
    """Read one response off a stream (Content-Length 0 responses only)."""
    data = b""
    with anyio.fail_after(10):
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
    message = parse_message(data[: data.index(b"\r\n\r\n") + 4])
    assert isinstance(message, Response)
    return message


async def stream_exchange(
    endpoint: TransactionEndpoint, transport: str, payload: bytes, cafile: Path | None
) -> Response:
    local = endpoint.local(transport)
    if transport == "TLS":
        assert cafile is not None
        stream: anyio.abc.ByteStream = await anyio.connect_tcp(
            local.host,
            local.port,
            ssl_context=client_context(cafile),
            tls_standard_compatible=False,
        )
    else:
        stream = await anyio.connect_tcp(local.host, local.port)
    async with stream:
        await stream.send(payload)
        return await read_message(stream)


# ------------------------------------------------------------------ item 1: packet of death


def test_empty_via_line_before_the_top_via_does_not_raise() -> None:
    """Regression (issue 10): ``Via: `` then ``Via: ...;rport`` raised IndexError.

    stamp_via rewrote the first Via *line*, whose element list was empty. On TCP/TLS the
    IndexError escaped the connection reader and ended the endpoint's task group.
    """
    layer = TransactionLayer(rng=random.Random(1))
    layer.set_local("TCP", "127.0.0.1", 5060)
    layer.receive(DEATH.format(transport="TCP").encode(), Peer("TCP", "192.0.2.7", 40000, 1), 0.0)
    (event,) = layer.take_events()
    assert isinstance(event, TransactionRequest)
    assert event.request.top_via.received == "192.0.2.7"
    assert event.request.top_via.rport == 40000
    assert layer.stats["receive_errors"] == 0


VIA_PIECES = st.sampled_from(
    [
        "",
        ",",
        " , ",
        "SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bKp1;rport",
        "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKp2;rport=;received",
        "SIP/2.0/TCP 192.0.2.7;branch=z9hG4bKp3;maddr=some.name;rport",
        'SIP/2.0/TCP h;branch="z9hG4bK,q";rport',
        "SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKp4",
        "SIP/2.0/TCP 192.0.2.7;received=192.0.2.9;RPORT=1",
        "junk",
    ]
)


@given(st.lists(st.lists(VIA_PIECES, max_size=3).map(", ".join), min_size=1, max_size=4))
def test_any_via_lines_are_answered_delivered_or_dropped_never_raised(lines: list[str]) -> None:
    """Property: whatever the Via lines (empty, commas, bad elements), the top-Via rewrite
    and matching raise nothing and hit no unexpected exception (receive_errors stays 0)."""
    vias = "".join(f"Via: {line}\r\n" for line in lines)
    data = DEATH.format(transport="TCP").replace(
        "Via: \r\nVia: SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bKdeath;rport\r\n", vias
    )
    for source in (Peer("TCP", "192.0.2.8", 40000, 1), Peer("UDP", "192.0.2.8", 40000)):
        layer = TransactionLayer(rng=random.Random(1))
        layer.set_local(source.transport, "127.0.0.1", 5060)
        layer.receive(data.encode(), source, 0.0)
        assert layer.stats["receive_errors"] == 0
        for event in layer.take_events():
            if isinstance(event, TransactionRequest):
                top = event.request.top_via  # the rewritten top Via parses
                assert top.received is None or top.received == "192.0.2.8"


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
async def test_stream_listener_survives_the_via_packet_of_death(
    anyio_backend: str, transport: str, tls_files: tuple[Path, Path]
) -> None:
    """Regression (issue 10): one malformed Via over TCP/TLS ended the whole endpoint.

    The listener must answer the bad message (here: it is valid once the Via rewrite is
    fixed) and then still answer the next valid request on a new connection.
    """
    responder = Responder(200)
    listen = {"tcp": ("127.0.0.1", 0)} if transport == "TCP" else {"tls": ("127.0.0.1", 0)}
    endpoint = TransactionEndpoint(
        udp=None,
        on_event=responder,
        tls_server_context=server_context(tls_files),
        **listen,  # type: ignore[arg-type]
    )
    responder.endpoint = endpoint
    async with endpoint:
        first = await stream_exchange(
            endpoint, transport, DEATH.format(transport=transport).encode(), tls_files[0]
        )
        assert first.status == 200
        second = await stream_exchange(
            endpoint, transport, options(transport, "after"), tls_files[0]
        )
        assert second.status == 200
        assert endpoint.stats.get("receive_errors", 0) == 0


@pytest.mark.parametrize("transport", ["UDP", "TCP", "TLS"])
async def test_any_exception_on_a_message_path_is_counted_answered_and_survived(
    anyio_backend: str,
    transport: str,
    tls_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rule (issue 10): whatever a message makes the layer raise, the listener goes on.

    A bug anywhere on the per-message path (simulated: stamp_via raising RuntimeError) is
    counted (``receive_errors``), answered 400 since a request can be formed, and the
    next request is served. Before, the exception escaped to the reader / the loop.
    """
    calls = 0

    def broken(*args: object) -> object:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug on the receive path")

    responder = Responder(200)
    listen: dict[str, object] = {
        "UDP": {},
        "TCP": {"udp": None, "tcp": ("127.0.0.1", 0)},
        "TLS": {"udp": None, "tls": ("127.0.0.1", 0)},
    }[transport]  # type: ignore[assignment]
    endpoint = TransactionEndpoint(
        on_event=responder,
        tls_server_context=server_context(tls_files),
        **listen,  # type: ignore[arg-type]
    )
    responder.endpoint = endpoint
    async with endpoint:
        local = endpoint.local(transport)
        with monkeypatch.context() as patch:
            patch.setattr(layer_module, "stamp_via", broken)
            if transport == "UDP":
                async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
                    await sock.sendto(options("UDP", "bug"), local.host, local.port)
                    with anyio.fail_after(10):
                        data, _ = await sock.receive()
                bad = parse_message(data)
            else:
                bad = await stream_exchange(
                    endpoint, transport, options(transport, "bug"), tls_files[0]
                )
        assert isinstance(bad, Response)
        assert bad.status == 400
        assert calls == 1
        assert endpoint.stats["receive_errors"] == 1
        if transport == "UDP":
            async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
                await sock.sendto(options("UDP", "next"), local.host, local.port)
                with anyio.fail_after(10):
                    data, _ = await sock.receive()
            good = parse_message(data)
        else:
            good = await stream_exchange(
                endpoint, transport, options(transport, "next"), tls_files[0]
            )
        assert isinstance(good, Response)
        assert good.status == 200


async def test_a_failing_deliver_callback_does_not_end_the_udp_transport(
    anyio_backend: str,
) -> None:
    """The transport's own guard: a Deliver callback that raises is counted, not fatal."""
    seen: list[bytes] = []

    def deliver(data: bytes, source: Peer) -> None:
        seen.append(data)
        raise RuntimeError("layer above failed")

    async with anyio.create_task_group() as tg:
        transport = UdpTransport()
        await transport.start(tg, deliver, lambda txn_id, reason: None)
        local = transport.local
        async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
            for _ in range(3):
                await sock.sendto(b"x", local.host, local.port)
            with anyio.fail_after(10):
                while len(seen) < 3:
                    await anyio.sleep(0.01)
        assert transport.stats["deliver_errors"] == 3
        await transport.aclose()
        tg.cancel_scope.cancel()


# ------------------------------------------------------------------ item 2: validation


async def udp_answer(endpoint: TransactionEndpoint, payload: bytes) -> Response:
    local = endpoint.local("UDP")
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
        await sock.sendto(payload, local.host, local.port)
        with anyio.fail_after(10):
            data, _ = await sock.receive()
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


@pytest.fixture
def invalid_requests(corpora: Path) -> Iterator[tuple[str, bytes, str]]:
    valid = options("UDP", "v")
    return iter(
        [
            ("insuf", (corpora / "rfc4475" / "insuf.dat").read_bytes(), "Missing "),
            ("multi01", (corpora / "rfc4475" / "multi01.dat").read_bytes(), "Conflicting "),
            (
                "max-forwards",
                valid.replace(b"Max-Forwards: 70", b"Max-Forwards: seventy"),
                "Invalid Max-Forwards",
            ),
            (
                "no-call-id",
                valid.replace(b"Call-ID: v@test\r\n", b""),
                "Missing Call-ID",
            ),
        ]
    )


async def test_invalid_requests_get_400_with_a_warning_naming_the_fault(
    anyio_backend: str, invalid_requests: Iterator[tuple[str, bytes, str]]
) -> None:
    """Regression (issue 10): insuf and a non-numeric Max-Forwards were answered 200 OK by
    the TU; multi01 and a request without Call-ID were dropped. RFC 3261 §8.2: validate
    before acting; answer 400 with a reason and ``Warning: 399`` naming the fault."""
    responder = Responder(200)
    async with TransactionEndpoint(on_event=responder) as endpoint:
        responder.endpoint = endpoint
        local = endpoint.local("UDP")
        for name, payload, fault in invalid_requests:
            answer = await udp_answer(endpoint, payload)
            assert answer.status == 400, name
            assert answer.reason.startswith(fault), name
            warning = answer.headers.get("Warning")
            assert warning is not None, name
            assert warning.startswith(f'399 {local.host}:{local.port} "{fault}'), name
        assert responder.answered == 0
        assert endpoint.stats["rejected_invalid"] == 4
        assert (await udp_answer(endpoint, options("UDP", "fine"))).status == 200


async def test_unknown_uri_scheme_gets_416(anyio_backend: str, corpora: Path) -> None:
    responder = Responder(200)
    async with TransactionEndpoint(on_event=responder) as endpoint:
        responder.endpoint = endpoint
        answer = await udp_answer(endpoint, (corpora / "rfc4475" / "unkscm.dat").read_bytes())
        assert answer.status == 416
        assert responder.answered == 0


def test_max_forwards_zero_reaches_the_uas(corpora: Path) -> None:
    """A UAS processes Max-Forwards 0 (RFC 3261 §16.3's 483 is for proxies)."""
    layer = TransactionLayer(rng=random.Random(1))
    layer.receive(
        (corpora / "rfc4475" / "zeromf.dat").read_bytes(), Peer("UDP", "192.0.2.1", 5060), 0.0
    )
    assert any(isinstance(event, TransactionRequest) for event in layer.take_events())


def test_invalid_ack_for_no_transaction_is_dropped_and_counted() -> None:
    ack = (
        b"ACK sip:bob@127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKack\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:a@example.com>;tag=a\r\n"
        b"To: <sip:b@example.com>;tag=b\r\n"
        b"CSeq: 1 ACK\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    layer = TransactionLayer(rng=random.Random(1))
    source = Peer("UDP", "192.0.2.1", 5060)
    layer.receive(ack, source, 0.0)
    assert layer.take_events() == []
    assert layer.take_transmits() == []  # an ACK is never answered
    assert layer.stats["dropped_invalid_ack"] == 1
    good = ack.replace(b"CSeq: 1 ACK", b"Call-ID: c@x\r\nCSeq: 1 ACK")
    layer.receive(good, source, 0.0)
    assert [type(event) for event in layer.take_events()] == [TransactionAck]


# ------------------------------------------------------------------ item 3: CSPRNG


async def test_identifiers_come_from_the_os_csprng_by_default(anyio_backend: str) -> None:
    """Regression (issue 10): branches and the stateless 400's To tag came from one
    Mersenne Twister (random.Random()), whose state a few hundred outputs reveal."""
    assert isinstance(TransactionLayer().rng, random.SystemRandom)
    async with TransactionEndpoint() as endpoint:
        assert isinstance(endpoint.layer.rng, random.SystemRandom)
    seeded = random.Random(5)
    assert TransactionEndpoint(rng=seeded).layer.rng is seeded


# ------------------------------------------------------------------ item 7: no DNS on send


async def test_a_via_maddr_name_is_never_resolved(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 10): a response to ``Via: ...;maddr=some.name`` went to sendto
    with the name, which resolves it synchronously inside the event loop, per packet.
    The transport refuses non-IP targets (counted, logged); nothing is resolved."""

    real_getaddrinfo = socket.getaddrinfo
    looked_up: list[object] = []

    def no_dns(host: object, *args: object, **kwargs: object) -> object:
        if host in ("some.name.invalid", b"some.name.invalid"):
            looked_up.append(host)
            raise AssertionError("DNS lookup in the send path")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    responder = Responder(200)
    async with TransactionEndpoint(on_event=responder) as endpoint:
        responder.endpoint = endpoint
        udp = endpoint.transports["UDP"]
        assert isinstance(udp, UdpTransport)
        targets: list[tuple[str, int]] = []
        real_sendto = udp._sendto

        def recording_sendto(data: bytes, address: tuple[str, int]) -> object:
            targets.append(address)
            return real_sendto(data, address)

        udp._sendto = recording_sendto
        monkeypatch.setattr(socket, "getaddrinfo", no_dns)
        local = endpoint.local("UDP")
        payload = options("UDP", "maddr").replace(b";rport", b";maddr=some.name.invalid")
        async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
            await sock.sendto(payload, local.host, local.port)
            with anyio.fail_after(10):
                while responder.answered < 1:
                    await anyio.sleep(0.01)
        assert endpoint.stats["udp_refused_not_ip_literal"] == 1
        assert all(host != "some.name.invalid" for host, _port in targets)
        assert looked_up == []


def test_request_to_a_host_name_is_refused_before_any_socket() -> None:
    errors: list[tuple[int | None, str]] = []
    transport = UdpTransport(on_error=lambda txn_id, reason: errors.append((txn_id, reason)))
    transport.send(b"x", Peer("UDP", "sip.example.com", 5060), 7)
    assert transport.stats["refused_not_ip_literal"] == 1
    assert [txn_id for txn_id, _reason in errors] == [7]


def test_request_received_is_a_request() -> None:
    """The parsed OPTIONS helper is valid for the layer (guards the fixtures above)."""
    message = parse_message(options("UDP", "x"))
    assert isinstance(message, Request)
