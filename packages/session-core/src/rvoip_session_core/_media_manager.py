"""The media manager: opens and closes each call's RTP, runs the media engine, measures.

It is the only place that knows how RTP sessions are opened on the running event loop
(the ``MediaBackend``): on asyncio/uvloop synchronously, without a task per call; under trio
in a task of its own (trio closes a socket in the task that opened it). The tests'
in-memory media (``rvoip_session_core.testing``) is another backend.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

import anyio
import anyio.abc
import sniffio

from rvoip_media_core import ClockStats, MediaClock, MediaEngine, run_media_engine
from rvoip_rtp_core import LatchMode, PortAllocator, RtpSessionConfig
from rvoip_session_core._errors import MediaError
from rvoip_session_core._media import CallMedia, media_task, open_media_now
from rvoip_session_core._types import MediaStatistics, QualityMetrics, SessionId

log = logging.getLogger("rvoip_session_core.media")


def signalled_over_tls(
    target: str, request_headers: Sequence[tuple[str, str]] | None, transport: str
) -> bool:
    """Whether a call's SIP messages travelled over TLS (so SDES keys were not in clear).

    An incoming call: the top Via of its INVITE names the transport it came over
    (RFC 3261 §18.2.1). An outgoing call: a ``sips:`` target or ``;transport=tls``, else
    the coordinator's transport.

    Args:
        target: the called URI of an outgoing call.
        request_headers: the INVITE's header lines of an incoming call (None: outgoing).
        transport: the coordinator's preferred SIP transport ("UDP", "TCP", "TLS").
    """
    if request_headers is not None:
        for name, value in request_headers:
            if name.lower() in ("via", "v"):
                return value.lstrip().upper().startswith("SIP/2.0/TLS")
        return False
    lowered = target.lower().lstrip("<")
    if lowered.startswith("sips:") or "transport=tls" in lowered:
        return True
    return transport.upper() == "TLS" and "transport=" not in lowered


class MediaBackend(Protocol):
    """How RTP sessions are opened and how the engine's clock runs."""

    def opens_now(self) -> bool:
        """True when ``open_now`` may be used on the running loop (no task per call)."""
        ...

    def open_now(
        self, media: CallMedia, host: str, allocator: PortAllocator | None, rng: random.Random
    ) -> None:
        """Open ``media``'s RTP session at once (``media.close()`` closes it).

        Raises:
            MediaError: no port pair could be bound.
        """

    async def open_in_task(
        self,
        tg: anyio.abc.TaskGroup,
        media: CallMedia,
        host: str,
        allocator: PortAllocator | None,
        rng: random.Random,
    ) -> None:
        """Open ``media``'s RTP session in a task of ``tg`` that closes it again.

        Raises:
            MediaError: no port pair could be bound.
        """

    def run_engine(self, engine: MediaEngine) -> contextlib.AbstractAsyncContextManager[object]:
        """Drive ``engine`` every packet time while the context is open."""
        ...


class SocketMedia:
    """RTP on UDP sockets (rtp-core) and media-core's real-time clock.

    Args:
        latch: rtp-core's source-latching mode for every call ("strict", "learn", "off").
    """

    def __init__(self, latch: LatchMode = "strict") -> None:
        self._latch = latch
        # hot path: one frozen RTP config for every call of this host and port range
        # (built per call it cost ~2 us); the CNAME is given per session.
        self._config: RtpSessionConfig | None = None

    def opens_now(self) -> bool:
        """asyncio/uvloop: RTP opens synchronously; trio: a task per session."""
        return sniffio.current_async_library() == "asyncio"

    def open_now(
        self, media: CallMedia, host: str, allocator: PortAllocator | None, rng: random.Random
    ) -> None:
        """See ``MediaBackend.open_now``."""
        config = self._config
        if config is None or config.local_host != host or config.port_allocator is not allocator:
            config = self._config = RtpSessionConfig(
                local_host=host, port_allocator=allocator, latch=self._latch
            )
        open_media_now(media, host, allocator, rng, self._latch, config=config)

    async def open_in_task(
        self,
        tg: anyio.abc.TaskGroup,
        media: CallMedia,
        host: str,
        allocator: PortAllocator | None,
        rng: random.Random,
    ) -> None:
        """See ``MediaBackend.open_in_task``."""
        await tg.start(media_task, media, host, allocator, rng, self._latch)

    def run_engine(self, engine: MediaEngine) -> contextlib.AbstractAsyncContextManager[object]:
        """media-core's drift-free 20 ms clock."""
        return run_media_engine(engine)


