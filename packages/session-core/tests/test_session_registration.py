"""Registration (RFC 3261 §10) in virtual time against a small registrar on the virtual network.

The registrar is a relay on ``VirtualCalls.sip``: it challenges with sip-core's
``DigestServer``, answers 423 below its Min-Expires, grants at most ``max_expires`` and
keeps the bindings, so the tests can read what a real registrar would hold.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from rvoip_session_core import (
    InvalidState,
    RegistrationSettings,
    RegistrationState,
    RegistrationStateChanged,
    SessionCoordinator,
)
from rvoip_session_core.testing import VirtualCalls, virtual_time_backend
from rvoip_sip_core import AuthCredentials, DigestServer, Message, Request, make_response
from rvoip_transaction_core import Peer

pytestmark = pytest.mark.anyio

PASSWORD = "reg-pass"
REGISTRAR_PORT = 5990
REGISTRAR = f"sip:127.0.0.1:{REGISTRAR_PORT}"


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Virtual time (trio + MockClock)."""
    return virtual_time_backend()


class Registrar:
    """A stateless registrar: digest auth, Min-Expires, a cap on expires, the bindings."""

    def __init__(self, net: VirtualCalls, *, min_expires: int = 60, max_expires: int = 120):
        self.net = net
        self.server = DigestServer("reg.test", algorithms=("SHA-256",))
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.requests: list[Request] = []
        self.bindings: dict[str, tuple[str, float]] = {}
        """AOR -> (contact, expiry time)."""
        self.fail_with: int | None = None

    def __call__(self, message: Message, source: Peer) -> list[tuple[Message, Peer]]:
        if not isinstance(message, Request) or message.method != "REGISTER":
            return []
        self.requests.append(message)
        now = self.net.sip.now
        if self.fail_with is not None:
            return [(make_response(message, self.fail_with, to_tag="r"), source)]
        value = message.headers.get("Authorization")
        ok = False
        if value is not None:
            verdict = self.server.verify(
                AuthCredentials.parse(value), method="REGISTER", now=now, password=PASSWORD
            )
            ok = verdict.ok
        if not ok:
            challenge = [("WWW-Authenticate", str(c)) for c in self.server.challenge(now)]
            return [(make_response(message, 401, to_tag="r", headers=challenge), source)]
        expires = int(message.headers.get("Expires") or "3600")
        aor = str(message.to.uri)
        contact = str(message.contacts[0].uri)
        if expires == 0:
            self.bindings.pop(aor, None)
            return [(make_response(message, 200, to_tag="r"), source)]
        if expires < self.min_expires:
            # RFC 3261 §10.3 step 7: too brief: 423 with Min-Expires.
            headers = [("Min-Expires", str(self.min_expires))]
            return [(make_response(message, 423, to_tag="r", headers=headers), source)]
        granted = min(expires, self.max_expires)
        self.bindings[aor] = (contact, now + granted)
        headers = [("Contact", f"<{contact}>;expires={granted}")]
        return [(make_response(message, 200, to_tag="r", headers=headers), source)]

    def authorized(self) -> list[Request]:
        return [r for r in self.requests if r.headers.get("Authorization") is not None]


@pytest.fixture
async def net() -> AsyncIterator[VirtualCalls]:
    """The virtual networks (SIP and media) the coordinators share."""
    async with VirtualCalls() as calls:
        yield calls


async def wait_state(
    coordinator: SessionCoordinator, state: RegistrationState, limit: float = 60.0
) -> None:
    with anyio.fail_after(limit):
        while not any(s.state is state for s in coordinator.registration_status()):
            await anyio.sleep(0.05)


async def test_register_with_digest_refresh_and_unregister_on_stop(net: VirtualCalls) -> None:
    registrar = Registrar(net)
    net.sip.add_relay(REGISTRAR_PORT, registrar)
    builder = net.builder("alice").with_registration(
        REGISTRAR, username="alice", password=PASSWORD, expires=3600
    )
    alice = net.coordinator(builder)
    events: list[RegistrationStateChanged] = []
    async with alice:
        subscription = alice.events()
        await wait_state(alice, RegistrationState.Registered)
        started = anyio.current_time()
        (status,) = alice.registration_status()
        assert status.aor == "sip:alice@127.0.0.1"
        assert status.expires == 120  # what the registrar granted, not the 3600 asked
        assert status.status == 200
        assert status.contact == alice.endpoint.config.contact
        assert registrar.bindings["sip:alice@127.0.0.1"][0] == alice.endpoint.config.contact
        first = registrar.authorized()[0]
        assert first.headers.get("Expires") == "3600"
        # Refreshed at 75 % of 120 s (RFC 3261 §10.2.4: before the binding lapses).
        await anyio.sleep(95)
        refreshes = registrar.authorized()
        assert len(refreshes) == 2
        assert refreshes[1].call_id == first.call_id  # §10.2: one Call-ID per binding
        assert refreshes[1].cseq.seq > first.cseq.seq
        assert anyio.current_time() - started >= 90
        while (event := subscription.receive_nowait()) is not None:
            if isinstance(event, RegistrationStateChanged):
                events.append(event)
    # stop() removed the binding (REGISTER Expires 0 for our Contact only).
    assert "sip:alice@127.0.0.1" not in registrar.bindings
    assert registrar.authorized()[-1].headers.get("Expires") == "0"
    # The refresh was reported: Registering, then Registered again.
    states = [e.status.state for e in events]
    assert RegistrationState.Registering in states
    assert states[states.index(RegistrationState.Registering) + 1] is RegistrationState.Registered


