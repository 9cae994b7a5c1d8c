"""Tests of the shared keyed deadline heap (`Deadlines`) and `SystemClock`."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from rvoip_transaction_core import Deadlines, SystemClock


def test_move_and_cancel() -> None:
    d: Deadlines[str] = Deadlines()
    d.set("ring", 30.0)
    d.set("defer", 10.0)
    d.set("ring", 5.0)
    assert d.next() == 5.0
    d.cancel("ring")
    assert d.next() == 10.0
    assert d.get("ring") is None
    assert "defer" in d
    assert len(d) == 1
    assert d.pop_due(9.0) == []
    assert d.pop_due(10.0) == ["defer"]
    assert d.next() is None


def test_compaction_keeps_live_entries() -> None:
    d: Deadlines[int] = Deadlines()
    for i in range(1000):
        d.set(i % 10, float(i))
    assert len(d) == 10
    assert d.next() == 990.0
    assert d.pop_due(1e9) == list(range(10))


@given(st.lists(st.tuples(st.integers(0, 7), st.one_of(st.none(), st.floats(0, 100)))))
def test_matches_a_plain_dict(ops: list[tuple[int, float | None]]) -> None:
    """Whatever the sets and cancels, the heap answers like a dict of key -> deadline."""
    d: Deadlines[int] = Deadlines()
    model: dict[int, float] = {}
    for key, when in ops:
        if when is None:
            d.cancel(key)
            model.pop(key, None)
        else:
            d.set(key, when)
            model[key] = when
        assert d.next() == (min(model.values()) if model else None)
    due = d.pop_due(50.0)
    assert sorted(due) == sorted(k for k, w in model.items() if w <= 50.0)
    assert [model[k] for k in due] == sorted(model[k] for k in due)


def test_system_clock_is_monotonic() -> None:
    clock = SystemClock()
    a = clock.now()
    assert clock.now() >= a
    assert clock.wall() > 1.7e9
