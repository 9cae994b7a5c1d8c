"""A thin anyio driver: a dialog layer glued onto transaction-core's ``TransactionEndpoint``.

The transaction endpoint owns the sockets; its events are fed synchronously, with the time
of the endpoint's one clock (injected, or the running loop's: asyncio's ``loop.time`` read
directly), into the sans-IO :class:`DialogLayer`, whose actions are executed at once. The
endpoint's commands are the layer's own methods (see :class:`_Command`). One task sleeps
until the layer's next deadline, re-armed only when ``deadline_moved()``. Session-core
uses it as::

    async with DialogEndpoint(udp=("127.0.0.1", 0), user="alice") as ep:
        leg = ep.invite("sip:bob@127.0.0.1:5070", from_="sip:alice@127.0.0.1")
        async for event in ep.events(): ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import anyio
import anyio.abc
import attrs
import sniffio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from rvoip_sip_core import Request, Response, SipUri, make_response, new_tag
from rvoip_transaction_core import (
    Clock,
    OverloadConfig,
    Peer,
    ResponseReceived,
    StreamLimits,
    TimerConfig,
    TransactionAck,
    TransactionEndpoint,
    TransactionError,
    TransactionEvent,
    TransactionRequest,
    TransactionTerminated,
    TransactionTimeout,
    TransactionUsageError,
    TransportFailure,
)

from ._config import WILDCARDS, DialogConfig, contact_uri
from ._dns import DnsSettings, SipLocator
from ._events import Action, DialogEvent, SendAck, SendRequest, SendResponse
from ._hops import hop_target, is_ip, next_hop
from ._layer import DialogLayer
from ._locate import ParkedTargets, SipTarget, retry_after_seconds

__all__ = ["DialogEndpoint"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def _backend_clock() -> Callable[[], float]:
    """The running event loop's clock: ``anyio.current_time`` without its per-call lookups."""
    # hot path: read for every message; anyio.current_time() detects the backend each time.
    if sniffio.current_async_library() == "asyncio":
        return asyncio.get_running_loop().time
    return anyio.current_time


class _FunctionClock:
    """A :class:`Clock` over a ``now`` function (the loop's clock) and ``time.time``."""

    __slots__ = ("now", "wall")

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.wall = time.time


class _Command(Generic[P, R]):
    """A :class:`DialogLayer` command exposed on the endpoint without restating it.

    Reading ``endpoint.<name>`` gives the layer's bound method wrapped so that the
    endpoint flushes (sends the actions, delivers the events, re-arms its timer) after it
    ran; the layer reads the time from the endpoint's clock when ``now`` is omitted. The
    wrapper is made once per started endpoint and cached on it.
    """

    def __init__(self, method: Callable[Concatenate[DialogLayer, P], R]) -> None:
        self._method = method
        self._name = method.__name__
        self.__doc__ = method.__doc__

    def __set_name__(self, owner: type[object], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, endpoint: None, owner: type[object]) -> Self: ...

    @overload
    def __get__(self, endpoint: DialogEndpoint, owner: type[object]) -> Callable[P, R]: ...

    def __get__(
        self, endpoint: DialogEndpoint | None, owner: type[object]
    ) -> Self | Callable[P, R]:
        if endpoint is None:
            return self
        return endpoint.command(self._method, self._name)


