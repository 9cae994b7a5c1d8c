"""Tests of the call-state table and the SIP INFO DTMF bodies."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_session_core import CallState
from rvoip_session_core._state import (
    CALL_MACHINE,
    ENDING_TRIGGERS,
    Trigger,
    can_transition,
    dtmf_relay_body,
    next_state,
    parse_dtmf_info,
)


def test_every_live_state_has_rows_and_finals_are_dead_ends() -> None:
    sources = {state for state, _ in CALL_MACHINE.table}
    for state in CallState:
        assert (state not in sources) == state.is_final


def test_every_live_state_can_end_and_ending_triggers_lead_to_final_states() -> None:
    for state in CallState:
        if state.is_final:
            continue
        reachable = {next_state(state, t) for t in ENDING_TRIGGERS} - {None}
        assert reachable
        assert all(s is not None and s.is_final for s in reachable)
    for (_, trigger), (new, _) in CALL_MACHINE.table.items():
        if trigger in ENDING_TRIGGERS:
            assert new.is_final


def test_triggers_that_do_not_apply_are_ignored() -> None:
    assert next_state(CallState.Initiating, Trigger.HOLD) is None
    assert next_state(CallState.Terminated, Trigger.ANSWERED) is None
    assert next_state(CallState.Active, Trigger.HOLD) is CallState.OnHold


def test_typical_paths_are_legal() -> None:
    path = [
        CallState.Initiating,
        CallState.Ringing,
        CallState.Active,
        CallState.OnHold,
        CallState.Active,
        CallState.Transferring,
        CallState.Terminating,
        CallState.Terminated,
    ]
    assert all(can_transition(a, b) for a, b in itertools.pairwise(path))
    assert can_transition(CallState.Ringing, CallState.Cancelled)
    assert not can_transition(CallState.Initiating, CallState.OnHold)
    assert not can_transition(CallState.Terminated, CallState.Active)


def test_dtmf_relay_round_trip() -> None:
    assert parse_dtmf_info("application/dtmf-relay", dtmf_relay_body("5", 160)) == ("5", 160)
    assert parse_dtmf_info("Application/DTMF-Relay; x=1", b"Signal= #\nDuration=x") == ("#", 250)
    assert parse_dtmf_info("application/dtmf", b"9\r\n") == ("9", 250)


def test_dtmf_bodies_without_a_digit_give_none() -> None:
    assert parse_dtmf_info("application/dtmf-relay", b"Duration=100") is None
    assert parse_dtmf_info("application/dtmf-relay", b"Signal=55") is None
    assert parse_dtmf_info("text/plain", b"Signal=5") is None
    assert parse_dtmf_info("application/dtmf", b"\xff") is None


@given(st.text(), st.binary())
def test_dtmf_parser_never_raises(ctype: str, body: bytes) -> None:
    result = parse_dtmf_info(ctype, body)
    assert result is None or (len(result[0]) == 1 and result[1] >= 0)


def test_call_state_diagram_is_current() -> None:
    """docs/diagrams/calls.md is drawn from CALL_MACHINE (python tools/diagrams.py --calls)."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    script = root / "tools" / "diagrams.py"
    if not script.exists():
        pytest.skip("tools/diagrams.py not in this checkout")
    spec = importlib.util.spec_from_file_location("rvoip_tools_diagrams", script)
    assert spec is not None
    assert spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    drawn = tool.render(tool.CALLS_TITLE, tool.CALL_TABLES)
    current = (root / "docs" / "diagrams" / "calls.md").read_text(encoding="utf-8")
    assert current == drawn, "run: python tools/diagrams.py --calls"


@given(st.lists(st.sampled_from(list(Trigger)), max_size=30))
def test_any_trigger_sequence_keeps_final_states_final(triggers: list[Trigger]) -> None:
    """Driven by the table as the call layer drives it: a trigger that does not apply is
    ignored, an ending trigger always ends the call, and nothing leaves a final state."""
    state = CALL_MACHINE.initial
    for trigger in triggers:
        if state.is_final:
            assert next_state(state, trigger) is None
            continue
        new = next_state(state, trigger)
        if trigger in ENDING_TRIGGERS:
            new = new or CallState.Terminated
            assert new.is_final
        state = new or state
