"""The small RFC rules: option tags, body types, sipfrag, malformed headers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rvoip_dialog_core import (
    DialogConfig,
)
from rvoip_dialog_core._rules import (
    malformed,
    option_tags,
    unacceptable_content_type,
    unsupported_extensions,
)
from rvoip_dialog_core.rules import parse_sipfrag_status, sipfrag
from rvoip_sip_core import Request, make_request, parse_uri

CONFIG = DialogConfig(contact="sip:b@127.0.0.1", via_host="127.0.0.1", via_port=5070)


def request(method: str, headers: list[tuple[str, str]], body: bytes = b"") -> Request:
    return make_request(
        method,
        parse_uri("sip:b@127.0.0.1"),
        from_="<sip:a@127.0.0.1>;tag=1",
        to="<sip:b@127.0.0.1>",
        call_id="c",
        cseq=1,
        via="SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1",
        headers=headers,
        body=body,
    )


@given(st.integers(min_value=100, max_value=699), st.text(alphabet="abcdefgh ", max_size=20))
def test_sipfrag_round_trip(status: int, reason: str) -> None:
    assert parse_sipfrag_status(sipfrag(status, reason)) == status


@given(st.binary(max_size=200))
def test_sipfrag_parser_never_raises(data: bytes) -> None:
    result = parse_sipfrag_status(data)
    assert result is None or 100 <= result <= 999


def test_option_tags_and_unsupported() -> None:
    req = request("INVITE", [("Require", "100rel, X-Foo"), ("Supported", "timer")])
    assert option_tags(req, "Require") == {"100rel", "x-foo"}
    assert unsupported_extensions(req, CONFIG) == ["X-Foo"]
    # RFC 3261 §8.2.2.3: ACK and CANCEL are not checked.
    assert unsupported_extensions(request("CANCEL", [("Require", "x")]), CONFIG) == []


def test_content_types_per_method() -> None:
    sdp = [("Content-Type", "application/SDP")]
    assert not unacceptable_content_type(request("INVITE", sdp, b"v=0"), CONFIG)
    assert unacceptable_content_type(
        request("INVITE", [("Content-Type", "text/plain")], b"x"), CONFIG
    )
    assert not unacceptable_content_type(request("INVITE", [], b""), CONFIG)
    dtmf = [("Content-Type", "application/dtmf")]
    assert not unacceptable_content_type(request("INFO", dtmf, b"5"), CONFIG)
    assert unacceptable_content_type(request("INFO", sdp, b"v=0"), CONFIG)
    assert not unacceptable_content_type(
        request("MESSAGE", [("Content-Type", "a/b")], b"x"), CONFIG
    )


@given(
    st.sampled_from(["Contact", "Record-Route", "Route", "Require", "Content-Type"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
def test_malformed_reports_instead_of_raising(name: str, value: str) -> None:
    """Whatever a header holds, ``malformed`` returns (an error or None) and never raises."""
    try:
        req = request("INFO", [(name, value)])
    except ValueError:
        return  # refused by the builder (not a wire case)
    problem = malformed(req)
    assert problem is None or problem.status in (0, 400, 416, 420)


def test_malformed_checks_only_what_the_method_uses() -> None:
    """Contact, routes and option tags are checked where the layer reads them (RFC 3261)."""
    bad_contact = [("Contact", "<sip:")]
    assert malformed(request("INVITE", bad_contact)) is not None
    assert malformed(request("UPDATE", bad_contact)) is not None
    # BYE, ACK and CANCEL neither create nor refresh a dialog: their Contact is not read.
    for method in ("BYE", "ACK", "CANCEL"):
        assert malformed(request(method, bad_contact)) is None
    bad_require = [("Require", '100rel, "x')]
    # RFC 3261 §8.2.2.3: Require is processed in BYE (420), not in ACK or CANCEL.
    assert malformed(request("BYE", bad_require)) is not None
    assert malformed(request("ACK", bad_require)) is None
    assert malformed(request("CANCEL", bad_require)) is None
    assert malformed(request("INVITE", [("Supported", "timer, <x")])) is not None
    assert malformed(request("BYE", [("Content-Type", "nonsense")])) is not None
    assert malformed(request("BYE", [])) is None
