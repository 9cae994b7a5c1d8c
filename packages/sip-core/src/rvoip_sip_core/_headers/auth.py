"""Authentication headers: WWW-/Proxy-Authenticate, (Proxy-)Authorization, Authentication-Info.

RFC 3261 §20.7, §20.27, §20.28, §20.44 and RFC 7616 §3.3-3.5 (HTTP Digest, which SIP
reuses with RFC 8760's algorithms). A challenge or credentials value is an auth scheme
followed by either a token68 or a comma-separated list of ``name=value`` parameters.
Values are kept unquoted in the model; serialization quotes them as the RFCs require.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import ClassVar, Self

import attrs

from .._errors import SipParseError
from .._lexer import get_param
from ._common import TOKEN

__all__ = [
    "AuthChallenge",
    "AuthCredentials",
    "AuthParams",
    "AuthenticationInfo",
    "Authorization",
    "ProxyAuthenticate",
    "ProxyAuthorization",
    "WWWAuthenticate",
]

AuthParams = tuple[tuple[str, str], ...]
"""Ordered ``(name, value)`` auth-params; values unquoted (quoted-pairs resolved)."""

_TOKEN_FULL = re.compile(TOKEN + r"\Z")
_WS = r"[ \t\r\n]*"
_SCHEME_RE = re.compile(_WS + "(" + TOKEN + ")" + r"(?:[ \t\r\n]+|\Z)")
# RFC 7235 §2.1: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*" + _WS + r"\Z")
# RFC 3261 §25.1 / RFC 7616 §3.3: auth-param = token EQUAL ( token / quoted-string ).
# Unquoted values are taken tolerantly as any run without whitespace, comma or DQUOTE
# (real UAs send e.g. single-quoted values with ':' inside).
_PARAM_RE = re.compile(
    _WS
    + "("
    + TOKEN
    + ")"
    + _WS
    + "="
    + _WS
    + r'(?:"((?:[^"\\]|\\[\s\S])*)"|([^\s,"]+))'
    + _WS
    + r"(?:,|\Z)"
)
_SEP_RE = re.compile(r"[ \t\r\n,]*")
_UNQUOTE_RE = re.compile(r"\\([\s\S])")


def _is_token(text: str) -> bool:
    return _TOKEN_FULL.match(text) is not None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_params(text: str, pos: int, what: str) -> AuthParams:
    out: list[tuple[str, str]] = []
    n = len(text)
    pos = _SEP_RE.match(text, pos).end()  # type: ignore[union-attr]
    while pos < n:
        m = _PARAM_RE.match(text, pos)
        if m is None:
            raise SipParseError(f"malformed {what} parameter near {text[pos : pos + 24]!r}")
        quoted = m.group(2)
        if quoted is not None:
            value = _UNQUOTE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            value = m.group(3)
        out.append((m.group(1), value))
        # RFC 7230 §7: empty list elements (",,") are tolerated.
        pos = _SEP_RE.match(text, m.end()).end()  # type: ignore[union-attr]
    return tuple(out)


def _format_params(params: AuthParams, always_bare: frozenset[str]) -> str:
    parts = []
    for name, value in params:
        # Tokens listed as unquoted by the RFC go bare; everything else is a
        # quoted-string unless it is a plain token of an unknown parameter.
        lname = name.lower()
        if _is_token(value) and (lname in always_bare or lname not in _ALWAYS_QUOTED):
            parts.append(f"{name}={value}")
        else:
            parts.append(f"{name}={_quote(value)}")
    return ", ".join(parts)


# RFC 7616 §3.3-3.5: parameters that are always quoted-strings on the wire.
_ALWAYS_QUOTED = frozenset(
    {
        "realm",
        "nonce",
        "opaque",
        "domain",
        "username",
        "uri",
        "response",
        "cnonce",
        "nextnonce",
        "rspauth",
        "charset",
    }
)
# RFC 7616 §3.3: in a challenge algorithm, stale and userhash are bare tokens; qop is
# a quoted list of options.
_CHALLENGE_BARE = frozenset({"algorithm", "stale", "userhash"})
# RFC 7616 §3.4: in credentials algorithm, qop (one value), nc and userhash are bare.
_CREDENTIALS_BARE = frozenset({"algorithm", "qop", "nc", "userhash", "username*"})
_INFO_BARE = frozenset({"qop", "nc"})


_NC_RE = re.compile(r"[0-9A-Fa-f]{1,8}\Z")


def _parse_nc(value: str | None) -> int | None:
    # RFC 7616 §3.4: nc-value = 8LHEX
    if value is None or _NC_RE.match(value) is None:
        return None
    return int(value, 16)


class _QopFields:
    """``qop``, ``cnonce`` and ``nc``: sent in credentials, echoed in Authentication-Info."""

    __slots__ = ()
    params: AuthParams

    @property
    def qop(self) -> str | None:
        """The chosen/applied ``qop`` lower-cased, or None (RFC 2069 compatibility)."""
        value = get_param(self.params, "qop")
        return None if value is None else value.lower()

    @property
    def cnonce(self) -> str | None:
        """The ``cnonce`` parameter (the client nonce)."""
        return get_param(self.params, "cnonce")

    @property
    def nc(self) -> int | None:
        """The nonce count as an int (``nc=00000001`` → 1); None if absent or not hex."""
        return _parse_nc(get_param(self.params, "nc"))


@attrs.frozen
class _AuthBase:
    """A scheme with either auth-params or a token68 (RFC 7235 §2.1 shape)."""

    scheme: str
    params: AuthParams = ()
    token68: str | None = None

    NAME: ClassVar[str] = ""
    MULTI: ClassVar[bool] = False
    _BARE: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse one header value (``Digest realm="x", nonce="y"`` or ``Basic abc==``).

        Raises:
            SipParseError: the value is not a scheme followed by auth-params or a token68.
        """
        m = _SCHEME_RE.match(value)
        if m is None:
            raise SipParseError(f"malformed {cls.NAME} value: missing auth scheme")
        rest = m.end()
        if _TOKEN68_RE.match(value, rest) and "=" not in value[rest:].rstrip("= \t\r\n"):
            return cls(m.group(1), (), value[rest:].strip())
        return cls(m.group(1), _parse_params(value, rest, cls.NAME))

    def __str__(self) -> str:
        if self.token68 is not None:
            return f"{self.scheme} {self.token68}"
        if not self.params:
            return self.scheme
        return f"{self.scheme} {_format_params(self.params, self._BARE)}"

    def param(self, name: str) -> str | None:
        """Value of the first parameter called ``name`` (case-insensitive), or None."""
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Self:
        """Copy with ``name`` set to ``value`` (replacing in place) or removed (None)."""
        lname = name.lower()
        out: list[tuple[str, str]] = []
        done = False
        for key, old in self.params:
            if key.lower() == lname:
                if value is not None and not done:
                    out.append((key, value))
                done = True
            else:
                out.append((key, old))
        if not done and value is not None:
            out.append((name, value))
        return attrs.evolve(self, params=tuple(out))

    @property
    def is_digest(self) -> bool:
        """True for the Digest scheme (compared case-insensitively)."""
        return self.scheme.lower() == "digest"

    @property
    def realm(self) -> str | None:
        """The ``realm`` parameter."""
        return self.param("realm")

    @property
    def nonce(self) -> str | None:
        """The ``nonce`` parameter."""
        return self.param("nonce")

    @property
    def opaque(self) -> str | None:
        """The ``opaque`` parameter."""
        return self.param("opaque")

    @property
    def algorithm(self) -> str:
        """The ``algorithm`` parameter upper-cased; "MD5" when absent (RFC 7616 §3.3)."""
        value = self.param("algorithm")
        return "MD5" if value is None else value.upper()

    @property
    def userhash(self) -> bool:
        """The ``userhash`` flag (RFC 7616 §3.4.4), false when absent."""
        value = self.param("userhash")
        return value is not None and value.lower() == "true"


