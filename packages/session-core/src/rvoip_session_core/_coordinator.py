"""``SessionCoordinator``: a thin façade over the call layer and its collaborators.

Who does what:

- ``CallLayer`` (``_calls.py``): every call's state machine, driven by dialog events and
  deadlines; the table of states and triggers is in ``_state.py``.
- ``CallRegistry`` (``_registry.py``): calls by id, leg and dialog; the ended calls.
- ``HookRunner`` (``_hooks.py``): the application's handler and its decision strategy.
- ``MediaManager`` (``_media_manager.py``): RTP sessions, the media engine, statistics.
- ``TransferService`` (``_transfer.py``): blind and attended transfer, through a
  ``CallPlacer``.
- ``CallReplacements`` (``_replaces.py``): incoming INVITEs with Replaces (RFC 3891).
- the driver (``_driver.py``): the SIP endpoint, the event gate, one timer task.
- ``BridgeManager`` (``_bridge.py``): calls whose audio is connected.

The public methods below check their arguments and delegate. The lifecycle (``start``,
``stop``, ``run``, ``async with``) is here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc
import attrs
import numpy as np
import sniffio
from numpy.typing import ArrayLike

from rvoip_dialog_core import target_for
from rvoip_session_core._accounts import Account
from rvoip_session_core._bridge import BridgeInfo, BridgeManager
from rvoip_session_core._call import Call
from rvoip_session_core._calls import CallLayer
from rvoip_session_core._drain import DRAIN_POLL, DrainState
from rvoip_session_core._driver import (
    DeadlineTimer,
    EndpointFactory,
    LoopClock,
    MessageTap,
    SipEndpoint,
    guarded,
    not_started,
    open_socket_endpoint,
)
from rvoip_session_core._errors import (
    CallCancelled,
    CallFailed,
    InvalidState,
    MediaError,
    RequestFailed,
    SessionError,
    Timeout,
    TransportError,
)
from rvoip_session_core._event_bodies import DIALOG_INFO_TYPE, MESSAGE_SUMMARY_TYPE
from rvoip_session_core._event_packages import BusyLamp, DialogEventPackage, MessageWaiting
from rvoip_session_core._events import (
    BridgeEventType,
    EventHub,
    EventSubscription,
    LazyEvent,
    RegistrationStatus,
    SessionEventType,
)
from rvoip_session_core._forking import CallRouter
from rvoip_session_core._handlers import CallHandler
from rvoip_session_core._hooks import HookRunner
from rvoip_session_core._ivr import (
    CollectedDigits,
    DigitCollector,
    PromptSource,
    run_collector,
    wait_for_prompt,
)
from rvoip_session_core._media import SAMPLE_RATE, AudioFrame, AudioSourceSpec, make_source
from rvoip_session_core._media_manager import MediaBackend, MediaManager
from rvoip_session_core._messages import MESSAGE_MAX_PAGER_SIZE, MessageService, extra_headers
from rvoip_session_core._offer_answer import (
    audio_direction,
    negotiated,
    parse_offer,
    with_direction,
)
from rvoip_session_core._overload import LAG_INTERVAL, LagMonitor, watch_loop_lag
from rvoip_session_core._recording import (
    DEFAULT_MAX_RECORDING_SECONDS,
    CallRecorder,
    RecordingMode,
)
from rvoip_session_core._registrar import Binding, Registrar
from rvoip_session_core._registrar_service import RegistrarService
from rvoip_session_core._registration import Registrations
from rvoip_session_core._registry import CallRegistry
from rvoip_session_core._replaces import CallReplacements
from rvoip_session_core._settings import SessionConfig
from rvoip_session_core._state import DTMF_DIGITS, Trigger, dtmf_relay_body
from rvoip_session_core._subscriptions import (
    SUBSCRIPTION_BUFFER,
    EventSubscriptions,
    Subscription,
)
from rvoip_session_core._transfer import TransferService
from rvoip_session_core._types import (
    Accept,
    BridgeId,
    CallDirection,
    CallSession,
    CallState,
    IncomingCall,
    MediaInfo,
    MediaStatistics,
    Reject,
    SessionId,
    SessionStats,
)
from rvoip_sip_core import (
    Response,
    SipParseError,
    SipUri,
    Uri,
    make_request,
    new_call_id,
    new_tag,
    parse_uri,
)
from rvoip_transaction_core import (
    Clock,
    SystemClock,
    TransactionTimeoutError,
    TransportFailedError,
)

log = logging.getLogger("rvoip_session_core")

Seconds = float | timedelta

HOOKS_DRAIN = 1.0
"""Seconds ``stop()`` lets the hooks already queued (``on_call_ended`` ...) run."""

BINDING_SWEEP = 10.0
"""Seconds between sweeps of a registrar's lapsed bindings (their events come this late)."""

# Under trio, coordinators started with start() (no runner task) per starting task, in
# start order: stop() must take them last-in first-out (see SessionCoordinator.start).
_STARTED_IN_TASK: dict[int, list[SessionCoordinator]] = {}


def _seconds(value: Seconds) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@attrs.frozen
class PreparedCall:
    """An outgoing call with its media ready and SDP offer built, not yet sent."""

    session_id: SessionId
    from_: str
    to: str
    sdp_offer: str
    local_rtp_port: int


def _session_id(call: str | IncomingCall | CallSession | PreparedCall) -> str:
    if isinstance(call, IncomingCall | CallSession):
        return call.id
    if isinstance(call, PreparedCall):
        return call.session_id
    return call


class _StartedStatus:
    """``task_status`` of the asyncio runner task: resolves a future on ``started()``."""

    def __init__(self, future: asyncio.Future[None]) -> None:
        self._future = future

    def started(self, value: object = None) -> None:
        if not self._future.done():
            self._future.set_result(None)


