"""Tests of SIP/SIPS/tel/absolute URIs (rvoip_sip_core._uri)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._uri import AbsoluteUri, SipUri, TelUri, parse_uri
from rvoip_sip_core.testing.header_strategies import sip_uris, uris


def test_parse_common_shape() -> None:
    u = SipUri.parse("sip:alice@atlanta.example.com:5060;transport=udp;lr")
    assert (u.scheme, u.user, u.password, u.host, u.port) == (
        "sip",
        "alice",
        None,
        "atlanta.example.com",
        5060,
    )
    assert u.params == (("transport", "udp"), ("lr", None))
    assert u.transport == "udp"
    assert u.lr
    assert u.maddr is None
    assert u.default_port == 5060
    assert str(u) == "sip:alice@atlanta.example.com:5060;transport=udp;lr"


def test_parse_full_shape() -> None:
    u = parse_uri(
        "sips:bob:secret@[2001:db8::1]:5061;maddr=239.255.255.1;ttl=15;user=phone?Subject=hi&x="
    )
    assert isinstance(u, SipUri)
    assert (u.scheme, u.user, u.password, u.host, u.port) == (
        "sips",
        "bob",
        "secret",
        "[2001:db8::1]",
        5061,
    )
    assert u.maddr == "239.255.255.1"
    assert u.ttl == 15
    assert u.user_param == "phone"
    assert u.headers == (("Subject", "hi"), ("x", ""))
    assert u.host_bare == "2001:db8::1"
    assert not u.lr


def test_rfc5118_port_ambiguity() -> None:
    # RFC 5118 §4.3: the trailing :5070 is inside the brackets — part of the address.
    a = SipUri.parse("sip:[2001:db8::10:5070]")
    assert (a.host, a.port) == ("[2001:db8::10:5070]", None)
    # RFC 5118 §4.4: IPv6 reference followed by a port.
    b = SipUri.parse("sip:[2001:db8::10]:5070")
    assert (b.host, b.port) == ("[2001:db8::10]", 5070)
    assert a != b


def test_rfc5118_ipv6_forms() -> None:
    # RFC 5118 §4.2: an IPv6 address without brackets is invalid.
    with pytest.raises(SipParseError):
        SipUri.parse("sip:2001:db8::10")
    # RFC 5118 §4.10: tolerate the 3-colon form; it is the same address.
    assert SipUri.parse("sip:[2001:db8:::192.0.2.1]") == SipUri.parse("sip:[2001:db8::192.0.2.1]")
    assert SipUri.parse("sip:[2001:DB8::1]") == SipUri.parse("sip:[2001:db8:0::1]")
    assert SipUri.parse("sip:user@[::ffff:192.0.2.10]").host == "[::ffff:192.0.2.10]"


@pytest.mark.parametrize(
    "text",
    [
        "sip:sips%3Auser%40example.com@example.net",
        "sip:%75se%72@example.com",
        "sip:I%20have%20spaces@example.net",
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31",
        "sip:null-%00-null@example.com",
        "sip:user;par=u%40example.net@example.com",
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "sip:services.example.com;lr;unknownwith=value;unknown-no-value",
        "sip:[2001:db8::9:1]:5060;received=[2001:db8::9:255]",
        "tel:+1-201-555-0123;ext=1234",
        "tel:7042;phone-context=example.com",
        "http://www.example.com",
        "isbn:2983792873",
        "nobodyKnowsThisScheme:totallyopaquecontent",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ],
)
def test_byte_identical_round_trip(text: str) -> None:
    # RFC 4475 §3.1.1.2/3/4/9, §3.3.14: escapes and odd characters are kept as written.
    uri = parse_uri(text)
    assert str(uri) == text
    assert parse_uri(str(uri)) == uri


def test_escapes_unescaped_for_comparison() -> None:
    # RFC 4475 §3.1.1.3: %75se%72 is "user"; value%25%34%31 decodes once to "value%41".
    assert parse_uri("sip:%75se%72@example.com") == parse_uri("sip:user@example.com")
    a = parse_uri("sip:c@h;name=v%61lue%25%34%31")
    assert a == parse_uri("sip:c@h;name=value%2541")
    assert a != parse_uri("sip:c@h;name=valueA")
    # RFC 4475 §3.1.1.4: %00 is a distinct user, not a truncation.
    assert parse_uri("sip:%00@h") != parse_uri("sip:%00%00@h")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # RFC 3261 §19.1.4: equivalent URIs.
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
    ],
)
def test_rfc3261_equivalent(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua == ub
    assert hash(ua) == hash(ub)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # RFC 3261 §19.1.4: non-equivalent URIs.
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:a@h", "sips:a@h"),
        ("sip:a@h;newparam=5", "sip:a@h;newparam=6"),
        ("sip:a@h;maddr=1.2.3.4", "sip:a@h"),
        ("sip:a:pw@h", "sip:a:PW@h"),
    ],
)
def test_rfc3261_not_equivalent(a: str, b: str) -> None:
    assert parse_uri(a) != parse_uri(b)


def test_tel_uri() -> None:
    t = parse_uri("tel:+1-201-555-0123;ext=12")
    assert isinstance(t, TelUri)
    assert t.number == "+1-201-555-0123"
    assert t.is_global
    assert t.params == (("ext", "12"),)
    # RFC 3966 §4: visual separators are ignored, parameter order does not matter.
    assert t == parse_uri("tel:+1.201.555.0123;EXT=12")
    assert parse_uri("tel:1;a=1;b=2") == parse_uri("tel:1;b=2;a=1")
    assert t != parse_uri("tel:+1-201-555-0124;ext=12")


def test_absolute_uri() -> None:
    u = parse_uri("HTTP://www.example.com/x")
    assert u == AbsoluteUri("http", "//www.example.com/x")
    assert u.scheme == "HTTP"
    assert str(u) == "HTTP://www.example.com/x"
    assert hash(u) == hash(AbsoluteUri("http", "//www.example.com/x"))
    assert u != AbsoluteUri("http", "//www.example.com/X")


def test_with_and_without_params() -> None:
    u = SipUri.parse("sip:a@h;transport=udp")
    v = u.with_params(("lr", None), transport="tcp")
    assert v.params == (("lr", None), ("transport", "tcp"))
    assert u.params == (("transport", "udp"),)
    assert v.without_params("LR").params == (("transport", "tcp"),)
    assert v.has_param("Lr")
    assert v.param("transport") == "tcp"


def test_built_uri_escapes_on_output() -> None:
    u = SipUri(user="I have spaces", host="example.net", params=(("a b", "c;d"),))
    assert str(u) == "sip:I%20have%20spaces@example.net;a%20b=c%3Bd"
    assert parse_uri(str(u)) == u
    assert str(SipUri(user="100%", host="h")) == "sip:100%25@h"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@h",
        "sip:a b@h",
        "sip:a@h;",
        "sip:a@h;=1",
        "sip:a@h;a=",
        "sip:h:99999",
        "sip:h:",
        "sip:h:5o60",
        "sip:[::1",
        "sip:[zz::1]",
        "sip:[1:2]",
        "sip:h?x",
        "sip:a@h;x=%4",
        "sip:a%2@h",
        "sip:-h-",
        "sip:h junk",
        "tel:",
        "tel:+1 555",
        "tel:1;=x",
        ":nothing",
        "1abc:x",
        "foo:",
        "foo:a b",
        "",
        "sip:a@h\r\n",
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


@given(sip_uris())
def test_sip_uri_round_trip(uri: SipUri) -> None:
    again = SipUri.parse(str(uri))
    assert again == uri
    assert hash(again) == hash(uri)
    assert str(again) == str(uri)


@given(uris())
def test_any_uri_round_trip(uri: object) -> None:
    assert parse_uri(str(uri)) == uri


@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    try:
        parse_uri(text)
    except SipParseError:
        pass
    for prefix in ("sip:", "sips:", "tel:", "sip:a@"):
        try:
            uri = parse_uri(prefix + text)
        except SipParseError:
            continue
        assert parse_uri(str(uri)) == uri


def test_text_is_built_once_and_derived_uris_have_their_own() -> None:
    uri = SipUri.parse("sip:alice@example.com:5070;transport=tcp")
    text = str(uri)
    assert str(uri) is text
    assert text == "sip:alice@example.com:5070;transport=tcp"
    assert str(uri.with_params(transport="udp")) == "sip:alice@example.com:5070;transport=udp"
    assert str(uri.without_params("transport")) == "sip:alice@example.com:5070"
    assert str(uri) == text
