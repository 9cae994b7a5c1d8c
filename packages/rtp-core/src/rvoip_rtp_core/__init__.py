"""rvoip_rtp_core: RTP/RTCP packets and sessions, RFC 3550 statistics, RFC 4733 events, SRTP."""

__version__ = "0.1.0"

__all__ = ["__version__"]
