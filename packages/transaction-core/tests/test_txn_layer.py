"""TransactionLayer: matching (§17.1.3, §17.2.3), merged requests, CANCEL, bad input, Via."""

from __future__ import annotations

import random

import pytest

from rvoip_sip_core import Request, make_response, parse_message
from rvoip_transaction_core import (
    Peer,
    ResponseReceived,
    State,
    TransactionAck,
    TransactionLayer,
    TransactionRequest,
    TransactionTerminated,
    TransactionUsageError,
    TransportFailure,
    response_target,
)
from rvoip_transaction_core.testing import simple_request

SRC = Peer("UDP", "127.0.0.5", 5070)


def layer() -> TransactionLayer:
    out = TransactionLayer(rng=random.Random(1))
    out.set_local("UDP", "127.0.0.1", 5060)
    out.set_local("TCP", "127.0.0.1", 5060)
    return out


def wire(method: str, branch: str, **kw: object) -> bytes:
    sent_by = kw.pop("sent_by", "127.0.0.5:5070")
    via = f"SIP/2.0/UDP {sent_by};branch={branch}" + str(kw.pop("via_params", ""))
    return simple_request(method, "127.0.0.1", 5060, via=via, **kw).encode()  # type: ignore[arg-type]


def requests(events: list[object]) -> list[TransactionRequest]:
    return [e for e in events if isinstance(e, TransactionRequest)]


def test_retransmitted_request_is_absorbed_and_answered_with_the_last_response() -> None:
    lay = layer()
    lay.receive(wire("OPTIONS", "z9hG4bKa"), SRC, 0.0)
    (req,) = requests(lay.take_events())
    lay.receive(wire("OPTIONS", "z9hG4bKa"), SRC, 0.1)  # Trying: discarded
    assert lay.take_transmits() == []
    lay.respond(req.txn_id, make_response(req.request, 200), 0.2)
    lay.receive(wire("OPTIONS", "z9hG4bKa"), SRC, 0.3)
    sent = lay.take_transmits()
    assert [t.data.split(b"\r\n")[0] for t in sent] == [b"SIP/2.0 200 OK"] * 2
    assert lay.take_events() == []
    assert lay.stats["absorbed_request_retransmission"] == 2


def test_same_branch_other_sent_by_or_method_is_another_transaction() -> None:
    lay = layer()
    lay.receive(wire("OPTIONS", "z9hG4bKa"), SRC, 0.0)
    lay.receive(wire("OPTIONS", "z9hG4bKa", sent_by="127.0.0.6:5070", call_id="c2"), SRC, 0.0)
    lay.receive(wire("INFO", "z9hG4bKa", call_id="c3"), SRC, 0.0)
    assert len(requests(lay.take_events())) == 3


def test_rfc2543_fallback_matches_on_uri_tags_call_id_cseq_and_via() -> None:
    lay = layer()
    lay.receive(wire("INVITE", "old1"), SRC, 0.0)
    (req,) = requests(lay.take_events())
    lay.receive(wire("INVITE", "old1"), SRC, 0.1)
    assert requests(lay.take_events()) == []  # a retransmission
    lay.respond(req.txn_id, make_response(req.request, 486, to_tag="tt"), 0.2)
    # RFC 3261 §17.2.3: the ACK matches only with the To tag of our response
    lay.receive(wire("ACK", "old1", to_tag="other"), SRC, 0.3)
    assert any(isinstance(e, TransactionAck) for e in lay.take_events())
    lay.receive(wire("ACK", "old1", to_tag="tt"), SRC, 0.4)
    assert lay.state(req.txn_id) is State.CONFIRMED


def test_ack_for_2xx_goes_to_the_tu_with_no_transaction() -> None:
    lay = layer()
    lay.receive(wire("ACK", "z9hG4bKnew", to_tag="t"), SRC, 0.0)
    (event,) = lay.take_events()
    assert isinstance(event, TransactionAck)
    assert event.txn_id is None


def test_cancel_is_matched_to_its_invite_or_answered_481() -> None:
    lay = layer()
    lay.receive(wire("INVITE", "z9hG4bKinv"), SRC, 0.0)
    (invite,) = requests(lay.take_events())
    lay.take_transmits()
    lay.receive(wire("CANCEL", "z9hG4bKinv"), SRC, 0.1)
    (cancel,) = requests(lay.take_events())
    assert cancel.cancels == invite.txn_id
    assert cancel.txn_id != invite.txn_id
    lay.receive(wire("CANCEL", "z9hG4bKnone", call_id="zz"), SRC, 0.2)
    assert requests(lay.take_events()) == []
    (tx,) = lay.take_transmits()
    assert tx.data.startswith(b"SIP/2.0 481 ")
    assert lay.stats["answered_481_cancel"] == 1


