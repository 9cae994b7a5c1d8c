"""The coordinator's machinery: lifecycle, call registry, state changes, hooks, media tasks."""

from __future__ import annotations

import abc
import collections
import contextlib
import functools
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import anyio
import anyio.abc
import sniffio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from rvoip_dialog_core import (
    ByeReceived,
    CancelReceived,
    DialogConfig,
    DialogEndpoint,
    DialogId,
    DialogTerminated,
    InviteFailed,
    LegId,
)
from rvoip_media_core import MediaClock, MediaEngine, run_media_engine
from rvoip_rtp_core import PortAllocator
from rvoip_session_core._call import Call, PendingRequest
from rvoip_session_core._config import SessionConfig
from rvoip_session_core._errors import InvalidState, SessionNotFound, TransportError
from rvoip_session_core._events import (
    CallEnded,
    EventHub,
    EventSubscription,
    SessionEventType,
    StateChanged,
)
from rvoip_session_core._handlers import CallHandler, decides_now, overridden_hooks
from rvoip_session_core._media import CallMedia, media_task, open_media_now
from rvoip_session_core._overload import LagMonitor, watch_loop_lag
from rvoip_session_core._state import can_transition
from rvoip_session_core._types import CallState, SessionId
from rvoip_transaction_core import Peer, TimerConfig

log = logging.getLogger("rvoip_session_core")

