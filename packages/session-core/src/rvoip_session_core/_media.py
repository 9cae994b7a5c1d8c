"""The audio of one call: its RTP session, its stream in the media engine, sources and sinks.

On asyncio/uvloop the RTP session is opened synchronously (``open_media_now``) and closed by
``CallMedia.close``. Under trio it lives in a task of its own (``media_task``) so it is
opened and closed in one task, as trio requires. ``CallMedia`` is the handle the
coordinator keeps.
"""

from __future__ import annotations

import collections
import logging
import os
import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio
import anyio.abc
import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from rvoip_media_core import (
    DEFAULT_FILE_LIMITS,
    AudioCodec,
    AudioFileError,
    AudioFileLimits,
    AudioSource,
    Codec,
    CodecError,
    FileSource,
    FrameResampler,
    MediaEngine,
    MediaStream,
    SamplesSource,
    SilenceSource,
    ToneGenerator,
    make_codec,
)
from rvoip_media_core import MediaError as EngineMediaError
from rvoip_rtp_core import (
    DtmfDecoder,
    DtmfEnded,
    LatchMode,
    PortAllocator,
    RtpError,
    RtpPacket,
    RtpSessionConfig,
    SrtpError,
    SrtpSessionKeys,
    open_rtp_session,
    open_rtp_session_now,
)
from rvoip_session_core._errors import MediaError
from rvoip_session_core._events import EventHub, EventSubscription, LazyEvent
from rvoip_session_core._offer_answer import NegotiatedAudio
from rvoip_session_core._recording import CallRecorder
from rvoip_session_core._types import SessionId

log = logging.getLogger("rvoip_session_core.media")

SAMPLE_RATE = 8000


class CallRtp(Protocol):
    """What a call's media needs of an RTP session.

    ``rvoip_rtp_core.RtpSession``, or the in-memory session of ``rvoip_session_core.testing``.
    """

    @property
    def local_rtp_address(self) -> tuple[str, int]:
        """Our bound RTP address."""
        ...

    @property
    def remote_rtp_address(self) -> tuple[str, int] | None:
        """Where RTP is sent (None before the answer)."""
        ...

    @property
    def closed(self) -> bool:
        """True once closed."""
        ...

    def set_remote(self, rtp: tuple[str, int], rtcp: tuple[str, int] | None = None) -> None:
        """Where to send RTP (and RTCP)."""

    def send_payload(
        self,
        payload: bytes,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
        now: float | None = None,
    ) -> None:
        """Send one packet."""

    def set_packet_handler(self, handler: Callable[[Any, float], None] | None) -> None:
        """Deliver received packets to ``handler(packet, arrival)``."""

    def statistics(self) -> Any:
        """A ``rvoip_rtp_core.SessionStatistics`` snapshot."""

    async def send_dtmf(
        self,
        digit: str,
        duration: float = 0.1,
        volume: int = 10,
        payload_type: int = 101,
        packet_time: float = 0.02,
    ) -> None:
        """Send one RFC 4733 event."""

    def send_rtcp_report(self) -> None:
        """Send an RTCP report now."""

    def close(self) -> None:
        """Close the session (idempotent)."""


@attrs.frozen(eq=False)
class AudioFrame:
    """One packet time of decoded audio received on a call (int16 samples).

    ``sample_rate`` is the call's codec rate: 8000 for G.711, 16000 for G.722, 48000
    for Opus.
    """

    session_id: SessionId
    samples: NDArray[np.int16] = attrs.field(repr=False)
    sample_rate: int = SAMPLE_RATE


def tone_source(frequency: float, amplitude: float = 0.3) -> AudioSource:
    """A continuous sine tone (e.g. 1000 Hz) to play on a call."""
    return ToneGenerator(frequency, amplitude)


