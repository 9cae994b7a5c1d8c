"""RTCP packets (RFC 3550 §6.4-6.7, RFC 4585 feedback): parse and build compound packets."""

from __future__ import annotations

import struct
from collections.abc import Iterable

import attrs

from ._errors import RtpParseError
from ._rtcp_xr import RTCP_XR, RtcpExtendedReport, parse_xr

__all__ = [
    "RTCP_APP",
    "RTCP_BYE",
    "RTCP_PSFB",
    "RTCP_RR",
    "RTCP_RTPFB",
    "RTCP_SDES",
    "RTCP_SR",
    "SDES_CNAME",
    "SDES_EMAIL",
    "SDES_LOC",
    "SDES_NAME",
    "SDES_NOTE",
    "SDES_PHONE",
    "SDES_PRIV",
    "SDES_TOOL",
    "ReportBlock",
    "RtcpApp",
    "RtcpBye",
    "RtcpFeedback",
    "RtcpPacket",
    "RtcpReceiverReport",
    "RtcpSenderReport",
    "RtcpSourceDescription",
    "RtcpUnknown",
    "SdesChunk",
    "SdesItem",
    "encode_rtcp",
    "parse_rtcp",
]

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204
RTCP_RTPFB = 205
RTCP_PSFB = 206

SDES_CNAME = 1
SDES_NAME = 2
SDES_EMAIL = 3
SDES_PHONE = 4
SDES_LOC = 5
SDES_TOOL = 6
SDES_NOTE = 7
SDES_PRIV = 8

_HDR = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IIIIII")
_SR = struct.Struct("!IQIII")
_U32 = struct.Struct("!I")
_U32X2 = struct.Struct("!II")


@attrs.frozen
class ReportBlock:
    """A reception report block (RFC 3550 §6.4.1) about one source."""

    ssrc: int
    fraction_lost: int  # 8-bit fixed point, lost/expected * 256
    cumulative_lost: int  # signed 24-bit
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # interarrival jitter, RTP timestamp units
    lsr: int  # middle 32 bits of the last SR's NTP timestamp
    dlsr: int  # delay since that SR, 1/65536 s

    def encode(self) -> bytes:
        """Serialize the 24-byte block; the cumulative loss is clamped to 24 bits signed."""
        # RFC 3550 A.3: clamp to the representable range.
        lost = max(-0x800000, min(0x7FFFFF, self.cumulative_lost)) & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc,
            (self.fraction_lost << 24) | lost,
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


