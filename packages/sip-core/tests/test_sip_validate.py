"""`check_request` / `check_max_forwards`: what a UAS checks before acting (RFC 3261 §8.2)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import (
    Request,
    RequestFault,
    SipParseError,
    check_max_forwards,
    check_request,
    make_request,
    parse_message,
)

VALID = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKvalid\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: valid@192.0.2.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def fault_of(data: bytes) -> RequestFault | None:
    return check_request(request(data))


def test_a_valid_request_has_no_fault() -> None:
    assert fault_of(VALID) is None


def test_built_requests_have_no_fault() -> None:
    built = make_request(
        "INVITE",
        "sip:bob@example.com",
        from_="<sip:alice@example.com>;tag=a",
        to="<sip:bob@example.com>",
        call_id="c@x",
        cseq=7,
        via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbuilt",
        body=b"v=0\r\n",
    )
    assert check_request(built) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Via", "Missing Via header field"),
        ("From", "Missing From header field"),
        ("To", "Missing To header field"),
        ("Call-ID", "Missing Call-ID header field"),
        ("CSeq", "Missing CSeq header field"),
    ],
)
def test_each_required_header_is_checked(name: str, reason: str) -> None:
    lines = [line for line in VALID.split(b"\r\n") if not line.startswith(name.encode() + b":")]
    fault = fault_of(b"\r\n".join(lines))
    assert fault == RequestFault(400, reason, reason)


def test_a_missing_max_forwards_is_accepted_by_a_uas() -> None:
    """A UAS needs no Max-Forwards to act (RFC 3261 §8.2); old and sloppy UAs omit it."""
    lines = [line for line in VALID.split(b"\r\n") if not line.startswith(b"Max-Forwards:")]
    assert fault_of(b"\r\n".join(lines)) is None


def test_rfc4475_insuf_is_a_400_naming_the_missing_header(corpora: Path) -> None:
    """RFC 4475 §3.1.2.18: no From, To, Call-ID or Max-Forwards: 400, not processed."""
    fault = fault_of((corpora / "rfc4475" / "insuf.dat").read_bytes())
    assert fault is not None
    assert fault.status == 400
    assert fault.reason.startswith("Missing ")


def test_rfc4475_multi01_repeated_single_value_headers_are_a_400(corpora: Path) -> None:
    """RFC 4475 §3.1.2.19: two To, From, Call-ID and CSeq headers with different values."""
    fault = fault_of((corpora / "rfc4475" / "multi01.dat").read_bytes())
    assert fault is not None
    assert fault.status == 400
    assert fault.reason.startswith("Conflicting ")


def test_identical_repeats_of_a_single_value_header_are_tolerated() -> None:
    data = VALID.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nMax-Forwards: 70\r\n")
    assert fault_of(data) is None


@pytest.mark.parametrize("value", [b"seventy", b"256", b"-1", b"7 0"])
def test_max_forwards_must_be_a_number_up_to_255(value: bytes) -> None:
    fault = fault_of(VALID.replace(b"Max-Forwards: 70", b"Max-Forwards: " + value))
    assert fault is not None
    assert (fault.status, fault.reason) == (400, "Invalid Max-Forwards header field")


def test_leading_zeros_are_valid_numbers() -> None:
    data = VALID.replace(b"Max-Forwards: 70", b"Max-Forwards: 070")
    assert fault_of(data.replace(b"Content-Length: 0", b"Content-Length: 00")) is None


def test_cseq_method_must_match_and_number_must_parse() -> None:
    mismatch = fault_of(VALID.replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"))
    assert mismatch is not None
    assert mismatch.reason == "CSeq method does not match the request method"
    bad = fault_of(VALID.replace(b"CSeq: 1 OPTIONS", b"CSeq: 4294967296 OPTIONS"))
    assert bad is not None
    assert bad.reason == "Invalid CSeq header field"


def test_content_length_must_match_the_body() -> None:
    built = request(VALID)
    longer = attrs.evolve(built, body=b"abc")  # Content-Length: 0 still says 0
    fault = check_request(longer)
    assert fault is not None
    assert fault.reason == "Invalid Content-Length header field"


def test_unknown_request_uri_scheme_is_416(corpora: Path) -> None:
    """RFC 4475 §3.3.15 (unkscm): a UAS that does not understand the scheme answers 416."""
    fault = fault_of((corpora / "rfc4475" / "unkscm.dat").read_bytes())
    assert fault is not None
    assert fault.status == 416
    assert '"' not in fault.warning


def test_other_sip_version_is_505() -> None:
    fault = check_request(attrs.evolve(request(VALID), version="SIP/7.0"))
    assert fault is not None
    assert fault.status == 505


def test_max_forwards_zero_is_processed_by_a_uas_and_483_for_a_proxy(corpora: Path) -> None:
    """RFC 3261 §16.3 (483 Too Many Hops) is a proxy's rule; a UAS processes the request."""
    zero = request((corpora / "rfc4475" / "zeromf.dat").read_bytes())
    assert check_request(zero) is None
    fault = check_max_forwards(zero)
    assert fault is not None
    assert fault.status == 483
    assert check_max_forwards(request(VALID)) is None


def test_warning_text_never_holds_quotes_or_controls() -> None:
    fault = check_request(attrs.evolve(request(VALID), uri='x"\\y\x07:bob@example.com'))
    assert fault is not None
    assert fault.status == 416
    assert '"' not in fault.warning
    assert "\\" not in fault.warning


@given(st.binary(max_size=600))
def test_check_request_never_raises_on_parsed_wire_bytes(tail: bytes) -> None:
    """Property: whatever parses as a request, check_request answers (None or a fault)."""
    data = VALID[: VALID.index(b"Content-Length")] + tail
    try:
        message = parse_message(data)
    except SipParseError:
        return
    if isinstance(message, Request):
        fault = check_request(message)
        assert fault is None or 400 <= fault.status < 600
        fault = check_max_forwards(message)
        assert fault is None or fault.status in (400, 483)


@given(
    st.lists(
        st.sampled_from(
            [
                b"To: <sip:x@y>\r\n",
                b"From: <sip:x@y>;tag=2\r\n",
                b"Call-ID: other\r\n",
                b"CSeq: 2 OPTIONS\r\n",
                b"Max-Forwards: 1\r\n",
                b"Max-Forwards: x\r\n",
                b"Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKo\r\n",
                b"Subject: hi\r\n",
            ]
        ),
        max_size=4,
    )
)
def test_extra_header_lines_are_a_fault_exactly_when_they_conflict(extra: list[bytes]) -> None:
    """Property: Via and Subject may repeat; a second differing single-value line is a 400."""
    head = VALID[: VALID.index(b"Content-Length")]
    fault = fault_of(head + b"".join(extra) + b"Content-Length: 0\r\n\r\n")
    conflicting = [line for line in extra if not line.startswith((b"Via", b"Subject"))]
    if conflicting:
        assert fault is not None
        assert fault.status == 400
    else:
        assert fault is None
