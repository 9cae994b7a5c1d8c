"""A wildcard bind (``0.0.0.0``) never advertises ``0.0.0.0`` in Via, Contact or SDP.

The endpoint under test binds every interface but only ever sends to 127.0.0.1 (its peer
is an rvoip endpoint bound to 127.0.0.1): what it advertises is the address of the
interface that routes to the peer, found with a connected UDP socket's ``getsockname()``.
"""

from __future__ import annotations

import socket

import anyio
import pytest

from rvoip_dialog_core import LocalRoutes
from rvoip_session_core import AutoAnswerHandler, CallState, SessionManagerBuilder
from rvoip_session_core.testing import SipTrace, loopback_builder, uri_of

pytestmark = pytest.mark.anyio


def wildcard_builder(user: str) -> SessionManagerBuilder:
    return (
        SessionManagerBuilder()
        .with_local_address(f"sip:{user}@example.com")
        .with_local_bind_addr("0.0.0.0")
        .with_sip_port(0)
        .with_transports("UDP")
        .with_handler(AutoAnswerHandler())
        .with_sip_timers(0.1, 0.8)
        .with_quality_interval(0.5)
    )


def no_wildcard(text: str) -> None:
    assert "0.0.0.0" not in text, text


async def test_wildcard_bind_advertises_the_route_to_the_peer_and_has_audio(
    anyio_backend: str,
) -> None:
    """Bound to 0.0.0.0, alice used to put ``0.0.0.0`` in Via, Contact and SDP ``c=``.

    Her peer then answered to ``0.0.0.0`` (nowhere) and sent RTP nowhere. Now she calls
    bob at 127.0.0.1 saying 127.0.0.1 everywhere, the call carries audio both ways, and
    bob's call to her is answered with a 200 whose Contact and SDP say 127.0.0.1 too.
    """
    trace = SipTrace()
    async with (
        await wildcard_builder("alice").build() as alice,
        await loopback_builder("bob").build() as bob,
    ):
        assert alice.local_sip_address[0] == "0.0.0.0"
        trace.attach(alice, "alice")
        call = await alice.create_outgoing_call("sip:alice@example.com", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        assert (await alice.get_session(call.id)).state is CallState.Active
        invite = trace.requests("INVITE")[0]
        port = alice.local_sip_address[1]
        assert invite.headers.get("Contact") == f"<sip:alice@127.0.0.1:{port}>"
        assert invite.top_via.host == "127.0.0.1"
        body = invite.body.decode()
        assert "c=IN IP4 127.0.0.1" in body
        no_wildcard(invite.encode().decode())
        with anyio.fail_after(5):
            while True:
                stats = await alice.get_media_statistics(call.id)
                if stats is not None and stats.packets_received > 10:
                    break
                await anyio.sleep(0.05)
        await alice.terminate_session(call.id)
        # bob calls alice: her 200 OK (a response, routed by its Via) says 127.0.0.1 too.
        back = await bob.create_outgoing_call("sip:bob@127.0.0.1", f"sip:alice@127.0.0.1:{port}")
        await bob.wait_for_answer(back.id, 5)
        (ok,) = [r for r in trace.responses(200) if r.cseq.method == "INVITE"]
        assert ok.headers.get("Contact") == f"<sip:alice@127.0.0.1:{port}>"
        assert "c=IN IP4 127.0.0.1" in ok.body.decode()
        no_wildcard(ok.encode().decode())
        with anyio.fail_after(5):
            while True:
                stats = await bob.get_media_statistics(back.id)
                if stats is not None and stats.packets_received > 10:
                    break
                await anyio.sleep(0.05)
        await bob.terminate_session(back.id)
        for message in trace.messages:
            no_wildcard(message.message.encode().decode(errors="replace"))


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_wildcard_bind_advertises_the_ipv6_route(anyio_backend: str) -> None:
    """Bound to ``::``, calling ``[::1]``: Via, Contact and SDP (``c=IN IP6``) say ::1."""
    trace = SipTrace()
    bob_builder = (
        SessionManagerBuilder()
        .with_local_address("sip:bob@[::1]")
        .with_sip_port(0)
        .with_transports("UDP")
        .with_handler(AutoAnswerHandler())
        .with_sip_timers(0.1, 0.8)
    )
    alice_builder = wildcard_builder("alice").with_local_bind_addr("[::]")
    async with await alice_builder.build() as alice, await bob_builder.build() as bob:
        trace.attach(alice, "alice")
        port = alice.local_sip_address[1]
        target = f"sip:bob@[::1]:{bob.local_sip_address[1]}"
        call = await alice.create_outgoing_call("sip:alice@example.com", target)
        await alice.wait_for_answer(call.id, 5)
        invite = trace.requests("INVITE")[0]
        assert invite.headers.get("Contact") == f"<sip:alice@[::1]:{port}>"
        assert invite.top_via.host == "[::1]"
        assert "c=IN IP6 ::1" in invite.body.decode()
        with anyio.fail_after(5):
            while True:
                stats = await alice.get_media_statistics(call.id)
                if stats is not None and stats.packets_received > 10:
                    break
                await anyio.sleep(0.05)
        await alice.terminate_session(call.id)


def test_local_routes_are_cached_and_bounded() -> None:
    routes = LocalRoutes(max_entries=2)
    assert routes.toward("127.0.0.1") == "127.0.0.1"
    assert routes.toward("127.0.0.2") == "127.0.0.1"
    assert routes.last == "127.0.0.1"
    assert routes.toward("127.0.0.3") == "127.0.0.1"  # a full cache is emptied, then refilled
    assert routes.toward("example.invalid") is None  # a name: no DNS here
    assert routes.toward("[::1]") in ("::1", None)  # None where IPv6 is off