def _parse_blocks(body: bytes, pos: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for _ in range(count):
        ssrc, word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(body, pos)
        lost = word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        blocks.append(ReportBlock(ssrc, word >> 24, lost, highest, jitter, lsr, dlsr))
        pos += 24
    return tuple(blocks)


def _packet(count: int, packet_type: int, body: bytes) -> bytes:
    """Common header plus body; a body that is not word-aligned is padded (RFC 3550 §6.4.1).

    The parser strips padding and keeps the unaligned rest (an unknown packet type, APP data,
    a feedback FCI), so re-encoding what it returned must pad again rather than refuse.
    """
    if not 0 <= count <= 31:
        raise ValueError(f"RTCP count {count} does not fit in 5 bits")
    pad = -len(body) % 4
    if pad:
        # The last padding octet counts the padding octets, itself included.
        body = body + bytes(pad - 1) + bytes((pad,))
        return _HDR.pack(0xA0 | count, packet_type, len(body) // 4) + body
    return _HDR.pack(0x80 | count, packet_type, len(body) // 4) + body


@attrs.frozen
class RtcpSenderReport:
    """Sender report (RFC 3550 §6.4.1)."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def encode(self) -> bytes:
        """Serialize to wire bytes."""
        body = b"".join(
            (
                _SR.pack(
                    self.ssrc,
                    self.ntp_timestamp,
                    self.rtp_timestamp,
                    self.packet_count,
                    self.octet_count,
                ),
                *(r.encode() for r in self.reports),
                self.extension,
            )
        )
        return _packet(len(self.reports), RTCP_SR, body)

    def __bytes__(self) -> bytes:
        return self.encode()


@attrs.frozen
class RtcpReceiverReport:
    """Receiver report (RFC 3550 §6.4.2)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def encode(self) -> bytes:
        """Serialize to wire bytes."""
        body = b"".join((_U32.pack(self.ssrc), *(r.encode() for r in self.reports), self.extension))
        return _packet(len(self.reports), RTCP_RR, body)

    def __bytes__(self) -> bytes:
        return self.encode()


@attrs.frozen
class SdesItem:
    """One SDES item (RFC 3550 §6.5): a type (CNAME = 1, ...) and up to 255 octets."""

    type: int
    value: bytes


@attrs.frozen
class SdesChunk:
    """The SDES items of one source."""

    ssrc: int
    items: tuple[SdesItem, ...] = ()

    def encode(self) -> bytes:
        """Serialize: SSRC, items, a terminating null octet, padding to 32 bits."""
        out = bytearray(_U32.pack(self.ssrc))
        for item in self.items:
            if not 1 <= item.type <= 255 or len(item.value) > 255:
                raise ValueError(f"SDES item type {item.type} / length {len(item.value)} invalid")
            out.append(item.type)
            out.append(len(item.value))
            out += item.value
        out.append(0)
        out += bytes(-len(out) % 4)
        return bytes(out)


@attrs.frozen
class RtcpSourceDescription:
    """Source description (SDES, RFC 3550 §6.5)."""

    chunks: tuple[SdesChunk, ...] = ()

    def encode(self) -> bytes:
        """Serialize to wire bytes."""
        body = b"".join(c.encode() for c in self.chunks)
        return _packet(len(self.chunks), RTCP_SDES, body)

    def __bytes__(self) -> bytes:
        return self.encode()


@attrs.frozen
class RtcpBye:
    """Goodbye (RFC 3550 §6.6), with an optional reason."""

    sources: tuple[int, ...] = ()
    reason: bytes | None = None

    def encode(self) -> bytes:
        """Serialize to wire bytes."""
        out = bytearray(b"".join(_U32.pack(s) for s in self.sources))
        if self.reason is not None:
            if len(self.reason) > 255:
                raise ValueError("BYE reason longer than 255 octets")
            out.append(len(self.reason))
            out += self.reason
            out += bytes(-len(out) % 4)
        body = bytes(out)
        return _packet(len(self.sources), RTCP_BYE, body)

    def __bytes__(self) -> bytes:
        return self.encode()


@attrs.frozen
class RtcpApp:
    """Application-defined packet (RFC 3550 §6.7)."""

    subtype: int
    ssrc: int
    name: bytes
    data: bytes = b""

    def encode(self) -> bytes:
        """Serialize to wire bytes."""
        if len(self.name) != 4:
            raise ValueError("APP name must be 4 octets")
        body = _U32.pack(self.ssrc) + self.name + self.data
        return _packet(self.subtype, RTCP_APP, body)

    def __bytes__(self) -> bytes:
        return self.encode()


@attrs.frozen
class RtcpFeedback:
    """Transport-layer (RTPFB, 205) or payload-specific (PSFB, 206) feedback (RFC 4585 §6.1)."""

    packet_type: int
    fmt: int
    sender_ssrc: int
    media_ssrc: int
    fci: bytes = b""

    def encode(self) -> bytes:
        """Serialize to wire bytes."""
        body = _U32X2.pack(self.sender_ssrc, self.media_ssrc) + self.fci
        return _packet(self.fmt, self.packet_type, body)

    def __bytes__(self) -> bytes:
        return self.encode()


@attrs.frozen
class RtcpUnknown:
    """An RTCP packet of a type this package does not interpret, kept raw (padding removed)."""

    packet_type: int
    count: int
    body: bytes = b""

    def encode(self) -> bytes:
        """Serialize to wire bytes."""
        return _packet(self.count, self.packet_type, self.body)

    def __bytes__(self) -> bytes:
        return self.encode()


RtcpPacket = (
    RtcpSenderReport
    | RtcpReceiverReport
    | RtcpSourceDescription
    | RtcpBye
    | RtcpApp
    | RtcpFeedback
    | RtcpExtendedReport
    | RtcpUnknown
)


def _parse_sdes(count: int, body: bytes) -> RtcpSourceDescription:
    chunks = []
    pos = 0
    n = len(body)
    for _ in range(count):
        if pos + 4 > n:
            raise RtpParseError("RTCP SDES source is truncated")
        (ssrc,) = _U32.unpack_from(body, pos)
        pos += 4
        items = []
        while pos < n:
            item_type = body[pos]
            if item_type == 0:
                # RFC 3550 §6.5: a null octet ends the list; pad to the next 32-bit boundary.
                pos += 4 - pos % 4
                break
            if pos + 2 > n:
                raise RtpParseError("RTCP SDES item is truncated")
            length = body[pos + 1]
            end = pos + 2 + length
            if end > n:
                raise RtpParseError("RTCP SDES item is truncated")
            items.append(SdesItem(item_type, body[pos + 2 : end]))
            pos = end
        chunks.append(SdesChunk(ssrc, tuple(items)))
    return RtcpSourceDescription(tuple(chunks))


def _parse_bye(count: int, body: bytes) -> RtcpBye:
    if len(body) < 4 * count:
        raise RtpParseError("RTCP bye length is invalid")
    sources = tuple(_U32.unpack_from(body, 4 * i)[0] for i in range(count))
    pos = 4 * count
    reason = None
    if pos < len(body):
        length = body[pos]
        if pos + 1 + length > len(body):
            raise RtpParseError("RTCP bye reason is truncated")
        reason = body[pos + 1 : pos + 1 + length]
    return RtcpBye(sources, reason)


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == RTCP_SR:
        if len(body) < 24 + 24 * count:
            raise RtpParseError("RTCP sender report length is invalid")
        ssrc, ntp, rtp_ts, packets, octets = _SR.unpack_from(body)
        return RtcpSenderReport(
            ssrc,
            ntp,
            rtp_ts,
            packets,
            octets,
            _parse_blocks(body, 24, count),
            body[24 + 24 * count :],
        )
    if packet_type == RTCP_RR:
        if len(body) < 4 + 24 * count:
            raise RtpParseError("RTCP receiver report length is invalid")
        (ssrc,) = _U32.unpack_from(body)
        return RtcpReceiverReport(ssrc, _parse_blocks(body, 4, count), body[4 + 24 * count :])
    if packet_type == RTCP_SDES:
        return _parse_sdes(count, body)
    if packet_type == RTCP_BYE:
        return _parse_bye(count, body)
    if packet_type == RTCP_APP:
        if len(body) < 8:
            raise RtpParseError("RTCP app length is invalid")
        (ssrc,) = _U32.unpack_from(body)
        return RtcpApp(count, ssrc, body[4:8], body[8:])
    if packet_type in (RTCP_RTPFB, RTCP_PSFB):
        if len(body) < 8:
            kind = "RTP" if packet_type == RTCP_RTPFB else "payload-specific"
            raise RtpParseError(f"RTCP {kind} feedback length is invalid")
        sender, media = _U32X2.unpack_from(body)
        return RtcpFeedback(packet_type, count, sender, media, body[8:])
    if packet_type == RTCP_XR:
        return parse_xr(body)
    return RtcpUnknown(packet_type, count, body)


def parse_rtcp(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Parse a (compound) RTCP datagram; raises only :class:`RtpParseError`."""
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    if n == 0:
        raise RtpParseError("RTCP datagram is empty")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < n:
        if pos + 4 > n:
            raise RtpParseError("RTCP header is truncated")
        b0, packet_type, words = _HDR.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise RtpParseError(f"RTCP version is {b0 >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > n:
            raise RtpParseError("RTCP packet length exceeds the datagram")
        body = data[pos + 4 : end]
        if b0 & 0x20:
            # RFC 3550 §6.4.1: the last octet counts the padding octets, itself included.
            if not body or body[-1] == 0 or body[-1] > len(body):
                raise RtpParseError("RTCP padding count is invalid")
            body = body[: -body[-1]]
        packets.append(_parse_one(packet_type, b0 & 0x1F, body))
        pos = end
    return packets


def encode_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """Serialize packets into one compound RTCP datagram."""
    return b"".join(p.encode() for p in packets)
