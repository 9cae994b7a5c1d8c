"""RTCP parse/build: aiortc captures byte-exact, exact errors, compound round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    RTCP_PSFB,
    RTCP_RTPFB,
    SDES_CNAME,
    ReportBlock,
    RtcpApp,
    RtcpBye,
    RtcpExtendedReport,
    RtcpFeedback,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtcpUnknown,
    RtpParseError,
    SdesChunk,
    SdesItem,
    XrBlock,
    XrVoipMetrics,
    encode_rtcp,
    parse_rtcp,
)


def _read(corpora: Path, name: str) -> bytes:
    return (corpora / "rtp" / "aiortc" / name).read_bytes()


def test_sender_report_capture(corpora: Path) -> None:
    data = _read(corpora, "rtcp_sr.bin")
    [sr] = parse_rtcp(data)
    assert sr == RtcpSenderReport(
        ssrc=1831097322,
        ntp_timestamp=16016567581311369308,
        rtp_timestamp=1722342718,
        packet_count=269,
        octet_count=13557,
        reports=(ReportBlock(2398654957, 0, 0, 246, 127, 0, 0),),
    )
    assert sr.encode() == data


def test_receiver_report_capture(corpora: Path) -> None:
    data = _read(corpora, "rtcp_rr.bin")
    [rr] = parse_rtcp(data)
    assert rr == RtcpReceiverReport(817267719, (ReportBlock(1200895919, 0, 0, 630, 1906, 0, 0),))
    assert encode_rtcp([rr]) == data


def test_sdes_capture(corpora: Path) -> None:
    data = _read(corpora, "rtcp_sdes.bin")
    [sdes] = parse_rtcp(data)
    assert sdes == RtcpSourceDescription(
        (SdesChunk(1831097322, (SdesItem(SDES_CNAME, b"{63f459ea-41fe-4474-9d33-9707c9ee79d1}"),)),)
    )
    assert sdes.encode() == data


def test_bye_captures(corpora: Path) -> None:
    data = _read(corpora, "rtcp_bye.bin")
    assert parse_rtcp(data) == [RtcpBye((2924645187,))]
    assert encode_rtcp(parse_rtcp(data)) == data
    data = _read(corpora, "rtcp_bye_no_sources.bin")
    assert parse_rtcp(data) == [RtcpBye(())]
    assert encode_rtcp(parse_rtcp(data)) == data
    # Padding is stripped: re-serialises without it, as aiortc does.
    assert parse_rtcp(_read(corpora, "rtcp_bye_padding.bin")) == [RtcpBye(())]
    assert encode_rtcp(parse_rtcp(_read(corpora, "rtcp_bye_padding.bin"))) == bytes.fromhex(
        "80cb0000"
    )


def test_feedback_captures(corpora: Path) -> None:
    data = _read(corpora, "rtcp_psfb_pli.bin")
    assert parse_rtcp(data) == [RtcpFeedback(RTCP_PSFB, 1, 1414554213, 587284409, b"")]
    assert encode_rtcp(parse_rtcp(data)) == data
    data = _read(corpora, "rtcp_rtpfb.bin")
    [fb] = parse_rtcp(data)
    assert isinstance(fb, RtcpFeedback)
    assert (fb.packet_type, fb.fmt, fb.sender_ssrc, fb.media_ssrc) == (
        RTCP_RTPFB,
        1,
        2336520123,
        4145934052,
    )
    assert fb.fci.hex() == (
        "000c00000020004000360000004c0000006e1000008e000000b7000800df1000010f000001240000"
    )
    assert fb.encode() == data


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rtcp_bye_invalid.bin", "RTCP bye length is invalid"),
        ("rtcp_psfb_invalid.bin", "RTCP payload-specific feedback length is invalid"),
        ("rtcp_rr_invalid.bin", "RTCP receiver report length is invalid"),
        ("rtcp_rtpfb_invalid.bin", "RTCP RTP feedback length is invalid"),
        ("rtcp_sdes_item_truncated.bin", "RTCP SDES item is truncated"),
        ("rtcp_sdes_source_truncated.bin", "RTCP SDES source is truncated"),
        ("rtcp_sr_invalid.bin", "RTCP sender report length is invalid"),
    ],
)
def test_invalid_captures_exact_errors(corpora: Path, name: str, message: str) -> None:
    with pytest.raises(RtpParseError, match=f"^{message}$"):
        parse_rtcp(_read(corpora, name))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTCP datagram is empty"),
        (b"\x80\xc9\x00", "RTCP header is truncated"),
        (b"\x40\xc9\x00\x00", "RTCP version is 1"),
        (b"\x80\xc9\x00\x02\x00\x00\x00\x00", "length exceeds the datagram"),
        (b"\xa0\xc9\x00\x01\x00\x00\x00\x00", "padding count is invalid"),
        (b"\x80\xcb\x00\x01\x05abc", "bye reason is truncated"),
        (b"\x80\xcc\x00\x01abcd", "RTCP app length is invalid"),
    ],
)
def test_exact_errors(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError, match=message):
        parse_rtcp(data)


def test_compound_and_other_types() -> None:
    packets: list[RtcpPacket] = [
        RtcpReceiverReport(1, (ReportBlock(2, 42, -5, 70000, 12, 0x12345678, 65536),)),
        RtcpSourceDescription((SdesChunk(1, (SdesItem(SDES_CNAME, b"alice@example"),)),)),
        RtcpApp(3, 1, b"TEST", b"data"),
        RtcpBye((1,), b"bye now"),
        RtcpUnknown(210, 0, b"\x00\x00\x00\x01"),
    ]
    data = encode_rtcp(packets)
    assert parse_rtcp(data) == packets


def test_cumulative_lost_is_clamped() -> None:
    block = ReportBlock(1, 0, 10**9, 0, 0, 0, 0)
    [rr] = parse_rtcp(RtcpReceiverReport(9, (block,)).encode())
    assert isinstance(rr, RtcpReceiverReport)
    assert rr.reports[0].cumulative_lost == 0x7FFFFF


_u32 = st.integers(0, 0xFFFFFFFF)
_blocks = st.lists(
    st.builds(
        ReportBlock,
        _u32,
        st.integers(0, 255),
        st.integers(-0x800000, 0x7FFFFF),
        _u32,
        _u32,
        _u32,
        _u32,
    ),
    max_size=3,
).map(tuple)
_words = st.binary(max_size=16).map(lambda b: b + bytes(-len(b) % 4))
_items = st.lists(st.builds(SdesItem, st.integers(1, 255), st.binary(max_size=30)), max_size=3).map(
    tuple
)

rtcp_packets = st.one_of(
    st.builds(RtcpSenderReport, _u32, st.integers(0, 2**64 - 1), _u32, _u32, _u32, _blocks, _words),
    st.builds(RtcpReceiverReport, _u32, _blocks, _words),
    st.builds(
        RtcpSourceDescription, st.lists(st.builds(SdesChunk, _u32, _items), max_size=3).map(tuple)
    ),
    st.builds(
        RtcpBye,
        st.lists(_u32, max_size=4).map(tuple),
        st.one_of(st.none(), st.binary(max_size=20)),
    ),
    st.builds(RtcpApp, st.integers(0, 31), _u32, st.binary(min_size=4, max_size=4), _words),
    st.builds(
        RtcpFeedback,
        st.sampled_from([RTCP_RTPFB, RTCP_PSFB]),
        st.integers(0, 31),
        _u32,
        _u32,
        _words,
    ),
    st.builds(RtcpUnknown, st.integers(208, 255), st.integers(0, 31), _words),
    st.builds(
        RtcpExtendedReport,
        _u32,
        st.lists(
            st.one_of(
                st.builds(
                    XrVoipMetrics,
                    _u32,
                    *[st.integers(0, 255)] * 4,
                    *[st.integers(0, 0xFFFF)] * 4,
                    *[st.integers(-128, 127)] * 2,
                    *[st.integers(0, 255)] * 7,
                    *[st.integers(0, 0xFFFF)] * 3,
                ),
                st.builds(
                    XrBlock,
                    st.integers(0, 255).filter(lambda t: t != 7),
                    st.integers(0, 255),
                    _words,
                ),
            ),
            max_size=3,
        ).map(tuple),
    ),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_compound_round_trip_property(packets: list[RtcpPacket]) -> None:
    data = encode_rtcp(packets)
    assert parse_rtcp(data) == packets
    assert encode_rtcp(parse_rtcp(data)) == data


def test_padded_unaligned_packet_re_encodes() -> None:
    """Fuzz finding F-RTCP-1: what parse_rtcp returns, encode_rtcp must write back.

    ``a0 08 00 01 00 34 00 01`` is a padded packet of an unknown type whose body is three
    octets once the padding is gone. It parsed, but the encoder refused any body that is
    not word-aligned (``ValueError``), so parse -> encode of a received packet raised. The
    encoder now pads such a body again (P bit, count octet last, RFC 3550 §6.4.1).
    """
    data = bytes.fromhex("a0080001 00340001")
    (packet,) = parse_rtcp(data)
    assert packet == RtcpUnknown(8, 0, b"\x00\x34\x00")
    assert encode_rtcp([packet]) == data
    app = RtcpApp(1, 7, b"name", b"odd")
    assert len(app.encode()) % 4 == 0
    assert parse_rtcp(app.encode()) == [app]


@given(st.binary(max_size=120))
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    """Any datagram parses or raises RtpParseError; what parses encodes and parses back."""
    try:
        packets = parse_rtcp(data)
    except RtpParseError:
        return
    assert packets
    assert parse_rtcp(encode_rtcp(packets)) == packets


@given(st.lists(rtcp_packets, min_size=1, max_size=3), st.data())
def test_truncated_compound_raises_only_parse_error(
    packets: list[RtcpPacket], data: st.DataObject
) -> None:
    wire = encode_rtcp(packets)
    cut = data.draw(st.integers(0, len(wire) - 1))
    try:
        parsed = parse_rtcp(wire[:cut])
    except RtpParseError:
        return
    assert len(parsed) <= len(packets)
