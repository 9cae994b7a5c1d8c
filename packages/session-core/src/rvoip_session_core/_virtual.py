"""Whole calls between coordinators in virtual time: no sockets, no sleeps.

SIP goes over dialog-core's in-memory ``VirtualNetwork`` (transaction and dialog layers fed
datagrams through memory); RTP and RTCP go over an in-memory media network whose sessions
are rtp-core's sans-IO ``RtpSessionCore``. Time is the event loop's: run the tests under
trio with ``trio.testing.MockClock(autojump_threshold=0)`` (``virtual_time_backend()``),
so every sleep and timeout jumps the clock as soon as all tasks wait, and a 60 s media
timeout or a 32 s transaction timeout costs milliseconds.

Why trio's MockClock and not a virtual asyncio loop: anyio passes backend options straight
to ``trio.run(clock=...)``, the clock is part of trio's public testing API, and autojump
makes "advance to the next deadline when idle" the default, with no loop subclass to keep
in step with asyncio's internals.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import anyio
import anyio.abc
import attrs

from rvoip_dialog_core import (
    Credentials,
    DialogConfig,
    DialogId,
    DialogLayer,
    LegId,
    ReferSubscription,
    ResponseForRequest,
)
from rvoip_dialog_core.testing import Agent, VirtualNetwork, WireRecord
from rvoip_media_core import MediaEngine
from rvoip_rtp_core import (
    DtmfEncoder,
    PortAllocator,
    RtpError,
    RtpSessionClosedError,
    RtpSessionCore,
)
from rvoip_session_core._config import SessionManagerBuilder
from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._driver import (
    MessageTap,
    SipEndpoint,
    dialog_config,
    with_contact_address,
    with_credentials,
    without_method,
)
from rvoip_session_core._errors import MediaError, TransportError
from rvoip_session_core._handlers import AutoAnswerHandler, CallHandler
from rvoip_session_core._media import CallMedia
from rvoip_session_core._settings import SessionConfig
from rvoip_sip_core import Request, Response, Uri, parse_uri
from rvoip_transaction_core import Peer, TimerConfig, TransactionLayer

__all__ = [
    "MemoryMedia",
    "MemoryRtp",
    "VirtualCalls",
    "virtual_time_backend",
]

Address = tuple[str, int]
Headers = Iterable[tuple[str, str]]


def virtual_time_backend() -> tuple[str, dict[str, Any]]:
    """An ``anyio_backend`` value running trio on a fresh autojumping ``MockClock``.

    Use it in a fixture (a new clock per test)::

        @pytest.fixture
        def anyio_backend():
            return virtual_time_backend()
    """
    import trio.testing

    return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}


# --- media ------------------------------------------------------------------------------


class MemoryRtp:
    """An RTP session on the in-memory media network (``CallRtp`` of a call's media).

    Packets are built and parsed by rtp-core's ``RtpSessionCore`` (so its statistics, RTCP
    reports and RFC 4733 events are the real ones) and handed to the session bound at the
    remote address at once.
    """

    def __init__(
        self,
        network: MemoryMedia,
        address: Address,
        rng: random.Random,
        release: Callable[[], None],
    ) -> None:
        self.core = RtpSessionCore(rng=rng)
        self.local_rtp_address = address
        self.remote_rtp_address: Address | None = None
        self.remote_rtcp_address: Address | None = None
        self.closed = False
        self._network = network
        self._release = release
        self._handler: Callable[[Any, float], None] | None = None

    def set_remote(self, rtp: Address, rtcp: Address | None = None) -> None:
        """Where to send RTP (RTCP: the next port, RFC 3550 §11)."""
        self.remote_rtp_address = rtp
        self.remote_rtcp_address = rtcp or (rtp[0], rtp[1] + 1)
        self.core.start(self._network.now())

    def send_payload(
        self,
        payload: bytes,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
        now: float | None = None,
    ) -> None:
        """Send one RTP packet to the remote address (dropped while it is unknown)."""
        if self.closed:
            raise RtpSessionClosedError("RTP session is closed")
        target = self.remote_rtp_address
        if target is None:
            return
        at = self._network.now() if now is None else now
        data = self.core.build_rtp(payload, timestamp, at, marker, payload_type)
        self._network.deliver(self.local_rtp_address, target, data, rtcp=False)

    def set_packet_handler(self, handler: Callable[[Any, float], None] | None) -> None:
        """Deliver received packets to ``handler(packet, arrival)``."""
        self._handler = handler

    def statistics(self) -> Any:
        """rtp-core's ``SessionStatistics`` of this session."""
        return self.core.statistics()

    def set_clock_rate(self, clock_rate: int) -> None:
        """Use the negotiated codec's RTP clock (as ``RtpSession.set_clock_rate``)."""
        self.core.set_clock_rate(clock_rate)

    async def send_dtmf(
        self,
        digit: str,
        duration: float = 0.1,
        volume: int = 10,
        payload_type: int = 101,
        packet_time: float = 0.02,
    ) -> None:
        """Send one RFC 4733 event, paced every ``packet_time`` (virtual) seconds."""
        rate = self.core.clock_rate
        interval = max(1, round(packet_time * rate))
        last = self.core.last_timestamp
        timestamp = 0 if last is None else last + interval
        packets = DtmfEncoder(packet_interval=interval, volume=volume).packets(
            digit, round(duration * rate)
        )
        start = anyio.current_time()
        for p in packets:
            await anyio.sleep_until(start + (p.offset - interval) / rate)
            if self.closed:
                return
            self.send_payload(p.payload, timestamp, p.marker, payload_type)

    def send_rtcp_report(self) -> None:
        """Send an RTCP report now."""
        if self.closed:
            raise RtpSessionClosedError("RTP session is closed")
        self._send_rtcp(self.core.build_report(self._network.now()))

    def _send_rtcp(self, data: bytes) -> None:
        target = self.remote_rtcp_address
        if target is not None:
            self._network.deliver(self.local_rtp_address, target, data, rtcp=True)

    def tick(self, now: float) -> None:
        """Send the RTCP report due at ``now`` (RFC 3550 §6.2 schedule), if any."""
        if self.closed:
            return
        due = self.core.get_timer()
        if due is not None and due <= now:
            data = self.core.handle_timer(now)
            if data is not None:
                self._send_rtcp(data)

    def receive(self, data: bytes, now: float, *, rtcp: bool) -> None:
        """A datagram arrived for this session."""
        if self.closed:
            return
        try:
            if rtcp:
                self.core.receive_rtcp(data, now)
                return
            packet = self.core.receive_rtp(data, now)
        except RtpError:
            return
        handler = self._handler
        if packet is not None and handler is not None:
            handler(packet, now)

    def close(self) -> None:
        """Leave the network and release the port (idempotent)."""
        if not self.closed:
            self.closed = True
            self._network.unbind(self.local_rtp_address)
            self._release()


