"""Tests of the Via header (rvoip_sip_core._headers.via)."""

from __future__ import annotations

import pytest

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._headers import Via


def test_common_shape() -> None:
    v = Via.parse("SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport")
    assert (v.transport, v.host, v.port) == ("UDP", "pc33.atlanta.example.com", 5060)
    assert v.branch == "z9hG4bK776asdhds"
    assert v.rport is True
    assert v.received is None
    assert v.sent_by == ("pc33.atlanta.example.com", 5060)
    assert v.protocol == "SIP/2.0"
    assert str(v) == "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport"


def test_received_rport_maddr_ttl() -> None:
    v = Via.parse("SIP/2.0/udp 10.0.0.1;received=192.0.2.1;rport=5062;maddr=224.2.0.1;ttl=16")
    assert v.transport == "UDP"
    assert v.received == "192.0.2.1"
    assert v.rport == 5062
    assert v.maddr == "224.2.0.1"
    assert v.ttl == 16
    assert v.port is None
    assert v.sent_by == ("10.0.0.1", None)


def test_lws_everywhere() -> None:
    # RFC 4475 §3.1.1.1 wsinv: LWS and line folds around '/', ':' and ';'.
    v = Via.parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw")
    assert (v.transport, v.host, v.branch) == ("UDP", "192.0.2.2", "390skdjuw")
    w = Via.parse("SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239")
    assert (w.host, w.branch) == ("192.168.255.111", "z9hG4bK30239")
    x = Via.parse("SIP/2.0/TCP host.example.com : 5070 ;branch=z9hG4bKx")
    assert x.port == 5070
    y = Via.parse(
        "SIP/2.0/UDP 172.17.3.2:5060; branch=z9hG4bKd9a5; rport=5060; received=172.17.3.2"
    )
    assert (y.rport, y.received) == (5060, "172.17.3.2")


def test_ipv6() -> None:
    # RFC 5118 §4.5: received with and without brackets are both accepted.
    a = Via.parse("SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKas3;received=[2001:db8::9:255]")
    assert (a.host, a.port, a.received) == ("[2001:db8::9:1]", 5060, "[2001:db8::9:255]")
    assert a.host_bare == "2001:db8::9:1"
    b = Via.parse("SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3;received=2001:db8::9:255")
    assert (b.port, b.received) == (None, "2001:db8::9:255")
    c = Via.parse("SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19")
    assert c.host == "[::ffff:192.0.2.10]"


def test_transports_and_protocol() -> None:
    # RFC 4475 §3.1.1.10: an unknown extension transport is still a Via.
    assert Via.parse("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en").transport == "UNKNOWN"
    assert Via.parse("SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKx").transport == "WSS"
    assert Via.parse("sip/2.0/SCTP h;branch=z9hG4bKx").protocol == "SIP/2.0"


def test_rfc2543_no_branch_and_bare_cookie() -> None:
    # RFC 4475 §3.4.1 inv2543 (no branch) and §3.2.1 badbranch (bare magic cookie).
    assert Via.parse("SIP/2.0/UDP 192.0.2.15").branch is None
    assert Via.parse("SIP/2.0/UDP 192.0.2.15;branch=z9hG4bK").branch == "z9hG4bK"


def test_derive() -> None:
    v = Via("UDP", "10.0.0.1", 5060, (("branch", "z9hG4bKabc"), ("rport", None)))
    w = v.with_params(received="192.0.2.7", rport="40000")
    assert str(w) == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;received=192.0.2.7;rport=40000"
    assert w.rport == 40000
    assert v.rport is True
    assert Via.parse(str(w)) == w


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP 192.0.2.15;;",  # RFC 4475 §3.1.2.1 badinv01
        "SIP/2.0/UDP 192.0.2.15;",
        "SIP/2.0 192.0.2.15",
        "SIP/2.0/UDP 83.70.206.42:5060port;branch=z9hG4bK77",
        "SIP/2.0/UDP h:70000",
        "SIP/2.0/UDP h;ttl=256",
        "SIP/2.0/UDP h;ttl",
        "SIP/2.0/UDP h;rport=abc",
        "SIP/2.0/UDP h;branch",
        "SIP/2.0/UDP h;received",
        "SIP/2.0/UDP 2001:db8::1;branch=x",
        "SIP/2.0/UDP [2001:db8::1;branch=x",
        "SIP/2.0/UDP [zz]:5060",
        "SIP/2.0/UDP h-;branch=x",
        "SIP/2.0/UDP h junk",
    ],
)
def test_malformed(value: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(value)
