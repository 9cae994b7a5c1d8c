"""Lexing helpers shared by the URI, header and message parsers.

Everything here works on ``str`` header values (after the message layer has
decoded the bytes) and raises only :class:`SipParseError` on malformed input.
"""

from __future__ import annotations

import re

from ._errors import SipParseError

__all__ = [
    "LWS_RE",
    "TOKEN_CHARS",
    "TOKEN_RE",
    "Params",
    "format_params",
    "get_param",
    "is_token",
    "normalize_lws",
    "parse_params",
    "quote",
    "split_list",
    "unquote",
]

Params = tuple[tuple[str, str | None], ...]
"""Ordered ``(name, value)`` pairs; ``value`` is None for a bare flag (``;lr``)."""

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(_TOKEN)
_TOKEN_FULL = re.compile(_TOKEN + r"\Z")

# RFC 3261 §25.1: LWS = [*WSP CRLF] 1*WSP (folded lines count as whitespace).
LWS_RE = re.compile(r"[ \t]*(?:\r?\n)?[ \t]+")
_FOLD_RE = re.compile(r"[ \t]*\r?\n[ \t]+")

# RFC 3261 §25.1: quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE
_QUOTED = r'"(?:[^"\\]|\\[\s\S])*"'
# One generic-param after a ';': name, optional '=' value (quoted-string or a run of
# non-separator characters, which covers token, host and IPv6 reference values).
_PARAM_RE = re.compile(
    r"[ \t\r\n]*;[ \t\r\n]*(" + _TOKEN + r")(?:[ \t\r\n]*=[ \t\r\n]*(" + _QUOTED + r'|[^\s;,"]+))?'
)
_TRAIL_WS_RE = re.compile(r"[ \t\r\n]*\Z")
_UNQUOTE_RE = re.compile(r"\\([\s\S])")


def is_token(text: str) -> bool:
    """Tell whether ``text`` is a non-empty RFC 3261 token."""
    return _TOKEN_FULL.match(text) is not None


def normalize_lws(value: str) -> str:
    """Replace folded line breaks (CRLF followed by whitespace) with a single space."""
    if "\n" not in value:
        return value
    return _FOLD_RE.sub(" ", value)


def quote(text: str) -> str:
    r"""Return ``text`` as a quoted-string, escaping ``"`` and ``\`` (RFC 3261 §25.1)."""
    if '"' in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text + '"'


def unquote(text: str) -> str:
    """Strip surrounding quotes and resolve quoted-pairs; other text is returned as is."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if "\\" in inner:
            return _UNQUOTE_RE.sub(r"\1", inner)
        return inner
    return text


def split_list(value: str) -> list[str]:
    r"""Split a comma-separated header value into stripped elements.

    Commas inside quoted strings (with ``\`` escapes) and inside ``<...>`` do not
    split. Empty elements (``a,,b``) are dropped, as a tolerant parser does
    (RFC 3261 §7.3.1 allows a header's empty value, e.g. ``Supported:``).

    Raises:
        SipParseError: an unterminated quoted string or ``<``.
    """
    if '"' not in value and "<" not in value:
        return [s for s in (p.strip() for p in value.split(",")) if s]
    out: list[str] = []
    start = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == '"':
            i += 1
            while i < n and value[i] != '"':
                i += 2 if value[i] == "\\" else 1
            if i >= n:
                raise SipParseError("unterminated quoted string in header value")
        elif c == "<":
            j = value.find(">", i + 1)
            if j < 0:
                raise SipParseError("unterminated '<' in header value")
            i = j
        elif c == ",":
            part = value[start:i].strip()
            if part:
                out.append(part)
            start = i + 1
        i += 1
    part = value[start:].strip()
    if part:
        out.append(part)
    return out


def parse_params(text: str) -> Params:
    """Parse ``;a=b;c;d="x y"`` header parameters (LWS allowed around ``;`` and ``=``).

    A leading ``;`` is optional. Quoted values keep their quotes (use :func:`unquote`),
    so re-serializing gives the same text back.

    Raises:
        SipParseError: an empty or non-token name, or stray text.
    """
    if not text:
        return ()
    if text[0] != ";" and not text[0].isspace():
        text = ";" + text
    out: list[tuple[str, str | None]] = []
    pos = 0
    n = len(text)
    match = _PARAM_RE.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            if _TRAIL_WS_RE.match(text, pos):
                break
            raise SipParseError(f"malformed header parameter near {text[pos : pos + 20]!r}")
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(out)


def split_simple_params(text: str) -> Params | None:
    """Split ``;a=b;c`` already limited by a regex to token characters, ``;`` and ``=``.

    Returns None when the shape is off (empty name or value, a second ``=``), so the
    caller falls back to its careful parser. Used by the fast paths.
    """
    body = text[1:]
    if ";" not in body:  # the common single parameter (";tag=...", ";lr")
        name, eq, value = body.partition("=")
        if not name or (eq and (not value or "=" in value)):
            return None
        return ((name, value if eq else None),)
    out: list[tuple[str, str | None]] = []
    for part in body.split(";"):
        name, eq, value = part.partition("=")
        if not name:
            return None
        if eq:
            if not value or "=" in value:
                return None
            out.append((name, value))
        else:
            out.append((name, None))
    return tuple(out)


def format_params(params: Params) -> str:
    """Serialize parameters as ``;name=value`` / ``;flag`` (inverse of :func:`parse_params`)."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def get_param(params: Params, name: str) -> str | None:
    """Value of the first parameter called ``name`` (case-insensitive); None if absent or bare."""
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return v
    return None
