"""Python misuse of the C kernel's batch APIs raises; it never writes out of bounds.

The kernel trusts its pointers and counts. Every array handed to it is checked
(dtype, dimensions, rows against the count, contiguity, writeability) before the
call. Output arrays here are views at the start of a larger canvas whose tail is a
guard: an overrun would change the guard, which is asserted intact after every call.
Run on the C kernel and the numpy backend (also with ``RVOIP_MEDIA_KERNEL=numpy``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from rvoip_media_core import (
    JitterBuffer,
    PlayBatch,
    alaw_decode,
    alaw_encode,
    alaw_encode_bytes,
    insert_many,
    make_handles,
    pop_many,
    ulaw_decode,
    ulaw_decode_bytes,
    ulaw_encode,
    ulaw_encode_bytes,
)
from rvoip_media_core import _g711_numpy as oracle
from rvoip_media_core._jitter import play_handles

try:
    from rvoip_media_core._kernel_cffi import lib as _lib  # noqa: F401

    BACKENDS = ["cffi", "numpy"]
except ImportError:  # pragma: no cover - depends on the build
    BACKENDS = ["numpy"]
_GUARD = 4096
_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.int64, np.float64, np.bool_]


backends = pytest.mark.parametrize("backend", BACKENDS)


def _mostly(valid: Any, others: list[Any]) -> st.SearchStrategy[Any]:
    """``valid`` about half the time, else one of ``others`` (so valid calls happen)."""
    return st.one_of(st.just(valid), st.sampled_from(others))


def _guarded(shape: tuple[int, ...], dtype: Any, order: str, writeable: bool) -> Any:
    """An array of ``shape`` at the start of a canvas whose tail is a 0xA5 guard."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape)) if shape else 1
    canvas = np.full(count * dtype.itemsize + _GUARD, 0xA5, dtype=np.uint8)
    arr = canvas[: count * dtype.itemsize].view(dtype).reshape(shape, order=order)
    arr.flags.writeable = writeable
    return arr, canvas


def _guard_intact(canvas: Any) -> bool:
    return bool((canvas[-_GUARD:] == 0xA5).all())


def _filled(n: int, backend: str) -> list[JitterBuffer]:
    buffers = [JitterBuffer(backend=backend) for _ in range(n)]
    for j, jb in enumerate(buffers):
        for k in range(3):
            jb.insert(k, k * 160, bytes([j, k]) * 160, 0.0)
    return buffers


@backends
@given(
    n=st.integers(0, 5),
    rows=st.integers(0, 7),
    cols=st.sampled_from([0, 1, 160, 319, 320, 400]),
    out_dtype=_mostly(np.uint8, _DTYPES),
    out_order=_mostly("C", ["F"]),
    out_ndim=_mostly(2, [1, 3]),
    writeable=_mostly(True, [False]),
    len_rows=st.integers(0, 7),
    len_dtype=_mostly(np.int32, [np.int64, np.int16, np.uint32, np.float32]),
    with_handles=_mostly("none", ["own", "other", "play"]),
)
def test_pop_many_raises_or_matches_the_oracle(
    backend: str,
    n: int,
    rows: int,
    cols: int,
    out_dtype: Any,
    out_order: str,
    out_ndim: int,
    writeable: bool,
    len_rows: int,
    len_dtype: Any,
    with_handles: str,
) -> None:
    """Bug: ``pop_many`` checked only ``out.shape[1]``; too few rows, a short or int8
    ``lengths``, or a read-only array were written past their end by the kernel."""
    rows = max(0, n + rows - 3)  # around n: too few, exactly, more
    len_rows = max(0, n + len_rows - 3)
    buffers = _filled(n, backend)
    twins = _filled(n, backend)
    shape = {1: (rows * max(cols, 1),), 2: (rows, cols), 3: (rows, cols, 1)}[out_ndim]
    out, out_canvas = _guarded(shape, out_dtype, out_order, writeable)
    lengths, len_canvas = _guarded((len_rows,), len_dtype, "C", True)
    handles: Any = None
    if with_handles == "own":
        handles = make_handles(buffers)
    elif with_handles == "other":
        handles = make_handles(_filled(n, backend))
    elif with_handles == "play":
        handles = play_handles(buffers)
    try:
        statuses = pop_many(buffers, out, lengths, handles)
    except (TypeError, ValueError):
        event("raised")
    else:
        event("popped")
        for j in range(n):
            status, data = twins[j].pop()
            assert statuses[j] == status
            assert out[j, : lengths[j]].tobytes() == data
    assert _guard_intact(out_canvas)
    assert _guard_intact(len_canvas)


