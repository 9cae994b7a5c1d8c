"""RFC 3264 offer/answer for one audio stream: PCMU, PCMA, G.722, Opus and telephone-event.

Pure functions over rvoip_sip_core's SDP model. The answer keeps the offerer's codec
order and payload numbers (sip-core's ``answer_media``); this module adds the session
policy: which codecs we support, 488 when no audio codec is common, hold directions,
and what the two descriptions together mean for the media plane (``NegotiatedAudio``).

Every SDP here came from the network, so a stream is usable only when (issue 10):

* its transport is plain RTP (``RTP/AVP``, ``RTP/AVPF``), or secure RTP (``RTP/SAVP``,
  ``RTP/SAVPF``) only when SRTP is on and the stream carries an ``a=crypto`` line we
  can key (SDES, RFC 4568): a secure stream must never be answered in clear;
* its port leaves room for RTCP on the next port (1..65534; RTCP of ``m=audio 65535``
  would be 65536, which no socket takes);
* its ``c=`` address is an IP literal of its address type: a host name would need a
  DNS lookup on the call path (slow, and resolving an attacker-chosen name).

An unusable offered stream is answered with port 0 (RFC 3264 §6); when none is left
the offer gets 488 with the reasons. A remote answer (or offer, for a local answer)
whose chosen stream is unusable fails :func:`negotiated` with 488 the same way.

SRTP (``srtp`` mode, see :data:`SRTP_MODES`): "off" offers plain RTP and refuses
secure offers; "optional" offers ``RTP/AVP`` with ``a=crypto`` lines (best effort, as
baresip's ``mediaenc=srtp``: a peer without SRTP answers plain RTP); "required" offers
``RTP/SAVP`` (baresip's ``srtp-mand``) and refuses any stream it cannot key. The keys
live in the SDPs themselves (our ``a=crypto`` key in our description, the peer's in
theirs): :func:`negotiated` pairs them by the answer's tag (RFC 4568 §7.1.2).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Literal

import attrs

from rvoip_media_core import DEFAULT_OPUS_FMTP, codec_available
from rvoip_rtp_core import SRTP_SUITES, SrtpError, SrtpKeyParams, SrtpSessionKeys
from rvoip_session_core._errors import MediaError
from rvoip_sip_core import (
    Attribute,
    Connection,
    Crypto,
    CryptoKey,
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
    # RFC 3551 §4.5.2: G722/8000 although it samples at 16 kHz.
    "G722": RtpMap(9, "G722", 8000),
    # RFC 7587 §7: always opus/48000/2 in rtpmap; 111 is the dynamic number we offer.
    "OPUS": RtpMap(111, "opus", 48000, 2),
}
"""The audio codecs the media plane implements (upper-cased names), static or offered numbers."""

DEFAULT_CODECS = ("PCMU", "PCMA")
"""The codec preference when the application sets none: G.711 only, as before, so an
endpoint upgraded to this version offers exactly what it offered (and costs what it
cost: G.711 runs in the batched C kernel); HD voice is one ``with_codecs`` call."""

DTMF_WIDEBAND_PAYLOAD_TYPE = 110
"""The payload number of telephone-event/48000 offered next to Opus (RFC 4733 §2.1:
events use the RTP clock of the audio they go with)."""

_OPUS_FMTP = DEFAULT_OPUS_FMTP.to_fmtp()

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

SrtpMode = Literal["off", "optional", "required"]
"""How calls use SRTP (SDES keys in SDP, RFC 4568): see :data:`SRTP_MODES`."""

SRTP_MODES: tuple[SrtpMode, ...] = ("off", "optional", "required")
"""off: plain RTP only (secure offers get 488); optional: offer RTP/AVP with a=crypto
and use SRTP when the peer answers with a key, plain RTP otherwise; required: offer
RTP/SAVP, refuse (488) offers without a usable a=crypto, fail a call answered without one."""

KeySource = Callable[[int], bytes]
"""Where master keys come from: ``n -> n random bytes`` (the OS CSPRNG by default)."""

OFFERED_SUITES = (("AES_CM_128_HMAC_SHA1_80", 1), ("AES_CM_128_HMAC_SHA1_32", 2))
"""The SDES crypto suites offered, in preference order, with their a=crypto tags."""

SECURE_RTP_PROFILES = frozenset({"RTP/SAVP", "RTP/SAVPF"})
"""SRTP transports answered when SRTP is on and the stream has a usable a=crypto."""

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
        codec: encoding name ("PCMU", "PCMA", "G722" or "opus").
        payload_type: its payload number (the offerer's).
        dtmf_payload_type: payload number of telephone-event, None if not agreed.
        remote_address: where to send RTP (None when the stream is rejected or has no c=).
        send: whether we may send audio (our direction and theirs allow it).
        receive: whether we expect audio.
        ptime_ms: packet time to send with.
        srtp: the SRTP keys (ours to protect, the peer's to unprotect), None for RTP.
        remote_fmtp: the peer's a=fmtp parameters for the codec (what it wants to
            receive: our encoder follows them), None when it sent none.
        clock_rate: the codec's RTP clock rate.
    """

    codec: str
    payload_type: int
    dtmf_payload_type: int | None
    remote_address: tuple[str, int] | None
    send: bool
    receive: bool
    ptime_ms: int = 20
    srtp: SrtpSessionKeys | None = attrs.field(default=None, repr=False)
    """The SDES keys (ours, the peer's) when the stream is SRTP, None for plain RTP."""
    remote_fmtp: str | None = None
    clock_rate: int = 8000

    @property
    def direction(self) -> str:
        """Our effective direction as an SDP attribute name."""
        if self.send and self.receive:
            return "sendrecv"
        if self.send:
            return "sendonly"
        return "recvonly" if self.receive else "inactive"


