"""Scalar and media-type headers: Call-ID, CSeq, Max-Forwards, lengths, timers, types."""

from __future__ import annotations

import re
from typing import ClassVar, Self

import attrs

from .._errors import SipParseError
from .._lexer import Params, normalize_lws
from ._common import (
    CALLID_RE,
    TOKEN,
    WS,
    ParamsMixin,
    head_and_params,
    is_digits,
    lower,
    parse_int,
    tail_params,
)

__all__ = [
    "CSeq",
    "CallId",
    "ContentDisposition",
    "ContentLength",
    "ContentType",
    "Expires",
    "MaxForwards",
    "MinExpires",
    "MinSE",
    "RAck",
    "RSeq",
    "RetryAfter",
    "SessionExpires",
]

_U32 = 2**32 - 1

_CSEQ_FAST_RE = re.compile(r"([0-9]+) ([A-Z]+)\Z")
_CSEQ_RE = re.compile(WS + r"([0-9]+)[ \t]+(" + TOKEN + ")" + WS + r"\Z")
_RACK_RE = re.compile(WS + r"([0-9]+)[ \t]+([0-9]+)[ \t]+(" + TOKEN + ")" + WS + r"\Z")
_DELTA_RE = re.compile(WS + r"([0-9]+)" + WS + r"(?=;|\(|\Z)")
_MEDIA_RE = re.compile(WS + "(" + TOKEN + ")" + WS + "/" + WS + "(" + TOKEN + ")" + WS)


def _int_header_parse(value: str, what: str, low: int, high: int) -> int:
    if is_digits(value) and len(value) < 10:
        v = int(value)
        if low <= v <= high:
            return v
    return parse_int(normalize_lws(value), what, low, high)


