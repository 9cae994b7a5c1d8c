"""`parse_message`: one datagram's bytes to a `Request` or `Response`, and `validate`.

The default parse is lazy and fast: it splits the head from the body, decodes the
head once, splits the header lines at their first ':' and keeps them raw. Typed
headers are parsed only when read. `validate` (or ``parse_message(strict=True)``)
adds the checks a UAS needs before acting on a request.
"""

from __future__ import annotations

import re
from itertools import repeat
from operator import itemgetter

from . import _memo
from ._errors import SipParseError
from ._headers import CSeq, Expires
from ._headers_container import Headers
from ._memo import remember_name
from ._message import Message, Request, Response, recover_fields
from ._names import header_key
from ._uri import SipUri

_FIRST = itemgetter(0)
_SECOND = itemgetter(1)

__all__ = ["DEFAULT_MAX_SIZE", "parse_message", "validate"]

DEFAULT_MAX_SIZE = 262_144
"""Largest message `parse_message` accepts by default (bigger → 413)."""

# RFC 3261 §25.1: token (method, header name).
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
# Request-URI: a scheme, ':' and no whitespace or control octets (full parse is lazy).
_URI_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[^\x00-\x20\x7f]+\Z")
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+\Z", re.IGNORECASE)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(r"\r?\n")

# Header names and methods already checked to be tokens (bounded memo).
_NAMES: dict[str, str] = {}
_METHODS: set[str] = {
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "UPDATE",
    "INFO",
    "MESSAGE",
    "REFER",
    "NOTIFY",
    "SUBSCRIBE",
    "PUBLISH",
}
_STANDARD_METHODS = frozenset(_METHODS)
_MEMO_LIMIT = 4096


def _remember_method(method: str) -> None:
    """Add a checked extension method to the bounded memo (short ones only; see _memo)."""
    if len(method) > _memo.MAX_NAME_CHARS:
        return
    if len(_METHODS) >= _MEMO_LIMIT:
        _METHODS.clear()
        _METHODS.update(_STANDARD_METHODS)
    _METHODS.add(method)


# RFC 3261 §7.3.1: these may appear only once (a second, different value is an error).
_SINGLE = ("from", "to", "call-id", "cseq", "max-forwards", "content-type", "content-length")
_MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5: CSeq number MUST be less than 2**31


def _recover_lines(lines: list[str]) -> dict[str, str]:
    """Tolerantly pick Via/From/To/Call-ID/CSeq out of header lines that failed to split."""
    parts: list[tuple[str, str, str]] = []
    keys: list[str] = []
    for line in lines:
        name, colon, value = line.partition(":")
        if colon and name.strip():
            parts.append((name, colon, value))
            keys.append(header_key(name.strip(" \t")))
    return recover_fields(Headers._from_parts(parts, keys))


def _unfold(lines: list[str]) -> list[str]:
    """Join continuation lines (starting with SP/HT) to the line before, with one SP."""
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            # RFC 3261 §7.3.1: a line starting with LWS continues the previous one.
            out[-1] = out[-1].rstrip(" \t") + " " + line.lstrip(" \t")
        else:
            out.append(line)
    return out


def _split_datagram(data: bytes) -> tuple[str, bytes]:
    """Split at the first empty line, whatever its line ends; no empty line: all is head."""
    blank = _BLANK_LINE.search(data)
    if blank is None:  # a datagram that ends without the empty line
        return data.rstrip(b"\r\n").decode("utf-8", "surrogateescape"), b""
    return data[: blank.start()].decode("utf-8", "surrogateescape"), data[blank.end() :]


def _split_head(head: str) -> list[str]:
    """Split a head with bare LF (or CR CR LF) line ends into lines; other bare CRs → 400."""
    lines = [line.rstrip("\r") for line in _LINE_END.split(head)]
    for line in lines:
        if "\r" in line:
            raise SipParseError("bare CR in header section", recovered=_recover_lines(lines[1:]))
    return lines


