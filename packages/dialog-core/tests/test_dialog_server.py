"""The callee half of the dialog layer, fed requests directly (no transaction layer)."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_dialog_core import (
    AckReceived,
    ByeReceived,
    CancelReceived,
    DialogConfig,
    DialogConfirmed,
    DialogEarly,
    DialogId,
    DialogLayer,
    DialogTerminated,
    DialogUsageError,
    IncomingInvite,
    InfoReceived,
    NotifyReceived,
    OptionsReceived,
    ReferReceived,
    ReInviteReceived,
    RequestReceived,
    ResponseForRequest,
    SendRequest,
    SendResponse,
    TerminationReason,
    UpdateReceived,
)
from rvoip_dialog_core._uas import is_secure_request
from rvoip_sip_core import (
    Request,
    Response,
    make_request,
    make_response,
    parse_message,
    parse_uri,
)

CONFIG = DialogConfig(contact="sip:bob@127.0.0.1:5070", via_host="127.0.0.1", via_port=5070)


def layer(*, own_session_timer: bool = True) -> DialogLayer:
    # own_session_timer=False: no RFC 4028 timer of our own (uas_session_expires), for
    # the tests that follow only the 2xx retransmission deadlines.
    config = CONFIG if own_session_timer else attrs.evolve(CONFIG, uas_session_expires=None)
    return DialogLayer(config, rng=random.Random(5))


def req(
    method: str,
    *,
    cseq: int = 1,
    to_tag: str | None = None,
    branch: str = "z9hG4bKinv",
    body: bytes = b"",
    content_type: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Request:
    to = "<sip:bob@127.0.0.1:5070>" + (f";tag={to_tag}" if to_tag else "")
    return make_request(
        method,
        parse_uri("sip:bob@127.0.0.1:5070"),
        from_="<sip:alice@127.0.0.1:5060>;tag=alice1",
        to=to,
        call_id="call-1@127.0.0.1",
        cseq=cseq,
        via=f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch}",
        contact="<sip:alice@127.0.0.1:5060>",
        headers=headers or [],
        body=body,
        content_type=content_type,
    )


def responses(dl: DialogLayer) -> list[Response]:
    return [a.response for a in dl.take_actions() if isinstance(a, SendResponse)]


def answered(dl: DialogLayer, now: float = 0.0) -> tuple[DialogId, int]:
    """Feed an INVITE and answer it 200; return the dialog id and the INVITE's ref."""
    dl.on_request(req("INVITE", body=b"v=0\r\n", content_type="application/sdp"), "inv", now)
    (incoming,) = dl.take_events()
    assert isinstance(incoming, IncomingInvite)
    dl.respond(incoming.ref, 200, body=b"v=0\r\n", now=now)
    dl.take_actions()
    dl.take_events()
    return incoming.dialog_id, incoming.ref


def test_invite_ringing_then_ok_creates_early_then_confirmed_dialog() -> None:
    dl = layer()
    dl.on_request(req("INVITE", body=b"v=0\r\n", content_type="application/sdp"), "inv", 0.0)
    (incoming,) = dl.take_events()
    assert isinstance(incoming, IncomingInvite)
    ringing = dl.respond(incoming.ref, 180, now=0.0)
    assert ringing.to.tag == incoming.dialog_id.local_tag
    assert ringing.contacts[0].uri == parse_uri("sip:bob@127.0.0.1:5070")
    assert "INVITE" in (ringing.headers.get("Allow") or "")
    assert "Supported" in ringing.headers
    assert [type(e) for e in dl.take_events()] == [DialogEarly]
    ok = dl.respond(incoming.ref, 200, body=b"v=0\r\n", now=0.0)
    assert ok.content_type is not None
    assert ok.content_type.subtype == "sdp"
    assert [type(e) for e in dl.take_events()] == [DialogConfirmed]
    assert [a.server for a in dl.take_actions() if isinstance(a, SendResponse)] == ["inv", "inv"]
    with pytest.raises(DialogUsageError):
        dl.respond(incoming.ref, 486, now=0.0)


