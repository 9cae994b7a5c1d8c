"""Requests our coordinator sends inside a call to a SIPp UAS: INFO DTMF and REFER."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import (
    CallState,
    SessionControl,
    SessionManagerBuilder,
    TransferProgress,
)
from rvoip_session_core.testing import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def test_we_send_info_dtmf_to_sipp_uas(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    port = free_udp_port()
    async with (
        sipp.serve("uas_info.xml", local_port=port, calls=1, timeout=15) as uas,
        await builder(Recorder(), "alice").build() as coordinator,
    ):
        session = await coordinator.create_outgoing_call(
            "sip:alice@127.0.0.1", f"sip:ivr@{HOST}:{port}"
        )
        await coordinator.wait_for_answer(session.id, 5.0)
        # SIPp's answer has no telephone-event, so the digits go by SIP INFO.
        await SessionControl.send_dtmf(coordinator, session.id, "1#")
        await coordinator.terminate_session(session.id)
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()


async def test_we_transfer_sipp_uas_by_refer(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    port = free_udp_port()
    async with sipp.serve("uas_refer.xml", local_port=port, calls=1, timeout=15) as uas:
        handler = Recorder()
        async with await builder(handler, "alice").build() as coordinator:
            events = coordinator.events()
            session = await coordinator.create_outgoing_call(
                "sip:alice@127.0.0.1", f"sip:bob@{HOST}:{port}"
            )
            await coordinator.wait_for_answer(session.id, 5.0)
            await coordinator.transfer_session(session.id, "sip:carol@127.0.0.1:5099")
            assert await coordinator.wait_for_transfer(session.id, 5.0) == 200
            # A completed transfer ends our leg (BYE to the transferee).
            assert await wait_until(lambda: len(handler.ended) == 1)
            [(ended, reason)] = handler.ended
            assert (ended.state, reason) == (CallState.Terminated, "transferred")
            progress = []
            while (event := events.receive_nowait()) is not None:
                if isinstance(event, TransferProgress):
                    progress.append((event.status, event.final))
            assert progress == [(100, False), (200, True)]
            result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
