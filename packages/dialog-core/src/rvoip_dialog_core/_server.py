"""The callee half of the dialog layer: requests received and the TU's answers."""

from __future__ import annotations

from collections.abc import Iterable

from rvoip_sip_core import RAck, Replaces, Request, Response, SipParseError, new_tag
from rvoip_sip_core._lexer import split_list

from ._base import LayerBase
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
from ._records import ServerRequest, UasInvite
from ._rules import (
    accepted_types,
    malformed,
    option_tags,
    parse_sipfrag_status,
    unacceptable_content_type,
    unsupported_extensions,
)
from ._states import Trigger

__all__ = ["SIPFRAG_TYPE", "ServerSide"]

SIPFRAG_TYPE = "message/sipfrag;version=2.0"


class ServerSide(LayerBase):
    """Handling of every request we receive, and the answers the TU gives."""

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
        self._now = now
        problem = malformed(request)
        if problem is not None:
            self.stats["request_malformed"] += 1
            if request.method != "ACK" and problem.status != 0:
                self._reply(request, server, problem.status, problem.reason[:100])
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
        if method not in self.config.all_methods:
            # RFC 3261 §8.2.1: an unknown method is answered 405 with Allow.
            self._reply(
                request, server, 405, headers=[("Allow", ", ".join(self.config.all_methods))]
            )
            return
        bad = unsupported_extensions(request, self.config)
        if bad:
            # RFC 3261 §8.2.2.3: 420 listing the unsupported option tags.
            self._reply(request, server, 420, headers=[("Unsupported", ", ".join(bad))])
            return
        to_tag = request.to.tag
        if to_tag is None:
            self._out_of_dialog(request, server, now)
            return
        did = DialogId(request.call_id, to_tag, request.from_.tag or "")
        dialog = self._dialogs.get(did)
        if dialog is None:
            # RFC 3261 §12.2.2: a request with a To tag that matches no dialog.
            self._reply(request, server, 481, "Call/Transaction Does Not Exist")
            return
        if not dialog.accept_remote_cseq(request):
            # RFC 3261 §12.2.2: lower CSeq than the last one: out of order, 500.
            self._reply(request, server, 500, "CSeq Out of Order")
            return
        if self._reject_body(request, server):
            return
        self._in_dialog(dialog, request, server, now)

    def _reject_body(self, request: Request, server: object) -> bool:
        if unacceptable_content_type(request, self.config):
            accept = accepted_types(request.method, self.config) or ()
            self._reply(request, server, 415, headers=[("Accept", ", ".join(accept))])
            return True
        if request.method in ("INVITE", "UPDATE"):
            min_se = self._session_timers.too_small(request)
            if min_se is not None:
                # RFC 4028 §8.1: Session-Expires below our Min-SE: 422 with Min-SE.
                self._reply(request, server, 422, headers=[("Min-SE", str(min_se))])
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
            pending = ServerRequest(self._new_ref(), request, server, did)
            self._server[pending.ref] = pending
            self._uas_invites[server] = UasInvite(pending=pending, dialog_id=did, reinvite=False)
            self._emit(IncomingInvite(pending.ref, did, request, replaces))
        elif method == "OPTIONS":
            self._answer_options(request, server)
            self._emit(OptionsReceived(None, request))
        elif method in self.config.extra_methods:
            pending = ServerRequest(self._new_ref(), request, server, None)
            self._server[pending.ref] = pending
            self._emit(RequestReceived(pending.ref, None, request))
        else:
            # RFC 3261 §12.2.2 / §15.1.2: an in-dialog method outside any dialog.
            self._reply(request, server, 481, "Call/Transaction Does Not Exist")

    def _replaces(self, request: Request, server: object) -> tuple[bool, DialogId | None]:
        """RFC 3891 §3: (ok, the dialog a Replaces names); not ok: an error was answered."""
        if "Replaces" not in request.headers or "replaces" not in self.config.supported:
            return True, None
        try:
            rep = request.header(Replaces)
        except SipParseError as exc:
            self._reply(request, server, 400, exc.reason[:100])
            return False, None
        if rep is None:
            return True, None
        # RFC 3891 §3: to-tag is our local tag, from-tag the peer's.
        target = DialogId(rep.call_id, rep.to_tag or "", rep.from_tag or "")
        dialog = self._dialogs.get(target)
        if dialog is None or (dialog.state is DialogState.EARLY and dialog.role is Role.UAS):
            # RFC 3891 §3: no such dialog, or an early one we did not initiate: 481.
            self._reply(request, server, 481, "Call/Transaction Does Not Exist")
            return False, None
        early_only = any(k.lower() == "early-only" for k, _ in rep.params)
        if early_only and dialog.state is DialogState.CONFIRMED:
            # RFC 3891 §3: early-only and the dialog is already confirmed: 486.
            self._reply(request, server, 486, "Busy Here")
            return False, None
        return True, target

    def _answer_options(self, request: Request, server: object) -> None:
        # RFC 3261 §11.2: OPTIONS answered with Allow, Accept and Supported.
        headers = [*self._capabilities(), ("Accept", ", ".join(self.config.session_content_types))]
        self._reply(request, server, 200, headers=headers)

    def _pending_client(self, did: DialogId, methods: tuple[str, ...]) -> bool:
        # A request waiting for its §14.1 retry is not pending: the peer's may go first.
        return any(
            c.dialog_id == did and c.request.method in methods and not c.final
            for c in self._client.values()
        )

    def _pending_server(self, did: DialogId, methods: tuple[str, ...]) -> bool:
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
                self._reply(request, server, 491, "Request Pending")
                return
            if self._pending_client(did, ("INVITE", "UPDATE")):
                # RFC 3261 §14.2: our own re-INVITE is pending: glare, 491.
                self._reply(request, server, 491, "Request Pending")
                return
            if self._pending_server(did, ("INVITE", "UPDATE")) or (
                method == "INVITE"
                and any(u.response is not None for _, u in self._uas_invites.of(did))
            ):
                # RFC 3261 §14.2: their previous re-INVITE is still pending: 500 + Retry-After.
                retry = str(self._rng.randint(0, 10))
                self._reply(request, server, 500, headers=[("Retry-After", retry)])
                return
            # RFC 3261 §12.2.2: a target refresh replaces the remote target.
            dialog.refresh_target(request)
            pending = ServerRequest(self._new_ref(), request, server, did)
            self._server[pending.ref] = pending
            if method == "INVITE":
                self._uas_invites[server] = UasInvite(pending=pending, dialog_id=did, reinvite=True)
                self._emit(ReInviteReceived(pending.ref, did, request, request.body))
            elif not request.body:
                # An UPDATE without an offer only refreshes the session (RFC 4028 §7.4,
                # RFC 3311 §5.2): the layer answers it itself.
                self.respond(pending.ref, 200, now=now)
            else:
                self._emit(UpdateReceived(pending.ref, did, request, request.body))
        elif method == "BYE":
            self._reply(request, server, 200)
            for handle, uas in self._uas_invites.of(did):
                if not uas.pending.final_sent:
                    # RFC 3261 §15.1.2: a BYE for an early dialog ends the pending INVITE (487).
                    del self._uas_invites[handle]
                    self._server.pop(uas.pending.ref, None)
                    uas.pending.final_sent = True
                    self._reply(uas.pending.request, handle, 487, to_tag=did.local_tag)
            inv = self._uac_invites.get(did.leg) if self._uac_invites else None
            if inv is not None:
                inv.early.pop(did.remote_tag, None)
            self._emit(ByeReceived(did, request))
            self._end_dialog(dialog, TerminationReason.REMOTE_BYE)
        elif method == "OPTIONS":
            self._answer_options(request, server)
            self._emit(OptionsReceived(did, request))
        elif method == "PRACK":
            self._on_prack(dialog, request, server, now)
        elif method == "INFO":
            self._reply(request, server, 200)
            self._emit(InfoReceived(did, request))
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
                self._reply(request, server, 400, "Missing or Multiple Refer-To")
                return
            pending = ServerRequest(self._new_ref(), request, server, did)
            self._server[pending.ref] = pending
            self._emit(ReferReceived(pending.ref, did, request, targets[0]))
        else:
            pending = ServerRequest(self._new_ref(), request, server, did)
            self._server[pending.ref] = pending
            self._emit(RequestReceived(pending.ref, did, request))

    def _on_notify(self, dialog: Dialog, request: Request, server: object) -> None:
        event = (request.headers.get("Event") or "").strip()
        if not event:
            # RFC 6665 §8.2.1: NOTIFY without Event is a bad event (489).
            self._reply(request, server, 489, "Bad Event")
            return
        dialog.refresh_target(request)
        state = (request.headers.get("Subscription-State") or "").strip().lower()
        self._reply(request, server, 200)
        status = parse_sipfrag_status(request.body) if request.body else None
        self._emit(
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
        uas = self._uas_invites.get(cancels) if cancels is not None else None
        if uas is None:
            # Without the transaction layer's match, fall back to §9.2 matching by branch.
            branch = request.top_via.branch
            for candidate in self._uas_invites.values():
                inv = candidate.pending.request
                if inv.top_via.branch == branch and inv.call_id == request.call_id:
                    uas = candidate
                    break
        if uas is None:
            # RFC 3261 §9.2: no matching transaction: 481.
            self._reply(request, server, 481, "Call/Transaction Does Not Exist")
            return
        # RFC 3261 §9.2: the CANCEL itself always gets 200.
        self._reply(request, server, 200, to_tag=uas.dialog_id.local_tag)
        if uas.pending.final_sent:
            return
        # RFC 3261 §9.2: a pending INVITE gets 487 Request Terminated.
        pending = uas.pending
        pending.final_sent = True
        self._server.pop(pending.ref, None)
        self._uas_invites.pop(pending.server, None)
        self._reply(pending.request, pending.server, 487, to_tag=uas.dialog_id.local_tag)
        self._emit(CancelReceived(uas.dialog_id, request))
        dialog = self._dialogs.get(uas.dialog_id)
        if dialog is not None and not uas.reinvite:
            self._end_dialog(dialog, TerminationReason.CANCELLED, 487)

    def on_ack(self, request: Request, now: float) -> None:
        """An ACK for a 2xx arrived (outside any transaction, RFC 3261 §13.3.1.4 / RFC 6026)."""
        if malformed(request) is not None:
            self.stats["ack_malformed"] += 1
            return
        did = DialogId(request.call_id, request.to.tag or "", request.from_.tag or "")
        seq = request.cseq.seq
        for handle, uas in self._uas_invites.of(did):
            if uas.response is not None and uas.pending.request.cseq.seq == seq:
                del self._uas_invites[handle]
                dialog = self._dialogs.get(did)
                if dialog is None:
                    return  # the dialog ended meanwhile; the ACK only completes the INVITE
                dialog.move(Trigger.ACK)
                self._emit(AckReceived(did, request))
                if uas.bye_ref is not None:
                    # RFC 3261 §15: the hang-up held back until the ACK goes out now.
                    self._send_bye(
                        dialog, TerminationReason.LOCAL_BYE, uas.bye_ref, uas.bye_headers
                    )
                return
        self.stats["ack_unmatched"] += 1

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
            extra.extend(self._capabilities())
        if method in ("INVITE", "UPDATE") and 100 < status < 300:
            extra.append(("Contact", f"<{self.config.contact}>"))
            if initial and "Record-Route" in request.headers:
                # RFC 3261 §12.1.1: dialog-creating responses copy Record-Route.
                extra.extend(("Record-Route", rr) for rr in request.headers.get_all("Record-Route"))
        negotiated: tuple[int, str] | None = None
        if method in ("INVITE", "UPDATE") and 200 <= status < 300:
            timer_headers, negotiated = self._session_timers.answer(request)
            extra.extend(timer_headers)
        extra.extend(headers)
        if body and content_type is None and method in ("INVITE", "UPDATE"):
            content_type = "application/sdp"
        did = pending.dialog_id
        to_tag = did.local_tag if did is not None else None
        uas = self._uas_invites.get(pending.server) if method == "INVITE" else None
        rel = (
            uas is not None and initial and 100 < status < 200 and self._reliable(request, reliable)
        )
        if rel and uas is not None:
            # RFC 3262 §3: Require: 100rel and an RSeq, random start, then +1.
            uas.rseq = uas.rseq + 1 if uas.rseq else self._rng.randint(1, 2**31 - 1)
            extra += [("Require", "100rel"), ("RSeq", str(uas.rseq))]
        if initial and did is not None and status > 100:
            self._uas_dialog(request, did, status)
        response = self._reply(
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
                self._session_timers.start(did, interval, refresher == "uas", now)
            else:
                self._session_timers.stop(did)
        if uas is not None:
            uas.reliable, uas.prack_at, uas.prack_give_up = None, None, None
            uas.reliable_queue.clear()
            if status < 300:
                uas.response = response
                uas.interval = self.config.t1
                uas.retransmit_at = now + self.config.t1
                uas.give_up_at = now + 64 * self.config.t1
                self._at_uas(uas)
            else:
                del self._uas_invites[pending.server]
        if initial and did is not None and status >= 300:
            dialog = self._dialogs.get(did)
            if dialog is not None:
                self._end_dialog(dialog, TerminationReason.REJECTED, status)
        return response

    def _reliable(self, request: Request, asked: bool | None) -> bool:
        if "100rel" not in self.config.supported:
            return False
        if "100rel" in option_tags(request, "Require"):
            return True
        return bool(asked) and "100rel" in option_tags(request, "Supported")

    def _send_reliable(self, uas: UasInvite, response: Response, now: float) -> None:
        # RFC 3262 §3: retransmit from T1, doubling, until the PRACK; give up at 64*T1.
        self._actions.append(SendResponse(response, uas.pending.server))
        uas.reliable = response
        uas.prack_interval = self.config.t1
        uas.prack_at = now + self.config.t1
        uas.prack_give_up = now + 64 * self.config.t1
        self._at_uas(uas)

    def _on_prack(self, dialog: Dialog, request: Request, server: object, now: float) -> None:
        try:
            rack = request.header(RAck)
        except SipParseError:
            rack = None
        for _, uas in self._uas_invites.of(dialog.id):
            out = uas.reliable
            if (
                rack is not None
                and out is not None
                and rack.method == "INVITE"
                and rack.cseq == uas.pending.request.cseq.seq
                and rack.rseq == uas.rseq - len(uas.reliable_queue)
            ):
                self._reply(request, server, 200)
                uas.reliable, uas.prack_at, uas.prack_give_up = None, None, None
                if uas.reliable_queue:
                    self._send_reliable(uas, uas.reliable_queue.pop(0), now)
                else:
                    self._at_uas(uas)
                self._emit(PrackReceived(dialog.id, request))
                return
        # RFC 3262 §3: a PRACK that matches no unacknowledged reliable provisional: 481.
        self._reply(request, server, 481, "Call/Transaction Does Not Exist")

    def _uas_dialog(self, request: Request, did: DialogId, status: int) -> None:
        dialog = self._dialogs.get(did)
        if status >= 300:
            return
        if dialog is None:
            dialog = Dialog.from_uas(request, did.local_tag, dialog_id=did)
            self._dialogs[did] = dialog
            if status < 200:
                self._emit(DialogEarly(did, request))
        if 200 <= status < 300 and dialog.state is DialogState.EARLY:
            dialog.move(Trigger.SUCCESS)
            self._emit(DialogConfirmed(did, request))
