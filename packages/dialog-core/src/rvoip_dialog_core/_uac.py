"""UAC INVITEs: our initial INVITEs, early dialogs and forks, CANCEL, 422 and 401/407 retry."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

import attrs

from rvoip_sip_core import (
    Request,
    Response,
    RSeq,
    SessionExpires,
    SipParseError,
    SipUri,
    Uri,
    make_request,
    make_response,
)

from ._auth import AuthAttempts, AuthRefused
from ._client import ClientRequests, Headers
from ._config import DialogConfig
from ._dialog import Dialog, DialogId, DialogState, LegId, make_via
from ._errors import DialogUsageError
from ._events import (
    AuthenticationFailed,
    CallRedirected,
    DialogConfirmed,
    DialogEarly,
    InviteFailed,
    InviteProgress,
    TerminationReason,
)
from ._hooks import LayerHooks
from ._outbox import Outbox
from ._records import ClientRequest, UacInvite
from ._rules import option_tags
from ._session_timer import SessionTimers
from ._states import Trigger
from ._store import DialogStore
from ._timeline import Timeline

__all__ = ["UacInvites"]

_FOLLOWED = frozenset({300, 301, 302})
"""RFC 3261 §21.3: redirects whose Contacts are alternative targets for the call (not 305
Use Proxy, deprecated by RFC 5630 §4.3, nor 380 Alternative Service)."""


def _uri_key(uri: Uri | str) -> str:
    """A target's identity for loop detection: the URI text without its case-blind parts."""
    if isinstance(uri, SipUri):
        return str(attrs.evolve(uri, scheme=uri.scheme.lower(), host=uri.host.lower()))
    return str(uri)


