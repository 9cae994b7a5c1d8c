"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966, RFC 5118 IPv6 references).

Components are kept in their wire (``%``-escaped) form so ``str(parse_uri(t)) == t``
for well-formed input; comparison unescapes them as RFC 3261 §19.1.4 requires.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any, ClassVar
from urllib.parse import unquote as _pct_decode

import attrs

from ._errors import SipParseError
from ._lexer import Params, format_params, split_simple_params

__all__ = ["AbsoluteUri", "SipUri", "TelUri", "Uri", "parse_uri"]

UriHeaders = tuple[tuple[str, str], ...]
"""Ordered ``(name, value)`` URI headers (``?h=v&h2=v2``), values in wire form."""

# RFC 3261 §25.1 character classes (plus '%' for escapes, checked separately).
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER_CHARS = _UNRESERVED + r"&=+$,;?/%"  # user-unreserved
_PASSWORD_CHARS = _UNRESERVED + r"&=+$,%"
_PARAM_CHARS = _UNRESERVED + r"\[\]/:&+$%"  # param-unreserved
_HEADER_CHARS = _UNRESERVED + r"\[\]/?:+$%"  # hnv-unreserved

_USER_RE = re.compile(f"[{_USER_CHARS}]+\\Z")
_PASSWORD_RE = re.compile(f"[{_PASSWORD_CHARS}]*\\Z")
_PARAM_RE = re.compile(f"[{_PARAM_CHARS}]+\\Z")
_HNAME_RE = re.compile(f"[{_HEADER_CHARS}]+\\Z")
_HVALUE_RE = re.compile(f"[{_HEADER_CHARS}]*\\Z")
_BAD_PCT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3261 §25.1: hostname = *( domainlabel "." ) toplabel [ "." ]; '_' tolerated.
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9\-_.]*[A-Za-z0-9_.])?")
_PORT_RE = re.compile(r"[0-9]{1,5}\Z")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
_IPV6_CHARS_RE = re.compile(r"[0-9A-Fa-f:.]+\Z")

# Fast path: the common shape sip:user@host[:port][;p[=v]]... without escapes or headers.
_FAST_RE = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,]+)@)?"
    r"([A-Za-z0-9][A-Za-z0-9\-.]*)(?::([0-9]{1,5}))?"
    r"(;[A-Za-z0-9\-_.!~*'()\[\]/:&+$;=]*)?\Z"
)

# Characters each component may carry unescaped when serializing a built URI.
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_SAFE_PASSWORD = _ALNUM | frozenset("-_.!~*'()&=+$,%")
_SAFE_PARAM = _ALNUM | frozenset("-_.!~*'()[]/:&+$%")
_SAFE_HEADER = _ALNUM | frozenset("-_.!~*'()[]/?:+$%")
_SAFE_USER = _ALNUM | frozenset("-_.!~*'()&=+$,;?/%")
_HEX = frozenset("0123456789abcdefABCDEF")

# RFC 3261 §19.1.4: these URI parameters must match when present in either URI.
_STRICT_PARAMS = frozenset({"user", "ttl", "method", "maddr", "transport"})


# hot path of str(uri): one regex call tells that a component needs no escaping.
_PLAIN_RE = {
    safe: re.compile("[" + re.escape("".join(sorted(safe - {"%"}))) + "]*\\Z")
    for safe in (_SAFE_PASSWORD, _SAFE_PARAM, _SAFE_HEADER, _SAFE_USER)
}


def _escape(text: str, safe: frozenset[str]) -> str:
    """%-escape characters outside ``safe``; a ``%`` that starts a valid escape stays."""
    if _PLAIN_RE[safe].match(text):
        return text
    out: list[str] = []
    n = len(text)
    for i, c in enumerate(text):
        if c == "%":
            ok = i + 2 < n and text[i + 1] in _HEX and text[i + 2] in _HEX
            out.append("%" if ok else "%25")
        elif c in safe:
            out.append(c)
        else:
            try:  # a byte smuggled in by surrogateescape decoding goes back out as that byte
                raw = c.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raw = c.encode("utf-8", "surrogatepass")
            out.extend(f"%{b:02X}" for b in raw)
    return "".join(out)


def _unesc(text: str) -> str:
    """Decode %-escapes once (RFC 3261 §19.1.4: escaped and plain forms compare equal)."""
    if "%" not in text:
        return text
    return _pct_decode(text, encoding="utf-8", errors="surrogateescape")


