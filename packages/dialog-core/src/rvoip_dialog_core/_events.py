"""What the dialog layer emits: wire actions for the driver and events for the session layer.

Actions go down (to the transaction layer), events go up (to session-core). All are frozen
values; a driver executes actions in order and forwards events.
"""

from __future__ import annotations

import enum

import attrs

from rvoip_sip_core import Request, Response, Uri

from ._dialog import DialogId, LegId

__all__ = [
    "AckReceived",
    "Action",
    "AuthenticationFailed",
    "ByeReceived",
    "CancelReceived",
    "DialogConfirmed",
    "DialogEarly",
    "DialogEvent",
    "DialogTerminated",
    "GlareRetryScheduled",
    "IncomingInvite",
    "InfoReceived",
    "InviteFailed",
    "InviteProgress",
    "NotifyReceived",
    "OptionsReceived",
    "PrackReceived",
    "ReInviteReceived",
    "ReferReceived",
    "RequestReceived",
    "ResponseForRequest",
    "SendAck",
    "SendRequest",
    "SendResponse",
    "ServedSubscriptionEnded",
    "ServedSubscriptionRefreshed",
    "SessionRefreshDue",
    "SessionRefreshed",
    "SubscribeReceived",
    "SubscriptionAccepted",
    "SubscriptionEnded",
    "SubscriptionNotified",
    "TerminationReason",
    "UpdateReceived",
]


# --- actions (down) -------------------------------------------------------------------


@attrs.frozen
class SendRequest:
    """Start a new client transaction for ``request`` (its top Via branch keys it)."""

    request: Request


@attrs.frozen
class SendAck:
    """Send the ACK for a 2xx without a transaction (RFC 3261 §13.2.2.4, §17.1.1.3)."""

    request: Request


@attrs.frozen
class SendResponse:
    """Send ``response`` on the server transaction ``server`` (the driver's handle).

    Retransmissions of a 2xx to INVITE (RFC 3261 §13.3.1.4) are sent with the same handle;
    the driver passes them to the transport when the transaction no longer exists.
    """

    response: Response
    server: object = attrs.field(eq=False)


Action = SendRequest | SendAck | SendResponse


# --- events (up) ------------------------------------------------------------------------


class TerminationReason(enum.Enum):
    """Why a dialog ended (carried by :class:`DialogTerminated`)."""

    # Members are singletons: identity hashing is correct and cheaper than Enum's (a
    # Python-level hash of the name; hot path: the layers' reason tables, per call).
    __hash__ = object.__hash__

    LOCAL_BYE = "local-bye"
    REMOTE_BYE = "remote-bye"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    """The INVITE got (or we sent) a final non-2xx response."""
    FORK_LOST = "fork-lost"
    """An early dialog of a forked INVITE whose sibling was answered first."""
    REDIRECTED = "redirected"
    """An early dialog whose INVITE got a final non-2xx (a 3xx, or a failure of a redirect
    target) while the call goes on to the next target of its set (RFC 3261 §8.1.3.4,
    §12.3): e.g. a phone's forward-on-no-answer, 180 Ringing then 302."""
    ACK_TIMEOUT = "ack-timeout"
    """RFC 3261 §13.3.1.4: no ACK for our 2xx within 64×T1; a BYE was sent."""
    TIMEOUT = "timeout"
    """A request in the dialog timed out (RFC 3261 §12.2.1.2: treated as 408)."""
    TRANSPORT_ERROR = "transport-error"
    NO_DIALOG = "no-dialog"
    """The peer answered 481: it no longer knows the dialog (RFC 3261 §12.2.1.2)."""
    SESSION_EXPIRED = "session-expired"
    """RFC 4028: the session interval elapsed without a refresh; a BYE was sent."""
    SUBSCRIPTION_ENDED = "subscription-ended"
    """RFC 6665 §4.4.1: the last subscription of a dialog that only carried subscriptions
    ended (final NOTIFY, expiry, unsubscribe, rejection)."""


@attrs.frozen
class IncomingInvite:
    """A new INVITE (outside any dialog) arrived; answer it with ``DialogLayer.respond(ref, …)``.

    ``dialog_id`` is the dialog the answer will create (our To tag is already chosen).
    ``replaces`` is the live dialog named by a ``Replaces`` header (RFC 3891, attended
    transfer): the session layer ends that one when it accepts this call.
    """

    ref: int
    dialog_id: DialogId
    request: Request
    replaces: DialogId | None = None


@attrs.frozen
class InviteProgress:
    """A provisional response (101–199) to our initial INVITE; ``dialog_id`` set if tagged."""

    leg: LegId
    dialog_id: DialogId | None
    response: Response


@attrs.frozen
class DialogEarly:
    """An early dialog was created (UAC: 1xx with a To tag; UAS: we sent a tagged 1xx)."""

    dialog_id: DialogId
    message: Request | Response


@attrs.frozen
class DialogConfirmed:
    """A dialog is confirmed: UAC received the 2xx (and sent the ACK); UAS sent the 2xx."""

    dialog_id: DialogId
    message: Request | Response


