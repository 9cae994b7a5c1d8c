"""Contact and URI scheme per transport (RFC 3261 §8.1.1.8, §12.1.1; RFC 5630) over real
loopback sockets: one endpoint on UDP, TCP and TLS at once, on asyncio and trio."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_dialog_core import (
    DialogConfig,
    DialogConfirmed,
    DialogEndpoint,
    DialogEvent,
    IncomingInvite,
    InviteFailed,
    ReInviteReceived,
    contact_uri,
    secure_form,
)
from rvoip_dialog_core._uas import is_secure_request
from rvoip_sip_core import Request, SipUri, make_request, parse_uri

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)
LOOP = ("127.0.0.1", 0)


async def wait_for(ep: DialogEndpoint, kind: type[DialogEvent]) -> DialogEvent:
    """The next event of ``kind`` (earlier events of other kinds are skipped)."""
    for _ in range(50):
        event = await ep.next_event()
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__}")


def contact_of(message_contacts: object) -> str:
    """The first Contact URI of a message, as text."""
    contacts = message_contacts
    assert isinstance(contacts, tuple)
    assert contacts
    return str(contacts[0].uri)


@pytest.fixture
async def pair(
    anyio_backend: str, dialog_tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> AsyncIterator[tuple[DialogEndpoint, DialogEndpoint]]:
    """Bob on UDP, TCP and TLS (with a certificate); alice on UDP, TCP and client-only TLS."""
    server, client = dialog_tls_contexts
    async with (
        DialogEndpoint(udp=LOOP, tcp=LOOP, tls=LOOP, tls_server_context=server, user="bob") as bob,
        DialogEndpoint(
            udp=LOOP, tcp=LOOP, tls=LOOP, tls_client_context=client, user="alice"
        ) as alice,
    ):
        yield bob, alice


def test_contact_for_picks_the_transport_and_the_scheme() -> None:
    config = DialogConfig(
        contact="sip:a@127.0.0.1:5060",
        via_host="127.0.0.1",
        via_port=5060,
        contacts=(
            ("TCP", "sip:a@127.0.0.1:5060;transport=tcp"),
            ("TLS", "sip:a@127.0.0.1:5061;transport=tls"),
        ),
    )
    assert config.contact_for("UDP") == "sip:a@127.0.0.1:5060"
    assert config.contact_for("TCP") == "sip:a@127.0.0.1:5060;transport=tcp"
    assert config.contact_for("TLS") == "sip:a@127.0.0.1:5061;transport=tls"
    assert config.contact_for("SCTP") == "sip:a@127.0.0.1:5060"  # unknown: the preferred one
    assert config.contact_for("UDP", secure=True) == "sips:a@127.0.0.1:5061"
    assert contact_uri("a", "::1", 5060, "tls") == "sip:a@[::1]:5060;transport=tls"
    assert secure_form("sip:a@h:5061;transport=TLS;ob") == "sips:a@h:5061;ob"
    assert secure_form("tel:+1") == "tel:+1"


def _invite(uri: str, *headers: tuple[str, str]) -> Request:
    return make_request(
        "INVITE",
        parse_uri(uri),
        from_="<sip:a@127.0.0.1>;tag=1",
        to=f"<{uri}>",
        call_id="c",
        cseq=1,
        via="SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK1",
        contact=None,
        headers=list(headers),
    )


def test_a_secure_request_is_known_by_uri_record_route_or_contact() -> None:
    """RFC 3261 §12.1.1: sips in the Request-URI, else the top Record-Route, else Contact."""
    assert is_secure_request(_invite("sips:b@127.0.0.1"))
    assert not is_secure_request(_invite("sip:b@127.0.0.1;transport=tls"))
    assert is_secure_request(_invite("sip:b@127.0.0.1", ("Record-Route", "<sips:p;lr>")))
    assert not is_secure_request(
        _invite("sip:b@127.0.0.1", ("Record-Route", "<sip:p;lr>"), ("Contact", "<sips:a@h>"))
    )
    assert is_secure_request(_invite("sip:b@127.0.0.1", ("Contact", "<sips:a@h>")))


@pytest.mark.anyio
async def test_a_sip_request_over_tls_gets_a_sip_contact_naming_tls(
    pair: tuple[DialogEndpoint, DialogEndpoint],
) -> None:
    """Issue 16: baresip called ``sip:judge@127.0.0.1:PORT;transport=tls`` and our 200 OK
    answered ``Contact: <sips:...>``; baresip then dropped the call ("Function not
    implemented"). RFC 5630 §3.1.2: a sip: request carried over TLS gets a sip: Contact with
    ``;transport=tls`` (the old code put sips: in every Contact of a TLS endpoint)."""
    bob, alice = pair
    tls_port = bob.local("TLS").port
    with anyio.fail_after(10):
        alice.invite(f"sip:bob@127.0.0.1:{tls_port};transport=tls", from_="sip:alice@127.0.0.1")
        incoming = await wait_for(bob, IncomingInvite)
        assert isinstance(incoming, IncomingInvite)
        request = incoming.request
        assert request.top_via.transport == "TLS"
        alice_tls = alice.local("TLS").port
        assert contact_of(request.contacts) == f"sip:alice@127.0.0.1:{alice_tls};transport=tls"
        bob.respond(incoming.ref, 200, body=SDP)
        confirmed = await wait_for(alice, DialogConfirmed)
        assert isinstance(confirmed, DialogConfirmed)
        assert contact_of(confirmed.message.contacts) == (
            f"sip:bob@127.0.0.1:{tls_port};transport=tls"
        )


@pytest.mark.anyio
async def test_a_sips_request_keeps_sips_contacts_in_the_dialog(
    pair: tuple[DialogEndpoint, DialogEndpoint],
) -> None:
    """RFC 3261 §8.1.1.8 / §12.1.1: sips: Request-URI -> sips: Contact in the INVITE, the
    200 OK and the re-INVITE of the dialog, and everything over TLS."""
    bob, alice = pair
    tls_port = bob.local("TLS").port
    with anyio.fail_after(10):
        alice.invite(f"sips:bob@127.0.0.1:{tls_port}", from_="sips:alice@127.0.0.1")
        incoming = await wait_for(bob, IncomingInvite)
        assert isinstance(incoming, IncomingInvite)
        assert incoming.request.top_via.transport == "TLS"
        assert contact_of(incoming.request.contacts).startswith("sips:alice@127.0.0.1:")
        bob.respond(incoming.ref, 200, body=SDP)
        confirmed = await wait_for(alice, DialogConfirmed)
        assert isinstance(confirmed, DialogConfirmed)
        assert contact_of(confirmed.message.contacts) == f"sips:bob@127.0.0.1:{tls_port}"
        alice.reinvite(confirmed.dialog_id, SDP)
        again = await wait_for(bob, ReInviteReceived)
        assert isinstance(again, ReInviteReceived)
        assert again.request.uri.scheme == "sips"
        assert again.request.top_via.transport == "TLS"
        assert contact_of(again.request.contacts).startswith("sips:alice@")


@pytest.mark.anyio
async def test_the_target_uri_picks_the_transport(
    pair: tuple[DialogEndpoint, DialogEndpoint],
) -> None:
    """RFC 3261 §18 / RFC 3263 §4.1: one endpoint, three transports; ``transport=`` picks
    one per request and Via and Contact name the one used."""
    bob, alice = pair
    port = bob.local("UDP").port
    tcp_port = bob.local("TCP").port
    with anyio.fail_after(10):
        for transport, target_port in (("UDP", port), ("TCP", tcp_port)):
            param = "" if transport == "UDP" else f";transport={transport.lower()}"
            alice.invite(f"sip:bob@127.0.0.1:{target_port}{param}", from_="sip:alice@127.0.0.1")
            incoming = await wait_for(bob, IncomingInvite)
            assert isinstance(incoming, IncomingInvite)
            assert incoming.request.top_via.transport == transport
            mine = alice.local(transport).port
            assert contact_of(incoming.request.contacts) == f"sip:alice@127.0.0.1:{mine}{param}"
            bob.respond(incoming.ref, 200, body=SDP)
            confirmed = await wait_for(alice, DialogConfirmed)
            assert isinstance(confirmed, DialogConfirmed)
            theirs = bob.local(transport).port
            assert contact_of(confirmed.message.contacts) == (f"sip:bob@127.0.0.1:{theirs}{param}")


@pytest.mark.anyio
async def test_a_sips_request_never_leaves_over_udp_or_tcp(
    pair: tuple[DialogEndpoint, DialogEndpoint],
) -> None:
    """RFC 5630 §3.1.3: a sips: request whose first hop is not TLS fails locally with 416,
    it is never downgraded to UDP or TCP (the old driver sent it over the Route's UDP)."""
    bob, alice = pair
    udp_port = bob.local("UDP").port
    tls_port = bob.local("TLS").port
    with anyio.fail_after(10):
        for route in (f"<sip:127.0.0.1:{udp_port};lr;transport=udp>",):
            alice.invite(
                f"sips:bob@127.0.0.1:{tls_port}", from_="sips:alice@127.0.0.1", route=[route]
            )
            failed = await wait_for(alice, InviteFailed)
            assert isinstance(failed, InviteFailed)
            assert failed.response.status == 416
    assert alice.stats["sips_refused"] == 1
    assert bob.transactions.stats.get("udp_received", 0) == 0


@pytest.mark.anyio
async def test_a_sips_request_without_any_tls_transport_fails_with_416(anyio_backend: str) -> None:
    async with DialogEndpoint(user="alice") as alice:
        with anyio.fail_after(10):
            alice.invite("sips:bob@127.0.0.1:5061", from_="sips:alice@127.0.0.1")
            failed = await wait_for(alice, InviteFailed)
            assert isinstance(failed, InviteFailed)
            assert failed.response.status == 416


@pytest.mark.anyio
async def test_a_secure_dialog_keeps_a_sips_contact_when_the_peer_answers_sip(
    pair: tuple[DialogEndpoint, DialogEndpoint],
) -> None:
    """baresip 1.0 answers a ``sips:`` INVITE with a ``sip:…;transport=tls`` Contact, so our
    re-INVITE's Request-URI is ``sip:``; the dialog is still secure (RFC 3261 §12.1.1) and
    our Contact in it stays ``sips:`` (the first version used the sip: TLS Contact there)."""
    bob, alice = pair
    tls_port = bob.local("TLS").port
    sloppy = f"sip:bob@127.0.0.1:{tls_port};transport=tls"
    bob.layer.config = attrs.evolve(bob.config, sips_contact=sloppy)
    with anyio.fail_after(10):
        alice.invite(f"sips:bob@127.0.0.1:{tls_port}", from_="sips:alice@127.0.0.1")
        incoming = await wait_for(bob, IncomingInvite)
        assert isinstance(incoming, IncomingInvite)
        bob.respond(incoming.ref, 200, body=SDP)
        confirmed = await wait_for(alice, DialogConfirmed)
        assert isinstance(confirmed, DialogConfirmed)
        assert contact_of(confirmed.message.contacts) == sloppy
        alice.reinvite(confirmed.dialog_id, SDP)
        again = await wait_for(bob, ReInviteReceived)
        assert isinstance(again, ReInviteReceived)
        assert again.request.uri.scheme == "sip"
        assert again.request.top_via.transport == "TLS"
        assert contact_of(again.request.contacts).startswith("sips:alice@127.0.0.1:")


def _shared_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1 now (RFC 3261 §18: one SIP port for both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise AssertionError("no port free for UDP and TCP")


@pytest.mark.anyio
async def test_a_large_request_to_a_udp_target_moves_to_tcp(anyio_backend: str) -> None:
    """RFC 3261 §18.1.1 (transaction-core): over 1,300 bytes, UDP -> TCP to the same
    address; the Via names TCP (the Contact stays the UDP one: the peer may use either)."""
    port = _shared_port()
    where = ("127.0.0.1", port)
    padding = [(f"X-Pad-{n}", "p" * 80) for n in range(20)]
    async with (
        DialogEndpoint(udp=where, tcp=where, user="bob") as bob,
        DialogEndpoint(udp=LOOP, tcp=LOOP, user="alice") as alice,
    ):
        with anyio.fail_after(10):
            alice.invite(f"sip:bob@127.0.0.1:{port}", from_="sip:alice@127.0.0.1", headers=padding)
            incoming = await wait_for(bob, IncomingInvite)
            assert isinstance(incoming, IncomingInvite)
            assert len(incoming.request.encode()) > 1300
            assert incoming.request.top_via.transport == "TCP"
            bob.respond(incoming.ref, 486)
            busy = await wait_for(alice, InviteFailed)
            assert isinstance(busy, InviteFailed)
            assert busy.response.status == 486
        assert alice.transactions.stats["udp_to_tcp"] == 1


_USERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)
_HOSTS = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.from_regex(
        r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,8}[a-z0-9])?){0,2}", fullmatch=True
    ),
)


@given(
    user=_USERS,
    host=_HOSTS,
    port=st.integers(1, 65535),
    transport=st.sampled_from(["udp", "tcp", "tls", "UDP", "TCP", "TLS"]),
)
@settings(max_examples=200, deadline=None)
def test_contact_uris_parse_back_and_their_secure_form_is_sips(
    user: str, host: str, port: int, transport: str
) -> None:
    """Property: ``contact_uri`` gives a sip: URI that parses back to the same user, host,
    port and transport (none for UDP); ``secure_form`` of it is the sips: URI of the same
    address without a transport parameter (RFC 5630: sips implies TLS)."""
    uri = parse_uri(contact_uri(user, host, port, transport))
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.port) == ("sip", user, port)
    assert uri.host.strip("[]").lower() == host.lower()
    assert uri.transport == (None if transport.upper() == "UDP" else transport.lower())
    secure = parse_uri(secure_form(str(uri)))
    assert isinstance(secure, SipUri)
    assert (secure.scheme, secure.user, secure.host, secure.port) == (
        "sips",
        user,
        uri.host,
        port,
    )
    assert secure.transport is None
