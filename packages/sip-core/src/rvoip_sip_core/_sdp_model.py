"""The SDP model (RFC 8866): session and media descriptions as frozen attrs values.

Lines are kept as parsed (attributes in order, unknown ``x=`` lines carried along) and
serialized in the RFC 8866 §5 order with CRLF. Typed views (rtpmap, fmtp, ptime,
direction, rtcp, crypto ...) are computed from the attributes on demand, and derived
copies come from the ``with_*`` helpers or ``attrs.evolve``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from typing import Self, TypeVar

import attrs

from ._memo import remember
from ._sdp_attrs import (
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Crypto,
    Fmtp,
    Rtcp,
    RtpMap,
    SdpParseError,
)

__all__ = [
    "DIRECTIONS",
    "Bandwidth",
    "Connection",
    "MediaDescription",
    "Origin",
    "SessionDescription",
    "TimeZone",
    "Timing",
    "is_ip_literal",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
"""RFC 8866 §6.7: the direction attributes."""

UnknownLines = tuple[tuple[str, str], ...]


@attrs.frozen
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`` (§5.2).

    ``sess_id``/``sess_version`` stay text: real UAs send e.g. ``(null)``.
    """

    username: str
    sess_id: str
    sess_version: str
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return " ".join(
            (
                self.username,
                self.sess_id,
                self.sess_version,
                self.nettype,
                self.addrtype,
                self.address,
            )
        )

    def next_version(self) -> Self:
        """Copy with sess-version + 1 (RFC 3264 §8: each new offer/answer increments it)."""
        if self.sess_version.isascii() and self.sess_version.isdigit():
            return attrs.evolve(self, sess_version=str(int(self.sess_version) + 1))
        return attrs.evolve(self, sess_version="1")


def is_ip_literal(address: str) -> bool:
    """True if ``address`` is an IPv4 or IPv6 address literal, not a host name.

    RFC 8866 §5.7 allows an FQDN as connection-address; using one means a DNS lookup
    on the call path (slow, and an attacker-chosen name to resolve). Callers that
    refuse host names check with this (or :attr:`Connection.is_ip_literal`).
    """
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _is_literal_of(nettype: str, addrtype: str, address: str) -> bool:
    if nettype.upper() != "IN":
        return False
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return parsed.version == (6 if addrtype.upper() == "IP6" else 4)


# Connection.is_ip_literal per (nettype, addrtype, address): ipaddress costs ~5 us a call.
_LITERALS: dict[tuple[str, str, str], bool] = {}


@attrs.frozen
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (§5.7).

    Multicast suffixes: IP4 ``/ttl[/count]``, IP6 ``/count`` (``ttl`` stays None).
    """

    nettype: str
    addrtype: str
    address: str
    ttl: int | None = None
    count: int | None = None

    def __str__(self) -> str:
        out = f"{self.nettype} {self.addrtype} {self.address}"
        if self.ttl is not None:
            out += f"/{self.ttl}"
        if self.count is not None:
            out += f"/{self.count}"
        return out

    @property
    def is_ip_literal(self) -> bool:
        """True if the address is an IP literal of the family ``addrtype`` names.

        ``IN IP4 192.0.2.1`` and ``IN IP6 2001:db8::1`` are; a host name
        (``IN IP4 pbx.example.com``), a family mismatch (``IN IP4 ::1``) or another
        nettype are not.
        """
        key = (self.nettype, self.addrtype, self.address)
        known = _LITERALS.get(key)  # hot path: read for every call's c= line
        if known is None:
            known = remember(_LITERALS, key, _is_literal_of(*key), 512, len(self.address))
        return known


@attrs.frozen
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (§5.8), e.g. ``AS:64`` (kbit/s) or ``TIAS:64000`` (bit/s)."""

    type: str
    value: int

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


@attrs.frozen
class Timing:
    """``t=<start-time> <stop-time>`` (NTP seconds, 0 0 = permanent) and its ``r=`` lines (§5.9-10).

    ``repeats`` are the ``r=`` values as written (e.g. ``"7d 1h 0 25h"``).
    """

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@attrs.frozen
class TimeZone:
    """One ``<adjustment-time> <offset>`` pair of a ``z=`` line (§5.11)."""

    adjustment: int
    offset: str


def _find(attributes: tuple[Attribute, ...], name: str) -> Attribute | None:
    for attr in attributes:
        if attr.name == name:
            return attr
    return None


def _direction(attributes: tuple[Attribute, ...]) -> str | None:
    for attr in attributes:
        if attr.name in DIRECTIONS and attr.value is None:
            return attr.name
    return None


