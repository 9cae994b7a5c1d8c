"""Dialog state (RFC 3261 §12): creation on both sides, routing, CSeq rules."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from rvoip_dialog_core import (
    Dialog,
    DialogConfig,
    DialogId,
    DialogState,
    Role,
)
from rvoip_dialog_core.rules import make_via
from rvoip_sip_core import Request, Response, make_request, make_response, parse_uri

CONFIG = DialogConfig(contact="sip:alice@10.0.0.1:5060", via_host="10.0.0.1", via_port=5060)


def invite(*, record_route: tuple[str, ...] = (), uri: str = "sip:bob@10.0.0.2") -> Request:
    headers = [("Record-Route", rr) for rr in record_route]
    return make_request(
        "INVITE",
        parse_uri(uri),
        from_="Alice <sip:alice@example.com>;tag=a1",
        to="<sip:bob@example.com>",
        call_id="cid-1",
        cseq=7,
        via="SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc",
        contact="<sip:alice@10.0.0.1:5060>",
        headers=headers,
    )


def answer(request: Request, status: int = 200, *, rr: tuple[str, ...] = ()) -> Response:
    headers = [("Contact", "<sip:bob@10.0.0.2:5070>")]
    headers += [("Record-Route", r) for r in rr]
    return make_response(request, status, to_tag="b1", headers=headers)


def test_uac_dialog_from_2xx_reverses_record_route() -> None:
    req = invite()
    resp = answer(req, rr=("<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"))
    d = Dialog.from_uac(req, resp)
    assert d.id == DialogId("cid-1", "a1", "b1")
    assert d.role is Role.UAC
    assert d.state is DialogState.CONFIRMED
    assert str(d.remote_target) == "sip:bob@10.0.0.2:5070"
    # RFC 3261 §12.1.2: the UAC's route set is the Record-Route list reversed.
    assert [r.split(";")[0] for r in d.route_set] == ["<sip:p1.example.com", "<sip:p2.example.com"]
    assert d.local_seq == 7
    assert d.remote_seq is None
    assert not d.secure


def test_uac_early_dialog_from_tagged_1xx() -> None:
    req = invite()
    d = Dialog.from_uac(req, answer(req, 180))
    assert d.state is DialogState.EARLY


def test_uas_dialog_keeps_record_route_order_and_remote_cseq() -> None:
    req = invite(record_route=("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"))
    d = Dialog.from_uas(req, "b9")
    assert d.id == DialogId("cid-1", "b9", "a1")
    assert d.role is Role.UAS
    assert [r.split(";")[0] for r in d.route_set] == ["<sip:p1.example.com", "<sip:p2.example.com"]
    assert d.remote_seq == 7
    assert d.local_seq is None
    assert str(d.remote_target) == "sip:alice@10.0.0.1:5060"
    assert "Alice" in d.remote_party
    assert "tag" not in d.remote_party


def test_sips_request_uri_makes_a_secure_dialog() -> None:
    req = invite(uri="sips:bob@example.com")
    assert Dialog.from_uas(req, "x").secure


def test_loose_routing_keeps_remote_target_as_request_uri() -> None:
    req = invite()
    d = Dialog.from_uac(req, answer(req, rr=("<sip:p1.example.com;lr>",)))
    bye = d.build_request("BYE", CONFIG, random.Random(1))
    assert str(bye.uri) == "sip:bob@10.0.0.2:5070"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>"]


def test_strict_routing_puts_first_route_in_request_uri() -> None:
    req = invite()
    d = Dialog.from_uac(req, answer(req, rr=("<sip:strict.example.com>",)))
    bye = d.build_request("BYE", CONFIG, random.Random(1))
    # RFC 3261 §12.2.1.1: strict router: Request-URI is the first route, target goes last.
    assert str(bye.uri) == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == ["<sip:bob@10.0.0.2:5070>"]


def test_in_dialog_request_headers() -> None:
    req = invite()
    d = Dialog.from_uac(req, answer(req))
    rng = random.Random(3)
    info = d.build_request(
        "INFO", CONFIG, rng, body=b"Signal=1\r\n", content_type="application/dtmf-relay"
    )
    assert info.cseq.seq == 8
    assert info.cseq.method == "INFO"
    assert info.from_.tag == "a1"
    assert info.to.tag == "b1"
    assert info.call_id == "cid-1"
    assert info.top_via.branch is not None
    assert info.top_via.branch.startswith("z9hG4bK")
    assert info.contacts[0].uri == parse_uri("sip:alice@10.0.0.1:5060")
    assert d.local_seq == 8
    ack = d.build_request("ACK", CONFIG, rng, cseq=7)
    assert ack.cseq.seq == 7
    assert ack.cseq.method == "ACK"
    assert d.local_seq == 8


def test_uas_first_request_picks_an_initial_cseq() -> None:
    d = Dialog.from_uas(invite(), "b9")
    bye = d.build_request("BYE", CONFIG, random.Random(0))
    assert 1 <= bye.cseq.seq < 2**31
    assert d.local_seq == bye.cseq.seq


def test_make_via_has_fresh_branch_and_rport() -> None:
    via = make_via(CONFIG, random.Random(0))
    assert via.startswith("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK")
    assert via.endswith(";rport")
    v6 = make_via(DialogConfig(contact="sip:a@[::1]", via_host="::1", via_port=5), random.Random(0))
    assert v6.startswith("SIP/2.0/UDP [::1]:5;")


def _request_with_cseq(seq: int, method: str) -> Request:
    return make_request(
        method,
        parse_uri("sip:bob@10.0.0.2"),
        from_="<sip:alice@example.com>;tag=a1",
        to="<sip:bob@example.com>;tag=b1",
        call_id="cid-1",
        cseq=seq,
        via="SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx",
    )


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2**31 - 1),
            st.sampled_from(["INFO", "BYE", "ACK", "CANCEL", "UPDATE", "OPTIONS"]),
        ),
        max_size=30,
    )
)
def test_remote_cseq_never_decreases(requests: list[tuple[int, str]]) -> None:
    """RFC 3261 §12.2.2: accepted requests carry non-decreasing CSeq; lower ones are refused."""
    d = Dialog.from_uas(invite(), "b1")
    for seq, method in requests:
        before = d.remote_seq
        ok = d.accept_remote_cseq(_request_with_cseq(seq, method))
        assert before is not None
        if method in ("ACK", "CANCEL"):
            assert ok
            assert d.remote_seq == before
        elif seq < before:
            assert not ok
            assert d.remote_seq == before
        else:
            assert ok
            assert d.remote_seq == seq


@given(st.integers(min_value=1, max_value=2**31 - 1), st.integers(min_value=1, max_value=5))
def test_local_cseq_increments_and_wraps_below_2_31(start: int, n: int) -> None:
    d = Dialog.from_uas(invite(), "b1")
    d.local_seq = start
    rng = random.Random(0)
    for _ in range(n):
        prev = d.local_seq
        seq = d.next_local_seq(rng)
        assert 1 <= seq < 2**31
        assert seq == prev + 1 or (prev == 2**31 - 1 and seq == 1)
