"""The hook runner: the application's ``CallHandler`` callbacks and its decision strategy.

Hooks run one after the other in one task (in the order the calls' events happened), each
error logged, never raised. Only hooks the handler really overrides are queued (a do-nothing
hook is not worth a task hop), and a handler that can decide at once (``decide_now``) is
asked inline, without any task per call.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from rvoip_session_core._handlers import CallHandler, decides_now, overridden_hooks
from rvoip_session_core._types import (
    CallSession,
    CallState,
    Decision,
    IncomingCall,
    QualityMetrics,
    SessionId,
)

log = logging.getLogger("rvoip_session_core")

Hook = Callable[[], Awaitable[None]]

HOOK_QUEUE = 10_000
"""Hooks waiting to run at most; beyond it a hook is dropped with a warning."""


class HookRunner:
    """Owns the handler, knows which hooks it implements, and runs them in order.

    Args:
        handler: the application's call handler.
    """

    def __init__(self, handler: CallHandler) -> None:
        self._handler = handler
        self.wanted: frozenset[str] = overridden_hooks(handler)
        """The hooks the handler implements (only these are queued)."""
        self._decides_now = decides_now(handler)
        self._send: MemoryObjectSendStream[Hook] | None = None
        self._recv: MemoryObjectReceiveStream[Hook] | None = None
        self._done: anyio.Event | None = None

    @property
    def handler(self) -> CallHandler:
        """The application's call handler."""
        return self._handler

    @handler.setter
    def handler(self, handler: CallHandler) -> None:
        self._handler = handler
        self.wanted = overridden_hooks(handler)
        self._decides_now = decides_now(handler)

    @property
    def decides_now(self) -> bool:
        """True when the handler's ``decide_now`` may be asked (the inline fast path)."""
        return self._decides_now

    def wants(self, hook: str) -> bool:
        """True when the handler implements ``hook`` (so it is worth queuing)."""
        return hook in self.wanted

    def decide_now(self, incoming: IncomingCall) -> Decision | None:
        """The handler's synchronous decision (may raise: the caller answers 500)."""
        return self._handler.decide_now(incoming)

    # --- the queue -------------------------------------------------------------------------

    def open(self) -> MemoryObjectReceiveStream[Hook]:
        """Open the queue; run ``run`` on the returned stream in a task."""
        send, recv = anyio.create_memory_object_stream[Hook](HOOK_QUEUE)
        self._send, self._recv, self._done = send, recv, anyio.Event()
        return recv

    async def run(self, recv: MemoryObjectReceiveStream[Hook]) -> None:
        """Run queued hooks in order until the queue is closed."""
        try:
            async with recv:
                async for hook in recv:
                    try:
                        await hook()
                    except Exception:
                        log.exception("call handler hook failed")
        finally:
            if self._done is not None:
                self._done.set()

    async def close(self, timeout: float) -> None:
        """Close the queue and wait (up to ``timeout`` s) for the hooks already queued."""
        send, self._send = self._send, None
        if send is None:
            return
        send.close()
        with anyio.move_on_after(timeout):
            if self._done is not None:
                await self._done.wait()

    def submit(self, hook: Hook) -> None:
        """Queue one hook (dropped with a warning when the queue is full or closed)."""
        send = self._send
        if send is None:
            return
        try:
            send.send_nowait(hook)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            log.warning("handler hook dropped (queue full or closed)")

    # --- the hooks -------------------------------------------------------------------------
    # hot path: each is queued only when overridden; partials, not closures.

    def state_changed(
        self, sid: SessionId, old: CallState, new: CallState, reason: str | None
    ) -> None:
        """Queue ``on_call_state_changed`` (when implemented)."""
        if "on_call_state_changed" in self.wanted:
            self.submit(
                functools.partial(self._handler.on_call_state_changed, sid, old, new, reason)
            )

    def call_ended(self, call: CallSession, reason: str) -> None:
        """Queue ``on_call_ended`` (when implemented)."""
        if "on_call_ended" in self.wanted:
            self.submit(functools.partial(self._handler.on_call_ended, call, reason))

    def call_established(self, call: CallSession, local: str | None, remote: str | None) -> None:
        """Queue ``on_call_established`` (when implemented)."""
        if "on_call_established" in self.wanted:
            self.submit(functools.partial(self._handler.on_call_established, call, local, remote))

    def dtmf(self, sid: SessionId, digit: str) -> None:
        """Queue ``on_dtmf`` (when implemented)."""
        if "on_dtmf" in self.wanted:
            self.submit(functools.partial(self._handler.on_dtmf, sid, digit))

    def media_quality(self, sid: SessionId, metrics: QualityMetrics) -> None:
        """Queue ``on_media_quality`` (when implemented)."""
        if "on_media_quality" in self.wanted:
            self.submit(functools.partial(self._handler.on_media_quality, sid, metrics))

    async def incoming_call(self, incoming: IncomingCall) -> Decision:
        """Ask the handler about an incoming call (awaited by the call's decide task)."""
        return await self._handler.on_incoming_call(incoming)

    async def transfer_requested(
        self, sid: SessionId, target: str, referred_by: str | None
    ) -> bool:
        """Ask the handler whether to follow a REFER (an error counts as no)."""
        try:
            return await self._handler.on_incoming_transfer_request(sid, target, referred_by)
        except Exception:
            log.exception("on_incoming_transfer_request failed for call %s", sid)
            return False
