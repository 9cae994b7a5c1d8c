"""A registrar's binding store (RFC 3261 §10.3), sans-IO.

``Registrar.register(request, now)`` applies one REGISTER to the bindings of its
address-of-record and returns what to answer (200 with every current binding, 423 with
Min-Expires, 400/403/404/500/503). No socket, clock or task here: time is the ``now``
argument, and a binding whose expiry has passed is never returned (expired ones are
dropped when their AOR is next touched, and by a sweep when the store is full).

Limits (``RegistrarSettings``) bound what a hostile client can make it hold: the number of
AORs and of contacts per AOR, and the expires range.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import attrs

from rvoip_sip_core import Contact, Expires, Request, SipParseError, SipUri, Uri, parse_uri

__all__ = [
    "DEFAULT_MAX_AORS",
    "DEFAULT_MAX_CONTACTS_PER_AOR",
    "Binding",
    "BindingsChanged",
    "RegisterOutcome",
    "Registrar",
    "RegistrarSettings",
    "aor_of",
]

DEFAULT_MAX_AORS = 10_000
"""Addresses of record a registrar holds at most (a new one beyond gets 503)."""

DEFAULT_MAX_CONTACTS_PER_AOR = 10
"""Contacts one AOR may have bound at once (a REGISTER going beyond gets 403)."""


@attrs.frozen
class RegistrarSettings:
    """Limits and defaults of a registrar (documented settings with safe defaults).

    Attributes:
        min_expires: the shortest registration accepted, seconds (RFC 3261 §10.3 step 7:
            shorter, non-zero, requests get 423 with ``Min-Expires``). Default 60.
        max_expires: the longest registration granted, seconds; longer requests are
            granted this (§10.3 step 7 lets the registrar shorten it). Default 3600.
        default_expires: asked for on behalf of a REGISTER that names no expiry (no
            ``expires`` param, no Expires header); capped at ``max_expires``. Default 3600.
        max_aors: addresses of record held at most; a REGISTER creating one more gets
            503 with Retry-After. Default 10,000 (``DEFAULT_MAX_AORS``).
        max_contacts_per_aor: contacts bound to one AOR at most; a REGISTER going beyond
            gets 403. Default 10 (``DEFAULT_MAX_CONTACTS_PER_AOR``).
        max_fork_branches: contacts an incoming call to an AOR is offered to at once
            (the highest q first). Default 10.
    """

    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_aors: int = DEFAULT_MAX_AORS
    max_contacts_per_aor: int = DEFAULT_MAX_CONTACTS_PER_AOR
    max_fork_branches: int = 10

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.min_expires <= self.max_expires:
            raise ValueError("need 1 <= min_expires <= max_expires")
        if self.default_expires < self.min_expires:
            raise ValueError("default_expires must not be below min_expires")
        if self.max_aors < 1 or self.max_contacts_per_aor < 1 or self.max_fork_branches < 1:
            raise ValueError("registrar limits must be at least 1")


@attrs.frozen
class Binding:
    """One contact bound to an address of record.

    Attributes:
        aor: the address of record, canonical (``sip:user@host``, see :func:`aor_of`).
        contact: the contact URI (where calls for the AOR go).
        expires_at: when the binding lapses (the ``now`` clock of the registrar).
        q: the contact's preference (RFC 3261 §20.10), 1.0 when not given.
        call_id: Call-ID of the REGISTER that made or last refreshed it.
        cseq: its CSeq number (§10.3 step 7: a later REGISTER with the same Call-ID
            must carry a higher one).
    """

    aor: str
    contact: Uri
    expires_at: float
    q: float = 1.0
    call_id: str = ""
    cseq: int = 0

    def expires_in(self, now: float) -> int:
        """Whole seconds left at ``now`` (0 once lapsed)."""
        # Rounded to the microsecond first: float error must not add a second.
        return max(0, math.ceil(round(self.expires_at - now, 6)))

    def header_value(self, now: float) -> str:
        """The Contact header value listing this binding in a 200 (§10.3 step 8)."""
        value = f"<{self.contact}>;expires={self.expires_in(now)}"
        return value if self.q == 1.0 else f"{value};q={self.q:g}"


@attrs.frozen
class BindingsChanged:
    """Session event: contacts were bound to or removed from ``aor`` (or lapsed).

    ``bindings`` are the ones live after the change (empty: the AOR has none left).
    """

    aor: str
    bindings: tuple[Binding, ...]


@attrs.frozen
class RegisterOutcome:
    """What to answer a REGISTER, and what it changed.

    Attributes:
        status: the response status (200 on success).
        reason: the reason phrase.
        headers: headers for the response (Contact list, Min-Expires, Retry-After).
        aor: the canonical address of record, when the To header named one.
        bindings: the AOR's live bindings after the request.
        changed: True when the set of bound contacts changed.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    aor: str | None = None
    bindings: tuple[Binding, ...] = ()
    changed: bool = False


