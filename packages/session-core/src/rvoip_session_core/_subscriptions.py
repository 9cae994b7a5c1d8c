"""Subscriptions (RFC 6665) from the session API: subscribing, and serving event packages.

Subscribing: ``coordinator.subscribe(uri, event)`` returns a :class:`Subscription` handle —
its ``state``, ``async for notification in subscription`` (one :class:`Notification` per
NOTIFY, ending when the subscription does) and ``await subscription.unsubscribe()``.
Refreshes, resubscriptions and the dialog are the dialog layer's work.

Serving: ``SessionManagerBuilder.with_event_package(name, provider)`` registers an
:class:`EventProvider`; a SUBSCRIBE for that package gets the provider's document for the
resource (the Request-URI's user) in its first NOTIFY, the provider is told of each
subscriber, and ``provider.changed(resource)`` pushes a NOTIFY with the new document to
every subscriber of the resource.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import math
from collections.abc import Callable, Iterable, Iterator

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from rvoip_dialog_core import (
    DialogUsageError,
    ServedSubscriptionEnded,
    ServedSubscriptionRefreshed,
    SubscribeReceived,
    SubscriptionAccepted,
    SubscriptionEnded,
    SubscriptionNotified,
)
from rvoip_session_core._driver import SipEndpoint
from rvoip_session_core._errors import InvalidState, Timeout
from rvoip_sip_core import SipUri, parse_uri

__all__ = [
    "SUBSCRIPTION_BUFFER",
    "EventProvider",
    "EventSubscriptions",
    "Notification",
    "Subscriber",
    "Subscription",
    "SubscriptionEvent",
]

log = logging.getLogger("rvoip_session_core")

SUBSCRIPTION_BUFFER = 100
"""Notifications a :class:`Subscription` keeps for a reader that is behind; beyond it the
oldest unread ones are dropped (counted in ``dropped``): a chatty notifier cannot grow
memory without bound."""

SubscriptionEvent = (
    SubscriptionAccepted
    | SubscriptionNotified
    | SubscriptionEnded
    | SubscribeReceived
    | ServedSubscriptionEnded
    | ServedSubscriptionRefreshed
)
"""The dialog events this module handles."""


@attrs.frozen
class Notification:
    """One NOTIFY of a subscription (RFC 6665 §4.1.3).

    Attributes:
        state: ``active``, ``pending`` or ``terminated``.
        reason: The reason of a terminated state (``timeout``, ``noresource`` …).
        expires: The remaining duration the notifier states, seconds.
        body: The package's state document.
        content_type: Its type.
        resubscribing: The stack subscribes again by itself after this one.
    """

    state: str
    reason: str | None
    expires: int | None
    body: bytes = attrs.field(repr=False)
    content_type: str | None
    resubscribing: bool = False


class Subscription:
    """A subscription of ours: its state, its notifications, ``unsubscribe()``.

    ``async for notification in subscription`` yields each NOTIFY in order and ends once
    the subscription is over (``state == "terminated"``; ``end_reason`` says why).
    """

    def __init__(
        self,
        ref: int,
        uri: str,
        event: str,
        unsubscribe: Callable[[int], None],
        buffer: int = SUBSCRIPTION_BUFFER,
    ) -> None:
        self.ref = ref
        """The dialog layer's handle."""
        self.uri = uri
        """The resource subscribed to."""
        self.event = event
        """The Event header value."""
        self.state = "subscribing"
        """``subscribing``, ``pending``, ``active`` or ``terminated``."""
        self.expires: int | None = None
        """The duration the notifier granted last."""
        self.last: Notification | None = None
        """The latest notification."""
        self.end_reason: str | None = None
        """Why it ended (``rejected``, ``unsubscribed``, ``timeout``, ``noresource`` …)."""
        self.end_status: int | None = None
        """The failure status that ended it, if one did."""
        self.retry_after: int | None = None
        """Seconds the notifier asked us to wait before subscribing again."""
        self.dropped = 0
        """Notifications dropped because the reader was more than ``buffer`` behind."""
        self._unsubscribe = unsubscribe
        self._send: MemoryObjectSendStream[Notification]
        self._receive: MemoryObjectReceiveStream[Notification]
        self._send, self._receive = anyio.create_memory_object_stream[Notification](
            buffer if buffer > 0 else math.inf
        )
        self._changed = anyio.Event()
        self._ended = anyio.Event()

    def __repr__(self) -> str:
        return f"Subscription({self.uri!r}, {self.event!r}, state={self.state!r})"

    # --- reading ---------------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Notification:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def next(self, timeout: float = 32.0) -> Notification:
        """The next notification, waiting at most ``timeout`` seconds.

        Raises:
            Timeout: none came in time.
            InvalidState: the subscription ended and every notification was read.
        """
        with anyio.move_on_after(timeout):
            try:
                return await self._receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise InvalidState(f"subscription ended ({self.end_reason})") from None
        raise Timeout(f"no NOTIFY within {timeout} s")

    async def wait_state(self, *states: str, timeout: float = 32.0) -> str:
        """Wait until the state is one of ``states`` (or terminated); returns it.

        Raises:
            Timeout: not within ``timeout`` seconds.
        """
        with anyio.move_on_after(timeout):
            while self.state not in states and self.state != "terminated":
                await self._changed.wait()
            return self.state
        raise Timeout(f"subscription still {self.state} after {timeout} s")

    async def unsubscribe(self, timeout: float = 32.0) -> None:
        """End the subscription (SUBSCRIBE with ``Expires: 0``) and wait for the end.

        Raises:
            Timeout: the end did not come within ``timeout`` seconds.
        """
        if self.state != "terminated":
            with contextlib.suppress(DialogUsageError):
                self._unsubscribe(self.ref)
        with anyio.move_on_after(timeout):
            await self._ended.wait()
            return
        raise Timeout(f"unsubscribe not confirmed within {timeout} s")

    # --- fed by the manager ----------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        self.state = state
        self._changed.set()
        self._changed = anyio.Event()

    def _accepted(self, expires: int) -> None:
        self.expires = expires

    def _notified(self, notification: Notification) -> None:
        self.last = notification
        if notification.expires is not None:
            self.expires = notification.expires
        try:
            self._send.send_nowait(notification)
        except anyio.WouldBlock:
            # The reader is behind: drop its oldest unread notification for this one.
            with contextlib.suppress(anyio.WouldBlock):
                self._receive.receive_nowait()
            self.dropped += 1
            with contextlib.suppress(anyio.WouldBlock):
                self._send.send_nowait(notification)
        if notification.state in ("active", "pending"):
            self._set_state(notification.state)
        elif notification.resubscribing:
            self._set_state("subscribing")

    def _end(self, reason: str, status: int | None, retry_after: int | None) -> None:
        self.end_reason, self.end_status, self.retry_after = reason, status, retry_after
        self._set_state("terminated")
        self._send.close()
        self._ended.set()


