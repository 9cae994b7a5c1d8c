"""parse_message: lazy parse rules, RFC 3261 §18.3 datagram framing, errors, validate."""

from __future__ import annotations

import pytest

from rvoip_sip_core import (
    AbsoluteUri,
    Request,
    Response,
    SipParseError,
    SipUri,
    parse_message,
    validate,
)

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"

HEAD = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@example.com>\r\n"
    "From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.1>\r\n"
    "Content-Type: application/sdp\r\n"
)


def invite(body: bytes = SDP, length: int | None = None, extra: str = "") -> bytes:
    n = len(body) if length is None else length
    return (HEAD + extra + f"Content-Length: {n}\r\n\r\n").encode() + body


def expect_error(data: bytes, status: int = 400, *, strict: bool = False) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(data, strict=strict)
    assert info.value.status == status, info.value.reason
    return info.value


def test_lazy_parse_of_a_typical_invite() -> None:
    msg = parse_message(invite())
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.uri_text == "sip:bob@example.com"
    assert isinstance(msg.uri, SipUri)
    assert msg.uri.host == "example.com"
    assert msg.body == SDP
    assert msg.call_id == "a84b4c76e66710@pc33.example.com"
    assert msg.cseq.seq == 314159
    assert msg.top_via.branch == "z9hG4bK776asdhds"
    assert msg.from_.tag == "1928301774"
    assert msg.to.tag is None
    assert msg.max_forwards == 70
    assert len(msg.contacts) == 1
    assert msg.encode() == invite()


def test_response_start_line_forms() -> None:
    tail = b"\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nContent-Length: 0\r\n\r\n"
    ok = parse_message(b"SIP/2.0 200 OK" + tail)
    assert isinstance(ok, Response)
    assert (ok.status, ok.reason) == (200, "OK")
    assert parse_message(b"SIP/2.0 404 Not Found Here" + tail).reason == "Not Found Here"  # type: ignore[union-attr]
    empty = parse_message(b"SIP/2.0 401 " + tail)
    assert isinstance(empty, Response)
    assert empty.reason == ""
    assert parse_message(b"SIP/2.0 401" + tail).reason == ""  # type: ignore[union-attr]
    assert parse_message(b"SIP/2.0 200 OK" + tail).encode() == b"SIP/2.0 200 OK" + tail


@pytest.mark.parametrize(
    "start",
    [
        b"SIP/2.0 2000 OK",
        b"SIP/2.0 099 Low",
        b"SIP/2.0 700 High",
        b"SIP/2.0 4294967301 Big",
        b"SIP/2.0  200 OK",
        b"SIP/2.0 2x0 OK",
    ],
)
def test_bad_status_lines(start: bytes) -> None:
    err = expect_error(start + b"\r\nVia: SIP/2.0/UDP h\r\nCall-ID: c1\r\n\r\n")
    assert err.is_request is False
    assert err.recovered["call-id"] == "c1"


@pytest.mark.parametrize(
    "start",
    [
        b"INVITE  sip:a@b SIP/2.0",  # RFC 4475 lwsstart: extra SP
        b"INVITE sip:a@b SIP/2.0 ",  # trailing SP (trws)
        b"INVITE <sip:a@b> SIP/2.0",  # RFC 4475 ltgtruri
        b"INVITE sip:a@b",
        b"IN[VITE sip:a@b SIP/2.0",
        b"INVITE nocolon SIP/2.0",
        b"INVITE sip:a@b SIP/2.0/x",
        b"garbage",
    ],
)
def test_bad_request_lines(start: bytes) -> None:
    err = expect_error(start + b"\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\r\nCSeq: 1 INVITE\r\n\r\n")
    assert err.recovered == {"via": "SIP/2.0/UDP h;branch=z9hG4bKb", "cseq": "1 INVITE"}


def test_unknown_version_is_505() -> None:
    err = expect_error(b"OPTIONS sip:a@b SIP/7.0\r\nCall-ID: x\r\n\r\n", 505)
    assert err.is_request is True
    assert err.recovered == {"call-id": "x"}
    expect_error(b"SIP/3.0 200 OK\r\n\r\n", 505)


def test_version_is_case_insensitive() -> None:
    msg = parse_message(b"OPTIONS sip:a@b sip/2.0\r\nContent-Length: 0\r\n\r\n")
    assert msg.version == "sip/2.0"


def test_header_lines_need_a_token_name_and_colon() -> None:
    expect_error(invite(extra="NoColonHere\r\n"))
    expect_error(invite(extra="Bad Name: x\r\n"))
    expect_error(invite(extra=": empty name\r\n"))
    # the memo of known names must not accept "From" out of "Fromx" without a colon
    expect_error(invite(extra="Fromx\r\n"))
    expect_error(invite(extra="From\r\n"))  # a known name alone, without ':'


def test_name_lookup_is_case_insensitive_and_compact() -> None:
    data = (
        b"REGISTER sip:reg.example.com SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bKc\r\n"
        b"f: <sip:a@example.com>;tag=9\r\nt: <sip:a@example.com>\r\ni: cid-1\r\n"
        b"CSEQ: 3 REGISTER\r\nm: <sip:a@192.0.2.2>;expires=60\r\nl: 0\r\n\r\n"
    )
    msg = parse_message(data, strict=True)
    assert msg.call_id == "cid-1"
    assert msg.headers.get("Call-ID") == "cid-1"
    assert msg.headers.get("CALL-id") == "cid-1"
    assert "Content-Length" in msg.headers
    assert msg.contacts[0].expires == 60
    assert msg.encode() == data


