"""Value types of the public API: ids, call states, calls, decisions, statistics."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar, NewType

import attrs

from rvoip_sip_core import Headers

_INLINE_KEY = re.compile(r"inline:[^\s|;'\"\\]+")


def redact_keys(value: object) -> str:
    """``repr(value)`` with every SDES ``inline:`` key replaced by ``inline:<redacted>``.

    SDPs carry SRTP master keys (RFC 4568 §6.1); the reprs of the objects holding them
    (calls, incoming calls, events) use this so logs never show a key.
    """
    return _INLINE_KEY.sub("inline:<redacted>", repr(value))


SessionId = NewType("SessionId", str)
"""Identifies one call (one SIP dialog and its media) inside a coordinator."""

BridgeId = NewType("BridgeId", str)
"""Identifies one bridge (a set of calls whose audio is connected)."""


class CallState(enum.Enum):
    """Where a call is in its life; the seed's ``CallState`` variants."""

    # Members are singletons: identity hashing is correct and cheaper than Enum's (a
    # Python-level hash of the name; hot path: `is_final` and the state table, ~6 a call).
    __hash__ = object.__hash__

    Initiating = "initiating"
    Ringing = "ringing"
    EarlyMedia = "early_media"
    Active = "active"
    OnHold = "on_hold"
    Transferring = "transferring"
    Terminating = "terminating"
    Terminated = "terminated"
    Cancelled = "cancelled"
    Failed = "failed"

    @property
    def is_final(self) -> bool:
        """True once the call is over (no further state changes follow)."""
        return self in _FINAL_STATES

    @property
    def is_in_progress(self) -> bool:
        """True while the call is being set up (before answer or failure)."""
        return self in (CallState.Initiating, CallState.Ringing, CallState.EarlyMedia)

    @property
    def is_established(self) -> bool:
        """True while a dialog is confirmed (answered and not yet ending)."""
        return self in (CallState.Active, CallState.OnHold, CallState.Transferring)


_FINAL_STATES = frozenset({CallState.Terminated, CallState.Cancelled, CallState.Failed})


class CallDirection(enum.StrEnum):
    """Who placed a call: this endpoint (``Outgoing``) or the peer (``Incoming``).

    A ``StrEnum``: each member equals its old string value (``"incoming"``/``"outgoing"``),
    so code comparing ``call.direction == "incoming"`` keeps working.
    """

    Incoming = "incoming"
    Outgoing = "outgoing"


def _headers_converter(
    value: Mapping[str, str] | tuple[tuple[str, str], ...] | Headers,
) -> tuple[tuple[str, str], ...]:
    if type(value) is Headers:
        # hot path (every incoming call): a message's lines are (str, str) pairs already,
        # built once; converting them pair by pair cost ~3 us per call.
        return value.pairs()
    if isinstance(value, Mapping):
        return tuple((str(k), str(v)) for k, v in value.items())
    return tuple((str(k), str(v)) for k, v in value)


