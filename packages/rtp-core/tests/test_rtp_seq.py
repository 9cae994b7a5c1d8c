"""Wrap-around helpers for sequence numbers and timestamps, and NTP conversions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    ntp_from_time,
    ntp_middle32,
    ntp_to_time,
    seq_add,
    seq_diff,
    seq_gt,
    seq_lt,
    ts_add,
    ts_diff,
    ts_gt,
    ts_lt,
)


def test_seq_at_wrap() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_add(0, -1) == 65535
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_lt(65535, 0)
    assert seq_gt(0, 65535)
    assert not seq_lt(5, 5)
    assert seq_diff(32768, 0) == -32768
    assert seq_diff(32767, 0) == 32767


def test_ts_at_wrap() -> None:
    assert ts_add(0xFFFFFFFF, 160) == 159
    assert ts_diff(159, 0xFFFFFFFF) == 160
    assert ts_diff(0xFFFFFFFF, 159) == -160
    assert ts_lt(0xFFFFFF60, 0)
    assert ts_gt(0, 0xFFFFFF60)
    assert ts_diff(0x80000000, 0) == -(2**31)


@given(st.integers(0, 0xFFFF), st.integers(-32768, 32767))
def test_seq_add_diff_inverse(seq: int, delta: int) -> None:
    assert seq_diff(seq_add(seq, delta), seq) == delta
    assert seq_gt(seq_add(seq, delta), seq) == (delta > 0)


@given(st.integers(0, 0xFFFFFFFF), st.integers(-(2**31), 2**31 - 1))
def test_ts_add_diff_inverse(ts: int, delta: int) -> None:
    assert ts_diff(ts_add(ts, delta), ts) == delta
    assert ts_lt(ts_add(ts, delta), ts) == (delta < 0)


def test_ntp_conversions() -> None:
    assert ntp_from_time(0.0) == 2208988800 << 32
    assert ntp_from_time(1.5) == ((2208988801 << 32) | 0x80000000)
    assert abs(ntp_to_time(ntp_from_time(1795721793.25)) - 1795721793.25) < 1e-6
    assert ntp_middle32(0xDE46475B151A005C) == 0x475B151A
