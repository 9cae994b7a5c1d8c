"""The SIP driver: the dialog endpoint, the event gate, the message tap and one timer.

Dialog events are handed to the call layer inline, in the endpoint's own callback (no queue,
no task hop); the gate holds back the events that arrive while session-core itself is inside
an endpoint command, until that command's result is recorded. One task sleeps until the call
layer's next deadline (ring, defer, media checks) and wakes early only when a deadline moves
earlier.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol, cast

import anyio
import attrs
import sniffio

from rvoip_dialog_core import (
    WILDCARDS,
    Credentials,
    DialogConfig,
    DialogEndpoint,
    DialogId,
    LegId,
    ReferSubscription,
    contact_uri,
)
from rvoip_session_core._errors import InvalidState, TransportError
from rvoip_session_core._settings import SessionConfig, split_uri_hostport
from rvoip_sip_core import Request, Response, Uri
from rvoip_transaction_core import Clock, Peer, TimerConfig

log = logging.getLogger("rvoip_session_core")

Headers = Iterable[tuple[str, str]]
MessageTap = Callable[[str, bytes, tuple[str, int]], None]


class SipEndpoint(Protocol):
    """The dialog-endpoint commands session-core uses.

    ``rvoip_dialog_core.DialogEndpoint``'s public API, or the virtual-network endpoint of
    ``rvoip_session_core.testing``.
    """

    @property
    def config(self) -> DialogConfig:
        """Contact, Via and timers in use."""
        ...

    def local(self, transport: str = "UDP") -> Peer:
        """The bound address of a transport."""
        ...

    def invite(
        self, target: str | Uri, *, from_: str, body: bytes = b"", headers: Headers = ()
    ) -> LegId:
        """Send an initial INVITE (``headers``: extra lines)."""
        ...

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
        """Answer a request the TU was given (``reliable``: a 1xx with 100rel, RFC 3262)."""
        ...

    def cancel(self, leg: LegId, *, headers: Headers = ()) -> None:
        """CANCEL a pending INVITE."""

    def bye(self, dialog_id: DialogId, *, headers: Headers = ()) -> int:
        """Hang up with BYE."""
        ...

    def request(
        self,
        dialog_id: DialogId,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Headers = (),
    ) -> int:
        """Send a request in a dialog."""
        ...

    def reinvite(self, dialog_id: DialogId, body: bytes = b"", *, headers: Headers = ()) -> int:
        """Send a re-INVITE (``headers``: extra lines)."""
        ...

    def refresh_session(self, dialog_id: DialogId) -> bool:
        """Refresh the dialog's session timer now (RFC 4028; False: none we refresh)."""
        ...

    def refer(self, dialog_id: DialogId, refer_to: str, *, referred_by: str | None = None) -> int:
        """Send a REFER."""
        ...

    def accept_refer(self, ref: int) -> ReferSubscription:
        """Accept a REFER (202 and the first NOTIFY)."""
        ...

    def notify_refer(self, subscription: ReferSubscription, status: int, reason: str) -> int:
        """Report the referred call's progress."""
        ...

    async def request_outside_dialog(self, request: Request, peer: Peer) -> Response:
        """Send a request in its own transaction (OPTIONS) and await the final response."""
        ...

    def subscribe(
        self,
        target: str | Uri,
        *,
        from_: str,
        event: str,
        expires: int = 3600,
        accept: Iterable[str] = (),
    ) -> int:
        """Subscribe to an event package (RFC 6665); returns the subscription's ref."""
        ...

    def unsubscribe(self, ref: int) -> None:
        """End a subscription of ours (Expires 0)."""

    def accept_subscription(
        self,
        ref: int,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        notify_on_refresh: bool = True,
    ) -> int:
        """Accept a served subscription: 200 and the first NOTIFY; returns the expires."""
        ...

    def reject_subscription(
        self,
        ref: int,
        status: int = 403,
        reason: str | None = None,
        *,
        headers: Headers = (),
    ) -> None:
        """Refuse a subscription (``headers``: e.g. a digest challenge)."""

    def notify_subscriber(self, ref: int, body: bytes, content_type: str | None = None) -> int:
        """Send a NOTIFY with a new state document to a served subscription."""
        ...

    def terminate_subscription(self, ref: int, reason: str = "noresource") -> int:
        """End a served subscription with a final NOTIFY."""
        ...

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
        """Send a request outside any dialog through the dialog layer (REGISTER …).

        Its final response comes as ``ResponseForRequest`` with the returned ref; a
        401/407 is answered with the configured credentials first.
        """
        ...

    def add_credentials(self, credentials: Credentials) -> None:
        """Answer challenges of ``credentials.realm`` with these from now on."""

    def set_contact_address(self, transport: str, host: str, port: int) -> None:
        """Advertise ``host:port`` in our Contact for ``transport`` from now on (NAT)."""

    def refuse_method(self, method: str) -> None:
        """Stop serving ``method``: from now on it is answered 405 (RFC 3261 §8.2.1).

        A draining coordinator refuses OPTIONS this way, so a balancer's probes fail.
        """

    def send_keepalive(self, target: Peer) -> None:
        """Send a CRLFCRLF keep-alive to ``target`` over its transport (RFC 5626 §3.5.1)."""

    def local_address_toward(self, host: str) -> str | None:
        """Our address on the interface that routes to ``host`` (None: unknown).

        ``host`` empty: the address found for the most recent peer, if any.
        """
        ...

    def set_tap(self, tap: MessageTap | None, received: bool = False) -> None:
        """Report every message sent to ``tap`` (None: stop).

        ``received``: report every message received too, as ``tap("in", data, source)``.
        """

    def dialog_count(self) -> int:
        """Dialogs the endpoint still holds (leak checks)."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters of the SIP stack below: transactions, transports, overload, dialogs."""
        ...


