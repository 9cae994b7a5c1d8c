"""The anyio driver on real UDP sockets (127.0.0.1, ephemeral ports), asyncio and trio."""

from __future__ import annotations

import ssl
from typing import ClassVar

import anyio
import pytest

from rvoip_dialog_core import (
    AckReceived,
    ByeReceived,
    DialogConfirmed,
    DialogEndpoint,
    DialogEvent,
    DialogTerminated,
    IncomingInvite,
    InviteFailed,
    ResponseForRequest,
    TerminationReason,
    target_for,
)
from rvoip_dialog_core.rules import next_hop
from rvoip_sip_core import Request, make_request, parse_uri
from rvoip_transaction_core import Peer, TimerConfig, TransactionEvent

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


async def wait_for(ep: DialogEndpoint, kind: type[DialogEvent]) -> DialogEvent:
    """The next event of ``kind`` (earlier events of other kinds are skipped)."""
    for _ in range(50):
        event = await ep.next_event()
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__}")


@pytest.mark.anyio
async def test_loopback_call_invite_ok_ack_bye(anyio_backend: str) -> None:
    async with DialogEndpoint(user="bob") as bob, DialogEndpoint(user="alice") as alice:
        port = bob.local().port
        assert bob.config.contact == f"sip:bob@127.0.0.1:{port}"
        with anyio.fail_after(10):
            leg = alice.invite(f"sip:bob@127.0.0.1:{port}", from_="sip:alice@127.0.0.1", body=SDP)
            incoming = await wait_for(bob, IncomingInvite)
            assert isinstance(incoming, IncomingInvite)
            assert incoming.request.body == SDP
            bob.respond(incoming.ref, 180)
            bob.respond(incoming.ref, 200, body=SDP)
            confirmed = await wait_for(alice, DialogConfirmed)
            assert isinstance(confirmed, DialogConfirmed)
            assert confirmed.dialog_id.leg == leg
            assert isinstance(await wait_for(bob, AckReceived), AckReceived)
            ref = alice.bye(confirmed.dialog_id)
            assert isinstance(await wait_for(bob, ByeReceived), ByeReceived)
            ended = await wait_for(bob, DialogTerminated)
            assert isinstance(ended, DialogTerminated)
            assert ended.reason is TerminationReason.REMOTE_BYE
            done = await wait_for(alice, ResponseForRequest)
            assert isinstance(done, ResponseForRequest)
            assert done.ref == ref
            assert done.response.status == 200
        assert len(alice.layer) == 0
        assert len(bob.layer) == 0


@pytest.mark.anyio
async def test_loopback_cancel_and_reject(anyio_backend: str) -> None:
    async with DialogEndpoint(user="bob") as bob, DialogEndpoint(user="alice") as alice:
        target = f"sip:bob@127.0.0.1:{bob.local().port}"
        with anyio.fail_after(10):
            leg = alice.invite(target, from_="sip:alice@127.0.0.1", body=SDP)
            incoming = await wait_for(bob, IncomingInvite)
            assert isinstance(incoming, IncomingInvite)
            bob.respond(incoming.ref, 180)
            alice.cancel(leg)
            failed = await wait_for(alice, InviteFailed)
            assert isinstance(failed, InviteFailed)
            assert failed.response.status == 487
            alice.invite(target, from_="sip:alice@127.0.0.1", body=SDP)
            second = await wait_for(bob, IncomingInvite)
            assert isinstance(second, IncomingInvite)
            bob.respond(second.ref, 486)
            busy = await wait_for(alice, InviteFailed)
            assert isinstance(busy, InviteFailed)
            assert busy.response.status == 486


