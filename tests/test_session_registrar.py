"""The server side of issue 12 over 127.0.0.1 sockets: challenging callers, a registrar,
calls routed to registered contacts.

Every party is an rvoip ``SessionCoordinator``: a PBX built ``with_authenticator`` and
``with_registrar``, phones built ``with_registration``/``with_credentials``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from rvoip_session_core import (
    AutoAnswerHandler,
    BindingsChanged,
    CallDecision,
    CallFailed,
    CallHandler,
    CallSession,
    CallState,
    Decision,
    IncomingCall,
    RegistrarSettings,
    RegistrationState,
    SessionCoordinator,
    SessionManagerBuilder,
)
from rvoip_session_core.testing import loopback_builder
from rvoip_sip_core import make_request, parse_uri

pytestmark = pytest.mark.anyio

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Real sockets on both backends."""
    return str(request.param)


class Recorder(AutoAnswerHandler):
    """Auto-answers and keeps every incoming call it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.calls.append(call)
        return CallDecision.Accept()


class RouteToRegistered(CallHandler):
    """The PBX: every call goes to the contacts of its Request-URI's AOR."""

    def decide_now(self, call: IncomingCall) -> Decision | None:
        return CallDecision.Route()

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return CallDecision.Route()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        pass


def pbx_builder(
    handler: CallHandler, *, methods: tuple[str, ...] | None = None
) -> SessionManagerBuilder:
    return (
        loopback_builder("pbx", handler)
        .with_authenticator("pbx.test", PASSWORDS, methods=methods)
        .with_registrar(domain="127.0.0.1", settings=RegistrarSettings(min_expires=10))
    )


async def _registered(phone: SessionCoordinator) -> None:
    with anyio.fail_after(5):
        while True:
            statuses = phone.registration_status()
            if statuses and statuses[0].state is RegistrationState.Registered:
                return
            if statuses and statuses[0].state is RegistrationState.Failed:
                raise AssertionError(f"registration failed: {statuses[0]}")
            await anyio.sleep(0.02)


# --- challenging callers ------------------------------------------------------------------


async def test_caller_with_the_right_password_is_connected_and_named() -> None:
    recorder = Recorder()
    callee = loopback_builder("bob", recorder).with_authenticator("pbx.test", PASSWORDS)
    caller = loopback_builder("alice").with_credentials("alice", "alice-pw")
    async with await callee.build() as bob, await caller.build() as alice:
        host, port = bob.local_sip_address
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@{host}:{port}")
        await alice.wait_for_answer(call.id, 5)
        assert (await alice.get_session(call.id)).state is CallState.Active
        (seen,) = recorder.calls  # the challenged INVITE never reached the handler
        assert seen.authenticated_user == "alice"
        await alice.terminate_session(call.id)


@pytest.mark.parametrize("proxy", [False, True])
async def test_wrong_password_fails_the_call_with_403(proxy: bool) -> None:
    recorder = Recorder()
    callee = loopback_builder("bob", recorder).with_authenticator(
        "pbx.test", PASSWORDS, proxy=proxy
    )
    caller = loopback_builder("alice").with_credentials("alice", "wrong")
    async with await callee.build() as bob, await caller.build() as alice:
        host, port = bob.local_sip_address
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@{host}:{port}")
        with pytest.raises(CallFailed) as failed:
            await alice.wait_for_answer(call.id, 5)
        assert failed.value.status == 403
        assert recorder.calls == []


async def test_caller_without_credentials_fails_with_401() -> None:
    recorder = Recorder()
    callee = loopback_builder("bob", recorder).with_authenticator("pbx.test", PASSWORDS)
    async with await callee.build() as bob, await loopback_builder("alice").build() as alice:
        host, port = bob.local_sip_address
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@{host}:{port}")
        with pytest.raises(CallFailed) as failed:
            await alice.wait_for_answer(call.id, 5)
        assert failed.value.status == 401
        assert recorder.calls == []


