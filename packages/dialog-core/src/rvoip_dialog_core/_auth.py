"""Digest authentication of the requests we send: answering a 401/407 once, by realm.

RFC 3261 §22.2/§22.3: a UAC that gets 401 (WWW-Authenticate) or 407 (Proxy-Authenticate)
MAY re-originate the request with credentials (Authorization / Proxy-Authorization), with
the same Call-ID, To and From tag, a new CSeq and (a new client transaction) a new branch.
This module decides what the retried request carries; the collaborators that own the
request (:mod:`._uac` for initial INVITEs, :mod:`._client` for every other request) make
its new CSeq and Via and send it.

Credentials are looked up by the challenge's realm (a credential whose realm is None
answers any realm). Each one owns a sip-core :class:`~rvoip_sip_core.DigestClient`, which
counts the nonce uses (RFC 7616 §3.4: ``nc``) and makes cnonces from the OS CSPRNG.

A request chain answers a realm once: a second challenge for a realm already answered
means the password was rejected and fails the request (:class:`AuthRefused` naming realm
and status) instead of looping, unless the challenge says ``stale=true`` (RFC 7616
§3.3: the credentials were right, only the nonce expired), which is answered again up to
``DialogConfig.auth_retries`` times in all.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import attrs

from rvoip_sip_core import (
    SUPPORTED_ALGORITHMS,
    AuthCredentials,
    DigestClient,
    DigestError,
    ProxyAuthenticate,
    Request,
    Response,
    SipParseError,
    WWWAuthenticate,
)

__all__ = ["AuthAttempts", "AuthRefused", "Authenticator", "Credentials"]


@attrs.frozen
class Credentials:
    """A user name and password for digest authentication (RFC 3261 §22).

    Attributes:
        username: The user name (``username`` parameter of the credentials).
        password: The password; never shown in a repr, so never in a log line.
        realm: The realm these credentials answer; None answers any realm (used when
            no credential names the challenge's realm).
    """

    username: str
    password: str = attrs.field(repr=False)
    realm: str | None = None


@attrs.frozen
class AuthRefused:
    """Why a challenged request is not retried (the request fails with the challenge).

    Attributes:
        status: 401 or 407.
        realm: The realm of the challenge (empty when it named none).
        reason: A sentence for the application, e.g. ``credentials for realm 'pbx'
            rejected (401)``.
    """

    status: int
    realm: str
    reason: str


@attrs.define(eq=False)
class AuthAttempts:
    """What a request chain has answered so far (carried from one retry to the next)."""

    answered: set[str] = attrs.Factory(set)
    """Realms whose challenge was answered."""
    retries: int = 0
    """Retries sent with credentials."""


_HEADERS: dict[int, tuple[type[WWWAuthenticate] | type[ProxyAuthenticate], str]] = {
    401: (WWWAuthenticate, "Authorization"),
    407: (ProxyAuthenticate, "Proxy-Authorization"),
}


class Authenticator:
    """The layer's credentials and the retry rule for challenged requests.

    Args:
        credentials: By realm (None: any realm); several allowed.
        algorithms: The digest algorithms we answer, most preferred first (default
            SHA-512-256, SHA-256, MD5 and their -sess forms): of the challenges a realm
            offers, the one with the most preferred algorithm is answered (RFC 8760
            §2.4 lets the client pick); others are refused (downgrade protection).
        require_qop: Refuse challenges without qop (RFC 2069 responses carry no nonce
            count and can be replayed).
        retries: The most retries one request makes with credentials (``stale=true``
            challenges are answered again until this bound).
        rng: Source of cnonces (the OS CSPRNG unless a test injects a seeded one).
    """

    def __init__(
        self,
        credentials: Iterable[Credentials] = (),
        *,
        algorithms: Sequence[str] = SUPPORTED_ALGORITHMS,
        require_qop: bool = False,
        retries: int = 2,
        rng: random.Random | None = None,
    ) -> None:
        self._rng = rng if rng is not None else random.SystemRandom()
        self._algorithms = tuple(a.upper() for a in algorithms)
        self._require_qop = require_qop
        self._retries = retries
        self._clients: dict[str | None, DigestClient] = {}
        for cred in credentials:
            self._clients[cred.realm] = DigestClient(
                cred.username,
                cred.password,
                rng=self._rng,
                allowed_algorithms=self._algorithms,
                require_qop=require_qop,
            )

    def __bool__(self) -> bool:
        return bool(self._clients)

    def client_for(self, realm: str) -> DigestClient | None:
        """The digest client answering ``realm``: its own, else the any-realm one."""
        return self._clients.get(realm) or self._clients.get(None)

    def _rank(self, challenge: WWWAuthenticate | ProxyAuthenticate) -> int:
        return self._algorithms.index(challenge.algorithm.upper())

    def retry(
        self, request: Request, response: Response, attempts: AuthAttempts
    ) -> Request | AuthRefused:
        """``request`` with credentials answering ``response`` (401/407), or why not.

        The caller gives the retried request its new CSeq and Via (RFC 3261 §22.2)
        before or after; credentials do not cover either. Credentials for other realms
        (e.g. a proxy's, answered before) are kept.

        Args:
            request: The request that was challenged (or its retry with the new CSeq).
            response: The 401 or 407.
            attempts: The chain's record; updated when a retry is returned.
        """
        status = response.status
        kind, name = _HEADERS[status]
        chosen: dict[str, tuple[DigestClient, WWWAuthenticate | ProxyAuthenticate]] = {}
        first_realm: str | None = None
        for value in response.headers.get_all(kind.NAME):
            try:
                challenge = kind.parse(value)
            except SipParseError:
                continue
            realm = challenge.realm or ""
            first_realm = realm if first_realm is None else first_realm
            client = self.client_for(realm)
            if client is None or not client.can_answer(challenge):
                continue
            held = chosen.get(realm)
            if held is None or self._rank(challenge) < self._rank(held[1]):
                chosen[realm] = (client, challenge)
        if not chosen:
            realm = first_realm or ""
            why = "no credentials for" if self.client_for(realm) is None else "cannot answer"
            return AuthRefused(status, realm, f"{why} realm {realm!r} ({status})")
        for realm, (_, challenge) in chosen.items():
            if realm in attempts.answered and not challenge.stale:
                # RFC 3261 §22.2: a second challenge for credentials we sent means they
                # were rejected; retrying with the same ones would loop.
                return AuthRefused(
                    status, realm, f"credentials for realm {realm!r} rejected ({status})"
                )
        if attempts.retries >= self._retries:
            realm = next(iter(chosen))
            return AuthRefused(
                status, realm, f"realm {realm!r} challenged {attempts.retries + 1} times ({status})"
            )
        kept: list[str] = []
        for value in request.headers.get_all(name):
            try:
                if (AuthCredentials.parse(value).realm or "") in chosen:
                    continue
            except SipParseError:
                continue
            kept.append(value)
        new = request.without_header(name)
        for value in kept:
            new = new.append_header(name, value)
        for realm, (client, challenge) in chosen.items():
            try:
                creds = client.authorize(challenge, request.method, request.uri_text, request.body)
            except DigestError as exc:
                return AuthRefused(status, realm, f"cannot answer realm {realm!r}: {exc}")
            new = new.append_header(name, creds)
            attempts.answered.add(realm)
        attempts.retries += 1
        return new
