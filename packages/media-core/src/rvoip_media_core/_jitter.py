"""Adaptive jitter buffer: insert RTP payloads by sequence number, pop one frame per tick.

The hot path is in the C kernel (``_kernel/jitter.c``); ``_jitter_py.PyJitterCore`` is
its pure-Python twin (fallback and test oracle). Both give identical results.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from rvoip_media_core import _jitter_py as _py
from rvoip_media_core._backend import BACKEND, kernel


class InsertResult(enum.IntEnum):
    """What happened to an inserted packet."""

    OK = _py.JB_OK
    LATE = _py.JB_LATE  # its frame was already played (or is far too old)
    DUPLICATE = _py.JB_DUPLICATE


class PopStatus(enum.IntEnum):
    """What one playout tick produced."""

    FRAME = _py.JB_FRAME  # a received frame
    LOST = _py.JB_LOST  # the frame is missing but later ones exist: conceal it
    EMPTY = _py.JB_EMPTY  # nothing to play (not started, buffering, or underrun)


# Enum members by code: indexing a tuple is much cheaper than calling the enum class.
_INSERT = (InsertResult.OK, InsertResult.LATE, InsertResult.DUPLICATE)
_POP = (PopStatus.FRAME, PopStatus.LOST, PopStatus.EMPTY)
_LOST_RESULT = (PopStatus.LOST, b"")
_Params = tuple[int, int, int, int, int, int]
"""(capacity, max_payload, samples_per_frame, clock_rate, min_frames, max_frames)"""
_EMPTY_RESULT = (PopStatus.EMPTY, b"")
_C_INT = np.dtype(np.intc)  # the kernel's ``int`` (lengths)
_U8 = np.dtype(np.uint8)


def _check_out(arr: object, name: str, dtype: np.dtype[Any], rows: int, ndim: int) -> None:
    """Refuse an output array the kernel would write out of bounds of.

    The C kernel trusts its pointers and counts: a short or wrongly typed ``out`` would
    be written past its end, a read-only one (``np.frombuffer`` of bytes) written
    through. Checked once per batch call, never per element (~0.2 µs). Contiguity is
    enforced where the array is handed to C (``ffi.from_buffer`` refuses a strided
    buffer with ``ValueError``); the numpy path handles strides itself.

    Raises:
        TypeError: not a numpy array of ``dtype``.
        ValueError: wrong dimensions, fewer than ``rows`` rows, or read-only.
    """
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype is not dtype and arr.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {arr.dtype}")
    if arr.ndim != ndim or arr.shape[0] < rows:
        raise ValueError(f"{name} must be {ndim}-D with at least {rows} rows, got {arr.shape}")
    if not arr.flags.writeable:
        raise ValueError(f"{name} is read-only")


def _check_inputs(
    n: int,
    arrays: Sequence[NDArray[Any]],
    pay: NDArray[np.uint8],
    len_a: NDArray[np.uint16],
    rule: str,
) -> int:
    """Check the input arrays of a batch insert against the count; returns the stride."""
    if pay.ndim != 2 or pay.shape[0] != n or any(a.size != n for a in arrays):
        raise ValueError(f"{rule} ({n} entries; payloads {n} x stride, got {pay.shape})")
    stride = int(pay.shape[1])
    if n and int(len_a.max()) > stride:
        raise ValueError("a length exceeds the payload stride")
    return stride


class KernelHandles:
    """The C array of kernel states of a list of buffers, with what it was built for.

    ``pop_many``/``insert_many`` check it against the buffers they are given: a handle
    array of other (or fewer) buffers would make the kernel read or write the wrong
    state, or past the array's end.
    """

    __slots__ = ("_source", "array", "buffers", "epoch", "shared_idle")

    def __init__(
        self,
        array: Any,
        buffers: Sequence[JitterBuffer],
        epoch: int,
        shared_idle: bool,
    ) -> None:
        """Wrap ``array`` (``rv_jb_t *[]``) built for ``buffers`` at ``epoch``."""
        self.array = array
        # Holding the buffers keeps their kernel states alive as long as the raw pointers.
        self.buffers = tuple(buffers)
        self._source = buffers  # the sequence it was made from (identity fast path)
        self.epoch = epoch
        self.shared_idle = shared_idle  # unallocated buffers point at a shared idle state

    def check(self, buffers: Sequence[JitterBuffer], writing: bool) -> None:
        """Raise ``ValueError`` unless these handles are valid for ``buffers``.

        The same sequence object as at creation with the same length passes at once (a
        list edited in place to other buffers of the same length then pops those it was
        made for: wrong, but memory-safe, since the handles keep their buffers alive);
        anything else is compared buffer by buffer.
        """
        if (buffers is not self._source or len(buffers) != len(self.buffers)) and (
            self.buffers != tuple(buffers)
        ):
            raise ValueError("handles were made for other buffers")
        if self.shared_idle and (writing or self.epoch != _EPOCH[0]):
            raise ValueError("play handles are stale or cannot be inserted into")


@attrs.frozen
class JitterStats:
    """Counters of a jitter buffer.

    Every received packet is in exactly one of played, late, duplicate,
    dropped_overflow, dropped_adapt or buffered.
    """

    received: int
    played: int
    late: int
    duplicate: int
    dropped_overflow: int
    dropped_adapt: int
    concealed: int
    buffered: int
    target_frames: int
    jitter: int  # RFC 3550 interarrival jitter estimate, timestamp units


class JitterBuffer:
    """One stream's jitter buffer with an adaptive target delay.

    The target delay is ``1 + ceil(3 × jitter / frame)`` frames, bounded by
    ``min_frames``/``max_frames``; when the buffered span exceeds the target by
    more than 2 frames, playout skips a frame to shrink the delay.

    The kernel state (~21 KB) is allocated on the first received packet, not here:
    a stream that never receives (a call without media, a send-only stream) costs
    only this small object, and creating one is cheap on the call set-up path.
    Until then the buffer behaves exactly as a fresh one (pops are EMPTY).
    """

    __slots__ = (
        "_cffi",
        "_core",
        "_jb",
        "_lib",
        "_params",
        "_scratch",
        "backend",
        "samples_per_frame",
    )

    def __init__(
        self,
        *,
        capacity: int = 64,
        max_payload: int = 320,
        samples_per_frame: int = 160,
        clock_rate: int = 8000,
        min_frames: int = 2,
        max_frames: int = 12,
        backend: str | None = None,
    ) -> None:
        """Create an empty buffer; ``backend`` overrides the process default (tests)."""
        params: _Params = (
            capacity,
            max_payload,
            samples_per_frame,
            clock_rate,
            min_frames,
            max_frames,
        )
        # hot path (one per call): each parameter set is validated once per process.
        if params not in _VALID_PARAMS:
            _py.validate_params(*params)
            _VALID_PARAMS.add(params)
        backend = backend or BACKEND
        if backend not in ("cffi", "numpy"):
            raise ValueError(f"unknown backend {backend!r}")
        self.backend = backend
        self._cffi = backend == "cffi"
        self.samples_per_frame = samples_per_frame
        self._params = params
        self._core: _py.PyJitterCore | None = None
        self._jb: Any = None
        self._lib: Any = None
        self._scratch: Any = None

    def _allocate(self) -> Any:
        """Create the kernel state (first packet, or a caller that needs the handle)."""
        _EPOCH[0] += 1
        if not self._cffi:
            self._core = _py.PyJitterCore(*self._params)
            return self._core
        ffi, lib = kernel()
        self._lib = lib
        jb = ffi.new("rv_jb_t *")
        lib.rv_jb_init(jb, *self._params)
        self._jb = jb
        return jb

    @property
    def allocated(self) -> bool:
        """Whether the kernel state exists (it does once a packet was inserted)."""
        return self._jb is not None or self._core is not None

    @property
    def c_handle(self) -> Any:
        """The kernel's ``rv_jb_t *`` (cffi backend only), for batch calls."""
        if self._jb is None and self._cffi:
            return self._allocate()
        return self._jb

    def insert(self, seq: int, timestamp: int, payload: bytes, arrival: float) -> InsertResult:
        """Insert one RTP payload; ``arrival`` is the receive time in seconds.

        Raises:
            ValueError: the payload is longer than ``max_payload``.
        """
        if self._cffi:
            jb = self._jb
            if jb is None:
                jb = self._allocate()
            if type(payload) is not bytes:
                payload = bytes(payload)
            code = self._lib.rv_jb_insert(
                jb, seq & 0xFFFF, timestamp & 0xFFFFFFFF, payload, len(payload), arrival
            )
        else:
            core = self._core
            if core is None:
                core = self._allocate()
            code = core.insert(seq, timestamp, payload, arrival)
        if code < 0:
            raise ValueError(f"payload of {len(payload)} bytes exceeds max_payload")
        return _INSERT[code]

    def pop(self) -> tuple[PopStatus, bytes]:
        """Play one frame (call once per packet time)."""
        if not self._cffi:
            if self._core is None:
                return _EMPTY_RESULT
            status, data, _ts = self._core.pop()
            return _POP[status], data
        if self._jb is None:
            return _EMPTY_RESULT
        scratch = self._scratch
        if scratch is None:
            ffi, _lib = kernel()
            scratch = self._scratch = (
                ffi.new("uint8_t[]", _py.JB_MAX_PAYLOAD),
                ffi.new("int *"),
                ffi.new("uint32_t *"),
                ffi.buffer,
            )
        out, length, ts, buffer = scratch
        status = self._lib.rv_jb_pop(self._jb, out, length, ts)
        if status == _py.JB_FRAME:
            return PopStatus.FRAME, buffer(out, length[0])[:]
        return _LOST_RESULT if status == _py.JB_LOST else _EMPTY_RESULT

    def peek(self) -> bytes | None:
        """The payload the next ``pop`` will play, if it has arrived, else None.

        Read-only: after a ``LOST`` pop it is the packet after the lost one, whose
        in-band FEC (Opus) can rebuild the lost frame.
        """
        if not self._cffi:
            return None if self._core is None else self._core.peek()
        if self._jb is None:
            return None
        ffi, _lib = kernel()
        out = ffi.new("uint8_t[]", _py.JB_MAX_PAYLOAD)
        length = self._lib.rv_jb_peek(self._jb, out)
        return None if length < 0 else ffi.buffer(out, length)[:]

    def insert_batch(
        self,
        seqs: ArrayLike,
        timestamps: ArrayLike,
        payloads: NDArray[np.uint8],
        lengths: ArrayLike,
        arrivals: ArrayLike,
    ) -> NDArray[np.int8]:
        """Insert ``n`` packets in one kernel call; ``payloads`` is ``n × stride``.

        Returns the per-packet result codes (``InsertResult`` values, -1 for too long).
        """
        seq_a = np.ascontiguousarray(seqs, dtype=np.uint16)
        ts_a = np.ascontiguousarray(timestamps, dtype=np.uint32)
        len_a = np.ascontiguousarray(lengths, dtype=np.uint16)
        arr_a = np.ascontiguousarray(arrivals, dtype=np.float64)
        pay = np.ascontiguousarray(payloads, dtype=np.uint8)
        n = seq_a.size
        stride = _check_inputs(
            n, (ts_a, len_a, arr_a), pay, len_a, "insert_batch arrays must have the same length"
        )
        results = np.empty(n, dtype=np.int8)
        if not self._cffi:
            core = self._core if self._core is not None else self._allocate()
            for i in range(n):
                results[i] = core.insert(
                    int(seq_a[i]), int(ts_a[i]), pay[i, : len_a[i]].tobytes(), float(arr_a[i])
                )
            return results
        jb = self.c_handle
        ffi, lib = kernel()
        lib.rv_jb_insert_batch(
            jb,
            n,
            ffi.from_buffer("uint16_t[]", seq_a),
            ffi.from_buffer("uint32_t[]", ts_a),
            ffi.from_buffer("uint8_t[]", pay),
            stride,
            ffi.from_buffer("uint16_t[]", len_a),
            ffi.from_buffer("double[]", arr_a),
            ffi.from_buffer("int8_t[]", results),
        )
        return results

    def pop_batch(
        self, n: int, stride: int = 320
    ) -> tuple[NDArray[np.int8], NDArray[np.uint8], NDArray[np.int32]]:
        """Pop ``n`` ticks in one kernel call: (statuses, payloads ``n × stride``, lengths)."""
        n = operator.index(n)
        stride = operator.index(stride)
        if n < 0 or stride < 0:
            raise ValueError("pop_batch needs n >= 0 and stride >= 0")
        statuses = np.empty(n, dtype=np.int8)
        out = np.zeros((n, stride), dtype=np.uint8)
        lens = np.zeros(n, dtype=np.int32)
        if not self._cffi:
            for i in range(n):
                status, data = self.pop()
                statuses[i] = status
                out[i, : len(data)] = np.frombuffer(data, dtype=np.uint8)
                lens[i] = len(data)
            return statuses, out, lens
        if stride < _py.JB_MAX_PAYLOAD and n:
            raise ValueError(f"stride must be at least {_py.JB_MAX_PAYLOAD} on the C kernel")
        ffi, lib = kernel()
        lib.rv_jb_pop_batch(
            self.c_handle,
            n,
            ffi.from_buffer("uint8_t[]", out),
            stride,
            ffi.from_buffer("int[]", lens),
            ffi.from_buffer("int8_t[]", statuses),
        )
        return statuses, out, lens

    def _get(self, name: str) -> int:
        source = self._jb if self._cffi else self._core
        if source is None:  # not allocated yet: the values of a fresh buffer
            source = _fresh(self.backend, self._params)
        return int(getattr(source, name))

    @property
    def target_frames(self) -> int:
        """Current adaptive target delay, in frames."""
        return self._get("target")

    @property
    def jitter(self) -> int:
        """RFC 3550 interarrival jitter estimate in timestamp units."""
        return self._get("jitter16") >> 4

    @property
    def buffered(self) -> int:
        """Packets held now."""
        return self._get("buffered")

    def delay_ms(self, clock_rate: int = 8000) -> float:
        """Playout delay added by the buffer (target frames × frame duration), ms."""
        return self.target_frames * self.samples_per_frame * 1000.0 / clock_rate

    def stats(self) -> JitterStats:
        """A snapshot of the counters."""
        source = self._jb if self._cffi else self._core
        if source is None:  # not allocated yet: the values of a fresh buffer
            source = _fresh(self.backend, self._params)
        s = source  # one attribute read per field (cffi struct or the Python core)
        return JitterStats(
            int(s.received),
            int(s.played),
            int(s.late),
            int(s.duplicate),
            int(s.dropped_overflow),
            int(s.dropped_adapt),
            int(s.concealed),
            int(s.buffered),
            int(s.target),
            int(s.jitter16) >> 4,
        )

    def reset(self) -> None:
        """Forget all packets, counters and estimates (e.g. on SSRC change)."""
        if self._core is not None:
            self._core.reset()
        elif self._jb is not None:
            self._lib.rv_jb_reset(self._jb)