@backends
@given(
    n=st.integers(0, 5),
    rows=st.integers(0, 7),
    cols=st.sampled_from([0, 1, 2, 160, 320, 400]),
    pay_dtype=_mostly(np.uint8, _DTYPES),
    pay_ndim=_mostly(2, [0, 1, 3]),
    lengths=st.lists(st.integers(0, 500), max_size=7),
    seq_count=st.integers(0, 7),
    with_handles=_mostly("none", ["own", "other", "play"]),
)
def test_insert_many_raises_or_matches_the_oracle(
    backend: str,
    n: int,
    rows: int,
    cols: int,
    pay_dtype: Any,
    pay_ndim: int,
    lengths: list[int],
    seq_count: int,
    with_handles: str,
) -> None:
    """Wrong payload shapes, counts and lengths raise; valid calls equal single inserts."""
    rows = max(0, n + rows - 3)
    seq_count = max(0, n + seq_count - 3)
    buffers = [JitterBuffer(backend=backend) for _ in range(n)]
    twins = [JitterBuffer(backend=backend) for _ in range(n)]
    shape = {0: (), 1: (rows,), 2: (rows, cols), 3: (rows, cols, 2)}[pay_ndim]
    payloads = (np.arange(int(np.prod(shape)) if shape else 1) % 251).astype(pay_dtype)
    payloads = payloads.reshape(shape)
    seqs = np.arange(seq_count, dtype=np.uint16)
    arrivals = np.zeros(seq_count)
    handles: Any = None
    if with_handles == "own":
        handles = make_handles(buffers)
    elif with_handles == "other":
        handles = make_handles([JitterBuffer(backend=backend) for _ in range(n)])
    elif with_handles == "play":
        handles = play_handles(buffers)
    try:
        results = insert_many(buffers, seqs, seqs, payloads, lengths, arrivals, handles)
    except (TypeError, ValueError, OverflowError):
        event("raised")
        return
    event("inserted")
    pay = np.ascontiguousarray(payloads, dtype=np.uint8)
    for i in range(n):
        data = pay[i, : lengths[i]].tobytes()
        try:
            expected = int(twins[i].insert(i, i, data, 0.0))
        except ValueError:
            expected = -1
        assert results[i] == expected
    assert [b.stats() for b in buffers] == [t.stats() for t in twins]


@backends
@pytest.mark.parametrize("stride", [0, 1, 160, 319])
def test_play_batch_refuses_a_narrow_stride(backend: str, stride: int) -> None:
    """Bug: ``PlayBatch(buffers, stride=160)`` let the kernel write 320-byte frames into
    160-byte rows: the last row overran the array."""
    buffers = _filled(3, backend)
    with pytest.raises(ValueError, match="stride"):
        PlayBatch(buffers, stride=stride)


@backends
def test_pop_batch_refuses_bad_counts(backend: str) -> None:
    jb = _filled(1, backend)[0]
    for n, stride in ((-1, 320), (2, -1)):
        with pytest.raises(ValueError):
            jb.pop_batch(n, stride)
    with pytest.raises(TypeError):
        jb.pop_batch(2.5, 320)  # type: ignore[arg-type]


_G711: list[tuple[Any, Any, Any]] = [
    (ulaw_encode, oracle.ulaw_encode, np.int16),
    (alaw_encode, oracle.alaw_encode, np.int16),
    (ulaw_decode, oracle.ulaw_decode, np.uint8),
    (alaw_decode, oracle.alaw_decode, np.uint8),
]