@attrs.frozen
class AuthChallenge(_AuthBase):
    """A challenge (WWW-Authenticate or Proxy-Authenticate value)."""

    _BARE: ClassVar[frozenset[str]] = _CHALLENGE_BARE

    @property
    def qop_options(self) -> tuple[str, ...]:
        """The offered qop values, lower-cased (``qop="auth,auth-int"``); () if none."""
        value = self.param("qop")
        if value is None:
            return ()
        return tuple(q.strip().lower() for q in value.split(",") if q.strip())

    @property
    def stale(self) -> bool:
        """True when the server says the nonce was stale but the credentials were fine."""
        value = self.param("stale")
        return value is not None and value.lower() == "true"

    @property
    def domain(self) -> tuple[str, ...]:
        """The protection space URIs of ``domain`` (space-separated), () if absent."""
        value = self.param("domain")
        return tuple(value.split()) if value else ()

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter (RFC 7616 §3.3; only "UTF-8" is defined)."""
        return self.param("charset")


@attrs.frozen
class AuthCredentials(_AuthBase, _QopFields):
    """Credentials (Authorization or Proxy-Authorization value)."""

    _BARE: ClassVar[frozenset[str]] = _CREDENTIALS_BARE

    @property
    def username(self) -> str | None:
        """The user name: ``username``, or ``username*`` decoded (RFC 7616 §3.4.4)."""
        value = self.param("username")
        if value is not None:
            return value
        ext = self.param("username*")
        if ext is None:
            return None
        # RFC 5987 §3.2: ext-value = charset "'" [ language ] "'" value-chars
        parts = ext.split("'", 2)
        if len(parts) != 3:
            return None
        try:
            return urllib.parse.unquote(parts[2], encoding=parts[0] or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            return None

    @property
    def uri(self) -> str | None:
        """The ``uri`` parameter (the digest-uri)."""
        return self.param("uri")

    @property
    def response(self) -> str | None:
        """The ``response`` parameter (the request digest)."""
        return self.param("response")


@attrs.frozen
class WWWAuthenticate(AuthChallenge):
    """``WWW-Authenticate`` (RFC 3261 §20.44): a UAS or registrar's challenge in a 401."""

    NAME: ClassVar[str] = "WWW-Authenticate"


