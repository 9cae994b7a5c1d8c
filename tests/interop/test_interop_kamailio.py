"""Registration with digest against Kamailio, and a call routed by its location table.

Kamailio (Debian ``kamailio``) runs on 127.0.0.1 with ``kamailio/registrar.cfg``: it
challenges every REGISTER (qop=auth, password ``kamailio-secret``), clamps expires to
30..120 s, keeps the bindings in memory and relays INVITEs to the registered contact
(Record-Route kept for the in-dialog requests). Skipped, saying why, when the
``kamailio`` binary is not installed (``python3 tools/dev.py setup`` installs it as root).
"""

from __future__ import annotations

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
    RegistrationState,
    SessionCoordinator,
    SessionManagerBuilder,
)

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

CONFIG = Path(__file__).resolve().parent / "kamailio" / "registrar.cfg"
PASSWORD = "kamailio-secret"


@pytest.fixture
async def kamailio() -> AsyncIterator[int]:
    """A Kamailio registrar on a free UDP port of 127.0.0.1 (its port)."""
    exe = shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None
    )
    if exe is None:
        pytest.skip("kamailio not installed (Debian: apt-get install kamailio)")
    port = free_udp_port()
    with tempfile.TemporaryDirectory(prefix="rvoip-kamailio-") as run_dir:
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
        ]
        async with await anyio.open_process(cmd) as proc:
            try:
                with anyio.fail_after(10):
                    while _port_is_free(port):
                        if proc.returncode is not None:
                            pytest.fail(f"kamailio exited with {proc.returncode}")
                        await anyio.sleep(0.05)
                yield port
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
    kamailio: int, builder: Callable[..., SessionManagerBuilder]
) -> None:
    registrar = f"sip:{HOST}:{kamailio}"
    alice_builder = builder(Recorder(), "alice").with_registration(
        registrar, username="alice", password=PASSWORD, expires=3600
    )
    bob_builder = builder(Recorder(), "bob").with_outbound_proxy(registrar)
    async with (
        await alice_builder.build() as alice,
        await bob_builder.build() as bob,
    ):
        await wait_registered(alice)
        (status,) = alice.registration_status()
        assert status.aor == f"sip:alice@{HOST}"
        assert status.status == 200
        assert status.expires == 120  # Kamailio's max_expires, not the 3600 asked for
        # bob calls alice's AOR through Kamailio, which looks up her binding.
        call = await bob.create_outgoing_call(f"sip:bob@{HOST}", f"sip:alice@{HOST}")
        await bob.wait_for_answer(call.id, 5)
        assert (await bob.get_session(call.id)).state is CallState.Active
        await bob.terminate_session(call.id)
        # Unregistered, alice is no longer found: Kamailio answers 404.
        gone = await alice.unregister(f"sip:alice@{HOST}")
        assert gone.state is RegistrationState.Unregistered
        assert gone.status == 200
        call = await bob.create_outgoing_call(f"sip:bob@{HOST}", f"sip:alice@{HOST}")
        with pytest.raises(CallFailed) as failed:
            await bob.wait_for_answer(call.id, 5)
        assert failed.value.status == 404


async def test_wrong_password_is_refused_by_kamailio(
    kamailio: int, builder: Callable[..., SessionManagerBuilder]
) -> None:
    registrar = f"sip:{HOST}:{kamailio}"
    async with await builder(Recorder(), "alice").build() as alice:
        alice.register(registrar, username="alice", password="not-it")
        with anyio.fail_after(10):
            while not any(s.state is RegistrationState.Failed for s in alice.registration_status()):
                await anyio.sleep(0.05)
        (status,) = alice.registration_status()
        assert status.status == 401
        assert HOST in status.reason
        assert "not-it" not in status.reason