@attrs.frozen
class MediaRecord:
    """One media datagram on the in-memory network."""

    at: float
    source: Address
    target: Address
    rtcp: bool
    dropped: bool


class MemoryMedia:
    """The in-memory media network, and the ``MediaBackend`` coordinators open RTP on.

    Args:
        drop: called for each datagram; True drops it (e.g. a peer whose media died).
    """

    def __init__(self, drop: Callable[[MediaRecord], bool] | None = None) -> None:
        self.drop = drop
        self.sessions: dict[Address, MemoryRtp] = {}
        self.counts = {"rtp": 0, "rtcp": 0, "dropped": 0}
        self._next_port: dict[str, int] = {}

    @staticmethod
    def now() -> float:
        """The event loop's (virtual) time."""
        return anyio.current_time()

    # --- the network -----------------------------------------------------------------------

    def deliver(self, source: Address, target: Address, data: bytes, *, rtcp: bool) -> None:
        """Hand a datagram to the session bound at ``target`` (RTCP: at ``target`` - 1)."""
        now = self.now()
        if self.drop is not None and self.drop(MediaRecord(now, source, target, rtcp, False)):
            self.counts["dropped"] += 1
            return
        self.counts["rtcp" if rtcp else "rtp"] += 1
        key = (target[0], target[1] - 1) if rtcp else target
        session = self.sessions.get(key)
        if session is not None:
            session.receive(data, now, rtcp=rtcp)

    def unbind(self, address: Address) -> None:
        """A session closed."""
        self.sessions.pop(address, None)

    # --- MediaBackend ----------------------------------------------------------------------

    def opens_now(self) -> bool:
        """Sessions open synchronously, on any event loop."""
        return True

    def open_now(
        self, media: CallMedia, host: str, allocator: PortAllocator | None, rng: random.Random
    ) -> None:
        """Bind an in-memory session (from ``allocator``'s range when there is one)."""
        if allocator is not None:
            try:
                port = allocator.acquire()
            except RtpError as exc:
                raise MediaError(f"cannot open RTP: {exc}", session_id=media.session_id) from exc

            def release() -> None:
                allocator.release(port)
        else:
            port = self._next_port.get(host, 40000)
            while (host, port) in self.sessions:
                port += 2
            self._next_port[host] = port + 2

            def release() -> None:
                pass

        session = MemoryRtp(self, (host, port), random.Random(rng.getrandbits(64)), release)
        self.sessions[(host, port)] = session
        media.rtp = session
        media.owns_rtp = True

    async def open_in_task(
        self,
        tg: anyio.abc.TaskGroup,
        media: CallMedia,
        host: str,
        allocator: PortAllocator | None,
        rng: random.Random,
    ) -> None:
        """Same as ``open_now`` (no socket needs a task of its own)."""
        self.open_now(media, host, allocator, rng)

    @contextlib.asynccontextmanager
    async def run_engine(self, engine: MediaEngine) -> AsyncIterator[object]:
        """Tick ``engine`` every 20 ms of loop time (and each session's RTCP schedule)."""

        async def ticker() -> None:
            deadline = anyio.current_time()
            while True:
                deadline += 0.02
                await anyio.sleep_until(deadline)
                now = anyio.current_time()
                for stream, payload, timestamp, marker in engine.begin_tick(now):
                    # A closed session must not stop every other call.
                    with contextlib.suppress(RtpError):
                        stream.session.send_payload(
                            payload, timestamp, marker, stream.payload_type, now
                        )
                engine.end_tick()
                for session in list(self.sessions.values()):
                    session.tick(now)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            try:
                yield engine
            finally:
                tg.cancel_scope.cancel()