def _with_direction(attributes: tuple[Attribute, ...], direction: str) -> tuple[Attribute, ...]:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown SDP direction {direction!r}")
    out: list[Attribute] = []
    placed = False
    for attr in attributes:
        if attr.name in DIRECTIONS and attr.value is None:
            if not placed:
                out.append(Attribute(direction))
                placed = True
        else:
            out.append(attr)
    if not placed:
        out.append(Attribute(direction))
    return tuple(out)


def _number(attr: Attribute | None) -> float | None:
    if attr is None or attr.value is None:
        return None
    try:
        value = float(attr.value.strip(" \t"))
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


_T = TypeVar("_T")


def _parse_each(values: Iterable[str], parse: Callable[[str], _T]) -> tuple[_T, ...]:
    """Each value through ``parse``, in order; malformed ones (SdpParseError) are skipped."""
    out = []
    for value in values:
        try:
            out.append(parse(value))
        except SdpParseError:
            continue
    return tuple(out)


class _HasAttributes:
    """Attribute helpers shared by session and media level."""

    __slots__ = ()
    attributes: tuple[Attribute, ...]

    def get_attribute(self, name: str) -> Attribute | None:
        """The first attribute called ``name`` (case-sensitive, as RFC 8866 §5.13 says)."""
        return _find(self.attributes, name)

    def attribute_values(self, name: str) -> tuple[str, ...]:
        """Values of every ``name`` attribute in order (``""`` for property attributes)."""
        return tuple([a.value or "" for a in self.attributes if a.name == name])

    def has_attribute(self, name: str) -> bool:
        """True if an attribute called ``name`` is present."""
        return _find(self.attributes, name) is not None

    def with_attribute(self, name: str, value: str | None = None) -> Self:
        """Copy with ``a=name[:value]`` appended."""
        return attrs.evolve(self, attributes=(*self.attributes, Attribute(name, value)))  # type: ignore[misc]

    def without_attribute(self, name: str) -> Self:
        """Copy without any attribute called ``name``."""
        kept = tuple(a for a in self.attributes if a.name != name)
        return attrs.evolve(self, attributes=kept)  # type: ignore[misc]

    def with_direction(self, direction: str) -> Self:
        """Copy with the direction attribute set (replacing any, else appended).

        Raises:
            ValueError: not one of sendrecv, sendonly, recvonly, inactive.
        """
        return attrs.evolve(self, attributes=_with_direction(self.attributes, direction))  # type: ignore[misc]

    @property
    def direction(self) -> str | None:
        """The direction attribute given at this level, or None."""
        return _direction(self.attributes)


def _lines_of(prefix: str, items: Iterable[object]) -> list[str]:
    return [f"{prefix}={item}" for item in items]


def _attribute_lines(attributes: tuple[Attribute, ...]) -> list[str]:
    """``a=`` lines; Attribute.__str__ inlined for the exact class."""
    return [
        ("a=" + a.name if a.value is None else f"a={a.name}:{a.value}")
        if type(a) is Attribute
        else f"a={a}"
        for a in attributes
    ]


# RtpMap values seen on the wire repeat ("0 PCMU/8000"): parse each text once (bounded).
_RTPMAP_MEMO: dict[str, RtpMap] = {}
_MEMO_LIMIT = 1024


def _rtpmap_of(value: str) -> RtpMap:
    """``RtpMap.parse`` memoised (RtpMap is immutable, so sharing instances is safe)."""
    mapping = _RTPMAP_MEMO.get(value)
    if mapping is None:
        mapping = remember(_RTPMAP_MEMO, value, RtpMap.parse(value), _MEMO_LIMIT, len(value))
    return mapping


# MediaDescription's cached views that do not depend on the port (see with_port).
_PORT_FREE_VIEWS = ("payload_types", "_rtpmaps", "_tail")


