"""Jitter buffer: C kernel equals the Python oracle; order, accounting, wrap, adaptation."""

from __future__ import annotations

import random
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_media_core import (
    InsertResult,
    JitterBuffer,
    PlayBatch,
    PopStatus,
    insert_many,
    make_handles,
    pop_many,
)

BACKENDS = ["cffi", "numpy"]


def _backends(c_available: bool) -> list[str]:
    return BACKENDS if c_available else ["numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "cffi":
        request.getfixturevalue("c_kernel")
    return str(request.param)


def _accounted(jb: JitterBuffer) -> bool:
    s = jb.stats()
    return s.received == (
        s.played + s.late + s.duplicate + s.dropped_overflow + s.dropped_adapt + s.buffered
    )


# One operation: ("insert", seq offset, duplicate?, delay) or ("pop",).
operations = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(-40, 80), st.floats(0, 0.2)),
        st.tuples(st.just("pop"), st.just(0), st.just(0.0)),
    ),
    max_size=300,
)


@given(
    ops=operations,
    start=st.integers(0, 65535),
    capacity=st.sampled_from([4, 16, 64]),
    min_frames=st.integers(1, 3),
)
def test_c_kernel_equals_python_oracle(
    c_kernel: Any, ops: list[tuple[str, int, float]], start: int, capacity: int, min_frames: int
) -> None:
    kw = {"capacity": capacity, "min_frames": min_frames, "max_frames": capacity - 1}
    c = JitterBuffer(backend="cffi", **kw)
    p = JitterBuffer(backend="numpy", **kw)
    base = start
    for i, (op, offset, delay) in enumerate(ops):
        if op == "insert":
            seq = (base + offset) & 0xFFFF
            ts = (seq * 160 + 12345) & 0xFFFFFFFF
            payload = struct.pack("!H", seq) * (seq % 50)
            arrival = i * 0.02 + delay
            assert c.insert(seq, ts, payload, arrival) == p.insert(seq, ts, payload, arrival)
            base = (base + 1) & 0xFFFF
        else:
            assert c.pop() == p.pop()
    assert c.stats() == p.stats()


@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0, 0.3),
    dup=st.floats(0, 0.2),
    reorder=st.integers(0, 6),
    start=st.integers(0, 65535),
)
def test_order_and_accounting_under_loss_reorder_duplication(
    seed: int, loss: float, dup: float, reorder: int, start: int
) -> None:
    rng = random.Random(seed)
    for kind in _backends(_c_available()):
        jb = JitterBuffer(backend=kind, capacity=32, max_frames=10)
        # Sender emits one packet per 20 ms; the network loses, duplicates, delays.
        arrivals: list[tuple[float, int]] = []
        n = 400
        for k in range(n):
            if rng.random() < loss:
                continue
            copies = 2 if rng.random() < dup else 1
            for _ in range(copies):
                arrivals.append((k * 0.02 + rng.randint(0, reorder) * 0.02 * rng.random(), k))
        arrivals.sort()
        played: list[int] = []
        ai = 0
        for tick in range(n + 40):
            now = tick * 0.02
            while ai < len(arrivals) and arrivals[ai][0] <= now:
                k = arrivals[ai][1]
                seq = (start + k) & 0xFFFF
                jb.insert(seq, (k * 160) & 0xFFFFFFFF, struct.pack("!I", k), arrivals[ai][0])
                ai += 1
            status, payload = jb.pop()
            if status is PopStatus.FRAME:
                played.append(struct.unpack("!I", payload)[0])
            assert _accounted(jb)
        assert played == sorted(set(played)), "a frame came out of order or twice"
        s = jb.stats()
        assert s.received == len(arrivals)
        assert s.played == len(played)


def _c_available() -> bool:
    try:
        import rvoip_media_core._kernel_cffi  # noqa: F401
    except ImportError:  # pragma: no cover
        return False
    return True


def test_sequence_wrap_in_order(backend: str) -> None:
    jb = JitterBuffer(backend=backend)
    seqs = [(65530 + i) & 0xFFFF for i in range(20)]
    out = []
    for i, seq in enumerate(seqs):
        assert jb.insert(seq, i * 160, bytes([i]), i * 0.02) is InsertResult.OK
        status, data = jb.pop()
        if status is PopStatus.FRAME:
            out.append(data[0])
    for _ in range(5):
        status, data = jb.pop()
        if status is PopStatus.FRAME:
            out.append(data[0])
    assert out == list(range(20))
    assert jb.stats().played == 20


