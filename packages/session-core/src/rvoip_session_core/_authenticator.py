"""Challenging incoming requests with digest authentication (RFC 3261 §22.1, §22.4), sans-IO.

``Authenticator.check(request, now)`` reads a request's ``Authorization`` (or
``Proxy-Authorization``) and says what to do: go on (with the authenticated user name, or
none when the method needs no authentication), or answer 401/407 with a fresh challenge,
403 for credentials that are wrong, or 400 for credentials that do not parse. The nonces,
their lifetime and the replay checks are sip-core's ``DigestServer`` (one per realm).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping

import attrs

from rvoip_sip_core import (
    AuthCredentials,
    DigestServer,
    Request,
    SipParseError,
)

__all__ = [
    "DEFAULT_AUTH_METHODS",
    "AuthResult",
    "AuthSettings",
    "Authenticator",
]

log = logging.getLogger("rvoip_session_core")

DEFAULT_AUTH_METHODS: frozenset[str] = frozenset(
    {"INVITE", "REGISTER", "SUBSCRIBE", "MESSAGE", "REFER"}
)
"""Methods challenged by default. Never ACK, CANCEL or BYE: RFC 3261 §22.1 — ACK and
CANCEL cannot be resubmitted with credentials, and a BYE belongs to a dialog whose INVITE
was already authenticated (the dialog layer answers it)."""

PasswordLookup = Callable[[str], str | None]
"""``username -> password`` (None: no such user)."""

Ha1Lookup = Callable[[str, str], str | None]
"""``(username, algorithm) -> HA1`` hex (None: no such user); HA1 is
``H(username:realm:password)`` with the algorithm's hash (RFC 7616 §3.4.2)."""


@attrs.frozen
class AuthSettings:
    """Limits of the digest server behind an :class:`Authenticator`.

    Attributes:
        algorithms: digest algorithms offered, preferred first (one challenge each,
            RFC 8760 §2.3). Default SHA-256 then MD5 (MD5 for older phones).
        nonce_lifetime: seconds a nonce is accepted; an older one gets a new challenge
            with ``stale=true`` (RFC 7616 §3.3). Default 300.
        max_nonces: nonces whose count is remembered per realm (replay protection,
            bounded memory; see ``DigestServer.max_nonces``). Default 10,000.
        max_failures: wrong passwords one (source address, user) may try within
            ``failure_window`` before its attempts are refused (403) unverified until the
            window has passed: online password guessing slows to this rate. 0 turns the
            limit off. Default 10.
        failure_window: seconds failures are counted over (and the lock-out lasts).
            Default 60.
        max_tracked: (source, user) pairs tracked at once (the table is emptied when
            full). Default 10,000.
    """

    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    nonce_lifetime: float = 300.0
    max_nonces: int = 10_000
    max_failures: int = 10
    failure_window: float = 60.0
    max_tracked: int = 10_000


@attrs.frozen
class AuthResult:
    """What :meth:`Authenticator.check` decided.

    Attributes:
        status: 0 to go on with the request; else the status to answer (401/407, 403, 400).
        reason: the reason phrase of that answer.
        headers: its headers (the WWW-/Proxy-Authenticate challenges).
        user: the authenticated user name, when the request carried valid credentials.
    """

    status: int = 0
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    user: str | None = None

    @property
    def proceed(self) -> bool:
        """True when the request may go on (authenticated, or not needing it)."""
        return self.status == 0


def _upper_set(methods: Iterable[str]) -> frozenset[str]:
    return frozenset(m.upper() for m in methods)


def _password_lookup(passwords: Mapping[str, str] | PasswordLookup) -> PasswordLookup:
    if isinstance(passwords, Mapping):
        table = dict(passwords)
        return table.get
    return passwords


