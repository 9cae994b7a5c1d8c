"""Two RTP sessions on loopback (rtp-core) driven by the media engine (media-core).

A 1 kHz tone goes both ways for 2 s: it is detected in the decoded audio, and the
statistics show no loss and sane jitter. With 5 % of packets dropped by the test
(every 20th packet, deterministic) the reported loss is 5 % ± 1 and the MOS drops
as ITU-T G.107 predicts for that loss and the stream's mouth-to-ear delay.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import numpy as np
import pytest

from rvoip_media_core import (
    Codec,
    MediaEngine,
    MediaStream,
    StreamStatistics,
    ToneGenerator,
    detect_tone,
    emodel_r_factor,
    mos_from_r,
    run_media_engine,
)
from rvoip_rtp_core import RtpSessionConfig, open_rtp_session

SECONDS = 2.0
FRAMES = int(SECONDS / 0.02)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _every_20th_dropped() -> Callable[[bytes], bool]:
    count = 0

    def keep(_datagram: bytes) -> bool:
        nonlocal count
        count += 1
        return count % 20 != 10

    return keep


async def _exchange(
    drop: bool, codec: Codec
) -> tuple[MediaEngine, list[tuple[MediaStream, list[np.ndarray]]]]:
    engine = MediaEngine()
    config = RtpSessionConfig(local_host="127.0.0.1", port=0)
    async with open_rtp_session(config) as a, open_rtp_session(config) as b:
        a.set_remote(b.local_rtp_address, b.local_rtcp_address)
        b.set_remote(a.local_rtp_address, a.local_rtcp_address)
        if drop:
            a.outgoing_filter = _every_20th_dropped()
            b.outgoing_filter = _every_20th_dropped()
        heard_a: list[np.ndarray] = []
        heard_b: list[np.ndarray] = []
        sa = engine.add_stream(a, codec, 20, ToneGenerator(1000.0), heard_a.append)
        sb = engine.add_stream(b, codec, 20, ToneGenerator(1000.0), heard_b.append)
        async with run_media_engine(engine):
            with anyio.fail_after(30):
                while sa.frames_sent < FRAMES or sb.frames_sent < FRAMES:
                    await anyio.sleep(0.02)
        with anyio.fail_after(5):  # let the last datagrams land
            await anyio.sleep(0.1)
        result = [(sa, heard_a), (sb, heard_b)]
        # Statistics are read while the sessions are still open.
        stats = [(s.statistics(bpl=engine.bpl), h) for s, h in result]
        engine.remove_stream(sa)
        engine.remove_stream(sb)
    for st, heard in stats:
        _check(st, heard, drop, engine.bpl)
    return engine, result


def _check(st: StreamStatistics, heard: list[np.ndarray], drop: bool, bpl: float) -> None:
    received = st.rtp.received
    assert received is not None
    played = [f for f in heard if f.any()]
    assert len(played) > FRAMES * 0.8
    with_tone = sum(detect_tone(f, 1000.0) for f in played)
    # Concealed frames (pitch repetition) also carry the tone; allow the fade-outs.
    assert with_tone >= 0.9 * len(played)
    assert st.jitter_buffer.late == 0  # loopback does not reorder
    # Sane: a few ms on loopback; the bound leaves room for a loaded CI machine.
    assert received.jitter_seconds < 0.04
    m2e = st.quality.mouth_to_ear_ms
    # Frames the jitter buffer had to discard (a stalled event loop delivers bursts)
    # count as loss in the quality figure, on top of the network loss.
    jb = st.jitter_buffer
    discarded = 100.0 * (jb.dropped_overflow + jb.dropped_adapt) / received.packets_expected

    def g107_mos(loss: float) -> float:
        return mos_from_r(emodel_r_factor(m2e, loss, bpl=bpl, burst_r=st.burst_ratio))

    assert st.quality.packet_loss_percent == pytest.approx(received.loss_percent + discarded)
    assert st.quality.mos_score == pytest.approx(g107_mos(st.quality.packet_loss_percent))
    if not drop:
        assert received.packets_lost == 0
        assert received.loss_percent == 0.0
        if discarded == 0.0:
            assert st.frames_concealed == 0
            assert st.quality.mos_score > 4.3
    else:
        assert 4.0 <= received.loss_percent <= 6.0
        assert st.frames_concealed > 0
        assert g107_mos(6.0 + discarded) <= st.quality.mos_score <= g107_mos(4.0 + discarded)
        assert st.quality.mos_score < g107_mos(0.0) - 0.3


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("drop", "codec"),
    [(False, Codec.PCMU), (True, Codec.PCMA)],
    ids=["clean-PCMU", "5pct-loss-PCMA"],
)
async def test_tone_both_ways_on_loopback(anyio_backend: str, drop: bool, codec: Codec) -> None:
    engine, result = await _exchange(drop, codec)
    assert engine.streams == []
    assert all(stream.frames_sent >= FRAMES for stream, _heard in result)