_VALID_PARAMS: set[_Params] = set()
_EPOCH = [0]  # kernel states allocated so far (engines cache play handles against it)
_FRESH: dict[tuple[str, _Params], Any] = {}
_IDLE: list[Any] = []


def _fresh(backend: str, params: _Params) -> Any:
    """A never-used kernel state with these parameters (read-only: stats of a fresh buffer)."""
    key = (backend, params)
    state = _FRESH.get(key)
    if state is None:
        if backend == "cffi":
            ffi, lib = kernel()
            state = ffi.new("rv_jb_t *")
            lib.rv_jb_init(state, *params)
        else:
            state = _py.PyJitterCore(*params)
        _FRESH[key] = state
    return state


def allocation_epoch() -> int:
    """Changes whenever a buffer allocates its kernel state (see ``play_handles``)."""
    return _EPOCH[0]


def play_handles(buffers: Sequence[JitterBuffer]) -> KernelHandles | None:
    """Like ``make_handles`` but without allocating.

    A buffer that has received nothing yet gets a shared never-started state, which pops
    EMPTY and is never written.

    Valid until ``allocation_epoch()`` changes (a buffer then got its own state).
    """
    if not buffers or any(not b._cffi for b in buffers):
        return None
    ffi, lib = kernel()
    if not _IDLE:
        idle = ffi.new("rv_jb_t *")
        lib.rv_jb_init(idle, 2, 1, 1, 1, 1, 1)
        _IDLE.append(idle)
    idle = _IDLE[0]
    array = ffi.new("rv_jb_t *[]", [b._jb if b._jb is not None else idle for b in buffers])
    return KernelHandles(array, buffers, _EPOCH[0], shared_idle=True)