@attrs.frozen
class Subscriber:
    """A subscription we serve, as a provider sees it.

    Attributes:
        ref: Its handle.
        package: The event package.
        resource: The resource (the Request-URI's user, or its host when it has none).
        uri: The Request-URI subscribed to.
        from_: The subscriber's From URI.
    """

    ref: int
    package: str
    resource: str
    uri: str
    from_: str


class EventProvider(abc.ABC):
    """What an event package served by a coordinator supplies (subclass it).

    ``document`` gives the state of a resource; ``changed`` (called by the provider when
    the state changes) sends it to every subscriber of the resource. ``content_type`` is
    the type of the documents.
    """

    content_type: str = "application/octet-stream"

    def __init__(self) -> None:
        self._push: Callable[[EventProvider, str | None], None] | None = None

    @abc.abstractmethod
    def document(self, resource: str, version: int) -> bytes | None:
        """The current state document of ``resource``; None: no such resource (404).

        Args:
            resource: The Request-URI's user (or host).
            version: The number of documents this subscription was sent before this one
                (RFC 4235's ``version``: 0 for the first NOTIFY).
        """

    def subscriber_added(self, subscriber: Subscriber) -> None:
        """A subscription was accepted (the first NOTIFY is on its way)."""
        del subscriber

    def subscriber_removed(self, subscriber: Subscriber, reason: str) -> None:
        """A subscription ended (``timeout``, ``unsubscribed``, ``notify-failed`` …)."""
        del subscriber, reason

    def changed(self, resource: str | None = None) -> None:
        """The state of ``resource`` (None: of every resource) changed: notify subscribers."""
        push = self._push
        if push is not None:
            push(self, resource)

    def _bind(self, push: Callable[[EventProvider, str | None], None] | None) -> None:
        self._push = push