def file_source(
    path: str | os.PathLike[str],
    loop: bool = False,
    *,
    max_bytes: int = DEFAULT_FILE_LIMITS.max_bytes,
    max_seconds: float = DEFAULT_FILE_LIMITS.max_seconds,
) -> FileSource:
    """An audio file to play on a call: any PCM WAV, float WAV, FLAC, Ogg, AIFF ….

    Channels are averaged to mono; the audio is resampled (libsoxr) from the file's rate
    to the call's codec rate. The whole file is read now, bounded by ``max_bytes``
    (default 64 MiB) and ``max_seconds`` (default 600 s).

    Raises:
        MediaError: the file is missing, too large or long, or not readable audio; the
            message names the file and the problem.
    """
    try:
        return FileSource(path, loop=loop, limits=AudioFileLimits(max_bytes, max_seconds))
    except (AudioFileError, EngineMediaError, OSError) as exc:
        raise MediaError(f"cannot play {os.fspath(path)!r}: {exc}") from None


def wav_source(path: str | os.PathLike[str], loop: bool = False) -> AudioSource:
    """A WAV file (any rate, width, channels) to play on a call: see ``file_source``."""
    return file_source(path, loop)


def samples_source(samples: ArrayLike, loop: bool = False) -> AudioSource:
    """In-memory int16 samples to play on a call (once, or looped)."""
    return SamplesSource(samples, loop=loop)


AudioSourceSpec = AudioSource | str | os.PathLike[str] | np.ndarray | Sequence[int] | None
"""What ``set_audio_source`` takes: a media-core source, a WAV path, samples, or None."""


def make_source(spec: AudioSourceSpec) -> AudioSource:
    """Turn an ``AudioSourceSpec`` into a source (None is silence)."""
    if spec is None:
        return SilenceSource()
    if isinstance(spec, str | os.PathLike):
        return file_source(spec)
    if isinstance(spec, np.ndarray | list | tuple):
        return samples_source(spec)
    if hasattr(spec, "read"):
        return spec
    raise MediaError(f"not an audio source: {spec!r}")


