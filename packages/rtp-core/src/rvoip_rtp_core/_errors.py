"""The rvoip_rtp_core error hierarchy: one base, one parse error for wire bytes."""

from __future__ import annotations

__all__ = [
    "PortsExhaustedError",
    "RtpError",
    "RtpParseError",
    "RtpSessionClosedError",
    "SrtpError",
]


class RtpError(Exception):
    """Base of every error raised by rvoip_rtp_core."""


class RtpParseError(RtpError, ValueError):
    """Wire bytes are not a valid RTP/RTCP/telephone-event packet (the only parser error)."""


class PortsExhaustedError(RtpError):
    """The port allocator has no free even port left in its range."""


class SrtpError(RtpError):
    """SRTP/SRTCP protection failed (bad key, authentication failure, replay)."""


class RtpSessionClosedError(RtpError):
    """The RTP session is closed: nothing can be sent or received any more."""