_AVAILABLE: dict[str, bool] = {}


def usable_codecs(codecs: Sequence[str]) -> list[str]:
    """``codecs`` upper-cased and filtered to what this process can run.

    Order is kept; unknown names, duplicates and codecs whose library is missing here
    (media-core logs why once) are dropped. Only the codecs asked for are probed: a
    G.711-only endpoint never loads the G.722 or Opus libraries.
    """
    out: list[str] = []
    for name in codecs:
        key = name.upper()
        if key not in CODEC_MAPS or key in out:
            continue
        known = _AVAILABLE.get(key)
        if known is None:
            known = _AVAILABLE[key] = codec_available(key)
        if known:
            out.append(key)
    return out


_SUPPORTED: dict[tuple[tuple[str, ...], int | None], tuple[RtpMap, ...]] = {}
_SUPPORTED_LIMIT = 64


def supported_maps(codecs: Sequence[str], dtmf_payload_type: int | None) -> list[RtpMap]:
    """Our codec list as rtpmaps, telephone-event last (when a payload type is given).

    telephone-event is listed at every clock rate of the codecs (8000, and 48000 with
    Opus), since RFC 4733 §2.1 sends events on the RTP clock of the audio.
    """
    return list(_supported(tuple(codecs), dtmf_payload_type))


def _supported(codecs: tuple[str, ...], dtmf_payload_type: int | None) -> tuple[RtpMap, ...]:
    """:func:`supported_maps`, memoised.

    Hot path: every offer and answer of every call asks it with the endpoint's one codec
    list, and what this process can run does not change.
    """
    key = (codecs, dtmf_payload_type)
    found = _SUPPORTED.get(key)
    if found is None:
        if len(_SUPPORTED) >= _SUPPORTED_LIMIT:
            _SUPPORTED.clear()
        found = _SUPPORTED[key] = tuple(_build_supported(codecs, dtmf_payload_type))
    return found