def _norm_host(host: str) -> str:
    """Host for comparison: lower case; IPv6 references in canonical compressed form."""
    host = host.lower()
    if host.startswith("["):
        # RFC 5118 §4.10: tolerate the 3-colon form allowed by RFC 3261's buggy ABNF.
        inner = host[1:-1].replace(":::", "::")
        try:
            return "[" + ipaddress.IPv6Address(inner).compressed + "]"
        except ValueError:
            return host
    return host


def _check_ipv6(ref: str) -> None:
    """Validate the text inside ``[...]`` as an IPv6 address (RFC 5118 tolerances applied)."""
    if not _IPV6_CHARS_RE.match(ref):
        raise SipParseError(f"invalid IPv6 reference [{ref}]")
    try:
        ipaddress.IPv6Address(ref.replace(":::", "::"))
    except ValueError:
        raise SipParseError(f"invalid IPv6 reference [{ref}]") from None


def _parse_uri_params(text: str) -> Params:
    """Parse ``;a=b;c`` URI parameters (no whitespace allowed inside a URI)."""
    out: list[tuple[str, str | None]] = []
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        if not _PARAM_RE.match(name) or _BAD_PCT_RE.search(part):
            raise SipParseError(f"invalid URI parameter {part!r}")
        if eq:
            if not _PARAM_RE.match(value):
                raise SipParseError(f"invalid URI parameter value {part!r}")
            out.append((name, value))
        else:
            out.append((name, None))
    return tuple(out)


def _parse_uri_headers(text: str) -> UriHeaders:
    """Parse ``h=v&h2=v2`` URI headers (RFC 3261 §19.1.1)."""
    out: list[tuple[str, str]] = []
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not eq or not _HNAME_RE.match(name) or not _HVALUE_RE.match(value):
            raise SipParseError(f"invalid URI header {part!r}")
        if _BAD_PCT_RE.search(part):
            raise SipParseError(f"invalid %-escape in URI header {part!r}")
        out.append((name, value))
    return tuple(out)


def _find_param(params: Params, name: str) -> tuple[bool, str | None]:
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return True, v
    return False, None


