"""SDP parsing (RFC 8866, RFC 4566): ``parse_sdp``; re-exports the model and builders.

The parser is tolerant where real user agents differ from the grammar: LF-only or
doubled CR line endings, trailing whitespace, blank lines, lines slightly out of
order, unknown line types (kept), and short ``o=`` lines. It raises only
:class:`SdpParseError`.
"""

from __future__ import annotations

from ._memo import remember
from ._sdp_attrs import (
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Crypto,
    CryptoKey,
    Fmtp,
    Rtcp,
    RtpMap,
    SdpParseError,
    parse_uint,
    split_fields,
)
from ._sdp_build import (
    answer_direction,
    answer_media,
    codecs_match,
    make_answer,
    make_media,
    make_sdp,
)
from ._sdp_model import (
    DIRECTIONS,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    TimeZone,
    Timing,
    is_ip_literal,
)

__all__ = [
    "DIRECTIONS",
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Crypto",
    "CryptoKey",
    "Fmtp",
    "MediaDescription",
    "Origin",
    "Rtcp",
    "RtpMap",
    "SdpParseError",
    "SessionDescription",
    "TimeZone",
    "Timing",
    "answer_direction",
    "answer_media",
    "codecs_match",
    "is_ip_literal",
    "make_answer",
    "make_media",
    "make_sdp",
    "parse_sdp",
]

_MAX_SDP = 1 << 20


def _parse_origin(value: str) -> Origin:
    fields = split_fields(value)
    if len(fields) < 3:
        raise SdpParseError(f"malformed o= line {value[:60]!r}")
    if len(fields) > 6:
        # A user name with spaces: keep everything before the last five fields.
        fields = [" ".join(fields[:-5]), *fields[-5:]]
    # Tolerance: some UAs drop leading fields ("o=-1307081803 2 IN IP4 ..."): fill from
    # the right, the address triple being the part that matters.
    fields = [""] * (6 - len(fields)) + fields
    return Origin(*fields)


# c= and t= values repeat across calls from the same peer ("IN IP4 192.0.2.1", "0 0"):
# their frozen values are parsed once per distinct text (bounded, cleared when full).
_CONNECTIONS: dict[str, Connection] = {}
_ATTRIBUTES: dict[str, Attribute] = {}
_ATTRIBUTE_LIMIT = 1024
_TIMINGS: dict[str, Timing] = {}
_MEMO_LIMIT = 512


def _connection_of(value: str) -> Connection:
    connection = _CONNECTIONS.get(value)
    if connection is None:
        connection = remember(
            _CONNECTIONS, value, _parse_connection(value), _MEMO_LIMIT, len(value)
        )
    return connection


def _timing_of(value: str) -> Timing:
    timing = _TIMINGS.get(value)
    if timing is None:
        timing = remember(_TIMINGS, value, _parse_timing(value), _MEMO_LIMIT, len(value))
    return timing


def _parse_connection(value: str) -> Connection:
    fields = split_fields(value)
    if len(fields) != 3:
        raise SdpParseError(f"malformed c= line {value[:60]!r}")
    nettype, addrtype, addr = fields
    parts = addr.split("/")
    if not parts[0] or len(parts) > 3:
        raise SdpParseError(f"malformed connection address {addr[:60]!r}")
    ttl: int | None = None
    count: int | None = None
    # RFC 8866 §5.7: IP4 multicast is addr/ttl[/count]; IP6 multicast is addr[/count].
    if addrtype.upper() == "IP6":
        if len(parts) == 3:
            raise SdpParseError(f"IP6 connection address with a TTL {addr[:60]!r}")
        if len(parts) == 2:
            count = parse_uint(parts[1], "connection address count")
    else:
        if len(parts) >= 2:
            ttl = parse_uint(parts[1], "connection TTL")
        if len(parts) == 3:
            count = parse_uint(parts[2], "connection address count")
    return Connection(nettype, addrtype, parts[0], ttl, count)


def _parse_bandwidth(value: str) -> Bandwidth:
    bwtype, colon, amount = value.partition(":")
    if not colon or not bwtype:
        raise SdpParseError(f"malformed b= line {value[:60]!r}")
    return Bandwidth(bwtype, parse_uint(amount.strip(" \t"), "bandwidth"))


def _parse_timing(value: str) -> Timing:
    fields = split_fields(value)
    if len(fields) != 2:
        raise SdpParseError(f"malformed t= line {value[:60]!r}")
    return Timing(parse_uint(fields[0], "start time"), parse_uint(fields[1], "stop time"))


def _parse_zones(value: str) -> tuple[TimeZone, ...]:
    fields = split_fields(value)
    if not fields or len(fields) % 2:
        raise SdpParseError(f"malformed z= line {value[:60]!r}")
    return tuple(
        TimeZone(parse_uint(fields[i], "time zone adjustment"), fields[i + 1])
        for i in range(0, len(fields), 2)
    )


_MediaHead = tuple[str, int, str, tuple[str, ...], int | None]


def _parse_media_line(value: str) -> _MediaHead:
    """``m=`` fields: media, port, proto, formats, port count (built once with its lines)."""
    fields = split_fields(value)
    if len(fields) < 3:
        raise SdpParseError(f"malformed m= line {value[:60]!r}")
    port_text, slash, count_text = fields[1].partition("/")
    port = parse_uint(port_text, "media port")
    if port > 65535:
        # RFC 8866 §5.14: <port> is a transport port, 0..65535 for UDP/TCP.
        raise SdpParseError(f"media port out of range: {port}")
    count = parse_uint(count_text, "media port count") if slash else None
    if count is not None:
        # RFC 8866 §5.14: m=<media> <port>/<number of ports>; for RTP every stream uses
        # two ports (RTP even, RTCP the next), so the last port is port + 2*count - 1.
        step = 2 if "RTP" in fields[2].upper() else 1
        if count == 0 or port + step * count - 1 > 65535:
            raise SdpParseError(f"media port range out of range: {fields[1][:30]!r}")
    return fields[0], port, fields[2], tuple(fields[3:]), count


