"""Blind and attended transfer (RFC 3515 REFER, RFC 3891 Replaces), as transferee and transferor.

The service places the transferee's new call through a small ``CallPlacer`` protocol (the
coordinator implements it) and acts on calls through a ``CallOps`` protocol (the call layer
implements it), so it depends on neither class.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, unquote

from rvoip_dialog_core import DialogId, DialogUsageError, NotifyReceived
from rvoip_session_core._call import Call
from rvoip_session_core._errors import CallFailed, SessionError, Timeout
from rvoip_session_core._events import (
    EventHub,
    LazyEvent,
    SessionEventType,
    TransferProgress,
    TransferRequested,
)
from rvoip_session_core._hooks import HookRunner
from rvoip_session_core._state import Trigger
from rvoip_session_core._types import CallDirection, CallState, SessionId
from rvoip_sip_core import Request, Response

log = logging.getLogger("rvoip_session_core")

TRANSFER_ANSWER_TIMEOUT = 32.0
"""Seconds the transferee waits for the transfer target to answer (then NOTIFY 408)."""


def phrase(text: str) -> str:
    """A safe reason phrase: one line of printable text."""
    clean = "".join(ch for ch in text if ch.isprintable() and ch not in "\r\n")
    return clean.strip() or "Error"


def bare_uri(uri_text: str) -> str:
    """The URI inside ``<...>`` (or the text itself)."""
    text = uri_text.strip()
    if text.startswith("<") and ">" in text:
        text = text[1 : text.index(">")]
    return text


REFER_TO_HEADERS = frozenset({"replaces"})
"""Header fields a Refer-To URI may put in the transferee's INVITE (lower case).