def _build_supported(codecs: Sequence[str], dtmf_payload_type: int | None) -> list[RtpMap]:
    names = usable_codecs(codecs)
    maps = [CODEC_MAPS[name] for name in names]
    if dtmf_payload_type is not None and "OPUS" in names:
        opus = CODEC_MAPS["OPUS"]
        if opus.payload_type == dtmf_payload_type:
            # The application gave telephone-event Opus's usual number: Opus moves.
            free = next(pt for pt in range(96, 128) if pt != dtmf_payload_type)
            maps[names.index("OPUS")] = RtpMap(free, opus.encoding, opus.clock_rate, 2)
    if dtmf_payload_type is not None:
        if any(CODEC_MAPS[n].clock_rate == 8000 for n in names) or not names:
            maps.append(RtpMap(dtmf_payload_type, TELEPHONE_EVENT, 8000))
        if "OPUS" in names:
            # A dynamic number no other format of the offer uses (110 unless taken).
            taken = {m.payload_type for m in maps}
            wide = next(
                pt for pt in (DTMF_WIDEBAND_PAYLOAD_TYPE, *range(96, 128)) if pt not in taken
            )
            maps.append(RtpMap(wide, TELEPHONE_EVENT, 48000))
    return maps


def crypto_line(params: SrtpKeyParams) -> Crypto:
    """``params`` as an ``a=crypto`` value: tag, suite, ``inline:`` key||salt (RFC 4568 §9.1)."""
    key = CryptoKey.inline(params.master_key + params.master_salt)
    return Crypto(params.tag, params.suite, (key,))


def usable_crypto(media: MediaDescription) -> list[SrtpKeyParams]:
    """The ``a=crypto`` lines of ``media`` we can key, in the sender's preference order.

    RFC 4568 §6: a line we do not understand is ignored, not an error. We take a line
    with one inline key of the AES-CM-128 suites, no MKI (it would add a field to every
    packet, §6.1) and no session parameters (e.g. UNENCRYPTED_SRTP, §6.3); a lifetime is
    accepted (libsrtp re-keying limits apply regardless).
    """
    found: list[SrtpKeyParams] = []
    for line in media.crypto():
        if line.suite not in SRTP_SUITES or len(line.key_params) != 1 or line.session_params:
            continue
        key = line.key_params[0]
        if key.method.lower() != "inline" or key.mki is not None:
            continue
        try:
            raw = key.key_and_salt()
            found.append(SrtpKeyParams(line.suite, raw[:16], raw[16:], line.tag))
        except (SdpParseError, SrtpError):
            continue  # bad base64 or length: as if the line were absent
    return found


def new_offer_keys(key_source: KeySource = secrets.token_bytes) -> list[SrtpKeyParams]:
    """Fresh master keys, one per offered suite (RFC 4568 §6.1: each line its own key)."""
    return [SrtpKeyParams.generate(key_source, suite, tag) for suite, tag in OFFERED_SUITES]


def _our_fmtps(maps: Sequence[RtpMap]) -> list[Fmtp]:
    """Our a=fmtp lines for ``maps``: Opus's receive parameters, telephone-event's 0-16."""
    fmtps: list[Fmtp] = []
    for m in maps:
        if m.encoding == "opus":
            fmtps.append(Fmtp(str(m.payload_type), _OPUS_FMTP))
        elif m.encoding == TELEPHONE_EVENT:
            fmtps.append(Fmtp(str(m.payload_type), "0-16"))
    return fmtps