async def test_423_min_expires_is_honoured(net: VirtualCalls) -> None:
    registrar = Registrar(net, min_expires=600, max_expires=900)
    net.sip.add_relay(REGISTRAR_PORT, registrar)
    alice = await net.add("alice")
    aor = alice.register(REGISTRAR, username="alice", password=PASSWORD, expires=30)
    await wait_state(alice, RegistrationState.Registered)
    asked = [r.headers.get("Expires") for r in registrar.authorized()]
    assert asked == ["30", "600"]
    (status,) = alice.registration_status()
    assert status.aor == aor
    assert status.expires == 600


async def test_wrong_password_fails_with_back_off_then_recovers(net: VirtualCalls) -> None:
    registrar = Registrar(net)
    net.sip.add_relay(REGISTRAR_PORT, registrar)
    settings = RegistrationSettings(retry_min=5.0, retry_max=20.0)
    builder = net.builder("alice").with_registration(
        REGISTRAR, username="alice", password="wrong", settings=settings
    )
    alice = net.coordinator(builder)
    async with alice:
        await wait_state(alice, RegistrationState.Failed)
        (status,) = alice.registration_status()
        assert status.status == 401
        assert "reg.test" in status.reason
        assert "rejected" in status.reason
        assert "wrong" not in status.reason
        times: list[float] = []
        seen = len(registrar.requests)
        with anyio.fail_after(200):
            while len(times) < 4:
                await anyio.sleep(0.5)
                if len(registrar.requests) > seen:
                    seen = len(registrar.requests)
                    times.append(anyio.current_time())
        # Attempts (a challenged REGISTER and its retry each) back off 5, 10, 20, 20 s
        # (retry_max): the first seen here is the second attempt, 5 s after the failure.
        gaps = [round(b - a) for a, b in itertools.pairwise(times)]
        assert gaps == [10, 20, 20]
        # The right password (a new registration for the AOR) gets in.
        alice.register(REGISTRAR, username="alice", password=PASSWORD)
        await wait_state(alice, RegistrationState.Registered)


async def test_several_accounts_and_unregister_at_run_time(net: VirtualCalls) -> None:
    registrar = Registrar(net)
    net.sip.add_relay(REGISTRAR_PORT, registrar)
    alice = await net.add("alice")
    one = alice.register(REGISTRAR, username="alice", password=PASSWORD)
    two = alice.register(REGISTRAR, username="sales", password=PASSWORD, realm="reg.test")
    with anyio.fail_after(30):
        while sum(s.state is RegistrationState.Registered for s in alice.registration_status()) < 2:
            await anyio.sleep(0.05)
    assert set(registrar.bindings) == {one, two}
    status = await alice.unregister(two)
    assert status.state is RegistrationState.Unregistered
    assert status.status == 200
    assert set(registrar.bindings) == {one}
    assert [s.aor for s in alice.registration_status()] == [one]
    with pytest.raises(InvalidState):
        await alice.unregister(two)


async def test_no_response_is_a_failure_retried_later(net: VirtualCalls) -> None:
    """Nothing listens at the registrar: Timer F (64*T1) gives 408, then the back-off."""
    alice = await net.add("alice")
    alice.register("sip:127.0.0.1:5991", username="alice", password=PASSWORD)
    await wait_state(alice, RegistrationState.Failed, limit=120)
    (status,) = alice.registration_status()
    assert status.status in (408, 503, 0)
    assert status.reason


def test_passwords_stay_out_of_reprs() -> None:
    from rvoip_session_core import SessionManagerBuilder

    builder = (
        SessionManagerBuilder()
        .with_credentials("alice", "cred-secret")
        .with_registration(REGISTRAR, username="bob", password="reg-secret")
    )
    for text in (repr(builder), repr(builder.config())):
        assert "cred-secret" not in text
        assert "reg-secret" not in text
    assert "bob" in repr(builder.config().registrations)
