"""The call registry: calls by id, by INVITE leg and by dialog, and the ended-calls record."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from datetime import datetime

import anyio

from rvoip_dialog_core import DialogId, LegId
from rvoip_session_core._call import Call, PendingRequest
from rvoip_session_core._errors import SessionNotFound
from rvoip_session_core._media import CallMedia
from rvoip_session_core._types import CallDirection, CallState, SessionId

ENDED_KEPT = 64
"""Ended calls remembered so ``wait_for_answer`` can still report how a call ended."""


class CallRegistry:
    """Owns every call record and the indexes the event paths look calls up by.

    Args:
        prefix: the coordinator's random prefix of session ids (unique per coordinator).
    """

    __slots__ = ("_by_dialog", "_by_leg", "_calls", "_ended", "_ids", "_pending", "counters")

    def __init__(self, prefix: str) -> None:
        self._calls: dict[SessionId, Call] = {}
        self._ended: collections.OrderedDict[SessionId, Call] = collections.OrderedDict()
        self._by_leg: dict[LegId, SessionId] = {}
        self._by_dialog: dict[DialogId, SessionId] = {}
        self._pending: dict[int, PendingRequest] = {}
        self._ids = (f"{prefix}-{n}" for n in itertools.count(1))
        self.counters = {
            "total": 0,
            "failed": 0,
            "incoming": 0,
            "outgoing": 0,
            "overload_rejected": 0,
            "drain_rejected": 0,
        }
        """Coordinator-wide call counters (what ``get_stats`` reports)."""

    # --- records ---------------------------------------------------------------------------

    def next_id(self) -> SessionId:
        """A new session id (``<prefix>-<n>``)."""
        return SessionId(next(self._ids))

    def add(
        self,
        sid: SessionId,
        direction: CallDirection,
        from_: str,
        to: str,
        started_at: datetime,
        media: CallMedia,
    ) -> Call:
        """Record a new call (state ``Initiating``) and count it."""
        call = Call(sid, direction, from_, to, CallState.Initiating, started_at, media)
        self._calls[sid] = call
        counters = self.counters
        counters["total"] += 1
        counters[direction.value] += 1
        return call

    def retire(self, call: Call) -> None:
        """Move an ended call to the ended record and drop its leg/dialog indexes."""
        self._calls.pop(call.id, None)
        ended = self._ended
        ended[call.id] = call
        while len(ended) > ENDED_KEPT:
            ended.popitem(last=False)
        if call.leg is not None:
            self._by_leg.pop(call.leg, None)
        if call.dialog_id is not None:
            self._by_dialog.pop(call.dialog_id, None)
        if call.state is CallState.Failed:
            self.counters["failed"] += 1

    def get(self, session_id: str) -> Call:
        """The live call with that id.

        Raises:
            SessionNotFound: no such call (or it ended).
        """
        call = self._calls.get(SessionId(str(session_id)))
        if call is None:
            raise SessionNotFound(str(session_id))
        return call

    def get_or_ended(self, session_id: str) -> Call:
        """The call with that id, live or recently ended.

        Raises:
            SessionNotFound: no such call.
        """
        sid = SessionId(str(session_id))
        call = self._calls.get(sid) or self._ended.get(sid)
        if call is None:
            raise SessionNotFound(sid)
        return call

    def find(self, session_id: SessionId) -> Call | None:
        """The live call with that id, or None."""
        return self._calls.get(session_id)

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[Call]:
        """The live calls (a copy: safe while calls end)."""
        return iter(list(self._calls.values()))

    # --- legs and dialogs ------------------------------------------------------------------

    def bind_leg(self, call: Call, leg: LegId) -> None:
        """Our INVITE of ``call`` went out as ``leg``."""
        call.leg = leg
        self._by_leg[leg] = call.id

    def for_leg(self, leg: LegId) -> Call | None:
        """The live call of an INVITE leg, or None."""
        sid = self._by_leg.get(leg)
        return None if sid is None else self._calls.get(sid)

    def bind_dialog(self, call: Call, dialog_id: DialogId) -> None:
        """``call`` is (now) in ``dialog_id`` (a fork's confirmation may move it)."""
        old = call.dialog_id
        if old is not None and old != dialog_id and self._by_dialog.get(old) == call.id:
            del self._by_dialog[old]
        call.dialog_id = dialog_id
        self._by_dialog[dialog_id] = call.id

    def unbind_dialog(self, call: Call) -> None:
        """``call`` is in no dialog any more (its early dialog ended; a redirect goes on)."""
        old = call.dialog_id
        if old is not None and self._by_dialog.get(old) == call.id:
            del self._by_dialog[old]
        call.dialog_id = None

    def for_dialog(self, dialog_id: DialogId | None) -> Call | None:
        """The live call of a dialog (or of its INVITE leg, before it is bound), or None."""
        if dialog_id is None:
            return None
        sid = self._by_dialog.get(dialog_id) or self._by_leg.get(dialog_id.leg)
        return None if sid is None else self._calls.get(sid)

    # --- requests sent in a dialog ---------------------------------------------------------

    def add_pending(self, ref: int, pending: PendingRequest) -> None:
        """Remember a request we sent, until its final response (``ref``: the dialog's)."""
        self._pending[ref] = pending

    def pending(self, ref: int) -> PendingRequest | None:
        """The request awaiting a response with that ref, or None."""
        return self._pending.get(ref)

    def drop_pending(self, ref: int) -> None:
        """Forget a request (answered, timed out or abandoned)."""
        self._pending.pop(ref, None)

    async def wait_outside(self, ref: int, method: str, timeout: float) -> PendingRequest:
        """Await the final response to a request sent outside any call (REGISTER, MESSAGE).

        The returned record's ``response`` is None when none came within ``timeout``;
        its ``auth_failure`` says why a challenge could not be answered.
        """
        pending = PendingRequest(method, SessionId(""))
        self._pending[ref] = pending
        try:
            with anyio.move_on_after(timeout):
                await pending.done.wait()
        finally:
            self._pending.pop(ref, None)
        return pending

    def release_pending(self, session_id: SessionId) -> None:
        """Wake every waiter of a call's requests (the call ended: no response is coming)."""
        for pending in self._pending.values():
            if pending.call_id == session_id:
                pending.done.set()

    def is_empty(self) -> bool:
        """True when no call, leg, dialog or pending request is recorded (leak checks)."""
        return not (self._calls or self._by_leg or self._by_dialog or self._pending)
