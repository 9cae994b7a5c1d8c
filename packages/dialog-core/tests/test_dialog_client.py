"""The caller half of the dialog layer, fed responses directly (no transaction layer)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_dialog_core import (
    DialogConfig,
    DialogConfirmed,
    DialogEarly,
    DialogId,
    DialogLayer,
    DialogTerminated,
    DialogUsageError,
    GlareRetryScheduled,
    InviteFailed,
    InviteProgress,
    LegId,
    ReInviteReceived,
    ResponseForRequest,
    SendAck,
    SendRequest,
    TerminationReason,
)
from rvoip_dialog_core.rules import glare_delay
from rvoip_sip_core import Request, Response, make_request, make_response, parse_uri

CONFIG = DialogConfig(contact="sip:alice@127.0.0.1:5060", via_host="127.0.0.1", via_port=5060)


def start(seed: int = 1) -> tuple[DialogLayer, LegId, Request]:
    dl = DialogLayer(CONFIG, rng=random.Random(seed))
    leg = dl.invite("sip:bob@127.0.0.1:5070", from_="sip:alice@127.0.0.1", body=b"v=0\r\n", now=0.0)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    return dl, leg, action.request


def reply(
    invite: Request, status: int, tag: str | None, *, contact: str = "sip:bob@127.0.0.1:5070"
) -> Response:
    headers = [("Contact", f"<{contact}>")] if status > 100 else []
    return make_response(invite, status, to_tag=tag, headers=headers)


def test_initial_invite_headers() -> None:
    _, leg, invite = start()
    assert invite.method == "INVITE"
    assert invite.from_.tag == leg.local_tag
    assert invite.call_id == leg.call_id
    assert invite.to.tag is None
    assert invite.contacts[0].uri is not None
    assert "INVITE" in (invite.headers.get("Allow") or "")
    assert "Supported" in invite.headers
    assert invite.content_type is not None
    assert invite.content_type.subtype == "sdp"
    assert invite.top_via.branch is not None
    assert invite.top_via.branch.startswith("z9hG4bK")


def test_ringing_then_ok_acks_and_confirms() -> None:
    dl, leg, invite = start()
    dl.on_response(reply(invite, 100, None), 0.1)
    assert dl.take_events() == []
    dl.on_response(reply(invite, 180, "b1"), 0.2)
    events = dl.take_events()
    did = DialogId(leg.call_id, leg.local_tag, "b1")
    assert isinstance(events[0], DialogEarly)
    assert events[0].dialog_id == did
    assert isinstance(events[1], InviteProgress)
    assert events[1].dialog_id == did
    ok = reply(invite, 200, "b1", contact="sip:bob@127.0.0.1:5071")
    dl.on_response(ok, 1.0)
    (ack_action,) = dl.take_actions()
    assert isinstance(ack_action, SendAck)
    ack = ack_action.request
    # RFC 3261 §13.2.2.4: ACK to the 2xx's Contact, INVITE's CSeq number, new branch.
    assert ack.method == "ACK"
    assert str(ack.uri) == "sip:bob@127.0.0.1:5071"
    assert ack.cseq.seq == invite.cseq.seq
    assert ack.cseq.method == "ACK"
    assert ack.top_via.branch != invite.top_via.branch
    assert [type(e) for e in dl.take_events()] == [DialogConfirmed]
    # Every retransmission of the 2xx gets the same ACK again.
    dl.on_response(ok, 1.5)
    assert dl.take_actions() == [SendAck(ack)]
    # After 64*T1 the leg is forgotten.
    deadline = dl.next_deadline()
    assert deadline == pytest.approx(1.0 + 32.0)
    assert deadline is not None
    dl.handle_timers(deadline)
    assert dl.pending()["client"] == 0
    assert dl.pending()["uac_invites"] == 0
    assert len(dl) == 1


def test_forking_first_2xx_wins_later_2xx_acked_and_byed() -> None:
    dl, leg, invite = start()
    dl.on_response(reply(invite, 180, "x"), 0.1)
    dl.on_response(reply(invite, 180, "y"), 0.1)
    assert len(dl) == 2
    dl.take_events()
    dl.on_response(reply(invite, 200, "x"), 0.5)
    assert [type(a) for a in dl.take_actions()] == [SendAck]
    events = dl.take_events()
    assert isinstance(events[0], DialogConfirmed)
    assert events[0].dialog_id.remote_tag == "x"
    assert events[1] == DialogTerminated(
        DialogId(leg.call_id, leg.local_tag, "y"), TerminationReason.FORK_LOST
    )
    dl.on_response(reply(invite, 200, "y", contact="sip:bob2@127.0.0.1:5072"), 0.6)
    actions = dl.take_actions()
    assert [type(a) for a in actions] == [SendAck, SendRequest]
    assert isinstance(actions[1], SendRequest)
    bye = actions[1].request
    assert bye.method == "BYE"
    assert bye.to.tag == "y"
    assert str(bye.uri) == "sip:bob2@127.0.0.1:5072"
    assert dl.take_events() == []
    # A retransmission of the losing 2xx is ACKed again, not BYEd again.
    dl.on_response(reply(invite, 200, "y", contact="sip:bob2@127.0.0.1:5072"), 0.7)
    assert [type(a) for a in dl.take_actions()] == [SendAck]
    assert len(dl) == 1


def test_cancel_waits_for_provisional_and_copies_invite() -> None:
    dl, leg, invite = start()
    dl.cancel(leg, now=0.1)
    assert dl.take_actions() == []
    dl.on_response(reply(invite, 180, "b1"), 0.2)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    cancel = action.request
    # RFC 3261 §9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via branch.
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    assert cancel.call_id == invite.call_id
    assert cancel.headers.get("From") == invite.headers.get("From")
    assert cancel.headers.get("To") == invite.headers.get("To")
    assert (cancel.cseq.seq, cancel.cseq.method) == (invite.cseq.seq, "CANCEL")
    assert cancel.top_via.branch == invite.top_via.branch
    dl.on_response(make_response(cancel, 200), 0.3)
    dl.take_events()
    dl.on_response(reply(invite, 487, "b1"), 0.3)
    events = dl.take_events()
    assert events[0] == DialogTerminated(
        DialogId(leg.call_id, leg.local_tag, "b1"), TerminationReason.CANCELLED, 487
    )
    assert isinstance(events[1], InviteFailed)
    assert events[1].response.status == 487
    assert sum(dl.pending().values()) == 0


def test_2xx_crossing_cancel_is_acked_and_byed() -> None:
    dl, leg, invite = start()
    dl.on_response(reply(invite, 180, "b1"), 0.1)
    dl.cancel(leg, now=0.2)
    dl.take_actions()
    dl.take_events()
    dl.on_response(reply(invite, 200, "b1"), 0.3)
    assert [
        a.request.method for a in dl.take_actions() if isinstance(a, SendAck | SendRequest)
    ] == [
        "ACK",
        "BYE",
    ]
    events = dl.take_events()
    assert isinstance(events[-1], InviteFailed)
    assert events[-1].response.status == 487
    ended = DialogId(leg.call_id, leg.local_tag, "b1")
    assert DialogTerminated(ended, TerminationReason.CANCELLED) in events
    assert len(dl) == 0
    assert dl.stats["2xx_fork_byed"] == 1


def test_final_error_fails_invite_and_timeout_gives_408() -> None:
    dl, leg, invite = start()
    dl.on_response(reply(invite, 486, "b1"), 0.1)
    (event,) = dl.take_events()
    assert event == InviteFailed(leg, reply(invite, 486, "b1"))
    dl2, leg2, invite2 = start(2)
    dl2.on_timeout(invite2, 32.0)
    (event2,) = dl2.take_events()
    assert isinstance(event2, InviteFailed)
    assert event2.response.status == 408
    with pytest.raises(DialogUsageError):
        dl2.cancel(leg2, now=33.0)


def confirmed(seed: int = 1) -> tuple[DialogLayer, DialogId]:
    dl, leg, invite = start(seed)
    dl.on_response(reply(invite, 200, "b1"), 0.5)
    dl.take_actions()
    dl.take_events()
    return dl, DialogId(leg.call_id, leg.local_tag, "b1")


def test_reinvite_491_retried_after_glare_delay() -> None:
    dl, did = confirmed()
    ref = dl.reinvite(did, b"v=0\r\n", now=1.0)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    first = action.request
    dl.on_response(make_response(first, 491), 1.1)
    (event,) = dl.take_events()
    assert isinstance(event, GlareRetryScheduled)
    assert event.ref == ref
    # RFC 3261 §14.1: we own the Call-ID (we sent the INVITE): 2.1–4 s.
    assert 2.1 <= event.at - 1.1 <= 4.0
    assert dl.next_deadline() == event.at
    dl.handle_timers(event.at - 0.01)
    assert dl.take_actions() == []
    dl.handle_timers(event.at)
    (retry,) = dl.take_actions()
    assert isinstance(retry, SendRequest)
    assert retry.request.method == "INVITE"
    assert retry.request.cseq.seq == first.cseq.seq + 1
    assert retry.request.body == first.body
    assert retry.request.top_via.branch != first.top_via.branch
    ok = make_response(retry.request, 200, headers=[("Contact", "<sip:bob@127.0.0.1:5099>")])
    dl.on_response(ok, event.at + 0.1)
    (ack,) = dl.take_actions()
    assert isinstance(ack, SendAck)
    assert ack.request.cseq.seq == retry.request.cseq.seq
    (done,) = dl.take_events()
    assert isinstance(done, ResponseForRequest)
    assert done.ref == ref
    assert done.response.status == 200
    dialog = dl.dialog(did)
    assert dialog is not None
    assert str(dialog.remote_target) == "sip:bob@127.0.0.1:5099"


@given(st.integers(min_value=0, max_value=2**32), st.booleans())
def test_glare_delay_ranges(seed: int, owner: bool) -> None:
    delay = glare_delay(owner, random.Random(seed))
    assert (2.1 <= delay <= 4.0) if owner else (0.0 <= delay <= 2.0)
    assert round(delay * 100) == pytest.approx(delay * 100)


def test_bye_ends_dialog_immediately_and_reports_response() -> None:
    dl, did = confirmed()
    ref = dl.bye(did, now=2.0)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    assert action.request.method == "BYE"
    assert dl.take_events() == [DialogTerminated(did, TerminationReason.LOCAL_BYE)]
    assert len(dl) == 0
    dl.on_response(make_response(action.request, 200), 2.1)
    (event,) = dl.take_events()
    assert isinstance(event, ResponseForRequest)
    assert event.ref == ref
    with pytest.raises(DialogUsageError):
        dl.bye(did, now=3.0)


@pytest.mark.parametrize(
    ("status", "reason"), [(481, TerminationReason.NO_DIALOG), (408, TerminationReason.TIMEOUT)]
)
def test_481_or_408_to_in_dialog_request_ends_dialog(
    status: int, reason: TerminationReason
) -> None:
    dl, did = confirmed()
    dl.info(did, b"Signal=1\r\n", "application/dtmf-relay", now=2.0)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    if status == 408:
        dl.on_timeout(action.request, 34.0)
    else:
        dl.on_response(make_response(action.request, status), 2.1)
    events = dl.take_events()
    assert isinstance(events[0], ResponseForRequest)
    assert events[0].response.status == status
    assert events[1] == DialogTerminated(did, reason, status)


def test_refer_carries_refer_to() -> None:
    dl, did = confirmed()
    dl.refer(did, "sip:carol@127.0.0.1:5080", referred_by="sip:alice@127.0.0.1", now=2.0)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    assert action.request.headers.get("Refer-To") == "<sip:carol@127.0.0.1:5080>"
    assert action.request.headers.get("Referred-By") == "<sip:alice@127.0.0.1>"


def test_reinvite_needs_confirmed_dialog_and_ack_cancel_not_sent_by_tu() -> None:
    dl, leg, invite = start()
    dl.on_response(reply(invite, 180, "b1"), 0.1)
    early = DialogId(leg.call_id, leg.local_tag, "b1")
    with pytest.raises(DialogUsageError):
        dl.reinvite(early, now=0.2)
    with pytest.raises(DialogUsageError):
        dl.request(early, "ACK", now=0.2)


def test_deferred_ack_carries_the_tu_answer() -> None:
    dl = DialogLayer(CONFIG, rng=random.Random(4))
    leg = dl.invite("sip:bob@127.0.0.1:5070", from_="sip:alice@127.0.0.1", defer_ack=True, now=0.0)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    invite = action.request
    assert invite.body == b""
    ok = make_response(
        invite,
        200,
        to_tag="b1",
        headers=[("Contact", "<sip:bob@127.0.0.1:5070>")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    dl.on_response(ok, 0.5)
    assert dl.take_actions() == []
    did = DialogId(leg.call_id, leg.local_tag, "b1")
    assert dl.take_events()[0] == DialogConfirmed(did, ok)
    dl.on_response(ok, 1.0)  # a retransmission while the TU prepares its answer
    assert dl.take_actions() == []
    dl.ack(did, b"v=0 answer\r\n", now=1.1)
    (ack,) = dl.take_actions()
    assert isinstance(ack, SendAck)
    assert ack.request.body == b"v=0 answer\r\n"
    assert ack.request.headers.get("Content-Type") == "application/sdp"
    dl.on_response(ok, 1.5)
    assert dl.take_actions() == [ack]
    with pytest.raises(DialogUsageError):
        dl.ack(did, now=2.0)


def test_deferred_ack_for_offerless_reinvite() -> None:
    dl, did = confirmed()
    dl.reinvite(did, defer_ack=True, now=1.0)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    dl.on_response(make_response(action.request, 200, body=b"offer"), 1.1)
    assert dl.take_actions() == []
    dl.ack(did, b"answer", now=1.2)
    (ack,) = dl.take_actions()
    assert isinstance(ack, SendAck)
    assert ack.request.cseq.seq == action.request.cseq.seq
    assert ack.request.body == b"answer"


def test_cancel_without_final_response_gives_up_after_64_t1() -> None:
    dl, leg, invite = start()
    dl.on_response(reply(invite, 180, "b1"), 0.1)
    dl.cancel(leg, now=1.0)
    dl.take_actions()
    dl.take_events()
    assert dl.next_deadline() == pytest.approx(33.0)
    dl.handle_timers(33.0)
    events = dl.take_events()
    assert isinstance(events[-1], InviteFailed)
    assert events[-1].response.status == 408
    assert sum(dl.pending().values()) == 0


def test_transport_error_fails_the_invite_with_503() -> None:
    dl, leg, invite = start()
    dl.on_transport_error(invite, 0.1)
    (event,) = dl.take_events()
    assert isinstance(event, InviteFailed)
    assert event.response.status == 503
    assert event.leg == leg


def test_out_of_dialog_request_keeps_a_given_contact() -> None:
    dl = DialogLayer(CONFIG, rng=random.Random(9))
    dl.send_request(
        "REGISTER",
        "sip:registrar.example.com",
        from_="sip:alice@example.com",
        to="sip:alice@example.com",
        headers=[("Contact", "<sip:alice@127.0.0.1:5060>;expires=60")],
        now=0.0,
    )
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    assert action.request.headers.get_all("Contact") == ["<sip:alice@127.0.0.1:5060>;expires=60"]
    with pytest.raises(DialogUsageError):
        dl.send_request("INVITE", "sip:x@127.0.0.1", from_="sip:a@b", now=0.0)


def test_cancel_and_bye_carry_extra_headers() -> None:
    """RFC 3326: a Reason on the CANCEL and on the BYE."""
    dl, leg, invite = start()
    reason = ("Reason", 'SIP;cause=200;text="Call completed elsewhere"')
    dl.cancel(leg, headers=[reason], now=0.1)
    dl.on_response(reply(invite, 180, "b1"), 0.2)
    (cancel,) = dl.take_actions()
    assert isinstance(cancel, SendRequest)
    assert cancel.request.headers.get("Reason") == reason[1]
    dl2, did = confirmed(2)
    dl2.bye(did, headers=[("Reason", "Q.850;cause=16")], now=1.0)
    (bye,) = dl2.take_actions()
    assert isinstance(bye, SendRequest)
    assert bye.request.headers.get("Reason") == "Q.850;cause=16"


def test_glare_retry_waits_for_the_peers_reinvite_to_finish() -> None:
    dl, did = confirmed()
    ref = dl.reinvite(did, b"ours", now=1.0)
    (ours,) = dl.take_actions()
    assert isinstance(ours, SendRequest)
    dl.on_response(make_response(ours.request, 491), 1.1)
    (glare,) = dl.take_events()
    assert isinstance(glare, GlareRetryScheduled)
    # Bob's re-INVITE goes first and is still unanswered when our retry is due.
    theirs = make_request(
        "INVITE",
        parse_uri("sip:alice@127.0.0.1:5060"),
        from_="<sip:bob@127.0.0.1:5070>;tag=b1",
        to=f"<sip:bob@127.0.0.1:5070>;tag={did.local_tag}",
        call_id=did.call_id,
        cseq=7,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKtheirs",
        body=b"theirs",
        content_type="application/sdp",
    )
    dl.on_request(theirs, "srv", 1.2)
    (incoming,) = dl.take_events()
    assert isinstance(incoming, ReInviteReceived)
    dl.handle_timers(glare.at)
    assert not [a for a in dl.take_actions() if isinstance(a, SendRequest)]
    assert dl.pending()["deferred"] == 1
    dl.respond(incoming.ref, 200, body=b"answer", now=glare.at + 0.1)
    ack = make_request(
        "ACK",
        parse_uri("sip:alice@127.0.0.1:5060"),
        from_="<sip:bob@127.0.0.1:5070>;tag=b1",
        to=f"<sip:bob@127.0.0.1:5070>;tag={did.local_tag}",
        call_id=did.call_id,
        cseq=7,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKack",
    )
    dl.take_actions()
    dl.on_ack(ack, glare.at + 0.2)
    (retry,) = [a for a in dl.take_actions() if isinstance(a, SendRequest)]
    assert retry.request.method == "INVITE"
    assert retry.request.body == b"ours"
    assert retry.request.headers.get_all("Allow") == ours.request.headers.get_all("Allow")
    dl.on_response(make_response(retry.request, 200), glare.at + 0.3)
    done = [e for e in dl.take_events() if isinstance(e, ResponseForRequest)]
    assert [(e.ref, e.response.status) for e in done] == [(ref, 200)]


def test_cancel_goes_out_after_100_trying() -> None:
    # RFC 3261 §9.1: any provisional response, 100 Trying included, allows the CANCEL.
    dl, leg, invite = start()
    dl.cancel(leg, now=0.1)
    assert dl.take_actions() == []
    dl.on_response(reply(invite, 100, None), 0.2)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    assert action.request.method == "CANCEL"
    dl2, leg2, invite2 = start(2)
    dl2.on_response(reply(invite2, 100, None), 0.1)
    dl2.cancel(leg2, now=0.2)
    (action2,) = dl2.take_actions()
    assert isinstance(action2, SendRequest)
    assert action2.request.method == "CANCEL"
