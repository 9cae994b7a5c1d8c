"""``CallHandler`` and the ready-made handlers: auto-answer, queue, routing, chain."""

from __future__ import annotations

import abc
import collections
import logging
import re
from collections.abc import Awaitable, Iterable

import anyio
import attrs

from rvoip_session_core._types import (
    Accept,
    CallSession,
    CallState,
    Decision,
    Defer,
    Forward,
    IncomingCall,
    InstantMessage,
    QualityMetrics,
    Reject,
    SessionId,
    normalize_decision,
)

log = logging.getLogger("rvoip_session_core.handler")


class CallHandler(abc.ABC):
    """What an application implements to take part in calls.

    ``on_incoming_call`` and ``on_call_ended`` are required; the other hooks have
    do-nothing defaults. ``on_incoming_call`` is awaited in a task of its own per call;
    the other hooks run one at a time, in order, in the coordinator's hook task, so a
    slow one delays the hooks queued after it. A hook that raises is logged (and an
    incoming call whose handler raised is answered 500).
    """

    @abc.abstractmethod
    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        """Decide what to do with a new incoming call."""

    @abc.abstractmethod
    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        """A call (incoming or outgoing) ended; ``reason`` says how."""

    def decide_now(self, call: IncomingCall) -> Decision | None:
        """Optional synchronous decision, made without awaiting; None asks ``on_incoming_call``.

        A handler that can decide at once (auto-answer, routing) returns its decision here,
        so the coordinator answers in the SIP event itself: no task, timeout or cancel
        scope per call. It runs inside that event, so it must be quick and never block.
        It is used only when the class defining it is the one defining
        ``on_incoming_call`` or a subclass of it, so a subclass that overrides
        ``on_incoming_call`` alone is always asked asynchronously.
        """
        return None

    async def screen_call(self, call: IncomingCall) -> Decision | None:
        """Like ``on_incoming_call`` but may return None for "no opinion".

        ``CompositeHandler`` asks each handler in turn and the first that returns a
        decision wins. The default is decisive: it returns ``on_incoming_call``.
        """
        return normalize_decision(await self.on_incoming_call(call))

    async def on_call_established(  # noqa: B027 (optional hook)
        self, call: CallSession, local_sdp: str | None, remote_sdp: str | None
    ) -> None:
        """The call was answered and media negotiated."""

    async def on_call_state_changed(  # noqa: B027
        self, session_id: SessionId, old_state: CallState, new_state: CallState, reason: str | None
    ) -> None:
        """A call changed state."""

    async def on_dtmf(self, session_id: SessionId, digit: str) -> None:  # noqa: B027
        """The peer sent a DTMF digit (RFC 4733 or SIP INFO)."""

    async def on_media_quality(self, session_id: SessionId, metrics: QualityMetrics) -> None:  # noqa: B027
        """Periodic quality report of a call's audio."""

    async def on_incoming_transfer_request(
        self, session_id: SessionId, target: str, referred_by: str | None
    ) -> bool:
        """The peer asks us to call ``target`` (REFER); False refuses with 603."""
        return True

    async def on_message(self, message: InstantMessage) -> int | None:
        """A MESSAGE arrived (RFC 3428); return the final status to answer (None: 200).

        E.g. 415 for a content type you do not take, 486 when the user is busy. Not
        overriding it accepts every message; each also arrives as a ``MessageReceived``
        session event. Answer within 8 s (else the sender gets 500).
        """
        return None


_DECIDES_NOW: dict[type[CallHandler], bool] = {}


def decides_now(handler: CallHandler) -> bool:
    """Whether ``handler.decide_now`` may be asked (checked once per handler class).

    Only when a class overrides ``decide_now`` at the level of its ``on_incoming_call``
    or below: a subclass overriding ``on_incoming_call`` alone must be asked by it.
    """
    cls = type(handler)
    known = _DECIDES_NOW.get(cls)
    if known is None:
        mro = cls.__mro__
        decider = next(c for c in mro if "decide_now" in c.__dict__)
        asker = next(c for c in mro if "on_incoming_call" in c.__dict__)
        known = _DECIDES_NOW[cls] = decider is not CallHandler and issubclass(decider, asker)
    return known


_HOOKS = (
    "on_call_established",
    "on_call_state_changed",
    "on_dtmf",
    "on_media_quality",
    "on_message",
)
_OVERRIDDEN: dict[type[CallHandler], frozenset[str]] = {}


