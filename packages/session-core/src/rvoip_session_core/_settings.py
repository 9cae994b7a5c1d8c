"""``SessionConfig``: the resolved settings of a coordinator, and the address helpers."""

from __future__ import annotations

import ipaddress
import ssl
from typing import TYPE_CHECKING, Any

import attrs

from rvoip_dialog_core import Credentials, DnsSettings
from rvoip_rtp_core import LatchMode
from rvoip_session_core._drain import DrainSettings
from rvoip_session_core._errors import ConfigurationError
from rvoip_session_core._offer_answer import SrtpMode
from rvoip_transaction_core import OverloadConfig, StreamLimits

if TYPE_CHECKING:
    from rvoip_session_core._accounts import Account, RegistrationSettings
    from rvoip_session_core._authenticator import Authenticator
    from rvoip_session_core._registrar import Registrar
    from rvoip_transaction_core import Clock

DEFAULT_MAX_CONCURRENT_CALLS = 1000
"""Calls at once beyond which new INVITEs get 503 + Retry-After, unless set otherwise."""

DEFAULT_MEDIA_TIMEOUT = 60.0
"""Seconds without any RTP or RTCP after which an answered call is ended (BYE + Reason)."""

DEFAULT_STOP_TIMEOUT = 2.0
"""Seconds ``stop()`` waits for the BYEs of the calls it ends to be answered."""

SUPPORTED_CODECS = ("PCMU", "PCMA", "G722", "OPUS")
"""Audio codecs the media plane can encode and decode: G.711 µ-law and A-law, G.722 and
Opus (the last two when their libraries are installed; media-core's ``available_codecs``)."""

DEFAULT_CODECS = ("PCMU", "PCMA")
"""The codecs offered and accepted when the application names none (G.711 only: the
batched C kernel path, and what every peer speaks); ``with_codecs`` adds HD voice."""

SUPPORTED_TRANSPORTS = ("UDP", "TCP", "TLS")

RTP_LATCH_MODES: tuple[LatchMode, ...] = ("strict", "learn", "off")
"""rtp-core's source-latching modes (strict by default: no RTP hijack, issue 10)."""


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 literal (IPv6 with or without brackets)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def split_uri_hostport(uri: str) -> tuple[str | None, str | None, int | None]:
    """(user, host, port) of a ``sip:user@host:port;params`` text, without a full parse.

    Raises:
        ConfigurationError: when the text is not a sip/sips URI.
    """
    text = uri.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips") or not rest:
        raise ConfigurationError(f"not a SIP URI: {uri!r}")
    rest = rest.split(";", 1)[0].split("?", 1)[0]
    user: str | None = None
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        user = user.split(":", 1)[0] or None
    port: int | None = None
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ConfigurationError(f"bad IPv6 host in {uri!r}")
        host, tail = rest[1:end], rest[end + 1 :]
        if tail.startswith(":"):
            port = _port(tail[1:], uri)
    else:
        host, _, port_text = rest.partition(":")
        if port_text:
            port = _port(port_text, uri)
    if not host:
        raise ConfigurationError(f"no host in {uri!r}")
    return user, host, port


