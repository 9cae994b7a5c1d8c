"""RTCP Extended Reports (RFC 3611): the packet and its VoIP Metrics block (§4.7)."""

from __future__ import annotations

import struct

import attrs

from ._errors import RtpParseError

__all__ = ["RTCP_XR", "XR_VOIP_METRICS", "RtcpExtendedReport", "XrBlock", "XrVoipMetrics"]

RTCP_XR = 207
XR_VOIP_METRICS = 7

_U32 = struct.Struct("!I")
_BLOCK_HDR = struct.Struct("!BBH")
# RFC 3611 §4.7: SSRC, loss/discard/burst/gap densities, burst/gap durations, RTT and
# end-system delay, signal/noise levels (signed dBm), RERL, Gmin, R, ext R, MOS-LQ,
# MOS-CQ, RX config, reserved, JB nominal, JB maximum, JB abs max.
_VOIP = struct.Struct("!IBBBBHHHHbbBBBBBBBBHHH")


@attrs.frozen
class XrVoipMetrics:
    """VoIP Metrics report block (RFC 3611 §4.7); fields in the RFC's wire units."""

    ssrc: int
    loss_rate: int = 0  # fraction lost * 256
    discard_rate: int = 0
    burst_density: int = 0
    gap_density: int = 0
    burst_duration: int = 0  # ms
    gap_duration: int = 0  # ms
    round_trip_delay: int = 0  # ms
    end_system_delay: int = 0  # ms
    signal_level: int = 127  # dBm, 127 = unavailable
    noise_level: int = 127
    rerl: int = 127
    gmin: int = 16
    r_factor: int = 127  # 127 = unavailable
    ext_r_factor: int = 127
    mos_lq: int = 127  # MOS * 10, 127 = unavailable
    mos_cq: int = 127
    rx_config: int = 0
    jb_nominal: int = 0  # ms
    jb_maximum: int = 0
    jb_abs_max: int = 0

    def encode(self) -> bytes:
        """Serialize the 36-byte block."""
        values = attrs.astuple(self)
        body = _VOIP.pack(*values[:18], 0, *values[18:])  # reserved octet after RX config
        return _BLOCK_HDR.pack(XR_VOIP_METRICS, 0, len(body) // 4) + body


@attrs.frozen
class XrBlock:
    """An XR report block of a type not interpreted here, kept raw."""

    block_type: int
    type_specific: int
    data: bytes = b""

    def encode(self) -> bytes:
        """Serialize: block header and the raw 32-bit-aligned contents."""
        if len(self.data) % 4:
            raise ValueError("XR block contents must be a multiple of 4 bytes")
        return _BLOCK_HDR.pack(self.block_type, self.type_specific, len(self.data) // 4) + self.data


@attrs.frozen
class RtcpExtendedReport:
    """Extended report packet (RFC 3611 §2): a sender SSRC and report blocks."""

    ssrc: int
    blocks: tuple[XrVoipMetrics | XrBlock, ...] = ()

    def encode(self) -> bytes:
        """Serialize to wire bytes."""
        body = _U32.pack(self.ssrc) + b"".join(b.encode() for b in self.blocks)
        return _BLOCK_HDR.pack(0x80, RTCP_XR, len(body) // 4) + body

    def __bytes__(self) -> bytes:
        return self.encode()


def parse_xr(body: bytes) -> RtcpExtendedReport:
    """Parse the body of an XR packet (after the common header, padding removed)."""
    if len(body) < 4:
        raise RtpParseError("RTCP XR length is invalid")
    (ssrc,) = _U32.unpack_from(body)
    blocks: list[XrVoipMetrics | XrBlock] = []
    pos = 4
    n = len(body)
    while pos < n:
        if pos + 4 > n:
            raise RtpParseError("RTCP XR block header is truncated")
        block_type, specific, words = _BLOCK_HDR.unpack_from(body, pos)
        end = pos + 4 + 4 * words
        if end > n:
            raise RtpParseError("RTCP XR block is truncated")
        data = body[pos + 4 : end]
        if block_type == XR_VOIP_METRICS:
            if len(data) != _VOIP.size:
                raise RtpParseError("RTCP XR VoIP metrics block length is invalid")
            values = _VOIP.unpack(data)
            blocks.append(XrVoipMetrics(*values[:18], *values[19:]))
        else:
            blocks.append(XrBlock(block_type, specific, data))
        pos = end
    return RtcpExtendedReport(ssrc, tuple(blocks))