def build_offer(
    address: str,
    port: int,
    *,
    codecs: Sequence[str] = DEFAULT_CODECS,
    dtmf_payload_type: int | None = 101,
    direction: str = "sendrecv",
    sess_id: int,
    sess_version: int = 0,
    ptime_ms: int = 20,
    srtp: SrtpMode = "off",
    key_source: KeySource = secrets.token_bytes,
) -> SessionDescription:
    """An SDP offer of one audio stream at ``address``:``port`` with ``codecs`` in order.

    With ``srtp`` "optional" or "required" the stream carries an ``a=crypto`` line per
    suite of :data:`OFFERED_SUITES`, each with a fresh master key and salt from
    ``key_source`` (the OS CSPRNG unless a test injects one); "required" offers it as
    ``RTP/SAVP`` (RFC 3711 §12), "optional" as ``RTP/AVP`` (best effort: a peer that
    does not do SRTP ignores the lines and answers plain RTP).
    """
    maps = supported_maps(codecs, dtmf_payload_type)
    crypto: list[Crypto] = []
    proto = "RTP/AVP"
    if srtp != "off":
        crypto = [crypto_line(k) for k in new_offer_keys(key_source)]
        proto = "RTP/SAVP" if srtp == "required" else "RTP/AVP"
    media = make_media(
        port,
        maps,
        proto=proto,
        fmtps=_our_fmtps(maps),
        ptime=ptime_ms,
        direction=direction,
        crypto=crypto,
    )
    return make_sdp(address, [media], sess_id=sess_id, sess_version=sess_version)


def _is_audio_codec(mapping: RtpMap | None) -> bool:
    return mapping is not None and _codec_name(mapping) is not None


def _unusable(
    media: MediaDescription, connection: Connection | None, secure: bool = False
) -> str | None:
    """Why a live (port != 0) stream from the network cannot be used, or None if it can.

    ``secure``: the stream is keyed for SRTP, so ``RTP/SAVP``/``RTP/SAVPF`` are usable.
    """
    proto = media.proto.upper()
    if proto not in PLAIN_RTP_PROFILES and not (secure and proto in SECURE_RTP_PROFILES):
        if "SAVP" in proto:
            # RFC 3264 §6 / RFC 4568 §7.1: a secure stream we cannot key must be rejected,
            # never answered as plain RTP.
            return f"{media.proto} (SRTP) is not usable: SRTP is off or no a=crypto we support"
        return f"transport {media.proto[:40]!r} is not supported"
    if not 0 < media.port <= MAX_RTP_PORT:
        # RFC 3550 §11: RTCP on port + 1, which must still be a port (<= 65535).
        return f"port {media.port} is not a usable RTP port (1..{MAX_RTP_PORT}: RTCP is port + 1)"
    if connection is not None and not connection.is_ip_literal:
        # RFC 8866 §5.7 allows an FQDN; resolving one would block the call path.
        return f"c= address {connection.address[:60]!r} is not an IP literal"
    return None


def _answer_key(
    offered: MediaDescription, previous: SessionDescription | None, key_source: KeySource
) -> SrtpKeyParams | None:
    """Our key for answering ``offered``, or None when it has no a=crypto we support."""
    if not offered.has_attribute("crypto"):
        return None
    lines = usable_crypto(offered)
    if not lines:
        return None
    chosen = lines[0]  # RFC 4568 §7.1.2: the offerer's preference order
    if previous is not None:
        index = _audio_index(previous)
        if index is not None:
            for mine in usable_crypto(previous.media[index]):
                if mine.suite == chosen.suite:
                    return attrs.evolve(mine, tag=chosen.tag)
    return SrtpKeyParams.generate(key_source, chosen.suite, chosen.tag)


