"""Which call-state changes are legal, and the DTMF INFO body formats (pure helpers)."""

from __future__ import annotations

from collections.abc import Mapping

from rvoip_session_core._types import CallState

_ENDINGS = frozenset({CallState.Terminating, CallState.Terminated, CallState.Failed})

TRANSITIONS: Mapping[CallState, frozenset[CallState]] = {
    CallState.Initiating: frozenset(
        {CallState.Ringing, CallState.EarlyMedia, CallState.Active, CallState.Cancelled}
    )
    | _ENDINGS,
    CallState.Ringing: frozenset({CallState.EarlyMedia, CallState.Active, CallState.Cancelled})
    | _ENDINGS,
    CallState.EarlyMedia: frozenset({CallState.Ringing, CallState.Active, CallState.Cancelled})
    | _ENDINGS,
    CallState.Active: frozenset({CallState.OnHold, CallState.Transferring}) | _ENDINGS,
    CallState.OnHold: frozenset({CallState.Active, CallState.Transferring}) | _ENDINGS,
    CallState.Transferring: frozenset({CallState.Active, CallState.OnHold}) | _ENDINGS,
    CallState.Terminating: frozenset({CallState.Terminated, CallState.Cancelled, CallState.Failed}),
    CallState.Terminated: frozenset(),
    CallState.Cancelled: frozenset(),
    CallState.Failed: frozenset(),
}
"""For each state, the states a call may move to next (the session layer's table)."""


def can_transition(old: CallState, new: CallState) -> bool:
    """True if a call in ``old`` may move to ``new``."""
    return new in TRANSITIONS[old]


DTMF_DIGITS = frozenset("0123456789*#ABCD")


def parse_dtmf_info(content_type: str, body: bytes) -> tuple[str, int] | None:
    """The (digit, duration ms) of a SIP INFO DTMF body, or None when it carries none.

    ``application/dtmf-relay`` carries ``Signal=5`` and ``Duration=160`` lines;
    ``application/dtmf`` carries the bare digit.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/dtmf":
        digit = text.strip().upper()
        return (digit, 250) if digit in DTMF_DIGITS else None
    if ctype != "application/dtmf-relay":
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    digit = fields.get("signal", "").upper()
    if digit not in DTMF_DIGITS or len(digit) != 1:
        return None
    duration = fields.get("duration", "250")
    return digit, int(duration) if duration.isdigit() else 250


def dtmf_relay_body(digit: str, duration_ms: int = 250) -> bytes:
    """An ``application/dtmf-relay`` body for ``digit``."""
    return f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
