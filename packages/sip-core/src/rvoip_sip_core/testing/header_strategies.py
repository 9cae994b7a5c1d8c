"""Hypothesis strategies for URIs and typed header values.

Everything generated here satisfies ``type(x).parse(str(x)) == x`` (URIs:
``parse_uri(str(u)) == u``), which the round-trip properties rely on.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from .._headers import (
    Accept,
    Allow,
    CallId,
    Contact,
    ContentDisposition,
    ContentLength,
    ContentType,
    CSeq,
    Event,
    Expires,
    From,
    MaxForwards,
    MinExpires,
    MinSE,
    PAssertedIdentity,
    ProxyRequire,
    RAck,
    Reason,
    RecordRoute,
    ReferredBy,
    ReferTo,
    Replaces,
    Require,
    RetryAfter,
    Route,
    RSeq,
    Server,
    SessionExpires,
    SubscriptionState,
    Supported,
    To,
    Unsupported,
    UserAgent,
    Via,
    Warning,
)
from .._uri import AbsoluteUri, SipUri, TelUri, Uri

__all__ = [
    "absolute_uris",
    "contacts",
    "display_names",
    "generic_params",
    "hosts",
    "name_addr_headers",
    "sip_uris",
    "tel_uris",
    "typed_headers",
    "uris",
    "vias",
]

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TOKEN = _ALNUM + "-.!%*_+`'~"
_UNRESERVED = _ALNUM + "-_.!~*'()"
_ESCAPES = ["%20", "%41", "%3B", "%40", "%25", "%00", "%C3%A9"]
# Parameter names some header classes validate; generic params avoid them.
_RESERVED_PARAMS = {
    "ttl",
    "rport",
    "branch",
    "received",
    "maddr",
    "expires",
    "retry-after",
    "cause",
    "duration",
    "tag",
    "to-tag",
    "from-tag",
}


def _tokens(max_size: int = 10) -> st.SearchStrategy[str]:
    return st.text(_TOKEN, min_size=1, max_size=max_size)


def _escaped_text(safe: str, min_size: int, max_size: int = 8) -> st.SearchStrategy[str]:
    """Text over ``safe`` characters mixed with valid %-escapes (wire form)."""
    piece = st.one_of(st.sampled_from(list(safe)), st.sampled_from(_ESCAPES))
    return st.lists(piece, min_size=min_size, max_size=max_size).map("".join)


def hosts() -> st.SearchStrategy[str]:
    """Host names, IPv4 addresses and bracketed IPv6 references (RFC 5118)."""
    label = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,6}[a-z0-9])?", fullmatch=True)
    hostname = st.lists(label, min_size=1, max_size=4).map(".".join)
    ipv4 = st.ip_addresses(v=4).map(str)
    ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
    return st.one_of(hostname, ipv4, ipv6)


def sip_uris() -> st.SearchStrategy[SipUri]:
    """SIP/SIPS URIs with user, password, port, parameters and headers (escapes included)."""
    pname = _escaped_text(_UNRESERVED + "[]/:&+$", 1)
    pvalue = st.one_of(st.none(), _escaped_text(_UNRESERVED + "[]/:&+$", 1))
    hname = _escaped_text(_UNRESERVED + "[]/?:+$", 1)
    hvalue = _escaped_text(_UNRESERVED + "[]/?:+$", 0)
    return st.builds(
        SipUri,
        scheme=st.sampled_from(["sip", "sips"]),
        user=st.one_of(st.none(), _escaped_text(_UNRESERVED + "&=+$,;?/", 1)),
        password=st.none(),
        host=hosts(),
        port=st.one_of(st.none(), st.integers(0, 65535)),
        params=st.lists(st.tuples(pname, pvalue), max_size=4).map(tuple),
        headers=st.lists(st.tuples(hname, hvalue), max_size=3).map(tuple),
    ).flatmap(
        lambda u: st.one_of(
            st.just(u),
            st.builds(
                lambda pw: SipUri(u.scheme, u.user or "u", pw, u.host, u.port, u.params, u.headers),
                _escaped_text(_UNRESERVED + "&=+$,", 0),
            ),
        )
    )


def tel_uris() -> st.SearchStrategy[TelUri]:
    """Global and local tel URIs (RFC 3966) with visual separators and parameters."""
    number = st.from_regex(r"\+?[0-9][0-9\-.()]{0,12}", fullmatch=True)
    pchars = st.text(_UNRESERVED + "[]/:&+$", min_size=1, max_size=8)
    param = st.tuples(pchars, st.one_of(st.none(), pchars))
    return st.builds(TelUri, number, st.lists(param, max_size=3).map(tuple))


def absolute_uris() -> st.SearchStrategy[AbsoluteUri]:
    """URIs of other schemes (``http``, ``urn``, ``isbn`` ...), kept as text."""
    scheme = st.from_regex(r"[a-z][a-z0-9+\-.]{0,8}", fullmatch=True).filter(
        lambda s: s not in ("sip", "sips", "tel")
    )
    opaque = st.text(_UNRESERVED + "/:?#=&@", min_size=1, max_size=20)
    return st.builds(AbsoluteUri, scheme, opaque)


def uris() -> st.SearchStrategy[Uri]:
    """Any URI a SIP header can carry."""
    return st.one_of(sip_uris(), sip_uris(), tel_uris(), absolute_uris())


def display_names() -> st.SearchStrategy[str | None]:
    """Display names: absent, empty, plain, or with quotes/backslashes/non-ASCII."""
    chars = st.characters(blacklist_categories=("Cs", "Cc"))
    return st.one_of(st.none(), st.text(chars, max_size=20))


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generic_params(max_size: int = 3) -> st.SearchStrategy[tuple[tuple[str, str | None], ...]]:
    """Header parameters: flags, token values and quoted-string values (kept quoted)."""
    name = _tokens().filter(lambda n: n.lower() not in _RESERVED_PARAMS)
    quoted = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(_quoted)
    value = st.one_of(st.none(), _tokens(), quoted)
    return st.lists(st.tuples(name, value), max_size=max_size).map(tuple)


def vias() -> st.SearchStrategy[Via]:
    """Via elements with branch/received/rport/ttl/maddr and generic params."""
    transport = st.one_of(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"]), _tokens())
    special = st.lists(
        st.one_of(
            st.tuples(st.just("branch"), _tokens().map(lambda t: "z9hG4bK" + t)),
            st.tuples(st.just("received"), hosts()),
            st.tuples(st.just("rport"), st.one_of(st.none(), st.integers(0, 65535).map(str))),
            st.tuples(st.just("ttl"), st.integers(0, 255).map(str)),
            st.tuples(st.just("maddr"), hosts()),
        ),
        max_size=3,
    ).map(tuple)
    return st.builds(
        lambda t, h, p, s, g: Via(t.upper(), h, p, s + g),
        transport,
        hosts(),
        st.one_of(st.none(), st.integers(0, 65535)),
        special,
        generic_params(),
    )


def _tagged_params() -> st.SearchStrategy[tuple[tuple[str, str | None], ...]]:
    tag = st.one_of(st.just(()), _tokens().map(lambda t: (("tag", t),)))
    return st.builds(lambda t, g: t + g, tag, generic_params())


def name_addr_headers() -> st.SearchStrategy[Any]:
    """From, To, Route, Record-Route, Refer-To, Referred-By and P-Asserted-Identity."""
    return st.one_of(
        [
            st.builds(cls, uris(), display_name=display_names(), params=_tagged_params())
            for cls in (From, To, Route, RecordRoute, ReferTo, ReferredBy, PAssertedIdentity)
        ]
    )


def contacts() -> st.SearchStrategy[Contact]:
    """Contact elements (with expires/q) and the wildcard ``*``."""
    extra = st.lists(
        st.one_of(
            st.tuples(st.just("expires"), st.integers(0, 2**32 - 1).map(str)),
            st.tuples(st.just("q"), st.sampled_from(["0", "0.5", "1", "0.001", "1.0"])),
        ),
        max_size=2,
    ).map(tuple)
    normal = st.builds(
        lambda u, d, e, g: Contact(u, display_name=d, params=e + g),
        uris(),
        display_names(),
        extra,
        generic_params(),
    )
    return st.one_of(st.just(Contact(None)), normal)


def _word() -> st.SearchStrategy[str]:
    return st.text(_TOKEN + '()<>:\\"/[]?{}', min_size=1, max_size=12)


def _call_ids() -> st.SearchStrategy[str]:
    return st.one_of(_word(), st.builds(lambda a, b: f"{a}@{b}", _word(), _word()))


def _u32() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)


def _media(cls: type[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cls, _tokens(), _tokens(), generic_params())


def _product_text() -> st.SearchStrategy[str]:
    chars = st.characters(blacklist_categories=("Cs", "Cc"))
    return st.text(chars, min_size=1, max_size=30).map(str.strip).filter(bool)


def typed_headers() -> st.SearchStrategy[Any]:
    """An instance of any typed header class of ``_headers`` (auth headers excepted)."""
    comment = st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="()\\"),
        max_size=15,
    )
    return st.one_of(
        vias(),
        name_addr_headers(),
        contacts(),
        st.builds(CallId, _call_ids()),
        st.builds(CSeq, st.integers(0, 2**31 - 1), _tokens()),
        st.builds(MaxForwards, st.integers(0, 255)),
        st.builds(ContentLength, _u32()),
        st.builds(Expires, _u32()),
        st.builds(MinExpires, _u32()),
        st.builds(RSeq, st.integers(1, 2**32 - 1)),
        st.builds(RAck, st.integers(1, 2**32 - 1), _u32(), _tokens()),
        st.builds(
            RetryAfter,
            _u32(),
            st.one_of(st.none(), comment),
            st.builds(
                lambda d, g: d + g,
                st.one_of(st.just(()), _u32().map(lambda n: (("duration", str(n)),))),
                generic_params(),
            ),
        ),
        st.builds(SessionExpires, _u32(), generic_params()),
        st.builds(MinSE, _u32(), generic_params()),
        _media(ContentType),
        _media(Accept),
        st.builds(ContentDisposition, _tokens(), generic_params()),
        *[st.builds(cls, _tokens()) for cls in (Allow, Supported, Require, ProxyRequire)],
        st.builds(Unsupported, _tokens()),
        st.builds(Event, _tokens(), generic_params()),
        st.builds(
            SubscriptionState,
            st.sampled_from(["active", "pending", "terminated"]),
            generic_params(),
        ),
        st.builds(
            lambda c, t, f, e, g: Replaces(
                c, (("to-tag", t), ("from-tag", f), *((("early-only", None),) if e else ()), *g)
            ),
            _call_ids().filter(lambda c: ";" not in c),
            _tokens(),
            _tokens(),
            st.booleans(),
            generic_params(),
        ),
        st.builds(Reason, _tokens(), generic_params()),
        st.builds(
            Warning,
            st.integers(0, 999),
            st.one_of(_tokens(), hosts()),
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
        ),
        st.builds(UserAgent, _product_text()),
        st.builds(Server, _product_text()),
    )