class _Section:
    """Lines gathered for one level (session or one media) before building the value."""

    __slots__ = (
        "attributes",
        "bandwidths",
        "connections",
        "emails",
        "phones",
        "single",
        "times",
        "unknown",
    )

    def __init__(self) -> None:
        self.single: dict[str, str] = {}
        self.emails: list[str] = []
        self.phones: list[str] = []
        self.connections: list[Connection] = []
        self.bandwidths: list[Bandwidth] = []
        self.times: list[Timing] = []
        self.attributes: list[Attribute] = []
        self.unknown: list[tuple[str, str]] = []

    def set_single(self, letter: str, value: str) -> None:
        if letter in self.single:
            raise SdpParseError(f"more than one {letter}= line")
        self.single[letter] = value


_SESSION_SINGLE = frozenset("vosiuzk")
_MEDIA_SINGLE = frozenset("ik")


def _add_line(section: _Section, letter: str, value: str, *, media: bool) -> None:
    if letter == "c" and (media or not section.connections):
        section.connections.append(_connection_of(value))
    elif letter == "c":
        raise SdpParseError("more than one session-level c= line")
    elif letter == "b":
        section.bandwidths.append(_parse_bandwidth(value))
    elif letter in (_MEDIA_SINGLE if media else _SESSION_SINGLE):
        section.set_single(letter, value)
    elif media:
        # RFC 8866 §5: other types do not belong in a media section; keep them.
        section.unknown.append((letter, value))
    elif letter == "e":
        section.emails.append(value)
    elif letter == "p":
        section.phones.append(value)
    elif letter == "t":
        section.times.append(_timing_of(value))
    elif letter == "r":
        if not section.times:
            raise SdpParseError("r= line before any t= line")
        last = section.times[-1]
        section.times[-1] = Timing(last.start, last.stop, (*last.repeats, value))
    else:
        # RFC 8866 §5: unknown types are ignored by a parser; they are kept here.
        section.unknown.append((letter, value))


def _build_media(head: _MediaHead, section: _Section) -> MediaDescription:
    media, port, proto, formats, port_count = head
    return MediaDescription(
        media,
        port,
        proto,
        formats,
        port_count=port_count,
        information=section.single.get("i"),
        connections=tuple(section.connections),
        bandwidths=tuple(section.bandwidths),
        key=section.single.get("k"),
        attributes=tuple(section.attributes),
        unknown_lines=tuple(section.unknown),
    )


def _decode(data: str | bytes) -> str:
    if isinstance(data, str):
        return data
    if len(data) > _MAX_SDP:
        raise SdpParseError("SDP body too large")
    # Undecodable bytes (a legacy a=charset) survive via surrogateescape; encode() undoes it.
    return data.decode("utf-8", "surrogateescape")


def parse_sdp(data: str | bytes) -> SessionDescription:
    """Parse an SDP body (RFC 8866 §5) into a :class:`SessionDescription`.

    Raises:
        SdpParseError: not a session description (status 400).
    """
    text = _decode(data)
    if len(text) > _MAX_SDP:
        raise SdpParseError("SDP body too large")
    session = _Section()
    medias: list[tuple[_MediaHead, _Section]] = []
    current = session
    seen_any = False
    for raw in text.split("\n"):
        # Tolerance: CRLF, LF, CRCRLF endings and trailing whitespace all end a line.
        line = raw.rstrip(" \t\r")
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpParseError(f"malformed SDP line {line[:40]!r}")
        letter, value = line[0], line[2:]
        if letter == "a" and seen_any:
            # hot path: most lines are attributes, and the same ones recur in every offer
            # (a=rtpmap:0 PCMU/8000, a=ptime:20, a=sendrecv): one frozen value per text.
            attribute = _ATTRIBUTES.get(value)
            if attribute is None:
                # RFC 8866 §5.13: a=<name>[:<value>]
                name, colon, rest = value.partition(":")
                if not name:
                    raise SdpParseError(f"malformed a= line {value[:60]!r}")
                attribute = remember(
                    _ATTRIBUTES,
                    value,
                    Attribute(name, rest if colon else None),
                    _ATTRIBUTE_LIMIT,
                    len(value),
                )
            current.attributes.append(attribute)
            continue
        if not seen_any:
            # RFC 8866 §5: the description starts with v=.
            if letter != "v":
                raise SdpParseError("SDP does not start with v=")
            seen_any = True
        if letter == "m":
            current = _Section()
            medias.append((_parse_media_line(value), current))
            continue
        _add_line(current, letter, value, media=current is not session)
    if not seen_any:
        raise SdpParseError("empty SDP body")
    single = session.single
    if "o" not in single:
        raise SdpParseError("SDP without o= line")
    if "s" not in single:
        raise SdpParseError("SDP without s= line")
    return SessionDescription(
        _parse_origin(single["o"]),
        single["s"],
        tuple([_build_media(head, sec) for head, sec in medias]),
        version=parse_uint(single["v"].strip(" \t"), "SDP version"),
        information=single.get("i"),
        uri=single.get("u"),
        emails=tuple(session.emails),
        phones=tuple(session.phones),
        connection=session.connections[0] if session.connections else None,
        bandwidths=tuple(session.bandwidths),
        times=tuple(session.times),
        time_zones=_parse_zones(single["z"]) if "z" in single else (),
        key=single.get("k"),
        attributes=tuple(session.attributes),
        unknown_lines=tuple(session.unknown),
    )
