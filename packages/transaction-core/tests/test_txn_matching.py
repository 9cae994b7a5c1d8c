"""Matching keys and Via handling (RFC 3261 §17.2.3, §18.2.1, RFC 3581)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import Request, Response, make_response, parse_message
from rvoip_transaction_core import Peer, response_target, server_key, stamp_via, trying_bytes
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


_COPIED = ("via", "from", "to", "call-id", "cseq", "timestamp", "content-length")


@given(
    vias=st.lists(
        st.sampled_from(
            [
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa",
                "SIP/2.0/TCP proxy.example;branch=z9hG4bKb;received=192.0.2.1",
                "SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKc;rport=5070",
                "SIP/2.0/UDP a.example;branch=z9hG4bKd , SIP/2.0/UDP b.example;branch=z9hG4bKe",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
    names=st.fixed_dictionaries(
        {
            "via": st.sampled_from(["Via", "v", "VIA"]),
            "from": st.sampled_from(["From", "f"]),
            "to": st.sampled_from(["To", "t", "to"]),
            "call-id": st.sampled_from(["Call-ID", "i", "call-id"]),
            "cseq": st.sampled_from(["CSeq", "CSEQ"]),
        }
    ),
    timestamp=st.sampled_from([None, "54", "54.2 0.3"]),
    to_tag=st.sampled_from(["", ";tag=abc"]),
)
def test_trying_bytes_has_the_lines_make_response_copies(
    vias: list[str], names: dict[str, str], timestamp: str | None, to_tag: str
) -> None:
    lines = [f"{names['via']}: {via}" for via in vias] + [
        f"{names['from']}: <sip:alice@example.com>;tag=f1",
        f"{names['to']}: <sip:bob@example.com>{to_tag}",
        f"{names['call-id']}: c1@example.com",
        f"{names['cseq']}: 7 INVITE",
        "Max-Forwards: 70",
        "Contact: <sip:alice@10.0.0.1>",
    ]
    if timestamp is not None:
        lines.append(f"Timestamp: {timestamp}")
    lines.append("Content-Length: 0")
    wire = "INVITE sip:bob@example.com SIP/2.0\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    invite = parse_message(wire.encode())
    assert isinstance(invite, Request)
    # RFC 3261 §8.2.6: the 100 built as bytes says what make_response's 100 says
    ours = parse_message(trying_bytes(invite))
    reference = parse_message(make_response(invite, 100).encode())
    assert isinstance(ours, Response)
    assert isinstance(reference, Response)
    assert (ours.status, ours.reason, ours.body) == (100, "Trying", b"")
    assert len(ours.headers) == len(reference.headers)
    for key in _COPIED:
        assert ours.headers.get_all(key) == reference.headers.get_all(key)


def test_response_target_is_the_source_itself_when_it_is_the_answer() -> None:
    plain = request("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKr").top_via
    rport = request("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKr;rport").top_via
    udp = Peer("UDP", "10.0.0.1", 5070)
    assert response_target(plain, udp) is udp  # sent-by port == source port: no new Peer
    natted = Peer("UDP", "192.0.2.9", 40000)
    assert response_target(rport, natted) is natted  # RFC 3581 §4: the source port
    assert response_target(plain, natted) == Peer("UDP", "192.0.2.9", 5070)
    # a connection id on an unreliable source is not carried into the answer's target
    tagged = Peer("UDP", "192.0.2.9", 40000, connection=3)
    assert response_target(rport, tagged) == Peer("UDP", "192.0.2.9", 40000)
    tcp = Peer("TCP", "10.0.0.1", 5070, connection=4)
    assert response_target(plain, tcp) is tcp  # RFC 3261 §18.2.2: the same connection
    no_port = request("SIP/2.0/TLS host.example;branch=z9hG4bKr").top_via
    assert response_target(no_port, Peer("TLS", "10.0.0.1", 50000, 5)) == Peer(
        "TLS", "10.0.0.1", 5061, 5
    )