class _Resampled:
    """An 8 kHz source read at another rate through a soxr frame resampler."""

    __slots__ = ("_resampler", "_source")

    def __init__(self, source: AudioSource, rate: int) -> None:
        self._source = source
        self._resampler = FrameResampler(SAMPLE_RATE, rate)

    @property
    def finished(self) -> bool:
        """The wrapped source's ``finished`` (False for one that never ends)."""
        return bool(getattr(self._source, "finished", False))

    def read(self, n: int) -> NDArray[np.int16]:
        narrow = self._source.read(n * SAMPLE_RATE // self._resampler.out_rate)
        return self._resampler.process(narrow)


def at_rate(source: AudioSource, rate: int) -> AudioSource:
    """``source`` (8 kHz) as a source at ``rate``: silence and tones made at that rate.

    A source with an ``at_rate(rate)`` method converts itself (a file is resampled from
    its own rate, not through 8 kHz; a prompt keeps its finished state).
    """
    if isinstance(source, SilenceSource):
        return source
    if isinstance(source, ToneGenerator):
        return ToneGenerator(source.frequencies, source.amplitude, rate)
    convert = getattr(source, "at_rate", None)
    if convert is not None:
        converted: AudioSource = convert(rate)
        return converted
    return _Resampled(source, rate)


_NO_SAMPLES: NDArray[np.int16] = np.zeros(0, dtype=np.int16)
_NO_SAMPLES.flags.writeable = False  # shared by every slot: never written, only replaced


@attrs.define(eq=False)
class SourceSlot:
    """What a call sends, read by the engine each packet time.

    Priority: a bridge feed, then frames queued by ``send_audio_frame``, then the source.
    """

    source: AudioSource = attrs.field(factory=SilenceSource)
    queued: collections.deque[NDArray[np.int16]] = attrs.field(
        factory=lambda: collections.deque(maxlen=500)
    )
    bridge_feed: Callable[[int], NDArray[np.int16]] | None = None
    rate: int = SAMPLE_RATE
    """The call's PCM rate (its codec's): sources and queued frames are 8 kHz and are
    converted when it differs (tones regenerated, anything else resampled)."""
    sent_tap: Callable[[NDArray[np.int16]], None] | None = None
    """Called with each frame read (a recording's local side); None on the hot path."""
    _pending: NDArray[np.int16] = attrs.field(init=False, default=_NO_SAMPLES)
    _adapted: tuple[AudioSource, int, AudioSource] | None = attrs.field(init=False, default=None)
    _queue_resampler: FrameResampler | None = attrs.field(init=False, default=None)

    def read(self, n: int) -> NDArray[np.int16]:
        """The next ``n`` samples to encode (shown to ``sent_tap`` when one is set)."""
        if self.bridge_feed is not None:
            frame = self.bridge_feed(n)
        elif self.rate != SAMPLE_RATE:
            frame = self._read_rated(n)
        elif self.queued or len(self._pending):
            frame = self._read_queued(n)
        else:
            frame = self.source.read(n)
        tap = self.sent_tap
        if tap is not None:
            tap(frame)
        return frame

    def _read_rated(self, n: int) -> NDArray[np.int16]:
        # A wideband call: 8 kHz material converted to the call's rate.
        source = self.source
        adapted = self._adapted
        if adapted is None or adapted[0] is not source or adapted[1] != self.rate:
            adapted = self._adapted = (source, self.rate, at_rate(source, self.rate))
        if self.queued or len(self._pending):
            narrow = self._read_queued(n * SAMPLE_RATE // self.rate)
            queue = self._queue_resampler
            if queue is None or queue.out_rate != self.rate:
                queue = self._queue_resampler = FrameResampler(SAMPLE_RATE, self.rate)
            return queue.process(narrow)
        return adapted[2].read(n)

    def _read_queued(self, n: int) -> NDArray[np.int16]:
        parts = [self._pending]
        have = len(self._pending)
        while have < n and self.queued:
            frame = self.queued.popleft()
            parts.append(frame)
            have += len(frame)
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        out = np.zeros(n, dtype=np.int16)
        k = min(n, len(data))
        out[:k] = data[:k]
        self._pending = data[k:]
        return out


@attrs.define(eq=False)
class GatedSession:
    """Wraps an ``RtpSession`` for the engine so sending follows the SDP direction.

    RFC 3264 §6.1: a recvonly or inactive stream must not send media; RTCP goes on.
    """

    rtp: CallRtp
    may_send: bool = True
    paused: bool = False
    relaying: bool = False
    relay: Callable[[RtpPacket], None] | None = None
    sent: int = 0
    _handler: Callable[[Any, float], None] | None = attrs.field(init=False, default=None)

    def send_payload(
        self,
        payload: bytes,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
        now: float | None = None,
    ) -> None:
        """Send one engine packet when the direction allows it (not while relaying)."""
        if self.may_send and not self.paused and not self.relaying:
            self.rtp.send_payload(payload, timestamp, marker, payload_type, now)
            self.sent += 1

    def forward(self, packet: RtpPacket, payload_type: int) -> None:
        """Send a packet relayed from a bridged call: payload and timing unchanged."""
        if self.may_send and not self.paused:
            self.rtp.send_payload(packet.payload, packet.timestamp, packet.marker, payload_type)
            self.sent += 1

    def set_packet_handler(self, handler: Callable[[Any, float], None] | None) -> None:
        """Install the engine's handler (packets also go to ``relay`` when set)."""
        self._handler = handler
        self.rtp.set_packet_handler(None if handler is None else self._receive)

    def _receive(self, packet: RtpPacket, arrival: float) -> None:
        handler = self._handler
        if handler is not None:
            handler(packet, arrival)
        relay = self.relay
        if relay is not None:
            relay(packet)

    def statistics(self) -> Any:
        """Delegate to the RTP session."""
        return self.rtp.statistics()


@attrs.define(eq=False)
class CallMedia:
    """The media of one call: RTP session, engine stream, sinks, DTMF decoding."""

    session_id: SessionId
    engine: MediaEngine
    on_dtmf: Callable[[str, int], None]
    rtp: CallRtp | None = None
    gate: GatedSession | None = None
    stream: MediaStream | None = None
    negotiated: NegotiatedAudio | None = None
    slot: SourceSlot = attrs.field(factory=SourceSlot)
    frames: EventHub[AudioFrame] = attrs.field(factory=lambda: EventHub(buffer=200))
    frame_taps: list[Callable[[NDArray[np.int16]], None]] = attrs.field(factory=list)
    muted: bool = False
    held: bool = False
    closed: LazyEvent = attrs.field(factory=LazyEvent)
    sending_stopped: bool = False
    owns_rtp: bool = False
    """True when ``rtp`` was opened by ``open_media_now``: ``close`` closes it."""
    recorder: CallRecorder | None = None
    """The two-sided recording in progress (``start_recording``), if any."""
    _dtmf: dict[int, DtmfDecoder] = attrs.field(init=False, factory=dict)

    @property
    def local_port(self) -> int | None:
        """The bound RTP port (None before the session is open)."""
        return None if self.rtp is None else self.rtp.local_rtp_address[1]

    def apply(self, negotiated: NegotiatedAudio) -> None:
        """Start (or update) the stream for a completed offer/answer."""
        if self.rtp is None or self.rtp.closed:
            raise MediaError("media is closed", session_id=self.session_id)
        previous = self.negotiated
        if negotiated.srtp is not None or (previous is not None and previous.srtp is not None):
            self._set_srtp(negotiated.srtp)
        self.negotiated = negotiated
        if negotiated.remote_address is not None:
            self.rtp.set_remote(negotiated.remote_address)
        set_clock_rate = getattr(self.rtp, "set_clock_rate", None)
        if set_clock_rate is not None:
            set_clock_rate(negotiated.clock_rate)
        name = negotiated.codec
        codec: Codec | AudioCodec
        stream = self.stream
        if name in ("PCMU", "PCMA"):
            codec = Codec.PCMU if name == "PCMU" else Codec.PCMA
            changed = stream is not None and stream.codec is not codec
        else:
            changed = stream is None or (stream.codec_name, stream.payload_type) != (
                name,
                negotiated.payload_type,
            )
            if changed:
                try:
                    codec = make_codec(name, negotiated.payload_type, negotiated.remote_fmtp)
                except CodecError as exc:
                    raise MediaError(str(exc), session_id=self.session_id) from None
        if stream is not None and changed:
            self.engine.remove_stream(stream)
            self.stream = None
        if self.stream is None:
            self.gate = GatedSession(self.rtp)
            self.stream = self.engine.add_stream(
                self.gate,
                codec,
                20 if negotiated.ptime_ms < 40 else 40,
                source=self.slot,
                # hot path: no sink (no Python call per packet time) until someone listens.
                sink=self._sink if self.frame_taps or self.frames.subscriber_count else None,
                on_packet=self._other_packet,
            )
            self.slot.rate = self.stream.sample_rate
        assert self.gate is not None
        self.gate.may_send = (
            negotiated.send and negotiated.remote_address is not None and not self.sending_stopped
        )
        self._update_mute()

    def _set_srtp(self, keys: SrtpSessionKeys | None) -> None:
        """Key (re-key, or un-key) the RTP session before any packet uses the new SDP.

        Raises:
            MediaError: the RTP session cannot do SRTP, or libsrtp refused a key.
        """
        set_srtp = getattr(self.rtp, "set_srtp", None)
        if set_srtp is None:
            if keys is None:
                return
            raise MediaError("SRTP: this media backend cannot encrypt", session_id=self.session_id)
        try:
            set_srtp(keys)
        except SrtpError as exc:
            raise MediaError(f"SRTP: {exc}", session_id=self.session_id) from None

    def stop_sending(self) -> None:
        """The call is ending (BYE, CANCEL, failure): no RTP leaves from now on, for good.

        Receiving goes on until ``close``; a later offer/answer cannot restart sending.
        """
        self.sending_stopped = True
        if self.gate is not None:
            self.gate.may_send = False

    def pause_sending(self) -> None:
        """No RTP until the next offer/answer is applied (the peer it went to is gone).

        Unlike ``stop_sending`` the call goes on: ``apply`` decides sending anew.
        """
        if self.gate is not None:
            self.gate.may_send = False

    def set_muted(self, muted: bool) -> None:
        """Mute (silence keeps flowing) or unmute the microphone side."""
        self.muted = muted
        self._update_mute()

    def set_held(self, held: bool) -> None:
        """While we hold the call our own audio is replaced by silence."""
        self.held = held
        self._update_mute()

    def _update_mute(self) -> None:
        if self.stream is not None:
            self.engine.mute(self.stream, self.muted or self.held)

    @property
    def sample_rate(self) -> int:
        """The PCM rate of the call's audio (its codec's; 8000 before negotiation)."""
        stream = self.stream
        return SAMPLE_RATE if stream is None else stream.sample_rate

    def _sink(self, frame: NDArray[np.int16]) -> None:
        if self.negotiated is not None and not self.negotiated.receive:
            frame = np.zeros_like(frame)
        for tap in list(self.frame_taps):
            tap(frame)
        if self.frames.subscriber_count:
            self.frames.publish(AudioFrame(self.session_id, frame.copy(), self.sample_rate))

    def _other_packet(self, packet: RtpPacket, arrival: float) -> None:
        negotiated = self.negotiated
        if negotiated is None or packet.payload_type != negotiated.dtmf_payload_type:
            return
        # RFC 4733 §2.5.2: an event is identified by its timestamp within one source's
        # stream, so each SSRC gets its own decoder (a re-INVITE may change the source).
        decoder = self._dtmf.get(packet.ssrc)
        if decoder is None:
            if len(self._dtmf) >= 8:
                self._dtmf.clear()
            decoder = self._dtmf[packet.ssrc] = DtmfDecoder()
        try:
            notes = decoder.feed_packet(packet)
        except RtpError:
            return
        for note in notes:
            if isinstance(note, DtmfEnded):
                # RFC 4733 §2.5.1.5: the duration is in the event's RTP clock units.
                self.on_dtmf(note.digit, note.duration * 1000 // negotiated.clock_rate)

    def relay_audio_to(self, other: CallMedia | None) -> None:
        """Relay this call's received audio packets, unchanged, out of ``other`` (None: stop).

        For a bridge of two calls with the same codec: no decode, mix or encode, and the
        other call's own engine packets are held back while relaying.
        """
        gate, neg = self.gate, self.negotiated
        if gate is None:
            return
        if other is None or neg is None:
            gate.relay = None
            return
        codec_pt = neg.payload_type

        def relay(packet: RtpPacket) -> None:
            target, target_neg = other.gate, other.negotiated
            if packet.payload_type == codec_pt and target is not None and target_neg is not None:
                target.forward(packet, target_neg.payload_type)

        gate.relay = relay

    def set_relaying(self, relaying: bool) -> None:
        """Hold back the engine's packets while another call's audio is relayed here."""
        if self.gate is not None:
            self.gate.relaying = relaying

    def subscribe_frames(self) -> EventSubscription[AudioFrame]:
        """Receive every decoded frame from now on."""
        subscription = self.frames.subscribe()
        self._attach_sink()
        return subscription

    def add_frame_tap(self, tap: Callable[[NDArray[np.int16]], None]) -> None:
        """Call ``tap`` with every decoded frame from now on (bridges mix them)."""
        self.frame_taps.append(tap)
        self._attach_sink()

    def start_recording(self, recorder: CallRecorder) -> None:
        """Feed ``recorder`` both directions from now on.

        What we send (silence while muted or held, as the peer hears it) and what we decode.

        Raises:
            MediaError: a recording is already running on this call.
        """
        if self.recorder is not None and not self.recorder.closed:
            raise MediaError("the call is already being recorded", session_id=self.session_id)
        self.recorder = recorder

        def sent(frame: NDArray[np.int16]) -> None:
            recorder.local(np.zeros_like(frame) if self.muted or self.held else frame)

        self.slot.sent_tap = sent
        self.add_frame_tap(recorder.remote)

    def stop_recording(self) -> CallRecorder | None:
        """Stop the recording (the file is complete on return); the recorder, or None."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        self.slot.sent_tap = None
        if recorder.remote in self.frame_taps:
            self.frame_taps.remove(recorder.remote)
        recorder.close()
        return recorder

    def _attach_sink(self) -> None:
        stream = self.stream
        if stream is not None and stream.sink is None:
            self.engine.set_sink(stream, self._sink)

    async def send_dtmf(self, digits: str, duration: float = 0.1, gap: float = 0.06) -> None:
        """Send ``digits`` as RFC 4733 events, one after the other."""
        negotiated = self.negotiated
        if self.rtp is None or negotiated is None or negotiated.dtmf_payload_type is None:
            raise MediaError("the peer did not accept telephone-event", session_id=self.session_id)
        gate = self.gate
        for digit in digits:
            if self.sending_stopped:
                return
            # RFC 4733: audio is suppressed while an event is sent, so the event's packets
            # do not interleave with audio packets in the receiver's jitter buffer.
            if gate is not None:
                gate.paused = True
            try:
                await self.rtp.send_dtmf(digit, duration, payload_type=negotiated.dtmf_payload_type)
            finally:
                if gate is not None:
                    gate.paused = False
            await anyio.sleep(gap)

    def close(self) -> None:
        """Stop the stream and let the media task close the RTP session.

        A DTMF event still in progress (its end packets never came) is reported now.
        """
        self.stop_sending()
        self.stop_recording()
        decoders, self._dtmf = self._dtmf, {}
        for decoder in decoders.values():
            clock = SAMPLE_RATE if self.negotiated is None else self.negotiated.clock_rate
            for note in decoder.flush():
                if isinstance(note, DtmfEnded):
                    self.on_dtmf(note.digit, note.duration * 1000 // clock)
        if self.stream is not None:
            self.engine.remove_stream(self.stream)
            self.stream = None
        self.frames.close()
        self.frame_taps.clear()
        self.slot.bridge_feed = None
        self.closed.set()
        if self.owns_rtp:
            self.owns_rtp = False
            rtp, self.rtp, self.gate = self.rtp, None, None
            if rtp is not None:
                try:
                    rtp.close()
                except (RtpError, OSError) as exc:
                    log.warning("closing RTP of call %s failed: %s", self.session_id, exc)


def open_media_now(
    media: CallMedia,
    host: str,
    allocator: PortAllocator | None,
    rng: random.Random,
    latch: LatchMode = "strict",
    *,
    config: RtpSessionConfig | None = None,
) -> None:
    """Open the call's RTP session at once, without a task (asyncio/uvloop only).

    ``media.close()`` closes it again. ``config``, when given, is the caller's shared
    config of these ``host``/``allocator``/``latch`` settings (the CNAME is the call's
    session id either way).

    Raises:
        MediaError: no RTP port pair could be bound (or the loop is not asyncio's).
    """
    if config is None:
        config = RtpSessionConfig(local_host=host, port_allocator=allocator, latch=latch)
    try:
        # hot path: the coordinator's RNG itself (one thread, no task of its own); seeding
        # a new random.Random per call costs more than the rest of this function.
        rtp = open_rtp_session_now(config, rng=rng, cname=media.session_id)
    except (RtpError, OSError) as exc:
        raise MediaError(f"cannot open RTP: {exc}", session_id=media.session_id) from exc
    media.rtp = rtp
    media.owns_rtp = True


async def media_task(
    media: CallMedia,
    host: str,
    allocator: PortAllocator | None,
    rng: random.Random,
    latch: LatchMode = "strict",
    *,
    task_status: anyio.abc.TaskStatus[CallRtp],
) -> None:
    """Own the call's RTP session from open to close (run with ``task_group.start``)."""
    config = RtpSessionConfig(
        local_host=host, port_allocator=allocator, cname=media.session_id, latch=latch
    )
    # SSRCs and sequence starts: the OS CSPRNG itself unless a test seeded the RNG.
    session_rng = (
        rng if isinstance(rng, random.SystemRandom) else random.Random(rng.getrandbits(64))
    )
    started = False
    try:
        async with open_rtp_session(config, rng=session_rng) as rtp:
            media.rtp = rtp
            started = True
            task_status.started(rtp)
            await media.closed.wait()
    except (RtpError, OSError) as exc:
        if not started:
            # Before started(): the error reaches the caller of task_group.start.
            raise MediaError(f"cannot open RTP: {exc}", session_id=media.session_id) from exc
        log.warning("closing RTP of call %s failed: %s", media.session_id, exc)
    finally:
        if media.stream is not None:
            media.engine.remove_stream(media.stream)
            media.stream = None
        media.rtp = None
        media.gate = None
