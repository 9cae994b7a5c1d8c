"""SIP over TLS between two coordinators on 127.0.0.1 (a self-signed certificate)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from rvoip_session_core import (
    CallState,
    ConfigurationError,
    SessionCoordinator,
    SessionManagerBuilder,
    tone_source,
)
from rvoip_session_core.testing import (
    SipTrace,
    count_tone_frames,
    loopback_builder,
    released,
    wait_until,
)

pytestmark = pytest.mark.anyio


def tls_builder(user: str, files: tuple[Path, Path], **kw: object) -> SessionManagerBuilder:
    cert, key = files
    builder = loopback_builder(user).with_transport("tls")
    return builder.with_tls(str(cert), str(key), cafile=str(cert), **kw)  # type: ignore[arg-type]


async def only_call_id(coordinator: SessionCoordinator) -> str:
    ids: list[str] = []

    async def one() -> bool:
        sessions = await coordinator.list_active_sessions()
        ids[:] = [s.id for s in sessions if s.state is CallState.Active]
        return len(ids) == 1

    assert await wait_until(one)
    return ids[0]


async def test_call_over_tls_with_audio(
    anyio_backend: str, session_tls_files: tuple[Path, Path]
) -> None:
    trace = SipTrace()
    async with (
        await tls_builder("alice", session_tls_files).build() as alice,
        await tls_builder("bob", session_tls_files).build() as bob,
    ):
        trace.attach(alice, "alice")
        host, port = bob.local_sip_address
        # RFC 5630 §3.1.2: the TLS Contact is a sip: URI naming TLS; sips: requests get a
        # sips: Contact (checked in test_session_transports).
        assert alice.local_uri.startswith("sip:alice@127.0.0.1:")
        assert alice.local_uri.endswith(";transport=tls")
        with anyio.fail_after(10):
            call = await alice.create_outgoing_call(
                "sips:alice@127.0.0.1", f"sips:bob@{host}:{port}"
            )
            await alice.wait_for_answer(call.id, 5)
            bob_call = await only_call_id(bob)
            await alice.set_audio_source(call.id, tone_source(1000))
            hits, total = await count_tone_frames(bob, bob_call, 1000, 0.5)
            assert hits > total // 3
            await alice.terminate_session(call.id)
            assert await wait_until(lambda: released(bob) and released(alice))
    assert trace.kinds("alice") == ["INVITE", "ACK", "BYE"]
    assert trace.requests("INVITE")[0].top_via.transport == "TLS"


async def test_insecure_mode_accepts_an_unknown_certificate(
    anyio_backend: str, session_tls_files: tuple[Path, Path]
) -> None:
    cert, key = session_tls_files
    # No cafile: the system CAs do not know the self-signed certificate; verify=False skips.
    insecure = loopback_builder("carol").with_transport("tls")
    insecure = insecure.with_tls(str(cert), str(key), verify=False)
    assert insecure.config().tls_verify is False
    async with (
        await insecure.build() as carol,
        await tls_builder("bob", session_tls_files).build() as bob,
    ):
        host, port = bob.local_sip_address
        with anyio.fail_after(10):
            call = await carol.create_outgoing_call(
                "sips:carol@127.0.0.1", f"sips:bob@{host}:{port}"
            )
            await carol.wait_for_answer(call.id, 5)
            await carol.terminate_session(call.id)
            assert await wait_until(lambda: released(bob) and released(carol))


def test_a_tls_client_needs_no_certificate(tmp_path: Path) -> None:
    """Issue 16: ``with_transport("tls")`` without ``with_tls`` was refused ("needs
    with_tls"); a TLS client verifies the server with the system CAs and needs none."""
    config = SessionManagerBuilder().with_transport("tls").config()
    assert config.transport == "TLS"
    assert config.tls_contexts() == (None, None)  # the transport's default context, lazily
    assert config.served_transports() == ("TLS", "UDP", "TCP")
    builder = SessionManagerBuilder().with_transport("tls").with_tls(str(tmp_path / "none.pem"))
    with pytest.raises(ConfigurationError, match="TLS files"):
        builder.config().tls_contexts()
    assert SessionManagerBuilder().config().tls_contexts() == (None, None)
