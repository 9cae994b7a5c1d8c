"""Basic softphone: call, talk (a tone), dial DTMF, hold, resume, hang up.

The "far end" is an auto-answering endpoint in the same process that reports what it
hears. Run: ``python examples/softphone.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    CallSession,
    SessionId,
    SessionManagerBuilder,
    StateChanged,
    tone_source,
)


class FarEnd(AutoAnswerHandler):
    """Answers and prints the digits it receives."""

    async def on_dtmf(self, session_id: SessionId, digit: str) -> None:
        print(f"far end: DTMF {digit}")

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        print(f"far end: call ended ({reason})")


async def print_states(phone_events: object) -> None:
    async for event in phone_events:  # type: ignore[attr-defined]
        if isinstance(event, StateChanged):
            print(f"phone: {event.old_state.name} -> {event.new_state.name}")


async def main() -> None:
    async with (
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:far@127.0.0.1")
        .with_handler(FarEnd())
        .build() as far,
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:me@127.0.0.1")
        .build() as phone,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(print_states, phone.events())
        host, port = far.local_sip_address
        call = await phone.create_outgoing_call("sip:me@127.0.0.1", f"sip:far@{host}:{port}")
        await phone.wait_for_answer(call.id, 10)
        await phone.set_audio_source(call.id, tone_source(440))  # our "voice"
        await phone.send_dtmf(call.id, "42#")
        await phone.hold_session(call.id)
        await phone.resume_session(call.id)
        info = await phone.get_media_info(call.id)
        print(f"phone: {info.codec} to {info.remote_rtp_address}, {info.direction}")
        await phone.terminate_session(call.id)
        await anyio.sleep(0.2)
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
