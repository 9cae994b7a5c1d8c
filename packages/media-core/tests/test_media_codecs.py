"""The codec interface: G.711 wrap, G.722, Opus, fmtp, resampling, engine streams at codec rates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from rvoip_media_core import (
    G722,
    MAX_FMTP_PARAMS,
    OPUS,
    PCMU,
    Codec,
    CodecError,
    FrameResampler,
    G711Codec,
    MediaEngine,
    OpusCodec,
    OpusParams,
    ToneGenerator,
    available_codecs,
    codec_info,
    format_fmtp,
    make_codec,
    parse_fmtp,
    resample,
    ulaw_encode,
)
from rvoip_rtp_core import RtpPacket

from .test_media_engine import FakeSession

CODEC_NAMES = [name for name in ("PCMU", "PCMA", "G722", "opus") if name in available_codecs()]


def dominant_frequency(samples: NDArray[np.int16], rate: int) -> float:
    """The strongest frequency of ``samples`` (Hann window, parabolic peak interpolation)."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    k = int(np.argmax(spectrum[1:])) + 1
    if 1 <= k < len(spectrum) - 1:
        a, b, c = spectrum[k - 1], spectrum[k], spectrum[k + 1]
        denom = a - 2 * b + c
        k_frac = k + (0.5 * (a - c) / denom if denom else 0.0)
    else:
        k_frac = float(k)
    return k_frac * rate / len(samples)


def through(codec_name: str, frequency: float, frames: int = 25) -> tuple[NDArray[np.int16], int]:
    coder = make_codec(codec_name)
    rate = coder.info.sample_rate
    n = coder.info.pcm_samples(20)
    tone = ToneGenerator(frequency, 0.3, rate)
    out = [coder.decode(coder.encode(tone.read(n))) for _ in range(frames)]
    return np.concatenate(out[5:]), rate


def test_available_codecs_has_the_hd_ones() -> None:
    """The wheels this project depends on give G.722 and Opus."""
    assert set(available_codecs()) == {"PCMU", "PCMA", "G722", "opus"}


def test_codec_info_quirks() -> None:
    """G.722 samples at 16 kHz on an 8 kHz RTP clock; Opus is opus/48000/2 (RFC 7587)."""
    assert codec_info("g722") is G722
    assert (G722.payload_type, G722.clock_rate, G722.sample_rate) == (9, 8000, 16000)
    assert G722.pcm_samples(20) == 320
    assert G722.rtp_ticks(20) == 160
    assert codec_info("OPUS") is OPUS
    assert (OPUS.clock_rate, OPUS.channels, OPUS.static) == (48000, 2, False)
    assert codec_info("pcmu") is PCMU
    assert not PCMU.wideband
    with pytest.raises(CodecError):
        codec_info("speex")


def test_g711_codec_is_the_kernel() -> None:
    """The PCMU wrap gives exactly the kernel's codes (no second G.711 implementation)."""
    pcm = ToneGenerator(440, 0.5).read(160)
    coder = G711Codec(Codec.PCMU)
    assert coder.encode(pcm) == ulaw_encode(pcm).tobytes()
    assert coder.conceal(160) is None
    assert len(coder.decode(coder.encode(pcm))) == 160


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_one_khz_tone_comes_back(name: str) -> None:
    """A 1 kHz tone through each codec keeps its frequency within a few Hz."""
    samples, rate = through(name, 1000.0)
    assert abs(dominant_frequency(samples, rate) - 1000.0) < 3.0


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(CODEC_NAMES),
    frequency=st.integers(min_value=300, max_value=3400),
)
def test_tone_frequency_property(name: str, frequency: int) -> None:
    """Any voice-band tone comes back from any codec within a few Hz."""
    samples, rate = through(name, float(frequency))
    assert abs(dominant_frequency(samples, rate) - frequency) < 5.0


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(CODEC_NAMES),
    data=st.lists(st.integers(-32768, 32767), min_size=1, max_size=960),
)
def test_encode_decode_preserves_length_and_rate(name: str, data: list[int]) -> None:
    """One 20 ms frame of any PCM decodes to one 20 ms frame at the codec's rate."""
    coder = make_codec(name)
    n = coder.info.pcm_samples(20)
    frame = np.resize(np.array(data, dtype=np.int16), n)
    out = coder.decode(coder.encode(frame))
    assert out.dtype == np.int16
    assert len(out) == n


def test_g722_payload_is_half_a_byte_per_sample() -> None:
    """64 kbit/s G.722: 320 samples (20 ms at 16 kHz) make 160 bytes."""
    coder = make_codec("G722")
    assert len(coder.encode(np.zeros(320, dtype=np.int16))) == 160


