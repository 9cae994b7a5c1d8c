"""Hold and resume by re-INVITE (RFC 3264 §8.4) with SIPp, in both directions."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import (
    CallState,
    SessionControl,
    SessionCoordinator,
    SessionError,
    SessionId,
    SessionManagerBuilder,
)
from rvoip_session_core.testing import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def watch_directions(
    coordinator: SessionCoordinator, seen: dict[SessionId, list[str]]
) -> None:
    """Record each change of every answered call's negotiated audio direction."""
    while True:
        for session in await coordinator.list_active_sessions():
            if not session.state.is_established:
                continue
            try:
                info = await coordinator.get_media_info(session.id)
            except SessionError:
                continue
            history = seen.setdefault(session.id, [])
            if not history or history[-1] != info.direction:
                history.append(info.direction)
        await anyio.sleep(0.02)


async def test_sipp_holds_and_resumes_our_call(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    handler = Recorder()
    seen: dict[SessionId, list[str]] = {}
    async with await builder(handler).build() as coordinator:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_directions, coordinator, seen)
            result = await sipp.run(
                "uac_hold.xml",
                local_port=free_udp_port(),
                remote=coordinator.local_sip_address,
                calls=1,
                timeout=15,
            )
            tg.cancel_scope.cancel()
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
        # SIPp checked the answers (recvonly, then sendrecv); our side applied them.
        [call] = handler.established
        assert seen[call.id] == ["sendrecv", "recvonly", "sendrecv"]
        assert await wait_until(lambda: len(handler.ended) == 1)
        assert handler.reasons() == ["remote hangup"]


async def test_we_hold_and_resume_toward_sipp_uas(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    port = free_udp_port()
    async with (
        sipp.serve("uas_hold.xml", local_port=port, calls=1, timeout=15) as uas,
        await builder(Recorder(), "alice").build() as coordinator,
    ):
        session = await coordinator.create_outgoing_call(
            "sip:alice@127.0.0.1", f"sip:held@{HOST}:{port}"
        )
        await coordinator.wait_for_answer(session.id, 5.0)
        # The seed's call style and the method style are the same call.
        await SessionControl.hold_session(coordinator, session.id)
        assert (await coordinator.get_session(session.id)).state is CallState.OnHold
        assert (await coordinator.get_media_info(session.id)).direction == "sendonly"
        await coordinator.resume_session(session.id)
        assert (await coordinator.get_session(session.id)).state is CallState.Active
        assert (await coordinator.get_media_info(session.id)).direction == "sendrecv"
        await coordinator.terminate_session(session.id)
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
