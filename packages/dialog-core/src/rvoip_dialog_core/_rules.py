"""Small RFC rules the dialog layer applies: extensions, bodies, glare delay, sipfrag."""

from __future__ import annotations

import random
import re

from rvoip_sip_core import Request, Response, SipParseError, SipUri
from rvoip_sip_core._lexer import split_list

from ._config import DialogConfig

__all__ = [
    "glare_delay",
    "malformed",
    "option_tags",
    "parse_sipfrag_status",
    "sipfrag",
    "unacceptable_content_type",
    "unsupported_extensions",
]

_SIPFRAG_RE = re.compile(rb"\s*SIP/2\.0\s+(\d{3})\b")


# Methods that neither create nor refresh a dialog: the layer (and the TU) read none of
# their Contact, Route, Record-Route or Request-URI, so those are not parsed for them.
_NO_TARGET = frozenset({"ACK", "BYE", "CANCEL"})


def malformed(message: Request | Response) -> SipParseError | None:
    """Parse every header the dialog layer reads; the error when one is malformed.

    The layer checks this first so that no parse error can escape later. The error's
    ``status`` (400 usually) is what to answer; 0 means the message cannot be answered
    (its To, From, Call-ID, CSeq or Via is unreadable).
    """
    # hot path (every message): the headers the transaction layer parsed are cached on the
    # message; the others are parsed only when the layer reads them for this method.
    try:
        cseq = message.cseq
        message.call_id, message.top_via, message.to, message.from_  # noqa: B018
    except SipParseError as exc:
        return SipParseError(exc.reason, status=0)
    is_request = isinstance(message, Request)
    method = message.method if isinstance(message, Request) else cseq.method
    targets = method not in _NO_TARGET
    try:
        if targets:
            message.contacts, message.record_routes, message.routes  # noqa: B018
        message.content_type  # noqa: B018
        headers = message.headers
        # RFC 3261 §8.2.2.3: Require is processed (420) except in ACK and CANCEL; Supported
        # is read for 100rel/timer in INVITE and UPDATE exchanges. (``in`` first: get_all
        # of an absent header costs a caught exception.)
        if (targets or (is_request and method == "BYE")) and "Require" in headers:
            for line in headers.get_all("Require"):
                split_list(line)
        if targets and "Supported" in headers:
            for line in headers.get_all("Supported"):
                split_list(line)
        if targets and isinstance(message, Request):
            message.uri  # noqa: B018
    except SipParseError as exc:
        return exc
    if is_request:
        return _request_fault(message, method, cseq.method)  # type: ignore[arg-type]
    return None


# Requests that establish a dialog or refresh its target (RFC 3261 §8.1.1.8, §12.2;
# RFC 3311 §5.1): their Contact becomes the remote target.
_TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})


def _request_fault(request: Request, method: str, cseq_method: str) -> SipParseError | None:
    """The dialog-specific fault of a well-parsed request, as a 400 naming it (or None)."""
    if cseq_method != method:
        # RFC 3261 §8.1.1.5: "The method MUST match that of the request."
        return SipParseError("CSeq method does not match the request method", status=400)
    if method in _TARGET_REFRESH:
        contacts = request.contacts
        # RFC 3261 §8.1.1.8: "the Contact header field MUST be present and contain exactly
        # one SIP or SIPS URI in any request that can result in the establishment of a
        # dialog" (an in-dialog refresh may omit it: the remote target then stays).
        if not contacts:
            if request.to.tag is None:
                return SipParseError("Missing Contact", status=400)
        elif len(contacts) != 1:
            return SipParseError("Contact must hold exactly one URI", status=400)
        else:
            uri = contacts[0].uri
            if uri is None:
                return SipParseError("Contact '*' is only allowed in REGISTER", status=400)
            if not isinstance(uri, SipUri):
                return SipParseError("Contact must be a SIP or SIPS URI", status=400)
    return None


def option_tags_strict(message: Request | Response, header: str) -> set[str]:
    """Like :func:`option_tags` but raising SipParseError on a malformed list."""
    return {t.lower() for line in message.headers.get_all(header) for t in split_list(line)}


def option_tags(message: Request | Response, header: str) -> set[str]:
    """The option tags of every ``header`` line (Supported, Require …), lower-cased."""
    if header not in message.headers:
        return set()  # hot path: get_all of an absent header costs a caught exception
    try:
        return {t.lower() for line in message.headers.get_all(header) for t in split_list(line)}
    except SipParseError:
        return set()


def unsupported_extensions(request: Request, config: DialogConfig) -> list[str]:
    """RFC 3261 §8.2.2.3: option tags in ``Require`` that we do not support (answer 420).

    ACK and CANCEL are exempt: their Require is not processed.
    """
    if request.method in ("ACK", "CANCEL") or "Require" not in request.headers:
        return []
    supported = config.supported_lower
    out: list[str] = []
    for line in request.headers.get_all("Require"):
        for tag in split_list(line):
            if tag.lower() not in supported and tag not in out:
                out.append(tag)
    return out


def accepted_types(method: str, config: DialogConfig) -> tuple[str, ...] | None:
    """Content types a request method may carry; None when any type is accepted."""
    if method in ("INVITE", "UPDATE", "PRACK", "ACK"):
        return config.session_content_types
    if method == "INFO":
        return config.info_content_types
    return None


def unacceptable_content_type(request: Request, config: DialogConfig) -> bool:
    """RFC 3261 §8.2.3: a body whose type we cannot handle is answered 415 (with Accept)."""
    if not request.body:
        return False
    accepted = accepted_types(request.method, config)
    if accepted is None:
        return False
    ctype = request.content_type
    if ctype is None:
        # RFC 3261 §20.15: a body without Content-Type; SDP is the only sensible guess.
        return request.method not in ("INVITE", "UPDATE", "PRACK", "ACK")
    mime = f"{ctype.type}/{ctype.subtype}".lower()
    return all(mime != a.lower() for a in accepted)


def glare_delay(owns_call_id: bool, rng: random.Random) -> float:
    """RFC 3261 §14.1: the wait before re-sending a re-INVITE that got 491, in 10 ms units.

    2.1–4 s when we generated the Call-ID (we are the dialog's original UAC), 0–2 s otherwise.
    """
    if owns_call_id:
        return rng.randint(210, 400) / 100
    return rng.randint(0, 200) / 100


def sipfrag(status: int, reason: str) -> bytes:
    """A ``message/sipfrag;version=2.0`` body carrying a status line (RFC 3515 §2.4.5)."""
    return f"SIP/2.0 {status} {reason}\r\n".encode()


def parse_sipfrag_status(body: bytes) -> int | None:
    """The status code of a sipfrag status line, or None when the body is not one."""
    m = _SIPFRAG_RE.match(body)
    return int(m.group(1)) if m else None
