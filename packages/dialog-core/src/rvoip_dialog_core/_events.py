"""What the dialog layer emits: wire actions for the driver and events for the session layer.

Actions go down (to the transaction layer), events go up (to session-core). All are frozen
values; a driver executes actions in order and forwards events.
"""

from __future__ import annotations

import enum

import attrs

from rvoip_sip_core import Request, Response

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
    "SessionRefreshDue",
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
    ACK_TIMEOUT = "ack-timeout"
    """RFC 3261 §13.3.1.4: no ACK for our 2xx within 64×T1; a BYE was sent."""
    TIMEOUT = "timeout"
    """A request in the dialog timed out (RFC 3261 §12.2.1.2: treated as 408)."""
    TRANSPORT_ERROR = "transport-error"
    NO_DIALOG = "no-dialog"
    """The peer answered 481: it no longer knows the dialog (RFC 3261 §12.2.1.2)."""
    SESSION_EXPIRED = "session-expired"
    """RFC 4028: the session interval elapsed without a refresh; a BYE was sent."""


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


DialogEvent = (
    IncomingInvite
    | InviteProgress
    | DialogEarly
    | DialogConfirmed
    | InviteFailed
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
    | AuthenticationFailed
)