def build_answer(
    offer: SessionDescription,
    address: str,
    port: int,
    *,
    codecs: Sequence[str] = DEFAULT_CODECS,
    dtmf_payload_type: int | None = 101,
    direction: str = "sendrecv",
    sess_id: int,
    sess_version: int = 0,
    ptime_ms: int = 20,
    srtp: SrtpMode = "off",
    previous: SessionDescription | None = None,
    key_source: KeySource = secrets.token_bytes,
) -> SessionDescription:
    """Answer ``offer`` (RFC 3264 §6): take its first audio stream with a common codec.

    Every other m-line is answered with port 0, as are offered port-0 streams and
    unusable ones (secure profiles, a port without room for RTCP, a host name in c=;
    see the module docstring). The chosen stream lists the common codecs in the
    offerer's order with its numbers.

    SRTP (``srtp`` not "off"): a stream with an ``a=crypto`` line we support is answered
    with exactly one line, the first supported one offered, with its tag and suite and
    our own key (RFC 4568 §7.1.2): the key of that suite in ``previous`` (our last SDP of
    the call: a re-offer on hold/resume does not re-key us) or a fresh one from
    ``key_source``. "required" refuses a stream without one; "optional" answers it in
    plain RTP. With "off", ``a=crypto`` in an ``RTP/AVP`` offer is ignored.

    Raises:
        SdpNegotiationError: no usable audio stream with a common codec (answer 488;
            the message says why each audio stream was refused).
    """
    table = (tuple(codecs), dtmf_payload_type)
    supported = _supported(*table)
    answered: list[MediaDescription] = []
    refused: list[str] = []
    taken = False
    for offered in offer.media:
        answer: MediaDescription | None = None
        if not taken and offered.media == "audio" and offered.port != 0:
            ours = None if srtp == "off" else _answer_key(offered, previous, key_source)
            problem = _unusable(offered, offer.connection_for(offered), ours is not None)
            if problem is None and ours is None and srtp == "required":
                problem = (
                    "SRTP is required (with_srtp('required')) and the stream has no a=crypto "
                    f"we support ({', '.join(SRTP_SUITES)})"
                )
            if problem is not None:
                refused.append(problem)
                answered.append(_refused(offered))
                continue
            offered_direction = offer.direction_for(offered)
            if ours is None:
                answer = _plain_answer(
                    offered, supported, table, port, offered_direction, direction, ptime_ms
                )
            else:
                answer = _answer_stream(
                    offered,
                    supported,
                    port,
                    offered_direction,
                    direction,
                    ptime_ms,
                    crypto=(crypto_line(ours),),
                )
            taken = answer is not None
        # hot path: the port-0 refusal of a stream is built only for one not answered.
        answered.append(_refused(offered) if answer is None else answer)
    if not taken:
        if refused:
            reasons = "; ".join(refused)
            raise SdpNegotiationError(f"no usable audio stream in the offer: {reasons}")
        raise SdpNegotiationError("no common audio codec in the offer (488 Not Acceptable Here)")
    return make_sdp(address, answered, sess_id=sess_id, sess_version=sess_version)


def _answer_stream(
    offered: MediaDescription,
    supported: tuple[RtpMap, ...],
    port: int,
    offered_direction: str,
    direction: str,
    ptime_ms: int,
    crypto: tuple[Crypto, ...] = (),
) -> MediaDescription | None:
    """Our answer to one usable offered audio stream, None when it has no audio codec."""
    candidate = answer_media(
        offered,
        supported,
        port=port,
        offered_direction=offered_direction,
        direction=direction,
        ptime=ptime_ms,
        rtcp_mux=False,
        crypto=crypto,
    )
    # An answer that keeps only telephone-event carries no audio: reject it.
    if candidate.port != 0 and any(
        _is_audio_codec(candidate.rtpmap(pt)) for pt in candidate.payload_types
    ):
        return _with_our_opus_fmtp(candidate)
    return None


# Plain-RTP answers by the shape of the offered stream (bounded; see _plain_answer).
_PLAIN_ANSWERS: dict[tuple[object, ...], MediaDescription | None] = {}
_PLAIN_ANSWERS_LIMIT = 64
_PLAIN_ANSWER_MAX_LINES = 32
_PLAIN_ANSWER_MAX_CHARS = 2048


