"""Configuration of a dialog layer: local identity, timers and advertised capabilities."""

from __future__ import annotations

import attrs

from rvoip_sip_core import SUPPORTED_ALGORITHMS

from ._auth import Credentials

__all__ = ["DEFAULT_ALLOW", "WILDCARDS", "DialogConfig", "contact_uri", "secure_form"]

WILDCARDS = frozenset({"0.0.0.0", "::"})
"""Bind addresses that are no address to advertise (every interface)."""

DEFAULT_ALLOW: tuple[str, ...] = (
    "INVITE",
    "ACK",
    "CANCEL",
    "BYE",
    "OPTIONS",
    "INFO",
    "UPDATE",
    "REFER",
    "NOTIFY",
    "PRACK",
)
"""Methods a dialog layer handles itself (advertised in ``Allow``)."""


@attrs.frozen
class DialogConfig:
    """What a dialog layer puts in the messages it builds.

    Attributes:
        contact: The Contact URI of this user agent (``sip:alice@127.0.0.1:5060``), the
            address the transport actually bound.
        via_host: Host of the ``sent-by`` in the Via of requests we send.
        via_port: Port of the ``sent-by``.
        transport: Via transport token (``UDP``, ``TCP``, ``TLS``): the preferred transport,
            the one ``contact`` is for.
        t1: RFC 3261 T1 (RTT estimate), seconds.
        t2: RFC 3261 T2 (maximum retransmit interval for non-INVITE and 2xx), seconds.
        allow: Methods advertised in ``Allow``; others are answered 405.
        supported: Option tags advertised in ``Supported``; a ``Require`` naming any
            other tag is answered 420.
        extra_methods: Methods passed to the TU as plain requests (e.g. MESSAGE).
        session_content_types: Bodies accepted in INVITE, UPDATE, PRACK and ACK.
        info_content_types: Bodies accepted in INFO.
        user_agent: Value of ``User-Agent`` / ``Server`` (None: omit).
        subscription_expires: Expires of the implicit REFER subscription, seconds.
        session_expires: Session interval we ask for in INVITEs (RFC 4028; None: none).
        min_se: The smallest session interval we accept (RFC 4028 Min-SE, >= 90).
        uas_session_expires: As UAS, the session interval we run on our own when the
            peer's INVITE asks for none (RFC 4028 §9, ``refresher=uas``): we refresh at
            half of it with UPDATE and end the dialog with BYE when a refresh fails
            (408/481 or no answer), so a vanished peer cannot hold a call for ever.
            None: off. Needs ``timer`` in ``supported``.
        contacts: ``(transport, contact URI)`` for each other transport we are reachable on
            (``("TCP", "sip:alice@127.0.0.1:5060;transport=tcp")``); see `contact_for`.
        sips_contact: The ``sips:`` Contact URI (our TLS address) used when a request or
            dialog is secure (RFC 3261 §8.1.1.8, §12.1.1). None: derived from the TLS
            entry of ``contacts`` (or ``contact``) by changing its scheme.
        credentials: Digest credentials by realm (a realm of None answers any realm):
            a 401/407 to any request we send is retried once with them (RFC 3261 §22).
            Empty: challenges fail the request.
        auth_algorithms: Digest algorithms we answer, most preferred first (others are
            refused, so a man in the middle cannot downgrade us to one left out).
        auth_require_qop: Refuse challenges without qop (RFC 2069 style, replayable).
        auth_retries: The most retries one request makes with credentials (a
            ``stale=true`` challenge is answered again until this bound; a second
            challenge for a realm already answered fails at once).
        outbound_proxy: A pre-loaded route for requests outside a dialog (RFC 3261
            §8.1.2: the initial INVITE, REGISTER, OPTIONS …): a Route value such as
            ``sip:proxy.example.com;lr`` put on each such request that names no route
            of its own, so it goes to the proxy; in a dialog the route set learnt from
            Record-Route applies (§12.2.1.1). None: requests go to their Request-URI.
        follow_redirects: Follow a 3xx to our initial INVITE (RFC 3261 §8.1.3.4): the
            Contacts of the 300/301/302 become the call's targets, tried in q order
            (``CallRedirected`` each time). False: a 3xx fails the call (``InviteFailed``).
        max_redirects: The most targets one call is sent to after its first (a bound
            on redirect chains; a URI already tried is never tried again, so loops end).
        event_packages: Event packages we serve as a notifier (RFC 6665 §4.2): a
            SUBSCRIBE for one of them reaches the TU as ``SubscribeReceived``, any other
            is answered 489 with ``Allow-Events``. Non-empty adds SUBSCRIBE to ``Allow``.
        max_subscriptions: The most subscriptions served at once, and separately the
            most of our own (a SUBSCRIBE past it is answered 503 with Retry-After; a
            ``subscribe`` past it raises), so subscriptions cannot exhaust memory.
        min_subscription_expires: The shortest subscription we serve: a SUBSCRIBE asking
            for less (but not 0) is answered 423 with ``Min-Expires`` (RFC 6665 §4.2.1.1),
            so a peer cannot make us refresh state every second.
        max_subscription_expires: The longest duration we grant (a longer request is
            cut to it in the 2xx's ``Expires``, RFC 6665 §4.2.1.1).
        subscription_default_expires: The duration of a SUBSCRIBE without ``Expires``
            (RFC 6665 §4.2.1.1: the package's default; 3600 for dialog and
            message-summary).
        resubscribe_limit: How many times in a row we subscribe again by ourselves after
            a ``terminated`` NOTIFY asking for it (deactivated, timeout, probation,
            giveup); the count starts over once the subscription is active at least
            ``min_subscription_expires`` after the last one, so a notifier cannot keep
            us in a loop.
        max_retry_after: The longest ``retry-after`` we wait for before subscribing
            again (a longer one ends the subscription instead), seconds.
        session_refresher: Who refreshes the session (RFC 4028 ``refresher``): ``"uac"``
            (the caller) or ``"uas"`` (the callee), asked for in our INVITEs and chosen
            in our answers when the peer's INVITE leaves it open (``"uac"`` only when the
            UAC supports timers); None: we ask for none and, as UAS, pick the UAC when it
            can. Read per dialog at negotiation (a new config applies to new sessions).
    """

    contact: str
    via_host: str
    via_port: int
    transport: str = "UDP"
    t1: float = 0.5
    t2: float = 4.0
    allow: tuple[str, ...] = DEFAULT_ALLOW
    supported: tuple[str, ...] = ("100rel", "replaces", "timer")
    extra_methods: tuple[str, ...] = ()
    session_content_types: tuple[str, ...] = ("application/sdp",)
    info_content_types: tuple[str, ...] = ("application/dtmf-relay", "application/dtmf")
    user_agent: str | None = "rvoip"
    subscription_expires: int = 60
    session_expires: int | None = 1800
    min_se: int = 90
    uas_session_expires: int | None = 1800
    contacts: tuple[tuple[str, str], ...] = ()
    sips_contact: str | None = None
    credentials: tuple[Credentials, ...] = ()
    auth_algorithms: tuple[str, ...] = SUPPORTED_ALGORITHMS
    auth_require_qop: bool = False
    auth_retries: int = 2
    outbound_proxy: str | None = None
    follow_redirects: bool = True
    max_redirects: int = 5
    event_packages: tuple[str, ...] = ()
    max_subscriptions: int = 1000
    min_subscription_expires: int = 60
    max_subscription_expires: int = 86400
    subscription_default_expires: int = 3600
    resubscribe_limit: int = 3
    max_retry_after: int = 3600
    session_refresher: str | None = None
    # Derived once (hot path: read for every message); recomputed by attrs.evolve.
    _all_methods: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)
    _supported_lower: frozenset[str] = attrs.field(init=False, eq=False, repr=False)
    _capabilities: tuple[tuple[str, str], ...] = attrs.field(init=False, eq=False, repr=False)
    _by_transport: dict[str, str] = attrs.field(init=False, eq=False, repr=False)
    _secure: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        methods = self.allow + tuple(m for m in self.extra_methods if m not in self.allow)
        if self.event_packages and "SUBSCRIBE" not in methods:
            # RFC 6665 §4.2: a notifier accepts SUBSCRIBE for the packages it serves.
            methods += ("SUBSCRIBE",)
        object.__setattr__(self, "_all_methods", methods)
        object.__setattr__(self, "_supported_lower", frozenset(t.lower() for t in self.supported))
        capabilities = (("Allow", ", ".join(methods)), ("Supported", ", ".join(self.supported)))
        object.__setattr__(self, "_capabilities", capabilities)
        by_transport = {name.upper(): uri for name, uri in self.contacts}
        by_transport[self.transport.upper()] = self.contact
        object.__setattr__(self, "_by_transport", by_transport)
        secure = self.sips_contact or secure_form(by_transport.get("TLS", self.contact))
        object.__setattr__(self, "_secure", secure)

    def contact_for(self, transport: str, secure: bool = False) -> str:
        """Our Contact URI for a message carried over ``transport`` (``UDP``/``TCP``/``TLS``).

        RFC 3261 §8.1.1.8 and §12.1.1: when the Request-URI (or the top Route / Record-Route)
        is a ``sips:`` URI, the Contact MUST be a ``sips:`` URI too (``secure``). Otherwise
        it is a ``sip:`` URI naming the transport in use (``;transport=tls`` over TLS):
        RFC 5630 §3.1.2 — a ``sip:`` request that happens to ride on TLS must not get a
        ``sips:`` Contact, or the peer's in-dialog requests would demand TLS end to end
        (baresip drops such a call). Hot path: one dict lookup.
        """
        if secure:
            return self._secure
        return self._by_transport.get(transport, self.contact)

    @property
    def all_methods(self) -> tuple[str, ...]:
        """Methods this layer accepts (``allow`` plus ``extra_methods``)."""
        return self._all_methods

    @property
    def supported_lower(self) -> frozenset[str]:
        """The ``supported`` option tags, lower-cased."""
        return self._supported_lower

    @property
    def capabilities(self) -> tuple[tuple[str, str], ...]:
        """The ``Allow`` and ``Supported`` header lines this layer advertises."""
        return self._capabilities


def secure_form(uri: str) -> str:
    """The ``sips:`` form of a ``sip:`` Contact URI (scheme changed, ``transport=tls`` dropped).

    RFC 5630 §3.1.3 / RFC 3261 §19.1.2: ``sips:`` implies TLS, so the ``transport=tls``
    parameter is redundant (``transport=tcp``/``udp`` would contradict it and go too).
    """
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips"):
        return uri
    head, *params = rest.split(";")
    kept = [p for p in params if not p.lower().startswith("transport=")]
    return ";".join([f"sips:{head}", *kept])


def contact_uri(user: str, host: str, port: int, transport: str) -> str:
    """Our ``sip:`` Contact URI at ``host:port`` for ``transport`` (RFC 3261 §19.1.1).

    UDP is the default transport of a ``sip:`` URI and goes without parameter; TCP and TLS
    are named (``;transport=tls``: a ``sip:`` URI reached over TLS, not a ``sips:`` one,
    RFC 5630 §3.1.2).
    """
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    name = transport.upper()
    param = "" if name == "UDP" else f";transport={name.lower()}"
    return f"sip:{user}@{shown}:{port}{param}"