def test_late_duplicate_lost_and_empty(backend: str) -> None:
    jb = JitterBuffer(backend=backend, min_frames=2)
    assert jb.pop() == (PopStatus.EMPTY, b"")
    assert jb.insert(100, 0, b"a", 0.0) is InsertResult.OK
    assert jb.insert(100, 0, b"a", 0.001) is InsertResult.DUPLICATE
    assert jb.pop() == (PopStatus.EMPTY, b"")  # buffering up to the target (2 frames)
    assert jb.insert(102, 320, b"c", 0.04) is InsertResult.OK
    assert jb.pop() == (PopStatus.FRAME, b"a")
    assert jb.pop() == (PopStatus.LOST, b"")  # 101 missing, 102 present: conceal
    assert jb.insert(101, 160, b"b", 0.05) is InsertResult.LATE
    assert jb.pop() == (PopStatus.FRAME, b"c")
    assert jb.pop() == (PopStatus.EMPTY, b"")  # underrun
    s = jb.stats()
    assert (s.received, s.played, s.late, s.duplicate, s.concealed) == (4, 2, 1, 1, 1)
    assert _accounted(jb)


def test_reordered_first_packets_move_the_start(backend: str) -> None:
    jb = JitterBuffer(backend=backend, min_frames=2)
    jb.insert(11, 160, b"2", 0.0)
    jb.insert(10, 0, b"1", 0.001)
    assert jb.pop() == (PopStatus.FRAME, b"1")
    assert jb.pop() == (PopStatus.FRAME, b"2")


def test_overflow_drops_oldest_and_resumes(backend: str) -> None:
    jb = JitterBuffer(backend=backend, capacity=8, max_frames=4)
    for i in range(4):
        jb.insert(i, i * 160, bytes([i]), 0.0)
    # A jump far ahead (sender restart): the old frames fall out of the window.
    assert jb.insert(1000, 160000, b"x", 0.1) is InsertResult.OK
    s = jb.stats()
    assert s.dropped_overflow == 4
    assert s.buffered == 1
    assert _accounted(jb)


def test_adaptive_target_follows_jitter_within_bounds(backend: str) -> None:
    steady = JitterBuffer(backend=backend, min_frames=2, max_frames=8)
    jittery = JitterBuffer(backend=backend, min_frames=2, max_frames=8)
    rng = random.Random(5)
    for k in range(300):
        steady.insert(k, k * 160, b"x", k * 0.02)
        jittery.insert(k, k * 160, b"x", k * 0.02 + rng.random() * 0.06)
        steady.pop()
        jittery.pop()
    assert steady.target_frames == 2
    assert steady.jitter == 0
    assert 2 < jittery.target_frames <= 8
    assert jittery.jitter > 0
    assert jittery.delay_ms() == jittery.target_frames * 20.0


def test_delay_shrinks_when_far_above_target(backend: str) -> None:
    jb = JitterBuffer(backend=backend, min_frames=2, max_frames=8)
    for k in range(10):  # a burst of 10 frames at once
        jb.insert(k, k * 160, bytes([k]), 0.0)
    statuses = [jb.pop()[0] for _ in range(10)]
    s = jb.stats()
    assert s.dropped_adapt > 0
    assert statuses.count(PopStatus.FRAME) == s.played
    assert _accounted(jb)


def test_batch_insert_and_pop_equal_single_calls(backend: str) -> None:
    n = 200
    rng = np.random.default_rng(1)
    order = np.arange(n)
    rng.shuffle(order[:50])
    seqs = ((order + 65500) & 0xFFFF).astype(np.uint16)
    tss = (order * 160).astype(np.uint32)
    payloads = np.zeros((n, 320), dtype=np.uint8)
    payloads[:, 0] = order & 0xFF
    lens = np.full(n, 160, dtype=np.uint16)
    arrivals = np.arange(n) * 0.02
    single = JitterBuffer(backend=backend)
    batch = JitterBuffer(backend=backend)
    expected = [
        single.insert(int(seqs[i]), int(tss[i]), payloads[i, :160].tobytes(), float(arrivals[i]))
        for i in range(n)
    ]
    results = batch.insert_batch(seqs, tss, payloads, lens, arrivals)
    assert results.tolist() == [int(r) for r in expected]
    pops = [single.pop() for _ in range(n)]
    statuses, out, out_lens = batch.pop_batch(n)
    assert statuses.tolist() == [int(p[0]) for p in pops]
    for i, (_status, data) in enumerate(pops):
        assert out[i, : out_lens[i]].tobytes() == data
    assert single.stats() == batch.stats()


