"""Headers built on name-addr / addr-spec (RFC 3261 §20.10, §20.20, §20.34, §20.39, ...).

From, To, Contact, Route, Record-Route, Refer-To (RFC 3515), Referred-By (RFC 3892)
and P-Asserted-Identity (RFC 3325).
"""

from __future__ import annotations

import re
from typing import ClassVar, Self

import attrs

from .._errors import SipParseError
from .._lexer import (
    Params,
    format_params,
    normalize_lws,
    parse_params,
    quote,
    split_simple_params,
)
from .._uri import SipUri, Uri, parse_uri
from ._common import TOKEN, ParamsMixin, is_digits

__all__ = [
    "Contact",
    "From",
    "PAssertedIdentity",
    "RecordRoute",
    "ReferTo",
    "ReferredBy",
    "Route",
    "To",
    "parse_name_addr",
]

# Fast path: ["Display" |Token Token ]<sip:user@host[:port][;p[=v]]>[;name[=value]]...
# in one regex (the URI's common shape included), without LWS oddities or escapes.
_FAST_RE = re.compile(
    r'(?:"([^"\\]*)" ?|(' + TOKEN + r"(?: " + TOKEN + r")*) ?)?"
    r"<(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,]+)@)?([A-Za-z0-9][A-Za-z0-9\-.]*)(?::([0-9]{1,5}))?"
    r"(;[A-Za-z0-9\-_.!~*'()\[\]/:&+$;=]*)?>"
    r"(;[A-Za-z0-9\-.!%*_+`'~;=]*)?\Z"
)
# Fast path for the addr-spec form SIPp and many UAs put in Contact: sip:user@host[:port]
# then header parameters. RFC 3261 §20.10: no ',', ';' or '?' in such a URI, so the
# user part excludes ',' and every ';' starts a header parameter.
_SPEC_FAST_RE = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$]+)@)?([A-Za-z0-9][A-Za-z0-9\-.]*)(?::([0-9]{1,5}))?"
    r"(;[A-Za-z0-9\-.!%*_+`'~;=]*)?\Z"
)
# RFC 3261 §25.1: display-name = *(token LWS) / quoted-string. Non-ASCII octets are
# tolerated in unquoted names (seen from real UAs); ASCII separators such as ',' are not
# (RFC 4475 §3.1.2.15 baddn).
_TOKEN_NAME_RE = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~\x80-\U0010ffff]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~\x80-\U0010ffff]+)*\Z"
)
_UNESCAPE_RE = re.compile(r"\\([\s\S])")


def _parse_uri_in_brackets(text: str) -> Uri:
    if not text or any(c in text for c in " \t\r\n"):
        # RFC 4475 §3.1.2.14 badaspec: no LWS inside <...>.
        raise SipParseError(f"invalid URI in <>: {text[:60]!r}")
    return parse_uri(text)


def _check_params_follow(rest: str, value: str) -> Params:
    r = rest.lstrip(" \t")
    if not r:
        return ()
    if r[0] != ";":
        raise SipParseError(f"unexpected text after address: {value[:60]!r}")
    return parse_params(r)


def parse_name_addr(value: str) -> tuple[str | None, Uri, Params]:
    """Parse ``name-addr`` or ``addr-spec`` followed by header parameters.

    Returns:
        ``(display_name, uri, params)``; the display name is unquoted (None if absent).
        In the addr-spec form the parameters after the URI belong to the header
        (RFC 3261 §20.10), so the URI carries none.

    Raises:
        SipParseError: malformed value.
    """
    if value[:1] == "s":
        m = _SPEC_FAST_RE.match(value)
        if m is not None:
            scheme, user, host, port, ptext = m.groups()
            params = split_simple_params(ptext) if ptext else ()
            iport = None if port is None else int(port)
            if params is not None and host[-1] != "-" and (iport is None or iport <= 65535):
                return None, SipUri(scheme, user, None, host, iport), params
    m = _FAST_RE.match(value)
    if m is not None:
        quoted, tokens, scheme, user, host, port, uptext, ptext = m.groups()
        uparams = split_simple_params(uptext) if uptext else ()
        params = split_simple_params(ptext) if ptext else ()
        iport = None if port is None else int(port)
        if (
            uparams is not None
            and params is not None
            and host[-1] != "-"
            and (iport is None or iport <= 65535)
        ):
            return (
                quoted if quoted is not None else tokens,
                SipUri(scheme, user, None, host, iport, uparams),
                params,
            )
    text = normalize_lws(value).strip(" \t")
    if not text:
        raise SipParseError("empty address")
    display: str | None = None
    if text[0] == '"':
        i, n = 1, len(text)
        while i < n and text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        if i >= n:
            raise SipParseError(f"unterminated quoted display name: {value[:60]!r}")
        inner = text[1:i]
        display = _UNESCAPE_RE.sub(r"\1", inner) if "\\" in inner else inner
        text = text[i + 1 :].lstrip(" \t")
        if not text.startswith("<"):
            raise SipParseError(f"expected '<' after display name: {value[:60]!r}")
    lt = text.find("<")
    semi = text.find(";")
    if lt >= 0 and (semi < 0 or lt < semi):
        if lt > 0:
            name = text[:lt].strip(" \t")
            if not _TOKEN_NAME_RE.match(name):
                raise SipParseError(f"invalid display name {name[:40]!r}")
            display = " ".join(name.split())
        gt = text.find(">", lt)
        if gt < 0:
            raise SipParseError(f"unterminated '<' in address: {value[:60]!r}")
        uri = _parse_uri_in_brackets(text[lt + 1 : gt])
        return display, uri, _check_params_follow(text[gt + 1 :], value)
    # addr-spec form. RFC 3261 §20.10: a URI with ',', ';' or '?' must use name-addr.
    spec = (text if semi < 0 else text[:semi]).rstrip(" \t")
    if any(c in spec for c in ',?<> \t"') or not spec:
        raise SipParseError(f"invalid addr-spec: {value[:60]!r}")
    return None, parse_uri(spec), parse_params(text[semi:]) if semi >= 0 else ()


