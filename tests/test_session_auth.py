"""Digest authentication, registration and the outbound proxy over 127.0.0.1 sockets.

The far end is a bare dialog-core ``DialogEndpoint`` that challenges with sip-core's
``DigestServer`` (what a PBX does), so the test sees every request on the wire.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

import anyio
import attrs
import pytest

from rvoip_dialog_core import DialogEndpoint, IncomingInvite, RequestReceived
from rvoip_session_core import (
    CallFailed,
    CallState,
    RegistrationState,
    SessionCoordinator,
    SessionManagerBuilder,
)
from rvoip_session_core.testing import loopback_builder
from rvoip_sip_core import AuthCredentials, DigestServer, Request
from rvoip_transaction_core import TimerConfig

pytestmark = pytest.mark.anyio

PASSWORD = "pa55word"
ANSWER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class ChallengingPeer:
    """Answers every INVITE without valid credentials with 401/407, the others with 200."""

    def __init__(self, endpoint: DialogEndpoint, *, proxy: bool = False) -> None:
        self.endpoint = endpoint
        self.server = DigestServer("pbx.test", algorithms=("SHA-256", "MD5"))
        self.proxy = proxy
        self.invites: list[Request] = []
        self.verdicts: list[bool] = []

    async def run(self) -> None:
        name = "Proxy-Authorization" if self.proxy else "Authorization"
        async for event in self.endpoint.events():
            if not isinstance(event, IncomingInvite):
                continue
            request = event.request
            self.invites.append(request)
            value = request.headers.get(name)
            ok = False
            if value is not None:
                verdict = self.server.verify(
                    AuthCredentials.parse(value),
                    method="INVITE",
                    now=anyio.current_time(),
                    password=PASSWORD,
                )
                ok = verdict.ok
                self.verdicts.append(ok)
            if ok:
                self.endpoint.respond(event.ref, 200, body=ANSWER)
                continue
            status = 407 if self.proxy else 401
            header = "Proxy-Authenticate" if self.proxy else "WWW-Authenticate"
            challenges = self.server.challenge(anyio.current_time(), proxy=self.proxy)
            self.endpoint.respond(event.ref, status, headers=[(header, str(c)) for c in challenges])


Check = Callable[[SessionCoordinator, "ChallengingPeer", int], Awaitable[None]]


async def _with_peer(
    builder: SessionManagerBuilder,
    check: Check,
    *,
    proxy: bool = False,
) -> None:
    endpoint = DialogEndpoint(udp=("127.0.0.1", 0), user="pbx", timers=TimerConfig(t1=0.1, t2=0.8))
    async with endpoint, anyio.create_task_group() as tg:
        peer = ChallengingPeer(endpoint, proxy=proxy)
        tg.start_soon(peer.run)
        port = endpoint.local("UDP").port
        async with await builder.build() as alice:
            await check(alice, peer, port)
        tg.cancel_scope.cancel()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Real sockets on both backends."""
    return str(request.param)


@pytest.mark.parametrize("proxy", [False, True])
async def test_call_to_a_challenging_peer_succeeds_after_the_retry(proxy: bool) -> None:
    builder = loopback_builder("alice").with_credentials("alice", PASSWORD)

    async def check(alice: SessionCoordinator, peer: ChallengingPeer, port: int) -> None:
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@127.0.0.1:{port}")
        await alice.wait_for_answer(call.id, 5)
        assert (await alice.get_session(call.id)).state is CallState.Active
        first, second = peer.invites
        assert peer.verdicts == [True]
        assert second.call_id == first.call_id
        assert second.from_.tag == first.from_.tag
        assert second.cseq.seq == first.cseq.seq + 1
        await alice.terminate_session(call.id)

    await _with_peer(builder, check, proxy=proxy)


async def test_wrong_password_fails_the_call_naming_realm_and_status() -> None:
    builder = loopback_builder("alice").with_credentials("alice", "not-it", realm="pbx.test")

    async def check(alice: SessionCoordinator, peer: ChallengingPeer, port: int) -> None:
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@127.0.0.1:{port}")
        with pytest.raises(CallFailed) as failed:
            await alice.wait_for_answer(call.id, 5)
        assert failed.value.status == 401
        assert "pbx.test" in str(failed.value)
        assert "rejected" in str(failed.value)
        assert "not-it" not in str(failed.value)
        assert len(peer.invites) == 2  # one retry, no loop
        assert peer.verdicts == [False]

    await _with_peer(builder, check)


