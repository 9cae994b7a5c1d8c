"""Media engine (sans-IO core) with in-memory sessions, and the clock driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import attrs
import numpy as np
import pytest

from rvoip_media_core import (
    ClockStats,
    Codec,
    MediaClock,
    MediaCoreError,
    MediaEngine,
    SamplesSource,
    ToneGenerator,
    detect_tone,
    run_media_engine,
)
from rvoip_media_core._driver import schedule_next
from rvoip_rtp_core import RtpPacket


@attrs.frozen
class _Reception:
    loss_percent: float = 0.0
    jitter_seconds: float = 0.0
    packets_expected: int = 0


@attrs.frozen
class _Stats:
    received: _Reception | None = None
    rtt_seconds: float | None = None


@attrs.define(eq=False)
class FakeSession:
    """Stands in for rvoip_rtp_core.RtpSession: records what is sent."""

    ssrc: int = 1234
    sent: list[tuple[bytes, int, bool]] = attrs.field(factory=list)
    handler: Callable[[Any, float], None] | None = None
    seq: int = 0
    fail: bool = False

    def send_payload(
        self,
        payload: bytes,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
        now: float | None = None,
    ) -> None:
        if self.fail:
            raise OSError("closed")
        self.sent.append((payload, timestamp, marker))

    def set_packet_handler(self, handler: Callable[[Any, float], None] | None) -> None:
        self.handler = handler

    def statistics(self) -> _Stats:
        return _Stats(_Reception(), 0.0)

    def deliver_to(self, other: FakeSession, pt: int, now: float, drop: bool = False) -> None:
        """Hand our last sent payload to ``other``'s handler as an RTP packet."""
        payload, ts, marker = self.sent[-1]
        packet = RtpPacket(pt, self.seq & 0xFFFF, ts, self.ssrc, payload, marker)
        self.seq += 1
        if not drop and other.handler is not None:
            other.handler(packet, now)


def test_engine_sends_batches_with_timestamps_and_marker() -> None:
    engine = MediaEngine()
    sessions = [FakeSession() for _ in range(3)]
    streams = [engine.add_stream(s, Codec.PCMU, 20, ToneGenerator(1000.0)) for s in sessions]
    for t in range(3):
        out = engine.tick(t * 0.02)
        assert [o[0] for o in out] == streams
        for stream, payload, ts, marker in out:
            assert len(payload) == 160
            assert ts == t * 160
            assert marker == (t == 0)
            stream.session.send_payload(payload, ts, marker)
    assert engine.ticks == 3
    assert all(len(s.sent) == 3 for s in sessions)


def test_engine_loopback_tone_decoded_and_lost_frames_concealed() -> None:
    engine = MediaEngine()
    a, b = FakeSession(ssrc=1), FakeSession(ssrc=2)
    heard: list[np.ndarray] = []
    engine.add_stream(a, Codec.PCMA, 20, ToneGenerator(1000.0), None)
    sb = engine.add_stream(b, Codec.PCMA, 20, None, heard.append)
    for t in range(100):
        for stream, payload, ts, marker in engine.tick(t * 0.02):
            stream.session.send_payload(payload, ts, marker)
        a.deliver_to(b, Codec.PCMA.payload_type, t * 0.02 + 0.001, drop=(t % 20 == 10))
    assert len(heard) == 100
    assert sum(detect_tone(f, 1000.0) for f in heard[10:]) >= 85
    stats = sb.statistics()
    assert stats.frames_concealed >= 4
    assert stats.jitter_buffer.received == 95
    assert stats.quality.mos_score > 4.0


def test_mute_set_source_and_ptime_40() -> None:
    engine = MediaEngine()
    s = FakeSession()
    stream = engine.add_stream(s, Codec.PCMU, 40, SamplesSource(np.full(1000, 5000)))
    out = []
    for t in range(4):
        out.extend(engine.tick(t * 0.02))
    assert len(out) == 2
    assert all(len(o[1]) == 320 for o in out)
    engine.mute(stream)
    silent = [o for t in range(4, 6) for o in engine.tick(t * 0.02)]
    assert silent[0][1] == bytes([0xFF]) * 320  # µ-law silence
    engine.mute(stream, False)
    engine.set_source(stream, None)
    assert next(o for t in range(6, 8) for o in engine.tick(t * 0.02))[1] == bytes([0xFF]) * 320
    with pytest.raises(MediaCoreError, match="ptime"):
        engine.add_stream(FakeSession(), Codec.PCMU, 30)


