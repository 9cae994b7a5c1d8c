"""RFC 3263 through the driver, against a DNS server on 127.0.0.1 (never the machine's).

The in-process :func:`~rvoip_dialog_core.testing_dns.dns_responder` serves NAPTR, SRV and
A records; callers reach callees on 127.0.0.1 by name, and fail over to the next target
on a refused connection, a 503 or a timeout (RFC 3263 §4.3). asyncio and trio.
"""

from __future__ import annotations

import socket
from collections import Counter

import anyio
import attrs
import pytest

from rvoip_dialog_core import (
    CallRedirected,
    DialogConfirmed,
    DialogEndpoint,
    DialogEvent,
    IncomingInvite,
    InviteFailed,
    OptionsReceived,
    ResponseForRequest,
)
from rvoip_dialog_core._dns import DnsSettings
from rvoip_dialog_core.testing_dns import dns_responder
from rvoip_transaction_core import TimerConfig

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


async def next_of(ep: DialogEndpoint, kind: type[DialogEvent]) -> DialogEvent:
    for _ in range(50):
        event = await ep.next_event()
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__}")


def dead_tcp_port() -> int:
    """A TCP port on 127.0.0.1 with nobody listening (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def answer(ep: DialogEndpoint, status: int) -> IncomingInvite:
    incoming = await next_of(ep, IncomingInvite)
    assert isinstance(incoming, IncomingInvite)
    ep.respond(incoming.ref, status, body=SDP if status == 200 else b"")
    return incoming


@pytest.mark.anyio
async def test_call_by_name_naptr_srv_a(anyio_backend: str) -> None:
    """``sip:bob@example.test`` reaches bob on 127.0.0.1 via NAPTR → SRV → A; cached after."""
    async with DialogEndpoint(user="bob") as bob:
        port = bob.local().port
        records = {
            ("example.test", "NAPTR"): ['10 0 "s" "SIP+D2U" "" _sip._udp.example.test.'],
            ("_sip._udp.example.test", "SRV"): [f"0 1 {port} bob-host.example.test."],
            ("bob-host.example.test", "A"): ["127.0.0.1"],
        }
        asked: Counter[tuple[str, str]] = Counter()
        async with dns_responder(records, queries=asked) as server:
            dns = DnsSettings(nameservers=(server,))
            async with DialogEndpoint(user="alice", dns=dns) as alice:
                with anyio.fail_after(10):
                    alice.invite("sip:bob@example.test", from_="sip:alice@127.0.0.1", body=SDP)
                    incoming = await answer(bob, 200)
                    assert str(incoming.request.uri) == "sip:bob@example.test"
                    assert isinstance(await next_of(alice, DialogConfirmed), DialogConfirmed)
                    assert asked == {
                        ("example.test", "NAPTR"): 1,
                        ("_sip._udp.example.test", "SRV"): 1,
                        ("bob-host.example.test", "A"): 1,
                    }
                    # The records are cached for their TTL: a second request asks nothing.
                    alice.send_request("OPTIONS", "sip:bob@example.test", from_="sip:a@h")
                    assert isinstance(await next_of(bob, OptionsReceived), OptionsReceived)
                    done = await next_of(alice, ResponseForRequest)
                    assert isinstance(done, ResponseForRequest)
                    assert done.response.status == 200
                    assert sum(asked.values()) == 3


@pytest.mark.anyio
async def test_failover_from_refused_tcp_target_to_the_next_srv(anyio_backend: str) -> None:
    """RFC 3263 §4.3: the first SRV target refuses the connection; the call reaches the second."""
    async with DialogEndpoint(udp=None, tcp=("127.0.0.1", 0), user="bob") as bob:
        records = {
            ("example.test", "NAPTR"): ['10 0 "s" "SIP+D2T" "" _sip._tcp.example.test.'],
            ("_sip._tcp.example.test", "SRV"): [
                f"10 0 {dead_tcp_port()} dead.example.test.",
                f"20 0 {bob.local('TCP').port} bob-host.example.test.",
            ],
            ("dead.example.test", "A"): ["127.0.0.1"],
            ("bob-host.example.test", "A"): ["127.0.0.1"],
        }
        async with dns_responder(records) as server:
            dns = DnsSettings(nameservers=(server,))
            async with DialogEndpoint(
                udp=None, tcp=("127.0.0.1", 0), user="alice", dns=dns
            ) as alice:
                with anyio.fail_after(10):
                    alice.invite("sip:bob@example.test", from_="sip:alice@127.0.0.1", body=SDP)
                    await answer(bob, 200)
                    assert isinstance(await next_of(alice, DialogConfirmed), DialogConfirmed)
                assert alice.stats["dns_failover"] == 1


@pytest.mark.anyio
async def test_failover_on_503_keeps_call_id_and_cseq(anyio_backend: str) -> None:
    """RFC 3263 §4.3: a 503 from the first target: the same request, new branch, to the next."""
    async with DialogEndpoint(user="busy") as busy, DialogEndpoint(user="bob") as bob:
        records = {
            ("_sip._udp.example.test", "SRV"): [
                f"10 0 {busy.local().port} busy.example.test.",
                f"20 0 {bob.local().port} bob-host.example.test.",
            ],
            ("busy.example.test", "A"): ["127.0.0.1"],
            ("bob-host.example.test", "A"): ["127.0.0.1"],
        }
        async with dns_responder(records) as server:
            dns = DnsSettings(nameservers=(server,))
            async with DialogEndpoint(user="alice", dns=dns) as alice:
                with anyio.fail_after(10):
                    alice.invite("sip:bob@example.test", from_="sip:alice@127.0.0.1", body=SDP)
                    first = await answer(busy, 503)
                    second = await answer(bob, 200)
                    assert isinstance(await next_of(alice, DialogConfirmed), DialogConfirmed)
                old, new = first.request, second.request
                assert (new.call_id, new.cseq.seq) == (old.call_id, old.cseq.seq)
                assert new.from_.tag == old.from_.tag
                assert new.top_via.branch != old.top_via.branch


@pytest.mark.anyio
async def test_failover_on_timeout_for_options(anyio_backend: str) -> None:
    """A non-INVITE request whose first target never answers (Timer F) goes to the next."""
    timers = TimerConfig(t1=0.02, t2=0.08)
    async with DialogEndpoint(user="bob") as bob:
        # A UDP port where nobody answers: bound by this socket, which never reads.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            records = {
                ("_sip._udp.example.test", "SRV"): [
                    f"10 0 {silent.getsockname()[1]} silent.example.test.",
                    f"20 0 {bob.local().port} bob-host.example.test.",
                ],
                ("silent.example.test", "A"): ["127.0.0.1"],
                ("bob-host.example.test", "A"): ["127.0.0.1"],
            }
            async with dns_responder(records) as server:
                dns = DnsSettings(nameservers=(server,))
                async with DialogEndpoint(user="alice", dns=dns, timers=timers) as alice:
                    with anyio.fail_after(10):
                        alice.send_request(
                            "OPTIONS", "sip:bob@example.test;transport=udp", from_="sip:a@h"
                        )
                        assert isinstance(await next_of(bob, OptionsReceived), OptionsReceived)
                        done = await next_of(alice, ResponseForRequest)
                        assert isinstance(done, ResponseForRequest)
                        assert done.response.status == 200


@pytest.mark.anyio
async def test_failover_is_bounded_by_the_list(anyio_backend: str) -> None:
    """Every target answers 503: the call fails with 503 after trying each once."""
    async with DialogEndpoint(user="b1") as b1, DialogEndpoint(user="b2") as b2:
        records = {
            ("_sip._udp.example.test", "SRV"): [
                f"10 0 {b1.local().port} b1.example.test.",
                f"20 0 {b2.local().port} b2.example.test.",
            ],
            ("b1.example.test", "A"): ["127.0.0.1"],
            ("b2.example.test", "A"): ["127.0.0.1"],
        }
        async with dns_responder(records) as server:
            dns = DnsSettings(nameservers=(server,))
            async with DialogEndpoint(user="alice", dns=dns) as alice:
                with anyio.fail_after(10):
                    alice.invite("sip:bob@example.test", from_="sip:alice@127.0.0.1", body=SDP)
                    await answer(b1, 503)
                    await answer(b2, 503)
                    failed = await next_of(alice, InviteFailed)
                    assert isinstance(failed, InviteFailed)
                    assert failed.response.status == 503
                assert alice.stats["dns_failover"] == 1


@pytest.mark.anyio
async def test_unknown_name_fails_the_request(anyio_backend: str) -> None:
    """NXDOMAIN everywhere: the INVITE fails at once (503), no machine resolver asked."""
    async with dns_responder({}) as server:
        dns = DnsSettings(nameservers=(server,))
        async with DialogEndpoint(user="alice", dns=dns) as alice:
            with anyio.fail_after(10):
                alice.invite("sip:bob@nowhere.test", from_="sip:alice@127.0.0.1", body=SDP)
                failed = await next_of(alice, InviteFailed)
                assert isinstance(failed, InviteFailed)
                assert failed.response.status == 503
            assert alice.stats["unresolvable_target"] == 1


# --- 3xx redirects (RFC 3261 §8.1.3.4) ---------------------------------------------------


async def redirect(ep: DialogEndpoint, status: int, *contacts: str) -> IncomingInvite:
    incoming = await next_of(ep, IncomingInvite)
    assert isinstance(incoming, IncomingInvite)
    ep.respond(incoming.ref, status, headers=[("Contact", c) for c in contacts])
    return incoming


@pytest.mark.anyio
async def test_302_is_followed_in_q_order(anyio_backend: str) -> None:
    """A 302 with two Contacts: the higher q first; its 486 moves the call to the other."""
    async with (
        DialogEndpoint(user="bob") as bob,
        DialogEndpoint(user="carol") as carol,
        DialogEndpoint(user="dave") as dave,
        DialogEndpoint(user="alice") as alice,
    ):
        carol_uri = f"sip:carol@127.0.0.1:{carol.local().port}"
        dave_uri = f"sip:dave@127.0.0.1:{dave.local().port}"
        with anyio.fail_after(10):
            alice.invite(
                f"sip:bob@127.0.0.1:{bob.local().port}", from_="sip:alice@127.0.0.1", body=SDP
            )
            first = await redirect(bob, 302, f"<{carol_uri}>;q=0.5", f"<{dave_uri}>;q=0.9")
            moved = await next_of(alice, CallRedirected)
            assert isinstance(moved, CallRedirected)
            assert str(moved.target) == dave_uri
            assert moved.response.status == 302
            await answer(dave, 486)
            moved = await next_of(alice, CallRedirected)
            assert isinstance(moved, CallRedirected)
            assert str(moved.target) == carol_uri
            assert moved.response.status == 486
            final = await answer(carol, 200)
            confirmed = await next_of(alice, DialogConfirmed)
            assert isinstance(confirmed, DialogConfirmed)
        old, new = first.request, final.request
        assert new.call_id == old.call_id
        assert new.from_.tag == old.from_.tag
        assert str(new.uri) == carol_uri
        assert new.cseq.seq > old.cseq.seq
        assert alice.layer.stats["redirects_followed"] == 2


@pytest.mark.anyio
async def test_redirect_loop_ends(anyio_backend: str) -> None:
    """Two UAs redirecting to each other: each URI is tried once, then the call fails."""
    async with (
        DialogEndpoint(user="bob") as bob,
        DialogEndpoint(user="carol") as carol,
        DialogEndpoint(user="alice") as alice,
    ):
        bob_uri = f"sip:bob@127.0.0.1:{bob.local().port}"
        carol_uri = f"sip:carol@127.0.0.1:{carol.local().port}"
        with anyio.fail_after(10):
            alice.invite(bob_uri, from_="sip:alice@127.0.0.1", body=SDP)
            await redirect(bob, 302, f"<{carol_uri}>")
            await redirect(carol, 302, f"<{bob_uri}>", f"<{carol_uri}>")
            failed = await next_of(alice, InviteFailed)
            assert isinstance(failed, InviteFailed)
            assert failed.response.status == 302
        assert alice.layer.stats["redirect_loop_skipped"] == 2


@pytest.mark.anyio
async def test_redirects_are_bounded_and_can_be_turned_off(anyio_backend: str) -> None:
    """``max_redirects`` bounds a chain; ``follow_redirects=False`` reports the 3xx."""
    async with DialogEndpoint(user="bob") as bob, DialogEndpoint(user="alice") as alice:
        base = f"sip:{{}}@127.0.0.1:{bob.local().port}"
        alice.layer.config = attrs.evolve(alice.layer.config, max_redirects=2)
        with anyio.fail_after(10):
            alice.invite(base.format("u0"), from_="sip:alice@127.0.0.1", body=SDP)
            for hop in range(1, 4):
                await redirect(bob, 302, f"<{base.format(f'u{hop}')}>")
            failed = await next_of(alice, InviteFailed)
            assert isinstance(failed, InviteFailed)
            assert failed.response.status == 302
            assert alice.layer.stats["redirects_followed"] == 2
            alice.layer.config = attrs.evolve(alice.layer.config, follow_redirects=False)
            alice.invite(base.format("v0"), from_="sip:alice@127.0.0.1", body=SDP)
            await redirect(bob, 301, f"<{base.format('v1')}>")
            failed = await next_of(alice, InviteFailed)
            assert isinstance(failed, InviteFailed)
            assert failed.response.status == 301
            assert alice.layer.stats["redirects_followed"] == 2