RFC 3261 §19.1.5: a UA "SHOULD treat the presence of any headers or body parts in the
URI as a desire to include them in the message, and choose to honor the request on a
per-component basis". Only ``Replaces`` (RFC 3891 §8, attended transfer) is honoured;
any other is dropped, so a REFER cannot make us send arbitrary header lines.
"""


def split_uri_headers(uri: str) -> tuple[str, dict[str, str]]:
    """A URI without its ``?name=value&...`` part, and the headers it named (unescaped).

    RFC 3261 §19.1.1: headers of a SIP URI are "header fields to be included in a request
    constructed from the URI"; they are not part of the Request-URI (§19.1.5). Only the
    names in ``REFER_TO_HEADERS`` are kept; names are case-insensitive, the last one wins.
    """
    base, sep, query = uri.partition("?")
    headers: dict[str, str] = {}
    if not sep:
        return uri, headers
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        name = unquote(name).strip()
        if eq and name.lower() in REFER_TO_HEADERS:
            headers[name.capitalize()] = unquote(value)
    return base, headers


def replaces_refer_to(target: str, dialog_id: DialogId) -> str:
    """The Refer-To URI of an attended transfer: ``target?Replaces=<escaped dialog>``.

    RFC 3891 §3: the Replaces to-tag is the tag of the UA that will receive it (the
    consultation peer: our *remote* tag) and the from-tag the other end's (our *local*
    tag). RFC 3891 §8 / RFC 3261 §19.1.1: inside a URI header value ``;``, ``=`` and
    ``@`` are %-escaped, e.g. ``<sip:c@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>``.
    """
    value = f"{dialog_id.call_id};to-tag={dialog_id.remote_tag};from-tag={dialog_id.local_tag}"
    base = bare_uri(target).partition("?")[0]
    return f"{base}?Replaces={quote(value, safe='')}"


class CallPlacer(Protocol):
    """Places a new outgoing call and waits for its answer (the transferee's new call)."""

    async def place_call(
        self, from_: str, to: str, headers: Mapping[str, str] | None = None
    ) -> SessionId:
        """Send an INVITE from ``from_`` to ``to`` (with extra ``headers``); returns its id."""
        ...

    async def wait_answered(self, session_id: SessionId, timeout: float) -> None:
        """Wait until the call is answered; raise CallFailed/CallCancelled/Timeout."""


class CallOps(Protocol):
    """What the service needs of the call layer."""

    @property
    def endpoint(self) -> Any:
        """The SIP endpoint (respond, accept_refer, notify_refer)."""

    @property
    def gate(self) -> Any:
        """The event gate (``with gate:`` around endpoint commands)."""

    def fire(self, call: Call, trigger: Trigger, reason: str | None = None) -> bool:
        """Apply a trigger to a call."""
        ...

    def hang_up(self, call: Call, reason: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        """End a call."""


Requester = Callable[..., Awaitable[Response]]
"""``await request(call, method, timeout=..., **kw)``: an in-dialog request's final response."""


class TransferService:
    """REFER in (call the target, report by NOTIFY) and NOTIFY in (our transfer's progress).

    Args:
        calls: the call layer.
        placer: places the transferee's new call.
        hooks: asks the handler whether to follow a REFER.
        events: the session event hub.
        find: looks a live call up by id.
        spawn: starts a task (the transferee's new call runs in one).
        request: sends an in-dialog request and awaits its final response.
    """

    def __init__(
        self,
        calls: CallOps,
        placer: CallPlacer,
        hooks: HookRunner,
        events: EventHub[SessionEventType],
        find: Callable[[SessionId], Call | None],
        spawn: Callable[..., object],
        request: Requester,
    ) -> None:
        self._calls = calls
        self._placer = placer
        self._hooks = hooks
        self._events = events
        self._find = find
        self._spawn = spawn
        self._request = request

    # --- as transferee ---------------------------------------------------------------------

    def refer_received(self, call: Call, ref: int, request: Request, refer_to: str) -> None:
        """The peer asks us to call ``refer_to`` (RFC 3515 §2.4.2): ask the handler in a task."""
        referred_by = request.headers.get("Referred-By")
        self._spawn(self._transferee, call, ref, bare_uri(refer_to), referred_by)

    async def _transferee(self, call: Call, ref: int, target: str, referred_by: str | None) -> None:
        # RFC 3515 §2.4.2 + RFC 3891 §8: a Refer-To's ?Replaces=... goes into our INVITE
        # as a Replaces header (attended transfer); the URI we call carries no headers.
        target, headers = split_uri_headers(target)
        ok = await self._hooks.transfer_requested(call.id, target, referred_by)
        self._events.publish(TransferRequested(call.id, target, ok))
        calls = self._calls
        endpoint = calls.endpoint
        if not ok:
            with calls.gate:
                endpoint.respond(ref, 603, "Decline")
            return
        try:
            with calls.gate:
                subscription = endpoint.accept_refer(ref)
        except DialogUsageError:
            return
        ours = call.to if call.direction is CallDirection.Incoming else call.from_
        status, reason = 500, "Server Internal Error"
        try:
            new_id = await self._placer.place_call(ours, target, headers or None)
            new = self._find(new_id)
            if new is not None:
                new.transfer_of = call.id
            await self._placer.wait_answered(new_id, TRANSFER_ANSWER_TIMEOUT)
            status, reason = 200, "OK"
        except CallFailed as exc:
            status, reason = exc.status, exc.reason or "Failed"
        except SessionError as exc:
            status, reason = (
                (408, "Request Timeout") if isinstance(exc, Timeout) else (503, str(exc))
            )
        try:
            with calls.gate:
                endpoint.notify_refer(subscription, status, phrase(reason))
        except DialogUsageError:
            log.debug("transfer of call %s: dialog gone before the final NOTIFY", call.id)

    # --- as transferor ---------------------------------------------------------------------

    async def transfer(self, call: Call, target: str, timeout: float) -> None:
        """REFER the peer to ``target``; returns once the peer accepted (2xx).

        Raises:
            CallFailed: the peer refused (e.g. 603) or the call ended.
            Timeout: no final response in time.
        """
        calls = self._calls
        previous = call.state
        calls.fire(call, Trigger.TRANSFER, f"transfer to {target}")
        call.transfer_done = LazyEvent()
        call.transfer_status = None
        response = await self._request(call, "REFER", timeout=timeout, refer_to=target)
        if response.status >= 300:
            if call.state is CallState.Transferring:
                trigger = Trigger.HOLD if previous is CallState.OnHold else Trigger.TRANSFER_FAILED
                calls.fire(call, trigger, f"transfer refused: {response.status}")
            raise CallFailed(response.status, response.reason, session_id=call.id)

    async def transfer_attended(self, call: Call, consultation: Call, timeout: float) -> None:
        """Attended transfer (RFC 5589 §7): REFER ``call``'s peer to ``consultation``'s peer.

        The Refer-To names the consultation peer with ``?Replaces=`` its dialog with us, so
        the transferee's INVITE replaces that dialog at the target (RFC 3891). Our call is
        hung up on the 2xx NOTIFY (as for a blind transfer); the consultation call is ended
        by the target's BYE once the transferee's call replaced it.

        Raises:
            CallFailed: the peer refused the REFER, or the consultation call has no dialog.
            Timeout: no final response in time.
        """
        did = consultation.dialog_id
        if did is None:
            raise CallFailed(481, "the consultation call has no dialog", session_id=consultation.id)
        await self.transfer(
            call, replaces_refer_to(consultation_target(consultation), did), timeout
        )

    def notify_received(self, call: Call, event: NotifyReceived) -> None:
        """A NOTIFY of our transfer: report progress; a 2xx ends our part of the call."""
        status = event.sipfrag_status or 0
        reason = ""
        body = event.request.body.decode("utf-8", "replace").split("\r\n", 1)[0]
        parts = body.split(" ", 2)
        if len(parts) == 3:
            reason = parts[2]
        final = event.terminated or status >= 200
        if self._events.subscriber_count:
            self._events.publish(TransferProgress(call.id, status, reason, final))
        if not final:
            return
        call.transfer_status = status
        call.transfer_done.set()
        if 200 <= status < 300:
            # The transferee reached the target: our part of the call is done.
            self._calls.hang_up(call, "transferred")
        elif call.state is CallState.Transferring:
            self._calls.fire(call, Trigger.TRANSFER_FAILED, f"transfer failed: {status}")


def consultation_target(call: Call) -> str:
    """The URI that reaches the consultation call's peer (the Refer-To of an attended transfer).

    An outgoing call: the URI we called. An incoming one: the caller's Contact (its remote
    target, RFC 3261 §12.1.1), else its From URI.
    """
    if call.direction is CallDirection.Outgoing or call.incoming is None:
        return call.to if call.direction is CallDirection.Outgoing else call.from_
    for name, value in call.incoming.headers:
        if name.lower() in ("contact", "m"):
            if "<" in value and ">" in value:
                return value[value.index("<") + 1 : value.index(">")]
            return value.split(";")[0].strip()
    return call.from_
