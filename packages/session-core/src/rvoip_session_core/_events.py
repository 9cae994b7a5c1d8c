"""Typed events: session events from ``coordinator.events()`` and bridge events."""

from __future__ import annotations

import enum
import math
from typing import ClassVar, Generic, TypeVar

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from rvoip_session_core._registrar import BindingsChanged
from rvoip_session_core._types import (
    BridgeId,
    CallState,
    IncomingCall,
    InstantMessage,
    QualityMetrics,
    SessionId,
    redact_keys,
)

# --- session events ------------------------------------------------------------------


@attrs.frozen
class IncomingCallReceived:
    """An INVITE arrived and was offered to the handler."""

    session_id: SessionId
    call: IncomingCall


@attrs.frozen
class StateChanged:
    """A call moved from ``old_state`` to ``new_state`` (``reason`` says why, if known)."""

    session_id: SessionId
    old_state: CallState
    new_state: CallState
    reason: str | None = None


@attrs.frozen
class CallEstablished:
    """A call was answered: the dialog is confirmed and media is flowing."""

    session_id: SessionId
    local_sdp: str | None = attrs.field(repr=redact_keys)
    remote_sdp: str | None = attrs.field(repr=redact_keys)


@attrs.frozen
class CallEnded:
    """A call is over and its resources are released."""

    session_id: SessionId
    reason: str


@attrs.frozen
class DtmfReceived:
    """The peer sent a DTMF digit, by RFC 4733 (``method="rfc4733"``) or SIP INFO."""

    session_id: SessionId
    digit: str
    duration_ms: int
    method: str


@attrs.frozen
class MediaQualityReport:
    """Periodic quality figures of a call's audio stream."""

    session_id: SessionId
    metrics: QualityMetrics


@attrs.frozen
class TransferRequested:
    """The peer asked this endpoint to call ``target`` (an incoming REFER)."""

    session_id: SessionId
    target: str
    accepted: bool


@attrs.frozen
class TransferProgress:
    """Progress of a transfer this endpoint asked for, from the transferee's NOTIFY.

    ``status`` is the SIP status of the transferee's new call (100, 180, 200, 4xx...);
    ``final`` is True when the subscription ended (the transfer succeeded or failed).
    """

    session_id: SessionId
    status: int
    reason: str
    final: bool


@attrs.frozen
class InDialogRequest:
    """Session event: the peer sent a request in a call's dialog, with its header lines.

    Published for re-INVITE, UPDATE, BYE and INFO, so an application reads what the peer
    put there (a BYE's ``Reason``, RFC 3326; ``P-Asserted-Identity`` or ``X-`` lines on a
    re-INVITE or INFO), as ``IncomingCall.headers`` shows those of the first INVITE.
    """

    session_id: SessionId
    method: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)


@attrs.frozen
class CallRedirected:
    """Our outgoing call was redirected (RFC 3261 §8.1.3.4) and its INVITE sent to ``target``.

    ``status`` is the 3xx that named the target (or the failure of the previous target
    that moved the call on to the next one). ``CallSession.target`` says where it went.
    """

    session_id: SessionId
    target: str
    status: int


@attrs.frozen
class CallReplaced:
    """An incoming INVITE with ``Replaces`` (RFC 3891) took the place of one of our calls.

    Fired when the new call is established; the old call is then ended (BYE, or CANCEL
    while it still rang) and the new one holds its bridge seat or its audio source.
    """

    old_session_id: SessionId
    new_session_id: SessionId


# --- registration ---------------------------------------------------------------------


class RegistrationState(enum.Enum):
    """Where an account's binding stands."""

    Registering = "registering"
    Registered = "registered"
    Failed = "failed"
    """The last attempt failed; another follows after the back-off."""
    Unregistering = "unregistering"
    Unregistered = "unregistered"


@attrs.frozen
class RegistrationStatus:
    """A snapshot of one account's registration.

    Attributes:
        aor: The address of record.
        registrar: The registrar URI.
        state: Where the binding stands.
        contact: The Contact we register (None before the coordinator started).
        expires: Seconds granted by the last 2xx (None: not registered).
        expires_at: Coordinator-clock time the binding lapses (None: not registered).
        status: SIP status of the last final response (0: none yet or no response).
        reason: Why the last attempt failed ("" when it did not).
    """

    aor: str
    registrar: str
    state: RegistrationState
    contact: str | None = None
    expires: int | None = None
    expires_at: float | None = None
    status: int = 0
    reason: str = ""


@attrs.frozen
class RegistrationStateChanged:
    """Session event: an account's registration changed state (see ``status``)."""

    status: RegistrationStatus


@attrs.frozen
class MessageReceived:
    """Session event: a MESSAGE arrived and was answered with ``status``."""

    message: InstantMessage
    status: int


@attrs.frozen
class SessionRefreshed:
    """Session event: a session refresh of ours succeeded (RFC 4028; the call stays up).

    ``method`` is ``"UPDATE"`` or ``"INVITE"`` (a re-INVITE with the same SDP, used when
    the peer does not allow UPDATE); ``interval`` the session interval now running, in
    seconds (None when the 2xx named none).
    """

    session_id: SessionId
    method: str
    interval: int | None


SessionEventType = (
    IncomingCallReceived
    | StateChanged
    | CallEstablished
    | CallEnded
    | DtmfReceived
    | MediaQualityReport
    | TransferRequested
    | TransferProgress
    | CallRedirected
    | InDialogRequest
    | CallReplaced
    | RegistrationStateChanged
    | MessageReceived
    | BindingsChanged
    | SessionRefreshed
)
"""Any session event."""