def _plain_answer(
    offered: MediaDescription,
    supported: tuple[RtpMap, ...],
    table: tuple[tuple[str, ...], int | None],
    port: int,
    offered_direction: str,
    direction: str,
    ptime_ms: int,
) -> MediaDescription | None:
    """:func:`_answer_stream` without SRTP, memoised on what the answer depends on.

    Hot path: a UAS answers the same few offers (one per model of phone or trunk) again
    and again, differing only in port and address. Without keys the answer depends only
    on the stream's media, proto, formats and attribute lines, the directions, ptime and
    our codec table (``supported``, made from ``table``: codec names and telephone-event
    number): the first answer to such an offer is kept (with its serialized
    lines) and later ones reuse it on their own port. At most 64 kept, each from an offered
    stream of at most 32 formats and 32 attribute lines holding at most 2,048 characters
    (a larger one is answered without the memo).
    """
    attributes = offered.attributes
    formats = offered.formats
    lines = tuple([(a.name, a.value or "") for a in attributes])
    if (
        len(lines) > _PLAIN_ANSWER_MAX_LINES
        or len(formats) > _PLAIN_ANSWER_MAX_LINES
        or sum([len(name) + len(value) for name, value in lines])
        + sum(map(len, formats))
        + len(offered.proto)
        > _PLAIN_ANSWER_MAX_CHARS
    ):
        return _answer_stream(offered, supported, port, offered_direction, direction, ptime_ms)
    key = (
        offered.media,
        offered.proto,
        formats,
        lines,
        offered_direction,
        direction,
        ptime_ms,
        table,
    )
    try:
        kept = _PLAIN_ANSWERS[key]
    except KeyError:
        kept = _answer_stream(offered, supported, port, offered_direction, direction, ptime_ms)
        if len(_PLAIN_ANSWERS) >= _PLAIN_ANSWERS_LIMIT:
            _PLAIN_ANSWERS.clear()
        _PLAIN_ANSWERS[key] = kept
        return kept
    if kept is None or kept.port == port:
        return kept
    return kept.with_port(port)


def _refused(offered: MediaDescription) -> MediaDescription:
    """RFC 3264 §6: a stream we do not take is answered with port 0 and its formats."""
    return MediaDescription(offered.media, 0, offered.proto, offered.formats or ("0",))


def _with_our_opus_fmtp(media: MediaDescription) -> MediaDescription:
    """The answer's Opus fmtp says what *we* want to receive (RFC 7587 §7.1), not the offer's.

    sip-core's ``answer_media`` copies the offerer's fmtp lines; for Opus each side's
    parameters describe its own receiver, so ours replace the copy (added if absent).
    """
    opus_pts = {
        str(pt)
        for pt in media.payload_types
        if (m := media.rtpmap(pt)) is not None and m.encoding.lower() == "opus"
    }
    if not opus_pts:
        return media
    attributes: list[Attribute] = []
    for attribute in media.attributes:
        value = attribute.value
        if attribute.name == "fmtp" and value is not None and value.split(" ", 1)[0] in opus_pts:
            continue
        attributes.append(attribute)
    # after the last rtpmap/fmtp line, where an fmtp belongs
    last = max(
        (i + 1 for i, a in enumerate(attributes) if a.name in ("rtpmap", "fmtp")),
        default=len(attributes),
    )
    for pt in sorted(opus_pts):
        attributes.insert(last, Attribute("fmtp", f"{pt} {_OPUS_FMTP}"))
    return attrs.evolve(media, attributes=tuple(attributes))


def _audio_index(sdp: SessionDescription) -> int | None:
    for i, media in enumerate(sdp.media):
        if media.media == "audio" and media.port != 0:
            return i
    return None