def overridden_hooks(handler: CallHandler) -> frozenset[str]:
    """The hooks ``handler``'s class really implements (checked once per class).

    The coordinator queues only these: a do-nothing hook is not worth a task hop. That is
    every optional hook left at its default, and ``on_call_ended`` when it is one of the
    ready-made handlers' empty ones.
    """
    cls = type(handler)
    hooks = _OVERRIDDEN.get(cls)
    if hooks is None:
        names = [h for h in _HOOKS if getattr(cls, h) is not getattr(CallHandler, h)]
        if cls.on_call_ended not in _EMPTY_ON_CALL_ENDED:
            names.append("on_call_ended")
        hooks = _OVERRIDDEN[cls] = frozenset(names)
    return hooks


class AutoAnswerHandler(CallHandler):
    """Answers every call with a generated SDP answer."""

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        """Accept, letting the coordinator build the SDP answer."""
        return Accept(None)

    def decide_now(self, call: IncomingCall) -> Decision | None:
        """Accept at once (no task per call)."""
        return Accept(None)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        """Nothing to clean up."""


@attrs.define(eq=False)
class QueueHandler(CallHandler):
    """Holds incoming calls (ringing, deferred) in a FIFO for the application to take.

    When the queue already holds ``max_queue_size`` calls, new ones are refused with
    486 Busy Here (or, inside a ``CompositeHandler``, passed to the next handler).
    """

    max_queue_size: int = 100
    _queue: collections.deque[IncomingCall] = attrs.field(init=False, factory=collections.deque)
    _waiters: list[anyio.Event] = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        if self.max_queue_size < 1:
            raise ValueError("a queue needs room for at least one call")

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        """Queue the call (Defer) or refuse it when the queue is full."""
        decision = await self.screen_call(call)
        return decision if decision is not None else Reject("Queue Full", 486)

    async def screen_call(self, call: IncomingCall) -> Decision | None:
        """Queue the call and defer it, or give no opinion when full."""
        if len(self._queue) >= self.max_queue_size:
            return None
        self._queue.append(call)
        waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()
        return Defer()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        """Drop a queued call that the caller gave up on."""
        self._remove(call.id)

    def dequeue(self) -> IncomingCall | None:
        """Take the oldest queued call, or None when the queue is empty."""
        return self._queue.popleft() if self._queue else None

    async def wait_for_call(self) -> IncomingCall:
        """Wait until a call is queued and take it (use inside a cancel scope)."""
        while not self._queue:
            event = anyio.Event()
            self._waiters.append(event)
            await event.wait()
        return self._queue.popleft()

    def queue_size(self) -> int:
        """How many calls are waiting."""
        return len(self._queue)

    def _remove(self, session_id: SessionId) -> None:
        kept = [c for c in self._queue if c.id != session_id]
        if len(kept) != len(self._queue):
            self._queue = collections.deque(kept)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters; everything else literally, ignoring case."""
    parts = (re.escape(p) for p in pattern.split("*"))
    return re.compile(".*".join(parts), re.IGNORECASE | re.DOTALL)


def _bare_uri(text: str) -> str:
    """The URI of a header value or URI text: strips display name, <>, and ;params."""
    text = text.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1 : text.index(">")]
    # RFC 3261 §19.1.1: uri-parameters follow the hostport after ';'.
    if text.lower().startswith(("sip:", "sips:", "tel:")):
        text = text.split(";", 1)[0].split("?", 1)[0]
    return text


@attrs.define(eq=False)
class RoutingHandler(CallHandler):
    """Forwards calls (302) by the called URI, matched against ``*`` patterns in order.

    ``add_route("sip:support@*", "sip:queue@support.local")`` forwards every call to
    ``support`` at any host. Calls no route matches get ``default`` (a 404 rejection);
    inside a ``CompositeHandler`` they are passed to the next handler instead.
    """

    default: Decision = attrs.field(factory=lambda: Reject("No Route", 404))
    _routes: list[tuple[str, re.Pattern[str], str]] = attrs.field(init=False, factory=list)

    def add_route(self, pattern: str, target: str) -> RoutingHandler:
        """Forward calls whose called URI matches ``pattern`` to ``target``; returns self."""
        self._routes.append((pattern, _pattern_regex(_bare_uri(pattern)), target))
        return self

    @property
    def routes(self) -> list[tuple[str, str]]:
        """The (pattern, target) pairs in matching order."""
        return [(pattern, target) for pattern, _, target in self._routes]

    def route_for(self, uri: str) -> str | None:
        """The target of the first route matching ``uri``, or None."""
        bare = _bare_uri(uri)
        for _, regex, target in self._routes:
            if regex.fullmatch(bare):
                return target
        return None

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        """Forward to the matching route's target, else the default decision."""
        decision = await self.screen_call(call)
        return decision if decision is not None else self.default

    def decide_now(self, call: IncomingCall) -> Decision | None:
        """The same decision as ``on_incoming_call``, made at once (routing never waits)."""
        if type(self).screen_call is not RoutingHandler.screen_call:
            return None  # a subclass screens differently (maybe awaiting): ask it
        decision = self._route(call)
        return decision if decision is not None else self.default

    async def screen_call(self, call: IncomingCall) -> Decision | None:
        """Forward on a matching route (To URI, then Request-URI), else no opinion."""
        return self._route(call)

    def _route(self, call: IncomingCall) -> Decision | None:
        for uri in (call.to, call.request_uri):
            if uri:
                target = self.route_for(uri)
                if target is not None:
                    return Forward(target)
        return None

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        """Nothing to clean up."""


