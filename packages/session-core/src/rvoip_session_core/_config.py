"""``SessionManagerBuilder``: chain the settings, then build a coordinator."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import attrs

from rvoip_dialog_core import Credentials, DnsSettings, parse_dns_server
from rvoip_rtp_core import LatchMode
from rvoip_session_core._accounts import Account, RegistrationSettings
from rvoip_session_core._authenticator import (
    Authenticator,
    AuthSettings,
    Ha1Lookup,
    PasswordLookup,
    normalize_methods,
)
from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._drain import (
    DEFAULT_DRAIN_RETRY_AFTER,
    DEFAULT_DRAIN_TIMEOUT,
    DrainSettings,
)
from rvoip_session_core._errors import ConfigurationError
from rvoip_session_core._event_packages import DialogEventPackage
from rvoip_session_core._handlers import AutoAnswerHandler, CallHandler
from rvoip_session_core._offer_answer import SRTP_MODES, SrtpMode
from rvoip_session_core._registrar import Registrar, RegistrarSettings
from rvoip_session_core._settings import (
    DEFAULT_CODECS,
    DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MEDIA_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    RTP_LATCH_MODES,
    SUPPORTED_CODECS,
    SUPPORTED_TRANSPORTS,
    SessionConfig,
    SessionTimerSettings,
    is_ip_literal,
    split_hostport,
    split_uri_hostport,
)
from rvoip_session_core._subscriptions import EventProvider
from rvoip_transaction_core import OverloadConfig, StreamLimits

if TYPE_CHECKING:
    from rvoip_transaction_core import Clock

__all__ = [
    "DEFAULT_MAX_CONCURRENT_CALLS",
    "DEFAULT_MEDIA_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "SUPPORTED_CODECS",
    "SUPPORTED_TRANSPORTS",
    "SessionConfig",
    "SessionManagerBuilder",
    "is_ip_literal",
    "split_uri_hostport",
]


@attrs.define
class SessionManagerBuilder:
    """Builds a ``SessionCoordinator``: chain the ``with_*`` calls, then ``await build()``.

    Example:
        >>> builder = SessionManagerBuilder().with_sip_port(0).with_local_address(
        ...     "sip:alice@127.0.0.1")
        >>> builder.config().bind_host
        '127.0.0.1'
    """

    _sip_port: int | None = attrs.field(init=False, default=None)
    _local_address: str | None = attrs.field(init=False, default=None)
    _bind_addr: str | None = attrs.field(init=False, default=None)
    _public_address: str | None = attrs.field(init=False, default=None)
    _handler: CallHandler | None = attrs.field(init=False, default=None)
    _media_ports: tuple[int, int] | None = attrs.field(init=False, default=None)
    _transport: str = attrs.field(init=False, default="UDP")
    _transports: tuple[str, ...] = attrs.field(init=False, default=())
    _tls_port: int | None = attrs.field(init=False, default=None)
    _codecs: tuple[str, ...] = attrs.field(init=False, default=DEFAULT_CODECS)
    _dtmf_pt: int = attrs.field(init=False, default=101)
    _incoming_timeout: float = attrs.field(init=False, default=60.0)
    _quality_interval: float = attrs.field(init=False, default=5.0)
    _t1: float = attrs.field(init=False, default=0.5)
    _t2: float = attrs.field(init=False, default=4.0)
    _trying_after: float = attrs.field(init=False, default=0.2)
    _user_agent: str = attrs.field(init=False, default="rvoip-python/0.1")
    _rng_seed: int | None = attrs.field(init=False, default=None)
    _tls: tuple[str | None, str | None, str | None, bool] | None = attrs.field(
        init=False, default=None
    )
    _max_calls: int | None = attrs.field(init=False, default=DEFAULT_MAX_CONCURRENT_CALLS)
    _overload_lag: float | None = attrs.field(init=False, default=None)
    _retry_after: int = attrs.field(init=False, default=1)
    _media_timeout: float | None = attrs.field(init=False, default=DEFAULT_MEDIA_TIMEOUT)
    _stop_timeout: float = attrs.field(init=False, default=DEFAULT_STOP_TIMEOUT)
    _clock: Clock | None = attrs.field(init=False, default=None)
    _rtp_latch: LatchMode = attrs.field(init=False, default="strict")
    _srtp: SrtpMode = attrs.field(init=False, default="off")
    _overload: OverloadConfig = attrs.field(init=False, factory=OverloadConfig)
    _stream_limits: StreamLimits = attrs.field(init=False, factory=StreamLimits)
    _credentials: tuple[Credentials, ...] = attrs.field(init=False, default=())
    _outbound_proxy: str | None = attrs.field(init=False, default=None)
    _registrations: tuple[Account, ...] = attrs.field(init=False, default=())
    _registration_settings: RegistrationSettings | None = attrs.field(init=False, default=None)
    _dns: DnsSettings = attrs.field(init=False, factory=DnsSettings)
    _follow_redirects: bool = attrs.field(init=False, default=True)
    _max_redirects: int = attrs.field(init=False, default=5)
    _authenticator: Authenticator | None = attrs.field(init=False, default=None)
    _registrar: Registrar | None = attrs.field(init=False, default=None)
    _event_providers: tuple[tuple[str, EventProvider], ...] = attrs.field(init=False, default=())
    _subscription_limits: tuple[int, int, int] = attrs.field(init=False, default=(1000, 60, 86400))
    _session_timer: SessionTimerSettings | None = attrs.field(
        init=False, factory=lambda: SessionTimerSettings()
    )
    _drain: DrainSettings = attrs.field(init=False, factory=DrainSettings)

    def with_sip_port(self, port: int) -> SessionManagerBuilder:
        """SIP port to bind (0 picks a free one)."""
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"SIP port out of range: {port}")
        self._sip_port = port
        return self

    def with_local_address(self, uri: str) -> SessionManagerBuilder:
        """Our SIP identity, e.g. ``sip:alice@127.0.0.1:5060``; an IP host is also bound.

        A host name is not advertised (Via/Contact/SDP carry the bound address): use
        ``with_public_address`` to advertise another address.
        """
        split_uri_hostport(uri)
        self._local_address = uri
        return self

    def with_local_bind_addr(self, addr: str) -> SessionManagerBuilder:
        """Address to bind when the local address is no IP literal: ``host[:port]``."""
        host, port = split_hostport(addr)
        if not is_ip_literal(host):
            raise ConfigurationError(f"bind address must be an IP literal: {addr!r}")
        self._bind_addr = addr
        if port is not None and self._sip_port is None:
            self._sip_port = port
        return self

    def with_public_address(self, host: str) -> SessionManagerBuilder:
        """Host to advertise in Via/Contact/SDP instead of the bound address (behind NAT)."""
        self._public_address = host
        return self

    def with_handler(self, handler: CallHandler) -> SessionManagerBuilder:
        """The application's ``CallHandler`` (default: ``AutoAnswerHandler``)."""
        if not isinstance(handler, CallHandler):
            raise ConfigurationError(f"{handler!r} is not a CallHandler")
        self._handler = handler
        return self

    def with_media_ports(self, start: int, end: int) -> SessionManagerBuilder:
        """Allocate RTP ports (even, with RTCP on the next odd one) from ``[start, end)``."""
        if not (1024 <= start < end <= 65536) or end - start < 2:
            raise ConfigurationError(f"bad media port range {start}-{end}")
        self._media_ports = (start, end)
        return self

    def with_transport(self, transport: str) -> SessionManagerBuilder:
        """The preferred SIP transport: ``udp`` (default), ``tcp`` or ``tls``.

        Requests whose target URI names no transport (no ``transport=``, not ``sips:``) go
        over it. Every transport of `with_transports` is served at once whatever this says
        (by default UDP and TCP on the SIP port, TLS beside them). ``tls`` needs no
        certificate of our own: a TLS client verifies the server (system CAs, or
        ``with_tls(cafile=...)``); only listening for TLS needs one.
        """
        name = transport.upper()
        if name not in SUPPORTED_TRANSPORTS:
            raise ConfigurationError(f"unsupported transport {transport!r}")
        self._transport = name
        return self

    def with_transports(self, *transports: str) -> SessionManagerBuilder:
        """The transports served at once, e.g. ``with_transports("udp", "tcp", "tls")``.

        RFC 3261 §18: a UA listens on UDP and TCP on its SIP port (a request over 1,300
        bytes moves from UDP to TCP, §18.1.1); TLS listens on the TLS port (see
        `with_tls_port`) when a certificate is set, else it is a client only. Default: all
        three. The preferred transport (`with_transport`) must be one of them.
        """
        names = tuple(dict.fromkeys(t.upper() for t in transports))
        unknown = [t for t in names if t not in SUPPORTED_TRANSPORTS]
        if unknown or not names:
            raise ConfigurationError(f"unsupported transport list {list(transports)!r}")
        self._transports = names
        return self

    def with_tls_port(self, port: int) -> SessionManagerBuilder:
        """The TLS listening port (default: 5061 beside 5060, else the SIP port + 1; 0: any)."""
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"bad TLS port {port}")
        self._tls_port = port
        return self

    def with_tls(
        self,
        certfile: str | None = None,
        keyfile: str | None = None,
        cafile: str | None = None,
        verify: bool = True,
    ) -> SessionManagerBuilder:
        """TLS files: our certificate (and key, unless in ``certfile``) and how to verify.

        A certificate makes us listen for TLS (and is presented to servers that ask for a
        client certificate: mutual TLS); without one we are a TLS client only.
        ``cafile`` verifies peers (None: the system CAs); ``verify=False`` accepts any peer
        certificate (test setups only). Contacts are ``sip:...;transport=tls`` for sip:
        requests over TLS and ``sips:`` for sips: ones (RFC 5630).
        """
        self._tls = (
            None if certfile is None else str(certfile),
            None if keyfile is None else str(keyfile),
            cafile,
            verify,
        )
        return self

    def with_codecs(self, codecs: Iterable[str]) -> SessionManagerBuilder:
        """Codecs to offer and accept, best first: ``["opus", "G722", "PCMU", "PCMA"]``.

        Names are case-insensitive. As offerer our order is the m-line's; as answerer
        the offerer's order decides (RFC 3264 §6.1) among the codecs listed here. A codec
        whose library is missing on this machine is left out of offers (logged).
        Default: PCMU, PCMA.

        Raises:
            ConfigurationError: an empty list or a name that is no supported codec.
        """
        return self.with_preferred_codecs(codecs)

    def with_preferred_codecs(self, codecs: Iterable[str]) -> SessionManagerBuilder:
        """Codecs to offer and accept, best first (see ``with_codecs``)."""
        names = tuple(c.upper() for c in codecs)
        unknown = [c for c in names if c not in SUPPORTED_CODECS]
        if unknown or not names:
            raise ConfigurationError(f"unsupported codec list {list(codecs)!r}")
        self._codecs = tuple(dict.fromkeys(names))
        return self

    def with_dtmf_payload_type(self, payload_type: int) -> SessionManagerBuilder:
        """Dynamic payload type offered for RFC 4733 telephone-event (default 101)."""
        if not 96 <= payload_type <= 127:
            raise ConfigurationError(
                f"telephone-event needs a dynamic payload type: {payload_type}"
            )
        self._dtmf_pt = payload_type
        return self

    def with_incoming_call_timeout(self, seconds: float) -> SessionManagerBuilder:
        """How long a deferred incoming call may ring before it is answered 480."""
        if seconds <= 0:
            raise ConfigurationError("the incoming call timeout must be positive")
        self._incoming_timeout = float(seconds)
        return self

    def with_quality_interval(self, seconds: float) -> SessionManagerBuilder:
        """Seconds between media quality reports (0 disables them)."""
        self._quality_interval = max(0.0, float(seconds))
        return self

    def with_sip_timers(self, t1: float, t2: float = 4.0) -> SessionManagerBuilder:
        """RFC 3261 T1 and T2 (for tests and fast networks)."""
        if not 0 < t1 <= t2:
            raise ConfigurationError("need 0 < T1 <= T2")
        self._t1, self._t2 = t1, t2
        return self

    def with_trying_after(self, seconds: float) -> SessionManagerBuilder:
        """Delay of the automatic 100 Trying to an incoming INVITE (0 to 0.2 s, default 0.2).

        RFC 3261 §17.2.1 lets a UAS skip the 100 when its TU answers or rings within
        200 ms: one datagram less per call. 0 sends the 100 the moment the INVITE arrives.
        """
        seconds = float(seconds)
        if not 0.0 <= seconds <= 0.2:
            raise ConfigurationError(f"trying_after must be between 0 and 0.2 seconds: {seconds}")
        self._trying_after = seconds
        return self

    def with_user_agent(self, value: str) -> SessionManagerBuilder:
        """Value of the User-Agent and Server headers."""
        self._user_agent = value
        return self

    def with_max_concurrent_calls(self, limit: int | None) -> SessionManagerBuilder:
        """Refuse new INVITEs with 503 + Retry-After while ``limit`` calls are up (None: no cap).

        RFC 3261 §21.5.4: better a quick 503 than accepting calls the server cannot finish.
        The default is 1,000 (``DEFAULT_MAX_CONCURRENT_CALLS``).
        """
        if limit is not None and limit < 1:
            raise ConfigurationError(f"max concurrent calls must be at least 1: {limit}")
        self._max_calls = limit
        return self

    def with_overload_lag(
        self, seconds: float | None, retry_after: int = 1
    ) -> SessionManagerBuilder:
        """Refuse new INVITEs (503, ``Retry-After: retry_after``) while the event loop lags.

        A timer measures its own lateness every 50 ms; above ``seconds`` (e.g. 0.1) new
        calls are refused until it falls to half of that. None turns the watch off.
        """
        if seconds is not None and seconds <= 0:
            raise ConfigurationError(f"the overload lag must be positive: {seconds}")
        if retry_after < 0:
            raise ConfigurationError(f"Retry-After must not be negative: {retry_after}")
        self._overload_lag = None if seconds is None else float(seconds)
        self._retry_after = retry_after
        return self

    def with_media_timeout(self, seconds: float | None) -> SessionManagerBuilder:
        """End an answered call after ``seconds`` without any RTP or RTCP (None: never).

        The BYE carries ``Reason: SIP;cause=408;text="RTP timeout"`` (RFC 3326) and the
        call's end reason says "media timeout". RTCP alone keeps a call up, so a held call
        (where only RTCP flows) is not ended. Default 60 s.
        """
        if seconds is not None and seconds <= 0:
            raise ConfigurationError(f"the media timeout must be positive: {seconds}")
        self._media_timeout = None if seconds is None else float(seconds)
        return self

    def with_rtp_latching(self, mode: LatchMode) -> SessionManagerBuilder:
        """Where RTP may come from: "strict" (default), "learn" or "off".

        strict: the source is learnt during a short probation (the address the SDP named
        latches at once, another only after a run of in-sequence packets), then locked;
        packets from elsewhere are dropped and counted (Asterisk's strictrtp, pjmedia's
        NAT probation). learn: the same, re-learnt after a silence. off: any source.
        """
        if mode not in RTP_LATCH_MODES:
            raise ConfigurationError(f"RTP latching must be one of {RTP_LATCH_MODES}: {mode!r}")
        self._rtp_latch = mode
        return self

    def with_srtp(self, mode: SrtpMode) -> SessionManagerBuilder:
        """Encrypt call media with SRTP, keyed by SDES ``a=crypto`` lines (RFC 4568).

        off (default): plain RTP; an ``RTP/SAVP`` offer is refused with 488.
        optional: offers ``RTP/AVP`` with ``a=crypto`` (AES_CM_128_HMAC_SHA1_80 and _32,
        fresh keys per call) and uses SRTP when the peer answers with a key, plain RTP
        otherwise; answers a crypto offer with SRTP (baresip's ``mediaenc=srtp``).
        required: offers ``RTP/SAVP``; an offer without a usable ``a=crypto`` gets 488,
        and a call whose answer has none fails (``CallFailed`` naming SRTP)
        (baresip's ``srtp-mand``).

        The keys travel in the SDP: use TLS signalling (``with_transport("tls")``),
        else anyone who sees the SIP messages can decrypt the media (a warning is
        logged once when SRTP is negotiated over UDP or TCP).
        """
        if mode not in SRTP_MODES:
            raise ConfigurationError(f"SRTP mode must be one of {SRTP_MODES}: {mode!r}")
        self._srtp = mode
        return self

    def with_overload_control(self, config: OverloadConfig | None) -> SessionManagerBuilder:
        """Transaction-layer overload control (on by default; None turns it off).

        While the UDP receive queue backs up, a share of new out-of-dialog requests get a
        stateless 503 + Retry-After before they are parsed; ACK, BYE, CANCEL and in-dialog
        requests always go through (RFC 3261 §21.5.4). See ``OverloadConfig``.
        """
        self._overload = config if config is not None else OverloadConfig(enabled=False)
        return self

    def with_stream_limits(self, limits: StreamLimits) -> SessionManagerBuilder:
        """Limits on TCP/TLS peers: message read deadline, idle time, connection caps."""
        self._stream_limits = limits
        return self

    def with_stop_timeout(self, seconds: float) -> SessionManagerBuilder:
        """How long ``stop()`` waits for the calls it hangs up to end (default 2 s)."""
        if seconds < 0:
            raise ConfigurationError(f"the stop timeout must not be negative: {seconds}")
        self._stop_timeout = float(seconds)
        return self

    def with_drain(
        self, timeout: float = DEFAULT_DRAIN_TIMEOUT, retry_after: int = DEFAULT_DRAIN_RETRY_AFTER
    ) -> SessionManagerBuilder:
        """How ``coordinator.drain()`` behaves (see ``DrainSettings``).

        Args:
            timeout: seconds the calls up may run on after the drain began (default 30).
            retry_after: Retry-After of the 503 new INVITEs get while draining (default 30).
        """
        self._drain = DrainSettings(float(timeout), int(retry_after))
        return self

    def with_clock(self, clock: Clock) -> SessionManagerBuilder:
        """The clock the coordinator's timers read (``now()`` monotonic, ``wall()`` epoch).

        Default: the running event loop's clock. Its ``now`` must advance like the loop's
        (the timer task sleeps for the difference).
        """
        self._clock = clock
        return self

    def with_rng_seed(self, seed: int) -> SessionManagerBuilder:
        """Seed the coordinator's RNG (reproducible tags and branches in tests)."""
        self._rng_seed = seed
        return self

    def with_credentials(
        self, username: str, password: str, realm: str | None = None
    ) -> SessionManagerBuilder:
        """Digest credentials for challenges of ``realm`` (None: any realm); several allowed.

        A 401/407 to any request the coordinator sends (INVITE, BYE, REGISTER …) is
        retried once with them (RFC 3261 §22); a second challenge for the same realm fails
        the request (a call ends with ``CallFailed(status=401/407)`` naming the realm).
        A later call for the same realm replaces the earlier one. The password never
        appears in a repr or log line.
        """
        if not username:
            raise ConfigurationError("with_credentials needs a user name")
        kept = tuple(c for c in self._credentials if c.realm != realm)
        self._credentials = (*kept, Credentials(username, password, realm))
        return self

    def with_outbound_proxy(self, uri: str) -> SessionManagerBuilder:
        """Send requests outside a dialog (INVITE, REGISTER, OPTIONS …) through ``uri``.

        RFC 3261 §8.1.2: the proxy goes in a pre-loaded Route header as a loose route
        (``;lr`` is added when missing); the request goes to the proxy's address and keeps
        its Request-URI. In a dialog the route set from Record-Route applies.
        """
        text = uri.strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1]
        split_uri_hostport(text)  # raises ConfigurationError for a non-SIP URI
        if ";lr" not in text.lower():
            head, sep, rest = text.partition("?")
            text = f"{head};lr{sep}{rest}"
        self._outbound_proxy = text
        return self

    def with_registration(
        self,
        registrar_uri: str,
        *,
        username: str,
        password: str,
        expires: int = 3600,
        aor: str | None = None,
        realm: str | None = None,
        settings: RegistrationSettings | None = None,
    ) -> SessionManagerBuilder:
        """Register with ``registrar_uri`` while the coordinator runs (several allowed).

        RFC 3261 §10: REGISTER for the AOR (default ``sip:username@registrar-host``) with
        our Contact, answering the registrar's 401/407 with these credentials; refreshed
        at ``settings.refresh_fraction`` of the granted expires, asked again with the
        registrar's Min-Expires after a 423, retried with a doubling back-off after a
        failure, removed (Expires 0) on ``stop()``. The state is reported as
        ``RegistrationStateChanged`` events and by ``coordinator.registration_status()``.
        """
        account = Account(registrar_uri, username, password, aor or "", expires, realm)
        kept = tuple(a for a in self._registrations if a.aor != account.aor)
        self._registrations = (*kept, account)
        self.with_credentials(username, password, realm)
        if settings is not None:
            self._registration_settings = settings
        return self

    def with_dns_server(self, *servers: str) -> SessionManagerBuilder:
        """Ask these DNS servers (``"127.0.0.1:5353"``, ``"[::1]:53"``) instead of the system's.

        Host names in call targets, the outbound proxy and registrars are located with
        them (RFC 3263: NAPTR, then SRV, then A/AAAA). Tests point this at a server on
        127.0.0.1 so the machine's resolver is never asked.

        Raises:
            ConfigurationError: not an IP address with an optional port.
        """
        try:
            parsed = tuple(parse_dns_server(server) for server in servers)
        except ValueError as exc:
            raise ConfigurationError(f"with_dns_server: {exc}") from None
        if not parsed:
            raise ConfigurationError("with_dns_server needs at least one address")
        self._dns = attrs.evolve(self._dns, nameservers=parsed)
        return self

    def with_dns(self, settings: DnsSettings) -> SessionManagerBuilder:
        """All the DNS settings at once (timeouts, cache bounds, failover list bound)."""
        self._dns = settings
        return self

    def with_redirects(
        self, follow: bool = True, *, max_redirects: int = 5
    ) -> SessionManagerBuilder:
        """Follow a 3xx to our INVITE (the default), or not (the call fails with the 3xx).

        RFC 3261 §8.1.3.4: the Contacts of a 300/301/302 are tried in q order, each URI
        once (a redirect loop ends), at most ``max_redirects`` of them per call.
        """
        if max_redirects < 0:
            raise ConfigurationError("max_redirects must be >= 0")
        self._follow_redirects = follow
        self._max_redirects = max_redirects
        return self

    def with_authenticator(
        self,
        realm: str | Authenticator,
        passwords: Mapping[str, str] | PasswordLookup | None = None,
        *,
        ha1: Ha1Lookup | None = None,
        methods: Iterable[str] | None = None,
        proxy: bool = False,
        settings: AuthSettings | None = None,
    ) -> SessionManagerBuilder:
        """Require digest authentication of incoming requests (RFC 3261 §22).

        A request of ``methods`` (default INVITE, REGISTER, SUBSCRIBE, MESSAGE, REFER;
        never ACK, CANCEL or the BYE of a dialog: §22.1) without valid credentials for
        ``realm`` is answered 401 with ``WWW-Authenticate`` challenges (407 and
        ``Proxy-Authenticate`` with ``proxy=True``); the retry's credentials are
        verified (replay-safe nonces from sip-core's ``DigestServer``); a wrong password
        or unknown user gets 403, credentials that do not parse 400. An authenticated
        INVITE reaches the handler with ``IncomingCall.authenticated_user`` set. Give
        ``methods=()`` to challenge only when a handler decides ``CallDecision.Challenge``.

        Args:
            realm: the realm, or a ready ``Authenticator`` (the other arguments unused).
            passwords: ``{user: password}`` or a lookup ``user -> password | None``.
            ha1: instead of passwords, a lookup ``(user, algorithm) -> HA1 | None``.
            methods: the methods to challenge (None: the default set).
            proxy: challenge as a proxy (407).
            settings: algorithms offered and nonce limits (``AuthSettings``).
        """
        if isinstance(realm, Authenticator):
            self._authenticator = realm
            return self
        try:
            self._authenticator = Authenticator(
                realm,
                passwords,
                ha1,
                normalize_methods(methods),
                proxy,
                settings or AuthSettings(),
                None if self._rng_seed is None else random.Random(self._rng_seed),
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        return self

    def with_registrar(
        self,
        registrar: Registrar | None = None,
        *,
        domain: str | None = None,
        settings: RegistrarSettings | None = None,
    ) -> SessionManagerBuilder:
        """Serve REGISTER (RFC 3261 §10.3) into ``registrar`` (None: a new one).

        Bindings of ``domain``'s AORs (None: any host) are kept with their expiry;
        REGISTER is authenticated when an authenticator is set (``with_authenticator``),
        and the authenticated user must be the AOR's user (403 otherwise). The 200 lists
        every current binding with its expires. Read them with
        ``coordinator.registrar.bindings(aor, now)`` (or ``coordinator.bindings(aor)``);
        ``BindingsChanged`` events say when they change. A handler routes a call to an
        AOR's contacts with ``CallDecision.Route()``.
        """
        if registrar is None:
            registrar = Registrar(settings or RegistrarSettings(), domain)
        elif domain is not None or settings is not None:
            raise ConfigurationError("give domain and settings to the Registrar itself")
        self._registrar = registrar
        return self

    def with_event_package(self, name: str, provider: EventProvider) -> SessionManagerBuilder:
        """Serve the event package ``name`` (RFC 6665) with ``provider``.

        A SUBSCRIBE for it gets ``provider.document(resource, 0)`` in its first NOTIFY (the
        resource is the Request-URI's user; a None document is answered 404);
        ``provider.changed(resource)`` sends the new document to every subscriber. Other
        packages are answered 489. Limits: ``with_subscription_limits`` (1,000 at once,
        expires between 60 s and 86,400 s by default).
        """
        key = name.strip().lower()
        if not key:
            raise ConfigurationError("with_event_package needs a package name")
        kept = tuple((n, p) for n, p in self._event_providers if n != key)
        self._event_providers = (*kept, (key, provider))
        return self

    def with_subscription_limits(
        self,
        *,
        max_subscriptions: int = 1000,
        min_expires: int = 60,
        max_expires: int = 86400,
    ) -> SessionManagerBuilder:
        """Bound the subscriptions (RFC 6665) a coordinator serves and makes.

        Args:
            max_subscriptions: served at once (beyond: 503 with Retry-After), and
                separately our own (beyond: ``subscribe`` raises ``InvalidState``).
            min_expires: shorter requests (not 0) are answered 423 with Min-Expires.
            max_expires: the longest duration granted.

        Raises:
            ConfigurationError: a limit below 1, or ``min_expires`` above ``max_expires``.
        """
        if max_subscriptions < 1 or min_expires < 1 or max_expires < min_expires:
            raise ConfigurationError(
                "subscription limits need max_subscriptions >= 1 and 1 <= min <= max expires"
            )
        self._subscription_limits = (max_subscriptions, min_expires, max_expires)
        return self

    def with_dialog_event_package(self) -> SessionManagerBuilder:
        """Serve our calls' state as the ``dialog`` package (RFC 4235): busy-lamp fields."""
        return self.with_event_package("dialog", DialogEventPackage())

    def with_session_timer(
        self, expires: int | None = 1800, min_se: int = 90, refresher: str | None = None
    ) -> SessionManagerBuilder:
        """RFC 4028 session timers: ``expires`` seconds, ``min_se`` at least, ``refresher``.

        On by default (1800 s, Min-SE 90, the callee picks the refresher). The refresher
        refreshes at half the interval (UPDATE when the peer's Allow lists it, else a
        re-INVITE with the same SDP; a 405/501 to the UPDATE falls back to re-INVITE, a
        422 is retried with its Min-SE); a call no refresh kept up ends with a BYE
        (``CallEnded`` reason "session timer expired"). Each successful refresh of ours
        is reported as a ``SessionRefreshed`` event. ``with_session_timer(None)`` turns
        session timers off.

        Args:
            expires: the session interval, seconds (None: off).
            min_se: the smallest interval accepted from a peer (>= 90).
            refresher: ``"uac"`` (the caller refreshes), ``"uas"`` (the callee), or None.

        Raises:
            ConfigurationError: min_se below 90, expires below min_se, or an unknown
                refresher.
        """
        self._session_timer = (
            None if expires is None else SessionTimerSettings(expires, min_se, refresher)
        )
        return self

    def config(self) -> SessionConfig:
        """Resolve the settings into a ``SessionConfig`` (no I/O).

        Raises:
            ConfigurationError: when the settings contradict each other.
        """
        user: str | None = None
        uri_host: str | None = None
        uri_port: int | None = None
        if self._local_address is not None:
            user, uri_host, uri_port = split_uri_hostport(self._local_address)
        bind_host = "127.0.0.1"
        bind_port: int | None = None
        if self._bind_addr is not None:
            bind_host, bind_port = split_hostport(self._bind_addr)
        public = self._public_address
        if uri_host is not None and is_ip_literal(uri_host):
            # ARCHITECTURE §4: an IP literal in the local address is what we bind. A host
            # name is not advertised: Via/Contact/SDP carry the bound address (a peer could
            # not reach us at a name that need not resolve to it) or with_public_address.
            bind_host = uri_host.strip("[]")
        port = self._sip_port
        if port is None:
            port = uri_port if uri_port is not None else bind_port
        if port is None:
            port = 5060
        if self._transports and self._transport not in self._transports:
            raise ConfigurationError(
                f"the preferred transport {self._transport} is not among with_transports"
            )
        certfile, keyfile, cafile, verify = self._tls or (None, None, None, True)
        return SessionConfig(
            bind_host=bind_host.strip("[]"),
            sip_port=port,
            user=user,
            public_host=public,
            transport=self._transport,
            transports=self._transports,
            tls_port=self._tls_port,
            media_ports=self._media_ports,
            preferred_codecs=self._codecs,
            dtmf_payload_type=self._dtmf_pt,
            incoming_call_timeout=self._incoming_timeout,
            quality_interval=self._quality_interval,
            t1=self._t1,
            t2=self._t2,
            trying_after=self._trying_after,
            user_agent=self._user_agent,
            rng_seed=self._rng_seed,
            tls_certfile=certfile,
            tls_keyfile=keyfile,
            tls_cafile=None if cafile is None else str(cafile),
            tls_verify=verify,
            max_concurrent_calls=self._max_calls,
            overload_lag=self._overload_lag,
            overload_retry_after=self._retry_after,
            media_timeout=self._media_timeout,
            stop_timeout=self._stop_timeout,
            clock=self._clock,
            rtp_latch=self._rtp_latch,
            srtp=self._srtp,
            overload=self._overload,
            stream_limits=self._stream_limits,
            credentials=self._credentials,
            outbound_proxy=self._outbound_proxy,
            registrations=self._registrations,
            registration_settings=self._registration_settings,
            dns=self._dns,
            follow_redirects=self._follow_redirects,
            max_redirects=self._max_redirects,
            authenticator=self._authenticator,
            registrar=self._registrar,
            event_providers=self._event_providers,
            max_subscriptions=self._subscription_limits[0],
            min_subscription_expires=self._subscription_limits[1],
            max_subscription_expires=self._subscription_limits[2],
            session_timer=self._session_timer,
            drain=self._drain,
        )

    @property
    def handler(self) -> CallHandler:
        """The configured handler (an ``AutoAnswerHandler`` when none was given)."""
        return self._handler if self._handler is not None else AutoAnswerHandler()

    async def build(self) -> SessionCoordinator:
        """Create the coordinator (not started: ``await coordinator.start()`` or ``async with``)."""
        return SessionCoordinator(self.config(), self.handler)
