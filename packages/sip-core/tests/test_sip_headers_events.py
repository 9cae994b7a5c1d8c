"""Tests of Event, Subscription-State, Replaces, Reason, Warning, User-Agent, Server."""

from __future__ import annotations

import pytest

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._headers import (
    Event,
    Reason,
    Replaces,
    Server,
    SubscriptionState,
    UserAgent,
    Warning,
)


def test_event() -> None:
    e = Event.parse("refer;id=93809824")
    assert (e.package, e.id) == ("refer", "93809824")
    assert str(e) == "refer;id=93809824"
    assert Event.parse("presence.winfo").id is None
    with pytest.raises(SipParseError):
        Event.parse("")


def test_subscription_state() -> None:
    s = SubscriptionState.parse("terminated;reason=Timeout;retry-after=30")
    assert (s.state, s.reason, s.retry_after, s.expires) == ("terminated", "timeout", 30, None)
    a = SubscriptionState.parse("Active ; expires = 600")
    assert (a.state, a.expires) == ("active", 600)
    for bad in ("active;expires=soon", "active;retry-after", ";x"):
        with pytest.raises(SipParseError):
            SubscriptionState.parse(bad)


def test_replaces() -> None:
    r = Replaces.parse("MDQ5MDJm.;to-tag=cf71d002;from-tag=1394930945;early-only")
    assert (r.call_id, r.to_tag, r.from_tag, r.early_only) == (
        "MDQ5MDJm.",
        "cf71d002",
        "1394930945",
        True,
    )
    s = Replaces.parse("98732@sip.example.com ; from-tag=r33th4x0r ; to-tag=ff87ff")
    assert (s.call_id, s.early_only) == ("98732@sip.example.com", False)
    assert Replaces.parse(str(s)) == s
    for bad in ("abc;to-tag=1", "abc;from-tag=1", "a b;to-tag=1;from-tag=2", ""):
        with pytest.raises(SipParseError):
            Replaces.parse(bad)


def test_reason() -> None:
    r = Reason.parse('SIP;cause=200;text="Call completed elsewhere"')
    assert (r.protocol, r.cause, r.text) == ("SIP", 200, "Call completed elsewhere")
    q = Reason.parse("Q.850 ; cause=16")
    assert (q.protocol, q.cause, q.text) == ("Q.850", 16, None)
    assert Reason.MULTI
    with pytest.raises(SipParseError):
        Reason.parse("SIP;cause=abc")


def test_warning() -> None:
    w = Warning.parse("307 isi.edu \"Session parameter 'foo' not understood\"")
    assert (w.code, w.agent, w.text) == (307, "isi.edu", "Session parameter 'foo' not understood")
    v = Warning.parse('399 [2001:db8::1]:5060 "say \\"x\\""')
    assert (v.agent, v.text) == ("[2001:db8::1]:5060", 'say "x"')
    assert str(v) == '399 [2001:db8::1]:5060 "say \\"x\\""'
    # RFC 4475 §3.1.2.5 scalarlg: more than 3 digits.
    for bad in ('1812 overflow.example.net "Some warning"', "301 host", '30 h "t"', '301 h "open'):
        with pytest.raises(SipParseError):
            Warning.parse(bad)


def test_product_headers() -> None:
    u = UserAgent.parse("Linphone/3.8.5 (belle-sip/1.4.1)")
    assert str(u) == "Linphone/3.8.5 (belle-sip/1.4.1)"
    assert Server.parse(" Asterisk PBX\r\n 18.2 ").value == "Asterisk PBX 18.2"
    for bad in ("", "  ", "a\x00b"):
        with pytest.raises(SipParseError):
            UserAgent.parse(bad)