def test_merged_request_is_answered_482() -> None:
    lay = layer()
    lay.receive(wire("INVITE", "z9hG4bKfork1"), SRC, 0.0)
    assert len(requests(lay.take_events())) == 1
    lay.take_transmits()
    # RFC 3261 §8.2.2.2: same From tag, Call-ID, CSeq, no To tag, another branch
    lay.receive(wire("INVITE", "z9hG4bKfork2", sent_by="127.0.0.7:5060"), SRC, 0.1)
    assert requests(lay.take_events()) == []
    (tx,) = lay.take_transmits()
    assert tx.data.startswith(b"SIP/2.0 482 ")
    assert lay.stats["answered_482_merged"] == 1


def test_unparseable_request_with_enough_headers_gets_400_with_the_reason() -> None:
    lay = layer()
    data = wire("OPTIONS", "z9hG4bKbad").replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INFO")
    lay.receive(data, SRC, 0.0)
    (tx,) = lay.take_transmits()
    response = parse_message(tx.data)
    assert not isinstance(response, Request)
    assert response.status == 400
    assert "CSeq" in response.reason
    assert response.to.tag is not None
    assert lay.take_events() == []


def test_garbage_is_dropped_and_counted() -> None:
    lay = layer()
    lay.receive(b"\x00\xffnot sip at all", SRC, 0.0)
    lay.receive(b"SIP/2.0 200 OK\r\n\r\n", SRC, 0.0)
    lay.receive(b"x" * 70000, SRC, 0.0)
    assert lay.take_transmits() == []
    assert lay.take_events() == []
    assert lay.stats["dropped_unparseable"] >= 1
    assert lay.stats["dropped_too_large"] == 1


def test_crlf_keepalive_datagrams_are_counted_not_parse_errors() -> None:
    """A phone behind NAT pings its registrar with CRLFCRLF (or CRLF) over UDP.

    Such a datagram used to go down the parse-error path and count as
    ``dropped_unparseable``, so every NAT keep-alive of every registered phone looked like
    an attack in the stats. It is a keep-alive (RFC 5626 §3.5.1 practice): counted as
    ``keepalives_received``, never answered over UDP.
    """
    lay = layer()
    for ping in (b"\r\n\r\n", b"\r\n", b"\r\n\r\n\r\n\r\n"):
        lay.receive(ping, SRC, 0.0)
    assert lay.take_transmits() == []
    assert lay.take_events() == []
    assert lay.stats["keepalives_received"] == 3
    assert lay.stats["dropped_unparseable"] == 0


def test_response_with_two_vias_or_no_transaction_is_dropped() -> None:
    lay = layer()
    txn = lay.send_request(simple_request("OPTIONS"), Peer("UDP", "127.0.0.2", 5060), 0.0)
    sent = lay.take_transmits()[0].data
    request = parse_message(sent)
    assert isinstance(request, Request)
    two = make_response(request.prepend_header("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx"), 200)
    lay.receive(two.encode(), SRC, 0.1)
    stray = make_response(simple_request("OPTIONS", via="SIP/2.0/UDP h;branch=z9hG4bKs"), 200)
    lay.receive(stray.encode(), SRC, 0.1)
    assert lay.stats["dropped_bad_response"] == 1
    assert lay.stats["dropped_stray_response"] == 1
    lay.receive(make_response(request, 200).encode(), SRC, 0.2)
    assert any(isinstance(e, ResponseReceived) for e in lay.take_events())
    assert lay.state(txn) is State.COMPLETED


def test_added_via_has_cookie_branch_and_rport() -> None:
    lay = layer()
    lay.send_request(simple_request("OPTIONS"), Peer("UDP", "127.0.0.2", 5060), 0.0)
    request = parse_message(lay.take_transmits()[0].data)
    assert isinstance(request, Request)
    via = request.top_via
    assert via.branch is not None
    assert via.branch.startswith("z9hG4bK")
    assert via.rport is True
    assert via.sent_by == ("127.0.0.1", 5060)


def test_large_udp_request_goes_over_tcp_with_the_via_rewritten() -> None:
    lay = layer()
    big = simple_request("MESSAGE", body=b"x" * 1400)
    lay.send_request(big, Peer("UDP", "127.0.0.2", 5060), 0.0)
    (tx,) = lay.take_transmits()
    assert tx.target.transport == "TCP"  # RFC 3261 §18.1.1
    request = parse_message(tx.data)
    assert isinstance(request, Request)
    assert request.top_via.transport == "TCP"
    assert lay.stats["udp_to_tcp"] == 1