@attrs.frozen
class MediaDescription(_HasAttributes):
    """One ``m=`` section: ``m=<media> <port>[/<count>] <proto> <fmt> ...`` and its lines (§5.14).

    Formats stay text (``"0"``, ``"101"``, ``"webrtc-datachannel"``). ``unknown_lines``
    holds lines of unknown type as ``(letter, value)``; they serialize after the
    attributes.
    """

    media: str
    port: int
    proto: str
    formats: tuple[str, ...] = ()
    port_count: int | None = attrs.field(default=None, kw_only=True)
    information: str | None = attrs.field(default=None, kw_only=True)
    connections: tuple[Connection, ...] = attrs.field(default=(), kw_only=True)
    bandwidths: tuple[Bandwidth, ...] = attrs.field(default=(), kw_only=True)
    key: str | None = attrs.field(default=None, kw_only=True)
    attributes: tuple[Attribute, ...] = attrs.field(default=(), kw_only=True)
    unknown_lines: UnknownLines = attrs.field(default=(), kw_only=True)

    def lines(self) -> list[str]:
        """The section's lines in RFC 8866 §5 order, without line endings."""
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        return [" ".join(("m=" + self.media, port, self.proto, *self.formats)), *self._tail]

    @functools.cached_property
    def _tail(self) -> tuple[str, ...]:
        # The lines after m=: frozen, and independent of the port (with_port keeps them),
        # so a reused answer stream is serialized by writing its m= line only.
        out: list[str] = []
        if self.information is not None:
            out.append(f"i={self.information}")
        # hot path (every answer is serialized): skip empty groups, format a= lines inline.
        if self.connections:
            out += _lines_of("c", self.connections)
        if self.bandwidths:
            out += _lines_of("b", self.bandwidths)
        if self.key is not None:
            out.append(f"k={self.key}")
        out += _attribute_lines(self.attributes)
        if self.unknown_lines:
            out += [f"{letter}={value}" for letter, value in self.unknown_lines]
        return tuple(out)

    def __str__(self) -> str:
        return "\r\n".join(self.lines()) + "\r\n"

    # -- typed views ---------------------------------------------------------------

    @functools.cached_property
    def payload_types(self) -> tuple[int, ...]:
        """The formats that are RTP payload type numbers, in offer order."""
        # hot path: an offer/answer reads it several times per call; the value is frozen.
        return tuple([int(f) for f in self.formats if f.isascii() and f.isdigit() and len(f) < 4])

    def rtpmaps(self) -> tuple[RtpMap, ...]:
        """All well-formed ``a=rtpmap`` values in order (malformed ones are skipped)."""
        return self._rtpmaps

    @functools.cached_property
    def _rtpmaps(self) -> tuple[RtpMap, ...]:
        # hot path: read for every payload type of a call; the value is frozen.
        out: list[RtpMap] = []
        for attr in self.attributes:
            if attr.name == "rtpmap":
                try:
                    out.append(_rtpmap_of(attr.value or ""))
                except SdpParseError:
                    continue
        return tuple(out)

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        """The mapping for ``payload_type``: its rtpmap, else the RFC 3551 static one."""
        for rtpmap in self.rtpmaps():
            if rtpmap.payload_type == payload_type:
                return rtpmap
        return STATIC_PAYLOAD_TYPES.get(payload_type)

    def codecs(self) -> tuple[RtpMap, ...]:
        """The codec of each payload-type format in m-line order (rtpmap or static type).

        Formats with neither an rtpmap nor a static assignment are left out. On an
        answer, the first non-``telephone-event`` entry is the codec to send.
        """
        out = []
        for pt in self.payload_types:
            mapping = self.rtpmap(pt)
            if mapping is not None:
                out.append(mapping)
        return tuple(out)

    def fmtps(self) -> tuple[Fmtp, ...]:
        """All ``a=fmtp`` values in order."""
        return _parse_each(self.attribute_values("fmtp"), Fmtp.parse)

    def fmtp(self, fmt: str | int) -> Fmtp | None:
        """The fmtp of format ``fmt`` (e.g. 101), or None."""
        if _find(self.attributes, "fmtp") is None:
            return None  # hot path: most audio offers carry no fmtp for their codec
        key = str(fmt)
        return next((f for f in self.fmtps() if f.format == key), None)

    @property
    def ptime(self) -> float | None:
        """``a=ptime`` in milliseconds (§6.4), None if absent or not a number."""
        return _number(self.get_attribute("ptime"))

    @property
    def maxptime(self) -> float | None:
        """``a=maxptime`` in milliseconds (§6.5), None if absent or not a number."""
        return _number(self.get_attribute("maxptime"))

    @property
    def rtcp(self) -> Rtcp | None:
        """``a=rtcp`` (RFC 3605), None if absent or malformed."""
        attr = self.get_attribute("rtcp")
        if attr is None or attr.value is None:
            return None
        try:
            return Rtcp.parse(attr.value)
        except SdpParseError:
            return None

    @property
    def rtcp_mux(self) -> bool:
        """True if ``a=rtcp-mux`` is present (RFC 5761 §5.1.1)."""
        return self.has_attribute("rtcp-mux")

    def crypto(self) -> tuple[Crypto, ...]:
        """All well-formed ``a=crypto`` lines (RFC 4568) in preference order."""
        return _parse_each(self.attribute_values("crypto"), Crypto.parse)

    @property
    def mid(self) -> str | None:
        """``a=mid`` (RFC 5888), or None."""
        attr = self.get_attribute("mid")
        return None if attr is None else attr.value

    def with_port(self, port: int) -> Self:
        """Copy with another port (port 0 rejects the stream, RFC 3264 §6).

        The copy shares the views computed from the formats and attributes (payload
        types, rtpmaps, serialized lines): none of them depends on the port.
        """
        # hot path (a UAS's reused answer, every call): the constructor, not attrs.evolve
        copy = type(self)(
            self.media,
            port,
            self.proto,
            self.formats,
            port_count=self.port_count,
            information=self.information,
            connections=self.connections,
            bandwidths=self.bandwidths,
            key=self.key,
            attributes=self.attributes,
            unknown_lines=self.unknown_lines,
        )
        for name in _PORT_FREE_VIEWS:
            # cached views are slots: set on the frozen copy as the cache itself does
            object.__setattr__(copy, name, getattr(self, name))
        return copy