def test_opus_plc_and_fec() -> None:
    """Opus conceals a lost frame with libopus PLC, or rebuilds it from the next packet's FEC."""
    coder = OpusCodec(send=OpusParams(useinbandfec=True))
    tone = ToneGenerator(600, 0.3, 48000)
    packets = [coder.encode(tone.read(960)) for _ in range(20)]
    for packet in packets[:10]:
        coder.decode(packet)
    plc = coder.conceal(960)
    assert plc is not None
    assert len(plc) == 960
    assert abs(dominant_frequency(plc, 48000) - 600) < 20
    fec = coder.conceal(960, next_payload=packets[11])
    assert fec is not None
    assert len(fec) == 960


def test_opus_rejects_garbage_with_codec_error() -> None:
    """A corrupt packet from the network raises CodecError, never crashes."""
    coder = OpusCodec()
    with pytest.raises(CodecError):
        coder.decode(b"\xff" * 3)


def test_opus_dtx_off_by_default() -> None:
    """RFC 7587 §6.1: usedtx defaults to 0, so silence is still sent as real packets."""
    coder = OpusCodec()
    sizes = [len(coder.encode(np.zeros(960, dtype=np.int16))) for _ in range(30)]
    assert all(size >= 1 for size in sizes)
    assert OpusParams().usedtx is False


# ---------------------------------------------------------------------------- fmtp


def test_opus_fmtp_both_ways() -> None:
    """RFC 7587 §6.1 parameters are read and written."""
    params = OpusParams.from_fmtp("useinbandfec=1; maxplaybackrate=16000;stereo=0; sprop-stereo=0")
    assert params == OpusParams(maxplaybackrate=16000, useinbandfec=True)
    assert OpusParams.from_fmtp(params.to_fmtp()) == params
    assert "usedtx" not in OpusParams().to_fmtp()


def test_fmtp_hostile_values_become_defaults() -> None:
    """Out-of-range and non-numeric values fall back or clamp; no exception."""
    params = OpusParams.from_fmtp("maxplaybackrate=999999999999;maxaveragebitrate=x;stereo=2")
    assert params.maxplaybackrate == 48000
    assert params.maxaveragebitrate == 510000
    assert params.stereo is False


@given(st.text(max_size=2000))
def test_parse_fmtp_never_raises(text: str) -> None:
    """Any a=fmtp text parses to at most MAX_FMTP_PARAMS lower-cased keys."""
    params = parse_fmtp(text)
    assert len(params) <= MAX_FMTP_PARAMS
    assert all(key == key.lower() for key in params)
    OpusParams.from_fmtp(text)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9\-]{0,10}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9\-]{0,8}", fullmatch=True),
        max_size=10,
    )
)
def test_fmtp_round_trip(params: dict[str, str]) -> None:
    """format then parse gives the same parameters."""
    assert parse_fmtp(format_fmtp(params)) == params


# ---------------------------------------------------------------------------- resampling


def test_frame_resampler_keeps_frequency_and_frame_size() -> None:
    """8 kHz to 48 kHz frame by frame: 960 samples per 160, the tone's pitch unchanged."""
    up = FrameResampler(8000, 48000)
    tone = ToneGenerator(1000, 0.3, 8000)
    frames = [up.process(tone.read(160)) for _ in range(30)]
    assert {len(f) for f in frames} == {960}
    assert abs(dominant_frequency(np.concatenate(frames[5:]), 48000) - 1000) < 2


def test_resample_whole_buffer() -> None:
    """resample() of one second keeps length × ratio and the pitch."""
    x = ToneGenerator(700, 0.3, 16000).read(16000)
    y = resample(x, 16000, 8000)
    assert abs(len(y) - 8000) <= 1
    assert abs(dominant_frequency(y, 8000) - 700) < 2
    assert resample(x, 16000, 16000) is not x


# ---------------------------------------------------------------------------- engine


def _tick(engine: MediaEngine, now: float) -> None:
    """One tick with the driver's part: send what the engine returns."""
    for stream, payload, ts, marker in engine.tick(now):
        stream.session.send_payload(payload, ts, marker)


def _loop(name: str, frequency: float, ticks: int = 40) -> tuple[list[NDArray[np.int16]], list]:
    """Two streams of ``name`` wired back to back; the tone received by the second."""
    engine = MediaEngine()
    a, b = FakeSession(), FakeSession()
    coder_a, coder_b = make_codec(name), make_codec(name)
    rate = coder_a.info.sample_rate
    heard: list[NDArray[np.int16]] = []
    stream_a = engine.add_stream(a, coder_a, source=ToneGenerator(frequency, 0.3, rate))
    engine.add_stream(b, coder_b, sink=heard.append)
    for i in range(ticks):
        _tick(engine, i * 0.02)
        a.deliver_to(b, stream_a.payload_type, i * 0.02)
    return heard, a.sent


