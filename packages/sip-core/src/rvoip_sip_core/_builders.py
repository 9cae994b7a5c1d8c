"""Builders: new requests, responses to requests (RFC 3261 §8.2.6), identifiers.

Randomness comes from an injected `random.Random` so tests can seed it; by default it is
:data:`SYSTEM_RANDOM` (the OS CSPRNG), because tags, branches and Call-IDs go on the
wire and must not be predictable. Nothing here reads a clock.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from ._errors import SipUsageError
from ._headers import CSeq, From, To, Via
from ._headers_container import _LWS, _TOKEN, Headers, _make_part
from ._memo import remember
from ._message import Request, Response
from ._names import header_key
from ._uri import Uri

__all__ = [
    "REASON_PHRASES",
    "SYSTEM_RANDOM",
    "default_reason",
    "make_request",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
]

SYSTEM_RANDOM: random.Random = random.SystemRandom()
"""The default source of wire identifiers: ``random.SystemRandom`` reads ``os.urandom``.

A Mersenne Twister (``random.Random``) can be reconstructed from 624 outputs, after
which an attacker predicts every later tag, branch and Call-ID (RFC 3261 §19.3 wants tags
cryptographically random; §8.1.1.7 branches unique). Tests inject a seeded generator.
"""

BRANCH_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7 magic cookie

# RFC 3261 §21 plus later RFCs (reference in the comment where it is not 3261).
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",  # RFC 6228
    200: "OK",
    202: "Accepted",  # RFC 3265 / 6665
    204: "No Notification",  # RFC 5839
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",  # RFC 3903
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",  # RFC 4412
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",  # RFC 4028
    423: "Interval Too Brief",
    428: "Use Identity Header",  # RFC 8224
    429: "Provide Referrer Identity",  # RFC 3892
    433: "Anonymity Disallowed",  # RFC 5079
    436: "Bad Identity Info",  # RFC 8224
    437: "Unsupported Credential",  # RFC 8224
    438: "Invalid Identity Header",  # RFC 8224
    439: "First Hop Lacks Outbound Support",  # RFC 5626
    440: "Max-Breadth Exceeded",  # RFC 5393
    469: "Bad Info Package",  # RFC 6086
    470: "Consent Needed",  # RFC 5360
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",  # RFC 6665
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",  # RFC 3329
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    555: "Push Notification Service Not Supported",  # RFC 8599
    580: "Precondition Failure",  # RFC 3312
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",  # RFC 8197
    608: "Rejected",  # RFC 8688
}

# RFC 3261 §8.2.6: what a response copies from its request besides the Via lines
# (Timestamp only into a 100, §8.2.6.1).
_COPY_ORDER = ("from", "to", "call-id", "cseq", "timestamp")
_SHARED = (From, CSeq, Via)

# Extra header lines of responses, checked and keyed once per distinct (name, text): a
# UAS adds the same Allow, Supported, Contact, Server, Session-Expires and Content-Type
# lines to every answer (hot path: ~0.5 us of checks and keying per line otherwise).
# Bounded like every memo here (count, and text size through `remember`).
_LINES: dict[tuple[str, str], tuple[tuple[str, str, str], str]] = {}
_LINES_LIMIT = 1024


def _line(name: str, value: object) -> tuple[tuple[str, str, str], str]:
    """One extra header line, checked (`_make_part`), and its lookup key; memoised."""
    if type(value) is not str:
        part = _make_part(name, value)
        return part, header_key(part[0])
    made = _LINES.get((name, value))
    if made is None:
        part = _make_part(name, value)
        made = remember(
            _LINES, (name, value), (part, header_key(part[0])), _LINES_LIMIT, len(name) + len(value)
        )
    return made


_CLASS_REASONS = {
    1: "Trying",
    2: "OK",
    3: "Redirection",
    4: "Client Error",
    5: "Server Error",
    6: "Global Failure",
}


def default_reason(status: int) -> str:
    """Return the usual reason phrase of a status code (its class's for unknown codes).

    Raises:
        SipUsageError: status is not in 100..699.
    """
    if not 100 <= status <= 699:
        raise SipUsageError(f"status {status} is not a SIP status code")
    return REASON_PHRASES.get(status) or _CLASS_REASONS[status // 100]


def new_branch(rng: random.Random = SYSTEM_RANDOM) -> str:
    """Return a fresh Via branch: the RFC 3261 magic cookie and 64 random bits.

    Args:
        rng: the random source (the OS CSPRNG unless a test injects a seeded one).
    """
    return f"{BRANCH_COOKIE}{rng.getrandbits(64):016x}"


def new_tag(rng: random.Random = SYSTEM_RANDOM) -> str:
    """Return a From/To tag with 64 random bits (RFC 3261 §19.3 asks for at least 32).

    Args:
        rng: the random source (the OS CSPRNG unless a test injects a seeded one).
    """
    return f"{rng.getrandbits(64):016x}"


def new_call_id(rng: random.Random = SYSTEM_RANDOM, host: str | None = None) -> str:
    """Return a globally unique Call-ID: 96 random bits ``@host`` (RFC 3261 §8.1.1.4).

    Args:
        rng: the random source (the OS CSPRNG unless a test injects a seeded one).
        host: the part after ``@``; None leaves it out (``callid = word ["@" word]``).
    """
    if host is None:
        return f"{rng.getrandbits(96):024x}"
    return f"{rng.getrandbits(96):024x}@{host}"


def make_request(
    method: str,
    uri: Uri | str,
    *,
    from_: object,
    to: object,
    call_id: str,
    cseq: int,
    via: object | None,
    contact: object | None = None,
    max_forwards: int | None = 70,
    headers: Iterable[tuple[str, object]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """Build a request with the RFC 3261 §8.1.1 headers in the usual order.

    Typed header values (Via, From, To, Contact ...) are written with str();
    ``via=None`` leaves the Via to the transport layer. Content-Length is set
    to the body length.

    Raises:
        SipUsageError: an invalid method, CSeq, header name, or CR/LF in a value.
    """
    if not _TOKEN.fullmatch(method):
        raise SipUsageError(f"invalid method {method!r}")
    if not 0 <= cseq <= 2**31 - 1:
        raise SipUsageError(f"CSeq {cseq} out of range")  # RFC 3261 §8.1.1.5
    items: list[tuple[str, object]] = []
    if via is not None:
        items.append(("Via", via))
    if max_forwards is not None:
        items.append(("Max-Forwards", max_forwards))
    items += [("From", from_), ("To", to), ("Call-ID", call_id), ("CSeq", f"{cseq} {method}")]
    if contact is not None:
        items.append(("Contact", contact))
    items.extend(headers)
    if content_type is not None:
        items.append(("Content-Type", content_type))
    items.append(("Content-Length", len(body)))
    return Request(method, uri, Headers(items), body)


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, object]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """Build a response to ``request`` as RFC 3261 §8.2.6 says.

    Via (every line, in order), From, To, Call-ID and CSeq are copied as
    received; ``to_tag`` is added to To when the request's To has no tag (pass
    one made with `new_tag`; leave it None for 100 Trying). A 100 copies
    Timestamp (RFC 3261 §8.2.6.1).

    Raises:
        SipUsageError: status outside 100..699.
        SipParseError: the request's To header does not parse (only checked
            when a tag is to be added).
    """
    reason = default_reason(status) if reason is None else reason
    if to_tag is not None and ("\r" in to_tag or "\n" in to_tag):
        raise SipUsageError("To tag contains CR or LF")
    # hot path: copy the request's raw lines (already split and keyed by the parser)
    # instead of iterating, re-keying and re-validating every header.
    source = request.headers
    src_parts = source._parts
    src_keys = source._keys
    if src_keys.count("via") == 1:
        parts = [src_parts[src_keys.index("via")]]
    else:
        parts = [part for part, key in zip(src_parts, src_keys, strict=True) if key == "via"]
    keys = ["via"] * len(parts)
    add_tag = False
    has_to = False
    for key in _COPY_ORDER:
        if key not in src_keys or (key == "timestamp" and status != 100):
            continue
        part = src_parts[src_keys.index(key)]
        if key == "to":
            has_to = True
            if to_tag is not None and request.to.tag is None:
                # RFC 3261 §8.2.6.2: the UAS adds a To tag unless one is there.
                part = (part[0].rstrip(_LWS), ":", f" {part[2].strip(_LWS)};tag={to_tag}")
                add_tag = True
        parts.append(part)
        keys.append(key)
    for name, value in headers:
        # hot path: the memo lookup inline; only exact str values are memoised
        made = _LINES.get((name, value)) if type(value) is str else None
        part, key = made or _line(name, value)
        parts.append(part)
        keys.append(key)
    if content_type is not None:
        parts.append(_line("Content-Type", content_type)[0])
        keys.append("content-type")
    parts.append(("Content-Length", ":", f" {len(body)}"))
    keys.append("content-length")
    response = Response(status, reason, Headers._from_parts(parts, keys), body)
    # The copied lines are the request's own: share the typed values already parsed.
    cache = request._cache
    seeded = response._cache
    for cls in _SHARED:
        typed = cache.get(cls)
        if typed is not None:
            seeded[cls] = typed
    typed_vias = cache.get((Via, "all"))
    if typed_vias is not None:
        seeded[(Via, "all")] = typed_vias
    to = cache.get(To)
    if isinstance(to, To) and has_to:
        if not add_tag:
            seeded[To] = to
        elif to_tag and _TOKEN.fullmatch(to_tag):
            seeded[To] = To(to.uri, to.display_name, (*to.params, ("tag", to_tag)))
    return response
