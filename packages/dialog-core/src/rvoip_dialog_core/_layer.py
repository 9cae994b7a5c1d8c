"""The sans-IO dialog layer: transaction events and ``now`` in, actions and TU events out.

Inputs come from the transaction layer (``on_request``, ``on_ack``, ``on_response``,
``on_timeout``, ``on_transport_error``) and from the session layer (``invite``, ``respond``,
``bye``, ``reinvite`` …). Outputs are pulled: ``take_actions()`` for the driver,
``take_events()`` for the session layer, ``next_deadline()`` / ``handle_timers(now)`` for time.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable

from rvoip_sip_core import Request, Response, make_response

from ._config import DialogConfig
from ._events import ResponseForRequest, SendResponse, TerminationReason
from ._records import ClientRequest, DeferredRequest, UasInvite
from ._responses import ResponseSide

__all__ = ["DialogLayer"]


class DialogLayer(ResponseSide):
    """All the dialogs of one user agent, as a sans-IO state machine.

    Args:
        config: Local identity, timers and advertised capabilities.
        rng: Source of tags, branches, Call-IDs and glare delays (inject a seeded one in tests).
    """

    def __init__(self, config: DialogConfig, *, rng: random.Random) -> None:
        super().__init__(config, rng)

    # --- inputs: each may end an INVITE transaction, releasing a waiting re-INVITE ----------

    def on_request(
        self, request: Request, server: object, now: float, *, cancels: object | None = None
    ) -> None:
        """A request arrived on a new server transaction (see :class:`ServerSide`)."""
        super().on_request(request, server, now, cancels=cancels)
        self._send_deferred()

    def on_ack(self, request: Request, now: float) -> None:
        """An ACK for one of our 2xx arrived."""
        super().on_ack(request, now)
        self._send_deferred()

    def on_response(self, response: Response, now: float) -> None:
        """A response arrived on one of our client transactions."""
        super().on_response(response, now)
        self._send_deferred()

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
        """Answer a request the TU was given (see :meth:`ServerSide.respond`)."""
        response = super().respond(
            ref,
            status,
            reason,
            body=body,
            content_type=content_type,
            headers=headers,
            reliable=reliable,
            now=now,
        )
        self._send_deferred()
        return response

    # --- time -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time ``handle_timers`` has work to do (None: nothing scheduled)."""
        # hot path (the driver asks after every message): heads of heaps, no table walks.
        best = self._timeline_next()
        session = self._session_timers.next_deadline()
        if session is not None and (best is None or session < best):
            best = session
        if self._expiry:
            completed = self._expiry[0][0]
            if best is None or completed < best:
                best = completed
        return best

    def handle_timers(self, now: float) -> None:
        """Run everything due at ``now``: 2xx retransmissions, ACK timeouts, glare retries."""
        self._now = now
        for key, creq in list(self._client.items()):
            if creq.expires_at is not None and creq.expires_at <= now:
                del self._client[key]
                if not creq.final and not creq.internal:
                    # A re-INVITE of an ended dialog never got its answer.
                    timeout = make_response(creq.request, 408, "Request Timeout")
                    self._emit(ResponseForRequest(creq.ref, creq.dialog_id, "INVITE", timeout))
                if creq.leg is not None:
                    self._uac_invites.pop(creq.leg, None)
        while self._expiry and self._expiry[0][0] <= now:
            at, key = self._expiry.popleft()
            done = self._completed.get(key)
            if done is None or done.expires_at != at:
                continue  # a later 2xx (another fork) extended it: a newer entry follows
            del self._completed[key]
            if done.leg is not None and self._uac_invites.get(done.leg) is not None:
                self._uac_invites.pop(done.leg, None)
            for did, (held, _) in list(self._held.items()):
                if held is done:
                    del self._held[did]  # the TU never sent its ACK
        for inv in list(self._cancelling.values()):
            if inv.winner is not None or inv.failed or self._uac_invites.get(inv.leg) is not inv:
                del self._cancelling[inv.leg]  # settled: a final response came
            elif inv.cancel_deadline is not None and inv.cancel_deadline <= now:
                del self._cancelling[inv.leg]
                # RFC 3261 §9.1: no final response 64*T1 after the CANCEL: give up (408).
                inv.cancel_deadline = None
                if inv.winner is None and not inv.failed:
                    branch = inv.request.top_via.branch or ""
                    self._client.pop((branch, "INVITE"), None)
                    self._client.pop((branch, "CANCEL"), None)
                    self._fail_invite(inv, make_response(inv.request, 408, "Request Timeout"))
        for creq in [c for c in self._retries if c.retry_at is not None and c.retry_at <= now]:
            self._retries.remove(creq)
            self._retry(creq)
        # Only the UAS INVITEs with a deadline due (their timeline entries), not all of them.
        heap, due = self._timeline, list[UasInvite]()
        while heap and heap[0][0] <= now:
            when, _, record = heapq.heappop(heap)
            if isinstance(record, UasInvite) and record not in due and self._live(when, record):
                due.append(record)
        for uas in due:
            if self._uas_invites.get(uas.pending.server) is uas:
                self._uas_timers(uas.pending.server, uas, now)
        self._send_deferred()
        for dialog_id, timer in self._session_timers.due(now):
            dialog = self._dialogs.get(dialog_id)
            if dialog is None:
                continue
            if timer.we_refresh:
                # RFC 4028 §10: refresh at half the interval (an UPDATE without a body).
                self._request(dialog, "UPDATE", b"", None, (), refresh=True)
            else:
                # RFC 4028 §10: no refresh in time: send BYE and end the session.
                bye = dialog.build_request("BYE", self.config, self._rng)
                self._send(
                    ClientRequest(ref=self._new_ref(), request=bye, dialog_id=None, internal=True)
                )
                self._end_dialog(dialog, TerminationReason.SESSION_EXPIRED)

    def _retry(self, creq: ClientRequest) -> None:
        creq.retry_at = None
        dialog = self._dialogs.get(creq.dialog_id) if creq.dialog_id else None
        old = creq.request
        if dialog is None:
            self._emit(
                ResponseForRequest(creq.ref, creq.dialog_id, old.method, make_response(old, 481))
            )
            return
        # The headers the dialog builds itself are made afresh; the TU's extra ones are kept.
        rebuilt = {"via", "route", "from", "to", "call-id", "cseq", "max-forwards", "contact"}
        rebuilt |= {"content-length", "content-type"}
        extra = tuple((n, v) for n, v in old.headers if n.lower() not in rebuilt)
        ctype = old.headers.get("Content-Type")
        if old.method == "INVITE" and self._invite_in_progress(dialog.id):
            # RFC 3261 §14.1: the peer's INVITE went first and is still in progress: wait.
            layer_made = {"allow", "supported", "session-expires", "min-se", "user-agent"}
            tu_headers = tuple((n, v) for n, v in extra if n.lower() not in layer_made)
            self._deferred.append(
                DeferredRequest(creq.ref, dialog, old.body, ctype, tu_headers, creq.defer_ack)
            )
            return
        req = dialog.build_request(
            old.method,
            self.config,
            self._rng,
            headers=extra,
            body=old.body,
            content_type=ctype,
        )
        self._send(
            ClientRequest(
                ref=creq.ref,
                request=req,
                dialog_id=creq.dialog_id,
                refresh=creq.refresh,
                defer_ack=creq.defer_ack,
                dialog=dialog,
            )
        )

    def _uas_timers(self, handle: object, uas: UasInvite, now: float) -> None:
        if uas.prack_give_up is not None and uas.prack_give_up <= now:
            # RFC 3262 §3: no PRACK within 64*T1: reject the INVITE with a 5xx.
            self.respond(uas.pending.ref, 500, "Reliable Provisional Not Acknowledged", now=now)
            return
        if uas.prack_at is not None and uas.prack_at <= now and uas.reliable is not None:
            # RFC 3262 §3: retransmit the reliable provisional, T1 doubling each time.
            self._actions.append(SendResponse(uas.reliable, uas.pending.server))
            uas.prack_interval *= 2
            uas.prack_at = now + uas.prack_interval
            self._at_uas(uas)
        if uas.give_up_at is not None and uas.give_up_at <= now:
            # RFC 3261 §13.3.1.4: no ACK within 64*T1: end the dialog with a BYE.
            del self._uas_invites[handle]
            dialog = self._dialogs.get(uas.dialog_id)
            if dialog is not None:
                self._send_bye(dialog, TerminationReason.ACK_TIMEOUT, uas.bye_ref, uas.bye_headers)
            return
        if uas.retransmit_at is not None and uas.retransmit_at <= now and uas.response:
            # RFC 3261 §13.3.1.4: retransmit at T1, doubling up to T2.
            self._actions.append(SendResponse(uas.response, uas.pending.server))
            self.stats["2xx_retransmitted"] += 1
            uas.interval = min(uas.interval * 2, self.config.t2)
            uas.retransmit_at = now + uas.interval
            self._at_uas(uas)