@attrs.define(eq=False)
class CompositeHandler(CallHandler):
    """A chain of handlers: the first one with a decision wins.

    Each handler's ``screen_call`` is asked in order; ``default`` (Reject 603) applies
    when none decides. The other hooks go to every handler in the chain, each
    handler's error logged without stopping the others.
    """

    default: Decision = attrs.field(factory=lambda: Reject("Decline", 603))
    _handlers: list[CallHandler] = attrs.field(init=False, factory=list)

    def add_handler(self, handler: CallHandler) -> CompositeHandler:
        """Append ``handler`` to the chain; returns self so calls can be chained."""
        self._handlers.append(handler)
        return self

    @property
    def handlers(self) -> tuple[CallHandler, ...]:
        """The chain, in order."""
        return tuple(self._handlers)

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        """The first decision of the chain, else ``default``."""
        decision = await self.screen_call(call)
        return decision if decision is not None else self.default

    async def screen_call(self, call: IncomingCall) -> Decision | None:
        """Ask each handler; None when none decides."""
        for handler in self._handlers:
            decision = await handler.screen_call(call)
            if decision is not None:
                return normalize_decision(decision)
        return None

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        """Tell every handler."""
        for handler in self._each():
            await _guarded(handler.on_call_ended(call, reason))

    async def on_call_established(
        self, call: CallSession, local_sdp: str | None, remote_sdp: str | None
    ) -> None:
        """Tell every handler."""
        for handler in self._each():
            await _guarded(handler.on_call_established(call, local_sdp, remote_sdp))

    async def on_call_state_changed(
        self, session_id: SessionId, old_state: CallState, new_state: CallState, reason: str | None
    ) -> None:
        """Tell every handler."""
        for handler in self._each():
            await _guarded(handler.on_call_state_changed(session_id, old_state, new_state, reason))

    async def on_dtmf(self, session_id: SessionId, digit: str) -> None:
        """Tell every handler."""
        for handler in self._each():
            await _guarded(handler.on_dtmf(session_id, digit))

    async def on_media_quality(self, session_id: SessionId, metrics: QualityMetrics) -> None:
        """Tell every handler."""
        for handler in self._each():
            await _guarded(handler.on_media_quality(session_id, metrics))

    async def on_incoming_transfer_request(
        self, session_id: SessionId, target: str, referred_by: str | None
    ) -> bool:
        """Accept only if every handler accepts."""
        for handler in self._each():
            if not await handler.on_incoming_transfer_request(session_id, target, referred_by):
                return False
        return True

    def _each(self) -> Iterable[CallHandler]:
        return list(self._handlers)


async def _guarded(hook: Awaitable[None]) -> None:
    """Await a hook, logging (not raising) its error so one bad handler can't stop others."""
    try:
        await hook
    except Exception:
        log.exception("call handler hook failed")


# The ready-made handlers whose on_call_ended does nothing (no hook is queued for them).
_EMPTY_ON_CALL_ENDED = frozenset({AutoAnswerHandler.on_call_ended, RoutingHandler.on_call_ended})
