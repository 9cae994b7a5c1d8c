"""The caller half of the dialog layer: the requests the session layer sends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from rvoip_sip_core import (
    Request,
    Uri,
    make_request,
    make_response,
    new_call_id,
    new_tag,
    parse_uri,
)

from ._dialog import Dialog, DialogId, DialogState, LegId, make_via
from ._errors import DialogUsageError
from ._events import ResponseForRequest, SendAck, TerminationReason
from ._records import ClientRequest, DeferredRequest, UacInvite
from ._refer import ReferSide
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

    def cancel(self, leg: LegId, *, headers: Headers = (), now: float) -> None:
        """Cancel our pending INVITE (RFC 3261 §9.1); ``headers`` e.g. a Reason (RFC 3326).

        The CANCEL waits for the first provisional response (§9.1: it SHOULD NOT be sent
        before one); once a final response arrived it is too late and nothing is sent.
        """
        inv = self._uac_invites.get(leg)
        if inv is None:
            raise DialogUsageError(f"no pending INVITE for call leg {leg}")
        if inv.winner is not None or inv.failed or inv.cancel_requested:
            return
        inv.cancel_requested = True
        inv.cancel_headers = tuple(headers)
        if inv.provisional:
            self._send_cancel(inv, now)

    def _send_cancel(self, inv: UacInvite, now: float) -> None:
        # RFC 3261 §9.1: same Request-URI, Call-ID, To, From, CSeq number, top Via and Route
        # as the INVITE; method CANCEL.
        invite = inv.request
        extra = [("Route", r) for r in invite.headers.get_all("Route")]
        extra.extend(inv.cancel_headers)
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
        self._cancelling[inv.leg] = inv
        self._at(inv.cancel_deadline, inv)
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
                    uas.bye_headers = tuple(headers)
                return uas.bye_ref
            with contextlib.suppress(DialogUsageError):
                self.ack(dialog_id, now=now)  # a held-back ACK goes out before the BYE
        return self._request(dialog, method, body, content_type, headers, refresh=False)

    def _request(
        self,
        dialog: Dialog,
        method: str,
        body: bytes,
        content_type: str | None,
        headers: Headers,
        *,
        refresh: bool,
        defer_ack: bool = False,
        ref: int | None = None,
    ) -> int:
        method = method.upper()
        if method in ("ACK", "CANCEL", "PRACK"):
            raise DialogUsageError(f"{method} is sent by the layer itself")
        if method == "INVITE" and dialog.state is not DialogState.CONFIRMED:
            raise DialogUsageError(f"re-INVITE needs a confirmed dialog: {dialog.id}")
        if method == "INVITE" and self._invite_in_progress(dialog.id):
            # RFC 3261 §14.1: no new INVITE while another is in progress in either direction:
            # it waits (see _send_deferred).
            ref = self._new_ref() if ref is None else ref
            headers = tuple(headers)
            self._deferred.append(
                DeferredRequest(ref, dialog, body, content_type, headers, defer_ack)
            )
            return ref
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
            ref=self._new_ref() if ref is None else ref,
            request=req,
            dialog_id=dialog.id,
            refresh=refresh,
            defer_ack=defer_ack,
            dialog=dialog,
        )
        self._send(creq)
        if method == "BYE":
            # RFC 3261 §15: the session and dialog end as soon as the BYE is sent.
            self._end_dialog(dialog, TerminationReason.LOCAL_BYE)
        return creq.ref

    def _send_deferred(self) -> None:
        """Send the re-INVITEs that waited for the dialog's INVITE transaction to end."""
        if not self._deferred:
            return  # hot path: runs after every input, and there is rarely one waiting
        for deferred in list(self._deferred):
            dialog = deferred.dialog
            if self._dialogs.get(dialog.id) is not dialog:
                # The dialog ended before the re-INVITE could go: report a 481 for it.
                self._deferred.remove(deferred)
                never_sent = dialog.build_request("INVITE", self.config, self._rng)
                gone = make_response(never_sent, 481, "Call/Transaction Does Not Exist")
                self._emit(ResponseForRequest(deferred.ref, dialog.id, "INVITE", gone))
            elif not self._invite_in_progress(dialog.id):
                self._deferred.remove(deferred)
                self._request(
                    dialog,
                    "INVITE",
                    deferred.body,
                    deferred.content_type,
                    deferred.headers,
                    refresh=False,
                    defer_ack=deferred.defer_ack,
                    ref=deferred.ref,
                )

    def bye(self, dialog_id: DialogId, *, headers: Headers = (), now: float) -> int:
        """Hang up a dialog with BYE (RFC 3261 §15.1.1); returns the request ref.

        ``headers`` are extra lines, e.g. ``Reason`` (RFC 3326).
        """
        return self.request(dialog_id, "BYE", headers=headers, now=now)

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
        return self._request(
            self._dialog(dialog_id),
            "INVITE",
            body,
            content_type,
            headers,
            refresh=False,
            defer_ack=defer_ack,
        )

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

    def _invite_in_progress(self, dialog_id: DialogId) -> bool:
        if self._pending_client(dialog_id, ("INVITE",)) or self._pending_server(
            dialog_id, ("INVITE",)
        ):
            return True
        # Our 2xx (initial INVITE or re-INVITE) not yet ACKed, or our ACK held back.
        if self._uas_invites.of(dialog_id):
            return True
        return dialog_id in self._held

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
        held = self._held.get(dialog.id)
        if held is not None and held[0] is creq:
            del self._held[dialog.id]
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
        held = self._held.get(dialog_id)
        if held is None:
            raise DialogUsageError(f"no 2xx waiting for an ACK in dialog {dialog_id}")
        creq, remote = held
        if body and content_type is None:
            content_type = "application/sdp"
        self._send_ack(creq, dialog, remote, body, content_type)
