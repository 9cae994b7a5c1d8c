"""Calls to a registered AOR, forked to its contacts (``CallDecision.Route``).

The ``CallRouter`` places one outgoing call per live contact of the AOR (parallel forking,
RFC 3261 §16.6/§16.7 in the manner of a B2BUA), bridges the caller to the first that
answers and cancels the others. It drives the coordinator's public operations only
(``CallPlacer``-like: place, wait, accept, reject, bridge, hang up), so the call layer
stays the one place where call state changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio

from rvoip_session_core._call import Call
from rvoip_session_core._errors import CallCancelled, CallFailed, SessionError, Timeout
from rvoip_session_core._registrar import Registrar, aor_of
from rvoip_session_core._registry import CallRegistry
from rvoip_session_core._types import Defer, SessionId
from rvoip_sip_core import Uri

__all__ = ["COMPLETED_ELSEWHERE", "CallRouter", "fork_status"]

log = logging.getLogger("rvoip_session_core")

COMPLETED_ELSEWHERE = (("Reason", 'SIP;cause=200;text="Call completed elsewhere"'),)
"""RFC 3326 Reason on the CANCELs to the branches that lost (RFC 3261 §16.7 step 10), so
the other phones do not show a missed call."""


def fork_status(statuses: Sequence[int]) -> tuple[int, str]:
    """The answer to send the caller when every branch refused.

    RFC 3261 §16.7 step 6: a 6xx ends the search and is passed back; else a 486 from a
    busy contact says the user is busy; else 480 (RFC 3261 §21.4.18: no contact is
    reachable now).
    """
    for status in statuses:
        if 600 <= status < 700:
            return status, "Decline" if status == 603 else "Global Failure"
    if 486 in statuses:
        return 486, "Busy Here"
    return 480, "Temporarily Unavailable"


class Switchboard(Protocol):
    """The coordinator operations the router drives (``SessionCoordinator`` has them)."""

    async def place_call(self, from_: str, to: str) -> SessionId:
        """Send an INVITE from ``from_`` to ``to``; returns the new call's id."""
        ...

    async def wait_answered(self, session_id: SessionId, timeout: float) -> None:
        """Wait until the call is answered; raise CallFailed/CallCancelled/Timeout."""

    async def accept_incoming_call(self, call: str, sdp: str | None = None) -> Any:
        """Answer a ringing incoming call with 200."""

    async def bridge_sessions(self, session_a: str, session_b: str) -> Any:
        """Connect two answered calls' audio."""


