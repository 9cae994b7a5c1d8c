"""RTP packet parse/build: aiortc captures byte-exact, RFC 8285 extensions, fuzzing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    EXTENSION_PROFILE_ONE_BYTE,
    EXTENSION_PROFILE_TWO_BYTE,
    HeaderExtension,
    RtpPacket,
    RtpParseError,
    encode_rtp,
    is_rtcp,
)


def _read(corpora: Path, name: str) -> bytes:
    return (corpora / "rtp" / "aiortc" / name).read_bytes()


def test_plain_pcmu_capture_round_trips(corpora: Path) -> None:
    data = _read(corpora, "rtp.bin")
    p = RtpPacket.parse(data)
    assert (p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (
        0,
        15743,
        3937035252,
        4028317929,
    )
    assert not p.marker
    assert p.csrc == ()
    assert len(p.payload) == 160
    assert p.padding_size == 0
    assert bytes(p) == data
    assert encode_rtp(0, 15743, 3937035252, 4028317929, p.payload) == data


def test_dtmf_capture(corpora: Path) -> None:
    data = _read(corpora, "rtp_dtmf.bin")
    p = RtpPacket.parse(data)
    assert p.marker
    assert (p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (
        101,
        24152,
        4021352124,
        2795586802,
    )
    assert len(p.payload) == 4
    assert p.encode() == data


def test_csrc_capture(corpora: Path) -> None:
    data = _read(corpora, "rtp_with_csrc.bin")
    p = RtpPacket.parse(data)
    assert p.csrc == (2882400001, 3735928559)
    assert (p.sequence_number, p.timestamp, p.ssrc) == (16082, 144, 1606227614)
    assert len(p.payload) == 160
    assert p.encode() == data


def test_one_byte_extension_capture(corpora: Path) -> None:
    data = _read(corpora, "rtp_with_sdes_mid.bin")
    p = RtpPacket.parse(data)
    assert p.marker
    assert (p.payload_type, p.sequence_number, p.timestamp) == (111, 14156, 1327210925)
    assert p.extension_profile == EXTENSION_PROFILE_ONE_BYTE
    assert p.extensions == (HeaderExtension(9, b"0"),)
    assert p.extension(9) == b"0"
    assert p.extension(1) is None
    assert len(p.payload) == 54
    assert p.encode() == data


def test_padding_only_capture(corpora: Path) -> None:
    data = _read(corpora, "rtp_only_padding.bin")
    p = RtpPacket.parse(data)
    assert (p.payload_type, p.sequence_number, p.timestamp) == (120, 27759, 4044047131)
    assert p.payload == b""
    assert p.padding_size == 224
    assert p.encode() == data


def test_padding_with_extension_capture(corpora: Path) -> None:
    data = _read(corpora, "rtp_only_padding_with_header_extensions.bin")
    p = RtpPacket.parse(data)
    assert (p.payload_type, p.sequence_number, p.timestamp) == (98, 22138, 3171065731)
    assert p.extension_profile == EXTENSION_PROFILE_ONE_BYTE
    assert p.extensions == (HeaderExtension(2, bytes.fromhex("f1cc8c")),)
    assert p.payload == b""
    assert p.padding_size == 224
    assert p.encode() == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00\x00", "shorter than the 12-byte header"),
        (b"\x40" + bytes(11), "RTP version is 1"),
        (b"\x82" + bytes(11) + bytes(4), "CSRC list is truncated"),
        (b"\x90" + bytes(11) + b"\xbe\xde", "header extension is truncated"),
        (b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4), "header extension is truncated"),
        (b"\x90" + bytes(11) + b"\xbe\xde\x00\x01\x13\x00\x00\x00", "element is truncated"),
        (b"\x90" + bytes(11) + b"\x10\x00\x00\x01\x01\x05\x00\x00", "element is truncated"),
        (b"\xa0" + bytes(11), "no padding octet"),
        (b"\xa0" + bytes(11) + b"\x00", "padding count is zero"),
        (b"\xa0" + bytes(11) + b"\x05", "padding count exceeds"),
    ],
)
def test_exact_errors(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError, match=message):
        RtpPacket.parse(data)


def test_two_byte_extension_round_trip() -> None:
    p = RtpPacket(
        96,
        1,
        2,
        3,
        b"abc",
        extensions=(HeaderExtension(200, b""), HeaderExtension(1, bytes(20))),
    )
    data = p.encode()
    q = RtpPacket.parse(data)
    assert q.extension_profile == EXTENSION_PROFILE_TWO_BYTE
    assert q.extensions == p.extensions
    assert q.payload == b"abc"


def test_raw_extension_profile_round_trip() -> None:
    p = RtpPacket(0, 1, 2, 3, b"x", extension_profile=0x1234, extension_data=b"abcdefgh")
    assert RtpPacket.parse(p.encode()) == p


def test_encode_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="payload type"):
        RtpPacket(128, 0, 0, 0).encode()
    with pytest.raises(ValueError, match="out of range"):
        RtpPacket(0, 70000, 0, 0).encode()
    with pytest.raises(ValueError, match="padding length"):
        RtpPacket(0, 0, 0, 0, padding=b"\x00\x05").encode()


def test_is_rtcp_demultiplexes() -> None:
    assert not is_rtcp(encode_rtp(0, 1, 2, 3, b""))
    assert not is_rtcp(encode_rtp(96, 1, 2, 3, b"", marker=True))  # byte 1 = 224
    assert is_rtcp(b"\x80\xc8\x00\x06")  # SR
    assert not is_rtcp(b"\x80")


_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def rtp_packets(draw: st.DrawFn) -> RtpPacket:
    """Arbitrary valid RTP packets, including extensions, CSRCs and padding."""
    kind = draw(st.sampled_from(["none", "one", "two", "raw"]))
    profile: int | None = None
    elements: tuple[HeaderExtension, ...] = ()
    raw = b""
    if kind == "one":
        profile = EXTENSION_PROFILE_ONE_BYTE
        elements = tuple(
            draw(
                st.lists(
                    st.builds(
                        HeaderExtension, st.integers(1, 14), st.binary(min_size=1, max_size=16)
                    ),
                    max_size=4,
                )
            )
        )
    elif kind == "two":
        profile = EXTENSION_PROFILE_TWO_BYTE | draw(st.integers(0, 15))
        elements = tuple(
            draw(
                st.lists(
                    st.builds(HeaderExtension, st.integers(1, 255), st.binary(max_size=40)),
                    max_size=4,
                )
            )
        )
    elif kind == "raw":
        profile = draw(st.integers(0, 0xFFFF).filter(lambda v: v != 0xBEDE and v >> 4 != 0x100))
        raw = draw(st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4)))
    pad = draw(st.integers(0, 20))
    padding = (
        bytes(draw(st.binary(min_size=pad - 1, max_size=pad - 1))) + bytes([pad]) if pad else b""
    )
    return RtpPacket(
        draw(st.integers(0, 127)),
        draw(_u16),
        draw(_u32),
        draw(_u32),
        draw(st.binary(max_size=64)),
        draw(st.booleans()),
        tuple(draw(st.lists(_u32, max_size=15))),
        profile,
        elements,
        raw,
        padding,
    )


@given(rtp_packets())
def test_round_trip_property(packet: RtpPacket) -> None:
    data = packet.encode()
    assert RtpPacket.parse(data) == packet
    assert RtpPacket.parse(data).encode() == data


def _check_arbitrary(data: bytes) -> None:
    try:
        p = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert p.sequence_number == int.from_bytes(data[2:4], "big")
    assert p.ssrc == int.from_bytes(data[8:12], "big")
    assert len(p.payload) <= len(data) - 12


@given(st.binary(max_size=80))
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    _check_arbitrary(data)


@given(st.binary(min_size=12, max_size=80).map(lambda b: bytes([0x80 | (b[0] & 0x3F)]) + b[1:]))
def test_version2_bytes_raise_only_parse_error(data: bytes) -> None:
    _check_arbitrary(data)
