"""Building SDP offers and answers (RFC 3264 offer/answer for RTP media).

``make_media``/``make_sdp`` build an offer; ``answer_media``/``make_answer`` build the
answer to a received offer: same number and order of m-lines, rejected streams with
port 0, the offer's payload type numbers for the codecs both sides support, and the
complementary direction.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._memo import remember
from ._sdp_attrs import STATIC_PAYLOAD_TYPES, Attribute, Crypto, Fmtp, RtpMap
from ._sdp_model import DIRECTIONS, Connection, MediaDescription, Origin, SessionDescription

__all__ = [
    "answer_direction",
    "answer_media",
    "codecs_match",
    "make_answer",
    "make_media",
    "make_sdp",
]


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def make_media(
    port: int,
    codecs: Sequence[RtpMap],
    *,
    media: str = "audio",
    proto: str = "RTP/AVP",
    fmtps: Sequence[Fmtp] = (),
    ptime: int | None = None,
    maxptime: int | None = None,
    direction: str | None = None,
    connection_address: str | None = None,
    rtcp_mux: bool = False,
    crypto: Sequence[Crypto] = (),
    extra_attributes: Sequence[Attribute] = (),
) -> MediaDescription:
    """An RTP ``m=`` section offering ``codecs`` in preference order.

    Every codec gets an ``a=rtpmap`` (also static ones, as most UAs do), then fmtp,
    ptime, maxptime, rtcp-mux, crypto, the direction and ``extra_attributes``.

    Raises:
        ValueError: unknown direction.
    """
    # hot path (every answer): shared Attribute values (frozen) instead of new ones per
    # call, and no work for the empty groups.
    attributes = [c.as_attribute() for c in codecs]
    if fmtps:
        attributes += [Attribute("fmtp", str(f)) for f in fmtps]
    if ptime is not None:
        attributes.append(_attribute("ptime", str(ptime)))
    if maxptime is not None:
        attributes.append(_attribute("maxptime", str(maxptime)))
    if rtcp_mux:
        attributes.append(_attribute("rtcp-mux"))
    if crypto:
        attributes += [c.as_attribute() for c in crypto]
    if direction is not None:
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown SDP direction {direction!r}")
        attributes.append(_attribute(direction))
    if extra_attributes:
        attributes += extra_attributes
    connections: tuple[Connection, ...] = ()
    if connection_address is not None:
        connections = (Connection("IN", _addrtype(connection_address), connection_address),)
    return MediaDescription(
        media,
        port,
        proto,
        tuple([str(c.payload_type) for c in codecs]),
        connections=connections,
        attributes=tuple(attributes),
    )


# The few attribute lines our offers and answers repeat (ptime, direction, rtcp-mux):
# one frozen Attribute each, shared (bounded like every memo of this package).
_ATTRIBUTES: dict[tuple[str, str | None], Attribute] = {}


def _attribute(name: str, value: str | None = None) -> Attribute:
    found = _ATTRIBUTES.get((name, value))
    if found is None:
        size = len(name) + (len(value) if value is not None else 0)
        found = remember(_ATTRIBUTES, (name, value), Attribute(name, value), 64, size)
    return found


def make_sdp(
    address: str,
    media: Sequence[MediaDescription],
    *,
    sess_id: int | str,
    sess_version: int | str = 0,
    username: str = "-",
    session_name: str = "-",
    attributes: Sequence[Attribute] = (),
) -> SessionDescription:
    """A session description for ``address`` (the address actually bound) with ``media``.

    The origin and session-level ``c=`` use ``address`` (IP4 or IP6 by its form);
    ``t=0 0``. Pick ``sess_id`` from an injected RNG or clock (RFC 8866 §5.2 suggests an
    NTP timestamp); increment the version on each re-offer with ``with_next_version``.
    """
    addrtype = _addrtype(address)
    connection = _CONNECTIONS.get(address)
    if connection is None:
        # hot path (every offer and answer): our own address, one frozen value for all
        connection = remember(
            _CONNECTIONS, address, Connection("IN", addrtype, address), 64, len(address)
        )
    return SessionDescription(
        Origin(username, str(sess_id), str(sess_version), "IN", addrtype, address),
        session_name,
        tuple(media),
        connection=connection,
        attributes=tuple(attributes),
    )


_CONNECTIONS: dict[str, Connection] = {}


def codecs_match(a: RtpMap, b: RtpMap) -> bool:
    """Same codec: encoding name (case-insensitive, RFC 4855 §3), clock rate and channels.

    Channels absent means one (RFC 8866 §6.6).
    """
    return (
        a.encoding.lower() == b.encoding.lower()
        and a.clock_rate == b.clock_rate
        and (a.channels or 1) == (b.channels or 1)
    )


_SENDS = frozenset({"sendrecv", "sendonly"})
_RECEIVES = frozenset({"sendrecv", "recvonly"})


def answer_direction(offered: str, local: str = "sendrecv") -> str:
    """The answer's direction (RFC 3264 §6.1) for an ``offered`` one and what we want.

    We send only if the offerer receives and we want to send; we receive only if the
    offerer sends and we want to receive (sendonly → recvonly, inactive → inactive).

    Raises:
        ValueError: unknown direction.
    """
    if offered not in DIRECTIONS or local not in DIRECTIONS:
        raise ValueError(f"unknown SDP direction {offered!r} / {local!r}")
    send = offered in _RECEIVES and local in _SENDS
    recv = offered in _SENDS and local in _RECEIVES
    if send and recv:
        return "sendrecv"
    if send:
        return "sendonly"
    if recv:
        return "recvonly"
    return "inactive"


def _rejected(offer: MediaDescription) -> MediaDescription:
    # RFC 3264 §6: a rejected stream keeps its m-line with port 0 (and a format).
    return MediaDescription(offer.media, 0, offer.proto, offer.formats or ("0",))


def answer_media(
    offer: MediaDescription,
    supported: Sequence[RtpMap],
    *,
    port: int,
    offered_direction: str | None = None,
    direction: str = "sendrecv",
    ptime: int | None = None,
    rtcp_mux: bool = True,
    connection_address: str | None = None,
    crypto: Sequence[Crypto] = (),
    extra_attributes: Sequence[Attribute] = (),
) -> MediaDescription:
    """Answer one offered stream (RFC 3264 §6.1).

    Keeps the offered payload types whose codec (explicit rtpmap or RFC 3551 static
    type) matches one in ``supported``, in the offer's order, with the offer's numbers
    and fmtp lines. No common codec, or an offered port 0, gives the stream rejected
    (port 0). ``offered_direction`` is the offer's effective direction (pass
    ``offer_sdp.direction_for(media)``; defaults to the stream's own or sendrecv);
    ``direction`` is what we want. ``rtcp_mux`` accepts an offered a=rtcp-mux.

    Raises:
        ValueError: unknown direction.
    """
    if offer.port == 0:
        return _rejected(offer)
    # hot path (every incoming call): the offer's rtpmap and fmtp lines are parsed once
    # here rather than once per payload type; the first line for a number wins, as in
    # MediaDescription.rtpmap / fmtp.
    maps: dict[int, RtpMap] = {}
    for mapping in offer.rtpmaps():
        maps.setdefault(mapping.payload_type, mapping)
    chosen: list[RtpMap] = []
    for pt in offer.payload_types:
        found = maps.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)
        if found is not None and any(codecs_match(found, s) for s in supported):
            chosen.append(found)
    if not chosen:
        return _rejected(offer)
    fmtps: list[Fmtp] = []
    if offer.has_attribute("fmtp"):
        by_format: dict[str, Fmtp] = {}
        for fmtp in offer.fmtps():
            by_format.setdefault(fmtp.format, fmtp)
        fmtps = [by_format[key] for c in chosen if (key := str(c.payload_type)) in by_format]
    return make_media(
        port,
        chosen,
        media=offer.media,
        proto=offer.proto,
        fmtps=fmtps,
        ptime=ptime,
        direction=answer_direction(offered_direction or offer.direction or "sendrecv", direction),
        connection_address=connection_address,
        rtcp_mux=rtcp_mux and offer.rtcp_mux,
        crypto=crypto,
        extra_attributes=extra_attributes,
    )


def make_answer(
    offer: SessionDescription,
    address: str,
    *,
    port: int,
    codecs: Sequence[RtpMap],
    sess_id: int | str,
    sess_version: int | str = 0,
    media: str = "audio",
    direction: str = "sendrecv",
    ptime: int | None = None,
    rtcp_mux: bool = True,
    username: str = "-",
    session_name: str = "-",
) -> SessionDescription:
    """Answer ``offer`` accepting its first acceptable ``media`` stream on ``port``.

    Every other m-line is rejected with port 0 (RFC 3264 §6: the answer has as many
    m-lines as the offer, in the same order). See :func:`answer_media` for codecs and
    direction. Check ``answer.media[i].port`` to see which stream (if any) was taken.

    Raises:
        ValueError: unknown direction.
    """
    answered: list[MediaDescription] = []
    taken = False
    for offered in offer.media:
        answer = _rejected(offered)
        if not taken and offered.media == media:
            answer = answer_media(
                offered,
                codecs,
                port=port,
                offered_direction=offer.direction_for(offered),
                direction=direction,
                ptime=ptime,
                rtcp_mux=rtcp_mux,
            )
            taken = answer.port != 0
        answered.append(answer)
    return make_sdp(
        address,
        answered,
        sess_id=sess_id,
        sess_version=sess_version,
        username=username,
        session_name=session_name,
    )
