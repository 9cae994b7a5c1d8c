"""Adaptive jitter buffer: insert RTP payloads by sequence number, pop one frame per tick.

The hot path is in the C kernel (``_kernel/jitter.c``); ``_jitter_py.PyJitterCore`` is
its pure-Python twin (fallback and test oracle). Both give identical results.
"""

from __future__ import annotations

import enum
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
_EMPTY_RESULT = (PopStatus.EMPTY, b"")


@attrs.frozen
class JitterStats:
    """Counters of a jitter buffer. Every received packet is in exactly one of
    played, late, duplicate, dropped_overflow, dropped_adapt or buffered."""

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


_FIELDS = (
    "received",
    "played",
    "late",
    "duplicate",
    "dropped_overflow",
    "dropped_adapt",
    "concealed",
    "buffered",
)


class JitterBuffer:
    """One stream's jitter buffer with an adaptive target delay.

    The target delay is ``1 + ceil(3 × jitter / frame)`` frames, bounded by
    ``min_frames``/``max_frames``; when the buffered span exceeds the target by
    more than 2 frames, playout skips a frame to shrink the delay.
    """

    __slots__ = (
        "_core",
        "_ffi",
        "_jb",
        "_len",
        "_lib",
        "_out",
        "_ts",
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
        _py.validate_params(
            capacity, max_payload, samples_per_frame, clock_rate, min_frames, max_frames
        )
        self.backend = backend or BACKEND
        if self.backend not in ("cffi", "numpy"):
            raise ValueError(f"unknown backend {self.backend!r}")
        self.samples_per_frame = samples_per_frame
        self._core: _py.PyJitterCore | None = None
        self._jb: Any = None
        if self.backend == "cffi":
            ffi, lib = kernel()
            self._ffi, self._lib = ffi, lib
            self._jb = ffi.new("rv_jb_t *")
            lib.rv_jb_init(
                self._jb,
                capacity,
                max_payload,
                samples_per_frame,
                clock_rate,
                min_frames,
                max_frames,
            )
            self._out = ffi.new("uint8_t[]", _py.JB_MAX_PAYLOAD)
            self._len = ffi.new("int *")
            self._ts = ffi.new("uint32_t *")
        else:
            self._core = _py.PyJitterCore(
                capacity, max_payload, samples_per_frame, clock_rate, min_frames, max_frames
            )

    @property
    def c_handle(self) -> Any:
        """The kernel's ``rv_jb_t *`` (cffi backend only), for batch calls."""
        return self._jb

    def insert(self, seq: int, timestamp: int, payload: bytes, arrival: float) -> InsertResult:
        """Insert one RTP payload; ``arrival`` is the receive time in seconds.

        Raises:
            ValueError: the payload is longer than ``max_payload``.
        """
        if self._core is not None:
            code = self._core.insert(seq, timestamp, payload, arrival)
        else:
            if type(payload) is not bytes:
                payload = bytes(payload)
            code = self._lib.rv_jb_insert(
                self._jb, seq & 0xFFFF, timestamp & 0xFFFFFFFF, payload, len(payload), arrival
            )
        if code < 0:
            raise ValueError(f"payload of {len(payload)} bytes exceeds max_payload")
        return _INSERT[code]

    def pop(self) -> tuple[PopStatus, bytes]:
        """Play one frame (call once per packet time)."""
        if self._core is not None:
            status, data, _ts = self._core.pop()
            return _POP[status], data
        status = self._lib.rv_jb_pop(self._jb, self._out, self._len, self._ts)
        if status == _py.JB_FRAME:
            return PopStatus.FRAME, self._ffi.buffer(self._out, self._len[0])[:]
        return _LOST_RESULT if status == _py.JB_LOST else _EMPTY_RESULT

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
        if not (ts_a.size == len_a.size == arr_a.size == n and pay.shape[0] == n):
            raise ValueError("insert_batch arrays must have the same length")
        stride = pay.shape[1] if pay.ndim == 2 else 0
        if n and int(len_a.max()) > stride:
            raise ValueError("a length exceeds the payload stride")
        results = np.empty(n, dtype=np.int8)
        if self._core is not None:
            for i in range(n):
                results[i] = self._core.insert(
                    int(seq_a[i]), int(ts_a[i]), pay[i, : len_a[i]].tobytes(), float(arr_a[i])
                )
            return results
        self._lib.rv_jb_insert_batch(
            self._jb,
            n,
            self._ffi.from_buffer("uint16_t[]", seq_a),
            self._ffi.from_buffer("uint32_t[]", ts_a),
            self._ffi.from_buffer("uint8_t[]", pay),
            stride,
            self._ffi.from_buffer("uint16_t[]", len_a),
            self._ffi.from_buffer("double[]", arr_a),
            self._ffi.from_buffer("int8_t[]", results),
        )
        return results

    def pop_batch(
        self, n: int, stride: int = 320
    ) -> tuple[NDArray[np.int8], NDArray[np.uint8], NDArray[np.int32]]:
        """Pop ``n`` ticks in one kernel call: (statuses, payloads ``n × stride``, lengths)."""
        statuses = np.empty(n, dtype=np.int8)
        out = np.zeros((n, stride), dtype=np.uint8)
        lens = np.zeros(n, dtype=np.int32)
        if self._core is not None:
            for i in range(n):
                status, data, _ts = self._core.pop()
                statuses[i] = status
                out[i, : len(data)] = np.frombuffer(data, dtype=np.uint8)
                lens[i] = len(data)
            return statuses, out, lens
        if stride < _py.JB_MAX_PAYLOAD and n:
            raise ValueError(f"stride must be at least {_py.JB_MAX_PAYLOAD} on the C kernel")
        self._lib.rv_jb_pop_batch(
            self._jb,
            n,
            self._ffi.from_buffer("uint8_t[]", out),
            stride,
            self._ffi.from_buffer("int[]", lens),
            self._ffi.from_buffer("int8_t[]", statuses),
        )
        return statuses, out, lens

    def _get(self, name: str) -> int:
        source = self._core if self._core is not None else self._jb
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
        values = {name: self._get(name) for name in _FIELDS}
        return JitterStats(**values, target_frames=self.target_frames, jitter=self.jitter)

    def reset(self) -> None:
        """Forget all packets, counters and estimates (e.g. on SSRC change)."""
        if self._core is not None:
            self._core.reset()
        else:
            self._lib.rv_jb_reset(self._jb)


def pop_many(
    buffers: Sequence[JitterBuffer],
    out: NDArray[np.uint8],
    lengths: NDArray[np.int32],
    handles: Any = None,
) -> NDArray[np.int8]:
    """Pop one frame from each buffer (one kernel call when all are on the C kernel).

    ``out`` is ``len(buffers) × stride`` (stride ≥ 320 on the C kernel) and ``lengths``
    int32 of ``len(buffers)``; returns the ``PopStatus`` values as int8. ``handles``
    may pass a cached ``make_handles(buffers)`` to save rebuilding it every tick.
    """
    n = len(buffers)
    statuses = np.empty(n, dtype=np.int8)
    if n and all(b.backend == "cffi" for b in buffers):
        if out.shape[1] < _py.JB_MAX_PAYLOAD:
            raise ValueError(f"out stride must be at least {_py.JB_MAX_PAYLOAD}")
        if handles is None:
            handles = make_handles(buffers)
        ffi, lib = kernel()
        lib.rv_jb_pop_many(
            handles,
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
    handles: Any = None,
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
    if not (seq_a.size == ts_a.size == len_a.size == arr_a.size == pay.shape[0] == n):
        raise ValueError("insert_many arrays must have one entry per buffer")
    stride = pay.shape[1] if pay.ndim == 2 else 0
    if n and int(len_a.max()) > stride:
        raise ValueError("a length exceeds the payload stride")
    results = np.empty(n, dtype=np.int8)
    if n and all(b.backend == "cffi" for b in buffers):
        if handles is None:
            handles = make_handles(buffers)
        ffi, lib = kernel()
        lib.rv_jb_insert_many(
            handles,
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


def make_handles(buffers: Sequence[JitterBuffer]) -> Any:
    """The C array of kernel handles for ``pop_many`` (None unless all use the C kernel)."""
    if not buffers or any(b.backend != "cffi" for b in buffers):
        return None
    ffi, _lib = kernel()
    return ffi.new("rv_jb_t *[]", [b.c_handle for b in buffers])