def test_pop_many_equals_individual_pops(backend: str) -> None:
    a = [JitterBuffer(backend=backend) for _ in range(5)]
    b = [JitterBuffer(backend=backend) for _ in range(5)]
    for j in range(5):
        for k in range(j + 1):
            a[j].insert(k, k * 160, bytes([j, k]), 0.0)
            b[j].insert(k, k * 160, bytes([j, k]), 0.0)
    out = np.zeros((5, 320), dtype=np.uint8)
    lens = np.zeros(5, dtype=np.int32)
    statuses = pop_many(a, out, lens, make_handles(a))
    for j in range(5):
        status, data = b[j].pop()
        assert statuses[j] == status
        assert out[j, : lens[j]].tobytes() == data


def test_invalid_parameters_and_payload() -> None:
    with pytest.raises(ValueError, match="capacity"):
        JitterBuffer(capacity=65)
    with pytest.raises(ValueError, match="min_frames"):
        JitterBuffer(min_frames=5, max_frames=3)
    jb = JitterBuffer(max_payload=160)
    with pytest.raises(ValueError, match="max_payload"):
        jb.insert(1, 0, b"x" * 161, 0.0)
    assert jb.stats().received == 0


def test_reset_forgets_everything(backend: str) -> None:
    jb = JitterBuffer(backend=backend)
    jb.insert(5, 0, b"x", 0.0)
    jb.reset()
    assert jb.stats().received == 0
    assert jb.pop() == (PopStatus.EMPTY, b"")


def test_insert_many_equals_individual_inserts(backend: str) -> None:
    a = [JitterBuffer(backend=backend) for _ in range(4)]
    b = [JitterBuffer(backend=backend) for _ in range(4)]
    payloads = np.zeros((4, 320), dtype=np.uint8)
    for tick in range(6):
        seqs = np.array([tick, tick + 100, tick * 2, 7], dtype=np.uint16)
        payloads[:, 0] = tick
        lens = np.array([160, 10, 320, 160], dtype=np.uint16)
        arrivals = np.full(4, tick * 0.02)
        results = insert_many(a, seqs, seqs * 160, payloads, lens, arrivals)
        expected = [
            b[i].insert(
                int(seqs[i]), int(seqs[i]) * 160, payloads[i, : lens[i]].tobytes(), tick * 0.02
            )
            for i in range(4)
        ]
        assert results.tolist() == [int(e) for e in expected]
    assert [x.stats() for x in a] == [x.stats() for x in b]
    with pytest.raises(ValueError, match="one entry per buffer"):
        insert_many(a, seqs[:2], seqs, payloads, lens, arrivals)


def test_kernel_state_is_allocated_on_the_first_packet(backend: str) -> None:
    jb = JitterBuffer(backend=backend, min_frames=3, max_frames=8)
    fresh = jb.stats()
    assert not jb.allocated
    assert jb.pop() == (PopStatus.EMPTY, b"")
    jb.reset()
    assert not jb.allocated
    twin = JitterBuffer(backend=backend, min_frames=3, max_frames=8)
    twin.insert(0, 0, b"\x01", 0.0)
    twin.reset()  # an allocated buffer back to fresh: the same figures
    assert twin.allocated
    assert fresh == twin.stats()
    assert fresh.target_frames == 3
    assert jb.insert(0, 0, b"\x01", 0.0) is InsertResult.OK
    assert jb.allocated
    assert jb.stats().received == 1


def test_play_batch_equals_individual_pops_and_sees_new_allocations(backend: str) -> None:
    a = [JitterBuffer(backend=backend) for _ in range(4)]
    b = [JitterBuffer(backend=backend) for _ in range(4)]
    for j in (1, 3):  # buffers 0 and 2 stay unallocated
        for k in range(3):
            a[j].insert(k, k * 160, bytes([j, k]), 0.0)
            b[j].insert(k, k * 160, bytes([j, k]), 0.0)
    batch = PlayBatch(a)
    assert batch.valid
    for _ in range(3):
        batch.pop()
        for j in range(4):
            status, data = b[j].pop()
            assert batch.statuses[j] == status
            assert batch.out[j, : batch.lens[j]].tobytes() == data
    assert not a[0].allocated
    assert not a[2].allocated
    a[0].insert(0, 0, b"\x07", 0.0)
    assert not batch.valid  # a buffer got its own state: handles must be taken again
