"""Registration accounts and their timing settings (data only, see ``_registration``)."""

from __future__ import annotations

import attrs

from rvoip_dialog_core import Credentials
from rvoip_session_core._errors import ConfigurationError
from rvoip_sip_core import SipParseError, SipUri, parse_uri

__all__ = ["MAX_EXPIRES", "Account", "RegistrationSettings"]

MAX_EXPIRES = 86_400 * 7
"""The largest expires we ask for, even when a registrar's Min-Expires wants more."""


@attrs.frozen
class Account:
    """One registration: where, as whom, for how long.

    Attributes:
        registrar: Request-URI of the REGISTER (``sip:pbx.example.com``).
        username: Digest user name (and the user part of the default AOR).
        password: Digest password (never in a repr or log line).
        aor: The address of record (To/From); default ``sip:username@registrar-host``.
        expires: Seconds asked for (RFC 3261 §10.2.1.1); the registrar may grant less.
        realm: Realm of the credentials (None: any realm; give it when several accounts
            with different passwords share a coordinator).
    """

    registrar: str
    username: str
    password: str = attrs.field(repr=False)
    aor: str = ""
    expires: int = 3600
    realm: str | None = None

    def __attrs_post_init__(self) -> None:
        try:
            uri = parse_uri(self.registrar.strip().strip("<>"))
        except SipParseError as exc:
            raise ConfigurationError(f"not a SIP URI: {self.registrar!r} ({exc})") from None
        if not isinstance(uri, SipUri):
            raise ConfigurationError(f"not a SIP URI: {self.registrar!r}")
        if not self.username:
            raise ConfigurationError("a registration needs a user name")
        if not self.aor:
            object.__setattr__(self, "aor", f"{uri.scheme}:{self.username}@{uri.host}")
        if self.expires <= 0:
            raise ConfigurationError(f"registration expires must be positive: {self.expires}")

    @property
    def credentials(self) -> Credentials:
        """The account's digest credentials for the dialog layer."""
        return Credentials(self.username, self.password, self.realm)


@attrs.frozen
class RegistrationSettings:
    """Timing of registrations (documented limits, safe defaults).

    Attributes:
        refresh_fraction: refresh when this share of the granted expires has passed
            (default 0.75; RFC 3261 §10.2.4 leaves the when to the UA; before expiry).
        retry_min: seconds before the first retry after a failure (default 5).
        retry_max: cap of the doubling back-off between retries (default 300).
        response_timeout: seconds to wait for a final response (default: 64*T1 + 2 s,
            beyond the transaction layer's own Timer F, which answers 408 first).
        contact_rewrite: learn our public address from the ``received``/``rport`` our
            registrar puts in the top Via of a 2xx (RFC 3581 §4) and, when it differs from
            our Contact, advertise it in the Contact of every later message on that
            transport (REGISTER, calls placed and answered) and re-register at once with
            it, removing the old binding (what pjsua's ``contact_rewrite`` does). Default
            True. The SDP ``c=`` address is never rewritten from it: a NAT binding for SIP
            is not one for RTP (use ``with_public_address`` for a static public address).
        max_rewrites: re-REGISTERs in a row a changing learnt address may cause before
            the account waits for its normal refresh (a NAT that maps every request to a
            new port must not make us re-register in a loop). Default 3.
        keepalive_udp: seconds between CRLFCRLF keep-alives sent to the registrar over UDP
            while registered, to keep a NAT binding open (RFC 5626 §3.5.1 practice: NATs
            drop idle UDP mappings after 30 s or more). Default 25; None turns them off.
        keepalive_stream: seconds between CRLFCRLF pings on a TCP/TLS flow to the
            registrar (RFC 5626 §3.5.1; the peer answers with a CRLF pong). Default 120;
            None turns them off.
    """

    refresh_fraction: float = 0.75
    retry_min: float = 5.0
    retry_max: float = 300.0
    response_timeout: float | None = None
    contact_rewrite: bool = True
    max_rewrites: int = 3
    keepalive_udp: float | None = 25.0
    keepalive_stream: float | None = 120.0

    def keepalive_interval(self, transport: str) -> float | None:
        """The keep-alive interval for a flow over ``transport`` (None: none)."""
        interval = self.keepalive_udp if transport.upper() == "UDP" else self.keepalive_stream
        return interval if interval is not None and interval > 0 else None
