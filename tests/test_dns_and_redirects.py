"""Calls by name (RFC 3263), failover across SRV targets, and 3xx redirects, end to end.

Coordinators on 127.0.0.1 call ``sip:bob@example.test``; the name is located through a
DNS server the test starts on 127.0.0.1 — Debian's ``dnsmasq`` (``--srv-host``,
``--naptr-record``, ``--host-record``) when installed, and always the in-process
responder of ``rvoip_dialog_core.testing_dns`` — never the machine's resolver.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager

import anyio
import dns.message
import dns.query
import dns.rcode
import pytest

from rvoip_dialog_core.testing_dns import dns_responder
from rvoip_session_core import (
    AutoAnswerHandler,
    CallDecision,
    CallFailed,
    CallRedirected,
    Decision,
    EventSubscription,
    IncomingCall,
    SessionEventType,
)
from rvoip_session_core.testing import loopback_builder, released, uri_of, wait_until
from rvoip_sip_core import Request, make_response, parse_message

pytestmark = pytest.mark.anyio

Zone = dict[tuple[str, str], list[str]]
"""(name, type) → rdata texts, as ``dns_responder`` takes them."""

DnsServer = Callable[[Zone], AbstractAsyncContextManager[tuple[str, int]]]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dnsmasq_args(zone: Zone) -> list[str]:
    """dnsmasq options serving ``zone`` (NAPTR, SRV and A records only)."""
    args: list[str] = []
    for (name, kind), values in zone.items():
        for value in values:
            if kind == "A":
                args.append(f"--host-record={name},{value}")
            elif kind == "SRV":
                priority, weight, port, target = value.split()
                args.append(f"--srv-host={name},{target.rstrip('.')},{port},{priority},{weight}")
            elif kind == "NAPTR":
                order, pref, flags, service, regexp, replacement = value.split()
                args.append(
                    f"--naptr-record={name},{order},{pref},{flags.strip(chr(34))},"
                    f"{service.strip(chr(34))},{regexp.strip(chr(34))},{replacement.rstrip('.')}"
                )
            else:
                raise ValueError(f"no dnsmasq option for {kind}")
    return args


def _wait_ready(port: int, name: str, deadline: float) -> bool:
    """Whether dnsmasq answers on ``port`` before ``deadline`` (bounded polling)."""
    query = dns.message.make_query(name, "A")
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
            if reply.rcode() == dns.rcode.NOERROR:
                return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def _dnsmasq(zone: Zone) -> Iterator[tuple[str, int]]:
    binary = shutil.which("dnsmasq") or shutil.which("dnsmasq", path="/usr/sbin:/sbin")
    if binary is None:
        pytest.skip("dnsmasq not installed (Debian: apt-get install dnsmasq-base)")
    a_name = next(name for name, kind in zone if kind == "A")
    for _ in range(5):  # the free port may be taken between probe and bind
        port = _free_udp_port()
        command = [
            binary,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            f"--port={port}",
            "--local=/test/",  # names under .test not listed: NXDOMAIN, never forwarded
            "--local-ttl=30",
            "--log-facility=-",
            *_dnsmasq_args(zone),
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        try:
            if _wait_ready(port, a_name, time.monotonic() + 5.0):
                yield "127.0.0.1", port
                return
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        assert process.stderr is not None
        error = process.stderr.read().decode(errors="replace")
        if "Address already in use" not in error:
            pytest.fail(f"dnsmasq did not start: {error.strip()[-500:]}")
    pytest.fail("dnsmasq found no free port in 5 tries")


@contextlib.asynccontextmanager
async def _dnsmasq_async(zone: Zone) -> AsyncIterator[tuple[str, int]]:
    with _dnsmasq(zone) as server:
        yield server


@pytest.fixture(params=["dnsmasq", "in-process"])
def dns_server(request: pytest.FixtureRequest) -> DnsServer:
    """Starts a DNS server on 127.0.0.1 serving a zone: dnsmasq, or the in-process one."""
    if request.param == "dnsmasq":
        return _dnsmasq_async
    return dns_responder


class Rejecter(AutoAnswerHandler):
    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return CallDecision.Reject("Service Unavailable", 503)


class Counting(AutoAnswerHandler):
    def __init__(self) -> None:
        self.calls: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.calls.append(call)
        return CallDecision.Accept(None)


class Forwarder(AutoAnswerHandler):
    def __init__(self, target: str) -> None:
        self.target = target

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return CallDecision.Forward(self.target)


async def test_call_by_name_through_naptr_srv_a(anyio_backend: str, dns_server: DnsServer) -> None:
    """``sip:bob@example.test`` reaches bob on 127.0.0.1: NAPTR → SRV → A."""
    bob_handler = Counting()
    async with await loopback_builder("bob", bob_handler).build() as bob:
        port = bob.local_sip_address[1]
        zone: Zone = {
            ("example.test", "NAPTR"): ['10 0 "s" "SIP+D2U" "" _sip._udp.example.test.'],
            ("_sip._udp.example.test", "SRV"): [f"0 1 {port} bob-host.example.test."],
            ("bob-host.example.test", "A"): ["127.0.0.1"],
        }
        async with dns_server(zone) as (host, dns_port):
            builder = loopback_builder("alice").with_dns_server(f"{host}:{dns_port}")
            async with await builder.build() as alice:
                call = await alice.create_outgoing_call(
                    "sip:alice@127.0.0.1", "sip:bob@example.test"
                )
                await alice.wait_for_answer(call.id, 5)
                assert [c.request_uri for c in bob_handler.calls] == ["sip:bob@example.test"]
                await alice.terminate_session(call.id)
                assert await wait_until(lambda: released(alice) and released(bob))


def _busy_then_bob(busy_port: int, bob_port: int) -> Zone:
    """``example.test``'s SRV: a busy server on ``busy_port`` first, bob's second."""
    return {
        ("_sip._udp.example.test", "SRV"): [
            f"10 0 {busy_port} busy.example.test.",
            f"20 0 {bob_port} bob-host.example.test.",
        ],
        ("busy.example.test", "A"): ["127.0.0.1"],
        ("bob-host.example.test", "A"): ["127.0.0.1"],
    }


async def test_failover_to_the_second_srv_target_after_503(
    anyio_backend: str, dns_server: DnsServer
) -> None:
    """RFC 3263 §4.3: the first SRV target answers 503; the call reaches the second."""
    bob_handler = Counting()
    async with (
        await loopback_builder("busy", Rejecter()).build() as busy,
        await loopback_builder("bob", bob_handler).build() as bob,
    ):
        zone = _busy_then_bob(busy.local_sip_address[1], bob.local_sip_address[1])
        async with dns_server(zone) as (host, dns_port):
            builder = loopback_builder("alice").with_dns_server(f"{host}:{dns_port}")
            async with await builder.build() as alice:
                call = await alice.create_outgoing_call(
                    "sip:alice@127.0.0.1", "sip:bob@example.test"
                )
                await alice.wait_for_answer(call.id, 5)
                assert len(bob_handler.calls) == 1
                assert alice.endpoint.stats()["dialog_dns_failover"] == 1
                await alice.terminate_session(call.id)
                assert await wait_until(lambda: released(alice) and released(bob))


@contextlib.asynccontextmanager
async def _busy_server(retry_after: int | None) -> AsyncIterator[tuple[int, list[str]]]:
    """A UDP SIP server on 127.0.0.1 answering every INVITE 503 (with ``Retry-After``).

    Yields its port and the Call-IDs of the INVITEs it got (retransmissions once).
    """
    headers = [] if retry_after is None else [("Retry-After", str(retry_after))]
    invites: list[str] = []
    async with (
        await anyio.create_udp_socket(local_host="127.0.0.1") as sock,
        anyio.create_task_group() as tg,
    ):

        async def serve() -> None:
            async for data, (host, port) in sock:
                request = parse_message(data)
                if not isinstance(request, Request) or request.method != "INVITE":
                    continue  # the ACK of our 503
                if request.call_id not in invites:
                    invites.append(request.call_id)
                busy = make_response(request, 503, to_tag="busy", headers=headers)
                await sock.sendto(busy.encode(), host, port)

        tg.start_soon(serve)
        yield sock.extra(anyio.abc.SocketAttribute.local_port), invites
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("retry_after", [120, None])
async def test_a_503_with_retry_after_sends_the_next_calls_elsewhere(
    anyio_backend: str, dns_server: DnsServer, retry_after: int | None
) -> None:
    """RFC 3261 §21.5.4: the first SRV target answers 503 ``Retry-After: 120``.

    The first call fails over to the second target (RFC 3263 §4.3); while the 120 s run,
    the next call is sent to the second target first, so the busy server sees one INVITE,
    not one per call. Without a Retry-After each call tries it first again.
    """
    bob_handler = Counting()
    async with (
        _busy_server(retry_after) as (busy_port, invites),
        await loopback_builder("bob", bob_handler).build() as bob,
    ):
        zone = _busy_then_bob(busy_port, bob.local_sip_address[1])
        async with dns_server(zone) as (host, dns_port):
            builder = loopback_builder("alice").with_dns_server(f"{host}:{dns_port}")
            async with await builder.build() as alice:
                for _ in range(3):
                    call = await alice.create_outgoing_call(
                        "sip:alice@127.0.0.1", "sip:bob@example.test"
                    )
                    await alice.wait_for_answer(call.id, 5)
                    await alice.terminate_session(call.id)
                assert len(bob_handler.calls) == 3
                stats = alice.endpoint.stats()
                if retry_after is None:
                    assert len(invites) == 3
                    assert stats.get("dialog_targets_parked", 0) == 0
                else:
                    assert len(invites) == 1
                    assert stats["dialog_targets_parked"] == 1
                assert await wait_until(lambda: released(alice) and released(bob))


async def test_failover_to_the_second_srv_target_of_a_dead_port(
    anyio_backend: str, dns_server: DnsServer
) -> None:
    """The first SRV target is a port nobody answers on (Timer B); the second answers."""
    bob_handler = Counting()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        async with await loopback_builder("bob", bob_handler).build() as bob:
            zone: Zone = {
                ("_sip._udp.example.test", "SRV"): [
                    f"10 0 {silent.getsockname()[1]} dead.example.test.",
                    f"20 0 {bob.local_sip_address[1]} bob-host.example.test.",
                ],
                ("dead.example.test", "A"): ["127.0.0.1"],
                ("bob-host.example.test", "A"): ["127.0.0.1"],
            }
            async with dns_server(zone) as (host, dns_port):
                builder = loopback_builder("alice", t1=0.02).with_dns_server(f"{host}:{dns_port}")
                async with await builder.build() as alice:
                    call = await alice.create_outgoing_call(
                        "sip:alice@127.0.0.1", "sip:bob@example.test"
                    )
                    await alice.wait_for_answer(call.id, 10)
                    assert len(bob_handler.calls) == 1
                    await alice.terminate_session(call.id)


def _drain(events: EventSubscription[SessionEventType]) -> list[SessionEventType]:
    out = []
    while (event := events.receive_nowait()) is not None:
        out.append(event)
    return out


async def test_forward_decision_is_followed_to_the_new_target(anyio_backend: str) -> None:
    """``CallDecision.Forward(carol)`` answers 302; the caller follows it and reaches carol."""
    carol_handler = Counting()
    async with await loopback_builder("carol", carol_handler).build() as carol:
        forwarder = Forwarder(uri_of(carol, "carol"))
        async with (
            await loopback_builder("bob", forwarder).build() as bob,
            await loopback_builder("alice").build() as alice,
        ):
            events = alice.events()
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
            await alice.wait_for_answer(call.id, 5)
            assert len(carol_handler.calls) == 1
            assert carol_handler.calls[0].to == uri_of(bob, "bob")  # To is kept
            assert carol_handler.calls[0].request_uri == uri_of(carol, "carol")
            # The app is told where the call went: an event and the session's target.
            redirected = [e for e in _drain(events) if isinstance(e, CallRedirected)]
            assert [(e.session_id, e.target, e.status) for e in redirected] == [
                (call.id, uri_of(carol, "carol"), 302)
            ]
            session = await alice.get_session(call.id)
            assert session.target == uri_of(carol, "carol")
            assert session.to == uri_of(bob, "bob")
            await alice.terminate_session(call.id)
            assert await wait_until(lambda: released(alice) and released(carol))


async def test_forward_not_followed_when_turned_off(anyio_backend: str) -> None:
    """``with_redirects(False)``: the 302 fails the call with its status."""
    async with (
        await loopback_builder("bob", Forwarder("sip:carol@127.0.0.1:9")).build() as bob,
        await loopback_builder("alice").with_redirects(False).build() as alice,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 5)
        assert info.value.status == 302


async def test_unknown_name_fails_the_call(anyio_backend: str, dns_server: DnsServer) -> None:
    """No records for the name: the call fails (503) without asking the system resolver."""
    zone: Zone = {("other.example.test", "A"): ["127.0.0.1"]}
    async with dns_server(zone) as (host, dns_port):
        builder = loopback_builder("alice").with_dns_server(f"{host}:{dns_port}")
        async with await builder.build() as alice:
            call = await alice.create_outgoing_call(
                "sip:alice@127.0.0.1", "sip:bob@nowhere.example.test"
            )
            with anyio.fail_after(10), pytest.raises(CallFailed) as info:
                await alice.wait_for_answer(call.id, 8)
            assert info.value.status == 503