def _format(display: str | None, uri: object, params: Params) -> str:
    p = format_params(params)
    if display is None:
        return f"<{uri}>{p}"
    return f"{quote(display)} <{uri}>{p}"


@attrs.frozen
class _NameAddr(ParamsMixin):
    """Common shape: a URI, an optional display name, and header parameters."""

    NAME: ClassVar[str] = ""
    MULTI: ClassVar[bool] = False

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse one element (name-addr or addr-spec plus parameters).

        Raises:
            SipParseError: malformed value.
        """
        display, uri, params = parse_name_addr(value)
        return cls(uri, display, params)

    def __str__(self) -> str:
        return _format(self.display_name, self.uri, self.params)


class _Tagged(_NameAddr):
    __slots__ = ()

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (dialog identification, RFC 3261 §19.3)."""
        for k, v in self.params:
            if k == "tag" or k.lower() == "tag":
                return v
        return None

    def with_tag(self, tag: str) -> Self:
        """Copy with the ``tag`` parameter set (e.g. the UAS adding its To tag)."""
        return self.with_params(tag=tag)


@attrs.frozen
class From(_Tagged):
    """The From header (RFC 3261 §20.20): the request's logical initiator, with ``tag``."""

    NAME: ClassVar[str] = "From"


@attrs.frozen
class To(_Tagged):
    """The To header (RFC 3261 §20.39): the logical recipient, with ``tag``."""

    NAME: ClassVar[str] = "To"


@attrs.frozen
class Route(_NameAddr):
    """One Route element (RFC 3261 §20.34)."""

    NAME: ClassVar[str] = "Route"
    MULTI: ClassVar[bool] = True


@attrs.frozen
class RecordRoute(_NameAddr):
    """One Record-Route element (RFC 3261 §20.30)."""

    NAME: ClassVar[str] = "Record-Route"
    MULTI: ClassVar[bool] = True


@attrs.frozen
class ReferTo(_NameAddr):
    """The Refer-To header (RFC 3515 §2.1); the URI may carry ``?Replaces=`` headers."""

    NAME: ClassVar[str] = "Refer-To"


@attrs.frozen
class ReferredBy(_NameAddr):
    """The Referred-By header (RFC 3892)."""

    NAME: ClassVar[str] = "Referred-By"


@attrs.frozen
class PAssertedIdentity(_NameAddr):
    """One P-Asserted-Identity element (RFC 3325 §9.1)."""

    NAME: ClassVar[str] = "P-Asserted-Identity"
    MULTI: ClassVar[bool] = True


@attrs.frozen
class Contact(ParamsMixin):
    """One Contact element (RFC 3261 §20.10), or the wildcard ``*`` (``uri`` None).

    ``expires`` and ``q`` read the contact-params; params after an addr-spec belong
    to the header, not the URI (RFC 4475 §3.3.12 cparam01).
    """

    NAME: ClassVar[str] = "Contact"
    MULTI: ClassVar[bool] = True

    uri: Uri | None
    display_name: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse one Contact element or ``*``.

        Raises:
            SipParseError: malformed value.
        """
        if value.strip(" \t\r\n") == "*":
            return cls(None)
        display, uri, params = parse_name_addr(value)
        return cls(uri, display, params)

    @classmethod
    def wildcard(cls) -> Self:
        """The ``Contact: *`` used to remove all bindings (RFC 3261 §10.2.2)."""
        return cls(None)

    @property
    def is_wildcard(self) -> bool:
        """True for ``Contact: *``."""
        return self.uri is None

    @property
    def expires(self) -> int | None:
        """The ``expires`` contact-param in seconds (capped at 2**32-1), None if absent/bad."""
        v = self.param("expires")
        if v is None or not is_digits(v):
            return None
        if len(v.lstrip("0")) > 10:
            return 2**32 - 1
        return min(int(v), 2**32 - 1)

    @property
    def q(self) -> float | None:
        """The ``q`` contact-param (0..1), None if absent or malformed."""
        v = self.param("q")
        if v is None:
            return None
        try:
            q = float(v)
        except ValueError:
            return None
        return q if 0.0 <= q <= 1.0 else None

    def __str__(self) -> str:
        if self.uri is None:
            return "*"
        return _format(self.display_name, self.uri, self.params)