def pop_many(
    buffers: Sequence[JitterBuffer],
    out: NDArray[np.uint8],
    lengths: NDArray[np.int32],
    handles: KernelHandles | None = None,
) -> NDArray[np.int8]:
    """Pop one frame from each buffer (one kernel call when all are on the C kernel).

    ``out`` is uint8 ``len(buffers) × stride`` (stride ≥ 320 on the C kernel) and
    ``lengths`` C-int (int32) of ``len(buffers)``, both C-contiguous and writeable;
    returns the ``PopStatus`` values as int8. ``handles`` may pass a cached
    ``make_handles(buffers)`` to save rebuilding it every tick.

    Raises:
        TypeError: ``out``/``lengths`` of the wrong type or dtype.
        ValueError: wrong shapes, too few rows, strided or read-only arrays, or
            ``handles`` made for other buffers.
    """
    n = len(buffers)
    _check_out(out, "out", _U8, n, 2)
    _check_out(lengths, "lengths", _C_INT, n, 1)
    statuses = np.empty(n, dtype=np.int8)
    # Handles exist only for buffers all on the C kernel: checking them against the
    # buffers also answers which path to take (cheaper than asking every buffer).
    if handles is not None:
        handles.check(buffers, writing=False)
    elif n and all(b.backend == "cffi" for b in buffers):
        handles = _new_handles(buffers)
    if handles is not None and n:
        if out.shape[1] < _py.JB_MAX_PAYLOAD:
            raise ValueError(f"out stride must be at least {_py.JB_MAX_PAYLOAD}")
        ffi, lib = kernel()
        lib.rv_jb_pop_many(
            handles.array,
            n,
            ffi.from_buffer("uint8_t[]", out),
            out.shape[1],
            ffi.from_buffer("int[]", lengths),
            ffi.from_buffer("int8_t[]", statuses),
        )
        return statuses
    for i, buf in enumerate(buffers):
        status, data = buf.pop()
        statuses[i] = status
        lengths[i] = len(data)
        if data:
            out[i, : len(data)] = np.frombuffer(data, dtype=np.uint8)
    return statuses


