"""Registration with digest against Kamailio, and a call routed by its location table.

Kamailio (Debian ``kamailio``) runs on 127.0.0.1 with ``kamailio/registrar.cfg``: it
challenges every REGISTER (401, qop=auth, password ``kamailio-secret``) and every INVITE
(407, as a PBX does for calls of its users), clamps expires to 30..120 s, keeps the
bindings in memory and relays INVITEs to the registered contact (Record-Route kept for
the in-dialog requests). Its location table is read with ``kamcmd ul.dump`` over the ctl
module's unix socket in the test's run directory. Skipped, saying why, when the
``kamailio`` binary is not installed (``python3 tools/dev.py setup`` installs it as root).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest
from interop_calls import Recorder
from interop_sipp import HOST, _port_is_free, free_udp_port

from rvoip_session_core import (
    CallFailed,
    CallState,
    RegistrationSettings,
    RegistrationState,
    SessionCoordinator,
    SessionManagerBuilder,
)
from rvoip_session_core.testing import SipTrace

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

CONFIG = Path(__file__).resolve().parent / "kamailio" / "registrar.cfg"
PASSWORD = "kamailio-secret"


class Kamailio:
    """A running Kamailio: its SIP port and its location table (through kamcmd)."""

    def __init__(self, port: int, ctl: str | None) -> None:
        self.port = port
        self._ctl = ctl

    async def location(self) -> dict[str, list[tuple[str, int, int]]]:
        """AOR -> [(contact, expires left, CSeq)] from ``kamcmd ul.dump``."""
        kamcmd = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
        if self._ctl is None or not Path(kamcmd).exists():
            pytest.skip("kamcmd not installed (Debian: kamailio package)")
        result = await anyio.run_process([kamcmd, "-s", self._ctl, "ul.dump"], check=True)
        table: dict[str, list[tuple[str, int, int]]] = {}
        aor: str | None = None
        contact: str | None = None
        expires = 0
        for line in result.stdout.decode().splitlines():
            key, _, value = line.strip().partition(": ")
            if key == "AoR":
                aor = value
                table[aor] = []
            elif key == "Address":
                contact = value
            elif key == "Expires":
                expires = int(value) if value.lstrip("-").isdigit() else 0
            elif key == "CSeq" and aor is not None and contact is not None:
                table[aor].append((contact, expires, int(value)))
                contact = None
        return table


@pytest.fixture
async def kamailio() -> AsyncIterator[Kamailio]:
    """A Kamailio registrar and proxy on a free UDP port of 127.0.0.1."""
    exe = shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None
    )
    if exe is None:
        pytest.skip("kamailio not installed (Debian: apt-get install kamailio)")
    port = free_udp_port()
    with tempfile.TemporaryDirectory(prefix="rvoip-kamailio-") as run_dir:
        ctl = f"unix:{run_dir}/kamailio_ctl"
        cmd = [
            exe,
            "-f",
            str(CONFIG),
            "-DD",  # foreground, no daemon
            "-E",  # log to stderr
            "-l",
            f"udp:{HOST}:{port}",
            "-Y",
            run_dir,
            "-w",
            run_dir,
            "-A",
            f'CTL_SOCKET="{ctl}"',  # kamcmd reads the location table here
        ]
        async with await anyio.open_process(cmd) as proc:
            try:
                with anyio.fail_after(10):
                    while _port_is_free(port) or not Path(run_dir, "kamailio_ctl").exists():
                        if proc.returncode is not None:
                            pytest.fail(f"kamailio exited with {proc.returncode}")
                        await anyio.sleep(0.05)
                yield Kamailio(port, ctl)
            finally:
                proc.terminate()
                with anyio.move_on_after(5):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()


async def wait_registered(coordinator: SessionCoordinator) -> None:
    with anyio.fail_after(10):
        while not any(
            s.state is RegistrationState.Registered for s in coordinator.registration_status()
        ):
            await anyio.sleep(0.05)


async def test_register_with_digest_and_take_a_call_through_kamailio(
    kamailio: Kamailio, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """Kamailio challenges bob's INVITE with 407; the call goes through after the retry."""
    registrar = f"sip:{HOST}:{kamailio.port}"
    alice_builder = builder(Recorder(), "alice").with_registration(
        registrar, username="alice", password=PASSWORD, expires=3600
    )
    bob_builder = (
        builder(Recorder(), "bob").with_outbound_proxy(registrar).with_credentials("bob", PASSWORD)
    )
    trace = SipTrace()
    async with (
        await alice_builder.build() as alice,
        await bob_builder.build() as bob,
    ):
        trace.attach(bob, "bob")
        await wait_registered(alice)
        (status,) = alice.registration_status()
        assert status.aor == f"sip:alice@{HOST}"
        assert status.status == 200
        assert status.expires == 120  # Kamailio's max_expires, not the 3600 asked for
        # bob calls alice's AOR through Kamailio, which looks up her binding.
        call = await bob.create_outgoing_call(f"sip:bob@{HOST}", f"sip:alice@{HOST}")
        await bob.wait_for_answer(call.id, 5)
        assert (await bob.get_session(call.id)).state is CallState.Active
        first, retry = trace.requests("INVITE")
        assert first.headers.get("Proxy-Authorization") is None
        assert 'realm="127.0.0.1"' in (retry.headers.get("Proxy-Authorization") or "")
        assert retry.call_id == first.call_id  # RFC 3261 §22.2: same Call-ID, next CSeq
        assert retry.cseq.seq == first.cseq.seq + 1
        await bob.terminate_session(call.id)
        # Unregistered, alice is no longer found: Kamailio answers 404.
        gone = await alice.unregister(f"sip:alice@{HOST}")
        assert gone.state is RegistrationState.Unregistered
        assert gone.status == 200
        call = await bob.create_outgoing_call(f"sip:bob@{HOST}", f"sip:alice@{HOST}")
        with pytest.raises(CallFailed) as failed:
            await bob.wait_for_answer(call.id, 5)
        assert failed.value.status == 404


