"""RFC 4733 telephone-events: Figure 3/4 packets, Table 5 sequence, encoder, decoder."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    DTMF_EVENTS,
    DtmfDecoder,
    DtmfEncoder,
    DtmfEnded,
    DtmfStarted,
    RtpPacket,
    RtpParseError,
    TelephoneEvent,
    digit_for_event,
    event_for_digit,
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_figure3_event_packet(corpora: Path) -> None:
    data = (corpora / "rtp" / "rfc4733" / "fig3_event_packet.bin").read_bytes()
    p = RtpPacket.parse(data)
    assert (p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (100, 18, 11200, 0x5234A8)
    assert TelephoneEvent.parse(p.payload) == TelephoneEvent(1, True, 20, 1760)
    assert TelephoneEvent(1, True, 20, 1760).encode() == p.payload
    assert p.encode() == data


def test_figure4_tone_packet_parses_as_rtp(corpora: Path) -> None:
    data = (corpora / "rtp" / "rfc4733" / "fig4_tone_packet.bin").read_bytes()
    p = RtpPacket.parse(data)
    assert (p.payload_type, p.sequence_number, p.timestamp) == (101, 14, 12800)
    freqs = [int.from_bytes(p.payload[i : i + 2], "big") & 0x0FFF for i in (4, 6)]
    assert freqs == [697, 1209]
    assert p.encode() == data


def test_event_codes_table(corpora: Path) -> None:
    for row in _rows(corpora / "rtp" / "rfc4733" / "dtmf_event_codes.tsv"):
        code = int(row["code"])
        if row["event"].startswith("Flash"):
            assert event_for_digit("!") == code
            continue
        assert event_for_digit(row["event"]) == code
        assert digit_for_event(code) == row["event"]
    assert len(DTMF_EVENTS) == 17
    assert event_for_digit("a") == 12
    assert digit_for_event(99) == "?"
    with pytest.raises(ValueError, match="not a DTMF digit"):
        event_for_digit("x")


def test_table5_decoder_reports_each_digit_once(corpora: Path) -> None:
    rows = _rows(corpora / "rtp" / "rfc4733" / "table5_event_sequence.tsv")
    decoder = DtmfDecoder()
    notes = []
    for row in rows:
        payload = TelephoneEvent(
            int(row["event"]), row["E"] == "1", 10, int(row["duration_ts_units"])
        ).encode()
        notes += decoder.feed(int(row["rtp_timestamp"]), payload, row["M"] == "1")
    assert notes == [
        DtmfStarted("9", 9, 0),
        DtmfEnded("9", 9, 0, 1600, 10),
        DtmfStarted("1", 1, 7040),
        DtmfEnded("1", 1, 7040, 2000, 10),
        DtmfStarted("1", 1, 11200),
        DtmfEnded("1", 1, 11200, 1760, 10),
    ]
    assert decoder.flush() == []


def test_table5_encoder_matches_second_digit(corpora: Path) -> None:
    rows = [
        r
        for r in _rows(corpora / "rtp" / "rfc4733" / "table5_event_sequence.tsv")
        if r["rtp_timestamp"] == "11200"
    ]
    packets = DtmfEncoder(packet_interval=400, volume=10).packets("1", 1760)
    assert len(packets) == len(rows)
    start_ms = int(rows[0]["send_time_ms"]) - 50
    for p, row in zip(packets, rows, strict=True):
        tone = TelephoneEvent.parse(p.payload)
        assert p.marker == (row["M"] == "1")
        assert tone.duration == int(row["duration_ts_units"])
        assert tone.end == (row["E"] == "1")
        assert tone.event == 1
        assert start_ms + p.offset // 8 == int(row["send_time_ms"])


def test_encoder_start_update_and_three_ends() -> None:
    packets = DtmfEncoder(packet_interval=160, volume=7).packets("#", 800)
    tones = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [t.duration for t in tones] == [160, 320, 480, 640, 800, 800, 800]
    assert [t.end for t in tones] == [False] * 4 + [True] * 3
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert {t.volume for t in tones} == {7}
    assert {t.event for t in tones} == {11}
    short = DtmfEncoder(packet_interval=160).packets(4, 100)
    assert [p.marker for p in short] == [True, False, False]
    assert all(TelephoneEvent.parse(p.payload).end for p in short)
    with pytest.raises(ValueError, match="positive"):
        DtmfEncoder().packets("1", 0)


def test_decoder_lost_end_and_late_packets() -> None:
    d = DtmfDecoder()
    assert d.feed(1000, TelephoneEvent(3, False, 10, 160).encode(), True) == [
        DtmfStarted("3", 3, 1000)
    ]
    assert d.feed(1000, TelephoneEvent(3, False, 10, 320).encode()) == []
    # Next event begins before any E packet arrived: the first one ends there.
    notes = d.feed(3000, TelephoneEvent(4, False, 10, 160).encode(), True)
    assert notes == [DtmfEnded("3", 3, 1000, 320, 10), DtmfStarted("4", 4, 3000)]
    assert d.feed(1000, TelephoneEvent(3, True, 10, 480).encode()) == []  # late
    assert d.flush() == [DtmfEnded("4", 4, 3000, 160, 10)]


def test_telephone_event_errors() -> None:
    with pytest.raises(RtpParseError, match="expected 4"):
        TelephoneEvent.parse(b"\x01\x02")
    with pytest.raises(ValueError, match="volume"):
        TelephoneEvent(1, volume=64).encode()


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 0xFFFF))
def test_payload_round_trip(event: int, end: bool, volume: int, duration: int) -> None:
    tone = TelephoneEvent(event, end, volume, duration)
    assert TelephoneEvent.parse(tone.encode()) == tone


@given(st.binary(max_size=8))
def test_payload_parse_only_parse_error(data: bytes) -> None:
    try:
        tone = TelephoneEvent.parse(data)
    except RtpParseError:
        assert len(data) < 4
        return
    assert tone.event == data[0]


@given(
    st.lists(st.sampled_from(sorted(DTMF_EVENTS)), min_size=1, max_size=5),
    st.integers(1, 3000),
    st.lists(st.integers(0, 6), max_size=5),
)
def test_decoder_reports_each_encoded_event_once(
    digits: list[str], duration: int, dup_positions: list[int]
) -> None:
    encoder = DtmfEncoder(packet_interval=160)
    decoder = DtmfDecoder()
    notes = []
    ts = 0
    for digit in digits:
        packets = encoder.packets(digit, duration)
        sent = list(packets)
        for pos in dup_positions:  # network duplication
            sent.insert(min(pos, len(sent)), packets[min(pos, len(packets) - 1)])
        for p in sent:
            notes += decoder.feed(ts, p.payload, p.marker)
        ts += duration + 1600
    ended = [n for n in notes if isinstance(n, DtmfEnded)]
    started = [n for n in notes if isinstance(n, DtmfStarted)]
    assert [n.digit for n in started] == [d.upper() for d in digits]
    assert [n.digit for n in ended] == [d.upper() for d in digits]
    assert {n.duration for n in ended} == {min(duration, 0xFFFF)}
