"""Registration with a registrar (RFC 3261 §10): bindings kept alive, reported, removed.

One :class:`Registrations` per coordinator holds the accounts (one per address of record).
Each registered account runs one task: REGISTER, wait for the final response (a 401/407
is answered by the dialog layer with the account's credentials), then sleep until the
refresh (a fraction of the granted expires) or, after a failure, a bounded back-off.
A 423 is answered by asking again with the registrar's Min-Expires (§10.2.8). Every
change of state is published as a :class:`RegistrationStateChanged` session event and
readable as a :class:`RegistrationStatus`. Unregistering (also on ``stop()``) sends
REGISTER with ``Expires: 0`` for our own Contact only, leaving other devices' bindings.

Behind a NAT (RFC 3581, the practice of RFC 5626 and pjsua's ``contact_rewrite``): the
``received``/``rport`` the registrar writes into our top Via of a 2xx is the address our
requests really come from. When it differs from our Contact, the Contact of that transport
is rewritten to it (for REGISTER and for every call placed or answered) and the account
re-registers at once with it, removing the old binding in the same REGISTER. While
registered, a CRLFCRLF keep-alive goes to the registrar's flow every
``keepalive_udp``/``keepalive_stream`` seconds (RFC 5626 §3.5.1) so the NAT keeps the
binding open between refreshes.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from rvoip_dialog_core import WILDCARDS
from rvoip_session_core._accounts import MAX_EXPIRES, Account, RegistrationSettings
from rvoip_session_core._driver import SipEndpoint
from rvoip_session_core._errors import InvalidState
from rvoip_session_core._events import (
    RegistrationState,
    RegistrationStateChanged,
    RegistrationStatus,
)
from rvoip_session_core._registry import CallRegistry
from rvoip_session_core._settings import is_ip_literal, split_uri_hostport
from rvoip_sip_core import Response, SipParseError, SipUri, parse_uri
from rvoip_transaction_core import Peer

__all__ = [
    "Account",
    "RegistrationSettings",
    "RegistrationState",
    "RegistrationStateChanged",
    "RegistrationStatus",
    "Registrations",
]

log = logging.getLogger("rvoip_session_core")


@attrs.define(eq=False)
class _Binding:
    account: Account
    call_id: str
    status: RegistrationStatus
    cseq: int = 0
    scope: anyio.CancelScope | None = None
    task_done: anyio.Event = attrs.Factory(anyio.Event)
    transport: str | None = None
    """Transport of the flow to the registrar (from the Via of its first response)."""
    sent: str | None = None
    """The Contact URI of the REGISTER under way."""
    registered: str | None = None
    """The Contact URI the registrar last accepted."""
    stale: str | None = None
    """A Contact of ours to remove with the next REGISTER (after a NAT rewrite)."""
    flow: Peer | None = None
    """Where keep-alives go (the registrar's or outbound proxy's address)."""
    refresh_now: anyio.Event = attrs.Factory(anyio.Event)
    """Set to refresh before the due time (another account's NAT rewrite moved our Contact)."""


def granted_expires(response: Response, contact: str, asked: int) -> int:
    """The expires a 2xx to REGISTER grants our binding (RFC 3261 §10.2.4).

    Our Contact's ``expires`` param, else the Expires header, else what we asked for.
    """
    ours = _bare(contact)
    for element in response.contacts:
        uri = element.uri
        if uri is not None and element.expires is not None and _bare(str(uri)) == ours:
            return element.expires
    value = response.headers.get("Expires")
    if value is not None and value.strip().isdigit():
        return int(value.strip())
    return asked


def _bare(uri: str) -> str:
    text = uri.strip().strip("<>")
    return text.split(";", 1)[0].lower()


class Registrations:
    """The accounts a coordinator registers, their tasks and their statuses.

    Args:
        registry: Where requests wait for their ResponseForRequest (by ref).
        publish: Publishes a session event.
        t1: RFC 3261 T1 (response timeout default 64*T1 + 2 s).
        settings: Refresh and back-off timing.
    """

    def __init__(
        self,
        registry: CallRegistry,
        publish: Callable[[Any], None],
        t1: float,
        settings: RegistrationSettings | None = None,
    ) -> None:
        self._registry = registry
        self._publish = publish
        self._now: Callable[[], float] = lambda: 0.0
        self._settings = settings or RegistrationSettings()
        # RFC 5626 §4.4.1: each keep-alive after a random 80-100 % of the interval, so
        # the phones behind one NAT do not ping in step (timing only: not a CSPRNG use).
        self._jitter = random.Random()
        self._timeout = self._settings.response_timeout or 64 * t1 + 2.0
        self._bindings: dict[str, _Binding] = {}
        self._endpoint: SipEndpoint | None = None
        self._start_soon: Callable[..., None] | None = None
        self._rng_call_id: Callable[[], str] | None = None

    def attach(
        self,
        endpoint: SipEndpoint,
        start_soon: Callable[..., None],
        new_call_id: Callable[[], str],
        now: Callable[[], float],
    ) -> None:
        """The coordinator started: registrations may run (``now``: its clock)."""
        self._now = now
        self._endpoint = endpoint
        self._start_soon = start_soon
        self._rng_call_id = new_call_id

    def detach(self) -> None:
        """The coordinator stopped."""
        self._endpoint = None
        self._start_soon = None

    # --- commands ---------------------------------------------------------------------------

    def register(self, account: Account) -> None:
        """Start registering ``account`` (replacing a running registration of its AOR)."""
        endpoint, start_soon, new_call_id = self._endpoint, self._start_soon, self._rng_call_id
        if endpoint is None or start_soon is None or new_call_id is None:
            raise InvalidState("the coordinator is not running")
        old = self._bindings.get(account.aor)
        if old is not None and old.scope is not None:
            old.scope.cancel()
        endpoint.add_credentials(account.credentials)
        binding = _Binding(
            account,
            old.call_id if old is not None else _without_wildcard(new_call_id()),
            RegistrationStatus(account.aor, account.registrar, RegistrationState.Registering),
            cseq=old.cseq if old is not None else 0,
        )
        self._bindings[account.aor] = binding
        start_soon(self._run, binding)

    async def unregister(self, aor: str) -> RegistrationStatus:
        """Remove our binding for ``aor`` (REGISTER with Expires 0) and stop refreshing.

        Raises:
            InvalidState: no account with that AOR.
        """
        binding = self._bindings.get(aor)
        if binding is None:
            raise InvalidState(f"no registration for {aor}")
        if binding.scope is not None:
            binding.scope.cancel()
        was = binding.status
        if self._endpoint is not None and was.state in (
            RegistrationState.Registered,
            RegistrationState.Registering,
            RegistrationState.Failed,
        ):
            self._set(binding, state=RegistrationState.Unregistering)
            response, reason = await self._send(binding, 0)
            status = 0 if response is None else response.status
            self._set(
                binding,
                state=RegistrationState.Unregistered,
                expires=None,
                expires_at=None,
                status=status,
                reason=reason,
            )
        else:
            self._set(binding, state=RegistrationState.Unregistered, expires=None, expires_at=None)
        del self._bindings[aor]
        return binding.status

    async def unregister_all(self) -> None:
        """Unregister every account (on ``stop()``), at once."""
        async with anyio.create_task_group() as tg:
            for aor in list(self._bindings):
                tg.start_soon(self._unregister_quietly, aor)

    async def _unregister_quietly(self, aor: str) -> None:
        try:
            await self.unregister(aor)
        except Exception:
            log.exception("unregistering %s failed", aor)

    def statuses(self) -> tuple[RegistrationStatus, ...]:
        """Every account's status, by AOR."""
        return tuple(self._bindings[aor].status for aor in sorted(self._bindings))

    # --- the account's task -------------------------------------------------------------------

    async def _run(self, binding: _Binding) -> None:
        settings = self._settings
        backoff = settings.retry_min
        account = binding.account
        expires = min(account.expires, MAX_EXPIRES)
        rewrites = 0
        with anyio.CancelScope() as scope:
            binding.scope = scope
            while True:
                self._set(binding, state=RegistrationState.Registering)
                response, reason = await self._send(binding, expires)
                status = 0 if response is None else response.status
                if response is not None and 200 <= status < 300:
                    binding.registered, binding.stale = binding.sent, None
                    learnt = settings.contact_rewrite and self._learn(binding, response)
                    if learnt and rewrites < settings.max_rewrites:
                        # Re-register at once at the learnt address (the old one goes).
                        rewrites += 1
                        continue
                    if not learnt:
                        rewrites = 0
                    granted = granted_expires(response, binding.registered or "", expires)
                    now = self._now()
                    self._set(
                        binding,
                        state=RegistrationState.Registered,
                        expires=granted,
                        expires_at=now + granted,
                        status=status,
                        reason="",
                    )
                    backoff = settings.retry_min
                    # RFC 3261 §10.2.4: refresh before the binding lapses.
                    await self._keep_alive(binding, max(1.0, granted * settings.refresh_fraction))
                    continue
                if response is not None and status == 423:
                    # RFC 3261 §10.2.8: ask again with the registrar's Min-Expires.
                    wanted = _min_expires(response)
                    if wanted is not None and expires < wanted <= MAX_EXPIRES:
                        expires = wanted
                        continue
                    reason = reason or f"423 with unusable Min-Expires ({wanted})"
                self._set(
                    binding,
                    state=RegistrationState.Failed,
                    expires=None,
                    expires_at=None,
                    status=status,
                    reason=reason or f"{status} {response.reason if response else ''}".strip(),
                )
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, settings.retry_max)

    def _learn(self, binding: _Binding, response: Response) -> bool:
        """Rewrite our Contact to the address the registrar saw, if it differs (NAT).

        RFC 3581 §4: a server adds ``received`` (the source IP) and fills ``rport`` (the
        source port) in the top Via of its response; together they are the public address
        of the flow our REGISTER took. Returns True when the Contact was rewritten.
        """
        endpoint = self._endpoint
        if endpoint is None:
            return False
        try:
            via = response.top_via
        except SipParseError:
            return False
        received, rport = via.received, via.rport
        has_port = type(rport) is int
        if received is None and not has_port:
            return False
        host = (received or via.host).strip("[]")
        port = rport if type(rport) is int else via.port
        if not is_ip_literal(host) or port is None or not 0 < port < 65536:
            return False  # a registrar's garbage must not become our Contact
        transport = via.transport.upper()
        binding.transport = transport
        current = endpoint.config.contact_for(transport)
        try:
            _, contact_host, contact_port = split_uri_hostport(current)
        except ValueError:
            return False
        if contact_host is not None and contact_host.strip("[]") == host and contact_port == port:
            return False
        endpoint.set_contact_address(transport, host, port)
        learnt = endpoint.config.contact_for(transport)
        # RFC 3261 §10.2.2: the next REGISTER removes the old binding (expires=0).
        binding.stale = _as_stored(binding.registered, via.host, learnt)
        # The Contact is the endpoint's, shared by every account on this transport: the
        # others re-register now too, removing the bindings they hold at the old address.
        for other in self._bindings.values():
            if other is not binding and other.registered == current:
                other.stale = _as_stored(other.registered, via.host, learnt)
                other.refresh_now.set()
        log.info(
            "registrar %s sees %s at %s:%s over %s: Contact rewritten (was %s)",
            binding.account.registrar,
            binding.account.aor,
            host,
            port,
            transport,
            current,
        )
        return True

    async def _keep_alive(self, binding: _Binding, delay: float) -> None:
        """Wait ``delay`` seconds, pinging the registrar's flow meanwhile (RFC 5626 §3.5.1).

        Returns early when ``binding.refresh_now`` is set.
        """
        end = anyio.current_time() + delay  # a slow first DNS lookup does not delay it
        flow = await self._flow(binding)
        interval = None if flow is None else self._settings.keepalive_interval(flow.transport)
        while True:
            left = end - anyio.current_time()
            gap = None if interval is None else interval * self._jitter.uniform(0.8, 1.0)
            step = left if gap is None or left <= gap else gap
            with anyio.move_on_after(max(0.0, step)):
                await binding.refresh_now.wait()
            if binding.refresh_now.is_set():
                binding.refresh_now = anyio.Event()
                return
            if step >= left:
                return
            endpoint = self._endpoint
            if endpoint is not None and flow is not None:
                try:
                    endpoint.send_keepalive(flow)
                except Exception:  # a failed ping must not end the registration
                    log.exception("keep-alive to %s failed", flow)

    async def _flow(self, binding: _Binding) -> Peer | None:
        """The registrar's (or the outbound proxy's) address: where REGISTER went."""
        if binding.flow is not None:
            return binding.flow
        endpoint = self._endpoint
        if endpoint is None:
            return None
        text = endpoint.config.outbound_proxy or binding.account.registrar
        try:
            uri = parse_uri(text.strip().strip("<>"))
        except SipParseError:
            return None
        if not isinstance(uri, SipUri):
            return None
        transport = (
            "TLS"
            if uri.scheme == "sips"
            else (binding.transport or uri.transport or endpoint.config.transport).upper()
        )
        host = (uri.maddr or uri.host).strip("[]")
        port = uri.port or (5061 if transport == "TLS" else 5060)
        if not is_ip_literal(host):
            # In the family our SIP sockets are bound to, like the dialog layer resolves.
            family = socket.AF_INET6 if ":" in endpoint.config.via_host else socket.AF_INET
            with anyio.move_on_after(5.0):
                try:
                    infos = await anyio.getaddrinfo(host, port, family=family)
                except OSError:
                    infos = []
                if infos:
                    host = str(infos[0][4][0])
            if not is_ip_literal(host):
                return None
        binding.flow = Peer(transport, host, port)
        return binding.flow

    def _contact(self) -> str:
        endpoint = self._endpoint
        return "" if endpoint is None else endpoint.config.contact

    async def _send(self, binding: _Binding, expires: int) -> tuple[Response | None, str]:
        """One REGISTER and its final response (None on timeout or error), and a reason."""
        endpoint = self._endpoint
        if endpoint is None:
            return None, "the coordinator stopped"
        account = binding.account
        config = endpoint.config
        contact = config.contact_for(binding.transport or config.transport)
        binding.sent = contact
        value = f"<{contact}>;expires={expires}"
        if binding.stale is not None and binding.stale != contact:
            # RFC 3261 §10.2.2: expires=0 on a Contact removes that binding (our old,
            # pre-NAT-rewrite address); one REGISTER may carry several Contacts.
            value += f", <{binding.stale}>;expires=0"
        # RFC 3261 §10.2: same Call-ID for every REGISTER of a binding, CSeq growing.
        cseq = binding.cseq + 1 if binding.cseq else None
        try:
            ref = endpoint.send_request(
                "REGISTER",
                account.registrar,
                from_=account.aor,
                to=account.aor,
                call_id=binding.call_id,
                cseq=cseq,
                headers=[("Contact", value), ("Expires", str(expires))],
            )
        except (SipParseError, ValueError) as exc:
            return None, f"cannot send REGISTER: {exc}"
        pending = await self._registry.wait_outside(ref, "REGISTER", self._timeout)
        response = pending.response
        if response is None:
            return None, f"no response from {account.registrar} in {self._timeout:g}s"
        binding.cseq = response.cseq.seq
        if response.status in (401, 407):
            why = pending.auth_failure or "challenge not answered"
            return response, f"{response.status} {response.reason}: {why}"
        return response, ""

    def _set(self, binding: _Binding, **changes: Any) -> None:
        changes.setdefault("contact", binding.registered or self._contact() or None)
        old = binding.status
        new = attrs.evolve(old, **changes)
        binding.status = new
        if new.state is not old.state or new.status != old.status or new.expires != old.expires:
            if new.state is RegistrationState.Failed:
                log.warning("registration of %s failed: %s", new.aor, new.reason)
            self._publish(RegistrationStateChanged(new))


def _without_wildcard(call_id: str) -> str:
    """``call_id`` without an ``@0.0.0.0``/``@::`` host (a wildcard bind names no host)."""
    head, at, host = call_id.rpartition("@")
    return head if at and host in WILDCARDS else call_id


def _as_stored(registered: str | None, sent_by: str, learnt: str) -> str | None:
    """The binding the registrar holds for ``registered``, to remove (None: nothing to).

    Bound to a wildcard, our Contact said ``0.0.0.0``/``::`` and the dialog layer sent it
    as the address routing to the registrar, the same host as our Via's sent-by: that is
    what the registrar stored. When it is the learnt Contact itself, nothing is removed
    (``expires=0`` on it would remove the binding we are making).
    """
    if registered is None:
        return None
    stored = registered
    for wildcard in ("@0.0.0.0:", "@[::]:"):
        stored = stored.replace(wildcard, f"@{sent_by}:")
    return None if stored == learnt else stored


def _min_expires(response: Response) -> int | None:
    value = response.headers.get("Min-Expires")
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())