def resource_of(uri: str) -> str:
    """The resource a Request-URI names: its user part, else its host."""
    try:
        parsed = parse_uri(uri)
    except Exception:
        return uri
    if isinstance(parsed, SipUri):
        return parsed.user or parsed.host
    return str(parsed)


def _from_uri(event: SubscribeReceived) -> str:
    """The subscriber's From URI (no display name, no tag)."""
    uri = event.request.from_.uri
    return str(uri) if uri is not None else ""


@attrs.define(eq=False)
class _Served:
    subscriber: Subscriber
    provider: EventProvider
    version: int = 0


class EventSubscriptions:
    """Our subscriptions and the ones we serve, for one coordinator.

    Args:
        providers: Served event packages by name (lower-cased).
    """

    def __init__(self, providers: Iterable[tuple[str, EventProvider]] = ()) -> None:
        self._providers: dict[str, EventProvider] = {}
        for name, provider in providers:
            self._providers[name.lower()] = provider
            provider._bind(self._push)
        self._ours: dict[int, Subscription] = {}
        self._served: dict[int, _Served] = {}
        self._endpoint: SipEndpoint | None = None
        self._from: str = ""

    @property
    def packages(self) -> tuple[str, ...]:
        """The event packages served."""
        return tuple(self._providers)

    def attach(self, endpoint: SipEndpoint, from_: str) -> None:
        """The coordinator started (``from_``: our identity in SUBSCRIBEs)."""
        self._endpoint = endpoint
        self._from = from_

    def detach(self) -> None:
        """The coordinator stops: end ours (unsubscribe) and the served ones, best effort."""
        endpoint = self._endpoint
        if endpoint is not None:
            for ref in list(self._ours):
                with contextlib.suppress(Exception):
                    endpoint.unsubscribe(ref)
            for ref in list(self._served):
                with contextlib.suppress(Exception):
                    endpoint.terminate_subscription(ref, "deactivated")
        for sub in list(self._ours.values()):
            sub._end("stopped", None, None)
        self._ours.clear()
        for served in list(self._served.values()):
            self._forget(served, "stopped")
        self._endpoint = None

    def _require(self) -> SipEndpoint:
        if self._endpoint is None:
            raise InvalidState("the coordinator is not running")
        return self._endpoint

    # --- subscribing -----------------------------------------------------------------------

    def subscribe(
        self,
        uri: str,
        event: str,
        *,
        expires: int = 3600,
        accept: Iterable[str] = (),
        from_: str | None = None,
        buffer: int = SUBSCRIPTION_BUFFER,
    ) -> Subscription:
        """Subscribe to ``event`` at ``uri``; returns the handle at once (see the module).

        ``buffer``: notifications kept for a reader that is behind (the oldest go first).

        Raises:
            InvalidState: the coordinator is not running, or the dialog layer refused
                (malformed event, too many subscriptions).
        """
        endpoint = self._require()
        try:
            ref = endpoint.subscribe(
                uri, from_=from_ or self._from, event=event, expires=expires, accept=accept
            )
        except DialogUsageError as exc:
            raise InvalidState(str(exc)) from None
        sub = Subscription(ref, uri, event, self._unsubscribe, buffer)
        self._ours[ref] = sub
        return sub

    def _unsubscribe(self, ref: int) -> None:
        self._require().unsubscribe(ref)

    # --- serving ---------------------------------------------------------------------------

    def _push(self, provider: EventProvider, resource: str | None) -> None:
        if self._endpoint is None:
            return
        for served in list(self._served.values()):
            sub = served.subscriber
            if served.provider is provider and resource in (None, sub.resource):
                self._notify(served)

    def _notify(self, served: _Served) -> None:
        """Send ``served`` the provider's current document (a new version)."""
        endpoint = self._require()
        sub, provider = served.subscriber, served.provider
        served.version += 1
        try:
            document = provider.document(sub.resource, served.version)
            if document is None:
                endpoint.terminate_subscription(sub.ref, "noresource")
            else:
                endpoint.notify_subscriber(sub.ref, document, provider.content_type)
        except DialogUsageError:
            self._forget(served, "gone")
        except Exception:
            log.exception("event package %s failed for %s", sub.package, sub.resource)

    def _subscribe_received(self, event: SubscribeReceived) -> None:
        endpoint = self._require()
        provider = self._providers.get(event.event)
        if provider is None:
            endpoint.reject_subscription(event.ref, 489, "Bad Event")
            return
        uri = str(event.request.uri)
        subscriber = Subscriber(
            event.ref,
            event.event,
            resource_of(uri),
            uri,
            _from_uri(event),
        )
        try:
            document = provider.document(subscriber.resource, 0)
        except Exception:
            log.exception("event package %s failed for %s", event.event, subscriber.resource)
            endpoint.reject_subscription(event.ref, 500, "Server Internal Error")
            return
        if document is None:
            endpoint.reject_subscription(event.ref, 404, "Not Found")
            return
        served = _Served(subscriber, provider)
        self._served[event.ref] = served
        # Each refresh gets a NOTIFY with a fresh document from us (not the layer's copy of
        # the last one): a versioned package (RFC 4235 §4.1) counts every NOTIFY.
        endpoint.accept_subscription(
            event.ref,
            body=document,
            content_type=provider.content_type,
            notify_on_refresh=False,
        )
        if self._served.get(event.ref) is served:  # a fetch (Expires 0) ended at once
            with _logged(subscriber):
                provider.subscriber_added(subscriber)

    def _forget(self, served: _Served, reason: str) -> None:
        if self._served.pop(served.subscriber.ref, None) is None:
            return
        with _logged(served.subscriber):
            served.provider.subscriber_removed(served.subscriber, reason)

    # --- dialog events ---------------------------------------------------------------------

    def handle(self, event: SubscriptionEvent) -> None:
        """One subscription event of the dialog layer."""
        match event:
            case SubscriptionAccepted(ref=ref, expires=expires):
                sub = self._ours.get(ref)
                if sub is not None:
                    sub._accepted(expires)
            case SubscriptionNotified(ref=ref):
                sub = self._ours.get(ref)
                if sub is not None:
                    sub._notified(
                        Notification(
                            event.state,
                            event.reason,
                            event.expires,
                            event.body,
                            event.content_type,
                            event.resubscribing,
                        )
                    )
            case SubscriptionEnded(ref=ref):
                sub = self._ours.pop(ref, None)
                if sub is not None:
                    sub._end(event.reason, event.status, event.retry_after)
            case SubscribeReceived():
                if self._endpoint is not None:
                    self._subscribe_received(event)
            case ServedSubscriptionRefreshed(ref=ref):
                served = self._served.get(ref)
                if served is not None and self._endpoint is not None:
                    # RFC 6665 §4.2.1.2: a refresh is followed by a NOTIFY.
                    self._notify(served)
            case ServedSubscriptionEnded(ref=ref, reason=reason):
                served = self._served.get(ref)
                if served is not None:
                    self._forget(served, reason)

    def counts(self) -> dict[str, int]:
        """Live subscriptions: ours and served (leak checks)."""
        return {"subscriptions": len(self._ours), "served_subscriptions": len(self._served)}


@contextlib.contextmanager
def _logged(subscriber: Subscriber) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("event package %s provider failed", subscriber.package)
