"""The coordinator's record of one call (mutable; the public view is ``CallSession``)."""

from __future__ import annotations

from datetime import datetime

import anyio
import attrs

from rvoip_dialog_core import DialogId, LegId
from rvoip_session_core._events import LazyEvent
from rvoip_session_core._media import CallMedia
from rvoip_session_core._types import (
    CallDirection,
    CallSession,
    CallState,
    IncomingCall,
    SessionId,
    redact_keys,
)
from rvoip_sip_core import Response, SessionDescription


@attrs.define(eq=False)
class PendingRequest:
    """A request we sent in a dialog, waiting for its final response."""

    method: str
    call_id: SessionId
    done: anyio.Event = attrs.field(factory=anyio.Event)
    response: Response | None = None
    auth_failure: str | None = None
    """Why a 401/407 to it was not answered with credentials (the dialog layer's words)."""


@attrs.define(eq=False)
class Call:
    """Everything the coordinator knows about one call."""

    id: SessionId
    direction: CallDirection
    from_: str
    to: str
    state: CallState
    started_at: datetime
    media: CallMedia
    leg: LegId | None = None
    dialog_id: DialogId | None = None
    invite_ref: int | None = None
    incoming: IncomingCall | None = None
    # Reprs redact SDES keys (RFC 4568 inline:...): a logged call never shows one.
    local_sdp: SessionDescription | None = attrs.field(default=None, repr=redact_keys)
    remote_sdp: SessionDescription | None = attrs.field(default=None, repr=redact_keys)
    remote_offer: SessionDescription | None = attrs.field(default=None, repr=redact_keys)
    established_at: datetime | None = None
    end_reason: str | None = None
    final_status: int | None = None
    final_reason: str | None = None
    auth_failure: str | None = None
    """Why a 401/407 to our INVITE was not answered (the dialog layer's sentence)."""
    cancel_requested: bool = False
    answered: LazyEvent = attrs.field(factory=LazyEvent)
    ended: LazyEvent = attrs.field(factory=LazyEvent)
    transfer_of: SessionId | None = None  # for a transferee's new call: the referred call
    transfer_done: LazyEvent = attrs.field(factory=LazyEvent)
    transfer_status: int | None = None
    sdp_text: tuple[SessionDescription, str] | None = attrs.field(default=None, repr=False)
    """The text of the last local SDP sent (kept with the object it was made from)."""
    decide_scope: anyio.CancelScope | None = None
    """While the handler decides on an incoming call: cancelled when the call ends."""
    deadlines: tuple[str, ...] = ()
    """Kinds of call-layer deadline set for this call (cancelled when it ends)."""
    media_seen: tuple[int, int] | None = None
    """(RTP, RTCP) packets received at the last media check."""
    media_seen_at: float | None = None
    """When ``media_seen`` last changed (monotonic; None: media not watched)."""
    invite_headers: tuple[tuple[str, str], ...] = ()
    """Extra header lines the application gave for our INVITE (P-Asserted-Identity …)."""
    target: str | None = None
    """Where our INVITE went after a 3xx redirect (None: not redirected)."""
    answer: Response | None = None
    """The 2xx that answered our INVITE (outgoing calls). Kept, not read, on the call path:
    ``update_media`` reads its ``Allow`` (about 0.4-0.8 us, only when asked)."""
    early_dialog: DialogId | None = None
    """Caller: the early dialog whose 18x SDP the media plays (forks: the latest one)."""
    early_sent: bool = False
    """Callee: our answer went out in a 183 (early media); the 200 repeats that SDP."""

    def snapshot(self) -> CallSession:
        """The public, immutable view of the call now."""
        return CallSession(
            self.id,
            self.from_,
            self.to,
            self.state,
            self.started_at,
            self.direction,
            self.established_at,
            self.target,
        )
