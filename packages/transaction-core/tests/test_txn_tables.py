"""The transition tables are complete and consistent, and the drawn diagrams match them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pytest

from rvoip_transaction_core import MACHINES, Machine, MachineEvent, State
from rvoip_transaction_core._tables import ARMS, TIMER_EVENT

WIRE_EVENTS = {
    MachineEvent.RECV_1XX,
    MachineEvent.RECV_2XX,
    MachineEvent.RECV_FINAL,
    MachineEvent.RECV_REQUEST,
    MachineEvent.RECV_ACK,
    MachineEvent.TRANSPORT_ERROR,
}
TOOLS = Path(__file__).resolve().parents[3] / "tools" / "diagrams.py"


def diagrams() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rvoip_tools_diagrams", TOOLS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_every_wire_input_has_a_row_in_every_live_state(machine: Machine) -> None:
    # Nothing the network sends can be an illegal transition: absorb rows are explicit.
    for state in machine.timers:
        if state is State.TERMINATED:
            continue
        for event in machine.events & WIRE_EVENTS:
            assert (state, event) in machine.table, (machine.name, state, event)


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_timers_are_armed_only_where_they_may_run_and_always_handled(machine: Machine) -> None:
    for (_state, _event), (new_state, actions) in machine.table.items():
        assert new_state in machine.timers
        for action in actions:
            if action in ARMS:
                assert ARMS[action] in machine.timers[new_state], (machine.name, action)
    for state, timers in machine.timers.items():
        for timer in timers:
            assert (state, TIMER_EVENT[timer]) in machine.table, (machine.name, state, timer)
    for action in machine.start_actions:
        if action in ARMS:
            assert ARMS[action] in machine.timers[machine.initial]


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_every_state_reaches_terminated(machine: Machine) -> None:
    edges: dict[State, set[State]] = {}
    for (state, _event), (new_state, _actions) in machine.table.items():
        edges.setdefault(state, set()).add(new_state)
    for start in edges:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert State.TERMINATED in seen, (machine.name, start)


def test_diagram_draws_every_transition() -> None:
    tool = diagrams()
    for machine in MACHINES:
        text = tool.mermaid(machine)
        assert text.startswith("```mermaid\nstateDiagram-v2")
        for (state, _event), (new_state, _actions) in machine.table.items():
            assert f"{tool.node_id(state)} --> {tool.node_id(new_state)}" in text
        assert len(tool.table_markdown(machine).splitlines()) == len(machine.table) + 2


def test_generic_tables_with_plain_strings_are_drawn() -> None:
    class Toy:
        name: ClassVar[str] = "toy"
        initial: ClassVar[str] = "Idle"
        table: ClassVar[dict[tuple[str, str], tuple[str, tuple[str, ...]]]] = {
            ("Idle", "go"): ("Busy", ("work",)),
            ("Busy", "stop"): ("Terminated", ()),
        }

    text = diagrams().mermaid(Toy())
    assert "Idle --> Busy : go / work" in text
    assert "Terminated --> [*]" in text


def test_docs_diagrams_are_up_to_date() -> None:
    out = TOOLS.parent.parent / "docs" / "diagrams" / "transactions.md"
    if not out.exists():
        pytest.skip("docs/diagrams/transactions.md not present in this checkout")
    tool = diagrams()
    assert out.read_text(encoding="utf-8") == tool.render(
        "SIP transaction state machines (RFC 3261 §17, RFC 6026)", tool.TRANSACTION_TABLES
    ), "run: python tools/diagrams.py"