def _port(text: str, uri: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigurationError(f"bad port in {uri!r}")
    return int(text)


@attrs.frozen
class SessionConfig:
    """Everything a coordinator needs to know, resolved from the builder.

    Attributes:
        bind_host: the IP literal the SIP and RTP sockets bind (no brackets).
        sip_port: SIP port (0: ephemeral; the bound port is then advertised).
        user: the user part of our Contact (from ``with_local_address``).
        public_host: host advertised in Via/Contact/SDP instead of the bound one, if set.
        transport: the preferred transport, "UDP", "TCP" or "TLS": the one a request goes
            over when its target URI names none (no ``transport=``, not ``sips:``), and the
            one ``local_sip_address``/``local_uri`` describe.
        transports: the transports served at once (RFC 3261 §18: a UA does UDP and TCP).
            Empty (the default): UDP and TCP on ``sip_port`` plus TLS on ``tls_port``.
            TLS listens only with a certificate (``tls_certfile``); without one it is a
            TLS *client* (calls to ``sips:``/``transport=tls`` targets work, verified with
            the system CAs or ``tls_cafile``).
        tls_port: the TLS listening port. None: 5061 when ``sip_port`` is 5060, an
            ephemeral one when ``sip_port`` is 0, else ``sip_port + 1`` (the baresip
            convention).
        tls_certfile, tls_keyfile: PEM certificate chain and key we present over TLS (as
            server, and as client to a server asking for one: mutual TLS). Optional.
        tls_cafile: PEM bundle to verify peers with (None: the system CAs).
        tls_verify: verify the peer's certificate and host (False only for test setups).
        media_ports: (start, end) range of even RTP ports, or None for ephemeral ports.
        preferred_codecs: codec names in our order of preference.
        dtmf_payload_type: payload type offered for RFC 4733 telephone-event.
        incoming_call_timeout: seconds a deferred call may ring before it gets 480.
        ptime_ms: packet time of the audio we send.
        quality_interval: seconds between ``on_media_quality`` reports (0 disables).
        t1, t2: RFC 3261 timers.
        trying_after: seconds an incoming INVITE may wait for our first response before the
            transaction layer sends 100 Trying itself (RFC 3261 §17.2.1: not needed when the
            TU answers or rings within 200 ms; 0 sends it at once).
        user_agent: User-Agent/Server header value.
        rng_seed: seed of the coordinator's RNG (tags, branches, SSRCs) for reproducible
            tests; None (the default) draws every identifier from the OS CSPRNG
            (``random.SystemRandom``), as RFC 3261 §19.3 wants of tags and branches.
        max_concurrent_calls: calls at once beyond which new INVITEs get 503 + Retry-After
            (default 1,000; None: no cap).
        overload_lag: event-loop lateness (seconds) beyond which new INVITEs get 503 until
            it recovers (None: not watched).
        overload_retry_after: seconds announced in the Retry-After of those 503s (also of
            the 503 answered when no RTP port pair is left).
        media_timeout: seconds an answered call may go without receiving any RTP or RTCP
            before it is ended with a BYE carrying ``Reason: SIP;cause=408;text="RTP
            timeout"`` (RFC 3326); default 60, None disables. RTCP alone keeps a held call up.
        stop_timeout: seconds ``stop()`` waits for the BYEs/CANCELs of the calls it ends to
            be answered (retransmitted meanwhile) before closing the sockets; default 2.
        clock: the clock every timer of the coordinator reads (None: the event loop's).
        rtp_latch: where RTP may come from (rtp-core's source latching): "strict" (the
            default: learnt during a short probation preferring the signalled address, then
            locked), "learn" (re-learnt after a silence) or "off" (any source, the old way).
        srtp: SRTP for call media (SDES, RFC 4568): "off" (default; secure offers get
            488), "optional" (RTP/AVP offers with a=crypto, SRTP when the peer keys it) or
            "required" (RTP/SAVP offers; no SRTP, no call). See ``with_srtp``.
        overload: transaction-layer overload control (stateless 503 from raw bytes while the
            UDP receive queue backs up; on by default, ``OverloadConfig(enabled=False)``
            turns it off).
        stream_limits: limits on TCP/TLS peers (read deadline, idle time, connection caps).
        credentials: digest credentials by realm (None: any realm); a 401/407 to any
            request is retried once with them (RFC 3261 §22).
        outbound_proxy: Route (a loose route, ``;lr``) pre-loaded on requests outside a
            dialog, so they go through that proxy (RFC 3261 §8.1.2); None: none.
        registrations: accounts registered at start (and unregistered on stop).
        registration_settings: refresh and back-off timing (None: the defaults of
            ``RegistrationSettings``).
        dns: how host names in targets are located (RFC 3263 NAPTR → SRV → A/AAAA,
            failover across the targets found): nameservers (empty: the system's),
            query timeout, cache size and TTL bounds, the failover list's bound.
        follow_redirects: follow a 3xx to our INVITE to its Contacts in q order (RFC 3261
            §8.1.3.4; default True); False fails the call with the 3xx's status.
        max_redirects: the most new targets one call is sent to (default 5).
        authenticator: challenges incoming requests with digest auth (None: nobody is
            challenged; ``with_authenticator``).
        registrar: the binding store that answers REGISTER (None: REGISTER is not
            served; ``with_registrar``).
        event_providers: the event packages served (RFC 6665), ``(name, provider)`` with
            an ``EventProvider`` each (``with_event_package``); their names reach the dialog
            layer's ``event_packages`` (any other package is answered 489).
        max_subscriptions: subscriptions served at once (beyond: 503 with Retry-After),
            and separately our own (beyond: ``subscribe`` raises). Default 1,000.
        min_subscription_expires: a SUBSCRIBE asking for less (not 0) is answered 423
            with this Min-Expires (RFC 6665 §4.2.1.1). Default 60 s.
        max_subscription_expires: the longest duration granted. Default 86,400 s.
        session_timer: RFC 4028 session timers (``with_session_timer``): the interval we
            ask for and run, the smallest we accept, who refreshes; None turns them off
            (no ``timer`` in Supported, no Session-Expires, no refresh, no expiry).
        drain: how ``drain()`` behaves: its timeout and the Retry-After of the 503s new
            INVITEs get while draining (``with_drain``; defaults 30 s and 30 s).
    """

    bind_host: str = "127.0.0.1"
    sip_port: int = 5060
    user: str | None = None
    public_host: str | None = None
    transport: str = "UDP"
    transports: tuple[str, ...] = ()
    tls_port: int | None = None
    media_ports: tuple[int, int] | None = None
    preferred_codecs: tuple[str, ...] = DEFAULT_CODECS
    dtmf_payload_type: int = 101
    incoming_call_timeout: float = 60.0
    ptime_ms: int = 20
    quality_interval: float = 5.0
    t1: float = 0.5
    t2: float = 4.0
    trying_after: float = 0.2
    user_agent: str = "rvoip-python/0.1"
    rng_seed: int | None = None
    event_buffer: int = 1000
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    tls_cafile: str | None = None
    tls_verify: bool = True
    max_concurrent_calls: int | None = DEFAULT_MAX_CONCURRENT_CALLS
    overload_lag: float | None = None
    overload_retry_after: int = 1
    media_timeout: float | None = DEFAULT_MEDIA_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    clock: Clock | None = attrs.field(default=None, eq=False, repr=False)
    rtp_latch: LatchMode = "strict"
    srtp: SrtpMode = "off"
    overload: OverloadConfig = attrs.field(factory=OverloadConfig)
    stream_limits: StreamLimits = attrs.field(factory=StreamLimits)
    credentials: tuple[Credentials, ...] = ()
    outbound_proxy: str | None = None
    registrations: tuple[Account, ...] = ()
    registration_settings: RegistrationSettings | None = None
    dns: DnsSettings = attrs.field(factory=DnsSettings)
    follow_redirects: bool = True
    max_redirects: int = 5
    authenticator: Authenticator | None = attrs.field(default=None, eq=False)
    registrar: Registrar | None = attrs.field(default=None, eq=False)
    event_providers: tuple[tuple[str, Any], ...] = attrs.field(default=(), eq=False)
    max_subscriptions: int = 1000
    min_subscription_expires: int = 60
    max_subscription_expires: int = 86400
    session_timer: SessionTimerSettings | None = attrs.field(factory=lambda: SessionTimerSettings())
    drain: DrainSettings = attrs.field(factory=DrainSettings)

    @property
    def advertised_host(self) -> str:
        """The host put in Via, Contact and SDP ``c=``: public host, else the bound one."""
        return self.public_host or self.bind_host

    def served_transports(self) -> tuple[str, ...]:
        """The transports served at once, the preferred one first (see ``transports``)."""
        chosen = self.transports or SUPPORTED_TRANSPORTS
        return (self.transport, *(t for t in chosen if t != self.transport))

    def tls_listen_port(self, sip_port: int) -> int:
        """The TLS port beside ``sip_port`` (see ``tls_port``)."""
        if self.tls_port is not None:
            return self.tls_port
        if sip_port == 5060:
            return 5061
        return 0 if sip_port == 0 else sip_port + 1

    def tls_contexts(self) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
        """(server, client) SSL contexts for TLS; (None, None) when TLS is not served.

        The server context exists only with a certificate (no certificate: TLS client
        only). The client context verifies servers with ``tls_cafile`` or the system CAs
        (None here when neither a CA file nor a client certificate nor ``tls_verify=False``
        asks for anything special: the transport then makes the default context itself,
        at the first connection) and presents our certificate when a server asks for one.

        Raises:
            ConfigurationError: a certificate, key or CA file cannot be loaded.
        """
        if "TLS" not in self.served_transports():
            return None, None
        server: ssl.SSLContext | None = None
        client: ssl.SSLContext | None = None
        try:
            if self.tls_certfile is not None:
                server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                server.load_cert_chain(self.tls_certfile, self.tls_keyfile)
            if self.tls_cafile is not None or self.tls_certfile is not None or not self.tls_verify:
                client = ssl.create_default_context(cafile=self.tls_cafile)
                if self.tls_certfile is not None:
                    client.load_cert_chain(self.tls_certfile, self.tls_keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load TLS files: {exc}") from None
        if client is not None and not self.tls_verify:
            client.check_hostname = False
            client.verify_mode = ssl.CERT_NONE
        return server, client


def split_hostport(addr: str) -> tuple[str, int | None]:
    text = addr.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigurationError(f"bad address {addr!r}")
        host, tail = text[1:end], text[end + 1 :]
        return host, (_port(tail[1:], addr) if tail.startswith(":") else None)
    if text.count(":") > 1:
        return text, None
    host, _, port = text.partition(":")
    return host, (_port(port, addr) if port else None)


SESSION_REFRESHERS = ("uac", "uas")
"""The RFC 4028 ``refresher`` values a session timer setting may name."""


@attrs.frozen
class SessionTimerSettings:
    """RFC 4028 session timers of a coordinator's calls (``with_session_timer``).

    The refresher re-sends the session (UPDATE when the peer allows it, else a re-INVITE
    with the same SDP) at half the interval; without a successful refresh the call ends
    with a BYE at ``expires - min(32, expires / 3)`` seconds, so a vanished peer cannot
    hold a call (and its RTP ports) for ever.

    Attributes:
        expires: the session interval we ask for in our INVITEs and run on our own as
            callee when the caller asks for none, seconds (default 1800, >= ``min_se``).
        min_se: the smallest interval we accept (RFC 4028 Min-SE; a smaller one gets 422),
            seconds (default 90, never below 90).
        refresher: ``"uac"`` (the caller refreshes), ``"uas"`` (the callee does) or None
            (the callee picks: the caller when it supports timers).
    """

    expires: int = 1800
    min_se: int = 90
    refresher: str | None = None

    def __attrs_post_init__(self) -> None:
        # RFC 4028 §4: "the Min-SE ... MUST NOT be less than 90 seconds".
        if self.min_se < 90:
            raise ConfigurationError("session timer min_se must be >= 90 s (RFC 4028 §4)")
        if self.expires < self.min_se:
            raise ConfigurationError("session timer expires must be >= min_se")
        if self.refresher is not None and self.refresher not in SESSION_REFRESHERS:
            raise ConfigurationError("session timer refresher must be 'uac', 'uas' or None")
