"""UAS side: every request we receive, the TU's answers, 2xx and reliable-1xx retransmission.

Requests are checked (``malformed`` and the dialog rules) before anything acts on them; an
INVITE's 2xx is retransmitted until its ACK (RFC 3261 §13.3.1.4) and a reliable
provisional until its PRACK (RFC 3262 §3), each on the layer's timeline.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from rvoip_sip_core import (
    RAck,
    Replaces,
    Request,
    Response,
    SipParseError,
    SipUri,
    make_response,
    new_tag,
)
from rvoip_sip_core._lexer import split_list

from ._client import ClientRequests
from ._config import DialogConfig
from ._dialog import Dialog, DialogId, DialogState, Role
from ._errors import DialogUsageError
from ._events import (
    AckReceived,
    ByeReceived,
    CancelReceived,
    DialogConfirmed,
    DialogEarly,
    IncomingInvite,
    InfoReceived,
    NotifyReceived,
    OptionsReceived,
    PrackReceived,
    ReferReceived,
    ReInviteReceived,
    RequestReceived,
    SendResponse,
    TerminationReason,
    UpdateReceived,
)
from ._hooks import LayerHooks
from ._outbox import Outbox
from ._records import DialogTable, ServerRequest, UasInvite
from ._rules import (
    accepted_types,
    malformed,
    option_tags,
    parse_sipfrag_status,
    unacceptable_content_type,
    unsupported_extensions,
)
from ._session_timer import SessionTimers, allows_update
from ._states import Trigger
from ._store import DialogStore
from ._timeline import Timeline

__all__ = ["SIPFRAG_TYPE", "UasRequests"]

SIPFRAG_TYPE = "message/sipfrag;version=2.0"

# RFC 6665: the methods the subscription usages (``_subscriptions``) are asked about first.
_EVENT_METHODS = frozenset({"SUBSCRIBE", "NOTIFY"})


class UasRequests:
    """Requests we received (awaiting an answer) and our INVITEs' answers awaiting ACK/PRACK.

    Args:
        config: Identity, timers and capabilities of the layer.
        rng: Source of To tags, RSeq starts and Retry-After values.
        stats: The layer's counters.
        outbox: Where actions and events go.
        store: The live dialogs.
        timeline: The layer's deadlines (2xx and reliable 1xx retransmission).
        timers: Session timers (negotiated in our 2xx to INVITE/UPDATE).
        client: Our client transactions (glare: is a request of ours pending?).
        hooks: The façade (ending dialogs, sending a BYE).
    """

    def __init__(
        self,
        config: DialogConfig,
        rng: random.Random,
        stats: Counter[str],
        outbox: Outbox,
        store: DialogStore,
        timeline: Timeline,
        timers: SessionTimers,
        client: ClientRequests,
        hooks: LayerHooks,
    ) -> None:
        self._config = config
        self._rng = rng
        self._stats = stats
        self._out = outbox
        self._store = store
        self._timeline = timeline
        self._timers = timers
        self._client = client
        self._hooks = hooks
        self._invites: DialogTable[object, UasInvite] = DialogTable()
        self._server: DialogTable[int, ServerRequest] = DialogTable()

    def configure(self, config: DialogConfig) -> None:
        """Use a new configuration from now on."""
        self._config = config

    # --- transaction-layer input: requests ------------------------------------------------------

    def on_request(
        self, request: Request, server: object, now: float, *, cancels: object | None = None
    ) -> None:
        """A request arrived on a new server transaction (``server`` is the driver's handle).

        Args:
            request: The request.
            server: Handle of its server transaction, given back in :class:`SendResponse`.
            now: Current time.
            cancels: For CANCEL, the handle of the INVITE transaction it matches (§9.2).
        """
        problem = malformed(request)
        if problem is not None:
            self._stats["request_malformed"] += 1
            if request.method != "ACK" and problem.status != 0:
                self.reply(request, server, problem.status, problem.reason[:100])
            return
        self._on_valid_request(request, server, now, cancels)

    def _on_valid_request(
        self, request: Request, server: object, now: float, cancels: object | None
    ) -> None:
        method = request.method
        if method == "ACK":
            self.on_ack(request, now)
            return
        if method == "CANCEL":
            self._on_cancel(request, server, cancels, now)
            return
        if method not in self._config.all_methods:
            # RFC 3261 §8.2.1: an unknown method is answered 405 with Allow.
            self.reply(
                request, server, 405, headers=[("Allow", ", ".join(self._config.all_methods))]
            )
            return
        bad = unsupported_extensions(request, self._config)
        if bad:
            # RFC 3261 §8.2.2.3: 420 listing the unsupported option tags.
            self.reply(request, server, 420, headers=[("Unsupported", ", ".join(bad))])
            return
        if method in _EVENT_METHODS and self._hooks.event_request(request, server, now):
            return
        to_tag = request.to.tag
        if to_tag is None:
            self._out_of_dialog(request, server, now)
            return
        did = DialogId(request.call_id, to_tag, request.from_.tag or "")
        dialog = self._store.get(did)
        if dialog is None:
            # RFC 3261 §12.2.2: a request with a To tag that matches no dialog.
            self.reply(request, server, 481, "Call/Transaction Does Not Exist")
            return
        if not dialog.accept_remote_cseq(request):
            # RFC 3261 §12.2.2: lower CSeq than the last one: out of order, 500.
            self.reply(request, server, 500, "CSeq Out of Order")
            return
        if self._reject_body(request, server):
            return
        self._in_dialog(dialog, request, server, now)

    def _reject_body(self, request: Request, server: object) -> bool:
        if unacceptable_content_type(request, self._config):
            accept = accepted_types(request.method, self._config) or ()
            self.reply(request, server, 415, headers=[("Accept", ", ".join(accept))])
            return True
        if request.method in ("INVITE", "UPDATE"):
            min_se = self._timers.too_small(request)
            if min_se is not None:
                # RFC 4028 §8.1: Session-Expires below our Min-SE: 422 with Min-SE.
                self.reply(request, server, 422, headers=[("Min-SE", str(min_se))])
                return True
        return False

    def _out_of_dialog(self, request: Request, server: object, now: float) -> None:
        method = request.method
        if method == "INVITE":
            if self._reject_body(request, server):
                return
            ok, replaces = self._replaces(request, server)
            if not ok:
                return
            did = DialogId(request.call_id, new_tag(self._rng), request.from_.tag or "")
            pending = ServerRequest(self._hooks.new_ref(), request, server, did)
            self._server[pending.ref] = pending
            self._invites[server] = UasInvite(pending=pending, dialog_id=did, reinvite=False)
            self._out.emit(IncomingInvite(pending.ref, did, request, replaces))
        elif method == "OPTIONS":
            self._answer_options(request, server)
            self._out.emit(OptionsReceived(None, request))
        elif method in self._config.extra_methods:
            pending = ServerRequest(self._hooks.new_ref(), request, server, None)
            self._server[pending.ref] = pending
            self._out.emit(RequestReceived(pending.ref, None, request))
        else:
            # RFC 3261 §12.2.2 / §15.1.2: an in-dialog method outside any dialog.
            self.reply(request, server, 481, "Call/Transaction Does Not Exist")

    def _replaces(self, request: Request, server: object) -> tuple[bool, DialogId | None]:
        """RFC 3891 §3: (ok, the dialog a Replaces names); not ok: an error was answered."""
        if "Replaces" not in request.headers or "replaces" not in self._config.supported:
            return True, None
        if len(request.headers.get_all("Replaces")) > 1:
            # RFC 3891 §3: "If more than one Replaces header field is present in an INVITE
            # ... the UAS MUST reject the request with a 400 Bad Request response."
            self.reply(request, server, 400, "Multiple Replaces")
            return False, None
        try:
            rep = request.header(Replaces)
        except SipParseError as exc:
            self.reply(request, server, 400, exc.reason[:100])
            return False, None
        if rep is None:
            return True, None
        # RFC 3891 §3: "the to-tag parameter is compared to the local tag, and the
        # from-tag parameter is compared to the remote tag" (the header is read from the
        # point of view of the UA receiving it).
        target = DialogId(rep.call_id, rep.to_tag or "", rep.from_tag or "")
        dialog = self._store.get(target)
        if dialog is None or (dialog.state is DialogState.EARLY and dialog.role is Role.UAS):
            # RFC 3891 §3: no match -> 481; "If the Replaces header field matches an early
            # dialog that was not initiated by this UA, it returns a 481". An early dialog
            # we initiated (we are its UAC) may be replaced: the TU cancels it.
            self.reply(request, server, 481, "Call/Transaction Does Not Exist")
            return False, None
        early_only = any(k.lower() == "early-only" for k, _ in rep.params)
        if early_only and dialog.state is DialogState.CONFIRMED:
            # RFC 3891 §3: early-only and the dialog is already confirmed: 486.
            self.reply(request, server, 486, "Busy Here")
            return False, None
        return True, target

    def _answer_options(self, request: Request, server: object) -> None:
        # RFC 3261 §11.2: OPTIONS answered with Allow, Accept and Supported.
        headers = [
            *self._config.capabilities,
            ("Accept", ", ".join(self._config.session_content_types)),
        ]
        self.reply(request, server, 200, headers=headers)

    def pending(self, did: DialogId, methods: tuple[str, ...]) -> bool:
        """Whether a request of the peer's in ``methods`` awaits our answer in the dialog."""
        # The initial INVITE (no To tag) does not count: UPDATE is allowed while it is
        # pending (RFC 3311 §5.1).
        return any(
            p.request.method in methods and p.request.to.tag is not None
            for _, p in self._server.of(did)
        )

    def _in_dialog(self, dialog: Dialog, request: Request, server: object, now: float) -> None:
        method = request.method
        did = dialog.id
        if method in ("INVITE", "UPDATE"):
            if method == "INVITE" and dialog.state is not DialogState.CONFIRMED:
                self.reply(request, server, 491, "Request Pending")
                return
            if self._client.pending(did, ("INVITE", "UPDATE")):
                # RFC 3261 §14.2: our own re-INVITE is pending: glare, 491.
                self.reply(request, server, 491, "Request Pending")
                return
            if self.pending(did, ("INVITE", "UPDATE")) or (
                method == "INVITE" and any(u.response is not None for _, u in self._invites.of(did))
            ):
                # RFC 3261 §14.2: their previous re-INVITE is still pending: 500 + Retry-After.
                retry = str(self._rng.randint(0, 10))
                self.reply(request, server, 500, headers=[("Retry-After", retry)])
                return
            # RFC 3261 §12.2.2: a target refresh replaces the remote target.
            dialog.refresh_target(request)
            pending = ServerRequest(self._hooks.new_ref(), request, server, did)
            self._server[pending.ref] = pending
            if method == "INVITE":
                self._invites[server] = UasInvite(pending=pending, dialog_id=did, reinvite=True)
                self._out.emit(ReInviteReceived(pending.ref, did, request, request.body))
            elif not request.body:
                # An UPDATE without an offer only refreshes the session (RFC 4028 §7.4,
                # RFC 3311 §5.2): the layer answers it itself.
                self.respond(pending.ref, 200, now=now)
            else:
                self._out.emit(UpdateReceived(pending.ref, did, request, request.body))
        elif method == "BYE":
            self.reply(request, server, 200)
            for handle, uas in self._invites.of(did):
                if not uas.pending.final_sent:
                    # RFC 3261 §15.1.2: a BYE for an early dialog ends the pending INVITE (487).
                    self._drop(handle)
                    self._server.pop(uas.pending.ref, None)
                    uas.pending.final_sent = True
                    self.reply(uas.pending.request, handle, 487, to_tag=did.local_tag)
            self._out.emit(ByeReceived(did, request))
            self._hooks.end_dialog(dialog, TerminationReason.REMOTE_BYE)
        elif method == "OPTIONS":
            self._answer_options(request, server)
            self._out.emit(OptionsReceived(did, request))
        elif method == "PRACK":
            self._on_prack(dialog, request, server, now)
        elif method == "INFO":
            self.reply(request, server, 200)
            self._out.emit(InfoReceived(did, request))
        elif method == "NOTIFY":
            self._on_notify(dialog, request, server)
        elif method == "REFER":
            try:
                targets = [
                    t for line in request.headers.get_all("Refer-To") for t in split_list(line)
                ]
            except SipParseError:
                targets = []
            if len(targets) != 1:
                # RFC 3515 §2.4.1: exactly one Refer-To, else 400.
                self.reply(request, server, 400, "Missing or Multiple Refer-To")
                return
            pending = ServerRequest(self._hooks.new_ref(), request, server, did)
            self._server[pending.ref] = pending
            self._out.emit(ReferReceived(pending.ref, did, request, targets[0]))
        else:
            pending = ServerRequest(self._hooks.new_ref(), request, server, did)
            self._server[pending.ref] = pending
            self._out.emit(RequestReceived(pending.ref, did, request))

    def _on_notify(self, dialog: Dialog, request: Request, server: object) -> None:
        event = (request.headers.get("Event") or "").strip()
        if not event:
            # RFC 6665 §8.2.1: NOTIFY without Event is a bad event (489).
            self.reply(request, server, 489, "Bad Event")
            return
        dialog.refresh_target(request)
        state = (request.headers.get("Subscription-State") or "").strip().lower()
        self.reply(request, server, 200)
        status = parse_sipfrag_status(request.body) if request.body else None
        self._out.emit(
            NotifyReceived(
                dialog.id,
                request,
                event.split(";")[0].strip().lower(),
                status,
                state.startswith("terminated"),
            )
        )

    def _on_cancel(
        self, request: Request, server: object, cancels: object | None, now: float
    ) -> None:
        uas = self._invites.get(cancels) if cancels is not None else None
        if uas is None:
            # Without the transaction layer's match, fall back to §9.2 matching by branch.
            branch = request.top_via.branch
            for candidate in self._invites.values():
                inv = candidate.pending.request
                if inv.top_via.branch == branch and inv.call_id == request.call_id:
                    uas = candidate
                    break
        if uas is None:
            # RFC 3261 §9.2: no matching transaction: 481.
            self.reply(request, server, 481, "Call/Transaction Does Not Exist")
            return
        # RFC 3261 §9.2: the CANCEL itself always gets 200.
        self.reply(request, server, 200, to_tag=uas.dialog_id.local_tag)
        if uas.pending.final_sent:
            return
        # RFC 3261 §9.2: a pending INVITE gets 487 Request Terminated.
        pending = uas.pending
        pending.final_sent = True
        self._server.pop(pending.ref, None)
        self._drop(pending.server)
        self.reply(pending.request, pending.server, 487, to_tag=uas.dialog_id.local_tag)
        self._out.emit(CancelReceived(uas.dialog_id, request))
        dialog = self._store.get(uas.dialog_id)
        if dialog is not None and not uas.reinvite:
            self._hooks.end_dialog(dialog, TerminationReason.CANCELLED, 487)

    def on_ack(self, request: Request, now: float) -> None:
        """An ACK for a 2xx arrived (outside any transaction, RFC 3261 §13.3.1.4 / RFC 6026)."""
        if malformed(request) is not None:
            self._stats["ack_malformed"] += 1
            return
        did = DialogId(request.call_id, request.to.tag or "", request.from_.tag or "")
        seq = request.cseq.seq
        for handle, uas in self._invites.of(did):
            if uas.response is not None and uas.pending.request.cseq.seq == seq:
                self._drop(handle)
                dialog = self._store.get(did)
                if dialog is None:
                    return  # the dialog ended meanwhile; the ACK only completes the INVITE
                dialog.move(Trigger.ACK)
                self._out.emit(AckReceived(did, request))
                if uas.bye_ref is not None:
                    # RFC 3261 §15: the hang-up held back until the ACK goes out now.
                    self._hooks.send_bye(
                        dialog, TerminationReason.LOCAL_BYE, uas.bye_ref, uas.bye_headers
                    )
                return
        self._stats["ack_unmatched"] += 1

    # --- session-layer commands: answers ----------------------------------------------------

    def respond(
        self,
        ref: int,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        reliable: bool | None = None,
        now: float,
    ) -> Response:
        """Answer a request the TU was given (:class:`IncomingInvite`, re-INVITE, REFER …).

        For INVITE a tagged 1xx creates the early dialog, a 2xx confirms it and is
        retransmitted until the ACK (RFC 3261 §13.3.1.4), a 3xx–6xx ends it. A 1xx is
        sent reliably (RFC 3262, PRACKed) when the INVITE requires ``100rel``, or when
        ``reliable`` is True and the INVITE supports it.

        Returns:
            The response sent.

        Raises:
            DialogUsageError: unknown ref, or a final response was already sent.
        """
        pending = self._server.get(ref)
        if pending is None or pending.final_sent:
            raise DialogUsageError(f"no request awaiting an answer with ref {ref}")
        if not 100 <= status <= 699:
            raise DialogUsageError(f"not a SIP status code: {status}")
        request = pending.request
        method = request.method
        extra: list[tuple[str, str]] = []
        initial = method == "INVITE" and request.to.tag is None
        if method in ("INVITE", "UPDATE", "OPTIONS") and status > 100:
            extra.extend(self._config.capabilities)
        if method in ("INVITE", "UPDATE") and 100 < status < 300:
            # RFC 3261 §12.1.1 / RFC 5630: a sips Contact only for a secure request; for a
            # sip: request the Contact names the transport it came over (its top Via).
            contact = self._config.contact_for(
                request.top_via.transport.upper(), is_secure_request(request)
            )
            extra.append(("Contact", f"<{contact}>"))
            if initial and "Record-Route" in request.headers:
                # RFC 3261 §12.1.1: dialog-creating responses copy Record-Route.
                extra.extend(("Record-Route", rr) for rr in request.headers.get_all("Record-Route"))
        negotiated: tuple[int, str] | None = None
        if method in ("INVITE", "UPDATE") and 200 <= status < 300:
            timer_headers, negotiated = self._timers.answer(
                request, initial=initial, dialog_id=pending.dialog_id
            )
            extra.extend(timer_headers)
        extra.extend(headers)
        if body and content_type is None and method in ("INVITE", "UPDATE"):
            content_type = "application/sdp"
        did = pending.dialog_id
        to_tag = did.local_tag if did is not None else None
        uas = self._invites.get(pending.server) if method == "INVITE" else None
        rel = (
            uas is not None and initial and 100 < status < 200 and self._reliable(request, reliable)
        )
        if rel and uas is not None:
            # RFC 3262 §3: Require: 100rel and an RSeq, random start, then +1.
            uas.rseq = uas.rseq + 1 if uas.rseq else self._rng.randint(1, 2**31 - 1)
            extra += [("Require", "100rel"), ("RSeq", str(uas.rseq))]
        if initial and did is not None and status > 100:
            self._uas_dialog(request, did, status)
        response = self.reply(
            request,
            pending.server,
            status,
            reason,
            to_tag=to_tag if status > 100 else None,
            headers=extra,
            body=body,
            content_type=content_type,
            send=not rel,
        )
        if rel and uas is not None:
            if uas.reliable is None:
                self._send_reliable(uas, response, now)
            else:
                # RFC 3262 §3: one unacknowledged reliable provisional at a time.
                uas.reliable_queue.append(response)
        if status < 200:
            return response
        pending.final_sent = True
        self._server.pop(ref, None)
        if did is not None and method in ("INVITE", "UPDATE") and status < 300:
            if negotiated is not None:
                interval, refresher = negotiated
                # Our own timer when the peer asked for none (RFC 4028 §9): the answer
                # carries the one cached Session-Expires line of our own interval.
                own = bool(timer_headers) and timer_headers is self._timers.own_headers()
                self._timers.start(
                    did,
                    interval,
                    refresher == "uas",
                    now,
                    own=own,
                    update_ok=allows_update(request),
                )
            else:
                self._timers.stop(did)
        if uas is not None:
            uas.reliable, uas.prack_at, uas.prack_give_up = None, None, None
            uas.reliable_queue.clear()
            if status < 300:
                uas.response = response
                uas.interval = self._config.t1
                uas.retransmit_at = now + self._config.t1
                uas.give_up_at = now + 64 * self._config.t1
                self._at(uas)
            else:
                self._drop(pending.server)
        if initial and did is not None and status >= 300:
            dialog = self._store.get(did)
            if dialog is not None:
                self._hooks.end_dialog(dialog, TerminationReason.REJECTED, status)
        return response

    def _reliable(self, request: Request, asked: bool | None) -> bool:
        if "100rel" not in self._config.supported:
            return False
        if "100rel" in option_tags(request, "Require"):
            return True
        return bool(asked) and "100rel" in option_tags(request, "Supported")

    def _send_reliable(self, uas: UasInvite, response: Response, now: float) -> None:
        # RFC 3262 §3: retransmit from T1, doubling, until the PRACK; give up at 64*T1.
        self._out.send(SendResponse(response, uas.pending.server))
        uas.reliable = response
        uas.prack_interval = self._config.t1
        uas.prack_at = now + self._config.t1
        uas.prack_give_up = now + 64 * self._config.t1
        self._at(uas)

    def _on_prack(self, dialog: Dialog, request: Request, server: object, now: float) -> None:
        try:
            rack = request.header(RAck)
        except SipParseError:
            rack = None
        for _, uas in self._invites.of(dialog.id):
            out = uas.reliable
            if (
                rack is not None
                and out is not None
                and rack.method == "INVITE"
                and rack.cseq == uas.pending.request.cseq.seq
                and rack.rseq == uas.rseq - len(uas.reliable_queue)
            ):
                self.reply(request, server, 200)
                uas.reliable, uas.prack_at, uas.prack_give_up = None, None, None
                if uas.reliable_queue:
                    self._send_reliable(uas, uas.reliable_queue.pop(0), now)
                else:
                    self._at(uas)
                self._out.emit(PrackReceived(dialog.id, request))
                return
        # RFC 3262 §3: a PRACK that matches no unacknowledged reliable provisional: 481.
        self.reply(request, server, 481, "Call/Transaction Does Not Exist")

    def _uas_dialog(self, request: Request, did: DialogId, status: int) -> None:
        dialog = self._store.get(did)
        if status >= 300:
            return
        if dialog is None:
            dialog = Dialog.from_uas(request, did.local_tag, dialog_id=did)
            self._store.add(dialog)
            if status < 200:
                self._out.emit(DialogEarly(did, request))
        if 200 <= status < 300 and dialog.state is DialogState.EARLY:
            dialog.move(Trigger.SUCCESS)
            self._out.emit(DialogConfirmed(did, request))

    # --- shared helpers -------------------------------------------------------------------

    def reply(
        self,
        request: Request,
        server: object,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        send: bool = True,
    ) -> Response:
        """Build (and unless ``send`` is False, send) a response on server transaction ``server``.

        Returns:
            The response.
        """
        extra = list(headers)
        user_agent = self._config.user_agent
        if user_agent:
            extra.append(("Server", user_agent))
        tagged = request.to.tag is not None
        if to_tag is None and not tagged and status > 100:
            # RFC 3261 §8.2.6.2: a response without To tag gets one (stateless rejections).
            to_tag = new_tag(self._rng)
        response = make_response(
            request,
            status,
            reason,
            to_tag=None if tagged else to_tag,
            headers=extra,
            body=body,
            content_type=content_type,
        )
        if send:
            self._out.send(SendResponse(response, server))
        return response

    def _at(self, uas: UasInvite) -> None:
        """Put a UAS INVITE's earliest deadline on the timeline (none: off it)."""
        when = _uas_next(uas)
        if when is None:
            self._timeline.cancel(uas)
        else:
            self._timeline.set(uas, when)

    def _drop(self, handle: object) -> None:
        """Forget the UAS INVITE of server transaction ``handle`` and its deadline."""
        uas = self._invites.pop(handle)
        if uas is not None:
            self._timeline.cancel(uas)

    # --- questions of the other collaborators ---------------------------------------------

    def awaiting_ack(self, dialog_id: DialogId) -> UasInvite | None:
        """Our 2xx to the dialog's initial INVITE, still waiting for its ACK."""
        for _, uas in self._invites.of(dialog_id):
            if uas.response is not None and not uas.reinvite:
                return uas
        return None

    def has_invites(self, dialog_id: DialogId) -> bool:
        """Whether an INVITE of the peer's in the dialog is unanswered or un-ACKed."""
        return bool(self._invites.of(dialog_id))

    def hold_bye(self, dialog_id: DialogId, headers: Iterable[tuple[str, str]]) -> int | None:
        """RFC 3261 §15: the callee's BYE waits for the ACK of its 2xx; its ref (None: go)."""
        uas = self.awaiting_ack(dialog_id)
        if uas is None:
            return None
        if uas.bye_ref is None:
            uas.bye_ref = self._hooks.new_ref()
            uas.bye_headers = tuple(headers)
        return uas.bye_ref

    def awaiting_answer(self, ref: int) -> ServerRequest | None:
        """The received request ``ref`` while it still awaits the TU's final answer."""
        pending = self._server.get(ref)
        return None if pending is None or pending.final_sent else pending

    # --- time and the end of dialogs ------------------------------------------------------

    def on_deadline(self, uas: UasInvite, now: float) -> None:
        """A deadline of a UAS INVITE came: retransmit, or give up (popped from the timeline)."""
        handle = uas.pending.server
        if self._invites.get(handle) is not uas:
            return
        config = self._config
        if uas.prack_give_up is not None and uas.prack_give_up <= now:
            # RFC 3262 §3: no PRACK within 64*T1: reject the INVITE with a 5xx.
            self.respond(uas.pending.ref, 500, "Reliable Provisional Not Acknowledged", now=now)
            return
        if uas.prack_at is not None and uas.prack_at <= now and uas.reliable is not None:
            # RFC 3262 §3: retransmit the reliable provisional, T1 doubling each time.
            self._out.send(SendResponse(uas.reliable, handle))
            uas.prack_interval *= 2
            uas.prack_at = now + uas.prack_interval
        if uas.give_up_at is not None and uas.give_up_at <= now:
            # RFC 3261 §13.3.1.4: no ACK within 64*T1: end the dialog with a BYE.
            self._drop(handle)
            dialog = self._store.get(uas.dialog_id)
            if dialog is not None:
                self._hooks.send_bye(
                    dialog, TerminationReason.ACK_TIMEOUT, uas.bye_ref, uas.bye_headers
                )
            return
        if uas.retransmit_at is not None and uas.retransmit_at <= now and uas.response:
            # RFC 3261 §13.3.1.4: retransmit at T1, doubling up to T2.
            self._out.send(SendResponse(uas.response, handle))
            self._stats["2xx_retransmitted"] += 1
            uas.interval = min(uas.interval * 2, config.t2)
            uas.retransmit_at = now + uas.interval
        self._at(uas)

    def dialog_ended(self, did: DialogId) -> None:
        """RFC 3261 §15.1.2: requests still pending in the ended dialog get 487."""
        for ref, pending in self._server.of(did):
            if not pending.final_sent:
                del self._server[ref]
                pending.final_sent = True
                if self._invites.get(pending.server) is not None:
                    self._drop(pending.server)
                self.reply(pending.request, pending.server, 487, to_tag=did.local_tag)

    def counts(self) -> Counter[str]:
        """Sizes of the tables (to check nothing leaks after many calls)."""
        return Counter(uas_invites=len(self._invites), server=len(self._server))


def _uas_next(uas: UasInvite) -> float | None:
    """The earliest of a UAS INVITE's deadlines (2xx retransmission, ACK and PRACK waits)."""
    # hot path: no list built.
    best = None
    for t in (uas.retransmit_at, uas.give_up_at, uas.prack_at, uas.prack_give_up):
        if t is not None and (best is None or t < best):
            best = t
    return best


def is_secure_request(request: Request) -> bool:
    """Whether a dialog-creating request asks for a ``sips:`` Contact in its answers.

    RFC 3261 §12.1.1: "If the request that initiated the dialog contained a SIPS URI in the
    Request-URI or in the top Record-Route header field value, if there was any, or the
    Contact header field if there was no Record-Route header field, the Contact header
    field in the response MUST be a SIPS URI."
    """
    headers = request.headers
    if "sips:" not in request.uri_text[:5].lower():
        # hot path: a SIPS URI names its scheme, so text without "sips:" in the Record-Route
        # (else the Contact) cannot hold one: no URI parse for the usual sip: request.
        name = "Record-Route" if "Record-Route" in headers else "Contact"
        line = headers.get(name)
        if line is None or "sips:" not in line.lower():
            return False
    uri = request.uri
    if isinstance(uri, SipUri) and uri.scheme == "sips":
        return True
    if "Record-Route" in headers:
        routes = request.record_routes
        first = routes[0].uri if routes else None
    else:
        contacts = request.contacts
        first = contacts[0].uri if contacts else None
    return isinstance(first, SipUri) and first.scheme == "sips"
