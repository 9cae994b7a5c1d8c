"""Calls that never get answered, with SIPp on the other side: CANCEL and 486 Busy Here."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import (
    CallCancelled,
    CallDecision,
    CallFailed,
    CallState,
    SessionManagerBuilder,
    StateChanged,
)
from rvoip_session_core.testing import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def test_we_cancel_before_answer_and_sipp_uas_sends_487(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    calls = 2
    port = free_udp_port()
    async with sipp.serve("uas_cancel.xml", local_port=port, calls=calls, timeout=20) as uas:
        handler = Recorder()
        async with await builder(handler, "alice").build() as coordinator:
            events = coordinator.events()
            for _ in range(calls):
                session = await coordinator.create_outgoing_call(
                    "sip:alice@127.0.0.1", f"sip:ringing@{HOST}:{port}"
                )

                async def ringing(sid: str = session.id) -> bool:
                    return (await coordinator.get_session(sid)).state is CallState.Ringing

                assert await wait_until(ringing)
                await coordinator.terminate_session(session.id)
                with pytest.raises(CallCancelled):
                    await coordinator.wait_for_answer(session.id, 5.0)
            assert await wait_until(lambda: len(handler.ended) == calls)
            states = []
            while (event := events.receive_nowait()) is not None:
                if isinstance(event, StateChanged) and event.new_state.is_final:
                    states.append(event.new_state)
            assert states == [CallState.Cancelled] * calls
            result = await uas.finish(25)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (calls, 0), result.report()


async def test_sipp_cancels_a_deferred_call(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    calls = 3
    handler = Recorder(CallDecision.Defer())
    async with await builder(handler).build() as coordinator:
        result = await sipp.run(
            "uac_cancel.xml",
            local_port=free_udp_port(),
            remote=coordinator.local_sip_address,
            calls=calls,
            rate=20,
            timeout=15,
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (calls, 0), result.report()
        assert len(handler.incoming) == calls
        assert handler.established == []
        assert await wait_until(lambda: len(handler.ended) == calls)
        assert {call.state for call, _ in handler.ended} == {CallState.Cancelled}
        assert await coordinator.list_active_sessions() == []


async def test_busy_handler_answers_sipp_486(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    calls = 3
    handler = Recorder(CallDecision.Reject("Busy Here", 486))
    async with await builder(handler).build() as coordinator:
        result = await sipp.run(
            "uac_busy.xml",
            local_port=free_udp_port(),
            remote=coordinator.local_sip_address,
            calls=calls,
            rate=20,
            timeout=15,
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (calls, 0), result.report()
        assert "SIP/2.0 486 Busy Here" in result.messages
        assert await wait_until(lambda: len(handler.ended) == calls)
        assert await coordinator.list_active_sessions() == []


async def test_sipp_uas_486_fails_our_call_with_the_status(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    port = free_udp_port()
    async with (
        sipp.serve("uas_busy.xml", local_port=port, calls=1, timeout=15) as uas,
        await builder(Recorder(), "alice").build() as coordinator,
    ):
        session = await coordinator.create_outgoing_call(
            "sip:alice@127.0.0.1", f"sip:busy@{HOST}:{port}"
        )
        with pytest.raises(CallFailed) as failure:
            await coordinator.wait_for_answer(session.id, 5.0)
        assert failure.value.status == 486
        assert await coordinator.list_active_sessions() == []
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
