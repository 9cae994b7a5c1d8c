"""The media engine core (sans-IO): which streams exist and what each tick does.

One tick per packet time (20 ms): pop one frame from every due stream's jitter buffer,
decode them as one batch, conceal losses and hand PCM to each sink; read every due
stream's source, encode the frames as one batch and return what to send. The clock
and the sending live in ``_driver.py``; this module never reads a clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import numpy as np

from rvoip_media_core._codecs import AudioCodec, CodecError
from rvoip_media_core._emodel import (
    G711_BPL_APPENDIX_I_PLC,
    G722_BPL_WB,
    G722_IE_WB,
    OPUS_BPL_WB,
    OPUS_IE_WB,
    LossRunTracker,
    QualityEstimate,
    quality_from_statistics,
)
from rvoip_media_core._errors import MediaCoreError
from rvoip_media_core._g711 import Codec, decode, encode
from rvoip_media_core._jitter import JitterBuffer, JitterStats, PlayBatch, PopStatus
from rvoip_media_core._plc import Concealer
from rvoip_media_core._sources import AudioSink, AudioSource, SilenceSource

TICK_SECONDS = 0.02
SAMPLE_RATE = 8000
TICK_SAMPLES = 160
_FRAME = 0
_LOST = 1
_STRIDE = 320
_SILENCE = SilenceSource()  # stateless: one for every silent stream


class RtpSessionLike(Protocol):
    """What the engine needs from an ``rvoip_rtp_core.RtpSession``."""

    def send_payload(
        self,
        payload: bytes,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
        now: float | None = None,
    ) -> None:
        """Send one encoded frame as an RTP packet."""
        ...

    def set_packet_handler(self, handler: Callable[[Any, float], None] | None) -> None:
        """Deliver every received RTP packet, with its arrival time, to ``handler``."""
        ...

    def statistics(self) -> Any:
        """The session's RTP/RTCP statistics (read for the stream's quality figures)."""
        ...


PacketHandler = Callable[[Any, float], None]


@attrs.frozen
class StreamStatistics:
    """Per-stream counters of the engine, the jitter buffer, RTP and the E-model."""

    frames_sent: int
    frames_played: int
    frames_concealed: int
    frames_empty: int
    jitter_buffer: JitterStats
    jitter_buffer_ms: float
    rtp: Any  # rvoip_rtp_core.SessionStatistics
    quality: QualityEstimate
    burst_ratio: float = 1.0  # G.107 BurstR estimated from the play-out loss pattern


def _payload_type(stream: MediaStream) -> int:
    codec = stream.codec
    return codec.value if isinstance(codec, Codec) else codec.payload_type


@attrs.define(eq=False)
class MediaStream:
    """Handle of one stream in the engine (returned by ``MediaEngine.add_stream``).

    ``codec`` is a G.711 ``Codec`` (encoded and decoded in batches with every other
    stream of that law) or a stream's own ``AudioCodec`` (G.722, Opus: stateful coders,
    one call each per packet). ``sample_rate`` is the PCM rate sources are read and
    sinks fed at; ``rtp_step`` the RTP timestamp units per packet (RFC 3551 §4.5.2:
    G.722 samples at 16 kHz on an 8 kHz RTP clock).
    """

    id: int
    session: RtpSessionLike
    codec: Codec | AudioCodec
    ptime_ms: int
    source: AudioSource
    sink: AudioSink | None
    jitter: JitterBuffer
    concealer: Concealer
    on_packet: PacketHandler | None = None
    muted: bool = False
    active: bool = True
    timestamp: int = 0
    frames_sent: int = 0
    frames_played: int = 0
    frames_concealed: int = 0
    frames_empty: int = 0
    oversize_packets: int = 0
    source_errors: int = 0
    sink_errors: int = 0
    loss_runs: LossRunTracker = attrs.field(factory=LossRunTracker)
    remote_ssrc: int | None = None
    sample_rate: int = SAMPLE_RATE
    clock_rate: int = SAMPLE_RATE
    rtp_step: int = TICK_SAMPLES
    decode_errors: int = 0
    # hot path: the codec's payload type as a plain int (Enum.value is a slow descriptor).
    payload_type: int = attrs.field(
        init=False, default=attrs.Factory(_payload_type, takes_self=True)
    )

    @property
    def samples(self) -> int:
        """PCM samples per packet (ptime × the stream's sample rate)."""
        return self.ptime_ms * self.sample_rate // 1000

    @property
    def codec_name(self) -> str:
        """The encoding name of the stream's codec (``PCMU``, ``G722``, ``opus``...)."""
        codec = self.codec
        return codec.name if isinstance(codec, Codec) else codec.info.name

    @property
    def wideband(self) -> bool:
        """True when the stream's quality is rated by the wideband E-model (G.107.1)."""
        codec = self.codec
        return not isinstance(codec, Codec) and codec.info.wideband

    @property
    def ticks_per_packet(self) -> int:
        """Engine ticks between two packets of this stream."""
        return self.ptime_ms // 20

    def receive(self, packet: Any, arrival: float) -> None:
        """Feed one received RTP packet (called from the session's datagram callback)."""
        if packet.payload_type != self.payload_type:
            if self.on_packet is not None:
                self.on_packet(packet, arrival)
            return
        ssrc = packet.ssrc
        if ssrc != self.remote_ssrc:
            if self.remote_ssrc is not None:
                # A new sender (RFC 3550 §8.2 collision or re-INVITE): start afresh.
                self.jitter.reset()
                self.concealer.reset()
            self.remote_ssrc = ssrc
        payload = packet.payload
        if len(payload) > _STRIDE:
            self.oversize_packets += 1
            return
        self.jitter.insert(packet.sequence_number, packet.timestamp, payload, arrival)

    def statistics(self, *, bpl: float = G711_BPL_APPENDIX_I_PLC) -> StreamStatistics:
        """A snapshot including E-model quality of the received stream."""
        jb = self.jitter.stats()
        jb_ms = self.jitter.delay_ms(self.clock_rate)
        rtp = self.session.statistics()
        burst_r = self.loss_runs.burst_ratio
        ie = 0.0
        wideband = self.wideband
        if wideband:
            opus = self.codec_name == "opus"
            ie = OPUS_IE_WB if opus else G722_IE_WB
            bpl = OPUS_BPL_WB if opus else G722_BPL_WB
        quality = quality_from_statistics(
            rtp,
            jitter_buffer_ms=jb_ms,
            packetization_ms=float(self.ptime_ms),
            jitter=jb,
            ie=ie,
            bpl=bpl,
            burst_r=burst_r,
            wideband=wideband,
        )
        return StreamStatistics(
            self.frames_sent,
            self.frames_played,
            self.frames_concealed,
            self.frames_empty,
            jb,
            jb_ms,
            rtp,
            quality,
            burst_r,
        )


# (codec, samples per packet, ticks per packet); the codec is a G.711 law (batched) or
# one stream's own AudioCodec (a group of one).
_GroupKey = tuple[Codec | AudioCodec, int, int]

Outgoing = tuple[MediaStream, bytes, int, bool]
"""(stream, payload, RTP media timestamp, marker) — one packet to send this tick."""


@attrs.define(eq=False)
class MediaEngine:
    """All media streams of a process, processed in batches once per tick (sans-IO).

    ``bpl`` is the packet-loss robustness used for quality figures: the G.113 value
    for G.711 with Appendix I PLC (25.1), since the engine conceals losses that way.
    """

    bpl: float = G711_BPL_APPENDIX_I_PLC
    min_jitter_frames: int = 2
    max_jitter_frames: int = 12
    _streams: dict[int, MediaStream] = attrs.field(factory=dict, init=False)
    _ids: Any = attrs.field(factory=lambda: itertools.count(1), init=False)
    _tick: int = attrs.field(default=0, init=False)
    _version: int = attrs.field(default=0, init=False)
    # Due streams by group, per (tick parity, phase, phases): ptime 20 or 40 ms, so the
    # pattern repeats every 2 ticks; rebuilt only when a stream is added or removed.
    _group_cache: dict[tuple[int, int, int], dict[_GroupKey, list[MediaStream]]] = attrs.field(
        factory=dict, init=False
    )
    _play_cache: dict[tuple[_GroupKey, tuple[int, int, int]], PlayBatch] = attrs.field(
        factory=dict, init=False
    )
    _pending: dict[_GroupKey, list[MediaStream]] = attrs.field(factory=dict, init=False)
    _pending_key: tuple[int, int, int] = attrs.field(default=(0, 0, 1), init=False)

    @property
    def streams(self) -> list[MediaStream]:
        """The streams now in the engine."""
        return list(self._streams.values())

    @property
    def stream_count(self) -> int:
        """How many streams are in the engine (cheaper than ``len(streams)``)."""
        return len(self._streams)

    @property
    def ticks(self) -> int:
        """Ticks processed so far."""
        return self._tick

    def add_stream(
        self,
        rtp_session: RtpSessionLike,
        codec: Codec | AudioCodec = Codec.PCMU,
        ptime: int = 20,
        source: AudioSource | None = None,
        sink: AudioSink | None = None,
        *,
        on_packet: PacketHandler | None = None,
    ) -> MediaStream:
        """Start sending ``source`` and playing received audio to ``sink`` on a session.

        Args:
            rtp_session: an ``rvoip_rtp_core.RtpSession`` (or anything with its methods);
                the engine installs itself as its packet handler.
            codec: ``Codec.PCMU``/``Codec.PCMA`` (the batched G.711 path), or a coder
                of its own for this stream (``make_codec("G722")``, ``OpusCodec(...)``):
                the stream then runs at the codec's sample rate and RTP clock.
            ptime: packet time in ms, 20 or 40.
            source: what to send (default silence), read at the stream's sample rate.
            sink: called with each played int16 frame (every packet time), at the
                stream's sample rate.
            on_packet: receives RTP packets of other payload types (e.g. RFC 4733).
        """
        if ptime not in (20, 40):
            raise MediaCoreError(f"ptime {ptime} ms not supported (20 or 40)")
        if isinstance(codec, Codec):
            rate = clock = SAMPLE_RATE
        else:
            rate, clock = codec.info.sample_rate, codec.info.clock_rate
        samples = ptime * rate // 1000
        step = ptime * clock // 1000
        jb = JitterBuffer(
            # The jitter buffer orders and times packets by RTP timestamp: its frame
            # length is in RTP clock units (G.722: 160 per 20 ms, not 320).
            samples_per_frame=step,
            clock_rate=clock,
            min_frames=self.min_jitter_frames,
            max_frames=self.max_jitter_frames,
        )
        stream = MediaStream(
            id=next(self._ids),
            session=rtp_session,
            codec=codec,
            ptime_ms=ptime,
            source=source if source is not None else _SILENCE,
            sink=sink,
            jitter=jb,
            concealer=Concealer(samples, rate),
            on_packet=on_packet,
            sample_rate=rate,
            clock_rate=clock,
            rtp_step=step,
        )
        self._streams[stream.id] = stream
        self._changed()
        rtp_session.set_packet_handler(stream.receive)
        return stream

    def remove_stream(self, stream: MediaStream) -> None:
        """Stop a stream and detach it from its session (idempotent)."""
        if self._streams.pop(stream.id, None) is not None:
            stream.active = False
            stream.session.set_packet_handler(None)
            self._changed()

    def set_source(self, stream: MediaStream, source: AudioSource | None) -> None:
        """Replace what a stream sends (None: silence)."""
        stream.source = source if source is not None else _SILENCE

    def set_sink(self, stream: MediaStream, sink: AudioSink | None) -> None:
        """Replace where a stream's received audio goes."""
        stream.sink = sink

    def mute(self, stream: MediaStream, muted: bool = True) -> None:
        """Send silence instead of the source (RTP keeps flowing; the source is paused)."""
        stream.muted = muted

    def _changed(self) -> None:
        self._version += 1
        self._group_cache.clear()
        self._play_cache.clear()

    def _groups(self, phase: int, phases: int) -> dict[_GroupKey, list[MediaStream]]:
        groups: dict[_GroupKey, list[MediaStream]] = {}
        tick = self._tick
        for stream in self._streams.values():
            sid = stream.id
            if sid % phases != phase:
                continue
            ptime = stream.ptime_ms  # hot path (rebuilt on every add/remove): no properties
            tpp = ptime // 20
            if tick % tpp == sid % tpp:
                key = (stream.codec, ptime * stream.sample_rate // 1000, tpp)
                groups.setdefault(key, []).append(stream)
        return groups

    def phase_sizes(self, phases: int) -> list[int]:
        """How many streams each of ``phases`` phases of a tick holds (see ``begin_tick``)."""
        sizes = [0] * phases
        for sid in self._streams:
            sizes[sid % phases] += 1
        return sizes

    def tick(self, now: float) -> list[Outgoing]:
        """Process one packet time: the packets to send, then play-out (``begin`` + ``end``)."""
        outgoing = self.begin_tick(now)
        self.end_tick()
        return outgoing

    def begin_tick(self, now: float, phase: int = 0, phases: int = 1) -> list[Outgoing]:
        """First half of a tick: read every due source, encode in batches, return packets.

        The driver sends these right away and then calls ``end_tick`` so the play-out
        work never delays sending. ``now`` is the tick's time (no clock is read here).

        With ``phases`` > 1 a tick is split in that many parts spread over the packet
        time: this call takes only the streams with ``id % phases == phase``, and the
        driver calls begin/end for phases 0 .. phases-1 in order (the tick counter moves
        after the last). Each stream still sends exactly every packet time, at its own
        offset, and no single wake-up has to send every stream's packet.
        """
        key = (self._tick & 1, phase, phases)
        groups = self._group_cache.get(key)
        if groups is None:
            groups = self._group_cache[key] = self._groups(phase, phases)
        self._pending = groups
        self._pending_key = key
        outgoing: list[Outgoing] = []
        for (codec, samples, _tpp), streams in groups.items():
            if codec.__class__ is Codec:
                self._send_group(codec, samples, streams, outgoing)
            else:
                self._send_coded(codec, samples, streams, outgoing)  # type: ignore[arg-type]
        return outgoing

    def end_tick(self) -> None:
        """Second half of a tick (or of its phase): play out the due streams.

        Pops, decodes, conceals and delivers one frame per due stream.
        """
        key = self._pending_key
        for group, streams in self._pending.items():
            self._play_group(group, key, streams)
        self._pending = {}
        if key[1] == key[2] - 1:  # the last phase of the tick
            self._tick += 1

    def _play_group(
        self, group: _GroupKey, tick_key: tuple[int, int, int], streams: list[MediaStream]
    ) -> None:
        codec, samples, _tpp = group
        if codec.__class__ is not Codec:
            self._play_coded(codec, samples, streams)  # type: ignore[arg-type]
            return
        key = (group, tick_key)
        batch = self._play_cache.get(key)
        if batch is None or batch.owner is not streams or not batch.valid:
            batch = self._play_cache[key] = PlayBatch([s.jitter for s in streams], owner=streams)
        batch.pop()
        statuses = batch.statuses.tolist()
        # Nothing received (streams that never get RTP, e.g. a call set up and torn down
        # at once): no decode. Rows of other statuses are never read.
        pcm: Any = (
            decode(codec, batch.out[:, :samples]) if _FRAME in statuses else [None] * len(streams)
        )
        # hot path: one pass over plain lists (tolist) instead of numpy scalar indexing.
        for stream, status, length, frame in zip(
            streams, statuses, batch.lens.tolist(), pcm, strict=True
        ):
            conc = stream.concealer
            if status == _FRAME:
                if length != samples:
                    short = np.zeros(samples, dtype=np.int16)
                    k = min(length, samples)
                    short[:k] = frame[:k]
                    frame = short
                frame = conc.good(frame)
                stream.frames_played += 1
                stream.loss_runs.update(False)
            elif status == _LOST:
                frame = conc.conceal()
                stream.frames_concealed += 1
                stream.loss_runs.update(True)
            else:
                frame = conc.conceal() if conc.active else np.zeros(samples, dtype=np.int16)
                stream.frames_empty += 1
            sink = stream.sink
            if sink is not None:
                try:
                    sink(frame)
                except Exception:  # one broken sink must not stop every other call's media
                    stream.sink_errors += 1

    def _send_group(
        self, codec: Codec, samples: int, streams: list[MediaStream], outgoing: list[Outgoing]
    ) -> None:
        silence = np.zeros(samples, dtype=np.int16)
        shape = silence.shape
        frames: list[Any] = []
        append = frames.append
        for stream in streams:
            if stream.muted:
                append(silence)
                continue
            try:
                frame = stream.source.read(samples)
                if frame.shape != shape:
                    raise MediaCoreError(f"source returned shape {frame.shape}")
                append(frame)
            except Exception:  # a broken source sends silence; the others go on
                stream.source_errors += 1
                append(silence)
        # One concatenate + one kernel call for the group; one bytes object, sliced per packet.
        data = encode(codec, np.concatenate(frames)).tobytes()
        add = outgoing.append
        start = 0
        for stream in streams:
            ts = stream.timestamp
            end = start + samples
            # RFC 3551 §4.1: the marker bit flags the first packet of a talkspurt.
            add((stream, data[start:end], ts, stream.frames_sent == 0))
            start = end
            stream.timestamp = (ts + samples) & 0xFFFFFFFF
            stream.frames_sent += 1

    def _send_coded(
        self,
        codec: AudioCodec,
        samples: int,
        streams: list[MediaStream],
        outgoing: list[Outgoing],
    ) -> None:
        # One stream (its coder holds state): read, encode, advance the RTP clock.
        for stream in streams:
            frame: Any = None
            if not stream.muted:
                try:
                    frame = stream.source.read(samples)
                    if frame.shape != (samples,):
                        raise MediaCoreError(f"source returned shape {frame.shape}")
                except Exception:  # a broken source sends silence; the others go on
                    stream.source_errors += 1
                    frame = None
            if frame is None:
                frame = np.zeros(samples, dtype=np.int16)
            payload = codec.encode(frame)
            ts = stream.timestamp
            outgoing.append((stream, payload, ts, stream.frames_sent == 0))
            stream.timestamp = (ts + stream.rtp_step) & 0xFFFFFFFF
            stream.frames_sent += 1

    def _play_coded(self, codec: AudioCodec, samples: int, streams: list[MediaStream]) -> None:
        for stream in streams:
            status, payload = stream.jitter.pop()
            conc = stream.concealer
            frame: Any = None
            if status == PopStatus.FRAME:
                try:
                    frame = codec.decode(payload)
                except CodecError:
                    stream.decode_errors += 1
            if frame is not None:
                if len(frame) != samples:
                    fixed = np.zeros(samples, dtype=np.int16)
                    k = min(len(frame), samples)
                    fixed[:k] = frame[:k]
                    frame = fixed
                frame = conc.good(frame)
                stream.frames_played += 1
                stream.loss_runs.update(False)
            elif status != PopStatus.EMPTY or conc.active:
                # A lost frame (or one that did not decode): the codec's own PLC when it
                # has one (Opus: with the next packet's in-band FEC when that packet is
                # already buffered, RFC 6716 §2.1.7), else the engine's waveform repetition.
                own = (
                    codec.conceal(samples, stream.jitter.peek())
                    if status != PopStatus.EMPTY
                    else None
                )
                frame = own if own is not None and len(own) == samples else conc.conceal()
                if status == PopStatus.EMPTY:
                    stream.frames_empty += 1
                else:
                    stream.frames_concealed += 1
                    stream.loss_runs.update(True)
            else:
                frame = np.zeros(samples, dtype=np.int16)
                stream.frames_empty += 1
            sink = stream.sink
            if sink is not None:
                try:
                    sink(frame)
                except Exception:  # one broken sink must not stop every other call's media
                    stream.sink_errors += 1

    def stream_statistics(self, stream: MediaStream) -> StreamStatistics:
        """Statistics and E-model quality of one stream."""
        return stream.statistics(bpl=self.bpl)
