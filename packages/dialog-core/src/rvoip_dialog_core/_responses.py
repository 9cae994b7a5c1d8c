"""The caller half of the dialog layer: responses to our requests, ACK, forks, glare."""

from __future__ import annotations

import attrs

from rvoip_sip_core import (
    Request,
    Response,
    RSeq,
    SessionExpires,
    SipParseError,
    make_response,
)

from ._client import ClientSide
from ._dialog import Dialog, DialogId, DialogState, Role, make_via
from ._events import (
    DialogConfirmed,
    DialogEarly,
    GlareRetryScheduled,
    InviteFailed,
    InviteProgress,
    ResponseForRequest,
    SessionRefreshDue,
    TerminationReason,
)
from ._records import ClientRequest, UacInvite
from ._rules import glare_delay, malformed, option_tags
from ._states import Trigger

__all__ = ["ResponseSide"]


class ResponseSide(ClientSide):
    """Responses to our requests: dialogs from 1xx/2xx, ACKs, forks, glare, failures."""

    # --- transaction-layer input: responses ---------------------------------------------------

    def on_response(self, response: Response, now: float) -> None:
        """A response arrived on one of our client transactions (including 2xx retransmissions)."""
        self._now = now
        if malformed(response) is not None:
            self.stats["response_malformed"] += 1
            return
        key = (response.top_via.branch or "", response.cseq.method)
        creq = self._client.get(key) or self._completed.get(key)
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
        self._complete(creq, now)
        wins = inv.winner is None and not inv.failed and not inv.cancel_requested
        if wins and creq.defer_ack:
            creq.awaiting_ack.add(remote)
            self._held[dialog.id] = (creq, remote)
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
        self._cancelling.pop(inv.leg, None)
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
            self._complete(creq, now)
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
                self._held[dialog.id] = (creq, "")
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
            self._at(creq.retry_at, creq)
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
