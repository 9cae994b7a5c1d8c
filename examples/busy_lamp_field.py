"""Busy-lamp field (RFC 4235 dialog package) between three loopback coordinators.

Bob's coordinator serves its calls' state (``with_dialog_event_package``); Alice watches
Bob's lamp (``SessionControl.watch_busy_lamp``) while Carol calls Bob, Bob answers and
Carol hangs up: the lamp goes idle, ringing, busy, idle. Run:
``python examples/busy_lamp_field.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    BusyLamp,
    CallDecision,
    CallHandler,
    CallSession,
    Decision,
    IncomingCall,
    SessionControl,
    SessionManagerBuilder,
)


class RingThenAnswer(CallHandler):
    """Bob lets each call ring half a second, then answers (deferred decision)."""

    def __init__(self) -> None:
        self.waiting: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.waiting.append(call)
        return CallDecision.Defer()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        print(f"bob: call from {call.from_} ended ({reason})")


def peer(user: str, handler: CallHandler | None = None) -> SessionManagerBuilder:
    return (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address(f"sip:{user}@127.0.0.1")
        .with_handler(handler or AutoAnswerHandler())
    )


async def lamp_until(lamp: BusyLamp, wanted: str) -> None:
    with anyio.fail_after(10):
        async for state in lamp:
            print(f"alice sees bob: {state}")
            if state == wanted:
                return


async def main() -> None:
    handler = RingThenAnswer()
    # Bob serves the dialog event package: anyone may watch his lamp.
    async with (
        await peer("bob", handler).with_dialog_event_package().build() as bob,
        await peer("alice").build() as alice,
        await peer("carol").build() as carol,
    ):
        host, port = bob.local_sip_address
        bob_uri = f"sip:bob@{host}:{port}"
        lamp = await SessionControl.watch_busy_lamp(alice, bob_uri)
        await lamp_until(lamp, "idle")

        call = await SessionControl.create_outgoing_call(carol, carol.local_uri, bob_uri, None)
        await lamp_until(lamp, "ringing")
        while not handler.waiting:
            await anyio.sleep(0.01)
        await anyio.sleep(0.5)
        await SessionControl.accept_incoming_call(bob, handler.waiting[0])
        await lamp_until(lamp, "busy")

        await SessionControl.terminate_session(carol, call.id)
        await lamp_until(lamp, "idle")
        await lamp.close()
        print(f"lamp subscription ended: {lamp.subscription.end_reason}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
