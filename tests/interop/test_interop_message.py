"""Instant messages (RFC 3428 MESSAGE) with SIPp, both directions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import InstantMessage, SessionControl, SessionManagerBuilder

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


class TextOnly(Recorder):
    """Takes text/plain messages; 415 for anything else."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[InstantMessage] = []

    async def on_message(self, message: InstantMessage) -> int | None:
        self.messages.append(message)
        return None if message.content_type.startswith("text/plain") else 415


async def test_sipp_messages_reach_on_message_and_get_its_status(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    handler = TextOnly()
    async with await builder(handler).build() as coordinator:
        result = await sipp.run(
            "uac_message.xml",
            local_port=free_udp_port(),
            remote=coordinator.local_sip_address,
            calls=1,
            timeout=10,
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
    assert [m.text.strip() for m in handler.messages] == ["hello from sipp", "<x/>"]
    assert handler.messages[0].from_.startswith("sip:sipp@")


async def test_our_message_reaches_sipp_with_body_and_header(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    port = free_udp_port()
    async with (
        sipp.serve("uas_message.xml", local_port=port, calls=1, timeout=15) as uas,
        await builder(Recorder(), "alice").build() as coordinator,
    ):
        response = await SessionControl.send_message(
            coordinator, f"sip:pbx@{HOST}:{port}", "hello sipp", headers={"X-Ticket": "42"}
        )
        assert response.status == 200
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
