"""Pure-Python jitter buffer core: the oracle and fallback of ``_kernel/jitter.c``.

Every branch mirrors the C code (same names, same order), so both backends give
identical results for identical packet streams; the property tests check that.
"""

from __future__ import annotations

import math

import attrs

JB_MAX_SLOTS = 64
JB_MAX_PAYLOAD = 320
JB_OK, JB_LATE, JB_DUPLICATE, JB_INVALID = 0, 1, 2, -1
JB_FRAME, JB_LOST, JB_EMPTY = 0, 1, 2
JB_ADAPT_SLACK = 2  # frames above target before playout skips one
JB_JITTER_MULT = 3  # target covers 3x the RFC 3550 jitter estimate


def validate_params(
    capacity: int,
    max_payload: int,
    samples_per_frame: int,
    clock_rate: int,
    min_frames: int,
    max_frames: int,
) -> None:
    """Raise ValueError for parameters the kernel would refuse."""
    if not 2 <= capacity <= JB_MAX_SLOTS:
        raise ValueError(f"capacity must be 2..{JB_MAX_SLOTS}, got {capacity}")
    if not 1 <= max_payload <= JB_MAX_PAYLOAD:
        raise ValueError(f"max_payload must be 1..{JB_MAX_PAYLOAD}, got {max_payload}")
    if samples_per_frame < 1 or clock_rate < 1:
        raise ValueError("samples_per_frame and clock_rate must be positive")
    if not 1 <= min_frames <= max_frames < capacity:
        raise ValueError(
            f"need 1 <= min_frames <= max_frames < capacity, got "
            f"{min_frames}, {max_frames}, {capacity}"
        )


@attrs.define(eq=False)
class PyJitterCore:
    """State and operations of one jitter buffer (mirrors ``rv_jb_t``)."""

    capacity: int
    max_payload: int
    samples_per_frame: int
    clock_rate: int
    min_frames: int
    max_frames: int
    target: int = 0
    started: int = 0
    playing: int = 0
    have_transit: int = 0
    buffered: int = 0
    advanced: int = 0
    next_ext: int = 0
    max_ext: int = 0
    last_transit: int = 0
    jitter16: int = 0
    received: int = 0
    played: int = 0
    late: int = 0
    duplicate: int = 0
    dropped_overflow: int = 0
    dropped_adapt: int = 0
    concealed: int = 0
    slot_ext: list[int] = attrs.field(factory=list)
    slot_ts: list[int] = attrs.field(factory=list)
    slot_data: list[bytes] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        validate_params(
            self.capacity,
            self.max_payload,
            self.samples_per_frame,
            self.clock_rate,
            self.min_frames,
            self.max_frames,
        )
        self.reset()

    def _update_target(self) -> None:
        j = self.jitter16 >> 4  # RFC 3550 A.8: reported jitter = jitter >> 4
        spf = self.samples_per_frame
        t = 1 + (JB_JITTER_MULT * j + spf - 1) // spf
        self.target = min(max(t, self.min_frames), self.max_frames)

    def reset(self) -> None:
        """Forget all packets, counters and estimates."""
        self.started = self.playing = self.have_transit = self.buffered = 0
        self.next_ext = self.max_ext = self.last_transit = self.jitter16 = 0
        self.advanced = 0
        self.received = self.played = self.late = self.duplicate = 0
        self.dropped_overflow = self.dropped_adapt = self.concealed = 0
        self.slot_ext = [-1] * JB_MAX_SLOTS
        self.slot_ts = [0] * JB_MAX_SLOTS
        self.slot_data = [b""] * JB_MAX_SLOTS
        self._update_target()

    def insert(self, seq: int, ts: int, payload: bytes, arrival: float) -> int:
        """Insert one packet; returns JB_OK, JB_LATE, JB_DUPLICATE or JB_INVALID."""
        if len(payload) > self.max_payload:
            return JB_INVALID
        self.received += 1
        seq &= 0xFFFF
        ts &= 0xFFFFFFFF
        if not self.started:
            ext = seq + 65536
            self.started = 1
            self.next_ext = ext
            self.max_ext = ext
        else:
            # RFC 3550 A.1 idea: place seq nearest to the highest seen (16-bit wrap).
            delta = (seq - self.max_ext) & 0xFFFF
            ext = self.max_ext + (delta - 0x10000 if delta >= 0x8000 else delta)
        cap = self.capacity
        if ext < self.next_ext:
            if self.advanced or self.max_ext - ext >= cap:
                self.late += 1
                return JB_LATE
            self.next_ext = ext
        idx = ext % cap
        if self.slot_ext[idx] == ext:
            self.duplicate += 1
            return JB_DUPLICATE
        if ext - self.next_ext >= cap:
            floor_ext = ext - cap + 1
            lowest = ext
            for i in range(cap):
                e = self.slot_ext[i]
                if e < 0:
                    continue
                if e < floor_ext:
                    self.slot_ext[i] = -1
                    self.buffered -= 1
                    self.dropped_overflow += 1
                elif e < lowest:
                    lowest = e
            self.next_ext = lowest
            self.advanced = 1
        self.slot_ext[idx] = ext
        self.slot_ts[idx] = ts
        self.slot_data[idx] = bytes(payload)
        self.buffered += 1
        if ext > self.max_ext:
            self.max_ext = ext
        # RFC 3550 A.8: interarrival jitter in timestamp units, integer form.
        arrival_ts = math.floor(arrival * float(self.clock_rate)) & 0xFFFFFFFF
        transit = (arrival_ts - ts) & 0xFFFFFFFF
        if self.have_transit:
            d = (transit - self.last_transit) & 0xFFFFFFFF
            d = abs(d - 0x100000000 if d >= 0x80000000 else d)
            self.jitter16 += d - ((self.jitter16 + 8) >> 4)
            self._update_target()
        self.have_transit = 1
        self.last_transit = transit
        return JB_OK

    def peek(self) -> bytes | None:
        """The payload the next ``pop`` will play, if it has arrived (``rv_jb_peek``)."""
        if not self.started:
            return None
        idx = self.next_ext % self.capacity
        if self.slot_ext[idx] != self.next_ext:
            return None
        return self.slot_data[idx]

    def pop(self) -> tuple[int, bytes, int]:
        """Play one frame: (JB_FRAME, payload, ts), (JB_LOST, b"", 0) or (JB_EMPTY, b"", 0)."""
        if not self.started:
            return JB_EMPTY, b"", 0
        cap = self.capacity
        if not self.playing:
            if self.buffered > 0 and self.max_ext - self.next_ext + 1 >= self.target:
                self.playing = 1
            else:
                return JB_EMPTY, b"", 0
        if self.max_ext - self.next_ext + 1 > self.target + JB_ADAPT_SLACK:
            idx = self.next_ext % cap
            if self.slot_ext[idx] == self.next_ext:
                self.slot_ext[idx] = -1
                self.buffered -= 1
                self.dropped_adapt += 1
            self.next_ext += 1
            self.advanced = 1
        if self.buffered == 0:
            self.playing = 0  # underrun: re-buffer up to the target
            return JB_EMPTY, b"", 0
        idx = self.next_ext % cap
        self.next_ext += 1
        self.advanced = 1
        if self.slot_ext[idx] == self.next_ext - 1:
            self.slot_ext[idx] = -1
            self.buffered -= 1
            self.played += 1
            return JB_FRAME, self.slot_data[idx], self.slot_ts[idx]
        self.concealed += 1
        return JB_LOST, b"", 0
