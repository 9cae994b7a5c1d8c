"""Matching keys and Via handling (RFC 3261 §17.2.3, §18.2.1, RFC 3581)."""

from __future__ import annotations

from rvoip_sip_core import Request, parse_message
from rvoip_transaction_core import Peer, server_key, stamp_via
from rvoip_transaction_core.testing import simple_request


def request(via: str, method: str = "INVITE", **kw: object) -> Request:
    message = parse_message(simple_request(method, via=via, **kw).encode())  # type: ignore[arg-type]
    assert isinstance(message, Request)
    return message


def test_cookie_key_is_branch_sent_by_and_method_with_ack_folded_on_invite() -> None:
    invite = request("SIP/2.0/UDP Host.Example:5070;branch=z9hG4bK1")
    ack = request("SIP/2.0/UDP host.example:5070;branch=z9hG4bK1", "ACK")
    cancel = request("SIP/2.0/UDP host.example:5070;branch=z9hG4bK1", "CANCEL")
    key = server_key(invite, invite.top_via, "INVITE")
    assert key == server_key(ack, ack.top_via, "ACK")
    assert key != server_key(cancel, cancel.top_via, "CANCEL")
    other_port = request("SIP/2.0/UDP host.example:5071;branch=z9hG4bK1")
    assert key != server_key(other_port, other_port.top_via, "INVITE")


def test_rfc2543_key_uses_uri_from_tag_call_id_cseq_and_via() -> None:
    a = request("SIP/2.0/UDP h:5070;branch=1234")
    b = request("SIP/2.0/UDP h:5070;branch=1234", call_id="other")
    c = request("SIP/2.0/UDP h:5070", from_tag="zz")
    assert server_key(a, a.top_via, "INVITE") == server_key(a, a.top_via, "INVITE")
    assert server_key(a, a.top_via, "INVITE") != server_key(b, b.top_via, "INVITE")
    assert server_key(c, c.top_via, "INVITE")[0] == "2543"  # type: ignore[index]


def test_stamp_via_adds_received_only_when_needed_and_fills_rport() -> None:
    same = request("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKs")
    assert stamp_via(same, same.top_via, Peer("UDP", "10.0.0.1", 5060)) is same
    natted = stamp_via(same, same.top_via, Peer("UDP", "192.0.2.7", 40000))
    assert natted.top_via.received == "192.0.2.7"
    assert natted.top_via.rport is None
    flagged = request("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKs")
    stamped = stamp_via(flagged, flagged.top_via, Peer("UDP", "10.0.0.1", 5060))
    # RFC 3581 §4: with rport, received is added even when the host matches
    assert stamped.top_via.received == "10.0.0.1"
    assert stamped.top_via.rport == 5060
    assert stamped.top_via.branch == "z9hG4bKs"


def test_stamp_via_keeps_the_other_vias() -> None:
    two = request("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb")
    stamped = stamp_via(two, two.top_via, Peer("UDP", "192.0.2.1", 5060))
    assert [v.branch for v in stamped.vias] == ["z9hG4bKa", "z9hG4bKb"]
    assert stamped.vias[1].received is None