class DialogEndpoint:
    """A :class:`DialogLayer` on a live :class:`TransactionEndpoint` (asyncio or trio).

    Args:
        udp: UDP bind address (``("127.0.0.1", 0)`` picks a free port); None disables UDP.
        tcp: TCP bind address, or None.
        tls: TLS bind address, or None (listens only with ``tls_server_context``; requests
            to ``sips:`` or ``;transport=tls`` URIs go over TLS either way).
        tls_server_context: Certificate and key for accepting TLS connections.
        tls_client_context: Context for outgoing TLS (default: system CAs).
        user: User part of the Contact built from the bound address.
        config: Full dialog configuration; built from the bound address when None.
        timers: Transaction timers (T1/T2 are copied into the dialog configuration).
        rng: Source of tags, branches, Call-IDs and CSeq starts for both layers (default:
            ``random.SystemRandom()``, the OS CSPRNG; inject a seeded one only in tests).
        clock: The one time source of both layers (default: the running event loop's
            clock, read directly on asyncio).
        on_event: Synchronous callback for dialog events; when None they queue for
            :meth:`events`.
        event_queue_size: Bound of that queue (drops are counted in ``stats``).
        overload: Overload control of the transaction endpoint (default: on, see
            ``OverloadConfig``; ``OverloadConfig(enabled=False)`` turns it off).
        stream_limits: Limits on TCP/TLS peers (default: ``StreamLimits()``).
        dns: How host names in request targets are located (RFC 3263 NAPTR → SRV →
            A/AAAA, the nameservers to ask, cache and failover bounds; default:
            ``DnsSettings()``, the system's resolver).
    """

    def __init__(
        self,
        *,
        udp: tuple[str, int] | None = ("127.0.0.1", 0),
        tcp: tuple[str, int] | None = None,
        tls: tuple[str, int] | None = None,
        tls_server_context: ssl.SSLContext | None = None,
        tls_client_context: ssl.SSLContext | None = None,
        user: str = "rvoip",
        config: DialogConfig | None = None,
        timers: TimerConfig | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        on_event: Callable[[DialogEvent], None] | None = None,
        event_queue_size: int = 1024,
        overload: OverloadConfig | None = None,
        stream_limits: StreamLimits | None = None,
        dns: DnsSettings | None = None,
    ) -> None:
        self._udp = udp
        self._overload = overload or OverloadConfig()
        self._stream_limits = stream_limits or StreamLimits()
        self._tcp = tcp
        self._tls = tls
        self._tls_server_context = tls_server_context
        self._tls_client_context = tls_client_context
        self._user = user
        self._config = config
        self._timers = timers or TimerConfig()
        # RFC 3261 §19.3 / issue 10: identifiers on the wire come from the OS CSPRNG.
        self._rng = rng if rng is not None else random.SystemRandom()
        self._given_clock = clock
        self._on_event = on_event
        self._queue_size = event_queue_size
        self._stack = contextlib.AsyncExitStack()
        self._txn: TransactionEndpoint | None = None
        self._layer: DialogLayer | None = None
        self._client_txns: dict[int, Request] = {}
        settings = dns or DnsSettings()
        self._locator = SipLocator(settings, self._rng)
        self._parked = ParkedTargets(settings.max_retry_after, settings.cache_size)
        # RFC 3263 §4.3: requests sent to a located name, by client transaction id: the
        # targets still to try on timeout, transport error or 503 (only entries for names).
        self._plans: dict[int, _Plan] = {}
        # INVITEs sent to a located name, by branch: their CANCEL goes to the same target
        # (RFC 3261 §9.1), not to a fresh SRV pick.
        self._invite_targets: dict[str, Peer] = {}
        self.routes = LocalRoutes()
        """The local address toward each peer, for Via/Contact of a wildcard bind."""
        self._send_events: MemoryObjectSendStream[DialogEvent] | None = None
        self._recv_events: MemoryObjectReceiveStream[DialogEvent] | None = None
        self._flushing = False
        self._clock: Callable[[], float] = anyio.current_time
        self._tg: anyio.abc.TaskGroup | None = None
        self._commands: list[str] = []
        """Names of the commands cached on this instance for the running layer."""
        self.stats: Counter[str] = Counter()

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        self._clock = self._given_clock.now if self._given_clock else _backend_clock()
        try:
            send, recv = anyio.create_memory_object_stream[DialogEvent](self._queue_size)
            self._send_events, self._recv_events = send, recv
            self._stack.callback(send.close)
            self._stack.callback(recv.close)
            tg = await self._stack.enter_async_context(anyio.create_task_group())
            self._tg = tg
            self._stack.callback(tg.cancel_scope.cancel)
            txn = TransactionEndpoint(
                udp=self._udp,
                tcp=self._tcp,
                tls=self._tls,
                tls_server_context=self._tls_server_context,
                tls_client_context=self._tls_client_context,
                config=self._timers,
                rng=self._rng,
                on_event=self._on_txn_event,
                overload=self._overload,
                stream_limits=self._stream_limits,
            )
            self._txn = await self._stack.enter_async_context(txn)
            transport = "UDP" if self._udp is not None else "TCP" if self._tcp else "TLS"
            local = txn.local(transport)
            config = self._config or self._default_config(local)
            self._layer = DialogLayer(
                config, rng=self._rng, clock=self._given_clock or _FunctionClock(self._clock)
            )
            for name in self._commands:
                self.__dict__.pop(name, None)  # bound to a previous layer
            self._commands.clear()
            # One timer for both layers: the dialog deadlines ride on the endpoint's.
            txn.attach_timers(self._on_timers, self._layer.next_deadline)
        except BaseException:
            await self._stack.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)

    def _default_config(self, local: Peer) -> DialogConfig:
        # RFC 3261 §18: reachable on every bound transport; the Contact of each message
        # names the transport it travels on, sips: only for secure requests (RFC 5630).
        txn = self.transactions
        contacts = tuple(
            (name, contact_uri(self._user, peer.host, peer.port, name))
            for name, peer in ((name, txn.local(name)) for name in txn.transports)
        )
        return DialogConfig(
            contact=contact_uri(self._user, local.host, local.port, local.transport),
            via_host=local.host,
            via_port=local.port,
            transport=local.transport,
            t1=self._timers.t1,
            t2=self._timers.t2,
            contacts=contacts,
        )

    @property
    def layer(self) -> DialogLayer:
        """The sans-IO dialog layer (for inspection; use the methods here to act)."""
        if self._layer is None:
            raise RuntimeError("DialogEndpoint is not started (use 'async with')")
        return self._layer

    @property
    def transactions(self) -> TransactionEndpoint:
        """The transaction endpoint underneath (sockets, stateless sends, statistics)."""
        if self._txn is None:
            raise RuntimeError("DialogEndpoint is not started (use 'async with')")
        return self._txn

    @property
    def config(self) -> DialogConfig:
        """The dialog configuration in use (Contact and Via carry the bound address)."""
        return self.layer.config

    def local(self, transport: str = "UDP") -> Peer:
        """The bound address of a transport."""
        return self.transactions.local(transport)

    async def events(self) -> AsyncIterator[DialogEvent]:
        """Dialog events, in order (when no ``on_event`` callback was given)."""
        if self._recv_events is None:
            raise RuntimeError("DialogEndpoint is not started (use 'async with')")
        async for event in self._recv_events:
            yield event

    async def next_event(self) -> DialogEvent:
        """The next dialog event (when no ``on_event`` callback was given)."""
        if self._recv_events is None:
            raise RuntimeError("DialogEndpoint is not started (use 'async with')")
        return await self._recv_events.receive()

    # --- the engine -----------------------------------------------------------------------

    def _on_timers(self) -> None:
        """The endpoint's timer woke up: fire the dialog deadlines that are due."""
        layer = self.layer
        try:
            layer.handle_timers(self._clock())
        except Exception:
            self.stats["layer_errors"] += 1
            logger.exception("dialog layer timers failed")
        self._flush()

    def _on_txn_event(self, event: TransactionEvent) -> None:
        try:
            self._feed(event)
        except Exception:
            # A bug must not kill the transport task: log it, count it, go on.
            self.stats["layer_errors"] += 1
            logger.exception("dialog layer failed on %r", event)
        self._flush()

    def _feed(self, event: TransactionEvent) -> None:
        layer = self._layer  # hot path: not the checking property
        assert layer is not None
        now = self._clock()
        if isinstance(event, TransactionRequest):
            uri = event.request.uri
            if (
                type(uri) is SipUri
                and uri.scheme == "sips"
                and event.source.transport != "TLS"
                and event.request.method != "ACK"
            ):
                self._refuse_insecure_request(event)
                return
            layer.on_request(event.request, event.txn_id, now, cancels=event.cancels)
        elif isinstance(event, TransactionAck):
            layer.on_ack(event.request, now)
        elif isinstance(event, ResponseReceived):
            # hot path: one comparison; RFC 3263 §4.3: a 503 moves on to the next target.
            if event.response.status == 503 and self._plans:
                self._park(event.txn_id, event.response, now)
                if self._fail_over(event.txn_id):
                    return
            layer.on_response(event.response, now)
        elif isinstance(event, TransactionTimeout):
            request = self._client_txns.get(event.txn_id)
            if request is not None and not (self._plans and self._fail_over(event.txn_id)):
                layer.on_timeout(request, now)
        elif isinstance(event, TransportFailure):
            request = self._client_txns.get(event.txn_id)
            if request is not None and not (self._plans and self._fail_over(event.txn_id)):
                layer.on_transport_error(request, now)
        elif isinstance(event, TransactionTerminated):
            request = self._client_txns.pop(event.txn_id, None)
            if (
                self._plans
                and self._plans.pop(event.txn_id, None) is not None
                and request is not None
                and request.method == "INVITE"
            ):
                self._invite_targets.pop(request.top_via.branch or "", None)

    def _park(self, txn_id: int, response: Response, now: float) -> None:
        """A located target answered 503: with a Retry-After, try it last until then."""
        plan = self._plans.get(txn_id)
        if plan is None:
            return
        seconds = retry_after_seconds(response.headers.get("Retry-After"))
        if seconds:
            self._parked.park(plan.target, seconds, now)
            self.stats["targets_parked"] += 1

    def _fail_over(self, txn_id: int) -> bool:
        """Send the request of ``txn_id`` to its next located target (True), if it has one.

        RFC 3263 §4.3: "If a failure occurs [a timeout, a transport error or a 503], the
        client SHOULD create a new request, which is identical to the previous, but has a
        different value of the Via branch ID than the previous (and therefore constitutes a
        new SIP transaction). That request is sent to the next element in the list". The
        layer says whether the request may still be retried (an INVITE with early dialogs
        or a CANCEL asked for may not) and gives the new request.
        """
        plan = self._plans.get(txn_id)
        request = self._client_txns.get(txn_id)
        if plan is None or not plan.rest or request is None:
            return False
        del self._plans[txn_id]
        if request.method == "INVITE":
            self._invite_targets.pop(request.top_via.branch or "", None)
        retried = self.layer.fail_over(request, self._clock())
        if retried is None:
            return False
        self.stats["dns_failover"] += 1
        logger.info("%s to %s failed: trying %s", request.method, plan.target, plan.rest[0])
        self._send_plan(SendRequest(retried), list(plan.rest))
        return True

    def _flush(self) -> None:
        if self._flushing:
            return  # re-entered (a callback or a transaction event): the outer loop drains it
        self._flushing = True
        try:
            self._flush_all()
        finally:
            self._flushing = False
        layer = self._layer
        assert layer is not None
        # hot path: the earliest deadline can only move earlier when one was set.
        if not layer.deadline_moved():
            return
        deadline = layer.next_deadline()
        txn = self._txn
        if deadline is not None and txn is not None:
            txn.rearm(deadline)  # a no-op unless it is before the endpoint's armed wake-up

    def _flush_all(self) -> None:
        # Drain until quiet: an ``on_event`` callback may issue commands (respond, bye ...)
        # whose actions and events are handled here, in order, before returning.
        layer = self._layer  # hot path: not the checking property
        assert layer is not None
        take_output = layer.take_output
        for _ in range(10_000):
            output = take_output()
            if output is None:
                return
            actions, events = output
            if actions:
                self._run_actions(actions)
            for event in events:
                self._deliver(event)
        self.stats["flush_overrun"] += 1
        logger.warning("dialog flush still busy after 10000 rounds")

    def _run_actions(self, actions: list[Action]) -> None:
        layer = self._layer  # hot path: not the checking property
        assert layer is not None
        default = layer.config.transport
        for action in actions:
            try:
                self._run_action(layer, action, default)
            except Exception:
                # Whatever a peer's message led to (e.g. a Contact we cannot route), one
                # failed send must not lose the actions after it nor end the receive path.
                self.stats["action_errors"] += 1
                logger.exception("dialog action failed: %r", action)

    def _run_action(self, layer: DialogLayer, action: Action, default: str) -> None:
        if isinstance(action, SendResponse):
            self._respond(action.server, action.response)
            return
        hop = next_hop(action.request, default)
        if hop is not None and hop.transport != "TLS" and _is_secure_target(action.request):
            # RFC 3261 §26.2.2 / RFC 5630 §3.1.3: a sips: request goes over TLS on every
            # hop; one that would leave over UDP/TCP fails, it is never downgraded.
            self._refuse_insecure(layer, action, hop)
            return
        if hop is not None and hop.transport == "TLS" and "TLS" not in self.transactions.transports:
            # No TLS transport at all (not even client-only): say so, do not try UDP.
            self._refuse_insecure(layer, action, hop)
            return
        if hop is None:
            self.stats["unresolvable_target"] += 1
            if isinstance(action, SendRequest):
                layer.on_transport_error(action.request, self._clock())
        elif not is_ip(hop.host) and self._tg is not None:
            self._send_by_name(layer, action)
        else:
            self._send_to(action, hop)

    def _send_by_name(self, layer: DialogLayer, action: SendRequest | SendAck) -> None:
        """Send a request whose next hop is a host name: RFC 3263 from the cache, or in a task."""
        request = action.request
        if request.method == "CANCEL" and self._invite_targets:
            # RFC 3261 §9.1: the CANCEL goes where its INVITE went.
            sent = self._invite_targets.get(request.top_via.branch or "")
            if sent is not None:
                self._send_to(action, sent)
                return
        target = hop_target(request)
        if target is None:
            self.stats["unresolvable_target"] += 1
            if isinstance(action, SendRequest):
                layer.on_transport_error(request, self._clock())
            return
        address_type = "AAAA" if ":" in layer.config.via_host else "A"
        transports = tuple(self.transactions.transports)
        peers = self._locator.cached(
            target, transports, layer.config.transport, address_type, self._clock()
        )
        if peers is not None:
            self._send_plan(action, peers)
        else:
            assert self._tg is not None
            self._tg.start_soon(self._locate_and_send, action, target, transports, address_type)

    def _via_for(self, request: Request, target: Peer) -> Request:
        """The request with its top Via and our Contact naming the transport it leaves on.

        RFC 3261 §18.1.1: the Via transport is the one used to send the request. RFC 3261
        §8.1.1.8 / RFC 5630: our Contact is ``sips:`` when the Request-URI (or the first
        Route) is, else a ``sip:`` URI for that transport (``;transport=tcp``/``tls``).
        Hot path (the preferred transport, a ``sip:`` target): two comparisons.
        """
        via = request.top_via
        # Not over TLS: never secure (such a sips: request was refused before).
        secure = target.transport == "TLS" and _is_secure_target(request)
        if via.transport.upper() == target.transport and not secure:
            return request
        try:
            local = self.transactions.local(target.transport)
        except (KeyError, RuntimeError):
            return request  # not bound: the send itself reports the failure
        wire = request
        if via.transport.upper() != target.transport:
            wire = wire.with_header(
                "Via", attrs.evolve(via, transport=target.transport, port=local.port)
            )
        config = self.layer.config
        if request.headers.get("Contact") == f"<{config.contact}>":
            # Only the Contact the layer put there: a caller's own Contact is left alone.
            contact = config.contact_for(target.transport, secure)
            if contact != config.contact:
                wire = wire.with_header("Contact", f"<{contact}>")
        return wire

    def _refuse_insecure(
        self, layer: DialogLayer, action: SendRequest | SendAck, hop: Peer
    ) -> None:
        self.stats["sips_refused"] += 1
        request = action.request
        logger.warning(
            "not sending %s to %s over %s: %s needs TLS",
            request.method,
            request.uri,
            hop.transport,
            "a sips: URI" if _is_secure_target(request) else "the target",
        )
        if isinstance(action, SendRequest):
            # 416 Unsupported URI Scheme (RFC 3261 §21.4.14): this UA cannot serve the
            # scheme over the path it would have to take.
            layer.on_transport_error(
                request, self._clock(), status=416, reason="Unsupported URI Scheme"
            )

    def _refuse_insecure_request(self, event: TransactionRequest) -> None:
        """Answer 416 to a ``sips:`` Request-URI that reached us over UDP or TCP.

        RFC 3261 §26.2.2: "the SIPS scheme signals that each hop over which the request is
        forwarded ... must be secured with TLS" (RFC 5630 keeps that meaning); a request
        for a ``sips:`` resource that arrived over an insecure transport is refused, not
        served as if it were secure. RFC 3261 §8.2.2.1: a Request-URI scheme the UAS
        cannot serve gets 416 Unsupported URI Scheme (§21.4.14). The dialog layer never
        sees it.
        """
        self.stats["sips_refused_incoming"] += 1
        request = event.request
        logger.info(
            "refusing %s for %s that arrived over %s", request.method, request.uri, event.source
        )
        response = make_response(request, 416, "Unsupported URI Scheme", to_tag=new_tag(self._rng))
        self._respond(event.txn_id, response)

    def _send_to(self, action: SendRequest | SendAck, target: Peer) -> int | None:
        """Send to ``target``; the client transaction's id (None: an ACK, or it failed)."""
        try:
            return self._send_or_raise(action, target)
        except TransactionError as exc:
            self.stats["send_failed"] += 1
            logger.warning("cannot send %s: %s", action.request.method, exc)
            if isinstance(action, SendRequest):
                self.layer.on_transport_error(action.request, self._clock())
            return None

    def _send_or_raise(self, action: SendRequest | SendAck, target: Peer) -> int | None:
        """Send to ``target`` (see :meth:`_send_to`), letting a ``TransactionError`` out."""
        txn = self.transactions
        wire = self._via_for(action.request, target)
        layer = self._layer
        if layer is not None and layer.config.via_host in WILDCARDS:
            wire = self._from_wildcard(wire, target.host)
        if isinstance(action, SendAck):
            txn.send_stateless(wire, target)
            return None
        txn_id = txn.send_request(wire, target)
        self._client_txns[txn_id] = action.request
        return txn_id

    def _send_plan(self, action: SendRequest | SendAck, peers: list[Peer]) -> None:
        """Send to the first of the located ``peers``; remember the rest for failover.

        RFC 3263 §4.3 applies to requests outside a dialog (no To tag): an in-dialog
        request or an ACK goes to the first target only.
        """
        request = action.request
        if not peers:
            self.stats["unresolvable_target"] += 1
            if isinstance(action, SendRequest):
                self.layer.on_transport_error(request, self._clock())
            return
        failover = isinstance(action, SendRequest) and not request.to.tag
        if failover and len(self._parked) and len(peers) > 1:
            # RFC 3261 §21.5.4: a target that asked for time (503 + Retry-After) goes last.
            peers = self._parked.order(peers, self._clock())
        for index, peer in enumerate(peers):
            if not failover or index == len(peers) - 1:
                txn_id = self._send_to(action, peer)
            else:
                try:
                    txn_id = self._send_or_raise(action, peer)
                except TransactionError as exc:
                    # Refused at once (e.g. no such transport): the next target, same branch
                    # (no transaction was created).
                    self.stats["send_failed"] += 1
                    logger.info("cannot send %s to %s: %s", request.method, peer, exc)
                    continue
            if txn_id is not None and failover:
                self._plans[txn_id] = _Plan(peer, tuple(peers[index + 1 :]))
                if request.method == "INVITE":
                    self._invite_targets[request.top_via.branch or ""] = peer
            return

    async def _locate_and_send(
        self,
        action: SendRequest | SendAck,
        target: SipTarget,
        transports: tuple[str, ...],
        address_type: str,
    ) -> None:
        # RFC 3263 NAPTR → SRV → A/AAAA for what the cache lacks, asynchronously, each
        # query bounded by DnsSettings.timeout and the whole by 64*T1.
        peers: list[Peer] = []
        try:
            with anyio.fail_after(self.layer.config.t1 * 64):
                peers = await self._locator.locate(
                    target, transports, self.layer.config.transport, address_type, self._clock()
                )
        except TimeoutError:
            logger.warning("locating %s timed out", target.host)
        except Exception:
            self.stats["dns_errors"] += 1
            logger.exception("locating %s failed", target.host)
        self._send_plan(action, peers)
        self._flush()

    def _from_wildcard(self, message: M, peer_host: str) -> M:
        """``message`` with the wildcard host in our Via and Contact replaced.

        Bound to ``0.0.0.0``/``::`` with no public address configured, a Via or Contact
        saying ``0.0.0.0`` would send the peer's answers nowhere; the address of the
        interface that routes to the peer is what it can reach us at (RFC 3261 §18.1.1:
        the sent-by is the address the request is sent from).
        """
        local = self.routes.toward(peer_host)
        if local is None:
            self.stats["wildcard_unroutable"] += 1
            return message
        shown = f"[{local}]" if ":" in local else local
        wire = message
        if isinstance(message, Request):
            via = message.top_via
            if via.host.strip("[]") in WILDCARDS:
                wire = wire.with_header("Via", attrs.evolve(via, host=shown))
        contact = wire.headers.get("Contact")
        if contact is not None:
            for wildcard in ("@0.0.0.0:", "@[::]:", "@0.0.0.0>", "@[::]>"):
                if wildcard in contact:
                    end = wildcard[-1]
                    contact = contact.replace(wildcard, f"@{shown}{end}")
            wire = wire.with_header("Contact", contact)
        return wire

    def _respond(self, server: object, response: Response) -> None:
        if type(server) is not int:
            self.stats["bad_server_handle"] += 1
            return
        layer = self._layer
        if layer is not None and layer.config.via_host in WILDCARDS:
            # Answers go where the request came from (the received of its top Via).
            via = response.top_via
            response = self._from_wildcard(response, via.received or via.host)
        try:
            txn = self._txn
            assert txn is not None
            txn.respond(server, response)
        except TransactionUsageError:
            # The server transaction is gone (e.g. a late 2xx retransmission): nothing to do.
            self.stats["response_dropped"] += 1

    def _deliver(self, event: DialogEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                self.stats["callback_errors"] += 1
                logger.exception("on_event callback failed on %r", event)
            return
        assert self._send_events is not None
        try:
            self._send_events.send_nowait(event)
        except anyio.WouldBlock:
            self.stats["events_dropped"] += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.stats["events_dropped"] += 1

    def command(
        self, method: Callable[Concatenate[DialogLayer, P], R], name: str
    ) -> Callable[P, R]:
        """``method`` of the running layer, followed by a flush (see :class:`_Command`)."""
        bound: Callable[P, R] = getattr(self.layer, name)
        flush = self._flush

        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            result = bound(*args, **kwargs)
            flush()
            return result

        run.__doc__ = method.__doc__
        # hot path: later lookups of ``endpoint.<name>`` find it in the instance dict (a
        # _Command has no __set__, so the instance wins) without calling the descriptor.
        self.__dict__[name] = run
        self._commands.append(name)
        return run

    # --- commands: the layer's own, run at the clock's time, then flushed --------------------
    # Each is the DialogLayer method of the same name (same signature and docstring; ``now``
    # defaults to the endpoint's clock), followed by sending what it produced.

    invite = _Command(DialogLayer.invite)
    send_request = _Command(DialogLayer.send_request)
    ack = _Command(DialogLayer.ack)
    cancel = _Command(DialogLayer.cancel)
    respond = _Command(DialogLayer.respond)
    request = _Command(DialogLayer.request)
    bye = _Command(DialogLayer.bye)
    reinvite = _Command(DialogLayer.reinvite)
    refresh_session = _Command(DialogLayer.refresh_session)
    update = _Command(DialogLayer.update)
    info = _Command(DialogLayer.info)
    refer = _Command(DialogLayer.refer)
    accept_refer = _Command(DialogLayer.accept_refer)
    notify_refer = _Command(DialogLayer.notify_refer)
    subscribe = _Command(DialogLayer.subscribe)
    unsubscribe = _Command(DialogLayer.unsubscribe)
    accept_subscription = _Command(DialogLayer.accept_subscription)
    reject_subscription = _Command(DialogLayer.reject_subscription)
    notify_subscriber = _Command(DialogLayer.notify_subscriber)
    terminate_subscription = _Command(DialogLayer.terminate_subscription)


@attrs.frozen
class _Plan:
    """Where a request outside a dialog went, and the located targets left to try."""

    target: Peer
    rest: tuple[Peer, ...]


M = TypeVar("M", Request, Response)


class LocalRoutes:
    """The local address the OS sends from toward each peer, cached per peer address.

    A connected UDP socket's ``getsockname()`` names the interface that routes to the
    destination (``connect`` on a datagram socket sends nothing: it only picks the
    route). Used when bound to a wildcard address. At most ``max_entries`` peers are kept
    (the cache is emptied when full: a scan of many sources only refills it).
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self._cache: dict[str, str] = {}
        self._max = max_entries
        self.last: str | None = None
        """The address found most recently (a fallback for peers known by name only)."""

    def toward(self, host: str) -> str | None:
        """Our address toward ``host`` (an IP literal; None for a name or no route)."""
        ip = host.strip("[]")
        found = self._cache.get(ip)
        if found is not None:
            return found
        if not is_ip(ip):
            return None
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((ip, 9))
                local = str(probe.getsockname()[0])
        except OSError:
            return None
        if local in WILDCARDS:
            return None
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[ip] = local
        self.last = local
        return local


def _is_secure_target(request: Request) -> bool:
    """Whether ``request`` must travel over TLS: a ``sips:`` Request-URI or first Route."""
    uri = request.uri
    if isinstance(uri, SipUri) and uri.scheme == "sips":
        return True
    if "Route" not in request.headers:
        return False
    routes = request.routes
    first = routes[0].uri if routes else None
    return isinstance(first, SipUri) and first.scheme == "sips"