@pytest.mark.parametrize("name", [n for n in CODEC_NAMES if n in ("G722", "opus")])
def test_engine_runs_stream_at_codec_rate(name: str) -> None:
    """A G.722/Opus stream reads and plays frames at its codec rate, stamps RTP in its clock."""
    heard, sent = _loop(name, 1000.0)
    info = codec_info(name)
    assert {len(f) for f in heard} == {info.pcm_samples(20)}
    steps = {(sent[i + 1][1] - sent[i][1]) & 0xFFFFFFFF for i in range(len(sent) - 1)}
    # RFC 3551 §4.5.2: G.722's timestamp moves 160 per 20 ms though 320 samples were sent.
    assert steps == {info.rtp_ticks(20)}
    played = np.concatenate([f for f in heard if np.any(f)][3:])
    assert abs(dominant_frequency(played, info.sample_rate) - 1000) < 3


def test_engine_statistics_name_the_wideband_model() -> None:
    """A G.722 stream's quality comes from G.107.1, a PCMU stream's from G.107."""
    engine = MediaEngine()
    wide = engine.add_stream(FakeSession(), make_codec("G722"))
    narrow = engine.add_stream(FakeSession(), Codec.PCMU)
    assert wide.codec_name == "G722"
    assert wide.wideband
    assert engine.stream_statistics(wide).quality.model == "G.107.1"
    assert engine.stream_statistics(narrow).quality.model == "G.107"
    assert narrow.codec_name == "PCMU"


def test_engine_conceals_lost_opus_frame_with_codec_plc() -> None:
    """A packet lost in the middle of an Opus stream is concealed (counted, full-length frame)."""
    engine = MediaEngine()
    a, b = FakeSession(), FakeSession()
    heard: list[NDArray[np.int16]] = []
    stream_a = engine.add_stream(a, make_codec("opus"), source=ToneGenerator(500, 0.3, 48000))
    stream_b = engine.add_stream(b, make_codec("opus"), sink=heard.append)
    for i in range(30):
        _tick(engine, i * 0.02)
        a.deliver_to(b, stream_a.payload_type, i * 0.02, drop=i == 12)
    assert stream_b.frames_concealed == 1
    assert {len(f) for f in heard} == {960}


def test_engine_g722_decoder_survives_garbage_payloads() -> None:
    """Random bytes as a G.722 payload decode to noise of the right length (no exception)."""
    engine = MediaEngine()
    b = FakeSession()
    heard: list[NDArray[np.int16]] = []
    engine.add_stream(b, make_codec("G722"), sink=heard.append)
    rng = np.random.default_rng(1)
    assert b.handler is not None
    for i in range(10):
        payload = rng.integers(0, 256, 160, dtype=np.uint8).tobytes()
        b.handler(RtpPacket(9, i, i * 160, 77, payload, False), i * 0.02)
        engine.tick(i * 0.02)
    assert {len(f) for f in heard} == {320}


# ---------------------------------------------------------------------------- G.107.1


def test_wideband_emodel_reference_values() -> None:
    """G.107.1: no delay, no loss rates Ro,WB − Ie,WB; loss lowers R; the MOS uses R/1.29."""
    from rvoip_media_core import (
        G722_BPL_WB,
        G722_IE_WB,
        emodel_wb_r_factor,
        mos_from_r,
        mos_from_r_wb,
        quality_metrics,
    )

    assert emodel_wb_r_factor(0.0, 0.0, ie_wb=G722_IE_WB) == pytest.approx(129.0 - 13.0)
    # Ie,eff,WB = Ie + (129 − Ie) · Ppl / (Ppl + Bpl) at 2 % random loss.
    expected = 129 - (13 + (129 - 13) * 2 / (2 + G722_BPL_WB))
    assert emodel_wb_r_factor(0.0, 2.0) == pytest.approx(expected)
    assert emodel_wb_r_factor(200.0, 0.0) < emodel_wb_r_factor(50.0, 0.0)
    assert mos_from_r_wb(129.0) == mos_from_r(100.0)
    q = quality_metrics(
        packet_loss_percent=0.0,
        jitter_ms=0.0,
        round_trip_ms=0.0,
        jitter_buffer_ms=40.0,
        ie=G722_IE_WB,
        bpl=G722_BPL_WB,
        wideband=True,
    )
    assert q.model == "G.107.1"
    assert q.r_factor > 100.0