def test_received_and_rport_are_stamped_and_responses_routed_per_18_2_2() -> None:
    lay = layer()
    lay.receive(wire("OPTIONS", "z9hG4bKr", via_params=";rport"), Peer("UDP", "10.1.1.1", 4000), 0)
    (req,) = requests(lay.take_events())
    via = req.request.top_via
    assert via.received == "10.1.1.1"
    assert via.rport == 4000
    lay.respond(req.txn_id, make_response(req.request, 200), 0.0)
    (tx,) = lay.take_transmits()
    assert tx.target == Peer("UDP", "10.1.1.1", 4000)
    reply = parse_message(tx.data)
    assert "received=10.1.1.1" in (reply.headers.get("via") or "")


def test_response_target_rules() -> None:
    request = parse_message(wire("OPTIONS", "z9hG4bKq"))
    assert isinstance(request, Request)
    via = request.top_via
    assert response_target(via, Peer("UDP", "10.0.0.2", 999)) == Peer("UDP", "10.0.0.2", 5070)
    tcp = Peer("TCP", "10.0.0.2", 40000, connection=7)
    assert response_target(via, tcp) == Peer("TCP", "10.0.0.2", 5070, 7)
    maddr = parse_message(wire("OPTIONS", "z9hG4bKq", via_params=";maddr=10.9.9.9"))
    assert isinstance(maddr, Request)
    got = response_target(maddr.top_via, Peer("UDP", "10.0.0.2", 1))
    assert got == Peer("UDP", "10.9.9.9", 5070)


def test_transport_failure_reaches_the_tu_and_ends_the_transaction() -> None:
    lay = layer()
    txn = lay.send_request(simple_request("OPTIONS"), Peer("UDP", "127.0.0.2", 5060), 0.0)
    lay.transport_failed(txn, "ICMP unreachable", 0.1)
    assert lay.take_events() == [
        TransportFailure(txn, "ICMP unreachable"),
        TransactionTerminated(txn),
    ]
    lay.transport_failed(txn, "late", 0.2)
    assert lay.stats["transport_error_no_transaction"] == 1


def test_usage_errors() -> None:
    lay = layer()
    with pytest.raises(TransactionUsageError):
        lay.send_request(simple_request("ACK"), Peer("UDP", "h", 1), 0.0)
    with pytest.raises(TransactionUsageError):
        lay.respond(12345, make_response(simple_request("OPTIONS", via="SIP/2.0/UDP h"), 200), 0)
    with pytest.raises(TransactionUsageError):
        lay.send_request(simple_request("OPTIONS", via="SIP/2.0/UDP h;branch=old"), SRC, 0.0)
    lay.receive(wire("OPTIONS", "z9hG4bKu"), SRC, 0.0)
    (req,) = requests(lay.take_events())
    lay.respond(req.txn_id, make_response(req.request, 200), 0.0)
    with pytest.raises(TransactionUsageError):
        lay.respond(req.txn_id, make_response(req.request, 404), 0.0)
    bare = TransactionLayer()
    with pytest.raises(TransactionUsageError):
        bare.send_request(simple_request("OPTIONS"), SRC, 0.0)


def test_stateless_ack_gets_a_via() -> None:
    lay = layer()
    lay.send_stateless(simple_request("ACK"), Peer("UDP", "127.0.0.2", 5060), 0.0)
    (tx,) = lay.take_transmits()
    assert tx.txn_id is None
    assert b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK" in tx.data


def test_response_with_a_foreign_sent_by_is_discarded() -> None:
    lay = layer()
    txn = lay.send_request(simple_request("OPTIONS"), Peer("UDP", "127.0.0.2", 5060), 0.0)
    request = parse_message(lay.take_transmits()[0].data)
    assert isinstance(request, Request)
    via = str(request.top_via).replace("127.0.0.1:5060", "198.51.100.1:5060")
    forged = make_response(request.with_header("Via", via), 200)
    lay.receive(forged.encode(), SRC, 0.1)
    assert lay.stats["dropped_response_sent_by_mismatch"] == 1  # RFC 3261 §18.1.2
    assert lay.state(txn) is State.TRYING


def test_take_output_hands_out_both_lists_once() -> None:
    """The driver's one call per flush round: transmits and events, then nothing."""
    lay = layer()
    lay.send_request(simple_request("OPTIONS"), Peer("UDP", "127.0.0.2", 5060), 0.0)
    transmits, events = lay.take_output()
    assert len(transmits) == 1
    assert events == []
    lay.receive(wire("OPTIONS", "z9hG4bK-take-1"), SRC, 0.0)
    transmits, events = lay.take_output()
    assert len(events) == 1
    assert lay.take_output() == ([], [])