@attrs.frozen
class IncomingCall:
    """A call offered to this endpoint, as handed to ``CallHandler.on_incoming_call``.

    Attributes:
        id: the session id the coordinator gave the call.
        from_: the caller's URI (From header, without display name or tag).
        to: the called URI (To header, without display name).
        sdp: the offer in the INVITE body, or None for an offerless INVITE.
        headers: the INVITE's header lines in order (name, raw value).
        received_at: when the INVITE arrived (UTC).
        authenticated_user: the digest user name the INVITE was authenticated as (see
            ``SessionManagerBuilder.with_authenticator``), None when it carried no valid
            credentials.
    """

    id: SessionId
    from_: str
    to: str
    sdp: str | None = attrs.field(repr=redact_keys)
    headers: tuple[tuple[str, str], ...] = attrs.field(
        converter=_headers_converter, factory=tuple, repr=False
    )
    received_at: datetime | None = None
    request_uri: str | None = None
    display_name: str | None = None
    authenticated_user: str | None = None

    def header(self, name: str) -> str | None:
        """The first raw value of header ``name`` (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


@attrs.frozen
class CallSession:
    """A snapshot of one call: who, where it stands, since when.

    Attributes:
        id: session id.
        from_: local or remote caller URI (the From of the dialog's INVITE).
        to: called URI (the To of the dialog's INVITE).
        state: the state when the snapshot was taken.
        started_at: when the call was created (UTC).
        direction: ``CallDirection.Outgoing`` for calls this endpoint made,
            ``CallDirection.Incoming`` otherwise (equal to the strings of old).
        established_at: when the call was answered, if it was.
        target: where our INVITE finally went (the Request-URI after any 3xx redirect);
            None for incoming calls and calls not redirected (then it is ``to``).
    """

    id: SessionId
    from_: str
    to: str
    state: CallState
    started_at: datetime | None = None
    direction: CallDirection = attrs.field(default=CallDirection.Outgoing, converter=CallDirection)
    established_at: datetime | None = None
    target: str | None = None

    @property
    def is_active(self) -> bool:
        """True while the call is answered and not yet ending."""
        return self.state.is_established


# --- call decisions ----------------------------------------------------------------


@attrs.frozen
class Accept:
    """Answer the call with 200 OK; ``sdp`` is the answer, None to generate one."""

    sdp: str | None = attrs.field(default=None, repr=redact_keys)


@attrs.frozen
class Reject:
    """Refuse the call with ``status`` (default 603 Decline) and ``reason`` as phrase."""

    reason: str = "Decline"
    status: int = attrs.field(default=603)

    @status.validator
    def _check_status(self, _attr: attrs.Attribute[int], value: int) -> None:
        if not 400 <= value <= 699:
            raise ValueError(f"a rejection needs a 4xx-6xx status, not {value}")


@attrs.frozen
class Defer:
    """Decide later: the call rings (180) until accept/reject_incoming_call or the deadline."""


@attrs.frozen
class Forward:
    """Redirect the caller to ``target`` with 302 Moved Temporarily and a Contact."""

    target: str


@attrs.frozen
class Challenge:
    """Answer 401 (407 with ``proxy``) with a digest challenge for ``realm``.

    RFC 3261 §22.1: the caller retries the INVITE with credentials; the retry is verified
    by the coordinator's authenticator (``with_authenticator``) before the handler sees it,
    so the handler finds ``IncomingCall.authenticated_user`` set (a wrong password gets
    403 without reaching it). ``realm`` None: the authenticator's own realm.
    """

    realm: str | None = None
    proxy: bool = False


@attrs.frozen
class Route:
    """Offer the call to the contacts registered for ``aor`` (see ``with_registrar``).

    ``aor`` None: the INVITE's Request-URI. Every live contact is called at once (the
    highest q first, at most ``RegistrarSettings.max_fork_branches``); the first to
    answer is bridged to the caller and the others are cancelled. 480 when the AOR has no
    binding; when every contact refuses, a 6xx they sent, else 486 if one was busy, else
    480.
    """

    aor: str | None = None


@attrs.frozen
class EarlyMedia:
    """Decide later, with early media now (``CallDecision.EarlyMedia(sdp=None)``).

    A 183 with our SDP answer (``sdp``, None to generate) and RTP both ways, as
    ``send_early_media`` does (RFC 3262: reliable when the caller supports 100rel). The
    call waits for ``accept_incoming_call`` / ``reject_incoming_call`` like a deferred
    one. An INVITE without an SDP offer rings (180) instead, as with ``Defer``.
    """

    sdp: str | None = None


class CallDecision:
    """The answers to an incoming call, matchable with ``match``.

    ``CallDecision.Accept(sdp)``, ``CallDecision.Reject(reason)``, ``CallDecision.Defer()``,
    ``CallDecision.Forward(target)``, ``CallDecision.Challenge(realm)``,
    ``CallDecision.Route(aor)``, ``CallDecision.EarlyMedia(sdp)``; ``CallDecision.Defer``
    (the class itself) is accepted
    as well, like the seed's unit variant.
    """

    Accept: ClassVar[type[Accept]] = Accept
    Reject: ClassVar[type[Reject]] = Reject
    Defer: ClassVar[type[Defer]] = Defer
    Forward: ClassVar[type[Forward]] = Forward
    Challenge: ClassVar[type[Challenge]] = Challenge
    Route: ClassVar[type[Route]] = Route
    EarlyMedia: ClassVar[type[EarlyMedia]] = EarlyMedia


Decision = Accept | Reject | Defer | Forward | Challenge | Route | EarlyMedia
"""Any of the call decisions."""


def normalize_decision(value: object) -> Decision:
    """Turn a handler's return value into a decision instance.

    Raises:
        TypeError: when the value is not a call decision.
    """
    if value is Defer:
        return Defer()
    if isinstance(value, Accept | Reject | Defer | Forward | Challenge | Route | EarlyMedia):
        return value
    raise TypeError(f"a call handler returned {value!r}, which is not a CallDecision")


# --- media views ---------------------------------------------------------------------


@attrs.frozen
class QualityMetrics:
    """Call quality of one stream (E-model, ITU-T G.107) as the seed exposes it.

    Attributes:
        mos_score: estimated MOS (1.0-4.5), None before any packet was received.
        r_factor: the E-model transmission rating R (0-100), None before any packet.
        packet_loss_percent: packets lost over packets expected, in percent.
        jitter_ms: RFC 3550 interarrival jitter in milliseconds.
        round_trip_ms: RTT from RTCP LSR/DLSR, None until a report came back.
        model: the E-model used: ``"G.107"`` (narrowband: G.711) or ``"G.107.1"``
            (wideband: G.722, Opus; R runs to 129 there, the MOS is comparable).
    """

    mos_score: float | None
    r_factor: float | None
    packet_loss_percent: float
    jitter_ms: float
    round_trip_ms: float | None = None
    model: str = "G.107"


@attrs.frozen
class MediaStatistics:
    """Counters and quality of a call's audio stream."""

    session_id: SessionId
    codec: str | None
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    packets_lost: int
    local_address: tuple[str, int] | None
    remote_address: tuple[str, int] | None
    quality_metrics: QualityMetrics | None
    srtp_failures: int = 0
    """SRTP/SRTCP packets dropped because they failed authentication or the replay check."""


@attrs.frozen
class MediaInfo:
    """What was negotiated for a call's audio."""

    session_id: SessionId
    local_sdp: str | None = attrs.field(repr=redact_keys)
    remote_sdp: str | None = attrs.field(repr=redact_keys)
    local_rtp_port: int | None
    remote_rtp_address: tuple[str, int] | None
    codec: str | None
    payload_type: int | None
    direction: str
    srtp_suite: str | None = None
    """The SRTP crypto suite protecting the audio (e.g. "AES_CM_128_HMAC_SHA1_80"), None
    for plain RTP (``with_srtp``)."""


@attrs.frozen
class SessionStats:
    """Coordinator-wide counters, returned by ``get_stats``."""

    active_sessions: int
    total_sessions: int
    failed_sessions: int
    incoming_calls: int
    outgoing_calls: int
    active_bridges: int


@attrs.frozen
class InstantMessage:
    """A MESSAGE that arrived (RFC 3428).

    Attributes:
        from_: the sender (the From header's URI).
        to: the addressee (the To header's URI).
        content_type: the body's media type with its parameters (``text/plain`` when
            the request had a body but no Content-Type).
        body: the body, as sent.
        headers: every header line of the request, in order.
        request_uri: the Request-URI.
        session_id: the call whose dialog it came in, or None (pager mode).
        authenticated_user: the digest user the sender proved to be (with
            ``with_authenticator``), else None.
    """

    from_: str
    to: str
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    request_uri: str
    session_id: SessionId | None = None
    authenticated_user: str | None = None

    @property
    def text(self) -> str:
        """The body decoded with its ``charset`` parameter (UTF-8 by default)."""
        charset = "utf-8"
        for param in self.content_type.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"')
        try:
            return self.body.decode(charset, "replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", "replace")