class MediaManager:
    """Owns the media engine, the RTP port range and every call's media handle.

    Args:
        host: the address RTP binds to.
        ports: the RTP port range ``[start, end)``, or None for any free port.
        rng: the coordinator's RNG (SSRCs, sequence numbers, timestamps).
        backend: how RTP opens (default: UDP sockets).
        latch: RTP source latching of the default backend ("strict", "learn", "off").
    """

    def __init__(
        self,
        host: str,
        ports: tuple[int, int] | None,
        rng: random.Random,
        backend: MediaBackend | None = None,
        latch: LatchMode = "strict",
    ) -> None:
        self._host = host
        self._rng = rng
        self._backend: MediaBackend = backend if backend is not None else SocketMedia(latch)
        self._engine = MediaEngine()
        self._allocator = PortAllocator(*ports) if ports else None
        self._tg: anyio.abc.TaskGroup | None = None
        self._sync = False
        self._clock: object = None
        self._warned_keys_in_clear = False

    def srtp_started(self, session_id: SessionId, over_tls: bool) -> None:
        """A call's media is SRTP: warn once if its SDES keys crossed the network in clear.

        RFC 4568 §8.3: the keys are in the SDP, so the signalling must be secured; over
        UDP or TCP anyone who sees the SIP messages can decrypt the media. Logged once
        per coordinator, never with the keys.
        """
        if over_tls or self._warned_keys_in_clear:
            return
        self._warned_keys_in_clear = True
        log.warning(
            "call %s: SRTP negotiated over an unencrypted SIP transport: the SDES keys "
            "travel in the SDP in clear; use TLS signalling (warned once)",
            session_id,
        )

    @property
    def engine(self) -> MediaEngine:
        """The media engine every call's stream runs in."""
        return self._engine

    @property
    def ports_in_use(self) -> frozenset[int]:
        """RTP ports currently allocated from the configured range (empty without one)."""
        return frozenset() if self._allocator is None else self._allocator.in_use

    @property
    def opens_now(self) -> bool:
        """True when RTP opens synchronously on this loop (no task per call)."""
        return self._sync

    @contextlib.asynccontextmanager
    async def running(self, tg: anyio.abc.TaskGroup) -> AsyncIterator[None]:
        """Run the engine's clock; media tasks (trio) go into ``tg``."""
        self._tg = tg
        self._sync = self._backend.opens_now()
        try:
            async with self._backend.run_engine(self._engine) as clock:
                self._clock = clock
                yield
        finally:
            self._tg = None
            self._clock = None

    @property
    def clock_stats(self) -> ClockStats | None:
        """The media clock's send counters (packets, late packets, lateness histogram).

        None while not running, or with a media backend that has no real-time clock.
        """
        clock = self._clock
        return clock.stats if isinstance(clock, MediaClock) else None

    def new_media(
        self, sid: SessionId, on_dtmf: Callable[[SessionId, str, int], None]
    ) -> CallMedia:
        """A call's (not yet opened) media handle."""
        # hot path: a partial, not a closure.
        return CallMedia(sid, self._engine, on_dtmf=functools.partial(on_dtmf, sid))

    def open_now(self, media: CallMedia) -> None:
        """Open RTP synchronously (only when ``opens_now``).

        Raises:
            MediaError: no port pair could be bound (e.g. the port range is exhausted).
        """
        self._backend.open_now(media, self._host, self._allocator, self._rng)

    async def open(self, media: CallMedia) -> None:
        """Open RTP by whichever means this loop needs.

        Raises:
            MediaError: no port pair could be bound, or the manager is not running.
        """
        if self._sync:
            self.open_now(media)
            return
        if self._tg is None:
            raise MediaError("media is not running", session_id=media.session_id)
        await self._backend.open_in_task(self._tg, media, self._host, self._allocator, self._rng)

    async def ensure_open(self, media: CallMedia) -> None:
        """Open RTP unless it is open already."""
        if media.rtp is None:
            await self.open(media)
        if media.rtp is None:
            raise MediaError("RTP could not be opened", session_id=media.session_id)

    def statistics(self, media: CallMedia) -> MediaStatistics | None:
        """Counters and E-model quality of a call's audio; None before media started."""
        stream, rtp = media.stream, media.rtp
        if stream is None or rtp is None:
            return None
        stats = self._engine.stream_statistics(stream)
        rtp_stats = stats.rtp
        received = rtp_stats.received
        heard = received is not None and received.packets_received > 0
        quality = stats.quality
        metrics = QualityMetrics(
            mos_score=round(quality.mos_score, 2) if heard else None,
            r_factor=round(quality.r_factor, 1) if heard else None,
            packet_loss_percent=max(0.0, quality.packet_loss_percent),
            jitter_ms=quality.jitter_ms,
            round_trip_ms=quality.round_trip_ms if rtp_stats.rtt_seconds is not None else None,
            model=quality.model,
        )
        return MediaStatistics(
            session_id=media.session_id,
            codec=None if media.negotiated is None else media.negotiated.codec,
            packets_sent=rtp_stats.packets_sent,
            packets_received=0 if received is None else received.packets_received,
            bytes_sent=rtp_stats.octets_sent,
            bytes_received=0 if received is None else received.octets_received,
            packets_lost=0 if received is None else max(0, received.packets_lost),
            local_address=rtp.local_rtp_address,
            remote_address=rtp.remote_rtp_address,
            quality_metrics=metrics,
            srtp_failures=rtp_stats.srtp_failures,
        )

    @staticmethod
    def activity(media: CallMedia) -> tuple[int, int] | None:
        """(RTP packets, RTCP packets) received so far on a call, or None without RTP.

        Read from rtp-core's statistics (its packet counters): the media inactivity check
        compares two readings.
        """
        rtp = media.rtp
        if rtp is None or rtp.closed:
            return None
        stats = rtp.statistics()
        received = stats.received
        return (0 if received is None else received.packets_received), stats.rtcp_received