class SessionEvent:
    """Namespace of the session event classes (``SessionEvent.StateChanged`` ...)."""

    IncomingCallReceived: ClassVar[type[IncomingCallReceived]] = IncomingCallReceived
    StateChanged: ClassVar[type[StateChanged]] = StateChanged
    CallEstablished: ClassVar[type[CallEstablished]] = CallEstablished
    CallEnded: ClassVar[type[CallEnded]] = CallEnded
    DtmfReceived: ClassVar[type[DtmfReceived]] = DtmfReceived
    MediaQualityReport: ClassVar[type[MediaQualityReport]] = MediaQualityReport
    TransferRequested: ClassVar[type[TransferRequested]] = TransferRequested
    TransferProgress: ClassVar[type[TransferProgress]] = TransferProgress
    CallRedirected: ClassVar[type[CallRedirected]] = CallRedirected
    InDialogRequest: ClassVar[type[InDialogRequest]] = InDialogRequest
    CallReplaced: ClassVar[type[CallReplaced]] = CallReplaced
    RegistrationStateChanged: ClassVar[type[RegistrationStateChanged]] = RegistrationStateChanged
    MessageReceived: ClassVar[type[MessageReceived]] = MessageReceived
    BindingsChanged: ClassVar[type[BindingsChanged]] = BindingsChanged
    SessionRefreshed: ClassVar[type[SessionRefreshed]] = SessionRefreshed


# --- bridge events -------------------------------------------------------------------


@attrs.frozen
class ParticipantAdded:
    """A call joined a bridge."""

    bridge_id: BridgeId
    session_id: SessionId


@attrs.frozen
class ParticipantRemoved:
    """A call left a bridge (removed, or it ended)."""

    bridge_id: BridgeId
    session_id: SessionId
    reason: str


@attrs.frozen
class BridgeDestroyed:
    """A bridge was destroyed; no more events follow for it."""

    bridge_id: BridgeId


BridgeEventType = ParticipantAdded | ParticipantRemoved | BridgeDestroyed
"""Any bridge event."""


class BridgeEvent:
    """Namespace of the bridge event classes, as in the seed's ``BridgeEvent`` enum."""

    ParticipantAdded: ClassVar[type[ParticipantAdded]] = ParticipantAdded
    ParticipantRemoved: ClassVar[type[ParticipantRemoved]] = ParticipantRemoved
    BridgeDestroyed: ClassVar[type[BridgeDestroyed]] = BridgeDestroyed


# --- fan-out -------------------------------------------------------------------------


class LazyEvent:
    """``anyio.Event``'s set/is_set/wait, the real event made only when someone waits.

    hot path: ``anyio.Event()`` costs several microseconds (a backend lookup) and a call
    has four of them, most only ever set.
    """

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._event: anyio.Event | None = None
        self._set = False

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._set = True
        if self._event is not None:
            self._event.set()

    def is_set(self) -> bool:
        """True once set."""
        return self._set

    async def wait(self) -> None:
        """Wait until set (a checkpoint when already set)."""
        event = self._event
        if event is None:
            event = self._event = anyio.Event()
            if self._set:
                event.set()
        await event.wait()


E = TypeVar("E")


@attrs.define(eq=False)
class EventSubscription(Generic[E]):
    """An async iterator over published events; close it (or leave ``async with``) to stop.

    Events that do not fit in the subscriber's buffer are dropped and counted in
    ``dropped`` rather than stalling the call machinery.
    """

    _hub: EventHub[E]
    _send: MemoryObjectSendStream[E]
    _receive: MemoryObjectReceiveStream[E]
    dropped: int = 0

    def __aiter__(self) -> EventSubscription[E]:
        return self

    async def __anext__(self) -> E:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def recv(self) -> E | None:
        """The next event, or None once the hub (or this subscription) is closed."""
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return None

    def receive_nowait(self) -> E | None:
        """The next buffered event without waiting, or None if there is none."""
        try:
            return self._receive.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return None

    def close(self) -> None:
        """Stop receiving events."""
        self._hub._subscribers.discard(self)
        self._send.close()
        self._receive.close()

    async def __aenter__(self) -> EventSubscription[E]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


@attrs.define(eq=False)
class EventHub(Generic[E]):
    """Publishes each event to every live subscription, never blocking the publisher."""

    buffer: int = 1000
    _subscribers: set[EventSubscription[E]] = attrs.field(init=False, factory=set)
    _closed: bool = attrs.field(init=False, default=False)

    def subscribe(self) -> EventSubscription[E]:
        """A new subscription that sees every event published from now on."""
        size = self.buffer if self.buffer > 0 else math.inf
        send, receive = anyio.create_memory_object_stream[E](size)
        sub = EventSubscription(self, send, receive)
        if self._closed:
            send.close()
        else:
            self._subscribers.add(sub)
        return sub

    def publish(self, event: E) -> None:
        """Hand ``event`` to every subscription (dropping it where a buffer is full)."""
        for sub in list(self._subscribers):
            try:
                sub._send.send_nowait(event)
            except anyio.WouldBlock:
                sub.dropped += 1
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.discard(sub)

    def close(self) -> None:
        """End every subscription (their iterators stop after the buffered events)."""
        self._closed = True
        for sub in list(self._subscribers):
            sub._send.close()
        self._subscribers.clear()

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are live."""
        return len(self._subscribers)