# --- SIP ----------------------------------------------------------------------------------


class _VirtualEndpoint:
    """A coordinator's ``SipEndpoint`` on the virtual SIP network."""

    def __init__(self, calls: VirtualCalls, agent: Agent, on_event: Callable[[object], None]):
        self._calls = calls
        self.agent = agent
        self.on_event = on_event
        self.tap: MessageTap | None = None
        self.tap_received = False
        self.tapped = 0
        self._waiting: dict[int, tuple[anyio.Event, list[Response]]] = {}
        self.keepalives: list[tuple[float, Peer]] = []
        """(time, target) of each keep-alive sent (the virtual network carries no CRLF)."""

    @property
    def config(self) -> DialogConfig:
        return self.agent.dialog.config

    def local(self, transport: str = "UDP") -> Peer:
        return self.agent.address

    def _now(self) -> float:
        return anyio.current_time()

    def _after(self) -> None:
        self._calls.kick()

    def invite(
        self, target: str | Uri, *, from_: str, body: bytes = b"", headers: Headers = ()
    ) -> LegId:
        uri = parse_uri(target) if isinstance(target, str) else target
        leg = self.agent.dialog.invite(
            uri, from_=from_, body=body, headers=headers, now=self._now()
        )
        self._after()
        return leg

    def respond(
        self,
        ref: int,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Headers = (),
        reliable: bool | None = None,
    ) -> Response:
        response = self.agent.dialog.respond(
            ref,
            status,
            reason,
            body=body,
            content_type=content_type,
            headers=headers,
            reliable=reliable,
            now=self._now(),
        )
        self._after()
        return response

    def cancel(self, leg: LegId, *, headers: Headers = ()) -> None:
        self.agent.dialog.cancel(leg, headers=headers, now=self._now())
        self._after()

    def bye(self, dialog_id: DialogId, *, headers: Headers = ()) -> int:
        ref = self.agent.dialog.bye(dialog_id, headers=headers, now=self._now())
        self._after()
        return ref

    def request(
        self,
        dialog_id: DialogId,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Headers = (),
    ) -> int:
        ref = self.agent.dialog.request(
            dialog_id,
            method,
            body=body,
            content_type=content_type,
            headers=headers,
            now=self._now(),
        )
        self._after()
        return ref

    def reinvite(self, dialog_id: DialogId, body: bytes = b"", *, headers: Headers = ()) -> int:
        ref = self.agent.dialog.reinvite(dialog_id, body, headers=headers, now=self._now())
        self._after()
        return ref

    def refresh_session(self, dialog_id: DialogId) -> bool:
        sent = self.agent.dialog.refresh_session(dialog_id, now=self._now())
        self._after()
        return sent

    def refer(self, dialog_id: DialogId, refer_to: str, *, referred_by: str | None = None) -> int:
        ref = self.agent.dialog.refer(dialog_id, refer_to, referred_by=referred_by, now=self._now())
        self._after()
        return ref

    def accept_refer(self, ref: int) -> ReferSubscription:
        subscription = self.agent.dialog.accept_refer(ref, now=self._now())
        self._after()
        return subscription

    def notify_refer(self, subscription: ReferSubscription, status: int, reason: str) -> int:
        ref = self.agent.dialog.notify_refer(subscription, status, reason, now=self._now())
        self._after()
        return ref

    def subscribe(
        self,
        target: str | Uri,
        *,
        from_: str,
        event: str,
        expires: int = 3600,
        accept: Iterable[str] = (),
    ) -> int:
        ref = self.agent.dialog.subscribe(
            target, from_=from_, event=event, expires=expires, accept=accept, now=self._now()
        )
        self._after()
        return ref

    def unsubscribe(self, ref: int) -> None:
        self.agent.dialog.unsubscribe(ref, now=self._now())
        self._after()

    def accept_subscription(
        self,
        ref: int,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        notify_on_refresh: bool = True,
    ) -> int:
        granted = self.agent.dialog.accept_subscription(
            ref,
            body=body,
            content_type=content_type,
            notify_on_refresh=notify_on_refresh,
            now=self._now(),
        )
        self._after()
        return granted

    def reject_subscription(
        self,
        ref: int,
        status: int = 403,
        reason: str | None = None,
        *,
        headers: Headers = (),
    ) -> None:
        self.agent.dialog.reject_subscription(ref, status, reason, headers=headers, now=self._now())
        self._after()

    def notify_subscriber(self, ref: int, body: bytes, content_type: str | None = None) -> int:
        sent = self.agent.dialog.notify_subscriber(ref, body, content_type, now=self._now())
        self._after()
        return sent

    def terminate_subscription(self, ref: int, reason: str = "noresource") -> int:
        sent = self.agent.dialog.terminate_subscription(ref, reason, now=self._now())
        self._after()
        return sent

    def send_request(
        self,
        method: str,
        target: str | Uri,
        *,
        from_: str,
        to: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Headers = (),
        route: Iterable[str] = (),
        call_id: str | None = None,
        tag: str | None = None,
        cseq: int | None = None,
    ) -> int:
        ref = self.agent.dialog.send_request(
            method,
            target,
            from_=from_,
            to=to,
            body=body,
            content_type=content_type,
            headers=headers,
            route=route,
            call_id=call_id,
            tag=tag,
            cseq=cseq,
            now=self._now(),
        )
        self._after()
        return ref

    def add_credentials(self, credentials: Credentials) -> None:
        dialog = self.agent.dialog
        dialog.config = with_credentials(dialog.config, credentials)

    def set_contact_address(self, transport: str, host: str, port: int) -> None:
        dialog = self.agent.dialog
        dialog.config = with_contact_address(dialog.config, transport, host, port)

    def refuse_method(self, method: str) -> None:
        dialog = self.agent.dialog
        dialog.config = without_method(dialog.config, method)

    def send_keepalive(self, target: Peer) -> None:
        self.keepalives.append((self._now(), target))

    def local_address_toward(self, host: str) -> str | None:
        return self.agent.address.host

    async def request_outside_dialog(self, request: Request, peer: Peer) -> Response:
        ref = self.agent.dialog.send_request(
            request.method,
            request.uri,
            from_=request.headers.get("From") or "",
            to=request.headers.get("To"),
            call_id=request.call_id,
            now=self._now(),
        )
        done, got = anyio.Event(), list[Response]()
        self._waiting[ref] = (done, got)
        self._after()
        try:
            await done.wait()
        finally:
            self._waiting.pop(ref, None)
        return got[0]

    def deliver(self, event: object) -> None:
        """Hand one dialog event to the coordinator (or to an OPTIONS waiter)."""
        if isinstance(event, ResponseForRequest) and event.ref in self._waiting:
            done, got = self._waiting[event.ref]
            got.append(event.response)
            done.set()
            return
        self.on_event(event)

    def set_tap(self, tap: MessageTap | None, received: bool = False) -> None:
        self.tap = tap
        self.tap_received = received
        self.tapped = len(self._calls.sip.wire)

    def dialog_count(self) -> int:
        return len(self.agent.dialog)

    def stats(self) -> dict[str, int]:
        return {f"dialog_{key}": value for key, value in self.agent.dialog.stats.items()}