def test_remove_stream_detaches_handler() -> None:
    engine = MediaEngine()
    s = FakeSession()
    stream = engine.add_stream(s)
    assert s.handler is not None
    engine.remove_stream(stream)
    engine.remove_stream(stream)
    assert s.handler is None
    assert engine.streams == []
    assert engine.tick(0.0) == []


def test_other_payload_types_and_new_ssrc() -> None:
    engine = MediaEngine()
    s = FakeSession()
    others: list[Any] = []
    stream = engine.add_stream(s, on_packet=lambda p, t: others.append(p))
    assert s.handler is not None
    s.handler(RtpPacket(101, 1, 0, 9, b"\x01\x00\x00\xa0"), 0.0)
    assert len(others) == 1
    s.handler(RtpPacket(0, 1, 0, 9, b"\xff" * 160), 0.0)
    s.handler(RtpPacket(0, 500, 0, 10, b"\xff" * 160), 0.1)  # new sender: reset
    assert stream.jitter.stats().received == 1
    s.handler(RtpPacket(0, 501, 160, 10, b"\xff" * 400), 0.1)
    assert stream.oversize_packets == 1


def test_clock_process_counts_late_packets_and_send_errors() -> None:
    engine = MediaEngine()
    good, bad = FakeSession(), FakeSession(fail=True)
    engine.add_stream(good)
    engine.add_stream(bad)
    now = [100.0]
    clock = MediaClock(engine, clock=lambda: now[0], wall_clock=lambda: 0.0)
    clock.process(100.0)
    now[0] = 100.05
    clock.process(100.02)  # 30 ms late
    st: ClockStats = clock.stats
    assert (st.ticks, st.late_ticks, st.packets, st.late_packets, st.send_errors) == (2, 1, 4, 2, 2)
    assert st.percentile(50) == pytest.approx(0.0001)
    assert st.percentile(100) == pytest.approx(0.0301, abs=1e-4)
    assert ClockStats().percentile(99) == 0.0


@pytest.mark.anyio
async def test_run_media_engine_ticks_on_both_backends() -> None:
    engine = MediaEngine()
    session = FakeSession()
    engine.add_stream(session, source=ToneGenerator(1000.0))
    async with run_media_engine(engine) as clock:
        with anyio.fail_after(10):
            while clock.stats.ticks < 5:
                await anyio.sleep(0.01)
    assert len(session.sent) >= 5
    timestamps = [ts for _, ts, _ in session.sent]
    assert timestamps == [i * 160 for i in range(len(timestamps))]


def test_broken_source_and_sink_do_not_stop_other_streams() -> None:
    engine = MediaEngine()
    good, bad = FakeSession(), FakeSession()

    def explode(_frame: object) -> None:
        raise RuntimeError("sink bug")

    heard: list[np.ndarray] = []
    broken = engine.add_stream(bad, source=SamplesSource([1, 2]), sink=explode)
    engine.set_source(broken, None)
    engine.set_source(broken, _BrokenSource())
    fine = engine.add_stream(good, source=ToneGenerator(1000.0), sink=heard.append)
    out = engine.tick(0.0)
    assert len(out) == 2
    assert out[0][1] == bytes([0xFF]) * 160  # silence for the broken source
    assert (broken.source_errors, broken.sink_errors) == (1, 1)
    assert len(heard) == 1
    assert fine.source_errors == fine.sink_errors == 0
    engine.set_sink(broken, None)
    engine.tick(0.02)
    assert broken.sink_errors == 1


class _BrokenSource:
    def read(self, n: int) -> np.ndarray:
        raise RuntimeError("source bug")


def test_schedule_is_drift_free_and_skips_when_far_behind() -> None:
    deadline = 100.0
    # However late each tick finishes (up to the limit), the grid does not move.
    for k in range(1, 50):
        deadline, skipped = schedule_next(deadline, deadline + 0.015, 0.02, 3)
        assert skipped == 0
        assert deadline == pytest.approx(100.0 + 0.02 * k)
    # A 1 s stall: skip whole ticks instead of bursting, stay on the grid.
    nxt, skipped = schedule_next(101.0, 102.0, 0.02, 3)
    assert skipped == 49
    assert nxt == pytest.approx(102.0)
    assert round((nxt - 100.0) / 0.02, 6).is_integer()


