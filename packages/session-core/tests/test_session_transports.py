"""One coordinator on UDP, TCP and TLS at once (RFC 3261 §18), the transport of each call
picked from its target URI, SIPS end to end (RFC 5630), over real loopback sockets."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from rvoip_session_core import CallFailed, SessionCoordinator, SessionManagerBuilder
from rvoip_session_core.testing import SipTrace, loopback_builder, released, wait_until

pytestmark = pytest.mark.anyio


def with_cert(builder: SessionManagerBuilder, files: tuple[Path, Path]) -> SessionManagerBuilder:
    cert, key = files
    return builder.with_tls(str(cert), str(key), cafile=str(cert))


async def call_once(alice: SessionCoordinator, target: str, bob: SessionCoordinator) -> None:
    call = await alice.create_outgoing_call("sip:alice@127.0.0.1", target)
    await alice.wait_for_answer(call.id, 5)
    await alice.terminate_session(call.id)
    assert await wait_until(lambda: released(bob) and released(alice))


async def test_one_coordinator_serves_udp_tcp_and_tls_at_once(
    anyio_backend: str, session_tls_files: tuple[Path, Path]
) -> None:
    """Issue 16: a coordinator bound UDP *or* TCP *or* TLS. Now one ``rvoip``-style
    coordinator answers on UDP and TCP on its SIP port and on TLS beside it, and each call's
    transport, Via and Contact follow the target URI (``transport=``, ``sips:``)."""
    trace = SipTrace()
    async with (
        await with_cert(loopback_builder("bob"), session_tls_files).build() as bob,
        await with_cert(loopback_builder("alice"), session_tls_files).build() as alice,
    ):
        trace.attach(bob, "bob")
        trace.attach(alice, "alice")
        host, port = bob.local_sip_address
        udp = bob.endpoint.local("UDP")
        tcp = bob.endpoint.local("TCP")
        tls = bob.endpoint.local("TLS")
        assert udp.port == tcp.port == port
        assert tls.port not in (0, port)
        cases = (
            (f"sip:bob@{host}:{port}", "UDP", f"sip:bob@{host}:{port}"),
            (
                f"sip:bob@{host}:{port};transport=tcp",
                "TCP",
                f"sip:bob@{host}:{port};transport=tcp",
            ),
            (
                f"sip:bob@{host}:{tls.port};transport=tls",
                "TLS",
                f"sip:bob@{host}:{tls.port};transport=tls",
            ),
            (f"sips:bob@{host}:{tls.port}", "TLS", f"sips:bob@{host}:{tls.port}"),
        )
        with anyio.fail_after(30):
            for target, transport, contact in cases:
                await call_once(alice, target, bob)
                invite = trace.requests("INVITE")[-1]
                assert invite.top_via.transport == transport, target
                ok = [r for r in trace.responses(200) if r.cseq.method == "INVITE"][-1]
                assert str(ok.contacts[0].uri) == contact, target


async def test_a_tls_client_needs_no_certificate(
    anyio_backend: str, session_tls_files: tuple[Path, Path]
) -> None:
    """Issue 16: ``rvoip call --transport tls`` refused to run without ``--cert``. A TLS
    client verifies the server (here with ``cafile``) and presents no certificate."""
    cert, _key = session_tls_files
    client = loopback_builder("alice").with_transport("tls").with_tls(cafile=str(cert))
    assert client.config().tls_certfile is None
    async with (
        await with_cert(loopback_builder("bob"), session_tls_files).build() as bob,
        await client.build() as alice,
    ):
        host, _port = bob.local_sip_address
        tls = bob.endpoint.local("TLS")
        with anyio.fail_after(15):
            # no transport= in the URI: the preferred transport (TLS) is used.
            await call_once(alice, f"sip:bob@{host}:{tls.port}", bob)


async def test_a_sips_call_without_tls_fails_with_416_and_is_never_downgraded(
    anyio_backend: str,
) -> None:
    """RFC 5630 §3.1.3: a coordinator serving only UDP and TCP refuses to dial sips: (a
    ``CallFailed`` 416), it does not send the INVITE over UDP."""
    trace = SipTrace()
    async with (
        await loopback_builder("bob").build() as bob,
        await loopback_builder("alice").with_transports("udp", "tcp").build() as alice,
    ):
        trace.attach(alice, "alice")
        host, port = bob.local_sip_address
        with anyio.fail_after(10):
            call = await alice.create_outgoing_call(
                "sip:alice@127.0.0.1", f"sips:bob@{host}:{port}"
            )
            with pytest.raises(CallFailed) as failed:
                await alice.wait_for_answer(call.id, 5)
        assert failed.value.status == 416
        assert trace.requests("INVITE") == []
        assert alice.sip_stats()["dialog_sips_refused"] == 1


def test_builder_transports_and_tls_port() -> None:
    from rvoip_session_core import ConfigurationError

    default = SessionManagerBuilder().config()
    assert default.served_transports() == ("UDP", "TCP", "TLS")
    assert default.tls_listen_port(5060) == 5061
    assert default.tls_listen_port(5070) == 5071
    assert default.tls_listen_port(0) == 0
    chosen = SessionManagerBuilder().with_transport("tcp").with_transports("udp", "tcp")
    assert chosen.config().served_transports() == ("TCP", "UDP")
    assert SessionManagerBuilder().with_tls_port(6000).config().tls_listen_port(5060) == 6000
    with pytest.raises(ConfigurationError, match="preferred"):
        SessionManagerBuilder().with_transport("tls").with_transports("udp").config()
    with pytest.raises(ConfigurationError):
        SessionManagerBuilder().with_transports("sctp")


async def test_options_follow_the_target_uri_and_never_downgrade_sips(
    anyio_backend: str, session_tls_files: tuple[Path, Path]
) -> None:
    """``send_options`` builds its request itself (no dialog driver): it used to put the
    preferred transport's Contact on every OPTIONS and to let a sips: target without a TLS
    transport end in a transaction-layer error. Now the Contact names the transport used
    (sips: for sips:) and a sips: target over UDP/TCP is refused with a TransportError."""
    from rvoip_session_core import TransportError

    trace = SipTrace()
    async with (
        await with_cert(loopback_builder("bob"), session_tls_files).build() as bob,
        await with_cert(loopback_builder("alice"), session_tls_files).build() as alice,
        await loopback_builder("carol").with_transports("udp", "tcp").build() as carol,
    ):
        trace.attach(alice, "alice")
        host, _port = bob.local_sip_address
        tls = bob.endpoint.local("TLS")
        mine = alice.endpoint.local("TLS").port
        with anyio.fail_after(15):
            for target, contact in (
                (
                    f"sip:bob@{host}:{tls.port};transport=tls",
                    f"sip:alice@{host}:{mine};transport=tls",
                ),
                (f"sips:bob@{host}:{tls.port}", f"sips:alice@{host}:{mine}"),
            ):
                response = await alice.send_options(target)
                assert response.status == 200
                sent = trace.requests("OPTIONS")[-1]
                assert sent.top_via.transport == "TLS"
                assert str(sent.contacts[0].uri) == contact
            with pytest.raises(TransportError, match="no TLS transport"):
                await carol.send_options(f"sips:bob@{host}:{tls.port}")
            # A contradictory transport=udp on a sips: URI does not downgrade it.
            response = await alice.send_options(f"sips:bob@{host}:{tls.port};transport=udp")
            assert response.status == 200
            assert trace.requests("OPTIONS")[-1].top_via.transport == "TLS"
