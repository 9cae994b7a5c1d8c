"""The Via header (RFC 3261 §20.42, §18.2.1; RFC 3581 rport; RFC 5118 IPv6)."""

from __future__ import annotations

import re
from typing import ClassVar, Self

import attrs

from .._errors import SipParseError
from .._lexer import normalize_lws, parse_params, split_simple_params
from .._uri import _check_ipv6
from ._common import TOKEN, ParamsMixin, is_digits, parse_int

__all__ = ["Via"]

# Fast path: "SIP/2.0/UDP host[:port][;name[=value]]..." with no LWS and no quotes.
_FAST_RE = re.compile(
    r"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9][A-Za-z0-9\-.]*)(?::([0-9]{1,5}))?"
    r"(;[A-Za-z0-9\-.!%*_+`'~;=]*)?\Z"
)
# RFC 3261 §25.1: via-parm = sent-protocol LWS sent-by *( SEMI via-params )
#   sent-protocol = protocol-name SLASH protocol-version SLASH transport (SLASH = SWS "/" SWS)
#   sent-by = host [ COLON port ]
_GENERAL_RE = re.compile(
    r"[ \t]*(" + TOKEN + r")[ \t]*/[ \t]*(" + TOKEN + r")[ \t]*/[ \t]*(" + TOKEN + r")"
    r"[ \t]+(\[[^\]]*\]|[A-Za-z0-9_][A-Za-z0-9\-_.]*)"
    r"(?:[ \t]*:[ \t]*([0-9]+))?[ \t]*(;.*)?\Z",
    re.DOTALL,
)
_HOST_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9\-_.]*[A-Za-z0-9_.])?\Z")


@attrs.frozen
class Via(ParamsMixin):
    """One Via element: ``SIP/2.0/UDP host:port;branch=...``.

    ``transport`` is upper-cased; ``host`` keeps IPv6 brackets; ``params`` hold the
    via-params in order (values as written, e.g. ``received=[2001:db8::9:255]``).
    """

    NAME: ClassVar[str] = "Via"
    MULTI: ClassVar[bool] = True

    transport: str
    host: str
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    protocol: str = attrs.field(default="SIP/2.0", kw_only=True)

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse one Via element.

        Raises:
            SipParseError: malformed sent-protocol, sent-by or parameters.
        """
        m = _FAST_RE.match(value)
        if m is not None:
            transport, host, port, ptext = m.groups()
            params = split_simple_params(ptext) if ptext else ()
            iport = None if port is None else int(port)
            if params is not None and host[-1] != "-" and (iport is None or iport <= 65535):
                via = cls(
                    transport if transport.isupper() else transport.upper(), host, iport, params
                )
                if ptext:
                    # The fast path ensures non-empty token values; only ttl, rport values
                    # and bare branch/received/maddr flags need the full check.
                    low = ptext.lower() + ";"
                    if (
                        "ttl" in low
                        or "rport=" in low
                        or "branch;" in low
                        or "received;" in low
                        or "maddr;" in low
                    ):
                        via._check_params()
                return via
        return cls._parse_general(value)

    @classmethod
    def _parse_general(cls, value: str) -> Self:
        text = normalize_lws(value).strip()
        m = _GENERAL_RE.match(text)
        if m is None:
            raise SipParseError(f"malformed Via: {value[:60]!r}")
        name, version, transport, host, port, ptext = m.groups()
        if host.startswith("["):
            _check_ipv6(host[1:-1])
        elif not _HOST_RE.match(host):
            raise SipParseError(f"invalid Via host {host!r}")
        params = parse_params(ptext) if ptext else ()
        via = cls(
            transport.upper(),
            host,
            None if port is None else parse_int(port, "Via port", 0, 65535),
            params,
            protocol=f"{name.upper()}/{version}",
        )
        via._check_params()
        return via

    def _check_params(self) -> None:
        # RFC 3261 §20.42: via-ttl = 0-255; RFC 3581 §6: rport = [EQUAL 1*DIGIT].
        for k, v in self.params:
            lk = k.lower()
            if lk == "ttl" and (v is None or not is_digits(v) or len(v) > 10 or int(v) > 255):
                raise SipParseError(f"invalid Via ttl {v!r}")
            if lk == "rport" and v is not None and not (is_digits(v) and len(v) <= 5):
                raise SipParseError(f"invalid Via rport {v!r}")
            if lk in ("branch", "received", "maddr") and not v:
                raise SipParseError(f"Via {k} needs a value")

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter (transaction id, RFC 3261 §8.1.1.7)."""
        for k, v in self.params:
            if k == "branch" or k.lower() == "branch":
                return v
        return None

    @property
    def received(self) -> str | None:
        """The ``received`` parameter (source address seen by the server, §18.2.1)."""
        return self.param("received")

    @property
    def rport(self) -> int | bool | None:
        """``rport`` (RFC 3581): an int when it has a value, True as a bare flag, else None."""
        for k, v in self.params:
            if k.lower() == "rport":
                if v is None:
                    return True
                return int(v) if is_digits(v) else None
        return None

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter."""
        return self.param("maddr")

    @property
    def ttl(self) -> int | None:
        """The ``ttl`` parameter as an int."""
        v = self.param("ttl")
        return int(v) if v is not None and is_digits(v) and len(v) < 10 else None

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """``(host, port)`` as sent (port None when absent)."""
        return (self.host, self.port)

    @property
    def host_bare(self) -> str:
        """The host without IPv6 brackets."""
        h = self.host
        return h[1:-1] if h.startswith("[") else h

    def __str__(self) -> str:
        hp = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{self.protocol}/{self.transport} {hp}{self._params_text()}"
