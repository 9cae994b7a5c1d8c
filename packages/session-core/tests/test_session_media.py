"""Tests of the per-call media helpers: sources, the source slot, the send gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rvoip_media_core import SilenceSource, WavSink, detect_tone
from rvoip_session_core import MediaError
from rvoip_session_core._media import (
    GatedSession,
    SourceSlot,
    make_source,
    samples_source,
    tone_source,
    wav_source,
)


def test_tone_source_is_a_clean_tone() -> None:
    assert detect_tone(tone_source(1000).read(160), 1000)


def test_make_source_accepts_paths_samples_sources_and_none(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    with WavSink(path) as sink:
        sink.write(np.arange(320, dtype=np.int16))
    assert (make_source(str(path)).read(320) == np.arange(320)).all()
    assert (make_source(path).read(4) == [0, 1, 2, 3]).all()
    assert (make_source([5, 6]).read(3) == [5, 6, 0]).all()
    assert (make_source(None).read(2) == 0).all()
    silence = SilenceSource()
    assert make_source(silence) is silence
    with pytest.raises(MediaError, match="not an audio source"):
        make_source(3.5)  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="cannot play"):
        wav_source(tmp_path / "missing.wav")


def test_slot_prefers_bridge_then_queued_frames_then_source() -> None:
    slot = SourceSlot(source=samples_source(np.full(1000, 9, dtype=np.int16)))
    slot.queued.append(np.arange(100, dtype=np.int16))
    slot.queued.append(np.arange(100, 200, dtype=np.int16))
    first = slot.read(160)
    assert (first == np.arange(160)).all()
    second = slot.read(160)
    assert (second[:40] == np.arange(160, 200)).all()
    assert (second[40:] == 0).all()
    assert (slot.read(160) == 9).all()
    slot.bridge_feed = lambda n: np.full(n, 3, dtype=np.int16)
    assert (slot.read(160) == 3).all()


class RecordingRtp:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_payload(self, payload: bytes, *args: Any) -> None:
        self.sent.append(payload)

    def set_packet_handler(self, handler: object) -> None:
        self.handler = handler

    def statistics(self) -> str:
        return "stats"


def test_gate_drops_media_when_the_direction_forbids_sending() -> None:
    rtp = RecordingRtp()
    gate = GatedSession(rtp)  # type: ignore[arg-type]
    gate.send_payload(b"a", 0)
    gate.may_send = False
    gate.send_payload(b"b", 160)
    gate.may_send = True
    gate.paused = True
    gate.send_payload(b"c", 320)
    assert rtp.sent == [b"a"]
    assert gate.statistics() == "stats"
    gate.set_packet_handler(None)
    assert rtp.handler is None


def test_gate_relays_received_packets_and_holds_back_engine_packets() -> None:
    from rvoip_rtp_core import RtpPacket

    rtp = RecordingRtp()
    gate = GatedSession(rtp)  # type: ignore[arg-type]
    engine_seen: list[int] = []
    relayed: list[int] = []
    gate.set_packet_handler(lambda packet, arrival: engine_seen.append(packet.sequence_number))
    gate.relay = lambda packet: relayed.append(packet.sequence_number)
    packet = RtpPacket(0, 7, 160, 1234, b"x" * 160)
    rtp.handler(packet, 0.0)
    assert engine_seen == [7]
    assert relayed == [7]
    gate.relaying = True
    gate.send_payload(b"engine", 0)
    gate.forward(packet, 0)
    assert rtp.sent == [b"x" * 160]


def test_dtmf_is_decoded_per_rtp_source_and_flushed_at_close() -> None:
    from rvoip_media_core import MediaEngine
    from rvoip_rtp_core import DtmfEncoder, RtpPacket
    from rvoip_session_core import SessionId
    from rvoip_session_core._media import CallMedia
    from rvoip_session_core._offer_answer import NegotiatedAudio

    digits: list[str] = []
    media = CallMedia(SessionId("s"), MediaEngine(), on_dtmf=lambda d, ms: digits.append(d))
    media.negotiated = NegotiatedAudio("PCMU", 0, 101, None, True, True)

    def feed(ssrc: int, digit: str, timestamp: int, *, end: bool = True) -> None:
        for seq, p in enumerate(DtmfEncoder().packets(digit, 800)):
            packet = RtpPacket(101, seq, timestamp, ssrc, p.payload, p.marker)
            if end or not p.payload[1] & 0x80:
                media._other_packet(packet, 0.0)

    feed(1, "1", 320000)
    feed(2, "4", 1000)  # a second source with lower timestamps is not "old"
    feed(2, "5", 3000, end=False)
    assert digits == ["1", "4"]
    media.close()
    assert digits == ["1", "4", "5"]


@pytest.mark.anyio
async def test_media_manager_exposes_the_media_clock_counters() -> None:
    """The media clock's send counters are public (benchmarks read late packets there)."""
    from rvoip_session_core.testing import loopback_builder

    async with await loopback_builder("bob").build() as bob:
        stats = bob.media_manager.clock_stats
        assert stats is not None
        assert stats.packets >= 0
    assert bob.media_manager.clock_stats is None