async def test_outbound_proxy_gets_the_invite_with_a_route_header() -> None:
    """RFC 3261 §8.1.2: the INVITE for bob goes to the proxy's address, Route: <proxy;lr>."""
    proxy_port = [0]

    async def check(alice: SessionCoordinator, peer: ChallengingPeer, port: int) -> None:
        # bob's own address (port 9, discard) is never used: the proxy answers.
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", "sip:bob@127.0.0.1:9")
        await alice.wait_for_answer(call.id, 5)
        invite = peer.invites[-1]
        assert str(invite.uri) == "sip:bob@127.0.0.1:9"
        assert invite.headers.get_all("Route") == [f"<sip:127.0.0.1:{port};lr>"]
        proxy_port[0] = port
        await alice.terminate_session(call.id)

    endpoint_port = _free_udp_port()
    builder = (
        loopback_builder("alice")
        .with_credentials("alice", PASSWORD)
        .with_outbound_proxy(f"sip:127.0.0.1:{endpoint_port}")
    )
    await _with_peer_at(builder, check, endpoint_port)
    assert proxy_port[0] == endpoint_port


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _with_peer_at(builder: SessionManagerBuilder, check: Check, port: int) -> None:
    endpoint = DialogEndpoint(
        udp=("127.0.0.1", port), user="proxy", timers=TimerConfig(t1=0.1, t2=0.8)
    )
    async with endpoint, anyio.create_task_group() as tg:
        peer = ChallengingPeer(endpoint, proxy=True)
        tg.start_soon(peer.run)
        async with await builder.build() as alice:
            await check(alice, peer, port)
        tg.cancel_scope.cancel()


class LoopbackRegistrar:
    """A registrar on a real UDP socket: digest auth (SHA-256), bindings with expiry."""

    def __init__(self, endpoint: DialogEndpoint) -> None:
        self.endpoint = endpoint
        self.server = DigestServer("reg.test", algorithms=("SHA-256",))
        self.bindings: dict[str, str] = {}
        self.expires_seen: list[str] = []

    async def run(self) -> None:
        async for event in self.endpoint.events():
            await self.handle(event)

    async def handle(self, event: object) -> None:
        """Answer one dialog event (a REGISTER; anything else is ignored)."""
        if not isinstance(event, RequestReceived) or event.request.method != "REGISTER":
            return
        request = event.request
        now = anyio.current_time()
        value = request.headers.get("Authorization")
        ok = value is not None and (
            self.server.verify(
                AuthCredentials.parse(value), method="REGISTER", now=now, password=PASSWORD
            ).ok
        )
        if not ok:
            challenge = [("WWW-Authenticate", str(c)) for c in self.server.challenge(now)]
            self.endpoint.respond(event.ref, 401, headers=challenge)
            return
        expires = request.headers.get("Expires") or "3600"
        self.expires_seen.append(expires)
        aor, contact = str(request.to.uri), str(request.contacts[0].uri)
        if expires == "0":
            self.bindings.pop(aor, None)
            self.endpoint.respond(event.ref, 200)
            return
        self.bindings[aor] = contact
        self.endpoint.respond(event.ref, 200, headers=[("Contact", f"<{contact}>;expires=60")])


async def test_register_over_loopback_and_unregister_on_stop() -> None:
    endpoint = DialogEndpoint(udp=("127.0.0.1", 0), user="reg", timers=TimerConfig(t1=0.1, t2=0.8))
    async with endpoint, anyio.create_task_group() as tg:
        layer = endpoint.layer
        layer.config = attrs.evolve(layer.config, extra_methods=("REGISTER",))
        registrar = LoopbackRegistrar(endpoint)
        tg.start_soon(registrar.run)
        port = endpoint.local("UDP").port
        builder = loopback_builder("alice").with_registration(
            f"sip:127.0.0.1:{port}", username="alice", password=PASSWORD
        )
        async with await builder.build() as alice:
            with anyio.fail_after(5):
                while not alice.registration_status() or (
                    alice.registration_status()[0].state is not RegistrationState.Registered
                ):
                    await anyio.sleep(0.02)
            (status,) = alice.registration_status()
            assert status.expires == 60
            assert registrar.bindings == {"sip:alice@127.0.0.1": alice.endpoint.config.contact}
        assert registrar.bindings == {}
        assert registrar.expires_seen == ["3600", "0"]
        tg.cancel_scope.cancel()


# --- the command line ------------------------------------------------------------------------


async def _run_cli(argv: list[str], password: str | None = None) -> tuple[int, str]:
    env = dict(os.environ)
    env.pop("RVOIP_PASSWORD", None)
    if password is not None:
        env["RVOIP_PASSWORD"] = password
    result = await anyio.run_process(
        [sys.executable, "-m", "rvoip_session_core", *argv], env=env, check=False
    )
    return result.returncode, result.stdout.decode() + result.stderr.decode()


async def _registrar() -> tuple[DialogEndpoint, LoopbackRegistrar]:
    endpoint = DialogEndpoint(udp=("127.0.0.1", 0), user="reg", timers=TimerConfig(t1=0.1, t2=0.8))
    return endpoint, LoopbackRegistrar(endpoint)