def aor_of(uri: Uri | str) -> str | None:
    """The canonical address of record of a URI: ``sip:user@host`` (None: not one).

    RFC 3261 §10.3 step 5: the registrar canonicalises the To URI; here the scheme is
    ``sip`` (sips AORs share the bindings), the host is lower-cased and the port, the
    URI parameters and headers are dropped, so ``sip:Bob@PBX:5060;transport=tcp`` and
    ``sip:Bob@pbx`` are the same AOR. A URI without user part has no AOR.
    """
    if isinstance(uri, str):
        try:
            uri = parse_uri(uri.strip().strip("<>"))
        except SipParseError:
            return None
    if not isinstance(uri, SipUri) or not uri.user:
        return None
    return f"sip:{uri.user}@{uri.host.lower()}"


def _out_of_order() -> RegisterOutcome:
    # RFC 3261 §10.3 step 7: same Call-ID and a CSeq not higher: "the update MUST be
    # aborted and the request fails".
    return RegisterOutcome(500, "Server Internal Error: CSeq Out of Order")


@attrs.define(eq=False)
class Registrar:
    """Bindings of addresses of record to contacts, fed REGISTER requests and ``now``.

    Args:
        settings: limits and defaults (see :class:`RegistrarSettings`).
        domain: the domain whose AORs this registrar holds (the host of the To URI must
            equal it, else 404, §10.3 step 5); None accepts any host.

    Example:
        >>> registrar = Registrar(domain="pbx.test")
        >>> registrar.bindings("sip:alice@pbx.test", now=0.0)
        ()
    """

    settings: RegistrarSettings = attrs.field(factory=RegistrarSettings)
    domain: str | None = None
    # AOR -> contact URI -> binding. A SipUri hashes and compares by RFC 3261 §19.1.4, the
    # comparison §10.3 step 7 asks for ("using the URI comparison rules").
    _store: dict[str, dict[Uri, Binding]] = attrs.field(factory=dict, init=False)

    def __len__(self) -> int:
        """Addresses of record held (some may have only lapsed bindings left)."""
        return len(self._store)

    # --- queries --------------------------------------------------------------------------

    def bindings(self, aor: str, now: float) -> tuple[Binding, ...]:
        """The live bindings of ``aor`` (any URI form of it), highest q first.

        Among equal q, the most recently refreshed comes first.
        """
        key = aor_of(aor)
        if key is None:
            return ()
        self._purge(key, now)
        found = self._store.get(key)
        if not found:
            return ()
        return tuple(sorted(found.values(), key=lambda b: (-b.q, -b.expires_at)))

    def aors(self, now: float) -> tuple[str, ...]:
        """Every AOR with at least one live binding."""
        return tuple(aor for aor in list(self._store) if self.bindings(aor, now))

    def __iter__(self) -> Iterator[str]:
        """The AORs held (live or not yet swept)."""
        return iter(list(self._store))

    def sweep(self, now: float) -> tuple[str, ...]:
        """Drop every lapsed binding; returns the AORs that lost one (for events)."""
        changed: list[str] = []
        for aor in list(self._store):
            if self._purge(aor, now):
                changed.append(aor)
        return tuple(changed)

    def remove(self, aor: str) -> bool:
        """Drop every binding of ``aor`` (an administrator's action); True if it had any."""
        key = aor_of(aor)
        return key is not None and self._store.pop(key, None) is not None

    def _purge(self, aor: str, now: float) -> bool:
        """Drop ``aor``'s lapsed bindings; True when any was dropped."""
        found = self._store.get(aor)
        if found is None:
            return False
        lapsed = [uri for uri, b in found.items() if b.expires_at <= now]
        for uri in lapsed:
            del found[uri]
        if not found:
            del self._store[aor]
        return bool(lapsed)

    # --- REGISTER -------------------------------------------------------------------------

    def register(
        self, request: Request, now: float, *, authenticated_user: str | None = None
    ) -> RegisterOutcome:
        """Apply a REGISTER received at ``now`` (RFC 3261 §10.3 steps 5-8).

        Args:
            request: the REGISTER.
            now: the registrar's clock, seconds.
            authenticated_user: the digest user name the request was authenticated as,
                if it was; it must be the AOR's user (§10.3 step 3/4: 403 otherwise).

        Returns:
            The answer and the bindings after it. Nothing is changed unless the answer is
            200 (§10.3 step 7: updates are committed all or none).
        """
        try:
            to_uri = request.to.uri
            contacts = request.contacts
            expires_header = request.header(Expires)
            call_id = request.call_id
            cseq = request.cseq.seq
        except SipParseError as exc:
            return RegisterOutcome(400, f"Bad Request: {exc.reason}"[:100])
        aor = aor_of(to_uri)
        if aor is None or not isinstance(to_uri, SipUri):
            # RFC 3261 §10.3 step 5: an AOR not valid for the domain: 404.
            return RegisterOutcome(404, "Not Found")
        if self.domain is not None and to_uri.host.lower() != self.domain.lower():
            return RegisterOutcome(404, "Not Found", aor=aor)
        if authenticated_user is not None and authenticated_user != to_uri.user:
            # RFC 3261 §10.3 step 4: the authenticated user must be allowed to modify the
            # bindings of this AOR; here: only its own.
            return RegisterOutcome(403, "Forbidden", aor=aor)
        self._purge(aor, now)
        current = self._store.get(aor, {})
        if not contacts:
            # RFC 3261 §10.2.3: a REGISTER without Contact queries the bindings.
            return self._ok(aor, now, changed=False)
        header_expires = None if expires_header is None else expires_header.value
        if any(c.is_wildcard for c in contacts):
            new = self._wildcard(contacts, header_expires, current, call_id, cseq)
        else:
            new = self._update(aor, contacts, header_expires, current, call_id, cseq, now)
        if isinstance(new, RegisterOutcome):
            return attrs.evolve(new, aor=aor)
        settings = self.settings
        if len(new) > settings.max_contacts_per_aor:
            return RegisterOutcome(403, "Forbidden: Too Many Contacts", aor=aor)
        if new and aor not in self._store and len(self._store) >= settings.max_aors:
            self.sweep(now)
            if len(self._store) >= settings.max_aors:
                headers = (("Retry-After", "60"),)
                return RegisterOutcome(503, "Service Unavailable", headers, aor=aor)
        changed = new.keys() != current.keys()
        if new:
            self._store[aor] = new
        else:
            self._store.pop(aor, None)
        return self._ok(aor, now, changed=changed)

    def _wildcard(
        self,
        contacts: tuple[Contact, ...],
        expires: int | None,
        current: dict[Uri, Binding],
        call_id: str,
        cseq: int,
    ) -> dict[Uri, Binding] | RegisterOutcome:
        # RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0, else 400.
        if len(contacts) != 1 or expires != 0:
            return RegisterOutcome(400, "Bad Request: Contact * needs Expires: 0 alone")
        # §10.3 step 6: every binding goes, unless one has this Call-ID with a CSeq not
        # lower than the request's (then the request fails, nothing is removed).
        for binding in current.values():
            if binding.call_id == call_id and cseq <= binding.cseq:
                return _out_of_order()
        return {}

    def _update(
        self,
        aor: str,
        contacts: tuple[Contact, ...],
        header_expires: int | None,
        current: dict[Uri, Binding],
        call_id: str,
        cseq: int,
        now: float,
    ) -> dict[Uri, Binding] | RegisterOutcome:
        settings = self.settings
        new = dict(current)
        for contact in contacts:
            uri = contact.uri
            assert uri is not None  # wildcards took the other path
            # RFC 3261 §10.3 step 7: the expires param, else the Expires header, else a
            # locally configured default.
            expires = contact.expires
            if expires is None:
                expires = header_expires if header_expires is not None else settings.default_expires
            if 0 < expires < settings.min_expires:
                # §10.3 step 7: shorter than the registrar's minimum and not zero: 423.
                return RegisterOutcome(
                    423,
                    "Interval Too Brief",
                    (("Min-Expires", str(settings.min_expires)),),
                )
            old = new.get(uri)
            if old is not None and old.call_id == call_id and cseq <= old.cseq:
                return _out_of_order()
            if expires == 0:
                new.pop(uri, None)
                continue
            granted = min(expires, settings.max_expires)
            q = contact.q
            new[uri] = Binding(aor, uri, now + granted, 1.0 if q is None else q, call_id, cseq)
        return new

    def _ok(self, aor: str, now: float, *, changed: bool) -> RegisterOutcome:
        # RFC 3261 §10.3 step 8: the 200 lists every current binding with its expires.
        bindings = self.bindings(aor, now)
        headers = tuple(("Contact", b.header_value(now)) for b in bindings)
        return RegisterOutcome(200, "OK", headers, aor, bindings, changed)
