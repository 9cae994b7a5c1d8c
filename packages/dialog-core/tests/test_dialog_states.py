"""The dialog transition tables: shape, rules, and the generated diagram being current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rvoip_dialog_core import (
    DialogState,
    DialogUsageError,
    Role,
    TerminationReason,
)
from rvoip_dialog_core.rules import DIALOG_UAC, DIALOG_UAS, Trigger, transition

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("machine", [DIALOG_UAC, DIALOG_UAS])
def test_terminated_is_final_and_every_state_reachable(machine: object) -> None:
    table = machine.table  # type: ignore[attr-defined]
    assert all(state is not DialogState.TERMINATED for state, _ in table)
    reached = {machine.initial} | {new for new, _ in table.values()}  # type: ignore[attr-defined]
    assert reached == set(DialogState)


def test_every_termination_reason_is_a_trigger() -> None:
    for reason in TerminationReason:
        assert Trigger[reason.name]


def test_rfc_rules_in_the_tables() -> None:
    # RFC 3261 §15: the callee MUST NOT send BYE on an early dialog; the caller MAY.
    with pytest.raises(DialogUsageError):
        transition(Role.UAS, DialogState.EARLY, Trigger.LOCAL_BYE)
    assert transition(Role.UAC, DialogState.EARLY, Trigger.LOCAL_BYE) is DialogState.TERMINATED
    # A 2xx confirms an early dialog on both sides.
    for role in Role:
        assert transition(role, DialogState.EARLY, Trigger.SUCCESS) is DialogState.CONFIRMED


def test_diagram_document_is_current() -> None:
    script = ROOT / "tools" / "diagrams.py"
    if not script.exists():
        pytest.skip("tools/diagrams.py not in this checkout")
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--check",
            str(ROOT / "docs" / "diagrams" / "dialogs.md"),
            "SIP dialog state machines (RFC 3261 §12–15)",
            "rvoip_dialog_core:DIALOG_UAC",
            "rvoip_dialog_core:DIALOG_UAS",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
