"""The call state table (state, trigger -> next state) and the DTMF INFO body formats."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from rvoip_session_core._types import CallState


class Trigger(enum.Enum):
    """What moves a call from one state to the next (the call layer's inputs)."""

    # Members are singletons: identity hashing is correct and cheaper than Enum's.
    __hash__ = object.__hash__

    RINGING = "ringing (18x sent or received)"
    EARLY_MEDIA = "183 with SDP (received, or sent by send_early_media)"
    ANSWERED = "dialog confirmed"
    HOLD = "hold (sendonly re-INVITE answered)"
    RESUME = "resume (sendrecv re-INVITE answered)"
    TRANSFER = "REFER sent"
    TRANSFER_FAILED = "transfer refused or failed"
    HANG_UP = "local hangup (BYE or CANCEL sent)"
    BYE_RECEIVED = "BYE received"
    ENDED = "ended (BYE done, rejected, forwarded)"
    CANCELLED = "cancelled (CANCEL or 487)"
    FAILED = "failed (error response, timeout, media)"


_S = CallState
_T = Trigger
_STOP_RTP = ("stop RTP",)
_RELEASE = ("stop RTP", "release media and ids", "wake waiters", "CallEnded")
_SETUP = (_S.Initiating, _S.Ringing, _S.EarlyMedia)
_UP = (_S.Active, _S.OnHold, _S.Transferring)


def _rows() -> dict[tuple[CallState, Trigger], tuple[CallState, tuple[str, ...]]]:
    table: dict[tuple[CallState, Trigger], tuple[CallState, tuple[str, ...]]] = {}
    for state in (_S.Initiating, _S.EarlyMedia):
        table[state, _T.RINGING] = (_S.Ringing, ())
    for state in (_S.Initiating, _S.Ringing):
        table[state, _T.EARLY_MEDIA] = (_S.EarlyMedia, ())
    for state in _SETUP:
        table[state, _T.ANSWERED] = (_S.Active, ("apply negotiated media", "CallEstablished"))
        table[state, _T.CANCELLED] = (_S.Cancelled, _RELEASE)
    for state in (_S.Active, _S.Transferring):
        table[state, _T.HOLD] = (_S.OnHold, ("silence our audio",))
    for state in (_S.Active, _S.OnHold):
        table[state, _T.TRANSFER] = (_S.Transferring, ())
    table[_S.OnHold, _T.RESUME] = (_S.Active, ("unmute our audio",))
    table[_S.Transferring, _T.TRANSFER_FAILED] = (_S.Active, ())
    for state in (*_SETUP, *_UP):
        table[state, _T.HANG_UP] = (_S.Terminating, _STOP_RTP)
        table[state, _T.BYE_RECEIVED] = (_S.Terminating, _STOP_RTP)
    for state in (*_SETUP, *_UP, _S.Terminating):
        table[state, _T.ENDED] = (_S.Terminated, _RELEASE)
        table[state, _T.FAILED] = (_S.Failed, _RELEASE)
    table[_S.Terminating, _T.CANCELLED] = (_S.Cancelled, _RELEASE)
    return table


@attrs.frozen
class CallMachine:
    """The call states and their triggers as data (drawn by ``tools/diagrams.py``).

    Attributes:
        name: title of the diagram.
        initial: the state every call starts in.
        table: ``(state, trigger) -> (next state, actions)``; a pair not in the table is
            ignored (a late or crossing event), except that an ending trigger always ends
            the call (``Terminated`` when its own final state is not reachable).
    """

    name: str
    initial: CallState
    table: Mapping[tuple[CallState, Trigger], tuple[CallState, tuple[str, ...]]]


CALL_MACHINE = CallMachine("Call states (session-core)", CallState.Initiating, _rows())
"""The session layer's call state table."""

ENDING_TRIGGERS = frozenset({Trigger.ENDED, Trigger.CANCELLED, Trigger.FAILED})
"""Triggers that end a call (its media and registry entries are released)."""


def next_state(old: CallState, trigger: Trigger) -> CallState | None:
    """The state ``trigger`` moves a call in ``old`` to, or None when it does not apply."""
    row = CALL_MACHINE.table.get((old, trigger))
    return None if row is None else row[0]


def can_transition(old: CallState, new: CallState) -> bool:
    """True if some trigger moves a call in ``old`` to ``new``."""
    return any(s is old and row[0] is new for (s, _), row in CALL_MACHINE.table.items())


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