def test_2xx_retransmitted_t1_doubling_to_t2_until_ack() -> None:
    dl = layer(own_session_timer=False)
    did, _ = answered(dl)
    times: list[float] = []
    for _ in range(6):
        deadline = dl.next_deadline()
        assert deadline is not None
        dl.handle_timers(deadline)
        (again,) = responses(dl)
        assert again.status == 200
        times.append(deadline)
    # RFC 3261 §13.3.1.4: intervals T1, 2T1, 4T1, … capped at T2 (0.5, 1, 2, 4, 4 s).
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]
    ack = req("ACK", to_tag=did.local_tag, branch="z9hG4bKack")
    dl.on_request(ack, None, 16.0)
    assert [type(e) for e in dl.take_events()] == [AckReceived]
    assert dl.next_deadline() is None


def test_no_ack_within_64_t1_sends_bye_and_ends_dialog() -> None:
    dl = layer()
    did, _ = answered(dl)
    retransmits = 0
    bye: Request | None = None
    for _ in range(50):
        deadline = dl.next_deadline()
        if deadline is None:
            break
        dl.handle_timers(deadline)
        for action in dl.take_actions():
            if isinstance(action, SendResponse):
                retransmits += 1
            elif isinstance(action, SendRequest):
                bye = action.request
                assert deadline == pytest.approx(32.0)
    assert retransmits == 10
    assert bye is not None
    assert bye.method == "BYE"
    assert bye.to.tag == "alice1"
    assert DialogTerminated(did, TerminationReason.ACK_TIMEOUT) in dl.take_events()
    assert dl.dialog(did) is None


def test_cancel_gets_200_and_invite_487() -> None:
    dl = layer()
    dl.on_request(req("INVITE"), "inv", 0.0)
    (incoming,) = dl.take_events()
    assert isinstance(incoming, IncomingInvite)
    dl.respond(incoming.ref, 180, now=0.0)
    dl.take_actions()
    dl.take_events()
    dl.on_request(req("CANCEL"), "cancel", 1.0, cancels="inv")
    actions = dl.take_actions()
    assert [(a.server, a.response.status) for a in actions if isinstance(a, SendResponse)] == [
        ("cancel", 200),
        ("inv", 487),
    ]
    events = dl.take_events()
    assert isinstance(events[0], CancelReceived)
    assert events[1] == DialogTerminated(incoming.dialog_id, TerminationReason.CANCELLED, 487)
    with pytest.raises(DialogUsageError):
        dl.respond(incoming.ref, 200, now=1.0)


def test_cancel_matched_by_branch_without_transaction_hint() -> None:
    dl = layer()
    dl.on_request(req("INVITE"), "inv", 0.0)
    dl.take_events()
    dl.on_request(req("CANCEL"), "cancel", 1.0)
    assert [r.status for r in responses(dl)] == [200, 487]


def test_cancel_for_unknown_invite_is_481_and_after_answer_is_harmless() -> None:
    dl = layer()
    dl.on_request(req("CANCEL", branch="z9hG4bKnone"), "c", 0.0)
    assert [r.status for r in responses(dl)] == [481]
    answered(dl)
    dl.on_request(req("CANCEL"), "c2", 0.0, cancels="inv")
    assert [r.status for r in responses(dl)] == [200]
    assert dl.take_events() == []


def test_bye_ends_dialog_with_200() -> None:
    dl = layer()
    did, _ = answered(dl)
    dl.on_request(req("BYE", cseq=2, to_tag=did.local_tag, branch="z9hG4bKbye"), "bye", 1.0)
    assert [r.status for r in responses(dl)] == [200]
    events = dl.take_events()
    assert isinstance(events[0], ByeReceived)
    assert events[1] == DialogTerminated(did, TerminationReason.REMOTE_BYE)
    assert len(dl) == 0
    # The unACKed 2xx is still retransmitted so the caller's INVITE completes; the late
    # ACK stops it without any event for the ended dialog.
    assert dl.next_deadline() == 0.5
    dl.on_request(req("ACK", to_tag=did.local_tag, branch="z9hG4bKack"), None, 1.1)
    assert dl.take_events() == []
    assert dl.next_deadline() is None
    assert sum(dl.pending().values()) == 0


def test_bye_on_early_dialog_ends_pending_invite_with_487() -> None:
    dl = layer()
    dl.on_request(req("INVITE"), "inv", 0.0)
    (incoming,) = dl.take_events()
    assert isinstance(incoming, IncomingInvite)
    dl.respond(incoming.ref, 183, now=0.0)
    dl.take_actions()
    tag = incoming.dialog_id.local_tag
    dl.on_request(req("BYE", cseq=2, to_tag=tag, branch="z9hG4bKbye"), "bye", 1.0)
    assert [r.status for r in responses(dl)] == [200, 487]