@attrs.define(eq=False)
class Authenticator:
    """Challenges requests for ``realm`` and verifies the credentials of the retries.

    Args:
        realm: the protection realm named in challenges.
        passwords: ``{username: password}`` or a lookup ``username -> password | None``.
        ha1: instead of passwords, a lookup ``(username, algorithm) -> HA1 | None``.
        methods: methods that must carry valid credentials (default
            :data:`DEFAULT_AUTH_METHODS`); others go on unchallenged, but credentials
            they carry are still checked so the user name is known.
        proxy: challenge with 407/Proxy-Authenticate (and read Proxy-Authorization)
            instead of 401/WWW-Authenticate (RFC 3261 §22.3).
        settings: algorithms and nonce limits.
        rng: None draws nonces from :mod:`secrets`; a test may inject a seeded RNG.

    Raises:
        ValueError: neither or both of ``passwords`` and ``ha1`` are given.
    """

    realm: str
    passwords: Mapping[str, str] | PasswordLookup | None = attrs.field(default=None, repr=False)
    ha1: Ha1Lookup | None = attrs.field(default=None, repr=False)
    methods: frozenset[str] = attrs.field(default=DEFAULT_AUTH_METHODS, converter=_upper_set)
    proxy: bool = False
    settings: AuthSettings = attrs.field(factory=AuthSettings)
    rng: random.Random | None = attrs.field(default=None, repr=False)
    _lookup: PasswordLookup | None = attrs.field(init=False, default=None, repr=False)
    _servers: dict[str, DigestServer] = attrs.field(init=False, factory=dict, repr=False)
    # (source address, user) -> (failures in the window, when the window started)
    _failures: dict[tuple[str, str], tuple[int, float]] = attrs.field(
        init=False, factory=dict, repr=False
    )

    def __attrs_post_init__(self) -> None:
        if (self.passwords is None) == (self.ha1 is None):
            raise ValueError("an Authenticator needs either passwords or an ha1 lookup")
        if self.passwords is not None:
            self._lookup = _password_lookup(self.passwords)
        for method in ("ACK", "CANCEL"):
            if method in self.methods:
                # RFC 3261 §22.1: ACK and CANCEL cannot be challenged.
                raise ValueError(f"{method} cannot be challenged (RFC 3261 §22.1)")
        self._server(self.realm)

    @property
    def header_names(self) -> tuple[str, str]:
        """(challenge header, credentials header) for this authenticator's kind."""
        if self.proxy:
            return "Proxy-Authenticate", "Proxy-Authorization"
        return "WWW-Authenticate", "Authorization"

    def _server(self, realm: str) -> DigestServer:
        server = self._servers.get(realm)
        if server is None:
            settings = self.settings
            server = DigestServer(
                realm,
                rng=self.rng,
                algorithms=settings.algorithms,
                nonce_lifetime=settings.nonce_lifetime,
                max_nonces=settings.max_nonces,
            )
            self._servers[realm] = server
        return server

    def requires(self, method: str) -> bool:
        """Whether ``method`` must carry valid credentials."""
        return method in self.methods

    def challenge(
        self,
        now: float,
        *,
        realm: str | None = None,
        stale: bool = False,
        proxy: bool | None = None,
    ) -> AuthResult:
        """A 401 (407 with ``proxy``) with fresh challenges for ``realm`` (default: ours).

        RFC 3261 §22.1 / RFC 8760 §2.3: one WWW-Authenticate per algorithm, preferred
        first, all with the same nonce.
        """
        as_proxy = self.proxy if proxy is None else proxy
        server = self._server(realm or self.realm)
        challenges = server.challenge(now, stale=stale, proxy=as_proxy)
        name = "Proxy-Authenticate" if as_proxy else "WWW-Authenticate"
        status, reason = (
            (407, "Proxy Authentication Required") if as_proxy else (401, "Unauthorized")
        )
        return AuthResult(status, reason, tuple((name, str(c)) for c in challenges))

    def check(self, request: Request, now: float, *, required: bool | None = None) -> AuthResult:
        """Verify ``request``'s credentials, received at ``now``.

        Args:
            request: the request.
            now: the clock the nonces are stamped with (seconds).
            required: whether credentials are needed (default: the method is in
                ``methods``).

        Returns:
            ``proceed`` with ``user`` set when the credentials are right, ``proceed``
            without user when none were needed and none came; else the answer: 401/407
            (no credentials for our realms, a nonce not ours, or ``stale``), 403 (wrong
            password, unknown user, replayed nonce count) or 400 (malformed credentials,
            or a digest ``uri`` that is not the Request-URI).
        """
        if required is None:
            required = request.method in self.methods
        _, cred_name = self.header_names
        values = request.headers.get_all(cred_name)
        if not values:
            return self.challenge(now) if required else AuthResult()
        creds: AuthCredentials | None = None
        for value in values:
            try:
                parsed = AuthCredentials.parse(value)
            except SipParseError:
                return AuthResult(400, f"Bad Request: malformed {cred_name}")
            if parsed.is_digest and (parsed.realm or "") in self._servers:
                creds = parsed
                break
        if creds is None:
            # Credentials for another realm (e.g. an upstream proxy's): ours are missing.
            return self.challenge(now) if required else AuthResult()
        username, nonce = creds.username, creds.nonce
        if not username or not nonce or creds.uri is None or creds.response is None:
            # RFC 7616 §3.4: username, realm, nonce, uri and response are required.
            return AuthResult(400, f"Bad Request: incomplete {cred_name}")
        realm = creds.realm or ""
        server = self._servers[realm]
        source = _source_of(request)
        if self._locked_out(source, username, now):
            log.info("digest: %r from %s locked out after failures", username[:64], source)
            return AuthResult(403, "Forbidden")
        secret = self._secret(username, creds.algorithm)
        if secret is None:
            log.info("digest: unknown user %r in realm %r", username[:64], realm)
            return AuthResult(403, "Forbidden")
        password, ha1 = secret
        verdict = server.verify(
            creds,
            method=request.method,
            now=now,
            password=password,
            ha1=ha1,
            body=request.body,
            request_uri=request.uri_text,
        )
        if verdict.ok:
            return AuthResult(user=username)
        if verdict.stale:
            # RFC 7616 §3.3: right password, old nonce: challenge again with stale=true.
            return self.challenge(now, realm=realm, stale=True)
        if verdict.reason == "digest uri does not match the Request-URI":
            # RFC 2617 §3.2.2.5: the uri must name the Request-URI's resource; "if they
            # are not [the same], the server SHOULD return a 400 Bad Request error".
            return AuthResult(400, "Bad Request: digest uri is not the Request-URI")
        if verdict.reason == "nonce not issued here":
            # A nonce of an earlier run (or forged): not a wrong password, a new challenge.
            return self.challenge(now, realm=realm)
        log.info("digest: %s for user %r in realm %r", verdict.reason, username[:64], realm)
        self._failed(source, username, now)
        return AuthResult(403, "Forbidden")

    def _locked_out(self, source: str, username: str, now: float) -> bool:
        """Whether (source, user) used up its failures in the current window."""
        limit = self.settings.max_failures
        entry = self._failures.get((source, username)) if limit > 0 else None
        if entry is None:
            return False
        count, since = entry
        if now - since >= self.settings.failure_window:
            del self._failures[(source, username)]
            return False
        return count >= limit

    def _failed(self, source: str, username: str, now: float) -> None:
        """Count a wrong password of (source, user) in its window."""
        settings = self.settings
        if settings.max_failures <= 0:
            return
        key = (source, username)
        count, since = self._failures.get(key, (0, now))
        if now - since >= settings.failure_window:
            count, since = 0, now
        if key not in self._failures and len(self._failures) >= settings.max_tracked:
            self._failures.clear()  # bounded memory: a flood of sources only resets counts
        self._failures[key] = (count + 1, since)

    def _secret(self, username: str, algorithm: str) -> tuple[str | None, str | None] | None:
        """(password, ha1) for ``username``; None when the user is unknown."""
        if self._lookup is not None:
            password = self._lookup(username)
            return None if password is None else (password, None)
        assert self.ha1 is not None
        ha1 = self.ha1(username, algorithm)
        return None if ha1 is None else (None, ha1)


def _source_of(request: Request) -> str:
    """The address a request came from: its top Via's ``received``, else its sent-by host.

    The transaction layer adds ``received`` when the sent-by host is not the source
    (RFC 3261 §18.2.1), so this is the packet's source either way.
    """
    try:
        via = request.top_via
    except SipParseError:
        return ""
    return via.received or via.host


def normalize_methods(methods: Iterable[str] | None) -> frozenset[str]:
    """The methods to challenge: ``methods`` upper-cased, or the default set for None."""
    if methods is None:
        return DEFAULT_AUTH_METHODS
    return frozenset(m.upper() for m in methods)