def test_streams_joining_leaving_and_starting_to_receive_between_ticks() -> None:
    engine = MediaEngine()
    a, b = FakeSession(ssrc=1), FakeSession(ssrc=2)
    sa = engine.add_stream(a, Codec.PCMU, 20, ToneGenerator(1000.0))
    sb = engine.add_stream(b, Codec.PCMU, 20, None)
    for t in range(3):  # b hears nothing yet: its buffer is never allocated
        engine.tick(t * 0.02)
    assert not sb.jitter.allocated
    assert sb.frames_empty == 3
    late = engine.add_stream(FakeSession(), Codec.PCMU, 40)
    for t in range(3, 40):
        for stream, payload, ts, marker in engine.tick(t * 0.02):
            stream.session.send_payload(payload, ts, marker)
        a.deliver_to(b, Codec.PCMU.payload_type, t * 0.02)  # allocates b's buffer
        if t == 20:
            engine.remove_stream(sa)
            engine.remove_stream(late)
    assert sb.jitter.allocated
    assert sb.frames_played >= 15  # the cached play-out picked up the new buffer
    assert late.frames_sent == 9  # every other tick from tick 3 up to tick 20
    assert engine.streams == [sb]


def test_tick_split_in_phases_sends_each_stream_once_per_packet_time() -> None:
    engine = MediaEngine()
    sessions = [FakeSession() for _ in range(10)]
    streams = [
        engine.add_stream(s, Codec.PCMU, 20 if i < 7 else 40) for i, s in enumerate(sessions)
    ]
    assert engine.phase_sizes(4) == [2, 3, 3, 2]  # stream ids 1..10
    for t in range(4):
        seen: list[int] = []
        for phase in range(4):
            out = engine.begin_tick(t * 0.02, phase, 4)
            assert all(o[0].id % 4 == phase for o in out)
            seen += [o[0].id for o in out]
            engine.end_tick()
            assert engine.ticks == t + (phase == 3)
        ptime_40_due = [s.id for s in streams[7:] if s.id % 2 == t % 2]
        assert sorted(seen) == [s.id for s in streams[:7]] + ptime_40_due
    assert [s.frames_sent for s in streams] == [4] * 7 + [2] * 3
    assert [s.frames_empty for s in streams] == [4] * 7 + [2] * 3
    assert [s.timestamp for s in streams] == [640] * 7 + [640] * 3


def test_clock_splits_ticks_above_the_threshold_and_counts_a_late_tick_once() -> None:
    engine = MediaEngine()
    for _ in range(5):
        engine.add_stream(FakeSession())
    now = [50.0]
    clock = MediaClock(engine, clock=lambda: now[0], wall_clock=lambda: 0.0, split_above=4)
    assert clock.phase_count() == 4
    assert MediaClock(engine).phase_count() == 1  # 5 streams: below the default threshold
    now[0] = 50.021
    for phase in range(4):  # phases start 21, 16, 11 and 6 ms late: one late tick
        clock.process(50.0 + phase * 0.005, phase, 4)
    st = clock.stats
    assert (st.ticks, st.late_ticks, st.packets) == (1, 1, 5)
    assert st.late_packets == 5 - engine.phase_sizes(4)[3]  # phase 3 is within 10 ms


def test_phase_count_has_hysteresis() -> None:
    engine = MediaEngine()
    streams = [engine.add_stream(FakeSession()) for _ in range(8)]
    clock = MediaClock(engine, split_above=8)
    assert clock.phase_count() == 1
    streams.append(engine.add_stream(FakeSession()))
    assert clock.phase_count() == 4  # 9 > 8: split
    engine.remove_stream(streams.pop())
    engine.remove_stream(streams.pop())
    assert clock.phase_count() == 4  # 7 streams: still above 3/4 of the threshold
    engine.remove_stream(streams.pop())
    assert clock.phase_count() == 1
    assert streams[0].payload_type == Codec.PCMU.value