@pytest.mark.parametrize("method", ["BYE", "INFO", "UPDATE", "REFER", "NOTIFY"])
def test_requests_outside_any_dialog_get_481(method: str) -> None:
    dl = layer()
    dl.on_request(req(method, to_tag="unknown", branch="z9hG4bK1"), "s", 0.0)
    dl.on_request(req(method, branch="z9hG4bK2"), "s2", 0.0)
    assert [r.status for r in responses(dl)] == [481, 481]


def test_unknown_method_is_405_with_allow() -> None:
    dl = layer()
    dl.on_request(req("FROBNICATE"), "s", 0.0)
    (resp,) = responses(dl)
    assert resp.status == 405
    assert "INVITE" in (resp.headers.get("Allow") or "")


def test_require_unknown_option_is_420_listing_unsupported() -> None:
    dl = layer()
    dl.on_request(req("INVITE", headers=[("Require", "foo, bar")]), "s", 0.0)
    (resp,) = responses(dl)
    assert resp.status == 420
    assert resp.headers.get("Unsupported") == "foo, bar"
    assert dl.take_events() == []


def test_supported_option_tag_in_require_is_accepted() -> None:
    cfg = DialogConfig(
        contact="sip:b@127.0.0.1", via_host="127.0.0.1", via_port=1, supported=("timer",)
    )
    dl = DialogLayer(cfg, rng=random.Random(0))
    dl.on_request(req("INVITE", headers=[("Require", "timer")]), "s", 0.0)
    assert isinstance(dl.take_events()[0], IncomingInvite)


def test_invite_with_non_sdp_body_is_415_with_accept() -> None:
    dl = layer()
    dl.on_request(req("INVITE", body=b"hello", content_type="text/plain"), "s", 0.0)
    (resp,) = responses(dl)
    assert resp.status == 415
    assert resp.headers.get("Accept") == "application/sdp"


def test_info_bodies_dtmf_accepted_others_415() -> None:
    dl = layer()
    did, _ = answered(dl)
    ok = req(
        "INFO",
        cseq=2,
        to_tag=did.local_tag,
        branch="z9hG4bKi1",
        body=b"Signal=5\r\nDuration=160\r\n",
        content_type="application/dtmf-relay",
    )
    dl.on_request(ok, "i1", 1.0)
    bad = req(
        "INFO",
        cseq=3,
        to_tag=did.local_tag,
        branch="z9hG4bKi2",
        body=b"x",
        content_type="text/plain",
    )
    dl.on_request(bad, "i2", 1.0)
    statuses = [r.status for r in responses(dl)]
    assert statuses == [200, 415]
    assert [type(e) for e in dl.take_events()] == [InfoReceived]


def test_lower_cseq_in_dialog_is_500() -> None:
    dl = layer()
    did, _ = answered(dl)
    dl.on_request(req("INFO", cseq=5, to_tag=did.local_tag, branch="z9hG4bKa"), "a", 1.0)
    dl.on_request(req("INFO", cseq=4, to_tag=did.local_tag, branch="z9hG4bKb"), "b", 1.0)
    assert [r.status for r in responses(dl)] == [200, 500]


def test_options_outside_and_inside_dialog_answered_with_capabilities() -> None:
    dl = layer()
    dl.on_request(req("OPTIONS", branch="z9hG4bKo"), "o", 0.0)
    (resp,) = responses(dl)
    assert resp.status == 200
    assert resp.headers.get("Accept") == "application/sdp"
    assert "REFER" in (resp.headers.get("Allow") or "")
    assert dl.take_events() == [OptionsReceived(None, req("OPTIONS", branch="z9hG4bKo"))]


