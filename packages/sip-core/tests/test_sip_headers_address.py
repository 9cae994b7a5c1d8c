"""Tests of name-addr headers: From, To, Contact, Route, ... (rvoip_sip_core._headers.address)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._headers import (
    Contact,
    From,
    PAssertedIdentity,
    RecordRoute,
    ReferredBy,
    ReferTo,
    Route,
    To,
    parse_name_addr,
)
from rvoip_sip_core._uri import AbsoluteUri, SipUri, TelUri


def test_quoted_display_and_tag() -> None:
    f = From.parse('"Alice" <sip:alice@atlanta.example.com>;tag=1928301774')
    assert f.display_name == "Alice"
    assert f.uri == SipUri.parse("sip:alice@atlanta.example.com")
    assert f.tag == "1928301774"
    assert str(f) == '"Alice" <sip:alice@atlanta.example.com>;tag=1928301774'


def test_escaped_quotes_and_folding() -> None:
    # RFC 4475 §3.1.1.1 wsinv: escaped quote and backslash, LWS and folds around ';' '='.
    f = From.parse(
        '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8'
    )
    assert f.display_name == 'J Rosenberg \\"'
    assert f.tag == "98asjd8"
    assert From.parse(str(f)) == f
    c = Contact.parse(
        '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n newvalue ;'
        "\r\n  secondparam ; q = 0.33"
    )
    assert c.display_name == 'Quoted string ""'
    assert c.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert c.q == pytest.approx(0.33)


def test_addr_spec_params_belong_to_header() -> None:
    # RFC 3261 §20.10 / RFC 4475 §3.3.12 cparam01.
    c = Contact.parse("sip:+19725552222@gw1.example.net;unknownparam")
    assert c.uri == SipUri.parse("sip:+19725552222@gw1.example.net")
    assert isinstance(c.uri, SipUri)
    assert c.uri.params == ()
    assert c.params == (("unknownparam", None),)
    # RFC 4475 §3.3.13 cparam02: inside <> it is a URI parameter.
    d = Contact.parse("<sip:+19725552222@gw1.example.net;unknownparam>")
    assert isinstance(d.uri, SipUri)
    assert d.uri.params == (("unknownparam", None),)
    assert d.params == ()
    t = To.parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")
    assert (t.display_name, t.tag) == (None, "1918181833n")


def test_uri_with_separators_in_brackets() -> None:
    # RFC 4475 §3.3.14 regescrt: an escaped header inside <>.
    c = Contact.parse("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>")
    assert isinstance(c.uri, SipUri)
    assert c.uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)
    r = ReferTo.parse("<sip:b@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>")
    assert isinstance(r.uri, SipUri)
    assert r.uri.headers[0][0] == "Replaces"
    u = To.parse("<sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>")
    assert isinstance(u.uri, SipUri)
    assert u.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"


def test_token_display_names() -> None:
    f = From.parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-.")
    assert f.display_name == "token1~` token2'+_ token3*%!.-"
    assert f.tag == "_token~1'+`*%!-."
    # RFC 4475 §3.1.1.6 lwsdisp: no LWS between the display name and '<'.
    g = From.parse("caller<sip:caller@example.com>;tag=323")
    assert (g.display_name, g.tag) == ("caller", "323")
    h = From.parse("Blue   Face<sip:3000@127.0.0.1>;tag=as5fd53de7")
    assert h.display_name == "Blue Face"
    # Raw non-ASCII octets in an unquoted name are tolerated (real UAs send them).
    assert From.parse("c\x8e test <sip:a@us2>;tag=k").display_name == "c\x8e test"
    assert From.parse('"呼叫方名字" <sip:57660000@172.17.2.2;tag=FLYTRWSZOS>').tag is None


def test_quoted_param_with_separators() -> None:
    c = Contact.parse(
        '<sip:gbi@82.216.250.246:49949;transport=tls>;+sip.instance="<urn:uuid:21cd>";expires=3600'
    )
    assert c.param("+sip.instance") == '"<urn:uuid:21cd>"'
    assert c.expires == 3600
    assert str(c) == (
        '<sip:gbi@82.216.250.246:49949;transport=tls>;+sip.instance="<urn:uuid:21cd>";expires=3600'
    )


def test_non_sip_uris() -> None:
    # RFC 4475 §3.3.4 unksm2: other schemes parse as AbsoluteUri.
    assert To.parse("isbn:2983792873").uri == AbsoluteUri("isbn", "2983792873")
    assert From.parse("<http://www.example.com>;tag=3234233").uri == AbsoluteUri(
        "http", "//www.example.com"
    )
    assert Contact.parse("<name:John_Smith>").uri == AbsoluteUri("name", "John_Smith")
    p = PAssertedIdentity.parse("tel:+14085264000")
    assert p.uri == TelUri("+14085264000")


def test_contact_wildcard_and_params() -> None:
    star = Contact.parse(" * ")
    assert star.is_wildcard
    assert star.uri is None
    assert str(star) == "*"
    assert Contact.wildcard() == star
    c = Contact.parse("<sip:a@h>;expires=280297596632815;q=0.7")
    assert c.expires == 2**32 - 1
    assert c.q == pytest.approx(0.7)
    assert Contact.parse("<sip:a@h>;q=2").q is None
    assert Contact.parse("<sip:a@h>;q=x;expires=-1").expires is None
    assert Contact.parse("<sip:a@h>").q is None


def test_routes_and_derive() -> None:
    r = Route.parse("<sip:services.example.com;lr;unknownwith=value;unknown-no-value>")
    assert isinstance(r.uri, SipUri)
    assert r.uri.lr
    assert RecordRoute.parse("<sip:p1.example.com;lr>").uri == SipUri.parse("sip:p1.example.com;lr")
    assert Route.MULTI
    assert RecordRoute.MULTI
    assert Contact.MULTI
    assert PAssertedIdentity.MULTI
    assert not (From.MULTI)
    assert not (To.MULTI)
    assert not (ReferTo.MULTI)
    assert not (ReferredBy.MULTI)
    t = To.parse("<sip:bob@biloxi.com>")
    t2 = t.with_tag("a6c85cf")
    assert (t.tag, t2.tag) == (None, "a6c85cf")
    assert str(t2) == "<sip:bob@biloxi.com>;tag=a6c85cf"
    assert t2.without_params("TAG") == t
    assert From(SipUri.parse("sip:a@h"), display_name='say "hi"') == From.parse(
        '"say \\"hi\\"" <sip:a@h>'
    )


def test_equality_is_per_class() -> None:
    assert From.parse("<sip:a@h>") != To.parse("<sip:a@h>")
    assert From.parse("<sip:%61@H>") == From.parse("<sip:a@h>")


@pytest.mark.parametrize(
    ("cls", "value"),
    [
        (To, '"Watson, Thomas" < sip:t.watson@example.org >'),  # RFC 4475 §3.1.2.14 badaspec
        (From, "Bell, Alexander <sip:a.g.bell@example.com>;tag=43"),  # §3.1.2.15 baddn
        (To, '"Mr. J. User <sip:j.user@example.com>'),  # §3.1.2.6 quotbal
        (Contact, "sip:user@example.com?Route=%3Csip:sip.example.com%3E"),  # §3.1.2.13 regbadct
        (Contact, '"Joe" <sip:joe@example.org>;;;;'),  # §3.1.2.1 badinv01
        (Contact, "<sip:twolmsted@24.183.120.253, sip:5060>"),
        (Contact, "sip: 172.17.2.2:5060"),
        (From, ""),
        (From, "<sip:a@h"),
        (From, "<>"),
        (From, '"x" sip:a@h'),
        (From, "<sip:a@h> junk"),
        (From, "<sip:a@h>;tag="),
        (From, "sip:a@h, sip:b@h"),
        (To, "<sip:2001:db8::10>"),
    ],
)
def test_malformed(cls: type[From], value: str) -> None:
    with pytest.raises(SipParseError):
        cls.parse(value)


def test_parse_name_addr_tuple() -> None:
    assert parse_name_addr("<sip:a@h>;x=1") == (None, SipUri.parse("sip:a@h"), (("x", "1"),))


_SPEC_CHARS = "abcAZ09-_.!~*'()&=+$,;:@%<>\" "


@given(
    st.sampled_from(["sip:", "sips:", "sip:u@", "sip:+1-2@", "sips:a.b@"]),
    st.text(alphabet="abz09-.", min_size=1, max_size=12),
    st.sampled_from(["", ":5060", ":0", ":65535", ":65536", ":99999", ":"]),
    st.text(alphabet=_SPEC_CHARS, max_size=20),
)
def test_addr_spec_fast_path_agrees_with_general_parser(
    prefix: str, host: str, port: str, tail: str
) -> None:
    # A leading SP skips the fast paths: both must accept the same values, equally.
    value = prefix + host + port + tail
    try:
        fast: object = parse_name_addr(value)
    except SipParseError:
        fast = SipParseError
    try:
        general: object = parse_name_addr(" " + value)
    except SipParseError:
        general = SipParseError
    assert fast == general
    if isinstance(fast, tuple):
        assert str(fast[1]) == str(general[1])  # type: ignore[index]


def test_sipp_contact_addr_spec() -> None:
    c = Contact.parse("sip:sipp@127.0.0.1:5061")
    assert c == Contact(SipUri("sip", "sipp", None, "127.0.0.1", 5061))
    assert Contact.parse("sip:a@h;expires=60;q=0.5").params == (("expires", "60"), ("q", "0.5"))
    with pytest.raises(SipParseError):
        Contact.parse("sip:a,b@h")
