"""The caller half of the dialog layer: INVITE, CANCEL, in-dialog requests, responses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import attrs

from rvoip_sip_core import (
    Request,
    Response,
    RSeq,
    SessionExpires,
    SipParseError,
    Uri,
    make_request,
    make_response,
    new_call_id,
    new_tag,
    parse_uri,
)

from ._dialog import Dialog, DialogId, DialogState, LegId, Role, make_via
from ._errors import DialogUsageError
from ._events import (
    DialogConfirmed,
    DialogEarly,
    GlareRetryScheduled,
    InviteFailed,
    InviteProgress,
    ResponseForRequest,
    SendAck,
    SessionRefreshDue,
    TerminationReason,
)
from ._records import ClientRequest, UacInvite
from ._refer import ReferSide
from ._rules import glare_delay, malformed, option_tags
from ._states import Trigger, transition

__all__ = ["ClientSide"]

Headers = Iterable[tuple[str, str]]


class ClientSide(ReferSide):
    """What the session layer sends, and the responses that come back."""

    # --- session-layer commands: the caller side -------------------------------------------

    def invite(
        self,
        target: str | Uri,
        *,
        from_: str,
        to: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Headers = (),
        route: Iterable[str] = (),
        call_id: str | None = None,
        tag: str | None = None,
        cseq: int | None = None,
        defer_ack: bool = False,
        now: float,
    ) -> LegId:
        """Send an initial INVITE to ``target``; returns the call leg that names the call.

        Args:
            target: Request-URI.
            from_: Our From value (name-addr or URI) without a tag.
            to: The To value (defaults to the target).
            body: The offer (SDP), or empty for an offer-less INVITE.
            content_type: Type of ``body`` (``application/sdp`` when a body is given).
            headers: Extra header lines (e.g. Authorization when answering a challenge).
            route: A pre-loaded route set (outbound proxy), as Route values.
            call_id: Use this Call-ID instead of a fresh one.
            tag: Use this From tag; with ``call_id`` and a higher ``cseq`` this retries a
                challenged INVITE on the same call leg (RFC 3261 §22.2).
            cseq: CSeq number (default: random).
            defer_ack: Do not ACK the 2xx; the TU calls :meth:`ack` with the SDP answer
                (an offer-less INVITE gets the offer in the 2xx, RFC 3261 §13.2.1).
            now: Current time.
        """
        extra = list(self._capabilities())
        extra.extend(self._session_timers.request_headers(None))
        extra.extend(headers)
        if body and content_type is None:
            content_type = "application/sdp"
        request = self._new_request(
            "INVITE", target, from_, to, call_id, tag, cseq, extra, route, body, content_type
        )
        leg = LegId(request.call_id, request.from_.tag or "")
        if leg in self._uac_invites:
            raise DialogUsageError(f"call leg {leg} already has an INVITE pending")
        ref = self._new_ref()
        self._uac_invites[leg] = UacInvite(leg=leg, ref=ref, request=request)
        self._send(
            ClientRequest(ref=ref, request=request, dialog_id=None, leg=leg, defer_ack=defer_ack)
        )
        return leg

    def send_request(
        self,
        method: str,
        target: str | Uri,
        *,
        from_: str,
        to: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Headers = (),
        route: Iterable[str] = (),
        call_id: str | None = None,
        tag: str | None = None,
        cseq: int | None = None,
        now: float,
    ) -> int:
        """Send a request outside any dialog (OPTIONS, MESSAGE, REGISTER …); returns its ref.

        The final response comes back as :class:`ResponseForRequest` (dialog_id None).
        """
        method = method.upper()
        if method in ("INVITE", "ACK", "CANCEL", "BYE", "PRACK"):
            raise DialogUsageError(f"{method} is not sent with send_request")
        extra = list(self._capabilities()) if method == "OPTIONS" else []
        extra.extend(headers)
        request = self._new_request(
            method, target, from_, to, call_id, tag, cseq, extra, route, body, content_type
        )
        ref = self._new_ref()
        self._send(ClientRequest(ref=ref, request=request, dialog_id=None))
        return ref

    def _new_request(
        self,
        method: str,
        target: str | Uri,
        from_: str,
        to: str | None,
        call_id: str | None,
        tag: str | None,
        cseq: int | None,
        headers: list[tuple[str, str]],
        route: Iterable[str],
        body: bytes,
        content_type: str | None,
    ) -> Request:
        # RFC 3261 §8.1.1: a request outside a dialog, with a fresh Call-ID and From tag.
        uri = parse_uri(target) if isinstance(target, str) else target
        from_value = from_ if "<" in from_ else f"<{from_}>"
        to_value = to if to is not None else f"<{uri}>"
        if "<" not in to_value:
            to_value = f"<{to_value}>"
        extra = [("Route", r if "<" in r else f"<{r}>") for r in route]
        extra.extend(headers)
        own_contact = any(name.lower() in ("contact", "m") for name, _ in headers)
        if self.config.user_agent:
            extra.append(("User-Agent", self.config.user_agent))
        return make_request(
            method,
            uri,
            from_=f"{from_value};tag={tag or new_tag(self._rng)}",
            to=to_value,
            call_id=call_id or new_call_id(self._rng, self.config.via_host),
            cseq=cseq if cseq is not None else self._rng.randint(1, 2**16),
            via=make_via(self.config, self._rng),
            contact=None if own_contact else f"<{self.config.contact}>",
            headers=extra,
            body=body,
            content_type=content_type,
        )

    def cancel(self, leg: LegId, *, now: float) -> None:
        """Cancel our pending INVITE (RFC 3261 §9.1).

        The CANCEL waits for the first provisional response (§9.1: it SHOULD NOT be sent
        before one); once a final response arrived it is too late and nothing is sent.
        """
        inv = self._uac_invites.get(leg)
        if inv is None:
            raise DialogUsageError(f"no pending INVITE for call leg {leg}")
        if inv.winner is not None or inv.failed or inv.cancel_requested:
            return
        inv.cancel_requested = True
        if inv.provisional:
            self._send_cancel(inv, now)

    def _send_cancel(self, inv: UacInvite, now: float) -> None:
        # RFC 3261 §9.1: same Request-URI, Call-ID, To, From, CSeq number, top Via and Route
        # as the INVITE; method CANCEL.
        invite = inv.request
        extra = [("Route", r) for r in invite.headers.get_all("Route")]
        cancel = make_request(
            "CANCEL",
            invite.uri,
            from_=invite.headers.get("From") or "",
            to=invite.headers.get("To") or "",
            call_id=invite.call_id,
            cseq=invite.cseq.seq,
            via=invite.headers.get_all("Via")[0].split(",")[0].strip(),
            headers=extra,
        )
        inv.cancel_sent = True
        inv.cancel_deadline = now + 64 * self.config.t1
        self._send(ClientRequest(ref=inv.ref, request=cancel, dialog_id=None, leg=inv.leg))

    # --- session-layer commands: in-dialog requests ------------------------------------------

    def request(
        self,
        dialog_id: DialogId,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Headers = (),
        now: float,
    ) -> int:
        """Send any request in a dialog (RFC 3261 §12.2.1.1); returns its ref.

        The final response comes back as :class:`ResponseForRequest` with that ref. BYE ends
        the dialog at once (§15); re-INVITE and UPDATE are target refreshes and retried after
        a 491 (§14.1); the 2xx of a re-INVITE is ACKed by the layer.
        """
        self._now = now
        dialog = self._dialog(dialog_id)
        if method.upper() == "BYE":
            uas = self._awaiting_ack(dialog_id)
            if uas is not None:
                # RFC 3261 §15: the callee MUST NOT send BYE before the ACK of its 2xx
                # (or the ACK timeout); it is sent when that comes.
                if uas.bye_ref is None:
                    uas.bye_ref = self._new_ref()
                return uas.bye_ref
            with contextlib.suppress(DialogUsageError):
                self.ack(dialog_id, now=now)  # a held-back ACK goes out before the BYE
        return self._request(dialog, method, body, content_type, headers, refresh=False).ref

    def _request(
        self,
        dialog: Dialog,
        method: str,
        body: bytes,
        content_type: str | None,
        headers: Headers,
        *,
        refresh: bool,
    ) -> ClientRequest:
        method = method.upper()
        if method in ("ACK", "CANCEL", "PRACK"):
            raise DialogUsageError(f"{method} is sent by the layer itself")
        if method == "INVITE" and dialog.state is not DialogState.CONFIRMED:
            raise DialogUsageError(f"re-INVITE needs a confirmed dialog: {dialog.id}")
        if method == "INVITE" and self._invite_in_progress(dialog.id):
            # RFC 3261 §14.1: no new INVITE while another is in progress in either direction.
            raise DialogUsageError(f"an INVITE transaction is in progress in {dialog.id}")
        if method == "BYE":
            transition(dialog.role, dialog.state, Trigger.LOCAL_BYE)  # raises when not allowed
        extra = list(headers)
        if method in ("INVITE", "UPDATE", "OPTIONS"):
            extra[:0] = self._capabilities()
        if method in ("INVITE", "UPDATE"):
            extra.extend(self._session_timers.request_headers(dialog.id))
        if self.config.user_agent:
            extra.append(("User-Agent", self.config.user_agent))
        if body and content_type is None and method in ("INVITE", "UPDATE"):
            content_type = "application/sdp"
        req = dialog.build_request(
            method,
            self.config,
            self._rng,
            headers=tuple(extra),
            body=body,
            content_type=content_type,
        )
        creq = ClientRequest(
            ref=self._new_ref(), request=req, dialog_id=dialog.id, refresh=refresh, dialog=dialog
        )
        self._send(creq)
        if method == "BYE":
            # RFC 3261 §15: the session and dialog end as soon as the BYE is sent.
            self._end_dialog(dialog, TerminationReason.LOCAL_BYE)
        return creq

    def bye(self, dialog_id: DialogId, *, now: float) -> int:
        """Hang up a dialog with BYE (RFC 3261 §15.1.1); returns the request ref."""
        return self.request(dialog_id, "BYE", now=now)

    def reinvite(
        self,
        dialog_id: DialogId,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: Headers = (),
        defer_ack: bool = False,
        now: float,
    ) -> int:
        """Send a re-INVITE (new offer, or none) in a confirmed dialog (RFC 3261 §14.1).

        With ``defer_ack`` (an offer-less re-INVITE) the TU sends the ACK with :meth:`ack`.
        """
        creq = self._request(
            self._dialog(dialog_id), "INVITE", body, content_type, headers, refresh=False
        )
        creq.defer_ack = defer_ack
        return creq.ref

    def update(
        self, dialog_id: DialogId, body: bytes = b"", *, headers: Headers = (), now: float
    ) -> int:
        """Send an UPDATE (RFC 3311), e.g. to refresh the session or change media early."""
        return self.request(dialog_id, "UPDATE", body=body, headers=headers, now=now)

    def info(self, dialog_id: DialogId, body: bytes, content_type: str, *, now: float) -> int:
        """Send an INFO (e.g. ``application/dtmf-relay``) in a dialog."""
        return self.request(dialog_id, "INFO", body=body, content_type=content_type, now=now)

    def refer(
        self,
        dialog_id: DialogId,
        refer_to: str,
        *,
        referred_by: str | None = None,
        headers: Headers = (),
        now: float,
    ) -> int:
        """Send a REFER (RFC 3515): ask the peer to call ``refer_to`` and report by NOTIFY."""
        target = refer_to if "<" in refer_to else f"<{refer_to}>"
        extra = [("Refer-To", target)]
        if referred_by is not None:
            extra.append(("Referred-By", referred_by if "<" in referred_by else f"<{referred_by}>"))
        extra.extend(headers)
        return self.request(dialog_id, "REFER", headers=extra, now=now)

    # --- transaction-layer input: responses ---------------------------------------------------

    def on_response(self, response: Response, now: float) -> None:
        """A response arrived on one of our client transactions (including 2xx retransmissions)."""
        self._now = now
        if malformed(response) is not None:
            self.stats["response_malformed"] += 1
            return
        key = (response.top_via.branch or "", response.cseq.method)
        creq = self._client.get(key)
        if creq is None:
            self.stats["response_unmatched"] += 1
            return
        method = creq.request.method
        if method == "CANCEL":
            if response.status >= 200:
                self._client.pop(key, None)
            return
        if creq.leg is not None and method == "INVITE":
            self._initial_invite_response(creq, response, now)
        elif method == "INVITE":
            self._reinvite_response(creq, response, now)
        elif response.status >= 200:
            self._client.pop(key, None)
            self._final_for_request(creq, response, now)

    def on_timeout(self, request: Request, now: float) -> None:
        """Our client transaction for ``request`` timed out: treated as 408 (§8.1.3.1)."""
        self._failed(request, 408, "Request Timeout", now)

    def on_transport_error(self, request: Request, now: float) -> None:
        """The transport failed for ``request``: treated as 503 (RFC 3261 §8.1.3.1)."""
        self._failed(request, 503, "Service Unavailable", now)

    def _failed(self, request: Request, status: int, reason: str, now: float) -> None:
        key = (request.top_via.branch or "", request.method)
        creq = self._client.get(key)
        if creq is None or creq.final:
            return
        if request.method == "CANCEL":
            self._client.pop(key, None)
            return
        self.on_response(make_response(creq.request, status, reason), now)

    def _initial_invite_response(self, creq: ClientRequest, response: Response, now: float) -> None:
        assert creq.leg is not None
        inv = self._uac_invites.get(creq.leg)
        if inv is None:
            return
        status = response.status
        tag = response.to.tag
        if status < 200:
            if status == 100:
                # RFC 3261 §9.1: any provisional (100 too) means the CANCEL can go now.
                inv.provisional = True
                if inv.cancel_requested and not inv.cancel_sent:
                    self._send_cancel(inv, now)
                return
            rseq = self._reliable_rseq(response)
            if tag and rseq is not None:
                last = inv.rseqs.get(tag)
                if last is not None and rseq != last + 1:
                    # RFC 3262 §4: a retransmitted or out-of-order reliable 1xx is discarded.
                    self.stats["reliable_1xx_discarded"] += 1
                    return
            inv.provisional = True
            dialog_id: DialogId | None = None
            if tag and inv.winner is None and not inv.failed:
                early = inv.early.get(tag)
                if early is None:
                    early = Dialog.from_uac(inv.request, response)
                    inv.early[tag] = early
                    self._dialogs[early.id] = early
                    self._emit(DialogEarly(early.id, response))
                else:
                    early.move(Trigger.PROVISIONAL)
                    early.update_from_response(response)
                dialog_id = early.id
                if rseq is not None:
                    # RFC 3262 §4: PRACK each reliable provisional, RAck = RSeq CSeq method.
                    inv.rseqs[tag] = rseq
                    rack = f"{rseq} {inv.request.cseq.seq} INVITE"
                    prack = early.build_request(
                        "PRACK", self.config, self._rng, headers=(("RAck", rack),)
                    )
                    self._send(ClientRequest(self._new_ref(), prack, early.id, internal=True))
            self._emit(InviteProgress(inv.leg, dialog_id, response))
            if inv.cancel_requested and not inv.cancel_sent:
                self._send_cancel(inv, now)
            return
        if status >= 300:
            if creq.final:
                return
            creq.final = True
            self._client.pop((creq.request.top_via.branch or "", "INVITE"), None)
            if status == 422 and self._retry_422(inv, creq, response):
                return
            self._fail_invite(inv, response)
            return
        # A 2xx: the first one wins, later ones (other forks) are ACKed and BYEd (§13.2.2.4).
        remote = tag or ""
        if self._resend_ack(creq, remote):
            return
        dialog = inv.early.pop(remote, None)
        if dialog is None or dialog.state is DialogState.TERMINATED:
            dialog = Dialog.from_uac(inv.request, response)
        if dialog.state is DialogState.EARLY:
            dialog.move(Trigger.SUCCESS)
        dialog.update_from_response(response)
        creq.final = True
        creq.expires_at = now + 64 * self.config.t1
        wins = inv.winner is None and not inv.failed and not inv.cancel_requested
        if wins and creq.defer_ack:
            creq.awaiting_ack.add(remote)
        else:
            self._send_ack(creq, dialog, remote)
        if wins:
            inv.winner = dialog.id
            self._dialogs[dialog.id] = dialog
            self._session_timers.from_response(dialog.id, response, now)
            self._emit(DialogConfirmed(dialog.id, response))
            for loser in list(inv.early.values()):
                self._end_dialog(loser, TerminationReason.FORK_LOST)
            inv.early.clear()
            return
        # A losing fork, or an answer that crossed our CANCEL: end it at once with a BYE.
        self.stats["2xx_fork_byed"] += 1
        bye = dialog.build_request("BYE", self.config, self._rng)
        self._send(ClientRequest(ref=self._new_ref(), request=bye, dialog_id=None, internal=True))
        if self._dialogs.get(dialog.id) is dialog:
            # The TU saw this dialog early: tell it that it ended.
            reason = (
                TerminationReason.CANCELLED if inv.cancel_requested else TerminationReason.FORK_LOST
            )
            self._end_dialog(dialog, reason)
        if inv.winner is None and not inv.failed:
            self._fail_invite(inv, make_response(inv.request, 487, "Request Terminated"))

    def _invite_in_progress(self, dialog_id: DialogId) -> bool:
        if self._pending_client(dialog_id, ("INVITE",)) or self._pending_server(
            dialog_id, ("INVITE",)
        ):
            return True
        # Our 2xx (initial INVITE or re-INVITE) not yet ACKed, or our ACK held back.
        if any(u.dialog_id == dialog_id for u in self._uas_invites.values()):
            return True
        return any(
            c.request.method == "INVITE"
            and c.awaiting_ack
            and c.dialog_id in (dialog_id, None)
            and (c.leg is None or c.leg == dialog_id.leg)
            for c in self._client.values()
        )

    def _resend_ack(self, creq: ClientRequest, remote: str) -> bool:
        # RFC 3261 §13.2.2.4: each retransmission of the 2xx gets the same ACK again.
        ack = creq.acks.get(remote)
        if ack is not None:
            self.stats["2xx_retransmission"] += 1
            self._actions.append(SendAck(ack))
            return True
        if remote in creq.awaiting_ack:
            self.stats["2xx_awaiting_tu_ack"] += 1
            return True
        return False

    def _send_ack(
        self,
        creq: ClientRequest,
        dialog: Dialog,
        remote: str,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        # RFC 3261 §13.2.2.4: the ACK has the INVITE's CSeq number, a new branch, and goes
        # to the dialog's remote target along its route set.
        ack = dialog.build_request(
            "ACK",
            self.config,
            self._rng,
            cseq=creq.request.cseq.seq,
            body=body,
            content_type=content_type,
        )
        creq.acks[remote] = ack
        creq.awaiting_ack.discard(remote)
        self._actions.append(SendAck(ack))

    def ack(
        self,
        dialog_id: DialogId,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        now: float,
    ) -> None:
        """Send the ACK the layer held back (``defer_ack``), e.g. with the SDP answer.

        Raises:
            DialogUsageError: no 2xx of this dialog is waiting for an ACK.
        """
        dialog = self._dialog(dialog_id)
        for creq in self._client.values():
            if creq.request.method != "INVITE":
                continue
            if creq.leg == dialog_id.leg and dialog_id.remote_tag in creq.awaiting_ack:
                remote = dialog_id.remote_tag
            elif creq.dialog_id == dialog_id and "" in creq.awaiting_ack:
                remote = ""
            else:
                continue
            if body and content_type is None:
                content_type = "application/sdp"
            self._send_ack(creq, dialog, remote, body, content_type)
            return
        raise DialogUsageError(f"no 2xx waiting for an ACK in dialog {dialog_id}")

    def _reliable_rseq(self, response: Response) -> int | None:
        if "100rel" not in self.config.supported:
            return None
        if "100rel" not in option_tags(response, "Require"):
            return None
        try:
            rseq = response.header(RSeq)
        except SipParseError:
            return None
        return None if rseq is None else rseq.value

    def _retry_422(self, inv: UacInvite, creq: ClientRequest, response: Response) -> bool:
        # RFC 4028 §7.4: after 422, retry with Session-Expires (and Min-SE) raised to the
        # peer's Min-SE; a new CSeq and branch, same Call-ID and tags.
        interval = self._session_timers.retry_interval(response)
        asked = inv.request.header(SessionExpires)
        if interval is None or (asked is not None and asked.seconds >= interval):
            return False
        old = inv.request
        headers = old.headers.with_("Session-Expires", str(interval))
        headers = headers.with_("Min-SE", str(interval))
        headers = headers.with_("CSeq", f"{old.cseq.seq + 1} INVITE")
        headers = headers.with_("Via", make_via(self.config, self._rng))
        inv.request = attrs.evolve(old, headers=headers)
        self._send(ClientRequest(ref=inv.ref, request=inv.request, dialog_id=None, leg=inv.leg))
        return True

    def _fail_invite(self, inv: UacInvite, response: Response) -> None:
        inv.failed = True
        reason = TerminationReason.CANCELLED if inv.cancel_requested else TerminationReason.REJECTED
        if response.status in (408, 503) and not inv.cancel_requested:
            reason = TerminationReason.TIMEOUT if response.status == 408 else reason
        for early in list(inv.early.values()):
            self._end_dialog(early, reason, response.status)
        inv.early.clear()
        self._emit(InviteFailed(inv.leg, response))
        self._uac_invites.pop(inv.leg, None)

    def _reinvite_response(self, creq: ClientRequest, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            return
        dialog = self._dialogs.get(creq.dialog_id) if creq.dialog_id else None
        if 200 <= status < 300:
            if self._resend_ack(creq, ""):
                return
            creq.final = True
            creq.expires_at = now + 64 * self.config.t1
            if dialog is None:
                # The dialog ended (BYE) while the re-INVITE was out: ACK the 2xx anyway,
                # so the peer stops retransmitting it.
                if creq.dialog is not None:
                    self._send_ack(creq, creq.dialog, "")
                return
            # RFC 3261 §12.2.1.2: the 2xx to a target refresh updates the remote target.
            dialog.refresh_target(response)
            self._session_timers.from_response(dialog.id, response, now)
            if creq.defer_ack:
                creq.awaiting_ack.add("")
            else:
                self._send_ack(creq, dialog, "")
            self._emit(ResponseForRequest(creq.ref, creq.dialog_id, "INVITE", response))
            return
        if creq.final:
            return
        self._client.pop((creq.request.top_via.branch or "", "INVITE"), None)
        self._final_for_request(creq, response, now)

    def _final_for_request(self, creq: ClientRequest, response: Response, now: float) -> None:
        creq.final = True
        method = creq.request.method
        dialog = self._dialogs.get(creq.dialog_id) if creq.dialog_id else None
        if response.status == 491 and method in ("INVITE", "UPDATE") and dialog is not None:
            # RFC 3261 §14.1: glare; try again after a random wait.
            creq.final = False
            creq.retry_at = now + glare_delay(dialog.role is Role.UAC, self._rng)
            self._retries.append(creq)
            self._emit(GlareRetryScheduled(creq.ref, dialog.id, creq.retry_at))
            return
        if 200 <= response.status < 300 and method == "UPDATE" and dialog is not None:
            dialog.refresh_target(response)
            self._session_timers.from_response(dialog.id, response, now)
        elif creq.refresh and dialog is not None and response.status not in (408, 481):
            # RFC 4028 §7.4: the UPDATE refresh failed (e.g. 405): the TU re-INVITEs instead.
            self._emit(SessionRefreshDue(dialog.id))
        if not creq.internal and not creq.refresh:
            self._emit(ResponseForRequest(creq.ref, creq.dialog_id, method, response))
        if (
            dialog is not None
            and response.status in (408, 481)
            and method not in ("BYE", "PRACK")
            and self._awaiting_ack(dialog.id) is None
        ):
            # RFC 3261 §12.2.1.2: a 481 or 408 to a request in a dialog ends the dialog (not
            # to PRACK: RFC 3262 §3 answers 481 once the provisional is no longer pending).
            # Not while our 2xx waits for its ACK: the peer may just not have it yet; the
            # retransmissions go on and the ACK timeout ends a dead dialog.
            reason = (
                TerminationReason.NO_DIALOG if response.status == 481 else TerminationReason.TIMEOUT
            )
            self._end_dialog(dialog, reason, response.status)
