"""The even-port allocator: round robin, release, exhaustion."""

from __future__ import annotations

import pytest

from rvoip_rtp_core import PortAllocator, PortsExhaustedError


def test_even_ports_round_robin_and_exhaustion() -> None:
    alloc = PortAllocator(10001, 10008)  # odd start is rounded up; end is exclusive
    assert alloc.capacity == 3
    ports = [alloc.acquire() for _ in range(3)]
    assert ports == [10002, 10004, 10006]
    assert all(p % 2 == 0 for p in ports)
    with pytest.raises(PortsExhaustedError, match="in use"):
        alloc.acquire()
    alloc.release(10004)
    assert alloc.acquire() == 10004
    alloc.release(12345)  # unknown: no-op
    assert alloc.in_use == frozenset(ports)


def test_rtcp_port_stays_in_range() -> None:
    alloc = PortAllocator(20000, 20005)
    got = {alloc.acquire() for _ in range(alloc.capacity)}
    assert got == {20000, 20002}
    assert all(p + 1 < 20005 for p in got)


def test_invalid_range() -> None:
    with pytest.raises(ValueError, match="invalid RTP port range"):
        PortAllocator(30000, 20000)
