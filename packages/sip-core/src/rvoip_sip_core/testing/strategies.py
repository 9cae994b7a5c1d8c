"""Hypothesis strategies for SIP messages (for this package's tests and the layers above).

Generated messages are in the form `parse_message` gives back (values without
surrounding LWS, a correct Content-Length last), so
``parse_message(message.encode()) == message`` holds.
"""

from __future__ import annotations

from hypothesis import strategies as st

import rvoip_sip_core.testing.header_strategies as hs

from .._builders import default_reason, make_request, make_response
from .._headers import From, To
from .._headers_container import Headers
from .._message import Message, Request, Response
from .._uri import SipUri

__all__ = [
    "header_names",
    "header_values",
    "messages",
    "request_uris",
    "requests",
    "responses",
    "sip_tokens",
    "valid_requests",
    "valid_responses",
    "wire_messages",
]

_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
_HOST_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_METHODS = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO"]
_KNOWN_NAMES = [
    "Via",
    "v",
    "From",
    "f",
    "To",
    "Call-ID",
    "i",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Subject",
    "User-Agent",
    "Allow",
    "Supported",
    "Record-Route",
    "Route",
]


def sip_tokens(min_size: int = 1, max_size: int = 16) -> st.SearchStrategy[str]:
    """RFC 3261 §25.1 tokens (methods, header names, parameter names)."""
    return st.text(_TOKEN_ALPHABET, min_size=min_size, max_size=max_size)


def header_names() -> st.SearchStrategy[str]:
    """Known header names (long and compact) and arbitrary extension names."""
    # Content-Length is left out: the message strategies add the correct one.
    return st.one_of(
        st.sampled_from(_KNOWN_NAMES),
        sip_tokens().filter(lambda name: name.lower() not in ("content-length", "l")),
    )


def header_values(max_size: int = 40) -> st.SearchStrategy[str]:
    """Any text without CR/LF or surrogates, without surrounding SP/HT (raw header values)."""
    chars = st.characters(codec="utf-8", exclude_characters="\r\n")
    return st.text(chars, max_size=max_size).map(lambda value: value.strip(" \t"))


def request_uris() -> st.SearchStrategy[str]:
    """Simple ``sip:``/``sips:`` Request-URIs (user@host[:port])."""
    label = st.text(_HOST_ALPHABET, min_size=1, max_size=10)
    return st.builds(
        lambda scheme, user, host, port: (
            f"{scheme}:{user}@{host}.example" + ("" if port is None else f":{port}")
        ),
        st.sampled_from(["sip", "sips"]),
        label,
        label,
        st.none() | st.integers(1, 65535),
    )


def _headers(body: bytes) -> st.SearchStrategy[Headers]:
    pairs = st.lists(st.tuples(header_names(), header_values()), max_size=12)
    return pairs.map(lambda items: Headers([*items, ("Content-Length", str(len(body)))]))


def requests() -> st.SearchStrategy[Request]:
    """Requests with arbitrary headers and binary bodies."""
    return st.binary(max_size=64).flatmap(
        lambda body: st.builds(
            Request,
            st.sampled_from(_METHODS) | sip_tokens(),
            request_uris(),
            _headers(body),
            st.just(body),
        )
    )


def responses() -> st.SearchStrategy[Response]:
    """Responses with any status 100-699, usual or arbitrary reason phrases."""

    def build(status: int, reason: str | None, headers: Headers, body: bytes) -> Response:
        return Response(status, default_reason(status) if reason is None else reason, headers, body)

    reasons = st.none() | header_values(max_size=30)
    return st.binary(max_size=64).flatmap(
        lambda body: st.builds(build, st.integers(100, 699), reasons, _headers(body), st.just(body))
    )


def messages() -> st.SearchStrategy[Message]:
    """Requests and responses."""
    return st.one_of(requests(), responses())


def wire_messages() -> st.SearchStrategy[bytes]:
    """Serialized messages (for framer and parser properties)."""
    return messages().map(lambda message: message.encode())


def _request_uris() -> st.SearchStrategy[SipUri]:
    # RFC 3261 §19.1.5: no URI headers in a Request-URI (validate() refuses them).
    return hs.sip_uris().filter(lambda uri: not uri.headers)


def _tagged(
    cls: type[From] | type[To], tag: st.SearchStrategy[str | None]
) -> st.SearchStrategy[From | To]:
    return st.builds(
        lambda uri, name, params, t: cls(
            uri, display_name=name, params=params + ((("tag", t),) if t else ())
        ),
        hs.sip_uris(),
        hs.display_names(),
        hs.generic_params(),
        tag,
    )


def valid_requests() -> st.SearchStrategy[Request]:
    """Requests that pass `validate`: typed Via, From, To, Call-ID, CSeq, Contact, a body."""
    tag = st.text(_HOST_ALPHABET, min_size=1, max_size=12)
    return st.builds(
        lambda method, uri, via, from_, to, call_id, seq, contact, body: make_request(
            method,
            uri,
            from_=from_,
            to=to,
            call_id=call_id,
            cseq=seq,
            via=via,
            contact=contact,
            body=body,
        ),
        st.sampled_from(_METHODS) | sip_tokens(),
        _request_uris(),
        hs.vias(),
        _tagged(From, tag),
        _tagged(To, st.none()),
        st.builds(lambda a, b: f"{a}@{b}", sip_tokens(), sip_tokens()),
        st.integers(0, 2**31 - 1),
        st.none() | hs.contacts(),
        st.binary(max_size=64),
    )


def valid_responses() -> st.SearchStrategy[Response]:
    """Responses built with `make_response` to `valid_requests` (To tag added)."""
    return st.builds(
        lambda request, status, tag: make_response(request, status, to_tag=tag),
        valid_requests(),
        st.integers(100, 699),
        st.none() | st.text(_HOST_ALPHABET, min_size=1, max_size=12),
    )
