"""Unit tests of the dialog layer's collaborators, each alone through its public methods."""

from __future__ import annotations

import random
from collections import Counter

import pytest

import rvoip_dialog_core
from rvoip_dialog_core import (
    Dialog,
    DialogConfig,
    DialogEarly,
    DialogId,
    DialogTerminated,
    DialogUsageError,
    IncomingInvite,
    InviteFailed,
    SendAck,
    SendRequest,
    SendResponse,
    TerminationReason,
)
from rvoip_dialog_core._client import ClientRequests
from rvoip_dialog_core._outbox import Outbox
from rvoip_dialog_core._records import ClientRequest, ReferSubscription
from rvoip_dialog_core._refer import ReferSubscriptions
from rvoip_dialog_core._session_timer import SessionTimer, SessionTimers
from rvoip_dialog_core._store import DialogStore
from rvoip_dialog_core._timeline import Timeline
from rvoip_dialog_core._uac import UacInvites
from rvoip_dialog_core._uas import UasRequests
from rvoip_sip_core import Request, make_request, make_response, parse_uri

CONFIG = DialogConfig(contact="sip:bob@127.0.0.1:5070", via_host="127.0.0.1", via_port=5070)


class Hooks:
    """What a collaborator asks of the façade, recorded."""

    def __init__(self, store: DialogStore) -> None:
        self.store = store
        self.ended: list[tuple[DialogId, TerminationReason, int | None]] = []
        self.byes: list[tuple[DialogId, TerminationReason]] = []
        self.busy = False
        self.acking = False
        self.ref = 0

    def end_dialog(
        self, dialog: Dialog, reason: TerminationReason, status: int | None = None
    ) -> None:
        self.ended.append((dialog.id, reason, status))
        self.store.remove(dialog)

    def send_bye(
        self,
        dialog: Dialog,
        reason: TerminationReason,
        ref: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.byes.append((dialog.id, reason))
        self.end_dialog(dialog, reason)

    def invite_in_progress(self, dialog_id: DialogId) -> bool:
        return self.busy

    def awaiting_ack(self, dialog_id: DialogId) -> bool:
        return self.acking

    def new_ref(self) -> int:
        self.ref += 1
        return self.ref

    def event_request(self, request: Request, server: object, now: float) -> bool:
        return False


class Parts:
    """One set of collaborators wired as the façade wires them."""

    def __init__(self, config: DialogConfig = CONFIG) -> None:
        self.rng = random.Random(4)
        self.stats: Counter[str] = Counter()
        self.out = Outbox()
        self.timeline = Timeline()
        self.store = DialogStore()
        self.timers = SessionTimers(config, self.timeline)
        self.hooks = Hooks(self.store)
        args = (config, self.rng, self.stats, self.out, self.store, self.timeline, self.timers)
        self.client = ClientRequests(*args, self.hooks)
        self.uas = UasRequests(*args, self.client, self.hooks)
        self.uac = UacInvites(*args, self.client, self.hooks)


def invite_request(branch: str = "z9hG4bKc1", extra: tuple[tuple[str, str], ...] = ()) -> Request:
    return make_request(
        "INVITE",
        parse_uri("sip:bob@127.0.0.1:5070"),
        from_="<sip:alice@127.0.0.1>;tag=a1",
        to="<sip:bob@127.0.0.1>",
        call_id="unit-1",
        cseq=1,
        via=f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch}",
        contact="<sip:alice@127.0.0.1:5060>",
        headers=list(extra),
    )


# --- Outbox ---------------------------------------------------------------------------------


def test_outbox_keeps_order_and_take_forgets() -> None:
    out = Outbox()
    request = invite_request()
    out.send(SendRequest(request))
    out.send(SendAck(request))
    out.emit(DialogTerminated(DialogId("c", "l", "r"), TerminationReason.LOCAL_BYE, None))
    taken = out.take_actions()
    assert [type(a) for a in taken] == [SendRequest, SendAck]
    assert out.take_actions() == []
    assert len(out.take_events()) == 1
    # A take hands the list over: what is queued next goes to a fresh one.
    out.send(SendRequest(request))
    assert len(out.take_actions()) == 1
    assert len(taken) == 2