async def test_an_invite_without_credentials_is_refused_with_407(
    kamailio: Kamailio, builder: Callable[..., SessionManagerBuilder]
) -> None:
    registrar = f"sip:{HOST}:{kamailio.port}"
    async with await builder(Recorder(), "bob").with_outbound_proxy(registrar).build() as bob:
        call = await bob.create_outgoing_call(f"sip:bob@{HOST}", f"sip:alice@{HOST}")
        with pytest.raises(CallFailed) as failed:
            await bob.wait_for_answer(call.id, 5)
        assert failed.value.status == 407


async def test_refresh_and_unregister_are_seen_in_kamailios_location_table(
    kamailio: Kamailio, builder: Callable[..., SessionManagerBuilder]
) -> None:
    registrar = f"sip:{HOST}:{kamailio.port}"
    aor = f"sip:alice@{HOST}"
    # Kamailio grants at least 30 s; refresh after 10 % of it (3 s) to see one soon.
    settings = RegistrationSettings(refresh_fraction=0.1)
    alice_builder = builder(Recorder(), "alice").with_registration(
        registrar, username="alice", password=PASSWORD, expires=30, settings=settings
    )
    async with await alice_builder.build() as alice:
        await wait_registered(alice)
        contact = alice.endpoint.config.contact
        table = await kamailio.location()
        ((stored, expires, cseq),) = table["alice"]
        assert stored == contact
        assert 25 <= expires <= 30
        with anyio.fail_after(15):
            while True:
                await anyio.sleep(0.5)
                ((stored, expires, refreshed),) = (await kamailio.location())["alice"]
                if refreshed > cseq:
                    break
        assert stored == contact
        assert expires >= 28  # the refresh restarted the binding's 30 s
        status = await alice.unregister(aor)
        assert status.status == 200
        assert "alice" not in await kamailio.location()