def test_target_for_uses_route_then_request_uri() -> None:
    def request(uri: str, route: str | None = None) -> Request:
        return make_request(
            "OPTIONS",
            parse_uri(uri),
            from_="<sip:a@h>;tag=1",
            to="<sip:b@h>",
            call_id="c",
            cseq=1,
            via=None,
            headers=[("Route", route)] if route else [],
        )

    assert target_for(request("sip:b@127.0.0.1:5070")) == Peer("UDP", "127.0.0.1", 5070)
    assert target_for(request("sip:b@[::1]")) == Peer("UDP", "::1", 5060)
    routed = request("sip:b@10.0.0.9", "<sip:127.0.0.1:5999;lr;transport=tcp>")
    assert target_for(routed) == Peer("TCP", "127.0.0.1", 5999)
    assert target_for(request("sips:b@127.0.0.1")) == Peer("TLS", "127.0.0.1", 5061)
    assert target_for(request("sip:b@example.com")) is None
    # Host names need DNS: target_for declines, next_hop tells where.
    assert target_for(request("sip:b@localhost:7")) is None
    assert next_hop(request("sip:b@localhost:7")) == Peer("UDP", "localhost", 7)
    # A strict router is the Request-URI; the Route then ends with the remote target.
    strict = request("sip:127.0.0.1:5998", "<sip:b@10.0.0.9>")
    assert target_for(strict) == Peer("UDP", "127.0.0.1", 5998)


@pytest.mark.anyio
async def test_callback_mode_and_out_of_dialog_options(anyio_backend: str) -> None:
    seen: list[DialogEvent] = []
    got = anyio.Event()

    def on_event(event: DialogEvent) -> None:
        seen.append(event)
        if isinstance(event, ResponseForRequest):
            got.set()

    async with DialogEndpoint(user="bob") as bob, DialogEndpoint(on_event=on_event) as alice:
        target = f"sip:bob@127.0.0.1:{bob.local().port}"
        with anyio.fail_after(10):
            ref = alice.send_request("OPTIONS", target, from_="sip:alice@127.0.0.1")
            await got.wait()
        (answer,) = [e for e in seen if isinstance(e, ResponseForRequest)]
        assert answer.ref == ref
        assert answer.response.status == 200
        assert "INVITE" in (answer.response.headers.get("Allow") or "")


@pytest.mark.anyio
async def test_loopback_call_over_tcp(anyio_backend: str) -> None:
    tcp = ("127.0.0.1", 0)
    async with (
        DialogEndpoint(udp=None, tcp=tcp, user="bob") as bob,
        DialogEndpoint(udp=None, tcp=tcp, user="alice") as alice,
    ):
        port = bob.local("TCP").port
        assert bob.config.contact.endswith(";transport=tcp")
        with anyio.fail_after(10):
            alice.invite(f"sip:bob@127.0.0.1:{port};transport=tcp", from_="sip:alice@127.0.0.1")
            incoming = await wait_for(bob, IncomingInvite)
            assert isinstance(incoming, IncomingInvite)
            assert incoming.request.top_via.transport == "TCP"
            bob.respond(incoming.ref, 200, body=SDP)
            confirmed = await wait_for(alice, DialogConfirmed)
            assert isinstance(confirmed, DialogConfirmed)
            assert isinstance(await wait_for(bob, AckReceived), AckReceived)
            alice.bye(confirmed.dialog_id)
            done = await wait_for(alice, ResponseForRequest)
            assert isinstance(done, ResponseForRequest)
            assert done.response.status == 200


