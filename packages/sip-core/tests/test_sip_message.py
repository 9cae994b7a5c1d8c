"""Headers container and Request/Response: lookup, deriving, typed access, encoding."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import (
    Allow,
    CSeq,
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    SipUsageError,
    Via,
    parse_message,
)

WIRE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via  :  SIP/2.0/UDP p1.example.com;branch=z9hG4bK1  \r\n"
    b"v: SIP/2.0/UDP a.example.com;branch=z9hG4bK2\r\n"
    b"f: <sip:a@example.com>;tag=x\r\nTO: <sip:bob@example.com>\r\n"
    b"i: cid\r\nCSeq: 7 INVITE\r\nAllow: INVITE, ACK\r\nAllow: BYE\r\n"
    b"X-Odd:   spaced value \r\nContent-Length: 2\r\n\r\nhi"
)


def wire_request() -> Request:
    msg = parse_message(WIRE)
    assert isinstance(msg, Request)
    return msg


def test_headers_lookup_is_case_insensitive_and_compact_aware() -> None:
    h = wire_request().headers
    assert h.get("via") == "SIP/2.0/UDP p1.example.com;branch=z9hG4bK1"
    assert h.get_all("VIA") == [
        "SIP/2.0/UDP p1.example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK2",
    ]
    assert h.get("From") == "<sip:a@example.com>;tag=x"
    assert h.get("call-id") == "cid"
    assert h.get("x-odd") == "spaced value"
    assert h.get("missing") is None
    assert h.get_all("missing") == []
    assert "to" in h
    assert "t" in h
    assert 5 not in h  # type: ignore[operator]
    assert len(h) == 10
    assert h[0] == ("Via", "SIP/2.0/UDP p1.example.com;branch=z9hG4bK1")
    assert list(h)[2] == ("f", "<sip:a@example.com>;tag=x")
    assert h.positions("v") == [0, 1]
    assert bool(h)
    assert not Headers()


def test_headers_derivations_leave_the_original() -> None:
    h = Headers([("Via", "a"), ("To", "t"), ("Via", "b")])
    assert list(h.with_("v", "c")) == [("v", "c"), ("To", "t")]
    assert list(h.with_("Subject", "s"))[-1] == ("Subject", "s")
    assert list(h.append("Via", "z"))[-1] == ("Via", "z")
    assert h.prepend("Via", "top")[0] == ("Via", "top")
    assert list(h.without("VIA")) == [("To", "t")]
    assert h.without("nothing") is h
    assert list(h) == [("Via", "a"), ("To", "t"), ("Via", "b")]
    assert h == Headers([("Via", "a"), ("To", " t "), ("Via", "b")])
    assert hash(h) == hash(Headers([("Via", "a"), ("To", "t"), ("Via", "b")]))
    assert h != Headers([("Via", "a")])
    assert h != "Via: a"
    assert "Headers(" in repr(h)
    with pytest.raises(SipUsageError):
        Headers([("Bad Name", "x")])
    with pytest.raises(SipUsageError):
        h.with_("X", "a\nb")


def test_encode_is_byte_identical_when_untouched() -> None:
    msg = wire_request()
    assert msg.encode() == WIRE
    assert bytes(msg) == WIRE


def test_encode_writes_a_correct_content_length() -> None:
    msg = wire_request()
    longer = attrs.evolve(msg, body=b"hello")
    assert b"\r\nContent-Length: 5\r\n\r\nhello" in longer.encode()
    bare = Request("OPTIONS", "sip:a@b", Headers([("Call-ID", "x")]))
    assert bare.encode() == b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"
    doubled = msg.append_header("l", "2")
    assert doubled.encode().count(b"Content-Length") == 1
    assert parse_message(doubled.encode()) == msg


def test_deriving_messages() -> None:
    msg = wire_request()
    forwarded = msg.prepend_header("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp")
    assert [v.branch for v in forwarded.vias] == ["z9hG4bKp", "z9hG4bK1", "z9hG4bK2"]
    assert [v.branch for v in msg.vias] == ["z9hG4bK1", "z9hG4bK2"]
    assert forwarded.encode().endswith(WIRE[WIRE.index(b"\r\n") :])
    changed = msg.with_header("CSeq", CSeq(8, "INVITE"))
    assert changed.cseq.seq == 8
    assert msg.cseq.seq == 7
    assert changed.without_header("x-odd").headers.get("X-Odd") is None
    assert msg.append_header("Subject", "s").headers[-1] == ("Subject", "s")
    sdp = msg.with_body(b"v=0\r\n", "application/sdp")
    assert sdp.headers.get("content-length") == "5"
    assert sdp.content_type is not None
    assert (sdp.content_type.type, sdp.content_type.subtype) == ("application", "sdp")
    assert parse_message(sdp.encode()).body == b"v=0\r\n"


def test_typed_access_is_lazy_and_cached() -> None:
    msg = wire_request()
    assert msg.vias is msg.vias
    assert msg.top_via.host == "p1.example.com"
    assert msg.header(Via) is msg.vias[0]
    assert msg.from_ is msg.from_
    assert msg.from_.tag == "x"
    assert msg.to.tag is None
    assert msg.call_id == "cid"
    assert msg.cseq == CSeq(7, "INVITE")
    assert msg.header(CSeq) is msg.cseq
    assert len(msg.headers_of(Allow)) == 3  # elements of both Allow lines
    assert msg.contacts == ()
    assert msg.routes == ()
    assert msg.record_routes == ()
    assert msg.content_type is None
    assert msg.max_forwards is None
    assert isinstance(msg.uri, SipUri)
    assert msg.uri is msg.uri


def test_missing_and_malformed_typed_headers() -> None:
    msg = Request("OPTIONS", "sip:a@b", Headers([("Max-Forwards", "300"), ("Via", "junk junk")]))
    for attr in ("from_", "to", "cseq", "call_id", "max_forwards", "top_via"):
        with pytest.raises(SipParseError):
            getattr(msg, attr)
    with pytest.raises(SipParseError):
        Request("OPTIONS", "sip:a@", Headers()).uri  # noqa: B018


def test_equality_compares_parsed_uri_and_ignores_cache() -> None:
    a = Request("OPTIONS", "sip:a@B.example.com", Headers([("Call-ID", "x")]))
    b = Request("OPTIONS", SipUri.parse("sip:a@b.example.com"), Headers([("Call-ID", "x")]))
    _ = a.uri  # fill the cache of one side only
    assert a == b
    assert hash(a) == hash(b)
    assert a != attrs.evolve(a, uri="sip:c@b.example.com")
    assert a.uri_text == "sip:a@B.example.com"
    assert b.uri_text == "sip:a@b.example.com"


def test_response_model() -> None:
    resp = Response(486, "Busy Here", Headers([("Call-ID", "x")]))
    assert resp.encode() == b"SIP/2.0 486 Busy Here\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"
    assert parse_message(bytes(resp)) == resp.append_header("Content-Length", "0")
    assert "<0 bytes>" in repr(resp)
    assert not resp.is_request


def test_encode_refuses_start_line_injection() -> None:
    with pytest.raises(SipUsageError):
        Response(200, "OK\r\nX-Evil: 1", Headers()).encode()
    with pytest.raises(SipUsageError):
        Request("OPTIONS", "sip:a@b\n", Headers()).encode()
    with pytest.raises(SipUsageError):
        Response(200, "OK", Headers([("X-A", "\ud800")])).encode()


def test_typed_values_are_shared_between_messages_with_the_same_text() -> None:
    a, b = wire_request(), wire_request()
    assert a is not b
    # Frozen values parsed once per distinct text; Via (unique branch per message) is not.
    assert a.from_ is b.from_
    assert a.cseq is b.cseq
    assert a.headers_of(Allow) == b.headers_of(Allow)
    assert a.top_via == b.top_via
    assert a.top_via is not b.top_via
    assert a.uri is b.uri
    other = a.with_header("CSeq", "8 INVITE")
    assert other.cseq == CSeq(8, "INVITE")
    assert a.cseq == CSeq(7, "INVITE")


def test_shared_typed_values_stay_bounded() -> None:
    from rvoip_sip_core import _message

    for n in range(_message._SHARED_LIMIT + 10):
        msg = parse_message(WIRE.replace(b"7 INVITE", f"{n} INVITE".encode()))
        assert msg.cseq.seq == n
    assert len(_message._SHARED) <= _message._SHARED_LIMIT


@attrs.define(eq=False)
class _Mutable:
    NAME = "X-Odd"
    MULTI = False
    text: str

    @classmethod
    def parse(cls, value: str) -> _Mutable:
        return cls(value)


def test_header_classes_of_other_packages_are_parsed_per_message() -> None:
    a, b = wire_request(), wire_request()
    first, second = a.header(_Mutable), b.header(_Mutable)
    assert first is not None
    assert second is not None
    assert first is not second
    assert first.text == second.text == "spaced value"


@given(
    st.lists(
        st.tuples(st.sampled_from(["Via", "X-A", "i", "Subject"]), st.text("ab ;=", max_size=8))
    )
)
def test_pairs_are_the_iterated_lines_built_once(items: list[tuple[str, str]]) -> None:
    """``pairs()`` is what iterating gives, as one tuple shared by every caller."""
    headers = Headers(items)
    pairs = headers.pairs()
    assert pairs == tuple(headers)
    assert headers.pairs() is pairs
    assert list(headers) == list(pairs)
    assert repr(headers) == f"Headers({list(pairs)!r})"
