"""Wrap-around arithmetic for 16-bit sequence numbers and 32-bit timestamps, NTP helpers."""

from __future__ import annotations

__all__ = [
    "NTP_EPOCH_OFFSET",
    "ntp_from_time",
    "ntp_middle32",
    "ntp_to_time",
    "seq_add",
    "seq_diff",
    "seq_gt",
    "seq_lt",
    "ts_add",
    "ts_diff",
    "ts_gt",
    "ts_lt",
]

# Seconds between the NTP epoch (1900-01-01) and the Unix epoch (1970-01-01).
NTP_EPOCH_OFFSET = 2208988800


def seq_add(seq: int, delta: int) -> int:
    """Return ``seq + delta`` modulo 2**16."""
    return (seq + delta) & 0xFFFF


def seq_diff(a: int, b: int) -> int:
    """Return the signed distance ``a - b`` in [-32768, 32767], taking the wrap into account."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def seq_lt(a: int, b: int) -> bool:
    """Whether sequence number ``a`` comes before ``b`` (modulo 2**16)."""
    return seq_diff(a, b) < 0


def seq_gt(a: int, b: int) -> bool:
    """Whether sequence number ``a`` comes after ``b`` (modulo 2**16)."""
    return seq_diff(a, b) > 0


def ts_add(ts: int, delta: int) -> int:
    """Return ``ts + delta`` modulo 2**32."""
    return (ts + delta) & 0xFFFFFFFF


def ts_diff(a: int, b: int) -> int:
    """Return the signed distance ``a - b`` in [-2**31, 2**31 - 1], taking the wrap into account."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


def ts_lt(a: int, b: int) -> bool:
    """Whether timestamp ``a`` comes before ``b`` (modulo 2**32)."""
    return ts_diff(a, b) < 0


def ts_gt(a: int, b: int) -> bool:
    """Whether timestamp ``a`` comes after ``b`` (modulo 2**32)."""
    return ts_diff(a, b) > 0


def ntp_from_time(t: float) -> int:
    """Convert Unix time in seconds to a 64-bit NTP timestamp (RFC 3550 §4)."""
    seconds = int(t)
    fraction = int((t - seconds) * 4294967296.0) & 0xFFFFFFFF
    return (((seconds + NTP_EPOCH_OFFSET) & 0xFFFFFFFF) << 32) | fraction


def ntp_to_time(ntp: int) -> float:
    """Convert a 64-bit NTP timestamp to Unix time in seconds."""
    return (ntp >> 32) - NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / 4294967296.0


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as used by LSR/DLSR (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF
