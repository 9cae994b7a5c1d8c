"""SIP messages: `Request` and `Response` with raw headers typed on first access.

A message holds its header lines raw (see `Headers`); the typed accessors
(`vias`, `from_`, `cseq`, ...) parse the lines they need the first time they are
read and cache the result on the instance. Deriving methods return a new message
and never change the original, so a forwarded message rewrites only what was
touched.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, Self, TypeVar

import attrs

from ._errors import SipParseError, SipUsageError
from ._headers import (
    HEADER_TYPES,
    Contact,
    ContentType,
    CSeq,
    From,
    RecordRoute,
    Route,
    To,
    Via,
)
from ._headers_container import _LWS, Headers
from ._lexer import split_list
from ._memo import remember
from ._names import header_key
from ._uri import Uri, parse_uri

__all__ = ["HeaderType", "Message", "Request", "Response", "recover_fields"]

_RECOVER_KEYS = ("via", "from", "to", "call-id", "cseq")


class HeaderType(Protocol):
    """What a typed header class offers (see the `_headers` package)."""

    NAME: ClassVar[str]
    MULTI: ClassVar[bool]

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse one header value (raises ``SipParseError`` when it is malformed)."""
        ...


H = TypeVar("H", bound=HeaderType)


def recover_fields(headers: Headers) -> dict[str, str]:
    """Return the raw Via (all lines, comma-joined), From, To, Call-ID and CSeq values.

    Used to fill `SipParseError.recovered` so the layer above can still answer 400.
    """
    out: dict[str, str] = {}
    for key in _RECOVER_KEYS:
        values = headers.get_all(key)
        if values:
            out[key] = ", ".join(values) if key == "via" else values[0]
    return out


_KEYS_OF: dict[type, str] = {}
_UNSET = object()

# Typed values shared across messages: the same From/To/Contact/CSeq/Content-Type text
# comes back in every request of a dialog (and often of every call), and the typed
# header classes of this package are frozen, so one parse per distinct text serves all.
# Via is left out: its branch makes every value new. Bounded: cleared when full.
_SHARED: dict[tuple[type, str], object] = {}
_SHARED_LIMIT = 2048
_URIS: dict[str, object] = {}
_SHAREABLE = frozenset(cls for cls in HEADER_TYPES.values() if cls is not Via)


def _parse_typed(cls: type[H], value: str) -> H:
    """``cls.parse(value)``, memoised for the immutable header types of this package."""
    if cls not in _SHAREABLE:
        return cls.parse(value)
    key = (cls, value)
    typed = _SHARED.get(key)
    if typed is None:
        typed = remember(_SHARED, key, cls.parse(value), _SHARED_LIMIT, len(value))
    return typed  # type: ignore[return-value]


def _key_of(cls: type[HeaderType]) -> str:
    """The lookup key of a typed header class (memoised)."""
    key = _KEYS_OF.get(cls)
    if key is None:
        key = _KEYS_OF[cls] = header_key(cls.NAME)
    return key


def _uri_key(uri: Uri | str) -> object:
    """Equality key of a Request-URI that may still be raw text."""
    if isinstance(uri, str):
        try:
            return parse_uri(uri)
        except SipParseError:
            return uri
    return uri


def _encode(start: str, headers: Headers, body: bytes) -> bytes:
    """Serialize: start line, header lines in order, a correct Content-Length, body."""
    if "\n" in start or "\r" in start:
        raise SipUsageError(f"CR or LF in the start line {start[:40]!r}")
    length = str(len(body))
    keys = headers._keys
    parts = headers._parts
    if keys.count("content-length") == 1 and (
        parts[keys.index("content-length")][2].strip(" \t") == length
    ):
        text = headers.text
    else:
        out: list[str] = []
        placed = False
        for (name, _, value), key in zip(parts, keys, strict=True):
            if key == "content-length":
                if not placed:
                    out.append(f"{name}: {length}")
                    placed = True
            else:
                out.append(name + ":" + value)
        if not placed:
            out.append(f"Content-Length: {length}")
        text = "\r\n".join(out)
    try:
        return f"{start}\r\n{text}\r\n\r\n".encode("utf-8", "surrogateescape") + body
    except UnicodeEncodeError as exc:  # a lone surrogate the wire could not have given us
        raise SipUsageError(f"text not encodable as UTF-8: {exc.reason}") from None


