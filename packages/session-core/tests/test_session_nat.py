"""NAT: the public address learnt from REGISTER responses, and keep-alives (virtual time).

A small registrar on the virtual SIP network answers REGISTER like a registrar in front of
a NAT: it writes the source it saw into the top Via of its 2xx (``received``/``rport``,
RFC 3581 §4), here made up so that it differs from what we advertised.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from rvoip_session_core import (
    RegistrationSettings,
    RegistrationState,
    SessionCoordinator,
)
from rvoip_session_core.testing import VirtualCalls, virtual_time_backend
from rvoip_sip_core import Message, Request, make_response
from rvoip_transaction_core import Peer

pytestmark = pytest.mark.anyio

REGISTRAR_PORT = 5990
REGISTRAR = f"sip:127.0.0.1:{REGISTRAR_PORT}"
CALLEE_PORT = 5992


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Virtual time (trio + MockClock)."""
    return virtual_time_backend()


@pytest.fixture
async def net() -> AsyncIterator[VirtualCalls]:
    """The virtual networks (SIP and media) the coordinators share."""
    async with VirtualCalls() as calls:
        yield calls


class NattedRegistrar:
    """A registrar that sees our requests come from ``public`` (a NAT's mapping).

    ``public`` may be changed between requests (a NAT that re-maps), or None (no NAT:
    the Via is echoed as sent).
    """

    def __init__(self, public: tuple[str, int] | None, granted: int = 120) -> None:
        self.public = public
        self.granted = granted
        self.requests: list[Request] = []
        self.bindings: dict[str, int] = {}
        """Contact URI -> expires, as the registrar holds them."""

    def __call__(self, message: Message, source: Peer) -> list[tuple[Message, Peer]]:
        if not isinstance(message, Request) or message.method != "REGISTER":
            return []
        self.requests.append(message)
        wanted = int(message.headers.get("Expires") or "3600")
        for element in message.contacts:
            uri = str(element.uri)
            expires = element.expires if element.expires is not None else wanted
            if expires == 0:
                self.bindings.pop(uri, None)
            else:
                self.bindings[uri] = min(expires, self.granted)
        request = message
        if self.public is not None:
            host, port = self.public
            via = message.top_via
            params = tuple((k, v) for k, v in via.params if k.lower() not in ("rport", "received"))
            seen = type(via)(
                via.transport,
                via.host,
                via.port,
                (*params, ("received", host), ("rport", str(port))),
            )
            request = message.with_header("Via", seen)
        contacts = ", ".join(f"<{uri}>;expires={exp}" for uri, exp in self.bindings.items())
        headers = [("Contact", contacts)] if contacts else []
        return [(make_response(request, 200, to_tag="r", headers=headers), source)]

    def contacts(self, index: int) -> list[str]:
        """The Contact header value of the ``index``-th REGISTER."""
        return [
            f"{element.uri};expires={element.expires}" for element in self.requests[index].contacts
        ]


async def wait_registered(coordinator: SessionCoordinator, limit: float = 60.0) -> None:
    with anyio.fail_after(limit):
        while not any(
            s.state is RegistrationState.Registered for s in coordinator.registration_status()
        ):
            await anyio.sleep(0.05)


async def test_public_address_from_register_response_goes_into_contact(
    net: VirtualCalls,
) -> None:
    """RFC 3581 + pjsua ``contact_rewrite``: re-register at the learnt address, call from it."""
    registrar = NattedRegistrar(("127.0.0.2", 40000))
    net.sip.add_relay(REGISTRAR_PORT, registrar)
    invites: list[Request] = []

    def callee(message: Message, source: Peer) -> list[tuple[Message, Peer]]:
        if isinstance(message, Request) and message.method == "INVITE":
            invites.append(message)
            return [(make_response(message, 486, to_tag="b"), source)]
        return []

    net.sip.add_relay(CALLEE_PORT, callee)
    alice = await net.add("alice")
    before = alice.endpoint.config.contact
    alice.register(REGISTRAR, username="alice", password="x")
    await wait_registered(alice)
    learnt = "sip:alice@127.0.0.2:40000"
    assert alice.endpoint.config.contact == learnt
    # The first REGISTER carried the bound address; the second one (at once) the learnt
    # address, removing the old binding in the same request (RFC 3261 §10.2.2).
    assert len(registrar.requests) == 2
    assert registrar.contacts(0) == [f"{before};expires=3600"]
    assert registrar.contacts(1) == [f"{learnt};expires=3600", f"{before};expires=0"]
    assert list(registrar.bindings) == [learnt]
    (status,) = alice.registration_status()
    assert status.contact == learnt
    # A call placed now carries the learnt address in its Contact.
    await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@127.0.0.1:{CALLEE_PORT}")
    with anyio.fail_after(10):
        while not invites:
            await anyio.sleep(0.05)
    assert str(invites[0].contacts[0].uri) == learnt
    # A refresh that sees the same address does not re-register again.
    await anyio.sleep(100)
    assert len(registrar.requests) == 3
    assert registrar.contacts(2) == [f"{learnt};expires=3600"]


