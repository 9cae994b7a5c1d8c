"""rvoip_dialog_core: SIP dialogs, in-dialog requests, REFER/NOTIFY (sans-IO) and an anyio driver.

The sans-IO :class:`DialogLayer` takes transaction-layer events and ``now`` and produces
:class:`SendRequest` / :class:`SendAck` / :class:`SendResponse` actions, TU events for the
session layer, and its next deadline. :class:`DialogEndpoint` runs it on transaction-core's
``TransactionEndpoint`` under asyncio or trio.
"""

from ._config import DEFAULT_ALLOW, DialogConfig
from ._dialog import Dialog, DialogId, LegId, make_via
from ._driver import DialogEndpoint
from ._errors import DialogError, DialogUsageError
from ._events import (
    AckReceived,
    Action,
    ByeReceived,
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
    SessionRefreshDue,
    TerminationReason,
    UpdateReceived,
)
from ._hops import next_hop, target_for
from ._layer import DialogLayer
from ._records import ReferSubscription
from ._rules import glare_delay, parse_sipfrag_status, sipfrag
from ._session_timer import SessionTimer
from ._states import DIALOG_UAC, DIALOG_UAS, DialogMachine, DialogState, Role, Trigger, transition

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ALLOW",
    "DIALOG_UAC",
    "DIALOG_UAS",
    "AckReceived",
    "Action",
    "ByeReceived",
    "CancelReceived",
    "Dialog",
    "DialogConfig",
    "DialogConfirmed",
    "DialogEarly",
    "DialogEndpoint",
    "DialogError",
    "DialogEvent",
    "DialogId",
    "DialogLayer",
    "DialogMachine",
    "DialogState",
    "DialogTerminated",
    "DialogUsageError",
    "GlareRetryScheduled",
    "IncomingInvite",
    "InfoReceived",
    "InviteFailed",
    "InviteProgress",
    "LegId",
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
    "SessionRefreshDue",
    "SessionTimer",
    "TerminationReason",
    "Trigger",
    "UpdateReceived",
    "__version__",
    "glare_delay",
    "make_via",
    "next_hop",
    "parse_sipfrag_status",
    "sipfrag",
    "target_for",
    "transition",
]
