"""Digest authentication against SIPp as a challenging UAS (``uas_auth.xml``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import CallFailed, CallState, SessionManagerBuilder

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

SIPP_PASSWORD = "sipp-secret"
"""The password uas_auth.xml's verifyauth checks for user alice."""


async def test_our_invite_is_retried_with_credentials_sipp_verifies(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    port = free_udp_port()
    async with (
        sipp.serve("uas_auth.xml", local_port=port, calls=1, timeout=15) as uas,
        await builder(Recorder(), "alice")
        .with_credentials("alice", SIPP_PASSWORD)
        .build() as coordinator,
    ):
        session = await coordinator.create_outgoing_call(
            "sip:alice@127.0.0.1", f"sip:pbx@{HOST}:{port}"
        )
        await coordinator.wait_for_answer(session.id, 5.0)
        assert (await coordinator.get_session(session.id)).state is CallState.Active
        await coordinator.terminate_session(session.id)
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()


async def test_wrong_password_is_refused_by_sipp(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """SIPp's verifyauth rejects the credentials: the call is not answered (it fails on
    our side with a timeout or the peer's silence, never with a 200)."""
    port = free_udp_port()
    async with (
        sipp.serve("uas_auth.xml", local_port=port, calls=1, timeout=15) as uas,
        await builder(Recorder(), "alice")
        .with_credentials("alice", "wrong")
        .with_sip_timers(0.1, 0.4)
        .build() as coordinator,
    ):
        session = await coordinator.create_outgoing_call(
            "sip:alice@127.0.0.1", f"sip:pbx@{HOST}:{port}"
        )
        with pytest.raises(CallFailed):
            await coordinator.wait_for_answer(session.id, 10.0)
        result = await uas.finish(20)
    assert (result.successful, result.failed) == (0, 1), result.report()