class CallRouter:
    """Routes incoming calls to the contacts bound to an AOR in a ``Registrar``.

    Args:
        switchboard: places, answers and bridges the calls (the coordinator).
        registry: the call records (the branches' outcomes).
        registrar: the binding store.
        now: the registrar's clock.
        defer: rings the caller (the call layer's decision for ``Defer``).
        reject: refuses the incoming call with (call, status, reason).
        hang_up: ends a call by the right means for its state (the call layer's).
        is_self: whether a contact URI is this coordinator's own address.
        answer_timeout: seconds a branch may ring (the incoming-call timeout).
        connect_timeout: seconds the caller's ACK may take once answered.
    """

    def __init__(
        self,
        switchboard: Switchboard,
        registry: CallRegistry,
        registrar: Registrar,
        now: Callable[[], float],
        defer: Callable[[Call, Defer], None],
        reject: Callable[[Call, int, str], None],
        hang_up: Callable[[Call, str, Sequence[tuple[str, str]]], None],
        is_self: Callable[[Uri], bool],
        *,
        answer_timeout: float,
        connect_timeout: float,
    ) -> None:
        self._switchboard = switchboard
        self._registry = registry
        self._registrar = registrar
        self._now = now
        self._defer = defer
        self._reject = reject
        self._hang_up_call = hang_up
        self._is_self = is_self
        self._answer_timeout = answer_timeout
        self._connect_timeout = connect_timeout
        self.branches_placed = 0
        """Outgoing branch calls placed since start (a counter for tests and stats)."""

    def route(self, call: Call, aor: str | None, spawn: Callable[..., Any]) -> None:
        """Offer the incoming ``call`` to ``aor``'s contacts (None: its Request-URI's AOR)."""
        incoming = call.incoming
        target = aor if aor is not None else (incoming.request_uri if incoming else None)
        key = aor_of(target or call.to)
        bindings = () if key is None else self._registrar.bindings(key, self._now())
        # A contact naming this PBX itself would route the branch back here, and again,
        # each time as a new call (a B2BUA's INVITE starts at Max-Forwards 70): skipped.
        bindings = tuple(b for b in bindings if not self._is_self(b.contact))
        if not bindings:
            # RFC 3261 §21.4.18 / §16.7: nothing bound for the user now: 480.
            self._reject(call, 480, "Temporarily Unavailable")
            return
        contacts = [str(b.contact) for b in bindings]
        contacts = contacts[: self._registrar.settings.max_fork_branches]
        # The caller hears ringing while the branches are placed (and gets 480 from the
        # call layer if nobody answers within the incoming-call timeout).
        self._defer(call, Defer())
        spawn(self._fork, call, contacts)

    async def _fork(self, call: Call, contacts: list[str]) -> None:
        switchboard = self._switchboard
        caller = call.from_
        branches: list[SessionId] = []
        for contact in contacts:
            if call.ended.is_set():
                break
            try:
                sid = await switchboard.place_call(caller, contact)
            except SessionError as exc:
                log.info("call %s: branch to %s not placed: %s", call.id, contact, exc)
                continue
            branches.append(sid)
            self.branches_placed += 1
        winner = await self._first_answer(call, branches)
        for sid in branches:
            if sid != winner:
                why = COMPLETED_ELSEWHERE if winner is not None else ()
                self._hang_up(sid, "answered elsewhere", why)
        if call.ended.is_set():
            if winner is not None:
                self._hang_up(winner, "caller gone")
            return
        if winner is None:
            statuses = [self._status(sid) for sid in branches]
            status, reason = fork_status([s for s in statuses if s])
            self._reject(call, status, reason)
            return
        await self._connect(call, winner)

    async def _first_answer(self, call: Call, branches: list[SessionId]) -> SessionId | None:
        """The first branch to answer; None when all failed or the caller went away."""
        if not branches:
            return None
        switchboard = self._switchboard
        timeout = self._answer_timeout
        winner: SessionId | None = None
        left = len(branches)
        async with anyio.create_task_group() as tg:

            async def watch(sid: SessionId) -> None:
                nonlocal winner, left
                try:
                    await switchboard.wait_answered(sid, timeout)
                except (CallFailed, CallCancelled, Timeout, SessionError):
                    left -= 1
                    if not left:
                        tg.cancel_scope.cancel()
                    return
                if winner is None:
                    winner = sid
                    tg.cancel_scope.cancel()

            async def caller_gone() -> None:
                await call.ended.wait()
                tg.cancel_scope.cancel()

            for sid in branches:
                tg.start_soon(watch, sid)
            tg.start_soon(caller_gone)
        return winner

    async def _connect(self, call: Call, winner: SessionId) -> None:
        """Answer the caller, bridge it to the branch, and end each when the other ends."""
        switchboard = self._switchboard
        try:
            await switchboard.accept_incoming_call(call.id)
            await switchboard.wait_answered(call.id, self._connect_timeout)
            await switchboard.bridge_sessions(call.id, winner)
        except SessionError as exc:
            log.info("call %s: not connected to branch %s: %s", call.id, winner, exc)
            self._hang_up(winner, "caller not connected")
            self._hang_up(call.id, "branch not connected")
            return
        other = self._registry.get_or_ended(winner)
        await _either_ended(call, other)
        self._hang_up(winner, "caller hung up")
        self._hang_up(call.id, "callee hung up")

    def _status(self, sid: SessionId) -> int:
        try:
            return self._registry.get_or_ended(sid).final_status or 0
        except SessionError:
            return 0

    def _hang_up(
        self, sid: SessionId, reason: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        found = self._registry.find(sid)
        if found is None or found.state.is_final:
            return
        try:
            self._hang_up_call(found, reason, headers)
        except SessionError as exc:
            log.debug("call %s: hang-up failed: %s", sid, exc)


async def _either_ended(a: Call, b: Call) -> None:
    """Wait until call ``a`` or ``b`` has ended."""
    if a.ended.is_set() or b.ended.is_set():
        return
    async with anyio.create_task_group() as tg:

        async def first(call: Call) -> None:
            await call.ended.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(first, a)
        tg.start_soon(first, b)
