"""Early media and announcements: play a prompt before answering, on a loopback pair.

The "IVR" defers each call, sends early media (a 183 with its SDP, reliable with
100rel/PRACK since the caller supports it) and plays a tone as the announcement; the
caller hears it while its call is still in ``EarlyMedia``. The IVR then answers (200 with
the same SDP); a second call hears the announcement and is refused 486. Both sides run
RFC 4028 session timers of 120 s. Run: ``python examples/early_media.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    CallDecision,
    CallFailed,
    CallHandler,
    CallSession,
    CallState,
    Decision,
    IncomingCall,
    SessionControl,
    SessionCoordinator,
    SessionManagerBuilder,
    tone_source,
)
from rvoip_session_core.testing import count_tone_frames

ANNOUNCEMENT_HZ = 700.0


class Ivr(CallHandler):
    """Defers every call: the main loop plays the announcement, then decides."""

    def __init__(self) -> None:
        self.waiting: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.waiting.append(call)
        return CallDecision.Defer()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        print(f"ivr: call ended ({reason})")


def builder(user: str, handler: CallHandler | None = None) -> SessionManagerBuilder:
    out = (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address(f"sip:{user}@127.0.0.1")
        .with_session_timer(120, min_se=90)
    )
    return out.with_handler(handler) if handler is not None else out


async def announce(ivr: SessionCoordinator, handler: Ivr) -> IncomingCall:
    """Wait for a call, then send early media with the announcement."""
    while not handler.waiting:
        await anyio.sleep(0.01)
    call = handler.waiting.pop(0)
    while (await ivr.get_session(call.id)).state is not CallState.Ringing:
        await anyio.sleep(0.01)
    await SessionControl.send_early_media(ivr, call.id)
    await ivr.set_audio_source(call.id, tone_source(ANNOUNCEMENT_HZ))
    return call


async def main() -> None:
    handler = Ivr()
    async with (
        await builder("ivr", handler).build() as ivr,
        await builder("alice").build() as alice,
    ):
        host, port = ivr.local_sip_address
        target = f"sip:ivr@{host}:{port}"

        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", target)
        theirs = await announce(ivr, handler)
        hits, total = await count_tone_frames(alice, call.id, ANNOUNCEMENT_HZ, 0.5)
        state = (await alice.get_session(call.id)).state
        heard = "heard" if hits > total // 2 else "did not hear"
        print(f"alice: {heard} the announcement while {state.name}")
        await ivr.accept_incoming_call(theirs)
        await alice.wait_for_answer(call.id, 5)
        print(f"alice: answered, state {(await alice.get_session(call.id)).state.name}")
        await alice.terminate_session(call.id)

        second = await alice.create_outgoing_call("sip:alice@127.0.0.1", target)
        theirs = await announce(ivr, handler)
        await anyio.sleep(0.3)
        await ivr.reject_incoming_call(theirs, "Busy Here", 486)
        try:
            await alice.wait_for_answer(second.id, 5)
        except CallFailed as exc:
            print(f"alice: second call refused with {exc.status} after the announcement")
        await anyio.sleep(0.2)  # let the IVR's hooks print
    print("alice: done")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
