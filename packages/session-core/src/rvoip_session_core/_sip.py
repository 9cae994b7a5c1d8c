"""The coordinator's SIP side: dialog events in, call state and answers out."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime

import anyio

from rvoip_dialog_core import (
    AckReceived,
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
    TerminationReason,
    UpdateReceived,
)
from rvoip_session_core._call import Call, PendingRequest
from rvoip_session_core._errors import CallFailed, MediaError, SessionError, Timeout
from rvoip_session_core._events import (
    CallEstablished,
    DtmfReceived,
    IncomingCallReceived,
)
from rvoip_session_core._offer_answer import (
    SdpNegotiationError,
    build_answer,
    build_offer,
    negotiated,
    parse_offer,
)
from rvoip_session_core._overload import overloaded
from rvoip_session_core._state import parse_dtmf_info
from rvoip_session_core._transfer import TransferPart, _bare, _phrase
from rvoip_session_core._types import (
    Accept,
    CallState,
    Decision,
    Defer,
    Forward,
    IncomingCall,
    Reject,
    SessionId,
    normalize_decision,
)
from rvoip_sip_core import Request, Response, SessionDescription

log = logging.getLogger("rvoip_session_core")

RING_AFTER = 0.5
"""Seconds an incoming call waits for the handler's decision before a 180 is sent."""

RING_TICK = 0.05
"""Shortest sleep of the task that sends those 180s (it rings the calls due in a batch)."""

_BYE_REASONS = {
    TerminationReason.LOCAL_BYE: "local hangup",
    TerminationReason.REMOTE_BYE: "remote hangup",
}


