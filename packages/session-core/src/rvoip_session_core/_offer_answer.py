"""RFC 3264 offer/answer for one audio stream: PCMU, PCMA and telephone-event.

Pure functions over rvoip_sip_core's SDP model. The answer keeps the offerer's codec
order and payload numbers (sip-core's ``answer_media``); this module adds the session
policy: which codecs we support, 488 when no audio codec is common, hold directions,
and what the two descriptions together mean for the media plane (``NegotiatedAudio``).

Every SDP here came from the network, so a stream is usable only when (issue 10):

* its transport is plain RTP (``RTP/AVP``, ``RTP/AVPF``): an ``RTP/SAVP``/``SAVPF``
  offer asks for SRTP, which calls do not do yet, and must never be answered in clear;
* its port leaves room for RTCP on the next port (1..65534; RTCP of ``m=audio 65535``
  would be 65536, which no socket takes);
* its ``c=`` address is an IP literal of its address type: a host name would need a
  DNS lookup on the call path (slow, and resolving an attacker-chosen name).

An unusable offered stream is answered with port 0 (RFC 3264 §6); when none is left
the offer gets 488 with the reasons. A remote answer (or offer, for a local answer)
whose chosen stream is unusable fails :func:`negotiated` with 488 the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from rvoip_session_core._errors import MediaError
from rvoip_sip_core import (
    Connection,
    Fmtp,
    MediaDescription,
    RtpMap,
    SdpParseError,
    SessionDescription,
    answer_media,
    make_media,
    make_sdp,
    parse_sdp,
)

TELEPHONE_EVENT = "telephone-event"

CODEC_MAPS: dict[str, RtpMap] = {
    "PCMU": RtpMap(0, "PCMU", 8000),
    "PCMA": RtpMap(8, "PCMA", 8000),
}
"""The audio codecs the media plane implements, with their RFC 3551 static numbers."""

# hot path: (encoding lowercased, clock rate, channels) -> our codec name, for codecs_match
# without a scan per rtpmap (RFC 4855 §3: encoding names are case-insensitive).
_CODEC_KEYS: dict[tuple[str, int, int], str] = {
    (m.encoding.lower(), m.clock_rate, m.channels or 1): name for name, m in CODEC_MAPS.items()
}


def _codec_name(mapping: RtpMap) -> str | None:
    """Our name of the codec ``mapping`` describes (as ``codecs_match``), or None."""
    return _CODEC_KEYS.get((mapping.encoding.lower(), mapping.clock_rate, mapping.channels or 1))


PLAIN_RTP_PROFILES = frozenset({"RTP/AVP", "RTP/AVPF"})
"""Transports the media plane speaks: plain RTP (RFC 3551, RFC 4585). Secure profiles
(RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVP...) are refused until calls do SRTP."""

MAX_RTP_PORT = 65534
"""Highest remote RTP port used: RTCP goes to the next port (RFC 3550 §11), 65535 at most."""

_SENDS = frozenset({"sendrecv", "sendonly"})
_RECEIVES = frozenset({"sendrecv", "recvonly"})


class SdpNegotiationError(MediaError):
    """No acceptable audio stream in an offer or answer; answer the INVITE with ``status``."""

    def __init__(self, message: str, *, status: int = 488, session_id: str | None = None) -> None:
        super().__init__(message, session_id=session_id)
        self.status = status


@attrs.frozen
class NegotiatedAudio:
    """What an offer and its answer agreed on for the audio stream.

    Attributes:
        codec: encoding name ("PCMU" or "PCMA").
        payload_type: its payload number (the offerer's).
        dtmf_payload_type: payload number of telephone-event, None if not agreed.
        remote_address: where to send RTP (None when the stream is rejected or has no c=).
        send: whether we may send audio (our direction and theirs allow it).
        receive: whether we expect audio.
        ptime_ms: packet time to send with.
    """

    codec: str
    payload_type: int
    dtmf_payload_type: int | None
    remote_address: tuple[str, int] | None
    send: bool
    receive: bool
    ptime_ms: int = 20

    @property
    def direction(self) -> str:
        """Our effective direction as an SDP attribute name."""
        if self.send and self.receive:
            return "sendrecv"
        if self.send:
            return "sendonly"
        return "recvonly" if self.receive else "inactive"


def supported_maps(codecs: Sequence[str], dtmf_payload_type: int | None) -> list[RtpMap]:
    """Our codec list as rtpmaps, telephone-event last (when a payload type is given)."""
    maps = [CODEC_MAPS[name.upper()] for name in codecs if name.upper() in CODEC_MAPS]
    if dtmf_payload_type is not None:
        maps.append(RtpMap(dtmf_payload_type, TELEPHONE_EVENT, 8000))
    return maps


def build_offer(
    address: str,
    port: int,
    *,
    codecs: Sequence[str] = ("PCMU", "PCMA"),
    dtmf_payload_type: int | None = 101,
    direction: str = "sendrecv",
    sess_id: int,
    sess_version: int = 0,
    ptime_ms: int = 20,
) -> SessionDescription:
    """An SDP offer of one audio stream at ``address``:``port`` with ``codecs`` in order."""
    maps = supported_maps(codecs, dtmf_payload_type)
    fmtps = [Fmtp(str(dtmf_payload_type), "0-16")] if dtmf_payload_type is not None else []
    media = make_media(port, maps, fmtps=fmtps, ptime=ptime_ms, direction=direction)
    return make_sdp(address, [media], sess_id=sess_id, sess_version=sess_version)


def _is_audio_codec(mapping: RtpMap | None) -> bool:
    return mapping is not None and _codec_name(mapping) is not None


def _unusable(media: MediaDescription, connection: Connection | None) -> str | None:
    """Why a live (port != 0) stream from the network cannot be used, or None if it can."""
    proto = media.proto.upper()
    if proto not in PLAIN_RTP_PROFILES:
        if "SAVP" in proto:
            # RFC 3264 §6 / RFC 4568 §7.1: a secure stream we cannot key must be rejected,
            # never answered as plain RTP.
            return f"{media.proto} (SRTP) is not supported"
        return f"transport {media.proto[:40]!r} is not supported"
    if not 0 < media.port <= MAX_RTP_PORT:
        # RFC 3550 §11: RTCP on port + 1, which must still be a port (<= 65535).
        return f"port {media.port} is not a usable RTP port (1..{MAX_RTP_PORT}: RTCP is port + 1)"
    if connection is not None and not connection.is_ip_literal:
        # RFC 8866 §5.7 allows an FQDN; resolving one would block the call path.
        return f"c= address {connection.address[:60]!r} is not an IP literal"
    return None


def build_answer(
    offer: SessionDescription,
    address: str,
    port: int,
    *,
    codecs: Sequence[str] = ("PCMU", "PCMA"),
    dtmf_payload_type: int | None = 101,
    direction: str = "sendrecv",
    sess_id: int,
    sess_version: int = 0,
    ptime_ms: int = 20,
) -> SessionDescription:
    """Answer ``offer`` (RFC 3264 §6): take its first audio stream with a common codec.

    Every other m-line is answered with port 0, as are offered port-0 streams and
    unusable ones (secure profiles, a port without room for RTCP, a host name in c=;
    see the module docstring). The chosen stream lists the common codecs in the
    offerer's order with its numbers.

    Raises:
        SdpNegotiationError: no usable audio stream with a common codec (answer 488;
            the message says why each audio stream was refused).
    """
    supported = supported_maps(codecs, dtmf_payload_type)
    answered: list[MediaDescription] = []
    refused: list[str] = []
    taken = False
    for offered in offer.media:
        answer = MediaDescription(offered.media, 0, offered.proto, offered.formats or ("0",))
        if not taken and offered.media == "audio" and offered.port != 0:
            problem = _unusable(offered, offer.connection_for(offered))
            if problem is not None:
                refused.append(problem)
                answered.append(answer)
                continue
            candidate = answer_media(
                offered,
                supported,
                port=port,
                offered_direction=offer.direction_for(offered),
                direction=direction,
                ptime=ptime_ms,
                rtcp_mux=False,
            )
            # An answer that keeps only telephone-event carries no audio: reject it.
            if candidate.port != 0 and any(
                _is_audio_codec(candidate.rtpmap(pt)) for pt in candidate.payload_types
            ):
                answer = candidate
                taken = True
        answered.append(answer)
    if not taken:
        if refused:
            reasons = "; ".join(refused)
            raise SdpNegotiationError(f"no usable audio stream in the offer: {reasons}")
        raise SdpNegotiationError("no common audio codec in the offer (488 Not Acceptable Here)")
    return make_sdp(address, answered, sess_id=sess_id, sess_version=sess_version)


def _audio_index(sdp: SessionDescription) -> int | None:
    for i, media in enumerate(sdp.media):
        if media.media == "audio" and media.port != 0:
            return i
    return None


def negotiated(
    local: SessionDescription,
    remote: SessionDescription,
    *,
    answer_is_local: bool,
) -> NegotiatedAudio:
    """What a completed offer/answer exchange means for the audio stream.

    The codec is the first audio codec of the answer (both sides use its numbers, which
    are the offerer's). Directions combine: we send if we said send and they said
    receive, and the reverse for receiving.

    Raises:
        SdpNegotiationError: the answer accepted no audio stream, or the remote
            side's stream is unusable (secure profile, port without room for RTCP, host
            name in c=; status 488).
    """
    answer = local if answer_is_local else remote
    index = _audio_index(answer)
    if index is None or index >= len(local.media) or index >= len(remote.media):
        raise SdpNegotiationError("the answer accepted no audio stream")
    a_media = answer.media[index]
    codec: RtpMap | None = None
    name: str | None = None
    dtmf: int | None = None
    for pt in a_media.payload_types:
        mapping = a_media.rtpmap(pt)
        if mapping is None:
            continue
        if mapping.encoding.lower() == TELEPHONE_EVENT and dtmf is None:
            dtmf = pt
        elif codec is None:
            name = _codec_name(mapping)
            if name is not None:
                codec = mapping
    if codec is None or name is None:
        raise SdpNegotiationError("the answer holds no audio codec we implement")
    l_media, r_media = local.media[index], remote.media[index]
    local_dir = local.direction_for(l_media)
    remote_dir = remote.direction_for(r_media)
    connection = remote.connection_for(r_media)
    problem = _unusable(r_media, connection)
    if problem is not None:
        raise SdpNegotiationError(f"unusable remote audio stream: {problem}")
    remote_addr = None
    if connection is not None and r_media.port != 0 and connection.address not in ("0.0.0.0", "::"):
        remote_addr = (connection.address, r_media.port)
    ptime = r_media.ptime
    return NegotiatedAudio(
        codec=name,
        payload_type=codec.payload_type,
        dtmf_payload_type=dtmf,
        remote_address=remote_addr,
        # RFC 3264 §5.1/§6.1: sendonly/recvonly/inactive decide who may send.
        send=local_dir in _SENDS and remote_dir in _RECEIVES,
        receive=local_dir in _RECEIVES and remote_dir in _SENDS,
        ptime_ms=int(ptime) if ptime and 10 <= ptime <= 120 else 20,
    )


def with_direction(sdp: SessionDescription, direction: str) -> SessionDescription:
    """A re-offer of ``sdp`` with the audio stream's direction changed (hold/resume).

    RFC 3264 §8: the version in o= is incremented; §8.4: hold is sendonly (or inactive).
    """
    media = tuple(
        m.with_direction(direction) if m.media == "audio" and m.port != 0 else m for m in sdp.media
    )
    return attrs.evolve(sdp, media=media).with_next_version()


def audio_direction(sdp: SessionDescription) -> str:
    """The effective direction of the first live audio stream (sendrecv if none)."""
    index = _audio_index(sdp)
    return "sendrecv" if index is None else sdp.direction_for(sdp.media[index])


def parse_offer(body: bytes | str) -> SessionDescription:
    """Parse an SDP body from the network.

    Raises:
        SdpNegotiationError: the body is not SDP (status 400).
    """
    try:
        return parse_sdp(body)
    except SdpParseError as exc:
        raise SdpNegotiationError(f"malformed SDP: {exc.reason}", status=400) from None
