"""SUBSCRIBE/NOTIFY (RFC 6665): our subscriptions and the ones we serve, sans-IO.

Subscriber side (:class:`Subscription`): ``subscribe`` sends SUBSCRIBE outside any
dialog; the dialog is created by its 2xx or by the first NOTIFY, whichever comes first
(RFC 6665 §4.1.2.4: the NOTIFY may overtake the 2xx). The subscription is refreshed
before it expires, ended by ``unsubscribe`` (``Expires: 0``) or by a ``terminated``
NOTIFY, and subscribed again by itself when the notifier asks for it (``deactivated``,
``timeout``, ``probation``/``giveup`` after ``retry-after``).

Notifier side (:class:`ServedSubscription`): a SUBSCRIBE for a package in
``DialogConfig.event_packages`` goes to the TU as :class:`SubscribeReceived`; the TU
accepts (200/202, the granted ``Expires`` never above the request, 423 below the
minimum) and the layer sends the immediate NOTIFY (§4.2.1.2) with the TU's body. The TU
sends NOTIFYs on change (``notify``); the layer answers refreshes and unsubscribes, and
sends the final ``terminated;reason=timeout`` NOTIFY at expiry.

REFER's implicit subscription stays in :mod:`._refer`: NOTIFYs this object does not
claim go on to the in-dialog handling there.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable

import attrs

from rvoip_sip_core import (
    Event,
    Request,
    Response,
    SipParseError,
    SubscriptionState,
    Uri,
    new_tag,
)

from ._client import ClientRequests
from ._config import DialogConfig
from ._dialog import Dialog, DialogId
from ._errors import DialogUsageError
from ._events import (
    ServedSubscriptionEnded,
    ServedSubscriptionRefreshed,
    SubscribeReceived,
    SubscriptionAccepted,
    SubscriptionEnded,
    SubscriptionNotified,
    TerminationReason,
)
from ._hooks import LayerHooks
from ._outbox import Outbox
from ._records import ClientRequest
from ._states import Trigger
from ._store import DialogStore
from ._timeline import Timeline
from ._uas import UasRequests, is_secure_request

__all__ = ["EVENT_METHODS", "ServedSubscription", "Subscription", "Subscriptions"]

EVENT_METHODS = frozenset({"SUBSCRIBE", "NOTIFY"})
"""The methods this object may claim (the layer asks it first for these only)."""

# RFC 6665 §4.1.3: reasons after which the subscriber retries at once with a new
# subscription, and those after which it may retry after ``retry-after``.
_RETRY_NOW = frozenset({"deactivated", "timeout"})
_RETRY_LATER = frozenset({"probation", "giveup"})


@attrs.define(eq=False)
class Subscription:
    """One subscription of ours (subscriber side).

    Attributes:
        ref: Its handle (what ``subscribe`` returned and every event carries).
        target: Request-URI of the initial SUBSCRIBE.
        from_: Our From value (no tag).
        to: The To value.
        event: The Event header value (package and ``id``).
        package: The event package, lower-cased.
        event_id: The ``id`` parameter, if any.
        expires: The duration asked for, seconds.
        headers: Extra header lines (Accept …) put on every SUBSCRIBE.
        route: A pre-loaded route set for the initial SUBSCRIBE.
        call_id: Call-ID of the current SUBSCRIBE exchange.
        local_tag: Our From tag.
        cseq: CSeq of the latest initial SUBSCRIBE (the dialog's local CSeq starts there).
        dialog_id: The subscription's dialog once created.
        state: ``init``, ``pending``, ``active`` or ``terminated``.
        granted: The duration the notifier last granted.
        request_ref: Ref of the SUBSCRIBE awaiting its final response.
        unsubscribing: ``unsubscribe`` was called.
        resubscribes: Resubscriptions in a row (reset by an active NOTIFY coming at least
            ``min_subscription_expires`` after the last one).
        resubscribed_at: When the last resubscription was sent.
    """

    ref: int
    target: Uri
    from_: str
    to: str | None
    event: str
    package: str
    event_id: str | None
    expires: int
    headers: tuple[tuple[str, str], ...]
    route: tuple[str, ...]
    call_id: str = ""
    local_tag: str = ""
    cseq: int = 0
    dialog_id: DialogId | None = None
    state: str = "init"
    granted: int | None = None
    request_ref: int | None = None
    unsubscribing: bool = False
    resubscribes: int = 0
    resubscribed_at: float = 0.0
    refresh_at: float | None = None
    expires_at: float | None = None
    retry_at: float | None = None
    give_up_at: float | None = None


@attrs.define(eq=False)
class ServedSubscription:
    """One subscription we serve (notifier side).

    Attributes:
        ref: Its handle (the ref of the SUBSCRIBE that asked for it).
        dialog_id: Its dialog.
        request: The SUBSCRIBE awaiting the TU's answer (None once answered).
        server: That SUBSCRIBE's server transaction handle.
        event: The Event header value to put in NOTIFYs (package and ``id``).
        package: The event package, lower-cased.
        event_id: The ``id`` parameter.
        asked: The duration the SUBSCRIBE asked for.
        state: ``init`` (not answered), ``pending``, ``active`` or ``terminated``.
        expires_at: When it expires (None until accepted).
        body: The last state document sent (re-sent on refresh, §4.2.1.2).
        content_type: Its type.
        owns_dialog: The dialog was made by this subscription (it ends with the last one).
        answer_by: When an unanswered SUBSCRIBE is given up.
        notify_on_refresh: The layer answers a refresh with a NOTIFY of the last body;
            False: the TU sends it (``ServedSubscriptionRefreshed``), e.g. to bump a
            document version (RFC 4235 §4.1: each NOTIFY gets a new version), and the
            layer's final NOTIFYs (unsubscribe, expiry) carry no document.
    """

    ref: int
    dialog_id: DialogId
    request: Request | None
    server: object = attrs.field(repr=False)
    event: str
    package: str
    event_id: str | None
    asked: int
    state: str = "init"
    expires_at: float | None = None
    body: bytes = attrs.field(default=b"", repr=False)
    content_type: str | None = None
    owns_dialog: bool = True
    answer_by: float | None = None
    notify_on_refresh: bool = True


def _event_key(package: str, event_id: str | None) -> tuple[str, str]:
    # RFC 6665 §8.2.1: subscriptions are matched by package and id (absent id == no id).
    return package, event_id or ""


class Subscriptions:
    """Every SUBSCRIBE/NOTIFY usage of a dialog layer (RFC 6665).

    Args:
        config: Identity and limits of the layer.
        rng: Source of tags, Call-IDs, CSeq starts and branches.
        stats: The layer's counters.
        outbox: Where actions and events go.
        store: The live dialogs.
        timeline: The layer's deadlines (refreshes, expiries, retries).
        client: Sends our SUBSCRIBEs and NOTIFYs.
        uas: Answers the SUBSCRIBEs and NOTIFYs we receive.
        hooks: The façade (ending dialogs, fresh refs).
    """

    def __init__(
        self,
        config: DialogConfig,
        rng: random.Random,
        stats: Counter[str],
        outbox: Outbox,
        store: DialogStore,
        timeline: Timeline,
        client: ClientRequests,
        uas: UasRequests,
        hooks: LayerHooks,
    ) -> None:
        self._config = config
        self._rng = rng
        self._stats = stats
        self._out = outbox
        self._store = store
        self._timeline = timeline
        self._client = client
        self._uas = uas
        self._hooks = hooks
        self._ours: dict[int, Subscription] = {}
        self._served: dict[int, ServedSubscription] = {}
        self._requests: dict[int, Subscription | ServedSubscription] = {}
        """Our SUBSCRIBEs and NOTIFYs awaiting their final response, by request ref."""
        self._by_dialog: dict[DialogId, list[Subscription | ServedSubscription]] = {}

    def configure(self, config: DialogConfig) -> None:
        """Use a new configuration from now on."""
        self._config = config

    # --- questions ------------------------------------------------------------------------

    def owns(self, request_ref: int) -> bool:
        """Whether a request of ours with this ref is a SUBSCRIBE or NOTIFY of ours here."""
        return request_ref in self._requests

    def subscription(self, ref: int) -> Subscription | ServedSubscription | None:
        """Our subscription or a served one with this ref (None once it ended)."""
        return self._ours.get(ref) or self._served.get(ref)

    def counts(self) -> Counter[str]:
        """Sizes of the tables (to check nothing leaks)."""
        return Counter(
            subscriptions=len(self._ours),
            served_subscriptions=len(self._served),
            subscription_requests=len(self._requests),
        )

    # --- subscriber: commands -------------------------------------------------------------

    def subscribe(
        self,
        target: Uri,
        *,
        from_: str,
        event: str,
        expires: int,
        to: str | None,
        headers: Iterable[tuple[str, str]],
        route: Iterable[str],
        now: float,
    ) -> int:
        """Send an initial SUBSCRIBE (RFC 6665 §4.1.2.1); returns the subscription's ref.

        Raises:
            DialogUsageError: the Event value is malformed, ``expires`` is negative, or
                ``max_subscriptions`` of ours are live.
        """
        try:
            parsed = Event.parse(event)
        except SipParseError as exc:
            raise DialogUsageError(f"bad Event value {event!r}: {exc.reason}") from None
        if expires < 0:
            raise DialogUsageError(f"negative expires: {expires}")
        if len(self._ours) >= self._config.max_subscriptions:
            raise DialogUsageError(f"{len(self._ours)} subscriptions live (max_subscriptions)")
        sub = Subscription(
            ref=self._hooks.new_ref(),
            target=target,
            from_=from_,
            to=to,
            event=str(parsed),
            package=parsed.package.lower(),
            event_id=parsed.id,
            expires=expires,
            headers=tuple(headers),
            route=tuple(route),
        )
        self._ours[sub.ref] = sub
        self._send_initial(sub, now)
        return sub.ref

    def _send_initial(self, sub: Subscription, now: float) -> None:
        sub.call_id = ""
        sub.local_tag = new_tag(self._rng)
        headers = [("Event", sub.event), ("Expires", str(sub.expires)), *sub.headers]
        request = self._client.new_request(
            "SUBSCRIBE",
            sub.target,
            sub.from_,
            sub.to,
            None,
            sub.local_tag,
            None,
            headers,
            sub.route,
            b"",
            None,
        )
        sub.call_id = request.call_id
        sub.cseq = request.cseq.seq
        sub.dialog_id = None
        sub.state = "init"
        self._send(sub, request, None)
        # Give the exchange 64*T1 (and the NOTIFY that may overtake the 2xx) to finish.
        sub.give_up_at = now + 64 * self._config.t1 + 1.0
        self._schedule(sub)

    def unsubscribe(self, ref: int, now: float) -> None:
        """End our subscription: SUBSCRIBE with ``Expires: 0`` (RFC 6665 §4.1.2.3).

        The notifier answers with a final NOTIFY; :class:`SubscriptionEnded`
        (``unsubscribed``) follows it, or follows 64*T1 without it.

        Raises:
            DialogUsageError: no such subscription.
        """
        sub = self._ours.get(ref)
        if sub is None:
            raise DialogUsageError(f"no subscription with ref {ref}")
        sub.unsubscribing = True
        sub.refresh_at = sub.retry_at = None
        dialog = self._store.get(sub.dialog_id) if sub.dialog_id is not None else None
        if dialog is None:
            if sub.request_ref is None:
                self._end_ours(sub, "unsubscribed")
            else:
                # The initial SUBSCRIBE is still out: unsubscribe once its dialog exists.
                self._schedule(sub)
            return
        self._refresh(sub, dialog, 0)
        sub.give_up_at = now + 64 * self._config.t1
        self._schedule(sub)

    # --- subscriber: time -----------------------------------------------------------------

    def _schedule(self, sub: Subscription) -> None:
        times = [
            t
            for t in (sub.refresh_at, sub.expires_at, sub.retry_at, sub.give_up_at)
            if t is not None
        ]
        if times:
            self._timeline.set(sub, min(times))
        else:
            self._timeline.cancel(sub)

    def _on_our_deadline(self, sub: Subscription, now: float) -> None:
        if self._ours.get(sub.ref) is not sub:
            return
        if sub.retry_at is not None and sub.retry_at <= now:
            sub.retry_at = None
            self._send_initial(sub, now)
            return
        if sub.give_up_at is not None and sub.give_up_at <= now:
            sub.give_up_at = None
            if sub.unsubscribing:
                self._end_ours(sub, "unsubscribed")
            elif sub.state == "init" and sub.request_ref is None:
                # RFC 6665 §4.1.2.4: no NOTIFY within 64*T1 of the 2xx: the subscription
                # failed (the notifier cannot reach us, or the exchange was lost).
                self._end_ours(sub, "timeout")
            if self._ours.get(sub.ref) is not sub:
                return
        if sub.expires_at is not None and sub.expires_at <= now:
            # RFC 6665 §4.1.2.2: not refreshed in time: the subscription is over.
            sub.expires_at = None
            self._end_ours(sub, "timeout")
            return
        if sub.refresh_at is not None and sub.refresh_at <= now:
            sub.refresh_at = None
            dialog = self._store.get(sub.dialog_id) if sub.dialog_id is not None else None
            if dialog is not None and sub.request_ref is None:
                self._refresh(sub, dialog, sub.expires)
        self._schedule(sub)

    def _refresh(self, sub: Subscription, dialog: Dialog, expires: int) -> None:
        # RFC 6665 §4.1.2.2 (refresh) and §4.1.2.3 (Expires 0: unsubscribe): a SUBSCRIBE
        # in the subscription's dialog with the same Event.
        headers = (("Event", sub.event), ("Expires", str(expires)), *sub.headers)
        request = dialog.build_request("SUBSCRIBE", self._config, self._rng, headers=headers)
        self._send(sub, request, dialog.id)

    def _send(
        self, usage: Subscription | ServedSubscription, request: Request, did: DialogId | None
    ) -> None:
        ref = self._hooks.new_ref()
        self._requests[ref] = usage
        if isinstance(usage, Subscription):
            usage.request_ref = ref
        self._client.send(ClientRequest(ref=ref, request=request, dialog_id=did, internal=True))

    # --- responses to our SUBSCRIBEs and NOTIFYs -------------------------------------------

    def on_response(
        self, creq: ClientRequest, response: Response, now: float, retried: bool
    ) -> None:
        """The final response to a SUBSCRIBE or NOTIFY of ours (after the client's own work).

        Args:
            creq: Our request.
            response: Its final response (a synthesized 408/503 for a timeout or error).
            now: Current time.
            retried: The client sent the request again with credentials (401/407).
        """
        if retried:
            return  # the same ref comes back with the retried request's answer
        usage = self._requests.pop(creq.ref, None)
        if isinstance(usage, Subscription):
            self._subscribe_answered(usage, creq, response, now)
        elif (
            isinstance(usage, ServedSubscription)
            and response.status >= 300
            and self._served.get(usage.ref) is usage
        ):
            # RFC 6665 §4.2.2: a NOTIFY refused (481 and other failures) or timed out
            # removes the subscription.
            self._end_served(usage, "notify-failed")

    def _subscribe_answered(
        self, sub: Subscription, creq: ClientRequest, response: Response, now: float
    ) -> None:
        if self._ours.get(sub.ref) is not sub or sub.request_ref != creq.ref:
            return
        sub.request_ref = None
        status = response.status
        if 200 <= status < 300:
            self._subscribe_ok(sub, creq.request, response, now)
            return
        initial = creq.request.to.tag is None
        if status == 423 and not sub.unsubscribing:
            # RFC 6665 §4.1.2.1 (RFC 3261 §10.2.8 style): too brief: ask again with the
            # notifier's Min-Expires, once it is within our own maximum.
            least = _int_header(response, "Min-Expires")
            if least is not None and sub.expires < least <= self._config.max_subscription_expires:
                sub.expires = least
                if initial:
                    self._send_initial(sub, now)
                else:
                    dialog = self._store.get(sub.dialog_id) if sub.dialog_id else None
                    if dialog is not None:
                        self._refresh(sub, dialog, least)
                return
        if sub.unsubscribing:
            self._end_ours(sub, "unsubscribed")
            return
        if initial:
            if sub.dialog_id is not None and self._store.get(sub.dialog_id) is not None:
                return  # a NOTIFY made the dialog: the subscription lives by it (§4.1.2.4)
            self._end_ours(sub, "rejected", status, _int_header(response, "Retry-After"))
            return
        # RFC 6665 §4.1.2.2: a failed refresh (not 481, which ends the dialog) leaves the
        # subscription until it expires.
        self._stats["subscription_refresh_failed"] += 1
        self._schedule(sub)

    def _subscribe_ok(
        self, sub: Subscription, request: Request, response: Response, now: float
    ) -> None:
        asked = _int_header(request, "Expires")
        granted = _int_header(response, "Expires")
        # RFC 6665 §4.1.2.1: the 2xx's Expires is the duration; it may be shorter.
        if granted is None:
            granted = asked if asked is not None else sub.expires
        if asked is not None:
            granted = min(granted, asked)
        if sub.dialog_id is None:
            made = Dialog.from_uac(request, response)
            self._store.add(made)
            self._attach(sub, made.id)
        elif (dialog := self._store.get(sub.dialog_id)) is not None:
            dialog.refresh_target(response)  # RFC 6665 §4.1.2.2: a 2xx refreshes the target
        if sub.unsubscribing:
            if asked == 0:
                sub.give_up_at = now + 64 * self._config.t1
            else:
                # unsubscribe() came while the initial SUBSCRIBE was out: send it now.
                self._unsubscribe_now(sub, now)
            self._schedule(sub)
            return
        if sub.dialog_id is not None:
            self._out.emit(SubscriptionAccepted(sub.ref, sub.dialog_id, granted))
        # RFC 6665 §4.1.2.4: the NOTIFY must follow the 2xx within 64*T1.
        sub.give_up_at = now + 64 * self._config.t1 if sub.state == "init" else None
        self._granted(sub, granted, now)

    def _unsubscribe_now(self, sub: Subscription, now: float) -> None:
        dialog = self._store.get(sub.dialog_id) if sub.dialog_id is not None else None
        if dialog is None:
            self._end_ours(sub, "unsubscribed")
            return
        self._refresh(sub, dialog, 0)
        sub.give_up_at = now + 64 * self._config.t1

    def _granted(self, sub: Subscription, granted: int, now: float) -> None:
        sub.granted = granted
        sub.expires_at = now + granted
        # Refresh ahead of the expiry: half way for short ones, a minute before otherwise
        # (RFC 6665 §4.1.2.2 leaves the margin to the subscriber).
        sub.refresh_at = now + max(granted / 2, granted - 60) if granted > 0 else None
        self._schedule(sub)

    def _attach(self, usage: Subscription | ServedSubscription, did: DialogId) -> None:
        usage.dialog_id = did
        self._by_dialog.setdefault(did, []).append(usage)

    # --- requests: SUBSCRIBE and NOTIFY ----------------------------------------------------

    def on_request(self, request: Request, server: object, now: float) -> bool:
        """A SUBSCRIBE or NOTIFY arrived; True when handled here (answered or given to the TU).

        A NOTIFY that matches none of our subscriptions is left to the caller when it
        belongs to a live dialog (REFER's implicit subscription, RFC 3515) and is
        answered 481 otherwise (RFC 6665 §4.1.3).
        """
        if request.method == "NOTIFY":
            return self._on_notify(request, server, now)
        return self._on_subscribe(request, server, now)

    def _reply(
        self,
        request: Request,
        server: object,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._uas.reply(request, server, status, reason, to_tag=to_tag, headers=headers)

    # --- subscriber: NOTIFY ---------------------------------------------------------------

    def _on_notify(self, request: Request, server: object, now: float) -> bool:
        to_tag = request.to.tag or ""
        did = DialogId(request.call_id, to_tag, request.from_.tag or "")
        try:
            event = request.header(Event)
        except SipParseError:
            event = None
        candidates = self._by_dialog.get(did)
        sub: Subscription | None = None
        if event is not None:
            key = _event_key(event.package.lower(), event.id)
            if candidates:
                for usage in candidates:
                    if (
                        isinstance(usage, Subscription)
                        and _event_key(usage.package, usage.event_id) == key
                    ):
                        sub = usage
                        break
            elif self._store.get(did) is None:
                sub = self._early_match(request, key)
        if sub is None:
            if candidates:
                # A dialog of our subscriptions, but no subscription of this event/id:
                # RFC 6665 §8.2.1 (no usable Event: 489), §4.1.3 (else 481).
                if event is None:
                    self._reply(request, server, 489, "Bad Event")
                else:
                    self._stats["notify_unmatched"] += 1
                    self._reply(request, server, 481, "Subscription Does Not Exist")
                return True
            if self._store.get(did) is not None:
                return False  # another usage of a live dialog (REFER): not ours
            # RFC 6665 §4.1.3: a NOTIFY matching no subscription: 481.
            self._stats["notify_unmatched"] += 1
            self._reply(request, server, 481, "Subscription Does Not Exist")
            return True
        try:
            state = request.header(SubscriptionState)
        except SipParseError:
            state = None
        if state is None or state.state not in ("active", "pending", "terminated"):
            # RFC 6665 §4.1.3: Subscription-State is mandatory in NOTIFY.
            self._reply(request, server, 400, "Missing or Bad Subscription-State")
            return True
        dialog = self._store.get(did)
        if dialog is None:
            # RFC 6665 §4.1.2.4: the NOTIFY came before the 2xx: it creates the dialog
            # (route set from its Record-Route, target from its Contact).
            dialog = Dialog.from_uas(request, to_tag, dialog_id=did)
            dialog.move(Trigger.SUCCESS)
            dialog.local_seq = sub.cseq
            self._store.add(dialog)
            self._attach(sub, did)
            self._stats["subscription_early_notify"] += 1
        elif not dialog.accept_remote_cseq(request):
            self._reply(request, server, 500, "CSeq Out of Order")
            return True
        else:
            dialog.refresh_target(request)  # RFC 6665 §4.1.3: NOTIFY is a target refresh
        self._reply(request, server, 200)
        self._notified(sub, dialog.id, request, state, now)
        return True

    def _early_match(self, request: Request, key: tuple[str, str]) -> Subscription | None:
        """The subscription whose initial SUBSCRIBE this dialog-less NOTIFY answers."""
        call_id, to_tag = request.call_id, request.to.tag
        for sub in self._ours.values():
            if (
                sub.dialog_id is None
                and sub.call_id == call_id
                and sub.local_tag == to_tag
                and _event_key(sub.package, sub.event_id) == key
            ):
                return sub
        return None

    def _notified(
        self,
        sub: Subscription,
        did: DialogId,
        request: Request,
        state: SubscriptionState,
        now: float,
    ) -> None:
        reason = state.reason
        resubscribe_at: float | None = None
        if (
            state.state == "terminated"
            and not sub.unsubscribing
            and sub.expires > 0
            and sub.resubscribes < self._config.resubscribe_limit
        ):
            # RFC 6665 §4.1.3: deactivated/timeout: subscribe again at once; probation/
            # giveup: after retry-after (if given); rejected, noresource, invariant: never.
            retry = state.retry_after
            if reason in _RETRY_NOW:
                resubscribe_at = now
            elif (
                reason in _RETRY_LATER
                and retry is not None
                and retry <= self._config.max_retry_after
            ):
                resubscribe_at = now + retry
        self._out.emit(
            SubscriptionNotified(
                sub.ref,
                did,
                request,
                state.state,
                reason,
                state.expires,
                request.body,
                request.headers.get("Content-Type"),
                resubscribe_at is not None,
            )
        )
        if self._ours.get(sub.ref) is not sub:
            return
        if state.state != "terminated":
            if (
                state.state == "active"
                and now - sub.resubscribed_at >= self._config.min_subscription_expires
            ):
                # Active for a while since the last resubscription: the count starts over
                # (a notifier that accepts and deactivates at once keeps it growing).
                sub.resubscribes = 0
            sub.state = state.state
            if not sub.unsubscribing:
                sub.give_up_at = None  # the NOTIFY came (RFC 6665 §4.1.2.4)
            granted = state.expires
            if granted is not None and (
                sub.granted is None or sub.expires_at is None or now + granted < sub.expires_at
            ):
                # RFC 6665 §4.1.3: the notifier may shorten the subscription in a NOTIFY.
                self._granted(sub, granted, now)
            return
        if sub.unsubscribing:
            self._end_ours(sub, "unsubscribed")
            return
        if sub.expires == 0:
            # A fetch (RFC 6665 §4.4.3: Expires 0): its one NOTIFY ends it.
            self._end_ours(sub, reason or "timeout")
            return
        if resubscribe_at is None:
            self._end_ours(sub, reason or "terminated", None, state.retry_after)
            return
        sub.resubscribes += 1
        sub.resubscribed_at = now
        self._detach_dialog(sub)
        sub.refresh_at = sub.expires_at = sub.give_up_at = None
        if resubscribe_at <= now:
            self._send_initial(sub, now)
        else:
            sub.retry_at = resubscribe_at
            self._schedule(sub)

    def _detach_dialog(self, usage: Subscription | ServedSubscription) -> None:
        """Take ``usage`` off its dialog; end the dialog when nothing else uses it."""
        did = usage.dialog_id
        if did is None:
            return
        if isinstance(usage, Subscription):
            usage.dialog_id = None
        users = self._by_dialog.get(did)
        if users is not None:
            if usage in users:
                users.remove(usage)
            if users:
                return
            del self._by_dialog[did]
        owns = usage.owns_dialog if isinstance(usage, ServedSubscription) else True
        dialog = self._store.get(did)
        if dialog is not None and owns:
            self._hooks.end_dialog(dialog, TerminationReason.SUBSCRIPTION_ENDED)

    def _end_ours(
        self,
        sub: Subscription,
        reason: str,
        status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        if self._ours.pop(sub.ref, None) is not sub:
            return
        sub.state = "terminated"
        self._timeline.cancel(sub)
        if sub.request_ref is not None:
            self._requests.pop(sub.request_ref, None)
            sub.request_ref = None
        self._detach_dialog(sub)
        self._out.emit(SubscriptionEnded(sub.ref, reason, status, retry_after))

    # --- notifier: SUBSCRIBE --------------------------------------------------------------

    def _on_subscribe(self, request: Request, server: object, now: float) -> bool:
        config = self._config
        try:
            event = request.header(Event)
        except SipParseError:
            event = None
        package = event.package.lower() if event is not None else ""
        if event is None or package not in config.event_packages:
            # RFC 6665 §4.2.1.1 / §8.2.2: an unknown or missing package: 489 with the ones
            # we serve in Allow-Events.
            headers = [("Allow-Events", ", ".join(config.event_packages))]
            self._reply(request, server, 489, "Bad Event", headers=headers)
            return True
        raw = request.headers.get("Expires")
        expires = _int_header(request, "Expires")
        if raw is not None and expires is None:
            self._reply(request, server, 400, "Bad Expires")
            return True
        if expires is None:
            expires = config.subscription_default_expires
        if 0 < expires < config.min_subscription_expires:
            # RFC 6665 §4.2.1.1: too short: 423 with our Min-Expires.
            self._reply(
                request,
                server,
                423,
                headers=[("Min-Expires", str(config.min_subscription_expires))],
            )
            return True
        to_tag = request.to.tag
        if to_tag is None:
            return self._new_subscribe(request, server, event, expires, now)
        did = DialogId(request.call_id, to_tag, request.from_.tag or "")
        dialog = self._store.get(did)
        if dialog is None:
            # RFC 6665 §4.2.1.2 / RFC 3261 §12.2.2: a refresh of a subscription we no
            # longer know.
            self._reply(request, server, 481, "Subscription Does Not Exist")
            return True
        if not dialog.accept_remote_cseq(request):
            self._reply(request, server, 500, "CSeq Out of Order")
            return True
        key = _event_key(package, event.id)
        for usage in self._by_dialog.get(did, ()):
            if (
                isinstance(usage, ServedSubscription)
                and _event_key(usage.package, usage.event_id) == key
            ):
                self._refreshed(usage, dialog, request, server, expires, now)
                return True
        # A new subscription in an existing dialog (RFC 6665 §4.5.2): same as a new one.
        return self._new_subscribe(request, server, event, expires, now, dialog=dialog)

    def _new_subscribe(
        self,
        request: Request,
        server: object,
        event: Event,
        expires: int,
        now: float,
        *,
        dialog: Dialog | None = None,
    ) -> bool:
        if len(self._served) >= self._config.max_subscriptions:
            self._stats["subscriptions_refused"] += 1
            self._reply(request, server, 503, headers=[("Retry-After", "60")])
            return True
        if dialog is None:
            did = DialogId(request.call_id, new_tag(self._rng), request.from_.tag or "")
        else:
            did = dialog.id
        served = ServedSubscription(
            ref=self._hooks.new_ref(),
            dialog_id=did,
            request=request,
            server=server,
            event=str(event),
            package=event.package.lower(),
            event_id=event.id,
            asked=expires,
            owns_dialog=dialog is None,
            # RFC 3261 §17.1.2.2: the subscriber gives up after 64*T1: so do we.
            answer_by=now + 64 * self._config.t1,
        )
        self._served[served.ref] = served
        self._timeline.set(served, served.answer_by or now)
        self._out.emit(
            SubscribeReceived(served.ref, did, request, served.package, served.event_id, expires)
        )
        return True

    def _refreshed(
        self,
        served: ServedSubscription,
        dialog: Dialog,
        request: Request,
        server: object,
        expires: int,
        now: float,
    ) -> None:
        dialog.refresh_target(request)
        granted = min(expires, self._config.max_subscription_expires)
        self._reply(
            request, server, 200, headers=[("Expires", str(granted)), self._contact(request)]
        )
        if granted == 0:
            # RFC 6665 §4.2.1.4 / §4.2.2: unsubscribed: a final NOTIFY with the state.
            self._final_notify(served, "timeout", None)
            self._end_served(served, "unsubscribed")
            return
        served.expires_at = now + granted
        self._timeline.set(served, served.expires_at)
        self._out.emit(ServedSubscriptionRefreshed(served.ref, served.dialog_id, granted))
        if served.notify_on_refresh:
            # RFC 6665 §4.2.1.2: a refresh is followed by a NOTIFY with the current state.
            self._send_notify(served, now)

    def _contact(self, request: Request) -> tuple[str, str]:
        # RFC 3261 §12.1.1 / RFC 5630: a sips: Contact only for a secure request, else the
        # Contact of the transport the request came over.
        secure = is_secure_request(request)
        contact = self._config.contact_for(request.top_via.transport.upper(), secure)
        return ("Contact", f"<{contact}>")

    # --- notifier: commands ---------------------------------------------------------------

    def accept(
        self,
        ref: int,
        *,
        expires: int | None,
        pending: bool,
        body: bytes,
        content_type: str | None,
        now: float,
        notify_on_refresh: bool = True,
    ) -> int:
        """Accept a subscription: 200 (202 when ``pending``), then the first NOTIFY.

        RFC 6665 §4.2.1.1: the granted duration is at most the one asked for (and at most
        ``max_subscription_expires``); §4.2.1.2: a NOTIFY follows at once, carrying
        ``body`` (the package's current state) and ``active``/``pending``. A SUBSCRIBE
        with ``Expires: 0`` (a fetch) gets that NOTIFY as ``terminated;reason=timeout``.
        ``notify_on_refresh`` False leaves the NOTIFY that follows each refresh to the TU
        (it is told by ``ServedSubscriptionRefreshed``).

        Returns:
            The granted duration, seconds.

        Raises:
            DialogUsageError: no SUBSCRIBE awaits an answer with this ref.
        """
        served = self._awaiting(ref)
        request, server = served.request, served.server
        assert request is not None
        granted = min(
            served.asked,
            self._config.max_subscription_expires,
            served.asked if expires is None else max(expires, 0),
        )
        if 0 < granted < self._config.min_subscription_expires <= served.asked:
            granted = self._config.min_subscription_expires
        served.request = None
        served.notify_on_refresh = notify_on_refresh
        did = served.dialog_id
        headers = [("Expires", str(granted)), self._contact(request)]
        if served.owns_dialog:
            # RFC 6665 §4.2.1.1: the 2xx creates the dialog (our To tag, their Contact).
            dialog = Dialog.from_uas(request, did.local_tag, dialog_id=did)
            dialog.move(Trigger.SUCCESS)
            self._store.add(dialog)
            if "Record-Route" in request.headers:
                # RFC 3261 §12.1.1: a dialog-creating response copies Record-Route.
                headers.extend(
                    ("Record-Route", rr) for rr in request.headers.get_all("Record-Route")
                )
        self._attach(served, did)
        status = 202 if pending else 200
        self._reply(request, server, status, to_tag=did.local_tag, headers=headers)
        served.state = "pending" if pending else "active"
        served.body, served.content_type = body, content_type
        if granted == 0:
            self._final_notify(served, "timeout", None)
            self._end_served(served, "unsubscribed")
            return 0
        served.answer_by = None
        served.expires_at = now + granted
        self._timeline.set(served, served.expires_at)
        self._send_notify(served, now)
        return granted

    def reject(
        self,
        ref: int,
        status: int,
        reason: str | None,
        headers: Iterable[tuple[str, str]],
    ) -> None:
        """Refuse a subscription with a final failure (403, 404, 489 …); it is forgotten.

        Raises:
            DialogUsageError: no SUBSCRIBE awaits an answer with this ref, or ``status``
                is not 300-699.
        """
        if not 300 <= status <= 699:
            raise DialogUsageError(f"a rejection needs a 3xx-6xx status, not {status}")
        served = self._awaiting(ref)
        request = served.request
        assert request is not None
        self._reply(request, served.server, status, reason, headers=headers)
        served.request = None
        self._drop_served(served)

    def notify(
        self,
        ref: int,
        body: bytes,
        content_type: str | None,
        *,
        pending: bool | None,
        now: float,
    ) -> int:
        """Send a NOTIFY with a new state document (RFC 6665 §4.2.2); returns its ref.

        ``pending`` False turns a pending subscription active (the authorization was
        granted); None keeps its state.

        Raises:
            DialogUsageError: no live accepted subscription with this ref.
        """
        served = self._live(ref)
        if pending is not None:
            served.state = "pending" if pending else "active"
        served.body, served.content_type = body, content_type
        return self._send_notify(served, now)

    def terminate(
        self,
        ref: int,
        reason: str,
        *,
        retry_after: int | None,
        body: bytes,
        content_type: str | None,
    ) -> int:
        """End a subscription we serve with a final NOTIFY (RFC 6665 §4.2.2).

        ``reason``: ``noresource``, ``rejected``, ``deactivated`` (the subscriber
        subscribes again), ``probation``/``giveup`` (with ``retry_after``) …

        Returns:
            The final NOTIFY's ref.

        Raises:
            DialogUsageError: no live accepted subscription with this ref.
        """
        served = self._live(ref)
        if body:
            served.body, served.content_type = body, content_type
        sent = self._final_notify(served, reason, retry_after, given=bool(body))
        self._end_served(served, "terminated")
        return sent

    def _awaiting(self, ref: int) -> ServedSubscription:
        served = self._served.get(ref)
        if served is None or served.request is None:
            raise DialogUsageError(f"no SUBSCRIBE awaiting an answer with ref {ref}")
        return served

    def _live(self, ref: int) -> ServedSubscription:
        served = self._served.get(ref)
        if served is None or served.request is not None or served.state == "terminated":
            raise DialogUsageError(f"no live subscription with ref {ref}")
        return served

    def _send_notify(self, served: ServedSubscription, now: float) -> int:
        left = 0 if served.expires_at is None else max(math.ceil(served.expires_at - now), 0)
        return self._notify_with(served, f"{served.state};expires={left}")

    def _final_notify(
        self,
        served: ServedSubscription,
        reason: str,
        retry_after: int | None,
        *,
        given: bool = False,
    ) -> int:
        state = f"terminated;reason={reason}"
        if retry_after is not None:
            state += f";retry-after={retry_after}"
        served.state = "terminated"
        # The last document goes again only while the layer re-sends documents itself;
        # when the TU versions them (notify_on_refresh False) a repeat would break the
        # version order (RFC 4235 §4.1), so the final NOTIFY carries only the state.
        return self._notify_with(served, state, with_body=given or served.notify_on_refresh)

    def _notify_with(
        self, served: ServedSubscription, state: str, *, with_body: bool = True
    ) -> int:
        dialog = self._store.get(served.dialog_id)
        if dialog is None:
            raise DialogUsageError(f"the dialog of subscription {served.ref} ended")
        # RFC 6665 §4.2.2 / §8.2.3: NOTIFY carries Event (with the SUBSCRIBE's id) and
        # Subscription-State.
        headers = (("Event", served.event), ("Subscription-State", state))
        request = dialog.build_request(
            "NOTIFY",
            self._config,
            self._rng,
            headers=headers,
            body=served.body if with_body else b"",
            content_type=served.content_type if served.body and with_body else None,
        )
        ref = self._hooks.new_ref()
        self._requests[ref] = served
        self._client.send(
            ClientRequest(ref=ref, request=request, dialog_id=dialog.id, internal=True)
        )
        return ref

    def _on_served_deadline(self, served: ServedSubscription, now: float) -> None:
        if self._served.get(served.ref) is not served:
            return
        if served.request is not None:
            if served.answer_by is not None and served.answer_by <= now:
                # The TU never answered: the subscriber has given up already.
                self._reply(served.request, served.server, 480, "Temporarily Unavailable")
                served.request = None
                self._drop_served(served)
            return
        if served.expires_at is not None and served.expires_at <= now:
            # RFC 6665 §4.2.2: at expiry the notifier sends a final NOTIFY, reason timeout.
            self._final_notify(served, "timeout", None)
            self._end_served(served, "timeout")

    def _end_served(self, served: ServedSubscription, reason: str) -> None:
        if self._served.get(served.ref) is not served:
            return
        self._drop_served(served)
        self._detach_dialog(served)
        self._out.emit(ServedSubscriptionEnded(served.ref, served.dialog_id, reason))

    def _drop_served(self, served: ServedSubscription) -> None:
        self._served.pop(served.ref, None)
        served.state = "terminated"
        self._timeline.cancel(served)

    # --- time and the end of dialogs ------------------------------------------------------

    def on_deadline(self, key: Subscription | ServedSubscription, now: float) -> None:
        """A deadline of a subscription came (popped from the timeline)."""
        if isinstance(key, Subscription):
            self._on_our_deadline(key, now)
        else:
            self._on_served_deadline(key, now)

    def dialog_ended(self, did: DialogId) -> None:
        """A dialog ended (BYE, 481, 408 …): its subscriptions end with it."""
        users = self._by_dialog.pop(did, None)
        if not users:
            return
        for usage in users:
            if isinstance(usage, Subscription):
                usage.dialog_id = None
                if self._ours.get(usage.ref) is usage:
                    self._end_ours(usage, "unsubscribed" if usage.unsubscribing else "dialog-ended")
            elif self._served.get(usage.ref) is usage:
                self._drop_served(usage)
                self._out.emit(ServedSubscriptionEnded(usage.ref, did, "dialog-ended"))


def _int_header(message: Request | Response, name: str) -> int | None:
    """A delta-seconds header (Expires, Min-Expires, Retry-After), or None when absent or bad."""
    value = message.headers.get(name)
    if value is None:
        return None
    text = value.split(";", 1)[0].split("(", 1)[0].strip()
    if not text.isdigit() or len(text) > 10:
        return None
    return int(text)
