"""`StreamFramer`: cut a TCP/TLS byte stream into SIP message frames.

Sans-IO: feed it the bytes as they arrive, get back complete frames (parse each
with `parse_message`) and keep-alive pings. RFC 3261 §18.3: on a stream the
Content-Length header is mandatory and frames the body.
"""

from __future__ import annotations

import re

import attrs

from ._errors import SipParseError
from ._names import header_key

__all__ = ["KeepAlive", "StreamFramer"]

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_PING = b"\r\n\r\n"


@attrs.frozen
class KeepAlive:
    """A keep-alive seen between messages on a stream.

    ``ping=True``: the peer sent CRLFCRLF; answer with a single CRLF ("pong",
    RFC 5626 §3.5.1). A lone CRLF between messages is ignored by the framer.
    """

    ping: bool = True


def _content_length(head: bytes, max_body: int) -> int:
    """Read the one Content-Length of a header section (RFC 3261 §18.3, §20.14)."""
    values: list[str] = []
    for line in _LINE_END.split(head)[1:]:
        name, colon, value = line.partition(b":")
        if colon and not line[:1].isspace():
            key = header_key(name.decode("latin-1").strip(" \t"))
            if key == "content-length":
                values.append(value.decode("latin-1").strip(" \t"))
    if not values:
        # RFC 3261 §18.3: Content-Length MUST be present on a stream transport.
        raise SipParseError("missing Content-Length on a stream")
    value = values[0]
    if any(other != value for other in values):
        raise SipParseError("conflicting Content-Length headers")
    if not value or len(value) > 12 or not value.isascii() or not value.isdigit():
        raise SipParseError(f"invalid Content-Length {value[:20]!r}")
    length = int(value)
    if length > max_body:
        raise SipParseError(f"body of {length} octets is too large", status=413)
    return length


@attrs.define(eq=False)
class StreamFramer:
    """Frames SIP messages out of a stream by Content-Length (sans-IO).

    After a SipParseError the stream cannot be resynchronised: every later
    `feed` raises again and the connection should be closed.

    Args:
        max_head: largest header section accepted (start line and headers).
        max_body: largest Content-Length accepted.
    """

    max_head: int = 65_536
    max_body: int = 1_048_576
    _buffer: bytearray = attrs.field(factory=bytearray, init=False)
    _scan: int = attrs.field(default=0, init=False)
    _need: int | None = attrs.field(default=None, init=False)
    _failed: str | None = attrs.field(default=None, init=False)
    _failed_status: int = attrs.field(default=400, init=False)

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned in a frame."""
        return len(self._buffer)

    def _fail(self, error: SipParseError) -> SipParseError:
        self._failed = error.reason
        self._failed_status = error.status
        return error

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        """Add received bytes; return the frames and keep-alives now complete, in order.

        Raises:
            SipParseError: the stream cannot be framed (missing or invalid
                Content-Length, header section or body too large, junk between
                messages); close the connection.
        """
        if self._failed is not None:
            raise SipParseError(self._failed, status=self._failed_status)
        buffer = self._buffer
        buffer += data
        out: list[bytes | KeepAlive] = []
        while buffer:
            need = self._need
            if need is None:
                first = buffer[0]
                if first == 13 or first == 10:
                    if buffer.startswith(_PING):
                        del buffer[:4]
                        out.append(KeepAlive(ping=True))
                        continue
                    if len(buffer) < 4 and _PING.startswith(buffer):
                        break  # could still become a ping: wait
                    if buffer.startswith(b"\r\n"):
                        del buffer[:2]  # a lone CRLF between messages is ignored
                        continue
                    if first == 10:
                        del buffer[:1]  # so is a bare LF (RFC 3261 §7.5 tolerance)
                        continue
                    raise self._fail(SipParseError("junk between messages on the stream"))
                found = _HEAD_END.search(buffer, self._scan)
                if found is None:
                    if len(buffer) > self.max_head:
                        raise self._fail(SipParseError("header section too large", status=413))
                    self._scan = max(0, len(buffer) - 3)
                    break
                if found.start() > self.max_head:
                    raise self._fail(SipParseError("header section too large", status=413))
                try:
                    length = _content_length(bytes(buffer[: found.start()]), self.max_body)
                except SipParseError as exc:
                    raise self._fail(exc) from None
                need = self._need = found.end() + length
                self._scan = 0
            if len(buffer) < need:
                break
            out.append(bytes(buffer[:need]))
            del buffer[:need]
            self._need = None
        return out