def test_reinvite_refreshes_target_and_is_answered_by_tu() -> None:
    dl = layer()
    did, _ = answered(dl)
    dl.on_request(req("ACK", to_tag=did.local_tag, branch="z9hG4bKack"), None, 0.1)
    assert isinstance(dl.take_events()[0], AckReceived)
    re = req(
        "INVITE",
        cseq=2,
        to_tag=did.local_tag,
        branch="z9hG4bKre",
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    re = re.with_header("Contact", "<sip:alice@127.0.0.1:6000>")
    dl.on_request(re, "re", 1.0)
    (event,) = dl.take_events()
    assert isinstance(event, ReInviteReceived)
    assert event.offer == b"v=0\r\n"
    dialog = dl.dialog(did)
    assert dialog is not None
    assert str(dialog.remote_target) == "sip:alice@127.0.0.1:6000"
    # A second re-INVITE while the first is pending: 500 with Retry-After (RFC 3261 §14.2).
    second = req("INVITE", cseq=3, to_tag=did.local_tag, branch="z9hG4bKre2")
    dl.on_request(second, "re2", 1.0)
    (resp,) = responses(dl)
    assert resp.status == 500
    assert "Retry-After" in resp.headers
    dl.respond(event.ref, 200, body=b"v=0\r\n", now=1.0)
    assert responses(dl)[0].status == 200


def test_reinvite_while_ours_pending_is_491() -> None:
    dl = layer()
    did, _ = answered(dl)
    dl.on_request(req("ACK", to_tag=did.local_tag, branch="z9hG4bKack"), None, 0.1)
    dl.reinvite(did, b"v=0\r\n", now=1.0)
    dl.take_actions()
    dl.on_request(req("INVITE", cseq=2, to_tag=did.local_tag, branch="z9hG4bKre"), "re", 1.0)
    assert [r.status for r in responses(dl)] == [491]


def test_update_received() -> None:
    dl = layer()
    did, _ = answered(dl)
    dl.on_request(
        req(
            "UPDATE",
            cseq=2,
            to_tag=did.local_tag,
            branch="z9hG4bKu",
            body=b"v=0\r\n",
            content_type="application/sdp",
        ),
        "u",
        1.0,
    )
    (event,) = dl.take_events()
    assert isinstance(event, UpdateReceived)
    resp = dl.respond(event.ref, 200, body=b"v=0\r\n", now=1.0)
    assert resp.contacts
    assert "Allow" in resp.headers


def test_refer_accepted_sends_202_and_trying_notify_then_final() -> None:
    dl = layer()
    did, _ = answered(dl)
    refer = req(
        "REFER",
        cseq=2,
        to_tag=did.local_tag,
        branch="z9hG4bKr",
        headers=[("Refer-To", "<sip:carol@127.0.0.1:5080>")],
    )
    dl.on_request(refer, "r", 1.0)
    (event,) = dl.take_events()
    assert isinstance(event, ReferReceived)
    assert event.refer_to == "<sip:carol@127.0.0.1:5080>"
    sub = dl.accept_refer(event.ref, now=1.0)
    actions = dl.take_actions()
    assert isinstance(actions[0], SendResponse)
    assert actions[0].response.status == 202
    assert isinstance(actions[1], SendRequest)
    notify = actions[1].request
    assert notify.method == "NOTIFY"
    assert notify.headers.get("Event") == "refer"
    assert (notify.headers.get("Subscription-State") or "").startswith("active")
    assert notify.headers.get("Content-Type") == "message/sipfrag;version=2.0"
    assert notify.body == b"SIP/2.0 100 Trying\r\n"
    dl.notify_refer(sub, 200, "OK", now=2.0)
    (final,) = dl.take_actions()
    assert isinstance(final, SendRequest)
    assert final.request.body == b"SIP/2.0 200 OK\r\n"
    assert (final.request.headers.get("Subscription-State") or "").startswith("terminated")
    assert final.request.cseq.seq == notify.cseq.seq + 1
    with pytest.raises(DialogUsageError):
        dl.notify_refer(sub, 200, "OK", now=2.0)


def test_refer_without_refer_to_is_400() -> None:
    dl = layer()
    did, _ = answered(dl)
    dl.on_request(req("REFER", cseq=2, to_tag=did.local_tag, branch="z9hG4bKr"), "r", 1.0)
    assert [r.status for r in responses(dl)] == [400]


def test_notify_with_sipfrag_is_parsed_and_answered() -> None:
    dl = layer()
    did, _ = answered(dl)
    notify = req(
        "NOTIFY",
        cseq=2,
        to_tag=did.local_tag,
        branch="z9hG4bKn",
        body=b"SIP/2.0 180 Ringing\r\n",
        content_type="message/sipfrag;version=2.0",
        headers=[("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")],
    )
    dl.on_request(notify, "n", 1.0)
    assert [r.status for r in responses(dl)] == [200]
    (event,) = dl.take_events()
    assert isinstance(event, NotifyReceived)
    assert (event.event, event.sipfrag_status, event.terminated) == ("refer", 180, True)
    no_event = req("NOTIFY", cseq=3, to_tag=did.local_tag, branch="z9hG4bKn2")
    dl.on_request(no_event, "n2", 1.0)
    assert [r.status for r in responses(dl)] == [489]


def test_rejecting_invite_ends_the_early_dialog() -> None:
    dl = layer()
    dl.on_request(req("INVITE"), "inv", 0.0)
    (incoming,) = dl.take_events()
    assert isinstance(incoming, IncomingInvite)
    dl.respond(incoming.ref, 180, now=0.0)
    resp = dl.respond(incoming.ref, 486, now=0.0)
    assert resp.to.tag == incoming.dialog_id.local_tag
    assert dl.take_events()[-1] == DialogTerminated(
        incoming.dialog_id, TerminationReason.REJECTED, 486
    )
    assert dl.pending()["uas_invites"] == 0
    assert len(dl) == 0


HEADER_NAMES = [
    "Contact",
    "Record-Route",
    "Require",
    "Supported",
    "Content-Type",
    "RAck",
    "Session-Expires",
    "Min-SE",
    "Refer-To",
    "Event",
    "Subscription-State",
]
HEADER_VALUES = st.one_of(
    st.sampled_from(
        ["<sip:x@127.0.0.1>", '"un', "<sip:", "100rel", "timer", "a/b", "1 1 INVITE", "60", "x"]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["INVITE", "UPDATE", "BYE", "INFO", "NOTIFY", "REFER", "PRACK", "OPTIONS", "ACK"]
            ),
            st.integers(min_value=1, max_value=20),
            st.lists(st.tuples(st.sampled_from(HEADER_NAMES), HEADER_VALUES), max_size=3),
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_arbitrary_in_dialog_requests_never_raise(
    requests: list[tuple[str, int, list[tuple[str, str]], bool]],
) -> None:
    """Odd header values and orders: each request gets at most one final answer, no exception."""
    dl = layer()
    did, _ = answered(dl)
    for i, (method, cseq, headers, with_body) in enumerate(requests):
        body = b"v=0\r\n" if with_body else b""
        try:
            request = req(
                method,
                cseq=cseq,
                to_tag=did.local_tag,
                branch=f"z9hG4bKfuzz{i}",
                headers=headers,
                body=body,
            )
        except ValueError:
            continue  # the builder refused a header value (CR/LF etc.): not a wire case
        dl.on_request(request, f"s{i}", float(i))
        finals = [r for r in responses(dl) if r.status >= 200 and r.cseq.seq == cseq]
        assert len(finals) <= 1
        for event in dl.take_events():
            ref = getattr(event, "ref", None)
            if isinstance(ref, int):
                dl.respond(ref, 200, now=float(i))
        dl.handle_timers(float(i) + 0.5)
        dl.take_actions()


def test_pending_reinvite_gets_487_when_the_dialog_ends() -> None:
    dl = layer()
    did, _ = answered(dl)
    dl.on_request(req("ACK", to_tag=did.local_tag, branch="z9hG4bKack"), None, 0.1)
    dl.take_events()
    dl.on_request(req("INVITE", cseq=2, to_tag=did.local_tag, branch="z9hG4bKre"), "re", 1.0)
    (event,) = dl.take_events()
    assert isinstance(event, ReInviteReceived)
    dl.bye(did, now=2.0)
    statuses = [
        (a.server, a.response.status) for a in dl.take_actions() if isinstance(a, SendResponse)
    ]
    assert statuses == [("re", 487)]
    with pytest.raises(DialogUsageError):
        dl.respond(event.ref, 200, now=2.0)
    assert dl.pending()["server"] == 0


def test_update_in_early_dialog_while_invite_pending() -> None:
    dl = layer()
    dl.on_request(req("INVITE"), "inv", 0.0)
    (incoming,) = dl.take_events()
    assert isinstance(incoming, IncomingInvite)
    dl.respond(incoming.ref, 183, now=0.0)
    dl.take_actions()
    dl.take_events()
    tag = incoming.dialog_id.local_tag
    update = req(
        "UPDATE",
        cseq=2,
        to_tag=tag,
        branch="z9hG4bKu",
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    dl.on_request(update, "u", 0.5)
    (event,) = dl.take_events()
    assert isinstance(event, UpdateReceived)


def test_no_reinvite_or_early_bye_before_the_ack() -> None:
    """RFC 3261 §14.1 and §15: the callee waits for the ACK before re-INVITE or BYE."""
    dl = layer()
    did, _ = answered(dl)
    ref = dl.bye(did, now=0.1)
    assert dl.take_actions() == []  # the BYE waits for the ACK
    assert dl.dialog(did) is not None
    dl.on_request(req("ACK", to_tag=did.local_tag, branch="z9hG4bKack"), None, 0.2)
    (bye,) = dl.take_actions()
    assert isinstance(bye, SendRequest)
    assert bye.request.method == "BYE"
    events = dl.take_events()
    assert isinstance(events[0], AckReceived)
    assert events[1] == DialogTerminated(did, TerminationReason.LOCAL_BYE)
    dl.on_response(make_response(bye.request, 200), 0.3)
    (done,) = dl.take_events()
    assert isinstance(done, ResponseForRequest)
    assert done.ref == ref


def test_481_before_the_ack_does_not_end_the_dialog() -> None:
    """Regression: our 2xx was lost, the caller answered our INFO 481; the dialog lives on.

    Ending it stopped the 2xx retransmissions and left the caller's INVITE unanswered.
    """
    dl = layer()
    did, _ = answered(dl)
    dl.info(did, b"Signal=1\r\n", "application/dtmf-relay", now=0.1)
    (info,) = dl.take_actions()
    assert isinstance(info, SendRequest)
    dl.on_response(make_response(info.request, 481), 0.2)
    assert dl.dialog(did) is not None
    dl.handle_timers(0.5)
    assert [a.response.status for a in dl.take_actions() if isinstance(a, SendResponse)] == [200]


def test_reinvite_waits_until_the_invite_transaction_ends() -> None:
    """RFC 3261 §14.1: a re-INVITE asked for before the ACK goes out after it."""
    dl = layer()
    did, _ = answered(dl)
    ref = dl.reinvite(did, b"v=1\r\n", now=0.1)
    assert dl.take_actions() == []
    assert dl.pending()["deferred"] == 1
    dl.on_request(req("ACK", to_tag=did.local_tag, branch="z9hG4bKack"), None, 0.2)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    assert action.request.method == "INVITE"
    assert action.request.body == b"v=1\r\n"
    dl.on_response(make_response(action.request, 200), 0.3)
    events = [e for e in dl.take_events() if isinstance(e, ResponseForRequest)]
    assert [(e.ref, e.response.status) for e in events] == [(ref, 200)]


def test_waiting_reinvite_reported_481_when_the_dialog_ends() -> None:
    dl = layer()
    did, _ = answered(dl)
    ref = dl.reinvite(did, b"v=1\r\n", now=0.1)
    dl.on_request(req("BYE", cseq=2, to_tag=did.local_tag, branch="z9hG4bKbye"), "bye", 0.2)
    done = [e for e in dl.take_events() if isinstance(e, ResponseForRequest)]
    assert [(e.ref, e.response.status) for e in done] == [(ref, 481)]
    assert dl.pending()["deferred"] == 0


def test_second_refer_in_a_dialog_uses_event_id() -> None:
    """RFC 3515 §2.4.6: later REFERs in one dialog are told apart by ``id=<CSeq>``."""
    dl = layer()
    did, _ = answered(dl)
    events = []
    for cseq in (2, 3):
        refer = req(
            "REFER",
            cseq=cseq,
            to_tag=did.local_tag,
            branch=f"z9hG4bKr{cseq}",
            headers=[("Refer-To", "<sip:carol@127.0.0.1>")],
        )
        dl.on_request(refer, f"r{cseq}", 1.0)
        (event,) = dl.take_events()
        assert isinstance(event, ReferReceived)
        events.append(dl.accept_refer(event.ref, now=1.0).event)
    assert events == ["refer", "refer;id=3"]


def test_extra_methods_reach_the_tu_inside_and_outside_dialogs() -> None:
    cfg = DialogConfig(
        contact="sip:b@127.0.0.1", via_host="127.0.0.1", via_port=1, extra_methods=("MESSAGE",)
    )
    dl = DialogLayer(cfg, rng=random.Random(0))
    dl.on_request(req("MESSAGE", branch="z9hG4bKm1", body=b"hi", content_type="text/plain"), "m", 0)
    (outside,) = dl.take_events()
    assert isinstance(outside, RequestReceived)
    assert outside.dialog_id is None
    dl.respond(outside.ref, 200, now=0.0)
    assert [r.status for r in responses(dl)] == [200]
    did, _ = answered(dl)
    inside = req("MESSAGE", cseq=2, to_tag=did.local_tag, branch="z9hG4bKm2", body=b"yo")
    dl.on_request(inside, "m2", 1.0)
    (event,) = dl.take_events()
    assert isinstance(event, RequestReceived)
    assert event.dialog_id == did


def test_held_back_bye_keeps_its_headers() -> None:
    dl = layer()
    did, _ = answered(dl)
    dl.bye(did, headers=[("Reason", "Q.850;cause=16")], now=0.1)
    dl.on_request(req("ACK", to_tag=did.local_tag, branch="z9hG4bKack"), None, 0.2)
    (bye,) = dl.take_actions()
    assert isinstance(bye, SendRequest)
    assert bye.request.headers.get("Reason") == "Q.850;cause=16"


def test_deadlines_of_many_calls_follow_only_the_unacknowledged_2xx() -> None:
    """next_deadline/handle_timers see only live 2xx retransmissions among many calls."""
    dl = layer(own_session_timer=False)
    for i in range(300):
        invite = req(
            "INVITE", branch=f"z9hG4bK{i}", body=b"v=0\r\n", content_type="application/sdp"
        )
        dl.on_request(invite.with_header("Call-ID", f"call-{i}"), f"inv{i}", i / 100)
        (incoming,) = dl.take_events()
        assert isinstance(incoming, IncomingInvite)
        dl.respond(incoming.ref, 200, body=b"v=0\r\n", now=i / 100)
        did = incoming.dialog_id
        if i != 150:
            ack = req("ACK", to_tag=did.local_tag, branch=f"z9hG4bKack{i}")
            dl.on_request(ack.with_header("Call-ID", did.call_id), None, i / 100)
        assert dl.next_deadline() == (None if i < 150 else pytest.approx(2.0))
        dl.take_events()
    dl.take_actions()
    assert dl.pending()["deadlines"] < 150  # entries of acknowledged calls are dropped
    dl.handle_timers(2.0)
    assert [a.server for a in dl.take_actions() if isinstance(a, SendResponse)] == ["inv150"]
    assert dl.next_deadline() == pytest.approx(2.0 + 1.0)


@pytest.mark.parametrize(
    ("uri", "record_route", "contact", "secure"),
    [
        ("sip:bob@127.0.0.1", None, "<sip:a@127.0.0.1>", False),
        ("SIPS:bob@127.0.0.1", None, "<sip:a@127.0.0.1>", True),
        ("sip:bob@127.0.0.1", None, '"A" <SIPS:a@127.0.0.1>', True),
        ("sip:bob@127.0.0.1", "<sips:p@127.0.0.1;lr>, <sip:q@127.0.0.1;lr>", "<sip:a@h>", True),
        # RFC 3261 §12.1.1: with a Record-Route, its top value decides, not the Contact.
        ("sip:bob@127.0.0.1", "<sip:p@127.0.0.1;lr>", "<sips:a@127.0.0.1>", False),
        ("sip:bob@127.0.0.1", "<sip:p@127.0.0.1;lr>, <sips:q@127.0.0.1;lr>", "<sip:a@h>", False),
        # "sips:" in a parameter is not a SIPS URI: the parse decides.
        ("sip:bob@127.0.0.1", None, "<sip:a@127.0.0.1;x=sips:y>", False),
        ("sip:bob@127.0.0.1", None, None, False),
    ],
)
def test_is_secure_request_reads_the_uri_rfc_3261_names(
    uri: str, record_route: str | None, contact: str | None, secure: bool
) -> None:
    """The text pre-filter gives the answer the full URI parse gives (RFC 3261 §12.1.1)."""
    lines = [
        f"INVITE {uri} SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKsec",
        "From: <sip:a@127.0.0.1>;tag=f",
        "To: <sip:bob@127.0.0.1>",
        "Call-ID: sec",
        "CSeq: 1 INVITE",
    ]
    if record_route is not None:
        lines.append(f"Record-Route: {record_route}")
    if contact is not None:
        lines.append(f"Contact: {contact}")
    request = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(request, Request)
    assert is_secure_request(request) is secure