@given(
    which=st.integers(0, len(_G711) - 1),
    shape=st.lists(st.integers(0, 6), max_size=3),
    dtype=st.sampled_from(_DTYPES),
    order=st.sampled_from("CF"),
    step=st.integers(1, 3),
    data=st.data(),
)
def test_g711_arrays_raise_or_match_the_oracle(
    which: int, shape: list[int], dtype: Any, order: str, step: int, data: st.DataObject
) -> None:
    """Any shape, dtype, order and strides: the result equals the numpy oracle."""
    func, ref, native = _G711[which]
    size = int(np.prod(shape)) if shape else 1
    values = data.draw(st.lists(st.integers(-40000, 70000), min_size=size, max_size=size))
    base = np.array(values, dtype=np.int64).reshape(shape, order=order)  # type: ignore[call-overload]
    arr = base.astype(dtype, casting="unsafe")
    if arr.ndim:
        arr = arr[::step]  # a strided view
    try:
        expected = ref(np.asarray(arr, dtype=native, order="C"))
    except (TypeError, ValueError, OverflowError):
        with pytest.raises((TypeError, ValueError, OverflowError)):
            func(arr)
        return
    got = func(arr)
    assert got.shape == arr.shape
    assert np.array_equal(got, expected)


@given(st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(bytearray)))
def test_g711_bytes_raise_or_match_the_oracle(data: bytes) -> None:
    for func, ref, native in (
        (ulaw_encode_bytes, oracle.ulaw_encode, np.int16),
        (alaw_encode_bytes, oracle.alaw_encode, np.int16),
        (ulaw_decode_bytes, oracle.ulaw_decode, np.uint8),
    ):
        try:
            got = func(data)
        except (TypeError, ValueError):
            continue
        assert got == ref(np.frombuffer(bytes(data), dtype=native)).tobytes()


@backends
def test_pop_many_refuses_short_or_mistyped_outputs(backend: str) -> None:
    """Bug: ``pop_many`` checked only ``out.shape[1]``.

    An ``out`` with fewer rows than buffers, an int8 or too-short ``lengths``, or a
    read-only ``out`` (e.g. ``np.frombuffer`` of bytes) let the kernel write past the
    array or into immutable memory. Each is refused before the kernel runs, and the
    guard after each array stays intact.
    """
    buffers = _filled(4, backend)
    cases = [
        (_guarded((1, 320), np.uint8, "C", True), _guarded((4,), np.int32, "C", True), ValueError),
        (_guarded((4, 320), np.uint8, "C", True), _guarded((4,), np.int8, "C", True), TypeError),
        (_guarded((4, 320), np.uint8, "C", True), _guarded((2,), np.int32, "C", True), ValueError),
        (_guarded((4, 320), np.uint8, "C", False), _guarded((4,), np.int32, "C", True), ValueError),
        (_guarded((4, 320), np.int16, "C", True), _guarded((4,), np.int32, "C", True), TypeError),
    ]
    for (out, out_canvas), (lengths, len_canvas), error in cases:
        with pytest.raises(error):
            pop_many(buffers, out, lengths)
        assert _guard_intact(out_canvas)
        assert _guard_intact(len_canvas)
    with pytest.raises(TypeError):
        pop_many(buffers, [[0] * 320] * 4, np.zeros(4, np.int32))  # type: ignore[arg-type]
    assert [b.stats().played for b in buffers] == [0, 0, 0, 0]  # nothing was popped


@backends
def test_handles_of_other_buffers_are_refused(backend: str) -> None:
    """Bug: a handle array made for other (or fewer) buffers was trusted: the kernel
    read past its end or popped/inserted into the wrong streams."""
    if backend != "cffi":
        pytest.skip("handles exist on the C kernel only")
    buffers = _filled(3, backend)
    out = np.zeros((3, 320), np.uint8)
    lengths = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="other buffers"):
        pop_many(buffers, out, lengths, make_handles(buffers[:1]))
    with pytest.raises(ValueError, match="other buffers"):
        pop_many(buffers, out, lengths, make_handles(list(reversed(buffers))))
    fresh = [JitterBuffer(backend=backend) for _ in range(3)]
    payloads = np.zeros((3, 320), np.uint8)
    with pytest.raises(ValueError, match="cannot be inserted"):
        insert_many(
            fresh, [1, 2, 3], [0, 0, 0], payloads, [4, 4, 4], [0.0] * 3, play_handles(fresh)
        )
    pop_many(buffers, out, lengths, make_handles(buffers))