class _MessageMixin:
    """Typed access and deriving, shared by `Request` and `Response`."""

    __slots__ = ()

    headers: Headers
    body: bytes
    _cache: dict[object, object]
    is_request: ClassVar[bool]

    def _missing(self, name: str) -> SipParseError:
        return SipParseError(
            f"missing {name} header",
            recovered=recover_fields(self.headers),
            is_request=self.is_request,
        )

    def headers_of(self, cls: type[H]) -> tuple[H, ...]:
        """Return every element of every ``cls.NAME`` line, typed (cached).

        Raises:
            SipParseError: a line does not parse as ``cls``.
        """
        cache = self._cache
        found = cache.get((cls, "all"))
        if found is None:
            headers = self.headers
            keys = headers._keys
            key = _KEYS_OF.get(cls) or _key_of(cls)
            count = keys.count(key)
            if not count:  # hot path: Route/Record-Route checked on every request
                found = cache[(cls, "all")] = ()
                return found
            if count == 1:  # hot path: one line (e.g. the single Via of a UAC)
                value = headers._parts[keys.index(key)][2].strip(_LWS)
                if not cls.MULTI or (value and "," not in value):
                    found = cache[(cls, "all")] = (_parse_typed(cls, value),)
                    return found
            items: list[H] = []
            for value in headers._values(key):
                if not cls.MULTI or (value and "," not in value):
                    items.append(_parse_typed(cls, value))
                else:
                    items.extend(_parse_typed(cls, item) for item in split_list(value))
            found = cache[(cls, "all")] = tuple(items)
        return found  # type: ignore[return-value]

    def header(self, cls: type[H]) -> H | None:
        """Return the first element of the first ``cls.NAME`` line, typed, or None.

        Raises:
            SipParseError: that element does not parse as ``cls``.
        """
        cache = self._cache
        typed = cache.get(cls, _UNSET)
        if typed is _UNSET:
            if cls.MULTI:
                items = self.headers_of(cls)
                typed = items[0] if items else None
            else:
                # hot path (From, To, CSeq, ...): the first line, typed, shared when seen.
                headers = self.headers
                keys = headers._keys
                key = _KEYS_OF.get(cls) or _key_of(cls)
                if key in keys:
                    value = headers._parts[keys.index(key)][2].strip(_LWS)
                    typed = _SHARED.get((cls, value))
                    if typed is None:
                        typed = _parse_typed(cls, value)
                else:
                    typed = None
            cache[cls] = typed
        return typed  # type: ignore[return-value]

    def _required(self, cls: type[H]) -> H:
        typed = self._cache.get(cls)
        if typed is None:
            typed = self.header(cls)
            if typed is None:
                raise self._missing(cls.NAME)
        return typed  # type: ignore[return-value]

    @property
    def vias(self) -> tuple[Via, ...]:
        """All Via elements, top first."""
        return self.headers_of(Via)

    @property
    def top_via(self) -> Via:
        """The first Via element (raises SipParseError when there is none)."""
        typed = self._cache.get(Via)  # hot path: read several times per message
        return typed if typed is not None else self._required(Via)  # type: ignore[return-value]

    @property
    def from_(self) -> From:
        """The From header (raises SipParseError when missing or malformed)."""
        typed = self._cache.get(From)  # hot path: read several times per message
        return typed if typed is not None else self._required(From)  # type: ignore[return-value]

    @property
    def to(self) -> To:
        """The To header (raises SipParseError when missing or malformed)."""
        typed = self._cache.get(To)  # hot path: read several times per message
        return typed if typed is not None else self._required(To)  # type: ignore[return-value]

    @property
    def cseq(self) -> CSeq:
        """The CSeq header (raises SipParseError when missing or malformed)."""
        typed = self._cache.get(CSeq)  # hot path: read several times per message
        return typed if typed is not None else self._required(CSeq)  # type: ignore[return-value]

    @property
    def call_id(self) -> str:
        """The Call-ID value (raises SipParseError when missing or empty)."""
        value = self.headers._first("call-id")
        if not value:
            raise self._missing("Call-ID")
        return value

    @property
    def contacts(self) -> tuple[Contact, ...]:
        """All Contact elements."""
        return self.headers_of(Contact)

    @property
    def routes(self) -> tuple[Route, ...]:
        """All Route elements, in order."""
        return self.headers_of(Route)

    @property
    def record_routes(self) -> tuple[RecordRoute, ...]:
        """All Record-Route elements, in order."""
        return self.headers_of(RecordRoute)

    @property
    def content_type(self) -> ContentType | None:
        """The Content-Type header, or None."""
        return self.header(ContentType)

    @property
    def max_forwards(self) -> int | None:
        """The Max-Forwards value, or None when absent.

        Raises:
            SipParseError: not a number in 0..255 (RFC 3261 §20.22).
        """
        value = self.headers._first("max-forwards")
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or int(value) > 255:
            raise SipParseError(
                f"invalid Max-Forwards {value[:20]!r}",
                recovered=recover_fields(self.headers),
                is_request=self.is_request,
            )
        return int(value)

    def with_header(self, name: str, value: object) -> Self:
        """Return a copy where ``name`` has the single value ``value`` (str() of a typed one)."""
        return attrs.evolve(self, headers=self.headers.with_(name, value))  # type: ignore[misc]

    def append_header(self, name: str, value: object) -> Self:
        """Return a copy with a ``name`` line added after all others."""
        return attrs.evolve(self, headers=self.headers.append(name, value))  # type: ignore[misc]

    def prepend_header(self, name: str, value: object) -> Self:
        """Return a copy with a ``name`` line added first (e.g. a new top Via)."""
        return attrs.evolve(self, headers=self.headers.prepend(name, value))  # type: ignore[misc]

    def without_header(self, name: str) -> Self:
        """Return a copy without any ``name`` line."""
        return attrs.evolve(self, headers=self.headers.without(name))  # type: ignore[misc]

    def with_body(self, body: bytes, content_type: str | None = None) -> Self:
        """Return a copy carrying ``body`` (and Content-Type when given).

        An existing Content-Length line is updated; `encode` always writes a
        correct one anyway.
        """
        headers = self.headers
        if content_type is not None:
            headers = headers.with_("Content-Type", content_type)
        if "content-length" in headers:
            headers = headers.with_("Content-Length", len(body))
        return attrs.evolve(self, headers=headers, body=body)  # type: ignore[misc]