@attrs.frozen
class ProxyAuthenticate(AuthChallenge):
    """``Proxy-Authenticate`` (RFC 3261 §20.27): a proxy's challenge in a 407."""

    NAME: ClassVar[str] = "Proxy-Authenticate"


@attrs.frozen
class Authorization(AuthCredentials):
    """``Authorization`` (RFC 3261 §20.7): credentials answering a WWW-Authenticate."""

    NAME: ClassVar[str] = "Authorization"


@attrs.frozen
class ProxyAuthorization(AuthCredentials):
    """``Proxy-Authorization`` (RFC 3261 §20.28): credentials answering a Proxy-Authenticate."""

    NAME: ClassVar[str] = "Proxy-Authorization"


@attrs.frozen
class AuthenticationInfo(_QopFields):
    """``Authentication-Info`` (RFC 3261 §20.6, RFC 7616 §3.5): parameters, no scheme."""

    params: AuthParams = ()

    NAME: ClassVar[str] = "Authentication-Info"
    MULTI: ClassVar[bool] = False

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``nextnonce="...", qop=auth, rspauth="..."``.

        Raises:
            SipParseError: the value is not a list of auth-params.
        """
        params = _parse_params(value, 0, cls.NAME)
        if not params:
            raise SipParseError("empty Authentication-Info value")
        return cls(params)

    def __str__(self) -> str:
        return _format_params(self.params, _INFO_BARE)

    def param(self, name: str) -> str | None:
        """Value of the first parameter called ``name`` (case-insensitive), or None."""
        return get_param(self.params, name)

    @property
    def nextnonce(self) -> str | None:
        """The nonce the client should use for its next request."""
        return self.param("nextnonce")

    @property
    def rspauth(self) -> str | None:
        """The server's response digest proving it knows the password (RFC 7616 §3.5)."""
        return self.param("rspauth")
