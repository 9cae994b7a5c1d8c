"""What a UAS checks before acting on a request (RFC 3261 §8.2), as pure functions.

`check_request` looks at a parsed (lazily typed) `Request` and returns the first fault
as a `RequestFault` (status, reason phrase, Warning text) or None when the request may
be processed. It reads raw header lines and the few typed values the transaction layer
parses anyway (CSeq, Max-Forwards), so the valid path costs a handful of list scans.

Max-Forwards 0 is *not* a fault for a UAS: RFC 3261 §16.3 (answer 483 Too Many Hops) is a
proxy's rule, and a UAS processes such a request (§8.2 has no Max-Forwards check). A
proxy or forwarding application calls `check_max_forwards` before forwarding.
"""

from __future__ import annotations

import attrs

from ._errors import SipParseError
from ._message import Request

__all__ = [
    "REQUIRED_REQUEST_HEADERS",
    "SINGLE_VALUE_HEADERS",
    "SUPPORTED_URI_SCHEMES",
    "RequestFault",
    "check_max_forwards",
    "check_request",
]

# RFC 3261 §8.1.1: a valid request holds at least To, From, CSeq, Call-ID, Max-Forwards
# and Via (lookup keys: lower-case long names). Max-Forwards is the UAC's duty; a UAS needs
# it for nothing (§8.2 checks none of it) and RFC 2543-era or sloppy UAs leave it out, so a
# missing one is accepted (as a proxy would add 70, §16.6 step 3) and checked when present.
REQUIRED_REQUEST_HEADERS = ("via", "to", "from", "call-id", "cseq")

# RFC 3261 §7.3.1: only headers whose grammar is a comma-separated list may appear on
# several lines; these are single-valued (RFC 4475 §3.1.2.19 `multi01`).
SINGLE_VALUE_HEADERS = (
    "to",
    "from",
    "call-id",
    "cseq",
    "max-forwards",
    "content-length",
    "content-type",
)

_REQUIRED = frozenset(REQUIRED_REQUEST_HEADERS)
# Max-Forwards values as usually written (0..255, no leading zeros): one set lookup.
_HOPS = frozenset(str(hops) for hops in range(256))
_LWS = " \t"

# RFC 3261 §8.2.2.1: a Request-URI of a scheme we do not understand gets 416.
SUPPORTED_URI_SCHEMES = frozenset({"sip", "sips", "tel"})

_NAMES = {
    "via": "Via",
    "to": "To",
    "from": "From",
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "max-forwards": "Max-Forwards",
    "content-length": "Content-Length",
    "content-type": "Content-Type",
}


@attrs.frozen
class RequestFault:
    """Why a request must be refused, and how to answer it.

    Attributes:
        status: the SIP status to answer with (400, 416, 505, or 483 from
            `check_max_forwards`).
        reason: the reason phrase, naming the problem (RFC 3261 §21.4.1: "SHOULD
            identify the syntax problem in more detail, e.g. Missing Call-ID header
            field").
        warning: the fault for a ``Warning: 399 <host> "<warning>"`` header (RFC 3261
            §20.43); plain text without double quotes or backslashes.
    """

    status: int
    reason: str
    warning: str


def _fault(status: int, reason: str, warning: str) -> RequestFault:
    # The warning goes into a quoted-string: no quotes, backslashes or control characters.
    text = "".join(c if c.isprintable() and c not in '"\\' else "?" for c in warning)
    return RequestFault(status, reason, text)


def _bad(reason: str) -> RequestFault:
    return _fault(400, reason, reason)