async def test_contact_rewrite_can_be_turned_off(net: VirtualCalls) -> None:
    registrar = NattedRegistrar(("127.0.0.2", 40000))
    net.sip.add_relay(REGISTRAR_PORT, registrar)
    settings = RegistrationSettings(contact_rewrite=False)
    builder = net.builder("alice").with_registration(
        REGISTRAR, username="alice", password="x", settings=settings
    )
    alice = net.coordinator(builder)
    async with alice:
        before = alice.endpoint.config.contact
        await wait_registered(alice)
        await anyio.sleep(5)
        assert alice.endpoint.config.contact == before
        assert len(registrar.requests) == 1


async def test_no_nat_no_rewrite(net: VirtualCalls) -> None:
    """A registrar that saw what we advertised (rport equal to our port): nothing changes."""
    registrar = NattedRegistrar(None)
    net.sip.add_relay(REGISTRAR_PORT, registrar)
    alice = await net.add("alice")
    before = alice.endpoint.config.contact
    local = alice.endpoint.local()
    registrar.public = (local.host, local.port)
    alice.register(REGISTRAR, username="alice", password="x")
    await wait_registered(alice)
    await anyio.sleep(5)
    assert alice.endpoint.config.contact == before
    assert len(registrar.requests) == 1


async def test_a_nat_that_remaps_every_request_cannot_loop_us(net: VirtualCalls) -> None:
    """Each response shows a new port: at most ``max_rewrites`` re-REGISTERs in a row."""
    registrar = NattedRegistrar(("127.0.0.2", 40000))
    original = registrar.__call__

    def remapping(message: Message, source: Peer) -> list[tuple[Message, Peer]]:
        assert registrar.public is not None
        host, port = registrar.public
        registrar.public = (host, port + 1)
        return original(message, source)

    net.sip.add_relay(REGISTRAR_PORT, remapping)
    settings = RegistrationSettings(max_rewrites=2)
    builder = net.builder("alice").with_registration(
        REGISTRAR, username="alice", password="x", settings=settings
    )
    alice = net.coordinator(builder)
    async with alice:
        await wait_registered(alice)
        await anyio.sleep(10)
        assert len(registrar.requests) == 3  # the first, then max_rewrites re-registers


async def test_udp_keepalives_between_refreshes(net: VirtualCalls) -> None:
    """RFC 5626 §3.5.1 practice: a CRLFCRLF every ``keepalive_udp`` seconds while registered,
    each gap a random 80-100 % of it (§4.4.1: phones behind one NAT do not ping in step)."""
    registrar = NattedRegistrar(None, granted=120)
    net.sip.add_relay(REGISTRAR_PORT, registrar)
    alice = await net.add("alice")
    alice.register(REGISTRAR, username="alice", password="x")
    await wait_registered(alice)
    registered_at = anyio.current_time()
    await anyio.sleep(89)  # the refresh is due at 90 s (75 % of 120)
    sent: list[tuple[float, Peer]] = alice.endpoint.keepalives  # type: ignore[attr-defined]
    times = [registered_at] + [at for at, _ in sent]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 3 <= len(gaps) <= 4
    assert all(0.8 * 25 - 0.01 <= gap <= 25 + 0.01 for gap in gaps)
    assert {peer for _, peer in sent} == {Peer("UDP", "127.0.0.1", REGISTRAR_PORT)}


async def test_keepalives_can_be_turned_off(net: VirtualCalls) -> None:
    registrar = NattedRegistrar(None)
    net.sip.add_relay(REGISTRAR_PORT, registrar)
    settings = RegistrationSettings(keepalive_udp=None)
    builder = net.builder("alice").with_registration(
        REGISTRAR, username="alice", password="x", settings=settings
    )
    alice = net.coordinator(builder)
    async with alice:
        await wait_registered(alice)
        await anyio.sleep(80)
        assert alice.endpoint.keepalives == []  # type: ignore[attr-defined]


async def test_a_rewrite_moves_the_other_accounts_bindings_too(net: VirtualCalls) -> None:
    """The Contact is the endpoint's: every account registered with it re-registers."""
    natted = NattedRegistrar(("127.0.0.2", 40000))
    plain = NattedRegistrar(None)
    net.sip.add_relay(REGISTRAR_PORT, natted)
    net.sip.add_relay(5993, plain)
    alice = await net.add("alice")
    before = alice.endpoint.config.contact
    alice.register("sip:127.0.0.1:5993", username="sales", password="x")
    await wait_registered(alice)
    assert list(plain.bindings) == [before]
    alice.register(REGISTRAR, username="alice", password="x")
    learnt = "sip:alice@127.0.0.2:40000"
    with anyio.fail_after(10):
        while list(plain.bindings) != [learnt]:
            await anyio.sleep(0.05)
    assert plain.contacts(-1) == [f"{learnt};expires=3600", f"{before};expires=0"]
    assert list(natted.bindings) == [learnt]
