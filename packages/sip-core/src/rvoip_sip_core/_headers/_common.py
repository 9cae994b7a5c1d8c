"""Shared pieces of the typed headers: grammar fragments, the parameter mixin, number checks."""

from __future__ import annotations

import re
from typing import Self

import attrs

from .._errors import SipParseError
from .._lexer import Params, format_params, normalize_lws, parse_params

__all__ = [
    "CALLID_RE",
    "TOKEN",
    "WS",
    "ParamsMixin",
    "head_and_params",
    "is_digits",
    "lower",
    "parse_int",
    "tail_params",
]

_DIGITS_RE = re.compile(r"[0-9]+\Z")
# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
WS = r"[ \t]*"
# RFC 3261 §25.1: callid = word [ "@" word ]; word = 1*(alphanum / "-" / "." / "!" / "%" /
# "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" /
# "[" / "]" / "?" / "{" / "}")
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
CALLID_RE = re.compile(_WORD + r"(?:@" + _WORD + r")?\Z")
_HEAD_RE = re.compile(WS + "(" + TOKEN + ")" + WS)


def tail_params(text: str, pos: int, what: str) -> Params:
    """Parse the ``*(;param)`` that follows ``text[:pos]`` (nothing else may follow).

    Raises:
        SipParseError: other text after the value.
    """
    rest = text[pos:].strip(" \t")
    if not rest:
        return ()
    if rest[0] != ";":
        raise SipParseError(f"unexpected text in {what}: {text[:60]!r}")
    return parse_params(rest)


def head_and_params(value: str, what: str) -> tuple[str, Params]:
    """Parse ``token *(;param)`` (LWS tolerated), e.g. Event or Content-Disposition.

    Raises:
        SipParseError: malformed value.
    """
    text = normalize_lws(value)
    m = _HEAD_RE.match(text)
    if m is None:
        raise SipParseError(f"malformed {what} {value[:60]!r}")
    return m.group(1), tail_params(text, m.end(), what)


def lower(text: str) -> str:
    """Lower-case converter for attrs fields that compare case-insensitively."""
    return text.lower()


def is_digits(text: str) -> bool:
    """True if ``text`` is a non-empty run of ASCII digits (``str.isdigit`` alone accepts '²')."""
    return text.isascii() and text.isdigit()


def parse_int(text: str, what: str, low: int, high: int) -> int:
    """Parse a decimal number in ``[low, high]`` (leading zeros allowed, no sign).

    Raises:
        SipParseError: not digits or out of range.
    """
    text = text.strip()
    if not _DIGITS_RE.match(text):
        raise SipParseError(f"invalid {what}: {text[:30]!r}")
    # Guard against huge digit strings before int() (RFC 4475 §3.1.2.4 scalar02).
    if len(text.lstrip("0")) > 20:
        raise SipParseError(f"{what} out of range")
    value = int(text)
    if not low <= value <= high:
        raise SipParseError(f"{what} out of range: {value}")
    return value


class ParamsMixin:
    """Parameter accessors for header classes that have a ``params`` attribute."""

    __slots__ = ()
    params: Params

    def param(self, name: str) -> str | None:
        """Value of parameter ``name`` (case-insensitive); None if absent or a bare flag."""
        # _lexer.get_param inlined: Via branch and header tags are read on every message.
        lname = name.lower()
        for k, v in self.params:
            if k.lower() == lname:
                return v
        return None

    def has_param(self, name: str) -> bool:
        """True if parameter ``name`` is present (case-insensitive)."""
        lname = name.lower()
        return any(k.lower() == lname for k, _ in self.params)

    def with_params(self, *pairs: tuple[str, str | None], **kwargs: str | None) -> Self:
        """Copy with parameters set (same-named ones replaced); a None value is a bare flag."""
        new = list(pairs) + list(kwargs.items())
        names = {k.lower() for k, _ in new}
        kept = [(k, v) for k, v in self.params if k.lower() not in names]
        return attrs.evolve(self, params=tuple(kept + new))  # type: ignore[misc]

    def without_params(self, *names: str) -> Self:
        """Copy without the named parameters (case-insensitive)."""
        drop = {n.lower() for n in names}
        kept = tuple(p for p in self.params if p[0].lower() not in drop)
        return attrs.evolve(self, params=kept)  # type: ignore[misc]

    def _params_text(self) -> str:
        return format_params(self.params)
