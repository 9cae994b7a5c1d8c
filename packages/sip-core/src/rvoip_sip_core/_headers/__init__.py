"""Typed SIP headers and the registry the message layer uses to type raw lines.

Every class has ``NAME`` (canonical header name), ``MULTI`` (True when a header line
is a comma-separated list of elements, each parsed to one instance), ``parse(value)``
for one element (raising only SipParseError) and ``__str__`` giving the wire value.
"""

from __future__ import annotations

from ._common import ParamsMixin
from .address import (
    Contact,
    From,
    PAssertedIdentity,
    RecordRoute,
    ReferredBy,
    ReferTo,
    Route,
    To,
    parse_name_addr,
)
from .auth import (
    AuthenticationInfo,
    Authorization,
    ProxyAuthenticate,
    ProxyAuthorization,
    WWWAuthenticate,
)
from .events import Event, Reason, Replaces, Server, SubscriptionState, UserAgent, Warning
from .lists import Allow, ProxyRequire, Require, Supported, Unsupported
from .simple import (
    Accept,
    CallId,
    ContentDisposition,
    ContentLength,
    ContentType,
    CSeq,
    Expires,
    MaxForwards,
    MinExpires,
    MinSE,
    RAck,
    RetryAfter,
    RSeq,
    SessionExpires,
)
from .via import Via

__all__ = [
    "HEADER_TYPES",
    "Accept",
    "Allow",
    "AuthenticationInfo",
    "Authorization",
    "CSeq",
    "CallId",
    "Contact",
    "ContentDisposition",
    "ContentLength",
    "ContentType",
    "Event",
    "Expires",
    "From",
    "MaxForwards",
    "MinExpires",
    "MinSE",
    "PAssertedIdentity",
    "ParamsMixin",
    "ProxyAuthenticate",
    "ProxyAuthorization",
    "ProxyRequire",
    "RAck",
    "RSeq",
    "Reason",
    "RecordRoute",
    "ReferTo",
    "ReferredBy",
    "Replaces",
    "Require",
    "RetryAfter",
    "Route",
    "Server",
    "SessionExpires",
    "SubscriptionState",
    "Supported",
    "To",
    "Unsupported",
    "UserAgent",
    "Via",
    "WWWAuthenticate",
    "Warning",
    "parse_name_addr",
]

_ALL_TYPES: tuple[type, ...] = (
    Via,
    From,
    To,
    Contact,
    Route,
    RecordRoute,
    ReferTo,
    ReferredBy,
    PAssertedIdentity,
    CallId,
    CSeq,
    MaxForwards,
    ContentType,
    ContentLength,
    ContentDisposition,
    Expires,
    MinExpires,
    Allow,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    RSeq,
    RAck,
    Event,
    SubscriptionState,
    Replaces,
    SessionExpires,
    MinSE,
    Reason,
    UserAgent,
    Server,
    Accept,
    RetryAfter,
    Warning,
    WWWAuthenticate,
    Authorization,
    ProxyAuthenticate,
    ProxyAuthorization,
    AuthenticationInfo,
)

HEADER_TYPES: dict[str, type] = {t.NAME.lower(): t for t in _ALL_TYPES}  # type: ignore[attr-defined]
"""Typed header classes keyed by lower-case canonical name (``"call-id"`` → CallId)."""
