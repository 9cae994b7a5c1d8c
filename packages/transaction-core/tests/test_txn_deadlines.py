"""Tests of the shared keyed deadline heap (`Deadlines`) and `SystemClock`."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from rvoip_transaction_core import Deadlines, SystemClock
from rvoip_transaction_core._deadlines import COMPACT_MIN


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
        # stale entries never outnumber max(COMPACT_MIN, live) by more than one sweep
        assert d.heap_size <= 2 * len(d) + COMPACT_MIN + 1
    due = d.pop_due(50.0)
    assert sorted(due) == sorted(k for k, w in model.items() if w <= 50.0)
    assert [model[k] for k in due] == sorted(model[k] for k in due)


def test_live_deadlines_are_never_rescanned() -> None:
    """Long-lived deadlines that are never moved cost no sweep (the old heap rescanned).

    The transaction layer keeps ~32 s of Timer J/K/L deadlines live at once: tens of
    thousands at 1,000+ calls/s, few of them ever moved or cancelled. The first version
    counted pushes and swept the whole heap every N pushes (2-3 % of a call's CPU in the
    session_uas benchmark); stale entries are now counted exactly and only they trigger one.
    """
    d: Deadlines[int] = Deadlines()
    for i in range(10_000):
        d.set(i, float(i))
    assert d.compactions == 0
    assert d.heap_size == 10_000
    # moving every key twice leaves 20,000 stale entries: they are swept, not kept for ever
    for i in range(10_000):
        d.set(i, float(i) + 0.25)
    for i in range(10_000):
        d.set(i, float(i) + 0.5)
    assert d.compactions >= 1
    assert d.heap_size <= 2 * len(d) + COMPACT_MIN + 1
    assert d.pop_due(1e9) == list(range(10_000))
    assert d.heap_size == 0


@given(st.lists(st.tuples(st.integers(0, 200), st.floats(0, 100)), max_size=400))
def test_stale_count_is_exact(ops: list[tuple[int, float]]) -> None:
    """After any sets, cancels, next() and pop_due(), the heap holds live + counted stale."""
    d: Deadlines[int] = Deadlines()
    for n, (key, when) in enumerate(ops):
        if n % 5 == 4:
            d.cancel(key)
        else:
            d.set(key, when)
        if n % 7 == 6:
            d.next()
        if n % 11 == 10:
            d.pop_due(when)
    assert d.heap_size == len(d) + d._stale  # the invariant under test
    d.pop_due(1e9)
    assert d.heap_size == 0
    assert len(d) == 0


def test_system_clock_is_monotonic() -> None:
    clock = SystemClock()
    a = clock.now()
    assert clock.now() >= a
    assert clock.wall() > 1.7e9
