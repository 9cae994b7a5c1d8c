"""The bounded memo behind the shared typed values, URIs and SDP lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core._memo import remember


@given(st.lists(st.text(max_size=4)), st.integers(min_value=1, max_value=8))
def test_remember_stays_bounded_and_keeps_the_latest(keys: list[str], limit: int) -> None:
    table: dict[str, int] = {}
    for index, key in enumerate(keys):
        assert remember(table, key, index, limit) == index
        assert table[key] == index
        assert len(table) <= limit


def test_a_full_table_is_cleared_before_the_new_entry() -> None:
    table = {"a": 1, "b": 2}
    remember(table, "c", 3, 2)
    assert table == {"c": 3}
