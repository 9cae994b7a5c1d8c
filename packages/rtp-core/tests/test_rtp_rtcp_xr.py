"""RTCP XR (RFC 3611): VoIP Metrics block layout, raw blocks, exact errors."""

from __future__ import annotations

import pytest

from rvoip_rtp_core import RtcpExtendedReport, RtpParseError, XrBlock, XrVoipMetrics, parse_rtcp


def test_xr_voip_metrics_block() -> None:
    xr = RtcpExtendedReport(
        0x11223344,
        (
            XrVoipMetrics(
                0x55667788,
                loss_rate=13,
                burst_duration=120,
                round_trip_delay=84,
                signal_level=-20,
                r_factor=88,
                mos_lq=41,
                jb_nominal=60,
            ),
            XrBlock(4, 0, bytes(8)),  # receiver reference time, kept raw
        ),
    )
    data = xr.encode()
    assert len(data) == 8 + 36 + 12
    assert data[:4] == bytes.fromhex("80cf000d")
    assert data[8:12] == bytes.fromhex("07000008")
    assert parse_rtcp(data) == [xr]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\xcf\x00\x00", "RTCP XR length is invalid"),
        (b"\xa0\xcf\x00\x02" + bytes(4) + b"\x07\x00\x00\x02", "header is truncated"),
        (b"\x80\xcf\x00\x02" + bytes(4) + b"\x07\x00\x00\x08", "XR block is truncated"),
        (b"\x80\xcf\x00\x03" + bytes(4) + b"\x07\x00\x00\x01" + bytes(4), "VoIP metrics"),
    ],
)
def test_xr_errors(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError, match=message):
        parse_rtcp(data)
