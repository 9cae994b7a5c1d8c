"""Digest authentication for SIP (RFC 7616 with RFC 8760's algorithms, RFC 2617/2069 compatible).

Client side: :func:`build_credentials` (pure) and :class:`DigestClient` (keeps the
nonce counts) turn a ``WWW-Authenticate``/``Proxy-Authenticate`` challenge into
``Authorization``/``Proxy-Authorization`` credentials. Server side:
:func:`verify_credentials` (pure, constant-time) and :class:`DigestServer`, which makes
self-validating nonces from an injected RNG and a ``now`` argument and rejects replayed
nonce counts. No clock or global randomness is read here (sans-IO).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import struct
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import TypeVar, overload

import attrs

from ._digest_hash import (
    SUPPORTED_ALGORITHMS,
    DigestError,
    compute_digest_response,
    compute_ha1,
    digest_hash,
    format_nc,
    hash_username,
    sha512_256_fallback,
    split_algorithm,
    wire_octets,
)
from ._errors import SipParseError
from ._headers.auth import (
    AuthChallenge,
    AuthCredentials,
    AuthenticationInfo,
    Authorization,
    ProxyAuthenticate,
    ProxyAuthorization,
    WWWAuthenticate,
)
from ._message import Request, Response

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "DigestClient",
    "DigestError",
    "DigestServer",
    "DigestVerdict",
    "build_credentials",
    "compute_digest_response",
    "compute_ha1",
    "digest_hash",
    "format_nc",
    "hash_username",
    "make_cnonce",
    "select_challenge",
    "sha512_256_fallback",
    "verify_credentials",
]

_QOPS = ("auth", "auth-int")


def make_cnonce(rng: random.Random, nbytes: int = 12) -> str:
    """A client nonce: ``nbytes`` random bytes from ``rng`` as hex."""
    return rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


def _supported(challenge: AuthChallenge) -> bool:
    if not challenge.is_digest or challenge.nonce is None:
        return False
    if challenge.algorithm not in SUPPORTED_ALGORITHMS:
        return False
    offered = challenge.qop_options
    return not offered or any(q in _QOPS for q in offered)


_C = TypeVar("_C", bound=AuthChallenge)


def select_challenge(challenges: Iterable[_C]) -> _C | None:
    """The challenge to answer: the topmost Digest one we support (RFC 8760 §2.4), or None."""
    for challenge in challenges:
        if _supported(challenge):
            return challenge
    return None


def _encode_username(username: str) -> tuple[str, str] | None:
    # RFC 7616 §3.4.4: a name that cannot go in a quoted-string travels as username*.
    if username.isascii() and username.isprintable():
        return None
    quoted = urllib.parse.quote(username, safe="", encoding="utf-8")
    return ("username*", f"UTF-8''{quoted}")


@overload
def build_credentials(
    challenge: ProxyAuthenticate,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
    prefer_auth_int: bool = False,
) -> ProxyAuthorization: ...
@overload
def build_credentials(
    challenge: WWWAuthenticate,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
    prefer_auth_int: bool = False,
) -> Authorization: ...
def build_credentials(
    challenge: AuthChallenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
    prefer_auth_int: bool = False,
) -> Authorization | ProxyAuthorization:
    """Credentials answering ``challenge`` (RFC 7616 §3.4, RFC 3261 §22.2/§22.3).

    A Proxy-Authenticate challenge gives Proxy-Authorization, any other gives
    Authorization. qop ``auth`` is preferred when offered (``auth-int`` when
    ``prefer_auth_int`` or when it is the only option); without a qop in the challenge
    the RFC 2069 form is used and cnonce/nc are left out.

    Raises:
        DigestError: the challenge is not Digest, lacks a nonce, or uses an unknown
            algorithm or only unknown qop values.
    """
    if not challenge.is_digest:
        raise DigestError(f"cannot answer auth scheme {challenge.scheme!r}")
    nonce = challenge.nonce
    if nonce is None:
        raise DigestError("digest challenge without a nonce")
    realm = challenge.realm or ""
    algorithm = challenge.algorithm
    split_algorithm(algorithm)
    offered = challenge.qop_options
    qop: str | None = None
    if offered:
        order = ("auth-int", "auth") if prefer_auth_int else ("auth", "auth-int")
        qop = next((q for q in order if q in offered), None)
        if qop is None:
            raise DigestError(f"no supported qop in {offered!r}")
    response = compute_digest_response(
        algorithm=algorithm,
        username=username,
        realm=realm,
        password=password,
        nonce=nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc,
        cnonce=cnonce,
        body=body,
    )
    params: list[tuple[str, str]] = []
    if challenge.userhash:
        params.append(("username", hash_username(algorithm, username, realm)))
    else:
        params.append(_encode_username(username) or ("username", username))
    params += [("realm", realm), ("nonce", nonce), ("uri", uri), ("response", response)]
    if challenge.param("algorithm") is not None:
        params.append(("algorithm", challenge.param("algorithm") or algorithm))
    if qop is not None:
        params += [("cnonce", cnonce), ("qop", qop), ("nc", format_nc(nc))]
    if challenge.opaque is not None:
        # RFC 7616 §3.4: opaque is returned unchanged.
        params.append(("opaque", challenge.opaque))
    if challenge.userhash:
        params.append(("userhash", "true"))
    cls = ProxyAuthorization if isinstance(challenge, ProxyAuthenticate) else Authorization
    return cls(challenge.scheme, tuple(params))


@attrs.define(eq=False)
class DigestClient:
    """A UAC's digest state: credentials and the nonce count per (realm, nonce).

    ``rng`` makes the cnonces (pass ``random.SystemRandom()`` in production).
    """

    username: str
    password: str
    rng: random.Random
    prefer_auth_int: bool = False
    _counts: dict[tuple[str, str], int] = attrs.field(factory=dict, init=False)

    def can_answer(self, challenge: AuthChallenge) -> bool:
        """True if ``challenge`` is a Digest challenge this client can answer."""
        return _supported(challenge)

    @overload
    def authorize(
        self, challenge: ProxyAuthenticate, method: str, uri: str, body: bytes = b""
    ) -> ProxyAuthorization: ...
    @overload
    def authorize(
        self, challenge: WWWAuthenticate, method: str, uri: str, body: bytes = b""
    ) -> Authorization: ...
    def authorize(
        self,
        challenge: WWWAuthenticate | ProxyAuthenticate,
        method: str,
        uri: str,
        body: bytes = b"",
    ) -> Authorization | ProxyAuthorization:
        """Credentials for a request (``method``, Request-URI text ``uri``, ``body``).

        Each call with the same nonce increments nc (RFC 7616 §3.4: the client counts
        the requests it sent with a nonce); a new nonce starts again at 1.

        Raises:
            DigestError: the challenge cannot be answered.
        """
        return self._authorize(challenge, method, uri, body)

    def _authorize(
        self, challenge: WWWAuthenticate | ProxyAuthenticate, method: str, uri: str, body: bytes
    ) -> Authorization | ProxyAuthorization:
        key = (challenge.realm or "", challenge.nonce or "")
        count = self._counts.get(key, 0) + 1
        creds = build_credentials(
            challenge,
            username=self.username,
            password=self.password,
            method=method,
            uri=uri,
            cnonce=make_cnonce(self.rng),
            nc=count,
            body=body,
            prefer_auth_int=self.prefer_auth_int,
        )
        if len(self._counts) >= 64:
            self._counts.clear()
        self._counts[key] = count
        return creds

    def authorize_request(self, request: Request, response: Response) -> Request | None:
        """Answer a 401/407 to ``request``: a copy carrying the credentials, or None.

        RFC 3261 §22.2/§22.3: for a 401 the WWW-Authenticate challenges are answered
        with Authorization, for a 407 the Proxy-Authenticate ones with
        Proxy-Authorization; one set of credentials per realm (the topmost supported
        challenge of that realm, RFC 8760 §2.4), replacing earlier credentials for that
        realm and keeping the others. Returns None when nothing can be answered, or when
        a challenge repeats a nonce already answered without ``stale=true`` (the
        password was rejected; retrying would loop). The caller still increments CSeq
        and makes a new branch for the retried request (RFC 3261 §22.2).
        """
        cls: type[WWWAuthenticate] | type[ProxyAuthenticate]
        if response.status == 401:
            cls, name = WWWAuthenticate, Authorization.NAME
        elif response.status == 407:
            cls, name = ProxyAuthenticate, ProxyAuthorization.NAME
        else:
            return None
        chosen: dict[str, WWWAuthenticate | ProxyAuthenticate] = {}
        challenge: WWWAuthenticate | ProxyAuthenticate
        for value in response.headers.get_all(cls.NAME):
            try:
                challenge = cls.parse(value)
            except SipParseError:
                continue
            realm = challenge.realm or ""
            if realm not in chosen and _supported(challenge):
                chosen[realm] = challenge
        if not chosen:
            return None
        for challenge in chosen.values():
            if not challenge.stale and (challenge.realm or "", challenge.nonce) in self._counts:
                return None
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
        for challenge in chosen.values():
            creds = self._authorize(challenge, request.method, request.uri_text, request.body)
            new = new.append_header(name, creds)
        return new


def verify_credentials(
    credentials: AuthCredentials,
    *,
    method: str,
    password: str | None = None,
    ha1: str | None = None,
    body: bytes = b"",
    username: str | None = None,
) -> bool:
    """True if ``credentials.response`` matches (compared in constant time).

    Give the user's ``password`` or stored ``ha1``. When the credentials use
    ``userhash``, pass the real ``username`` (the hashed one on the wire is checked
    against it). Nonce freshness and replays are :class:`DigestServer`'s job.
    """
    if not credentials.is_digest:
        return False
    wire_user = credentials.username
    nonce, uri, response = credentials.nonce, credentials.uri, credentials.response
    if wire_user is None or nonce is None or uri is None or response is None:
        return False
    realm = credentials.realm or ""
    algorithm = credentials.algorithm
    try:
        if credentials.userhash:
            if username is None:
                return False
            expected_user = hash_username(algorithm, username, realm)
            if not hmac.compare_digest(wire_octets(wire_user), expected_user.encode()):
                return False
        else:
            username = wire_user
        qop = credentials.qop
        if qop is not None and (credentials.nc is None or credentials.cnonce is None):
            return False
        expected = compute_digest_response(
            algorithm=algorithm,
            username=username,
            realm=realm,
            password=password,
            ha1=ha1,
            nonce=nonce,
            method=method,
            uri=uri,
            qop=qop,
            nc=credentials.param("nc"),
            cnonce=credentials.cnonce,
            body=body,
        )
    except DigestError:
        return False
    # RFC 7616 §5.12: compare in constant time.
    return hmac.compare_digest(expected.encode(), wire_octets(response.lower()))


@attrs.frozen
class DigestVerdict:
    """Outcome of :meth:`DigestServer.verify`.

    ``ok``: accept the request. ``stale``: the response was right but the nonce expired,
    so challenge again with ``stale=True`` (RFC 7616 §3.3). ``reason`` is for logs.
    """

    ok: bool
    stale: bool = False
    reason: str = ""


_NONCE_STRUCT = struct.Struct(">Q12s")
_MAC_LEN = 12


@attrs.define(eq=False)
class DigestServer:
    """A UAS/registrar/proxy digest authenticator for one realm.

    Nonces are ``base64url(ms-timestamp | 12 random bytes | HMAC)`` under a secret drawn
    from ``rng`` at construction, so they are self-validating; the highest nc seen per
    nonce is remembered (bounded by ``max_nonces`` and the nonce lifetime) to reject
    replays.
    """

    realm: str
    rng: random.Random
    algorithms: Sequence[str] = ("MD5",)
    qop: Sequence[str] = ("auth",)
    nonce_lifetime: float = 300.0
    max_nonces: int = 10_000
    opaque: str | None = None
    _secret: bytes = attrs.field(init=False)
    _seen: dict[str, tuple[float, int]] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        self._secret = self.rng.getrandbits(256).to_bytes(32, "big")
        for algorithm in self.algorithms:
            split_algorithm(algorithm)

    def make_nonce(self, now: float) -> str:
        """A fresh nonce stamped with ``now`` (seconds)."""
        stamp = max(0, int(now * 1000))
        raw = _NONCE_STRUCT.pack(stamp, self.rng.getrandbits(96).to_bytes(12, "big"))
        return base64.urlsafe_b64encode(raw + self._mac(raw)).decode().rstrip("=")

    def _mac(self, raw: bytes) -> bytes:
        """The nonce's truncated HMAC-SHA256 under the server secret (makes it self-validating)."""
        return hmac.new(self._secret, raw, hashlib.sha256).digest()[:_MAC_LEN]

    def _nonce_time(self, nonce: str) -> float | None:
        if len(nonce) != 43 or not re.fullmatch(r"[A-Za-z0-9_-]+", nonce):
            return None
        blob = base64.urlsafe_b64decode(nonce + "=")
        raw, mac = blob[: _NONCE_STRUCT.size], blob[_NONCE_STRUCT.size :]
        if not hmac.compare_digest(mac, self._mac(raw)):
            return None
        stamp: int = _NONCE_STRUCT.unpack(raw)[0]
        return stamp / 1000.0

    def challenge(
        self,
        now: float,
        *,
        stale: bool = False,
        proxy: bool = False,
        algorithm: str | None = None,
    ) -> tuple[WWWAuthenticate | ProxyAuthenticate, ...]:
        """Challenges for a 401 (or 407 with ``proxy=True``), one per algorithm.

        RFC 8760 §2.3: with several algorithms, one header each, preferred first, all
        with the same nonce. ``algorithm`` limits it to that one.
        """
        nonce = self.make_nonce(now)
        cls: type[WWWAuthenticate] | type[ProxyAuthenticate]
        cls = ProxyAuthenticate if proxy else WWWAuthenticate
        out: list[WWWAuthenticate | ProxyAuthenticate] = []
        for alg in (algorithm,) if algorithm is not None else self.algorithms:
            params: list[tuple[str, str]] = [("realm", self.realm), ("nonce", nonce)]
            if self.opaque is not None:
                params.append(("opaque", self.opaque))
            params.append(("algorithm", alg))
            if self.qop:
                params.append(("qop", ",".join(self.qop)))
            if stale:
                params.append(("stale", "TRUE"))
            out.append(cls("Digest", tuple(params)))
        return tuple(out)

    def _prune(self, now: float) -> None:
        horizon = now - self.nonce_lifetime
        if len(self._seen) >= self.max_nonces:
            for key in [k for k, (t, _) in self._seen.items() if t < horizon]:
                del self._seen[key]
            while len(self._seen) >= self.max_nonces:
                del self._seen[next(iter(self._seen))]

    def verify(
        self,
        credentials: AuthCredentials,
        *,
        method: str,
        now: float,
        password: str | None = None,
        ha1: str | None = None,
        body: bytes = b"",
        username: str | None = None,
        request_uri: str | None = None,
    ) -> DigestVerdict:
        """Check credentials of a request received at ``now``.

        Checks realm, that the nonce is ours, the response (constant time), the qop
        policy, nonce age (stale) and that nc grows for each use of a nonce (replay).
        Give ``request_uri`` (the Request-URI text) to also require the digest ``uri``
        to name it (RFC 7616 §3.4.6).
        """
        if not credentials.is_digest or credentials.realm != self.realm:
            return DigestVerdict(False, reason="wrong scheme or realm")
        if request_uri is not None and credentials.uri != request_uri:
            return DigestVerdict(False, reason="digest uri does not match the Request-URI")
        if credentials.algorithm not in {a.upper() for a in self.algorithms}:
            return DigestVerdict(False, reason="algorithm not offered")
        nonce = credentials.nonce or ""
        issued = self._nonce_time(nonce)
        if issued is None:
            return DigestVerdict(False, reason="nonce not issued here")
        qop = credentials.qop
        if self.qop and qop not in self.qop:
            # RFC 7616 §3.4: a client answering a challenge with qop MUST send qop.
            return DigestVerdict(False, reason="qop missing or not offered")
        if not verify_credentials(
            credentials,
            method=method,
            password=password,
            ha1=ha1,
            body=body,
            username=username,
        ):
            return DigestVerdict(False, reason="wrong response")
        if now - issued > self.nonce_lifetime:
            return DigestVerdict(False, stale=True, reason="nonce expired")
        if qop is not None:
            nc = credentials.nc or 0
            _, last = self._seen.get(nonce, (issued, 0))
            if nc <= last:
                return DigestVerdict(False, reason="nonce count replayed")
            self._prune(now)
            self._seen[nonce] = (issued, nc)
        return DigestVerdict(True)

    def authentication_info(
        self,
        credentials: AuthCredentials,
        *,
        password: str | None = None,
        ha1: str | None = None,
        body: bytes = b"",
        now: float | None = None,
        username: str | None = None,
    ) -> AuthenticationInfo:
        """Authentication-Info for a 2xx (RFC 7616 §3.5): rspauth, qop, cnonce, nc.

        ``now`` adds a ``nextnonce``. With ``userhash`` pass the real ``username``.
        """
        user = username if credentials.userhash and username else credentials.username
        qop = credentials.qop
        rspauth = compute_digest_response(
            algorithm=credentials.algorithm,
            username=user or "",
            realm=credentials.realm or "",
            password=password,
            ha1=ha1,
            nonce=credentials.nonce or "",
            method="",
            uri=credentials.uri or "",
            qop=qop,
            nc=credentials.param("nc"),
            cnonce=credentials.cnonce,
            body=body,
        )
        params: list[tuple[str, str]] = []
        if now is not None:
            params.append(("nextnonce", self.make_nonce(now)))
        params.append(("rspauth", rspauth))
        if qop is not None:
            params += [
                ("qop", qop),
                ("cnonce", credentials.cnonce or ""),
                ("nc", credentials.param("nc") or ""),
            ]
        return AuthenticationInfo(tuple(params))