@attrs.frozen
class SessionDescription(_HasAttributes):
    """A whole SDP session description (RFC 8866 §5).

    Build one directly, with :func:`make_sdp`, or parse with :func:`parse_sdp`;
    ``str(sdp)`` / ``sdp.encode()`` serialize it.
    """

    origin: Origin
    session_name: str = "-"
    media: tuple[MediaDescription, ...] = ()
    version: int = attrs.field(default=0, kw_only=True)
    information: str | None = attrs.field(default=None, kw_only=True)
    uri: str | None = attrs.field(default=None, kw_only=True)
    emails: tuple[str, ...] = attrs.field(default=(), kw_only=True)
    phones: tuple[str, ...] = attrs.field(default=(), kw_only=True)
    connection: Connection | None = attrs.field(default=None, kw_only=True)
    bandwidths: tuple[Bandwidth, ...] = attrs.field(default=(), kw_only=True)
    times: tuple[Timing, ...] = attrs.field(default=(Timing(),), kw_only=True)
    time_zones: tuple[TimeZone, ...] = attrs.field(default=(), kw_only=True)
    key: str | None = attrs.field(default=None, kw_only=True)
    attributes: tuple[Attribute, ...] = attrs.field(default=(), kw_only=True)
    unknown_lines: UnknownLines = attrs.field(default=(), kw_only=True)

    def lines(self) -> list[str]:
        """All lines in RFC 8866 §5 order, without line endings."""
        # RFC 8866 §5: an empty session name is written as a single space.
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name or ' '}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        if self.emails:
            out += _lines_of("e", self.emails)
        if self.phones:
            out += _lines_of("p", self.phones)
        if self.connection is not None:
            out.append(f"c={self.connection}")
        if self.bandwidths:
            out += _lines_of("b", self.bandwidths)
        for timing in self.times:
            out.append(f"t={timing.start} {timing.stop}")
            if timing.repeats:
                out += _lines_of("r", timing.repeats)
        if self.time_zones:
            out.append("z=" + " ".join(f"{z.adjustment} {z.offset}" for z in self.time_zones))
        if self.key is not None:
            out.append(f"k={self.key}")
        if self.attributes:
            out += _attribute_lines(self.attributes)
        if self.unknown_lines:
            out += [f"{letter}={value}" for letter, value in self.unknown_lines]
        for media in self.media:
            out += media.lines()
        return out

    @functools.cached_property
    def _wire(self) -> str:
        # The value is frozen: serialize once (the UAS sends its answer and keeps its text).
        return "\r\n".join(self.lines()) + "\r\n"

    def __str__(self) -> str:
        return self._wire

    def encode(self) -> bytes:
        """The wire form (UTF-8; undecodable input bytes are restored as they came)."""
        return self._wire.encode("utf-8", "surrogateescape")

    def __bytes__(self) -> bytes:
        return self.encode()

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The connection of ``media``: its own first ``c=``, else the session's (§5.7)."""
        return media.connections[0] if media.connections else self.connection

    def direction_for(self, media: MediaDescription) -> str:
        """Effective direction of ``media``: its own, else the session's, else sendrecv."""
        return media.direction or self.direction or "sendrecv"

    def with_media(self, index: int, media: MediaDescription) -> Self:
        """Copy with the ``index``-th media description replaced."""
        items = list(self.media)
        items[index] = media
        return attrs.evolve(self, media=tuple(items))

    def with_next_version(self) -> Self:
        """Copy with the origin's sess-version incremented (RFC 3264 §8)."""
        return attrs.evolve(self, origin=self.origin.next_version())
