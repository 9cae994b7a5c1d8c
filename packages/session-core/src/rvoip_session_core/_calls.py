"""The call layer: every call's state machine, sans-IO.

Dialog events, media readings and ``now`` go in; call state, SIP answers, media commands,
session events and deadlines come out.

It holds no socket and reads no loop: time comes from the injected clock, commands go to
the SIP endpoint and the media manager it is given, and its timers (ring, decision and
defer timeouts, media inactivity, quality reports) are deadlines on one ``Deadlines`` heap
that the driver's single timer task fires (``handle_timers``). State changes follow the
table in ``_state.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import anyio

from rvoip_dialog_core import (
    AckReceived,
    AuthenticationFailed,
    ByeReceived,
    CancelReceived,
    DialogConfirmed,
    DialogEarly,
    DialogId,
    DialogTerminated,
    DialogUsageError,
    IncomingInvite,
    InfoReceived,
    InviteFailed,
    InviteProgress,
    NotifyReceived,
    ReferReceived,
    ReInviteReceived,
    RequestReceived,
    ResponseForRequest,
    ServedSubscriptionEnded,
    ServedSubscriptionRefreshed,
    SessionRefreshDue,
    SubscribeReceived,
    SubscriptionAccepted,
    SubscriptionEnded,
    SubscriptionNotified,
    TerminationReason,
    UpdateReceived,
)
from rvoip_dialog_core import CallRedirected as DialogCallRedirected
from rvoip_dialog_core import SessionRefreshed as LayerRefreshed
from rvoip_session_core._authenticator import Authenticator
from rvoip_session_core._call import Call, PendingRequest
from rvoip_session_core._driver import EventGate, SipEndpoint, media_host, not_started
from rvoip_session_core._errors import CallFailed, InvalidState, MediaError, SessionError
from rvoip_session_core._events import (
    CallEnded,
    CallEstablished,
    CallRedirected,
    DtmfReceived,
    EventHub,
    IncomingCallReceived,
    InDialogRequest,
    LazyEvent,
    MediaQualityReport,
    SessionEventType,
    SessionRefreshed,
    StateChanged,
)
from rvoip_session_core._forking import CallRouter
from rvoip_session_core._hooks import HookRunner
from rvoip_session_core._media_manager import MediaManager, signalled_over_tls
from rvoip_session_core._messages import MessageService
from rvoip_session_core._offer_answer import (
    SdpNegotiationError,
    build_answer,
    build_offer,
    negotiated,
    parse_offer,
)
from rvoip_session_core._overload import LagMonitor, overloaded
from rvoip_session_core._registry import CallRegistry
from rvoip_session_core._replaces import CallReplacements
from rvoip_session_core._settings import SessionConfig
from rvoip_session_core._state import ENDING_TRIGGERS, Trigger, next_state, parse_dtmf_info
from rvoip_session_core._subscriptions import EventSubscriptions
from rvoip_session_core._transfer import TransferService, bare_uri, phrase
from rvoip_session_core._types import (
    Accept,
    CallDirection,
    CallState,
    Challenge,
    Decision,
    Defer,
    EarlyMedia,
    Forward,
    IncomingCall,
    Reject,
    Route,
    SessionId,
    normalize_decision,
)
from rvoip_sip_core import Request, Response, SessionDescription, SessionExpires, SipParseError
from rvoip_transaction_core import Clock, Deadlines

log = logging.getLogger("rvoip_session_core")

RING_AFTER = 0.5
"""Seconds an incoming call waits for the handler's decision before a 180 is sent."""

MEDIA_TIMEOUT_REASON = 'SIP;cause=408;text="RTP timeout"'
"""RFC 3326 Reason of the BYE that ends a call whose media stopped."""

_BYE_REASONS = {
    TerminationReason.LOCAL_BYE: "local hangup",
    TerminationReason.REMOTE_BYE: "remote hangup",
}

_OPENS_MEDIA = (Accept, Defer, Route, EarlyMedia)
"""Decisions that need the call's RTP open (a tuple: ``Accept | Defer`` builds a union
per ``isinstance``)."""

_ENDING_EVENTS = frozenset({ByeReceived, CancelReceived, DialogTerminated, InviteFailed})
"""Dialog events after which a call must send no more RTP."""

SESSION_EXPIRED_REASON = "session timer expired"
"""``CallEnded`` reason of a call no session refresh kept up (RFC 4028 §10)."""

_RING, _ANSWER_BY, _MEDIA_CHECK, _QUALITY = "ring", "answer-by", "media-check", "quality"
_NO_CALL = SessionId("")

Spawn = Callable[..., object]