@attrs.frozen
class InviteFailed:
    """Our initial INVITE ended without a dialog: final non-2xx, timeout (408) or error (503).

    ``response`` is the received response or one synthesized for a timeout / transport error.
    """

    leg: LegId
    response: Response


@attrs.frozen
class CallRedirected:
    """Our initial INVITE is sent again, to ``target``: the call was redirected.

    RFC 3261 §8.1.3.4: a 3xx's Contacts (in q order) become the call's targets; ``response``
    is the 3xx that named ``target``, or the failure of the previous target that moved the
    call on to it. The call's target is now ``target`` (the INVITE's new Request-URI).
    """

    leg: LegId
    target: Uri
    response: Response


@attrs.frozen
class DialogTerminated:
    """A dialog ended; nothing more will be sent or accepted in it."""

    dialog_id: DialogId
    reason: TerminationReason
    status: int | None = None


@attrs.frozen
class AckReceived:
    """The ACK for our 2xx arrived (it may carry the SDP answer to an offer-less INVITE)."""

    dialog_id: DialogId
    request: Request


@attrs.frozen
class CancelReceived:
    """The caller cancelled its pending INVITE; 200 and 487 were sent already."""

    dialog_id: DialogId
    request: Request


@attrs.frozen
class ByeReceived:
    """The peer hung up; 200 was sent already (a :class:`DialogTerminated` follows)."""

    dialog_id: DialogId
    request: Request


@attrs.frozen
class ReInviteReceived:
    """A re-INVITE in a confirmed dialog; answer it with ``respond(ref, …)``; offer may be b""."""

    ref: int
    dialog_id: DialogId
    request: Request
    offer: bytes


@attrs.frozen
class UpdateReceived:
    """An UPDATE (RFC 3311); answer with ``respond(ref, …)``."""

    ref: int
    dialog_id: DialogId
    request: Request
    offer: bytes


@attrs.frozen
class ReferReceived:
    """A REFER (RFC 3515); accept with ``accept_refer(ref)`` (202 + NOTIFY) or ``respond``."""

    ref: int
    dialog_id: DialogId
    request: Request
    refer_to: str


@attrs.frozen
class NotifyReceived:
    """A NOTIFY in a dialog (200 sent already). For ``Event: refer`` the sipfrag is parsed.

    Attributes:
        sipfrag_status: Status code of the ``message/sipfrag`` body, when there is one.
        terminated: ``Subscription-State: terminated``.
    """

    dialog_id: DialogId
    request: Request
    event: str
    sipfrag_status: int | None
    terminated: bool


@attrs.frozen
class InfoReceived:
    """An INFO in a dialog (200 sent already), e.g. ``application/dtmf-relay``."""

    dialog_id: DialogId
    request: Request


@attrs.frozen
class OptionsReceived:
    """An OPTIONS (200 with Allow/Accept/Supported sent already); dialog_id None outside one."""

    dialog_id: DialogId | None
    request: Request


@attrs.frozen
class PrackReceived:
    """A PRACK (RFC 3262) acknowledging one of our reliable provisionals (200 sent)."""

    dialog_id: DialogId
    request: Request


@attrs.frozen
class RequestReceived:
    """A request of an ``extra_methods`` method; answer it with ``respond(ref, …)``."""

    ref: int
    dialog_id: DialogId | None
    request: Request


@attrs.frozen
class ResponseForRequest:
    """The final response to a request we sent with a ``ref`` (timeouts give a 408)."""

    ref: int
    dialog_id: DialogId | None
    method: str
    response: Response


@attrs.frozen
class GlareRetryScheduled:
    """RFC 3261 §14.1: our re-INVITE/UPDATE got 491; it is re-sent at ``at``."""

    ref: int
    dialog_id: DialogId
    at: float


@attrs.frozen
class SessionRefreshDue:
    """RFC 4028: we are the refresher and half the session interval passed.

    The session layer sends a re-INVITE or UPDATE (with its current SDP).
    """

    dialog_id: DialogId


@attrs.frozen
class SessionRefreshed:
    """RFC 4028: the layer's own session refresh (an UPDATE) got its 2xx; the timer restarted.

    A refresh the TU sent itself (a re-INVITE after ``SessionRefreshDue``) is reported
    by its ``ResponseForRequest`` instead.

    Attributes:
        dialog_id: The dialog refreshed.
        interval: The session interval now running, seconds.
    """

    dialog_id: DialogId
    interval: int


@attrs.frozen
class AuthenticationFailed:
    """A request of ours was challenged (401/407) and is not retried with credentials.

    Emitted just before the request's own failure (``InviteFailed`` for an initial
    INVITE, ``ResponseForRequest`` otherwise, both carrying the 401/407), so the TU can
    say why: no credentials for the realm, or the ones sent were rejected (a second
    challenge for a realm already answered, RFC 3261 §22.2).

    Attributes:
        ref: The request's ref (as in ``ResponseForRequest``; for an initial INVITE the
            INVITE's own ref).
        leg: The call leg of an initial INVITE, else None.
        dialog_id: The dialog of an in-dialog request, else None.
        method: The request's method.
        status: 401 or 407.
        realm: The realm of the challenge that could not be answered.
        reason: A sentence naming realm and status.
    """

    ref: int
    leg: LegId | None
    dialog_id: DialogId | None
    method: str
    status: int
    realm: str
    reason: str


