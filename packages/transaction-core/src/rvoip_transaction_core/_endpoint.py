"""`TransactionEndpoint`: the anyio driver of a `TransactionLayer`, its transports and one timer.

Received bytes go into the layer synchronously (from the datagram callback or the stream
reader), the layer's transmits go straight to the transports, and the layer's next deadline
is one timer: a loop ``call_at`` handle on asyncio/uvloop, a sleeping task on trio; it is
re-armed only when a new deadline falls in an earlier slot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
import ssl
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Self

import anyio
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from rvoip_sip_core import Request, Response, SipParseError, Via

from ._layer import TransactionLayer
from ._matching import MAGIC_COOKIE
from ._overload import (
    AdmissionControl,
    OverloadConfig,
    new_request_method,
    response_port,
    stateless_503,
    top_via_key,
)
from ._transport import (
    StreamLimits,
    StreamTransport,
    Transport,
    UdpTransport,
    running_asyncio_loop,
)
from ._types import (
    Peer,
    ResponseReceived,
    TimerConfig,
    TransactionEvent,
    TransactionTimeout,
    TransactionTimeoutError,
    TransactionUsageError,
    TransportFailedError,
    TransportFailure,
)

__all__ = ["TransactionEndpoint"]

logger = logging.getLogger(__name__)

# Overload screen: datagrams starting with these bytes (responses, BYE, CANCEL, PRACK)
# finish or continue admitted calls and skip it with one slice and one set lookup; ACKs
# too until a 503 was sent (then they are checked for the 503's To tag).
_SCREEN_SKIP = frozenset({b"SIP", b"BYE", b"CAN", b"PRA"})
_SCREEN_SKIP_ACK = _SCREEN_SKIP | {b"ACK"}


@attrs.define(eq=False)
class _Waiter:
    done: anyio.Event = attrs.Factory(anyio.Event)
    response: Response | None = None
    error: Exception | None = None


@attrs.define(eq=False)
class TransactionEndpoint:
    """A SIP endpoint's transaction layer with its transports, as an async context manager.

    Events reach the TU through ``on_event`` (a synchronous callback that may call
    `respond`/`send_request` re-entrantly) or, when it is None, through `events()`.
    Timers fire at most ``timer_resolution`` seconds late (never early): deadlines in one
    slot share a wake-up of the timer task, which matters at thousands of transactions/s.

    ``rng`` makes the branches and tags the layer puts on the wire: the OS CSPRNG
    (`random.SystemRandom`) unless a test injects a seeded generator. ``stream_limits``
    bounds what TCP/TLS peers can hold (see `StreamLimits`). No message from the network
    can end the endpoint: a failure on one message's path is counted
    (``deliver_errors``, ``receive_errors``) and logged.

    Overload control (``overload``, on by default; `OverloadConfig` ``enabled=False``
    turns it off): while the UDP receive queue says the endpoint is behind, a share of
    the new out-of-dialog requests get a stateless 503 + Retry-After from their raw
    bytes, before any parse or state; ACK, BYE, CANCEL, PRACK, responses, in-dialog
    requests and retransmissions of live transactions always go through. Counted in
    ``stats`` as ``shed_<method>`` (e.g. ``shed_invite``), ``absorbed_shed_ack``,
    ``overload_passed_retransmission``, ``overload_windows`` (control windows judged
    overloaded) and ``overload_drops_seen`` (windows in which the kernel dropped).
    """

    udp: tuple[str, int] | None = ("127.0.0.1", 0)
    tcp: tuple[str, int] | None = None
    tls: tuple[str, int] | None = None
    tls_server_context: ssl.SSLContext | None = None
    tls_client_context: ssl.SSLContext | None = None
    config: TimerConfig = attrs.field(factory=TimerConfig)
    rng: random.Random | None = None
    on_event: Callable[[TransactionEvent], None] | None = None
    event_queue_size: int = 1024
    stream_limits: StreamLimits = attrs.field(factory=StreamLimits)
    max_message_size: int = 65535
    timer_resolution: float = 0.005
    overload: OverloadConfig = attrs.field(factory=OverloadConfig)
    layer: TransactionLayer = attrs.field(init=False)
    transports: dict[str, Transport] = attrs.field(factory=dict, init=False)
    _stats_extra: dict[str, int] = attrs.field(factory=dict, init=False)
    _tg: TaskGroup | None = attrs.field(default=None, init=False)
    _sleep: anyio.CancelScope | None = attrs.field(default=None, init=False)
    _scheduled: float = attrs.field(default=math.inf, init=False)
    _armed_for: float = attrs.field(default=math.inf, init=False)
    _flushing: bool = attrs.field(default=False, init=False)
    _waiters: dict[int, _Waiter] = attrs.field(factory=dict, init=False)
    _clock: Callable[[], float] = attrs.field(default=anyio.current_time, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)
    _handle: asyncio.TimerHandle | None = attrs.field(default=None, init=False)
    _events_tx: MemoryObjectSendStream[TransactionEvent] = attrs.field(init=False)
    _events_rx: MemoryObjectReceiveStream[TransactionEvent] = attrs.field(init=False)
    # overload control (None when disabled); the To tag of every stateless 503, so the
    # ACKs of those 503s are recognised in their raw bytes and dropped.
    _admission: AdmissionControl | None = attrs.field(default=None, init=False)
    _shed_tag: bytes = attrs.field(factory=lambda: secrets.token_hex(8).encode(), init=False)
    _shed_any: bool = attrs.field(default=False, init=False)
    _skip: frozenset[bytes] = attrs.field(default=_SCREEN_SKIP_ACK, init=False)
    # The transaction user's deadlines (attach_timers): one timer serves both layers.
    _tu_fire: Callable[[], None] | None = attrs.field(default=None, init=False)
    _tu_next: Callable[[], float | None] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.layer = TransactionLayer(
            rng=self.rng or random.SystemRandom(),
            config=self.config,
            max_message_size=self.max_message_size,
        )
        if self.overload.enabled:
            self._admission = AdmissionControl(self.overload)
        self._events_tx, self._events_rx = anyio.create_memory_object_stream[TransactionEvent](
            self.event_queue_size
        )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        # Datagram callbacks run outside any task, where anyio cannot tell the backend
        # (e.g. under asyncio.run or uvloop.run): read the asyncio loop's clock directly,
        # which is the clock anyio uses on asyncio.
        loop = running_asyncio_loop()
        self._clock = loop.time if loop is not None else anyio.current_time
        self._loop = loop
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            if self.udp is not None:
                udp = UdpTransport(self.udp[0], self.udp[1], max_message_size=self.max_message_size)
                await self._add(udp)
                if self._admission is not None and self.overload.receive_buffer:
                    # overload control: absorb scheduling hiccups instead of dropping
                    udp.set_receive_buffer(self.overload.receive_buffer)
            if self.tcp is not None:
                await self._add(self._stream("TCP", self.tcp))
            if self.tls is not None:
                await self._add(self._stream("TLS", self.tls))
            if loop is None:
                tg.start_soon(self._timer_loop)  # trio: a task; asyncio: loop.call_at
        except BaseException:
            tg.cancel_scope.cancel()
            # Shielded: inside the cancelled scope the close would raise Cancelled (trio)
            # and the task group would never be exited ("Nursery misnesting" later).
            with anyio.CancelScope(shield=True):
                await self._close_transports()
            # Exited as if nothing had happened (its children are cancelled), so the caller
            # sees the original error (e.g. the OSError of a port in use), not a group.
            await tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        self._loop = None  # no timer re-armed from here on
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._close_transports()
        self._events_tx.close()
        return await self._tg.__aexit__(exc_type, exc, tb)

    def _stream(self, name: str, where: tuple[str, int]) -> StreamTransport:
        return StreamTransport(
            name=name,
            host=where[0],
            port=where[1],
            # TLS contexts only for TLS: a TCP listener given one would expect a handshake.
            server_context=self.tls_server_context if name == "TLS" else None,
            client_context=self.tls_client_context if name == "TLS" else None,
            limits=self.stream_limits,
            max_message_size=self.max_message_size,
            on_reject=self._reject,
        )

    async def _add(self, transport: Transport) -> None:
        assert self._tg is not None
        await transport.start(self._tg, self._deliver, self._on_error)
        self.transports[transport.name] = transport
        local = transport.local
        self.layer.set_local(transport.name, local.host, local.port)

    async def _close_transports(self) -> None:
        for transport in self.transports.values():
            await transport.aclose()

    # ------------------------------------------------------------------ TU calls

    def local(self, transport: str = "UDP") -> Peer:
        """The bound address of ``transport``."""
        return self.transports[transport.upper()].local

    def send_request(self, request: Request, target: Peer) -> int:
        """Start a client transaction (see `TransactionLayer.send_request`)."""
        txn_id = self.layer.send_request(request, target, self._clock())
        self._flush()
        return txn_id

    def respond(self, txn_id: int, response: Response) -> None:
        """Send a response through server transaction ``txn_id``."""
        self.layer.respond(txn_id, response, self._clock())
        self._flush()

    def send_stateless(self, message: Request | Response, target: Peer) -> None:
        """Send outside any transaction (e.g. the ACK for a 2xx)."""
        self.layer.send_stateless(message, target, self._clock())
        self._flush()

    def attach_timers(
        self, fire: Callable[[], None], next_deadline: Callable[[], float | None]
    ) -> None:
        """Let the transaction user's deadlines ride on this endpoint's one timer.

        ``next_deadline()`` is the TU's earliest deadline (on this endpoint's clock, None:
        none); ``fire()`` handles whatever of the TU is due (reading its own clock) and is
        called after the transaction timers whenever the timer wakes up. Between wake-ups
        the TU calls `rearm` when its earliest deadline moved earlier. One timer (a loop
        timer handle on asyncio, one task on trio) instead of one per layer.
        """
        self._tu_fire = fire
        self._tu_next = next_deadline
        deadline = next_deadline()
        if deadline is not None:
            self.rearm(deadline)

    def rearm(self, deadline: float) -> None:
        """Make the timer wake up by ``deadline`` (a TU deadline; no-op if already due)."""
        if deadline < self._armed_for:
            self._rearm(deadline)

    async def request(self, request: Request, target: Peer) -> Response:
        """Send ``request`` and wait for its final response.

        Raises:
            TransactionTimeoutError: Timer B/F fired.
            TransportFailedError: the transport reported an error.
        """
        txn_id = self.layer.send_request(request, target, self._clock())
        waiter = self._waiters[txn_id] = _Waiter()
        self._flush()
        try:
            await waiter.done.wait()
        finally:
            self._waiters.pop(txn_id, None)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.response is not None
        return waiter.response

    async def events(self) -> AsyncIterator[TransactionEvent]:
        """The TU events, when no ``on_event`` callback was given."""
        if self.on_event is not None:
            raise TransactionUsageError("events() is not available with on_event")
        async for event in self._events_rx:
            yield event

    @property
    def stats(self) -> dict[str, int]:
        """Layer counters plus ``<transport>_<counter>`` for each transport."""
        out = dict(self.layer.stats)
        for name, transport in self.transports.items():
            for key, value in transport.stats.items():
                out[f"{name.lower()}_{key}"] = value
        if self._admission is not None:
            out.update(self._admission.stats)
        out.update(self._stats_extra)
        return out

    # ------------------------------------------------------------------ plumbing

    def _deliver(self, data: bytes, source: Peer) -> None:
        try:
            # hot path: the overload screen costs one slice + set lookup for responses,
            # BYE, CANCEL and PRACK; see _screen for the rest.
            if (
                self._admission is not None
                and data[:3] not in self._skip
                and self._screen(self._admission, data, source)
            ):
                return
            self.layer.receive(data, source, self._clock())
            self._flush()
        except Exception:
            # Rule (issue 10): one message's failure ends neither the transport's
            # receive path nor the endpoint.
            self._count("deliver_errors")
            logger.exception("delivering a message from %s:%s failed", source.host, source.port)

    def _reject(self, head: bytes, source: Peer, status: int, reason: str) -> None:
        """A stream message the framer refused: answer it from its header section."""
        self.layer.reject_stream_message(head, source, status, reason)
        self._flush()

    # ------------------------------------------------------------------ overload control

    def _screen(self, admission: AdmissionControl, data: bytes, source: Peer) -> bool:
        """Overload control on raw bytes; True when the datagram was answered or dropped.

        Not overloaded (the usual case), it costs a clock read and two comparisons, plus
        a queue reading every ``sample_interval``. Overloaded, a new out-of-dialog request
        is shed, at ``1 - admit_fraction``, with a stateless 503 (RFC 3261 §21.5.4)
        before it is parsed or creates state, unless its top Via matches a live server
        transaction (a retransmission: absorbed there as usual). The ACK of one of our
        503s (our shed To tag) is dropped.
        """
        if data.startswith(b"ACK"):  # reached only once something was shed
            if self._shed_tag in data:
                self._count("absorbed_shed_ack")
                return True
            return False
        now = self._clock()
        if now >= admission.next_sample:
            reading = self._receive_queue()
            if reading is not None:
                admission.observe(reading[0], reading[1], reading[2], now)
        if admission.admit_fraction >= 1.0:
            return False
        method = new_request_method(data)
        if method is None or admission.admit():
            return False
        built = stateless_503(
            data, source.host, source.port, self._shed_tag.decode(), self.overload.retry_after
        )
        transport = self.transports.get(source.transport)
        if built is None or transport is None:
            return False  # cannot answer it statelessly: the normal path will
        response, top_via = built
        if self._retransmission(top_via, method):
            self._count("overload_passed_retransmission")
            return False
        target = source
        if source.transport == "UDP":
            # RFC 3261 §18.2.2 / RFC 3581 §4: rport -> source port, else sent-by port.
            port = response_port(top_via, source.port)
            if port != source.port:
                target = Peer("UDP", source.host, port)
        if not self._shed_any:
            self._shed_any = True
            self._skip = _SCREEN_SKIP  # from now on ACKs are screened for our tag
        self._count("shed_" + method.decode("ascii", "replace").lower())
        transport.send(response, target)
        return True

    def _retransmission(self, top_via: bytes, method: bytes) -> bool:
        """Whether the request's top Via matches a live server transaction (§17.2.3)."""
        key = top_via_key(top_via)
        if key is None:
            try:
                via = Via.parse(top_via.split(b",", 1)[0].decode("utf-8", "replace"))
            except (SipParseError, ValueError):
                return False
            if via.branch is None:
                return False
            key = (via.branch, via.host, via.port)
        branch, host, port = key
        if not branch.startswith(MAGIC_COOKIE):
            return False
        name = method.decode("ascii", "replace")
        return self.layer.has_server_transaction(branch, host, port, name)

    def _receive_queue(self) -> tuple[int, int, int] | None:
        """The UDP socket's receive-queue reading (the loop's backlog), if measurable."""
        udp = self.transports.get("UDP")
        return udp.receive_queue() if isinstance(udp, UdpTransport) else None

    def _on_error(self, txn_id: int | None, reason: str) -> None:
        if txn_id is None:
            self._count("transport_errors_untracked")
            return
        self.layer.transport_failed(txn_id, reason, self._clock())
        self._flush()

    def _flush(self) -> None:
        """Send the layer's transmits, hand out its events, re-arm the timer."""
        if self._flushing:
            return
        self._flushing = True
        layer = self.layer
        transports = self.transports
        try:
            # hot path (once per datagram and per TU call): one take_output() per round.
            take_output = layer.take_output
            while True:
                transmits, events = take_output()
                if not transmits and not events:
                    break
                if transmits:
                    for tx in transmits:
                        target = tx.target
                        transport = transports.get(target.transport)
                        if transport is None:
                            self._count("dropped_no_transport")
                            if tx.txn_id is not None:
                                reason = f"no {target.transport} transport"
                                layer.transport_failed(tx.txn_id, reason, self._clock())
                            continue
                        transport.send(tx.data, target, tx.txn_id)
                if events:
                    on_event = self.on_event
                    if on_event is None or self._waiters:
                        for event in events:
                            self._dispatch(event)
                        continue
                    for event in events:
                        try:
                            on_event(event)
                        except Exception:
                            self._tu_failed(event)
        finally:
            self._flushing = False
        deadline = layer.deadlines.next()  # hot path: the heap itself, no wrapper call
        # hot path: the wake-up armed for _armed_for covers every later deadline (slots
        # grow with deadlines), so only an earlier one costs a slot computation.
        if deadline is not None and deadline < self._armed_for:
            self._rearm(deadline)

    def _rearm(self, deadline: float) -> None:
        """Wake the timer up at ``deadline``'s slot when that is before the armed one."""
        slot = self._slot(deadline)
        if slot >= self._scheduled:
            self._armed_for = deadline  # same slot: later checks stop here
            return
        loop = self._loop
        if loop is not None:
            # asyncio: one loop timer handle instead of a task with an Event and a cancel
            # scope (anyio's sniffio/current_task lookups per wake-up).
            if self._handle is not None:
                self._handle.cancel()
            self._scheduled = slot
            self._armed_for = deadline
            self._handle = loop.call_at(slot, self._on_timer)
        elif self._sleep is not None:
            # trio: move the sleeping timer task's deadline (no wake-up just to re-arm).
            self._scheduled = slot
            self._armed_for = deadline
            self._sleep.deadline = slot

    def _on_timer(self) -> None:
        """asyncio: the armed slot is due; fire the layer's timers and re-arm."""
        self._handle = None
        self._scheduled = self._armed_for = math.inf
        try:
            self.layer.handle_timers(self._clock())
        except Exception:
            # Outside any task: log and carry on rather than lose every later timer.
            self._count("timer_errors")
            logger.exception("transaction timer handling failed")
        try:
            self._flush()  # sends what the timers produced and arms the next slot
        except Exception:
            self._count("timer_errors")
            logger.exception("sending what the transaction timers produced failed")
        self._fire_tu()

    def _fire_tu(self) -> None:
        """The TU's due deadlines (attach_timers), then its next one armed with ours."""
        fire, next_deadline = self._tu_fire, self._tu_next
        if fire is None or next_deadline is None:
            return
        try:
            fire()
        except Exception:
            self._count("timer_errors")
            logger.exception("the transaction user's timer handling failed")
        deadline = next_deadline()
        if deadline is not None and deadline < self._armed_for:
            self._rearm(deadline)

    def _slot(self, deadline: float) -> float:
        """Round a deadline up to the timer resolution so close deadlines share one wake-up."""
        res = self.timer_resolution
        return math.ceil(deadline / res) * res if res > 0 else deadline

    def _dispatch(self, event: TransactionEvent) -> None:
        txn_id = getattr(event, "txn_id", None)
        waiter = self._waiters.get(txn_id) if txn_id is not None else None
        if waiter is not None:
            if isinstance(event, ResponseReceived):
                if event.response.status >= 200 and waiter.response is None:
                    waiter.response = event.response
                    waiter.done.set()
            elif isinstance(event, TransactionTimeout):
                waiter.error = TransactionTimeoutError(f"Timer {event.timer} fired")
                waiter.done.set()
            elif isinstance(event, TransportFailure):
                waiter.error = TransportFailedError(event.reason)
                waiter.done.set()
            return
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                self._tu_failed(event)
            return
        try:
            self._events_tx.send_nowait(event)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._count("dropped_tu_events")

    def _tu_failed(self, event: TransactionEvent) -> None:
        # A failing TU must not take the receive path (a datagram callback or the
        # transport's receive task) down with it: log, count, carry on.
        self._count("tu_callback_errors")
        logger.exception("transaction user callback failed on %r", event)

    def _count(self, key: str) -> None:
        self._stats_extra[key] = self._stats_extra.get(key, 0) + 1

    async def _timer_loop(self) -> None:
        layer = self.layer
        while True:
            deadline = layer.next_deadline()
            if self._tu_next is not None:
                tu_deadline = self._tu_next()
                if tu_deadline is not None and (deadline is None or tu_deadline < deadline):
                    deadline = tu_deadline
            self._armed_for = math.inf if deadline is None else deadline
            # never early, at most one slot late
            slot = math.inf if deadline is None else self._slot(deadline)
            self._scheduled = slot
            with anyio.CancelScope(deadline=slot) as sleep:
                self._sleep = sleep
                await anyio.sleep_forever()
            self._sleep = None
            try:
                layer.handle_timers(self._clock())
                self._flush()
            except Exception:
                # As on asyncio: one failing timer must not end this task (and with it
                # the endpoint's task group and every transaction).
                self._count("timer_errors")
                logger.exception("transaction timer handling failed")
            self._fire_tu()