class CallLayer:
    """Every call's state machine, driven by dialog events and deadlines.

    Args:
        config: the coordinator's settings.
        clock: the injected clock (monotonic ``now``, wall time for ``datetime`` fields).
        registry: the call records.
        hooks: the application's handler.
        media: the media manager.
        events: the session event hub.
        rng: the coordinator's RNG (SDP session ids).
        call_gone: told when a call ended (bridges drop it).
        lag: the event-loop lag watch (overload), or None.
    """

    def __init__(
        self,
        config: SessionConfig,
        clock: Clock,
        registry: CallRegistry,
        hooks: HookRunner,
        media: MediaManager,
        events: EventHub[SessionEventType],
        rng: Any,
        call_gone: Callable[[SessionId, str], None],
        lag: LagMonitor | None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._registry = registry
        self._hooks = hooks
        self._media = media
        self._events = events
        self._rng = rng
        self._call_gone = call_gone
        self._lag = lag
        self._deadlines: Deadlines[tuple[str, SessionId]] = Deadlines()
        self._endpoint: SipEndpoint | None = None
        self._spawn: Spawn | None = None
        self._wake: Callable[[float], None] = _ignore
        self.gate = EventGate(self._handle_safe)
        self.dispatching = False
        self._idle: LazyEvent | None = None
        self._stopping = False
        self._byes: set[int] = set()  # refs of BYEs sent while stopping, until answered
        self.transfers: TransferService | None = None
        self.messages: MessageService | None = None
        """Set by the coordinator: handles REFER and NOTIFY (blind transfer)."""
        self.authenticator: Authenticator | None = config.authenticator
        """Challenges incoming INVITEs (and answers ``CallDecision.Challenge``), or None."""
        self.router: CallRouter | None = None
        """Set by the coordinator with a registrar: ``CallDecision.Route`` forks through it."""
        self.requests: Callable[[int, Request], bool] | None = None
        """Set by the coordinator: takes plain requests (REGISTER); False leaves them (501)."""
        self.replacements: CallReplacements | None = None
        """Set by the coordinator: INVITEs with Replaces (RFC 3891); None refuses them 481."""
        self.subscriptions: EventSubscriptions | None = None
        """Set by the coordinator: SUBSCRIBE/NOTIFY usages (RFC 6665)."""
        self.state_watcher: Callable[[SessionId, CallState], None] | None = None
        """Told of every call state change (the dialog event package, RFC 4235)."""
        self._refreshes: dict[int, SessionId] = {}
        """Refs of the re-INVITEs we sent as session refreshes (RFC 4028), by call."""
        self.drain_refusal: tuple[tuple[str, str], ...] | None = None
        """Set by the coordinator's ``begin_drain``: the headers of the 503 new INVITEs get."""

    # --- wiring (the driver) ---------------------------------------------------------------

    def attach(
        self, endpoint: SipEndpoint, spawn: Spawn, wake: Callable[[float], None], clock: Clock
    ) -> None:
        """Start taking events: commands go to ``endpoint``, tasks to ``spawn``.

        ``wake(when)`` is told of each deadline set (the driver's timer may sleep past it);
        ``clock`` is the running coordinator's clock.
        """
        self._endpoint, self._spawn, self._wake, self._clock = endpoint, spawn, wake, clock
        self.dispatching = True
        now = self._clock.now()
        if self.config.media_timeout is not None:
            self._set_deadline((_MEDIA_CHECK, _NO_CALL), now + self._media_check_interval())
        if self.config.quality_interval > 0:
            self._set_deadline((_QUALITY, _NO_CALL), now + self.config.quality_interval)

    def detach(self) -> None:
        """Stop taking events (the endpoint is closing)."""
        self.dispatching = False
        self.gate.held.clear()
        self._endpoint = None
        self._spawn = None
        self._wake = _ignore

    @property
    def endpoint(self) -> SipEndpoint:
        """The SIP endpoint (raises InvalidState before start)."""
        if self._endpoint is None:
            raise not_started()
        return self._endpoint

    def _start_soon(self, func: Callable[..., Any], *args: object) -> None:
        if self._spawn is None:
            raise not_started()
        self._spawn(func, *args)

    @property
    def _listened(self) -> bool:
        return bool(self._events.subscriber_count)

    def now(self) -> float:
        """The injected clock's monotonic seconds."""
        return self._clock.now()

    def wall_now(self) -> datetime:
        """The injected clock's wall time as a UTC ``datetime``."""
        return datetime.fromtimestamp(self._clock.wall(), UTC)

    # --- deadlines -------------------------------------------------------------------------

    def _set_deadline(self, key: tuple[str, SessionId], when: float) -> None:
        self._deadlines.set(key, when)
        self._wake(when)

    def next_deadline(self) -> float | None:
        """The earliest deadline of any call (None: nothing is due, ever)."""
        return self._deadlines.next()

    def handle_timers(self, now: float) -> None:
        """Fire every deadline due at ``now``."""
        for kind, sid in self._deadlines.pop_due(now):
            try:
                self._fire_deadline(kind, sid, now)
            except Exception:
                log.exception("call layer deadline %s of call %s failed", kind, sid)

    def _fire_deadline(self, kind: str, sid: SessionId, now: float) -> None:
        if kind == _MEDIA_CHECK:
            self._check_media(now)
            self._set_deadline((_MEDIA_CHECK, _NO_CALL), now + self._media_check_interval())
            return
        if kind == _QUALITY:
            self._report_quality()
            self._set_deadline((_QUALITY, _NO_CALL), now + self.config.quality_interval)
            return
        call = self._registry.find(sid)
        if call is None or call.state.is_final:
            return
        if kind == _RING:
            waiting = call.state is CallState.Initiating and call.invite_ref is not None
            if waiting and self.respond(call, 180, "Ringing"):
                self.fire(call, Trigger.RINGING, "handler still deciding")
        elif kind == _ANSWER_BY and call.invite_ref is not None and not call.answered.is_set():
            why = "no decision in time" if call.decide_scope is not None else "not answered in time"
            self.reject(call, 480, "Temporarily Unavailable", why)

    # --- state -----------------------------------------------------------------------------

    def fire(self, call: Call, trigger: Trigger, reason: str | None = None) -> bool:
        """Apply ``trigger`` to a live call by the table; False when it does not apply."""
        if trigger in ENDING_TRIGGERS:
            self.finish(call, trigger, reason or trigger.value)
            return True
        old = call.state
        new = next_state(old, trigger)
        if new is None:
            log.debug("call %s: %s ignored in %s", call.id, trigger.name, old.name)
            return False
        if new is old:
            return True
        call.state = new
        if new is CallState.Terminating:
            call.media.stop_sending()  # the call is ending: no RTP after our/their BYE
        self._state_changed(call.id, old, new, reason)
        return True

    def _state_changed(
        self, sid: SessionId, old: CallState, new: CallState, reason: str | None
    ) -> None:
        # hot path: no event object nor hook closure when nobody listens.
        if self._events.subscriber_count:
            self._events.publish(StateChanged(sid, old, new, reason))
        hooks = self._hooks
        if "on_call_state_changed" in hooks.wanted:
            hooks.state_changed(sid, old, new, reason)
        watcher = self.state_watcher
        if watcher is not None:
            try:
                watcher(sid, new)
            except Exception:  # a failing event package must not break the call
                log.exception("state watcher failed for call %s", sid)

    def finish(self, call: Call, trigger: Trigger, reason: str, status: int | None = None) -> None:
        """End a call: final state, release media, registry entries, deadlines and waiters."""
        if call.state.is_final:
            return
        old = call.state
        call.state = next_state(old, trigger) or CallState.Terminated
        self._state_changed(call.id, old, call.state, reason)
        call.end_reason = reason
        if status is not None:
            call.final_status = status
        call.media.close()
        registry = self._registry
        registry.retire(call)
        if self._idle is not None and not (len(registry) or self._byes):
            self._idle.set()
        if call.deadlines:
            deadlines = self._deadlines
            for kind in call.deadlines:
                deadlines.cancel((kind, call.id))
        self._call_gone(call.id, reason)
        replacements = self.replacements
        if replacements is not None and replacements.waiting:
            replacements.forget(call.id)
        self._registry.release_pending(call.id)
        if call.decide_scope is not None:
            call.decide_scope.cancel()
        call.ended.set()
        call.transfer_done.set()
        if self._events.subscriber_count:
            self._events.publish(CallEnded(call.id, reason))
        hooks = self._hooks
        if "on_call_ended" in hooks.wanted:
            hooks.call_ended(call.snapshot(), reason)

    def begin_stop(self) -> None:
        """From now on remember each BYE sent until it is answered (see ``wait_idle``)."""
        self._stopping = True

    async def wait_idle(self) -> None:
        """Wait until no call is left and every BYE sent since ``begin_stop`` is answered.

        RFC 3261 §15.1.1: the BYE's client transaction retransmits it (Timer E) until a
        final response or Timer F; ``stop()`` waits for that before closing the sockets.
        """
        if not (len(self._registry) or self._byes):
            return
        idle = self._idle = LazyEvent()
        try:
            await idle.wait()
        finally:
            self._idle = None

    def _call_deadline(self, call: Call, kind: str, when: float) -> None:
        if kind not in call.deadlines:
            call.deadlines += (kind,)
        self._set_deadline((kind, call.id), when)

    # --- dialog events: handled in the endpoint's callback, in order ----------------------

    def on_event(self, event: object) -> None:
        """The endpoint's event callback (inline: no queue, no task hop)."""
        # hot path: commands issued from here are drained by the endpoint's flush once we
        # return; events arriving while one of our commands runs, or while held events are
        # handled, wait their turn in the gate.
        if not self.dispatching:
            return
        if type(event) in _ENDING_EVENTS:
            # RTP stops at once, whatever happens to the event next (held back, or handled
            # later): no RTP after a BYE or CANCEL.
            self._stop_media_now(event)
        gate = self.gate  # hot path: EventGate.offer inlined
        if gate.depth or gate.draining:
            gate.held.append(event)
        else:
            gate.run(event)

    def _handle_safe(self, event: object) -> None:
        try:
            self.handle(event)
        except Exception:
            # No event (a hostile message's, or one a handler choked on) may escape.
            log.exception("handling dialog event %s failed", type(event).__name__)

    def _stop_media_now(self, event: object) -> None:
        call: Call | None = None
        match event:
            case DialogTerminated(reason=TerminationReason.REDIRECTED):
                return  # the call goes on to the next target (see _early_dialog_redirected)
            case (
                ByeReceived(dialog_id=did)
                | CancelReceived(dialog_id=did)
                | DialogTerminated(dialog_id=did)
            ):
                call = self._registry.for_dialog(did)
                if call is not None and call.dialog_id not in (None, did):
                    call = None  # another fork of the same INVITE ended
            case InviteFailed(leg=leg):
                call = self._registry.for_leg(leg)
        if call is not None:
            call.media.stop_sending()

    def handle(self, event: object) -> None:
        """Handle one dialog event (synchronously, in order)."""
        # hot path: the five events of every call go to their method by one dict lookup
        # on the exact type, instead of down the chain of class patterns below (the chain
        # still serves every other event, and subclasses of these).
        hot = _HOT_EVENTS.get(type(event))
        if hot is not None:
            hot(self, event)
            return
        registry = self._registry
        match event:
            case IncomingInvite():
                self._incoming_invite(event)
            case InviteProgress(leg=leg, dialog_id=did, response=response):
                call = registry.for_leg(leg)
                if call is not None:
                    self._progress(call, did, response)
            case DialogEarly(dialog_id=did):
                call = registry.for_dialog(did)
                if call is not None and call.dialog_id is None:
                    registry.bind_dialog(call, did)
            case DialogConfirmed():
                self._on_confirmed(event)
            case DialogCallRedirected(leg=leg, target=target, response=response):
                # RFC 3261 §8.1.3.4: the dialog layer follows the 3xx; the app is told where.
                call = registry.for_leg(leg)
                if call is not None:
                    call.target = str(target)
                    self._events.publish(CallRedirected(call.id, call.target, response.status))
            case InviteFailed(leg=leg, response=response):
                call = registry.for_leg(leg)
                if call is not None:
                    self._invite_failed(call, response)
            case AuthenticationFailed(leg=leg, reason=reason) if leg is not None:
                # Comes just before the INVITE's InviteFailed: keep the reason for it.
                call = registry.for_leg(leg)
                if call is not None:
                    call.auth_failure = reason
            case AuthenticationFailed(ref=ref, reason=reason):
                # A request outside the INVITE (REGISTER, BYE …): its ResponseForRequest
                # follows; the waiter reads the reason.
                pending = registry.pending(ref)
                if pending is not None:
                    pending.auth_failure = reason
            case DialogTerminated():
                self._on_terminated(event)
            case ByeReceived():
                self._on_bye(event)
            case CancelReceived(dialog_id=did):
                call = registry.for_dialog(did)
                if call is not None:
                    call.invite_ref = None
                    self.finish(call, Trigger.CANCELLED, "caller cancelled", 487)
            case AckReceived():
                self._on_ack(event)
            case ReInviteReceived(ref=ref, dialog_id=did, offer=offer, request=request):
                call = registry.for_dialog(did)
                if call is not None:
                    self._in_dialog_request(call.id, request)
                self._reoffer(ref, did, offer)
            case UpdateReceived(ref=ref, dialog_id=did, offer=offer, request=request):
                call = registry.for_dialog(did)
                if call is not None:
                    self._in_dialog_request(call.id, request)
                self._reoffer(ref, did, offer)
            case ReferReceived(ref=ref, dialog_id=did, request=request, refer_to=refer_to):
                call = registry.for_dialog(did)
                if call is None or self.transfers is None:
                    self.endpoint.respond(ref, 481, "Call/Transaction Does Not Exist")
                else:
                    self.transfers.refer_received(call, ref, request, refer_to)
            case NotifyReceived():
                call = registry.for_dialog(event.dialog_id)
                if call is not None and event.event.startswith("refer") and self.transfers:
                    self.transfers.notify_received(call, event)
            case InfoReceived(dialog_id=did, request=request):
                call = registry.for_dialog(did)
                if call is not None:
                    self._in_dialog_request(call.id, request)
                    ctype = request.headers.get("Content-Type") or ""
                    parsed = parse_dtmf_info(ctype, request.body)
                    if parsed is not None:
                        self.dtmf(call.id, parsed[0], parsed[1], "info")
            case SessionRefreshDue(dialog_id=did):
                call = registry.for_dialog(did)
                if call is not None:
                    self._refresh_session(call, did)
            case LayerRefreshed(dialog_id=did, interval=interval):
                call = registry.for_dialog(did)
                if call is not None:
                    self._refreshed(call, "UPDATE", interval)
            case ResponseForRequest(ref=ref, response=response) if ref in self._refreshes:
                self._refresh_answered(self._refreshes.pop(ref), response)
            case ResponseForRequest(ref=ref, response=response):
                pending = registry.pending(ref)
                if pending is not None:
                    pending.response = response
                    pending.done.set()
                if self._byes:
                    self._byes.discard(ref)
                    if self._idle is not None and not (self._byes or len(registry)):
                        self._idle.set()
            case RequestReceived(ref=ref, dialog_id=did, request=request):
                if request.method == "MESSAGE" and self.messages is not None:
                    self.messages.received(ref, did, request)
                elif self.requests is None or not self.requests(ref, request):
                    self.endpoint.respond(ref, 501, "Not Implemented")
            case (
                SubscriptionAccepted()
                | SubscriptionNotified()
                | SubscriptionEnded()
                | SubscribeReceived()
                | ServedSubscriptionEnded()
                | ServedSubscriptionRefreshed()
            ):
                if isinstance(event, SubscribeReceived) and not self._subscribe_allowed(event):
                    return
                if self.subscriptions is not None:
                    self.subscriptions.handle(event)
            case _:
                pass

    def _subscribe_allowed(self, event: SubscribeReceived) -> bool:
        """RFC 6665 §4.2.1.2 / RFC 3261 §22: challenge a SUBSCRIBE when an authenticator is set.

        False when it was answered here (401/407 with a challenge, 403, 400).
        """
        auth = self.authenticator
        if auth is None:
            return True
        result = auth.check(event.request, self.now())
        if result.proceed:
            return True
        self.endpoint.reject_subscription(
            event.ref, result.status, result.reason, headers=result.headers
        )
        return False

    def _on_confirmed(self, event: DialogConfirmed) -> None:
        call = self._registry.for_dialog(event.dialog_id)
        if call is not None:
            self._confirmed(call, event.dialog_id, event.message)

    def _on_terminated(self, event: DialogTerminated) -> None:
        did = event.dialog_id
        call = self._registry.for_dialog(did)
        if call is None:
            return
        if event.reason is TerminationReason.REDIRECTED:
            self._early_dialog_redirected(call, did)
        elif call.dialog_id == did:
            self._dialog_ended(call, event.reason, event.status)

    def _early_dialog_redirected(self, call: Call, did: DialogId) -> None:
        """An early dialog ended with the 3xx the call now follows (forward on no answer).

        RFC 3261 §8.1.3.4 / §12.3: the previous target's early dialog is over; the call is
        not. Unbind it, stop sending the early media it negotiated; the next target's 18x
        or 2xx negotiates afresh (``apply`` turns sending back on).
        """
        if call.dialog_id == did:
            self._registry.unbind_dialog(call)
        if call.early_dialog == did:
            call.early_dialog = None
            call.remote_sdp = None
            call.media.pause_sending()

    def _on_bye(self, event: ByeReceived) -> None:
        call = self._registry.for_dialog(event.dialog_id)
        if call is not None:
            self._in_dialog_request(call.id, event.request)
            self.fire(call, Trigger.BYE_RECEIVED, "remote hangup")

    def _in_dialog_request(self, sid: SessionId, request: Request) -> None:
        """Publish the peer's in-dialog request's headers (only when someone listens)."""
        events = self._events
        if events.subscriber_count:  # hot path (every BYE): no event built for nobody
            events.publish(InDialogRequest(sid, request.method, request.headers.pairs()))

    def _on_ack(self, event: AckReceived) -> None:
        call = self._registry.for_dialog(event.dialog_id)
        if call is not None and event.request.body and call.remote_sdp is None:
            self._answer_in_ack(call, event.request)

    # --- SDP helpers -----------------------------------------------------------------------

    def _sdp_id(self) -> int:
        # hot path: one getrandbits (one urandom call) instead of randrange's rejection
        # loop around it; 0 (one value in 2**31) becomes 1, as an o= sess-id of 0 is odd.
        return self._rng.getrandbits(31) or 1

    def _media_host(self, call: Call, offer: SessionDescription | None = None) -> str:
        """The SDP address: the advertised host, or toward the peer on a wildcard bind."""
        cfg = self.config
        sdp = offer or call.remote_sdp or call.remote_offer
        connection = sdp.connection.address if sdp is not None and sdp.connection else None
        hints = (connection, cfg.outbound_proxy, call.to, call.from_)
        return media_host(cfg.advertised_host, self._endpoint, hints)

    def offer_for(self, call: Call, direction: str = "sendrecv") -> SessionDescription:
        """Our SDP offer for a call's open RTP port."""
        port = call.media.local_port
        if port is None:
            raise MediaError("no RTP port", session_id=call.id)
        cfg = self.config
        return build_offer(
            self._media_host(call),
            port,
            codecs=cfg.preferred_codecs,
            dtmf_payload_type=cfg.dtmf_payload_type,
            direction=direction,
            sess_id=self._sdp_id(),
            ptime_ms=cfg.ptime_ms,
            srtp=cfg.srtp,
        )

    def answer_for(
        self, call: Call, offer: SessionDescription, direction: str = "sendrecv"
    ) -> SessionDescription:
        """Our SDP answer to ``offer`` (RFC 3264; raises SdpNegotiationError)."""
        port = call.media.local_port
        if port is None:
            raise MediaError("no RTP port", session_id=call.id)
        cfg = self.config
        previous = call.local_sdp
        sess_id = int(previous.origin.sess_id) if previous is not None else self._sdp_id()
        version = int(previous.origin.sess_version) + 1 if previous is not None else 0
        return build_answer(
            offer,
            self._media_host(call, offer),
            port,
            codecs=cfg.preferred_codecs,
            dtmf_payload_type=cfg.dtmf_payload_type,
            direction=direction,
            sess_id=sess_id,
            sess_version=version,
            ptime_ms=cfg.ptime_ms,
            srtp=cfg.srtp,
            previous=previous,
        )

    # --- commands --------------------------------------------------------------------------

    def respond(self, call: Call, status: int, reason: str | None = None, **kw: Any) -> bool:
        """Answer the call's pending INVITE; False when it can no longer be answered."""
        if call.invite_ref is None:
            return False
        with self.gate:  # events of this answer wait until it is recorded
            try:
                self.endpoint.respond(call.invite_ref, status, reason, **kw)
            except DialogUsageError:
                return False
            if status >= 200:
                call.invite_ref = None
        return True

    def reject(
        self,
        call: Call,
        status: int,
        reason: str,
        why: str,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Refuse an incoming call and end it."""
        self.respond(call, status, phrase(reason), headers=tuple(headers))
        trigger = Trigger.FAILED if status >= 500 else Trigger.ENDED
        self.finish(call, trigger, why, status)

    def _unavailable(self, call: Call, why: str) -> None:
        # RFC 3261 §21.5.4: a 503 says when to come back (no RTP ports left, overload).
        retry = (("Retry-After", str(self.config.overload_retry_after)),)
        self.reject(call, 503, "Service Unavailable", why, retry)

    def send_request(self, call: Call, method: str, **kw: Any) -> tuple[int, PendingRequest]:
        """Send a request in the call's dialog; the façade awaits ``pending.done``.

        Raises:
            CallFailed: the call has no dialog (481).
        """
        did = call.dialog_id
        if did is None:
            raise CallFailed(481, "no dialog", session_id=call.id)
        endpoint = self.endpoint
        pending = PendingRequest(method, call.id)
        with self.gate:  # the response may come at once: record the request first
            try:
                if method == "INVITE":
                    ref = endpoint.reinvite(did, kw.get("body", b""), headers=kw.get("headers", ()))
                elif method == "REFER":
                    contact = str(endpoint.config.contact)
                    ref = endpoint.refer(did, str(kw["refer_to"]), referred_by=contact)
                else:
                    ref = endpoint.request(did, method, **kw)
            except DialogUsageError as exc:
                raise CallFailed(481, str(exc), session_id=call.id) from None
            self._registry.add_pending(ref, pending)
        return ref, pending

    def invite(self, call: Call) -> None:
        """Send the INVITE of an outgoing call (its leg is recorded before any event)."""
        body = b"" if call.local_sdp is None else call.local_sdp.encode()
        with self.gate:  # events of this INVITE wait until the leg is recorded
            leg = self.endpoint.invite(
                call.to, from_=call.from_, body=body, headers=call.invite_headers
            )
            self._registry.bind_leg(call, leg)

    def hang_up(self, call: Call, reason: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        """End a call by the right means for its state (CANCEL, BYE or a rejection)."""
        if call.state.is_final:
            return
        with self.gate:  # the call's events wait until its new state is recorded
            self._hang_up_now(call, reason, tuple(headers))

    def _hang_up_now(self, call: Call, reason: str, headers: tuple[tuple[str, str], ...]) -> None:
        endpoint = self.endpoint
        incoming = call.direction is CallDirection.Incoming
        if incoming and call.invite_ref is not None:
            self.reject(call, 480, "Temporarily Unavailable", reason)
        elif not incoming and not call.answered.is_set():
            if call.leg is None:
                self.finish(call, Trigger.CANCELLED, reason)
                return
            call.cancel_requested = True
            self.fire(call, Trigger.HANG_UP, reason)
            try:
                endpoint.cancel(call.leg, headers=headers)
            except DialogUsageError:
                self.finish(call, Trigger.CANCELLED, reason)
        elif call.dialog_id is not None:
            self.fire(call, Trigger.HANG_UP, reason)
            call.end_reason = reason
            try:
                ref = endpoint.bye(call.dialog_id, headers=headers)
            except DialogUsageError:
                self.finish(call, Trigger.ENDED, reason)
            else:
                if self._stopping:
                    self._byes.add(ref)
        else:
            self.finish(call, Trigger.ENDED, reason)

    # --- incoming calls --------------------------------------------------------------------

    def new_call(self, direction: CallDirection, from_: str, to: str) -> Call:
        """Create and register a call (its media handle is not open yet)."""
        registry = self._registry
        sid = registry.next_id()
        media = self._media.new_media(sid, self._rfc4733_dtmf)
        return registry.add(sid, direction, from_, to, self.wall_now(), media)

    def _incoming_invite(self, event: IncomingInvite) -> None:
        cfg = self.config
        refusal = self.drain_refusal
        if refusal is not None:
            # RFC 3261 §21.5.4: a draining worker answers 503 + Retry-After, so a proxy
            # (Kamailio's dispatcher failure route) sends the call to the next worker.
            self._registry.counters["drain_rejected"] += 1
            with self.gate:
                self.endpoint.respond(event.ref, 503, "Service Unavailable", headers=refusal)
            return
        if overloaded(len(self._registry), cfg.max_concurrent_calls, self._lag):
            # RFC 3261 §21.5.4: refuse what we cannot finish, saying when to come back.
            self._registry.counters["overload_rejected"] += 1
            retry = (("Retry-After", str(cfg.overload_retry_after)),)
            with self.gate:
                self.endpoint.respond(event.ref, 503, "Service Unavailable", headers=retry)
            return
        request = event.request
        user: str | None = None
        auth = self.authenticator
        if auth is not None:
            result = auth.check(request, self.now())
            if not result.proceed:
                # RFC 3261 §22.1: 401/407 with a challenge (the caller retries with a new
                # CSeq), 403 for wrong credentials, 400 for malformed ones. No call yet.
                with self.gate:
                    self.endpoint.respond(
                        event.ref, result.status, result.reason, headers=result.headers
                    )
                return
            user = result.user
        from_ = str(request.from_.uri)
        call = self.new_call(CallDirection.Incoming, from_, str(request.to.uri))
        call.invite_ref = event.ref
        self._registry.bind_dialog(call, event.dialog_id)
        if request.body:
            try:
                call.remote_offer = parse_offer(request.body)
            except SdpNegotiationError as exc:
                self.reject(call, exc.status, "Bad SDP", f"malformed SDP offer: {exc}")
                return
        call.incoming = IncomingCall(
            call.id,
            from_,
            call.to,
            request.body.decode("utf-8", "replace") if request.body else None,
            headers=request.headers,  # its (name, value) pairs, shared (see IncomingCall)
            received_at=call.started_at,  # the same moment: one clock read per call
            request_uri=str(request.uri),
            display_name=request.from_.display_name,
            authenticated_user=user,
        )
        if event.replaces is not None:
            self._replacing(call, event.replaces)
            return
        hooks = self._hooks
        if hooks.decides_now:
            try:
                decision = hooks.decide_now(call.incoming)
            except Exception:
                log.exception("decide_now failed for call %s", call.id)
                self.reject(call, 500, "Server Internal Error", "call handler raised")
                return
            if decision is not None:
                if self._media.opens_now:
                    self._decide_at_once(call, decision)
                else:  # trio: the RTP session needs a task of its own
                    self._start_soon(self._decided_with_media_task, call, decision)
                return
        self._start_soon(self._offer_to_handler, call)

    def _replacing(self, call: Call, replaces: DialogId) -> None:
        """RFC 3891 §3: an INVITE replacing one of our dialogs is answered at once.

        The handler is not asked ("the UA SHOULD ... accept the new INVITE without
        prompting the user"); an authenticator, when configured, has already checked the
        request (RFC 3891 §6). The old call ends when this one is established.
        """
        replacements = self.replacements
        refusal = (481, "Call/Transaction Does Not Exist")
        if replacements is not None:
            refusal = replacements.refusal(replaces) or (0, "")
        if refusal[0]:
            status, reason = refusal
            self.reject(call, status, reason, f"replaces: {status} {reason}")
            return
        assert replacements is not None
        replacements.begin(call, replaces)
        if self._media.opens_now:
            self._decide_at_once(call, Accept())
        else:  # trio: the RTP session needs a task of its own
            self._start_soon(self._decided_with_media_task, call, Accept())

    def _decide_at_once(self, call: Call, decision: Decision) -> None:
        """The handler decided synchronously: media, event and answer, all inline.

        hot path: no task, cancel scope or timeout per call, and no 180 ring deadline.
        A call refused or forwarded at once never binds RTP ports.
        """
        if type(decision) is not Accept:  # hot path: an Accept needs no normalising
            decision = normalize_decision(decision)
        if isinstance(decision, _OPENS_MEDIA):
            try:
                self._media.open_now(call.media)
            except SessionError as exc:
                self._unavailable(call, f"no media: {exc}")
                return
        self._decided(call, decision)

    async def _decided_with_media_task(self, call: Call, decision: Decision) -> None:
        """Trio: the decision is made, only the media task is awaited (no timeout, no 180)."""
        decision = normalize_decision(decision)
        if isinstance(decision, Accept | Defer | Route | EarlyMedia):
            try:
                await self._media.open(call.media)
            except SessionError as exc:
                self._unavailable(call, f"no media: {exc}")
                return
        if not call.state.is_final:  # the caller may have cancelled meanwhile
            self._decided(call, decision)

    def _decided(self, call: Call, decision: Decision) -> None:
        if self._listened:
            assert call.incoming is not None
            self._events.publish(IncomingCallReceived(call.id, call.incoming))
        self.decide(call, decision)

    async def _offer_to_handler(self, call: Call) -> None:
        try:
            await self._media.open(call.media)
        except SessionError as exc:
            self._unavailable(call, f"no media: {exc}")
            return
        if call.state.is_final or call.incoming is None:
            return
        incoming = call.incoming
        self._events.publish(IncomingCallReceived(call.id, incoming))
        # A handler that takes a while still gets the caller a 180, and one that takes too
        # long a 480: both are deadlines of the call layer, not timers of this task.
        now = self.now()
        self._call_deadline(call, _RING, now + RING_AFTER)
        self._call_deadline(call, _ANSWER_BY, now + self.config.incoming_call_timeout)
        decision: Decision | None = None
        # The caller may give up (CANCEL) or time out while the handler decides: finish()
        # cancels this scope.
        scope = call.decide_scope = anyio.CancelScope()
        with scope:
            try:
                decision = normalize_decision(await self._hooks.incoming_call(incoming))
            except Exception:
                log.exception("on_incoming_call failed for call %s", call.id)
                self.reject(call, 500, "Server Internal Error", "call handler raised")
        call.decide_scope = None
        self._deadlines.cancel((_RING, call.id))
        if decision is not None:
            self.decide(call, decision)

    def decide(self, call: Call, decision: Decision) -> None:
        """Apply the handler's (or the application's later) decision on an incoming call."""
        if call.state.is_final:
            return
        match decision:
            case Accept(sdp=sdp):
                self._deadlines.cancel((_ANSWER_BY, call.id))
                self._accept(call, sdp)
            case Reject(reason=reason, status=status):
                self.reject(call, status, reason, f"rejected: {status} {reason}")
            case Forward(target=target):
                contact = target if target.startswith("<") else f"<{target}>"
                self.respond(call, 302, "Moved Temporarily", headers=[("Contact", contact)])
                self.finish(call, Trigger.ENDED, f"forwarded to {bare_uri(target)}", 302)
            case Defer():
                # The call rings (180) until the application decides or the deadline passes.
                self.respond(call, 180, "Ringing")
                self.fire(call, Trigger.RINGING, "deferred")
                when = self.now() + self.config.incoming_call_timeout
                self._call_deadline(call, _ANSWER_BY, when)
            case EarlyMedia(sdp=sdp):
                try:
                    self.send_early_media(call, sdp)
                except SessionError as exc:
                    log.info("call %s: no early media (%s); ringing instead", call.id, exc)
                    if not call.state.is_final:
                        self.respond(call, 180, "Ringing")
                        self.fire(call, Trigger.RINGING, "deferred")
                if not call.state.is_final:
                    when = self.now() + self.config.incoming_call_timeout
                    self._call_deadline(call, _ANSWER_BY, when)
            case Challenge(realm=realm, proxy=proxy):
                self._challenge(call, realm, proxy)
            case Route(aor=aor):
                if self.router is None:
                    log.error("call %s: CallDecision.Route needs with_registrar", call.id)
                    self.reject(call, 500, "Server Internal Error", "no registrar to route")
                else:
                    self.router.route(call, aor, self._start_soon)

    def _challenge(self, call: Call, realm: str | None, proxy: bool) -> None:
        """Answer 401/407 with a digest challenge (RFC 3261 §22.1) and end the call."""
        auth = self.authenticator
        if auth is None:
            log.error("call %s: CallDecision.Challenge needs with_authenticator", call.id)
            self.reject(call, 500, "Server Internal Error", "no authenticator to challenge")
            return
        result = auth.challenge(self.now(), realm=realm, proxy=proxy)
        self.reject(call, result.status, result.reason, "challenged", result.headers)

    def route_reject(self, call: Call, status: int, reason: str) -> None:
        """Refuse a routed call (the router's answer when no contact took it)."""
        self.reject(call, status, reason, f"routing: {status} {reason}")

    def send_early_media(self, call: Call, sdp: str | None) -> None:
        """Answer the INVITE's offer in a 183 and start media before the call is answered.

        RFC 3262: the 183 goes reliably (``Require: 100rel``, retransmitted until the PRACK)
        when the caller supports or requires ``100rel``, else unreliably (RFC 3960 §3.1
        early media). The 200 of a later accept repeats the same SDP (the offer/answer
        exchange is complete, RFC 3264 §4); a reject ends the call and its media.

        Raises:
            InvalidState: the INVITE carried no offer (our offer would need a PRACK answer).
            SdpNegotiationError: the offer cannot be answered (or ``sdp`` does not parse).
            CallFailed: the INVITE can no longer be answered.
        """
        offer = call.remote_offer
        if offer is None:
            raise InvalidState("early media needs an INVITE with an SDP offer", session_id=call.id)
        local = call.local_sdp if call.early_sent and sdp is None else None
        if local is None:
            local = parse_offer(sdp) if sdp else self.answer_for(call, offer)
        result = negotiated(local, offer, answer_is_local=True)
        body = local.encode()
        if not self.respond(
            call,
            183,
            "Session Progress",
            body=body,
            content_type="application/sdp",
            reliable=True,
        ):
            raise CallFailed(481, "the INVITE can no longer be answered", session_id=call.id)
        call.local_sdp, call.remote_sdp, call.early_sent = local, offer, True
        self._deadlines.cancel((_RING, call.id))
        call.media.apply(result)
        self.fire(call, Trigger.EARLY_MEDIA, "early media sent")

    def _accept(self, call: Call, sdp: str | None) -> None:
        """Answer 200 with ``sdp`` (or a generated answer); media starts on confirmation."""
        if call.early_sent and call.local_sdp is not None and sdp is None:
            # RFC 3264 §4 / RFC 3262: the 183 completed the offer/answer; the 200 repeats
            # the same SDP (same o= version: nothing changed).
            local_text = (_cached_text(call, call.local_sdp) or "").encode()
            if not self.respond(call, 200, "OK", body=local_text, content_type="application/sdp"):
                self.finish(call, Trigger.FAILED, "the INVITE can no longer be answered")
            return
        try:
            if call.remote_offer is None:
                # RFC 3264 §4: an offerless INVITE gets our offer in the 200; answer in ACK.
                local = parse_offer(sdp) if sdp else self.offer_for(call)
            else:
                local = parse_offer(sdp) if sdp else self.answer_for(call, call.remote_offer)
                call.remote_sdp = call.remote_offer
        except SdpNegotiationError as exc:
            headers = _media_warning(exc) if exc.status == 488 else ()
            self.reject(call, exc.status, "Not Acceptable Here", str(exc), headers)
            return
        call.local_sdp = local
        body = (_cached_text(call, local) or "").encode("utf-8", "surrogateescape")
        if not self.respond(call, 200, "OK", body=body, content_type="application/sdp"):
            self.finish(call, Trigger.FAILED, "the INVITE can no longer be answered")

    # --- outgoing calls --------------------------------------------------------------------

    def _progress(self, call: Call, did: DialogId | None, response: Response) -> None:
        if did is not None and call.dialog_id is None:
            self._registry.bind_dialog(call, did)
        if call.state.is_final or call.state is CallState.Terminating:
            return
        if response.body and did is not None and 100 < response.status < 200:
            self._early_media_received(call, did, response)
        if response.status == 183 and response.body:
            self.fire(call, Trigger.EARLY_MEDIA, f"{response.status} {response.reason}")
        elif response.status in (180, 181, 182, 183):
            self.fire(call, Trigger.RINGING, f"{response.status} {response.reason}")

    def _early_media_received(self, call: Call, did: DialogId, response: Response) -> None:
        """Play the early media of an 18x with SDP (announcements, carrier ringback).

        RFC 3261 §13.2.1 / RFC 3264: the SDP of a provisional response is the answer to our
        INVITE's offer; media flows both ways before the 200 (RFC 3960 §3.1: the UAC
        plays what the early dialog sends). Forked early dialogs (RFC 3261 §12.1.2):
        the latest SDP is the one played; the 2xx that wins applies its own (see
        ``_confirmed``), so the losers' media stops reaching the call.
        """
        local = call.local_sdp
        if local is None or call.state.is_final or call.state is CallState.Terminating:
            return  # an offerless INVITE: the 18x SDP is an offer (not played early)
        try:
            remote = parse_offer(response.body)
        except SdpNegotiationError as exc:
            log.info("call %s: unusable SDP in %s (%s)", call.id, response.status, exc)
            return
        previous = call.remote_sdp
        if call.early_dialog == did and previous is not None and previous.origin == remote.origin:
            return  # the same answer again (a retransmission or a second 18x)
        try:
            call.media.apply(negotiated(local, remote, answer_is_local=False))
        except SessionError as exc:
            log.info("call %s: early media not started: %s", call.id, exc)
            return
        call.remote_sdp, call.early_dialog = remote, did

    def _confirmed(self, call: Call, did: DialogId, message: Request | Response) -> None:
        outgoing = call.direction is CallDirection.Outgoing
        if call.cancel_requested and outgoing:
            # The answer crossed our CANCEL: the call is ours, so end it with a BYE.
            try:
                self.endpoint.bye(did)
            except DialogUsageError:
                pass
            self.finish(call, Trigger.CANCELLED, "cancelled")
            return
        if call.dialog_id != did:
            self._registry.bind_dialog(call, did)
        if outgoing and isinstance(message, Response):
            call.answer = message
            if not message.body and call.early_dialog == did and call.remote_sdp is not None:
                # RFC 3262 §5 / RFC 3264: the answer came in the (reliable) 18x of this
                # dialog; the 2xx need not repeat it.
                self._established(call)
                return
            try:
                call.remote_sdp = parse_offer(message.body)
            except SdpNegotiationError as exc:
                log.warning("call %s: unusable SDP answer (%s); hanging up", call.id, exc)
                self._bye_unusable_answer(call, f"unusable SDP answer: {exc}")
                return
        self._established(call)

    def _bye_unusable_answer(self, call: Call, reason: str) -> None:
        """End an outgoing call whose 2xx carried an answer we cannot use.

        The 2xx confirmed the dialog, so only a BYE ends it (RFC 3261 §15; a CANCEL
        after the final response does nothing): ``hang_up`` would CANCEL a call that is
        not yet answered, leaving the peer in the call and ours waiting forever.
        ``reason`` becomes the final reason ``CallFailed`` reports.
        """
        call.final_reason = reason
        did = call.dialog_id
        with self.gate:
            self.fire(call, Trigger.HANG_UP, reason)
            call.end_reason = reason
            if did is None:
                self.finish(call, Trigger.ENDED, reason)
                return
            try:
                self.endpoint.bye(did)
            except DialogUsageError:
                self.finish(call, Trigger.ENDED, reason)

    def _established(self, call: Call) -> None:
        local, remote = call.local_sdp, call.remote_sdp
        if local is not None and remote is not None:
            try:
                answer_is_local = call.direction is CallDirection.Incoming
                call.media.apply(negotiated(local, remote, answer_is_local=answer_is_local))
            except SessionError as exc:
                log.warning("call %s: media not started: %s", call.id, exc)
                reason = f"media negotiation failed: {exc}"
                if call.direction is CallDirection.Outgoing:
                    # The reason CallFailed reports, even when the peer's BYE crosses ours.
                    self._bye_unusable_answer(call, reason)
                else:
                    self.hang_up(call, reason)
                return
        if call.state.is_final:
            return
        neg = call.media.negotiated
        if neg is not None and neg.srtp is not None:
            incoming = call.incoming
            headers = None if incoming is None else incoming.headers
            tls = signalled_over_tls(call.to, headers, self.config.transport)
            self._media.srtp_started(call.id, tls)
        call.established_at = self.wall_now()
        if self.config.media_timeout is not None:
            call.media_seen_at = self.now()
        self.fire(call, Trigger.ANSWERED, "answered")
        call.answered.set()
        replacements = self.replacements
        if replacements is not None and replacements.waiting:
            old = replacements.established(call)
            if old is not None:
                # RFC 3891 §3: the replaced dialog ends (BYE; CANCEL while it rang).
                self.hang_up(old, "replaced")
        hooks = self._hooks
        listened = bool(self._events.subscriber_count)
        wanted = "on_call_established" in hooks.wanted
        if not (listened or wanted):
            return  # hot path: nobody reads the SDP texts
        local_text, remote_text = _cached_text(call, local), _text(remote)
        if listened:
            self._events.publish(CallEstablished(call.id, local_text, remote_text))
        if wanted:
            hooks.call_established(call.snapshot(), local_text, remote_text)

    def _answer_in_ack(self, call: Call, request: Request) -> None:
        try:
            call.remote_sdp = parse_offer(request.body)
            assert call.local_sdp is not None
            call.media.apply(negotiated(call.local_sdp, call.remote_sdp, answer_is_local=False))
        except (SessionError, AssertionError) as exc:
            self.hang_up(call, f"unusable SDP in ACK: {exc}")

    def _invite_failed(self, call: Call, response: Response) -> None:
        call.final_reason = response.reason
        if call.auth_failure is not None:
            # e.g. "credentials for realm 'pbx' rejected (401)" rather than "Unauthorized".
            call.final_reason = f"{response.reason}: {call.auth_failure}"
        if call.cancel_requested or response.status == 487:
            self.finish(call, Trigger.CANCELLED, "cancelled", response.status)
            return
        if response.status == 488:
            # RFC 3261 §21.4.26: a 488 may say why in a Warning (e.g. "SRTP is required").
            warning = _warning_text(response.headers.get("Warning"))
            if warning:
                call.final_reason = f"{call.final_reason}: {warning}"
        if 300 <= response.status < 400 and response.contacts:
            # RFC 3261 §8.1.3.4: a redirect names the new target in its Contact.
            call.final_reason = f"{response.reason} to {response.contacts[0].uri}"
        reason = f"{response.status} {call.final_reason}"
        self.finish(call, Trigger.FAILED, reason, response.status)

    def _dialog_ended(self, call: Call, reason: TerminationReason, status: int | None) -> None:
        if reason is TerminationReason.LOCAL_BYE:
            self.finish(call, Trigger.ENDED, call.end_reason or "local hangup")
        elif (why := _BYE_REASONS.get(reason)) is not None:  # hot path: one enum hash
            self.finish(call, Trigger.ENDED, why)
        elif reason in (
            TerminationReason.CANCELLED,
            TerminationReason.REJECTED,
            TerminationReason.FORK_LOST,
        ):
            # An early dialog ended with its INVITE: InviteFailed (caller) or our own
            # answer / CancelReceived (callee) ends the call with the real status.
            return
        elif reason is TerminationReason.SESSION_EXPIRED:
            # RFC 4028 §10: no refresh kept the session up; the layer sent the BYE.
            self.finish(call, Trigger.ENDED, SESSION_EXPIRED_REASON)
        else:
            self.finish(call, Trigger.FAILED, f"dialog ended: {reason.value}", status)

    # --- re-INVITE / UPDATE from the peer --------------------------------------------------

    def _reoffer(self, ref: int, did: DialogId, offer: bytes) -> None:
        call = self._registry.for_dialog(did)
        endpoint = self.endpoint
        if call is None:
            endpoint.respond(ref, 481, "Call/Transaction Does Not Exist")
            return
        direction = "sendonly" if call.media.held else "sendrecv"
        if not offer:
            if call.local_sdp is None:
                endpoint.respond(ref, 488, "Not Acceptable Here")
                return
            # Offerless re-INVITE: our current SDP (new version) is the offer; answer in ACK.
            local = call.local_sdp.with_next_version()
            call.local_sdp, call.remote_sdp = local, None
            endpoint.respond(ref, 200, "OK", body=local.encode(), content_type="application/sdp")
            return
        try:
            remote = parse_offer(offer)
            local = self.answer_for(call, remote, direction)
            result = negotiated(local, remote, answer_is_local=True)
        except SdpNegotiationError as exc:
            # RFC 3264 §8: a refused re-offer leaves the session as it was.
            endpoint.respond(ref, exc.status, "Not Acceptable Here")
            return
        endpoint.respond(ref, 200, "OK", body=local.encode(), content_type="application/sdp")
        call.local_sdp, call.remote_sdp = local, remote
        try:
            call.media.apply(result)
        except SessionError as exc:
            log.warning("call %s: media update failed: %s", call.id, exc)

    # --- session timers (RFC 4028) ---------------------------------------------------------

    def _refresh_session(self, call: Call, did: DialogId) -> None:
        """Refresh the session with a re-INVITE carrying our current SDP, unchanged.

        RFC 4028 §7.4 / RFC 3311 §5.1: the peer does not allow UPDATE (or refused ours
        with 405/501). RFC 3264 §8: an unchanged session is offered again with the same
        ``o=`` version, so the peer sees no media change.
        """
        local = call.local_sdp
        if local is None or call.state.is_final or call.dialog_id != did:
            return
        with self.gate:  # the answer may come at once: record the ref first
            try:
                ref = self.endpoint.reinvite(did, local.encode())
            except DialogUsageError as exc:
                log.info("call %s: session refresh not sent: %s", call.id, exc)
                return
            self._refreshes[ref] = call.id
        self._count("session_refresh_reinvites")

    def _refresh_answered(self, sid: SessionId, response: Response) -> None:
        """The final response to a refresh re-INVITE of ours."""
        call = self._registry.find(sid)
        if call is None or call.state.is_final:
            return
        if not 200 <= response.status < 300:
            # The dialog layer ends the call with BYE at the session's expiry (RFC 4028
            # §10) unless a later refresh succeeds; a 408/481 ended the dialog already.
            self._count("session_refresh_failed")
            log.warning("call %s: session refresh refused: %s", call.id, response.status)
            return
        if response.body and call.local_sdp is not None:
            try:
                remote = parse_offer(response.body)
                if call.remote_sdp is None or remote.origin != call.remote_sdp.origin:
                    # RFC 3264 §8: the answer changed the session: apply it.
                    call.media.apply(negotiated(call.local_sdp, remote, answer_is_local=False))
                call.remote_sdp = remote
            except SessionError as exc:
                log.warning("call %s: refresh answer not applied: %s", call.id, exc)
        try:
            se = response.header(SessionExpires)
        except SipParseError:
            se = None
        self._refreshed(call, "INVITE", None if se is None else se.seconds)

    def _count(self, name: str) -> None:
        counters = self._registry.counters  # a plain dict: new names start at 0
        counters[name] = counters.get(name, 0) + 1

    def _refreshed(self, call: Call, method: str, interval: int | None) -> None:
        self._count("session_refreshes")
        if self._events.subscriber_count:
            self._events.publish(SessionRefreshed(call.id, method, interval))

    # --- media events ----------------------------------------------------------------------

    def _rfc4733_dtmf(self, session_id: SessionId, digit: str, duration_ms: int) -> None:
        self.dtmf(session_id, digit, duration_ms, "rfc4733")

    def dtmf(self, session_id: SessionId, digit: str, duration_ms: int, method: str) -> None:
        """A DTMF digit arrived on a call (RFC 4733 from the media, or SIP INFO)."""
        if self._events.subscriber_count:
            self._events.publish(DtmfReceived(session_id, digit, duration_ms, method))
        self._hooks.dtmf(session_id, digit)

    def _media_check_interval(self) -> float:
        timeout = self.config.media_timeout
        assert timeout is not None
        return max(0.5, timeout / 6)

    def _check_media(self, now: float) -> None:
        """End answered calls that received neither RTP nor RTCP for ``media_timeout`` s.

        Hold-aware by construction: while a call is held only RTCP may flow, and RTCP alone
        keeps the call up. The counters are rtp-core's (``SessionStatistics``).
        """
        timeout = self.config.media_timeout
        if timeout is None:
            return
        activity = self._media.activity
        for call in self._registry:
            if not call.state.is_established or call.media_seen_at is None:
                continue
            seen = activity(call.media)
            if seen is None:
                continue
            if seen != call.media_seen:
                call.media_seen, call.media_seen_at = seen, now
            elif now - call.media_seen_at >= timeout:
                why = f"media timeout: no RTP or RTCP for {timeout:g} s"
                log.info("call %s: %s", call.id, why)
                # RFC 3326: the BYE says why the call ended.
                self.hang_up(call, why, (("Reason", MEDIA_TIMEOUT_REASON),))

    def _report_quality(self) -> None:
        hooks = self._hooks
        wanted = hooks.wants("on_media_quality")
        if not (self._listened or wanted):
            return  # nobody reads the reports: no statistics per call
        for call in self._registry:
            stats = self._media.statistics(call.media)
            if stats is None or stats.quality_metrics is None or not stats.packets_received:
                continue
            metrics = stats.quality_metrics
            if self._listened:
                self._events.publish(MediaQualityReport(call.id, metrics))
            hooks.media_quality(call.id, metrics)


def _ignore(when: float) -> None:
    """A deadline waker that does nothing (before start)."""


def _media_warning(exc: SdpNegotiationError) -> tuple[tuple[str, str], ...]:
    """A ``Warning: 305`` naming why an offer was refused (RFC 3261 §20.43, §21.4.26).

    305 is "Incompatible media format"; the agent is a pseudonym (no address leaks) and
    the text a quoted-string without quotes, backslashes or control characters, at most
    200 characters.
    """
    text = str(exc).replace("\\", "/").replace('"', "'")[:200]
    text = "".join(ch if ch.isprintable() else " " for ch in text)  # no CR/LF injection
    return (("Warning", f'305 rvoip "{text}"'),)


def _warning_text(value: str | None) -> str | None:
    """The warn-text of a Warning header value (``code agent "text"``), or None."""
    if not value:
        return None
    start = value.find('"')
    end = value.rfind('"')
    if start < 0 or end <= start:
        return None
    return value[start + 1 : end][:200] or None


def _cached_text(call: Call, sdp: SessionDescription | None) -> str | None:
    """``str(sdp)``, remembered on the call (our answer is sent, then reported twice)."""
    if sdp is None:
        return None
    cached = call.sdp_text
    if cached is not None and cached[0] is sdp:
        return cached[1]
    text = str(sdp)
    call.sdp_text = (sdp, text)
    return text


def _text(sdp: SessionDescription | None) -> str | None:
    return None if sdp is None else str(sdp)


_HOT_EVENTS: dict[type, Callable[[CallLayer, Any], None]] = {
    IncomingInvite: CallLayer._incoming_invite,
    DialogConfirmed: CallLayer._on_confirmed,
    AckReceived: CallLayer._on_ack,
    ByeReceived: CallLayer._on_bye,
    DialogTerminated: CallLayer._on_terminated,
}
"""The dialog events of every call, by exact type: ``CallLayer.handle``'s fast path."""