def _check_lines(
    lines: list[str], parts: list[tuple[str, str, str]], keys: list[str | None], start: str
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Slow path for header lines whose names are not memoised: check, unfold, fill keys."""
    if any(line[:1] in (" ", "\t") for line in lines):
        lines = _unfold(lines)
        parts = [line.partition(":") for line in lines]
        keys = [None] * len(parts)
    names = _NAMES
    out: list[str] = []
    for part, key in zip(parts, keys, strict=True):
        if key is None or not part[1]:
            name = part[0].rstrip(" \t")
            if not part[1] or not _TOKEN.match(name):
                raise SipParseError(
                    f"malformed header line {(part[0] + part[1] + part[2])[:40]!r}",
                    recovered=_recover_lines(lines),
                    is_request=not start.upper().startswith("SIP/"),
                )
            key = header_key(name)
            remember_name(names, part[0], key, _MEMO_LIMIT)
        out.append(key)
    return parts, out


def _check_version(version: str, lines: list[str], is_request: bool) -> None:
    if version.upper() == "SIP/2.0":
        return
    if _VERSION.match(version):
        # RFC 3261 §8.2.2 / §21.5.6: another SIP version gets 505.
        raise SipParseError(
            f"unsupported SIP version {version[:20]!r}",
            status=505,
            recovered=_recover_lines(lines),
            is_request=is_request,
        )
    raise SipParseError(
        f"malformed SIP version {version[:20]!r}",
        recovered=_recover_lines(lines),
        is_request=is_request,
    )


def parse_message(
    data: bytes,
    *,
    strict: bool = False,
    max_size: int = DEFAULT_MAX_SIZE,
    allow_short_body: bool = False,
) -> Message:
    """Parse one datagram (or one frame from `StreamFramer`) into a message.

    The lazy parse (``strict=False``, the default) checks only what framing and
    the start line need: size (413), the start line's shape (method token, a
    ``scheme:`` Request-URI without whitespace, or a 3-digit status 100-699; 400),
    the SIP version (505 for another version), that every header line has a token
    name and a ':' (400), and Content-Length (a single non-negative integer; RFC
    3261 §18.3: a longer body is truncated to it, a shorter one is a 400; without
    Content-Length the body is the rest of the datagram). Typed headers and the
    Request-URI are parsed on first access, which raises SipParseError then.
    With ``strict=True`` the result also goes through `validate`.

    Bare-LF (and CR CR LF) line ends, CRLFs before the start line (RFC 3261 §7.5), folded
    header lines (unfolded with one SP) and a datagram missing the empty line
    after its headers are tolerated.

    Args:
        data: the datagram.
        strict: also run `validate` (mandatory headers, typed checks).
        max_size: larger input is refused with 413.
        allow_short_body: keep a body shorter than Content-Length instead of the
            RFC 3261 §18.3 400 (for stored captures whose bodies were trimmed).

    Raises:
        SipParseError: the only exception; ``status`` says how to answer.
    """
    try:
        message = _parse(data, max_size, allow_short_body)
        if strict:
            validate(message)
    except SipParseError:
        raise
    except (ValueError, IndexError, UnicodeError) as exc:  # defensive: never leak these
        raise SipParseError(f"malformed message ({type(exc).__name__})") from exc
    return message


def _parse(data: bytes, max_size: int, allow_short_body: bool) -> Message:
    if len(data) > max_size:
        head = data[: min(max_size, 65536)].decode("utf-8", "surrogateescape")
        raise SipParseError(
            f"message larger than {max_size} octets",
            status=413,
            recovered=_recover_lines(_LINE_END.split(head)[1:]),
            is_request=not head.lstrip("\r\n")[:4].upper().startswith("SIP/"),
        )
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: ignore CRLFs before the start line
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head = data[:end].decode("utf-8", "surrogateescape")
        rest = data[end + 4 :]
    else:
        head, rest = _split_datagram(data)
    lines = head.split("\r\n")
    breaks = len(lines) - 1
    if head.count("\n") == breaks and head.count("\r") == breaks:
        start = lines[0]
        text: str | None = head[len(start) + 2 :]
    else:  # bare LF or CR: the empty line may also be earlier than the CRLFCRLF found
        head, rest = _split_datagram(data)
        lines = _split_head(head)
        start = lines[0]
        text = None
    if not start:
        raise SipParseError("empty start line", recovered=_recover_lines(lines[1:]))
    del lines[0]
    parts = [*map(str.partition, lines, repeat(":"))]
    keys = [*map(_NAMES.get, map(_FIRST, parts))]
    if None in keys or "" in map(_SECOND, parts):
        parts, checked = _check_lines(lines, parts, keys, start)
        headers = Headers._from_parts(parts, checked)
        if len(parts) != len(lines):
            text = None  # unfolded
    else:
        headers = Headers._from_parts(parts, keys, text)  # type: ignore[arg-type]
    # RFC 3261 §18.3 datagram framing by Content-Length (see _body for the rules).
    found = headers._keys.count("content-length")
    if found == 1:
        value = parts[headers._keys.index("content-length")][2].strip(" \t")
        if (value == "0" and not rest) or (
            value.isdigit() and value.isascii() and len(value) < 12 and int(value) == len(rest)
        ):
            body = rest
        else:
            body = _body(rest, [value], headers, start, allow_short_body)
    elif found:
        body = _body(
            rest,
            [parts[pos][2].strip(" \t") for pos in headers._find("content-length")],
            headers,
            start,
            allow_short_body,
        )
    else:
        body = rest  # RFC 3261 §18.3: no Content-Length on UDP: the body ends the datagram

    if start[:4].upper() == "SIP/":
        fields = start.split(" ", 2)
        version = fields[0]
        if version != "SIP/2.0":
            _check_version(version, lines, False)
        code = fields[1] if len(fields) > 1 else ""
        if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] not in "123456":
            # RFC 3261 §7.2: Status-Code is 3DIGIT; classes 1xx-6xx only.
            raise SipParseError(
                f"malformed status line {start[:40]!r}",
                recovered=recover_fields(headers),
                is_request=False,
            )
        return Response(int(code), fields[2] if len(fields) == 3 else "", headers, body, version)

    fields = start.split(" ")
    if len(fields) != 3:
        # RFC 3261 §7.1: Method SP Request-URI SP SIP-Version, single SPs (RFC 4475 §3.1.2.9).
        raise SipParseError(
            f"malformed request line {start[:40]!r}",
            recovered=recover_fields(headers),
            is_request=True,
        )
    method, uri, version = fields
    if version != "SIP/2.0":
        _check_version(version, lines, True)
    if method not in _METHODS:
        if not _TOKEN.match(method):
            raise SipParseError(
                f"malformed method {method[:20]!r}",
                recovered=recover_fields(headers),
                is_request=True,
            )
        _remember_method(method)
    if not _URI_SHAPE.match(uri):
        raise SipParseError(
            f"malformed Request-URI {uri[:40]!r}",
            recovered=recover_fields(headers),
            is_request=True,
        )
    return Request(method, uri, headers, body, version)


def _body(
    rest: bytes,
    lengths: list[str],
    headers: Headers,
    start: str,
    allow_short_body: bool,
) -> bytes:
    """Apply RFC 3261 §18.3 datagram framing to what follows the empty line."""
    is_request = start[:4].upper() != "SIP/"
    value = lengths[0]
    if len(lengths) > 1 and any(other != value for other in lengths):
        raise SipParseError(
            "conflicting Content-Length headers",
            recovered=recover_fields(headers),
            is_request=is_request,
        )
    if not value or len(value) > 12 or not value.isascii() or not value.isdigit():
        raise SipParseError(
            f"invalid Content-Length {value[:20]!r}",
            recovered=recover_fields(headers),
            is_request=is_request,
        )
    length = int(value)
    if length > len(rest):
        if allow_short_body:
            return rest
        # RFC 3261 §18.3: body shorter than Content-Length → 400 on a datagram.
        raise SipParseError(
            f"body shorter than Content-Length {length}",
            recovered=recover_fields(headers),
            is_request=is_request,
        )
    # RFC 3261 §18.3: octets beyond Content-Length are discarded.
    return rest if length == len(rest) else rest[:length]


def validate(message: Message) -> None:
    """Check what a UAS relies on before acting on a message (the strict parse).

    Checks: Via, From, To, Call-ID and CSeq present (RFC 3261 §8.1.1; a missing
    Max-Forwards is tolerated); single-value headers not repeated with different
    values (RFC 3261 §7.3.1); Via, From, To, CSeq, Contact, Content-Type,
    Max-Forwards and Expires parse; CSeq number < 2**31 and, in a request, CSeq
    method equals the request method (RFC 3261 §8.1.1.5); the Request-URI parses
    (400; 416 when its scheme is unknown and it does not parse) and carries no
    URI headers (RFC 3261 §19.1.5). A Request-URI of an unknown scheme that does
    parse is accepted as an AbsoluteUri: answering 416 is the UAS's decision.

    Raises:
        SipParseError: with the status to answer (400 or 416) and the recovered fields.
    """
    headers = message.headers
    is_request = message.is_request

    def fail(reason: str, status: int = 400) -> SipParseError:
        return SipParseError(
            reason, status=status, recovered=recover_fields(headers), is_request=is_request
        )

    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in headers:
            raise fail(f"missing {name} header")
    for key in _SINGLE:
        values = headers.get_all(key)
        if len(values) > 1 and any(value != values[0] for value in values):
            raise fail(f"conflicting {key} headers")
    try:
        message.vias  # noqa: B018 - parsing is the check
        message.from_  # noqa: B018
        message.to  # noqa: B018
        cseq: CSeq = message.cseq
        message.contacts  # noqa: B018
        message.content_type  # noqa: B018
        message.max_forwards  # noqa: B018
        message.headers_of(Expires)
    except SipParseError as exc:
        raise fail(exc.reason) from None
    if not message.call_id.strip():
        raise fail("empty Call-ID")
    if cseq.seq > _MAX_CSEQ:
        raise fail("CSeq number out of range")
    if isinstance(message, Request):
        if cseq.method != message.method:
            raise fail("CSeq method does not match the request method")
        try:
            uri = message.uri
        except SipParseError as exc:
            scheme = message.uri_text.partition(":")[0].lower()
            raise fail(exc.reason, 400 if scheme in ("sip", "sips", "tel") else 416) from None
        if isinstance(uri, SipUri) and uri.headers:
            raise fail("headers in the Request-URI")
    elif not isinstance(message, Response):  # pragma: no cover - Message is a closed union
        raise fail("not a SIP message")