@attrs.frozen
class SubscriptionAccepted:
    """A SUBSCRIBE of ours (initial or refresh) got a 2xx (RFC 6665 §4.1.2.1).

    The subscription's state comes in NOTIFYs (:class:`SubscriptionNotified`); a 2xx only
    says the notifier took the request.

    Attributes:
        ref: The subscription's ref (from ``DialogLayer.subscribe``).
        dialog_id: The subscription's dialog.
        expires: The duration the notifier granted (its ``Expires``), seconds.
    """

    ref: int
    dialog_id: DialogId
    expires: int


@attrs.frozen
class SubscriptionNotified:
    """A NOTIFY for one of our subscriptions arrived (200 sent already, RFC 6665 §4.1.3).

    Attributes:
        ref: The subscription's ref.
        dialog_id: Its dialog.
        request: The NOTIFY.
        state: ``active``, ``pending`` or ``terminated`` (Subscription-State).
        reason: The ``reason`` of a terminated state (``timeout``, ``deactivated``,
            ``rejected``, ``noresource``, ``probation``, ``giveup``, ``invariant`` …).
        expires: The remaining duration the notifier states, seconds.
        body: The body (the package's state document).
        content_type: Its type, or None.
        resubscribing: The layer subscribes again by itself (``deactivated``/``timeout``
            at once, ``probation``/``giveup`` after ``retry-after``, RFC 6665 §4.1.3).
    """

    ref: int
    dialog_id: DialogId
    request: Request
    state: str
    reason: str | None
    expires: int | None
    body: bytes = attrs.field(repr=False)
    content_type: str | None
    resubscribing: bool = False


@attrs.frozen
class SubscriptionEnded:
    """One of our subscriptions is over for good; its ref is dead (RFC 6665 §4.1.3, §4.4.1).

    Attributes:
        ref: The subscription's ref.
        reason: ``rejected`` (a failure response), a ``terminated`` NOTIFY's reason,
            ``unsubscribed``, ``timeout`` (expired without a refresh), ``dialog-ended``
            or ``too-many-subscriptions``.
        status: The failure response's status, when one ended it.
        retry_after: Seconds the notifier asked us to wait before subscribing again.
    """

    ref: int
    reason: str
    status: int | None = None
    retry_after: int | None = None


@attrs.frozen
class SubscribeReceived:
    """A new subscription was asked for (RFC 6665 §4.2.1).

    Answer it with ``DialogLayer.accept_subscription(ref, …)`` or
    ``reject_subscription(ref, …)``. Refreshes and unsubscribes of accepted
    subscriptions are answered by the layer.

    Attributes:
        ref: The subscription's ref (also its handle once accepted).
        dialog_id: The dialog the subscription lives in (created on acceptance).
        request: The SUBSCRIBE.
        event: The event package (lower-cased).
        event_id: The Event header's ``id`` parameter.
        expires: The duration asked for (the layer's default when absent), seconds.
    """

    ref: int
    dialog_id: DialogId
    request: Request
    event: str
    event_id: str | None
    expires: int


@attrs.frozen
class ServedSubscriptionEnded:
    """A subscription we serve is over (final NOTIFY sent or NOTIFY refused).

    Attributes:
        ref: The subscription's ref.
        dialog_id: Its dialog.
        reason: ``timeout`` (expired), ``unsubscribed`` (Expires 0), ``terminated``
            (by ``terminate_subscription``), ``notify-failed`` (a NOTIFY got a failure
            response or timed out, RFC 6665 §4.2.2) or ``dialog-ended``.
    """

    ref: int
    dialog_id: DialogId
    reason: str


@attrs.frozen
class ServedSubscriptionRefreshed:
    """A subscriber refreshed a subscription we serve (200 sent; RFC 6665 §4.2.1.2).

    The layer sent the NOTIFY that must follow, with the last body, unless the
    subscription was accepted with ``notify_on_refresh=False``: then the TU sends it
    (``notify_subscriber``), e.g. with a new document version.

    Attributes:
        ref: The subscription's ref.
        dialog_id: Its dialog.
        expires: The duration granted by the refresh, seconds.
    """

    ref: int
    dialog_id: DialogId
    expires: int


DialogEvent = (
    IncomingInvite
    | InviteProgress
    | DialogEarly
    | DialogConfirmed
    | InviteFailed
    | CallRedirected
    | DialogTerminated
    | AckReceived
    | CancelReceived
    | ByeReceived
    | ReInviteReceived
    | UpdateReceived
    | ReferReceived
    | NotifyReceived
    | InfoReceived
    | OptionsReceived
    | PrackReceived
    | RequestReceived
    | ResponseForRequest
    | GlareRetryScheduled
    | SessionRefreshDue
    | SessionRefreshed
    | AuthenticationFailed
    | SubscriptionAccepted
    | SubscriptionNotified
    | SubscriptionEnded
    | SubscribeReceived
    | ServedSubscriptionEnded
    | ServedSubscriptionRefreshed
)
