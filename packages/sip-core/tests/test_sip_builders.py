"""Builders: make_request, make_response (RFC 3261 §8.2.6), identifiers, reasons."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import (
    REASON_PHRASES,
    SYSTEM_RANDOM,
    Request,
    SipUri,
    SipUsageError,
    default_reason,
    make_cnonce,
    make_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
)
from rvoip_sip_core._headers import To
from rvoip_sip_core._uri import Uri
from rvoip_sip_core.testing.header_strategies import display_names, generic_params, uris

RFC3261_CODES = [
    100, 180, 181, 182, 183, 200, 300, 301, 302, 305, 380, 400, 401, 402, 403, 404, 405,
    406, 407, 408, 410, 413, 414, 415, 416, 420, 421, 423, 480, 481, 482, 483, 484, 485,
    486, 487, 488, 491, 493, 500, 501, 502, 503, 504, 505, 513, 600, 603, 604, 606,
]  # fmt: skip


def _invite() -> Request:
    rng = random.Random(1)
    return make_request(
        "INVITE",
        "sip:bob@example.com",
        from_=f"Alice <sip:alice@example.com>;tag={new_tag(rng)}",
        to="Bob <sip:bob@example.com>",
        call_id=new_call_id(rng, "pc33.example.com"),
        cseq=1,
        via=f"SIP/2.0/UDP 192.0.2.1:5060;branch={new_branch(rng)}",
        contact="<sip:alice@192.0.2.1>",
        headers=[("Subject", "hi")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )


def test_make_request_orders_headers_and_sets_length() -> None:
    req = make_request(
        "OPTIONS",
        SipUri.parse("sip:bob@example.com"),
        from_="<sip:a@example.com>;tag=1",
        to="<sip:bob@example.com>",
        call_id="c1@h",
        cseq=7,
        via="SIP/2.0/UDP h;branch=z9hG4bKx",
    )
    names = [name for name, _ in req.headers]
    assert names == ["Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "Content-Length"]
    assert req.cseq.seq == 7
    assert req.cseq.method == "OPTIONS"
    assert req.max_forwards == 70
    assert req.headers.get("content-length") == "0"
    assert parse_message(req.encode(), strict=True) == req


def test_make_request_with_body_round_trips() -> None:
    req = _invite()
    again = parse_message(bytes(req), strict=True)
    assert again == req
    assert again.body == b"v=0\r\n"
    assert again.content_type is not None
    assert again.headers.get("Subject") == "hi"


def test_make_request_refuses_bad_input() -> None:
    kwargs: dict[str, object] = {
        "from_": "<sip:a@h>;tag=1",
        "to": "<sip:b@h>",
        "call_id": "x",
        "via": None,
    }
    with pytest.raises(SipUsageError):
        make_request("IN VITE", "sip:b@h", cseq=1, **kwargs)
    with pytest.raises(SipUsageError):
        make_request("INVITE", "sip:b@h", cseq=2**31, **kwargs)
    with pytest.raises(SipUsageError):
        make_request(
            "INVITE",
            "sip:b@h",
            cseq=1,
            headers=[("X-A", "a\r\nInjected: 1")],
            **kwargs,  # type: ignore[arg-type]
        )


def test_make_response_copies_8_2_6_headers_and_adds_tag() -> None:
    data = (
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1\r\n"
        b"Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bK2, SIP/2.0/UDP a.example.com;branch=z3\r\n"
        b"Max-Forwards: 69\r\nf: <sip:a@example.com>;tag=aa\r\nTo: <sip:bob@example.com>\r\n"
        b"Call-ID: cid\r\nCSeq: 4 INVITE\r\nTimestamp: 54\r\nContent-Length: 0\r\n\r\n"
    )
    req = parse_message(data)
    assert isinstance(req, Request)
    ok = make_response(req, 200, to_tag="t1", body=b"x", content_type="text/plain")
    assert ok.reason == "OK"
    assert ok.headers.get_all("via") == [
        "SIP/2.0/UDP p1.example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP p2.example.com;branch=z9hG4bK2, SIP/2.0/UDP a.example.com;branch=z3",
    ]
    assert [v.branch for v in ok.vias] == ["z9hG4bK1", "z9hG4bK2", "z3"]
    assert ok.to.tag == "t1"
    assert ok.from_.tag == "aa"
    assert ok.call_id == "cid"
    assert ok.cseq.seq == 4
    assert "Timestamp" not in ok.headers  # only a 100 copies Timestamp
    assert parse_message(ok.encode(), strict=True) == ok
    trying = make_response(req, 100)
    assert trying.reason == "Trying"
    assert trying.to.tag is None
    assert trying.headers.get("Timestamp") == "54"


def test_make_response_keeps_existing_to_tag() -> None:
    req = parse_message(
        b"BYE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\r\nFrom: <sip:b@h>;tag=1\r\n"
        b"To: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    resp = make_response(req, 200, to_tag="other")
    assert resp.to.tag == "2"
    assert resp.reason == "OK"
    assert make_response(req, 486, "Busy Now").reason == "Busy Now"


def test_identifiers_come_from_the_injected_rng() -> None:
    a, b = random.Random(42), random.Random(42)
    ids_a = [new_branch(a), new_tag(a), new_call_id(a, "host.example")]
    ids_b = [new_branch(b), new_tag(b), new_call_id(b, "host.example")]
    assert ids_a == ids_b
    assert ids_a[0].startswith("z9hG4bK")
    assert len(ids_a[1]) == 16
    assert ids_a[2].endswith("@host.example")
    assert new_branch(random.Random(1)) != new_branch(random.Random(2))


@pytest.mark.parametrize("code", [*RFC3261_CODES, 199, 202, 204, 422, 489, 494, 580, 607])
def test_default_reason_covers_known_codes(code: int) -> None:
    assert code in REASON_PHRASES
    assert default_reason(code) == REASON_PHRASES[code]


def test_default_reason_unknown_and_invalid() -> None:
    assert default_reason(299) == "OK"
    assert default_reason(499) == "Client Error"
    with pytest.raises(SipUsageError):
        default_reason(99)
    with pytest.raises(SipUsageError):
        default_reason(700)


_ODD_SPACING = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via :  SIP/2.0/UDP p1.example.com;branch=z9hG4bK1 \r\n"
    b"From:<sip:a@example.com>;tag=aa\r\nt:  Bob <sip:bob@example.com>  \r\n"
    b"Call-ID: cid\r\nCSeq: 4 INVITE\r\nContact: sip:a@10.0.0.1:5070\r\n"
    b"Content-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize("read_first", [False, True])
def test_make_response_copies_lines_as_received_and_shares_typed_values(
    read_first: bool,
) -> None:
    req = parse_message(_ODD_SPACING)
    assert isinstance(req, Request)
    if read_first:  # typed values already cached on the request are reused
        assert (req.top_via.branch, req.from_.tag, req.to.tag, req.cseq.seq) == (
            "z9hG4bK1",
            "aa",
            None,
            4,
        )
    for to_tag, status in (("t1", 200), (None, 100)):
        resp = make_response(req, status, to_tag=to_tag, headers=[("Server", "x")])
        wire = resp.encode()
        # RFC 3261 §8.2.6.2: Via/From/Call-ID/CSeq lines copied byte for byte.
        assert b"\r\nVia :  SIP/2.0/UDP p1.example.com;branch=z9hG4bK1 \r\n" in wire
        assert b"\r\nFrom:<sip:a@example.com>;tag=aa\r\n" in wire
        again = parse_message(wire, strict=True)
        assert again == resp
        for typed in (resp, again):
            assert typed.to == again.to
            assert typed.to.tag == to_tag
            assert typed.from_ == req.from_
            assert typed.vias == req.vias
            assert typed.cseq == req.cseq
        if to_tag is None:
            assert b"\r\nt:  Bob <sip:bob@example.com>  \r\n" in wire
        else:
            assert f"\r\nt: Bob <sip:bob@example.com>;tag={to_tag}\r\n".encode() in wire


def test_make_response_refuses_a_tag_with_cr_or_lf() -> None:
    with pytest.raises(SipUsageError):
        make_response(_invite(), 200, to_tag="a\r\nX: 1")


_HEADER_NAMES = st.sampled_from(["Server", "X-Y", "Contact", "RSeq", "bad name", "Allow:"])
_HEADER_VALUES = st.one_of(
    st.text(st.sampled_from("ab ,;=\t\r\n<>:1"), max_size=12), st.integers(0, 99)
)


@given(st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=6))
def test_extra_header_lines_are_checked_the_same_with_the_line_memo(
    extra: list[tuple[str, object]],
) -> None:
    """Extra lines are memoised per (name, text): the memo changes no line and no refusal.

    The same checks run for a line seen before (a CR/LF value or a non-token name is
    refused every time, never stored), and a repeated line is written as the first was.
    """
    req = _invite()
    for _ in range(2):  # the second round hits the memo
        try:
            resp = make_response(req, 200, to_tag="t", headers=extra)
        except SipUsageError:
            bad = [
                (n, v)
                for n, v in extra
                if n in ("bad name", "Allow:") or "\r" in str(v) or "\n" in str(v)
            ]
            assert bad
            continue
        expected = [(n, str(v).strip(" \t")) for n, v in extra]
        assert [(n, v) for n, v in resp.headers if n not in _COPIED] == [
            *expected,
            ("Content-Length", "0"),
        ]
        assert list(parse_message(resp.encode()).headers) == list(resp.headers)


_COPIED = {"Via", "From", "To", "Call-ID", "CSeq"}


@given(uris(), display_names(), generic_params(), st.sampled_from(["t1", "a-B.c!%*_+`'~9"]))
def test_shared_to_with_tag_equals_the_parsed_line(
    uri: Uri, display: str | None, params: tuple[tuple[str, str | None], ...], tag: str
) -> None:
    # The To typed from the request plus the tag must be what the response line parses to.
    params = tuple(p for p in params if p[0].lower() != "tag")
    to = To(uri, display, params)
    req = make_request(
        "INVITE", "sip:b@h", from_="<sip:a@h>;tag=1", to=to, call_id="c", cseq=1, via=None
    )
    assert req.to == to
    resp = make_response(req, 200, to_tag=tag)
    wire = parse_message(resp.encode())
    assert resp.to == wire.to
    assert str(resp.to) == str(wire.to)
    assert resp.to.tag == tag


@pytest.mark.parametrize("make", [new_branch, new_tag, new_call_id, make_cnonce])
def test_wire_identifiers_default_to_the_os_csprng(make: Callable[..., str]) -> None:
    """Issue 10: tags, branches, Call-IDs and cnonces had no default source of randomness.

    Every caller had to pass an RNG, and a ``random.Random()`` (Mersenne Twister) there is
    predictable after 624 outputs: an attacker who sees enough tags and branches forges
    the next ones (off-path CANCEL/BYE injection). The default is now the OS CSPRNG.
    """
    default = inspect.signature(make).parameters["rng"].default
    assert default is SYSTEM_RANDOM
    assert isinstance(default, random.SystemRandom)
    assert make() != make()


def test_system_random_ignores_seeding() -> None:
    """Two SystemRandom "seeded" alike still differ: no Mersenne Twister state behind it."""
    a, b = random.SystemRandom(1), random.SystemRandom(1)
    assert a.getrandbits(128) != b.getrandbits(128)
    SYSTEM_RANDOM.seed(7)  # a no-op for SystemRandom
    assert new_tag() != new_tag()


def test_call_id_without_host() -> None:
    call_id = new_call_id(random.Random(3))
    assert len(call_id) == 24
    assert "@" not in call_id
