"""rvoip_dialog_core: SIP dialogs, in-dialog requests, REFER/NOTIFY (sans-IO) and an anyio driver.

The sans-IO :class:`DialogLayer` takes transaction-layer events and ``now`` and produces
:class:`SendRequest` / :class:`SendAck` / :class:`SendResponse` actions, TU events for the
session layer, and its next deadline. :class:`DialogEndpoint` runs it on transaction-core's
``TransactionEndpoint`` under asyncio or trio.

The state table (``DIALOG_UAC``, ``DIALOG_UAS``, ``DialogMachine``, ``Trigger``,
``transition``) and the helpers ``make_via``, ``next_hop``, ``glare_delay``, ``sipfrag``
and ``parse_sipfrag_status`` are internals: they stay importable from here for one
release but are not in ``__all__``; import them from ``rvoip_dialog_core.rules``.
"""

from ._auth import AuthRefused, Credentials
from ._config import DEFAULT_ALLOW, WILDCARDS, DialogConfig, contact_uri, secure_form
from ._dialog import Dialog, DialogId, LegId
from ._dns import DnsSettings, parse_dns_server
from ._driver import DialogEndpoint, LocalRoutes
from ._errors import DialogError, DialogUsageError
from ._events import (
    AckReceived,
    Action,
    AuthenticationFailed,
    ByeReceived,
    CallRedirected,
    CancelReceived,
    DialogConfirmed,
    DialogEarly,
    DialogEvent,
    DialogTerminated,
    GlareRetryScheduled,
    IncomingInvite,
    InfoReceived,
    InviteFailed,
    InviteProgress,
    NotifyReceived,
    OptionsReceived,
    PrackReceived,
    ReferReceived,
    ReInviteReceived,
    RequestReceived,
    ResponseForRequest,
    SendAck,
    SendRequest,
    SendResponse,
    ServedSubscriptionEnded,
    ServedSubscriptionRefreshed,
    SessionRefreshDue,
    SessionRefreshed,
    SubscribeReceived,
    SubscriptionAccepted,
    SubscriptionEnded,
    SubscriptionNotified,
    TerminationReason,
    UpdateReceived,
)
from ._hops import target_for
from ._layer import DialogLayer
from ._records import ReferSubscription
from ._session_timer import SessionTimer
from ._states import DialogState, Role
from ._subscriptions import ServedSubscription, Subscription

# Internals kept importable from the top level for one release (not in __all__).
from .rules import (  # noqa: F401
    DIALOG_UAC,
    DIALOG_UAS,
    DialogMachine,
    Trigger,
    glare_delay,
    make_via,
    next_hop,
    parse_sipfrag_status,
    sipfrag,
    transition,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ALLOW",
    "WILDCARDS",
    "AckReceived",
    "Action",
    "AuthRefused",
    "AuthenticationFailed",
    "ByeReceived",
    "CallRedirected",
    "CancelReceived",
    "Credentials",
    "Dialog",
    "DialogConfig",
    "DialogConfirmed",
    "DialogEarly",
    "DialogEndpoint",
    "DialogError",
    "DialogEvent",
    "DialogId",
    "DialogLayer",
    "DialogState",
    "DialogTerminated",
    "DialogUsageError",
    "DnsSettings",
    "GlareRetryScheduled",
    "IncomingInvite",
    "InfoReceived",
    "InviteFailed",
    "InviteProgress",
    "LegId",
    "LocalRoutes",
    "NotifyReceived",
    "OptionsReceived",
    "PrackReceived",
    "ReInviteReceived",
    "ReferReceived",
    "ReferSubscription",
    "RequestReceived",
    "ResponseForRequest",
    "Role",
    "SendAck",
    "SendRequest",
    "SendResponse",
    "ServedSubscription",
    "ServedSubscriptionEnded",
    "ServedSubscriptionRefreshed",
    "SessionRefreshDue",
    "SessionRefreshed",
    "SessionTimer",
    "SubscribeReceived",
    "Subscription",
    "SubscriptionAccepted",
    "SubscriptionEnded",
    "SubscriptionNotified",
    "TerminationReason",
    "UpdateReceived",
    "__version__",
    "contact_uri",
    "parse_dns_server",
    "secure_form",
    "target_for",
]