def insert_many(
    buffers: Sequence[JitterBuffer],
    seqs: ArrayLike,
    timestamps: ArrayLike,
    payloads: NDArray[np.uint8],
    lengths: ArrayLike,
    arrivals: ArrayLike,
    handles: KernelHandles | None = None,
) -> NDArray[np.int8]:
    """Insert one packet into each buffer (one kernel call when all use the C kernel).

    Row i of ``payloads`` (``len(buffers) × stride``) and element i of the other arrays
    go to ``buffers[i]``; returns the result codes as in ``JitterBuffer.insert_batch``.
    """
    seq_a = np.ascontiguousarray(seqs, dtype=np.uint16)
    ts_a = np.ascontiguousarray(timestamps, dtype=np.uint32)
    len_a = np.ascontiguousarray(lengths, dtype=np.uint16)
    arr_a = np.ascontiguousarray(arrivals, dtype=np.float64)
    pay = np.ascontiguousarray(payloads, dtype=np.uint8)
    n = len(buffers)
    stride = _check_inputs(
        n,
        (seq_a, ts_a, len_a, arr_a),
        pay,
        len_a,
        "insert_many arrays must have one entry per buffer",
    )
    results = np.empty(n, dtype=np.int8)
    if handles is not None:
        handles.check(buffers, writing=True)
    elif n and all(b.backend == "cffi" for b in buffers):
        handles = _new_handles(buffers)
    if handles is not None and n:
        ffi, lib = kernel()
        lib.rv_jb_insert_many(
            handles.array,
            n,
            ffi.from_buffer("uint16_t[]", seq_a),
            ffi.from_buffer("uint32_t[]", ts_a),
            ffi.from_buffer("uint8_t[]", pay),
            stride,
            ffi.from_buffer("uint16_t[]", len_a),
            ffi.from_buffer("double[]", arr_a),
            ffi.from_buffer("int8_t[]", results),
        )
        return results
    for i, buf in enumerate(buffers):
        try:
            results[i] = buf.insert(
                int(seq_a[i]), int(ts_a[i]), pay[i, : len_a[i]].tobytes(), float(arr_a[i])
            )
        except ValueError:
            results[i] = -1
    return results