# --- Timeline -------------------------------------------------------------------------------


def test_timeline_reports_only_deadlines_earlier_than_the_last_answer() -> None:
    timeline = Timeline()
    a, b = object(), object()
    assert timeline.deadline_moved()  # nothing asked yet: any deadline is news
    timeline.set(a, 10.0)
    assert timeline.next() == 10.0
    assert not timeline.deadline_moved()
    timeline.set(b, 20.0)  # later than the armed 10: no need to re-arm
    assert not timeline.deadline_moved()
    timeline.set(b, 5.0)  # earlier: re-arm
    assert timeline.deadline_moved()
    assert timeline.next() == 5.0
    timeline.cancel(b)
    assert timeline.next() == 10.0
    assert timeline.pop_due(10.0) == [a]
    assert timeline.next() is None
    assert len(timeline) == 0


# --- DialogStore ----------------------------------------------------------------------------


def test_store_finds_dialogs_by_id_and_call_id() -> None:
    store = DialogStore()
    request = invite_request()
    dialog = Dialog.from_uas(request, "b1", dialog_id=DialogId("unit-1", "b1", "a1"))
    store.add(dialog)
    assert store.get(dialog.id) is dialog
    assert store.require(dialog.id) is dialog
    assert store.holds(dialog)
    assert store.of_call_id("unit-1") == [dialog]
    assert store.of_leg(dialog.id.leg) == [dialog]
    assert dialog.id in store
    store.remove(dialog)
    assert len(store) == 0
    with pytest.raises(DialogUsageError):
        store.require(dialog.id)


# --- SessionTimers ----------------------------------------------------------------------------


def test_session_timers_own_timer_and_its_deadline() -> None:
    timeline = Timeline()
    timers = SessionTimers(CONFIG, timeline)
    headers, negotiated = timers.answer(invite_request(), initial=True)
    assert headers == [("Session-Expires", "1800;refresher=uas")]
    assert negotiated == (1800, "uas")
    did = DialogId("c", "l", "r")
    timers.start(did, 1800, True, 0.0, own=True)
    assert timeline.next() == 900.0
    (timer,) = [k for k in timeline.pop_due(900.0) if isinstance(k, SessionTimer)]
    assert timers.fire(timer)
    # Waits for the refresh's 2xx until the session expires (RFC 4028 §10).
    assert (timer.refreshing, timer.due, timeline.next()) == (True, 1768.0, 1768.0)
    # Not initial and no own timer: nothing added.
    assert timers.answer(invite_request(), initial=False)[1] is None
    timers.stop(did)
    assert len(timers) == 0


# --- ClientRequests ---------------------------------------------------------------------------


def test_client_requests_match_complete_and_expire() -> None:
    parts = Parts()
    request = invite_request()
    creq = ClientRequest(ref=1, request=request, dialog_id=None)
    parts.client.send(creq)
    assert [type(a) for a in parts.out.take_actions()] == [SendRequest]
    ok = make_response(request, 200, to_tag="b1")
    assert parts.client.match(ok) is creq
    parts.client.complete(creq, now=0.0)
    assert parts.client.open(request) is None
    assert parts.client.match(ok) is creq  # completed: still absorbs retransmissions
    assert parts.timeline.next() == 64 * CONFIG.t1
    (key,) = parts.timeline.pop_due(64 * CONFIG.t1)
    assert key is creq
    parts.client.on_deadline(creq, 64 * CONFIG.t1)
    assert parts.client.match(ok) is None
    assert sum(parts.client.counts().values()) == 0


def test_client_requests_send_request_refuses_dialog_methods() -> None:
    parts = Parts()
    with pytest.raises(DialogUsageError):
        parts.client.send_request("BYE", "sip:bob@127.0.0.1", from_="sip:a@h")
    ref = parts.client.send_request("OPTIONS", "sip:bob@127.0.0.1", from_="sip:a@h")
    (action,) = parts.out.take_actions()
    assert isinstance(action, SendRequest)
    assert action.request.method == "OPTIONS"
    assert ref == parts.hooks.ref