def _negotiated_keys(
    local: MediaDescription, remote: MediaDescription, answer_is_local: bool
) -> SrtpSessionKeys | None:
    """The SRTP keys an offer/answer agreed on for a stream, None when it is plain RTP.

    RFC 4568 §7.1.2/§7.1.3: the answer holds one crypto line; its tag names the offered
    line whose suite it accepted. Each side protects with its own key: ours is in our
    description, the peer's in theirs.

    Raises:
        SdpNegotiationError: the answer's crypto line is unusable or names no offered line.
    """
    answer, offer = (local, remote) if answer_is_local else (remote, local)
    if not answer.has_attribute("crypto") or not offer.has_attribute("crypto"):
        # An answer's crypto line to an offer without one is not an SDES negotiation
        # (RFC 4568 §7.1.2 answers an offered line): plain RTP. baresip's best-effort
        # "srtp" adds a=crypto to its answer to any plain offer and then sends RTP.
        return None
    answered = usable_crypto(answer)
    if not answered:
        raise SdpNegotiationError("the answer's a=crypto holds no SRTP suite and key we support")
    chosen = answered[0]
    for offered in usable_crypto(offer):
        if offered.tag == chosen.tag and offered.suite == chosen.suite:
            if answer_is_local:
                return SrtpSessionKeys(chosen, offered)
            return SrtpSessionKeys(offered, chosen)
    raise SdpNegotiationError(
        f"the answer's a=crypto tag {chosen.tag} ({chosen.suite}) matches no offered crypto line"
    )


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
            side's stream is unusable (secure profile without keys, port without room
            for RTCP, host name in c=; status 488), or our ``RTP/SAVP`` offer was
            answered without ``a=crypto`` (SRTP required), or the answer's crypto line
            matches no offered one.
    """
    answer = local if answer_is_local else remote
    index = _audio_index(answer)
    if index is None or index >= len(local.media) or index >= len(remote.media):
        raise SdpNegotiationError("the answer accepted no audio stream")
    a_media = answer.media[index]
    codec: RtpMap | None = None
    name: str | None = None
    events: list[RtpMap] = []
    for pt in a_media.payload_types:
        mapping = a_media.rtpmap(pt)
        if mapping is None:
            continue
        if mapping.encoding.lower() == TELEPHONE_EVENT:
            events.append(mapping)
        elif codec is None:
            name = _codec_name(mapping)
            if name is not None:
                codec = mapping
    if codec is None or name is None:
        raise SdpNegotiationError("the answer holds no audio codec we implement")
    # RFC 4733 §2.1: the events' clock is the audio's; take the matching one, else the first.
    dtmf_map = next((e for e in events if e.clock_rate == codec.clock_rate), None)
    dtmf = dtmf_map.payload_type if dtmf_map is not None else None
    l_media, r_media = local.media[index], remote.media[index]
    local_dir = local.direction_for(l_media)
    remote_dir = remote.direction_for(r_media)
    connection = remote.connection_for(r_media)
    keys = _negotiated_keys(l_media, r_media, answer_is_local)
    problem = _unusable(r_media, connection, keys is not None)
    if problem is not None:
        raise SdpNegotiationError(f"unusable remote audio stream: {problem}")
    if keys is None and not answer_is_local and l_media.proto.upper() in SECURE_RTP_PROFILES:
        # Our RTP/SAVP offer (srtp "required") answered in clear: never fall back.
        raise SdpNegotiationError(
            "SRTP is required but the answer has no a=crypto line: the peer does not do SRTP"
        )
    remote_addr = None
    if connection is not None and r_media.port != 0 and connection.address not in ("0.0.0.0", "::"):
        remote_addr = (connection.address, r_media.port)
    ptime = r_media.ptime
    remote_fmtp = r_media.fmtp(codec.payload_type)
    return NegotiatedAudio(
        codec=CODEC_MAPS[name].encoding,
        payload_type=codec.payload_type,
        dtmf_payload_type=dtmf,
        remote_address=remote_addr,
        # RFC 3264 §5.1/§6.1: sendonly/recvonly/inactive decide who may send.
        send=local_dir in _SENDS and remote_dir in _RECEIVES,
        receive=local_dir in _RECEIVES and remote_dir in _SENDS,
        ptime_ms=int(ptime) if ptime and 10 <= ptime <= 120 else 20,
        srtp=keys,
        remote_fmtp=None if remote_fmtp is None else remote_fmtp.params,
        clock_rate=codec.clock_rate,
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