@settings(max_examples=50, deadline=None)
@given(
    delay=st.floats(0.0, 600.0),
    loss=st.floats(0.0, 50.0),
    more=st.floats(0.1, 20.0),
)
def test_wideband_r_falls_with_loss(delay: float, loss: float, more: float) -> None:
    """More loss never raises R_WB, and R_WB stays at most Ro,WB."""
    from rvoip_media_core import emodel_wb_r_factor

    assert emodel_wb_r_factor(delay, loss + more) <= emodel_wb_r_factor(delay, loss) + 1e-9
    assert emodel_wb_r_factor(delay, loss) <= 129.0


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(CODEC_NAMES), payload=st.binary(max_size=400))
def test_decoders_take_any_bytes(name: str, payload: bytes) -> None:
    """Every byte string from the network decodes to int16 PCM or raises CodecError only."""
    coder = make_codec(name)
    try:
        out = coder.decode(payload)
    except CodecError:
        return
    assert out.dtype == np.int16
    assert len(out) <= coder.info.sample_rate * 120 // 1000 * 2


def test_conference_mixes_parties_at_different_rates() -> None:
    """An 8 kHz party and a 48 kHz party of one 8 kHz conference hear each other's tone."""
    from rvoip_media_core import Conference, tone_level

    conf = Conference()
    narrow = conf.join()
    wide = conf.join(sample_rate=48000)
    tone8 = ToneGenerator(700, 0.3, 8000)
    tone48 = ToneGenerator(1300, 0.3, 48000)
    heard_narrow: list[NDArray[np.int16]] = []
    heard_wide: list[NDArray[np.int16]] = []
    for _ in range(20):
        narrow.sink(tone8.read(160))
        wide.sink(tone48.read(960))
        heard_narrow.append(narrow.read(160))
        heard_wide.append(wide.read(960))
    assert {len(f) for f in heard_wide} == {960}
    assert tone_level(np.concatenate(heard_narrow[5:]), 1300, 8000) > 0.5
    assert tone_level(np.concatenate(heard_wide[5:]), 700, 48000) > 0.5


@pytest.mark.parametrize("backend", ["cffi", "numpy"])
def test_jitter_peek_shows_the_packet_after_a_loss(backend: str) -> None:
    """After a LOST pop, peek() gives the next packet (C kernel and Python twin alike)."""
    from rvoip_media_core import JitterBuffer, PopStatus

    jb = JitterBuffer(samples_per_frame=960, clock_rate=48000, backend=backend)
    assert jb.peek() is None
    peeked: list[bytes | None] = []
    played: list[bytes] = []
    for seq in range(10):  # one packet in and one frame out per 20 ms; 4 is lost
        if seq != 4:
            jb.insert(seq, seq * 960, bytes([seq]) * 10, seq * 0.02)
        status, payload = jb.pop()
        if status is PopStatus.LOST:
            peeked.append(jb.peek())
        elif status is PopStatus.FRAME:
            played.append(payload)
    assert peeked == [bytes([5]) * 10]
    assert bytes([5]) * 10 in played  # peek took nothing away


class _SpyOpus:
    """An OpusCodec that records what the engine passes to ``conceal``."""

    def __init__(self) -> None:
        self._inner = OpusCodec()
        self.info = self._inner.info
        self.payload_type = self._inner.payload_type
        self.conceal_calls: list[bytes | None] = []

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        return self._inner.encode(pcm)

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        return self._inner.decode(payload)

    def conceal(self, samples: int, next_payload: bytes | None = None) -> NDArray[np.int16] | None:
        self.conceal_calls.append(next_payload)
        return self._inner.conceal(samples, next_payload)


def test_engine_rebuilds_a_lost_opus_frame_from_fec() -> None:
    """A lost Opus packet is concealed with the packet after it (its in-band FEC) when that
    one is already in the jitter buffer; the frame stays full length and keeps the tone."""
    from rvoip_media_core import tone_level

    engine = MediaEngine()
    a, b = FakeSession(), FakeSession()
    heard: list[NDArray[np.int16]] = []
    sender = OpusCodec(send=OpusParams(useinbandfec=True), expected_loss_percent=20)
    stream_a = engine.add_stream(a, sender, source=ToneGenerator(800, 0.3, 48000))
    receiver = _SpyOpus()
    stream_b = engine.add_stream(b, receiver, sink=heard.append)
    sent: list[bytes] = []
    for i in range(40):
        _tick(engine, i * 0.02)
        sent.append(a.sent[-1][0])
        a.deliver_to(b, stream_a.payload_type, i * 0.02, drop=i == 20)
    assert stream_b.frames_concealed == 1
    assert receiver.conceal_calls == [sent[21]]
    played = [f for f in heard if np.any(f)]
    assert {len(f) for f in heard} == {960}
    assert all(tone_level(f, 800, 48000) > 0.3 for f in played[5:])
