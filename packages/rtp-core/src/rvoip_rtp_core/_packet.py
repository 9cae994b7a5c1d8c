"""RTP packets (RFC 3550 §5.1) with RFC 8285 header extensions: parse and build."""

from __future__ import annotations

import struct

import attrs

from ._errors import RtpParseError

__all__ = [
    "EXTENSION_PROFILE_ONE_BYTE",
    "EXTENSION_PROFILE_TWO_BYTE",
    "HeaderExtension",
    "RtpPacket",
    "encode_rtp",
    "is_rtcp",
]

# RFC 8285 §4.2 / §4.3: the "defined by profile" values of the two general mechanisms.
EXTENSION_PROFILE_ONE_BYTE = 0xBEDE
EXTENSION_PROFILE_TWO_BYTE = 0x1000

_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")
_CSRC = tuple(struct.Struct(f"!{n}I") for n in range(16))


@attrs.frozen
class HeaderExtension:
    """One RFC 8285 header extension element: a local identifier and its data."""

    id: int
    data: bytes


def _is_two_byte(profile: int) -> bool:
    # RFC 8285 §4.3: 0x100 in the upper 12 bits, 4 "appbits" below.
    return (profile & 0xFFF0) == EXTENSION_PROFILE_TWO_BYTE


def _parse_extensions(profile: int, body: bytes) -> tuple[HeaderExtension, ...]:
    elements: list[HeaderExtension] = []
    i = 0
    n = len(body)
    if profile == EXTENSION_PROFILE_ONE_BYTE:
        while i < n:
            b = body[i]
            if b == 0:  # RFC 8285 §4.2: padding byte
                i += 1
                continue
            ext_id = b >> 4
            if ext_id == 0:
                raise RtpParseError("RTP one-byte header extension with id 0 and non-zero length")
            if ext_id == 15:  # RFC 8285 §4.2: id 15 terminates processing
                break
            length = (b & 0x0F) + 1
            i += 1
            if i + length > n:
                raise RtpParseError("RTP one-byte header extension element is truncated")
            elements.append(HeaderExtension(ext_id, body[i : i + length]))
            i += length
    else:
        while i < n:
            ext_id = body[i]
            if ext_id == 0:  # RFC 8285 §4.3: padding byte
                i += 1
                continue
            if i + 2 > n:
                raise RtpParseError("RTP two-byte header extension element is truncated")
            length = body[i + 1]
            i += 2
            if i + length > n:
                raise RtpParseError("RTP two-byte header extension element is truncated")
            elements.append(HeaderExtension(ext_id, body[i : i + length]))
            i += length
    return tuple(elements)


def _encode_extensions(profile: int, elements: tuple[HeaderExtension, ...]) -> bytes:
    out = bytearray()
    if profile == EXTENSION_PROFILE_ONE_BYTE:
        for e in elements:
            if not 1 <= e.id <= 14 or not 1 <= len(e.data) <= 16:
                raise ValueError(f"header extension {e.id} does not fit the one-byte form")
            out.append((e.id << 4) | (len(e.data) - 1))
            out += e.data
    else:
        for e in elements:
            if not 1 <= e.id <= 255 or len(e.data) > 255:
                raise ValueError(f"header extension {e.id} does not fit the two-byte form")
            out.append(e.id)
            out.append(len(e.data))
            out += e.data
    out += bytes(-len(out) % 4)
    return bytes(out)