def make_handles(buffers: Sequence[JitterBuffer]) -> KernelHandles | None:
    """The kernel handles for ``pop_many``/``insert_many`` (None unless all use the C kernel).

    Allocates every buffer's state; valid for exactly these buffers, in this order.
    """
    if not buffers or any(b.backend != "cffi" for b in buffers):
        return None
    return _new_handles(buffers)


def _new_handles(buffers: Sequence[JitterBuffer]) -> KernelHandles:
    ffi, _lib = kernel()
    array = ffi.new("rv_jb_t *[]", [b.c_handle for b in buffers])
    return KernelHandles(array, buffers, _EPOCH[0], shared_idle=False)


class PlayBatch:
    """Pops one frame from each of a fixed list of buffers per call, into arrays it owns.

    The engine keeps one per stream group while the group is unchanged: the kernel
    handles, output arrays and their cffi views are built once, so a tick is one C call.
    ``valid`` turns False when a buffer of the list allocated its state since (its
    handle must then be taken again).
    """

    __slots__ = ("_args", "_handles", "buffers", "epoch", "lens", "out", "owner", "statuses")

    def __init__(
        self,
        buffers: Sequence[JitterBuffer],
        stride: int = _py.JB_MAX_PAYLOAD,
        owner: object = None,
    ) -> None:
        """Prepare for ``buffers`` (kept by reference; do not modify the list).

        ``owner`` is any object the caller wants to check identity against later.
        """
        n = len(buffers)
        if stride < _py.JB_MAX_PAYLOAD:
            # The kernel writes up to JB_MAX_PAYLOAD bytes per row: a narrower row would
            # make the last one overrun the array.
            raise ValueError(f"stride must be at least {_py.JB_MAX_PAYLOAD}")
        self.buffers = buffers
        self.owner = owner
        self.epoch = _EPOCH[0]
        self.out = np.zeros((n, stride), dtype=np.uint8)
        self.lens = np.zeros(n, dtype=np.int32)
        self.statuses = np.zeros(n, dtype=np.int8)
        self._handles = play_handles(buffers)
        self._args: tuple[Any, ...] | None = None
        if self._handles is not None:
            ffi, _lib = kernel()
            self._args = (
                self._handles.array,
                n,
                ffi.from_buffer("uint8_t[]", self.out),
                stride,
                ffi.from_buffer("int[]", self.lens),
                ffi.from_buffer("int8_t[]", self.statuses),
            )

    @property
    def valid(self) -> bool:
        """Whether the handles still match the buffers (no allocation since)."""
        return self.epoch == _EPOCH[0]

    def pop(self) -> None:
        """Pop one frame from every buffer into ``statuses``/``out``/``lens``.

        Stale bytes after ``lens[i]`` in a row are left as they were.
        """
        args = self._args
        if args is not None:
            kernel()[1].rv_jb_pop_many(*args)
            return
        out, lens, statuses = self.out, self.lens, self.statuses
        for i, buf in enumerate(self.buffers):
            status, data = buf.pop()
            statuses[i] = status
            lens[i] = len(data)
            if data:
                out[i, : len(data)] = np.frombuffer(data, dtype=np.uint8)
