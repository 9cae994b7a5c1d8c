"""Tests of scalar and media-type headers (rvoip_sip_core._headers.simple)."""

from __future__ import annotations

import pytest

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._headers import (
    Accept,
    CallId,
    ContentDisposition,
    ContentLength,
    ContentType,
    CSeq,
    Expires,
    MaxForwards,
    MinExpires,
    MinSE,
    RAck,
    RetryAfter,
    RSeq,
    SessionExpires,
)


def test_call_id() -> None:
    assert CallId.parse("a84b4c76e66710@pc33.atlanta.example.com").value == (
        "a84b4c76e66710@pc33.atlanta.example.com"
    )
    # RFC 4475 §3.1.1.2 intmeth: unusual but legal word characters.
    odd = "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert str(CallId.parse(odd)) == odd
    assert CallId.parse("  padded  ").value == "padded"
    for bad in ("", "a b", "a@b@c", "a;b", "@x"):
        with pytest.raises(SipParseError):
            CallId.parse(bad)


def test_cseq() -> None:
    c = CSeq.parse("314159 INVITE")
    assert (c.seq, c.method) == (314159, "INVITE")
    assert str(c) == "314159 INVITE"
    # RFC 4475 §3.1.1.1: leading zeros and a folded line.
    assert CSeq.parse("0009\r\n  INVITE") == CSeq(9, "INVITE")
    assert CSeq.parse("2147483647 !interesting-Method0123456789_*+`.%indeed'~").seq == 2**31 - 1
    # RFC 3261 §8.1.1.5: below 2**31; RFC 4475 §3.1.2.4 scalar02.
    for bad in (
        "2147483648 INVITE",
        "36893488147419103232 REGISTER",
        "INVITE",
        "1",
        "-1 BYE",
        "1 IN VITE",
        "",
    ):
        with pytest.raises(SipParseError):
            CSeq.parse(bad)


def test_integer_headers() -> None:
    assert MaxForwards.parse("0068").value == 68  # RFC 4475 §3.1.1.1
    assert MaxForwards.parse("0") == MaxForwards(0)
    assert int(MaxForwards.parse(" 70 ")) == 70
    assert ContentLength.parse("150").value == 150
    assert Expires.parse("4294967295").value == 2**32 - 1
    assert MinExpires.parse("60") == MinExpires(60)
    assert RSeq.parse("988789").value == 988789
    assert str(Expires(3600)) == "3600"
    bad = [
        (MaxForwards, "256"),
        (MaxForwards, "300"),  # RFC 4475 §3.1.2.4
        (ContentLength, "-999"),  # §3.1.2.3 ncl
        (Expires, "1" + "0" * 100),
        (Expires, "4294967296"),
        (RSeq, "0"),
        (MaxForwards, "7O"),
        (ContentLength, ""),
        (MaxForwards, "²"),
    ]
    for cls, value in bad:
        with pytest.raises(SipParseError):
            cls.parse(value)


def test_rack() -> None:
    r = RAck.parse("776656 1 INVITE")
    assert (r.rseq, r.cseq, r.method) == (776656, 1, "INVITE")
    assert str(r) == "776656 1 INVITE"
    for bad in ("776656 INVITE", "0 1 INVITE", "a b c"):
        with pytest.raises(SipParseError):
            RAck.parse(bad)


def test_retry_after() -> None:
    r = RetryAfter.parse("18000;duration=3600")
    assert (r.seconds, r.comment, r.duration) == (18000, None, 3600)
    m = RetryAfter.parse("120 (I'm in a (long) meeting) ;duration=60")
    assert (m.seconds, m.comment, m.duration) == (120, "I'm in a (long) meeting", 60)
    assert str(m) == "120 (I'm in a (long) meeting);duration=60"
    # RFC 4475 §3.1.2.5 scalarlg: a huge Retry-After is out of range.
    for bad in ("949302838503028349304023988", "120 (unterminated", "x", "5;duration=x", "5 junk"):
        with pytest.raises(SipParseError):
            RetryAfter.parse(bad)


def test_session_timers() -> None:
    s = SessionExpires.parse("1800;refresher=UAC")
    assert (s.seconds, s.refresher) == (1800, "uac")
    assert SessionExpires.parse("90").refresher is None
    assert MinSE.parse("90") == MinSE(90)
    assert str(s) == "1800;refresher=UAC"
    with pytest.raises(SipParseError):
        SessionExpires.parse("soon")


def test_content_type() -> None:
    a = ContentType.parse("application/SDP")
    assert a == ContentType.parse("Application/sdp")
    assert a.media_type == "application/sdp"
    m = ContentType.parse(
        'multipart/signed;protocol="application/pkcs7-signature";micalg=sha1;boundary=boundary42'
    )
    assert m.param("boundary") == "boundary42"
    assert m.param("protocol") == '"application/pkcs7-signature"'
    assert ContentType.parse("text/plain ; charset = utf-8").param("charset") == "utf-8"
    assert str(ContentType("application", "sdp")) == "application/sdp"
    for bad in ("application", "application/", "/sdp", "a/b c", "a/b;"):
        with pytest.raises(SipParseError):
            ContentType.parse(bad)


def test_accept_and_disposition() -> None:
    assert Accept.parse("application/*;q=0.5") == Accept("application", "*", (("q", "0.5"),))
    assert Accept.MULTI
    assert not ContentType.MULTI
    d = ContentDisposition.parse("session;handling=optional")
    assert (d.disposition, d.handling) == ("session", "optional")
    assert str(ContentDisposition.parse("Render")) == "render"