@attrs.frozen
class RtpPacket:
    """An RTP packet (RFC 3550 §5.1); padding is stripped from the payload but kept raw.

    ``extensions`` holds RFC 8285 elements (profiles 0xBEDE and 0x100X); a header
    extension under any other profile is kept raw in ``extension_data``.
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = attrs.field(default=b"", repr=lambda p: f"<{len(p)} bytes>")
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extensions: tuple[HeaderExtension, ...] = ()
    extension_data: bytes = b""
    padding: bytes = attrs.field(default=b"", repr=False)

    @property
    def padding_size(self) -> int:
        """Number of padding octets (including the count octet) after the payload."""
        return len(self.padding)

    def extension(self, ext_id: int) -> bytes | None:
        """The data of the first header extension element with this id, if any."""
        for e in self.extensions:
            if e.id == ext_id:
                return e.data
        return None

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse wire bytes; raises only :class:`RtpParseError`."""
        if not isinstance(data, bytes):
            data = bytes(data)
        n = len(data)
        if n < 12:
            raise RtpParseError(f"RTP packet is {n} bytes, shorter than the 12-byte header")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 == 0x80 and cls is RtpPacket:  # fast path: V=2, no padding/extension/CSRC
            return _fast_packet(b1 & 0x7F, seq, ts, ssrc, data[12:], b1 > 0x7F)
        if b0 >> 6 != 2:
            raise RtpParseError(f"RTP version is {b0 >> 6}, expected 2")
        pos = 12
        cc = b0 & 0x0F
        csrc: tuple[int, ...] = ()
        if cc:
            end = pos + 4 * cc
            if end > n:
                raise RtpParseError("RTP CSRC list is truncated")
            csrc = _CSRC[cc].unpack_from(data, pos)
            pos = end
        profile: int | None = None
        elements: tuple[HeaderExtension, ...] = ()
        raw_ext = b""
        if b0 & 0x10:
            if pos + 4 > n:
                raise RtpParseError("RTP header extension is truncated")
            profile, words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            end = pos + 4 * words
            if end > n:
                raise RtpParseError("RTP header extension is truncated")
            body = data[pos:end]
            pos = end
            if profile == EXTENSION_PROFILE_ONE_BYTE or _is_two_byte(profile):
                elements = _parse_extensions(profile, body)
            else:
                raw_ext = body
        end = n
        padding = b""
        if b0 & 0x20:
            # RFC 3550 §5.1: the last octet counts the padding octets, itself included.
            if n == pos:
                raise RtpParseError("RTP padding flag set but no padding octet")
            count = data[-1]
            if count == 0:
                raise RtpParseError("RTP padding count is zero")
            if count > n - pos:
                raise RtpParseError("RTP padding count exceeds the packet")
            end = n - count
            padding = data[end:]
        return cls(
            b1 & 0x7F,
            seq,
            ts,
            ssrc,
            data[pos:end],
            b1 > 0x7F,
            csrc,
            profile,
            elements,
            raw_ext,
            padding,
        )

    def encode(self) -> bytes:
        """Serialize to wire bytes (the inverse of :meth:`parse`)."""
        try:
            b1 = self.payload_type | 0x80 if self.marker else self.payload_type
            if not 0 <= self.payload_type <= 127:
                raise ValueError(f"payload type {self.payload_type} is out of range")
            if self.extension_profile is None and not self.extensions:
                if not self.csrc and not self.padding:
                    return (
                        _HEADER.pack(0x80, b1, self.sequence_number, self.timestamp, self.ssrc)
                        + self.payload
                    )
                ext = b""
                x = 0
            else:
                profile = self.extension_profile
                if profile is None:
                    fits_one = all(
                        1 <= e.id <= 14 and 1 <= len(e.data) <= 16 for e in self.extensions
                    )
                    profile = EXTENSION_PROFILE_ONE_BYTE if fits_one else EXTENSION_PROFILE_TWO_BYTE
                if profile == EXTENSION_PROFILE_ONE_BYTE or _is_two_byte(profile):
                    body = _encode_extensions(profile, self.extensions)
                else:
                    body = self.extension_data
                    if len(body) % 4:
                        raise ValueError("raw header extension data must be a multiple of 4 bytes")
                ext = _EXT_HEADER.pack(profile, len(body) // 4) + body
                x = 0x10
            cc = len(self.csrc)
            if cc > 15:
                raise ValueError("an RTP packet carries at most 15 CSRCs")
            if self.padding and self.padding[-1] != len(self.padding):
                raise ValueError("the last padding octet must be the padding length")
            b0 = 0x80 | (0x20 if self.padding else 0) | x | cc
            return b"".join(
                (
                    _HEADER.pack(b0, b1, self.sequence_number, self.timestamp, self.ssrc),
                    _CSRC[cc].pack(*self.csrc),
                    ext,
                    self.payload,
                    self.padding,
                )
            )
        except struct.error as exc:
            raise ValueError(f"RTP field out of range: {exc}") from None

    def __bytes__(self) -> bytes:
        return self.encode()


# The frozen class's __init__ goes through object.__setattr__ per field; writing the
# slots through their descriptors builds the common packet in about half the time.
_NEW = object.__new__
(
    _set_pt,
    _set_seq,
    _set_ts,
    _set_ssrc,
    _set_payload,
    _set_marker,
    _set_csrc,
    _set_profile,
    _set_extensions,
    _set_extension_data,
    _set_padding,
) = (RtpPacket.__dict__[f.name].__set__ for f in attrs.fields(RtpPacket))


def _fast_packet(
    payload_type: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool
) -> RtpPacket:
    packet: RtpPacket = _NEW(RtpPacket)
    _set_pt(packet, payload_type)
    _set_seq(packet, seq)
    _set_ts(packet, ts)
    _set_ssrc(packet, ssrc)
    _set_payload(packet, payload)
    _set_marker(packet, marker)
    _set_csrc(packet, ())
    _set_profile(packet, None)
    _set_extensions(packet, ())
    _set_extension_data(packet, b"")
    _set_padding(packet, b"")
    return packet


def encode_rtp(
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
) -> bytes:
    """Build a plain RTP packet (12-byte header, no CSRC/extension/padding) without objects."""
    return (
        _HEADER.pack(
            0x80,
            payload_type | 0x80 if marker else payload_type,
            sequence_number,
            timestamp,
            ssrc,
        )
        + payload
    )


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: on a multiplexed port, packet types 192-223 (byte 1) are RTCP."""
    return len(data) >= 2 and 192 <= data[1] <= 223