Hook = Callable[[], Awaitable[None]]


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``, also when a task group wrapped it in a group."""
    if isinstance(exc, OSError):
        cause = exc.__cause__
        if not exc.errno and isinstance(cause, OSError) and cause.errno:
            return cause  # uvloop: "could not bind ..." caused by "[Errno 98] Address in use"
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _os_error(inner)
            if found is not None:
                return found
    return None


class _TappedTransport:
    """Delegates to a transport, reporting each message sent to ``message_tap``."""

    def __init__(self, inner: object, owner: CoordinatorBase) -> None:
        self._inner = inner
        self._owner = owner

    def send(self, data: bytes, target: Peer, txn_id: int | None = None) -> None:
        tap = self._owner.message_tap
        if tap is not None:
            tap("out", data, (target.host, target.port))
        self._inner.send(data, target, txn_id)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


_ENDING_EVENTS = frozenset({ByeReceived, CancelReceived, DialogTerminated, InviteFailed})
"""Dialog events after which a call must send no more RTP."""


class _EventGate:
    """Holds dialog events back while session-core is inside a dialog-endpoint command.

    A command issued outside the endpoint's own flush (e.g. ``invite()`` from a task) may
    flush and deliver events for a call before session-core has recorded the command's
    result (the leg, the request ref); such events wait in ``held`` until the outermost
    command (``with gate:``) returns, then are handled in order. Every other event is
    handled at once, in the endpoint's callback.
    """

    __slots__ = ("_handle", "depth", "draining", "held")

    def __init__(self, handle: Callable[[object], None]) -> None:
        self._handle = handle
        self.depth = 0
        self.draining = False
        self.held: collections.deque[object] = collections.deque()

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *exc_info: object) -> None:
        self.depth -= 1
        if not self.depth and self.held and not self.draining:
            self.run(None)

    def run(self, event: object | None) -> None:
        """Handle ``event`` (if any), then every held event, in order."""
        self.draining = True
        handle, held = self._handle, self.held
        try:
            if event is not None:
                handle(event)
            while held:
                handle(held.popleft())
        finally:
            self.draining = False


class CoordinatorBase(abc.ABC):
    """State and plumbing shared by the coordinator's parts (not public API)."""

    def __init__(self, config: SessionConfig, handler: CallHandler) -> None:
        self.config = config
        self._handler = handler
        self._wanted = overridden_hooks(handler)
        self._decides_now = decides_now(handler)
        self._rng = random.Random(config.rng_seed)
        self._engine = MediaEngine()
        self._allocator = PortAllocator(*config.media_ports) if config.media_ports else None
        self._calls: dict[SessionId, Call] = {}
        # Recently ended calls, so wait_for_answer can still report how a call ended.
        self._ended: collections.OrderedDict[SessionId, Call] = collections.OrderedDict()
        self._by_leg: dict[LegId, SessionId] = {}
        self._by_dialog: dict[DialogId, SessionId] = {}
        self._pending: dict[int, PendingRequest] = {}
        self._events: EventHub[SessionEventType] = EventHub(buffer=config.event_buffer)
        self._ids = itertools.count(1)
        self._prefix = f"{self._rng.getrandbits(32):08x}"
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._endpoint: DialogEndpoint | None = None
        self._clock: MediaClock | None = None
        self._hooks_send: MemoryObjectSendStream[Hook] | None = None
        self._hooks_recv: MemoryObjectReceiveStream[Hook] | None = None
        self._gate = _EventGate(self._handle_dialog_event)
        self._dispatching = False
        # asyncio/uvloop: RTP sessions open synchronously (no task per call); trio: a task.
        self._sync_media = False
        self._hooks_done: anyio.Event | None = None
        self._running = False
        self._ringing: collections.deque[tuple[float, Call]] = collections.deque()
        self._ring_wake: anyio.Event | None = None
        self.counters = {
            "total": 0,
            "failed": 0,
            "incoming": 0,
            "outgoing": 0,
            "overload_rejected": 0,
        }
        lag = config.overload_lag
        self.loop_lag: LagMonitor | None = None if lag is None else LagMonitor(lag)
        """Event-loop lag watch when ``overload_lag`` is set (its ``injected`` is for tests)."""
        self._message_tap: Callable[[str, bytes, tuple[str, int]], None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the SIP transport and start the media clock (idempotent).

        Raises:
            TransportError: the SIP address could not be bound (e.g. port in use).
        """
        if self._running:
            return
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            self._tg = tg
            send, recv = anyio.create_memory_object_stream[Hook](10000)
            self._hooks_done = anyio.Event()
            self._hooks_send, self._hooks_recv = send, recv
            stack.callback(send.close)
            self._dispatching = True
            self._sync_media = sniffio.current_async_library() == "asyncio"
            stack.callback(self._stop_dispatch)
            cfg = self.config
            addr = (cfg.bind_host, cfg.sip_port)
            tls_server, tls_client = cfg.tls_contexts()
            endpoint = DialogEndpoint(
                udp=addr if cfg.transport == "UDP" else None,
                tcp=addr if cfg.transport == "TCP" else None,
                tls=addr if cfg.transport == "TLS" else None,
                tls_server_context=tls_server,
                tls_client_context=tls_client,
                user=cfg.user or "rvoip",
                config=None,  # replaced below, once the bound address is known
                timers=TimerConfig(t1=cfg.t1, t2=cfg.t2, trying_after=cfg.trying_after),
                rng=random.Random(self._rng.getrandbits(64)),
                on_event=self._on_dialog_event_safe,
            )
            try:
                self._endpoint = await stack.enter_async_context(endpoint)
            except Exception as exc:
                error = _os_error(exc)
                if error is None:
                    raise
                raise TransportError(
                    f"cannot bind SIP {cfg.transport} on {cfg.bind_host}:{cfg.sip_port}: "
                    f"{error.strerror or error}"
                ) from None
            # Via and Contact carry the port actually bound (port 0 picks one).
            self._endpoint.layer.config = self._dialog_config(self._endpoint.local(cfg.transport))
            if self._message_tap is not None:
                self._install_tap()
            self._clock = await stack.enter_async_context(run_media_engine(self._engine))
            tg.start_soon(self._run_hooks, recv)
            tg.start_soon(self._ring_loop)
            if self.loop_lag is not None:
                tg.start_soon(watch_loop_lag, self.loop_lag)
            if cfg.quality_interval > 0:
                tg.start_soon(self._quality_loop)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._running = True

    async def stop(self) -> None:
        """End every call (BYE, CANCEL or reject), then close sockets and tasks.

        The hang-ups run shielded from cancellation, and the sockets and tasks are
        released even when the ``async with`` block is left by an error or a timeout.
        """
        if not self._running or self._stack is None:
            return
        self._running = False
        stack, self._stack = self._stack, None
        try:
            with anyio.CancelScope(shield=True):
                for call in list(self._calls.values()):
                    try:
                        self._hang_up(call, "coordinator stopped")
                    except Exception:
                        log.exception("hanging up call %s on stop failed", call.id)
                # Let the last BYEs/CANCELs leave and the hooks run before sockets close.
                await anyio.sleep(0.02)
                for call in list(self._calls.values()):
                    self._finish(call, CallState.Terminated, "coordinator stopped")
                # Run the hooks already queued (on_call_ended ...) before the tasks stop.
                if self._hooks_send is not None:
                    self._hooks_send.close()
                    with anyio.move_on_after(1.0):
                        if self._hooks_done is not None:
                            await self._hooks_done.wait()
        finally:
            self._events.close()
            # Not shielded: the stack holds our task group, whose scope encloses this one.
            await stack.aclose()
            self._tg = None
            self._endpoint = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def is_running(self) -> bool:
        """True between start() and stop()."""
        return self._running

    def _dialog_config(self, bound: Peer) -> DialogConfig:
        """Contact/Via of the bound socket: its port always, its host unless a public one is set."""
        cfg = self.config
        host = cfg.public_host or bound.host
        shown = f"[{host}]" if ":" in host else host
        param = "" if cfg.transport in ("UDP", "TLS") else f";transport={cfg.transport.lower()}"
        # RFC 3261 §26.2 / RFC 5630: over TLS we advertise a sips Contact.
        scheme = "sips" if cfg.transport == "TLS" else "sip"
        return DialogConfig(
            contact=f"{scheme}:{cfg.user or 'rvoip'}@{shown}:{bound.port}{param}",
            via_host=host,
            via_port=bound.port,
            transport=cfg.transport,
            t1=cfg.t1,
            t2=cfg.t2,
            user_agent=cfg.user_agent,
        )

    @property
    def message_tap(self) -> Callable[[str, bytes, tuple[str, int]], None] | None:
        """Called as ``tap("out", data, (host, port))`` for every SIP message sent, or None.

        The transports are wrapped only while a tap is set (no cost per message otherwise).
        """
        return self._message_tap

    @message_tap.setter
    def message_tap(self, tap: Callable[[str, bytes, tuple[str, int]], None] | None) -> None:
        self._message_tap = tap
        if self._endpoint is None:
            return  # start() installs it
        if tap is None:
            self._remove_tap()
        else:
            self._install_tap()

    def _install_tap(self) -> None:
        """Report every SIP message sent (for ladders and tests) through ``message_tap``."""
        transports = self.endpoint.transactions.transports
        for name, transport in list(transports.items()):
            if not isinstance(transport, _TappedTransport):
                transports[name] = _TappedTransport(transport, self)  # type: ignore[assignment]

    def _remove_tap(self) -> None:
        transports = self.endpoint.transactions.transports
        for name, transport in list(transports.items()):
            if isinstance(transport, _TappedTransport):
                transports[name] = transport._inner  # type: ignore[assignment]

    @property
    def endpoint(self) -> DialogEndpoint:
        """The dialog endpoint (raises InvalidState before start)."""
        if self._endpoint is None:
            raise InvalidState("the coordinator is not started (await coordinator.start())")
        return self._endpoint

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        """The coordinator's task group (raises InvalidState before start)."""
        if self._tg is None:
            raise InvalidState("the coordinator is not started (await coordinator.start())")
        return self._tg

    @property
    def local_sip_address(self) -> tuple[str, int]:
        """The (host, port) the SIP transport is bound to."""
        peer = self.endpoint.local(self.config.transport)
        return peer.host, peer.port

    @property
    def local_uri(self) -> str:
        """Our SIP URI with the bound address, e.g. ``sip:alice@127.0.0.1:5060``."""
        return str(self.endpoint.config.contact)

    # --- registry -------------------------------------------------------------------------

    def _new_call(self, direction: str, from_: str, to: str) -> Call:
        sid = SessionId(f"{self._prefix}-{next(self._ids)}")
        # hot path: partials, not closures (a closure costs cells for what it captures).
        media = CallMedia(sid, self._engine, on_dtmf=functools.partial(self._rfc4733_dtmf, sid))
        call = Call(sid, direction, from_, to, CallState.Initiating, datetime.now(UTC), media)
        self._calls[sid] = call
        self.counters["total"] += 1
        self.counters[direction] += 1
        return call

    def _rfc4733_dtmf(self, session_id: SessionId, digit: str, duration_ms: int) -> None:
        self._dtmf(session_id, digit, duration_ms, "rfc4733")

    def _call(self, session_id: str) -> Call:
        call = self._calls.get(SessionId(str(session_id)))
        if call is None:
            raise SessionNotFound(str(session_id))
        return call

    def _call_or_ended(self, session_id: str) -> Call:
        sid = SessionId(str(session_id))
        call = self._calls.get(sid) or self._ended.get(sid)
        if call is None:
            raise SessionNotFound(sid)
        return call

    def _call_for_dialog(self, dialog_id: DialogId | None) -> Call | None:
        if dialog_id is None:
            return None
        sid = self._by_dialog.get(dialog_id) or self._by_leg.get(dialog_id.leg)
        return None if sid is None else self._calls.get(sid)

    def _bind_dialog(self, call: Call, dialog_id: DialogId) -> None:
        call.dialog_id = dialog_id
        self._by_dialog[dialog_id] = call.id

    async def _open_media(self, call: Call) -> None:
        if self._sync_media:
            self._open_media_now(call)
            return
        await self.task_group.start(
            media_task, call.media, self.config.bind_host, self._allocator, self._rng
        )

    def _open_media_now(self, call: Call) -> None:
        """Open the call's RTP at once (asyncio/uvloop: no task; raises MediaError)."""
        open_media_now(call.media, self.config.bind_host, self._allocator, self._rng)

    # --- state, events, hooks -------------------------------------------------------------

    def _publish(self, event: SessionEventType) -> None:
        self._events.publish(event)

    @property
    def _listened(self) -> bool:
        """True when someone subscribed to session events (else none need be built)."""
        return bool(self._events.subscriber_count)

    @property
    def handler(self) -> CallHandler:
        """The application's call handler."""
        return self._handler

    @handler.setter
    def handler(self, handler: CallHandler) -> None:
        self._handler = handler
        self._wanted = overridden_hooks(handler)
        self._decides_now = decides_now(handler)

    def _wants(self, hook: str) -> bool:
        """True when the handler implements ``hook`` (so it is worth queuing)."""
        return hook in self._wanted

    def _hook(self, hook: Hook) -> None:
        """Run a handler hook in order with the others, logging (never raising) its error."""
        if self._hooks_send is None:
            return
        try:
            self._hooks_send.send_nowait(hook)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            log.warning("handler hook dropped (queue full or closed)")

    async def _run_hooks(self, recv: MemoryObjectReceiveStream[Hook]) -> None:
        try:
            async with recv:
                async for hook in recv:
                    try:
                        await hook()
                    except Exception:
                        log.exception("call handler hook failed")
        finally:
            if self._hooks_done is not None:
                self._hooks_done.set()

    def _set_state(self, call: Call, new: CallState, reason: str | None = None) -> None:
        old = call.state
        if old is new:
            return
        if not can_transition(old, new):
            log.debug("call %s: ignoring %s -> %s", call.id, old.name, new.name)
            return
        call.state = new
        if not (new.is_established or new.is_in_progress):
            call.media.stop_sending()  # the call is ending: no RTP after our/their BYE
        self._state_changed(call.id, old, new, reason)

    def _state_changed(
        self, sid: SessionId, old: CallState, new: CallState, reason: str | None
    ) -> None:
        # hot path: no event object nor hook closure when nobody listens.
        if self._events.subscriber_count:
            self._publish(StateChanged(sid, old, new, reason))
        if "on_call_state_changed" in self._wanted:
            self._hook(functools.partial(self.handler.on_call_state_changed, sid, old, new, reason))

    def _finish(self, call: Call, state: CallState, reason: str, status: int | None = None) -> None:
        """End a call: final state, release media, registry entries and waiters."""
        if call.state.is_final:
            return
        old = call.state
        if not can_transition(old, state):
            state = CallState.Terminated
        call.state = state
        self._state_changed(call.id, old, state, reason)
        call.end_reason = reason
        if status is not None:
            call.final_status = status
        if call.state is CallState.Failed:
            self.counters["failed"] += 1
        call.media.close()
        self._calls.pop(call.id, None)
        self._ended[call.id] = call
        while len(self._ended) > 64:
            self._ended.popitem(last=False)
        if call.leg is not None:
            self._by_leg.pop(call.leg, None)
        if call.dialog_id is not None:
            self._by_dialog.pop(call.dialog_id, None)
        self._on_call_gone(call, reason)
        if call.decide_scope is not None:
            call.decide_scope.cancel()
        call.ended.set()
        call.transfer_done.set()
        if self._events.subscriber_count:
            self._publish(CallEnded(call.id, reason))
        if "on_call_ended" in self._wanted:
            self._hook(functools.partial(self.handler.on_call_ended, call.snapshot(), reason))

    def events(self) -> EventSubscription[SessionEventType]:
        """Typed session events (state changes, DTMF, quality, transfer) from now on."""
        return self._events.subscribe()

    # --- dialog events: handled in the endpoint's callback, in order --------------------

    def _on_dialog_event_safe(self, event: object) -> None:
        # hot path: handled inline (no queue, no task hop). Commands issued from here are
        # drained by the endpoint's flush once we return; events arriving while one of our
        # commands runs, or while held events are handled, wait their turn in the gate.
        if not self._dispatching:
            return
        if type(event) in _ENDING_EVENTS:
            # RTP stops at once, whatever happens to the event next (held back, or a
            # subclass that handles it later): no RTP after a BYE or CANCEL.
            self._stop_media_now(event)
        gate = self._gate
        if gate.depth or gate.draining:
            gate.held.append(event)
        else:
            gate.run(event)

    def _stop_dispatch(self) -> None:
        self._dispatching = False
        self._gate.held.clear()

    def _handle_dialog_event(self, event: object) -> None:
        try:
            self._on_dialog_event(event)
        except Exception:
            log.exception("handling dialog event %s failed", type(event).__name__)

    def _stop_media_now(self, event: object) -> None:
        """Stop sending RTP the moment a call ends, also when its event is held back.

        RTP must not go on after a BYE or CANCEL, even while the event waits its turn.
        """
        call: Call | None = None
        match event:
            case (
                ByeReceived(dialog_id=did)
                | CancelReceived(dialog_id=did)
                | DialogTerminated(dialog_id=did)
            ):
                call = self._call_for_dialog(did)
                if call is not None and call.dialog_id not in (None, did):
                    call = None  # another fork of the same INVITE ended
            case InviteFailed(leg=leg):
                sid = self._by_leg.get(leg)
                call = None if sid is None else self._calls.get(sid)
        if call is not None:
            call.media.stop_sending()

    # --- implemented by the parts ---------------------------------------------------------

    @abc.abstractmethod
    def _on_dialog_event(self, event: object) -> None:
        """Handle one dialog-layer event (synchronously, in order)."""

    @abc.abstractmethod
    def _on_call_gone(self, call: Call, reason: str) -> None:
        """A call ended: drop it from bridges and pending requests."""

    @abc.abstractmethod
    def _hang_up(self, call: Call, reason: str) -> None:
        """End a call by the right means for its state (CANCEL, BYE or a rejection)."""

    @abc.abstractmethod
    def _dtmf(self, session_id: SessionId, digit: str, duration_ms: int, method: str) -> None:
        """A DTMF digit arrived on a call."""

    @abc.abstractmethod
    async def _ring_loop(self) -> None:
        """Send a 180 for incoming calls whose handler is still deciding."""

    @abc.abstractmethod
    async def _quality_loop(self) -> None:
        """Publish quality reports every ``quality_interval`` seconds."""