EndpointFactory = Callable[
    [SessionConfig, random.Random, Callable[[object], None]],
    contextlib.AbstractAsyncContextManager[SipEndpoint],
]
"""Opens the SIP endpoint of a coordinator: ``factory(config, rng, on_event)``."""


class LoopClock:
    """The running event loop's clock (what ``anyio.sleep`` measures), and the wall clock.

    Read once at start: asyncio's ``loop.time`` directly (no backend lookup per read), trio's
    ``current_time`` (which is virtual under ``trio.testing.MockClock``).
    """

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now: Callable[[], float]
        if sniffio.current_async_library() == "asyncio":
            self.now = asyncio.get_running_loop().time
        else:
            self.now = anyio.current_time

    def wall(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()


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
    """Delegates to a transport, reporting each message sent to a tap."""

    def __init__(self, inner: object, tap: MessageTap) -> None:
        self.inner = inner
        self._tap = tap

    def send(self, data: bytes, target: Peer, txn_id: int | None = None) -> None:
        self._tap("out", data, (target.host, target.port))
        self.inner.send(data, target, txn_id)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _tapped_deliver(
    deliver: Callable[[bytes, Peer], None], tap: MessageTap
) -> Callable[[bytes, Peer], None]:
    """``deliver`` reporting each message to ``tap`` first, as ``("in", data, source)``."""

    def tapped(data: bytes, source: Peer) -> None:
        tap("in", data, (source.host, source.port))
        deliver(data, source)

    tapped.tapped_deliver = deliver  # type: ignore[attr-defined]
    return tapped


class _SocketEndpoint:
    """``DialogEndpoint`` (sockets) seen through the ``SipEndpoint`` protocol."""

    def __init__(self, endpoint: DialogEndpoint) -> None:
        self._ep = endpoint
        # hot path: the commands are the endpoint's own bound methods.
        self.invite = endpoint.invite
        self.respond = endpoint.respond
        self.cancel = endpoint.cancel
        self.bye = endpoint.bye
        self.request = endpoint.request
        self.reinvite = endpoint.reinvite
        self.refresh_session = endpoint.refresh_session
        self.refer = endpoint.refer
        self.accept_refer = endpoint.accept_refer
        self.notify_refer = endpoint.notify_refer
        self.local = endpoint.local
        self.send_request = endpoint.send_request
        self.subscribe = endpoint.subscribe
        self.unsubscribe = endpoint.unsubscribe
        self.accept_subscription = endpoint.accept_subscription
        self.reject_subscription = endpoint.reject_subscription
        self.notify_subscriber = endpoint.notify_subscriber
        self.terminate_subscription = endpoint.terminate_subscription

    @property
    def config(self) -> DialogConfig:
        return self._ep.config

    def add_credentials(self, credentials: Credentials) -> None:
        layer = self._ep.layer
        layer.config = with_credentials(layer.config, credentials)

    def set_contact_address(self, transport: str, host: str, port: int) -> None:
        layer = self._ep.layer
        layer.config = with_contact_address(layer.config, transport, host, port)

    def refuse_method(self, method: str) -> None:
        layer = self._ep.layer
        layer.config = without_method(layer.config, method)

    def send_keepalive(self, target: Peer) -> None:
        transport = self._ep.transactions.transports.get(target.transport.upper())
        if transport is not None:
            # RFC 5626 §3.5.1: the ping is a double CRLF; on a stream the peer answers with
            # a single CRLF (the framer drops it), over UDP nothing answers.
            transport.send(KEEPALIVE_PING, target)

    def local_address_toward(self, host: str) -> str | None:
        routes = self._ep.routes
        return routes.toward(host) if host else routes.last

    async def request_outside_dialog(self, request: Request, peer: Peer) -> Response:
        return await self._ep.transactions.request(request, peer)

    def set_tap(self, tap: MessageTap | None, received: bool = False) -> None:
        # The transaction endpoint has no public tap: its transports are wrapped (see the
        # report; a ``TransactionEndpoint.set_tap`` would replace this).
        transports = self._ep.transactions.transports
        for name, transport in list(transports.items()):
            inner = transport.inner if isinstance(transport, _TappedTransport) else transport
            transports[name] = inner if tap is None else _TappedTransport(inner, tap)  # type: ignore[assignment]
            # Received messages: the transport's ``deliver`` (read per message by its
            # receive path) is wrapped, and restored when the tap goes; never wrapped twice.
            deliver = getattr(inner, "deliver", None)
            if deliver is None:
                continue
            original = getattr(deliver, "tapped_deliver", deliver)
            if tap is not None and received:
                inner.deliver = _tapped_deliver(original, tap)  # type: ignore[attr-defined]
            else:
                inner.deliver = original  # type: ignore[attr-defined]

    def dialog_count(self) -> int:
        return len(self._ep.layer)

    def stats(self) -> dict[str, int]:
        dialogs = {f"dialog_{key}": value for key, value in self._ep.stats.items()}
        return {**self._ep.transactions.stats, **dialogs}


def without_method(config: DialogConfig, method: str) -> DialogConfig:
    """``config`` with ``method`` no longer allowed (dialog-core then answers it 405)."""
    return attrs.evolve(
        config,
        allow=tuple(m for m in config.allow if m != method),
        extra_methods=tuple(m for m in config.extra_methods if m != method),
    )


def with_credentials(config: DialogConfig, credentials: Credentials) -> DialogConfig:
    """``config`` answering ``credentials.realm`` with ``credentials`` (replacing others)."""
    kept = tuple(c for c in config.credentials if c.realm != credentials.realm)
    return attrs.evolve(config, credentials=(*kept, credentials))


def media_host(advertised: str, endpoint: SipEndpoint | None, hints: Iterable[str | None]) -> str:
    """The host for SDP ``c=``/``o=``: ``advertised``, unless it is a wildcard bind.

    Bound to ``0.0.0.0``/``::`` with no public address, the address of the interface
    that routes to the peer is advertised (never the wildcard, which no peer can send
    to): toward the first of ``hints`` (the peer's SDP address, the outbound proxy, the
    peer's URIs) that routes, else toward the last peer routed, else loopback.
    """
    if advertised not in WILDCARDS or endpoint is None:
        return advertised
    for hint in hints:
        if not hint:
            continue
        host = hint
        if ":" in hint and hint.split(":", 1)[0].lower() in ("sip", "sips", "<sip", "<sips"):
            try:
                host = split_uri_hostport(hint)[1] or ""
            except ValueError:
                continue
        found = endpoint.local_address_toward(host) if host else None
        if found is not None:
            return found
    found = endpoint.local_address_toward("")
    if found is not None:
        return found
    log.warning("bound to %s: no route to the peer known, advertising loopback", advertised)
    return "::1" if ":" in advertised else "127.0.0.1"


KEEPALIVE_PING = b"\r\n\r\n"
"""RFC 5626 §3.5.1: the CRLF keep-alive ping (a single CRLF is the pong)."""


def with_contact_address(
    config: DialogConfig, transport: str, host: str, port: int
) -> DialogConfig:
    """``config`` whose Contact for ``transport`` names ``host:port`` (a learnt public address).

    The user part is kept; the other transports' Contacts are left alone (a NAT binding
    is per flow: the one learnt over UDP says nothing of TCP).
    """
    name = transport.upper()
    current = config.contact_for(name)
    scheme_rest = current.partition(":")[2]
    user = scheme_rest.split("@", 1)[0] if "@" in scheme_rest else "rvoip"
    uri = contact_uri(user, host, port, name)
    if name == config.transport.upper():
        return attrs.evolve(config, contact=uri)
    others = tuple((t, uri if t.upper() == name else c) for t, c in config.contacts)
    if all(t.upper() != name for t, _ in config.contacts):
        others = (*others, (name, uri))
    return attrs.evolve(config, contacts=others)


def dialog_config(cfg: SessionConfig, bound: Peer, others: Iterable[Peer] = ()) -> DialogConfig:
    """Contact/Via of the bound sockets: their ports always, their host unless a public one.

    ``bound`` is the preferred transport's address, ``others`` the other transports.

    RFC 5630 §3.1.2: every Contact is a ``sip:`` URI naming its transport (``;transport=tls``
    over TLS); the dialog layer turns it into ``sips:`` only for secure requests.
    """
    host = cfg.public_host or bound.host
    user = cfg.user or "rvoip"
    contacts = tuple(
        (peer.transport, contact_uri(user, cfg.public_host or peer.host, peer.port, peer.transport))
        for peer in others
    )
    # RFC 4028 session timers as the application set them (with_session_timer); off: no
    # ``timer`` option tag, no interval asked for, none run on our own.
    st = cfg.session_timer
    supported = _SUPPORTED if st is not None else tuple(t for t in _SUPPORTED if t != "timer")
    expires = None if st is None else st.expires
    return DialogConfig(
        contact=contact_uri(user, host, bound.port, bound.transport),
        via_host=host,
        via_port=bound.port,
        transport=bound.transport,
        t1=cfg.t1,
        t2=cfg.t2,
        user_agent=cfg.user_agent,
        contacts=contacts,
        credentials=cfg.credentials,
        outbound_proxy=cfg.outbound_proxy,
        # RFC 3428: MESSAGE reaches the call layer (answered through CallHandler.on_message);
        # a registrar takes REGISTER from the dialog layer as a plain request.
        extra_methods=("MESSAGE", "REGISTER") if cfg.registrar is not None else ("MESSAGE",),
        follow_redirects=cfg.follow_redirects,
        max_redirects=cfg.max_redirects,
        event_packages=tuple(name for name, _ in cfg.event_providers),
        max_subscriptions=cfg.max_subscriptions,
        min_subscription_expires=cfg.min_subscription_expires,
        max_subscription_expires=cfg.max_subscription_expires,
        supported=supported,
        session_expires=expires,
        uas_session_expires=expires,
        min_se=90 if st is None else st.min_se,
        session_refresher=None if st is None else st.refresher,
    )


_SUPPORTED = cast("tuple[str, ...]", attrs.fields(DialogConfig).supported.default)
"""The option tags dialog-core supports (100rel, replaces, timer)."""


_BIND_ATTEMPTS = 8
"""Ephemeral ports tried when ``sip_port`` is 0 and UDP, TCP (and TLS) must share one."""


def _free_port(host: str) -> int:
    """A port the OS gives for UDP on ``host`` now (TCP on it is then tried as well)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def open_socket_endpoint(
    cfg: SessionConfig, rng: random.Random, on_event: Callable[[object], None]
) -> AsyncIterator[SipEndpoint]:
    """The default ``EndpointFactory``: a ``DialogEndpoint`` on every served transport.

    RFC 3261 §18: UDP and TCP on the SIP port at once, TLS on the TLS port beside them
    (listening with a certificate, a client only without one). With SIP port 0 one free
    port is picked for UDP and TCP together (a few tries when TCP has it taken).

    Raises:
        TransportError: the SIP address could not be bound (e.g. port in use).
    """
    served = cfg.served_transports()
    tls_server, tls_client = cfg.tls_contexts()
    # Tags, branches and Call-IDs: the OS CSPRNG itself unless a test seeded the RNG
    # (RFC 3261 §19.3; a Mersenne Twister's state can be recovered from its outputs).
    ep_rng = rng if isinstance(rng, random.SystemRandom) else random.Random(rng.getrandbits(64))
    attempts = _BIND_ATTEMPTS if cfg.sip_port == 0 and len(served) > 1 else 1
    for attempt in range(attempts):
        port = _free_port(cfg.bind_host) if attempts > 1 else cfg.sip_port
        addr = (cfg.bind_host, port)
        endpoint = DialogEndpoint(
            udp=addr if "UDP" in served else None,
            tcp=addr if "TCP" in served else None,
            tls=(cfg.bind_host, cfg.tls_listen_port(cfg.sip_port)) if "TLS" in served else None,
            tls_server_context=tls_server,
            tls_client_context=tls_client,
            user=cfg.user or "rvoip",
            config=None,  # replaced below, once the bound address is known
            timers=TimerConfig(t1=cfg.t1, t2=cfg.t2, trying_after=cfg.trying_after),
            rng=ep_rng,
            on_event=on_event,
            overload=cfg.overload,
            stream_limits=cfg.stream_limits,
            dns=cfg.dns,
        )
        async with contextlib.AsyncExitStack() as stack:
            try:
                entered = await stack.enter_async_context(endpoint)
            except Exception as exc:
                error = _os_error(exc)
                if error is None:
                    raise
                if attempt + 1 < attempts:
                    continue  # the free UDP port was taken for TCP: pick another
                raise TransportError(
                    f"cannot bind SIP {'/'.join(served)} on {cfg.bind_host}:{cfg.sip_port}: "
                    f"{error.strerror or error}"
                ) from None
            # Via and Contact carry the ports actually bound (port 0 picks one).
            # DialogLayer's ``config`` is a public attribute.
            others = [entered.local(name) for name in served[1:]]
            entered.layer.config = dialog_config(cfg, entered.local(cfg.transport), others)
            yield _SocketEndpoint(entered)
            return


class EventGate:
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

    def offer(self, event: object) -> None:
        """Handle ``event`` now, or hold it while a command or a drain is under way."""
        if self.depth or self.draining:
            self.held.append(event)
        else:
            self.run(event)

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


class DeadlineTimer:
    """One task sleeping until the call layer's next deadline.

    Args:
        clock: the coordinator's clock (its ``now`` must advance like the loop's).
        next_deadline: the call layer's earliest deadline (None: none).
        fire: handles every deadline due at ``now``.
    """

    def __init__(
        self,
        clock: Clock,
        next_deadline: Callable[[], float | None],
        fire: Callable[[float], None],
    ) -> None:
        self._clock = clock
        self._next = next_deadline
        self._fire = fire
        self._wakeup = anyio.Event()
        self.armed = math.inf
        """When the task will wake next (inf: not before a wake-up)."""

    def wake(self, when: float) -> None:
        """A deadline at ``when`` was set: wake the task if it sleeps past it."""
        if when < self.armed:
            self.armed = when
            self._wakeup.set()

    async def run(self) -> None:
        """Sleep until each deadline and fire it, for ever (cancel to stop)."""
        clock = self._clock
        while True:
            deadline = self._next()
            self.armed = deadline if deadline is not None else math.inf
            delay = math.inf if deadline is None else max(0.0, deadline - clock.now())
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._wakeup.wait()
            if self._wakeup.is_set():
                self._wakeup = anyio.Event()
            self.armed = -math.inf  # awake: no wake-up needed until we sleep again
            try:
                self._fire(clock.now())
            except Exception:
                log.exception("call layer timers failed")
                await anyio.sleep(0.05)  # a failing timer must not spin


async def guarded(func: Callable[..., Awaitable[object]], *args: object) -> None:
    """Run a call task, logging (never raising) its error.

    One call's bug must not end the coordinator's task group and with it every other call.
    """
    try:
        await func(*args)
    except Exception:
        log.exception("call task %s failed", getattr(func, "__qualname__", func))


def not_started() -> InvalidState:
    """The error for using a coordinator before ``start()``."""
    return InvalidState("the coordinator is not started (await coordinator.start())")