@attrs.frozen(eq=False)
class SipUri:
    """A ``sip:`` or ``sips:`` URI; components hold their wire (%-escaped) text.

    Equality and hashing follow RFC 3261 §19.1.4 (unescaped userinfo compared
    case-sensitively, host and parameters case-insensitively, ``user``/``ttl``/
    ``method``/``maddr``/``transport`` must match when present in either, other
    parameters only when present in both, headers must all match).
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = ()
    headers: UriHeaders = ()

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a SIP or SIPS URI.

        Raises:
            SipParseError: malformed URI or not a sip/sips scheme.
        """
        m = _FAST_RE.match(text)
        if m is not None:
            scheme, user, host, port, ptext = m.groups()
            params = split_simple_params(ptext) if ptext else ()
            iport = None if port is None else int(port)
            if params is not None and host[-1] != "-" and (iport is None or iport <= 65535):
                return cls(scheme, user, None, host, iport, params)
        return _parse_sip_slow(text)

    @property
    def transport(self) -> str | None:
        """The ``transport`` URI parameter, if any."""
        return _find_param(self.params, "transport")[1]

    @property
    def lr(self) -> bool:
        """True if the URI carries the ``lr`` (loose routing) parameter (RFC 3261 §19.1.1)."""
        return _find_param(self.params, "lr")[0]

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` URI parameter, if any."""
        return _find_param(self.params, "maddr")[1]

    @property
    def user_param(self) -> str | None:
        """The ``user`` URI parameter (e.g. ``phone``), if any."""
        return _find_param(self.params, "user")[1]

    @property
    def ttl(self) -> int | None:
        """The ``ttl`` URI parameter as an int, if present and numeric."""
        v = _find_param(self.params, "ttl")[1]
        return int(v) if v is not None and v.isascii() and v.isdigit() and len(v) < 10 else None

    @property
    def method(self) -> str | None:
        """The ``method`` URI parameter, if any."""
        return _find_param(self.params, "method")[1]

    @property
    def host_bare(self) -> str:
        """The host without IPv6 brackets (what a socket API wants)."""
        h = self.host
        return h[1:-1] if h.startswith("[") else h

    @property
    def default_port(self) -> int:
        """The explicit port, or 5060 (sip) / 5061 (sips) per RFC 3261 §19.1.2."""
        if self.port is not None:
            return self.port
        return 5061 if self.scheme == "sips" else 5060

    def param(self, name: str) -> str | None:
        """Value of URI parameter ``name`` (case-insensitive); None if absent or a bare flag."""
        return _find_param(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        """True if URI parameter ``name`` is present (case-insensitive)."""
        return _find_param(self.params, name)[0]

    def with_params(self, *pairs: tuple[str, str | None], **kwargs: str | None) -> SipUri:
        """Copy with parameters set (replacing same-named ones); a None value is a flag."""
        new = list(pairs) + list(kwargs.items())
        names = {k.lower() for k, _ in new}
        kept = [(k, v) for k, v in self.params if k.lower() not in names]
        return attrs.evolve(self, params=tuple(kept + new))

    def without_params(self, *names: str) -> SipUri:
        """Copy without the named parameters (case-insensitive)."""
        drop = {n.lower() for n in names}
        return attrs.evolve(self, params=tuple(p for p in self.params if p[0].lower() not in drop))

    def __str__(self) -> str:
        return self._text

    @functools.cached_property
    def _text(self) -> str:
        # hot path (Contact, Request-URI, dialog targets): built once per frozen value,
        # and parsed URIs are shared between messages (see _message._SHARED).
        user = self.user
        if user is None:
            out = self.scheme + ":" + self.host
        else:
            userinfo = _escape(user, _SAFE_USER)
            if self.password is not None:
                userinfo += ":" + _escape(self.password, _SAFE_PASSWORD)
            out = self.scheme + ":" + userinfo + "@" + self.host
        if self.port is not None:
            out += f":{self.port}"
        for k, v in self.params:
            out += ";" + _escape(k, _SAFE_PARAM)
            if v is not None:
                out += "=" + _escape(v, _SAFE_PARAM)
        if self.headers:
            out += "?" + "&".join(
                _escape(k, _SAFE_HEADER) + "=" + _escape(v, _SAFE_HEADER) for k, v in self.headers
            )
        return out

    def _compare_key(self) -> tuple[tuple[Any, ...], dict[str, str | None]]:
        """(parts that must match, other params compared only when in both)."""
        strict: dict[str, str | None] = {}
        other: dict[str, str | None] = {}
        for k, v in self.params:
            lk = _unesc(k).lower()
            lv = None if v is None else _unesc(v).lower()
            (strict if lk in _STRICT_PARAMS else other).setdefault(lk, lv)
        main = (
            self.scheme.lower(),
            None if self.user is None else _unesc(self.user),
            None if self.password is None else _unesc(self.password),
            _norm_host(self.host),
            self.port,
            frozenset(strict.items()),
            frozenset((_unesc(k).lower(), _unesc(v)) for k, v in self.headers),
        )
        return main, other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        a_main, a_other = self._compare_key()
        b_main, b_other = other._compare_key()
        if a_main != b_main:
            return False
        # RFC 3261 §19.1.4: other parameters are compared only when present in both.
        return all(b_other[k] == v for k, v in a_other.items() if k in b_other)

    def __hash__(self) -> int:
        return hash(self._compare_key()[0])


def _parse_sip_slow(text: str) -> SipUri:
    """The careful general SIP URI parser (escapes, IPv6, password, headers)."""
    low = text[:5].lower()
    if low.startswith("sips:"):
        scheme, rest = "sips", text[5:]
    elif low.startswith("sip:"):
        scheme, rest = "sip", text[4:]
    else:
        raise SipParseError(f"not a SIP URI: {text[:40]!r}")
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if not _USER_RE.match(user) or _BAD_PCT_RE.search(user):
            raise SipParseError(f"invalid user part in SIP URI {text[:60]!r}")
        if colon:
            if not _PASSWORD_RE.match(pw) or _BAD_PCT_RE.search(pw):
                raise SipParseError(f"invalid password in SIP URI {text[:60]!r}")
            password = pw
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {text[:60]!r}")
        _check_ipv6(rest[1:end])
        host, rest = rest[: end + 1], rest[end + 1 :]
    else:
        hm = _HOSTNAME_RE.match(rest)
        if hm is None:
            raise SipParseError(f"missing host in SIP URI {text[:60]!r}")
        host, rest = hm.group(), rest[hm.end() :]
    port: int | None = None
    if rest.startswith(":"):
        end = len(rest)
        for sep in ";?":
            j = rest.find(sep)
            if 0 <= j < end:
                end = j
        ptext = rest[1:end]
        if not _PORT_RE.match(ptext) or int(ptext) > 65535:
            raise SipParseError(f"invalid port in SIP URI {text[:60]!r}")
        port, rest = int(ptext), rest[end:]
    params: Params = ()
    headers: UriHeaders = ()
    q = rest.find("?")
    if q >= 0:
        headers = _parse_uri_headers(rest[q + 1 :])
        rest = rest[:q]
    if rest:
        if rest[0] != ";":
            raise SipParseError(f"unexpected text after host in SIP URI {text[:60]!r}")
        params = _parse_uri_params(rest)
    return SipUri(scheme, user, password, host, port, params, headers)


_TEL_NUMBER_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()]+\Z")
_TEL_PARAM_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+\Z")
_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")


@attrs.frozen(eq=False)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number as written and its parameters.

    Equality ignores visual separators (``-``, ``.``, ``(``, ``)``) in the number and
    compares parameter names and values case-insensitively, in any order (RFC 3966 §4).
    """

    number: str
    params: Params = ()
    scheme: ClassVar[str] = "tel"

    @classmethod
    def parse(cls, text: str) -> TelUri:
        """Parse a tel URI (``tel:+1-201-555-0123;ext=12``).

        Raises:
            SipParseError: malformed tel URI.
        """
        if text[:4].lower() != "tel:":
            raise SipParseError(f"not a tel URI: {text[:40]!r}")
        number, _, ptext = text[4:].partition(";")
        if not _TEL_NUMBER_RE.match(number):
            raise SipParseError(f"invalid telephone number in {text[:60]!r}")
        params: list[tuple[str, str | None]] = []
        if ptext:
            for part in ptext.split(";"):
                name, eq, value = part.partition("=")
                if not _TEL_PARAM_RE.match(name) or (eq and not _TEL_PARAM_RE.match(value)):
                    raise SipParseError(f"invalid tel URI parameter {part!r}")
                params.append((name, value if eq else None))
        return cls(number, tuple(params))

    @property
    def is_global(self) -> bool:
        """True for a global number (starts with ``+``, RFC 3966 §5.1.4)."""
        return self.number.startswith("+")

    def _compare_key(self) -> tuple[str, frozenset[tuple[str, str | None]]]:
        return (
            self.number.translate(_VISUAL_SEPARATORS).lower(),
            frozenset(
                (_unesc(k).lower(), None if v is None else _unesc(v).lower())
                for k, v in self.params
            ),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TelUri):
            return NotImplemented
        return self._compare_key() == other._compare_key()

    def __hash__(self) -> int:
        return hash(self._compare_key())

    def __str__(self) -> str:
        return "tel:" + self.number + format_params(self.params)


_ABS_OPAQUE_RE = re.compile(r"[^\x00-\x20\x7f\"<>]+\Z")


@attrs.frozen(eq=False)
class AbsoluteUri:
    """A URI of any other scheme (``http:``, ``urn:``, ``isbn:`` ...), kept as text.

    The layer above decides whether the scheme is acceptable (416 per RFC 3261 §8.2.2.1).
    ``scheme`` is kept as written (compared case-insensitively); ``opaque`` is everything
    after the first ``:``, compared exactly.
    """

    scheme: str
    opaque: str

    @classmethod
    def parse(cls, text: str) -> AbsoluteUri:
        """Parse ``scheme:rest`` (RFC 3986 absolute-URI, loosely).

        Raises:
            SipParseError: no valid scheme, empty rest, or whitespace/control characters.
        """
        scheme, colon, opaque = text.partition(":")
        if not colon or not _SCHEME_RE.match(scheme) or not _ABS_OPAQUE_RE.match(opaque):
            raise SipParseError(f"invalid URI {text[:60]!r}")
        return cls(scheme, opaque)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.opaque == other.opaque and self.scheme.lower() == other.scheme.lower()

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.opaque))

    def __str__(self) -> str:
        return self.scheme + ":" + self.opaque


Uri = SipUri | TelUri | AbsoluteUri
"""Any URI a SIP message can carry."""


def parse_uri(text: str) -> Uri:
    """Parse a URI: ``sip``/``sips`` → SipUri, ``tel`` → TelUri, else AbsoluteUri.

    Raises:
        SipParseError: malformed URI (status 400; a 416 for unknown schemes is the
            message layer's decision, made on the AbsoluteUri it gets back).
    """
    c = text[:5].lower()
    if c.startswith("sip:") or c == "sips:":
        return SipUri.parse(text)
    if c.startswith("tel:"):
        return TelUri.parse(text)
    return AbsoluteUri.parse(text)
