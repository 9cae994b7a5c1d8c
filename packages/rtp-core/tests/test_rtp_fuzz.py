"""Wire parsers fed hostile bytes raise only :class:`RtpParseError` (never IndexError etc.).

Arbitrary bytes rarely get past the first header check, so these properties build
datagrams whose outer framing is valid (version 2, consistent length words) around
random bodies: every inner parser (SR, RR, SDES, BYE, APP, feedback, XR blocks,
header extensions, padding, telephone-event) sees hostile input.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    RTCP_APP,
    RTCP_BYE,
    RTCP_PSFB,
    RTCP_RR,
    RTCP_RTPFB,
    RTCP_SDES,
    RTCP_SR,
    RTCP_XR,
    DtmfDecoder,
    RtpPacket,
    RtpParseError,
    TelephoneEvent,
    parse_rtcp,
)

_TYPES = [RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE, RTCP_APP, RTCP_RTPFB, RTCP_PSFB, RTCP_XR, 210]


@st.composite
def _rtcp_packet(draw: st.DrawFn) -> bytes:
    """One RTCP packet: a valid header (length word matches) around a random body."""
    words = draw(st.integers(0, 24))
    body = bytearray(draw(st.binary(min_size=4 * words, max_size=4 * words)))
    padding = draw(st.booleans()) and words > 0
    if padding and draw(st.booleans()):
        body[-1] = draw(st.integers(1, 4 * words))  # a plausible padding count
    count = draw(st.integers(0, 31))
    if draw(st.booleans()) and words:
        # Shape the body like the type expects: e.g. an XR block header or SDES items.
        body[4:6] = bytes(draw(st.binary(min_size=2, max_size=2)))
    header = struct.pack(
        "!BBH", 0x80 | (0x20 if padding else 0) | count, draw(st.sampled_from(_TYPES)), words
    )
    return header + bytes(body)


@given(st.lists(_rtcp_packet(), min_size=1, max_size=4), st.data())
def test_framed_rtcp_with_random_bodies_raises_only_parse_error(
    packets: list[bytes], data: st.DataObject
) -> None:
    wire = b"".join(packets)
    if data.draw(st.booleans()):  # and a flipped byte anywhere
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire = wire[:pos] + bytes([wire[pos] ^ data.draw(st.integers(1, 255))]) + wire[pos + 1 :]
    try:
        parsed = parse_rtcp(wire)
    except RtpParseError:
        return
    assert parsed


@st.composite
def _rtp_datagram(draw: st.DrawFn) -> bytes:
    """An RTP header with random flags/CSRC count/extension/padding around random bytes."""
    cc = draw(st.integers(0, 15))
    b0 = 0x80 | (0x20 if draw(st.booleans()) else 0) | (0x10 if draw(st.booleans()) else 0) | cc
    head = struct.pack("!BBHII", b0, draw(st.integers(0, 255)), 1, 2, 3)
    csrcs = draw(st.binary(min_size=0, max_size=4 * cc + 4))
    ext = b""
    if b0 & 0x10:
        profile = draw(st.sampled_from([0xBEDE, 0x1000, 0x1003, 0x4242]))
        words = draw(st.integers(0, 6))
        ext = struct.pack("!HH", profile, words) + draw(
            st.binary(min_size=max(0, 4 * words - 4), max_size=4 * words + 4)
        )
    tail = draw(st.binary(max_size=40))
    return head + csrcs + ext + tail


@given(_rtp_datagram(), st.sampled_from([bytes, bytearray, memoryview]))
def test_rtp_headers_with_random_fields_raise_only_parse_error(data: bytes, kind: type) -> None:
    try:
        packet = RtpPacket.parse(kind(data))
    except RtpParseError:
        return
    assert RtpPacket.parse(packet.encode()) == packet


@given(st.lists(st.tuples(st.integers(0, 0xFFFFFFFF), st.binary(max_size=8), st.booleans())))
def test_dtmf_decoder_raises_only_parse_error(feed: list[tuple[int, bytes, bool]]) -> None:
    decoder = DtmfDecoder()
    for timestamp, payload, marker in feed:
        try:
            decoder.feed(timestamp, payload, marker)
        except RtpParseError:
            assert len(payload) < 4
    decoder.flush()


@given(st.binary(max_size=16), st.sampled_from([bytes, bytearray, memoryview]))
def test_telephone_event_parse_of_any_buffer(data: bytes, kind: type) -> None:
    try:
        tone = TelephoneEvent.parse(kind(data))
    except RtpParseError:
        return
    assert tone.encode() == data[:4] or len(data) >= 4