class SipPart(TransferPart):
    """Turns dialog events into call state; answers incoming calls by the handler."""

    # --- helpers --------------------------------------------------------------------------

    def _sdp_id(self) -> int:
        return self._rng.randrange(1, 2**31)

    def _offer_for(self, call: Call, direction: str = "sendrecv") -> SessionDescription:
        port = call.media.local_port
        if port is None:
            raise MediaError("no RTP port", session_id=call.id)
        cfg = self.config
        return build_offer(
            cfg.advertised_host,
            port,
            codecs=cfg.preferred_codecs,
            dtmf_payload_type=cfg.dtmf_payload_type,
            direction=direction,
            sess_id=self._sdp_id(),
            ptime_ms=cfg.ptime_ms,
        )

    def _answer_for(
        self, call: Call, offer: SessionDescription, direction: str = "sendrecv"
    ) -> SessionDescription:
        port = call.media.local_port
        if port is None:
            raise MediaError("no RTP port", session_id=call.id)
        cfg = self.config
        previous = call.local_sdp
        sess_id = int(previous.origin.sess_id) if previous is not None else self._sdp_id()
        version = int(previous.origin.sess_version) + 1 if previous is not None else 0
        return build_answer(
            offer,
            cfg.advertised_host,
            port,
            codecs=cfg.preferred_codecs,
            dtmf_payload_type=cfg.dtmf_payload_type,
            direction=direction,
            sess_id=sess_id,
            sess_version=version,
            ptime_ms=cfg.ptime_ms,
        )

    def _respond(self, call: Call, status: int, reason: str | None = None, **kw: object) -> bool:
        """Answer the call's pending INVITE; False when it can no longer be answered."""
        if call.invite_ref is None:
            return False
        with self._gate:  # events of this answer wait until it is recorded
            try:
                self.endpoint.respond(call.invite_ref, status, reason, **kw)  # type: ignore[arg-type]
            except DialogUsageError:
                return False
            if status >= 200:
                call.invite_ref = None
        return True

    def _reject(self, call: Call, status: int, reason: str, why: str) -> None:
        self._respond(call, status, _phrase(reason))
        final = CallState.Failed if status >= 500 else CallState.Terminated
        self._finish(call, final, why, status)

    async def _request(
        self, call: Call, method: str, timeout: float | None = None, **kw: object
    ) -> Response:
        """Send a request in the call's dialog and wait for its final response."""
        did = call.dialog_id
        if did is None:
            raise CallFailed(481, "no dialog", session_id=call.id)
        endpoint = self.endpoint
        pending = PendingRequest(method, call.id)
        with self._gate:  # the response may come at once: record the request first
            try:
                if method == "INVITE":
                    ref = endpoint.reinvite(did, kw.get("body", b""))  # type: ignore[arg-type]
                elif method == "REFER":
                    ref = endpoint.refer(did, str(kw["refer_to"]), referred_by=self.local_uri)
                else:
                    ref = endpoint.request(did, method, **kw)  # type: ignore[arg-type]
            except DialogUsageError as exc:
                raise CallFailed(481, str(exc), session_id=call.id) from None
            self._pending[ref] = pending
        limit = timeout if timeout is not None else 64 * self.config.t1 + 2.0
        try:
            with anyio.fail_after(limit):
                await pending.done.wait()
        except TimeoutError:
            raise Timeout(
                f"no final response to {method} after {limit:.1f}s", session_id=call.id
            ) from None
        finally:
            self._pending.pop(ref, None)
        if pending.response is None:
            raise CallFailed(481, f"the call ended during {method}", session_id=call.id)
        return pending.response

    # --- the event switch -----------------------------------------------------------------

    def _on_dialog_event(self, event: object) -> None:
        match event:
            case IncomingInvite():
                self._incoming_invite(event)
            case InviteProgress(leg=leg, dialog_id=did, response=response):
                call = self._calls.get(self._by_leg.get(leg, SessionId("")))
                if call is not None:
                    self._progress(call, did, response)
            case DialogEarly(dialog_id=did):
                call = self._call_for_dialog(did)
                if call is not None and call.dialog_id is None:
                    self._bind_dialog(call, did)
            case DialogConfirmed(dialog_id=did, message=message):
                call = self._call_for_dialog(did)
                if call is not None:
                    self._confirmed(call, did, message)
            case InviteFailed(leg=leg, response=response):
                call = self._calls.get(self._by_leg.get(leg, SessionId("")))
                if call is not None:
                    self._invite_failed(call, response)
            case DialogTerminated(dialog_id=did, reason=reason, status=status):
                call = self._call_for_dialog(did)
                if call is not None and call.dialog_id == did:
                    self._dialog_ended(call, reason, status)
            case ByeReceived(dialog_id=did):
                call = self._call_for_dialog(did)
                if call is not None:
                    self._set_state(call, CallState.Terminating, "remote hangup")
            case CancelReceived(dialog_id=did):
                call = self._call_for_dialog(did)
                if call is not None:
                    call.invite_ref = None
                    self._finish(call, CallState.Cancelled, "caller cancelled", 487)
            case AckReceived(dialog_id=did, request=request):
                call = self._call_for_dialog(did)
                if call is not None and request.body and call.remote_sdp is None:
                    self._answer_in_ack(call, request)
            case ReInviteReceived(ref=ref, dialog_id=did, offer=offer):
                self._reoffer(ref, did, offer, reinvite=True)
            case UpdateReceived(ref=ref, dialog_id=did, offer=offer):
                self._reoffer(ref, did, offer, reinvite=False)
            case ReferReceived(ref=ref, dialog_id=did, request=request, refer_to=refer_to):
                self._refer_received(ref, did, request, refer_to)
            case NotifyReceived():
                call = self._call_for_dialog(event.dialog_id)
                if call is not None and event.event.startswith("refer"):
                    self._transfer_notify(call, event)
            case InfoReceived(dialog_id=did, request=request):
                call = self._call_for_dialog(did)
                if call is not None:
                    ctype = request.headers.get("Content-Type") or ""
                    parsed = parse_dtmf_info(ctype, request.body)
                    if parsed is not None:
                        self._dtmf(call.id, parsed[0], parsed[1], "info")
            case ResponseForRequest(ref=ref, response=response):
                pending = self._pending.get(ref)
                if pending is not None:
                    pending.response = response
                    pending.done.set()
            case RequestReceived(ref=ref):
                self.endpoint.respond(ref, 501, "Not Implemented")
            case _:
                pass

    # --- incoming calls -------------------------------------------------------------------

    def _incoming_invite(self, event: IncomingInvite) -> None:
        cfg = self.config
        if overloaded(len(self._calls), cfg.max_concurrent_calls, self.loop_lag):
            # RFC 3261 §21.5.4: refuse what we cannot finish, saying when to come back.
            self.counters["overload_rejected"] += 1
            retry = (("Retry-After", str(cfg.overload_retry_after)),)
            with self._gate:
                self.endpoint.respond(event.ref, 503, "Service Unavailable", headers=retry)
            return
        request = event.request
        from_ = str(request.from_.uri)
        call = self._new_call("incoming", from_, str(request.to.uri))
        call.invite_ref = event.ref
        self._bind_dialog(call, event.dialog_id)
        if request.body:
            try:
                call.remote_offer = parse_offer(request.body)
            except SdpNegotiationError as exc:
                self._reject(call, exc.status, "Bad SDP", f"malformed SDP offer: {exc}")
                return
        call.incoming = IncomingCall(
            call.id,
            from_,
            call.to,
            request.body.decode("utf-8", "replace") if request.body else None,
            headers=tuple(request.headers),
            received_at=call.started_at,  # the same moment: one clock read per call
            request_uri=str(request.uri),
            display_name=request.from_.display_name,
        )
        if self._decides_now:
            try:
                decision = self.handler.decide_now(call.incoming)
            except Exception:
                log.exception("decide_now failed for call %s", call.id)
                self._reject(call, 500, "Server Internal Error", "call handler raised")
                return
            if decision is not None:
                if self._sync_media:
                    self._decide_at_once(call, decision)
                else:  # trio: the RTP session needs a task of its own
                    self.task_group.start_soon(self._decided_with_media_task, call, decision)
                return
        self.task_group.start_soon(self._offer_to_handler, call)

    def _decide_at_once(self, call: Call, decision: Decision) -> None:
        """The handler decided synchronously: media, event and answer, all inline.

        hot path: no task, cancel scope or timeout per call, and no 180 from the ring loop.
        A call refused or forwarded at once never binds RTP ports.
        """
        decision = normalize_decision(decision)
        if isinstance(decision, Accept | Defer):
            try:
                self._open_media_now(call)
            except SessionError as exc:
                self._reject(call, 503, "Service Unavailable", f"no media: {exc}")
                return
        self._decided(call, decision)

    async def _decided_with_media_task(self, call: Call, decision: Decision) -> None:
        """Trio: the decision is made, only the media task is awaited (no timeout, no 180)."""
        decision = normalize_decision(decision)
        if isinstance(decision, Accept | Defer):
            try:
                await self._open_media(call)
            except SessionError as exc:
                self._reject(call, 503, "Service Unavailable", f"no media: {exc}")
                return
        if not call.state.is_final:  # the caller may have cancelled meanwhile
            self._decided(call, decision)

    def _decided(self, call: Call, decision: Decision) -> None:
        if self._listened:
            assert call.incoming is not None
            self._publish(IncomingCallReceived(call.id, call.incoming))
        self._apply_decision(call, decision)

    async def _offer_to_handler(self, call: Call) -> None:
        try:
            await self._open_media(call)
        except SessionError as exc:
            self._reject(call, 503, "Service Unavailable", f"no media: {exc}")
            return
        if call.state.is_final or call.incoming is None:
            return
        incoming = call.incoming
        self._publish(IncomingCallReceived(call.id, incoming))
        self._ring_later(call)
        decision: Decision | None = None
        # The caller may give up (CANCEL) while the handler decides: _finish cancels this.
        scope = call.decide_scope = anyio.CancelScope()
        with scope:
            try:
                with anyio.fail_after(self.config.incoming_call_timeout):
                    answer = await self.handler.on_incoming_call(incoming)
                decision = normalize_decision(answer)
            except TimeoutError:
                self._reject(call, 480, "Temporarily Unavailable", "no decision in time")
            except Exception:
                log.exception("on_incoming_call failed for call %s", call.id)
                self._reject(call, 500, "Server Internal Error", "call handler raised")
        call.decide_scope = None
        if decision is not None:
            await self._decide(call, decision)

    async def _decide(self, call: Call, decision: Decision) -> None:
        self._apply_decision(call, decision)

    def _apply_decision(self, call: Call, decision: Decision) -> None:
        if call.state.is_final:
            return
        match decision:
            case Accept(sdp=sdp):
                self._accept(call, sdp)
            case Reject(reason=reason, status=status):
                self._reject(call, status, reason, f"rejected: {status} {reason}")
            case Forward(target=target):
                contact = target if target.startswith("<") else f"<{target}>"
                self._respond(call, 302, "Moved Temporarily", headers=[("Contact", contact)])
                self._finish(call, CallState.Terminated, f"forwarded to {_bare(target)}", 302)
            case Defer():
                # The call rings (180) until the application decides or the deadline passes.
                self._respond(call, 180, "Ringing")
                self._set_state(call, CallState.Ringing, "deferred")
                self.task_group.start_soon(self._defer_deadline, call)

    def _ring_later(self, call: Call) -> None:
        # A handler that takes a while still gets the caller a 180 (one shared task, no
        # task per call: every call waits the same RING_AFTER, so the queue stays sorted).
        self._ringing.append((anyio.current_time() + RING_AFTER, call))
        if len(self._ringing) == 1 and self._ring_wake is not None:
            self._ring_wake.set()

    async def _ring_loop(self) -> None:
        """Send the 180 of every incoming call still undecided after ``RING_AFTER``."""
        queue = self._ringing
        while True:
            if not queue:
                self._ring_wake = anyio.Event()
                await self._ring_wake.wait()
                continue
            now = anyio.current_time()
            while queue and queue[0][0] <= now:
                _, call = queue.popleft()
                waiting = call.state is CallState.Initiating and call.invite_ref is not None
                if waiting and self._respond(call, 180, "Ringing"):
                    self._set_state(call, CallState.Ringing, "handler still deciding")
            if queue:
                # The 180's timing is loose: wake at most every RING_TICK, ringing a batch.
                await anyio.sleep(max(queue[0][0] - now, RING_TICK))

    async def _defer_deadline(self, call: Call) -> None:
        with anyio.move_on_after(self.config.incoming_call_timeout):
            await call.ended.wait()
        if not call.state.is_final and call.invite_ref is not None and not call.answered.is_set():
            self._reject(call, 480, "Temporarily Unavailable", "not answered in time")

    def _accept(self, call: Call, sdp: str | None) -> None:
        """Answer 200 with ``sdp`` (or a generated answer); media starts on confirmation."""
        try:
            if call.remote_offer is None:
                # RFC 3264 §4: an offerless INVITE gets our offer in the 200; answer in ACK.
                local = parse_offer(sdp) if sdp else self._offer_for(call)
            else:
                local = parse_offer(sdp) if sdp else self._answer_for(call, call.remote_offer)
                call.remote_sdp = call.remote_offer
        except SdpNegotiationError as exc:
            self._reject(call, exc.status, "Not Acceptable Here", str(exc))
            return
        call.local_sdp = local
        body = (_cached_text(call, local) or "").encode("utf-8", "surrogateescape")
        if not self._respond(call, 200, "OK", body=body, content_type="application/sdp"):
            self._finish(call, CallState.Failed, "the INVITE can no longer be answered")

    # --- outgoing calls -------------------------------------------------------------------

    def _progress(self, call: Call, did: DialogId | None, response: Response) -> None:
        if did is not None and call.dialog_id is None:
            self._bind_dialog(call, did)
        if call.state.is_final or call.state is CallState.Terminating:
            return
        if response.status == 183 and response.body:
            self._set_state(call, CallState.EarlyMedia, f"{response.status} {response.reason}")
        elif response.status in (180, 181, 182, 183):
            self._set_state(call, CallState.Ringing, f"{response.status} {response.reason}")

    def _confirmed(self, call: Call, did: DialogId, message: Request | Response) -> None:
        if call.dialog_id != did:
            if call.dialog_id is not None:
                self._by_dialog.pop(call.dialog_id, None)
            self._bind_dialog(call, did)
        if call.direction == "outgoing" and isinstance(message, Response):
            try:
                call.remote_sdp = parse_offer(message.body)
            except SdpNegotiationError as exc:
                log.warning("call %s: unusable SDP answer (%s); hanging up", call.id, exc)
                self._hang_up(call, "unusable SDP answer")
                return
        self._established(call)

    def _established(self, call: Call) -> None:
        local, remote = call.local_sdp, call.remote_sdp
        if local is not None and remote is not None:
            try:
                result = negotiated(local, remote, answer_is_local=call.direction == "incoming")
                call.media.apply(result)
            except SessionError as exc:
                log.warning("call %s: media not started: %s", call.id, exc)
                self._hang_up(call, f"media negotiation failed: {exc}")
                return
        if call.state.is_final:
            return
        call.established_at = datetime.now(UTC)
        self._set_state(call, CallState.Active, "answered")
        call.answered.set()
        listened, wanted = self._listened, self._wants("on_call_established")
        if not (listened or wanted):
            return  # hot path: nobody reads the SDP texts
        local_text, remote_text = _cached_text(call, local), _text(remote)
        if listened:
            self._publish(CallEstablished(call.id, local_text, remote_text))
        if wanted:
            hook = self.handler.on_call_established
            self._hook(functools.partial(hook, call.snapshot(), local_text, remote_text))

    def _answer_in_ack(self, call: Call, request: Request) -> None:
        try:
            call.remote_sdp = parse_offer(request.body)
            assert call.local_sdp is not None
            call.media.apply(negotiated(call.local_sdp, call.remote_sdp, answer_is_local=False))
        except (SessionError, AssertionError) as exc:
            self._hang_up(call, f"unusable SDP in ACK: {exc}")

    def _invite_failed(self, call: Call, response: Response) -> None:
        call.final_reason = response.reason
        if call.cancel_requested or response.status == 487:
            self._finish(call, CallState.Cancelled, "cancelled", response.status)
            return
        if 300 <= response.status < 400 and response.contacts:
            # RFC 3261 §8.1.3.4: a redirect names the new target in its Contact.
            call.final_reason = f"{response.reason} to {response.contacts[0].uri}"
        reason = f"{response.status} {call.final_reason}"
        self._finish(call, CallState.Failed, reason, response.status)

    def _dialog_ended(self, call: Call, reason: TerminationReason, status: int | None) -> None:
        if reason is TerminationReason.LOCAL_BYE:
            self._finish(call, CallState.Terminated, call.end_reason or "local hangup")
        elif reason in _BYE_REASONS:
            self._finish(call, CallState.Terminated, _BYE_REASONS[reason])
        elif reason in (
            TerminationReason.CANCELLED,
            TerminationReason.REJECTED,
            TerminationReason.FORK_LOST,
        ):
            # An early dialog ended with its INVITE: InviteFailed (caller) or our own
            # answer / CancelReceived (callee) ends the call with the real status.
            return
        else:
            self._finish(call, CallState.Failed, f"dialog ended: {reason.value}", status)

    # --- re-INVITE / UPDATE from the peer ------------------------------------------------

    def _reoffer(self, ref: int, did: DialogId, offer: bytes, *, reinvite: bool) -> None:
        call = self._call_for_dialog(did)
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
            local = self._answer_for(call, remote, direction)
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

    def _dtmf(self, session_id: SessionId, digit: str, duration_ms: int, method: str) -> None:
        self._publish(DtmfReceived(session_id, digit, duration_ms, method))
        if self._wants("on_dtmf"):
            self._hook(functools.partial(self.handler.on_dtmf, session_id, digit))


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