class ChallengeStrangers(CallHandler):
    """Challenges callers not yet authenticated; accepts the authenticated ones."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.seen.append(call.authenticated_user)
        if call.authenticated_user is None:
            return CallDecision.Challenge(realm="pbx.test")
        return CallDecision.Accept()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        pass


async def test_handler_decides_to_challenge_per_call() -> None:
    handler = ChallengeStrangers()
    callee = loopback_builder("bob", handler).with_authenticator("pbx.test", PASSWORDS, methods=())
    caller = loopback_builder("alice").with_credentials("alice", "alice-pw")
    async with await callee.build() as bob, await caller.build() as alice:
        host, port = bob.local_sip_address
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@{host}:{port}")
        await alice.wait_for_answer(call.id, 5)
        assert handler.seen == [None, "alice"]
        await alice.terminate_session(call.id)


# --- the registrar ------------------------------------------------------------------------


async def test_register_with_digest_lists_bindings_and_unregisters_on_stop() -> None:
    async with await pbx_builder(RouteToRegistered()).build() as pbx, pbx.events() as events:
        host, port = pbx.local_sip_address
        phone = loopback_builder("alice").with_registration(
            f"sip:{host}:{port}", username="alice", password="alice-pw", expires=120
        )
        async with await phone.build() as alice:
            await _registered(alice)
            (status,) = alice.registration_status()
            assert status.expires == 120
            (binding,) = pbx.bindings("sip:alice@127.0.0.1")
            assert str(binding.contact) == alice.endpoint.config.contact
            assert 118 <= binding.expires_in(pbx.call_layer.now()) <= 120
        assert pbx.bindings("sip:alice@127.0.0.1") == ()
        changes: list[BindingsChanged] = []
        with anyio.fail_after(2):
            async for event in events:
                if isinstance(event, BindingsChanged):
                    changes.append(event)
                    if len(changes) == 2:
                        break
        assert [len(c.bindings) for c in changes] == [1, 0]


async def test_register_for_another_users_aor_is_forbidden() -> None:
    async with await pbx_builder(RouteToRegistered()).build() as pbx:
        host, port = pbx.local_sip_address
        phone = loopback_builder("mallory").with_registration(
            f"sip:{host}:{port}",
            username="alice",
            password="alice-pw",
            aor="sip:bob@127.0.0.1",
        )
        async with await phone.build() as mallory:
            with anyio.fail_after(5):
                while not mallory.registration_status() or (
                    mallory.registration_status()[0].state is not RegistrationState.Failed
                ):
                    await anyio.sleep(0.02)
            assert mallory.registration_status()[0].status == 403
        assert pbx.bindings("sip:bob@127.0.0.1") == ()


# --- routing to registered contacts ---------------------------------------------------------


@contextlib.asynccontextmanager
async def _two_registered_phones(
    pbx: SessionCoordinator, bob_handler: CallHandler
) -> AsyncIterator[tuple[SessionCoordinator, SessionCoordinator]]:
    host, port = pbx.local_sip_address
    registrar = f"sip:{host}:{port}"
    alice_b = loopback_builder("alice").with_registration(
        registrar, username="alice", password="alice-pw"
    )
    bob_b = loopback_builder("bob", bob_handler).with_registration(
        registrar, username="bob", password="bob-pw"
    )
    async with await alice_b.build() as alice, await bob_b.build() as bob:
        await _registered(alice)
        await _registered(bob)
        yield alice, bob


async def _media_flows(coordinator: SessionCoordinator, sid: str) -> None:
    with anyio.fail_after(5):
        while True:
            stats = await coordinator.get_media_statistics(sid)
            if stats is not None and stats.packets_received > 5:
                return
            await anyio.sleep(0.05)


async def test_registered_phones_call_each_other_through_the_pbx() -> None:
    async with await pbx_builder(RouteToRegistered()).build() as pbx:
        bob_calls = Recorder()
        async with _two_registered_phones(pbx, bob_calls) as (alice, bob):
            host, port = pbx.local_sip_address
            call = await alice.create_outgoing_call(
                "sip:alice@127.0.0.1", f"sip:bob@127.0.0.1:{port}"
            )
            await alice.wait_for_answer(call.id, 5)
            (bob_call,) = bob_calls.calls
            assert bob_call.from_.startswith("sip:alice@")
            await _media_flows(alice, call.id)
            await _media_flows(bob, bob_call.id)
            assert len(await pbx.list_bridges()) == 1
            await alice.terminate_session(call.id)
            with anyio.fail_after(5):
                while await bob.list_active_sessions() or await pbx.list_active_sessions():
                    await anyio.sleep(0.05)
            assert host == "127.0.0.1"


class Refuse(CallHandler):
    """Refuses every call with ``status``."""

    def __init__(self, status: int) -> None:
        self.status = status

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return CallDecision.Reject("Busy Here" if self.status == 486 else "Decline", self.status)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        pass


@pytest.mark.parametrize("status", [486, 603])
async def test_refusal_of_the_only_contact_is_passed_back(status: int) -> None:
    pbx_b = pbx_builder(RouteToRegistered())
    async with await pbx_b.build() as pbx, _two_registered_phones(pbx, Refuse(status)) as phones:
        alice, _bob = phones
        _, port = pbx.local_sip_address
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@127.0.0.1:{port}")
        with pytest.raises(CallFailed) as failed:
            await alice.wait_for_answer(call.id, 5)
        assert failed.value.status == status


async def test_call_to_an_aor_without_binding_gets_480() -> None:
    async with await pbx_builder(RouteToRegistered()).build() as pbx:
        _, port = pbx.local_sip_address
        caller = loopback_builder("alice").with_credentials("alice", "alice-pw")
        async with await caller.build() as alice:
            call = await alice.create_outgoing_call(
                "sip:alice@127.0.0.1", f"sip:carol@127.0.0.1:{port}"
            )
            with pytest.raises(CallFailed) as failed:
                await alice.wait_for_answer(call.id, 5)
            assert failed.value.status == 480


async def test_fork_to_two_contacts_first_answer_wins_other_cancelled() -> None:
    """Bob has two phones; the one that answers gets the call, the other is cancelled."""

    class Slow(CallHandler):
        def __init__(self) -> None:
            self.ended: list[str] = []

        async def on_incoming_call(self, call: IncomingCall) -> Decision:
            await anyio.sleep(30)
            return CallDecision.Accept()

        async def on_call_ended(self, call: CallSession, reason: str) -> None:
            self.ended.append(reason)

    async with await pbx_builder(RouteToRegistered()).build() as pbx:
        host, port = pbx.local_sip_address
        registrar = f"sip:{host}:{port}"
        slow = Slow()
        fast = Recorder()
        phones: list[Callable[[], SessionManagerBuilder]] = [
            lambda: loopback_builder("bob", slow).with_registration(
                registrar, username="bob", password="bob-pw"
            ),
            lambda: loopback_builder("bob", fast).with_registration(
                registrar, username="bob", password="bob-pw"
            ),
        ]
        async with (
            await phones[0]().build() as desk,
            await phones[1]().build() as mobile,
            await loopback_builder("alice").with_credentials("alice", "alice-pw").build() as alice,
        ):
            await _registered(desk)
            await _registered(mobile)
            assert len(pbx.bindings("sip:bob@127.0.0.1")) == 2
            sent: list[bytes] = []
            pbx.message_tap = lambda _direction, data, _addr: sent.append(data)
            call = await alice.create_outgoing_call(
                "sip:alice@127.0.0.1", f"sip:bob@127.0.0.1:{port}"
            )
            await alice.wait_for_answer(call.id, 5)
            assert len(fast.calls) == 1
            with anyio.fail_after(5):
                while not slow.ended:
                    await anyio.sleep(0.05)
            assert "cancelled" in slow.ended[0]
            # RFC 3261 §16.7 step 10 / RFC 3326: the loser's CANCEL says why.
            cancels = [m for m in sent if m.startswith(b"CANCEL ")]
            assert cancels
            assert all(b'text="Call completed elsewhere"' in m for m in cancels)
            await alice.terminate_session(call.id)


async def test_contact_naming_the_pbx_itself_is_not_rung() -> None:
    """A binding whose contact is the PBX's own address (registered by mistake or by a
    hostile user) made the PBX call itself: the branch INVITE came back as a new call to
    the same AOR, was routed again, and so on — one more call per round, bounded only by
    max_concurrent_calls (a B2BUA's INVITE starts again at Max-Forwards 70). Such contacts
    are now skipped: the caller gets 480 and no branch is placed."""
    builder = loopback_builder("pbx", RouteToRegistered()).with_registrar(domain="127.0.0.1")
    async with await builder.build() as pbx, await loopback_builder("alice").build() as alice:
        host, port = pbx.local_sip_address
        loop = make_request(
            "REGISTER",
            parse_uri(f"sip:{host}:{port}"),
            from_="<sip:bob@127.0.0.1>;tag=x",
            to="<sip:bob@127.0.0.1>",
            call_id="loop",
            cseq=1,
            via="SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKloop",
            contact=None,
            headers=[("Contact", f"<sip:bob@{host}:{port}>")],
        )
        assert pbx.registrar.register(loop, pbx.call_layer.now()).status == 200
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@{host}:{port}")
        with pytest.raises(CallFailed) as failed:
            await alice.wait_for_answer(call.id, 5)
        assert failed.value.status == 480
        router = pbx.call_layer.router
        assert router is not None
        assert router.branches_placed == 0


async def test_caller_hanging_up_while_forked_cancels_the_branches() -> None:
    class Ringing(CallHandler):
        def __init__(self) -> None:
            self.offered = anyio.Event()
            self.ended: list[str] = []

        async def on_incoming_call(self, call: IncomingCall) -> Decision:
            self.offered.set()
            await anyio.sleep(30)
            return CallDecision.Accept()

        async def on_call_ended(self, call: CallSession, reason: str) -> None:
            self.ended.append(reason)

    ringing = Ringing()
    pbx_b = pbx_builder(RouteToRegistered())
    async with await pbx_b.build() as pbx, _two_registered_phones(pbx, ringing) as phones:
        alice, _bob = phones
        _, port = pbx.local_sip_address
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@127.0.0.1:{port}")
        with anyio.fail_after(5):
            await ringing.offered.wait()
        await alice.terminate_session(call.id)
        with anyio.fail_after(5):
            while not ringing.ended:
                await anyio.sleep(0.05)
        assert "cancelled" in ringing.ended[0]
        with anyio.fail_after(5):
            while await pbx.list_active_sessions():
                await anyio.sleep(0.05)