class VirtualCalls:
    """Coordinators on one virtual SIP network and one in-memory media network.

    Run it under a virtual clock (``virtual_time_backend()``)::

        async with VirtualCalls() as net:
            alice = await net.add("alice")
            bob = await net.add("bob", handler)
            call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
            await alice.wait_for_answer(call.id)

    Each coordinator added runs in the harness's task group (``tg.start(coordinator.run)``)
    and is stopped, gracefully, when the block ends.

    Args:
        timers: SIP timers of every agent (default: RFC 3261's T1 = 0.5 s).
        drop: SIP datagrams to lose (dialog-core's ``WireRecord`` -> True drops it).
        media_drop: media datagrams to lose (``MediaRecord`` -> True drops it).
    """

    def __init__(
        self,
        *,
        timers: TimerConfig | None = None,
        drop: Callable[[WireRecord], bool] | None = None,
        media_drop: Callable[[MediaRecord], bool] | None = None,
    ) -> None:
        self.sip = VirtualNetwork(timers=timers or TimerConfig(), drop=drop)
        self.media = MemoryMedia(media_drop)
        self.coordinators: list[SessionCoordinator] = []
        self._endpoints: list[_VirtualEndpoint] = []
        self._wake = anyio.Event()
        self._settling = False
        self._dirty = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._ports = 5060

    async def __aenter__(self) -> VirtualCalls:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._pump)
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._tg is not None
        try:
            with anyio.CancelScope(shield=True):
                for coordinator in reversed(self.coordinators):
                    await coordinator.stop()
        finally:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(*exc_info)
        return None

    def builder(
        self, user: str, handler: CallHandler | None = None, *, t1: float = 0.5
    ) -> SessionManagerBuilder:
        """A builder for a coordinator at the next free virtual address (127.0.0.1:50xx).

        RFC 3261's timers by default (T1 = 0.5 s, T2 = 8 T1): virtual time makes them cheap.
        """
        self._ports += 2
        return (
            SessionManagerBuilder()
            .with_local_address(f"sip:{user}@127.0.0.1:{self._ports}")
            .with_handler(handler if handler is not None else AutoAnswerHandler())
            .with_rng_seed(self._ports)
            .with_sip_timers(t1, t1 * 8)
            .with_quality_interval(0.5)
        )

    def coordinator(self, builder: SessionManagerBuilder) -> SessionCoordinator:
        """A coordinator on this network (not started)."""
        return SessionCoordinator(
            builder.config(),
            builder.handler,
            endpoint_factory=self._endpoint_factory,
            media_backend=self.media,
        )

    async def add(
        self,
        user: str,
        handler: CallHandler | None = None,
        builder: SessionManagerBuilder | None = None,
    ) -> SessionCoordinator:
        """Create and start a coordinator for ``user`` (``builder``: settings of your own)."""
        assert self._tg is not None, "use 'async with VirtualCalls() as net:'"
        coordinator = self.coordinator(builder or self.builder(user, handler))
        await self._tg.start(coordinator.run)
        self.coordinators.append(coordinator)
        return coordinator

    @staticmethod
    def uri(coordinator: SessionCoordinator, user: str) -> str:
        """``sip:user@host:port`` of a started coordinator."""
        host, port = coordinator.local_sip_address
        return f"sip:{user}@{host}:{port}"

    @contextlib.asynccontextmanager
    async def _endpoint_factory(
        self, cfg: SessionConfig, rng: random.Random, on_event: Callable[[object], None]
    ) -> AsyncIterator[SipEndpoint]:
        host, port = cfg.bind_host, cfg.sip_port
        if (host, port) in self.sip.agents:
            raise TransportError(f"cannot bind SIP UDP on {host}:{port}: address in use")
        bound = Peer("UDP", host, port)
        # The coordinator's own timers (T1, T2, the delayed 100 Trying), not the network's.
        agent_rng = random.Random(rng.getrandbits(64))
        timers = TimerConfig(t1=cfg.t1, t2=cfg.t2, trying_after=cfg.trying_after)
        txn = TransactionLayer(config=timers, rng=agent_rng)
        txn.set_local("UDP", host, port)
        dialogs = DialogLayer(dialog_config(cfg, bound), rng=agent_rng)
        agent = Agent(cfg.user or "rvoip", bound, txn, dialogs)
        self.sip.agents[(host, port)] = agent
        endpoint = _VirtualEndpoint(self, agent, on_event)
        self._endpoints.append(endpoint)
        try:
            yield endpoint
        finally:
            self._endpoints.remove(endpoint)
            self.sip.agents.pop((host, port), None)

    # --- the pump ---------------------------------------------------------------------------

    def kick(self) -> None:
        """Something was sent: settle the network soon (in the pump task)."""
        self._dirty = True
        self._wake.set()

    def settle(self) -> None:
        """Deliver every datagram and event, firing every SIP timer due by now."""
        if self._settling:
            self._dirty = True
            return
        self._settling = True
        try:
            for _ in range(10_000):
                self._dirty = False
                self.sip.run(anyio.current_time())
                moved = False
                for endpoint in list(self._endpoints):
                    self._tap(endpoint)
                    events = list(endpoint.agent.events)
                    endpoint.agent.events.clear()
                    for event in events:
                        moved = True
                        endpoint.deliver(event)
                if not (moved or self._dirty):
                    return
        finally:
            self._settling = False

    def _tap(self, endpoint: _VirtualEndpoint) -> None:
        tap, wire = endpoint.tap, self.sip.wire
        if tap is None:
            endpoint.tapped = len(wire)
            return
        address = endpoint.agent.address
        for record in wire[endpoint.tapped :]:
            if record.source == address:
                tap("out", record.message.encode(), (record.target.host, record.target.port))
            elif endpoint.tap_received and record.target == address:
                tap("in", record.message.encode(), (record.source.host, record.source.port))
        endpoint.tapped = len(wire)

    async def _pump(self) -> None:
        while True:
            self.settle()
            deadline = self.sip.next_deadline()
            delay = math.inf if deadline is None else max(0.0, deadline - anyio.current_time())
            if delay > 0 and not self._dirty:
                with anyio.move_on_after(delay):
                    await self._wake.wait()
            else:
                await anyio.lowlevel.checkpoint()
            if self._wake.is_set():
                self._wake = anyio.Event()