def test_continuation_of_the_start_line_is_rejected() -> None:
    data = b"OPTIONS sip:a@b SIP/2.0\r\n  folded: x\r\nContent-Length: 0\r\n\r\n"
    expect_error(data)


def test_folding_is_unfolded_with_one_space() -> None:
    data = invite(extra="Subject: first\r\n  second\r\n\tthird\r\n")
    msg = parse_message(data)
    assert msg.headers.get("subject") == "first second third"
    again = parse_message(msg.encode())
    assert again == msg
    assert again.headers.get("subject") == "first second third"


def test_bare_lf_message() -> None:
    lf_body = SDP.replace(b"\r\n", b"\n")
    data = invite(lf_body).replace(b"\r\n", b"\n")
    msg = parse_message(data)
    assert msg.cseq.seq == 314159
    assert msg.body == lf_body
    assert parse_message(msg.encode()) == msg  # re-serialized with CRLF


def test_bare_lf_head_with_crlfcrlf_in_the_body() -> None:
    body = b"a\r\n\r\nb"
    data = b"MESSAGE sip:a@b SIP/2.0\nCall-ID: x\nContent-Length: 6\n\n" + body
    msg = parse_message(data)
    assert msg.body == body
    assert msg.headers.get("call-id") == "x"


def test_cr_cr_lf_line_ends_are_tolerated() -> None:
    data = b"OPTIONS sip:a@b SIP/2.0\r\r\nCall-ID: x\r\r\nContent-Length: 0\r\r\n\r\n"
    assert parse_message(data).call_id == "x"


def test_bare_cr_in_head_is_rejected() -> None:
    expect_error(invite(extra="Subject: a\rb\r\n"))


def test_leading_crlf_is_ignored() -> None:
    assert parse_message(b"\r\n\r\n" + invite()).body == SDP


def test_datagram_without_empty_line() -> None:
    msg = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n")
    assert msg.body == b""
    assert msg.call_id == "x"


def test_content_length_datagram_rules() -> None:
    # RFC 3261 §18.3: longer body truncated, shorter → 400, none → rest of datagram.
    assert parse_message(invite(SDP + b"junk", length=len(SDP))).body == SDP
    err = expect_error(invite(length=len(SDP) + 5))
    assert err.recovered["call-id"] == "a84b4c76e66710@pc33.example.com"
    assert parse_message(invite(length=len(SDP) + 5), allow_short_body=True).body == SDP
    no_length = (HEAD + "\r\n").encode() + SDP
    assert parse_message(no_length).body == SDP
    for bad in ("-1", "abc", "1 2", "", "١٢", "9" * 40):
        expect_error(invite(extra=f"Content-Length: {bad}\r\n"))
    expect_error(invite(extra="l: 3\r\n"))  # conflicting duplicate
    assert parse_message(invite(extra=f"l: {len(SDP)}\r\n")).body == SDP  # agreeing duplicate


def test_oversize_is_413() -> None:
    err = expect_error(invite(body=b"x" * 300_000), 413)
    assert err.is_request is True
    assert err.recovered["cseq"] == "314159 INVITE"
    with pytest.raises(SipParseError) as info:
        parse_message(invite(), max_size=100)
    assert info.value.status == 413


def test_utf8_and_raw_octets_survive() -> None:
    data = invite(extra='Subject: "caf\u00e9"\r\nX-Raw: \x00\x07\r\n')
    msg = parse_message(data)
    assert msg.headers.get("subject") == '"caf\u00e9"'
    assert msg.encode() == data
    weird = invite().replace(b"Bob <", b"\x8e\xff <")
    assert parse_message(weird).encode() == weird


def test_missing_mandatory_header_raises_on_access() -> None:
    data = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKd\r\nCSeq: 1 INVITE\r\n\r\n"
    msg = parse_message(data)
    with pytest.raises(SipParseError) as info:
        _ = msg.from_
    assert info.value.recovered["cseq"] == "1 INVITE"
    with pytest.raises(SipParseError):
        _ = msg.call_id
    err = expect_error(data, strict=True)
    assert "missing" in err.reason


def test_validate_cseq_rules() -> None:
    expect_error(invite().replace(b"CSeq: 314159 INVITE", b"CSeq: 1 OPTIONS"), strict=True)
    expect_error(invite().replace(b"CSeq: 314159", b"CSeq: 2147483648"), strict=True)
    assert parse_message(invite().replace(b"CSeq: 314159", b"CSeq: 2147483647"), strict=True)


def test_validate_conflicting_single_headers() -> None:
    expect_error(invite(extra="Call-ID: other\r\n"), strict=True)
    assert parse_message(invite(extra="Call-ID: a84b4c76e66710@pc33.example.com\r\n"), strict=True)
    expect_error(invite(extra="Max-Forwards: 300\r\n"), strict=True)


def test_validate_request_uri() -> None:
    msg = parse_message(invite().replace(b"sip:bob@example.com SIP", b"foo:bar SIP"), strict=True)
    assert isinstance(msg.uri, AbsoluteUri)  # type: ignore[union-attr]
    expect_error(invite().replace(b"sip:bob@example.com SIP", b"sip:bob@ SIP"), strict=True)
    expect_error(
        invite().replace(b"sip:bob@example.com SIP", b"sip:bob@example.com?Route=x SIP"),
        strict=True,
    )
    lazy = parse_message(invite().replace(b"sip:bob@example.com SIP", b"sip:bob@ SIP"))
    with pytest.raises(SipParseError):
        validate(lazy)
