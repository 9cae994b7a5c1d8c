"""Instant messages (RFC 3428 MESSAGE): answering the ones that arrive, sending one.

A MESSAGE is a request of its own, not a call: outside a dialog (pager mode) or inside a
call's dialog. The application sees each one through ``CallHandler.on_message`` (its
answer chooses the status) and as a ``MessageReceived`` session event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import anyio

from rvoip_dialog_core import DialogId
from rvoip_session_core._authenticator import Authenticator
from rvoip_session_core._call import Call
from rvoip_session_core._events import MessageReceived
from rvoip_session_core._hooks import HookRunner
from rvoip_session_core._types import InstantMessage
from rvoip_sip_core import Request, SipParseError

__all__ = [
    "MESSAGE_MAX_PAGER_SIZE",
    "MessageService",
    "extra_headers",
]

log = logging.getLogger("rvoip_session_core")

MESSAGE_MAX_PAGER_SIZE = 1300
"""RFC 3428 §8: a pager-mode MESSAGE over a transport without congestion control (UDP)
must stay under 1300 bytes; a larger body is refused before sending unless the target
says ``transport=tcp``/``tls`` (or is ``sips:``)."""

ANSWER_TIMEOUT = 8.0
"""Seconds ``on_message`` has to answer before the sender gets 500 (its Timer F is 32 s)."""

# Headers a caller of send_message / create_outgoing_call may not set: the layers below
# build them (RFC 3261 §8.1.1) and a second copy would make the request malformed.
RESERVED_HEADERS = frozenset(
    {
        "via",
        "v",
        "from",
        "f",
        "to",
        "t",
        "call-id",
        "i",
        "cseq",
        "max-forwards",
        "content-length",
        "l",
        "content-type",
        "c",
        "contact",
        "m",
        "route",
        "record-route",
    }
)


def extra_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> list[tuple[str, str]]:
    """Validated extra header lines an application adds to a request it sends.

    Raises:
        ValueError: a name is empty or not a token, a value holds CR/LF, or the header
            is one the stack builds itself (Via, From, To, Call-ID, CSeq ...).
    """
    if headers is None:
        return []
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    out: list[tuple[str, str]] = []
    for name, value in items:
        # RFC 3261 §25.1: a header name is a token (ASCII letters, digits, -.!%*_+`'~).
        if not name or not all(c.isascii() and (c.isalnum() or c in "-.!%*_+`'~") for c in name):
            raise ValueError(f"not a header name: {name!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"CR or LF in the value of header {name}: {value!r}")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {name} is built by the stack and cannot be set")
        out.append((name, value))
    return out


class _Answerer(Protocol):
    def respond(
        self,
        ref: int,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> object:
        """Answer the request of ``ref``."""
        ...


Spawn = Callable[..., None]
"""Starts an async function in the coordinator's task group (``func, *args``)."""


class MessageService:
    """Answers incoming MESSAGE requests through the handler's ``on_message``.

    Args:
        endpoint: returns the SIP endpoint (answers by request ref).
        hooks: the hook runner (its handler's ``on_message``).
        publish: publishes a session event.
        spawn: starts a task (the handler's hook is awaited in its own task).
        call_for: the live call of a dialog, or None.
        authenticator: challenges the sender first when set (``with_authenticator``).
        now: the call layer's clock (for the authenticator's nonces).
        timeout: seconds the hook has to answer (then 500).
    """

    def __init__(
        self,
        endpoint: Callable[[], _Answerer],
        hooks: HookRunner,
        publish: Callable[[MessageReceived], None],
        spawn: Spawn,
        call_for: Callable[[DialogId | None], Call | None],
        authenticator: Authenticator | None = None,
        now: Callable[[], float] | None = None,
        timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self._endpoint = endpoint
        self._hooks = hooks
        self._publish = publish
        self._spawn = spawn
        self._call_for = call_for
        self._authenticator = authenticator
        self._now = now
        self._timeout = timeout

    def received(self, ref: int, dialog_id: DialogId | None, request: Request) -> None:
        """A MESSAGE arrived: answer it (now, or once the handler's hook decided)."""
        user: str | None = None
        auth = self._authenticator
        if auth is not None and self._now is not None:
            result = auth.check(request, self._now())
            if not result.proceed:
                # RFC 3428 §7 / RFC 3261 §22: a MESSAGE is challenged like any request.
                self._endpoint().respond(ref, result.status, result.reason, headers=result.headers)
                return
            user = result.user
        try:
            message = _message_of(request, self._call_for(dialog_id), user)
        except SipParseError as exc:
            self._endpoint().respond(ref, 400, f"Bad Request ({exc.reason})")
            return
        if not self._hooks.wants("on_message"):
            # No hook: accepted, the session event carries it (RFC 3428 §7: 200 means the
            # message reached the user agent, not that a person read it).
            self._answer(ref, message, 200)
            return
        self._spawn(self._ask, ref, message)

    async def _ask(self, ref: int, message: InstantMessage) -> None:
        status = 500
        with anyio.move_on_after(self._timeout):
            try:
                answer = await self._hooks.handler.on_message(message)
            except Exception:
                log.exception("on_message failed; answering 500")
            else:
                status = _status_of(answer)
        self._answer(ref, message, status)

    def _answer(self, ref: int, message: InstantMessage, status: int) -> None:
        try:
            self._endpoint().respond(ref, status)
        except Exception:  # the coordinator stopped, or the transaction is gone
            log.debug("could not answer MESSAGE %d with %d", ref, status, exc_info=True)
            return
        self._publish(MessageReceived(message, status))


def _status_of(answer: object) -> int:
    """A hook's answer as a final status: None means 200; anything invalid, 500."""
    if answer is None:
        return 200
    if isinstance(answer, int) and not isinstance(answer, bool) and 200 <= answer <= 699:
        return answer
    log.error("on_message returned %r, not a final SIP status; answering 500", answer)
    return 500


def _message_of(request: Request, call: Call | None, user: str | None) -> InstantMessage:
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        content_type = "text/plain" if request.body else ""
    return InstantMessage(
        from_=str(request.from_.uri),
        to=str(request.to.uri),
        content_type=content_type.strip(),
        body=request.body,
        headers=tuple(request.headers),
        request_uri=request.uri_text,
        session_id=None if call is None else call.id,
        authenticated_user=user,
    )