@pytest.mark.anyio
async def test_loopback_call_over_tls(
    anyio_backend: str, dialog_tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server, client = dialog_tls_contexts
    tls = ("127.0.0.1", 0)
    kw = {"udp": None, "tls": tls, "tls_server_context": server, "tls_client_context": client}
    async with (
        DialogEndpoint(user="bob", **kw) as bob,  # type: ignore[arg-type]
        DialogEndpoint(user="alice", **kw) as alice,  # type: ignore[arg-type]
    ):
        port = bob.local("TLS").port
        # RFC 5630 §3.1.2: the configured Contact is a sip: URI naming TLS; a sips: one is
        # used only for secure requests (below).
        assert bob.config.contact == f"sip:bob@127.0.0.1:{port};transport=tls"
        assert bob.config.contact_for("TLS", secure=True) == f"sips:bob@127.0.0.1:{port}"
        with anyio.fail_after(10):
            alice.invite(f"sips:bob@127.0.0.1:{port}", from_="sips:alice@127.0.0.1")
            incoming = await wait_for(bob, IncomingInvite)
            assert isinstance(incoming, IncomingInvite)
            assert incoming.request.top_via.transport == "TLS"
            uri = incoming.request.contacts[0].uri
            assert uri is not None
            assert uri.scheme == "sips"
            bob.respond(incoming.ref, 200, body=SDP)
            confirmed = await wait_for(alice, DialogConfirmed)
            assert isinstance(confirmed, DialogConfirmed)
            assert isinstance(await wait_for(bob, AckReceived), AckReceived)
            alice.bye(confirmed.dialog_id)
            bye = await wait_for(bob, ByeReceived)
            assert isinstance(bye, ByeReceived)
            done = await wait_for(alice, ResponseForRequest)
            assert isinstance(done, ResponseForRequest)
            assert done.response.status == 200


@pytest.mark.anyio
async def test_a_udp_endpoint_sends_tls_requests_with_a_tls_via(
    anyio_backend: str, dialog_tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server, client = dialog_tls_contexts
    tls = ("127.0.0.1", 0)
    async with (
        DialogEndpoint(udp=None, tls=tls, tls_server_context=server, user="bob") as bob,
        DialogEndpoint(tls=tls, tls_client_context=client, user="alice") as alice,
    ):
        port = bob.local("TLS").port
        with anyio.fail_after(10):
            alice.invite(f"sip:bob@127.0.0.1:{port};transport=tls", from_="sip:alice@127.0.0.1")
            incoming = await wait_for(bob, IncomingInvite)
            assert isinstance(incoming, IncomingInvite)
            # RFC 3261 §18.1.1: the Via names the transport the request went out on.
            assert incoming.request.top_via.transport == "TLS"
            bob.respond(incoming.ref, 486)
            busy = await wait_for(alice, InviteFailed)
            assert isinstance(busy, InviteFailed)
            assert busy.response.status == 486


@pytest.mark.anyio
async def test_host_names_are_resolved_by_the_driver(anyio_backend: str) -> None:
    async with DialogEndpoint(user="bob") as bob, DialogEndpoint(user="alice") as alice:
        with anyio.fail_after(10):
            alice.invite(f"sip:bob@localhost:{bob.local().port}", from_="sip:alice@localhost")
            incoming = await wait_for(bob, IncomingInvite)
            assert isinstance(incoming, IncomingInvite)
            bob.respond(incoming.ref, 486)
            busy = await wait_for(alice, InviteFailed)
            assert isinstance(busy, InviteFailed)
            assert busy.response.status == 486


@pytest.mark.anyio
async def test_commands_issued_inside_the_callback_are_sent(anyio_backend: str) -> None:
    # Regression: a respond() or bye() made inside on_event used to wait for a later flush.
    # Alice's T1 is long, so no retransmission can push bob's answer out for him.
    bob_seen: list[DialogEvent] = []
    holder: list[DialogEndpoint] = []

    def on_event(event: DialogEvent) -> None:
        bob_seen.append(event)
        if isinstance(event, IncomingInvite):
            holder[0].respond(event.ref, 180)
            holder[0].respond(event.ref, 200, body=SDP)
        elif isinstance(event, AckReceived):
            holder[0].bye(event.dialog_id)

    class Checked(DialogEndpoint):
        # After each transaction event the layer must have nothing left to send.
        leftovers: ClassVar[list[object]] = []

        def _on_txn_event(self, event: TransactionEvent) -> None:
            super()._on_txn_event(event)
            self.leftovers.extend(self.layer.take_actions())

    slow = TimerConfig(t1=20.0, t2=40.0)
    async with (
        Checked(user="bob", on_event=on_event) as bob,
        DialogEndpoint(user="alice", timers=slow) as alice,
    ):
        holder.append(bob)
        with anyio.fail_after(10):
            alice.invite(f"sip:bob@127.0.0.1:{bob.local().port}", from_="sip:a@127.0.0.1", body=SDP)
            confirmed = await wait_for(alice, DialogConfirmed)
            assert isinstance(confirmed, DialogConfirmed)
            bye = await wait_for(alice, ByeReceived)
            assert isinstance(bye, ByeReceived)
            ended = await wait_for(alice, DialogTerminated)
            assert isinstance(ended, DialogTerminated)
            assert ended.reason is TerminationReason.REMOTE_BYE
        assert bob.leftovers == []
        kinds = {type(e) for e in bob_seen}
        assert {IncomingInvite, AckReceived, DialogTerminated} <= kinds


class _CountingTransactions:
    """Stands in for the TransactionEndpoint under a driver fed events directly.

    Responses are counted instead of sent; the timer stays the real endpoint's (the
    dialog deadlines ride on it, ``attach_timers``).
    """

    def __init__(self, real: object) -> None:
        self.responses: list[int] = []
        self.rearm = real.rearm  # type: ignore[attr-defined]

    def respond(self, txn_id: int, response: object) -> None:
        self.responses.append(txn_id)


def _uas_request(method: str, n: int, to_tag: str | None, seq: int) -> Request:
    to = "<sip:rvoip@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return make_request(
        method,
        parse_uri("sip:rvoip@127.0.0.1"),
        from_=f"<sip:sipp@127.0.0.1:5061>;tag=f{n}",
        to=to,
        call_id=f"call-{n}",
        cseq=seq,
        via=f"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK{method}{n}",
        contact=None if method == "BYE" else "<sip:sipp@127.0.0.1:5061>",
        body=SDP if method == "INVITE" else b"",
        content_type="application/sdp" if method == "INVITE" else None,
    )


@pytest.mark.anyio
async def test_inline_answers_do_not_wake_the_timer_task_per_call(anyio_backend: str) -> None:
    """Calls answered from ``on_event`` need no timer wake-up each; idle, the task sleeps."""
    from rvoip_transaction_core import TransactionAck as TxnAck
    from rvoip_transaction_core import TransactionRequest

    tags: dict[str, str] = {}
    endpoints: list[DialogEndpoint] = []

    def on_event(event: DialogEvent) -> None:
        if isinstance(event, IncomingInvite):
            tags[event.dialog_id.call_id] = event.dialog_id.local_tag
            endpoints[0].respond(event.ref, 200, body=SDP)

    source = Peer("UDP", "127.0.0.1", 5061)
    async with DialogEndpoint(on_event=on_event, timers=TimerConfig(t1=0.05)) as ep:
        endpoints.append(ep)
        stub = _CountingTransactions(ep.transactions)
        ep._txn = stub  # type: ignore[assignment]
        wakes = 0
        handle_timers = ep.layer.handle_timers

        def counting(now: float) -> None:
            nonlocal wakes
            wakes += 1
            handle_timers(now)

        ep.layer.handle_timers = counting  # type: ignore[method-assign]
        with anyio.fail_after(10):
            for n in range(50):
                ep._on_txn_event(
                    TransactionRequest(3 * n, _uas_request("INVITE", n, None, 1), source)
                )
                tag = tags.pop(f"call-{n}")
                ep._on_txn_event(TxnAck(_uas_request("ACK", n, tag, 1), source))
                ep._on_txn_event(
                    TransactionRequest(3 * n + 1, _uas_request("BYE", n, tag, 2), source)
                )
                await anyio.sleep(0)  # the timer task may run between calls
            assert len(stub.responses) == 100
            assert len(ep.layer) == 0
            assert wakes < 10  # one per call before (each 2xx woke the task to arm T1)
            await anyio.sleep(0.5)  # ten T1: the task ticks at most twice more, then sleeps
            settled = wakes
            await anyio.sleep(0.25)
            assert wakes == settled


@pytest.mark.anyio
async def test_unacknowledged_2xx_wakes_the_idle_timer_task(anyio_backend: str) -> None:
    """An idle endpoint's first deadline (a 2xx awaiting its ACK) is armed and fires."""
    from rvoip_transaction_core import TransactionRequest

    endpoints: list[DialogEndpoint] = []

    def on_event(event: DialogEvent) -> None:
        if isinstance(event, IncomingInvite):
            endpoints[0].respond(event.ref, 200, body=SDP)

    source = Peer("UDP", "127.0.0.1", 5061)
    async with DialogEndpoint(on_event=on_event, timers=TimerConfig(t1=0.05)) as ep:
        endpoints.append(ep)
        stub = _CountingTransactions(ep.transactions)
        ep._txn = stub  # type: ignore[assignment]
        await anyio.sleep(0.3)  # idle: the timer task sleeps with nothing armed
        ep._on_txn_event(TransactionRequest(7, _uas_request("INVITE", 1, None, 1), source))
        assert stub.responses == [7]
        with anyio.fail_after(10):
            while len(stub.responses) < 3:  # RFC 3261 §13.3.1.4: T1, then 2*T1 later
                await anyio.sleep(0.01)
        assert set(stub.responses) == {7}


class _FailingOnceTransactions(_CountingTransactions):
    """A transaction endpoint whose first send fails with an unexpected error."""

    def respond(self, txn_id: int, response: object) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("unexpected")
        super().respond(txn_id, response)

    failed = False


@pytest.mark.anyio
async def test_one_failing_action_does_not_lose_the_rest(anyio_backend: str) -> None:
    """Bug (issue 10): an unexpected exception while sending one action of a flush escaped
    the driver's event handling (into the transport's receive path) and the actions queued
    after it were never sent. Now each action is run on its own, failures counted."""
    from rvoip_transaction_core import TransactionRequest

    endpoints: list[DialogEndpoint] = []

    def on_event(event: DialogEvent) -> None:
        if isinstance(event, IncomingInvite):
            endpoints[0].respond(event.ref, 180)
            endpoints[0].respond(event.ref, 200, body=SDP)

    source = Peer("UDP", "127.0.0.1", 5061)
    async with DialogEndpoint(on_event=on_event) as ep:
        endpoints.append(ep)
        stub = _FailingOnceTransactions(ep.transactions)
        ep._txn = stub  # type: ignore[assignment]
        ep._on_txn_event(TransactionRequest(7, _uas_request("INVITE", 1, None, 1), source))
        assert stub.responses == [7]  # the 180 failed, the 200 still went out
        assert ep.stats["action_errors"] == 1


@pytest.fixture(scope="module")
def localhost_tls_contexts(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server certificate naming only DNS:localhost, and a client that verifies names."""
    from rvoip_transaction_core.testing import self_signed_certificate

    files = self_signed_certificate(tmp_path_factory.mktemp("tls-localhost"), "localhost")
    if files is None:
        pytest.skip("openssl CLI not found: cannot make a test certificate")
    cert, key = files
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


@pytest.mark.anyio
async def test_a_tls_target_named_by_host_is_verified_against_the_name(
    anyio_backend: str, localhost_tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    """RFC 5922 §7: ``sips:bob@localhost`` is checked against "localhost" (SNI), not the IP.

    The driver resolved the name and sent to the bare address, so the certificate (which
    names only DNS:localhost) was checked against 127.0.0.1 and the call failed; the
    resolved target now carries the name as ``Peer.server_name``.
    """
    server, client = localhost_tls_contexts
    tls = ("127.0.0.1", 0)
    async with (
        DialogEndpoint(udp=None, tls=tls, tls_server_context=server, user="bob") as bob,
        DialogEndpoint(tls=tls, tls_client_context=client, user="alice") as alice,
    ):
        port = bob.local("TLS").port
        with anyio.fail_after(10):
            alice.invite(f"sips:bob@localhost:{port}", from_="sips:alice@127.0.0.1")
            incoming = await wait_for(bob, IncomingInvite)
            assert isinstance(incoming, IncomingInvite)
            bob.respond(incoming.ref, 486)
            busy = await wait_for(alice, InviteFailed)
            assert isinstance(busy, InviteFailed)
            assert busy.response.status == 486


@pytest.mark.anyio
async def test_overload_and_stream_limits_reach_the_transaction_endpoint(
    anyio_backend: str,
) -> None:
    """DialogEndpoint hands its overload control and stream limits to transaction-core."""
    from rvoip_transaction_core import OverloadConfig, StreamLimits

    async with DialogEndpoint(user="bob") as bob:
        assert bob.transactions.overload.enabled
    limits = StreamLimits(max_connections_per_ip=3)
    async with DialogEndpoint(
        user="carol", overload=OverloadConfig(enabled=False), stream_limits=limits
    ) as carol:
        assert not carol.transactions.overload.enabled
        assert carol.transactions.stream_limits == limits