class SessionCoordinator:
    """Makes, answers and controls calls; build it with ``SessionManagerBuilder``.

    Start it with ``await coordinator.start()`` (stop with ``stop()``), use it as
    ``async with coordinator:``, or run it in a task group with
    ``await tg.start(coordinator.run)``. ``SessionControl.x(coordinator, ...)`` and
    ``coordinator.x(...)`` are the same call.

    ``start()``/``stop()`` work for any number of coordinators in any order on asyncio and
    uvloop (each coordinator owns a runner task), also with ``stop()`` called from another
    task or after the scope that called ``start()`` ended. trio has no task outside a
    nursery: there ``start()`` runs the coordinator in the calling task and ``stop()``
    must come from that task, last started first (``InvalidState`` says so otherwise);
    ``async with`` or ``nursery.start(coordinator.run)`` have no such rule.

    Args:
        config: the settings (``SessionManagerBuilder.config()``).
        handler: the application's call handler.
        endpoint_factory: opens the SIP endpoint (default: UDP/TCP/TLS sockets); the
            virtual network of ``rvoip_session_core.testing`` passes its own.
        media_backend: how RTP opens (default: UDP sockets); tests pass in-memory media.
    """

    def __init__(
        self,
        config: SessionConfig,
        handler: CallHandler,
        *,
        endpoint_factory: EndpointFactory | None = None,
        media_backend: MediaBackend | None = None,
    ) -> None:
        self.config = config
        seed = config.rng_seed
        # Identifiers on the wire come from the OS CSPRNG unless a test seeds the RNG.
        self._rng: random.Random = random.SystemRandom() if seed is None else random.Random(seed)
        prefix = f"{self._rng.getrandbits(32):08x}"
        self._endpoint_factory: EndpointFactory = endpoint_factory or open_socket_endpoint
        self._hooks = HookRunner(handler)
        self._registry = CallRegistry(prefix)
        self._media = MediaManager(
            config.bind_host, config.media_ports, self._rng, media_backend, config.rtp_latch
        )
        self._events: EventHub[SessionEventType] = EventHub(buffer=config.event_buffer)
        self._bridges = BridgeManager(prefix=f"bridge-{prefix}")
        self._registrations = Registrations(
            self._registry, self._events.publish, config.t1, config.registration_settings
        )
        lag = config.overload_lag
        self.loop_lag: LagMonitor | None = None if lag is None else LagMonitor(lag)
        """Event-loop lag watch when ``overload_lag`` is set (its ``injected`` is for tests)."""
        self._layer = CallLayer(
            config,
            config.clock or SystemClock(),
            self._registry,
            self._hooks,
            self._media,
            self._events,
            self._rng,
            self._bridges.call_ended,
            self.loop_lag,
        )
        self._layer.replacements = CallReplacements(
            self._registry, self._bridges, self._events.publish
        )
        self._layer.transfers = TransferService(
            self._layer,
            self,
            self._hooks,
            self._events,
            self._registry.find,
            self._start_soon,
            self._request,
        )
        self._layer.messages = MessageService(
            lambda: self.endpoint,
            self._hooks,
            self._events.publish,
            self._start_soon,
            self._registry.for_dialog,
            config.authenticator,
            self._layer.now,
        )
        self._registrar_service: RegistrarService | None = None
        if config.registrar is not None:
            self._wire_registrar(config.registrar)
        self._subscriptions = EventSubscriptions(config.event_providers)
        self._layer.subscriptions = self._subscriptions
        for _, provider in config.event_providers:
            if isinstance(provider, DialogEventPackage):
                # RFC 4235: the dialog package reads our calls and hears their changes.
                provider.bind(self._registry.find, config.user or "", config.advertised_host)
                self._layer.state_watcher = provider.call_changed
        self._message_tap: MessageTap | None = None
        self._tap_received = False
        self._endpoint: SipEndpoint | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._running = False
        self._stop_requested: anyio.Event | None = None
        self._served: anyio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._owner_task: int | None = None
        self._drain = DrainState(config.drain)

    def _wire_registrar(self, registrar: Registrar) -> None:
        """REGISTER goes to a ``RegistrarService``; ``CallDecision.Route`` to a router."""
        layer = self._layer
        service = RegistrarService(
            registrar, self.config.authenticator, layer.now, self._events.publish
        )
        self._registrar_service = service

        def take(ref: int, request: Any) -> bool:
            return service.handle(ref, request, self.endpoint.respond)

        layer.requests = take
        config = self.config
        layer.router = CallRouter(
            self,
            self._registry,
            registrar,
            layer.now,
            layer.decide,
            layer.route_reject,
            layer.hang_up,
            self._is_own_address,
            answer_timeout=config.incoming_call_timeout + 1.0,
            connect_timeout=64 * config.t1,
        )

    def _is_own_address(self, uri: Uri) -> bool:
        """Whether ``uri`` names this coordinator (a host we bind or advertise, our port)."""
        endpoint = self._endpoint
        if not isinstance(uri, SipUri) or endpoint is None:
            return False
        cfg = self.config
        host = uri.host.strip("[]").lower()
        if host not in {cfg.bind_host.lower(), cfg.advertised_host.lower()}:
            return False
        port = uri.port if uri.port is not None else (5061 if uri.scheme == "sips" else 5060)
        for transport in cfg.served_transports():
            try:
                if endpoint.local(transport).port == port:
                    return True
            except (KeyError, RuntimeError):
                continue
        return False

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the SIP transport and start the media clock (idempotent).

        On asyncio/uvloop the coordinator runs in a runner task of its own, so any number of
        coordinators start and stop in any order. Under trio it runs in the calling task
        (see the class docstring).

        Raises:
            TransportError: the SIP address could not be bound (e.g. port in use).
        """
        if self._running:
            return
        if sniffio.current_async_library() == "asyncio":
            await self._start_runner()
            return
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._open(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        task = anyio.get_current_task().id
        self._owner_task = task
        _STARTED_IN_TASK.setdefault(task, []).append(self)

    async def _start_runner(self) -> None:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        runner = loop.create_task(self._serve(task_status=_StartedStatus(started)))
        try:
            await asyncio.wait({started, runner}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            runner.cancel()
            raise
        if not started.done():
            runner.result()  # raises what made the start fail (TransportError ...)
            raise InvalidState("the coordinator stopped while starting")
        self._runner = runner

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the coordinator until ``stop()``: ``await task_group.start(coordinator.run)``.

        The structured form on every backend (trio's nursery included); ``stop()`` may be
        called from any task.
        """
        if self._running:
            raise InvalidState("the coordinator is already running")
        await self._serve(task_status=task_status)

    async def _serve(self, *, task_status: Any) -> None:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._open(stack)
        except BaseException:
            await stack.aclose()
            raise
        stop, served = anyio.Event(), anyio.Event()
        self._stop_requested, self._served = stop, served
        try:
            task_status.started()
            await stop.wait()
        finally:
            try:
                with anyio.CancelScope(shield=True):
                    await self._shutdown()
                await stack.aclose()
            finally:
                served.set()

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        """Open everything into ``stack`` (closed in reverse order by ``stop``)."""
        cfg = self.config
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        self._tg = tg
        clock: Clock = cfg.clock or LoopClock()
        recv = self._hooks.open()
        tg.start_soon(self._hooks.run, recv)
        await stack.enter_async_context(self._media.running(tg))
        layer = self._layer
        timer = DeadlineTimer(clock, layer.next_deadline, layer.handle_timers)
        endpoint = await stack.enter_async_context(
            self._endpoint_factory(cfg, self._rng, layer.on_event)
        )
        # No await from here to attach: an INVITE arriving now is handled, not dropped.
        stack.callback(self._detach)
        self._endpoint = endpoint
        layer.attach(endpoint, self._start_soon, timer.wake, clock)
        if self._message_tap is not None:
            endpoint.set_tap(self._message_tap, self._tap_received)
        if self._drain.draining:  # begin_drain() before start()
            endpoint.refuse_method("OPTIONS")
        tg.start_soon(timer.run)
        if self.loop_lag is not None:
            tg.start_soon(watch_loop_lag, self.loop_lag, LAG_INTERVAL, clock.now)
        if self._registrar_service is not None:
            tg.start_soon(self._sweep_bindings, self._registrar_service)
        self._running = True
        self._registrations.attach(
            endpoint,
            self._start_soon,
            lambda: new_call_id(self._rng, endpoint.config.via_host),
            clock.now,
        )
        for account in cfg.registrations:
            self._registrations.register(account)
        self._subscriptions.attach(endpoint, self.local_uri)

    def _detach(self) -> None:
        self._subscriptions.detach()
        self._registrations.detach()
        self._layer.detach()
        self._endpoint = None
        self._tg = None
        self._running = False

    async def _shutdown(self) -> None:
        """End every call with BYE/CANCEL/480 and wait (``stop_timeout``) for them to end.

        The transactions keep retransmitting meanwhile (RFC 3261 §17.1.2.2 Timer E), so a
        BYE lost once still reaches the peer; calls not ended in time are dropped.
        """
        layer = self._layer
        # Our bindings go first (REGISTER Expires 0, RFC 3261 §10.2.2), within the same
        # stop_timeout the hang-ups get.
        with anyio.move_on_after(self.config.stop_timeout):
            await self._registrations.unregister_all()
        layer.begin_stop()
        for call in self._registry:
            try:
                layer.hang_up(call, "coordinator stopped")
            except Exception:
                log.exception("hanging up call %s on stop failed", call.id)
        with anyio.move_on_after(self.config.stop_timeout):
            await layer.wait_idle()
        for call in self._registry:
            layer.finish(call, Trigger.ENDED, "coordinator stopped")
        # Run the hooks already queued (on_call_ended ...) before the tasks stop.
        await self._hooks.close(HOOKS_DRAIN)
        self._events.close()
        self._bridges.close()

    async def stop(self) -> None:
        """End every call (BYE, CANCEL or reject), wait for them, then close sockets and tasks.

        Waits up to ``stop_timeout`` (default 2 s) for the BYEs to be answered. The hang-ups
        run shielded from cancellation, and the sockets and tasks are released even when
        the ``async with`` block is left by an error or a timeout.

        Raises:
            InvalidState: under trio, a coordinator started with ``start()`` is stopped from
                another task, or before a coordinator started after it.
        """
        if self._stop_requested is not None and self._served is not None:
            # Runner task (asyncio) or run(): ask it to stop, wait until it has.
            stop, served, runner = self._stop_requested, self._served, self._runner
            stop.set()
            with anyio.CancelScope(shield=True):
                await served.wait()
                if runner is not None:
                    self._runner = None
                    await asyncio.wait({runner})
                    if not runner.cancelled() and runner.exception() is not None:
                        log.error("coordinator runner failed", exc_info=runner.exception())
            self._stop_requested = self._served = None
            return
        stack = self._stack
        if stack is None:
            return
        self._check_stop_order()
        self._stack = None
        try:
            with anyio.CancelScope(shield=True):
                await self._shutdown()
        finally:
            # Not shielded: the stack holds our task group, whose scope encloses this one.
            await stack.aclose()

    # --- graceful drain (see _drain.py) ----------------------------------------------------

    @property
    def draining(self) -> bool:
        """True once ``begin_drain()`` or ``drain()`` was called (new INVITEs get 503)."""
        return self._drain.draining

    def begin_drain(self) -> None:
        """Refuse new calls from now on: every new INVITE gets 503 with a Retry-After.

        RFC 3261 §21.5.4: the 503 tells a proxy in front (Kamailio's dispatcher) to try
        another worker. OPTIONS are answered 405 from now on, so the proxy's health
        probes fail and it stops sending new calls here at all. The calls already up are
        not touched: their other in-dialog requests and media are served as usual.
        Idempotent; a drain is never undone.
        """
        refusal = self._drain.begin(self._layer.now())
        if refusal is not None:
            self._layer.drain_refusal = refusal
            if self._endpoint is not None:
                # A balancer's OPTIONS probes now fail (405: dialog-core answers OPTIONS
                # itself, with 200 while allowed), so it takes us out of its set
                # (Kamailio's dispatcher: one failed probe) instead of trying each new
                # call here first.
                self._endpoint.refuse_method("OPTIONS")

    async def drain(self, timeout: float | None = None) -> int:
        """Drain: refuse new calls and wait for the calls up to end by themselves.

        Returns once no call is left, or after ``timeout`` seconds (None: the
        ``DrainSettings.timeout`` of ``with_drain``, default 30 s). It does not stop the
        coordinator: leave ``async with`` (or call ``stop()``) next, which hangs up the
        calls still up with BYE and waits for the answers (``stop_timeout``).

        Args:
            timeout: seconds to wait for the calls to end (None: the configured one).

        Returns:
            The number of calls still up when it returned (0: all ended by themselves).
        """
        self.begin_drain()
        limit = self._drain.settings.timeout if timeout is None else timeout
        registry = self._registry
        with anyio.move_on_after(max(0.0, limit)):
            # A poll, not the call layer's idle event: stop() may wait on that one from
            # another task meanwhile. Ten cheap wake-ups a second, only while draining.
            while len(registry):
                await anyio.sleep(DRAIN_POLL)
        return len(registry)

    def _check_stop_order(self) -> None:
        task = self._owner_task
        if task is None:
            return  # entered by async with: stopped by its own exit
        started = _STARTED_IN_TASK.get(task, [])
        if anyio.get_current_task().id != task or not started or started[-1] is not self:
            raise InvalidState(
                "under trio, a coordinator started with start() runs in the task that "
                "started it: stop it from that task, the last started first, or run it "
                "with 'async with coordinator:' or 'await nursery.start(coordinator.run)'"
            )
        started.pop()
        if not started:
            del _STARTED_IN_TASK[task]
        self._owner_task = None

    async def __aenter__(self) -> Self:
        if not self._running:
            stack = contextlib.AsyncExitStack()
            await stack.__aenter__()
            try:
                await self._open(stack)
            except BaseException:
                await stack.aclose()
                raise
            self._stack = stack
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

    def _start_soon(self, func: Any, *args: object) -> None:
        if self._tg is None:
            raise not_started()
        self._tg.start_soon(guarded, func, *args)

    # --- collaborators and plumbing -------------------------------------------------------

    @property
    def handler(self) -> CallHandler:
        """The application's call handler."""
        return self._hooks.handler

    @handler.setter
    def handler(self, handler: CallHandler) -> None:
        self._hooks.handler = handler

    @property
    def registry(self) -> CallRegistry:
        """The call registry (for inspection: live and ended calls, leak checks)."""
        return self._registry

    @property
    def call_layer(self) -> CallLayer:
        """The call layer (for inspection and tests: its ``handle`` takes dialog events)."""
        return self._layer

    @property
    def media_manager(self) -> MediaManager:
        """The media manager (for inspection: engine streams, RTP ports in use)."""
        return self._media

    @property
    def counters(self) -> dict[str, int]:
        """Call counters: total, failed, incoming, outgoing, overload_rejected, and more.

        RFC 4028: ``session_refreshes`` (successful refreshes of ours, UPDATE or
        re-INVITE), ``session_refresh_reinvites`` (re-INVITEs sent as refreshes) and
        ``session_refresh_failed`` (refresh re-INVITEs refused).
        """
        return self._registry.counters

    def sip_stats(self) -> dict[str, int]:
        """Counters of the SIP stack (transactions, transports, overload control, dialogs).

        E.g. ``shed_invite`` (new INVITEs answered 503 under overload), ``udp_...``
        transport counters, ``rejected_invalid`` (requests answered 400), ``dialog_...``.
        """
        return self.endpoint.stats()

    @property
    def message_tap(self) -> MessageTap | None:
        """Called as ``tap("out", data, (host, port))`` for every SIP message sent, or None.

        The transports are wrapped only while a tap is set (no cost per message otherwise).
        """
        return self._message_tap

    @message_tap.setter
    def message_tap(self, tap: MessageTap | None) -> None:
        self.set_message_tap(tap)

    def set_message_tap(self, tap: MessageTap | None, *, received: bool = False) -> None:
        """Report every SIP message sent (and with ``received``, received) to ``tap``.

        Sent messages arrive as ``tap("out", data, (host, port))`` with the target,
        received ones as ``tap("in", data, (host, port))`` with the source, before they
        are parsed (what ``rvoip --sip-log`` writes). None removes the tap: nothing is
        wrapped and no message pays for it.
        """
        self._message_tap = tap
        self._tap_received = received and tap is not None
        if self._endpoint is not None:
            self._endpoint.set_tap(tap, self._tap_received)

    @property
    def endpoint(self) -> SipEndpoint:
        """The SIP endpoint (raises InvalidState before start)."""
        if self._endpoint is None:
            raise not_started()
        return self._endpoint

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        """The coordinator's task group (raises InvalidState before start)."""
        if self._tg is None:
            raise not_started()
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

    def events(self) -> EventSubscription[SessionEventType]:
        """Typed session events (state changes, DTMF, quality, transfer) from now on."""
        return self._events.subscribe()

    # --- registrar ------------------------------------------------------------------------

    @property
    def registrar(self) -> Registrar:
        """The registrar's binding store (``with_registrar``).

        Raises:
            InvalidState: the coordinator has no registrar.
        """
        if self._registrar_service is None:
            raise InvalidState("no registrar: use SessionManagerBuilder.with_registrar")
        return self._registrar_service.registrar

    def bindings(self, aor: str) -> tuple[Binding, ...]:
        """The live bindings of ``aor`` now (highest q first); see ``registrar``."""
        return self.registrar.bindings(aor, self._layer.now())

    async def _sweep_bindings(self, service: RegistrarService) -> None:
        """Drop lapsed bindings every ``BINDING_SWEEP`` seconds (``BindingsChanged`` events)."""
        while True:
            await anyio.sleep(BINDING_SWEEP)
            service.sweep()

    # --- subscriptions (RFC 6665) ---------------------------------------------------------

    async def subscribe(
        self,
        uri: str,
        event: str,
        expires: int = 3600,
        accept: Iterable[str] = (),
        *,
        from_: str | None = None,
        buffer: int = SUBSCRIPTION_BUFFER,
    ) -> Subscription:
        """Subscribe to ``event`` (``dialog``, ``message-summary`` …) at ``uri``.

        RFC 6665: SUBSCRIBE, refreshed before it expires, subscribed again when the
        notifier asks for it. The returned :class:`Subscription` has the ``state``, yields
        each NOTIFY as a ``Notification`` (``async for``) and ends with
        ``unsubscribe()``. ``accept``: body types we take (the ``Accept`` header);
        ``buffer``: notifications kept for a reader that is behind (default 100; the
        oldest go first, counted in ``dropped``).

        Raises:
            InvalidState: not running, a malformed event, or too many subscriptions.
        """
        return self._subscriptions.subscribe(
            uri, event, expires=expires, accept=accept, from_=from_, buffer=buffer
        )

    async def watch_busy_lamp(self, uri: str, expires: int = 600) -> BusyLamp:
        """A busy-lamp field for the user at ``uri`` (RFC 4235 ``dialog`` subscription)."""
        sub = await self.subscribe(uri, "dialog", expires, (DIALOG_INFO_TYPE,))
        return BusyLamp(sub)

    async def watch_message_waiting(self, uri: str, expires: int = 3600) -> MessageWaiting:
        """Message-waiting indication for the mailbox at ``uri`` (RFC 3842)."""
        sub = await self.subscribe(uri, "message-summary", expires, (MESSAGE_SUMMARY_TYPE,))
        return MessageWaiting(sub)

    def subscription_counts(self) -> dict[str, int]:
        """Live subscriptions, ours and served."""
        return self._subscriptions.counts()

    # --- registration -----------------------------------------------------------------------

    def register(
        self,
        registrar: str,
        *,
        username: str,
        password: str,
        aor: str | None = None,
        expires: int = 3600,
        realm: str | None = None,
    ) -> str:
        """Register with ``registrar`` and keep the binding refreshed; returns the AOR.

        Runs in the background: watch ``RegistrationStateChanged`` events or read
        :meth:`registration_status`. Several accounts may be registered (one per AOR);
        registering an AOR again replaces its registration. See
        ``SessionManagerBuilder.with_registration`` for what happens on the wire.

        Raises:
            InvalidState: the coordinator is not running.
            ConfigurationError: the registrar is not a SIP URI, or expires is not positive.
        """
        account = Account(registrar, username, password, aor or "", expires, realm)
        self._registrations.register(account)
        return account.aor

    async def unregister(self, aor: str) -> RegistrationStatus:
        """Remove our binding for ``aor`` (REGISTER with Expires 0) and stop refreshing it.

        Raises:
            InvalidState: no registration for ``aor``.
        """
        return await self._registrations.unregister(aor)

    def registration_status(self) -> tuple[RegistrationStatus, ...]:
        """The status of every registration (state, granted expires, last status, reason)."""
        return self._registrations.statuses()

    async def _request(
        self, call: Call, method: str, timeout: float | None = None, **kw: Any
    ) -> Response:
        """Send a request in the call's dialog and wait for its final response."""
        ref, pending = self._layer.send_request(call, method, **kw)
        limit = timeout if timeout is not None else 64 * self.config.t1 + 2.0
        try:
            with anyio.fail_after(limit):
                await pending.done.wait()
        except TimeoutError:
            raise Timeout(
                f"no final response to {method} after {limit:.1f}s", session_id=call.id
            ) from None
        finally:
            self._registry.drop_pending(ref)
        if pending.response is None:
            raise CallFailed(481, f"the call ended during {method}", session_id=call.id)
        return pending.response

    # --- making calls ---------------------------------------------------------------------

    async def prepare_outgoing_call(
        self, from_: str, to: str, *, headers: Mapping[str, str] | None = None
    ) -> PreparedCall:
        """Open media and build the SDP offer of a call to ``to`` without sending it yet.

        ``headers`` are extra lines for the INVITE (P-Asserted-Identity, Diversion, X-…);
        ones the stack builds itself (Via, From, To, Call-ID, CSeq …) raise InvalidState.
        """
        try:
            parse_uri(to)
        except SipParseError as exc:
            raise InvalidState(f"bad target URI {to!r}: {exc.reason}") from None
        try:
            invite_headers = tuple(extra_headers(headers))
        except ValueError as exc:
            raise InvalidState(str(exc)) from None
        if self._endpoint is None:
            raise not_started()
        call = self._layer.new_call(CallDirection.Outgoing, from_, to)
        call.invite_headers = invite_headers
        try:
            await self._media.open(call.media)
        except SessionError:
            self._layer.finish(call, Trigger.FAILED, "no media ports")
            raise
        call.local_sdp = self._layer.offer_for(call)
        port = call.media.local_port
        assert port is not None
        return PreparedCall(call.id, from_, to, str(call.local_sdp), port)

    async def initiate_prepared_call(self, prepared: PreparedCall) -> CallSession:
        """Send the INVITE of a prepared call."""
        call = self._registry.get(prepared.session_id)
        if call.leg is not None:
            raise InvalidState("the call was already initiated", session_id=call.id)
        self._layer.invite(call)
        return call.snapshot()

    async def create_outgoing_call(
        self,
        from_: str,
        to: str,
        sdp: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> CallSession:
        """Call ``to`` as ``from_``; ``sdp`` is the offer (None: generated).

        ``headers``: extra INVITE header lines, e.g. ``{"P-Asserted-Identity":
        "<sip:+15551234@pbx>"}`` (see ``prepare_outgoing_call``).
        """
        prepared = await self.prepare_outgoing_call(from_, to, headers=headers)
        if sdp is not None:
            self._registry.get(prepared.session_id).local_sdp = parse_offer(sdp)
        return await self.initiate_prepared_call(prepared)

    async def wait_for_answer(self, session_id: str, timeout: Seconds = 30.0) -> None:
        """Wait until the call is answered.

        Raises:
            CallFailed: the call was rejected (``status`` is the SIP code).
            CallCancelled: it was cancelled.
            Timeout: no answer within ``timeout`` (the call keeps ringing).
        """
        await self.wait_answered(SessionId(str(session_id)), _seconds(timeout))

    async def wait_answered(self, session_id: SessionId, timeout: float) -> None:
        """``wait_for_answer`` with seconds (the transfer service's ``CallPlacer``)."""
        call = self._registry.get_or_ended(session_id)
        with anyio.move_on_after(timeout):
            await _either(call.answered, call.ended)
        if call.answered.is_set():
            return
        if call.state is CallState.Cancelled:
            raise CallCancelled(session_id=call.id)
        if call.state.is_final:
            raise CallFailed(
                call.final_status or 0,
                call.final_reason or call.end_reason or "",
                session_id=call.id,
            )
        raise Timeout(f"not answered within {timeout:g}s", session_id=call.id)

    async def place_call(
        self, from_: str, to: str, headers: Mapping[str, str] | None = None
    ) -> SessionId:
        """Start an outgoing call and return its id (the transfer service's ``CallPlacer``)."""
        session = await self.create_outgoing_call(from_, to, headers=headers)
        return session.id

    # --- answering ------------------------------------------------------------------------

    def _waiting_call(self, call: IncomingCall | str) -> Call:
        record = self._registry.get(_session_id(call))
        if record.direction is not CallDirection.Incoming or record.invite_ref is None:
            raise InvalidState("the call is not waiting for an answer", session_id=record.id)
        return record

    async def accept_incoming_call(
        self, call: IncomingCall | str, sdp: str | None = None
    ) -> CallSession:
        """Answer a deferred incoming call with 200 (``sdp``: the answer, None to generate)."""
        record = self._waiting_call(call)
        self._layer.decide(record, Accept(sdp))
        with anyio.move_on_after(5.0):
            await _either(record.answered, record.ended)
        return record.snapshot()

    async def send_early_media(self, call: IncomingCall | str, sdp: str | None = None) -> None:
        """Send early media on a deferred incoming call: a 183 with our SDP answer, media on.

        From a ``CallDecision.Defer`` (the call is waiting for an answer): the 183 carries
        our answer to the INVITE's offer (``sdp``, or one generated) and goes reliably
        (RFC 3262: ``Require: 100rel``, retransmitted until the caller's PRACK) when the
        caller supports or requires ``100rel``. RTP starts both ways at once, so the
        application can play a prompt (``set_audio_source``) before deciding; the call
        shows ``CallState.EarlyMedia``. ``accept_incoming_call`` then answers 200 with
        the same SDP, ``reject_incoming_call`` refuses it (media stops).

        Raises:
            InvalidState: the call is not waiting for an answer, or its INVITE had no SDP
                offer.
            SdpNegotiationError: the offer cannot be answered (or ``sdp`` does not parse).
        """
        self._layer.send_early_media(self._waiting_call(call), sdp)

    async def reject_incoming_call(
        self, call: IncomingCall | str, reason: str = "Decline", status: int = 603
    ) -> None:
        """Refuse a deferred incoming call (default 603 Decline)."""
        self._layer.decide(self._waiting_call(call), Reject(reason, status))

    # --- in-call control ------------------------------------------------------------------

    def _established_call(self, session_id: str) -> Call:
        call = self._registry.get(session_id)
        if not call.state.is_established or call.dialog_id is None:
            raise InvalidState(
                f"needs an answered call, state is {call.state.name}", session_id=call.id
            )
        return call

    async def refresh_session(self, session_id: str) -> bool:
        """Refresh the call's RFC 4028 session timer now instead of at half its interval.

        An UPDATE (a re-INVITE with the same SDP when the peer does not allow UPDATE); its
        success is reported as ``SessionRefreshed``, and without one the call ends at the
        session's expiry. Checks that the peer is still there; tests use it not to wait.

        Returns:
            False when the call runs no session timer that we refresh (nothing sent).
        """
        call = self._established_call(session_id)
        assert call.dialog_id is not None
        with self._layer.gate:
            return self._layer.endpoint.refresh_session(call.dialog_id)

    async def hold_session(
        self, session_id: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Put the call on hold: re-INVITE with sendonly (RFC 3264 §8.4); our audio stops.

        ``headers``: extra lines for the re-INVITE (as for ``create_outgoing_call``).
        """
        call = self._established_call(session_id)
        if call.state is CallState.OnHold:
            return
        await self._redirect(call, "sendonly", held=True, headers=_extra(headers, call))
        self._layer.fire(call, Trigger.HOLD, "hold")

    async def resume_session(
        self, session_id: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Take the call off hold: re-INVITE with sendrecv (``headers``: extra lines)."""
        call = self._established_call(session_id)
        if call.state is not CallState.OnHold:
            return
        await self._redirect(call, "sendrecv", held=False, headers=_extra(headers, call))
        self._layer.fire(call, Trigger.RESUME, "resume")

    async def _redirect(
        self, call: Call, direction: str, *, held: bool, headers: list[tuple[str, str]]
    ) -> None:
        if call.local_sdp is None:
            raise InvalidState("no SDP to re-offer", session_id=call.id)
        offer = with_direction(call.local_sdp, direction)
        await self._reoffer_to_peer(call, offer.encode(), headers=headers)
        call.media.set_held(held)

    async def _reoffer_to_peer(
        self,
        call: Call,
        body: bytes,
        method: str = "INVITE",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        extra = headers or []
        if method == "UPDATE":
            # RFC 3311 §5.1: the offer in an UPDATE, the answer in its 2xx.
            response = await self._request(
                call, "UPDATE", body=body, content_type="application/sdp", headers=extra
            )
            if response.status in (405, 501):
                # The peer does not take UPDATE after all: the same offer by re-INVITE.
                log.info("call %s: UPDATE refused (%d); re-INVITE", call.id, response.status)
                response = await self._request(call, "INVITE", body=body, headers=extra)
        else:
            response = await self._request(call, "INVITE", body=body, headers=extra)
        if response.status >= 300:
            raise CallFailed(response.status, response.reason, session_id=call.id)
        offer = parse_offer(body)
        answer = parse_offer(response.body)
        call.local_sdp, call.remote_sdp = offer, answer
        call.media.apply(negotiated(offer, answer, answer_is_local=False))

    async def update_media(
        self,
        session_id: str,
        sdp: str | None = None,
        method: str = "reinvite",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Re-negotiate media with ``sdp`` (None: a fresh offer, same port).

        ``method`` is ``"reinvite"`` (RFC 3261 §14) or ``"update"`` (RFC 3311): the offer
        goes in an UPDATE when the peer's ``Allow`` lists UPDATE, else (or if the peer
        answers the UPDATE 405/501) by re-INVITE. The answer re-points our RTP.

        Raises:
            InvalidState: the call is not answered, or ``method`` is neither.
            CallFailed: the peer refused the offer (e.g. 488); the session is unchanged.
        """
        if method not in ("reinvite", "update"):
            raise InvalidState(f"method must be 'reinvite' or 'update', not {method!r}")
        call = self._established_call(session_id)
        sip_method = "UPDATE" if method == "update" and peer_allows(call, "UPDATE") else "INVITE"
        if sdp is None:
            assert call.local_sdp is not None
            offer = self._layer.offer_for(call, "sendonly" if call.media.held else "sendrecv")
            offer = attrs.evolve(offer, origin=call.local_sdp.origin).with_next_version()
            body = offer.encode()
        else:
            body = parse_offer(sdp).encode()
        await self._reoffer_to_peer(call, body, sip_method, _extra(headers, call))

    async def send_dtmf(
        self,
        session_id: str,
        digits: str,
        method: str = "rfc4733",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send DTMF ``digits`` (e.g. "1234#") as RFC 4733 events, or by SIP INFO.

        RFC 4733 is used when the peer accepted telephone-event, else SIP INFO
        (``headers``: extra lines for each INFO).
        """
        call = self._established_call(session_id)
        extra = _extra(headers, call)
        bad = [d for d in digits.upper() if d not in DTMF_DIGITS]
        if bad or not digits:
            raise InvalidState(f"not DTMF digits: {digits!r}", session_id=call.id)
        neg = call.media.negotiated
        if method == "rfc4733" and neg is not None and neg.dtmf_payload_type is not None:
            await call.media.send_dtmf(digits.upper())
            return
        for digit in digits.upper():
            response = await self._request(
                call,
                "INFO",
                body=dtmf_relay_body(digit, 160),
                content_type="application/dtmf-relay",
                headers=extra,
            )
            if response.status >= 300:
                raise CallFailed(response.status, response.reason, session_id=call.id)

    async def transfer_session(self, session_id: str, target: str) -> None:
        """Blind transfer: REFER the peer to ``target`` (RFC 3515); returns once accepted.

        Progress arrives as ``TransferProgress`` events; when the transferee reaches the
        target our call is hung up. Raises CallFailed if the peer refuses (e.g. 603).
        """
        call = self._established_call(session_id)
        transfers = self._layer.transfers
        assert transfers is not None
        await transfers.transfer(call, target, 64 * self.config.t1 + 2.0)

    async def transfer_attended(self, session_id: str, target_session_id: str) -> None:
        """Attended transfer: connect this call's peer to the peer of a consultation call.

        We talk to B on ``session_id`` and to C on ``target_session_id``; B gets a REFER
        whose Refer-To names C with ``?Replaces=`` our dialog with C (RFC 3515, RFC 3891
        §8), so B's INVITE to C replaces our call with C. Returns once B accepted (2xx);
        progress arrives as ``TransferProgress`` events and ``wait_for_transfer`` gives the
        final status. On success our call with B is hung up (after the 2xx NOTIFY) and C
        ends the consultation call with BYE.

        Raises:
            InvalidState: either call is not answered, or both ids are the same call.
            CallFailed: B refused the REFER (e.g. 603).
        """
        call = self._established_call(session_id)
        consultation = self._established_call(target_session_id)
        if call is consultation:
            raise InvalidState("cannot transfer a call to itself", session_id=call.id)
        transfers = self._layer.transfers
        assert transfers is not None
        await transfers.transfer_attended(call, consultation, 64 * self.config.t1 + 2.0)

    async def wait_for_transfer(self, session_id: str, timeout: Seconds = 32.0) -> int:
        """Wait for the final status of a transfer we asked for (200 when it worked)."""
        call = self._registry.get_or_ended(session_id)
        with anyio.move_on_after(_seconds(timeout)):
            await call.transfer_done.wait()
        if call.transfer_status is None:
            if call.state.is_final:
                raise CallFailed(0, call.end_reason or "ended", session_id=call.id)
            raise Timeout("no final transfer report", session_id=call.id)
        return call.transfer_status

    async def terminate_session(
        self, session_id: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Hang up: CANCEL before the answer, BYE after, a rejection for unanswered calls.

        ``headers``: extra lines for the BYE or CANCEL (e.g. ``Reason``, RFC 3326).
        """
        call = self._registry.get(session_id)
        try:
            extra = extra_headers(headers)
        except ValueError as exc:
            raise InvalidState(str(exc)) from None
        self._layer.hang_up(call, "local hangup", extra)
        with anyio.move_on_after(2.0):
            await call.ended.wait()

    async def send_options(self, target: str, timeout: Seconds = 5.0) -> Response:
        """SIP ping: send OPTIONS to ``target`` outside any dialog; returns the response.

        Raises:
            InvalidState: ``target`` is not a SIP URI with an IP address.
            Timeout: no final response in time (RFC 3261 Timer F).
            TransportError: the message could not be sent.
        """
        try:
            uri = parse_uri(target)
        except SipParseError as exc:
            raise InvalidState(f"bad target URI {target!r}: {exc.reason}") from None
        request = make_request(
            "OPTIONS",
            uri,
            from_=f"<{self.local_uri}>;tag={new_tag(self._rng)}",
            to=f"<{uri}>",
            call_id=new_call_id(self._rng, self.local_sip_address[0]),
            cseq=1,
            via=None,
            contact=None,
            headers=[("Accept", "application/sdp")],
        )
        peer = target_for(request, self.config.transport)
        if peer is None:
            raise InvalidState(f"no IP address to send to in {target!r} (no DNS here)")
        secure = isinstance(uri, SipUri) and uri.scheme == "sips"
        if secure and peer.transport != "TLS":
            # RFC 5630 §3.1.3: sips: goes over TLS on every hop, never downgraded.
            raise TransportError(
                f"not sending OPTIONS to {target}: a sips: URI needs TLS, not {peer.transport}"
            )
        try:
            self.endpoint.local(peer.transport)
        except (KeyError, RuntimeError):
            raise TransportError(f"cannot reach {target}: no {peer.transport} transport") from None
        # RFC 3261 §8.1.1.8 / RFC 5630: our Contact names the transport used, sips: for sips:.
        contact = self.endpoint.config.contact_for(peer.transport, secure)
        request = request.with_header("Contact", f"<{contact}>")
        try:
            with anyio.fail_after(_seconds(timeout)):
                return await self.endpoint.request_outside_dialog(request, peer)
        except TimeoutError:
            raise Timeout(f"no answer to OPTIONS from {target}") from None
        except TransactionTimeoutError:
            raise Timeout(f"no answer to OPTIONS from {target}") from None
        except TransportFailedError as exc:
            raise TransportError(f"cannot reach {target}: {exc}") from None

    async def send_message(
        self,
        target_uri: str,
        text: str | bytes,
        content_type: str = "text/plain",
        *,
        from_: str | None = None,
        session_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Seconds = 32.0,
    ) -> Response:
        """Send an instant message (RFC 3428 MESSAGE); returns the peer's 2xx.

        Pager mode by default (a request of its own to ``target_uri``, from ``from_`` or
        our local URI, through the outbound proxy and with digest auth when configured);
        with ``session_id``, inside that call's dialog (``target_uri`` is then ignored).
        ``text`` as ``str`` is sent as UTF-8 (``;charset=UTF-8`` added to ``text/*``).

        Raises:
            InvalidState: a bad target URI, a header the stack builds itself, or a body
                over 1,300 bytes for a UDP target (RFC 3428 §8).
            RequestFailed: the peer answered with an error status (``status``).
            Timeout: no final response in ``timeout`` seconds.
        """
        body = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        lowered = content_type.lower()
        if isinstance(text, str) and lowered.startswith("text/") and "charset" not in lowered:
            content_type += ";charset=UTF-8"
        try:
            extra = extra_headers(headers)
        except ValueError as exc:
            raise InvalidState(str(exc)) from None
        if session_id is not None:
            call = self._established_call(session_id)
            response = await self._request(
                call,
                "MESSAGE",
                timeout=_seconds(timeout),
                body=body,
                content_type=content_type,
                headers=extra,
            )
        else:
            response = await self._send_pager(
                target_uri, body, content_type, from_ or self.local_uri, extra, timeout
            )
        if response.status >= 300:
            raise RequestFailed("MESSAGE", response.status, response.reason)
        return response

    async def _send_pager(
        self,
        target_uri: str,
        body: bytes,
        content_type: str,
        from_: str,
        headers: list[tuple[str, str]],
        timeout: Seconds,
    ) -> Response:
        """A pager-mode MESSAGE and its final response (408 when none came)."""
        try:
            uri = parse_uri(target_uri)
        except SipParseError as exc:
            raise InvalidState(f"bad target URI {target_uri!r}: {exc.reason}") from None
        congestion_controlled = isinstance(uri, SipUri) and (
            uri.scheme == "sips" or (uri.transport or "").lower() in ("tcp", "tls")
        )
        if len(body) > MESSAGE_MAX_PAGER_SIZE and not congestion_controlled:
            raise InvalidState(
                f"a {len(body)}-byte MESSAGE body is over RFC 3428's 1300 bytes for a target "
                "that may be reached over UDP (use ;transport=tcp or a session)"
            )
        endpoint = self.endpoint
        try:
            ref = endpoint.send_request(
                "MESSAGE",
                uri,
                from_=f"<{from_}>" if "<" not in from_ else from_,
                to=f"<{uri}>",
                body=body,
                content_type=content_type,
                headers=headers,
            )
        except (SipParseError, ValueError) as exc:
            raise InvalidState(f"cannot send MESSAGE to {target_uri!r}: {exc}") from None
        pending = await self._registry.wait_outside(ref, "MESSAGE", _seconds(timeout))
        if pending.response is None:
            raise Timeout(f"no final response to MESSAGE from {target_uri} in {timeout}s")
        return pending.response

    # --- queries --------------------------------------------------------------------------

    async def get_session(self, session_id: str) -> CallSession:
        """The call's current snapshot (SessionNotFound once it ended)."""
        return self._registry.get(session_id).snapshot()

    async def list_active_sessions(self) -> list[CallSession]:
        """Every call not yet ended."""
        return [c.snapshot() for c in self._registry if not c.state.is_final]

    async def get_stats(self) -> SessionStats:
        """Coordinator-wide counters."""
        counters = self._registry.counters
        return SessionStats(
            active_sessions=len(self._registry),
            total_sessions=counters["total"],
            failed_sessions=counters["failed"],
            incoming_calls=counters["incoming"],
            outgoing_calls=counters["outgoing"],
            active_bridges=len(self._bridges.list()),
        )

    # --- media (the seed's MediaControl) --------------------------------------------------

    async def generate_sdp_offer(self, session_id: str) -> str:
        """An SDP offer for the call's audio (RTP port opened if needed)."""
        call = self._registry.get(session_id)
        await self._media.ensure_open(call.media)
        offer = self._layer.offer_for(call)
        if call.leg is None and call.direction is CallDirection.Outgoing:
            call.local_sdp = offer
        return str(offer)

    async def generate_sdp_answer(self, session_id: str, offer: str) -> str:
        """An SDP answer to ``offer`` for the call (RFC 3264; 488 error if nothing is common).

        Raises:
            SdpNegotiationError: no common audio codec (``status`` 488) or bad SDP (400).
        """
        call = self._registry.get(session_id)
        await self._media.ensure_open(call.media)
        parsed = parse_offer(offer)
        if call.remote_offer is None and call.direction is CallDirection.Incoming:
            call.remote_offer = parsed
        return str(self._layer.answer_for(call, parsed))

    async def start_audio_transmission(self, session_id: str) -> None:
        """Send the call's audio source again (undo ``stop_audio_transmission``)."""
        self._registry.get(session_id).media.set_muted(False)

    async def stop_audio_transmission(self, session_id: str) -> None:
        """Mute: RTP keeps flowing, carrying silence."""
        self._registry.get(session_id).media.set_muted(True)

    async def set_audio_source(self, session_id: str, source: AudioSourceSpec) -> None:
        """Choose what the call sends.

        ``source`` is a media-core source (e.g. ``tone_source(1000)``), a WAV path, int16
        samples, or None for silence.
        """
        self._registry.get(session_id).media.slot.source = make_source(source)

    # --- prompts, digits, recording (IVR building blocks) ----------------------------------

    async def play_prompt(
        self,
        session_id: str,
        source: AudioSourceSpec,
        *,
        barge_in: bool = False,
        max_duration: float | None = None,
    ) -> str | None:
        """Play ``source`` on the call and return when it has been played.

        ``source`` is what ``set_audio_source`` takes (a file path, samples, a media-core
        source). Works on an answered call and on one in early media (after
        ``send_early_media``). What the call played before comes back afterwards. The
        prompt advances only while audio is sent: it pauses while the call is muted or
        on hold, and waits for media on a call not yet answered.

        Args:
            session_id: the call.
            source: the prompt; one that never ends (a tone) needs ``max_duration``.
            barge_in: stop the prompt at the caller's first DTMF digit (RFC 4733 or
                INFO) and return it.
            max_duration: stop the prompt after this many seconds.

        Returns:
            The digit that interrupted the prompt, or None (played to its end, stopped
            at ``max_duration``, or the call ended).

        Raises:
            MediaError: ``source`` cannot be played, never ends and no
                ``max_duration`` was given, or the call is in a bridge (the bridge
                sends its audio).
        """
        call = self._registry.get(session_id)
        media = call.media
        if media.slot.bridge_feed is not None:
            raise MediaError(
                "the call is in a bridge: remove it to play a prompt", session_id=call.id
            )
        played = make_source(source)
        if max_duration is None and not hasattr(played, "finished"):
            raise MediaError("a prompt that never ends needs max_duration", session_id=call.id)
        prompt = PromptSource(
            played, None if max_duration is None else int(max_duration * SAMPLE_RATE)
        )
        deadline = math.inf if max_duration is None else anyio.current_time() + max_duration
        slot = media.slot
        previous = slot.source
        async with self._events.subscribe() as events:
            slot.source = prompt
            try:
                return await wait_for_prompt(
                    prompt,
                    events,
                    call.id,
                    media.closed.is_set,
                    barge_in=barge_in,
                    deadline=deadline,
                )
            finally:
                prompt.stop()
                if slot.source is prompt:
                    slot.source = previous

    async def collect_digits(
        self,
        session_id: str,
        max_digits: int = 1,
        timeout: float = 5.0,
        inter_digit_timeout: float = 3.0,
        terminator: str = "#",
        *,
        initial: str = "",
    ) -> CollectedDigits:
        """Collect DTMF digits the caller presses (RFC 4733 events or SIP INFO).

        Args:
            session_id: the call.
            max_digits: done after this many digits.
            timeout: seconds to wait for the first digit.
            inter_digit_timeout: seconds to wait for each next one.
            terminator: a key that ends collection early and is not collected ("" none).
            initial: digits already pressed, e.g. the one ``play_prompt`` returned.

        Returns:
            ``CollectedDigits``: ``digits`` and ``end`` (max_digits, terminator, timeout,
            or ended when the call went away).

        Raises:
            InvalidState: ``max_digits``, a timeout or ``terminator`` is not valid.
        """
        call = self._registry.get(session_id)
        try:
            collector = DigitCollector(
                max_digits,
                timeout,
                inter_digit_timeout,
                anyio.current_time(),
                terminator,
                initial.upper(),
            )
        except ValueError as exc:
            raise InvalidState(str(exc), session_id=call.id) from None
        async with self._events.subscribe() as events:
            return await run_collector(collector, events, call.id, call.media.closed.is_set)

    async def start_recording(
        self,
        session_id: str,
        path: str | os.PathLike[str],
        mode: RecordingMode = "stereo",
        *,
        max_seconds: float = DEFAULT_MAX_RECORDING_SECONDS,
    ) -> None:
        """Record the call, both directions, to a 16-bit WAV at the call's rate.

        ``mode="stereo"``: what we send on the left channel, what we receive on the
        right; ``"mix"``: both summed in one channel. The file is complete after
        ``stop_recording`` or when the call ends.

        Args:
            session_id: the call (answered, early media, or not yet answered: the rate is
                taken when the first audio flows).
            path: the WAV file to create (overwritten).
            mode: "stereo" or "mix".
            max_seconds: the recording stops after this much audio (default an hour).

        Raises:
            MediaError: a bad mode, a file that cannot be created, or a recording
                already running on the call.
        """
        call = self._registry.get(session_id)
        media = call.media
        recorder = CallRecorder(
            call.id, os.fspath(path), mode, lambda: media.sample_rate, max_seconds
        )
        media.start_recording(recorder)

    async def stop_recording(self, session_id: str) -> bool:
        """Stop the call's recording; the file is complete on return.

        Returns:
            False when the call was not being recorded.
        """
        return self._registry.get(session_id).media.stop_recording() is not None

    async def subscribe_to_audio_frames(self, session_id: str) -> EventSubscription[AudioFrame]:
        """Every decoded 20 ms frame the call receives, from now on."""
        return self._registry.get(session_id).media.subscribe_frames()

    async def send_audio_frame(self, session_id: str, samples: ArrayLike) -> None:
        """Queue int16 samples to send before the call's source resumes."""
        frame = np.asarray(samples, dtype=np.int16).ravel()
        self._registry.get(session_id).media.slot.queued.append(frame)

    async def get_media_info(self, session_id: str) -> MediaInfo:
        """What was negotiated for the call's audio."""
        call = self._registry.get(session_id)
        media = call.media
        neg = media.negotiated
        if neg is not None:
            direction = neg.direction
        elif call.local_sdp is not None:
            direction = audio_direction(call.local_sdp)
        else:
            direction = "inactive"
        return MediaInfo(
            session_id=call.id,
            local_sdp=None if call.local_sdp is None else str(call.local_sdp),
            remote_sdp=None if call.remote_sdp is None else str(call.remote_sdp),
            local_rtp_port=media.local_port,
            remote_rtp_address=None if media.rtp is None else media.rtp.remote_rtp_address,
            codec=None if neg is None else neg.codec,
            payload_type=None if neg is None else neg.payload_type,
            direction=direction,
            srtp_suite=None if neg is None or neg.srtp is None else neg.srtp.local.suite,
        )

    async def send_rtcp_report(self, session_id: str) -> None:
        """Send an RTCP report now (besides the RFC 3550 schedule), e.g. to measure RTT."""
        rtp = self._registry.get(session_id).media.rtp
        if rtp is None or rtp.closed:
            raise MediaError("no RTP session", session_id=session_id)
        rtp.send_rtcp_report()

    async def get_media_statistics(self, session_id: str) -> MediaStatistics | None:
        """Counters and E-model quality of the call's audio; None before media started."""
        return self._media.statistics(self._registry.get(session_id).media)

    # --- bridges --------------------------------------------------------------------------

    async def create_bridge(self) -> BridgeId:
        """A new, empty bridge."""
        return self._bridges.create()

    async def add_session_to_bridge(self, bridge_id: str, session_id: str) -> None:
        """Connect an answered call's audio to the bridge."""
        call = self._established_call(session_id)
        self._bridges.add(bridge_id, call.media)

    async def remove_session_from_bridge(self, bridge_id: str, session_id: str) -> None:
        """Disconnect a call from the bridge."""
        self._bridges.remove(bridge_id, SessionId(str(session_id)), "removed")

    async def bridge_sessions(self, session_a: str, session_b: str) -> BridgeId:
        """Connect two answered calls' audio; returns the new bridge's id."""
        a, b = self._established_call(session_a), self._established_call(session_b)
        if a.id == b.id:
            raise InvalidState("cannot bridge a call with itself", session_id=a.id)
        if a.media.stream is None or b.media.stream is None:
            raise MediaError("both calls need an audio stream to be bridged")
        bridge_id = self._bridges.create()
        try:
            self._bridges.add(bridge_id, a.media)
            self._bridges.add(bridge_id, b.media)
        except SessionError:
            self._bridges.destroy(bridge_id)
            raise
        return bridge_id

    async def destroy_bridge(self, bridge_id: str) -> None:
        """Disconnect everyone and remove the bridge (the calls go on)."""
        self._bridges.destroy(bridge_id)

    async def list_bridges(self) -> list[BridgeInfo]:
        """Every bridge and its participants."""
        return self._bridges.list()

    async def get_bridge_info(self, bridge_id: str) -> BridgeInfo:
        """One bridge and its participants."""
        bridge = self._bridges.get(bridge_id)
        return BridgeInfo(bridge.id, tuple(bridge.members), bridge.mode)

    async def subscribe_to_bridge_events(self) -> EventSubscription[BridgeEventType]:
        """ParticipantAdded / ParticipantRemoved / BridgeDestroyed from now on."""
        return self._bridges.events.subscribe()


def peer_allows(call: Call, method: str) -> bool:
    """Whether the peer listed ``method`` in ``Allow`` (RFC 3261 §20.5) when the call began.

    The Allow of the INVITE (incoming calls) or of the 2xx answering ours (outgoing); a peer
    that sent no Allow is taken to allow nothing beyond RFC 3261's core methods.
    """
    if call.answer is not None:
        allow = ", ".join(call.answer.headers.get_all("Allow"))
    elif call.incoming is not None:
        allow = ", ".join(v for n, v in call.incoming.headers if n.lower() == "allow")
    else:
        allow = ""
    return method.upper() in {m.strip().upper() for m in allow.split(",")}


async def _either(a: LazyEvent, b: LazyEvent) -> None:
    """Wait until either event is set."""
    if a.is_set() or b.is_set():
        await anyio.lowlevel.checkpoint()
        return
    async with anyio.create_task_group() as tg:

        async def first(event: LazyEvent) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(first, a)
        tg.start_soon(first, b)


def _extra(headers: Mapping[str, str] | None, call: Call) -> list[tuple[str, str]]:
    """Validated application header lines for a request in ``call`` (InvalidState if not)."""
    try:
        return extra_headers(headers)
    except ValueError as exc:
        raise InvalidState(str(exc), session_id=call.id) from None
