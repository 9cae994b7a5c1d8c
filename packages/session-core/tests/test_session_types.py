"""Tests of the value types: states, calls, decisions, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from rvoip_session_core import (
    CallCancelled,
    CallDecision,
    CallFailed,
    CallSession,
    CallState,
    Defer,
    Forward,
    IncomingCall,
    InvalidState,
    Reject,
    SessionError,
    SessionId,
    SessionNotFound,
    Timeout,
    TransportError,
)
from rvoip_session_core._types import Accept, normalize_decision
from rvoip_sip_core import parse_message


def describe(decision: object) -> str:
    match decision:
        case CallDecision.Accept(sdp=None):
            return "accept-auto"
        case CallDecision.Accept(sdp=sdp):
            return f"accept:{sdp}"
        case CallDecision.Reject(reason, status):
            return f"reject:{status}:{reason}"
        case CallDecision.Defer():
            return "defer"
        case CallDecision.Forward(target):
            return f"forward:{target}"
    return "?"


def test_decisions_match_with_match_statement() -> None:
    assert describe(CallDecision.Accept(None)) == "accept-auto"
    assert describe(CallDecision.Accept("v=0")) == "accept:v=0"
    assert describe(CallDecision.Reject("Unauthorized")) == "reject:603:Unauthorized"
    assert describe(CallDecision.Reject("Busy Here", 486)) == "reject:486:Busy Here"
    assert describe(CallDecision.Defer()) == "defer"
    assert describe(CallDecision.Forward("sip:x@y")) == "forward:sip:x@y"


def test_decisions_are_frozen_values() -> None:
    assert CallDecision.Accept is Accept
    assert Reject("x") == Reject("x")
    assert Forward("a") != Forward("b")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Forward("a").target = "b"  # type: ignore[misc]


def test_reject_needs_an_error_status() -> None:
    with pytest.raises(ValueError, match="4xx-6xx"):
        Reject("ok", 200)


def test_normalize_accepts_defer_class_like_a_unit_variant() -> None:
    assert normalize_decision(CallDecision.Defer) == Defer()
    assert normalize_decision(Accept()) == Accept(None)
    with pytest.raises(TypeError, match="not a CallDecision"):
        normalize_decision("yes")


def test_call_state_classification() -> None:
    finals = {s for s in CallState if s.is_final}
    assert finals == {CallState.Terminated, CallState.Cancelled, CallState.Failed}
    assert CallState.Ringing.is_in_progress
    assert not CallState.Active.is_in_progress
    assert CallState.OnHold.is_established
    assert {s.name for s in CallState} == {
        "Initiating",
        "Ringing",
        "EarlyMedia",
        "Active",
        "OnHold",
        "Transferring",
        "Terminating",
        "Terminated",
        "Cancelled",
        "Failed",
    }


def test_incoming_call_headers_lookup_is_case_insensitive() -> None:
    call = IncomingCall(
        SessionId("s1"),
        "sip:a@h",
        "sip:b@h",
        None,
        headers={"Subject": "hi", "X-Prio": "1"},
        received_at=datetime.now(UTC),
    )
    assert call.header("subject") == "hi"
    assert call.header("x-prio") == "1"
    assert call.header("Missing") is None
    assert call.headers == (("Subject", "hi"), ("X-Prio", "1"))


def test_incoming_call_keeps_a_message_s_header_lines_as_they_iterate() -> None:
    """``headers=request.headers`` shares the lines' (name, value) tuple (no copy per call)."""
    request = parse_message(
        b"INVITE sip:b@h SIP/2.0\r\nVia:  SIP/2.0/UDP h;branch=z9hG4bK1 \r\n"
        b"f: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\ni: c\r\nCSeq: 1 INVITE\r\n"
        b"Subject:  hi  \r\nContent-Length: 0\r\n\r\n"
    )
    call = IncomingCall(SessionId("s1"), "sip:a@h", "sip:b@h", None, headers=request.headers)
    assert (
        call.headers
        == tuple(request.headers)
        == tuple(
            IncomingCall(
                SessionId("s1"), "sip:a@h", "sip:b@h", None, headers=tuple(request.headers)
            ).headers
        )
    )
    assert call.headers is request.headers.pairs()
    assert call.header("subject") == "hi"
    assert call.header("via") == "SIP/2.0/UDP h;branch=z9hG4bK1"
    assert all(type(n) is str and type(v) is str for n, v in call.headers)


def test_call_session_is_active_follows_state() -> None:
    session = CallSession(SessionId("s"), "sip:a@h", "sip:b@h", CallState.Active)
    assert session.is_active
    assert not attrs.evolve(session, state=CallState.Terminated).is_active


def test_errors_name_the_call_and_share_one_base() -> None:
    err = CallFailed(486, "Busy Here", session_id="call-7")
    assert isinstance(err, SessionError)
    assert err.status == 486
    assert "call-7" in str(err)
    assert "486 Busy Here" in str(err)
    cancelled = CallCancelled(session_id="c2")
    assert isinstance(cancelled, CallFailed)
    assert cancelled.status == 487
    missing = SessionNotFound("nope")
    assert isinstance(missing, LookupError)
    assert "nope" in str(missing)
    timeout = Timeout("no answer after 3s", session_id="c3")
    assert isinstance(timeout, TimeoutError)
    assert str(timeout) == "call c3: no answer after 3s"
    for cls in (InvalidState, TransportError):
        assert issubclass(cls, SessionError)


def test_call_states_hash_by_identity_and_survive_pickling() -> None:
    """CallState hashes by identity (Enum's own hash is a Python call per lookup).

    Members are singletons, also through pickle and copy, so tables keyed by them keep
    working; the state machine's table and ``is_final`` are looked up several times a call.
    """
    import copy
    import pickle

    table = {state: state.value for state in CallState}
    for state in CallState:
        again = pickle.loads(pickle.dumps(state))
        assert again is state
        assert copy.deepcopy(state) is state
        assert table[again] == state.value
    assert {s for s in CallState if s.is_final} == {
        CallState.Terminated,
        CallState.Cancelled,
        CallState.Failed,
    }