@attrs.frozen
class CallId:
    """The Call-ID header (RFC 3261 §20.8): ``word [ "@" word ]``, compared byte-wise."""

    NAME: ClassVar[str] = "Call-ID"
    MULTI: ClassVar[bool] = False

    value: str

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse a Call-ID value.

        Raises:
            SipParseError: empty or containing characters outside RFC 3261 ``word``.
        """
        if CALLID_RE.match(value):
            return cls(value)
        text = normalize_lws(value).strip(" \t")
        if not CALLID_RE.match(text):
            raise SipParseError(f"invalid Call-ID {value[:60]!r}")
        return cls(text)

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class CSeq:
    """The CSeq header (RFC 3261 §20.16): sequence number (0..2**31-1) and method."""

    NAME: ClassVar[str] = "CSeq"
    MULTI: ClassVar[bool] = False

    seq: int
    method: str

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``1 INVITE``.

        Raises:
            SipParseError: malformed, or the number is not below 2**31 (RFC 3261 §8.1.1.5).
        """
        m = _CSEQ_FAST_RE.match(value)
        if m is not None:
            num, method = m.groups()
            if len(num) < 10:
                return cls(int(num), method)
        else:
            m = _CSEQ_RE.match(normalize_lws(value))
            if m is None:
                raise SipParseError(f"malformed CSeq {value[:60]!r}")
        seq = parse_int(m.group(1), "CSeq number", 0, 2**31 - 1)
        return cls(seq, m.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


@attrs.frozen
class _IntHeader:
    NAME: ClassVar[str] = ""
    MULTI: ClassVar[bool] = False
    LOW: ClassVar[int] = 0
    HIGH: ClassVar[int] = _U32

    value: int

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse a decimal value within the header's range.

        Raises:
            SipParseError: not a number or out of range.
        """
        return cls(_int_header_parse(value, cls.NAME, cls.LOW, cls.HIGH))

    def __str__(self) -> str:
        return str(self.value)

    def __int__(self) -> int:
        return self.value


@attrs.frozen
class MaxForwards(_IntHeader):
    """Max-Forwards (RFC 3261 §20.22): 0..255."""

    NAME: ClassVar[str] = "Max-Forwards"
    HIGH: ClassVar[int] = 255


@attrs.frozen
class ContentLength(_IntHeader):
    """Content-Length (RFC 3261 §20.14): body size in octets."""

    NAME: ClassVar[str] = "Content-Length"


@attrs.frozen
class Expires(_IntHeader):
    """Expires (RFC 3261 §20.19): delta-seconds 0..2**32-1."""

    NAME: ClassVar[str] = "Expires"


@attrs.frozen
class MinExpires(_IntHeader):
    """Min-Expires (RFC 3261 §20.23): delta-seconds."""

    NAME: ClassVar[str] = "Min-Expires"


@attrs.frozen
class RSeq(_IntHeader):
    """RSeq (RFC 3262 §7.1): reliable provisional response number, 1..2**32-1."""

    NAME: ClassVar[str] = "RSeq"
    LOW: ClassVar[int] = 1


@attrs.frozen
class RAck:
    """RAck (RFC 3262 §7.2): ``rseq cseq method`` acknowledging a reliable provisional."""

    NAME: ClassVar[str] = "RAck"
    MULTI: ClassVar[bool] = False

    rseq: int
    cseq: int
    method: str

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``776656 1 INVITE``.

        Raises:
            SipParseError: malformed or out-of-range numbers.
        """
        m = _RACK_RE.match(normalize_lws(value))
        if m is None:
            raise SipParseError(f"malformed RAck {value[:60]!r}")
        return cls(
            parse_int(m.group(1), "RAck rseq", 1, _U32),
            parse_int(m.group(2), "RAck cseq", 0, _U32),
            m.group(3),
        )

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def _scan_comment(text: str, pos: int) -> int:
    """Index just past the comment starting at ``text[pos] == '('`` (nesting, quoted-pairs)."""
    depth = 0
    n = len(text)
    i = pos
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise SipParseError("unterminated comment")


@attrs.frozen
class RetryAfter(ParamsMixin):
    """Retry-After (RFC 3261 §20.33): seconds, optional ``(comment)``, ``;duration=``."""

    NAME: ClassVar[str] = "Retry-After"
    MULTI: ClassVar[bool] = False

    seconds: int
    comment: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``18000;duration=3600`` or ``120 (I'm in a meeting)``.

        Raises:
            SipParseError: malformed value or out-of-range numbers.
        """
        text = normalize_lws(value)
        m = _DELTA_RE.match(text)
        if m is None:
            raise SipParseError(f"malformed Retry-After {value[:60]!r}")
        seconds = parse_int(m.group(1), "Retry-After", 0, _U32)
        pos = m.end()
        comment = None
        if pos < len(text) and text[pos] == "(":
            end = _scan_comment(text, pos)
            comment = text[pos + 1 : end - 1]
            pos = end
        params = tail_params(text, pos, "Retry-After")
        d = next((v for k, v in params if k.lower() == "duration"), None)
        if d is not None:
            parse_int(d, "Retry-After duration", 0, _U32)
        return cls(seconds, comment, params)

    @property
    def duration(self) -> int | None:
        """The ``duration`` parameter in seconds."""
        v = self.param("duration")
        return int(v) if v is not None and is_digits(v) else None

    def __str__(self) -> str:
        c = "" if self.comment is None else f" ({self.comment})"
        return f"{self.seconds}{c}{self._params_text()}"


@attrs.frozen
class _DeltaParams(ParamsMixin):
    NAME: ClassVar[str] = ""
    MULTI: ClassVar[bool] = False

    seconds: int
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``delta-seconds *(;param)``.

        Raises:
            SipParseError: malformed value.
        """
        text = normalize_lws(value)
        m = _DELTA_RE.match(text)
        if m is None:
            raise SipParseError(f"malformed {cls.NAME} {value[:60]!r}")
        seconds = parse_int(m.group(1), cls.NAME, 0, _U32)
        return cls(seconds, tail_params(text, m.end(), cls.NAME))

    def __str__(self) -> str:
        return f"{self.seconds}{self._params_text()}"


@attrs.frozen
class SessionExpires(_DeltaParams):
    """Session-Expires (RFC 4028 §4): interval and ``refresher`` (``uac``/``uas``)."""

    NAME: ClassVar[str] = "Session-Expires"

    @property
    def refresher(self) -> str | None:
        """``uac`` or ``uas`` (lower-cased), None when absent."""
        v = self.param("refresher")
        return None if v is None else v.lower()


@attrs.frozen
class MinSE(_DeltaParams):
    """Min-SE (RFC 4028 §5): the minimum session interval."""

    NAME: ClassVar[str] = "Min-SE"


@attrs.frozen
class _MediaType(ParamsMixin):
    NAME: ClassVar[str] = ""
    MULTI: ClassVar[bool] = False

    # RFC 3261 §20.15 / RFC 2045: type and subtype are case-insensitive.
    type: str = attrs.field(converter=lower)
    subtype: str = attrs.field(converter=lower)
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``type/subtype *(;param)``.

        Raises:
            SipParseError: malformed media type.
        """
        text = normalize_lws(value)
        m = _MEDIA_RE.match(text)
        if m is None:
            raise SipParseError(f"malformed {cls.NAME} {value[:60]!r}")
        return cls(m.group(1), m.group(2), tail_params(text, m.end(), cls.NAME))

    @property
    def media_type(self) -> str:
        """``type/subtype`` in lower case, e.g. ``application/sdp``."""
        return f"{self.type}/{self.subtype}"

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{self._params_text()}"


@attrs.frozen
class ContentType(_MediaType):
    """Content-Type (RFC 3261 §20.15): media type and parameters (``boundary``, ...)."""

    NAME: ClassVar[str] = "Content-Type"


@attrs.frozen
class Accept(_MediaType):
    """One Accept element (RFC 3261 §20.1): a media range (may use ``*``) with params."""

    NAME: ClassVar[str] = "Accept"
    MULTI: ClassVar[bool] = True


@attrs.frozen
class ContentDisposition(ParamsMixin):
    """Content-Disposition (RFC 3261 §20.11): ``session``, ``render``, ... with ``handling``."""

    NAME: ClassVar[str] = "Content-Disposition"
    MULTI: ClassVar[bool] = False

    disposition: str = attrs.field(converter=lower)
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``session;handling=optional``.

        Raises:
            SipParseError: malformed value.
        """
        disposition, params = head_and_params(value, cls.NAME)
        return cls(disposition, params)

    @property
    def handling(self) -> str | None:
        """The ``handling`` parameter (``optional``/``required``), lower-cased."""
        v = self.param("handling")
        return None if v is None else v.lower()

    def __str__(self) -> str:
        return f"{self.disposition}{self._params_text()}"
