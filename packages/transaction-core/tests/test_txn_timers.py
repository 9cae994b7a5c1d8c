"""Every timer path of the four machines, on a virtual clock (no wall time spent)."""

from __future__ import annotations

import itertools

import pytest

from rvoip_sip_core import make_response, new_tag
from rvoip_transaction_core import (
    Peer,
    ResponseReceived,
    State,
    TimerConfig,
    TransactionAck,
    TransactionEvent,
    TransactionRequest,
    TransactionTerminated,
    TransactionTimeout,
)
from rvoip_transaction_core.testing import MemoryNetwork, Node, simple_request

NOWHERE = Peer("UDP", "127.0.0.9", 5060)
CLIENT = Peer("UDP", "127.0.0.5", 5070)


def intervals(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


def recorder(net: MemoryNetwork, into: list[tuple[float, TransactionEvent]]):  # type: ignore[no-untyped-def]
    def tu(node: Node, event: TransactionEvent) -> None:
        into.append((net.now, event))

    return tu


def invite_bytes(branch: str = "z9hG4bKinv1", transport: str = "UDP") -> bytes:
    via = f"SIP/2.0/{transport} 127.0.0.5:5070;branch={branch}"
    return simple_request("INVITE", "127.0.0.1", 5060, via=via).encode()


def ack_bytes(branch: str = "z9hG4bKinv1", to_tag: str | None = None) -> bytes:
    via = f"SIP/2.0/UDP 127.0.0.5:5070;branch={branch}"
    return simple_request("ACK", "127.0.0.1", 5060, via=via, to_tag=to_tag).encode()


def test_non_invite_client_udp_retransmits_500ms_1s_2s_4s_4s_then_timer_f() -> None:
    net = MemoryNetwork()
    seen: list[tuple[float, TransactionEvent]] = []
    a = net.add("127.0.0.1", 5060, tu=recorder(net, seen))
    txn = a.layer.send_request(simple_request("OPTIONS"), NOWHERE, net.now)
    net.run(100.0)
    times = [d.time for d in net.sent(a)]
    # RFC 3261 §17.1.2.2: E starts at T1, doubles up to T2; F fires at 64*T1 = 32 s.
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert intervals(times)[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert seen == [(32.0, TransactionTimeout(txn, "F")), (32.0, TransactionTerminated(txn))]
    assert len(a.layer) == 0


def test_invite_client_udp_timer_a_doubles_then_timer_b_after_64_t1() -> None:
    net = MemoryNetwork()
    seen: list[tuple[float, TransactionEvent]] = []
    a = net.add("127.0.0.1", 5060, tu=recorder(net, seen))
    txn = a.layer.send_request(simple_request("INVITE"), NOWHERE, net.now)
    net.run(100.0)
    times = [d.time for d in net.sent(a)]
    # RFC 3261 §17.1.1.2: A doubles without cap; B fires at 64*T1.
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert seen == [(32.0, TransactionTimeout(txn, "B")), (32.0, TransactionTerminated(txn))]


def test_timer_values_follow_the_configured_t1_t2() -> None:
    net = MemoryNetwork(config=TimerConfig(t1=0.1, t2=0.4, t4=1.0))
    seen: list[tuple[float, TransactionEvent]] = []
    a = net.add("127.0.0.1", 5060, tu=recorder(net, seen))
    txn = a.layer.send_request(simple_request("OPTIONS"), NOWHERE, net.now)
    net.run(100.0)
    times = [round(d.time, 6) for d in net.sent(a)]
    assert intervals(times)[:4] == [0.1, 0.2, 0.4, 0.4]
    assert seen[0] == (pytest.approx(6.4), TransactionTimeout(txn, "F"))


def test_non_invite_client_in_proceeding_retransmits_every_t2() -> None:
    net = MemoryNetwork()
    server_txns: list[int] = []

    def server_tu(node: Node, event: TransactionEvent) -> None:
        if isinstance(event, TransactionRequest):
            server_txns.append(event.txn_id)
            node.layer.respond(event.txn_id, make_response(event.request, 100), net.now)

    a = net.add("127.0.0.1", 5060)
    b = net.add("127.0.0.2", 5060, tu=server_tu)
    txn = a.layer.send_request(simple_request("OPTIONS"), b.peer(), net.now)
    net.pump()
    assert a.layer.state(txn) is State.PROCEEDING
    net.run(20.0)
    times = [d.time for d in net.sent(a)]
    # RFC 3261 §17.1.2.2: the running E (T1) fires once more, then E is reset to T2.
    assert times == [0.0, 0.5, 4.5, 8.5, 12.5, 16.5]
    # the server's Proceeding state answers each retransmission with the last provisional
    assert len(net.sent(b)) == len(times)
    b.layer.respond(server_txns[0], make_response(_received(b, server_txns[0]), 200), net.now)
    net.run(20.0 + 64.0)
    assert a.layer.state(txn) is None
    assert any(isinstance(e, ResponseReceived) and e.response.status == 200 for e in a.events)


def _received(node: Node, txn_id: int):  # type: ignore[no-untyped-def]
    request = node.layer.request_of(txn_id)
    assert request is not None
    return request


def test_reliable_non_invite_client_never_retransmits_and_timer_k_is_zero() -> None:
    net = MemoryNetwork()
    a = net.add("127.0.0.1", 5060)
    txn = a.layer.send_request(simple_request("OPTIONS"), Peer("TCP", "127.0.0.9", 5060), 0.0)
    net.run(10.0)
    assert len(net.sent(a)) == 1
    net.run(40.0)
    assert TransactionTimeout(txn, "F") in a.events
    # with an answer, Completed lasts 0 s over TCP (RFC 3261 §17.1.2.2: K = 0)
    net2 = MemoryNetwork()

    def answer(node: Node, event: TransactionEvent) -> None:
        if isinstance(event, TransactionRequest):
            node.layer.respond(event.txn_id, make_response(event.request, 200), net2.now)

    c = net2.add("127.0.0.1", 5060)
    d = net2.add("127.0.0.2", 5060, tu=answer)
    txn2 = c.layer.send_request(simple_request("OPTIONS"), d.peer("TCP"), 0.0)
    net2.pump()
    assert c.layer.state(txn2) is None
    assert TransactionTerminated(txn2) in c.events
    # and the server's Timer J is 0 over TCP too
    assert len(d.layer) == 0


def test_non_invite_server_timer_j_keeps_completed_for_64_t1_over_udp() -> None:
    net = MemoryNetwork()
    seen: list[tuple[float, TransactionEvent]] = []
    b = net.add("127.0.0.1", 5060, tu=recorder(net, seen))
    via = "SIP/2.0/UDP 127.0.0.5:5070;branch=z9hG4bKopt1"
    data = simple_request("OPTIONS", "127.0.0.1", 5060, via=via).encode()
    b.layer.receive(data, CLIENT, 0.0)
    net.pump()
    ((_, first),) = seen
    assert isinstance(first, TransactionRequest)
    b.layer.respond(first.txn_id, make_response(first.request, 200), 0.0)
    net.run(10.0)
    b.layer.receive(data, CLIENT, net.now)  # a retransmission gets the final again
    net.pump()
    assert [d.first_line for d in net.sent(b)] == ["SIP/2.0 200 OK", "SIP/2.0 200 OK"]
    net.run(100.0)
    assert seen[-1] == (32.0, TransactionTerminated(first.txn_id))


def _invite_received(
    net: MemoryNetwork,
    seen: list[tuple[float, TransactionEvent]],
    data: bytes | None = None,
    source: Peer = CLIENT,
) -> tuple[Node, TransactionRequest]:
    """Server b (events into ``seen``) receives an INVITE at t=0; returns b and the event."""
    b = net.add("127.0.0.1", 5060, tu=recorder(net, seen))
    b.layer.receive(invite_bytes() if data is None else data, source, 0.0)
    net.pump()
    request = seen[0][1]
    assert isinstance(request, TransactionRequest)
    return b, request


def test_invite_server_timer_g_backs_off_to_t2_and_timer_h_reports_missing_ack() -> None:
    net = MemoryNetwork()
    seen: list[tuple[float, TransactionEvent]] = []
    b, request = _invite_received(net, seen)
    b.layer.respond(request.txn_id, make_response(request.request, 486, to_tag="t1"), 0.0)
    net.run(100.0)
    sent = net.sent(b)
    assert sent[0].first_line == "SIP/2.0 100 Trying"  # RFC 3261 §17.2.1
    finals = [d.time for d in sent if d.first_line.startswith("SIP/2.0 486")]
    # RFC 3261 §17.2.1: G from T1 doubling up to T2, H at 64*T1.
    assert finals == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert (32.0, TransactionTimeout(request.txn_id, "H")) in seen


def test_invite_server_ack_moves_to_confirmed_and_timer_i_is_t4() -> None:
    net = MemoryNetwork()
    seen: list[tuple[float, TransactionEvent]] = []
    b, request = _invite_received(net, seen)
    b.layer.respond(request.txn_id, make_response(request.request, 486, to_tag="t1"), 0.0)
    net.run(1.0)
    b.layer.receive(ack_bytes(to_tag="t1"), CLIENT, net.now)
    assert b.layer.state(request.txn_id) is State.CONFIRMED
    net.run(100.0)
    # ACK absorbed (not delivered), terminated at 1.0 + T4
    assert not any(isinstance(e, TransactionAck) for _, e in seen)
    assert seen[-1] == (6.0, TransactionTerminated(request.txn_id))
    finals = [d.time for d in net.sent(b) if d.first_line.startswith("SIP/2.0 486")]
    assert finals == [0.0, 0.5]


def test_invite_server_over_tcp_has_no_timer_g_and_timer_i_zero() -> None:
    net = MemoryNetwork()
    seen: list[tuple[float, TransactionEvent]] = []
    tcp_client = Peer("TCP", "127.0.0.5", 5070)
    b, request = _invite_received(net, seen, invite_bytes(transport="TCP"), tcp_client)
    b.layer.respond(request.txn_id, make_response(request.request, 486, to_tag="t1"), 0.0)
    net.run(10.0)
    assert [d.first_line for d in net.sent(b)] == ["SIP/2.0 100 Trying", "SIP/2.0 486 Busy Here"]
    ack = ack_bytes(to_tag="t1").replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
    b.layer.receive(ack, tcp_client, net.now)
    assert b.layer.state(request.txn_id) is None


def test_invite_server_accepted_state_timer_l_and_acks_to_tu() -> None:
    net = MemoryNetwork()
    seen: list[tuple[float, TransactionEvent]] = []
    b, request = _invite_received(net, seen)
    ok = make_response(request.request, 200, to_tag="t2")
    b.layer.respond(request.txn_id, ok, 0.0)
    assert b.layer.state(request.txn_id) is State.ACCEPTED
    b.layer.receive(invite_bytes(), CLIENT, 1.0)  # RFC 6026 §7.1: absorbed
    b.layer.respond(request.txn_id, ok, 2.0)  # the TU's own 2xx retransmission is sent
    b.layer.receive(ack_bytes("z9hG4bKack2", to_tag="t2"), CLIENT, 3.0)
    net.run(100.0)
    lines = [d.first_line for d in net.sent(b)]
    assert lines == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK", "SIP/2.0 200 OK"]
    assert any(isinstance(e, TransactionAck) for _, e in seen)
    assert seen[-1] == (32.0, TransactionTerminated(request.txn_id))


def _invite_sent(
    net: MemoryNetwork, seen: list[tuple[float, TransactionEvent]], *, ring: bool = False
) -> tuple[Node, Node, list[TransactionRequest], int]:
    """Client a (events into ``seen``) sends an INVITE to server b; b answers 180 if ``ring``."""
    server_events: list[TransactionRequest] = []

    def server_tu(node: Node, event: TransactionEvent) -> None:
        if isinstance(event, TransactionRequest):
            server_events.append(event)
            if ring:
                ringing = make_response(event.request, 180, to_tag="r")
                node.layer.respond(event.txn_id, ringing, net.now)

    a = net.add("127.0.0.1", 5060, tu=recorder(net, seen))
    b = net.add("127.0.0.2", 5060, tu=server_tu)
    txn = a.layer.send_request(simple_request("INVITE"), b.peer(), 0.0)
    net.pump()
    return a, b, server_events, txn


def test_invite_client_accepted_passes_2xx_retransmissions_until_timer_m() -> None:
    net = MemoryNetwork()
    seen: list[tuple[float, TransactionEvent]] = []
    a, b, server_events, txn = _invite_sent(net, seen)
    ok = make_response(server_events[0].request, 200, to_tag=new_tag(b.layer.rng))
    b.layer.respond(server_events[0].txn_id, ok, 0.0)
    net.pump()
    assert a.layer.state(txn) is State.ACCEPTED
    net.run(4.0)
    b.layer.respond(server_events[0].txn_id, ok, net.now)  # 2xx retransmission by the UAS core
    net.run(100.0)
    oks = [e for _, e in seen if isinstance(e, ResponseReceived) and e.response.status == 200]
    assert len(oks) == 2  # RFC 6026 §8.4: every 2xx reaches the TU
    assert (32.0, TransactionTerminated(txn)) in seen


def test_invite_client_non_2xx_acks_each_final_and_timer_d() -> None:
    net = MemoryNetwork()
    # lose the first ACK so the server retransmits its final and the client ACKs again
    net.drop = lambda i, tx: tx.data.startswith(b"ACK") and i < 4
    seen: list[tuple[float, TransactionEvent]] = []
    a, b, server_events, txn = _invite_sent(net, seen)
    busy = make_response(server_events[0].request, 486, to_tag="x")
    b.layer.respond(server_events[0].txn_id, busy, 0.0)
    net.run(200.0)
    acks = [d for d in net.sent(a) if d.first_line.startswith("ACK")]
    assert [d.time for d in acks] == [0.0, 0.5]
    finals = [e for _, e in seen if isinstance(e, ResponseReceived) and e.response.status == 486]
    assert len(finals) == 1  # retransmitted finals are absorbed
    assert (32.0, TransactionTerminated(txn)) in seen  # Timer D = 32 s
    assert b.layer.state(server_events[0].txn_id) is None
    ack = acks[0].transmit.data.decode()
    assert "CSeq: 1 ACK" in ack
    assert ";tag=x" in ack


def test_invite_client_timer_c_ends_a_proceeding_invite_and_is_reset_by_provisionals() -> None:
    net = MemoryNetwork()
    seen: list[tuple[float, TransactionEvent]] = []
    a, b, server_events, txn = _invite_sent(net, seen, ring=True)
    assert a.layer.state(txn) is State.PROCEEDING
    net.run(100.0)
    ringing = make_response(server_events[0].request, 180, to_tag="r")
    b.layer.respond(server_events[0].txn_id, ringing, net.now)  # resets C at t=100
    net.run(1000.0)
    # RFC 3261 §16.6: Timer C > 3 min (181 s by default) from the last provisional
    assert (281.0, TransactionTimeout(txn, "C")) in seen
    assert seen[-1] == (281.0, TransactionTerminated(txn))


def test_timer_c_can_be_disabled() -> None:
    net = MemoryNetwork(config=TimerConfig(c=None))
    seen: list[tuple[float, TransactionEvent]] = []
    a, _b, _events, txn = _invite_sent(net, seen, ring=True)
    net.run(10_000.0)
    assert a.layer.state(txn) is State.PROCEEDING
    assert not any(isinstance(e, TransactionTimeout) for _, e in seen)
