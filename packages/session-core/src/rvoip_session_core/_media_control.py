"""The coordinator's MediaControl half: SDP, audio sources and sinks, statistics."""

from __future__ import annotations

import functools

import anyio
import numpy as np
from numpy.typing import ArrayLike

from rvoip_session_core._call import Call
from rvoip_session_core._errors import MediaError
from rvoip_session_core._events import EventSubscription, MediaQualityReport
from rvoip_session_core._media import AudioFrame, AudioSourceSpec, make_source
from rvoip_session_core._offer_answer import audio_direction, parse_offer
from rvoip_session_core._sip import SipPart
from rvoip_session_core._types import MediaInfo, MediaStatistics, QualityMetrics


class MediaPart(SipPart):
    """MediaControl: the seed's media trait, as coordinator methods."""

    async def generate_sdp_offer(self, session_id: str) -> str:
        """An SDP offer for the call's audio (RTP port opened if needed)."""
        call = self._call(session_id)
        await self._ensure_media(call)
        offer = self._offer_for(call)
        if call.leg is None and call.direction == "outgoing":
            call.local_sdp = offer
        return str(offer)

    async def generate_sdp_answer(self, session_id: str, offer: str) -> str:
        """An SDP answer to ``offer`` for the call (RFC 3264; 488 error if nothing is common).

        Raises:
            SdpNegotiationError: no common audio codec (``status`` 488) or bad SDP (400).
        """
        call = self._call(session_id)
        await self._ensure_media(call)
        parsed = parse_offer(offer)
        if call.remote_offer is None and call.direction == "incoming":
            call.remote_offer = parsed
        return str(self._answer_for(call, parsed))

    async def start_audio_transmission(self, session_id: str) -> None:
        """Send the call's audio source again (undo ``stop_audio_transmission``)."""
        self._call(session_id).media.set_muted(False)

    async def stop_audio_transmission(self, session_id: str) -> None:
        """Mute: RTP keeps flowing, carrying silence."""
        self._call(session_id).media.set_muted(True)

    async def set_audio_source(self, session_id: str, source: AudioSourceSpec) -> None:
        """What the call sends: a media-core source (e.g. ``tone_source(1000)``), a WAV path,
        int16 samples, or None for silence."""
        self._call(session_id).media.slot.source = make_source(source)

    async def subscribe_to_audio_frames(self, session_id: str) -> EventSubscription[AudioFrame]:
        """Every decoded 20 ms frame the call receives, from now on."""
        return self._call(session_id).media.subscribe_frames()

    async def send_audio_frame(self, session_id: str, samples: ArrayLike) -> None:
        """Queue int16 samples to send before the call's source resumes."""
        frame = np.asarray(samples, dtype=np.int16).ravel()
        self._call(session_id).media.slot.queued.append(frame)

    async def get_media_info(self, session_id: str) -> MediaInfo:
        """What was negotiated for the call's audio."""
        call = self._call(session_id)
        media = call.media
        neg = media.negotiated
        return MediaInfo(
            session_id=call.id,
            local_sdp=None if call.local_sdp is None else str(call.local_sdp),
            remote_sdp=None if call.remote_sdp is None else str(call.remote_sdp),
            local_rtp_port=media.local_port,
            remote_rtp_address=None if media.rtp is None else media.rtp.remote_rtp_address,
            codec=None if neg is None else neg.codec,
            payload_type=None if neg is None else neg.payload_type,
            direction=neg.direction
            if neg is not None
            else audio_direction(call.local_sdp)
            if call.local_sdp is not None
            else "inactive",
        )

    async def send_rtcp_report(self, session_id: str) -> None:
        """Send an RTCP report now (besides the RFC 3550 schedule), e.g. to measure RTT."""
        rtp = self._call(session_id).media.rtp
        if rtp is None or rtp.closed:
            raise MediaError("no RTP session", session_id=session_id)
        rtp.send_rtcp_report()

    async def get_media_statistics(self, session_id: str) -> MediaStatistics | None:
        """Counters and E-model quality of the call's audio; None before media started."""
        return self._media_statistics(self._call(session_id))

    def _media_statistics(self, call: Call) -> MediaStatistics | None:
        media = call.media
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
        )
        return MediaStatistics(
            session_id=call.id,
            codec=None if media.negotiated is None else media.negotiated.codec,
            packets_sent=rtp_stats.packets_sent,
            packets_received=0 if received is None else received.packets_received,
            bytes_sent=rtp_stats.octets_sent,
            bytes_received=0 if received is None else received.octets_received,
            packets_lost=0 if received is None else max(0, received.packets_lost),
            local_address=rtp.local_rtp_address,
            remote_address=rtp.remote_rtp_address,
            quality_metrics=metrics,
        )

    async def _ensure_media(self, call: Call) -> None:
        if call.media.rtp is None:
            await self._open_media(call)
        if call.media.rtp is None:
            raise MediaError("RTP could not be opened", session_id=call.id)

    async def _quality_loop(self) -> None:
        interval = self.config.quality_interval
        handler = self.handler
        while True:
            await anyio.sleep(interval)
            if not (self._listened or self._wants("on_media_quality")):
                continue  # nobody reads the reports: no statistics per call
            for call in list(self._calls.values()):
                stats = self._media_statistics(call)
                if stats is None or stats.quality_metrics is None or not stats.packets_received:
                    continue
                metrics = stats.quality_metrics
                self._publish(MediaQualityReport(call.id, metrics))
                if self._wants("on_media_quality"):
                    self._hook(functools.partial(handler.on_media_quality, call.id, metrics))