@attrs.frozen
class Request(_MessageMixin):
    """A SIP request.

    ``uri`` may be given as text; it is parsed on first access of `uri` (the
    parser stores the Request-URI text so a lazy parse does not pay for it).
    """

    is_request: ClassVar[bool] = True

    method: str
    _uri: Uri | str = attrs.field(alias="uri", eq=_uri_key)
    headers: Headers = attrs.field(factory=Headers)
    body: bytes = attrs.field(default=b"", repr=lambda b: f"<{len(b)} bytes>")
    version: str = "SIP/2.0"
    _cache: dict[object, object] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    @property
    def uri(self) -> Uri:
        """The Request-URI, typed (raises SipParseError when the text does not parse)."""
        uri = self._uri
        if isinstance(uri, str):
            cached = self._cache.get("uri")
            if cached is None:
                # The Request-URI of in-dialog requests is our own Contact, the same text
                # in every call: parsed once, shared (URIs are frozen), bounded like _SHARED.
                cached = _URIS.get(uri)
                if cached is None:
                    cached = remember(_URIS, uri, parse_uri(uri), _SHARED_LIMIT, len(uri))
                self._cache["uri"] = cached
            return cached  # type: ignore[return-value]
        return uri

    @property
    def uri_text(self) -> str:
        """The Request-URI as text (as received, when the message came from the wire)."""
        uri = self._uri
        return uri if isinstance(uri, str) else str(uri)

    def encode(self) -> bytes:
        """Serialize to wire bytes (untouched header lines byte-identical).

        Raises:
            SipUsageError: the start line would contain CR or LF, or text holds a
                lone surrogate.
        """
        return _encode(f"{self.method} {self.uri_text} {self.version}", self.headers, self.body)

    def __bytes__(self) -> bytes:
        return self.encode()


@attrs.frozen
class Response(_MessageMixin):
    """A SIP response."""

    is_request: ClassVar[bool] = False

    status: int
    reason: str
    headers: Headers = attrs.field(factory=Headers)
    body: bytes = attrs.field(default=b"", repr=lambda b: f"<{len(b)} bytes>")
    version: str = "SIP/2.0"
    _cache: dict[object, object] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    def encode(self) -> bytes:
        """Serialize to wire bytes (untouched header lines byte-identical).

        Raises:
            SipUsageError: the start line would contain CR or LF, or text holds a
                lone surrogate.
        """
        return _encode(f"{self.version} {self.status} {self.reason}", self.headers, self.body)

    def __bytes__(self) -> bytes:
        return self.encode()


Message = Request | Response
"""Any SIP message."""
