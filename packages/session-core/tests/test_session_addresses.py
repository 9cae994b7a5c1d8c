"""Via, Contact and SDP carry the bound SIP/RTP address, even with port 0 and host names."""

from __future__ import annotations

import anyio
import pytest

from rvoip_session_core import AutoAnswerHandler, SessionManagerBuilder
from rvoip_session_core.testing import SipTrace, loopback_builder, uri_of

pytestmark = pytest.mark.anyio


def _builder(local: str, public: str | None = None) -> SessionManagerBuilder:
    builder = (
        SessionManagerBuilder()
        .with_local_address(local)
        .with_sip_port(0)
        .with_handler(AutoAnswerHandler())
        .with_sip_timers(0.1, 0.8)
    )
    return builder if public is None else builder.with_public_address(public)


@pytest.mark.parametrize(
    ("local", "public", "advertised"),
    [
        ("sip:alice@example.com", None, "127.0.0.1"),
        ("sip:alice@127.0.0.1", None, "127.0.0.1"),
        ("sip:alice@example.com", "203.0.113.5", "203.0.113.5"),
    ],
)
async def test_port_zero_advertises_the_bound_port(
    local: str, public: str | None, advertised: str
) -> None:
    trace = SipTrace()
    async with (
        await _builder(local, public).build() as alice,
        await loopback_builder("bob").build() as bob,
    ):
        trace.attach(alice, "alice")
        _, port = alice.local_sip_address
        assert port != 0
        assert alice.local_uri == f"sip:alice@{advertised}:{port}"
        config = alice.endpoint.config
        assert (config.via_host, config.via_port) == (advertised, port)
        assert config.user_agent == "rvoip-python/0.1"
        call = await alice.create_outgoing_call(local, uri_of(bob, "bob"))
        with anyio.fail_after(5):
            await alice.wait_for_answer(call.id, 5)
        invite = trace.requests("INVITE")[0]
        assert invite.headers.get("Contact") == f"<sip:alice@{advertised}:{port}>"
        assert f"{advertised}:{port};branch=" in (invite.headers.get("Via") or "")
        body = invite.body.decode()
        assert f"c=IN IP4 {advertised}" in body
        assert ":0>" not in str(invite.headers.get("Contact"))
        await alice.terminate_session(call.id)
