"""The sans-IO session core: packetisation, RTCP timing, RTT, collisions (fake clock)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    RtcpBye,
    RtcpReceiverReport,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtpPacket,
    RtpSessionCore,
    encode_rtp,
    parse_rtcp,
    ts_diff,
)


def _pair() -> tuple[RtpSessionCore, RtpSessionCore]:
    a = RtpSessionCore(rng=random.Random(1), cname="a")
    b = RtpSessionCore(rng=random.Random(2), cname="b")
    return a, b


def test_build_rtp_advances_sequence_and_offsets_timestamp() -> None:
    a, _ = _pair()
    first = RtpPacket.parse(a.build_rtp(b"x" * 160, 0, 0.0))
    second = RtpPacket.parse(a.build_rtp(b"y" * 160, 160, 0.02, marker=True, payload_type=8))
    assert second.sequence_number == (first.sequence_number + 1) & 0xFFFF
    assert ts_diff(second.timestamp, first.timestamp) == 160
    assert second.marker
    assert (first.payload_type, second.payload_type) == (0, 8)
    assert first.ssrc == a.ssrc
    assert (a.packets_sent, a.octets_sent) == (2, 320)


def test_stream_between_cores_and_rtt() -> None:
    a, b = _pair()
    now = 1000.0
    for i in range(50):
        pkt = b.receive_rtp(a.build_rtp(bytes(160), i * 160, now), now + 0.030)
        assert pkt is not None
        now += 0.02
    stats = b.statistics().received
    assert stats is not None
    assert (stats.packets_received, stats.packets_lost, stats.jitter) == (49, 0, 0.0)
    # a sends an SR; b answers 0.25 s later with an RR whose LSR/DLSR give the RTT.
    sr = a.build_report(now)
    [head, sdes] = parse_rtcp(sr)
    assert isinstance(head, RtcpSenderReport)
    assert isinstance(sdes, RtcpSourceDescription)
    assert head.packet_count == 50
    assert sdes.chunks[0].items[0].value == b"a"
    b.receive_rtcp(sr, now + 0.040)
    rr = b.build_report(now + 0.290)
    [rr_head, _] = parse_rtcp(rr)
    assert isinstance(rr_head, RtcpReceiverReport)
    assert rr_head.reports[0].ssrc == a.ssrc
    a.receive_rtcp(rr, now + 0.330)
    assert a.rtt == pytest.approx(0.080, abs=0.001)
    remote = a.statistics().remote
    assert remote is not None
    assert remote.packets_lost == 0
    assert remote.extended_highest_sequence == rr_head.reports[0].highest_sequence


def test_sr_rtp_timestamp_tracks_wall_clock() -> None:
    a, _ = _pair()
    last = RtpPacket.parse(a.build_rtp(b"", 8000, 50.0))
    [sr, _] = parse_rtcp(a.build_report(50.5))
    assert isinstance(sr, RtcpSenderReport)
    assert ts_diff(sr.rtp_timestamp, last.timestamp) == 4000


class _CountingRandom(random.Random):
    """A seeded RNG that counts the draws made of it (each is one urandom call with the
    default ``random.SystemRandom``)."""

    draws = 0

    def getrandbits(self, k: int, /) -> int:
        self.draws += 1
        return super().getrandbits(k)

    def random(self) -> float:
        self.draws += 1
        return super().random()


def test_one_draw_covers_the_session_and_its_first_rtcp_interval() -> None:
    """SSRC, CNAME, initial sequence/timestamp and the first RTCP interval: one draw.

    Per call, the answering side drew once for the session and once more (another
    urandom call) for the first RTCP interval's randomisation; the session draw now has
    32 more bits for it. Later intervals draw from the RNG as before.
    """
    rng = _CountingRandom(7)
    core = RtpSessionCore(rng=rng)
    core.start(100.0)
    first = core.get_timer()
    assert rng.draws == 1
    assert first is not None
    # RFC 3550 A.7: the initial interval is 2.5 s * [0.5, 1.5) / (e - 1.5).
    assert 100.0 + 1.25 / 1.21828 <= first <= 100.0 + 3.75 / 1.21828
    samples = {RtpSessionCore(rng=random.Random(seed))._uniform() for seed in range(200)}
    assert all(0.0 <= u < 1.0 for u in samples)
    assert len(samples) == 200  # drawn, not a constant
    for _ in range(5):
        when = core.get_timer()
        assert when is not None
        core.handle_timer(when)
    assert rng.draws > 1  # later intervals come from the RNG


def test_rtcp_schedule_follows_a7() -> None:
    a, _ = _pair()
    assert a.get_timer() is None
    assert a.handle_timer(0.0) is None
    a.start(100.0)
    first = a.get_timer()
    assert first is not None
    # Initial interval: 2.5 s * [0.5, 1.5] / (e - 1.5).
    assert 100.0 + 1.25 / 1.21828 <= first <= 100.0 + 3.75 / 1.21828
    assert a.handle_timer(first - 0.001) is None
    # Timer reconsideration (A.7 OnExpire) may re-arm instead of sending; it converges.
    data = None
    sent_at = first
    for _ in range(20):
        sent_at = a.get_timer()  # type: ignore[assignment]
        data = a.handle_timer(sent_at)
        if data is not None:
            break
    assert data is not None
    assert isinstance(parse_rtcp(data)[0], RtcpReceiverReport)  # nothing sent yet
    assert sent_at - 100.0 >= 1.25 / 1.21828  # never earlier than the minimum
    second = a.get_timer()
    assert second is not None
    assert sent_at + 2.5 / 1.21828 <= second <= sent_at + 7.5 / 1.21828
    assert a.rtcp_sent == 1


def test_reconsideration_rearms_when_interval_grew() -> None:
    a, _ = _pair()
    a.start(0.0)
    deadline = a.get_timer()
    assert deadline is not None
    # Many members appear (A.7): the recomputed interval is far longer than elapsed.
    for ssrc in range(100, 400):
        src = a._source(ssrc)
        src.update(1, 0, 0.0)
        src.update(2, 160, 0.02)
    assert a.handle_timer(deadline) is None
    later = a.get_timer()
    assert later is not None
    assert later > deadline
    assert a.rtcp_sent == 0


def test_ssrc_collision_changes_ssrc_and_sends_bye() -> None:
    a, _ = _pair()
    old = a.ssrc
    intruder = encode_rtp(0, 1, 2, old, b"")
    assert a.receive_rtp(intruder, 1.0) is not None
    assert a.ssrc != old
    assert a.ssrc_collisions == 1
    packets = parse_rtcp(a.build_report(2.0))
    assert packets[-1] == RtcpBye((old,), b"SSRC collision")
    assert packets[0].ssrc == a.ssrc  # type: ignore[union-attr]


def test_invalid_datagrams_are_counted() -> None:
    a, _ = _pair()
    assert a.receive_rtp(b"\x00\x01", 1.0) is None
    assert a.receive_rtcp(b"\x80", 1.0) == []
    assert a.statistics().invalid_packets == 2


def test_bye_packet() -> None:
    a, _ = _pair()
    packets = parse_rtcp(a.build_bye(1.0, b"done"))
    assert packets[-1] == RtcpBye((a.ssrc,), b"done")


@given(st.lists(st.binary(max_size=40), max_size=20))
def test_arbitrary_datagrams_never_raise(datagrams: list[bytes]) -> None:
    core = RtpSessionCore(rng=random.Random(3))
    for i, data in enumerate(datagrams):
        packet = core.receive_rtp(data, float(i))
        assert packet is None or isinstance(packet, RtpPacket)
        assert isinstance(core.receive_rtcp(data, float(i)), list)
    stats = core.statistics()
    assert stats.invalid_packets <= 2 * len(datagrams)
    assert parse_rtcp(core.build_report(100.0))


def test_sender_report_until_two_silent_intervals() -> None:
    """RFC 3550 §6.4: SR while RTP was sent since the last report or the one before."""
    a, _ = _pair()
    a.build_rtp(b"x", 0, 1.0)
    kinds = [type(parse_rtcp(a.build_report(t))[0]) for t in (2.0, 3.0, 4.0)]
    assert kinds == [RtcpSenderReport, RtcpSenderReport, RtcpReceiverReport]


@given(
    st.integers(min_value=1, max_value=0xFFFFFFFF),
    st.text(max_size=300),
    st.booleans(),
    st.booleans(),
)
def test_report_and_bye_encode_like_the_packet_objects(
    ssrc: int, cname: str, sent: bool, received: bool
) -> None:
    """The directly encoded report, SDES and BYE equal the packet objects' encoding."""
    from rvoip_rtp_core import SDES_CNAME, SdesChunk, SdesItem, encode_rtcp

    core = RtpSessionCore(rng=random.Random(4), ssrc=ssrc, cname=cname)
    if sent:
        core.build_rtp(b"x" * 160, 0, 1.0)
    if received:
        peer = RtpSessionCore(rng=random.Random(5))
        for i in range(3):
            core.receive_rtp(peer.build_rtp(b"y", i * 160, 1.0), 1.0 + i * 0.02)
    expected = parse_rtcp(core.build_bye(2.0))
    sdes = RtcpSourceDescription((SdesChunk(ssrc, (SdesItem(SDES_CNAME, cname.encode()[:255]),)),))
    assert expected[1:] == [sdes, RtcpBye((ssrc,))]
    assert isinstance(expected[0], RtcpSenderReport if sent else RtcpReceiverReport)
    assert len(expected[0].reports) == int(received)
    assert core.build_bye(2.0) == encode_rtcp(expected)
    report = core.build_report(3.0)
    assert report == encode_rtcp(parse_rtcp(report))
    assert parse_rtcp(report)[1] == sdes
