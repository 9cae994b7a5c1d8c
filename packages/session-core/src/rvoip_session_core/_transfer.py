"""The coordinator's blind transfer (RFC 3515 REFER): as transferee and as transferor."""

from __future__ import annotations

import abc
import logging

from rvoip_dialog_core import DialogId, DialogUsageError, NotifyReceived
from rvoip_session_core._base import CoordinatorBase
from rvoip_session_core._call import Call
from rvoip_session_core._errors import CallFailed, SessionError, Timeout
from rvoip_session_core._events import TransferProgress, TransferRequested
from rvoip_session_core._types import CallState, SessionId
from rvoip_sip_core import Request

log = logging.getLogger("rvoip_session_core")


def _phrase(text: str) -> str:
    """A safe reason phrase: one line of printable text."""
    clean = "".join(ch for ch in text if ch.isprintable() and ch not in "\r\n")
    return clean.strip() or "Error"


def _bare(uri_text: str) -> str:
    text = uri_text.strip()
    if text.startswith("<") and ">" in text:
        text = text[1 : text.index(">")]
    return text


class TransferPart(CoordinatorBase):
    """REFER in (call the target, report by NOTIFY) and NOTIFY in (our transfer's progress)."""

    # --- transfer (RFC 3515 blind REFER) -------------------------------------------------

    def _refer_received(self, ref: int, did: DialogId, request: Request, refer_to: str) -> None:
        call = self._call_for_dialog(did)
        if call is None:
            self.endpoint.respond(ref, 481, "Call/Transaction Does Not Exist")
            return
        referred_by = request.headers.get("Referred-By")
        self.task_group.start_soon(self._transferee, call, ref, _bare(refer_to), referred_by)

    async def _transferee(self, call: Call, ref: int, target: str, referred_by: str | None) -> None:
        try:
            ok = await self.handler.on_incoming_transfer_request(call.id, target, referred_by)
        except Exception:
            log.exception("on_incoming_transfer_request failed for call %s", call.id)
            ok = False
        self._publish(TransferRequested(call.id, target, ok))
        endpoint = self.endpoint
        if not ok:
            with self._gate:
                endpoint.respond(ref, 603, "Decline")
            return
        try:
            with self._gate:
                subscription = endpoint.accept_refer(ref)
        except DialogUsageError:
            return
        ours = call.to if call.direction == "incoming" else call.from_
        status, reason = 500, "Server Internal Error"
        try:
            new = await self._place_call(ours, target)
            self._calls[new.id].transfer_of = call.id
            await self._wait_answer(new.id, 32.0)
            status, reason = 200, "OK"
        except CallFailed as exc:
            status, reason = exc.status, exc.reason or "Failed"
        except SessionError as exc:
            status, reason = (
                (408, "Request Timeout") if isinstance(exc, Timeout) else (503, str(exc))
            )
        try:
            with self._gate:
                endpoint.notify_refer(subscription, status, _phrase(reason))
        except DialogUsageError:
            log.debug("transfer of call %s: dialog gone before the final NOTIFY", call.id)

    def _transfer_notify(self, call: Call, event: NotifyReceived) -> None:
        status = event.sipfrag_status or 0
        reason = ""
        body = event.request.body.decode("utf-8", "replace").split("\r\n", 1)[0]
        parts = body.split(" ", 2)
        if len(parts) == 3:
            reason = parts[2]
        final = event.terminated or status >= 200
        self._publish(TransferProgress(call.id, status, reason, final))
        if not final:
            return
        call.transfer_status = status
        call.transfer_done.set()
        if 200 <= status < 300:
            # The transferee reached the target: our part of the call is done.
            self._hang_up(call, "transferred")
        elif call.state is CallState.Transferring:
            self._set_state(call, CallState.Active, f"transfer failed: {status}")

    # --- implemented by the public part ---------------------------------------------------

    @abc.abstractmethod
    async def _place_call(self, from_: str, to: str) -> Call:
        """Start an outgoing call (create_outgoing_call without the public wrapping)."""

    @abc.abstractmethod
    async def _wait_answer(self, session_id: SessionId, timeout: float) -> None:
        """Wait until a call is answered; raise on failure or timeout."""