def check_request(
    request: Request, *, schemes: frozenset[str] = SUPPORTED_URI_SCHEMES
) -> RequestFault | None:
    """Check what a UAS must check before acting on ``request`` (RFC 3261 §8.2).

    In order: SIP version (505, §8.2.2 / §21.5.6); the required headers present
    (§8.1.1; RFC 4475 `insuf`); single-value headers not repeated with different values
    (§7.3.1; RFC 4475 `multi01`); an empty Call-ID; CSeq parses (number < 2**31) and its
    method equals the request method (§8.1.1.5); Max-Forwards, when present (a missing
    one is accepted), a number in 0..255 (§20.22); Content-Length, when present, a
    number equal to the body length (§20.14); the Request-URI scheme supported (416,
    §8.2.2.1). Max-Forwards 0 is accepted (see `check_max_forwards`).

    Args:
        request: a parsed request (e.g. from `parse_message`).
        schemes: Request-URI schemes this UAS understands (lower case).

    Returns:
        The first fault found, or None when the request may be processed.
    """
    if request.version != "SIP/2.0":
        # RFC 3261 §8.2.2: a version we do not support gets 505.
        return _fault(505, "Version Not Supported", f"unsupported {request.version[:20]}")
    headers = request.headers
    keys = headers._keys  # same package: the parser's lookup keys, one per line
    parts = headers._parts
    present = set(keys)
    # hot path: one set build and a subset test instead of a scan per header
    if not present >= _REQUIRED:
        for key in REQUIRED_REQUEST_HEADERS:
            if key not in present:
                return _bad(f"Missing {_NAMES[key]} header field")
    if len(present) != len(keys):  # some header is repeated (often Via, Contact, Route)
        for key in SINGLE_VALUE_HEADERS:
            if keys.count(key) > 1:
                values = headers._values(key)
                if any(value != values[0] for value in values):
                    return _bad(f"Conflicting {_NAMES[key]} header fields")
    if not parts[keys.index("call-id")][2].strip(_LWS):
        return _bad("Empty Call-ID header field")
    try:
        cseq = request.cseq
    except SipParseError:
        return _bad("Invalid CSeq header field")
    if cseq.method != request.method:
        # RFC 3261 §8.1.1.5: the CSeq method MUST match the request method.
        return _bad("CSeq method does not match the request method")
    if "max-forwards" in present:
        hops = parts[keys.index("max-forwards")][2].strip(_LWS)
        if hops not in _HOPS and not (hops.isascii() and hops.isdigit() and int(hops) <= 255):
            # RFC 3261 §20.22: Max-Forwards = 1*DIGIT, in 0..255 (as Message.max_forwards).
            return _bad("Invalid Max-Forwards header field")
    if "content-length" in present:
        length = parts[keys.index("content-length")][2].strip(_LWS)
        size = len(request.body)
        if length != str(size) and not (
            length.isascii() and length.isdigit() and int(length) == size
        ):
            # RFC 3261 §18.3 / §20.14: the body length must match Content-Length.
            return _bad("Invalid Content-Length header field")
    scheme = request.uri_text.partition(":")[0]
    if scheme not in schemes and scheme.lower() not in schemes:
        # RFC 3261 §8.2.2.1: "the server SHOULD reject the request with a 416".
        return _fault(416, "Unsupported URI Scheme", f"unsupported URI scheme {scheme[:20]}")
    return None


def check_max_forwards(request: Request) -> RequestFault | None:
    """RFC 3261 §16.3 step 3, for a proxy or any application that forwards ``request``.

    A UAS does not call this (it processes a request with Max-Forwards 0); an element
    about to forward does, and answers 483 when it returns a fault. A missing
    Max-Forwards is not a fault here (§16.6 step 3 adds one with 70).

    Returns:
        A 483 fault when Max-Forwards is 0, a 400 fault when it is not a number in
        0..255, else None.
    """
    try:
        hops = request.max_forwards
    except SipParseError:
        return _bad("Invalid Max-Forwards header field")
    if hops == 0:
        # RFC 3261 §16.3: "If the Max-Forwards value reaches 0 ... 483 (Too many hops)".
        return RequestFault(483, "Too Many Hops", "Max-Forwards is 0")
    return None
