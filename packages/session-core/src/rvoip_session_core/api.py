"""The public call API in one import: ``from rvoip_session_core.api import *``.

This mirrors the seed's ``rvoip_session_core::api`` module.
"""

from __future__ import annotations

import warnings

from rvoip_dialog_core import DnsSettings
from rvoip_session_core._accounts import Account, RegistrationSettings
from rvoip_session_core._authenticator import (
    DEFAULT_AUTH_METHODS,
    Authenticator,
    AuthResult,
    AuthSettings,
)
from rvoip_session_core._bridge import BridgeInfo
from rvoip_session_core._config import SessionManagerBuilder
from rvoip_session_core._control import MediaControl, SessionControl
from rvoip_session_core._coordinator import PreparedCall, SessionCoordinator
from rvoip_session_core._drain import DrainSettings
from rvoip_session_core._errors import (
    BridgeNotFound,
    CallCancelled,
    CallFailed,
    ConfigurationError,
    InvalidState,
    MediaError,
    RequestFailed,
    SessionError,
    SessionNotFound,
    Timeout,
    TransportError,
)
from rvoip_session_core._event_bodies import (
    DIALOG_INFO_TYPE,
    MESSAGE_SUMMARY_TYPE,
    DialogInfo,
    DialogInfoEntry,
    EventBodyError,
    MessageCounts,
    MessageSummary,
    blf_state,
    build_dialog_info,
    build_message_summary,
    parse_dialog_info,
    parse_message_summary,
)
from rvoip_session_core._event_packages import BusyLamp, DialogEventPackage, MessageWaiting
from rvoip_session_core._events import (
    BridgeDestroyed,
    BridgeEvent,
    BridgeEventType,
    CallEnded,
    CallEstablished,
    CallRedirected,
    CallReplaced,
    DtmfReceived,
    EventSubscription,
    IncomingCallReceived,
    InDialogRequest,
    MediaQualityReport,
    MessageReceived,
    ParticipantAdded,
    ParticipantRemoved,
    RegistrationState,
    RegistrationStateChanged,
    RegistrationStatus,
    SessionEvent,
    SessionEventType,
    SessionRefreshed,
    StateChanged,
    TransferProgress,
    TransferRequested,
)
from rvoip_session_core._events import EventHub as _EventHub
from rvoip_session_core._handlers import (
    AutoAnswerHandler,
    CallHandler,
    CompositeHandler,
    QueueHandler,
    RoutingHandler,
)
from rvoip_session_core._ivr import CollectedDigits, CollectEnd, DigitCollector
from rvoip_session_core._media import (
    AudioFrame,
    AudioSourceSpec,
    file_source,
    samples_source,
    tone_source,
    wav_source,
)
from rvoip_session_core._offer_answer import SRTP_MODES, SdpNegotiationError, SrtpMode
from rvoip_session_core._recording import RecordingMode
from rvoip_session_core._registrar import (
    Binding,
    BindingsChanged,
    RegisterOutcome,
    Registrar,
    RegistrarSettings,
    aor_of,
)
from rvoip_session_core._settings import SessionConfig, SessionTimerSettings
from rvoip_session_core._subscriptions import (
    EventProvider,
    Notification,
    Subscriber,
    Subscription,
)
from rvoip_session_core._types import (
    Accept as _Accept,
)
from rvoip_session_core._types import (
    BridgeId,
    CallDecision,
    CallDirection,
    CallSession,
    CallState,
    Decision,
    Defer,
    Forward,
    IncomingCall,
    InstantMessage,
    MediaInfo,
    MediaStatistics,
    QualityMetrics,
    Reject,
    SessionId,
    SessionStats,
)

__all__ = [
    "DEFAULT_AUTH_METHODS",
    "DIALOG_INFO_TYPE",
    "MESSAGE_SUMMARY_TYPE",
    "SRTP_MODES",
    "Account",
    "AudioFrame",
    "AudioSourceSpec",
    "AuthResult",
    "AuthSettings",
    "Authenticator",
    "AutoAnswerHandler",
    "Binding",
    "BindingsChanged",
    "BridgeDestroyed",
    "BridgeEvent",
    "BridgeEventType",
    "BridgeId",
    "BridgeInfo",
    "BridgeNotFound",
    "BusyLamp",
    "CallCancelled",
    "CallDecision",
    "CallDirection",
    "CallEnded",
    "CallEstablished",
    "CallFailed",
    "CallHandler",
    "CallRedirected",
    "CallReplaced",
    "CallSession",
    "CallState",
    "CollectEnd",
    "CollectedDigits",
    "CompositeHandler",
    "ConfigurationError",
    "Decision",
    "Defer",
    "DialogEventPackage",
    "DialogInfo",
    "DialogInfoEntry",
    "DigitCollector",
    "DnsSettings",
    "DrainSettings",
    "DtmfReceived",
    "EventBodyError",
    "EventProvider",
    "EventSubscription",
    "Forward",
    "InDialogRequest",
    "IncomingCall",
    "IncomingCallReceived",
    "InstantMessage",
    "InvalidState",
    "MediaControl",
    "MediaError",
    "MediaInfo",
    "MediaQualityReport",
    "MediaStatistics",
    "MessageCounts",
    "MessageReceived",
    "MessageSummary",
    "MessageWaiting",
    "Notification",
    "ParticipantAdded",
    "ParticipantRemoved",
    "PreparedCall",
    "QualityMetrics",
    "QueueHandler",
    "RecordingMode",
    "RegisterOutcome",
    "Registrar",
    "RegistrarSettings",
    "RegistrationSettings",
    "RegistrationState",
    "RegistrationStateChanged",
    "RegistrationStatus",
    "Reject",
    "RequestFailed",
    "RoutingHandler",
    "SdpNegotiationError",
    "SessionConfig",
    "SessionControl",
    "SessionCoordinator",
    "SessionError",
    "SessionEvent",
    "SessionEventType",
    "SessionId",
    "SessionManagerBuilder",
    "SessionNotFound",
    "SessionRefreshed",
    "SessionStats",
    "SessionTimerSettings",
    "SrtpMode",
    "StateChanged",
    "Subscriber",
    "Subscription",
    "Timeout",
    "TransferProgress",
    "TransferRequested",
    "TransportError",
    "aor_of",
    "blf_state",
    "build_dialog_info",
    "build_message_summary",
    "file_source",
    "parse_dialog_info",
    "parse_message_summary",
    "samples_source",
    "tone_source",
    "wav_source",
]


# Kept importable for one release, no longer exported: the bare ``Accept`` clashes with
# sip-core's ``Accept`` header (use ``CallDecision.Accept``), and ``EventHub`` is the
# coordinator's internal publisher.
_DEPRECATED: dict[str, tuple[object, str]] = {
    "Accept": (_Accept, "use CallDecision.Accept"),
    "EventHub": (_EventHub, "import it from rvoip_session_core._events"),
}


def __getattr__(name: str) -> object:
    """The names kept for one release, with a DeprecationWarning."""
    entry = _DEPRECATED.get(name)
    if entry is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value, advice = entry
    warnings.warn(
        f"rvoip_session_core.{name} is deprecated: {advice}", DeprecationWarning, stacklevel=2
    )
    return value
