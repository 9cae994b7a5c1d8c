"""The sans-IO dialog layer: transaction events and ``now`` in, actions and TU events out.

Inputs come from the transaction layer (``on_request``, ``on_ack``, ``on_response``,
``on_timeout``, ``on_transport_error``) and from the session layer (``invite``, ``respond``,
``bye``, ``reinvite`` …). Outputs are pulled: ``take_actions()`` for the driver,
``take_events()`` for the session layer, ``next_deadline()`` / ``handle_timers(now)`` for time.

:class:`DialogLayer` is a façade over collaborators, each owning its own state:

- :class:`~._store.DialogStore`: the live dialogs;
- :class:`~._uas.UasRequests`: requests received, the TU's answers, 2xx/1xx retransmission;
- :class:`~._uac.UacInvites`: our initial INVITEs, forks, CANCEL;
- :class:`~._client.ClientRequests`: every request we send, ACKs, 491 retries;
- :class:`~._refer.ReferSubscriptions`: accepted REFERs and their NOTIFYs;
- :class:`~._subscriptions.Subscriptions`: SUBSCRIBE/NOTIFY usages (RFC 6665), ours and
  the ones we serve;
- :class:`~._session_timer.SessionTimers`: RFC 4028 timers;
- :class:`~._timeline.Timeline`: all their deadlines on one keyed heap;
- :class:`~._outbox.Outbox`: the actions and events they produce.

The façade routes inputs, answers the collaborators' cross-cutting questions
(:class:`~._hooks.LayerHooks`: ending a dialog, "is an INVITE in progress") and catches
every exception an input provokes, so that no message from the network can escape.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable

from rvoip_sip_core import Request, Response, Uri, parse_uri
from rvoip_transaction_core import Clock, SystemClock

from ._client import ClientRequests, Headers
from ._config import DialogConfig
from ._dialog import Dialog, DialogId, DialogState, LegId
from ._errors import DialogUsageError
from ._events import (
    Action,
    DialogEvent,
    DialogTerminated,
    SessionRefreshDue,
    TerminationReason,
)
from ._outbox import Outbox
from ._records import ClientRequest, ReferSubscription, UacInvite, UasInvite
from ._refer import ReferSubscriptions
from ._rules import malformed
from ._session_timer import SessionTimer, SessionTimers
from ._states import Trigger
from ._store import DialogStore
from ._subscriptions import EVENT_METHODS, ServedSubscription, Subscription, Subscriptions
from ._timeline import Timeline
from ._uac import UacInvites
from ._uas import UasRequests

__all__ = ["DialogLayer"]

logger = logging.getLogger(__name__)

SESSION_EXPIRED = ("Reason", 'SIP;cause=408;text="Session timer expired"')
"""RFC 3326 Reason of the BYE that ends a session no refresh kept up (RFC 4028 §10)."""

# The dialog state machine's trigger for each way a dialog ends (same names).
_TRIGGER_OF = {reason: Trigger[reason.name] for reason in TerminationReason}


class DialogLayer:
    """All the dialogs of one user agent, as a sans-IO state machine.

    Args:
        config: Local identity, timers and advertised capabilities.
        rng: Source of tags, branches, Call-IDs, CSeq starts and glare delays. Default:
            ``random.SystemRandom()`` (the OS CSPRNG, RFC 3261 §19.3: tags and Call-IDs
            must not be guessable); inject a seeded ``random.Random`` only in tests.
        clock: Where a command given no ``now`` reads the time (a driver injects its
            own; default ``SystemClock``). Inputs from the transaction layer and
            ``handle_timers`` always take ``now``.
    """

    def __init__(
        self,
        config: DialogConfig,
        *,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._rng = rng if rng is not None else random.SystemRandom()
        self._clock = clock if clock is not None else SystemClock()
        self.stats: Counter[str] = Counter()
        """Counters (malformed messages, retransmissions, errors caught …)."""
        self._next_ref = 0
        self._now = 0.0
        """The latest time given by any input (for deadlines set while ending a dialog)."""
        rng = self._rng
        self._out = Outbox()
        self._timeline = Timeline()
        self._store = DialogStore()
        self._timers = SessionTimers(config, self._timeline)
        self._client = ClientRequests(
            config, rng, self.stats, self._out, self._store, self._timeline, self._timers, self
        )
        self._uas = UasRequests(
            config,
            rng,
            self.stats,
            self._out,
            self._store,
            self._timeline,
            self._timers,
            self._client,
            self,
        )
        self._uac = UacInvites(
            config,
            rng,
            self.stats,
            self._out,
            self._store,
            self._timeline,
            self._timers,
            self._client,
            self,
        )
        self._refers = ReferSubscriptions(
            config, rng, self._store, self._uas, self._client, self.new_ref
        )
        self._subs = Subscriptions(
            config,
            rng,
            self.stats,
            self._out,
            self._store,
            self._timeline,
            self._client,
            self._uas,
            self,
        )
        # hot path: the driver takes the output after every input; these are the
        # collaborators' own bound methods (no façade call in between).
        self.take_actions: Callable[[], list[Action]] = self._out.take_actions
        """Actions for the driver, in order (and forget them)."""
        self.take_events: Callable[[], list[DialogEvent]] = self._out.take_events
        """Events for the session layer, in order (and forget them)."""
        self.take_output: Callable[[], tuple[list[Action], list[DialogEvent]] | None] = (
            self._out.take
        )
        """Actions and events at once (None when there are none): a driver's flush loop."""
        self.deadline_moved: Callable[[], bool] = self._timeline.deadline_moved
        """Whether a deadline earlier than the last ``next_deadline()`` answer was set since
        (the driver re-arms its timer only then)."""

    # --- configuration ----------------------------------------------------------------------

    @property
    def config(self) -> DialogConfig:
        """Local identity, timers and capabilities (assignable, e.g. once a port is bound)."""
        return self._config

    @config.setter
    def config(self, config: DialogConfig) -> None:
        self._config = config
        for part in (self._timers, self._client, self._uas, self._uac, self._refers, self._subs):
            part.configure(config)

    # --- inputs from the transaction layer ----------------------------------------------------

    def on_request(
        self, request: Request, server: object, now: float, *, cancels: object | None = None
    ) -> None:
        """A request arrived on a new server transaction (``server`` is the driver's handle).

        Every request is checked before anything acts on it (malformed headers get 400
        with a reason naming the fault); nothing a request provokes escapes as an
        exception: it is counted in ``stats["request_errors"]`` and answered 500.

        Args:
            request: The request.
            server: Handle of its server transaction, given back in ``SendResponse``.
            now: Current time.
            cancels: For CANCEL, the handle of the INVITE transaction it matches (§9.2).
        """
        self._now = now
        try:
            self._uas.on_request(request, server, now, cancels=cancels)
            client = self._client
            if client.deferred:  # hot path: an attribute read; there is rarely one waiting
                client.send_deferred()
        except Exception:
            self._failed_input("request_errors", request)
            self._answer_failure(request, server)

    def on_ack(self, request: Request, now: float) -> None:
        """An ACK for one of our 2xx arrived (outside any transaction, RFC 3261 §13.3.1.4)."""
        self._now = now
        try:
            self._uas.on_ack(request, now)
            client = self._client
            if client.deferred:  # hot path: an attribute read; there is rarely one waiting
                client.send_deferred()
        except Exception:
            self._failed_input("ack_errors", request)

    def on_response(self, response: Response, now: float) -> None:
        """A response arrived on one of our client transactions (2xx retransmissions too)."""
        self._now = now
        try:
            self._on_response(response, now)
            client = self._client
            if client.deferred:  # hot path: an attribute read; there is rarely one waiting
                client.send_deferred()
        except Exception:
            self._failed_input("response_errors", response)

    def _on_response(self, response: Response, now: float) -> None:
        if malformed(response) is not None:
            self.stats["response_malformed"] += 1
            return
        creq = self._client.match(response)
        if creq is None:
            self.stats["response_unmatched"] += 1
            return
        method = creq.request.method
        if creq.leg is not None and method == "INVITE":
            self._uac.on_response(creq, response, now)
        elif method in EVENT_METHODS and self._subs.owns(creq.ref):
            # RFC 6665: our SUBSCRIBE/NOTIFY; the client does the generic work (the 401/407
            # retry, ending the dialog on 481/408) and the usage reads the answer.
            status = response.status
            if status >= 300 and status not in (401, 407):
                # A failure: the usage first, so its reason (e.g. a refused NOTIFY)
                # is the one reported before the client ends the dialog on 481/408.
                self._subs.on_response(creq, response, now, False)
                self._client.on_response(creq, response, now)
                return
            retries = self.stats["auth_retries"]
            self._client.on_response(creq, response, now)
            if status >= 200:
                retried = self.stats["auth_retries"] != retries
                self._subs.on_response(creq, response, now, retried)
        else:
            self._client.on_response(creq, response, now)

    def on_timeout(self, request: Request, now: float) -> None:
        """Our client transaction for ``request`` timed out: treated as 408 (§8.1.3.1)."""
        response = self._client.failed(request, 408, "Request Timeout")
        if response is not None:
            self.on_response(response, now)

    def on_transport_error(
        self,
        request: Request,
        now: float,
        status: int = 503,
        reason: str = "Service Unavailable",
    ) -> None:
        """The transport failed for ``request``: treated as 503 (RFC 3261 §8.1.3.1).

        ``status``/``reason`` name another local failure, e.g. 416 for a ``sips:`` request
        that could only leave over a non-TLS transport (RFC 5630 §3.1.3).
        """
        response = self._client.failed(request, status, reason)
        if response is not None:
            self.on_response(response, now)

    def fail_over(self, request: Request, now: float) -> Request | None:
        """Our request failed at one located target: the same request for the next one.

        RFC 3263 §4.3: the driver located several targets for a request outside a dialog
        and the one it used timed out, failed or answered 503. The new request is
        "identical to the previous, but has a different value of the Via branch ID" (a
        new client transaction, same Call-ID, tags and CSeq); the layer tracks it instead
        of the old one, and the driver sends it. None when the request may not be
        retried (an INVITE with early dialogs, one being cancelled, a request in a
        dialog): the driver then reports the failure as usual.
        """
        self._now = now
        creq = self._client.open(request)
        if creq is None:
            return None
        if creq.leg is not None and request.method == "INVITE":
            return self._uac.fail_over(creq)
        return self._client.fail_over(creq)

    def _failed_input(self, counter: str, message: Request | Response) -> None:
        # A bug or an unforeseen malformation: never let it escape to the transport (RFC
        # 3261 §8.2 rejects what it cannot process; the process must survive any input).
        self.stats[counter] += 1
        logger.exception("dialog layer failed on %s", type(message).__name__)

    def _answer_failure(self, request: Request, server: object) -> None:
        if request.method == "ACK":
            return
        with contextlib.suppress(Exception):
            self._uas.reply(request, server, 500, "Server Internal Error")

    # --- commands: answers ------------------------------------------------------------------

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
        now: float | None = None,
    ) -> Response:
        """Answer a request the TU was given (``IncomingInvite``, re-INVITE, REFER …).

        For INVITE a tagged 1xx creates the early dialog, a 2xx confirms it and is
        retransmitted until the ACK (RFC 3261 §13.3.1.4), a 3xx–6xx ends it. A 1xx is
        sent reliably (RFC 3262, PRACKed) when the INVITE requires ``100rel``, or when
        ``reliable`` is True and the INVITE supports it.

        Returns:
            The response sent.

        Raises:
            DialogUsageError: unknown ref, or a final response was already sent.
        """
        now = self._clock.now() if now is None else now
        self._now = now
        response = self._uas.respond(
            ref,
            status,
            reason,
            body=body,
            content_type=content_type,
            headers=headers,
            reliable=reliable,
            now=now,
        )
        client = self._client
        if client.deferred:  # hot path: an attribute read; there is rarely one waiting
            client.send_deferred()
        return response

    def accept_refer(self, ref: int, *, now: float | None = None) -> ReferSubscription:
        """Accept a REFER: 202, then the first NOTIFY (``SIP/2.0 100 Trying``, RFC 3515 §2.4.4).

        Returns:
            The implicit subscription, for :meth:`notify_refer`.
        """
        at = self._clock.now() if now is None else now
        return self._refers.accept(
            ref, lambda r, status, reason: self.respond(r, status, reason, now=at), at
        )

    def notify_refer(
        self, subscription: ReferSubscription, status: int, reason: str, *, now: float | None = None
    ) -> int:
        """Report the referred call's progress in a NOTIFY with a sipfrag status line.

        A final status (>= 200) terminates the subscription (RFC 3515 §2.4.5).
        """
        now = self._clock.now() if now is None else now
        self._now = now
        return self._refers.notify(subscription, status, reason)

    # --- commands: subscriptions (RFC 6665) ---------------------------------------------------

    def subscribe(
        self,
        target: str | Uri,
        *,
        from_: str,
        event: str,
        expires: int = 3600,
        accept: Iterable[str] = (),
        to: str | None = None,
        headers: Headers = (),
        route: Iterable[str] = (),
        now: float | None = None,
    ) -> int:
        """Subscribe to ``event`` (``dialog``, ``message-summary;id=1`` …) at ``target``.

        RFC 6665 §4.1.2: SUBSCRIBE outside any dialog; the dialog comes with its 2xx or
        its first NOTIFY. The layer refreshes before expiry and subscribes again when a
        NOTIFY asks for it. Events: :class:`SubscriptionAccepted`,
        :class:`SubscriptionNotified` per NOTIFY, :class:`SubscriptionEnded` at the end.

        Args:
            target: Request-URI (the resource: a user's AOR, a mailbox).
            from_: Our From value (no tag).
            event: Event header value.
            expires: Duration asked for, seconds.
            accept: Body types we accept (the ``Accept`` header).
            to: The To value (defaults to the target).
            headers: Extra header lines for every SUBSCRIBE.
            route: A pre-loaded route set.
            now: Current time.

        Returns:
            The subscription's ref.

        Raises:
            DialogUsageError: malformed ``event``, negative ``expires``, or too many
                subscriptions (``max_subscriptions``).
        """
        now = self._clock.now() if now is None else now
        self._now = now
        extra = list(headers)
        accepted = tuple(accept)
        if accepted:
            extra.insert(0, ("Accept", ", ".join(accepted)))
        return self._subs.subscribe(
            parse_uri(target) if isinstance(target, str) else target,
            from_=from_,
            event=event,
            expires=expires,
            to=to,
            headers=extra,
            route=route,
            now=now,
        )

    def unsubscribe(self, ref: int, *, now: float | None = None) -> None:
        """End our subscription ``ref`` with ``Expires: 0`` (RFC 6665 §4.1.2.3)."""
        now = self._clock.now() if now is None else now
        self._now = now
        self._subs.unsubscribe(ref, now)

    def accept_subscription(
        self,
        ref: int,
        *,
        expires: int | None = None,
        pending: bool = False,
        body: bytes = b"",
        content_type: str | None = None,
        notify_on_refresh: bool = True,
        now: float | None = None,
    ) -> int:
        """Accept a :class:`SubscribeReceived`: 200 (202 if ``pending``), then a NOTIFY.

        The granted duration is at most the one asked for and ``max_subscription_expires``
        (``expires``: shorter still); the NOTIFY (RFC 6665 §4.2.1.2) carries ``body``.
        Each refresh is answered with a NOTIFY of the last body, or, with
        ``notify_on_refresh=False``, left to the TU (:class:`ServedSubscriptionRefreshed`);
        then the layer's final NOTIFYs (unsubscribe, expiry) carry no document either.

        Returns:
            The granted duration, seconds.
        """
        now = self._clock.now() if now is None else now
        self._now = now
        return self._subs.accept(
            ref,
            expires=expires,
            pending=pending,
            body=body,
            content_type=content_type,
            now=now,
            notify_on_refresh=notify_on_refresh,
        )

    def reject_subscription(
        self,
        ref: int,
        status: int = 403,
        reason: str | None = None,
        *,
        headers: Headers = (),
        now: float | None = None,
    ) -> None:
        """Refuse a :class:`SubscribeReceived` with a 3xx-6xx response."""
        self._now = self._clock.now() if now is None else now
        self._subs.reject(ref, status, reason, headers)

    def notify_subscriber(
        self,
        ref: int,
        body: bytes,
        content_type: str | None = None,
        *,
        pending: bool | None = None,
        now: float | None = None,
    ) -> int:
        """Send a NOTIFY with the new state ``body`` to a subscription we serve.

        ``pending=False`` activates a pending subscription. Returns the NOTIFY's ref.
        """
        now = self._clock.now() if now is None else now
        self._now = now
        return self._subs.notify(ref, body, content_type, pending=pending, now=now)

    def terminate_subscription(
        self,
        ref: int,
        reason: str = "noresource",
        *,
        retry_after: int | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        now: float | None = None,
    ) -> int:
        """End a subscription we serve with a final NOTIFY (``terminated;reason=…``)."""
        self._now = self._clock.now() if now is None else now
        return self._subs.terminate(
            ref, reason, retry_after=retry_after, body=body, content_type=content_type
        )

    def subscription(self, ref: int) -> Subscription | ServedSubscription | None:
        """Our subscription or a served one with this ref (None once it ended)."""
        return self._subs.subscription(ref)

    # --- commands: requests -----------------------------------------------------------------

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
        now: float | None = None,
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
        now = self._clock.now() if now is None else now
        self._now = now
        return self._uac.invite(
            target,
            from_=from_,
            to=to,
            body=body,
            content_type=content_type,
            headers=headers,
            route=route,
            call_id=call_id,
            tag=tag,
            cseq=cseq,
            defer_ack=defer_ack,
        )

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
        now: float | None = None,
    ) -> int:
        """Send a request outside any dialog (OPTIONS, MESSAGE, REGISTER …); returns its ref.

        The final response comes back as ``ResponseForRequest`` (dialog_id None).
        """
        now = self._clock.now() if now is None else now
        self._now = now
        return self._client.send_request(
            method,
            parse_uri(target) if isinstance(target, str) else target,
            from_=from_,
            to=to,
            body=body,
            content_type=content_type,
            headers=headers,
            route=route,
            call_id=call_id,
            tag=tag,
            cseq=cseq,
        )

    def cancel(self, leg: LegId, *, headers: Headers = (), now: float | None = None) -> None:
        """Cancel our pending INVITE (RFC 3261 §9.1); ``headers`` e.g. a Reason (RFC 3326).

        The CANCEL waits for the first provisional response (§9.1: it SHOULD NOT be sent
        before one); once a final response arrived it is too late and nothing is sent.
        """
        now = self._clock.now() if now is None else now
        self._now = now
        self._uac.cancel(leg, headers, now)

    def request(
        self,
        dialog_id: DialogId,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Headers = (),
        now: float | None = None,
    ) -> int:
        """Send any request in a dialog (RFC 3261 §12.2.1.1); returns its ref.

        The final response comes back as ``ResponseForRequest`` with that ref. BYE ends
        the dialog at once (§15); re-INVITE and UPDATE are target refreshes and retried after
        a 491 (§14.1); the 2xx of a re-INVITE is ACKed by the layer.
        """
        now = self._clock.now() if now is None else now
        self._now = now
        dialog = self._store.require(dialog_id)
        if method.upper() == "BYE":
            # RFC 3261 §15: the callee MUST NOT send BYE before the ACK of its 2xx (or the
            # ACK timeout); it is sent when that comes.
            held = self._uas.hold_bye(dialog_id, headers)
            if held is not None:
                return held
            with contextlib.suppress(DialogUsageError):
                self._client.ack(dialog_id)  # a held-back ACK goes out before the BYE
        return self._client.request(dialog, method, body, content_type, headers, refresh=False)

    def bye(self, dialog_id: DialogId, *, headers: Headers = (), now: float | None = None) -> int:
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
        now: float | None = None,
    ) -> int:
        """Send a re-INVITE (new offer, or none) in a confirmed dialog (RFC 3261 §14.1).

        With ``defer_ack`` (an offer-less re-INVITE) the TU sends the ACK with :meth:`ack`.
        """
        now = self._clock.now() if now is None else now
        self._now = now
        return self._client.request(
            self._store.require(dialog_id),
            "INVITE",
            body,
            content_type,
            headers,
            refresh=False,
            defer_ack=defer_ack,
        )

    def update(
        self,
        dialog_id: DialogId,
        body: bytes = b"",
        *,
        headers: Headers = (),
        now: float | None = None,
    ) -> int:
        """Send an UPDATE (RFC 3311), e.g. to refresh the session or change media early."""
        return self.request(dialog_id, "UPDATE", body=body, headers=headers, now=now)

    def info(
        self, dialog_id: DialogId, body: bytes, content_type: str, *, now: float | None = None
    ) -> int:
        """Send an INFO (e.g. ``application/dtmf-relay``) in a dialog."""
        return self.request(dialog_id, "INFO", body=body, content_type=content_type, now=now)

    def refer(
        self,
        dialog_id: DialogId,
        refer_to: str,
        *,
        referred_by: str | None = None,
        headers: Headers = (),
        now: float | None = None,
    ) -> int:
        """Send a REFER (RFC 3515): ask the peer to call ``refer_to`` and report by NOTIFY."""
        target = refer_to if "<" in refer_to else f"<{refer_to}>"
        extra = [("Refer-To", target)]
        if referred_by is not None:
            extra.append(("Referred-By", referred_by if "<" in referred_by else f"<{referred_by}>"))
        extra.extend(headers)
        return self.request(dialog_id, "REFER", headers=extra, now=now)

    def ack(
        self,
        dialog_id: DialogId,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        now: float | None = None,
    ) -> None:
        """Send the ACK the layer held back (``defer_ack``), e.g. with the SDP answer.

        Raises:
            DialogUsageError: no 2xx of this dialog is waiting for an ACK.
        """
        now = self._clock.now() if now is None else now
        self._now = now
        self._client.ack(dialog_id, body, content_type=content_type)

    # --- time -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time ``handle_timers`` has work to do (None: nothing scheduled)."""
        return self._timeline.next()

    def handle_timers(self, now: float) -> None:
        """Run everything due at ``now`` (popped from the timeline, earliest first).

        2xx and reliable-1xx retransmissions, ACK/PRACK/CANCEL timeouts, completed INVITEs
        forgotten, glare retries, session refreshes and expiries; an exception in one is
        counted (``timer_errors``) and the others still run.
        """
        self._now = now
        for key in self._timeline.pop_due(now):
            try:
                self._on_deadline(key, now)
            except Exception:
                self.stats["timer_errors"] += 1
                logger.exception("dialog layer failed on a deadline of %r", key)
        client = self._client
        if client.deferred:  # hot path: an attribute read; there is rarely one waiting
            client.send_deferred()

    def _on_deadline(self, key: object, now: float) -> None:
        if isinstance(key, UasInvite):
            self._uas.on_deadline(key, now)
        elif isinstance(key, ClientRequest):
            finished = self._client.on_deadline(key, now)
            if finished is not None:
                self._uac.finished(finished)
        elif isinstance(key, UacInvite):
            self._uac.on_deadline(key)
        elif isinstance(key, SessionTimer):
            self._session_timer_due(key)
        elif isinstance(key, Subscription | ServedSubscription):
            self._subs.on_deadline(key, now)

    def refresh_session(self, dialog_id: DialogId, *, now: float | None = None) -> bool:
        """Refresh a dialog's session now, as when half its interval passed (RFC 4028 §10).

        An UPDATE when the peer allows it, else ``SessionRefreshDue`` for the TU's
        re-INVITE; the session then expires unless the refresh succeeds. For a check
        that the peer is still there, and for tests that need not wait half an interval.

        Returns:
            False when the dialog runs no session timer that we refresh (nothing sent).
        """
        now = self._clock.now() if now is None else now
        self._now = now
        timer = self._timers.get(dialog_id)
        if timer is None or not timer.we_refresh or timer.refreshing:
            return False
        self._timeline.cancel(timer)
        self._session_timer_due(timer)
        return True

    def _session_timer_due(self, timer: SessionTimer) -> None:
        if not self._timers.fire(timer) or timer.dialog_id is None:
            return
        dialog = self._store.get(timer.dialog_id)
        if dialog is None:
            return
        if not timer.expired:
            if timer.update_ok and dialog.state is DialogState.CONFIRMED:
                # RFC 4028 §10: refresh at half the interval (an UPDATE without a body).
                self._client.request(dialog, "UPDATE", b"", None, (), refresh=True)
            else:
                # RFC 4028 §7.4 / RFC 3311 §5.1: the peer's Allow has no UPDATE: the TU
                # refreshes with a re-INVITE carrying its current SDP.
                self.stats["session_refresh_reinvite"] += 1
                self._out.emit(SessionRefreshDue(dialog.id))
        else:
            # RFC 4028 §10: no refresh in time: send BYE and end the session.
            self.stats["session_expired"] += 1
            self.send_bye(dialog, TerminationReason.SESSION_EXPIRED, None, (SESSION_EXPIRED,))

    # --- LayerHooks: what the collaborators ask of the façade ---------------------------------

    def new_ref(self) -> int:
        """A fresh reference number for a request or an answer the TU is given."""
        self._next_ref += 1
        return self._next_ref

    def end_dialog(
        self, dialog: Dialog, reason: TerminationReason, status: int | None = None
    ) -> None:
        """End a dialog everywhere (tables, timers, pending requests) and report it."""
        if dialog.state is DialogState.TERMINATED:
            self._store.remove(dialog)
            return
        try:
            dialog.move(_TRIGGER_OF[reason])
        except DialogUsageError:
            # Not in the table: still end it (a dialog is never left half-alive).
            self.stats[f"forced_end_{dialog.state.value}_{reason.value}"] += 1
            dialog.state = DialogState.TERMINATED
        did = dialog.id
        self._store.remove(dialog)
        self._uac.dialog_ended(dialog)
        self._refers.dialog_ended(did)
        self._subs.dialog_ended(did)
        self._timers.stop(did)
        # A 2xx of ours still waiting for its ACK keeps being retransmitted (the peer's
        # INVITE transaction must complete); the ACK timeout then just forgets it.
        self._client.dialog_ended(did, self._now)
        self._uas.dialog_ended(did)
        self._out.emit(DialogTerminated(did, reason, status))

    def send_bye(
        self,
        dialog: Dialog,
        reason: TerminationReason,
        ref: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Send a BYE the layer decided on (``ref``: the TU's, else internal) and end."""
        bye = dialog.build_request("BYE", self._config, self._rng, headers=headers)
        internal = ref is None
        self._client.send(
            ClientRequest(
                ref=self.new_ref() if ref is None else ref,
                request=bye,
                dialog_id=None if internal else dialog.id,
                internal=internal,
            )
        )
        self.end_dialog(dialog, reason)

    def event_request(self, request: Request, server: object, now: float) -> bool:
        """A SUBSCRIBE or NOTIFY: the RFC 6665 usages answer it when it is theirs (True)."""
        return self._subs.on_request(request, server, now)

    def invite_in_progress(self, dialog_id: DialogId) -> bool:
        """RFC 3261 §14.1: an INVITE transaction (either direction) is still open."""
        return (
            self._client.pending(dialog_id, ("INVITE",))
            or self._uas.pending(dialog_id, ("INVITE",))
            # Our 2xx (initial INVITE or re-INVITE) not yet ACKed, or our ACK held back.
            or self._uas.has_invites(dialog_id)
            or self._client.holds_ack(dialog_id)
        )

    def awaiting_ack(self, dialog_id: DialogId) -> bool:
        """Our 2xx to the dialog's initial INVITE still waits for its ACK."""
        return self._uas.awaiting_ack(dialog_id) is not None

    # --- state --------------------------------------------------------------------------------

    def dialog(self, dialog_id: DialogId) -> Dialog | None:
        """The live dialog with this id (None once it has ended)."""
        return self._store.get(dialog_id)

    def session_timer(self, dialog_id: DialogId) -> SessionTimer | None:
        """The running RFC 4028 session timer of a dialog (interval, who refreshes, due)."""
        return self._timers.get(dialog_id)

    @property
    def dialogs(self) -> tuple[Dialog, ...]:
        """All live dialogs, early and confirmed."""
        return self._store.all()

    def __len__(self) -> int:
        """Number of live dialogs (early and confirmed)."""
        return len(self._store)

    def pending(self) -> Counter[str]:
        """Sizes of the internal tables (to check nothing leaks after many calls)."""
        counts: Counter[str] = Counter(dialogs=len(self._store))
        counts.update(self._client.counts())
        counts.update(self._uac.counts())
        counts.update(self._uas.counts())
        counts.update(self._subs.counts())
        counts["session_timers"] = len(self._timers)
        counts["deadlines"] = len(self._timeline)
        return counts