# --- UasRequests ----------------------------------------------------------------------------


def test_uas_requests_answer_and_retransmit_until_ack() -> None:
    parts = Parts()
    parts.uas.on_request(invite_request(), "srv", 0.0)
    (incoming,) = parts.out.take_events()
    assert isinstance(incoming, IncomingInvite)
    parts.uas.respond(incoming.ref, 200, now=0.0)
    (sent,) = parts.out.take_actions()
    assert isinstance(sent, SendResponse)
    assert parts.uas.awaiting_ack(incoming.dialog_id) is not None
    assert parts.hooks.new_ref() > 0
    # RFC 3261 §13.3.1.4: retransmitted at T1 until the ACK.
    (key,) = parts.timeline.pop_due(CONFIG.t1)
    parts.uas.on_deadline(key, CONFIG.t1)  # type: ignore[arg-type]
    (again,) = parts.out.take_actions()
    assert isinstance(again, SendResponse)
    assert again.response is sent.response
    assert parts.uas.counts()["uas_invites"] == 1


def test_uas_requests_reject_what_they_cannot_act_on() -> None:
    parts = Parts()
    bad = invite_request(extra=(("Require", "foo"),))
    parts.uas.on_request(bad, "srv", 0.0)
    (action,) = parts.out.take_actions()
    assert isinstance(action, SendResponse)
    assert action.response.status == 420
    assert parts.out.take_events() == []


# --- UacInvites -----------------------------------------------------------------------------


def test_uac_invites_early_dialog_then_failure() -> None:
    parts = Parts()
    leg = parts.uac.invite(
        "sip:bob@127.0.0.1:5070",
        from_="sip:alice@127.0.0.1",
        to=None,
        body=b"",
        content_type=None,
        headers=(),
        route=(),
        call_id=None,
        tag=None,
        cseq=None,
        defer_ack=False,
    )
    (action,) = parts.out.take_actions()
    assert isinstance(action, SendRequest)
    invite = action.request
    ringing = make_response(invite, 180, to_tag="b1")
    creq = parts.client.match(ringing)
    assert creq is not None
    assert creq.leg == leg
    parts.uac.on_response(creq, ringing, 0.0)
    early = [e for e in parts.out.take_events() if isinstance(e, DialogEarly)]
    assert len(early) == 1
    assert len(parts.store) == 1
    parts.uac.on_response(creq, make_response(invite, 486, to_tag="b1"), 1.0)
    assert [e for e in parts.out.take_events() if isinstance(e, InviteFailed)]
    assert [reason for _, reason, _ in parts.hooks.ended] == [TerminationReason.REJECTED]
    assert sum(parts.uac.counts().values()) == 0


# --- ReferSubscriptions ---------------------------------------------------------------------


def test_refer_subscriptions_refuse_what_is_not_a_pending_refer() -> None:
    parts = Parts()
    refers = ReferSubscriptions(
        CONFIG, parts.rng, parts.store, parts.uas, parts.client, parts.hooks.new_ref
    )
    with pytest.raises(DialogUsageError):
        refers.accept(42, lambda ref, status, reason: make_response(invite_request(), status), 0.0)
    sub = ReferSubscription(DialogId("c", "l", "r"), "refer", terminated=True)
    with pytest.raises(DialogUsageError):
        refers.notify(sub, 200, "OK")


# --- the public surface ---------------------------------------------------------------------


def test_internal_names_stay_importable_for_one_release() -> None:
    """Names moved out of ``__all__`` still import from the top level (aliases)."""
    for name in ("DIALOG_UAC", "DIALOG_UAS", "Trigger", "transition", "make_via", "next_hop"):
        assert name not in rvoip_dialog_core.__all__
        assert getattr(rvoip_dialog_core, name) is getattr(rvoip_dialog_core.rules, name)