async def test_cli_register_once_with_the_password_from_the_environment() -> None:
    endpoint, registrar = await _registrar()
    async with endpoint, anyio.create_task_group() as tg:
        layer = endpoint.layer
        layer.config = attrs.evolve(layer.config, extra_methods=("REGISTER",))
        tg.start_soon(registrar.run)
        uri = f"sip:127.0.0.1:{endpoint.local('UDP').port}"
        code, out = await _run_cli(["register", uri, "--user", "alice", "--once"], PASSWORD)
        assert code == 0, out
        assert "registered sip:alice@127.0.0.1 -> sip:alice@127.0.0.1:" in out
        assert "(expires 60s)" in out
        assert "unregistered" in out
        assert registrar.expires_seen == ["3600", "0"]
        assert registrar.bindings == {}
        code, out = await _run_cli(
            ["register", uri, "--user", "alice", "--password", "nope", "--once"]
        )
        assert code == 1, out
        assert "rejected" in out
        assert "nope" not in out
        code, out = await _run_cli(["register", uri, "--user", "alice", "--once"])
        assert code == 2, out
        assert "RVOIP_PASSWORD" in out
        tg.cancel_scope.cancel()


async def test_cli_call_answers_the_challenge() -> None:
    endpoint = DialogEndpoint(udp=("127.0.0.1", 0), user="pbx", timers=TimerConfig(t1=0.1, t2=0.8))
    async with endpoint, anyio.create_task_group() as tg:
        peer = ChallengingPeer(endpoint)
        tg.start_soon(peer.run)
        target = f"sip:bob@127.0.0.1:{endpoint.local('UDP').port}"
        argv = ["call", target, "--duration", "0.2", "--user", "alice", "--password", PASSWORD]
        code, out = await _run_cli(argv)
        assert code == 0, out
        assert "connected to" in out
        assert peer.verdicts == [True]
        assert str(peer.invites[1].from_.uri).startswith("sip:alice@127.0.0.1")
        tg.cancel_scope.cancel()


async def test_cli_answer_registers_and_unregisters_on_sigterm() -> None:
    endpoint, registrar = await _registrar()
    async with endpoint, anyio.create_task_group() as tg:
        layer = endpoint.layer
        layer.config = attrs.evolve(layer.config, extra_methods=("REGISTER",))
        tg.start_soon(registrar.run)
        uri = f"sip:127.0.0.1:{endpoint.local('UDP').port}"
        env = {**os.environ, "RVOIP_PASSWORD": PASSWORD}
        argv = ["answer", "--port", "0", "--register", uri, "--user", "alice"]
        async with await anyio.open_process(
            [sys.executable, "-m", "rvoip_session_core", *argv], env=env
        ) as proc:
            assert proc.stdout is not None
            seen = b""
            with anyio.fail_after(20):
                # The CLI prints "answering at" once SIGTERM is handled (its documented
                # cue); the registration may complete before that, during start().
                while b"answering at" not in seen:
                    seen += await proc.stdout.receive()
                while "sip:alice@127.0.0.1" not in registrar.bindings:
                    await anyio.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 128 + signal.SIGTERM
        assert registrar.bindings == {}
        assert registrar.expires_seen == ["3600", "0"]
        tg.cancel_scope.cancel()


async def test_cli_answer_sigterm_right_after_the_first_register_still_unregisters() -> None:
    """``rvoip answer --register`` used to register before its SIGTERM handler existed.

    The registration started inside ``coordinator.start()``, before the CLI installed
    its SIGINT/SIGTERM receiver; a service manager stopping the process the moment the
    registrar saw the first REGISTER killed it with the default action (exit -15, the
    binding left behind at the registrar until it expired). Now the registration starts
    once the signals are handled: the same SIGTERM ends the process with 143 after a
    REGISTER with Expires 0.
    """
    endpoint, registrar = await _registrar()
    first = anyio.Event()

    async def watch() -> None:
        async for event in endpoint.events():
            if isinstance(event, RequestReceived) and event.request.method == "REGISTER":
                first.set()
            await registrar.handle(event)

    async with endpoint, anyio.create_task_group() as tg:
        layer = endpoint.layer
        layer.config = attrs.evolve(layer.config, extra_methods=("REGISTER",))
        tg.start_soon(watch)
        uri = f"sip:127.0.0.1:{endpoint.local('UDP').port}"
        env = {**os.environ, "RVOIP_PASSWORD": PASSWORD}
        argv = ["answer", "--port", "0", "--register", uri, "--user", "alice", "--quiet"]
        async with await anyio.open_process(
            [sys.executable, "-m", "rvoip_session_core", *argv], env=env
        ) as proc:
            with anyio.fail_after(20):
                await first.wait()
            proc.send_signal(signal.SIGTERM)  # no wait for "answering at"
            with anyio.fail_after(20):
                assert await proc.wait() == 128 + signal.SIGTERM
        assert registrar.expires_seen[-1:] == ["0"]
        assert registrar.bindings == {}
        tg.cancel_scope.cancel()