async def test_two_registered_endpoints_call_each_other_through_kamailio(
    kamailio: Kamailio, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """Both directions, and each in-dialog BYE follows Kamailio's Record-Route."""
    registrar = f"sip:{HOST}:{kamailio.port}"

    def registered(user: str) -> SessionManagerBuilder:
        return (
            builder(Recorder(), user)
            .with_registration(registrar, username=user, password=PASSWORD)
            .with_outbound_proxy(registrar)
        )

    trace = SipTrace()
    async with (
        await registered("alice").build() as alice,
        await registered("bob").build() as bob,
    ):
        trace.attach(alice, "alice")
        trace.attach(bob, "bob")
        await wait_registered(alice)
        await wait_registered(bob)
        assert set(await kamailio.location()) == {"alice", "bob"}
        for caller, callee, name in ((bob, alice, "alice"), (alice, bob, "bob")):
            caller_user = "bob" if name == "alice" else "alice"
            call = await caller.create_outgoing_call(
                f"sip:{caller_user}@{HOST}", f"sip:{name}@{HOST}"
            )
            await caller.wait_for_answer(call.id, 5)
            with anyio.fail_after(5):
                while not (sessions := await callee.list_active_sessions()):
                    await anyio.sleep(0.05)
            # The callee hangs up: its BYE goes to Kamailio, Route from its Record-Route.
            await callee.terminate_session(sessions[0].id)
            with anyio.fail_after(5):
                while any(s.id == call.id for s in await caller.list_active_sessions()):
                    await anyio.sleep(0.05)  # ended by the BYE Kamailio relayed
        byes = [m for m in trace.messages if getattr(m.message, "method", None) == "BYE"]
        assert [m.source for m in byes] == ["alice", "bob"]
        for bye in byes:
            assert bye.target == (HOST, kamailio.port)
            route = bye.message.headers.get("Route") or ""
            assert re.search(rf"sip:{re.escape(HOST)}:{kamailio.port};lr", route), route


async def test_wrong_password_is_refused_by_kamailio(
    kamailio: Kamailio, builder: Callable[..., SessionManagerBuilder]
) -> None:
    registrar = f"sip:{HOST}:{kamailio.port}"
    async with await builder(Recorder(), "alice").build() as alice:
        alice.register(registrar, username="alice", password="not-it")
        with anyio.fail_after(10):
            while not any(s.state is RegistrationState.Failed for s in alice.registration_status()):
                await anyio.sleep(0.05)
        (status,) = alice.registration_status()
        assert status.status == 401
        assert HOST in status.reason
        assert "not-it" not in status.reason


async def test_a_wildcard_bound_endpoint_registers_and_is_called_through_kamailio(
    kamailio: Kamailio, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """Bound to 0.0.0.0 (it only ever sends to 127.0.0.1): Kamailio stores 127.0.0.1.

    The REGISTER's Contact and Via name the interface that routes to Kamailio, so the
    location table holds an address Kamailio can reach, and a call relayed to it is
    answered with a Contact and SDP that bob can reach too (audio flows).
    """
    registrar = f"sip:{HOST}:{kamailio.port}"
    alice_builder = (
        builder(Recorder(), "alice")
        .with_local_address("sip:alice@example.com")
        .with_local_bind_addr("0.0.0.0")
        .with_transports("UDP")
        .with_registration(registrar, username="alice", password=PASSWORD)
    )
    bob_builder = (
        builder(Recorder(), "bob").with_outbound_proxy(registrar).with_credentials("bob", PASSWORD)
    )
    trace = SipTrace()
    async with (
        await alice_builder.build() as alice,
        await bob_builder.build() as bob,
    ):
        trace.attach(alice, "alice")
        await wait_registered(alice)
        port = alice.local_sip_address[1]
        ((stored, _, _),) = (await kamailio.location())["alice"]
        assert stored == f"sip:alice@{HOST}:{port}"
        call = await bob.create_outgoing_call(f"sip:bob@{HOST}", f"sip:alice@{HOST}")
        await bob.wait_for_answer(call.id, 5)
        (ok,) = [r for r in trace.responses(200) if r.cseq.method == "INVITE"]
        assert ok.headers.get("Contact") == f"<sip:alice@{HOST}:{port}>"
        assert f"c=IN IP4 {HOST}" in ok.body.decode()
        with anyio.fail_after(5):
            while True:
                stats = await bob.get_media_statistics(call.id)
                if stats is not None and stats.packets_received > 10:
                    break
                await anyio.sleep(0.05)
        for message in trace.messages:
            assert "0.0.0.0" not in message.message.encode().decode(errors="replace")
        await bob.terminate_session(call.id)