class UacInvites:
    """The caller side of initial INVITEs: one record per call leg until it settles.

    A 1xx with a To tag makes an early dialog (one per fork, RFC 3261 §12.1.2); the first
    2xx wins and the others are ACKed and ended with BYE (§13.2.2.4); CANCEL waits for a
    provisional response (§9.1).

    Args:
        config: Identity and timers of the layer.
        rng: Source of branches and RSeq/CSeq values.
        stats: The layer's counters.
        outbox: Where actions and events go.
        store: The live dialogs.
        timeline: The layer's deadlines (CANCEL without a final response).
        timers: Session timers (started by the winning 2xx, 422 retries).
        client: Our client transactions (the INVITE itself, ACKs, PRACKs, BYEs).
        hooks: The façade (ending dialogs).
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
        self._invites: dict[LegId, UacInvite] = {}
        self._cancelling: dict[LegId, UacInvite] = {}  # CANCEL sent, final still awaited

    def configure(self, config: DialogConfig) -> None:
        """Use a new configuration from now on."""
        self._config = config

    # --- commands -------------------------------------------------------------------------

    def invite(
        self,
        target: str | Uri,
        *,
        from_: str,
        to: str | None,
        body: bytes,
        content_type: str | None,
        headers: Headers,
        route: Iterable[str],
        call_id: str | None,
        tag: str | None,
        cseq: int | None,
        defer_ack: bool,
    ) -> LegId:
        """Send an initial INVITE (see ``DialogLayer.invite``); returns its call leg."""
        extra = list(self._config.capabilities)
        extra.extend(self._timers.request_headers(None))
        extra.extend(headers)
        if body and content_type is None:
            content_type = "application/sdp"
        request = self._client.new_request(
            "INVITE", target, from_, to, call_id, tag, cseq, extra, route, body, content_type
        )
        leg = LegId(request.call_id, request.from_.tag or "")
        if leg in self._invites:
            raise DialogUsageError(f"call leg {leg} already has an INVITE pending")
        ref = self._hooks.new_ref()
        self._invites[leg] = UacInvite(leg=leg, ref=ref, request=request)
        self._client.send(
            ClientRequest(ref=ref, request=request, dialog_id=None, leg=leg, defer_ack=defer_ack)
        )
        return leg

    def cancel(self, leg: LegId, headers: Headers, now: float) -> None:
        """Cancel our pending INVITE (RFC 3261 §9.1); ``headers`` e.g. a Reason (RFC 3326).

        The CANCEL waits for the first provisional response (§9.1: it SHOULD NOT be sent
        before one); once a final response arrived it is too late and nothing is sent.
        """
        inv = self._invites.get(leg)
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
        inv.cancel_deadline = now + 64 * self._config.t1
        self._cancelling[inv.leg] = inv
        self._timeline.set(inv, inv.cancel_deadline)
        self._client.send(ClientRequest(ref=inv.ref, request=cancel, dialog_id=None, leg=inv.leg))

    # --- responses ------------------------------------------------------------------------

    def on_response(self, creq: ClientRequest, response: Response, now: float) -> None:
        """A response to the initial INVITE of a call leg (any fork, any retransmission)."""
        assert creq.leg is not None
        inv = self._invites.get(creq.leg)
        if inv is None:
            return
        status = response.status
        if status < 200:
            self._provisional(inv, response, now)
            return
        if status >= 300:
            if creq.final:
                return
            creq.final = True
            self._client.close(creq)
            if status == 422 and self._retry_422(inv, creq, response):
                return
            if status in (401, 407) and self._retry_auth(inv, creq, response):
                return
            if status in _FOLLOWED and self._config.follow_redirects:
                self._add_targets(inv, response)
            if inv.targets and status < 600 and self._next_target(inv, creq, response):
                return
            self.fail(inv, response)
            return
        self._success(inv, creq, response, now)

    def _provisional(self, inv: UacInvite, response: Response, now: float) -> None:
        status = response.status
        tag = response.to.tag
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
                self._stats["reliable_1xx_discarded"] += 1
                return
        inv.provisional = True
        dialog_id: DialogId | None = None
        if tag and inv.winner is None and not inv.failed:
            early = inv.early.get(tag)
            if early is None:
                early = Dialog.from_uac(inv.request, response)
                inv.early[tag] = early
                self._store.add(early)
                self._out.emit(DialogEarly(early.id, response))
            else:
                early.move(Trigger.PROVISIONAL)
                early.update_from_response(response)
            dialog_id = early.id
            if rseq is not None:
                # RFC 3262 §4: PRACK each reliable provisional, RAck = RSeq CSeq method.
                inv.rseqs[tag] = rseq
                rack = f"{rseq} {inv.request.cseq.seq} INVITE"
                prack = early.build_request(
                    "PRACK", self._config, self._rng, headers=(("RAck", rack),)
                )
                self._client.send(
                    ClientRequest(self._hooks.new_ref(), prack, early.id, internal=True)
                )
        self._out.emit(InviteProgress(inv.leg, dialog_id, response))
        if inv.cancel_requested and not inv.cancel_sent:
            self._send_cancel(inv, now)

    def _success(self, inv: UacInvite, creq: ClientRequest, response: Response, now: float) -> None:
        # A 2xx: the first one wins, later ones (other forks) are ACKed and BYEd (§13.2.2.4).
        remote = response.to.tag or ""
        if self._client.resend_ack(creq, remote):
            return
        dialog = inv.early.pop(remote, None)
        if dialog is None or dialog.state is DialogState.TERMINATED:
            dialog = Dialog.from_uac(inv.request, response)
        if dialog.state is DialogState.EARLY:
            dialog.move(Trigger.SUCCESS)
        dialog.update_from_response(response)
        self._client.complete(creq, now)
        wins = inv.winner is None and not inv.failed and not inv.cancel_requested
        if wins and creq.defer_ack:
            self._client.hold_ack(creq, dialog.id, remote)
        else:
            self._client.send_ack(creq, dialog, remote)
        if wins:
            inv.winner = dialog.id
            self._store.add(dialog)
            self._timers.from_response(dialog.id, response, now)
            self._out.emit(DialogConfirmed(dialog.id, response))
            for loser in list(inv.early.values()):
                self._hooks.end_dialog(loser, TerminationReason.FORK_LOST)
            inv.early.clear()
            return
        # A losing fork, or an answer that crossed our CANCEL: end it at once with a BYE.
        self._stats["2xx_fork_byed"] += 1
        self._client.send_internal(dialog.build_request("BYE", self._config, self._rng))
        if self._store.holds(dialog):
            # The TU saw this dialog early: tell it that it ended.
            reason = (
                TerminationReason.CANCELLED if inv.cancel_requested else TerminationReason.FORK_LOST
            )
            self._hooks.end_dialog(dialog, reason)
        if inv.winner is None and not inv.failed:
            self.fail(inv, make_response(inv.request, 487, "Request Terminated"))

    def _reliable_rseq(self, response: Response) -> int | None:
        if "100rel" not in self._config.supported:
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
        interval = self._timers.retry_interval(response)
        asked = inv.request.header(SessionExpires)
        if interval is None or (asked is not None and asked.seconds >= interval):
            return False
        old = inv.request
        headers = old.headers.with_("Session-Expires", str(interval))
        headers = headers.with_("Min-SE", str(interval))
        headers = headers.with_("CSeq", f"{old.cseq.seq + 1} INVITE")
        headers = headers.with_("Via", make_via(self._config, self._rng))
        inv.request = attrs.evolve(old, headers=headers)
        # RFC 3261 §9.1: a CANCEL waits for a provisional response of the new transaction.
        inv.provisional = False
        # The TU's defer_ack carries over: it still sends the ACK with its SDP answer.
        self._resend(inv, creq)
        return True

    def _resend(self, inv: UacInvite, creq: ClientRequest) -> None:
        """Send the INVITE again as ``inv.request`` (a retry, a new target): same ref and leg.

        The TU's ``defer_ack`` carries over: it still sends the ACK with its SDP answer.
        """
        self._client.send(
            ClientRequest(
                ref=inv.ref,
                request=inv.request,
                dialog_id=None,
                leg=inv.leg,
                defer_ack=creq.defer_ack,
            )
        )

    def _add_targets(self, inv: UacInvite, response: Response) -> None:
        """Put a 3xx's Contacts in the call's target set (RFC 3261 §8.1.3.4).

        "A client starts with an initial target set containing exactly one URI, the
        Request-URI of the original request ... a client processing 3xx class responses
        MUST NOT add any given URI to the target set more than once" and "SHOULD try
        ... in order of their q-value" (§16.6 rules, highest first; no q counts as 1.0).
        Only ``sip:``/``sips:`` Contacts are kept; the set is bounded by
        ``max_redirects``.
        """
        if not inv.tried:
            inv.tried.add(_uri_key(inv.request.uri))
        try:
            contacts = response.contacts
        except SipParseError:
            self._stats["redirect_contact_malformed"] += 1
            return
        room = self._config.max_redirects - inv.redirects - len(inv.targets)
        ranked = sorted(
            (c for c in contacts if isinstance(c.uri, SipUri)),
            key=lambda c: -(c.q if c.q is not None else 1.0),
        )
        for contact in ranked:
            uri = contact.uri
            assert isinstance(uri, SipUri)
            key = _uri_key(uri)
            if key in inv.tried:
                self._stats["redirect_loop_skipped"] += 1
                continue
            if room <= 0:
                break
            inv.tried.add(key)
            inv.targets.append(uri)
            room -= 1

    def _next_target(self, inv: UacInvite, creq: ClientRequest, response: Response) -> bool:
        """Send the INVITE to the next URI of the target set (True), if the bound allows.

        RFC 3261 §8.1.3.4: "If a failure response is received for a request to one of the
        contacts, the client SHOULD proceed to the next". The new request keeps Call-ID,
        From (tag) and To, takes the target as Request-URI, a new CSeq (the number one
        higher, as for any retry of the request, §8.1.3.5) and a new branch; not once a
        CANCEL was asked for. Early dialogs of the previous target (its 180 before the 302
        of a forward-on-no-answer) ended with its final response (§12.3): each is reported
        ended (``REDIRECTED``) before the call moves on.
        """
        if inv.cancel_requested or inv.redirects >= self._config.max_redirects:
            return False
        for early in list(inv.early.values()):
            self._hooks.end_dialog(early, TerminationReason.REDIRECTED, response.status)
        inv.early.clear()
        target = inv.targets.pop(0)
        inv.redirects += 1
        old = inv.request
        headers = old.headers.with_("CSeq", f"{old.cseq.seq + 1} INVITE")
        headers = headers.with_("Via", make_via(self._config, self._rng))
        inv.request = attrs.evolve(old, uri=target, headers=headers)
        inv.provisional = False
        inv.auth = None  # a new target answers its own challenges
        self._stats["redirects_followed"] += 1
        self._out.emit(CallRedirected(inv.leg, target, response))
        self._resend(inv, creq)
        return True

    def _retry_auth(self, inv: UacInvite, creq: ClientRequest, response: Response) -> bool:
        # RFC 3261 §22.2: re-originate the INVITE with credentials: same Call-ID, To and
        # From tag, CSeq + 1, a new branch (the ACK of the 401/407 is the transaction
        # layer's, §17.1.1.3). Not once a CANCEL was asked for, nor with early dialogs of
        # the challenged attempt still open (they belong to a transaction that is over).
        if inv.cancel_requested or inv.early:
            return False
        attempts = inv.auth if inv.auth is not None else AuthAttempts()
        inv.auth = attempts
        old = inv.request
        result = self._client.authorize(old, response, attempts)
        if isinstance(result, AuthRefused):
            self._out.emit(
                AuthenticationFailed(
                    inv.ref, inv.leg, None, "INVITE", result.status, result.realm, result.reason
                )
            )
            return False
        headers = result.headers.with_("CSeq", f"{old.cseq.seq + 1} INVITE")
        headers = headers.with_("Via", make_via(self._config, self._rng))
        inv.request = attrs.evolve(result, headers=headers)
        # RFC 3261 §9.1: a CANCEL waits for a provisional response of the new transaction.
        inv.provisional = False
        self._stats["auth_retries"] += 1
        self._resend(inv, creq)
        return True

    def fail_over(self, creq: ClientRequest) -> Request | None:
        """The initial INVITE again with a new branch, for the next located target.

        RFC 3263 §4.3 (see ``DialogLayer.fail_over``). Not once a CANCEL was asked for,
        nor with early dialogs open (they belong to the failed target's transaction).
        """
        assert creq.leg is not None
        inv = self._invites.get(creq.leg)
        if inv is None or inv.early or inv.cancel_requested or inv.failed or inv.winner:
            return None
        retried = self._client.fail_over(creq)
        if retried is None:
            return None
        inv.request = retried
        # RFC 3261 §9.1: a CANCEL waits for a provisional response of the new transaction.
        inv.provisional = False
        return retried

    def fail(self, inv: UacInvite, response: Response) -> None:
        """The INVITE failed (final non-2xx, timeout, CANCEL): end its early dialogs."""
        inv.failed = True
        if self._cancelling.pop(inv.leg, None) is not None:
            self._timeline.cancel(inv)
        reason = TerminationReason.CANCELLED if inv.cancel_requested else TerminationReason.REJECTED
        if response.status in (408, 503) and not inv.cancel_requested:
            reason = TerminationReason.TIMEOUT if response.status == 408 else reason
        for early in list(inv.early.values()):
            self._hooks.end_dialog(early, reason, response.status)
        inv.early.clear()
        self._out.emit(InviteFailed(inv.leg, response))
        self._invites.pop(inv.leg, None)

    # --- time and the end of dialogs --------------------------------------------------------

    def on_deadline(self, inv: UacInvite) -> None:
        """RFC 3261 §9.1: no final response 64*T1 after the CANCEL: give up (408)."""
        if self._cancelling.get(inv.leg) is not inv:
            return
        del self._cancelling[inv.leg]
        inv.cancel_deadline = None
        if inv.winner is None and not inv.failed and self._invites.get(inv.leg) is inv:
            branch = inv.request.top_via.branch or ""
            self._client.close_key(branch, "INVITE")
            self._client.close_key(branch, "CANCEL")
            self.fail(inv, make_response(inv.request, 408, "Request Timeout"))

    def finished(self, creq: ClientRequest) -> None:
        """The INVITE of ``creq``'s call leg is over for good (64*T1 after its 2xx)."""
        if creq.leg is not None:
            inv = self._invites.pop(creq.leg, None)
            if inv is not None and self._cancelling.pop(inv.leg, None) is not None:
                self._timeline.cancel(inv)

    def dialog_ended(self, dialog: Dialog) -> None:
        """An early dialog of a call leg ended: the leg no longer tracks it."""
        if not self._invites:
            return  # hot path: a plain UAS has no UAC INVITEs
        inv = self._invites.get(dialog.id.leg)
        if inv is not None and inv.early.get(dialog.id.remote_tag) is dialog:
            del inv.early[dialog.id.remote_tag]

    def counts(self) -> Counter[str]:
        """Sizes of the tables (to check nothing leaks after many calls)."""
        return Counter(cancelling=len(self._cancelling), uac_invites=len(self._invites))
