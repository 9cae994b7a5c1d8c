"""The errors of rvoip_sip_core: one base, and the remote (wire) parse error."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_EMPTY: Mapping[str, str] = MappingProxyType({})


class SipError(Exception):
    """Base of every error raised by rvoip_sip_core."""


class SipParseError(SipError):
    """Bytes from the wire are not a valid SIP message (the peer's fault).

    Entry points that read wire bytes raise only this. ``status`` is the SIP
    status to answer with (400 by default; 505 unknown version, 413 too large,
    416 unsupported URI scheme, 420 bad extension). ``recovered`` holds the raw
    values of Via, From, To, Call-ID and CSeq (keys lower-case canonical names:
    ``via``, ``from``, ``to``, ``call-id``, ``cseq``) that could still be read,
    so the layer above can answer the request; ``is_request`` tells whether the
    start line looked like a request (None when unknown).
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int = 400,
        recovered: Mapping[str, str] | None = None,
        is_request: bool | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.recovered: Mapping[str, str] = (
            MappingProxyType(dict(recovered)) if recovered else _EMPTY
        )
        self.is_request = is_request

    def __repr__(self) -> str:
        return f"SipParseError({self.reason!r}, status={self.status})"


class SipUsageError(SipError, ValueError):
    """The program asked for something invalid (a local error, not the peer's)."""
